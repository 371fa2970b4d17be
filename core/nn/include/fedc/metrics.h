/* Evaluation metrics for the three tasks.
 *
 * Binary metrics take predicted probabilities of the positive class. ROC-AUC is the area under
 * the ROC curve with ties counted as one half (Mann-Whitney form); PR-AUC is average precision,
 * AP = sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds, as in scikit-learn. All sums
 * run in double in a fixed order, so results do not depend on thread count. */
#ifndef FEDC_METRICS_H
#define FEDC_METRICS_H

#include "fedc/err.h"

typedef struct fedc_binary_metrics {
    double roc_auc; /* NaN when only one class is present */
    double pr_auc;  /* NaN when there are no positives */
    double accuracy;
    double precision; /* 0 when nothing is predicted positive */
    double recall;    /* 0 when there are no positives */
    double f1;
    double log_loss;     /* mean -[y log p + (1-y) log(1-p)], p clipped to [1e-7, 1-1e-7] */
    long tp, fp, tn, fn; /* confusion matrix at the threshold (p >= threshold -> positive) */
} fedc_binary_metrics;

typedef struct fedc_multiclass_metrics {
    double accuracy;
    double macro_f1; /* mean over classes of per-class F1 (0 for a class never seen or predicted) */
    double log_loss; /* mean -log p[y], p clipped to >= 1e-7 */
} fedc_multiclass_metrics;

typedef struct fedc_regression_metrics {
    double rmse;
    double r2; /* 1 - SS_res / SS_tot; NaN when the target is constant */
} fedc_regression_metrics;

/* prob: (n) probabilities of class 1; y: (n) labels 0/1. Returns FEDC_ENOMEM or FEDC_OK. */
FEDC_MUST_CHECK fedc_err fedc_metrics_binary(fedc_binary_metrics *out, const float *prob,
                                             const float *y, int n, float threshold);

/* prob: (n, k) row-wise class probabilities; y: (n) class indices. */
void fedc_metrics_multiclass(fedc_multiclass_metrics *out, const float *prob, const float *y, int n,
                             int k);

/* pred, y: (n). */
void fedc_metrics_regression(fedc_regression_metrics *out, const float *pred, const float *y,
                             int n);

#endif
