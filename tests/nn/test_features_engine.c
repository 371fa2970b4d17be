/* The streaming features engine (fedc/features.h) against fedc_window_aggregate, the in-memory
 * computation that tests/cli/test_features.c checks against the definition by brute force: on
 * 150 000 rows over three years (entities dropped with their last row and made again many times),
 * with entities busy, rare and gone for months, ties, a delay and two value columns; row by row
 * and in batches; and the rows held (what memory grows with) stay near the rows inside the
 * longest window, far below the rows pushed. Also: rows out of time order refused; the window
 * spec's text form (parsing, errors, canonical text, names); the number writer against printf's
 * %.15g and the reader against strtod. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/features.h"

#define DAY 86400

/* xorshift64* (Vigna 2016): a fixed stream, so that a failure repeats. */
static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}
static int64_t rnd_below(int64_t n) {
    return (int64_t)(rnd() % (uint64_t)n);
}

typedef struct data {
    size_t n;
    int64_t *t;
    uint64_t *ent;  /* entity number */
    char (*key)[8]; /* its text */
    double *amt, *flag;
} data;

/* Rows in time order (ties in generation order, which is the file order): entity e in 0..999,
 * entities 0..49 busy, the others rare, and every entity absent for a random stretch of months. */
static void make_data(data *d, size_t n) {
    d->n = n;
    d->t = malloc(n * sizeof *d->t);
    d->ent = malloc(n * sizeof *d->ent);
    d->key = malloc(n * sizeof *d->key);
    d->amt = malloc(n * sizeof *d->amt);
    d->flag = malloc(n * sizeof *d->flag);
    assert_true(d->t && d->ent && d->key && d->amt && d->flag);
    int64_t t = 1000 * DAY;
    for (size_t i = 0; i < n; i++) {
        /* gaps of 0 (ties) to ~20 min, and now and then a jump of days */
        int64_t r = rnd_below(1000);
        t += r < 100 ? 0 : r < 995 ? rnd_below(1300) : rnd_below(40) * DAY;
        uint64_t e;
        do {
            e = rnd_below(4) ? (uint64_t)rnd_below(50) : (uint64_t)rnd_below(1000);
            /* entity e is away from day 200 + 7e mod 900 for 120 days */
        } while (((t / DAY - (200 + 7 * (int64_t)e)) % 900 + 900) % 900 < 120);
        d->t[i] = t;
        d->ent[i] = e;
        snprintf(d->key[i], sizeof d->key[i], "e%llu", (unsigned long long)e);
        d->amt[i] = (double)rnd_below(80000) / 8.0; /* exact in binary: sums compare exactly */
        d->flag[i] = (double)(rnd_below(7) == 0);
    }
}

static void free_data(data *d) {
    free(d->t);
    free(d->ent);
    free(d->key);
    free(d->amt);
    free(d->flag);
}

static fedc_features_spec spec_of(const char *windows, int calendar) {
    fedc_features_spec s;
    fedc_features_spec_init(&s);
    assert_int_equal(fedc_features_spec_set_time(&s, "T", NULL), FEDC_OK);
    assert_int_equal(fedc_features_spec_add_windows(&s, windows, NULL), FEDC_OK);
    s.calendar = calendar;
    return s;
}

/* Binds a header "T,E,AMT,FLAG". */
static void bind(fedc_feat_engine *e) {
    static const char *const names[] = {"T", "E", "AMT", "FLAG"};
    fedc_csv_field hdr[4];
    for (int c = 0; c < 4; c++)
        hdr[c] = (fedc_csv_field){names[c], strlen(names[c]), 0};
    fedc_diag d = {{0}};
    if (fedc_feat_engine_bind(e, hdr, 4, "mem.csv", &d) != FEDC_OK)
        print_message("%s\n", d.msg);
    assert_int_equal(d.msg[0], 0);
}

static void test_engine_against_aggregate(void **state) {
    (void)state;
    data dd;
    make_data(&dd, 150000);
    const size_t n = dd.n;
    /* window 0: E:1,7,30:count,mean=AMT,sum=AMT; window 1: E:2,9:count,rate=FLAG,sum=AMT:delay=7 */
    fedc_features_spec s = spec_of("E:1,7,30:count,mean=AMT,sum=AMT;"
                                   "E:2,9:count,rate=FLAG,sum=AMT:delay=7",
                                   1);
    const int n_out = fedc_features_n_columns(&s);
    assert_int_equal(n_out, 2 + 9 + 6);
    fedc_feat_engine *one = NULL, *many = NULL;
    assert_int_equal(fedc_feat_engine_new(&one, &s, NULL), FEDC_OK);
    assert_int_equal(fedc_feat_engine_new(&many, &s, NULL), FEDC_OK);
    bind(one);
    bind(many);
    /* rows pushed one at a time and in batches of up to 300 give the same values */
    double *o1 = malloc(n * (size_t)n_out * sizeof *o1),
           *o2 = malloc(n * (size_t)n_out * sizeof *o2);
    fedc_feat_row *rows = calloc(n, sizeof *rows);
    const char **keys = malloc(2 * n * sizeof *keys);
    size_t *lens = malloc(2 * n * sizeof *lens);
    double *vals = malloc(3 * n * sizeof *vals);
    assert_true(o1 && o2 && rows && keys && lens && vals);
    size_t held_peak = 0;
    for (size_t i = 0; i < n; i++) {
        rows[i] = (fedc_feat_row){dd.t[i], keys + 2 * i, lens + 2 * i, vals + 3 * i, 2, 3};
        keys[2 * i] = keys[2 * i + 1] = dd.key[i];
        lens[2 * i] = lens[2 * i + 1] = strlen(dd.key[i]);
        vals[3 * i] = dd.amt[i];      /* window 0's AMT */
        vals[3 * i + 1] = dd.flag[i]; /* window 1's FLAG, then AMT */
        vals[3 * i + 2] = dd.amt[i];
        assert_int_equal(fedc_feat_engine_push(one, &rows[i], o1 + i * (size_t)n_out), FEDC_OK);
        if (fedc_feat_engine_held(one) > held_peak)
            held_peak = fedc_feat_engine_held(one);
    }
    for (size_t i = 0; i < n;) {
        size_t k = 1 + (size_t)rnd_below(300);
        if (k > n - i)
            k = n - i;
        assert_int_equal(fedc_feat_engine_push_n(many, rows + i, k, o2 + i * (size_t)n_out),
                         FEDC_OK);
        i += k;
    }
    assert_memory_equal(o1, o2, n * (size_t)n_out * sizeof *o1);
    /* the reference */
    const int64_t d0[3] = {1 * DAY, 7 * DAY, 30 * DAY}, d1[2] = {2 * DAY, 9 * DAY};
    int64_t *cnt = malloc(3 * n * sizeof *cnt);
    double *sum = malloc(3 * n * sizeof *sum), *fsum = malloc(3 * n * sizeof *fsum);
    assert_true(cnt && sum && fsum);
    long empty = 0, full = 0;
    for (int w = 0; w < 2; w++) {
        int nd = w ? 2 : 3;
        const int64_t *dur = w ? d1 : d0, delay = w ? 7 * DAY : 0;
        assert_int_equal(
            fedc_window_aggregate(n, dd.ent, dd.t, dd.amt, delay, nd, dur, cnt, sum, NULL),
            FEDC_OK);
        if (w)
            assert_int_equal(
                fedc_window_aggregate(n, dd.ent, dd.t, dd.flag, delay, nd, dur, cnt, fsum, NULL),
                FEDC_OK);
        for (size_t i = 0; i < n; i++) {
            const double *o = o1 + i * (size_t)n_out;
            for (int k = 0; k < nd; k++) {
                size_t at = (size_t)k * n + i;
                double c = (double)cnt[at];
                int col = w ? 2 + 9 + 3 * k : 2 + 3 * k;
                double want[3] = {c, w ? (c ? fsum[at] / c : 0) : (c ? sum[at] / c : 0), sum[at]};
                for (int a = 0; a < 3; a++)
                    if (o[col + a] != want[a]) {
                        print_message("row %zu window %d duration %d aggregate %d: got %.17g, "
                                      "want %.17g\n",
                                      i, w, k, a, o[col + a], want[a]);
                        fail();
                    }
                if (cnt[at])
                    full++;
                else
                    empty++;
            }
        }
    }
    /* calendar columns: 1970-01-01 was a Thursday */
    for (size_t i = 0; i < n; i += 997) {
        int wd = (int)((dd.t[i] / DAY + 4) % 7), hr = (int)(dd.t[i] % DAY / 3600);
        assert_true(o1[i * (size_t)n_out] == (wd == 0 || wd == 6));
        assert_true(o1[i * (size_t)n_out + 1] == (hr <= 6));
    }
    assert_true(empty > 1000 && full > 100000);
    /* what the engine holds: per window spec, the rows inside its longest window (30 days here,
     * 9 + 7 for the other, so at most twice those inside 30 days), dropped as they leave it;
     * the rows span 3 years */
    size_t in_window = 0;
    for (size_t i = 0, j = 0; i < n; i++) {
        while (dd.t[j] <= dd.t[i] - 30 * DAY)
            j++;
        if (i + 1 - j > in_window)
            in_window = i + 1 - j;
    }
    print_message("rows %zu, at most %zu inside 30 days, engine held at most %zu (%zu, %zu)\n", n,
                  in_window, held_peak, fedc_feat_engine_held_max(one),
                  fedc_feat_engine_held_max(many));
    assert_true(dd.t[n - 1] - dd.t[0] > 700 * DAY);
    assert_true(held_peak <= 2 * in_window);
    assert_true(held_peak < n / 2);
    /* the most held is counted inside a push, before its rows leave */
    assert_true(fedc_feat_engine_held_max(one) >= held_peak);
    assert_true(fedc_feat_engine_held_max(one) <= held_peak + 2);
    /* a row earlier than the last is refused, and changes nothing */
    fedc_feat_row early = rows[n - 1];
    early.t = dd.t[n - 1] - 1;
    assert_int_equal(fedc_feat_engine_push(one, &early, o1), FEDC_EINVAL);
    assert_int_equal(fedc_feat_engine_push_n(many, rows, 2, o1), FEDC_EINVAL);
    fedc_feat_engine_destroy(&one);
    fedc_feat_engine_destroy(&many);
    assert_null(one);
    fedc_feat_engine_destroy(&one);
    fedc_features_spec_release(&s);
    free(o1);
    free(o2);
    free(rows);
    free(keys);
    free(lens);
    free(vals);
    free(cnt);
    free(sum);
    free(fsum);
    free_data(&dd);
}

static void test_spec_text(void **state) {
    (void)state;
    fedc_features_spec s;
    fedc_features_spec_init(&s);
    fedc_diag d = {{0}};
    assert_int_equal(fedc_features_spec_add_windows(
                         &s,
                         "CUSTOMER_ID:1,7,30:count,mean=TX_AMOUNT;TERMINAL_ID:30,1:rate=F,"
                         "count:delay=7;X:2:sum=A:delay=0",
                         &d),
                     FEDC_OK);
    assert_int_equal(s.n_win, 3);
    char text[512];
    fedc_features_windows_text(text, sizeof text, &s);
    /* canonical: as given, except that a delay of 0 is left out */
    assert_string_equal(text, "CUSTOMER_ID:1,7,30:count,mean=TX_AMOUNT;TERMINAL_ID:30,1:rate=F,"
                              "count:delay=7;X:2:sum=A");
    assert_int_equal(fedc_features_spec_set_time(&s, "TX_DATETIME", NULL), FEDC_OK);
    assert_int_equal(fedc_features_n_columns(&s), 6 + 4 + 1);
    char name[256];
    fedc_features_column_name(name, sizeof name, &s, 1);
    assert_string_equal(name, "CUSTOMER_ID_MEAN_TX_AMOUNT_1D");
    fedc_features_column_name(name, sizeof name, &s, 7); /* per duration, per aggregate */
    assert_string_equal(name, "TERMINAL_ID_COUNT_30D");
    fedc_features_column_name(name, sizeof name, &s, 8);
    assert_string_equal(name, "TERMINAL_ID_RATE_F_1D");
    s.calendar = 1;
    fedc_features_column_name(name, sizeof name, &s, 1);
    assert_string_equal(name, "TX_NIGHT");
    /* the text read back is the same spec */
    fedc_features_spec t;
    fedc_features_spec_init(&t);
    assert_int_equal(fedc_features_spec_add_windows(&t, text, NULL), FEDC_OK);
    assert_int_equal(fedc_features_spec_set_time(&t, "TX_DATETIME", NULL), FEDC_OK);
    assert_false(fedc_features_spec_equal(&s, &t)); /* calendar differs */
    t.calendar = 1;
    assert_true(fedc_features_spec_equal(&s, &t));
    t.win[1].delay_days = 6;
    assert_false(fedc_features_spec_equal(&s, &t));
    /* a truncated text still says its full length */
    assert_int_equal(fedc_features_windows_text(text, 8, &s), strlen("CUSTOMER_ID:1,7,30:count,"
                                                                     "mean=TX_AMOUNT;TERMINAL_"
                                                                     "ID:30,1:rate=F,count:"
                                                                     "delay=7;X:2:sum=A"));
    assert_string_equal(text, "CUSTOME");
    /* errors name the spec as given and leave the spec as it was */
    const struct {
        const char *text, *msg;
    } bad[] = {
        {"A:1:count;B:0:count", "'B:0:count': durations"},
        {"A:1,1:count", "'A:1,1:count': duration 1 given twice"},
        {"A:1:median=X", "aggregate 'median=X'"},
        {"A:1:count=X", "aggregate 'count=X'"},
        {"A:1:mean=", "aggregate 'mean='"},
        {"A:1:count:delay=3651", "'delay=3651' is not delay=L"},
        {"A:1", "'A:1': expected ENTITY"},
        {":1:count", "empty entity column"},
        {"A=B:1:count", "the entity column must be a name"},
        {"A:3651:count", "durations"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d.msg[0] = 0;
        assert_int_equal(fedc_features_spec_add_windows(&s, bad[i].text, &d), FEDC_EPARSE);
        if (!strstr(d.msg, bad[i].msg))
            print_message("'%s': got '%s'\n", bad[i].text, d.msg);
        assert_non_null(strstr(d.msg, bad[i].msg));
        assert_int_equal(s.n_win, 3);
    }
    fedc_features_spec_release(&s);
    fedc_features_spec_release(&t);
    /* an engine wants a time column and something to compute */
    fedc_feat_engine *e = NULL;
    assert_int_equal(fedc_feat_engine_new(&e, &s, NULL), FEDC_EINVAL);
    assert_int_equal(fedc_features_spec_set_time(&s, "T", NULL), FEDC_OK);
    assert_int_equal(fedc_feat_engine_new(&e, &s, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "nothing to compute"));
    s.calendar = 1;
    assert_int_equal(fedc_feat_engine_new(&e, &s, NULL), FEDC_OK);
    fedc_feat_engine_destroy(&e);
    fedc_features_spec_release(&s);
}

/* The engine's own readings of time: a timestamp of the date before (read without its date),
 * and the calendar columns, against fedc_parse_datetime, fedc_epoch_weekday and fedc_epoch_hour,
 * on times of every kind and on both sides of the engine's shortcuts. */
static void test_engine_times(void **state) {
    (void)state;
    fedc_features_spec s;
    fedc_features_spec_init(&s);
    assert_int_equal(fedc_features_spec_set_time(&s, "T", NULL), FEDC_OK);
    s.calendar = 1;
    fedc_feat_engine *e = NULL;
    assert_int_equal(fedc_feat_engine_new(&e, &s, NULL), FEDC_OK);
    bind(e);
    fedc_csv_field f[4] = {{NULL, 0, 0}, {"k", 1, 0}, {"1", 1, 0}, {"0", 1, 0}};
    fedc_csv_record rec = {2, 1, "", 0, 0, 4, f};
    fedc_diag d = {{0}};
    /* a first timestamp reads its date; then the same date with times good and bad: every
     * byte of "HH:MM:SS" replaced in turn by each byte value */
    char text[24] = "2018-04-01 12:34:56";
    for (int pos = 11; pos < 19; pos++)
        for (int ch = 1; ch < 256; ch++) {
            char t[24];
            memcpy(t, text, sizeof t);
            t[pos] = (char)ch;
            /* the date first, so that t takes the engine's shortcut */
            f[0] = (fedc_csv_field){text, 19, 0};
            assert_int_equal(fedc_feat_engine_parse(e, &rec, "mem.csv", &d), FEDC_OK);
            f[0] = (fedc_csv_field){t, 19, 0};
            int64_t want = 0;
            const int bad = fedc_parse_datetime(t, 19, &want);
            const fedc_err rc = fedc_feat_engine_parse(e, &rec, "mem.csv", &d);
            if ((rc != FEDC_OK) != (bad != 0))
                print_message("'%s': engine %d, fedc_parse_datetime %d\n", t, (int)rc, bad);
            assert_int_equal(rc != FEDC_OK, bad != 0);
            if (!bad)
                assert_true(fedc_feat_engine_row(e)->t == want);
        }
    for (int i = 0; i < 20000; i++) {
        snprintf(text + 11, sizeof text - 11, "%02d:%02d:%02d", (int)rnd_below(25),
                 (int)rnd_below(61), (int)rnd_below(61));
        int64_t want = 0;
        const int bad = fedc_parse_datetime(text, 19, &want);
        f[0] = (fedc_csv_field){text, 19, 0};
        const fedc_err rc = fedc_feat_engine_parse(e, &rec, "mem.csv", &d);
        assert_int_equal(rc != FEDC_OK, bad != 0);
        if (!bad)
            assert_true(fedc_feat_engine_row(e)->t == want);
    }
    /* the calendar columns, times in order: far before year 1 and far after 9999 (the general
     * arithmetic), the shifted range's ends (102,738 weeks before 1970, and as far before
     * INT64_MAX), year 1, around 1970, random times between */
    const int64_t shift = 102738LL * 7 * DAY;
    int64_t ts[600];
    int nt = 0;
    ts[nt++] = -4 * shift - 12345;
    ts[nt++] = -shift - DAY;
    ts[nt++] = -shift - 1;
    ts[nt++] = -shift;
    ts[nt++] = -shift + 1;
    ts[nt++] = -62135596800LL; /* 0001-01-01 00:00:00 */
    ts[nt++] = -DAY - 1;
    ts[nt++] = -DAY;
    ts[nt++] = -3601;
    ts[nt++] = -1;
    for (int64_t t = 0; nt < 590; t += 1 + rnd_below(3 * DAY))
        ts[nt++] = t;
    ts[nt++] = INT64_MAX - shift - 1;
    ts[nt++] = INT64_MAX - shift;
    ts[nt++] = INT64_MAX - shift + 1;
    ts[nt++] = INT64_MAX - DAY;
    ts[nt++] = INT64_MAX;
    double o[2];
    for (int i = 0; i < nt; i++) {
        fedc_feat_row row = {ts[i], NULL, NULL, NULL, 0, 0};
        assert_int_equal(fedc_feat_engine_push(e, &row, o), FEDC_OK);
        const int wd = fedc_epoch_weekday(ts[i]), hr = fedc_epoch_hour(ts[i]);
        if (o[0] != (wd == 0 || wd == 6) || o[1] != (hr <= 6))
            print_message("t %lld: got %g %g, weekday %d hour %d\n", (long long)ts[i], o[0], o[1],
                          wd, hr);
        assert_true(o[0] == (wd == 0 || wd == 6));
        assert_true(o[1] == (hr <= 6));
    }
    fedc_feat_engine_destroy(&e);
    fedc_features_spec_release(&s);
}

static void check_fmt(double v) {
    char want[64], got[64];
    snprintf(want, sizeof want, "%.15g", v == 0 ? 0.0 : v);
    size_t n = fedc_fmt_g15(got, v);
    got[n] = 0;
    if (strcmp(got, want) != 0)
        print_message("%.17g: got '%s', want '%s'\n", v, got, want);
    assert_string_equal(got, want);
}

static void test_number_writer(void **state) {
    (void)state;
    const double edge[] = {0,
                           -0.0,
                           1,
                           -1,
                           0.5,
                           0.1,
                           1e-4,
                           9.99e-5,
                           1e-5,
                           1e14,
                           1e15,
                           1e15 - 1,
                           999999999999999.5,
                           1e300,
                           -1e-300,
                           5e-324,
                           123456.75,
                           2.5,
                           0.07,
                           1.0 / 3,
                           2.0 / 3,
                           99999.99,
                           1e-4 - 1e-20,
                           0.30000000000000004};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
        check_fmt(edge[i]);
    /* more edges: subnormals and the smallest normal, 1e22, integers about 2^53, negatives */
    const double more[] = {4.9406564584124654e-324,
                           -4.9406564584124654e-324,
                           2.2250738585072009e-308,
                           2.2250738585072014e-308,
                           1e22,
                           -1e22,
                           9007199254740991.0,
                           9007199254740992.0,
                           9007199254740994.0,
                           -9007199254740991.0,
                           -0.1,
                           -134.45,
                           -999999999999999.4,
                           DBL_MAX,
                           -DBL_MAX};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        check_fmt(more[i]);
    /* each power of two of the fast path's range (2^-14..2^50) and its neighbours, those of the
     * powers of ten 10^-5..10^16 (the decimal exponent's two guesses), and 2^-12 (where the
     * fast path's product needs a shift) */
    for (int b = -15; b <= 51; b++) {
        const double p2 = ldexp(1, b);
        check_fmt(p2);
        check_fmt(nextafter(p2, 0));
        check_fmt(nextafter(p2, INFINITY));
        check_fmt(-nextafter(p2, 0));
    }
    for (int k = -5; k <= 16; k++) {
        double p = pow(10, k);
        for (int j = 0; j < 8; j++) {
            check_fmt(p);
            check_fmt(-p);
            check_fmt(p * (1 + 1e-15 * j));
            check_fmt(p * (1 - 1e-16 * j));
            p = nextafter(p, INFINITY);
        }
        p = pow(10, k);
        for (int j = 0; j < 8; j++) {
            p = nextafter(p, 0);
            check_fmt(p);
        }
    }
    /* halves at the 16th digit (round half to even, both ways) and the values that round up
     * to one more digit (9.9999999999999995 -> 10) */
    for (int i = 0; i < 20000; i++) {
        const double n14 = (double)(10000000000000 + rnd_below(90000000000000));
        check_fmt(n14 + 0.25);
        check_fmt(n14 + 0.75);
        check_fmt(n14 + 0.5);
        const double n15 = (double)(100000000000000 + rnd_below(900000000000000));
        check_fmt(n15 + 0.5);
        check_fmt(-(n15 + 0.5));
        const double s = ldexp(1, (int)rnd_below(64) - 14);
        check_fmt(s * (1 + ldexp(1, -52) * (double)rnd_below(64)));
        check_fmt(ldexp(1, -13) + ldexp((double)(rnd() >> 11), -66)); /* [2^-13, 2^-12) */
        check_fmt(1e-4 + ldexp((double)(rnd() >> 11), -66));          /* [1e-4, 2^-12) */
    }
    const double carry[] = {9.9999999999999995,   99999.999999999995, 0.00099999999999999995,
                            0.099999999999999995, 99999999999999.995, -9.9999999999999995};
    for (size_t i = 0; i < sizeof carry / sizeof carry[0]; i++)
        check_fmt(carry[i]);
    /* means of amounts in cents over small counts (what the features are), ratios, and random
     * bit patterns in and around the fast path's range */
    for (int i = 0; i < 300000; i++) {
        double cents = (double)rnd_below(10000000);
        check_fmt(cents / 100.0 / (double)(1 + rnd_below(200)));
        check_fmt((double)rnd_below(1000) / (double)(1 + rnd_below(1000)));
        uint64_t bits = rnd();
        double v;
        memcpy(&v, &bits, sizeof v);
        if (isfinite(v))
            check_fmt(v);
        check_fmt(ldexp((double)(rnd() >> 11), -(int)rnd_below(100)) * (rnd() & 1 ? 1 : -1));
    }
}

static void check_parse(const char *s, int ok) {
    double v = -1, w;
    int rc = fedc_parse_real(s, strlen(s), &v);
    if (rc != (ok ? 0 : -1))
        print_message("'%s': got %d\n", s, rc);
    assert_int_equal(rc, ok ? 0 : -1);
    if (ok) {
        w = strtod(s, NULL);
        if (memcmp(&v, &w, sizeof v) != 0)
            print_message("'%s': got %.17g, strtod %.17g\n", s, v, w);
        assert_memory_equal(&v, &w, sizeof v);
    }
}

static void test_number_reader(void **state) {
    (void)state;
    const char *good[] = {"0",
                          "-0",
                          "+5",
                          "5.",
                          ".5",
                          "12.34",
                          "1e5",
                          " 7",
                          "1E-3",
                          "0x10",
                          "1.5e300",
                          "007",
                          "123456789012345678901234",
                          "0.1",
                          "9007199254740993",
                          "4.9e-324",
                          "-.25"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        check_parse(good[i], 1);
    const char *bad[] = {"",   "-",   ".",   "+",     "1.2.3", "1e", "abc",
                         "1 ", "inf", "nan", "1e999", "--1",   "1,5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_parse(bad[i], 0);
    char buf[64];
    for (int i = 0; i < 300000; i++) {
        /* plain decimals of 1 to 20 digits, the point anywhere */
        int nd = 1 + (int)rnd_below(20), dot = (int)rnd_below(nd + 1), n = 0;
        if (rnd() & 1)
            buf[n++] = '-';
        for (int k = 0; k < nd; k++) {
            if (k == dot && k)
                buf[n++] = '.';
            buf[n++] = (char)('0' + rnd_below(10));
        }
        buf[n] = 0;
        check_parse(buf, 1);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_against_aggregate),
        cmocka_unit_test(test_spec_text),
        cmocka_unit_test(test_engine_times),
        cmocka_unit_test(test_number_writer),
        cmocka_unit_test(test_number_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
