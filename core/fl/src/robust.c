/* Robust aggregation rules (contracts and references in robust.h). */
#include "fedc/clip.h"
#include "fedc/robust.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *fedc_robust_name(fedc_robust_kind k) {
    switch (k) {
    case FEDC_AGG_MEAN:
        return "mean";
    case FEDC_AGG_MEDIAN:
        return "median";
    case FEDC_AGG_TRIMMED_MEAN:
        return "trimmed-mean";
    case FEDC_AGG_KRUM:
        return "krum";
    case FEDC_AGG_MULTI_KRUM:
        return "multi-krum";
    case FEDC_AGG_NORM_BOUND:
        return "norm-bound";
    }
    return NULL;
}

int fedc_robust_first_bad(const float *const *u, int n, size_t p) {
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < p; i++)
            if (!isfinite(u[k][i]))
                return k;
    return -1;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* (score, index) pairs: by score, then index, so ties pick the lower index. */
static int cmp_score(const void *a, const void *b) {
    const double *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

/* Per coordinate: sort the n values, average [lo, n - lo). lo = n/2 stands for the median. */
static fedc_err sorted_rule(float *out, const float *const *u, int n, size_t p, int lo,
                            int median) {
    float *col = malloc(sizeof(float) * (size_t)n);
    if (!col)
        return FEDC_ENOMEM;
    for (size_t i = 0; i < p; i++) {
        for (int k = 0; k < n; k++)
            col[k] = u[k][i];
        qsort(col, (size_t)n, sizeof *col, cmp_float);
        if (median) {
            out[i] = n % 2 ? col[n / 2] : 0.5f * (col[n / 2 - 1] + col[n / 2]);
            continue;
        }
        double s = 0;
        for (int k = lo; k < n - lo; k++)
            s += col[k];
        out[i] = (float)(s / (n - 2 * lo));
    }
    free(col);
    return FEDC_OK;
}

fedc_err fedc_robust_aggregate(float *out, const float *const *u, int n, size_t p,
                               const fedc_robust_cfg *c, int *chosen, fedc_diag *d) {
    if (chosen)
        *chosen = -1;
    if (n < 1) {
        fedc_diag_set(d, "robust aggregation: no updates");
        return FEDC_EINVAL;
    }
    int bad = fedc_robust_first_bad(u, n, p);
    if (bad >= 0) {
        fedc_diag_set(d, "robust aggregation: update %d holds a NaN or infinity", bad);
        return FEDC_ERANGE;
    }
    switch (c->kind) {
    case FEDC_AGG_MEDIAN:
        return sorted_rule(out, u, n, p, 0, 1);
    case FEDC_AGG_TRIMMED_MEAN: {
        if (!(c->beta >= 0 && c->beta < 0.5)) {
            fedc_diag_set(d, "trimmed mean: the trimmed share must be in [0, 0.5), got %g",
                          c->beta);
            return FEDC_EINVAL;
        }
        return sorted_rule(out, u, n, p, (int)floor(c->beta * n), 0);
    }
    case FEDC_AGG_KRUM:
    case FEDC_AGG_MULTI_KRUM: {
        if (c->f < 0 || n <= 2 * c->f + 2) {
            fedc_diag_set(d, "Krum needs n > 2f + 2: %d updates, f = %d", n, c->f);
            return FEDC_EINVAL;
        }
        double *dist = malloc(sizeof(double) * (size_t)n * (size_t)n);
        double *score = malloc(sizeof(double) * 2 * (size_t)n),
               *row = malloc(sizeof(double) * (size_t)n);
        if (!dist || !score || !row) {
            free(dist);
            free(score);
            free(row);
            return FEDC_ENOMEM;
        }
        for (int a = 0; a < n; a++) {
            dist[a * n + a] = 0;
            for (int b = a + 1; b < n; b++) {
                double s = 0;
                for (size_t i = 0; i < p; i++) {
                    double t = (double)u[a][i] - u[b][i];
                    s += t * t;
                }
                dist[a * n + b] = dist[b * n + a] = s;
            }
        }
        int near = n - c->f - 2;
        for (int a = 0; a < n; a++) {
            int k = 0;
            for (int b = 0; b < n; b++)
                if (b != a)
                    row[k++] = dist[a * n + b];
            qsort(row, (size_t)k, sizeof *row, cmp_double);
            score[2 * a] = 0;
            score[2 * a + 1] = a;
            for (int j = 0; j < near; j++)
                score[2 * a] += row[j];
        }
        qsort(score, (size_t)n, 2 * sizeof(double), cmp_score);
        int m = c->kind == FEDC_AGG_KRUM ? 1 : (c->m > 0 && c->m <= n ? c->m : n - c->f);
        memset(out, 0, sizeof(float) * p);
        for (int j = 0; j < m; j++) {
            const float *v = u[(int)score[2 * j + 1]];
            for (size_t i = 0; i < p; i++)
                out[i] += v[i] / (float)m;
        }
        if (chosen)
            *chosen = (int)score[1];
        free(dist);
        free(score);
        free(row);
        return FEDC_OK;
    }
    case FEDC_AGG_NORM_BOUND:
    case FEDC_AGG_MEAN: {
        if (c->kind == FEDC_AGG_NORM_BOUND && !(c->clip > 0)) {
            fedc_diag_set(d, "norm bound: the bound must be positive, got %g", c->clip);
            return FEDC_EINVAL;
        }
        double *acc = calloc(p ? p : 1, sizeof(double));
        if (!acc)
            return FEDC_ENOMEM;
        for (int k = 0; k < n; k++) {
            double s = 1.0;
            if (c->kind == FEDC_AGG_NORM_BOUND) {
                double nn = fedc_l2_norm(u[k], p);
                s = nn > c->clip ? c->clip / nn : 1.0;
            }
            for (size_t i = 0; i < p; i++)
                acc[i] += s * u[k][i];
        }
        for (size_t i = 0; i < p; i++)
            out[i] = (float)(acc[i] / n);
        free(acc);
        return FEDC_OK;
    }
    }
    fedc_diag_set(d, "robust aggregation: unknown rule %d", (int)c->kind);
    return FEDC_EINVAL;
}
