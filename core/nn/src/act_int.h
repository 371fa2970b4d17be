/* Internal: one activation of one value, the forward pass's scalar form, shared by training's
 * forward pass (train.c) and scoring (score.c, score_kern.h) so that both compute the same
 * function. Inlined where it is used. */
#ifndef FEDC_ACT_INT_H
#define FEDC_ACT_INT_H

#include <math.h>

#include "fedc/model.h"

static inline float fedc__act(fedc_act act, float z) {
    switch (act) {
    case FEDC_ACT_RELU:
        return z > 0.0f ? z : 0.0f;
    case FEDC_ACT_LEAKY_RELU:
        return z > 0.0f ? z : FEDC_LEAKY_SLOPE * z;
    case FEDC_ACT_SIGMOID:
        return 1.0f / (1.0f + expf(-z));
    case FEDC_ACT_TANH:
        return tanhf(z);
    default:
        return z;
    }
}

#endif
