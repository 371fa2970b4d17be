/* fedc predict on a model trained with a loader encoding (predict.h, pred_enc_setup): the model's
 * features are laid out as the loader made them (fedc/encode.h): a numeric column COL, then
 * COL_MISSING right after it when its indicator was asked for; a categorical column COL as the
 * one-hot features COL=h0 .. COL=h{N-1}. This reads that layout back from the feature names and
 * the recipe, and maps each source column of the file to it, so that a row is encoded exactly as
 * the training rows were: the same hash key and bucket count, missing cells filled with the
 * recipe's imputation values (the training means, or 0), never this file's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fedc/model.h"
#include "fedc/recipe.h"
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

void pred_enc_release(pred_enc *e) {
    free(e->src);
    e->src = NULL;
    e->n_src = 0;
}
