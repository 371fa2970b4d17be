/* How the coordinator turns the round's updates into one: the robust rules (--aggregator) on the
 * individual updates when secure aggregation is off, the norm bound, and client-level
 * differential privacy (DP-FedAvg) with its accountant. Contracts in coord_int.h.
 *
 * DP-FedAvg (McMahan, Ramage, Talwar, Zhang, "Learning Differentially Private Recurrent Language
 * Models", ICLR 2018): every selected client scales its update to L2 norm <= C and counts once
 * (uniform weights, so one client changes the sum by at most C); the coordinator adds
 * N(0, (z C)^2) to every coordinate of the sum, after secure aggregation (it never sees one
 * update), and divides by the number of updates. Each round is one step of the sampled Gaussian
 * mechanism with sampling rate q = selected / live clients (at least --fraction-fit, more when
 * --min-fit-clients asks for more), the sample drawn from secret randomness. The accountant
 * assumes Poisson sampling; the coordinator draws a fixed-size sample, the usual approximation
 * (README "Differential privacy").
 *
 * Adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy, "Differentially Private Learning with
 * Adaptive Clipping", NeurIPS 2021): each client also reports b = 1 when its update was within C
 * (through the same secure sum); with b_avg = (sum b + N(0, sigma_b^2)) / n the next round uses
 * C * exp(-eta (b_avg - gamma)). Spending privacy on the count means the update gets the noise
 * multiplier z_upd = (z^-2 - (2 sigma_b)^-2)^(-1/2), so that both together are worth one Gaussian
 * mechanism of multiplier z (their Theorem 1), which is what the accountant charges. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coord_int.h"
#include "fedc/dp.h"
#include "fedc/robust.h"

const char *agg_name(fedc_robust_kind k) {
    switch (k) {
    case FEDC_AGG_MEAN:
        return "mean";
    case FEDC_AGG_MEDIAN:
        return "median";
    case FEDC_AGG_TRIMMED_MEAN:
        return "trimmed-mean";
    case FEDC_AGG_KRUM:
        return "krum";
    case FEDC_AGG_MULTI_KRUM:
        return "multi-krum";
    case FEDC_AGG_NORM_BOUND:
        return "norm-bound";
    }
    return "?";
}

/* 1 for the rules that need every update on its own. */
int agg_needs_updates(fedc_robust_kind k) {
    return k == FEDC_AGG_MEDIAN || k == FEDC_AGG_TRIMMED_MEAN || k == FEDC_AGG_KRUM ||
           k == FEDC_AGG_MULTI_KRUM;
}

int agg_dp_on(const coord *co) {
    return co->cfg->dp_clip > 0;
}

/* The L2 bound clients apply to their update this round (0 = none). */
float agg_client_clip(const coord *co) {
    if (agg_dp_on(co))
        return co->dp_clip_now;
    if (co->cfg->secagg && co->cfg->agg.kind == FEDC_AGG_NORM_BOUND)
        return (float)co->cfg->agg.clip;
    return 0.0f;
}

int agg_init(coord *co) {
    const coord_cfg *cfg = co->cfg;
    co->dp_clip_now = cfg->dp_clip;
    co->dp_z_update = cfg->dp_noise;
    co->dp_q = cfg->fraction_fit;
    if (!agg_dp_on(co))
        return 0;
    fedc_dp_noise_init(&co->noise);
    if (cfg->dp_adaptive) {
        double zb = 2.0 * cfg->dp_count_noise;
        double inv = 1.0 / (cfg->dp_noise * cfg->dp_noise) - 1.0 / (zb * zb);
        if (!(inv > 0)) {
            logm("--dp-adaptive: the count's noise (--dp-count-noise %g) leaves no privacy for "
                 "the update at --dp-noise %g: 2 x count noise must exceed the noise multiplier",
                 cfg->dp_count_noise, cfg->dp_noise);
            return 2;
        }
        co->dp_z_update = 1.0 / sqrt(inv);
    }
    return 0;
}

void agg_free(coord *co) {
    for (int i = 0; i < co->n_cl; i++) {
        free(co->cl[i].upd);
        co->cl[i].upd = NULL;
    }
    if (agg_dp_on(co))
        fedc_dp_noise_wipe(&co->noise);
}

void agg_round_start(coord *co) {
    co->dp_unclipped = 0;
    for (int i = 0; i < co->n_cl; i++)
        co->cl[i].upd_have = 0;
}

static double epsilon_at(const coord *co, double q, double rounds) {
    double eps = NAN, order = 0;
    fedc_diag d;
    if (rounds <= 0)
        return 0.0;
    if (fedc_dp_epsilon(&eps, &order, q, co->cfg->dp_noise, rounds, co->cfg->dp_delta, &d))
        return NAN;
    return eps;
}

/* Rounds sample at rate k / n, n the live clients; the accountant charges every round at the
 * largest rate so far (RDP of the sampled Gaussian grows with q, so this bounds the true cost). */
double agg_epsilon(const coord *co, double rounds) {
    return epsilon_at(co, co->dp_q, rounds);
}

int agg_budget_exceeded(coord *co, double q) {
    double qmax = q > co->dp_q ? q : co->dp_q;
    double eps = epsilon_at(co, qmax, (double)co->round);
    if (co->cfg->target_epsilon > 0 && !(eps <= co->cfg->target_epsilon)) {
        logm("privacy budget: round %u (sampling rate %g) would bring epsilon to %.3f, beyond "
             "--target-epsilon %g; stopping after round %u",
             co->round, qmax, eps, co->cfg->target_epsilon, co->round - 1);
        return 1;
    }
    co->dp_q = qmax;
    return 0;
}

/* Scales u (n values) to L2 norm <= c; returns 1 when it was within already. */
static int bound_norm(float *u, size_t n, double c) {
    double sq = 0;
    for (size_t i = 0; i < n; i++)
        sq += (double)u[i] * (double)u[i];
    double norm = sqrt(sq);
    if (norm <= c)
        return 1;
    const float s = (float)(c / norm);
    for (size_t i = 0; i < n; i++)
        u[i] *= s;
    return 0;
}

fedc_err agg_plain_add(coord *co, client *c, const float *upd, uint64_t n_examples, double loss,
                       int unclipped, fedc_diag *d) {
    const coord_cfg *cfg = co->cfg;
    size_t n = co->n_params;
    const float *u = upd;
    const float *const one = upd;
    int bad = fedc_robust_first_bad(&one, 1, n);
    if (bad >= 0) {
        for (size_t i = 0; i < n; i++)
            if (!isfinite(upd[i])) {
                fedc_diag_set(d, "update coordinate %zu is %g: not finite (--aggregator %s)", i,
                              (double)upd[i], agg_name(cfg->agg.kind));
                break;
            }
        return FEDC_ERANGE;
    }
    if (agg_dp_on(co)) {
        /* Clients clip; an update beyond the bound would break the sensitivity the noise is
         * calibrated to, so it is refused, not repaired. */
        double sq = 0;
        for (size_t i = 0; i < n; i++)
            sq += (double)upd[i] * (double)upd[i];
        if (sqrt(sq) > (double)co->dp_clip_now * (1.0 + 1e-4)) {
            fedc_diag_set(d,
                          "update norm %g exceeds the clip norm %g (--dp-clip): the client did "
                          "not clip",
                          sqrt(sq), (double)co->dp_clip_now);
            return FEDC_ERANGE;
        }
    } else if (cfg->agg.kind == FEDC_AGG_NORM_BOUND) {
        /* The robust rule: the coordinator holds the update and bounds it itself. */
        if (upd != co->upd)
            memcpy(co->upd, upd, 4 * n);
        bound_norm(co->upd, n, cfg->agg.clip);
        u = co->upd;
    }
    uint64_t weight = agg_dp_on(co) || agg_needs_updates(cfg->agg.kind) ? 1 : n_examples;
    fedc_err rc = fedc_accum_add(co->acc, u, weight, loss, d);
    if (rc)
        return rc;
    if (agg_needs_updates(cfg->agg.kind)) {
        if (!c->upd && !(c->upd = malloc(4 * n))) {
            fedc_diag_set(d, "out of memory keeping the update");
            return FEDC_ENOMEM;
        }
        memcpy(c->upd, u, 4 * n);
        c->upd_have = 1;
    }
    if (agg_dp_on(co) && unclipped)
        co->dp_unclipped++;
    return FEDC_OK;
}

static int cmp_name(const void *a, const void *b) {
    const client *x = *(client *const *)a, *y = *(client *const *)b;
    return strcmp(x->name, y->name);
}

int agg_plain_mean(coord *co) {
    const coord_cfg *cfg = co->cfg;
    if (!agg_needs_updates(cfg->agg.kind))
        return fedc_accum_mean(co->acc, co->upd) == FEDC_OK ? 0 : -1;
    /* The rules see the updates in name order, so the result does not depend on arrival. */
    client **who = malloc(sizeof(client *) * (size_t)(co->n_cl ? co->n_cl : 1));
    const float **u = malloc(sizeof(float *) * (size_t)(co->n_cl ? co->n_cl : 1));
    int n = 0, rc = -1;
    if (!who || !u) {
        logm("round %u: out of memory aggregating", co->round);
        goto out;
    }
    for (int i = 0; i < co->n_cl; i++)
        if (co->cl[i].upd_have && co->cl[i].fit_counted)
            who[n++] = &co->cl[i];
    qsort(who, (size_t)n, sizeof *who, cmp_name);
    for (int i = 0; i < n; i++)
        u[i] = who[i]->upd;
    int chosen = -1;
    fedc_diag d;
    if (fedc_robust_aggregate(co->upd, (const float *const *)u, n, co->n_params, &cfg->agg, &chosen,
                              &d)) {
        logm("round %u: --aggregator %s: %s", co->round, agg_name(cfg->agg.kind), d.msg);
        goto out;
    }
    if (chosen >= 0)
        logm("round %u: --aggregator %s chose %s's update", co->round, agg_name(cfg->agg.kind),
             who[chosen]->name);
    rc = 0;
out:
    free(who);
    free(u);
    return rc;
}

int agg_check_secure_norm(coord *co, double weight) {
    float c = agg_client_clip(co);
    if (!(c > 0))
        return 0;
    double sq = 0;
    for (size_t i = 0; i < co->n_params; i++)
        sq += (double)co->upd[i] * (double)co->upd[i];
    /* Every honest term has norm <= weight_k C, so the sum <= (sum of weights) C; plus the
     * stochastic rounding, at most one step per coordinate and client. */
    double slack = sqrt((double)co->n_params) * (double)co->cfg->sa_max_clients / co->sa.q.scale;
    double limit = weight * (double)c + slack;
    if (sqrt(sq) > limit) {
        logm("round %u: the securely summed update has norm %g, beyond %g (summed weight %g x "
             "clip norm %g): some client ignored the bound; rejected",
             co->round, sqrt(sq), limit, weight, (double)c);
        return -1;
    }
    return 0;
}

void agg_dp_finish(coord *co, double count, double unclipped) {
    if (!agg_dp_on(co) || !(count > 0))
        return;
    const coord_cfg *cfg = co->cfg;
    /* co->upd holds the mean: the sum's noise N(0, (z C)^2) becomes N(0, (z C / n)^2). */
    double sd = co->dp_z_update * (double)co->dp_clip_now / count;
    fedc_dp_noise_add(&co->noise, co->upd, co->n_params, sd);
    co->dp_clip_used = co->dp_clip_now;
    co->dp_rounds++;
    if (cfg->dp_adaptive) {
        float b = (float)unclipped;
        fedc_dp_noise_add(&co->noise, &b, 1, cfg->dp_count_noise);
        double frac = (double)b / count;
        co->dp_clip_now =
            (float)((double)co->dp_clip_now * exp(-cfg->dp_clip_lr * (frac - cfg->dp_quantile)));
        co->dp_frac_unclipped = frac;
    }
}
