/* Server optimisers over the flat parameter vector: FedAvg, FedAvgM and FedAdam (formulas and
 * papers in fl.h). Each step is elementwise in float, so it vectorises and any thread split would
 * give the same result; parameter vectors of MLPs are small enough that one thread suffices. Not
 * here: FedAdagrad and FedYogi (the same skeleton with another second-moment rule), bias
 * correction (Reddi et al.'s Algorithm 2 has none). */
#include "fedc/fl.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"fedavg", "fedavgm", "fedadam"};

fedc_server_cfg fedc_server_defaults(fedc_server_opt kind) {
    fedc_server_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr = 1.0f;
    c.momentum = 0.9f;
    c.beta1 = 0.9f;
    c.beta2 = 0.99f;
    c.tau = 1e-3f;
    if (kind == FEDC_SERVER_FEDADAM)
        c.lr = 1e-2f;
    return c;
}

/* x in [0, 1), NaN refused. */
static int unit_interval(float x) {
    return x >= 0.0f && x < 1.0f;
}

static int cfg_valid(const fedc_server_cfg *c) {
    if (!(isfinite(c->lr) && c->lr > 0.0f))
        return 0;
    switch (c->kind) {
    case FEDC_SERVER_FEDAVG:
        return 1;
    case FEDC_SERVER_FEDAVGM:
        return unit_interval(c->momentum);
    case FEDC_SERVER_FEDADAM:
        return unit_interval(c->beta1) && unit_interval(c->beta2) && isfinite(c->tau) &&
               c->tau > 0.0f;
    }
    return 0;
}

fedc_err fedc_server_new(fedc_server **out, const fedc_server_cfg *cfg, size_t n) {
    fedc_err rc = FEDC_OK;
    fedc_server *s = NULL;
    assert(out && cfg);
    if (n == 0 || !cfg_valid(cfg)) {
        rc = FEDC_EINVAL;
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    s->cfg = *cfg;
    s->n = n;
    if (cfg->kind != FEDC_SERVER_FEDAVG) {
        s->m = calloc(n, sizeof *s->m);
        if (!s->m)
            rc = FEDC_ENOMEM;
    }
    if (!rc && cfg->kind == FEDC_SERVER_FEDADAM) {
        s->v = calloc(n, sizeof *s->v);
        if (!s->v)
            rc = FEDC_ENOMEM;
    }
out:
    if (rc)
        fedc_server_destroy(&s);
    *out = s;
    return rc;
}

void fedc_server_destroy(fedc_server **ps) {
    if (!ps || !*ps)
        return;
    free((*ps)->m);
    free((*ps)->v);
    free(*ps);
    *ps = NULL;
}

void fedc_server_step(fedc_server *s, float *restrict w, const float *restrict u) {
    assert(s && w && u);
    const size_t n = s->n;
    const float lr = s->cfg.lr;
    switch (s->cfg.kind) {
    case FEDC_SERVER_FEDAVG: /* w += lr * u */
        for (size_t i = 0; i < n; i++)
            w[i] += lr * u[i];
        break;
    case FEDC_SERVER_FEDAVGM: { /* v = momentum * v + u;  w += lr * v */
        float *restrict v = s->m;
        const float mu = s->cfg.momentum;
        for (size_t i = 0; i < n; i++) {
            v[i] = mu * v[i] + u[i];
            w[i] += lr * v[i];
        }
        break;
    }
    case FEDC_SERVER_FEDADAM: { /* m = b1 m + (1-b1) u;  v = b2 v + (1-b2) u^2;
                                   w += lr * m / (sqrt(v) + tau) */
        float *restrict m = s->m, *restrict v = s->v;
        const float b1 = s->cfg.beta1, b2 = s->cfg.beta2, tau = s->cfg.tau;
        const float c1 = 1.0f - b1, c2 = 1.0f - b2;
        for (size_t i = 0; i < n; i++) {
            m[i] = b1 * m[i] + c1 * u[i];
            v[i] = b2 * v[i] + c2 * u[i] * u[i];
            w[i] += lr * m[i] / (sqrtf(v[i]) + tau);
        }
        break;
    }
    }
    s->t++;
}

const char *fedc_server_name(fedc_server_opt k) {
    if ((unsigned)k < sizeof names / sizeof names[0])
        return names[k];
    return "?";
}

fedc_err fedc_server_parse(fedc_server_opt *out, const char *name) {
    assert(out);
    for (size_t k = 0; name && k < sizeof names / sizeof names[0]; k++)
        if (strcmp(name, names[k]) == 0) {
            *out = (fedc_server_opt)k;
            return FEDC_OK;
        }
    return FEDC_EINVAL;
}
