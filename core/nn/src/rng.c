/* Sequential helpers over the counter-based generator in rng.h. */
#include "fedc/rng.h"

#include <math.h>

uint64_t fedc_rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t k = fedc_rng_at(seed, a);
    k = fedc_rng_at(k, b);
    return fedc_rng_at(k, c);
}

void fedc_rng_init(fedc_rng *r, uint64_t key) {
    r->key = key;
    r->counter = 0;
}

uint64_t fedc_rng_next(fedc_rng *r) {
    return fedc_rng_at(r->key, r->counter++);
}

float fedc_rng_uniform(fedc_rng *r) {
    return (float)(fedc_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

uint32_t fedc_rng_below(fedc_rng *r, uint32_t n) {
    /* Lemire, "Fast random integer generation in an interval", ACM TOMACS 2019. */
    uint64_t m = (fedc_rng_next(r) >> 32) * (uint64_t)n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (fedc_rng_next(r) >> 32) * (uint64_t)n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float fedc_rng_normal(fedc_rng *r) {
    double u1 = ((double)(fedc_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(fedc_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void fedc_rng_shuffle(fedc_rng *r, int *idx, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)fedc_rng_below(r, (uint32_t)(i + 1));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
