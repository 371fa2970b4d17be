/* Compute kernels for dense networks: one general matrix product that serves the forward pass,
 * the input gradient and the weight gradient, plus the elementwise and reduction kernels around it.
 *
 * Threading contract: every kernel is a work-sharing loop (`omp for`) with no allocation, I/O or
 * error return. Called inside a parallel region, all threads of the team must call it together
 * and it ends with a barrier; called outside one, it runs on the calling thread. Work is split
 * over output elements on fixed tile boundaries, and each output element is accumulated over k in
 * increasing order by the same code path whatever thread computes it, so results are
 * bit-identical for any OMP_NUM_THREADS (same binary, same machine).
 *
 * Each fast kernel has a naive reference twin (suffix _ref) used as the oracle in tests. */
#ifndef FEDC_KERNELS_H
#define FEDC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Instruction sets the matrix product can use; chosen once at run time from a CPU check. */
typedef enum fedc_isa {
    FEDC_ISA_GENERIC = 0,
    FEDC_ISA_AVX2 = 1,   /* AVX2 + FMA */
    FEDC_ISA_AVX512 = 2, /* AVX-512 F/VL/DQ/BW + FMA */
} fedc_isa;

/* The best instruction set this CPU supports (and this build contains). */
fedc_isa fedc_isa_detect(void);
/* The instruction set fedc_gemm uses now; FEDC_ISA env var ("generic", "avx2", "avx512") can
 * lower it for testing. */
fedc_isa fedc_isa_active(void);
const char *fedc_isa_name(fedc_isa isa);

/* C = A B (+ bias), or C += A B when accumulate is set.
 *   C: (m, n) row-major with leading dimension ldc.
 *   A: (m, k), element (i, p) at a[i * rsa + p * csa] (any strides: this lets A be a transposed
 *      view, as the weight gradient X^T dY needs).
 *   B: (k, n) row-major with leading dimension ldb.
 *   bias: NULL or (n); when given (and accumulate is 0) every row of C starts from it.
 * Each C element is bias (or 0, or its old value) plus the products for p = 0..k-1 in order.
 * The three dense-layer uses:
 *   forward      Y(B,O)  = X(B,I) W(I,O) + b   a=X  rsa=I csa=1, b=W   ldb=O
 *   input grad   dX(B,I) = dY(B,O) W^T(O,I)    a=dY rsa=O csa=1, b=W^T ldb=I
 *   weight grad  dW(I,O) = X^T(I,B) dY(B,O)    a=X  rsa=1 csa=I, b=dY  ldb=O */
void fedc_gemm(float *restrict c, const float *restrict a, const float *restrict b,
               const float *restrict bias, int m, int n, int k, int rsa, int csa, int ldb, int ldc,
               int accumulate);

/* The same product with a chosen instruction set (tests and benchmarks). */
void fedc_gemm_isa(fedc_isa isa, float *restrict c, const float *restrict a,
                   const float *restrict b, const float *restrict bias, int m, int n, int k,
                   int rsa, int csa, int ldb, int ldc, int accumulate);

/* Work done on each finished tile of C by the thread that computed it, before any barrier:
 * rows [i0, i1) and columns [j0, j1) of C are final. Used to fuse elementwise steps (activation,
 * dropout, activation derivative) into the product, saving a pass and a barrier per layer. The
 * epilogue must only touch elements of its own tile (or rows/columns no other tile owns). */
typedef struct fedc_epilogue fedc_epilogue;
struct fedc_epilogue {
    void (*fn)(const fedc_epilogue *e, int i0, int i1, int j0, int j1);
    void *ctx;
};

/* fedc_gemm with an optional epilogue (NULL for none). With sync = 0 the call ends without the
 * closing barrier: the caller must reach one (fedc_team_sync) before anyone reads C. */
void fedc_gemm_ex(float *c, const float *restrict a, const float *restrict b,
                  const float *restrict bias, int m, int n, int k, int rsa, int csa, int ldb,
                  int ldc, int accumulate, const fedc_epilogue *epi, int sync);

/* A barrier for the calling team when it has two or more threads (nothing otherwise). */
void fedc_team_sync(void);

/* Naive triple loop, single-threaded, in double accumulation order p = 0..k-1 (float sums). */
void fedc_gemm_ref(float *c, const float *a, const float *b, const float *bias, int m, int n, int k,
                   int rsa, int csa, int ldb, int ldc, int accumulate);

/* out(cols, rows) = in(rows, cols)^T. fedc_transpose_nosync leaves out the closing barrier. */
void fedc_transpose(float *restrict out, const float *restrict in, int rows, int cols);
void fedc_transpose_nosync(float *restrict out, const float *restrict in, int rows, int cols);
void fedc_transpose_ref(float *out, const float *in, int rows, int cols);

/* out[j] = sum_i in[i][j] over rows i in order (bias gradient). fedc_colsum_nosync leaves out the
 * closing barrier. */
void fedc_colsum(float *restrict out, const float *restrict in, int rows, int cols);
void fedc_colsum_nosync(float *restrict out, const float *restrict in, int rows, int cols);
/* The same with accumulate set: out[j] plus that sum (DP-SGD's per-example gradients), in the
 * same chunks and order; no closing barrier. */
void fedc_colsum_acc_nosync(float *restrict out, const float *restrict in, int rows, int cols,
                            int accumulate);
void fedc_colsum_ref(float *out, const float *in, int rows, int cols);

#endif
