/* A multilayer perceptron on one flat parameter buffer.
 *
 * Dense layer l maps sizes[l] inputs to sizes[l+1] outputs: z = a W_l + b_l, W_l stored (in, out)
 * row-major. Hidden layers share one activation; the output activation and the loss follow from
 * the task (binary: one sigmoid unit with binary cross-entropy on the logit; multiclass: softmax
 * with cross-entropy; regression: a linear unit with mean squared error). Parameters live in one
 * flat float buffer, layer by layer (W_0, b_0, W_1, b_1, ...); w[l] and b[l] are views into it,
 * and gradients use the same layout, so serialising, averaging, masking and clipping are flat
 * loops. The model also carries its data schema (feature names, label) and the standardisation
 * statistics it was trained with. No federation concepts live here. */
#ifndef FEDC_MODEL_H
#define FEDC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/data.h"
#include "fedc/err.h"

#define FEDC_MAX_LAYERS 16
#define FEDC_MAX_WIDTH 65536
/* Largest data recipe (fedc_model.meta) a model may carry. */
#define FEDC_MODEL_MAX_META (1 << 20)

typedef enum fedc_act {
    FEDC_ACT_RELU = 0,       /* f(x) = max(0, x) */
    FEDC_ACT_LEAKY_RELU = 1, /* f(x) = x > 0 ? x : 0.01 x */
    FEDC_ACT_SIGMOID = 2,    /* f(x) = 1 / (1 + e^-x) */
    FEDC_ACT_TANH = 3,       /* f(x) = tanh(x) */
    FEDC_ACT_LINEAR = 4,     /* f(x) = x (regression output) */
    FEDC_ACT_SOFTMAX = 5,    /* f(x)_i = e^x_i / sum_j e^x_j (multiclass output) */
} fedc_act;

#define FEDC_LEAKY_SLOPE 0.01f

typedef struct fedc_arch {
    int n_layers;                   /* dense layers: hidden layers + the output layer */
    int sizes[FEDC_MAX_LAYERS + 1]; /* sizes[0] inputs ... sizes[n_layers] outputs */
    fedc_act hidden_act;
    fedc_task task;
    int n_classes; /* 2 for binary, K for multiclass, 1 for regression */
} fedc_arch;

typedef struct fedc_model {
    fedc_arch arch;
    size_t n_params;
    float *params;                 /* owned, n_params */
    float *w[FEDC_MAX_LAYERS];     /* views into params: (sizes[l], sizes[l+1]) */
    float *b[FEDC_MAX_LAYERS];     /* views into params: (sizes[l+1]) */
    size_t w_off[FEDC_MAX_LAYERS]; /* offsets of the views in params (also valid for gradients) */
    size_t b_off[FEDC_MAX_LAYERS];
    char **feature_names; /* owned, sizes[0] strings, or NULL */
    char *label_name;     /* owned, or NULL */
    float *mean, *std;    /* owned, sizes[0] each: standardisation applied to inputs */
    /* The data recipe the model was trained with, so that scoring can rebuild its inputs from
     * raw data: a JSON object as UTF-8 text (owned, or NULL for none). Keys in use: "features"
     * (the fedc features spec, docs/features.md), "encoding" (the loader's missing-value,
     * label and categorical settings). fedc_model_set_meta replaces it; model files carry it
     * from version 2 on. */
    char *meta;
} fedc_model;

/* Builds an architecture from the input width, the hidden sizes and the task; checks limits
 * (layer count <= FEDC_MAX_LAYERS, widths 1..FEDC_MAX_WIDTH) and writes a message into d. */
FEDC_MUST_CHECK fedc_err fedc_arch_make(fedc_arch *out, int n_inputs, const int *hidden,
                                        int n_hidden, fedc_act hidden_act, fedc_task task,
                                        int n_classes, fedc_diag *d);

/* Total number of parameters of an architecture. */
size_t fedc_arch_n_params(const fedc_arch *arch);

/* The output layer's activation for a task. */
fedc_act fedc_task_output_act(fedc_task task);

const char *fedc_act_name(fedc_act act);
/* Parses "relu", "leaky_relu", "sigmoid", "tanh" (the hidden activations). */
FEDC_MUST_CHECK fedc_err fedc_act_parse(fedc_act *out, const char *name);
const char *fedc_task_name(fedc_task task);

/* Allocates a model with zeroed parameters, identity standardisation and no names. */
FEDC_MUST_CHECK fedc_err fedc_model_new(fedc_model **out, const fedc_arch *arch);
void fedc_model_destroy(fedc_model **m);

/* Limits of a flat model (below). */
#define FEDC_MAX_FEATURES_FLAT 100000
#define FEDC_MAX_PARAMS_FLAT ((size_t)1 << 30)

/* A flat parameter vector of a model that is not fedc's MLP (a model of the clients' own,
 * fedc/client_model.h): arch.n_layers is 0, sizes[0] the input width the schema and the
 * standardisation statistics describe, n_params its length. It is saved and loaded like an MLP
 * (fedc_model_save/load), averaged and checkpointed the same way; fedc_model_predict refuses it
 * (FEDC_EINVAL) and fedc_model_init leaves it at zero. FEDC_EINVAL for widths or counts beyond
 * the limits above. */
FEDC_MUST_CHECK fedc_err fedc_model_new_flat(fedc_model **out, int n_features, fedc_task task,
                                             int n_classes, size_t n_params);

/* He-normal initialisation (std sqrt(2/fan_in)) for ReLU-family layers, Xavier/Glorot-normal
 * (std sqrt(2/(fan_in+fan_out))) for sigmoid, tanh, linear and softmax layers; biases 0. The
 * stream is derived from seed only, so the same seed gives the same weights. */
void fedc_model_init(fedc_model *m, uint64_t seed);

/* Copies feature names, label name and standardisation statistics into the model. names may be
 * NULL (then none are stored); mean/std may be NULL (identity). */
FEDC_MUST_CHECK fedc_err fedc_model_set_schema(fedc_model *m, char *const *names, const char *label,
                                               const float *mean, const float *std);

/* Replaces the model's data recipe by a copy of json (NULL clears it). The text is stored as it
 * is; it must be at most FEDC_MODEL_MAX_META bytes without NUL (FEDC_EINVAL), FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_model_set_meta(fedc_model *m, const char *json);

/* Predicts for n raw (unstandardised) rows x (n, sizes[0]): writes probabilities of class 1
 * (binary, (n)), class probabilities (multiclass, (n, K)) or predictions (regression, (n)).
 * Runs in evaluation mode (no dropout) with the model's standardisation. */
FEDC_MUST_CHECK fedc_err fedc_model_predict(float *out, const fedc_model *m, const float *x, int n);

/* Same, for rows that are already standardised. */
FEDC_MUST_CHECK fedc_err fedc_model_predict_std(float *out, const fedc_model *m, const float *x,
                                                int n);

/* A named view into the flat parameter (or gradient) buffer: "dense0.weight" is (rows, cols) =
 * (sizes[0], sizes[1]) starting at `offset`; "dense0.bias" is (1, sizes[1]). */
typedef struct fedc_param_view {
    char name[32];
    size_t offset;
    int rows, cols;
} fedc_param_view;

/* Fills up to max views in buffer order (weights then bias per layer) and returns how many the
 * model has (2 * n_layers). */
int fedc_model_views(const fedc_model *m, fedc_param_view *out, int max);

/* Finds a view by name; returns NULL when there is none. The pointer is into m->params. */
float *fedc_model_param(const fedc_model *m, const char *name, int *rows, int *cols);

/* Width of one prediction row: 1, or K for multiclass. */
int fedc_model_out_width(const fedc_model *m);

#endif
