/* The coordinator as an object (coord.h: new, run, stop, destroy, the defaults) and its event loop:
 * one wait that sleeps until the next message or the nearest thing due, hands each message to its
 * phase (handle), checks liveness and moves the state machine on (advance). The phases live in
 * round0.c, rounds.c and secure.c, the clients in registry.c, start-up from a checkpoint in
 * resume.c (coord_int.h says which file holds what). */
#define _POSIX_C_SOURCE 200809L
#include "coord_int.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fedc/checkpoint.h"
#include "fedc/fault.h"
#include "fedc/modelfile.h"
#include "fedc/rng.h"
#include "fedc/transport.h"

/* Rounds of advance() in a row without a message in between, before the loop polls once (with a
 * zero timeout) so that a chain of state changes never starves the socket. */
#define MAX_ADVANCES 16
#define HEARTBEAT_QUIET_S 0.5 /* see FEDC_MSG_HEARTBEAT in handle */

/* The object behind the API (coord.h): the configuration it runs and its stop flag, set from a
 * signal handler or another thread. */
struct fedc_coord {
    const coord_cfg *cfg;
    atomic_int stop;
    atomic_int reload; /* fedc_coord_reload: read --allow again */
    edge_link *edge;   /* an edge aggregator's link (edge.h), or NULL */
};

void fedc__coord_set_edge(fedc_coord *p, edge_link *link) {
    p->edge = link;
}

fedc_err fedc_coord_new(fedc_coord **out, const coord_cfg *cfg, fedc_diag *d) {
    *out = NULL;
    if (!cfg || !cfg->bind) {
        fedc_diag_set(d, "a coordinator needs an endpoint to bind");
        return FEDC_EINVAL;
    }
    fedc_coord *p = calloc(1, sizeof *p);
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

void fedc_coord_stop(fedc_coord *p) {
    atomic_store(&p->stop, 1);
}

void fedc_coord_reload(fedc_coord *p) {
    atomic_store(&p->reload, 1);
}

void fedc_coord_destroy(fedc_coord **p) {
    free(*p);
    *p = NULL;
}

/* --update-norm-bound's default, measured: the per-client update L2 norms that honest clients
 * logged with the bound off (--update-norm-bound 1e6, fedc sim, one run each, every round):
 *   Taiwan, README command (5 clients, dirichlet:0.5, sgd 0.03, 30 rounds): max 5.38, p99 5.29,
 *     median 1.10 (the skewed clients' updates stay large);
 *   Taiwan, defaults (5 iid clients, adam 0.001, 20 rounds): max 0.98 (round 1), median 0.39;
 *   Taiwan, test_sim_robust's run (10 clients, sgd 0.03, 32,16, 12 rounds): max 2.12;
 *   Taiwan, 300 clients as in test_sim_dp's quality run (sgd 0.1, 3 local epochs, 4 rounds):
 *     max 2.80, median 0.66;
 *   the demo's synthetic banks (fedc synth 3 x 5000 customers, 100 days; the demo's flags,
 *     30 rounds): max 3.70 (round 1), median 1.67;
 *   ULB card-fraud sample (3 clients, 30 rounds): max 0.13.
 * 16 is 3x the largest (5.38): no honest update in these runs is clipped, and a client that
 * scales its update by much more than 3 is refused. Other learning rates and local epochs move
 * the norms; set the flag for them. */
#define UPDATE_BOUND_DEFAULT 16.0f

void fedc_coord_defaults(coord_cfg *c) {
    memset(c, 0, sizeof *c);
    c->rounds = 20;
    c->secagg = 1;
    c->sa_min_nbrs = FEDC_SA_MIN_NBRS_DEFAULT;
    c->min_clients = c->sa_min_nbrs; /* secure aggregation's floor */
    c->min_fit_clients = c->min_clients;
    c->fraction_fit = 1.0;
    /* The option table's defaults (core/prog/options.h, chosen by bench/defaults.sh). */
    c->hidden[0] = 25;
    c->n_hidden = 1;
    c->act = FEDC_ACT_RELU;
    c->local_epochs = 2;
    c->batch = 64;
    c->lr = 0.05f;
    c->optimizer = FEDC_OPT_SGD;
    c->val_fraction = 0.2f;
    c->pos_weight = 1.0f;
    c->threshold = 0.5f;
    c->alert_budget = 0.005;
    c->server = fedc_server_defaults(FEDC_SERVER_FEDAVG);
    c->round_timeout_s = 300;
    c->heartbeat_timeout_s = 10;
    c->max_retries = 5;
    c->max_staleness = 10; /* --mode async only; buffer 0 = min_fit_clients */
    c->sa_clip = 10.0f;
    c->sa_max_clients = 1024;
    c->agg.kind = FEDC_AGG_MEAN;
    c->agg.beta = 0.2;
    c->agg.f = 1;
    c->update_norm_bound = UPDATE_BOUND_DEFAULT;
    c->dp_delta = 1e-5;
    c->dp_quantile = 0.5;
    c->dp_clip_lr = 0.2;
    c->seed = 1;
    c->max_msg = (size_t)256 << 20;
}

int coord_stopping(const coord *co) {
    return atomic_load(co->stop) != 0;
}

/* After refusing a message from a client, stops waiting for that client's answer in the current
 * phase: a client that follows the protocol never sends a message that fails validation, so the
 * refused one was (or stood for) its answer, and waiting for another would hold the round until
 * its deadline. The client stays alive and is selected again next round. */
void refused_answer(coord *co, client *c) {
    if (co->cfg->async_mode && co->have_stats && c->fit_sel) {
        /* Asynchronous: its training answer was the one refused; it is idle, fed again. */
        async_on_error(co, c, c->as_round);
        return;
    }
    if (co->ph == PH_STATS && c->stats_req && !c->stats_done)
        c->stats_req = 0;
    else if (co->ph == PH_FIT && c->fit_sel && !c->fit_done)
        c->fit_done = 1;
    else if (co->ph == PH_EVAL && c->eval_sel && !c->eval_done)
        c->eval_done = 1;
    else
        return;
    logm("%s: its answer was refused; round %u goes on without it", c->name,
         co->ph == PH_STATS ? 0u : co->round);
}

/* The live clients the next step waits for: --min-clients for round 0 (less those excluded),
 * --min-fit-clients for a round, and under secure aggregation at least its floor. */
static int need_to_start(const coord *co) {
    int m = co->have_stats ? co->cfg->min_fit_clients : min_clients_now(co);
    /* --mode async, secure: a buffer is K distinct clients holding an update (async_sa.c). */
    if (co->have_stats && co->cfg->async_mode && co->cfg->secagg && m < buffer_k(co))
        m = buffer_k(co);
    /* A secure session needs the floor's participants: wait for them instead of failing. */
    return co->cfg->secagg && m < co->cfg->sa_min_nbrs ? co->cfg->sa_min_nbrs : m;
}

/* One message: a Join is answered whoever sends it; anything else needs a joined connection of
 * this run, counts as a sign of life, and goes to its phase. */
static void handle(coord *co, fedc_inbox *in) {
    const fedc_msg *e = &in->msg;
    client *c = find_peer(co, &in->from);
    if (e->kind == FEDC_MSG_JOIN) {
        count_bytes(co, 0, e->kind, in->bytes);
        if (co->secure && !in->user[0]) {
            reply_error(co, &in->from, e->round, FEDC_EINVAL, "no authenticated identity");
            return;
        }
        if (co->secure && strcmp(in->user, e->join.name) != 0)
            logp(co, &in->from, in->user,
                 "a client authenticated as '%s' calls itself '%s'; it is known as '%s'", in->user,
                 e->join.name, in->user);
        on_join(co, &in->from, e, co->secure ? in->user : e->join.name);
        return;
    }
    if (!c) {
        /* Unknown connection (for example after our restart): ask it to join again. */
        fedc_net_send_error_kind(co->ep, &in->from, co->run_id, e->round, FEDC_EINVAL,
                                 FEDC_ERROR_JOIN_AGAIN, FEDC_WIRE_NOT_JOINED);
        return;
    }
    if (!e->run_id || memcmp(e->run_id, co->run_id, FEDC_RUN_ID_BYTES) != 0) {
        fedc_net_send_error_kind(co->ep, &in->from, co->run_id, e->round, FEDC_EMISMATCH,
                                 FEDC_ERROR_JOIN_AGAIN,
                                 "run id does not match this run; join again");
        return;
    }
    if (!c->alive)
        logp(co, &c->peer, c->name, "%s shows life again", c->name);
    c->alive = 1;
    c->last_seen = fedc_clock_s();
    count_bytes(co, 0, e->kind, in->bytes);
    switch (e->kind) {
    case FEDC_MSG_HEARTBEAT: {
        /* The answer only tells the client we are here (its --coordinator-timeout); a message we
         * sent it within HEARTBEAT_QUIET_S told it already. So the client hears from us at least
         * every heartbeat interval + HEARTBEAT_QUIET_S, and at 1,000 clients in a secure round
         * we answer a fraction of the heartbeats. */
        if (c->last_sent > 0 && c->last_seen - c->last_sent < HEARTBEAT_QUIET_S)
            break;
        fedc_msg m;
        env_init(co, &m, FEDC_MSG_HEARTBEAT, co->round);
        m.heartbeat.seq = e->heartbeat.seq;
        (void)send_to(co, c, &m);
        break;
    }
    case FEDC_MSG_STATS:
        on_stats(co, c, e);
        break;
    case FEDC_MSG_FIT_RES:
        on_fit_res(co, c, e);
        break;
    case FEDC_MSG_EVALUATE_RES:
        on_eval_res(co, c, e);
        break;
    case FEDC_MSG_SA_KEYS:
    case FEDC_MSG_SA_GRAPH:
    case FEDC_MSG_SA_SHARES:
    case FEDC_MSG_SA_MASKED:
    case FEDC_MSG_SA_CONSIST:
    case FEDC_MSG_SA_UNMASK: {
        /* A member still in the session at its masking step, answering it: it takes part. */
        int masking = e->kind == FEDC_MSG_SA_MASKED && co->sa.active && co->sa.step == SA_MASKED &&
                      c->sa_id >= 0 && !c->sa_answered;
        sa_on_msg(co, c, e);
        if (masking && c->sa_answered)
            c->took_part = 1;
        break;
    }
    case FEDC_MSG_CHUNK:
    case FEDC_MSG_CHUNK_REQ:
        stream_on_msg(co, c, e);
        break;
    case FEDC_MSG_BYE:
        logm("%s left: %s", c->name, e->bye.reason);
        c->gone = 1;
        c->alive = 0;
        break;
    case FEDC_MSG_ERROR:
        logp(co, &c->peer, c->name, "%s reports an error: %s", c->name, e->error.reason);
        if (e->error.kind == FEDC_ERROR_NO_VALUES) {
            /* It retrained (a retried round) and the upload we pulled is gone: dropped, and its
             * next answer is awaited as usual. */
            stream_gone(co, c);
            break;
        }
        /* A client that cannot answer this round (its training failed) says so: stop waiting. */
        if (co->cfg->async_mode && co->have_stats && c->fit_sel && e->round == c->as_round)
            async_on_error(co, c, e->round);
        else if (e->round == co->round && (co->ph == PH_FIT || co->ph == PH_EVAL))
            refused_answer(co, c);
        if (co->sa.active && e->round == (co->sa.stage == FEDC_SA_STAGE_STATS ? 0 : co->round))
            sa_client_out(co, c, &e->error);
        break;
    default:
        reply_error(co, &c->peer, e->round, FEDC_EINVAL,
                    "this message is not one a client sends to the coordinator");
        break;
    }
}

/* Marks dead the live clients whose heartbeat timeout has passed. The client table is scanned
 * only once the earliest timeout seen at the last scan (co->live_due) has come: a client's
 * last_seen only grows, and one seen after a scan at t times out no earlier than t + timeout, so
 * no client can time out before then. The event loop runs this after every batch of messages;
 * scanning 1,000 clients each time was about 5 % of the coordinator's main thread (perf,
 * bench_scale 1,000 x 100k). */
static void check_liveness(coord *co) {
    double t = fedc_clock_s();
    if (t < co->live_due)
        return;
    const double to = co->cfg->heartbeat_timeout_s;
    double due = t + to;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (!c->alive || c->gone)
            continue;
        if (t - c->last_seen > to)
            mark_dead(co, c, "missed its heartbeats");
        else if (c->last_seen + to < due)
            due = c->last_seen + to;
    }
    co->live_due = due;
}

/* What advance() may change without a message: while it changes, advance() goes on at once. */
typedef struct progress {
    phase ph;
    uint32_t round;
    int retries, sa_active, sa_step, sa_stage;
} progress;

static progress progress_now(const coord *co) {
    progress p = {co->ph, co->round, co->retries, co->sa.active, co->sa.step, co->sa.stage};
    return p;
}

static int progress_same(progress a, progress b) {
    return a.ph == b.ph && a.round == b.round && a.retries == b.retries &&
           a.sa_active == b.sa_active && a.sa_step == b.sa_step && a.sa_stage == b.sa_stage;
}

static void due_at(double *due, double t) {
    if (t < *due)
        *due = t;
}

/* The earliest time after `t` at which something is due without a message, for the event loop's
 * poll timeout; at most t + MAX_SLEEP_S. Only what advance(), check_liveness() or plog_tick() act
 * on when it is due is counted, so a time already past makes the loop run them at once and never
 * spins: the round's or statistics' deadline (plain), the secure-aggregation step's deadline, the
 * wait's give-up and log line, the wait for the clients of a resumed run, the earliest heartbeat
 * timeout (check_liveness's bound) and the end of every log-limiter window. */
static double next_due(const coord *co, double t) {
    const coord_cfg *cfg = co->cfg;
    double due = t + MAX_SLEEP_S;
    switch (co->ph) {
    case PH_WAIT:
        if (cfg->wait_timeout_s > 0)
            due_at(&due, co->wait_since + cfg->wait_timeout_s);
        due_at(&due, co->wait_logged + 10.0);
        /* Looked at only once enough clients are in: a time already past is not due. */
        if (co->n_expect && co->resumed_at + cfg->heartbeat_timeout_s > t)
            due_at(&due, co->resumed_at + cfg->heartbeat_timeout_s);
        break;
    case PH_STATS:
    case PH_FIT:
    case PH_EVAL:
        /* The same split as advance(): the secure path waits on the step's deadline. */
        if (cfg->secagg || (co->ph == PH_STATS && co->sa.active)) {
            if (co->sa.active)
                due_at(&due, co->sa.deadline);
        } else {
            due_at(&due, co->deadline);
        }
        if (cfg->async_mode)
            due = async_next_due(co, due);
        break;
    case PH_DONE:
        break;
    }
    /* No heartbeat timeout ends before check_liveness's bound (it scans again then). */
    due_at(&due, co->live_due);
    return plog_next_due(co, due);
}

/* Milliseconds to wait (fedc_net_wait) until `due`: rounded up, plus one so that the strict
 * comparisons of the deadlines (t - since > timeout) hold on waking; 0 for a time already past. */
long poll_ms(double due, double t) {
    if (due <= t)
        return 0;
    return (long)ceil((due - t) * 1e3) + 1;
}

/* Moves the state machine on; returns 0 to continue, 1 when the run is over (ok or not). */
static int advance(coord *co) {
    double t = fedc_clock_s();
    switch (co->ph) {
    case PH_WAIT: {
        if (!co->edge && (co->round > (uint32_t)co->cfg->rounds || co->early_stop))
            return 1;
        /* Between rounds: a reloaded allow-list takes effect (its removed keys leave now). */
        allow_apply(co);
        int need = need_to_start(co);
        co->bench_relaxed = 0;
        int alive = n_eligible(co), strict = alive;
        if (alive < need) {
            /* Too few without the benched members: take them back rather than stall. */
            co->bench_relaxed = 1;
            alive = n_eligible(co);
        }
        if (co->have_schema && alive >= need && alive > strict && !awaiting_resumed(co))
            logm("round %u: %d benched member(s) taken back: too few others to start", co->round,
                 alive - strict);
        /* An edge runs what the upstream asks, once its round 0 is done (edge_coord.c). */
        if (co->edge && co->have_stats)
            return edge_wait_step(co, co->have_schema && alive >= need, alive, need);
        if (co->have_schema && alive >= need && !awaiting_resumed(co) && !co->init_wait) {
            if (!co->have_stats)
                start_stats(co);
            else
                start_round(co);
            return co->budget_stop;
        }
        if (co->cfg->wait_timeout_s > 0 && t - co->wait_since > co->cfg->wait_timeout_s) {
            logm("gave up after waiting %.0f s for clients: %d connected, %d needed",
                 co->cfg->wait_timeout_s, alive, need);
            co->ph = PH_DONE;
            return 1;
        }
        if (t - co->wait_logged > 10.0) {
            if (co->init_wait && alive >= need)
                logm("waiting for the model's initial values (stream INIT) before round 0");
            else
                logm("waiting for clients: %d connected, %d needed", alive, need);
            co->wait_logged = t;
        }
        return 0;
    }
    case PH_STATS:
        stats_advance(co, t);
        return co->ph == PH_DONE;
    case PH_FIT:
    case PH_EVAL:
        round_advance(co, t);
        return co->ph == PH_DONE;
    case PH_DONE:
        return 1;
    }
    return 1;
}

/* Binds the ROUTER: with CurveZMQ, the ZAP allow-list and the start-up proof that an unlisted key
 * is refused; without (--insecure), plain TCP. */
int open_endpoint(coord *co, fedc_diag *d) {
    const coord_cfg *cfg = co->cfg;
    co->zctx = fedc_net_context_new();
    if (!co->zctx) {
        fedc_diag_set(d, "cannot create a ZeroMQ context");
        return -1;
    }
    if (!co->secure)
        return fedc_net_bind(&co->ep, co->zctx, cfg->bind, cfg->max_msg, d) ? -1 : 0;
    if (fedc_net_bind_secure(&co->ep, co->zctx, cfg->bind, cfg->max_msg, &co->self, co->allow,
                             co->n_allow, d))
        return -1;
    if (fedc_net_selftest(co->ep, co->zctx, d))
        return -1;
    logm("CurveZMQ on; %d key(s) in the allow-list %s; start-up check: an unlisted key is "
         "refused",
         co->n_allow, cfg->allow_dir);
    return 0;
}

static void hex(char *out, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void cleanup(coord *co) {
    coord_http_stop(co);
    sa_stop(co);
    if (co->cfg->async_mode)
        async_free(co);
    agg_free(co);
    drop_expect(co);
    fedc_key_wipe(&co->self);
    free(co->allow);
    free(co->allow_next);
    for (int i = 0; i < co->n_cl; i++)
        free_stats(&co->cl[i]);
    free(co->cl);
    free(co->peer_ix);
    free(co->plog);
    fedc_model_destroy(&co->model);
    fedc_accum_destroy(&co->acc);
    fedc_eval_acc_destroy(&co->eval);
    fedc_eval_acc_destroy(&co->eval_tmp);
    free(co->last_line);
    co->last_line = NULL;
    free(co->best_params);
    co->best_params = NULL;
    free(co->best_line);
    co->best_line = NULL;
    free(co->upd);
    free(co->env);
    fedc_blob_unref(&co->wblob);
    if (co->metrics_fd >= 0)
        close(co->metrics_fd);
    fedc_net_close(&co->ep);
    fedc_net_context_free(&co->zctx);
}

static int coord_run(fedc_coord *p) {
    const coord_cfg *cfg = p->cfg;
    coord co_, *co = &co_;
    memset(co, 0, sizeof *co);
    co->cfg = cfg;
    co->stop = &p->stop;
    co->reload = &p->reload;
    co->metrics_fd = -1;
    co->round = 1;
    co->pos_weight = 1.0f;
    co->edge = p->edge;
    fedc_fault_init("coordinator");
    if (!cfg->insecure) {
        fedc_diag kd;
        if (fedc_key_load_secret(&co->self, cfg->key_path, &kd)) {
            logm("--key: %s", kd.msg);
            return 2;
        }
        if (fedc_key_load_dir(&co->allow, &co->n_allow, cfg->allow_dir, &kd)) {
            logm("--allow: %s", kd.msg);
            fedc_key_wipe(&co->self);
            return 2;
        }
        co->secure = 1;
    }
    co->cl = calloc(MAX_CLIENTS, sizeof *co->cl);
    co->peer_ix = calloc(PEER_IX_SLOTS, sizeof *co->peer_ix);
    co->plog = calloc(PEER_LOG_MAX, sizeof *co->plog);
    if (!co->cl || !co->peer_ix || !co->plog) {
        logm("out of memory");
        fedc_key_wipe(&co->self);
        free(co->allow);
        free(co->cl);
        free(co->peer_ix);
        free(co->plog);
        return 1;
    }
    /* Run ids only tell runs apart; they need not be secret. */
    uint64_t salt = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    salt ^= (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < FEDC_RUN_ID_BYTES; i += 8) {
        uint64_t v = fedc_rng_at(salt, (uint64_t)i);
        memcpy(co->run_id + i, &v, 8);
    }
    char *ckpt_line = NULL;
    int code = check_msg_cap_early(co);
    if (code)
        goto out;
    code = agg_init(co);
    if (!code && cfg->async_mode)
        code = async_init(co);
    if (code)
        goto out;
    code = 1;
    if (cfg->checkpoint_dir) {
        if (mkdir(cfg->checkpoint_dir, 0755) != 0 && errno != EEXIST) {
            logm("--checkpoint-dir: cannot create %s: %s", cfg->checkpoint_dir, strerror(errno));
            code = 2;
            goto out;
        }
        snprintf(co->ckpt_path, sizeof co->ckpt_path, "%s/%s", cfg->checkpoint_dir, FEDC_CKPT_FILE);
        if (cfg->resume && (code = restore_checkpoint(co, &ckpt_line)) != 0)
            goto out;
    }
    code = 1;
    if (open_metrics(co, co->round - 1, ckpt_line))
        goto out;
    if ((code = coord_http_start(co)) != 0)
        goto out;
    if (co->round > (uint32_t)cfg->rounds) {
        logm("the checkpoint already holds all %d rounds", cfg->rounds);
        say_run_complete(co);
    } else {
        fedc_diag d;
        if (open_endpoint(co, &d)) {
            logm("--bind: %s", d.msg);
            code = 2;
            goto out;
        }
        char rid[2 * FEDC_RUN_ID_BYTES + 1];
        hex(rid, co->run_id, FEDC_RUN_ID_BYTES);
        logm("listening on %s (run %s); %d round(s), waiting for %d client(s)",
             fedc_net_endpoint(co->ep), rid, cfg->rounds, cfg->min_clients);
        fflush(stderr);
        co->ph = PH_WAIT;
        co->wait_since = co->wait_logged = fedc_clock_s();
        coord_http_publish(co, 1);
        long timeout = 0;
        int over = 0;
        while (!coord_stopping(co) && !over) {
            if (atomic_exchange(co->reload, 0))
                allow_reload(co);
            unsigned ready = 0;
            fedc_diag pd;
            if (fedc_net_wait(co->ep, edge_wake_fd(co), 0, timeout, &ready, &pd)) {
                logm("%s", pd.msg);
                break;
            }
            int n = (ready & FEDC_NET_READY_MSG) != 0;
            if (ready & FEDC_NET_READY_FD)
                edge_drain(co); /* a request of the upstream: advance() below takes it */
            /* Drain what is queued, then move on; a bad message never stops the loop. Messages
             * queued together are all handled before the state machine moves (a round starts
             * with every Join already received, as with the tick before). */
            for (int k = 0; n > 0 && k < 1024; k++) {
                fedc_inbox in;
                fedc_msg_expect x = {0};
                x.round = -1;
                x.max_bytes = cfg->max_msg;
                x.n_params = co->have_schema ? co->n_params : 0;
                /* Not checked here: a Join with another number of features is answered by
                 * on_join, which names the missing or extra column; on_stats checks sizes. */
                x.n_features = 0;
                x.n_classes = co->have_schema ? (uint32_t)co->n_classes : 0;
                x.hist_bins = co->task == FEDC_TASK_BINARY ? FEDC_EVAL_BINS : 0;
                x.chunk_values = stream_chunk(co);
                x.update_finite_here = 1; /* plain_chunk's addition checks every value */
                fedc_err rc = fedc_net_recv(co->ep, &in, &x, 0, &d);
                if (rc == FEDC_EEMPTY)
                    break;
                if (rc == FEDC_OK) {
                    handle(co, &in);
                } else if (rc != FEDC_EIO && in.from.len) {
                    client *c = find_peer(co, &in.from);
                    const char *who = c ? c->name : "an unknown peer";
                    logp(co, &in.from, who, "refused a message from %s: %s", who, d.msg);
                    reply_error(co, &in.from, co->round, rc, d.msg);
                    if (c)
                        refused_answer(co, c);
                } else {
                    logm("receive: %s", d.msg);
                }
                fedc_inbox_release(&in);
            }
            check_liveness(co);
            stream_check(co);
            plog_tick(co);
            /* Event-driven: every state change is followed at once by the next (a round starts
             * as soon as the previous one ends), up to MAX_ADVANCES in a row before the socket
             * is looked at again; then sleep until a message or the nearest thing due. */
            int moved = 1;
            for (int a = 0; a < MAX_ADVANCES && moved && !over; a++) {
                progress before = progress_now(co);
                over = advance(co);
                moved = !progress_same(before, progress_now(co));
            }
            coord_http_publish(co, 0);
            double t = fedc_clock_s();
            timeout = moved ? 0 : poll_ms(next_due(co, t), t);
        }
        coord_http_closing(co);
        if (co->exit_code) {
            code = co->exit_code; /* the reason is logged */
            for (int i = 0; i < co->n_cl; i++)
                if (co->cl[i].alive && !co->cl[i].gone)
                    send_bye(co, &co->cl[i], FEDC_BYE_FAILED,
                             "run failed: the coordinator cannot go on");
            goto linger;
        }
        if (coord_stopping(co)) {
            /* Every finished round is in the checkpoint already (written when it finished); the
             * one in progress is run again by --resume. Clients are told to wait for us. */
            if (cfg->checkpoint_dir)
                logm("stopping on request after round %u of %d: the checkpoint in %s holds it; "
                     "start again with --resume to continue the run",
                     co->round - 1, cfg->rounds, cfg->checkpoint_dir);
            else
                logm("stopping on request after round %u of %d; without --checkpoint-dir the "
                     "run cannot be resumed",
                     co->round - 1, cfg->rounds);
            for (int i = 0; i < co->n_cl; i++)
                if (co->cl[i].alive && !co->cl[i].gone)
                    send_bye(co, &co->cl[i], FEDC_BYE_LEAVING,
                             cfg->checkpoint_dir ? "the coordinator is stopping; it can resume "
                                                   "the run, wait for it"
                                                 : "the coordinator is stopping");
            code = 0;
            goto linger;
        }
        if (co->budget_stop && co->round == 1) {
            logm("the privacy budget allows no round at all: no model is written");
            code = 1;
            goto linger;
        }
        if (co->round <= (uint32_t)cfg->rounds && !co->budget_stop && !co->early_stop &&
            !edge_finished(co)) {
            code = 1; /* gave up: the reason is logged */
            for (int i = 0; i < co->n_cl; i++)
                if (co->cl[i].alive && !co->cl[i].gone)
                    send_bye(co, &co->cl[i], FEDC_BYE_FAILED,
                             "run failed: the coordinator gave up");
            goto linger;
        }
    }
    const char *sel;
    const char *last = best_final(co, co->last_line ? co->last_line : ckpt_line, &sel);
    if (cfg->model_out) {
        fedc_diag d;
        if (card_put(co, co->model, last, sel, (int)co->round - 1)) {
            code = 1; /* logged */
            goto linger;
        }
        if (fedc_model_save(co->model, cfg->model_out, &d)) {
            logm("--model-out: %s", d.msg);
            code = 1;
            goto linger;
        }
    }
    if (co->ep)
        for (int i = 0; i < co->n_cl; i++)
            if (!co->cl[i].gone)
                send_bye(co, &co->cl[i], FEDC_BYE_COMPLETE, "run complete");
    logm("run complete: %u round(s)%s%s%s", co->round - 1,
         co->budget_stop ? " (the privacy budget allows no more)"
         : co->early_stop && co->round - 1 < (uint32_t)cfg->rounds ? " (stopped early: --patience)"
                                                                   : "",
         cfg->model_out ? "; model written to " : "", cfg->model_out ? cfg->model_out : "");
    code = 0;
linger:
    plog_flush(co);
    if (co->ep) {
        /* Let the last messages (Bye) leave before the socket closes. */
        fedc_net_set_linger(co->ep, 1000);
    }
out:
    free(ckpt_line);
    cleanup(co);
    return code;
}

int fedc_coord_run(fedc_coord *p) {
    log_bind(p->cfg); /* this thread's log lines take the coordinator's format and level */
    int code = coord_run(p);
    if (p->edge) {
        /* A request still waiting (or posted later) gets no answer from us now. */
        pthread_mutex_lock(&p->edge->mu);
        p->edge->coord_over = 1;
        pthread_cond_broadcast(&p->edge->cv);
        pthread_mutex_unlock(&p->edge->mu);
    }
    log_bind(NULL);
    return code;
}
