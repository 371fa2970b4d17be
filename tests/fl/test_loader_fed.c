/* The loader's encodings end to end (issue 16): a federation in which one client hashes its
 * categorical column into 16 buckets while the others use 32 refuses it at join, naming the
 * encoding, and the others train; a federation under --missing mean fills every client's missing
 * cells with round 0's federation-wide means (summed securely), which the test computes from all
 * shards and checks in the clients' logs and in the model's recipe; fedc train with --missing
 * mean and --categorical stores the training means, and fedc eval fills another file's gaps with
 * them, never with that file's own means.
 *
 * Arguments: fedc-coordinator, fedc-client, fedc. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fed.h"
#include "fed_expect.h"
#include "fedc/card.h"
#include "fedc/model.h"
#include "fedc/modelfile.h"
#include "fedc/recipe.h"

#define START_TIMEOUT 20
#define RUN_TIMEOUT 120

static const char *g_coord, *g_client, *g_fedc;

static int setup(void **state) {
    return fed_pair_setup(state, "fedc-test-loader-", g_coord, g_client);
}

static int teardown(void **state) {
    return fed_pair_teardown(state);
}

static const char *const g_mcc[] = {"5411", "7995", "grocery", "fuel", "travel, air", "\"quoted\""};

/* Writes a shard of n rows: x1 (numeric, missing in every `gap`-th row from `first`, spelled in
 * turn as empty, NA and NaN; 0: never), x2, MCC (text) and bad (0/1). Values depend on k so that
 * shards differ in their means. present_sum/present_n get x1's present values. */
static void write_shard(const char *path, int k, int n, int gap, int first, double *present_sum,
                        int *present_n) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "x1,x2,MCC,bad\n");
    const char *gaps[] = {"", "NA", "NaN"};
    for (int i = 0; i < n; i++) {
        int mcc = (i * 7 + k) % 6;
        double x1 = 10.0 * k + (i % 13) * 0.25, x2 = ((i * 31 + k) % 17) / 4.0;
        int bad = (x2 > 2.0) ^ (mcc == 1);
        if (gap && i >= first && (i - first) % gap == 0) {
            fprintf(f, "%s,", gaps[(i / gap) % 3]);
        } else {
            char t[32];
            snprintf(t, sizeof t, "%.9g", x1);
            fprintf(f, "%s,", t);
            *present_sum += strtod(t, NULL);
            (*present_n)++;
        }
        fprintf(f, "%.9g,", x2);
        const char *m = g_mcc[mcc];
        if (strchr(m, ',') || strchr(m, '"')) {
            fputc('"', f);
            for (const char *c = m; *c; c++) {
                if (*c == '"')
                    fputc('"', f);
                fputc(*c, f);
            }
            fputc('"', f);
        } else {
            fputs(m, f);
        }
        fprintf(f, ",%d\n", bad);
    }
    assert_int_equal(fclose(f), 0);
}

static void test_other_bucket_count_refused(void **state) {
    fed_pair *c = *state;
    fed *f = &c->f[0];
    char *shard[4], *model = fed_fpath(f, "model.fedc");
    double s = 0;
    int n = 0;
    for (int k = 0; k < 4; k++) {
        char nm[32];
        snprintf(nm, sizeof nm, "shard%d.csv", k);
        shard[k] = fed_fpath(f, nm);
        write_shard(shard[k], k, 120, 0, 0, &s, &n);
    }
    const char *args[] = {
        "--min-clients",   "3",  "--rounds",       "2",  "--local-epochs", "1",   "--layers", "8",
        "--round-timeout", "40", "--wait-timeout", "30", "--model-out",    model, NULL};
    const char *cat32[] = {"--categorical", "MCC", NULL};
    const char *cat16[] = {"--categorical", "MCC", "--hash-buckets", "16", NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    assert_true(fed_start_client(f, "bank-a", shard[0], NULL, cat32) >= 0);
    assert_int_equal(fed_wait_text(f->coord.err, "schema fixed by", 0, f->coord.pid, 15), 0);
    assert_true(fed_start_client(f, "bank-b", shard[1], NULL, cat32) >= 0);
    int x = fed_start_client(f, "bank-x", shard[3], NULL, cat16);
    assert_true(x >= 0);
    fed_expect_exit(&f->cl[x], 20, 2);
    assert_true(fed_start_client(f, "bank-c", shard[2], NULL, cat32) >= 0);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    fed_expect_exit(&f->cl[0], 15, 0);
    fed_expect_exit(&f->cl[1], 15, 0);
    fed_expect_exit(&f->cl[3], 15, 0);
    char *ex = proc_read_file(f->cl[x].err, NULL);
    assert_non_null(ex);
    print_message("bank-x: %s", strstr(ex, "refused") ? strstr(ex, "refused") : ex);
    assert_non_null(strstr(ex, "refused"));
    assert_non_null(strstr(ex, "encoding: categorical column MCC hashed into 16 buckets, the "
                               "federation uses 32"));
    assert_true(fed_file_has(f->coord.err, "hashed into 16 buckets"));
    /* The model has x1, x2, 32 one-hot columns, and the agreed encoding in its recipe. */
    fedc_model *m = NULL;
    fedc_diag d;
    assert_int_equal(fedc_model_load(&m, model, &d), FEDC_OK);
    assert_int_equal(m->arch.sizes[0], 2 + 32);
    assert_string_equal(m->feature_names[2], "MCC=h0");
    char *enc = fedc_meta_get(m, "encoding");
    assert_non_null(enc);
    fedc_recipe_enc r;
    assert_int_equal(fedc_encoding_from_json(&r, enc, &d), FEDC_OK);
    assert_int_equal(r.enc.hash_buckets, 32);
    assert_int_equal(r.enc.n_categorical, 1);
    fedc_recipe_enc_release(&r);
    free(enc);
    fedc_model_destroy(&m);
    free(ex);
    for (int k = 0; k < 4; k++)
        free(shard[k]);
    free(model);
    c->ok = 1;
}

/* The value a client's log gives for column name: "...name=VALUE...". */
static double logged_value(const char *path, const char *name) {
    char *t = proc_read_file(path, NULL);
    assert_non_null(t);
    char key[64];
    snprintf(key, sizeof key, "%s=", name);
    const char *p = strstr(t, "filled with the federation's means");
    assert_non_null(p);
    p = strstr(p, key);
    assert_non_null(p);
    double v = strtod(p + strlen(key), NULL);
    free(t);
    return v;
}

static void test_missing_mean_from_round_zero(void **state) {
    fed_pair *c = *state;
    fed *f = &c->f[0];
    char *shard[3], *model = fed_fpath(f, "model.fedc");
    double sum = 0, local[3];
    int n = 0;
    for (int k = 0; k < 3; k++) {
        char nm[32];
        snprintf(nm, sizeof nm, "shard%d.csv", k);
        shard[k] = fed_fpath(f, nm);
        double s = 0;
        int m = 0;
        write_shard(shard[k], k, 90 + 30 * k, 4 + k, k, &s, &m); /* different gaps per shard */
        local[k] = s / m;
        sum += s;
        n += m;
    }
    /* The federation-wide mean of x1's present cells, and proof that it tells apart a client
     * that used its own. */
    double want = sum / n;
    for (int k = 0; k < 3; k++)
        assert_true(fabs(local[k] - want) > 1.0);
    /* Every row trains (no validation share), so round 0 sums every row. */
    const char *args[] = {
        "--min-clients",  "3",   "--rounds", "2",  "--local-epochs",  "1",  "--layers",       "8",
        "--val-fraction", "0",   "--secagg", "on", "--round-timeout", "40", "--wait-timeout", "30",
        "--model-out",    model, NULL};
    const char *cargs[] = {"--missing", "mean", "--categorical", "MCC", NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    const char *names[] = {"bank-a", "bank-b", "bank-c"};
    for (int k = 0; k < 3; k++)
        assert_true(fed_start_client(f, names[k], shard[k], NULL, cargs) >= 0);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int k = 0; k < 3; k++)
        fed_expect_exit(&f->cl[k], 15, 0);
    assert_true(fed_file_has(f->coord.err, "--missing mean"));
    for (int k = 0; k < 3; k++) {
        double got = logged_value(f->cl[k].err, "x1");
        print_message("%s filled x1 with %.9g; federation mean %.9g, its own %.9g\n", names[k], got,
                      want, local[k]);
        assert_true(fabs(got - want) <= 1e-5 * fabs(want));
    }
    fedc_model *m = NULL;
    fedc_diag d;
    assert_int_equal(fedc_model_load(&m, model, &d), FEDC_OK);
    assert_string_equal(m->feature_names[0], "x1");
    assert_string_equal(m->feature_names[1], "x1_MISSING");
    char *enc = fedc_meta_get(m, "encoding");
    assert_non_null(enc);
    fedc_recipe_enc r;
    assert_int_equal(fedc_encoding_from_json(&r, enc, &d), FEDC_OK);
    assert_int_equal(r.enc.missing, FEDC_MISSING_MEAN);
    assert_int_equal(r.enc.n_impute, m->arch.sizes[0]);
    assert_true(fabs(r.enc.impute[0] - want) <= 1e-5 * fabs(want));
    fedc_recipe_enc_release(&r);
    free(enc);
    fedc_model_destroy(&m);
    for (int k = 0; k < 3; k++)
        free(shard[k]);
    free(model);
    c->ok = 1;
}

/* Copies src to dst with every missing x1 cell (empty, NA, NaN in the first column) replaced by
 * the text fill. */
static void fill_file(const char *src, const char *dst, const char *fill) {
    char *t = proc_read_file(src, NULL);
    assert_non_null(t);
    FILE *f = fopen(dst, "w");
    assert_non_null(f);
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        char *comma = strchr(line, ',');
        size_t k = (size_t)(comma - line);
        int gap = k == 0 || (k == 2 && strncmp(line, "NA", 2) == 0) ||
                  (k == 3 && strncmp(line, "NaN", 3) == 0);
        if (gap)
            fprintf(f, "%s%s\n", fill, comma);
        else
            fprintf(f, "%s\n", line);
    }
    assert_int_equal(fclose(f), 0);
    free(t);
}

static char *run_eval(const char *model, const char *data, const char *json) {
    proc_result r;
    const char *argv[] = {g_fedc, "eval",           "--model", model, "--data",
                          data,   "--metrics-json", json,      NULL};
    assert_int_equal(proc_run(&r, argv, NULL, 60), 0);
    if (r.status != 0)
        print_message("fedc eval: %s\n", r.err);
    assert_int_equal(r.status, 0);
    proc_result_release(&r);
    char *t = proc_read_file(json, NULL);
    assert_non_null(t);
    /* The metrics, without the keys that name the file or time. */
    char *p = strstr(t, "\"rows\"");
    return p ? memmove(t, p, strlen(p) + 1) : t;
}

static void test_train_eval_recipe(void **state) {
    fed_pair *c = *state;
    fed *f = &c->f[0];
    char *a = fed_fpath(f, "a.csv"), *b = fed_fpath(f, "b.csv"), *bt = fed_fpath(f, "bt.csv"),
         *bo = fed_fpath(f, "bo.csv"), *model = fed_fpath(f, "m.fedc");
    char *j1 = fed_fpath(f, "1.json"), *j2 = fed_fpath(f, "2.json"), *j3 = fed_fpath(f, "3.json");
    double sa = 0, sb = 0;
    int na = 0, nb = 0;
    write_shard(a, 0, 200, 5, 1, &sa, &na);
    write_shard(b, 2, 80, 3, 0, &sb, &nb); /* another missing pattern, another mean */
    double train_mean = sa / na, own_mean = sb / nb;
    proc_result r;
    const char *argv[] = {g_fedc,
                          "train",
                          "--data",
                          a,
                          "--label",
                          "bad",
                          "--missing",
                          "mean",
                          "--missing-indicators",
                          "none",
                          "--categorical",
                          "MCC",
                          "--hash-buckets",
                          "8",
                          "--val-fraction",
                          "0",
                          "--test-fraction",
                          "0",
                          "--epochs",
                          "3",
                          "--layers",
                          "4",
                          "--quiet",
                          "--out",
                          model,
                          NULL};
    assert_int_equal(proc_run(&r, argv, NULL, 120), 0);
    if (r.status != 0)
        print_message("fedc train: %s\n", r.err);
    assert_int_equal(r.status, 0);
    proc_result_release(&r);
    fedc_model *m = NULL;
    fedc_diag d;
    assert_int_equal(fedc_model_load(&m, model, &d), FEDC_OK);
    assert_int_equal(m->arch.sizes[0], 2 + 8);
    char *enc = fedc_meta_get(m, "encoding");
    assert_non_null(enc);
    fedc_recipe_enc rec;
    assert_int_equal(fedc_encoding_from_json(&rec, enc, &d), FEDC_OK);
    assert_int_equal(rec.enc.n_impute, 10);
    print_message("recipe: %s\n", enc);
    assert_true(fabs(rec.enc.impute[0] - train_mean) <= 1e-5 * fabs(train_mean));
    char fill_train[32], fill_own[32];
    snprintf(fill_train, sizeof fill_train, "%.9g", (double)rec.enc.impute[0]);
    snprintf(fill_own, sizeof fill_own, "%.9g", own_mean);
    fedc_recipe_enc_release(&rec);
    free(enc);
    fedc_model_destroy(&m);
    assert_true(fabs(train_mean - own_mean) > 1.0);
    /* b with gaps scores as b with the training mean written in, not as b with its own. */
    fill_file(b, bt, fill_train);
    fill_file(b, bo, fill_own);
    char *mb = run_eval(model, b, j1), *mt = run_eval(model, bt, j2), *mo = run_eval(model, bo, j3);
    print_message("gaps: %s\ntraining mean: %s\nown mean: %s\n", mb, mt, mo);
    assert_string_equal(mb, mt);
    assert_string_not_equal(mb, mo);
    free(mb);
    free(mt);
    free(mo);
    free(a);
    free(b);
    free(bt);
    free(bo);
    free(model);
    free(j1);
    free(j2);
    free(j3);
    c->ok = 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s FEDC-COORDINATOR FEDC-CLIENT FEDC\n", argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    g_fedc = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_train_eval_recipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_bucket_count_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_mean_from_round_zero, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
