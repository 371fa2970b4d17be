/* Tests for core/nn data: the CSV loader on good files (names, label in the middle, drop list,
 * quotes, blanks, CRLF, BOM, lines that cross the reader's buffer, values bit-identical to
 * strtof), every error a user can hit
 * (return code and the exact path:line:column prefix of the message), task detection, statistics
 * on a hand-worked matrix, standardisation, the stratified split (sizes, no row lost or repeated,
 * order kept, seeds), pos_weight, and the German credit fixture. Files are written to a mkdtemp
 * directory that the group teardown removes. Every error test prints the message it checked, so
 * the output doubles as a list of the wording users see. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedc/data.h"
#include "fedc/rng.h"

#ifndef FEDC_SOURCE_DIR
#error "FEDC_SOURCE_DIR must name the source tree (the test reads tests/fixtures)"
#endif

#define assert_near(got, want, tol) assert_near_at((got), (want), (tol), __FILE__, __LINE__)

static void assert_near_at(double got, double want, double tol, const char *file, int line) {
    if (!(fabs(got - want) <= tol)) {
        print_error("got %.17g, expected %.17g (tolerance %g)\n", got, want, tol);
        _fail(file, line);
    }
}

/* ---- Files ------------------------------------------------------------------------------- */

typedef struct tmpdir {
    char path[64];
} tmpdir;

static int group_setup(void **state) {
    tmpdir *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    strcpy(t->path, "/tmp/fedc_test_data.XXXXXX");
    if (!mkdtemp(t->path)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int group_teardown(void **state) {
    tmpdir *t = *state;
    DIR *dir = opendir(t->path);
    if (dir) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", t->path, e->d_name);
            unlink(p);
        }
        closedir(dir);
    }
    rmdir(t->path);
    free(t);
    return 0;
}

/* Writes n bytes of content to dir/name and puts the full path in path (256 bytes). */
static void write_bytes(char *path, void **state, const char *name, const char *content, size_t n) {
    const tmpdir *t = *state;
    snprintf(path, 256, "%s/%s", t->path, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_file(char *path, void **state, const char *name, const char *content) {
    write_bytes(path, state, name, content, strlen(content));
}

/* Loads content written to dir/name and asserts success. */
static fedc_dataset *load_ok(void **state, const char *name, const char *content, const char *label,
                             const char *const *drop, int n_drop) {
    char path[256];
    write_file(path, state, name, content);
    fedc_dataset *ds = NULL;
    fedc_diag d = {{0}};
    fedc_err rc = fedc_csv_load(&ds, path, label, drop, n_drop, &d);
    if (rc != FEDC_OK)
        print_error("%s: unexpected error: %s\n", name, d.msg);
    assert_int_equal(rc, FEDC_OK);
    assert_non_null(ds);
    assert_string_equal(d.msg, "");
    return ds;
}

/* Asserts that msg starts with prefix and contains every NULL-terminated key phrase after it. */
static void assert_msg(const char *msg, const char *prefix, ...) {
    if (strncmp(msg, prefix, strlen(prefix)) != 0) {
        print_error("message '%s'\n  does not start with '%s'\n", msg, prefix);
        fail();
    }
    va_list ap;
    va_start(ap, prefix);
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        if (!strstr(msg + strlen(prefix), key)) {
            print_error("message '%s'\n  lacks '%s'\n", msg, key);
            va_end(ap);
            fail();
        }
    }
    va_end(ap);
}

/* Loads a file that must fail with want, then checks the message: it starts with the file's path,
 * then pos (like ":5:3" or ""), then ": ", and contains the NULL-terminated key phrases. */
static void load_fail_at(void **state, const char *name, const char *content, size_t n,
                         const char *label, const char *const *drop, int n_drop, fedc_err want,
                         const char *pos, va_list keys) {
    char path[256], prefix[300];
    write_bytes(path, state, name, content, n);
    fedc_dataset *ds = (fedc_dataset *)&ds; /* must be reset to NULL */
    fedc_diag d = {{0}};
    fedc_err rc = fedc_csv_load(&ds, path, label, drop, n_drop, &d);
    print_message("%s -> %s\n", name, d.msg);
    if (rc != want)
        print_error("%s: got %s, expected %s (%s)\n", name, fedc_strerror(rc), fedc_strerror(want),
                    d.msg);
    assert_int_equal(rc, want);
    assert_null(ds);
    snprintf(prefix, sizeof prefix, "%s%s: ", path, pos);
    if (strncmp(d.msg, prefix, strlen(prefix)) != 0) {
        print_error("message '%s'\n  does not start with '%s'\n", d.msg, prefix);
        fail();
    }
    const char *key;
    while ((key = va_arg(keys, const char *)) != NULL) {
        if (!strstr(d.msg + strlen(prefix), key)) {
            print_error("message '%s'\n  lacks '%s'\n", d.msg, key);
            fail();
        }
    }
}

static void load_fail(void **state, const char *name, const char *content, const char *label,
                      fedc_err want, const char *pos, ...) {
    va_list ap;
    va_start(ap, pos);
    load_fail_at(state, name, content, strlen(content), label, NULL, 0, want, pos, ap);
    va_end(ap);
}

/* load_fail for content that holds NUL bytes: n bytes of it. */
static void load_fail_n(void **state, const char *name, const char *content, size_t n,
                        const char *label, fedc_err want, const char *pos, ...) {
    va_list ap;
    va_start(ap, pos);
    load_fail_at(state, name, content, n, label, NULL, 0, want, pos, ap);
    va_end(ap);
}

static void load_fail_drop(void **state, const char *name, const char *content, const char *label,
                           const char *const *drop, int n_drop, fedc_err want, const char *pos,
                           ...) {
    va_list ap;
    va_start(ap, pos);
    load_fail_at(state, name, content, strlen(content), label, drop, n_drop, want, pos, ap);
    va_end(ap);
}

static void load_fail_n_drop(void **state, const char *name, const char *content, size_t n,
                             const char *label, const char *const *drop, int n_drop, fedc_err want,
                             const char *pos, ...) {
    va_list ap;
    va_start(ap, pos);
    load_fail_at(state, name, content, n, label, drop, n_drop, want, pos, ap);
    va_end(ap);
}

/* ---- Good files -------------------------------------------------------------------------- */

/* Label in the middle, a text column dropped, names and values in file order. */
static void test_load_good(void **state) {
    const char *drop[] = {"note"};
    fedc_dataset *ds = load_ok(state, "good.csv",
                               "id,f1,y,f2,note\n"
                               "1,0.5,0,-2,hello world\n"
                               "2,1e-3,1,3.25,\"quoted text\"\n"
                               "3,-7,0,+4,x\n",
                               "y", drop, 1);
    assert_int_equal(ds->n_rows, 3);
    assert_int_equal(ds->n_features, 3);
    assert_string_equal(ds->feature_names[0], "id");
    assert_string_equal(ds->feature_names[1], "f1");
    assert_string_equal(ds->feature_names[2], "f2");
    assert_string_equal(ds->label_name, "y");
    const float want_x[] = {1, 0.5f, -2, 2, 1e-3f, 3.25f, 3, -7, 4};
    const float want_y[] = {0, 1, 0};
    for (int i = 0; i < 9; i++)
        assert_true(ds->x[i] == want_x[i]);
    for (int i = 0; i < 3; i++)
        assert_true(ds->y[i] == want_y[i]);
    fedc_dataset_destroy(&ds);
    assert_null(ds);
    fedc_dataset_destroy(&ds); /* NULL is accepted */
    fedc_dataset_destroy(NULL);
}

/* Quotes around names and cells, blanks outside and inside them, a quoted label. */
static void test_load_quoted(void **state) {
    fedc_dataset *ds = load_ok(state, "quoted.csv",
                               " \"a\" , \"b b\" ,\"y\"\n"
                               "\" 1.5 \", -2e3 ,\"1\"\n"
                               "  7\t,\"0\",  0  \n",
                               "y", NULL, 0);
    assert_int_equal(ds->n_rows, 2);
    assert_int_equal(ds->n_features, 2);
    assert_string_equal(ds->feature_names[0], "a");
    assert_string_equal(ds->feature_names[1], "b b");
    assert_string_equal(ds->label_name, "y");
    assert_true(ds->x[0] == 1.5f);
    assert_true(ds->x[1] == -2000.0f);
    assert_true(ds->x[2] == 7.0f);
    assert_true(ds->x[3] == 0.0f);
    assert_true(ds->y[0] == 1.0f);
    assert_true(ds->y[1] == 0.0f);
    fedc_dataset_destroy(&ds);
}

/* RFC 4180 quoting (issue 14): a quoted name holding a comma and a doubled quote, a quoted number,
 * a dropped text column whose cells hold commas, quotes and a line break (the line numbers of
 * later rows stay right), and CRLF after a closing quote. */
static void test_load_rfc4180(void **state) {
    const char *drop[] = {"note"};
    fedc_dataset *ds = load_ok(state, "rfc4180.csv",
                               "\"amount, EUR\",\"say \"\"hi\"\"\",note,y\r\n"
                               "\"1.5\",2,\"a, b\",1\r\n"
                               "3,\" 4 \",\"line one\nline \"\"two\"\"\",0\r\n"
                               "5,6,,\"1\"\r\n",
                               "y", drop, 1);
    assert_int_equal(ds->n_rows, 3);
    assert_int_equal(ds->n_features, 2);
    assert_string_equal(ds->feature_names[0], "amount, EUR");
    assert_string_equal(ds->feature_names[1], "say \"hi\"");
    const float want_x[] = {1.5f, 2, 3, 4, 5, 6};
    const float want_y[] = {1, 0, 1};
    for (int i = 0; i < 6; i++)
        assert_true(ds->x[i] == want_x[i]);
    for (int i = 0; i < 3; i++)
        assert_true(ds->y[i] == want_y[i]);
    fedc_dataset_destroy(&ds);
    /* The row after a two-line record is line 5: its error says so. */
    load_fail_drop(state, "rfc4180_bad.csv", "a,note,y\n1,\"x\ny\",0\n2,z,q\n", "y", drop, 1,
                   FEDC_EPARSE, ":4:3", "column 'y'", "got 'q'", NULL);
    /* An unterminated quote fails naming the line where it opened, even many lines later. */
    load_fail(state, "unterminated.csv", "a,y\n1,0\n\"2,1\n3,0\n4,1\n", "y", FEDC_EPARSE, ":3:1",
              "column 'a'", "unmatched double quote", "not closed", NULL);
    load_fail(state, "quote_inside.csv", "a,y\n1,0\n2,1\"\n", "y", FEDC_EPARSE, ":3:2",
              "column 'y'", "double quote inside an unquoted field", NULL);
}

/* CRLF line ends with trailing blank lines (CRLF, spaces, tabs), and no final newline. */
static void test_load_crlf_and_trailing(void **state) {
    fedc_dataset *ds =
        load_ok(state, "crlf.csv", "a,y\r\n1,0\r\n2.5,1\r\n\r\n  \r\n\t\n\r\n", "y", NULL, 0);
    assert_int_equal(ds->n_rows, 2);
    assert_string_equal(ds->label_name, "y");
    assert_true(ds->x[1] == 2.5f);
    assert_true(ds->y[1] == 1.0f);
    fedc_dataset_destroy(&ds);

    ds = load_ok(state, "nonl.csv", "a,y\n1,0\n2,1", "y", NULL, 0);
    assert_int_equal(ds->n_rows, 2);
    assert_true(ds->x[1] == 2.0f);
    assert_true(ds->y[1] == 1.0f);
    fedc_dataset_destroy(&ds);

    ds = load_ok(state, "nonl_crlf.csv", "a,y\r\n1,0\r\n3,1\r", "y", NULL, 0);
    assert_int_equal(ds->n_rows, 2);
    assert_true(ds->x[1] == 3.0f);
    fedc_dataset_destroy(&ds);

    /* A byte order mark, as spreadsheet programs write it, is not part of the first name. */
    ds = load_ok(state, "bom.csv",
                 "\xef\xbb\xbf"
                 "a,y\n1,0\n",
                 "y", NULL, 0);
    assert_string_equal(ds->feature_names[0], "a");
    fedc_dataset_destroy(&ds);
}

/* Values survive exactly as strtof reads them: the loader adds no rounding of its own. */
static void test_load_exact_values(void **state) {
    fedc_dataset *ds = load_ok(state, "exact.csv",
                               "a,b,y\n"
                               "0.1,3.4028234e38,1\n"
                               "1e-40,-0,0\n"
                               "123456789,16,1\n",
                               "y", NULL, 0);
    assert_true(ds->x[0] == 0.1f);
    assert_true(ds->x[1] == 3.4028234e38f);
    assert_true(ds->x[2] == strtof("1e-40", NULL)); /* subnormal, kept */
    assert_true(ds->x[3] == 0.0f && signbit(ds->x[3]));
    assert_true(ds->x[4] == 123456789.0f);
    assert_true(ds->x[5] == 16.0f);
    fedc_dataset_destroy(&ds);
}

/* Writes a random decimal into buf (64 bytes), so that the loader's fast path (short and long
 * significands, dropped digits, exponents within 10^+-22) and its strtof fallback (near
 * midpoints, larger exponents) are both taken. One in four is a random float printed with 9 or 17
 * significant digits, as programs write them; the others have 1 to 20 digits, a point anywhere or
 * none, an optional sign and an exponent within -15..15 (never beyond float range). */
static void random_number(char *buf, fedc_rng *rng) {
    if (fedc_rng_below(rng, 4) == 0) {
        float f = (fedc_rng_uniform(rng) - 0.5f) * powf(10.0f, (float)fedc_rng_below(rng, 60) - 30);
        snprintf(buf, 64, fedc_rng_below(rng, 2) ? "%.9g" : "%.17g", (double)f);
        return;
    }
    int k = 0, nd = 1 + (int)fedc_rng_below(rng, 20), dot = (int)fedc_rng_below(rng, 22);
    uint32_t sign = fedc_rng_below(rng, 3);
    if (sign)
        buf[k++] = sign == 1 ? '-' : '+';
    for (int i = 0; i < nd; i++) {
        if (i == dot)
            buf[k++] = '.';
        buf[k++] = (char)('0' + fedc_rng_below(rng, 10));
    }
    if (fedc_rng_below(rng, 3) == 0)
        k += snprintf(buf + k, 16, "%c%d", fedc_rng_below(rng, 2) ? 'e' : 'E',
                      (int)fedc_rng_below(rng, 31) - 15);
    buf[k] = '\0';
}

/* Every cell reads to exactly the float strtof gives, bit for bit, whichever path the loader
 * takes; a few fixed cells cover forms strtof accepts that the random ones do not. */
static void test_load_matches_strtof(void **state) {
    enum { ROWS = 20000 };
    /* Edge cells: forms without a leading or trailing digit, 2^24 + 1 (not a float), the
     * ends of the fast path's exponent range, the largest and smallest normal floats, a
     * subnormal, a double's worth of digits, the float midpoint 1 + 2^-24 written exactly and
     * one digit either side, more digits than a 64-bit integer holds, and two products whose
     * nearest double is a float midpoint although the decimal is not (rounding that double to
     * float would give the wrong neighbour). */
    static const char *fixed[] = {"1.",
                                  ".5",
                                  "-.5e-3",
                                  "16777217",
                                  "1e22",
                                  "1e23",
                                  "1e-22",
                                  "1e-23",
                                  "0.1",
                                  "-0",
                                  "3.4028235e38",
                                  "1.17549435e-38",
                                  "7e-46",
                                  "00012.5000",
                                  "0.10000000000000000555",
                                  "1.000000059604644775390625",
                                  "1.000000059604644775390624",
                                  "1.000000059604644775390626",
                                  "123456789012345678901234567890",
                                  "170583716784240e9",
                                  "7028351532012707e11"};
    enum { N_FIXED = sizeof fixed / sizeof fixed[0] };
    size_t cap = (size_t)(ROWS + N_FIXED) * 80 + 16, len = 0;
    char *text = malloc(cap);
    char(*cells)[64] = malloc((size_t)(ROWS + N_FIXED) * sizeof *cells);
    assert_non_null(text);
    assert_non_null(cells);
    fedc_rng rng;
    fedc_rng_init(&rng, fedc_rng_key(7, 0x7465u, 0, 0));
    len += (size_t)snprintf(text + len, cap - len, "v,y\n");
    for (int i = 0; i < ROWS + N_FIXED; i++) {
        if (i < N_FIXED)
            snprintf(cells[i], sizeof cells[i], "%s", fixed[i]);
        else
            random_number(cells[i], &rng);
        /* Every third cell quoted, every fifth padded: the quoted path parses in place too. */
        const char *q = i % 3 == 0 ? "\"" : "", *pad = i % 5 == 0 ? " " : "";
        len += (size_t)snprintf(text + len, cap - len, "%s%s%s%s%s,0\n", pad, q, cells[i], q, pad);
    }
    char path[256];
    write_bytes(path, state, "numbers.csv", text, len);
    free(text);
    fedc_dataset *ds = NULL;
    fedc_diag d = {{0}};
    fedc_err rc = fedc_csv_load(&ds, path, "y", NULL, 0, &d);
    if (rc)
        print_error("%s\n", d.msg);
    assert_int_equal(rc, FEDC_OK);
    assert_int_equal(ds->n_rows, ROWS + N_FIXED);
    for (int i = 0; i < ROWS + N_FIXED; i++) {
        float want = strtof(cells[i], NULL);
        if (memcmp(&ds->x[i], &want, sizeof want) != 0) {
            print_error("cell '%s': loaded %.9g, strtof %.9g\n", cells[i], (double)ds->x[i],
                        (double)want);
            fail();
        }
    }
    fedc_dataset_destroy(&ds);
    free(cells);
}

/* 60,000 rows (about 1.7 MB) cross the reader's 1 MiB chunk, and rows of 150 cells padded to
 * 4000 bytes each (600 KB a line) make its buffer grow: every value must come back. */
static void test_load_buffer_boundaries(void **state) {
    enum { ROWS = 60000 };
    size_t cap = (size_t)ROWS * 40 + 64, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "i,half,pad,y\n");
    for (int i = 0; i < ROWS; i++) {
        /* A dropped column of varying width moves the line ends around the chunk boundary. */
        len += (size_t)snprintf(text + len, cap - len, "%d,%d.5,%.*s,%d\n", i, i, i % 7, "xxxxxxx",
                                i % 2);
    }
    char path[256];
    write_bytes(path, state, "many_rows.csv", text, len);
    free(text);
    const char *drop[] = {"pad"};
    fedc_dataset *ds = NULL;
    fedc_diag d = {{0}};
    assert_int_equal(fedc_csv_load(&ds, path, "y", drop, 1, &d), FEDC_OK);
    assert_int_equal(ds->n_rows, ROWS);
    assert_int_equal(ds->n_features, 2);
    for (int i = 0; i < ROWS; i++) {
        assert_true(ds->x[2 * i] == (float)i);
        assert_true(ds->x[2 * i + 1] == (float)i + 0.5f);
        assert_true(ds->y[i] == (float)(i % 2));
    }
    fedc_dataset_destroy(&ds);

    enum { COLS = 150, WIDTH = 4000, LONG_ROWS = 3 };
    cap = (size_t)(LONG_ROWS + 1) * COLS * (WIDTH + 1) + 64;
    text = malloc(cap);
    assert_non_null(text);
    len = 0;
    for (int j = 0; j < COLS; j++)
        len += (size_t)snprintf(text + len, cap - len, "%sc%d", j ? "," : "", j);
    text[len++] = '\n';
    for (int r = 0; r < LONG_ROWS; r++) {
        for (int j = 0; j < COLS; j++) {
            if (j)
                text[len++] = ',';
            memset(text + len, ' ', WIDTH);
            len += WIDTH;
            len += (size_t)snprintf(text + len, cap - len, "%d", r * COLS + j);
        }
        text[len++] = '\n';
    }
    write_bytes(path, state, "long_lines.csv", text, len);
    free(text);
    assert_int_equal(fedc_csv_load(&ds, path, "c0", NULL, 0, &d), FEDC_OK);
    assert_int_equal(ds->n_rows, LONG_ROWS);
    assert_int_equal(ds->n_features, COLS - 1);
    assert_string_equal(ds->feature_names[0], "c1");
    for (int r = 0; r < LONG_ROWS; r++) {
        assert_true(ds->y[r] == (float)(r * COLS));
        for (int j = 1; j < COLS; j++)
            assert_true(ds->x[r * (COLS - 1) + j - 1] == (float)(r * COLS + j));
    }
    fedc_dataset_destroy(&ds);
}

/* The loader reads a line of plain numbers straight from the buffer and hands anything else to
 * the tokenizer (csv_window.h). Rows alternate between the two at random here: a plain line, a
 * quoted or padded cell, a CRLF end, a dropped cell quoted with a comma and a line break in it,
 * a dropped cell of plain text. Every value must come back, and errors found after thousands of
 * rows of either kind must name the right line (the fast path counts the lines it takes). */
static void test_load_fast_and_general_paths(void **state) {
    enum { ROWS = 30000 };
    size_t cap = (size_t)ROWS * 64 + 256, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    fedc_rng rng;
    fedc_rng_init(&rng, fedc_rng_key(11, 0x6670u, 0, 0));
    long line = 1, multi = 0;
    len += (size_t)snprintf(text + len, cap - len, "a,note,b,y\n");
    for (int i = 0; i < ROWS; i++) {
        uint32_t k = (uint32_t)(fedc_rng_next(&rng) % 8);
        char *o = text + len;
        size_t room = cap - len;
        int a = -i, b = i, y = i % 2, w;
        switch (k) {
        case 0:
            w = snprintf(o, room, "\"%d\",n,%d.25,%d\n", a, b, y);
            break;
        case 1:
            w = snprintf(o, room, "%d,n, %d.25 ,%d\n", a, b, y);
            break;
        case 2:
            w = snprintf(o, room, "%d,n,%d.25,%d\r\n", a, b, y);
            break;
        case 3:
            w = snprintf(o, room, "%d,\"x,\ny\",%d.25,%d\n", a, b, y);
            break;
        case 4:
            w = snprintf(o, room, "%d,some text,%d.25,%d\n", a, b, y);
            break;
        default:
            w = snprintf(o, room, "%d,,%d.25,%d\n", a, b, y);
            break;
        }
        len += (size_t)w;
        line += k == 3 ? 2 : 1;
        multi += k == 3;
    }
    assert_true(multi > 0);
    char path[256];
    write_bytes(path, state, "mixed.csv", text, len);
    const char *drop[] = {"note"};
    fedc_dataset *ds = NULL;
    fedc_diag d = {{0}};
    fedc_err rc = fedc_csv_load(&ds, path, "y", drop, 1, &d);
    if (rc)
        print_error("%s\n", d.msg);
    assert_int_equal(rc, FEDC_OK);
    assert_int_equal(ds->n_rows, ROWS);
    for (int i = 0; i < ROWS; i++) {
        if (ds->x[2 * i] != (float)-i || ds->x[2 * i + 1] != (float)i + 0.25f ||
            ds->y[i] != (float)(i % 2)) {
            print_error("row %d: loaded %g, %g, %g\n", i, (double)ds->x[2 * i],
                        (double)ds->x[2 * i + 1], (double)ds->y[i]);
            fail();
        }
    }
    fedc_dataset_destroy(&ds);

    /* Errors after those rows: a line of plain numbers the fast path parses up to a bad cell, a
     * missing field, an extra one, a quote inside a plain cell. */
    static const struct {
        const char *row;
        int col;
        const char *says;
    } bad[] = {
        {"1,n,2.5x,0\n", 3, "expected a number, got '2.5x'"},
        {"1,n,2.5\n", 4, "ragged row: expected 4 fields (as in the header), got 3"},
        {"1,n,2.5,0,7\n", 5, "ragged row: expected 4 fields (as in the header), got 5"},
        {"1,n\"o,2.5,0\n", 2, "double quote inside an unquoted field"},
        {"1,n,2.5,1e39\n", 4, "float range"},
    };
    char *with_bad = malloc(len + 64);
    assert_non_null(with_bad);
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        memcpy(with_bad, text, len);
        size_t n = len + (size_t)snprintf(with_bad + len, 64, "%s2,n,3,1\n", bad[b].row);
        char pos[32], name[32];
        snprintf(pos, sizeof pos, ":%ld:%d", line + 1, bad[b].col);
        snprintf(name, sizeof name, "mixed_bad%zu.csv", b);
        load_fail_n_drop(state, name, with_bad, n, "y", drop, 1, FEDC_EPARSE, pos, bad[b].says,
                         NULL);
    }
    free(with_bad);
    free(text);
}

/* ---- Errors ------------------------------------------------------------------------------ */

static void test_error_cells(void **state) {
    const char *head = "a1,a2,a3,y\n1,2,3,0\n1,2,3,1\n1,2,3,0\n";
    char buf[256];
    snprintf(buf, sizeof buf, "%s1,2,abc,1\n", head);
    load_fail(state, "text.csv", buf, "y", FEDC_EPARSE, ":5:3", "column 'a3'",
              "expected a number, got 'abc'", NULL);
    snprintf(buf, sizeof buf, "%s1,,3,1\n", head);
    load_fail(state, "empty_cell.csv", buf, "y", FEDC_EPARSE, ":5:2", "column 'a2'",
              "expected a number, got an empty cell", NULL);
    load_fail(state, "blank_cell.csv", "a,y\n  ,1\n", "y", FEDC_EPARSE, ":2:1", "column 'a'",
              "empty cell", NULL);
    load_fail(state, "quoted_empty.csv", "a,y\n\" \",1\n", "y", FEDC_EPARSE, ":2:1", "empty cell",
              NULL);
    /* The label is a cell like the others. */
    load_fail(state, "empty_label.csv", "a,y\n1,0\n2,\n", "y", FEDC_EPARSE, ":3:2", "column 'y'",
              "empty cell", NULL);
    load_fail(state, "nan.csv", "a,y\n1,0\nnan,1\n", "y", FEDC_EPARSE, ":3:1",
              "got the missing value 'nan' (pass --missing mean", NULL);
    load_fail(state, "inf.csv", "a,y\n-inf,0\n", "y", FEDC_EPARSE, ":2:1",
              "expected a finite number, got '-inf'", NULL);
    load_fail(state, "infinity.csv", "a,y\n1,\"Infinity\"\n", "y", FEDC_EPARSE, ":2:2",
              "column 'y'", "finite", "'Infinity'", NULL);
    load_fail(state, "overflow.csv", "a,y\n1e39,0\n", "y", FEDC_EPARSE, ":2:1", "float range",
              "got '1e39'", NULL);
    load_fail(state, "overflow_neg.csv", "a,b,y\n1,-3.5e38,0\n", "y", FEDC_EPARSE, ":2:2",
              "column 'b'", "float range", "got '-3.5e38'", NULL);
    /* Hexadecimal numbers, which strtof would read, are refused by name. */
    load_fail(state, "hex.csv", "a,y\n1,0\n0x1p3,1\n", "y", FEDC_EPARSE, ":3:1", "column 'a'",
              "expected a decimal number, got the hexadecimal '0x1p3'", NULL);
    load_fail(state, "hex_quoted.csv", "a,b,y\n1, \" -0X10 \",0\n", "y", FEDC_EPARSE, ":2:2",
              "column 'b'", "hexadecimal '-0X10'", NULL);
    load_fail(state, "hex_label.csv", "a,y\n1,0x1\n", "y", FEDC_EPARSE, ":2:2", "column 'y'",
              "hexadecimal", NULL);
    /* A NUL byte in a row: the line and field are named. */
    static const char nul_row[] = "a,b,y\n1,2,0\n3,4\0,1\n";
    load_fail_n(state, "nul_row.csv", nul_row, sizeof nul_row - 1, "y", FEDC_EPARSE, ":3:2",
                "NUL byte at byte 4 of the line", NULL);
    load_fail(state, "garbage.csv", "a,y\n1.5x,0\n", "y", FEDC_EPARSE, ":2:1",
              "expected a number, got '1.5x'", NULL);
    load_fail(state, "two_numbers.csv", "a,y\n1 2,0\n", "y", FEDC_EPARSE, ":2:1", "got '1 2'",
              NULL);
    load_fail(state, "open_quote.csv", "a,y\n\"1.5,0\n", "y", FEDC_EPARSE, ":2:1",
              "unmatched double quote", NULL);
    load_fail(state, "after_quote.csv", "a,y\n\"1.5\"x,0\n", "y", FEDC_EPARSE, ":2:1", "column 'a'",
              NULL);
    /* A long cell is shown cut, and the message stays whole. */
    char lng[400];
    memset(lng, 'z', sizeof lng);
    snprintf(buf, sizeof buf, "a,y\n%.*s,1\n", 200, lng);
    load_fail(state, "long_cell.csv", buf, "y", FEDC_EPARSE, ":2:1", "zzz...'", NULL);
}

static void test_error_ragged(void **state) {
    load_fail(state, "short.csv", "a,b,c,y\n1,2,3,0\n1,2,3\n", "y", FEDC_EPARSE, ":3:4",
              "ragged row: expected 4 fields (as in the header), got 3", NULL);
    load_fail(state, "long.csv", "a,b,c,y\n1,2,3,0,9\n", "y", FEDC_EPARSE, ":2:5",
              "ragged row: expected 4 fields (as in the header), got 5", NULL);
    load_fail(state, "very_short.csv", "a,b,c,y\n1\n", "y", FEDC_EPARSE, ":2:2",
              "expected 4 fields", "got 1", NULL);
    /* The field count is reported before the text it shifted into a numeric column. */
    load_fail(state, "ragged_text.csv", "a,b,c,y\nabc,2,3\n", "y", FEDC_EPARSE, ":2:4",
              "ragged row", "got 3", NULL);
    /* With the label dropped to the left, a dropped column before the end is still counted. */
    const char *drop[] = {"b"};
    load_fail_drop(state, "ragged_drop.csv", "a,b,y\n1,x\n", "y", drop, 1, FEDC_EPARSE, ":2:3",
                   "ragged row", "expected 3 fields", "got 2", NULL);
    load_fail(state, "blank_middle.csv", "a,y\n1,0\n\n2,1\n", "y", FEDC_EPARSE, ":3:1",
              "ragged row", "expected 2 fields", "empty line", NULL);
    load_fail(state, "blank_middle_crlf.csv", "a,y\r\n1,0\r\n\r\n \r\n2,1\r\n", "y", FEDC_EPARSE,
              ":3:1", "empty line", NULL);
}

static void test_error_file(void **state) {
    load_fail(state, "empty.csv", "", "y", FEDC_EEMPTY, "",
              "file is empty (expected a header line)", NULL);
    load_fail(state, "blank_only.csv", "\n  \r\n\n", "y", FEDC_EEMPTY, "", "file is empty", NULL);
    load_fail(state, "blank_header.csv", "\n1,0\n", "y", FEDC_EPARSE, ":1", "header line is blank",
              NULL);
    load_fail(state, "header_only.csv", "a,y\n", "y", FEDC_EEMPTY, "",
              "no data rows after the header", NULL);
    load_fail(state, "header_only_nonl.csv", "a,y", "y", FEDC_EEMPTY, "", "no data rows", NULL);
    load_fail(state, "header_blanks.csv", "a,y\r\n\r\n\n", "y", FEDC_EEMPTY, "",
              "no data rows after the header", NULL);

    const tmpdir *t = *state;
    char path[256], prefix[300];
    snprintf(path, sizeof path, "%s/missing.csv", t->path);
    fedc_dataset *ds = NULL;
    fedc_diag d = {{0}};
    assert_int_equal(fedc_csv_load(&ds, path, "y", NULL, 0, &d), FEDC_EIO);
    assert_null(ds);
    snprintf(prefix, sizeof prefix, "%s: ", path);
    assert_msg(d.msg, prefix, "cannot open: No such file or directory", NULL);
    print_message("missing.csv -> %s\n", d.msg);

    /* A directory opens but cannot be read. */
    assert_int_equal(fedc_csv_load(&ds, t->path, "y", NULL, 0, &d), FEDC_EIO);
    snprintf(prefix, sizeof prefix, "%s: ", t->path);
    assert_msg(d.msg, prefix, "cannot read", NULL);
    print_message("directory -> %s\n", d.msg);

    /* Bad arguments are refused with a message, and *out is left NULL. */
    assert_int_equal(fedc_csv_load(&ds, path, NULL, NULL, 0, &d), FEDC_EINVAL);
    assert_true(d.msg[0] != '\0');
    assert_int_equal(fedc_csv_load(&ds, path, "y", NULL, 2, &d), FEDC_EINVAL);
    assert_null(ds);
}

static void test_error_header(void **state) {
    load_fail(state, "no_label.csv", "a1,a2,a3\n1,2,3\n", "Class", FEDC_EINVAL, ":1",
              "label column 'Class' not found in header (columns: a1, a2, a3)", NULL);
    load_fail(state, "label_case.csv", "a,class\n1,0\n", "Class", FEDC_EINVAL, ":1",
              "label column 'Class' not found", "did you mean 'class'?", NULL);
    const char *drop_zz[] = {"a", "zz"};
    load_fail_drop(state, "no_drop.csv", "a,b,y\n1,2,0\n", "y", drop_zz, 2, FEDC_EINVAL, ":1",
                   "column to drop 'zz' not found in header (columns: a, b, y)", NULL);
    const char *drop_y[] = {"y"};
    load_fail_drop(state, "drop_label.csv", "a,y\n1,0\n", "y", drop_y, 1, FEDC_EINVAL, ":1:2",
                   "'y' is both the label and in the drop list", NULL);
    const char *drop_a[] = {"a"};
    load_fail_drop(state, "no_features.csv", "a,y\n1,0\n", "y", drop_a, 1, FEDC_EINVAL, ":1",
                   "no feature columns left", NULL);
    load_fail(state, "duplicate.csv", "a,b,c,b,y\n1,2,3,4,0\n", "y", FEDC_EPARSE, ":1:4",
              "duplicate column name 'b'", "columns 2 and 4", NULL);
    load_fail(state, "dup_quoted.csv", "x,\"a\", a ,y\n1,2,3,0\n", "y", FEDC_EPARSE, ":1:3",
              "duplicate column name 'a'", "columns 2 and 3", NULL);
    load_fail(state, "empty_name.csv", "a,,y\n1,2,0\n", "y", FEDC_EPARSE, ":1:2",
              "empty column name", NULL);
    load_fail(state, "open_name.csv", "\"a,b,y\n1,2,0\n", "y", FEDC_EPARSE, ":1:1",
              "unmatched double quote", NULL);
    load_fail(state, "newline_name.csv", "\"a\nb\",y\n1,0\n", "y", FEDC_EPARSE, ":1:1",
              "holds a line break", NULL);
    load_fail(state, "inner_quote.csv", "a,b\"c,y\n1,2,0\n", "y", FEDC_EPARSE, ":1:2",
              "double quote", NULL);
    /* A NUL byte inside a name used to cut it short, here to an empty name (fuzz_csv). */
    static const char nul_name[] = "a,\0\0b,y\n1,2,0\n";
    load_fail_n(state, "nul_name.csv", nul_name, sizeof nul_name - 1, "y", FEDC_EPARSE, ":1:2",
                "NUL byte at byte 3 of the line", "expected text", NULL);
    /* Names must be UTF-8: a stray byte, an overlong form, a surrogate, a cut sequence and a code
     * point above U+10FFFF are each refused with the column and the byte; real UTF-8 is fine. */
    load_fail(state, "latin1_name.csv", "a,b\xe9t\xe9,y\n1,2,0\n", "y", FEDC_EPARSE, ":1:2",
              "column name: invalid UTF-8 byte 0xe9 at byte 2 of the name (after 'b')", NULL);
    load_fail(state, "overlong_name.csv", "a,y,\xc0\xaf\n1,2,0\n", "y", FEDC_EPARSE, ":1:3",
              "invalid UTF-8 byte 0xc0 at byte 1", NULL);
    load_fail(state, "surrogate_name.csv", "x\xed\xa0\x80,y\n1,0\n", "y", FEDC_EPARSE, ":1:1",
              "invalid UTF-8 byte 0xed at byte 2 of the name (after 'x')", NULL);
    load_fail(state, "cut_name.csv", "a,y,ab\xe2\x82\n1,2,0\n", "y", FEDC_EPARSE, ":1:3",
              "invalid UTF-8 byte 0xe2 at byte 3", NULL);
    load_fail(state, "beyond_name.csv", "\xf4\x90\x80\x80,y\n1,0\n", "y", FEDC_EPARSE, ":1:1",
              "invalid UTF-8 byte 0xf4 at byte 1", NULL);
    fedc_dataset *ds =
        load_ok(state, "utf8_names.csv", "caf\xc3\xa9,\xe2\x82\xac,\xf0\x9d\x84\x9e,y\n1,2,3,0\n",
                "y", NULL, 0);
    assert_string_equal(ds->feature_names[0], "caf\xc3\xa9");
    assert_string_equal(ds->feature_names[2], "\xf0\x9d\x84\x9e");
    fedc_dataset_destroy(&ds);

    /* A header of 101 names is listed in part, with the count, and the message is not cut. */
    char head[1024];
    size_t len = 0;
    for (int j = 0; j < 101; j++)
        len += (size_t)snprintf(head + len, sizeof head - len, "%scol%d", j ? "," : "", j);
    snprintf(head + len, sizeof head - len, "\n");
    load_fail(state, "wide.csv", head, "label", FEDC_EINVAL, ":1", "(columns: col0, col1, ",
              "... (101 columns))", NULL);
}

static void test_error_limits(void **state) {
    /* FEDC_CSV_MAX_COLUMNS + 1 names are refused before anything is allocated for them. */
    size_t n = 2 * ((size_t)FEDC_CSV_MAX_COLUMNS + 1);
    char *text = malloc(n + 16);
    assert_non_null(text);
    for (size_t i = 0; i < n; i += 2) {
        text[i] = 'c';
        text[i + 1] = ',';
    }
    text[n - 1] = '\n';
    memcpy(text + n, "1\n", 3);
    char want[64];
    snprintf(want, sizeof want, "header has %d columns, more than the limit of %d",
             FEDC_CSV_MAX_COLUMNS + 1, FEDC_CSV_MAX_COLUMNS);
    load_fail(state, "too_many_columns.csv", text, "c", FEDC_ERANGE, ":1", want, NULL);
    free(text);

    char *name = malloc(FEDC_CSV_MAX_FIELD + 64);
    assert_non_null(name);
    memset(name, 'n', FEDC_CSV_MAX_FIELD + 1);
    memcpy(name + FEDC_CSV_MAX_FIELD + 1, ",y\n1,0\n", 8);
    snprintf(want, sizeof want, "column name is %d bytes long", FEDC_CSV_MAX_FIELD + 1);
    load_fail(state, "long_name.csv", name, "y", FEDC_ERANGE, ":1:1", want, NULL);
    free(name);

    /* Two columns allow 2 * (FEDC_CSV_MAX_FIELD + 8) bytes a line. */
    size_t row = 3 * (size_t)FEDC_CSV_MAX_FIELD;
    text = malloc(row + 32);
    assert_non_null(text);
    memcpy(text, "a,y\n1,0\n", 8);
    memset(text + 8, ' ', row);
    memcpy(text + 8 + row, "1,0\n", 5);
    load_fail(state, "long_line.csv", text, "y", FEDC_ERANGE, ":3", "line is longer than", NULL);
    free(text);
}

/* Resets the peak resident set size the kernel reports as VmHWM (Linux 4.0+); 0 or -1. */
static int reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* The peak resident set size since the last reset, in KiB, or -1. */
static long peak_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* Loads path, which must be refused with want at pos (":1" or ":1:1") saying `says`, and returns
 * how much the peak resident memory grew meanwhile, in KiB. */
static long refused_growth(const char *path, fedc_err want, const char *pos, const char *says) {
    if (reset_peak_rss() != 0 || peak_rss_kib() < 0) {
        print_message("skipped: /proc/self/clear_refs or VmHWM is not available\n");
        skip();
    }
    long before = peak_rss_kib();
    fedc_dataset *ds = NULL;
    fedc_diag d = {{0}};
    fedc_err rc = fedc_csv_load(&ds, path, "y", NULL, 0, &d);
    long grew = peak_rss_kib() - before;
    print_message("%s -> %s (peak memory +%ld KiB)\n", path, d.msg, grew);
    assert_int_equal(rc, want);
    assert_null(ds);
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s%s: ", path, pos);
    assert_msg(d.msg, prefix, says, NULL);
    return grew;
}

/* A 2 GB sparse file (truncate -s 2G: NUL bytes, no line break) used to be refused only after the
 * line buffer had grown to 512 MiB towards the header limit of FEDC_CSV_MAX_COLUMNS x
 * (FEDC_CSV_MAX_FIELD + 8) bytes; it is refused at the first NUL byte, after one 1 MiB read. 32 MB
 * of text without a comma or line break are refused as soon as the first field is longer than a
 * field may be. Either way the load's peak resident memory grows by less than 16 MiB (the file
 * sizes: 2 GiB and 32 MiB). */
static void test_refused_before_growing(void **state) {
    const long LIMIT_KIB = 16 * 1024;
    char path[256];
    write_bytes(path, state, "sparse.csv", "", 0);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)2 << 30), 0);
    assert_int_equal(fclose(f), 0);
    long grew = refused_growth(path, FEDC_EPARSE, ":1:1", "NUL byte at byte 1 of the line");
    unlink(path);
    assert_true(grew < LIMIT_KIB);

    /* Sparse after a good header and row: the data line with the NUL is named. */
    write_bytes(path, state, "sparse_tail.csv", "a,y\n1,0\n", 8);
    f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)1 << 30), 0);
    assert_int_equal(fclose(f), 0);
    grew = refused_growth(path, FEDC_EPARSE, ":3:1", "NUL byte at byte 1 of the line");
    unlink(path);
    assert_true(grew < LIMIT_KIB);

    size_t big = (size_t)32 << 20;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, 'x', big);
    write_bytes(path, state, "one_long_line.csv", text, big);
    free(text);
    char says[128];
    snprintf(says, sizeof says, "line is longer than %d bytes in its first 1 fields",
             FEDC_CSV_MAX_FIELD + 8);
    grew = refused_growth(path, FEDC_ERANGE, ":1", says);
    unlink(path);
    assert_true(grew < LIMIT_KIB);
}

/* ---- Task detection ---------------------------------------------------------------------- */

static fedc_dataset *labels(const float *y, int n) {
    fedc_dataset *ds = NULL;
    assert_int_equal(fedc_dataset_new(&ds, n, 1), FEDC_OK);
    for (int i = 0; i < n; i++) {
        ds->x[i] = (float)i;
        ds->y[i] = y[i];
    }
    ds->label_name = malloc(6);
    assert_non_null(ds->label_name);
    memcpy(ds->label_name, "class", 6);
    return ds;
}

static void task_ok(const float *y, int n, int forced, fedc_task want, int want_k) {
    fedc_dataset *ds = labels(y, n);
    fedc_task task = (fedc_task)-1;
    int k = -1;
    fedc_diag d = {{0}};
    fedc_err rc = fedc_dataset_task(&task, &k, ds, forced, &d);
    if (rc)
        print_error("unexpected: %s\n", d.msg);
    assert_int_equal(rc, FEDC_OK);
    assert_int_equal(task, want);
    assert_int_equal(k, want_k);
    fedc_dataset_destroy(&ds);
}

static void task_fail(const float *y, int n, const char *k1, const char *k2) {
    fedc_dataset *ds = labels(y, n);
    fedc_task task;
    int k;
    fedc_diag d = {{0}};
    assert_int_equal(fedc_dataset_task(&task, &k, ds, 0, &d), FEDC_EINVAL);
    print_message("task -> %s\n", d.msg);
    assert_msg(d.msg, "", "label 'class'", k1, k2, "--task regression", NULL);
    fedc_dataset_destroy(&ds);
}

static void test_task(void **state) {
    (void)state;
    const float bin[] = {0, 1, 1, 0, 1};
    task_ok(bin, 5, 0, FEDC_TASK_BINARY, 2);
    const float zeros[] = {0, 0, 0}; /* an all-negative shard is still binary */
    task_ok(zeros, 3, 0, FEDC_TASK_BINARY, 2);
    const float one[] = {1};
    task_ok(one, 1, 0, FEDC_TASK_BINARY, 2);
    const float multi[] = {3, 0, 2, 1, 1, 3};
    task_ok(multi, 6, 0, FEDC_TASK_MULTICLASS, 4);
    const float real[] = {0, 1, 0.5f, 2};
    task_ok(real, 4, 1, FEDC_TASK_REGRESSION, 1);
    task_ok(bin, 5, 1, FEDC_TASK_REGRESSION, 1);

    /* The first offending row is named: row 2, data line 4. */
    task_fail(real, 4, "line 4 (row 2)", "got 0.5");
    const float neg[] = {0, 1, -1};
    task_fail(neg, 3, "line 4 (row 2)", "got -1");
    const float gap[] = {0, 2, 2, 0};
    task_fail(gap, 4, "class 1 has no rows", "up to 2");
    const float big[] = {0, 1, 1000000};
    task_fail(big, 3, "line 4 (row 2)", "too large");

    fedc_dataset *ds = NULL;
    assert_int_equal(fedc_dataset_new(&ds, 0, 2), FEDC_OK);
    fedc_task task;
    int k;
    fedc_diag d = {{0}};
    assert_int_equal(fedc_dataset_task(&task, &k, ds, 0, &d), FEDC_EEMPTY);
    assert_true(d.msg[0] != '\0');
    fedc_dataset_destroy(&ds);
}

/* ---- Statistics -------------------------------------------------------------------------- */

static void test_stats_and_standardize(void **state) {
    (void)state;
    /* Columns: 1 2 3 4 (mean 2.5, variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25),
     * 5 5 5 5 (constant: mean 5, std 1), 0 0 0 8 (mean 2, variance (4 + 4 + 4 + 36) / 4 = 12). */
    const float x[] = {1, 5, 0, 2, 5, 0, 3, 5, 0, 4, 5, 8};
    fedc_dataset *ds = NULL;
    assert_int_equal(fedc_dataset_new(&ds, 4, 3), FEDC_OK);
    memcpy(ds->x, x, sizeof x);
    float mean[3], std[3];
    fedc_dataset_stats(mean, std, ds);
    assert_near(mean[0], 2.5, 1e-7);
    assert_near(std[0], sqrt(1.25), 1e-6);
    assert_true(mean[1] == 5.0f);
    assert_true(std[1] == 1.0f);
    assert_near(mean[2], 2.0, 1e-7);
    assert_near(std[2], sqrt(12.0), 1e-6);

    fedc_dataset_standardize(ds, mean, std);
    /* (1 - 2.5) / sqrt(1.25) = -1.3416408; (0 - 2) / sqrt(12) = -0.5773503; 6 / sqrt(12). */
    assert_near(ds->x[0], -1.5 / sqrt(1.25), 1e-6);
    assert_near(ds->x[9], 1.5 / sqrt(1.25), 1e-6);
    for (int i = 0; i < 4; i++)
        assert_true(ds->x[i * 3 + 1] == 0.0f);
    assert_near(ds->x[2], -2.0 / sqrt(12.0), 1e-6);
    assert_near(ds->x[11], 6.0 / sqrt(12.0), 1e-6);
    /* After standardising, the statistics are 0 and 1 (1 for the constant column too). */
    fedc_dataset_stats(mean, std, ds);
    for (int j = 0; j < 3; j++) {
        assert_near(mean[j], 0.0, 1e-6);
        assert_near(std[j], 1.0, 1e-6);
    }
    fedc_dataset_destroy(&ds);

    /* A constant 0.1 over many rows, and a wide matrix (more columns than one stats block):
     * the constant is found exactly, whatever the rounding of its sum. */
    enum { N = 1000, F = 70 };
    assert_int_equal(fedc_dataset_new(&ds, N, F), FEDC_OK);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < F; j++)
            ds->x[i * F + j] = j == 66 ? 0.1f : (float)(i % 10) + (float)j;
    }
    float m2[F], s2[F];
    fedc_dataset_stats(m2, s2, ds);
    /* i % 10 is uniform on 0..9: mean 4.5 + j, variance (10^2 - 1) / 12 = 8.25. */
    for (int j = 0; j < F; j++) {
        if (j == 66) {
            assert_true(m2[j] == 0.1f);
            assert_true(s2[j] == 1.0f);
        } else {
            assert_near(m2[j], 4.5 + j, 1e-5);
            assert_near(s2[j], sqrt(8.25), 1e-6);
        }
    }
    fedc_dataset_standardize(ds, m2, s2);
    for (int i = 0; i < N; i++)
        assert_true(ds->x[i * F + 66] == 0.0f);
    fedc_dataset_destroy(&ds);
}

/* ---- Subset, split, pos_weight ----------------------------------------------------------- */

static void test_subset(void **state) {
    (void)state;
    fedc_dataset *ds = NULL, *sub = NULL;
    assert_int_equal(fedc_dataset_new(&ds, 3, 2), FEDC_OK);
    for (int i = 0; i < 6; i++)
        ds->x[i] = (float)i;
    ds->y[0] = 10;
    ds->y[1] = 11;
    ds->y[2] = 12;
    const int rows[] = {2, 0, 2};
    assert_int_equal(fedc_dataset_subset(&sub, ds, rows, 3), FEDC_OK);
    assert_int_equal(sub->n_rows, 3);
    assert_int_equal(sub->n_features, 2);
    assert_null(sub->feature_names);
    const float want[] = {4, 5, 0, 1, 4, 5};
    for (int i = 0; i < 6; i++)
        assert_true(sub->x[i] == want[i]);
    assert_true(sub->y[0] == 12 && sub->y[1] == 10 && sub->y[2] == 12);
    fedc_dataset_destroy(&sub);
    const int bad[] = {0, 3};
    assert_int_equal(fedc_dataset_subset(&sub, ds, bad, 2), FEDC_EINVAL);
    assert_null(sub);
    assert_int_equal(fedc_dataset_subset(&sub, ds, rows, 0), FEDC_OK);
    assert_int_equal(sub->n_rows, 0);
    fedc_dataset_destroy(&sub);
    fedc_dataset_destroy(&ds);
    assert_int_equal(fedc_dataset_new(&ds, -1, 2), FEDC_EINVAL);
    assert_null(ds);
}

/* n rows with x = (row id, 2 * id) and named columns. Labels: class 0 on about class0_share
 * rows in a hundred and the other classes spread over the rest, or real values for n_classes 1. */
static fedc_dataset *id_dataset(int n, int n_classes, int class0_share) {
    fedc_dataset *ds = NULL;
    assert_int_equal(fedc_dataset_new(&ds, n, 2), FEDC_OK);
    for (int i = 0; i < n; i++) {
        ds->x[2 * i] = (float)i;
        ds->x[2 * i + 1] = 2.0f * (float)i;
        if (n_classes == 1)
            ds->y[i] = (float)i * 0.25f;
        else
            ds->y[i] = (i * 37) % 100 < class0_share ? 0.0f : (float)(1 + i % (n_classes - 1));
    }
    ds->feature_names = calloc(2, sizeof *ds->feature_names);
    assert_non_null(ds->feature_names);
    for (int j = 0; j < 2; j++) {
        ds->feature_names[j] = malloc(3);
        assert_non_null(ds->feature_names[j]);
        memcpy(ds->feature_names[j], j ? "f1" : "f0", 3);
    }
    ds->label_name = malloc(2);
    assert_non_null(ds->label_name);
    memcpy(ds->label_name, "y", 2);
    return ds;
}

static int count_class(const fedc_dataset *ds, float c) {
    int k = 0;
    if (!ds)
        return 0;
    for (int i = 0; i < ds->n_rows; i++)
        k += ds->y[i] == c;
    return k;
}

/* Checks a part (NULL: an empty part) against the source: ids strictly increasing (original order),
 * rows and labels intact, names copied; marks each id in seen. */
static void check_part(const fedc_dataset *part, const fedc_dataset *src, int *seen) {
    if (!part)
        return;
    assert_int_equal(part->n_features, 2);
    assert_string_equal(part->feature_names[0], "f0");
    assert_string_equal(part->feature_names[1], "f1");
    assert_string_equal(part->label_name, "y");
    int prev = -1;
    for (int i = 0; i < part->n_rows; i++) {
        int id = (int)part->x[2 * i];
        assert_true(id > prev);
        assert_true(id >= 0 && id < src->n_rows);
        assert_true(part->x[2 * i + 1] == src->x[2 * id + 1]);
        assert_true(part->y[i] == src->y[id]);
        seen[id]++;
        prev = id;
    }
}

/* Splits and checks per-class sizes (round(f * n_c)), and that the three parts together hold
 * every source row exactly once. */
static void split_check(const fedc_dataset *ds, fedc_task task, int n_classes, double vf, double tf,
                        uint64_t seed) {
    fedc_dataset *tr = NULL, *va = NULL, *te = NULL;
    assert_int_equal(fedc_dataset_split(&tr, &va, &te, ds, task, vf, tf, seed), FEDC_OK);
    int *seen = calloc((size_t)ds->n_rows, sizeof *seen);
    assert_non_null(seen);
    check_part(tr, ds, seen);
    check_part(va, ds, seen);
    check_part(te, ds, seen);
    for (int i = 0; i < ds->n_rows; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
    /* A zero fraction gives no dataset at all, not an empty one. */
    assert_true((va != NULL) == (vf > 0.0));
    assert_true((te != NULL) == (tf > 0.0));
    if (task != FEDC_TASK_REGRESSION) {
        for (int c = 0; c < n_classes; c++) {
            int n_c = count_class(ds, (float)c);
            int n_val = (int)round(vf * n_c), n_test = (int)round(tf * n_c);
            assert_true(n_c > 0);
            assert_int_equal(count_class(va, (float)c), n_val);
            assert_int_equal(count_class(te, (float)c), n_test);
            assert_int_equal(count_class(tr, (float)c), n_c - n_val - n_test);
        }
    } else {
        assert_int_equal(va ? va->n_rows : 0, (int)round(vf * ds->n_rows));
        assert_int_equal(te ? te->n_rows : 0, (int)round(tf * ds->n_rows));
        assert_int_equal(tr->n_rows,
                         ds->n_rows - (int)round(vf * ds->n_rows) - (int)round(tf * ds->n_rows));
    }
    fedc_dataset_destroy(&tr);
    fedc_dataset_destroy(&va);
    fedc_dataset_destroy(&te);
}

/* The ids of the validation part, as one comparable list. */
static int val_ids(int *ids, const fedc_dataset *ds, uint64_t seed) {
    fedc_dataset *tr = NULL, *va = NULL;
    assert_int_equal(fedc_dataset_split(&tr, &va, NULL, ds, FEDC_TASK_BINARY, 0.2, 0.0, seed),
                     FEDC_OK);
    for (int i = 0; i < va->n_rows; i++)
        ids[i] = (int)va->x[2 * i];
    int n = va->n_rows;
    fedc_dataset_destroy(&tr);
    fedc_dataset_destroy(&va);
    return n;
}

static void test_split(void **state) {
    (void)state;
    /* 203 rows, class 0 on about 70%: the per-class counts round(f * n_c) are checked exactly,
     * so a split that ignored the classes would be caught. */
    fedc_dataset *ds = id_dataset(203, 2, 70);
    int n0 = count_class(ds, 0.0f), n1 = count_class(ds, 1.0f);
    assert_int_equal(n0 + n1, 203);
    assert_true(n0 > 100 && n1 > 40);
    split_check(ds, FEDC_TASK_BINARY, 2, 0.15, 0.2, 1);
    split_check(ds, FEDC_TASK_BINARY, 2, 0.1, 0.1, 99);
    split_check(ds, FEDC_TASK_BINARY, 2, 0.5, 0.0, 7);
    fedc_dataset_destroy(&ds);

    ds = id_dataset(301, 4, 40);
    split_check(ds, FEDC_TASK_MULTICLASS, 4, 0.2, 0.25, 3);
    fedc_dataset_destroy(&ds);

    ds = id_dataset(50, 1, 0);
    split_check(ds, FEDC_TASK_REGRESSION, 1, 0.2, 0.3, 5);
    fedc_dataset_destroy(&ds);

    /* Same seed, same split; another seed, another split; and a real shuffle, not the first
     * rows of each class. */
    ds = id_dataset(400, 2, 50);
    int a[400], b[400], c[400];
    int na = val_ids(a, ds, 42), nb = val_ids(b, ds, 42), nc = val_ids(c, ds, 43);
    assert_int_equal(na, nb);
    assert_int_equal(na, nc);
    assert_memory_equal(a, b, (size_t)na * sizeof *a);
    assert_memory_not_equal(a, c, (size_t)na * sizeof *a);
    int below = 0;
    for (int i = 0; i < na; i++)
        below += a[i] < 2 * na;
    assert_true(below < na);

    /* A zero fraction leaves its part NULL, and its pointer may be NULL. */
    fedc_dataset *tr = NULL, *va = (fedc_dataset *)&va, *te = (fedc_dataset *)&te;
    assert_int_equal(fedc_dataset_split(&tr, &va, &te, ds, FEDC_TASK_BINARY, 0.0, 0.0, 1), FEDC_OK);
    assert_null(va);
    assert_null(te);
    assert_int_equal(tr->n_rows, 400);
    for (int i = 0; i < 400; i++)
        assert_true(tr->x[2 * i] == (float)i);
    fedc_dataset_destroy(&tr);
    assert_int_equal(fedc_dataset_split(&tr, NULL, &te, ds, FEDC_TASK_BINARY, 0.0, 0.25, 1),
                     FEDC_OK);
    assert_int_equal(tr->n_rows + te->n_rows, 400);
    assert_int_equal(te->n_rows, 100);
    fedc_dataset_destroy(&tr);
    fedc_dataset_destroy(&te);

    /* Bad fractions and a missing output are refused. */
    assert_int_equal(fedc_dataset_split(&tr, &va, &te, ds, FEDC_TASK_BINARY, 0.5, 0.5, 1),
                     FEDC_EINVAL);
    assert_null(tr);
    assert_int_equal(fedc_dataset_split(&tr, &va, &te, ds, FEDC_TASK_BINARY, -0.1, 0.5, 1),
                     FEDC_EINVAL);
    assert_int_equal(fedc_dataset_split(&tr, NULL, &te, ds, FEDC_TASK_BINARY, 0.1, 0.1, 1),
                     FEDC_EINVAL);
    assert_int_equal(fedc_dataset_split(&tr, &va, &te, ds, FEDC_TASK_BINARY, NAN, 0.1, 1),
                     FEDC_EINVAL);
    fedc_dataset_destroy(&ds);
}

static void test_pos_weight(void **state) {
    (void)state;
    const float y1[] = {0, 0, 0, 1};
    fedc_dataset *ds = labels(y1, 4);
    assert_near(fedc_dataset_pos_weight(ds), 3.0, 0.0);
    fedc_dataset_destroy(&ds);
    const float y2[] = {0, 0};
    ds = labels(y2, 2);
    assert_near(fedc_dataset_pos_weight(ds), 1.0, 0.0);
    fedc_dataset_destroy(&ds);
    const float y3[] = {1, 1, 0, 1, 1};
    ds = labels(y3, 5);
    assert_near(fedc_dataset_pos_weight(ds), 0.25, 0.0);
    fedc_dataset_destroy(&ds);
}

/* ---- Fixture ----------------------------------------------------------------------------- */

static void test_german_credit(void **state) {
    (void)state;
    const char *path = FEDC_SOURCE_DIR "/tests/fixtures/german_credit/german_credit_numeric.csv";
    fedc_dataset *ds = NULL;
    fedc_diag d = {{0}};
    fedc_err rc = fedc_csv_load(&ds, path, "bad", NULL, 0, &d);
    if (rc)
        print_error("%s\n", d.msg);
    assert_int_equal(rc, FEDC_OK);
    assert_int_equal(ds->n_rows, 1000);
    assert_int_equal(ds->n_features, 24);
    assert_string_equal(ds->feature_names[0], "a1");
    assert_string_equal(ds->feature_names[23], "a24");
    assert_string_equal(ds->label_name, "bad");
    int pos = 0;
    for (int i = 0; i < ds->n_rows; i++)
        pos += ds->y[i] == 1.0f;
    assert_int_equal(pos, 300);
    /* First data line: 1,6,4,12,5,5,3,4,1,67,3,2,1,2,1,0,0,1,0,0,1,0,0,1,0 */
    const float row0[] = {1, 6, 4, 12, 5, 5, 3, 4, 1, 67, 3, 2, 1, 2, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1};
    for (int j = 0; j < 24; j++)
        assert_true(ds->x[j] == row0[j]);
    assert_true(ds->y[0] == 0.0f);
    assert_true(ds->y[1] == 1.0f);
    fedc_task task;
    int k;
    assert_int_equal(fedc_dataset_task(&task, &k, ds, 0, &d), FEDC_OK);
    assert_int_equal(task, FEDC_TASK_BINARY);
    assert_int_equal(k, 2);
    assert_near(fedc_dataset_pos_weight(ds), 700.0 / 300.0, 1e-6);
    fedc_dataset_destroy(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good),
        cmocka_unit_test(test_load_quoted),
        cmocka_unit_test(test_load_rfc4180),
        cmocka_unit_test(test_load_crlf_and_trailing),
        cmocka_unit_test(test_load_exact_values),
        cmocka_unit_test(test_load_matches_strtof),
        cmocka_unit_test(test_load_buffer_boundaries),
        cmocka_unit_test(test_load_fast_and_general_paths),
        cmocka_unit_test(test_error_cells),
        cmocka_unit_test(test_error_ragged),
        cmocka_unit_test(test_error_file),
        cmocka_unit_test(test_error_header),
        cmocka_unit_test(test_error_limits),
        cmocka_unit_test(test_refused_before_growing),
        cmocka_unit_test(test_task),
        cmocka_unit_test(test_stats_and_standardize),
        cmocka_unit_test(test_subset),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_pos_weight),
        cmocka_unit_test(test_german_credit),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
