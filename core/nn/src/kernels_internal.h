/* Internal: the per-instruction-set matrix-product entry points. Each one computes the tiles
 * [t0, t1) of the fixed tiling of C (see kernels.c), so the caller owns the thread split. */
#ifndef FEDC_KERNELS_INTERNAL_H
#define FEDC_KERNELS_INTERNAL_H

/* Tile shape of each instruction set: MR rows of C by NR columns. */
#define FEDC__AVX512_MR 8
#define FEDC__AVX512_NR 32
#define FEDC__AVX2_MR 6
#define FEDC__AVX2_NR 16
#define FEDC__GENERIC_MR 4
#define FEDC__GENERIC_NR 16

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

#endif
