/* The SecAgg+ state machines (contracts in sa_proto.h). */
#include "fedc/sa_proto.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

enum { C_IDLE, C_ADVERTISED, C_SHARED, C_COLLECTED, C_MASKED, C_ABORTED = -1 };
enum { F_SHARED = 1, F_MASKED = 2, F_REVEALED = 4 };

static void put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t fedc_sa_counter(uint32_t round, int attempt, int stage) {
    return round << 10 | ((uint32_t)attempt & 0xffu) << 2 | ((uint32_t)stage & 3u);
}

void fedc_sa_session(uint8_t sid[FEDC_SA_SID_BYTES], const uint8_t run_id[FEDC_SA_RUN_BYTES],
                     uint32_t counter) {
    uint8_t b[4];
    crypto_generichash_state st;
    put_le32(b, counter);
    crypto_generichash_init(&st, NULL, 0, FEDC_SA_SID_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)"fedc-secagg-session", 19);
    crypto_generichash_update(&st, run_id, FEDC_SA_RUN_BYTES);
    crypto_generichash_update(&st, b, 4);
    crypto_generichash_final(&st, sid, FEDC_SA_SID_BYTES);
}

/* ---- client ---------------------------------------------------------------------------------- */

static void client_wipe(fedc_sa_client *c) {
    if (c->enc_key)
        sodium_memzero(c->enc_key, (size_t)c->size * 32);
    if (c->mask_seed)
        sodium_memzero(c->mask_seed, (size_t)c->size * 32);
    if (c->held)
        sodium_memzero(c->held, (size_t)c->size * 64);
    free(c->ids);
    free(c->enc_key);
    free(c->mask_seed);
    free(c->held);
    free(c->in_u2);
    free(c->revealed);
    sodium_memzero(c, sizeof *c);
}

void fedc_sa_client_free(fedc_sa_client *c) {
    client_wipe(c);
}

static fedc_err abort_session(fedc_sa_client *c, fedc_err rc) {
    /* A session that saw a protocol violation answers nothing more. */
    if (c->enc_key)
        sodium_memzero(c->enc_key, (size_t)c->size * 32);
    if (c->mask_seed)
        sodium_memzero(c->mask_seed, (size_t)c->size * 32);
    if (c->held)
        sodium_memzero(c->held, (size_t)c->size * 64);
    sodium_memzero(c->sk_c, 32);
    sodium_memzero(c->sk_s, 32);
    sodium_memzero(c->b, 32);
    c->state = C_ABORTED;
    return rc;
}

fedc_err fedc_sa_client_begin(fedc_sa_client *c, const uint8_t run_id[FEDC_SA_RUN_BYTES],
                              uint32_t counter, const uint8_t *sign_sk, fedc_sa_adv *out,
                              fedc_diag *d) {
    if (sodium_init() < 0) {
        fedc_diag_set(d, "libsodium cannot start");
        return FEDC_EIO;
    }
    client_wipe(c);
    c->counter = counter;
    fedc_sa_session(c->sid, run_id, counter);
    c->run_tag = get_le32(c->sid);
    crypto_box_keypair(c->pk_c, c->sk_c);
    crypto_box_keypair(c->pk_s, c->sk_s);
    memset(out, 0, sizeof *out);
    memcpy(out->pk_c, c->pk_c, 32);
    memcpy(out->pk_s, c->pk_s, 32);
    if (sign_sk)
        fedc_sa_sign_keys(out->sig, sign_sk, counter, c->run_tag, c->pk_c, c->pk_s);
    c->state = C_ADVERTISED;
    return FEDC_OK;
}

static int pos_of(const uint32_t *ids, int size, uint32_t id) {
    int lo = 0, hi = size - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (ids[mid] == id)
            return mid;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

fedc_err fedc_sa_client_share(fedc_sa_client *c, uint32_t me, int t, const uint32_t *ids,
                              const fedc_sa_adv *advs, const uint8_t *const *roster, int size,
                              fedc_sa_sealed *out, fedc_diag *d) {
    if (c->state != C_ADVERTISED) {
        fedc_diag_set(d, "secure aggregation: share keys asked out of order");
        return abort_session(c, FEDC_EINVAL);
    }
    if (size < 1 || size > FEDC_SA_MAX_NBRS || fedc_sa_threshold(size, t) != t) {
        fedc_diag_set(d,
                      "secure aggregation: neighbourhood of %d with threshold %d (need more "
                      "than half, at most all, of at most 255)",
                      size, t);
        return abort_session(c, FEDC_EINVAL);
    }
    for (int i = 1; i < size; i++) {
        if (ids[i] <= ids[i - 1]) {
            fedc_diag_set(d, "secure aggregation: neighbour ids not ascending");
            return abort_session(c, FEDC_EINVAL);
        }
    }
    int mine = pos_of(ids, size, me);
    if (mine < 0 || memcmp(advs[mine].pk_c, c->pk_c, 32) != 0 ||
        memcmp(advs[mine].pk_s, c->pk_s, 32) != 0) {
        fedc_diag_set(d, "secure aggregation: our own keys are missing from the neighbourhood");
        return abort_session(c, FEDC_EINVAL);
    }
    for (int i = 0; i < size; i++) {
        if (i == mine)
            continue;
        if (roster &&
            (!roster[i] || fedc_sa_verify_keys(advs[i].sig, roster[i], c->counter, c->run_tag,
                                               advs[i].pk_c, advs[i].pk_s) != FEDC_OK)) {
            fedc_diag_set(d,
                          "secure aggregation: the round keys relayed for neighbour %u are not "
                          "signed by its identity key",
                          ids[i]);
            return abort_session(c, FEDC_ECHECKSUM);
        }
        if (!memcmp(advs[i].pk_s, c->pk_s, 32) || !memcmp(advs[i].pk_c, c->pk_c, 32)) {
            fedc_diag_set(d, "secure aggregation: neighbour %u carries our own keys", ids[i]);
            return abort_session(c, FEDC_ECHECKSUM);
        }
    }
    size_t sz = (size_t)size;
    c->ids = malloc(4 * sz);
    c->enc_key = malloc(32 * sz);
    c->mask_seed = malloc(32 * sz);
    c->held = calloc(sz, 64);
    c->in_u2 = calloc(sz, 1);
    c->revealed = calloc(sz, 1);
    uint8_t *sh = malloc(64 * sz), xs[FEDC_SA_MAX_NBRS];
    if (!c->ids || !c->enc_key || !c->mask_seed || !c->held || !c->in_u2 || !c->revealed || !sh) {
        free(sh);
        fedc_diag_set(d, "out of memory");
        return abort_session(c, FEDC_ENOMEM);
    }
    memcpy(c->ids, ids, 4 * sz);
    c->me = me;
    c->size = size;
    c->t = t;
    for (int i = 0; i < size; i++) {
        xs[i] = (uint8_t)(i + 1);
        if (i == mine)
            continue;
        if (fedc_sa_pair_secret(c->enc_key + 32 * i, c->sk_c, c->pk_c, advs[i].pk_c, c->sid) ||
            fedc_sa_pair_secret(c->mask_seed + 32 * i, c->sk_s, c->pk_s, advs[i].pk_s, c->sid)) {
            free(sh);
            fedc_diag_set(d, "secure aggregation: neighbour %u sent an unusable public key",
                          ids[i]);
            return abort_session(c, FEDC_ECHECKSUM);
        }
    }
    randombytes_buf(c->b, 32);
    /* sh[i] = (b share, key share) for the holder at position i, x-coordinate i + 1. */
    uint8_t *tmp = malloc(32 * sz);
    if (!tmp) {
        free(sh);
        fedc_diag_set(d, "out of memory");
        return abort_session(c, FEDC_ENOMEM);
    }
    fedc_err rc = fedc_shamir_split(tmp, c->b, 32, t, size, xs, d);
    for (int i = 0; !rc && i < size; i++)
        memcpy(sh + 64 * i, tmp + 32 * i, 32);
    if (!rc)
        rc = fedc_shamir_split(tmp, c->sk_s, 32, t, size, xs, d);
    for (int i = 0; !rc && i < size; i++)
        memcpy(sh + 64 * i + 32, tmp + 32 * i, 32);
    sodium_memzero(tmp, 32 * sz);
    free(tmp);
    if (rc) {
        sodium_memzero(sh, 64 * sz);
        free(sh);
        return abort_session(c, rc);
    }
    int k = 0;
    for (int i = 0; i < size; i++) {
        if (i == mine) {
            memcpy(c->held + 64 * i, sh + 64 * i, 64);
            c->in_u2[i] = 1;
            continue;
        }
        uint8_t plain[FEDC_SA_SHARE_PLAIN];
        put_le32(plain, me);
        put_le32(plain + 4, ids[i]);
        memcpy(plain + 8, sh + 64 * i, 64);
        out[k].from = me;
        out[k].to = ids[i];
        fedc_sa_seal(out[k].ct, plain, sizeof plain, c->enc_key + 32 * i, c->sid, me, ids[i]);
        sodium_memzero(plain, sizeof plain);
        k++;
    }
    sodium_memzero(sh, 64 * sz);
    free(sh);
    c->state = C_SHARED;
    return FEDC_OK;
}

fedc_err fedc_sa_client_collect(fedc_sa_client *c, const fedc_sa_sealed *in, int k, fedc_diag *d) {
    if (c->state != C_SHARED) {
        fedc_diag_set(d, "secure aggregation: neighbours' shares arrived out of order");
        return abort_session(c, FEDC_EINVAL);
    }
    int mine = pos_of(c->ids, c->size, c->me);
    for (int j = 0; j < k; j++) {
        int p = pos_of(c->ids, c->size, in[j].from);
        if (in[j].to != c->me || p < 0 || p == mine || c->in_u2[p]) {
            fedc_diag_set(d,
                          "secure aggregation: a share from %u to %u is not one of ours (or came "
                          "twice)",
                          in[j].from, in[j].to);
            return abort_session(c, FEDC_EINVAL);
        }
        uint8_t plain[FEDC_SA_SHARE_PLAIN];
        if (fedc_sa_open(plain, in[j].ct, FEDC_SA_SHARE_CT, c->enc_key + 32 * p, c->sid, in[j].from,
                         c->me) != FEDC_OK ||
            get_le32(plain) != in[j].from || get_le32(plain + 4) != c->me) {
            sodium_memzero(plain, sizeof plain);
            fedc_diag_set(d,
                          "secure aggregation: the share from neighbour %u does not open for this "
                          "session (replayed or forged)",
                          in[j].from);
            return abort_session(c, FEDC_ECHECKSUM);
        }
        memcpy(c->held + 64 * p, plain + 8, 64);
        sodium_memzero(plain, sizeof plain);
        c->in_u2[p] = 1;
    }
    int alive = 0;
    for (int i = 0; i < c->size; i++)
        alive += c->in_u2[i];
    c->state = C_COLLECTED;
    if (alive < c->t) {
        fedc_diag_set(d,
                      "secure aggregation: only %d of our %d neighbours remain, the threshold is "
                      "%d; our input is withheld",
                      alive, c->size, c->t);
        return abort_session(c, FEDC_ERANGE);
    }
    return FEDC_OK;
}

fedc_err fedc_sa_client_mask(fedc_sa_client *c, uint32_t *v, size_t n, fedc_diag *d) {
    if (c->state != C_COLLECTED) {
        fedc_diag_set(d, "secure aggregation: masking asked out of order");
        return abort_session(c, FEDC_EINVAL);
    }
    fedc_sa_prg_apply(v, n, c->b, +1);
    for (int i = 0; i < c->size; i++) {
        if (!c->in_u2[i] || c->ids[i] == c->me)
            continue;
        fedc_sa_prg_apply(v, n, c->mask_seed + 32 * i, c->me < c->ids[i] ? +1 : -1);
    }
    /* The masks are spent: only the shares we hold for others are still needed. */
    sodium_memzero(c->mask_seed, (size_t)c->size * 32);
    sodium_memzero(c->enc_key, (size_t)c->size * 32);
    sodium_memzero(c->b, 32);
    sodium_memzero(c->sk_s, 32);
    sodium_memzero(c->sk_c, 32);
    c->state = C_MASKED;
    return FEDC_OK;
}

fedc_err fedc_sa_client_unmask(fedc_sa_client *c, const uint32_t *survivors, int n_surv,
                               const uint32_t *dropped, int n_drop, fedc_sa_reveal *out, int *n_out,
                               fedc_diag *d) {
    *n_out = 0;
    if (c->state != C_MASKED) {
        fedc_diag_set(d, "secure aggregation: unmask asked out of order");
        return abort_session(c, FEDC_EINVAL);
    }
    uint8_t ask[FEDC_SA_MAX_NBRS] = {0};
    int in_u2 = 0, me_survives = 0;
    for (int i = 0; i < c->size; i++)
        in_u2 += c->in_u2[i];
    for (int l = 0; l < 2; l++) {
        const uint32_t *list = l == 0 ? survivors : dropped;
        int m = l == 0 ? n_surv : n_drop, kind = l == 0 ? FEDC_SA_REVEAL_B : FEDC_SA_REVEAL_SK;
        for (int j = 0; j < m; j++) {
            int p = pos_of(c->ids, c->size, list[j]);
            if (p < 0 || !c->in_u2[p]) {
                fedc_diag_set(d,
                              "secure aggregation: unmask names %u, not a neighbour in this "
                              "round",
                              list[j]);
                return abort_session(c, FEDC_EINVAL);
            }
            if (ask[p]) {
                fedc_diag_set(d,
                              "secure aggregation: unmask names neighbour %u twice (both share "
                              "kinds of one peer would reveal its input); refused",
                              list[j]);
                return abort_session(c, FEDC_EINVAL);
            }
            if (c->revealed[p] && c->revealed[p] != kind) {
                fedc_diag_set(d,
                              "secure aggregation: the other share kind of neighbour %u was "
                              "revealed already; refused",
                              list[j]);
                return abort_session(c, FEDC_EINVAL);
            }
            ask[p] = (uint8_t)kind;
            me_survives |= l == 0 && list[j] == c->me;
        }
    }
    if (!me_survives || n_surv + n_drop != in_u2 || n_surv < c->t) {
        fedc_diag_set(d,
                      "secure aggregation: unmask lists %d survivor(s) and %d dropped of our %d "
                      "neighbours in the round (we must survive, all must be listed, at least %d "
                      "must survive); refused",
                      n_surv, n_drop, in_u2, c->t);
        return abort_session(c, FEDC_EINVAL);
    }
    int k = 0;
    for (int i = 0; i < c->size; i++) {
        if (!ask[i])
            continue;
        c->revealed[i] = ask[i];
        out[k].owner = c->ids[i];
        out[k].kind = ask[i];
        memcpy(out[k].share, c->held + 64 * i + (ask[i] == FEDC_SA_REVEAL_B ? 0 : 32), 32);
        k++;
    }
    *n_out = k;
    return FEDC_OK;
}

/* ---- coordinator ----------------------------------------------------------------------------- */

void fedc_sa_server_free(fedc_sa_server *s) {
    fedc_sa_graph_free(&s->g);
    if (s->shares)
        sodium_memzero(s->shares, (size_t)s->n * (size_t)s->size * 32);
    free(s->adv);
    free(s->flags);
    free(s->box);
    free(s->box_ok);
    free(s->shares);
    free(s->got);
    free(s->sum);
    memset(s, 0, sizeof *s);
}

fedc_err fedc_sa_server_new(fedc_sa_server *s, int n, int h, int t_req, uint64_t seed,
                            const uint8_t run_id[FEDC_SA_RUN_BYTES], uint32_t counter,
                            const fedc_sa_adv *adv, size_t len, fedc_diag *d) {
    memset(s, 0, sizeof *s);
    if (sodium_init() < 0) {
        fedc_diag_set(d, "libsodium cannot start");
        return FEDC_EIO;
    }
    if (n < 1 || n > 65536) {
        fedc_diag_set(d, "secure aggregation: %d clients, expected 1..65536", n);
        return FEDC_EINVAL;
    }
    fedc_err rc = fedc_sa_graph_make(&s->g, n, h, seed, counter, d);
    if (rc)
        return rc;
    s->n = n;
    s->size = s->g.size;
    if (s->size > FEDC_SA_MAX_NBRS) {
        fedc_diag_set(d,
                      "secure aggregation: neighbourhoods of %d exceed 255; lower "
                      "--secagg-neighbours",
                      s->size);
        fedc_sa_server_free(s);
        return FEDC_EINVAL;
    }
    s->t = fedc_sa_threshold(s->size, t_req);
    if (s->t < 0) {
        fedc_diag_set(d,
                      "secure aggregation: threshold %d does not fit neighbourhoods of %d (more "
                      "than half, at most all)",
                      t_req, s->size);
        fedc_sa_server_free(s);
        return FEDC_EINVAL;
    }
    fedc_sa_session(s->sid, run_id, counter);
    size_t ns = (size_t)n * (size_t)s->size;
    s->adv = malloc(sizeof *s->adv * (size_t)n);
    s->flags = calloc((size_t)n, 1);
    s->box = malloc(sizeof *s->box * ns);
    s->box_ok = calloc(ns, 1);
    s->shares = malloc(32 * ns);
    s->got = calloc(ns, 1);
    s->sum = calloc(len ? len : 1, 4);
    if (!s->adv || !s->flags || !s->box || !s->box_ok || !s->shares || !s->got || !s->sum) {
        fedc_sa_server_free(s);
        fedc_diag_set(d, "out of memory for a secure-aggregation session");
        return FEDC_ENOMEM;
    }
    memcpy(s->adv, adv, sizeof *adv * (size_t)n);
    s->len = len;
    return FEDC_OK;
}

int fedc_sa_server_in_u2(const fedc_sa_server *s, uint32_t id) {
    return id < (uint32_t)s->n && (s->flags[id] & F_SHARED) != 0;
}

int fedc_sa_server_in_u3(const fedc_sa_server *s, uint32_t id) {
    return id < (uint32_t)s->n && (s->flags[id] & F_MASKED) != 0;
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
    if (from >= (uint32_t)s->n || (s->flags[from] & F_SHARED)) {
        fedc_diag_set(d, "secure aggregation: shares from client %u not expected", from);
        return FEDC_EINVAL;
    }
    if (k != s->size - 1) {
        fedc_diag_set(d, "secure aggregation: %d shares, expected one per neighbour (%d)", k,
                      s->size - 1);
        return FEDC_EINVAL;
    }
    uint8_t seen[FEDC_SA_MAX_NBRS] = {0};
    for (int j = 0; j < k; j++) {
        int p = in[j].to < (uint32_t)s->n ? row_pos(s, from, in[j].to) : -1;
        if (in[j].from != from || in[j].to == from || p < 0 || seen[p]) {
            fedc_diag_set(d,
                          "secure aggregation: share %d (from %u to %u) does not fit client "
                          "%u's neighbourhood",
                          j, in[j].from, in[j].to, from);
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
        fedc_diag_set(d, "secure aggregation: a masked input from client %u is not expected", from);
        return FEDC_EINVAL;
    }
    uint32_t *sum = s->sum;
    for (size_t i = 0; i < s->len; i++)
        sum[i] += y[i];
    s->flags[from] |= F_MASKED;
    s->n_u3++;
    return FEDC_OK;
}

void fedc_sa_server_unmask_lists(const fedc_sa_server *s, uint32_t id, uint32_t *surv, int *n_surv,
                                 uint32_t *dropped, int *n_drop) {
    const int *row = fedc_sa_server_nbrs(s, id);
    *n_surv = *n_drop = 0;
    for (int i = 0; i < s->size; i++) {
        uint8_t f = s->flags[row[i]];
        if (f & F_MASKED)
            surv[(*n_surv)++] = (uint32_t)row[i];
        else if (f & F_SHARED)
            dropped[(*n_drop)++] = (uint32_t)row[i];
    }
}

fedc_err fedc_sa_server_reveal(fedc_sa_server *s, uint32_t from, const fedc_sa_reveal *r, int k,
                               fedc_diag *d) {
    if (from >= (uint32_t)s->n || !(s->flags[from] & F_MASKED) || (s->flags[from] & F_REVEALED)) {
        fedc_diag_set(d, "secure aggregation: unmask answer from client %u not expected", from);
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
            fedc_diag_set(d,
                          "secure aggregation: client %u revealed a share of %u it was not "
                          "asked for",
                          from, o);
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
        fedc_diag_set(d,
                      "secure aggregation: only %d share(s) of client %u's secret came back, %d "
                      "needed",
                      k, owner, s->t);
        return FEDC_ERANGE;
    }
    fedc_err rc = fedc_shamir_combine(out, sh, 32, k, xs, d);
    sodium_memzero(sh, sizeof sh);
    return rc;
}

fedc_err fedc_sa_server_finish(fedc_sa_server *s, fedc_diag *d) {
    if (s->n_u3 < s->t) {
        fedc_diag_set(d, "secure aggregation: %d masked input(s), the threshold is %d", s->n_u3,
                      s->t);
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
                          "secure aggregation: client %u's rebuilt masking key does not match "
                          "its public key (a neighbour revealed a wrong share)",
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
                fedc_diag_set(d, "secure aggregation: client %d's public key is unusable", u);
            else
                fedc_sa_prg_apply(s->sum, s->len, seed, u < o ? -1 : +1);
        }
    }
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

/* ---- wide fixed point ------------------------------------------------------------------------ */

fedc_err fedc_sa_wide_put(uint32_t out[FEDC_SA_WIDE_SLOTS], double v) {
    if (!isfinite(v) || fabs(v) >= 0x1p94) {
        memset(out, 0, 4 * FEDC_SA_WIDE_SLOTS);
        return FEDC_ERANGE;
    }
    double m = nearbyint(fabs(v) * 0x1p32);
    uint32_t limb[FEDC_SA_WIDE_SLOTS];
    for (int i = 0; i < FEDC_SA_WIDE_SLOTS; i++) {
        /* Exact: scaling by a power of two, floor and fmod of a double lose nothing. */
        limb[i] = (uint32_t)fmod(floor(ldexp(m, -16 * i)), 65536.0);
    }
    if (v < 0) { /* two's complement over 128 bits */
        uint32_t carry = 1;
        for (int i = 0; i < FEDC_SA_WIDE_SLOTS; i++) {
            uint32_t x = (~limb[i] & 0xffffu) + carry;
            limb[i] = x & 0xffffu;
            carry = x >> 16;
        }
    }
    memcpy(out, limb, sizeof limb);
    return FEDC_OK;
}

double fedc_sa_wide_get(const uint32_t s[FEDC_SA_WIDE_SLOTS]) {
    uint32_t limb[FEDC_SA_WIDE_SLOTS];
    uint64_t carry = 0;
    for (int i = 0; i < FEDC_SA_WIDE_SLOTS; i++) {
        uint64_t x = (uint64_t)s[i] + carry;
        limb[i] = (uint32_t)(x & 0xffffu);
        carry = x >> 16;
    }
    int neg = (limb[FEDC_SA_WIDE_SLOTS - 1] & 0x8000u) != 0;
    if (neg) {
        uint32_t c = 1;
        for (int i = 0; i < FEDC_SA_WIDE_SLOTS; i++) {
            uint32_t x = (~limb[i] & 0xffffu) + c;
            limb[i] = x & 0xffffu;
            c = x >> 16;
        }
    }
    double v = 0;
    for (int i = FEDC_SA_WIDE_SLOTS - 1; i >= 0; i--)
        v += ldexp((double)limb[i], 16 * i - 32);
    return neg ? -v : v;
}
