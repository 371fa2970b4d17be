/* Layouts of the securely summed vectors and their plausibility checks (contracts in
 * sa_proto.h). */
#include <math.h>
#include <string.h>

#include "fedc/fl.h"
#include "fedc/sa_proto.h"

#define W FEDC_SA_WIDE_SLOTS

/* Writes one wide value; names it on failure. */
static fedc_err put(uint32_t *v, double x, const char *what, fedc_diag *d) {
    if (fedc_sa_wide_put(v, x)) {
        fedc_diag_set(d, "secure aggregation: %s %g cannot be encoded", what, x);
        return FEDC_ERANGE;
    }
    return FEDC_OK;
}

/* A decoded count must be a non-negative integer (the encodings are exact for integers). */
static int is_count(double x) {
    return x >= 0.0 && x == floor(x) && x < 0x1p63;
}

/* Puts n counts into one slot each, refusing any at or above the slot cap 2^B. */
static fedc_err put_counts(uint32_t *v, const uint64_t *c, size_t n, const fedc_sa_quant *q,
                           const char *what, fedc_diag *d) {
    uint64_t cap = ((uint64_t)1 << q->bits) - 1;
    for (size_t i = 0; i < n; i++) {
        if (c[i] > cap) {
            fedc_diag_set(d,
                          "secure aggregation: %s %zu holds %llu rows, more than the %llu one "
                          "slot carries for this many clients",
                          what, i, (unsigned long long)c[i], (unsigned long long)cap);
            return FEDC_ERANGE;
        }
        v[i] = (uint32_t)c[i];
    }
    return FEDC_OK;
}

size_t fedc_sa_stats_len(int nf, int k) {
    return fedc_sa_stats_len_p(nf, k, 0);
}

size_t fedc_sa_stats_len_p(int nf, int k, int np) {
    return (size_t)W * (1 + 2 * (size_t)nf + (size_t)k + (size_t)np);
}

fedc_err fedc_sa_stats_encode(uint32_t *v, uint64_t rows, const double *sum, const double *sq,
                              int nf, const uint64_t *cc, int k, fedc_diag *d) {
    return fedc_sa_stats_encode_p(v, rows, sum, sq, nf, cc, k, NULL, 0, d);
}

fedc_err fedc_sa_stats_decode(const uint32_t *v, int nf, int k, double *rows, double *sum,
                              double *sq, uint64_t *cc, fedc_diag *d) {
    return fedc_sa_stats_decode_p(v, nf, k, rows, sum, sq, cc, NULL, 0, d);
}

fedc_err fedc_sa_stats_encode_p(uint32_t *v, uint64_t rows, const double *sum, const double *sq,
                                int nf, const uint64_t *cc, int k, const double *present, int np,
                                fedc_diag *d) {
    fedc_err rc = put(v, (double)rows, "row count", d);
    for (int j = 0; !rc && j < nf; j++)
        rc = put(v + W * (1 + (size_t)j), sum[j], "feature sum", d);
    for (int j = 0; !rc && j < nf; j++)
        rc = put(v + W * (1 + (size_t)nf + (size_t)j), sq[j], "feature sum of squares", d);
    for (int j = 0; !rc && j < k; j++)
        rc = put(v + W * (1 + 2 * (size_t)nf + (size_t)j), (double)cc[j], "class count", d);
    for (int j = 0; !rc && j < np; j++)
        rc = put(v + W * (1 + 2 * (size_t)nf + (size_t)k + (size_t)j), present[j],
                 "count of present cells", d);
    return rc;
}

fedc_err fedc_sa_stats_decode_p(const uint32_t *v, int nf, int k, double *rows, double *sum,
                                double *sq, uint64_t *cc, double *present, int np, fedc_diag *d) {
    *rows = fedc_sa_wide_get(v);
    if (!is_count(*rows) || *rows < 1) {
        fedc_diag_set(d, "secure aggregation: the summed row count %g is not a positive count",
                      *rows);
        return FEDC_ERANGE;
    }
    for (int j = 0; j < nf; j++) {
        sum[j] = fedc_sa_wide_get(v + W * (1 + (size_t)j));
        sq[j] = fedc_sa_wide_get(v + W * (1 + (size_t)nf + (size_t)j));
        /* sum x^2 >= (sum x)^2 / rows (Cauchy-Schwarz), up to the encoding's resolution. */
        if (sq[j] < 0 || sq[j] + 1e-6 * (1 + fabs(sq[j])) < sum[j] * sum[j] / *rows) {
            fedc_diag_set(d,
                          "secure aggregation: feature %d: summed squares %g cannot go with the "
                          "sum %g over %g rows",
                          j, sq[j], sum[j], *rows);
            return FEDC_ERANGE;
        }
    }
    double total = 0;
    for (int j = 0; j < k; j++) {
        double x = fedc_sa_wide_get(v + W * (1 + 2 * (size_t)nf + (size_t)j));
        if (!is_count(x)) {
            fedc_diag_set(d, "secure aggregation: class count %d decodes to %g", j, x);
            return FEDC_ERANGE;
        }
        cc[j] = (uint64_t)x;
        total += x;
    }
    if (k && total != *rows) {
        fedc_diag_set(d, "secure aggregation: class counts sum to %.0f, rows are %.0f", total,
                      *rows);
        return FEDC_ERANGE;
    }
    for (int j = 0; j < np; j++) {
        present[j] = fedc_sa_wide_get(v + W * (1 + 2 * (size_t)nf + (size_t)k + (size_t)j));
        if (!is_count(present[j]) || present[j] > *rows) {
            fedc_diag_set(d,
                          "secure aggregation: feature %d: %g present cells, expected a count "
                          "of at most the %.0f rows",
                          j, present[j], *rows);
            return FEDC_ERANGE;
        }
    }
    return FEDC_OK;
}

size_t fedc_sa_fit_len(size_t n_params) {
    return 5 * (size_t)W + n_params;
}

fedc_err fedc_sa_fit_encode(uint32_t *v, const float *delta, size_t n, double weight, double loss,
                            uint64_t examples, int unclipped, const fedc_sa_quant *q,
                            fedc_diag *d) {
    if (!(weight > 0.0 && weight <= 1.0) || !isfinite(loss) || loss < 0) {
        fedc_diag_set(d, "secure aggregation: weight %g must be in (0, 1] and loss %g >= 0", weight,
                      loss);
        return FEDC_EINVAL;
    }
    size_t clamped = 0;
    fedc_err rc = fedc_sa_quantise_scaled(v + 5 * W, delta, n, weight, q, &clamped, d);
    if (!rc)
        rc = put(v, weight, "weight", d);
    if (!rc)
        rc = put(v + W, weight * loss, "weighted loss", d);
    if (!rc)
        rc = put(v + 2 * W, (double)examples, "example count", d);
    if (!rc)
        rc = put(v + 3 * W, (double)clamped, "clipped count", d);
    if (!rc)
        rc = put(v + 4 * W, unclipped ? 1.0 : 0.0, "unclipped flag", d);
    return rc;
}

fedc_err fedc_sa_fit_decode(float *wdelta, fedc_sa_fit_sum *out, const uint32_t *v, size_t n,
                            const fedc_sa_quant *q, uint32_t n_max, fedc_diag *d) {
    out->weight = fedc_sa_wide_get(v);
    out->wloss = fedc_sa_wide_get(v + W);
    out->examples = fedc_sa_wide_get(v + 2 * W);
    out->clipped = fedc_sa_wide_get(v + 3 * W);
    out->unclipped = fedc_sa_wide_get(v + 4 * W);
    if (!(out->weight > 0 && out->weight <= (double)n_max) || !is_count(out->examples) ||
        out->examples < 1 || !is_count(out->clipped) || out->wloss < -1e-6 ||
        !is_count(out->unclipped) || out->unclipped > (double)n_max) {
        fedc_diag_set(d,
                      "secure aggregation: implausible totals: weight %g (expected in (0, %u]), "
                      "examples %g, clipped %g, unclipped %g, weighted loss %g",
                      out->weight, n_max, out->examples, out->clipped, out->unclipped, out->wloss);
        return FEDC_ERANGE;
    }
    fedc_sa_decode(wdelta, v + 5 * W, n, q);
    /* Each honest term is within weight x c (plus one quantisation step per client). */
    double bound = out->weight * (double)q->clip + (double)n_max / q->scale;
    for (size_t i = 0; i < n; i++) {
        if (fabs((double)wdelta[i]) > bound) {
            fedc_diag_set(d,
                          "secure aggregation: coordinate %zu of the aggregate is %g, beyond the "
                          "clipping bound %g of the summed weight",
                          i, (double)wdelta[i], bound);
            return FEDC_ERANGE;
        }
    }
    return FEDC_OK;
}

static size_t eval_tail(const fedc_eval_acc *a) {
    if (a->task == FEDC_TASK_BINARY)
        return 4 * (size_t)W + 2 * (size_t)a->bins;
    if (a->task == FEDC_TASK_MULTICLASS)
        return (size_t)a->n_classes * (size_t)a->n_classes;
    return 3 * (size_t)W;
}

size_t fedc_sa_eval_len(const fedc_eval_acc *a) {
    return 2 * (size_t)W + eval_tail(a);
}

fedc_err fedc_sa_eval_encode(uint32_t *v, const fedc_eval_acc *a, const fedc_sa_quant *q,
                             fedc_diag *d) {
    fedc_err rc = put(v, (double)a->n, "evaluation rows", d);
    if (!rc)
        rc = put(v + W, a->loss_sum, "evaluation loss", d);
    uint32_t *t = v + 2 * W;
    if (rc)
        return rc;
    if (a->task == FEDC_TASK_BINARY) {
        const uint64_t c4[4] = {a->tp, a->fp, a->tn, a->fn};
        for (int i = 0; !rc && i < 4; i++)
            rc = put(t + W * i, (double)c4[i], "confusion count", d);
        if (!rc)
            rc = put_counts(t + 4 * W, a->hist_pos, a->bins, q, "positive score bin", d);
        if (!rc)
            rc = put_counts(t + 4 * W + a->bins, a->hist_neg, a->bins, q, "negative score bin", d);
        return rc;
    }
    if (a->task == FEDC_TASK_MULTICLASS)
        return put_counts(t, a->confusion, (size_t)a->n_classes * (size_t)a->n_classes, q,
                          "confusion cell", d);
    rc = put(t, a->sse, "squared error", d);
    if (!rc)
        rc = put(t + W, a->sum_y, "target sum", d);
    if (!rc)
        rc = put(t + 2 * W, a->sum_y2, "target sum of squares", d);
    return rc;
}

static fedc_err get_count(uint64_t *out, const uint32_t *v, const char *what, fedc_diag *d) {
    double x = fedc_sa_wide_get(v);
    if (!is_count(x)) {
        fedc_diag_set(d, "secure aggregation: %s decodes to %g, not a count", what, x);
        return FEDC_ERANGE;
    }
    *out = (uint64_t)x;
    return FEDC_OK;
}

fedc_err fedc_sa_eval_decode(fedc_eval_acc *a, const uint32_t *v, fedc_diag *d) {
    fedc_err rc = get_count(&a->n, v, "the evaluation row count", d);
    if (rc)
        return rc;
    a->loss_sum = fedc_sa_wide_get(v + W);
    if (a->loss_sum < -1e-6) {
        fedc_diag_set(d, "secure aggregation: the summed evaluation loss %g is negative",
                      a->loss_sum);
        return FEDC_ERANGE;
    }
    if (a->loss_sum < 0)
        a->loss_sum = 0;
    const uint32_t *t = v + 2 * W;
    uint64_t total = 0;
    if (a->task == FEDC_TASK_BINARY) {
        uint64_t *c4[4] = {&a->tp, &a->fp, &a->tn, &a->fn};
        for (int i = 0; i < 4; i++)
            if ((rc = get_count(c4[i], t + W * i, "a confusion count", d)))
                return rc;
        for (uint32_t b = 0; b < a->bins; b++) {
            a->hist_pos[b] = t[4 * W + b];
            a->hist_neg[b] = t[4 * W + a->bins + b];
            total += a->hist_pos[b] + a->hist_neg[b];
        }
        uint64_t conf = a->tp + a->fp + a->tn + a->fn;
        if (total != a->n || conf != a->n) {
            fedc_diag_set(d,
                          "secure aggregation: the summed evaluation does not add up: %llu rows, "
                          "histograms %llu, confusion %llu",
                          (unsigned long long)a->n, (unsigned long long)total,
                          (unsigned long long)conf);
            return FEDC_ERANGE;
        }
        return FEDC_OK;
    }
    if (a->task == FEDC_TASK_MULTICLASS) {
        size_t cells = (size_t)a->n_classes * (size_t)a->n_classes;
        for (size_t i = 0; i < cells; i++) {
            a->confusion[i] = t[i];
            total += t[i];
        }
        if (total != a->n) {
            fedc_diag_set(d, "secure aggregation: confusion cells sum to %llu, rows are %llu",
                          (unsigned long long)total, (unsigned long long)a->n);
            return FEDC_ERANGE;
        }
        return FEDC_OK;
    }
    a->sse = fedc_sa_wide_get(t);
    a->sum_y = fedc_sa_wide_get(t + W);
    a->sum_y2 = fedc_sa_wide_get(t + 2 * W);
    if (a->sse < -1e-6 || a->sum_y2 < -1e-6) {
        fedc_diag_set(d,
                      "secure aggregation: summed squared error %g or sum of squares %g is "
                      "negative",
                      a->sse, a->sum_y2);
        return FEDC_ERANGE;
    }
    return FEDC_OK;
}

/* ---- wide fixed point ------------------------------------------------------------------------ */

fedc_err fedc_sa_wide_put(uint32_t out[FEDC_SA_WIDE_SLOTS], double v) {
    if (!isfinite(v) || fabs(v) >= 0x1p94) {
        memset(out, 0, 4 * FEDC_SA_WIDE_SLOTS);
        return FEDC_ERANGE;
    }
    double m = nearbyint(fabs(v) * 0x1p32);
    uint32_t limb[FEDC_SA_WIDE_SLOTS];
    for (int i = 0; i < FEDC_SA_WIDE_SLOTS; i++) {
        /* Exact: scaling by a power of two, floor and fmod of a double lose nothing. */
        limb[i] = (uint32_t)fmod(floor(ldexp(m, -16 * i)), 65536.0);
    }
    if (v < 0) { /* two's complement over 128 bits */
        uint32_t carry = 1;
        for (int i = 0; i < FEDC_SA_WIDE_SLOTS; i++) {
            uint32_t x = (~limb[i] & 0xffffu) + carry;
            limb[i] = x & 0xffffu;
            carry = x >> 16;
        }
    }
    memcpy(out, limb, sizeof limb);
    return FEDC_OK;
}

double fedc_sa_wide_get(const uint32_t s[FEDC_SA_WIDE_SLOTS]) {
    uint32_t limb[FEDC_SA_WIDE_SLOTS];
    uint64_t carry = 0;
    for (int i = 0; i < FEDC_SA_WIDE_SLOTS; i++) {
        uint64_t x = (uint64_t)s[i] + carry;
        limb[i] = (uint32_t)(x & 0xffffu);
        carry = x >> 16;
    }
    int neg = (limb[FEDC_SA_WIDE_SLOTS - 1] & 0x8000u) != 0;
    if (neg) {
        uint32_t c = 1;
        for (int i = 0; i < FEDC_SA_WIDE_SLOTS; i++) {
            uint32_t x = (~limb[i] & 0xffffu) + c;
            limb[i] = x & 0xffffu;
            c = x >> 16;
        }
    }
    double v = 0;
    for (int i = FEDC_SA_WIDE_SLOTS - 1; i >= 0; i--)
        v += ldexp((double)limb[i], 16 * i - 32);
    return neg ? -v : v;
}
