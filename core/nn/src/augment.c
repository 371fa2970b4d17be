/* Minority-class augmentation (contract in augment.h). */
#include "fedc/augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/rng.h"

#define SMOTE_POOL 20000 /* neighbours are searched among at most this many minority rows */

fedc_err fedc_aug_parse(fedc_aug_cfg *c, const char *s, fedc_diag *d) {
    memset(c, 0, sizeof *c);
    c->ratio = 0.1;
    c->k = 5;
    c->noise = 0.05f;
    char kind[32];
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    if (n >= sizeof kind)
        n = sizeof kind - 1;
    memcpy(kind, s, n);
    kind[n] = 0;
    if (strcmp(kind, "none") == 0)
        c->kind = FEDC_AUG_NONE;
    else if (strcmp(kind, "oversample") == 0)
        c->kind = FEDC_AUG_OVERSAMPLE;
    else if (strcmp(kind, "smote") == 0)
        c->kind = FEDC_AUG_SMOTE;
    else if (strcmp(kind, "noise") == 0)
        c->kind = FEDC_AUG_NOISE;
    else {
        fedc_diag_set(d, "expected none, oversample, smote or noise (optionally :RATIO), got '%s'",
                      s);
        return FEDC_EINVAL;
    }
    if (colon) {
        char *end;
        double r = strtod(colon + 1, &end);
        if (*end || !(r > 0 && r <= 1)) {
            fedc_diag_set(d, "the ratio after '%s:' must be a number in (0, 1], got '%s'", kind,
                          colon + 1);
            return FEDC_EINVAL;
        }
        c->ratio = r;
    }
    return FEDC_OK;
}

static float sqdist(const float *a, const float *b, int n) {
    float s = 0;
    for (int j = 0; j < n; j++) {
        float t = a[j] - b[j];
        s += t * t;
    }
    return s;
}

fedc_err fedc_augment(fedc_dataset **out, const fedc_dataset *in, const fedc_aug_cfg *c, int *added,
                      fedc_diag *d) {
    *out = NULL;
    if (added)
        *added = 0;
    int n = in->n_rows, nf = in->n_features, pos = 0;
    for (int i = 0; i < n; i++) {
        if (in->y[i] != 0.0f && in->y[i] != 1.0f) {
            fedc_diag_set(d, "augmentation needs 0/1 labels; row %d has %g", i + 1,
                          (double)in->y[i]);
            return FEDC_EINVAL;
        }
        pos += in->y[i] == 1.0f;
    }
    int neg = n - pos;
    /* ceil, forgiving the rounding of a ratio like 0.1 (0.1 x 1960 is 196.00000000000003) */
    long want = (long)ceil(c->ratio * neg - 1e-9);
    int add = c->kind == FEDC_AUG_NONE || want <= pos ? 0 : (int)(want - pos);
    if (add > 0 && pos == 0) {
        fedc_diag_set(d, "augmentation: no positive rows to learn from");
        return FEDC_EINVAL;
    }
    if ((long)n + add > 0x7fffffffL) {
        fedc_diag_set(d, "augmentation: %d + %d rows is too many", n, add);
        return FEDC_ERANGE;
    }
    int *rows = malloc(sizeof(int) * (size_t)(n + add + 1));
    int *minority = malloc(sizeof(int) * (size_t)(pos + 1));
    if (!rows || !minority) {
        free(rows);
        free(minority);
        return FEDC_ENOMEM;
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
        rows[i] = i;
        if (in->y[i] == 1.0f)
            minority[m++] = i;
    }
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(c->seed, 0x6175676du /* "augm" */, (uint64_t)c->kind, 0));
    for (int a = 0; a < add; a++)
        rows[n + a] = minority[fedc_rng_below(&r, (uint32_t)m)];
    fedc_err rc = fedc_dataset_subset(out, in, rows, n + add);
    if (rc || add == 0 || c->kind == FEDC_AUG_OVERSAMPLE) {
        free(rows);
        free(minority);
        if (!rc && added)
            *added = add;
        return rc;
    }
    fedc_dataset *o = *out;
    if (c->kind == FEDC_AUG_NOISE) {
        for (int a = 0; a < add; a++) {
            float *x = o->x + (size_t)(n + a) * (size_t)nf;
            for (int j = 0; j < nf; j++)
                x[j] += c->noise * fedc_rng_normal(&r);
        }
    } else {
        /* SMOTE: the k nearest minority neighbours of each chosen row (brute force over a pool
         * of at most SMOTE_POOL minority rows), one picked at random, a random point between. */
        int pool = m < SMOTE_POOL ? m : SMOTE_POOL, k = c->k < pool - 1 ? c->k : pool - 1;
        int *best = malloc(sizeof(int) * (size_t)(k > 0 ? k : 1));
        float *bd = malloc(sizeof(float) * (size_t)(k > 0 ? k : 1));
        if (!best || !bd) {
            free(best);
            free(bd);
            free(rows);
            free(minority);
            fedc_dataset_destroy(out);
            return FEDC_ENOMEM;
        }
        for (int a = 0; a < add && k > 0; a++) {
            int src = rows[n + a];
            const float *xs = in->x + (size_t)src * (size_t)nf;
            int have = 0;
            for (int q = 0; q < pool; q++) {
                int cand = minority[q];
                if (cand == src)
                    continue;
                float dd = sqdist(xs, in->x + (size_t)cand * (size_t)nf, nf);
                if (have < k || dd < bd[have - 1]) {
                    int p = have < k ? have++ : k - 1;
                    while (p > 0 && bd[p - 1] > dd) {
                        bd[p] = bd[p - 1];
                        best[p] = best[p - 1];
                        p--;
                    }
                    bd[p] = dd;
                    best[p] = cand;
                }
            }
            if (!have)
                continue;
            const float *xn = in->x + (size_t)best[fedc_rng_below(&r, (uint32_t)have)] * (size_t)nf;
            float u = fedc_rng_uniform(&r);
            float *x = o->x + (size_t)(n + a) * (size_t)nf;
            for (int j = 0; j < nf; j++)
                x[j] = xs[j] + u * (xn[j] - xs[j]);
        }
        free(best);
        free(bd);
    }
    free(rows);
    free(minority);
    if (added)
        *added = add;
    return FEDC_OK;
}
