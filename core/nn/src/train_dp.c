/* DP-SGD (Abadi et al. 2016) on top of the passes of train.c: per-example clipping of the
 * backward pass, the clipped gradient sum of a batch, Poisson sampling, and the pieces of
 * fedc_train's DP-SGD steps (one step, the secret key, the configuration check).
 *
 * As in train.c, every function that runs inside the training region is a sequence of
 * work-sharing loops that all threads of the team call together, and scalar results are summed
 * by one thread in row order, so results do not depend on the thread count. */
#include "fedc/train.h"

#include <math.h>
#include <string.h>

#include "fedc/kernels.h"
#include "fedc/rng.h"
#include "par.h"
#include "train_int.h"

/* sum_j v[j]^2: eight float partial sums (independent chains the compiler can keep in vector
 * registers; a sequential double sum ran at one add per 4 cycles and dominated the DP pass),
 * added in double, in an order fixed by n alone. No cancellation can occur, so the float partial
 * sums lose at most about n/8 * 2^-24 relative. */
static double sum_sq(const float *restrict v, int n) {
    float acc[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += v[j + k] * v[j + k];
    double s = 0.0;
    for (; j < n; j++)
        s += (double)v[j] * v[j];
    for (int k = 0; k < 8; k++)
        s += acc[k];
    return s;
}

/* Per-example clipping factors from the deltas of every layer (Goodfellow 2015):
 *   ||g_i||^2 = sum_l (||a_l[i]||^2 + 1) ||d_l[i]||^2,   c_i = min(1, clip / ||g_i||),
 * the "+ 1" being the bias. Then d_l[i] *= c_i in every layer. Each row is one thread's, summed
 * in a fixed order, so the factors do not depend on the thread count. No closing barrier. */
static void clip_rows_nosync(fedc_workspace *ws, const fedc_arch *a, int n, float clip) {
    const int L = a->n_layers;
    const double c2 = (double)clip * (double)clip;
    FEDC_OMP_FOR
    for (int i = 0; i < n; i++) {
        double sq = 0.0;
        for (int l = 0; l < L; l++) {
            const int in = a->sizes[l], out = a->sizes[l + 1];
            const float *ar = ws->a[l] + (size_t)i * in, *dr = ws->d[l] + (size_t)i * out;
            sq += (1.0 + sum_sq(ar, in)) * sum_sq(dr, out);
        }
        const float c = sq > c2 ? (float)((double)clip / sqrt(sq)) : 1.0f;
        ws->dp_scale[i] = c;
        if (c < 1.0f) {
            for (int l = 0; l < L; l++) {
                const int out = a->sizes[l + 1];
                float *dr = ws->d[l] + (size_t)i * out;
                for (int j = 0; j < out; j++)
                    dr[j] *= c;
            }
        }
    }
}

void fedc_dp_backward(fedc_workspace *ws, const fedc_model *m, int n, float pos_weight,
                      float dropout, float clip, int accumulate) {
    const fedc_arch *a = &m->arch;
    const int L = a->n_layers;
    /* Per-example output deltas: dLoss_i/dz, not divided by n. */
    fedc__loss_backward(ws, m, n, pos_weight, 1.0f);
    for (int l = 1; l < L; l++)
        fedc_transpose_nosync(ws->wt[l], m->w[l], a->sizes[l], a->sizes[l + 1]);
    fedc__sync();
    /* d_{l-1}(n, in) = (d_l (n, out) W_l^T (out, in)) * f'(z_{l-1}) * mask, for every layer first:
     * the norms need all of them before any weight gradient is formed. */
    for (int l = L - 1; l > 0; l--)
        fedc__propagate_delta(ws, a, l, n, dropout);
    clip_rows_nosync(ws, a, n, clip);
    fedc__sync();
    /* sum_i c_i a_l[i]^T d_l[i] = A_l^T (in, n) diag(c) D_l (n, out), diag(c) already in D_l; the
     * bias gets the column sums of diag(c) D_l. All layers are independent: one barrier. */
    for (int l = 0; l < L; l++) {
        const int in = a->sizes[l], out = a->sizes[l + 1];
        fedc_gemm_ex(ws->grad + m->w_off[l], ws->a[l], ws->d[l], NULL, in, out, n, 1, in, out, out,
                     accumulate, NULL, 0);
        fedc_colsum_acc_nosync(ws->grad + m->b_off[l], ws->d[l], n, out, accumulate);
    }
    fedc__sync();
}

/* Dropout key of chunk k of one step (chunk 0 keeps the step's key). */
static uint64_t chunk_key(uint64_t key, int k) {
    return k == 0 ? key : fedc_rng_key(key, (uint64_t)k, 0, 0);
}

double fedc_dp_clipped_grad(fedc_workspace *ws, float *scales, const fedc_model *m, const float *x,
                            const float *y, int n, float pos_weight, float dropout, float clip,
                            uint64_t key, uint64_t step) {
    FEDC_CHECK(n >= 0 && clip > 0.0f);
    const int nf = m->arch.sizes[0], W = ws->max_batch;
    if (n == 0) {
        memset(ws->grad, 0, m->n_params * sizeof(float));
        return 0.0;
    }
    double loss = 0.0;
    for (int c0 = 0, k = 0; c0 < n; c0 += W, k++) {
        const int rows = n - c0 < W ? n - c0 : W;
        memcpy(ws->a[0], x + (size_t)c0 * nf, (size_t)rows * nf * sizeof(float));
        memcpy(ws->y, y + c0, (size_t)rows * sizeof(float));
        const uint64_t ck = chunk_key(key, k);
#pragma omp parallel
        {
            fedc_forward(ws, m, rows, dropout, ck, step);
            fedc_dp_backward(ws, m, rows, pos_weight, dropout, clip, c0 > 0);
        }
        if (scales)
            memcpy(scales + c0, ws->dp_scale, (size_t)rows * sizeof(float));
        loss += ws->loss * rows;
    }
    return loss / n;
}

int fedc_dp_poisson_sample(int *idx, int n, double q, uint64_t key, uint64_t step) {
    if (n < 1 || !(q > 0.0))
        return 0;
    if (q >= 1.0) {
        for (int i = 0; i < n; i++)
            idx[i] = i;
        return n;
    }
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(key, step, 0x504f4953u /* "POIS" */, 0));
    /* The gap before the next chosen row is floor(ln u / ln(1 - q)) for u uniform in (0, 1]:
     * P(gap = k) = P((1-q)^(k+1) < u <= (1-q)^k) = (1-q)^k q, i.e. independent Bernoulli(q)
     * trials for the rows skipped and the row taken. */
    const double l1q = log1p(-q);
    int count = 0;
    double pos = -1.0;
    for (;;) {
        double u = ((double)(fedc_rng_next(&r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
        pos += floor(log(u) / l1q) + 1.0;
        if (pos >= (double)n)
            break;
        idx[count++] = (int)pos;
    }
    return count;
}

/* One DP-SGD step (Abadi et al. 2016, algorithm 1), called by every thread of the team: sample,
 * clipped sum over the batch (chunks of the workspace size add up), noise, division by the
 * expected batch size, optimiser step. */
void fedc__dp_step(fedc__dp_run *r, int bi, long step) {
    const fedc_train_cfg *cfg = r->cfg;
    const fedc_dataset *tr = r->train;
    fedc_workspace *ws = r->ws;
    const int n = tr->n_rows, nf = tr->n_features, W = ws->max_batch;
    if (fedc__thread_id() == 0) {
        if (cfg->dp_poisson)
            r->count = fedc_dp_poisson_sample(r->idx, n, r->q, r->sample_key, (uint64_t)step);
        else
            r->count = n - bi * r->batch < r->batch ? n - bi * r->batch : r->batch;
        r->rows += r->count;
    }
    fedc__sync();
    const int count = r->count;
    const int *src = cfg->dp_poisson ? r->idx : r->perm + (size_t)bi * r->batch;
    float *restrict g = ws->grad;
    const long np = (long)r->m->n_params;
    if (count == 0) {
        /* An empty Poisson batch is still a step: the update is pure noise. */
        FEDC_OMP_FOR
        for (long j = 0; j < np; j++)
            g[j] = 0.0f;
        fedc__sync();
    }
    for (int c0 = 0, k = 0; c0 < count; c0 += W, k++) {
        const int rows = count - c0 < W ? count - c0 : W;
        FEDC_OMP_FOR
        for (int i = 0; i < rows; i++) {
            const int s = src[c0 + i];
            memcpy(ws->a[0] + (size_t)i * nf, tr->x + (size_t)s * nf, (size_t)nf * sizeof(float));
            ws->y[i] = tr->y[s];
        }
        fedc__sync();
        fedc_forward(ws, r->m, rows, cfg->dropout, chunk_key(r->drop_key, k), (uint64_t)step);
        fedc_dp_backward(ws, r->m, rows, cfg->pos_weight, cfg->dropout, cfg->dp_clip, c0 > 0);
        if (fedc__thread_id() == 0)
            r->loss_sum += ws->loss * rows;
    }
    const double sd = (double)cfg->dp_noise * cfg->dp_clip;
    if (cfg->dp_noise > 0.0f && cfg->dp_noise_part) {
        /* The whole team draws the noise, one part of FEDC_DP_NOISE_PART values each time. */
        const long parts = (np + FEDC_DP_NOISE_PART - 1) / FEDC_DP_NOISE_PART;
        if (fedc__thread_id() == 0)
            r->noise_base = cfg->dp_noise_reserve(cfg->dp_noise_ctx, (uint64_t)parts);
        fedc__sync();
        FEDC_OMP_FOR
        for (long p = 0; p < parts; p++) {
            const long j0 = p * FEDC_DP_NOISE_PART;
            const long len = np - j0 < FEDC_DP_NOISE_PART ? np - j0 : FEDC_DP_NOISE_PART;
            cfg->dp_noise_part(cfg->dp_noise_ctx, r->noise_base + (uint64_t)p, g + j0, (size_t)len,
                               sd);
        }
    } else if (cfg->dp_noise > 0.0f && fedc__thread_id() == 0) {
        /* The noise on one thread: the secret generator is sequential. */
        cfg->dp_noise_fn(cfg->dp_noise_ctx, g, (size_t)np, sd);
    }
    fedc__sync();
    /* The expected batch size: q n = B under Poisson sampling (never the realised size, which
     * would depend on who was sampled); the batch's own, data-independent size otherwise (the
     * last batch of an epoch may be short). */
    const float inv = 1.0f / (float)(cfg->dp_poisson ? r->batch : count);
    FEDC_OMP_FOR
    for (long j = 0; j < np; j++)
        g[j] *= inv;
    fedc__sync();
    fedc_optim_step(r->opt, r->m->params, g, step);
}

/* The key of all record-touching randomness of a DP-SGD run (sampling, shuffling, dropout):
 * 8 values of the caller's secret noise source folded into 64 bits with the seed. */
uint64_t fedc__dp_secret_key(const fedc_train_cfg *cfg) {
    float v[8] = {0};
    cfg->dp_noise_fn(cfg->dp_noise_ctx, v, 8, 1.0);
    uint64_t k = fedc_rng_key(cfg->seed, 0x44505345u /* "DPSE" */, 0, 0);
    for (int i = 0; i < 8; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        k = fedc_rng_key(k, bits, (uint64_t)i, 0);
    }
    return k;
}

fedc_err fedc__check_dp_cfg(const fedc_train_cfg *cfg, fedc_diag *d) {
    if (!(cfg->dp_clip >= 0.0f) || !isfinite(cfg->dp_clip) || !(cfg->dp_noise >= 0.0f) ||
        !isfinite(cfg->dp_noise)) {
        fedc_diag_set(d,
                      "invalid DP-SGD configuration: dp_clip %g and dp_noise %g must be finite "
                      "and >= 0 (dp_clip 0 turns DP-SGD off)",
                      (double)cfg->dp_clip, (double)cfg->dp_noise);
        return FEDC_EINVAL;
    }
    if (cfg->dp_clip == 0.0f && cfg->dp_noise > 0.0f) {
        fedc_diag_set(d,
                      "invalid DP-SGD configuration: dp_noise %g without clipping (dp_clip 0) "
                      "bounds no example's influence; set dp_clip > 0",
                      (double)cfg->dp_noise);
        return FEDC_EINVAL;
    }
    if (cfg->dp_clip > 0.0f && !cfg->dp_noise_reserve != !cfg->dp_noise_part) {
        fedc_diag_set(d, "invalid DP-SGD configuration: dp_noise_reserve and dp_noise_part go "
                         "together (both or neither)");
        return FEDC_EINVAL;
    }
    if (cfg->dp_clip > 0.0f && !cfg->dp_noise_fn) {
        fedc_diag_set(d,
                      "invalid DP-SGD configuration: dp_clip %g needs dp_noise_fn, a secret "
                      "Gaussian noise source",
                      (double)cfg->dp_clip);
        return FEDC_EINVAL;
    }
    if (cfg->dp_clip > 0.0f && cfg->dp_poisson != 0 && cfg->dp_poisson != 1) {
        fedc_diag_set(d,
                      "invalid DP-SGD configuration: dp_poisson must be 1 (Poisson sampling) or "
                      "0 (shuffled fixed-size batches), got %d",
                      cfg->dp_poisson);
        return FEDC_EINVAL;
    }
    return FEDC_OK;
}
