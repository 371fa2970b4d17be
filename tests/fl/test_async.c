/* Buffered asynchronous aggregation (fedc-coordinator --mode async, FedBuff; coordinator/async.c).
 * argv[1] fedc-coordinator, argv[2] fedc-client, argv[3] the group:
 *   unit         the staleness weight and a buffer's mean against numbers worked out by hand
 *   integration  an asynchronous federation completes with K updates per server step; an update
 *                more than --max-staleness steps old is refused and the run goes on; a resumed
 *                run continues the steps; the flags it refuses at start
 *   quality      Taiwan credit data over 5 clients: with one client slowed down, async reaches the
 *                synchronous run's final validation ROC-AUC (within 0.01) in under half its wall
 *                time; with equal clients it ends within 0.01 of it (or above)
 * Slow clients come from the client's "train" fault point (FEDC_FAULT=NAME/delay:train@*:MS): the
 * training thread sleeps MS after each fit, while its I/O thread keeps answering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* before fed_expect.h: its DP checks need it */
#include "fedc/dp.h"

#include "fed.h"
#include "fed_expect.h"
#include "fedc/fl.h"
#include "fedc/strategy.h"

#define RUN_TIMEOUT 90
#define START_TIMEOUT 15
#define TAIWAN FEDC_SOURCE_DIR "/tests/fixtures/taiwan_default/default_of_credit_card_clients.csv"

static const char *g_coord, *g_client;

typedef fed_pair ctx;

static int setup(void **state) {
    return fed_pair_setup(state, "fedc-test-async-", g_coord, g_client);
}

static int teardown(void **state) {
    return fed_pair_teardown(state);
}

/* ---- unit: the staleness weight and the buffer's mean ---------------------------------------- */

static void test_staleness_weight(void **state) {
    (void)state;
    /* 1/sqrt(1 + tau): tau 0, 3, 8, 15, 99 give 1, 1/2, 1/3, 1/4, 1/10 exactly. */
    assert_true(fedc_staleness_weight(0) == 1.0);
    assert_true(fabs(fedc_staleness_weight(3) - 0.5) < 1e-15);
    assert_true(fabs(fedc_staleness_weight(8) - 1.0 / 3.0) < 1e-15);
    assert_true(fabs(fedc_staleness_weight(15) - 0.25) < 1e-15);
    assert_true(fabs(fedc_staleness_weight(99) - 0.1) < 1e-15);
    /* decreasing in tau */
    for (uint32_t t = 0; t < 50; t++)
        assert_true(fedc_staleness_weight(t + 1) < fedc_staleness_weight(t));
}

/* Three updates into one buffer as the coordinator adds them (scaled by s(tau), weighted by their
 * example counts): (1, 2) from 100 rows fresh, (3, -1) from 300 rows 3 steps old, (0.5, 4) from
 * 200 rows 8 steps old. By hand: x = (100*1*1 + 300*0.5*3 + 200*(1/3)*0.5) / 600
 * = (100 + 450 + 33.333...) / 600 = 0.9722222..., y = (100*1*2 + 300*0.5*(-1) + 200*(1/3)*4) / 600
 * = (200 - 150 + 266.666...) / 600 = 0.5277777...; the loss is FedAvg's (not staleness-scaled). */
static void test_buffer_mean(void **state) {
    (void)state;
    fedc_accum *a = NULL;
    assert_int_equal(fedc_accum_new(&a, 2, FEDC_ACCUM_FRAC_BITS), FEDC_OK);
    const float u[3][2] = {{1.0f, 2.0f}, {3.0f, -1.0f}, {0.5f, 4.0f}};
    const uint64_t rows[3] = {100, 300, 200};
    const uint32_t tau[3] = {0, 3, 8};
    const double loss[3] = {0.5, 0.2, 0.8};
    float scaled[2];
    for (int k = 0; k < 3; k++) {
        double s = fedc_staleness_scale(scaled, u[k], 2, tau[k]);
        assert_true(fabs(s - 1.0 / sqrt(1.0 + tau[k])) < 1e-15);
        assert_int_equal(fedc_accum_add(a, scaled, rows[k], loss[k], NULL), FEDC_OK);
    }
    float mean[2];
    assert_int_equal(fedc_accum_mean(a, mean), FEDC_OK);
    assert_true(fabs(mean[0] - 0.9722222) < 1e-6);
    assert_true(fabs(mean[1] - 0.5277778) < 1e-6);
    /* (100*0.5 + 300*0.2 + 200*0.8) / 600 = 270 / 600 */
    assert_true(fabs(fedc_accum_mean_loss(a) - 0.45) < 1e-6);
    /* In place, tau 0 leaves the values as they are. */
    float v[2] = {0.25f, -7.0f};
    assert_true(fedc_staleness_scale(v, v, 2, 0) == 1.0);
    assert_true(v[0] == 0.25f && v[1] == -7.0f);
    fedc_accum_destroy(&a);
}

/* ---- integration ------------------------------------------------------------------------------
 */

static char *fpath(const fed *f, const char *name) {
    return fed_fpath(f, name);
}

static void start_client(fed *f, const char *name, const char *csv_name, const char *fault,
                         const char *const *args) {
    char *csv = fpath(f, csv_name);
    const char *env[] = {fault, NULL};
    int i = fed_start_client(f, name, csv, fault ? env : NULL, args);
    free(csv);
    assert_true(i >= 0);
}

static const char *const g_async_common[] = {
    "--secagg",       "off", "--mode",          "async", "--min-clients",  "3",  "--layers", "16",
    "--local-epochs", "1",   "--round-timeout", "40",    "--wait-timeout", "30",
};
#define N_COMMON (sizeof g_async_common / sizeof g_async_common[0])

/* The common flags, then the NULL-terminated extra ones, into out (room for 48). */
static void async_args(const char **out, const char *const *extra) {
    size_t n = 0;
    for (size_t i = 0; i < N_COMMON; i++)
        out[n++] = g_async_common[i];
    for (size_t i = 0; extra[i]; i++)
        out[n++] = extra[i];
    out[n] = NULL;
}

static const char *const g_plain[] = {"--secagg", "off", NULL};

static void test_async_completes(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json"), *model = fpath(f, "model.bin");
    const char *args[48];
    const char *extra[] = {"--rounds", "8",           "--buffer", "2", "--metrics-json",
                           metrics,    "--model-out", model,      NULL};
    async_args(args, extra);
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    start_client(f, "bank-a", "shard0.csv", NULL, g_plain);
    start_client(f, "bank-b", "shard1.csv", NULL, g_plain);
    start_client(f, "bank-c", "shard2.csv", NULL, g_plain);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < f->n_cl; i++)
        fed_expect_exit(&f->cl[i], 15, 0);
    assert_true(fed_file_has(f->coord.err, "asynchronous aggregation (FedBuff): a server step "
                                           "per 2 update(s)"));
    fed_round r[16];
    int n = fed_read_metrics(metrics, r, 16);
    assert_int_equal(n, 8);
    int stale_seen = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(r[i].round, i + 1);
        /* exactly K updates per server step */
        assert_int_equal(r[i].participants, 2);
        assert_true(isfinite(r[i].val_roc_auc));
        assert_true(fed_metric_at(metrics, i, "buffer") == 2.0);
        double smax = fed_metric_at(metrics, i, "staleness_max");
        assert_true(smax >= 0 && smax <= 10);
        stale_seen |= smax > 0;
    }
    /* Three clients for buffers of two: every step after the first holds an update trained on
     * an earlier model. */
    assert_true(stale_seen);
    assert_true(fed_file_has(metrics, "\"mode\":\"async\""));
    assert_true(r[n - 1].val_roc_auc > 0.6);
    assert_true(proc_exists(model));
    free(metrics);
    free(model);
    c->ok = 1;
}

/* Two clients that train for 100 ms more and one for 400 ms more; buffers of 2 and
 * --max-staleness 0: the slow one's update always arrives after the two fast ones moved the
 * model, and is refused with both versions named; the run completes without it. */
static void test_stale_refused(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json");
    const char *args[48];
    const char *extra[] = {"--rounds",       "10",    "--buffer", "2", "--max-staleness", "0",
                           "--metrics-json", metrics, NULL};
    async_args(args, extra);
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    start_client(f, "bank-a", "shard0.csv", "FEDC_FAULT=bank-a/delay:train@*:100", g_plain);
    start_client(f, "bank-b", "shard1.csv", "FEDC_FAULT=bank-b/delay:train@*:100", g_plain);
    start_client(f, "bank-c", "shard2.csv", "FEDC_FAULT=bank-c/delay:train@*:400", g_plain);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < f->n_cl; i++)
        fed_expect_exit(&f->cl[i], 15, 0);
    assert_true(fed_file_has(f->coord.err, "bank-c: fit_res refused: stale update: trained on "
                                           "model version 0, the model is at version"));
    assert_true(fed_file_has(f->coord.err, "--max-staleness 0"));
    assert_true(fed_file_has(f->cl[2].err, "the coordinator refused a message: fit_res refused: "
                                           "stale update"));
    fed_round r[16];
    int n = fed_read_metrics(metrics, r, 16);
    assert_int_equal(n, 10);
    double refused = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(r[i].participants, 2);
        refused += fed_metric_at(metrics, i, "stale_refused");
        /* nothing older than S = 0 went in */
        assert_true(fed_metric_at(metrics, i, "staleness_max") == 0.0);
    }
    assert_true(refused >= 1);
    assert_false(fed_file_has(metrics, "bank-c"));
    free(metrics);
    c->ok = 1;
}

/* A client is killed answering step 2's evaluation: the other two go on filling buffers of two,
 * the run completes, and the dead client is marked so once its heartbeats stop. */
static void test_client_dies(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json");
    const char *args[48];
    /* --min-fit-clients 2: the live clients a step needs, as a round does */
    const char *extra[] = {"--rounds",
                           "12",
                           "--buffer",
                           "2",
                           "--min-fit-clients",
                           "2",
                           "--heartbeat-timeout",
                           "2",
                           "--metrics-json",
                           metrics,
                           NULL};
    async_args(args, extra);
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    /* the slow ones' trainings keep the run going for the heartbeat timeout */
    start_client(f, "bank-a", "shard0.csv", "FEDC_FAULT=bank-a/delay:train@*:150", g_plain);
    start_client(f, "bank-b", "shard1.csv", "FEDC_FAULT=bank-b/delay:train@*:150", g_plain);
    start_client(f, "bank-c", "shard2.csv", "FEDC_FAULT=bank-c/kill:eval-res@2", g_plain);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    fed_expect_exit(&f->cl[0], 15, 0);
    fed_expect_exit(&f->cl[1], 15, 0);
    assert_int_equal(fed_wait(&f->cl[2], 15), 0);
    assert_int_not_equal(f->cl[2].res.term_signal, 0);
    assert_true(fed_file_has(f->coord.err, "bank-c missed its heartbeats"));
    fed_round r[16];
    int n = fed_read_metrics(metrics, r, 16);
    assert_int_equal(n, 12);
    for (int i = 0; i < n; i++)
        assert_int_equal(r[i].participants, 2);
    free(metrics);
    c->ok = 1;
}

/* The coordinator dies after the checkpoint of step 3 and is restarted with --resume: the steps
 * go on from 4, each in the metrics file once, with K updates each (an update in flight from
 * before the crash is refused as not requested by the new process, and its client fed again). */
static void test_resume(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json"), *ckpt = fpath(f, "ckpt"),
         *model = fpath(f, "model.bin");
    const char *args[48];
    const char *extra[] = {"--rounds",
                           "6",
                           "--buffer",
                           "2",
                           "--heartbeat-timeout",
                           "2",
                           "--checkpoint-dir",
                           ckpt,
                           "--metrics-json",
                           metrics,
                           "--model-out",
                           model,
                           NULL,
                           NULL};
    async_args(args, extra);
    size_t na = 0;
    while (args[na])
        na++;
    const char *env[] = {"FEDC_FAULT=coordinator/kill:checkpoint@3", NULL};
    assert_int_equal(fed_start_coord(f, env, args, 0, START_TIMEOUT), 0);
    start_client(f, "bank-a", "shard0.csv", NULL, g_plain);
    start_client(f, "bank-b", "shard1.csv", NULL, g_plain);
    start_client(f, "bank-c", "shard2.csv", NULL, g_plain);
    assert_int_equal(fed_wait(&f->coord, RUN_TIMEOUT), 0);
    assert_int_not_equal(f->coord.res.term_signal, 0);
    assert_true(fed_file_has(f->coord.err, "fault injection: kill at checkpoint round 3"));
    fed_round r[8];
    assert_int_equal(fed_read_metrics(metrics, r, 8), 2); /* killed before step 3's line */
    args[na] = "--resume";
    args[na + 1] = NULL;
    size_t from = fed_file_size(f->coord.err);
    assert_int_equal(fed_start_coord(f, NULL, args, 1, START_TIMEOUT), 0);
    assert_int_equal(fed_wait_text(f->coord.err, "resuming run after round 3", from, 0, 5), 0);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < f->n_cl; i++)
        fed_expect_exit(&f->cl[i], 15, 0);
    int n = fed_read_metrics(metrics, r, 8);
    assert_int_equal(n, 6);
    for (int i = 0; i < n; i++) {
        assert_int_equal(r[i].round, i + 1);
        assert_int_equal(r[i].participants, 2);
    }
    assert_true(proc_exists(model));
    free(metrics);
    free(ckpt);
    free(model);
    c->ok = 1;
}

/* Client-level DP with --mode async: every step is released with noise and charged as an
 * unsampled Gaussian mechanism (q = 1: a buffer of whoever finished first is no random sample),
 * and a buffer counts a client once: bank-a, four times as fast as the others, has its second
 * update held for the next buffer instead of filling the first one alone. */
static void test_async_dp(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json"), *model = fpath(f, "model.bin");
    const char *args[48];
    const char *extra[] = {"--rounds",   "5",   "--buffer",       "2",     "--dp-clip",   "1",
                           "--dp-noise", "0.7", "--metrics-json", metrics, "--model-out", model,
                           NULL};
    async_args(args, extra);
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    start_client(f, "bank-a", "shard0.csv", NULL, g_plain);
    start_client(f, "bank-b", "shard1.csv", "FEDC_FAULT=bank-b/delay:train@*:400", g_plain);
    start_client(f, "bank-c", "shard2.csv", "FEDC_FAULT=bank-c/delay:train@*:400", g_plain);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < f->n_cl; i++)
        fed_expect_exit(&f->cl[i], 15, 0);
    fed_round r[16];
    int n = fed_read_metrics(metrics, r, 16);
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++) {
        assert_int_equal(r[i].round, i + 1);
        fed_expect_dp_unsampled(metrics, i, 0.7f, 1.0);
        assert_true(fed_metric_at(metrics, i, "dp_sampled") == 2.0);
        assert_true(isfinite(r[i].val_roc_auc));
    }
    /* the fast client's second update waited (its first was already in the buffer) */
    assert_true(fed_file_has(f->coord.err, "bank-a's next update waits for the next buffer "
                                           "(client-level DP counts a client once per server "
                                           "step)"));
    assert_false(fed_file_has(f->coord.err, "bank-b's next update waits"));
    assert_true(proc_exists(model));
    free(metrics);
    free(model);
    c->ok = 1;
}

/* The flags --mode async refuses at start, each with its reason (exit 2, nothing listens). */
static void test_refused_flags(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    struct {
        const char *args[14];
        const char *says;
    } cases[] = {
        {{"--mode", "async", "--secagg", "on", "--min-clients", "3", "--buffer", "2", NULL},
         "--buffer 2 is below the secure floor --secagg-min-neighbours 3"},
        {{"--mode", "async", "--secagg", "off", "--dp-clip", "1", "--dp-noise", "1",
          "--min-clients", "2", "--buffer", "3", NULL},
         "--buffer 3 exceeds --min-clients 2; under client-level DP each server step counts a "
         "client once"},
        {{"--mode", "async", "--secagg", "off", "--aggregator", "median", NULL},
         "--mode async works with --aggregator mean or norm-bound"},
        {{"--buffer", "3", "--secagg", "off", NULL},
         "--buffer and --max-staleness apply with --mode async only"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *argv[20];
        int n = 0;
        argv[n++] = g_coord;
        argv[n++] = "--bind";
        argv[n++] = f->endpoint;
        argv[n++] = "--insecure";
        for (int i = 0; cases[k].args[i]; i++)
            argv[n++] = cases[k].args[i];
        argv[n] = NULL;
        proc_result res;
        assert_int_equal(proc_run(&res, argv, NULL, 15), 0);
        if (res.status != 2 || !res.err || !strstr(res.err, cases[k].says))
            print_message("case %zu: status %d, stderr: %s\n", k, res.status,
                          res.err ? res.err : "(none)");
        assert_int_equal(res.status, 2);
        assert_non_null(strstr(res.err, cases[k].says));
        proc_result_release(&res);
    }
    c->ok = 1;
}

/* ---- quality: Taiwan over 5 clients, one slowed down ------------------------------------------
 */

/* The delay of the slow client per training (ms): its training then takes about 9-10x a fast
 * client's ~14 ms in the synchronous run (bench/async_straggler.sh prints the measured times). */
#define SLOW_MS "110"
#define SYNC_ROUNDS "10"

typedef struct run_res {
    double final_auc;
    double total_s;   /* the sum of the rounds' (steps') seconds */
    double reach_s;   /* seconds until the first round at or above target (NaN: never) */
    double reach_auc; /* its ROC-AUC */
    int n;
} run_res;

/* One federation of the 5 Taiwan shards; slow: client tw4 delayed; the extra coordinator flags. */
static run_res taiwan_run(fed *f, int slow, const char *const *extra, double target) {
    /* The Taiwan fixture as 5 shards tw0..tw4 (row i to shard i % 5). */
    assert_int_equal(fed_deal_rows(f, TAIWAN, "default_payment_next_month", 5, "tw"), 0);
    char *metrics = fpath(f, "metrics.json");
    const char *args[48];
    size_t n = 0;
    const char *common[] = {"--secagg",       "off",   "--min-clients",   "5",
                            "--wait-timeout", "60",    "--round-timeout", "60",
                            "--metrics-json", metrics, "--quiet",         NULL};
    for (size_t i = 0; common[i]; i++)
        args[n++] = common[i];
    for (size_t i = 0; extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    const char *cargs[] = {"--secagg", "off", "--drop", "ID", "--quiet", NULL};
    for (int k = 0; k < 5; k++) {
        char name[16], csv[16];
        snprintf(name, sizeof name, "tw%d", k);
        snprintf(csv, sizeof csv, "tw%d.csv", k);
        start_client(f, name, csv, slow && k == 4 ? "FEDC_FAULT=tw4/delay:train@*:" SLOW_MS : NULL,
                     cargs);
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < f->n_cl; i++)
        fed_expect_exit(&f->cl[i], 15, 0);
    fed_round r[64];
    run_res out = {NAN, 0, NAN, NAN, 0};
    out.n = fed_read_metrics(metrics, r, 64);
    assert_true(out.n > 0);
    for (int i = 0; i < out.n; i++) {
        out.total_s += r[i].seconds;
        if (isnan(out.reach_s) && r[i].val_roc_auc >= target) {
            out.reach_s = out.total_s;
            out.reach_auc = r[i].val_roc_auc;
        }
    }
    out.final_auc = r[out.n - 1].val_roc_auc;
    free(metrics);
    return out;
}

static void test_straggler(void **state) {
    ctx *c = *state;
    const char *sync_args[] = {"--mode", "sync", "--rounds", SYNC_ROUNDS, NULL};
    run_res s = taiwan_run(&c->f[0], 1, sync_args, INFINITY);
    const char *async_args_[] = {"--mode", "async",           "--rounds", "40", "--buffer",
                                 "3",      "--max-staleness", "30",       NULL};
    run_res a = taiwan_run(&c->f[1], 1, async_args_, s.final_auc - 0.01);
    print_message(
        "straggler: sync %s rounds: ROC-AUC %.4f in %.2f s; async (K=3, S=30): %.4f "
        "reached after %.2f s (%.0f%% of sync's time), final %.4f after %d steps, %.2f s\n",
        SYNC_ROUNDS, s.final_auc, s.total_s, a.reach_auc, a.reach_s, 100.0 * a.reach_s / s.total_s,
        a.final_auc, a.n, a.total_s);
    assert_true(s.final_auc > 0.74);
    assert_false(isnan(a.reach_s));
    assert_true(a.reach_s < 0.5 * s.total_s);
    c->ok = 1;
}

static void test_equal_clients(void **state) {
    ctx *c = *state;
    const char *sync_args[] = {"--mode", "sync", "--rounds", SYNC_ROUNDS, NULL};
    run_res s = taiwan_run(&c->f[0], 0, sync_args, INFINITY);
    const char *async_args_[] = {"--mode", "async", "--rounds", "30", "--buffer", "3", NULL};
    run_res a = taiwan_run(&c->f[1], 0, async_args_, INFINITY);
    print_message("equal clients: sync %s rounds: ROC-AUC %.4f in %.2f s; async (K=3) 30 steps: "
                  "%.4f in %.2f s\n",
                  SYNC_ROUNDS, s.final_auc, s.total_s, a.final_auc, a.total_s);
    assert_true(s.final_auc > 0.74);
    /* within 0.01 of sync, or better */
    assert_true(a.final_auc >= s.final_auc - 0.01);
    c->ok = 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s FEDC-COORDINATOR FEDC-CLIENT unit|integration|quality\n",
                argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    if (strcmp(argv[3], "unit") == 0) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_staleness_weight),
            cmocka_unit_test(test_buffer_mean),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    if (strcmp(argv[3], "quality") == 0) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_straggler, setup, teardown),
            cmocka_unit_test_setup_teardown(test_equal_clients, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refused_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_dp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_dies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
