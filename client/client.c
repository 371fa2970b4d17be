/* The participant's loop (overview in client.h). */
#define _POSIX_C_SOURCE 200809L
#include "fedc/clip.h"
#include "fedc/clock.h"
#include "fedc/client.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fedc/augment.h"
#include "fedc/data.h"
#include "fedc/dp.h"
#include "fedc/fault.h"
#include "fedc/jsonl.h"
#include "fedc/fl.h"
#include "fedc/fl_seed.h"
#include "fedc/model.h"
#include "fedc/modelfile.h"
#include "fedc/rng.h"
#include "fedc/sa_proto.h"
#include "fedc/train.h"
#include "fedc/transport.h"

#define PROG "fedc-client"
#define JOIN_RETRY_S 2.0
/* Bytes of a message beyond its raw frame (the envelope), in the size checks of --max-msg-mb. */
#define ENVELOPE_SLACK 4096
/* How long failed CurveZMQ handshakes may go on before we say the coordinator key is wrong
 * (shorter when --coordinator-timeout is). */
#define HANDSHAKE_GIVE_UP_S 10.0

/* One round of local training, owned by the training thread while `busy`. */
typedef struct job {
    uint32_t round;
    float *global;      /* (n) the weights received */
    float *local;       /* (n) the trained weights */
    float *update;      /* (n) local - global */
    size_t n;           /* parameters */
    fedc_model_fit hp;  /* the round's training settings */
    float clip_norm;    /* > 0: the update is scaled to this L2 norm at most */
    int uniform_weight; /* DP-FedAvg, robust rules: our update counts once, not by our rows */
    int client_dp;      /* client-level DP: our training loss stays here */
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
    atomic_int *stop; /* the owner's stop flag (fedc_client_stop) */
    const client_cfg *cfg;
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
    float *eval_w;        /* (n_params) the weights being scored */
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
    float pending_pw;
    /* per-round line */
    uint32_t last_fit_round;
    double last_loss, last_secs;
    int last_rows;
    /* liveness */
    double last_heard, last_hb, last_join;
    uint64_t hb_seq;
    size_t coord_max_msg; /* the largest message the coordinator accepts (Welcome), 0 = unknown */
    /* secure aggregation: the session in progress */
    fedc_sa_client sa;
    int sa_on, sa_stage;
    uint64_t sa_counter;
    uint32_t sa_round;
    fedc_sa_quant sa_q;
    double sa_total_rows;
    uint32_t *sa_vec; /* our input, once computed */
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
    float dp_sigma;   /* the noise multiplier in use (derived once from the target) */
    long dp_steps;    /* steps taken over all rounds, retried ones included */
    double dp_q;      /* their sampling rate */
    int dp_exhausted; /* the budget allows no more training */
} cl;

/* The object behind the API (client.h): the configuration it runs and its stop flag, set from
 * a signal handler or another thread. */
struct fedc_client {
    const client_cfg *cfg;
    atomic_int stop;
};

static void logm(const cl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logm(const cl *c, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, PROG " %s: ", c->cfg->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* A message of ours: the body is the caller's to fill. */
static void env_init(cl *c, fedc_msg *m, fedc_msg_kind kind, uint32_t round) {
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->run_id = c->have_run ? c->run_id : NULL;
    m->round = round;
}

/* Sends m with its tensor or masked values, if it has any, as the raw frame. */
static int send_msg(cl *c, const fedc_msg *m) {
    fedc_diag d;
    static char last[FEDC_DIAG_MAX];
    size_t bytes = c->coord_max_msg ? fedc_msg_wire_size(m) : 0;
    if (c->coord_max_msg && bytes > c->coord_max_msg) {
        /* ZeroMQ at the coordinator would drop it with our connection, without a word. */
        logm(c,
             "not sending %s of %zu bytes: the coordinator accepts at most %zu bytes (its "
             "--max-msg-mb)",
             fedc_msg_kind_name(m->kind), bytes, c->coord_max_msg);
        return -1;
    }
    if (fedc_net_send_msg(c->ep, NULL, m, NULL, &d)) {
        /* While the coordinator is away the queue fills with joins; say so once. */
        if (strcmp(last, d.msg) != 0)
            logm(c, "%s", d.msg);
        snprintf(last, sizeof last, "%s", d.msg);
        return -1;
    }
    last[0] = 0;
    return 0;
}

/* ---- join ----------------------------------------------------------------------------------- */

static void send_join(cl *c) {
    fedc_msg m;
    fedc_fault_point("join", 0);
    env_init(c, &m, FEDC_MSG_JOIN, 0);
    fedc_join *j = &m.join;
    j->schema.n_features = (size_t)c->desc.n_features;
    j->schema.feature_names = c->desc.feature_names;
    j->schema.label = c->desc.label;
    j->schema.task = (uint32_t)c->task;
    j->schema.n_classes = (uint32_t)c->n_classes;
    j->name = c->cfg->name;
    j->n_rows = 0; /* our row count is ours to keep */
    float *init = NULL;
    size_t n = c->desc.n_params;
    if (n) {
        /* A model of our own: its name, size and initial values (the first client's become the
         * run's unless the coordinator has --init-weights). */
        init = calloc(n, 4);
        fedc_diag d;
        if (!init || (c->model->init && c->model->init(c->model->ctx, init, n, &d))) {
            logm(c, "cannot offer the model's initial values: %s", init ? d.msg : "out of memory");
            free(init);
            c->last_join = fedc_clock_s();
            return;
        }
        j->model_kind = c->desc.kind ? c->desc.kind : "";
        j->n_params = n;
        j->init.count = n;
        /* Our floats as they are: the wire's little-endian order on a little-endian host (as the
         * client assumed before msg.h; a big-endian port would swap them first). */
        j->init.data = init;
    }
    (void)send_msg(c, &m);
    free(init);
    c->last_join = fedc_clock_s();
}

static void wait_training(cl *c) {
    if (c->busy) {
        pthread_join(c->thread, NULL);
        char b;
        while (read(c->pipe_fd[0], &b, 1) == 1) {
        }
        c->busy = 0;
    }
}

static void reset_run(cl *c) {
    wait_training(c);
    free(c->mean);
    free(c->std);
    c->mean = c->std = NULL;
    free(c->eval_w);
    c->eval_w = NULL;
    fedc_eval_acc_destroy(&c->eval);
    free(c->job.global);
    free(c->job.local);
    free(c->job.update);
    c->job.global = c->job.local = c->job.update = NULL;
    c->n_params = 0;
    free(c->pending_w);
    c->pending_w = NULL;
    c->pending = 0;
    fedc_sa_client_free(&c->sa);
    free(c->sa_vec);
    c->sa_vec = NULL;
    free(c->sa_last);
    c->sa_last = NULL;
    c->sa_on = 0;
}

/* Returns 0, or an exit code. */
static int on_welcome(cl *c, const fedc_msg *e) {
    const fedc_welcome *w = &e->welcome;
    if (!e->run_id) {
        logm(c, "ignored a welcome without a run id");
        return 0;
    }
    int same_run = c->have_run && memcmp(c->run_id, e->run_id, FEDC_RUN_ID_BYTES) == 0;
    if (same_run) {
        c->joined = 1;
        logm(c, "rejoined the run at round %u", e->round);
        return 0;
    }
    if (c->have_run)
        logm(c, "the coordinator started a new run; joining it");
    reset_run(c);
    memcpy(c->run_id, e->run_id, FEDC_RUN_ID_BYTES);
    c->have_run = 1;
    c->joined = 1;
    c->seed = w->seed;
    c->rounds = (int)w->rounds;
    c->val_fraction = w->hp.val_fraction;
    /* The parameter count: the run's own model's, or the MLP's from the layer sizes. */
    int sizes[FEDC_MAX_LAYERS + 1];
    size_t n = 0;
    for (size_t l = 0; l < w->n_layer_sizes; l++) {
        sizes[l] = (int)w->layer_sizes[l];
        if (l > 0)
            n += (size_t)sizes[l - 1] * (size_t)sizes[l] + (size_t)sizes[l];
    }
    if (w->n_params) {
        n = (size_t)w->n_params;
        if (n != c->desc.n_params) {
            if (c->desc.n_params)
                logm(c, "the coordinator's model has %zu parameters, ours ('%s') has %zu", n,
                     c->desc.kind, c->desc.n_params);
            else
                logm(c,
                     "the coordinator trains a model of the clients' own (%zu parameters), we "
                     "bring fedc's MLP",
                     n);
            return 2;
        }
    } else if (c->desc.n_params) {
        logm(c,
             "the coordinator trains fedc's MLP, we bring a model of our own ('%s'): start it "
             "with --model external",
             c->desc.kind);
        return 2;
    }
    fedc_model_run run;
    memset(&run, 0, sizeof run);
    run.client_name = c->cfg->name;
    run.seed = c->seed;
    run.split_key = fedc_fl_split_seed(c->seed, c->cfg->name);
    run.rounds = c->rounds;
    run.val_fraction = c->val_fraction;
    run.n_params = n;
    run.layer_sizes = w->n_params ? NULL : sizes;
    run.n_layer_sizes = w->n_params ? 0 : (int)w->n_layer_sizes;
    run.hidden_act = (int)w->hidden_act;
    fedc_diag d;
    memset(&c->rows, 0, sizeof c->rows);
    fedc_err brc = c->model->begin(c->model->ctx, &run, &c->rows, &d);
    if (brc) {
        logm(c, "%s", d.msg);
        return brc == FEDC_ENOMEM ? 1 : 2;
    }
    c->n_params = n;
    if (fedc_eval_acc_new(&c->eval, c->task, c->n_classes, FEDC_EVAL_BINS)) {
        logm(c, "out of memory for the model");
        return 1;
    }

    /* The weights come as a raw frame of 4 bytes per parameter after an envelope with the
     * standardisation: a --max-msg-mb below that would make ZeroMQ drop every instruction with
     * the connection, which looks like a coordinator that keeps restarting. */
    size_t need_in = 4 * n + 8 * (size_t)c->desc.n_features + ENVELOPE_SLACK;
    if (need_in > c->cfg->max_msg) {
        logm(c,
             "--max-msg-mb %zu (%zu bytes) is below the coordinator's instructions for this model: "
             "%zu bytes (%zu parameters x 4 bytes, plus the envelope); start with --max-msg-mb "
             "%zu or more",
             c->cfg->max_msg >> 20, c->cfg->max_msg, need_in, n,
             (need_in + ((size_t)1 << 20) - 1) >> 20);
        return 2;
    }
    /* Our update takes as much the other way (the envelope slack covers the few more values of
     * secure aggregation); the coordinator checks the same bound against its own limit. */
    size_t need_out = 4 * n + ENVELOPE_SLACK;
    c->coord_max_msg = (size_t)w->max_msg_bytes;
    if (c->coord_max_msg && need_out > c->coord_max_msg) {
        logm(c,
             "the coordinator accepts messages of at most %zu bytes (its --max-msg-mb), but our "
             "update for this model takes up to %zu bytes (%zu parameters): it would be dropped",
             c->coord_max_msg, need_out, n);
        return 2;
    }
    c->job.global = malloc(4 * n);
    c->job.local = malloc(4 * n);
    c->job.update = malloc(4 * n);
    c->job.n = n;
    c->pending_w = malloc(4 * n);
    c->eval_w = malloc(4 * n);
    if (!c->job.global || !c->job.local || !c->job.update || !c->pending_w || !c->eval_w) {
        logm(c, "out of memory for the model");
        return 1;
    }
    logm(c, "joined run with %d round(s): %llu training rows, %llu validation rows, %zu parameters",
         c->rounds, (unsigned long long)c->rows.train_rows, (unsigned long long)c->rows.val_rows,
         n);
    return 0;
}

/* ---- secure aggregation ------------------------------------------------------------------------
 */

static void send_error_sa(cl *c, uint32_t round, fedc_err code, const char *reason,
                          uint32_t refusal, int64_t blame, uint64_t counter) {
    fedc_msg m;
    uint32_t b = (uint32_t)(blame < 0 ? 0 : blame);
    env_init(c, &m, FEDC_MSG_ERROR, round);
    m.error.code = code;
    m.error.reason = reason;
    m.error.sa_refusal = refusal;
    m.error.n_sa_blame = blame >= 0 ? 1 : 0;
    m.error.sa_blame = &b;
    m.error.sa_counter = counter;
    (void)send_msg(c, &m);
}

static void send_error(cl *c, uint32_t round, fedc_err code, const char *reason) {
    send_error_sa(c, round, code, reason, 0, -1, 0);
}

/* Ends the session we are in, telling the coordinator why with a refusal code and the neighbour
 * blamed (so it does not wait for us and can retry without that neighbour). */
static void sa_abandon(cl *c, const char *why) {
    char reason[FEDC_DIAG_MAX + 64];
    /* The maths' own messages may name secure aggregation already: say it once. */
    const char *prefix = "secure aggregation: ";
    snprintf(reason, sizeof reason, "%s%s", strncmp(why, prefix, strlen(prefix)) ? prefix : "",
             why);
    logm(c, "round %u: %s", c->sa_round, reason);
    uint32_t refusal = c->sa.refusal ? (uint32_t)c->sa.refusal : FEDC_SA_REFUSE_PROTOCOL;
    uint64_t counter = refusal == FEDC_SA_REFUSE_COUNTER ? c->sa.guard.last : c->sa_counter;
    send_error_sa(c, c->sa_round, FEDC_EINVAL, reason, refusal, c->sa.blame, counter);
    fedc_sa_client_end(&c->sa);
    c->sa_on = 0;
}

/* The roster lookup the protocol uses to check neighbours' signatures. */
static const uint8_t *roster_key(void *ctx, const char *name) {
    const cl *c = ctx;
    for (int i = 0; i < c->cfg->n_peers; i++)
        if (strcmp(c->cfg->peers[i].name, name) == 0)
            return c->cfg->peers[i].sign_pk;
    return NULL;
}

static const char *self_name(const cl *c) {
    return c->cfg->self ? c->cfg->self->name : c->cfg->name;
}

/* Refuses a plain request unless --secagg off: returns 1 when refused (we then exit 2). */
static int plain_refused(cl *c, uint32_t round, const char *what) {
    if (c->cfg->allow_plain)
        return 0;
    char reason[256];
    snprintf(reason, sizeof reason,
             "refused: %s without secure aggregation; this client sends its %s only masked "
             "(start the coordinator with --secagg on, or this client with --secagg off)",
             what, round == 0 ? "statistics" : "update and evaluation");
    logm(c, "the coordinator asked for a plain %s; %s", what, reason);
    send_error(c, round, FEDC_EINVAL, reason);
    return 1;
}

/* Opens a session for an instruction that carries secure-aggregation settings: fresh round keys,
 * signed with our identity, go out at once. Returns -1 when it cannot. */
static int sa_open(cl *c, uint32_t round, int stage, const fedc_secagg_ins *si, size_t len) {
    fedc_diag d;
    fedc_sa_client_end(&c->sa);
    c->sa.min_nbrs = c->cfg->sa_min_nbrs;
    c->sa.roster = c->cfg->self ? roster_key : NULL;
    c->sa.roster_ctx = c;
    free(c->sa_vec);
    c->sa_vec = NULL;
    c->sa_on = 0;
    c->sa_ready = c->sa_collected = c->sa_sent = 0;
    if (fedc_sa_quant_make(&c->sa_q, si->max_clients, si->clip, &d)) {
        logm(c, "round %u: %s", round, d.msg);
        return -1;
    }
    c->sa_vec = malloc(4 * (len ? len : 1));
    if (!c->sa_vec) {
        logm(c, "out of memory for the secure-aggregation vector");
        return -1;
    }
    fedc_sa_adv adv;
    c->sa_round = round;
    c->sa_counter = si->counter;
    if (fedc_sa_client_begin(&c->sa, c->run_id, si->counter, self_name(c),
                             c->cfg->self ? c->cfg->self->sign_sk : NULL, &adv, &d)) {
        sa_abandon(c, d.msg);
        return -1;
    }
    if (fedc_fault_point("sa-badkeys", round)) {
        adv.sig[0] ^= 1; /* test only: round keys our identity did not sign */
        logm(c, "misbehaving (fault injection): advertising round keys with a bad signature");
    }
    c->sa_on = 1;
    c->sa_stage = stage;
    c->sa_len = len;
    c->sa_total_rows = si->total_rows;
    fedc_msg m;
    env_init(c, &m, FEDC_MSG_SA_KEYS, round);
    m.sa_keys.counter = si->counter;
    m.sa_keys.adv = adv;
    (void)send_msg(c, &m);
    return 0;
}

/* Sends the masked input once both our vector and our neighbours' shares are here. */
static void sa_try_send(cl *c) {
    if (!c->sa_on || !c->sa_ready || !c->sa_collected || c->sa_sent)
        return;
    fedc_diag d;
    if (fedc_sa_client_mask(&c->sa, c->sa_vec, c->sa_len, &d)) {
        sa_abandon(c, d.msg);
        return;
    }
    fedc_msg m;
    env_init(c, &m, FEDC_MSG_SA_MASKED, c->sa_round);
    m.sa_masked.counter = c->sa_counter;
    m.sa_masked.count = c->sa_len;
    m.sa_masked.values = c->sa_vec;
#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
    for (size_t i = 0; i < c->sa_len; i++) { /* the wire is little-endian */
        uint32_t v = c->sa_vec[i];
        uint8_t *p = (uint8_t *)&c->sa_vec[i];
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
    }
#endif
    if (c->sa_last && fedc_fault_point("sa-replay", c->sa_round)) {
        /* Test only: an earlier session's masked input again; the coordinator must refuse it. */
        fedc_msg old = m;
        old.round = c->sa_last_round;
        old.sa_masked.counter = c->sa_last_counter;
        old.sa_masked.count = c->sa_last_len;
        old.sa_masked.values = c->sa_last;
        logm(c, "misbehaving (fault injection): replaying the masked input of session %llu",
             (unsigned long long)c->sa_last_counter);
        (void)send_msg(c, &old);
    }
    (void)send_msg(c, &m);
    c->sa_sent = 1;
    uint32_t *keep =
        fedc_fault_armed("sa-replay") ? realloc(c->sa_last, 4 * (c->sa_len ? c->sa_len : 1)) : NULL;
    if (keep) {
        memcpy(keep, c->sa_vec, 4 * c->sa_len);
        c->sa_last = keep;
        c->sa_last_len = c->sa_len;
        c->sa_last_counter = c->sa_counter;
        c->sa_last_round = c->sa_round;
    }
}

/* Our input for the session is computed (encoded into c->sa_vec by the caller or failed). */
static void sa_input_ready(cl *c, fedc_err rc, const char *why) {
    if (rc) {
        sa_abandon(c, why);
        return;
    }
    c->sa_ready = 1;
    sa_try_send(c);
}

static int sa_current(cl *c, const fedc_msg *e, uint64_t counter) {
    if (c->sa_on && counter == c->sa_counter && e->round == c->sa_round)
        return 1;
    logm(c, "ignored %s for session %llu of round %u: not our current session",
         fedc_msg_kind_name(e->kind), (unsigned long long)counter, e->round);
    return 0;
}

static void on_sa_graph_ins(cl *c, const fedc_msg *e) {
    const fedc_sa_graph_ins *gi = &e->sa_graph_ins;
    if (!sa_current(c, e, gi->counter))
        return;
    int n = (int)gi->n_members;
    const char **names = malloc(sizeof *names * (size_t)n);
    uint8_t *commits = malloc(32 * (size_t)n), r[32];
    fedc_diag d;
    if (!names || !commits) {
        sa_abandon(c, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        names[i] = gi->members[i].name;
        memcpy(commits + 32 * (size_t)i, gi->members[i].commit, 32);
    }
    if (fedc_sa_client_graph(&c->sa, gi->id, n, (int)gi->h, names, commits, r, &d)) {
        sa_abandon(c, d.msg);
        goto out;
    }
    fedc_msg m;
    env_init(c, &m, FEDC_MSG_SA_GRAPH, e->round);
    m.sa_graph.counter = gi->counter;
    m.sa_graph.r = r;
    (void)send_msg(c, &m);
out:
    free(names);
    free(commits);
}

static void on_sa_share_ins(cl *c, const fedc_msg *e) {
    const fedc_sa_share_ins *si = &e->sa_share_ins;
    if (!sa_current(c, e, si->counter))
        return;
    if (fedc_fault_point("sa-silent", e->round) || c->sa_silent) {
        c->sa_silent = 1; /* test only: heartbeats go on, instructions go unanswered */
        logm(c, "misbehaving (fault injection): leaving the neighbours' keys unanswered");
        return;
    }
    fedc_fault_point("sa-share", e->round);
    int size = (int)si->n_peers;
    fedc_sa_sealed *boxes = malloc(sizeof *boxes * (size_t)size);
    fedc_diag d;
    if (!boxes) {
        sa_abandon(c, "out of memory");
        return;
    }
    if (fedc_sa_client_share(&c->sa, si->id, (int)si->n, (int)si->h, (int)si->threshold, si->peers,
                             size, si->reveals, boxes, &d)) {
        sa_abandon(c, d.msg);
        free(boxes);
        return;
    }
    fedc_msg m;
    env_init(c, &m, FEDC_MSG_SA_SHARES, e->round);
    m.sa_shares.counter = si->counter;
    m.sa_shares.n_shares = (size_t)(size - 1);
    m.sa_shares.shares = boxes;
    (void)send_msg(c, &m);
    free(boxes);
}

static void on_sa_mask_ins(cl *c, const fedc_msg *e) {
    const fedc_sa_boxes *mi = &e->sa_mask_ins;
    if (!sa_current(c, e, mi->counter))
        return;
    fedc_fault_point("sa-mask", e->round);
    fedc_diag d;
    fedc_err rc = fedc_sa_client_collect(&c->sa, mi->shares, (int)mi->n_shares, &d);
    if (rc) {
        sa_abandon(c, d.msg);
        return;
    }
    c->sa_collected = 1;
    sa_try_send(c);
}

static void on_sa_consist_ins(cl *c, const fedc_msg *e) {
    const fedc_sa_consist_ins *ci = &e->sa_consist_ins;
    if (!sa_current(c, e, ci->counter))
        return;
    uint8_t sig[FEDC_SA_SIG_BYTES];
    fedc_diag d;
    if (!c->sa_sent ||
        fedc_sa_client_consist(&c->sa, ci->survivors, (int)ci->n_survivors,
                               c->cfg->self ? c->cfg->self->sign_sk : NULL, sig, &d)) {
        sa_abandon(c, c->sa_sent ? d.msg : "survivor set sent before our input; refused");
        return;
    }
    fedc_msg m;
    env_init(c, &m, FEDC_MSG_SA_CONSIST, e->round);
    m.sa_consist.counter = ci->counter;
    m.sa_consist.sig = sig;
    (void)send_msg(c, &m);
}

static void on_sa_unmask_ins(cl *c, const fedc_msg *e) {
    const fedc_sa_unmask_ins *ui = &e->sa_unmask_ins;
    if (!sa_current(c, e, ui->counter))
        return;
    fedc_fault_point("sa-unmask", e->round);
    fedc_sa_reveal r[FEDC_SA_MAX_NBRS];
    int k = 0;
    fedc_diag d;
    if (fedc_sa_client_unmask(&c->sa, ui->sigs, (int)ui->n_sigs, r, &k, &d)) {
        sa_abandon(c, d.msg);
        return;
    }
    fedc_msg m;
    env_init(c, &m, FEDC_MSG_SA_UNMASK, e->round);
    m.sa_unmask.counter = ui->counter;
    m.sa_unmask.n_shares = (size_t)k;
    m.sa_unmask.shares = r;
    (void)send_msg(c, &m);
    sodium_memzero(r, sizeof r);
    /* The session is over for us: nothing more will be revealed. */
    fedc_sa_client_end(&c->sa);
    c->sa_on = 0;
}

/* ---- round 0 ------------------------------------------------------------------------------- */

/* Returns -1 to go on, or an exit code. */
static int on_stats_request(cl *c, const fedc_msg *e) {
    const fedc_secagg_ins *si = e->stats_request.has_secagg ? &e->stats_request.secagg : NULL;
    if (!si && plain_refused(c, e->round, "statistics request"))
        return 2;
    int nf = c->desc.n_features;
    double *sum = calloc((size_t)nf, 8), *sq = calloc((size_t)nf, 8);
    uint64_t *cc = calloc((size_t)(c->n_classes > 1 ? c->n_classes : 1), 8);
    uint64_t rows = c->rows.train_rows;
    if (!sum || !sq || !cc) {
        logm(c, "out of memory for statistics");
        goto out;
    }
    fedc_diag sd;
    if (c->model->stats && c->model->stats(c->model->ctx, sum, sq, cc, &rows, &sd)) {
        logm(c, "round 0: the model's statistics failed: %s; sending none", sd.msg);
        memset(sum, 0, 8 * (size_t)nf);
        memset(sq, 0, 8 * (size_t)nf);
        memset(cc, 0, 8 * (size_t)(c->n_classes > 1 ? c->n_classes : 1));
        rows = c->rows.train_rows;
    }
    if (si) {
        int k = c->task == FEDC_TASK_REGRESSION ? 0 : c->n_classes;
        if (sa_open(c, e->round, FEDC_SA_STAGE_STATS, si, fedc_sa_stats_len(nf, k)) == 0) {
            fedc_diag d;
            fedc_err rc = fedc_sa_stats_encode(c->sa_vec, rows, sum, sq, nf, cc, k, &d);
            fedc_fault_point("stats", 0);
            sa_input_ready(c, rc, d.msg);
        }
        goto out;
    }
    fedc_msg m;
    env_init(c, &m, FEDC_MSG_STATS, e->round);
    fedc_stats *s = &m.stats;
    s->n_rows = rows;
    s->n_sum = s->n_sum_sq = (size_t)nf;
    s->sum = sum;
    s->sum_sq = sq;
    if (c->task != FEDC_TASK_REGRESSION) {
        s->n_class_count = (size_t)c->n_classes;
        s->class_count = cc;
    }
    fedc_fault_point("stats", 0);
    (void)send_msg(c, &m);
out:
    free(sum);
    free(sq);
    free(cc);
    return -1;
}

/* Hands the agreed statistics to the model when they change. */
static int apply_stats(cl *c, const float *mean, const float *std) {
    size_t nf = (size_t)c->desc.n_features;
    if (c->mean && memcmp(c->mean, mean, 4 * nf) == 0 && memcmp(c->std, std, 4 * nf) == 0)
        return 0;
    wait_training(c);
    free(c->mean);
    free(c->std);
    c->mean = malloc(4 * nf);
    c->std = malloc(4 * nf);
    if (!c->mean || !c->std) {
        logm(c, "out of memory standardising the data");
        return -1;
    }
    memcpy(c->mean, mean, 4 * nf);
    memcpy(c->std, std, 4 * nf);
    fedc_diag d;
    if (c->model->set_stats && c->model->set_stats(c->model->ctx, mean, std, &c->rows, &d)) {
        logm(c, "%s", d.msg);
        return -1;
    }
    return 0;
}

/* ---- training ------------------------------------------------------------------------------ */

static void *train_main(void *arg) {
    cl *c = arg;
    job *j = &c->job;
    double t0 = fedc_clock_s();
    fedc_model_fit_out rep;
    memset(&rep, 0, sizeof rep);
    fedc_diag d = {{0}};
    size_t n = j->n;
    memcpy(j->local, j->global, 4 * n);
    j->rc = j->model->fit(j->model->ctx, j->global, j->local, n, &j->hp, &rep, &d);
    j->dp_steps = rep.dp_steps;
    j->dp_q = rep.dp_q;
    snprintf(j->msg, sizeof j->msg, "%s", d.msg);
    j->loss = rep.loss;
    for (size_t i = 0; i < n && !j->rc; i++) {
        j->update[i] = j->local[i] - j->global[i];
        if (!isfinite(j->update[i])) {
            snprintf(j->msg, sizeof j->msg, "the model's fit returned a non-finite weight (%zu)",
                     i);
            j->rc = FEDC_ERANGE;
        }
    }
    j->unclipped = 1;
    j->norm = -1;
    if (j->clip_norm > 0)
        j->unclipped = fedc_l2_clip(j->update, n, (double)j->clip_norm, &j->norm);
    j->seconds = fedc_clock_s() - t0;
    char b = 1;
    ssize_t w = write(c->pipe_fd[1], &b, 1);
    (void)w;
    return NULL;
}

/* --dp-state: the privacy spent so far, as text: "fedc-dp-state 1", then "steps N", "q Q",
 * "sigma S" (full precision). Returns 0 (loaded, or no file yet), or -1 after logging why. */
static int dp_state_load(cl *c) {
    const char *path = c->cfg->dp_state;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        logm(c, "--dp-state %s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    char magic[32] = "";
    long steps = -1;
    double q = -1, sigma = -1;
    int ok = fscanf(f, "%31s 1 steps %ld q %lf sigma %lf", magic, &steps, &q, &sigma) == 4 &&
             strcmp(magic, "fedc-dp-state") == 0 && steps >= 0 && q > 0 && q <= 1 && sigma > 0 &&
             isfinite(sigma);
    fclose(f);
    if (!ok) {
        logm(c,
             "--dp-state %s: not a DP state file (expected \"fedc-dp-state 1\", then steps, q "
             "and sigma); refusing to guess how much privacy was spent",
             path);
        return -1;
    }
    if (c->cfg->dp_noise > 0 && (float)sigma != c->cfg->dp_noise) {
        logm(c,
             "--dp-state %s: the steps so far used noise multiplier %.17g, not --dp-noise %g; "
             "the accountant cannot mix them",
             path, sigma, (double)c->cfg->dp_noise);
        return -1;
    }
    c->dp_steps = steps;
    c->dp_q = q;
    c->dp_sigma = (float)sigma;
    logm(c,
         "--dp-state %s: %ld DP-SGD step(s) spent already (sampling rate %.6g, noise multiplier "
         "%.6g)",
         path, steps, q, sigma);
    return 0;
}

static int dp_state_save(cl *c) {
    char buf[256];
    int len = snprintf(buf, sizeof buf, "fedc-dp-state 1\nsteps %ld\nq %.17g\nsigma %.17g\n",
                       c->dp_steps, c->dp_q, (double)c->dp_sigma);
    fedc_diag d;
    if (fedc_write_atomic(c->cfg->dp_state, buf, (size_t)len, &d)) {
        logm(c, "--dp-state: %s; not training any more (the privacy spent could not be recorded)",
             d.msg);
        return -1;
    }
    return 0;
}

static void refuse_fit(cl *c, uint32_t round, fedc_err code, const char *why);

/* Record-level DP-SGD for one round of local training: the noise multiplier (derived from
 * --target-epsilon for all planned rounds on the first), and whether the budget allows this
 * round. Returns 0 to train, -1 when it must not (said and logged). */
static int dp_plan(cl *c, uint32_t round, const fedc_hyper *hp) {
    const client_cfg *cfg = c->cfg;
    int n = (int)c->rows.fit_rows;
    double q = n > 0 ? (double)hp->batch / n : 1.0;
    q = q > 1.0 ? 1.0 : q;
    long per_round = (long)hp->local_epochs * (long)((n + (int)hp->batch - 1) / (int)hp->batch);
    fedc_diag d;
    char why[FEDC_DIAG_MAX + 160];
    if (c->dp_steps > 0 && fabs(q - c->dp_q) > 1e-12 * q) {
        snprintf(why, sizeof why,
                 "DP-SGD: this round samples at rate %.6g, the %ld step(s) so far at %.6g (another "
                 "batch size or data); the accountant cannot mix them: not training",
                 q, c->dp_steps, c->dp_q);
        refuse_fit(c, round, FEDC_EINVAL, why);
        c->dp_exhausted = 1;
        return -1;
    }
    if (c->dp_sigma <= 0) {
        double sigma = cfg->dp_noise;
        if (sigma < 0) {
            double steps = (double)per_round * (double)(c->rounds > 0 ? c->rounds : 1);
            if (fedc_dp_sigma_for(&sigma, q, steps, cfg->dp_delta, cfg->target_epsilon, &d)) {
                snprintf(why, sizeof why, "DP-SGD: --target-epsilon %g: %s", cfg->target_epsilon,
                         d.msg);
                refuse_fit(c, round, FEDC_EINVAL, why);
                c->dp_exhausted = 1;
                return -1;
            }
            logm(c,
                 "DP-SGD: noise multiplier %.4f keeps %d round(s) of %ld step(s) at sampling "
                 "rate %.4g within epsilon %g (delta %g)",
                 sigma, c->rounds, per_round, q, cfg->target_epsilon, cfg->dp_delta);
        }
        c->dp_sigma = (float)sigma;
        if ((double)c->dp_sigma < sigma) /* never below what the target needs */
            c->dp_sigma = nextafterf(c->dp_sigma, INFINITY);
    }
    if (cfg->target_epsilon > 0) {
        double eps = NAN, order = 0;
        if (c->dp_exhausted) {
            snprintf(why, sizeof why,
                     "privacy budget spent: our DP-SGD epsilon allows no more training "
                     "(--target-epsilon %g)",
                     cfg->target_epsilon);
            refuse_fit(c, round, FEDC_ERANGE, why);
            return -1;
        }
        if (fedc_dp_epsilon(&eps, &order, q, c->dp_sigma, (double)(c->dp_steps + per_round),
                            cfg->dp_delta, &d) ||
            eps > cfg->target_epsilon) {
            snprintf(why, sizeof why,
                     "privacy budget spent: round %u would bring our DP-SGD epsilon to %.3f, "
                     "beyond --target-epsilon %g; not training any more",
                     round, eps, cfg->target_epsilon);
            refuse_fit(c, round, FEDC_ERANGE, why);
            c->dp_exhausted = 1;
            return -1;
        }
    }
    return 0;
}

static void start_training(cl *c, uint32_t round, const float *w, const fedc_hyper *hp,
                           float pos_weight) {
    if (c->cfg->dp_clip > 0 && dp_plan(c, round, hp))
        return;
    job *j = &c->job;
    memcpy(j->global, w, 4 * j->n);
    j->round = round;
    j->model = c->model;
    fedc_model_fit t;
    memset(&t, 0, sizeof t);
    t.round = round;
    t.local_epochs = (int)hp->local_epochs;
    t.batch = (int)hp->batch;
    t.optimizer = (int)hp->optimizer;
    t.lr = hp->lr;
    t.l2 = hp->l2;
    t.prox_mu = hp->prox_mu;
    t.dropout = hp->dropout;
    t.pos_weight = c->task == FEDC_TASK_BINARY ? pos_weight : 1.0f;
    t.seed = fedc_fl_client_seed(c->seed, c->cfg->name, round);
    t.threads = c->cfg->threads;
    j->hp = t;
    j->clip_norm = hp->clip_norm;
    j->uniform_weight = hp->uniform_weight;
    j->client_dp = hp->client_dp;
    if (c->cfg->dp_clip > 0) {
        if (!c->dp_live) {
            fedc_dp_noise_init(&c->dp_rng);
            c->dp_live = 1;
        }
        j->hp.dp_clip = c->cfg->dp_clip;
        j->hp.dp_noise = c->dp_sigma;
        j->hp.dp_poisson = c->cfg->dp_poisson;
        j->hp.dp_rng = &c->dp_rng;
    }
    fedc_fault_point("fit", round);
    if (pthread_create(&c->thread, NULL, train_main, c) != 0) {
        logm(c, "cannot start the training thread");
        return;
    }
    c->busy = 1;
}

static int on_fit_ins(cl *c, const fedc_msg *e) {
    const fedc_fit_ins *f = &e->fit_ins;
    if (!f->has_secagg && plain_refused(c, e->round, "training request"))
        return 2;
    if (apply_stats(c, f->mean, f->std)) {
        logm(c, "out of memory standardising the data");
        return -1;
    }
    if (f->has_secagg &&
        sa_open(c, e->round, FEDC_SA_STAGE_FIT, &f->secagg, fedc_sa_fit_len(c->n_params)))
        return -1;
    /* The update is clipped to the smaller of the two bounds the coordinator sets: clip_norm
     * (client-level DP, norm-bound) and update_norm_bound (every run; the coordinator checks the
     * aggregate against it). */
    fedc_hyper hp = f->hp;
    if (f->update_norm_bound > 0 && !(hp.clip_norm > 0 && hp.clip_norm <= f->update_norm_bound))
        hp.clip_norm = f->update_norm_bound;
    if (c->busy) {
        /* Still training an earlier round (it was retried or we were late): run this next. */
        fedc_tensor_read(c->pending_w, &f->weights);
        c->pending = 1;
        c->pending_round = e->round;
        c->pending_hp = hp;
        c->pending_pw = f->pos_weight;
        return -1;
    }
    fedc_tensor_read(c->pending_w, &f->weights);
    start_training(c, e->round, c->pending_w, &hp, f->pos_weight);
    return -1;
}

/* Test-only misdeeds (FEDC_FAULT misbehave:upd-scale|upd-flip|upd-nan|upd-zero): the update of a
 * broken or hostile client, sent in place of the real one (after clipping: such a client ignores
 * it). upd-weight (on_training_done) overstates the client's FedAvg weight 4x: its weight in the
 * secure sum (capped at 1), its example count in a plain update (the weight there). */
static void corrupt_update(job *j) {
    size_t n = j->n;
    if (fedc_fault_point("upd-scale", j->round))
        for (size_t i = 0; i < n; i++)
            j->update[i] *= 100.0f;
    if (fedc_fault_point("upd-flip", j->round))
        for (size_t i = 0; i < n; i++)
            j->update[i] = -j->update[i];
    if (fedc_fault_point("upd-zero", j->round))
        memset(j->update, 0, 4 * n);
    if (fedc_fault_point("upd-nan", j->round)) {
        j->update[0] = NAN;
        j->update[n / 2] = INFINITY;
    }
}

/* We will not train this round: say why, so that the round does not wait for us until its
 * deadline, and leave the secure session. */
static void refuse_fit(cl *c, uint32_t round, fedc_err code, const char *why) {
    logm(c, "round %u: %s", round, why);
    fedc_msg m;
    env_init(c, &m, FEDC_MSG_ERROR, round);
    m.error.code = code;
    m.error.reason = why;
    (void)send_msg(c, &m);
    if (c->sa_on && c->sa_stage == FEDC_SA_STAGE_FIT && c->sa_round == round)
        sa_abandon(c, why);
}

/* --metrics-json: one JSON object per local training, appended with one write and fsync (a crash
 * leaves the whole line or none). The file stays on this machine. */
static void append_metrics(cl *c, const job *j, double eps) {
    fedc_json o;
    fedc__json_begin(&o);
    fedc__json_uint(&o, "round", j->round);
    fedc__json_int(&o, "train_rows", (int)c->rows.train_rows);
    /* -1 rather than null: readers of this file have always seen a number here. */
    fedc__json_num(&o, "train_loss", isfinite(j->loss) ? j->loss : -1.0, 6);
    fedc__json_fixed(&o, "seconds", j->seconds, 4);
    if (c->cfg->dp_clip > 0) {
        fedc__json_num(&o, "dp_epsilon", eps, 6);
        fedc__json_num(&o, "dp_delta", c->cfg->dp_delta, 17);
        fedc__json_int(&o, "dp_steps", c->dp_steps);
        fedc__json_num(&o, "dp_q", c->dp_q, 17);
        fedc__json_num(&o, "dp_noise", (double)c->dp_sigma, 17);
        fedc__json_num(&o, "dp_clip", (double)c->cfg->dp_clip, 6);
    }
    fedc_diag d;
    fedc_err rc = FEDC_ENOMEM;
    if (o.failed)
        fedc_diag_set(&d, "%s: out of memory building the JSON line", c->cfg->metrics_json);
    else
        rc = fedc__jsonl_append_path(c->cfg->metrics_json, o.obj, &d);
    if (rc)
        logm(c, "--metrics-json: round %u not recorded: %s", j->round, d.msg);
    fedc__json_end(&o);
}

static void on_training_done(cl *c) {
    wait_training(c);
    job *j = &c->job;
    if (!j->rc && j->norm >= 0)
        logm(c, "round %u: update norm %.4g%s %.4g", j->round, j->norm,
             j->unclipped ? " within the clip norm" : ", clipped to", (double)j->clip_norm);
    if (!j->rc)
        corrupt_update(j);
    double eps = NAN;
    if (!j->rc && c->cfg->dp_clip > 0) {
        c->dp_steps += j->dp_steps;
        c->dp_q = j->dp_q;
        if (c->cfg->dp_state && dp_state_save(c))
            c->dp_exhausted = 1;
        double order = 0;
        fedc_diag dd;
        if (fedc_dp_epsilon(&eps, &order, c->dp_q, c->dp_sigma, (double)c->dp_steps,
                            c->cfg->dp_delta, &dd) == FEDC_OK)
            logm(c,
                 "round %u: DP-SGD epsilon %.3f at delta %g after %ld step(s) (sampling rate "
                 "%.4g, noise multiplier %.4g, clip %g)",
                 j->round, eps, c->cfg->dp_delta, c->dp_steps, c->dp_q, (double)c->dp_sigma,
                 (double)c->cfg->dp_clip);
    }
    if (!j->rc && c->cfg->metrics_json)
        append_metrics(c, j, eps);
    if (j->rc) {
        char reason[FEDC_DIAG_MAX + 32];
        snprintf(reason, sizeof reason, "local training failed: %s", j->msg);
        refuse_fit(c, j->round, j->rc, reason);
    } else if (c->sa_on && c->sa_stage == FEDC_SA_STAGE_FIT && c->sa_round == j->round) {
        if (!c->sa_ready) {
            /* Our FedAvg weight: our share of the federation's training rows (capped at 1 in
             * case rows were added after round 0). */
            double w = c->sa_total_rows > 0 ? (double)c->rows.train_rows / c->sa_total_rows : 0;
            w = w > 1.0 ? 1.0 : w;
            if (j->uniform_weight)
                w = 1.0; /* DP-FedAvg: every update counts once (the sensitivity bound) */
            double loss = isfinite(j->loss) && j->loss >= 0 ? j->loss : 0.0;
            if (c->cfg->dp_clip > 0 || j->client_dp)
                loss = 0.0; /* under DP it would leave un-noised: withheld */
            if (fedc_fault_point("upd-weight", j->round)) {
                logm(c, "misbehaving (fault injection): claiming 4x our FedAvg weight");
                w = fmin(1.0, 4.0 * w);
            }
            fedc_diag d;
            fedc_err rc = w > 0 ? fedc_sa_fit_encode(c->sa_vec, j->update, j->n, w, loss,
                                                     c->rows.train_rows, j->unclipped, &c->sa_q, &d)
                                : FEDC_EINVAL;
            if (w <= 0)
                snprintf(d.msg, sizeof d.msg, "the coordinator gave no row total for weights");
            fedc_fault_point("fit-res", j->round);
            sa_input_ready(c, rc, d.msg);
        }
        c->last_fit_round = j->round;
        c->last_loss = j->loss;
        c->last_secs = j->seconds;
        c->last_rows = (int)c->rows.train_rows;
    } else if (c->sa_on || !c->cfg->allow_plain) {
        /* Trained for a secure session that is gone (the round was retried): nothing to send. */
    } else {
        fedc_msg m;
        env_init(c, &m, FEDC_MSG_FIT_RES, j->round);
        fedc_fit_res *r = &m.fit_res;
        /* The update goes from our buffer as the raw frame, without a copy (little-endian host
         * assumed, as for the initial values in send_join). */
        r->update.count = j->n;
        r->update.data = j->update;
        r->n_examples = c->rows.train_rows; /* real rows, not augmented ones */
        if (fedc_fault_point("upd-weight", j->round)) {
            logm(c, "misbehaving (fault injection): claiming 4x our rows");
            r->n_examples *= 4;
        }
        r->train_loss = isfinite(j->loss) && j->loss >= 0 ? j->loss : 0.0;
        if (c->cfg->dp_clip > 0 || j->client_dp)
            r->train_loss = 0.0; /* under DP it would leave un-noised: withheld */
        r->seconds = j->seconds;
        r->unclipped = j->clip_norm > 0 && j->unclipped;
        fedc_fault_point("fit-res", j->round);
        (void)send_msg(c, &m);
        c->last_fit_round = j->round;
        c->last_loss = j->loss;
        c->last_secs = j->seconds;
        c->last_rows = (int)c->rows.train_rows;
    }
    if (c->pending) {
        c->pending = 0;
        start_training(c, c->pending_round, c->pending_w, &c->pending_hp, c->pending_pw);
    }
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static int on_evaluate_ins(cl *c, const fedc_msg *e) {
    const fedc_evaluate_ins *ei = &e->evaluate_ins;
    if (!ei->has_secagg && plain_refused(c, e->round, "evaluation request"))
        return 2;
    if (ei->n_mean && apply_stats(c, ei->mean, ei->std)) {
        logm(c, "out of memory standardising the data");
        return -1;
    }
    fedc_eval_acc *a = c->eval;
    fedc_eval_acc_reset(a);
    fedc_tensor_read(c->eval_w, &ei->weights);
    if (c->mean) {
        /* Scored only once the statistics are agreed (before round 0 ends they are not). A
         * retried round may be training meanwhile: evaluate runs beside fit (client_model.h). */
        fedc_diag d;
        if (c->model->evaluate(c->model->ctx, c->eval_w, c->n_params, ei->threshold, a, &d)) {
            logm(c, "cannot evaluate: %s", d.msg);
            fedc_eval_acc_reset(a);
            return -1;
        }
    }
    if (ei->has_secagg) {
        if (sa_open(c, e->round, FEDC_SA_STAGE_EVAL, &ei->secagg, fedc_sa_eval_len(a)) == 0) {
            fedc_diag d;
            fedc_err rc = fedc_sa_eval_encode(c->sa_vec, a, &c->sa_q, &d);
            fedc_fault_point("eval-res", e->round);
            sa_input_ready(c, rc, d.msg);
        }
    }
    fedc_msg m;
    env_init(c, &m, FEDC_MSG_EVALUATE_RES, e->round);
    fedc_evaluate_res *r = &m.evaluate_res;
    r->n = a->n;
    r->log_loss_sum = a->loss_sum;
    if (c->task == FEDC_TASK_BINARY && a->n) {
        r->n_hist_pos = r->n_hist_neg = a->bins;
        r->hist_pos = a->hist_pos;
        r->hist_neg = a->hist_neg;
        r->tp = a->tp;
        r->fp = a->fp;
        r->tn = a->tn;
        r->fn = a->fn;
    } else if (c->task == FEDC_TASK_MULTICLASS && a->n) {
        r->n_confusion = (size_t)a->n_classes * (size_t)a->n_classes;
        r->confusion = a->confusion;
    } else if (c->task == FEDC_TASK_REGRESSION) {
        r->sse = a->sse;
        r->sum_y = a->sum_y;
        r->sum_y2 = a->sum_y2;
    }
    if (!ei->has_secagg) {
        fedc_fault_point("eval-res", e->round);
        (void)send_msg(c, &m);
    }
    if (!c->cfg->self)
        logm(c, "WARNING: --insecure: round %u travelled without encryption", e->round);
    if (!c->cfg->quiet) {
        fedc_eval_summary s;
        fedc_eval_acc_summary(a, &s);
        char fit[128];
        if (c->last_fit_round == e->round)
            snprintf(fit, sizeof fit, "train_loss %.4f (%d rows, %.2f s)", c->last_loss,
                     c->last_rows, c->last_secs);
        else
            snprintf(fit, sizeof fit, "not selected for training");
        if (c->task == FEDC_TASK_BINARY)
            printf("round %3u/%d  %s  local val_roc_auc %.4f  val_pr_auc %.4f (%llu rows)\n",
                   e->round, c->rounds, fit, s.roc_auc, s.pr_auc, (unsigned long long)s.n);
        else if (c->task == FEDC_TASK_MULTICLASS)
            printf("round %3u/%d  %s  local val_accuracy %.4f (%llu rows)\n", e->round, c->rounds,
                   fit, s.accuracy, (unsigned long long)s.n);
        else
            printf("round %3u/%d  %s  local val_rmse %.4f (%llu rows)\n", e->round, c->rounds, fit,
                   s.rmse, (unsigned long long)s.n);
        fflush(stdout);
    }
    return -1;
}

/* ---- the loop -------------------------------------------------------------------------------- */

/* Handles one message; returns -1 to continue, else the exit code. */
static int handle(cl *c, const fedc_inbox *in) {
    const fedc_msg *e = &in->msg;
    c->last_heard = fedc_clock_s();
    switch (e->kind) {
    case FEDC_MSG_WELCOME: {
        int rc = on_welcome(c, e);
        return rc ? rc : -1;
    }
    case FEDC_MSG_BYE: {
        /* The code decides; the reason is for the log. */
        const char *r = e->bye.reason;
        switch (e->bye.code) {
        case FEDC_BYE_COMPLETE:
            logm(c, "the coordinator says: %s", r);
            return 0;
        case FEDC_BYE_REFUSED:
            logm(c, "the coordinator refused us: %s", r);
            return 2;
        case FEDC_BYE_FAILED:
            logm(c, "the coordinator says: %s", r);
            return 1;
        default:
            logm(c, "the coordinator says: %s; waiting for it to come back", r);
            c->joined = 0;
            return -1;
        }
    }
    case FEDC_MSG_ERROR:
        if (e->error.kind == FEDC_ERROR_JOIN_AGAIN) {
            if (c->joined)
                logm(c, "the coordinator does not know us (it restarted?); joining again");
            c->joined = 0;
            send_join(c);
        } else {
            logm(c, "the coordinator refused a message: %s", e->error.reason);
        }
        return -1;
    case FEDC_MSG_HEARTBEAT:
        return -1;
    default:
        break;
    }
    /* Everything else belongs to our run. */
    if (!c->have_run || !e->run_id || memcmp(e->run_id, c->run_id, FEDC_RUN_ID_BYTES) != 0) {
        logm(c, "ignored %s from another run", fedc_msg_kind_name(e->kind));
        return -1;
    }
    switch (e->kind) {
    case FEDC_MSG_STATS_REQUEST:
        return on_stats_request(c, e);
    case FEDC_MSG_FIT_INS:
        return on_fit_ins(c, e);
    case FEDC_MSG_EVALUATE_INS:
        return on_evaluate_ins(c, e);
    case FEDC_MSG_SA_SHARE_INS:
        on_sa_share_ins(c, e);
        break;
    case FEDC_MSG_SA_MASK_INS:
        on_sa_mask_ins(c, e);
        break;
    case FEDC_MSG_SA_UNMASK_INS:
        on_sa_unmask_ins(c, e);
        break;
    case FEDC_MSG_SA_GRAPH_INS:
        on_sa_graph_ins(c, e);
        break;
    case FEDC_MSG_SA_CONSIST_INS:
        on_sa_consist_ins(c, e);
        break;
    default:
        logm(c, "unexpected %s from the coordinator; ignored", fedc_msg_kind_name(e->kind));
        break;
    }
    return -1;
}

static void send_heartbeat(cl *c) {
    fedc_msg m;
    env_init(c, &m, FEDC_MSG_HEARTBEAT, 0);
    m.heartbeat.seq = ++c->hb_seq;
    (void)send_msg(c, &m);
    c->last_hb = fedc_clock_s();
}

void fedc_client_defaults(client_cfg *c) {
    memset(c, 0, sizeof *c);
    c->heartbeat_ms = 1000;
    c->coordinator_timeout_s = 600;
    c->max_msg = (size_t)256 << 20;
    c->dp_noise = -1;
    c->dp_delta = 1e-5;
    c->dp_poisson = 1;
}

fedc_err fedc_client_new(fedc_client **out, const client_cfg *cfg, fedc_diag *d) {
    *out = NULL;
    if (!cfg || !cfg->name || !cfg->connect || (!cfg->model && (!cfg->data || !cfg->label))) {
        fedc_diag_set(d, "a client needs a name, a coordinator endpoint, and a model or a data "
                         "file and a label");
        return FEDC_EINVAL;
    }
    if (cfg->model && (!cfg->model->describe || !cfg->model->begin || !cfg->model->fit ||
                       !cfg->model->evaluate)) {
        fedc_diag_set(d, "the model lacks a required callback (describe, begin, fit, evaluate)");
        return FEDC_EINVAL;
    }
    fedc_client *p = calloc(1, sizeof *p);
    if (!p) {
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    p->cfg = cfg;
    atomic_init(&p->stop, 0);
    *out = p;
    return FEDC_OK;
}

void fedc_client_stop(fedc_client *p) {
    atomic_store(&p->stop, 1);
}

void fedc_client_destroy(fedc_client **p) {
    free(*p);
    *p = NULL;
}

/* Checks what a model says about itself (a user's code: say what is wrong). Returns 0 or 1. */
static int model_desc_bad(cl *c, const fedc_model_desc *m) {
    const char *why = NULL;
    int want = m->task == FEDC_TASK_BINARY ? 2 : m->task == FEDC_TASK_REGRESSION ? 1 : 0;
    if ((unsigned)m->task > FEDC_TASK_REGRESSION)
        why = "task is not binary, multiclass or regression";
    else if ((want && m->n_classes != want) || (!want && m->n_classes < 3))
        why = "the class count does not fit the task (2 binary, 1 regression, >= 3 multiclass)";
    else if (m->n_features < 1 || m->n_features > FEDC_MAX_FEATURES || !m->feature_names ||
             !m->label)
        why = "it needs 1..100000 feature names and a label name";
    else if (m->n_params > FEDC_MAX_PARAMS)
        why = "more parameters than a message can carry (2^30)";
    else if (m->n_params && (!m->kind || !m->kind[0] || strlen(m->kind) > FEDC_MODEL_KIND_MAX))
        why = "a model of its own needs a kind of 1..64 characters";
    for (int i = 0; !why && i < m->n_features; i++)
        if (!m->feature_names[i])
            why = "a feature name is missing";
    if (why)
        logm(c, "the model's description: %s", why);
    return why != NULL;
}

static int stopping(const cl *c) {
    return atomic_load(c->stop) != 0;
}

int fedc_client_run(fedc_client *p) {
    const client_cfg *cfg = p->cfg;
    cl c_, *c = &c_;
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->stop = &p->stop;
    c->pipe_fd[0] = c->pipe_fd[1] = -1;
    fedc_fault_init(cfg->name);
    int code = 2;
    fedc_diag d = {{0}};
    /* The model and its data first: a bad file is the user's to fix before anything
     * connects. */
    c->model = (fedc_client_model *)cfg->model;
    if (!c->model) {
        fedc_mlp_model_cfg mc;
        memset(&mc, 0, sizeof mc);
        mc.data = cfg->data;
        mc.label = cfg->label;
        mc.drop = cfg->drop;
        mc.n_drop = cfg->n_drop;
        mc.force_regression = cfg->force_regression;
        mc.augment = cfg->augment;
        mc.quiet = cfg->quiet;
        if (fedc_mlp_model_new(&c->own_mlp, &mc, &d)) {
            logm(c, "%s", d.msg);
            goto out;
        }
        c->model = c->own_mlp;
    }
    if (c->model->describe(c->model->ctx, &c->desc, &d)) {
        logm(c, "the model: %s", d.msg);
        goto out;
    }
    if (model_desc_bad(c, &c->desc))
        goto out;
    c->task = c->desc.task;
    c->n_classes = c->desc.n_classes;
    if (cfg->dp_clip > 0 && !c->model->dp_sgd) {
        logm(c,
             "--dp-clip: the model '%s' does not implement record-level DP-SGD (client-level "
             "DP-FedAvg, set at the coordinator, works with any model)",
             c->desc.kind ? c->desc.kind : "");
        goto out;
    }
    if (cfg->dp_clip > 0 && cfg->dp_state && dp_state_load(c))
        goto out;
    code = 1;
    if (pipe(c->pipe_fd) != 0 || fcntl(c->pipe_fd[0], F_SETFL, O_NONBLOCK) != 0) {
        logm(c, "cannot create a pipe: %s", strerror(errno));
        goto out;
    }
    c->zctx = fedc_net_context_new();
    fedc_err crc = !c->zctx ? FEDC_EIO
                   : cfg->self
                       ? fedc_net_connect_secure(&c->ep, c->zctx, cfg->connect, cfg->max_msg,
                                                 cfg->self, cfg->coordinator->curve_pk, &d)
                       : fedc_net_connect(&c->ep, c->zctx, cfg->connect, cfg->max_msg, &d);
    if (crc) {
        logm(c, "--connect: %s", c->zctx ? d.msg : "cannot create a ZeroMQ context");
        code = 2;
        goto out;
    }
    logm(c, "model '%s': %d features, task %s; connecting to %s", c->desc.kind ? c->desc.kind : "",
         c->desc.n_features, fedc_task_name(c->task), cfg->connect);
    c->last_heard = fedc_clock_s();
    send_join(c);
    fedc_net_event_state ev;
    memset(&ev, 0, sizeof ev);
    double no_handshake_since = fedc_clock_s();
    code = -1;
    while (code < 0 && !stopping(c)) {
        unsigned ready = 0;
        fedc_diag pd;
        fedc_err prc = fedc_net_wait(c->ep, c->pipe_fd[0], cfg->self != NULL, 50, &ready, &pd);
        int n = ready != 0;
        if (cfg->self) {
            fedc_net_events(c->ep, &ev);
            if (ev.auth_failed) {
                logm(c,
                     "the coordinator at %s does not accept our key '%s' (ZAP status %d): ask its "
                     "operator to put %s.key in the --allow directory",
                     cfg->connect, cfg->self->name, ev.auth_status, cfg->self->name);
                code = 2;
                break;
            }
            double give_up = cfg->coordinator_timeout_s < HANDSHAKE_GIVE_UP_S
                                 ? cfg->coordinator_timeout_s
                                 : HANDSHAKE_GIVE_UP_S;
            if (ev.handshake_ok)
                no_handshake_since = fedc_clock_s();
            else if (ev.handshake_failed && fedc_clock_s() - no_handshake_since >= give_up) {
                logm(c,
                     "the CurveZMQ handshake with %s keeps failing (%d attempts): is "
                     "--coordinator-key the coordinator's public key?",
                     cfg->connect, ev.handshake_failed);
                code = 2;
                break;
            }
        }
        if (prc) {
            logm(c, "%s", pd.msg);
            code = 1;
            break;
        }
        if ((ready & FEDC_NET_READY_FD) && c->busy)
            on_training_done(c);
        for (int k = 0; n > 0 && k < 64 && code < 0; k++) {
            fedc_inbox in;
            fedc_msg_expect x = {0};
            x.round = -1;
            x.max_bytes = cfg->max_msg;
            if (c->have_run) {
                x.n_params = c->n_params;
                x.n_features = (uint32_t)c->desc.n_features;
            }
            fedc_err rc = fedc_net_recv(c->ep, &in, &x, 0, &d);
            if (rc == FEDC_EEMPTY)
                break;
            if (rc == FEDC_OK)
                code = handle(c, &in);
            else
                logm(c, "refused a message from the coordinator: %s", d.msg);
            fedc_inbox_release(&in);
        }
        double t = fedc_clock_s();
        if (!c->joined && t - c->last_join > JOIN_RETRY_S)
            send_join(c);
        if (c->joined && t - c->last_hb > cfg->heartbeat_ms / 1000.0)
            send_heartbeat(c);
        if (code < 0 && t - c->last_heard > cfg->coordinator_timeout_s) {
            if (cfg->self && (fedc_net_events(c->ep, &ev), ev.auth_failed)) {
                /* Refused in the very last turn: the reason, not the silence. */
                logm(c,
                     "the coordinator at %s does not accept our key '%s' (ZAP status %d): ask its "
                     "operator to put %s.key in the --allow directory",
                     cfg->connect, cfg->self->name, ev.auth_status, cfg->self->name);
                code = 2;
            } else if (cfg->self && ev.handshake_failed && !ev.handshake_ok) {
                logm(c,
                     "the CurveZMQ handshake with %s keeps failing (%d attempts in %.0f s): is "
                     "--coordinator-key the coordinator's public key?",
                     cfg->connect, ev.handshake_failed, cfg->coordinator_timeout_s);
                code = 2;
            } else {
                logm(c, "no word from the coordinator at %s for %.0f s; giving up", cfg->connect,
                     cfg->coordinator_timeout_s);
                code = 1;
            }
        }
    }
    if (stopping(c)) {
        logm(c, "stopping on request");
        fedc_msg m;
        env_init(c, &m, FEDC_MSG_BYE, 0);
        m.bye.code = FEDC_BYE_LEAVING;
        m.bye.reason = "client stopped";
        (void)send_msg(c, &m);
        fedc_net_set_linger(c->ep, 500);
        code = 1;
    }
out:
    reset_run(c);
    fedc_client_model_destroy(&c->own_mlp);
    if (c->dp_live)
        fedc_dp_noise_wipe(&c->dp_rng);
    fedc_net_close(&c->ep);
    fedc_net_context_free(&c->zctx);
    if (c->pipe_fd[0] >= 0)
        close(c->pipe_fd[0]);
    if (c->pipe_fd[1] >= 0)
        close(c->pipe_fd[1]);
    return code;
}
