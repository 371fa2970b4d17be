/* --mode async with secure aggregation: FedBuff's buffer as one SecAgg+ session per server step.
 *
 * A client sent the newest model (a FitIns whose secure-aggregation settings say `hold`) trains
 * and keeps its update, answering with a FitRes that says `held` and carries nothing else. Once K
 * (--buffer) clients hold one, the coordinator opens a training session among exactly those K, the
 * oldest announcements first, with an SaFitIns per member naming the round its update was trained
 * for and its public staleness weight s(tau) (fedc_staleness_weight; tau measured now, when the
 * update enters the buffer). The member multiplies its update by s before quantising it with its
 * FedAvg weight w = rows / total rows, so the session sums w s delta, w, w loss and the rows; the
 * mean is sum w s delta / sum w, FedBuff's weighting exactly as the plain buffer computes it
 * (async.c). --buffer is at least the secure floor (args.c), so every sum the coordinator can
 * unmask covers several clients.
 *
 * Counters: the session is for step co->round (the model version + 1) and its attempt counts the
 * failed sessions of that step (co->retries), so fedc_sa_counter(round, attempt, FIT) never
 * repeats and stays below the step's evaluation session (stage EVAL), which comes after it. The
 * coordinator runs one session at a time (co->sa), so a fit session never overlaps an evaluation
 * for any member: a full buffer waits for the evaluation to end, while the clients go on training.
 *
 * A failed session: when no member was asked to unmask (nothing revealed), the members still
 * connected go back to the pool with their held updates and a new session (the next attempt)
 * opens when K are held again; masked inputs of the same update under fresh keys reveal nothing
 * more. When unmasking had begun, some shares may be out, so the members' updates are dropped
 * (they are sent new work, which replaces what they hold) and the step is abandoned as a
 * synchronous round is: a member never unmasks twice for the same data, and the clients' guard
 * refuses a second unmask of a (round, stage) anyway. After a successful session every member is
 * done with its update: those in the sum count, those that dropped out are sent new work. */
#include "coord_int.h"

#include <stdlib.h>
#include <string.h>

#include "fedc/clock.h"
#include "fedc/fault.h"
#include "fedc/strategy.h"

void async_sa_ready(coord *co, client *c) {
    c->as_ready = 1;
    c->as_ready_seq = ++co->as_seq;
}

static int pool_member(const client *c) {
    return c->as_ready && c->alive && !c->gone && !c->excluded;
}

int async_sa_n_ready(const coord *co) {
    int n = 0;
    for (int i = 0; i < co->n_cl; i++)
        n += pool_member(&co->cl[i]);
    return n;
}

static int cmp_seq(const void *a, const void *b) {
    const client *x = *(client *const *)a, *y = *(client *const *)b;
    return x->as_ready_seq < y->as_ready_seq ? -1 : x->as_ready_seq > y->as_ready_seq;
}

/* Opens the session among the K oldest held updates that are not too stale; 1 when opened. */
static int open_session(coord *co) {
    int k = buffer_k(co);
    if (async_sa_n_ready(co) < k)
        return 0;
    client **list = malloc(sizeof(client *) * MAX_CLIENTS);
    if (!list) {
        logm("step %u: out of memory", co->round);
        co->ph = PH_DONE;
        return 1;
    }
    int n = 0;
    for (int i = 0; i < co->n_cl; i++)
        if (pool_member(&co->cl[i]))
            list[n++] = &co->cl[i];
    qsort(list, (size_t)n, sizeof *list, cmp_seq);
    int m = 0;
    for (int i = 0; i < n && m < k; i++) {
        client *c = list[i];
        uint32_t tau;
        if (async_too_stale(co, c, &tau)) {
            c->as_ready = 0; /* told why; new work replaces what it holds */
            async_feed(co, c);
            continue;
        }
        c->as_tau = tau;
        list[m++] = c;
    }
    if (m < k) {
        free(list);
        return 0; /* stale ones were refused: wait for more */
    }
    sa_start(co, FEDC_SA_STAGE_FIT, fedc_sa_fit_len(co->n_params));
    for (int i = 0; i < k; i++) {
        client *c = list[i];
        fedc_msg msg;
        env_init(co, &msg, FEDC_MSG_SA_FIT_INS, co->round);
        sa_fill_ins(co, &msg.sa_fit_ins.secagg);
        msg.sa_fit_ins.trained_round = c->as_round;
        msg.sa_fit_ins.staleness_weight = fedc_staleness_weight(c->as_tau);
        c->as_ready = 0;
        c->as_in_sa = 1;
        c->fit_counted = 0;
        if (send_to(co, c, &msg) == 0)
            c->sa_in = 1;
    }
    uint32_t tau_max = 0;
    for (int i = 0; i < k; i++)
        tau_max = list[i]->as_tau > tau_max ? list[i]->as_tau : tau_max;
    logm("step %u: secure session over %d held update(s) (staleness at most %u)", co->round, k,
         tau_max);
    free(list);
    return 1;
}

int async_sa_advance(coord *co) {
    if (co->sa.active) {
        if (co->sa.stage == FEDC_SA_STAGE_FIT)
            sa_advance(co);
        return 1;
    }
    return open_session(co);
}

/* The members after a session: back to the pool (requeue, its held update unused), or done with
 * their update; either way no longer in a session. */
static void release_members(coord *co, int requeue) {
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (!c->as_in_sa)
            continue;
        c->as_in_sa = 0;
        c->as_ready = requeue && c->alive && !c->gone && !c->excluded && !c->sa_quit;
    }
}

void async_sa_done(coord *co, const uint32_t *sum, int n, int spent) {
    co->fit_done_at = fedc_clock_s();
    if (sum)
        async_drop_weights(co); /* room for the aggregate (co->upd) */
    if (sum && sa_fit_mean(co, sum, n))
        sum = NULL;
    if (!sum) {
        release_members(co, !spent);
        if (spent) {
            /* abandon_round moves to the next round number; the model version follows it, so
             * that version + 1 stays the round its FitIns carry. */
            co->as_open = 0;
            co->as_version++;
            abandon_round(co);
            return;
        }
        co->retries++;
        coord_http_failed(co, co->retries <= co->cfg->max_retries);
        if (co->retries > co->cfg->max_retries) {
            logm("step %u: %d secure session(s) failed; giving up", co->round, co->retries);
            co->ph = PH_DONE;
            return;
        }
        logm("step %u: the secure session failed before anything was revealed; its members keep "
             "their updates for the next session (attempt %d of %d)",
             co->round, co->retries + 1, co->cfg->max_retries + 1);
        return;
    }
    co->as_tau_sum = 0;
    co->as_tau_max = 0;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (!c->as_in_sa || !c->fit_counted)
            continue;
        c->took_part = 1;
        co->as_tau_sum += c->as_tau;
        if (c->as_tau > co->as_tau_max)
            co->as_tau_max = c->as_tau;
    }
    release_members(co, 0);
    co->as_open = 0; /* the next async_start opens a new buffer */
    /* Client-level DP: the noise on the session's sum of K clipped, staleness-scaled updates
     * (the update part of the summed vector), over the fixed denominator K */
    if (agg_dp_finish(co, sum + (fedc_sa_fit_len(co->n_params) - co->n_params), co->sa_unclipped)) {
        co->ph = PH_DONE;
        return;
    }
    fedc_fault_point("aggregate", co->round);
    if (agg_server_step(co))
        return;
    co->as_version++;
    async_start_eval(co);
    async_feed_idle(co); /* the new model to the members and to whoever waited for it */
}
