/* bench_csv: how far fedc_csv_load is from the cheapest way to read the same numbers.
 *
 *   bench_csv [--rows N] [--cols K] [--reps R] [PATH LABEL]
 *
 * Without PATH it writes a synthetic numeric CSV (default 300000 rows x 25 columns, the shape of
 * the Taiwan credit fixture ten times over: integers and decimals of a few digits, a 0/1 label
 * "y" last) to a temporary file and removes it afterwards; with PATH it reads that file, LABEL
 * naming its label column. Then, alternating so that both see the same page cache and clock,
 * it times R runs (default 15) of:
 *   - load: fedc_csv_load of the whole file (header, tokenizer, checks, the float matrix);
 *   - baseline: reading the file into one buffer and converting every number with strtod in a
 *     loop over the buffer, commas and line ends skipped, nothing checked: the floor a loader
 *     that validates nothing could reach with the C library's number parser.
 * It prints the median of each and load/baseline. The loader's own number parser is faster than
 * strtod, so the ratio may be below 1; what matters is how it moves between versions. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedc/clock.h"
#include "fedc/data.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* A fixed xorshift stream: the same file on every run. */
static uint64_t next_u64(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Writes rows x cols cells: cols - 1 features, then the label. Features alternate between
 * integers up to six digits (as amounts and codes are written) and decimals with up to six
 * significant digits, some negative. */
static int write_synthetic(FILE *f, long rows, int cols) {
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (int j = 0; j < cols - 1; j++)
        fprintf(f, "x%d,", j);
    fprintf(f, "y\n");
    for (long i = 0; i < rows; i++) {
        for (int j = 0; j < cols - 1; j++) {
            uint64_t u = next_u64(&s);
            long v = (long)(u % 2000001) - 1000000;
            if (j % 2)
                fprintf(f, "%ld,", v / (long)(1 + u % 1000 / 100));
            else
                fprintf(f, "%.6g,", (double)v / 4096.0);
        }
        fprintf(f, "%d\n", (int)(next_u64(&s) & 1));
    }
    return ferror(f) ? -1 : 0;
}

/* The baseline: the file into one buffer, then strtod over it. Returns the numbers read. */
static long baseline(const char *path, char **buf, size_t *cap, float *out, size_t out_cap) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t len = 0, got;
    for (;;) {
        if (*cap - len < 2) {
            size_t nc = *cap ? *cap * 2 : (size_t)1 << 20;
            char *nb = realloc(*buf, nc);
            if (!nb) {
                fclose(f);
                return -1;
            }
            *buf = nb;
            *cap = nc;
        }
        got = fread(*buf + len, 1, *cap - 1 - len, f);
        if (got == 0)
            break;
        len += got;
    }
    fclose(f);
    (*buf)[len] = '\0';
    char *p = memchr(*buf, '\n', len); /* the header */
    if (!p)
        return 0;
    p++;
    long n = 0;
    for (;;) {
        while (*p == ',' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        char *e;
        double v = strtod(p, &e);
        if (e == p)
            return -1; /* not a numeric file */
        if ((size_t)n < out_cap)
            out[n] = (float)v;
        n++;
        p = e;
    }
    return n;
}

int main(int argc, char **argv) {
    long rows = 300000;
    int cols = 25, reps = 15;
    const char *path = NULL, *label = "y";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) {
            rows = atol(argv[++i]);
        } else if (strcmp(argv[i], "--cols") == 0 && i + 1 < argc) {
            cols = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (argv[i][0] != '-' && i + 1 < argc && !path) {
            path = argv[i];
            label = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--rows N] [--cols K] [--reps R] [PATH LABEL]\n", argv[0]);
            return 2;
        }
    }
    if (rows < 1 || cols < 2 || reps < 1) {
        fprintf(stderr, "bench_csv: expected --rows >= 1, --cols >= 2, --reps >= 1\n");
        return 2;
    }
    char tmp[] = "/tmp/bench_csv_XXXXXX";
    if (!path) {
        int fd = mkstemp(tmp);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f || write_synthetic(f, rows, cols) || fclose(f)) {
            fprintf(stderr, "bench_csv: cannot write %s\n", tmp);
            return 1;
        }
        path = tmp;
    }
    int rc = 1;
    double *t_load = calloc((size_t)reps, sizeof *t_load);
    double *t_base = calloc((size_t)reps, sizeof *t_base);
    char *buf = NULL;
    size_t cap = 0, out_cap = 0;
    float *out = NULL;
    fedc_dataset *ds = NULL;
    fedc_diag d;
    if (!t_load || !t_base)
        goto done;
    /* One untimed load: the file into the page cache, the shape for the baseline's output. */
    if (fedc_csv_load(&ds, path, label, NULL, 0, &d)) {
        fprintf(stderr, "bench_csv: %s\n", d.msg);
        goto done;
    }
    long cells = (long)ds->n_rows * (ds->n_features + 1);
    fprintf(stdout, "%s: %d rows x %d columns\n", path, ds->n_rows, ds->n_features + 1);
    fedc_dataset_destroy(&ds);
    out_cap = (size_t)cells;
    out = malloc(out_cap * sizeof *out);
    if (!out)
        goto done;
    for (int r = 0; r < reps; r++) {
        double t0 = fedc_clock_s();
        if (fedc_csv_load(&ds, path, label, NULL, 0, &d)) {
            fprintf(stderr, "bench_csv: %s\n", d.msg);
            goto done;
        }
        t_load[r] = fedc_clock_s() - t0;
        fedc_dataset_destroy(&ds);
        t0 = fedc_clock_s();
        long n = baseline(path, &buf, &cap, out, out_cap);
        t_base[r] = fedc_clock_s() - t0;
        if (n != cells) {
            fprintf(stderr, "bench_csv: the baseline read %ld numbers, the loader %ld\n", n, cells);
            goto done;
        }
    }
    double ml = median(t_load, reps), mb = median(t_base, reps);
    printf("median of %d: fedc_csv_load %.2f ms, strtod baseline %.2f ms, ratio %.3f\n", reps,
           ml * 1e3, mb * 1e3, ml / mb);
    rc = 0;
done:
    if (path == tmp)
        unlink(tmp);
    free(t_load);
    free(t_base);
    free(buf);
    free(out);
    return rc;
}
