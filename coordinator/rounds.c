/* The training rounds: selection (the strategy's, the built-in sample, or the Poisson sample under
 * DP), FitIns, collecting the updates (plain) or the secure sum, the server step, the federated
 * evaluation, and the end of a round: its metrics line and checkpoint (metrics.c, resume.c), a
 * retry, a noise-only release under DP, or abandoning a round whose sum failed after unmasking. */
#include "coord_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/clock.h"
#include "fedc/fault.h"
#include "fedc/jsonl.h"

/* Encodes an instruction carrying the current global weights once: co->env and co->wblob are
 * sent unchanged to every recipient (the weights as the raw frame, without a copy per client). */
int encode_weights_msg(coord *co, fedc_msg_kind kind, uint32_t round) {
    free(co->env);
    co->env = NULL;
    fedc_blob_unref(&co->wblob);
    if (co->w_reuse) { /* the same weights serialised already (coord_int.h) */
        co->wblob = co->w_reuse;
        co->w_reuse = NULL;
    } else if (fedc_blob_new(&co->wblob, 4 * co->n_params)) {
        return -1;
    } else {
        fedc_tensor_write(co->wblob->data, co->model->params, co->n_params);
    }
    /* A model larger than one chunk: the instruction carries the count, the clients pull the
     * values as slices of the same blob (stream.c). */
    co->w_streamed = stream_downlink(co);
    fedc_tensor t = {co->n_params, co->w_streamed ? NULL : co->wblob->data, co->w_streamed};
    fedc_msg e;
    env_init(co, &e, kind, round);
    if (kind == FEDC_MSG_FIT_INS) {
        fedc_fit_ins *f = &e.fit_ins;
        f->hp.local_epochs = (uint32_t)co->cfg->local_epochs;
        f->hp.batch = (uint32_t)co->cfg->batch;
        f->hp.lr = co->cfg->lr;
        f->hp.prox_mu = co->cfg->prox_mu;
        f->hp.optimizer = (uint32_t)co->cfg->optimizer;
        f->hp.keep_opt_state = co->cfg->keep_opt_state;
        f->hp.l2 = co->cfg->l2;
        f->hp.dropout = co->cfg->dropout;
        f->hp.val_fraction = co->cfg->val_fraction;
        f->hp.clip_norm = agg_client_clip(co);
        f->hp.uniform_weight = agg_uniform(co);
        f->hp.client_dp = agg_dp_on(co);
        f->weights = t;
        f->n_mean = f->n_std = (size_t)co->n_features;
        f->mean = co->model->mean;
        f->std = co->model->std;
        f->pos_weight = co->pos_weight;
        f->has_secagg = co->cfg->secagg;
        sa_fill_ins(co, &f->secagg);
        if (co->cfg->async_mode) {
            /* Asynchronous: train and hold; the session comes once K updates are held. */
            f->secagg.hold = 1;
            f->secagg.counter = 0;
        }
        f->update_norm_bound = agg_update_bound(co);
    } else {
        fedc_evaluate_ins *v = &e.evaluate_ins;
        v->weights = t;
        v->threshold = co->cfg->threshold;
        v->n_mean = v->n_std = (size_t)co->n_features;
        v->mean = co->model->mean;
        v->std = co->model->std;
        v->has_secagg = co->cfg->secagg;
        sa_fill_ins(co, &v->secagg);
    }
    edge_fill_ins(co, &e); /* an edge's clients train and score as the upstream says */
    fedc_diag d;
    if (fedc_msg_encode(&co->env, &co->env_len, &e, &d)) {
        logm("%s", d.msg);
        return -1;
    }
    return 0;
}

/* The round's aggregate goes into co->upd, which exists only from the end of the collection to
 * the server step: the training instruction's weights (co->wblob) are no longer served by then
 * and go first, so that the coordinator holds 4 bytes per parameter fewer (docs/architecture.md,
 * "Wire protocol", memory). -1 (logged, run stopped) when out of memory. */
static int upd_begin(coord *co) {
    fedc_blob_unref(&co->wblob); /* ZeroMQ keeps what it still sends (reference-counted) */
    co->w_streamed = 0;
    if (!co->upd && !(co->upd = malloc(4 * (co->n_params ? co->n_params : 1)))) {
        logm("round %u: out of memory for the aggregate of %zu parameters", co->round,
             co->n_params);
        co->exit_code = 1;
        co->ph = PH_DONE;
        return -1;
    }
    return 0;
}

/* Client-level DP: a sampled round that cannot produce an aggregate (its Poisson sample too small,
 * too few answers, an implausible or out-of-bound sum) still releases a model, moved by the noise
 * alone over the same denominator q N, and is charged like any round: redrawing the sample instead
 * would include each client more often than the q the accountant charges. */
static void release_noise_only(coord *co, const char *why) {
    logm("round %u: %s; client-level DP releases a noise-only update (charged like any round; the "
         "sample is not redrawn)",
         co->round, why);
    co->dp_noise_only = 1;
    co->answered = 0;
    for (int i = 0; i < co->n_cl; i++)
        co->cl[i].fit_counted = 0;
    co->fit_done_at = fedc_clock_s();
    if (upd_begin(co))
        return;
    if (agg_dp_finish(co, NULL, 0)) {
        co->ph = PH_DONE;
        return;
    }
    if (agg_server_step(co))
        return;
    start_eval(co);
}

static void retry_round(coord *co);

/* A training round without a usable aggregate: retried, or under DP released as noise. */
static void fit_failed(coord *co, const char *why) {
    if (edge_fit_failed(co, why))
        return; /* an edge answers the upstream instead of retrying (edge_coord.c) */
    if (agg_dp_on(co))
        release_noise_only(co, why);
    else
        retry_round(co);
}

/* The strategy's own selection among the n eligible clients (list, in name order): their indices
 * into chosen; how many, or -1 (logged) when it failed or answered something impossible. */
static int strategy_select(coord *co, client **list, int n, int *chosen) {
    const fedc_strategy *st = co->strat;
    fedc_candidate *cand = malloc(sizeof *cand * (size_t)n);
    unsigned char *seen = calloc((size_t)n, 1);
    int k = -1;
    if (!cand || !seen) {
        logm("round %u: out of memory selecting clients", co->round);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        cand[i].name = list[i]->name;
        /* Per-client rows are known from round 0's plain statistics only. */
        cand[i].examples = !co->cfg->secagg && list[i]->round0 ? list[i]->st_rows : 0;
    }
    fedc_select_in in = {
        co->round, co->cfg->seed, co->cfg->fraction_fit, co->cfg->min_fit_clients, cand, n};
    fedc_diag d;
    fedc_diag_set(&d, "(no reason given)");
    k = st->select(st->ctx, &in, chosen, &d);
    if (k < 0 || k > n) {
        logm("round %u: strategy %s: select %s%s; stopping", co->round, st->name,
             k < 0 ? "failed: " : "returned more clients than eligible", k < 0 ? d.msg : "");
        k = -1;
        goto out;
    }
    for (int i = 0; i < k; i++) {
        if (chosen[i] < 0 || chosen[i] >= n || seen[chosen[i]]) {
            logm("round %u: strategy %s: select chose index %d (entry %d), expected distinct "
                 "indices in [0, %d); stopping",
                 co->round, st->name, chosen[i], i, n);
            k = -1;
            goto out;
        }
        seen[chosen[i]] = 1;
    }
out:
    free(cand);
    free(seen);
    return k;
}

void start_round(coord *co) {
    if (co->cfg->async_mode) {
        async_start(co);
        return;
    }
    if (agg_dp_on(co) && agg_budget_exceeded(co)) {
        co->budget_stop = 1;
        co->ph = PH_DONE;
        return;
    }
    if (co->cfg->secagg)
        sa_start(co, FEDC_SA_STAGE_FIT, fedc_sa_fit_len(co->n_params));
    client **list = malloc(sizeof(client *) * MAX_CLIENTS);
    int *cand = malloc(sizeof(int) * MAX_CLIENTS);
    int *chosen = malloc(sizeof(int) * MAX_CLIENTS);
    if (!list || !cand || !chosen || encode_weights_msg(co, FEDC_MSG_FIT_INS, co->round)) {
        logm("out of memory starting round %u", co->round);
        free(list);
        free(cand);
        free(chosen);
        co->ph = PH_DONE;
        return;
    }
    int n = sorted_clients(co, list, client_eligible);
    for (int i = 0; i < n; i++)
        cand[i] = i;
    /* Under DP the sample must be unknown to whoever sees the model (the privacy amplification
     * by sampling rests on it): Poisson sampling from secret randomness, not the public seed
     * (a strategy's own select is refused then, agg_init). */
    int k;
    if (agg_dp_on(co))
        k = agg_dp_sample(co, chosen, n);
    else if (co->strat->select && n > 0)
        k = strategy_select(co, list, n, chosen);
    else
        k = fedc_sample_clients(chosen, cand, n, co->cfg->fraction_fit, co->cfg->min_fit_clients,
                                co->cfg->seed, co->round);
    if (k < 0) {
        free(list);
        free(cand);
        free(chosen);
        co->exit_code = 1;
        co->ph = PH_DONE;
        return;
    }
    for (int i = 0; i < co->n_cl; i++) {
        co->cl[i].fit_sel = co->cl[i].fit_done = 0;
        co->cl[i].eval_sel = co->cl[i].eval_done = 0;
        co->cl[i].fit_seconds = 0;
        co->cl[i].fit_counted = 0;
    }
    agg_round_start(co);
    fedc_accum_reset(co->acc);
    stream_reset(co);
    co->round_t0 = fedc_clock_s();
    count_bytes_reset(co);
    co->selected = co->answered = 0;
    co->max_fit_seconds = 0;
    fedc_fault_point("round-start", co->round);
    co->dp_sampled = k;
    if (agg_dp_on(co) && k < agg_dp_min_sample(co)) {
        /* Under DP the round is released anyway (no redraw): see release_noise_only. */
        free(list);
        free(cand);
        free(chosen);
        char why[96];
        snprintf(why, sizeof why, "the Poisson sample has %d client(s), %d needed to aggregate", k,
                 agg_dp_min_sample(co));
        release_noise_only(co, why);
        return;
    }
    for (int i = 0; i < k; i++) {
        client *c = list[chosen[i]];
        if (send_packed(co, c, "fit_ins") == 0) {
            c->fit_sel = 1;
            c->sa_in = co->cfg->secagg;
            co->selected++;
        }
    }
    free(list);
    free(cand);
    free(chosen);
    co->ph = PH_FIT;
    co->deadline = fedc_clock_s() + co->cfg->round_timeout_s;
}

void on_fit_res(coord *co, client *c, const fedc_msg *e) {
    if (co->cfg->async_mode) {
        async_on_fit_res(co, c, e);
        return;
    }
    if (co->cfg->secagg) {
        reply_error(co, &c->peer, e->round, FEDC_EMISMATCH,
                    "fit_res refused: this run aggregates updates securely (sa_masked)");
        return;
    }
    if (co->ph != PH_FIT || e->round != co->round || !c->fit_sel || c->fit_done || c->up_stream) {
        char reason[160];
        snprintf(reason, sizeof reason, "fit_res for round %u is not expected (the round is %u%s)",
                 e->round, co->round, co->ph == PH_FIT ? "" : ", collection closed");
        reply_error(co, &c->peer, e->round, FEDC_EMISMATCH, reason);
        return;
    }
    const fedc_fit_res *r = &e->fit_res;
    if (r->update.streamed) {
        stream_fit_res(co, c, e); /* pulled chunk by chunk, added as it arrives */
        return;
    }
    /* On a little-endian host an aligned raw frame already is the float vector: add it in place
     * instead of copying 4 bytes per parameter first. */
    const float *upd = fedc_tensor_floats(&r->update);
    float *copy = NULL;
    fedc_diag d;
    fedc_err rc = FEDC_OK;
    if (!upd && !(copy = malloc(4 * (co->n_params ? co->n_params : 1)))) {
        fedc_diag_set(&d, "out of memory reading the update");
        rc = FEDC_ENOMEM;
    } else if (!upd) {
        fedc_tensor_read(copy, &r->update);
        upd = copy;
    }
    if (!rc)
        rc = agg_plain_add(co, c, upd, r->n_examples, r->train_loss, r->unclipped, &d);
    free(copy);
    if (rc) {
        char reason[FEDC_DIAG_MAX + 32];
        snprintf(reason, sizeof reason, "fit_res refused: %s", d.msg);
        logm("%s: %s", c->name, reason);
        reply_error(co, &c->peer, e->round, rc, reason);
        c->fit_done = 1; /* one answer per round; it is left out of this one */
        return;
    }
    c->fit_done = 1;
    c->fit_counted = 1;
    completed_exchange(c);
    c->took_part = 1;
    c->fit_seconds = r->seconds;
    if (r->seconds > co->max_fit_seconds)
        co->max_fit_seconds = r->seconds;
    co->answered++;
}

static int fit_complete(const coord *co) {
    for (int i = 0; i < co->n_cl; i++) {
        const client *c = &co->cl[i];
        if (c->fit_sel && !c->fit_done && c->alive && !c->gone)
            return 0;
    }
    return 1;
}

void start_eval(coord *co) {
    free(co->upd); /* the server step has used it: room for the weights' blob */
    co->upd = NULL;
    co->ph = PH_EVAL;
    co->eval_sent = co->eval_answered = 0;
    fedc_eval_acc_reset(co->eval);
    if (co->cfg->secagg)
        sa_start(co, FEDC_SA_STAGE_EVAL, fedc_sa_eval_len(co->eval));
    if (encode_weights_msg(co, FEDC_MSG_EVALUATE_INS, co->round)) {
        logm("out of memory encoding the evaluation request");
        return;
    }
    /* The noised model leaves with the evaluation request: record that first, so that a resumed
     * run charges this round even if it dies before the checkpoint. */
    if (agg_mark_release(co)) {
        co->ph = PH_DONE;
        return;
    }
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (client_eligible(co, c) && ((co->cfg->async_mode && async_eval_later(co, c)) ||
                                       send_packed(co, c, "evaluate_ins") == 0)) {
            c->eval_sel = 1;
            c->sa_in = co->cfg->secagg;
            co->eval_sent++;
        }
    }
    fedc_fault_point("eval-sent", co->round);
    co->deadline = fedc_clock_s() + co->cfg->round_timeout_s;
}

void on_eval_res(coord *co, client *c, const fedc_msg *e) {
    if (co->cfg->secagg) {
        reply_error(co, &c->peer, e->round, FEDC_EMISMATCH,
                    "evaluate_res refused: this run sums evaluations securely (sa_masked)");
        return;
    }
    if (co->ph != PH_EVAL || e->round != co->round || !c->eval_sel || c->eval_done) {
        reply_error(co, &c->peer, e->round, FEDC_EMISMATCH,
                    "evaluate_res is not expected now (stale round or collection closed)");
        return;
    }
    const fedc_evaluate_res *r = &e->evaluate_res;
    fedc_eval_acc *t = co->eval_tmp, view;
    if (co->task == FEDC_TASK_BINARY && r->n_hist_pos == t->bins) {
        /* Merged from the message's histograms themselves (fedc_eval_acc_merge only reads
         * them): clearing the scratch accumulator and copying them into it were two more passes
         * over 2 x bins counters (160 KB) per client and round. */
        view = *t;
        view.hist_pos = (uint64_t *)r->hist_pos;
        view.hist_neg = (uint64_t *)r->hist_neg;
        t = &view;
    } else {
        fedc_eval_acc_reset(t);
    }
    t->n = r->n;
    t->loss_sum = r->log_loss_sum;
    if (co->task == FEDC_TASK_BINARY && r->n_hist_pos == t->bins) {
        t->tp = r->tp;
        t->fp = r->fp;
        t->tn = r->tn;
        t->fn = r->fn;
    } else if (co->task == FEDC_TASK_MULTICLASS &&
               r->n_confusion == (size_t)co->n_classes * (size_t)co->n_classes) {
        memcpy(t->confusion, r->confusion, 8 * r->n_confusion);
    } else if (co->task == FEDC_TASK_REGRESSION) {
        t->sse = r->sse;
        t->sum_y = r->sum_y;
        t->sum_y2 = r->sum_y2;
    } else if (r->n != 0) {
        reply_error(co, &c->peer, e->round, FEDC_EMISMATCH,
                    "evaluate_res: the result does not fit the task");
        c->eval_done = 1;
        return;
    }
    if (fedc_eval_acc_merge(co->eval, t)) {
        logp(co, &c->peer, c->name, "%s: evaluation result does not fit; ignored", c->name);
    } else {
        c->took_part = 1;
    }
    c->eval_done = 1;
    co->eval_answered++;
}

static int eval_complete(const coord *co) {
    for (int i = 0; i < co->n_cl; i++) {
        const client *c = &co->cl[i];
        if (c->eval_sel && !c->eval_done && c->alive && !c->gone)
            return 0;
    }
    return 1;
}

static int finish_round(coord *co) {
    fedc_eval_summary s;
    fedc_eval_acc_summary(co->eval, &s);
    double secs = fedc_clock_s() - co->round_t0;
    double loss = co->cfg->secagg ? co->sa_loss : fedc_accum_mean_loss(co->acc);
    if (agg_dp_on(co))
        loss = NAN; /* under client-level DP the clients send none (it would not be noised) */
    int best = best_consider(co, &s);
    char *line = metrics_line(co, &s, loss, secs);
    if (!line)
        return -1;
    /* the best model before the checkpoint: the file never lags what the checkpoint says */
    if ((best && (best_save(co, line) || best_keep(co, line))) || save_checkpoint(co, line)) {
        cJSON_free(line);
        return -1;
    }
    fedc_fault_point("checkpoint", co->round);
    free(co->last_line);
    co->last_line = strdup(line);
    int arc = append_metrics(co, line);
    if (!arc)
        coord_http_round(co, line, secs, 1);
    cJSON_free(line);
    if (arc)
        return -1;
    if (!co->secure)
        logw("--insecure: round %u travelled without encryption or client "
             "authentication",
             co->round);
    if (!co->cfg->quiet)
        metrics_print(co, &s, loss, secs);
    (void)best_patience(co); /* logs when --patience runs out */
    co->retries = 0;
    co->sa_attempt_skip = 0;
    co->round++;
    return 0;
}

/* A round that cannot count: try it again, up to --max-retries times. */
static void retry_round(coord *co) {
    co->retries++;
    coord_http_failed(co, co->retries <= co->cfg->max_retries);
    if (co->retries > co->cfg->max_retries) {
        logm("round %u failed %d times; giving up", co->round, co->retries);
        co->ph = PH_DONE;
        return;
    }
    logm("round %u: retrying (attempt %d of %d)", co->round, co->retries + 1,
         co->cfg->max_retries + 1);
    co->ph = PH_WAIT;
    co->wait_since = co->wait_logged = fedc_clock_s();
}

/* A secure round whose training sum failed after shares may have been revealed: retrying it
 * would let a coordinator subtract two sums of the same updates, so the clients refuse and so do
 * we. The model stays as it was; the next round number starts. */
void abandon_round(coord *co) {
    if (edge_fit_failed(co, "the secure sum failed after unmasking began"))
        return;
    logm("round %u abandoned: its training sum failed after unmasking began, and a stage is "
         "unmasked at most once; round %u starts from the same model",
         co->round, co->round + 1);
    char *line = metrics_abandoned_line(co);
    if (line && append_metrics(co, line))
        logm("cannot append to the metrics file");
    coord_http_round(co, line, 0, 0);
    cJSON_free(line);
    co->retries = 0;
    co->sa_attempt_skip = 0;
    co->round++;
    co->ph = PH_WAIT;
    co->wait_since = co->wait_logged = fedc_clock_s();
}

/* Closes the collection of a round: aggregate, or retry with too few results. */
static void close_fit(coord *co) {
    co->fit_done_at = fedc_clock_s();
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (c->fit_sel && !c->fit_done && c->alive)
            miss_deadline(co, c, "missed the round deadline");
    }
    /* An update still being pulled at the deadline was added in part: the sum is spoilt. */
    stream_close(co, "the round's deadline passed");
    if (co->st_spoilt) {
        stream_reset(co);
        fit_failed(co, "a streamed update was added in part and then lost");
        return;
    }
    if (co->answered < co->cfg->min_fit_clients) {
        logm("round %u: %d result(s), %d needed", co->round, co->answered,
             co->cfg->min_fit_clients);
        fit_failed(co, "too few results");
        return;
    }
    fedc_fault_point("aggregate", co->round);
    if (upd_begin(co))
        return;
    if (agg_plain_mean(co) || agg_check_plain(co)) {
        fit_failed(co, "no usable aggregate");
        return;
    }
    if (edge_fit_done(co))
        return;
    if (agg_dp_finish(co, NULL, (double)co->dp_unclipped)) {
        co->ph = PH_DONE;
        return;
    }
    if (agg_server_step(co))
        return;
    start_eval(co);
}

/* The round's evaluation is in (or given up): metrics, checkpoint, next round. */
static void end_round(coord *co) {
    if (finish_round(co)) {
        co->ph = PH_DONE;
        return;
    }
    edge_eval_done(co);
    co->ph = PH_WAIT;
    co->wait_since = co->wait_logged = fedc_clock_s();
}

int sa_fit_mean(coord *co, const uint32_t *sum, int n) {
    fedc_diag d;
    fedc_sa_fit_sum t;
    if (!co->upd && !(co->upd = malloc(4 * (co->n_params ? co->n_params : 1)))) {
        logm("round %u: out of memory for the aggregate of %zu parameters", co->round,
             co->n_params);
        return -1;
    }
    if (fedc_sa_fit_decode(co->upd, &t, sum, co->n_params, &co->sa.q,
                           (uint32_t)co->cfg->sa_max_clients, &d)) {
        logm("round %u: the securely summed update is implausible, rejected: %s", co->round, d.msg);
        return -1;
    }
    if (agg_check_secure(co, t.weight, t.examples, n))
        return -1;
    co->answered = n;
    co->sa_loss = t.wloss / t.weight;
    co->sa_unclipped = t.unclipped;
    if (t.clipped > 0)
        logm("round %u: %.0f update coordinate(s) were clipped at %g (--secagg-clip)", co->round,
             t.clipped, (double)co->cfg->sa_clip);
    const float inv = (float)(1.0 / t.weight);
    for (size_t i = 0; i < co->n_params; i++)
        co->upd[i] *= inv;
    return 0;
}

/* The totals of a secure sum (coord_int.h). */
void sa_finished(coord *co, const uint32_t *sum, int n, int spent) {
    fedc_diag d;
    int stage = co->sa.stage;
    if (stage == FEDC_SA_STAGE_STATS) {
        stats_secure_done(co, sum, n, spent);
        return;
    }
    if (stage == FEDC_SA_STAGE_FIT && co->cfg->async_mode) {
        async_sa_done(co, sum, n, spent);
        return;
    }
    if (stage == FEDC_SA_STAGE_FIT) {
        co->fit_done_at = fedc_clock_s();
        if (upd_begin(co))
            return;
        if (sum && sa_fit_mean(co, sum, n))
            sum = NULL;
        if (!sum && spent && !agg_dp_on(co)) {
            abandon_round(co); /* under DP the noise alone is released instead: no retry */
            return;
        }
        if (!sum) {
            fit_failed(co, "no usable secure sum");
            return;
        }
        if (edge_fit_done(co))
            return;
        if (agg_dp_finish(co, sum + (fedc_sa_fit_len(co->n_params) - co->n_params),
                          co->sa_unclipped)) {
            co->ph = PH_DONE;
            return;
        }
        fedc_fault_point("aggregate", co->round);
        if (agg_server_step(co))
            return;
        start_eval(co);
        return;
    }
    fedc_eval_acc_reset(co->eval);
    if (sum && fedc_sa_eval_decode(co->eval, sum, &d)) {
        logm("round %u: the securely summed evaluation is implausible, rejected: %s", co->round,
             d.msg);
        fedc_eval_acc_reset(co->eval);
    } else if (sum) {
        co->eval_answered = n;
    }
    end_round(co);
}

/* A round in the event loop (advance, phases PH_FIT and PH_EVAL): the secure session's steps, or
 * the plain collection closed once every selected client answered or the deadline passed. */
void round_advance(coord *co, double t) {
    if (co->cfg->async_mode) {
        /* the buffer, its session (secure) and its server step; the evaluation as below */
        async_advance(co, t);
        if (co->ph != PH_EVAL)
            return;
    }
    if (co->cfg->secagg) {
        sa_advance(co);
        return;
    }
    if (co->ph == PH_FIT) {
        if (fit_complete(co) || t >= co->deadline)
            close_fit(co);
        return;
    }
    if (eval_complete(co) || t >= co->deadline) {
        for (int i = 0; i < co->n_cl; i++) {
            client *c = &co->cl[i];
            if (c->eval_sel && !c->eval_done && c->alive)
                miss_deadline(co, c, "sent no evaluation before the deadline");
        }
        end_round(co);
    }
}
