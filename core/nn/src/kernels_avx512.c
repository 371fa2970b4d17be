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

/* Sums each of 16 vectors across its lanes: lane r of the result is the sum of v[r]. A fixed tree
 * of unpack/shuffle/add steps (three levels), so the order of additions never changes. */
static inline __attribute__((always_inline)) __m512 reduce16(const __m512 *v) {
    __m512 t[8], u[4];
    for (int j = 0; j < 8; j++)
        t[j] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * j], v[2 * j + 1]),
                             _mm512_unpackhi_ps(v[2 * j], v[2 * j + 1]));
    for (int j = 0; j < 4; j++)
        u[j] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * j], t[2 * j + 1], 0x44),
                             _mm512_shuffle_ps(t[2 * j], t[2 * j + 1], 0xEE));
    /* u[j] holds rows 4j..4j+3 in each 128-bit quarter; add the quarters together. */
    __m512 w0 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x88),
                              _mm512_shuffle_f32x4(u[0], u[1], 0xDD));
    __m512 w1 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x88),
                              _mm512_shuffle_f32x4(u[2], u[3], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w0, w1, 0x88), _mm512_shuffle_f32x4(w0, w1, 0xDD));
}

/* Lane r = dot(a row r, b) for r < rows (rows a compile-time constant at the hot call site, so
 * the 16 accumulators stay in registers); missing rows are zero. */
static inline __attribute__((always_inline)) __m512
dot16(const float *restrict a, const float *restrict b, int k, int rsa, const int rows) {
    __m512 v[16];
    for (int r = 0; r < 16; r++)
        v[r] = _mm512_setzero_ps();
    int p = 0;
    for (; p + 16 <= k; p += 16) {
        __m512 bv = _mm512_loadu_ps(b + p);
        for (int r = 0; r < rows; r++)
            v[r] = _mm512_fmadd_ps(_mm512_loadu_ps(a + (size_t)r * rsa + p), bv, v[r]);
    }
    if (p < k) {
        __mmask16 mk = mask_for(k - p);
        __m512 bv = _mm512_maskz_loadu_ps(mk, b + p);
        for (int r = 0; r < rows; r++)
            v[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, a + (size_t)r * rsa + p), bv, v[r]);
    }
    return reduce16(v);
}

/* Matrix-vector products for n == 1 (the single output unit of a binary or regression model),
 * where a 32-column tile would use one lane in sixteen. Rows [r0, r1) of C. */
void fedc__gemv_avx512(float *restrict c, const float *restrict a, const float *restrict b,
                       const float *restrict bias, int k, int rsa, int csa, int ldb, int ldc,
                       int accumulate, int r0, int r1) {
    (void)ldb; /* the caller guarantees ldb == 1 */
    if (csa == 1) {
        /* Rows of A are contiguous: 16 rows at a time, each a 16-lane dot product over k, then
         * one tree reduction gives the 16 sums in one vector. */
        for (int i0 = r0; i0 < r1; i0 += 16) {
            const int rows = r1 - i0 < 16 ? r1 - i0 : 16;
            __m512 sum = rows == 16 ? dot16(a + (size_t)i0 * rsa, b, k, rsa, 16)
                                    : dot16(a + (size_t)i0 * rsa, b, k, rsa, rows);
            if (ldc == 1) {
                __mmask16 mk = mask_for(rows);
                __m512 init = accumulate ? _mm512_maskz_loadu_ps(mk, c + i0)
                                         : _mm512_set1_ps(bias ? bias[0] : 0.0f);
                _mm512_mask_storeu_ps(c + i0, mk, _mm512_add_ps(init, sum));
            } else {
                float sums[16];
                _mm512_storeu_ps(sums, sum);
                for (int r = 0; r < rows; r++) {
                    float *cr = c + (size_t)(i0 + r) * ldc;
                    *cr = (accumulate ? *cr : (bias ? bias[0] : 0.0f)) + sums[r];
                }
            }
        }
    } else {
        /* rsa == 1, ldc == 1 (guaranteed by the caller): columns of A are contiguous, so C is
         * computed 32 rows at a time as a sum over k of scaled columns. Four partial sums over
         * p mod 4 break the FMA dependency chain; they are added in a fixed order. */
        for (int i0 = r0; i0 < r1; i0 += 32) {
            __mmask16 mk[2];
            __m512 acc[2][4];
            for (int v = 0; v < 2; v++) {
                mk[v] = mask_for(r1 - i0 - 16 * v);
                for (int s = 0; s < 4; s++)
                    acc[v][s] = _mm512_setzero_ps();
            }
            int p = 0;
            for (; p + 4 <= k; p += 4)
                for (int s = 0; s < 4; s++) {
                    __m512 bv = _mm512_set1_ps(b[p + s]);
                    const float *ap = a + (size_t)(p + s) * csa + i0;
                    for (int v = 0; v < 2; v++)
                        acc[v][s] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk[v], ap + 16 * v), bv,
                                                    acc[v][s]);
                }
            for (; p < k; p++) {
                __m512 bv = _mm512_set1_ps(b[p]);
                const float *ap = a + (size_t)p * csa + i0;
                for (int v = 0; v < 2; v++)
                    acc[v][0] =
                        _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk[v], ap + 16 * v), bv, acc[v][0]);
            }
            for (int v = 0; v < 2; v++) {
                __m512 init = accumulate ? _mm512_maskz_loadu_ps(mk[v], c + i0 + 16 * v)
                                         : _mm512_set1_ps(bias ? bias[0] : 0.0f);
                __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[v][0], acc[v][1]),
                                           _mm512_add_ps(acc[v][2], acc[v][3]));
                _mm512_mask_storeu_ps(c + i0 + 16 * v, mk[v], _mm512_add_ps(init, sum));
            }
        }
    }
}
