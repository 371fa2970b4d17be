/* What the passes and epoch loop (train.c) and DP-SGD (train_dp.c) share. */
#ifndef FEDC_TRAIN_INT_H
#define FEDC_TRAIN_INT_H

#include <stdint.h>

#include "fedc/train.h"

/* The loss and dLoss/dz of the output layer with every row's delta multiplied by inv_n: 1/n for
 * the batch mean, 1 for per-example deltas (DP-SGD). Work-shared. */
void fedc__loss_backward(fedc_workspace *ws, const fedc_model *m, int n, float pos_weight,
                         float inv_n);

/* d_{l-1}(n, in) = (d_l (n, out) W_l^T (out, in)) * f'(z_{l-1}) * mask (ws->wt[l] holds W_l
 * transposed). Work-shared. */
void fedc__propagate_delta(fedc_workspace *ws, const fedc_arch *a, int l, int n, float dropout);

/* State of a DP-SGD run shared by the team; the fields marked "thread 0" are written by thread
 * 0 only, between barriers. */
typedef struct fedc__dp_run {
    const fedc_train_cfg *cfg;
    const fedc_dataset *train;
    fedc_workspace *ws;
    fedc_model *m;
    fedc_optim *opt;
    const int *perm; /* (n) shuffled rows: fixed-size batches */
    int *idx;        /* (n) Poisson sample of the current step */
    int batch;       /* B = q n */
    double q;
    uint64_t sample_key, drop_key;
    int count;           /* thread 0: rows in the current step */
    double loss_sum;     /* thread 0: summed row losses of the epoch */
    long rows;           /* thread 0: rows used in the epoch */
    uint64_t noise_base; /* thread 0: the first region reserved for this step's noise */
} fedc__dp_run;

/* One DP-SGD step of fedc_train, called by every thread of the team. */
void fedc__dp_step(fedc__dp_run *r, int bi, long step);

/* The secret key of all record-touching randomness of a DP-SGD run. */
uint64_t fedc__dp_secret_key(const fedc_train_cfg *cfg);

/* Checks the DP-SGD fields of a training configuration; FEDC_EINVAL with a message in d. */
fedc_err fedc__check_dp_cfg(const fedc_train_cfg *cfg, fedc_diag *d);

#endif
