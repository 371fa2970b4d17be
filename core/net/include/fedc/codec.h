/* The wire codec: protobuf envelopes (proto/fedc.proto) in and out, with validation.
 *
 * Only core/net and tests that forge messages (as an attacker would) include this header: the
 * programs build and read the plain structs of msg.h, which core/net converts (msg.c), so no code
 * above core/net depends on protobuf-c. Not installed.
 *
 * Nothing a peer sends is used before fedc_msg_unpack has checked it: the protocol version, the
 * run id and round the receiver expects, the body's sizes and dimensions against the agreed model
 * and schema, and that every float is finite. A failure comes back as an error code plus one
 * sentence naming the problem, which the receiver can send back in an Error message. A large
 * tensor may travel as a raw frame right after its envelope (the Tensor then carries only its
 * count; bench/bench_wire measured this to be the cheapest encoding); the receiver passes that
 * frame in fedc_msg_expect so it is checked like inline data. Sockets live in transport.h. */
#ifndef FEDC_CODEC_H
#define FEDC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "fedc.pb-c.h"
#include "fedc/err.h"
#include "fedc/msg.h"
#include "fedc/transport.h"

/* Serialises e into a new buffer (*buf caller-owned, free()). */
FEDC_MUST_CHECK fedc_err fedc_msg_pack(uint8_t **buf, size_t *len, const Fedc__Envelope *e);

/* Parses and validates len bytes from a peer. On success *out is caller-owned (fedc_msg_free);
 * on failure *out is NULL and d names the problem: FEDC_EFORMAT (not a fedc message, wrong
 * version, malformed protobuf, oversize), FEDC_EMISMATCH (run id, round or a dimension differs
 * from what is expected), FEDC_ERANGE (a non-finite or out-of-range value). */
FEDC_MUST_CHECK fedc_err fedc_msg_unpack(Fedc__Envelope **out, const uint8_t *buf, size_t len,
                                         const fedc_msg_expect *x, fedc_diag *d);

/* Checks an already decoded envelope against x (what fedc_msg_unpack does after parsing). */
FEDC_MUST_CHECK fedc_err fedc_msg_validate(const Fedc__Envelope *e, const fedc_msg_expect *x,
                                           fedc_diag *d);

/* Frees a decoded envelope; accepts NULL; sets *e = NULL. */
void fedc_msg_free(Fedc__Envelope **e);

/* Name of a body case for messages ("fit_res", ...). */
const char *fedc_msg_body_name(Fedc__Envelope__BodyCase c);

/* Points t at n floats stored little-endian in storage (4 * n bytes, caller-owned, alive while t
 * is used). */
void fedc_tensor_pack(Fedc__Tensor *t, uint8_t *storage, const float *v, size_t n);

/* Copies a validated tensor's values into out (t->count floats): from the message, or from raw
 * (the frame that followed it) when the message carries only the count. */
void fedc_tensor_unpack(float *out, const Fedc__Tensor *t, const uint8_t *raw);

/* The tensor a message body carries (weights or update), or NULL for bodies without one. */
const Fedc__Tensor *fedc_msg_tensor(const Fedc__Envelope *e);

/* The typed view of a validated envelope e (and the raw frame that followed it): what
 * fedc_net_recv hands the programs. Pointers in *out borrow from e and raw; arrays of secure-
 * aggregation records are converted into *mem (caller-owned, free(); NULL when none was needed).
 * FEDC_ENOMEM, or FEDC_EFORMAT for a body msg.h has no struct for. */
FEDC_MUST_CHECK fedc_err fedc_msg_view(fedc_msg *out, void **mem, const Fedc__Envelope *e,
                                       const uint8_t *raw, size_t raw_len, fedc_diag *d);

/* The protobuf envelope a typed message m is sent as (what fedc_msg_encode serialises), in an
 * object that owns every part it needed (arrays of secure-aggregation records, a truncated copy of
 * an Error's or a Bye's reason): tests compare it with hand-built envelopes. Free it after the
 * envelope's last use. FEDC_EINVAL (with the reason) for a kind that cannot be sent. */
typedef struct fedc_msg_wire fedc_msg_wire;
FEDC_MUST_CHECK fedc_err fedc_msg_to_wire(fedc_msg_wire **out, const fedc_msg *m, fedc_diag *d);
const Fedc__Envelope *fedc_msg_wire_envelope(const fedc_msg_wire *w);
void fedc_msg_wire_free(fedc_msg_wire **w);

/* Sends a hand-built envelope m (to peer `to` on a ROUTER; ignored on a DEALER) and, when raw is
 * not NULL, raw_len bytes as a raw frame after it. Tests forge messages with it; the programs use
 * the typed sends of transport.h. Same errors as fedc_net_send_msg. */
FEDC_MUST_CHECK fedc_err fedc_net_send(fedc_endpoint *e, const fedc_peer *to,
                                       const Fedc__Envelope *m, const void *raw, size_t raw_len,
                                       fedc_diag *d);

/* The decoded envelope behind a received message (NULL after a refused one), for tests that
 * inspect the wire form. */
const Fedc__Envelope *fedc_inbox_envelope(const fedc_inbox *in);

#endif
