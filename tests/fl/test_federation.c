/* A whole federation as local processes (fedc-coordinator argv[1], fedc-client argv[2]) on
 * loopback TCP: three clients on German credit shards finish ten rounds and learn; FedAvg of one
 * client for one round and one epoch equals that epoch trained in-process with core/nn; and the
 * final model is bit-identical whatever order the clients answer in and whatever the thread
 * count. Faults (dead, frozen, late and refused clients; a coordinator restart) are in
 * test_faults.c, hostile messages in tests/net/test_protocol.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed.h"
#include "fed_expect.h"
#include "fedc/data.h"
#include "fedc/fl_seed.h"
#include "fedc/model.h"
#include "fedc/modelfile.h"
#include "fedc/optim.h"
#include "fedc/train.h"

/* Seconds a whole run may take before its processes are killed (ASan builds included). */
#define RUN_TIMEOUT 45
#define START_TIMEOUT 15

static const char *g_coord, *g_client;

typedef fed_pair ctx;

static int setup(void **state) {
    return fed_pair_setup(state, "fedc-test-fed-", g_coord, g_client);
}

static int teardown(void **state) {
    return fed_pair_teardown(state);
}

static char *fpath(const fed *f, const char *name) {
    return fed_fpath(f, name);
}

static void start_coord(fed *f, const char *const *env, const char *const *args) {
    assert_int_equal(fed_start_coord(f, env, args, 0, START_TIMEOUT), 0);
}

static void start_client(fed *f, const char *name, const char *csv_name, const char *const *env) {
    char *csv = fpath(f, csv_name);
    int i = fed_start_client(f, name, csv, env, NULL);
    free(csv);
    assert_true(i >= 0);
}

/* Waits for a program and checks that it exited on its own with `status`. */

/* Waits for the coordinator (exit 0) and then every client (exit 0). A run without faults
 * refuses no message and marks no client dead (either would also cost a round deadline). */
static void expect_run_complete(fed *f) {
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < f->n_cl; i++)
        fed_expect_exit(&f->cl[i], 15, 0);
    assert_false(fed_file_has(f->coord.err, "refused"));
    assert_false(fed_file_has(f->coord.err, "marked dead"));
    for (int i = 0; i < f->n_cl; i++)
        assert_false(fed_file_has(f->cl[i].err, "refused"));
}

static fedc_model *load_model(const char *path) {
    fedc_model *m = NULL;
    fedc_diag d;
    fedc_err rc = fedc_model_load(&m, path, &d);
    if (rc)
        print_message("cannot load %s: %s\n", path, d.msg);
    assert_int_equal(rc, FEDC_OK);
    return m;
}

/* ---- ten rounds with three clients -------------------------------------------------------- */

static void test_three_clients_ten_rounds(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json"), *model = fpath(f, "model.bin");
    /* clang-format off */
    const char *args[] = {"--min-clients", "3", "--rounds", "10", "--local-epochs", "5",
                          "--optimizer", "adam", "--lr", "0.005", "--layers", "16", "--seed", "7",
                          "--round-timeout", "40", "--wait-timeout", "30",
                          "--metrics-json", metrics, "--model-out", model, NULL};
    /* clang-format on */
    start_coord(f, NULL, args);
    start_client(f, "bank-a", "shard0.csv", NULL);
    start_client(f, "bank-b", "shard1.csv", NULL);
    start_client(f, "bank-c", "shard2.csv", NULL);
    expect_run_complete(f);

    fed_round r[16];
    int n = fed_read_metrics(metrics, r, 16);
    assert_int_equal(n, 10);
    for (int i = 0; i < n; i++) {
        assert_int_equal(r[i].round, i + 1);
        assert_int_equal(r[i].participants, 3);
        assert_int_equal(r[i].selected, 3);
        assert_true(isfinite(r[i].train_loss));
    }
    if (!(r[9].val_roc_auc > 0.6))
        print_message("last round's val_roc_auc %g, expected > 0.6\n", r[9].val_roc_auc);
    assert_true(r[9].val_roc_auc > 0.6);
    /* The stdout line per round. */
    assert_true(fed_file_has(f->coord.out, "round  10/10  clients 3/3"));

    fedc_model *m = load_model(model);
    assert_int_equal(m->arch.sizes[0], 24);
    assert_int_equal(m->arch.n_layers, 2);
    assert_int_equal(m->arch.sizes[1], 16);
    assert_non_null(m->feature_names);
    assert_string_equal(m->feature_names[0], "a1");
    assert_string_equal(m->feature_names[23], "a24");
    assert_string_equal(m->label_name, "bad");
    for (size_t i = 0; i < m->n_params; i++)
        assert_true(isfinite(m->params[i]));
    for (int j = 0; j < 24; j++)
        assert_true(isfinite(m->mean[j]) && m->std[j] > 0.0f);
    fedc_model_destroy(&m);
    free(metrics);
    free(model);
    c->ok = 1;
}

/* ---- FedAvg of one client equals centralised training ------------------------------------- */

#define SOLO_SEED 11
#define SOLO_NAME "solo"

static void test_one_client_equals_central(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    char *model = fpath(f, "model.bin");
    /* clang-format off */
    const char *args[] = {"--min-clients", "1", "--rounds", "1", "--local-epochs", "1",
                          "--optimizer", "adam",
                          "--val-fraction", "0", "--seed", "11", "--batch", "32", "--lr", "0.01",
                          "--layers", "16, 8", "--round-timeout", "30", "--wait-timeout", "30",
                          "--model-out", model, NULL};
    /* clang-format on */
    start_coord(f, NULL, args);
    assert_true(fed_start_client(f, SOLO_NAME, FED_GERMAN, NULL, NULL) >= 0);
    expect_run_complete(f);
    fedc_model *fl = load_model(model);

    /* The same epoch in-process: the whole file in file order (--val-fraction 0), standardised
     * with mean = sum / n and std = sqrt(sumsq / n - mean^2) in double, as the coordinator does. */
    fedc_dataset *ds = NULL;
    fedc_diag d;
    assert_int_equal(fedc_csv_load(&ds, FED_GERMAN, "bad", NULL, 0, &d), FEDC_OK);
    int nf = ds->n_features;
    assert_int_equal(nf, 24);
    float mean[24], std[24];
    for (int j = 0; j < nf; j++) {
        double s = 0, q = 0;
        for (int i = 0; i < ds->n_rows; i++) {
            double x = ds->x[(size_t)i * (size_t)nf + (size_t)j];
            s += x;
            q += x * x;
        }
        double mu = s / ds->n_rows, var = q / ds->n_rows - mu * mu;
        double sd = var > 0 ? sqrt(var) : 0.0;
        mean[j] = (float)mu;
        std[j] = sd > 1e-12 && (float)sd > 0.0f ? (float)sd : 1.0f;
    }
    fedc_dataset_standardize(ds, mean, std);
    fedc_arch arch;
    const int hidden[2] = {16, 8};
    assert_int_equal(fedc_arch_make(&arch, nf, hidden, 2, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d),
                     FEDC_OK);
    fedc_model *m = NULL, *init = NULL;
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    assert_int_equal(fedc_model_new(&init, &arch), FEDC_OK);
    fedc_model_init(m, SOLO_SEED);
    fedc_model_init(init, SOLO_SEED);
    fedc_train_cfg t = fedc_train_defaults();
    t.epochs = 1;
    t.batch = 32;
    t.opt = fedc_optim_defaults();
    t.opt.lr = 0.01f;
    t.pos_weight = 1.0f;
    t.patience = 0;
    t.seed = fedc_fl_client_seed(SOLO_SEED, SOLO_NAME, 1);
    fedc_train_report rep;
    assert_int_equal(fedc_train(m, ds, NULL, &t, &rep, &d), FEDC_OK);

    assert_int_equal(fl->arch.n_layers, m->arch.n_layers);
    for (int l = 0; l <= m->arch.n_layers; l++)
        assert_int_equal(fl->arch.sizes[l], m->arch.sizes[l]);
    assert_int_equal(fl->n_params, m->n_params);
    for (int j = 0; j < nf; j++) {
        assert_true(fabsf(fl->mean[j] - mean[j]) <= 1e-6f * fmaxf(1.0f, fabsf(mean[j])));
        assert_true(fabsf(fl->std[j] - std[j]) <= 1e-6f * fmaxf(1.0f, fabsf(std[j])));
    }
    double diff = 0, moved = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        diff = fmax(diff, fabs((double)fl->params[i] - (double)m->params[i]));
        moved = fmax(moved, fabs((double)m->params[i] - (double)init->params[i]));
    }
    print_message("max |federated - central| = %.3g (training moved weights by up to %.3g)\n", diff,
                  moved);
    assert_true(moved > 1e-3); /* the comparison is not between two untrained models */
    assert_true(diff <= 1e-6);
    fedc_model_destroy(&fl);
    fedc_model_destroy(&m);
    fedc_model_destroy(&init);
    fedc_dataset_destroy(&ds);
    free(model);
    c->ok = 1;
}

/* ---- determinism across arrival order and thread counts ----------------------------------- */

#define DET_ROUNDS 4

/* One run of three clients for DET_ROUNDS rounds where client `slow` answers last in every
 * round (a delay before sending its result), with `threads` OpenMP threads per program. Returns
 * the model file's bytes (caller frees) and their length. */
static char *det_run(fed *f, int slow, const char *threads, size_t *len) {
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *model = fpath(f, "model.bin"), *metrics = fpath(f, "metrics.json");
    /* clang-format off */
    const char *args[] = {"--min-clients", "3", "--rounds", "4", "--local-epochs", "2",
                          "--optimizer", "adam", "--lr", "0.005", "--layers", "16", "--seed", "5",
                          "--round-timeout", "40", "--wait-timeout", "30",
                          "--metrics-json", metrics, "--model-out", model, NULL};
    /* clang-format on */
    static const char *const names[3] = {"bank-a", "bank-b", "bank-c"};
    char fault[512] = "FEDC_FAULT=";
    for (int r = 1; r <= DET_ROUNDS; r++) {
        char rule[64];
        snprintf(rule, sizeof rule, "%s%s/delay:fit-res@%d:300", r > 1 ? "," : "", names[slow], r);
        strcat(fault, rule);
    }
    char omp[32];
    snprintf(omp, sizeof omp, "OMP_NUM_THREADS=%s", threads);
    const char *env[] = {fault, omp, NULL};
    start_coord(f, env + 1, args);
    for (int k = 0; k < 3; k++) {
        char csv[32];
        snprintf(csv, sizeof csv, "shard%d.csv", k);
        start_client(f, names[k], csv, env);
    }
    expect_run_complete(f);
    fed_round r[8];
    assert_int_equal(fed_read_metrics(metrics, r, 8), DET_ROUNDS);
    for (int i = 0; i < DET_ROUNDS; i++)
        assert_int_equal(r[i].participants, 3);
    /* The delays did fire, once per round. */
    char *err = proc_read_file(f->cl[slow].err, NULL);
    assert_non_null(err);
    int fired = 0;
    for (const char *p = err; (p = strstr(p, "fault injection: delay at fit-res")); p++)
        fired++;
    free(err);
    assert_int_equal(fired, DET_ROUNDS);
    char *bytes = proc_read_file(model, len);
    assert_non_null(bytes);
    free(model);
    free(metrics);
    return bytes;
}

static void test_bit_identical_any_order(void **state) {
    ctx *c = *state;
    size_t la = 0, lb = 0;
    char *a = det_run(&c->f[0], 0, "1", &la);
    char *b = det_run(&c->f[1], 2, "2", &lb);
    assert_int_equal(la, lb);
    assert_true(la > 100);
    if (memcmp(a, b, la) != 0)
        print_message("the two models differ\n");
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    c->ok = 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s FEDC_COORDINATOR FEDC_CLIENT\n", argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    if (getenv("FEDC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("FEDC_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_three_clients_ten_rounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_client_equals_central, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bit_identical_any_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
