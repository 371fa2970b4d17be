/* The wire messages as plain C structs: what the coordinator and the client build and read.
 *
 * core/net turns these into protobuf envelopes (proto/fedc.proto) and back; nothing above it names
 * a protobuf-c type, so the wire encoding can change without touching the programs. A received
 * message is a fedc_msg view filled by fedc_net_recv (transport.h): its pointers borrow from the
 * decoded envelope and the raw frame that followed it, and stay valid until fedc_inbox_release.
 * Every field has been validated against the fedc_msg_expect given (sizes, dimensions, finite
 * values) before the view is filled.
 *
 * To send, fill the body struct (zero what is not used) and call the fedc_net_send_<kind> function
 * of transport.h. Arrays are borrowed from the caller for the duration of the call. Tensors travel
 * as a raw frame after the envelope, never inside it (bench/bench_wire measured that to be the
 * cheapest encoding); the envelope then carries only their count. */
#ifndef FEDC_MSG_H
#define FEDC_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"
#include "fedc/sa_proto.h"

/* 3: tensors larger than one chunk are streamed (Chunk, ChunkReq). 4: --mode async with secure
 * aggregation (SaFitIns, SecAggIns.hold, FitRes.held). 5: SaGraphIns carries names and the
 * commitments' digest, SaShareIns its reveals packed and, in graph mode, no names or commitments
 * of the neighbours. */
#define FEDC_PROTOCOL_VERSION 6u
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
    /* a ChunkReq for values the sender no longer holds (a newer instruction replaced them): stop
     * pulling them */
    FEDC_ERROR_NO_VALUES = 2,
    FEDC_ERROR_KIND_MAX = FEDC_ERROR_NO_VALUES
} fedc_error_kind;

/* Which body a message carries. The values are the body's field numbers in proto/fedc.proto
 * (core/net checks that at compile time), so logs and captures agree. */
typedef enum fedc_msg_kind {
    FEDC_MSG_NONE = 0,
    FEDC_MSG_JOIN = 10,
    FEDC_MSG_WELCOME = 11,
    FEDC_MSG_STATS_REQUEST = 12,
    FEDC_MSG_STATS = 13,
    FEDC_MSG_FIT_INS = 14,
    FEDC_MSG_FIT_RES = 15,
    FEDC_MSG_EVALUATE_INS = 16,
    FEDC_MSG_EVALUATE_RES = 17,
    FEDC_MSG_HEARTBEAT = 18,
    FEDC_MSG_ERROR = 19,
    FEDC_MSG_BYE = 20,
    FEDC_MSG_CHUNK = 21,
    FEDC_MSG_CHUNK_REQ = 22,
    FEDC_MSG_SA_KEYS = 30,
    FEDC_MSG_SA_SHARE_INS = 31,
    FEDC_MSG_SA_SHARES = 32,
    FEDC_MSG_SA_MASK_INS = 33,
    FEDC_MSG_SA_MASKED = 34,
    FEDC_MSG_SA_UNMASK_INS = 35,
    FEDC_MSG_SA_UNMASK = 36,
    FEDC_MSG_SA_GRAPH_INS = 37,
    FEDC_MSG_SA_GRAPH = 38,
    FEDC_MSG_SA_CONSIST_INS = 39,
    FEDC_MSG_SA_CONSIST = 40,
    FEDC_MSG_SA_FIT_INS = 41
} fedc_msg_kind;

/* Name of a message kind for logs ("fit_res", ...; "none" for anything else). */
const char *fedc_msg_kind_name(fedc_msg_kind k);

/* A vector of float32 values. data points at 4 * count bytes of little-endian IEEE-754 binary32:
 * received, inside the envelope or in the raw frame after it (possibly unaligned); to send, the
 * caller's bytes, sent as they are (on a little-endian host a float array is exactly that). */
typedef struct fedc_tensor {
    uint64_t count;
    const void *data;
    /* The values are not in this message: they follow in Chunk messages the receiver pulls
     * (data NULL, no raw frame). */
    int streamed;
} fedc_tensor;

/* What a Chunk or ChunkReq belongs to (proto/fedc.proto, "streamed tensors"). */
typedef enum fedc_stream {
    FEDC_STREAM_NONE = 0,
    FEDC_STREAM_FIT = 1,    /* a FitIns's global weights (float32), counter = round */
    FEDC_STREAM_EVAL = 2,   /* an EvaluateIns's weights (float32), counter = round */
    FEDC_STREAM_UPDATE = 3, /* a FitRes's update (float32), counter = round */
    FEDC_STREAM_MASKED = 4, /* an SaMasked's values (uint32), counter = the SecAgg session */
    FEDC_STREAM_INIT = 5,   /* a Join's initial values of an own model (float32), counter = 0 */
    FEDC_STREAM_MAX = FEDC_STREAM_INIT
} fedc_stream;

/* Chunk offsets are multiples of this many values, and so is every chunk but a tensor's last:
 * one ChaCha20 block is 64 bytes = 16 uint32, so a masked chunk's keystream starts on a block. */
#define FEDC_CHUNK_ALIGN 16u

/* A tensor of at most this many bytes travels whole in its message (a raw frame after it); a
 * larger one is streamed (the receiver pulls it in chunks). Small enough that a coordinator's
 * queue of whole small updates stays small whatever the number of clients. */
#define FEDC_INLINE_MAX_BYTES ((size_t)64 << 10)

/* The heartbeat interval a coordinator asks in its Welcome of the clients that leave it to it: a
 * quarter of its --heartbeat-timeout, so that a live client's silence stays far from it, within
 * --heartbeat-ms's range of 10 ms to 10 min. A fixed second was most of a long secure round's
 * messages at 1,000 clients whatever the timeout. */
static inline uint32_t fedc_heartbeat_ask_ms(double timeout_s) {
    double ms = timeout_s * 1000.0 / 4.0;
    return ms < 10.0 ? 10u : ms > 600000.0 ? 600000u : (uint32_t)ms;
}

/* The interval a client uses: its own --heartbeat-ms (own_ms > 0) as given; else what the
 * coordinator asked (1000 if it asked nothing), but at most a quarter of the client's own
 * --coordinator-timeout: the coordinator answers an idle client's heartbeats, and those answers
 * must come before the client gives up on it. *capped is set when that bound applied. */
static inline int fedc_heartbeat_pick_ms(int own_ms, uint32_t asked_ms, double coord_timeout_s,
                                         int *capped) {
    *capped = 0;
    if (own_ms > 0)
        return own_ms;
    uint32_t ms = asked_ms ? asked_ms : 1000u;
    uint32_t cap = fedc_heartbeat_ask_ms(coord_timeout_s);
    if (ms > cap) {
        *capped = 1;
        ms = cap;
    }
    return (int)ms;
}

/* A chunk's default size, and the envelope bytes a Chunk needs besides its values (its fields
 * take under 80 bytes; the rest is headroom). */
#define FEDC_CHUNK_DEFAULT_BYTES ((size_t)4 << 20)
#define FEDC_CHUNK_MARGIN 1024u

/* Values in one chunk for a receiver whose messages are bounded by max_msg bytes (0: no bound):
 * FEDC_CHUNK_DEFAULT_BYTES / 4, less when max_msg is smaller, a multiple of FEDC_CHUNK_ALIGN and
 * at least FEDC_CHUNK_ALIGN. */
uint64_t fedc_chunk_values(size_t max_msg);

/* Name of a stream for logs ("fit", "eval", "update", "masked"; "none" otherwise). */
const char *fedc_stream_name(uint32_t stream);

/* Writes n floats little-endian into out (4 * n bytes), e.g. a fedc_blob to send. */
void fedc_tensor_write(uint8_t *out, const float *v, size_t n);
/* Copies a received tensor's t->count values into out, in host order. */
void fedc_tensor_read(float *out, const fedc_tensor *t);
/* The values in place, without a copy, when the host is little-endian and data is aligned for
 * float; NULL otherwise (then fedc_tensor_read). */
const float *fedc_tensor_floats(const fedc_tensor *t);

/* The data every participant must agree on (round 0). */
typedef struct fedc_schema {
    size_t n_features;
    char *const *feature_names; /* (n_features) in column order (only read) */
    const char *label;
    uint32_t task;        /* fedc_task: 0 binary, 1 multiclass, 2 regression */
    uint32_t n_classes;   /* 2 for binary, K for multiclass, 1 for regression */
    const char *encoding; /* the loader's encoding, canonical JSON (fedc/recipe.h); NULL or "" */
    const char *features; /* the fedc features spec (JSON); NULL or "" for none */
} fedc_schema;

/* Training settings the coordinator dictates to every client. */
typedef struct fedc_hyper {
    uint32_t local_epochs;
    uint32_t batch;
    float lr;
    float prox_mu;      /* FedProx proximal weight; 0 = plain local training */
    uint32_t optimizer; /* fedc_opt_kind */
    float l2;
    float dropout;
    float val_fraction;
    float clip_norm;    /* > 0: the client scales its update to L2 norm <= clip_norm */
    int uniform_weight; /* every client's update counts once (DP-FedAvg, robust rules) */
    int client_dp;      /* client-level DP: send no training loss (it would leave un-noised) */
    int keep_opt_state; /* the client keeps its optimiser's moments from round to round */
} fedc_hyper;

/* Secure-aggregation settings in an instruction whose answer is a secure sum. */
typedef struct fedc_secagg_ins {
    uint64_t counter;     /* session counter fedc_sa_counter(round, attempt, stage) */
    uint32_t max_clients; /* n_max of the fixed point (headroom so sums cannot wrap) */
    float clip;           /* per-coordinate clip c of updates */
    double total_rows;    /* fit: a client's FedAvg weight is its training rows / total_rows */
    int hold;             /* FitIns, --mode async: train, keep the update, answer FitRes held */
} fedc_secagg_ins;

/* --mode async: a training session for the update held since trained_round's FitIns, scaled by
 * the public staleness weight before quantisation. */
typedef struct fedc_sa_fit_ins {
    fedc_secagg_ins secagg;
    uint32_t trained_round;
    double staleness_weight; /* in (0, 1] */
} fedc_sa_fit_ins;

typedef struct fedc_join {
    const char *name; /* informative only; with CurveZMQ the identity is the ZAP user id */
    fedc_schema schema;
    uint64_t n_rows; /* unused: fedc-client sends 0 (a bank's row count is its own) */
    /* A model of the client's own: its name, parameter count and initial values (init.count ==
     * n_params). All zero / NULL for fedc's MLP. */
    const char *model_kind;
    uint64_t n_params;
    fedc_tensor init;
} fedc_join;

typedef struct fedc_welcome {
    fedc_schema schema;
    size_t n_layer_sizes;
    const uint32_t *layer_sizes; /* inputs, hidden..., outputs; none for an own model */
    uint32_t hidden_act;         /* fedc_act */
    fedc_hyper hp;
    uint32_t rounds;
    uint64_t seed;
    uint64_t max_msg_bytes; /* the largest message the coordinator accepts (0: not said) */
    const char *model_kind; /* a run of the clients' own models: its name (else NULL or "") */
    uint64_t n_params;      /* and its parameter count (0 for the MLP) */
    int init_wanted;        /* the run's initial values may yet be pulled (stream INIT) */
    uint32_t heartbeat_ms;  /* the heartbeat interval asked of clients that follow it (0: none) */
} fedc_welcome;

typedef struct fedc_stats_request {
    int has_secagg; /* answer with a secure sum (secagg) instead of Stats */
    fedc_secagg_ins secagg;
} fedc_stats_request;

typedef struct fedc_stats {
    uint64_t n_rows;
    size_t n_sum;
    const double *sum; /* (n_sum) per feature */
    size_t n_sum_sq;
    const double *sum_sq; /* (n_sum_sq) per feature */
    size_t n_class_count;
    const uint64_t *class_count; /* per class (classification) */
    size_t n_present;
    const double *present; /* (n_present) per feature with --missing mean, else none */
} fedc_stats;

typedef struct fedc_fit_ins {
    fedc_tensor weights; /* the global model */
    fedc_hyper hp;
    size_t n_mean;
    const float *mean; /* agreed standardisation */
    size_t n_std;
    const float *std;
    float pos_weight;
    int has_secagg;
    fedc_secagg_ins secagg;
    float update_norm_bound; /* > 0: clip the update to this L2 norm */
} fedc_fit_ins;

typedef struct fedc_fit_res {
    fedc_tensor update; /* w_local - w_global */
    uint64_t n_examples;
    double train_loss;
    double seconds;
    int unclipped; /* with clip_norm: the update's norm was within it */
    int held;      /* trained for a later secure session: no update, rows or loss here */
} fedc_fit_res;

typedef struct fedc_evaluate_ins {
    fedc_tensor weights;
    float threshold;
    size_t n_mean;
    const float *mean;
    size_t n_std;
    const float *std;
    int has_secagg;
    fedc_secagg_ins secagg;
} fedc_evaluate_ins;

/* Counts and score histograms (binary), the confusion matrix (multiclass), sums (regression). */
typedef struct fedc_evaluate_res {
    uint64_t n;
    size_t n_hist_pos;
    const uint64_t *hist_pos;
    size_t n_hist_neg;
    const uint64_t *hist_neg;
    uint64_t tp, fp, tn, fn;
    double log_loss_sum;
    size_t n_confusion;
    const uint64_t *confusion; /* K x K, row = true class */
    double sse, sum_y, sum_y2;
} fedc_evaluate_res;

typedef struct fedc_heartbeat {
    uint64_t seq;
} fedc_heartbeat;

/* Receivers act on code, kind and the secure-aggregation fields; reason is for people. */
typedef struct fedc_error {
    fedc_err code;
    const char *reason; /* one sentence naming the problem */
    uint32_t sa_refusal;
    size_t n_sa_blame;
    const uint32_t *sa_blame; /* session ids of the neighbours blamed */
    uint64_t sa_counter;      /* the session it refers to */
    fedc_error_kind kind;
} fedc_error;

typedef struct fedc_bye {
    fedc_bye_code code;
    const char *reason; /* for people */
} fedc_bye;

/* A slice of a streamed tensor: count values from offset, in the raw frame (values: 4 * count
 * bytes, little-endian float32, or uint32 for FEDC_STREAM_MASKED). To send, count and values are
 * the caller's; received, count is the raw frame's length / 4. */
typedef struct fedc_chunk {
    uint32_t stream; /* fedc_stream */
    uint64_t counter;
    uint64_t offset;
    uint64_t total; /* the tensor's length in values */
    uint64_t count;
    const void *values;
} fedc_chunk;

/* The receiver of a streamed tensor asks for count values from offset. */
typedef struct fedc_chunk_req {
    uint32_t stream; /* fedc_stream */
    uint64_t counter;
    uint64_t offset;
    uint64_t count;
} fedc_chunk_req;

/* ---- secure aggregation (core/fl/sa_proto.h has the steps and the types reused here) ---- */

typedef struct fedc_sa_keys {
    uint64_t counter;
    fedc_sa_adv adv; /* round keys, commitment and signature */
} fedc_sa_keys;

typedef struct fedc_sa_graph_ins {
    uint64_t counter;
    uint32_t id; /* the receiver's own index */
    uint32_t h;  /* links on each side of the ring */
    size_t n_members;
    const char *const *names;      /* every participant's name, ids 0..n-1 in order */
    const uint8_t *commits_digest; /* 32 bytes: fedc_sa_commits_digest of their commitments */
} fedc_sa_graph_ins;

/* (fedc_sa_graph is the graph itself, in sa_proto.h.) */
typedef struct fedc_sa_graph_msg {
    uint64_t counter;
    const uint8_t *r; /* 32 bytes: the randomness committed to */
} fedc_sa_graph_msg;

typedef struct fedc_sa_share_ins {
    uint64_t counter;
    uint32_t id;        /* the receiver's own index */
    uint32_t threshold; /* t of the Shamir sharing */
    size_t n_peers;
    /* the receiver's neighbourhood, ascending ids, itself included; in graph mode (reveals) the
     * names are NULL and the commitments zero on the wire's side: the receiver has both */
    const fedc_sa_peer *peers;
    uint32_t n; /* participants (U1) */
    uint32_t h; /* links on each side */
    size_t n_reveals;
    const uint8_t *reveals; /* graph mode: (n_reveals x 32) every participant's r; else none */
} fedc_sa_share_ins;

/* sa_shares (client) and sa_mask_ins (coordinator): sealed boxes. */
typedef struct fedc_sa_boxes {
    uint64_t counter;
    size_t n_shares;
    const fedc_sa_sealed *shares;
} fedc_sa_boxes;

typedef struct fedc_sa_masked {
    uint64_t counter;
    uint64_t count;
    const void *values; /* 4 * count bytes: little-endian uint32, the raw frame */
    int streamed;       /* no raw frame: the coordinator pulls the values (FEDC_STREAM_MASKED) */
} fedc_sa_masked;

typedef struct fedc_sa_consist_ins {
    uint64_t counter;
    size_t n_survivors;
    const uint32_t *survivors; /* U3, ascending */
} fedc_sa_consist_ins;

typedef struct fedc_sa_consist {
    uint64_t counter;
    const uint8_t *sig; /* FEDC_SA_SIG_BYTES */
} fedc_sa_consist;

typedef struct fedc_sa_unmask_ins {
    uint64_t counter;
    size_t n_sigs;
    const fedc_sa_sig *sigs; /* consistency signatures around the receiver's neighbours */
} fedc_sa_unmask_ins;

typedef struct fedc_sa_unmask {
    uint64_t counter;
    size_t n_shares;
    const fedc_sa_reveal *shares;
} fedc_sa_unmask;

/* One message: the envelope's header and its body (the member named by kind). */
typedef struct fedc_msg {
    fedc_msg_kind kind;
    uint32_t round;        /* 0 = set-up; 1.. = training rounds */
    const uint8_t *run_id; /* FEDC_RUN_ID_BYTES, or NULL when absent (a first Join) */
    union {
        fedc_join join;
        fedc_welcome welcome;
        fedc_stats_request stats_request;
        fedc_stats stats;
        fedc_fit_ins fit_ins;
        fedc_fit_res fit_res;
        fedc_evaluate_ins evaluate_ins;
        fedc_evaluate_res evaluate_res;
        fedc_heartbeat heartbeat;
        fedc_error error;
        fedc_bye bye;
        fedc_chunk chunk;
        fedc_chunk_req chunk_req;
        fedc_sa_keys sa_keys;
        fedc_sa_share_ins sa_share_ins;
        fedc_sa_boxes sa_shares;
        fedc_sa_boxes sa_mask_ins;
        fedc_sa_masked sa_masked;
        fedc_sa_fit_ins sa_fit_ins;
        fedc_sa_unmask_ins sa_unmask_ins;
        fedc_sa_unmask sa_unmask;
        fedc_sa_graph_ins sa_graph_ins;
        fedc_sa_graph_msg sa_graph;
        fedc_sa_consist_ins sa_consist_ins;
        fedc_sa_consist sa_consist;
    };
} fedc_msg;

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
    uint64_t chunk_values; /* most values one Chunk or ChunkReq may name (0: not checked) */
    /* Nonzero: an update Chunk's values (FEDC_STREAM_UPDATE, and FEDC_STREAM_INIT's initial
     * values) are not checked finite here, because the receiver checks every value in the pass
     * that uses them (the coordinator's fixed-point addition refuses a value that is not finite;
     * the initial values are checked as they are copied), so the bytes are read once. */
    int update_finite_here;
} fedc_msg_expect;

/* Encodes m's envelope into a new buffer (*buf caller-owned, free()); the tensor or masked values
 * are not in it: they go as the raw frame fedc_msg_raw names. FEDC_EINVAL (with the reason) for a
 * kind that cannot be sent, FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_msg_encode(uint8_t **buf, size_t *len, const fedc_msg *m,
                                         fedc_diag *d);

/* The raw frame that follows m's envelope (a tensor or the masked values): its bytes and length,
 * or NULL and 0 for a message without one. */
const void *fedc_msg_raw(const fedc_msg *m, size_t *len);

/* Bytes m takes on the wire: its envelope and its raw frame (for size checks before sending). */
size_t fedc_msg_wire_size(const fedc_msg *m);

#endif
