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
 * Every sampled round releases a model and is charged (below); a round whose noised model went out
 * before a crash (the marker file dp-released, written before the model leaves) is charged again
 * when the run resumes.
 *
 * Adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy, "Differentially Private Learning with
 * Adaptive Clipping", NeurIPS 2021): each client also reports b = 1 when its update was within C
 * (through the same secure sum); with b_avg = (sum b + N(0, sigma_b^2)) / n the next round uses
 * C * exp(-eta (b_avg - gamma)). Spending privacy on the count means the update gets the noise
 * multiplier z_upd = (z^-2 - (2 sigma_b)^-2)^(-1/2), so that both together are worth one Gaussian
 * mechanism of multiplier z (their Theorem 1), which is what the accountant charges.
 *
 * The noise is the discrete Gaussian (core/fl dp.h; Canonne, Kamath, Steinke 2020, "CKS20") added
 * to the sum on an integer grid, the secure-aggregation quantiser's 1 / s (the same grid under
 * --secagg off), never a floating-point Gaussian added to floats (Mironov, CCS 2012, recovers
 * the noiseless value from the low bits of such sums). Its sd in grid steps is z Delta, with
 * Delta the L2 sensitivity of the integer sum: s C plus what rounding to the grid can add
 * (grid_sensitivity; at C = 0.5 and the default quantiser about 0.1% of s C for 3,700
 * parameters, 2% for a million), so slightly more than z C on the update. The released update is
 * a function of the noised integers alone. The accountant keeps charging the continuous sampled
 * Gaussian: CKS20 bound the discrete Gaussian's Renyi divergence by the continuous one's (Theorem
 * 4 and its multivariate form) for the unsampled mechanism; for Poisson sampling at integer
 * orders the binomial expansion of Mironov, Talwar, Zhang (2019) needs only E[(p1/p0)^k], which
 * for integer shifts of a discrete Gaussian equals the continuous value exactly, so those terms
 * are at most the continuous ones; the fractional orders and the reverse divergence are taken
 * over from the continuous analysis without a separate proof.
 *
 * Every sampled round is released: when the Poisson sample is too small to aggregate (below
 * --min-fit-clients, or what secure aggregation can sum) or the round yields no usable aggregate
 * (dropouts, an implausible or out-of-bound sum), the coordinator releases the noise alone over
 * the same denominator q N and charges the round like any other. Redrawing instead would make a
 * client's real inclusion probability exceed the q the accountant charges (with 20 clients,
 * q = 0.1 and at least 2 per round, 0.142).
 *
 * Bounds (every run, DP or not): each client clips its update to L2 norm B (FitIns
 * update_norm_bound; the DP clip norm or norm-bound's C when set), the coordinator refuses a
 * plain update beyond it and checks every aggregate: the mean update within B, FedAvg weights
 * summing to at most 1 and to the summed example count over round 0's row total. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "fedc/dp_fedavg.h"
#include "fedc/clip.h"
#include "coord_int.h"
#include "fedc/dp.h"
#include "fedc/modelfile.h"
#include "fedc/robust.h"
#include "fedc/strategy.h"

const char *agg_name(fedc_robust_kind k) {
    const char *name = fedc_robust_name(k);
    return name ? name : "?";
}

int agg_dp_on(const coord *co) {
    return co->cfg->dp_clip > 0;
}

/* Every update counts once: DP-FedAvg's sensitivity bound, and strategies that say so (the
 * robust rules and the norm bound: a client's own row count must not let one bounded update
 * dominate). */
int agg_uniform(const coord *co) {
    return agg_dp_on(co) || co->strat->uniform_weights;
}

/* The L2 bound clients apply to their update this round (0 = none). */
float agg_client_clip(const coord *co) {
    if (agg_dp_on(co))
        return co->dp_clip_now;
    if (co->strat->clip_norm > 0)
        return (float)co->strat->clip_norm;
    return 0.0f;
}

float agg_update_bound(const coord *co) {
    float c = agg_client_clip(co);
    return c > 0 ? c : co->cfg->update_norm_bound;
}

int agg_dp_min_sample(const coord *co) {
    const coord_cfg *cfg = co->cfg;
    int m = cfg->min_fit_clients;
    if (cfg->secagg) {
        /* One survivor's "sum" would be its update: secure aggregation needs two at least,
         * every session needs the Shamir threshold, and clients refuse a session below the
         * floor (--secagg-min-neighbours). */
        m = m > 2 ? m : 2;
        m = m > cfg->sa_threshold ? m : cfg->sa_threshold;
        m = m > cfg->sa_min_nbrs ? m : cfg->sa_min_nbrs;
    }
    return m;
}

int agg_init(coord *co) {
    const coord_cfg *cfg = co->cfg;
    fedc_diag sd;
    /* The strategy: the embedder's, or fedc's own built from the flags (--aggregator,
     * --server-opt and their settings). */
    if (cfg->strategy) {
        co->strat = cfg->strategy;
    } else {
        if (fedc_strategy_fedavg(&co->own_strat, &cfg->agg, &cfg->server, &sd)) {
            logm("%s", sd.msg);
            return 2;
        }
        co->strat = &co->own_strat;
    }
    if (fedc_strategy_check(co->strat, cfg->secagg, agg_dp_on(co), &sd)) {
        logm("%s", sd.msg);
        return 2;
    }
    co->dp_clip_now = cfg->dp_clip;
    co->dp_z_update = cfg->dp_noise;
    /* --mode async: a buffer holds whichever clients finished first, not a random sample, so
     * the accountant claims no amplification by sampling (q = 1: every client may be in every
     * step) */
    co->dp_q = cfg->async_mode ? 1.0 : cfg->fraction_fit;
    co->dp_expected = 1.0;
    if (!agg_dp_on(co))
        return 0;
    fedc_sa_quant q;
    fedc_diag d;
    if (fedc_sa_quant_make(&q, (uint32_t)cfg->sa_max_clients, cfg->sa_clip, &d)) {
        logm("client-level DP: the noise grid: %s", d.msg);
        return 2;
    }
    co->dp_scale = q.scale;
    fedc_dp_noise_init(&co->noise);
    if (cfg->dp_adaptive &&
        fedc_dpfa_update_multiplier(&co->dp_z_update, cfg->dp_noise, cfg->dp_count_noise, &d)) {
        logm("--dp-adaptive (--dp-count-noise %g, --dp-noise %g): %s", cfg->dp_count_noise,
             cfg->dp_noise, d.msg);
        return 2;
    }
    return 0;
}

void agg_free(coord *co) {
    fedc_strategy_destroy(&co->own_strat);
    co->strat = NULL;
    co->srv = NULL;
    for (int i = 0; i < co->n_cl; i++) {
        free(co->cl[i].upd);
        co->cl[i].upd = NULL;
    }
    free(co->dp_int);
    co->dp_int = NULL;
    if (agg_dp_on(co))
        fedc_dp_noise_wipe(&co->noise);
}

void agg_round_start(coord *co) {
    co->dp_unclipped = 0;
    co->dp_noise_only = 0;
    co->plain_examples = 0;
    co->chk_norm = NAN;
    co->chk_bound = (double)agg_update_bound(co);
    co->chk_weights = -1;
    for (int i = 0; i < co->n_cl; i++)
        co->cl[i].upd_have = 0;
}

/* The number under key in a metrics line (a JSON object, fedc/jsonl.h), or NaN when the line
 * does not parse, lacks the key or holds null or a non-number there. Parsed rather than searched
 * for, so that no client name in the line can pass for a key. */
static double line_value(const char *line, const char *key) {
    cJSON *obj = line ? cJSON_Parse(line) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(obj);
    return x;
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
    co->dp_expected = co->cfg->fraction_fit * (double)n;
    return fedc_dpfa_sample(chosen, n, co->cfg->fraction_fit);
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
    if (z != cfg->dp_noise || delta != cfg->dp_delta || q != co->dp_q) {
        logm("--resume: the checkpoint ran with --dp-noise %.17g, --dp-delta %.17g, "
             "sampling rate %.17g; this run has %.17g, %.17g, %.17g (--fraction-fit, or 1 with "
             "--mode async): the accountant cannot mix them",
             z, delta, q, cfg->dp_noise, cfg->dp_delta, co->dp_q);
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

fedc_err agg_plain_add(coord *co, client *c, const float *upd, uint64_t n_examples, double loss,
                       int unclipped, fedc_diag *d) {
    const coord_cfg *cfg = co->cfg;
    size_t n = co->n_params;
    const float *u = upd;
    float *clipped = NULL;
    const float *const one = upd;
    int bad = fedc_robust_first_bad(&one, 1, n);
    if (bad >= 0) {
        for (size_t i = 0; i < n; i++)
            if (!isfinite(upd[i])) {
                fedc_diag_set(d, "update coordinate %zu is %g: not finite (strategy %s)", i,
                              (double)upd[i], co->strat->name);
                break;
            }
        return FEDC_ERANGE;
    }
    if (agg_dp_on(co)) {
        /* Clients clip; an update beyond the bound would break the sensitivity the noise is
         * calibrated to, so it is refused, not repaired. */
        double norm = fedc_l2_norm(upd, n);
        if (norm > (double)co->dp_clip_now * (1.0 + 1e-4)) {
            fedc_diag_set(d,
                          "update norm %g exceeds the clip norm %g (--dp-clip): the client did "
                          "not clip",
                          norm, (double)co->dp_clip_now);
            return FEDC_ERANGE;
        }
    } else if (co->strat->clip_norm > 0) {
        /* The norm bound: the coordinator holds the update (whole: it came inline) and bounds
         * it itself, in a copy (co->upd only exists while a round's aggregate is made). */
        if (!(clipped = malloc(4 * (n ? n : 1)))) {
            fedc_diag_set(d, "out of memory bounding the update");
            return FEDC_ENOMEM;
        }
        memcpy(clipped, upd, 4 * n);
        (void)fedc_l2_clip(clipped, n, co->strat->clip_norm, NULL);
        u = clipped;
    } else {
        /* Every client clips to the bound: one beyond it ignored the FitIns, and is refused. */
        double norm = fedc_l2_norm(upd, n), b = (double)cfg->update_norm_bound;
        if (norm > b * (1.0 + 1e-4)) {
            fedc_diag_set(d,
                          "update norm %g exceeds the bound %g (--update-norm-bound): the client "
                          "did not clip",
                          norm, b);
            return FEDC_ERANGE;
        }
    }
    const int keep = co->strat->needs_updates;
    uint64_t weight = fedc_strategy_weight_units(n_examples, agg_uniform(co));
    if (keep && !c->upd && !(c->upd = malloc(4 * n))) {
        free(clipped);
        fedc_diag_set(d, "out of memory keeping the update");
        return FEDC_ENOMEM;
    }
    fedc_err rc = fedc_accum_add(co->acc, u, weight, loss, d);
    if (!rc && keep) {
        memcpy(c->upd, u, 4 * n);
        c->upd_have = 1;
        c->upd_examples = n_examples;
    }
    free(clipped);
    if (rc)
        return rc;
    if (agg_dp_on(co) && unclipped)
        co->dp_unclipped++;
    if (c->round0)
        co->plain_examples += (double)n_examples;
    return FEDC_OK;
}

static int cmp_name(const void *a, const void *b) {
    const client *x = *(client *const *)a, *y = *(client *const *)b;
    return strcmp(x->name, y->name);
}

int agg_plain_mean(coord *co) {
    const fedc_strategy *st = co->strat;
    if (!st->needs_updates)
        return fedc_accum_mean(co->acc, co->upd) == FEDC_OK ? 0 : -1;
    /* The strategy sees the updates in name order, so the result does not depend on arrival. */
    const size_t cap = (size_t)(co->n_cl ? co->n_cl : 1);
    client **who = malloc(sizeof(client *) * cap);
    const float **u = malloc(sizeof(float *) * cap);
    double *w = malloc(sizeof(double) * cap);
    int n = 0, rc = -1;
    if (!who || !u || !w) {
        logm("round %u: out of memory aggregating", co->round);
        goto out;
    }
    for (int i = 0; i < co->n_cl; i++)
        if (co->cl[i].upd_have && co->cl[i].fit_counted)
            who[n++] = &co->cl[i];
    qsort(who, (size_t)n, sizeof *who, cmp_name);
    double examples = 0;
    for (int i = 0; i < n; i++) {
        u[i] = who[i]->upd;
        examples += (double)who[i]->upd_examples;
    }
    for (int i = 0; i < n; i++)
        w[i] = fedc_strategy_weight(who[i]->upd_examples, examples, n, agg_uniform(co));
    int chosen = -1;
    fedc_diag d;
    fedc_diag_set(&d, "(no reason given)");
    fedc_err arc = n < 1 ? FEDC_EINVAL
                         : st->aggregate(st->ctx, co->upd, (const float *const *)u, w, n,
                                         co->n_params, &chosen, &d);
    if (arc) {
        logm("round %u: strategy %s: aggregate: %s", co->round, st->name,
             n < 1 ? "no updates" : d.msg);
        goto out;
    }
    if (chosen >= n) {
        logm("round %u: strategy %s: aggregate chose update %d of %d", co->round, st->name, chosen,
             n);
        goto out;
    }
    if (fedc_robust_first_bad((const float *const *)&co->upd, 1, co->n_params) >= 0) {
        logm("round %u: strategy %s: aggregate produced a NaN or infinity", co->round, st->name);
        goto out;
    }
    if (chosen >= 0)
        logm("round %u: strategy %s chose %s's update", co->round, st->name, who[chosen]->name);
    rc = 0;
out:
    free(who);
    free(u);
    free(w);
    return rc;
}

/* L2 norm of co->upd. */
static double upd_norm(const coord *co) {
    return fedc_l2_norm(co->upd, co->n_params);
}

/* Clients in this round's aggregate whose rows round 0 did not count (they joined later, or
 * the coordinator resumed from a checkpoint, which does not keep who took part in round 0). */
static int late_joiners(const coord *co) {
    int n = 0;
    for (int i = 0; i < co->n_cl; i++)
        n += co->cl[i].fit_counted && !co->cl[i].round0;
    return n;
}

/* Round 0's row total against the example counts the round's updates claim: at most the total
 * (a client cannot add rows it did not have in round 0), plus half a row of rounding. Plain
 * updates count only the clients round 0 counted; the secure sum cannot tell them apart, so a
 * round with a late joiner skips this. */
static int examples_ok(coord *co, double examples, int late) {
    if (late || examples <= co->total_rows + 0.5)
        return 1;
    logm("round %u: the updates claim %.0f training rows, round 0 counted %.0f in the whole "
         "federation: some client misstates its rows; rejected",
         co->round, examples, co->total_rows);
    return 0;
}

/* Records the norm check for the metrics (under DP the un-noised norm is not reported) and logs
 * a failure with both numbers; slack covers rounding. */
static int norm_ok(coord *co, double norm, double bound, double slack, const char *what) {
    co->chk_norm = agg_dp_on(co) ? NAN : norm;
    co->chk_bound = bound;
    if (norm <= bound + slack)
        return 1;
    logm("round %u: the %s update has norm %.6g, beyond the bound %.6g (%s, plus %.3g for "
         "rounding): some client did not clip; rejected",
         co->round, co->cfg->secagg ? "securely summed mean" : "mean", norm, bound, what, slack);
    return 0;
}

static const char *bound_flag(const coord *co) {
    if (agg_dp_on(co))
        return "--dp-clip";
    if (co->strat->clip_norm > 0)
        return co->cfg->strategy ? "the strategy's clip_norm" : "--norm-bound";
    return "--update-norm-bound";
}

int agg_check_plain(coord *co) {
    const double b = (double)agg_update_bound(co), count = (double)co->acc->count;
    /* Every update was within B (agg_plain_add refuses the others, norm-bound scales them), so a
     * weighted mean, Krum's choice and Multi-Krum's mean are within B; the coordinate-wise median
     * and trimmed mean only within sqrt(n) B (|m_i| <= max_k |u_k,i| for every coordinate, so
     * ||m||^2 <= sum_k ||u_k||^2). Slack: the accumulator's rounding (2^-25 per coordinate) and
     * the clients' own float scaling. */
    int coordwise = co->strat->needs_updates && co->strat->coordinatewise;
    double limit = b * (coordwise ? sqrt(count) : 1.0);
    double slack = limit * 1e-4 + sqrt((double)co->n_params) * 0x1p-24;
    int ok = norm_ok(co, upd_norm(co), limit, slack, bound_flag(co));
    int wok = examples_ok(co, co->plain_examples, 0);
    co->chk_weights = wok;
    return ok && wok ? 0 : -1;
}

int agg_check_secure(coord *co, double weight, double examples, int n) {
    const double b = (double)agg_update_bound(co);
    /* Every honest term has norm <= w_k B, so the sum <= (sum of weights) B; plus the stochastic
     * rounding, at most one step per coordinate and client. The check is on the sum; the
     * metrics report the mean (sum / weight) against B. */
    double slack = sqrt((double)co->n_params) * (double)n / co->sa.q.scale;
    double norm = upd_norm(co);
    int ok = norm_ok(co, norm / weight, b, slack / weight, bound_flag(co));
    if (!ok)
        logm("round %u: the sum's norm %.6g against summed weight %.6g x bound %g", co->round, norm,
             weight, b);
    /* Weights are wide fixed point with 2^-32 resolution per client. */
    const double tol = (double)n * 0x1p-31;
    const int late = late_joiners(co);
    int wok = examples_ok(co, examples, late);
    if (wok && agg_uniform(co) && fabs(weight - (double)n) > tol + 1e-9) {
        logm("round %u: %d update(s) that count once each carry a summed weight of %.9g, not %d: "
             "some client misstates its weight; rejected",
             co->round, n, weight, n);
        wok = 0;
    }
    if (wok && !agg_uniform(co)) {
        /* w_k = rows_k / total_rows: the weights sum to examples / total_rows, at most 1 (more
         * with a late joiner, whose rows are not in the total). */
        double want = fedc_strategy_weight((uint64_t)llround(examples), co->total_rows, n, 0);
        if ((!late && weight > 1.0 + tol) ||
            fabs(weight - want) * co->total_rows > 0.5 + tol * co->total_rows) {
            logm("round %u: the summed FedAvg weight is %.9g; the summed example count %.0f over "
                 "round 0's %.0f rows gives %.9g (and it may not exceed 1): some client misstates "
                 "its weight or rows; rejected",
                 co->round, weight, examples, co->total_rows, want);
            wok = 0;
        }
    }
    co->chk_weights = wok;
    return ok && wok ? 0 : -1;
}

int agg_dp_finish(coord *co, const uint32_t *sa_upd, double unclipped) {
    if (!agg_dp_on(co))
        return 0;
    const coord_cfg *cfg = co->cfg;
    const size_t n = co->n_params;
    const double s = co->dp_scale, den = co->dp_expected;
    fedc_diag d;
    /* Plain: the round's exact sum is put on the noise grid in place, in the accumulator (spent
     * once this release is made), sparing another 8 bytes per parameter; secure: a vector. */
    if (cfg->secagg && !co->dp_int && !(co->dp_int = malloc(sizeof(int64_t) * (n ? n : 1)))) {
        logm("round %u: out of memory for the DP noise; the model is not released", co->round);
        return -1;
    }
    /* The grid m / s, m a power of two, fine enough that the noise sd z Delta stays within the
     * sampler's range (m = 1, the quantiser's own grid, unless the clip norm is very large);
     * Delta is fedc_dpfa_grid_sensitivity (dp_fedavg.h has the argument). */
    double m = 1.0, sigma = 0;
    fedc_dgauss_param p;
    if (fedc_dpfa_grid(&m, &sigma, co->dp_z_update, s, (double)co->dp_clip_now, n, &d) ||
        fedc_dgauss_param_from(&p, fmax(sigma, FEDC_DGAUSS_MIN_SIGMA), &d)) {
        logm("round %u: client-level DP: the noise sd %g grid steps cannot be drawn: %s; the "
             "model is not released",
             co->round, sigma, d.msg);
        return -1;
    }
    int64_t *q = cfg->secagg ? co->dp_int : co->acc->sum;
    if (co->dp_noise_only) {
        memset(q, 0, sizeof(int64_t) * n);
    } else if (sa_upd) {
        /* The secure sum's update part: int32 values in units of 1 / s. */
        for (size_t i = 0; i < n; i++)
            q[i] = m == 1.0 ? (int64_t)(int32_t)sa_upd[i]
                            : (int64_t)llround((double)(int32_t)sa_upd[i] / m);
    } else {
        /* The plain accumulator's exact sum (uniform weights), in units of 2^-frac_bits; q is
         * that sum itself, each element read before it is overwritten. */
        const double f = s / m * ldexp(1.0, -co->acc->frac_bits);
        for (size_t i = 0; i < n; i++)
            q[i] = (int64_t)llround((double)co->acc->sum[i] * f);
    }
    fedc_dgauss_add(&co->noise, q, n, &p);
    /* Released: (Q + noise) m / s over the fixed denominator q N. */
    const double back = m / s / den;
    for (size_t i = 0; i < n; i++)
        co->upd[i] = (float)((double)q[i] * back);
    co->dp_clip_used = co->dp_clip_now;
    co->dp_rounds++;
    if (cfg->dp_adaptive) {
        /* The count of unclipped updates is an integer: discrete noise of sd sigma_b on it. */
        fedc_dgauss_param pb;
        int64_t b = co->dp_noise_only ? 0 : (int64_t)llround(unclipped);
        if (fedc_dgauss_param_from(&pb, fmax(cfg->dp_count_noise, FEDC_DGAUSS_MIN_SIGMA), &d)) {
            logm("round %u: --dp-count-noise: %s; the model is not released", co->round, d.msg);
            return -1;
        }
        fedc_dgauss_add(&co->noise, &b, 1, &pb);
        double frac = (double)b / den;
        co->dp_clip_now = (float)fedc_dpfa_clip_step((double)co->dp_clip_now, frac, cfg->dp_clip_lr,
                                                     cfg->dp_quantile);
        co->dp_frac_unclipped = frac;
    }
    return 0;
}

int agg_strategy_start(coord *co) {
    fedc_diag d;
    if (co->strat->start && co->strat->start(co->strat->ctx, co->n_params, &d)) {
        logm("strategy %s: start (%zu parameters): %s", co->strat->name, co->n_params, d.msg);
        return -1;
    }
    co->srv = fedc_strategy_server(co->strat);
    return 0;
}

int agg_server_step(coord *co) {
    fedc_diag d;
    fedc_diag_set(&d, "(no reason given)");
    if (co->strat->server_step(co->strat->ctx, co->round, co->model->params, co->upd, co->n_params,
                               &d)) {
        logm("round %u: strategy %s: server step: %s; stopping", co->round, co->strat->name, d.msg);
        co->exit_code = 1;
        co->ph = PH_DONE;
        return -1;
    }
    return 0;
}
