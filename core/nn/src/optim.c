/* SGD with momentum and Adam/AdamW over the flat parameter buffer (formulas in optim.h). The
 * update is elementwise, so any thread split gives the same result. */
#include "fedc/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"

fedc_optim_cfg fedc_optim_defaults(void) {
    fedc_optim_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = FEDC_OPT_ADAM;
    c.lr = 1e-3f;
    c.momentum = 0.9f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    return c;
}

fedc_err fedc_optim_new(fedc_optim **out, const fedc_optim_cfg *cfg, const fedc_model *m) {
    fedc_err rc = FEDC_OK;
    fedc_optim *o = calloc(1, sizeof *o);
    *out = NULL;
    if (!o)
        return FEDC_ENOMEM;
    o->cfg = *cfg;
    o->n = m->n_params;
    o->m = calloc(o->n, sizeof(float));
    o->v = calloc(o->n, sizeof(float));
    o->is_weight = calloc(o->n, 1);
    if (!o->m || !o->v || !o->is_weight) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    for (int l = 0; l < m->arch.n_layers; l++)
        memset(o->is_weight + m->w_off[l], 1, (size_t)m->arch.sizes[l] * m->arch.sizes[l + 1]);
out:
    if (rc)
        fedc_optim_destroy(&o);
    *out = o;
    return rc;
}

void fedc_optim_destroy(fedc_optim **po) {
    if (!po || !*po)
        return;
    free((*po)->m);
    free((*po)->v);
    free((*po)->is_weight);
    free(*po);
    *po = NULL;
}

void fedc_optim_reset(fedc_optim *o) {
    memset(o->m, 0, o->n * sizeof(float));
    memset(o->v, 0, o->n * sizeof(float));
    o->t = 0;
}

/* One work-shared pass of the update. `prox` is a compile-time constant at both call sites, so
 * each version is a branch-free loop that vectorises (the centre is read only with FedProx on). */
static inline __attribute__((always_inline)) void step_loop(fedc_optim *o, float *restrict params,
                                                            const float *restrict grad, long t,
                                                            const int prox) {
    const fedc_optim_cfg c = o->cfg;
    const long n = (long)o->n;
    float *restrict mo = o->m, *restrict vo = o->v;
    const uint8_t *restrict isw = o->is_weight;
    const float *restrict w0 = c.prox_center;
    const float mu = c.prox_mu;
    if (c.kind == FEDC_OPT_ADAM) {
        /* Bias corrections folded into the step size and epsilon (Kingma & Ba, section 2). */
        const double bc1 = 1.0 - pow(c.beta1, (double)t), bc2 = 1.0 - pow(c.beta2, (double)t);
        const float step = (float)(c.lr / bc1);
        const float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
        const float b1 = c.beta1, b2 = c.beta2, ob1 = 1.0f - c.beta1, ob2 = 1.0f - c.beta2;
        const float decay = c.lr * c.weight_decay;
        FEDC_OMP_FOR
        for (long i = 0; i < n; i++) {
            /* isw is 1 for weights, 0 for biases: penalties and decay without a branch. */
            float g = grad[i], w = params[i], is = (float)isw[i];
            g += is * (c.l2 * w + (w > 0.0f ? c.l1 : (w < 0.0f ? -c.l1 : 0.0f)));
            if (prox)
                g += mu * (w - w0[i]);
            w -= is * decay * w;
            float mi = b1 * mo[i] + ob1 * g;
            float vi = b2 * vo[i] + ob2 * (g * g);
            mo[i] = mi;
            vo[i] = vi;
            params[i] = w - step * mi / (sqrtf(vi) * inv_sqrt_bc2 + c.eps);
        }
    } else {
        const float decay = c.lr * c.weight_decay;
        FEDC_OMP_FOR
        for (long i = 0; i < n; i++) {
            float g = grad[i], w = params[i], is = (float)isw[i];
            g += is * (c.l2 * w + (w > 0.0f ? c.l1 : (w < 0.0f ? -c.l1 : 0.0f)));
            if (prox)
                g += mu * (w - w0[i]);
            w -= is * decay * w;
            float v = c.momentum * mo[i] + g;
            mo[i] = v;
            params[i] = w - c.lr * v;
        }
    }
}

void fedc_optim_step(fedc_optim *o, float *restrict params, const float *restrict grad, long t) {
    if (o->cfg.prox_center && o->cfg.prox_mu > 0.0f)
        step_loop(o, params, grad, t, 1);
    else
        step_loop(o, params, grad, t, 0);
    fedc__sync();
}
