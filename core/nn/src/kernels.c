/* Kernel dispatch and the portable kernels.
 *
 * The matrix product is cut into a fixed grid of MR x NR tiles of C (the grid depends only on the
 * shape and the instruction set, never on the thread count); threads take whole tiles with a
 * static `omp for`. Inside a tile every element accumulates over k in order, so any thread split
 * gives the same bits. The instruction set is picked once at program start from a CPU check
 * (__builtin_cpu_supports), so one portable binary runs the AVX-512, AVX2 or generic code. */
#include "fedc/kernels.h"

#include <stdlib.h>
#include <string.h>

#include "kernels_internal.h"
#include "par.h"

#define KC 256 /* terms of the sum per pass over C; see gemm_run */
#define GMR FEDC__GENERIC_MR
#define GNR FEDC__GENERIC_NR

typedef float v4f __attribute__((vector_size(16)));

/* Portable tiles: plain C, separate multiply and add (no contraction under -std=c11). */
static void gemm_tiles_generic(float *restrict c, const float *restrict a, const float *restrict b,
                               const float *restrict bias, int m, int n, int k, int rsa, int csa,
                               int ldb, int ldc, int accumulate, int t0, int t1) {
    int mt = (m + GMR - 1) / GMR;
    for (int t = t0; t < t1; t++) {
        int i0 = (t % mt) * GMR, j0 = (t / mt) * GNR;
        int rows = m - i0 < GMR ? m - i0 : GMR;
        int cols = n - j0 < GNR ? n - j0 : GNR;
        float acc[GMR][GNR];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
                acc[r][j] =
                    accumulate ? c[(size_t)(i0 + r) * ldc + j0 + j] : (bias ? bias[j0 + j] : 0.0f);
        if (rows == GMR && cols == GNR) {
            /* Full tiles: 4-lane vectors (the GCC/Clang vector extension; SSE2 on x86-64) held in
             * registers; each lane still adds a * b in order of p. */
            v4f vacc[GMR][GNR / 4];
            for (int r = 0; r < GMR; r++)
                for (int v = 0; v < GNR / 4; v++)
                    memcpy(&vacc[r][v], &acc[r][4 * v], sizeof(v4f));
            for (int p = 0; p < k; p++) {
                const float *bp = b + (size_t)p * ldb + j0;
                v4f bv[GNR / 4];
                for (int v = 0; v < GNR / 4; v++)
                    memcpy(&bv[v], bp + 4 * v, sizeof(v4f));
                for (int r = 0; r < GMR; r++) {
                    float av = a[(size_t)(i0 + r) * rsa + (size_t)p * csa];
                    for (int v = 0; v < GNR / 4; v++)
                        vacc[r][v] += av * bv[v];
                }
            }
            for (int r = 0; r < GMR; r++)
                for (int v = 0; v < GNR / 4; v++)
                    memcpy(&acc[r][4 * v], &vacc[r][v], sizeof(v4f));
        } else {
            for (int p = 0; p < k; p++) {
                const float *bp = b + (size_t)p * ldb + j0;
                for (int r = 0; r < rows; r++) {
                    float av = a[(size_t)(i0 + r) * rsa + (size_t)p * csa];
                    for (int j = 0; j < cols; j++)
                        acc[r][j] += av * bp[j];
                }
            }
        }
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
                c[(size_t)(i0 + r) * ldc + j0 + j] = acc[r][j];
    }
}

static fedc_isa g_isa_detected = FEDC_ISA_GENERIC;
static fedc_isa g_isa_active = FEDC_ISA_GENERIC;

/* Runs before main (and before any thread exists), so the dispatch state is written once and
 * only read afterwards. */
__attribute__((constructor)) static void isa_init(void) {
    fedc_isa isa = FEDC_ISA_GENERIC;
#if defined(FEDC_X86_KERNELS)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        isa = FEDC_ISA_AVX2;
    if (isa == FEDC_ISA_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw"))
        isa = FEDC_ISA_AVX512;
#endif
    g_isa_detected = isa;
    g_isa_active = isa;
    const char *want = getenv("FEDC_ISA");
    if (want) {
        if (strcmp(want, "generic") == 0)
            g_isa_active = FEDC_ISA_GENERIC;
        else if (strcmp(want, "avx2") == 0 && isa >= FEDC_ISA_AVX2)
            g_isa_active = FEDC_ISA_AVX2;
    }
}

fedc_isa fedc_isa_detect(void) {
    return g_isa_detected;
}

fedc_isa fedc_isa_active(void) {
    return g_isa_active;
}

const char *fedc_isa_name(fedc_isa isa) {
    switch (isa) {
    case FEDC_ISA_AVX512:
        return "avx512";
    case FEDC_ISA_AVX2:
        return "avx2";
    case FEDC_ISA_GENERIC:
        return "generic";
    }
    return "unknown";
}

/* The product on tiles, with an optional epilogue per tile and an optional closing barrier. C is
 * not restrict-qualified here: epilogues read and write it through their own pointers. */
static void gemm_run(fedc_isa isa, float *c, const float *restrict a, const float *restrict b,
                     const float *restrict bias, int m, int n, int k, int rsa, int csa, int ldb,
                     int ldc, int accumulate, const fedc_epilogue *epi, int sync) {
    fedc__gemm_tiles_fn fn = gemm_tiles_generic;
    int mr = GMR, nr = GNR;
#if defined(FEDC_X86_KERNELS)
    if (isa > g_isa_detected)
        isa = g_isa_detected;
    if (isa == FEDC_ISA_AVX512 && n == 1 && ldb == 1 && (csa == 1 || (rsa == 1 && ldc == 1))) {
        /* One output column: matrix-vector kernels over fixed blocks of rows. */
        int blocks = (m + FEDC__GEMV_BLOCK - 1) / FEDC__GEMV_BLOCK;
        FEDC_OMP_FOR
        for (int t = 0; t < blocks; t++) {
            int r0 = t * FEDC__GEMV_BLOCK,
                r1 = r0 + FEDC__GEMV_BLOCK < m ? r0 + FEDC__GEMV_BLOCK : m;
            fedc__gemv_avx512(c, a, b, bias, k, rsa, csa, ldb, ldc, accumulate, r0, r1);
            if (epi)
                epi->fn(epi, r0, r1, 0, 1);
        }
        if (sync)
            fedc__sync();
        return;
    }
    if (isa == FEDC_ISA_AVX512) {
        fn = fedc__gemm_tiles_avx512;
        mr = FEDC__AVX512_MR;
        nr = FEDC__AVX512_NR;
    } else if (isa == FEDC_ISA_AVX2) {
        fn = fedc__gemm_tiles_avx2;
        mr = FEDC__AVX2_MR;
        nr = FEDC__AVX2_NR;
    }
#else
    (void)isa;
#endif
    const int mt = (m + mr - 1) / mr, tiles = mt * ((n + nr - 1) / nr);
    /* Long sums (the weight gradient over a large batch) run in passes of KC terms so that one
     * pass's slices of A and B stay in cache; C carries the partial sums between passes, which
     * keeps each element's order of additions. Every pass assigns the same tiles to the same
     * threads (same static schedule, same trip count), so no barrier is needed between them. */
    for (int k0 = 0; k0 == 0 || k0 < k; k0 += KC) {
        const int kk = k - k0 < KC ? k - k0 : KC, last = k0 + kk >= k;
        const float *ak = a + (size_t)k0 * csa, *bk = b + (size_t)k0 * ldb;
        FEDC_OMP_FOR
        for (int t = 0; t < tiles; t++) {
            fn(c, ak, bk, k0 ? NULL : bias, m, n, kk, rsa, csa, ldb, ldc, accumulate || k0, t,
               t + 1);
            if (epi && last) {
                /* The same tile geometry as the tile functions: column tiles outer. */
                int i0 = (t % mt) * mr, j0 = (t / mt) * nr;
                epi->fn(epi, i0, i0 + mr < m ? i0 + mr : m, j0, j0 + nr < n ? j0 + nr : n);
            }
        }
    }
    if (sync)
        fedc__sync();
}

void fedc_gemm_isa(fedc_isa isa, float *restrict c, const float *restrict a,
                   const float *restrict b, const float *restrict bias, int m, int n, int k,
                   int rsa, int csa, int ldb, int ldc, int accumulate) {
    gemm_run(isa, c, a, b, bias, m, n, k, rsa, csa, ldb, ldc, accumulate, NULL, 1);
}

void fedc_gemm(float *restrict c, const float *restrict a, const float *restrict b,
               const float *restrict bias, int m, int n, int k, int rsa, int csa, int ldb, int ldc,
               int accumulate) {
    gemm_run(g_isa_active, c, a, b, bias, m, n, k, rsa, csa, ldb, ldc, accumulate, NULL, 1);
}

void fedc_gemm_ex(float *c, const float *restrict a, const float *restrict b,
                  const float *restrict bias, int m, int n, int k, int rsa, int csa, int ldb,
                  int ldc, int accumulate, const fedc_epilogue *epi, int sync) {
    gemm_run(g_isa_active, c, a, b, bias, m, n, k, rsa, csa, ldb, ldc, accumulate, epi, sync);
}

void fedc_team_sync(void) {
    fedc__sync();
}

void fedc_gemm_ref(float *c, const float *a, const float *b, const float *bias, int m, int n, int k,
                   int rsa, int csa, int ldb, int ldc, int accumulate) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float s = accumulate ? c[(size_t)i * ldc + j] : (bias ? bias[j] : 0.0f);
            for (int p = 0; p < k; p++)
                s += a[(size_t)i * rsa + (size_t)p * csa] * b[(size_t)p * ldb + j];
            c[(size_t)i * ldc + j] = s;
        }
}

/* Blocked so that both the reads and the writes stay within a few cache lines per block. */
#define TB 32
void fedc_transpose(float *restrict out, const float *restrict in, int rows, int cols) {
    fedc_transpose_nosync(out, in, rows, cols);
    fedc__sync();
}

void fedc_transpose_nosync(float *restrict out, const float *restrict in, int rows, int cols) {
    int rb = (rows + TB - 1) / TB, cb = (cols + TB - 1) / TB;
    FEDC_OMP_FOR
    for (int t = 0; t < rb * cb; t++) {
        int i0 = (t / cb) * TB, j0 = (t % cb) * TB;
        int i1 = i0 + TB < rows ? i0 + TB : rows, j1 = j0 + TB < cols ? j0 + TB : cols;
        for (int j = j0; j < j1; j++)
            for (int i = i0; i < i1; i++)
                out[(size_t)j * rows + i] = in[(size_t)i * cols + j];
    }
}

void fedc_transpose_ref(float *out, const float *in, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            out[(size_t)j * rows + i] = in[(size_t)i * cols + j];
}

/* Columns are split into fixed chunks of 64; each column sums its rows in order. */
#define CS 64
void fedc_colsum(float *restrict out, const float *restrict in, int rows, int cols) {
    fedc_colsum_nosync(out, in, rows, cols);
    fedc__sync();
}

void fedc_colsum_nosync(float *restrict out, const float *restrict in, int rows, int cols) {
    fedc_colsum_acc_nosync(out, in, rows, cols, 0);
}

void fedc_colsum_acc_nosync(float *restrict out, const float *restrict in, int rows, int cols,
                            int accumulate) {
    int chunks = (cols + CS - 1) / CS;
    FEDC_OMP_FOR
    for (int t = 0; t < chunks; t++) {
        int j0 = t * CS, j1 = j0 + CS < cols ? j0 + CS : cols;
        if (!accumulate)
            for (int j = j0; j < j1; j++)
                out[j] = 0.0f;
        for (int i = 0; i < rows; i++) {
            const float *row = in + (size_t)i * cols;
            for (int j = j0; j < j1; j++)
                out[j] += row[j];
        }
    }
}

void fedc_colsum_ref(float *out, const float *in, int rows, int cols) {
    for (int j = 0; j < cols; j++) {
        float s = 0.0f;
        for (int i = 0; i < rows; i++)
            s += in[(size_t)i * cols + j];
        out[j] = s;
    }
}
