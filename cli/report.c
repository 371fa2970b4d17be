/* The federation report: one self-contained HTML page (inline SVG and CSS, nothing loaded from
 * the network) with the validation PR-AUC of every round, the precision-recall curves of the
 * models on the test set, and who took part in each round. Written atomically. The per-round chart
 * and the participation table are core/obs chart.c's, shared with the coordinator's status page. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fedc/chart.h"

#define W FEDC_CHART_W
#define H FEDC_CHART_H
#define PADL FEDC_CHART_PADL
#define MAX_ROUNDS 100000

static int read_rounds(const char *path, fedc_round_info **out) {
    FILE *f = fopen(path, "r");
    int n = fedc__rounds_read(f, out, MAX_ROUNDS);
    if (f)
        fclose(f);
    return n;
}

typedef struct idx_score {
    float s;
    int i;
} idx_score;

static int cmp_idx(const void *a, const void *b) {
    const idx_score *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The precision-recall curve as an SVG polyline (at most ~400 points). */
static void pr_curve(FILE *f, const float *pred, const float *y, int n, const char *name,
                     const char *colour, int dashed) {
    idx_score *v = malloc(sizeof *v * (size_t)n);
    if (!v)
        return;
    int pos = 0;
    for (int i = 0; i < n; i++) {
        v[i].s = pred[i];
        v[i].i = i;
        pos += y[i] > 0.5f;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_idx);
    fprintf(f, "<polyline class=\"pr-curve\" data-model=\"");
    fedc__html_esc(f, name);
    fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", colour,
            dashed ? " stroke-dasharray=\"6 4\"" : "");
    int tp = 0, step = n / 400 > 0 ? n / 400 : 1;
    for (int k = 0; k < n; k++) {
        tp += y[v[k].i] > 0.5f;
        int last_of_tie = k == n - 1 || v[k + 1].s != v[k].s;
        if (last_of_tie && (k % step == 0 || k == n - 1 || k < 50)) {
            double rec = pos ? (double)tp / pos : 0, prec = (double)tp / (k + 1);
            fprintf(f, "%.1f,%.1f ", fedc__chart_px(rec), fedc__chart_py(prec));
        }
    }
    fprintf(f, "\"/>");
    free(v);
}

int report_write(const char *path, const char *title, const char *rounds_path, int n_models,
                 const char *const *names, const float *const *preds, const float *y, int n,
                 const double *pr_auc, double alert_budget, const double *alert_recall) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        cli_error("report", "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    fedc_round_info *r = NULL;
    int nr = read_rounds(rounds_path, &r);
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    fedc__html_esc(f, title);
    fprintf(f, "</title><style>" FEDC_CHART_CSS "</style></head><body>\n<h1>");
    fedc__html_esc(f, title);
    int frauds = 0;
    for (int i = 0; i < n; i++)
        frauds += y[i] > 0.5f;
    fprintf(f,
            "</h1>\n<h2>Test set</h2>\n<p>%d rows, %d frauds.</p>\n<table><tr><th>model</th>"
            "<th>PR-AUC</th>",
            n, frauds);
    if (alert_budget > 0)
        fprintf(f, "<th>recall at %.4g%% alerts</th>", 100.0 * alert_budget);
    fprintf(f, "</tr>\n");
    for (int m = 0; m < n_models; m++) {
        fprintf(f, "<tr><td>");
        fedc__html_esc(f, names[m]);
        fprintf(f, "</td><td>%.4f</td>", pr_auc[m]);
        if (alert_budget > 0)
            fprintf(f, "<td>%.4f</td>", alert_recall[m]);
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n");
    /* PR-AUC per round (the clients' validation rows, summed securely). */
    fprintf(f, "<h2>Validation PR-AUC per round</h2>\n");
    fedc__chart_rounds(f, "pr-auc-rounds", FEDC_RM_PR_AUC, r, nr);
    /* Precision-recall curves on the test set. */
    fprintf(f,
            "<h2>Precision-recall on the test set</h2>\n<svg id=\"pr-curves\" "
            "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
            "%d\">",
            W, H + 16 + 20 * ((n_models + 1) / 2), W, H + 16 + 20 * ((n_models + 1) / 2));
    fedc__chart_axes(f, "recall", "precision", 1.0, 0);
    for (int m = 0; m < n_models; m++)
        if (preds[m])
            pr_curve(f, preds[m], y, n, names[m], fedc__chart_colours[m % 8], m == 1);
    for (int m = 0; m < n_models; m++) {
        int lx = PADL + (m % 2) * 280, ly = H + 10 + 20 * (m / 2);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
                "<text x=\"%d\" y=\"%d\" class=\"label\">",
                lx, ly, lx + 24, ly, fedc__chart_colours[m % 8], lx + 30, ly + 4);
        fedc__html_esc(f, names[m]);
        fprintf(f, "</text>");
    }
    fprintf(f, "</svg>\n");
    fedc__chart_participation(f, r, nr);
    fprintf(f, "<p>Written by fedc; this page loads nothing from the network.</p>\n"
               "</body></html>\n");
    free(r);
    int bad = ferror(f) != 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        bad = 1;
    if (fclose(f) != 0)
        bad = 1;
    if (bad || rename(tmp, path) != 0) {
        cli_error("report", "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
