/* AVX2 + FMA matrix product: tiles of 6 rows by 16 columns (12 ymm accumulators), the same scheme
 * as the AVX-512 kernel with maskload/maskstore for column tails. Compiled with -mavx2 -mfma and
 * only called after a CPU check (kernels.c). */
#include "kernels_internal.h"

#include <immintrin.h>

#define MR FEDC__AVX2_MR
#define NR FEDC__AVX2_NR

static inline __attribute__((always_inline)) void
tile(float *restrict c, const float *restrict a, const float *restrict b,
     const float *restrict bias, int k, int rsa, int csa, int ldb, int ldc, int accumulate,
     const int mr, const int nv, __m256i m0, __m256i m1) {
    __m256 acc0[MR], acc1[MR];
    __m256 init0 = _mm256_setzero_ps(), init1 = _mm256_setzero_ps();
    if (bias && !accumulate) {
        init0 = _mm256_maskload_ps(bias, m0);
        if (nv == 2)
            init1 = _mm256_maskload_ps(bias + 8, m1);
    }
    for (int r = 0; r < mr; r++) {
        if (accumulate) {
            acc0[r] = _mm256_maskload_ps(c + (size_t)r * ldc, m0);
            if (nv == 2)
                acc1[r] = _mm256_maskload_ps(c + (size_t)r * ldc + 8, m1);
        } else {
            acc0[r] = init0;
            acc1[r] = init1;
        }
    }
    for (int p = 0; p < k; p++) {
        const float *bp = b + (size_t)p * ldb;
        const float *ap = a + (size_t)p * csa;
        __m256 b0 = _mm256_maskload_ps(bp, m0);
        __m256 b1 = nv == 2 ? _mm256_maskload_ps(bp + 8, m1) : b0;
        for (int r = 0; r < mr; r++) {
            __m256 av = _mm256_broadcast_ss(ap + (size_t)r * rsa);
            acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
            if (nv == 2)
                acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm256_maskstore_ps(c + (size_t)r * ldc, m0, acc0[r]);
        if (nv == 2)
            _mm256_maskstore_ps(c + (size_t)r * ldc + 8, m1, acc1[r]);
    }
}

static __m256i mask_for(int cols) {
    int lane[8];
    for (int i = 0; i < 8; i++)
        lane[i] = i < cols ? -1 : 0;
    return _mm256_loadu_si256((const __m256i *)lane);
}

#define TILE_CASE(R)                                                                               \
    case R:                                                                                        \
        if (nv == 2)                                                                               \
            tile(cp, ap, bp, biasp, k, rsa, csa, ldb, ldc, accumulate, R, 2, m0, m1);              \
        else                                                                                       \
            tile(cp, ap, bp, biasp, k, rsa, csa, ldb, ldc, accumulate, R, 1, m0, m1);              \
        break;

void fedc__gemm_tiles_avx2(float *restrict c, const float *restrict a, const float *restrict b,
                           const float *restrict bias, int m, int n, int k, int rsa, int csa,
                           int ldb, int ldc, int accumulate, int t0, int t1) {
    int mt = (m + MR - 1) / MR;
    for (int t = t0; t < t1; t++) {
        int i0 = (t % mt) * MR, j0 = (t / mt) * NR;
        int rows = m - i0 < MR ? m - i0 : MR;
        int cols = n - j0 < NR ? n - j0 : NR;
        __m256i m0 = mask_for(cols), m1 = mask_for(cols - 8);
        int nv = cols > 8 ? 2 : 1;
        float *cp = c + (size_t)i0 * ldc + j0;
        const float *ap = a + (size_t)i0 * rsa;
        const float *bp = b + j0;
        const float *biasp = bias ? bias + j0 : NULL;
        switch (rows) {
            TILE_CASE(6)
            TILE_CASE(5)
            TILE_CASE(4)
            TILE_CASE(3)
            TILE_CASE(2)
            TILE_CASE(1)
        default:
            break;
        }
    }
}
