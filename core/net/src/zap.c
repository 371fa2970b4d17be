/* CurveZMQ authentication for the transport (contracts in transport.h): the ZAP handler thread
 * and its allow-list, the secure bind/connect, the monitor events and the start-up self-test. */
#include "transport_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "fedc"
#define OPT_ZAP_ENFORCE_DOMAIN 93 /* draft option, honoured by libzmq 4.3.4 (docs/security.md) */

void fedc__zap_stop(zap *z) {
    if (!z)
        return;
    atomic_store(&z->stop, 1);
    pthread_join(z->thread, NULL);
    pthread_mutex_destroy(&z->lock);
    free(z->allow);
    free(z);
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
    fedc_err rc = fedc__open_socket(out, zctx, ZMQ_ROUTER, max_msg, d);
    if (rc) {
        fedc__zap_stop(z);
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
    fedc_err rc = fedc__open_socket(out, zctx, ZMQ_DEALER, max_msg, d);
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
