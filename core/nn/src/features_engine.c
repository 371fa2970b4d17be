/* The streaming features engine (fedc/features.h): rows in time order in, a spec's columns out,
 * memory bounded by the rows inside the longest window.
 *
 * Per window spec, entities live in an open-addressing hash table (linear probing) keyed by
 * their text. Each entity holds a ring of its recent rows (the time and the values) whose
 * positions are sequence numbers that only grow; it keeps, per duration, the first position inside
 * the window (lo) and, for all durations, one past the last (hi). For a row at time t with delay
 * L, the window of duration D is the positions [lo, hi) with hi the first whose time is after
 * t - L and lo the first whose time is after t - L - D; both only move forward since t does. The
 * count is hi - lo; each sum is kept as rows enter (hi moves) and leave (lo moves), in a
 * double-double pair that keeps every rounding error (TwoSum), and is reset to exactly 0 whenever
 * its window is empty, so nothing drifts. Rows before the longest window's lo are dropped.
 * What is left out: ordering the rows (the caller's: fedc features sorts unsorted files). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/features.h"

/* 0001-01-01 00:00:00 and 9999-12-31 23:59:59 UTC in epoch seconds */
#define EPOCH_MIN (-62135596800LL)
#define EPOCH_MAX 253402300799LL
#define SWEEP_ROWS 65536

/* An entity: one block holding this struct, sum[] and the key's bytes. Its ring holds, per
 * position, the row's time and its nv values. */
typedef struct ent {
    uint64_t head, tail; /* the positions held: [head, tail) */
    uint64_t hi;         /* one past the last position inside every duration's window */
    uint32_t mask;       /* ring capacity - 1 (a power of two) */
    uint32_t key_len;
    unsigned char *ring;
    uint64_t lo[]; /* n_dur: the first position inside each duration's window */
} ent;
/* The hot part (the fields and lo[] for three durations) is the block's first 64 bytes, the
 * block starts a cache line; then sum[2 * n_dur * nv] (pairs: high, low: each value's sum over
 * each duration's window) and the key's bytes. */
#define ENT_SUM(t, x) ((double *)(void *)((char *)(x) + (t)->tot_off))
#define ENT_KEY(t, x) ((char *)(x) + (t)->ent_bytes)

typedef struct slot {
    uint64_t hash;
    ent *e; /* NULL: empty */
} slot;

/* One window spec at work. */
typedef struct wtab {
    const fedc_feat_window *w;
    int key_col;
    int nv;                                /* distinct value columns */
    int v0;                                /* their first slot in the row's values */
    int vcol[FEDC_FEAT_MAX_AGGS];          /* input column of each */
    const char *vname[FEDC_FEAT_MAX_AGGS]; /* its name */
    int vrate[FEDC_FEAT_MAX_AGGS];         /* 1: must be 0 or 1 */
    int agg_v[FEDC_FEAT_MAX_AGGS];         /* value of each aggregate (-1: count) */
    int64_t dur_s[FEDC_FEAT_MAX_DURS];     /* seconds */
    int64_t delay_s, span_s;               /* L; L + the longest D */
    int kmax;                              /* the longest duration */
    size_t ent_bytes, tot_off;             /* one entity's block: sum[] at tot_off, the key at
                                              ent_bytes */
    size_t stride;                         /* bytes per ring position */
    slot *slots;
    size_t cap, used;
} wtab;

struct fedc_feat_engine {
    fedc_features_spec spec;
    int n_out, n_val, time_col, bound;
    wtab *tabs;
    unsigned char *is_int; /* per output column: written as a whole number */
    fedc_feat_row row;
    int64_t last_t;
    int have_last;
    size_t since_sweep, entities, held, held_max;
};

/* ---- set-up ------------------------------------------------------------------------------- */

static int copy_spec(fedc_features_spec *dst, const fedc_features_spec *s) {
    fedc_features_spec_init(dst);
    dst->epoch = s->epoch;
    dst->calendar = s->calendar;
    if (s->time_col && fedc_features_spec_set_time(dst, s->time_col, NULL))
        return -1;
    for (int i = 0; i < s->n_win; i++)
        if (fedc_features_spec_add_window(dst, &s->win[i], NULL))
            return -1;
    return 0;
}

fedc_err fedc_feat_engine_new(fedc_feat_engine **out, const fedc_features_spec *s, fedc_diag *d) {
    *out = NULL;
    if (!s->time_col || (s->n_win == 0 && !s->calendar)) {
        fedc_diag_set(d, "features spec: %s",
                      !s->time_col ? "no time column"
                                   : "nothing to compute (no window "
                                     "spec and no calendar columns)");
        return FEDC_EINVAL;
    }
    fedc_feat_engine *e = calloc(1, sizeof *e);
    if (!e || copy_spec(&e->spec, s))
        goto nomem;
    e->n_out = fedc_features_n_columns(&e->spec);
    if (!(e->is_int = calloc((size_t)e->n_out + 1, 1)) ||
        !(e->tabs = calloc((size_t)e->spec.n_win + 1, sizeof *e->tabs)))
        goto nomem;
    int col = 0;
    if (e->spec.calendar) {
        e->is_int[col++] = 1;
        e->is_int[col++] = 1;
    }
    for (int i = 0; i < e->spec.n_win; i++) {
        wtab *t = &e->tabs[i];
        const fedc_feat_window *w = t->w = &e->spec.win[i];
        t->v0 = e->n_val;
        for (int a = 0; a < w->n_agg; a++) {
            t->agg_v[a] = -1;
            if (!w->aggs[a].col)
                continue;
            int v = 0;
            while (v < t->nv && strcmp(t->vname[v], w->aggs[a].col) != 0)
                v++; /* the distinct columns, in the order first named */
            if (v == t->nv)
                t->vname[t->nv++] = w->aggs[a].col;
            t->agg_v[a] = v;
            if (w->aggs[a].kind == FEDC_FEAT_RATE)
                t->vrate[v] = 1;
        }
        e->n_val += t->nv;
        t->delay_s = (int64_t)w->delay_days * 86400;
        for (int k = 0; k < w->n_dur; k++) {
            t->dur_s[k] = (int64_t)w->days[k] * 86400;
            if (t->dur_s[k] > t->dur_s[t->kmax])
                t->kmax = k;
            for (int a = 0; a < w->n_agg; a++)
                e->is_int[col++] = w->aggs[a].kind == FEDC_FEAT_COUNT;
        }
        t->span_s = t->delay_s + t->dur_s[t->kmax];
        /* an entity's block: the struct, lo[n_dur], sum[2 * n_dur * nv] */
        t->tot_off = sizeof(ent) + (size_t)w->n_dur * sizeof(uint64_t);
        t->ent_bytes = t->tot_off + (size_t)(2 * w->n_dur * t->nv) * sizeof(double);
        t->stride = sizeof(int64_t) + (size_t)t->nv * sizeof(double);
    }
    e->row.n_key = e->spec.n_win;
    e->row.n_val = e->n_val;
    e->row.key = calloc((size_t)e->spec.n_win + 1, sizeof *e->row.key);
    e->row.key_len = calloc((size_t)e->spec.n_win + 1, sizeof *e->row.key_len);
    e->row.val = calloc((size_t)e->n_val + 1, sizeof *e->row.val);
    if (!e->row.key || !e->row.key_len || !e->row.val)
        goto nomem;
    *out = e;
    return FEDC_OK;
nomem:
    fedc_feat_engine_destroy(&e);
    fedc_diag_set(d, "out of memory for the features engine");
    return FEDC_ENOMEM;
}

static void ent_free(ent *x) {
    if (x) {
        free(x->ring);
        free(x);
    }
}

void fedc_feat_engine_destroy(fedc_feat_engine **pe) {
    if (!pe || !*pe)
        return;
    fedc_feat_engine *e = *pe;
    if (e->tabs)
        for (int i = 0; i < e->spec.n_win; i++) {
            for (size_t j = 0; j < e->tabs[i].cap; j++)
                ent_free(e->tabs[i].slots[j].e);
            free(e->tabs[i].slots);
        }
    free(e->tabs);
    free(e->is_int);
    free(e->row.key);
    free(e->row.key_len);
    free(e->row.val);
    fedc_features_spec_release(&e->spec);
    free(e);
    *pe = NULL;
}

const fedc_features_spec *fedc_feat_engine_spec(const fedc_feat_engine *e) {
    return &e->spec;
}

fedc_feat_row *fedc_feat_engine_row(fedc_feat_engine *e) {
    return &e->row;
}

size_t fedc_feat_engine_held(const fedc_feat_engine *e) {
    return e->held;
}

size_t fedc_feat_engine_held_max(const fedc_feat_engine *e) {
    return e->held_max;
}

static int find_col(const fedc_csv_field *hdr, int n, const char *name) {
    size_t len = strlen(name);
    for (int c = 0; c < n; c++)
        if (hdr[c].n == len && memcmp(hdr[c].s, name, len) == 0)
            return c;
    return -1;
}

fedc_err fedc_feat_engine_bind(fedc_feat_engine *e, const fedc_csv_field *hdr, int n,
                               const char *file, fedc_diag *d) {
    char text[512];
    if ((e->time_col = find_col(hdr, n, e->spec.time_col)) < 0) {
        fedc_diag_set(d, "time column: no column '%s' in %s:1", e->spec.time_col, file);
        return FEDC_EMISMATCH;
    }
    for (int i = 0; i < e->spec.n_win; i++) {
        wtab *t = &e->tabs[i];
        fedc_features_window_text(text, sizeof text, t->w);
        const char *miss = NULL;
        if ((t->key_col = find_col(hdr, n, t->w->entity)) < 0)
            miss = t->w->entity;
        for (int a = 0; a < t->w->n_agg && !miss; a++)
            if (t->agg_v[a] >= 0 &&
                (t->vcol[t->agg_v[a]] = find_col(hdr, n, t->w->aggs[a].col)) < 0)
                miss = t->w->aggs[a].col;
        if (miss) {
            fedc_diag_set(d, "window '%s': no column '%s' in %s:1", text, miss, file);
            return FEDC_EMISMATCH;
        }
    }
    /* an output with two columns of one name: a reader would take one for the other */
    size_t total = (size_t)n + (size_t)e->n_out;
    char(*names)[256] = malloc(total * sizeof *names);
    if (!names) {
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    for (int c = 0; c < n; c++)
        snprintf(names[c], sizeof names[0], "%.*s", (int)(hdr[c].n < 255 ? hdr[c].n : 255),
                 hdr[c].s);
    for (int c = 0; c < e->n_out; c++)
        fedc_features_column_name(names[n + c], sizeof names[0], &e->spec, c);
    fedc_err rc = FEDC_OK;
    for (size_t i = (size_t)n; i < total && !rc; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) {
                fedc_diag_set(d,
                              "output column '%s' would appear twice (%s); give each window "
                              "spec its own entity, durations or aggregates",
                              names[i],
                              j < (size_t)n ? "it is an input column" : "from the window specs");
                rc = FEDC_EMISMATCH;
                break;
            }
    free(names);
    e->bound = rc == FEDC_OK;
    return rc;
}

/* ---- parsing a row ------------------------------------------------------------------------ */

static int parse_epoch(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i == n || n - i > 15)
        return -1; /* 15 digits hold every time of years 1..9999 */
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    v = neg ? -v : v;
    if (v < EPOCH_MIN || v > EPOCH_MAX)
        return -1;
    *out = v;
    return 0;
}

fedc_err fedc_feat_engine_parse_into(fedc_feat_engine *e, fedc_feat_row *row,
                                     const fedc_csv_record *rec, const char *file, fedc_diag *d) {
    if (!e->bound || rec->n_fields <= e->time_col) {
        fedc_diag_set(d, "%s:%ld: the features engine has no header bound for this record", file,
                      rec->line);
        return FEDC_EINVAL;
    }
    const fedc_csv_field *tf = &rec->fields[e->time_col];
    int bad = e->spec.epoch ? parse_epoch(tf->s, tf->n, &row->t)
                            : fedc_parse_datetime(tf->s, tf->n, &row->t);
    if (bad) {
        fedc_diag_set(d, "%s:%ld:%d: %s: '%.*s' is not a %s", file, rec->line, e->time_col + 1,
                      e->spec.time_col, (int)(tf->n > 64 ? 64 : tf->n), tf->s,
                      e->spec.epoch ? "whole number of seconds in years 1..9999 (time format "
                                      "epoch)"
                                    : "timestamp YYYY-MM-DD HH:MM:SS or YYYY-MM-DDTHH:MM:SS[Z]");
        return FEDC_EPARSE;
    }
    for (int i = 0; i < e->spec.n_win; i++) {
        const wtab *t = &e->tabs[i];
        row->key[i] = rec->fields[t->key_col].s;
        row->key_len[i] = rec->fields[t->key_col].n;
        for (int v = 0; v < t->nv; v++) {
            const fedc_csv_field *vf = &rec->fields[t->vcol[v]];
            double x = 0;
            if (fedc_parse_real(vf->s, vf->n, &x) || (t->vrate[v] && x != 0 && x != 1)) {
                char text[512];
                fedc_features_window_text(text, sizeof text, t->w);
                fedc_diag_set(d, "%s:%ld:%d: %s: '%.*s' is not %s (window '%s')", file, rec->line,
                              t->vcol[v] + 1, t->vname[v], (int)(vf->n > 64 ? 64 : vf->n), vf->s,
                              t->vrate[v] ? "0 or 1" : "a finite number", text);
                return FEDC_EPARSE;
            }
            row->val[t->v0 + v] = x;
        }
    }
    return FEDC_OK;
}

fedc_err fedc_feat_engine_parse(fedc_feat_engine *e, const fedc_csv_record *rec, const char *file,
                                fedc_diag *d) {
    return fedc_feat_engine_parse_into(e, &e->row, rec, file, d);
}

/* ---- the windows -------------------------------------------------------------------------- */

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

static int table_resize(wtab *t, size_t cap) {
    slot *ns = calloc(cap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].e) {
            size_t j = t->slots[i].hash & (cap - 1);
            while (ns[j].e)
                j = (j + 1) & (cap - 1);
            ns[j] = t->slots[i];
        }
    free(t->slots);
    t->slots = ns;
    t->cap = cap;
    return 0;
}

#define RING0 4

static ent *ent_new(const wtab *t, const char *key, size_t n) {
    if (n > UINT32_MAX)
        return NULL;
    size_t bytes = (t->ent_bytes + n + 1 + 63) & ~(size_t)63;
    ent *x = aligned_alloc(64, bytes);
    if (!x)
        return NULL;
    memset(x, 0, bytes);
    x->key_len = (uint32_t)n;
    memcpy(ENT_KEY(t, x), key, n);
    x->mask = RING0 - 1;
    if (!(x->ring = malloc(RING0 * t->stride))) {
        ent_free(x);
        return NULL;
    }
    return x;
}

static inline int64_t *ring_time(const ent *x, size_t stride, uint64_t p) {
    return (int64_t *)(void *)(x->ring + (size_t)(p & x->mask) * stride);
}

/* s (a pair: high, low) += v, the pair holding the rounding error of every addition exactly
 * (Knuth's TwoSum: high + low is the sum to about 106 bits), so that values entering and leaving
 * a window over years leave no drift. */
static inline void dd_add(double *s, double v) {
    double hi = s[0], t = hi + v, bp = t - hi;
    s[1] += (hi - (t - bp)) + (v - bp);
    s[0] = t;
}

static inline double *ring_val(const ent *x, size_t stride, uint64_t p) {
    return (double *)(void *)(x->ring + (size_t)(p & x->mask) * stride + sizeof(int64_t));
}

static int same_key(const char *a, const char *b, size_t n) {
    if (n > 16)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++) /* short keys: no library call */
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* The slot of hash h and key, or the empty slot where it goes. */
static slot *find(const wtab *t, uint64_t h, const char *key, size_t n) {
    size_t j = h & (t->cap - 1);
    for (; t->slots[j].e; j = (j + 1) & (t->cap - 1))
        if (t->slots[j].hash == h && t->slots[j].e->key_len == n &&
            same_key(ENT_KEY(t, t->slots[j].e), key, n))
            break;
    return &t->slots[j];
}

/* The entity of key (hash h), created when new; NULL when out of memory. */
static ent *lookup(fedc_feat_engine *e, wtab *t, uint64_t h, const char *key, size_t n) {
    if ((t->used + 1) * 2 > t->cap && table_resize(t, t->cap ? t->cap * 2 : 1024))
        return NULL;
    slot *sl = find(t, h, key, n);
    if (sl->e)
        return sl->e;
    ent *x = ent_new(t, key, n);
    if (!x)
        return NULL;
    *sl = (slot){h, x};
    t->used++;
    e->entities++;
    return x;
}

/* Moves the ring into one of capacity cap (a power of two holding every position). */
static int ring_resize(ent *x, size_t stride, size_t cap) {
    if (cap - 1 > UINT32_MAX)
        return -1;
    unsigned char *r = malloc(cap * stride);
    if (!r)
        return -1;
    for (uint64_t p = x->head; p < x->tail; p++)
        memcpy(r + (size_t)(p & (cap - 1)) * stride, x->ring + (size_t)(p & x->mask) * stride,
               stride);
    free(x->ring);
    x->ring = r;
    x->mask = (uint32_t)(cap - 1);
    return 0;
}

/* Drops every row of every entity that no later window can hold (time <= now - L - longest D),
 * frees the entities left with none, and rebuilds the tables without them. */
static int sweep(fedc_feat_engine *e, int64_t now) {
    for (int i = 0; i < e->spec.n_win; i++) {
        wtab *t = &e->tabs[i];
        int64_t cut = now - t->span_s;
        for (size_t j = 0; j < t->cap; j++) {
            ent *x = t->slots[j].e;
            if (!x)
                continue;
            /* the rows up to cut form a prefix [head, c) of the ring: they leave the windows
             * that hold them (those before hi), the others are passed over */
            uint64_t c = x->head;
            while (c < x->tail && *ring_time(x, t->stride, c) <= cut)
                c++;
            const int nv = t->nv;
            for (int k = 0; k < t->w->n_dur; k++) {
                double *sum = ENT_SUM(t, x) + 2 * k * nv;
                for (; x->lo[k] < c && x->lo[k] < x->hi; x->lo[k]++) {
                    const double *val = ring_val(x, t->stride, x->lo[k]);
                    for (int v = 0; v < nv; v++)
                        dd_add(sum + 2 * v, -val[v]);
                }
                if (x->lo[k] < c)
                    x->lo[k] = c;
            }
            if (x->hi < c)
                x->hi = c;
            for (int k = 0; k < t->w->n_dur; k++)
                if (x->lo[k] == x->hi)
                    for (int v = 0; v < 2 * nv; v++)
                        ENT_SUM(t, x)[2 * k * nv + v] = 0;
            e->held -= (size_t)(c - x->head);
            x->head = c;
            if (x->head == x->tail) {
                ent_free(x);
                t->slots[j].e = NULL;
                t->used--;
                e->entities--;
                continue;
            }
            size_t n = (size_t)(x->tail - x->head), cap = (size_t)x->mask + 1;
            if (cap > 64 && n * 8 < cap) {
                size_t nc = 64;
                while (nc < n * 2)
                    nc *= 2;
                (void)ring_resize(x, t->stride, nc); /* a failed shrink keeps the larger ring */
            }
        }
        /* rehash what is left (removing from a linear-probing table in place would break the
         * probe chains), into a table about twice its size */
        size_t cap = 1024;
        while (cap < t->used * 2 + 2)
            cap *= 2;
        if (table_resize(t, cap))
            return -1;
    }
    e->since_sweep = 0;
    return 0;
}

/* One row's windows (its key hashes in h[0..n_win)), into out from column col. */
static fedc_err compute(fedc_feat_engine *e, const fedc_feat_row *row, const uint64_t *h,
                        double *out, int col) {
    const int64_t t = row->t;
    for (int i = 0; i < e->spec.n_win; i++) {
        wtab *tb = &e->tabs[i];
        const fedc_feat_window *w = tb->w;
        const int nv = tb->nv;
        const size_t stride = tb->stride;
        ent *x = lookup(e, tb, h[i], row->key[i], row->key_len[i]);
        if (!x)
            return FEDC_ENOMEM;
        /* append the row */
        if (x->tail - x->head > x->mask && ring_resize(x, stride, ((size_t)x->mask + 1) * 2))
            return FEDC_ENOMEM;
        *ring_time(x, stride, x->tail) = t;
        memcpy(ring_val(x, stride, x->tail), row->val + tb->v0, (size_t)nv * sizeof(double));
        x->tail++;
        if (++e->held > e->held_max)
            e->held_max = e->held;
        /* the window's end t - L: the rows up to it enter every duration's window */
        const int64_t end = t - tb->delay_s;
        const int nd = w->n_dur;
        uint64_t hi = x->hi;
        for (; hi < x->tail && *ring_time(x, stride, hi) <= end; hi++) {
            const double *val = ring_val(x, stride, hi);
            for (int k = 0; k < nd; k++)
                for (int v = 0; v < nv; v++)
                    dd_add(ENT_SUM(tb, x) + 2 * (k * nv + v), val[v]);
        }
        x->hi = hi;
        /* then each duration's start: the rows up to it leave */
        for (int k = 0; k < nd; k++) {
            const int64_t start = end - tb->dur_s[k];
            double *sum = ENT_SUM(tb, x) + 2 * k * nv;
            uint64_t lo = x->lo[k];
            for (; lo < hi && *ring_time(x, stride, lo) <= start; lo++) {
                const double *val = ring_val(x, stride, lo);
                for (int v = 0; v < nv; v++)
                    dd_add(sum + 2 * v, -val[v]);
            }
            if (lo == hi)
                for (int v = 0; v < 2 * nv; v++)
                    sum[v] = 0; /* an empty window: exactly 0, whatever was rounded before */
            x->lo[k] = lo;
            const double cnt = (double)(hi - lo);
            for (int a = 0; a < w->n_agg; a++) {
                int v = tb->agg_v[a];
                if (v < 0) {
                    out[col++] = cnt;
                    continue;
                }
                double sv = sum[2 * v] + sum[2 * v + 1];
                /* a mean or rate over an empty window is 0 */
                out[col++] = w->aggs[a].kind == FEDC_FEAT_SUM ? sv : hi > lo ? sv / cnt : 0.0;
            }
        }
        /* rows before the longest window's start are held by no later window */
        uint64_t keep = x->lo[tb->kmax];
        e->held -= (size_t)(keep - x->head);
        x->head = keep;
    }
    return FEDC_OK;
}

/* Prefetching. A row's work is a chain of dependent loads that mostly miss the caches (the
 * table's slot, then the entity, then the ring at its pointers), so rows ahead are prepared in
 * stages: LOOK_SLOT rows ahead the key is hashed and its slot fetched, LOOK_ENT rows ahead the
 * entity the slot points to, LOOK_RING rows ahead the ring lines the pointers will read. Every
 * stage starts again from the table (never from a pointer kept across rows, which a sweep may
 * have freed) and only brings memory into the cache; the rows are computed in order as without
 * it. The entity and ring stages load a byte instead of a prefetch instruction: prefetches that
 * miss the TLB (these structures are spread over many pages) may be dropped, a load is not, and
 * nothing waits for it. */
static inline void touch(const void *p) {
    volatile const unsigned char *q = p;
    (void)*q;
}

#define LOOK_SLOT 12
#define LOOK_ENT 6
#define LOOK_RING 3
#define LOOK_N 16 /* a power of two above LOOK_SLOT */

static const ent *peek(const wtab *t, uint64_t h) {
    if (!t->cap)
        return NULL;
    size_t j = h & (t->cap - 1);
    for (int probes = 0; t->slots[j].e && probes < 4; j = (j + 1) & (t->cap - 1), probes++)
        if (t->slots[j].hash == h)
            return t->slots[j].e;
    return NULL;
}

static void prefetch_stage(const fedc_feat_engine *e, const uint64_t *h, int stage) {
    for (int i = 0; i < e->spec.n_win; i++) {
        const wtab *t = &e->tabs[i];
        if (stage == 0) {
            if (t->cap)
                __builtin_prefetch(&t->slots[h[i] & (t->cap - 1)]);
            continue;
        }
        const ent *x = peek(t, h[i]);
        if (!x)
            continue;
        if (stage == 1) {
            touch(x);
            touch((const char *)x + 64);
            continue;
        }
        touch(ring_time(x, t->stride, x->tail));
        touch(ring_time(x, t->stride, x->hi));
        for (int k = 0; k < t->w->n_dur; k++)
            touch(ring_time(x, t->stride, x->lo[k]));
    }
}

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
            for (int i = 0; i < nw; i++)
                h[i] = hash_key(rows[r].key[i], rows[r].key_len[i]);
            if (n > 1)
                prefetch_stage(e, h, 0);
        }
        if (n > 1 && r >= LOOK_SLOT - LOOK_ENT && r - (LOOK_SLOT - LOOK_ENT) < n)
            prefetch_stage(e, hs[(r - (LOOK_SLOT - LOOK_ENT)) % LOOK_N], 1);
        if (n > 1 && r >= LOOK_SLOT - LOOK_RING && r - (LOOK_SLOT - LOOK_RING) < n)
            prefetch_stage(e, hs[(r - (LOOK_SLOT - LOOK_RING)) % LOOK_N], 2);
        if (r < LOOK_SLOT)
            continue;
        size_t c = r - LOOK_SLOT; /* the row computed now */
        if (c >= n)
            break;
        const fedc_feat_row *row = &rows[c];
        double *o = out + c * (size_t)e->n_out;
        size_t max_rows = e->entities > SWEEP_ROWS ? e->entities : SWEEP_ROWS;
        if (++e->since_sweep > max_rows && sweep(e, e->have_last ? e->last_t : row->t))
            return FEDC_ENOMEM;
        int col = 0;
        if (e->spec.calendar) {
            /* fedc_epoch_weekday and fedc_epoch_hour, inline: 1970-01-01 was a Thursday */
            int64_t day = row->t / 86400 - (row->t % 86400 < 0);
            int wd = (int)((day + 4) % 7 + 7) % 7, hr = (int)((row->t - day * 86400) / 3600);
            /* the handbook's TX_DURING_WEEKEND (Saturday, Sunday) and TX_DURING_NIGHT (hour
             * 0..6, both ends included) */
            o[col++] = wd == 0 || wd == 6;
            o[col++] = hr <= 6;
        }
        fedc_err rc = compute(e, row, hs[c % LOOK_N], o, col);
        if (rc)
            return rc;
        e->last_t = row->t;
        e->have_last = 1;
    }
    return FEDC_OK;
}

fedc_err fedc_feat_engine_push(fedc_feat_engine *e, const fedc_feat_row *row, double *out) {
    return fedc_feat_engine_push_n(e, row, 1, out);
}

/* ---- output text -------------------------------------------------------------------------- */

size_t fedc_feat_engine_text_max(const fedc_feat_engine *e) {
    return (size_t)e->n_out * 41 + 1; /* "," and fedc_fmt_g15's 40 bytes per column */
}

static size_t put_uint(char *buf, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

size_t fedc_feat_engine_format(const fedc_feat_engine *e, char *buf, const double *out) {
    size_t n = 0;
    for (int c = 0; c < e->n_out; c++) {
        buf[n++] = ',';
        if (e->is_int[c] && out[c] >= 0 && out[c] < 9e15)
            n += put_uint(buf + n, (uint64_t)out[c]);
        else
            n += fedc_fmt_g15(buf + n, out[c]);
    }
    return n;
}
