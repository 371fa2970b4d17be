/* The coordinator's internals, shared by its files. Not an interface: coord.h is.
 *   coord.c      the object (new, run, stop, destroy, defaults) and the event loop
 *   log.c        log lines, rate-limited per peer
 *   registry.c   client slots, liveness, joins (schema, model, --max-msg-mb), sending
 *   round0.c     the statistics of round 0
 *   rounds.c     selection, training, evaluation, the end of a round
 *   metrics.c    the round's metrics line and the metrics file
 *   resume.c     the checkpoint of each round and --resume
 *   secure.c     the coordinator's side of a secure sum
 *   aggregate.c  the aggregation rules, bounds checks and client-level DP
 *   http.c       --metrics-listen: Prometheus metrics, probes, the status page
 *   stream.c     streamed tensors: weights served in chunks, uploads pulled and added per chunk */
#ifndef FEDC_COORD_INT_H
#define FEDC_COORD_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "fedc/coord.h"
#include "fedc/clock.h"
#include "fedc/dp.h"
#include "fedc/msg.h"
#include "fedc/sa_proto.h"
#include "fedc/strategy.h"
#include "fedc/transport.h"
#include "edge.h"

#define PROG "fedc-coordinator"
#define MAX_CLIENTS 4096
#define PEER_IX_SLOTS (4 * MAX_CLIENTS) /* a power of two */
/* The event loop sleeps until the next message or the nearest thing due (a deadline, a heartbeat
 * timeout, the end of a log window), but never longer than this: a cap, not a tick. */
#define MAX_SLEEP_S 1.0
/* (peer, kind of line) pairs the log limiter tracks (log.c). */
#define PEER_LOG_MAX 64
/* Connections of revoked clients remembered (reload.c). */
#define REVOKED_MAX 64

struct client;
struct fedc_json;

/* One secure sum in progress (core/fl/sa_proto.h has the steps). */
typedef struct sa_session {
    int active;
    int stage; /* FEDC_SA_STAGE_* */
    int step;  /* SA_KEYS .. SA_UNMASK */
    uint64_t counter;
    size_t len; /* values in the summed vector */
    fedc_sa_quant q;
    fedc_sa_server srv; /* from step 1 */
    int have_srv;
    struct client **member; /* (n) by session id */
    int n;
    double deadline;        /* of the current step */
    double end;             /* of the whole session (the round's deadline) */
    int unmask_sent;        /* shares may have been revealed: this (round, stage) is spent */
    int refused_unmasked;   /* members that refused because they unmasked this stage already */
    uint64_t counter_ahead; /* the highest counter a member reported as its last */
    uint8_t view[32];       /* the view digest the consistency signatures cover */
    int split_victim;       /* test only (sa-split): the member told another survivor set */
} sa_session;

/* Steps of a secure session (core/fl/sa_proto.h). */
enum { SA_KEYS, SA_GRAPH, SA_SHARES, SA_MASKED, SA_CONSIST, SA_UNMASK };

typedef enum phase { PH_WAIT, PH_STATS, PH_FIT, PH_EVAL, PH_DONE } phase;

typedef struct client {
    char name[FEDC_NAME_MAX + 1];
    fedc_peer peer;
    int alive;
    double last_seen;
    double last_sent; /* when we last sent it a message (count_sent; heartbeat answers) */
    int gone;         /* said Bye */
    /* its key left the allow-list in a reload (reload.c): refused when the round ends */
    int revoked;
    /* joined with a key that only a reloaded list not yet in force admits (reload.c): in no
     * session until that list applies at the round boundary */
    int await_list;
    /* round 0 */
    int stats_req, stats_done;
    uint64_t st_rows;
    double *st_sum, *st_sq;
    double *st_present; /* --missing mean: per feature, the cells its sums are over */
    uint64_t *st_cc;
    /* current round */
    int fit_sel, fit_done;
    int eval_sel, eval_done;
    double fit_seconds;
    /* secure aggregation: this stage's session */
    int sa_in;            /* got the session's instruction */
    int sa_adv_ok;        /* advertised its round keys */
    fedc_sa_adv sa_adv;   /* those keys */
    int sa_id;            /* index in the session once it is numbered, else -1 */
    int sa_answered;      /* answered the current step (or said it cannot) */
    int sa_quit;          /* said it cannot take part in this session (Error) */
    int fit_counted;      /* its update is in this round's aggregate */
    int excluded;         /* sent round keys that do not verify: left out until it joins again */
    int strikes;          /* deadlines missed in a row (reset by a completed exchange) */
    uint32_t bench_until; /* not selected before this round (exponential back-off) */
    int round0;           /* its rows are in round 0's total (it took part in the statistics) */
    /* robust rules: its update of this round (secure aggregation off) */
    float *upd;
    int upd_have;
    uint64_t upd_examples; /* the example count it sent with the update */
    int took_part;         /* an answer of it counted once: its slot is never reused (registry.c) */
    int init_offer;        /* its Join announced its model's initial values streamed (stream.c) */
    /* --mode async (async.c): fit_sel means a FitIns is out; these say which and since when, and
     * hold an update that arrived while the last server step was being evaluated */
    uint32_t as_round; /* the round number its FitIns carried: trained on model version round-1 */
    double as_sent;
    float *as_held;
    int as_have;
    uint64_t as_examples;
    double as_loss;
    int as_unclipped;
    /* a streamed update (coordinator memory stays bounded: it is never held whole here): as_have
     * with as_remote means the values wait at the client for the next buffer; as_pull that they
     * are being pulled into the current one (stream.c) with staleness as_tau, and as_pull_counted
     * keeps fit_counted from before the pull (an earlier update of the client in this buffer) */
    int as_remote, as_pull, as_pull_counted;
    double as_seconds;
    /* the weights its FitIns's chunks are served from when the model is pulled in chunks (a
     * reference: a newer version may replace the coordinator's own meanwhile) */
    fedc_blob *as_blob;
    /* a model pulled in chunks: values of the last training or evaluation request sent to it
     * not yet served (a client pulls one instruction's weights at a time, so the next request
     * waits for them: as_eval_due, an evaluation request still to send) */
    uint64_t as_dl_left;
    int as_eval_due;
    /* a streamed upload being pulled (stream.c): its update or masked input */
    uint32_t up_stream; /* FEDC_STREAM_UPDATE, _MASKED or _INIT while pulling, else 0 */
    uint32_t up_round;
    uint64_t up_counter;
    uint64_t up_total, up_next, up_recv; /* values: length, next asked for, received */
    int up_inflight;                     /* its chunk requests outstanding */
    int up_removing;                     /* plain: asking again to take a refused update out */
    uint64_t up_weight, up_examples;
    double up_loss, up_seconds, up_norm2;
    int up_unclipped;
    struct stream_state *up_hash; /* plain without kept updates: the first pass's hash */
    /* --mode async with secure aggregation (async_sa.c): the client holds its trained update
     * (as_ready, since as_ready_seq) or is in the session over it (as_in_sa, staleness as_tau) */
    int as_ready, as_in_sa;
    uint64_t as_ready_seq;
    uint32_t as_tau;
} client;

/* Rate limit of one kind of log line about one peer (log.c, logp). */
typedef struct peer_log {
    fedc_peer peer;   /* the connection (ZeroMQ routing id); len 0 = entry unused */
    const char *kind; /* the line's format: one entry per kind of line and peer */
    double since;     /* start of the current window */
    long suppressed;  /* lines held back in it */
    char who[96];     /* how the lines name the peer */
    char last[256];   /* the latest line held back */
} peer_log;

typedef struct coord {
    const coord_cfg *cfg;
    atomic_int *stop;   /* the owner's stop flag (fedc_coord_stop) */
    atomic_int *reload; /* the owner's reload flag (fedc_coord_reload) */
    void *zctx;
    fedc_endpoint *ep;
    uint8_t run_id[FEDC_RUN_ID_BYTES];
    client *cl;
    int n_cl;
    /* find_peer's index: open addressing over PEER_IX_SLOTS slots holding client index + 1 (0
     * empty). Only a hint: every hit is checked against the table, a miss scans it. */
    int32_t *peer_ix;
    int peer_ix_used;
    /* schema and model */
    int have_schema;
    fedc_model *model; /* the MLP, or a flat vector of the clients' own model */
    char model_kind[FEDC_MODEL_KIND_MAX + 1]; /* the clients' own model's name ("" unknown) */
    /* --model external: the initial values are being pulled from a client (stream INIT); no
     * round starts until they are complete */
    int init_wait;
    size_t n_params;
    int n_features;
    int n_classes;
    fedc_task task;
    /* round 0 */
    int have_stats;
    float pos_weight;
    /* rounds */
    phase ph;
    uint32_t round; /* the round in progress (or next) */
    int retries;
    double deadline;
    double round_t0;
    double wait_since, wait_logged;
    double live_due; /* no live client's heartbeat timeout ends before this (check_liveness) */
    fedc_accum *acc;
    fedc_server *srv; /* the built-in strategy's optimiser (checkpointed), NULL for another */
    const fedc_strategy *strat; /* cfg->strategy, or own_strat built from the flags */
    fedc_strategy own_strat;
    fedc_eval_acc *eval, *eval_tmp;
    float *upd;
    fedc_blob *wblob;
    /* a blob that already holds the current model's weights (async.c: the evaluation request's,
     * for the training request of the same version): encode_weights_msg takes it instead of
     * serialising the model into a new one */
    fedc_blob *w_reuse;
    int w_streamed;  /* the weights in co->env are pulled in chunks (no raw frame) */
    int st_inflight; /* chunk requests outstanding across all clients (stream.c) */
    int st_uploads;  /* at least the number of clients with an upload (up_stream set): what
                        lets stream_check skip the table when nothing is being pulled */
    int st_rr;       /* where the next pull starts in the table (round robin) */
    int st_spoilt;   /* a streamed contribution was added in part and then lost */
    uint8_t *env;
    size_t env_len;
    uint64_t bytes_in, bytes_out; /* this round's */
    /* This round's bytes by message kind (index fedc_msg_kind, 0..63) and by part of the round:
     * [0] everything but the evaluation (the training, its secure session, heartbeats), [1] the
     * evaluation (instructions, answers, chunks and secure session sent or received while it
     * runs); [.][0] received, [.][1] sent. bench_scale reads them from the metrics line. */
    uint64_t bytes_kind[2][2][64];
    /* The same round's messages, counted the same way (one per count_bytes call): what a
     * round's per-message cost scales with (bench_scale's message baseline replays them). */
    uint64_t msgs_kind[2][2][64];
    uint64_t bytes_in_done, bytes_out_done; /* the earlier rounds' of this process (http.c) */
    int selected, answered, eval_sent, eval_answered;
    double max_fit_seconds;
    double fit_done_at;
    char ckpt_path[4096];
    int metrics_fd;
    /* after --resume: the clients the checkpoint saw, awaited for one heartbeat timeout */
    char **expect;
    int n_expect;
    double resumed_at;
    /* CurveZMQ */
    int secure;
    fedc_identity self;
    fedc_identity *allow;
    int n_allow;
    /* a reloaded allow-list, applied at the next round boundary (reload.c) */
    fedc_identity *allow_next;
    int n_allow_next;
    /* connections of clients refused after their key left the list: refused again if they
     * try to join (a ring of the latest) */
    fedc_peer revoked_peer[REVOKED_MAX];
    int n_revoked;
    /* secure aggregation */
    double total_rows;   /* training rows summed in round 0: FedAvg weights are rows / this */
    double sa_loss;      /* the round's weighted mean training loss, from the secure sum */
    double sa_unclipped; /* and its count of unclipped updates (adaptive clipping) */
    sa_session sa;
    uint32_t sa_attempt_skip; /* added to the attempt so the session counter goes forward */
    int sa_wrap;              /* test only: the next session reuses the previous counter */
    int excluded_total;       /* members excluded for bad round keys or a roster mismatch */
    int bench_relaxed;        /* this round selects benched members too (too few others) */
    /* aggregation and differential privacy (aggregate.c) */
    float dp_clip_now;        /* the clip norm clients apply this round */
    float dp_clip_used;       /* the one the last finished round used */
    double dp_z_update;       /* noise multiplier on the update (less than z when adaptive) */
    double dp_frac_unclipped; /* last round's noised share of updates within the clip norm */
    int dp_unclipped;         /* plain: updates within the clip norm this round */
    int dp_rounds;            /* noised aggregates released by this process */
    double dp_q;              /* the sampling rate (--fraction-fit) */
    double dp_expected;       /* q x the live clients of this round: DP-FedAvg's denominator */
    int dp_extra;             /* rounds charged beyond those finished (one per resume) */
    int budget_stop;          /* stopped because the next round would exceed --target-epsilon */
    fedc_dp_noise noise;
    double dp_scale;   /* grid of the noise: the secure-aggregation quantiser's scale s */
    int64_t *dp_int;   /* (n_params) the round's sum on the noise grid, then noised */
    int dp_sampled;    /* clients in this round's Poisson sample */
    int dp_noise_only; /* this round releases noise alone (sample too small, or no aggregate) */
    /* the round's bound checks (aggregate.c), reported in the metrics line */
    double chk_norm;       /* L2 norm of the mean update (NaN: not checked, or not reported) */
    double chk_bound;      /* the limit it was checked against */
    int chk_weights;       /* 1: weights and example counts add up; 0: they do not; -1: unchecked */
    double plain_examples; /* plain path: the example counts of the updates added this round */
    /* best-model selection (best.c): the round with the best validation metric so far */
    int sel_metric;     /* a sel_kind of best.c */
    int best_round;     /* 0: none yet */
    double best_val;    /* its metric value */
    int best_warned;    /* the metric was replaced for this task (logged once) */
    char *last_line;    /* the last finished round's metrics line (owned), for the final card */
    float *best_params; /* with --patience: the best round's parameters (n_params), or NULL */
    char *best_line;    /* and its metrics line (owned) */
    int early_stop;     /* --patience ran out: the run ends after this round */
    int val_warned;     /* the validation data's few positives were logged */
    int exit_code;      /* set (with ph = PH_DONE) when the run cannot go on: the process's code */
    struct coord_obs *obs; /* --metrics-listen's snapshot and listener (http.c), or NULL */
    /* --mode async (async.c): the model version (server steps applied), the FitIns of that
     * version encoded once, and this step's staleness figures */
    int as_live;
    int as_open; /* a buffer is filling: async_start only feeds (async.c) */
    uint32_t as_version;
    uint32_t as_enc_version; /* the version as_env encodes (as_env NULL: none) */
    uint8_t *as_env;
    size_t as_env_len;
    fedc_blob *as_wblob;
    /* co->wblob is the evaluation request of version as_eval_version (as_eval_have) */
    int as_eval_have;
    uint32_t as_eval_version;
    float *as_chunk; /* one chunk of a streamed update scaled by its staleness weight */
    double as_tau_sum;
    uint32_t as_tau_max;
    int as_stale;      /* updates refused as too stale during this step */
    uint64_t as_seq;   /* secure: the order in which held updates were announced */
    peer_log *plog;    /* (PEER_LOG_MAX) */
    double plog_flush; /* when the suppressed lines were last summarised */
    /* an edge aggregator (--upstream, edge.h): the link to the upstream side, or NULL */
    edge_link *edge;
    int edge_over;           /* the upstream's run ended: ours is complete */
    uint32_t edge_fit_round; /* the upstream round trained last */
    uint32_t edge_skip;      /* session attempts skipped for the upstream's retries of it */
} coord;

/* log.c */
/* Log lines (fedc/log.h) at info, warning, error and debug level, in the format and at the level
 * of the coordinator that log_bind made current on this thread (fedc_coord_run does). */
void logm(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void logw(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void loge(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void logd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_bind(const coord_cfg *cfg);
/* A log line about one peer, rate-limited per (peer, format): the first is printed, then one
 * summary of the suppressed ones every few seconds. */
void logp(coord *co, const fedc_peer *p, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Ends the log windows that are over (event loop); plog_flush summarises what is held back (end
 * of the run); plog_next_due: the earliest window end before due, else due. */
void plog_tick(coord *co);
void plog_flush(coord *co);
double plog_next_due(const coord *co, double due);

/* coord.c: the object and the event loop */
/* The owner asked the run to stop (fedc_coord_stop, a signal). */
int coord_stopping(const coord *co);
/* A message from client c was refused: stop waiting for its answer in the current phase. */
void refused_answer(coord *co, client *c);
/* Milliseconds to wait from t until due (0 when past), rounded up so that deadlines have passed
 * on waking. */
long poll_ms(double due, double t);
/* Binds the endpoint (CurveZMQ with the allow-list, or plain TCP with --insecure); -1 with d. */
int open_endpoint(coord *co, fedc_diag *d);

/* reload.c: the allow-list read again without a restart (fedc_coord_reload) */
/* Reads --allow again: on success the ZAP list is swapped now and the new list waits for the
 * next round boundary in allow_next, the clients whose key left marked revoked; on failure
 * nothing changes. Logged either way. */
void allow_reload(coord *co);
/* At a round boundary (advance, PH_WAIT): the reloaded list replaces co->allow and the revoked
 * clients are told Bye (refused) and forgotten. No-op without a pending list. */
void allow_apply(coord *co);
/* 1 when a Join comes from the connection of a client refused after a reload. */
int allow_revoked_peer(const coord *co, const fedc_peer *p);
/* 1 when a reloaded list waits and name's key in it is not the one in force: a connection made
 * now was admitted with that new key, which the list in force cannot check (on_join). */
int allow_pending_key(const coord *co, const char *name);

/* registry.c: client slots, joins, sending */
/* A message of this run (kind, run id, round); the body is the caller's to fill. */
void env_init(coord *co, fedc_msg *m, fedc_msg_kind kind, uint32_t round);
const char *peer_name(const client *c);
int send_to(coord *co, client *c, const fedc_msg *m);
/* Counts one message of kind k and n bytes received (out 0) or sent (out 1) in this round: called
 * exactly once per message. */
void count_bytes(coord *co, int out, fedc_msg_kind k, size_t n);
/* A message of kind k and n bytes went to c: counted as sent, and c->last_sent set (heartbeat
 * answers, coord.c). Every send to a client ends here. */
void count_sent(coord *co, client *c, fedc_msg_kind k, size_t n);
/* Starts a round's byte and message counts (the finished round's bytes go into the process's
 * totals). */
void count_bytes_reset(coord *co);
/* Sends the instruction encoded once in co->env and co->wblob (rounds.c); what names it in the
 * log. */
int send_packed(coord *co, client *c, const char *what);
void send_bye(coord *co, client *c, int code, const char *reason);
void reply_error(coord *co, const fedc_peer *to, uint32_t round, fedc_err code, const char *reason);
/* --max-msg-mb against the model: the evaluation answer's size, whether the cap is too small for
 * a model (why written), and the check before listening that --layers alone allows. */
size_t eval_msg_bytes(const coord *co);
int msg_cap_too_small(const coord *co, size_t n_params, int n_features, size_t eval_bytes,
                      char *why, size_t cap);
int check_msg_cap_early(const coord *co);
int alloc_round_state(coord *co);
client *find_peer(coord *co, const fedc_peer *p);
client *find_name(coord *co, const char *name);
void free_stats(client *c);
void mark_dead(coord *co, client *c, const char *why);
/* A member missed a deadline: dead until it shows life, and benched for 1, 2, 4, ... rounds
 * however often it heartbeats; the first completed exchange resets the count. */
void miss_deadline(coord *co, client *c, const char *why);
void completed_exchange(client *c);
/* Left out of every session until it joins again (logged once with the reason). */
void exclude_member(coord *co, client *c, const char *why);
/* --min-clients less the members excluded for bad keys or rosters (they would otherwise hold
 * round 0 for ever), never below the secure-aggregation floor. */
int min_clients_now(const coord *co);
/* The identity key registered for a name in the allow-list (NULL without CurveZMQ). */
const uint8_t *allow_key(const coord *co, const char *name);
/* Whether a client may be sent work this round: live, not excluded, not benched. */
int client_eligible(const coord *co, const client *c);
int n_eligible(const coord *co);
void on_join(coord *co, const fedc_peer *from, const fedc_msg *e, const char *name);
/* The clients matching pred, sorted by name (out holds MAX_CLIENTS); how many. */
int sorted_clients(coord *co, client **out, int (*pred)(const coord *, const client *));

/* round0.c: the statistics */
void start_stats(coord *co);
void on_stats(coord *co, client *c, const fedc_msg *e);
void stats_advance(coord *co, double t);
void stats_secure_done(coord *co, const uint32_t *sum, int n, int spent);

/* rounds.c: selection, training, evaluation, the end of a round */
void start_round(coord *co);
/* The federated evaluation of co->model (after a round's server step, or an edge's request). */
void start_eval(coord *co);
void on_fit_res(coord *co, client *c, const fedc_msg *e);
void on_eval_res(coord *co, client *c, const fedc_msg *e);
void round_advance(coord *co, double t);
/* The FitIns or EvaluateIns with the current model into co->env and co->wblob, carrying round
 * number `round`; -1 out of memory (logged by the caller). */
int encode_weights_msg(coord *co, fedc_msg_kind kind, uint32_t round);
/* After a server step: the federated evaluation of the new model (then the round's end). */
void start_eval(coord *co);

/* async.c: --mode async (FedBuff). Each is called only with cfg->async_mode set. */
/* The settings an embedder may have combined (secure aggregation, DP, a rule that needs each
 * update): 0, or an exit code after logging why. */
int async_init(coord *co);
void async_free(coord *co);
/* From start_round: opens the next buffer (the held updates go in first) and sends the newest
 * model to every idle eligible client. */
void async_start(coord *co);
void async_on_fit_res(coord *co, client *c, const fedc_msg *e);
/* A client's Error about the training of round `round`: it is idle again. */
void async_on_error(coord *co, client *c, uint32_t round);
/* From round_advance: the server step once the buffer is full, and the FitIns deadlines. */
void async_advance(coord *co, double t);
/* The earliest FitIns deadline (for the event loop's sleep), at most `due`. */
double async_next_due(const coord *co, double due);
/* The step's async figures in its metrics line. */
void async_metrics(const coord *co, struct fedc_json *j);
/* --buffer, or --min-fit-clients without it. */
int buffer_k(const coord *co);
/* Whether the buffer waits for its server step (no client is sent work meanwhile). */
int async_buffer_full(const coord *co);
/* Sends the newest model to c if it is idle and eligible; to every such client. */
void async_feed(coord *co, client *c);
void async_feed_idle(coord *co);
/* The staleness of c's update now; beyond --max-staleness refused (c told why) and 1 returned. */
int async_too_stale(coord *co, client *c, uint32_t *tau);
/* Before a step's aggregate is made: the weights of the version it replaces are let go (the
 * training and evaluation requests' blobs). After the step: its evaluation (start_eval), whose
 * weights the next training requests share. */
void async_drop_weights(coord *co);
void async_start_eval(coord *co);
/* start_eval, per eligible client: 1 when its evaluation request must wait until the weights of
 * its training request are served (as_eval_due; async_advance sends it then), else 0 (sent now). */
int async_eval_later(coord *co, client *c);
/* stream.c's downlink: n values of a request's weights served to c. */
void async_dl_served(client *c, uint64_t n);
/* stream.c's downlink: the weights blob client c's FitIns of round `round` is served from (its
 * chunks counter = round), or NULL when none is out to it. */
fedc_blob *async_fit_blob(const coord *co, const client *c, uint64_t counter, uint32_t round);
/* stream.c's uplink: the n values of a chunk of c's streamed update as they enter the buffer
 * (scaled by the staleness weight of its pull; v itself when that is 1, or outside async), or
 * NULL when out of memory. */
const float *async_chunk_scale(coord *co, const client *c, const float *v, size_t n);

/* async_sa.c: --mode async with secure aggregation, one session per server step among the K
 * clients that hold a trained update. */
/* c said it trained and holds its update (FitRes held). */
void async_sa_ready(coord *co, client *c);
int async_sa_n_ready(const coord *co);
/* From async_advance in PH_FIT: runs the fit session, or opens one once K updates are held;
 * 1 when a session is under way or the phase moved on, else 0. */
int async_sa_advance(coord *co);
/* From sa_finished: the fit session's sum over n survivors, or NULL (spent: shares may have been
 * revealed). */
void async_sa_done(coord *co, const uint32_t *sum, int n, int spent);

/* rounds.c: the secure training sum decoded into co->upd as the weighted mean (sum / summed
 * weight), co->sa_loss and co->answered set; -1 (logged) when implausible. */
int sa_fit_mean(coord *co, const uint32_t *sum, int n);
/* A step whose secure training sum failed after unmasking began: the next round number. */
void abandon_round(coord *co);

/* metrics.c */
/* The round's metrics line (NULL, logged, when it cannot be built; cJSON_free it), the line for
 * people, and the line of an abandoned round. */
char *metrics_line(coord *co, const fedc_eval_summary *s, double loss, double secs);
void metrics_print(const coord *co, const fedc_eval_summary *s, double loss, double secs);
char *metrics_abandoned_line(coord *co);
/* Appends one line to --metrics-json (one write(2), then fsync); -1 (logged) on failure. */
int append_metrics(coord *co, const char *line);
/* Makes --metrics-json agree with the checkpoint of `round` (ckpt_line: its metrics line) and
 * opens it for appending; -1 (logged) on failure. */
int open_metrics(coord *co, uint32_t round, const char *ckpt_line);

/* resume.c */
/* Writes the checkpoint of the round just finished (line: its metrics line); 0 without
 * --checkpoint-dir, -1 (logged) on failure. */
int save_checkpoint(coord *co, const char *line);
void drop_expect(coord *co);
/* 1 while a resumed run still waits for clients of the interrupted one. */
int awaiting_resumed(coord *co);
/* --resume: 0 (state restored, or no checkpoint: a fresh start), or an exit code (logged); the
 * checkpoint's metrics line in *ckpt_line (the caller frees it). */
int restore_checkpoint(coord *co, char **ckpt_line);
void say_run_complete(coord *co);

/* http.c: --metrics-listen (all do nothing without it) */
/* Starts the listener (after open_metrics: the page starts with the file's rounds); 0, or an exit
 * code after logging why (2: the address cannot be bound). */
int coord_http_start(coord *co);
/* Copies what the endpoints show into the snapshot: every loop turn, at most every quarter second
 * unless the phase or round moved or now is set. */
void coord_http_publish(coord *co, int now);
/* A round ended with its metrics line (NULL when it could not be built): completed (secs: its
 * duration) or abandoned. */
void coord_http_round(coord *co, const char *line, double secs, int completed);
/* An attempt of a round failed: retried, or given up (retried = 0). */
void coord_http_failed(coord *co, int retried);
/* The loop is over: /readyz answers 503 from now on. */
void coord_http_closing(coord *co);
void coord_http_stop(coord *co);

/* secure.c */
/* The secure-aggregation settings an instruction carries (StatsRequest, FitIns, EvaluateIns). */
void sa_fill_ins(coord *co, fedc_secagg_ins *si);
/* Opens a session for the clients flagged sa_in (they were just sent the instruction). */
void sa_start(coord *co, int stage, size_t len);
/* A session message from client c. */
void sa_on_msg(coord *co, client *c, const fedc_msg *e);
/* Moves the session on: call every loop turn while co->sa.active. When it ends, calls
 * sa_finished (rounds.c) with the sum over the survivors, or NULL when it failed. */
void sa_advance(coord *co);
/* A client of the session says it cannot answer (Error): stop waiting for it, and act on the
 * refusal code it gives (blamed neighbours are left out of the retry). */
void sa_client_out(coord *co, client *c, const fedc_error *err);
void sa_stop(coord *co);
/* rounds.c: the session's result (NULL on failure, with the reason logged; spent = 1 when the
 * failure came after shares may have been revealed, so the stage may not be retried). */
void sa_finished(coord *co, const uint32_t *sum, int n_survivors, int spent);

/* stream.c: streamed tensors */
/* Values in one chunk (what --max-msg-mb allows, 4 MiB at most); whether the weights go to the
 * clients in chunks (a model larger than one chunk). */
uint64_t stream_chunk(const coord *co);
int stream_downlink(const coord *co);
/* Logs how the model travels (once the model's size is known). */
void stream_log_plan(const coord *co);
/* A Chunk or ChunkReq from client c. */
void stream_on_msg(coord *co, client *c, const fedc_msg *e);
/* A plain FitRes whose update is streamed (after on_fit_res's checks): its weight and loss are
 * counted and its chunks pulled. */
void stream_fit_res(coord *co, client *c, const fedc_msg *e);
/* A streamed SaMasked (after sa_on_msg's checks): its chunks are pulled into the secure sum; the
 * member is in U3 (sa_answered) once its last chunk is in. */
void stream_sa_masked(coord *co, client *c, const fedc_msg *e);
/* Every loop turn: uploads of vanished clients taken out (the sum spoilt when they were in part),
 * and the next chunk requests sent within the window. */
void stream_check(coord *co);
void stream_pump(coord *co);
/* Client c says it no longer holds the upload being pulled from it: taken out (the sum spoilt
 * if some of it was added). */
void stream_gone(coord *co, client *c);
/* --model external with co->init_wait: pulls the initial values from the next client that
 * offered them (c first when it did and none is being pulled); logs when none is left. */
void stream_init_next(coord *co, client *c);
/* Ends every upload in progress (a deadline): the ones added in part spoil the sum. */
void stream_close(coord *co, const char *why);
/* Forgets every upload without judging it (a new round, stage or session); st_spoilt cleared. */
void stream_reset(coord *co);
/* Whether a member's masked input was added in part: the secure sum is spoilt. */
int stream_masked_spoilt(const coord *co);

/* aggregate.c */
const char *agg_name(fedc_robust_kind k);
int agg_dp_on(const coord *co);
/* The strategy (coord_cfg.strategy, or the built-in one from the flags, checked against secure
 * aggregation and DP), the noise source and the update's noise multiplier; 0, or an exit code
 * after logging why. */
int agg_init(coord *co);
void agg_free(coord *co);
void agg_round_start(coord *co);
/* The L2 bound sent to clients with this round's FitIns (0 = none). */
float agg_client_clip(const coord *co);
/* Epsilon of client-level DP after `rounds` noised rounds (NaN on a bad configuration). */
double agg_epsilon(const coord *co, double rounds);

/* best.c: best-model selection and the model card. best_consider records a finished round's
 * summary (1 when it is the best so far; metrics_line then reports best_round, best_metric and
 * best_value); best_restore takes them back from a checkpoint's line; card_put writes
 * the card of m for the round whose metrics line is `line` (selection "best" or "last") after
 * rounds_run rounds; best_save writes the best model file after a round that beat the others. */
int best_consider(coord *co, const fedc_eval_summary *s);
const char *best_metric_name(const coord *co);
void best_restore(coord *co, const char *line);
int card_put(coord *co, fedc_model *m, const char *line, const char *selection, int rounds_run);
int best_save(coord *co, const char *line);
/* After a round that was the best: keeps its parameters for --patience (0, or -1 out of memory).
 * best_patience: whether --patience has run out after the round just finished (logged once).
 * best_final: before the final model is written, with --patience, puts the best round's
 * parameters into co->model and returns its metrics line (else the last one's). */
int best_keep(coord *co, const char *line);
int best_patience(coord *co);
const char *best_final(coord *co, const char *last_line, const char **selection);
/* Rounds the accountant charges after `rounds` finished ones. */
double agg_rounds_charged(const coord *co, double rounds);
/* 1 (logged) when round co->round would exceed --target-epsilon. */
int agg_budget_exceeded(coord *co);
/* Poisson sampling of the n candidates at rate --fraction-fit from secret randomness: their
 * indices into chosen; returns how many. Sets the round's expected count. */
int agg_dp_sample(coord *co, int *chosen, int n);
/* --resume: checks the checkpoint's DP settings (from its last metrics line) against ours and
 * charges the interrupted round; 0, or an exit code after logging why. */
int agg_restore(coord *co, const char *line, uint32_t rounds_done);
/* Before the noised model leaves (evaluation request): records the round durably in the
 * checkpoint directory; -1 (logged) when it cannot. */
int agg_mark_release(coord *co);
/* Every update counts once (DP-FedAvg, the robust rules, the norm bound). */
int agg_uniform(const coord *co);
/* Plain path: checks, bounds and adds one client's update (kept for the robust rules);
 * FEDC_ERANGE with the reason in d for a non-finite or out-of-range update. */
fedc_err agg_plain_add(coord *co, client *c, const float *upd, uint64_t n_examples, double loss,
                       int unclipped, fedc_diag *d);
/* Plain path: the round's aggregate into co->upd (the fixed-point weighted mean, or the
 * strategy's aggregate of the updates in name order when it needs them); -1 (logged) when the
 * rule cannot apply. */
int agg_plain_mean(coord *co);
/* The L2 bound every client clips its update to (FitIns update_norm_bound): the DP clip norm,
 * norm-bound's C, else --update-norm-bound. */
float agg_update_bound(const coord *co);
/* The smallest Poisson sample a DP round can aggregate: --min-fit-clients, and under secure
 * aggregation at least 2 and --secagg-threshold. */
int agg_dp_min_sample(const coord *co);
/* Plain path, after agg_plain_mean: the mean update's norm against the bound (B, or sqrt(n) B for
 * the coordinate-wise robust rules) and the updates' example counts against round 0's total;
 * records both for the metrics; -1 (logged with both numbers) to reject the round's result. */
int agg_check_plain(coord *co);
/* Secure path: co->upd holds the weighted sum of n survivors' updates with summed weight and
 * example count as decoded; the same checks (norm against weight x bound; uniform weights sum to
 * n, FedAvg weights to at most 1 and to examples / total_rows); -1 (logged) to reject. */
int agg_check_secure(coord *co, double weight, double examples, int n);
/* Client-level DP release: co->upd gets (Q + N_Z(0, sigma^2)) g / (q N), Q the round's sum on the
 * integer noise grid g (from sa_upd, the secure sum's update part; else from the plain
 * accumulator; zero for a noise-only round, co->dp_noise_only), and the adaptive clip norm takes
 * its step with the noised count of `unclipped`. Nothing without DP. 0, or -1 (logged) when the
 * noise cannot be drawn: the model must not leave then. */
int agg_dp_finish(coord *co, const uint32_t *sa_upd, double unclipped);
/* Once the model's size is known: the strategy's start, and co->srv for the checkpoints; -1
 * (logged) on failure. */
int agg_strategy_start(coord *co);
/* The strategy's server step of co->upd onto the global model; -1 (logged, exit code set, phase
 * done) when it fails. */
int agg_server_step(coord *co);

#endif
