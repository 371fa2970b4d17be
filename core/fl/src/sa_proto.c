/* What both sides of the SecAgg+ protocol compute the same way (sa_proto.h has the contracts,
 * docs/security.md the argument): the session counter and id, the digests that signatures cover,
 * commitments, the drawn graph. The client is sa_client.c, the coordinator sa_server.c. */
#include "fedc/sa_proto.h"
#include "sa_int.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fedc__sa_put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v) {
    fedc__sa_put_le32(p, (uint32_t)v);
    fedc__sa_put_le32(p + 4, (uint32_t)(v >> 32));
}

uint32_t fedc__sa_get_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void hash_u32(crypto_generichash_state *st, uint32_t v) {
    uint8_t b[4];
    fedc__sa_put_le32(b, v);
    crypto_generichash_update(st, b, 4);
}

/* A string with its length in front, so that concatenations cannot collide. */
static void hash_str(crypto_generichash_state *st, const char *s) {
    size_t len = strlen(s);
    hash_u32(st, (uint32_t)len);
    crypto_generichash_update(st, (const uint8_t *)s, len);
}

uint64_t fedc_sa_counter(uint32_t round, uint32_t attempt, int stage) {
    return (uint64_t)round << 32 | (uint64_t)((uint32_t)stage & 0xffu) << 24 |
           (uint64_t)(attempt & FEDC_SA_MAX_ATTEMPT);
}

uint32_t fedc_sa_counter_round(uint64_t counter) {
    return (uint32_t)(counter >> 32);
}

int fedc_sa_counter_stage(uint64_t counter) {
    return (int)((counter >> 24) & 0xffu);
}

void fedc_sa_session(uint8_t sid[FEDC_SA_SID_BYTES], const uint8_t run_id[FEDC_SA_RUN_BYTES],
                     uint64_t counter) {
    uint8_t b[8];
    crypto_generichash_state st;
    put_le64(b, counter);
    crypto_generichash_init(&st, NULL, 0, FEDC_SA_SID_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)"fedc-secagg-session", 19);
    crypto_generichash_update(&st, run_id, FEDC_SA_RUN_BYTES);
    crypto_generichash_update(&st, b, 8);
    crypto_generichash_final(&st, sid, FEDC_SA_SID_BYTES);
}

int fedc_sa_threshold_floor(int size) {
    int t = size / 2 + 1;
    return t < 2 ? 2 : t;
}

int fedc_sa_fewest_in_sum(int min_nbrs) {
    return fedc_sa_threshold_floor(min_nbrs < 1 ? FEDC_SA_MIN_NBRS_DEFAULT : min_nbrs);
}

int fedc__sa_default_h(int n, int h) {
    if (h > 0)
        return h;
    h = 0;
    while ((1 << h) < n)
        h++; /* ceil(log2 n) */
    return h;
}

int fedc_sa_graph_mode(int n, int h) {
    return 2 * (int64_t)fedc__sa_default_h(n, h) + 1 < n;
}

/* The message an advertisement signs: the domain, the session id (run and full counter), the
 * signer's name, both round keys and the commitment. */
void fedc__sa_adv_digest(uint8_t out[32], const uint8_t run_id[FEDC_SA_RUN_BYTES], uint64_t counter,
                         const char *name, const fedc_sa_adv *adv) {
    uint8_t sid[FEDC_SA_SID_BYTES];
    crypto_generichash_state st;
    fedc_sa_session(sid, run_id, counter);
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"fedc-secagg-keys-v2", 19);
    crypto_generichash_update(&st, sid, sizeof sid);
    hash_str(&st, name);
    crypto_generichash_update(&st, adv->pk_c, 32);
    crypto_generichash_update(&st, adv->pk_s, 32);
    crypto_generichash_update(&st, adv->commit, 32);
    crypto_generichash_final(&st, out, 32);
}

fedc_err fedc_sa_adv_verify(const fedc_sa_adv *adv, const uint8_t sign_pk[32],
                            const uint8_t run_id[FEDC_SA_RUN_BYTES], uint64_t counter,
                            const char *name) {
    uint8_t m[32];
    if (sodium_init() < 0)
        return FEDC_EIO;
    fedc__sa_adv_digest(m, run_id, counter, name, adv);
    return crypto_sign_verify_detached(adv->sig, m, sizeof m, sign_pk) == 0 ? FEDC_OK
                                                                            : FEDC_ECHECKSUM;
}

void fedc__sa_commit_of(uint8_t out[32], const uint8_t r[32]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"fedc-secagg-commit", 18);
    crypto_generichash_update(&st, r, 32);
    crypto_generichash_final(&st, out, 32);
}

void fedc_sa_commits_digest(uint8_t out[32], const uint8_t *commits, int n) {
    crypto_generichash_state st;
    uint8_t nb[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"fedc-secagg-commits", 19);
    crypto_generichash_update(&st, nb, 4);
    crypto_generichash_update(&st, commits, 32 * (size_t)n);
    crypto_generichash_final(&st, out, 32);
}

/* The graph of a session in graph mode: a seed hashed from every participant's name, commitment
 * and reveal (in session order) with the session id, n and h; the ring is shuffled by it. */
fedc_err fedc__sa_draw_graph(fedc_sa_graph *g, const uint8_t sid[FEDC_SA_SID_BYTES], int n, int h,
                             const char *names, const uint8_t *commits, const uint8_t *reveals,
                             uint8_t seed_out[32], fedc_diag *d) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"fedc-secagg-graph", 17);
    crypto_generichash_update(&st, sid, FEDC_SA_SID_BYTES);
    hash_u32(&st, (uint32_t)n);
    hash_u32(&st, (uint32_t)h);
    for (int i = 0; i < n; i++) {
        hash_str(&st, names + (size_t)i * NAME_SLOT);
        crypto_generichash_update(&st, commits + 32 * (size_t)i, 32);
        crypto_generichash_update(&st, reveals + 32 * (size_t)i, 32);
    }
    crypto_generichash_final(&st, seed_out, 32);
    uint64_t s64 = (uint64_t)fedc__sa_get_le32(seed_out) | (uint64_t)fedc__sa_get_le32(seed_out + 4)
                                                               << 32;
    return fedc_sa_graph_make(g, n, h, s64, fedc__sa_get_le32(seed_out + 8), d);
}

/* The view digest the consistency signatures cover: the session, threshold, n, h, every
 * participant's name in session order and the graph seed (zero outside graph mode). Two clients
 * with the same view hold the same participant list, threshold and graph. */
void fedc__sa_view_digest(uint8_t out[32], const uint8_t sid[FEDC_SA_SID_BYTES], int t, int n,
                          int h, const char *names, const uint8_t seed[32]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"fedc-secagg-view", 16);
    crypto_generichash_update(&st, sid, FEDC_SA_SID_BYTES);
    hash_u32(&st, (uint32_t)t);
    hash_u32(&st, (uint32_t)n);
    hash_u32(&st, (uint32_t)h);
    for (int i = 0; i < n; i++)
        hash_str(&st, names + (size_t)i * NAME_SLOT);
    crypto_generichash_update(&st, seed, 32);
    crypto_generichash_final(&st, out, 32);
}

void fedc__sa_consist_digest(uint8_t out[32], const uint8_t sid[FEDC_SA_SID_BYTES], uint32_t id,
                             const uint8_t view[32], const uint32_t *u3, int n_u3) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"fedc-secagg-consistency", 23);
    crypto_generichash_update(&st, sid, FEDC_SA_SID_BYTES);
    hash_u32(&st, id);
    crypto_generichash_update(&st, view, 32);
    hash_u32(&st, (uint32_t)n_u3);
    for (int i = 0; i < n_u3; i++)
        hash_u32(&st, u3[i]);
    crypto_generichash_final(&st, out, 32);
}

fedc_err fedc_sa_consist_verify(const uint8_t sig[FEDC_SA_SIG_BYTES], const uint8_t sign_pk[32],
                                const uint8_t sid[FEDC_SA_SID_BYTES], uint32_t id,
                                const uint8_t view[32], const uint32_t *u3, int n_u3) {
    uint8_t m[32];
    if (sodium_init() < 0)
        return FEDC_EIO;
    fedc__sa_consist_digest(m, sid, id, view, u3, n_u3);
    return crypto_sign_verify_detached(sig, m, sizeof m, sign_pk) == 0 ? FEDC_OK : FEDC_ECHECKSUM;
}

fedc_err fedc__sa_copy_names(char **dst, const char *const *names, int n, fedc_diag *d) {
    *dst = calloc((size_t)n, NAME_SLOT);
    if (!*dst) {
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        if (!names[i] || strlen(names[i]) > FEDC_SA_NAME_MAX) {
            fedc_diag_set(d, "participant %d has no name or one longer than %d bytes", i,
                          FEDC_SA_NAME_MAX);
            return FEDC_EINVAL;
        }
        memcpy(*dst + (size_t)i * NAME_SLOT, names[i], strlen(names[i]));
    }
    return FEDC_OK;
}
