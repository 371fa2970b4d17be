/* ROUTER/DEALER transport over libzmq (contracts in transport.h). Every receive drains all frames
 * of a message before deciding, so a refused message never leaves stray frames behind. */
#include "fedc/transport.h"

#include "fedc/codec.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define SEND_HWM 64 /* messages queued per peer before sends fail instead of growing memory */
#define MAX_FRAMES 4
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "fedc"
#define OPT_ZAP_ENFORCE_DOMAIN 93 /* draft option, honoured by libzmq 4.3.4 (docs/security.md) */
#define MAX_LOGGED_KEYS 64

/* The ZAP handler (RFC 27): a REP socket in the coordinator's context answering libzmq's
 * authentication requests from its own thread, with the allow-list. */
typedef struct zap {
    pthread_t thread;
    void *rep;
    /* allow, n_allow and the logged keys are swapped by fedc_net_set_allow from the owner's
     * thread while this thread answers requests: both hold lock while they touch them. */
    pthread_mutex_t lock;
    fedc_identity *allow;
    int n_allow;
    atomic_int stop;
    atomic_long refused;
    uint8_t probe_key[32]; /* the start-up self-test's key: refused without logging or counting */
    int has_probe;
    uint8_t logged[MAX_LOGGED_KEYS][32];
    int n_logged;
    const char *domain; /* the ZAP domain the endpoint sets (ZMQ_ZAP_DOMAIN) */
} zap;

struct fedc_endpoint {
    void *sock;
    int router;
    size_t max_msg; /* the bound on one incoming message (every frame after a routing id) */
    char endpoint[256];
    zap *zap;
    void *mon; /* PAIR socket receiving the monitor's events (secure DEALER) */
    int secure;
    uint8_t server_pk[32]; /* secure ROUTER: our public key, for the start-up check */
};

static fedc_err open_socket(fedc_endpoint **out, void *zctx, int type, size_t max_msg,
                            fedc_diag *d) {
    *out = NULL;
    fedc_endpoint *e = calloc(1, sizeof *e);
    if (!e)
        return FEDC_ENOMEM;
    e->router = type == ZMQ_ROUTER;
    e->sock = zmq_socket(zctx, type);
    if (!e->sock) {
        fedc_diag_set(d, "cannot create a ZeroMQ socket: %s", zmq_strerror(zmq_errno()));
        free(e);
        return FEDC_EIO;
    }
    /* ZeroMQ drops a frame over ZMQ_MAXMSGSIZE together with the connection and tells nobody.
     * Its bound is twice ours: a message between the two arrives and is refused here with both
     * sizes named (fedc_net_recv), so a peer learns why; memory per message stays bounded. */
    e->max_msg = max_msg;
    int64_t maxmsg = !max_msg                          ? -1
                     : max_msg > (size_t)INT64_MAX / 2 ? INT64_MAX
                                                       : (int64_t)(2 * max_msg);
    int linger = 0, hwm = SEND_HWM, one = 1;
    if (zmq_setsockopt(e->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(e->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(e->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        (e->router && zmq_setsockopt(e->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one))) {
        fedc_diag_set(d, "cannot configure the ZeroMQ socket: %s", zmq_strerror(zmq_errno()));
        zmq_close(e->sock);
        free(e);
        return FEDC_EIO;
    }
    *out = e;
    return FEDC_OK;
}

fedc_err fedc_net_bind(fedc_endpoint **out, void *zctx, const char *addr, size_t max_msg,
                       fedc_diag *d) {
    fedc_err rc = open_socket(out, zctx, ZMQ_ROUTER, max_msg, d);
    if (rc)
        return rc;
    fedc_endpoint *e = *out;
    if (zmq_bind(e->sock, addr) != 0) {
        fedc_diag_set(d, "cannot bind %s: %s", addr, zmq_strerror(zmq_errno()));
        fedc_net_close(out);
        return FEDC_EIO;
    }
    size_t len = sizeof e->endpoint;
    if (zmq_getsockopt(e->sock, ZMQ_LAST_ENDPOINT, e->endpoint, &len) != 0)
        snprintf(e->endpoint, sizeof e->endpoint, "%s", addr);
    return FEDC_OK;
}

fedc_err fedc_net_connect(fedc_endpoint **out, void *zctx, const char *addr, size_t max_msg,
                          fedc_diag *d) {
    fedc_err rc = open_socket(out, zctx, ZMQ_DEALER, max_msg, d);
    if (rc)
        return rc;
    fedc_endpoint *e = *out;
    if (zmq_connect(e->sock, addr) != 0) {
        fedc_diag_set(d, "cannot connect to %s: %s", addr, zmq_strerror(zmq_errno()));
        fedc_net_close(out);
        return FEDC_EIO;
    }
    snprintf(e->endpoint, sizeof e->endpoint, "%s", addr);
    return FEDC_OK;
}

static void zap_stop(zap *z) {
    if (!z)
        return;
    atomic_store(&z->stop, 1);
    pthread_join(z->thread, NULL);
    pthread_mutex_destroy(&z->lock);
    free(z->allow);
    free(z);
}

void fedc_net_close(fedc_endpoint **pe) {
    if (!pe || !*pe)
        return;
    fedc_endpoint *e = *pe;
    if (e->mon) {
        zmq_socket_monitor(e->sock, NULL, 0);
        zmq_close(e->mon);
    }
    zmq_close(e->sock);
    zap_stop(e->zap); /* after the socket: no more authentication requests */
    free(e);
    *pe = NULL;
}

/* ---- CurveZMQ and ZAP ---------------------------------------------------------------------- */

static int recv_frames(void *sock, zmq_msg_t *f, int max, int *n) {
    int more = 1;
    *n = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
        more = zmq_msg_more(&m);
        if (*n < max)
            f[(*n)++] = m;
        else
            zmq_msg_close(&m);
    }
    return 0;
}

static void zap_reply(void *rep, zmq_msg_t *req_id, const char *code, const char *text,
                      const char *user) {
    zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(rep, zmq_msg_data(req_id), zmq_msg_size(req_id), ZMQ_SNDMORE);
    zmq_send(rep, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(rep, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(rep, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(rep, "", 0, 0);
}

/* 1 when frame f holds exactly the text s. */
static int frame_is(zmq_msg_t *f, const char *s) {
    size_t n = strlen(s);
    return zmq_msg_size(f) == n && memcmp(zmq_msg_data(f), s, n) == 0;
}

/* Checks one ZAP request of n frames (RFC 27: version, request id, domain, address, identity,
 * mechanism, credentials...) against the handler's domain and allow-list. Returns the status
 * code for the reply ("200" admitted, "400" refused) and writes the status text into text (cap
 * bytes). *who is the admitted client's name (NULL unless "200"); *key the CURVE key of the
 * request when it carries one (NULL otherwise); *key_refused is set when the request itself was
 * well formed but its key is not admitted (the refusals fedc_net_refused counts). */
static const char *zap_check(const zap *z, zmq_msg_t *f, int n, char *text, size_t cap,
                             const char **who, const uint8_t **key, int *key_refused) {
    *who = NULL;
    *key = NULL;
    *key_refused = 0;
    if (n < 6) {
        snprintf(text, cap, "malformed ZAP request: %d frames, expected at least 6", n);
        return "400";
    }
    if (!frame_is(&f[0], "1.0")) {
        snprintf(text, cap, "ZAP version of %zu bytes is not supported: expected \"1.0\"",
                 zmq_msg_size(&f[0]));
        return "400";
    }
    if (!frame_is(&f[2], z->domain)) {
        snprintf(text, cap, "ZAP domain of %zu bytes is not this endpoint's: expected \"%s\"",
                 zmq_msg_size(&f[2]), z->domain);
        return "400";
    }
    if (frame_is(&f[5], "CURVE") && n >= 7 && zmq_msg_size(&f[6]) == 32) {
        *key = zmq_msg_data(&f[6]);
        for (int i = 0; i < z->n_allow && !*who; i++)
            if (memcmp(z->allow[i].curve_pk, *key, 32) == 0)
                *who = z->allow[i].name;
    }
    if (*who) {
        snprintf(text, cap, "OK");
        return "200";
    }
    *key_refused = 1;
    snprintf(text, cap, "key not in the allow-list");
    return "400";
}

static void *zap_main(void *arg) {
    zap *z = arg;
    zmq_pollitem_t it = {z->rep, 0, ZMQ_POLLIN, 0};
    while (!atomic_load(&z->stop)) {
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zmq_msg_t f[8];
        int n = 0;
        if (recv_frames(z->rep, f, 8, &n) != 0)
            continue;
        /* Every request is answered, a malformed one too: a REP socket that skips a reply
         * cannot receive the next request. */
        char text[128], user[FEDC_KEY_NAME_MAX + 1] = "";
        const char *who;
        const uint8_t *key;
        int key_refused;
        /* Under the lock: the list may be swapped (fedc_net_set_allow) between two requests, never
         * during one; the admitted name is copied out of it before the lock is released. */
        pthread_mutex_lock(&z->lock);
        const char *code = zap_check(z, f, n, text, sizeof text, &who, &key, &key_refused);
        if (who)
            snprintf(user, sizeof user, "%s", who);
        /* Counted before the reply goes out, so whoever sees the refusal sees it counted. */
        if (key_refused) {
            int probe = key && z->has_probe && memcmp(key, z->probe_key, 32) == 0;
            if (!probe) {
                atomic_fetch_add(&z->refused, 1);
                int seen = 0;
                for (int i = 0; key && i < z->n_logged && !seen; i++)
                    seen = memcmp(z->logged[i], key, 32) == 0;
                if (!seen) {
                    char addr[64] = "?", zk[FEDC_Z85_KEY_LEN + 1] = "(none)";
                    size_t al = zmq_msg_size(&f[3]) < sizeof addr - 1 ? zmq_msg_size(&f[3])
                                                                      : sizeof addr - 1;
                    memcpy(addr, zmq_msg_data(&f[3]), al);
                    addr[al] = 0;
                    if (key)
                        fedc_key_z85(zk, key);
                    fprintf(stderr,
                            "fedc-coordinator: refused a connection from %s: its key %s is not "
                            "in the allow-list (logged once per key)\n",
                            addr, zk);
                    if (key && z->n_logged < MAX_LOGGED_KEYS)
                        memcpy(z->logged[z->n_logged++], key, 32);
                }
            }
        }
        pthread_mutex_unlock(&z->lock);
        zmq_msg_t no_id;
        zmq_msg_init(&no_id);
        zap_reply(z->rep, n >= 2 ? &f[1] : &no_id, code, text, user);
        zmq_msg_close(&no_id);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
    zmq_close(z->rep);
    return NULL;
}

long fedc_net_refused(const fedc_endpoint *e) {
    return e->zap ? atomic_load(&e->zap->refused) : 0;
}

fedc_err fedc_net_bind_secure(fedc_endpoint **out, void *zctx, const char *addr, size_t max_msg,
                              const fedc_identity *self, const fedc_identity *allow, int n_allow,
                              fedc_diag *d) {
    *out = NULL;
    if (!zmq_has("curve")) {
        fedc_diag_set(d, "this libzmq has no CURVE security (install Debian's libzmq5)");
        return FEDC_EIO;
    }
    if (!self->has_secret || n_allow < 1) {
        fedc_diag_set(d, "a secret key and a non-empty allow-list are needed");
        return FEDC_EINVAL;
    }
    zap *z = calloc(1, sizeof *z);
    if (!z)
        return FEDC_ENOMEM;
    z->allow = malloc(sizeof *z->allow * (size_t)n_allow);
    if (!z->allow) {
        free(z);
        return FEDC_ENOMEM;
    }
    memcpy(z->allow, allow, sizeof *z->allow * (size_t)n_allow);
    for (int i = 0; i < n_allow; i++)
        fedc_key_wipe(&z->allow[i]);
    z->n_allow = n_allow;
    z->domain = ZAP_DOMAIN;
    pthread_mutex_init(&z->lock, NULL);
    /* The handler runs before the socket binds, so no connection is ever authenticated without
     * it; with option 93 set, a missing handler refuses everyone instead of admitting everyone. */
    z->rep = zmq_socket(zctx, ZMQ_REP);
    if (!z->rep || zmq_bind(z->rep, ZAP_ENDPOINT) != 0) {
        fedc_diag_set(d, "cannot start the ZAP handler: %s", zmq_strerror(zmq_errno()));
        if (z->rep)
            zmq_close(z->rep);
        pthread_mutex_destroy(&z->lock);
        free(z->allow);
        free(z);
        return FEDC_EIO;
    }
    if (pthread_create(&z->thread, NULL, zap_main, z) != 0) {
        fedc_diag_set(d, "cannot start the ZAP handler thread");
        zmq_close(z->rep);
        pthread_mutex_destroy(&z->lock);
        free(z->allow);
        free(z);
        return FEDC_EIO;
    }
    fedc_err rc = open_socket(out, zctx, ZMQ_ROUTER, max_msg, d);
    if (rc) {
        zap_stop(z);
        return rc;
    }
    fedc_endpoint *e = *out;
    e->zap = z;
    e->secure = 1;
    memcpy(e->server_pk, self->curve_pk, 32);
    int one = 1;
    if (zmq_setsockopt(e->sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(e->sock, ZMQ_CURVE_SECRETKEY, self->curve_sk, 32) ||
        zmq_setsockopt(e->sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) ||
        zmq_setsockopt(e->sock, OPT_ZAP_ENFORCE_DOMAIN, &one, sizeof one)) {
        fedc_diag_set(d, "cannot configure CurveZMQ: %s", zmq_strerror(zmq_errno()));
        fedc_net_close(out);
        return FEDC_EIO;
    }
    if (zmq_bind(e->sock, addr) != 0) {
        fedc_diag_set(d, "cannot bind %s: %s", addr, zmq_strerror(zmq_errno()));
        fedc_net_close(out);
        return FEDC_EIO;
    }
    size_t len = sizeof e->endpoint;
    if (zmq_getsockopt(e->sock, ZMQ_LAST_ENDPOINT, e->endpoint, &len) != 0)
        snprintf(e->endpoint, sizeof e->endpoint, "%s", addr);
    return FEDC_OK;
}

fedc_err fedc_net_set_allow(fedc_endpoint *e, const fedc_identity *allow, int n_allow,
                            fedc_diag *d) {
    if (!e->zap) {
        fedc_diag_set(d, "the endpoint has no allow-list (it was bound without CurveZMQ)");
        return FEDC_EINVAL;
    }
    if (n_allow < 1) {
        fedc_diag_set(d, "an allow-list needs at least one key, got none");
        return FEDC_EINVAL;
    }
    fedc_identity *copy = malloc(sizeof *copy * (size_t)n_allow);
    if (!copy) {
        fedc_diag_set(d, "out of memory for %d keys", n_allow);
        return FEDC_ENOMEM;
    }
    memcpy(copy, allow, sizeof *copy * (size_t)n_allow);
    for (int i = 0; i < n_allow; i++)
        fedc_key_wipe(&copy[i]);
    zap *z = e->zap;
    pthread_mutex_lock(&z->lock);
    fedc_identity *old = z->allow;
    z->allow = copy;
    z->n_allow = n_allow;
    /* A key refused before may be refused again for another reason (it was removed, then comes
     * back with a typo): log each key once per list. */
    z->n_logged = 0;
    pthread_mutex_unlock(&z->lock);
    free(old);
    return FEDC_OK;
}

static int open_monitor(fedc_endpoint *e, void *zctx, int events) {
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://fedc-monitor-%p", (void *)e);
    if (zmq_socket_monitor(e->sock, ep, events) != 0)
        return -1;
    e->mon = zmq_socket(zctx, ZMQ_PAIR);
    if (!e->mon || zmq_connect(e->mon, ep) != 0)
        return -1;
    return 0;
}

fedc_err fedc_net_connect_secure(fedc_endpoint **out, void *zctx, const char *addr, size_t max_msg,
                                 const fedc_identity *self, const uint8_t server_pk[32],
                                 fedc_diag *d) {
    *out = NULL;
    if (!zmq_has("curve")) {
        fedc_diag_set(d, "this libzmq has no CURVE security (install Debian's libzmq5)");
        return FEDC_EIO;
    }
    if (!self->has_secret) {
        fedc_diag_set(d, "a secret key is needed");
        return FEDC_EINVAL;
    }
    fedc_err rc = open_socket(out, zctx, ZMQ_DEALER, max_msg, d);
    if (rc)
        return rc;
    fedc_endpoint *e = *out;
    e->secure = 1;
    if (zmq_setsockopt(e->sock, ZMQ_CURVE_SERVERKEY, server_pk, 32) ||
        zmq_setsockopt(e->sock, ZMQ_CURVE_PUBLICKEY, self->curve_pk, 32) ||
        zmq_setsockopt(e->sock, ZMQ_CURVE_SECRETKEY, self->curve_sk, 32)) {
        fedc_diag_set(d, "cannot configure CurveZMQ: %s", zmq_strerror(zmq_errno()));
        fedc_net_close(out);
        return FEDC_EIO;
    }
    if (open_monitor(e, zctx,
                     ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                         ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                         ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_DISCONNECTED) != 0) {
        fedc_diag_set(d, "cannot monitor the socket: %s", zmq_strerror(zmq_errno()));
        fedc_net_close(out);
        return FEDC_EIO;
    }
    if (zmq_connect(e->sock, addr) != 0) {
        fedc_diag_set(d, "cannot connect to %s: %s", addr, zmq_strerror(zmq_errno()));
        fedc_net_close(out);
        return FEDC_EIO;
    }
    snprintf(e->endpoint, sizeof e->endpoint, "%s", addr);
    return FEDC_OK;
}

void *fedc_net_monitor(fedc_endpoint *e) {
    return e->mon;
}

int fedc_net_events(fedc_endpoint *e, fedc_net_event_state *st) {
    int seen = 0;
    while (e->mon) {
        zmq_msg_t f[2];
        int n = 0;
        zmq_pollitem_t it = {e->mon, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 0) <= 0 || recv_frames(e->mon, f, 2, &n) != 0)
            break;
        if (n >= 1 && zmq_msg_size(&f[0]) >= 6) {
            uint16_t ev;
            uint32_t val;
            memcpy(&ev, zmq_msg_data(&f[0]), 2);
            memcpy(&val, (uint8_t *)zmq_msg_data(&f[0]) + 2, 4);
            seen++;
            switch (ev) {
            case ZMQ_EVENT_CONNECTED:
                st->connected = 1;
                break;
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
                st->handshake_ok = 1;
                st->auth_failed = 0;
                break;
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
                st->auth_failed = 1;
                st->auth_status = (int)val;
                break;
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                st->handshake_failed++;
                break;
            case ZMQ_EVENT_DISCONNECTED:
                st->connected = 0;
                break;
            default:
                break;
            }
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
    return seen;
}

fedc_err fedc_net_selftest(fedc_endpoint *e, void *zctx, fedc_diag *d) {
    if (!e->zap)
        return FEDC_OK;
    /* Connect to ourselves over TCP (inproc bypasses CURVE) with a fresh key that is in no
     * allow-list: the handshake must fail with an authentication error. */
    const char *ep = e->endpoint;
    const char *port = strrchr(ep, ':');
    if (strncmp(ep, "tcp://", 6) != 0 || !port) {
        fedc_diag_set(d, "start-up check needs a tcp:// endpoint, got %s", ep);
        return FEDC_EINVAL;
    }
    char host[160];
    size_t hl = (size_t)(port - (ep + 6));
    if (hl >= sizeof host)
        hl = sizeof host - 1;
    memcpy(host, ep + 6, hl);
    host[hl] = 0;
    char target[256];
    snprintf(target, sizeof target, "tcp://%s%s",
             strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0 || strcmp(host, "[::]") == 0
                 ? "127.0.0.1"
                 : host,
             port);
    fedc_identity probe;
    fedc_diag dd;
    if (fedc_key_generate(&probe, "startup-probe", &dd)) {
        fedc_diag_set(d, "start-up check: %s", dd.msg);
        return FEDC_EIO;
    }
    memcpy(e->zap->probe_key, probe.curve_pk, 32);
    e->zap->has_probe = 1;
    fedc_endpoint *c = NULL;
    fedc_err rc = fedc_net_connect_secure(&c, zctx, target, 1 << 16, &probe, e->server_pk, &dd);
    fedc_key_wipe(&probe);
    if (rc) {
        fedc_diag_set(d, "start-up check: %s", dd.msg);
        return rc;
    }
    fedc_net_event_state st;
    memset(&st, 0, sizeof st);
    rc = FEDC_EIO;
    fedc_diag_set(d, "start-up check: no answer from %s within 5 s", target);
    for (int i = 0; i < 100; i++) {
        zmq_pollitem_t it = {c->mon, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 50);
        fedc_net_events(c, &st);
        if (st.auth_failed) {
            rc = FEDC_OK;
            break;
        }
        if (st.handshake_ok) {
            fedc_diag_set(d,
                          "start-up check: a key outside the allow-list was ADMITTED on %s; "
                          "refusing to run",
                          target);
            break;
        }
    }
    fedc_net_close(&c);
    return rc;
}

const char *fedc_net_endpoint(const fedc_endpoint *e) {
    return e->endpoint;
}

void *fedc_net_socket(fedc_endpoint *e) {
    return e->sock;
}

void *fedc_net_context_new(void) {
    return zmq_ctx_new();
}

void fedc_net_context_free(void **ctx) {
    if (*ctx)
        zmq_ctx_term(*ctx);
    *ctx = NULL;
}

fedc_err fedc_net_wait(fedc_endpoint *e, int fd, int watch_monitor, long timeout_ms,
                       unsigned *ready, fedc_diag *d) {
    zmq_pollitem_t items[3];
    int n = 0, at_fd = -1, at_mon = -1;
    items[n++] = (zmq_pollitem_t){e->sock, 0, ZMQ_POLLIN, 0};
    if (fd >= 0) {
        at_fd = n;
        items[n++] = (zmq_pollitem_t){NULL, fd, ZMQ_POLLIN, 0};
    }
    if (watch_monitor && e->mon) {
        at_mon = n;
        items[n++] = (zmq_pollitem_t){e->mon, 0, ZMQ_POLLIN, 0};
    }
    *ready = 0;
    int k = zmq_poll(items, n, timeout_ms);
    if (k < 0) {
        if (zmq_errno() == EINTR)
            return FEDC_OK;
        fedc_diag_set(d, "poll failed: %s", zmq_strerror(zmq_errno()));
        return FEDC_EIO;
    }
    if (items[0].revents & ZMQ_POLLIN)
        *ready |= FEDC_NET_READY_MSG;
    if (at_fd >= 0 && (items[at_fd].revents & ZMQ_POLLIN))
        *ready |= FEDC_NET_READY_FD;
    if (at_mon >= 0 && (items[at_mon].revents & ZMQ_POLLIN))
        *ready |= FEDC_NET_READY_MONITOR;
    return FEDC_OK;
}

void fedc_net_set_linger(fedc_endpoint *e, int ms) {
    zmq_setsockopt(e->sock, ZMQ_LINGER, &ms, sizeof ms);
}

static int send_frame(void *sock, const void *data, size_t len, int more) {
    return zmq_send(sock, data, len, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) < 0 ? -1 : 0;
}

/* The frames of one message: [routing id] envelope [raw]; `what` names it in errors. */
static fedc_err send_frames(fedc_endpoint *e, const fedc_peer *to, const uint8_t *env,
                            size_t env_len, const void *raw, size_t raw_len, const char *what,
                            fedc_diag *d) {
    int fail = 0;
    if (e->router)
        fail = send_frame(e->sock, to->id, to->len, 1);
    if (!fail)
        fail = send_frame(e->sock, env, env_len, raw != NULL);
    if (!fail && raw)
        fail = send_frame(e->sock, raw, raw_len, 0);
    if (fail) {
        int err = zmq_errno();
        fedc_diag_set(d, "cannot send %s: %s", what,
                      err == EHOSTUNREACH ? "the peer is not connected"
                      : err == EAGAIN     ? "send queue full"
                                          : zmq_strerror(err));
        return FEDC_EIO;
    }
    return FEDC_OK;
}

fedc_err fedc_net_send(fedc_endpoint *e, const fedc_peer *to, const Fedc__Envelope *m,
                       const void *raw, size_t raw_len, fedc_diag *d) {
    uint8_t *buf = NULL;
    size_t len = 0;
    fedc_err rc = fedc_msg_pack(&buf, &len, m);
    if (rc) {
        fedc_diag_set(d, "cannot encode %s", fedc_msg_body_name(m->body_case));
        return rc;
    }
    rc = send_frames(e, to, buf, len, raw, raw_len, fedc_msg_body_name(m->body_case), d);
    free(buf);
    return rc;
}

fedc_err fedc_net_send_msg(fedc_endpoint *e, const fedc_peer *to, const fedc_msg *m, size_t *sent,
                           fedc_diag *d) {
    uint8_t *buf = NULL;
    size_t len = 0, raw_len = 0;
    fedc_err rc = fedc_msg_encode(&buf, &len, m, d);
    if (rc)
        return rc;
    /* The tensor goes from the caller's memory: ZeroMQ copies it into its frame, once. */
    const void *raw = fedc_msg_raw(m, &raw_len);
    rc = send_frames(e, to, buf, len, raw, raw_len, fedc_msg_kind_name(m->kind), d);
    free(buf);
    if (!rc && sent)
        *sent = len + raw_len;
    return rc;
}

#define SEND_FN(name, KIND, member, type)                                                          \
    fedc_err fedc_net_send_##name(fedc_endpoint *e, const fedc_peer *to, const uint8_t *run_id,    \
                                  uint32_t round, const type *b, fedc_diag *d) {                   \
        fedc_msg m;                                                                                \
        memset(&m, 0, sizeof m);                                                                   \
        m.kind = KIND;                                                                             \
        m.run_id = run_id;                                                                         \
        m.round = round;                                                                           \
        m.member = *b;                                                                             \
        return fedc_net_send_msg(e, to, &m, NULL, d);                                              \
    }
SEND_FN(join, FEDC_MSG_JOIN, join, fedc_join)
SEND_FN(welcome, FEDC_MSG_WELCOME, welcome, fedc_welcome)
SEND_FN(stats_request, FEDC_MSG_STATS_REQUEST, stats_request, fedc_stats_request)
SEND_FN(stats, FEDC_MSG_STATS, stats, fedc_stats)
SEND_FN(fit_ins, FEDC_MSG_FIT_INS, fit_ins, fedc_fit_ins)
SEND_FN(fit_res, FEDC_MSG_FIT_RES, fit_res, fedc_fit_res)
SEND_FN(evaluate_ins, FEDC_MSG_EVALUATE_INS, evaluate_ins, fedc_evaluate_ins)
SEND_FN(evaluate_res, FEDC_MSG_EVALUATE_RES, evaluate_res, fedc_evaluate_res)
SEND_FN(heartbeat, FEDC_MSG_HEARTBEAT, heartbeat, fedc_heartbeat)
SEND_FN(error_msg, FEDC_MSG_ERROR, error, fedc_error)
SEND_FN(bye_msg, FEDC_MSG_BYE, bye, fedc_bye)
SEND_FN(sa_keys, FEDC_MSG_SA_KEYS, sa_keys, fedc_sa_keys)
SEND_FN(sa_share_ins, FEDC_MSG_SA_SHARE_INS, sa_share_ins, fedc_sa_share_ins)
SEND_FN(sa_shares, FEDC_MSG_SA_SHARES, sa_shares, fedc_sa_boxes)
SEND_FN(sa_mask_ins, FEDC_MSG_SA_MASK_INS, sa_mask_ins, fedc_sa_boxes)
SEND_FN(sa_masked, FEDC_MSG_SA_MASKED, sa_masked, fedc_sa_masked)
SEND_FN(sa_unmask_ins, FEDC_MSG_SA_UNMASK_INS, sa_unmask_ins, fedc_sa_unmask_ins)
SEND_FN(sa_unmask, FEDC_MSG_SA_UNMASK, sa_unmask, fedc_sa_unmask)
SEND_FN(sa_graph_ins, FEDC_MSG_SA_GRAPH_INS, sa_graph_ins, fedc_sa_graph_ins)
SEND_FN(sa_graph, FEDC_MSG_SA_GRAPH, sa_graph, fedc_sa_graph_msg)
SEND_FN(sa_consist_ins, FEDC_MSG_SA_CONSIST_INS, sa_consist_ins, fedc_sa_consist_ins)
SEND_FN(sa_consist, FEDC_MSG_SA_CONSIST, sa_consist, fedc_sa_consist)
#undef SEND_FN

fedc_err fedc_blob_new(fedc_blob **out, size_t len) {
    *out = NULL;
    fedc_blob *b = malloc(sizeof *b + (len ? len : 1));
    if (!b)
        return FEDC_ENOMEM;
    atomic_init(&b->refs, 1);
    b->len = len;
    b->data = (uint8_t *)(b + 1);
    *out = b;
    return FEDC_OK;
}

void fedc_blob_unref(fedc_blob **pb) {
    if (!pb || !*pb)
        return;
    if (atomic_fetch_sub_explicit(&(*pb)->refs, 1, memory_order_acq_rel) == 1)
        free(*pb);
    *pb = NULL;
}

/* Called by libzmq (possibly on its I/O thread) when a zero-copy frame has been sent. */
static void blob_release(void *data, void *hint) {
    (void)data;
    fedc_blob *b = hint;
    fedc_blob_unref(&b);
}

fedc_err fedc_net_send_packed(fedc_endpoint *e, const fedc_peer *to, const uint8_t *env,
                              size_t env_len, fedc_blob *raw, const char *what, fedc_diag *d) {
    int fail = 0;
    if (e->router)
        fail = send_frame(e->sock, to->id, to->len, 1);
    if (!fail)
        fail = send_frame(e->sock, env, env_len, raw != NULL);
    if (!fail && raw) {
        zmq_msg_t m;
        atomic_fetch_add_explicit(&raw->refs, 1, memory_order_relaxed);
        if (zmq_msg_init_data(&m, raw->data, raw->len, blob_release, raw) != 0) {
            fedc_blob_unref(&raw);
            fail = 1;
        } else if (zmq_msg_send(&m, e->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m); /* releases the reference */
            fail = 1;
        }
    }
    if (fail) {
        int err = zmq_errno();
        fedc_diag_set(d, "cannot send %s: %s", what,
                      err == EHOSTUNREACH ? "the peer is not connected"
                      : err == EAGAIN     ? "send queue full"
                                          : zmq_strerror(err));
        return FEDC_EIO;
    }
    return FEDC_OK;
}

void fedc_inbox_release(fedc_inbox *in) {
    Fedc__Envelope *env = in->env;
    fedc_msg_free(&env);
    in->env = NULL;
    free(in->view_mem);
    in->view_mem = NULL;
    memset(&in->msg, 0, sizeof in->msg);
    if (in->raw_msg) {
        zmq_msg_close(in->raw_msg);
        free(in->raw_msg);
    }
    in->raw_msg = NULL;
    in->raw = NULL;
    in->raw_len = 0;
}

const Fedc__Envelope *fedc_inbox_envelope(const fedc_inbox *in) {
    return in->env;
}

fedc_err fedc_net_recv(fedc_endpoint *e, fedc_inbox *in, const fedc_msg_expect *x, int timeout_ms,
                       fedc_diag *d) {
    memset(in, 0, sizeof *in);
    zmq_pollitem_t item = {e->sock, 0, ZMQ_POLLIN, 0};
    int n = zmq_poll(&item, 1, timeout_ms);
    if (n < 0 && zmq_errno() == EINTR)
        return FEDC_EEMPTY; /* a signal (a stop, a reload): the caller looks at its flags */
    if (n < 0) {
        fedc_diag_set(d, "poll failed: %s", zmq_strerror(zmq_errno()));
        return FEDC_EIO;
    }
    if (n == 0)
        return FEDC_EEMPTY;
    /* Read every frame of the message. */
    zmq_msg_t frames[MAX_FRAMES];
    int count = 0, more = 1, extra = 0;
    fedc_err rc = FEDC_OK;
    while (more) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, e->sock, ZMQ_DONTWAIT) < 0) {
            fedc_diag_set(d, "receive failed: %s", zmq_strerror(zmq_errno()));
            zmq_msg_close(&f);
            rc = FEDC_EIO;
            break;
        }
        more = zmq_msg_more(&f);
        if (count < MAX_FRAMES)
            frames[count++] = f;
        else {
            extra++;
            zmq_msg_close(&f);
        }
    }
    int first = e->router ? 1 : 0;
    if (!rc && e->router) {
        size_t idlen = zmq_msg_size(&frames[0]);
        in->from.len = idlen < FEDC_PEER_ID_MAX ? idlen : FEDC_PEER_ID_MAX;
        memcpy(in->from.id, zmq_msg_data(&frames[0]), in->from.len);
        /* The identity ZAP bound to the connection's key: the only name we trust. */
        const char *uid = e->secure && count > 1 ? zmq_msg_gets(&frames[1], "User-Id") : NULL;
        if (uid)
            snprintf(in->user, sizeof in->user, "%s", uid);
    }
    int payload = count - first;
    size_t size = 0;
    for (int i = first; i < count; i++)
        size += zmq_msg_size(&frames[i]);
    if (!rc && e->max_msg && size > e->max_msg) {
        char mib[48] = "";
        if (e->max_msg % ((size_t)1 << 20) == 0)
            snprintf(mib, sizeof mib, " (--max-msg-mb %zu)", e->max_msg >> 20);
        fedc_diag_set(d, "message of %zu bytes exceeds the receiver's limit of %zu bytes%s", size,
                      e->max_msg, mib);
        rc = FEDC_ERANGE;
    }
    if (!rc && (extra || payload < 1 || payload > 2)) {
        fedc_diag_set(d, "malformed message: %d frames after the routing id, expected 1 or 2",
                      payload + extra);
        rc = FEDC_EFORMAT;
    }
    if (!rc) {
        fedc_msg_expect xx = *x;
        if (payload == 2) {
            xx.raw = zmq_msg_data(&frames[first + 1]);
            xx.raw_len = zmq_msg_size(&frames[first + 1]);
        }
        Fedc__Envelope *env = NULL;
        rc = fedc_msg_unpack(&env, zmq_msg_data(&frames[first]), zmq_msg_size(&frames[first]), &xx,
                             d);
        in->env = env;
        if (!rc && payload == 2) {
            /* Keep the frame itself (no copy of a large tensor): it lives until release. */
            in->raw_msg = malloc(sizeof(zmq_msg_t));
            if (!in->raw_msg) {
                fedc_diag_set(d, "out of memory receiving a message");
                rc = FEDC_ENOMEM;
            } else {
                zmq_msg_init(in->raw_msg);
                zmq_msg_move(in->raw_msg, &frames[first + 1]);
                in->raw = zmq_msg_data(in->raw_msg);
                in->raw_len = zmq_msg_size(in->raw_msg);
            }
        }
        /* The view points into the kept frame (a small frame's bytes live inside the zmq_msg_t,
         * so only after the move are they where they stay). */
        if (!rc)
            rc = fedc_msg_view(&in->msg, &in->view_mem, env, in->raw, in->raw_len, d);
        if (rc) {
            fedc_msg_free(&env);
            in->env = NULL;
            memset(&in->msg, 0, sizeof in->msg);
        }
        in->bytes = 0;
        for (int i = 0; i < count; i++)
            in->bytes += zmq_msg_size(&frames[i]);
        if (in->raw_msg)
            in->bytes += in->raw_len;
    }
    for (int i = 0; i < count; i++)
        zmq_msg_close(&frames[i]);
    return rc;
}

void fedc_net_send_error(fedc_endpoint *e, const fedc_peer *to, const uint8_t *run_id,
                         uint32_t round, fedc_err code, const char *reason) {
    fedc_net_send_error_kind(e, to, run_id, round, code, FEDC_ERROR_NOTE, reason);
}

void fedc_net_send_bye(fedc_endpoint *e, const fedc_peer *to, const uint8_t *run_id, uint32_t round,
                       int code, const char *reason) {
    fedc_bye b = {(fedc_bye_code)code, reason};
    fedc_diag ignore;
    if (fedc_net_send_bye_msg(e, to, run_id, round, &b, &ignore) != FEDC_OK) {
        /* Best effort, as for errors. */
    }
}

void fedc_net_send_error_kind(fedc_endpoint *e, const fedc_peer *to, const uint8_t *run_id,
                              uint32_t round, fedc_err code, int kind, const char *reason) {
    fedc_error err;
    memset(&err, 0, sizeof err);
    err.code = code;
    err.reason = reason;
    err.kind = (fedc_error_kind)kind;
    fedc_diag ignore;
    if (fedc_net_send_error_msg(e, to, run_id, round, &err, &ignore) != FEDC_OK) {
        /* Best effort: the peer may already be gone; the caller logs the original problem. */
    }
}
