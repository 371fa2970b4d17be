/* Tests for the counter-based generator in core/nn/rng: fixed test vectors (computed from the
 * formula in rng.h by an independent Python implementation), purity, distinctness, stream
 * derivation, and statistical checks whose tolerances are set from the standard error. All
 * seeds are fixed, so a statistical check either always passes or always fails. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "fedc/rng.h"

/* Fails with both numbers printed when |got - want| > tol. */
#define assert_near(got, want, tol) assert_near_at((got), (want), (tol), __FILE__, __LINE__)

static void assert_near_at(double got, double want, double tol, const char *file, int line) {
    if (!(fabs(got - want) <= tol)) {
        print_error("got %.17g, expected %.17g (tolerance %g)\n", got, want, tol);
        _fail(file, line);
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Returns 1 when v[0..n) holds no repeated value (sorts v). */
static int all_distinct(uint64_t *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    for (int i = 1; i < n; i++)
        if (v[i] == v[i - 1])
            return 0;
    return 1;
}

/* Pins the stream: a change to the mixer would silently change every seeded run. Values from a
 * Python transcription of the formula in rng.h (64-bit wrap-around by masking). */
static void test_at_vectors(void **state) {
    (void)state;
    assert_true(fedc_rng_at(0, 0) == 0xc9d9234c526c8200ULL);
    assert_true(fedc_rng_at(1, 0) == 0xe1e57f4b7df2d0d9ULL);
    assert_true(fedc_rng_at(0, 1) == 0x52956e960f450f3fULL);
    assert_true(fedc_rng_at(0x123456789abcdef0ULL, 42) == 0x807b4513fdf0cd06ULL);
    assert_true(fedc_rng_at(UINT64_MAX, UINT64_MAX) == 0x53f66ee035485fc6ULL);
    assert_true(fedc_rng_key(7, 1, 2, 3) == 0xbf6127fd337ed736ULL);
}

/* Same (key, counter) gives the same value whatever was computed in between; nearby keys and
 * nearby counters give distinct values. */
static void test_at_pure_and_distinct(void **state) {
    (void)state;
    enum { N = 4096 };
    uint64_t first[64];
    for (int i = 0; i < 64; i++)
        first[i] = fedc_rng_at(0xabcdefULL + (uint64_t)i, (uint64_t)i * 3);
    for (int i = 63; i >= 0; i--)
        assert_true(fedc_rng_at(0xabcdefULL + (uint64_t)i, (uint64_t)i * 3) == first[i]);

    uint64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < N; i++) /* consecutive keys, same counter */
        v[i] = fedc_rng_at((uint64_t)i, 5);
    assert_true(all_distinct(v, N));
    for (int i = 0; i < N; i++) /* same key, consecutive counters */
        v[i] = fedc_rng_at(5, (uint64_t)i);
    assert_true(all_distinct(v, N));
    for (int i = 0; i < N; i++) /* the diagonal, where key + counter * gamma patterns could hide */
        v[i] = fedc_rng_at((uint64_t)i, (uint64_t)i);
    assert_true(all_distinct(v, N));
    free(v);

    /* Neighbouring keys are decorrelated: each output bit flips about half the time. */
    long flips = 0;
    for (uint64_t k = 0; k < 1000; k++)
        flips += __builtin_popcountll(fedc_rng_at(k, 0) ^ fedc_rng_at(k + 1, 0));
    /* 64000 bits, p = 1/2: mean 32000, sd sqrt(64000 / 4) = 126.5; 5 sd = 632. */
    assert_near((double)flips, 32000.0, 632.0);
}

/* fedc_rng_next walks the counter from 0, and the derived helpers agree with the pure form. */
static void test_next_matches_at(void **state) {
    (void)state;
    fedc_rng r;
    uint64_t key = 0x5eed;
    fedc_rng_init(&r, key);
    assert_true(r.counter == 0);
    for (uint64_t i = 0; i < 100; i++)
        assert_true(fedc_rng_next(&r) == fedc_rng_at(key, i));
    fedc_rng_init(&r, key);
    for (uint64_t i = 0; i < 100; i++)
        assert_true(fedc_rng_uniform(&r) == fedc_rng_uniform_at(key, i));
}

/* Keys for different stream identifiers differ, and the order of identifiers matters. */
static void test_key_derivation(void **state) {
    (void)state;
    enum { N = 8 };
    uint64_t v[N * N * N + 3];
    int m = 0;
    for (uint64_t a = 0; a < N; a++)
        for (uint64_t b = 0; b < N; b++)
            for (uint64_t c = 0; c < N; c++)
                v[m++] = fedc_rng_key(1, a, b, c);
    v[m++] = fedc_rng_key(2, 0, 0, 0);
    v[m++] = fedc_rng_key(3, 0, 0, 0);
    v[m++] = fedc_rng_key(0, 0, 0, 0);
    assert_true(fedc_rng_key(42, 1, 2, 3) == fedc_rng_key(42, 1, 2, 3));
    assert_true(all_distinct(v, m));
}

/* 1e5 uniforms: all in [0, 1); mean 1/2 within 5 standard errors (sd of U(0,1) is
 * sqrt(1/12)), variance 1/12 within 5 standard errors (Var of (U - 1/2)^2 is 1/80 - 1/144). */
static void test_uniform(void **state) {
    (void)state;
    enum { N = 100000 };
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(1, 2, 3, 4));
    double sum = 0.0, sum_sq = 0.0;
    float lo = 1.0f, hi = 0.0f;
    for (int i = 0; i < N; i++) {
        float u = fedc_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        sum += u;
        sum_sq += ((double)u - 0.5) * ((double)u - 0.5);
    }
    assert_near(sum / N, 0.5, 5.0 * sqrt(1.0 / 12.0 / N));
    assert_near(sum_sq / N, 1.0 / 12.0, 5.0 * sqrt((1.0 / 80.0 - 1.0 / 144.0) / N));
    assert_true(lo < 1e-3f && hi > 0.999f);
}

/* Chi-square of counts[0..k) against equal expected counts. */
static double chi_square(const long *counts, int k, long total) {
    double expect = (double)total / k, x2 = 0.0;
    for (int i = 0; i < k; i++)
        x2 += ((double)counts[i] - expect) * ((double)counts[i] - expect) / expect;
    return x2;
}

static void test_below_range(void **state) {
    (void)state;
    const uint32_t ns[] = {1, 2, 3, 7, 10, 1000, 0x80000001u, 0xfffffffeu, UINT32_MAX};
    fedc_rng r;
    fedc_rng_init(&r, 77);
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++)
        for (int i = 0; i < 20000; i++)
            assert_true(fedc_rng_below(&r, ns[t]) < ns[t]);
    fedc_rng_init(&r, 78);
    for (int i = 0; i < 100; i++)
        assert_int_equal(fedc_rng_below(&r, 1), 0);
}

/* 1e5 draws over 10 buckets: chi-square with 9 degrees of freedom has mean 9 and sd sqrt(18);
 * 45 is beyond p = 1e-6. */
static void test_below_uniform(void **state) {
    (void)state;
    enum { K = 10, N = 100000 };
    long counts[K] = {0};
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(9, 9, 9, 9));
    for (int i = 0; i < N; i++)
        counts[fedc_rng_below(&r, K)]++;
    assert_true(chi_square(counts, K, N) < 45.0);
}

/* Number of 32-bit draws x with floor(x * n / 2^32) = v: ceil((v + 1) 2^32 / n) - ceil(v 2^32 / n).
 * For n > 2^31 it is 1 or 2. */
static uint64_t preimages(uint64_t v, uint64_t n) {
    uint64_t hi = (((v + 1) << 32) + n - 1) / n, lo = ((v << 32) + n - 1) / n;
    return hi - lo;
}

/* No bias for a large n = 3 * 2^30, where 2^32 / n = 4/3 and bias would be largest:
 * - draws below 2^30 and at or above 2^31 are each 1/3 of the total. Reducing a 32-bit draw mod
 *   n would hit [0, 2^30) twice as often (fraction 1/2).
 * - the multiply-shift map gives 2^30 of the n values two preimages and the rest one. Uniform
 *   output lands on a two-preimage value with probability 2^30 / n = 1/3; multiply-shift without
 *   Lemire's rejection step lands there with probability 2 * 2^30 / 2^32 = 1/2.
 * sd of each fraction: sqrt(1/3 * 2/3 / N); tolerance 5 sd. */
static void test_below_large_n(void **state) {
    (void)state;
    enum { N = 100000 };
    const uint32_t n = 3u << 30;
    fedc_rng r;
    fedc_rng_init(&r, 4242);
    long low = 0, high = 0, doubled = 0;
    for (int i = 0; i < N; i++) {
        uint32_t v = fedc_rng_below(&r, n);
        assert_true(v < n);
        low += v < (1u << 30);
        high += v >= (2u << 30);
        doubled += preimages(v, n) == 2;
    }
    double se = sqrt(2.0 / 9.0 / N);
    assert_near((double)low / N, 1.0 / 3.0, 5.0 * se);
    assert_near((double)high / N, 1.0 / 3.0, 5.0 * se);
    assert_near((double)doubled / N, 1.0 / 3.0, 5.0 * se);
}

/* 1e5 normals: mean 0 within 5 standard errors (1 / sqrt(N)); variance 1 within 5 standard
 * errors (sd of z^2 is sqrt(2)); the fraction beyond |z| > 1.96 is 0.05 within 5 standard
 * errors (sqrt(0.05 * 0.95 / N)); every value finite. */
static void test_normal(void **state) {
    (void)state;
    enum { N = 100000 };
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(5, 6, 7, 8));
    double sum = 0.0, sum_sq = 0.0;
    long tails = 0;
    for (int i = 0; i < N; i++) {
        float z = fedc_rng_normal(&r);
        assert_true(isfinite(z));
        sum += z;
        sum_sq += (double)z * z;
        tails += fabs(z) > 1.96;
    }
    double mean = sum / N;
    assert_near(mean, 0.0, 5.0 / sqrt(N));
    assert_near(sum_sq / N - mean * mean, 1.0, 5.0 * sqrt(2.0 / N));
    assert_near((double)tails / N, 0.05, 5.0 * sqrt(0.05 * 0.95 / N));
}

/* Returns 1 when idx[0..n) is a permutation of 0..n-1. */
static int is_permutation(const int *idx, int n) {
    char *seen = calloc((size_t)n + 1, 1);
    int ok = seen != NULL;
    for (int i = 0; ok && i < n; i++) {
        if (idx[i] < 0 || idx[i] >= n || seen[idx[i]])
            ok = 0;
        else
            seen[idx[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_shuffle_permutation_and_key(void **state) {
    (void)state;
    enum { N = 1000 };
    int *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    const int sizes[] = {0, 1, 2, 10, N};
    fedc_rng r;
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int n = sizes[t];
        for (int i = 0; i < n; i++)
            a[i] = i;
        fedc_rng_init(&r, 11);
        fedc_rng_shuffle(&r, a, n);
        assert_true(is_permutation(a, n));
    }
    for (int i = 0; i < N; i++)
        a[i] = b[i] = c[i] = i;
    fedc_rng_init(&r, 1);
    fedc_rng_shuffle(&r, a, N);
    fedc_rng_init(&r, 1);
    fedc_rng_shuffle(&r, b, N);
    fedc_rng_init(&r, 2);
    fedc_rng_shuffle(&r, c, N);
    assert_memory_equal(a, b, N * sizeof *a);     /* same key, same order */
    assert_memory_not_equal(a, c, N * sizeof *a); /* another key, another order */
    int fixed = 0, moved = 0;
    for (int i = 0; i < N; i++) {
        fixed += a[i] == i;
        moved += a[i] != c[i];
    }
    /* A uniform permutation has 1 fixed point on average; two independent ones agree at about
     * 1 position. Either far above that means the shuffle barely shuffles. */
    assert_true(fixed < 10);
    assert_true(moved > N - 10);
    free(a);
    free(b);
    free(c);
}

/* All 6 orders of 3 elements are equally likely: 60000 shuffles, chi-square with 5 degrees of
 * freedom below 35 (p ~ 1.5e-6). An off-by-one in the swap range (Sattolo's algorithm, or
 * never swapping with itself) produces only the 2 cyclic orders and fails by a wide margin. */
static void test_shuffle_uniform(void **state) {
    (void)state;
    enum { N = 60000 };
    long counts[6] = {0};
    fedc_rng r;
    fedc_rng_init(&r, 31337);
    for (int t = 0; t < N; t++) {
        int idx[3] = {0, 1, 2};
        fedc_rng_shuffle(&r, idx, 3);
        counts[idx[0] * 2 + (idx[1] > idx[2])]++; /* first element, then order of the rest */
    }
    assert_true(chi_square(counts, 6, N) < 35.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_at_vectors),      cmocka_unit_test(test_at_pure_and_distinct),
        cmocka_unit_test(test_next_matches_at), cmocka_unit_test(test_key_derivation),
        cmocka_unit_test(test_uniform),         cmocka_unit_test(test_below_range),
        cmocka_unit_test(test_below_uniform),   cmocka_unit_test(test_below_large_n),
        cmocka_unit_test(test_normal),          cmocka_unit_test(test_shuffle_permutation_and_key),
        cmocka_unit_test(test_shuffle_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
