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

const char *const fedc__chart_colours[8] = {"#1b6ca8", "#444444", "#d1495b", "#edae49",
                                            "#00798c", "#66a182", "#8d6a9f", "#c17817"};

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
        fedc__round_parse(line, &(*out)[n]);
        n++;
    }
    free(line);
    return n;
}

typedef struct metric_def {
    const char *label, *cls, *attr;
} metric_def;

static const metric_def METRICS[] = {
    [FEDC_RM_PR_AUC] = {"PR-AUC", "pr-point", "data-pr-auc"},
    [FEDC_RM_ROC_AUC] = {"ROC-AUC", "roc-point", "data-roc-auc"},
    [FEDC_RM_ACCURACY] = {"accuracy", "acc-point", "data-accuracy"},
};

static double metric_of(const fedc_round_info *r, fedc_round_metric m) {
    return m == FEDC_RM_PR_AUC ? r->pr_auc : m == FEDC_RM_ROC_AUC ? r->roc_auc : r->accuracy;
}

void fedc__chart_rounds(FILE *f, const char *id, fedc_round_metric m, const fedc_round_info *r,
                        int n) {
    const metric_def *md = &METRICS[m];
    fprintf(f, "<svg id=\"%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">", id, W, H, W, H);
    double rmax = n > 0 ? (double)r[n - 1].round : 1;
    if (!(rmax > 0))
        rmax = 1;
    fedc__chart_axes(f, "round", md->label, rmax, 1);
    fprintf(f, "<polyline fill=\"none\" stroke=\"#1b6ca8\" stroke-width=\"2\" points=\"");
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
                    "r=\"3\" fill=\"#1b6ca8\"><title>round %ld: %.4f</title></circle>",
                    md->cls, r[i].round, md->attr, v, fedc__chart_px(r[i].round / rmax),
                    fedc__chart_py(v), r[i].round, v);
    }
    fprintf(f, "</svg>\n");
}

void fedc__chart_participation(FILE *f, const fedc_round_info *r, int n) {
    fprintf(f, "<h2>Who took part in each round</h2>\n<p>Clients whose update is in the round's "
               "aggregate (the coordinator knows who sent a masked input, never what it "
               "held).</p>\n<table id=\"participation\"><tr><th>round</th><th>clients</th>"
               "<th>selected</th></tr>\n");
    for (int i = 0; i < n; i++) {
        fprintf(f, "<tr class=\"round\"><td>%ld</td><td>", r[i].round);
        /* The names inside ["a","b"], escaped: a client's name is its own choice. */
        for (const char *p = r[i].clients; *p; p++) {
            char ch[2] = {*p == ',' ? ' ' : *p, 0};
            if (*p != '"' && *p != '[' && *p != ']')
                fedc__html_esc(f, ch);
        }
        fprintf(f, " (%d)</td><td>%d</td></tr>\n", r[i].participants, r[i].selected);
    }
    fprintf(f, "</table>\n");
}
