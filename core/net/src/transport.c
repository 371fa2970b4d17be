/* ROUTER/DEALER transport over libzmq (contracts in transport.h). Every receive drains all frames
 * of a message before deciding, so a refused message never leaves stray frames behind. The
 * CurveZMQ authentication (ZAP handler, allow-list, monitor events) lives in zap.c. */
#include "transport_int.h"

#include "fedc/codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define SEND_HWM 64 /* messages queued per peer before sends fail instead of growing memory */
/* Messages a ROUTER queues per peer before it stops reading that peer's connection: with tensors
 * pulled chunk by chunk a well-behaved client has only a few messages in flight, and a peer that
 * pushes more than that is held back by TCP instead of growing the coordinator's memory. */
#define ROUTER_RCV_HWM 32
#define MAX_FRAMES 4

fedc_err fedc__open_socket(fedc_endpoint **out, void *zctx, int type, size_t max_msg,
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
    int linger = 0, hwm = SEND_HWM, one = 1, rcv_hwm = ROUTER_RCV_HWM;
    if (zmq_setsockopt(e->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(e->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(e->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        (e->router && zmq_setsockopt(e->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one)) ||
        (e->router && zmq_setsockopt(e->sock, ZMQ_RCVHWM, &rcv_hwm, sizeof rcv_hwm))) {
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
    fedc_err rc = fedc__open_socket(out, zctx, ZMQ_ROUTER, max_msg, d);
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
    fedc_err rc = fedc__open_socket(out, zctx, ZMQ_DEALER, max_msg, d);
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
    fedc_endpoint *e = *pe;
    if (e->mon) {
        zmq_socket_monitor(e->sock, NULL, 0);
        zmq_close(e->mon);
    }
    zmq_close(e->sock);
    fedc__zap_stop(e->zap); /* after the socket: no more authentication requests */
    free(e);
    *pe = NULL;
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
SEND_FN(chunk, FEDC_MSG_CHUNK, chunk, fedc_chunk)
SEND_FN(chunk_req, FEDC_MSG_CHUNK_REQ, chunk_req, fedc_chunk_req)
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
SEND_FN(sa_fit_ins, FEDC_MSG_SA_FIT_INS, sa_fit_ins, fedc_sa_fit_ins)
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

fedc_blob *fedc_blob_ref(fedc_blob *b) {
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

/* Called by libzmq (possibly on its I/O thread) when a zero-copy frame has been sent. */
static void blob_release(void *data, void *hint) {
    (void)data;
    fedc_blob *b = hint;
    fedc_blob_unref(&b);
}

fedc_err fedc_net_send_packed(fedc_endpoint *e, const fedc_peer *to, const uint8_t *env,
                              size_t env_len, fedc_blob *raw, const char *what, fedc_diag *d) {
    return fedc_net_send_packed_range(e, to, env, env_len, raw, 0, raw ? raw->len : 0, what, d);
}

fedc_err fedc_net_send_packed_range(fedc_endpoint *e, const fedc_peer *to, const uint8_t *env,
                                    size_t env_len, fedc_blob *raw, size_t off, size_t len,
                                    const char *what, fedc_diag *d) {
    if (raw && (off > raw->len || len > raw->len - off)) {
        fedc_diag_set(d, "cannot send %s: bytes %zu..%zu outside the buffer of %zu", what, off,
                      off + len, raw->len);
        return FEDC_EINVAL;
    }
    int fail = 0;
    if (e->router)
        fail = send_frame(e->sock, to->id, to->len, 1);
    if (!fail)
        fail = send_frame(e->sock, env, env_len, raw != NULL);
    if (!fail && raw) {
        zmq_msg_t m;
        atomic_fetch_add_explicit(&raw->refs, 1, memory_order_relaxed);
        if (zmq_msg_init_data(&m, raw->data + off, len, blob_release, raw) != 0) {
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
    /* Without a timeout the first frame's non-blocking receive says whether a message is there:
     * no poll (a system call) per message, which a loop draining a queue would pay each time. */
    if (timeout_ms != 0) {
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
    }
    /* Read every frame of the message. */
    zmq_msg_t frames[MAX_FRAMES];
    int count = 0, more = 1, extra = 0;
    fedc_err rc = FEDC_OK;
    while (more) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, e->sock, ZMQ_DONTWAIT) < 0) {
            int err = zmq_errno();
            if (count == 0 && (err == EAGAIN || err == EINTR)) {
                zmq_msg_close(&f);
                return FEDC_EEMPTY; /* nothing queued, or a signal: as the poll above says */
            }
            fedc_diag_set(d, "receive failed: %s", zmq_strerror(err));
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
