/* fedc report: the HTML report of a finished federation (the one `fedc demo` writes) from the
 * coordinator's per-round metrics and the final model scored on a test file: PR-AUC per round,
 * the model's precision-recall curve, who took part in each round. Self-contained (inline SVG). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fedc/data.h"
#include "fedc/modelfile.h"

#define CMD "report"

static void usage(FILE *f) {
    fprintf(f,
            "usage: fedc report --metrics FILE.jsonl --model FILE --data TEST.csv --out FILE.html "
            "[options]\n"
            "\n"
            "Writes the report of a federation: the coordinator's --metrics-json file (PR-AUC and\n"
            "participants per round) and the final model scored on a test file (binary labels).\n"
            "\n"
            "  --metrics FILE       the coordinator's --metrics-json file (required; the old\n"
            "                       spelling --rounds FILE still works, with a warning)\n"
            "  --model FILE         the final model (--model-out; required)\n"
            "  --data FILE          test CSV with the model's columns and its label (required)\n"
            "  --out FILE           the HTML page (required; written atomically)\n"
            "  --alert-budget F     recall when the top share F of rows is flagged (default "
            "0.005)\n"
            "  --title TEXT         the page's title\n"
            "  -h, --help           this message\n");
}

int cmd_report(int argc, char **argv) {
    const char *rounds = NULL, *model_path = NULL, *data = NULL, *out = NULL;
    const char *title = "fedc federation";
    float budget = 0.005f;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return FEDC_EXIT_OK;
        }
        char flag[64];
        const char *v;
        if (cli_flag_value(CMD, argc, argv, &i, flag, sizeof flag, &v))
            return FEDC_EXIT_USAGE;
        int bad = 0;
        if (strcmp(flag, "--metrics") == 0)
            rounds = v;
        else if (strcmp(flag, "--rounds") == 0) {
            /* --rounds is a count of rounds in every other program: this one was renamed */
            fprintf(stderr, "fedc report: warning: --rounds FILE is deprecated, use --metrics "
                            "FILE\n");
            rounds = v;
        } else if (strcmp(flag, "--model") == 0)
            model_path = v;
        else if (strcmp(flag, "--data") == 0)
            data = v;
        else if (strcmp(flag, "--out") == 0)
            out = v;
        else if (strcmp(flag, "--title") == 0)
            title = v;
        else if (strcmp(flag, "--alert-budget") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1.0, 1, &budget);
        else {
            cli_error(CMD, "unknown option '%s' (see fedc report --help)", flag);
            return FEDC_EXIT_USAGE;
        }
        if (bad)
            return FEDC_EXIT_USAGE;
    }
    if (!rounds || !model_path || !data || !out) {
        cli_error(CMD, "%s is required (see fedc report --help)",
                  !rounds       ? "--metrics"
                  : !model_path ? "--model"
                  : !data       ? "--data"
                                : "--out");
        return FEDC_EXIT_USAGE;
    }
    int rc = FEDC_EXIT_USAGE;
    fedc_model *m = NULL;
    fedc_dataset *ds = NULL, *sel = NULL;
    float *pred = NULL;
    fedc_diag d;
    if (fedc_model_load(&m, model_path, &d)) {
        cli_error(CMD, "%s", d.msg);
        goto out;
    }
    if (m->arch.task != FEDC_TASK_BINARY || !m->feature_names || !m->label_name) {
        cli_error(CMD, "%s: the report needs a binary model with its schema", model_path);
        goto out;
    }
    if (fedc_csv_load(&ds, data, m->label_name, NULL, 0, &d)) {
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
    pred = malloc(sizeof(float) * (size_t)(ds->n_rows ? ds->n_rows : 1));
    cli_metrics mt;
    rc = FEDC_EXIT_FAIL;
    if (!pred || fedc_model_predict(pred, m, sel->x, sel->n_rows) ||
        cli_compute_metrics(&mt, m, pred, sel, 0.5f)) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    double pr = mt.bin.pr_auc, rec = cli_recall_at_budget(pred, sel->y, sel->n_rows, budget);
    const char *names[] = {"federated model"};
    const float *preds[] = {pred};
    if (report_write(out, title, rounds, 1, names, preds, sel->y, sel->n_rows, &pr, budget, &rec))
        goto out;
    printf("report written to %s (test PR-AUC %.4f, ROC-AUC %.4f, recall at %.4g%% alerts %.4f)\n",
           out, pr, mt.bin.roc_auc, 100.0 * budget, rec);
    rc = FEDC_EXIT_OK;
out:
    free(pred);
    fedc_dataset_destroy(&sel);
    fedc_dataset_destroy(&ds);
    fedc_model_destroy(&m);
    return rc;
}
