/* Drives `fedc split` as a user would (the program's path is argv[1]): every scheme writes exactly
 * the expected files, each starting with the input's header, and the rows across them are the
 * input's data lines as a multiset, byte for byte (CRLF kept, quoted commas and long decimals
 * untouched); iid sizes differ by at most 1; stratified shards hold floor or ceil(n_c / N) rows of
 * each class; Dirichlet label skew is strong for alpha 0.1 and absent for alpha 100; the same seed
 * gives the same bytes and another seed other files; column:NAME names files after the values and
 * merges rare ones; earlier shards are refused without --force and replaced with it; every bad flag
 * or input exits 2 with one line naming the flag and writes nothing. What the tests leave out: the
 * statistical quality of the Gamma sampler beyond the skew checks, and fsync durability. */
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

#include "proc.h"

#define GERMAN FEDC_SOURCE_DIR "/tests/fixtures/german_credit/german_credit_numeric.csv"
#define ULB FEDC_SOURCE_DIR "/tests/fixtures/ulb_creditcard/creditcard_balanced984.csv"
/* Seconds one fedc run may take before it is killed (generous for sanitizer builds). */
#define RUN_TIMEOUT 100
#define MAX_ARGS 64
#define MAX_FILES 64

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
    c->dir = proc_mkdtemp("fedc-test-split-");
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

/* Runs fedc with argv[0..n) as its arguments. The program must have finished on its own. */
static void fedc_runv(proc_result *r, const char *const *args, int n) {
    const char *argv[MAX_ARGS + 2];
    assert_true(n <= MAX_ARGS);
    argv[0] = g_fedc;
    for (int i = 0; i < n; i++)
        argv[i + 1] = args[i];
    argv[n + 1] = NULL;
    assert_int_equal(proc_run(r, argv, NULL, RUN_TIMEOUT), 0);
    if (r->timed_out || r->term_signal)
        show("fedc did not exit normally", r);
    assert_false(r->timed_out);
    assert_int_equal(r->term_signal, 0);
}

/* Runs fedc with the NULL-terminated arguments. */
__attribute__((sentinel)) static void fedc_run(proc_result *r, ...) {
    const char *args[MAX_ARGS];
    int n = 0;
    va_list ap;
    va_start(ap, r);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(n < MAX_ARGS);
        args[n++] = a;
    }
    va_end(ap);
    fedc_runv(r, args, n);
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
 * "fedc split: " and contains `also`. */
static void expect_refusal(const proc_result *r, const char *also) {
    const char *start = "fedc split: ";
    expect_status(r, 2);
    if (strncmp(r->err, start, strlen(start)) != 0 || !strstr(r->err, also) ||
        count_char(r->err, '\n') != 1 || r->out_len != 0) {
        print_message("expected one line on stderr starting with '%s' and containing '%s'\n", start,
                      also);
        show("wrong message", r);
    }
    assert_int_equal(strncmp(r->err, start, strlen(start)), 0);
    assert_non_null(strstr(r->err, also));
    assert_int_equal(count_char(r->err, '\n'), 1);
    assert_int_equal(r->out_len, 0);
}

/* ---- Reading what split wrote ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dir (not . and ..), sorted; NULL-terminated, caller frees with free_list. */
static char **list_dir(const char *dir, int *n) {
    char **v = calloc(MAX_FILES + 1, sizeof *v);
    assert_non_null(v);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    *n = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        assert_true(*n < MAX_FILES);
        v[(*n)++] = strdup(e->d_name);
        assert_non_null(v[*n - 1]);
    }
    closedir(d);
    qsort(v, (size_t)*n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The lines of a file split: the whole file, and lines pointing into it (NUL-terminated). */
typedef struct lines {
    char *text;
    char **line;
    int n;
} lines;

static void lines_release(lines *l) {
    free(l->text);
    free(l->line);
    memset(l, 0, sizeof *l);
}

/* Splits a file written by split: every line must end in exactly `eol` ("\n" or "\r\n"), the
 * last one included, and no other '\n' or '\r' may occur. */
static void read_shard(lines *l, const char *path, const char *eol) {
    size_t len = 0;
    l->text = proc_read_file(path, &len);
    if (!l->text)
        print_message("cannot read %s\n", path);
    assert_non_null(l->text);
    assert_true(len > 0);
    l->line = calloc(len + 1, sizeof *l->line);
    assert_non_null(l->line);
    l->n = 0;
    const size_t el = strlen(eol);
    size_t i = 0;
    while (i < len) {
        char *nl = memchr(l->text + i, '\n', len - i);
        if (!nl)
            print_message("%s: the last line has no line end\n", path);
        assert_non_null(nl);
        size_t end = (size_t)(nl - l->text) + 1;
        assert_true(end - i >= el);
        if (memcmp(l->text + end - el, eol, el) != 0)
            print_message("%s: line %d does not end in %s\n", path, l->n + 1,
                          el == 2 ? "CRLF" : "LF");
        assert_memory_equal(l->text + end - el, eol, el);
        l->text[end - el] = 0;
        assert_null(strchr(l->text + i, '\r'));
        l->line[l->n++] = l->text + i;
        i = end;
    }
}

/* Splits an input file: lines end in "\n" with an optional '\r' before it; blank lines at the
 * end are dropped. */
static void read_input(lines *l, const char *path) {
    size_t len = 0;
    l->text = proc_read_file(path, &len);
    assert_non_null(l->text);
    l->line = calloc(len + 2, sizeof *l->line);
    assert_non_null(l->line);
    l->n = 0;
    size_t i = 0;
    while (i < len) {
        char *nl = memchr(l->text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - l->text) : len;
        l->text[end] = 0;
        if (end > i && l->text[end - 1] == '\r')
            l->text[end - 1] = 0;
        l->line[l->n++] = l->text + i;
        i = end + 1;
    }
    while (l->n > 1 && l->line[l->n - 1][strspn(l->line[l->n - 1], " \t")] == 0)
        l->n--;
}

/* 0-based index of column `name` in a plain header line (no quotes). */
static int column_index(const char *header, const char *name) {
    int col = 0;
    size_t n = strlen(name);
    for (const char *p = header;; col++) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return col;
        if (!c)
            break;
        p = c + 1;
    }
    fail_msg("column %s not in header %s", name, header);
    return -1;
}

/* The numeric value of field `col` of a plain line. */
static double field_value(const char *line, int col) {
    const char *p = line;
    for (int i = 0; i < col; i++) {
        p = strchr(p, ',');
        assert_non_null(p);
        p++;
    }
    return strtod(p, NULL);
}

/* All shards in a directory, in file-name order. */
typedef struct shards {
    int n;
    char **names;
    lines file[MAX_FILES];
    int rows[MAX_FILES];
    int pos[MAX_FILES]; /* rows whose label is 1 */
} shards;

static void shards_release(shards *s) {
    for (int k = 0; k < s->n; k++)
        lines_release(&s->file[k]);
    free_list(s->names, s->n);
    memset(s, 0, sizeof *s);
}

/* Reads every file in dir as a shard of `input` (eol: the expected line end) and checks that each
 * starts with the input's header and that the data lines across them are the input's data lines,
 * as a multiset. */
static void read_shards(shards *s, const char *dir, const char *input, const char *label,
                        const char *eol) {
    memset(s, 0, sizeof *s);
    lines in;
    read_input(&in, input);
    s->names = list_dir(dir, &s->n);
    const int label_col = column_index(in.line[0], label);
    int total = 0;
    for (int k = 0; k < s->n; k++) {
        char *p = proc_path(dir, s->names[k]);
        assert_non_null(p);
        read_shard(&s->file[k], p, eol);
        free(p);
        assert_true(s->file[k].n >= 1);
        assert_string_equal(s->file[k].line[0], in.line[0]);
        s->rows[k] = s->file[k].n - 1;
        for (int i = 1; i < s->file[k].n; i++)
            s->pos[k] += field_value(s->file[k].line[i], label_col) == 1.0;
        total += s->rows[k];
    }
    if (total != in.n - 1)
        print_message("%d rows across the shards, %d in %s\n", total, in.n - 1, input);
    assert_int_equal(total, in.n - 1);
    char **got = malloc(((size_t)total + 1) * sizeof *got);
    assert_non_null(got);
    int m = 0;
    for (int k = 0; k < s->n; k++)
        for (int i = 1; i < s->file[k].n; i++)
            got[m++] = s->file[k].line[i];
    qsort(got, (size_t)total, sizeof *got, cmp_str);
    qsort(in.line + 1, (size_t)total, sizeof *in.line, cmp_str);
    for (int i = 0; i < total; i++) {
        if (strcmp(got[i], in.line[i + 1]) != 0)
            print_message("multiset differs: '%s' vs '%s'\n", got[i], in.line[i + 1]);
        assert_string_equal(got[i], in.line[i + 1]);
    }
    free(got);
    lines_release(&in);
}

/* Checks that dir holds exactly client-1.csv .. client-N.csv, padded to the width of N. */
static void expect_client_names(const shards *s, int n) {
    assert_int_equal(s->n, n);
    int width = n >= 10 ? snprintf(NULL, 0, "%d", n) : 1;
    for (int k = 0; k < n; k++) {
        char want[64];
        snprintf(want, sizeof want, "client-%0*d.csv", width, k + 1);
        assert_string_equal(s->names[k], want);
    }
}

static void expect_sizes_within_one(const shards *s) {
    int lo = s->rows[0], hi = s->rows[0];
    for (int k = 1; k < s->n; k++) {
        lo = s->rows[k] < lo ? s->rows[k] : lo;
        hi = s->rows[k] > hi ? s->rows[k] : hi;
    }
    if (hi - lo > 1)
        print_message("shard sizes range from %d to %d\n", lo, hi);
    assert_true(hi - lo <= 1);
}

/* Largest |positive rate of a shard - positive rate of all rows|. */
static double max_rate_gap(const shards *s) {
    int rows = 0, pos = 0;
    for (int k = 0; k < s->n; k++) {
        rows += s->rows[k];
        pos += s->pos[k];
    }
    double all = (double)pos / rows, gap = 0.0;
    for (int k = 0; k < s->n; k++) {
        double g = fabs((double)s->pos[k] / s->rows[k] - all);
        gap = g > gap ? g : gap;
    }
    return gap;
}

/* 1 when the two files have the same bytes. */
static int same_file(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    char *x = proc_read_file(a, &la), *y = proc_read_file(b, &lb);
    assert_non_null(x);
    assert_non_null(y);
    int same = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

/* ---- Help --------------------------------------------------------------------------------- */

static void test_help(void **state) {
    (void)state;
    static const char *const flags[] = {"--data", "--label",    "--clients", "--scheme",
                                        "--seed", "--out",      "--force",   "--quiet",
                                        "--help", "--min-rows", NULL};
    proc_result r;
    fedc_run(&r, "split", "--help", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "usage: fedc split"));
    for (const char *const *f = flags; *f; f++) {
        if (!strstr(r.out, *f))
            print_message("fedc split --help does not mention %s\n", *f);
        assert_non_null(strstr(r.out, *f));
    }
    assert_non_null(strstr(r.out, "dirichlet:ALPHA"));
    assert_non_null(strstr(r.out, "column:NAME"));
    assert_non_null(strstr(r.out, "--force"));
    proc_result_release(&r);
    fedc_run(&r, "help", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "  split "));
    proc_result_release(&r);
}

/* ---- Schemes ------------------------------------------------------------------------------ */

static void test_iid(void **state) {
    char *out = tpath(state, "shards"); /* does not exist yet: split creates it */
    proc_result r;
    fedc_run(&r, "split", "--data", GERMAN, "--label", "bad", "--clients", "7", "--scheme", "iid",
             "--seed", "3", "--out", out, NULL);
    expect_status(&r, 0);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    shards s;
    read_shards(&s, out, GERMAN, "bad", "\n");
    expect_client_names(&s, 7);
    expect_sizes_within_one(&s);
    assert_true(s.rows[0] == 142 || s.rows[0] == 143);
    /* One summary line per file, then the total. */
    assert_int_equal(count_char(r.out, '\n'), 8);
    char want[1024];
    snprintf(want, sizeof want, "%s/client-1.csv rows=%d pos=%d pos_rate=", out, s.rows[0],
             s.pos[0]);
    if (strncmp(r.out, want, strlen(want)) != 0)
        show("summary", &r);
    assert_int_equal(strncmp(r.out, want, strlen(want)), 0);
    assert_non_null(strstr(r.out, "\ntotal files=7 rows=1000 pos=300 pos_rate=0.3000\n"));
    shards_release(&s);
    proc_result_release(&r);

    /* The ULB file: long decimals, copied byte for byte; --quiet prints nothing. */
    char *out2 = tpath(state, "ulb");
    fedc_run(&r, "split", "--data", ULB, "--label", "Class", "--clients", "3", "--quiet", "--out",
             out2, NULL);
    expect_status(&r, 0);
    assert_int_equal(r.out_len, 0);
    read_shards(&s, out2, ULB, "Class", "\n");
    expect_client_names(&s, 3);
    expect_sizes_within_one(&s);
    shards_release(&s);
    proc_result_release(&r);
    free(out);
    free(out2);
}

static void test_padded_names(void **state) {
    char *out = tpath(state, "twelve");
    proc_result r;
    fedc_run(&r, "split", "--data", GERMAN, "--label", "bad", "--clients", "12", "--out", out,
             NULL);
    expect_status(&r, 0);
    shards s;
    read_shards(&s, out, GERMAN, "bad", "\n");
    expect_client_names(&s, 12); /* client-01.csv .. client-12.csv */
    expect_sizes_within_one(&s);
    shards_release(&s);
    proc_result_release(&r);
    free(out);
}

/* Every shard holds floor or ceil(n_c / N) rows of each class. */
static void check_stratified(void **state, const char *data, const char *label, int n, int n_pos,
                             int n_rows, const char *clients) {
    char *out = tpath(state, clients);
    proc_result r;
    fedc_run(&r, "split", "--data", data, "--label", label, "--clients", clients, "--scheme",
             "stratified", "--out", out, NULL);
    expect_status(&r, 0);
    shards s;
    read_shards(&s, out, data, label, "\n");
    expect_client_names(&s, n);
    expect_sizes_within_one(&s);
    const int n_neg = n_rows - n_pos;
    for (int k = 0; k < n; k++) {
        int neg = s.rows[k] - s.pos[k];
        if (s.pos[k] < n_pos / n || s.pos[k] > (n_pos + n - 1) / n || neg < n_neg / n ||
            neg > (n_neg + n - 1) / n)
            print_message("shard %d: %d positives, %d negatives; expected %d..%d and %d..%d\n", k,
                          s.pos[k], neg, n_pos / n, (n_pos + n - 1) / n, n_neg / n,
                          (n_neg + n - 1) / n);
        assert_true(s.pos[k] >= n_pos / n && s.pos[k] <= (n_pos + n - 1) / n);
        assert_true(neg >= n_neg / n && neg <= (n_neg + n - 1) / n);
    }
    shards_release(&s);
    proc_result_release(&r);
    free(out);
}

static void test_stratified(void **state) {
    check_stratified(state, GERMAN, "bad", 6, 300, 1000, "6");
    check_stratified(state, GERMAN, "bad", 7, 300, 1000, "7");
    check_stratified(state, ULB, "Class", 11, 492, 984, "11");
}

/* Splits the German data with a Dirichlet scheme into dir `name` (min_rows NULL: the default). */
static void dirichlet_run(void **state, shards *s, const char *name, const char *scheme,
                          const char *clients, const char *seed, const char *min_rows) {
    char *out = tpath(state, name);
    proc_result r;
    if (min_rows)
        fedc_run(&r, "split", "--data", GERMAN, "--label", "bad", "--clients", clients, "--scheme",
                 scheme, "--seed", seed, "--min-rows", min_rows, "--out", out, NULL);
    else
        fedc_run(&r, "split", "--data", GERMAN, "--label", "bad", "--clients", clients, "--scheme",
                 scheme, "--seed", seed, "--out", out, NULL);
    expect_status(&r, 0);
    read_shards(s, out, GERMAN, "bad", "\n");
    expect_client_names(s, atoi(clients));
    proc_result_release(&r);
    free(out);
}

static int smallest_shard(const shards *s) {
    int lo = s->rows[0];
    for (int k = 1; k < s->n; k++)
        lo = s->rows[k] < lo ? s->rows[k] : lo;
    return lo;
}

static void test_dirichlet(void **state) {
    /* Small alpha: some clients are dominated by one class, far from the overall 30%. No client
     * is empty (the default floor). */
    static const char *const seeds[] = {"1", "2", "3"};
    int small_seen = 0;
    for (int i = 0; i < 3; i++) {
        shards s;
        dirichlet_run(state, &s, seeds[i], "dirichlet:0.1", "5", seeds[i], NULL);
        double gap = max_rate_gap(&s);
        print_message("dirichlet:0.1 seed %s: largest positive-rate gap %.3f, smallest shard %d\n",
                      seeds[i], gap, smallest_shard(&s));
        assert_true(gap > 0.25);
        assert_true(smallest_shard(&s) >= 1);
        small_seen |= smallest_shard(&s) < 30;
        shards_release(&s);
    }
    /* --min-rows raises the floor: draws that leave a client below it are redrawn. */
    assert_true(small_seen); /* else the check below would prove nothing */
    for (int i = 0; i < 3; i++) {
        shards s;
        char name[32];
        snprintf(name, sizeof name, "floor-%s", seeds[i]);
        dirichlet_run(state, &s, name, "dirichlet:0.1", "5", seeds[i], "30");
        assert_true(smallest_shard(&s) >= 30);
        assert_true(max_rate_gap(&s) > 0.25); /* still skewed */
        shards_release(&s);
    }
    /* Large alpha: every client close to the overall class mix and to 1000 / 5 rows. */
    shards s;
    dirichlet_run(state, &s, "uniform", "dirichlet:100", "5", "1", NULL);
    double gap = max_rate_gap(&s);
    print_message("dirichlet:100: largest positive-rate gap %.3f\n", gap);
    assert_true(gap < 0.08);
    for (int k = 0; k < s.n; k++)
        assert_true(s.rows[k] >= 150 && s.rows[k] <= 250);
    shards_release(&s);
}

/* The same seed gives the same bytes; another seed gives other files. */
static void test_seeds(void **state) {
    static const char *const schemes[] = {"iid", "stratified", "dirichlet:0.5"};
    for (int i = 0; i < 3; i++) {
        char *a = tpath(state, "a"), *b = tpath(state, "b"), *c = tpath(state, "c");
        proc_result r;
        const char *seeds[] = {"5", "5", "6"};
        char *dirs[] = {a, b, c};
        for (int j = 0; j < 3; j++) {
            fedc_run(&r, "split", "--data", GERMAN, "--label", "bad", "--clients", "4", "--scheme",
                     schemes[i], "--seed", seeds[j], "--out", dirs[j], NULL);
            expect_status(&r, 0);
            proc_result_release(&r);
        }
        int differ = 0;
        for (int k = 1; k <= 4; k++) {
            char name[32];
            snprintf(name, sizeof name, "client-%d.csv", k);
            char *pa = proc_path(a, name), *pb = proc_path(b, name), *pc = proc_path(c, name);
            if (!same_file(pa, pb))
                print_message("%s: %s differs between two runs with seed 5\n", schemes[i], name);
            assert_true(same_file(pa, pb));
            differ += !same_file(pa, pc);
            free(pa);
            free(pb);
            free(pc);
        }
        if (differ == 0)
            print_message("%s: seeds 5 and 6 gave the same files\n", schemes[i]);
        assert_true(differ > 0);
        for (int j = 0; j < 3; j++) {
            assert_int_equal(proc_rmtree(dirs[j]), 0);
            free(dirs[j]);
        }
    }
}

/* Rows are copied as text: quoted commas, doubled quotes, blanks, long decimals and odd number
 * forms come out as they went in; CRLF files give CRLF files; a last line without its line end
 * gets one; blank lines at the end are dropped. */
static void test_bytes_exact(void **state) {
    static const char *const cell[] = {
        "3.14159265358979323846264338327950288419716939937510",
        "1e-320",
        " 007 ",
        "\"a, b\"",
        "\"say \"\"hi\"\"\"",
        "-0.000000000000000000000000000000000001",
        "0x1p-3",
        "1.0000000000000000000000001",
        "\xc3\xa9t\xc3\xa9",
        "",
    };
    const int n_cell = (int)(sizeof cell / sizeof cell[0]);
    for (int variant = 0; variant < 2; variant++) {
        const char *eol = variant == 0 ? "\r\n" : "\n";
        size_t cap = 1 << 16, len = 0;
        char *text = malloc(cap);
        assert_non_null(text);
        len += (size_t)snprintf(text + len, cap - len, "\"id\",\"note, text\",y,value%s", eol);
        const int rows = 57;
        for (int i = 0; i < rows; i++) {
            len += (size_t)snprintf(text + len, cap - len, "%d,%s,%s,%s%s", i, cell[i % n_cell],
                                    i % 3 == 0 ? "1" : (i % 3 == 1 ? " 0 " : "\"1.0\""),
                                    cell[(i * 7 + 3) % n_cell],
                                    i == rows - 1 && variant == 0 ? "" : eol);
        }
        if (variant == 1)
            len += (size_t)snprintf(text + len, cap - len, "\n  \n\n");
        assert_true(len < cap);
        char *csv = tpath(state, variant == 0 ? "crlf.csv" : "lf.csv");
        char *out = tpath(state, variant == 0 ? "crlf" : "lf");
        assert_int_equal(proc_write_bytes(csv, text, len), 0);
        proc_result r;
        fedc_run(&r, "split", "--data", csv, "--label", "y", "--clients", "4", "--scheme",
                 "stratified", "--out", out, NULL);
        expect_status(&r, 0);
        /* y is 1, " 0 " or "1.0": classes 0 and 1, 38 positives. */
        assert_non_null(strstr(r.out, "total files=4 rows=57 pos=38 "));
        shards s;
        /* read_shards compares header and rows as text and checks every line end. */
        memset(&s, 0, sizeof s);
        read_shards(&s, out, csv, "y", eol);
        expect_client_names(&s, 4);
        shards_release(&s);
        proc_result_release(&r);
        free(csv);
        free(out);
        free(text);
    }
}

static void test_column(void **state) {
    /* 1000 rows: North 400, "South West" 300, east/1 250, Centre 36 (>= 1%: own files), then
     * R1 9, R2 4, R3 1 (under 1% = 10 rows: other.csv). */
    static const struct {
        const char *value;
        int rows;
    } groups[] = {{"North", 400},  {"\"South West\"", 300},
                  {"east/1", 250}, {"Centre", 36},
                  {"R1", 9},       {"R2", 4},
                  {"R3", 1}};
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "id,region,amount,label\n");
    int id = 0;
    for (int round = 0; round < 400; round++) {
        for (int g = 0; g < 7; g++) {
            if (round < groups[g].rows) {
                len += (size_t)snprintf(text + len, cap - len, "%d,%s,%d.%03d,%d\n", id,
                                        groups[g].value, id * 7 % 1000, id % 997, id % 4 == 0);
                id++;
            }
        }
    }
    assert_int_equal(id, 1000);
    assert_true(len < cap);
    char *csv = tpath(state, "regions.csv");
    char *out = tpath(state, "by-region");
    assert_int_equal(proc_write_bytes(csv, text, len), 0);
    proc_result r;
    fedc_run(&r, "split", "--data", csv, "--label", "label", "--scheme", "column:region", "--out",
             out, NULL);
    expect_status(&r, 0);
    shards s;
    read_shards(&s, out, csv, "label", "\n");
    static const char *const want[] = {"other.csv", "region=Centre.csv", "region=North.csv",
                                       "region=South_West.csv", "region=east_1.csv"};
    static const int want_rows[] = {14, 36, 400, 300, 250};
    assert_int_equal(s.n, 5);
    for (int k = 0; k < 5; k++) {
        assert_string_equal(s.names[k], want[k]);
        assert_int_equal(s.rows[k], want_rows[k]);
    }
    /* other.csv holds exactly the R1, R2 and R3 rows. */
    for (int i = 1; i < s.file[0].n; i++)
        assert_non_null(strstr(s.file[0].line[i], ",R"));
    /* Files are listed in value order, other.csv last. */
    const char *p1 = strstr(r.out, "region=Centre.csv rows=36 "),
               *p2 = strstr(r.out, "region=east_1.csv rows=250 "),
               *p3 = strstr(r.out, "other.csv rows=14 ");
    assert_non_null(p1);
    assert_non_null(p2);
    assert_non_null(p3);
    assert_true(p1 < p2 && p2 < p3);
    shards_release(&s);
    proc_result_release(&r);

    /* --clients makes no sense with column:NAME. */
    char *out2 = tpath(state, "by-region-2");
    fedc_run(&r, "split", "--data", csv, "--label", "label", "--scheme", "column:region",
             "--clients", "3", "--out", out2, NULL);
    expect_refusal(&r, "--clients: not used with --scheme column:NAME");
    assert_false(proc_exists(out2));
    proc_result_release(&r);
    /* A column of unique values (an ID) would give only other.csv. */
    fedc_run(&r, "split", "--data", csv, "--label", "label", "--scheme", "column:id", "--out", out2,
             NULL);
    expect_refusal(&r, "--scheme column:id: each of the 1000 values");
    assert_false(proc_exists(out2));
    proc_result_release(&r);
    free(out2);
    free(csv);
    free(out);
    free(text);

    /* Values that sanitise to the same name (ignoring case) get -2, -3. */
    csv = tpath(state, "clash.csv");
    out = tpath(state, "clash");
    assert_int_equal(proc_write_file(csv, "g,y\na b,0\na_b,1\nA_B,0\na b,1\n\"\",0\n"), 0);
    fedc_run(&r, "split", "--data", csv, "--label", "y", "--scheme", "column:g", "--out", out,
             NULL);
    expect_status(&r, 0);
    read_shards(&s, out, csv, "y", "\n");
    static const char *const clash[] = {"g=A_B.csv", "g=_.csv", "g=a_b-2.csv", "g=a_b-3.csv"};
    assert_int_equal(s.n, 4);
    for (int k = 0; k < 4; k++)
        assert_string_equal(s.names[k], clash[k]);
    shards_release(&s);
    proc_result_release(&r);
    free(csv);
    free(out);
}

/* Earlier shards are refused without --force; with it they are replaced and the ones this run
 * does not write are removed; other files are left alone; the input is never overwritten. */
static void test_existing_files(void **state) {
    char *out = tpath(state, "shards");
    proc_result r;
    fedc_run(&r, "split", "--data", GERMAN, "--label", "bad", "--clients", "4", "--out", out, NULL);
    expect_status(&r, 0);
    proc_result_release(&r);
    char *notes = proc_path(out, "notes.txt");
    assert_non_null(notes);
    assert_int_equal(proc_write_file(notes, "keep me\n"), 0);
    char *c1 = proc_path(out, "client-1.csv");
    assert_non_null(c1);
    size_t before_len = 0;
    char *before = proc_read_file(c1, &before_len);
    assert_non_null(before);

    fedc_run(&r, "split", "--data", GERMAN, "--label", "bad", "--clients", "4", "--seed", "2",
             "--out", out, NULL);
    expect_refusal(&r, "--force");
    size_t after_len = 0;
    char *after = proc_read_file(c1, &after_len);
    assert_non_null(after);
    assert_true(after_len == before_len && memcmp(before, after, before_len) == 0);
    free(after);
    proc_result_release(&r);

    fedc_run(&r, "split", "--data", GERMAN, "--label", "bad", "--clients", "3", "--seed", "2",
             "--force", "--out", out, NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.err, "removed 1 earlier shard file"));
    proc_result_release(&r);
    int n = 0;
    char **names = list_dir(out, &n);
    assert_int_equal(n, 4);
    assert_string_equal(names[0], "client-1.csv");
    assert_string_equal(names[2], "client-3.csv");
    assert_string_equal(names[3], "notes.txt");
    free_list(names, n);
    char *kept = proc_read_file(notes, NULL);
    assert_non_null(kept);
    assert_string_equal(kept, "keep me\n");
    free(kept);

    /* An input that is itself one of the shard files is not replaced, even with --force. */
    fedc_run(&r, "split", "--data", c1, "--label", "bad", "--clients", "2", "--force", "--out", out,
             NULL);
    expect_refusal(&r, "(--data)");
    proc_result_release(&r);

    /* --out must be a directory; its parent must exist (an output failure: exit 1). */
    fedc_run(&r, "split", "--data", GERMAN, "--label", "bad", "--clients", "2", "--out", notes,
             NULL);
    expect_refusal(&r, "--out: ");
    proc_result_release(&r);
    char *deep = tpath(state, "no/such/dir");
    fedc_run(&r, "split", "--data", GERMAN, "--label", "bad", "--clients", "2", "--out", deep,
             NULL);
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "fedc split: --out: cannot create directory"));
    proc_result_release(&r);
    free(deep);
    free(before);
    free(c1);
    free(notes);
    free(out);
}

/* ---- Bad input ---------------------------------------------------------------------------- */

typedef struct bad_case {
    const char *args[16]; /* after "split"; "@OUT" is replaced by the output directory */
    const char *message;  /* what stderr must contain */
} bad_case;

static void test_bad_input(void **state) {
    char *reg = tpath(state, "regression.csv");
    char *text = tpath(state, "text.csv");
    char *ragged = tpath(state, "ragged.csv");
    char *empty = tpath(state, "empty.csv");
    char *header = tpath(state, "header.csv");
    char *tiny = tpath(state, "tiny.csv");
    char *out = tpath(state, "never");
    assert_int_equal(proc_write_file(reg, "x,y\n1,0.5\n2,1.5\n3,2\n4,0\n"), 0);
    assert_int_equal(proc_write_file(text, "x,y\n1,0\n2,yes\n"), 0);
    assert_int_equal(proc_write_file(ragged, "x,y\n1,0\n2,1,3\n"), 0);
    assert_int_equal(proc_write_file(empty, ""), 0);
    assert_int_equal(proc_write_file(header, "x,y\n"), 0);
    /* 40 rows, 2 classes: 20 clients of >= 2 rows each are out of reach with alpha 0.01. */
    char buf[4096];
    size_t len = (size_t)snprintf(buf, sizeof buf, "x,y\n");
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%d,%d\n", i, i % 2);
    assert_int_equal(proc_write_bytes(tiny, buf, len), 0);

    const bad_case cases[] = {
        {{"--label", "bad", "--clients", "4", "--out", "@OUT"}, "--data is required"},
        {{"--data", GERMAN, "--clients", "4", "--out", "@OUT"}, "--label is required"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "4"}, "--out is required"},
        {{"--data", GERMAN, "--label", "bad", "--out", "@OUT"}, "--clients is required"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "1", "--out", "@OUT"},
         "--clients: expected an integer in 2..10000, got '1'"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "10001", "--out", "@OUT"},
         "--clients: expected an integer in 2..10000, got '10001'"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "four", "--out", "@OUT"},
         "--clients: expected an integer in 2..10000, got 'four'"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "1001", "--out", "@OUT"},
         "--clients: 1001 clients need at least 1001 data rows"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "4", "--scheme", "random", "--out",
          "@OUT"},
         "--scheme: expected iid, stratified, dirichlet:ALPHA or column:NAME, got 'random'"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "4", "--scheme", "dirichlet", "--out",
          "@OUT"},
         "--scheme: expected dirichlet:ALPHA with ALPHA a number in (0, 1e+06]"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "4", "--scheme", "dirichlet:0", "--out",
          "@OUT"},
         "got 'dirichlet:0'"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "4", "--scheme", "dirichlet:-1", "--out",
          "@OUT"},
         "got 'dirichlet:-1'"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "4", "--scheme", "dirichlet:abc",
          "--out", "@OUT"},
         "got 'dirichlet:abc'"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "4", "--scheme", "dirichlet:nan",
          "--out", "@OUT"},
         "got 'dirichlet:nan'"},
        {{"--data", GERMAN, "--label", "bad", "--scheme", "column:", "--out", "@OUT"},
         "--scheme: expected column:NAME with a column name"},
        {{"--data", GERMAN, "--label", "bad", "--scheme", "column:region", "--out", "@OUT"},
         "--scheme column:NAME: column 'region' not found in header"},
        {{"--data", GERMAN, "--label", "Bad", "--clients", "4", "--out", "@OUT"},
         "--label: column 'Bad' not found in header (did you mean 'bad'?"},
        {{"--data", FEDC_SOURCE_DIR "/no/such.csv", "--label", "bad", "--clients", "4", "--out",
          "@OUT"},
         "--data: cannot open '" FEDC_SOURCE_DIR "/no/such.csv'"},
        {{"--data", FEDC_SOURCE_DIR "/tests", "--label", "bad", "--clients", "4", "--out", "@OUT"},
         "is a directory"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "4", "--seed", "-1", "--out", "@OUT"},
         "--seed: expected a non-negative integer, got '-1'"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "4", "--shards", "4", "--out", "@OUT"},
         "unknown option '--shards'"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "4", "--min-rows", "5", "--out", "@OUT"},
         "--min-rows: only used with --scheme dirichlet:ALPHA"},
        {{"--data", GERMAN, "--label", "bad", "--clients", "4", "--scheme", "dirichlet:1",
          "--min-rows", "300", "--out", "@OUT"},
         "--min-rows: 300 rows for each of 4 clients need 1200 data rows"},
        {{"--data", reg, "--label", "y", "--clients", "2", "--scheme", "stratified", "--out",
          "@OUT"},
         "--scheme stratified: label column 'y' is not a class label"},
        {{"--data", reg, "--label", "y", "--clients", "2", "--scheme", "dirichlet:1", "--out",
          "@OUT"},
         "use --scheme iid for a regression target"},
        {{"--data", text, "--label", "y", "--clients", "2", "--out", "@OUT"},
         ":3:2: label column 'y': expected a number, got 'yes'"},
        {{"--data", ragged, "--label", "y", "--clients", "2", "--out", "@OUT"},
         ":3:3: ragged row: expected 2 fields (as in the header), got 3"},
        {{"--data", empty, "--label", "y", "--clients", "2", "--out", "@OUT"}, "file is empty"},
        {{"--data", header, "--label", "y", "--clients", "2", "--out", "@OUT"},
         "no data rows after the header"},
        {{"--data", tiny, "--label", "y", "--clients", "20", "--scheme", "dirichlet:0.01",
          "--min-rows", "2", "--out", "@OUT"},
         "--scheme dirichlet:0.01: no draw in 100000 gave every client at least 2 rows"},
    };
    const int n_cases = (int)(sizeof cases / sizeof cases[0]);
    for (int c = 0; c < n_cases; c++) {
        const char *args[MAX_ARGS];
        int n = 0;
        args[n++] = "split";
        for (int i = 0; i < 16 && cases[c].args[i]; i++)
            args[n++] = strcmp(cases[c].args[i], "@OUT") == 0 ? out : cases[c].args[i];
        proc_result r;
        fedc_runv(&r, args, n);
        expect_refusal(&r, cases[c].message);
        /* A refused run writes nothing. */
        assert_false(proc_exists(out));
        proc_result_release(&r);
    }
    free(reg);
    free(text);
    free(ragged);
    free(empty);
    free(header);
    free(tiny);
    free(out);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-FEDC\n", argv[0]);
        return 2;
    }
    g_fedc = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_padded_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stratified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirichlet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seeds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
