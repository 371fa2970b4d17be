/* fedc eval: evaluates a saved model on a CSV file. Columns are matched to the model's features by
 * name (extra columns are ignored and listed), the model's own standardisation is applied, and
 * the metrics of its task are printed and optionally written as JSON. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fedc/card.h"
#include "loadopts.h"
#include "fedc/modelfile.h"

static const char *CMD = "eval";

static const fedc_prog_help g_help = {
    "usage: fedc eval --model FILE --data FILE.csv [--label COLUMN] [options]",
    "Evaluates a model saved by 'fedc train --out' (or fedc-coordinator --model-out) on a\n"
    "CSV file: its columns are matched to the model's features by name (extra columns are\n"
    "ignored and listed), the model's own standardisation is applied, and the metrics of\n"
    "its task are printed.",
    "Exit status: 0 success, 1 runtime failure, 2 bad flags, data or model file."};

int cmd_eval(int argc, char **argv) {
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_EVAL, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
    const char *model_path = op.v[FEDC_O_MODEL_FILE].text, *data = op.v[FEDC_O_DATA].text;
    const char *label = op.v[FEDC_O_LABEL].text, *json = op.v[FEDC_O_METRICS_JSON].text;
    const char *card_col = op.v[FEDC_O_CARD_COLUMN].text, *day_col = op.v[FEDC_O_DAY_COLUMN].text;
    int card_k = fedc_opt_has(&op, FEDC_O_CARD_PRECISION) ? (int)op.v[FEDC_O_CARD_PRECISION].i : 0;
    float threshold = (float)op.v[FEDC_O_THRESHOLD].r;
    int threads = fedc_opt_has(&op, FEDC_O_THREADS) ? (int)op.v[FEDC_O_THREADS].i : 0;
    const char *drop = op.v[FEDC_O_DROP].text;
    char **drop_list = NULL;
    int n_drop = 0;
    int rc = FEDC_EXIT_USAGE;
    fedc_model *m = NULL;
    fedc_dataset *ds = NULL, *sel = NULL;
    float *pred = NULL;
    int *col = NULL;
    fedc_diag d = {{0}};
    fedc_load_opts lo;
    if ((rc = fedc_load_opts_get(&lo, &op, CMD)) != 0)
        return rc;
    rc = FEDC_EXIT_USAGE;

    if (!model_path || !data) {
        cli_error(CMD, "%s is required (see fedc eval --help)", !model_path ? "--model" : "--data");
        goto out;
    }
    if (fedc_model_load(&m, model_path, &d)) {
        fprintf(stderr, "fedc eval: %s\n", d.msg);
        goto out;
    }
    if (!label)
        label = m->label_name;
    if (!label) {
        cli_error(CMD, "%s stores no label name: give --label", model_path);
        goto out;
    }
    /* The model's recipe decides how cells become its inputs (only --delimiter and --positive,
     * the test file's own format, may differ from the training file's). Dropped columns are not
     * read at all: identifiers and times may be text. */
    if (fedc_load_opts_from_model(&lo, &op, m, CMD))
        goto out;
    if (drop && cli_str_list(CMD, "--drop", drop, &drop_list, &n_drop))
        goto out;
    fedc_encoding enc = fedc_load_opts_scoring(&lo);
    if (fedc_csv_load_enc(&ds, data, label, (const char *const *)drop_list, n_drop, &enc, &d)) {
        fprintf(stderr, "fedc eval: %s\n", d.msg);
        goto out;
    }
    /* Map the model's features to CSV columns by name. */
    const int nf = m->arch.sizes[0];
    col = malloc((size_t)nf * sizeof(int));
    if (!col) {
        cli_error(CMD, "out of memory");
        rc = FEDC_EXIT_FAIL;
        goto out;
    }
    if (m->feature_names) {
        for (int j = 0; j < nf; j++) {
            col[j] = -1;
            for (int c = 0; c < ds->n_features; c++)
                if (strcmp(ds->feature_names[c], m->feature_names[j]) == 0)
                    col[j] = c;
            if (col[j] < 0) {
                cli_error(CMD, "%s:1: feature column '%s' used by the model is missing", data,
                          m->feature_names[j]);
                goto out;
            }
        }
        if (ds->n_features > nf) {
            fprintf(stderr, "fedc eval: note: ignoring %d column(s) of %s the model does not use:",
                    ds->n_features - nf, data);
            for (int c = 0, shown = 0; c < ds->n_features && shown < 8; c++) {
                int used = 0;
                for (int j = 0; j < nf && !used; j++)
                    used = col[j] == c;
                if (!used) {
                    fprintf(stderr, " %s", ds->feature_names[c]);
                    shown++;
                }
            }
            fprintf(stderr, "\n");
        }
    } else {
        if (ds->n_features != nf) {
            cli_error(CMD, "%s has %d feature columns, the model expects %d", data, ds->n_features,
                      nf);
            goto out;
        }
        for (int j = 0; j < nf; j++)
            col[j] = j;
    }
    for (int i = 0; i < ds->n_rows; i++) {
        float y = ds->y[i];
        int ok = m->arch.task == FEDC_TASK_REGRESSION ||
                 (y >= 0.0f && y < (float)m->arch.n_classes && y == floorf(y));
        if (!ok) {
            cli_error(CMD, "%s:%d: label %g is not valid for this %s model", data, i + 2, (double)y,
                      fedc_task_name(m->arch.task));
            goto out;
        }
    }
    rc = FEDC_EXIT_FAIL;
    if (fedc_dataset_new(&sel, ds->n_rows, nf)) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    for (int i = 0; i < ds->n_rows; i++) {
        for (int j = 0; j < nf; j++)
            sel->x[(size_t)i * nf + j] = ds->x[(size_t)i * ds->n_features + col[j]];
        sel->y[i] = ds->y[i];
    }
    if (fedc_load_opts_fill(sel, &lo, data, CMD)) {
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    cli_setup_threads(threads);
    pred =
        malloc((size_t)(ds->n_rows > 0 ? ds->n_rows : 1) * fedc_model_out_width(m) * sizeof(float));
    if (!pred || fedc_model_predict(pred, m, sel->x, sel->n_rows)) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    cli_metrics mt;
    /* without --threshold, the one chosen in training (the model card), else 0.5 */
    double card_thr;
    if (!fedc_opt_given(&op, FEDC_O_THRESHOLD) && m->arch.task == FEDC_TASK_BINARY &&
        fedc_card_threshold(m, &card_thr) == 0) {
        threshold = (float)card_thr;
        printf("threshold %.6g from the model card of %s\n", card_thr, model_path);
    }
    if (cli_compute_metrics(&mt, m, pred, sel, threshold)) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    char title[512];
    snprintf(title, sizeof title, "metrics of %s on %s", model_path, data);
    cli_print_metrics(stdout, title, &mt);
    double cp = NAN; /* card precision@card_k, when asked for */
    if (card_k > 0) {
        int cc = -1, dc = -1;
        for (int c = 0; c < ds->n_features; c++) {
            if (strcmp(ds->feature_names[c], card_col) == 0)
                cc = c;
            if (strcmp(ds->feature_names[c], day_col) == 0)
                dc = c;
        }
        if (m->arch.task != FEDC_TASK_BINARY || cc < 0 || dc < 0) {
            cli_error(CMD,
                      "--card-precision needs a binary model and the columns '%s' and '%s' in "
                      "%s",
                      card_col, day_col, data);
            rc = FEDC_EXIT_USAGE;
            goto out;
        }
        float *card = malloc(sizeof(float) * (size_t)(ds->n_rows ? ds->n_rows : 1));
        float *day = malloc(sizeof(float) * (size_t)(ds->n_rows ? ds->n_rows : 1));
        if (!card || !day) {
            free(card);
            free(day);
            cli_error(CMD, "out of memory");
            goto out;
        }
        for (int i = 0; i < ds->n_rows; i++) {
            card[i] = ds->x[(size_t)i * ds->n_features + cc];
            day[i] = ds->x[(size_t)i * ds->n_features + dc];
        }
        int days = 0;
        cp = cli_card_precision(pred, ds->y, card, day, ds->n_rows, card_k, &days);
        free(card);
        free(day);
        printf("  card precision@%d  %.4f  (mean over %d days)\n", card_k, cp, days);
    }
    if (json) {
        fedc_json j;
        fedc__json_begin(&j);
        cli_metrics_json(&j, &mt);
        if (card_k > 0) {
            fedc__json_int(&j, "card_precision_k", card_k);
            fedc__json_fixed(&j, "card_precision", cp, 6);
        }
        int wrc = cli_write_json(CMD, "--metrics-json", json, &j);
        fedc__json_end(&j);
        if (wrc)
            goto out;
    }
    rc = FEDC_EXIT_OK;
out:
    free(pred);
    free(col);
    cli_free_list(drop_list);
    fedc_model_destroy(&m);
    fedc_dataset_destroy(&ds);
    fedc_dataset_destroy(&sel);
    fedc_load_opts_release(&lo);
    return rc;
}
