/* AVX-512 matrix product: register-blocked tiles of 8 rows by 32 columns (16 zmm accumulators),
 * B rows loaded as two vectors, A elements broadcast, one FMA per (row, vector) and k step.
 * Column tails use masked loads and stores, so every column of a tile runs the same instruction
 * sequence; row tails use the same code with fewer rows. Compiled with -mavx512f etc. and only
 * called after a CPU check (kernels.c). */
#include "kernels_internal.h"

#include <immintrin.h>

#define MR FEDC__AVX512_MR
#define NR FEDC__AVX512_NR

/* One tile of C: rows [0, mr), columns [0, 16 * nv) masked by m0 and m1. mr and nv are
 * compile-time constants at every call site so the accumulators live in registers. */
static inline __attribute__((always_inline)) void
tile(float *restrict c, const float *restrict a, const float *restrict b,
     const float *restrict bias, int k, int rsa, int csa, int ldb, int ldc, int accumulate,
     const int mr, const int nv, __mmask16 m0, __mmask16 m1) {
    __m512 acc0[MR], acc1[MR];
    __m512 init0 = _mm512_setzero_ps(), init1 = _mm512_setzero_ps();
    if (bias && !accumulate) {
        init0 = _mm512_maskz_loadu_ps(m0, bias);
        if (nv == 2)
            init1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    for (int r = 0; r < mr; r++) {
        if (accumulate) {
            acc0[r] = _mm512_maskz_loadu_ps(m0, c + (size_t)r * ldc);
            if (nv == 2)
                acc1[r] = _mm512_maskz_loadu_ps(m1, c + (size_t)r * ldc + 16);
        } else {
            acc0[r] = init0;
            acc1[r] = init1;
        }
    }
    for (int p = 0; p < k; p++) {
        const float *bp = b + (size_t)p * ldb;
        const float *ap = a + (size_t)p * csa;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, bp);
        __m512 b1 = nv == 2 ? _mm512_maskz_loadu_ps(m1, bp + 16) : b0;
        for (int r = 0; r < mr; r++) {
            __m512 av = _mm512_set1_ps(ap[(size_t)r * rsa]);
            acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
            if (nv == 2)
                acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(c + (size_t)r * ldc, m0, acc0[r]);
        if (nv == 2)
            _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, m1, acc1[r]);
    }
}

static __mmask16 mask_for(int cols) {
    if (cols >= 16)
        return (__mmask16)0xFFFF;
    if (cols <= 0)
        return 0;
    return (__mmask16)((1u << cols) - 1u);
}

#define TILE_CASE(R)                                                                               \
    case R:                                                                                        \
        if (nv == 2)                                                                               \
            tile(cp, ap, bp, biasp, k, rsa, csa, ldb, ldc, accumulate, R, 2, m0, m1);              \
        else                                                                                       \
            tile(cp, ap, bp, biasp, k, rsa, csa, ldb, ldc, accumulate, R, 1, m0, m1);              \
        break;

void fedc__gemm_tiles_avx512(float *restrict c, const float *restrict a, const float *restrict b,
                             const float *restrict bias, int m, int n, int k, int rsa, int csa,
                             int ldb, int ldc, int accumulate, int t0, int t1) {
    int mt = (m + MR - 1) / MR;
    for (int t = t0; t < t1; t++) {
        /* Column tiles outer, row tiles inner: one B panel serves consecutive tiles. */
        int i0 = (t % mt) * MR, j0 = (t / mt) * NR;
        int rows = m - i0 < MR ? m - i0 : MR;
        int cols = n - j0 < NR ? n - j0 : NR;
        __mmask16 m0 = mask_for(cols), m1 = mask_for(cols - 16);
        int nv = cols > 16 ? 2 : 1;
        float *cp = c + (size_t)i0 * ldc + j0;
        const float *ap = a + (size_t)i0 * rsa;
        const float *bp = b + j0;
        const float *biasp = bias ? bias + j0 : NULL;
        switch (rows) {
            TILE_CASE(8)
            TILE_CASE(7)
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
