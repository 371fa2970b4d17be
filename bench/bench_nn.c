/* bench_nn: training throughput and kernel speed of core/nn, with the baselines beside them.
 *
 * Prints, for the MLPs 30-64-32-1 and 30-256-256-1 at batch 64, 256 and 1024 on 1 and 2 threads:
 *   - training samples per second over one epoch of 284,807 rows (the size of the public
 *     card-fraud data set; synthetic standard-normal features, 0.2% positives), median of runs;
 *   - GFLOP/s of each dense kernel (forward, input gradient, weight gradient) per layer, next to
 *     OpenBLAS's cblas_sgemm on the same product when libopenblas can be loaded (it is opened
 *     with dlopen at run time, with OPENBLAS_CORETYPE set to the right core for this CPU, so the
 *     comparison gives OpenBLAS its AVX-512/AVX2 kernels; fedc itself never links it);
 *   - the machine's measured FP32 FMA peak on 1 and 2 threads.
 * --threads 1,2,4,8,16 measures those team sizes instead of 1 and 2 (OpenMP scaling on larger
 * machines); --dp adds DP-SGD training (per-example clipping at C = 1, Poisson sampling, noise
 * multiplier 1) beside plain training, with core/fl's secret ChaCha20 noise when built with
 * libsodium (FEDC_BENCH_SODIUM, the CMake build), else a non-secret stand-in of the same shape.
 * The machines are shared and noisy: compare ratios printed by the same run, quote medians.
 * bench/compare_torch.sh runs this and PyTorch on the same models and prints the ratios. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifdef FEDC_BENCH_SODIUM
#include "fedc/clock.h"
#include "fedc/dp.h"
#endif
#include "fedc/kernels.h"
#include "fedc/rng.h"
#include "fedc/train.h"

#define ROWS 284807
#define FEATURES 30

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void set_threads(int t) {
#ifdef _OPENMP
    omp_set_dynamic(0);
    omp_set_num_threads(t);
#else
    (void)t;
#endif
}

/* ---- FMA peak: independent chains of vector FMAs, enough to cover latency x ports ---- */
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float peak_avx512(long iters) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++)
        acc[i] = _mm512_set1_ps((float)i);
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 16; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    __m512 s = acc[0];
    for (int i = 1; i < 16; i++)
        s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float peak_avx2(long iters) {
    __m256 acc[12];
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    float out[8], s = 0.0f;
    for (int i = 1; i < 12; i++)
        acc[0] = _mm256_add_ps(acc[0], acc[i]);
    _mm256_storeu_ps(out, acc[0]);
    for (int i = 0; i < 8; i++)
        s += out[i];
    return s;
}
#endif

/* FLOPs per iteration of the peak loop for the active instruction set (0 if none). */
static double peak_flops_per_iter(void) {
    switch (fedc_isa_detect()) {
    case FEDC_ISA_AVX512:
        return 16.0 * 16 * 2;
    case FEDC_ISA_AVX2:
        return 12.0 * 8 * 2;
    default:
        return 0.0;
    }
}

static float peak_run(long iters) {
#if defined(__x86_64__)
    if (fedc_isa_detect() == FEDC_ISA_AVX512)
        return peak_avx512(iters);
    if (fedc_isa_detect() == FEDC_ISA_AVX2)
        return peak_avx2(iters);
#endif
    (void)iters;
    return 0.0f;
}

/* GFLOP/s of all threads together running the peak loop; median of 5. */
static double measure_peak(int threads) {
    double fpi = peak_flops_per_iter();
    if (fpi == 0.0)
        return NAN;
    const long iters = 20000000;
    double v[5];
    volatile float sink = 0.0f;
    for (int r = 0; r < 5; r++) {
        double t0 = fedc_clock_s();
#pragma omp parallel num_threads(threads)
        {
            float s = peak_run(iters);
#pragma omp atomic
            sink += s;
        }
        v[r] = fpi * iters * threads / (fedc_clock_s() - t0) / 1e9;
    }
    (void)sink;
    return median(v, 5);
}

/* ---- OpenBLAS, loaded at run time ---- */
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);
typedef void (*setthreads_fn)(int);
static sgemm_fn blas_sgemm;
static setthreads_fn blas_threads;
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

static void load_openblas(void) {
    /* Give OpenBLAS its best kernels: Debian's build may not recognise newer cores and fall back
     * to SSE3, and an environment may pin an older core (Haswell halves its AVX-512 speed).
     * Set before dlopen, since OpenBLAS reads it when it loads; FEDC_BENCH_KEEP_CORETYPE=1
     * keeps the caller's value. */
    if (!getenv("FEDC_BENCH_KEEP_CORETYPE")) {
        if (fedc_isa_detect() == FEDC_ISA_AVX512)
            setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
        else if (fedc_isa_detect() == FEDC_ISA_AVX2)
            setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    }
    static const char *names[] = {"libopenblas.so.0", "libopenblasp.so.0", "libopenblas.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h)
            continue;
        /* POSIX dlsym returns void *; the conversion to a function pointer goes via memcpy. */
        void *s = dlsym(h, "cblas_sgemm"), *t = dlsym(h, "openblas_set_num_threads");
        if (s) {
            memcpy(&blas_sgemm, &s, sizeof s);
            if (t)
                memcpy(&blas_threads, &t, sizeof t);
            printf("# openblas: %s, OPENBLAS_CORETYPE=%s\n", names[i],
                   getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)");
            return;
        }
    }
    printf("# openblas: not found (install libopenblas0-pthread for the side-by-side column)\n");
}

/* ---- kernels ---- */
typedef enum { OP_FORWARD, OP_INPUT_GRAD, OP_WEIGHT_GRAD } op_kind;
static const char *op_name[] = {"forward", "input_grad", "weight_grad"};

/* Times one dense-layer product for `batch` rows, in -> out; returns GFLOP/s (median of 5). */
static double time_fedc(op_kind op, int batch, int in, int out, int threads, float *x, float *w,
                        float *wt, float *dy, float *c) {
    double v[5];
    const double flops = 2.0 * batch * in * out;
    int reps = (int)(2e8 / flops) + 1;
    (void)threads; /* unused when built without OpenMP */
    for (int r = 0; r < 5; r++) {
        double t0 = fedc_clock_s();
#pragma omp parallel num_threads(threads)
        for (int it = 0; it < reps; it++) {
            if (op == OP_FORWARD)
                fedc_gemm(c, x, w, NULL, batch, out, in, in, 1, out, out, 0);
            else if (op == OP_INPUT_GRAD) /* includes the transpose it needs */
            {
                fedc_transpose(wt, w, in, out);
                fedc_gemm(c, dy, wt, NULL, batch, in, out, out, 1, in, in, 0);
            } else
                fedc_gemm(c, x, dy, NULL, in, out, batch, 1, in, out, out, 0);
        }
        v[r] = flops * reps / (fedc_clock_s() - t0) / 1e9;
    }
    return median(v, 5);
}

static double time_blas(op_kind op, int batch, int in, int out, int threads, float *x, float *w,
                        float *dy, float *c) {
    if (!blas_sgemm)
        return NAN;
    if (blas_threads)
        blas_threads(threads);
    double v[5];
    const double flops = 2.0 * batch * in * out;
    int reps = (int)(2e8 / flops) + 1;
    for (int r = 0; r < 5; r++) {
        double t0 = fedc_clock_s();
        for (int it = 0; it < reps; it++) {
            if (op == OP_FORWARD)
                blas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, batch, out, in, 1.0f, x, in, w, out, 0.0f,
                           c, out);
            else if (op == OP_INPUT_GRAD)
                blas_sgemm(ROW_MAJOR, NO_TRANS, TRANS, batch, in, out, 1.0f, dy, out, w, out, 0.0f,
                           c, in);
            else
                blas_sgemm(ROW_MAJOR, TRANS, NO_TRANS, in, out, batch, 1.0f, x, in, dy, out, 0.0f,
                           c, out);
        }
        v[r] = flops * reps / (fedc_clock_s() - t0) / 1e9;
    }
    return median(v, 5);
}

/* ---- training throughput ---- */
#ifndef FEDC_BENCH_SODIUM
/* Not secret: a stand-in costing about what the real noise does (one normal draw per value). */
static void noise_fn(void *ctx, float *x, size_t n, double sd) {
    fedc_rng *r = ctx;
    for (size_t i = 0; i < n; i++)
        x[i] += (float)(sd * (double)fedc_rng_normal(r));
}
#endif

static double train_throughput(const fedc_dataset *ds, const int *hidden, int n_hidden, int batch,
                               int threads, int runs, int dp) {
    fedc_arch arch;
    fedc_diag d;
    if (fedc_arch_make(&arch, FEATURES, hidden, n_hidden, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d))
        return NAN;
    double v[9];
    set_threads(threads);
    for (int r = 0; r < runs; r++) {
        fedc_model *m = NULL;
        if (fedc_model_new(&m, &arch))
            return NAN;
        fedc_model_init(m, 1);
        fedc_train_cfg cfg = fedc_train_defaults();
        cfg.epochs = 1;
        cfg.batch = batch;
        cfg.pos_weight = 10.0f;
#ifdef FEDC_BENCH_SODIUM
        fedc_dp_noise g;
        fedc_dp_noise_init(&g);
#else
        fedc_rng g;
        fedc_rng_init(&g, 99);
#endif
        if (dp) {
            cfg.dp_clip = 1.0f;
            cfg.dp_noise = 1.0f;
            cfg.dp_poisson = 1;
#ifdef FEDC_BENCH_SODIUM
            fedc_dp_noise_for_training(&cfg, &g); /* drawn by all threads */
#else
            cfg.dp_noise_fn = noise_fn;
            cfg.dp_noise_ctx = &g;
#endif
        }
        fedc_train_report rep;
        double t0 = fedc_clock_s();
        fedc_err rc = fedc_train(m, ds, NULL, &cfg, &rep, &d);
        double secs = fedc_clock_s() - t0;
        fedc_model_destroy(&m);
        if (rc || rep.threads_used != threads)
            return NAN;
        v[r] = ds->n_rows / secs;
    }
    return median(v, runs);
}

static void usage(void) {
    printf("usage: bench_nn [--quick] [--no-kernels] [--no-train] [--threads 1,2,...] [--dp]\n"
           "                [--no-openblas]\n"
           "Prints training samples/s and kernel GFLOP/s of core/nn beside OpenBLAS and the\n"
           "machine's FMA peak (1 and 2 threads, or the --threads list for training and the\n"
           "peak). --quick: fewer repetitions. --dp: DP-SGD training beside plain training.\n");
}

int main(int argc, char **argv) {
    int quick = 0, kernels = 1, train = 1, dp = 0, blas = 1;
    /* One line at a time, so a log cut short (killed, crashed) keeps what was measured. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    int tl[16] = {1, 2}, nt = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--dp") == 0)
            dp = 1;
        else if (strcmp(argv[i], "--no-openblas") == 0)
            blas = 0;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            nt = 0;
            for (char *p = argv[++i], *end; *p && nt < 16; p = *end ? end + 1 : end) {
                long t = strtol(p, &end, 10);
                if (end == p || t < 1 || t > 1024 || (*end && *end != ',')) {
                    fprintf(stderr, "bench_nn: --threads: expected a list like 1,2,4, got '%s'\n",
                            argv[i]);
                    return 2;
                }
                tl[nt++] = (int)t;
            }
        } else if (strcmp(argv[i], "--no-kernels") == 0)
            kernels = 0;
        else if (strcmp(argv[i], "--no-train") == 0)
            train = 0;
        else {
            usage();
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    printf("# bench_nn: fedc kernels %s\n", fedc_isa_name(fedc_isa_active()));
    if (blas)
        load_openblas();
    else
        printf("# openblas: not loaded (--no-openblas)\n");
    double peak[16];
    for (int k = 0; k < nt; k++) {
        peak[k] = measure_peak(tl[k]);
        printf("peak threads=%d gflops=%.1f ratio_v%d=%.2f\n", tl[k], peak[k], tl[0],
               peak[k] / peak[0]);
    }

    static const int small[] = {64, 32}, wide[] = {256, 256};
    static const struct {
        const char *name;
        const int *hidden;
    } models[] = {{"30-64-32-1", small}, {"30-256-256-1", wide}};
    static const int batches[] = {64, 256, 1024};

    if (kernels) {
        fedc_rng r;
        fedc_rng_init(&r, 3);
        size_t cap = (size_t)1024 * 256;
        float *x = malloc(cap * sizeof(float)), *w = malloc(cap * sizeof(float));
        float *wt = malloc(cap * sizeof(float)), *dy = malloc(cap * sizeof(float));
        float *c = malloc(cap * sizeof(float));
        if (!x || !w || !wt || !dy || !c)
            return 1;
        for (size_t i = 0; i < cap; i++) {
            x[i] = fedc_rng_normal(&r);
            w[i] = 0.1f * fedc_rng_normal(&r);
            dy[i] = 0.01f * fedc_rng_normal(&r);
        }
        printf("# kernel GFLOP/s: fedc vs OpenBLAS cblas_sgemm on the same product\n");
        for (size_t mi = 0; mi < 2; mi++)
            for (size_t bi = 0; bi < 3; bi++)
                for (int l = 0; l < 3; l++) {
                    int sizes[4] = {FEATURES, models[mi].hidden[0], models[mi].hidden[1], 1};
                    int in = sizes[l], out = sizes[l + 1], batch = batches[bi];
                    for (int op = 0; op < 3; op++) {
                        if (op == OP_INPUT_GRAD && l == 0)
                            continue; /* never computed: the input needs no gradient */
                        for (int t = 1; t <= 2; t++) {
                            double f = time_fedc((op_kind)op, batch, in, out, t, x, w, wt, dy, c);
                            double b = time_blas((op_kind)op, batch, in, out, t, x, w, dy, c);
                            printf("kernel model=%s batch=%d layer=%d op=%s in=%d out=%d "
                                   "threads=%d fedc_gflops=%.1f openblas_gflops=%.1f "
                                   "ratio=%.2f\n",
                                   models[mi].name, batch, l, op_name[op], in, out, t, f, b, f / b);
                        }
                    }
                }
        /* Each instruction set on the square product, single-threaded: the generic kernel is
         * portable C with 4-lane vectors (SSE2 on baseline x86-64, no FMA), the others are the
         * intrinsics kernels. */
        for (int isa = FEDC_ISA_GENERIC; isa <= (int)fedc_isa_detect(); isa++) {
            double v[5];
            for (int run = 0; run < 5; run++) {
                int reps = isa == FEDC_ISA_GENERIC ? 3 : 20;
                double t0 = fedc_clock_s();
                for (int it = 0; it < reps; it++)
                    fedc_gemm_isa((fedc_isa)isa, c, x, w, NULL, 256, 256, 256, 256, 1, 256, 256, 0);
                v[run] = 2.0 * 256 * 256 * 256 * reps / (fedc_clock_s() - t0) / 1e9;
            }
            printf("kernel_isa isa=%s shape=256x256x256 threads=1 gflops=%.1f\n",
                   fedc_isa_name((fedc_isa)isa), median(v, 5));
        }
        /* The square product quoted for OpenBLAS in the issue. */
        for (int t = 1; t <= 2; t++) {
            double f = time_fedc(OP_FORWARD, 256, 256, 256, t, x, w, wt, dy, c);
            double b = time_blas(OP_FORWARD, 256, 256, 256, t, x, w, dy, c);
            printf("kernel model=square batch=256 layer=0 op=forward in=256 out=256 threads=%d "
                   "fedc_gflops=%.1f openblas_gflops=%.1f ratio=%.2f\n",
                   t, f, b, f / b);
        }
        free(x);
        free(w);
        free(wt);
        free(dy);
        free(c);
    }

    if (train) {
        fedc_dataset *ds = NULL;
        if (fedc_dataset_new(&ds, ROWS, FEATURES))
            return 1;
        fedc_rng r;
        fedc_rng_init(&r, 11);
        for (size_t i = 0; i < (size_t)ROWS * FEATURES; i++)
            ds->x[i] = fedc_rng_normal(&r);
        for (int i = 0; i < ROWS; i++)
            ds->y[i] = fedc_rng_uniform(&r) < 0.002f ? 1.0f : 0.0f;
        printf("# training: one epoch of %d rows x %d features, Adam, median of %d runs\n", ROWS,
               FEATURES, quick ? 1 : 3);
        for (size_t mi = 0; mi < 2; mi++)
            for (size_t bi = 0; bi < 3; bi++)
                for (int with_dp = 0; with_dp <= dp; with_dp++) {
                    double sps[16];
                    const char *kind = with_dp ? "dpsgd" : "train";
                    for (int k = 0; k < nt; k++) {
                        sps[k] = train_throughput(ds, models[mi].hidden, 2, batches[bi], tl[k],
                                                  quick ? 1 : 3, with_dp);
                        printf("%s model=%s batch=%d threads=%d samples_per_s=%.0f\n", kind,
                               models[mi].name, batches[bi], tl[k], sps[k]);
                    }
                    for (int k = 1; k < nt; k++)
                        printf("scaling %s model=%s batch=%d threads=%d speedup_v%d=%.2f "
                               "of_peak_ratio=%.2f\n",
                               kind, models[mi].name, batches[bi], tl[k], tl[0], sps[k] / sps[0],
                               (sps[k] / sps[0]) / (peak[k] / peak[0]));
                }
        fedc_dataset_destroy(&ds);
    }
    return 0;
}
