/* The wire codec: protobuf envelopes (proto/fedc.proto) in and out, with validation.
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

#define FEDC_PROTOCOL_VERSION 2u
#define FEDC_RUN_ID_BYTES 16
#define FEDC_NAME_MAX 64
#define FEDC_REASON_MAX 1024
#define FEDC_MAX_FEATURES 100000
#define FEDC_MAX_CLASSES 65536
/* A model of the clients' own: its name's length and its parameter count (4 GiB of float32). */
#define FEDC_MODEL_KIND_MAX 64
#define FEDC_MAX_PARAMS (1ull << 30)
#define FEDC_EVAL_HIST_MAX 100000

/* Reason of the Error the coordinator sends to a connection it does not know (for example after
 * it restarted): the client answers by joining again (the kind FEDC_ERROR_JOIN_AGAIN says so). */
#define FEDC_WIRE_NOT_JOINED "not joined: send a join first"

/* Why a peer says goodbye (Bye.code); receivers act on the code, the reason is for people. */
typedef enum fedc_bye_code {
    FEDC_BYE_LEAVING = 0,  /* going away for now (shutting down; a client leaving) */
    FEDC_BYE_COMPLETE = 1, /* the run is complete */
    FEDC_BYE_REFUSED = 2,  /* the receiver is refused (its data does not match, ...) */
    FEDC_BYE_FAILED = 3,   /* the run failed and will not go on */
    FEDC_BYE_MAX = FEDC_BYE_FAILED
} fedc_bye_code;

/* What an Error asks of its receiver (Error.kind), beside its fedc_err code. */
typedef enum fedc_error_kind {
    FEDC_ERROR_NOTE = 0,       /* a message was refused; nothing more to do */
    FEDC_ERROR_JOIN_AGAIN = 1, /* the sender does not know us (it restarted, another run): join */
    FEDC_ERROR_KIND_MAX = FEDC_ERROR_JOIN_AGAIN
} fedc_error_kind;

/* What the receiver expects of the next message. Zero / NULL fields are not checked. */
typedef struct fedc_msg_expect {
    const uint8_t *run_id; /* FEDC_RUN_ID_BYTES, or NULL to accept any (a first Join) */
    int64_t round;         /* the current round, or -1 to accept any */
    size_t max_bytes;      /* largest encoded message accepted (0 = 64 MiB) */
    uint64_t n_params;     /* length of weight and update tensors */
    uint32_t n_features;   /* width of statistics and standardisation vectors */
    uint32_t n_classes;    /* length of class counts */
    uint32_t hist_bins;    /* length of evaluation histograms */
    const uint8_t *raw;    /* the raw frame that followed the message, or NULL */
    size_t raw_len;        /* its length in bytes */
} fedc_msg_expect;

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

#endif
