/* --metrics-listen (fedc-coordinator argv[1], fedc-client argv[2]): a federation of processes on
 * loopback is scraped over HTTP while it runs. The exposition passes `promtool check metrics`
 * (Debian's prometheus package; a deliberately broken one must fail it), the coordinator's
 * rounds completed and last-round ROC-AUC agree with its --metrics-json lines, the status page
 * shows the round, the clients and the report's charts, /healthz answers 200, a client's /readyz
 * goes from 503 to 200 when it joins, bad or taken addresses are refused with a clear error, and
 * `fedc health URL` (argv[3]; the compose file's health check) says 0 for 200 and 1 otherwise.
 * The HTTP client is the few lines of socket code below (HTTP/1.0, one request a connection).
 * Exits 77 (skipped) after the other checks passed when promtool is not installed
 * (scripts/install-deps.sh --test installs it). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fed.h"
#include "fed_expect.h"

#define START_TIMEOUT 15

static const char *g_coord, *g_client, *g_fedc;
static char g_promtool[4096]; /* empty: not installed */
static int g_promtool_missing;

typedef fed_pair ctx;

static int setup(void **state) {
    return fed_pair_setup(state, "fedc-test-http-", g_coord, g_client);
}

static int teardown(void **state) {
    return fed_pair_teardown(state);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* GET path from 127.0.0.1:port. Returns the status code (body in *body, caller frees) or -1 when
 * there is no HTTP answer. */
static int http_req(int port, const char *method, const char *path, char **body) {
    *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while (buf && (got = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)got;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    close(fd);
    if (!buf)
        return -1;
    buf[len] = 0;
    int status = -1;
    char *sep = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || !sep) {
        free(buf);
        return -1;
    }
    *body = strdup(sep + 4);
    free(buf);
    return status;
}

static int http_get(int port, const char *path, char **body) {
    return http_req(port, "GET", path, body);
}

/* The port a program logged ("metrics on http://127.0.0.1:PORT/..."), waiting for the line. */
static int logged_port(const fed_proc *p) {
    if (fed_wait_text(p->err, "metrics on http://127.0.0.1:", 0, p->pid, START_TIMEOUT) != 0)
        return -1;
    char *s = proc_read_file(p->err, NULL);
    int port = -1;
    const char *at = s ? strstr(s, "metrics on http://127.0.0.1:") : NULL;
    if (at)
        port = atoi(at + strlen("metrics on http://127.0.0.1:"));
    free(s);
    return port;
}

/* The value of an unlabelled sample in an exposition (NAN when absent). */
static double sample(const char *text, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ')
            return strtod(p + nl + 1, NULL);
    }
    return NAN;
}

/* promtool check metrics on text; its exit status (-1: could not run). */
static int promtool_check(const fed *f, const char *text, const char *file) {
    char *path = fed_fpath(f, file);
    assert_int_equal(proc_write_file(path, text), 0);
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "'%s' check metrics < '%s'", g_promtool, path);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    proc_result r;
    int rc = proc_run(&r, argv, NULL, 60);
    int status = rc == 0 ? r.status : -1;
    if (status != 0)
        print_message("promtool on %s: status %d\n%s%s\n", file, status, r.out ? r.out : "",
                      r.err ? r.err : "");
    proc_result_release(&r);
    free(path);
    return status;
}

static void expect_valid_exposition(const fed *f, const char *text, const char *file) {
    if (!g_promtool[0]) {
        g_promtool_missing = 1;
        return;
    }
    assert_int_equal(promtool_check(f, text, file), 0);
}

/* ---- a federation scraped while it runs --------------------------------------------------- */

static void test_scrape_mid_run(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *metrics = fed_fpath(f, "metrics.jsonl"), *csv[3];
    /* Many rounds: the checks below run while rounds are still going; the teardown stops it. */
    const char *args[] = {"--min-clients",  "3",     "--rounds",         "1000",
                          "--layers",       "8",     "--round-timeout",  "40",
                          "--metrics-json", metrics, "--metrics-listen", "127.0.0.1:0",
                          "--quiet",        NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    int port = logged_port(&f->coord);
    assert_true(port > 0);
    char *body = NULL;
    assert_int_equal(http_get(port, "/healthz", &body), 200);
    assert_string_equal(body, "ok\n");
    free(body);
    /* Other methods are refused, saying which are served. */
    assert_int_equal(http_req(port, "DELETE", "/metrics", &body), 405);
    assert_string_equal(body, "only GET and HEAD are served here\n");
    free(body);
    /* Waiting for clients: listening, so ready; no round yet. */
    assert_int_equal(http_get(port, "/readyz", &body), 200);
    free(body);
    assert_int_equal(http_get(port, "/metrics", &body), 200);
    assert_true(sample(body, "fedc_coordinator_rounds_completed_total") == 0);
    expect_valid_exposition(f, body, "waiting.prom");
    free(body);
    body = NULL;

    const char *cl_args[] = {"--metrics-listen", "127.0.0.1:0", NULL};
    for (int i = 0; i < 3; i++) {
        char name[16], shard[32];
        snprintf(name, sizeof name, "bank-%c", 'a' + i);
        snprintf(shard, sizeof shard, "shard%d.csv", i);
        csv[i] = fed_fpath(f, shard);
        assert_true(fed_start_client(f, name, csv[i], NULL, i == 0 ? cl_args : NULL) >= 0);
    }
    /* Mid-run: at least three rounds done, the run going on. */
    double done = 0;
    for (int t = 0; t < 600 && !(done >= 3); t++) {
        free(body);
        assert_int_equal(http_get(port, "/metrics", &body), 200);
        done = sample(body, "fedc_coordinator_rounds_completed_total");
        if (!(done >= 3))
            sleep_ms(50);
    }
    assert_true(done >= 3);
    expect_valid_exposition(f, body, "running.prom");
    /* The same rounds as the metrics file: the line of the last round counted is there (written
     * before the counter moved) with the same ROC-AUC, and so is every earlier one. */
    double last = sample(body, "fedc_coordinator_last_round");
    double auc = sample(body, "fedc_coordinator_validation_roc_auc");
    assert_true(last == done); /* a fresh run: round k is the k-th completed */
    fed_round r[1100];
    int n = fed_read_metrics(metrics, r, 1100);
    assert_true(n >= (int)done);
    assert_int_equal(r[(int)last - 1].round, (long)last);
    if (!(fabs(r[(int)last - 1].val_roc_auc - auc) <= 1e-12))
        print_message("round %g: val_roc_auc %.9g in the file, %.9g in /metrics\n", last,
                      r[(int)last - 1].val_roc_auc, auc);
    assert_true(fabs(r[(int)last - 1].val_roc_auc - auc) <= 1e-12);
    assert_true(sample(body, "fedc_coordinator_clients_joined") == 3);
    assert_true(sample(body, "fedc_coordinator_clients_alive") == 3);
    assert_true(sample(body, "fedc_coordinator_round_duration_seconds_count") >= done);
    assert_true(sample(body, "fedc_coordinator_received_bytes_total") > 0);
    assert_true(sample(body, "fedc_coordinator_sent_bytes_total") > 0);
    assert_true(sample(body, "fedc_coordinator_rounds_planned") == 1000);
    free(body);

    /* The status page: the round, each client, the report's charts with a point per round. */
    assert_int_equal(http_get(port, "/", &body), 200);
    assert_non_null(strstr(body, "http-equiv=\"refresh\""));
    assert_non_null(strstr(body, "id=\"roc-auc-rounds\""));
    assert_non_null(strstr(body, "class=\"roc-point\" data-round=\"1\""));
    assert_non_null(strstr(body, "class=\"pr-point\" data-round=\"2\""));
    assert_non_null(strstr(body, "<table id=\"participation\">"));
    /* the shared chart code: the rounds alike folded into ranges, the best round marked */
    assert_non_null(strstr(body, "<tr class=\"rounds\" data-first=\"1\""));
    assert_non_null(strstr(body, "<g class=\"best-round\""));
    for (int i = 0; i < 3; i++) {
        char cell[64];
        snprintf(cell, sizeof cell, "<tr class=\"client\"><td>bank-%c</td>", 'a' + i);
        assert_non_null(strstr(body, cell));
    }
    /* Self-contained: nothing to load, no script. */
    assert_null(strstr(body, "<script"));
    assert_null(strstr(body, "src="));
    assert_null(strstr(body, "https://"));
    free(body);
    assert_int_equal(http_get(port, "/nothing-here", &body), 404);
    free(body);

    /* The client's own metrics. */
    int cport = logged_port(&f->cl[0]);
    assert_true(cport > 0);
    assert_int_equal(http_get(cport, "/metrics", &body), 200);
    assert_true(sample(body, "fedc_client_joined") == 1);
    assert_true(sample(body, "fedc_client_rounds_trained_total") >= 1);
    assert_true(sample(body, "fedc_client_training_rows") > 0);
    assert_true(sample(body, "fedc_client_training_seconds_total") > 0);
    expect_valid_exposition(f, body, "client.prom");
    free(body);
    for (int i = 0; i < 3; i++)
        free(csv[i]);
    free(metrics);
    c->ok = 1;
}

/* promtool really checks: a counter without _total, a sample without its family's TYPE in the
 * right place and a bad value fail it (the control for the checks above). */
static void test_promtool_catches_bad_exposition(void **state) {
    ctx *c = *state;
    if (!g_promtool[0]) {
        g_promtool_missing = 1;
        c->ok = 1;
        return;
    }
    assert_int_not_equal(promtool_check(&c->f[0],
                                        "# HELP x_bytes b\n# TYPE x_bytes counter\n"
                                        "x_bytes 1\n",
                                        "lint.prom"),
                         0);
    assert_int_not_equal(promtool_check(&c->f[0], "# TYPE y gauge\ny one\n", "value.prom"), 0);
    c->ok = 1;
}

/* ---- a client's readiness: 503 until it joins --------------------------------------------- */

static void test_client_ready_when_joined(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *csv = fed_fpath(f, "shard0.csv");
    const char *cl_args[] = {"--metrics-listen", "127.0.0.1:0", NULL};
    /* The client first: nothing to join yet. */
    assert_true(fed_start_client(f, "bank-a", csv, NULL, cl_args) >= 0);
    int port = logged_port(&f->cl[0]);
    assert_true(port > 0);
    char *body = NULL;
    assert_int_equal(http_get(port, "/healthz", &body), 200);
    free(body);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(http_get(port, "/readyz", &body), 503);
        free(body);
        sleep_ms(100);
    }
    assert_int_equal(http_get(port, "/metrics", &body), 200);
    assert_true(sample(body, "fedc_client_joined") == 0);
    free(body);
    const char *args[] = {"--min-clients", "3", "--rounds", "1", NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    int status = 0;
    for (int i = 0; i < 200 && status != 200; i++) {
        status = http_get(port, "/readyz", &body);
        free(body);
        if (status != 200)
            sleep_ms(50);
    }
    assert_int_equal(status, 200);
    free(csv);
    c->ok = 1;
}

/* ---- refused addresses ---------------------------------------------------------------------- */

static void expect_refused(const char *bin, const char *value, const char *why) {
    const char *argv[] = {bin,
                          "--insecure",
                          "--bind",
                          "tcp://127.0.0.1:1",
                          "--connect",
                          "tcp://127.0.0.1:1",
                          "--data",
                          "x.csv",
                          "--label",
                          "y",
                          "--metrics-listen",
                          value,
                          NULL};
    /* Each program takes its own flags: drop the other one's. */
    const char *own[16];
    int n = 0;
    int coord = bin == g_coord;
    for (int i = 0; argv[i]; i++) {
        const char *a = argv[i];
        if ((coord && (!strcmp(a, "--connect") || !strcmp(a, "--data") || !strcmp(a, "--label"))) ||
            (!coord && !strcmp(a, "--bind"))) {
            i++;
            continue;
        }
        own[n++] = a;
    }
    own[n] = NULL;
    proc_result r;
    assert_int_equal(proc_run(&r, own, NULL, 30), 0);
    if (r.status != 2 || !strstr(r.err, "--metrics-listen") || !strstr(r.err, why))
        print_message("%s --metrics-listen '%s': status %d, stderr:\n%s\n", bin, value, r.status,
                      r.err);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--metrics-listen"));
    assert_non_null(strstr(r.err, why));
    proc_result_release(&r);
}

static void test_bad_values_refused(void **state) {
    ctx *c = *state;
    const char *bins[] = {g_coord, g_client};
    for (int b = 0; b < 2; b++) {
        expect_refused(bins[b], "nonsense", "expected ADDR:PORT");
        expect_refused(bins[b], "127.0.0.1:99999", "0..65535");
        expect_refused(bins[b], "127.0.0.1:", "0..65535");
        expect_refused(bins[b], "localhost:9100", "not a numeric IPv4 address");
        expect_refused(bins[b], "::1:9100", "IPv6 address goes in brackets");
        expect_refused(bins[b], "[::1]9100", "expected ADDR:PORT");
    }
    c->ok = 1;
}

/* A port another program listens on: both programs say so and exit 2. */
static void test_port_in_use(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    char spec[32];
    snprintf(spec, sizeof spec, "127.0.0.1:%d", ntohs(a.sin_port));
    const char *cargv[] = {g_coord, "--insecure", "--bind", f->endpoint, "--metrics-listen",
                           spec,    NULL};
    proc_result r;
    assert_int_equal(proc_run(&r, cargv, NULL, 30), 0);
    if (r.status != 2 || !strstr(r.err, "in use"))
        print_message("coordinator: status %d, stderr:\n%s\n", r.status, r.err);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--metrics-listen: cannot listen on"));
    assert_non_null(strstr(r.err, "in use"));
    proc_result_release(&r);
    assert_int_equal(fed_write_shards(f, 1, "shard"), 0);
    char *csv = fed_fpath(f, "shard0.csv");
    const char *largv[] = {
        g_client, "--insecure", "--connect", f->endpoint,        "--data", csv, "--label",
        "bad",    "--name",     "bank-a",    "--metrics-listen", spec,     NULL};
    assert_int_equal(proc_run(&r, largv, NULL, 30), 0);
    if (r.status != 2 || !strstr(r.err, "in use"))
        print_message("client: status %d, stderr:\n%s\n", r.status, r.err);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "in use"));
    proc_result_release(&r);
    free(csv);
    close(fd);
    c->ok = 1;
}

/* ---- fedc health, the compose file's health check ------------------------------------------- */

static int run_health(const char *url) {
    const char *argv[] = {g_fedc, "health", url, "--timeout", "2", NULL};
    proc_result r;
    assert_int_equal(proc_run(&r, argv, NULL, 30), 0);
    int status = r.status;
    if (status != 0)
        print_message("fedc health %s: status %d: %s", url, status, r.err);
    proc_result_release(&r);
    return status;
}

static void test_health_command(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    const char *args[] = {"--min-clients", "3", "--metrics-listen", "127.0.0.1:0", NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    int port = logged_port(&f->coord);
    assert_true(port > 0);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", port);
    assert_int_equal(run_health(url), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", port);
    assert_int_equal(run_health(url), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/no-such-probe", port);
    assert_int_equal(run_health(url), 1);
    /* Nobody listening: a port bound and closed again. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", ntohs(a.sin_port));
    assert_int_equal(run_health(url), 1);
    assert_int_equal(run_health("http://localhost:9100/healthz"), 2);
    assert_int_equal(run_health("127.0.0.1:9100"), 2);
    c->ok = 1;
}

/* promtool from PATH, else Debian's place for it. */
static void find_promtool(void) {
    const char *path = getenv("PATH");
    char *dirs = strdup(path ? path : "");
    for (char *save = NULL, *d = dirs ? strtok_r(dirs, ":", &save) : NULL; d;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(g_promtool, sizeof g_promtool, "%s/promtool", d);
        if (access(g_promtool, X_OK) == 0) {
            free(dirs);
            return;
        }
    }
    free(dirs);
    snprintf(g_promtool, sizeof g_promtool, "/usr/bin/promtool");
    if (access(g_promtool, X_OK) != 0)
        g_promtool[0] = 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s FEDC_COORDINATOR FEDC_CLIENT FEDC\n", argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    g_fedc = argv[3];
    find_promtool();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scrape_mid_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_promtool_catches_bad_exposition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_ready_when_joined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_command, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed && g_promtool_missing) {
        printf("SKIPPED: the expositions were not validated: promtool is not installed "
               "(Debian package prometheus; scripts/install-deps.sh --test installs it)\n");
        return 77;
    }
    return failed;
}
