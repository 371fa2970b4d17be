/* The client's internals, shared by its files. Not an interface: client.h is.
 *   client.c        the object (new, run, stop, destroy, defaults), the I/O loop, joins and the
 *                   Welcome, heartbeats, sending
 *   client_eval.c   round 0's statistics, the agreed standardisation, evaluation
 *   client_train.c  the training job and its thread, FitIns, the update sent, refusals, the local
 *                   metrics line
 *   client_dp.c     record-level DP-SGD: the budget plan, the privacy spent, --dp-state
 *   client_sa.c     secure aggregation: the session's steps, refusing plain requests
 *   client_http.c   --metrics-listen: Prometheus metrics and probes
 *   client_stream.c streamed tensors: weights pulled in chunks, our update or masked input served
 *   mlp_model.c     fedc's MLP on a CSV file as a fedc_client_model
 * Functions shared between the files start with cl_: libfedc bundles the client's objects with the
 * coordinator's, so an internal name must not repeat one of the coordinator's. */
#ifndef FEDC_CLIENT_INT_H
#define FEDC_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fedc/client.h"
#include "fedc/dp.h"
#include "fedc/fl.h"
#include "fedc/msg.h"
#include "fedc/sa_proto.h"
#include "fedc/transport.h"

#define PROG "fedc-client"

/* One round of local training, owned by the training thread while `busy`. */
typedef struct job {
    uint32_t round;
    float *global; /* (n) the global weights: trained from, and scored when no training runs */
    /* (fedc_sa_fit_len(n)) the secure-aggregation input of a training: its header slots, then
     * local, so that the update is quantised and masked where it lies (c->sa_job) */
    uint32_t *buf;
    float *local;       /* (n) in buf: the trained weights, then (in place) the update */
    float *update;      /* (n) local - global: the same vector as local */
    size_t n;           /* parameters */
    fedc_model_fit hp;  /* the round's training settings */
    float clip_norm;    /* > 0: the update is scaled to this L2 norm at most */
    int uniform_weight; /* DP-FedAvg, robust rules: our update counts once, not by our rows */
    int client_dp;      /* client-level DP: our training loss stays here */
    int hold;           /* --mode async, secure: keep the update for a later session */
    int unclipped;      /* the update's norm was within clip_norm */
    double norm;        /* its norm before clipping (-1 without clip_norm) */
    long dp_steps;      /* DP-SGD steps this round took */
    double dp_q;
    const fedc_client_model *model;
    /* results */
    double loss;
    double seconds;
    fedc_err rc;
    char msg[FEDC_DIAG_MAX];
} job;

typedef struct cl {
    atomic_int *stop;   /* the owner's stop flag (fedc_client_stop) */
    atomic_int *reload; /* the owner's reload flag (fedc_client_reload) */
    /* the roster round keys are checked against: cfg->peers until a reload of cfg->peers_dir
     * replaces it with own_peers; a reload read during a secure session waits in peers_next
     * until the session ends, so one session never sees two rosters */
    const fedc_identity *peers;
    int n_peers;
    fedc_identity *own_peers, *peers_next;
    int n_peers_next;
    const client_cfg *cfg;
    char send_error[FEDC_DIAG_MAX]; /* the last send failure logged (said once) */
    void *zctx;
    fedc_endpoint *ep;
    fedc_client_model *model; /* cfg->model, or the MLP built from cfg->data (own_mlp) */
    fedc_client_model *own_mlp;
    fedc_model_desc desc; /* what the model says about itself */
    fedc_task task;
    int n_classes;
    /* run */
    int joined;
    int have_run;
    uint8_t run_id[FEDC_RUN_ID_BYTES];
    uint64_t seed;
    int rounds;
    float val_fraction;
    size_t n_params;      /* of this run's model */
    fedc_model_rows rows; /* the model's rows in this run */
    float *mean, *std;    /* agreed statistics (n_features) or NULL */
    /* (n_params) weights scored while a training uses job.global and the instruction's cannot be
     * read where they arrived; allocated for that evaluation only */
    float *eval_w;
    fedc_eval_acc *eval;
    /* training thread */
    job job;
    int busy;
    pthread_t thread;
    int pipe_fd[2];
    int pending; /* a FitIns arrived while training: start it next */
    uint32_t pending_round;
    float *pending_w;
    fedc_hyper pending_hp;
    float pending_pw; /* pending_w: allocated only while a FitIns waits; becomes job.global */
    int pending_hold;
    /* --mode async with secure aggregation: the update trained for held_round, kept until the
     * session over it unmasks (or new work replaces it) */
    float *held;
    int have_held;
    uint32_t held_round;
    double held_loss;
    int held_unclipped, held_uniform, held_dp;
    int sa_held; /* the session in progress is over the held update */
    /* per-round line */
    uint32_t last_fit_round;
    double last_loss, last_secs;
    int last_rows;
    /* our model's initial values sent with the join, kept until a Welcome (reset_run): while
     * ZeroMQ still holds them unsent, a join retry waits instead of queueing another copy. Over
     * FEDC_INLINE_MAX_BYTES the join only announces them, and a Welcome that says init_wanted
     * keeps them, served as stream INIT, until our first instruction (cl_init_release). */
    fedc_blob *join_init;
    /* liveness */
    double last_heard, last_hb, last_join;
    uint64_t hb_seq;
    int hb_ms; /* the heartbeat interval in use: --heartbeat-ms, else the coordinator's ask */
    size_t coord_max_msg; /* the largest message the coordinator accepts (Welcome), 0 = unknown */
    /* secure aggregation: the session in progress */
    fedc_sa_client sa;
    int sa_on, sa_stage;
    uint64_t sa_counter;
    uint32_t sa_round;
    fedc_sa_quant sa_q;
    double sa_total_rows;
    uint32_t *sa_vec; /* our input, once computed: our own, or job.buf when sa_job */
    int sa_job;       /* sa_vec is job.buf (a training's input, masked in place of the update) */
    size_t sa_len;
    int sa_ready, sa_collected, sa_sent;
    int sa_silent; /* test only (FEDC_FAULT misbehave:sa-silent): answers no instruction */
    /* the last masked input sent, kept only for the replay test (FEDC_FAULT misbehave) */
    uint32_t *sa_last;
    size_t sa_last_len;
    uint64_t sa_last_counter;
    uint32_t sa_last_round;
    /* record-level DP-SGD: the noise stream and the privacy spent so far */
    fedc_dp_noise dp_rng;
    int dp_live;
    float dp_sigma;     /* the noise multiplier in use (derived once from the target) */
    long dp_steps;      /* steps taken over all rounds, retried ones included */
    double dp_q;        /* their sampling rate */
    int dp_exhausted;   /* the budget allows no more training */
    struct cl_obs *obs; /* --metrics-listen's snapshot and listener (client_http.c), or NULL */
    /* streamed weights being pulled for an instruction (client_stream.c) */
    int dl_on;
    uint32_t dl_stream, dl_round;
    uint64_t dl_total, dl_next, dl_recv; /* values: length, next asked for, received */
    int dl_inflight;
    float *dl_buf;   /* where they go: job.global, or pending_w / eval_w while a training runs */
    fedc_msg dl_msg; /* the instruction, handled once they are in */
    /* what we announced without its values and serve chunk by chunk */
    uint32_t up_stream, up_round; /* fedc_stream, 0 = nothing */
    uint64_t up_counter, up_total;
    const void *up_data; /* 4 * up_total bytes, little-endian: the job's update, sa_vec */
} cl;

/* client.c */
/* A roster reloaded by fedc_client_reload goes in force (no-op while a session is under way). */
void cl_apply_peers(cl *c);
/* Log lines (fedc/log.h) at info, warning and error level, in the client's format and level. */
void cl_logm(const cl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cl_logw(const cl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cl_loge(const cl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A message of ours: the body is the caller's to fill. */
void cl_env_init(cl *c, fedc_msg *m, fedc_msg_kind kind, uint32_t round);
/* Sends m with its tensor or masked values, if it has any, as the raw frame; -1 (logged once per
 * reason) when it cannot leave. */
int cl_send_msg(cl *c, const fedc_msg *m);
/* Joins the training thread if it runs (its result is then in c->job). */
void cl_wait_training(cl *c);
/* Drops our secure-aggregation input (withdrawing its stream): freed when it is our own; when it
 * is job.buf, nothing is freed. */
void cl_sa_vec_drop(cl *c);
/* Where a FitIns's or EvaluateIns's weights (n_params) go: job.global when no training uses it,
 * else pending_w (training) or eval_w (evaluation), allocated now; NULL when out of memory. */
float *cl_weights_dest(cl *c, int fit);

/* client_eval.c; the on_ handlers return -1 to go on, or the exit code */
int cl_on_stats_request(cl *c, const fedc_msg *e);
/* Hands the agreed statistics to the model when they changed; -1 (logged) on failure. */
int cl_apply_stats(cl *c, const float *mean, const float *std);
int cl_on_evaluate_ins(cl *c, const fedc_msg *e);

/* client_train.c */
int cl_on_fit_ins(cl *c, const fedc_msg *e);
/* The training thread finished (its pipe is readable): send the result, start a queued job. */
void cl_on_training_done(cl *c);
/* We will not train this round: say why, so that the round does not wait for us until its
 * deadline, and leave the secure session. */
void cl_refuse_fit(cl *c, uint32_t round, fedc_err code, const char *why);
/* Encodes an update as our training input of the secure session into c->sa_vec, with our FedAvg
 * weight; *why says what failed. */
fedc_err cl_sa_fit_input(cl *c, const float *update, size_t n, uint32_t round, double loss,
                         int uniform, int dp, int unclipped, fedc_diag *why);

/* client_dp.c */
/* --dp-state: the privacy spent in earlier runs; 0 (loaded, or no file yet) or -1 (logged). */
int cl_dp_state_load(cl *c);
/* Whether the budget allows training round `round` (hp: its settings); 0 to train, -1 when it
 * must not (refused and logged). */
int cl_dp_plan(cl *c, uint32_t round, const fedc_hyper *hp);
double cl_dp_spend(cl *c, const job *j);

/* client_http.c: --metrics-listen (all do nothing without it) */
/* Starts the listener; 0, or -1 after logging why (the address cannot be bound). */
int cl_http_start(cl *c);
/* Copies whether we are joined and our rows into the snapshot (every loop turn). */
void cl_http_publish(cl *c);
/* A local training finished and was sent for: its round, seconds and the DP-SGD epsilon spent so
 * far (NaN without DP-SGD). */
void cl_http_trained(cl *c, uint32_t round, double seconds, double epsilon);
void cl_http_stop(cl *c);

/* client_stream.c */
/* Whether a vector of `values` we send goes streamed (announced, then pulled in chunks). */
int cl_stream_up(const cl *c, size_t values);
/* Announces data (total values, kept alive by the caller until withdrawn) for stream `stream`
 * under (round, counter): chunk requests for it are served from it. */
void cl_stream_offer(cl *c, uint32_t stream, uint32_t round, uint64_t counter, const void *data,
                     uint64_t total);
void cl_stream_withdraw(cl *c);
/* A FitIns or EvaluateIns whose weights are streamed: pulled, then handled; -1 or an exit code. */
int cl_stream_instruction(cl *c, const fedc_msg *e);
/* A Chunk or ChunkReq from the coordinator; -1 or an exit code. */
int cl_stream_on_msg(cl *c, const fedc_msg *e);

/* client_sa.c */
/* Leaves the session, telling the coordinator why (refusal code, neighbour blamed). */
void cl_sa_abandon(cl *c, const char *why);
/* Refuses a plain request unless --secagg off: 1 when refused (we then exit 2). */
int cl_plain_refused(cl *c, uint32_t round, const char *what);
/* Opens a session for an instruction with secure-aggregation settings (our round keys go out at
 * once) and a vector of len values in c->sa_vec; -1 when it cannot. */
int cl_sa_open(cl *c, uint32_t round, int stage, const fedc_secagg_ins *si, size_t len);
/* Our input is in c->sa_vec (rc 0) or could not be computed (why): masked and sent once the
 * neighbours' shares are here, or the session is abandoned. */
void cl_sa_input_ready(cl *c, fedc_err rc, const char *why);
void cl_on_sa_graph_ins(cl *c, const fedc_msg *e);
void cl_on_sa_share_ins(cl *c, const fedc_msg *e);
void cl_on_sa_mask_ins(cl *c, const fedc_msg *e);
void cl_on_sa_consist_ins(cl *c, const fedc_msg *e);
/* --mode async: a session over our held update (client_sa.c). */
void cl_on_sa_fit_ins(cl *c, const fedc_msg *e);
void cl_on_sa_unmask_ins(cl *c, const fedc_msg *e);

#endif
