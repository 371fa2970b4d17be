/* fedc's own strategies on the strategy interface (contracts in strategy.h). The maths stays
 * where it was: the robust rules in robust.c, the server optimisers in server.c; this file only
 * wraps them and owns the weighting rule. */
#include "fedc/strategy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double fedc_strategy_weight(uint64_t examples, double total, int n_updates, int uniform) {
    if (uniform)
        return n_updates >= 1 ? 1.0 / (double)n_updates : NAN;
    /* FedAvg: client k's share n_k / n of the examples (McMahan et al. 2017, Algorithm 1). */
    return total > 0 ? (double)examples / total : NAN;
}

uint64_t fedc_strategy_weight_units(uint64_t examples, int uniform) {
    return uniform ? 1 : examples;
}

double fedc_staleness_weight(uint32_t tau) {
    /* FedBuff's choice (Nguyen et al. 2022, Section 5), the polynomial staleness function of
     * Xie et al. 2019 with exponent 1/2. */
    return 1.0 / sqrt(1.0 + (double)tau);
}

double fedc_staleness_scale(float *dst, const float *src, size_t n, uint32_t tau) {
    double s = fedc_staleness_weight(tau);
    if (tau == 0) {
        if (dst != src)
            memcpy(dst, src, 4 * n);
        return s;
    }
    const float f = (float)s;
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] * f;
    return s;
}

/* The built-in strategy's state: the rule, the optimiser's settings, and the optimiser once the
 * model's size is known. */
typedef struct builtin {
    fedc_robust_cfg agg;
    fedc_server_cfg server_cfg;
    fedc_server *server;
} builtin;

static fedc_err builtin_aggregate(void *ctx, float *out, const float *const *u, const double *w,
                                  int n, size_t p, int *chosen, fedc_diag *d) {
    const builtin *b = ctx;
    if (b->agg.kind != FEDC_AGG_MEAN)
        /* The robust rules and the norm bound treat clients alike (robust.h): the weights are
         * uniform for them (uniform_weights), so robust.c's unweighted rules are the same. */
        return fedc_robust_aggregate(out, u, n, p, &b->agg, chosen, d);
    /* FedAvg's weighted mean sum_k w_k u_k, in double like robust.c's mean. */
    if (n < 1) {
        fedc_diag_set(d, "mean: no updates");
        return FEDC_EINVAL;
    }
    if (fedc_robust_first_bad(u, n, p) >= 0) {
        fedc_diag_set(d, "mean: update %d holds a NaN or infinity", fedc_robust_first_bad(u, n, p));
        return FEDC_ERANGE;
    }
    double *acc = calloc(p ? p : 1, sizeof(double));
    if (!acc)
        return FEDC_ENOMEM;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < p; i++)
            acc[i] += w[k] * (double)u[k][i];
    for (size_t i = 0; i < p; i++)
        out[i] = (float)acc[i];
    free(acc);
    return FEDC_OK;
}

static fedc_err builtin_start(void *ctx, size_t p, fedc_diag *d) {
    builtin *b = ctx;
    if (b->server && b->server->n == p)
        return FEDC_OK;
    fedc_server_destroy(&b->server);
    fedc_err rc = fedc_server_new(&b->server, &b->server_cfg, p);
    if (rc)
        fedc_diag_set(d, "server optimiser %s for %zu parameters: %s",
                      fedc_server_name(b->server_cfg.kind), p,
                      rc == FEDC_ENOMEM ? "out of memory" : "invalid settings");
    return rc;
}

static fedc_err builtin_step(void *ctx, uint32_t round, float *w, const float *u, size_t p,
                             fedc_diag *d) {
    builtin *b = ctx;
    (void)round;
    if (!b->server || b->server->n != p) {
        fedc_err rc = builtin_start(ctx, p, d);
        if (rc)
            return rc;
    }
    fedc_server_step(b->server, w, u);
    return FEDC_OK;
}

static void builtin_destroy(void *ctx) {
    builtin *b = ctx;
    if (!b)
        return;
    fedc_server_destroy(&b->server);
    free(b);
}

fedc_err fedc_strategy_fedavg(fedc_strategy *out, const fedc_robust_cfg *agg,
                              const fedc_server_cfg *server, fedc_diag *d) {
    memset(out, 0, sizeof *out);
    const char *name = fedc_robust_name(agg->kind);
    if (!name) {
        fedc_diag_set(d, "strategy: unknown aggregation rule %d", (int)agg->kind);
        return FEDC_EINVAL;
    }
    if (agg->kind == FEDC_AGG_TRIMMED_MEAN && !(agg->beta >= 0 && agg->beta < 0.5)) {
        fedc_diag_set(d, "strategy trimmed-mean: the trimmed share must be in [0, 0.5), got %g",
                      agg->beta);
        return FEDC_EINVAL;
    }
    if ((agg->kind == FEDC_AGG_KRUM || agg->kind == FEDC_AGG_MULTI_KRUM) && agg->f < 0) {
        fedc_diag_set(d, "strategy %s: f (clients assumed bad) must be >= 0, got %d", name, agg->f);
        return FEDC_EINVAL;
    }
    if (agg->kind == FEDC_AGG_NORM_BOUND && !(agg->clip > 0)) {
        fedc_diag_set(d, "strategy norm-bound: the bound must be positive, got %g", agg->clip);
        return FEDC_EINVAL;
    }
    /* fedc_server_new checks the optimiser's ranges; a trial allocation of one parameter gives
     * the error now rather than when the model arrives. */
    fedc_server *trial = NULL;
    fedc_err rc = fedc_server_new(&trial, server, 1);
    fedc_server_destroy(&trial);
    if (rc) {
        fedc_diag_set(d,
                      "strategy: server optimiser %s: %s (lr %g > 0, momentum, beta1, beta2 in "
                      "[0, 1), tau > 0)",
                      fedc_server_name(server->kind),
                      rc == FEDC_ENOMEM ? "out of memory" : "settings out of range",
                      (double)server->lr);
        return rc;
    }
    builtin *b = calloc(1, sizeof *b);
    if (!b) {
        fedc_diag_set(d, "strategy: out of memory");
        return FEDC_ENOMEM;
    }
    b->agg = *agg;
    b->server_cfg = *server;
    out->name = name;
    out->ctx = b;
    out->needs_updates = agg->kind == FEDC_AGG_MEDIAN || agg->kind == FEDC_AGG_TRIMMED_MEAN ||
                         agg->kind == FEDC_AGG_KRUM || agg->kind == FEDC_AGG_MULTI_KRUM;
    /* Every rule but the mean counts each client once: a client's own row count must not let one
     * (bounded) update dominate. */
    out->uniform_weights = agg->kind != FEDC_AGG_MEAN;
    out->clip_norm = agg->kind == FEDC_AGG_NORM_BOUND ? agg->clip : 0.0;
    out->coordinatewise = agg->kind == FEDC_AGG_MEDIAN || agg->kind == FEDC_AGG_TRIMMED_MEAN;
    out->select = NULL;
    out->aggregate = builtin_aggregate;
    out->start = builtin_start;
    out->server_step = builtin_step;
    out->destroy = builtin_destroy;
    return FEDC_OK;
}

fedc_server *fedc_strategy_server(const fedc_strategy *s) {
    if (!s || s->server_step != builtin_step || !s->ctx)
        return NULL;
    return ((const builtin *)s->ctx)->server;
}

fedc_err fedc_strategy_check(const fedc_strategy *s, int secagg, int dp, fedc_diag *d) {
    const char *name = s && s->name ? s->name : "(unnamed)";
    if (!s || !s->server_step) {
        fedc_diag_set(d, "strategy %s: server_step is required (got NULL)", name);
        return FEDC_EINVAL;
    }
    if (s->needs_updates && !s->aggregate) {
        fedc_diag_set(d, "strategy %s: needs_updates is set but aggregate is NULL", name);
        return FEDC_EINVAL;
    }
    if (!(s->clip_norm >= 0) || !isfinite(s->clip_norm)) {
        fedc_diag_set(d, "strategy %s: clip_norm must be finite and >= 0 (0 = none), got %g", name,
                      s->clip_norm);
        return FEDC_EINVAL;
    }
    if (s->needs_updates && secagg) {
        fedc_diag_set(d,
                      "strategy %s needs every client's update on its own, which secure "
                      "aggregation hides from the coordinator (it learns only the weighted sum): "
                      "run with secure aggregation off, or use a strategy without needs_updates",
                      name);
        return FEDC_EINVAL;
    }
    if (dp && s->select) {
        fedc_diag_set(
            d,
            "strategy %s selects clients itself, but client-level DP samples every "
            "client independently (Poisson sampling) with probability --fraction-fit, the "
            "accountant's assumption: leave select NULL, or turn DP off",
            name);
        return FEDC_EINVAL;
    }
    if (dp && (s->needs_updates || s->clip_norm > 0)) {
        fedc_diag_set(d,
                      "strategy %s %s; client-level DP needs the plain mean of updates clipped "
                      "to its own clip norm (--dp-clip)",
                      name, s->needs_updates ? "needs individual updates" : "sets a clip_norm");
        return FEDC_EINVAL;
    }
    return FEDC_OK;
}

void fedc_strategy_destroy(fedc_strategy *s) {
    if (!s)
        return;
    if (s->destroy)
        s->destroy(s->ctx);
    memset(s, 0, sizeof *s);
}
