/* How the coordinator turns the round's updates into one: the robust rules (--aggregator) on the
 * individual updates when secure aggregation is off, the norm bound, and client-level
 * differential privacy (DP-FedAvg) with its accountant. Contracts in coord_int.h.
 *
 * DP-FedAvg (McMahan, Ramage, Talwar, Zhang, "Learning Differentially Private Recurrent Language
 * Models", ICLR 2018): every selected client scales its update to L2 norm <= C and counts once
 * (uniform weights, so one client changes the sum by at most C); the coordinator adds
 * N(0, (z C)^2) to every coordinate of the sum, after secure aggregation (it never sees one
 * update), and divides by the expected number of updates q N (a fixed denominator, so that the
 * sensitivity of the mean stays C / (q N) whoever takes part). Each round is one step of the
 * sampled Gaussian mechanism: every live client is selected independently with probability
 * q = --fraction-fit (Poisson sampling, as the accountant assumes), from secret randomness.
 * Nothing is released by a round that fails (too few answers, an implausible sum) and is retried
 * with a fresh sample; a round whose noised model went out before a crash (the marker file
 * dp-released, written before the model leaves) is charged again when the run resumes.
 *
 * Adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy, "Differentially Private Learning with
 * Adaptive Clipping", NeurIPS 2021): each client also reports b = 1 when its update was within C
 * (through the same secure sum); with b_avg = (sum b + N(0, sigma_b^2)) / n the next round uses
 * C * exp(-eta (b_avg - gamma)). Spending privacy on the count means the update gets the noise
 * multiplier z_upd = (z^-2 - (2 sigma_b)^-2)^(-1/2), so that both together are worth one Gaussian
 * mechanism of multiplier z (their Theorem 1), which is what the accountant charges. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "coord_int.h"
#include "fedc/dp.h"
#include "fedc/modelfile.h"
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

/* Every update counts once: DP-FedAvg's sensitivity bound, the robust rules, and the norm bound
 * (a client's own row count must not let one bounded update dominate). */
int agg_uniform(const coord *co) {
    return agg_dp_on(co) || co->cfg->agg.kind != FEDC_AGG_MEAN;
}

/* The L2 bound clients apply to their update this round (0 = none). */
float agg_client_clip(const coord *co) {
    if (agg_dp_on(co))
        return co->dp_clip_now;
    if (co->cfg->agg.kind == FEDC_AGG_NORM_BOUND)
        return (float)co->cfg->agg.clip;
    return 0.0f;
}

int agg_init(coord *co) {
    const coord_cfg *cfg = co->cfg;
    co->dp_clip_now = cfg->dp_clip;
    co->dp_z_update = cfg->dp_noise;
    co->dp_q = cfg->fraction_fit;
    co->dp_expected = 1.0;
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

/* The number after "key": in a metrics line, or NaN. */
static double line_value(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = line ? strstr(line, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* <checkpoint dir>/dp-released: "round N", the last round whose noised model was sent. */
static void release_path(const coord *co, char *out, size_t cap) {
    snprintf(out, cap, "%s/dp-released", co->cfg->checkpoint_dir);
}

static long read_release(const coord *co) {
    if (!co->cfg->checkpoint_dir)
        return 0;
    char path[4200];
    release_path(co, path, sizeof path);
    FILE *f = fopen(path, "r");
    long r = 0;
    if (f) {
        if (fscanf(f, "round %ld", &r) != 1)
            r = LONG_MAX; /* unreadable: assume the worst */
        fclose(f);
    }
    return r;
}

int agg_mark_release(coord *co) {
    if (!agg_dp_on(co) || !co->cfg->checkpoint_dir)
        return 0;
    char path[4200], buf[64];
    release_path(co, path, sizeof path);
    int len = snprintf(buf, sizeof buf, "round %u\n", co->round);
    fedc_diag d;
    if (fedc_write_atomic(path, buf, (size_t)len, &d)) {
        logm("cannot record the release of round %u's noised model: %s; stopping (the "
             "accountant could not charge it after a crash)",
             co->round, d.msg);
        return -1;
    }
    return 0;
}

/* Rounds charged so far: the ones finished, plus one for every resume (the interrupted round's
 * noised model may have reached the clients before the crash). */
static double charged(const coord *co, double rounds) {
    return rounds + (double)co->dp_extra;
}

double agg_epsilon(const coord *co, double rounds) {
    double eps = NAN, order = 0;
    fedc_diag d;
    if (charged(co, rounds) <= 0)
        return 0.0;
    if (fedc_dp_epsilon(&eps, &order, co->dp_q, co->cfg->dp_noise, charged(co, rounds),
                        co->cfg->dp_delta, &d))
        return NAN;
    return eps;
}

double agg_rounds_charged(const coord *co, double rounds) {
    return charged(co, rounds);
}

int agg_budget_exceeded(coord *co) {
    double eps = agg_epsilon(co, (double)co->round);
    if (co->cfg->target_epsilon > 0 && !(eps <= co->cfg->target_epsilon)) {
        logm("privacy budget: round %u would bring epsilon to %.3f, beyond --target-epsilon %g; "
             "stopping after round %u",
             co->round, eps, co->cfg->target_epsilon, co->round - 1);
        return 1;
    }
    return 0;
}

int agg_dp_sample(coord *co, int *chosen, int n) {
    /* Each candidate joins with probability q, decided by a secret uniform 32-bit draw. */
    const double q = co->cfg->fraction_fit;
    const uint64_t cut = (uint64_t)(q * 4294967296.0);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (q >= 1.0 || (uint64_t)randombytes_random() < cut)
            chosen[k++] = i;
    co->dp_expected = q * (double)n;
    return k;
}

int agg_restore(coord *co, const char *line, uint32_t rounds_done) {
    if (!agg_dp_on(co))
        return 0;
    const coord_cfg *cfg = co->cfg;
    if (rounds_done == 0)
        return 0;
    double z = line_value(line, "dp_noise"), delta = line_value(line, "dp_delta"),
           q = line_value(line, "dp_q"), ch = line_value(line, "dp_rounds_charged");
    if (isnan(z) || isnan(delta) || isnan(q) || isnan(ch)) {
        logm("--resume: the checkpoint's %u round(s) ran without client-level DP; their privacy "
             "cost is unknown, so a DP run cannot continue them (start a new run)",
             rounds_done);
        return 2;
    }
    if (z != cfg->dp_noise || delta != cfg->dp_delta || q != cfg->fraction_fit) {
        logm("--resume: the checkpoint ran with --dp-noise %.17g, --dp-delta %.17g, "
             "--fraction-fit %.17g; this run has %.17g, %.17g, %.17g: the accountant cannot "
             "mix them",
             z, delta, q, cfg->dp_noise, cfg->dp_delta, cfg->fraction_fit);
        return 2;
    }
    co->dp_extra = (int)(ch - (double)rounds_done);
    /* The marker names the last round whose noised model went out: beyond the checkpoint, that
     * release happened before the crash and is charged again when the round is redone. */
    long released = read_release(co);
    if (released > (long)rounds_done)
        co->dp_extra++;
    if (cfg->dp_adaptive) {
        double c = line_value(line, "dp_clip_next");
        if (c > 0 && isfinite(c))
            co->dp_clip_now = (float)c;
    }
    logm("--resume: charging %u + %d round(s) of client-level DP (%s)", rounds_done, co->dp_extra,
         released > (long)rounds_done ? "round's noised model went out before the crash"
                                      : "no release after the checkpoint");
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
    uint64_t weight = agg_uniform(co) ? 1 : n_examples;
    if (agg_needs_updates(cfg->agg.kind) && !c->upd && !(c->upd = malloc(4 * n))) {
        fedc_diag_set(d, "out of memory keeping the update");
        return FEDC_ENOMEM;
    }
    fedc_err rc = fedc_accum_add(co->acc, u, weight, loss, d);
    if (rc)
        return rc;
    if (agg_needs_updates(cfg->agg.kind)) {
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
    /* co->upd holds the sum / count; DP-FedAvg divides the noised sum by the expected count q N
     * instead (a fixed denominator): rescale, then the sum's noise N(0, (z C)^2) becomes
     * N(0, (z C / (q N))^2). */
    const double den = co->dp_expected > 0 ? co->dp_expected : count;
    const float r = (float)(count / den);
    for (size_t i = 0; i < co->n_params; i++)
        co->upd[i] *= r;
    double sd = co->dp_z_update * (double)co->dp_clip_now / den;
    fedc_dp_noise_add(&co->noise, co->upd, co->n_params, sd);
    co->dp_clip_used = co->dp_clip_now;
    co->dp_rounds++;
    if (cfg->dp_adaptive) {
        float b = (float)unclipped;
        fedc_dp_noise_add(&co->noise, &b, 1, cfg->dp_count_noise);
        double frac = (double)b / den;
        double next = (double)co->dp_clip_now * exp(-cfg->dp_clip_lr * (frac - cfg->dp_quantile));
        /* Within what the wire accepts (codec: clip_norm <= 1e6) and above zero. */
        co->dp_clip_now = (float)fmin(fmax(next, 1e-9), 1e6);
        co->dp_frac_unclipped = frac;
    }
}
