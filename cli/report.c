/* The federation report: one self-contained HTML page (inline SVG and CSS, nothing loaded from
 * the network) with the validation PR-AUC of every round, the precision-recall curves of the
 * models on the test set, and who took part in each round. Written atomically. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define W 640
#define H 360
#define PADL 56
#define PADB 40
#define PADT 16
#define PADR 16
#define MAX_ROUNDS 100000
#define MAX_NAMES 64

static const char *const COLOURS[] = {"#1b6ca8", "#444444", "#d1495b", "#edae49",
                                      "#00798c", "#66a182", "#8d6a9f", "#c17817"};

static void esc(FILE *f, const char *s) {
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

static double px(double x) {
    return PADL + x * (W - PADL - PADR);
}

static double py(double y) {
    return H - PADB - y * (H - PADB - PADT);
}

static void axes(FILE *f, const char *xlabel, const char *ylabel, double xmax, int xint) {
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", PADL, H - PADB,
            W - PADR, H - PADB);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", PADL, PADT, PADL,
            H - PADB);
    for (int i = 0; i <= 5; i++) {
        double v = i / 5.0;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>", PADL,
                py(v), W - PADR, py(v));
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.1f</text>",
                PADL - 6, py(v) + 4, v);
        double xv = v * xmax;
        if (xint)
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%.0f</text>",
                    px(v), H - PADB + 16, xv);
        else
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%.1f</text>",
                    px(v), H - PADB + 16, xv);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"label\" text-anchor=\"middle\">%s</text>",
            (PADL + W - PADR) / 2.0, H - 6, xlabel);
    fprintf(f,
            "<text x=\"14\" y=\"%.1f\" class=\"label\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 14 %.1f)\">%s</text>",
            (PADT + H - PADB) / 2.0, (PADT + H - PADB) / 2.0, ylabel);
}

/* "key":number in a JSON line (NaN when absent or null). */
static double jnum(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p || strncmp(p + strlen(pat), "null", 4) == 0)
        return NAN;
    return strtod(p + strlen(pat), NULL);
}

typedef struct round_info {
    long round;
    double pr_auc;
    int participants, selected;
    char clients[2048]; /* the JSON array as written, or empty */
} round_info;

static int read_rounds(const char *path, round_info **out) {
    FILE *f = fopen(path, "r");
    *out = NULL;
    if (!f)
        return 0;
    int n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0 && n < MAX_ROUNDS) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            round_info *nr = realloc(*out, sizeof *nr * (size_t)cap);
            if (!nr)
                break;
            *out = nr;
        }
        round_info *r = &(*out)[n];
        r->round = (long)jnum(line, "round");
        r->pr_auc = jnum(line, "val_pr_auc");
        r->participants = (int)jnum(line, "participants");
        r->selected = (int)jnum(line, "selected");
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
        n++;
    }
    free(line);
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
    esc(f, name);
    fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", colour,
            dashed ? " stroke-dasharray=\"6 4\"" : "");
    int tp = 0, step = n / 400 > 0 ? n / 400 : 1;
    for (int k = 0; k < n; k++) {
        tp += y[v[k].i] > 0.5f;
        int last_of_tie = k == n - 1 || v[k + 1].s != v[k].s;
        if (last_of_tie && (k % step == 0 || k == n - 1 || k < 50)) {
            double rec = pos ? (double)tp / pos : 0, prec = (double)tp / (k + 1);
            fprintf(f, "%.1f,%.1f ", px(rec), py(prec));
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
    round_info *r = NULL;
    int nr = read_rounds(rounds_path, &r);
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    esc(f, title);
    fprintf(f, "</title><style>body{font-family:sans-serif;max-width:760px;margin:2em auto;"
               "color:#222}table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:"
               "1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}"
               ".axis{stroke:#333}.grid{stroke:#eee}.tick{font-size:11px;fill:#555}.label{font-"
               "size:12px;fill:#333}.on{background:#66a182;color:#fff}.off{color:#bbb}"
               "</style></head><body>\n<h1>");
    esc(f, title);
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
        esc(f, names[m]);
        fprintf(f, "</td><td>%.4f</td>", pr_auc[m]);
        if (alert_budget > 0)
            fprintf(f, "<td>%.4f</td>", alert_recall[m]);
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n");
    /* PR-AUC per round (the clients' validation rows, summed securely). */
    fprintf(f,
            "<h2>Validation PR-AUC per round</h2>\n<svg id=\"pr-auc-rounds\" "
            "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
            "%d\">",
            W, H, W, H);
    double rmax = nr > 0 ? (double)r[nr - 1].round : 1;
    axes(f, "round", "PR-AUC", rmax, 1);
    fprintf(f, "<polyline fill=\"none\" stroke=\"#1b6ca8\" stroke-width=\"2\" points=\"");
    for (int i = 0; i < nr; i++)
        if (!isnan(r[i].pr_auc))
            fprintf(f, "%.1f,%.1f ", px(r[i].round / rmax), py(r[i].pr_auc));
    fprintf(f, "\"/>");
    for (int i = 0; i < nr; i++)
        if (!isnan(r[i].pr_auc))
            fprintf(f,
                    "<circle class=\"pr-point\" data-round=\"%ld\" data-pr-auc=\"%.6f\" "
                    "cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#1b6ca8\"><title>round %ld: %.4f"
                    "</title></circle>",
                    r[i].round, r[i].pr_auc, px(r[i].round / rmax), py(r[i].pr_auc), r[i].round,
                    r[i].pr_auc);
    fprintf(f, "</svg>\n");
    /* Precision-recall curves on the test set. */
    fprintf(f,
            "<h2>Precision-recall on the test set</h2>\n<svg id=\"pr-curves\" "
            "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
            "%d\">",
            W, H + 16 + 20 * ((n_models + 1) / 2), W, H + 16 + 20 * ((n_models + 1) / 2));
    axes(f, "recall", "precision", 1.0, 0);
    for (int m = 0; m < n_models; m++)
        if (preds[m])
            pr_curve(f, preds[m], y, n, names[m], COLOURS[m % 8], m == 1);
    for (int m = 0; m < n_models; m++) {
        int lx = PADL + (m % 2) * 280, ly = H + 10 + 20 * (m / 2);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
                "<text x=\"%d\" y=\"%d\" class=\"label\">",
                lx, ly, lx + 24, ly, COLOURS[m % 8], lx + 30, ly + 4);
        esc(f, names[m]);
        fprintf(f, "</text>");
    }
    fprintf(f, "</svg>\n");
    /* Who took part. */
    fprintf(f, "<h2>Who took part in each round</h2>\n<p>Clients whose update is in the round's "
               "aggregate (the coordinator knows who sent a masked input, never what it "
               "held).</p>\n<table id=\"participation\"><tr><th>round</th><th>clients</th>"
               "<th>selected</th></tr>\n");
    for (int i = 0; i < nr; i++) {
        fprintf(f, "<tr class=\"round\"><td>%ld</td><td>", r[i].round);
        /* the names inside ["a","b"] */
        for (const char *p = r[i].clients; *p; p++)
            if (*p != '"' && *p != '[' && *p != ']')
                fputc(*p == ',' ? ' ' : *p, f);
        fprintf(f, " (%d)</td><td>%d</td></tr>\n", r[i].participants, r[i].selected);
    }
    fprintf(f, "</table>\n<p>Written by fedc; this page loads nothing from the network.</p>\n"
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
