/* bench_score: the scoring API (fedc/score.h) on one core: single-row latency and batch
 * throughput, for the small (30-64-32-1) and a wide (30-512-256-1) binary MLP, plus
 * fedc_model_predict's batch throughput for reference.
 *
 * Latency: fedc_score_row on one row after 20,000 warm-up calls, each of N calls (default
 * 100,000) timed alone with CLOCK_MONOTONIC (the timer's own cost, measured and printed as
 * timer_ns, is included: about 20 ns); p50, p99, p99.9 and the mean. Each call scores a
 * different row of a pool of 1024 random rows, so the branch predictor cannot learn one input.
 * Throughput: fedc_score_batch over 65,536 rows in batches of 4096, repeated for at least 1 s.
 *
 *   bench_score [--calls N] [--export DIR]
 * --export DIR also writes DIR/small.fedc and DIR/wide.fedc (the benchmarked models, weights
 * from a fixed seed) and DIR/rows.f32 (the row pool, float32 little-endian, 1024 x 30) for the
 * PyTorch and onnxruntime side (bench/score_compare.py), and DIR/small.scores, DIR/wide.scores
 * (fedc's scores of those rows) to check that every runtime computes the same model.
 * Output lines are key=value, one per measurement. Run it pinned to one core for stable figures
 * (taskset -c 0). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedc/kernels.h"
#include "fedc/modelfile.h"
#include "fedc/score.h"

#define POOL 1024
#define NF 30

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t g_state = 0x9E3779B97F4A7C15ull;
static float rnd(void) {
    g_state ^= g_state << 13;
    g_state ^= g_state >> 7;
    g_state ^= g_state << 17;
    return (float)((double)(g_state >> 11) / 9007199254740992.0 * 6.0 - 3.0);
}

static fedc_model *make_model(const int *hidden, int n_hidden) {
    fedc_arch a;
    fedc_model *m = NULL;
    fedc_diag d = {{0}};
    if (fedc_arch_make(&a, NF, hidden, n_hidden, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d) ||
        fedc_model_new(&m, &a)) {
        fprintf(stderr, "bench_score: cannot make the model: %s\n", d.msg);
        exit(1);
    }
    fedc_model_init(m, 42);
    float mean[NF], std[NF];
    for (int j = 0; j < NF; j++) {
        mean[j] = 0.1f * (float)j;
        std[j] = 1.0f + 0.05f * (float)j;
    }
    char *names[NF], buf[NF][8];
    for (int j = 0; j < NF; j++) {
        snprintf(buf[j], sizeof buf[j], "f%d", j);
        names[j] = buf[j];
    }
    if (fedc_model_set_schema(m, names, "Class", mean, std)) {
        fprintf(stderr, "bench_score: out of memory\n");
        exit(1);
    }
    return m;
}

static void bench(const char *name, const int *hidden, int n_hidden, int calls, const float *pool,
                  const char *export_dir) {
    fedc_model *m = make_model(hidden, n_hidden);
    fedc_scorer *s = NULL;
    fedc_diag d = {{0}};
    if (fedc_scorer_from_model(&s, m, &d)) {
        fprintf(stderr, "bench_score: %s\n", d.msg);
        exit(1);
    }
    void *work = fedc_scorer_workspace_new(s);
    double *lat = malloc(sizeof(double) * (size_t)calls);
    const int batch_rows = 65536;
    float *bx = malloc(sizeof(float) * (size_t)batch_rows * NF);
    float *by = malloc(sizeof(float) * (size_t)batch_rows);
    if (!work || !lat || !bx || !by) {
        fprintf(stderr, "bench_score: out of memory\n");
        exit(1);
    }
    char arch[64];
    int off = snprintf(arch, sizeof arch, "%d", NF);
    for (int h = 0; h < n_hidden; h++)
        off += snprintf(arch + off, sizeof arch - (size_t)off, "-%d", hidden[h]);
    snprintf(arch + off, sizeof arch - (size_t)off, "-1");

    float out = 0.0f;
    volatile float sink = 0.0f;
    for (int i = 0; i < 20000; i++) {
        if (fedc_score_row(&out, s, pool + (size_t)(i % POOL) * NF, work))
            exit(1);
        sink += out;
    }
    double t_timer = now_ns();
    for (int i = 0; i < 1000; i++)
        (void)now_ns();
    double timer_ns = (now_ns() - t_timer) / 1000.0;
    for (int i = 0; i < calls; i++) {
        const float *x = pool + (size_t)(i % POOL) * NF;
        double t0 = now_ns();
        fedc_err rc = fedc_score_row(&out, s, x, work);
        double t1 = now_ns();
        if (rc)
            exit(1);
        lat[i] = t1 - t0;
        sink += out;
    }
    qsort(lat, (size_t)calls, sizeof *lat, cmp_double);
    double mean = 0;
    for (int i = 0; i < calls; i++)
        mean += lat[i];
    mean /= calls;
    printf("fedc_row model=%s name=%s isa=%s calls=%d p50_ns=%.0f p99_ns=%.0f p999_ns=%.0f "
           "mean_ns=%.0f timer_ns=%.0f\n",
           arch, name, fedc_isa_name(fedc_isa_active()), calls, lat[calls / 2],
           lat[(size_t)(calls * 0.99)], lat[(size_t)(calls * 0.999)], mean, timer_ns);

    for (int i = 0; i < batch_rows; i++)
        memcpy(bx + (size_t)i * NF, pool + (size_t)(i % POOL) * NF, sizeof(float) * NF);
    long long rows = 0;
    double t0 = now_ns(), t1;
    do {
        for (int r0 = 0; r0 < batch_rows; r0 += 4096)
            if (fedc_score_batch(by + r0, s, bx + (size_t)r0 * NF, 4096, work))
                exit(1);
        rows += batch_rows;
        t1 = now_ns();
    } while (t1 - t0 < 1e9);
    printf("fedc_batch model=%s name=%s batch=4096 threads=1 rows_per_s=%.0f\n", arch, name,
           rows / ((t1 - t0) / 1e9));
    /* fedc_model_predict (the training kernels, OpenMP as set by OMP_NUM_THREADS). */
    rows = 0;
    t0 = now_ns();
    do {
        if (fedc_model_predict(by, m, bx, batch_rows))
            exit(1);
        rows += batch_rows;
        t1 = now_ns();
    } while (t1 - t0 < 1e9);
    printf("fedc_model_predict model=%s name=%s batch=%d rows_per_s=%.0f\n", arch, name, batch_rows,
           rows / ((t1 - t0) / 1e9));

    if (export_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.fedc", export_dir, name);
        if (fedc_model_save(m, path, &d)) {
            fprintf(stderr, "bench_score: %s\n", d.msg);
            exit(1);
        }
        snprintf(path, sizeof path, "%s/%s.scores", export_dir, name);
        FILE *f = fopen(path, "wb");
        if (!f || fedc_score_batch(by, s, pool, POOL, work) ||
            fwrite(by, sizeof(float), POOL, f) != POOL || fclose(f)) {
            fprintf(stderr, "bench_score: cannot write %s\n", path);
            exit(1);
        }
    }
    (void)sink;
    free(lat);
    free(bx);
    free(by);
    free(work);
    fedc_scorer_close(&s);
    fedc_model_destroy(&m);
}

int main(int argc, char **argv) {
    int calls = 100000;
    const char *export_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc) {
            calls = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--export") == 0 && i + 1 < argc) {
            export_dir = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_score [--calls N] [--export DIR]\n");
            return 2;
        }
    }
    if (calls < 1000) {
        fprintf(stderr, "bench_score: --calls must be at least 1000\n");
        return 2;
    }
    float *pool = malloc(sizeof(float) * POOL * NF);
    if (!pool)
        return 1;
    for (int i = 0; i < POOL * NF; i++)
        pool[i] = rnd();
    if (export_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/rows.f32", export_dir);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(pool, sizeof(float), POOL * NF, f) != POOL * NF || fclose(f)) {
            fprintf(stderr, "bench_score: cannot write %s\n", path);
            return 1;
        }
    }
    const int small[] = {64, 32}, wide[] = {512, 256};
    bench("small", small, 2, calls, pool, export_dir);
    bench("wide", wide, 2, calls, pool, export_dir);
    free(pool);
    return 0;
}
