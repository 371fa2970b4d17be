/* Evaluation metrics: binary (ROC-AUC, average precision, thresholded counts, log loss),
 * multiclass (accuracy, macro-F1, log loss) and regression (RMSE, R^2).
 *
 * The ranking metrics sort (score, label) pairs once, O(n log n), and then walk groups of tied
 * scores, so the result depends only on the multiset of pairs and not on the input order or on
 * how qsort orders equal keys. Every sum is a double accumulated in one fixed order. A label
 * counts as positive when y > 0.5. NaN scores rank below every number (and are never >= the
 * threshold). Means over zero samples (accuracy, log loss, RMSE) are NaN. Not here: weighted
 * samples, multiclass AUC, streaming accumulation over batches. */
#include "fedc/metrics.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

#define PROB_EPS 1e-7

typedef struct scored {
    float score;
    int pos; /* 1 for a positive label */
} scored;

/* Ascending by score, NaN lowest; ties compare equal. */
static int cmp_scored(const void *pa, const void *pb) {
    float a = ((const scored *)pa)->score;
    float b = ((const scored *)pb)->score;
    int na = isnan(a) != 0, nb = isnan(b) != 0;
    if (na || nb)
        return nb - na;
    return (a > b) - (a < b);
}

static int is_pos(float y) {
    return y > 0.5f;
}

/* ROC-AUC over pairs sorted ascending, n_pos and n_neg > 0. This is the Mann-Whitney statistic
 * U / (P N) with average ranks for ties: summing each positive's average rank and subtracting
 * P (P + 1) / 2 equals counting, for each positive, the negatives ranked below it plus one half of
 * the negatives tied with it. The counting form is used because its terms are exact
 * (half-integers) and it never subtracts two large rank sums. */
static double roc_auc_sorted(const scored *s, int n, long n_pos, long n_neg) {
    double u = 0.0;
    long neg_below = 0;
    int i = 0;
    while (i < n) {
        int j = i;
        long pos_here = 0, neg_here = 0;
        while (j < n && cmp_scored(&s[i], &s[j]) == 0) {
            if (s[j].pos)
                pos_here++;
            else
                neg_here++;
            j++;
        }
        u += (double)pos_here * ((double)neg_below + 0.5 * (double)neg_here);
        neg_below += neg_here;
        i = j;
    }
    return u / ((double)n_pos * (double)n_neg);
}

/* Average precision over pairs sorted ascending, n_pos > 0: thresholds are the distinct scores
 * from the highest down, each group of tied scores is one step, and
 * AP = sum_n (R_n - R_{n-1}) P_n with R_n = TP_n / n_pos and P_n = TP_n / (TP_n + FP_n).
 * R_n - R_{n-1} is the group's positive count over n_pos. */
static double average_precision_sorted(const scored *s, int n, long n_pos) {
    double ap = 0.0;
    long tp = 0, fp = 0;
    int j = n - 1;
    while (j >= 0) {
        int i = j;
        long pos_here = 0, neg_here = 0;
        while (i >= 0 && cmp_scored(&s[i], &s[j]) == 0) {
            if (s[i].pos)
                pos_here++;
            else
                neg_here++;
            i--;
        }
        tp += pos_here;
        fp += neg_here;
        if (pos_here > 0)
            ap += ((double)pos_here / (double)n_pos) * ((double)tp / (double)(tp + fp));
        j = i;
    }
    return ap;
}

fedc_err fedc_metrics_binary(fedc_binary_metrics *out, const float *prob, const float *y, int n,
                             float threshold) {
    fedc_err rc = FEDC_OK;
    scored *s = NULL;
    assert(out && n >= 0 && (n == 0 || (prob && y)));

    long tp = 0, fp = 0, tn = 0, fn = 0;
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
        int pos = is_pos(y[i]);
        int pred = prob[i] >= threshold;
        tp += pos && pred;
        fp += !pos && pred;
        tn += !pos && !pred;
        fn += pos && !pred;
        /* -[y log p + (1 - y) log(1 - p)], p clipped to [eps, 1 - eps]; NaN p stays NaN. */
        double p = prob[i];
        if (p < PROB_EPS)
            p = PROB_EPS;
        if (p > 1.0 - PROB_EPS)
            p = 1.0 - PROB_EPS;
        loss -= pos ? log(p) : log(1.0 - p);
    }
    long n_pos = tp + fn, n_neg = fp + tn;

    out->tp = tp;
    out->fp = fp;
    out->tn = tn;
    out->fn = fn;
    out->accuracy = n > 0 ? (double)(tp + tn) / (double)n : NAN;
    out->precision = tp + fp > 0 ? (double)tp / (double)(tp + fp) : 0.0;
    out->recall = n_pos > 0 ? (double)tp / (double)n_pos : 0.0;
    /* F1 = 2 P R / (P + R) = 2 TP / (2 TP + FP + FN); 0 when TP = 0. */
    out->f1 = tp > 0 ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0.0;
    out->log_loss = n > 0 ? loss / (double)n : NAN;
    out->roc_auc = NAN;
    out->pr_auc = NAN;
    if (n <= 0)
        goto out;

    s = malloc((size_t)n * sizeof *s);
    if (!s) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        s[i].score = prob[i];
        s[i].pos = is_pos(y[i]);
    }
    qsort(s, (size_t)n, sizeof *s, cmp_scored);
    if (n_pos > 0 && n_neg > 0)
        out->roc_auc = roc_auc_sorted(s, n, n_pos, n_neg);
    if (n_pos > 0)
        out->pr_auc = average_precision_sorted(s, n, n_pos);

out:
    free(s);
    return rc;
}

/* Index of the largest entry of row[0..k), the first one on ties (NaN entries never win unless
 * the first entry is NaN). */
static int argmax_row(const float *row, int k) {
    int best = 0;
    for (int c = 1; c < k; c++)
        if (row[c] > row[best])
            best = c;
    return best;
}

void fedc_metrics_multiclass(fedc_multiclass_metrics *out, const float *prob, const float *y, int n,
                             int k) {
    assert(out && n >= 0 && k > 0 && (n == 0 || (prob && y)));
    /* Per class: pred[c] = rows predicted c, truth[c] = rows labelled c, hit[c] = both. The
     * signature has no error return, so an allocation failure is fatal (fail fast). */
    long *counts = calloc((size_t)k * 3, sizeof *counts);
    FEDC_CHECK(counts != NULL);
    long *pred = counts, *truth = counts + k, *hit = counts + 2 * (size_t)k;

    long correct = 0;
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = prob + (size_t)i * (size_t)k;
        /* Labels are validated by the data loader; an out-of-range one here is a caller bug. It
         * is checked as a float first because converting NaN or a huge value to int is UB. */
        FEDC_CHECK(y[i] >= 0.0f && y[i] < (float)k && y[i] == floorf(y[i]));
        int label = (int)y[i];
        int p = argmax_row(row, k);
        pred[p]++;
        truth[label]++;
        if (p == label) {
            hit[label]++;
            correct++;
        }
        double q = row[label]; /* -log p[y], p clipped to >= eps */
        if (q < PROB_EPS)
            q = PROB_EPS;
        loss -= log(q);
    }

    /* F1_c = 2 TP / (2 TP + FP + FN) = 2 hit / (pred + truth); 0 when the class has no hit. */
    double f1_sum = 0.0;
    for (int c = 0; c < k; c++)
        if (hit[c] > 0)
            f1_sum += 2.0 * (double)hit[c] / (double)(pred[c] + truth[c]);

    out->accuracy = n > 0 ? (double)correct / (double)n : NAN;
    out->macro_f1 = f1_sum / (double)k;
    out->log_loss = n > 0 ? loss / (double)n : NAN;
    free(counts);
}

void fedc_metrics_regression(fedc_regression_metrics *out, const float *pred, const float *y,
                             int n) {
    assert(out && n >= 0 && (n == 0 || (pred && y)));
    double sum_y = 0.0, ss_res = 0.0;
    int constant = 1;
    for (int i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)y[i];
        ss_res += d * d;
        sum_y += y[i];
        if (y[i] != y[0])
            constant = 0;
    }
    double mean_y = n > 0 ? sum_y / (double)n : 0.0;
    double ss_tot = 0.0;
    for (int i = 0; i < n; i++) {
        double d = (double)y[i] - mean_y;
        ss_tot += d * d;
    }
    out->rmse = n > 0 ? sqrt(ss_res / (double)n) : NAN;
    /* R^2 = 1 - SS_res / SS_tot; constancy is tested exactly, not through SS_tot's rounding. */
    out->r2 = (n > 0 && !constant && ss_tot > 0.0) ? 1.0 - ss_res / ss_tot : NAN;
}
