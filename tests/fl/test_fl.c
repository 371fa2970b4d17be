/* Tests for core/fl: the fixed-point FedAvg accumulator (round trip, weighted mean against double
 * precision, bit-identical sums in any order, refusals that leave the state untouched, the
 * headroom at the largest weight and value), the server optimisers against double-precision
 * references, client sampling, and federated evaluation against core/nn's exact metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/clip.h"
#include "fedc/fl.h"
#include "fedc/metrics.h"
#include "fedc/rng.h"

/* Fails the test with both numbers printed when |got - want| > tol (NaN never passes). */
#define assert_near(got, want, tol) assert_near_at((got), (want), (tol), __FILE__, __LINE__)

static void assert_near_at(double got, double want, double tol, const char *file, int line) {
    if (!(fabs(got - want) <= tol)) {
        print_error("got %.17g, expected %.17g (difference %g, tolerance %g)\n", got, want,
                    fabs(got - want), tol);
        _fail(file, line);
    }
}

/* Relative closeness: |got - want| <= tol * max(1, |want|). */
#define assert_rel(got, want, tol) assert_near((got), (want), (tol)*fmax(1.0, fabs(want)))

#define assert_contains(haystack, needle) assert_non_null(strstr((haystack), (needle)))

static float uniform_in(fedc_rng *r, float lo, float hi) {
    return lo + (hi - lo) * fedc_rng_uniform(r);
}

static float *random_vec(fedc_rng *r, size_t n, float lo, float hi) {
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = uniform_in(r, lo, hi);
    return v;
}

/* ---- Accumulator --------------------------------------------------------------------------- */

static fedc_accum *accum(size_t n, int frac_bits) {
    fedc_accum *a = NULL;
    assert_int_equal(fedc_accum_new(&a, n, frac_bits), FEDC_OK);
    assert_non_null(a);
    return a;
}

static void add_ok(fedc_accum *a, const float *delta, uint64_t weight, double loss) {
    fedc_diag d = {{0}};
    fedc_err rc = fedc_accum_add(a, delta, weight, loss, &d);
    if (rc != FEDC_OK)
        print_error("fedc_accum_add: %s: %s\n", fedc_strerror(rc), d.msg);
    assert_int_equal(rc, FEDC_OK);
}

/* One client's update comes back within half a step, 2^-(f+1), at two resolutions; values of
 * every magnitude up to the limit, and exact multiples of a step come back exactly. */
static void test_accum_single_roundtrip(void **state) {
    (void)state;
    const size_t n = 4096;
    const int fbits[] = {FEDC_ACCUM_FRAC_BITS, 10};
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(1, 2, 3, 4));
    for (size_t t = 0; t < sizeof fbits / sizeof fbits[0]; t++) {
        const int f = fbits[t];
        float *delta = random_vec(&r, n, -1.0f, 1.0f);
        for (size_t i = 0; i < 64; i++) /* larger magnitudes up to the limit */
            delta[i] = uniform_in(&r, -1.0f, 1.0f) * (float)FEDC_ACCUM_MAX_ABS_AT(f);
        delta[64] = (float)ldexp(3.0, -f); /* exactly 3 steps */
        delta[65] = 0.0f;
        float *mean = malloc(n * sizeof *mean);
        fedc_accum *a = accum(n, f);
        add_ok(a, delta, 17, 0.6931);
        assert_int_equal(fedc_accum_mean(a, mean), FEDC_OK);
        const double half_step = ldexp(1.0, -(f + 1));
        for (size_t i = 0; i < n; i++)
            assert_near(mean[i], delta[i], half_step);
        assert_true(mean[64] == delta[64]);
        assert_true(mean[65] == 0.0f);
        assert_near(fedc_accum_mean_loss(a), 0.6931, ldexp(1.0, -(FEDC_ACCUM_LOSS_FRAC_BITS + 1)));
        assert_near(a->loss_sum, 17 * 0.6931, 17 * ldexp(1.0, -FEDC_ACCUM_LOSS_FRAC_BITS));
        assert_int_equal(a->count, 1);
        assert_true(a->weight == 17);
        fedc_accum_destroy(&a);
        assert_null(a);
        free(delta);
        free(mean);
    }
}

/* Seven clients with different example counts: the fixed-point mean is within 2^-24 of the
 * weighted mean computed in double from the float updates (quantisation 2^-25 plus the final
 * rounding to float, at most 2^-25 for |mean| < 1). The loss mean likewise. */
static void test_accum_weighted_mean(void **state) {
    (void)state;
    enum { K = 7 };
    const size_t n = 10000;
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(5, 6, 7, 8));
    float *delta[K];
    uint64_t weight[K];
    double loss[K], wsum = 0.0, lsum = 0.0;
    fedc_accum *a = accum(n, FEDC_ACCUM_FRAC_BITS);
    for (int k = 0; k < K; k++) {
        delta[k] = random_vec(&r, n, -1.0f, 1.0f);
        weight[k] = 1 + fedc_rng_below(&r, 5000);
        loss[k] = 0.1 + 2.0 * fedc_rng_uniform(&r);
        wsum += (double)weight[k];
        lsum += (double)weight[k] * loss[k];
        add_ok(a, delta[k], weight[k], loss[k]);
    }
    float *mean = malloc(n * sizeof *mean);
    assert_int_equal(fedc_accum_mean(a, mean), FEDC_OK);
    for (size_t i = 0; i < n; i++) {
        double ref = 0.0;
        for (int k = 0; k < K; k++)
            ref += (double)weight[k] * (double)delta[k][i];
        assert_near(mean[i], ref / wsum, ldexp(1.0, -24));
    }
    assert_near(fedc_accum_mean_loss(a), lsum / wsum, ldexp(1.0, -24));
    assert_int_equal(a->count, K);
    assert_true((double)a->weight == wsum);
    for (int k = 0; k < K; k++)
        free(delta[k]);
    free(mean);
    fedc_accum_destroy(&a);
}

/* The same six contributions added in three orders give bit-identical sums, loss and means.
 * The data mix magnitudes so that plain float accumulation does depend on the order (checked,
 * so the comparison is not vacuous). Large enough to use the OpenMP path too. */
static void test_accum_order_independent(void **state) {
    (void)state;
    enum { K = 6 };
    const size_t n = 100000;
    const int orders[3][K] = {{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {3, 0, 5, 1, 4, 2}};
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(9, 9, 9, 9));
    float *delta[K];
    uint64_t weight[K];
    double loss[K];
    for (int k = 0; k < K; k++) {
        float scale = (k % 2) ? 30.0f : 1e-3f;
        delta[k] = random_vec(&r, n, -scale, scale);
        weight[k] = 1 + fedc_rng_below(&r, 100000);
        loss[k] = 1e-3 + 50.0 * fedc_rng_uniform(&r);
    }
    fedc_accum *a[3];
    float *mean[3], *fsum[3];
    for (int o = 0; o < 3; o++) {
        a[o] = accum(n, FEDC_ACCUM_FRAC_BITS);
        fsum[o] = calloc(n, sizeof(float));
        for (int j = 0; j < K; j++) {
            int k = orders[o][j];
            add_ok(a[o], delta[k], weight[k], loss[k]);
            for (size_t i = 0; i < n; i++)
                fsum[o][i] += (float)weight[k] * delta[k][i];
        }
        mean[o] = malloc(n * sizeof(float));
        assert_int_equal(fedc_accum_mean(a[o], mean[o]), FEDC_OK);
    }
    /* Float accumulation is order-dependent on this data... */
    assert_true(memcmp(fsum[0], fsum[1], n * sizeof(float)) != 0 ||
                memcmp(fsum[0], fsum[2], n * sizeof(float)) != 0);
    /* ...the fixed-point sums are not. */
    for (int o = 1; o < 3; o++) {
        assert_memory_equal(a[0]->sum, a[o]->sum, n * sizeof(int64_t));
        assert_true(a[0]->weight == a[o]->weight);
        assert_int_equal(a[0]->count, a[o]->count);
        assert_true(a[0]->loss_lo == a[o]->loss_lo && a[0]->loss_hi == a[o]->loss_hi);
        assert_memory_equal(&a[0]->loss_sum, &a[o]->loss_sum, sizeof(double));
        assert_memory_equal(mean[0], mean[o], n * sizeof(float));
        double l0 = fedc_accum_mean_loss(a[0]), lo = fedc_accum_mean_loss(a[o]);
        assert_memory_equal(&l0, &lo, sizeof(double));
    }
    for (int o = 0; o < 3; o++) {
        fedc_accum_destroy(&a[o]);
        free(mean[o]);
        free(fsum[o]);
    }
    for (int k = 0; k < K; k++)
        free(delta[k]);
}

/* A snapshot of everything an add may change. */
typedef struct accum_snap {
    int64_t *sum;
    uint64_t weight, loss_lo;
    int64_t loss_hi;
    int count;
    double loss_sum;
} accum_snap;

static accum_snap snap(const fedc_accum *a) {
    accum_snap s = {
        malloc(a->n * sizeof(int64_t)), a->weight, a->loss_lo, a->loss_hi, a->count, a->loss_sum};
    assert_non_null(s.sum);
    memcpy(s.sum, a->sum, a->n * sizeof(int64_t));
    return s;
}

static void assert_unchanged(const fedc_accum *a, const accum_snap *s) {
    assert_memory_equal(a->sum, s->sum, a->n * sizeof(int64_t));
    assert_true(a->weight == s->weight);
    assert_true(a->loss_lo == s->loss_lo && a->loss_hi == s->loss_hi);
    assert_int_equal(a->count, s->count);
    assert_memory_equal(&a->loss_sum, &s->loss_sum, sizeof(double));
}

/* Adds a delta that must be refused; checks the code, that the message names `want` and that
 * the accumulator did not change. */
static void assert_refused(fedc_accum *a, const float *delta, uint64_t weight, double loss,
                           const char *want1, const char *want2) {
    accum_snap s = snap(a);
    fedc_diag d = {{0}};
    assert_int_equal(fedc_accum_add(a, delta, weight, loss, &d), FEDC_ERANGE);
    assert_contains(d.msg, want1);
    if (want2)
        assert_contains(d.msg, want2);
    assert_unchanged(a, &s);
    free(s.sum);
}

/* fedc_accum_add_range_sq (the coordinator's one pass over a chunk) against fedc_accum_add_range
 * and a scalar sum of squares in eight interleaved sums: the same integer sums and the same
 * double, bit for bit, at odd lengths (a tail after the blocks of eight), at an offset, with a
 * negative weight (taking a range out again restores the sums) and with a large weight (the
 * two-pass path); a refused range (NaN, too large) leaves the sums unchanged, names the element
 * and sets the sum of squares to 0. */
static double squares8(const float *v, size_t n) {
    double s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            s[j] += (double)v[i + j] * (double)v[i + j];
    for (; i < n; i++)
        s[0] += (double)v[i] * (double)v[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

static void test_accum_range_sq(void **state) {
    (void)state;
    const size_t n = 1000;
    const size_t lens[] = {1, 7, 8, 9, 333, 1000 - 64};
    const int64_t weights[] = {1, 7, (INT64_C(1) << 21) + 3, -5};
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(21, 22, 23, 24));
    fedc_accum *a = accum(n, FEDC_ACCUM_FRAC_BITS), *b = accum(n, FEDC_ACCUM_FRAC_BITS);
    float *base = random_vec(&r, n, -1.0f, 1.0f);
    fedc_diag d = {{0}};
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++)
        for (size_t k = 0; k < sizeof weights / sizeof weights[0]; k++) {
            const size_t off = 64, len = lens[t];
            double sq = -1;
            assert_int_equal(fedc_accum_add_range_sq(a, off, base + off, len, weights[k], &sq, &d),
                             FEDC_OK);
            assert_int_equal(fedc_accum_add_range(b, off, base + off, len, weights[k], &d),
                             FEDC_OK);
            assert_memory_equal(a->sum, b->sum, n * sizeof(int64_t));
            double want = squares8(base + off, len);
            assert_memory_equal(&sq, &want, sizeof sq);
        }
    /* Taking every range out again: all zero. */
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++)
        for (size_t k = 0; k < sizeof weights / sizeof weights[0]; k++) {
            double sq;
            assert_int_equal(
                fedc_accum_add_range_sq(a, 64, base + 64, lens[t], -weights[k], &sq, &d), FEDC_OK);
        }
    for (size_t i = 0; i < n; i++)
        assert_true(a->sum[i] == 0);
    add_ok(a, base, 3, 0.5);
    accum_snap s = snap(a);
    const float bad[] = {NAN, INFINITY, 64.5f};
    const char *names[] = {"nan", "inf", "64.5"};
    for (int j = 0; j < 3; j++) {
        float *v = random_vec(&r, 333, -1.0f, 1.0f);
        v[330] = bad[j];
        double sq = -1;
        assert_int_equal(fedc_accum_add_range_sq(a, 10, v, 333, 9, &sq, &d), FEDC_ERANGE);
        assert_contains(d.msg, "element 340");
        assert_contains(d.msg, names[j]);
        assert_true(sq == 0);
        assert_unchanged(a, &s);
        free(v);
    }
    double sq = -1;
    assert_int_equal(fedc_accum_add_range_sq(a, 990, base, 11, 1, &sq, &d), FEDC_ERANGE);
    assert_contains(d.msg, "outside the accumulator");
    assert_unchanged(a, &s);
    free(s.sum);
    free(base);
    fedc_accum_destroy(&a);
    fedc_accum_destroy(&b);
}

/* Non-finite and too large elements, weight 0, too much total weight and a bad loss are refused
 * with a message naming them and the accumulator unchanged, on a small vector (one thread) and a
 * large one (the parallel path, the bad element last so everything before it was added and had
 * to be taken back). */
static void test_accum_refusals(void **state) {
    (void)state;
    const size_t sizes[] = {16, 300001};
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(11, 12, 13, 14));
    for (size_t t = 0; t < 2; t++) {
        const size_t n = sizes[t];
        const size_t bad = n - 3;
        fedc_accum *a = accum(n, FEDC_ACCUM_FRAC_BITS);
        float *ok = random_vec(&r, n, -1.0f, 1.0f);
        add_ok(a, ok, 3, 0.5); /* a non-trivial state to compare against */
        float *delta = random_vec(&r, n, -1.0f, 1.0f);
        char where[64];
        snprintf(where, sizeof where, "element %zu", bad);

        delta[bad] = NAN;
        assert_refused(a, delta, 5, 0.1, where, "nan");
        delta[bad] = -INFINITY;
        assert_refused(a, delta, 5, 0.1, where, "inf");
        delta[bad] = 64.5f;
        assert_refused(a, delta, 5, 0.1, where, "64.5");
        delta[bad] = -(float)FEDC_ACCUM_MAX_ABS * 1.0000001f;
        assert_refused(a, delta, 5, 0.1, where, "limit +-64");
        /* The first offending element is the one named. */
        delta[1] = 1e30f;
        assert_refused(a, delta, 5, 0.1, "element 1 ", "e+30");
        delta[1] = 0.25f;

        delta[bad] = 0.5f;
        assert_refused(a, delta, 0, 0.1, "weight is 0", NULL);
        assert_refused(a, delta, FEDC_ACCUM_MAX_WEIGHT - 2, 0.1, "total weight", "4294967296");
        assert_refused(a, delta, 5, NAN, "train loss nan", NULL);
        assert_refused(a, delta, 5, INFINITY, "train loss inf", NULL);
        assert_refused(a, delta, 5, -1e12, "train loss -1e+12", NULL);

        /* The limit itself is accepted, and a valid add after refusals works. */
        delta[bad] = (float)FEDC_ACCUM_MAX_ABS;
        delta[0] = -(float)FEDC_ACCUM_MAX_ABS;
        add_ok(a, delta, 5, 0.1);
        assert_int_equal(a->count, 2);
        assert_true(a->weight == 8);
        float *mean = malloc(n * sizeof *mean);
        assert_int_equal(fedc_accum_mean(a, mean), FEDC_OK);
        for (size_t i = 0; i < n; i++) { /* half a step plus the rounding to float */
            double want = (3.0 * ok[i] + 5.0 * delta[i]) / 8.0;
            assert_near(mean[i], want, ldexp(1.0, -25) + fabs(want) * ldexp(1.0, -24));
        }
        free(mean);
        free(ok);
        free(delta);
        fedc_accum_destroy(&a);
    }
}

/* Weights below 2^21 take a multiply-free path, larger ones an integer multiply: both must give
 * exactly sum[i] = w * round_half_even(delta[i] * 2^24), checked against that formula in integer
 * arithmetic at weights on both sides of the switch and elements at the limit. */
static void test_accum_exact_both_paths(void **state) {
    (void)state;
    enum { N = 1031 };
    const uint64_t ws[] = {1, 3, (1u << 21) - 1, 1u << 21, (1u << 21) + 7, 123456789};
    float delta[N];
    fedc_rng r;
    fedc_rng_init(&r, 99);
    for (int i = 0; i < N; i++)
        delta[i] = (fedc_rng_uniform(&r) - 0.5f) * 2.0f * (float)FEDC_ACCUM_MAX_ABS;
    delta[0] = (float)FEDC_ACCUM_MAX_ABS;
    delta[1] = -(float)FEDC_ACCUM_MAX_ABS;
    delta[2] = 0.5f / 16777216.0f; /* exactly half a step: rounds to even (0) */
    delta[3] = 1.5f / 16777216.0f; /* rounds to 2 */
    for (size_t k = 0; k < sizeof ws / sizeof ws[0]; k++) {
        fedc_accum *a = NULL;
        assert_int_equal(fedc_accum_new(&a, N, FEDC_ACCUM_FRAC_BITS), FEDC_OK);
        add_ok(a, delta, ws[k], 0.25);
        for (int i = 0; i < N; i++) {
            int64_t q = (int64_t)nearbyint((double)delta[i] * 16777216.0);
            int64_t want = q * (int64_t)ws[k];
            if (a->sum[i] != want)
                fail_msg("weight %llu, element %d: sum %lld, expected %lld",
                         (unsigned long long)ws[k], i, (long long)a->sum[i], (long long)want);
        }
        assert_true(a->sum[2] == 0 && a->sum[3] == 2 * (int64_t)ws[k]);
        fedc_accum_destroy(&a);
    }
}

/* The extremes of the headroom: total weight 2^32 with every element at +-64 gives sums of
 * +-2^62 exactly (no overflow, which UBSan would report), and the mean comes back exactly. */
static void test_accum_headroom(void **state) {
    (void)state;
    const size_t n = 8;
    float delta[8], mean[8];
    for (size_t i = 0; i < n; i++)
        delta[i] = (i % 2) ? (float)FEDC_ACCUM_MAX_ABS : -(float)FEDC_ACCUM_MAX_ABS;
    fedc_accum *a = accum(n, FEDC_ACCUM_FRAC_BITS);
    add_ok(a, delta, FEDC_ACCUM_MAX_WEIGHT / 2, FEDC_ACCUM_MAX_LOSS);
    add_ok(a, delta, FEDC_ACCUM_MAX_WEIGHT / 2, FEDC_ACCUM_MAX_LOSS);
    assert_true(a->weight == FEDC_ACCUM_MAX_WEIGHT);
    for (size_t i = 0; i < n; i++)
        assert_true(a->sum[i] == ((i % 2) ? INT64_C(1) << 62 : -(INT64_C(1) << 62)));
    assert_int_equal(fedc_accum_mean(a, mean), FEDC_OK);
    assert_memory_equal(mean, delta, sizeof mean);
    assert_true(fedc_accum_mean_loss(a) == FEDC_ACCUM_MAX_LOSS);
    assert_true(a->loss_sum == FEDC_ACCUM_MAX_LOSS * 4294967296.0);
    /* Full: one more example is refused. */
    assert_refused(a, delta, 1, 0.0, "total weight", NULL);
    fedc_accum_destroy(&a);
}

/* Creation limits, the empty mean, reset, destroy(NULL). */
static void test_accum_lifecycle(void **state) {
    (void)state;
    fedc_accum *a = (fedc_accum *)&a; /* must be overwritten */
    assert_int_equal(fedc_accum_new(&a, 0, 24), FEDC_EINVAL);
    assert_null(a);
    assert_int_equal(fedc_accum_new(&a, 4, -1), FEDC_EINVAL);
    assert_int_equal(fedc_accum_new(&a, 4, FEDC_ACCUM_MAX_FRAC_BITS + 1), FEDC_EINVAL);
    a = accum(4, FEDC_ACCUM_MAX_FRAC_BITS);
    float out[4] = {7, 7, 7, 7}, delta[4] = {0.5f, -0.25f, 1.0f, -1.0f};
    assert_int_equal(fedc_accum_mean(a, out), FEDC_EEMPTY);
    assert_true(out[0] == 7.0f);
    assert_true(isnan(fedc_accum_mean_loss(a)));
    add_ok(a, delta, 2, -0.5); /* at f = 30 the limit is 1, and it is accepted */
    assert_int_equal(fedc_accum_mean(a, out), FEDC_OK);
    assert_memory_equal(out, delta, sizeof out);
    assert_near(fedc_accum_mean_loss(a), -0.5, 0.0);
    delta[2] = 1.001f;
    assert_refused(a, delta, 1, 0.0, "element 2", "limit +-1");
    fedc_accum_reset(a);
    assert_int_equal(a->count, 0);
    assert_true(a->weight == 0 && a->loss_lo == 0 && a->loss_hi == 0 && a->loss_sum == 0.0);
    for (int i = 0; i < 4; i++)
        assert_true(a->sum[i] == 0);
    assert_int_equal(fedc_accum_mean(a, out), FEDC_EEMPTY);
    fedc_accum_destroy(&a);
    fedc_accum_destroy(&a);
    fedc_accum_destroy(NULL);
}

/* ---- Server optimisers --------------------------------------------------------------------- */

static fedc_server *server(fedc_server_cfg c, size_t n) {
    fedc_server *s = NULL;
    assert_int_equal(fedc_server_new(&s, &c, n), FEDC_OK);
    assert_non_null(s);
    return s;
}

/* FedAvg with lr 1 gives exactly w + u, so the global model is the weighted average. */
static void test_server_fedavg(void **state) {
    (void)state;
    const size_t n = 1000;
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(21, 0, 0, 0));
    float *w = random_vec(&r, n, -2.0f, 2.0f), *u = random_vec(&r, n, -0.1f, 0.1f);
    float *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++)
        want[i] = w[i] + u[i];
    fedc_server *s = server(fedc_server_defaults(FEDC_SERVER_FEDAVG), n);
    assert_null(s->m);
    assert_null(s->v);
    fedc_server_step(s, w, u);
    assert_memory_equal(w, want, n * sizeof *w);
    assert_true(s->t == 1);
    fedc_server_destroy(&s);
    assert_null(s);
    free(w);
    free(u);
    free(want);
}

/* Three updates for FedAvgM and FedAdam against the formulas evaluated in double. */
static const float upd[3][4] = {
    {0.1f, -0.2f, 0.0f, 1e-4f}, {0.3f, -0.1f, 0.05f, -2e-4f}, {-0.2f, -0.3f, 0.0f, 5e-4f}};
static const float w0[4] = {0.5f, -1.0f, 0.25f, 2.0f};

static void test_server_fedavgm(void **state) {
    (void)state;
    fedc_server_cfg c = fedc_server_defaults(FEDC_SERVER_FEDAVGM);
    assert_near(c.lr, 1.0, 0.0);
    assert_near(c.momentum, 0.9, 1e-7);
    c.lr = 0.7f;
    fedc_server *s = server(c, 4);
    float w[4];
    memcpy(w, w0, sizeof w);
    double rw[4], rv[4] = {0};
    for (int i = 0; i < 4; i++)
        rw[i] = w0[i];
    for (int t = 0; t < 3; t++) {
        fedc_server_step(s, w, upd[t]);
        for (int i = 0; i < 4; i++) {
            rv[i] = (double)c.momentum * rv[i] + upd[t][i]; /* v = mu v + u */
            rw[i] += (double)c.lr * rv[i];                  /* w += lr v */
            assert_rel(s->m[i], rv[i], 1e-6);
            assert_rel(w[i], rw[i], 1e-6);
        }
    }
    assert_true(s->t == 3);
    /* Hand check of element 0: v = 0.1, 0.39, 0.151; w = 0.5 + 0.7 (0.1 + 0.39 + 0.151). */
    assert_near(w[0], 0.5 + 0.7 * 0.641, 1e-6);
    fedc_server_destroy(&s);
}

static void test_server_fedadam(void **state) {
    (void)state;
    fedc_server_cfg c = fedc_server_defaults(FEDC_SERVER_FEDADAM);
    assert_near(c.lr, 1e-2, 1e-9);
    assert_near(c.beta1, 0.9, 1e-7);
    assert_near(c.beta2, 0.99, 1e-7);
    assert_near(c.tau, 1e-3, 1e-10);
    fedc_server *s = server(c, 4);
    float w[4];
    memcpy(w, w0, sizeof w);
    double rw[4], rm[4] = {0}, rv[4] = {0};
    const double b1 = c.beta1, b2 = c.beta2, tau = c.tau, lr = c.lr;
    for (int i = 0; i < 4; i++)
        rw[i] = w0[i];
    for (int t = 0; t < 3; t++) {
        fedc_server_step(s, w, upd[t]);
        for (int i = 0; i < 4; i++) {
            double u = upd[t][i];
            rm[i] = b1 * rm[i] + (1.0 - b1) * u;
            rv[i] = b2 * rv[i] + (1.0 - b2) * u * u;
            rw[i] += lr * rm[i] / (sqrt(rv[i]) + tau);
            assert_rel(s->m[i], rm[i], 1e-6);
            assert_near(s->v[i], rv[i], 1e-6 * rv[i] + 1e-12);
            assert_rel(w[i], rw[i], 1e-6);
        }
    }
    /* Hand check of element 0 after step 1: m = 0.01, v = 1e-4, step = 1e-2 * 0.01 / (0.01 +
     * 1e-3) = 9.0909e-3 (no bias correction: Reddi et al.'s Algorithm 2). */
    assert_true(s->t == 3);
    fedc_server_destroy(&s);
    s = server(c, 4);
    memcpy(w, w0, sizeof w);
    fedc_server_step(s, w, upd[0]);
    assert_near(w[0], 0.5 + 1e-2 * 0.01 / 0.011, 1e-7);
    assert_near(w[2], 0.25, 0.0); /* a zero update moves nothing */
    fedc_server_destroy(&s);
}

static void test_server_names_and_config(void **state) {
    (void)state;
    const fedc_server_opt kinds[] = {FEDC_SERVER_FEDAVG, FEDC_SERVER_FEDAVGM, FEDC_SERVER_FEDADAM};
    const char *want[] = {"fedavg", "fedavgm", "fedadam"};
    for (int k = 0; k < 3; k++) {
        fedc_server_opt got = (fedc_server_opt)-1;
        assert_string_equal(fedc_server_name(kinds[k]), want[k]);
        assert_int_equal(fedc_server_parse(&got, want[k]), FEDC_OK);
        assert_int_equal(got, kinds[k]);
        assert_int_equal(fedc_server_defaults(kinds[k]).kind, kinds[k]);
    }
    fedc_server_opt got;
    assert_int_equal(fedc_server_parse(&got, "FedAvg"), FEDC_EINVAL);
    assert_int_equal(fedc_server_parse(&got, "fedyogi"), FEDC_EINVAL);
    assert_int_equal(fedc_server_parse(&got, ""), FEDC_EINVAL);
    assert_int_equal(fedc_server_parse(&got, NULL), FEDC_EINVAL);
    assert_string_equal(fedc_server_name((fedc_server_opt)7), "?");

    fedc_server *s = (fedc_server *)&s;
    fedc_server_cfg c = fedc_server_defaults(FEDC_SERVER_FEDAVG);
    assert_int_equal(fedc_server_new(&s, &c, 0), FEDC_EINVAL);
    assert_null(s);
    c.lr = 0.0f;
    assert_int_equal(fedc_server_new(&s, &c, 3), FEDC_EINVAL);
    c.lr = NAN;
    assert_int_equal(fedc_server_new(&s, &c, 3), FEDC_EINVAL);
    c = fedc_server_defaults(FEDC_SERVER_FEDAVGM);
    c.momentum = 1.0f;
    assert_int_equal(fedc_server_new(&s, &c, 3), FEDC_EINVAL);
    c.momentum = -0.1f;
    assert_int_equal(fedc_server_new(&s, &c, 3), FEDC_EINVAL);
    c = fedc_server_defaults(FEDC_SERVER_FEDADAM);
    c.tau = 0.0f;
    assert_int_equal(fedc_server_new(&s, &c, 3), FEDC_EINVAL);
    c.tau = 1e-3f;
    c.beta2 = 1.0f;
    assert_int_equal(fedc_server_new(&s, &c, 3), FEDC_EINVAL);
    c.beta2 = 0.99f;
    c.kind = (fedc_server_opt)9;
    assert_int_equal(fedc_server_new(&s, &c, 3), FEDC_EINVAL);
    assert_null(s);
    c.kind = FEDC_SERVER_FEDADAM;
    s = server(c, 3);
    assert_non_null(s->m);
    assert_non_null(s->v);
    assert_true(s->m[2] == 0.0f && s->v[2] == 0.0f && s->t == 0);
    fedc_server_destroy(&s);
    fedc_server_destroy(NULL);
}

/* ---- Client sampling ----------------------------------------------------------------------- */

enum { NC = 37 };

/* 37 distinct ids in no particular order. */
static void candidate_ids(int *ids) {
    for (int i = 0; i < NC; i++)
        ids[i] = (i * 17 + 5) % 101 + 1000 * (i % 3);
}

static int contains(const int *v, int n, int x) {
    for (int i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* Count ceil(0.3 * 37) = 12, strictly ascending (so no duplicates), all from the candidates. */
static void test_sample_basic(void **state) {
    (void)state;
    int ids[NC], chosen[NC];
    candidate_ids(ids);
    for (uint64_t round = 0; round < 20; round++) {
        int k = fedc_sample_clients(chosen, ids, NC, 0.3, 2, 42, round);
        assert_int_equal(k, 12);
        for (int i = 0; i < k; i++) {
            assert_true(contains(ids, NC, chosen[i]));
            if (i > 0)
                assert_true(chosen[i - 1] < chosen[i]);
        }
    }
    /* The candidates are only read. */
    int again[NC];
    candidate_ids(again);
    assert_memory_equal(ids, again, sizeof ids);
}

/* Same (seed, round) -> same pick, whatever order the candidates come in; another seed or
 * round -> (almost always) another pick; over many rounds every client is picked about equally. */
static void test_sample_determinism(void **state) {
    (void)state;
    int ids[NC], rev[NC], a[NC], b[NC];
    candidate_ids(ids);
    for (int i = 0; i < NC; i++)
        rev[i] = ids[NC - 1 - i];
    int k = fedc_sample_clients(a, ids, NC, 0.25, 1, 7, 3);
    assert_int_equal(fedc_sample_clients(b, ids, NC, 0.25, 1, 7, 3), k);
    assert_memory_equal(a, b, (size_t)k * sizeof *a);
    assert_int_equal(fedc_sample_clients(b, rev, NC, 0.25, 1, 7, 3), k);
    assert_memory_equal(a, b, (size_t)k * sizeof *a);
    assert_int_equal(fedc_sample_clients(b, ids, NC, 0.25, 1, 8, 3), k);
    assert_true(memcmp(a, b, (size_t)k * sizeof *a) != 0);

    /* 2000 rounds: consecutive rounds differ (C(37,10) ~ 3.5e8 subsets), and each client's
     * count is near the expected 2000 * 10 / 37 = 540.5 (binomial sd ~ 19.9; 5 sd allowed). */
    enum { ROUNDS = 2000 };
    int count[NC] = {0}, same = 0, prev[NC];
    for (uint64_t round = 0; round < ROUNDS; round++) {
        int kk = fedc_sample_clients(b, ids, NC, 0.25, 1, 7, round);
        assert_int_equal(kk, 10);
        if (round > 0 && memcmp(prev, b, (size_t)kk * sizeof *b) == 0)
            same++;
        memcpy(prev, b, (size_t)kk * sizeof *b);
        for (int i = 0; i < kk; i++)
            for (int j = 0; j < NC; j++)
                count[j] += ids[j] == b[i];
    }
    assert_int_equal(same, 0);
    for (int j = 0; j < NC; j++) {
        if (!(count[j] > 440 && count[j] < 641))
            print_error("client %d picked %d times of 2000 rounds\n", ids[j], count[j]);
        assert_true(count[j] > 440 && count[j] < 641);
    }
}

/* min_clients raises k, n_candidates caps it, and products that are integers up to rounding
 * noise are not rounded up. */
static void test_sample_counts(void **state) {
    (void)state;
    int ids[NC], chosen[NC];
    candidate_ids(ids);
    assert_int_equal(fedc_sample_clients(chosen, ids, NC, 0.01, 0, 1, 1), 1);  /* ceil(0.37) */
    assert_int_equal(fedc_sample_clients(chosen, ids, NC, 0.01, 5, 1, 1), 5);  /* min 5 */
    assert_int_equal(fedc_sample_clients(chosen, ids, NC, 0.5, 50, 1, 1), NC); /* capped */
    assert_int_equal(fedc_sample_clients(chosen, ids, NC, 1.0, 0, 1, 1), NC);
    for (int i = 1; i < NC; i++)
        assert_true(chosen[i - 1] < chosen[i]);
    /* 0.28 * 25 = 7.000000000000001 and 0.56 * 25 = 14.000000000000002 in double. */
    assert_int_equal(fedc_sample_clients(chosen, ids, 25, 0.28, 0, 1, 1), 7);
    assert_int_equal(fedc_sample_clients(chosen, ids, 25, 0.56, 0, 1, 1), 14);
    assert_int_equal(fedc_sample_clients(chosen, ids, 10, 0.31, 0, 1, 1), 4);
    assert_int_equal(fedc_sample_clients(chosen, ids, 0, 0.5, 3, 1, 1), 0);
}

static void test_sample_invalid(void **state) {
    (void)state;
    int ids[NC], chosen[NC];
    candidate_ids(ids);
    assert_int_equal(fedc_sample_clients(chosen, ids, NC, 0.0, 1, 1, 1), -1);
    assert_int_equal(fedc_sample_clients(chosen, ids, NC, 1.5, 1, 1, 1), -1);
    assert_int_equal(fedc_sample_clients(chosen, ids, NC, NAN, 1, 1, 1), -1);
    assert_int_equal(fedc_sample_clients(chosen, ids, NC, 0.5, -1, 1, 1), -1);
    assert_int_equal(fedc_sample_clients(chosen, ids, -1, 0.5, 1, 1, 1), -1);
    ids[5] = ids[20];
    assert_int_equal(fedc_sample_clients(chosen, ids, NC, 0.5, 1, 1, 1), -1);
}

/* ---- Federated evaluation ------------------------------------------------------------------ */

static fedc_eval_acc *eval_acc(int task, int k, uint32_t bins) {
    fedc_eval_acc *a = NULL;
    assert_int_equal(fedc_eval_acc_new(&a, task, k, bins), FEDC_OK);
    assert_non_null(a);
    return a;
}

/* Scores informative of the label: p = sigmoid(2 (2y - 1) + 1.5 z) with z standard normal,
 * rounded to float; about 10% positives; a few exact 0, 1 and ties. */
static void binary_data(fedc_rng *r, float *p, float *y, int n) {
    for (int i = 0; i < n; i++) {
        y[i] = fedc_rng_uniform(r) < 0.1f ? 1.0f : 0.0f;
        double s = 2.0 * (2.0 * y[i] - 1.0) + 1.5 * fedc_rng_normal(r);
        p[i] = (float)(1.0 / (1.0 + exp(-s)));
    }
    p[0] = 0.0f;
    p[1] = 1.0f;
    p[2] = p[3] = 0.5f;
}

/* Binned ROC-AUC and PR-AUC agree with core/nn's exact ones within 1e-3 at 10000 bins; counts,
 * precision, recall, F1, accuracy and log loss agree exactly (or to rounding). */
static void test_eval_binary_matches_exact(void **state) {
    (void)state;
    const int n = 20000;
    const float thr = 0.4f;
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(31, 32, 33, 34));
    float *p = malloc((size_t)n * sizeof *p), *y = malloc((size_t)n * sizeof *y);
    binary_data(&r, p, y, n);
    fedc_binary_metrics m;
    assert_int_equal(fedc_metrics_binary(&m, p, y, n, thr), FEDC_OK);
    fedc_eval_acc *a = eval_acc(FEDC_TASK_BINARY, 2, FEDC_EVAL_BINS);
    fedc_eval_acc_add(a, p, y, n, thr);
    fedc_eval_summary s;
    fedc_eval_acc_summary(a, &s);
    assert_true(s.n == (uint64_t)n);
    assert_near(s.roc_auc, m.roc_auc, 1e-3);
    assert_near(s.pr_auc, m.pr_auc, 1e-3);
    assert_true(a->tp == (uint64_t)m.tp && a->fp == (uint64_t)m.fp);
    assert_true(a->tn == (uint64_t)m.tn && a->fn == (uint64_t)m.fn);
    assert_rel(s.precision, m.precision, 1e-15);
    assert_rel(s.recall, m.recall, 1e-15);
    assert_rel(s.f1, m.f1, 1e-15);
    assert_rel(s.accuracy, m.accuracy, 1e-15);
    assert_rel(s.loss, m.log_loss, 1e-12);
    assert_true(isnan(s.macro_f1) && isnan(s.rmse) && isnan(s.r2));
    fedc_eval_acc_destroy(&a);
    assert_null(a);
    free(p);
    free(y);
}

/* Hand example at 10 bins: negatives 0.05 (bin 0) and 0.15 (bin 1), positives 0.12 (bin 1) and
 * 0.95 (bin 9). ROC-AUC: the bin-1 positive beats the bin-0 negative and ties the bin-1 one:
 * 1 + 1/2; the bin-9 positive beats both: 2; (3.5) / (2 * 2) = 0.875 (the exact value is 0.75:
 * 0.12 < 0.15). AP: bin 9: R 1/2, P 1 -> 1/2; bin 1: R 1, P 2/3 -> 1/3; AP = 5/6. */
static void test_eval_binned_hand_example(void **state) {
    (void)state;
    const float p[] = {0.05f, 0.12f, 0.15f, 0.95f};
    const float y[] = {0, 1, 0, 1};
    fedc_eval_acc *a = eval_acc(FEDC_TASK_BINARY, 2, 10);
    fedc_eval_acc_add(a, p, y, 4, 0.5f);
    assert_true(a->hist_neg[0] == 1 && a->hist_neg[1] == 1);
    assert_true(a->hist_pos[1] == 1 && a->hist_pos[9] == 1);
    fedc_eval_summary s;
    fedc_eval_acc_summary(a, &s);
    assert_near(s.roc_auc, 0.875, 1e-15);
    assert_near(s.pr_auc, 5.0 / 6.0, 1e-15);
    /* At 0.5 only 0.95 is positive: TP 1, FN 1, TN 2: precision 1, recall 1/2, F1 2/3. */
    assert_near(s.precision, 1.0, 0.0);
    assert_near(s.recall, 0.5, 0.0);
    assert_near(s.f1, 2.0 / 3.0, 1e-15);
    assert_near(s.accuracy, 0.75, 0.0);

    /* Out-of-range and NaN scores land in the end bins; a single class leaves ROC-AUC NaN. */
    const float q[] = {-0.5f, NAN, 1.0f, 7.0f};
    const float neg[] = {0, 0, 0, 0};
    fedc_eval_acc_reset(a);
    fedc_eval_acc_add(a, q, neg, 4, 0.5f);
    assert_true(a->hist_neg[0] == 2 && a->hist_neg[9] == 2);
    fedc_eval_acc_summary(a, &s);
    assert_true(isnan(s.roc_auc) && isnan(s.pr_auc));
    assert_near(s.recall, 0.0, 0.0);
    fedc_eval_acc_destroy(&a);
}

/* Merging the accumulators of two halves equals adding everything into one: counts and
 * histograms exactly, double sums to rounding. Per task. */
static void test_eval_merge_halves(void **state) {
    (void)state;
    const int n = 5001, h = 2345, k = 4;
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(41, 42, 43, 44));
    float *p = malloc((size_t)n * (size_t)k * sizeof *p), *y = malloc((size_t)n * sizeof *y);
    const int tasks[] = {FEDC_TASK_BINARY, FEDC_TASK_MULTICLASS, FEDC_TASK_REGRESSION};
    const int classes[] = {2, k, 1};
    for (int t = 0; t < 3; t++) {
        const int task = tasks[t], kk = classes[t];
        const int width = task == FEDC_TASK_MULTICLASS ? k : 1;
        if (task == FEDC_TASK_BINARY) {
            binary_data(&r, p, y, n);
        } else {
            for (int i = 0; i < n * width; i++)
                p[i] = fedc_rng_uniform(&r);
            for (int i = 0; i < n; i++)
                y[i] = task == FEDC_TASK_MULTICLASS ? (float)fedc_rng_below(&r, (uint32_t)k)
                                                    : 3.0f * fedc_rng_normal(&r);
        }
        fedc_eval_acc *all = eval_acc(task, kk, FEDC_EVAL_BINS);
        fedc_eval_acc *a = eval_acc(task, kk, FEDC_EVAL_BINS);
        fedc_eval_acc *b = eval_acc(task, kk, FEDC_EVAL_BINS);
        fedc_eval_acc_add(all, p, y, n, 0.3f);
        fedc_eval_acc_add(a, p, y, h, 0.3f);
        fedc_eval_acc_add(b, p + (size_t)h * (size_t)width, y + h, n - h, 0.3f);
        assert_int_equal(fedc_eval_acc_merge(a, b), FEDC_OK);
        assert_true(a->n == all->n);
        assert_true(a->tp == all->tp && a->fp == all->fp && a->tn == all->tn && a->fn == all->fn);
        assert_int_equal(a->bins, all->bins);
        if (all->bins) {
            assert_memory_equal(a->hist_pos, all->hist_pos, all->bins * sizeof(uint64_t));
            assert_memory_equal(a->hist_neg, all->hist_neg, all->bins * sizeof(uint64_t));
        }
        if (all->confusion)
            assert_memory_equal(a->confusion, all->confusion, (size_t)(kk * kk) * sizeof(uint64_t));
        assert_rel(a->loss_sum, all->loss_sum, 1e-12);
        assert_rel(a->sse, all->sse, 1e-12);
        assert_near(a->sum_y, all->sum_y, 1e-12 * fmax(1.0, all->sum_y2));
        assert_rel(a->sum_y2, all->sum_y2, 1e-12);
        fedc_eval_summary sa, sall;
        fedc_eval_acc_summary(a, &sa);
        fedc_eval_acc_summary(all, &sall);
        assert_true(sa.n == sall.n);
        if (task == FEDC_TASK_BINARY) {
            assert_memory_equal(&sa.roc_auc, &sall.roc_auc, sizeof(double));
            assert_memory_equal(&sa.pr_auc, &sall.pr_auc, sizeof(double));
            assert_memory_equal(&sa.f1, &sall.f1, sizeof(double));
        } else if (task == FEDC_TASK_MULTICLASS) {
            assert_memory_equal(&sa.accuracy, &sall.accuracy, sizeof(double));
            assert_memory_equal(&sa.macro_f1, &sall.macro_f1, sizeof(double));
        } else {
            assert_rel(sa.rmse, sall.rmse, 1e-12);
            assert_rel(sa.r2, sall.r2, 1e-12);
        }
        assert_rel(sa.loss, sall.loss, 1e-12);
        fedc_eval_acc_destroy(&all);
        fedc_eval_acc_destroy(&a);
        fedc_eval_acc_destroy(&b);
    }
    free(p);
    free(y);
}

/* Multiclass accuracy, macro-F1 and log loss equal fedc_metrics_multiclass; computed from a
 * merge of three clients. One class is never predicted, to exercise the F1-of-0 rule. */
static void test_eval_multiclass_matches_nn(void **state) {
    (void)state;
    const int n = 3000, k = 5;
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(51, 52, 53, 54));
    float *p = malloc((size_t)n * (size_t)k * sizeof *p), *y = malloc((size_t)n * sizeof *y);
    for (int i = 0; i < n; i++) {
        int label = (int)fedc_rng_below(&r, (uint32_t)k);
        y[i] = (float)label;
        float sum = 0.0f, *row = p + (size_t)i * (size_t)k;
        for (int c = 0; c < k; c++) {
            row[c] = fedc_rng_uniform(&r) + (c == label ? 0.6f : 0.0f);
            if (c == 4)
                row[c] = 0.0f; /* class 4 is never predicted */
            sum += row[c];
        }
        for (int c = 0; c < k; c++)
            row[c] /= sum;
    }
    fedc_multiclass_metrics m;
    fedc_metrics_multiclass(&m, p, y, n, k);
    fedc_eval_acc *total = eval_acc(FEDC_TASK_MULTICLASS, k, 0);
    const int cut[] = {0, 1000, 1800, n};
    for (int c = 0; c < 3; c++) {
        fedc_eval_acc *client = eval_acc(FEDC_TASK_MULTICLASS, k, 0);
        fedc_eval_acc_add(client, p + (size_t)cut[c] * (size_t)k, y + cut[c], cut[c + 1] - cut[c],
                          0.5f);
        assert_int_equal(fedc_eval_acc_merge(total, client), FEDC_OK);
        fedc_eval_acc_destroy(&client);
    }
    fedc_eval_summary s;
    fedc_eval_acc_summary(total, &s);
    assert_true(s.n == (uint64_t)n);
    assert_rel(s.accuracy, m.accuracy, 1e-9);
    assert_rel(s.macro_f1, m.macro_f1, 1e-9);
    assert_rel(s.loss, m.log_loss, 1e-9);
    assert_true(s.macro_f1 < s.accuracy); /* class 4's F1 of 0 pulls the mean down */
    assert_true(isnan(s.roc_auc) && isnan(s.precision) && isnan(s.rmse));
    fedc_eval_acc_destroy(&total);
    free(p);
    free(y);
}

/* Regression RMSE and R^2 equal fedc_metrics_regression (targets with mean 5 and sd 3, so the
 * one-pass variance loses little); the loss is the mean squared error; a constant target gives
 * R^2 NaN as in core/nn. */
static void test_eval_regression_matches_nn(void **state) {
    (void)state;
    const int n = 4000;
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(61, 62, 63, 64));
    float *pred = malloc((size_t)n * sizeof *pred), *y = malloc((size_t)n * sizeof *y);
    for (int i = 0; i < n; i++) {
        y[i] = 5.0f + 3.0f * fedc_rng_normal(&r);
        pred[i] = y[i] + 0.8f * fedc_rng_normal(&r);
    }
    fedc_regression_metrics m;
    fedc_metrics_regression(&m, pred, y, n);
    fedc_eval_acc *a = eval_acc(FEDC_TASK_REGRESSION, 1, 0);
    fedc_eval_acc *b = eval_acc(FEDC_TASK_REGRESSION, 1, 0);
    fedc_eval_acc_add(a, pred, y, 1500, 0.0f);
    fedc_eval_acc_add(b, pred + 1500, y + 1500, n - 1500, 0.0f);
    assert_int_equal(fedc_eval_acc_merge(a, b), FEDC_OK);
    fedc_eval_summary s;
    fedc_eval_acc_summary(a, &s);
    assert_rel(s.rmse, m.rmse, 1e-9);
    assert_rel(s.r2, m.r2, 1e-9);
    assert_rel(s.loss, m.rmse * m.rmse, 1e-9);
    assert_true(s.r2 > 0.8 && s.r2 < 1.0);
    assert_true(isnan(s.accuracy) && isnan(s.roc_auc));

    /* Targets far from 0 (mean 100, sd 1) cost the one-pass variance about 13 bits, which
     * still leaves R^2 within 1e-9; an overcautious constancy test would give NaN here. */
    for (int i = 0; i < n; i++) {
        y[i] = 100.0f + fedc_rng_normal(&r);
        pred[i] = y[i] + 0.3f * fedc_rng_normal(&r);
    }
    fedc_metrics_regression(&m, pred, y, n);
    fedc_eval_acc_reset(a);
    fedc_eval_acc_add(a, pred, y, n, 0.0f);
    fedc_eval_acc_summary(a, &s);
    assert_rel(s.r2, m.r2, 1e-9);
    assert_rel(s.rmse, m.rmse, 1e-9);

    for (int i = 0; i < n; i++)
        y[i] = 3.7f;
    fedc_metrics_regression(&m, pred, y, n);
    assert_true(isnan(m.r2));
    fedc_eval_acc_reset(a);
    fedc_eval_acc_add(a, pred, y, n, 0.0f);
    fedc_eval_acc_summary(a, &s);
    assert_true(isnan(s.r2));
    assert_rel(s.rmse, m.rmse, 1e-9);
    fedc_eval_acc_destroy(&a);
    fedc_eval_acc_destroy(&b);
    free(pred);
    free(y);
}

/* Invalid shapes, mismatched merges, the empty summary. */
static void test_eval_errors_and_empty(void **state) {
    (void)state;
    fedc_eval_acc *a = (fedc_eval_acc *)&a;
    assert_int_equal(fedc_eval_acc_new(&a, FEDC_TASK_BINARY, 3, FEDC_EVAL_BINS), FEDC_EINVAL);
    assert_null(a);
    assert_int_equal(fedc_eval_acc_new(&a, FEDC_TASK_BINARY, 2, 1), FEDC_EINVAL);
    assert_int_equal(fedc_eval_acc_new(&a, FEDC_TASK_BINARY, 2, FEDC_EVAL_BINS_MAX + 1),
                     FEDC_EINVAL);
    assert_int_equal(fedc_eval_acc_new(&a, FEDC_TASK_MULTICLASS, 1, 0), FEDC_EINVAL);
    assert_int_equal(fedc_eval_acc_new(&a, FEDC_TASK_MULTICLASS, FEDC_EVAL_MAX_CLASSES + 1, 0),
                     FEDC_EINVAL);
    assert_int_equal(fedc_eval_acc_new(&a, FEDC_TASK_REGRESSION, 2, 0), FEDC_EINVAL);
    assert_int_equal(fedc_eval_acc_new(&a, 7, 2, FEDC_EVAL_BINS), FEDC_EINVAL);

    fedc_eval_acc *bin = eval_acc(FEDC_TASK_BINARY, 2, FEDC_EVAL_BINS);
    fedc_eval_acc *bin2 = eval_acc(FEDC_TASK_BINARY, 2, 100);
    fedc_eval_acc *mc3 = eval_acc(FEDC_TASK_MULTICLASS, 3, 0);
    fedc_eval_acc *mc4 = eval_acc(FEDC_TASK_MULTICLASS, 4, 0);
    fedc_eval_acc *reg = eval_acc(FEDC_TASK_REGRESSION, 1, FEDC_EVAL_BINS); /* bins ignored */
    assert_int_equal(reg->bins, 0);
    assert_null(reg->hist_pos);
    const float p[] = {0.9f, 0.2f}, y[] = {1, 0};
    fedc_eval_acc_add(bin, p, y, 2, 0.5f);
    assert_int_equal(fedc_eval_acc_merge(bin, bin2), FEDC_EMISMATCH);
    assert_int_equal(fedc_eval_acc_merge(bin, reg), FEDC_EMISMATCH);
    assert_int_equal(fedc_eval_acc_merge(mc3, mc4), FEDC_EMISMATCH);
    assert_true(bin->n == 2 && bin->tp == 1 && bin->tn == 1);

    fedc_eval_summary s;
    fedc_eval_acc_summary(mc3, &s);
    assert_true(s.n == 0);
    assert_true(isnan(s.loss) && isnan(s.accuracy) && isnan(s.macro_f1) && isnan(s.roc_auc));
    fedc_eval_acc_add(mc3, p, y, 0, 0.5f); /* nothing to add */
    assert_true(mc3->n == 0);
    fedc_eval_acc_destroy(&bin);
    fedc_eval_acc_destroy(&bin2);
    fedc_eval_acc_destroy(&mc3);
    fedc_eval_acc_destroy(&mc4);
    fedc_eval_acc_destroy(&reg);
    fedc_eval_acc_destroy(NULL);
}

/* The alert-budget operating point from the summed histograms: 1000 rows, 10 bins; the top bins
 * hold 3 rows (2 fraud), 4 rows (1 fraud), then 50 rows. A budget of 0.5% (5 rows) takes the
 * top bin only; 1% (10 rows) takes two. */
static void test_eval_alert_budget(void **state) {
    (void)state;
    fedc_eval_acc *a = NULL;
    assert_int_equal(fedc_eval_acc_new(&a, FEDC_TASK_BINARY, 2, 10), FEDC_OK);
    a->n = 1000;
    a->hist_pos[9] = 2;
    a->hist_neg[9] = 1;
    a->hist_pos[8] = 1;
    a->hist_neg[8] = 3;
    a->hist_pos[7] = 5;
    a->hist_neg[7] = 45;
    a->hist_pos[0] = 12;
    a->hist_neg[0] = 931;
    double thr, share, prec, rec;
    fedc_eval_acc_budget(a, 0.005, &thr, &share, &prec, &rec);
    assert_true(fabs(thr - 0.9) < 1e-12 && fabs(share - 0.003) < 1e-12);
    assert_true(fabs(prec - 2.0 / 3.0) < 1e-12 && fabs(rec - 2.0 / 20.0) < 1e-12);
    fedc_eval_acc_budget(a, 0.01, &thr, &share, &prec, &rec);
    assert_true(fabs(thr - 0.8) < 1e-12 && fabs(share - 0.007) < 1e-12);
    assert_true(fabs(prec - 3.0 / 7.0) < 1e-12 && fabs(rec - 3.0 / 20.0) < 1e-12);
    /* A budget smaller than the top bin flags nothing. */
    fedc_eval_acc_budget(a, 0.001, &thr, &share, &prec, &rec);
    assert_true(thr == 1.0 && share == 0.0 && isnan(prec) && rec == 0.0);
    fedc_eval_acc_destroy(&a);
}

/* The one L2 clip: the norm of a 3-4-5 vector, no change within the bound, scaling beyond it to
 * the bound (within float rounding), the norm reported before clipping, an empty vector. */
static void test_l2_clip(void **state) {
    (void)state;
    float v[2] = {3.0f, 4.0f};
    double norm = -1;
    assert_true(fabs(fedc_l2_norm(v, 2) - 5.0) < 1e-12);
    assert_int_equal(fedc_l2_clip(v, 2, 10.0, &norm), 1);
    assert_true(fabs(norm - 5.0) < 1e-12);
    assert_true(v[0] == 3.0f && v[1] == 4.0f);
    assert_int_equal(fedc_l2_clip(v, 2, 1.0, &norm), 0);
    assert_true(fabs(norm - 5.0) < 1e-12);
    assert_true(fabs(v[0] - 0.6f) < 1e-6f && fabs(v[1] - 0.8f) < 1e-6f);
    assert_true(fedc_l2_norm(v, 2) <= 1.0 + 1e-6);
    assert_int_equal(fedc_l2_clip(v, 0, 1.0, &norm), 1);
    assert_true(norm == 0.0);
    /* A long vector: after clipping the norm is the bound, the direction kept. */
    enum { N = 10007 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = y[i] = (float)sin(0.37 * i) * (float)(1 + i % 7);
    double before = fedc_l2_norm(x, N);
    assert_int_equal(fedc_l2_clip(x, N, 2.5, NULL), 0);
    assert_true(fabs(fedc_l2_norm(x, N) - 2.5) <= 2.5 * 1e-6);
    for (int i = 0; i < N; i += 997)
        assert_true(fabs((double)x[i] - (double)y[i] * 2.5 / before) <= 1e-6 * fabs(y[i]) + 1e-9);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_alert_budget),
        cmocka_unit_test(test_l2_clip),
        cmocka_unit_test(test_accum_single_roundtrip),
        cmocka_unit_test(test_accum_weighted_mean),
        cmocka_unit_test(test_accum_order_independent),
        cmocka_unit_test(test_accum_refusals),
        cmocka_unit_test(test_accum_range_sq),
        cmocka_unit_test(test_accum_exact_both_paths),
        cmocka_unit_test(test_accum_headroom),
        cmocka_unit_test(test_accum_lifecycle),
        cmocka_unit_test(test_server_fedavg),
        cmocka_unit_test(test_server_fedavgm),
        cmocka_unit_test(test_server_fedadam),
        cmocka_unit_test(test_server_names_and_config),
        cmocka_unit_test(test_sample_basic),
        cmocka_unit_test(test_sample_determinism),
        cmocka_unit_test(test_sample_counts),
        cmocka_unit_test(test_sample_invalid),
        cmocka_unit_test(test_eval_binary_matches_exact),
        cmocka_unit_test(test_eval_binned_hand_example),
        cmocka_unit_test(test_eval_merge_halves),
        cmocka_unit_test(test_eval_multiclass_matches_nn),
        cmocka_unit_test(test_eval_regression_matches_nn),
        cmocka_unit_test(test_eval_errors_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
