/* One round of local training: the FitIns (clipping bound, the job queued when the previous one
 * still runs), the training thread (the model's fit, the update and its clip), and once it is
 * done the update sent plain or as our secure-aggregation input with its FedAvg weight, the
 * refusal when we cannot train, and the local --metrics-json line. */
#include "client_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedc/clip.h"
#include "fedc/clock.h"
#include "fedc/fault.h"
#include "fedc/fl_seed.h"
#include "fedc/jsonl.h"
#include "fedc/strategy.h"

/* The training thread: the model's fit from the global weights, the update and its clip; one
 * byte on the pipe then wakes the I/O loop (cl_on_training_done). */
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
    /* Test only: delay:train@*:MS makes a slow client (its training takes MS longer) without
     * holding the I/O thread, which goes on answering heartbeats and evaluations. */
    fedc_fault_point("train", j->round);
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

float *cl_weights_dest(cl *c, int fit) {
    if (!c->busy)
        return c->job.global;
    float **p = fit ? &c->pending_w : &c->eval_w;
    if (!*p)
        *p = malloc(4 * (c->n_params ? c->n_params : 1));
    return *p;
}

/* The training about to start rewrites job.buf. Our masked input lies there when the training
 * that produced it answered a session still under way (a retried round queued behind it): it
 * moves to a vector of its own, as the session needs it until it ends. */
static void keep_sa_input(cl *c) {
    if (!c->sa_job)
        return;
    uint32_t *own = c->sa_on ? malloc(4 * (c->sa_len ? c->sa_len : 1)) : NULL;
    if (!own) {
        int live = c->sa_on;
        cl_sa_vec_drop(c);
        if (live)
            cl_sa_abandon(c, "out of memory keeping our masked input");
        return;
    }
    memcpy(own, c->sa_vec, 4 * c->sa_len);
    if (c->up_stream == FEDC_STREAM_MASKED)
        c->up_data = own;
    c->sa_vec = own;
    c->sa_job = 0;
}

/* Starts the training thread for round `round` on the weights in job.global, once DP-SGD's plan
 * (if any) allows the round; the plan says why when it does not. */
static void start_training(cl *c, uint32_t round, const fedc_hyper *hp, float pos_weight,
                           int hold) {
    if (c->cfg->dp_clip > 0 && cl_dp_plan(c, round, hp))
        return;
    job *j = &c->job;
    if (c->up_stream == FEDC_STREAM_UPDATE)
        cl_stream_withdraw(c); /* the thread rewrites the update we served */
    keep_sa_input(c);
    j->round = round;
    j->model = c->model;
    fedc_model_fit t;
    memset(&t, 0, sizeof t);
    t.round = round;
    t.local_epochs = (int)hp->local_epochs;
    t.batch = (int)hp->batch;
    t.optimizer = (int)hp->optimizer;
    t.keep_opt_state = hp->keep_opt_state;
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
    j->hold = hold;
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
        cl_logm(c, "cannot start the training thread");
        return;
    }
    c->busy = 1;
}

int cl_on_fit_ins(cl *c, const fedc_msg *e) {
    const fedc_fit_ins *f = &e->fit_ins;
    if (!f->has_secagg && cl_plain_refused(c, e->round, "training request"))
        return 2;
    if (cl_apply_stats(c, f->mean, f->std)) {
        cl_logm(c, "out of memory standardising the data");
        return -1;
    }
    /* Under --mode async the update is held for a later session (cl_on_sa_fit_ins), and a
     * session under way (an evaluation) goes on meanwhile. */
    int hold = f->has_secagg && f->secagg.hold;
    if (f->has_secagg && !hold &&
        cl_sa_open(c, e->round, FEDC_SA_STAGE_FIT, &f->secagg, fedc_sa_fit_len(c->n_params)))
        return -1;
    /* New work means the coordinator dropped the update we held (it never asks for both). */
    c->have_held = 0;
    /* The update is clipped to the smaller of the two bounds the coordinator sets: clip_norm
     * (client-level DP, norm-bound) and update_norm_bound (every run; the coordinator checks the
     * aggregate against it). */
    fedc_hyper hp = f->hp;
    if (f->update_norm_bound > 0 && !(hp.clip_norm > 0 && hp.clip_norm <= f->update_norm_bound))
        hp.clip_norm = f->update_norm_bound;
    if (c->busy) {
        /* Still training an earlier round (it was retried or we were late): run this next, from
         * a vector of its own (the running training reads job.global). */
        float *w = cl_weights_dest(c, 1);
        if (!w) {
            cl_refuse_fit(c, e->round, FEDC_ENOMEM, "out of memory for the queued round's weights");
            return -1;
        }
        fedc_tensor_read(w, &f->weights);
        c->pending = 1;
        c->pending_round = e->round;
        c->pending_hp = hp;
        c->pending_pw = f->pos_weight;
        c->pending_hold = hold;
        return -1;
    }
    if (c->pending_w && f->weights.data == c->pending_w) {
        /* Pulled in chunks while a training ran, which has ended since: the vector becomes the
         * global one. */
        float *t = c->job.global;
        c->job.global = c->pending_w;
        c->pending_w = t;
    } else {
        fedc_tensor_read(c->job.global, &f->weights); /* nothing when pulled into it */
    }
    free(c->pending_w);
    c->pending_w = NULL;
    start_training(c, e->round, &hp, f->pos_weight, hold);
    return -1;
}

/* Test-only misdeeds (FEDC_FAULT misbehave:upd-scale|upd-flip|upd-nan|upd-zero): the update of a
 * broken or hostile client, sent in place of the real one (after clipping: such a client ignores
 * it). upd-weight (cl_on_training_done) overstates the client's FedAvg weight 4x: its weight in the
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
void cl_refuse_fit(cl *c, uint32_t round, fedc_err code, const char *why) {
    cl_logm(c, "round %u: %s", round, why);
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_ERROR, round);
    m.error.code = code;
    m.error.reason = why;
    (void)cl_send_msg(c, &m);
    if (c->sa_on && c->sa_stage == FEDC_SA_STAGE_FIT && c->sa_round == round)
        cl_sa_abandon(c, why);
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
        cl_logm(c, "--metrics-json: round %u not recorded: %s", j->round, d.msg);
    fedc__json_end(&o);
}

fedc_err cl_sa_fit_input(cl *c, const float *update, size_t n, uint32_t round, double loss,
                         int uniform, int dp, int unclipped, fedc_diag *why) {
    /* Our weight in the secure sum, by core/fl's one rule: our share of round 0's federation-wide
     * training rows (capped at 1 in case rows were added after round 0), or with uniform weights
     * (DP-FedAvg, the robust rules) 1, our update counting once (the coordinator divides the sum
     * by the summed weight). Without a row total the rule gives NaN: 0 here, refused below. */
    double w = fedc_strategy_weight(c->rows.train_rows, c->sa_total_rows, 1, uniform);
    w = isnan(w) ? 0.0 : w > 1.0 ? 1.0 : w;
    loss = isfinite(loss) && loss >= 0 ? loss : 0.0;
    if (c->cfg->dp_clip > 0 || dp)
        loss = 0.0; /* under DP it would leave un-noised: withheld */
    if (fedc_fault_point("upd-weight", round)) {
        cl_logm(c, "misbehaving (fault injection): claiming 4x our FedAvg weight");
        w = fmin(1.0, 4.0 * w);
    }
    if (!(w > 0)) {
        fedc_diag_set(why, "the coordinator gave no row total for weights");
        return FEDC_EINVAL;
    }
    return fedc_sa_fit_encode(c->sa_vec, update, n, w, loss, c->rows.train_rows, unclipped,
                              &c->sa_q, why);
}

/* --mode async with secure aggregation: the update stays here until its session (SaFitIns);
 * the coordinator hears only that it is ready. */
static void hold_update(cl *c, const job *j) {
    if (!c->held && !(c->held = malloc(4 * (j->n ? j->n : 1)))) {
        cl_refuse_fit(c, j->round, FEDC_ENOMEM, "out of memory holding the update");
        return;
    }
    memcpy(c->held, j->update, 4 * j->n);
    c->have_held = 1;
    c->held_round = j->round;
    c->held_loss = j->loss;
    c->held_unclipped = j->unclipped;
    c->held_uniform = j->uniform_weight;
    c->held_dp = j->client_dp;
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_FIT_RES, j->round);
    m.fit_res.held = 1;
    m.fit_res.seconds = j->seconds;
    fedc_fault_point("fit-res", j->round);
    (void)cl_send_msg(c, &m);
    c->last_fit_round = j->round;
    c->last_loss = j->loss;
    c->last_secs = j->seconds;
    c->last_rows = (int)c->rows.train_rows;
}

void cl_on_training_done(cl *c) {
    cl_wait_training(c);
    job *j = &c->job;
    if (!j->rc && j->norm >= 0)
        cl_logm(c, "round %u: update norm %.4g%s %.4g", j->round, j->norm,
                j->unclipped ? " within the clip norm" : ", clipped to", (double)j->clip_norm);
    if (!j->rc)
        corrupt_update(j);
    double eps = NAN;
    if (!j->rc && c->cfg->dp_clip > 0)
        eps = cl_dp_spend(c, j);
    if (!j->rc && c->cfg->metrics_json)
        append_metrics(c, j, eps);
    if (!j->rc)
        cl_http_trained(c, j->round, j->seconds, eps);
    if (j->rc) {
        char reason[FEDC_DIAG_MAX + 32];
        snprintf(reason, sizeof reason, "local training failed: %s", j->msg);
        cl_refuse_fit(c, j->round, j->rc, reason);
    } else if (j->hold) {
        hold_update(c, j);
    } else if (c->sa_on && c->sa_stage == FEDC_SA_STAGE_FIT && c->sa_round == j->round) {
        if (!c->sa_ready) {
            /* Quantised in place of the update, the header slots in front of it (job.buf). */
            cl_sa_vec_drop(c);
            c->sa_vec = j->buf;
            c->sa_job = 1;
            fedc_diag d;
            fedc_err rc = cl_sa_fit_input(c, j->update, j->n, j->round, j->loss, j->uniform_weight,
                                          j->client_dp, j->unclipped, &d);
            fedc_fault_point("fit-res", j->round);
            cl_sa_input_ready(c, rc, d.msg);
        }
        c->last_fit_round = j->round;
        c->last_loss = j->loss;
        c->last_secs = j->seconds;
        c->last_rows = (int)c->rows.train_rows;
    } else if (c->sa_on || !c->cfg->allow_plain) {
        /* Trained for a secure session that is gone (the round was retried): nothing to send. */
    } else {
        fedc_msg m;
        cl_env_init(c, &m, FEDC_MSG_FIT_RES, j->round);
        fedc_fit_res *r = &m.fit_res;
        /* The update goes from our buffer as the raw frame, without a copy (little-endian host
         * assumed, as for the initial values in send_join). */
        r->update.count = j->n;
        r->update.data = j->update;
        if (cl_stream_up(c, j->n)) {
            /* Larger than a message should carry: announced, then pulled by the coordinator in
             * chunks from j->update, which stays as it is until our next training. */
            r->update.data = NULL;
            r->update.streamed = 1;
            cl_stream_offer(c, FEDC_STREAM_UPDATE, j->round, j->round, j->update, j->n);
        }
        r->n_examples = c->rows.train_rows; /* real rows, not augmented ones */
        if (fedc_fault_point("upd-weight", j->round)) {
            cl_logm(c, "misbehaving (fault injection): claiming 4x our rows");
            r->n_examples *= 4;
        }
        r->train_loss = isfinite(j->loss) && j->loss >= 0 ? j->loss : 0.0;
        if (c->cfg->dp_clip > 0 || j->client_dp)
            r->train_loss = 0.0; /* under DP it would leave un-noised: withheld */
        r->seconds = j->seconds;
        r->unclipped = j->clip_norm > 0 && j->unclipped;
        fedc_fault_point("fit-res", j->round);
        (void)cl_send_msg(c, &m);
        c->last_fit_round = j->round;
        c->last_loss = j->loss;
        c->last_secs = j->seconds;
        c->last_rows = (int)c->rows.train_rows;
    }
    if (c->pending) {
        /* The queued round's weights become the global ones; the previous ones are no longer
         * needed (a training's update and masked input live in job.buf). */
        c->pending = 0;
        float *t = c->job.global;
        c->job.global = c->pending_w;
        free(t);
        c->pending_w = NULL;
        start_training(c, c->pending_round, &c->pending_hp, c->pending_pw, c->pending_hold);
    }
}
