/* Bring your own model: what a federation client needs from the model it trains.
 *
 * A fedc_client (fedc/client.h) runs the federation protocol: it joins, answers the round-0
 * statistics, trains when asked and scores the global model when asked. What it trains is a
 * fedc_client_model, a table of callbacks with a context pointer. The framework keeps everything
 * around the model: the update is local minus global weights, clipped to the coordinator's L2
 * bound (and to the client-level DP clip norm), weighted by the model's example count (or counted
 * once under DP-FedAvg and the robust rules), quantised and masked for secure aggregation, and
 * evaluated into the exact global metrics the coordinator sums (ROC-AUC from histograms,
 * confusion matrices, regression sums). A model of its own therefore gets secure aggregation,
 * DP-FedAvg and the robust rules without writing any of it.
 *
 * fedc's MLP on a CSV file is one implementation (fedc_mlp_model_new below); a user's model is
 * another (examples/custom_model/). The coordinator trains a model of the clients' own when
 * started with --model external: the parameter count and the initial values come from the first
 * client that joins (describe and init), every later client must describe the same kind and
 * count, and the coordinator never interprets the vector.
 *
 * Threads: describe, begin, init, stats, set_stats and evaluate run on the client's I/O thread;
 * fit runs on its training thread. fit never overlaps begin, stats or set_stats, but evaluate
 * may run while fit trains (a retried round): the two must not share what fit changes. All
 * callbacks return FEDC_OK or an error with a message in d. */
#ifndef FEDC_CLIENT_MODEL_H
#define FEDC_CLIENT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/augment.h"
#include "fedc/data.h"
#include "fedc/err.h"
#include "fedc/fl.h"

/* What the model says about itself before the client joins. The strings and the name array are
 * the model's and must live until its destroy. */
typedef struct fedc_model_desc {
    const char *kind; /* the model's name ("logreg-v1"): every client of a run must agree */
    fedc_task task;   /* picks the global metrics: binary, multiclass or regression */
    int n_classes;    /* 2 for binary, K for multiclass, 1 for regression */
    int n_features;   /* inputs, >= 1: the schema every client must share */
    char *const *feature_names; /* n_features names, in column order */
    const char *label;          /* the label's name */
    size_t n_params; /* 0: fedc's MLP, sized by the coordinator's --layers; else a model of its own
                        with this many float parameters */
} fedc_model_desc;

/* What the coordinator says when a run starts (its Welcome). */
typedef struct fedc_model_run {
    const char *client_name;
    uint64_t seed;      /* the run's seed */
    uint64_t split_key; /* this client's key for its train/validation split (same every restart) */
    int rounds;
    float val_fraction; /* share of the rows to keep for validation */
    size_t n_params;    /* the run's parameter count */
    /* fedc's MLP only: the coordinator's architecture */
    const int *layer_sizes; /* inputs, hidden..., outputs */
    int n_layer_sizes;
    int hidden_act; /* fedc_act */
} fedc_model_run;

/* Rows the model holds for this run (begin fills it; set_stats may change fit_rows). */
typedef struct fedc_model_rows {
    uint64_t train_rows; /* real training rows: the FedAvg weight's numerator */
    uint64_t val_rows;   /* validation rows the model scores */
    uint64_t fit_rows;   /* rows one epoch of fit visits (>= train_rows with augmentation) */
} fedc_model_rows;

/* One round of local training, as the coordinator dictates it. */
typedef struct fedc_model_fit {
    uint32_t round;
    int local_epochs;
    int batch;
    float lr;
    float l2;
    float prox_mu; /* FedProx: mu/2 |w - global|^2 (0 = off) */
    int optimizer; /* fedc_opt_kind: 0 SGD, 1 Adam */
    float dropout;
    float pos_weight; /* weight of positive examples in the loss (binary) */
    uint64_t seed;    /* this client's and round's seed (shuffling, dropout) */
    int threads;      /* OpenMP threads the client was given (0: the default) */
    /* record-level DP-SGD (dp_clip > 0; only for a model with dp_sgd set): per-example clip,
     * noise multiplier, Poisson sampling, and the noise stream (a fedc_dp_noise *, dp.h) */
    float dp_clip;
    float dp_noise;
    int dp_poisson;
    void *dp_rng;
} fedc_model_fit;

/* What one round of fit reports. */
typedef struct fedc_model_fit_out {
    double loss;   /* mean training loss (withheld from the coordinator under DP) */
    long dp_steps; /* DP-SGD steps taken (dp_sgd models) */
    double dp_q;   /* their sampling rate */
} fedc_model_fit_out;

typedef struct fedc_client_model {
    void *ctx;
    /* Required: fills the description (before joining, and again at every new run). */
    fedc_err (*describe)(void *ctx, fedc_model_desc *out, fedc_diag *d);
    /* Required: a run starts: split the data for it, size the model to run->n_params; fill
     * rows. A new run (the coordinator restarted without --resume) calls it again. */
    fedc_err (*begin)(void *ctx, const fedc_model_run *run, fedc_model_rows *rows, fedc_diag *d);
    /* Own models: the initial parameters offered to the coordinator with the join (n values).
     * NULL: zeros. */
    fedc_err (*init)(void *ctx, float *params, size_t n, fedc_diag *d);
    /* Optional: round-0 statistics over the training rows: per feature sum and sum of squares
     * (n_features each), rows, and per class counts (n_classes, classification only). NULL: the
     * model contributes its row count only (no standardisation, no automatic positive weight). */
    fedc_err (*stats)(void *ctx, double *sum, double *sum_sq, uint64_t *class_count, uint64_t *rows,
                      fedc_diag *d);
    /* Optional: the federation's standardisation (n_features means and deviations); may change
     * rows->fit_rows (augmentation). Called before the first fit and when they change. */
    fedc_err (*set_stats)(void *ctx, const float *mean, const float *std, fedc_model_rows *rows,
                          fedc_diag *d);
    /* Required: trains from the global weights (n values) and writes the trained weights into
     * local (n values). The framework forms, clips, weights and masks the update. */
    fedc_err (*fit)(void *ctx, const float *global, float *local, size_t n,
                    const fedc_model_fit *hp, fedc_model_fit_out *out, fedc_diag *d);
    /* Required: scores the weights (n values) on the validation rows and adds the predictions
     * with fedc_eval_acc_add (fl.h: probabilities of class 1, class probabilities, or regression
     * predictions, with the labels), at the coordinator's decision threshold. */
    fedc_err (*evaluate)(void *ctx, const float *weights, size_t n, float threshold,
                         fedc_eval_acc *acc, fedc_diag *d);
    /* Optional: frees ctx (fedc_client_model_destroy calls it). */
    void (*destroy)(void *ctx);
    int dp_sgd; /* 1: fit implements record-level DP-SGD (the client's --dp-clip) */
    /* Optional, for round 0 under --missing mean: per feature, the training cells present (not
     * missing; stats then sums over these only), n_features values. NULL: all rows. */
    fedc_err (*present)(void *ctx, double *present, fedc_diag *d);
} fedc_client_model;

/* fedc's MLP on a CSV file: the data, its label column, columns to leave out, and the local
 * rare-class augmentation. Strings are borrowed until the model is destroyed. */
typedef struct fedc_mlp_model_cfg {
    const char *data;
    const char *label;
    char *const *drop; /* n_drop column names to leave out, or NULL */
    int n_drop;
    int force_regression;
    fedc_aug_cfg augment;
    int quiet; /* no log line of augmentation */
    /* How cells become numbers (fedc/encode.h), borrowed; NULL: the defaults. Under --missing
     * mean missing cells stay out of round 0's sums and are filled with the federation's means
     * (the standardisation's) when they arrive. */
    const fedc_encoding *encoding;
} fedc_mlp_model_cfg;

/* Loads and checks the CSV (a bad file fails here, before anything connects) and returns the
 * model. */
FEDC_MUST_CHECK fedc_err fedc_mlp_model_new(fedc_client_model **out, const fedc_mlp_model_cfg *cfg,
                                            fedc_diag *d);

/* Calls the model's destroy and frees what fedc_mlp_model_new allocated; *m becomes NULL. For a
 * model of the user's own (not allocated by fedc) call its destroy directly instead. */
void fedc_client_model_destroy(fedc_client_model **m);

#endif
