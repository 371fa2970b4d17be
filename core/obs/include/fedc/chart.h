/* The charts and tables of the federation's pages, shared by `fedc report` (cli/report.c) and the
 * coordinator's live status page (coordinator/http.c) so that both draw the same thing one way:
 * inline SVG and HTML written to a FILE, loading nothing. The rounds come from the coordinator's
 * metrics lines (the --metrics-json file, or the lines a running coordinator keeps). Internal to
 * fedc. */
#ifndef FEDC_CHART_H_
#define FEDC_CHART_H_

#include <stdio.h>

/* A chart's size and inner margins, in SVG user units. */
#define FEDC_CHART_W 640
#define FEDC_CHART_H 360
#define FEDC_CHART_PADL 56
#define FEDC_CHART_PADB 40
#define FEDC_CHART_PADT 16
#define FEDC_CHART_PADR 16

/* The pages' style sheet (inside <style>): axes, grid, ticks, tables, participation cells. */
#define FEDC_CHART_CSS                                                                             \
    "body{font-family:sans-serif;max-width:760px;margin:2em auto;color:#222}table{border-"         \
    "collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}"      \
    "th:first-child,td:first-child{text-align:left}.axis{stroke:#333}.grid{stroke:#eee}.tick{"     \
    "font-size:11px;fill:#555}.label{font-size:12px;fill:#333}.on{background:#66a182;color:#fff}"  \
    ".off{color:#bbb}"

extern const char *const fedc__chart_colours[8];

/* One round as its metrics line states it (NaN for a metric that is null or absent). */
typedef struct fedc_round_info {
    long round;
    double pr_auc, roc_auc, accuracy;
    int participants, selected;
    char clients[2048]; /* the "clients" JSON array as written, or empty (null, or too long) */
} fedc_round_info;

/* The metric a per-round chart shows (each in [0, 1]). */
typedef enum fedc_round_metric {
    FEDC_RM_PR_AUC,
    FEDC_RM_ROC_AUC,
    FEDC_RM_ACCURACY
} fedc_round_metric;

/* Writes s with <, >, & and " escaped for HTML text and attribute values. */
void fedc__html_esc(FILE *f, const char *s);

/* Chart coordinates of x and y in [0, 1]. */
double fedc__chart_px(double x);
double fedc__chart_py(double y);

/* Both axes, the grid and five ticks each (y in [0, 1], x in [0, xmax]; integers when xint). */
void fedc__chart_axes(FILE *f, const char *xlabel, const char *ylabel, double xmax, int xint);

/* "key":number in one of the coordinator's metrics lines (NaN when absent or null). */
double fedc__json_line_num(const char *line, const char *key);

/* Parses one metrics line into r; 0, or -1 when it names no round. */
int fedc__round_parse(const char *line, fedc_round_info *r);

/* Parses every line of f (at most max) into *out (malloc'd, the caller frees); how many. */
int fedc__rounds_read(FILE *f, fedc_round_info **out, int max);

/* The whole <svg id="id"> of metric m per round: a line and one point per round with a value,
 * each point <circle class="CLASS-point" data-round="R" data-METRIC="V"> (pr-point and
 * data-pr-auc for PR-AUC, roc-point and data-roc-auc, acc-point and data-accuracy). */
void fedc__chart_rounds(FILE *f, const char *id, fedc_round_metric m, const fedc_round_info *r,
                        int n);

/* The section "Who took part in each round": heading, what it means, and the table with one row
 * per round (id "participation", rows of class "round"). */
void fedc__chart_participation(FILE *f, const fedc_round_info *r, int n);

#endif
