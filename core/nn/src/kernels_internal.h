/* Internal: the per-instruction-set matrix-product entry points. Each one computes the tiles
 * [t0, t1) of the fixed tiling of C (see kernels.c), so the caller owns the thread split. */
#ifndef FEDC_KERNELS_INTERNAL_H
#define FEDC_KERNELS_INTERNAL_H

/* Tile shape of each instruction set: MR rows of C by NR columns. */
#define FEDC__AVX512_MR 8
#define FEDC__AVX512_NR 32
#define FEDC__AVX2_MR 6
#define FEDC__AVX2_NR 16
#define FEDC__GENERIC_MR 6
#define FEDC__GENERIC_NR 8

typedef void (*fedc__gemm_tiles_fn)(float *restrict c, const float *restrict a,
                                    const float *restrict b, const float *restrict bias, int m,
                                    int n, int k, int rsa, int csa, int ldb, int ldc,
                                    int accumulate, int t0, int t1);

void fedc__gemm_tiles_avx512(float *restrict c, const float *restrict a, const float *restrict b,
                             const float *restrict bias, int m, int n, int k, int rsa, int csa,
                             int ldb, int ldc, int accumulate, int t0, int t1);
void fedc__gemm_tiles_avx2(float *restrict c, const float *restrict a, const float *restrict b,
                           const float *restrict bias, int m, int n, int k, int rsa, int csa,
                           int ldb, int ldc, int accumulate, int t0, int t1);

/* n == 1 products with AVX-512 (see kernels_avx512.c): rows [r0, r1) of C. Requires ldb == 1,
 * and either csa == 1 or (rsa == 1 and ldc == 1); r0 a multiple of FEDC__GEMV_BLOCK. */
#define FEDC__GEMV_BLOCK 32
void fedc__gemv_avx512(float *restrict c, const float *restrict a, const float *restrict b,
                       const float *restrict bias, int k, int rsa, int csa, int ldb, int ldc,
                       int accumulate, int r0, int r1);

#endif
