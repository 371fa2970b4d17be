/* ZeroMQ transport: the coordinator's ROUTER (bind) and the client's DEALER (connect), carrying one
 * validated envelope per message plus, for large tensors, one raw frame after it.
 *
 * Frames: ROUTER side [peer identity][envelope][raw tensor]?; DEALER side [envelope][raw]?.
 * The ROUTER sets ZMQ_ROUTER_MANDATORY so that a send to a vanished peer fails loudly instead of
 * being dropped, and ZMQ_MAXMSGSIZE so that no peer can make it allocate more than the agreed
 * bound. Send high-water marks bound memory per slow peer. Liveness (heartbeats, deadlines) is the
 * caller's job: ZeroMQ's own heartbeats only drop connections silently. CurveZMQ and ZAP come with
 * the encryption issue. A fedc_endpoint belongs to one thread. */
#ifndef FEDC_TRANSPORT_H
#define FEDC_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/codec.h"
#include "fedc/err.h"

#define FEDC_PEER_ID_MAX 255

/* A ROUTER's view of who sent a message (the ZeroMQ routing id). */
typedef struct fedc_peer {
    uint8_t id[FEDC_PEER_ID_MAX];
    size_t len;
} fedc_peer;

typedef struct fedc_endpoint fedc_endpoint;

/* Binds a ROUTER on addr (e.g. "tcp://127.0.0.1:7070" or "tcp://127.0.0.1:*"). max_msg bounds
 * one incoming message in bytes (ZMQ_MAXMSGSIZE). zctx is the process's ZeroMQ context
 * (borrowed). */
FEDC_MUST_CHECK fedc_err fedc_net_bind(fedc_endpoint **out, void *zctx, const char *addr,
                                       size_t max_msg, fedc_diag *d);

/* Connects a DEALER to addr; ZeroMQ reconnects by itself when the peer restarts. */
FEDC_MUST_CHECK fedc_err fedc_net_connect(fedc_endpoint **out, void *zctx, const char *addr,
                                          size_t max_msg, fedc_diag *d);

/* Closes the socket (linger 0: unsent messages are dropped); accepts NULL; sets *e = NULL. */
void fedc_net_close(fedc_endpoint **e);

/* The address actually bound (resolves a "*" port), for tests and logs. */
const char *fedc_net_endpoint(const fedc_endpoint *e);

/* The ZeroMQ socket, for zmq_poll in the caller's event loop. */
void *fedc_net_socket(fedc_endpoint *e);

/* Sends m (to peer `to` on a ROUTER; `to` is ignored on a DEALER). When raw is not NULL, raw_len
 * bytes follow as a raw frame (the message's tensor then carries only its count). Errors:
 * FEDC_EIO with the reason, e.g. an unknown or vanished peer on a ROUTER. Never blocks: a full
 * send queue is an error (FEDC_EIO, "send queue full"). */
FEDC_MUST_CHECK fedc_err fedc_net_send(fedc_endpoint *e, const fedc_peer *to,
                                       const Fedc__Envelope *m, const void *raw, size_t raw_len,
                                       fedc_diag *d);

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

/* Sends an already encoded envelope (env, env_len bytes: encode once, send to many) and, when raw
 * is not NULL, the blob as a zero-copy raw frame after it. `what` names the message in errors.
 * Same errors as fedc_net_send. */
FEDC_MUST_CHECK fedc_err fedc_net_send_packed(fedc_endpoint *e, const fedc_peer *to,
                                              const uint8_t *env, size_t env_len, fedc_blob *raw,
                                              const char *what, fedc_diag *d);

/* A received message: the validated envelope and, if one came, the raw frame. */
typedef struct fedc_inbox {
    fedc_peer from;      /* ROUTER side: the sender */
    Fedc__Envelope *msg; /* owned; NULL after a refused message */
    uint8_t *raw;        /* the raw frame's bytes or NULL (owned through raw_msg) */
    size_t raw_len;
    size_t bytes;  /* bytes of the message on the wire (every frame, a ROUTER's routing id too) */
    void *raw_msg; /* the ZeroMQ frame holding raw, kept to avoid copying a large tensor */
} fedc_inbox;

/* Waits up to timeout_ms (-1 = forever, 0 = poll) for one message, then unpacks and validates it
 * against x. Returns FEDC_OK with in->msg set; FEDC_EEMPTY on timeout; a validation error
 * (with in->from set on a ROUTER, so the caller can answer with an Error message naming d) when the
 * message was refused; FEDC_EIO on a socket error. Release with fedc_inbox_release. */
FEDC_MUST_CHECK fedc_err fedc_net_recv(fedc_endpoint *e, fedc_inbox *in, const fedc_msg_expect *x,
                                       int timeout_ms, fedc_diag *d);

void fedc_inbox_release(fedc_inbox *in);

/* Sends an Error reply {code, reason} to a peer (best effort; failures are ignored). */
void fedc_net_send_error(fedc_endpoint *e, const fedc_peer *to, const uint8_t *run_id,
                         uint32_t round, fedc_err code, const char *reason);

#endif
