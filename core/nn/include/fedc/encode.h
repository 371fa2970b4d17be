/* How the CSV loader turns a bank's export into numbers: the separator, missing values, text
 * labels and categorical columns (fedc_csv_load_enc in fedc/data.h reads a file with them).
 *
 * - Separator: one byte (fedc_csv_delimiter_ok), ',' by default.
 * - Missing values: a feature cell that is empty or, after blanks are trimmed and ignoring case,
 *   NA, N/A, NaN or NULL. With FEDC_MISSING_ERROR (the default) such a cell is an error naming
 *   file:line:column and the flag; with FEDC_MISSING_ZERO it becomes 0; with FEDC_MISSING_MEAN it
 *   becomes the value given for its feature in impute[] or, without impute, stays NaN for the
 *   caller to fill with fedc_dataset_fill_missing (fedc train: the training rows' means; a
 *   federation: round 0's federation-wide means). A missing label is always an error.
 * - Indicator columns: with ZERO or MEAN, a numeric feature COL can get a column COL_MISSING
 *   right after it, 1 where COL was missing, else 0. Which features get one is fixed by the
 *   settings alone, never by the data (every client of a federation must produce the same
 *   columns): all of them (FEDC_IND_ALL, the default with ZERO or MEAN), none, or a list.
 * - Text labels: with positive set, the label cell (blanks trimmed) equal to it is 1, any other
 *   non-missing text 0.
 * - Categorical columns: each listed column is replaced, where it stands, by hash_buckets
 *   one-hot columns named COL=h0 ... COL=h{N-1}: the cell's text, blanks trimmed, is hashed with
 *   SipHash-2-4 (Aumasson and Bernstein 2012) under the 16-byte hash_key, and column
 *   h = hash mod N is 1. No vocabulary is needed, so banks need not share theirs; an unseen
 *   category is just another hash. A missing cell (as above) sets no column.
 * Column names given here are matched against header names with surrounding blanks ignored. */
#ifndef FEDC_ENCODE_H
#define FEDC_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"

typedef enum fedc_missing {
    FEDC_MISSING_ERROR = 0,
    FEDC_MISSING_MEAN = 1,
    FEDC_MISSING_ZERO = 2,
} fedc_missing;

typedef enum fedc_indicators {
    FEDC_IND_ALL = 0,  /* every numeric feature (only with ZERO or MEAN) */
    FEDC_IND_NONE = 1, /* no indicator column */
    FEDC_IND_LIST = 2, /* the features of indicators[] */
} fedc_indicators;

#define FEDC_HASH_BUCKETS_DEFAULT 32
#define FEDC_HASH_BUCKETS_MAX 4096
/* The default hash key: the 16 ASCII bytes "fedc categorical", in hex. */
#define FEDC_HASH_KEY_DEFAULT "666564632063617465676f726963616c"
/* The suffix of indicator columns and the infix of one-hot columns. */
#define FEDC_MISSING_SUFFIX "_MISSING"
#define FEDC_HASH_INFIX "=h"

/* Loader settings. Every pointer is borrowed: it must stay valid while a file is loaded. */
typedef struct fedc_encoding {
    char delimiter; /* the field separator */
    fedc_missing missing;
    fedc_indicators ind_mode;
    const char *const *indicators; /* FEDC_IND_LIST: n_indicators feature names */
    int n_indicators;
    const char *positive; /* NULL: numeric labels */
    const char *const *categorical;
    int n_categorical;
    int hash_buckets;     /* 2..FEDC_HASH_BUCKETS_MAX */
    uint8_t hash_key[16]; /* SipHash key */
    /* MEAN: the value of each output feature (n_impute must then equal the feature count the
     * file gives, else FEDC_EINVAL), as a model's recipe stores them; NULL: cells stay NaN. */
    const float *impute;
    int n_impute;
} fedc_encoding;

/* The defaults: comma, missing values are errors, numeric labels, no categorical column,
 * FEDC_HASH_BUCKETS_DEFAULT buckets, the key FEDC_HASH_KEY_DEFAULT. */
void fedc_encoding_init(fedc_encoding *e);

/* 1 when the settings change nothing the plain loader does (only the separator may differ). */
int fedc_encoding_is_plain(const fedc_encoding *e);

/* "error", "mean", "zero"; fedc_missing_parse returns -1 for another word. */
const char *fedc_missing_name(fedc_missing m);
int fedc_missing_parse(fedc_missing *out, const char *word);

/* Reads 32 hexadecimal digits into key. Returns 0, or -1. */
int fedc_hash_key_parse(uint8_t key[16], const char *hex);
/* Writes key as 32 lower-case hexadecimal digits and a NUL into out (33 bytes). */
void fedc_hash_key_format(char out[33], const uint8_t key[16]);

/* SipHash-2-4 of s[0..n) under key: 64 bits. */
uint64_t fedc_siphash24(const uint8_t key[16], const void *s, size_t n);

/* The one-hot column (0..buckets-1) that text s[0..n) falls into; blanks around it are trimmed
 * first, as the loader does. */
int fedc_hash_bucket(const uint8_t key[16], int buckets, const char *s, size_t n);

/* 1 when s[0..n), blanks trimmed, is a missing value: empty, NA, N/A, NaN or NULL in any case. */
int fedc_is_missing_text(const char *s, size_t n);

#endif
