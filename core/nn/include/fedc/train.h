/* Training: the workspace of one mini-batch, forward and backward passes, and the epoch loop
 * with shuffling, dropout, validation and early stopping.
 *
 * One OpenMP parallel region spans a whole epoch: every kernel inside it is a work-sharing loop,
 * so threads are forked once per epoch rather than once per layer (a fork/join costs
 * microseconds, a small layer at batch 64 less). Dropout masks come from the counter-based
 * generator keyed by (seed, step, layer, index), so they do not depend on the thread count; the
 * loss is summed per row and then in row order. Same data, seed and configuration therefore give
 * bit-identical models for any OMP_NUM_THREADS. */
#ifndef FEDC_TRAIN_H
#define FEDC_TRAIN_H

#include <stdint.h>

#include "fedc/data.h"
#include "fedc/err.h"
#include "fedc/model.h"
#include "fedc/optim.h"

typedef struct fedc_workspace {
    int max_batch;
    fedc_arch arch;
    float *a[FEDC_MAX_LAYERS + 1]; /* a[0] inputs (B, s0); a[l+1] = act(z[l]) * dropout mask */
    float *z[FEDC_MAX_LAYERS];     /* pre-activations (B, s[l+1]) */
    float *d[FEDC_MAX_LAYERS];     /* dLoss/dz[l] (B, s[l+1]) */
    float *mask[FEDC_MAX_LAYERS];  /* dropout scale per hidden unit (B, s[l+1]): 0 or 1/(1-p) */
    float *wt[FEDC_MAX_LAYERS];    /* W_l transposed (s[l+1], s[l]) for the input gradient */
    float *y;                      /* (B) labels of the batch */
    float *row_loss;               /* (B) per-row loss */
    float *grad;                   /* (n_params) gradient, same layout as the parameters */
    double loss;                   /* mean loss of the last batch (set by fedc_loss_backward) */
    void *mem;                     /* one owned allocation backing all the above */
} fedc_workspace;

/* Allocates a workspace for batches of up to max_batch rows. */
FEDC_MUST_CHECK fedc_err fedc_workspace_new(fedc_workspace **out, const fedc_arch *arch,
                                            int max_batch);
void fedc_workspace_destroy(fedc_workspace **ws);

/* Forward pass over the n rows in ws->a[0]. With dropout p > 0 (training), hidden activations
 * are dropped with probability p and scaled by 1/(1-p), the masks keyed by (key, step). Output
 * probabilities/predictions end in ws->a[n_layers]. Work-shared: see the file comment. */
void fedc_forward(fedc_workspace *ws, const fedc_model *m, int n, float dropout, uint64_t key,
                  uint64_t step);

/* Loss of the batch against ws->y and its gradient with respect to the output logits
 * (ws->d[L-1]), averaged over the n rows; pos_weight scales positive rows of binary
 * cross-entropy (1 = unweighted). Sets ws->loss. Work-shared. */
void fedc_loss_backward(fedc_workspace *ws, const fedc_model *m, int n, float pos_weight);

/* Backward pass: parameter gradients into ws->grad from ws->d[L-1]; `dropout` must be the value
 * the forward pass used (its masks are reused). Work-shared. */
void fedc_backward(fedc_workspace *ws, const fedc_model *m, int n, float dropout);

/* Convenience for tests: forward + loss + backward on the given batch (copied into the
 * workspace), outside any parallel region. Returns the mean loss. */
double fedc_loss_grad(fedc_workspace *ws, const fedc_model *m, const float *x, const float *y,
                      int n, float pos_weight, float dropout, uint64_t key, uint64_t step);

typedef enum fedc_stop_metric {
    FEDC_STOP_LOSS = 0,    /* validation loss (unweighted), lower is better */
    FEDC_STOP_ROC_AUC = 1, /* binary only */
    FEDC_STOP_PR_AUC = 2,  /* binary only */
} fedc_stop_metric;

typedef struct fedc_epoch_info {
    int epoch;  /* 1-based */
    int epochs; /* planned */
    double train_loss;
    double val_loss;   /* NaN without validation data */
    double val_metric; /* the stopping metric; NaN without validation data */
    int improved;      /* 1 if this epoch is the best so far */
    double seconds;    /* this epoch's training time */
    double samples_per_s;
} fedc_epoch_info;

typedef void (*fedc_epoch_fn)(void *ctx, const fedc_epoch_info *info);

typedef struct fedc_train_cfg {
    int epochs;
    int batch;
    fedc_optim_cfg opt;
    float dropout;    /* 0 <= p < 1, hidden layers only */
    float pos_weight; /* binary: weight of positive rows; 1 = none */
    int patience;     /* epochs without improvement before stopping; 0 = never stop early */
    fedc_stop_metric stop_metric;
    uint64_t seed;          /* shuffling and dropout streams */
    fedc_epoch_fn on_epoch; /* optional progress callback, called after every epoch */
    void *ctx;
} fedc_train_cfg;

/* Defaults: 20 epochs, batch 64, Adam defaults, no dropout, pos_weight 1, patience 5, stop on
 * validation loss, seed 1. */
fedc_train_cfg fedc_train_defaults(void);

typedef struct fedc_train_report {
    int epochs_run;
    int best_epoch; /* epoch whose weights the model holds (the last one without validation) */
    double best_val_metric;
    double final_train_loss;
    int threads_used; /* team size actually observed inside the training region */
    long steps;
    double seconds;
} fedc_train_report;

/* Trains m on train (already standardised), evaluating on val (may be NULL) after every epoch.
 * With validation and patience > 0, stops after `patience` epochs without improvement and
 * restores the best weights. Errors: FEDC_EINVAL for a bad configuration or data that does not
 * fit the model (message in d), FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_train(fedc_model *m, const fedc_dataset *train,
                                    const fedc_dataset *val, const fedc_train_cfg *cfg,
                                    fedc_train_report *report, fedc_diag *d);

/* Mean unweighted loss of the model on a standardised dataset (log loss, cross-entropy or MSE).
 * FEDC_EMISMATCH when the feature count differs from the model's, FEDC_EINVAL for a label the
 * task does not allow. */
FEDC_MUST_CHECK fedc_err fedc_eval_loss(double *loss, const fedc_model *m, const fedc_dataset *ds);

#endif
