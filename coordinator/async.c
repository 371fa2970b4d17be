/* --mode async: buffered asynchronous aggregation, FedBuff (Nguyen et al., "Federated Learning
 * with Buffered Asynchronous Aggregation", AISTATS 2022).
 *
 * Every idle eligible client is sent the newest model at once and trains on it; its answer goes
 * into the buffer as soon as it arrives and the client is sent the newest model again, so fast
 * clients never wait for slow ones. When the buffer holds --buffer (K) updates the coordinator
 * applies one server step with their weighted mean, evaluates the new model as a synchronous round
 * does, and writes the step's metrics line and checkpoint: a server step is what a round is
 * elsewhere (round numbers, --rounds, resume, the benching of late clients).
 *
 * Versions: the model after v server steps is version v. A FitIns sent while the model is at
 * version v carries round number v + 1 (as round r's FitIns in a synchronous run carries the model
 * after r - 1 rounds), and the client's FitRes echoes it, so the update's staleness is
 * tau = v_now - (round - 1): the server steps applied since the model it trained on. An update
 * with tau > --max-staleness is refused with an Error naming both versions.
 *
 * Weighting: the buffer's mean is sum_k n_k s(tau_k) delta_k / sum_k n_k, with n_k the example
 * count (FedAvg's weight) and s(tau) = 1 / sqrt(1 + tau), the staleness scaling FedBuff uses
 * (its Section 5; Xie et al. 2019 proposed the polynomial family; fedc_staleness_weight). As in
 * FedBuff's algorithm the denominator does not include s: a buffer of stale updates moves the model
 * less than a fresh one, instead of being renormalised to full size. Each update is scaled by s
 * before it enters the exact fixed-point accumulator (fedc_accum) with weight n_k, so the mean is
 * still independent of arrival order within the buffer.
 *
 * An update that arrives while the buffer is full (several come in one turn of the event loop) or
 * while a step's evaluation is out is held (one per client: a client is sent new work only once
 * its update is in a buffer) and enters the next buffer first, in name order; so every step
 * aggregates exactly K updates and its metrics line counts those of its own buffer.
 *
 * Streamed updates (above FEDC_INLINE_MAX_BYTES) are never held whole here, so the coordinator's
 * memory stays that of a synchronous round whatever the client count: a FitRes announcing one
 * starts its pull into the buffer (stream.c, chunk by chunk into the accumulator, each chunk
 * scaled by s(tau) after the streamed norm check saw it as sent) when the buffer has room for it;
 * an update being pulled counts against the K, and its client is sent new work only once the pull
 * ended (its next training would overwrite the values it serves). When the buffer has no room,
 * or its step is being evaluated, the values wait at the client (as_remote) and are pulled when a
 * buffer opens, in name order as held updates are. A pull added in part and then lost (the client
 * died or was cut off mid-stream) spoils the accumulator as it spoils a synchronous round's: the
 * buffer is dropped whole (its updates lost, their clients sent new work) and fills again, so no
 * partial contribution ever reaches a server step.
 *
 * With secure aggregation the updates stay at their clients until a session among K of them
 * (async_sa.c): a FitRes then only says the update is held, and this file's buffer of plain
 * updates stays empty. A member's masked input, when it streams, is pulled by the session as in
 * a synchronous secure round (stream.c). */
#include "coord_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/clip.h"
#include "fedc/clock.h"
#include "fedc/fault.h"
#include "fedc/jsonl.h"
#include "fedc/strategy.h"

int buffer_k(const coord *co) {
    return co->cfg->buffer > 0 ? co->cfg->buffer : co->cfg->min_fit_clients;
}

int async_init(coord *co) {
    const coord_cfg *cfg = co->cfg;
    const char *why = NULL;
    if (co->strat->needs_updates)
        why = "works with rules that aggregate a weighted mean: a buffer may hold two updates of "
              "one fast client";
    if (why) {
        logm("--mode async %s (strategy %s)", why, co->strat->name);
        return 2;
    }
    if (buffer_k(co) < 1) {
        logm("--mode async: --buffer %d: a server step needs at least one update", cfg->buffer);
        return 2;
    }
    if (agg_dp_on(co) && buffer_k(co) > cfg->min_clients) {
        logm("--mode async with client-level DP: --buffer %d exceeds --min-clients %d (a step "
             "counts a client once, so it needs --buffer distinct clients)",
             buffer_k(co), cfg->min_clients);
        return 2;
    }
    return 0;
}

/* Under client-level DP a buffer holds at most one update per client: the sensitivity of a step's
 * sum is one clipped update (C), which two updates of one fast client would double. A client
 * already counted in the open buffer keeps its next update until the buffer after. */
static int dp_counted(const coord *co, const client *c) {
    return agg_dp_on(co) && c->fit_counted;
}

void async_free(coord *co) {
    free(co->as_env);
    co->as_env = NULL;
    fedc_blob_unref(&co->as_wblob);
    fedc_blob_unref(&co->w_reuse);
    free(co->as_chunk);
    co->as_chunk = NULL;
    for (int i = 0; i < co->n_cl; i++) {
        free(co->cl[i].as_held);
        co->cl[i].as_held = NULL;
        fedc_blob_unref(&co->cl[i].as_blob);
    }
}

/* The training request's weights are those of the current version: the evaluation request of
 * that version (co->wblob, serialised by start_eval after the step) already holds them, so they
 * are shared instead of serialised a second time (4 bytes per parameter less at the peak). */
static void share_weights(coord *co, fedc_blob *eval_blob) {
    if (eval_blob && co->as_eval_version == co->as_version && co->as_eval_have)
        co->w_reuse = fedc_blob_ref(eval_blob);
}

/* The FitIns of the current version, encoded once per version into as_env (co->env keeps what it
 * holds: the evaluation request of the step being evaluated). */
static int encode_fit(coord *co) {
    if (co->as_env && co->as_enc_version == co->as_version)
        return 0;
    uint8_t *env = co->env;
    size_t len = co->env_len;
    fedc_blob *wb = co->wblob;
    co->env = NULL;
    co->wblob = NULL;
    share_weights(co, wb);
    int rc = encode_weights_msg(co, FEDC_MSG_FIT_INS, co->as_version + 1);
    fedc_blob_unref(&co->w_reuse); /* not taken when encoding failed first */
    free(co->as_env);
    fedc_blob_unref(&co->as_wblob);
    co->as_env = rc ? NULL : co->env;
    co->as_env_len = rc ? 0 : co->env_len;
    co->as_wblob = rc ? NULL : co->wblob;
    if (rc) {
        free(co->env);
        fedc_blob_unref(&co->wblob);
    }
    co->env = env;
    co->env_len = len;
    co->wblob = wb;
    co->as_enc_version = co->as_version;
    if (rc)
        logm("step %u: out of memory encoding the training request", co->round);
    return rc;
}

/* Streamed updates being pulled into the buffer. */
static int pulling(const coord *co) {
    int n = 0;
    for (int i = 0; i < co->n_cl; i++)
        n += co->cl[i].as_pull;
    return n;
}

/* Updates the plain buffer can still take: K less those in and those being pulled. */
static int room(const coord *co) {
    return buffer_k(co) - co->answered - pulling(co);
}

/* Whether the buffer waits for its step: K plain updates in or being pulled, or (secure) the
 * session over K held updates under way. */
int async_buffer_full(const coord *co) {
    if (co->cfg->secagg)
        return co->sa.active && co->sa.stage == FEDC_SA_STAGE_FIT;
    return room(co) <= 0;
}

/* Sends the newest model to c if it is idle, eligible and more steps remain. Not while a full
 * buffer waits for its step: the model it would get is about to be replaced, so its update would
 * start one step stale; the step feeds it the new one. */
void async_feed(coord *co, client *c) {
    if (co->ph == PH_DONE || (co->ph == PH_FIT && async_buffer_full(co)) || c->fit_sel ||
        c->as_have || c->as_pull || c->up_stream || c->as_ready || c->as_in_sa || c->as_dl_left ||
        c->as_eval_due || !client_eligible(co, c) || co->as_version >= (uint32_t)co->cfg->rounds ||
        encode_fit(co))
        return;
    uint8_t *env = co->env;
    size_t len = co->env_len;
    fedc_blob *wb = co->wblob;
    co->env = co->as_env;
    co->env_len = co->as_env_len;
    co->wblob = co->as_wblob;
    int rc = send_packed(co, c, "fit_ins");
    co->env = env;
    co->env_len = len;
    co->wblob = wb;
    if (rc)
        return;
    c->fit_sel = 1;
    c->as_round = co->as_version + 1;
    c->as_sent = fedc_clock_s();
    fedc_blob_unref(&c->as_blob);
    if (stream_downlink(co) && co->as_wblob) { /* it pulls these chunks (stream.c) */
        c->as_blob = fedc_blob_ref(co->as_wblob);
        c->as_dl_left = co->n_params;
    }
    co->selected++;
}

/* A client pulls the weights of one instruction at a time (client_stream.c: a newer one replaces
 * the one whose weights are still coming, as a synchronous round's next phase must). An
 * asynchronous client may be sent its training request while the step's evaluation request is
 * still coming in, or the reverse; so the second waits until the coordinator has served the
 * first one's last chunk, which then reaches the client before it (one connection, in order). */
int async_eval_later(coord *co, client *c) {
    if (stream_downlink(co) && c->as_dl_left) {
        c->as_eval_due = 1;
        return 1;
    }
    c->as_dl_left = stream_downlink(co) ? co->n_params : 0; /* sent now */
    return 0;
}

void async_dl_served(client *c, uint64_t n) {
    c->as_dl_left = c->as_dl_left > n ? c->as_dl_left - n : 0;
}

/* PH_EVAL: the evaluation requests that waited for a training request's weights. */
static void send_due_evals(coord *co) {
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (!c->as_eval_due || c->as_dl_left)
            continue;
        c->as_eval_due = 0;
        if (c->eval_sel && !c->eval_done && send_packed(co, c, "evaluate_ins") == 0)
            c->as_dl_left = stream_downlink(co) ? co->n_params : 0;
    }
}

fedc_blob *async_fit_blob(const coord *co, const client *c, uint64_t counter, uint32_t round) {
    (void)co;
    if (!c->fit_sel || !c->as_blob || counter != c->as_round || round != c->as_round)
        return NULL;
    return c->as_blob;
}

const float *async_chunk_scale(coord *co, const client *c, const float *v, size_t n) {
    if (!co->cfg->async_mode || !c->as_pull || c->as_tau == 0)
        return v;
    /* a chunk holds at most stream_chunk values (stream_on_msg checks each against that) */
    if (!co->as_chunk && !(co->as_chunk = malloc(4 * stream_chunk(co))))
        return NULL;
    (void)fedc_staleness_scale(co->as_chunk, v, n, c->as_tau);
    return co->as_chunk;
}

void async_feed_idle(coord *co) {
    for (int i = 0; i < co->n_cl; i++)
        async_feed(co, &co->cl[i]);
}

/* co->upd, the scratch of a scaled update and the step's aggregate: the synchronous path frees it
 * between rounds (rounds.c, start_eval), so async makes sure it exists before each use. NULL
 * (logged) when out of memory. */
static float *scratch(coord *co) {
    if (!co->upd && !(co->upd = malloc(4 * (co->n_params ? co->n_params : 1))))
        logm("step %u: out of memory for %zu parameters", co->round, co->n_params);
    return co->upd;
}

/* Adds one update, scaled by s(tau), into the buffer; FEDC_OK, or an error with the reason in d
 * (the buffer unchanged). */
static fedc_err add_update(coord *co, client *c, const float *upd, uint64_t n_examples, double loss,
                           int unclipped, uint32_t tau, fedc_diag *d) {
    size_t n = co->n_params;
    if (!scratch(co)) {
        fedc_diag_set(d, "out of memory for the scaled update");
        return FEDC_ENOMEM;
    }
    if (c->round0 && n_examples > c->st_rows) {
        /* The buffer may hold two updates of one client, so the round-wide row check of a
         * synchronous round would not hold: each update is checked against its client's own
         * rows instead. */
        fedc_diag_set(d, "the update claims %llu training rows; round 0 counted %llu for %s",
                      (unsigned long long)n_examples, (unsigned long long)c->st_rows, c->name);
        return FEDC_ERANGE;
    }
    if (!(co->strat->clip_norm > 0)) {
        /* Checked before the scaling, which would otherwise hide a client that did not clip. */
        double norm = fedc_l2_norm(upd, n), b = (double)agg_update_bound(co);
        if (norm > b * (1.0 + 1e-4)) {
            fedc_diag_set(d,
                          "update norm %g exceeds the bound %g (--update-norm-bound): the "
                          "client did not clip",
                          norm, b);
            return FEDC_ERANGE;
        }
    }
    (void)fedc_staleness_scale(co->upd, upd, n, tau);
    fedc_err rc = agg_plain_add(co, c, co->upd, n_examples, loss, unclipped, d);
    if (rc)
        return rc;
    c->fit_counted = 1;
    c->took_part = 1;
    co->answered++;
    co->as_tau_sum += tau;
    if (tau > co->as_tau_max)
        co->as_tau_max = tau;
    return FEDC_OK;
}

static void refuse(coord *co, client *c, uint32_t round, fedc_err rc, const char *msg) {
    char reason[FEDC_DIAG_MAX + 48];
    snprintf(reason, sizeof reason, "fit_res refused: %s", msg);
    logp(co, &c->peer, c->name, "%s: %s", c->name, reason);
    reply_error(co, &c->peer, round, rc, reason);
}

/* The staleness of c's update now (c->as_round - 1 <= as_version: versions only grow); when
 * beyond --max-staleness, refused (counted, the client told both versions) and 1 returned. */
int async_too_stale(coord *co, client *c, uint32_t *tau) {
    *tau = co->as_version - (c->as_round - 1);
    if (*tau <= (uint32_t)co->cfg->max_staleness)
        return 0;
    co->as_stale++;
    char msg[200];
    snprintf(msg, sizeof msg,
             "stale update: trained on model version %u, the model is at version %u (%u step(s) "
             "later, --max-staleness %d)",
             c->as_round - 1, co->as_version, *tau, co->cfg->max_staleness);
    refuse(co, c, c->as_round, FEDC_EMISMATCH, msg);
    return 1;
}

/* Starts pulling c's streamed update into the buffer (it has room), scaled by s(tau): stream.c
 * counts it (answered) once its last chunk is in and its norm within the bound; async_settle
 * sees the pull end either way. */
static void start_pull(coord *co, client *c, uint32_t tau) {
    fedc_msg m;
    memset(&m, 0, sizeof m);
    m.kind = FEDC_MSG_FIT_RES;
    m.round = c->as_round; /* the counter its values are offered under */
    m.fit_res.n_examples = c->as_examples;
    m.fit_res.train_loss = c->as_loss;
    m.fit_res.seconds = c->as_seconds;
    m.fit_res.unclipped = c->as_unclipped;
    m.fit_res.update.count = co->n_params;
    m.fit_res.update.streamed = 1;
    c->as_pull = 1;
    c->as_tau = tau;
    c->as_pull_counted = c->fit_counted;
    c->fit_counted = 0; /* set by stream.c when this update counts */
    c->fit_done = 0;
    c->as_sent = fedc_clock_s(); /* the pull, too, must end within --round-timeout */
    stream_fit_res(co, c, &m);
}

/* Every loop turn: pulls that ended (counted, refused, or lost) free their clients for new work;
 * a buffer whose accumulator a lost pull spoilt is dropped. */
static void async_settle(coord *co) {
    int ended = 0;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (!c->as_pull || c->up_stream)
            continue;
        c->as_pull = 0;
        if (c->fit_counted) {
            co->as_tau_sum += c->as_tau;
            if (c->as_tau > co->as_tau_max)
                co->as_tau_max = c->as_tau;
        }
        c->fit_counted |= c->as_pull_counted;
        ended = 1;
    }
    if (co->st_spoilt) {
        /* stream.c logged which client and why. Nothing can take the partial chunks out (their
         * sender is gone), so the whole buffer goes, as a synchronous round attempt would. */
        int lost = co->answered + pulling(co);
        stream_reset(co); /* forgets the other pulls: their clients get new work */
        for (int i = 0; i < co->n_cl; i++) {
            client *c = &co->cl[i];
            if (c->as_pull) {
                c->as_pull = 0;
                c->fit_counted = c->as_pull_counted;
            }
        }
        co->retries++;
        coord_http_failed(co, co->retries <= co->cfg->max_retries);
        if (co->retries > co->cfg->max_retries) {
            logm("step %u: a streamed update was added in part and then lost, %d time(s); giving "
                 "up",
                 co->round, co->retries);
            co->ph = PH_DONE;
            return;
        }
        logm("step %u: a streamed update was added in part and then lost: the buffer's %d "
             "update(s) are dropped (no partial contribution reaches a step) and it fills again "
             "(attempt %d of %d)",
             co->round, lost, co->retries + 1, co->cfg->max_retries + 1);
        co->as_open = 0;
        async_start(co);
        return;
    }
    if (ended)
        async_feed_idle(co);
}

/* The held updates into the buffer, in name order (sorted_clients' order), so the sum does not
 * depend on the order they arrived in; those beyond K stay held. */
static void add_held(coord *co) {
    client **list = malloc(sizeof(client *) * MAX_CLIENTS);
    if (!list) {
        logm("step %u: out of memory", co->round);
        co->ph = PH_DONE;
        return;
    }
    int n = 0;
    for (int i = 0; i < co->n_cl; i++)
        if (co->cl[i].as_have && !dp_counted(co, &co->cl[i]))
            list[n++] = &co->cl[i];
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && strcmp(list[k - 1]->name, list[k]->name) > 0; k--) {
            client *t = list[k];
            list[k] = list[k - 1];
            list[k - 1] = t;
        }
    for (int i = 0; i < n && room(co) > 0; i++) {
        client *c = list[i];
        int remote = c->as_remote;
        c->as_have = c->as_remote = 0;
        if (remote && (!c->alive || c->gone))
            continue; /* its values went with it; fed again if it comes back */
        /* its staleness when applied: steps may have passed while it was held */
        uint32_t tau;
        if (async_too_stale(co, c, &tau))
            continue;
        if (remote) {
            start_pull(co, c, tau);
            continue;
        }
        fedc_diag d;
        fedc_err rc =
            add_update(co, c, c->as_held, c->as_examples, c->as_loss, c->as_unclipped, tau, &d);
        if (rc)
            refuse(co, c, c->as_round, rc, d.msg);
    }
    free(list);
}

/* From start_round (the WAIT phase found enough clients): a new buffer, its step's counters reset
 * and the held updates in, unless the buffer is still open (the clients ran out while it filled,
 * and are back); then every idle client is fed. */
void async_start(coord *co) {
    if (!co->as_live) {
        co->as_live = 1;
        co->as_version = co->round - 1; /* a resumed run continues from its checkpoint */
        for (int i = 0; i < co->n_cl; i++) {
            client *c = &co->cl[i];
            c->fit_sel = c->as_have = c->as_remote = c->as_pull = c->as_ready = c->as_in_sa = 0;
        }
        logm("asynchronous aggregation (FedBuff): a server step per %d update(s), staleness "
             "weight 1/sqrt(1 + tau), updates more than %d step(s) old refused",
             buffer_k(co), co->cfg->max_staleness);
    }
    co->ph = PH_FIT;
    if (co->as_open) {
        add_held(co); /* answers that came in while it waited */
        async_feed_idle(co);
        return;
    }
    if (agg_dp_on(co) && agg_budget_exceeded(co)) {
        co->budget_stop = 1;
        co->ph = PH_DONE;
        return;
    }
    co->as_open = 1;
    /* DP-FedAvg's fixed denominator: a step sums exactly K updates (agg_dp_finish) */
    co->dp_expected = (double)buffer_k(co);
    co->dp_sampled = buffer_k(co);
    for (int i = 0; i < co->n_cl; i++) {
        co->cl[i].fit_counted = 0;
        co->cl[i].eval_sel = co->cl[i].eval_done = 0;
    }
    agg_round_start(co);
    fedc_accum_reset(co->acc);
    co->round_t0 = fedc_clock_s();
    count_bytes_reset(co);
    co->selected = co->answered = 0;
    co->max_fit_seconds = 0;
    co->as_tau_sum = 0;
    co->as_tau_max = 0;
    co->as_stale = 0;
    co->deadline = co->round_t0 + co->cfg->round_timeout_s;
    fedc_fault_point("round-start", co->round);
    add_held(co);
    async_feed_idle(co);
}

void async_on_fit_res(coord *co, client *c, const fedc_msg *e) {
    if (!co->as_live || co->ph == PH_DONE || !c->fit_sel || e->round != c->as_round) {
        char reason[200];
        if (c->fit_sel)
            snprintf(reason, sizeof reason,
                     "fit_res for round %u is not expected: the training request out to this "
                     "client is for round %u",
                     e->round, c->as_round);
        else
            snprintf(reason, sizeof reason,
                     "fit_res for round %u is not expected: no training request is out to this "
                     "client (it timed out, or the coordinator restarted)",
                     e->round);
        logp(co, &c->peer, c->name, "%s: %s", c->name, reason);
        reply_error(co, &c->peer, e->round, FEDC_EMISMATCH, reason);
        return;
    }
    const fedc_fit_res *r = &e->fit_res;
    if (r->held != co->cfg->secagg) {
        /* Left training (it is told why, and sent work again): a client that sends its update
         * plain to a secure run, or says it holds one in a plain run, does not follow this run. */
        c->fit_sel = 0;
        refuse(co, c, e->round, FEDC_EMISMATCH,
               co->cfg->secagg ? "this run aggregates updates securely: the update stays at the "
                                 "client until its session (fit_res held)"
                               : "this run aggregates plain updates: a held update cannot be used");
        return;
    }
    c->fit_sel = 0;
    completed_exchange(c);
    uint32_t tau;
    if (async_too_stale(co, c, &tau)) {
        async_feed(co, c);
        return;
    }
    c->fit_seconds = r->seconds;
    if (r->seconds > co->max_fit_seconds)
        co->max_fit_seconds = r->seconds;
    if (r->held) {
        async_sa_ready(co, c);
        return;
    }
    if (r->update.streamed) {
        if (c->round0 && r->n_examples > c->st_rows) { /* add_update's check, before any pull */
            char msg[200];
            snprintf(msg, sizeof msg,
                     "the update claims %llu training rows; round 0 counted %llu for %s",
                     (unsigned long long)r->n_examples, (unsigned long long)c->st_rows, c->name);
            refuse(co, c, e->round, FEDC_ERANGE, msg);
            async_feed(co, c);
            return;
        }
        c->as_examples = r->n_examples;
        c->as_loss = r->train_loss;
        c->as_unclipped = r->unclipped;
        c->as_seconds = r->seconds;
        if (co->ph != PH_FIT || room(co) <= 0 || dp_counted(co, c)) {
            /* No room, or the step is being evaluated, or (under DP) this buffer counts the
             * client already: the values wait at the client (it is sent no work meanwhile) and
             * are pulled when the next buffer opens. */
            c->as_have = 1;
            c->as_remote = 1;
            return;
        }
        start_pull(co, c, tau); /* its client is fed once the pull ends (async_settle) */
        return;
    }
    const float *upd = fedc_tensor_floats(&r->update);
    if (!upd) {
        if (!scratch(co)) {
            refuse(co, c, e->round, FEDC_ENOMEM, "out of memory reading the update");
            return;
        }
        fedc_tensor_read(co->upd, &r->update);
        upd = co->upd;
    }
    const int counted = dp_counted(co, c);
    if (co->ph != PH_FIT || room(co) <= 0 || counted) {
        /* The buffer is full, or its step is being evaluated, or (under DP) it holds this
         * client's update already: held for the next buffer. */
        if (counted && co->ph == PH_FIT && room(co) > 0)
            logm("step %u: %s's next update waits for the next buffer (client-level DP counts a "
                 "client once per server step)",
                 co->round, c->name);
        if (!c->as_held && !(c->as_held = malloc(4 * co->n_params))) {
            refuse(co, c, e->round, FEDC_ENOMEM, "out of memory holding the update");
            return;
        }
        memcpy(c->as_held, upd, 4 * co->n_params);
        c->as_have = 1;
        c->as_remote = 0;
        c->as_examples = r->n_examples;
        c->as_loss = r->train_loss;
        c->as_unclipped = r->unclipped;
        return;
    }
    fedc_diag d;
    fedc_err rc = add_update(co, c, upd, r->n_examples, r->train_loss, r->unclipped, tau, &d);
    if (rc)
        refuse(co, c, e->round, rc, d.msg);
    async_feed(co, c);
}

void async_on_error(coord *co, client *c, uint32_t round) {
    if (!c->fit_sel || round != c->as_round)
        return;
    c->fit_sel = 0;
    /* Benched like a client that missed a deadline, so a client whose training keeps failing is
     * not sent work in a loop. */
    miss_deadline(co, c, "could not train");
}

void async_drop_weights(coord *co) {
    fedc_blob_unref(&co->wblob);
    fedc_blob_unref(&co->as_wblob);
    free(co->as_env);
    co->as_env = NULL;
    co->as_env_len = 0;
    co->as_eval_have = 0;
}

void async_start_eval(coord *co) {
    for (int i = 0; i < co->n_cl; i++)
        co->cl[i].as_eval_due = 0;
    start_eval(co);
    co->as_eval_have = co->wblob != NULL; /* the new version's weights, shared by encode_fit */
    co->as_eval_version = co->as_version;
}

/* The buffer is full: one server step, then the evaluation (rounds.c). */
static void server_step(coord *co) {
    co->as_open = 0; /* whatever happens, the next async_start opens a new buffer */
    co->fit_done_at = fedc_clock_s();
    fedc_fault_point("aggregate", co->round);
    co->plain_examples = 0; /* checked per update instead (add_update) */
    /* The weights of the version this step replaces go before the aggregate is made (as a
     * synchronous round's do, rounds.c upd_begin): clients still pulling them hold their own
     * reference (as_blob), and the next training request is encoded after the step. */
    async_drop_weights(co);
    if (!scratch(co)) {
        co->exit_code = 1;
        co->ph = PH_DONE;
        return;
    }
    if (agg_plain_mean(co) || agg_check_plain(co)) {
        co->retries++;
        coord_http_failed(co, co->retries <= co->cfg->max_retries);
        if (co->retries > co->cfg->max_retries) {
            logm("step %u failed %d times; giving up", co->round, co->retries);
            co->ph = PH_DONE;
            return;
        }
        logm("step %u: no usable aggregate; its %d update(s) are dropped and the buffer fills "
             "again (attempt %d of %d)",
             co->round, co->answered, co->retries + 1, co->cfg->max_retries + 1);
        async_start(co);
        return;
    }
    if (agg_dp_finish(co, NULL, (double)co->dp_unclipped)) {
        co->ph = PH_DONE;
        return;
    }
    if (agg_server_step(co))
        return;
    co->as_version++;
    async_start_eval(co);
    async_feed_idle(co); /* the new model to the clients that waited for it */
}

void async_advance(coord *co, double t) {
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (c->fit_sel && t - c->as_sent > co->cfg->round_timeout_s) {
            c->fit_sel = 0;
            c->as_dl_left = 0; /* whatever it pulled, its next request need not wait for it */
            miss_deadline(co, c, "sent no update within --round-timeout");
        }
        if (c->as_pull && c->up_stream && t - c->as_sent > co->cfg->round_timeout_s)
            /* marked dead: stream_check takes its pull out next turn (async_settle then) */
            miss_deadline(co, c, "did not send its streamed update within --round-timeout");
        if (!c->fit_sel && c->as_blob)
            fedc_blob_unref(&c->as_blob); /* its training request's weights are no longer read */
    }
    if (!co->cfg->secagg)
        async_settle(co);
    if (co->ph == PH_EVAL) {
        send_due_evals(co);
        async_feed_idle(co); /* those whose evaluation request's weights are all out now */
    }
    if (co->ph != PH_FIT)
        return;
    async_feed_idle(co); /* clients that joined or came back since */
    if (co->cfg->secagg) {
        if (async_sa_advance(co))
            return; /* a session is under way, or ended and moved the phase on */
    } else if (co->answered >= buffer_k(co)) {
        server_step(co);
        return;
    } else {
        add_held(co); /* room again (a pull refused): updates waiting at their clients */
    }
    int training = 0;
    for (int i = 0; i < co->n_cl; i++)
        training += co->cl[i].fit_sel || (co->cl[i].as_have && !dp_counted(co, &co->cl[i])) ||
                    co->cl[i].as_pull;
    if (!training) {
        /* Nobody left to fill the buffer: wait for clients as between rounds (--wait-timeout
         * applies); the buffer stays open with what it holds. */
        logm("step %u: no client is training and none can be sent work; waiting for clients "
             "(%d of %d update(s) in the buffer)",
             co->round, co->cfg->secagg ? async_sa_n_ready(co) : co->answered, buffer_k(co));
        co->ph = PH_WAIT;
        co->wait_since = co->wait_logged = t;
    }
}

double async_next_due(const coord *co, double due) {
    for (int i = 0; i < co->n_cl; i++) {
        const client *c = &co->cl[i];
        if ((c->fit_sel || c->as_pull) && c->as_sent + co->cfg->round_timeout_s < due)
            due = c->as_sent + co->cfg->round_timeout_s;
    }
    return due;
}

void async_metrics(const coord *co, fedc_json *j) {
    fedc__json_str(j, "mode", "async");
    fedc__json_int(j, "buffer", buffer_k(co));
    fedc__json_num(j, "staleness_mean", co->answered ? co->as_tau_sum / co->answered : NAN, 6);
    fedc__json_uint(j, "staleness_max", co->as_tau_max);
    fedc__json_int(j, "stale_refused", co->as_stale);
}
