/* fedc synth, driven as a user would: the same seed gives the same files byte for byte and
 * another seed other files; fraud rates and the banks' scenario mixes stay within the documented
 * bounds; banks hold disjoint customers; the bank files hold the early days and test.csv the
 * held-out late days; features are consistent (weekend from the day, windows counting the current
 * transaction, terminal risks in [0, 1]); bad flags exit 2 naming the flag.
 *
 *   test_synth PATH/TO/fedc */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proc.h"

static const char *g_fedc;

static char *synth(const char *seed, const char *customers, const char *days) {
    char *dir = proc_mkdtemp("fedc-test-synth");
    assert_non_null(dir);
    char *out = proc_path(dir, "out");
    const char *argv[] = {g_fedc, "synth",  "--banks", "3",     "--customers", customers, "--days",
                          days,   "--seed", seed,      "--out", out,           NULL};
    proc_result r;
    assert_int_equal(proc_run(&r, argv, NULL, 120), 0);
    if (r.status != 0)
        fprintf(stderr, "%s\n", r.err);
    assert_int_equal(r.status, 0);
    proc_result_release(&r);
    free(dir);
    return out;
}

static char *read_in(const char *dir, const char *name, size_t *len) {
    char *p = proc_path(dir, name);
    char *s = proc_read_file(p, len);
    assert_non_null(s);
    free(p);
    return s;
}

/* A number "key": N inside the object of `file` in synth.json. */
static double file_num(const char *json, const char *file, const char *key) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"file\": \"%s\"", file);
    const char *p = strstr(json, pat);
    assert_non_null(p);
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *q = strstr(p, pat);
    assert_non_null(q);
    assert_true(q < strchr(p, '}'));
    return strtod(q + strlen(pat), NULL);
}

static void test_deterministic_by_seed(void **state) {
    (void)state;
    char *a = synth("7", "300", "40"), *b = synth("7", "300", "40"), *c = synth("8", "300", "40");
    const char *files[] = {"bank-a.csv", "bank-b.csv", "bank-c.csv", "test.csv"};
    for (int i = 0; i < 4; i++) {
        size_t la, lb, lc;
        char *x = read_in(a, files[i], &la), *y = read_in(b, files[i], &lb);
        char *z = read_in(c, files[i], &lc);
        assert_true(la > 1000);
        assert_int_equal(la, lb);
        assert_memory_equal(x, y, la);
        assert_true(la != lc || memcmp(x, z, la) != 0);
        free(x);
        free(y);
        free(z);
    }
    proc_rmtree(a);
    proc_rmtree(b);
    proc_rmtree(c);
    free(a);
    free(b);
    free(c);
}

/* Parses one data line into v (18 numbers); returns the count. */
static int parse(const char *line, double *v) {
    int n = 0;
    const char *p = line;
    while (n < 18) {
        char *end;
        v[n++] = strtod(p, &end);
        if (*end != ',')
            break;
        p = end + 1;
    }
    return n;
}

static void test_rates_mixes_and_features(void **state) {
    (void)state;
    char *dir = synth("3", "2000", "60");
    size_t len;
    char *js = read_in(dir, "synth.json", &len);
    /* The documented bounds: every file between 0.2% and 1.5% fraud, all together 0.4-1%. */
    const char *files[] = {"bank-a.csv", "bank-b.csv", "bank-c.csv", "test.csv"};
    double rows = 0, frauds = 0;
    for (int i = 0; i < 4; i++) {
        double rate = file_num(js, files[i], "fraud_rate");
        print_message("%s: %.0f rows, fraud rate %.4f\n", files[i], file_num(js, files[i], "rows"),
                      rate);
        assert_true(rate >= 0.002 && rate <= 0.015);
        rows += file_num(js, files[i], "rows");
        frauds += file_num(js, files[i], "frauds");
    }
    assert_true(frauds / rows >= 0.004 && frauds / rows <= 0.01);
    /* The mixes: a has no compromised cards, b no compromised terminals, c both. */
    assert_true(file_num(js, "bank-a.csv", "scenario_2") > 0);
    assert_true(file_num(js, "bank-a.csv", "scenario_3") == 0);
    assert_true(file_num(js, "bank-b.csv", "scenario_2") == 0);
    assert_true(file_num(js, "bank-b.csv", "scenario_3") > 0);
    assert_true(file_num(js, "bank-c.csv", "scenario_2") > 0);
    assert_true(file_num(js, "bank-c.csv", "scenario_3") > 0);
    for (int i = 0; i < 3; i++)
        assert_true(file_num(js, files[i], "scenario_1") > 0);
    free(js);
    /* Days, customers, features. Default test days: max(7, 60 / 5) = 12, so 0..47 | 48..59. */
    double lo_cust[3], hi_cust[3];
    for (int i = 0; i < 4; i++) {
        char *s = read_in(dir, files[i], &len);
        char *line = strchr(s, '\n');
        assert_non_null(line);
        assert_true(strncmp(s, "CUSTOMER_ID,TX_TIME_DAYS,TX_AMOUNT,", 35) == 0);
        double cmin = 1e300, cmax = -1, dmin = 1e300, dmax = -1, v[18];
        long n = 0, fr = 0;
        for (line++; *line; line = strchr(line, '\n') + 1) {
            assert_int_equal(parse(line, v), 18);
            n++;
            cmin = fmin(cmin, v[0]);
            cmax = fmax(cmax, v[0]);
            dmin = fmin(dmin, v[1]);
            dmax = fmax(dmax, v[1]);
            int dow = (int)v[1] % 7;
            assert_true(v[3] == (dow == 0 || dow == 6));
            assert_true(v[4] == 0 || v[4] == 1);
            /* Customer windows count the current transaction and widen with the window. */
            assert_true(v[5] >= 1 && v[7] >= v[5] && v[9] >= v[7]);
            assert_true(v[6] >= 0 && v[8] >= 0 && v[10] >= 0);
            for (int w = 0; w < 3; w++)
                assert_true(v[12 + 2 * w] >= 0 && v[12 + 2 * w] <= 1);
            assert_true(v[13] >= v[11] && v[15] >= v[13]);
            assert_true(v[17] == 0 || v[17] == 1);
            fr += v[17] == 1;
            /* Scenario 1: every amount above 220 is fraud. */
            if (v[2] > 220)
                assert_true(v[17] == 1);
        }
        assert_true(n > 1000 && fr > 0);
        if (i < 3) {
            assert_true(dmin == 0 && dmax == 47);
            lo_cust[i] = cmin;
            hi_cust[i] = cmax;
        } else {
            assert_true(dmin == 48 && dmax == 59);
        }
        free(s);
    }
    /* Disjoint customers: bank k owns ids [2000 k, 2000 (k + 1)). */
    for (int i = 0; i < 3; i++)
        assert_true(lo_cust[i] >= 2000.0 * i && hi_cust[i] < 2000.0 * (i + 1));
    proc_rmtree(dir);
    free(dir);
}

static void test_bad_flags(void **state) {
    (void)state;
    struct {
        const char *args[8];
        const char *msg;
    } cases[] = {
        {{"--banks", "0", "--customers", "100", "--days", "30", "--seed", "1"}, "--banks"},
        {{"--banks", "2", "--customers", "100", "--days", "5", "--seed", "1"}, "--days"},
        {{"--banks", "2", "--customers", "100", "--days", "30", NULL}, "--seed is required"},
        {{"--banks", "2", "--customers", "x", "--days", "30", "--seed", "1"}, "--customers"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *argv[16] = {g_fedc, "synth"};
        int n = 2;
        for (int i = 0; i < 8 && cases[k].args[i]; i++)
            argv[n++] = cases[k].args[i];
        argv[n++] = "--out";
        argv[n++] = "/tmp/fedc-synth-never-written";
        argv[n] = NULL;
        proc_result r;
        assert_int_equal(proc_run(&r, argv, NULL, 30), 0);
        if (r.status != 2 || !strstr(r.err, cases[k].msg))
            fail_msg("case %zu: status %d, stderr '%s'", k, r.status, r.err);
        proc_result_release(&r);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/fedc\n", argv[0]);
        return 2;
    }
    g_fedc = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_by_seed),
        cmocka_unit_test(test_rates_mixes_and_features),
        cmocka_unit_test(test_bad_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
