/* fedc synth, driven as a user would: the same seed gives the same files byte for byte and
 * another seed other files; fraud rates and the banks' scenario mixes stay within the documented
 * bounds; banks hold disjoint customers; the bank files hold the early days and test.csv the
 * held-out late days; features are consistent (weekend from the day, windows counting the current
 * transaction, terminal risks in [0, 1]); with --raw, the raw files hold the same transactions
 * with unique ids and disjoint customers and terminals, and the scenarios only in truth.csv, whose
 * mixes are the issue's; bad flags exit 2 naming the flag.
 *
 *   test_synth PATH/TO/fedc */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "proc.h"

static const char *g_fedc;

/* Runs fedc synth for 3 banks (with --raw when raw) into a fresh directory; returns it. */
static char *synth(const char *seed, const char *customers, const char *days, int raw) {
    char *dir = proc_mkdtemp("fedc-test-synth");
    assert_non_null(dir);
    char *out = proc_path(dir, "out");
    const char *argv[] = {
        g_fedc,   "synth", "--banks", "3", "--customers",        customers, "--days", days,
        "--seed", seed,    "--out",   out, raw ? "--raw" : NULL, NULL};
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
    /* Both outputs: the features with test.csv, and the raw files with truth.csv. */
    const char *files[2][4] = {{"bank-a.csv", "bank-b.csv", "bank-c.csv", "test.csv"},
                               {"bank-a.csv", "bank-b.csv", "bank-c.csv", "truth.csv"}};
    for (int raw = 0; raw < 2; raw++) {
        char *a = synth("7", "300", "40", raw), *b = synth("7", "300", "40", raw);
        char *c = synth("8", "300", "40", raw);
        for (int i = 0; i < 4; i++) {
            size_t la, lb, lc;
            char *x = read_in(a, files[raw][i], &la), *y = read_in(b, files[raw][i], &lb);
            char *z = read_in(c, files[raw][i], &lc);
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
    char *dir = synth("3", "2000", "60", 0);
    size_t len;
    char *js = read_in(dir, "synth.json", &len);
    /* The documented bounds: bank-a and bank-b between 0.2% and 1.5% fraud, bank-c (large
     * amounts only) between 0.02% and 0.2%, the test set between 0.2% and 1.5%, all together
     * 0.15-1%. */
    const char *files[] = {"bank-a.csv", "bank-b.csv", "bank-c.csv", "test.csv"};
    const double lo[] = {0.002, 0.002, 0.0002, 0.002}, hi[] = {0.015, 0.015, 0.002, 0.015};
    double rows = 0, frauds = 0;
    for (int i = 0; i < 4; i++) {
        double rate = file_num(js, files[i], "fraud_rate");
        print_message("%s: %.0f rows, fraud rate %.4f\n", files[i], file_num(js, files[i], "rows"),
                      rate);
        assert_true(rate >= lo[i] && rate <= hi[i]);
        rows += file_num(js, files[i], "rows");
        frauds += file_num(js, files[i], "frauds");
    }
    assert_true(frauds / rows >= 0.0015 && frauds / rows <= 0.01);
    /* The mixes (issue 16): all see large amounts; a also compromised terminals and no
     * compromised cards, b compromised cards and no compromised terminals, c neither. */
    assert_true(file_num(js, "bank-a.csv", "scenario_2") > 0);
    assert_true(file_num(js, "bank-a.csv", "scenario_3") == 0);
    assert_true(file_num(js, "bank-b.csv", "scenario_2") == 0);
    assert_true(file_num(js, "bank-b.csv", "scenario_3") > 0);
    assert_true(file_num(js, "bank-c.csv", "scenario_2") == 0);
    assert_true(file_num(js, "bank-c.csv", "scenario_3") == 0);
    for (int i = 0; i < 3; i++)
        assert_true(file_num(js, files[i], "scenario_1") > 0);
    assert_true(file_num(js, "test.csv", "scenario_2") > 0);
    assert_true(file_num(js, "test.csv", "scenario_3") > 0);
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

/* One raw row. */
typedef struct raw_row {
    unsigned long long id, cust, term;
    char when[20]; /* YYYY-MM-DD HH:MM:SS */
    double amount;
    int fraud, bank, in_truth;
} raw_row;

/* "YYYY-MM-DD HH:MM:SS" of 2018-04-01 00:00:00 UTC plus `days` days. */
static void date_after(char out[20], int days) {
    time_t t = (time_t)(1522540800LL + 86400LL * days);
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    char buf[64];
    snprintf(buf, sizeof buf, "%04d-%02d-%02d 00:00:00", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday);
    assert_int_equal(strlen(buf), 19);
    memcpy(out, buf, 20);
}

/* fedc synth --raw: what a bank exports, over all days; the scenario only in truth.csv; ids
 * unique and entities disjoint across banks; the same transactions as the features output of the
 * same seed (rows and frauds before and after the test start); the mixes read from truth.csv. */
static void test_raw(void **state) {
    (void)state;
    char *raw = synth("5", "800", "45", 1), *feat = synth("5", "800", "45", 0);
    char *test_csv = proc_path(raw, "test.csv");
    assert_false(proc_exists(test_csv)); /* the test period is inside the banks' files */
    free(test_csv);
    size_t len;
    char *js = read_in(raw, "synth.json", &len), *fjs = read_in(feat, "synth.json", &len);
    /* 45 days, 9 held out (max(7, 45 / 5)): the test period starts on day 36. */
    char start[20], test_from[20], end[20], pat[64];
    date_after(start, 0);
    date_after(test_from, 36);
    date_after(end, 45);
    assert_string_equal(start, "2018-04-01 00:00:00");
    snprintf(pat, sizeof pat, "\"test_from\": \"%s\"", test_from);
    assert_non_null(strstr(js, pat));
    assert_non_null(strstr(js, "\"raw\": true"));
    assert_non_null(strstr(fjs, "\"raw\": false"));
    size_t n = 0, cap = 1 << 16;
    raw_row *rows = malloc(cap * sizeof *rows);
    assert_non_null(rows);
    const char *banks[] = {"bank-a.csv", "bank-b.csv", "bank-c.csv"};
    unsigned long long max_id = 0, max_cust = 0, max_term = 0;
    long before[3] = {0}, before_fr[3] = {0}, after = 0, after_fr = 0;
    for (int b = 0; b < 3; b++) {
        char *text = read_in(raw, banks[b], &len);
        const char *head =
            "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD\n";
        assert_true(strncmp(text, head, strlen(head)) == 0);
        assert_null(strstr(text, "SCENARIO"));
        char prev[20] = "";
        for (char *p = text + strlen(head); *p;) {
            if (n == cap) {
                cap *= 2;
                rows = realloc(rows, cap * sizeof *rows);
                assert_non_null(rows);
            }
            raw_row *r = &rows[n++];
            char *e;
            r->id = strtoull(p, &e, 10);
            assert_true(*e == ',' && e[20] == ',');
            memcpy(r->when, e + 1, 19);
            r->when[19] = 0;
            assert_true(r->when[4] == '-' && r->when[10] == ' ' && r->when[13] == ':');
            r->cust = strtoull(e + 21, &e, 10);
            assert_true(*e == ',');
            r->term = strtoull(e + 1, &e, 10);
            assert_true(*e == ',');
            r->amount = strtod(e + 1, &e);
            assert_true(*e == ',' && (e[1] == '0' || e[1] == '1') && e[2] == '\n');
            r->fraud = e[1] == '1';
            r->bank = b;
            r->in_truth = 0;
            p = e + 3;
            /* in time order, inside the simulated days */
            assert_true(strcmp(prev, r->when) <= 0 && strcmp(r->when, start) >= 0 &&
                        strcmp(r->when, end) < 0);
            memcpy(prev, r->when, 20);
            if (r->amount > 220) /* scenario 1 */
                assert_true(r->fraud);
            if (strcmp(r->when, test_from) < 0) {
                before[b]++;
                before_fr[b] += r->fraud;
            } else {
                after++;
                after_fr += r->fraud;
            }
            max_id = r->id > max_id ? r->id : max_id;
            max_cust = r->cust > max_cust ? r->cust : max_cust;
            max_term = r->term > max_term ? r->term : max_term;
        }
        free(text);
    }
    assert_true(n > 10000 && max_id < 100 * n);
    /* The same transactions as without --raw: the training days per bank, and test.csv. */
    for (int b = 0; b < 3; b++) {
        assert_true(before[b] == (long)file_num(fjs, banks[b], "rows"));
        assert_true(before_fr[b] == (long)file_num(fjs, banks[b], "frauds"));
    }
    assert_true(after == (long)file_num(fjs, "test.csv", "rows"));
    assert_true(after_fr == (long)file_num(fjs, "test.csv", "frauds"));
    /* Unique ids; every customer and terminal in one bank only. */
    long *row_of = malloc((max_id + 1) * sizeof *row_of);
    int *cust_bank = malloc((max_cust + 1) * sizeof *cust_bank);
    int *term_bank = malloc((max_term + 1) * sizeof *term_bank);
    assert_true(row_of && cust_bank && term_bank);
    for (unsigned long long i = 0; i <= max_id; i++)
        row_of[i] = -1;
    for (unsigned long long i = 0; i <= max_cust; i++)
        cust_bank[i] = -1;
    for (unsigned long long i = 0; i <= max_term; i++)
        term_bank[i] = -1;
    for (size_t i = 0; i < n; i++) {
        assert_true(row_of[rows[i].id] == -1);
        row_of[rows[i].id] = (long)i;
        assert_true(cust_bank[rows[i].cust] == -1 || cust_bank[rows[i].cust] == rows[i].bank);
        cust_bank[rows[i].cust] = rows[i].bank;
        assert_true(term_bank[rows[i].term] == -1 || term_bank[rows[i].term] == rows[i].bank);
        term_bank[rows[i].term] = rows[i].bank;
    }
    /* truth.csv: one row per fraud, naming the file that holds it, with its scenario. */
    char *truth = read_in(raw, "truth.csv", &len);
    const char *th = "TRANSACTION_ID,FILE,TX_FRAUD_SCENARIO\n";
    assert_true(strncmp(truth, th, strlen(th)) == 0);
    long scen[3][4] = {{0}}, frauds = 0, listed = 0;
    for (size_t i = 0; i < n; i++)
        frauds += rows[i].fraud;
    for (char *p = truth + strlen(th); *p;) {
        char *e;
        unsigned long long id = strtoull(p, &e, 10);
        assert_true(*e == ',' && id <= max_id && row_of[id] >= 0);
        raw_row *r = &rows[row_of[id]];
        assert_true(strncmp(e + 1, banks[r->bank], 10) == 0 && e[11] == ',');
        int sc = e[12] - '0';
        assert_true(sc >= 1 && sc <= 3 && e[13] == '\n');
        assert_true(r->fraud && !r->in_truth);
        r->in_truth = 1;
        if (sc == 1)
            assert_true(r->amount > 220);
        scen[r->bank][sc]++;
        listed++;
        p = e + 14;
    }
    assert_int_equal(listed, frauds);
    for (int b = 0; b < 3; b++)
        print_message("%s: scenarios 1/2/3 %ld/%ld/%ld\n", banks[b], scen[b][1], scen[b][2],
                      scen[b][3]);
    assert_true(scen[0][1] > 0 && scen[1][1] > 0 && scen[2][1] > 0);
    assert_true(scen[0][2] > 0 && scen[0][3] == 0);
    assert_true(scen[1][2] == 0 && scen[1][3] > 0);
    assert_true(scen[2][2] == 0 && scen[2][3] == 0);
    free(truth);
    free(row_of);
    free(cust_bank);
    free(term_bank);
    free(rows);
    free(js);
    free(fjs);
    proc_rmtree(raw);
    proc_rmtree(feat);
    free(raw);
    free(feat);
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
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_bad_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
