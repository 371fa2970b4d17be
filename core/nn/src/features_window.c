/* The windows of the streaming features engine (fedc/features.h; the state is described in
 * features_engine_int.h): rows pushed in time order enter and leave each window spec's queue, and
 * the records of the entities they belong to keep each duration's count and sums.
 *
 * A sum is a double-double pair (TwoSum keeps every rounding error) that values are added to as
 * rows enter and subtracted from as they leave, reset to exactly 0 whenever its window is empty,
 * so nothing drifts. An entity whose last row leaves the longest window is removed at once (its
 * slot by backward shifting, its record reused), so the memory held is the rows inside the longest
 * window and the entities they belong to. What is left out: ordering the rows (the caller's: fedc
 * features sorts unsorted files). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "features_engine_int.h"

#define TABLE0 1024 /* the smallest table, in slots */
#define QUEUE0 1024 /* the smallest queue, in rows */

/* ---- the entities ------------------------------------------------------------------------- */

/* A 64-bit hash of a short text: 8 bytes at a time, multiplied and folded, then the MurmurHash3
 * finaliser (Appleby) so that every input bit reaches the low bits the table indexes with. */
static uint64_t hash_key(const char *s, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0; /* the last 1..7 bytes, little end first (a loop: memcpy of a variable
                           length is a library call) */
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)(unsigned char)s[i] << (8 * i);
        h = (h ^ w) * 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static inline unsigned char *rec_of(const wtab *t, uint32_t idx) {
    return t->pool + (size_t)idx * t->rec;
}

static inline const char *slot_key(const wslot *s) {
    return s->len <= KEY_INLINE ? s->key.in : s->key.out;
}

static int same_key(const char *a, const char *b, size_t n) {
    if (n > 16)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++) /* short keys: no library call */
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* Moves the slots into a table of cap slots (a power of two above the entities held). */
static int table_resize(wtab *t, size_t cap) {
    wslot *ns = calloc(cap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].idx) {
            size_t j = t->slots[i].hash & (cap - 1);
            while (ns[j].idx)
                j = (j + 1) & (cap - 1);
            ns[j] = t->slots[i];
        }
    free(t->slots);
    t->slots = ns;
    t->cap = cap;
    return 0;
}

/* Room for one more record. */
static int pool_reserve(wtab *t) {
    if (t->n_free || t->n_pool < t->pool_cap)
        return 0;
    if (t->pool_cap >= UINT32_MAX / 2)
        return -1;
    uint32_t nc = t->pool_cap ? t->pool_cap * 2 : 256;
    /* records start cache lines (rec is a multiple of 64), so each is read in the fewest */
    unsigned char *np = aligned_alloc(64, (size_t)nc * t->rec);
    uint64_t *nh = realloc(t->ent_hash, (size_t)nc * sizeof *nh);
    if (nh)
        t->ent_hash = nh;
    uint32_t *nf = nh ? realloc(t->free_idx, (size_t)nc * sizeof *nf) : NULL;
    if (nf)
        t->free_idx = nf;
    if (!np || !nh || !nf) {
        free(np);
        return -1;
    }
    if (t->n_pool)
        memcpy(np, t->pool, (size_t)t->n_pool * t->rec);
    free(t->pool);
    t->pool = np;
    t->pool_cap = nc;
    return 0;
}

/* A new entity's record for key (hash h, not in the table); -1 when out of memory. */
static __attribute__((noinline)) int64_t ent_new(fedc_feat_engine *e, wtab *t, uint64_t h,
                                                 const char *key, size_t n) {
    if (n > UINT32_MAX)
        return -1;
    /* a new entity: at most 70% of the slots in use, so that probes stay short */
    if ((t->used + 1) * 10 > t->cap * 7 && table_resize(t, t->cap ? t->cap * 2 : TABLE0))
        return -1;
    if (pool_reserve(t))
        return -1;
    char *copy = NULL;
    if (n > KEY_INLINE && !(copy = malloc(n)))
        return -1;
    uint32_t idx = t->n_free ? t->free_idx[--t->n_free] : t->n_pool++;
    memset(rec_of(t, idx), 0, t->rec);
    t->ent_hash[idx] = h;
    size_t j = h & (t->cap - 1);
    while (t->slots[j].idx)
        j = (j + 1) & (t->cap - 1);
    wslot *s = &t->slots[j];
    s->hash = h;
    s->idx = idx + 1;
    s->len = (uint32_t)n;
    if (copy) {
        memcpy(copy, key, n);
        s->key.out = copy;
    } else {
        memcpy(s->key.in, key, n);
    }
    t->used++;
    e->entities++;
    return idx;
}

/* The record of key (hash h), made when new; -1 when out of memory. The lookup is inlined into
 * the row's work (most rows find their entity); making one is not. */
static inline int64_t ent_get(fedc_feat_engine *e, wtab *t, uint64_t h, const char *key, size_t n) {
    if (t->cap) {
        for (size_t j = h & (t->cap - 1); t->slots[j].idx; j = (j + 1) & (t->cap - 1))
            if (t->slots[j].hash == h && t->slots[j].len == n &&
                same_key(slot_key(&t->slots[j]), key, n))
                return (int64_t)t->slots[j].idx - 1;
    }
    return ent_new(e, t, h, key, n);
}

/* Removes entity idx (its rows all gone): its slot, by shifting back the slots after it that
 * probed past it (linear probing has no other way to delete), and its record, kept for reuse. */
static void ent_drop(fedc_feat_engine *e, wtab *t, uint32_t idx) {
    const size_t mask = t->cap - 1;
    size_t i = t->ent_hash[idx] & mask;
    while (t->slots[i].idx != idx + 1)
        i = (i + 1) & mask;
    if (t->slots[i].len > KEY_INLINE)
        free(t->slots[i].key.out);
    for (size_t k = (i + 1) & mask; t->slots[k].idx; k = (k + 1) & mask) {
        /* slot k may fill the hole at i when its home is not cyclically within (i, k] */
        size_t home = t->slots[k].hash & mask;
        if (((k - home) & mask) >= ((k - i) & mask)) {
            t->slots[i] = t->slots[k];
            i = k;
        }
    }
    memset(&t->slots[i], 0, sizeof t->slots[i]);
    t->free_idx[t->n_free++] = idx;
    t->used--;
    e->entities--;
    /* a table far larger than its entities shrinks (not below its growth threshold, so that it
     * does not go back and forth) */
    if (t->cap > TABLE0 && t->used * 8 < t->cap)
        (void)table_resize(t, t->cap / 2); /* a failed shrink keeps the larger table */
}

void feat_win_free(wtab *t) {
    for (size_t j = 0; j < t->cap; j++)
        if (t->slots[j].idx && t->slots[j].len > KEY_INLINE)
            free(t->slots[j].key.out);
    free(t->slots);
    free(t->pool);
    free(t->ent_hash);
    free(t->free_idx);
    free(t->qt);
    free(t->qx);
    free(t->qv);
    t->slots = NULL;
    t->pool = NULL;
    t->ent_hash = NULL;
    t->free_idx = NULL;
    t->qt = NULL;
    t->qx = NULL;
    t->qv = NULL;
    t->cap = t->used = 0;
}

/* ---- the queue ---------------------------------------------------------------------------- */

/* Moves the queue into one of cap rows (a power of two holding every row held). */
static int queue_resize(wtab *t, size_t cap) {
    const size_t nv = (size_t)t->nv;
    int64_t *nt = malloc(cap * sizeof *nt);
    uint32_t *nx = malloc(cap * sizeof *nx);
    double *nvv = nv ? malloc(cap * nv * sizeof *nvv) : NULL;
    if (!nt || !nx || (nv && !nvv)) {
        free(nt);
        free(nx);
        free(nvv);
        return -1;
    }
    const uint64_t m = t->qmask, nm = cap - 1;
    for (uint64_t p = t->head; p < t->tail; p++) {
        nt[p & nm] = t->qt[p & m];
        nx[p & nm] = t->qx[p & m];
        for (size_t v = 0; v < nv; v++)
            nvv[(p & nm) * nv + v] = t->qv[(p & m) * nv + v];
    }
    free(t->qt);
    free(t->qx);
    free(t->qv);
    t->qt = nt;
    t->qx = nx;
    t->qv = nvv;
    t->qmask = nm;
    return 0;
}

/* Room for one more row; a queue far larger than its rows shrinks now and then. */
static int queue_reserve(wtab *t) {
    const size_t n = (size_t)(t->tail - t->head), cap = t->qt ? (size_t)t->qmask + 1 : 0;
    if (n == cap)
        return queue_resize(t, cap ? cap * 2 : QUEUE0);
    if ((t->tail & 0xffff) == 0 && cap > QUEUE0 && n * 8 < cap) {
        size_t nc = QUEUE0;
        while (nc < n * 2)
            nc *= 2;
        (void)queue_resize(t, nc); /* a failed shrink keeps the larger queue */
    }
    return 0;
}

/* ---- the windows -------------------------------------------------------------------------- */

/* s (a pair: high, low) += v, the pair holding the rounding error of every addition exactly
 * (Knuth's TwoSum: high + low is the sum to about 106 bits), so that values entering and leaving
 * a window over years leave no drift. */
static inline void dd_add(double *s, double v) {
    double hi = s[0], t = hi + v, bp = t - hi;
    s[1] += (hi - (t - bp)) + (v - bp);
    s[0] = t;
}

/* How far ahead in the queue the records of rows about to enter or leave are fetched: about one
 * row enters and leaves each window per row pushed. */
#define LOOK_Q 8

static inline void fetch_rec(const wtab *t, uint64_t p, uint64_t end) {
    if (p + LOOK_Q < end)
        __builtin_prefetch(rec_of(t, t->qx[(p + LOOK_Q) & t->qmask]));
    /* the queue is read in order at several places at once (the end and each start), more
     * streams than the hardware follows on its own */
    __builtin_prefetch(&t->qt[(p + 4 * LOOK_Q) & t->qmask]);
    __builtin_prefetch(&t->qx[(p + 4 * LOOK_Q) & t->qmask]);
}

/* The rows of the queue before hi whose time is at most start leave duration k's window, from lo
 * on; returns the new lo. nv is t->nv (a constant where inlined, so that the loops over the
 * values unroll). */
static inline __attribute__((always_inline)) uint64_t
leave(fedc_feat_engine *e, wtab *t, int k, uint64_t lo, int64_t start, const int nv) {
    const int last = k == t->kmax;
    const uint64_t m = t->qmask, hi = t->hi;
    const size_t off = t->sum_off + (size_t)(2 * k * nv) * sizeof(double);
    for (; lo < hi && t->qt[lo & m] <= start; lo++) {
        fetch_rec(t, lo, hi);
        const uint32_t idx = t->qx[lo & m];
        unsigned char *r = rec_of(t, idx);
        double *sum = (double *)(void *)(r + off);
        if (--REC_CNT(r)[k] == 0) {
            for (int v = 0; v < 2 * nv; v++)
                sum[v] = 0; /* an empty window: exactly 0, whatever was rounded before */
        } else {
            const double *val = t->qv + (lo & m) * (size_t)nv;
            for (int v = 0; v < nv; v++)
                dd_add(sum + 2 * v, -val[v]);
        }
        if (last) {
            /* out of the longest window: the row is dropped, and its entity with its last
             * row */
            t->head = lo + 1;
            e->held--;
            if (--*REC_HELD(r) == 0)
                ent_drop(e, t, idx);
        }
    }
    return lo;
}

/* One window spec's part of a row (its key's hash h), into out; nv as for leave. */
static inline __attribute__((always_inline)) fedc_err compute_nv(fedc_feat_engine *e, wtab *t,
                                                                 const fedc_feat_row *row, int i,
                                                                 uint64_t h, double *out,
                                                                 const int nv) {
    const int nd = t->w->n_dur;
    const int64_t tt = row->t;
    int64_t got = ent_get(e, t, h, row->key[i], row->key_len[i]);
    if (got < 0 || queue_reserve(t))
        return FEDC_ENOMEM;
    const uint32_t x = (uint32_t)got;
    if (*REC_HELD(rec_of(t, x)) == UINT32_MAX)
        return FEDC_ENOMEM; /* an entity with 2^32 - 1 rows inside its window */
    /* append the row */
    const uint64_t m = t->qmask;
    t->qt[t->tail & m] = tt;
    t->qx[t->tail & m] = x;
    for (int v = 0; v < nv; v++)
        t->qv[(t->tail & m) * (size_t)nv + (size_t)v] = row->val[t->v0 + v];
    t->tail++;
    ++*REC_HELD(rec_of(t, x));
    if (++e->held > e->held_max)
        e->held_max = e->held;
    /* the window's end t - L. The rows that leave go first, then those that enter (up to the
     * end), then the rows that left at once (a jump in time of more than a duration) leave:
     * a window whose rows all leave is empty and its sums restart at exactly 0 before the new
     * rows are added, rather than the old ones taken away from a sum that holds the new ones
     * (double-double is exact only to about 106 bits) */
    const int64_t end = tt - t->delay_s;
    for (int j = 0; j < nd; j++) {
        const int k = t->order[j];
        t->lo[k] = leave(e, t, k, t->lo[k], end - t->dur_s[k], nv);
    }
    const uint64_t hi0 = t->hi;
    uint64_t hi = hi0;
    for (; hi < t->tail && t->qt[hi & m] <= end; hi++) {
        fetch_rec(t, hi, t->tail);
        unsigned char *r = rec_of(t, t->qx[hi & m]);
        const double *val = t->qv + (hi & m) * (size_t)nv;
        double *sum = (double *)(void *)(r + t->sum_off);
        for (int k = 0; k < nd; k++) {
            REC_CNT(r)[k]++;
            for (int v = 0; v < nv; v++)
                dd_add(sum + 2 * (k * nv + v), val[v]);
        }
    }
    t->hi = hi;
    /* After the first pass each lo[k] is either at a row inside duration k's window, and so are
     * the rows after it, or at hi0; so a row that entered can leave at once only when the first
     * of them (the earliest) is at or before the start of the shortest window. Rows in time
     * order mostly enter well inside every window, and this pass is skipped. */
    if (hi != hi0 && t->qt[hi0 & m] <= end - t->dur_min_s)
        for (int j = 0; j < nd; j++) {
            const int k = t->order[j];
            t->lo[k] = leave(e, t, k, t->lo[k], end - t->dur_s[k], nv);
        }
    /* the row's entity: its counts and sums are the windows' (t->out_v: per column, per
     * duration then aggregate, -1 for a count, else 2 * (k * nv + v), whose pair it reads) */
    const unsigned char *r = rec_of(t, x);
    const double *sums = (const double *)(const void *)(r + t->sum_off);
    const int na = t->w->n_agg;
    if (nv <= 1) {
        /* every aggregate is a count, or the sum or the mean of the one value: the three per
         * duration (the operations of the general case below), and each column takes its own */
        for (int k = 0, c = 0; k < nd; k++) {
            const uint32_t n = REC_CNT(r)[k];
            double pick[3] = {(double)n, 0.0, 0.0};
            if (nv) {
                pick[1] = sums[2 * k] + sums[2 * k + 1];
                pick[2] = n ? pick[1] / pick[0] : 0.0;
            }
            for (int a = 0; a < na; a++, c++)
                out[c] = pick[t->agg_kind[a]];
        }
        return FEDC_OK;
    }
    for (int k = 0, c = 0; k < nd; k++) {
        const uint32_t n = REC_CNT(r)[k];
        const double cnt = (double)n;
        for (int a = 0; a < na; a++, c++) {
            const int at = t->out_v[c];
            if (at < 0) {
                out[c] = cnt;
                continue;
            }
            const double sv = sums[at] + sums[at + 1];
            /* a mean or rate over an empty window is 0 */
            out[c] = t->out_sum[c] ? sv : n ? sv / cnt : 0.0;
        }
    }
    return FEDC_OK;
}

static fedc_err compute(fedc_feat_engine *e, wtab *t, const fedc_feat_row *row, int i, uint64_t h,
                        double *out) {
    /* one value column (a mean, a rate or a sum of one column) or none (counts only) are the
     * usual specs: those get code of their own */
    switch (t->nv) {
    case 0:
        return compute_nv(e, t, row, i, h, out, 0);
    case 1:
        return compute_nv(e, t, row, i, h, out, 1);
    default:
        return compute_nv(e, t, row, i, h, out, t->nv);
    }
}

/* Prefetching. A row's work starts with loads that mostly miss the caches (its table slot, then
 * its entity's record), so rows ahead are prepared in two stages: LOOK_SLOT rows ahead the key is
 * hashed and its slot fetched, LOOK_REC rows ahead the record the slot points to. Each stage
 * starts again from the table (never from a pointer kept across rows, which may have moved) and
 * only brings memory into the cache; the rows are computed in order as without it. */
#define LOOK_SLOT 12
#define LOOK_REC 6
#define LOOK_N 16 /* a power of two above LOOK_SLOT */

static void prefetch_rec(const fedc_feat_engine *e, const uint64_t *h) {
    for (int i = 0; i < e->spec.n_win; i++) {
        const wtab *t = &e->tabs[i];
        if (!t->cap)
            continue;
        size_t j = h[i] & (t->cap - 1);
        for (int probes = 0; t->slots[j].idx && probes < 4; j = (j + 1) & (t->cap - 1), probes++)
            if (t->slots[j].hash == h[i]) {
                const unsigned char *r = rec_of(t, t->slots[j].idx - 1);
                __builtin_prefetch(r);
                if (t->rec > 64)
                    __builtin_prefetch(r + 64);
                break;
            }
    }
}

/* 102,738 weeks in seconds: more than the 62,135,596,800 s from year 1 to 1970 */
#define CAL_SHIFT (102738LL * 7 * 86400)

fedc_err fedc_feat_engine_push_n(fedc_feat_engine *e, const fedc_feat_row *rows, size_t n,
                                 double *out) {
    for (size_t r = 0; r < n; r++)
        if ((e->have_last || r) && rows[r].t < (r ? rows[r - 1].t : e->last_t))
            return FEDC_EINVAL;
    const int nw = e->spec.n_win;
    uint64_t hs[LOOK_N][FEDC_FEAT_MAX_WINDOWS];
    for (size_t r = 0; r < n + LOOK_SLOT; r++) {
        if (r < n) {
            uint64_t *h = hs[r % LOOK_N];
            for (int i = 0; i < nw; i++) {
                h[i] = hash_key(rows[r].key[i], rows[r].key_len[i]);
                const wtab *t = &e->tabs[i];
                if (t->cap)
                    __builtin_prefetch(&t->slots[h[i] & (t->cap - 1)]);
            }
        }
        if (r >= LOOK_SLOT - LOOK_REC && r - (LOOK_SLOT - LOOK_REC) < n)
            prefetch_rec(e, hs[(r - (LOOK_SLOT - LOOK_REC)) % LOOK_N]);
        if (r < LOOK_SLOT)
            continue;
        size_t c = r - LOOK_SLOT; /* the row computed now */
        if (c >= n)
            break;
        const fedc_feat_row *row = &rows[c];
        double *o = out + c * (size_t)e->n_out;
        int col = 0;
        if (e->spec.calendar) {
            /* fedc_epoch_weekday and fedc_epoch_hour, inline: 1970-01-01 was a Thursday. Times
             * from year 1 on, shifted by a whole number of weeks to be non-negative, take
             * unsigned divisions (no corrections for the sign) */
            int wd, hr;
            if (row->t >= -CAL_SHIFT && row->t <= INT64_MAX - CAL_SHIFT) {
                const uint64_t u = (uint64_t)(row->t + CAL_SHIFT);
                wd = (int)((u / 86400 + 4) % 7);
                hr = (int)(u % 86400 / 3600);
            } else {
                int64_t day = row->t / 86400 - (row->t % 86400 < 0);
                wd = (int)(((day + 4) % 7 + 7) % 7);
                hr = (int)((row->t - day * 86400) / 3600);
            }
            /* the handbook's TX_DURING_WEEKEND (Saturday, Sunday) and TX_DURING_NIGHT (hour
             * 0..6, both ends included) */
            o[col++] = wd == 0 || wd == 6;
            o[col++] = hr <= 6;
        }
        for (int i = 0; i < nw; i++) {
            wtab *t = &e->tabs[i];
            fedc_err rc = compute(e, t, row, i, hs[c % LOOK_N][i], o + col);
            if (rc)
                return rc;
            col += t->w->n_dur * t->w->n_agg;
        }
        e->last_t = row->t;
        e->have_last = 1;
    }
    return FEDC_OK;
}

fedc_err fedc_feat_engine_push(fedc_feat_engine *e, const fedc_feat_row *row, double *out) {
    return fedc_feat_engine_push_n(e, row, 1, out);
}
