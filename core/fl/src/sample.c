/* Client sampling for a round: a partial Fisher-Yates shuffle of the sorted candidate ids driven
 * by the reproducible counter-based stream of (seed, round). Sorting first makes the pick a
 * function of the candidate set, so a coordinator whose registry lists clients in another order
 * (say, after a restart) still picks the same ones. Not here: weighting clients by data size or
 * availability. */
#include "fedc/fl.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/rng.h"

#define RNG_PURPOSE_SAMPLE 0x53414d50u /* "SAMP" */

static int cmp_int(const void *pa, const void *pb) {
    int a = *(const int *)pa, b = *(const int *)pb;
    return (a > b) - (a < b);
}

/* ceil(fraction * n), forgiving products that exceed an integer by rounding noise only: 0.1 * 30
 * is 3.0000000000000004 in double, and a user asking for a tenth of 30 clients means 3. */
static int ceil_fraction(double fraction, int n) {
    double x = fraction * (double)n;
    double r = nearbyint(x);
    if (fabs(x - r) <= 1e-9 * fmax(1.0, x))
        return (int)r;
    return (int)ceil(x);
}

int fedc_sample_clients(int *chosen, const int *candidates, int n_candidates, double fraction,
                        int min_clients, uint64_t seed, uint64_t round) {
    if (!(fraction > 0.0 && fraction <= 1.0) || n_candidates < 0 || min_clients < 0)
        return -1;
    if (n_candidates == 0)
        return 0;
    assert(chosen && candidates);

    memcpy(chosen, candidates, (size_t)n_candidates * sizeof *chosen);
    qsort(chosen, (size_t)n_candidates, sizeof *chosen, cmp_int);
    for (int i = 1; i < n_candidates; i++)
        if (chosen[i] == chosen[i - 1])
            return -1;

    int k = ceil_fraction(fraction, n_candidates);
    if (k < min_clients)
        k = min_clients;
    if (k > n_candidates)
        k = n_candidates;

    /* Partial Fisher-Yates: after step i, chosen[0..i] is a uniform sample without replacement. */
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(seed, RNG_PURPOSE_SAMPLE, round, 0));
    for (int i = 0; i < k; i++) {
        int j = i + (int)fedc_rng_below(&r, (uint32_t)(n_candidates - i));
        int t = chosen[i];
        chosen[i] = chosen[j];
        chosen[j] = t;
    }
    qsort(chosen, (size_t)k, sizeof *chosen, cmp_int);
    return k;
}
