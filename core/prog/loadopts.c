/* The loader flags as a fedc_encoding, and the model recipe (loadopts.h). */
#include "loadopts.h"

#include <stdlib.h>
#include <string.h>

#include "fedc/card.h"
#include "fedc/csv.h"
#include "prog.h"

int fedc_parse_delimiter(char *out, const char *text) {
    if (!text)
        return -1;
    if (strcmp(text, "tab") == 0 || strcmp(text, "\\t") == 0) {
        *out = '\t';
        return 0;
    }
    if (strlen(text) != 1 || !fedc_csv_delimiter_ok(text[0]))
        return -1;
    *out = text[0];
    return 0;
}

void fedc_load_opts_release(fedc_load_opts *lo) {
    cli_free_list(lo->categorical);
    cli_free_list(lo->indicators);
    free(lo->features);
    if (lo->has_recipe)
        fedc_recipe_enc_release(&lo->recipe);
    memset(lo, 0, sizeof *lo);
    fedc_encoding_init(&lo->enc);
}

int fedc_load_opts_get(fedc_load_opts *lo, const fedc_opts *o, const char *cmd) {
    memset(lo, 0, sizeof *lo);
    fedc_encoding *e = &lo->enc;
    fedc_encoding_init(e);
    const fedc_opt_val *v = o->v;
    if (fedc_opt_has(o, FEDC_O_DELIMITER) &&
        fedc_parse_delimiter(&e->delimiter, v[FEDC_O_DELIMITER].text)) {
        cli_error(cmd,
                  "--delimiter '%s': expected one character that cannot be part of a number or a "
                  "name (such as , ; | : #) or 'tab'",
                  v[FEDC_O_DELIMITER].text);
        goto usage;
    }
    if (fedc_opt_has(o, FEDC_O_MISSING) &&
        fedc_missing_parse(&e->missing, v[FEDC_O_MISSING].text)) {
        cli_error(cmd, "--missing '%s': expected error, mean or zero", v[FEDC_O_MISSING].text);
        goto usage;
    }
    if (fedc_opt_has(o, FEDC_O_MISSING_INDICATORS)) {
        const char *t = v[FEDC_O_MISSING_INDICATORS].text;
        if (e->missing == FEDC_MISSING_ERROR) {
            cli_error(cmd, "--missing-indicators needs --missing mean or --missing zero (under "
                           "--missing error no cell is missing)");
            goto usage;
        }
        if (strcmp(t, "all") == 0) {
            e->ind_mode = FEDC_IND_ALL;
        } else if (strcmp(t, "none") == 0) {
            e->ind_mode = FEDC_IND_NONE;
        } else {
            if (cli_str_list(cmd, "--missing-indicators", t, &lo->indicators, &e->n_indicators))
                goto usage;
            e->ind_mode = FEDC_IND_LIST;
            e->indicators = (const char *const *)lo->indicators;
        }
    }
    if (fedc_opt_has(o, FEDC_O_POSITIVE)) {
        e->positive = v[FEDC_O_POSITIVE].text;
        size_t n = strlen(e->positive);
        if (n == 0 || fedc_is_missing_text(e->positive, n)) {
            cli_error(cmd,
                      "--positive '%s': expected the label value of the positive class (not "
                      "empty nor a missing-value spelling)",
                      e->positive);
            goto usage;
        }
    }
    if (fedc_opt_has(o, FEDC_O_CATEGORICAL)) {
        if (cli_str_list(cmd, "--categorical", v[FEDC_O_CATEGORICAL].text, &lo->categorical,
                         &e->n_categorical))
            goto usage;
        e->categorical = (const char *const *)lo->categorical;
    }
    if (fedc_opt_has(o, FEDC_O_HASH_BUCKETS))
        e->hash_buckets = (int)v[FEDC_O_HASH_BUCKETS].i;
    if (fedc_opt_has(o, FEDC_O_HASH_KEY) &&
        fedc_hash_key_parse(e->hash_key, v[FEDC_O_HASH_KEY].text)) {
        cli_error(cmd, "--hash-key '%s': expected 32 hexadecimal digits (16 bytes)",
                  v[FEDC_O_HASH_KEY].text);
        goto usage;
    }
    if (fedc_opt_has(o, FEDC_O_FEATURES_SPEC)) {
        fedc_diag d;
        fedc_err rc = fedc_features_spec_read(&lo->features, v[FEDC_O_FEATURES_SPEC].text, &d);
        if (rc) {
            cli_error(cmd, "--features-spec: %s", d.msg);
            if (rc == FEDC_ENOMEM) {
                fedc_load_opts_release(lo);
                return FEDC_EXIT_FAIL;
            }
            goto usage;
        }
    }
    return 0;
usage:
    fedc_load_opts_release(lo);
    return FEDC_EXIT_USAGE;
}

int fedc_load_opts_from_model(fedc_load_opts *lo, const fedc_opts *o, const fedc_model *m,
                              const char *cmd) {
    char *text = m ? fedc_meta_get(m, "encoding") : NULL;
    if (!text)
        return 0; /* no recipe: the flags (and the defaults) stand */
    fedc_diag d;
    fedc_err rc = fedc_encoding_from_json(&lo->recipe, text, &d);
    free(text);
    if (rc) {
        cli_error(cmd, "--model: the model's data recipe: %s", d.msg);
        return FEDC_EXIT_USAGE;
    }
    lo->has_recipe = 1;
    fedc_encoding keep = lo->enc;
    lo->enc = lo->recipe.enc;
    if (fedc_opt_given(o, FEDC_O_DELIMITER))
        lo->enc.delimiter = keep.delimiter;
    if (fedc_opt_given(o, FEDC_O_POSITIVE))
        lo->enc.positive = keep.positive;
    return 0;
}

int fedc_model_set_recipe(fedc_model *m, const fedc_encoding *enc, const float *impute, int n,
                          const char *features) {
    fedc_encoding e = *enc;
    e.impute = impute;
    e.n_impute = n;
    char *ej = fedc_encoding_json(&e, 1);
    fedc_diag d;
    int rc = ej && fedc_meta_put(m, "encoding", ej, &d) == FEDC_OK &&
                     (!features || fedc_meta_put(m, "features", features, &d) == FEDC_OK)
                 ? 0
                 : -1;
    free(ej);
    return rc;
}

long fedc_impute_train_means(float *impute, fedc_dataset *train, fedc_dataset *const *others,
                             int n_others) {
    fedc_dataset_missing_means(impute, train);
    long n = fedc_dataset_fill_missing(train, impute);
    for (int i = 0; i < n_others; i++) {
        if (others[i])
            (void)fedc_dataset_fill_missing(others[i], impute);
    }
    return n;
}

fedc_encoding fedc_load_opts_scoring(const fedc_load_opts *lo) {
    fedc_encoding e = lo->enc;
    e.impute = NULL;
    e.n_impute = 0;
    return e;
}

int fedc_load_opts_fill(fedc_dataset *x, const fedc_load_opts *lo, const char *data,
                        const char *cmd) {
    if (lo->enc.missing != FEDC_MISSING_MEAN)
        return 0;
    if (lo->enc.impute && lo->enc.n_impute == x->n_features) {
        (void)fedc_dataset_fill_missing(x, lo->enc.impute);
        return 0;
    }
    long n = fedc_dataset_count_missing(x);
    if (n == 0)
        return 0;
    cli_error(cmd,
              "%s: %ld missing cells, and the model's recipe holds %d imputation values for its "
              "%d features (expected one per feature)",
              data, n, lo->enc.n_impute, x->n_features);
    return FEDC_EXIT_USAGE;
}
