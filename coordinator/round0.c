/* Round 0: the federation's feature statistics (per-feature sums and sums of squares, class
 * counts, rows), asked of every eligible client, summed in client-name order (plain) or as one
 * secure sum, from which the standardisation every client applies and the positive-class weight
 * come. Its row total weighs the secure updates of every later round. */
#include "coord_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/clock.h"

static int stats_classes(const coord *co) {
    return co->task == FEDC_TASK_REGRESSION ? 0 : co->n_classes;
}

void start_stats(coord *co) {
    fedc_msg e;
    env_init(co, &e, FEDC_MSG_STATS_REQUEST, 0);
    if (co->cfg->secagg) {
        sa_start(co, FEDC_SA_STAGE_STATS, fedc_sa_stats_len(co->n_features, stats_classes(co)));
        sa_fill_ins(co, &e.stats_request.secagg);
        e.stats_request.has_secagg = 1;
    }
    int sent = 0;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        c->stats_req = c->stats_done = 0;
        free_stats(c);
        if (client_eligible(co, c) && send_to(co, c, &e) == 0) {
            c->stats_req = 1;
            c->sa_in = co->cfg->secagg;
            sent++;
        }
    }
    co->ph = PH_STATS;
    co->deadline = fedc_clock_s() + co->cfg->round_timeout_s;
    logm("round 0: asked %d client(s) for feature statistics", sent);
}

void on_stats(coord *co, client *c, const fedc_msg *e) {
    const fedc_stats *s = &e->stats;
    if (co->ph != PH_STATS || !c->stats_req || c->stats_done || co->cfg->secagg) {
        reply_error(co, &c->peer, e->round, FEDC_EMISMATCH,
                    co->cfg->secagg ? "stats: this run sums statistics securely; plain ones are "
                                      "refused"
                                    : "stats: not expected now");
        return;
    }
    size_t nf = (size_t)co->n_features;
    if (s->n_sum != nf || s->n_sum_sq != nf) {
        char reason[128];
        snprintf(reason, sizeof reason, "stats: expected %zu sums, got %zu", nf, s->n_sum);
        reply_error(co, &c->peer, e->round, FEDC_EMISMATCH, reason);
        refused_answer(co, c);
        return;
    }
    c->st_sum = malloc(8 * nf);
    c->st_sq = malloc(8 * nf);
    c->st_cc = calloc((size_t)co->n_classes, 8);
    if (!c->st_sum || !c->st_sq || !c->st_cc) {
        free_stats(c);
        logm("out of memory for statistics");
        return;
    }
    memcpy(c->st_sum, s->sum, 8 * nf);
    memcpy(c->st_sq, s->sum_sq, 8 * nf);
    if (co->task != FEDC_TASK_REGRESSION)
        for (size_t k = 0; k < s->n_class_count && k < (size_t)co->n_classes; k++)
            c->st_cc[k] = s->class_count[k];
    c->st_rows = s->n_rows;
    c->stats_done = 1;
    c->took_part = 1;
}

static int pred_stats_done(const coord *co, const client *c) {
    (void)co;
    return c->stats_done;
}

/* Sets the standardisation and the positive-class weight from federation totals: rows, per
 * feature sums and sums of squares, class counts cc[0..1] (binary). */
static void apply_stats(coord *co, double rows, const double *sum, const double *sq,
                        const uint64_t *cc, int n) {
    size_t nf = (size_t)co->n_features;
    float *mean = co->model->mean, *std = co->model->std;
    for (size_t j = 0; j < nf; j++) {
        double mu = sum[j] / rows;
        double var = sq[j] / rows - mu * mu;
        double sd = var > 0 ? sqrt(var) : 0.0;
        mean[j] = (float)mu;
        std[j] = sd > 1e-12 && (float)sd > 0.0f ? (float)sd : 1.0f;
    }
    if (co->cfg->pos_weight_auto && co->task == FEDC_TASK_BINARY)
        co->pos_weight = cc[0] && cc[1] ? (float)((double)cc[0] / (double)cc[1]) : 1.0f;
    else
        co->pos_weight = co->task == FEDC_TASK_BINARY ? co->cfg->pos_weight : 1.0f;
    /* a rare positive class trained without a class weight: the model learns to say no */
    if (co->task == FEDC_TASK_BINARY && !co->cfg->pos_weight_auto && co->pos_weight == 1.0f &&
        cc[0] + cc[1] > 0 && (double)cc[1] < 0.005 * (double)(cc[0] + cc[1]))
        logw("round 0: the positive class is %.3g%% of the %llu rows and has no class weight: "
             "--pos-weight auto weighs it by negatives / positives",
             100.0 * (double)cc[1] / (double)(cc[0] + cc[1]), (unsigned long long)(cc[0] + cc[1]));
    co->total_rows = rows;
    /* Whose rows the total holds, for the weight checks (aggregate.c): the clients whose plain
     * statistics came in, or those asked for the secure sum that are still in it (one that
     * dropped out of the session is dead or quit by now; one that dropped only after its masked
     * input is left out, which loosens the checks for it, never tightens them). */
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        c->round0 =
            co->cfg->secagg ? c->stats_req && c->alive && !c->gone && !c->sa_quit : c->stats_done;
    }
    logm("round 0: statistics %s %d client(s), %.0f rows%s; positive-class weight %.4g",
         co->cfg->secagg ? "summed securely over" : "from", n, rows,
         co->task == FEDC_TASK_BINARY ? "" : " (no classes)", (double)co->pos_weight);
    co->have_stats = 1;
}

/* Derives the standardisation and the positive-class weight from the clients' statistics. The
 * sums are added in client-name order so the result does not depend on arrival order. */
static int finish_stats(coord *co) {
    client **list = malloc(sizeof(client *) * MAX_CLIENTS);
    size_t nf = (size_t)co->n_features;
    double *sum = calloc(nf, 8), *sq = calloc(nf, 8);
    if (!list || !sum || !sq) {
        free(list);
        free(sum);
        free(sq);
        return -1;
    }
    int n = sorted_clients(co, list, pred_stats_done);
    double rows = 0;
    uint64_t cc[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        rows += (double)list[i]->st_rows;
        if (co->task == FEDC_TASK_BINARY) {
            cc[0] += list[i]->st_cc[0];
            cc[1] += list[i]->st_cc[1];
        }
        for (size_t j = 0; j < nf; j++) {
            sum[j] += list[i]->st_sum[j];
            sq[j] += list[i]->st_sq[j];
        }
    }
    apply_stats(co, rows, sum, sq, cc, n);
    for (int i = 0; i < co->n_cl; i++)
        free_stats(&co->cl[i]);
    free(list);
    free(sum);
    free(sq);
    return 0;
}

/* Round 0 in the event loop (advance, phase PH_STATS): the secure session's steps, or the plain
 * statistics once every client asked has answered or the deadline passed; too few answers retry
 * round 0 (up to --max-retries). */
void stats_advance(coord *co, double t) {
    if (co->sa.active || co->cfg->secagg) {
        sa_advance(co);
        return;
    }
    int done = 1, answered = 0;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        answered += c->stats_done;
        if (c->stats_req && !c->stats_done && c->alive && !c->gone)
            done = 0;
    }
    if (!done && t < co->deadline)
        return;
    if (answered >= co->cfg->min_clients) {
        if (finish_stats(co)) {
            logm("out of memory for statistics");
            co->ph = PH_DONE;
            return;
        }
        co->ph = PH_WAIT;
        return;
    }
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (c->stats_req && !c->stats_done && c->alive)
            miss_deadline(co, c, "sent no statistics before the deadline");
    }
    co->retries++;
    logm("round 0: statistics from %d client(s), %d needed; retrying", answered,
         co->cfg->min_clients);
    if (co->retries > co->cfg->max_retries) {
        logm("round 0 failed %d times; giving up", co->retries);
        co->ph = PH_DONE;
        return;
    }
    co->ph = PH_WAIT;
    co->wait_since = co->wait_logged = t;
}

/* Round 0's secure sum is in (secure.c via sa_finished; sum NULL when it failed, spent when
 * shares may have been revealed): the statistics applied, or round 0 retried or given up. */
void stats_secure_done(coord *co, const uint32_t *sum, int n, int spent) {
    fedc_diag d;
    size_t nf = (size_t)co->n_features;
    int k = stats_classes(co);
    double rows = 0, *fs = calloc(nf, 8), *sq = calloc(nf, 8);
    uint64_t *cc = calloc((size_t)(k > 2 ? k : 2), 8);
    int ok = fs && sq && cc && sum;
    if (ok && fedc_sa_stats_decode(sum, (int)nf, k, &rows, fs, sq, cc, &d)) {
        logm("round 0: the summed statistics are implausible, rejected: %s", d.msg);
        ok = 0;
    }
    if (ok)
        apply_stats(co, rows, fs, sq, cc, n);
    free(fs);
    free(sq);
    free(cc);
    if (!ok && spent) {
        logm("round 0: the statistics were unmasked (or some members refuse to unmask them "
             "again), and a run unmasks them once; start a new run");
        co->ph = PH_DONE;
        return;
    }
    if (!ok) {
        co->retries++;
        if (co->retries > co->cfg->max_retries) {
            logm("round 0 failed %d times; giving up", co->retries);
            co->ph = PH_DONE;
            return;
        }
        logm("round 0: retrying (attempt %d of %d)", co->retries + 1, co->cfg->max_retries + 1);
    }
    co->ph = PH_WAIT;
    co->wait_since = co->wait_logged = fedc_clock_s();
}
