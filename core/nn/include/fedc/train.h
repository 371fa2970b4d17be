/* Training: the workspace of one mini-batch, forward and backward passes, and the epoch loop
 * with shuffling, dropout, validation and early stopping.
 *
 * One OpenMP parallel region spans a whole epoch: every kernel inside it is a work-sharing loop,
 * so threads are forked once per epoch rather than once per layer (a fork/join costs
 * microseconds, a small layer at batch 64 less). Dropout masks come from the counter-based
 * generator keyed by (seed, step, layer, index), so they do not depend on the thread count; the
 * loss is summed per row and then in row order. Same data, seed and configuration therefore give
 * bit-identical models for any OMP_NUM_THREADS.
 *
 * Record-level DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016,
 * algorithm 1) is a mode of the same loop: every example's gradient is clipped to L2 norm C and
 * Gaussian noise of sd sigma*C is added to the sum before the optimiser step. The per-example
 * norms come from the dense-layer identity (Goodfellow, "Efficient per-example gradient
 * computations", 2015) without materialising per-example gradients; see fedc_dp_backward. The
 * noise is secret (a caller-supplied generator), so DP models are not bit-identical from run to
 * run; everything else is, so with a deterministic noise function (tests) they are again
 * bit-identical for any thread count. What is left out: the accountant (core/fl, libsodium) and
 * privacy of anything computed outside this loop (standardisation statistics, pos_weight from
 * label counts, validation data used for early stopping). */
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
    float *dp_scale;               /* (B) DP-SGD clipping factor c_i of each row of the last pass */
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

/* DP-SGD backward pass over the n rows of the last fedc_forward (same `dropout`): with g_i the
 * gradient of row i's own loss (not divided by n; pos_weight applied) over all parameters,
 * writes sum_i c_i g_i into ws->grad, or adds it when accumulate is 1, where
 * c_i = min(1, clip / ||g_i||) (stored in ws->dp_scale). No noise and no division: that is the
 * caller's. Sets ws->loss (mean loss of the n rows).
 *
 * How, without per-example gradients: first the deltas d_l = dLoss_i/dz_l of every layer are
 * propagated for the whole batch. Row i's weight gradient of layer l is the outer product
 * a_l[i]^T d_l[i], whose squared Frobenius norm is ||a_l[i]||^2 ||d_l[i]||^2, and its bias
 * gradient is d_l[i], so ||g_i||^2 = sum_l (||a_l[i]||^2 + 1) ||d_l[i]||^2 (Goodfellow 2015).
 * Each row of every d_l is then scaled by c_i and the usual batched products give
 * sum_i c_i a_l[i]^T d_l[i] = A_l^T diag(c) D_l. Cost over a plain backward pass: one pass over
 * the activations and deltas for the norms. Work-shared; n >= 1. */
void fedc_dp_backward(fedc_workspace *ws, const fedc_model *m, int n, float pos_weight,
                      float dropout, float clip, int accumulate);

/* Convenience for tests: fedc_forward + fedc_dp_backward over n >= 0 rows, in chunks of
 * ws->max_batch that accumulate into ws->grad (zero for n = 0), outside any parallel region.
 * Chunk k > 0 keys its dropout masks with fedc_rng_key(key, k, 0, 0). scales (n floats, may be
 * NULL) receives every row's c_i. Returns the mean loss (0 for n = 0). */
double fedc_dp_clipped_grad(fedc_workspace *ws, float *scales, const fedc_model *m, const float *x,
                            const float *y, int n, float pos_weight, float dropout, float clip,
                            uint64_t key, uint64_t step);

/* Poisson sampling for one DP-SGD step: writes into idx (room for n) the rows of 0..n-1 that join
 * step `step`, each independently with probability q, in increasing order, and returns how many.
 * Draws the gaps between chosen rows, which are geometric (P(gap = k) = (1-q)^k q), from the
 * stream (key, step): O(q n) work, not O(n). */
int fedc_dp_poisson_sample(int *idx, int n, double q, uint64_t key, uint64_t step);

/* Adds N(0, sd^2) to each of x[0..n). DP-SGD needs secret randomness here (core/fl's
 * fedc_dp_noise_add behind a trampoline); tests pass a deterministic one. */
typedef void (*fedc_noise_fn)(void *ctx, float *x, size_t n, double sd);
/* The same noise in parts drawn by all threads at once (core/fl's fedc_dp_noise_reserve and
 * fedc_dp_noise_add_part): reserve sets aside `parts` independent regions of the stream and
 * returns the first; part adds N(0, sd^2) to x[0..n) from region `region`, may run concurrently
 * for distinct regions and must give the same values whatever thread calls it. */
typedef uint64_t (*fedc_noise_reserve_fn)(void *ctx, uint64_t parts);
typedef void (*fedc_noise_part_fn)(void *ctx, uint64_t region, float *x, size_t n, double sd);

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

    /* Record-level DP-SGD; off when dp_clip == 0. Every step: rows are sampled (dp_poisson),
     * each row's gradient is clipped to norm dp_clip (fedc_dp_backward), N(0, (sigma C)^2) is
     * added to every coordinate of the sum, which is then divided by the expected batch size
     * (q n = batch for Poisson; the batch's fixed size otherwise) and handed to the optimiser
     * (penalties, weight decay and the proximal term act on the noised gradient). A Poisson
     * batch larger than the workspace is processed in chunks that add into one sum, so no batch
     * is ever capped or truncated. All randomness of the run that touches records (sampling,
     * shuffling, dropout masks) is keyed by a 64-bit value derived from 8 numbers drawn through
     * dp_noise_fn once per fedc_train call (its first call: n = 8, sd = 1, x all zero): known
     * batches or masks would void the privacy amplification by sampling. The DP guarantee
     * covers the model's parameters for the number of steps in the report; the training loss
     * in fedc_epoch_info and the report is computed without noise and is not covered. */
    float dp_clip; /* C: every example's gradient (all layers together) is scaled to L2 norm <= C */
    float dp_noise; /* sigma: Gaussian noise of sd sigma*C added to the sum of clipped gradients */
    int dp_poisson; /* 1: Poisson sampling (each row joins a step with probability q = batch/n,
                     * independently; ceil(n/batch) steps per epoch); 0: shuffled fixed-size
                     * batches (the accountant's q = batch/n is then the usual approximation) */
    fedc_noise_fn dp_noise_fn; /* secret N(0, sd^2) noise; required when dp_clip > 0; called on
                                * one thread, n_params values per step when dp_noise > 0 */
    void *dp_noise_ctx;        /* borrowed while training */
    /* Optional, both or neither: each step's noise drawn by the whole team, in parts of
     * FEDC_DP_NOISE_PART values (a count fixed by the model, so results do not depend on the
     * thread count); dp_noise_fn still keys the sampling. Without them one thread draws it. */
    fedc_noise_reserve_fn dp_noise_reserve;
    fedc_noise_part_fn dp_noise_part;

    /* Optional (borrowed while training): an optimiser whose state carries over between calls,
     * as a federated client keeps its Adam moments or SGD momentum from round to round. NULL:
     * a fresh optimiser each call (moments and step count zero). Given: its configuration is
     * replaced by `opt`, its moments and step count t are used and advanced (Adam's bias
     * correction goes on from t), and it must have been made for a model of the same parameter
     * count. The report's steps and dp_steps still count this call's steps only. */
    fedc_optim *opt_state;
} fedc_train_cfg;

#define FEDC_DP_NOISE_PART 16384

/* Defaults: 20 epochs, batch 64, Adam defaults, no dropout, pos_weight 1, patience 5, stop on
 * validation loss, seed 1; DP off (dp_clip 0), Poisson sampling when it is turned on. */
fedc_train_cfg fedc_train_defaults(void);

typedef struct fedc_train_report {
    int epochs_run;
    int best_epoch; /* epoch whose weights the model holds (the last one without validation) */
    double best_val_metric;
    double final_train_loss;
    int threads_used; /* team size actually observed inside the training region */
    long steps;
    double seconds;
    long dp_steps; /* DP-SGD steps taken (0 without DP): the accountant's T */
    double dp_q;   /* DP-SGD sampling rate batch/n (0 without DP): the accountant's q */
} fedc_train_report;

/* Trains m on train (already standardised), evaluating on val (may be NULL) after every epoch.
 * With validation and patience > 0, stops after `patience` epochs without improvement and
 * restores the best weights. With dp_clip > 0 trains with DP-SGD (see fedc_train_cfg).
 * Errors: FEDC_EINVAL for a bad configuration or data that does not fit the model (message in
 * d), FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_train(fedc_model *m, const fedc_dataset *train,
                                    const fedc_dataset *val, const fedc_train_cfg *cfg,
                                    fedc_train_report *report, fedc_diag *d);

/* Mean unweighted loss of the model on a standardised dataset (log loss, cross-entropy or MSE).
 * FEDC_EMISMATCH when the feature count differs from the model's, FEDC_EINVAL for a label the
 * task does not allow. */
FEDC_MUST_CHECK fedc_err fedc_eval_loss(double *loss, const fedc_model *m, const fedc_dataset *ds);

#endif
