/* ZeroMQ transport: the coordinator's ROUTER (bind) and the client's DEALER (connect), carrying one
 * validated envelope per message plus, for large tensors, one raw frame after it.
 *
 * Frames: ROUTER side [peer identity][envelope][raw tensor]?; DEALER side [envelope][raw]?.
 * The ROUTER sets ZMQ_ROUTER_MANDATORY so that a send to a vanished peer fails loudly instead of
 * being dropped, and ZMQ_MAXMSGSIZE so that no peer can make it allocate more than twice the
 * agreed bound (messages between the bound and that are refused with their size named). Send
 * high-water marks bound memory per slow peer. Liveness (heartbeats, deadlines) is the caller's
 * job: ZeroMQ's own heartbeats only drop connections silently. CurveZMQ and ZAP come with the
 * encryption issue. A fedc_endpoint belongs to one thread.
 *
 * Messages go in and out as the plain structs of msg.h; the protobuf envelope stays inside
 * core/net (codec.h, not installed, is for tests that forge messages). */
#ifndef FEDC_TRANSPORT_H
#define FEDC_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"
#include "fedc/keys.h"
#include "fedc/msg.h"

#define FEDC_PEER_ID_MAX 255

/* A ROUTER's view of who sent a message (the ZeroMQ routing id). */
typedef struct fedc_peer {
    uint8_t id[FEDC_PEER_ID_MAX];
    size_t len;
} fedc_peer;

typedef struct fedc_endpoint fedc_endpoint;

/* Binds a ROUTER on addr (e.g. "tcp://127.0.0.1:7070" or "tcp://127.0.0.1:*"). max_msg bounds
 * one incoming message in bytes (all its frames; 0 = no bound): fedc_net_recv refuses a larger one
 * with FEDC_ERANGE naming both sizes, the sender known so that it can be answered. ZeroMQ's own
 * ZMQ_MAXMSGSIZE is set to twice max_msg, so a frame beyond that is dropped by ZeroMQ with the
 * connection (silently) and no peer can make us hold more. zctx is the process's ZeroMQ context
 * (borrowed). */
FEDC_MUST_CHECK fedc_err fedc_net_bind(fedc_endpoint **out, void *zctx, const char *addr,
                                       size_t max_msg, fedc_diag *d);

/* Connects a DEALER to addr; ZeroMQ reconnects by itself when the peer restarts. */
FEDC_MUST_CHECK fedc_err fedc_net_connect(fedc_endpoint **out, void *zctx, const char *addr,
                                          size_t max_msg, fedc_diag *d);

/* CurveZMQ (docs/security.md, "Transport and admission"). The coordinator's ROUTER: a ZAP handler
 * thread with the allow-list (copied; public keys only) answers authentication requests on
 * inproc://zeromq.zap.01 in zctx, started before the bind, with ZMQ_ZAP_ENFORCE_DOMAIN (option
 * 93) set so that no handler means no admission. A listed key is admitted with its name as the
 * ZAP user id (fedc_inbox.user); an unlisted one is refused, counted (fedc_net_refused) and logged
 * once per key with the peer address. A request whose version is not "1.0" (ZAP, RFC 27), whose
 * domain is not the one this endpoint sets, or that is malformed is refused with status 400 too
 * (answered, not counted). One ROUTER with ZAP per context. */
FEDC_MUST_CHECK fedc_err fedc_net_bind_secure(fedc_endpoint **out, void *zctx, const char *addr,
                                              size_t max_msg, const fedc_identity *self,
                                              const fedc_identity *allow, int n_allow,
                                              fedc_diag *d);

/* Replaces the allow-list of a secure ROUTER (copied; public keys only), for a reload without a
 * restart: every handshake from now on is checked against the new list. Connections admitted
 * before stay up (CurveZMQ authenticates a connection once, at its handshake): the caller decides
 * what becomes of the clients whose key left the list. FEDC_EINVAL on an insecure endpoint or an
 * empty list (the old list stays then), FEDC_ENOMEM. Thread-safe against the ZAP handler. */
FEDC_MUST_CHECK fedc_err fedc_net_set_allow(fedc_endpoint *e, const fedc_identity *allow,
                                            int n_allow, fedc_diag *d);

/* Proves over TCP that a key outside the allow-list is refused: connects to the bound endpoint
 * with a fresh key and waits (up to 5 s) for the authentication failure. FEDC_EIO when the probe
 * was admitted or got no answer. No-op on an insecure endpoint. */
FEDC_MUST_CHECK fedc_err fedc_net_selftest(fedc_endpoint *e, void *zctx, fedc_diag *d);

/* Keys refused so far by the ZAP handler (0 for an insecure endpoint). */
long fedc_net_refused(const fedc_endpoint *e);

/* The client's DEALER with CurveZMQ: pins the coordinator's public key and watches the
 * handshake through a socket monitor (fedc_net_events). */
FEDC_MUST_CHECK fedc_err fedc_net_connect_secure(fedc_endpoint **out, void *zctx, const char *addr,
                                                 size_t max_msg, const fedc_identity *self,
                                                 const uint8_t server_pk[32], fedc_diag *d);

/* What the monitor of a secure DEALER has reported so far. */
typedef struct fedc_net_event_state {
    int connected;    /* a TCP connection is up */
    int handshake_ok; /* the CurveZMQ handshake succeeded at least once */
    int auth_failed;  /* the coordinator refused our key (ZAP), status in auth_status */
    int auth_status;
    int handshake_failed; /* protocol failures (e.g. a wrong coordinator key), counted */
} fedc_net_event_state;

/* Reads the pending monitor events into st (non-blocking); returns how many were read. */
int fedc_net_events(fedc_endpoint *e, fedc_net_event_state *st);

/* The monitor's socket, for zmq_poll (NULL on an insecure endpoint). */
void *fedc_net_monitor(fedc_endpoint *e);

/* Closes the socket (linger 0: unsent messages are dropped); accepts NULL; sets *e = NULL. */
void fedc_net_close(fedc_endpoint **e);

/* The address actually bound (resolves a "*" port), for tests and logs. */
const char *fedc_net_endpoint(const fedc_endpoint *e);

/* The ZeroMQ socket (tests that play a peer by hand use it; programs use fedc_net_wait). */
void *fedc_net_socket(fedc_endpoint *e);

/* A ZeroMQ context for the endpoints of one coordinator or client, and its end (accepts NULL,
 * sets *ctx = NULL). NULL when libzmq cannot make one. */
void *fedc_net_context_new(void);
void fedc_net_context_free(void **ctx);

/* What fedc_net_wait found ready. */
enum { FEDC_NET_READY_MSG = 1, FEDC_NET_READY_FD = 2, FEDC_NET_READY_MONITOR = 4 };

/* Waits up to timeout_ms (0: just look) until a message can be received on e, or the file
 * descriptor fd (>= 0; -1 for none) is readable, or (watch_monitor) the socket monitor has an
 * event; *ready gets the FEDC_NET_READY_* bits (0 on timeout or when a signal interrupted the
 * wait). FEDC_EIO with the reason when the wait itself fails. */
FEDC_MUST_CHECK fedc_err fedc_net_wait(fedc_endpoint *e, int fd, int watch_monitor, long timeout_ms,
                                       unsigned *ready, fedc_diag *d);

/* How long unsent messages may hold up closing the endpoint, in milliseconds (a goodbye that
 * should still leave). */
void fedc_net_set_linger(fedc_endpoint *e, int ms);

/* Sends m (to peer `to` on a ROUTER; `to` is ignored on a DEALER): its envelope and, for a message
 * with a tensor or masked values, those as a raw frame after it, sent from the caller's memory.
 * *sent (when not NULL) gets the bytes that left (the envelope and the raw frame). Errors:
 * FEDC_EINVAL for a message that cannot be encoded, FEDC_EIO with the reason, e.g. an unknown or
 * vanished peer on a ROUTER. Never blocks: a full send queue is an error (FEDC_EIO, "send queue
 * full"). */
FEDC_MUST_CHECK fedc_err fedc_net_send_msg(fedc_endpoint *e, const fedc_peer *to, const fedc_msg *m,
                                           size_t *sent, fedc_diag *d);

/* One send per message kind: the body b with the header (run_id: FEDC_RUN_ID_BYTES or NULL for
 * none; round), as fedc_net_send_msg. Error and Bye are fedc_net_send_error_msg and
 * fedc_net_send_bye_msg (the best-effort fedc_net_send_error and fedc_net_send_bye below take
 * their fields instead). */
#define FEDC__NET_SEND_DECL(name, type)                                                            \
    FEDC_MUST_CHECK fedc_err fedc_net_send_##name(fedc_endpoint *e, const fedc_peer *to,           \
                                                  const uint8_t *run_id, uint32_t round,           \
                                                  const type *b, fedc_diag *d);
FEDC__NET_SEND_DECL(join, fedc_join)
FEDC__NET_SEND_DECL(welcome, fedc_welcome)
FEDC__NET_SEND_DECL(stats_request, fedc_stats_request)
FEDC__NET_SEND_DECL(stats, fedc_stats)
FEDC__NET_SEND_DECL(fit_ins, fedc_fit_ins)
FEDC__NET_SEND_DECL(fit_res, fedc_fit_res)
FEDC__NET_SEND_DECL(evaluate_ins, fedc_evaluate_ins)
FEDC__NET_SEND_DECL(evaluate_res, fedc_evaluate_res)
FEDC__NET_SEND_DECL(heartbeat, fedc_heartbeat)
FEDC__NET_SEND_DECL(error_msg, fedc_error)
FEDC__NET_SEND_DECL(bye_msg, fedc_bye)
FEDC__NET_SEND_DECL(chunk, fedc_chunk)
FEDC__NET_SEND_DECL(chunk_req, fedc_chunk_req)
FEDC__NET_SEND_DECL(sa_keys, fedc_sa_keys)
FEDC__NET_SEND_DECL(sa_share_ins, fedc_sa_share_ins)
FEDC__NET_SEND_DECL(sa_shares, fedc_sa_boxes)
FEDC__NET_SEND_DECL(sa_mask_ins, fedc_sa_boxes)
FEDC__NET_SEND_DECL(sa_masked, fedc_sa_masked)
FEDC__NET_SEND_DECL(sa_unmask_ins, fedc_sa_unmask_ins)
FEDC__NET_SEND_DECL(sa_unmask, fedc_sa_unmask)
FEDC__NET_SEND_DECL(sa_graph_ins, fedc_sa_graph_ins)
FEDC__NET_SEND_DECL(sa_graph, fedc_sa_graph_msg)
FEDC__NET_SEND_DECL(sa_consist_ins, fedc_sa_consist_ins)
FEDC__NET_SEND_DECL(sa_consist, fedc_sa_consist)
FEDC__NET_SEND_DECL(sa_fit_ins, fedc_sa_fit_ins)
#undef FEDC__NET_SEND_DECL

/* A reference-counted byte buffer sent without copying: the coordinator serialises the global
 * weights once per round and every selected client's send refers to the same bytes; libzmq drops
 * its references (possibly from its I/O thread, hence the atomic count) once the bytes are out. */
typedef struct fedc_blob {
    _Atomic long refs;
    size_t len;
    uint8_t *data; /* len bytes, inside the same allocation */
} fedc_blob;

/* Allocates a blob of len bytes with one reference (the caller's). */
FEDC_MUST_CHECK fedc_err fedc_blob_new(fedc_blob **out, size_t len);
/* Drops the caller's reference; accepts NULL; sets *b = NULL. */
void fedc_blob_unref(fedc_blob **b);
/* Takes one more reference for the caller (dropped with fedc_blob_unref); returns b. */
fedc_blob *fedc_blob_ref(fedc_blob *b);

/* Sends an already encoded envelope (env, env_len bytes from fedc_msg_encode: encode once, send
 * to many) and, when raw is not NULL, the blob as a zero-copy raw frame after it (the tensor's
 * values, written with fedc_tensor_write). `what` names the message in errors. Same errors as
 * fedc_net_send_msg. */
FEDC_MUST_CHECK fedc_err fedc_net_send_packed(fedc_endpoint *e, const fedc_peer *to,
                                              const uint8_t *env, size_t env_len, fedc_blob *raw,
                                              const char *what, fedc_diag *d);

/* The same with bytes [off, off + len) of the blob as the raw frame, still without a copy: the
 * chunks of a streamed tensor are slices of the one blob every client reads from. */
FEDC_MUST_CHECK fedc_err fedc_net_send_packed_range(fedc_endpoint *e, const fedc_peer *to,
                                                    const uint8_t *env, size_t env_len,
                                                    fedc_blob *raw, size_t off, size_t len,
                                                    const char *what, fedc_diag *d);

/* A received message: its typed view and, if one came, the raw frame. */
typedef struct fedc_inbox {
    fedc_peer from; /* ROUTER side: the sender */
    fedc_msg msg;   /* the validated message; kind FEDC_MSG_NONE after a refused one */
    uint8_t *raw;   /* the raw frame's bytes or NULL (owned through raw_msg) */
    size_t raw_len;
    char user[FEDC_KEY_NAME_MAX + 1]; /* secure ROUTER: the name ZAP bound to the sender's key */
    size_t bytes;   /* bytes of the message on the wire (every frame, a ROUTER's routing id too) */
    void *raw_msg;  /* the ZeroMQ frame holding raw, kept to avoid copying a large tensor */
    void *env;      /* core/net's: the decoded envelope msg borrows from */
    void *view_mem; /* core/net's: arrays msg points at */
} fedc_inbox;

/* Waits up to timeout_ms (-1 = forever, 0 = poll) for one message, then unpacks and validates it
 * against x. Returns FEDC_OK with in->msg filled; FEDC_EEMPTY on timeout or when a signal
 * interrupted the wait; a validation error
 * (with in->from set on a ROUTER, so the caller can answer with an Error message naming d) when the
 * message was refused; FEDC_EIO on a socket error. Release with fedc_inbox_release. */
FEDC_MUST_CHECK fedc_err fedc_net_recv(fedc_endpoint *e, fedc_inbox *in, const fedc_msg_expect *x,
                                       int timeout_ms, fedc_diag *d);

void fedc_inbox_release(fedc_inbox *in);

/* Sends an Error reply {code, reason} to a peer (best effort; failures are ignored; a reason
 * longer than FEDC_REASON_MAX is cut there). */
void fedc_net_send_error(fedc_endpoint *e, const fedc_peer *to, const uint8_t *run_id,
                         uint32_t round, fedc_err code, const char *reason);
/* The same with a kind (fedc_error_kind) telling the receiver what to do. */
void fedc_net_send_error_kind(fedc_endpoint *e, const fedc_peer *to, const uint8_t *run_id,
                              uint32_t round, fedc_err code, int kind, const char *reason);
/* Sends a Bye {code (fedc_bye_code), reason} (best effort). */
void fedc_net_send_bye(fedc_endpoint *e, const fedc_peer *to, const uint8_t *run_id, uint32_t round,
                       int code, const char *reason);

#endif
