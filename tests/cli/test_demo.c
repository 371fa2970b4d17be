/* fedc demo, driven as a user would (small sizes): it runs three times in the same directory (the
 * second reuses the banks' raw data and features, the third, with other --days, makes them again;
 * no pooled copy of the data is written). The raw path end to end: fedc synth --raw's files hold
 * no fraud scenario (truth.csv does), every bank's feature file has the spec's columns and only
 * rows before the test start, the test set the rest, each raw row lands in one feature file, the
 * test rows' windows hold the banks' earlier rows (a brute-force count over the raw files, labels
 * only once 7 days old), and the federated model beats a constant score. And the report is a
 * self-contained HTML page with one PR-AUC point per round and the best round marked, one
 * precision-recall curve for the federated model and one for each bank alone, each with a note on
 * where it starts, the run's settings, the rounds' participation folded into one row, nothing
 * loaded from the network; the final table is also JSON for machines.
 *
 *   test_demo PATH/TO/fedc */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "proc.h"

static const char *g_fedc;

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Days since 1970-01-01 of a civil date (the proleptic Gregorian calendar; the well-known
 * era-of-400-years arithmetic). */
static long days_from_civil(long y, long m, long d) {
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* "YYYY-MM-DD HH:MM:SS" at s to epoch seconds. */
static long long parse_time(const char *s) {
    int y, mo, d, h, mi, se;
    assert_int_equal(sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se), 6);
    return 86400LL * days_from_civil(y, mo, d) + 3600LL * h + 60 * mi + se;
}

/* One row of a raw or a feature file: the raw columns, and f[] the features (20 columns). */
typedef struct row {
    long long id, t, cust, term;
    double amount;
    int fraud;
    double f[20];
} row;

/* Reads a CSV file of plain numbers and one time column (index 1) into rows; checks the header is
 * `head`. Returns the count; *out is the caller's. */
static size_t read_rows(const char *path, const char *head, int n_cols, row **out) {
    char *text = proc_read_file(path, NULL);
    if (!text)
        fail_msg("cannot read %s", path);
    size_t hl = strlen(head);
    if (strncmp(text, head, hl) != 0 || text[hl] != '\n')
        fail_msg("%s: header\n%.*s\nexpected\n%s", path, (int)strcspn(text, "\n"), text, head);
    size_t n = 0, cap = 1024;
    row *rows = malloc(cap * sizeof *rows);
    assert_non_null(rows);
    for (char *p = text + hl + 1; *p;) {
        if (n == cap) {
            cap *= 2;
            rows = realloc(rows, cap * sizeof *rows);
            assert_non_null(rows);
        }
        row *r = &rows[n++];
        for (int c = 0; c < n_cols; c++) {
            char *e = p;
            if (c == 1) {
                r->t = parse_time(p);
                e = p + 19;
            } else {
                r->f[c] = strtod(p, &e);
            }
            assert_true(e > p && *e == (c == n_cols - 1 ? '\n' : ','));
            p = e + 1;
        }
        r->id = (long long)r->f[0];
        r->cust = (long long)r->f[2];
        r->term = (long long)r->f[3];
        r->amount = r->f[4];
        r->fraud = (int)r->f[5];
    }
    free(text);
    *out = rows;
    return n;
}

#define RAW_HEAD "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD"
/* The naming rule for the spec CUSTOMER_ID:1,7,30:count,mean=TX_AMOUNT;
 * TERMINAL_ID:1,7,30:count,rate=TX_FRAUD:delay=7 with --calendar, written out by hand. */
#define FEAT_HEAD                                                                                  \
    RAW_HEAD ",TX_WEEKEND,TX_NIGHT,"                                                               \
             "CUSTOMER_ID_COUNT_1D,CUSTOMER_ID_MEAN_TX_AMOUNT_1D,"                                 \
             "CUSTOMER_ID_COUNT_7D,CUSTOMER_ID_MEAN_TX_AMOUNT_7D,"                                 \
             "CUSTOMER_ID_COUNT_30D,CUSTOMER_ID_MEAN_TX_AMOUNT_30D,"                               \
             "TERMINAL_ID_COUNT_1D,TERMINAL_ID_RATE_TX_FRAUD_1D,"                                  \
             "TERMINAL_ID_COUNT_7D,TERMINAL_ID_RATE_TX_FRAUD_7D,"                                  \
             "TERMINAL_ID_COUNT_30D,TERMINAL_ID_RATE_TX_FRAUD_30D"

/* A number "key": N in a JSON text, after `after` when given. */
static double json_num(const char *js, const char *after, const char *key) {
    const char *p = after ? strstr(js, after) : js;
    assert_non_null(p);
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *q = strstr(p, pat);
    assert_non_null(q);
    return strtod(q + strlen(pat), NULL);
}

/* The raw path: files, columns, the split in time, history and the label delay. */
static void check_raw_path(const char *out) {
    char *sj = proc_path(out, "data/synth.json"), *js = proc_read_file(sj, NULL);
    assert_non_null(js);
    const char *tf = strstr(js, "\"test_from\": \"");
    assert_non_null(tf);
    long long from = parse_time(tf + 14);
    free(js);
    free(sj);
    char *tp = proc_path(out, "data/truth.csv"), *truth = proc_read_file(tp, NULL);
    assert_non_null(truth);
    assert_true(strncmp(truth, "TRANSACTION_ID,FILE,TX_FRAUD_SCENARIO\n", 38) == 0);
    free(truth);
    free(tp);
    /* The raw files, all days of each bank. */
    row *raw[3];
    size_t n_raw[3], total = 0;
    long long max_id = 0;
    for (int b = 0; b < 3; b++) {
        char name[64];
        snprintf(name, sizeof name, "data/bank-%c.csv", 'a' + b);
        char *p = proc_path(out, name);
        n_raw[b] = read_rows(p, RAW_HEAD, 6, &raw[b]);
        total += n_raw[b];
        for (size_t i = 0; i < n_raw[b]; i++)
            max_id = raw[b][i].id > max_id ? raw[b][i].id : max_id;
        free(p);
    }
    /* Every raw row in exactly one feature file: its bank's before the start, test.csv after. */
    char *seen = calloc((size_t)max_id + 1, 1);
    assert_non_null(seen);
    size_t n_feat = 0;
    for (int b = 0; b < 4; b++) {
        char name[64];
        snprintf(name, sizeof name, b < 3 ? "features/bank-%c.csv" : "features/test.csv", 'a' + b);
        char *p = proc_path(out, name);
        row *f;
        size_t n = read_rows(p, FEAT_HEAD, 20, &f);
        for (size_t i = 0; i < n; i++) {
            assert_true(f[i].id >= 0 && f[i].id <= max_id && !seen[f[i].id]);
            seen[f[i].id] = 1;
            if (b < 3 ? f[i].t >= from : f[i].t < from)
                fail_msg("%s: row %lld on the wrong side of the test start", name, f[i].id);
        }
        n_feat += n;
        if (b == 3) {
            /* The test rows' windows over the banks' raw rows, brute force: the customer's
             * rows in (t - 30 d, t] (ties in file order, which is id order), the terminal's in
             * (t - 37 d, t - 7 d]. A sample, the first test rows included (they need the
             * training period's rows). */
            size_t checked = 0, with_history = 0;
            for (size_t i = 0; i < n; i += (i < 200 ? 1 : 37)) {
                const row *x = &f[i];
                double cn = 0, camt = 0, tn = 0, tfr = 0;
                int hist = 0;
                for (int bb = 0; bb < 3; bb++)
                    for (size_t j = 0; j < n_raw[bb]; j++) {
                        const row *y = &raw[bb][j];
                        if (y->cust == x->cust && y->t > x->t - 30 * 86400LL &&
                            (y->t < x->t || (y->t == x->t && y->id <= x->id))) {
                            cn++;
                            camt += y->amount;
                            hist |= y->t < from;
                        }
                        if (y->term == x->term && y->t > x->t - 37 * 86400LL &&
                            y->t <= x->t - 7 * 86400LL) {
                            tn++;
                            tfr += y->fraud;
                        }
                    }
                if (x->f[12] != cn || fabs(x->f[13] - camt / cn) > 1e-6 * (1 + camt / cn) ||
                    x->f[18] != tn || fabs(x->f[19] - (tn ? tfr / tn : 0)) > 1e-9)
                    fail_msg("test row %lld: customer 30D %g/%g, mean %g/%g; terminal 30D %g/%g, "
                             "rate %g/%g (features/brute force)",
                             x->id, x->f[12], cn, x->f[13], camt / cn, x->f[18], tn, x->f[19],
                             tn ? tfr / tn : 0);
                checked++;
                with_history += hist;
            }
            assert_true(checked > 200 && with_history > 100);
        }
        free(f);
        free(p);
    }
    assert_int_equal(n_feat, total);
    free(seen);
    for (int b = 0; b < 3; b++)
        free(raw[b]);
}

static void test_demo_report(void **state) {
    (void)state;
    char *dir = proc_mkdtemp("fedc-test-demo");
    assert_non_null(dir);
    char *out = proc_path(dir, "demo-out");
    const char *argv[] = {g_fedc,   "demo", "--out",    out, "--customers", "300",
                          "--days", "40",   "--rounds", "3", NULL};
    assert_string_equal(argv[7], "40");
    const char *env[] = {"OMP_NUM_THREADS=1", NULL};
    char *bank_a = proc_path(out, "data/bank-a.csv"),
         *feat_a = proc_path(out, "features/bank-a.csv");
    struct stat st0 = {0}, fst0 = {0};
    /* A second run reuses the directory and the banks' data fedc synth made for the same
     * settings; a third with other --days makes it again. */
    for (int run = 0; run < 3; run++) {
        if (run == 2)
            argv[7] = "41";
        proc_result r;
        assert_int_equal(proc_run(&r, argv, env, 300), 0);
        if (r.status != 0)
            fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", r.out, r.err);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, "round   3/3"));
        assert_non_null(strstr(r.out, "recall@0.5%"));
        int reused = strstr(r.out, "reusing") != NULL;
        if (reused != (run == 1))
            fail_msg("run %d: the data was %sreused:\n%s", run, reused ? "" : "not ", r.out);
        struct stat st, fst;
        assert_int_equal(stat(bank_a, &st), 0);
        assert_int_equal(stat(feat_a, &fst), 0);
        if (run == 0) {
            st0 = st;
            fst0 = fst;
            check_raw_path(out);
        } else if (run == 1) { /* the same files, not written again */
            assert_true(st.st_ino == st0.st_ino && st.st_mtime == st0.st_mtime &&
                        st.st_size == st0.st_size);
            assert_true(fst.st_ino == fst0.st_ino && fst.st_mtime == fst0.st_mtime);
            assert_non_null(strstr(r.out, "features: reusing"));
        } else { /* other data, so other features */
            assert_true(fst.st_ino != fst0.st_ino);
        }
        proc_result_release(&r);
    }
    argv[7] = "40";
    check_raw_path(out);
    free(bank_a);
    free(feat_a);
    /* No second copy of the banks' data: the pooled rows stay in memory. */
    char *pool = proc_path(out, "federation/pool.csv");
    assert_false(proc_exists(pool));
    free(pool);
    char *rp = proc_path(out, "report.html"), *sp = proc_path(out, "summary.json");
    char *html = proc_read_file(rp, NULL), *js = proc_read_file(sp, NULL);
    assert_non_null(html);
    assert_non_null(js);
    assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    assert_non_null(strstr(html, "</html>"));
    assert_int_equal(count(html, "<svg"), count(html, "</svg>"));
    assert_int_equal(count(html, "<table"), count(html, "</table>"));
    /* Two charts, and a legend swatch for each of the five models in the table. */
    assert_int_equal(count(html, "<svg id="), 2);
    assert_int_equal(count(html, "<svg class=\"swatch\""), 5);
    /* One PR-AUC point per round; the three rounds, alike, share one participation row that
     * names all three banks; the best round is marked; ROC-AUC is in the table. */
    assert_int_equal(count(html, "class=\"pr-point\""), 3);
    assert_int_equal(count(html, "<tr class=\"rounds\""), 1);
    assert_non_null(strstr(html, "data-first=\"1\" data-last=\"3\" data-count=\"3\""));
    assert_int_equal(count(html, "bank-a bank-b bank-c (3)"), 1);
    assert_int_equal(count(html, "<g class=\"best-round\""), 1);
    assert_int_equal(count(html, "<td class=\"roc-auc\">"), 5);
    assert_int_equal(count(html, "<li class=\"pr-start-note\""), 5);
    assert_non_null(strstr(html, "<table id=\"settings\">"));
    /* Curves: federated, centralised, and each bank alone, each with many points. */
    const char *models[] = {"federated (3 clients)", "bank-a alone", "bank-b alone",
                            "bank-c alone"};
    for (int i = 0; i < 4; i++) {
        char pat[96];
        snprintf(pat, sizeof pat, "class=\"pr-curve\" data-model=\"%s\"", models[i]);
        const char *p = strstr(html, pat);
        if (!p)
            fail_msg("no precision-recall curve for %s", models[i]);
        const char *pts = strstr(p, "points=\"");
        assert_non_null(pts);
        const char *end = strchr(pts + 8, '"');
        int commas = 0;
        for (const char *q = pts + 8; q < end; q++)
            commas += *q == ',';
        assert_true(commas >= 10);
    }
    assert_int_equal(count(html, "class=\"pr-curve\""), 5);
    /* Self-contained: nothing to fetch. */
    const char *loads[] = {"<script", "src=", "href=", "url(", "@import", "http:", "https:"};
    for (int i = 0; i < 7; i++)
        if (strstr(html, loads[i]))
            fail_msg("report.html contains '%s'", loads[i]);
    /* The table for machines. */
    assert_non_null(strstr(js, "\"federated\":{\"name\":\"federated (3 clients)\""));
    assert_non_null(strstr(js, "\"centralised\":"));
    assert_int_equal(count(js, "\"recall_at_alert_budget\":"), 5);
    assert_int_equal(count(js, " alone\""), 3);
    /* Better than a constant score, whose PR-AUC is the share of frauds in the test set. */
    double rows = json_num(js, NULL, "test_rows");
    char *tp = proc_path(out, "features/test.csv"), *test = proc_read_file(tp, NULL);
    assert_non_null(test);
    double frauds = 0;
    for (char *p = strchr(test, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        const char *c = p + 1;
        for (int k = 0; k < 5; k++)
            c = strchr(c, ',') + 1;
        frauds += *c == '1';
    }
    double fed = json_num(js, "\"federated\":", "pr_auc");
    double roc = json_num(js, "\"federated\":", "roc_auc");
    print_message("test set %.0f rows, %.0f frauds; federated PR-AUC %.4f, ROC-AUC %.4f\n", rows,
                  frauds, fed, roc);
    assert_true(frauds > 10 && fed > 3 * frauds / rows);
    assert_true(roc > 0.7);
    /* A bank scores the test set with the federation's model: fedc eval reads the feature file
     * once the identifiers and the time (text) are dropped, and agrees with the table. */
    char *gm = proc_path(out, "federation/global.fedc");
    const char *ev[] = {
        g_fedc,   "eval", "--model", gm,
        "--data", tp,     "--drop",  "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID",
        NULL};
    proc_result r;
    assert_int_equal(proc_run(&r, ev, env, 120), 0);
    if (r.status != 0)
        fail_msg("fedc eval --drop: status %d\n%s", r.status, r.err);
    const char *pr = strstr(r.out, "pr_auc");
    assert_non_null(pr);
    assert_true(fabs(strtod(pr + 6, NULL) - fed) < 2e-4);
    proc_result_release(&r);
    ev[6] = NULL; /* without --drop the time column is text */
    assert_int_equal(proc_run(&r, ev, env, 120), 0);
    if (r.status != 2 || !strstr(r.err, "TX_DATETIME"))
        fail_msg("fedc eval without --drop: status %d\n%s", r.status, r.err);
    proc_result_release(&r);
    free(gm);
    free(test);
    free(tp);
    free(html);
    free(js);
    free(rp);
    free(sp);
    proc_rmtree(dir);
    free(out);
    free(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/fedc\n", argv[0]);
        return 2;
    }
    g_fedc = argv[1];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_demo_report)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
