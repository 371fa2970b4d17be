/* Tests for core/nn metrics: hand-worked examples (each expected number derived in a comment),
 * ties, perfect and reversed rankings, NaN cases, and a randomized cross-check of ROC-AUC and
 * average precision against O(n^2) reference definitions written here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "fedc/metrics.h"
#include "fedc/rng.h"

/* Fails the test with both numbers printed when |got - want| > tol (cmocka 1.1 has no double
 * comparison). */
#define assert_near(got, want, tol) assert_near_at((got), (want), (tol), __FILE__, __LINE__)

static void assert_near_at(double got, double want, double tol, const char *file, int line) {
    if (!(fabs(got - want) <= tol)) {
        print_error("got %.17g, expected %.17g (tolerance %g)\n", got, want, tol);
        _fail(file, line);
    }
}

static void binary(fedc_binary_metrics *m, const float *p, const float *y, int n, float thr) {
    fedc_err rc = fedc_metrics_binary(m, p, y, n, thr);
    assert_int_equal(rc, FEDC_OK);
}

/* scores [0.1, 0.4, 0.35, 0.8], labels [0, 0, 1, 1], threshold 0.5. */
static void test_binary_hand_example(void **state) {
    (void)state;
    const float p[] = {0.1f, 0.4f, 0.35f, 0.8f};
    const float y[] = {0, 0, 1, 1};
    fedc_binary_metrics m;
    binary(&m, p, y, 4, 0.5f);
    /* ROC-AUC: pairs (pos, neg): (0.35, 0.1) win, (0.35, 0.4) loss, (0.8, 0.1) win,
     * (0.8, 0.4) win: 3 of 4 = 0.75. */
    assert_near(m.roc_auc, 0.75, 1e-12);
    /* AP, thresholds from the top: 0.8 (pos): TP 1, FP 0, R 1/2, P 1 -> 1/2 * 1 = 1/2;
     * 0.4 (neg): R unchanged, adds 0; 0.35 (pos): TP 2, FP 1, R 1, P 2/3 -> 1/2 * 2/3 = 1/3;
     * 0.1 (neg): adds 0. AP = 1/2 + 1/3 = 5/6. */
    assert_near(m.pr_auc, 5.0 / 6.0, 1e-12);
    /* At 0.5 only 0.8 is positive: TP 1 (0.8), FP 0, FN 1 (0.35), TN 2 (0.1, 0.4). */
    assert_int_equal(m.tp, 1);
    assert_int_equal(m.fp, 0);
    assert_int_equal(m.tn, 2);
    assert_int_equal(m.fn, 1);
    assert_near(m.accuracy, 0.75, 1e-12); /* (1 + 2) / 4 */
    assert_near(m.precision, 1.0, 1e-12); /* 1 / (1 + 0) */
    assert_near(m.recall, 0.5, 1e-12);    /* 1 / (1 + 1) */
    assert_near(m.f1, 2.0 / 3.0, 1e-12);  /* 2 * 1 * 0.5 / (1 + 0.5) */
    /* log loss = -(ln 0.9 + ln 0.6 + ln 0.35 + ln 0.8) / 4
     *          = (0.1053605 + 0.5108256 + 1.0498221 + 0.2231436) / 4 = 0.4722880.
     * The tolerance covers the float rounding of the inputs (about 1e-8 relative). */
    assert_near(m.log_loss, 0.4722880, 1e-6);
    assert_near(m.log_loss, -(log(0.9) + log(0.6) + log(0.35) + log(0.8)) / 4.0, 1e-6);
}

/* Ties between a positive and negatives. scores [0.5, 0.5, 0.2, 0.9, 0.5], labels
 * [1, 0, 0, 1, 0]: positives {0.9, 0.5}, negatives {0.5, 0.2, 0.5}. */
static void test_binary_partial_ties(void **state) {
    (void)state;
    const float p[] = {0.5f, 0.5f, 0.2f, 0.9f, 0.5f};
    const float y[] = {1, 0, 0, 1, 0};
    fedc_binary_metrics m;
    binary(&m, p, y, 5, 0.5f);
    /* Positive 0.9 beats all 3 negatives: 3. Positive 0.5 beats 0.2 (1) and ties two 0.5s
     * (2 * 1/2 = 1): 2. ROC-AUC = (3 + 2) / (2 * 3) = 5/6. */
    assert_near(m.roc_auc, 5.0 / 6.0, 1e-12);
    /* Thresholds: 0.9 (1 pos): TP 1, FP 0, R 1/2, P 1 -> 1/2. 0.5 is one step (1 pos, 2 neg):
     * TP 2, FP 2, R 1, P 1/2 -> 1/2 * 1/2 = 1/4. 0.2: no positive. AP = 3/4. (Splitting the
     * tied group would give a different value, e.g. pos first: 1/2 * 2/2 = 1/2 -> AP 1.) */
    assert_near(m.pr_auc, 0.75, 1e-12);
    /* p >= 0.5 is positive, so the three 0.5s are predicted positive: TP 2 (0.9, 0.5),
     * FP 2 (the 0.5 negatives), TN 1 (0.2), FN 0. */
    assert_int_equal(m.tp, 2);
    assert_int_equal(m.fp, 2);
    assert_int_equal(m.tn, 1);
    assert_int_equal(m.fn, 0);
    assert_near(m.precision, 0.5, 1e-12);
    assert_near(m.recall, 1.0, 1e-12);
    assert_near(m.f1, 2.0 / 3.0, 1e-12); /* 2 * 0.5 * 1 / 1.5 */
    assert_near(m.accuracy, 0.6, 1e-12); /* (2 + 1) / 5 */
}

/* All scores equal: every positive/negative pair is a tie, and there is one threshold at which
 * everything is positive. */
static void test_binary_all_tied(void **state) {
    (void)state;
    const float p[] = {0.3f, 0.3f, 0.3f, 0.3f, 0.3f};
    const float y[] = {1, 0, 0, 1, 0};
    fedc_binary_metrics m;
    binary(&m, p, y, 5, 0.5f);
    assert_near(m.roc_auc, 0.5, 1e-12); /* 6 tied pairs * 1/2 / 6 */
    assert_near(m.pr_auc, 0.4, 1e-12);  /* one step: R 1, P 2/5 */
    /* Nothing reaches 0.5: precision 0 by convention, recall 0, F1 0. */
    assert_int_equal(m.tp, 0);
    assert_int_equal(m.fp, 0);
    assert_int_equal(m.tn, 3);
    assert_int_equal(m.fn, 2);
    assert_near(m.precision, 0.0, 0.0);
    assert_near(m.recall, 0.0, 0.0);
    assert_near(m.f1, 0.0, 0.0);
    assert_near(m.accuracy, 0.6, 1e-12);
}

static void test_binary_perfect_and_reversed(void **state) {
    (void)state;
    const float y[] = {0, 0, 1, 1};
    const float good[] = {0.1f, 0.2f, 0.8f, 0.9f};
    const float bad[] = {0.9f, 0.8f, 0.2f, 0.1f};
    fedc_binary_metrics m;
    binary(&m, good, y, 4, 0.5f);
    assert_near(m.roc_auc, 1.0, 1e-12);
    assert_near(m.pr_auc, 1.0, 1e-12); /* steps 0.9, 0.8 both at precision 1 */
    assert_near(m.accuracy, 1.0, 1e-12);
    assert_near(m.f1, 1.0, 1e-12);
    binary(&m, bad, y, 4, 0.5f);
    assert_near(m.roc_auc, 0.0, 1e-12);
    /* Negatives 0.9, 0.8 come first; then positive 0.2: TP 1, FP 2, R 1/2, P 1/3 -> 1/6;
     * positive 0.1: TP 2, FP 2, R 1, P 1/2 -> 1/4. AP = 1/6 + 1/4 = 5/12. */
    assert_near(m.pr_auc, 5.0 / 12.0, 1e-12);
    assert_near(m.accuracy, 0.0, 1e-12);
    assert_near(m.f1, 0.0, 0.0);
}

/* Only one class present, and no samples at all. */
static void test_binary_nan_cases(void **state) {
    (void)state;
    const float p[] = {0.2f, 0.7f, 0.4f};
    const float neg[] = {0, 0, 0};
    const float pos[] = {1, 1, 1};
    fedc_binary_metrics m;

    binary(&m, p, neg, 3, 0.5f);
    assert_true(isnan(m.roc_auc));
    assert_true(isnan(m.pr_auc));
    assert_near(m.recall, 0.0, 0.0);    /* no positives */
    assert_near(m.precision, 0.0, 0.0); /* TP 0, FP 1 */
    assert_int_equal(m.fp, 1);
    assert_int_equal(m.tn, 2);
    assert_near(m.accuracy, 2.0 / 3.0, 1e-12);

    binary(&m, p, pos, 3, 0.5f);
    assert_true(isnan(m.roc_auc));
    /* Every threshold has precision 1, so AP = 1. */
    assert_near(m.pr_auc, 1.0, 1e-12);
    assert_near(m.recall, 1.0 / 3.0, 1e-12);

    binary(&m, p, pos, 0, 0.5f);
    assert_true(isnan(m.roc_auc));
    assert_true(isnan(m.pr_auc));
    assert_true(isnan(m.accuracy));
    assert_true(isnan(m.log_loss));
    assert_int_equal(m.tp + m.fp + m.tn + m.fn, 0);
    assert_near(m.precision, 0.0, 0.0);
    assert_near(m.recall, 0.0, 0.0);
    assert_near(m.f1, 0.0, 0.0);
}

/* A NaN score ranks below every number and is never >= the threshold. */
static void test_binary_nan_score(void **state) {
    (void)state;
    const float p[] = {0.2f, NAN, 0.9f, 0.1f};
    const float y[] = {1, 0, 1, 0};
    fedc_binary_metrics m;
    binary(&m, p, y, 4, 0.5f);
    /* Pairs: 0.2 > NaN, 0.2 > 0.1, 0.9 > NaN, 0.9 > 0.1: AUC 1; both positives on top: AP 1. */
    assert_near(m.roc_auc, 1.0, 1e-12);
    assert_near(m.pr_auc, 1.0, 1e-12);
    assert_int_equal(m.tp, 1);
    assert_int_equal(m.fn, 1);
    assert_int_equal(m.tn, 2);
    assert_int_equal(m.fp, 0);
}

/* p exactly at the threshold is positive. */
static void test_binary_threshold_inclusive(void **state) {
    (void)state;
    const float p[] = {0.25f, 0.5f, 0.75f};
    const float y[] = {0, 1, 0};
    fedc_binary_metrics m;
    binary(&m, p, y, 3, 0.5f);
    /* Predicted positive: 0.5 (pos, TP) and 0.75 (neg, FP); 0.25 is TN. */
    assert_int_equal(m.tp, 1);
    assert_int_equal(m.fp, 1);
    assert_int_equal(m.tn, 1);
    assert_int_equal(m.fn, 0);
    assert_near(m.precision, 0.5, 1e-12);
    assert_near(m.recall, 1.0, 1e-12);
    assert_near(m.f1, 2.0 / 3.0, 1e-12); /* 2 * 1 / (2 + 1 + 0) */
    binary(&m, p, y, 3, 0.5000001f);
    assert_int_equal(m.tp, 0);
    assert_int_equal(m.fn, 1);
}

/* Clipping: p = 0 for a positive costs -ln(1e-7) = 16.118095651; p = 1 for a positive costs
 * -ln(1 - 1e-7) = 1.00000005e-7 (not 0); p = 1 for a negative costs -ln(1e-7) as well. */
static void test_binary_log_loss_clipping(void **state) {
    (void)state;
    const float p[] = {0.0f, 1.0f};
    const float y[] = {1, 1};
    fedc_binary_metrics m;
    binary(&m, p, y, 2, 0.5f);
    /* (16.118095651 + 0.0000001) / 2 = 8.059047875 */
    assert_near(m.log_loss, 8.059047875, 1e-8);
    const float p2[] = {1.0f};
    const float y2[] = {0};
    binary(&m, p2, y2, 1, 0.5f);
    assert_near(m.log_loss, 16.118095651, 1e-8);
    const float p3[] = {0.5f, 0.5f};
    const float y3[] = {0, 1};
    binary(&m, p3, y3, 2, 0.5f);
    assert_near(m.log_loss, 0.69314718056, 1e-10); /* ln 2 */
}

/* ROC-AUC as the pairwise definition: P(score_pos > score_neg) + 1/2 P(tie). */
static double ref_roc_auc(const float *p, const float *y, int n) {
    double wins = 0.0;
    long pairs = 0;
    for (int i = 0; i < n; i++) {
        if (!(y[i] > 0.5f))
            continue;
        for (int j = 0; j < n; j++) {
            if (y[j] > 0.5f)
                continue;
            pairs++;
            if (p[i] > p[j])
                wins += 1.0;
            else if (p[i] == p[j])
                wins += 0.5;
        }
    }
    return pairs ? wins / (double)pairs : NAN;
}

/* AP as the mean over positives of the precision at that positive's own score: every sample
 * scoring >= it is predicted positive. Grouping the sum by distinct score gives
 * sum_t (positives at t / P) * precision(t), which is the step formula with tied scores as one
 * step. */
static double ref_average_precision(const float *p, const float *y, int n) {
    double sum = 0.0;
    long n_pos = 0;
    for (int i = 0; i < n; i++) {
        if (!(y[i] > 0.5f))
            continue;
        n_pos++;
        long above = 0, pos_above = 0;
        for (int j = 0; j < n; j++) {
            if (p[j] >= p[i]) {
                above++;
                pos_above += y[j] > 0.5f;
            }
        }
        sum += (double)pos_above / (double)above;
    }
    return n_pos ? sum / (double)n_pos : NAN;
}

static void check_against_reference(const float *p, const float *y, int n, float thr) {
    fedc_binary_metrics m;
    binary(&m, p, y, n, thr);
    double auc = ref_roc_auc(p, y, n);
    double ap = ref_average_precision(p, y, n);
    if (isnan(auc))
        assert_true(isnan(m.roc_auc));
    else
        assert_near(m.roc_auc, auc, 1e-12);
    if (isnan(ap))
        assert_true(isnan(m.pr_auc));
    else
        assert_near(m.pr_auc, ap, 1e-12);
    long tp = 0, fp = 0, tn = 0, fn = 0;
    for (int i = 0; i < n; i++) {
        int pos = y[i] > 0.5f, pred = p[i] >= thr;
        tp += pos && pred;
        fp += !pos && pred;
        tn += !pos && !pred;
        fn += pos && !pred;
    }
    assert_int_equal(m.tp, tp);
    assert_int_equal(m.fp, fp);
    assert_int_equal(m.tn, tn);
    assert_int_equal(m.fn, fn);
}

/* 400 random problems with quantised scores (2 to 16 levels, so many ties) and random class
 * balance, including one-class cases, plus a few larger ones. */
static void test_binary_random_vs_reference(void **state) {
    (void)state;
    enum { MAXN = 2000 };
    float *p = malloc(MAXN * sizeof *p);
    float *y = malloc(MAXN * sizeof *y);
    assert_non_null(p);
    assert_non_null(y);
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(12345, 1, 2, 3));
    for (int trial = 0; trial < 400; trial++) {
        int n = trial < 396 ? 1 + (int)fedc_rng_below(&r, 80) : MAXN;
        uint32_t levels = 2u << fedc_rng_below(&r, 4); /* 2, 4, 8 or 16 */
        float rate = fedc_rng_uniform(&r);
        for (int i = 0; i < n; i++) {
            p[i] = (float)fedc_rng_below(&r, levels) / (float)(levels - 1);
            y[i] = fedc_rng_uniform(&r) < rate ? 1.0f : 0.0f;
        }
        check_against_reference(p, y, n, fedc_rng_uniform(&r));
    }
    free(p);
    free(y);
}

/* The ranking metrics depend on the multiset of (score, label) pairs only: permuting the input
 * leaves them bit-identical. */
static void test_binary_order_invariant(void **state) {
    (void)state;
    enum { N = 300 };
    float p[N], y[N], p2[N], y2[N];
    int idx[N];
    fedc_rng r;
    fedc_rng_init(&r, 99);
    for (int i = 0; i < N; i++) {
        p[i] = (float)fedc_rng_below(&r, 7) / 6.0f;
        y[i] = (float)fedc_rng_below(&r, 2);
        idx[i] = i;
    }
    fedc_rng_shuffle(&r, idx, N);
    for (int i = 0; i < N; i++) {
        p2[i] = p[idx[i]];
        y2[i] = y[idx[i]];
    }
    fedc_binary_metrics a, b;
    binary(&a, p, y, N, 0.5f);
    binary(&b, p2, y2, N, 0.5f);
    assert_true(a.roc_auc == b.roc_auc);
    assert_true(a.pr_auc == b.pr_auc);
    assert_int_equal(a.tp, b.tp);
    assert_int_equal(a.fp, b.fp);
}

/* k = 3, five rows:
 *   row 0 [0.7 0.2 0.1] y 0 -> argmax 0, right
 *   row 1 [0.1 0.6 0.3] y 1 -> argmax 1, right
 *   row 2 [0.2 0.3 0.5] y 1 -> argmax 2, wrong
 *   row 3 [0.4 0.4 0.2] y 1 -> tie 0/1, first max 0, wrong
 *   row 4 [0.1 0.1 0.8] y 2 -> argmax 2, right
 * accuracy 3/5. Per class (TP, FP, FN): 0 (1, 1, 0) F1 2/3; 1 (1, 0, 2) F1 2/4 = 1/2;
 * 2 (1, 1, 0) F1 2/3. macro-F1 = (2/3 + 1/2 + 2/3) / 3 = 11/18.
 * log loss = -(ln 0.7 + ln 0.6 + ln 0.3 + ln 0.4 + ln 0.8) / 5
 *          = (0.3566749 + 0.5108256 + 1.2039728 + 0.9162907 + 0.2231436) / 5 = 0.6421815. */
static void test_multiclass_hand_example(void **state) {
    (void)state;
    const float p[] = {0.7f, 0.2f, 0.1f, 0.1f, 0.6f, 0.3f, 0.2f, 0.3f,
                       0.5f, 0.4f, 0.4f, 0.2f, 0.1f, 0.1f, 0.8f};
    const float y[] = {0, 1, 1, 1, 2};
    fedc_multiclass_metrics m;
    fedc_metrics_multiclass(&m, p, y, 5, 3);
    assert_near(m.accuracy, 0.6, 1e-12);
    assert_near(m.macro_f1, 11.0 / 18.0, 1e-12);
    assert_near(m.log_loss, 0.6421815, 1e-6);

    /* The same rows with a fourth class that is never seen nor predicted (probability 0): its
     * F1 is 0 and it still counts in the mean, so macro-F1 = (11/6) / 4 = 11/24. */
    const float p4[] = {0.7f, 0.2f, 0.1f, 0,    0.1f, 0.6f, 0.3f, 0,    0.2f, 0.3f,
                        0.5f, 0,    0.4f, 0.4f, 0.2f, 0,    0.1f, 0.1f, 0.8f, 0};
    fedc_metrics_multiclass(&m, p4, y, 5, 4);
    assert_near(m.accuracy, 0.6, 1e-12);
    assert_near(m.macro_f1, 11.0 / 24.0, 1e-12);
    assert_near(m.log_loss, 0.6421815, 1e-6);
}

static void test_multiclass_edge_cases(void **state) {
    (void)state;
    /* p[y] = 0 is clipped to 1e-7: loss -ln(1e-7) = 16.118095651. The prediction is class 1 and
     * the label class 0, so accuracy 0 and both classes have F1 0. */
    const float p[] = {0.0f, 1.0f};
    const float y[] = {0};
    fedc_multiclass_metrics m;
    fedc_metrics_multiclass(&m, p, y, 1, 2);
    assert_near(m.log_loss, 16.118095651, 1e-8);
    assert_near(m.accuracy, 0.0, 0.0);
    assert_near(m.macro_f1, 0.0, 0.0);
    /* All right with certainty: loss 0, accuracy 1, macro-F1 1. */
    const float q[] = {1, 0, 0, 1};
    const float yq[] = {0, 1};
    fedc_metrics_multiclass(&m, q, yq, 2, 2);
    assert_near(m.log_loss, 0.0, 0.0);
    assert_near(m.accuracy, 1.0, 0.0);
    assert_near(m.macro_f1, 1.0, 0.0);
    /* No rows. */
    fedc_metrics_multiclass(&m, q, yq, 0, 2);
    assert_true(isnan(m.accuracy));
    assert_true(isnan(m.log_loss));
    assert_near(m.macro_f1, 0.0, 0.0);
}

/* pred [2.5, 0, 2, 8], y [3, -0.5, 2, 7]. Squared errors 0.25, 0.25, 0, 1: MSE 1.5 / 4 = 0.375,
 * RMSE sqrt(0.375) = 0.6123724357. mean y = 11.5 / 4 = 2.875; SS_tot = 0.125^2 + 3.375^2 +
 * 0.875^2 + 4.125^2 = 0.015625 + 11.390625 + 0.765625 + 17.015625 = 29.1875;
 * R^2 = 1 - 1.5 / 29.1875 = 0.9486081370. */
static void test_regression_hand_example(void **state) {
    (void)state;
    const float pred[] = {2.5f, 0.0f, 2.0f, 8.0f};
    const float y[] = {3.0f, -0.5f, 2.0f, 7.0f};
    fedc_regression_metrics m;
    fedc_metrics_regression(&m, pred, y, 4);
    assert_near(m.rmse, 0.6123724357, 1e-10);
    assert_near(m.r2, 0.9486081370, 1e-10);
    /* Predicting the mean gives R^2 = 0; perfect predictions give RMSE 0 and R^2 1. */
    const float mean[] = {2.875f, 2.875f, 2.875f, 2.875f};
    fedc_metrics_regression(&m, mean, y, 4);
    assert_near(m.r2, 0.0, 1e-12);
    assert_near(m.rmse, sqrt(29.1875 / 4.0), 1e-12);
    fedc_metrics_regression(&m, y, y, 4);
    assert_near(m.rmse, 0.0, 0.0);
    assert_near(m.r2, 1.0, 0.0);
}

static void test_regression_nan_cases(void **state) {
    (void)state;
    /* Constant target: SS_tot = 0, R^2 undefined; RMSE = sqrt((1 + 0 + 4) / 3). The value 0.1
     * is not exact in binary, which must not turn SS_tot into a tiny positive number. */
    const float pred[] = {1.1f, 0.1f, 2.1f};
    const float y[] = {0.1f, 0.1f, 0.1f};
    fedc_regression_metrics m;
    fedc_metrics_regression(&m, pred, y, 3);
    assert_true(isnan(m.r2));
    assert_near(m.rmse, sqrt(5.0 / 3.0), 1e-6);
    fedc_metrics_regression(&m, pred, y, 0);
    assert_true(isnan(m.r2));
    assert_true(isnan(m.rmse));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_hand_example),
        cmocka_unit_test(test_binary_partial_ties),
        cmocka_unit_test(test_binary_all_tied),
        cmocka_unit_test(test_binary_perfect_and_reversed),
        cmocka_unit_test(test_binary_nan_cases),
        cmocka_unit_test(test_binary_nan_score),
        cmocka_unit_test(test_binary_threshold_inclusive),
        cmocka_unit_test(test_binary_log_loss_clipping),
        cmocka_unit_test(test_binary_random_vs_reference),
        cmocka_unit_test(test_binary_order_invariant),
        cmocka_unit_test(test_multiclass_hand_example),
        cmocka_unit_test(test_multiclass_edge_cases),
        cmocka_unit_test(test_regression_hand_example),
        cmocka_unit_test(test_regression_nan_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
