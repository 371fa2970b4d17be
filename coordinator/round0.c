/* Round 0: the federation's feature statistics (per-feature sums and sums of squares, class
 * counts, rows, and under --missing mean the cells present per feature), asked of every eligible
 * client, summed in client-name order (plain) or as one secure sum, from which the
 * standardisation every client applies and the positive-class weight come. Under --missing mean
 * a feature's mean is its sum over its present cells: the value every client fills its missing
 * cells with, which the model's recipe then keeps for scoring. Its row total weighs the secure
 * updates of every later round. */
#include "coord_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/clock.h"
#include "fedc/card.h"
#include "fedc/recipe.h"

/* A positive-class weight above which SGD is warned about (see apply_stats). */
#define FEDC_SGD_HEAVY_WEIGHT 20.0f

static int stats_classes(const coord *co) {
    return co->task == FEDC_TASK_REGRESSION ? 0 : co->n_classes;
}

/* The federation's encoding from the model's recipe (NULL-safe); 0 when it has none. */
static int recipe_encoding(const coord *co, fedc_recipe_enc *r) {
    char *text = co->model ? fedc_meta_get(co->model, "encoding") : NULL;
    int ok = text && fedc_encoding_from_json(r, text, NULL) == FEDC_OK;
    free(text);
    return ok;
}

/* Counts of present cells in the statistics: n_features under --missing mean, else 0. */
static int stats_present(const coord *co) {
    fedc_recipe_enc r;
    if (!recipe_encoding(co, &r))
        return 0;
    int mean = r.enc.missing == FEDC_MISSING_MEAN;
    fedc_recipe_enc_release(&r);
    return mean ? co->n_features : 0;
}

/* Under --missing mean, the recipe gets the federation's means as its imputation values. */
static void recipe_impute(coord *co) {
    fedc_recipe_enc r;
    if (!recipe_encoding(co, &r))
        return;
    if (r.enc.missing == FEDC_MISSING_MEAN) {
        fedc_encoding e = r.enc;
        e.impute = co->model->mean;
        e.n_impute = co->n_features;
        char *ej = fedc_encoding_json(&e, 1);
        fedc_diag d;
        if (!ej || fedc_meta_put(co->model, "encoding", ej, &d))
            logm("cannot keep the imputation values in the model's recipe");
        free(ej);
    }
    fedc_recipe_enc_release(&r);
}

void start_stats(coord *co) {
    fedc_msg e;
    env_init(co, &e, FEDC_MSG_STATS_REQUEST, 0);
    if (co->cfg->secagg) {
        sa_start(co, FEDC_SA_STAGE_STATS,
                 fedc_sa_stats_len_p(co->n_features, stats_classes(co), stats_present(co)));
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
    size_t nf = (size_t)co->n_features, np = (size_t)stats_present(co);
    if (s->n_sum != nf || s->n_sum_sq != nf || s->n_present != np) {
        char reason[160];
        snprintf(reason, sizeof reason,
                 "stats: expected %zu sums and %zu counts of present cells, got %zu and %zu", nf,
                 np, s->n_sum, s->n_present);
        reply_error(co, &c->peer, e->round, FEDC_EMISMATCH, reason);
        refused_answer(co, c);
        return;
    }
    c->st_sum = malloc(8 * nf);
    c->st_sq = malloc(8 * nf);
    c->st_cc = calloc((size_t)co->n_classes, 8);
    c->st_present = np ? malloc(8 * np) : NULL;
    if (!c->st_sum || !c->st_sq || !c->st_cc || (np && !c->st_present)) {
        free_stats(c);
        logm("out of memory for statistics");
        return;
    }
    memcpy(c->st_sum, s->sum, 8 * nf);
    memcpy(c->st_sq, s->sum_sq, 8 * nf);
    for (size_t j = 0; j < np; j++) {
        if (!(s->present[j] >= 0 && s->present[j] <= (double)s->n_rows)) {
            free_stats(c);
            reply_error(co, &c->peer, e->round, FEDC_EMISMATCH,
                        "stats: a count of present cells is not between 0 and the rows");
            refused_answer(co, c);
            return;
        }
        c->st_present[j] = s->present[j];
    }
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
 * feature sums and sums of squares, class counts cc[0..1] (binary), and present (NULL, or per
 * feature the cells the sums are over, --missing mean). With present, mu = sum / present is the
 * value missing cells are filled with; the column after filling has rows values, present of them
 * with sum and sq, the rest mu, so its mean is mu and its variance (sq + (rows - present) mu^2) /
 * rows - mu^2. A feature with no present cell gets mu = 0. */
static void apply_stats(coord *co, double rows, const double *sum, const double *sq,
                        const uint64_t *cc, const double *present, int n) {
    size_t nf = (size_t)co->n_features;
    float *mean = co->model->mean, *std = co->model->std;
    for (size_t j = 0; j < nf; j++) {
        double cnt = present ? present[j] : rows;
        double mu = cnt > 0 ? sum[j] / cnt : 0.0;
        double var = (sq[j] + (rows - cnt) * mu * mu) / rows - mu * mu;
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
             "--pos-weight auto weighs it by negatives / positives (with --optimizer adam: "
             "plain SGD, the default, can collapse under a heavy weight)",
             100.0 * (double)cc[1] / (double)(cc[0] + cc[1]), (unsigned long long)(cc[0] + cc[1]));
    /* SGD (the default) with a heavy class weight: one positive row outweighs the rest of its
     * batch, and SGD's step grows with the gradient. bench/defaults.sh measured weights of 2-4
     * fine and 150-250 (rare frauds, --pos-weight auto) ending in a constant score at the
     * default rate; Adam's step does not depend on the gradient's scale. The line is drawn in
     * between. */
    if (co->task == FEDC_TASK_BINARY && co->cfg->optimizer == FEDC_OPT_SGD &&
        co->pos_weight > FEDC_SGD_HEAVY_WEIGHT)
        logw("round 0: positive-class weight %.4g with --optimizer sgd: one positive row "
             "outweighs the rest of its batch and SGD's steps grow with it (weights this large "
             "were measured to end in a constant score, README \"Defaults\"): --optimizer adam "
             "--lr 0.003 is not affected",
             (double)co->pos_weight);
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
    if (present) {
        double missing = 0;
        for (size_t j = 0; j < nf; j++)
            missing += rows - present[j];
        logm("round 0: --missing mean: %.0f missing cells in the federation; clients fill them "
             "with the federation's means",
             missing);
        recipe_impute(co);
    }
    co->have_stats = 1;
    edge_round0_done(co, rows, sum, sq, cc, present); /* an edge joins its upstream now */
}

/* Derives the standardisation and the positive-class weight from the clients' statistics. The
 * sums are added in client-name order so the result does not depend on arrival order. */
static int finish_stats(coord *co) {
    client **list = malloc(sizeof(client *) * MAX_CLIENTS);
    size_t nf = (size_t)co->n_features;
    int np = stats_present(co);
    double *sum = calloc(nf, 8), *sq = calloc(nf, 8), *pr = calloc(nf ? nf : 1, 8);
    if (!list || !sum || !sq || !pr) {
        free(list);
        free(sum);
        free(sq);
        free(pr);
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
            if (np)
                pr[j] += list[i]->st_present[j];
        }
    }
    apply_stats(co, rows, sum, sq, cc, np ? pr : NULL, n);
    for (int i = 0; i < co->n_cl; i++)
        free_stats(&co->cl[i]);
    free(list);
    free(sum);
    free(sq);
    free(pr);
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
    int k = stats_classes(co), np = stats_present(co);
    double rows = 0, *fs = calloc(nf, 8), *sq = calloc(nf, 8), *pr = calloc(nf ? nf : 1, 8);
    uint64_t *cc = calloc((size_t)(k > 2 ? k : 2), 8);
    int ok = fs && sq && cc && pr && sum;
    if (ok && fedc_sa_stats_decode_p(sum, (int)nf, k, &rows, fs, sq, cc, pr, np, &d)) {
        logm("round 0: the summed statistics are implausible, rejected: %s", d.msg);
        ok = 0;
    }
    if (ok)
        apply_stats(co, rows, fs, sq, cc, np ? pr : NULL, n);
    free(fs);
    free(sq);
    free(pr);
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
