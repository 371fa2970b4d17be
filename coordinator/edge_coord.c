/* The edge aggregator, the coordinator's side (edge.h): after round 0 it runs no schedule of its
 * own; each request the upstream client posts (train one round from these weights, or score
 * these weights) becomes one round among its clients with the upstream's round number,
 * hyperparameters, standardisation and class weight, answered with the mean update of its
 * clients (the upstream's client forms, clips, weights and masks it) or with their summed
 * evaluation. */
#define _POSIX_C_SOURCE 200809L
#include "coord_int.h"
#include "edge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedc/card.h"
#include "fedc/clock.h"

int edge_wake_fd(const coord *co) {
    return co->edge ? co->edge->wake[0] : -1;
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

/* Answers the request in progress (lock held by the caller). */
static void answer(edge_link *l, int ok, const char *why) {
    l->ok = ok;
    snprintf(l->why, sizeof l->why, "%s", why ? why : "");
    l->answered = 1;
    pthread_cond_broadcast(&l->cv);
}

void edge_round0_done(coord *co, double rows, const double *sum, const double *sq,
                      const uint64_t *cc, const double *present) {
    edge_link *l = co->edge;
    if (!l)
        return;
    size_t nf = (size_t)co->n_features;
    pthread_mutex_lock(&l->mu);
    if (l->ready) {
        pthread_mutex_unlock(&l->mu);
        return;
    }
    int ok = 1;
    l->names = calloc(nf ? nf : 1, sizeof *l->names);
    l->sum = malloc(8 * (nf ? nf : 1));
    l->sq = malloc(8 * (nf ? nf : 1));
    l->present = present ? malloc(8 * (nf ? nf : 1)) : NULL;
    l->label = dup_or_null(co->model->label_name);
    ok = l->names && l->sum && l->sq && (!present || l->present) && l->label;
    for (size_t j = 0; ok && j < nf; j++)
        ok = (l->names[j] = strdup(co->model->feature_names[j])) != NULL;
    if (ok) {
        memcpy(l->sum, sum, 8 * nf);
        memcpy(l->sq, sq, 8 * nf);
        if (present)
            memcpy(l->present, present, 8 * nf);
        l->n_features = (int)nf;
        l->task = (int)co->task;
        l->n_classes = co->n_classes;
        l->n_params = co->n_params;
        snprintf(l->kind, sizeof l->kind, "%s", co->model_kind);
        l->encoding = fedc_meta_get(co->model, "encoding");
        l->features = fedc_meta_get(co->model, "features");
        l->seed = co->cfg->seed;
        l->rounds = co->cfg->rounds;
        l->val_fraction = co->cfg->val_fraction;
        l->rows = rows;
        l->cc[0] = co->task == FEDC_TASK_BINARY ? cc[0] : 0;
        l->cc[1] = co->task == FEDC_TASK_BINARY ? cc[1] : 0;
        l->ready = 1;
        logm("edge: round 0 over our clients done (%.0f rows); joining the upstream", rows);
    } else {
        logm("edge: out of memory publishing round 0 to the upstream side");
        co->exit_code = 1;
        co->ph = PH_DONE;
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

int edge_finished(const coord *co) {
    return co->edge && co->edge_over;
}

void edge_drain(coord *co) {
    char b[64];
    if (co->edge)
        while (read(co->edge->wake[0], b, sizeof b) > 0) {
        }
}

int edge_wait_step(coord *co, int enough, int alive, int need) {
    edge_link *l = co->edge;
    pthread_mutex_lock(&l->mu);
    if (l->upstream_over) {
        pthread_mutex_unlock(&l->mu);
        co->edge_over = 1;
        return 1;
    }
    if (l->req == EDGE_REQ_NONE || l->started) {
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    if (!enough) {
        char why[160];
        snprintf(why, sizeof why, "the edge has %d live client(s), %d needed for a round", alive,
                 need);
        logm("edge: refusing the upstream's request: %s", why);
        answer(l, 0, why);
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    l->started = 1;
    int req = l->req;
    memcpy(co->model->params, l->w, 4 * co->n_params);
    if (l->mean) {
        memcpy(co->model->mean, l->mean, 4 * (size_t)co->n_features);
        memcpy(co->model->std, l->std, 4 * (size_t)co->n_features);
    }
    /* The settings are the link's own copies (hp, threshold), read by edge_fill_ins while the
     * round starts; the upstream side does not change them before the answer. */
    pthread_mutex_unlock(&l->mu);
    co->retries = 0;
    if (req == EDGE_REQ_FIT) {
        uint32_t r = l->hp.round;
        /* A round the upstream runs again (its retry) needs a session counter past the one its
         * first attempt used: our clients refuse one that does not go forward. */
        co->sa_attempt_skip = r <= co->edge_fit_round ? ++co->edge_skip : (co->edge_skip = 0);
        co->edge_fit_round = r;
        co->round = r;
        logm("edge: upstream round %u: training our clients from the upstream's model", r);
        start_round(co);
    } else {
        logm("edge: upstream evaluation: scoring the upstream's model on our clients");
        co->round_t0 = fedc_clock_s();
        start_eval(co);
    }
    return 0;
}

void edge_fill_ins(coord *co, fedc_msg *e) {
    edge_link *l = co->edge;
    if (!l || !l->started)
        return;
    if (e->kind == FEDC_MSG_FIT_INS) {
        const fedc_model_fit *hp = &l->hp;
        fedc_fit_ins *f = &e->fit_ins;
        f->hp.local_epochs = (uint32_t)hp->local_epochs;
        f->hp.batch = (uint32_t)hp->batch;
        f->hp.lr = hp->lr;
        f->hp.prox_mu = hp->prox_mu;
        f->hp.optimizer = (uint32_t)hp->optimizer;
        f->hp.keep_opt_state = hp->keep_opt_state;
        f->hp.l2 = hp->l2;
        f->hp.dropout = hp->dropout;
        f->pos_weight = hp->pos_weight;
    } else if (e->kind == FEDC_MSG_EVALUATE_INS) {
        e->evaluate_ins.threshold = l->threshold;
    }
}

/* Back to waiting for the upstream's next request. */
static void to_wait(coord *co) {
    co->ph = PH_WAIT;
    co->wait_since = co->wait_logged = fedc_clock_s();
}

int edge_fit_done(coord *co) {
    edge_link *l = co->edge;
    if (!l)
        return 0;
    double loss = co->cfg->secagg ? co->sa_loss : fedc_accum_mean_loss(co->acc);
    pthread_mutex_lock(&l->mu);
    /* The caller's buffer is there while its request is (it gave up waiting otherwise). */
    if (l->req == EDGE_REQ_FIT && l->started && !l->answered && l->local) {
        /* co->model->params hold the upstream's weights: local = global + our mean update, no
         * server optimiser at the edge (the root's applies once, to the sum over edges). */
        const float *g = co->model->params;
        for (size_t i = 0; i < co->n_params; i++)
            l->local[i] = g[i] + co->upd[i];
        l->loss = loss;
        answer(l, 1, NULL);
        logm("edge: upstream round %u: the mean update of %d client(s) goes upstream (loss "
             "%.4f)",
             co->round, co->answered, loss);
    }
    pthread_mutex_unlock(&l->mu);
    to_wait(co);
    return 1;
}

int edge_fit_failed(coord *co, const char *why) {
    edge_link *l = co->edge;
    if (!l)
        return 0;
    logm("edge: upstream round %u: no aggregate of our clients (%s); the upstream's round goes "
         "on without us",
         co->round, why);
    pthread_mutex_lock(&l->mu);
    if (l->started && !l->answered)
        answer(l, 0, why);
    pthread_mutex_unlock(&l->mu);
    to_wait(co);
    return 1;
}

void edge_eval_done(coord *co) {
    edge_link *l = co->edge;
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    if (l->req != EDGE_REQ_EVAL || !l->started || l->answered || !l->acc) {
        pthread_mutex_unlock(&l->mu);
        return;
    }
    if (co->eval_answered == 0)
        answer(l, 0, "no evaluation of the edge's clients was summed");
    else if (fedc_eval_acc_merge(l->acc, co->eval))
        answer(l, 0, "the edge's evaluation does not fit the upstream's (task or bins differ)");
    else
        answer(l, 1, NULL);
    pthread_mutex_unlock(&l->mu);
}
