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
    ".off{color:#bbb}.swatch{vertical-align:middle;margin-right:6px}.note{font-size:13px;color:#"  \
    "444}"

/* Whose series a line is: each role has its own look in every chart and legend. */
typedef enum fedc_series_role {
    FEDC_SERIES_FEDERATED,   /* the federated model (also the per-round charts' line) */
    FEDC_SERIES_CENTRALISED, /* the baseline trained on the pooled data */
    FEDC_SERIES_CLIENT       /* one client (bank) alone */
} fedc_series_role;

/* A series' look: a colour of the Okabe-Ito palette and a dash pattern ("" for a solid line). */
typedef struct fedc_series_style {
    const char *colour; /* "#RRGGBB", static */
    char dash[24];      /* SVG stroke-dasharray, or "" */
    double width;       /* stroke width */
} fedc_series_style;

/* The look of a series: role's own, and for FEDC_SERIES_CLIENT the index-th client's (0-based;
 * any index >= 0: past the palette's colours the dash patterns tell clients apart, and no two
 * indices share both colour and dashes). */
fedc_series_style fedc__chart_style(fedc_series_role role, int index);

/* Writes the stroke attributes of s: ` stroke="#.." stroke-width=".."[ stroke-dasharray=".."]`. */
void fedc__chart_stroke(FILE *f, const fedc_series_style *s);

/* A legend swatch for a table cell: a small inline <svg class="swatch"> with one line drawn in
 * s. */
void fedc__chart_swatch(FILE *f, const fedc_series_style *s);

/* One round as its metrics line states it (NaN for a metric that is null or absent). */
typedef struct fedc_round_info {
    long round;
    double pr_auc, roc_auc, accuracy;
    int participants, selected;
    char clients[2048];   /* the "clients" JSON array as written, or empty (null, or too long) */
    long best_round;      /* the best round so far by best_metric; 0 when the line has none */
    double best_value;    /* its value (NaN when absent) */
    char best_metric[24]; /* "pr_auc", "roc_auc", "loss", ...; empty when absent */
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

/* Parses every line of f that names a round (at most max) into *out (malloc'd, the caller
 * frees); how many. */
int fedc__rounds_read(FILE *f, fedc_round_info **out, int max);

/* The whole <svg id="id"> of metric m per round: a line and one point per round with a value,
 * each point <circle class="CLASS-point" data-round="R" data-METRIC="V"> (pr-point and
 * data-pr-auc for PR-AUC, roc-point and data-roc-auc, acc-point and data-accuracy), drawn in the
 * federated model's style. When the last line that names a best round does, that round is
 * marked: <g class="best-round" data-round="N" data-metric="M"> with a vertical line, a ring
 * around the round's point when the chart shows metric M, and the label "best round N by M".
 * Lines without best_round (older metrics files) draw no mark. */
void fedc__chart_rounds(FILE *f, const char *id, fedc_round_metric m, const fedc_round_info *r,
                        int n);

/* The best round the rounds name: the best_round of the last line that has one, or 0 (and
 * *metric NULL) when none does. *metric points into r. */
long fedc__rounds_best(const fedc_round_info *r, int n, const char **metric, double *value);

/* The section "Who took part in each round": heading, what it means, and the table (id
 * "participation"). Consecutive rounds with the same clients, participant count and selected
 * count share one row <tr class="rounds" data-first="A" data-last="B" data-count="K"> that
 * reads "A-B" (or "A" for a single round) and K; rounds that differ keep rows of their own. */
void fedc__chart_participation(FILE *f, const fedc_round_info *r, int n);

#endif
