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
 * With secure aggregation the updates stay at their clients until a session among K of them
 * (async_sa.c): a FitRes then only says the update is held, and this file's buffer of plain
 * updates stays empty. */
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
    for (int i = 0; i < co->n_cl; i++) {
        free(co->cl[i].as_held);
        co->cl[i].as_held = NULL;
    }
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
    int rc = encode_weights_msg(co, FEDC_MSG_FIT_INS, co->as_version + 1);
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

/* Whether the buffer waits for its step: K plain updates in, or (secure) the session over K held
 * updates under way. */
int async_buffer_full(const coord *co) {
    if (co->cfg->secagg)
        return co->sa.active && co->sa.stage == FEDC_SA_STAGE_FIT;
    return co->answered >= buffer_k(co);
}

/* Sends the newest model to c if it is idle, eligible and more steps remain. Not while a full
 * buffer waits for its step: the model it would get is about to be replaced, so its update would
 * start one step stale; the step feeds it the new one. */
void async_feed(coord *co, client *c) {
    if (co->ph == PH_DONE || (co->ph == PH_FIT && async_buffer_full(co)) || c->fit_sel ||
        c->as_have || c->as_ready || c->as_in_sa || !client_eligible(co, c) ||
        co->as_version >= (uint32_t)co->cfg->rounds || encode_fit(co))
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
    co->selected++;
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
    for (int i = 0; i < n && co->answered < buffer_k(co); i++) {
        client *c = list[i];
        c->as_have = 0;
        /* its staleness when applied: steps may have passed while it was held */
        uint32_t tau;
        if (async_too_stale(co, c, &tau))
            continue;
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
        if (4 * co->n_params > FEDC_INLINE_MAX_BYTES) {
            /* Updates above that size are streamed (pulled chunk by chunk, stream.c) and the
             * asynchronous buffer does not pull them yet. */
            loge("--mode async takes models whose update travels whole: at most %zu parameters "
                 "(%zu KiB); this model has %zu. Run it with --mode sync",
                 FEDC_INLINE_MAX_BYTES / 4, FEDC_INLINE_MAX_BYTES >> 10, co->n_params);
            co->exit_code = 2;
            co->ph = PH_DONE;
            return;
        }
        co->as_live = 1;
        co->as_version = co->round - 1; /* a resumed run continues from its checkpoint */
        for (int i = 0; i < co->n_cl; i++)
            co->cl[i].fit_sel = co->cl[i].as_have = co->cl[i].as_ready = co->cl[i].as_in_sa = 0;
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
        /* Checked at the start of the run (async_start); a client that streams anyway is refused.
         */
        refuse(co, c, e->round, FEDC_EMISMATCH,
               "a streamed update: --mode async takes updates whole (at most "
               "FEDC_INLINE_MAX_BYTES)");
        async_feed(co, c);
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
    if (co->ph != PH_FIT || co->answered >= buffer_k(co) || counted) {
        /* The buffer is full, or its step is being evaluated, or (under DP) it holds this
         * client's update already: held for the next buffer. */
        if (counted && co->ph == PH_FIT && co->answered < buffer_k(co))
            logm("step %u: %s's next update waits for the next buffer (client-level DP counts a "
                 "client once per server step)",
                 co->round, c->name);
        if (!c->as_held && !(c->as_held = malloc(4 * co->n_params))) {
            refuse(co, c, e->round, FEDC_ENOMEM, "out of memory holding the update");
            return;
        }
        memcpy(c->as_held, upd, 4 * co->n_params);
        c->as_have = 1;
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

/* The buffer is full: one server step, then the evaluation (rounds.c). */
static void server_step(coord *co) {
    co->as_open = 0; /* whatever happens, the next async_start opens a new buffer */
    co->fit_done_at = fedc_clock_s();
    fedc_fault_point("aggregate", co->round);
    co->plain_examples = 0; /* checked per update instead (add_update) */
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
    start_eval(co);
    async_feed_idle(co); /* the new model to the clients that waited for it */
}

void async_advance(coord *co, double t) {
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (c->fit_sel && t - c->as_sent > co->cfg->round_timeout_s) {
            c->fit_sel = 0;
            miss_deadline(co, c, "sent no update within --round-timeout");
        }
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
    }
    int training = 0;
    for (int i = 0; i < co->n_cl; i++)
        training += co->cl[i].fit_sel || (co->cl[i].as_have && !dp_counted(co, &co->cl[i]));
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
        if (c->fit_sel && c->as_sent + co->cfg->round_timeout_s < due)
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
