/* fedc predict on a model trained with a loader encoding (predict.h, pred_enc_setup): the model's
 * features are laid out as the loader made them (fedc/encode.h): a numeric column COL, then
 * COL_MISSING right after it when its indicator was asked for; a categorical column COL as the
 * one-hot features COL=h0 .. COL=h{N-1}. This reads that layout back from the feature names and
 * the recipe, and maps each source column of the file to it, so that a row is encoded exactly as
 * the training rows were: the same hash key and bucket count, missing cells filled with the
 * recipe's imputation values (the training means, or 0), never this file's own. Also the other
 * half of what a model's recipe asks of predict's input: the separator, and raw transactions
 * turned into the features of the recipe's spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fedc/card.h"
#include "fedc/csv.h"
#include "fedc/data.h"
#include "fedc/features_spec.h"
#include "fedc/model.h"
#include "fedc/recipe.h"
#include "loadopts.h"
#include "predict.h"

#define CMD "predict"

static int col_of(char *const *names, int n_cols, const char *name, size_t n) {
    for (int c = 0; c < n_cols; c++)
        if (strlen(names[c]) == n && memcmp(names[c], name, n) == 0)
            return c;
    return -1;
}

/* Whether feature name is "COL=h<k>" for a categorical column: its length of COL, else 0. */
static size_t cat_prefix(const char *name, const fedc_encoding *e, int k) {
    for (int i = 0; i < e->n_categorical; i++) {
        size_t n = strlen(e->categorical[i]);
        char want[32];
        snprintf(want, sizeof want, "%s%d", FEDC_HASH_INFIX, k);
        if (strncmp(name, e->categorical[i], n) == 0 && strcmp(name + n, want) == 0)
            return n;
    }
    return 0;
}

int pred_enc_setup(pred_enc *out, int *role, char *const *names, int n_cols, const fedc_model *m,
                   const char *enc_json, const char *data) {
    memset(out, 0, sizeof *out);
    fedc_recipe_enc r;
    fedc_diag d = {{0}};
    if (fedc_encoding_from_json(&r, enc_json, &d)) {
        cli_error(CMD, "the model's encoding: %s", d.msg);
        return -1;
    }
    const fedc_encoding *e = &r.enc;
    const int nf = m->arch.sizes[0];
    int rc = -1;
    if (!m->feature_names) {
        cli_error(CMD, "the model records an encoding but no feature names: cannot map columns");
        goto out;
    }
    if (e->impute && e->n_impute != nf) {
        cli_error(CMD, "the model's encoding holds %d imputation values for %d features",
                  e->n_impute, nf);
        goto out;
    }
    out->missing = (int)e->missing;
    memcpy(out->key, e->hash_key, 16);
    if (!(out->src = calloc((size_t)nf, sizeof *out->src))) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    for (int j = 0; j < nf;) {
        const char *name = m->feature_names[j];
        pred_src *s = &out->src[out->n_src];
        size_t pn = cat_prefix(name, e, 0);
        int c;
        if (pn > 0) {
            /* COL=h0 .. COL=h{N-1}, in order */
            for (int k = 0; k < e->hash_buckets; k++)
                if (j + k >= nf || cat_prefix(m->feature_names[j + k], e, k) != pn) {
                    cli_error(CMD,
                              "the model's features do not follow its encoding: %.*s%s%d "
                              "expected as feature %d",
                              (int)pn, name, FEDC_HASH_INFIX, k, j + k + 1);
                    goto out;
                }
            c = col_of(names, n_cols, name, pn);
            if (c < 0) {
                cli_error(CMD, "%s:1: categorical column '%.*s' used by the model is missing", data,
                          (int)pn, name);
                goto out;
            }
            *s = (pred_src){PRED_SRC_CAT, j, -1, e->hash_buckets, 0.0f};
            j += e->hash_buckets;
        } else {
            size_t n = strlen(name);
            c = col_of(names, n_cols, name, n);
            if (c < 0) {
                cli_error(CMD, "%s:1: feature column '%s' used by the model is missing", data,
                          name);
                goto out;
            }
            int ind = -1;
            if (e->missing != FEDC_MISSING_ERROR && j + 1 < nf) {
                const char *nx = m->feature_names[j + 1];
                if (strncmp(nx, name, n) == 0 && strcmp(nx + n, FEDC_MISSING_SUFFIX) == 0 &&
                    col_of(names, n_cols, nx, strlen(nx)) < 0)
                    ind = j + 1;
            }
            float imp = e->missing == FEDC_MISSING_MEAN && e->impute ? e->impute[j] : 0.0f;
            *s = (pred_src){PRED_SRC_NUM, j, ind, 0, imp};
            j += ind >= 0 ? 2 : 1;
        }
        if (role[c] >= 0) {
            cli_error(CMD, "%s:1: column '%s' feeds two parts of the model", data, names[c]);
            goto out;
        }
        role[c] = out->n_src++;
    }
    rc = 0;
out:
    if (rc)
        pred_enc_release(out);
    fedc_recipe_enc_release(&r);
    return rc;
}

/* The separator (--delimiter, else the recipe's, else ',') and, when the model's encoding is not
 * plain, its JSON for pred_enc_setup. Returns 0, or -1 after a message. */
int pred_load_encoding(char *delim, char **enc_json, const fedc_model *m, const fedc_opts *op) {
    char *ej = fedc_meta_get(m, "encoding");
    fedc_recipe_enc r;
    fedc_diag d = {{0}};
    if (ej) {
        if (fedc_encoding_from_json(&r, ej, &d)) {
            cli_error(CMD, "the model's encoding: %s", d.msg);
            free(ej);
            return -1;
        }
        *delim = r.enc.delimiter ? r.enc.delimiter : ',';
        if (!fedc_encoding_is_plain(&r.enc))
            *enc_json = ej;
        else
            free(ej);
        fedc_recipe_enc_release(&r);
    }
    if (fedc_opt_given(op, FEDC_O_DELIMITER) &&
        fedc_parse_delimiter(&*delim, op->v[FEDC_O_DELIMITER].text)) {
        cli_error(CMD, "--delimiter: expected one separator character (or 'tab'), got '%s'",
                  op->v[FEDC_O_DELIMITER].text);
        return -1;
    }
    return 0;
}

/* Raw transactions (issue 17): when the model's recipe records a fedc features spec and the file
 * has the spec's time column but not the columns the spec computes, the features are computed
 * first, by fedc features itself with that spec, into a temporary file beside the output (removed
 * at the end), which is then scored: rows keep their order and every input column, so --keep and
 * the line numbers of messages still refer to the rows given. Returns 0 (with *tmp_out set to the
 * file to score, or NULL when the file already holds the features), or an exit status. */
int pred_raw_features(const fedc_model *m, const char *data, char delim, const char *out_path,
                      char **tmp_out) {
    *tmp_out = NULL;
    char *spec_json = fedc_meta_get(m, "features");
    if (!spec_json)
        return 0;
    int rc = FEDC_EXIT_USAGE;
    fedc_features_spec sp;
    fedc_diag d = {{0}};
    char *spec_path = NULL, *feat_path = NULL, name[1024];
    fedc_csv_reader *cr = NULL;
    FILE *f = NULL;
    if (fedc_features_spec_from_json(&sp, spec_json, "the model's feature spec", &d)) {
        cli_error(CMD, "%s", d.msg);
        goto out;
    }
    /* the header: the time column there and the first computed column not: raw */
    fedc_csv_limits lim = {FEDC_CSV_MAX_COLUMNS, FEDC_CSV_MAX_FIELD + 8,
                           (size_t)FEDC_CSV_MAX_COLUMNS * (FEDC_CSV_MAX_FIELD + 8)};
    fedc_csv_record hr;
    if (!(f = fopen(data, "rb"))) {
        rc = 0; /* the reader says why, with the usual message */
        goto out;
    }
    if (fedc_csv_open_file(&cr, f, data, &lim, &d) || fedc_csv_set_delimiter(cr, delim) ||
        fedc_csv_next(cr, &hr, &d) || hr.n_fields == 0) {
        rc = 0;
        goto out;
    }
    int has_time = 0, has_feat = 0;
    if (fedc_features_n_columns(&sp) > 0)
        fedc_features_column_name(name, sizeof name, &sp, fedc_features_n_columns(&sp) - 1);
    for (int c = 0; c < hr.n_fields; c++) {
        const char *t = hr.fields[c].s;
        size_t n = hr.fields[c].n;
        while (n && (*t == ' ' || *t == '\t'))
            t++, n--;
        while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
            n--;
        has_time |= n == strlen(sp.time_col) && memcmp(t, sp.time_col, n) == 0;
        has_feat |=
            fedc_features_n_columns(&sp) > 0 && n == strlen(name) && memcmp(t, name, n) == 0;
    }
    if (!has_time || has_feat) {
        rc = 0;
        goto out;
    }
    size_t pl = strlen(out_path) + 32;
    spec_path = malloc(pl);
    feat_path = malloc(pl);
    if (!spec_path || !feat_path) {
        rc = FEDC_EXIT_FAIL;
        goto out;
    }
    snprintf(spec_path, pl, "%s.spec.%ld.json", out_path, (long)getpid());
    snprintf(feat_path, pl, "%s.features.%ld.csv", out_path, (long)getpid());
    if (fedc_features_spec_save(&sp, spec_path, &d)) {
        cli_error(CMD, "%s", d.msg);
        rc = FEDC_EXIT_FAIL;
        goto out;
    }
    fprintf(stderr,
            "fedc predict: %s holds raw transactions: computing the model's features (its "
            "recipe's fedc features spec) into %s first\n",
            data, feat_path);
    char dl[2] = {delim, 0};
    char *fargv[] = {"features", "--data",  (char *)data,  "--spec", spec_path,
                     "--out",    feat_path, "--delimiter", dl,       NULL};
    int frc = cmd_features(delim == ',' ? 7 : 9, fargv);
    unlink(spec_path);
    if (frc) {
        unlink(feat_path);
        rc = frc;
        goto out;
    }
    *tmp_out = feat_path;
    feat_path = NULL;
    rc = 0;
out:
    fedc_csv_close(&cr);
    if (f)
        fclose(f);
    fedc_features_spec_release(&sp);
    free(spec_json);
    free(spec_path);
    free(feat_path);
    return rc;
}

void pred_enc_release(pred_enc *e) {
    free(e->src);
    e->src = NULL;
    e->n_src = 0;
}
