/* Model construction, initialisation, schema and prediction. The arithmetic of the passes lives
 * in train.c; this file only lays out the flat parameter buffer and its views. */
#include "fedc/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/rng.h"
#include "fedc/train.h"
#include "par.h"

fedc_err fedc_arch_make(fedc_arch *out, int n_inputs, const int *hidden, int n_hidden,
                        fedc_act hidden_act, fedc_task task, int n_classes, fedc_diag *d) {
    memset(out, 0, sizeof *out);
    if (n_hidden < 0 || n_hidden + 1 > FEDC_MAX_LAYERS) {
        fedc_diag_set(d, "too many hidden layers: got %d, at most %d allowed", n_hidden,
                      FEDC_MAX_LAYERS - 1);
        return FEDC_EINVAL;
    }
    if (n_inputs < 1 || n_inputs > FEDC_MAX_WIDTH) {
        fedc_diag_set(d, "input width %d out of range 1..%d", n_inputs, FEDC_MAX_WIDTH);
        return FEDC_EINVAL;
    }
    for (int i = 0; i < n_hidden; i++) {
        if (hidden[i] < 1 || hidden[i] > FEDC_MAX_WIDTH) {
            fedc_diag_set(d, "hidden layer %d: width %d out of range 1..%d", i + 1, hidden[i],
                          FEDC_MAX_WIDTH);
            return FEDC_EINVAL;
        }
    }
    int outputs = 1;
    if (task == FEDC_TASK_MULTICLASS) {
        if (n_classes < 3 || n_classes > FEDC_MAX_WIDTH) {
            fedc_diag_set(d, "multiclass task needs 3..%d classes, got %d", FEDC_MAX_WIDTH,
                          n_classes);
            return FEDC_EINVAL;
        }
        outputs = n_classes;
    } else if (task == FEDC_TASK_BINARY) {
        n_classes = 2;
    } else {
        n_classes = 1;
    }
    if (hidden_act != FEDC_ACT_RELU && hidden_act != FEDC_ACT_LEAKY_RELU &&
        hidden_act != FEDC_ACT_SIGMOID && hidden_act != FEDC_ACT_TANH) {
        fedc_diag_set(d, "hidden activation must be relu, leaky_relu, sigmoid or tanh");
        return FEDC_EINVAL;
    }
    out->n_layers = n_hidden + 1;
    out->sizes[0] = n_inputs;
    for (int i = 0; i < n_hidden; i++)
        out->sizes[i + 1] = hidden[i];
    out->sizes[n_hidden + 1] = outputs;
    out->hidden_act = hidden_act;
    out->task = task;
    out->n_classes = n_classes;
    return FEDC_OK;
}

size_t fedc_arch_n_params(const fedc_arch *arch) {
    size_t n = 0;
    for (int l = 0; l < arch->n_layers; l++)
        n += (size_t)arch->sizes[l] * arch->sizes[l + 1] + (size_t)arch->sizes[l + 1];
    return n;
}

fedc_act fedc_task_output_act(fedc_task task) {
    switch (task) {
    case FEDC_TASK_BINARY:
        return FEDC_ACT_SIGMOID;
    case FEDC_TASK_MULTICLASS:
        return FEDC_ACT_SOFTMAX;
    case FEDC_TASK_REGRESSION:
        return FEDC_ACT_LINEAR;
    }
    return FEDC_ACT_LINEAR;
}

const char *fedc_act_name(fedc_act act) {
    switch (act) {
    case FEDC_ACT_RELU:
        return "relu";
    case FEDC_ACT_LEAKY_RELU:
        return "leaky_relu";
    case FEDC_ACT_SIGMOID:
        return "sigmoid";
    case FEDC_ACT_TANH:
        return "tanh";
    case FEDC_ACT_LINEAR:
        return "linear";
    case FEDC_ACT_SOFTMAX:
        return "softmax";
    }
    return "unknown";
}

fedc_err fedc_act_parse(fedc_act *out, const char *name) {
    static const fedc_act hidden[] = {FEDC_ACT_RELU, FEDC_ACT_LEAKY_RELU, FEDC_ACT_SIGMOID,
                                      FEDC_ACT_TANH};
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
        if (strcmp(name, fedc_act_name(hidden[i])) == 0) {
            *out = hidden[i];
            return FEDC_OK;
        }
    }
    return FEDC_EINVAL;
}

const char *fedc_task_name(fedc_task task) {
    switch (task) {
    case FEDC_TASK_BINARY:
        return "binary";
    case FEDC_TASK_MULTICLASS:
        return "multiclass";
    case FEDC_TASK_REGRESSION:
        return "regression";
    }
    return "unknown";
}

static fedc_err model_alloc(fedc_model **out, const fedc_arch *arch, size_t n_params) {
    fedc_err rc = FEDC_OK;
    *out = NULL;
    fedc_model *m = calloc(1, sizeof *m);
    if (!m)
        return FEDC_ENOMEM;
    m->arch = *arch;
    m->n_params = n_params;
    /* 64-byte alignment keeps every view's start on a cache line when widths allow it. */
    size_t bytes = (m->n_params * sizeof(float) + 63) & ~(size_t)63;
    m->params = aligned_alloc(64, bytes);
    m->mean = malloc((size_t)arch->sizes[0] * sizeof(float));
    m->std = malloc((size_t)arch->sizes[0] * sizeof(float));
    if (!m->params || !m->mean || !m->std) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    memset(m->params, 0, bytes);
    size_t off = 0;
    for (int l = 0; l < arch->n_layers; l++) {
        m->w_off[l] = off;
        m->w[l] = m->params + off;
        off += (size_t)arch->sizes[l] * arch->sizes[l + 1];
        m->b_off[l] = off;
        m->b[l] = m->params + off;
        off += (size_t)arch->sizes[l + 1];
    }
    for (int j = 0; j < arch->sizes[0]; j++) {
        m->mean[j] = 0.0f;
        m->std[j] = 1.0f;
    }
out:
    if (rc)
        fedc_model_destroy(&m);
    *out = m;
    return rc;
}

fedc_err fedc_model_new(fedc_model **out, const fedc_arch *arch) {
    return model_alloc(out, arch, fedc_arch_n_params(arch));
}

fedc_err fedc_model_new_flat(fedc_model **out, int n_features, fedc_task task, int n_classes,
                             size_t n_params) {
    *out = NULL;
    if (n_features < 1 || n_features > FEDC_MAX_FEATURES_FLAT || n_params < 1 ||
        n_params > FEDC_MAX_PARAMS_FLAT || (unsigned)task > FEDC_TASK_REGRESSION)
        return FEDC_EINVAL;
    fedc_arch a;
    memset(&a, 0, sizeof a);
    a.n_layers = 0;
    a.sizes[0] = n_features;
    a.task = task;
    a.n_classes = n_classes;
    return model_alloc(out, &a, n_params);
}

static void free_names(fedc_model *m) {
    if (m->feature_names) {
        for (int j = 0; j < m->arch.sizes[0]; j++)
            free(m->feature_names[j]);
        free(m->feature_names);
        m->feature_names = NULL;
    }
    free(m->label_name);
    m->label_name = NULL;
}

void fedc_model_destroy(fedc_model **pm) {
    if (!pm || !*pm)
        return;
    fedc_model *m = *pm;
    free_names(m);
    free(m->meta);
    free(m->params);
    free(m->mean);
    free(m->std);
    free(m);
    *pm = NULL;
}

void fedc_model_init(fedc_model *m, uint64_t seed) {
    const fedc_arch *a = &m->arch;
    for (int l = 0; l < a->n_layers; l++) {
        int fan_in = a->sizes[l], fan_out = a->sizes[l + 1];
        fedc_act act = l + 1 < a->n_layers ? a->hidden_act : fedc_task_output_act(a->task);
        int he = act == FEDC_ACT_RELU || act == FEDC_ACT_LEAKY_RELU;
        /* He et al. 2015: Var = 2 / fan_in; Glorot & Bengio 2010: Var = 2 / (fan_in + fan_out). */
        double sd = he ? sqrt(2.0 / fan_in) : sqrt(2.0 / (fan_in + fan_out));
        fedc_rng r;
        fedc_rng_init(&r, fedc_rng_key(seed, 0x494e4954u /* "INIT" */, (uint64_t)l, 0));
        size_t nw = (size_t)fan_in * fan_out;
        for (size_t i = 0; i < nw; i++)
            m->w[l][i] = (float)(sd * fedc_rng_normal(&r));
        for (int j = 0; j < fan_out; j++)
            m->b[l][j] = 0.0f;
    }
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

fedc_err fedc_model_set_schema(fedc_model *m, char *const *names, const char *label,
                               const float *mean, const float *std) {
    const int nf = m->arch.sizes[0];
    char **nn = NULL, *nl = NULL;
    /* Copy first, then swap: the sources may be the model's own names. */
    if (names) {
        nn = calloc((size_t)nf, sizeof(char *));
        for (int j = 0; nn && j < nf; j++) {
            if (!(nn[j] = dup_str(names[j]))) {
                for (int q = 0; q < j; q++)
                    free(nn[q]);
                free(nn);
                nn = NULL;
            }
        }
        if (!nn)
            return FEDC_ENOMEM;
    }
    if (label && !(nl = dup_str(label))) {
        if (nn)
            for (int j = 0; j < nf; j++)
                free(nn[j]);
        free(nn);
        return FEDC_ENOMEM;
    }
    free_names(m);
    m->feature_names = nn;
    m->label_name = nl;
    for (int j = 0; j < nf; j++) {
        m->mean[j] = mean ? mean[j] : 0.0f;
        m->std[j] = std ? std[j] : 1.0f;
    }
    return FEDC_OK;
}

fedc_err fedc_model_set_meta(fedc_model *m, const char *json) {
    char *c = NULL;
    if (json) {
        size_t n = strlen(json);
        if (n > FEDC_MODEL_MAX_META)
            return FEDC_EINVAL;
        if (!(c = malloc(n + 1)))
            return FEDC_ENOMEM;
        memcpy(c, json, n + 1);
    }
    free(m->meta);
    m->meta = c;
    return FEDC_OK;
}

int fedc_model_views(const fedc_model *m, fedc_param_view *out, int max) {
    int k = 0;
    for (int l = 0; l < m->arch.n_layers; l++) {
        for (int bias = 0; bias < 2; bias++, k++) {
            if (k >= max)
                continue;
            fedc_param_view *v = &out[k];
            snprintf(v->name, sizeof v->name, "dense%d.%s", l, bias ? "bias" : "weight");
            v->offset = bias ? m->b_off[l] : m->w_off[l];
            v->rows = bias ? 1 : m->arch.sizes[l];
            v->cols = m->arch.sizes[l + 1];
        }
    }
    return k;
}

float *fedc_model_param(const fedc_model *m, const char *name, int *rows, int *cols) {
    fedc_param_view v[2 * FEDC_MAX_LAYERS];
    int n = fedc_model_views(m, v, 2 * FEDC_MAX_LAYERS);
    for (int i = 0; i < n; i++) {
        if (strcmp(v[i].name, name) == 0) {
            if (rows)
                *rows = v[i].rows;
            if (cols)
                *cols = v[i].cols;
            return m->params + v[i].offset;
        }
    }
    return NULL;
}

int fedc_model_out_width(const fedc_model *m) {
    return m->arch.task == FEDC_TASK_MULTICLASS ? m->arch.n_classes : 1;
}

/* Predicts in chunks of up to CHUNK rows, optionally standardising each chunk on the way in. */
#define CHUNK 1024
static fedc_err predict(float *out, const fedc_model *m, const float *x, int n, int standardise) {
    if (m->arch.n_layers < 1)
        return FEDC_EINVAL; /* a flat vector of an own model: its code scores it */
    fedc_workspace *ws = NULL;
    int nf = m->arch.sizes[0], L = m->arch.n_layers, ow = fedc_model_out_width(m);
    fedc_err rc = fedc_workspace_new(&ws, &m->arch, n < CHUNK ? (n > 0 ? n : 1) : CHUNK);
    if (rc)
        return rc;
#pragma omp parallel
    for (int r0 = 0; r0 < n; r0 += CHUNK) {
        int rows = n - r0 < CHUNK ? n - r0 : CHUNK;
        FEDC_OMP_FOR
        for (int i = 0; i < rows; i++) {
            const float *src = x + (size_t)(r0 + i) * nf;
            float *dst = ws->a[0] + (size_t)i * nf;
            for (int j = 0; j < nf; j++)
                dst[j] = standardise ? (src[j] - m->mean[j]) / m->std[j] : src[j];
        }
        fedc__sync();
        fedc_forward(ws, m, rows, 0.0f, 0, 0);
        FEDC_OMP_FOR
        for (int i = 0; i < rows * ow; i++)
            out[(size_t)r0 * ow + i] = ws->a[L][i];
        fedc__sync(); /* the next chunk overwrites the workspace */
    }
    fedc_workspace_destroy(&ws);
    return FEDC_OK;
}

fedc_err fedc_model_predict(float *out, const fedc_model *m, const float *x, int n) {
    return predict(out, m, x, n, 1);
}

fedc_err fedc_model_predict_std(float *out, const fedc_model *m, const float *x, int n) {
    return predict(out, m, x, n, 0);
}
