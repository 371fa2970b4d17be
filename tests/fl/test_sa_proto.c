/* The SecAgg+ protocol state machines driven in memory (docs/security.md, "Tests that prove it"):
 * full protocol sums exactly, with a drawn graph too; dropouts after ShareKeys, after MaskedInput
 * and after signing the survivor set are recovered; too many dropouts abort; a client withholds
 * below the threshold; the floors hold and the fewest inputs in a finished sum match the
 * documented formula; a forged round key or a neighbour missing from the roster is refused with
 * a code and the neighbour's id; the session counter only goes forward and a stage is unmasked
 * once; shares from an earlier session do not open; what the coordinator holds of one client
 * looks uniform while the unmasked vector does not (negative control); the wide fixed point and
 * the stage vectors round-trip. The attacks of a dishonest coordinator are in
 * test_sa_attacks.c. */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "fedc/fl.h"
#include "fedc/sa_proto.h"

#include "sa_sim.h"

#define MAXN SA_SIM_MAXN
#define LEN SA_SIM_LEN

static const uint8_t RUN[FEDC_SA_RUN_BYTES] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

static void check_drops(int n, int h, const int *drops_at, int n_drops, int expect_ok) {
    sa_sim *s = sa_sim_new(n, h, 0);
    assert_non_null(s);
    int out[MAXN] = {0}, withheld;
    for (int i = 0; i < n_drops; i++)
        out[drops_at[2 * i]] = drops_at[2 * i + 1];
    fedc_err rc = sa_sim_run(s, out, fedc_sa_counter(3, 0, FEDC_SA_STAGE_FIT), &withheld);
    if (expect_ok) {
        assert_int_equal(rc, FEDC_OK);
        assert_int_equal(withheld, 0);
        assert_true(sa_sim_sum_ok(s, out));
    } else {
        assert_int_not_equal(rc, FEDC_OK);
    }
    sa_sim_free(s);
}

static void test_full_sum_exact(void **state) {
    (void)state;
    check_drops(7, 0, NULL, 0, 1);
    check_drops(3, 0, NULL, 0, 1);
    /* SecAgg+: 40 clients in neighbourhoods of 2h+1 = 7, drawn from everyone's reveals. */
    check_drops(40, 3, NULL, 0, 1);
    check_drops(20, 0, NULL, 0, 1); /* h = ceil(log2 20) = 5: neighbourhoods of 11 */
}

/* With 7 clients (t = 4): one, then two exit right after ShareKeys; one exits after its masked
 * input (still counted); one after signing the survivor set; with 3 clients (t = 2) one may
 * drop. */
static void test_dropouts_recovered(void **state) {
    (void)state;
    const int one[] = {2, OUT_AFTER_SHARE};
    const int two[] = {2, OUT_AFTER_SHARE, 5, OUT_AFTER_SHARE};
    const int late[] = {4, OUT_AFTER_MASK};
    const int signed_[] = {1, OUT_AFTER_CONSIST};
    const int mixed[] = {0, OUT_BEFORE_SHARE, 3, OUT_AFTER_SHARE, 6, OUT_AFTER_MASK};
    check_drops(7, 0, one, 1, 1);
    check_drops(7, 0, two, 2, 1);
    check_drops(7, 0, late, 1, 1);
    check_drops(7, 0, signed_, 1, 1);
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
    sa_sim *s = sa_sim_new(7, 0, 0);
    int out[MAXN] = {0}, withheld;
    out[0] = out[1] = out[2] = out[3] = OUT_BEFORE_SHARE;
    fedc_err rc = sa_sim_run(s, out, 77, &withheld);
    assert_int_equal(rc, FEDC_ERANGE);
    assert_int_equal(withheld, 3);
    sa_sim_free(s);
    /* Four exit after ShareKeys: the others mask, but 3 inputs are below the threshold. */
    s = sa_sim_new(7, 0, 0);
    memset(out, 0, sizeof out);
    out[0] = out[1] = out[2] = out[3] = OUT_AFTER_SHARE;
    assert_int_not_equal(sa_sim_run(s, out, 78, &withheld), FEDC_OK);
    assert_int_equal(withheld, 0);
    sa_sim_free(s);
    const int three_two[] = {0, OUT_AFTER_SHARE, 2, OUT_AFTER_SHARE};
    check_drops(3, 0, three_two, 2, 0);
    /* Masked inputs arrive, but too few sign the survivor set: 7 clients, 4 exit after masking,
     * so only 3 < t signatures exist and nobody reveals anything. */
    const int late4[] = {0, OUT_AFTER_MASK, 1, OUT_AFTER_MASK,
                         2, OUT_AFTER_MASK, 3, OUT_AFTER_MASK};
    check_drops(7, 0, late4, 4, 0);
    /* Enough signatures, but too few unmask answers: 4 exit after signing. */
    const int sign4[] = {0, OUT_AFTER_CONSIST, 1, OUT_AFTER_CONSIST,
                         2, OUT_AFTER_CONSIST, 3, OUT_AFTER_CONSIST};
    check_drops(7, 0, sign4, 4, 0);
}

/* The floors: a client refuses a neighbourhood below its min_nbrs (3 by default, so one or two
 * clients alone), or a threshold below a majority of its neighbourhood or below 2. */
static void test_floors(void **state) {
    (void)state;
    int out[MAXN] = {0}, withheld;
    for (int n = 1; n <= 2; n++) {
        sa_sim *s = sa_sim_new(n, 0, 0);
        assert_int_equal(sa_sim_run(s, out, 9, &withheld), FEDC_EINVAL);
        assert_int_equal(s->cl[0].refusal, FEDC_SA_REFUSE_FLOOR);
        sa_sim_free(s);
    }
    /* A raised floor: 5 clients refuse a session of 4. */
    sa_sim *s = sa_sim_new(4, 0, 0);
    s->min_nbrs = 5;
    assert_int_equal(sa_sim_run(s, out, 9, &withheld), FEDC_EINVAL);
    assert_int_equal(s->cl[0].refusal, FEDC_SA_REFUSE_FLOOR);
    sa_sim_free(s);
    /* A threshold below a majority, given by a coordinator that skips its own check. */
    s = sa_sim_new(5, 0, 0);
    assert_int_equal(sa_sim_begin(s, 9), FEDC_OK);
    fedc_sa_peer peers[5];
    for (int i = 0; i < 5; i++) {
        peers[i].id = (uint32_t)i;
        peers[i].name = s->names[i];
        peers[i].adv = s->adv[i];
    }
    fedc_sa_sealed boxes[5];
    fedc_diag d;
    assert_int_equal(fedc_sa_client_share(&s->cl[0], 0, 5, 0, 2, peers, 5, NULL, boxes, &d),
                     FEDC_EINVAL);
    assert_int_equal(s->cl[0].refusal, FEDC_SA_REFUSE_FLOOR);
    assert_non_null(strstr(d.msg, "floor"));
    /* Control: the majority threshold is accepted. */
    assert_int_equal(fedc_sa_client_share(&s->cl[1], 1, 5, 0, 3, peers, 5, NULL, boxes, &d),
                     FEDC_OK);
    sa_sim_free(s);
    assert_int_equal(fedc_sa_threshold_floor(3), 2);
    assert_int_equal(fedc_sa_threshold_floor(4), 3);
    assert_int_equal(fedc_sa_threshold_floor(1), 2);
    assert_int_equal(fedc_sa_fewest_in_sum(0), 2);
    assert_int_equal(fedc_sa_fewest_in_sum(7), 4);
}

/* The fewest inputs in any sum a protocol-following coordinator can finish, whatever n, t and
 * dropouts it picks, is fedc_sa_fewest_in_sum(min_nbrs) (docs/security.md). */
static void test_fewest_in_sum(void **state) {
    (void)state;
    for (int m = 3; m <= 6; m++) {
        int fewest = 1 << 20;
        for (int n = 1; n <= m + 2; n++) {
            for (int t = 1; t <= n; t++) {
                /* Drop as many as possible after ShareKeys: n - t of them. */
                for (int drops = 0; drops <= n - 1; drops++) {
                    sa_sim *s = sa_sim_new(n, 0, t > n / 2 ? t : 0);
                    assert_non_null(s);
                    s->min_nbrs = m;
                    int out[MAXN] = {0}, withheld;
                    for (int u = 0; u < drops; u++)
                        out[u] = OUT_AFTER_SHARE;
                    fedc_err rc = sa_sim_run(s, out, 5, &withheld);
                    if (rc == FEDC_OK) {
                        assert_true(sa_sim_sum_ok(s, out));
                        if (s->srv.n_u3 < fewest)
                            fewest = s->srv.n_u3;
                    }
                    sa_sim_free(s);
                }
            }
        }
        print_message("min_nbrs %d: fewest inputs in a finished sum %d (formula %d)\n", m, fewest,
                      fedc_sa_fewest_in_sum(m));
        assert_int_equal(fewest, fedc_sa_fewest_in_sum(m));
    }
}

/* A coordinator that relays a round key of its own for a neighbour is caught by the roster, and
 * the refusal names the neighbour (so the coordinator can retry without it). */
static void test_forged_round_key_refused(void **state) {
    (void)state;
    fedc_diag d;
    sa_sim *s = sa_sim_new(3, 0, 0);
    uint64_t counter = fedc_sa_counter(2, 0, FEDC_SA_STAGE_FIT);
    assert_int_equal(sa_sim_begin(s, counter), FEDC_OK);
    fedc_sa_peer peers[3];
    for (int i = 0; i < 3; i++) {
        peers[i].id = (uint32_t)i;
        peers[i].name = s->names[i];
        peers[i].adv = s->adv[i];
    }
    fedc_sa_sealed boxes[2];
    /* The coordinator swaps client 1's masking key for one it made (it knows the secret). */
    fedc_sa_peer forged[3] = {peers[0], peers[1], peers[2]};
    uint8_t sk[32];
    crypto_box_keypair(forged[1].adv.pk_s, sk);
    assert_int_equal(fedc_sa_client_share(&s->cl[0], 0, 3, 0, 2, forged, 3, NULL, boxes, &d),
                     FEDC_ECHECKSUM);
    assert_non_null(strstr(d.msg, "not signed"));
    assert_int_equal(s->cl[0].refusal, FEDC_SA_REFUSE_BAD_KEYS);
    assert_int_equal(s->cl[0].blame, 1);
    /* Client 1's genuine advertisement from another session does not pass either. */
    fedc_sa_client old;
    memset(&old, 0, sizeof old);
    fedc_sa_adv old_adv;
    assert_int_equal(
        fedc_sa_client_begin(&old, RUN, counter - 4, s->names[1], s->id_sk[1], &old_adv, &d),
        FEDC_OK);
    forged[1].adv = old_adv;
    assert_int_equal(fedc_sa_client_share(&s->cl[2], 2, 3, 0, 2, forged, 3, NULL, boxes, &d),
                     FEDC_ECHECKSUM);
    /* The coordinator checks the same signature before relaying: genuine passes, others not. */
    assert_int_equal(fedc_sa_adv_verify(&s->adv[1], s->id_pk[1], RUN, counter, s->names[1]),
                     FEDC_OK);
    assert_int_equal(fedc_sa_adv_verify(&old_adv, s->id_pk[1], RUN, counter, s->names[1]),
                     FEDC_ECHECKSUM);
    assert_int_equal(fedc_sa_adv_verify(&s->adv[1], s->id_pk[1], RUN, counter, s->names[2]),
                     FEDC_ECHECKSUM); /* the name is signed too */
    assert_int_equal(fedc_sa_adv_verify(&s->adv[1], s->id_pk[2], RUN, counter, s->names[1]),
                     FEDC_ECHECKSUM);
    /* Control: the genuine keys are accepted. */
    assert_int_equal(fedc_sa_client_share(&s->cl[1], 1, 3, 0, 2, peers, 3, NULL, boxes, &d),
                     FEDC_OK);
    fedc_sa_client_free(&old);
    sa_sim_free(s);
}

static const uint8_t *roster_without_c02(void *ctx, const char *name) {
    return strcmp(name, "c02") == 0 ? NULL : sa_sim_roster(ctx, name);
}

/* A neighbour missing from the roster is refused with its id, not only in text. */
static void test_unlisted_neighbour(void **state) {
    (void)state;
    fedc_diag d;
    sa_sim *s = sa_sim_new(3, 0, 0);
    assert_int_equal(sa_sim_begin(s, 40), FEDC_OK);
    fedc_sa_peer peers[3];
    for (int i = 0; i < 3; i++) {
        peers[i].id = (uint32_t)i;
        peers[i].name = s->names[i];
        peers[i].adv = s->adv[i];
    }
    s->cl[0].roster = roster_without_c02;
    fedc_sa_sealed boxes[2];
    assert_int_equal(fedc_sa_client_share(&s->cl[0], 0, 3, 0, 2, peers, 3, NULL, boxes, &d),
                     FEDC_EINVAL);
    assert_int_equal(s->cl[0].refusal, FEDC_SA_REFUSE_NOT_LISTED);
    assert_int_equal(s->cl[0].blame, 2);
    sa_sim_free(s);
}

/* The counter must go forward within a run, and a (round, stage) unmasked once is refused for
 * good; another run starts afresh. */
static void test_counter_guard(void **state) {
    (void)state;
    sa_sim *s = sa_sim_new(3, 0, 0);
    int out[MAXN] = {0}, withheld;
    uint64_t c0 = fedc_sa_counter(4, 0, FEDC_SA_STAGE_FIT);
    assert_int_equal(sa_sim_run(s, out, c0, &withheld), FEDC_OK);
    fedc_sa_adv adv;
    fedc_diag d;
    /* The same stage again, at a later attempt: refused (it was unmasked). */
    assert_int_equal(fedc_sa_client_begin(&s->cl[0], RUN, fedc_sa_counter(4, 1, 1), s->names[0],
                                          s->id_sk[0], &adv, &d),
                     FEDC_EMISMATCH);
    assert_int_equal(s->cl[0].refusal, FEDC_SA_REFUSE_UNMASKED);
    /* Round 4's evaluation goes forward: accepted; then an earlier counter is refused. */
    assert_int_equal(fedc_sa_client_begin(&s->cl[0], RUN, fedc_sa_counter(4, 0, 2), s->names[0],
                                          s->id_sk[0], &adv, &d),
                     FEDC_OK);
    assert_int_equal(fedc_sa_client_begin(&s->cl[0], RUN, fedc_sa_counter(3, 9, 2), s->names[0],
                                          s->id_sk[0], &adv, &d),
                     FEDC_EMISMATCH);
    assert_int_equal(s->cl[0].refusal, FEDC_SA_REFUSE_COUNTER);
    assert_int_equal(s->cl[0].guard.last, fedc_sa_counter(4, 0, 2));
    /* Attempts are 24 bits wide: attempt 256 is not attempt 0 (the 8-bit counter of old). */
    uint8_t a[32], b[32];
    fedc_sa_session(a, RUN, fedc_sa_counter(4, 0, 1));
    fedc_sa_session(b, RUN, fedc_sa_counter(4, 256, 1));
    assert_memory_not_equal(a, b, 32);
    assert_true(fedc_sa_counter(4, 256, 1) > fedc_sa_counter(4, 255, 1));
    assert_true(fedc_sa_counter(5, 0, 0) > fedc_sa_counter(4, FEDC_SA_MAX_ATTEMPT, 2));
    /* Another run: the guard starts over. */
    uint8_t run2[FEDC_SA_RUN_BYTES] = {1};
    assert_int_equal(fedc_sa_client_begin(&s->cl[0], run2, fedc_sa_counter(1, 0, 1), s->names[0],
                                          s->id_sk[0], &adv, &d),
                     FEDC_OK);
    sa_sim_free(s);
}

/* Shares sealed in an earlier session do not open in the next one, even between the same
 * clients: the client rejects them. */
static void test_replayed_share_rejected(void **state) {
    (void)state;
    fedc_diag d;
    sa_sim *s = sa_sim_new(3, 0, 0);
    fedc_sa_sealed old[2], fresh[2];
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(sa_sim_begin(s, fedc_sa_counter(1 + (uint32_t)pass, 0, 1)), FEDC_OK);
        fedc_sa_peer peers[3];
        for (int i = 0; i < 3; i++) {
            peers[i].id = (uint32_t)i;
            peers[i].name = s->names[i];
            peers[i].adv = s->adv[i];
        }
        for (int u = 0; u < 3; u++) {
            fedc_sa_sealed scratch[2];
            assert_int_equal(fedc_sa_client_share(&s->cl[u], (uint32_t)u, 3, 0, 2, peers, 3, NULL,
                                                  u      ? scratch
                                                  : pass ? fresh
                                                         : old,
                                                  &d),
                             FEDC_OK);
        }
    }
    /* Client 1 in session 2 receives client 0's box from session 1. */
    assert_int_equal(old[0].to, 1u);
    assert_int_equal(fedc_sa_client_collect(&s->cl[1], old, 1, &d), FEDC_ECHECKSUM);
    assert_non_null(strstr(d.msg, "replayed or forged"));
    sa_sim_free(s);
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
    sa_sim *s = sa_sim_new(5, 0, 0);
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
    assert_int_equal(sa_sim_run(s, out, 11, &withheld), FEDC_OK);
    assert_true(sa_sim_sum_ok(s, out));
    /* 99.9th percentile of chi-square with 255 degrees of freedom: about 330. */
    double masked = chi2_bytes(s->y[0], LEN), plain = chi2_bytes(s->x[0], LEN);
    print_message("chi-square: masked %.1f, unmasked %.1f (limit 330)\n", masked, plain);
    assert_true(masked < 330.0);
    assert_true(plain > 330.0);
    sa_sim_free(s);
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

/* The client quantises its update where it lies (the update is the float vector after the
 * header slots): encoded in place, it decodes to the weighted update as a separate copy would. */
static void test_fit_vector_in_place(void **state) {
    (void)state;
    enum { P = 4099 };
    fedc_sa_quant q;
    fedc_diag d;
    assert_int_equal(fedc_sa_quant_make(&q, 16, 0.5f, &d), FEDC_OK);
    size_t len = fedc_sa_fit_len(P), head = len - P;
    assert_int_equal(head, 5 * FEDC_SA_WIDE_SLOTS);
    uint32_t *v = malloc(4 * len);
    float *x = (float *)(void *)(v + head), *dec = malloc(4 * P), want[P];
    for (int i = 0; i < P; i++)
        x[i] = want[i] = 0.4f * cosf((float)i * 0.37f);
    x[11] = want[11] = -3.0f; /* clamped to -0.5 */
    assert_int_equal(fedc_sa_fit_encode(v, x, P, 0.25, 0.5, 40, 1, &q, &d), FEDC_OK);
    fedc_sa_fit_sum t;
    assert_int_equal(fedc_sa_fit_decode(dec, &t, v, P, &q, 16, &d), FEDC_OK);
    assert_true(fabs(t.weight - 0.25) < 1e-9 && t.examples == 40.0 && t.clipped == 1.0);
    for (int i = 0; i < P; i++) {
        double c = want[i] > 0.5f ? 0.5 : want[i] < -0.5f ? -0.5 : want[i];
        assert_true(fabs(dec[i] - 0.25 * c) <= 1.0 / q.scale + 1e-6);
    }
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
        cmocka_unit_test(test_floors),
        cmocka_unit_test(test_fewest_in_sum),
        cmocka_unit_test(test_forged_round_key_refused),
        cmocka_unit_test(test_unlisted_neighbour),
        cmocka_unit_test(test_counter_guard),
        cmocka_unit_test(test_replayed_share_rejected),
        cmocka_unit_test(test_masked_input_looks_uniform),
        cmocka_unit_test(test_wide_roundtrip),
        cmocka_unit_test(test_fit_vector),
        cmocka_unit_test(test_fit_vector_in_place),
        cmocka_unit_test(test_eval_and_stats_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
