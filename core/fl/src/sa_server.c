/* The coordinator's side of a SecAgg+ session (contracts in sa_proto.h). */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/sa_proto.h"
#include "sa_int.h"

enum { F_R = 1, F_SHARED = 2, F_MASKED = 4, F_SIGNED = 8, F_REVEALED = 16 };

/* ---- coordinator ----------------------------------------------------------------------------- */

void fedc_sa_server_free(fedc_sa_server *s) {
    fedc_sa_graph_free(&s->g);
    if (s->shares)
        sodium_memzero(s->shares, (size_t)s->n * (size_t)s->size * 32);
    free(s->adv);
    free(s->names);
    free(s->reveals);
    free(s->flags);
    free(s->box);
    free(s->box_ok);
    free(s->shares);
    free(s->got);
    free(s->sigs);
    free(s->sum);
    memset(s, 0, sizeof *s);
}

/* Allocates the per-neighbourhood tables once the graph is known. */
static fedc_err server_tables(fedc_sa_server *s, fedc_diag *d) {
    s->size = s->g.size;
    if (s->size > FEDC_SA_MAX_NBRS) {
        fedc_diag_set(d, "neighbourhoods of %d exceed 255; lower --secagg-neighbours", s->size);
        return FEDC_EINVAL;
    }
    s->t = fedc_sa_threshold(s->size, s->t);
    if (s->t < 0) {
        fedc_diag_set(d,
                      "the threshold does not fit neighbourhoods of %d (more than half, at most "
                      "all)",
                      s->size);
        return FEDC_EINVAL;
    }
    size_t ns = (size_t)s->n * (size_t)s->size;
    s->box = malloc(sizeof *s->box * ns);
    s->box_ok = calloc(ns, 1);
    s->shares = malloc(32 * ns);
    s->got = calloc(ns, 1);
    if (!s->box || !s->box_ok || !s->shares || !s->got) {
        fedc_diag_set(d, "out of memory for a secure-aggregation session");
        return FEDC_ENOMEM;
    }
    return FEDC_OK;
}

fedc_err fedc_sa_server_new(fedc_sa_server *s, int n, int h, int t_req,
                            const uint8_t run_id[FEDC_SA_RUN_BYTES], uint64_t counter,
                            const fedc_sa_adv *adv, const char *const *names, size_t len,
                            fedc_diag *d) {
    memset(s, 0, sizeof *s);
    if (sodium_init() < 0) {
        fedc_diag_set(d, "libsodium cannot start");
        return FEDC_EIO;
    }
    if (n < 1 || n > FEDC_SA_MAX_N) {
        fedc_diag_set(d, "%d clients in a session, expected 1..%d", n, FEDC_SA_MAX_N);
        return FEDC_EINVAL;
    }
    s->n = n;
    s->h = fedc__sa_default_h(n, h);
    s->t = t_req;
    s->counter = counter;
    s->graph = fedc_sa_graph_mode(n, s->h);
    memcpy(s->run, run_id, FEDC_SA_RUN_BYTES);
    fedc_sa_session(s->sid, run_id, counter);
    s->adv = malloc(sizeof *s->adv * (size_t)n);
    s->flags = calloc((size_t)n, 1);
    s->sigs = calloc((size_t)n, FEDC_SA_SIG_BYTES);
    s->sum = calloc(len ? len : 1, 4);
    s->reveals = s->graph ? calloc((size_t)n, 32) : NULL;
    fedc_err rc = FEDC_OK;
    if (!s->adv || !s->flags || !s->sigs || !s->sum || (s->graph && !s->reveals)) {
        fedc_diag_set(d, "out of memory for a secure-aggregation session");
        rc = FEDC_ENOMEM;
    }
    if (!rc)
        rc = fedc__sa_copy_names(&s->names, names, n, d);
    if (!rc) {
        memcpy(s->adv, adv, sizeof *adv * (size_t)n);
        s->len = len;
        if (!s->graph && !(rc = fedc_sa_graph_make(&s->g, n, n, 0, 0, d)))
            rc = server_tables(s, d);
    }
    if (rc)
        fedc_sa_server_free(s);
    return rc;
}

fedc_err fedc_sa_server_graph_r(fedc_sa_server *s, uint32_t id, const uint8_t r[32], fedc_diag *d) {
    if (!s->graph || id >= (uint32_t)s->n || (s->flags[id] & F_R)) {
        fedc_diag_set(d, "a graph reveal from client %u is not expected", id);
        return FEDC_EINVAL;
    }
    uint8_t cm[32];
    fedc__sa_commit_of(cm, r);
    if (sodium_memcmp(cm, s->adv[id].commit, 32) != 0) {
        fedc_diag_set(d, "client %u's reveal does not match its commitment", id);
        return FEDC_ECHECKSUM;
    }
    memcpy(s->reveals + 32 * (size_t)id, r, 32);
    s->flags[id] |= F_R;
    if (++s->n_r < s->n)
        return FEDC_OK;
    uint8_t *commits = malloc(32 * (size_t)s->n);
    if (!commits) {
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    for (int i = 0; i < s->n; i++)
        memcpy(commits + 32 * (size_t)i, s->adv[i].commit, 32);
    fedc_err rc =
        fedc__sa_draw_graph(&s->g, s->sid, s->n, s->h, s->names, commits, s->reveals, s->gseed, d);
    free(commits);
    return rc ? rc : server_tables(s, d);
}

int fedc_sa_server_graph_ready(const fedc_sa_server *s) {
    return s->g.nbr != NULL && s->box != NULL;
}

void fedc_sa_server_view(const fedc_sa_server *s, uint8_t view[32]) {
    fedc__sa_view_digest(view, s->sid, s->t, s->n, s->h, s->names, s->gseed);
}

int fedc_sa_server_in_u2(const fedc_sa_server *s, uint32_t id) {
    return id < (uint32_t)s->n && (s->flags[id] & F_SHARED) != 0;
}

int fedc_sa_server_in_u3(const fedc_sa_server *s, uint32_t id) {
    return id < (uint32_t)s->n && (s->flags[id] & F_MASKED) != 0;
}

int fedc_sa_server_in_u4(const fedc_sa_server *s, uint32_t id) {
    return id < (uint32_t)s->n && (s->flags[id] & F_SIGNED) != 0;
}

const int *fedc_sa_server_nbrs(const fedc_sa_server *s, uint32_t id) {
    return s->g.nbr + (size_t)id * (size_t)s->size;
}

static int row_pos(const fedc_sa_server *s, uint32_t owner, uint32_t id) {
    const int *row = fedc_sa_server_nbrs(s, owner);
    int lo = 0, hi = s->size - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if ((uint32_t)row[mid] == id)
            return mid;
        if ((uint32_t)row[mid] < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

fedc_err fedc_sa_server_shares(fedc_sa_server *s, uint32_t from, const fedc_sa_sealed *in, int k,
                               fedc_diag *d) {
    if (!fedc_sa_server_graph_ready(s) || from >= (uint32_t)s->n || (s->flags[from] & F_SHARED)) {
        fedc_diag_set(d, "shares from client %u not expected", from);
        return FEDC_EINVAL;
    }
    if (k != s->size - 1) {
        fedc_diag_set(d, "%d shares, expected one per neighbour (%d)", k, s->size - 1);
        return FEDC_EINVAL;
    }
    uint8_t seen[FEDC_SA_MAX_NBRS] = {0};
    for (int j = 0; j < k; j++) {
        int p = in[j].to < (uint32_t)s->n ? row_pos(s, from, in[j].to) : -1;
        if (in[j].from != from || in[j].to == from || p < 0 || seen[p]) {
            fedc_diag_set(d, "share %d (from %u to %u) does not fit client %u's neighbourhood", j,
                          in[j].from, in[j].to, from);
            return FEDC_EINVAL;
        }
        seen[p] = 1;
    }
    for (int j = 0; j < k; j++) {
        /* Stored with the receiver, at the sender's position in the receiver's row (the graph
         * is symmetric). */
        size_t at = (size_t)in[j].to * (size_t)s->size + (size_t)row_pos(s, in[j].to, from);
        s->box[at] = in[j];
        s->box_ok[at] = 1;
    }
    s->flags[from] |= F_SHARED;
    s->n_u2++;
    return FEDC_OK;
}

int fedc_sa_server_routed(const fedc_sa_server *s, uint32_t to, fedc_sa_sealed *out) {
    const int *row = fedc_sa_server_nbrs(s, to);
    int k = 0;
    for (int i = 0; i < s->size; i++) {
        size_t at = (size_t)to * (size_t)s->size + (size_t)i;
        if ((uint32_t)row[i] != to && (s->flags[row[i]] & F_SHARED) && s->box_ok[at])
            out[k++] = s->box[at];
    }
    return k;
}

fedc_err fedc_sa_server_masked(fedc_sa_server *s, uint32_t from, const uint32_t *y, fedc_diag *d) {
    if (from >= (uint32_t)s->n || !(s->flags[from] & F_SHARED) || (s->flags[from] & F_MASKED)) {
        fedc_diag_set(d, "a masked input from client %u is not expected", from);
        return FEDC_EINVAL;
    }
    uint32_t *sum = s->sum;
    for (size_t i = 0; i < s->len; i++)
        sum[i] += y[i];
    s->flags[from] |= F_MASKED;
    s->n_u3++;
    return FEDC_OK;
}

fedc_err fedc_sa_server_masked_range(fedc_sa_server *s, uint32_t from, size_t offset,
                                     const uint8_t *y, size_t count, fedc_diag *d) {
    if (from >= (uint32_t)s->n || !(s->flags[from] & F_SHARED) || (s->flags[from] & F_MASKED)) {
        fedc_diag_set(d, "a masked input from client %u is not expected", from);
        return FEDC_EINVAL;
    }
    if (offset > s->len || count > s->len - offset) {
        fedc_diag_set(d, "masked values %zu..%zu outside the session's %zu", offset, offset + count,
                      s->len);
        return FEDC_ERANGE;
    }
    /* Little-endian uint32 from the wire, possibly unaligned: the compiler makes this one load
     * per value on a little-endian host. Addition wraps mod 2^32, as the masks need. */
    uint32_t *sum = s->sum + offset;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = y + 4 * i;
        sum[i] +=
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    }
    return FEDC_OK;
}

fedc_err fedc_sa_server_masked_done(fedc_sa_server *s, uint32_t from, fedc_diag *d) {
    if (from >= (uint32_t)s->n || !(s->flags[from] & F_SHARED) || (s->flags[from] & F_MASKED)) {
        fedc_diag_set(d, "a masked input from client %u is not expected", from);
        return FEDC_EINVAL;
    }
    s->flags[from] |= F_MASKED;
    s->n_u3++;
    return FEDC_OK;
}

int fedc_sa_server_u3(const fedc_sa_server *s, uint32_t *out) {
    int k = 0;
    for (int i = 0; i < s->n; i++)
        if (s->flags[i] & F_MASKED)
            out[k++] = (uint32_t)i;
    return k;
}

fedc_err fedc_sa_server_consist(fedc_sa_server *s, uint32_t from,
                                const uint8_t sig[FEDC_SA_SIG_BYTES], fedc_diag *d) {
    if (from >= (uint32_t)s->n || !(s->flags[from] & F_MASKED) || (s->flags[from] & F_SIGNED)) {
        fedc_diag_set(d, "a consistency signature from client %u is not expected", from);
        return FEDC_EINVAL;
    }
    memcpy(s->sigs + (size_t)from * FEDC_SA_SIG_BYTES, sig, FEDC_SA_SIG_BYTES);
    s->flags[from] |= F_SIGNED;
    s->n_u4++;
    return FEDC_OK;
}

int fedc_sa_server_sigs_for(const fedc_sa_server *s, uint32_t to, fedc_sa_sig *out) {
    uint8_t *want = calloc((size_t)s->n, 1);
    if (!want)
        return 0;
    const int *row = fedc_sa_server_nbrs(s, to);
    for (int i = 0; i < s->size; i++) {
        const int *r2 = fedc_sa_server_nbrs(s, (uint32_t)row[i]);
        for (int j = 0; j < s->size; j++)
            want[r2[j]] = 1;
    }
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        if (!want[i] || !(s->flags[i] & F_SIGNED))
            continue;
        out[k].id = (uint32_t)i;
        memcpy(out[k].sig, s->sigs + (size_t)i * FEDC_SA_SIG_BYTES, FEDC_SA_SIG_BYTES);
        k++;
    }
    free(want);
    return k;
}

fedc_err fedc_sa_server_reveal(fedc_sa_server *s, uint32_t from, const fedc_sa_reveal *r, int k,
                               fedc_diag *d) {
    if (from >= (uint32_t)s->n || !(s->flags[from] & F_MASKED) || (s->flags[from] & F_REVEALED)) {
        fedc_diag_set(d, "unmask answer from client %u not expected", from);
        return FEDC_EINVAL;
    }
    for (int j = 0; j < k; j++) {
        uint32_t o = r[j].owner;
        int p = o < (uint32_t)s->n ? row_pos(s, o, from) : -1;
        int want = p < 0                      ? 0
                   : (s->flags[o] & F_MASKED) ? FEDC_SA_REVEAL_B
                   : (s->flags[o] & F_SHARED) ? FEDC_SA_REVEAL_SK
                                              : 0;
        if (!want || r[j].kind != want || s->got[(size_t)o * (size_t)s->size + (size_t)p]) {
            fedc_diag_set(d, "client %u revealed a share of %u it was not asked for", from, o);
            return FEDC_EINVAL;
        }
    }
    for (int j = 0; j < k; j++) {
        size_t at = (size_t)r[j].owner * (size_t)s->size + (size_t)row_pos(s, r[j].owner, from);
        memcpy(s->shares + 32 * at, r[j].share, 32);
        s->got[at] = 1;
    }
    s->flags[from] |= F_REVEALED;
    return FEDC_OK;
}

/* Rebuilds owner's secret from the shares received; FEDC_ERANGE with fewer than t. */
static fedc_err rebuild(fedc_sa_server *s, uint32_t owner, uint8_t out[32], fedc_diag *d) {
    uint8_t xs[FEDC_SA_MAX_NBRS], sh[FEDC_SA_MAX_NBRS * 32];
    int k = 0;
    for (int i = 0; i < s->size && k < s->t; i++) {
        size_t at = (size_t)owner * (size_t)s->size + (size_t)i;
        if (!s->got[at])
            continue;
        xs[k] = (uint8_t)(i + 1);
        memcpy(sh + 32 * k, s->shares + 32 * at, 32);
        k++;
    }
    if (k < s->t) {
        fedc_diag_set(d, "only %d share(s) of client %u's secret came back, %d needed", k, owner,
                      s->t);
        return FEDC_ERANGE;
    }
    fedc_err rc = fedc_shamir_combine(out, sh, 32, k, xs, d);
    sodium_memzero(sh, sizeof sh);
    return rc;
}

fedc_err fedc_sa_server_finish(fedc_sa_server *s, fedc_diag *d) {
    if (!fedc_sa_server_graph_ready(s) || s->n_u3 < s->t) {
        fedc_diag_set(d, "%d masked input(s), the threshold is %d", s->n_u3, s->t);
        return FEDC_ERANGE;
    }
    uint8_t secret[32], pk[32], seed[32];
    fedc_err rc = FEDC_OK;
    for (int o = 0; o < s->n && !rc; o++) {
        uint8_t f = s->flags[o];
        if (f & F_MASKED) {
            if (!(rc = rebuild(s, (uint32_t)o, secret, d)))
                fedc_sa_prg_apply(s->sum, s->len, secret, -1);
            continue;
        }
        if (!(f & F_SHARED))
            continue; /* never in anyone's masks */
        const int *row = fedc_sa_server_nbrs(s, (uint32_t)o);
        int needed = 0;
        for (int i = 0; i < s->size; i++)
            needed |= (s->flags[row[i]] & F_MASKED) != 0;
        if (!needed)
            continue;
        if ((rc = rebuild(s, (uint32_t)o, secret, d)))
            break;
        crypto_scalarmult_base(pk, secret);
        if (sodium_memcmp(pk, s->adv[o].pk_s, 32) != 0) {
            fedc_diag_set(d,
                          "client %u's rebuilt masking key does not match its public key (a "
                          "neighbour revealed a wrong share)",
                          o);
            rc = FEDC_ECHECKSUM;
            break;
        }
        for (int i = 0; i < s->size && !rc; i++) {
            int u = row[i];
            if (u == o || !(s->flags[u] & F_MASKED))
                continue;
            /* u added +PRG(s_uo) when u < o and -PRG otherwise: take it out again. */
            rc = fedc_sa_pair_secret(seed, secret, s->adv[o].pk_s, s->adv[u].pk_s, s->sid);
            if (rc)
                fedc_diag_set(d, "client %d's public key is unusable", u);
            else
                fedc_sa_prg_apply(s->sum, s->len, seed, u < o ? -1 : +1);
        }
    }
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(seed, sizeof seed);
    return rc;
}
