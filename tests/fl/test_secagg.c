/* Secure-aggregation maths (docs/security.md, "Tests that prove it"): masks cancel exactly, the
 * masked sum decodes to the plain sum of the quantised inputs bit for bit, PRG(s_uv) == PRG(s_vu),
 * Shamir t-of-n reconstructs and t-1 does not, bad x-coordinates are refused, stochastic
 * rounding is unbiased within 1/s, n_max clients at +-c do not wrap, and sealed shares fail to
 * open under another session, sender, receiver or key. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "fedc/sa_proto.h"
#include "fedc/secagg.h"

#define N_CLIENTS 5
#define DIM 3001 /* not a multiple of the key-stream chunk */

static void test_pair_secret_symmetric(void **state) {
    (void)state;
    assert_true(sodium_init() >= 0);
    uint8_t pa[32], sa[32], pb[32], sb[32], sid[32], s1[32], s2[32], s3[32];
    crypto_box_keypair(pa, sa);
    crypto_box_keypair(pb, sb);
    randombytes_buf(sid, sizeof sid);
    assert_int_equal(fedc_sa_pair_secret(s1, sa, pa, pb, sid), FEDC_OK);
    assert_int_equal(fedc_sa_pair_secret(s2, sb, pb, pa, sid), FEDC_OK);
    assert_memory_equal(s1, s2, 32);
    /* The same keys in another session give another secret. */
    sid[0] ^= 1;
    assert_int_equal(fedc_sa_pair_secret(s3, sa, pa, pb, sid), FEDC_OK);
    assert_memory_not_equal(s1, s3, 32);
    /* A low-order public key (all zeros) is refused, never used. */
    uint8_t zero[32] = {0};
    assert_int_equal(fedc_sa_pair_secret(s3, sa, pa, zero, sid), FEDC_EINVAL);
    /* PRG(s_uv) == PRG(s_vu), and it is not the zero stream. */
    uint32_t u[DIM] = {0}, v[DIM] = {0};
    fedc_sa_prg_apply(u, DIM, s1, +1);
    fedc_sa_prg_apply(v, DIM, s2, +1);
    assert_memory_equal(u, v, sizeof u);
    int nonzero = 0;
    for (int i = 0; i < DIM; i++)
        nonzero += u[i] != 0;
    assert_true(nonzero > DIM - 5);
}

/* The key stream is ChaCha20-IETF (zero nonce) read little-endian, whatever the chunking. */
static void test_prg_matches_libsodium(void **state) {
    (void)state;
    uint8_t seed[32], nonce[12] = {0};
    randombytes_buf(seed, sizeof seed);
    enum { M = 70000 }; /* crosses the threaded threshold and many chunks */
    uint8_t *ks = malloc(4 * M);
    uint32_t *v = calloc(M, 4);
    assert_non_null(ks);
    assert_non_null(v);
    crypto_stream_chacha20_ietf(ks, 4 * M, nonce, seed);
    fedc_sa_prg_apply(v, M, seed, +1);
    for (int i = 0; i < M; i++) {
        uint32_t w = (uint32_t)ks[4 * i] | (uint32_t)ks[4 * i + 1] << 8 |
                     (uint32_t)ks[4 * i + 2] << 16 | (uint32_t)ks[4 * i + 3] << 24;
        if (v[i] != w)
            fail_msg("value %d: %u, key stream %u", i, v[i], w);
    }
    fedc_sa_prg_apply(v, M, seed, -1);
    for (int i = 0; i < M; i++)
        assert_int_equal(v[i], 0);
    free(ks);
    free(v);
}

/* Five clients, pairwise masks (+ when u < v) and self masks: with zero inputs the masked sum is
 * exactly zero after the self masks are removed; with real inputs it decodes to the plain sum of
 * the quantised inputs, bit for bit. */
static void test_masks_cancel_and_sum_exact(void **state) {
    (void)state;
    uint8_t pk[N_CLIENTS][32], sk[N_CLIENTS][32], self_seed[N_CLIENTS][32], sid[32];
    uint8_t run[FEDC_SA_RUN_BYTES] = {1, 2, 3};
    for (int u = 0; u < N_CLIENTS; u++) {
        crypto_box_keypair(pk[u], sk[u]);
        randombytes_buf(self_seed[u], 32);
    }
    fedc_sa_session(sid, run, 7);
    fedc_sa_quant q;
    fedc_diag d;
    assert_int_equal(fedc_sa_quant_make(&q, 1024, 1.0f, &d), FEDC_OK);
    assert_int_equal(q.bits, 22);
    for (int pass = 0; pass < 2; pass++) {
        uint32_t masked_sum[DIM] = {0}, plain_sum[DIM] = {0};
        for (int u = 0; u < N_CLIENTS; u++) {
            float x[DIM];
            for (int i = 0; i < DIM; i++)
                x[i] = pass == 0 ? 0.0f : (float)sin(0.01 * i + u) * 0.9f;
            uint32_t y[DIM];
            assert_int_equal(fedc_sa_quantise(y, x, DIM, &q, &d), FEDC_OK);
            for (int i = 0; i < DIM; i++)
                plain_sum[i] += y[i];
            fedc_sa_prg_apply(y, DIM, self_seed[u], +1);
            for (int v = 0; v < N_CLIENTS; v++) {
                if (v == u)
                    continue;
                uint8_t s[32];
                assert_int_equal(fedc_sa_pair_secret(s, sk[u], pk[u], pk[v], sid), FEDC_OK);
                fedc_sa_prg_apply(y, DIM, s, u < v ? +1 : -1);
            }
            for (int i = 0; i < DIM; i++)
                masked_sum[i] += y[i];
        }
        /* The coordinator removes the self masks (reconstructed from shares in the protocol). */
        for (int u = 0; u < N_CLIENTS; u++)
            fedc_sa_prg_apply(masked_sum, DIM, self_seed[u], -1);
        assert_memory_equal(masked_sum, plain_sum, sizeof plain_sum);
        if (pass == 0)
            for (int i = 0; i < DIM; i++)
                assert_int_equal(masked_sum[i], 0);
        else { /* and the decoded sum is the float sum within n / s */
            float dec[DIM];
            fedc_sa_decode(dec, masked_sum, DIM, &q);
            for (int i = 0; i < DIM; i++) {
                double want = 0;
                for (int u = 0; u < N_CLIENTS; u++)
                    want += (double)((float)sin(0.01 * i + u) * 0.9f);
                assert_true(fabs(dec[i] - want) <= N_CLIENTS / q.scale + 1e-6);
            }
        }
    }
}

/* Unbiased stochastic rounding: each value within 1/s; the mean error over many draws near 0. */
static void test_quantisation(void **state) {
    (void)state;
    fedc_sa_quant q;
    fedc_diag d;
    assert_int_equal(fedc_sa_quant_make(&q, 1000, 0.5f, &d), FEDC_OK);
    assert_int_equal(q.bits, 22); /* ceil(log2 1000) = 10 */
    enum { M = 200000 };
    float *x = malloc(sizeof(float) * M), *back = malloc(sizeof(float) * M);
    uint32_t *y = malloc(sizeof(uint32_t) * M);
    assert_non_null(x);
    assert_non_null(back);
    assert_non_null(y);
    const float v = 0.1234567f; /* between two grid points */
    for (int i = 0; i < M; i++)
        x[i] = v;
    assert_int_equal(fedc_sa_quantise(y, x, M, &q, &d), FEDC_OK);
    fedc_sa_decode(back, y, M, &q);
    double mean = 0;
    for (int i = 0; i < M; i++) {
        assert_true(fabs((double)back[i] - v) <= 1.0 / q.scale + 1e-9);
        /* The unbiasedness is the quantiser's, on the integers: the float that fedc_sa_decode
         * returns rounds each grid point to a float, a fixed error of up to half an ulp (about
         * 4e-9 here) that is larger than the bound below and made this check fail about one
         * run in 30. */
        mean += (double)(int32_t)y[i] / q.scale - (double)v;
    }
    mean /= M;
    /* A deterministic rounding would be off by up to 0.5/s every time; the mean of M unbiased
     * draws is within a few standard errors (sd <= 0.5/s) of 0. */
    assert_true(fabs(mean) < 5.0 * 0.5 / q.scale / sqrt((double)M));
    /* Clipping and refusal of non-finite values. */
    x[0] = 7.0f;
    x[1] = -7.0f;
    x[2] = NAN;
    assert_int_equal(fedc_sa_quantise(y, x, 2, &q, &d), FEDC_OK);
    assert_int_equal((int32_t)y[0], (int32_t)floor(q.scale * 0.5));
    assert_int_equal(fedc_sa_quantise(y, x, 3, &q, &d), FEDC_ERANGE);
    assert_non_null(strstr(d.msg, "value 2 is not finite"));
    free(x);
    free(back);
    free(y);
}

/* n_max clients all at +c (and all at -c) sum without wrapping. */
static void test_no_wrap_at_capacity(void **state) {
    (void)state;
    const uint32_t nmax[] = {1, 2, 3, 1000, 1024, 1025, 1u << 20};
    for (size_t k = 0; k < sizeof nmax / sizeof nmax[0]; k++) {
        fedc_sa_quant q;
        fedc_diag d;
        assert_int_equal(fedc_sa_quant_make(&q, nmax[k], 2.0f, &d), FEDC_OK);
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            float x = 2.0f * (float)sgn;
            uint32_t y;
            assert_int_equal(fedc_sa_quantise(&y, &x, 1, &q, &d), FEDC_OK);
            uint32_t sum = 0;
            for (uint32_t i = 0; i < nmax[k]; i++)
                sum += y;
            float back;
            fedc_sa_decode(&back, &sum, 1, &q);
            double want = (double)nmax[k] * x;
            if (fabs(back - want) > fabs(want) * 1e-5 + nmax[k] / q.scale)
                fail_msg("n_max %u sign %d: decoded %g, want %g", nmax[k], sgn, (double)back, want);
        }
    }
    fedc_sa_quant q;
    fedc_diag d;
    assert_int_equal(fedc_sa_quant_make(&q, 0, 1.0f, &d), FEDC_EINVAL);
    assert_int_equal(fedc_sa_quant_make(&q, 10, 0.0f, &d), FEDC_EINVAL);
}

static void test_shamir(void **state) {
    (void)state;
    uint8_t secret[32], back[32];
    randombytes_buf(secret, sizeof secret);
    const int n = 7, t = 4;
    uint8_t xs[7] = {1, 2, 3, 4, 5, 6, 255};
    uint8_t shares[7 * 32];
    fedc_diag d;
    assert_int_equal(fedc_shamir_split(shares, secret, 32, t, n, xs, &d), FEDC_OK);
    /* Every t-subset (and every larger one) reconstructs. */
    int subsets = 0;
    for (unsigned mask = 0; mask < (1u << n); mask++) {
        int k = __builtin_popcount(mask);
        if (k < t - 1)
            continue;
        uint8_t sx[7], ss[7 * 32];
        int m = 0;
        for (int i = 0; i < n; i++) {
            if (mask & (1u << i)) {
                sx[m] = xs[i];
                memcpy(ss + 32 * m, shares + 32 * i, 32);
                m++;
            }
        }
        assert_int_equal(fedc_shamir_combine(back, ss, 32, m, sx, &d), FEDC_OK);
        if (k >= t) {
            assert_memory_equal(back, secret, 32);
            subsets++;
        } else { /* t-1 shares: the 32-byte secret does not come back */
            assert_memory_not_equal(back, secret, 32);
        }
    }
    assert_int_equal(subsets, 35 + 21 + 7 + 1);
    /* Zero and repeated x-coordinates are refused. */
    uint8_t bad[3] = {1, 0, 2}, dup[3] = {1, 2, 2};
    assert_int_equal(fedc_shamir_split(shares, secret, 32, 2, 3, bad, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "is 0"));
    assert_int_equal(fedc_shamir_combine(back, shares, 32, 3, dup, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "twice"));
    assert_int_equal(fedc_shamir_split(shares, secret, 32, 4, 3, xs, &d), FEDC_EINVAL);
    /* t = 1 is plain replication, t = n needs every share. */
    assert_int_equal(fedc_shamir_split(shares, secret, 32, 1, 3, xs, &d), FEDC_OK);
    assert_memory_equal(shares + 64, secret, 32);
}

static void test_seal(void **state) {
    (void)state;
    uint8_t key[32], other[32], sid[32], msg[48], box[48 + FEDC_SA_SEAL_OVERHEAD], out[48];
    randombytes_buf(key, sizeof key);
    randombytes_buf(other, sizeof other);
    randombytes_buf(sid, sizeof sid);
    randombytes_buf(msg, sizeof msg);
    fedc_sa_seal(box, msg, sizeof msg, key, sid, 3, 5);
    assert_int_equal(fedc_sa_open(out, box, sizeof box, key, sid, 3, 5), FEDC_OK);
    assert_memory_equal(out, msg, sizeof msg);
    /* Ciphertext is not the plaintext. */
    assert_memory_not_equal(box + 24, msg, sizeof msg);
    /* Another receiver, sender, session (a replay into another round) or key: refused. */
    assert_int_equal(fedc_sa_open(out, box, sizeof box, key, sid, 3, 6), FEDC_ECHECKSUM);
    assert_int_equal(fedc_sa_open(out, box, sizeof box, key, sid, 4, 5), FEDC_ECHECKSUM);
    uint8_t sid2[32];
    memcpy(sid2, sid, 32);
    sid2[31] ^= 0x80;
    assert_int_equal(fedc_sa_open(out, box, sizeof box, key, sid2, 3, 5), FEDC_ECHECKSUM);
    assert_int_equal(fedc_sa_open(out, box, sizeof box, other, sid, 3, 5), FEDC_ECHECKSUM);
    box[30] ^= 1;
    assert_int_equal(fedc_sa_open(out, box, sizeof box, key, sid, 3, 5), FEDC_ECHECKSUM);
    assert_int_equal(fedc_sa_open(out, box, 10, key, sid, 3, 5), FEDC_ECHECKSUM);
}

/* Round keys signed with the identity key (fedc_sa_client_begin, fedc_sa_adv_verify): a
 * neighbour with the roster accepts the client's own keys and commitment and refuses keys or a
 * commitment the coordinator substituted, the same advertisement in another session (full 64-bit
 * counter) or run, or under another name. */
static void test_signed_round_keys(void **state) {
    (void)state;
    uint8_t id_pk[32], id_sk[64], other_pk[32], other_sk[64];
    crypto_sign_keypair(id_pk, id_sk);
    crypto_sign_keypair(other_pk, other_sk);
    const uint8_t run[FEDC_SA_RUN_BYTES] = {1, 2, 3}, run2[FEDC_SA_RUN_BYTES] = {1, 2, 4};
    uint64_t ctr = fedc_sa_counter(9, 4, 1);
    fedc_sa_client c;
    memset(&c, 0, sizeof c);
    fedc_sa_adv adv;
    fedc_diag d;
    assert_int_equal(fedc_sa_client_begin(&c, run, ctr, "bank-a", id_sk, &adv, &d), FEDC_OK);
    assert_int_equal(fedc_sa_adv_verify(&adv, id_pk, run, ctr, "bank-a"), FEDC_OK);
    assert_int_equal(fedc_sa_adv_verify(&adv, id_pk, run, ctr + 1, "bank-a"), FEDC_ECHECKSUM);
    assert_int_equal(fedc_sa_adv_verify(&adv, id_pk, run, ctr + (1ull << 32), "bank-a"),
                     FEDC_ECHECKSUM);
    assert_int_equal(fedc_sa_adv_verify(&adv, id_pk, run2, ctr, "bank-a"), FEDC_ECHECKSUM);
    assert_int_equal(fedc_sa_adv_verify(&adv, id_pk, run, ctr, "bank-b"), FEDC_ECHECKSUM);
    assert_int_equal(fedc_sa_adv_verify(&adv, other_pk, run, ctr, "bank-a"), FEDC_ECHECKSUM);
    fedc_sa_adv forged = adv;
    uint8_t fsk[32];
    crypto_box_keypair(forged.pk_s, fsk); /* the coordinator's own key, slipped in */
    assert_int_equal(fedc_sa_adv_verify(&forged, id_pk, run, ctr, "bank-a"), FEDC_ECHECKSUM);
    forged = adv;
    forged.commit[5] ^= 1; /* another commitment: a graph the coordinator could steer */
    assert_int_equal(fedc_sa_adv_verify(&forged, id_pk, run, ctr, "bank-a"), FEDC_ECHECKSUM);
    fedc_sa_client_free(&c);
}

static int in_row(const fedc_sa_graph *g, int u, int v) {
    for (int k = 0; k < g->size; k++)
        if (g->nbr[(size_t)u * (size_t)g->size + (size_t)k] == v)
            return 1;
    return 0;
}

static void test_graph_and_threshold(void **state) {
    (void)state;
    fedc_sa_graph g, g2, g3;
    fedc_diag d;
    /* Small federations: everyone, including itself. */
    assert_int_equal(fedc_sa_graph_make(&g, 3, 0, 1, 1, &d), FEDC_OK);
    assert_int_equal(g.size, 3);
    for (int u = 0; u < 3; u++)
        for (int v = 0; v < 3; v++)
            assert_true(in_row(&g, u, v));
    fedc_sa_graph_free(&g);
    /* 100 clients: h = 7, rings of 15, symmetric, rows ascending with the client itself. */
    assert_int_equal(fedc_sa_graph_make(&g, 100, 0, 42, 3, &d), FEDC_OK);
    assert_int_equal(g.size, 15);
    for (int u = 0; u < 100; u++) {
        assert_true(in_row(&g, u, u));
        for (int k = 1; k < g.size; k++)
            assert_true(g.nbr[u * g.size + k - 1] < g.nbr[u * g.size + k]);
        for (int v = 0; v < 100; v++)
            assert_int_equal(in_row(&g, u, v), in_row(&g, v, u));
    }
    /* Deterministic for (seed, round); another round reshuffles. */
    assert_int_equal(fedc_sa_graph_make(&g2, 100, 0, 42, 3, &d), FEDC_OK);
    assert_memory_equal(g.nbr, g2.nbr, sizeof(int) * 100 * 15);
    assert_int_equal(fedc_sa_graph_make(&g3, 100, 0, 42, 4, &d), FEDC_OK);
    assert_memory_not_equal(g.nbr, g3.nbr, sizeof(int) * 100 * 15);
    fedc_sa_graph_free(&g);
    fedc_sa_graph_free(&g2);
    fedc_sa_graph_free(&g3);
    /* An explicit h. */
    assert_int_equal(fedc_sa_graph_make(&g, 20, 2, 1, 1, &d), FEDC_OK);
    assert_int_equal(g.size, 5);
    fedc_sa_graph_free(&g);
    assert_int_equal(fedc_sa_graph_make(&g, 0, 0, 1, 1, &d), FEDC_EINVAL);
    /* Thresholds: floor(size/2)+1 by default (3 clients: 2, so one may drop); a request must be
     * a strict majority and at most the size. */
    assert_int_equal(fedc_sa_threshold(3, 0), 2);
    assert_int_equal(fedc_sa_threshold(15, 0), 8);
    assert_int_equal(fedc_sa_threshold(15, 10), 10);
    assert_int_equal(fedc_sa_threshold(15, 7), -1);
    assert_int_equal(fedc_sa_threshold(15, 16), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_secret_symmetric),
        cmocka_unit_test(test_prg_matches_libsodium),
        cmocka_unit_test(test_masks_cancel_and_sum_exact),
        cmocka_unit_test(test_quantisation),
        cmocka_unit_test(test_no_wrap_at_capacity),
        cmocka_unit_test(test_shamir),
        cmocka_unit_test(test_seal),
        cmocka_unit_test(test_signed_round_keys),
        cmocka_unit_test(test_graph_and_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
