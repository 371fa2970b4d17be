/* The parts every trivial model of a test's library clients (fedc/client_model.h) shares: two
 * features "f0" and "f1", a binary label "y", and round-0 statistics of a balanced data set with
 * every feature's mean 0.5 and mean square 1. The tests write only what their model does
 * differently (its fit, its evaluation, its initial values). Header only. */
#ifndef FEDC_TEST_FED_MODEL_H
#define FEDC_TEST_FED_MODEL_H

#include <stdint.h>
#include <string.h>

#include "fedc/client_model.h"

static char *fed_model_features[] = {"f0", "f1"};

/* The description of a model of n_params parameters named kind. */
static inline void fed_model_describe(fedc_model_desc *out, const char *kind, size_t n_params) {
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->task = FEDC_TASK_BINARY;
    out->n_classes = 2;
    out->n_features = 2;
    out->feature_names = fed_model_features;
    out->label = "y";
    out->n_params = n_params;
}

/* n training rows, all of them fitted, and 4 validation rows. */
static inline void fed_model_rows(fedc_model_rows *rows, uint64_t n) {
    rows->train_rows = rows->fit_rows = n;
    rows->val_rows = 4;
}

/* Round 0's sums over n rows. */
static inline void fed_model_stats(double *sum, double *sum_sq, uint64_t *class_count,
                                   uint64_t *rows, uint64_t n) {
    for (int j = 0; j < 2; j++)
        sum[j] = 0.5 * (double)n, sum_sq[j] = (double)n;
    class_count[0] = class_count[1] = n / 2;
    *rows = n;
}

#endif
