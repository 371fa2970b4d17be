/* Robust aggregation of client updates for when secure aggregation is off and the coordinator
 * holds every update (docs/security.md, "Robust aggregation"):
 *   median        coordinate-wise median (Yin et al., ICML 2018)
 *   trimmed mean  per coordinate, drop the floor(beta n) largest and smallest values and average
 *                 the rest (Yin et al. 2018; beta must exceed the share of bad clients)
 *   Krum          the update with the smallest sum of squared distances to its n - f - 2 nearest
 *                 others (Blanchard et al., NeurIPS 2017; needs n > 2f + 2); Multi-Krum averages
 *                 the m best by that score
 *   norm bound    every update scaled down to L2 norm at most C before averaging (Sun et al.
 *                 2019)
 * Updates are unweighted here (robust rules treat clients alike). */
#ifndef FEDC_ROBUST_H
#define FEDC_ROBUST_H

#include <stddef.h>

#include "fedc/err.h"

typedef enum fedc_robust_kind {
    FEDC_AGG_MEAN = 0,
    FEDC_AGG_MEDIAN,
    FEDC_AGG_TRIMMED_MEAN,
    FEDC_AGG_KRUM,
    FEDC_AGG_MULTI_KRUM,
    FEDC_AGG_NORM_BOUND
} fedc_robust_kind;

typedef struct fedc_robust_cfg {
    fedc_robust_kind kind;
    double beta; /* trimmed mean: share trimmed at each end, [0, 0.5) */
    int f;       /* Krum: clients assumed bad */
    int m;       /* Multi-Krum: updates averaged (0 = n - f) */
    double clip; /* norm bound C > 0 */
} fedc_robust_cfg;

/* The rule's name as --aggregator spells it ("mean", "trimmed-mean", ...), or NULL for a value
 * outside the enum. */
const char *fedc_robust_name(fedc_robust_kind k);

/* Index of the first update holding a NaN or infinity, or -1: such updates must be rejected
 * under every rule (the caller logs which). */
int fedc_robust_first_bad(const float *const *u, int n, size_t p);

/* out (p values) = the rule applied to n updates of p values each. FEDC_EINVAL for n < 1, bad
 * parameters (trim share, n <= 2f + 2 for Krum, C <= 0) naming them; FEDC_ERANGE when an update
 * is not finite; FEDC_ENOMEM. *chosen (may be NULL) gets the index Krum picked (-1 otherwise). */
FEDC_MUST_CHECK fedc_err fedc_robust_aggregate(float *out, const float *const *u, int n, size_t p,
                                               const fedc_robust_cfg *c, int *chosen, fedc_diag *d);

#endif
