/* Optimizers over the flat parameter buffer: SGD with momentum and Adam (with AdamW's decoupled
 * weight decay), plus L1 and L2 penalties on weights (never on biases).
 *
 * Penalties add to the gradient of weight entries before the update:
 *   g += l2 * w + l1 * sign(w)        (objective + l2/2 ||w||^2 + l1 ||w||_1)
 * SGD (PyTorch convention): v = momentum * v + g;  w -= lr * v
 * Adam (Kingma & Ba 2015, Algorithm 1): m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * AdamW (Loshchilov & Hutter 2019): additionally w -= lr * weight_decay * w, on weights only.
 * FedProx (Li et al., MLSys 2020): with a centre w0 (the global model of the round) every
 *   parameter's gradient gains prox_mu * (w - w0), the gradient of (prox_mu / 2) ||w - w0||^2. */
#ifndef FEDC_OPTIM_H
#define FEDC_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"
#include "fedc/model.h"

typedef enum fedc_opt_kind {
    FEDC_OPT_SGD = 0,
    FEDC_OPT_ADAM = 1,
} fedc_opt_kind;

typedef struct fedc_optim_cfg {
    fedc_opt_kind kind;
    float lr;
    float momentum;           /* SGD only; 0 disables momentum */
    float beta1, beta2;       /* Adam */
    float eps;                /* Adam */
    float weight_decay;       /* decoupled (AdamW-style for Adam; for SGD too); weights only */
    float l1, l2;             /* penalties on weights */
    float prox_mu;            /* FedProx proximal weight; 0 = off */
    const float *prox_center; /* (n_params) borrowed while training; required when prox_mu > 0 */
} fedc_optim_cfg;

/* Defaults: Adam, lr 1e-3, momentum 0.9, betas 0.9/0.999, eps 1e-8, no decay or penalties. */
fedc_optim_cfg fedc_optim_defaults(void);

typedef struct fedc_optim {
    fedc_optim_cfg cfg;
    size_t n;
    float *m;           /* (n) first moment / momentum buffer, owned */
    float *v;           /* (n) second moment (Adam), owned */
    uint8_t *is_weight; /* (n) 1 for weight entries, 0 for biases, owned */
    long t;             /* steps taken */
} fedc_optim;

/* Allocates optimizer state for model m (zeroed moments). */
FEDC_MUST_CHECK fedc_err fedc_optim_new(fedc_optim **out, const fedc_optim_cfg *cfg,
                                        const fedc_model *m);
void fedc_optim_destroy(fedc_optim **o);
/* Zeroes moments and the step count. */
void fedc_optim_reset(fedc_optim *o);

/* One update of params from grad (both n floats; grad is only read). Work-shared
 * (`omp for`) like the kernels: inside a parallel region every thread calls it with the same
 * step number `t` (1 for the first step); the caller advances o->t. */
void fedc_optim_step(fedc_optim *o, float *restrict params, const float *restrict grad, long t);

#endif
