/* fedc tune on German credit over 3 clients (tests/fixtures/german_credit, split here):
 *
 * - a deliberately bad starting point (SGD at 1e-5, 1 local epoch, 4 rounds) is measured here by a
 *   federation of the same shards and seed, on the same federated validation PR-AUC; tune with a
 *   small budget must find a configuration at least 0.03 better;
 * - the file it writes is read by fedc-coordinator --config (--print-config shows every key as
 *   coming from the file), and a federation started from it reproduces the validation value tune
 *   reported (--secagg off: bit-identical runs);
 * - it never reads the test file: test.csv next to the shards is a FIFO, on which an open blocks
 *   (we run as root, so permissions would not stop a read), and, where strace exists, no process
 *   of the run opens it while the traced clients do open the shards. The negative control: fedc
 *   sim given that file as --test hangs on it;
 * - the same seed gives the same table and file (with --jobs 1 and 2; secure aggregation off,
 * tune's default), another seed other draws; with --secagg on the trials run too;
 * - --budget stops the search on time, kills its federations and reports the best so far;
 * - bad input: unknown metric, no trials, no shards, unreadable shards, exit 2. */
#define _POSIX_C_SOURCE 200809L
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fed.h"
#include "fed_expect.h"

#define SEED "7"
#define TUNE_TIMEOUT 150

static const char *g_coord, *g_client, *g_fedc;

typedef struct ctx {
    fed_pair p;
    char *shards[3];
    char *shard_list; /* a,b,c */
    char *fifo;       /* DIR/test.csv */
} ctx;

static int setup(void **state) {
    ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    void *ps = NULL;
    if (fed_pair_setup(&ps, "fedc-test-tune-", g_coord, g_client)) {
        free(c);
        return -1;
    }
    c->p = *(fed_pair *)ps;
    free(ps);
    fed *f = &c->p.f[0];
    if (fed_write_shards(f, 3, "shard"))
        return -1;
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
        char name[16];
        snprintf(name, sizeof name, "shard%d.csv", k);
        c->shards[k] = fed_path(f, name);
        n += strlen(c->shards[k]) + 1;
    }
    c->shard_list = malloc(n);
    snprintf(c->shard_list, n, "%s,%s,%s", c->shards[0], c->shards[1], c->shards[2]);
    c->fifo = fed_path(f, "test.csv");
    if (mkfifo(c->fifo, 0600) != 0)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state) {
    ctx *c = *state;
    for (int k = 0; k < 3; k++)
        free(c->shards[k]);
    free(c->shard_list);
    free(c->fifo);
    fed_release(&c->p.f[0], !c->p.ok);
    fed_release(&c->p.f[1], !c->p.ok);
    free(c);
    return 0;
}

/* Runs a federation of the three shards (clients named after the files, as fedc tune's are)
 * with the coordinator's args; returns the last line of its metrics file (caller frees). */
static char *federation(fed *f, ctx *c, const char *const *args) {
    char *metrics = fed_fpath(f, "rounds.jsonl");
    const char *a[40];
    int n = 0;
    for (; args[n]; n++)
        a[n] = args[n];
    const char *fixed[] = {"--min-clients", "3", "--secagg", "off", "--metrics-json", metrics};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        a[n++] = fixed[i];
    a[n] = NULL;
    assert_int_equal(fed_start_coord(f, NULL, a, 0, 15), 0);
    for (int k = 0; k < 3; k++) {
        char name[16];
        snprintf(name, sizeof name, "shard%d", k);
        assert_true(fed_start_client(f, name, c->shards[k], NULL,
                                     (const char *[]){"--secagg", "off", NULL}) >= 0);
    }
    fed_expect_exit(&f->coord, 120, 0);
    for (int k = 0; k < 3; k++)
        fed_expect_exit(&f->cl[k], 20, 0);
    char *text = proc_read_file(metrics, NULL);
    assert_non_null(text);
    free(metrics);
    size_t len = strlen(text);
    while (len && text[len - 1] == '\n')
        text[--len] = 0;
    char *last = strrchr(text, '\n');
    char *line = strdup(last ? last + 1 : text);
    free(text);
    return line;
}

static double line_num(const char *line, const char *key) {
    double v = NAN;
    assert_int_equal(fed_json_num(line, key, &v), 1);
    return v;
}

static const char *find_strace(void) {
    static const char *const where[] = {"/usr/bin/strace", "/bin/strace", "/usr/local/bin/strace"};
    for (size_t i = 0; i < sizeof where / sizeof *where; i++)
        if (access(where[i], X_OK) == 0)
            return where[i];
    return NULL;
}

/* Runs fedc tune with the shards and extra args (NULL-terminated), under strace writing
 * trace_out when that is given and strace exists. */
static void run_tune(proc_result *r, ctx *c, const char *const *extra, const char *trace_out,
                     int timeout_s) {
    const char *a[64];
    int n = 0;
    const char *st = trace_out ? find_strace() : NULL;
    if (st) {
        a[n++] = st;
        a[n++] = "-f";
        a[n++] = "-qq";
        a[n++] = "-e";
        a[n++] = "trace=open,openat,openat2,creat,execve";
        a[n++] = "-o";
        a[n++] = trace_out;
    }
    a[n++] = g_fedc;
    a[n++] = "tune";
    a[n++] = "--shards";
    a[n++] = c->shard_list;
    a[n++] = "--label";
    a[n++] = "bad";
    for (int i = 0; extra[i]; i++)
        a[n++] = extra[i];
    a[n] = NULL;
    /* LeakSanitizer (an ASan build) stops the world with ptrace at exit, which a traced process
     * cannot: its check is off under strace, and on in every other run of this test */
    char asan[512];
    const char *prev = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sdetect_leaks=0", prev ? prev : "",
             prev && *prev ? ":" : "");
    const char *env[] = {"OMP_NUM_THREADS=1", st ? asan : NULL, NULL};
    assert_int_equal(proc_run(r, a, env, timeout_s), 0);
    if (r->timed_out)
        fail_msg("fedc tune ran past %d s: did it open the FIFO test.csv (an open blocks)?\n"
                 "stdout:\n%s\nstderr:\n%s",
                 timeout_s, r->out, r->err);
    if (r->status != 0)
        print_message("fedc tune: status %d\nstdout:\n%s\nstderr:\n%s\n", r->status, r->out,
                      r->err);
}

/* The value and round in the config file's "; federated validation pr_auc V at round R" line. */
static double ini_value(const char *ini, int *round) {
    const char *p = strstr(ini, "; federated validation pr_auc ");
    assert_non_null(p);
    double v;
    assert_int_equal(sscanf(p, "; federated validation pr_auc %lf at round %d", &v, round), 2);
    return v;
}

static void test_tune_beats_bad_start(void **state) {
    ctx *c = *state;
    fed *f = &c->p.f[0];
    /* the bad starting point, measured on the same validation rows */
    char *bad_line = federation(f, c,
                                (const char *[]){"--rounds", "4", "--seed", SEED, "--lr", "1e-5",
                                                 "--optimizer", "sgd", "--local-epochs", "1",
                                                 "--select-metric", "pr_auc", NULL});
    double bad = line_num(bad_line, "best_value");
    free(bad_line);

    char *ini_path = fed_fpath(f, "best.ini");
    char *trace = fed_fpath(f, "strace.txt");
    proc_result r;
    run_tune(&r, c,
             (const char *[]){"--trials", "8", "--jobs", "2", "--rounds", "16", "--seed", SEED,
                              "--secagg", "off", "--budget", "100", "--out", ini_path, NULL},
             trace, TUNE_TIMEOUT);
    assert_int_equal(r.status, 0);
    fputs(r.out, stdout);
    /* the ranked table: a header and one row per trial */
    assert_non_null(strstr(r.out, "rank   trial  optimizer"));
    assert_non_null(strstr(r.out, "\n   8  "));
    assert_null(strstr(r.out, "budget ran out"));
    proc_result_release(&r);

    char *ini = proc_read_file(ini_path, NULL);
    assert_non_null(ini);
    int round = 0;
    double tuned = ini_value(ini, &round);
    print_message("bad start: validation PR-AUC %.4f; tuned: %.4f (round %d)\n", bad, tuned, round);
    assert_true(tuned >= bad + 0.03);

    /* never opened test.csv; the trace covers the clients (they open the shards) */
    if (find_strace()) {
        char *t = proc_read_file(trace, NULL);
        assert_non_null(t);
        assert_non_null(strstr(t, "shard1.csv\""));
        assert_non_null(strstr(t, "fedc-coordinator\""));
        assert_non_null(strstr(t, "fedc-client\""));
        const char *hit = strstr(t, "test.csv");
        if (hit) {
            const char *from = hit - t > 200 ? hit - 200 : t;
            fail_msg("fedc tune's processes opened test.csv:\n%.300s", from);
        }
        free(t);
    } else {
        print_message("strace not found: the FIFO alone checks that test.csv is not opened\n");
    }

    /* fedc-coordinator reads every key of the file, from the file */
    assert_int_equal(proc_run(&r,
                              (const char *[]){g_coord, "--config", ini_path, "--print-config",
                                               "--insecure", NULL},
                              NULL, 30),
                     0);
    assert_int_equal(r.status, 0);
    const char *sec = strstr(ini, "[coordinator]\n");
    assert_non_null(sec);
    int lineno = 1, keys = 0;
    for (const char *p = ini; p < sec; p++)
        lineno += *p == '\n';
    for (const char *p = strchr(sec, '\n') + 1; *p; p = strchr(p, '\n') + 1) {
        lineno++;
        char key[64], val[64];
        assert_int_equal(sscanf(p, "%63s = %63s", key, val), 2);
        char want[256], src[1200];
        snprintf(want, sizeof want, "\n%s = %s ", key, val);
        snprintf(src, sizeof src, "; file %s:%d\n", ini_path, lineno);
        const char *l = strstr(r.out, want);
        if (!l)
            fail_msg("--print-config lacks '%s = %s':\n%s", key, val, r.out);
        const char *e = strchr(l + 1, '\n');
        const char *s = strstr(l, src);
        if (!s || s + strlen(src) - 1 != e)
            fail_msg("--print-config: %s should come from %s:%d:\n%s", key, ini_path, lineno,
                     r.out);
        keys++;
    }
    assert_true(keys >= 9);
    proc_result_release(&r);

    /* a federation from the file reproduces what tune reported */
    char *line = federation(&c->p.f[1], c, (const char *[]){"--config", ini_path, NULL});
    assert_int_equal((int)line_num(line, "round"), round);
    double again = line_num(line, "val_pr_auc");
    print_message("the file's federation: validation PR-AUC %.9g at round %d\n", again, round);
    assert_true(fabs(again - tuned) <= 1e-6);
    free(line);
    free(ini);
    free(ini_path);
    free(trace);
    c->p.ok = 1;
}

/* The trap works: fedc sim given the FIFO as its test set blocks on it. */
static void test_fifo_trap_catches_a_reader(void **state) {
    ctx *c = *state;
    proc_result r;
    assert_int_equal(proc_run(&r,
                              (const char *[]){g_fedc, "sim", "--shards", c->shard_list, "--test",
                                               c->fifo, "--label", "bad", "--baselines", "none",
                                               "--secagg", "off", "--rounds", "1", "--quiet", NULL},
                              NULL, 8),
                     0);
    assert_true(r.timed_out);
    proc_result_release(&r);
    c->p.ok = 1;
}

/* The table without its seconds column (the last). */
static char *table_of(const char *out) {
    const char *t = strstr(out, "rank   trial");
    assert_non_null(t);
    char *s = strdup(t);
    char *w = s;
    for (const char *p = s; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        size_t cut = len;
        while (cut && p[cut - 1] != ' ')
            cut--;
        if (cut == 0 || strncmp(p, "best:", 5) == 0)
            cut = len;
        if (strncmp(p, "best:", 5) == 0) { /* "..., in 1.2 s; written to" */
            const char *in = strstr(p, ", in ");
            cut = in && in < p + len ? (size_t)(in - p) : len;
        }
        memmove(w, p, cut);
        w += cut;
        *w++ = '\n';
        p += len + (e ? 1 : 0);
    }
    *w = 0;
    return s;
}

static void test_same_seed_same_search(void **state) {
    ctx *c = *state;
    fed *f = &c->p.f[0];
    char *ini[3] = {fed_fpath(f, "a.ini"), fed_fpath(f, "b.ini"), fed_fpath(f, "c.ini")};
    const char *jobs[3] = {"1", "2", "2"}, *seeds[3] = {"11", "11", "12"};
    char *tables[3];
    for (int i = 0; i < 3; i++) {
        proc_result r;
        run_tune(&r, c,
                 (const char *[]){"--trials", "5", "--rounds", "4", "--quiet", "--jobs", jobs[i],
                                  "--seed", seeds[i], "--out", ini[i], NULL},
                 NULL, TUNE_TIMEOUT);
        assert_int_equal(r.status, 0);
        tables[i] = table_of(r.out);
        proc_result_release(&r);
    }
    if (strcmp(tables[0], tables[1]) != 0)
        fail_msg("the same seed, two tables:\n%s\n%s", tables[0], tables[1]);
    assert_string_not_equal(tables[0], tables[2]);
    char *a = proc_read_file(ini[0], NULL), *b = proc_read_file(ini[1], NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    free(a);
    free(b);
    /* secure aggregation on (off by default: the runs above): the trials run with it */
    proc_result r;
    run_tune(&r, c,
             (const char *[]){"--trials", "2", "--rounds", "2", "--quiet", "--secagg", "on",
                              "--out", ini[2], NULL},
             NULL, TUNE_TIMEOUT);
    assert_int_equal(r.status, 0);
    proc_result_release(&r);
    char *on = proc_read_file(ini[2], NULL);
    assert_non_null(on);
    assert_non_null(strstr(on, "secure aggregation on;"));
    free(on);
    for (int i = 0; i < 3; i++) {
        free(tables[i]);
        free(ini[i]);
    }
    c->p.ok = 1;
}

/* Whether a process other than us still runs with `needle` in its command line. */
static int process_with(const char *needle) {
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char p[300];
        snprintf(p, sizeof p, "/proc/%s/cmdline", e->d_name);
        size_t len = 0;
        char *s = proc_read_file(p, &len);
        if (!s)
            continue;
        for (size_t i = 0; i + 1 < len; i++)
            if (!s[i])
                s[i] = ' ';
        found = strstr(s, needle) != NULL && atoi(e->d_name) != (int)getpid();
        free(s);
    }
    closedir(d);
    return found;
}

static void test_budget(void **state) {
    ctx *c = *state;
    fed *f = &c->p.f[0];
    char *ini = fed_fpath(f, "budget.ini");
    char *tmp = fed_fpath(f, "tmp");
    assert_int_equal(mkdir(tmp, 0700), 0);
    char tmpenv[1200];
    snprintf(tmpenv, sizeof tmpenv, "TMPDIR=%s", tmp);
    /* far more work than 3 s: 200 trials of 8, 16 and 32 rounds */
    const char *a[] = {g_fedc,     "tune",     "--shards", c->shard_list, "--label",
                       "bad",      "--trials", "200",      "--rounds",    "32",
                       "--jobs",   "2",        "--quiet",  "--secagg",    "off",
                       "--budget", "3",        "--out",    ini,           NULL};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    proc_result r;
    assert_int_equal(proc_run(&r, a, (const char *[]){tmpenv, NULL}, 60), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    print_message("fedc tune --budget 3: %.1f s, status %d\n%s", secs, r.status, r.out);
    assert_false(r.timed_out);
    assert_true(secs < 3 + 12);
    assert_non_null(strstr(r.out, "the budget ran out after"));
    if (r.status == 0) { /* some trial finished in 3 s: the best so far is written */
        char *text = proc_read_file(ini, NULL);
        assert_non_null(text);
        assert_non_null(strstr(text, "\n; the --budget ran out: the search was cut short\n"));
        free(text);
    } else { /* a very loaded machine */
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "no trial finished within the --budget"));
        assert_false(proc_exists(ini));
    }
    proc_result_release(&r);
    /* its federations were killed (their clients name our shards) and its directory removed */
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_false(process_with(c->shards[0]));
    DIR *d = opendir(tmp);
    assert_non_null(d);
    struct dirent *e;
    int left = 0;
    while ((e = readdir(d)))
        left += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    assert_int_equal(left, 0);
    free(ini);
    free(tmp);
    c->p.ok = 1;
}

/* fedc tune with args (after "tune") must exit 2 with `msg` on stderr. */
static void expect_usage(const char *const *args, const char *msg) {
    const char *a[32] = {g_fedc, "tune"};
    int n = 2;
    for (int i = 0; args[i]; i++)
        a[n++] = args[i];
    a[n] = NULL;
    proc_result r;
    assert_int_equal(proc_run(&r, a, NULL, 30), 0);
    if (r.status != 2 || !strstr(r.err, msg))
        fail_msg("fedc tune %s ...: status %d, expected 2 and '%s' in:\n%s", args[0], r.status, msg,
                 r.err);
    proc_result_release(&r);
}

static void test_bad_input(void **state) {
    ctx *c = *state;
    fed *f = &c->p.f[0];
    char *out = fed_fpath(f, "never.ini");
    const char *s = c->shard_list;
    expect_usage((const char *[]){"--shards", s, "--label", "bad", "--out", out, "--metric",
                                  "accuracy", NULL},
                 "--metric: expected pr_auc, roc_auc or loss, got 'accuracy'");
    expect_usage(
        (const char *[]){"--shards", s, "--label", "bad", "--out", out, "--trials", "0", NULL},
        "--trials: expected an integer in 1..10000, got '0'");
    expect_usage((const char *[]){"--label", "bad", "--out", out, NULL}, "--shards is required");
    expect_usage((const char *[]){"--shards", s, "--label", "bad", NULL}, "--out is required");
    char missing[1200];
    snprintf(missing, sizeof missing, "%s,%s,%s/nope.csv", c->shards[0], c->shards[1], f->dir);
    expect_usage((const char *[]){"--shards", missing, "--label", "bad", "--out", out, NULL},
                 "nope.csv");
    char dir_shard[1200];
    snprintf(dir_shard, sizeof dir_shard, "%s,%s,%s", c->shards[0], c->shards[1], f->dir);
    expect_usage((const char *[]){"--shards", dir_shard, "--label", "bad", "--out", out, NULL},
                 f->dir);
    char two[1200];
    snprintf(two, sizeof two, "%s,%s", c->shards[0], c->shards[1]);
    expect_usage(
        (const char *[]){"--shards", two, "--label", "bad", "--out", out, "--secagg", "on", NULL},
        "2 shards with secure aggregation");
    expect_usage((const char *[]){"--shards", c->shards[0], "--label", "bad", "--out", out,
                                  "--secagg", "off", NULL},
                 "at least 2 client files");
    expect_usage((const char *[]){"--shards", s, "--label", "nolabel", "--out", out, NULL},
                 "nolabel");
    expect_usage((const char *[]){"--shards", s, "--label", "a1", "--out", out, NULL},
                 "--metric pr_auc needs binary 0/1 labels");
    expect_usage((const char *[]){"--shards", s, "--label", "bad", "--out", out, "--val-fraction",
                                  "0", NULL},
                 "--val-fraction: expected a share in (0, 0.9]");
    char twice[1200];
    snprintf(twice, sizeof twice, "%s,%s", s, c->shards[1]);
    expect_usage((const char *[]){"--shards", twice, "--label", "bad", "--out", out, NULL},
                 "would both be client 'shard1'");
    assert_false(proc_exists(out));
    free(out);
    c->p.ok = 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s FEDC-COORDINATOR FEDC-CLIENT FEDC\n", argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    g_fedc = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_trap_catches_a_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tune_beats_bad_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_seed_same_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
