/* fedc features and fedc_window_aggregate (fedc/features.h): the window aggregates equal a
 * brute-force O(n^2) reading of the definition on random data (several entities, equal times,
 * gaps longer than the windows, empty windows, rows out of order, with and without delay); the
 * delay's edges (a row exactly L days earlier is in, one exactly L + D days earlier is out); the
 * timestamp parser; a small table computed by hand, byte for byte; `fedc features` on random data
 * against the same reference, means and rates included; and bad input refused with exit 2 naming
 * file:line:field or the spec. The streaming engine, the sort of unsorted files, spec files and
 * bounded memory are tested in tests/nn/test_features_engine.c and test_features_stream.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/features.h"
#include "proc.h"

#define RUN_TIMEOUT 100
#define DAY 86400

static const char *g_fedc;

/* xorshift64* (Vigna 2016): a fixed stream, so that a failure repeats. */
static uint64_t g_rng = 88172645463325252ull;
static uint64_t rnd(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}
static int64_t rnd_below(int64_t n) {
    return (int64_t)(rnd() % (uint64_t)n);
}

/* The definition itself: row j is in row i's window when it is of the same entity and
 * delay 0: t_i - D < t_j <= t_i, and at equal times j <= i;
 * delay L: t_i - L - D < t_j <= t_i - L. */
static int in_window(size_t i, size_t j, const uint64_t *ent, const int64_t *t, int64_t dur,
                     int64_t delay) {
    if (ent[i] != ent[j])
        return 0;
    int64_t end = t[i] - delay;
    if (!(t[j] > end - dur && t[j] <= end))
        return 0;
    return delay > 0 || t[j] < t[i] || j <= i;
}

static void brute(size_t n, const uint64_t *ent, const int64_t *t, const double *v, int64_t dur,
                  int64_t delay, int64_t *cnt, double *sum) {
    for (size_t i = 0; i < n; i++) {
        cnt[i] = 0;
        sum[i] = 0;
        for (size_t j = 0; j < n; j++)
            if (in_window(i, j, ent, t, dur, delay)) {
                cnt[i]++;
                sum[i] += v[j];
            }
    }
}

static void test_random_against_brute_force(void **state) {
    (void)state;
    const int64_t durs[3] = {1 * DAY, 7 * DAY, 30 * DAY};
    long empty = 0, nonempty = 0;
    for (int trial = 0; trial < 60; trial++) {
        size_t n = 1 + (size_t)rnd_below(400);
        int n_ent = 1 + (int)rnd_below(8);
        uint64_t *ent = malloc(n * sizeof *ent);
        int64_t *t = malloc(n * sizeof *t);
        double *v = malloc(n * sizeof *v);
        int64_t *cnt = malloc(3 * n * sizeof *cnt), *bc = malloc(n * sizeof *bc);
        double *sum = malloc(3 * n * sizeof *sum), *bs = malloc(n * sizeof *bs);
        assert_true(ent && t && v && cnt && bc && sum && bs);
        for (size_t i = 0; i < n; i++) {
            ent[i] = (uint64_t)rnd_below(n_ent) * 7919u;
            /* times on a coarse grid (many ties, rows exactly D or L days apart) or anywhere in
             * 120 days, plus a far gap for some; the file order is random */
            int64_t r = rnd_below(4);
            t[i] = r == 0   ? rnd_below(40) * (DAY / 2)
                   : r == 1 ? rnd_below(120 * DAY)
                   : r == 2 ? 400 * DAY + rnd_below(3) * DAY
                            : rnd_below(20) * DAY;
            v[i] = (double)rnd_below(1000) / 8.0; /* exact in binary: sums compare exactly */
        }
        for (int delay_days = 0; delay_days <= 7; delay_days += 7) {
            int64_t delay = (int64_t)delay_days * DAY;
            assert_int_equal(fedc_window_aggregate(n, ent, t, v, delay, 3, durs, cnt, sum, NULL),
                             FEDC_OK);
            for (int k = 0; k < 3; k++) {
                brute(n, ent, t, v, durs[k], delay, bc, bs);
                for (size_t i = 0; i < n; i++) {
                    if (cnt[k * n + i] != bc[i] || sum[k * n + i] != bs[i])
                        print_message("trial %d delay %d D %lld row %zu: got %lld %g, want %lld "
                                      "%g\n",
                                      trial, delay_days, (long long)durs[k] / DAY, i,
                                      (long long)cnt[k * n + i], sum[k * n + i], (long long)bc[i],
                                      bs[i]);
                    assert_int_equal(cnt[k * n + i], bc[i]);
                    assert_true(sum[k * n + i] == bs[i]);
                    if (bc[i])
                        nonempty++;
                    else
                        empty++;
                }
            }
            /* counts alone (no values) are the same */
            int64_t *c2 = malloc(3 * n * sizeof *c2);
            assert_non_null(c2);
            assert_int_equal(fedc_window_aggregate(n, ent, t, NULL, delay, 3, durs, c2, NULL, NULL),
                             FEDC_OK);
            assert_memory_equal(c2, cnt, 3 * n * sizeof *c2);
            free(c2);
        }
        free(ent);
        free(t);
        free(v);
        free(cnt);
        free(bc);
        free(sum);
        free(bs);
    }
    /* the data covered both kinds of window */
    assert_true(empty > 100 && nonempty > 100);
}

/* Rows of one entity given out of order; times in days. */
static void test_delay_edges_and_ties(void **state) {
    (void)state;
    /* row 0 at day 10 (the transaction), row 1 exactly L = 7 days earlier (in), row 2 exactly
     * L + D = 8 days earlier (out), row 3 at day 10 too but later in the file, row 4 earlier in
     * the file at day 10, row 5 another entity at day 3 */
    const uint64_t ent[6] = {1, 1, 1, 1, 1, 2};
    const int64_t t[6] = {10 * DAY, 3 * DAY, 2 * DAY, 10 * DAY, 10 * DAY, 3 * DAY};
    const double v[6] = {1, 2, 4, 8, 16, 32};
    const int64_t dur = 1 * DAY;
    int64_t cnt[6];
    double sum[6];
    assert_int_equal(fedc_window_aggregate(6, ent, t, v, 7 * DAY, 1, &dur, cnt, sum, NULL),
                     FEDC_OK);
    /* (day 2, day 3]: row 1 only */
    assert_int_equal(cnt[0], 1);
    assert_true(sum[0] == 2);
    assert_int_equal(cnt[3], 1);
    assert_int_equal(cnt[5], 0); /* entity 2 alone, nothing 7 days before it */
    /* without delay, (day 9, day 10] with the three rows at day 10 in file order 0, 3, 4: row 0
     * holds itself only, row 3 rows 0 and 3, row 4 all three */
    assert_int_equal(fedc_window_aggregate(6, ent, t, v, 0, 1, &dur, cnt, sum, NULL), FEDC_OK);
    assert_int_equal(cnt[0], 1);
    assert_true(sum[0] == 1);
    assert_int_equal(cnt[3], 2); /* rows 0 and 3 */
    assert_true(sum[3] == 9);
    assert_int_equal(cnt[4], 3); /* rows 0, 3 and 4 */
    assert_true(sum[4] == 25);
    assert_int_equal(cnt[1], 1); /* row 2 is exactly D = 1 day earlier: out */
    /* bad arguments */
    const int64_t zero = 0;
    assert_int_equal(fedc_window_aggregate(6, ent, t, v, 0, 1, &zero, cnt, sum, NULL), FEDC_EINVAL);
    assert_int_equal(fedc_window_aggregate(6, ent, t, v, -1, 1, &dur, cnt, sum, NULL), FEDC_EINVAL);
}

static void test_datetime(void **state) {
    (void)state;
    int64_t s = 0;
    assert_int_equal(fedc_parse_datetime("1970-01-01 00:00:00", 19, &s), 0);
    assert_int_equal(s, 0);
    /* date -u -d '2018-04-01 07:08:09' +%s */
    assert_int_equal(fedc_parse_datetime("2018-04-01T07:08:09Z", 20, &s), 0);
    assert_int_equal(s, 1522566489);
    assert_int_equal(fedc_epoch_weekday(s), 0); /* a Sunday */
    assert_int_equal(fedc_epoch_hour(s), 7);
    assert_int_equal(fedc_parse_datetime("2000-02-29 23:59:59", 19, &s), 0);
    assert_int_equal(s, 951868799);
    assert_int_equal(fedc_epoch_weekday(951868799), 2); /* a Tuesday */
    assert_int_equal(fedc_epoch_weekday(-1), 3);        /* 1969-12-31, a Wednesday */
    assert_int_equal(fedc_epoch_hour(-1), 23);
    const char *bad[] = {"2018-02-29 00:00:00",  "1900-02-29 00:00:00", "2018-13-01 00:00:00",
                         "2018-04-31 00:00:00",  "2018-04-01 24:00:00", "2018-04-01 00:60:00",
                         "2018-04-01 00:00:60",  "2018-04-01 00:00:0",  "2018-04-01X00:00:00",
                         "2018-04-01 00:00:00z", "18-04-01 00:00:00",   "2018/04/01 00:00:00",
                         "0000-01-01 00:00:00",  "2018-04-01 0a:00:00", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (fedc_parse_datetime(bad[i], strlen(bad[i]), &s) != -1)
            print_message("accepted '%s'\n", bad[i]);
        assert_int_equal(fedc_parse_datetime(bad[i], strlen(bad[i]), &s), -1);
    }
}

/* ---- the command --------------------------------------------------------------------------- */

typedef struct ctx {
    char *dir;
} ctx;

static int setup(void **state) {
    ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = proc_mkdtemp("fedc-test-features-"))) {
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
    print_message("--- %s: status %d, signal %d\n--- stdout:\n%s--- stderr:\n%s---\n", what,
                  r->status, r->term_signal, r->out ? r->out : "", r->err ? r->err : "");
}

/* Runs fedc with the NULL-terminated arguments and expects exit status `status`. */
__attribute__((sentinel)) static void fedc_run(proc_result *r, int status, ...) {
    const char *argv[40];
    int n = 0;
    argv[n++] = g_fedc;
    va_list ap;
    va_start(ap, status);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(n < 39);
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    assert_int_equal(proc_run(r, argv, NULL, RUN_TIMEOUT), 0);
    if (r->status != status)
        show("unexpected exit status", r);
    assert_int_equal(r->status, status);
}

static const char *const TX = "TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD\n"
                              "2018-04-01 00:00:31,1,10,5.0,0\n"
                              "2018-04-01T07:00:00Z,1,10,7.0,1\n"
                              "2018-04-08 00:00:31,2,10,1.5,0\n"
                              "2018-04-02 01:00:00,1,\"1,1\",3,0\n"
                              "2018-04-08 07:00:00,3,10,2,1\n";

/* Computed by hand: 2018-04-01 is a Sunday; row 3's terminal window with delay 7 is
 * (03-31 00:00:31, 04-01 00:00:31], holding row 1 (exactly 7 days earlier) but not row 2; row
 * 5's, (03-31 07:00, 04-01 07:00], holds row 2 (exactly 7 days earlier, a fraud) and row 1
 * (06:59:29 before its end): rate 1/2 for 1 and 7 days. Customer 1's 1-day window at
 * 04-02 01:00 holds row 2 (04-01 07:00) and itself, its 7-day one rows 1, 2 and itself. The
 * quoted terminal "1,1" stays quoted. */
static const char *const TX_FEATURES =
    "TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD,TX_WEEKEND,TX_NIGHT,"
    "CUSTOMER_ID_COUNT_1D,CUSTOMER_ID_SUM_TX_AMOUNT_1D,CUSTOMER_ID_MEAN_TX_AMOUNT_1D,"
    "CUSTOMER_ID_COUNT_7D,CUSTOMER_ID_SUM_TX_AMOUNT_7D,CUSTOMER_ID_MEAN_TX_AMOUNT_7D,"
    "TERMINAL_ID_COUNT_1D,TERMINAL_ID_RATE_TX_FRAUD_1D,TERMINAL_ID_COUNT_7D,"
    "TERMINAL_ID_RATE_TX_FRAUD_7D\n"
    "2018-04-01 00:00:31,1,10,5.0,0,1,1,1,5,5,1,5,5,0,0,0,0\n"
    "2018-04-01T07:00:00Z,1,10,7.0,1,1,0,2,12,6,2,12,6,0,0,0,0\n"
    "2018-04-08 00:00:31,2,10,1.5,0,1,1,1,1.5,1.5,1,1.5,1.5,1,0,1,0\n"
    "2018-04-02 01:00:00,1,\"1,1\",3,0,0,1,2,10,5,3,15,5,0,0,0,0\n"
    "2018-04-08 07:00:00,3,10,2,1,1,0,1,2,2,1,2,2,2,0.5,2,0.5\n";

static void test_hand_table(void **state) {
    char *in = tpath(state, "tx.csv"), *out = tpath(state, "features.csv");
    assert_int_equal(proc_write_file(in, TX), 0);
    proc_result r;
    fedc_run(&r, 0, "features", "--data", in, "--time", "TX_DATETIME", "--out", out, "--calendar",
             "--window",
             "CUSTOMER_ID:1,7:count,sum=TX_AMOUNT,mean=TX_AMOUNT;"
             "TERMINAL_ID:1,7:count,rate=TX_FRAUD:delay=7",
             NULL);
    proc_result_release(&r);
    char *got = proc_read_file(out, NULL);
    assert_non_null(got);
    if (strcmp(got, TX_FEATURES) != 0)
        print_message("got:\n%s\nwant:\n%s\n", got, TX_FEATURES);
    assert_string_equal(got, TX_FEATURES);
    free(got);
    free(in);
    free(out);
}

/* text with each comma outside double quotes replaced by sep */
static char *with_sep(const char *text, char sep) {
    char *s = strdup(text);
    assert_non_null(s);
    int quoted = 0;
    for (char *p = s; *p; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (*p == ',' && !quoted)
            *p = sep;
    }
    return s;
}

/* lines `order` of text (0: the header), joined */
static char *lines_in_order(const char *text, const int *order, int n) {
    const char *start[16];
    int k = 0;
    for (const char *p = text; *p && k < 16; p = strchr(p, '\n') + 1)
        start[k++] = p;
    char *out = calloc(strlen(text) + 1, 1);
    assert_non_null(out);
    for (int i = 0; i < n; i++) {
        assert_true(order[i] < k);
        strncat(out, start[order[i]],
                (size_t)(strchr(start[order[i]], '\n') - start[order[i]] + 1));
    }
    return out;
}

/* --delimiter ';': the features are written after ';' like the input's fields, in the streamed
 * pass (rows in time order) and through the sort (TX's rows 3 and 4 are out of order) alike. */
static void test_delimiter(void **state) {
    char *in = tpath(state, "tx-semi.csv"), *out = tpath(state, "features-semi.csv");
    const int sorted[] = {0, 1, 2, 4, 3, 5}, as_is[] = {0, 1, 2, 3, 4, 5};
    for (int pass = 0; pass < 2; pass++) {
        const int *order = pass ? as_is : sorted;
        char *tx = lines_in_order(TX, order, 6), *want_c = lines_in_order(TX_FEATURES, order, 6);
        char *data = with_sep(tx, ';'), *want = with_sep(want_c, ';');
        assert_int_equal(proc_write_file(in, data), 0);
        proc_result r;
        fedc_run(&r, 0, "features", "--data", in, "--time", "TX_DATETIME", "--out", out,
                 "--calendar", "--delimiter", ";", "--window",
                 "CUSTOMER_ID:1,7:count,sum=TX_AMOUNT,mean=TX_AMOUNT;"
                 "TERMINAL_ID:1,7:count,rate=TX_FRAUD:delay=7",
                 NULL);
        /* the sort says so on stderr: the pass taken is the one meant */
        assert_true((strstr(r.err ? r.err : "", "sorting") != NULL) == pass);
        proc_result_release(&r);
        char *got = proc_read_file(out, NULL);
        assert_non_null(got);
        if (strcmp(got, want) != 0)
            print_message("pass %d, got:\n%s\nwant:\n%s\n", pass, got, want);
        assert_string_equal(got, want);
        free(got);
        free(tx);
        free(want_c);
        free(data);
        free(want);
    }
    free(in);
    free(out);
}

/* The command on random epoch-second data, read back and compared with the brute force. */
static void test_command_random(void **state) {
    enum { N = 500 };
    uint64_t ent[N];
    int64_t t[N];
    double amt[N], fraud[N];
    char *in = tpath(state, "rand.csv"), *out = tpath(state, "rand-out.csv");
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fprintf(f, "ID,T,C,AMT,FRAUD\n");
    for (int i = 0; i < N; i++) {
        ent[i] = (uint64_t)rnd_below(6);
        t[i] = rnd_below(3) == 0 ? rnd_below(30) * DAY : rnd_below(60 * DAY);
        amt[i] = (double)rnd_below(100000) / 4.0;
        fraud[i] = (double)(rnd_below(5) == 0);
        fprintf(f, "%d,%lld,c%llu,%.2f,%d\n", i, (long long)t[i], (unsigned long long)ent[i],
                amt[i], (int)fraud[i]);
    }
    assert_int_equal(fclose(f), 0);
    proc_result r;
    fedc_run(&r, 0, "features", "--data", in, "--time", "T", "--time-format", "epoch", "--out", out,
             "--window", "C:1,7:count,mean=AMT;C:2,5:count,sum=AMT,rate=FRAUD:delay=3", NULL);
    proc_result_release(&r);
    char *text = proc_read_file(out, NULL);
    assert_non_null(text);
    char *line = strtok(text, "\n");
    assert_non_null(line);
    assert_string_equal(line, "ID,T,C,AMT,FRAUD,C_COUNT_1D,C_MEAN_AMT_1D,C_COUNT_7D,C_MEAN_AMT_7D,"
                              "C_COUNT_2D,C_SUM_AMT_2D,C_RATE_FRAUD_2D,C_COUNT_5D,C_SUM_AMT_5D,"
                              "C_RATE_FRAUD_5D");
    int64_t c[N];
    double s[N], fr[N];
    const struct { int64_t dur, delay; } w[4] = {{1, 0}, {7, 0}, {2, 3}, {5, 3}};
    double want[N][10];
    for (int k = 0; k < 4; k++) {
        brute(N, ent, t, amt, w[k].dur * DAY, w[k].delay * DAY, c, s);
        brute(N, ent, t, fraud, w[k].dur * DAY, w[k].delay * DAY, c, fr);
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
        line = strtok(NULL, "\n");
        assert_non_null(line);
        char *p = line;
        int id = (int)strtol(p, &p, 10);
        assert_int_equal(id, i); /* input order */
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
    assert_null(strtok(NULL, "\n"));
    free(text);
    free(in);
    free(out);
}

/* A refused run: exit 2, one line on stderr containing `also`, no output file. */
static void expect_refusal(void **state, const char *also, const char *data, const char *fmt,
                           const char *window) {
    char *in = tpath(state, "bad.csv"), *out = tpath(state, "bad-out.csv");
    assert_int_equal(proc_write_file(in, data), 0);
    proc_result r;
    fedc_run(&r, 2, "features", "--data", in, "--time", "TX_DATETIME", "--time-format", fmt,
             "--out", out, "--window", window, NULL);
    if (!strstr(r.err, also) || !strchr(r.err, '\n') || strchr(r.err, '\n')[1])
        show(also, &r);
    assert_non_null(strstr(r.err, also));
    assert_int_equal(strncmp(r.err, "fedc features: ", 15), 0);
    assert_null(strchr(r.err, '\n')[1] ? "more than one line" : NULL);
    assert_false(proc_exists(out));
    proc_result_release(&r);
    free(in);
    free(out);
}

static void test_bad_input(void **state) {
    const char *ok = "CUSTOMER_ID:1:count";
    char bad_time[512];
    snprintf(bad_time, sizeof bad_time, "%s", TX);
    /* line 4 (the third row), field 1 */
    char *p = strstr(bad_time, "2018-04-08 00:00:31");
    p[9] = '9'; /* 2018-04-09 stays valid: make it the 39th */
    p[8] = '3';
    expect_refusal(state, "bad.csv:4:1: TX_DATETIME: '2018-04-39 00:00:31' is not a timestamp",
                   bad_time, "datetime", ok);
    expect_refusal(state, "bad.csv:2:1: TX_DATETIME: '2018-04-01 00:00:31' is not a whole number",
                   TX, "epoch", ok);
    expect_refusal(state, "bad.csv:2:1:", "TX_DATETIME,CUSTOMER_ID\n 2018-04-01 00:00:31,1\n",
                   "datetime", ok);
    expect_refusal(state, "bad.csv:3:1:", "TX_DATETIME,CUSTOMER_ID\n5,1\n12x,1\n", "epoch", ok);
    expect_refusal(state, "window 'NOPE:1:count': no column 'NOPE' in", TX, "datetime",
                   "NOPE:1:count");
    expect_refusal(state, "window 'CUSTOMER_ID:1:mean=X': no column 'X'", TX, "datetime",
                   "CUSTOMER_ID:1:mean=X");
    expect_refusal(state, "bad.csv:3:4: TX_AMOUNT: 'x' is not 0 or 1",
                   "TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT\n"
                   "2018-04-01 00:00:31,1,10,1\n2018-04-01 00:00:32,1,10,x\n",
                   "datetime", "CUSTOMER_ID:1:rate=TX_AMOUNT");
    expect_refusal(state, "bad.csv:2:4: TX_FRAUD: '2' is not 0 or 1",
                   "TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_FRAUD\n2018-04-01 00:00:31,1,10,2\n",
                   "datetime", "CUSTOMER_ID:1:rate=TX_FRAUD");
    expect_refusal(state, "bad.csv:3:", "TX_DATETIME,CUSTOMER_ID\n2018-04-01 00:00:31,1\n1,2,3\n",
                   "datetime", ok);
    expect_refusal(state, "--window 'CUSTOMER_ID:0:count': durations", TX, "datetime",
                   "CUSTOMER_ID:0:count");
    expect_refusal(state, "--window 'CUSTOMER_ID:1,x:count': durations", TX, "datetime",
                   "CUSTOMER_ID:1,x:count");
    expect_refusal(state, "--window 'CUSTOMER_ID:1,1:count': duration 1 given twice", TX,
                   "datetime", "CUSTOMER_ID:1,1:count");
    expect_refusal(state, "aggregate 'median=TX_AMOUNT'", TX, "datetime",
                   "CUSTOMER_ID:1:count;CUSTOMER_ID:1:median=TX_AMOUNT");
    expect_refusal(state, "aggregate 'mean='", TX, "datetime", "CUSTOMER_ID:1:mean=");
    expect_refusal(state, "--window 'CUSTOMER_ID:1': expected", TX, "datetime", "CUSTOMER_ID:1");
    expect_refusal(state, "'delay=x' is not delay=L", TX, "datetime",
                   "CUSTOMER_ID:1:count:delay=x");
    expect_refusal(state, "expected ENTITY", TX, "datetime", "CUSTOMER_ID:1:count:delay=1:more");
    expect_refusal(state, "bad.csv:2:1:", "TX_DATETIME,CUSTOMER_ID\n253402300800,1\n", "epoch", ok);
    expect_refusal(state, "output column 'CUSTOMER_ID_COUNT_1D' would appear twice", TX, "datetime",
                   "CUSTOMER_ID:1,7:count;CUSTOMER_ID:1:count:delay=2");
    expect_refusal(state, "output column 'TX_FRAUD_COUNT_1D' would appear twice (it is an input",
                   "TX_DATETIME,TX_FRAUD,TX_FRAUD_COUNT_1D\n2018-04-01 00:00:31,1,2\n", "datetime",
                   "TX_FRAUD:1:count");
    /* --window twice would keep only the last spec: refused */
    char *in = tpath(state, "tx.csv"), *out = tpath(state, "o.csv");
    assert_int_equal(proc_write_file(in, TX), 0);
    proc_result r;
    fedc_run(&r, 2, "features", "--data", in, "--time", "TX_DATETIME", "--out", out, "--window", ok,
             "--window=TERMINAL_ID:1:count", NULL);
    assert_non_null(strstr(r.err, "--window given 2 times"));
    proc_result_release(&r);
    fedc_run(&r, 2, "features", "--data", in, "--time", "WHEN", "--out", out, "--calendar", NULL);
    assert_non_null(strstr(r.err, "time column: no column 'WHEN'"));
    proc_result_release(&r);
    fedc_run(&r, 2, "features", "--data", in, "--time", "TX_DATETIME", "--out", out, NULL);
    assert_non_null(strstr(r.err, "nothing to compute"));
    proc_result_release(&r);
    assert_false(proc_exists(out));
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
        cmocka_unit_test(test_random_against_brute_force),
        cmocka_unit_test(test_delay_edges_and_ties),
        cmocka_unit_test(test_datetime),
        cmocka_unit_test_setup_teardown(test_hand_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delimiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
