/* fedc features beyond one pass over a sorted file: rows out of time order go through the
 * external sort (one run, several runs, more runs than are merged at once, and from a pipe, which
 * cannot be read twice), each against the brute-force reading of the definition and all of them
 * byte-identical; the same rows sorted stream in one pass; no temporary file is left anywhere;
 * a failing run leaves no output; spec files (--spec-out, --spec, flags that agree or differ, bad
 * spec files named with their key); and memory: the peak RSS of a run over a file of 2.5 million
 * sorted rows stays far below the file's size. */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

#define RUN_TIMEOUT 300
#define DAY 86400

static const char *g_fedc;

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}
static int64_t rnd_below(int64_t n) {
    return (int64_t)(rnd() % (uint64_t)n);
}

typedef struct ctx {
    char *dir;
} ctx;

static int setup(void **state) {
    ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = proc_mkdtemp("fedc-test-features-stream-"))) {
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state) {
    ctx *c = *state;
    int rc = proc_rmtree(c->dir);
    free(c->dir);
    free(c);
    return rc;
}

static char *tpath(void **state, const char *name) {
    const ctx *c = *state;
    char *p = proc_path(c->dir, name);
    assert_non_null(p);
    return p;
}

static void show(const char *what, const proc_result *r) {
    print_message("--- %s: status %d, signal %d\n--- stderr:\n%s---\n", what, r->status,
                  r->term_signal, r->err ? r->err : "");
}

/* Runs argv (argv[0] replaced by fedc) and expects exit status `status`. */
static void run_fedc(proc_result *r, int status, const char **argv) {
    argv[0] = g_fedc;
    assert_int_equal(proc_run(r, argv, NULL, RUN_TIMEOUT), 0);
    if (r->status != status)
        show("unexpected exit status", r);
    assert_int_equal(r->status, status);
}

/* Entries of dir other than . and .. */
static int count_entries(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

/* ---- the sort ---------------------------------------------------------------------------------
 */

enum { N = 700 };

typedef struct rows {
    int64_t t[N];
    int ent[N];
    double amt[N], fraud[N];
} rows;

/* The definition: row j is in row i's window (same entity) when, with end = t_i - L,
 * end - D < t_j <= end, and for L = 0 at equal times j <= i (file order). */
static void brute(const rows *r, int64_t dur, int64_t delay, const double *v, int64_t *cnt,
                  double *sum) {
    for (int i = 0; i < N; i++) {
        cnt[i] = 0;
        sum[i] = 0;
        for (int j = 0; j < N; j++) {
            int64_t end = r->t[i] - delay;
            if (r->ent[j] == r->ent[i] && r->t[j] > end - dur && r->t[j] <= end &&
                (delay > 0 || r->t[j] < r->t[i] || j <= i)) {
                cnt[i]++;
                sum[i] += v[j];
            }
        }
    }
}

static const char *const WINDOW = "C:1,7:count,mean=AMT;C:2,5:count,sum=AMT,rate=FRAUD:delay=3";

/* Checks an output of the random rows against the definition. */
static void check_output(const rows *r, const char *path) {
    char *text = proc_read_file(path, NULL);
    assert_non_null(text);
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    assert_non_null(line);
    assert_string_equal(line, "ID,T,C,AMT,FRAUD,C_COUNT_1D,C_MEAN_AMT_1D,C_COUNT_7D,C_MEAN_AMT_7D,"
                              "C_COUNT_2D,C_SUM_AMT_2D,C_RATE_FRAUD_2D,C_COUNT_5D,C_SUM_AMT_5D,"
                              "C_RATE_FRAUD_5D");
    static double want[N][10];
    static int64_t c[N];
    static double s[N], fr[N];
    const struct { int64_t dur, delay; } w[4] = {{1, 0}, {7, 0}, {2, 3}, {5, 3}};
    for (int k = 0; k < 4; k++) {
        brute(r, w[k].dur * DAY, w[k].delay * DAY, r->amt, c, s);
        brute(r, w[k].dur * DAY, w[k].delay * DAY, r->fraud, c, fr);
        for (int i = 0; i < N; i++) {
            if (k < 2) {
                want[i][2 * k] = (double)c[i];
                want[i][2 * k + 1] = c[i] ? s[i] / (double)c[i] : 0;
            } else {
                want[i][4 + 3 * (k - 2)] = (double)c[i];
                want[i][5 + 3 * (k - 2)] = s[i];
                want[i][6 + 3 * (k - 2)] = c[i] ? fr[i] / (double)c[i] : 0;
            }
        }
    }
    for (int i = 0; i < N; i++) {
        line = strtok_r(NULL, "\n", &save);
        assert_non_null(line);
        char *p = line;
        assert_int_equal((int)strtol(p, &p, 10), i); /* input order */
        for (int skip = 0; skip < 4; skip++)
            p = strchr(p + 1, ',');
        for (int k = 0; k < 10; k++) {
            assert_true(*p == ',');
            double v = strtod(p + 1, &p);
            if (fabs(v - want[i][k]) > 1e-9 * (1 + fabs(want[i][k])))
                print_message("row %d column %d: got %.17g want %.17g\n", i, k, v, want[i][k]);
            assert_true(fabs(v - want[i][k]) <= 1e-9 * (1 + fabs(want[i][k])));
        }
        assert_true(*p == 0);
    }
    assert_null(strtok_r(NULL, "\n", &save));
    free(text);
}

static void write_rows(const rows *r, const char *path, const int *order) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "ID,T,C,AMT,FRAUD\n");
    for (int k = 0; k < N; k++) {
        int i = order ? order[k] : k;
        fprintf(f, "%d,%lld,c%d,%.2f,%d\n", i, (long long)r->t[i], r->ent[i], r->amt[i],
                (int)r->fraud[i]);
        if (k % 97 == 0)
            fprintf(f, "\n"); /* blank lines are no rows */
    }
    assert_int_equal(fclose(f), 0);
}

static void test_sort_paths(void **state) {
    static rows r;
    for (int i = 0; i < N; i++) {
        r.ent[i] = (int)rnd_below(5);
        /* ties (whole days), gaps, rows far out */
        int64_t k = rnd_below(4);
        r.t[i] = k == 0 ? rnd_below(30) * DAY : k == 1 ? 400 * DAY : rnd_below(60 * DAY);
        r.amt[i] = (double)rnd_below(100000) / 4.0;
        r.fraud[i] = (double)(rnd_below(5) == 0);
    }
    char *in = tpath(state, "rand.csv"), *tmp = tpath(state, "sorttmp");
    assert_int_equal(mkdir(tmp, 0700), 0);
    write_rows(&r, in, NULL);
    const char *mem[3] = {"256", "0.002", "0.00005"};
    char *first = NULL;
    for (int m = 0; m < 4; m++) {
        char name[32];
        snprintf(name, sizeof name, "out%d.csv", m);
        char *out = tpath(state, name);
        proc_result pr;
        if (m < 3) {
            const char *argv[] = {
                NULL,    "features", "--data",   in,     "--time",   "T", "--time-format", "epoch",
                "--out", out,        "--window", WINDOW, "--tmpdir", tmp, "--memory-mb",   mem[m],
                NULL};
            run_fedc(&pr, 0, argv);
            /* the rows are out of order: the sort ran, and said so */
            assert_non_null(strstr(pr.err, "rows out of time order"));
        } else {
            /* from a pipe, which cannot be read twice */
            char cmd[2048];
            snprintf(cmd, sizeof cmd,
                     "cat '%s' | '%s' features --data /dev/stdin --time T --time-format epoch "
                     "--out '%s' --window '%s' --tmpdir '%s' --memory-mb 0.002",
                     in, g_fedc, out, WINDOW, tmp);
            const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
            assert_int_equal(proc_run(&pr, argv, NULL, RUN_TIMEOUT), 0);
            if (pr.status != 0)
                show("pipe", &pr);
            assert_int_equal(pr.status, 0);
        }
        proc_result_release(&pr);
        check_output(&r, out);
        char *text = proc_read_file(out, NULL);
        assert_non_null(text);
        if (!first)
            first = text;
        else {
            assert_string_equal(text, first);
            free(text);
        }
        free(out);
        /* the sort's files are gone */
        assert_int_equal(count_entries(tmp, ""), 0);
    }
    /* the same rows in time order (ties kept in file order) stream in one pass, to the same
     * values: the rows keep their IDs, so row i of the output is row i of the sorted file */
    int order[N];
    for (int i = 0; i < N; i++)
        order[i] = i;
    for (int i = 1; i < N; i++)
        for (int j = i; j > 0 && r.t[order[j - 1]] > r.t[order[j]]; j--) {
            int x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    char *sorted = tpath(state, "sorted.csv"), *sout = tpath(state, "sorted-out.csv");
    write_rows(&r, sorted, order);
    proc_result pr;
    const char *argv[] = {NULL,       "features",      "--data",   sorted,  "--time",
                          "T",        "--time-format", "epoch",    "--out", sout,
                          "--window", WINDOW,          "--tmpdir", tmp,     NULL};
    run_fedc(&pr, 0, argv);
    assert_null(strstr(pr.err, "out of time order"));
    proc_result_release(&pr);
    /* line k + 1 of the sorted output is row order[k] of the unsorted one: same text */
    char *a = proc_read_file(sout, NULL);
    assert_non_null(a);
    char **lines = calloc(N + 1, sizeof *lines);
    char *save = NULL;
    strtok_r(first, "\n", &save);
    for (int i = 0; i < N; i++)
        lines[i] = strtok_r(NULL, "\n", &save);
    save = NULL;
    strtok_r(a, "\n", &save);
    for (int k = 0; k < N; k++) {
        char *l = strtok_r(NULL, "\n", &save);
        assert_non_null(l);
        assert_string_equal(l, lines[order[k]]);
    }
    free(lines);
    free(a);
    free(first);
    /* the output directory holds no temporary file */
    const ctx *c = *state;
    DIR *d = opendir(c->dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        assert_null(strstr(e->d_name, ".tmp"));
    closedir(d);
    free(in);
    free(tmp);
    free(sorted);
    free(sout);
}

/* A run that fails after many rows were written (a bad value on the last line, in a sorted file)
 * leaves no output and no temporary file. */
static void test_failure_leaves_nothing(void **state) {
    char *in = tpath(state, "tx.csv"), *out = tpath(state, "never.csv");
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fprintf(f, "T,C,AMT\n");
    for (int i = 0; i < 200000; i++)
        fprintf(f, "%d,c%d,%d.5\n", 1000 + i, i % 13, i % 100);
    fprintf(f, "300000,c1,x\n");
    assert_int_equal(fclose(f), 0);
    proc_result pr;
    const char *argv[] = {NULL,       "features",      "--data", in,      "--time",
                          "T",        "--time-format", "epoch",  "--out", out,
                          "--window", "C:1:mean=AMT",  NULL};
    run_fedc(&pr, 2, argv);
    assert_non_null(strstr(pr.err, "tx.csv:200002:3: AMT: 'x' is not a finite number"));
    proc_result_release(&pr);
    assert_false(proc_exists(out));
    const ctx *c = *state;
    assert_int_equal(count_entries(c->dir, "never.csv"), 0);
    free(in);
    free(out);
}

/* ---- spec files ------------------------------------------------------------------------------ */

static const char *const TX = "TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD\n"
                              "2018-04-01 00:00:31,1,10,5.0,0\n"
                              "2018-04-01T07:00:00Z,1,10,7.0,1\n"
                              "2018-04-02 01:00:00,1,11,3,0\n"
                              "2018-04-08 00:00:31,2,10,1.5,0\n"
                              "2018-04-08 07:00:00,3,10,2,1\n";

static void test_spec_files(void **state) {
    char *in = tpath(state, "tx.csv"), *out1 = tpath(state, "f1.csv"),
         *out2 = tpath(state, "f2.csv"), *spec = tpath(state, "spec.json"),
         *bad = tpath(state, "bad.json");
    assert_int_equal(proc_write_file(in, TX), 0);
    const char *win = "CUSTOMER_ID:1,7:count,mean=TX_AMOUNT;TERMINAL_ID:1,7:count,rate=TX_FRAUD:"
                      "delay=7";
    proc_result pr;
    const char *a1[] = {NULL, "features",   "--data",   in,  "--time",     "TX_DATETIME", "--out",
                        out1, "--calendar", "--window", win, "--spec-out", spec,          NULL};
    run_fedc(&pr, 0, a1);
    proc_result_release(&pr);
    char *json = proc_read_file(spec, NULL);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"TX_DATETIME\""));
    assert_non_null(strstr(json, "\"delay_days\":\t7"));
    free(json);
    /* the spec alone computes the same file */
    const char *a2[] = {NULL, "features", "--data", in, "--spec", spec, "--out", out2, NULL};
    run_fedc(&pr, 0, a2);
    proc_result_release(&pr);
    char *f1 = proc_read_file(out1, NULL), *f2 = proc_read_file(out2, NULL);
    assert_non_null(f1);
    assert_non_null(f2);
    assert_string_equal(f1, f2);
    free(f2);
    /* flags that agree with it are fine */
    const char *a3[] = {
        NULL,       "features", "--data",      in,           "--spec",   spec, "--out",
        out2,       "--time",   "TX_DATETIME", "--calendar", "--window", win,  "--time-format",
        "datetime", NULL};
    run_fedc(&pr, 0, a3);
    proc_result_release(&pr);
    f2 = proc_read_file(out2, NULL);
    assert_string_equal(f1, f2);
    free(f2);
    free(f1);
    /* flags that differ are refused, naming the flag and the spec's value */
    const struct {
        const char *flag, *value, *msg;
    } differ[] = {
        {"--time", "OTHER", "--time 'OTHER' differs from the spec file"},
        {"--window", "CUSTOMER_ID:1:count",
         "--window 'CUSTOMER_ID:1:count' differs from the spec "
         "file"},
        {"--time-format", "epoch", "--time-format 'epoch' differs from the spec file"},
    };
    for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
        const char *a[] = {NULL, "features",     "--data",        in,  "--spec", spec, "--out",
                           out2, differ[i].flag, differ[i].value, NULL};
        run_fedc(&pr, 2, a);
        assert_non_null(strstr(pr.err, differ[i].msg));
        assert_non_null(strstr(pr.err, "spec.json"));
        proc_result_release(&pr);
    }
    /* a spec without the calendar refuses --calendar */
    char *nocal = tpath(state, "nocal.json");
    const char *a4[] = {NULL, "features", "--data", in,           "--time", "TX_DATETIME", "--out",
                        out2, "--window", win,      "--spec-out", nocal,    NULL};
    run_fedc(&pr, 0, a4);
    proc_result_release(&pr);
    const char *a5[] = {NULL,  "features", "--data", in,           "--spec",
                        nocal, "--out",    out2,     "--calendar", NULL};
    run_fedc(&pr, 2, a5);
    assert_non_null(strstr(pr.err, "--calendar 'true' differs from the spec file"));
    proc_result_release(&pr);
    /* bad spec files: the file and the key */
    const struct {
        const char *text, *msg;
    } bads[] = {
        {"{\"format\": \"fedc-features-spec\", \"version\": 1, \"time\": \"TX_DATETIME\", "
         "\"time_format\": \"datetime\", \"calendar\": true, \"windows\": [{\"entity\": "
         "\"CUSTOMER_ID\", \"days\": [0], \"aggregates\": [{\"kind\": \"count\"}]}]}",
         "bad.json: key 'windows[0].days[0]': expected whole days in 1..3650, got 0"},
        {"{\"format\": \"fedc-features-spec\", \"version\": 1, \"time\": \"TX_DATETIME\", "
         "\"time_format\": \"datetime\", \"windows\": []}",
         "bad.json: key 'calendar': missing"},
        {"{\"format\": \"fedc-features-spec\",\n\"version\": 1 \"time\"}", "bad.json:2:"},
    };
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        assert_int_equal(proc_write_file(bad, bads[i].text), 0);
        const char *a[] = {NULL, "features", "--data", in, "--spec", bad, "--out", out2, NULL};
        run_fedc(&pr, 2, a);
        if (!strstr(pr.err, bads[i].msg))
            show(bads[i].msg, &pr);
        assert_non_null(strstr(pr.err, bads[i].msg));
        assert_int_equal(strncmp(pr.err, "fedc features: --spec ", 22), 0);
        proc_result_release(&pr);
    }
    const char *a6[] = {NULL,    "features", "--data", in, "--spec", "/nonexistent.json",
                        "--out", out2,       NULL};
    run_fedc(&pr, 2, a6);
    assert_non_null(strstr(pr.err, "/nonexistent.json: cannot open"));
    proc_result_release(&pr);
    free(in);
    free(out1);
    free(out2);
    free(spec);
    free(bad);
    free(nocal);
}

/* ---- memory --------------------------------------------------------------------------------- */

/* Runs argv with stdout and stderr to /dev/null; returns its exit status, its peak RSS in *kb. */
static int run_rss(const char *const *argv, long *kb) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *n = freopen("/dev/null", "w", stdout);
        (void)n;
        /* ASan keeps freed blocks in a quarantine (256 MiB by default) that would count as
         * resident: keep it small, so that an ASan build measures the program */
        const char *old = getenv("ASAN_OPTIONS");
        char opts[1024];
        snprintf(opts, sizeof opts, "%s%squarantine_size_mb=4", old ? old : "", old ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    assert_int_equal(wait4(pid, &status, 0, &ru), pid);
    *kb = ru.ru_maxrss;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_memory_bounded(void **state) {
    char *in = tpath(state, "big.csv"), *out = tpath(state, "big-out.csv");
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    static char buf[1 << 16];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    fprintf(f, "TX_ID,T,CUSTOMER,TERMINAL,AMOUNT,NOTE\n");
    /* 2.5 million rows in time order over 250 days, 20 000 customers, 5 000 terminals */
    const long n_rows = 2500000;
    for (long i = 0; i < n_rows; i++)
        fprintf(f, "%ld,%ld,c%ld,t%ld,%ld.%02ld,some text to make the rows wider\n", i,
                1500000000L + i * 250 * DAY / n_rows, (long)rnd_below(20000), (long)rnd_below(5000),
                (long)rnd_below(300), (long)rnd_below(100));
    assert_int_equal(fclose(f), 0);
    struct stat st;
    assert_int_equal(stat(in, &st), 0);
    long rss = 0;
    const char *argv[] = {g_fedc,
                          "features",
                          "--data",
                          in,
                          "--time",
                          "T",
                          "--time-format",
                          "epoch",
                          "--out",
                          out,
                          "--window",
                          "CUSTOMER:1:count,mean=AMOUNT;TERMINAL:1:count,sum=AMOUNT",
                          NULL};
    assert_int_equal(run_rss(argv, &rss), 0);
    assert_int_equal(stat(out, &st) == 0 && st.st_size > 0, 1);
    struct stat si;
    assert_int_equal(stat(in, &si), 0);
    print_message("input %lld MiB, output %lld MiB, peak RSS %ld MiB\n",
                  (long long)si.st_size >> 20, (long long)st.st_size >> 20, rss >> 10);
    /* holding the input alone would take its size; the windows hold ~10 000 rows a day */
    assert_true(si.st_size > (100 << 20));
    assert_true(rss * 1024L < si.st_size / 3);
    unlink(in);
    unlink(out);
    free(in);
    free(out);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-FEDC\n", argv[0]);
        return 2;
    }
    g_fedc = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sort_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
