/* Secure aggregation in a federation of local processes (fedc-coordinator argv[1], fedc-client
 * argv[2]), with dropouts injected at exact protocol steps (FEDC_FAULT, fault.h):
 * - one round's secure aggregate equals the --secagg off aggregate within the quantisation bound;
 * - 7 clients: one exits right after ShareKeys, then two more, then one after its masked input:
 *   every round completes, the late one still counted;
 * - 7 clients, four exit after ShareKeys (below the threshold): the round aborts cleanly and is
 *   retried, the coordinator stays up and finishes; 3 clients survive one dropout;
 * - a coordinator that relays a forged round key, or asks for both share kinds of one peer, is
 *   refused by the client it lies to (CurveZMQ keys and the roster: tests/net keygen); a masked
 *   input replayed from an earlier round is refused by the coordinator;
 * - a client started with --secagg on refuses a coordinator that asks for plain updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fed.h"
#include "fed_expect.h"
#include "fedc/fault.h"
#include "fedc/model.h"
#include "fedc/modelfile.h"

#define RUN_TIMEOUT 90
#define START_TIMEOUT 15

static const char *g_coord, *g_client, *g_fedc;

typedef fed_pair ctx;

static int setup(void **state) {
    return fed_pair_setup(state, "fedc-test-secure-", g_coord, g_client);
}

static int teardown(void **state) {
    return fed_pair_teardown(state);
}

static char *fpath(const fed *f, const char *name) {
    return fed_fpath(f, name);
}

static const char *const NAMES[] = {"bank-a", "bank-b", "bank-c", "bank-d",
                                    "bank-e", "bank-f", "bank-g"};

/* Runs n clients on German credit shards with the coordinator flags `extra` (NULL-terminated)
 * and FEDC_FAULT `fault` for everyone (NULL: none); clients get client_args. Waits for the
 * coordinator to exit with coord_status and returns the metrics lines in r (count in *n_r). */
static void run(fed *f, int n, const char *fault, const char *const *extra,
                const char *const *client_args, int coord_status, fed_round *r, int *n_r) {
    assert_int_equal(fed_write_shards(f, n, "shard"), 0);
    char *metrics = fpath(f, "metrics.json"), *model = fpath(f, "model.bin");
    char nbuf[8];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    const char *args[40] = {"--min-clients",
                            nbuf,
                            "--layers",
                            "16",
                            "--local-epochs",
                            "1",
                            "--heartbeat-timeout",
                            "2",
                            "--round-timeout",
                            "40",
                            "--wait-timeout",
                            "30",
                            "--metrics-json",
                            metrics,
                            "--model-out",
                            model,
                            "--secagg",
                            "on",
                            NULL};
    int na = 0;
    while (args[na])
        na++;
    for (int i = 0; extra && extra[i]; i++)
        args[na++] = extra[i];
    args[na] = NULL;
    const char *env[] = {fault, NULL};
    assert_int_equal(fed_start_coord(f, fault ? env : NULL, args, 0, START_TIMEOUT), 0);
    const char *strict[] = {"--secagg", "on", NULL};
    for (int i = 0; i < n; i++) {
        char shard[32];
        snprintf(shard, sizeof shard, "shard%d.csv", i);
        char *csv = fpath(f, shard);
        assert_true(fed_start_client(f, NAMES[i], csv, fault ? env : NULL,
                                     client_args ? client_args : strict) >= 0);
        free(csv);
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, coord_status);
    *n_r = fed_read_metrics(metrics, r, 16);
    free(metrics);
    free(model);
}

static void expect_participants(const fed_round *r, int n_r, const int *want, int n) {
    if (n_r != n)
        print_message("%d metrics lines, expected %d\n", n_r, n);
    assert_int_equal(n_r, n);
    for (int i = 0; i < n; i++) {
        if (r[i].participants != want[i])
            print_message("round %d: %d participants, expected %d\n", i + 1, r[i].participants,
                          want[i]);
        assert_int_equal(r[i].round, i + 1);
        assert_int_equal(r[i].participants, want[i]);
        assert_true(isfinite(r[i].train_loss));
        assert_true(isfinite(r[i].val_roc_auc));
    }
}

/* The same federation (3 clients, one round) with and without secure aggregation: the models
 * agree within the quantisation bound, and each metrics line says which mode ran. */
static void test_secure_equals_plain_within_bound(void **state) {
    ctx *c = *state;
    fed_round r[16];
    int nr;
    const char *one[] = {"--rounds", "1", NULL};
    run(&c->f[0], 3, NULL, one, NULL, 0, r, &nr);
    const char *plain[] = {"--rounds", "1", "--secagg", "off", NULL};
    const char *lax[] = {"--secagg", "off", NULL};
    run(&c->f[1], 3, NULL, plain, lax, 0, r, &nr);
    char *ms = fpath(&c->f[0], "metrics.json"), *mp = fpath(&c->f[1], "metrics.json");
    assert_true(fed_file_has(ms, "\"secagg\":true"));
    assert_true(fed_file_has(mp, "\"secagg\":false"));
    assert_false(fed_file_has(ms, "\"secagg\":false"));
    char *pa = fpath(&c->f[0], "model.bin"), *pb = fpath(&c->f[1], "model.bin");
    fedc_model *a = NULL, *b = NULL;
    fedc_diag d;
    assert_int_equal(fedc_model_load(&a, pa, &d), FEDC_OK);
    assert_int_equal(fedc_model_load(&b, pb, &d), FEDC_OK);
    assert_int_equal(a->n_params, b->n_params);
    /* Each client's weighted update is rounded stochastically to steps of c / (2^21 - 1) with
     * c = 10 (--secagg-clip) and n_max = 1024 (B = 22): 3 steps at most on the sum, whose
     * weights add up to 1. Round 0 statistics are exact to 2^-32, so training matches. */
    double step = 10.0 / (double)((1 << 21) - 1), worst = 0;
    for (size_t i = 0; i < a->n_params; i++) {
        double e = fabs((double)a->params[i] - (double)b->params[i]);
        worst = e > worst ? e : worst;
    }
    print_message("largest difference secure vs plain: %.3g (bound %.3g)\n", worst,
                  3 * step + 1e-6);
    assert_true(worst <= 3 * step + 1e-6);
    fedc_model_destroy(&a);
    fedc_model_destroy(&b);
    free(pa);
    free(pb);
    free(ms);
    free(mp);
    c->ok = 1;
}

/* 7 clients (t = 4): bank-c exits right after ShareKeys in round 1, bank-e and bank-f in round
 * 2; in round 3 bank-g exits after its masked input arrived: still counted. */
static void test_seven_clients_dropouts(void **state) {
    ctx *c = *state;
    const char *fault = "FEDC_FAULT=bank-c/exit:sa-mask@1,bank-e/exit:sa-mask@2,"
                        "bank-f/exit:sa-mask@2,bank-g/exit:sa-unmask@3";
    const char *extra[] = {"--rounds", "3", "--min-fit-clients", "3", NULL};
    fed_round r[16];
    int nr;
    run(&c->f[0], 7, fault, extra, NULL, 0, r, &nr);
    const int want[] = {6, 4, 4};
    expect_participants(r, nr, want, 3);
    fed *f = &c->f[0];
    for (int i = 0; i < 7; i++) {
        int victim = i == 2 || i == 4 || i == 5 || i == 6;
        fed_expect_exit(&f->cl[i], 20, victim ? FEDC_FAULT_EXIT_CODE : 0);
    }
    assert_true(fed_file_has(f->coord.err, "dropped after sharing their keys"));
    assert_false(fed_file_has(f->coord.err, "secure aggregation of the training failed"));
    c->ok = 1;
}

/* Too few survive: 7 clients, four exit right after ShareKeys, three masked inputs are below
 * t = 4: the attempt aborts and the round is retried with the three left (t = 2 of 3). */
static void test_below_threshold_retried(void **state) {
    ctx *c = *state;
    const char *fault = "FEDC_FAULT=bank-a/exit:sa-mask@1,bank-b/exit:sa-mask@1,"
                        "bank-c/exit:sa-mask@1,bank-d/exit:sa-mask@1";
    const char *extra[] = {"--rounds", "2", "--min-fit-clients", "3", NULL};
    fed_round r[16];
    int nr;
    run(&c->f[0], 7, fault, extra, NULL, 0, r, &nr);
    const int want[] = {3, 3};
    expect_participants(r, nr, want, 2);
    fed *f = &c->f[0];
    assert_true(fed_file_has(f->coord.err, "secure aggregation of the training failed"));
    assert_true(fed_file_has(f->coord.err, "retrying (attempt 2"));
    for (int i = 4; i < 7; i++)
        fed_expect_exit(&f->cl[i], 20, 0);
    c->ok = 1;
}

/* 3 clients (t = 2) survive one dropout after ShareKeys. */
static void test_three_clients_one_dropout(void **state) {
    ctx *c = *state;
    const char *extra[] = {"--rounds", "2", "--min-fit-clients", "2", NULL};
    fed_round r[16];
    int nr;
    run(&c->f[0], 3, "FEDC_FAULT=bank-b/exit:sa-mask@1", extra, NULL, 0, r, &nr);
    const int want[] = {2, 2};
    expect_participants(r, nr, want, 2);
    assert_true(fed_file_has(c->f[0].coord.err, "dropped after sharing their keys"));
    c->ok = 1;
}

/* A masked input replayed from round 1 in round 2 is refused; the round completes. */
static void test_replayed_masked_input_refused(void **state) {
    ctx *c = *state;
    const char *extra[] = {"--rounds", "2", NULL};
    fed_round r[16];
    int nr;
    run(&c->f[0], 3, "FEDC_FAULT=bank-a/misbehave:sa-replay@2", extra, NULL, 0, r, &nr);
    const int want[] = {3, 3};
    expect_participants(r, nr, want, 2);
    fed *f = &c->f[0];
    assert_true(fed_file_has(f->cl[0].err, "replaying the masked input"));
    assert_true(fed_file_has(f->coord.err, "bank-a: sa_masked refused"));
    assert_true(fed_file_has(f->coord.err, "stale or replayed"));
    c->ok = 1;
}

/* Keys for a coordinator and 3 banks via `fedc keygen`; dir/keys/NAME.key(_secret). */
static void make_keys(fed *f, int n) {
    char *dir = fpath(f, "keys");
    const char *names[] = {"coordinator", NAMES[0], NAMES[1], NAMES[2]};
    for (int i = 0; i <= n; i++) {
        const char *argv[] = {g_fedc, "keygen", "--name", names[i], "--out", dir, NULL};
        proc_result res;
        assert_int_equal(proc_run(&res, argv, NULL, 30), 0);
        assert_int_equal(res.status, 0);
        proc_result_release(&res);
    }
    free(dir);
}

/* A lying coordinator (FEDC_FAULT misbehave) against clients with CurveZMQ keys and a roster: a
 * forged round key fails its signature check, a request for both share kinds of one peer is
 * refused; the honest clients finish the round without the one lied to. */
static void lying_coordinator(void **state, const char *fault, const char *client_says) {
    ctx *c = *state;
    fed *f = &c->f[0];
    make_keys(f, 3);
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *keys = fpath(f, "keys"), *metrics = fpath(f, "metrics.json");
    char *allow = fpath(f, "allow");
    char *ck = fpath(f, "keys/coordinator.key_secret"), *cp = fpath(f, "keys/coordinator.key");
    /* The allow-list and roster: the banks' public keys only. */
    assert_int_equal(mkdir(allow, 0755), 0);
    for (int i = 0; i < 3; i++) {
        char src[128], dst[128];
        snprintf(src, sizeof src, "keys/%s.key", NAMES[i]);
        snprintf(dst, sizeof dst, "allow/%s.key", NAMES[i]);
        char *ps = fpath(f, src), *pd = fpath(f, dst);
        size_t len;
        char *bytes = proc_read_file(ps, &len);
        assert_non_null(bytes);
        assert_int_equal(proc_write_bytes(pd, bytes, len), 0);
        free(bytes);
        free(ps);
        free(pd);
    }
    /* FED_SECURE=1 in the environment tells the helper to leave out --insecure. */
    const char *args[] = {"--min-clients",
                          "3",
                          "--min-fit-clients",
                          "2",
                          "--rounds",
                          "1",
                          "--layers",
                          "16",
                          "--heartbeat-timeout",
                          "2",
                          "--round-timeout",
                          "40",
                          "--wait-timeout",
                          "30",
                          "--metrics-json",
                          metrics,
                          "--secagg",
                          "on",
                          "--key",
                          ck,
                          "--allow",
                          allow,
                          NULL};
    const char *env[] = {fault, "FED_SECURE=1", NULL};
    assert_int_equal(fed_start_coord(f, env, args, 0, START_TIMEOUT), 0);
    for (int i = 0; i < 3; i++) {
        char shard[32], key[64];
        snprintf(shard, sizeof shard, "shard%d.csv", i);
        snprintf(key, sizeof key, "keys/%s.key_secret", NAMES[i]);
        char *csv = fpath(f, shard), *k = fpath(f, key);
        const char *cargs[] = {"--secagg", "on",      "--key", k,   "--coordinator-key",
                               cp,         "--peers", allow,   NULL};
        assert_true(fed_start_client(f, NAMES[i], csv, env, cargs) >= 0);
        free(csv);
        free(k);
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    fed_round r[4];
    int nr = fed_read_metrics(metrics, r, 4);
    assert_int_equal(nr, 1);
    /* The session numbers clients by name: the coordinator lies to bank-a (id 0). */
    assert_true(fed_file_has(f->cl[0].err, client_says));
    assert_true(fed_file_has(f->coord.err, "bank-a reports an error: secure aggregation"));
    assert_false(fed_file_has(f->cl[1].err, client_says));
    free(keys);
    free(metrics);
    free(allow);
    free(ck);
    free(cp);
    c->ok = 1;
}

static void test_forged_round_key_refused(void **state) {
    lying_coordinator(state, "FEDC_FAULT=coordinator/misbehave:sa-forge@1",
                      "not signed by its identity key");
}

static void test_both_share_kinds_refused(void **state) {
    lying_coordinator(state, "FEDC_FAULT=coordinator/misbehave:sa-both@1", "both share kinds");
}

/* --augment on the clients: synthetic rows are added locally (logged), the federation runs and
 * the aggregate still counts real rows only (the weights come from round 0's totals). */
static void test_clients_augment_locally(void **state) {
    ctx *c = *state;
    const char *extra[] = {"--rounds", "2", NULL};
    const char *cargs[] = {"--secagg", "on", "--augment", "smote:0.6", NULL};
    fed_round r[16];
    int nr;
    run(&c->f[0], 3, NULL, extra, cargs, 0, r, &nr);
    const int want[] = {3, 3};
    expect_participants(r, nr, want, 2);
    for (int i = 0; i < 3; i++)
        assert_true(fed_file_has(c->f[0].cl[i].err, "synthetic positive rows added locally"));
    c->ok = 1;
}

/* A client that insists on secure aggregation (the default) refuses a plain coordinator. */
static void test_client_refuses_plain_coordinator(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 2, "shard"), 0);
    const char *args[] = {
        "--min-clients",   "2", "--rounds",      "1", "--secagg", "off", "--wait-timeout", "10",
        "--round-timeout", "5", "--max-retries", "0", NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    const char *strict[] = {"--secagg", "on", NULL};
    char *s0 = fpath(f, "shard0.csv"), *s1 = fpath(f, "shard1.csv");
    assert_true(fed_start_client(f, "bank-a", s0, NULL, strict) >= 0);
    assert_true(fed_start_client(f, "bank-b", s1, NULL, strict) >= 0);
    fed_expect_exit(&f->cl[0], 30, 2);
    fed_expect_exit(&f->cl[1], 30, 2);
    assert_true(fed_file_has(f->cl[0].err, "sends its statistics only masked"));
    (void)fed_wait(&f->coord, 30);
    assert_int_not_equal(f->coord.res.status, 0);
    free(s0);
    free(s1);
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
        cmocka_unit_test_setup_teardown(test_secure_equals_plain_within_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seven_clients_dropouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_below_threshold_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_clients_one_dropout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replayed_masked_input_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_round_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_both_share_kinds_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_refuses_plain_coordinator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_augment_locally, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
