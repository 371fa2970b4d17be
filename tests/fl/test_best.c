/* Best-model selection and the model card (issue 17), on a real federation: three clients on
 * German credit with settings that overfit (a large learning rate, many local epochs), so that
 * the federated validation PR-AUC peaks before the last round. Checked independently of the
 * coordinator's own bookkeeping: the best round is recomputed here from the metrics file, the
 * best model file must hold that round's model (its card names the round and carries that
 * round's validation metrics), and it must differ from the last round's model. Also: the metrics
 * line's best_round at every round is the running argmax, --select-metric loss picks the round of
 * least validation loss, and fedc inspect prints the card (text and --json), and says so for a
 * version 1 file that has none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed.h"
#include "fed_expect.h"
#include "fedc/card.h"
#include "fedc/modelfile.h"

#define RUN_TIMEOUT 90
#define START_TIMEOUT 15
#define ROUNDS 12

static const char *g_coord, *g_client, *g_fedc;

typedef fed_pair ctx;

static int setup(void **state) {
    return fed_pair_setup(state, "fedc-test-best-", g_coord, g_client);
}

static int teardown(void **state) {
    return fed_pair_teardown(state);
}

/* Runs the federation with --select-metric metric; fills the paths (caller frees). */
static void run_fed_x(fed *f, const char *metric, const char *const *extra, char **metrics,
                      char **best, char **last) {
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    *metrics = fed_fpath(f, "rounds.jsonl");
    *best = fed_fpath(f, "best.fedc");
    *last = fed_fpath(f, "last.fedc");
    const char *base[] = {"--min-clients",
                          "3",
                          "--rounds",
                          "12",
                          "--seed",
                          "3",
                          "--lr",
                          "0.03",
                          "--local-epochs",
                          "8",
                          "--layers",
                          "64,64",
                          "--metrics-json",
                          *metrics,
                          "--best-model-out",
                          *best,
                          "--model-out",
                          *last,
                          "--select-metric",
                          metric};
    const char *args[40];
    int na = 0;
    for (size_t i = 0; i < sizeof base / sizeof *base; i++)
        args[na++] = base[i];
    for (int i = 0; extra && extra[i]; i++)
        args[na++] = extra[i];
    args[na] = NULL;
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    for (int k = 0; k < 3; k++) {
        char name[16], file[16];
        snprintf(name, sizeof name, "bank-%c", 'a' + k);
        snprintf(file, sizeof file, "shard%d.csv", k);
        char *csv = fed_fpath(f, file);
        assert_true(fed_start_client(f, name, csv, NULL, NULL) >= 0);
        free(csv);
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int k = 0; k < 3; k++)
        fed_expect_exit(&f->cl[k], 20, 0);
}

static void run_fed(fed *f, const char *metric, char **metrics, char **best, char **last) {
    run_fed_x(f, metric, NULL, metrics, best, last);
}

/* The metrics file's lines as cJSON objects (caller deletes each); returns the count. */
static int read_lines(const char *path, cJSON **out, int max) {
    size_t len = 0;
    char *text = proc_read_file(path, &len);
    assert_non_null(text);
    int n = 0;
    for (char *p = text; *p && n < max;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        out[n] = cJSON_Parse(p);
        assert_non_null(out[n]);
        n++;
        if (!nl)
            break;
        p = nl + 1;
    }
    free(text);
    return n;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static fedc_model *load(const char *path) {
    fedc_model *m = NULL;
    fedc_diag d;
    if (fedc_model_load(&m, path, &d))
        print_message("%s\n", d.msg);
    assert_non_null(m);
    return m;
}

/* The card of m as a cJSON object (caller deletes). */
static cJSON *card_of(const fedc_model *m) {
    assert_non_null(m->meta);
    cJSON *meta = cJSON_Parse(m->meta);
    assert_non_null(meta);
    cJSON *card = cJSON_DetachItemFromObjectCaseSensitive(meta, "card");
    cJSON_Delete(meta);
    assert_true(cJSON_IsObject(card));
    return card;
}

/* The selection: run the federation with `metric` (key in the metrics line: val_<metric>,
 * higher or lower better) and check the best model against the metrics file. Returns the best
 * round. */
static int check_selection(fed *f, const char *metric, int higher) {
    char *metrics, *best, *last;
    run_fed(f, metric, &metrics, &best, &last);
    cJSON *lines[ROUNDS + 4];
    int n = read_lines(metrics, lines, ROUNDS + 4);
    assert_int_equal(n, ROUNDS);
    char key[32];
    snprintf(key, sizeof key, "val_%s", metric);
    /* the running best, recomputed from the printed values (6 significant digits: the
     * coordinator compares the exact ones, so near-ties are accepted either way) */
    int arg = 0;
    double top = 0;
    for (int i = 0; i < n; i++) {
        double v = num(lines[i], key);
        if (i == 0 || (higher ? v > top : v < top)) {
            top = v;
            arg = i;
        }
        int b = (int)num(lines[i], "best_round");
        assert_true(b >= 1 && b <= i + 1);
        double bv = num(lines[b - 1], key);
        assert_true(fabs(bv - top) <= 1e-5 * fabs(top));
        assert_true(fabs(num(lines[i], "best_value") - bv) <= 1e-5 * fabs(bv));
    }
    arg = (int)num(lines[n - 1], "best_round") - 1;
    top = num(lines[arg], key);
    int best_round = arg + 1;
    print_message("%s: best round %d of %d (%.6g; last %.6g)\n", metric, best_round, n, top,
                  num(lines[n - 1], key));
    /* the premise of this test: the metric peaks before the end */
    assert_true(best_round < ROUNDS);

    fedc_model *mb = load(best), *ml = load(last);
    cJSON *cb = card_of(mb), *cl = card_of(ml);
    assert_int_equal((int)num(cb, "round"), best_round);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cb, "selection")->valuestring, "best");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cb, "selected_by")->valuestring, metric);
    assert_int_equal((int)num(cl, "round"), ROUNDS);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cl, "selection")->valuestring, "last");
    /* the card's validation metrics are that round's line */
    const cJSON *vb = cJSON_GetObjectItemCaseSensitive(cb, "validation");
    assert_true(num(vb, key) == num(lines[arg], key));
    assert_true(num(vb, "val_pr_auc") == num(lines[arg], "val_pr_auc"));
    /* the threshold is the round's alert threshold */
    assert_true(num(cb, "threshold") == num(lines[arg], "val_alert_threshold"));
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(cb, "run");
    assert_int_equal((int)num(run, "rounds"), ROUNDS);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(run, "dp_epsilon")));
    /* a different model from the last round's */
    assert_int_equal(mb->n_params, ml->n_params);
    assert_memory_not_equal(mb->params, ml->params, mb->n_params * sizeof(float));
    double thr;
    assert_int_equal(fedc_card_threshold(mb, &thr), 0);

    cJSON_Delete(cb);
    cJSON_Delete(cl);
    fedc_model_destroy(&mb);
    fedc_model_destroy(&ml);
    for (int i = 0; i < n; i++)
        cJSON_Delete(lines[i]);
    free(metrics);
    free(best);
    free(last);
    return best_round;
}

static void test_best_by_pr_auc(void **state) {
    ctx *c = *state;
    check_selection(&c->f[0], "pr_auc", 1);
    c->ok = 1;
}

static void test_best_by_loss(void **state) {
    ctx *c = *state;
    check_selection(&c->f[0], "loss", 0);
    c->ok = 1;
}

/* --patience 3: the run stops 3 rounds after its best round, and --model-out holds the best
 * round's model (the same parameters as --best-model-out), its card saying so; --rounds 12 is
 * the maximum. */
static void test_patience(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    char *metrics, *best, *last;
    const char *extra[] = {"--patience", "3", NULL};
    run_fed_x(f, "pr_auc", extra, &metrics, &best, &last);
    cJSON *lines[ROUNDS + 4];
    int n = read_lines(metrics, lines, ROUNDS + 4);
    int b = (int)num(lines[n - 1], "best_round");
    print_message("patience 3: %d rounds run, best round %d\n", n, b);
    assert_true(n < ROUNDS);
    assert_int_equal(n, b + 3);
    for (int i = b; i < n; i++) /* no later round beat it */
        assert_true(num(lines[i], "val_pr_auc") <= num(lines[b - 1], "val_pr_auc"));
    assert_true(fed_file_has(f->coord.err, "stopping early after round"));
    fedc_model *mb = load(best), *ml = load(last);
    assert_memory_equal(mb->params, ml->params, mb->n_params * sizeof(float));
    cJSON *cl = card_of(ml);
    assert_int_equal((int)num(cl, "round"), b);
    assert_int_equal((int)num(cl, "rounds_run"), n);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cl, "selection")->valuestring, "best");
    cJSON_Delete(cl);
    fedc_model_destroy(&mb);
    fedc_model_destroy(&ml);
    for (int i = 0; i < n; i++)
        cJSON_Delete(lines[i]);
    free(metrics);
    free(best);
    free(last);
    c->ok = 1;
}

/* A run whose metric still improves in its last round says so (a small learning rate over 3
 * rounds: the validation loss falls every round). */
static void test_still_improving(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    char *metrics, *best, *last;
    const char *extra[] = {"--rounds", "3", "--lr", "0.001", "--local-epochs", "1", NULL};
    run_fed_x(f, "loss", extra, &metrics, &best, &last);
    cJSON *lines[8];
    int n = read_lines(metrics, lines, 8);
    assert_int_equal(n, 3);
    assert_true(num(lines[2], "val_loss") < num(lines[1], "val_loss"));
    assert_true(fed_file_has(f->coord.err, "still improved in the last round"));
    for (int i = 0; i < n; i++)
        cJSON_Delete(lines[i]);
    free(metrics);
    free(best);
    free(last);
    c->ok = 1;
}

/* The warnings where users go wrong (issue 19), one line each with the flag that fixes it: a
 * client with fewer than 10 steps per round, a positive class under 0.5% without a class weight,
 * validation data with fewer than 30 positives. Shards of 400 rows with 1 positive each (label
 * column bad, like German credit's), batch 256, one local epoch. */
static void test_warnings(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    uint64_t x = 88172645463325252ull;
    for (int k = 0; k < 3; k++) {
        char name[16];
        snprintf(name, sizeof name, "rare%d.csv", k);
        char *path = fed_fpath(f, name);
        FILE *o = fopen(path, "w");
        assert_non_null(o);
        fprintf(o, "a,b,bad\n");
        for (int i = 0; i < 400; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 (Marsaglia 2003) */
            fprintf(o, "%.4f,%.4f,%d\n", (double)(x % 10000) / 1000.0,
                    (double)((x >> 20) % 10000) / 1000.0, i == 17 ? 1 : 0);
        }
        assert_int_equal(fclose(o), 0);
        free(path);
    }
    char *metrics = fed_fpath(f, "rounds.jsonl");
    const char *args[] = {"--min-clients",  "3",     "--rounds", "1", "--batch", "256",
                          "--metrics-json", metrics, NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    for (int k = 0; k < 3; k++) {
        char name[16], file[16];
        snprintf(name, sizeof name, "bank-%c", 'a' + k);
        snprintf(file, sizeof file, "rare%d.csv", k);
        char *csv = fed_fpath(f, file);
        assert_true(fed_start_client(f, name, csv, NULL, NULL) >= 0);
        free(csv);
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int k = 0; k < 3; k++)
        fed_expect_exit(&f->cl[k], 20, 0);
    assert_true(fed_file_has(f->coord.err, "has no class weight: --pos-weight auto"));
    assert_true(fed_file_has(f->coord.err, "fewer than 30"));
    assert_true(fed_file_has(f->coord.err, "raise --val-fraction"));
    for (int k = 0; k < 3; k++)
        assert_true(fed_file_has(f->cl[k].err, "fewer than 10 steps"));
    free(metrics);
    c->ok = 1;
}

/* fedc inspect on the best model (text and --json), and on the same model as a version 1 file. */
static void test_inspect(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    char *metrics, *best, *last;
    run_fed(f, "pr_auc", &metrics, &best, &last);
    const char *argv[] = {g_fedc, "inspect", best, NULL};
    proc_result r;
    assert_int_equal(proc_run(&r, argv, NULL, 30), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "threshold_rule"));
    assert_non_null(strstr(r.out, "selection              best"));
    assert_non_null(strstr(r.out, "24-64-64-1"));
    proc_result_release(&r);
    const char *argj[] = {g_fedc, "inspect", best, "--json", NULL};
    assert_int_equal(proc_run(&r, argj, NULL, 30), 0);
    assert_int_equal(r.status, 0);
    cJSON *o = cJSON_Parse(r.out);
    assert_non_null(o);
    const cJSON *card = cJSON_GetObjectItemCaseSensitive(o, "card");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(o, "model");
    assert_true(cJSON_IsObject(card) && cJSON_IsObject(model));
    assert_int_equal((int)num(model, "parameters"), 24 * 64 + 64 + 64 * 64 + 64 + 64 + 1);
    cJSON_Delete(o);
    proc_result_release(&r);

    /* a version 1 file: the same bytes without the recipe */
    fedc_model *m = load(best);
    assert_int_equal(fedc_model_set_meta(m, NULL), FEDC_OK);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fedc_model_encode(&buf, &len, m), FEDC_OK);
    memmove(buf + len - 8, buf + len - 4, 4); /* drop the empty recipe's length */
    len -= 4;
    buf[8] = 1;
    uint32_t crc = fedc_crc32(buf, len - 4);
    for (int i = 0; i < 4; i++)
        buf[len - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    char *old = fed_fpath(f, "v1.fedc");
    fedc_diag d;
    assert_int_equal(fedc_write_atomic(old, buf, len, &d), FEDC_OK);
    const char *argo[] = {g_fedc, "inspect", old, NULL};
    assert_int_equal(proc_run(&r, argo, NULL, 30), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "card: none"));
    proc_result_release(&r);
    /* not a model: exit 2 naming the file */
    const char *argb[] = {g_fedc, "inspect", metrics, NULL};
    assert_int_equal(proc_run(&r, argb, NULL, 30), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, metrics));
    proc_result_release(&r);
    free(old);
    free(buf);
    fedc_model_destroy(&m);
    free(metrics);
    free(best);
    free(last);
    c->ok = 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: test_best FEDC-COORDINATOR FEDC-CLIENT FEDC\n");
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    g_fedc = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_best_by_pr_auc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_best_by_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inspect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patience, setup, teardown),
        cmocka_unit_test_setup_teardown(test_still_improving, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warnings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
