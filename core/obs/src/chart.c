/* The federation's charts and tables (chart.h), drawn as inline SVG and HTML. */
#define _POSIX_C_SOURCE 200809L
#include "fedc/chart.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define W FEDC_CHART_W
#define H FEDC_CHART_H
#define PADL FEDC_CHART_PADL
#define PADB FEDC_CHART_PADB
#define PADT FEDC_CHART_PADT
#define PADR FEDC_CHART_PADR

/* The palette of Okabe and Ito, "Color Universal Design (CUD): how to make figures and
 * presentations that are friendly to colorblind people" (2008, jfly.uni-koeln.de/color): eight
 * colours told apart under the common colour-vision deficiencies. The federated model is its
 * blue, the centralised baseline its black (dashed, a reference), and the clients take the
 * other five in turn; its yellow (#F0E442) is left out, a 2-pixel line of it on white being too
 * faint to read. */
#define OI_BLUE "#0072B2"
#define OI_BLACK "#000000"
static const char *const g_client_colours[] = {"#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                               "#56B4E9"};
#define N_CLIENT_COLOURS ((int)(sizeof g_client_colours / sizeof g_client_colours[0]))

/* The dash patterns of the clients' lines once the colours have been used: the k-th round
 * through the colours draws pattern k. Past this table the patterns are generated (on, off)
 * pairs, each pair used once, none equal to one here. */
static const char *const g_dashes[] = {"", "8 4", "2 3", "10 3 2 3"};
#define N_DASHES ((int)(sizeof g_dashes / sizeof g_dashes[0]))

fedc_series_style fedc__chart_style(fedc_series_role role, int index) {
    fedc_series_style s = {OI_BLUE, "", 2.5};
    if (role == FEDC_SERIES_CENTRALISED) {
        s.colour = OI_BLACK;
        snprintf(s.dash, sizeof s.dash, "6 4");
        s.width = 2;
    } else if (role == FEDC_SERIES_CLIENT) {
        if (index < 0)
            index = 0;
        int k = index / N_CLIENT_COLOURS;
        s.colour = g_client_colours[index % N_CLIENT_COLOURS];
        s.width = 1.75;
        if (k < N_DASHES)
            snprintf(s.dash, sizeof s.dash, "%s", g_dashes[k]);
        else /* (on, off): on cycles 2..12, off grows by one every six: unique per k */
            snprintf(s.dash, sizeof s.dash, "%d %d", 2 + 2 * ((k - N_DASHES) % 6),
                     5 + (k - N_DASHES) / 6);
    }
    return s;
}

void fedc__chart_stroke(FILE *f, const fedc_series_style *s) {
    fprintf(f, " stroke=\"%s\" stroke-width=\"%g\"", s->colour, s->width);
    if (s->dash[0])
        fprintf(f, " stroke-dasharray=\"%s\"", s->dash);
}

void fedc__chart_swatch(FILE *f, const fedc_series_style *s) {
    fprintf(f, "<svg class=\"swatch\" width=\"30\" height=\"10\" viewBox=\"0 0 30 10\" "
               "aria-hidden=\"true\"><line x1=\"1\" y1=\"5\" x2=\"29\" y2=\"5\"");
    fedc__chart_stroke(f, s);
    fprintf(f, "/></svg>");
}

void fedc__html_esc(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

double fedc__chart_px(double x) {
    return PADL + x * (W - PADL - PADR);
}

double fedc__chart_py(double y) {
    return H - PADB - y * (H - PADB - PADT);
}

void fedc__chart_axes(FILE *f, const char *xlabel, const char *ylabel, double xmax, int xint) {
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", PADL, H - PADB,
            W - PADR, H - PADB);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", PADL, PADT, PADL,
            H - PADB);
    for (int i = 0; i <= 5; i++) {
        double v = i / 5.0;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>", PADL,
                fedc__chart_py(v), W - PADR, fedc__chart_py(v));
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.1f</text>",
                PADL - 6, fedc__chart_py(v) + 4, v);
        double xv = v * xmax;
        if (xint)
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%.0f</text>",
                    fedc__chart_px(v), H - PADB + 16, xv);
        else
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%.1f</text>",
                    fedc__chart_px(v), H - PADB + 16, xv);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"label\" text-anchor=\"middle\">%s</text>",
            (PADL + W - PADR) / 2.0, H - 6, xlabel);
    fprintf(f,
            "<text x=\"14\" y=\"%.1f\" class=\"label\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 14 %.1f)\">%s</text>",
            (PADT + H - PADB) / 2.0, (PADT + H - PADB) / 2.0, ylabel);
}

/* The lines are the coordinator's own, written by cJSON with each key once and no space after the
 * colon; a full parser is not needed to read them back. */
double fedc__json_line_num(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p || strncmp(p + strlen(pat), "null", 4) == 0)
        return NAN;
    return strtod(p + strlen(pat), NULL);
}

int fedc__round_parse(const char *line, fedc_round_info *r) {
    double round = fedc__json_line_num(line, "round");
    r->round = isnan(round) ? 0 : (long)round;
    r->pr_auc = fedc__json_line_num(line, "val_pr_auc");
    r->roc_auc = fedc__json_line_num(line, "val_roc_auc");
    r->accuracy = fedc__json_line_num(line, "val_accuracy");
    double p = fedc__json_line_num(line, "participants"), s = fedc__json_line_num(line, "selected");
    r->participants = isnan(p) ? 0 : (int)p;
    r->selected = isnan(s) ? 0 : (int)s;
    double best = fedc__json_line_num(line, "best_round");
    r->best_round = isnan(best) || best < 1 ? 0 : (long)best;
    r->best_value = fedc__json_line_num(line, "best_value");
    r->best_metric[0] = 0;
    const char *bm = strstr(line, "\"best_metric\":\"");
    if (bm) {
        bm += strlen("\"best_metric\":\"");
        size_t len = strcspn(bm, "\"");
        if (bm[len] == '"' && len < sizeof r->best_metric) {
            memcpy(r->best_metric, bm, len);
            r->best_metric[len] = 0;
        }
    }
    r->clients[0] = 0;
    const char *c = strstr(line, "\"clients\":[");
    if (c) {
        const char *e = strchr(c, ']');
        size_t len = e ? (size_t)(e - c) - 10 : 0;
        if (e && len < sizeof r->clients) {
            memcpy(r->clients, c + 10, len + 1);
            r->clients[len + 1] = 0;
        }
    }
    return isnan(round) ? -1 : 0;
}

int fedc__rounds_read(FILE *f, fedc_round_info **out, int max) {
    *out = NULL;
    if (!f)
        return 0;
    int n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0 && n < max) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            fedc_round_info *nr = realloc(*out, sizeof *nr * (size_t)cap);
            if (!nr)
                break;
            *out = nr;
        }
        if (fedc__round_parse(line, &(*out)[n]) == 0)
            n++; /* a line that names no round (blank, cut short) has nothing to draw */
    }
    free(line);
    return n;
}

typedef struct metric_def {
    const char *label, *cls, *attr, *key; /* key: the name --select-metric gives it */
} metric_def;

static const metric_def METRICS[] = {
    [FEDC_RM_PR_AUC] = {"PR-AUC", "pr-point", "data-pr-auc", "pr_auc"},
    [FEDC_RM_ROC_AUC] = {"ROC-AUC", "roc-point", "data-roc-auc", "roc_auc"},
    [FEDC_RM_ACCURACY] = {"accuracy", "acc-point", "data-accuracy", "accuracy"},
};

static double metric_of(const fedc_round_info *r, fedc_round_metric m) {
    return m == FEDC_RM_PR_AUC ? r->pr_auc : m == FEDC_RM_ROC_AUC ? r->roc_auc : r->accuracy;
}

long fedc__rounds_best(const fedc_round_info *r, int n, const char **metric, double *value) {
    *metric = NULL;
    *value = NAN;
    for (int i = n - 1; i >= 0; i--)
        if (r[i].best_round > 0) {
            *metric = r[i].best_metric;
            *value = r[i].best_value;
            return r[i].best_round;
        }
    return 0;
}

/* The mark of the best round (see chart.h), on a chart whose x axis ends at rmax. */
static void best_mark(FILE *f, const metric_def *md, const fedc_round_info *r, int n, double rmax,
                      const fedc_series_style *st) {
    const char *metric;
    double value;
    long best = fedc__rounds_best(r, n, &metric, &value);
    if (best <= 0 || best > rmax)
        return;
    double x = fedc__chart_px(best / rmax);
    fprintf(f, "<g class=\"best-round\" data-round=\"%ld\" data-metric=\"", best);
    fedc__html_esc(f, metric);
    fprintf(f,
            "\"><line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
            "stroke-width=\"1\" stroke-dasharray=\"3 3\"/>",
            x, PADT, x, H - PADB, st->colour);
    /* The ring goes round the round's own point when this chart shows the metric that chose
     * it; otherwise the line alone says where it is. */
    for (int i = 0; i < n && strcmp(metric, md->key) == 0; i++)
        if (r[i].round == best && !isnan(metric_of(&r[i], (fedc_round_metric)(md - METRICS))))
            fprintf(f,
                    "<circle class=\"best-ring\" cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" "
                    "stroke=\"%s\" stroke-width=\"2\"/>",
                    x, fedc__chart_py(metric_of(&r[i], (fedc_round_metric)(md - METRICS))),
                    st->colour);
    int right = x > (PADL + W - PADR) / 2.0;
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"label\" text-anchor=\"%s\">best round %ld",
            right ? x - 5 : x + 5, PADT + 12, right ? "end" : "start", best);
    if (metric[0]) {
        fprintf(f, " by ");
        fedc__html_esc(f, metric);
    }
    if (!isnan(value))
        fprintf(f, " (%.4f)", value);
    fprintf(f, "</text></g>");
}

void fedc__chart_rounds(FILE *f, const char *id, fedc_round_metric m, const fedc_round_info *r,
                        int n) {
    const metric_def *md = &METRICS[m];
    const fedc_series_style st = fedc__chart_style(FEDC_SERIES_FEDERATED, 0);
    fprintf(f, "<svg id=\"%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">", id, W, H, W, H);
    double rmax = n > 0 ? (double)r[n - 1].round : 1;
    if (!(rmax > 0))
        rmax = 1;
    fedc__chart_axes(f, "round", md->label, rmax, 1);
    fprintf(f, "<polyline class=\"round-line\" fill=\"none\"");
    fedc__chart_stroke(f, &st);
    fprintf(f, " points=\"");
    for (int i = 0; i < n; i++)
        if (!isnan(metric_of(&r[i], m)))
            fprintf(f, "%.1f,%.1f ", fedc__chart_px(r[i].round / rmax),
                    fedc__chart_py(metric_of(&r[i], m)));
    fprintf(f, "\"/>");
    for (int i = 0; i < n; i++) {
        double v = metric_of(&r[i], m);
        if (!isnan(v))
            fprintf(f,
                    "<circle class=\"%s\" data-round=\"%ld\" %s=\"%.6f\" cx=\"%.1f\" cy=\"%.1f\" "
                    "r=\"3\" fill=\"%s\"><title>round %ld: %.4f</title></circle>",
                    md->cls, r[i].round, md->attr, v, fedc__chart_px(r[i].round / rmax),
                    fedc__chart_py(v), st.colour, r[i].round, v);
    }
    best_mark(f, md, r, n, rmax, &st);
    fprintf(f, "</svg>\n");
}

/* Whether rounds a and b took part alike: the same clients, participants and selected. */
static int same_participation(const fedc_round_info *a, const fedc_round_info *b) {
    return a->participants == b->participants && a->selected == b->selected &&
           strcmp(a->clients, b->clients) == 0;
}

void fedc__chart_participation(FILE *f, const fedc_round_info *r, int n) {
    fprintf(f, "<h2>Who took part in each round</h2>\n<p>Clients whose update is in the round's "
               "aggregate (the coordinator knows who sent a masked input, never what it "
               "held). Consecutive rounds in which the same clients took part share a "
               "row.</p>\n<table id=\"participation\"><tr><th>rounds</th><th>count</th>"
               "<th>clients</th><th>selected</th></tr>\n");
    for (int i = 0; i < n;) {
        int j = i;
        /* Folded only while the round numbers follow on: a gap (a round missing from the
         * file) starts a new row. */
        while (j + 1 < n && r[j + 1].round == r[j].round + 1 &&
               same_participation(&r[i], &r[j + 1]))
            j++;
        fprintf(f, "<tr class=\"rounds\" data-first=\"%ld\" data-last=\"%ld\" data-count=\"%d\">",
                r[i].round, r[j].round, j - i + 1);
        if (j > i)
            fprintf(f, "<td>%ld-%ld</td>", r[i].round, r[j].round);
        else
            fprintf(f, "<td>%ld</td>", r[i].round);
        fprintf(f, "<td>%d</td><td>", j - i + 1);
        /* The names inside ["a","b"], escaped: a client's name is its own choice. */
        for (const char *p = r[i].clients; *p; p++) {
            char ch[2] = {*p == ',' ? ' ' : *p, 0};
            if (*p != '"' && *p != '[' && *p != ']')
                fedc__html_esc(f, ch);
        }
        fprintf(f, " (%d)</td><td>%d</td></tr>\n", r[i].participants, r[i].selected);
        i = j + 1;
    }
    fprintf(f, "</table>\n");
}
