/* The federation's HTML report, written by `fedc report` and at the end of `fedc sim` and
 * `fedc demo`: one self-contained page (inline SVG and CSS, nothing loaded from the network).
 * report.c writes the page, report_pr.c the precision-recall chart and what its curves' starts
 * mean, report_settings.c the table of the run's settings. The per-round charts and the
 * participation table are core/obs chart.c's, shared with the coordinator's status page. */
#ifndef FEDC_CLI_REPORT_H
#define FEDC_CLI_REPORT_H

#include <stdio.h>

#include "fedc/chart.h"
#include "fedc/model.h"

/* One model of the report, scored on the test set. */
typedef struct report_model {
    const char *name;      /* borrowed */
    fedc_series_role role; /* picks its colour and dashes (chart.h) */
    int index;             /* the client's index among the clients, for FEDC_SERIES_CLIENT */
    const float *pred;     /* test scores (n), borrowed; NULL when it was not scored */
    double pr_auc, roc_auc, alert_recall; /* NaN when unknown */
} report_model;

/* What the report shows; everything borrowed for the call. */
typedef struct report_in {
    const char *title;
    const char *rounds_path; /* the coordinator's --metrics-json file (JSON lines) */
    const report_model *models;
    int n_models;
    const float *y; /* test labels (n), 0 or 1 */
    int n;
    double alert_budget;     /* share of transactions flagged for the recall column; 0: none */
    const fedc_model *model; /* the federated model (its card and layers), or NULL */
    int have_seed;           /* seed: the run's seed when the model's card has none */
    unsigned long long seed;
} report_in;

/* Writes the report to path atomically. 0, or -1 after printing why. */
int report_write(const char *path, const report_in *in);

/* Where a precision-recall curve starts: the rows tied at the model's top score. */
typedef struct report_pr_start {
    float top_score;
    long tied_rows, tied_frauds; /* rows with the top score, and the frauds among them */
    long frauds;                 /* all frauds of the test set */
    double recall, precision;    /* the curve's first point: tied_frauds / frauds, and
                                    tied_frauds / tied_rows */
} report_pr_start;

/* The start of the curve of pred against y (n rows, n >= 1). */
void report_pr_start_of(report_pr_start *st, const float *pred, const float *y, int n);

/* The section "Precision-recall on the test set": the chart (svg id "pr-curves") with one
 * <polyline class="pr-curve" data-model="NAME"> per scored model in its style, a ring
 * <circle class="pr-start"> at each curve's first point, the legend, and a caption saying how the
 * curves are drawn and where each starts (<li class="pr-start-note" data-model="NAME"
 * data-tied-rows="R" data-tied-frauds="F" data-recall="X">). -1 when out of memory. */
int report_pr_section(FILE *f, const report_in *in);

/* The section "The run": a table (id "settings") of the federation's settings read from the
 * model's card and the rounds' metrics lines (r, nr). */
void report_settings_section(FILE *f, const report_in *in, const fedc_round_info *r, int nr);

#endif
