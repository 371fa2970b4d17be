/* The scorer (fedc/score.h): a model copied into one block laid out for inference, and the
 * forward pass compiled for each instruction set (score_kern.h), chosen once at open. */
#include "fedc/score.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "act_int.h"
#include "fedc/kernels.h"
#include "fedc/modelfile.h"

/* Rows by columns of one block of sums in the batch kernel (4 x 32 floats: 8 AVX-512 or 16 AVX2
 * registers). */
#define SCORE_RB 4
#define SCORE_JB 32

typedef void (*score_one_fn)(float *restrict out, const fedc_scorer *s, const float *restrict x,
                             float *restrict work);
typedef void (*score_tile_fn)(float *restrict out, const fedc_scorer *s, const float *restrict x,
                              int rows, float *restrict work);

struct fedc_scorer {
    fedc_model *model; /* owned copy: names, meta, and the parameters w and b point into */
    int n_in, n_out, n_layers, softmax;
    int sizes[FEDC_MAX_LAYERS + 1];
    fedc_act act[FEDC_MAX_LAYERS]; /* per layer; the output layer's is linear under softmax */
    const float *w[FEDC_MAX_LAYERS], *b[FEDC_MAX_LAYERS];
    const float *mean, *std;
    size_t buf_floats; /* floats in each of the workspace's two buffers, a multiple of 16 */
    score_one_fn one;
    score_tile_fn tile;
};

/* Row-wise softmax in place, as fedc_forward computes it: e^(z - max) / sum. */
static void softmax_rows(float *y, int rows, int k) {
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * k;
        float mx = yr[0];
        for (int j = 1; j < k; j++)
            mx = yr[j] > mx ? yr[j] : mx;
        float sum = 0.0f;
        for (int j = 0; j < k; j++) {
            yr[j] = expf(yr[j] - mx);
            sum += yr[j];
        }
        for (int j = 0; j < k; j++)
            yr[j] /= sum;
    }
}

#define KSUF generic
#define KATTR
#include "score_kern.h"
#undef KSUF
#undef KATTR

#if defined(__x86_64__) && defined(__GNUC__)
#define KSUF avx2
#define KATTR __attribute__((target("avx2")))
#include "score_kern.h"
#undef KSUF
#undef KATTR
#define KSUF avx512
#if defined(__clang__) /* clang has no prefer-vector-width target attribute */
#define KATTR __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2")))
#else
#define KATTR                                                                                      \
    __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,prefer-vector-width=512")))
#endif
#include "score_kern.h"
#undef KSUF
#undef KATTR
#endif

static void bind_isa(fedc_scorer *s) {
    s->one = score_one_generic;
    s->tile = score_tile_generic;
#if defined(__x86_64__) && defined(__GNUC__)
    switch (fedc_isa_active()) {
    case FEDC_ISA_AVX512:
        s->one = score_one_avx512;
        s->tile = score_tile_avx512;
        break;
    case FEDC_ISA_AVX2:
        s->one = score_one_avx2;
        s->tile = score_tile_avx2;
        break;
    default:
        break;
    }
#endif
}

/* Takes ownership of m (a private copy). */
static fedc_err scorer_build(fedc_scorer **out, fedc_model *m, const char *what, fedc_diag *d) {
    const fedc_arch *a = &m->arch;
    if (a->n_layers < 1) {
        fedc_diag_set(d,
                      "%s: not an MLP (a flat parameter vector of a model of the clients' own): "
                      "fedc cannot score it",
                      what);
        fedc_model_destroy(&m);
        return FEDC_EINVAL;
    }
    fedc_scorer *s = calloc(1, sizeof *s);
    if (!s) {
        fedc_diag_set(d, "%s: out of memory", what);
        fedc_model_destroy(&m);
        return FEDC_ENOMEM;
    }
    s->model = m;
    s->n_layers = a->n_layers;
    s->n_in = a->sizes[0];
    s->n_out = fedc_model_out_width(m);
    s->softmax = a->task == FEDC_TASK_MULTICLASS;
    int widest = a->sizes[0];
    for (int l = 0; l <= a->n_layers; l++) {
        s->sizes[l] = a->sizes[l];
        widest = a->sizes[l] > widest ? a->sizes[l] : widest;
    }
    for (int l = 0; l < a->n_layers; l++) {
        int last = l + 1 == a->n_layers;
        s->act[l] = !last        ? a->hidden_act
                    : s->softmax ? FEDC_ACT_LINEAR
                                 : fedc_task_output_act(a->task);
        s->w[l] = m->w[l];
        s->b[l] = m->b[l];
    }
    s->mean = m->mean;
    s->std = m->std;
    s->buf_floats = ((size_t)FEDC_SCORE_TILE * (size_t)widest + 15) / 16 * 16;
    bind_isa(s);
    *out = s;
    return FEDC_OK;
}

fedc_err fedc_scorer_open(fedc_scorer **out, const char *path, fedc_diag *d) {
    fedc_model *m = NULL;
    if (!out || !path) {
        fedc_diag_set(d, "fedc_scorer_open: out and path are required");
        return FEDC_EINVAL;
    }
    *out = NULL;
    fedc_err rc = fedc_model_load(&m, path, d);
    if (rc)
        return rc;
    return scorer_build(out, m, path, d);
}

fedc_err fedc_scorer_from_model(fedc_scorer **out, const fedc_model *m, fedc_diag *d) {
    if (!out || !m) {
        fedc_diag_set(d, "fedc_scorer_from_model: out and m are required");
        return FEDC_EINVAL;
    }
    *out = NULL;
    /* A deep copy through the file format: names, statistics, meta and parameters at once. */
    uint8_t *buf = NULL;
    size_t len = 0;
    fedc_model *copy = NULL;
    fedc_err rc = fedc_model_encode(&buf, &len, m);
    if (rc) {
        fedc_diag_set(d, "fedc_scorer_from_model: cannot copy the model: %s", fedc_strerror(rc));
        return rc;
    }
    rc = fedc_model_decode(&copy, buf, len, "model", d);
    free(buf);
    if (rc)
        return rc;
    return scorer_build(out, copy, "model", d);
}

void fedc_scorer_close(fedc_scorer **ps) {
    if (!ps || !*ps)
        return;
    fedc_model_destroy(&(*ps)->model);
    free(*ps);
    *ps = NULL;
}

const fedc_model *fedc_scorer_model(const fedc_scorer *s) {
    return s->model;
}

int fedc_scorer_n_inputs(const fedc_scorer *s) {
    return s->n_in;
}

int fedc_scorer_n_outputs(const fedc_scorer *s) {
    return s->n_out;
}

size_t fedc_scorer_workspace_size(const fedc_scorer *s) {
    return 2 * s->buf_floats * sizeof(float);
}

void *fedc_scorer_workspace_new(const fedc_scorer *s) {
    size_t n = fedc_scorer_workspace_size(s);
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (p)
        memset(p, 0, n);
    return p;
}

fedc_err fedc_score_row(float *out, const fedc_scorer *s, const float *x, void *work) {
    if (!out || !s || !x || !work)
        return FEDC_EINVAL;
    s->one(out, s, x, work);
    return FEDC_OK;
}

fedc_err fedc_score_batch(float *out, const fedc_scorer *s, const float *x, int n, void *work) {
    if (!s || !work || n < 0 || (n > 0 && (!out || !x)))
        return FEDC_EINVAL;
    for (int r0 = 0; r0 < n; r0 += FEDC_SCORE_TILE) {
        int rows = n - r0 < FEDC_SCORE_TILE ? n - r0 : FEDC_SCORE_TILE;
        s->tile(out + (size_t)r0 * s->n_out, s, x + (size_t)r0 * s->n_in, rows, work);
    }
    return FEDC_OK;
}
