/* Transport security and admission over real TCP (docs/security.md, "Transport and admission"): a
 * federation with CurveZMQ and a ZAP allow-list completes; an unlisted key and a wrong
 * coordinator key are refused with clear messages while the listed clients go on; a secret key
 * file others can read and missing key flags stop the programs before they start.
 *
 *   test_admission PATH/TO/fedc-coordinator PATH/TO/fedc-client */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fedc/clock.h"
#include "fedc/keys.h"
#include "fedc/modelfile.h"
#include "proc.h"

#define GERMAN FEDC_SOURCE_DIR "/tests/fixtures/german_credit/german_credit_numeric.csv"

static const char *g_coord, *g_client;
static char *g_dir;

static char *p(const char *name) {
    char *s = proc_path(g_dir, name);
    assert_non_null(s);
    return s;
}

static void keygen(const char *dir, const char *name) {
    fedc_identity id;
    fedc_diag d;
    assert_int_equal(fedc_key_generate(&id, name, &d), FEDC_OK);
    assert_int_equal(fedc_key_write(&id, dir, 0, &d), FEDC_OK);
    fedc_key_wipe(&id);
}

static void copy(const char *from, const char *to) {
    size_t n = 0;
    char *t = proc_read_file(from, &n);
    assert_non_null(t);
    assert_int_equal(proc_write_bytes(to, t, n), 0);
    free(t);
}

/* Shards of the German credit data: row i goes to shard i % 2. */
static void write_shards(void) {
    char *all = proc_read_file(GERMAN, NULL);
    assert_non_null(all);
    char *nl = strchr(all, '\n');
    assert_non_null(nl);
    size_t hl = (size_t)(nl - all) + 1;
    for (int k = 0; k < 2; k++) {
        size_t cap = strlen(all) + 1, len = 0;
        char *out = malloc(cap);
        assert_non_null(out);
        memcpy(out, all, hl);
        len = hl;
        int row = 0;
        for (char *line = nl + 1; *line; row++) {
            char *e = strchr(line, '\n');
            size_t ll = e ? (size_t)(e - line) + 1 : strlen(line);
            if (row % 2 == k) {
                memcpy(out + len, line, ll);
                len += ll;
            }
            line += ll;
        }
        char name[32];
        snprintf(name, sizeof name, "shard%d.csv", k);
        char *path = p(name);
        assert_int_equal(proc_write_bytes(path, out, len), 0);
        free(path);
        free(out);
    }
    free(all);
}

static int setup(void **state) {
    (void)state;
    g_dir = proc_mkdtemp("fedc-test-admission");
    if (!g_dir)
        return -1;
    char *keys = proc_path(g_dir, "keys"), *allow = proc_path(g_dir, "allow");
    if (mkdir(keys, 0700) || mkdir(allow, 0755))
        return -1;
    free(keys);
    free(allow);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (getenv("FEDC_KEEP") == NULL)
        proc_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static int has(const char *path, const char *needle) {
    char *t = proc_read_file(path, NULL);
    int r = t && strstr(t, needle) != NULL;
    free(t);
    return r;
}

static void dump(const char *what, const char *path) {
    char *t = proc_read_file(path, NULL);
    fprintf(stderr, "--- %s (%s):\n%s\n", what, path, t ? t : "(unreadable)");
    free(t);
}

static int listen_any(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* A loopback endpoint on a port the kernel just handed out (its ephemeral range, which the
 * fed.c helpers stay below), so that tests running side by side do not pick the same one. */
static void fresh_ep(char *ep, size_t n) {
    int port = 0, fd = listen_any(&port);
    assert_true(fd >= 0);
    close(fd);
    snprintf(ep, n, "tcp://127.0.0.1:%d", port);
}

/* Starts the coordinator (argv holds a pointer to ep) and waits until it listens; when another
 * process took the port in between, it picks a fresh one and starts again. Returns the pid. */
static int spawn_coord(const char *const *argv, const char *const *env, const char *out,
                       const char *err, char *ep, size_t n) {
    for (int attempt = 0; attempt < 5; attempt++) {
        size_t from = 0;
        char *t0 = proc_read_file(err, &from);
        free(t0);
        int pid = proc_spawn(argv, env, out, err);
        assert_true(pid > 0);
        int bind_failed = 0;
        for (int i = 0; i < 400; i++) {
            char *t = proc_read_file(err, NULL);
            const char *tail = t && strlen(t) >= from ? t + from : "";
            int up = strstr(tail, "listening on") != NULL;
            bind_failed = strstr(tail, "cannot bind") != NULL;
            free(t);
            if (up)
                return pid;
            if (bind_failed)
                break;
            nanosleep(&(struct timespec){0, 25000000}, NULL);
        }
        if (!bind_failed)
            return pid; /* the caller's checks say what went wrong */
        proc_result r;
        proc_wait(pid, &r, 20);
        proc_result_release(&r);
        fresh_ep(ep, n);
    }
    fail_msg("the coordinator could not bind a loopback port in 5 tries");
    return -1;
}

static void test_curve_federation(void **state) {
    (void)state;
    char *keys = p("keys"), *allow = p("allow");
    keygen(keys, "coordinator");
    keygen(keys, "bank-a");
    keygen(keys, "bank-b");
    keygen(keys, "mallory");  /* a valid key nobody listed */
    keygen(keys, "imposter"); /* plays a coordinator key the clients were not given */
    const char *listed[] = {"bank-a", "bank-b"};
    for (int i = 0; i < 2; i++) {
        char f[64];
        snprintf(f, sizeof f, "keys/%s.key", listed[i]);
        char *src = p(f);
        snprintf(f, sizeof f, "allow/%s.key", listed[i]);
        char *dst = p(f);
        copy(src, dst);
        free(src);
        free(dst);
    }
    write_shards();
    char ep[64];
    fresh_ep(ep, sizeof ep);
    char *metrics = p("rounds.jsonl"), *co_out = p("co.out"), *co_err = p("co.err");
    char *coord_key = p("keys/coordinator.key_secret");
    const char *cargv[] = {g_coord,   "--bind",
                           ep,        "--rounds",
                           "3",       "--min-clients",
                           "2",       "--layers",
                           "8",       "--key",
                           coord_key, "--allow",
                           allow,     "--metrics-json",
                           metrics,   "--heartbeat-timeout",
                           "5",       "--round-timeout",
                           "30",      "--secagg",
                           "off",     NULL};
    const char *env[] = {"OMP_NUM_THREADS=1", NULL};
    int co = spawn_coord(cargv, env, co_out, co_err, ep, sizeof ep);
    assert_true(co > 0);
    /* The start-up check runs before the coordinator listens. */
    for (int i = 0; i < 200 && !has(co_err, "listening on"); i++)
        nanosleep(&(struct timespec){0, 25000000}, NULL);
    if (!has(co_err, "start-up check: an unlisted key is refused"))
        dump("coordinator", co_err);
    assert_true(has(co_err, "start-up check: an unlisted key is refused"));

    const char *names[] = {"bank-a", "bank-b", "mallory", "wrongkey"};
    const char *keyname[] = {"bank-a", "bank-b", "mallory", "bank-a"};
    const char *coordpub[] = {"coordinator", "coordinator", "coordinator", "imposter"};
    int pid[4];
    char *err[4];
    for (int i = 0; i < 4; i++) {
        char f[96];
        snprintf(f, sizeof f, "keys/%s.key_secret", keyname[i]);
        char *k = p(f);
        snprintf(f, sizeof f, "keys/%s.key", coordpub[i]);
        char *ck = p(f);
        snprintf(f, sizeof f, "%s.err", names[i]);
        err[i] = p(f);
        snprintf(f, sizeof f, "%s.out", names[i]);
        char *out = p(f);
        char *csv = p(i == 1 ? "shard1.csv" : "shard0.csv");
        const char *av[] = {g_client, "--connect",
                            ep,       "--key",
                            k,        "--coordinator-key",
                            ck,       "--peers",
                            allow,    "--data",
                            csv,      "--label",
                            "bad",    "--heartbeat-ms",
                            "200",    "--coordinator-timeout",
                            "30",     "--secagg",
                            "off",    NULL};
        pid[i] = proc_spawn(av, env, out, err[i]);
        assert_true(pid[i] > 0);
        free(k);
        free(ck);
        free(out);
        free(csv);
    }
    proc_result r;
    /* The unlisted key: refused at the handshake, the client says so and exits 2. */
    assert_int_equal(proc_wait(pid[2], &r, 30), 0);
    if (r.status != 2)
        dump("mallory", err[2]);
    assert_int_equal(r.status, 2);
    assert_true(has(err[2], "does not accept our key 'mallory'"));
    /* A wrong coordinator key: the handshake never completes; the client gives up clearly. */
    assert_int_equal(proc_wait(pid[3], &r, 40), 0);
    if (r.status != 2)
        dump("wrongkey", err[3]);
    assert_int_equal(r.status, 2);
    assert_true(has(err[3], "is --coordinator-key the coordinator's public key?"));
    /* The listed clients and the coordinator finish the run. */
    assert_int_equal(proc_wait(co, &r, 60), 0);
    if (r.status != 0)
        dump("coordinator", co_err);
    assert_int_equal(r.status, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(proc_wait(pid[i], &r, 20), 0);
        if (r.status != 0)
            dump(names[i], err[i]);
        assert_int_equal(r.status, 0);
    }
    /* Refusals are logged once per key with the peer address and counted in the metrics. */
    assert_true(has(co_err, "refused a connection from 127.0.0.1"));
    char *m = proc_read_file(metrics, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "\"round\":3,"));
    assert_non_null(strstr(m, "\"curve\":true"));
    const char *last = strstr(m, "\"round\":3,"); /* the last round counts the refusals */
    assert_non_null(strstr(last, "\"refused_keys\":"));
    assert_null(strstr(last, "\"refused_keys\":0,"));
    free(m);
    for (int i = 0; i < 4; i++)
        free(err[i]);
    free(metrics);
    free(co_out);
    free(co_err);
    free(coord_key);
    free(keys);
    free(allow);
}

static void expect_refused(const char *const *argv, const char *needle) {
    proc_result r;
    assert_int_equal(proc_run(&r, argv, NULL, 30), 0);
    if (r.status != 2 || !strstr(r.err, needle))
        fprintf(stderr, "status %d, stderr: %s\n(expected '%s')\n", r.status, r.err, needle);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, needle));
    proc_result_release(&r);
}

static void test_refused_before_start(void **state) {
    (void)state;
    char *keys = p("keys"), *allow = p("allow");
    keygen(keys, "coordinator");
    keygen(keys, "bank-a");
    char *ak = p("keys/bank-a.key"), *aks = p("keys/bank-a.key_secret");
    char *ck = p("keys/coordinator.key"), *cks = p("keys/coordinator.key_secret");
    char *listed = p("allow/bank-a.key");
    copy(ak, listed);
    const char *ep = "tcp://127.0.0.1:1";
    /* Missing keys without --insecure: each program names the flag. */
    expect_refused((const char *[]){g_coord, "--bind", ep, NULL}, "--key is required");
    expect_refused((const char *[]){g_coord, "--bind", ep, "--key", cks, NULL},
                   "--allow is required");
    expect_refused(
        (const char *[]){g_client, "--connect", ep, "--data", GERMAN, "--label", "bad", NULL},
        "--key is required");
    expect_refused((const char *[]){g_client, "--connect", ep, "--data", GERMAN, "--label", "bad",
                                    "--key", aks, "--peers", allow, NULL},
                   "--coordinator-key is required");
    /* A secret file others can read is refused, with the fix. */
    assert_int_equal(chmod(aks, 0644), 0);
    expect_refused((const char *[]){g_client, "--connect", ep, "--data", GERMAN, "--label", "bad",
                                    "--key", aks, "--coordinator-key", ck, "--peers", allow, NULL},
                   "chmod 600");
    assert_int_equal(chmod(cks, 0604), 0);
    expect_refused((const char *[]){g_coord, "--bind", ep, "--key", cks, "--allow", allow, NULL},
                   "chmod 600");
    /* A public file given as a secret key. */
    expect_refused((const char *[]){g_coord, "--bind", ep, "--key", ck, "--allow", allow, NULL},
                   "public key only");
    /* --name must be the key's. */
    assert_int_equal(chmod(aks, 0600), 0);
    /* A secret file given as the coordinator's public key: refused, naming the file. */
    expect_refused((const char *[]){g_client, "--connect", ep, "--data", GERMAN, "--label", "bad",
                                    "--key", aks, "--coordinator-key", cks, "--peers", allow, NULL},
                   "holds a secret key (sign-secret-key), expected a public key file");
    expect_refused((const char *[]){g_client, "--connect", ep, "--data", GERMAN, "--label", "bad",
                                    "--key", aks, "--coordinator-key", ck, "--peers", allow,
                                    "--name", "bank-z", NULL},
                   "differs from the name in --key");
    free(ak);
    free(aks);
    free(ck);
    free(cks);
    free(listed);
    free(keys);
    free(allow);
}

/* Starts a client with the secret key keys/KEY.key_secret, pinning keys/COORD.key, with
 * --coordinator-timeout timeout_s; its stderr goes to err. Returns the pid. */
static int start_client(const char *ep, const char *key, const char *coord, const char *timeout_s,
                        const char *err) {
    char f[96];
    snprintf(f, sizeof f, "keys/%s.key_secret", key);
    char *k = p(f);
    snprintf(f, sizeof f, "keys/%s.key", coord);
    char *ck = p(f), *allow = p("allow"), *csv = p("shard0.csv"), *out = p("timeout.out");
    const char *av[] = {g_client,  "--connect",
                        ep,        "--key",
                        k,         "--coordinator-key",
                        ck,        "--peers",
                        allow,     "--data",
                        csv,       "--label",
                        "bad",     "--heartbeat-ms",
                        "200",     "--coordinator-timeout",
                        timeout_s, NULL};
    const char *env[] = {"OMP_NUM_THREADS=1", NULL};
    int pid = proc_spawn(av, env, out, err);
    assert_true(pid > 0);
    free(k);
    free(ck);
    free(allow);
    free(csv);
    free(out);
    return pid;
}

/* A refused client never waits out --coordinator-timeout with a generic message: an unlisted key
 * exits 2 at the refusal, whether the coordinator is up already or comes up later, and a wrong
 * coordinator key exits 2 saying so within the timeout even when that is shorter than the 10 s
 * the handshake failures are otherwise given (it used to exit 1, "no word from the coordinator").
 */
static void test_refused_within_timeout(void **state) {
    (void)state;
    char *keys = p("keys"), *allow = p("allow");
    keygen(keys, "coordinator");
    keygen(keys, "bank-a");
    keygen(keys, "mallory");
    keygen(keys, "imposter");
    char *src = p("keys/bank-a.key"), *dst = p("allow/bank-a.key");
    copy(src, dst);
    write_shards();
    char ep[64];
    fresh_ep(ep, sizeof ep);
    char *cks = p("keys/coordinator.key_secret"), *co_err = p("tmo-co.err"), *out = p("tmo.out");
    char *e1 = p("tmo-mallory.err"), *e2 = p("tmo-early.err"), *e3 = p("tmo-wrongkey.err");
    const char *cargv[] = {g_coord, "--bind",         ep,   "--rounds", "1",   "--min-clients",
                           "1",     "--layers",       "8",  "--key",    cks,   "--allow",
                           allow,   "--wait-timeout", "40", "--secagg", "off", NULL};
    const char *env[] = {"OMP_NUM_THREADS=1", NULL};
    proc_result r;

    /* Mallory starts before the coordinator listens, and is refused once it does. */
    double t0 = fedc_clock_s();
    int early = start_client(ep, "mallory", "coordinator", "6", e2);
    nanosleep(&(struct timespec){1, 500000000}, NULL);
    int co = proc_spawn(cargv, env, out, co_err);
    assert_true(co > 0);
    assert_int_equal(proc_wait(early, &r, 20), 0);
    double took = fedc_clock_s() - t0;
    if (r.status != 2)
        dump("mallory (early)", e2);
    assert_int_equal(r.status, 2);
    assert_true(has(e2, "does not accept our key 'mallory'"));
    assert_true(took < 6.0 + 1.5);
    for (int i = 0; i < 200 && !has(co_err, "listening on"); i++)
        nanosleep(&(struct timespec){0, 25000000}, NULL);

    /* Against a listening coordinator: refused at once, well within a 4 s timeout. */
    t0 = fedc_clock_s();
    int m = start_client(ep, "mallory", "coordinator", "4", e1);
    assert_int_equal(proc_wait(m, &r, 20), 0);
    took = fedc_clock_s() - t0;
    if (r.status != 2)
        dump("mallory", e1);
    assert_int_equal(r.status, 2);
    assert_true(has(e1, "does not accept our key 'mallory'"));
    assert_true(took < 4.0);

    /* A wrong coordinator key with a 4 s timeout: exit 2 with the reason within it. */
    t0 = fedc_clock_s();
    int w = start_client(ep, "bank-a", "imposter", "4", e3);
    assert_int_equal(proc_wait(w, &r, 20), 0);
    took = fedc_clock_s() - t0;
    if (r.status != 2 || !has(e3, "is --coordinator-key the coordinator's public key?"))
        dump("wrong coordinator key", e3);
    assert_int_equal(r.status, 2);
    assert_true(has(e3, "is --coordinator-key the coordinator's public key?"));
    assert_false(has(e3, "no word from the coordinator"));
    assert_true(took < 4.0 + 1.5);

    proc_signal(co, SIGKILL);
    assert_int_equal(proc_wait(co, &r, 20), 0);
    free(keys);
    free(allow);
    free(src);
    free(dst);
    free(cks);
    free(co_err);
    free(out);
    free(e1);
    free(e2);
    free(e3);
}

/* Two live connections with one key: the newer one is refused while the older one lives, and the
 * run goes on with the older one. */
static void test_same_identity_twice(void **state) {
    (void)state;
    char *keys = p("keys"), *allow = p("allow");
    keygen(keys, "coordinator");
    keygen(keys, "bank-a");
    char *src = p("keys/bank-a.key"), *dst = p("allow/bank-a.key");
    copy(src, dst);
    write_shards();
    char ep[64];
    fresh_ep(ep, sizeof ep);
    char *cks = p("keys/coordinator.key_secret"), *ck = p("keys/coordinator.key");
    char *aks = p("keys/bank-a.key_secret"), *co_err = p("dup-co.err"), *out = p("dup.out");
    char *e1 = p("dup-1.err"), *e2 = p("dup-2.err"), *csv = p("shard0.csv");
    /* Rounds slow enough (a delay per round) for the second copy to arrive mid-run. */
    const char *cargv[] = {g_coord, "--bind",   ep,    "--rounds", "4", "--min-clients",
                           "1",     "--layers", "8",   "--key",    cks, "--allow",
                           allow,   "--secagg", "off", NULL};
    const char *env[] = {"OMP_NUM_THREADS=1", "FEDC_FAULT=coordinator/delay:round-start@2:1500",
                         NULL};
    int co = spawn_coord(cargv, env, out, co_err, ep, sizeof ep);
    assert_true(co > 0);
    const char *av[] = {g_client, "--connect",      ep,    "--key",    aks,   "--coordinator-key",
                        ck,       "--peers",        allow, "--data",   csv,   "--label",
                        "bad",    "--heartbeat-ms", "200", "--secagg", "off", NULL};
    const char *cenv[] = {"OMP_NUM_THREADS=1", NULL};
    int c1 = proc_spawn(av, cenv, out, e1);
    for (int i = 0; i < 200 && !has(co_err, "bank-a joined"); i++)
        nanosleep(&(struct timespec){0, 25000000}, NULL);
    int c2 = proc_spawn(av, cenv, out, e2);
    assert_true(c1 > 0 && c2 > 0);
    proc_result r;
    assert_int_equal(proc_wait(co, &r, 60), 0);
    if (r.status != 0)
        dump("coordinator", co_err);
    assert_int_equal(r.status, 0);
    assert_int_equal(proc_wait(c1, &r, 20), 0);
    assert_int_equal(r.status, 0);
    proc_signal(c2, SIGKILL);
    assert_int_equal(proc_wait(c2, &r, 20), 0);
    if (!has(e2, "is in use by a live client"))
        dump("second copy", e2);
    assert_true(has(e2, "is in use by a live client"));
    assert_false(has(co_err, "bank-a reconnected"));
    free(keys);
    free(allow);
    free(src);
    free(dst);
    free(cks);
    free(ck);
    free(aks);
    free(co_err);
    free(out);
    free(e1);
    free(e2);
    free(csv);
}

/* A one-connection TCP relay that keeps a copy of every byte the coordinator sends. */
typedef struct relay {
    int listen_fd;
    int upstream_port;
    char *seen; /* coordinator -> client bytes */
    size_t len, cap;
    volatile int stop;
} relay;

/* Relays one connection at a time; a client that arrives before the coordinator listens is
 * dropped and ZeroMQ reconnects. */
static void *relay_main(void *arg) {
    relay *r = arg;
    char buf[65536];
    while (!r->stop) {
        struct pollfd lp = {r->listen_fd, POLLIN, 0};
        if (poll(&lp, 1, 100) <= 0)
            continue;
        int a = accept(r->listen_fd, NULL, NULL);
        if (a < 0)
            continue;
        int b = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in up = {0};
        up.sin_family = AF_INET;
        up.sin_port = htons((uint16_t)r->upstream_port);
        up.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (b < 0 || connect(b, (struct sockaddr *)&up, sizeof up) != 0) {
            close(a);
            if (b >= 0)
                close(b);
            continue;
        }
        struct pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
        int closed = 0;
        while (!r->stop && !closed) {
            if (poll(fds, 2, 100) <= 0)
                continue;
            for (int i = 0; i < 2 && !closed; i++) {
                if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                ssize_t n = read(fds[i].fd, buf, sizeof buf);
                if (n <= 0) {
                    closed = 1;
                    break;
                }
                if (i == 1) { /* from the coordinator */
                    if (r->len + (size_t)n > r->cap) {
                        r->cap = (r->len + (size_t)n) * 2;
                        r->seen = realloc(r->seen, r->cap);
                    }
                    memcpy(r->seen + r->len, buf, (size_t)n);
                    r->len += (size_t)n;
                }
                if (write(fds[1 - i].fd, buf, (size_t)n) != n)
                    closed = 1;
            }
        }
        close(a);
        close(b);
    }
    return NULL;
}

/* Runs a one-client federation through the relay; returns 1 when the final model's weights were
 * seen in plain bytes on the wire (the last evaluation request carries exactly them). */
static int weights_visible(int secure) {
    char *keys = p("keys"), *allow = p("allow");
    char *model = p(secure ? "curve.fedc" : "plain.fedc");
    if (secure) {
        keygen(keys, "coordinator");
        keygen(keys, "bank-a");
        char *src = p("keys/bank-a.key"), *dst = p("allow/bank-a.key");
        copy(src, dst);
        free(src);
        free(dst);
    }
    int cport = 0, rport = 0;
    int probe = listen_any(&cport); /* a free port for the coordinator */
    assert_true(probe >= 0);
    close(probe);
    relay r = {0};
    r.listen_fd = listen_any(&rport);
    r.upstream_port = cport;
    assert_true(r.listen_fd >= 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, relay_main, &r), 0);
    char bind_ep[64], relay_ep[64];
    snprintf(bind_ep, sizeof bind_ep, "tcp://127.0.0.1:%d", cport);
    snprintf(relay_ep, sizeof relay_ep, "tcp://127.0.0.1:%d", rport);
    char *cks = p("keys/coordinator.key_secret"), *ck = p("keys/coordinator.key");
    char *aks = p("keys/bank-a.key_secret"), *co_err = p("relay-co.err"),
         *cl_err = p("relay-cl.err"), *out = p("relay.out");
    const char *cargv_secure[] = {g_coord,         "--bind", bind_ep,    "--rounds", "2",
                                  "--min-clients", "1",      "--layers", "8",        "--model-out",
                                  model,           "--key",  cks,        "--allow",  allow,
                                  "--secagg",      "off",    NULL};
    const char *cargv_plain[] = {
        g_coord, "--bind",      bind_ep, "--rounds",   "2",        "--min-clients", "1", "--layers",
        "8",     "--model-out", model,   "--insecure", "--secagg", "off",           NULL};
    const char *env[] = {"OMP_NUM_THREADS=1", NULL};
    int co = proc_spawn(secure ? cargv_secure : cargv_plain, env, out, co_err);
    assert_true(co > 0);
    const char *av_secure[] = {
        g_client, "--connect", relay_ep, "--key",   aks,   "--coordinator-key", ck,    "--peers",
        allow,    "--data",    GERMAN,   "--label", "bad", "--secagg",          "off", NULL};
    const char *av_plain[] = {g_client,   "--connect", relay_ep,  "--name", "bank-a",
                              "--data",   GERMAN,      "--label", "bad",    "--insecure",
                              "--secagg", "off",       NULL};
    int cl = proc_spawn(secure ? av_secure : av_plain, env, out, cl_err);
    assert_true(cl > 0);
    proc_result res;
    assert_int_equal(proc_wait(co, &res, 60), 0);
    if (res.status != 0)
        dump("coordinator", co_err);
    assert_int_equal(res.status, 0);
    assert_int_equal(proc_wait(cl, &res, 20), 0);
    assert_int_equal(res.status, 0);
    r.stop = 1;
    pthread_join(th, NULL);
    close(r.listen_fd);
    fedc_model *m = NULL;
    fedc_diag d;
    assert_int_equal(fedc_model_load(&m, model, &d), FEDC_OK);
    /* 8 consecutive weights of the first layer: 32 bytes that occur on the wire only if the
     * weights travel in plain text. */
    assert_true(m->n_params >= 8);
    assert_true(r.len > 1000); /* the relay did carry the run */
    int found = memmem(r.seen, r.len, m->params, 32) != NULL;
    fedc_model_destroy(&m);
    free(r.seen);
    free(keys);
    free(allow);
    free(model);
    free(cks);
    free(ck);
    free(aks);
    free(co_err);
    free(cl_err);
    free(out);
    return found;
}

/* The control first: without CurveZMQ the weights are on the wire, so the check can fail. */
static void test_no_plaintext_on_the_wire(void **state) {
    (void)state;
    assert_true(weights_visible(0));
    assert_false(weights_visible(1));
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr,
                "usage: %s PATH/TO/fedc-coordinator PATH/TO/fedc-client [TEST-NAME-PATTERN]\n",
                argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    if (argc > 3) /* run only the tests whose names match */
        cmocka_set_test_filter(argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_curve_federation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_before_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_plaintext_on_the_wire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_identity_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_within_timeout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
