/* Drives the real `fedc` program as a user would (its path is argv[1]): bad flags and bad data
 * give exit status 2 and one message naming file:line:column; a small run on the German credit
 * fixture writes a model and a one-line JSON report that `fedc eval` can reproduce; damaged model
 * files are refused with the reason; models are bit-identical for any thread count; output paths
 * are used exactly as given; regression and multiclass labels train. What the tests leave out:
 * learning quality (tests/nn/test_learning.c) and the file format details (test_modelfile.c). */
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

#include "jsoncheck.h"
#include "proc.h"

#define GERMAN FEDC_SOURCE_DIR "/tests/fixtures/german_credit/german_credit_numeric.csv"
/* Seconds one fedc run may take before it is killed (generous for sanitizer builds). */
#define RUN_TIMEOUT 120
#define MAX_ARGS 64

/* Set from argv[1] before the tests run: cmocka does not pass argv to tests. */
static const char *g_fedc;

/* Per-test state: a fresh temporary directory, removed afterwards. */
typedef struct ctx {
    char *dir;
} ctx;

static int setup(void **state) {
    ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->dir = proc_mkdtemp("fedc-test-cli-");
    if (!c->dir) {
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

/* A path inside the test's directory; freed by the caller. */
static char *tpath(void **state, const char *name) {
    const ctx *c = *state;
    char *p = proc_path(c->dir, name);
    assert_non_null(p);
    return p;
}

static void show(const char *what, const proc_result *r) {
    print_message("--- %s: status %d, signal %d, timed out %d\n--- stdout:\n%s--- stderr:\n%s---\n",
                  what, r->status, r->term_signal, r->timed_out, r->out ? r->out : "",
                  r->err ? r->err : "");
}

/* Runs fedc with the NULL-terminated arguments after `env` (a NULL-terminated "NAME=value" list,
 * or NULL). The program must have finished on its own. */
__attribute__((sentinel)) static void fedc_run(proc_result *r, const char *const *env, ...) {
    const char *argv[MAX_ARGS + 2];
    int n = 0;
    argv[n++] = g_fedc;
    va_list ap;
    va_start(ap, env);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(n < MAX_ARGS);
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    assert_int_equal(proc_run(r, argv, env, RUN_TIMEOUT), 0);
    if (r->timed_out || r->term_signal)
        show("fedc did not exit normally", r);
    assert_false(r->timed_out);
    assert_int_equal(r->term_signal, 0);
}

static void expect_status(const proc_result *r, int status) {
    if (r->status != status)
        show("unexpected exit status", r);
    assert_int_equal(r->status, status);
}

static int count_char(const char *s, char ch) {
    int n = 0;
    for (; *s; s++)
        n += *s == ch;
    return n;
}

/* A refused run: exit status 2, nothing on stdout, exactly one line on stderr that starts with
 * `start` (the command's name and the location) and contains `also` (may be NULL). */
static void expect_refusal(const proc_result *r, const char *start, const char *also) {
    expect_status(r, 2);
    if (strncmp(r->err, start, strlen(start)) != 0 || (also && !strstr(r->err, also)) ||
        count_char(r->err, '\n') != 1 || r->out_len != 0) {
        print_message("expected one line on stderr starting with '%s'%s%s%s\n", start,
                      also ? " and containing '" : "", also ? also : "", also ? "'" : "");
        show("wrong message", r);
    }
    assert_int_equal(strncmp(r->err, start, strlen(start)), 0);
    if (also)
        assert_non_null(strstr(r->err, also));
    assert_int_equal(count_char(r->err, '\n'), 1);
    assert_int_equal(r->out_len, 0);
}

/* Builds "fedc CMD: PATH<suffix>" into buf (AT_MAX bytes) and returns it. */
#define AT_MAX 1024
static const char *at(char *buf, const char *cmd, const char *path, const char *suffix) {
    snprintf(buf, AT_MAX, "fedc %s: %s%s", cmd, path, suffix);
    return buf;
}

/* Looks up "key":<number> in a one-line JSON object. Returns 1 and the value, 0 for null, -1 when
 * the key is absent or its value is neither. */
static int json_num(const char *json, const char *key, double *v) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    if (strncmp(p, "null", 4) == 0)
        return 0;
    char *end;
    *v = strtod(p, &end);
    if (end == p || (*end != ',' && *end != '}'))
        return -1;
    return 1;
}

/* Checks that no key occurs twice among the members of the outermost object of a one-line JSON
 * text (strings may hold escaped quotes; nested objects and arrays are skipped). Returns 1 when
 * every key is unique, else 0 with the first repeated key in dup (cap bytes). */
static int json_keys_unique(const char *json, char *dup, size_t cap) {
    enum { MAX_KEYS = 256 };
    char keys[MAX_KEYS][64];
    int n = 0, depth = 0;
    for (const char *p = json; *p; p++) {
        if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            depth--;
        } else if (*p == '"') {
            const char *start = ++p;
            while (*p && *p != '"')
                p += p[0] == '\\' && p[1] ? 2 : 1;
            if (!*p)
                break;
            size_t len = (size_t)(p - start);
            if (depth == 1 && p[1] == ':' && n < MAX_KEYS && len < sizeof keys[0]) {
                memcpy(keys[n], start, len);
                keys[n][len] = '\0';
                for (int i = 0; i < n; i++) {
                    if (strcmp(keys[i], keys[n]) == 0) {
                        snprintf(dup, cap, "%s", keys[n]);
                        return 0;
                    }
                }
                n++;
            }
        }
    }
    return 1;
}

/* Reads a metrics file and checks that it is one JSON object on one line in which every key
 * occurs once. Caller frees. */
static char *read_json(const char *path) {
    size_t len = 0;
    char *j = proc_read_file(path, &len);
    if (!j)
        print_message("cannot read %s\n", path);
    assert_non_null(j);
    assert_true(len >= 3);
    assert_int_equal(j[0], '{');
    assert_int_equal(j[len - 1], '\n');
    assert_int_equal(j[len - 2], '}');
    assert_int_equal(count_char(j, '\n'), 1);
    char dup[64];
    if (!json_keys_unique(j, dup, sizeof dup))
        print_message("%s: key '%s' occurs more than once in %s\n", path, dup, j);
    assert_true(json_keys_unique(j, dup, sizeof dup));
    return j;
}

/* Checks that every key holds a number within [lo, hi]. */
static void expect_keys(const char *json, const char *const *keys, double lo, double hi) {
    for (const char *const *k = keys; *k; k++) {
        double v = NAN;
        int got = json_num(json, *k, &v);
        if (got != 1 || !(v >= lo && v <= hi))
            print_message("key '%s': expected a number in [%g, %g] in %s\n", *k, lo, hi, json);
        assert_int_equal(got, 1);
        assert_true(v >= lo && v <= hi);
    }
}

static const char *const BINARY_UNIT_KEYS[] = {"roc_auc", "pr_auc", "accuracy", "precision",
                                               "recall",  "f1",     NULL};
static const char *const BINARY_LOSS_KEYS[] = {"log_loss", NULL};

/* Trains a small binary model on the German credit fixture into `out` (and `json` unless NULL). */
static void train_german(const char *out, const char *json) {
    proc_result r;
    if (json)
        fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", "3",
                 "--pos-weight", "auto", "--quiet", "--out", out, "--metrics-json", json, NULL);
    else
        fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", "3", "--quiet",
                 "--out", out, NULL);
    expect_status(&r, 0);
    proc_result_release(&r);
}

/* ---- bad input: data files -------------------------------------------------------------- */

static void test_missing_label_column(void **state) {
    char *csv = tpath(state, "data.csv");
    assert_int_equal(proc_write_file(csv, "a,b,c,y\n1,2,3,0\n4,5,6,1\n"), 0);
    proc_result r;
    char want[AT_MAX];
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "target", NULL);
    expect_refusal(&r, at(want, "train", csv, ":1: "), "'target'");
    proc_result_release(&r);
    free(csv);
}

static void test_non_numeric_cell(void **state) {
    char *csv = tpath(state, "data.csv");
    /* The planted cell "abc" is on line 4 (the header is line 1), column 3. */
    assert_int_equal(proc_write_file(csv, "a,b,c,y\n1,2,3,0\n4,5,6,1\n7,8,abc,0\n1,1,1,1\n"), 0);
    proc_result r;
    char want[AT_MAX];
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", NULL);
    expect_refusal(&r, at(want, "train", csv, ":4:3: "), "abc");
    proc_result_release(&r);

    /* The same cell in a quoted field and an empty cell on line 2, column 1. */
    assert_int_equal(proc_write_file(csv, "a,b,c,y\n,2,3,0\n4,5,6,1\n"), 0);
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", NULL);
    expect_refusal(&r, at(want, "train", csv, ":2:1: "), NULL);
    proc_result_release(&r);

    /* A bad label cell is reported like any other: line 3, column 4. */
    assert_int_equal(proc_write_file(csv, "a,b,c,y\n1,2,3,0\n4,5,6,yes\n"), 0);
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", NULL);
    expect_refusal(&r, at(want, "train", csv, ":3:4: "), "yes");
    proc_result_release(&r);
    free(csv);
}

static void test_ragged_row(void **state) {
    char *csv = tpath(state, "data.csv");
    /* Line 3 has two fields of four: the first missing one is column 3. */
    assert_int_equal(proc_write_file(csv, "a,b,c,y\n1,2,3,0\n4,5\n7,8,9,1\n"), 0);
    proc_result r;
    char want[AT_MAX];
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", NULL);
    expect_refusal(&r, at(want, "train", csv, ":3:3: "), NULL);
    proc_result_release(&r);

    /* Line 4 has five fields: the extra one is column 5. */
    assert_int_equal(proc_write_file(csv, "a,b,c,y\n1,2,3,0\n4,5,6,1\n7,8,9,1,5\n"), 0);
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", NULL);
    expect_refusal(&r, at(want, "train", csv, ":4:5: "), NULL);
    proc_result_release(&r);
    free(csv);
}

static void test_empty_and_header_only(void **state) {
    char *csv = tpath(state, "data.csv");
    assert_int_equal(proc_write_file(csv, ""), 0);
    proc_result r;
    char want[AT_MAX];
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", NULL);
    expect_refusal(&r, at(want, "train", csv, ": "), "empty");
    proc_result_release(&r);

    assert_int_equal(proc_write_file(csv, "a,b,y\n"), 0);
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", NULL);
    expect_refusal(&r, at(want, "train", csv, ": "), "no data");
    proc_result_release(&r);
    free(csv);
}

static void test_unreadable_path(void **state) {
    const ctx *c = *state;
    char *csv = tpath(state, "does-not-exist.csv");
    proc_result r;
    char want[AT_MAX];
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", NULL);
    expect_refusal(&r, at(want, "train", csv, ": "), NULL);
    proc_result_release(&r);

    /* A directory is not a data file. */
    fedc_run(&r, NULL, "train", "--data", c->dir, "--label", "y", NULL);
    expect_refusal(&r, at(want, "train", c->dir, ": "), NULL);
    proc_result_release(&r);

    char *model = tpath(state, "model.fedc");
    train_german(model, NULL);
    fedc_run(&r, NULL, "eval", "--model", model, "--data", csv, NULL);
    expect_refusal(&r, at(want, "eval", csv, ": "), NULL);
    proc_result_release(&r);
    fedc_run(&r, NULL, "eval", "--model", c->dir, "--data", GERMAN, NULL);
    expect_refusal(&r, at(want, "eval", c->dir, ": "), NULL);
    proc_result_release(&r);
    free(model);
    free(csv);
}

/* Writes a binary CSV of n rows (x1, x2, y) whose label is 1 on the rows listed in pos (n_pos of
 * them) and 0 elsewhere. */
static void write_labels(const char *path, int n, const int *pos, int n_pos) {
    size_t cap = 64 + (size_t)n * 32, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text, cap, "x1,x2,y\n");
    for (int i = 0; i < n; i++) {
        int y = 0;
        for (int k = 0; k < n_pos; k++)
            y |= pos[k] == i;
        len += (size_t)snprintf(text + len, cap - len, "%d.5,%d,%d\n", i % 7, (i * 3) % 11, y);
    }
    assert_int_equal(proc_write_file(path, text), 0);
    free(text);
}

/* A binary label with one class only: nothing to learn, ROC-AUC undefined. Refused with the column
 * and the class named, exit 2, whichever class it is. */
static void test_single_class_label(void **state) {
    char *csv = tpath(state, "one-class.csv");
    proc_result r;
    char want[AT_MAX];
    write_labels(csv, 40, NULL, 0);
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", "--epochs", "1", NULL);
    expect_refusal(&r, at(want, "train", csv, ": label column 'y' holds a single class"),
                   "all 40 rows are 0");
    proc_result_release(&r);
    int all[40];
    for (int i = 0; i < 40; i++)
        all[i] = i;
    write_labels(csv, 40, all, 40);
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", "--epochs", "1", NULL);
    expect_refusal(&r, at(want, "train", csv, ": label column 'y' holds a single class"),
                   "all 40 rows are 1");
    proc_result_release(&r);
    free(csv);
}

/* One positive among 40 rows: it lands in the training part (15% of one row rounds to none), so
 * the test and validation parts hold one class. Training runs; the ranking metrics are reported
 * as undefined (n/a on stdout, null in the JSON), never "nan"; early stopping on ROC-AUC, which
 * cannot work there, is refused naming the validation part. */
static void test_one_class_in_test_part(void **state) {
    char *csv = tpath(state, "rare.csv"), *json = tpath(state, "rare.json");
    write_labels(csv, 40, (const int[]){17}, 1);
    proc_result r;
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", "--epochs", "2", "--quiet",
             "--metrics-json", json, NULL);
    expect_status(&r, 0);
    if (strstr(r.out, "nan") || !strstr(r.out, "roc_auc   n/a (all 6 rows are of class 0)"))
        show("undefined metrics printed as numbers", &r);
    assert_null(strstr(r.out, "nan"));
    assert_non_null(strstr(r.out, "roc_auc   n/a (all 6 rows are of class 0)"));
    assert_non_null(strstr(r.out, "pr_auc    n/a"));
    proc_result_release(&r);
    char *j = read_json(json);
    double v = 0;
    assert_int_equal(json_num(j, "roc_auc", &v), 0); /* null */
    assert_int_equal(json_num(j, "pr_auc", &v), 0);
    assert_int_equal(json_num(j, "accuracy", &v), 1);
    free(j);
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", "--epochs", "2", "--stop-metric",
             "roc_auc", NULL);
    expect_refusal(&r, "fedc train: --stop-metric roc_auc needs both classes in the validation",
                   "are all of class 0");
    proc_result_release(&r);
    free(csv);
    free(json);
}

/* ---- bad input: flags ------------------------------------------------------------------- */

static void test_bad_flags(void **state) {
    (void)state;
    proc_result r;
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--bogus", "1", NULL);
    expect_refusal(&r, "fedc train: ", "unknown option '--bogus'");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", "abc", NULL);
    expect_refusal(&r, "fedc train: --epochs: ", "'abc'");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs=0", NULL);
    expect_refusal(&r, "fedc train: --epochs: ", "'0'");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--lr", "-1", NULL);
    expect_refusal(&r, "fedc train: --lr: ", "'-1'");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--layers", "64,x", NULL);
    expect_refusal(&r, "fedc train: --layers: ", "'64,x'");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--dropout", "1.5", NULL);
    expect_refusal(&r, "fedc train: --dropout: ", "'1.5'");
    proc_result_release(&r);

    /* Positive in double but 0 as a float: refused at parse time, not after loading. */
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--lr", "1e-50", NULL);
    expect_refusal(&r, "fedc train: --lr: ", "'1e-50'");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--pos-weight", "x", NULL);
    expect_refusal(&r, "fedc train: --pos-weight: ", "auto");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--pos-weight", "0", NULL);
    expect_refusal(&r, "fedc train: --pos-weight: ", "'0'");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--seed", "-3", NULL);
    expect_refusal(&r, "fedc train: --seed: ", "'-3'");
    proc_result_release(&r);

    /* strtoull would skip the space and wrap the negative number. */
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--seed", " -1", NULL);
    expect_refusal(&r, "fedc train: --seed: ", "' -1'");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--optimizer", "adagrad", NULL);
    expect_refusal(&r, "fedc train: --optimizer: ", "'adagrad'");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", NULL);
    expect_refusal(&r, "fedc train: --epochs: ", "missing value");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--label", "bad", NULL);
    expect_refusal(&r, "fedc train: ", "--data is required");
    proc_result_release(&r);

    fedc_run(&r, NULL, "train", "--data", GERMAN, NULL);
    expect_refusal(&r, "fedc train: ", "--label is required");
    proc_result_release(&r);

    fedc_run(&r, NULL, "eval", "--data", GERMAN, "--bogus", "1", NULL);
    expect_refusal(&r, "fedc eval: ", "unknown option '--bogus'");
    proc_result_release(&r);

    fedc_run(&r, NULL, "eval", "--data", GERMAN, NULL);
    expect_refusal(&r, "fedc eval: ", "--model is required");
    proc_result_release(&r);

    fedc_run(&r, NULL, "frobnicate", NULL);
    expect_status(&r, 2);
    assert_non_null(strstr(r.err, "unknown command 'frobnicate'"));
    proc_result_release(&r);

    fedc_run(&r, NULL, NULL);
    expect_status(&r, 2);
    proc_result_release(&r);
}

static void test_help(void **state) {
    (void)state;
    static const char *const train_flags[] = {
        "--data",          "--label",        "--drop",      "--task",
        "--layers",        "--activation",   "--dropout",   "--epochs",
        "--batch",         "--lr",           "--optimizer", "--momentum",
        "--weight-decay",  "--l2",           "--l1",        "--pos-weight",
        "--patience",      "--stop-metric",  "--seed",      "--threads",
        "--out",           "--metrics-json", "--threshold", "--val-fraction",
        "--test-fraction", "--quiet",        "--help",      NULL};
    static const char *const eval_flags[] = {"--model",        "--data",      "--label",
                                             "--metrics-json", "--threshold", "--threads",
                                             "--help",         NULL};
    proc_result r;
    fedc_run(&r, NULL, "train", "--help", NULL);
    expect_status(&r, 0);
    for (const char *const *f = train_flags; *f; f++) {
        if (!strstr(r.out, *f))
            print_message("fedc train --help does not mention %s\n", *f);
        assert_non_null(strstr(r.out, *f));
    }
    proc_result_release(&r);

    fedc_run(&r, NULL, "eval", "-h", NULL);
    expect_status(&r, 0);
    for (const char *const *f = eval_flags; *f; f++) {
        if (!strstr(r.out, *f))
            print_message("fedc eval --help does not mention %s\n", *f);
        assert_non_null(strstr(r.out, *f));
    }
    proc_result_release(&r);

    fedc_run(&r, NULL, "help", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "train"));
    assert_non_null(strstr(r.out, "eval"));
    proc_result_release(&r);
}

/* ---- a successful run, then eval -------------------------------------------------------- */

static void test_train_then_eval(void **state) {
    char *model = tpath(state, "model.fedc");
    char *json = tpath(state, "train.json");
    char *json2 = tpath(state, "eval.json");
    proc_result r;
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", "3", "--pos-weight",
             "auto", "--out", model, "--metrics-json", json, NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "threads used:"));
    assert_non_null(strstr(r.out, "1000 rows x 24 features, task binary"));
    assert_true(proc_exists(model));
    proc_result_release(&r);

    /* One JSON object, every key once ("threshold" used to come twice): parsed with cJSON. The
     * check itself must catch a repeated key and a torn object. */
    char why[600];
    assert_int_equal(json_line_check("{\"a\":1,\"b\":{\"c\":2,\"c\":3}}", why, sizeof why), -1);
    assert_non_null(strstr(why, "\"c\" appears twice"));
    assert_int_equal(json_line_check("{\"a\":1", why, sizeof why), -1);
    assert_int_equal(json_line_check("{\"a\":[1,{\"b\":null}],\"c\":\"a\\\"\"}", why, sizeof why),
                     0);
    if (json_file_check(json, why, sizeof why) != 1)
        fail_msg("fedc train --metrics-json: %s", why);
    char *j = read_json(json);
    assert_non_null(strstr(j, "\"task\":\"binary\""));
    expect_keys(j, BINARY_UNIT_KEYS, 0.0, 1.0);
    expect_keys(j, BINARY_LOSS_KEYS, 0.0, 100.0);
    const char *thr = strstr(j, "\"threshold\":");
    assert_non_null(thr);
    assert_null(strstr(thr + 1, "\"threshold\":"));
    double rows = 0;
    assert_int_equal(json_num(j, "rows", &rows), 1);
    assert_true(rows == 150.0); /* the default 15% test split of 1000 rows */
    free(j);

    fedc_run(&r, NULL, "eval", "--model", model, "--data", GERMAN, "--metrics-json", json2, NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "roc_auc"));
    proc_result_release(&r);
    if (json_file_check(json2, why, sizeof why) != 1)
        fail_msg("fedc eval --metrics-json: %s", why);
    j = read_json(json2);
    assert_non_null(strstr(j, "\"task\":\"binary\""));
    expect_keys(j, BINARY_UNIT_KEYS, 0.0, 1.0);
    expect_keys(j, BINARY_LOSS_KEYS, 0.0, 100.0);
    assert_int_equal(json_num(j, "rows", &rows), 1);
    assert_true(rows == 1000.0);
    free(j);
    free(model);
    free(json);
    free(json2);
}

/* --augment changes the training part's class balance as stated: oversample to 0.6 adds exactly
 * ceil(0.6 x negatives) - positives rows; a bad kind or ratio is refused. */
static void test_augment(void **state) {
    (void)state;
    const char *kinds[] = {"oversample:0.6", "smote:0.6", "noise:0.6"};
    for (int k = 0; k < 3; k++) {
        proc_result r;
        fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", "1",
                 "--augment", kinds[k], "--quiet", NULL);
        expect_status(&r, 0);
        const char *p = strstr(r.out, "augment: ");
        assert_non_null(p);
        int added = -1, pos = -1, neg = -1;
        double now = 0;
        assert_int_equal(sscanf(p,
                                "augment: %d synthetic positive rows added to the training part "
                                "(%d positives, %d negatives before; positives/negatives now %lf",
                                &added, &pos, &neg, &now),
                         4);
        assert_true(pos > 100 && neg > 300);
        assert_int_equal(added, (int)ceil(0.6 * neg - 1e-9) - pos);
        assert_true(fabs(now - 0.6) < 2.0 / neg);
        proc_result_release(&r);
    }
    proc_result r;
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--augment", "smote:2", NULL);
    expect_refusal(&r, "fedc train: --augment:", "(0, 1]");
    proc_result_release(&r);
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--augment", "rose", NULL);
    expect_refusal(&r, "fedc train: --augment:", "oversample, smote or noise");
    proc_result_release(&r);
}

/* A threshold chosen on the validation part: with an alert budget of 5% few test rows are
 * flagged (low recall, high precision), with a minimum precision the threshold says where it came
 * from; both together, or on a non-binary task, are refused. */
static void test_operating_threshold(void **state) {
    char *json = tpath(state, "thr.json");
    proc_result r;
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", "5",
             "--alert-budget", "0.05", "--quiet", "--metrics-json", json, NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "chosen on the 200 validation rows for the alert budget 0.05"));
    proc_result_release(&r);
    char *j = read_json(json);
    double recall = -1, precision = -1, thr = -1;
    assert_int_equal(json_num(j, "recall", &recall), 1);
    assert_int_equal(json_num(j, "precision", &precision), 1);
    assert_int_equal(json_num(j, "threshold", &thr), 1);
    assert_non_null(strstr(j, "\"threshold_from\":\"alert budget\""));
    /* 45 of the 150 test rows are positive; about 5% flagged means recall near 0.15. */
    assert_true(recall > 0.0 && recall < 0.3);
    assert_true(precision >= 0.5);
    assert_true(thr > 0.5 && thr <= 1.0);
    free(j);
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", "5",
             "--min-precision", "0.7", "--quiet", "--metrics-json", json, NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "for the minimum precision 0.7"));
    proc_result_release(&r);
    j = read_json(json);
    assert_non_null(strstr(j, "\"threshold_from\":\"minimum precision\""));
    free(j);
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--alert-budget", "0.05",
             "--min-precision", "0.7", NULL);
    expect_status(&r, 2);
    assert_non_null(strstr(r.err, "give one"));
    proc_result_release(&r);
    free(json);
}

/* fedc privacy prints docs/security.md's reference epsilons and refuses incomplete input. */
static void test_privacy(void **state) {
    (void)state;
    proc_result r;
    fedc_run(&r, NULL, "privacy", "--q", "0.01", "--sigma", "1", "--steps", "1000", "--delta",
             "1e-5", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "epsilon = 2.538 (order 8)"));
    proc_result_release(&r);
    fedc_run(&r, NULL, "privacy", "--q", "0.004266667", "--sigma", "1.12", "--steps", "14062",
             "--delta", "1e-5", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "epsilon = 2.922"));
    proc_result_release(&r);
    fedc_run(&r, NULL, "privacy", "--q", "0.01", "--steps", "1000", "--delta", "1e-5",
             "--target-epsilon", "2.538", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "sigma = 1.000"));
    proc_result_release(&r);
    fedc_run(&r, NULL, "privacy", "--q", "0.01", "--steps", "1000", "--delta", "1e-5", NULL);
    expect_refusal(&r, "fedc privacy:", "--sigma or --target-epsilon is required");
    proc_result_release(&r);
    fedc_run(&r, NULL, "privacy", "--q", "2", "--sigma", "1", "--steps", "10", "--delta", "1e-5",
             NULL);
    expect_status(&r, 2);
    proc_result_release(&r);
}

/* ---- DP-SGD ------------------------------------------------------------------------------- */

/* Parses "dp: epsilon = E at delta D over T steps (q Q, sigma S)" from a run's stdout, keeping
 * T, Q and S as printed. Returns 1 when found. */
static int dp_line(const char *out, double *eps, double *delta, char *steps, char *q, char *sigma) {
    const char *p = strstr(out, "dp: epsilon = ");
    if (!p)
        return 0;
    return sscanf(p, "dp: epsilon = %lf at delta %lf over %31s steps (q %31[^,], sigma %31[^)])",
                  eps, delta, steps, q, sigma) == 5;
}

/* The epsilon `fedc privacy` gives for the same q, sigma, steps and delta. */
static double privacy_epsilon(const char *q, const char *sigma, const char *steps,
                              const char *delta) {
    proc_result r;
    fedc_run(&r, NULL, "privacy", "--q", q, "--sigma", sigma, "--steps", steps, "--delta", delta,
             NULL);
    expect_status(&r, 0);
    double e = NAN;
    const char *p = strstr(r.out, "epsilon = ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "epsilon = %lf", &e), 1);
    proc_result_release(&r);
    return e;
}

/* fedc train --dp-clip: the run reports the privacy spent, which is what `fedc privacy` says for
 * the same q, sigma and steps (T = epochs x ceil(650 / 64) training rows per batch, q = 64 / 650:
 * 1000 rows less the 15% test and --val-fraction's default 20% validation shares);
 * --target-epsilon picks a sigma that spends at most the target; the JSON carries the figures. */
static void test_dp_sgd(void **state) {
    char *json = tpath(state, "dp.json");
    proc_result r;
    double eps = NAN, delta = NAN;
    char steps[32], q[32], sigma[32];
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", "4", "--lr", "0.01",
             "--dp-clip", "1", "--dp-noise", "1.1", "--quiet", "--metrics-json", json, NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "dp-sgd: clip 1, noise multiplier 1.1, Poisson sampling"));
    if (!dp_line(r.out, &eps, &delta, steps, q, sigma))
        show("no dp line", &r);
    assert_true(dp_line(r.out, &eps, &delta, steps, q, sigma));
    proc_result_release(&r);
    assert_string_equal(steps, "44");
    assert_true(fabs(atof(q) - 64.0 / 650.0) < 1e-6);
    assert_string_equal(sigma, "1.1");
    assert_true(delta == 1e-5);
    assert_true(eps > 0.1 && eps < 100.0);
    assert_true(fabs(eps - privacy_epsilon(q, sigma, steps, "1e-05")) < 0.0015);
    char *j = read_json(json);
    double je = NAN, js = NAN;
    assert_int_equal(json_num(j, "dp_epsilon", &je), 1);
    assert_int_equal(json_num(j, "dp_steps", &js), 1);
    assert_true(fabs(je - eps) < 0.0006);
    assert_true(js == 44.0);
    free(j);

    /* A target epsilon over the planned steps, shuffled batches, another delta. */
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", "3", "--dp-clip",
             "0.5", "--target-epsilon", "2", "--dp-delta", "1e-6", "--dp-sampling", "shuffle",
             "--patience", "0", "--quiet", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "(from --target-epsilon), shuffled-batch sampling"));
    assert_true(dp_line(r.out, &eps, &delta, steps, q, sigma));
    proc_result_release(&r);
    assert_string_equal(steps, "33");
    assert_true(delta == 1e-6);
    assert_true(eps <= 2.0005 && eps > 1.99);
    assert_true(fabs(eps - privacy_epsilon(q, sigma, steps, "1e-06")) < 0.0015);

    /* Without DP there is no dp line. */
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", "1", "--quiet",
             NULL);
    expect_status(&r, 0);
    assert_null(strstr(r.out, "dp:"));
    proc_result_release(&r);
    free(json);
}

/* Bad DP flags: exit 2 with one line naming the flag; --help lists the DP flags. */
static void test_dp_bad_flags(void **state) {
    (void)state;
    static const char *const dp_flags[] = {"--dp-clip",  "--dp-noise",    "--target-epsilon",
                                           "--dp-delta", "--dp-sampling", NULL};
    proc_result h;
    fedc_run(&h, NULL, "train", "--help", NULL);
    expect_status(&h, 0);
    for (const char *const *f = dp_flags; *f; f++) {
        if (!strstr(h.out, *f))
            print_message("fedc train --help does not mention %s\n", *f);
        assert_non_null(strstr(h.out, *f));
    }
    proc_result_release(&h);
    static const struct {
        const char *args[6];
        const char *start, *msg;
    } cases[] = {
        {{"--dp-noise", "1", NULL}, "fedc train: ", "--dp-noise needs --dp-clip"},
        {{"--target-epsilon", "3", NULL}, "fedc train: ", "--target-epsilon needs --dp-clip"},
        {{"--dp-sampling", "shuffle", NULL}, "fedc train: ", "--dp-sampling needs --dp-clip"},
        {{"--dp-clip", "1", NULL}, "fedc train: ", "needs --dp-noise or --target-epsilon"},
        {{"--dp-clip", "1", "--dp-noise", "1", "--target-epsilon", "2"},
         "fedc train: ",
         "not both"},
        {{"--dp-clip", "0", "--dp-noise", "1", NULL}, "fedc train: --dp-clip: ", "'0'"},
        {{"--dp-clip", "-2", "--dp-noise", "1", NULL}, "fedc train: --dp-clip: ", "'-2'"},
        {{"--dp-clip", "1", "--dp-noise", "-1", NULL}, "fedc train: --dp-noise: ", "'-1'"},
        {{"--dp-clip", "1", "--dp-noise", "x", NULL}, "fedc train: --dp-noise: ", "'x'"},
        /* the option table's range of --dp-delta, every program's */
        {{"--dp-clip", "1", "--dp-noise", "1", "--dp-delta", "1"},
         "fedc train: --dp-delta: ",
         "expected a number in (0, 0.5], got '1'"},
        {{"--dp-clip", "1", "--dp-noise", "1", "--dp-delta", "0"},
         "fedc train: --dp-delta: ",
         "'0'"},
        {{"--dp-clip", "1", "--dp-noise", "1", "--dp-sampling", "fancy"},
         "fedc train: --dp-sampling: ",
         "'fancy'"},
        {{"--dp-clip", "1", "--target-epsilon", "1e-4", NULL},
         "fedc train: --target-epsilon: ",
         "out of reach"},
        {{"--dp-clip", "1", "--dp-noise", "1", "--augment", "smote"},
         "fedc train: --augment ",
         "drop one of --augment and --dp-clip"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *a = cases[i].args;
        proc_result r;
        fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", a[0], a[1], a[2], a[3],
                 a[4], a[5], NULL);
        expect_refusal(&r, cases[i].start, cases[i].msg);
        proc_result_release(&r);
    }
}

/* ---- eval refuses damaged model files and mismatched data -------------------------------- */

static void test_eval_refuses_bad_models(void **state) {
    char *model = tpath(state, "model.fedc");
    char *bad = tpath(state, "bad.fedc");
    train_german(model, NULL);
    size_t len = 0;
    char *bytes = proc_read_file(model, &len);
    assert_non_null(bytes);
    assert_true(len > 100);
    proc_result r;
    char want[AT_MAX];

    /* The intact file is accepted: each refusal below is due to the damage alone. */
    fedc_run(&r, NULL, "eval", "--model", model, "--data", GERMAN, NULL);
    expect_status(&r, 0);
    proc_result_release(&r);

    assert_int_equal(proc_write_bytes(bad, bytes, len / 2), 0);
    fedc_run(&r, NULL, "eval", "--model", bad, "--data", GERMAN, NULL);
    expect_refusal(&r, at(want, "eval", bad, ": "), "truncated");
    proc_result_release(&r);

    assert_int_equal(proc_write_bytes(bad, bytes, 0), 0);
    fedc_run(&r, NULL, "eval", "--model", bad, "--data", GERMAN, NULL);
    expect_refusal(&r, at(want, "eval", bad, ": "), "truncated");
    proc_result_release(&r);

    /* One byte inside the parameters (they end just before the 4-byte checksum). */
    bytes[len - 4 - 37] ^= 0x20;
    assert_int_equal(proc_write_bytes(bad, bytes, len), 0);
    bytes[len - 4 - 37] ^= 0x20;
    fedc_run(&r, NULL, "eval", "--model", bad, "--data", GERMAN, NULL);
    expect_refusal(&r, at(want, "eval", bad, ": "), "checksum");
    proc_result_release(&r);

    bytes[0] = 'X';
    assert_int_equal(proc_write_bytes(bad, bytes, len), 0);
    bytes[0] = 'F';
    fedc_run(&r, NULL, "eval", "--model", bad, "--data", GERMAN, NULL);
    expect_refusal(&r, at(want, "eval", bad, ": "), "magic");
    proc_result_release(&r);

    /* A CSV file is not a model either. */
    fedc_run(&r, NULL, "eval", "--model", GERMAN, "--data", GERMAN, NULL);
    expect_refusal(&r, at(want, "eval", GERMAN, ": "), "magic");
    proc_result_release(&r);
    free(bytes);
    free(model);
    free(bad);
}

/* Copies the German credit CSV without column `skip` (0-based). */
static void write_without_column(const char *path, int skip) {
    size_t len = 0;
    char *src = proc_read_file(GERMAN, &len);
    assert_non_null(src);
    char *dst = malloc(len + 1);
    assert_non_null(dst);
    size_t k = 0;
    const char *p = src, *end = src + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        int col = 0, emitted = 0;
        for (const char *f = p; f <= eol; col++) {
            const char *fe = memchr(f, ',', (size_t)(eol - f));
            if (!fe)
                fe = eol;
            if (col != skip) {
                if (emitted++)
                    dst[k++] = ',';
                memcpy(dst + k, f, (size_t)(fe - f));
                k += (size_t)(fe - f);
            }
            f = fe + 1;
        }
        dst[k++] = '\n';
        p = eol + 1;
    }
    assert_int_equal(proc_write_bytes(path, dst, k), 0);
    free(src);
    free(dst);
}

static void test_eval_missing_feature(void **state) {
    char *model = tpath(state, "model.fedc");
    char *csv = tpath(state, "no-a5.csv");
    train_german(model, NULL);
    write_without_column(csv, 4);
    size_t len = 0;
    char *head = proc_read_file(csv, &len);
    assert_non_null(head);
    assert_int_equal(strncmp(head, "a1,a2,a3,a4,a6,", 15), 0);
    free(head);
    proc_result r;
    char want[AT_MAX];
    fedc_run(&r, NULL, "eval", "--model", model, "--data", csv, NULL);
    expect_refusal(&r, at(want, "eval", csv, ":1: "), "'a5'");
    proc_result_release(&r);
    free(model);
    free(csv);
}

/* ---- reproducibility across thread counts ----------------------------------------------- */

#ifdef _OPENMP
#define THREADS_2 "threads used: 2\n"
#define THREADS_3 "threads used: 3\n"
#else
#define THREADS_2 "threads used: 1\n"
#define THREADS_3 "threads used: 1\n"
#endif

/* Trains with dropout on the German credit fixture; `threads` is an extra flag pair or NULL. */
static void train_dropout(const char *out, const char *seed, const char *omp_env,
                          const char *threads, const char *used) {
    const char *env[] = {omp_env, NULL};
    proc_result r;
    if (threads)
        fedc_run(&r, env, "train", "--data", GERMAN, "--label", "bad", "--dropout", "0.3",
                 "--epochs", "3", "--seed", seed, "--threads", threads, "--out", out, NULL);
    else
        fedc_run(&r, env, "train", "--data", GERMAN, "--label", "bad", "--dropout", "0.3",
                 "--epochs", "3", "--seed", seed, "--out", out, NULL);
    expect_status(&r, 0);
    if (!strstr(r.out, used))
        show(used, &r);
    assert_non_null(strstr(r.out, used));
    proc_result_release(&r);
}

static void expect_same_file(const char *a, const char *b, int same) {
    size_t la = 0, lb = 0;
    char *x = proc_read_file(a, &la), *y = proc_read_file(b, &lb);
    assert_non_null(x);
    assert_non_null(y);
    assert_true(la > 0);
    int eq = la == lb && memcmp(x, y, la) == 0;
    if (eq != same)
        print_message("%s and %s: expected %s files\n", a, b, same ? "identical" : "different");
    assert_int_equal(eq, same);
    free(x);
    free(y);
}

static void test_bit_identical_across_threads(void **state) {
    char *a = tpath(state, "a.fedc"), *b = tpath(state, "b.fedc");
    char *c = tpath(state, "c.fedc"), *other = tpath(state, "seed8.fedc");
    train_dropout(a, "7", "OMP_NUM_THREADS=1", NULL, "threads used: 1\n");
    train_dropout(b, "7", "OMP_NUM_THREADS=2", NULL, THREADS_2);
    /* --threads overrides the environment; three threads split the rows unevenly. */
    train_dropout(c, "7", "OMP_NUM_THREADS=1", "3", THREADS_3);
    expect_same_file(a, b, 1);
    expect_same_file(a, c, 1);
    /* The comparison can fail: another seed gives another model. */
    train_dropout(other, "8", "OMP_NUM_THREADS=1", NULL, "threads used: 1\n");
    expect_same_file(a, other, 0);
    /* Not with DP-SGD: its noise and sampling come from secret randomness, so the same seed and
     * thread count give different models (by design: known noise would be no privacy). */
    char *dp1 = tpath(state, "dp1.fedc"), *dp2 = tpath(state, "dp2.fedc");
    const char *env[] = {"OMP_NUM_THREADS=1", NULL};
    const char *outs[] = {dp1, dp2};
    for (int i = 0; i < 2; i++) {
        proc_result r;
        fedc_run(&r, env, "train", "--data", GERMAN, "--label", "bad", "--epochs", "2", "--seed",
                 "7", "--dp-clip", "1", "--dp-noise", "1", "--out", outs[i], NULL);
        expect_status(&r, 0);
        proc_result_release(&r);
    }
    expect_same_file(dp1, dp2, 0);
    free(dp1);
    free(dp2);
    free(a);
    free(b);
    free(c);
    free(other);
}

/* ---- output paths ----------------------------------------------------------------------- */

static void test_output_paths_exact(void **state) {
    const ctx *c = *state;
    char *model = tpath(state, "model_without_extension");
    char *json = tpath(state, "metrics_without_extension");
    train_german(model, json);
    assert_true(proc_exists(model));
    assert_true(proc_exists(json));
    /* Nothing else: no extension added, no temporary file left behind. */
    DIR *dir = opendir(c->dir);
    assert_non_null(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strcmp(e->d_name, "model_without_extension") != 0 &&
            strcmp(e->d_name, "metrics_without_extension") != 0)
            print_message("unexpected file %s\n", e->d_name);
        n++;
    }
    closedir(dir);
    assert_int_equal(n, 2);
    free(model);
    free(json);
}

static void test_output_path_unwritable(void **state) {
    char *model = tpath(state, "no-such-dir/model");
    proc_result r;
    fedc_run(&r, NULL, "train", "--data", GERMAN, "--label", "bad", "--epochs", "1", "--quiet",
             "--out", model, NULL);
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "fedc train: --out: "));
    assert_non_null(strstr(r.err, model));
    proc_result_release(&r);
    free(model);
}

/* A file too small for a test split gets metrics on the training part, labelled as such. */
static void test_tiny_file_has_no_test_split(void **state) {
    char *csv = tpath(state, "tiny.csv");
    char *json = tpath(state, "tiny.json");
    assert_int_equal(proc_write_file(csv, "a,b,y\n1,2,0\n2,1,1\n3,3,0\n"), 0);
    proc_result r;
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", "--epochs", "2", "--quiet",
             "--metrics-json", json, NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "training-set metrics (no test split)"));
    assert_null(strstr(r.out, "test metrics ("));
    proc_result_release(&r);
    char *j = read_json(json);
    assert_non_null(strstr(j, "\"split\":\"train\""));
    free(j);
    free(csv);
    free(json);
}

/* ---- other tasks ------------------------------------------------------------------------ */

static void test_regression(void **state) {
    char *csv = tpath(state, "linear.csv");
    char *json = tpath(state, "metrics.json");
    char *model = tpath(state, "model.fedc");
    /* y = 3 x1 - 2 x2 + 1 on a grid: easy enough that 40 epochs reach r2 > 0.99. */
    size_t cap = 64 * 400, k = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    k += (size_t)snprintf(text + k, cap - k, "x1,x2,y\n");
    for (int i = 0; i < 400; i++) {
        double x1 = (double)(i % 20) / 10.0 - 1.0, x2 = (double)(i / 20) / 10.0 - 1.0;
        k += (size_t)snprintf(text + k, cap - k, "%.3f,%.3f,%.4f\n", x1, x2,
                              3.0 * x1 - 2.0 * x2 + 1.0);
    }
    assert_int_equal(proc_write_bytes(csv, text, k), 0);
    free(text);
    proc_result r;
    char want[AT_MAX];
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", "--task", "regression", "--epochs",
             "40", "--lr", "0.01", "--quiet", "--out", model, "--metrics-json", json, NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "task regression"));
    proc_result_release(&r);
    char *j = read_json(json);
    assert_non_null(strstr(j, "\"task\":\"regression\""));
    static const char *const rmse[] = {"rmse", NULL};
    static const char *const r2[] = {"r2", NULL};
    expect_keys(j, rmse, 0.0, 1.0);
    expect_keys(j, r2, 0.9, 1.0);
    free(j);

    /* The same labels without --task regression are not classes. */
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "y", NULL);
    expect_refusal(&r, at(want, "train", csv, ":"), "regression");
    proc_result_release(&r);
    free(csv);
    free(json);
    free(model);
}

static void test_multiclass(void **state) {
    char *csv = tpath(state, "three.csv");
    char *json = tpath(state, "metrics.json");
    char *json2 = tpath(state, "eval.json");
    char *model = tpath(state, "model.fedc");
    /* Three classes by the sign pattern of two features. */
    size_t cap = 64 * 300, k = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    k += (size_t)snprintf(text + k, cap - k, "u,v,class\n");
    for (int i = 0; i < 300; i++) {
        double u = (double)((i * 37) % 101) / 50.0 - 1.0, v = (double)((i * 53) % 97) / 48.0 - 1.0;
        int cls = u < -0.3 ? 0 : (v < 0.0 ? 1 : 2);
        k += (size_t)snprintf(text + k, cap - k, "%.3f,%.3f,%d\n", u, v, cls);
    }
    assert_int_equal(proc_write_bytes(csv, text, k), 0);
    free(text);
    proc_result r;
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "class", "--epochs", "20", "--quiet",
             "--out", model, "--metrics-json", json, NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "task multiclass (3 classes)"));
    proc_result_release(&r);
    static const char *const unit[] = {"accuracy", "macro_f1", NULL};
    static const char *const loss[] = {"log_loss", NULL};
    char *j = read_json(json);
    assert_non_null(strstr(j, "\"task\":\"multiclass\""));
    expect_keys(j, unit, 0.6, 1.0); /* chance is 1/3; 20 epochs reach about 0.95 */
    expect_keys(j, loss, 0.0, 100.0);
    free(j);

    fedc_run(&r, NULL, "eval", "--model", model, "--data", csv, "--metrics-json", json2, NULL);
    expect_status(&r, 0);
    proc_result_release(&r);
    j = read_json(json2);
    assert_non_null(strstr(j, "\"task\":\"multiclass\""));
    expect_keys(j, unit, 0.0, 1.0);
    free(j);

    /* --pos-weight is for binary labels only. */
    fedc_run(&r, NULL, "train", "--data", csv, "--label", "class", "--pos-weight", "2", NULL);
    expect_refusal(&r, "fedc train: --pos-weight", "multiclass");
    proc_result_release(&r);
    free(csv);
    free(json);
    free(json2);
    free(model);
}

/* fedc keygen: the file pair with its modes, no silent replacement, bad names refused. */
static void test_keygen(void **state) {
    char *dir = tpath(state, "keys");
    proc_result r;
    fedc_run(&r, NULL, "keygen", "--name", "bank-a", "--out", dir, NULL);
    expect_status(&r, 0);
    proc_result_release(&r);
    char *pub = tpath(state, "keys/bank-a.key"), *sec = tpath(state, "keys/bank-a.key_secret");
    struct stat st;
    assert_int_equal(stat(sec, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(pub, &st), 0);
    char *text = proc_read_file(pub, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "curve-public-key = \""));
    assert_null(strstr(text, "secret-key"));
    free(text);
    fedc_run(&r, NULL, "keygen", "--name", "bank-a", "--out", dir, NULL);
    expect_refusal(&r, "fedc keygen: ", "already exists");
    proc_result_release(&r);
    fedc_run(&r, NULL, "keygen", "--name", "bank-a", "--out", dir, "--force", NULL);
    expect_status(&r, 0);
    proc_result_release(&r);
    fedc_run(&r, NULL, "keygen", "--name", "../x", "--out", dir, NULL);
    expect_refusal(&r, "fedc keygen: --name: ", "'../x'");
    proc_result_release(&r);
    fedc_run(&r, NULL, "keygen", "--name", "bank-b", NULL);
    expect_refusal(&r, "fedc keygen: --out is required", NULL);
    proc_result_release(&r);
    free(pub);
    free(sec);
    free(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-FEDC\n", argv[0]);
        return 2;
    }
    g_fedc = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_label_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_numeric_cell, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ragged_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_header_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_class_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_class_in_test_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_train_then_eval, setup, teardown),
        cmocka_unit_test(test_augment),
        cmocka_unit_test(test_privacy),
        cmocka_unit_test_setup_teardown(test_dp_sgd, setup, teardown),
        cmocka_unit_test(test_dp_bad_flags),
        cmocka_unit_test_setup_teardown(test_operating_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_refuses_bad_models, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_missing_feature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bit_identical_across_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_paths_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_path_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiny_file_has_no_test_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regression, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiclass, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
