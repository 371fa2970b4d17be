/* Robust aggregation rules on 10 updates around a common direction, 2 of them bad (scaled x100,
 * sign-flipped): median, trimmed mean and Krum stay near the honest mean while the plain mean is
 * dragged away (the control); Multi-Krum leaves the bad ones out; the norm bound caps each
 * update; NaN/Inf updates are refused under every rule; parameters are checked. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "fedc/rng.h"
#include "fedc/robust.h"

enum { N = 10, P = 64 };

static float g_u[N][P], g_honest[P];
static const float *g_ptr[N];

/* Honest updates: direction d (all 0.1) plus noise 0.01; updates 8 and 9 bad. */
static void make(int attack) {
    fedc_rng r;
    fedc_rng_init(&r, 7);
    for (int i = 0; i < P; i++)
        g_honest[i] = 0;
    for (int k = 0; k < N; k++) {
        for (int i = 0; i < P; i++)
            g_u[k][i] = 0.1f + 0.01f * fedc_rng_normal(&r);
        if (k < 8)
            for (int i = 0; i < P; i++)
                g_honest[i] += g_u[k][i] / 8.0f;
        g_ptr[k] = g_u[k];
    }
    for (int k = 8; k < N; k++)
        for (int i = 0; i < P; i++)
            g_u[k][i] *= attack == 0 ? 100.0f : -1.0f;
}

static double dist_to_honest(const float *v) {
    double s = 0;
    for (int i = 0; i < P; i++)
        s += ((double)v[i] - g_honest[i]) * ((double)v[i] - g_honest[i]);
    return sqrt(s);
}

static double run(fedc_robust_kind kind, int *chosen) {
    fedc_robust_cfg c = {kind, 0.25, 2, 0, 0.5};
    float out[P];
    fedc_diag d;
    assert_int_equal(fedc_robust_aggregate(out, g_ptr, N, P, &c, chosen, &d), FEDC_OK);
    return dist_to_honest(out);
}

static void test_attacks(void **state) {
    (void)state;
    for (int attack = 0; attack < 2; attack++) {
        make(attack);
        int chosen;
        double mean = run(FEDC_AGG_MEAN, NULL), med = run(FEDC_AGG_MEDIAN, NULL);
        double trim = run(FEDC_AGG_TRIMMED_MEAN, NULL), krum = run(FEDC_AGG_KRUM, &chosen);
        double mk = run(FEDC_AGG_MULTI_KRUM, NULL);
        print_message("attack %d: distance to the honest mean: mean %.4f, median %.4f, trimmed "
                      "%.4f, krum %.4f, multi-krum %.4f\n",
                      attack, mean, med, trim, krum, mk);
        /* The honest spread: noise 0.01 per coordinate over 64 coordinates, about 0.08 for one
         * update, less for averages of several. */
        assert_true(mean > 0.25 && mean > 5 * med); /* the control: plain FedAvg is dragged */
        assert_true(med < 0.05 && trim < 0.05 && mk < 0.02);
        assert_true(krum < 0.12);
        assert_true(chosen >= 0 && chosen < 8);
    }
}

static void test_norm_bound(void **state) {
    (void)state;
    make(0);
    fedc_robust_cfg c = {FEDC_AGG_NORM_BOUND, 0, 0, 0, 0.5};
    float out[P];
    fedc_diag d;
    assert_int_equal(fedc_robust_aggregate(out, g_ptr, N, P, &c, NULL, &d), FEDC_OK);
    /* Honest norms are about 0.8 (> 0.5, so scaled to 0.5); the x100 ones too: the mean of ten
     * vectors of norm 0.5 has norm at most 0.5. */
    double nn = 0;
    for (int i = 0; i < P; i++)
        nn += (double)out[i] * out[i];
    assert_true(sqrt(nn) <= 0.5 + 1e-6);
    assert_true(sqrt(nn) > 0.4);
}

static void test_refusals(void **state) {
    (void)state;
    make(1);
    float out[P];
    fedc_diag d;
    g_u[3][5] = NAN;
    const fedc_robust_kind kinds[] = {FEDC_AGG_MEAN, FEDC_AGG_MEDIAN,     FEDC_AGG_TRIMMED_MEAN,
                                      FEDC_AGG_KRUM, FEDC_AGG_MULTI_KRUM, FEDC_AGG_NORM_BOUND};
    for (int k = 0; k < 6; k++) {
        fedc_robust_cfg c = {kinds[k], 0.25, 2, 0, 0.5};
        assert_int_equal(fedc_robust_aggregate(out, g_ptr, N, P, &c, NULL, &d), FEDC_ERANGE);
    }
    assert_int_equal(fedc_robust_first_bad(g_ptr, N, P), 3);
    g_u[3][5] = INFINITY;
    assert_int_equal(fedc_robust_first_bad(g_ptr, N, P), 3);
    make(1);
    fedc_robust_cfg c = {FEDC_AGG_KRUM, 0, 4, 0, 0};
    assert_int_equal(fedc_robust_aggregate(out, g_ptr, N, P, &c, NULL, &d), FEDC_EINVAL);
    c.kind = FEDC_AGG_TRIMMED_MEAN;
    c.beta = 0.5;
    assert_int_equal(fedc_robust_aggregate(out, g_ptr, N, P, &c, NULL, &d), FEDC_EINVAL);
    c.kind = FEDC_AGG_NORM_BOUND;
    c.clip = 0;
    assert_int_equal(fedc_robust_aggregate(out, g_ptr, N, P, &c, NULL, &d), FEDC_EINVAL);
}

/* The names the metrics line and the model file's recipe carry: --aggregator's spellings
 * (README "Robust aggregation"), NULL outside the enum. */
static void test_names(void **state) {
    (void)state;
    assert_string_equal(fedc_robust_name(FEDC_AGG_MEAN), "mean");
    assert_string_equal(fedc_robust_name(FEDC_AGG_MEDIAN), "median");
    assert_string_equal(fedc_robust_name(FEDC_AGG_TRIMMED_MEAN), "trimmed-mean");
    assert_string_equal(fedc_robust_name(FEDC_AGG_KRUM), "krum");
    assert_string_equal(fedc_robust_name(FEDC_AGG_MULTI_KRUM), "multi-krum");
    assert_string_equal(fedc_robust_name(FEDC_AGG_NORM_BOUND), "norm-bound");
    assert_null(fedc_robust_name((fedc_robust_kind)(FEDC_AGG_NORM_BOUND + 1)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_attacks),
        cmocka_unit_test(test_norm_bound),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
