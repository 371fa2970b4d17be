/* Federated evaluation: clients reduce their predictions to counts, sums and score histograms;
 * the coordinator merges these and computes global metrics from them (formulas in fl.h).
 *
 * The per-row arithmetic mirrors core/nn/src/metrics.c on purpose: the same positive-label rule
 * (y > 0.5), the same threshold rule (p >= threshold, NaN never positive), the same probability
 * clipping for the log losses (1e-7), the same argmax (first maximum wins) and the same per-class
 * F1 sum, so one client's summary equals fedc_metrics_* on its data except for the binning of
 * ROC-AUC and PR-AUC and the one-pass variance of R^2. Not here: weighted rows, per-class
 * precision/recall output, multiclass AUC. */
#include "fedc/fl.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PROB_EPS 1e-7 /* core/nn/src/metrics.c clips probabilities to [eps, 1 - eps] too */

static size_t confusion_len(const fedc_eval_acc *a) {
    return a->confusion ? (size_t)a->n_classes * (size_t)a->n_classes : 0;
}

fedc_err fedc_eval_acc_new(fedc_eval_acc **out, int task, int n_classes, uint32_t bins) {
    fedc_err rc = FEDC_OK;
    fedc_eval_acc *a = NULL;
    assert(out);
    switch (task) {
    case FEDC_TASK_BINARY:
        if (n_classes != 2 || bins < 2 || bins > FEDC_EVAL_BINS_MAX)
            rc = FEDC_EINVAL;
        break;
    case FEDC_TASK_MULTICLASS:
        if (n_classes < 2 || n_classes > FEDC_EVAL_MAX_CLASSES)
            rc = FEDC_EINVAL;
        break;
    case FEDC_TASK_REGRESSION:
        if (n_classes != 1)
            rc = FEDC_EINVAL;
        break;
    default:
        rc = FEDC_EINVAL;
    }
    if (rc)
        goto out;
    a = calloc(1, sizeof *a);
    if (!a) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    a->task = task;
    a->n_classes = n_classes;
    if (task == FEDC_TASK_BINARY) {
        a->bins = bins;
        a->hist_pos = calloc(bins, sizeof *a->hist_pos);
        a->hist_neg = calloc(bins, sizeof *a->hist_neg);
        if (!a->hist_pos || !a->hist_neg)
            rc = FEDC_ENOMEM;
    } else if (task == FEDC_TASK_MULTICLASS) {
        a->confusion = calloc((size_t)n_classes * (size_t)n_classes, sizeof *a->confusion);
        if (!a->confusion)
            rc = FEDC_ENOMEM;
    }
out:
    if (rc)
        fedc_eval_acc_destroy(&a);
    *out = a;
    return rc;
}

void fedc_eval_acc_destroy(fedc_eval_acc **pa) {
    if (!pa || !*pa)
        return;
    free((*pa)->hist_pos);
    free((*pa)->hist_neg);
    free((*pa)->confusion);
    free(*pa);
    *pa = NULL;
}

void fedc_eval_acc_reset(fedc_eval_acc *a) {
    assert(a);
    a->n = 0;
    a->loss_sum = 0.0;
    if (a->bins) {
        memset(a->hist_pos, 0, a->bins * sizeof *a->hist_pos);
        memset(a->hist_neg, 0, a->bins * sizeof *a->hist_neg);
    }
    a->tp = a->fp = a->tn = a->fn = 0;
    if (a->confusion)
        memset(a->confusion, 0, confusion_len(a) * sizeof *a->confusion);
    a->sse = a->sum_y = a->sum_y2 = 0.0;
}

/* bin = min(bins - 1, floor(p * bins)); p <= 0 and NaN go to bin 0. */
static uint32_t score_bin(float p, uint32_t bins) {
    double s = (double)p * (double)bins;
    if (!(s > 0.0))
        return 0;
    if (s >= (double)bins)
        return bins - 1;
    return (uint32_t)s;
}

static void add_binary(fedc_eval_acc *a, const float *prob, const float *y, int n,
                       float threshold) {
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
        int pos = y[i] > 0.5f;
        int pred = prob[i] >= threshold;
        a->tp += (uint64_t)(pos && pred);
        a->fp += (uint64_t)(!pos && pred);
        a->tn += (uint64_t)(!pos && !pred);
        a->fn += (uint64_t)(pos && !pred);
        uint32_t b = score_bin(prob[i], a->bins);
        if (pos)
            a->hist_pos[b]++;
        else
            a->hist_neg[b]++;
        /* -[y log p + (1 - y) log(1 - p)], p clipped to [eps, 1 - eps]; NaN p stays NaN. */
        double p = prob[i];
        if (p < PROB_EPS)
            p = PROB_EPS;
        if (p > 1.0 - PROB_EPS)
            p = 1.0 - PROB_EPS;
        loss -= pos ? log(p) : log(1.0 - p);
    }
    a->loss_sum += loss;
}

/* Index of the largest entry of row[0..k), the first one on ties (as core/nn's argmax). */
static int argmax_row(const float *row, int k) {
    int best = 0;
    for (int c = 1; c < k; c++)
        if (row[c] > row[best])
            best = c;
    return best;
}

static void add_multiclass(fedc_eval_acc *a, const float *prob, const float *y, int n) {
    const int k = a->n_classes;
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = prob + (size_t)i * (size_t)k;
        /* Labels come validated from the data loader; a bad one is a caller bug. Checked as a
         * float first: converting NaN or a huge value to int is undefined. */
        FEDC_CHECK(y[i] >= 0.0f && y[i] < (float)k && y[i] == floorf(y[i]));
        int label = (int)y[i];
        a->confusion[(size_t)label * (size_t)k + (size_t)argmax_row(row, k)]++;
        double q = row[label]; /* -log p[y], p clipped to >= eps */
        if (q < PROB_EPS)
            q = PROB_EPS;
        loss -= log(q);
    }
    a->loss_sum += loss;
}

static void add_regression(fedc_eval_acc *a, const float *pred, const float *y, int n) {
    double sse = 0.0, sum_y = 0.0, sum_y2 = 0.0;
    for (int i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)y[i];
        sse += d * d;
        sum_y += (double)y[i];
        sum_y2 += (double)y[i] * (double)y[i];
    }
    a->sse += sse;
    a->sum_y += sum_y;
    a->sum_y2 += sum_y2;
    a->loss_sum += sse;
}

void fedc_eval_acc_add(fedc_eval_acc *a, const float *pred, const float *y, int n,
                       float threshold) {
    assert(a && n >= 0 && (n == 0 || (pred && y)));
    if (n == 0)
        return;
    switch (a->task) {
    case FEDC_TASK_BINARY:
        add_binary(a, pred, y, n, threshold);
        break;
    case FEDC_TASK_MULTICLASS:
        add_multiclass(a, pred, y, n);
        break;
    default:
        add_regression(a, pred, y, n);
        break;
    }
    a->n += (uint64_t)n;
}

fedc_err fedc_eval_acc_merge(fedc_eval_acc *a, const fedc_eval_acc *b) {
    assert(a && b);
    if (a->task != b->task || a->n_classes != b->n_classes || a->bins != b->bins)
        return FEDC_EMISMATCH;
    a->n += b->n;
    a->loss_sum += b->loss_sum;
    for (uint32_t i = 0; i < a->bins; i++) {
        a->hist_pos[i] += b->hist_pos[i];
        a->hist_neg[i] += b->hist_neg[i];
    }
    a->tp += b->tp;
    a->fp += b->fp;
    a->tn += b->tn;
    a->fn += b->fn;
    for (size_t i = 0; i < confusion_len(a); i++)
        a->confusion[i] += b->confusion[i];
    a->sse += b->sse;
    a->sum_y += b->sum_y;
    a->sum_y2 += b->sum_y2;
    return FEDC_OK;
}

/* The binned ROC-AUC and average precision; both NaN when undefined. */
static void binned_ranking(const fedc_eval_acc *a, double *roc_auc, double *pr_auc) {
    uint64_t n_pos = 0, n_neg = 0;
    for (uint32_t b = 0; b < a->bins; b++) {
        n_pos += a->hist_pos[b];
        n_neg += a->hist_neg[b];
    }
    *roc_auc = NAN;
    *pr_auc = NAN;
    if (n_pos > 0 && n_neg > 0) {
        /* Mann-Whitney counting form: each positive beats the negatives in lower bins and ties
         * (one half) with those in its own bin. The terms are exact half-integers. */
        double u = 0.0;
        uint64_t neg_below = 0;
        for (uint32_t b = 0; b < a->bins; b++) {
            u += (double)a->hist_pos[b] * ((double)neg_below + 0.5 * (double)a->hist_neg[b]);
            neg_below += a->hist_neg[b];
        }
        *roc_auc = u / ((double)n_pos * (double)n_neg);
    }
    if (n_pos > 0) {
        /* AP = sum (R_b - R_{b-1}) P_b, thresholds at the bins from the top down. */
        double ap = 0.0;
        uint64_t tp = 0, fp = 0;
        for (uint32_t b = a->bins; b-- > 0;) {
            tp += a->hist_pos[b];
            fp += a->hist_neg[b];
            if (a->hist_pos[b] > 0)
                ap += ((double)a->hist_pos[b] / (double)n_pos) * ((double)tp / (double)(tp + fp));
        }
        *pr_auc = ap;
    }
}

static void summary_binary(const fedc_eval_acc *a, fedc_eval_summary *s) {
    const uint64_t tp = a->tp, fp = a->fp, tn = a->tn, fn = a->fn;
    s->accuracy = (double)(tp + tn) / (double)a->n;
    s->precision = tp + fp > 0 ? (double)tp / (double)(tp + fp) : 0.0;
    s->recall = tp + fn > 0 ? (double)tp / (double)(tp + fn) : 0.0;
    /* F1 = 2 P R / (P + R) = 2 TP / (2 TP + FP + FN); 0 when TP = 0. */
    s->f1 = tp > 0 ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0.0;
    binned_ranking(a, &s->roc_auc, &s->pr_auc);
}

static void summary_multiclass(const fedc_eval_acc *a, fedc_eval_summary *s) {
    const size_t k = (size_t)a->n_classes;
    uint64_t correct = 0;
    double f1_sum = 0.0;
    for (size_t c = 0; c < k; c++) {
        /* F1_c = 2 TP / (2 TP + FP + FN) = 2 hit / (predicted + true); 0 without a hit. */
        uint64_t hit = a->confusion[c * k + c], truth = 0, pred = 0;
        for (size_t j = 0; j < k; j++) {
            truth += a->confusion[c * k + j];
            pred += a->confusion[j * k + c];
        }
        correct += hit;
        if (hit > 0)
            f1_sum += 2.0 * (double)hit / (double)(pred + truth);
    }
    s->accuracy = (double)correct / (double)a->n;
    s->macro_f1 = f1_sum / (double)k;
}

static void summary_regression(const fedc_eval_acc *a, fedc_eval_summary *s) {
    const double n = (double)a->n;
    s->rmse = sqrt(a->sse / n);
    /* SS_tot = sum y^2 - (sum y)^2 / n. This one-pass form loses about log2(mean^2 / var) bits
     * to cancellation, and the two sums of n terms can each be off by up to about n ulps of
     * sum y^2, so an SS_tot below 4 (n + 2) ulps of sum y^2 is indistinguishable from a constant
     * target and R^2 is NaN there (core/nn tests constancy exactly, which sums cannot). That
     * treats targets whose sd / |mean| is below 2 sqrt((n + 2) eps), 3e-5 at n = 10^6, as
     * constant. */
    double ss_tot = a->sum_y2 - a->sum_y * a->sum_y / n;
    if (ss_tot > 4.0 * (n + 2.0) * DBL_EPSILON * a->sum_y2)
        s->r2 = 1.0 - a->sse / ss_tot;
}

void fedc_eval_acc_summary(const fedc_eval_acc *a, fedc_eval_summary *out) {
    assert(a && out);
    out->n = a->n;
    out->loss = out->roc_auc = out->pr_auc = out->precision = out->recall = out->f1 = NAN;
    out->accuracy = out->macro_f1 = out->rmse = out->r2 = NAN;
    if (a->n == 0)
        return;
    out->loss = a->loss_sum / (double)a->n;
    switch (a->task) {
    case FEDC_TASK_BINARY:
        summary_binary(a, out);
        break;
    case FEDC_TASK_MULTICLASS:
        summary_multiclass(a, out);
        break;
    default:
        summary_regression(a, out);
        break;
    }
}

void fedc_eval_acc_budget(const fedc_eval_acc *a, double budget, double *threshold, double *alerts,
                          double *precision, double *recall) {
    *threshold = 1.0;
    *alerts = 0.0;
    *precision = *recall = NAN;
    if (a->task != FEDC_TASK_BINARY || a->n == 0 || !(budget > 0))
        return;
    uint64_t pos = 0, tp = 0, flagged = 0;
    for (uint32_t b = 0; b < a->bins; b++)
        pos += a->hist_pos[b];
    double cap = budget * (double)a->n;
    for (uint32_t b = a->bins; b-- > 0;) {
        uint64_t add = a->hist_pos[b] + a->hist_neg[b];
        if ((double)(flagged + add) > cap)
            break;
        flagged += add;
        tp += a->hist_pos[b];
        *threshold = (double)b / (double)a->bins;
    }
    *alerts = (double)flagged / (double)a->n;
    *precision = flagged ? (double)tp / (double)flagged : NAN;
    *recall = pos ? (double)tp / (double)pos : NAN;
}
