/* Datasets as matrices: allocation, subsets, task detection, feature statistics and
 * standardisation, stratified (or keyed) train/validation/test splits and the positive-class
 * weight. The CSV loader that fills them is data.c. */
#include "fedc/data.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/rng.h"

#include "data_int.h"

/* ---- Datasets ---------------------------------------------------------------------------- */

fedc_err fedc_dataset_new(fedc_dataset **out, int n_rows, int n_features) {
    fedc_err rc = FEDC_OK;
    fedc_dataset *ds = NULL;
    if (out)
        *out = NULL;
    if (!out || n_rows < 0 || n_features < 0) {
        rc = FEDC_EINVAL;
        goto out;
    }
    size_t cells = (size_t)n_rows * (size_t)n_features;
    if (n_features > 0 && cells / (size_t)n_features != (size_t)n_rows) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    ds = calloc(1, sizeof *ds);
    if (!ds) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    ds->n_rows = n_rows;
    ds->n_features = n_features;
    /* At least one element each, so that an empty dataset still has non-NULL buffers. */
    ds->x = calloc(cells ? cells : 1, sizeof(float));
    ds->y = calloc(n_rows ? (size_t)n_rows : 1, sizeof(float));
    if (!ds->x || !ds->y) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    *out = ds;
    ds = NULL;
out:
    fedc_dataset_destroy(&ds);
    return rc;
}

void fedc_dataset_destroy(fedc_dataset **ds) {
    if (!ds || !*ds)
        return;
    fedc_dataset *p = *ds;
    if (p->feature_names) {
        for (int j = 0; j < p->n_features; j++)
            free(p->feature_names[j]);
        free(p->feature_names);
    }
    free(p->label_name);
    free(p->x);
    free(p->y);
    free(p);
    *ds = NULL;
}

static char *dup_str(const char *s) {
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

fedc_err fedc_dataset_subset(fedc_dataset **out, const fedc_dataset *src, const int *rows, int n) {
    fedc_err rc = FEDC_OK;
    fedc_dataset *ds = NULL;
    if (out)
        *out = NULL;
    if (!out || !src || n < 0 || (n > 0 && !rows)) {
        rc = FEDC_EINVAL;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= src->n_rows) {
            rc = FEDC_EINVAL;
            goto out;
        }
    }
    if ((rc = fedc_dataset_new(&ds, n, src->n_features)))
        goto out;
    size_t nf = (size_t)src->n_features;
    for (int i = 0; i < n; i++) {
        if (nf)
            memcpy(ds->x + (size_t)i * nf, src->x + (size_t)rows[i] * nf, nf * sizeof(float));
        ds->y[i] = src->y[rows[i]];
    }
    if (src->feature_names) {
        ds->feature_names = calloc(nf ? nf : 1, sizeof *ds->feature_names);
        if (!ds->feature_names) {
            rc = FEDC_ENOMEM;
            goto out;
        }
        for (size_t j = 0; j < nf; j++) {
            ds->feature_names[j] = dup_str(src->feature_names[j]);
            if (src->feature_names[j] && !ds->feature_names[j]) {
                rc = FEDC_ENOMEM;
                goto out;
            }
        }
    }
    ds->label_name = dup_str(src->label_name);
    if (src->label_name && !ds->label_name) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    *out = ds;
    ds = NULL;
out:
    fedc_dataset_destroy(&ds);
    return rc;
}

/* ---- Task detection ---------------------------------------------------------------------- */

fedc_err fedc_dataset_task(fedc_task *task, int *n_classes, const fedc_dataset *ds,
                           int forced_regression, fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    unsigned char *seen = NULL;
    char s1[SHOW_MAX + 4];
    if (d)
        d->msg[0] = '\0';
    if (!task || !n_classes || !ds) {
        fedc_diag_set(d, "fedc_dataset_task: invalid arguments");
        rc = FEDC_EINVAL;
        goto out;
    }
    const char *lname = ds->label_name ? ds->label_name : "label";
    fedc__show(s1, lname, strlen(lname));
    if (forced_regression) {
        *task = FEDC_TASK_REGRESSION;
        *n_classes = 1;
        goto out;
    }
    if (ds->n_rows == 0) {
        fedc_diag_set(d, "label '%s': no rows to detect the task from", s1);
        rc = FEDC_EEMPTY;
        goto out;
    }
    /* A class index must be a non-negative integer, and every class up to the largest must
     * occur, so no index can reach max(2, n_rows): checked before allocating. */
    float limit = ds->n_rows > 2 ? (float)ds->n_rows : 2.0f;
    float max = 0.0f;
    for (int i = 0; i < ds->n_rows; i++) {
        float y = ds->y[i];
        if (!(y >= 0.0f && y == floorf(y))) {
            fedc_diag_set(d,
                          "line %d (row %d): label '%s': expected a class index (an integer 0, "
                          "1, 2, ...), got %g; pass --task regression for a real-valued target",
                          i + 2, i, s1, (double)y);
            rc = FEDC_EINVAL;
            goto out;
        }
        if (!(y < limit)) {
            fedc_diag_set(d,
                          "line %d (row %d): label '%s': class index %g is too large: classes "
                          "0..%g cannot all occur in %d rows; pass --task regression for a "
                          "real-valued target",
                          i + 2, i, s1, (double)y, (double)y, ds->n_rows);
            rc = FEDC_EINVAL;
            goto out;
        }
        if (y > max)
            max = y;
    }
    int k = (int)max + 1;
    if (k <= 2) {
        *task = FEDC_TASK_BINARY;
        *n_classes = 2;
        goto out;
    }
    seen = calloc((size_t)k, 1);
    if (!seen) {
        fedc_diag_set(d, "out of memory");
        rc = FEDC_ENOMEM;
        goto out;
    }
    for (int i = 0; i < ds->n_rows; i++)
        seen[(int)ds->y[i]] = 1;
    for (int c = 0; c < k; c++) {
        if (!seen[c]) {
            fedc_diag_set(d,
                          "label '%s': class %d has no rows, but labels go up to %d (expected "
                          "every class 0..%d to occur); pass --task regression for a "
                          "real-valued target",
                          s1, c, k - 1, k - 1);
            rc = FEDC_EINVAL;
            goto out;
        }
    }
    *task = FEDC_TASK_MULTICLASS;
    *n_classes = k;
out:
    free(seen);
    return rc;
}

/* ---- Statistics -------------------------------------------------------------------------- */

/* Columns per pass: the accumulators stay on the stack and the matrix is read row by row. */
#define STATS_BLOCK 64

void fedc_dataset_stats(float *mean, float *std, const fedc_dataset *ds) {
    FEDC_CHECK(mean && std && ds);
    size_t n = (size_t)ds->n_rows, nf = (size_t)ds->n_features;
    for (size_t j0 = 0; j0 < nf; j0 += STATS_BLOCK) {
        size_t w = nf - j0 < STATS_BLOCK ? nf - j0 : STATS_BLOCK;
        double sum[STATS_BLOCK], sq[STATS_BLOCK];
        float lo[STATS_BLOCK], hi[STATS_BLOCK];
        for (size_t j = 0; j < w; j++) {
            sum[j] = 0.0;
            sq[j] = 0.0;
            lo[j] = n ? ds->x[j0 + j] : 0.0f;
            hi[j] = lo[j];
        }
        /* Two passes, mean first, then squared deviations: no cancellation in sum(x^2) - n m^2. */
        for (size_t i = 0; i < n; i++) {
            const float *row = ds->x + i * nf + j0;
            for (size_t j = 0; j < w; j++) {
                sum[j] += (double)row[j];
                lo[j] = row[j] < lo[j] ? row[j] : lo[j];
                hi[j] = row[j] > hi[j] ? row[j] : hi[j];
            }
        }
        double m[STATS_BLOCK];
        for (size_t j = 0; j < w; j++)
            m[j] = n ? sum[j] / (double)n : 0.0;
        for (size_t i = 0; i < n; i++) {
            const float *row = ds->x + i * nf + j0;
            for (size_t j = 0; j < w; j++) {
                double dv = (double)row[j] - m[j];
                sq[j] += dv * dv;
            }
        }
        for (size_t j = 0; j < w; j++) {
            float s = n ? (float)sqrt(sq[j] / (double)n) : 1.0f;
            /* A constant column is detected exactly (min == max), not by a rounded variance. It
             * keeps its exact value as the mean so that standardising gives exactly 0. */
            if (lo[j] == hi[j]) {
                mean[j0 + j] = lo[j];
                std[j0 + j] = 1.0f;
            } else {
                mean[j0 + j] = (float)m[j];
                std[j0 + j] = s > 0.0f && isfinite(s) ? s : 1.0f;
            }
        }
    }
}

void fedc_dataset_standardize(fedc_dataset *ds, const float *mean, const float *std) {
    FEDC_CHECK(ds && mean && std);
    size_t n = (size_t)ds->n_rows, nf = (size_t)ds->n_features;
    for (size_t j = 0; j < nf; j++)
        FEDC_CHECK(std[j] != 0.0f);
    for (size_t i = 0; i < n; i++) {
        float *row = ds->x + i * nf;
        for (size_t j = 0; j < nf; j++)
            row[j] = (row[j] - mean[j]) / std[j];
    }
}

/* ---- Split ------------------------------------------------------------------------------- */

/* Row indices ordered by label, then by index: strata in ascending label order. */
typedef struct keyed_row {
    float y;
    int row;
} keyed_row;

static int cmp_keyed_row(const void *pa, const void *pb) {
    const keyed_row *a = pa, *b = pb;
    if (a->y != b->y)
        return a->y < b->y ? -1 : 1;
    return (a->row > b->row) - (a->row < b->row);
}

fedc_err fedc_dataset_split(fedc_dataset **train, fedc_dataset **val, fedc_dataset **test,
                            const fedc_dataset *ds, fedc_task task, double val_fraction,
                            double test_fraction, uint64_t seed) {
    fedc_err rc = FEDC_OK;
    keyed_row *kr = NULL;
    int *order = NULL, *sel = NULL;
    unsigned char *part = NULL;
    if (train)
        *train = NULL;
    if (val)
        *val = NULL;
    if (test)
        *test = NULL;
    if (!train || !ds || !(val_fraction >= 0.0) || !(test_fraction >= 0.0) ||
        !(val_fraction + test_fraction < 1.0) || (val_fraction > 0.0 && !val) ||
        (test_fraction > 0.0 && !test)) {
        rc = FEDC_EINVAL;
        goto out;
    }
    int n = ds->n_rows;
    size_t alloc = n > 0 ? (size_t)n : 1;
    kr = malloc(alloc * sizeof *kr);
    order = malloc(alloc * sizeof *order);
    sel = malloc(alloc * sizeof *sel);
    part = malloc(alloc);
    if (!kr || !order || !sel || !part) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    int classify = task == FEDC_TASK_BINARY || task == FEDC_TASK_MULTICLASS;
    for (int i = 0; i < n; i++) {
        if (classify && !isfinite(ds->y[i])) {
            rc = FEDC_EINVAL;
            goto out;
        }
        kr[i] = (keyed_row){classify ? ds->y[i] : 0.0f, i};
    }
    if (classify)
        qsort(kr, (size_t)n, sizeof *kr, cmp_keyed_row);
    for (int i = 0; i < n; i++)
        order[i] = kr[i].row;

    /* One stream for all strata, consumed in ascending label order. */
    fedc_rng rng;
    fedc_rng_init(&rng, fedc_rng_key(seed, 0x5350u /* "SP" */, 0, 0));
    for (int s = 0; s < n;) {
        int e = s + 1;
        while (e < n && kr[e].y == kr[s].y)
            e++;
        int n_c = e - s;
        fedc_rng_shuffle(&rng, order + s, n_c);
        int n_val = (int)round(val_fraction * n_c);
        int n_test = (int)round(test_fraction * n_c);
        /* round(a) + round(b) <= n_c whenever a + b < n_c; the clamps only guard that. */
        if (n_val > n_c)
            n_val = n_c;
        if (n_test > n_c - n_val)
            n_test = n_c - n_val;
        for (int i = 0; i < n_c; i++)
            part[order[s + i]] = i < n_val ? 1 : i < n_val + n_test ? 2 : 0;
        s = e;
    }

    /* Gather each part by scanning rows in order, so rows keep their relative order. */
    fedc_dataset **dst[3] = {train, val_fraction > 0.0 ? val : NULL,
                             test_fraction > 0.0 ? test : NULL};
    for (int p = 0; p < 3; p++) {
        if (!dst[p])
            continue;
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (part[i] == p)
                sel[k++] = i;
        }
        if ((rc = fedc_dataset_subset(dst[p], ds, sel, k)))
            goto out;
    }
out:
    if (rc) {
        if (train)
            fedc_dataset_destroy(train);
        if (val)
            fedc_dataset_destroy(val);
        if (test)
            fedc_dataset_destroy(test);
    }
    free(kr);
    free(order);
    free(sel);
    free(part);
    return rc;
}

float fedc_dataset_pos_weight(const fedc_dataset *ds) {
    FEDC_CHECK(ds);
    long pos = 0;
    for (int i = 0; i < ds->n_rows; i++) {
        if (ds->y[i] > 0.5f)
            pos++;
    }
    long neg = ds->n_rows - pos;
    /* Without both classes the ratio is undefined (0 or infinite): no reweighting. */
    return pos && neg ? (float)((double)neg / (double)pos) : 1.0f;
}
