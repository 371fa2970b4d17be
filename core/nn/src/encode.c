/* The loader's encodings (fedc/encode.h): settings, the SipHash-2-4 feature hash, missing-value
 * spellings, and the column plan (encode_int.h) that maps header columns to output features.
 * The rows themselves are read by data.c; nothing here touches a data row. */
#include "encode_int.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fedc/csv.h"
#include "fedc/data.h"

#define SHOW_MAX 40

void fedc_encoding_init(fedc_encoding *e) {
    memset(e, 0, sizeof *e);
    e->delimiter = ',';
    e->missing = FEDC_MISSING_ERROR;
    e->ind_mode = FEDC_IND_ALL;
    e->hash_buckets = FEDC_HASH_BUCKETS_DEFAULT;
    (void)fedc_hash_key_parse(e->hash_key, FEDC_HASH_KEY_DEFAULT);
}

int fedc_encoding_is_plain(const fedc_encoding *e) {
    return !e || (e->missing == FEDC_MISSING_ERROR && !e->positive && e->n_categorical == 0);
}

const char *fedc_missing_name(fedc_missing m) {
    switch (m) {
    case FEDC_MISSING_MEAN:
        return "mean";
    case FEDC_MISSING_ZERO:
        return "zero";
    default:
        return "error";
    }
}

int fedc_missing_parse(fedc_missing *out, const char *word) {
    static const fedc_missing all[] = {FEDC_MISSING_ERROR, FEDC_MISSING_MEAN, FEDC_MISSING_ZERO};
    for (size_t i = 0; word && i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(word, fedc_missing_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int fedc_hash_key_parse(uint8_t key[16], const char *hex) {
    if (!hex || strlen(hex) != 32)
        return -1;
    uint8_t k[16];
    for (int i = 0; i < 16; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        k[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(key, k, 16);
    return 0;
}

void fedc_hash_key_format(char out[33], const uint8_t key[16]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[key[i] >> 4];
        out[2 * i + 1] = digits[key[i] & 15];
    }
    out[32] = '\0';
}

/* ---- SipHash-2-4 --------------------------------------------------------------------------- */

/* Written from the definition in Aumasson and Bernstein, "SipHash: a fast short-input PRF"
 * (INDOCRYPT 2012), section 2: four 64-bit words initialised from the key k0, k1 and the
 * constants "somepseudorandomlygeneratedbytes"; each little-endian 8-byte message word m is
 * absorbed as v3 ^= m, two SipRounds, v0 ^= m; the last word holds the remaining bytes and the
 * length mod 256 in its top byte; then v2 ^= 0xff, four SipRounds, and v0 ^ v1 ^ v2 ^ v3. */

static uint64_t rotl(uint64_t x, int b) {
    return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = rotl(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = rotl(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = rotl(v2, 32);                                                                         \
    } while (0)

uint64_t fedc_siphash24(const uint8_t key[16], const void *s, size_t n) {
    const uint8_t *p = s;
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = k0 ^ UINT64_C(0x736f6d6570736575), v1 = k1 ^ UINT64_C(0x646f72616e646f6d),
             v2 = k0 ^ UINT64_C(0x6c7967656e657261), v3 = k1 ^ UINT64_C(0x7465646279746573);
    size_t whole = n - n % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(p + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)(n & 0xff) << 56;
    for (size_t i = 0; i < n % 8; i++)
        last |= (uint64_t)p[whole + i] << (8 * i);
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

const char *fedc__trim(const char *s, size_t *n) {
    size_t k = *n;
    while (k > 0 && is_blank(*s)) {
        s++;
        k--;
    }
    while (k > 0 && is_blank(s[k - 1]))
        k--;
    *n = k;
    return s;
}

int fedc_hash_bucket(const uint8_t key[16], int buckets, const char *s, size_t n) {
    s = fedc__trim(s, &n);
    return (int)(fedc_siphash24(key, s, n) % (uint64_t)buckets);
}

int fedc_is_missing_text(const char *s, size_t n) {
    s = fedc__trim(s, &n);
    switch (n) {
    case 0:
        return 1;
    case 2:
        return strncasecmp(s, "NA", 2) == 0;
    case 3:
        return strncasecmp(s, "N/A", 3) == 0 || strncasecmp(s, "NaN", 3) == 0;
    case 4:
        return strncasecmp(s, "NULL", 4) == 0;
    default:
        return 0;
    }
}

/* ---- Missing cells left as NaN (--missing mean) ------------------------------------------ */

/* Columns per pass: the accumulators stay on the stack and the matrix is read row by row. */
#define MEANS_BLOCK 64

long fedc_dataset_count_missing(const fedc_dataset *ds) {
    long n = 0;
    size_t cells = (size_t)ds->n_rows * (size_t)ds->n_features;
    for (size_t i = 0; i < cells; i++)
        n += isnan(ds->x[i]) != 0;
    return n;
}

void fedc_dataset_missing_means(float *mean, const fedc_dataset *ds) {
    size_t nf = (size_t)ds->n_features;
    for (size_t j0 = 0; j0 < nf; j0 += MEANS_BLOCK) {
        size_t w = nf - j0 < MEANS_BLOCK ? nf - j0 : MEANS_BLOCK;
        double sum[MEANS_BLOCK] = {0};
        long cnt[MEANS_BLOCK] = {0};
        for (int i = 0; i < ds->n_rows; i++) {
            const float *row = ds->x + (size_t)i * nf + j0;
            for (size_t j = 0; j < w; j++) {
                if (!isnan(row[j])) {
                    sum[j] += (double)row[j];
                    cnt[j]++;
                }
            }
        }
        for (size_t j = 0; j < w; j++)
            mean[j0 + j] = cnt[j] ? (float)(sum[j] / (double)cnt[j]) : 0.0f;
    }
}

long fedc_dataset_fill_missing(fedc_dataset *ds, const float *values) {
    long n = 0;
    size_t nf = (size_t)ds->n_features;
    for (int i = 0; i < ds->n_rows; i++) {
        float *row = ds->x + (size_t)i * nf;
        for (size_t j = 0; j < nf; j++) {
            if (isnan(row[j])) {
                row[j] = values[j];
                n++;
            }
        }
    }
    return n;
}

/* ---- The column plan ----------------------------------------------------------------------- */

void fedc__plan_release(fedc__plan *p) {
    if (p->names) {
        for (int j = 0; j < p->n_features; j++)
            free(p->names[j]);
    }
    free(p->names);
    free(p->aux);
    p->names = NULL;
    p->aux = NULL;
}

/* Column of name (blanks around it ignored; header names are trimmed already), or -1. */
static int find_name(char *const *names, int n_cols, const char *name) {
    size_t n = strlen(name);
    const char *s = fedc__trim(name, &n);
    for (int j = 0; j < n_cols; j++) {
        if (strlen(names[j]) == n && memcmp(names[j], s, n) == 0)
            return j;
    }
    return -1;
}

/* Copies at most SHOW_MAX bytes of s for a message, control bytes as '?'. */
static const char *show(char out[SHOW_MAX + 4], const char *s) {
    size_t n = strlen(s), k = n < SHOW_MAX ? n : SHOW_MAX;
    for (size_t i = 0; i < k; i++)
        out[i] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
    if (k < n)
        memcpy(out + k, "...", 3), k += 3;
    out[k] = '\0';
    return out;
}

static fedc_err not_found(fedc_diag *d, const char *path, const char *what, const char *name,
                          char *const *names, int n_cols, const char *flag) {
    char s1[SHOW_MAX + 4], s2[SHOW_MAX + 4];
    for (int j = 0; j < n_cols; j++) {
        if (strcasecmp(names[j], name) == 0) {
            fedc_diag_set(d, "%s:1: %s '%s' (%s) not found in header (did you mean '%s'?)", path,
                          what, show(s1, name), flag, show(s2, names[j]));
            return FEDC_EINVAL;
        }
    }
    fedc_diag_set(d, "%s:1: %s '%s' (%s) not found in header (%d columns, none of that name)", path,
                  what, show(s1, name), flag, n_cols);
    return FEDC_EINVAL;
}

static char *cat_name(const char *a, const char *b, int k) {
    size_t n = strlen(a) + strlen(b) + 16;
    char *s = malloc(n);
    if (s) {
        if (k >= 0)
            snprintf(s, n, "%s%s%d", a, b, k);
        else
            snprintf(s, n, "%s%s", a, b);
    }
    return s;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

fedc_err fedc__plan_build(fedc__plan *p, int *role, char *const *names, int n_cols,
                          const fedc_encoding *enc, const char *path, fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    char s1[SHOW_MAX + 4];
    unsigned char *ind = NULL;
    char **sorted = NULL;
    memset(p, 0, sizeof *p);
    fedc_encoding plain;
    if (!enc) {
        fedc_encoding_init(&plain);
        enc = &plain;
    }
    p->missing = enc->missing;
    p->buckets = enc->hash_buckets;
    p->key = enc->hash_key;
    p->delim = enc->delimiter ? enc->delimiter : ',';
    p->stop['\0'] = p->stop['\n'] = p->stop['"'] = 1;
    p->stop[(unsigned char)p->delim] = 1;
    if (enc->positive) {
        size_t n = strlen(enc->positive);
        p->positive = fedc__trim(enc->positive, &n);
        p->positive_len = n;
        p->label_text = 1;
    }
    if (enc->n_categorical > 0 &&
        (enc->hash_buckets < 2 || enc->hash_buckets > FEDC_HASH_BUCKETS_MAX)) {
        fedc_diag_set(d, "%s: --hash-buckets %d: expected 2..%d", path, enc->hash_buckets,
                      FEDC_HASH_BUCKETS_MAX);
        return FEDC_EINVAL;
    }
    p->aux = malloc((size_t)n_cols * sizeof *p->aux);
    ind = calloc((size_t)n_cols, 1);
    if (!p->aux || !ind)
        goto nomem;
    for (int j = 0; j < n_cols; j++)
        p->aux[j] = -1;
    for (int i = 0; i < enc->n_categorical; i++) {
        int c = find_name(names, n_cols, enc->categorical[i]);
        if (c < 0) {
            rc = not_found(d, path, "categorical column", enc->categorical[i], names, n_cols,
                           "--categorical");
            goto out;
        }
        if (role[c] == FEDC__ROLE_LABEL || role[c] == FEDC__ROLE_DROP) {
            fedc_diag_set(d, "%s:1:%d: column '%s' is listed in --categorical but is %s", path,
                          c + 1, show(s1, names[c]),
                          role[c] == FEDC__ROLE_LABEL ? "the label" : "dropped");
            rc = FEDC_EINVAL;
            goto out;
        }
        role[c] = FEDC__ROLE_CAT;
    }
    int with_ind = enc->missing != FEDC_MISSING_ERROR;
    if (with_ind && enc->ind_mode == FEDC_IND_LIST) {
        for (int i = 0; i < enc->n_indicators; i++) {
            int c = find_name(names, n_cols, enc->indicators[i]);
            if (c < 0) {
                rc = not_found(d, path, "indicator column", enc->indicators[i], names, n_cols,
                               "--missing-indicators");
                goto out;
            }
            if (role[c] != 0) {
                fedc_diag_set(d,
                              "%s:1:%d: --missing-indicators lists '%s', which is not a numeric "
                              "feature (it is the label, dropped or categorical)",
                              path, c + 1, show(s1, names[c]));
                rc = FEDC_EINVAL;
                goto out;
            }
            ind[c] = 1;
        }
    } else if (with_ind && enc->ind_mode == FEDC_IND_ALL) {
        for (int j = 0; j < n_cols; j++)
            ind[j] = role[j] == 0;
    }
    /* Output columns in file order: a numeric column, then its indicator; a categorical column
     * becomes its one-hot block. */
    long nf = 0;
    for (int j = 0; j < n_cols; j++) {
        if (role[j] == 0)
            nf += 1 + ind[j];
        else if (role[j] == FEDC__ROLE_CAT)
            nf += enc->hash_buckets;
    }
    if (nf == 0) {
        fedc_diag_set(d, "%s:1: no feature columns left: all %d columns are the label or dropped",
                      path, n_cols);
        rc = FEDC_EINVAL;
        goto out;
    }
    if (nf > FEDC_CSV_MAX_COLUMNS) {
        fedc_diag_set(d, "%s:1: the encoding gives %ld feature columns, more than the limit of %d",
                      path, nf, FEDC_CSV_MAX_COLUMNS);
        rc = FEDC_ERANGE;
        goto out;
    }
    if (enc->impute && enc->missing == FEDC_MISSING_MEAN && enc->n_impute != nf) {
        fedc_diag_set(d,
                      "%s: the recipe holds %d imputation values, this file gives %ld feature "
                      "columns",
                      path, enc->n_impute, nf);
        rc = FEDC_EINVAL;
        goto out;
    }
    p->impute = enc->missing == FEDC_MISSING_MEAN ? enc->impute : NULL;
    p->names = calloc((size_t)nf, sizeof *p->names);
    if (!p->names)
        goto nomem;
    p->n_features = (int)nf;
    int k = 0;
    for (int j = 0; j < n_cols; j++) {
        if (role[j] == 0) {
            role[j] = k;
            if (!(p->names[k++] = cat_name(names[j], "", -1)))
                goto nomem;
            if (ind[j]) {
                p->aux[j] = k;
                p->zero_rows = 1;
                if (!(p->names[k++] = cat_name(names[j], FEDC_MISSING_SUFFIX, -1)))
                    goto nomem;
            }
        } else if (role[j] == FEDC__ROLE_CAT) {
            p->aux[j] = k;
            p->zero_rows = 1;
            for (int b = 0; b < enc->hash_buckets; b++) {
                if (!(p->names[k++] = cat_name(names[j], FEDC_HASH_INFIX, b)))
                    goto nomem;
            }
        }
    }
    /* A generated name may meet a header name (a column 'A_MISSING' next to A's indicator). */
    if (p->zero_rows) {
        sorted = malloc((size_t)nf * sizeof *sorted);
        if (!sorted)
            goto nomem;
        memcpy(sorted, p->names, (size_t)nf * sizeof *sorted);
        qsort(sorted, (size_t)nf, sizeof *sorted, cmp_str);
        for (long i = 1; i < nf; i++) {
            if (strcmp(sorted[i - 1], sorted[i]) == 0) {
                fedc_diag_set(d,
                              "%s:1: the encoding would make two feature columns named '%s' (a "
                              "header column has the name of a generated indicator or one-hot "
                              "column): rename it or drop it",
                              path, show(s1, sorted[i]));
                rc = FEDC_EPARSE;
                goto out;
            }
        }
    }
    goto out;
nomem:
    fedc_diag_set(d, "%s: out of memory planning the columns", path);
    rc = FEDC_ENOMEM;
out:
    free(ind);
    free(sorted);
    if (rc)
        fedc__plan_release(p);
    return rc;
}
