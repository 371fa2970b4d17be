/* The loader flags every program that reads a CSV file shares (--delimiter, --missing,
 * --missing-indicators, --positive, --categorical, --hash-buckets, --hash-key, --features-spec)
 * turned into a fedc_encoding (fedc/encode.h), and the model recipe (fedc/recipe.h) written from
 * it and read back by fedc eval and fedc report. */
#ifndef FEDC_LOADOPTS_H
#define FEDC_LOADOPTS_H

#include "fedc/data.h"
#include "fedc/model.h"
#include "fedc/recipe.h"
#include "options.h"

/* A program's loader settings; enc points into the storage here (and into o's strings). */
typedef struct fedc_load_opts {
    fedc_encoding enc;
    char **categorical; /* NULL-terminated (cli_free_list) */
    char **indicators;
    char *features;         /* --features-spec as compact JSON text, or NULL */
    fedc_recipe_enc recipe; /* fedc eval/report: the model's encoding (enc copies it) */
    int has_recipe;
} fedc_load_opts;

/* Reads the loader flags that program prog takes from o into lo. Returns 0, or FEDC_EXIT_USAGE
 * after "fedc CMD: --flag: ..." naming what was expected (a separator that cannot separate, a
 * key that is not 32 hex digits, --missing-indicators without --missing mean|zero, a features
 * spec that is not a JSON object). lo is released on failure. */
int fedc_load_opts_get(fedc_load_opts *lo, const fedc_opts *o, const char *cmd);

/* fedc eval and fedc report: takes the encoding of model m's recipe (when it has one) over
 * lo->enc, keeping the file-format flags given on the command line (--delimiter, --positive);
 * everything that defines the columns is the recipe's. Returns 0, or FEDC_EXIT_USAGE after a
 * message when the recipe cannot be read. */
int fedc_load_opts_from_model(fedc_load_opts *lo, const fedc_opts *o, const fedc_model *m,
                              const char *cmd);

void fedc_load_opts_release(fedc_load_opts *lo);

/* The encoding to load a file with for scoring: lo->enc without imputation values (missing cells
 * stay NaN under "mean", so that they are filled per model feature by fedc_load_opts_fill). */
fedc_encoding fedc_load_opts_scoring(const fedc_load_opts *lo);

/* Fills the NaN cells of x (the model's inputs, in the model's feature order) with the recipe's
 * imputation values. Returns 0, or FEDC_EXIT_USAGE after a message naming data when cells are
 * missing and the recipe has no value for them. */
int fedc_load_opts_fill(fedc_dataset *x, const fedc_load_opts *lo, const char *data,
                        const char *cmd);

/* Parses a --delimiter value: one allowed byte, or "tab" / "\t". Returns 0, or -1. */
int fedc_parse_delimiter(char *out, const char *text);

/* Stores the recipe in m: "encoding" (enc with the imputation values impute[0..n) when not NULL)
 * and "features" (features, may be NULL). Returns 0, or -1 when out of memory. */
int fedc_model_set_recipe(fedc_model *m, const fedc_encoding *enc, const float *impute, int n,
                          const char *features);

/* fedc train and fedc sim: with --missing mean, fills the missing cells of train (and of each
 * other dataset in others, may hold NULLs) with train's means over its present values, written
 * into impute (n_features, caller buffer; left untouched otherwise). Returns the cells filled
 * in train. */
long fedc_impute_train_means(float *impute, fedc_dataset *train, fedc_dataset *const *others,
                             int n_others);

#endif
