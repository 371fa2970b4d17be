/* The SecAgg+ protocol state machines driven in memory (SECURITY.md, "Tests that prove it"):
 * full protocol sums exactly; dropouts after ShareKeys and after MaskedInput are recovered; too
 * many dropouts abort; a client withholds below the threshold; a dishonest coordinator asking for
 * both share kinds of one peer, or relaying a forged round key, is refused; shares from an earlier
 * session do not open; what the coordinator holds of one client looks uniform while the unmasked
 * vector does not (negative control); the wide fixed point and the stage vectors round-trip. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "fedc/fl.h"
#include "fedc/sa_proto.h"

#define MAXN 40
#define LEN 2053

typedef struct sim {
    int n, h, t_req;
    uint8_t id_pk[MAXN][32], id_sk[MAXN][64];
    fedc_sa_client cl[MAXN];
    fedc_sa_server srv;
    uint32_t x[MAXN][LEN];
    uint32_t held_by_server[LEN]; /* client 0's masked input, as the coordinator saw it */
} sim;

enum { OUT_NONE, OUT_BEFORE_SHARE, OUT_AFTER_SHARE, OUT_AFTER_MASK };

static const uint8_t RUN[FEDC_SA_RUN_BYTES] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

/* Runs one session; out[u] says when client u drops. Returns the server's finish code (or the
 * first failure), with the result in s->srv.sum. */
static fedc_err run_session(sim *s, const int *out, uint32_t counter, int *withheld) {
    fedc_diag d;
    fedc_sa_adv adv[MAXN];
    memset(adv, 0, sizeof adv);
    int n = s->n;
    *withheld = 0;
    for (int u = 0; u < n; u++) {
        memset(&s->cl[u], 0, sizeof s->cl[u]);
        assert_int_equal(fedc_sa_client_begin(&s->cl[u], RUN, counter, s->id_sk[u], &adv[u], &d),
                         FEDC_OK);
    }
    /* Everybody advertised (U1 = all). */
    fedc_err rc = fedc_sa_server_new(&s->srv, n, s->h, s->t_req, 42, RUN, counter, adv, LEN, &d);
    if (rc)
        return rc;
    int size = s->srv.size;
    for (int u = 0; u < n; u++) {
        if (out[u] == OUT_BEFORE_SHARE)
            continue;
        const int *row = fedc_sa_server_nbrs(&s->srv, (uint32_t)u);
        uint32_t ids[MAXN];
        fedc_sa_adv nadv[MAXN];
        const uint8_t *roster[MAXN];
        for (int i = 0; i < size; i++) {
            ids[i] = (uint32_t)row[i];
            nadv[i] = adv[row[i]];
            roster[i] = s->id_pk[row[i]];
        }
        fedc_sa_sealed boxes[MAXN];
        assert_int_equal(fedc_sa_client_share(&s->cl[u], (uint32_t)u, s->srv.t, ids, nadv, roster,
                                              size, boxes, &d),
                         FEDC_OK);
        assert_int_equal(fedc_sa_server_shares(&s->srv, (uint32_t)u, boxes, size - 1, &d), FEDC_OK);
    }
    for (int u = 0; u < n; u++) {
        if (out[u] == OUT_BEFORE_SHARE || out[u] == OUT_AFTER_SHARE)
            continue;
        fedc_sa_sealed in[MAXN];
        int k = fedc_sa_server_routed(&s->srv, (uint32_t)u, in);
        rc = fedc_sa_client_collect(&s->cl[u], in, k, &d);
        if (rc == FEDC_ERANGE) {
            (*withheld)++;
            continue;
        }
        assert_int_equal(rc, FEDC_OK);
        uint32_t y[LEN];
        memcpy(y, s->x[u], sizeof y);
        assert_int_equal(fedc_sa_client_mask(&s->cl[u], y, LEN, &d), FEDC_OK);
        if (u == 0)
            memcpy(s->held_by_server, y, sizeof y);
        assert_int_equal(fedc_sa_server_masked(&s->srv, (uint32_t)u, y, &d), FEDC_OK);
    }
    for (int u = 0; u < n; u++) {
        if (out[u] != OUT_NONE || s->cl[u].state != 4)
            continue;
        uint32_t sv[MAXN], dr[MAXN];
        int ns, nd, k;
        fedc_sa_server_unmask_lists(&s->srv, (uint32_t)u, sv, &ns, dr, &nd);
        fedc_sa_reveal r[MAXN];
        /* A client refuses to unmask when fewer than t of its neighbours survived. */
        if ((rc = fedc_sa_client_unmask(&s->cl[u], sv, ns, dr, nd, r, &k, &d)) != FEDC_OK) {
            assert_true(ns < s->srv.t);
            return rc;
        }
        assert_int_equal(fedc_sa_server_reveal(&s->srv, (uint32_t)u, r, k, &d), FEDC_OK);
    }
    return fedc_sa_server_finish(&s->srv, &d);
}

static sim *sim_new(int n, int h, int t_req) {
    assert_true(sodium_init() >= 0);
    sim *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->n = n;
    s->h = h;
    s->t_req = t_req;
    for (int u = 0; u < n; u++) {
        crypto_sign_keypair(s->id_pk[u], s->id_sk[u]);
        randombytes_buf(s->x[u], sizeof s->x[u]);
    }
    return s;
}

static void sim_free(sim *s) {
    for (int u = 0; u < s->n; u++)
        fedc_sa_client_free(&s->cl[u]);
    fedc_sa_server_free(&s->srv);
    free(s);
}

/* The sum mod 2^32 over the clients that sent a masked input. */
static void expect_sum(const sim *s, const int *out) {
    uint32_t want[LEN] = {0};
    for (int u = 0; u < s->n; u++)
        if (out[u] == OUT_NONE || out[u] == OUT_AFTER_MASK)
            for (int i = 0; i < LEN; i++)
                want[i] += s->x[u][i];
    assert_memory_equal(want, s->srv.sum, sizeof want);
}

static void check_drops(int n, int h, const int *drops_at, int n_drops, int expect_ok) {
    sim *s = sim_new(n, h, 0);
    int out[MAXN] = {0}, withheld;
    for (int i = 0; i < n_drops; i++)
        out[drops_at[2 * i]] = drops_at[2 * i + 1];
    fedc_err rc = run_session(s, out, fedc_sa_counter(3, 0, FEDC_SA_STAGE_FIT), &withheld);
    if (expect_ok) {
        assert_int_equal(rc, FEDC_OK);
        assert_int_equal(withheld, 0);
        expect_sum(s, out);
    } else {
        assert_int_not_equal(rc, FEDC_OK);
    }
    sim_free(s);
}

static void test_full_sum_exact(void **state) {
    (void)state;
    check_drops(7, 0, NULL, 0, 1);
    check_drops(3, 0, NULL, 0, 1);
    check_drops(1, 0, NULL, 0, 1);
    /* SecAgg+: 40 clients in neighbourhoods of 2h+1 = 7. */
    check_drops(40, 3, NULL, 0, 1);
}

/* With 7 clients (t = 4): one, then two exit right after ShareKeys; one exits after its masked
 * input (still counted); with 3 clients (t = 2) one may drop. */
static void test_dropouts_recovered(void **state) {
    (void)state;
    const int one[] = {2, OUT_AFTER_SHARE};
    const int two[] = {2, OUT_AFTER_SHARE, 5, OUT_AFTER_SHARE};
    const int late[] = {4, OUT_AFTER_MASK};
    const int mixed[] = {0, OUT_BEFORE_SHARE, 3, OUT_AFTER_SHARE, 6, OUT_AFTER_MASK};
    check_drops(7, 0, one, 1, 1);
    check_drops(7, 0, two, 2, 1);
    check_drops(7, 0, late, 1, 1);
    check_drops(7, 0, mixed, 3, 1);
    const int three_one[] = {1, OUT_AFTER_SHARE};
    const int three_late[] = {0, OUT_AFTER_MASK};
    check_drops(3, 0, three_one, 1, 1);
    check_drops(3, 0, three_late, 1, 1);
    /* SecAgg+ ring: a dropout's masks are removed from its neighbours only. */
    const int ring[] = {5, OUT_AFTER_SHARE, 17, OUT_AFTER_SHARE, 30, OUT_AFTER_MASK};
    check_drops(40, 3, ring, 3, 1);
}

/* Below the threshold: 7 clients, t = 4, four exit before ShareKeys: the three others withhold
 * (fewer than t neighbours remain), the session cannot finish. With 3 clients two dropouts abort.
 */
static void test_too_many_dropouts_abort(void **state) {
    (void)state;
    sim *s = sim_new(7, 0, 0);
    int out[MAXN] = {0}, withheld;
    out[0] = out[1] = out[2] = out[3] = OUT_BEFORE_SHARE;
    fedc_err rc = run_session(s, out, 77, &withheld);
    assert_int_equal(rc, FEDC_ERANGE);
    assert_int_equal(withheld, 3);
    sim_free(s);
    /* Four exit after ShareKeys: the others mask, but 3 inputs are below the threshold. */
    s = sim_new(7, 0, 0);
    memset(out, 0, sizeof out);
    out[0] = out[1] = out[2] = out[3] = OUT_AFTER_SHARE;
    assert_int_not_equal(run_session(s, out, 78, &withheld), FEDC_OK);
    assert_int_equal(withheld, 0);
    sim_free(s);
    const int three_two[] = {0, OUT_AFTER_SHARE, 2, OUT_AFTER_SHARE};
    check_drops(3, 0, three_two, 2, 0);
    /* Masked inputs arrive, but too few unmask answers come back: 7 clients, 4 exit after
     * masking, so only 3 < t shares of each secret return. */
    const int late4[] = {0, OUT_AFTER_MASK, 1, OUT_AFTER_MASK,
                         2, OUT_AFTER_MASK, 3, OUT_AFTER_MASK};
    check_drops(7, 0, late4, 4, 0);
}

/* Sets up 3 clients up to the unmask step with client 1 dropped after ShareKeys; returns the
 * session for client 0 to be questioned by a dishonest coordinator. */
static sim *to_unmask(void) {
    sim *s = sim_new(3, 0, 0);
    int out[MAXN] = {0}, withheld;
    out[1] = OUT_AFTER_SHARE;
    out[0] = OUT_AFTER_MASK; /* stop before the honest unmask step for client 0 */
    out[2] = OUT_AFTER_MASK;
    (void)run_session(s, out, 5, &withheld);
    assert_int_equal(s->cl[0].state, 4);
    return s;
}

static void test_dishonest_coordinator_refused(void **state) {
    (void)state;
    fedc_diag d;
    fedc_sa_reveal r[MAXN];
    int k;
    /* Both share kinds of peer 1 in one request. */
    sim *s = to_unmask();
    uint32_t sv[3] = {0, 1, 2}, dr[1] = {1};
    assert_int_equal(fedc_sa_client_unmask(&s->cl[0], sv, 3, dr, 1, r, &k, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "both share kinds"));
    assert_int_equal(k, 0);
    sim_free(s);
    /* Peer 1 said to have survived (b share), then asked again as dropped (key share). */
    s = to_unmask();
    uint32_t sv2[3] = {0, 1, 2};
    assert_int_equal(fedc_sa_client_unmask(&s->cl[0], sv2, 3, NULL, 0, r, &k, &d), FEDC_OK);
    assert_int_equal(k, 3);
    uint32_t sv3[2] = {0, 2}, dr3[1] = {1};
    assert_int_equal(fedc_sa_client_unmask(&s->cl[0], sv3, 2, dr3, 1, r, &k, &d), FEDC_EINVAL);
    assert_int_equal(k, 0);
    sim_free(s);
    /* A list that leaves us out, or holds fewer than t survivors, is refused. */
    s = to_unmask();
    uint32_t sv4[1] = {2}, dr4[1] = {0};
    assert_int_equal(fedc_sa_client_unmask(&s->cl[0], sv4, 1, dr4, 1, r, &k, &d), FEDC_EINVAL);
    sim_free(s);
    /* A list that leaves out a neighbour in U2 is refused too. */
    s = to_unmask();
    uint32_t sv5[2] = {0, 2}, dr5[1] = {1};
    assert_int_equal(fedc_sa_client_unmask(&s->cl[0], sv5, 2, NULL, 0, r, &k, &d), FEDC_EINVAL);
    sim_free(s);
    /* Control: the honest request (peer 1 dropped after ShareKeys) is answered. */
    s = to_unmask();
    assert_int_equal(fedc_sa_client_unmask(&s->cl[0], sv5, 2, dr5, 1, r, &k, &d), FEDC_OK);
    assert_int_equal(k, 3);
    sim_free(s);
}

/* A coordinator that relays a round key of its own for a neighbour is caught by the roster. */
static void test_forged_round_key_refused(void **state) {
    (void)state;
    assert_true(sodium_init() >= 0);
    fedc_diag d;
    uint8_t id_pk[3][32], id_sk[3][64];
    fedc_sa_client c[3];
    fedc_sa_adv adv[3];
    memset(c, 0, sizeof c);
    uint32_t counter = fedc_sa_counter(2, 0, FEDC_SA_STAGE_FIT);
    for (int u = 0; u < 3; u++) {
        crypto_sign_keypair(id_pk[u], id_sk[u]);
        assert_int_equal(fedc_sa_client_begin(&c[u], RUN, counter, id_sk[u], &adv[u], &d), FEDC_OK);
    }
    uint32_t ids[3] = {0, 1, 2};
    const uint8_t *roster[3] = {id_pk[0], id_pk[1], id_pk[2]};
    fedc_sa_sealed boxes[2];
    /* The coordinator swaps client 1's masking key for one it made (it knows the secret). */
    fedc_sa_adv forged[3] = {adv[0], adv[1], adv[2]};
    uint8_t sk[32];
    crypto_box_keypair(forged[1].pk_s, sk);
    assert_int_equal(fedc_sa_client_share(&c[0], 0, 2, ids, forged, roster, 3, boxes, &d),
                     FEDC_ECHECKSUM);
    assert_non_null(strstr(d.msg, "not signed"));
    /* Client 1's genuine advertisement from another round does not pass either. */
    fedc_sa_client old;
    memset(&old, 0, sizeof old);
    fedc_sa_adv old_adv;
    assert_int_equal(fedc_sa_client_begin(&old, RUN, counter - 4, id_sk[1], &old_adv, &d), FEDC_OK);
    forged[1] = old_adv;
    assert_int_equal(fedc_sa_client_share(&c[2], 2, 2, ids, forged, roster, 3, boxes, &d),
                     FEDC_ECHECKSUM);
    /* Control: the genuine keys are accepted. */
    assert_int_equal(fedc_sa_client_share(&c[1], 1, 2, ids, adv, roster, 3, boxes, &d), FEDC_OK);
    for (int u = 0; u < 3; u++)
        fedc_sa_client_free(&c[u]);
    fedc_sa_client_free(&old);
}

/* Shares sealed in an earlier session do not open in the next one, even between the same
 * clients: the client rejects them. */
static void test_replayed_share_rejected(void **state) {
    (void)state;
    fedc_diag d;
    uint8_t id_pk[2][32], id_sk[2][64];
    fedc_sa_client c[2];
    fedc_sa_adv adv[2];
    memset(c, 0, sizeof c);
    uint32_t ids[2] = {0, 1};
    const uint8_t *roster[2] = {id_pk[0], id_pk[1]};
    fedc_sa_sealed old[1], fresh[1], scratch[1];
    for (int u = 0; u < 2; u++)
        crypto_sign_keypair(id_pk[u], id_sk[u]);
    for (int pass = 0; pass < 2; pass++) {
        uint32_t counter = fedc_sa_counter(1 + (uint32_t)pass, 0, FEDC_SA_STAGE_FIT);
        for (int u = 0; u < 2; u++)
            assert_int_equal(fedc_sa_client_begin(&c[u], RUN, counter, id_sk[u], &adv[u], &d),
                             FEDC_OK);
        for (int u = 0; u < 2; u++)
            assert_int_equal(fedc_sa_client_share(&c[u], (uint32_t)u, 2, ids, adv, roster, 2,
                                                  u == 1 ? scratch
                                                  : pass ? fresh
                                                         : old,
                                                  &d),
                             FEDC_OK);
    }
    /* Client 1 in session 2 receives client 0's box from session 1. */
    assert_int_equal(fedc_sa_client_collect(&c[1], old, 1, &d), FEDC_ECHECKSUM);
    assert_non_null(strstr(d.msg, "replayed or forged"));
    for (int u = 0; u < 2; u++)
        fedc_sa_client_free(&c[u]);
}

/* Chi-square over byte values (255 degrees of freedom): the masked input of one client against
 * the same client's unmasked (quantised) input, which must fail. */
static double chi2_bytes(const uint32_t *v, size_t n) {
    double cnt[256] = {0};
    const uint8_t *b = (const uint8_t *)v;
    for (size_t i = 0; i < 4 * n; i++)
        cnt[b[i]]++;
    double e = 4.0 * (double)n / 256.0, x = 0;
    for (int i = 0; i < 256; i++)
        x += (cnt[i] - e) * (cnt[i] - e) / e;
    return x;
}

static void test_masked_input_looks_uniform(void **state) {
    (void)state;
    sim *s = sim_new(5, 0, 0);
    /* Realistic inputs: a quantised small update (most bytes near 0x00 or 0xff). */
    fedc_sa_quant q;
    fedc_diag d;
    assert_int_equal(fedc_sa_quant_make(&q, 1024, 1.0f, &d), FEDC_OK);
    for (int u = 0; u < 5; u++) {
        float f[LEN];
        for (int i = 0; i < LEN; i++)
            f[i] = 0.01f * sinf((float)(i + 13 * u));
        assert_int_equal(fedc_sa_quantise(s->x[u], f, LEN, &q, &d), FEDC_OK);
    }
    int out[MAXN] = {0}, withheld;
    assert_int_equal(run_session(s, out, 11, &withheld), FEDC_OK);
    expect_sum(s, out);
    /* 99.9th percentile of chi-square with 255 degrees of freedom: about 330. */
    double masked = chi2_bytes(s->held_by_server, LEN), plain = chi2_bytes(s->x[0], LEN);
    print_message("chi-square: masked %.1f, unmasked %.1f (limit 330)\n", masked, plain);
    assert_true(masked < 330.0);
    assert_true(plain > 330.0);
    sim_free(s);
}

static void test_wide_roundtrip(void **state) {
    (void)state;
    const double vals[] = {0, 1, -1, 123456789.0, -987654321.25, 0.5, -1e-3, 3.0e20, -7.0e25};
    uint32_t sum[FEDC_SA_WIDE_SLOTS] = {0}, one[FEDC_SA_WIDE_SLOTS];
    double total = 0;
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        assert_int_equal(fedc_sa_wide_put(one, vals[i]), FEDC_OK);
        double back = fedc_sa_wide_get(one);
        assert_true(fabs(back - vals[i]) <= fmax(0x1p-32, fabs(vals[i]) * 1e-15));
    }
    /* Sums of many encodings, mixed signs, resolve the carries: 1000 x (+3.5) and 400 x (-2). */
    for (int i = 0; i < 1400; i++) {
        double v = i < 1000 ? 3.5 : -2.0;
        assert_int_equal(fedc_sa_wide_put(one, v), FEDC_OK);
        for (int k = 0; k < FEDC_SA_WIDE_SLOTS; k++)
            sum[k] += one[k];
        total += v;
    }
    assert_true(fedc_sa_wide_get(sum) == total);
    assert_int_equal(fedc_sa_wide_put(one, NAN), FEDC_ERANGE);
    assert_int_equal(fedc_sa_wide_put(one, 0x1p95), FEDC_ERANGE);
}

/* Fit vectors of three clients summed then decoded give the weighted update within the
 * quantisation bound; an aggregate beyond the clipping bound is rejected as implausible. */
static void test_fit_vector(void **state) {
    (void)state;
    enum { P = 1000 };
    fedc_sa_quant q;
    fedc_diag d;
    assert_int_equal(fedc_sa_quant_make(&q, 16, 0.5f, &d), FEDC_OK);
    size_t len = fedc_sa_fit_len(P);
    uint32_t *sum = calloc(len, 4), *v = malloc(4 * len);
    float *dec = malloc(4 * P), delta[P];
    double want[P] = {0}, w[3] = {0.2, 0.3, 0.5}, loss[3] = {0.7, 0.5, 0.3};
    for (int u = 0; u < 3; u++) {
        for (int i = 0; i < P; i++) {
            delta[i] = 0.3f * sinf((float)(i * (u + 1)));
            want[i] += w[u] * delta[i];
        }
        if (u == 2)
            delta[7] = 2.0f; /* clamped to 0.5 */
        assert_int_equal(
            fedc_sa_fit_encode(v, delta, P, w[u], loss[u], 100 * (u + 1), u % 2, &q, &d), FEDC_OK);
        for (size_t i = 0; i < len; i++)
            sum[i] += v[i];
    }
    want[7] = 0.2 * 0.3 * sinf(7.0f) + 0.3 * 0.3 * sinf(14.0f) + 0.5 * 0.5;
    fedc_sa_fit_sum t;
    assert_int_equal(fedc_sa_fit_decode(dec, &t, sum, P, &q, 16, &d), FEDC_OK);
    assert_true(fabs(t.weight - 1.0) < 1e-9);
    assert_true(fabs(t.wloss - (0.2 * 0.7 + 0.3 * 0.5 + 0.5 * 0.3)) < 1e-8);
    assert_true(t.examples == 600.0);
    assert_true(t.clipped == 1.0);
    assert_true(t.unclipped == 1.0); /* u = 1 only */
    for (int i = 0; i < P; i++)
        assert_true(fabs(dec[i] - want[i]) <= 3.0 / q.scale + 1e-6);
    /* A wild aggregate (as from a client ignoring the clip, or wrong unmasking) is refused. */
    sum[5 * FEDC_SA_WIDE_SLOTS + 3] += (uint32_t)(q.scale * 4.0);
    assert_int_equal(fedc_sa_fit_decode(dec, &t, sum, P, &q, 16, &d), FEDC_ERANGE);
    free(sum);
    free(v);
    free(dec);
}

static void test_eval_and_stats_vectors(void **state) {
    (void)state;
    fedc_sa_quant q;
    fedc_diag d;
    assert_int_equal(fedc_sa_quant_make(&q, 1024, 1.0f, &d), FEDC_OK);
    fedc_eval_acc *a, *b, *sum, *got;
    assert_int_equal(fedc_eval_acc_new(&a, FEDC_TASK_BINARY, 2, 100), FEDC_OK);
    assert_int_equal(fedc_eval_acc_new(&b, FEDC_TASK_BINARY, 2, 100), FEDC_OK);
    assert_int_equal(fedc_eval_acc_new(&sum, FEDC_TASK_BINARY, 2, 100), FEDC_OK);
    assert_int_equal(fedc_eval_acc_new(&got, FEDC_TASK_BINARY, 2, 100), FEDC_OK);
    float pa[4] = {0.1f, 0.9f, 0.4f, 0.8f}, ya[4] = {0, 1, 0, 0};
    float pb[3] = {0.2f, 0.95f, 0.6f}, yb[3] = {1, 1, 0};
    fedc_eval_acc_add(a, pa, ya, 4, 0.5f);
    fedc_eval_acc_add(b, pb, yb, 3, 0.5f);
    assert_int_equal(fedc_eval_acc_merge(sum, a), 0);
    assert_int_equal(fedc_eval_acc_merge(sum, b), 0);
    size_t len = fedc_sa_eval_len(a);
    uint32_t *va = malloc(4 * len), *vb = malloc(4 * len);
    assert_int_equal(fedc_sa_eval_encode(va, a, &q, &d), FEDC_OK);
    assert_int_equal(fedc_sa_eval_encode(vb, b, &q, &d), FEDC_OK);
    for (size_t i = 0; i < len; i++)
        va[i] += vb[i];
    assert_int_equal(fedc_sa_eval_decode(got, va, &d), FEDC_OK);
    assert_int_equal(got->n, 7);
    assert_int_equal(got->tp, sum->tp);
    assert_int_equal(got->fn, sum->fn);
    assert_memory_equal(got->hist_pos, sum->hist_pos, 8 * 100);
    assert_memory_equal(got->hist_neg, sum->hist_neg, 8 * 100);
    assert_true(fabs(got->loss_sum - sum->loss_sum) < 1e-8);
    /* A histogram that disagrees with n is implausible. */
    va[2 * FEDC_SA_WIDE_SLOTS + 4 * FEDC_SA_WIDE_SLOTS + 3] += 1;
    fedc_eval_acc_reset(got);
    assert_int_equal(fedc_sa_eval_decode(got, va, &d), FEDC_ERANGE);
    /* Round-0 statistics. */
    double s1[2] = {1.5, -2}, q1[2] = {4, 9}, rows;
    uint64_t cc[2] = {2, 1}, cc_out[2];
    double so[2], qo[2];
    size_t sl = fedc_sa_stats_len(2, 2);
    uint32_t *st = malloc(4 * sl);
    assert_int_equal(fedc_sa_stats_encode(st, 3, s1, q1, 2, cc, 2, &d), FEDC_OK);
    assert_int_equal(fedc_sa_stats_decode(st, 2, 2, &rows, so, qo, cc_out, &d), FEDC_OK);
    assert_true(rows == 3 && so[0] == 1.5 && so[1] == -2 && qo[1] == 9 && cc_out[0] == 2);
    cc[0] = 5; /* class counts no longer sum to the rows */
    assert_int_equal(fedc_sa_stats_encode(st, 3, s1, q1, 2, cc, 2, &d), FEDC_OK);
    assert_int_equal(fedc_sa_stats_decode(st, 2, 2, &rows, so, qo, cc_out, &d), FEDC_ERANGE);
    free(st);
    free(va);
    free(vb);
    fedc_eval_acc_destroy(&a);
    fedc_eval_acc_destroy(&b);
    fedc_eval_acc_destroy(&sum);
    fedc_eval_acc_destroy(&got);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_sum_exact),
        cmocka_unit_test(test_dropouts_recovered),
        cmocka_unit_test(test_too_many_dropouts_abort),
        cmocka_unit_test(test_dishonest_coordinator_refused),
        cmocka_unit_test(test_forged_round_key_refused),
        cmocka_unit_test(test_replayed_share_rejected),
        cmocka_unit_test(test_masked_input_looks_uniform),
        cmocka_unit_test(test_wide_roundtrip),
        cmocka_unit_test(test_fit_vector),
        cmocka_unit_test(test_eval_and_stats_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
