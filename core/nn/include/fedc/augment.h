/* Data augmentation for the rare class of a binary task (fraud), applied to a training set only
 * and, in a federation, inside each client only:
 *   oversample  random minority rows repeated
 *   smote       new rows on the segment between a minority row and one of its k nearest
 *               minority neighbours, x + u (x_nn - x), u ~ U(0, 1) (SMOTE, Chawla et al., JAIR
 *               16, 2002)
 *   noise       random minority rows plus Gaussian noise of standard deviation `noise` per
 *               feature (in the units of the data: after standardisation, a share of one
 *               standard deviation)
 * until positives / negatives reaches `ratio` (nothing is added when it already does). The
 * original rows come first, unchanged; the new ones follow. Deterministic for a seed. */
#ifndef FEDC_AUGMENT_H
#define FEDC_AUGMENT_H

#include <stdint.h>

#include "fedc/data.h"
#include "fedc/err.h"

typedef enum fedc_aug_kind {
    FEDC_AUG_NONE = 0,
    FEDC_AUG_OVERSAMPLE,
    FEDC_AUG_SMOTE,
    FEDC_AUG_NOISE
} fedc_aug_kind;

typedef struct fedc_aug_cfg {
    fedc_aug_kind kind;
    double ratio; /* positives / negatives wanted, (0, 1]; default 0.1 */
    int k;        /* SMOTE neighbours (default 5) */
    float noise;  /* noise standard deviation (default 0.05) */
    uint64_t seed;
} fedc_aug_cfg;

/* Parses "none", "oversample", "smote" or "noise", optionally with ":RATIO" (0 < RATIO <= 1),
 * into c (other fields get their defaults). FEDC_EINVAL naming what was expected. */
FEDC_MUST_CHECK fedc_err fedc_aug_parse(fedc_aug_cfg *c, const char *s, fedc_diag *d);

/* Writes the augmented copy of in to *out (caller-owned). Labels must be 0/1; FEDC_EINVAL when
 * there are no positives to learn from. *added (may be NULL) gets the number of new rows. */
FEDC_MUST_CHECK fedc_err fedc_augment(fedc_dataset **out, const fedc_dataset *in,
                                      const fedc_aug_cfg *c, int *added, fedc_diag *d);

#endif
