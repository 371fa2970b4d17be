/* The federation report (cli/report.h) on generated metrics files and scores, each point of issue
 * 17's "report, polished" checked against figures the test computes itself:
 *   - every series its own look: the SVG stroke colours (and dashes) parsed per curve, distinct,
 *     from the Okabe-Ito palette, the same in the table's legend, the chart's legend and the
 *     per-round chart; 12 banks still give 14 distinct looks;
 *   - ROC-AUC beside PR-AUC and the recall at the alert budget, the values the test passed;
 *   - the participation table folded into ranges of identical consecutive rounds;
 *   - each precision-recall curve's start: the rows and frauds tied at the top score, counted
 *     here from the scores; the curve is drawn as steps whose area is the average precision;
 *   - the best round marked when the metrics name it, and no mark in an older file;
 *   - the run's settings from the model card, "not recorded" without one;
 * and `fedc report` end to end on a model written here, whose scores the test knows.
 *
 *   test_report PATH/TO/fedc */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "fedc/card.h"
#include "fedc/modelfile.h"
#include "proc.h"
#include "report.h"

static const char *g_fedc;

/* Okabe and Ito (2008), the eight colours as published. */
static const char *const OKABE_ITO[] = {"#000000", "#E69F00", "#56B4E9", "#009E73",
                                        "#F0E442", "#0072B2", "#D55E00", "#CC79A7"};

static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;
static double uniform(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The value of attribute name in the tag that starts at tag (up to its '>'), copied into out;
 * 0, or -1 when the tag has no such attribute. */
static int attr(const char *tag, const char *name, char *out, size_t cap) {
    const char *end = strchr(tag, '>');
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", name);
    const char *p = strstr(tag, pat);
    out[0] = 0;
    if (!p || (end && p > end))
        return -1;
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

/* The first tag at or after from that starts with prefix and has data-model="model". */
static const char *find_model_tag(const char *from, const char *prefix, const char *model) {
    char want[200];
    snprintf(want, sizeof want, "data-model=\"%s\"", model);
    for (const char *p = strstr(from, prefix); p; p = strstr(p + 1, prefix)) {
        const char *end = strchr(p, '>');
        const char *m = strstr(p, want);
        if (m && end && m < end)
            return p;
    }
    return NULL;
}

/* "stroke|dasharray" of a tag. */
static void look_of(const char *tag, char *out, size_t cap) {
    char stroke[32], dash[32];
    assert_int_equal(attr(tag, "stroke", stroke, sizeof stroke), 0);
    attr(tag, "stroke-dasharray", dash, sizeof dash);
    snprintf(out, cap, "%s|%s", stroke, dash);
}

static void write_text(const char *path, const char *text) {
    assert_int_equal(proc_write_file(path, text), 0);
}

/* A metrics file of rounds 1..n whose participation is given per round ("a,b,c" names), with
 * best_round fields when best is non-NULL (best[i] for round i+1). */
static char *metrics_lines(const int *rounds, const char *const *who, int n, const int *best) {
    size_t cap = 4096 + (size_t)n * 512, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    for (int i = 0; i < n; i++) {
        char clients[256] = "", copy[256];
        snprintf(copy, sizeof copy, "%s", who[i]);
        int k = 0;
        for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","), k++)
            snprintf(clients + strlen(clients), sizeof clients - strlen(clients), "%s\"%s\"",
                     k ? "," : "", tok);
        len += (size_t)snprintf(s + len, cap - len,
                                "{\"round\":%d,\"participants\":%d,\"selected\":3,"
                                "\"val_roc_auc\":%.4f,\"val_pr_auc\":%.4f",
                                rounds[i], k, 0.8 + 0.01 * i, 0.5 + 0.02 * (i % 7));
        if (best)
            len += (size_t)snprintf(s + len, cap - len,
                                    ",\"best_metric\":\"pr_auc\",\"best_round\":%d,"
                                    "\"best_value\":%.4f",
                                    best[i], 0.5 + 0.02 * ((best[i] - 1) % 7));
        len += (size_t)snprintf(s + len, cap - len, ",\"clients\":[%s]}\n", clients);
    }
    return s;
}

/* Average precision computed here, as its definition reads: over the distinct thresholds,
 * highest first, the recall each adds times the precision there. */
static double average_precision(const float *p, const float *y, int n) {
    int *used = calloc((size_t)n, sizeof *used);
    assert_non_null(used);
    long pos = 0, tp = 0, fp = 0;
    for (int i = 0; i < n; i++)
        pos += y[i] > 0.5f;
    double ap = 0;
    for (;;) {
        float top = -1;
        for (int i = 0; i < n; i++)
            if (!used[i] && p[i] > top)
                top = p[i];
        if (top < 0)
            break;
        long add = 0;
        for (int i = 0; i < n; i++)
            if (!used[i] && p[i] == top) {
                used[i] = 1;
                add += y[i] > 0.5f;
                tp += y[i] > 0.5f;
                fp += y[i] <= 0.5f;
            }
        ap += (double)add / pos * (double)tp / (double)(tp + fp);
    }
    free(used);
    return ap;
}

/* The area under a curve's steps, from its polyline and its lead to recall 0, in data units;
 * checks on the way that every segment is horizontal or vertical. */
static double step_area(const char *html, const char *model) {
    const char *pl = find_model_tag(html, "<polyline class=\"pr-curve\"", model);
    assert_non_null(pl);
    char *pts = malloc(1 << 20);
    assert_non_null(pts);
    assert_int_equal(attr(pl, "points", pts, 1 << 20), 0);
    const double x0 = FEDC_CHART_PADL, xw = FEDC_CHART_W - FEDC_CHART_PADL - FEDC_CHART_PADR;
    const double y0 = FEDC_CHART_H - FEDC_CHART_PADB,
                 yh = FEDC_CHART_H - FEDC_CHART_PADB - FEDC_CHART_PADT;
    double area = 0, px = NAN, py = NAN;
    int n = 0;
    for (char *tok = strtok(pts, " "); tok; tok = strtok(NULL, " "), n++) {
        double x, y;
        assert_int_equal(sscanf(tok, "%lf,%lf", &x, &y), 2);
        if (n == 0) { /* the first point: the lead from recall 0 at its precision */
            area += (x - x0) / xw * (y0 - y) / yh;
        } else {
            if (fabs(x - px) > 1e-9 && fabs(y - py) > 1e-9)
                fail_msg("%s: a slanted segment (%.1f,%.1f)-(%.1f,%.1f): not steps", model, px, py,
                         x, y);
            area += (x - px) / xw * (y0 - y) / yh;
        }
        px = x;
        py = y;
    }
    assert_true(n >= 2);
    free(pts);
    return area;
}

#define N_ROWS 6000
#define N_BANKS 12
#define N_MODELS (N_BANKS + 2)

typedef struct fixture {
    float y[N_ROWS];
    float pred[N_MODELS][N_ROWS];
    char names[N_MODELS][32];
    report_model models[N_MODELS];
    char *dir;
} fixture;

static fixture *make_fixture(void) {
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->dir = proc_mkdtemp("fedc-test-report");
    assert_non_null(fx->dir);
    for (int i = 0; i < N_ROWS; i++)
        fx->y[i] = uniform() < 0.04 ? 1.0f : 0.0f;
    for (int m = 0; m < N_MODELS; m++) {
        /* Scores on a grid of 1/q, so that rows tie; some models saturate at 1. */
        double q = 20 + 15 * m, lift = 0.2 + 0.03 * m;
        for (int i = 0; i < N_ROWS; i++) {
            double s = uniform() * (1 - lift) + lift * fx->y[i] + (m % 3 == 0 ? 0.08 : 0);
            s = floor(s * q) / q;
            fx->pred[m][i] = (float)(s > 1 ? 1 : s);
        }
        if (m == 0)
            snprintf(fx->names[m], sizeof fx->names[m], "federated (%d clients)", N_BANKS);
        else if (m == 1)
            snprintf(fx->names[m], sizeof fx->names[m], "centralised (union)");
        else
            snprintf(fx->names[m], sizeof fx->names[m], "bank-%02d alone", m - 2);
        fx->models[m] = (report_model){fx->names[m],
                                       m == 0   ? FEDC_SERIES_FEDERATED
                                       : m == 1 ? FEDC_SERIES_CENTRALISED
                                                : FEDC_SERIES_CLIENT,
                                       m - 2,
                                       fx->pred[m],
                                       0.5 + 0.01 * m,
                                       0.9 - 0.005 * m,
                                       0.3 + 0.02 * m};
    }
    return fx;
}

static void free_fixture(fixture *fx) {
    proc_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
}

/* Writes a report of models [0, n_models) with the metrics text; returns the page. */
static char *write_report(fixture *fx, int n_models, const char *metrics, const fedc_model *card,
                          int with_budget) {
    char *mp = proc_path(fx->dir, "rounds.jsonl"), *rp = proc_path(fx->dir, "report.html");
    write_text(mp, metrics);
    report_in in = {.title = "test <report>",
                    .rounds_path = mp,
                    .models = fx->models,
                    .n_models = n_models,
                    .y = fx->y,
                    .n = N_ROWS,
                    .alert_budget = with_budget ? 0.005 : 0,
                    .model = card,
                    .have_seed = 1,
                    .seed = 4242};
    assert_int_equal(report_write(rp, &in), 0);
    char *html = proc_read_file(rp, NULL);
    assert_non_null(html);
    assert_int_equal(count(html, "<svg"), count(html, "</svg>"));
    assert_int_equal(count(html, "<table"), count(html, "</table>"));
    assert_non_null(strstr(html, "<title>test &lt;report&gt;</title>"));
    free(mp);
    free(rp);
    return html;
}

static const int ROUNDS11[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const int BEST11[] = {1, 2, 3, 4, 5, 6, 7, 7, 7, 7, 7};
static const char *const WHO11[] = {
    "bank-a,bank-b,bank-c", "bank-a,bank-b,bank-c", "bank-a,bank-b,bank-c", "bank-a,bank-b,bank-c",
    "bank-a,bank-b,bank-c", "bank-a,bank-b,bank-c", "bank-a,bank-b,bank-c", "bank-a,bank-b,bank-c",
    "bank-a,bank-b,bank-c", "bank-a,bank-b,bank-c", "bank-a,bank-c"};

/* Colours, the summary table, the participation ranges, the curves' starts, the best round. */
static void test_report_page(void **state) {
    (void)state;
    fixture *fx = make_fixture();
    char *metrics = metrics_lines(ROUNDS11, WHO11, 11, BEST11);
    char *html = write_report(fx, N_MODELS, metrics, NULL, 1);

    /* Distinct looks: (stroke, dashes) per curve, from the palette; the first seven series
     * (federated, centralised, five banks) differ by colour alone. */
    char looks[N_MODELS][64];
    for (int m = 0; m < N_MODELS; m++) {
        const char *pl = find_model_tag(html, "<polyline class=\"pr-curve\"", fx->names[m]);
        if (!pl)
            fail_msg("no curve for %s", fx->names[m]);
        look_of(pl, looks[m], sizeof looks[m]);
        char stroke[32];
        assert_int_equal(attr(pl, "stroke", stroke, sizeof stroke), 0);
        int in_palette = 0;
        for (int c = 0; c < 8; c++)
            in_palette |= strcasecmp(stroke, OKABE_ITO[c]) == 0;
        if (!in_palette || strcasecmp(stroke, "#F0E442") == 0)
            fail_msg("%s: stroke %s is not one of Okabe-Ito's (less yellow)", fx->names[m], stroke);
        for (int k = 0; k < m; k++) {
            if (strcmp(looks[k], looks[m]) == 0)
                fail_msg("%s and %s look the same: %s", fx->names[k], fx->names[m], looks[m]);
            if (m < 7 && strncmp(looks[k], looks[m], strcspn(looks[m], "|")) == 0)
                fail_msg("%s and %s share the colour %s", fx->names[k], fx->names[m], looks[m]);
        }
        /* the same look in the table's swatch */
        const char *row = find_model_tag(html, "<tr class=\"model\"", fx->names[m]);
        assert_non_null(row);
        const char *sw = strstr(row, "<svg class=\"swatch\"");
        assert_non_null(sw);
        const char *line = strstr(sw, "<line");
        assert_non_null(line);
        char swatch[64];
        look_of(line, swatch, sizeof swatch);
        if (strcmp(swatch, looks[m]) != 0)
            fail_msg("%s: the table's swatch is %s, its curve %s", fx->names[m], swatch, looks[m]);
    }
    /* the chart's legend: the m-th legend line has the m-th model's look */
    const char *lg = strstr(html, "<line class=\"legend\"");
    for (int m = 0; m < N_MODELS; m++, lg = strstr(lg + 1, "<line class=\"legend\"")) {
        assert_non_null(lg);
        char l[64];
        look_of(lg, l, sizeof l);
        assert_string_equal(l, looks[m]);
    }
    /* the per-round chart draws the federated model's colour */
    const char *rl = strstr(html, "<polyline class=\"round-line\"");
    assert_non_null(rl);
    char round_look[64];
    look_of(rl, round_look, sizeof round_look);
    assert_string_equal(round_look, looks[0]);

    /* The summary table: ROC-AUC beside PR-AUC and the recall, with the values given. */
    assert_non_null(strstr(html, "<th>PR-AUC</th><th>ROC-AUC</th><th>recall at 0.5% alerts</th>"));
    for (int m = 0; m < N_MODELS; m++) {
        const char *row = find_model_tag(html, "<tr class=\"model\"", fx->names[m]);
        char want[160];
        snprintf(want, sizeof want,
                 "<td class=\"pr-auc\">%.4f</td><td class=\"roc-auc\">%.4f</td>"
                 "<td class=\"alert-recall\">%.4f</td></tr>",
                 fx->models[m].pr_auc, fx->models[m].roc_auc, fx->models[m].alert_recall);
        const char *cells = strstr(row, "<td class=\"pr-auc\">");
        assert_non_null(cells);
        assert_true(strncmp(cells, want, strlen(want)) == 0);
    }

    /* Participation: rounds 1-10 alike, round 11 on its own: exactly two rows. */
    assert_int_equal(count(html, "<tr class=\"rounds\""), 2);
    assert_non_null(strstr(html, "<tr class=\"rounds\" data-first=\"1\" data-last=\"10\" "
                                 "data-count=\"10\"><td>1-10</td><td>10</td>"
                                 "<td>bank-a bank-b bank-c (3)</td>"));
    assert_non_null(strstr(html,
                           "<tr class=\"rounds\" data-first=\"11\" data-last=\"11\" "
                           "data-count=\"1\"><td>11</td><td>1</td><td>bank-a bank-c (2)</td>"));

    /* Where each curve starts, counted here; and the steps' area is the average precision. */
    long frauds = 0;
    for (int i = 0; i < N_ROWS; i++)
        frauds += fx->y[i] > 0.5f;
    int saturated = 0;
    for (int m = 0; m < N_MODELS; m++) {
        float top = -1;
        for (int i = 0; i < N_ROWS; i++)
            top = fx->pred[m][i] > top ? fx->pred[m][i] : top;
        long rows = 0, fr = 0;
        for (int i = 0; i < N_ROWS; i++)
            if (fx->pred[m][i] == top) {
                rows++;
                fr += fx->y[i] > 0.5f;
            }
        saturated += top == 1.0f;
        const char *li = find_model_tag(html, "<li class=\"pr-start-note\"", fx->names[m]);
        if (!li)
            fail_msg("no caption line for %s", fx->names[m]);
        char v[64];
        assert_int_equal(attr(li, "data-tied-rows", v, sizeof v), 0);
        assert_int_equal(atol(v), rows);
        assert_int_equal(attr(li, "data-tied-frauds", v, sizeof v), 0);
        assert_int_equal(atol(v), fr);
        assert_int_equal(attr(li, "data-recall", v, sizeof v), 0);
        assert_true(fabs(atof(v) - (double)fr / frauds) < 1e-6);
        char text[160];
        snprintf(text, sizeof text, "%ld of the %ld frauds", fr, frauds);
        const char *end = strstr(li, "</li>");
        const char *t = strstr(li, text);
        if (fr > 0 && rows > 1 && (!t || t > end))
            fail_msg("%s: the caption does not say '%s'", fx->names[m], text);
        /* the ring at the first point */
        assert_non_null(find_model_tag(html, "<circle class=\"pr-start\"", fx->names[m]));
        double ap = average_precision(fx->pred[m], fx->y, N_ROWS),
               area = step_area(html, fx->names[m]);
        if (fabs(ap - area) > 0.01)
            fail_msg("%s: the steps' area %.4f, the average precision %.4f", fx->names[m], area,
                     ap);
    }
    assert_true(saturated > 0); /* the fixture has saturated models: "rounds to 1" said */
    assert_non_null(strstr(html, "rounds to 1 in single precision"));
    assert_non_null(strstr(html, "id=\"pr-how\""));
    assert_non_null(strstr(html, "steps"));

    /* The best round: marked once, at round 7, by pr_auc, ringed on the PR-AUC chart. */
    assert_int_equal(count(html, "<g class=\"best-round\""), 1);
    assert_non_null(
        strstr(html, "<g class=\"best-round\" data-round=\"7\" data-metric=\"pr_auc\">"));
    assert_non_null(strstr(html, ">best round 7 by pr_auc"));
    assert_int_equal(count(html, "class=\"best-ring\""), 1);

    /* Self-contained. */
    const char *loads[] = {"<script", "src=", "href=", "url(", "@import", "http:", "https:"};
    for (int i = 0; i < 7; i++)
        if (strstr(html, loads[i]))
            fail_msg("the report contains '%s'", loads[i]);
    free(html);
    free(metrics);
    free_fixture(fx);
}

/* An older metrics file (no best_round): no mark; participation folded across a different round
 * and a gap in the numbering. */
static void test_report_old_metrics(void **state) {
    (void)state;
    fixture *fx = make_fixture();
    const int rounds[] = {1, 2, 3, 4, 5, 6, 7, 9};
    const char *who[] = {"a,b", "a,b", "a,b", "a,b,c", "a,b", "a,b", "a,b", "a,b"};
    char *metrics = metrics_lines(rounds, who, 8, NULL);
    char *html = write_report(fx, 3, metrics, NULL, 0);
    assert_null(strstr(html, "best-round"));
    assert_null(strstr(html, "best round"));
    const char *want[][3] = {{"1", "3", "3"}, {"4", "4", "1"}, {"5", "7", "3"}, {"9", "9", "1"}};
    assert_int_equal(count(html, "<tr class=\"rounds\""), 4);
    const char *p = html;
    for (int i = 0; i < 4; i++) {
        p = strstr(p, "<tr class=\"rounds\"");
        assert_non_null(p);
        char first[16], last[16], cnt[16];
        attr(p, "data-first", first, sizeof first);
        attr(p, "data-last", last, sizeof last);
        attr(p, "data-count", cnt, sizeof cnt);
        assert_string_equal(first, want[i][0]);
        assert_string_equal(last, want[i][1]);
        assert_string_equal(cnt, want[i][2]);
        p++;
    }
    /* without an alert budget: no recall column, ROC-AUC still there */
    assert_null(strstr(html, "alerts</th>"));
    assert_non_null(strstr(html, "<th>PR-AUC</th><th>ROC-AUC</th></tr>"));
    /* no model card: the settings say so, the seed comes from the run */
    assert_non_null(strstr(html, "has no model card"));
    assert_non_null(strstr(html, "data-key=\"aggregator\"><td>aggregator</td><td>not recorded"));
    assert_non_null(strstr(html, "data-key=\"seed\"><td>seed</td><td>4242</td>"));
    free(html);
    free(metrics);
    free_fixture(fx);
}

/* The run's settings from a model card like the coordinator's. */
static void test_report_settings(void **state) {
    (void)state;
    fixture *fx = make_fixture();
    fedc_arch arch = {.n_layers = 3,
                      .sizes = {15, 32, 16, 1},
                      .hidden_act = FEDC_ACT_RELU,
                      .task = FEDC_TASK_BINARY,
                      .n_classes = 2};
    fedc_model *m = NULL;
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    fedc_card c;
    fedc_card_init(&c);
    c.source = "federation";
    c.threshold = 0.875;
    c.threshold_rule = "alert budget 0.005 on the federated validation data";
    c.round = 11;
    c.rounds_run = 11;
    c.selected_by = "pr_auc";
    c.selection = "last";
    c.run = "{\"rounds\":12,\"min_clients\":2,\"fraction_fit\":0.5,\"local_epochs\":3,"
            "\"batch\":128,\"lr\":0.002,\"aggregator\":\"trimmed_mean\",\"server_opt\":\"fedadam\","
            "\"secure_aggregation\":false,\"dp_epsilon\":2.5,\"dp_delta\":1e-05,"
            "\"seed\":\"18446744073709551615\"}";
    fedc_diag d;
    assert_int_equal(fedc_card_put(m, &c, &d), FEDC_OK);
    char *metrics = metrics_lines(ROUNDS11, WHO11, 11, BEST11);
    char *html = write_report(fx, 2, metrics, m, 1);
    const char *rows[][2] = {
        {"rounds", "11 of 12 planned"},
        {"clients", "3: bank-a, bank-b, bank-c"},
        {"clients_per_round", "a fraction 0.5 of the clients connected, at least 2"},
        {"local_epochs", "3"},
        {"lr", "0.002"},
        {"batch", "128"},
        {"layers", "15-32-16-1 (relu between layers)"},
        {"aggregator", "trimmed_mean, server optimiser fedadam"},
        {"secure_aggregation", "off"},
        {"dp", "epsilon 2.5 at delta 1e-05"},
        {"seed", "18446744073709551615"},
        {"model_round", "round 11 (the last); best round by validation pr_auc: 7"},
        {"threshold", "0.875: alert budget 0.005 on the federated validation data"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char pat[64];
        snprintf(pat, sizeof pat, "data-key=\"%s\"><td>", rows[i][0]);
        const char *p = strstr(html, pat);
        if (!p)
            fail_msg("no setting %s", rows[i][0]);
        p = strstr(p, "</td><td>");
        assert_non_null(p);
        p += 9;
        if (strncmp(p, rows[i][1], strlen(rows[i][1])) != 0 || p[strlen(rows[i][1])] != '<')
            fail_msg("setting %s: want '%s', got '%.80s'", rows[i][0], rows[i][1], p);
    }
    assert_null(strstr(html, "not recorded"));
    free(html);
    free(metrics);
    fedc_model_destroy(&m);
    free_fixture(fx);
}

/* A test set without frauds: no curves, said; no division by zero. */
static void test_report_no_frauds(void **state) {
    (void)state;
    fixture *fx = make_fixture();
    memset(fx->y, 0, sizeof fx->y);
    char *metrics = metrics_lines(ROUNDS11, WHO11, 2, NULL);
    char *html = write_report(fx, 2, metrics, NULL, 1);
    assert_null(strstr(html, "id=\"pr-curves\""));
    assert_non_null(strstr(html, "has no frauds"));
    free(html);
    free(metrics);
    free_fixture(fx);
}

/* fedc report end to end: a logistic model written here (score = sigmoid(x1 + 0.5 x2), so the
 * top score belongs to the rows at x = (4, 4) and to no other), a test file on the integer grid,
 * and a metrics file naming a best round. */
static void test_report_cli(void **state) {
    (void)state;
    char *dir = proc_mkdtemp("fedc-test-report-cli");
    assert_non_null(dir);
    fedc_arch arch = {.n_layers = 1,
                      .sizes = {2, 1},
                      .hidden_act = FEDC_ACT_RELU,
                      .task = FEDC_TASK_BINARY,
                      .n_classes = 2};
    fedc_model *m = NULL;
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    m->w[0][0] = 1.0f;
    m->w[0][1] = 0.5f;
    m->b[0][0] = -3.0f;
    char *names[] = {"x1", "x2"};
    assert_int_equal(fedc_model_set_schema(m, names, "fraud", NULL, NULL), FEDC_OK);
    char *model_path = proc_path(dir, "m.fedc"), *data = proc_path(dir, "test.csv");
    char *metrics = proc_path(dir, "rounds.jsonl"), *out = proc_path(dir, "r.html");
    fedc_diag d;
    assert_int_equal(fedc_model_save(m, model_path, &d), FEDC_OK);
    fedc_model_destroy(&m);
    size_t cap = 64 * 1024, len = 0;
    char *csv = malloc(cap);
    assert_non_null(csv);
    len += (size_t)snprintf(csv, cap, "x1,x2,fraud\n");
    long top_rows = 0, top_frauds = 0, frauds = 0;
    for (int i = 0; i < 2000; i++) {
        int x1 = (int)(uniform() * 5), x2 = (int)(uniform() * 5);
        int fraud = uniform() < 0.02 + 0.05 * (x1 + 0.5 * x2);
        len += (size_t)snprintf(csv + len, cap - len, "%d,%d,%d\n", x1, x2, fraud);
        frauds += fraud;
        if (x1 == 4 && x2 == 4) {
            top_rows++;
            top_frauds += fraud;
        }
    }
    assert_true(len < cap && top_frauds > 0 && top_rows > top_frauds);
    write_text(data, csv);
    free(csv);
    char *lines = metrics_lines(ROUNDS11, WHO11, 11, BEST11);
    write_text(metrics, lines);
    free(lines);
    const char *argv[] = {g_fedc,   "report", "--metrics", metrics, "--model", model_path,
                          "--data", data,     "--out",     out,     NULL};
    proc_result r;
    assert_int_equal(proc_run(&r, argv, NULL, 120), 0);
    if (r.status != 0)
        fail_msg("fedc report: exit %d\n%s%s", r.status, r.out, r.err);
    proc_result_release(&r);
    char *html = proc_read_file(out, NULL);
    assert_non_null(html);
    const char *li = find_model_tag(html, "<li class=\"pr-start-note\"", "federated model");
    assert_non_null(li);
    char v[32];
    attr(li, "data-tied-rows", v, sizeof v);
    assert_int_equal(atol(v), top_rows);
    attr(li, "data-tied-frauds", v, sizeof v);
    assert_int_equal(atol(v), top_frauds);
    char text[128];
    snprintf(text, sizeof text, "%ld of the %ld frauds", top_frauds, frauds);
    assert_non_null(strstr(li, text));
    assert_non_null(strstr(html, "<td class=\"roc-auc\">"));
    assert_non_null(strstr(html, "<g class=\"best-round\" data-round=\"7\""));
    assert_int_equal(count(html, "<tr class=\"rounds\""), 2);
    /* no card: said, not guessed */
    assert_non_null(strstr(html, "has no model card"));
    free(html);
    /* a metrics file that cannot be read: exit 2, named */
    char *missing = proc_path(dir, "missing.jsonl");
    argv[3] = missing;
    assert_int_equal(proc_run(&r, argv, NULL, 60), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "missing.jsonl"));
    proc_result_release(&r);
    free(missing);
    free(model_path);
    free(data);
    free(metrics);
    free(out);
    proc_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/fedc\n", argv[0]);
        return 2;
    }
    g_fedc = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_page),     cmocka_unit_test(test_report_old_metrics),
        cmocka_unit_test(test_report_settings), cmocka_unit_test(test_report_no_frauds),
        cmocka_unit_test(test_report_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
