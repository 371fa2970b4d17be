/* What the client computes over its own rows besides training: round 0's statistics (sums, sums
 * of squares, class counts), the standardisation agreed from them, handed to the model, and the
 * evaluation of each new global model on the validation rows with the line it prints. */
#include "client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/fault.h"

/* Returns -1 to go on, or an exit code. */
int cl_on_stats_request(cl *c, const fedc_msg *e) {
    const fedc_secagg_ins *si = e->stats_request.has_secagg ? &e->stats_request.secagg : NULL;
    if (!si && cl_plain_refused(c, e->round, "statistics request"))
        return 2;
    int nf = c->desc.n_features;
    /* --missing mean: the cells present per feature ride along, so that the federation's means
     * (the values every client fills its gaps with) are sums over present cells only. */
    int np = c->cfg->encoding && c->cfg->encoding->missing == FEDC_MISSING_MEAN ? nf : 0;
    double *sum = calloc((size_t)nf, 8), *sq = calloc((size_t)nf, 8);
    double *present = calloc((size_t)(np ? np : 1), 8);
    uint64_t *cc = calloc((size_t)(c->n_classes > 1 ? c->n_classes : 1), 8);
    uint64_t rows = c->rows.train_rows;
    if (!sum || !sq || !cc || !present) {
        cl_logm(c, "out of memory for statistics");
        goto out;
    }
    fedc_diag sd;
    if (c->model->stats && c->model->stats(c->model->ctx, sum, sq, cc, &rows, &sd)) {
        cl_logm(c, "round 0: the model's statistics failed: %s; sending none", sd.msg);
        memset(sum, 0, 8 * (size_t)nf);
        memset(sq, 0, 8 * (size_t)nf);
        memset(cc, 0, 8 * (size_t)(c->n_classes > 1 ? c->n_classes : 1));
        rows = c->rows.train_rows;
    }
    if (np && c->model->present && c->model->present(c->model->ctx, present, &sd)) {
        cl_logm(c, "round 0: the model's counts of present cells failed: %s", sd.msg);
        np = 0;
    } else if (np && !c->model->present) {
        for (int j = 0; j < np; j++)
            present[j] = (double)rows;
    }
    if (si) {
        int k = c->task == FEDC_TASK_REGRESSION ? 0 : c->n_classes;
        if (cl_sa_open(c, e->round, FEDC_SA_STAGE_STATS, si, fedc_sa_stats_len_p(nf, k, np)) == 0) {
            fedc_diag d;
            fedc_err rc =
                fedc_sa_stats_encode_p(c->sa_vec, rows, sum, sq, nf, cc, k, present, np, &d);
            fedc_fault_point("stats", 0);
            cl_sa_input_ready(c, rc, d.msg);
        }
        goto out;
    }
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_STATS, e->round);
    fedc_stats *s = &m.stats;
    s->n_rows = rows;
    s->n_sum = s->n_sum_sq = (size_t)nf;
    s->sum = sum;
    s->sum_sq = sq;
    if (c->task != FEDC_TASK_REGRESSION) {
        s->n_class_count = (size_t)c->n_classes;
        s->class_count = cc;
    }
    s->n_present = (size_t)np;
    s->present = np ? present : NULL;
    fedc_fault_point("stats", 0);
    (void)cl_send_msg(c, &m);
out:
    free(sum);
    free(sq);
    free(present);
    free(cc);
    return -1;
}

/* Hands the agreed statistics to the model when they change. */
int cl_apply_stats(cl *c, const float *mean, const float *std) {
    size_t nf = (size_t)c->desc.n_features;
    if (c->mean && memcmp(c->mean, mean, 4 * nf) == 0 && memcmp(c->std, std, 4 * nf) == 0)
        return 0;
    cl_wait_training(c);
    free(c->mean);
    free(c->std);
    c->mean = malloc(4 * nf);
    c->std = malloc(4 * nf);
    if (!c->mean || !c->std) {
        cl_logm(c, "out of memory standardising the data");
        return -1;
    }
    memcpy(c->mean, mean, 4 * nf);
    memcpy(c->std, std, 4 * nf);
    fedc_diag d;
    if (c->model->set_stats && c->model->set_stats(c->model->ctx, mean, std, &c->rows, &d)) {
        cl_logm(c, "%s", d.msg);
        return -1;
    }
    return 0;
}

int cl_on_evaluate_ins(cl *c, const fedc_msg *e) {
    const fedc_evaluate_ins *ei = &e->evaluate_ins;
    if (!ei->has_secagg && cl_plain_refused(c, e->round, "evaluation request"))
        return 2;
    if (ei->n_mean && cl_apply_stats(c, ei->mean, ei->std)) {
        cl_logm(c, "out of memory standardising the data");
        return -1;
    }
    fedc_eval_acc *a = c->eval;
    fedc_eval_acc_reset(a);
    if (c->mean) {
        /* Scored only once the statistics are agreed (before round 0 ends they are not). A
         * retried round may be training meanwhile: evaluate runs beside fit (client_model.h) on
         * weights fit does not read. They are scored where they are when they can be read as
         * floats there (the received frame, or the vector they were pulled into), else copied
         * into job.global, or while a training uses it into a vector for this evaluation. */
        const float *w = fedc_tensor_floats(&ei->weights);
        if (!w) {
            float *to = cl_weights_dest(c, 0);
            if (!to) {
                cl_logm(c, "cannot evaluate: out of memory for the weights");
                return -1;
            }
            fedc_tensor_read(to, &ei->weights);
            w = to;
        }
        fedc_diag d;
        fedc_err rc = c->model->evaluate(c->model->ctx, w, c->n_params, ei->threshold, a, &d);
        free(c->eval_w);
        c->eval_w = NULL;
        if (rc) {
            cl_logm(c, "cannot evaluate: %s", d.msg);
            fedc_eval_acc_reset(a);
            return -1;
        }
    }
    free(c->eval_w); /* pulled for an evaluation that scored nothing */
    c->eval_w = NULL;
    if (ei->has_secagg) {
        if (cl_sa_open(c, e->round, FEDC_SA_STAGE_EVAL, &ei->secagg, fedc_sa_eval_len(a)) == 0) {
            fedc_diag d;
            fedc_err rc = fedc_sa_eval_encode(c->sa_vec, a, &c->sa_q, &d);
            fedc_fault_point("eval-res", e->round);
            cl_sa_input_ready(c, rc, d.msg);
        }
    }
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_EVALUATE_RES, e->round);
    fedc_evaluate_res *r = &m.evaluate_res;
    r->n = a->n;
    r->log_loss_sum = a->loss_sum;
    if (c->task == FEDC_TASK_BINARY && a->n) {
        r->n_hist_pos = r->n_hist_neg = a->bins;
        r->hist_pos = a->hist_pos;
        r->hist_neg = a->hist_neg;
        r->tp = a->tp;
        r->fp = a->fp;
        r->tn = a->tn;
        r->fn = a->fn;
    } else if (c->task == FEDC_TASK_MULTICLASS && a->n) {
        r->n_confusion = (size_t)a->n_classes * (size_t)a->n_classes;
        r->confusion = a->confusion;
    } else if (c->task == FEDC_TASK_REGRESSION) {
        r->sse = a->sse;
        r->sum_y = a->sum_y;
        r->sum_y2 = a->sum_y2;
    }
    if (!ei->has_secagg) {
        fedc_fault_point("eval-res", e->round);
        (void)cl_send_msg(c, &m);
    }
    if (!c->cfg->self)
        cl_logw(c, "--insecure: round %u travelled without encryption", e->round);
    if (!c->cfg->quiet) {
        fedc_eval_summary s;
        fedc_eval_acc_summary(a, &s);
        char fit[128];
        if (c->last_fit_round == e->round)
            snprintf(fit, sizeof fit, "train_loss %.4f (%d rows, %.2f s)", c->last_loss,
                     c->last_rows, c->last_secs);
        else
            snprintf(fit, sizeof fit, "not selected for training");
        if (c->task == FEDC_TASK_BINARY)
            printf("round %3u/%d  %s  local val_roc_auc %.4f  val_pr_auc %.4f (%llu rows)\n",
                   e->round, c->rounds, fit, s.roc_auc, s.pr_auc, (unsigned long long)s.n);
        else if (c->task == FEDC_TASK_MULTICLASS)
            printf("round %3u/%d  %s  local val_accuracy %.4f (%llu rows)\n", e->round, c->rounds,
                   fit, s.accuracy, (unsigned long long)s.n);
        else
            printf("round %3u/%d  %s  local val_rmse %.4f (%llu rows)\n", e->round, c->rounds, fit,
                   s.rmse, (unsigned long long)s.n);
        fflush(stdout);
    }
    return -1;
}
