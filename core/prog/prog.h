/* Shared pieces of fedc's programs (fedc-coordinator, fedc-client and the fedc toolbox): error
 * messages and list parsers that name the flag, the value and what is allowed; thread set-up;
 * metric printing and the one-line JSON report. Not part of libfedc (the option table, and the
 * parser of every flag, is options.h). */
#ifndef FEDC_PROG_H
#define FEDC_PROG_H

#include <stdio.h>

#include "fedc/data.h"
#include "fedc/jsonl.h"
#include "fedc/metrics.h"
#include "fedc/model.h"

/* Exit codes: 0 success, 1 runtime failure (I/O on outputs, out of memory), 2 bad input (flags,
 * data files, model files). */
#define FEDC_EXIT_OK 0
#define FEDC_EXIT_FAIL 1
#define FEDC_EXIT_USAGE 2

/* Operating thresholds from scores (binary): the one that flags at most budget x n rows (the
 * k-th highest score, k = floor(budget n); above every score when k = 0), and the lowest whose
 * precision is at least p (1 when none reaches it). */
float cli_threshold_budget(const float *score, int n, float budget);
float cli_threshold_precision(const float *score, const float *y, int n, float p);

/* Recall when the ceil(budget x n) highest scores are flagged (at a tied threshold only as many
 * as fit the budget); NaN without positives or scores. */
double cli_recall_at_budget(const float *pred, const float *y, int n, double budget);

/* Card precision@k (Le Borgne et al. 2022, handbook chapter 4): each day, the k cards with the
 * highest score (a card's score is its highest transaction score that day); the share of them
 * with a fraudulent transaction that day, averaged over the days (*days of them). */
double cli_card_precision(const float *score, const float *y, const float *card, const float *day,
                          int n, int k, int *days);

/* Prints "fedc CMD: message\n" to stderr ("CMD: message" when CMD is a program, "fedc-..."). */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Value parsers for what the option table leaves as text. Each returns 0 on success, or prints
 * "fedc CMD: FLAG: ..." and returns -1. */
/* Comma-separated positive integers, e.g. "64,32"; "" or "none" gives zero layers. */
int cli_int_list(const char *cmd, const char *flag, const char *val, int *out, int max, int *n);
/* Splits "a,b,c" into a NULL-terminated array of strings (caller frees with cli_free_list). */
int cli_str_list(const char *cmd, const char *flag, const char *val, char ***out, int *n);
void cli_free_list(char **list);

/* Sets the OpenMP thread count: `requested` > 0, else OMP_NUM_THREADS, else the core count.
 * Returns the number requested from the runtime. */
int cli_setup_threads(int requested);

/* One set of evaluation results, whichever the task. */
typedef struct cli_metrics {
    fedc_task task;
    int rows;
    fedc_binary_metrics bin;
    fedc_multiclass_metrics mc;
    fedc_regression_metrics reg;
    float threshold;
} cli_metrics;

/* Computes metrics of predictions against ds->y. Returns 0, or -1 when out of memory. */
int cli_compute_metrics(cli_metrics *out, const fedc_model *m, const float *pred,
                        const fedc_dataset *ds, float threshold);
void cli_print_metrics(FILE *f, const char *title, const cli_metrics *mt);
/* Adds the metrics to j (fedc/jsonl.h): task, rows, then the task's figures (%.17g, null when
 * not finite). The caller adds its own keys after them. */
void cli_metrics_json(fedc_json *j, const cli_metrics *mt);
/* Writes j as one JSON object on one line, the whole file at path (the value of flag, named in
 * errors), atomically replaced. Returns 0
 * or -1 after printing an error. */
int cli_write_json(const char *cmd, const char *flag, const char *path, const fedc_json *j);

#endif
