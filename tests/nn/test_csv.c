/* The CSV tokenizer (fedc/csv.h): RFC 4180 records from text and from a FILE, the errors with
 * their line and field, the limits, and the writer read back by the reader. Expected fields are
 * written out by hand from RFC 4180 section 2, not produced by the code under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedc/csv.h"

static const fedc_csv_limits LIM = {1000, 4096, 1 << 20};

/* Reads text with a text reader and checks every record against want: records separated by
 * NULL, the whole list ended by two NULLs. */
static void expect_records(const char *text, const char *const *want) {
    fedc_csv_reader *r = NULL;
    fedc_diag d = {{0}};
    assert_int_equal(fedc_csv_open_text(&r, text, strlen(text), "t.csv", &LIM, &d), FEDC_OK);
    fedc_csv_record rec;
    size_t w = 0;
    while (want[w]) {
        fedc_err rc = fedc_csv_next(r, &rec, &d);
        if (rc)
            print_error("unexpected error: %s\n", d.msg);
        assert_int_equal(rc, FEDC_OK);
        int k = 0;
        for (; want[w]; w++, k++) {
            assert_true(k < rec.n_fields);
            assert_int_equal(rec.fields[k].n, strlen(want[w]));
            assert_memory_equal(rec.fields[k].s, want[w], rec.fields[k].n);
            char after = rec.fields[k].s[rec.fields[k].n];
            assert_true(after == 0 || after == ',' || after == '"' || after == '\r' ||
                        after == '\n');
        }
        assert_int_equal(rec.n_fields, k);
        w++;
    }
    assert_int_equal(fedc_csv_next(r, &rec, &d), FEDC_OK);
    assert_int_equal(rec.n_fields, 0);
    fedc_csv_close(&r);
    assert_null(r);
}

static void test_rfc4180(void **state) {
    (void)state;
    /* 2.1, 2.2: LF or CRLF, the last line end optional. */
    expect_records("a,b\r\n1,2", (const char *[]){"a", "b", NULL, "1", "2", NULL, NULL});
    /* 2.5, 2.6, 2.7: quotes, commas, line breaks and doubled quotes inside. */
    expect_records(
        "\"x, y\",\"say \"\"hi\"\"\",\"two\r\nlines\"\n\"\",z\n",
        (const char *[]){"x, y", "say \"hi\"", "two\r\nlines", NULL, "", "z", NULL, NULL});
    /* Empty fields, blanks kept outside quotes and dropped around them, a CR at the very end. */
    expect_records(",, a \n  \"q\"  ,b\r",
                   (const char *[]){"", "", " a ", NULL, "q", "b", NULL, NULL});
    /* A byte order mark is not part of the first field. */
    expect_records("\xef\xbb\xbfh\n", (const char *[]){"h", NULL, NULL});
}

static void test_lines_and_blank(void **state) {
    (void)state;
    const char *text = "a,b\n\"1\n2\",3\n  \n4,5\n";
    fedc_csv_reader *r = NULL;
    fedc_diag d = {{0}};
    assert_int_equal(fedc_csv_open_text(&r, text, strlen(text), "t.csv", &LIM, &d), FEDC_OK);
    fedc_csv_record rec;
    long want_line[] = {1, 2, 4, 5}, want_lines[] = {1, 2, 1, 1};
    int want_blank[] = {0, 0, 1, 0};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fedc_csv_next(r, &rec, &d), FEDC_OK);
        assert_int_equal(rec.line, want_line[i]);
        assert_int_equal(rec.lines, want_lines[i]);
        assert_int_equal(rec.blank, want_blank[i]);
    }
    assert_int_equal(rec.raw_len, 3);
    assert_memory_equal(rec.raw, "4,5", 3);
    fedc_csv_close(&r);
}

/* Reads text to its first error and checks the code, the message's position prefix and a key
 * phrase. */
static void expect_error(const char *text, int expect, fedc_err want, fedc_csv_problem problem,
                         const char *pos, const char *key) {
    fedc_csv_reader *r = NULL;
    fedc_diag d = {{0}};
    assert_int_equal(fedc_csv_open_text(&r, text, strlen(text), "t.csv", &LIM, &d), FEDC_OK);
    fedc_csv_expect_fields(r, expect);
    fedc_csv_record rec;
    fedc_err rc;
    while ((rc = fedc_csv_next(r, &rec, &d)) == FEDC_OK && rec.n_fields > 0)
        ;
    print_message("%s\n", d.msg);
    assert_int_equal(rc, want);
    assert_int_equal(fedc_csv_last_error(r)->problem, problem);
    assert_true(strncmp(d.msg, pos, strlen(pos)) == 0);
    assert_non_null(strstr(d.msg, key));
    /* After an error the reader says it again. */
    fedc_diag again = {{0}};
    assert_int_equal(fedc_csv_next(r, &rec, &again), want);
    assert_string_equal(again.msg, d.msg);
    fedc_csv_close(&r);
}

static void test_errors(void **state) {
    (void)state;
    expect_error("a,b\n1,\"2\n3,4\n", 0, FEDC_EPARSE, FEDC_CSV_UNTERMINATED_QUOTE,
                 "t.csv:2:2: ", "unmatched double quote");
    expect_error("a,b\n\"1\"x,2\n", 0, FEDC_EPARSE, FEDC_CSV_TEXT_AFTER_QUOTE,
                 "t.csv:2:1: ", "after the closing double quote");
    expect_error("a,b\n1,2\"3\n", 0, FEDC_EPARSE, FEDC_CSV_QUOTE_IN_FIELD,
                 "t.csv:2:2: ", "double quote inside an unquoted field");
    expect_error("a,b\n1,2\n3\n", 2, FEDC_EPARSE, FEDC_CSV_FIELD_COUNT,
                 "t.csv:3:2: ", "expected 2 fields (as in the header), got 1");
    expect_error("a,b\n1,2,3\n", 2, FEDC_EPARSE, FEDC_CSV_FIELD_COUNT, "t.csv:2:3: ", "got 3");
    /* The line count goes on past a quoted line break. */
    expect_error("a,b\n\"x\ny\",1\n1\n", 2, FEDC_EPARSE, FEDC_CSV_FIELD_COUNT,
                 "t.csv:4:2: ", "got 1");
    char many[3000];
    size_t n = 0;
    for (int i = 0; i < 1001; i++)
        many[n++] = i ? ',' : 'x';
    many[n] = 0;
    expect_error(many, 0, FEDC_ERANGE, FEDC_CSV_TOO_MANY_FIELDS,
                 "t.csv:1: ", "record has 1001 fields, more than the limit of 1000");
    static const char nul[] = "a,b\n1,2\0\n";
    fedc_csv_reader *r = NULL;
    fedc_diag d = {{0}};
    fedc_csv_record rec;
    assert_int_equal(fedc_csv_open_text(&r, nul, sizeof nul - 1, "t.csv", &LIM, &d), FEDC_OK);
    assert_int_equal(fedc_csv_next(r, &rec, &d), FEDC_OK);
    assert_int_equal(fedc_csv_next(r, &rec, &d), FEDC_EPARSE);
    assert_int_equal(fedc_csv_last_error(r)->problem, FEDC_CSV_NUL);
    assert_non_null(strstr(d.msg, "t.csv:2:2: NUL byte at byte 4 of the line"));
    fedc_csv_close(&r);
    /* Bad arguments. */
    fedc_csv_limits bad = {0, 1, 1};
    assert_int_equal(fedc_csv_open_text(&r, "x", 1, "t.csv", &bad, &d), FEDC_EINVAL);
    assert_null(r);
}

/* A FILE reader across its 1 MiB reads: a quoted field with "" and line breaks straddles the
 * first read's end, and a field too long for the limit is refused before the buffer grows. */
static void test_file(void **state) {
    (void)state;
    size_t pad = ((size_t)1 << 20) - 5;
    FILE *f = tmpfile();
    assert_non_null(f);
    fputs("h1,h2\n", f);
    for (size_t i = 0; i < pad; i += 64)
        fputs("1234567,1234567,1234567,1234567,1234567,1234567,1234567,12345\n", f);
    fputs("\"a\"\"b\nc\",\"d\"\r\n9,8", f);
    rewind(f);
    fedc_csv_reader *r = NULL;
    fedc_diag d = {{0}};
    fedc_csv_limits lim = {16, 64, 4096};
    assert_int_equal(fedc_csv_open_file(&r, f, "f.csv", &lim, &d), FEDC_OK);
    fedc_csv_record rec;
    assert_int_equal(fedc_csv_next(r, &rec, &d), FEDC_OK);
    assert_int_equal(rec.n_fields, 2);
    long rows = 0;
    while (fedc_csv_next(r, &rec, &d) == FEDC_OK && rec.n_fields == 8)
        rows++;
    assert_int_equal(rows, (long)((pad + 63) / 64));
    assert_int_equal(rec.n_fields, 2);
    assert_int_equal(rec.fields[0].n, 5);
    assert_memory_equal(rec.fields[0].s, "a\"b\nc", 5);
    assert_memory_equal(rec.fields[1].s, "d", 1);
    assert_int_equal(fedc_csv_next(r, &rec, &d), FEDC_OK);
    assert_int_equal(rec.line, rows + 4);
    assert_memory_equal(rec.fields[1].s, "8", 1);
    fedc_csv_close(&r);
    fclose(f);

    f = tmpfile();
    assert_non_null(f);
    for (int i = 0; i < 3 << 20; i++)
        fputc('x', f);
    rewind(f);
    assert_int_equal(fedc_csv_open_file(&r, f, "f.csv", &lim, &d), FEDC_OK);
    assert_int_equal(fedc_csv_next(r, &rec, &d), FEDC_ERANGE);
    assert_non_null(strstr(d.msg, "f.csv:1: line is longer than 64 bytes in its first 1 fields"));
    fedc_csv_close(&r);
    fclose(f);
}

/* The writer quotes what needs quoting and the reader gives every string back. */
static void test_write_read(void **state) {
    (void)state;
    const char *cells[] = {"plain", "a,b", "say \"hi\"", "two\nlines", " padded ", "", "x\r"};
    const int n = (int)(sizeof cells / sizeof *cells);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    for (int i = 0; i < n; i++) {
        assert_int_equal(fedc_csv_write_field(f, cells[i]), 0);
        fputc(i + 1 < n ? ',' : '\n', f);
    }
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, "\"say \"\"hi\"\"\""));
    assert_non_null(strstr(text, "plain,\"a,b\""));
    fedc_csv_reader *r = NULL;
    fedc_diag d = {{0}};
    assert_int_equal(fedc_csv_open_text(&r, text, len, "w.csv", &LIM, &d), FEDC_OK);
    fedc_csv_record rec;
    assert_int_equal(fedc_csv_next(r, &rec, &d), FEDC_OK);
    assert_int_equal(rec.n_fields, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(rec.fields[i].n, strlen(cells[i]));
        assert_memory_equal(rec.fields[i].s, cells[i], rec.fields[i].n);
    }
    fedc_csv_close(&r);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4180),    cmocka_unit_test(test_lines_and_blank),
        cmocka_unit_test(test_errors),     cmocka_unit_test(test_file),
        cmocka_unit_test(test_write_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
