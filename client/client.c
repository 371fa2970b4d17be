/* The participant as an object (client.h: new, run, stop, destroy, the defaults) and its I/O
 * loop: one wait on the socket and the training thread's pipe, each message handed to its step
 * (handle), joins and re-joins, the Welcome that starts a run, heartbeats, and the sending of every
 * message. The steps live in client_eval.c, client_train.c, client_dp.c and client_sa.c
 * (client_int.h says which file holds what). */
#define _POSIX_C_SOURCE 200809L
#include "client_int.h"
#include "fedc/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedc/clock.h"
#include "fedc/fault.h"
#include "fedc/fl_seed.h"
#include "fedc/model.h"
#include "fedc/recipe.h"

#define JOIN_RETRY_S 2.0
/* Bytes of a message beyond its raw frame (the envelope), in the size checks of --max-msg-mb. */
#define ENVELOPE_SLACK 4096

/* How long failed CurveZMQ handshakes may go on before we say the coordinator key is wrong
 * (shorter when --coordinator-timeout is). */
#define HANDSHAKE_GIVE_UP_S 10.0

/* The object behind the API (client.h): the configuration it runs and its stop flag, set from
 * a signal handler or another thread. */
struct fedc_client {
    const client_cfg *cfg;
    atomic_int stop;
    atomic_int reload; /* fedc_client_reload: read peers_dir again */
};

#define CL_LOG_AT(fn, level)                                                                       \
    void fn(const cl *c, const char *fmt, ...) {                                                   \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        fedc_logv(&c->cfg->log, level, PROG, c->cfg->name, fmt, ap);                               \
        va_end(ap);                                                                                \
    }
CL_LOG_AT(cl_logm, FEDC_LOG_INFO)
CL_LOG_AT(cl_logw, FEDC_LOG_WARN)
CL_LOG_AT(cl_loge, FEDC_LOG_ERROR)
#undef CL_LOG_AT

/* A message of ours: the body is the caller's to fill. */
void cl_env_init(cl *c, fedc_msg *m, fedc_msg_kind kind, uint32_t round) {
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->run_id = c->have_run ? c->run_id : NULL;
    m->round = round;
}

/* After a send: a failure is logged once per reason; -1 then, else 0. */
static int sent(cl *c, fedc_err rc, const fedc_diag *d) {
    char *last = c->send_error; /* per client: several live in one process */
    if (rc) {
        /* While the coordinator is away the queue fills with joins; say so once. */
        if (strcmp(last, d->msg) != 0)
            cl_logm(c, "%s", d->msg);
        snprintf(last, sizeof c->send_error, "%s", d->msg);
        return -1;
    }
    last[0] = 0;
    /* Any message tells the coordinator we are alive: the next heartbeat is due an interval
     * after it (a client in a secure round sends several per round; heartbeats on top of them
     * were a third of the coordinator's messages at 1,000 clients). */
    c->last_hb = fedc_clock_s();
    return 0;
}

/* Sends m with its tensor or masked values, if it has any, as the raw frame. */
int cl_send_msg(cl *c, const fedc_msg *m) {
    fedc_diag d;
    size_t bytes = c->coord_max_msg ? fedc_msg_wire_size(m) : 0;
    if (c->coord_max_msg && bytes > c->coord_max_msg) {
        /* ZeroMQ at the coordinator would drop it with our connection, without a word. */
        cl_logm(c,
                "not sending %s of %zu bytes: the coordinator accepts at most %zu bytes (its "
                "--max-msg-mb)",
                fedc_msg_kind_name(m->kind), bytes, c->coord_max_msg);
        return -1;
    }
    return sent(c, fedc_net_send_msg(c->ep, NULL, m, NULL, &d), &d);
}

static void send_join(cl *c) {
    fedc_msg m;
    fedc_fault_point("join", 0);
    cl_env_init(c, &m, FEDC_MSG_JOIN, 0);
    fedc_join *j = &m.join;
    j->schema.n_features = (size_t)c->desc.n_features;
    j->schema.feature_names = c->desc.feature_names;
    j->schema.label = c->desc.label;
    j->schema.task = (uint32_t)c->task;
    j->schema.n_classes = (uint32_t)c->n_classes;
    /* What decides our columns (fedc/recipe.h: the agreed part of the encoding) and the features
     * spec: the coordinator refuses us when either differs from the federation's. */
    char *enc_json = fedc_encoding_json(c->cfg->encoding, 0);
    j->schema.encoding = enc_json;
    j->schema.features = c->cfg->features;
    j->name = c->cfg->name;
    j->n_rows = 0; /* our row count is ours to keep */
    fedc_blob *init = NULL;
    size_t n = c->desc.n_params;
    fedc_diag d;
    if (n && c->join_init && atomic_load_explicit(&c->join_init->refs, memory_order_acquire) > 1) {
        /* Our last join is still in ZeroMQ's queue, unsent (a coordinator slow to read a
         * thousand joins of a large model): it will arrive. Queueing one more every retry
         * would hold one more model-sized copy each time. */
        free(enc_json);
        c->last_join = fedc_clock_s();
        return;
    }
    if (n && c->join_init) {
        init = c->join_init; /* sent and gone (or dropped with the connection): again */
    } else if (n) {
        /* A model of our own: its name, size and initial values (the first client's become the
         * run's unless the coordinator has --init-weights). They are written into a blob that
         * ZeroMQ sends without copying (one model-sized vector at the join, not two, as every
         * client of a large federation joins at once), kept until the Welcome. */
        fedc_err rc = fedc_blob_new(&init, 4 * n);
        if (!rc) {
            memset(init->data, 0, 4 * n);
            if (c->model->init)
                rc = c->model->init(c->model->ctx, (float *)(void *)init->data, n, &d);
        } else {
            fedc_diag_set(&d, "out of memory");
        }
        if (rc) {
            cl_logm(c, "cannot offer the model's initial values: %s", d.msg);
            fedc_blob_unref(&init);
            free(enc_json);
            c->last_join = fedc_clock_s();
            return;
        }
        c->join_init = init;
    }
    /* Large values are only announced: the coordinator pulls them (stream INIT) from the one
     * client whose values it takes, so a federation's joins do not each bring a model. */
    const int announce = n && 4 * n > FEDC_INLINE_MAX_BYTES;
    if (n) {
        j->model_kind = c->desc.kind ? c->desc.kind : "";
        j->n_params = n;
        j->init.count = n;
        j->init.streamed = announce;
        /* Our floats as they are: the wire's little-endian order on a little-endian host (as the
         * client assumed before msg.h; a big-endian port would swap them first). */
        j->init.data = announce ? NULL : init->data;
    }
    uint8_t *env = NULL;
    size_t len = 0;
    if (!init || announce)
        (void)cl_send_msg(c, &m);
    else if (fedc_msg_encode(&env, &len, &m, &d))
        cl_logm(c, "%s", d.msg);
    else
        (void)sent(c, fedc_net_send_packed(c->ep, NULL, env, len, init, "join", &d), &d);
    free(env);
    free(enc_json);
    c->last_join = fedc_clock_s();
}

void cl_wait_training(cl *c) {
    if (c->busy) {
        pthread_join(c->thread, NULL);
        char b;
        while (read(c->pipe_fd[0], &b, 1) == 1) {
        }
        c->busy = 0;
    }
}

static void reset_run(cl *c) {
    cl_wait_training(c);
    free(c->mean);
    free(c->std);
    c->mean = c->std = NULL;
    free(c->eval_w);
    c->eval_w = NULL;
    fedc_eval_acc_destroy(&c->eval);
    cl_stream_withdraw(c);          /* what it served from goes */
    cl_sa_vec_drop(c);              /* before job.buf, which it may be */
    fedc_blob_unref(&c->join_init); /* ZeroMQ keeps its reference until it has sent them */
    free(c->job.global);
    free(c->job.buf); /* the trained weights, the update and a masked input live in it */
    c->job.global = c->job.local = c->job.update = NULL;
    c->job.buf = NULL;
    c->n_params = 0;
    free(c->pending_w);
    c->pending_w = NULL;
    c->pending = 0;
    free(c->held);
    c->held = NULL;
    c->have_held = c->sa_held = 0;
    fedc_sa_client_free(&c->sa);
    free(c->sa_last);
    c->sa_last = NULL;
    c->sa_on = 0;
}

/* Returns 0, or an exit code. */
static int on_welcome(cl *c, const fedc_msg *e) {
    const fedc_welcome *w = &e->welcome;
    if (!e->run_id) {
        cl_logm(c, "ignored a welcome without a run id");
        return 0;
    }
    /* An interval of our own wins; else the coordinator's, which knows its timeout. */
    int capped = 0;
    int hb = fedc_heartbeat_pick_ms(c->cfg->heartbeat_ms, w->heartbeat_ms,
                                    c->cfg->coordinator_timeout_s, &capped);
    if (hb != c->hb_ms)
        cl_logm(c, "heartbeat every %d ms (%s)", hb,
                c->cfg->heartbeat_ms > 0 ? "--heartbeat-ms"
                : capped                 ? "a quarter of our --coordinator-timeout"
                : w->heartbeat_ms        ? "a quarter of the coordinator's --heartbeat-timeout"
                                         : "the default; the coordinator asks for none");
    c->hb_ms = hb;
    int same_run = c->have_run && memcmp(c->run_id, e->run_id, FEDC_RUN_ID_BYTES) == 0;
    if (same_run && c->joined)
        return 0; /* the answer to another Join queued while we waited: we never left */
    if (same_run) {
        c->joined = 1;
        /* The Welcome's round is the coordinator's current one, under way or next: not one we
         * took part in. */
        cl_logm(c, "rejoined the run (the coordinator is at round %u of %d)", e->round, c->rounds);
        return 0;
    }
    if (c->have_run)
        cl_logm(c, "the coordinator started a new run; joining it");
    /* The run's initial values are still to be pulled, maybe ours: kept past reset_run. */
    fedc_blob *offer = NULL;
    if (w->init_wanted && c->join_init && 4 * c->desc.n_params > FEDC_INLINE_MAX_BYTES &&
        w->n_params == c->desc.n_params) {
        offer = c->join_init;
        c->join_init = NULL;
    }
    reset_run(c);
    c->join_init = offer;
    if (offer)
        cl_stream_offer(c, FEDC_STREAM_INIT, e->round, 0, offer->data, c->desc.n_params);
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
                cl_logm(c, "the coordinator's model has %zu parameters, ours ('%s') has %zu", n,
                        c->desc.kind, c->desc.n_params);
            else
                cl_logm(c,
                        "the coordinator trains a model of the clients' own (%zu parameters), we "
                        "bring fedc's MLP",
                        n);
            return 2;
        }
    } else if (c->desc.n_params) {
        cl_logm(c,
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
        cl_logm(c, "%s", d.msg);
        return brc == FEDC_ENOMEM ? 1 : 2;
    }
    c->n_params = n;
    if (fedc_eval_acc_new(&c->eval, c->task, c->n_classes, FEDC_EVAL_BINS)) {
        cl_logm(c, "out of memory for the model");
        return 1;
    }

    /* The weights come as a raw frame of 4 bytes per parameter after an envelope with the
     * standardisation, or, for a model larger than the coordinator's chunk, in chunks we ask for
     * (no larger than our own bound allows): a --max-msg-mb below a whole instruction would make
     * ZeroMQ drop it with the connection, which looks like a coordinator that keeps restarting. */
    c->coord_max_msg = (size_t)w->max_msg_bytes;
    size_t w_in = n > fedc_chunk_values(c->coord_max_msg) ? 0 : 4 * n;
    size_t need_in = w_in + 8 * (size_t)c->desc.n_features + ENVELOPE_SLACK;
    if (need_in > c->cfg->max_msg) {
        cl_logm(
            c,
            "--max-msg-mb %zu (%zu bytes) is below the coordinator's instructions for this model: "
            "%zu bytes (%zu parameters x 4 bytes, plus the envelope); start with --max-msg-mb "
            "%zu or more",
            c->cfg->max_msg >> 20, c->cfg->max_msg, need_in, n,
            (need_in + ((size_t)1 << 20) - 1) >> 20);
        return 2;
    }
    /* Our update goes whole only when small (FEDC_INLINE_MAX_BYTES) and within the coordinator's
     * bound; otherwise it is streamed in chunks of what that bound allows (client_stream.c), the
     * smallest a block of 16 values with its envelope. */
    size_t need_out = 4 * (n < FEDC_CHUNK_ALIGN ? n : FEDC_CHUNK_ALIGN) + FEDC_CHUNK_MARGIN;
    if (c->coord_max_msg && need_out > c->coord_max_msg) {
        cl_logm(c,
                "the coordinator accepts messages of at most %zu bytes (its --max-msg-mb), but our "
                "update for this model takes up to %zu bytes in its smallest chunk (%zu "
                "parameters): it would be dropped",
                c->coord_max_msg, need_out, n);
        return 2;
    }
    /* Two model-sized vectors for as long as the run lasts: the global weights (trained from,
     * scored when no training runs) and the training's output. The update is computed in place of
     * the trained weights (local - global, element by element) and, under secure aggregation,
     * quantised and masked in place of the update (a uint32 per float, after the input's header
     * slots in front of local); it is served from there until the next training. A FitIns or
     * EvaluateIns arriving while a training runs gets a vector of its own until it is used. */
    size_t head = fedc_sa_fit_len(n) - n;
    c->job.global = malloc(4 * n);
    c->job.buf = malloc(4 * (head + n));
    c->job.local = c->job.buf ? (float *)(void *)(c->job.buf + head) : NULL;
    c->job.update = c->job.local;
    c->job.n = n;
    if (!c->job.global || !c->job.buf) {
        cl_logm(c, "out of memory for the model");
        return 1;
    }
    cl_logm(
        c, "joined run with %d round(s): %llu training rows, %llu validation rows, %zu parameters",
        c->rounds, (unsigned long long)c->rows.train_rows, (unsigned long long)c->rows.val_rows, n);
    /* Too few steps per round to move the model: say so, with the flags that fix it. */
    uint64_t batch = w->hp.batch ? w->hp.batch : 1;
    uint64_t steps =
        (c->rows.train_rows + batch - 1) / batch * (w->hp.local_epochs ? w->hp.local_epochs : 1);
    if (c->rows.train_rows > 0 && steps < 10)
        cl_logw(c,
                "our %llu training rows give %llu batch(es) of %llu per round (%u local "
                "epoch(s)): fewer than 10 steps move the model little; the coordinator's "
                "--batch or --local-epochs can raise it",
                (unsigned long long)c->rows.train_rows, (unsigned long long)steps,
                (unsigned long long)batch, (unsigned)w->hp.local_epochs);
    return 0;
}

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
            cl_logm(c, "the coordinator says: %s", r);
            return 0;
        case FEDC_BYE_REFUSED:
            cl_logm(c, "the coordinator refused us: %s", r);
            return 2;
        case FEDC_BYE_FAILED:
            cl_logm(c, "the coordinator says: %s", r);
            return 1;
        default:
            cl_logm(c,
                    "the coordinator says: %s; waiting up to %.0f s (--coordinator-timeout) for it "
                    "to come back",
                    r, c->cfg->coordinator_timeout_s);
            c->joined = 0;
            return -1;
        }
    }
    case FEDC_MSG_ERROR:
        if (e->error.kind == FEDC_ERROR_JOIN_AGAIN) {
            if (c->joined)
                cl_logm(c, "the coordinator does not know us (it restarted?); joining again");
            c->joined = 0;
            send_join(c);
        } else {
            cl_logm(c, "the coordinator refused a message: %s", e->error.reason);
        }
        return -1;
    case FEDC_MSG_HEARTBEAT:
        return -1;
    default:
        break;
    }
    /* Everything else belongs to our run. */
    if (!c->have_run || !e->run_id || memcmp(e->run_id, c->run_id, FEDC_RUN_ID_BYTES) != 0) {
        cl_logm(c, "ignored %s from another run", fedc_msg_kind_name(e->kind));
        return -1;
    }
    /* An instruction comes once the run's initial values are complete: ours are no longer
     * needed. */
    if (c->join_init && (e->kind == FEDC_MSG_STATS_REQUEST || e->kind == FEDC_MSG_FIT_INS ||
                         e->kind == FEDC_MSG_EVALUATE_INS)) {
        if (c->up_stream == FEDC_STREAM_INIT)
            cl_stream_withdraw(c);
        fedc_blob_unref(&c->join_init);
    }
    switch (e->kind) {
    case FEDC_MSG_STATS_REQUEST:
        return cl_on_stats_request(c, e);
    case FEDC_MSG_FIT_INS:
        c->dl_on = 0; /* a new instruction replaces one whose weights were still coming */
        if (e->fit_ins.weights.streamed)
            return cl_stream_instruction(c, e);
        return cl_on_fit_ins(c, e);
    case FEDC_MSG_EVALUATE_INS:
        c->dl_on = 0;
        if (e->evaluate_ins.weights.streamed)
            return cl_stream_instruction(c, e);
        return cl_on_evaluate_ins(c, e);
    case FEDC_MSG_CHUNK:
    case FEDC_MSG_CHUNK_REQ:
        return cl_stream_on_msg(c, e);
    case FEDC_MSG_SA_SHARE_INS:
        cl_on_sa_share_ins(c, e);
        break;
    case FEDC_MSG_SA_MASK_INS:
        cl_on_sa_mask_ins(c, e);
        break;
    case FEDC_MSG_SA_UNMASK_INS:
        cl_on_sa_unmask_ins(c, e);
        break;
    case FEDC_MSG_SA_GRAPH_INS:
        cl_on_sa_graph_ins(c, e);
        break;
    case FEDC_MSG_SA_CONSIST_INS:
        cl_on_sa_consist_ins(c, e);
        break;
    case FEDC_MSG_SA_FIT_INS:
        cl_on_sa_fit_ins(c, e);
        break;
    default:
        cl_logm(c, "unexpected %s from the coordinator; ignored", fedc_msg_kind_name(e->kind));
        break;
    }
    return -1;
}

static void send_heartbeat(cl *c) {
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_HEARTBEAT, 0);
    m.heartbeat.seq = ++c->hb_seq;
    (void)cl_send_msg(c, &m);
}

void fedc_client_defaults(client_cfg *c) {
    memset(c, 0, sizeof *c);
    c->heartbeat_ms = 0; /* as the coordinator asks (1 s if it says nothing) */
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
    atomic_init(&p->reload, 0);
    *out = p;
    return FEDC_OK;
}

void fedc_client_stop(fedc_client *p) {
    atomic_store(&p->stop, 1);
}

void fedc_client_reload(fedc_client *p) {
    atomic_store(&p->reload, 1);
}

/* Reads the roster again (fedc_client_reload); kept in peers_next until no secure session is
 * under way. A roster that cannot be read leaves the one in force. */
static void reload_peers(cl *c) {
    if (!c->cfg->self || !c->cfg->peers_dir) {
        cl_logm(c, "reload requested: %s; nothing changed",
                c->cfg->self ? "no roster directory to read again" : "--insecure has no roster");
        return;
    }
    fedc_identity *ids = NULL;
    int n = 0;
    fedc_diag d;
    if (fedc_key_load_dir(&ids, &n, c->cfg->peers_dir, &d)) {
        cl_logm(c,
                "reload of the roster failed, the %d key(s) loaded before stay in force: "
                "--peers: %s",
                c->peers_next ? c->n_peers_next : c->n_peers, d.msg);
        return;
    }
    free(c->peers_next);
    c->peers_next = ids;
    c->n_peers_next = n;
    cl_logm(c,
            "reloaded the roster %s: %d key(s) (before: %d); in force from the next secure "
            "session",
            c->cfg->peers_dir, n, c->n_peers);
}

/* Puts a reloaded roster in force once no secure session uses the old one (each loop turn, and
 * when a session opens: turns may hold one session's end and the next one's start). */
void cl_apply_peers(cl *c) {
    if (!c->peers_next || c->sa_on)
        return;
    free(c->own_peers);
    c->own_peers = c->peers_next;
    c->peers = c->own_peers;
    c->n_peers = c->n_peers_next;
    c->peers_next = NULL;
    c->n_peers_next = 0;
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
        cl_logm(c, "the model's description: %s", why);
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
    c->reload = &p->reload;
    c->peers = cfg->peers;
    c->n_peers = cfg->n_peers;
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
        mc.encoding = cfg->encoding;
        if (fedc_mlp_model_new(&c->own_mlp, &mc, &d)) {
            cl_logm(c, "%s", d.msg);
            goto out;
        }
        c->model = c->own_mlp;
    }
    if (c->model->describe(c->model->ctx, &c->desc, &d)) {
        cl_logm(c, "the model: %s", d.msg);
        goto out;
    }
    if (model_desc_bad(c, &c->desc))
        goto out;
    c->task = c->desc.task;
    c->n_classes = c->desc.n_classes;
    if (cfg->dp_clip > 0 && !c->model->dp_sgd) {
        cl_logm(c,
                "--dp-clip: the model '%s' does not implement record-level DP-SGD (client-level "
                "DP-FedAvg, set at the coordinator, works with any model)",
                c->desc.kind ? c->desc.kind : "");
        goto out;
    }
    if (cfg->dp_clip > 0 && cfg->dp_state && cl_dp_state_load(c))
        goto out;
    if (cl_http_start(c)) /* --metrics-listen cannot bind: exit 2, logged */
        goto out;
    code = 1;
    if (pipe(c->pipe_fd) != 0 || fcntl(c->pipe_fd[0], F_SETFL, O_NONBLOCK) != 0) {
        cl_logm(c, "cannot create a pipe: %s", strerror(errno));
        goto out;
    }
    c->zctx = fedc_net_context_new();
    fedc_err crc = !c->zctx ? FEDC_EIO
                   : cfg->self
                       ? fedc_net_connect_secure(&c->ep, c->zctx, cfg->connect, cfg->max_msg,
                                                 cfg->self, cfg->coordinator->curve_pk, &d)
                       : fedc_net_connect(&c->ep, c->zctx, cfg->connect, cfg->max_msg, &d);
    if (crc) {
        cl_logm(c, "--connect: %s", c->zctx ? d.msg : "cannot create a ZeroMQ context");
        code = 2;
        goto out;
    }
    cl_logm(c, "model '%s': %d features, task %s; connecting to %s",
            c->desc.kind ? c->desc.kind : "", c->desc.n_features, fedc_task_name(c->task),
            cfg->connect);
    c->last_heard = fedc_clock_s();
    send_join(c);
    fedc_net_event_state ev;
    memset(&ev, 0, sizeof ev);
    double no_handshake_since = fedc_clock_s();
    code = -1;
    while (code < 0 && !stopping(c)) {
        if (atomic_exchange(c->reload, 0))
            reload_peers(c);
        cl_apply_peers(c);
        unsigned ready = 0;
        fedc_diag pd;
        fedc_err prc = fedc_net_wait(c->ep, c->pipe_fd[0], cfg->self != NULL, 50, &ready, &pd);
        if (prc && stopping(c))
            break; /* a signal to stop cut the wait short: the stop is the news, said below */
        int n = ready != 0;
        if (cfg->self) {
            fedc_net_events(c->ep, &ev);
            if (ev.auth_failed) {
                cl_logm(
                    c,
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
                cl_logm(c,
                        "the CurveZMQ handshake with %s keeps failing (%d attempts): is "
                        "--coordinator-key the coordinator's public key?",
                        cfg->connect, ev.handshake_failed);
                code = 2;
                break;
            }
        }
        if (prc) {
            cl_logm(c, "%s", pd.msg);
            code = 1;
            break;
        }
        if ((ready & FEDC_NET_READY_FD) && c->busy)
            cl_on_training_done(c);
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
            if (rc == FEDC_EEMPTY || (rc == FEDC_EIO && stopping(c)))
                break;
            if (rc == FEDC_OK) {
                code = handle(c, &in);
            } else if (rc == FEDC_EIO) {
                cl_logm(c, "receive: %s", d.msg);
            } else {
                /* The coordinator is there, saying something we refuse: that is word from it. */
                c->last_heard = fedc_clock_s();
                cl_logm(c, "refused a message from the coordinator: %s", d.msg);
            }
            fedc_inbox_release(&in);
        }
        cl_http_publish(c);
        double t = fedc_clock_s();
        if (!c->joined && t - c->last_join > JOIN_RETRY_S)
            send_join(c);
        if (c->joined && t - c->last_hb > c->hb_ms / 1000.0)
            send_heartbeat(c);
        if (code < 0 && t - c->last_heard > cfg->coordinator_timeout_s) {
            if (cfg->self && (fedc_net_events(c->ep, &ev), ev.auth_failed)) {
                /* Refused in the very last turn: the reason, not the silence. */
                cl_logm(
                    c,
                    "the coordinator at %s does not accept our key '%s' (ZAP status %d): ask its "
                    "operator to put %s.key in the --allow directory",
                    cfg->connect, cfg->self->name, ev.auth_status, cfg->self->name);
                code = 2;
            } else if (cfg->self && ev.handshake_failed && !ev.handshake_ok) {
                cl_logm(c,
                        "the CurveZMQ handshake with %s keeps failing (%d attempts in %.0f s): is "
                        "--coordinator-key the coordinator's public key?",
                        cfg->connect, ev.handshake_failed, cfg->coordinator_timeout_s);
                code = 2;
            } else {
                /* The silence measured, not the flag: the two differ when this process could not
                 * look for longer (suspended, say). */
                cl_logm(c,
                        "no word from the coordinator at %s for %.0f s (--coordinator-timeout "
                        "%g); giving up",
                        cfg->connect, t - c->last_heard, cfg->coordinator_timeout_s);
                code = 1;
            }
        }
    }
    if (code < 0 && stopping(c)) {
        /* Asked to stop (SIGINT, SIGTERM, or the embedding program): not a failure. The
         * coordinator hears that we leave, and a client started again later rejoins the run. */
        cl_logm(c, "stopping: asked to (a signal or the embedding program); telling the "
                   "coordinator we leave");
        fedc_msg m;
        cl_env_init(c, &m, FEDC_MSG_BYE, 0);
        m.bye.code = FEDC_BYE_LEAVING;
        m.bye.reason = "client stopped";
        (void)cl_send_msg(c, &m);
        fedc_net_set_linger(c->ep, 500);
        code = 0;
    }
out:
    cl_http_stop(c);
    reset_run(c);
    free(c->own_peers);
    free(c->peers_next);
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
