/* A model's data recipe (fedc_model.meta, a JSON object) and the loader encoding in it.
 *
 * Keys of the recipe: "encoding" (below) and "features" (the fedc features spec, an object this
 * module only checks and carries). The encoding object, every key always present and written in
 * this order so that equal settings give equal text:
 *   "missing": "error" | "mean" | "zero"
 *   "indicators": "all" | "none" | ["COL", ...]   ("none" under "error")
 *   "categorical": ["COL", ...]
 *   "hash": "siphash-2-4", "hash_key": 32 hex digits, "hash_buckets": N
 * which is what the clients of a federation must agree on (it decides the columns and what they
 * mean), and, in a model's recipe only (full), the training file's format and the imputation:
 *   "delimiter": one character, "positive": "VALUE" or null,
 *   "impute": [v, ...] one value per model input ("mean" only). */
#ifndef FEDC_RECIPE_H
#define FEDC_RECIPE_H

#include <stddef.h>

#include "fedc/encode.h"
#include "fedc/err.h"

#define FEDC_HASH_NAME "siphash-2-4"
/* The largest --features-spec file read. */
#define FEDC_SPEC_MAX_BYTES (1 << 20)

/* An encoding parsed from JSON, owning what its enc points to. */
typedef struct fedc_recipe_enc {
    fedc_encoding enc;
    char **categorical;
    char **indicators;
    char *positive;
    float *impute;
} fedc_recipe_enc;

/* The JSON text of e as above (full: with delimiter, positive and e->impute); caller frees;
 * NULL when out of memory. */
char *fedc_encoding_json(const fedc_encoding *e, int full);

/* Parses an encoding object. FEDC_EPARSE (not JSON, not an object, a key of the wrong type or
 * value) naming the key, FEDC_ENOMEM. On success out is the caller's (fedc_recipe_enc_release). */
FEDC_MUST_CHECK fedc_err fedc_encoding_from_json(fedc_recipe_enc *out, const char *json,
                                                 fedc_diag *d);
void fedc_recipe_enc_release(fedc_recipe_enc *r);

/* Whether a client's agreed encoding (text) differs from the federation's: returns 1 and writes
 * what differs into why, worded from the client's side ("categorical column MCC hashed into 16
 * buckets, the federation uses 32"); 0 when they agree. Empty or NULL text stands for the
 * defaults. */
int fedc_encoding_differs(const char *mine, const char *federation, char *why, size_t cap);

/* The recipe's keys are read and written with fedc_meta_get and fedc_meta_put (fedc/card.h),
 * which keep the other keys (the model card). */

/* Reads a --features-spec file: at most FEDC_SPEC_MAX_BYTES, a JSON object. *out gets its
 * compact text (caller frees). FEDC_EIO unreadable, FEDC_EPARSE not a JSON object (naming
 * path:line:column of a syntax error), FEDC_ERANGE too large. */
FEDC_MUST_CHECK fedc_err fedc_features_spec_read(char **out, const char *path, fedc_diag *d);

/* 1 when two JSON texts are different values (object key order ignored), or either is not JSON;
 * two empty or NULL texts are equal, an empty one and a non-empty one differ. */
int fedc_json_differs(const char *a, const char *b);

#endif
