/* The operational HTTP listener (httpd.h) over libmicrohttpd. The socket is bound here rather than
 * by libmicrohttpd (MHD_OPTION_LISTEN_SOCKET) so that a port in use or an address that is not
 * ours is reported with its reason (errno), and so that port 0 gives the port really bound. */
#define _POSIX_C_SOURCE 200809L
#include "fedc/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

/* Connections served at once, and the seconds an idle one is kept: a scraper and a browser or two
 * need a handful; the limits keep a slow or hostile client from holding the thread's resources. */
#define HTTP_MAX_CONN 32
#define HTTP_IDLE_S 10

struct fedc_http {
    struct MHD_Daemon *mhd;
    fedc_http_handler handler;
    void *ctx;
    char url[80];
};

fedc_err fedc__http_parse(const char *spec, struct sockaddr_storage *sa, socklen_t *len,
                          fedc_diag *d) {
    static const char expect[] = "expected ADDR:PORT with a numeric address, e.g. 127.0.0.1:9100, "
                                 "0.0.0.0:9100 (every interface), [::1]:9100, or :9100 "
                                 "(" FEDC_HTTP_DEFAULT_ADDR ")";
    memset(sa, 0, sizeof *sa);
    if (!spec || !spec[0]) {
        fedc_diag_set(d, "%s; got nothing", expect);
        return FEDC_EINVAL;
    }
    char host[64];
    const char *port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof host) {
            fedc_diag_set(d, "%s; got '%s'", expect, spec);
            return FEDC_EINVAL;
        }
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = 0;
        port = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon && strchr(spec, ':') != colon) {
            fedc_diag_set(d, "%s; got '%s' (an IPv6 address goes in brackets)", expect, spec);
            return FEDC_EINVAL;
        }
        size_t hl = colon ? (size_t)(colon - spec) : 0;
        if (hl >= sizeof host) {
            fedc_diag_set(d, "%s; got '%s'", expect, spec);
            return FEDC_EINVAL;
        }
        memcpy(host, spec, hl);
        host[hl] = 0;
        port = colon ? colon + 1 : spec;
    }
    size_t pl = strlen(port);
    long p = -1;
    if (pl >= 1 && pl <= 5 && strspn(port, "0123456789") == pl)
        p = strtol(port, NULL, 10);
    if (p < 0 || p > 65535) {
        fedc_diag_set(d, "%s; got '%s' (the port must be a number in 0..65535, 0: any free port)",
                      expect, spec);
        return FEDC_EINVAL;
    }
    if (!host[0] && spec[0] != '[')
        snprintf(host, sizeof host, "%s", FEDC_HTTP_DEFAULT_ADDR);
    struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
    if (spec[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        *len = sizeof *v4;
        return FEDC_OK;
    }
    if (spec[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        *len = sizeof *v6;
        return FEDC_OK;
    }
    fedc_diag_set(d, "%s; got '%s' ('%s' is not a numeric %s address)", expect, spec, host,
                  spec[0] == '[' ? "IPv6" : "IPv4");
    return FEDC_EINVAL;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **req) {
    (void)version;
    (void)upload;
    (void)req;
    fedc_http *h = cls;
    fedc_http_reply r = {404, "text/plain; charset=utf-8", NULL, 0};
    if (*upload_len != 0) {
        *upload_len = 0; /* a GET carries no body: drop one rather than stall */
        return MHD_YES;
    }
    int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        fedc__http_text(&r, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served here\n");
    } else {
        h->handler(h->ctx, url, &r);
    }
    struct MHD_Response *resp =
        r.body ? MHD_create_response_from_buffer(r.len, r.body, MHD_RESPMEM_MUST_FREE)
               : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(r.body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.type);
    /* Every answer is the state of the moment: no cache may keep it. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* The status page loads nothing: a browser enforces that, inline CSS aside. */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; style-src 'unsafe-inline'");
    if (r.status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)r.status, resp);
    MHD_destroy_response(resp);
    return rc;
}

fedc_err fedc__http_start(fedc_http **out, const char *spec, fedc_http_handler handler, void *ctx,
                          fedc_diag *d) {
    *out = NULL;
    struct sockaddr_storage sa;
    socklen_t sl;
    fedc_err rc = fedc__http_parse(spec, &sa, &sl, d);
    if (rc)
        return rc;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fedc_diag_set(d, "%s: cannot create a socket: %s", spec, strerror(errno));
        return FEDC_EIO;
    }
    /* A restarted program may bind while its old connections are in TIME_WAIT; on Linux this
     * does not let two sockets listen on one port (socket(7)), so "in use" is still reported. */
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sl) != 0) {
        int e = errno;
        fedc_diag_set(d, "cannot listen on %s: %s%s", spec, strerror(e),
                      e == EADDRINUSE      ? " (another program, or another fedc process, "
                                             "listens on this port: choose another)"
                      : e == EADDRNOTAVAIL ? " (not an address of this machine)"
                      : e == EACCES        ? " (ports below 1024 need privileges)"
                                           : "");
        close(fd);
        return FEDC_EIO;
    }
    if (listen(fd, 16) != 0) {
        fedc_diag_set(d, "cannot listen on %s: %s", spec, strerror(errno));
        close(fd);
        return FEDC_EIO;
    }
    fedc_http *h = calloc(1, sizeof *h);
    if (!h) {
        close(fd);
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    h->handler = handler;
    h->ctx = ctx;
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0) {
        if (got.ss_family == AF_INET6) {
            const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&got;
            inet_ntop(AF_INET6, &v6->sin6_addr, addr, sizeof addr);
            port = ntohs(v6->sin6_port);
        } else {
            const struct sockaddr_in *v4 = (const struct sockaddr_in *)&got;
            inet_ntop(AF_INET, &v4->sin_addr, addr, sizeof addr);
            port = ntohs(v4->sin_port);
        }
    }
    snprintf(h->url, sizeof h->url, sa.ss_family == AF_INET6 ? "http://[%s]:%u" : "http://%s:%u",
             addr, port);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, h, MHD_OPTION_LISTEN_SOCKET, fd,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONN,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_S, MHD_OPTION_END);
    if (!h->mhd) {
        fedc_diag_set(d, "%s: libmicrohttpd cannot start its thread", spec);
        close(fd);
        free(h);
        return FEDC_EIO;
    }
    *out = h;
    return FEDC_OK;
}

const char *fedc__http_url(const fedc_http *h) {
    return h->url;
}

void fedc__http_stop(fedc_http **h) {
    if (!*h)
        return;
    /* Closes the listening socket too, the one handed over with MHD_OPTION_LISTEN_SOCKET. */
    MHD_stop_daemon((*h)->mhd);
    free(*h);
    *h = NULL;
}

void fedc__http_text(fedc_http_reply *r, int status, const char *text) {
    size_t n = strlen(text);
    free(r->body);
    r->body = malloc(n ? n : 1);
    r->len = 0;
    if (r->body) {
        memcpy(r->body, text, n);
        r->len = n;
    }
    r->status = status;
    r->type = "text/plain; charset=utf-8";
}

FILE *fedc__http_body_open(fedc_http_body *b) {
    b->buf = NULL;
    b->len = 0;
    b->f = open_memstream(&b->buf, &b->len);
    return b->f;
}

void fedc__http_body_take(fedc_http_reply *r, fedc_http_body *b, int status, const char *type) {
    int bad = !b->f || ferror(b->f);
    if (b->f && fclose(b->f) != 0)
        bad = 1;
    b->f = NULL;
    free(r->body);
    r->body = NULL;
    r->len = 0;
    if (bad) {
        free(b->buf);
        r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        r->type = "text/plain; charset=utf-8";
        return;
    }
    r->status = status;
    r->type = type;
    r->body = b->buf;
    r->len = b->len;
    b->buf = NULL;
}
