/* A small HTTP listener for the programs' operational endpoints (--metrics-listen ADDR:PORT):
 * Prometheus metrics, health and readiness probes and the status page. libmicrohttpd serves the
 * requests on a thread of its own (MHD_USE_INTERNAL_POLLING_THREAD), so the program's event loop
 * never waits on a scraper; the handler runs on that thread and must only read what the program
 * published under its own lock. GET and HEAD only; other methods get 405. Internal to fedc (not
 * installed; libmicrohttpd is a private dependency of libfedc). */
#ifndef FEDC_HTTPD_H
#define FEDC_HTTPD_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "fedc/err.h"

/* The address when ADDR is left out (":9100" or "9100"): loopback only, so that the metrics and
 * the status page are not exposed to the network unless asked for with 0.0.0.0 or [::]. */
#define FEDC_HTTP_DEFAULT_ADDR "127.0.0.1"

/* What a handler answers: status (200, 404, 503, ...), the Content-Type (a string literal) and a
 * body allocated with malloc (taken over and freed by the listener; NULL for an empty body). */
typedef struct fedc_http_reply {
    int status;
    const char *type;
    char *body;
    size_t len;
} fedc_http_reply;

/* Called on the listener's thread for each GET or HEAD with the path (query string removed). */
typedef void (*fedc_http_handler)(void *ctx, const char *path, fedc_http_reply *r);

typedef struct fedc_http fedc_http;

/* Parses ADDR:PORT: a numeric IPv4 address, a numeric IPv6 address in brackets ([::1]:9100), or
 * nothing (":9100", "9100": FEDC_HTTP_DEFAULT_ADDR); PORT in 0..65535, 0 taking any free port.
 * FEDC_EINVAL with what was expected in d. Host names are refused: resolving one could block and
 * could resolve to an address the operator did not mean to expose. */
FEDC_MUST_CHECK fedc_err fedc__http_parse(const char *spec, struct sockaddr_storage *sa,
                                          socklen_t *len, fedc_diag *d);

/* Binds spec and serves it with handler(ctx, ...) on a thread of libmicrohttpd's. FEDC_EINVAL for
 * a bad spec, FEDC_EIO when the address cannot be bound (in use, not ours) or the thread cannot
 * start; d says which, naming the address. */
FEDC_MUST_CHECK fedc_err fedc__http_start(fedc_http **out, const char *spec,
                                          fedc_http_handler handler, void *ctx, fedc_diag *d);

/* "http://ADDR:PORT" with the port actually bound (the one chosen for port 0). */
const char *fedc__http_url(const fedc_http *h);

/* Stops the thread (waiting for the request in progress) and frees h (NULL allowed). */
void fedc__http_stop(fedc_http **h);

/* A plain-text reply: r gets status, "text/plain; charset=utf-8" and a copy of text (replacing
 * any body it had); when the copy cannot be allocated the body stays empty. */
void fedc__http_text(fedc_http_reply *r, int status, const char *text);

/* A reply body written with stdio: open gives a FILE writing to memory (open_memstream), NULL
 * when out of memory; take closes it and hands what was written to r with status and type, or
 * answers 500 when the writing failed. */
typedef struct fedc_http_body {
    FILE *f;
    char *buf;
    size_t len;
} fedc_http_body;
FILE *fedc__http_body_open(fedc_http_body *b);
void fedc__http_body_take(fedc_http_reply *r, fedc_http_body *b, int status, const char *type);

#endif
