/* Tabular data: CSV loading, task detection, standardisation and stratified splits.
 *
 * A dataset is one contiguous row-major float matrix x (n_rows, n_features) plus one float label
 * per row (the class index 0..K-1 for classification, the target for regression). Cells are
 * numbers, unless a fedc_encoding (fedc/encode.h) says how missing values, text labels and
 * categorical columns become numbers. Every error in a file is reported once with
 * path:line:column (the header is line 1, columns count fields from 1). */
#ifndef FEDC_DATA_H
#define FEDC_DATA_H

#include <stdint.h>

#include "fedc/encode.h"
#include "fedc/err.h"

typedef enum fedc_task {
    FEDC_TASK_BINARY = 0,     /* labels 0/1: one sigmoid output, binary cross-entropy */
    FEDC_TASK_MULTICLASS = 1, /* labels 0..K-1 (K > 2): K softmax outputs, cross-entropy */
    FEDC_TASK_REGRESSION = 2, /* real target: one linear output, mean squared error */
} fedc_task;

typedef struct fedc_dataset {
    int n_rows;
    int n_features;
    float *x;             /* (n_rows, n_features), owned */
    float *y;             /* (n_rows), owned */
    char **feature_names; /* n_features strings, owned */
    char *label_name;     /* owned */
} fedc_dataset;

/* Hard limits that keep a hostile file from making us allocate without bound. */
#define FEDC_CSV_MAX_COLUMNS 100000
#define FEDC_CSV_MAX_FIELD 4096

/* Loads a CSV file with a header line, read by the tokenizer of fedc/csv.h (RFC 4180: quoted
 * fields may hold commas, doubled quotes and line breaks). `label` names the label column; `drop`
 * lists n_drop column names to ignore (each must exist; a dropped column may hold any text).
 * Every remaining cell must parse as a finite decimal number (surrounding blanks and quotes are
 * allowed; hexadecimal forms such as 0x1p3, which strtof would read, are refused). Column names
 * must be UTF-8 and hold no line break. Empty lines at the end are ignored; CRLF line ends are
 * accepted.
 * Errors (with d->msg naming path[:line[:column]]): FEDC_EIO unreadable path, FEDC_EEMPTY empty
 * file or no data rows, FEDC_EPARSE non-numeric/empty/hexadecimal cell, ragged row (expected vs
 * got field count), bad quoting (an unterminated quote names the line where it opened, text
 * after a closing quote, a quote inside an unquoted field), a NUL byte anywhere (refused as soon as
 * it is read, so a sparse or binary file costs one 1 MiB read) or a bad header (blank, an empty or
 * duplicate column name, a name that is not UTF-8), FEDC_EINVAL missing label or drop column (or
 * the label dropped, or no feature left), FEDC_ERANGE beyond a limit (more than
 * FEDC_CSV_MAX_COLUMNS columns, a column name longer than FEDC_CSV_MAX_FIELD bytes, a line longer
 * than FEDC_CSV_MAX_FIELD + 8 bytes per header column; a header line is checked against that bound
 * per field while it is read, so one without commas or line breaks is refused after the first
 * chunk). On success *out is caller-owned (fedc_dataset_destroy). */
FEDC_MUST_CHECK fedc_err fedc_csv_load(fedc_dataset **out, const char *path, const char *label,
                                       const char *const *drop, int n_drop, fedc_diag *d);

/* fedc_csv_load with a fedc_encoding (NULL: the defaults, as fedc_csv_load): the separator, a
 * label or dropped column named with blanks around it, missing values (an error under
 * FEDC_MISSING_ERROR naming file:line:column and the flag; else 0, the given imputation value
 * or NaN, with indicator columns), text labels and categorical columns as fedc/encode.h says.
 * Feature names are the output columns': COL, COL_MISSING, COL=h0... Errors as fedc_csv_load's,
 * plus FEDC_EINVAL for settings the header cannot meet (encode_int.h lists them), FEDC_EPARSE for
 * a missing label. */
FEDC_MUST_CHECK fedc_err fedc_csv_load_enc(fedc_dataset **out, const char *path, const char *label,
                                           const char *const *drop, int n_drop,
                                           const fedc_encoding *enc, fedc_diag *d);

/* Missing cells (NaN, left by FEDC_MISSING_MEAN without imputation values) in ds. */
long fedc_dataset_count_missing(const fedc_dataset *ds);

/* mean[j]: the mean of column j over its present (non-NaN) cells, 0 when it has none, in
 * double. mean is a caller buffer of n_features. */
void fedc_dataset_missing_means(float *mean, const fedc_dataset *ds);

/* Replaces every NaN in column j by values[j]; returns how many cells it filled. */
long fedc_dataset_fill_missing(fedc_dataset *ds, const float *values);

/* Allocates an empty dataset with room for n_rows x n_features (names NULL). */
FEDC_MUST_CHECK fedc_err fedc_dataset_new(fedc_dataset **out, int n_rows, int n_features);

/* Frees *ds and its buffers; accepts NULL; sets *ds = NULL. */
void fedc_dataset_destroy(fedc_dataset **ds);

/* Copies the listed rows (indices into src) into a new dataset with the same names. */
FEDC_MUST_CHECK fedc_err fedc_dataset_subset(fedc_dataset **out, const fedc_dataset *src,
                                             const int *rows, int n);

/* Chooses the task from the labels unless `forced_regression` is set: all labels in {0,1} ->
 * binary (n_classes = 2, even if one of them is absent, as in a client's all-negative shard); all
 * non-negative integers 0..K-1 with K > 2 -> multiclass (n_classes = K, every class present up to
 * the maximum); anything else -> FEDC_EINVAL with a message naming the first offending row (data
 * line number = row + 2) and value, suggesting --task regression. For regression n_classes = 1. */
FEDC_MUST_CHECK fedc_err fedc_dataset_task(fedc_task *task, int *n_classes, const fedc_dataset *ds,
                                           int forced_regression, fedc_diag *d);

/* Per-feature mean and standard deviation (population, divides by n) over all rows, accumulated
 * in double. A constant column gets std 1 so that standardising leaves it at 0. mean and std are
 * caller buffers of n_features. */
void fedc_dataset_stats(float *mean, float *std, const fedc_dataset *ds);

/* x[i][j] = (x[i][j] - mean[j]) / std[j]; the statistics may come from elsewhere (the
 * federation agrees on them). Every std[j] must be nonzero (FEDC_CHECK): statistics received
 * from peers are validated by the caller first. */
void fedc_dataset_standardize(fedc_dataset *ds, const float *mean, const float *std);

/* Stratified split by seed: within each class (binary/multiclass; regression uses one stratum)
 * rows are shuffled with a seeded generator and the first round(val_fraction * n_c) go to
 * validation, the next round(test_fraction * n_c) to test, the rest to train. Rows keep their
 * original relative order inside each part. val/test may be NULL when their fraction is 0
 * (then the matching output pointer is set to NULL). Fractions must be >= 0 and sum to < 1. */
FEDC_MUST_CHECK fedc_err fedc_dataset_split(fedc_dataset **train, fedc_dataset **val,
                                            fedc_dataset **test, const fedc_dataset *ds,
                                            fedc_task task, double val_fraction,
                                            double test_fraction, uint64_t seed);

/* Positive-class weight as fraud teams use it: negatives / positives over a binary dataset
 * (1 when either class is absent, where the ratio is undefined). */
float fedc_dataset_pos_weight(const fedc_dataset *ds);

#endif
