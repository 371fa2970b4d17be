/* The JSON form of a features spec (fedc/features.h's fedc_features_spec): what fedc features
 * --spec-out writes and --spec reads, and what model files keep under the key "features" of their
 * data recipe (fedc_model.meta), so that scoring can compute a model's inputs the way it was
 * trained. It lives in core/fl, not beside the spec in core/nn, because it links cJSON and core/nn
 * links libc, libm and OpenMP only.
 *
 *   {
 *     "format": "fedc-features-spec",
 *     "version": 1,
 *     "time": "TX_DATETIME",
 *     "time_format": "datetime",              (or "epoch")
 *     "calendar": true,
 *     "windows": [
 *       {"entity": "CUSTOMER_ID", "days": [1, 7, 30], "delay_days": 0,
 *        "aggregates": [{"kind": "count"}, {"kind": "mean", "column": "TX_AMOUNT"}]}
 *     ]
 *   }
 *
 * kind is count, sum, mean or rate; every aggregate but count names its column. Reading is
 * strict: every key above must be there (delay_days may be left out: 0), no other key may, and
 * each value is checked as the text form is (days 1..3650, distinct; the delay 0..3650; names of
 * 1..200 bytes without : , ; =). Errors name the input and the key, e.g. "spec.json: key
 * 'windows[1].days[0]': expected whole days in 1..3650, got 0". */
#ifndef FEDC_FEATURES_SPEC_H
#define FEDC_FEATURES_SPEC_H

#include "fedc/err.h"
#include "fedc/features.h"

/* Largest spec text read, in bytes (a spec of 64 windows of 16 aggregates is about 100 KiB). */
#define FEDC_FEATURES_SPEC_MAX_BYTES (1u << 20)

/* Reads the spec in json (NUL-terminated) into *out, which is initialised here (release it with
 * fedc_features_spec_release, also after an error). name is what messages call the text: a file
 * name, or e.g. "model.fedc (recipe key 'features')". Errors: FEDC_EPARSE (not JSON: d says
 * "name:line:column: not valid JSON"), FEDC_EFORMAT (a key missing, unknown or with a bad value),
 * FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_features_spec_from_json(fedc_features_spec *out, const char *json,
                                                      const char *name, fedc_diag *d);

/* Reads the spec file path (at most FEDC_FEATURES_SPEC_MAX_BYTES). Errors as above, and FEDC_EIO
 * when the file cannot be read. */
FEDC_MUST_CHECK fedc_err fedc_features_spec_load(fedc_features_spec *out, const char *path,
                                                 fedc_diag *d);

/* The spec as JSON text (indented, ending in a newline) in *out, which the caller frees. Errors:
 * FEDC_EINVAL (no time column), FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_features_spec_to_json(char **out, const fedc_features_spec *s);

/* Writes the spec to path atomically (fedc_write_atomic). Errors: FEDC_EINVAL, FEDC_EIO,
 * FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_features_spec_save(const fedc_features_spec *s, const char *path,
                                                 fedc_diag *d);

#endif
