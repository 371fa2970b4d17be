/* Forward and backward passes, losses and the epoch loop (DP-SGD's clipping, sampling and steps
 * are in train_dp.c).
 *
 * Every function that runs inside the training region is a sequence of work-sharing loops (see
 * kernels.h): all threads of the team call it together. Scalar results (the batch loss) are
 * summed by one thread over per-row values in row order, never with a float reduction, so the
 * result does not depend on the thread count. */
#include "fedc/clock.h"
#include "fedc/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "act_int.h"
#include "fedc/kernels.h"
#include "fedc/metrics.h"
#include "fedc/rng.h"
#include "par.h"
#include "train_int.h"

#define ALIGN_FLOATS 16 /* 64 bytes */

static size_t round_up(size_t n) {
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

fedc_err fedc_workspace_new(fedc_workspace **out, const fedc_arch *arch, int max_batch) {
    *out = NULL;
    if (max_batch < 1)
        return FEDC_EINVAL;
    fedc_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return FEDC_ENOMEM;
    ws->max_batch = max_batch;
    ws->arch = *arch;
    const int L = arch->n_layers;
    const size_t B = (size_t)max_batch;
    size_t total =
        round_up(B * arch->sizes[0]) + 3 * round_up(B) + round_up(fedc_arch_n_params(arch));
    for (int l = 0; l < L; l++) {
        size_t s = B * arch->sizes[l + 1];
        total += 4 * round_up(s) + round_up((size_t)arch->sizes[l] * arch->sizes[l + 1]);
    }
    ws->mem = aligned_alloc(64, total * sizeof(float));
    if (!ws->mem) {
        free(ws);
        return FEDC_ENOMEM;
    }
    memset(ws->mem, 0, total * sizeof(float));
    float *p = ws->mem;
#define TAKE(dst, count)                                                                           \
    do {                                                                                           \
        (dst) = p;                                                                                 \
        p += round_up(count);                                                                      \
    } while (0)
    TAKE(ws->a[0], B * arch->sizes[0]);
    TAKE(ws->y, B);
    TAKE(ws->row_loss, B);
    TAKE(ws->dp_scale, B);
    TAKE(ws->grad, fedc_arch_n_params(arch));
    for (int l = 0; l < L; l++) {
        size_t s = B * arch->sizes[l + 1];
        TAKE(ws->a[l + 1], s);
        TAKE(ws->z[l], s);
        TAKE(ws->d[l], s);
        TAKE(ws->mask[l], s);
        TAKE(ws->wt[l], (size_t)arch->sizes[l] * arch->sizes[l + 1]);
    }
#undef TAKE
    *out = ws;
    return FEDC_OK;
}

void fedc_workspace_destroy(fedc_workspace **pws) {
    if (!pws || !*pws)
        return;
    free((*pws)->mem);
    free(*pws);
    *pws = NULL;
}

/* f'(z) */
static inline float act_grad(fedc_act act, float z) {
    switch (act) {
    case FEDC_ACT_RELU:
        return z > 0.0f ? 1.0f : 0.0f;
    case FEDC_ACT_LEAKY_RELU:
        return z > 0.0f ? 1.0f : FEDC_LEAKY_SLOPE;
    case FEDC_ACT_SIGMOID: {
        float s = 1.0f / (1.0f + expf(-z));
        return s * (1.0f - s);
    }
    case FEDC_ACT_TANH: {
        float t = tanhf(z);
        return 1.0f - t * t;
    }
    default:
        return 1.0f;
    }
}

/* Per-tile epilogues fused into the products (see fedc_epilogue). */
typedef struct fwd_ctx {
    const float *z;
    float *y, *mask;
    int ld;
    fedc_act act;
    float dropout, scale;
    uint64_t key;
} fwd_ctx;

/* y = act(z), times the dropout mask when dropout > 0 (inverted dropout: kept units are scaled
 * by 1/(1-p)); the mask of element (i, j) depends only on the layer key and i * ld + j. */
static void fwd_epilogue(const fedc_epilogue *e, int i0, int i1, int j0, int j1) {
    const fwd_ctx *c = e->ctx;
    const float *restrict z = c->z;
    float *restrict y = c->y;
    for (int i = i0; i < i1; i++) {
        size_t row = (size_t)i * c->ld;
        if (c->dropout > 0.0f) {
            for (int j = j0; j < j1; j++) {
                size_t ij = row + j;
                float keep = fedc_rng_uniform_at(c->key, ij) >= c->dropout ? c->scale : 0.0f;
                c->mask[ij] = keep;
                y[ij] = fedc__act(c->act, z[ij]) * keep;
            }
        } else if (c->act == FEDC_ACT_RELU) {
            for (int j = j0; j < j1; j++)
                y[row + j] = z[row + j] > 0.0f ? z[row + j] : 0.0f;
        } else {
            for (int j = j0; j < j1; j++)
                y[row + j] = fedc__act(c->act, z[row + j]);
        }
    }
}

typedef struct bwd_ctx {
    float *d;
    const float *z, *mask;
    int ld;
    fedc_act act;
    float dropout;
} bwd_ctx;

/* d *= f'(z), times the dropout mask of the forward pass when dropout > 0. */
static void bwd_epilogue(const fedc_epilogue *e, int i0, int i1, int j0, int j1) {
    const bwd_ctx *c = e->ctx;
    float *restrict d = c->d;
    const float *restrict z = c->z;
    for (int i = i0; i < i1; i++) {
        size_t row = (size_t)i * c->ld;
        if (c->dropout > 0.0f) {
            for (int j = j0; j < j1; j++)
                d[row + j] *= act_grad(c->act, z[row + j]) * c->mask[row + j];
        } else if (c->act == FEDC_ACT_RELU) {
            for (int j = j0; j < j1; j++)
                d[row + j] = z[row + j] > 0.0f ? d[row + j] : 0.0f;
        } else {
            for (int j = j0; j < j1; j++)
                d[row + j] *= act_grad(c->act, z[row + j]);
        }
    }
}

/* d_{l-1}(n, in) = (d_l (n, out) W_l^T (out, in)) * f'(z_{l-1}) * mask, the last factor applied
 * per tile (ws->wt[l] holds W_l transposed). Work-shared. */
void fedc__propagate_delta(fedc_workspace *ws, const fedc_arch *a, int l, int n, float dropout) {
    const int in = a->sizes[l], out = a->sizes[l + 1];
    bwd_ctx c = {.d = ws->d[l - 1],
                 .z = ws->z[l - 1],
                 .mask = ws->mask[l - 1],
                 .ld = in,
                 .act = a->hidden_act,
                 .dropout = dropout};
    fedc_epilogue e = {bwd_epilogue, &c};
    fedc_gemm_ex(ws->d[l - 1], ws->d[l], ws->wt[l], NULL, n, in, out, out, 1, in, in, 0, &e, 1);
}

void fedc_forward(fedc_workspace *ws, const fedc_model *m, int n, float dropout, uint64_t key,
                  uint64_t step) {
    const fedc_arch *a = &m->arch;
    const int L = a->n_layers;
    for (int l = 0; l < L; l++) {
        const int in = a->sizes[l], out = a->sizes[l + 1];
        const int hidden = l + 1 < L;
        if (!hidden && a->task == FEDC_TASK_MULTICLASS) {
            /* Softmax needs whole rows, which span several tiles: a separate pass. */
            fedc_gemm(ws->z[l], ws->a[l], m->w[l], m->b[l], n, out, in, in, 1, out, out, 0);
            const float *restrict z = ws->z[l];
            float *restrict y = ws->a[l + 1];
            FEDC_OMP_FOR
            for (int i = 0; i < n; i++) {
                const float *zr = z + (size_t)i * out;
                float *yr = y + (size_t)i * out;
                float mx = zr[0];
                for (int j = 1; j < out; j++)
                    mx = zr[j] > mx ? zr[j] : mx;
                float s = 0.0f;
                for (int j = 0; j < out; j++) {
                    yr[j] = expf(zr[j] - mx);
                    s += yr[j];
                }
                for (int j = 0; j < out; j++)
                    yr[j] /= s;
            }
            fedc__sync();
            continue;
        }
        fwd_ctx c = {.z = ws->z[l],
                     .y = ws->a[l + 1],
                     .mask = ws->mask[l],
                     .ld = out,
                     .act = hidden ? a->hidden_act : fedc_task_output_act(a->task),
                     .dropout = hidden ? dropout : 0.0f,
                     .scale = 1.0f / (1.0f - (hidden ? dropout : 0.0f)),
                     .key = fedc_rng_key(key, step, (uint64_t)l, 0x44524f50u)};
        fedc_epilogue e = {fwd_epilogue, &c};
        fedc_gemm_ex(ws->z[l], ws->a[l], m->w[l], m->b[l], n, out, in, in, 1, out, out, 0, &e, 1);
    }
}

/* The loss and dLoss/dz of the output layer with every row's delta multiplied by inv_n: 1/n for
 * the batch mean, 1 for per-example deltas (DP-SGD). */
void fedc__loss_backward(fedc_workspace *ws, const fedc_model *m, int n, float pos_weight,
                         float inv_n) {
    const fedc_arch *a = &m->arch;
    const int L = a->n_layers, K = a->sizes[L];
    const float *restrict z = ws->z[L - 1], *restrict p = ws->a[L], *restrict y = ws->y;
    float *restrict dz = ws->d[L - 1], *restrict rl = ws->row_loss;
    if (a->task == FEDC_TASK_BINARY) {
        /* l = w [max(z,0) - z y + log(1 + e^-|z|)], the stable form of
         * -w [y log s(z) + (1-y) log(1-s(z))]; dl/dz = w (s(z) - y), w = pos_weight if y = 1. */
        FEDC_OMP_FOR
        for (int i = 0; i < n; i++) {
            float w = y[i] > 0.5f ? pos_weight : 1.0f;
            float zi = z[i];
            rl[i] = w * ((zi > 0.0f ? zi : 0.0f) - zi * y[i] + log1pf(expf(-fabsf(zi))));
            dz[i] = w * (p[i] - y[i]) * inv_n;
        }
    } else if (a->task == FEDC_TASK_MULTICLASS) {
        /* l = log sum_j e^z_j - z_y; dl/dz_j = p_j - [j = y]. */
        FEDC_OMP_FOR
        for (int i = 0; i < n; i++) {
            const float *zr = z + (size_t)i * K, *pr = p + (size_t)i * K;
            float *dr = dz + (size_t)i * K;
            int c = (int)y[i];
            float mx = zr[0];
            for (int j = 1; j < K; j++)
                mx = zr[j] > mx ? zr[j] : mx;
            float s = 0.0f;
            for (int j = 0; j < K; j++)
                s += expf(zr[j] - mx);
            rl[i] = logf(s) + mx - zr[c];
            for (int j = 0; j < K; j++)
                dr[j] = (pr[j] - (j == c ? 1.0f : 0.0f)) * inv_n;
        }
    } else {
        /* l = (z - y)^2; dl/dz = 2 (z - y). */
        FEDC_OMP_FOR
        for (int i = 0; i < n; i++) {
            float diff = z[i] - y[i];
            rl[i] = diff * diff;
            dz[i] = 2.0f * diff * inv_n;
        }
    }
    fedc__sync();
    /* Only thread 0 reads ws->loss (and nothing writes the row losses before the next call), so
     * no barrier is needed after the sum. */
    if (fedc__thread_id() == 0) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += rl[i];
        ws->loss = s / n;
    }
}

void fedc_loss_backward(fedc_workspace *ws, const fedc_model *m, int n, float pos_weight) {
    fedc__loss_backward(ws, m, n, pos_weight, 1.0f / (float)n);
}

void fedc_backward(fedc_workspace *ws, const fedc_model *m, int n, float dropout) {
    const fedc_arch *a = &m->arch;
    for (int l = a->n_layers - 1; l >= 0; l--) {
        const int in = a->sizes[l], out = a->sizes[l + 1];
        /* dW(in, out) = a_l^T (in, n) d_l (n, out); db = column sums of d_l; W_l^T for the input
         * gradient. The three are independent: one barrier after them. */
        fedc_gemm_ex(ws->grad + m->w_off[l], ws->a[l], ws->d[l], NULL, in, out, n, 1, in, out, out,
                     0, NULL, 0);
        fedc_colsum_nosync(ws->grad + m->b_off[l], ws->d[l], n, out);
        if (l > 0)
            fedc_transpose_nosync(ws->wt[l], m->w[l], in, out);
        fedc__sync();
        if (l == 0)
            break;
        fedc__propagate_delta(ws, a, l, n, dropout);
    }
}

double fedc_loss_grad(fedc_workspace *ws, const fedc_model *m, const float *x, const float *y,
                      int n, float pos_weight, float dropout, uint64_t key, uint64_t step) {
    FEDC_CHECK(n >= 1 && n <= ws->max_batch);
    memcpy(ws->a[0], x, (size_t)n * m->arch.sizes[0] * sizeof(float));
    memcpy(ws->y, y, (size_t)n * sizeof(float));
#pragma omp parallel
    {
        fedc_forward(ws, m, n, dropout, key, step);
        fedc_loss_backward(ws, m, n, pos_weight);
        fedc_backward(ws, m, n, dropout);
    }
    return ws->loss;
}

fedc_train_cfg fedc_train_defaults(void) {
    fedc_train_cfg c;
    memset(&c, 0, sizeof c);
    c.epochs = 20;
    c.batch = 64;
    c.opt = fedc_optim_defaults();
    c.pos_weight = 1.0f;
    c.patience = 5;
    c.stop_metric = FEDC_STOP_LOSS;
    c.seed = 1;
    c.dp_poisson = 1;
    return c;
}

/* Mean unweighted loss of predictions against labels (double sums in row order). */
static double mean_loss(const float *pred, const fedc_dataset *ds, const fedc_arch *a) {
    double s = 0.0;
    const int n = ds->n_rows;
    for (int i = 0; i < n; i++) {
        if (a->task == FEDC_TASK_BINARY) {
            double p = pred[i];
            p = p < 1e-7 ? 1e-7 : (p > 1.0 - 1e-7 ? 1.0 - 1e-7 : p);
            s -= ds->y[i] > 0.5f ? log(p) : log(1.0 - p);
        } else if (a->task == FEDC_TASK_MULTICLASS) {
            double p = pred[(size_t)i * a->n_classes + (int)ds->y[i]];
            s -= log(p < 1e-7 ? 1e-7 : p);
        } else {
            double diff = (double)pred[i] - ds->y[i];
            s += diff * diff;
        }
    }
    return n > 0 ? s / n : NAN;
}

/* Validation: loss and the stopping metric (lower is better for loss, higher for AUCs; the
 * returned score is negated loss so that higher is always better). */
static fedc_err validate(double *val_loss, double *metric, double *score, float *pred,
                         const fedc_model *m, const fedc_dataset *val, fedc_stop_metric sm) {
    fedc_err rc = fedc_model_predict_std(pred, m, val->x, val->n_rows);
    if (rc)
        return rc;
    *val_loss = mean_loss(pred, val, &m->arch);
    *metric = *val_loss;
    *score = -*val_loss;
    if (sm != FEDC_STOP_LOSS && m->arch.task == FEDC_TASK_BINARY) {
        fedc_binary_metrics bm;
        rc = fedc_metrics_binary(&bm, pred, val->y, val->n_rows, 0.5f);
        if (rc)
            return rc;
        double v = sm == FEDC_STOP_ROC_AUC ? bm.roc_auc : bm.pr_auc;
        if (!isnan(v)) {
            *metric = v;
            *score = v;
        }
    }
    return FEDC_OK;
}

static fedc_err check_data(const fedc_model *m, const fedc_dataset *ds, const char *what,
                           fedc_diag *d) {
    const fedc_arch *a = &m->arch;
    if (ds->n_features != a->sizes[0]) {
        fedc_diag_set(d, "%s data has %d features, the model expects %d", what, ds->n_features,
                      a->sizes[0]);
        return FEDC_EMISMATCH;
    }
    for (int i = 0; i < ds->n_rows; i++) {
        float y = ds->y[i];
        int bad = !isfinite(y);
        if (a->task == FEDC_TASK_BINARY)
            bad = bad || (y != 0.0f && y != 1.0f);
        else if (a->task == FEDC_TASK_MULTICLASS)
            bad = bad || y < 0.0f || y >= (float)a->n_classes || y != floorf(y);
        if (bad) {
            fedc_diag_set(d, "%s row %d: label %g is not valid for a %s task", what, i + 1,
                          (double)y, fedc_task_name(a->task));
            return FEDC_EINVAL;
        }
    }
    return FEDC_OK;
}

fedc_err fedc_eval_loss(double *loss, const fedc_model *m, const fedc_dataset *ds) {
    fedc_err rc = check_data(m, ds, "evaluation", NULL);
    if (rc)
        return rc;
    float *pred =
        malloc((size_t)(ds->n_rows > 0 ? ds->n_rows : 1) * fedc_model_out_width(m) * sizeof(float));
    if (!pred)
        return FEDC_ENOMEM;
    rc = fedc_model_predict_std(pred, m, ds->x, ds->n_rows);
    if (!rc)
        *loss = mean_loss(pred, ds, &m->arch);
    free(pred);
    return rc;
}

fedc_err fedc_train(fedc_model *m, const fedc_dataset *train, const fedc_dataset *val,
                    const fedc_train_cfg *cfg, fedc_train_report *report, fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    fedc_workspace *ws = NULL;
    fedc_optim *opt = NULL;
    int *perm = NULL, *idx = NULL;
    float *best = NULL, *pred = NULL;
    memset(report, 0, sizeof *report);

    if (cfg->epochs < 1 || cfg->batch < 1 || !(cfg->dropout >= 0.0f && cfg->dropout < 1.0f) ||
        !(cfg->pos_weight > 0.0f) || !isfinite(cfg->pos_weight) || !(cfg->opt.lr > 0.0f) ||
        cfg->patience < 0 || !(cfg->opt.prox_mu >= 0.0f) ||
        (cfg->opt.prox_mu > 0.0f && !cfg->opt.prox_center)) {
        fedc_diag_set(d,
                      "invalid training configuration: epochs %d, batch %d, dropout %g, "
                      "pos_weight %g, lr %g, patience %d, prox_mu %g (centre %s)",
                      cfg->epochs, cfg->batch, (double)cfg->dropout, (double)cfg->pos_weight,
                      (double)cfg->opt.lr, cfg->patience, (double)cfg->opt.prox_mu,
                      cfg->opt.prox_center ? "given" : "missing");
        return FEDC_EINVAL;
    }
    rc = fedc__check_dp_cfg(cfg, d);
    if (rc)
        return rc;
    if (train->n_rows < 1) {
        fedc_diag_set(d, "no training rows");
        return FEDC_EEMPTY;
    }
    rc = check_data(m, train, "training", d);
    if (!rc && val)
        rc = check_data(m, val, "validation", d);
    if (rc)
        return rc;
    if (val && val->n_rows == 0)
        val = NULL;

    const int n = train->n_rows, nf = train->n_features;
    const int B = cfg->batch < n ? cfg->batch : n;
    const int nb = (n + B - 1) / B;
    const int dp = cfg->dp_clip > 0.0f, poisson = dp && cfg->dp_poisson;
    /* A Poisson batch has B rows on average, sd sqrt(B (1 - q)): room for 3 sd more covers
     * nearly every step, and a larger one is processed in chunks of this size. */
    int W = B;
    if (poisson) {
        W = B + 3 * (int)ceil(sqrt((double)B)) + 1;
        W = W < n ? W : n;
    }
    rc = fedc_workspace_new(&ws, &m->arch, W);
    if (!rc && cfg->opt_state) {
        if (cfg->opt_state->n != m->n_params) {
            fedc_diag_set(d, "the kept optimiser state holds %zu parameters, the model %zu",
                          cfg->opt_state->n, m->n_params);
            rc = FEDC_EINVAL;
        } else {
            opt = cfg->opt_state;
            opt->cfg = cfg->opt;
        }
    } else if (!rc) {
        rc = fedc_optim_new(&opt, &cfg->opt, m);
    }
    if (rc)
        goto out;
    perm = malloc((size_t)n * sizeof(int));
    idx = poisson ? malloc((size_t)n * sizeof(int)) : NULL;
    best = malloc(m->n_params * sizeof(float));
    pred = malloc((size_t)(val ? val->n_rows : 1) * fedc_model_out_width(m) * sizeof(float));
    if (!perm || !best || !pred || (poisson && !idx)) {
        rc = FEDC_ENOMEM;
        goto out;
    }

    /* Under DP-SGD every stream that decides which records meet which randomness is keyed by a
     * secret (fedc__dp_secret_key); otherwise by the seed, for reproducible runs. */
    const uint64_t base_key = dp ? fedc__dp_secret_key(cfg) : cfg->seed;
    fedc_rng shuffle;
    fedc_rng_init(&shuffle, fedc_rng_key(base_key, 0x53485546u /* "SHUF" */, 0, 0));
    const uint64_t drop_key = fedc_rng_key(base_key, 0x44524f50u /* "DROP" */, 0, 0);
    fedc__dp_run dr = {.cfg = cfg,
                       .train = train,
                       .ws = ws,
                       .m = m,
                       .opt = opt,
                       .perm = perm,
                       .idx = idx,
                       .batch = B,
                       .q = (double)B / n,
                       .sample_key = fedc_rng_key(base_key, 0x53414d50u /* "SAMP" */, 0, 0),
                       .drop_key = drop_key};
    if (dp)
        report->dp_q = dr.q;
    double best_score = -INFINITY;
    int since_best = 0;
    /* With a kept state the steps go on from its count (Adam's bias correction, the step keys
     * of dropout); the report counts this call's steps from t_first. */
    long t = cfg->opt_state ? opt->t : 0;
    const long t_first = t;
    double t_start = fedc_clock_s();
    report->best_epoch = 0;

    for (int epoch = 1; epoch <= cfg->epochs; epoch++) {
        if (!poisson) {
            for (int i = 0; i < n; i++)
                perm[i] = i;
            fedc_rng_shuffle(&shuffle, perm, n);
        }
        dr.loss_sum = 0.0;
        dr.rows = 0;
        double epoch_loss = 0.0;
        int team = 1;
        double t0 = fedc_clock_s();
        const long t_base = t;
#pragma omp parallel
        {
#ifdef _OPENMP
#pragma omp master
            team = omp_get_num_threads();
#endif
            for (int bi = 0; bi < nb; bi++) {
                if (dp) {
                    fedc__dp_step(&dr, bi, t_base + bi + 1);
                    continue;
                }
                const int r0 = bi * B, rows = n - r0 < B ? n - r0 : B;
                FEDC_OMP_FOR
                for (int i = 0; i < rows; i++) {
                    int src = perm[r0 + i];
                    memcpy(ws->a[0] + (size_t)i * nf, train->x + (size_t)src * nf,
                           (size_t)nf * sizeof(float));
                    ws->y[i] = train->y[src];
                }
                fedc__sync();
                const long step = t_base + bi + 1;
                fedc_forward(ws, m, rows, cfg->dropout, drop_key, (uint64_t)step);
                fedc_loss_backward(ws, m, rows, cfg->pos_weight);
                fedc_backward(ws, m, rows, cfg->dropout);
                fedc_optim_step(opt, m->params, ws->grad, step);
#pragma omp master
                epoch_loss += ws->loss * rows;
            }
        }
        t += nb;
        opt->t = t;
        double secs = fedc_clock_s() - t0;
        report->threads_used = team;
        report->epochs_run = epoch;
        report->steps = t - t_first;
        if (dp)
            report->dp_steps = t - t_first;
        /* Mean loss over the rows the epoch used (a random number under Poisson sampling; NaN
         * when none was drawn). */
        if (dp)
            epoch_loss = dr.rows > 0 ? dr.loss_sum / (double)dr.rows : NAN;
        else
            epoch_loss /= n;
        report->final_train_loss = epoch_loss;
        if (!isfinite(epoch_loss) && !(dp && dr.rows == 0)) {
            fedc_diag_set(d, "training diverged in epoch %d (loss %g): try a smaller --lr", epoch,
                          epoch_loss);
            rc = FEDC_ERANGE;
            goto out;
        }

        fedc_epoch_info info = {.epoch = epoch,
                                .epochs = cfg->epochs,
                                .train_loss = epoch_loss,
                                .val_loss = NAN,
                                .val_metric = NAN,
                                .improved = 1,
                                .seconds = secs,
                                .samples_per_s = secs > 0 ? n / secs : 0.0};
        int stop = 0;
        if (val) {
            double score;
            rc = validate(&info.val_loss, &info.val_metric, &score, pred, m, val, cfg->stop_metric);
            if (rc)
                goto out;
            info.improved = score > best_score;
            if (info.improved) {
                best_score = score;
                report->best_val_metric = info.val_metric;
                report->best_epoch = epoch;
                memcpy(best, m->params, m->n_params * sizeof(float));
                since_best = 0;
            } else if (cfg->patience > 0 && ++since_best >= cfg->patience) {
                stop = 1;
            }
        } else {
            report->best_epoch = epoch;
        }
        if (cfg->on_epoch)
            cfg->on_epoch(cfg->ctx, &info);
        if (stop)
            break;
    }
    /* Early stopping keeps the best epoch's weights, not the last one's. */
    if (val && report->best_epoch > 0 && report->best_epoch != report->epochs_run)
        memcpy(m->params, best, m->n_params * sizeof(float));
    report->seconds = fedc_clock_s() - t_start;
out:
    free(perm);
    free(idx);
    free(best);
    free(pred);
    if (opt != cfg->opt_state)
        fedc_optim_destroy(&opt);
    fedc_workspace_destroy(&ws);
    return rc;
}
