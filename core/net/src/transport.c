/* ROUTER/DEALER transport over libzmq (contracts in transport.h). Every receive drains all frames
 * of a message before deciding, so a refused message never leaves stray frames behind. */
#include "fedc/transport.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define SEND_HWM 64 /* messages queued per peer before sends fail instead of growing memory */
#define MAX_FRAMES 4

struct fedc_endpoint {
    void *sock;
    int router;
    char endpoint[256];
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
    int64_t maxmsg = max_msg ? (int64_t)max_msg : -1;
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

void fedc_net_close(fedc_endpoint **pe) {
    if (!pe || !*pe)
        return;
    zmq_close((*pe)->sock);
    free(*pe);
    *pe = NULL;
}

const char *fedc_net_endpoint(const fedc_endpoint *e) {
    return e->endpoint;
}

void *fedc_net_socket(fedc_endpoint *e) {
    return e->sock;
}

static int send_frame(void *sock, const void *data, size_t len, int more) {
    return zmq_send(sock, data, len, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) < 0 ? -1 : 0;
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
    int fail = 0;
    if (e->router)
        fail = send_frame(e->sock, to->id, to->len, 1);
    if (!fail)
        fail = send_frame(e->sock, buf, len, raw != NULL);
    if (!fail && raw)
        fail = send_frame(e->sock, raw, raw_len, 0);
    free(buf);
    if (fail) {
        int err = zmq_errno();
        fedc_diag_set(d, "cannot send %s: %s", fedc_msg_body_name(m->body_case),
                      err == EHOSTUNREACH ? "the peer is not connected"
                      : err == EAGAIN     ? "send queue full"
                                          : zmq_strerror(err));
        return FEDC_EIO;
    }
    return FEDC_OK;
}

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
    fedc_msg_free(&in->msg);
    if (in->raw_msg) {
        zmq_msg_close(in->raw_msg);
        free(in->raw_msg);
    }
    in->raw_msg = NULL;
    in->raw = NULL;
    in->raw_len = 0;
}

fedc_err fedc_net_recv(fedc_endpoint *e, fedc_inbox *in, const fedc_msg_expect *x, int timeout_ms,
                       fedc_diag *d) {
    memset(in, 0, sizeof *in);
    zmq_pollitem_t item = {e->sock, 0, ZMQ_POLLIN, 0};
    int n = zmq_poll(&item, 1, timeout_ms);
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
    }
    int payload = count - first;
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
        rc = fedc_msg_unpack(&in->msg, zmq_msg_data(&frames[first]), zmq_msg_size(&frames[first]),
                             &xx, d);
        if (!rc && payload == 2) {
            /* Keep the frame itself (no copy of a large tensor): it lives until release. */
            in->raw_msg = malloc(sizeof(zmq_msg_t));
            if (!in->raw_msg) {
                fedc_msg_free(&in->msg);
                rc = FEDC_ENOMEM;
            } else {
                zmq_msg_init(in->raw_msg);
                zmq_msg_move(in->raw_msg, &frames[first + 1]);
                in->raw = zmq_msg_data(in->raw_msg);
                in->raw_len = zmq_msg_size(in->raw_msg);
            }
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
    Fedc__Envelope m = FEDC__ENVELOPE__INIT;
    Fedc__Error err = FEDC__ERROR__INIT;
    char text[FEDC_REASON_MAX + 1];
    snprintf(text, sizeof text, "%s", reason);
    m.version = FEDC_PROTOCOL_VERSION;
    if (run_id) {
        m.run_id.data = (uint8_t *)run_id;
        m.run_id.len = FEDC_RUN_ID_BYTES;
    }
    m.round = round;
    err.code = (uint32_t) - (int)code;
    err.reason = text;
    m.body_case = FEDC__ENVELOPE__BODY_ERROR;
    m.error = &err;
    fedc_diag ignore;
    if (fedc_net_send(e, to, &m, NULL, 0, &ignore) != FEDC_OK) {
        /* Best effort: the peer may already be gone; the caller logs the original problem. */
    }
}
