/* Service life of the programs (fedc-coordinator argv[1], fedc-client argv[2]) as local processes:
 * - SIGTERM stops the coordinator mid-run with exit 0, the clients hear it is stopping and wait,
 *   and a coordinator started again with --resume finishes the run: every round once, and the
 *   same model bit for bit as a run that was never stopped;
 * - SIGHUP reloads the coordinator's allow-list: a bad list changes nothing; a removed key's
 *   client finishes its round, is refused from the next (exit 2) and the run goes on with the
 *   others; a key added to the allow-list and the clients' rosters (SIGHUP to them too) joins
 *   without a restart, where before the reload it was refused;
 * - the client's messages: no "rejoined" for the answers to joins queued while it waited for the
 *   coordinator; a second --insecure client with a name already connected is refused naming
 *   --name (exit 2) instead of evicting the first; the silence it gives up after is the silence
 *   measured; a stop while it waits is a stop (exit 0), with SIGHUPs before it handled, not
 *   fatal and not "poll failed";
 * - a client with --heartbeat-ms 0 heartbeats as the coordinator's Welcome asks (a quarter of its
 *   --heartbeat-timeout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fed.h"
#include "fed_expect.h"
#include "fedc/keys.h"

#define RUN_TIMEOUT 60
#define START_TIMEOUT 15

static const char *g_coord, *g_client;

typedef fed_pair ctx;

static int setup(void **state) {
    return fed_pair_setup(state, "fedc-test-life-", g_coord, g_client);
}

static int teardown(void **state) {
    return fed_pair_teardown(state);
}

static char *fpath(const fed *f, const char *name) {
    return fed_fpath(f, name);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to timeout_s until the metrics file holds at least n lines. */
static void wait_rounds(const char *metrics, int n, int timeout_s) {
    fed_round r[64];
    for (int i = 0; i < timeout_s * 50; i++) {
        if (fed_read_metrics(metrics, r, 64) >= n)
            return;
        sleep_ms(20);
    }
    fail_msg("%s: fewer than %d rounds after %d s", metrics, n, timeout_s);
}

/* Checks the metrics file holds rounds 1..n in order, each once; their lines into r. */
static void expect_rounds(const char *metrics, fed_round *r, int n) {
    int got = fed_read_metrics(metrics, r, 64);
    if (got != n)
        print_message("%s: %d metrics lines, expected %d\n", metrics, got, n);
    assert_int_equal(got, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(r[i].round, i + 1);
}

/* ---- SIGTERM: exit 0, the clients wait, --resume finishes ---------------------------------- */

#define STOP_ROUNDS 6

/* 3 clients, STOP_ROUNDS rounds with a checkpoint; with `stop`, the coordinator gets SIGTERM once
 * two rounds are in and is started again with --resume. Returns the model's bytes. */
static char *stop_run(fed *f, int stop, size_t *len) {
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fpath(f, "metrics.json"), *model = fpath(f, "model.bin");
    char *ckpt = fpath(f, "ckpt");
    /* clang-format off */
    const char *args[] = {"--min-clients", "3", "--rounds", "6", "--local-epochs", "2",
                          "--layers", "16", "--round-timeout", "40", "--heartbeat-timeout", "2",
                          "--wait-timeout", "30", "--checkpoint-dir", ckpt, "--secagg", "off",
                          "--metrics-json", metrics, "--model-out", model, NULL, NULL};
    /* clang-format on */
    size_t na = sizeof args / sizeof args[0] - 2;
    /* Rounds of at least 0.3 s, so that the stop lands mid-run. */
    const char *env[] = {"FEDC_FAULT=delay:fit@*:300", NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    const char *names[] = {"bank-a", "bank-b", "bank-c"};
    for (int i = 0; i < 3; i++) {
        char shard[32];
        snprintf(shard, sizeof shard, "shard%d.csv", i);
        char *csv = fpath(f, shard);
        assert_true(fed_start_client(f, names[i], csv, stop ? env : NULL, NULL) >= 0);
        free(csv);
    }
    if (stop) {
        wait_rounds(metrics, 2, RUN_TIMEOUT);
        proc_signal(f->coord.pid, SIGTERM);
        fed_expect_exit(&f->coord, 15, 0);
        assert_true(fed_file_has(f->coord.err, "stopping on request after round"));
        assert_true(fed_file_has(f->coord.err, "start again with --resume"));
        fed_round r[64];
        int done = fed_read_metrics(metrics, r, 64);
        assert_true(done >= 2 && done < STOP_ROUNDS);
        /* The clients heard it and wait; none gave up. */
        for (int i = 0; i < f->n_cl; i++) {
            assert_int_equal(fed_wait_text(f->cl[i].err, "waiting up to 40 s", 0, f->cl[i].pid, 10),
                             0);
            assert_int_equal(kill(f->cl[i].pid, 0), 0);
        }
        args[na] = "--resume";
        assert_int_equal(fed_start_coord(f, NULL, args, 1, START_TIMEOUT), 0);
        char resumed[64];
        snprintf(resumed, sizeof resumed, "resuming run after round %d", done);
        assert_true(fed_file_has(f->coord.err, resumed));
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < f->n_cl; i++) {
        fed_expect_exit(&f->cl[i], 15, 0);
        if (stop)
            assert_true(fed_file_has(f->cl[i].err, "rejoined the run"));
    }
    fed_round r[64];
    expect_rounds(metrics, r, STOP_ROUNDS);
    for (int i = 0; i < STOP_ROUNDS; i++)
        assert_int_equal(r[i].participants, 3);
    char *bytes = proc_read_file(model, len);
    assert_non_null(bytes);
    free(metrics);
    free(model);
    free(ckpt);
    return bytes;
}

static void test_sigterm_then_resume(void **state) {
    ctx *c = *state;
    size_t la = 0, lb = 0;
    char *a = stop_run(&c->f[0], 1, &la);
    char *b = stop_run(&c->f[1], 0, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    c->ok = 1;
}

/* ---- SIGHUP: the allow-list and the rosters ------------------------------------------------ */

static const char *const NAMES[] = {"bank-a", "bank-b", "bank-c", "bank-d"};

static void keygen(fed *f, const char *name) {
    char *dir = fpath(f, "keys");
    mkdir(dir, 0700);
    fedc_identity id;
    fedc_diag d;
    assert_int_equal(fedc_key_generate(&id, name, &d), FEDC_OK);
    assert_int_equal(fedc_key_write(&id, dir, 0, &d), FEDC_OK);
    fedc_key_wipe(&id);
    free(dir);
}

/* Copies keys/NAME.key into DIR/NAME.key (DIR created when missing). */
static void put_key(fed *f, const char *dir, const char *name) {
    char *d = fpath(f, dir);
    mkdir(d, 0755);
    free(d);
    char src[128], dst[160];
    snprintf(src, sizeof src, "keys/%s.key", name);
    snprintf(dst, sizeof dst, "%s/%s.key", dir, name);
    char *ps = fpath(f, src), *pd = fpath(f, dst);
    size_t len;
    char *bytes = proc_read_file(ps, &len);
    assert_non_null(bytes);
    assert_int_equal(proc_write_bytes(pd, bytes, len), 0);
    free(bytes);
    free(ps);
    free(pd);
}

static void drop_key(fed *f, const char *dir, const char *name) {
    char rel[160];
    snprintf(rel, sizeof rel, "%s/%s.key", dir, name);
    char *p = fpath(f, rel);
    assert_int_equal(unlink(p), 0);
    free(p);
}

static const char *const SLOW[] = {"FED_SECURE=1", "FEDC_FAULT=delay:fit@*:300", NULL};

/* Starts bank i with its key, the coordinator's public key and the roster directory `roster`;
 * env is SLOW or another list with FED_SECURE=1. */
static int start_keyed_env(fed *f, int i, const char *roster, const char *const *env) {
    char shard[32], key[64];
    snprintf(shard, sizeof shard, "shard%d.csv", i);
    snprintf(key, sizeof key, "keys/%s.key_secret", NAMES[i]);
    char *csv = fpath(f, shard), *k = fpath(f, key), *cp = fpath(f, "keys/coordinator.key");
    char *r = fpath(f, roster);
    const char *cargs[] = {"--secagg", "on",      "--key", k,   "--coordinator-key",
                           cp,         "--peers", r,       NULL};
    int idx = fed_start_client(f, NAMES[i], csv, env, cargs);
    assert_true(idx >= 0);
    free(csv);
    free(k);
    free(cp);
    free(r);
    return idx;
}

static int start_keyed(fed *f, int i, const char *roster) {
    return start_keyed_env(f, i, roster, SLOW);
}

/* A secure federation: keys for the coordinator and n_keys banks, the first n_allowed in the
 * allow-list "allow" and in the roster "roster"; the coordinator started with `min` clients to
 * begin, `rounds` rounds and --heartbeat-timeout hb. */
static void start_secure(fed *f, int n_keys, int n_allowed, int min, const char *rounds,
                         const char *hb, char **metrics) {
    keygen(f, "coordinator");
    for (int i = 0; i < n_keys; i++)
        keygen(f, NAMES[i]);
    for (int i = 0; i < n_allowed; i++) {
        put_key(f, "allow", NAMES[i]);
        put_key(f, "roster", NAMES[i]);
    }
    assert_int_equal(fed_write_shards(f, n_keys, "shard"), 0);
    *metrics = fpath(f, "metrics.json");
    char *allow = fpath(f, "allow"), *ck = fpath(f, "keys/coordinator.key_secret");
    char mins[8];
    snprintf(mins, sizeof mins, "%d", min);
    const char *args[] = {"--min-clients",
                          mins,
                          "--min-fit-clients",
                          "3",
                          "--rounds",
                          rounds,
                          "--layers",
                          "16",
                          "--heartbeat-timeout",
                          hb,
                          "--round-timeout",
                          "40",
                          "--wait-timeout",
                          "30",
                          "--metrics-json",
                          *metrics,
                          "--secagg",
                          "on",
                          "--key",
                          ck,
                          "--allow",
                          allow,
                          NULL};
    const char *env[] = {"FED_SECURE=1", NULL};
    assert_int_equal(fed_start_coord(f, env, args, 0, START_TIMEOUT), 0);
    free(allow);
    free(ck);
}

/* 4 banks; after round 2 a broken key file makes a reload fail (nothing changes), then bank-d's
 * key is removed: it is refused from the next round and the others finish. */
static void test_sighup_removes_key(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    char *metrics;
    start_secure(f, 4, 4, 4, "8", "2", &metrics);
    for (int i = 0; i < 4; i++)
        start_keyed(f, i, "roster");
    wait_rounds(metrics, 2, RUN_TIMEOUT);
    /* A bad key file: the reload fails and the list stays (bank-d keeps taking part). */
    char *bad = fpath(f, "allow/broken.key");
    assert_int_equal(proc_write_file(bad, "this is not a key\n"), 0);
    size_t from = fed_file_size(f->coord.err);
    proc_signal(f->coord.pid, SIGHUP);
    assert_int_equal(
        fed_wait_text(f->coord.err, "reload of the allow-list failed", from, f->coord.pid, 10), 0);
    assert_true(fed_file_has(f->coord.err, "broken.key"));
    assert_int_equal(unlink(bad), 0);
    free(bad);
    fed_round r[64];
    int before = fed_read_metrics(metrics, r, 64);
    wait_rounds(metrics, before + 1, RUN_TIMEOUT);
    assert_int_equal(fed_read_metrics(metrics, r, 64) >= before + 1, 1);
    assert_int_equal(r[before].participants, 4);
    /* Now bank-d leaves the allow-list. */
    drop_key(f, "allow", "bank-d");
    from = fed_file_size(f->coord.err);
    proc_signal(f->coord.pid, SIGHUP);
    assert_int_equal(fed_wait_text(f->coord.err, "reloaded the allow-list", from, f->coord.pid, 10),
                     0);
    int at_reload = fed_read_metrics(metrics, r, 64);
    fed_expect_exit(&f->cl[3], RUN_TIMEOUT, 2);
    assert_true(fed_file_has(f->cl[3].err, "removed from the coordinator's allow-list"));
    assert_true(fed_file_has(f->coord.err, "bank-d: its key is no longer in the allow-list"));
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < 3; i++)
        fed_expect_exit(&f->cl[i], 15, 0);
    expect_rounds(metrics, r, 8);
    /* The round under way at the reload may still count bank-d; every later one does not. */
    for (int i = at_reload + 1; i < 8; i++)
        assert_int_equal(r[i].participants, 3);
    free(metrics);
    c->ok = 1;
}

/* 3 banks; bank-d's key is in no list and it is refused; after its key goes into the allow-list
 * and the rosters and everyone gets SIGHUP, it joins the running federation. The reload and the
 * join fall in one round on purpose (under load they used to by chance): bank-a stops in round
 * 3's training (fault injection) until bank-d has joined, so round 3 is still under way on the
 * list loaded before. bank-d must sit the rest of that round out and take part from round 4; the
 * coordinator once put it into round 3's evaluation session, found no key for it in the list in
 * force and excluded it for good. */
static void test_sighup_adds_key(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    char *metrics;
    /* The heartbeat timeout is far above the time bank-a is held stopped. */
    start_secure(f, 4, 3, 3, "14", "60", &metrics);
    static const char *const HOLD[] = {"FED_SECURE=1", "FEDC_FAULT=delay:fit@*:300,stop:fit@3",
                                       NULL};
    start_keyed_env(f, 0, "roster", HOLD);
    for (int i = 1; i < 3; i++)
        start_keyed(f, i, "roster");
    wait_rounds(metrics, 1, RUN_TIMEOUT);
    /* Not in the allow-list yet: refused. */
    put_key(f, "roster-d", "bank-a");
    put_key(f, "roster-d", "bank-b");
    put_key(f, "roster-d", "bank-c");
    put_key(f, "roster-d", "bank-d");
    int d = start_keyed(f, 3, "roster-d");
    fed_expect_exit(&f->cl[d], 30, 2);
    assert_true(fed_file_has(f->cl[d].err, "does not accept our key"));
    /* Round 3 under way and held there: bank-a is stopped before training. */
    assert_int_equal(
        fed_wait_text(f->cl[0].err, "stop at fit round 3", 0, f->cl[0].pid, RUN_TIMEOUT), 0);
    /* Added everywhere, and everyone told (bank-a handles its SIGHUP once it goes on). */
    put_key(f, "allow", "bank-d");
    put_key(f, "roster", "bank-d");
    size_t from = fed_file_size(f->coord.err);
    size_t cfrom[3];
    for (int i = 0; i < 3; i++)
        cfrom[i] = fed_file_size(f->cl[i].err);
    proc_signal(f->coord.pid, SIGHUP);
    for (int i = 0; i < 3; i++)
        proc_signal(f->cl[i].pid, SIGHUP);
    assert_int_equal(fed_wait_text(f->coord.err, "added: bank-d", from, f->coord.pid, 10), 0);
    for (int i = 1; i < 3; i++)
        assert_int_equal(
            fed_wait_text(f->cl[i].err, "reloaded the roster", cfrom[i], f->cl[i].pid, 10), 0);
    d = start_keyed(f, 3, "roster-d");
    assert_int_equal(fed_wait_text(f->coord.err, "bank-d joined", from, f->coord.pid, 30), 0);
    assert_true(fed_file_has(f->coord.err, "bank-d: admitted by the reloaded allow-list"));
    fed_round r[64];
    assert_int_equal(fed_read_metrics(metrics, r, 64), 2);
    /* Another reload of the same list before the first applies: bank-d connected with a key
     * that list keeps, so it is not revoked (it once was: checked against the list in force). */
    from = fed_file_size(f->coord.err);
    proc_signal(f->coord.pid, SIGHUP);
    assert_int_equal(fed_wait_text(f->coord.err, "reloaded the allow-list", from, f->coord.pid, 10),
                     0);
    assert_int_equal(
        fed_wait_text(f->coord.err, "0 connected client(s) affected", from, f->coord.pid, 10), 0);
    proc_signal(f->cl[0].pid, SIGCONT);
    assert_int_equal(fed_wait_text(f->cl[0].err, "reloaded the roster", cfrom[0], f->cl[0].pid, 10),
                     0);
    fed_expect_exit(&f->coord, 2 * RUN_TIMEOUT, 0);
    for (int i = 0; i < 4; i++)
        fed_expect_exit(&f->cl[i == 3 ? d : i], 15, 0);
    assert_true(fed_file_has(f->cl[d].err, "joined run"));
    assert_false(fed_file_has(f->coord.err, "excluded from secure aggregation"));
    expect_rounds(metrics, r, 14);
    assert_int_equal(r[0].participants, 3);
    assert_int_equal(r[2].participants, 3);
    /* Taken in at the first round boundary after the reload, and kept. */
    for (int i = 3; i < 14; i++)
        assert_int_equal(r[i].participants, 4);
    free(metrics);
    c->ok = 1;
}

/* ---- the client's messages ------------------------------------------------------------------ */

/* A client that waited for the coordinator sent several joins; each gets a Welcome, and only the
 * first is news: no "rejoined the run at round 1" before any round. */
static void test_no_rejoin_before_any_round(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 1, "shard"), 0);
    char *csv = fpath(f, "shard0.csv");
    assert_true(fed_start_client(f, "bank-a", csv, NULL, NULL) >= 0);
    free(csv);
    sleep_ms(4500); /* three joins queued (one every 2 s) */
    const char *args[] = {"--min-clients", "1", "--min-fit-clients", "1", "--secagg", "off",
                          "--rounds",      "2", "--layers",          "8", NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    fed_expect_exit(&f->cl[0], 15, 0);
    assert_true(fed_file_has(f->cl[0].err, "joined run"));
    assert_false(fed_file_has(f->cl[0].err, "rejoined"));
    c->ok = 1;
}

/* --insecure: names are what clients say. A second client with a name that is connected is
 * refused for good, naming --name, and the first carries on undisturbed. */
static void test_insecure_duplicate_name_refused(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    const char *args[] = {
        "--min-clients", "2", "--min-fit-clients", "2",  "--secagg", "off", "--rounds", "2",
        "--layers",      "8", "--wait-timeout",    "40", NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    char *s0 = fpath(f, "shard0.csv"), *s1 = fpath(f, "shard1.csv"), *s2 = fpath(f, "shard2.csv");
    assert_true(fed_start_client(f, "host", s0, NULL, NULL) >= 0);
    assert_int_equal(fed_wait_text(f->coord.err, "host joined", 0, f->coord.pid, 15), 0);
    assert_true(fed_start_client(f, "host", s1, NULL, NULL) >= 0);
    fed_expect_exit(&f->cl[1], 20, 2);
    assert_true(fed_file_has(f->cl[1].err, "every client needs its own --name"));
    assert_true(fed_start_client(f, "other", s2, NULL, NULL) >= 0);
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    fed_expect_exit(&f->cl[0], 15, 0);
    fed_expect_exit(&f->cl[2], 15, 0);
    assert_false(fed_file_has(f->cl[0].err, "it restarted?"));
    assert_false(fed_file_has(f->coord.err, "host reconnected"));
    free(s0);
    free(s1);
    free(s2);
    c->ok = 1;
}

/* The number in "no word from the coordinator for N s" is the silence measured: a client frozen
 * past its --coordinator-timeout says how long it really heard nothing, not the flag's value. */
static void test_silence_measured(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 1, "shard"), 0);
    char *csv = fpath(f, "shard0.csv");
    /* Nobody listens on the federation's port. */
    const char *cargs[] = {"--coordinator-timeout", "3", NULL};
    assert_true(fed_start_client(f, "bank-a", csv, NULL, cargs) >= 0);
    free(csv);
    assert_int_equal(fed_wait_text(f->cl[0].err, "connecting to", 0, f->cl[0].pid, 10), 0);
    proc_signal(f->cl[0].pid, SIGSTOP);
    sleep_ms(6000);
    proc_signal(f->cl[0].pid, SIGCONT);
    fed_expect_exit(&f->cl[0], 15, 1);
    char *log = proc_read_file(f->cl[0].err, NULL);
    assert_non_null(log);
    const char *at = strstr(log, "no word from the coordinator at ");
    assert_non_null(at);
    at = strstr(at, " for ");
    assert_non_null(at);
    double secs = strtod(at + 5, NULL);
    print_message("the client says it heard nothing for %.0f s\n", secs);
    assert_true(secs >= 5.5);
    assert_non_null(strstr(at, "(--coordinator-timeout 3)"));
    free(log);
    c->ok = 1;
}

/* A client waiting for the coordinator: SIGHUPs are handled (not fatal, no "poll failed"), and
 * SIGTERM makes it stop with exit 0 saying so. */
static void test_client_stop_while_waiting(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 1, "shard"), 0);
    char *csv = fpath(f, "shard0.csv");
    assert_true(fed_start_client(f, "bank-a", csv, NULL, NULL) >= 0);
    free(csv);
    assert_int_equal(fed_wait_text(f->cl[0].err, "connecting to", 0, f->cl[0].pid, 10), 0);
    for (int i = 0; i < 200; i++) {
        proc_signal(f->cl[0].pid, SIGHUP);
        sleep_ms(2);
    }
    sleep_ms(200);
    assert_int_equal(kill(f->cl[0].pid, 0), 0);
    proc_signal(f->cl[0].pid, SIGTERM);
    fed_expect_exit(&f->cl[0], 10, 0);
    assert_true(fed_file_has(f->cl[0].err, "stopping: asked to"));
    assert_true(fed_file_has(f->cl[0].err, "--insecure has no roster"));
    assert_false(fed_file_has(f->cl[0].err, "poll failed"));
    assert_false(fed_file_has(f->cl[0].err, "failed: Interrupted"));
    c->ok = 1;
}

/* Heartbeats (training part) in round 1's metrics line: messages received, from msgs_by_kind. */
static long round1_heartbeats(const char *metrics) {
    char *text = proc_read_file(metrics, NULL);
    assert_non_null(text);
    const char *at = strstr(text, "\"msgs_by_kind\":{");
    assert_non_null(at);
    const char *end = strchr(at, '}');
    const char *hb = strstr(at, "\"heartbeat\":[");
    long n = hb && hb < end ? strtol(hb + strlen("\"heartbeat\":["), NULL, 10) : 0;
    free(text);
    return n;
}

/* One round of two clients whose training takes 3 s longer (their I/O threads go on), with the
 * coordinator's --heartbeat-timeout 40 and the clients' --heartbeat-ms hb_ms: the heartbeats the
 * coordinator received during the round's training. */
static long heartbeats_in_slow_round(fed *f, const char *hb_ms) {
    assert_int_equal(fed_write_shards(f, 2, "shard"), 0);
    char *metrics = fpath(f, "metrics.json");
    const char *args[] = {"--min-clients",       "2",     "--rounds", "1",
                          "--heartbeat-timeout", "40",    "--layers", "8",
                          "--metrics-json",      metrics, NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    const char *env[] = {"FEDC_FAULT=delay:train@1:3000", NULL};
    const char *cargs[] = {"--heartbeat-ms", hb_ms, NULL};
    for (int i = 0; i < 2; i++) {
        char name[16], shard[32];
        snprintf(name, sizeof name, "bank-%c", 'a' + i);
        snprintf(shard, sizeof shard, "shard%d.csv", i);
        char *csv = fpath(f, shard);
        assert_true(fed_start_client(f, name, csv, env, cargs) >= 0);
        free(csv);
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    long n = round1_heartbeats(metrics);
    free(metrics);
    return n;
}

/* A client left to the coordinator's heartbeat interval (--heartbeat-ms 0) takes the quarter of
 * its --heartbeat-timeout that the Welcome asks for (10 s of 40): in a round that keeps both
 * clients training for 3 s the coordinator hears no heartbeat, where clients beating every
 * 200 ms of their own send about 15 each. */
static void test_heartbeat_interval_asked(void **state) {
    ctx *c = *state;
    long asked = heartbeats_in_slow_round(&c->f[0], "0");
    assert_true(fed_file_has(c->f[0].cl[0].err, "heartbeat every 10000 ms (a quarter of the "
                                                "coordinator's --heartbeat-timeout)"));
    long own = heartbeats_in_slow_round(&c->f[1], "200");
    assert_true(fed_file_has(c->f[1].cl[0].err, "heartbeat every 200 ms (--heartbeat-ms)"));
    print_message("heartbeats in the round: %ld following the coordinator, %ld every 200 ms\n",
                  asked, own);
    assert_true(asked <= 1);
    assert_true(own >= 10);
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
        cmocka_unit_test_setup_teardown(test_sigterm_then_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_removes_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_adds_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_rejoin_before_any_round, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insecure_duplicate_name_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_measured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_stop_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_interval_asked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
