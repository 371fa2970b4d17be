/* The fixed-point FedAvg accumulator (scheme and headroom arithmetic in fl.h).
 *
 * fedc_accum_add makes one pass over memory: each element is range-checked, quantised and added
 * in the same vectorisable loop. An element that fails the check adds 0 instead, and the loop
 * only records that something failed; the failure path then runs the same loop with the weight
 * negated, which subtracts exactly what was added (integer arithmetic), and scans for the first
 * offending element to name it. The check looks at the float's bits (|x| <= lim iff the bits
 * without the sign are <= lim's bits, and NaN's are larger), because an ordered float compare may
 * trap and GCC then refuses to vectorise the loop. Rounding to nearest even uses the
 * 1.5 * 2^52 trick in double, where x * 2^f (|x * 2^f| <= 2^30) is exact; lrintf() does not
 * vectorise on baseline x86-64. */
#include "fedc/fl.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef __SIZEOF_INT128__
#error "fedc_accum needs a compiler with a 128-bit integer type (GCC or Clang on a 64-bit target)"
#endif
__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

/* Vectors shorter than this are added by one thread: a parallel region costs microseconds. */
/* Below about a million elements one thread adds an update in well under a millisecond, and a
 * parallel region would leave OpenMP threads spinning in the coordinator's event loop (measured
 * with bench/bench_round: 100k parameters, 10 clients, 2 cores: 78 ms of round overhead with
 * 65536 here, 9 ms with this bound). */
#define PAR_MIN_ELEMS (1 << 20)

static uint32_t float_bits(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

/* sum[i] += w * round(delta[i] * scale) for every element with |delta[i]| <= lim (lim_bits is
 * lim's bit pattern, lim >= 0); elements beyond lim or NaN add 0. Returns nonzero if any element
 * was beyond lim or NaN. */
static int add_quantised(int64_t *restrict sum, const float *restrict delta, size_t n, int64_t w,
                         double scale, uint32_t lim_bits) {
    const double magic = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */
    uint32_t bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n >= PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &delta[i], sizeof b);
        uint32_t ok = (b & 0x7fffffffu) <= lim_bits ? 0xffffffffu : 0u;
        bad |= ~ok;
        b &= ok; /* a refused element becomes +0 */
        float x;
        memcpy(&x, &b, sizeof x);
        double r = ((double)x * scale + magic) - magic; /* round half to even, exact integer */
        sum[i] += w * (int64_t)(int32_t)r;
    }
    return bad != 0;
}

/* One element of add_quantised_small: adds delta's quantised value times wd into *sum (a refused
 * element, non-finite or too large, counts as +0); returns all ones when it was refused, and
 * the value added, before quantising, in *x. */
static inline __attribute__((always_inline)) uint32_t add1(int64_t *restrict sum, float delta,
                                                           double wd, double scale,
                                                           uint32_t lim_bits, int64_t magic_bits,
                                                           float *x) {
    const double magic = 6755399441055744.0;
    uint32_t b;
    memcpy(&b, &delta, sizeof b);
    uint32_t ok = (b & 0x7fffffffu) <= lim_bits ? 0xffffffffu : 0u;
    b &= ok;
    memcpy(x, &b, sizeof *x);
    double r = ((double)*x * scale + magic) - magic;
    double p = r * wd + magic;
    int64_t pb;
    memcpy(&pb, &p, sizeof pb);
    *sum += pb - magic_bits;
    return ~ok;
}

/* The same for |w| < 2^21, without a 64-bit integer multiply (which x86-64 before AVX-512DQ
 * lacks in vector form): |r| <= 2^30, so r * w is an exact double below 2^51 in magnitude, and
 * adding 1.5 * 2^52 puts that integer in the low bits of the double's pattern (two's complement
 * after subtracting the pattern of 1.5 * 2^52). Every step is exact, so the sums are the same
 * bits as add_quantised's. bench_round: about a quarter of the coordinator's CPU time per
 * 100k-parameter update went to the scalar multiply. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
/* Compiled for AVX2 too and chosen at load time (GCC's function multi-versioning), like the
 * kernels' run-time dispatch: twice the lanes of the baseline SSE2 code. */
__attribute__((target_clones("avx2", "default")))
#endif
static int
add_quantised_small(int64_t *restrict sum, const float *restrict delta, size_t n, int64_t w,
                    double scale, uint32_t lim_bits) {
    const double magic = 6755399441055744.0;
    int64_t magic_bits;
    memcpy(&magic_bits, &magic, sizeof magic_bits);
    const double wd = (double)w;
    uint32_t bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n >= PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) {
        float x;
        bad |= add1(&sum[i], delta[i], wd, scale, lim_bits, magic_bits, &x);
    }
    return bad != 0;
}

/* add_quantised_small and, in the same pass, the sum of squares of delta in double (*sq), in
 * eight interleaved partial sums added up in a fixed order at the end (one running sum would be a
 * chain of dependent additions that the compiler may not reorder). The coordinator needs both for
 * every received chunk of a plain update (its norm against the bound); in one pass the chunk's
 * bytes, just written by ZeroMQ's I/O thread on another core, are fetched once. GCC does not
 * vectorise the scalar form of this loop (the in-order double sums), so it is written with
 * vectors of eight (GCC's and Clang's vector extensions, split into what the target has): lane j
 * sums the elements i + j, so the partial sums, and the result, are those of a scalar loop with
 * eight sums (fedc_accum_sum_squares below), bit for bit; the integer sums are
 * add_quantised_small's. One thread only: the order is the same whatever the size. */
typedef float v4f __attribute__((vector_size(16)));
typedef uint32_t v4u __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4l __attribute__((vector_size(32)));

/* Four elements from delta + i: adds their quantised values times wd into sum + i, their squares
 * into *s; returns the mask of refused elements. */
static inline __attribute__((always_inline)) v4u add4(int64_t *restrict sum,
                                                      const float *restrict delta, v4d *s,
                                                      double wd, double scale, uint32_t lim_bits,
                                                      int64_t magic_bits) {
    const double magic = 6755399441055744.0;
    v4u b;
    memcpy(&b, delta, sizeof b);
    v4u ok = (v4u)((b & 0x7fffffffu) <= lim_bits); /* all ones where accepted */
    b &= ok;                                       /* a refused element becomes +0 */
    v4f x;
    memcpy(&x, &b, sizeof x);
    v4d xd = __builtin_convertvector(x, v4d);
    *s += xd * xd;
    v4d r = (xd * scale + magic) - magic; /* round half to even, exact integer */
    v4d p = r * wd + magic;
    v4l pb, acc;
    memcpy(&pb, &p, sizeof pb);
    memcpy(&acc, sum, sizeof acc);
    acc += pb - magic_bits;
    memcpy(sum, &acc, sizeof acc);
    return ~ok;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "default")))
#endif
static int
add_quantised_small_sq(int64_t *restrict sum, const float *restrict delta, size_t n, int64_t w,
                       double scale, uint32_t lim_bits, double *sq) {
    enum { LANES = 8 };
    const double magic = 6755399441055744.0;
    int64_t magic_bits;
    memcpy(&magic_bits, &magic, sizeof magic_bits);
    const double wd = (double)w;
    v4u badv = {0};
    v4d lo = {0}, hi = {0}; /* lanes 0-3 and 4-7 */
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        badv |= add4(sum + i, delta + i, &lo, wd, scale, lim_bits, magic_bits);
        badv |= add4(sum + i + 4, delta + i + 4, &hi, wd, scale, lim_bits, magic_bits);
    }
    uint32_t bad = badv[0] | badv[1] | badv[2] | badv[3];
    double l[LANES] = {lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]};
    for (; i < n; i++) {
        float x;
        bad |= add1(&sum[i], delta[i], wd, scale, lim_bits, magic_bits, &x);
        l[0] += (double)x * (double)x;
    }
    *sq = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
    return bad != 0;
}

/* The same sum of squares alone (the order of add_quantised_small_sq's). */
double fedc_accum_sum_squares(const float *v, size_t n) {
    enum { LANES = 8 };
    double s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            s[j] += (double)v[i + j] * (double)v[i + j];
    for (; i < n; i++)
        s[0] += (double)v[i] * (double)v[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

static int add_scaled(int64_t *restrict sum, const float *restrict delta, size_t n, int64_t w,
                      double scale, uint32_t lim_bits) {
    if (w > -(INT64_C(1) << 21) && w < (INT64_C(1) << 21))
        return add_quantised_small(sum, delta, n, w, scale, lim_bits);
    return add_quantised(sum, delta, n, w, scale, lim_bits);
}

static i128 loss_get(const fedc_accum *a) {
    u128 u = ((u128)(uint64_t)a->loss_hi << 64) | a->loss_lo;
    return (i128)u;
}

static void loss_put(fedc_accum *a, i128 v) {
    u128 u = (u128)v;
    a->loss_lo = (uint64_t)u;
    a->loss_hi = (int64_t)(uint64_t)(u >> 64);
    a->loss_sum = ldexp((double)v, -FEDC_ACCUM_LOSS_FRAC_BITS);
}

fedc_err fedc_accum_new(fedc_accum **out, size_t n, int frac_bits) {
    fedc_err rc = FEDC_OK;
    fedc_accum *a = NULL;
    assert(out);
    if (n == 0 || frac_bits < 0 || frac_bits > FEDC_ACCUM_MAX_FRAC_BITS) {
        rc = FEDC_EINVAL;
        goto out;
    }
    a = calloc(1, sizeof *a);
    if (!a) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    a->n = n;
    a->frac_bits = frac_bits;
    a->sum = calloc(n, sizeof *a->sum);
    if (!a->sum)
        rc = FEDC_ENOMEM;
out:
    if (rc)
        fedc_accum_destroy(&a);
    *out = a;
    return rc;
}

void fedc_accum_destroy(fedc_accum **pa) {
    if (!pa || !*pa)
        return;
    free((*pa)->sum);
    free(*pa);
    *pa = NULL;
}

void fedc_accum_reset(fedc_accum *a) {
    assert(a);
    memset(a->sum, 0, a->n * sizeof *a->sum);
    a->weight = 0;
    a->count = 0;
    loss_put(a, 0);
}

fedc_err fedc_accum_begin(fedc_accum *a, uint64_t weight, double train_loss, fedc_diag *d) {
    assert(a);
    if (weight == 0) {
        fedc_diag_set(d, "update weight is 0: a contribution needs at least one example");
        return FEDC_ERANGE;
    }
    if (weight > FEDC_ACCUM_MAX_WEIGHT - a->weight) {
        fedc_diag_set(d,
                      "update weight %" PRIu64 " would take the round's total weight past %" PRIu64
                      " (already %" PRIu64 ")",
                      weight, FEDC_ACCUM_MAX_WEIGHT, a->weight);
        return FEDC_ERANGE;
    }
    if (!isfinite(train_loss) || fabs(train_loss) > FEDC_ACCUM_MAX_LOSS) {
        fedc_diag_set(d, "train loss %g is not a finite number within +-%g", train_loss,
                      FEDC_ACCUM_MAX_LOSS);
        return FEDC_ERANGE;
    }
    if (a->count == INT32_MAX) {
        fedc_diag_set(d, "too many contributions to one accumulator (%d)", a->count);
        return FEDC_ERANGE;
    }
    /* |q| <= 2^38 * 2^24 = 2^62, times weight <= 2^32: 2^94, far inside 128 bits. */
    int64_t q = llrint(ldexp(train_loss, FEDC_ACCUM_LOSS_FRAC_BITS));
    loss_put(a, loss_get(a) + (i128)q * (i128)weight);
    a->weight += weight;
    a->count++;
    return FEDC_OK;
}

void fedc_accum_cancel(fedc_accum *a, uint64_t weight, double train_loss) {
    assert(a && a->count > 0 && a->weight >= weight);
    int64_t q = llrint(ldexp(train_loss, FEDC_ACCUM_LOSS_FRAC_BITS));
    loss_put(a, loss_get(a) - (i128)q * (i128)weight);
    a->weight -= weight;
    a->count--;
}

/* Takes back exactly what add_scaled added for a range with a refused element (refused elements
 * added 0), then names the first such element. */
static fedc_err refuse_range(fedc_accum *a, size_t offset, const float *delta, size_t count,
                             int64_t weight, fedc_diag *d) {
    const float lim = (float)FEDC_ACCUM_MAX_ABS_AT(a->frac_bits);
    const double scale = ldexp(1.0, a->frac_bits);
    add_scaled(a->sum + offset, delta, count, -weight, scale, float_bits(lim));
    size_t i = 0;
    while (i < count && fabsf(delta[i]) <= lim)
        i++;
    assert(i < count);
    if (isfinite(delta[i]))
        fedc_diag_set(d, "update element %zu is %.9g, beyond the accumulator's limit +-%g",
                      offset + i, (double)delta[i], (double)lim);
    else
        fedc_diag_set(d, "update element %zu is %g (must be finite)", offset + i, (double)delta[i]);
    return FEDC_ERANGE;
}

fedc_err fedc_accum_add_range(fedc_accum *a, size_t offset, const float *delta, size_t count,
                              int64_t weight, fedc_diag *d) {
    assert(a && (delta || count == 0));
    if (offset > a->n || count > a->n - offset) {
        fedc_diag_set(d, "update elements %zu..%zu outside the accumulator's %zu", offset,
                      offset + count, a->n);
        return FEDC_ERANGE;
    }
    if (count == 0)
        return FEDC_OK;
    const float lim = (float)FEDC_ACCUM_MAX_ABS_AT(a->frac_bits);
    const double scale = ldexp(1.0, a->frac_bits);
    int64_t *sum = a->sum + offset;
    if (add_scaled(sum, delta, count, weight, scale, float_bits(lim)))
        return refuse_range(a, offset, delta, count, weight, d);
    return FEDC_OK;
}

fedc_err fedc_accum_add_range_sq(fedc_accum *a, size_t offset, const float *delta, size_t count,
                                 int64_t weight, double *sq, fedc_diag *d) {
    assert(a && sq && (delta || count == 0));
    *sq = 0;
    if (offset > a->n || count > a->n - offset) {
        fedc_diag_set(d, "update elements %zu..%zu outside the accumulator's %zu", offset,
                      offset + count, a->n);
        return FEDC_ERANGE;
    }
    if (count == 0)
        return FEDC_OK;
    /* Large ranges (added by several threads) and large weights take the two passes. */
    if (count >= PAR_MIN_ELEMS || weight <= -(INT64_C(1) << 21) || weight >= (INT64_C(1) << 21)) {
        fedc_err rc = fedc_accum_add_range(a, offset, delta, count, weight, d);
        if (!rc)
            *sq = fedc_accum_sum_squares(delta, count);
        return rc;
    }
    const float lim = (float)FEDC_ACCUM_MAX_ABS_AT(a->frac_bits);
    const double scale = ldexp(1.0, a->frac_bits);
    if (add_quantised_small_sq(a->sum + offset, delta, count, weight, scale, float_bits(lim), sq)) {
        *sq = 0;
        return refuse_range(a, offset, delta, count, weight, d);
    }
    return FEDC_OK;
}

fedc_err fedc_accum_add(fedc_accum *a, const float *delta, uint64_t weight, double train_loss,
                        fedc_diag *d) {
    assert(a && delta);
    fedc_err rc = fedc_accum_begin(a, weight, train_loss, d);
    if (rc)
        return rc;
    rc = fedc_accum_add_range(a, 0, delta, a->n, (int64_t)weight, d);
    if (rc)
        fedc_accum_cancel(a, weight, train_loss);
    return rc;
}

fedc_err fedc_accum_mean(const fedc_accum *a, float *out) {
    assert(a && out);
    if (a->count == 0 || a->weight == 0)
        return FEDC_EEMPTY;
    const double denom = ldexp((double)a->weight, a->frac_bits);
    const int64_t *restrict sum = a->sum;
    const size_t n = a->n;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++)
        out[i] = (float)((double)sum[i] / denom);
    return FEDC_OK;
}

double fedc_accum_mean_loss(const fedc_accum *a) {
    assert(a);
    if (a->count == 0 || a->weight == 0)
        return NAN;
    return (double)loss_get(a) / ldexp((double)a->weight, FEDC_ACCUM_LOSS_FRAC_BITS);
}
