/* The federation report (report.h): the page, its summary table with a legend, and the order of
 * its sections. The precision-recall chart is report_pr.c's, the run's settings
 * report_settings.c's, the per-round chart and the participation table core/obs chart.c's.
 * Written to PATH.tmp, synced, then renamed over PATH. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "report.h"

#define MAX_ROUNDS 100000

static int read_rounds(const char *path, fedc_round_info **out) {
    FILE *f = path ? fopen(path, "r") : NULL;
    int n = fedc__rounds_read(f, out, MAX_ROUNDS);
    if (f)
        fclose(f);
    return n;
}

/* A metric cell: 4 decimals, or a dash when unknown. */
static void cell(FILE *f, const char *cls, double v) {
    if (isnan(v))
        fprintf(f, "<td class=\"%s\">-</td>", cls);
    else
        fprintf(f, "<td class=\"%s\">%.4f</td>", cls, v);
}

/* The test set's table: every model with its colour, PR-AUC, ROC-AUC and the recall at the
 * alert budget. */
static void summary_table(FILE *f, const report_in *in) {
    long frauds = 0;
    for (int i = 0; i < in->n; i++)
        frauds += in->y[i] > 0.5f;
    fprintf(f,
            "<h2>Test set</h2>\n<p>%d rows, %ld frauds (%.3g%%). PR-AUC is the average "
            "precision over every threshold; ROC-AUC the chance that a fraud scores above a "
            "legitimate transaction",
            in->n, frauds, in->n ? 100.0 * (double)frauds / in->n : 0.0);
    if (in->alert_budget > 0)
        fprintf(f,
                "; recall at %.4g%% alerts the share of frauds among the %.4g%% "
                "transactions the model scores highest (what a fraud team reviewing that "
                "many would catch)",
                100.0 * in->alert_budget, 100.0 * in->alert_budget);
    fprintf(f, ".</p>\n<table id=\"models\"><tr><th>model</th><th>PR-AUC</th><th>ROC-AUC</th>");
    if (in->alert_budget > 0)
        fprintf(f, "<th>recall at %.4g%% alerts</th>", 100.0 * in->alert_budget);
    fprintf(f, "</tr>\n");
    for (int m = 0; m < in->n_models; m++) {
        const report_model *rm = &in->models[m];
        fedc_series_style st = fedc__chart_style(rm->role, rm->index);
        fprintf(f, "<tr class=\"model\" data-model=\"");
        fedc__html_esc(f, rm->name);
        fprintf(f, "\"><td>");
        fedc__chart_swatch(f, &st);
        fedc__html_esc(f, rm->name);
        fprintf(f, "</td>");
        cell(f, "pr-auc", rm->pr_auc);
        cell(f, "roc-auc", rm->roc_auc);
        if (in->alert_budget > 0)
            cell(f, "alert-recall", rm->alert_recall);
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n");
}

static int write_page(FILE *f, const report_in *in, const fedc_round_info *r, int nr) {
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    fedc__html_esc(f, in->title);
    fprintf(f, "</title><style>" FEDC_CHART_CSS "</style></head><body>\n<h1>");
    fedc__html_esc(f, in->title);
    fprintf(f, "</h1>\n");
    summary_table(f, in);
    report_settings_section(f, in, r, nr);
    /* PR-AUC per round (the clients' validation rows, summed securely). */
    fprintf(f, "<h2>Validation PR-AUC per round</h2>\n");
    const char *metric;
    double value;
    long best = fedc__rounds_best(r, nr, &metric, &value);
    if (best > 0) {
        fprintf(f,
                "<p class=\"note\">The dashed line marks round %ld, the best by the "
                "federated validation ",
                best);
        fedc__html_esc(f, metric[0] ? metric : "metric");
        fprintf(f, ": the model --best-model-out keeps (the model scored above is the one "
                   "\"model scored\" names).</p>\n");
    }
    fedc__chart_rounds(f, "pr-auc-rounds", FEDC_RM_PR_AUC, r, nr);
    if (report_pr_section(f, in))
        return -1;
    fedc__chart_participation(f, r, nr);
    fprintf(f, "<p>Written by fedc; this page loads nothing from the network.</p>\n"
               "</body></html>\n");
    return 0;
}

int report_write(const char *path, const report_in *in) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        cli_error("report", "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    fedc_round_info *r = NULL;
    int nr = read_rounds(in->rounds_path, &r);
    int bad = write_page(f, in, r, nr) != 0;
    free(r);
    if (bad) {
        fclose(f);
        unlink(tmp);
        cli_error("report", "out of memory writing %s", path);
        return -1;
    }
    bad = ferror(f) != 0;
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
