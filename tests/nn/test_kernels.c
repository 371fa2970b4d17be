/* Fast kernels against their naive twins on random shapes (odd sizes, transposed operands,
 * bias, accumulation), for every instruction set this CPU has, and the same results for any
 * thread count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fedc/kernels.h"
#include "fedc/rng.h"

static float *rand_buf(fedc_rng *r, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = 2.0f * fedc_rng_uniform(r) - 1.0f;
    return p;
}

/* One random product, checked against the reference within a bound derived from the magnitude
 * of the terms: |fast - ref| <= 4 k eps sum_p |a||b| (two different float summations). */
static void check_gemm(fedc_isa isa, fedc_rng *r, int m, int n, int k, int transposed_a,
                       int with_bias, int accumulate, int tight) {
    int rsa = transposed_a ? 1 : k, csa = transposed_a ? m : 1;
    int ldb = n + (tight ? 0 : (int)fedc_rng_below(r, 3));
    int ldc = n + (tight ? 0 : (int)fedc_rng_below(r, 3));
    float *a = rand_buf(r, (size_t)m * k), *b = rand_buf(r, (size_t)k * ldb);
    float *bias = with_bias ? rand_buf(r, (size_t)n) : NULL;
    float *c = rand_buf(r, (size_t)m * ldc), *cref = malloc((size_t)m * ldc * sizeof(float));
    assert_non_null(cref);
    memcpy(cref, c, (size_t)m * ldc * sizeof(float));
    fedc_gemm_isa(isa, c, a, b, bias, m, n, k, rsa, csa, ldb, ldc, accumulate);
    fedc_gemm_ref(cref, a, b, bias, m, n, k, rsa, csa, ldb, ldc, accumulate);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double mag = 1.0;
            for (int p = 0; p < k; p++)
                mag += fabs((double)a[(size_t)i * rsa + (size_t)p * csa] * b[(size_t)p * ldb + j]);
            double err = fabs((double)c[(size_t)i * ldc + j] - cref[(size_t)i * ldc + j]);
            if (err > 4.0 * (k + 1) * 1.2e-7 * mag) {
                fail_msg("%s gemm m=%d n=%d k=%d tA=%d bias=%d acc=%d: C[%d][%d] = %g, ref %g",
                         fedc_isa_name(isa), m, n, k, transposed_a, with_bias, accumulate, i, j,
                         (double)c[(size_t)i * ldc + j], (double)cref[(size_t)i * ldc + j]);
            }
        }
    /* Padding columns between n and ldc must be untouched. */
    for (int i = 0; i < m; i++)
        for (int j = n; j < ldc; j++)
            assert_true(c[(size_t)i * ldc + j] == cref[(size_t)i * ldc + j]);
    free(a);
    free(b);
    free(bias);
    free(c);
    free(cref);
}

static void test_gemm_matches_reference(void **state) {
    (void)state;
    fedc_rng r;
    fedc_rng_init(&r, 12345);
    for (int isa = FEDC_ISA_GENERIC; isa <= (int)fedc_isa_detect(); isa++) {
        /* Edge shapes: single elements, widths around the tile sizes, the output layer (n = 1). */
        static const int shapes[][3] = {{1, 1, 1},    {1, 1, 33},   {256, 1, 32}, {30, 64, 256},
                                        {7, 17, 5},   {8, 32, 8},   {9, 33, 3},   {6, 16, 1},
                                        {13, 15, 64}, {64, 48, 30}, {3, 100, 7},  {100, 3, 7}};
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int t = 0; t < 8; t++)
                check_gemm((fedc_isa)isa, &r, shapes[s][0], shapes[s][1], shapes[s][2], t & 1,
                           (t >> 1) & 1, (t >> 2) & 1, 0);
        /* One output column with packed operands takes the matrix-vector kernels. */
        for (int mm = 1; mm <= 70; mm += 3)
            for (int t = 0; t < 8; t++)
                check_gemm((fedc_isa)isa, &r, mm, 1, 1 + (int)fedc_rng_below(&r, 300), t & 1,
                           (t >> 1) & 1, (t >> 2) & 1, 1);
        for (int it = 0; it < 150; it++) {
            int m = 1 + (int)fedc_rng_below(&r, 70), n = 1 + (int)fedc_rng_below(&r, 70);
            int k = 1 + (int)fedc_rng_below(&r, 70);
            check_gemm((fedc_isa)isa, &r, m, n, k, (int)fedc_rng_below(&r, 2),
                       (int)fedc_rng_below(&r, 2), (int)fedc_rng_below(&r, 2),
                       (int)fedc_rng_below(&r, 2));
        }
    }
}

/* The same product computed by 1, 2 and 3 threads must give identical bits. */
static void test_gemm_thread_invariant(void **state) {
    (void)state;
#ifdef _OPENMP
    fedc_rng r;
    fedc_rng_init(&r, 99);
    static const int shapes[][3] = {
        {64, 33, 30}, {37, 256, 19}, {256, 1, 32}, {30, 64, 257}, {100, 1, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = rand_buf(&r, (size_t)m * k), *b = rand_buf(&r, (size_t)k * n);
        float *bias = rand_buf(&r, (size_t)n);
        for (int tr = 0; tr < 2; tr++) {
            float *c[3];
            int rsa = tr ? 1 : k, csa = tr ? m : 1;
            for (int t = 0; t < 3; t++) {
                c[t] = calloc((size_t)m * n, sizeof(float));
                assert_non_null(c[t]);
                int used = 0;
#pragma omp parallel num_threads(t + 1)
                {
#pragma omp master
                    used = omp_get_num_threads();
                    fedc_gemm(c[t], a, b, bias, m, n, k, rsa, csa, n, n, 0);
                }
                assert_int_equal(used, t + 1);
            }
            assert_memory_equal(c[0], c[1], (size_t)m * n * sizeof(float));
            assert_memory_equal(c[0], c[2], (size_t)m * n * sizeof(float));
            for (int t = 0; t < 3; t++)
                free(c[t]);
        }
        free(a);
        free(b);
        free(bias);
    }
#else
    skip();
#endif
}

static void test_transpose_and_colsum(void **state) {
    (void)state;
    fedc_rng r;
    fedc_rng_init(&r, 7);
    for (int it = 0; it < 60; it++) {
        int rows = 1 + (int)fedc_rng_below(&r, 90), cols = 1 + (int)fedc_rng_below(&r, 90);
        float *in = rand_buf(&r, (size_t)rows * cols);
        float *o1 = malloc((size_t)rows * cols * sizeof(float));
        float *o2 = malloc((size_t)rows * cols * sizeof(float));
        assert_non_null(o1);
        assert_non_null(o2);
#pragma omp parallel num_threads(2)
        fedc_transpose(o1, in, rows, cols);
        fedc_transpose_ref(o2, in, rows, cols);
        assert_memory_equal(o1, o2, (size_t)rows * cols * sizeof(float));
        /* Spot check the reference itself. */
        assert_true(o2[(size_t)(cols - 1) * rows + 0] == in[cols - 1]);
#pragma omp parallel num_threads(2)
        fedc_colsum(o1, in, rows, cols);
        fedc_colsum_ref(o2, in, rows, cols);
        assert_memory_equal(o1, o2, (size_t)cols * sizeof(float));
        double s = 0.0;
        for (int i = 0; i < rows; i++)
            s += in[(size_t)i * cols];
        assert_true(fabs(s - o2[0]) <= 1e-5 * rows);
        free(in);
        free(o1);
        free(o2);
    }
}

/* The epilogue sees every element of C exactly once, after the element is final. */
typedef struct count_ctx {
    int *count;
    const float *c;
    float *seen; /* what the epilogue saw; must equal the final C */
    int ldc;
    int stale;
} count_ctx;

static void count_epilogue(const fedc_epilogue *e, int i0, int i1, int j0, int j1) {
    count_ctx *cc = e->ctx;
    for (int i = i0; i < i1; i++)
        for (int j = j0; j < j1; j++) {
#pragma omp atomic
            cc->count[i * cc->ldc + j]++;
            cc->seen[i * cc->ldc + j] = cc->c[i * cc->ldc + j];
            if (cc->c[i * cc->ldc + j] == -12345.0f) {
#pragma omp atomic write
                cc->stale = 1;
            }
        }
}

static void test_gemm_epilogue_covers_tiles(void **state) {
    (void)state;
    fedc_rng r;
    fedc_rng_init(&r, 5);
    /* k > 256 takes several passes over C: the epilogue must run after the last one only. */
    static const int shapes[][3] = {{1, 1, 1},     {64, 1, 32}, {37, 45, 11},
                                    {256, 256, 8}, {9, 1, 5},   {20, 40, 700}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        for (int tr = 0; tr < 2; tr++) {
            float *a = rand_buf(&r, (size_t)m * k), *b = rand_buf(&r, (size_t)k * n);
            float *c = malloc((size_t)m * n * sizeof(float));
            int *count = calloc((size_t)m * n, sizeof(int));
            float *seen = calloc((size_t)m * n, sizeof(float));
            assert_non_null(seen);
            assert_non_null(c);
            assert_non_null(count);
            for (int i = 0; i < m * n; i++)
                c[i] = -12345.0f; /* a value the product cannot produce from these inputs */
            count_ctx cc = {count, c, seen, n, 0};
            fedc_epilogue e = {count_epilogue, &cc};
#pragma omp parallel num_threads(2)
            fedc_gemm_ex(c, a, b, NULL, m, n, k, tr ? 1 : k, tr ? m : 1, n, n, 0, &e, 1);
            for (int i = 0; i < m * n; i++)
                assert_int_equal(count[i], 1);
            assert_int_equal(cc.stale, 0);
            assert_memory_equal(seen, c, (size_t)m * n * sizeof(float));
            free(seen);
            free(a);
            free(b);
            free(c);
            free(count);
        }
    }
}

static void test_isa_detection(void **state) {
    (void)state;
    fedc_isa isa = fedc_isa_detect();
    assert_true(fedc_isa_active() <= isa);
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("fma"))
        assert_int_equal(isa, FEDC_ISA_AVX512);
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        assert_int_equal(isa, FEDC_ISA_AVX2);
#endif
    printf("kernels: detected %s, active %s\n", fedc_isa_name(isa),
           fedc_isa_name(fedc_isa_active()));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_matches_reference),
        cmocka_unit_test(test_gemm_thread_invariant),
        cmocka_unit_test(test_transpose_and_colsum),
        cmocka_unit_test(test_gemm_epilogue_covers_tiles),
        cmocka_unit_test(test_isa_detection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
