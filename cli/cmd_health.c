/* fedc health: one HTTP GET of a probe (/healthz, /readyz of --metrics-listen) for container health
 * checks. The runtime image (deploy/Dockerfile) has neither curl nor wget nor busybox, and the
 * fedc program is there already: a few lines of socket code here cost the image nothing, where a
 * download tool would add a package and its libraries. Exit 0 when the answer is 200, 1 for any
 * other answer or none within --timeout, 2 on bad options. Numeric IPv4 addresses only, as
 * --metrics-listen binds (a health check asks its own container: 127.0.0.1). The URL is the
 * table's --url, which the parser also takes bare (FEDC_OPTION_POSITIONAL): fedc health URL. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define CMD "health"

/* The intro names the probes without their flag: --help may show only this command's flags
 * (tests/prog/test_options.c). */
static const fedc_prog_help g_help = {
    "usage: fedc health URL [--timeout S]",
    "Asks the HTTP endpoint of fedc-coordinator or fedc-client (its metrics-listen\n"
    "option), e.g.\n"
    "  fedc health http://127.0.0.1:9100/healthz   (the process runs)\n"
    "  fedc health http://127.0.0.1:9100/readyz    (coordinator: accepting clients;\n"
    "                                               client: joined)",
    "Exit status: 0 when the answer is 200 OK, 1 otherwise (another status, no answer\n"
    "within the timeout), 2 on bad options."};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Waits until fd is ready for events or the deadline passes; 1 ready, 0 timed out or failed. */
static int wait_fd(int fd, short events, double deadline) {
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, events, 0};
        int rc = poll(&p, 1, (int)(left * 1e3) + 1);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return 0;
    }
}

int cmd_health(int argc, char **argv) {
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_HEALTH, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
    const char *url = op.v[FEDC_O_URL].text;
    double timeout = op.v[FEDC_O_TIMEOUT].r;
    char origin[1200];
    fedc_opt_origin(origin, sizeof origin, &op, FEDC_O_URL);
    char host[64], path[512] = "/";
    unsigned port = 0;
    int used = 0;
    if (!url || sscanf(url, "http://%63[0-9.]:%5u%n", host, &port, &used) < 2 || port == 0 ||
        port > 65535 || (url[used] && url[used] != '/') || strlen(url + used) >= sizeof path) {
        cli_error(CMD,
                  "expected a URL http://ADDR:PORT/PATH with a numeric IPv4 address, e.g. "
                  "http://127.0.0.1:9100/healthz; got '%s'%s",
                  url ? url : "nothing", origin);
        return FEDC_EXIT_USAGE;
    }
    if (url[used])
        snprintf(path, sizeof path, "%s", url + used);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        cli_error(CMD, "'%s' is not a numeric IPv4 address%s", host, origin);
        return FEDC_EXIT_USAGE;
    }
    double deadline = now_s() + timeout;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "fedc health: cannot create a socket: %s\n", strerror(errno));
        return FEDC_EXIT_FAIL;
    }
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 || errno == EINPROGRESS;
    int err = ok ? 0 : errno;
    if (ok) {
        socklen_t el = sizeof err;
        ok = wait_fd(fd, POLLOUT, deadline) &&
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0;
    }
    char req[640], buf[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    ok = ok && write(fd, req, (size_t)n) == n;
    size_t len = 0;
    /* The status line is all we need; it comes first. */
    while (ok && len + 1 < sizeof buf && !memchr(buf, '\n', len) && wait_fd(fd, POLLIN, deadline)) {
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = 0;
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "fedc health: %s: no answer within %g s%s%s\n", url, timeout,
                err ? ": " : "", err ? strerror(err) : "");
        return FEDC_EXIT_FAIL;
    }
    if (status != 200) {
        fprintf(stderr, "fedc health: %s: status %d\n", url, status);
        return FEDC_EXIT_FAIL;
    }
    printf("fedc health: %s: 200\n", url);
    return FEDC_EXIT_OK;
}
