/* Reproducible randomness for training: a counter-based generator.
 *
 * fedc_rng_at(key, counter) is a pure function (a SplitMix64-style mixer applied to the key and the
 * counter; Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014),
 * so any value of a stream can be computed directly from its position. Dropout masks use this to be
 * the same whatever thread computes them. This generator is NOT for secrets: keys, masks and DP
 * noise come from libsodium in core/fl. */
#ifndef FEDC_RNG_H
#define FEDC_RNG_H

#include <stdint.h>

typedef struct fedc_rng {
    uint64_t key;
    uint64_t counter;
} fedc_rng;

/* The value at position `counter` of stream `key`. */
static inline uint64_t fedc_rng_at(uint64_t key, uint64_t counter) {
    uint64_t z = key + (counter + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    /* A second round decorrelates nearby keys as well as nearby counters. */
    z = (z ^ (z >> 32)) * 0xd6e8feb86659fd93ULL;
    z = (z ^ (z >> 32)) * 0xd6e8feb86659fd93ULL;
    return z ^ (z >> 32);
}

/* Derives a stream key from a seed and up to three stream identifiers (e.g. purpose, client,
 * round), so that streams for different purposes never overlap. */
uint64_t fedc_rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);

void fedc_rng_init(fedc_rng *r, uint64_t key);
uint64_t fedc_rng_next(fedc_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float fedc_rng_uniform(fedc_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias (Lemire's method). */
uint32_t fedc_rng_below(fedc_rng *r, uint32_t n);
/* Standard normal (Box-Muller, computed in double). */
float fedc_rng_normal(fedc_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void fedc_rng_shuffle(fedc_rng *r, int *idx, int n);

/* Uniform in [0, 1) from a single counter-based draw. */
static inline float fedc_rng_uniform_at(uint64_t key, uint64_t counter) {
    return (float)(fedc_rng_at(key, counter) >> 40) * (1.0f / 16777216.0f);
}

#endif
