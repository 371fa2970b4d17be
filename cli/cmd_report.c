/* fedc report: the HTML report of a finished federation (the one `fedc demo` writes) from the
 * coordinator's per-round metrics and the final model scored on a test file: PR-AUC per round,
 * the model's precision-recall curve, who took part in each round. Self-contained (inline SVG). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "loadopts.h"
#include "fedc/data.h"
#include "fedc/modelfile.h"
#include "report.h"

#define CMD "report"

static const fedc_prog_help g_help = {
    "usage: fedc report --metrics FILE.jsonl --model FILE --data TEST.csv --out FILE.html "
    "[options]",
    "Writes the report of a federation: the coordinator's per-round metrics (PR-AUC, the best\n"
    "round, participants) and the model scored on a test file (binary labels): PR-AUC,\n"
    "ROC-AUC, recall at --alert-budget, the precision-recall curve and where it starts, the\n"
    "run's settings from the model's card, as one self-contained HTML page (inline SVG),\n"
    "written atomically.",
    "Deprecated: --rounds=FILE (or with a space), the old spelling of --metrics, still works\n"
    "on the command line, with a warning; every other program counts rounds with that flag."};

/* --rounds FILE was this command's name for --metrics FILE. The table has one --rounds, a count
 * of rounds, which report does not take; the old spelling is rewritten here, on the command line
 * only: "--rounds X" and "--rounds=X" become "--metrics X" (X still pointing into argv, as every
 * value does). Every option of report takes a value, so a value that reads "--rounds" is skipped.
 * Returns argv, or a copy (in *copy, to free; *n its count); NULL when out of memory. */
static char **rewrite_rounds(int argc, char **argv, char ***copy, int *n) {
    static char metrics[] = "--metrics";
    *copy = NULL;
    *n = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--rounds") == 0 || strncmp(a, "--rounds=", 9) == 0) {
            if (!*copy) {
                /* at most two arguments for each one */
                if (!(*copy = malloc(sizeof(char *) * (size_t)(2 * argc + 1))))
                    return NULL;
                fprintf(stderr, "fedc report: warning: --rounds FILE is deprecated, use "
                                "--metrics FILE\n");
            }
            break;
        }
        if (strncmp(a, "--", 2) == 0 && !strchr(a, '=') && strcmp(a, "--help") != 0 &&
            strcmp(a, "--version") != 0 && strcmp(a, "--print-config") != 0)
            i++; /* its value */
    }
    if (!*copy)
        return argv;
    int m = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (i > 0 && strcmp(a, "--rounds") == 0) {
            (*copy)[m++] = metrics;
        } else if (i > 0 && strncmp(a, "--rounds=", 9) == 0) {
            (*copy)[m++] = metrics;
            (*copy)[m++] = a + 9;
        } else {
            (*copy)[m++] = a;
            if (i > 0 && strncmp(a, "--", 2) == 0 && !strchr(a, '=') && i + 1 < argc &&
                strcmp(a, "--help") != 0 && strcmp(a, "--version") != 0 &&
                strcmp(a, "--print-config") != 0)
                (*copy)[m++] = argv[++i]; /* its value, whatever it reads */
        }
    }
    (*copy)[m] = NULL;
    *n = m;
    return *copy;
}

int cmd_report(int argc, char **argv) {
    char **args_copy;
    int n_args;
    char **args = rewrite_rounds(argc, argv, &args_copy, &n_args);
    if (!args) {
        cli_error(CMD, "out of memory");
        return FEDC_EXIT_FAIL;
    }
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_REPORT, n_args, args, &g_help);
    free(args_copy); /* the values point into argv's strings, not into the copy */
    if (prc >= 0)
        return prc;
    const char *rounds = op.v[FEDC_O_METRICS].text, *model_path = op.v[FEDC_O_MODEL_FILE].text;
    const char *data = op.v[FEDC_O_DATA].text, *out = op.v[FEDC_O_OUT].text;
    const char *title = op.v[FEDC_O_TITLE].text;
    float budget = (float)op.v[FEDC_O_ALERT_BUDGET].r;
    if (!rounds || !model_path || !data || !out) {
        cli_error(CMD, "%s is required (see fedc report --help)",
                  !rounds       ? "--metrics"
                  : !model_path ? "--model"
                  : !data       ? "--data"
                                : "--out");
        return FEDC_EXIT_USAGE;
    }
    int rc = FEDC_EXIT_USAGE;
    FILE *mf = fopen(rounds, "r"); /* read again by the report; checked here for exit 2 */
    if (!mf) {
        cli_error(CMD, "--metrics %s: cannot read it: %s", rounds, strerror(errno));
        return FEDC_EXIT_USAGE;
    }
    fclose(mf);
    fedc_model *m = NULL;
    fedc_dataset *ds = NULL, *sel = NULL;
    float *pred = NULL;
    fedc_diag d;
    fedc_load_opts lo;
    if ((rc = fedc_load_opts_get(&lo, &op, CMD)) != 0)
        return rc;
    rc = FEDC_EXIT_USAGE;
    if (fedc_model_load(&m, model_path, &d)) {
        cli_error(CMD, "%s", d.msg);
        goto out;
    }
    if (m->arch.task != FEDC_TASK_BINARY || !m->feature_names || !m->label_name) {
        cli_error(CMD, "%s: the report needs a binary model with its schema", model_path);
        goto out;
    }
    if (fedc_load_opts_from_model(&lo, &op, m, CMD))
        goto out;
    fedc_encoding enc = fedc_load_opts_scoring(&lo);
    if (fedc_csv_load_enc(&ds, data, m->label_name, NULL, 0, &enc, &d)) {
        cli_error(CMD, "%s", d.msg);
        goto out;
    }
    const int nf = m->arch.sizes[0];
    if (fedc_dataset_new(&sel, ds->n_rows, nf)) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    for (int j = 0; j < nf; j++) {
        int col = -1;
        for (int c = 0; c < ds->n_features; c++)
            if (strcmp(ds->feature_names[c], m->feature_names[j]) == 0)
                col = c;
        if (col < 0) {
            cli_error(CMD, "%s:1: feature column '%s' used by the model is missing", data,
                      m->feature_names[j]);
            goto out;
        }
        for (int i = 0; i < ds->n_rows; i++)
            sel->x[(size_t)i * nf + j] = ds->x[(size_t)i * ds->n_features + col];
    }
    memcpy(sel->y, ds->y, sizeof(float) * (size_t)ds->n_rows);
    if (fedc_load_opts_fill(sel, &lo, data, CMD))
        goto out;
    pred = malloc(sizeof(float) * (size_t)(ds->n_rows ? ds->n_rows : 1));
    cli_metrics mt;
    rc = FEDC_EXIT_FAIL;
    if (!pred || fedc_model_predict(pred, m, sel->x, sel->n_rows) ||
        cli_compute_metrics(&mt, m, pred, sel, 0.5f)) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    double pr = mt.bin.pr_auc, rec = cli_recall_at_budget(pred, sel->y, sel->n_rows, budget);
    const report_model rm = {"federated model", FEDC_SERIES_FEDERATED, 0, pred, pr,
                             mt.bin.roc_auc,    budget > 0 ? rec : NAN};
    const report_in in = {.title = title,
                          .rounds_path = rounds,
                          .models = &rm,
                          .n_models = 1,
                          .y = sel->y,
                          .n = sel->n_rows,
                          .alert_budget = budget,
                          .model = m};
    if (report_write(out, &in))
        goto out;
    printf("report written to %s (test PR-AUC %.4f, ROC-AUC %.4f, recall at %.4g%% alerts %.4f)\n",
           out, pr, mt.bin.roc_auc, 100.0 * budget, rec);
    rc = FEDC_EXIT_OK;
out:
    free(pred);
    fedc_dataset_destroy(&sel);
    fedc_dataset_destroy(&ds);
    fedc_model_destroy(&m);
    fedc_load_opts_release(&lo);
    return rc;
}
