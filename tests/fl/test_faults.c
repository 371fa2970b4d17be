/* Faults injected at exact protocol steps (FEDC_FAULT, core/net/include/fedc/fault.h) into a
 * federation of local processes (fedc-coordinator argv[1], fedc-client argv[2]): a client killed
 * or frozen (SIGSTOP) while it trains is dropped after its missed heartbeats and the run goes on
 * with the others; a coordinator killed after writing its checkpoint, or at the start of a round,
 * is restarted with --resume while the clients keep running, and the run completes with every
 * round's metrics line exactly once and the same model as a run without the crash; a client that
 * joins late is selected from the next round; a client whose CSV has another schema is refused
 * with exit status 2 and a message naming the column, and the others carry on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed.h"
#include "fed_expect.h"
#include "simrun.h"

#define RUN_TIMEOUT 45
#define START_TIMEOUT 15

static const char *g_coord, *g_client;

typedef fed_pair ctx;

static int setup(void **state) {
    return fed_pair_setup(state, "fedc-test-faults-", g_coord, g_client);
}

static int teardown(void **state) {
    return fed_pair_teardown(state);
}

static char *fpath(const fed *f, const char *name) {
    return fed_fpath(f, name);
}

static int start_client(fed *f, const char *name, const char *csv_name, const char *const *env) {
    char *csv = fpath(f, csv_name);
    int i = fed_start_client(f, name, csv, env, NULL);
    free(csv);
    assert_true(i >= 0);
    return i;
}

static void expect_killed(fed_proc *p, int timeout_s) {
    assert_int_equal(fed_wait(p, timeout_s), 0);
    if (p->res.term_signal != SIGKILL)
        print_message("%s: status %d, signal %d, timed out %d; expected SIGKILL\n", p->name,
                      p->res.status, p->res.term_signal, p->res.timed_out);
    assert_false(p->res.timed_out);
    assert_int_equal(p->res.term_signal, SIGKILL);
}

/* Reads the metrics file and checks it holds rounds 1..n in order, each once. */
static void expect_rounds(const char *metrics, fed_round *r, int n) {
    fed_round tmp[32];
    int got = fed_read_metrics(metrics, tmp, 32);
    if (got != n)
        print_message("%s: %d metrics lines, expected %d\n", metrics, got, n);
    assert_int_equal(got, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(tmp[i].round, i + 1);
        if (r)
            r[i] = tmp[i];
    }
}

/* "FEDC_FAULT=<who>/delay:<step>@1:<ms>,...@<rounds>:<ms>" into buf: one rule per round (a rule
 * fires once), so that every round lasts at least ms. */
static const char *delay_every_round(char *buf, size_t cap, const char *who, const char *step,
                                     int rounds, int ms) {
    size_t n = (size_t)snprintf(buf, cap, "FEDC_FAULT=");
    for (int r = 1; r <= rounds && n < cap; r++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s/delay:%s@%d:%d", r > 1 ? "," : "", who, step,
                              r, ms);
    assert_true(n < cap);
    return buf;
}

/* The state letter of /proc/PID/stat ('T' = stopped), or 0. */
static char proc_state(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    char *s = proc_read_file(path, NULL);
    if (!s)
        return 0;
    const char *p = strrchr(s, ')');
    char st = p && p[1] == ' ' ? p[2] : 0;
    free(s);
    return st;
}

/* ---- a client dies or freezes while it trains ---------------------------------------------- */

#define DROP_ROUNDS 5

static void client_lost_in_round_3(void **state, const char *fault) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json");
    /* clang-format off */
    const char *args[] = {"--min-clients", "3", "--min-fit-clients", "2",
                          "--heartbeat-timeout", "2", "--round-timeout", "40", "--rounds", "5",
                          "--local-epochs", "2", "--layers", "16", "--wait-timeout", "30",
                          "--metrics-json", metrics, NULL};
    /* clang-format on */
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    const char *env[] = {fault, NULL};
    start_client(f, "bank-a", "shard0.csv", env);
    start_client(f, "bank-b", "shard1.csv", env);
    int victim = start_client(f, "bank-c", "shard2.csv", env);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    fed_expect_exit(&f->cl[0], 15, 0);
    fed_expect_exit(&f->cl[1], 15, 0);
    assert_true(fed_file_has(f->cl[victim].err, "fault injection"));
    assert_true(fed_file_has(f->coord.err, "bank-c missed its heartbeats; marked dead"));
    fed_round r[DROP_ROUNDS];
    expect_rounds(metrics, r, DROP_ROUNDS);
    for (int i = 0; i < DROP_ROUNDS; i++) {
        int want = i < 2 ? 3 : 2;
        if (r[i].participants != want)
            print_message("round %d: %d participants, expected %d\n", i + 1, r[i].participants,
                          want);
        assert_int_equal(r[i].participants, want);
        assert_int_equal(r[i].selected, i < 3 ? 3 : 2);
        assert_true(isfinite(r[i].train_loss));
    }
    free(metrics);
}

static void test_client_killed_mid_round(void **state) {
    ctx *c = *state;
    client_lost_in_round_3(state, "FEDC_FAULT=bank-c/kill:fit@3");
    expect_killed(&c->f[0].cl[2], 5);
    c->ok = 1;
}

static void test_client_frozen_mid_round(void **state) {
    ctx *c = *state;
    client_lost_in_round_3(state, "FEDC_FAULT=bank-c/stop:fit@3");
    fed_proc *p = &c->f[0].cl[2];
    /* Still there, frozen with its connection open, after the others finished. */
    assert_int_equal(proc_state(p->pid), 'T');
    proc_signal(p->pid, SIGKILL);
    expect_killed(p, 5);
    c->ok = 1;
}

/* ---- the coordinator dies and is restarted with --resume ----------------------------------- */

#define RESTART_ROUNDS 6

/* Runs 3 clients for RESTART_ROUNDS rounds; with `fault`, the first coordinator dies of it after
 * `rounds_before` metrics lines and the checkpoint of round `ckpt_round`, and a second one resumes
 * from that checkpoint. Returns the final model's bytes (caller frees). */
static char *restart_run(fed *f, const char *fault, int rounds_before, int ckpt_round, int sampled,
                         size_t *len) {
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json"), *model = fpath(f, "model.bin");
    char *ckpt = fpath(f, "ckpt");
    /* clang-format off */
    const char *args[] = {"--min-clients", "3", "--rounds", "6", "--local-epochs", "2",
                          "--layers", "16", "--round-timeout", "40", "--heartbeat-timeout", "2",
                          "--wait-timeout", "30", "--checkpoint-dir", ckpt,
                          "--metrics-json", metrics, "--model-out", model, NULL, NULL, NULL,
                          NULL, NULL, NULL};
    /* clang-format on */
    size_t na = sizeof args / sizeof args[0] - 6; /* the first NULL */
    if (sampled) { /* 2 of the 3 clients per round, chosen by (seed, round) */
        args[na++] = "--min-fit-clients";
        args[na++] = "2";
        args[na++] = "--fraction-fit";
        args[na++] = "0.6";
    }
    const char *env[] = {fault, NULL};
    assert_int_equal(fed_start_coord(f, fault ? env : NULL, args, 0, START_TIMEOUT), 0);
    start_client(f, "bank-a", "shard0.csv", NULL);
    start_client(f, "bank-b", "shard1.csv", NULL);
    start_client(f, "bank-c", "shard2.csv", NULL);
    if (fault) {
        expect_killed(&f->coord, RUN_TIMEOUT);
        assert_true(fed_file_has(f->coord.err, "fault injection: kill"));
        /* The crash came before the next metrics line. */
        expect_rounds(metrics, NULL, rounds_before);
        char *file = fpath(f, "ckpt/coordinator.ckpt");
        assert_true(proc_exists(file));
        free(file);
        /* Same flags plus --resume, without the fault; the clients are still running. */
        for (int i = 0; i < f->n_cl; i++)
            assert_int_not_equal(proc_state(f->cl[i].pid), 0);
        args[na] = "--resume";
        size_t from = fed_file_size(f->coord.err);
        assert_int_equal(fed_start_coord(f, NULL, args, 1, START_TIMEOUT), 0);
        char resumed[64];
        snprintf(resumed, sizeof resumed, "resuming run after round %d", ckpt_round);
        assert_int_equal(fed_wait_text(f->coord.err, resumed, from, 0, 1), 0);
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < f->n_cl; i++) {
        fed_expect_exit(&f->cl[i], 15, 0);
        /* They rejoin the resumed run by themselves, or hear that it is complete. */
        if (fault && ckpt_round < RESTART_ROUNDS)
            assert_true(fed_file_has(f->cl[i].err, "rejoined the run"));
        assert_true(fed_file_has(f->cl[i].err, "the coordinator says: run complete"));
    }
    fed_round r[RESTART_ROUNDS];
    expect_rounds(metrics, r, RESTART_ROUNDS);
    for (int i = 0; i < RESTART_ROUNDS; i++)
        assert_int_equal(r[i].participants, sampled ? 2 : 3);
    char *bytes = proc_read_file(model, len);
    assert_non_null(bytes);
    free(metrics);
    free(model);
    free(ckpt);
    return bytes;
}

static void coordinator_restart(void **state, const char *fault, int rounds_before, int ckpt_round,
                                int sampled) {
    ctx *c = *state;
    size_t la = 0, lb = 0;
    char *a = restart_run(&c->f[0], fault, rounds_before, ckpt_round, sampled, &la);
    /* A run without the crash gives the same model, bit for bit. */
    char *b = restart_run(&c->f[1], NULL, 0, 0, sampled, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    c->ok = 1;
}

static void test_coordinator_killed_after_checkpoint(void **state) {
    coordinator_restart(state, "FEDC_FAULT=coordinator/kill:checkpoint@3", 2, 3, 0);
}

/* With 2 of 3 clients sampled per round, the resumed run waits for all three clients of the
 * interrupted run before it selects, so it picks the same two as a run without the crash. */
static void test_coordinator_killed_sampled(void **state) {
    coordinator_restart(state, "FEDC_FAULT=coordinator/kill:aggregate@3", 2, 2, 1);
}

static void test_coordinator_killed_at_round_start(void **state) {
    coordinator_restart(state, "FEDC_FAULT=coordinator/kill:round-start@4", 3, 3, 0);
}

/* After the last round's checkpoint: the restarted coordinator has no round left to run, but the
 * clients still wait to hear that the run is complete. */
static void test_coordinator_killed_after_last_checkpoint(void **state) {
    coordinator_restart(state, "FEDC_FAULT=coordinator/kill:checkpoint@6", 5, 6, 0);
}

/* ---- client-level DP across a coordinator restart ----------------------------------------- */

/* The epsilon of `steps` rounds at q 1, z 1, delta 1e-5, as fedc privacy prints it. */
static double privacy_of(int steps) {
    /* build/coordinator/fedc-coordinator -> build/cli/fedc */
    char fedc[4096];
    snprintf(fedc, sizeof fedc, "%s", g_coord);
    char *slash = strrchr(fedc, '/');
    assert_non_null(slash);
    *slash = 0;
    slash = strrchr(fedc, '/');
    assert_non_null(slash);
    snprintf(slash, sizeof fedc - (size_t)(slash - fedc), "/cli/fedc");
    return simrun_privacy(fedc, 1.0, 1.0, steps);
}

/* The coordinator dies right after round 3's evaluation request went out (its noised model
 * reached the clients), before the checkpoint; the resumed run redoes round 3 and the accountant
 * charges it twice: rounds 3..5 report the epsilon of 4..6 rounds. Resuming with another noise
 * multiplier is refused. */
static void test_dp_resume_charges_again(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json"), *ckpt = fpath(f, "ckpt");
    /* clang-format off */
    const char *args[] = {"--min-clients", "3", "--rounds", "5", "--layers", "8",
                          "--round-timeout", "40", "--heartbeat-timeout", "2", "--wait-timeout",
                          "30", "--checkpoint-dir", ckpt, "--metrics-json", metrics,
                          "--dp-clip", "1", "--dp-noise", "1", NULL, NULL};
    /* clang-format on */
    size_t na = sizeof args / sizeof args[0] - 2;
    const char *env[] = {"FEDC_FAULT=coordinator/kill:eval-sent@3", NULL};
    assert_int_equal(fed_start_coord(f, env, args, 0, START_TIMEOUT), 0);
    start_client(f, "bank-a", "shard0.csv", NULL);
    start_client(f, "bank-b", "shard1.csv", NULL);
    start_client(f, "bank-c", "shard2.csv", NULL);
    expect_killed(&f->coord, RUN_TIMEOUT);
    /* Another noise multiplier cannot continue the run. */
    args[19] = "2";
    args[na] = "--resume";
    assert_int_equal(fed_start_coord(f, NULL, args, 1, START_TIMEOUT), -1);
    assert_true(fed_file_has(f->coord.err, "the accountant cannot mix them"));
    args[19] = "1";
    size_t from = fed_file_size(f->coord.err);
    assert_int_equal(fed_start_coord(f, NULL, args, 1, START_TIMEOUT), 0);
    assert_int_equal(fed_wait_text(f->coord.err, "charging 2 + 1 round(s)", from, 0, 1), 0);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < f->n_cl; i++)
        fed_expect_exit(&f->cl[i], 15, 0);
    char *text = proc_read_file(metrics, NULL);
    assert_non_null(text);
    const char *line = text;
    for (int k = 1; k <= 5; k++) {
        double eps = NAN, charged = NAN;
        assert_int_equal(fed_json_num(line, "dp_epsilon", &eps), 1);
        assert_int_equal(fed_json_num(line, "dp_rounds_charged", &charged), 1);
        int want = k <= 2 ? k : k + 1;
        double ref = privacy_of(want);
        print_message("round %d: %g round(s) charged, epsilon %.4f (fedc privacy for %d: %.4f)\n",
                      k, charged, eps, want, ref);
        assert_true(charged == want);
        assert_true(fabs(eps - ref) <= 1e-3 * ref + 1e-3);
        line = strchr(line, '\n');
        assert_non_null(line);
        line++;
    }
    free(text);
    free(metrics);
    free(ckpt);
    c->ok = 1;
}

/* ---- a client joins late ------------------------------------------------------------------- */

#define LATE_ROUNDS 6

static void test_late_join(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json");
    /* clang-format off */
    const char *args[] = {"--min-clients", "2", "--rounds", "6", "--local-epochs", "2",
                          "--layers", "16", "--round-timeout", "40", "--heartbeat-timeout", "5",
                          "--wait-timeout", "30", "--metrics-json", metrics, NULL};
    /* clang-format on */
    /* Rounds of at least 300 ms, so that the late client arrives while the run goes on. */
    char fault[512];
    const char *env[] = {
        delay_every_round(fault, sizeof fault, "bank-a", "fit-res", LATE_ROUNDS, 300), NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    start_client(f, "bank-a", "shard0.csv", env);
    start_client(f, "bank-b", "shard1.csv", env);
    assert_int_equal(fed_wait_text(metrics, "{\"round\":2,", 0, f->coord.pid, RUN_TIMEOUT), 0);
    start_client(f, "bank-c", "shard2.csv", env);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < f->n_cl; i++)
        fed_expect_exit(&f->cl[i], 15, 0);
    fed_round r[LATE_ROUNDS];
    expect_rounds(metrics, r, LATE_ROUNDS);
    assert_int_equal(r[0].participants, 2);
    assert_int_equal(r[1].participants, 2);
    /* Selected from the round after it joined, and in every round after that. */
    int first = 0;
    for (int i = 2; i < LATE_ROUNDS && !first; i++)
        if (r[i].participants == 3)
            first = i + 1;
    print_message("the late client took part from round %d\n", first);
    /* It can only take part after round 2 (it started then); how soon depends on how fast its
     * process starts on a loaded machine, so any later round will do, as long as it stays. */
    assert_true(first >= 3 && first <= LATE_ROUNDS);
    for (int i = first - 1; i < LATE_ROUNDS; i++)
        assert_int_equal(r[i].participants, 3);
    /* Its first evaluation may come before its first FitIns; the EvaluateIns carries the
     * standardisation too, so that answer is valid and counts its rows. */
    assert_false(fed_file_has(f->coord.err, "marked dead"));
    assert_false(fed_file_has(f->coord.err, "refused"));
    free(metrics);
    c->ok = 1;
}

/* ---- a client with another schema is refused ----------------------------------------------- */

/* Rewrites a CSV: drops column `drop` (0-based, -1 for none) and renames column `rename` to
 * new_name (-1 for none) in the header. */
static void rewrite_csv(const char *src, const char *dst, int drop, int rename,
                        const char *new_name) {
    size_t len = 0;
    char *in = proc_read_file(src, &len);
    assert_non_null(in);
    char *out = malloc(len + 256);
    assert_non_null(out);
    size_t o = 0;
    int line = 0;
    for (const char *p = in; *p; line++) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        int col = 0;
        size_t start = 0;
        int first_out = 1;
        for (size_t i = 0; i <= l; i++) {
            if (i < l && p[i] != ',')
                continue;
            if (col != drop) {
                if (!first_out)
                    out[o++] = ',';
                first_out = 0;
                if (line == 0 && col == rename) {
                    memcpy(out + o, new_name, strlen(new_name));
                    o += strlen(new_name);
                } else {
                    memcpy(out + o, p + start, i - start);
                    o += i - start;
                }
            }
            col++;
            start = i + 1;
        }
        out[o++] = '\n';
        p += l + (e ? 1 : 0);
    }
    assert_int_equal(proc_write_bytes(dst, out, o), 0);
    free(out);
    free(in);
}

#define SCHEMA_ROUNDS 5

static void test_schema_mismatch_refused(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json");
    char *src = fpath(f, "shard2.csv"), *dropped = fpath(f, "dropped.csv"),
         *renamed = fpath(f, "renamed.csv");
    rewrite_csv(src, dropped, 4, -1, NULL);     /* no a5 */
    rewrite_csv(src, renamed, -1, 6, "a7_new"); /* a7 renamed */
    assert_true(fed_file_has(dropped, "a4,a6,"));
    assert_true(fed_file_has(renamed, "a6,a7_new,a8"));
    /* clang-format off */
    const char *args[] = {"--min-clients", "2", "--rounds", "5", "--local-epochs", "2",
                          "--layers", "16", "--round-timeout", "40", "--heartbeat-timeout", "5",
                          "--wait-timeout", "30", "--metrics-json", metrics, NULL};
    /* clang-format on */
    char fault[512];
    const char *env[] = {
        delay_every_round(fault, sizeof fault, "bank-a", "fit-res", SCHEMA_ROUNDS, 200), NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    start_client(f, "bank-a", "shard0.csv", env);
    assert_int_equal(fed_wait_text(f->coord.err, "bank-a joined", 0, f->coord.pid, 15), 0);
    /* Refused while the coordinator waits for clients: it must not count as one. */
    int x = fed_start_client(f, "bank-x", dropped, NULL, NULL);
    assert_true(x >= 0);
    fed_expect_exit(&f->cl[x], 15, 2);
    start_client(f, "bank-b", "shard1.csv", env);
    assert_int_equal(fed_wait_text(metrics, "{\"round\":1,", 0, f->coord.pid, RUN_TIMEOUT), 0);
    /* Refused during the run. */
    int y = fed_start_client(f, "bank-y", renamed, NULL, NULL);
    assert_true(y >= 0);
    fed_expect_exit(&f->cl[y], 15, 2);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    fed_expect_exit(&f->cl[0], 15, 0);
    fed_expect_exit(&f->cl[2], 15, 0);

    char *ex = proc_read_file(f->cl[x].err, NULL), *ey = proc_read_file(f->cl[y].err, NULL);
    assert_non_null(ex);
    assert_non_null(ey);
    print_message("dropped column: %s", strstr(ex, "refused") ? strstr(ex, "refused") : ex);
    print_message("renamed column: %s", strstr(ey, "refused") ? strstr(ey, "refused") : ey);
    assert_non_null(strstr(ex, "'a5'"));
    assert_non_null(strstr(ey, "'a7_new'"));
    assert_non_null(strstr(ey, "'a7'"));
    free(ex);
    free(ey);
    fed_round r[SCHEMA_ROUNDS];
    expect_rounds(metrics, r, SCHEMA_ROUNDS);
    for (int i = 0; i < SCHEMA_ROUNDS; i++) {
        assert_int_equal(r[i].participants, 2);
        assert_int_equal(r[i].selected, 2);
    }
    free(metrics);
    free(src);
    free(dropped);
    free(renamed);
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
        cmocka_unit_test_setup_teardown(test_client_killed_mid_round, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_frozen_mid_round, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coordinator_killed_after_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coordinator_killed_at_round_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coordinator_killed_after_last_checkpoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_late_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dp_resume_charges_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coordinator_killed_sampled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_mismatch_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
