/* The loader's column plan (inside fedc_nn only): which output features each header column of a
 * CSV file becomes under a fedc_encoding (fedc/encode.h), and their names. data.c reads the rows
 * with it; encode.c builds it. */
#ifndef FEDC_ENCODE_INT_H
#define FEDC_ENCODE_INT_H

#include "fedc/encode.h"
#include "fedc/err.h"

/* Roles of header columns: >= 0 is the output feature a numeric column fills. */
enum { FEDC__ROLE_DROP = -1, FEDC__ROLE_LABEL = -2, FEDC__ROLE_CAT = -3 };

typedef struct fedc__plan {
    int n_features;
    char **names;   /* n_features output names, owned (the loader moves them into the dataset) */
    int *aux;       /* per column: its indicator feature (numeric) or its first one-hot feature
                       (categorical), else -1; owned */
    int zero_rows;  /* 1 when rows hold columns that are 0 unless set (one-hot, indicator) */
    int label_text; /* 1 when the label is text compared with enc->positive */
    const char *positive;
    size_t positive_len;
    fedc_missing missing;
    const float *impute; /* n_features values, or NULL */
    int buckets;
    const uint8_t *key;
    char delim;
    unsigned char stop[256]; /* bytes that end a field read as text on the fast path */
} fedc__plan;

/* Fills role[] (n_cols entries: the label and dropped columns set, others 0 on entry) with the
 * categorical columns and the output index of every numeric one, and p with the output names.
 * names are the header's (trimmed). Errors name path:1[:column]: a categorical or indicator
 * column not in the header, the label or a dropped column listed as categorical, an indicator
 * for a column that is not a numeric feature, an output name that comes out twice, more than
 * FEDC_CSV_MAX_COLUMNS outputs, or an impute vector of another length. */
FEDC_MUST_CHECK fedc_err fedc__plan_build(fedc__plan *p, int *role, char *const *names, int n_cols,
                                          const fedc_encoding *enc, const char *path, fedc_diag *d);
void fedc__plan_release(fedc__plan *p);

/* Trims blanks (space, tab, CR, VT, FF) around s[0..*n): returns the start, sets *n. */
const char *fedc__trim(const char *s, size_t *n);

#endif
