/* fedc's MLP on a CSV file as a fedc_client_model (fedc/client_model.h): the CSV is loaded and
 * checked at creation, split per run with the client's key, standardised with the federation's
 * statistics (then augmented locally when asked), trained with core/nn's fedc_train and scored
 * with fedc_model_predict_std. */
#define _POSIX_C_SOURCE 200809L
#include "fedc/client_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fedc/augment.h"
#include "fedc/data.h"
#include "fedc/dp.h"
#include "fedc/model.h"
#include "fedc/train.h"

typedef struct mlp {
    fedc_client_model iface;
    fedc_mlp_model_cfg cfg;
    fedc_dataset *all; /* as loaded, never standardised */
    fedc_task task;
    int n_classes;
    uint64_t split_key;
    fedc_arch arch;
    fedc_dataset *train_raw, *val_raw; /* this run's split */
    fedc_dataset *train, *val;         /* standardised with the agreed statistics */
    float *mean, *std;
    fedc_model *local; /* trained in fit */
    fedc_model *eval;  /* scored in evaluate */
} mlp;

static void end_run(mlp *m) {
    fedc_dataset_destroy(&m->train_raw);
    fedc_dataset_destroy(&m->val_raw);
    fedc_dataset_destroy(&m->train);
    fedc_dataset_destroy(&m->val);
    free(m->mean);
    free(m->std);
    m->mean = m->std = NULL;
    fedc_model_destroy(&m->local);
    fedc_model_destroy(&m->eval);
}

static fedc_err describe(void *ctx, fedc_model_desc *out, fedc_diag *d) {
    (void)d;
    mlp *m = ctx;
    memset(out, 0, sizeof *out);
    out->kind = "mlp";
    out->task = m->task;
    out->n_classes = m->n_classes;
    out->n_features = m->all->n_features;
    out->feature_names = m->all->feature_names;
    out->label = m->all->label_name;
    out->n_params = 0; /* the coordinator's --layers decide */
    return FEDC_OK;
}

static fedc_err begin(void *ctx, const fedc_model_run *run, fedc_model_rows *rows, fedc_diag *d) {
    mlp *m = ctx;
    end_run(m);
    int nl = run->n_layer_sizes - 1;
    if (nl < 1 || !run->layer_sizes) {
        fedc_diag_set(d, "the coordinator trains a model of the clients' own, this client "
                         "brings fedc's MLP");
        return FEDC_EMISMATCH;
    }
    int hidden[FEDC_MAX_LAYERS];
    for (int i = 1; i < nl; i++)
        hidden[i - 1] = run->layer_sizes[i];
    fedc_diag ad;
    if (fedc_arch_make(&m->arch, run->layer_sizes[0], hidden, nl - 1, (fedc_act)run->hidden_act,
                       m->task, m->n_classes, &ad)) {
        fedc_diag_set(d, "the coordinator's model does not fit our data: %s", ad.msg);
        return FEDC_EMISMATCH;
    }
    if (m->arch.sizes[nl] != run->layer_sizes[nl]) {
        fedc_diag_set(d, "the coordinator's model has %d outputs, our data needs %d",
                      run->layer_sizes[nl], m->arch.sizes[nl]);
        return FEDC_EMISMATCH;
    }
    m->split_key = run->split_key;
    if (fedc_dataset_split(&m->train_raw, run->val_fraction > 0 ? &m->val_raw : NULL, NULL, m->all,
                           m->task, run->val_fraction, 0.0, run->split_key) ||
        !m->train_raw || m->train_raw->n_rows < 1) {
        fedc_diag_set(d, "%s: cannot keep %.0f%% of %d rows for validation and still train",
                      m->cfg.data, 100.0 * run->val_fraction, m->all->n_rows);
        return FEDC_EINVAL;
    }
    if (fedc_model_new(&m->eval, &m->arch) || fedc_model_new(&m->local, &m->arch)) {
        fedc_diag_set(d, "out of memory for the model");
        return FEDC_ENOMEM;
    }
    rows->train_rows = rows->fit_rows = (uint64_t)m->train_raw->n_rows;
    rows->val_rows = m->val_raw ? (uint64_t)m->val_raw->n_rows : 0;
    return FEDC_OK;
}

static fedc_err stats(void *ctx, double *sum, double *sq, uint64_t *cc, uint64_t *rows,
                      fedc_diag *d) {
    (void)d;
    mlp *m = ctx;
    const fedc_dataset *t = m->train_raw;
    int nf = t->n_features;
    for (int i = 0; i < t->n_rows; i++) {
        const float *x = t->x + (size_t)i * (size_t)nf;
        for (int j = 0; j < nf; j++) {
            if (isnan(x[j]))
                continue; /* a missing cell under --missing mean: counted by present() */
            sum[j] += x[j];
            sq[j] += (double)x[j] * x[j];
        }
        if (m->task != FEDC_TASK_REGRESSION)
            cc[(int)t->y[i]]++;
    }
    *rows = (uint64_t)t->n_rows;
    return FEDC_OK;
}

/* Per feature, the training cells present (not NaN). */
static fedc_err present(void *ctx, double *out, fedc_diag *d) {
    (void)d;
    mlp *m = ctx;
    const fedc_dataset *t = m->train_raw;
    size_t nf = (size_t)t->n_features;
    for (size_t j = 0; j < nf; j++)
        out[j] = (double)t->n_rows;
    for (int i = 0; i < t->n_rows; i++) {
        const float *x = t->x + (size_t)i * nf;
        for (size_t j = 0; j < nf; j++)
            out[j] -= isnan(x[j]) ? 1.0 : 0.0;
    }
    return FEDC_OK;
}

/* Fills the missing cells of the copies with the federation's means (round 0's sums over
 * present cells, divided by their count: the standardisation's means) and says so, naming the
 * value of each column that had any. */
static void fill_missing(mlp *m, const float *mean) {
    fedc_dataset *parts[2] = {m->train, m->val};
    const fedc_dataset *t = m->all;
    size_t nf = (size_t)t->n_features;
    long filled = 0;
    for (int p = 0; p < 2; p++)
        if (parts[p])
            filled += fedc_dataset_fill_missing(parts[p], mean);
    if (!filled || m->cfg.quiet)
        return;
    char list[512];
    size_t len = 0;
    int shown = 0;
    list[0] = '\0';
    for (size_t j = 0; j < nf && shown < 8; j++) {
        int miss = 0;
        for (int i = 0; i < m->train_raw->n_rows && !miss; i++)
            miss = isnan(m->train_raw->x[(size_t)i * nf + j]);
        for (int i = 0; m->val_raw && i < m->val_raw->n_rows && !miss; i++)
            miss = isnan(m->val_raw->x[(size_t)i * nf + j]);
        if (miss && len < sizeof list) {
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s=%.9g", shown ? ", " : "",
                                    t->feature_names[j], (double)mean[j]);
            shown++;
        }
    }
    fprintf(stderr, "--missing mean: %ld missing cells filled with the federation's means (%s)\n",
            filled, list);
}

/* (Re)standardises copies of the split with the agreed statistics, then augments locally. */
static fedc_err set_stats(void *ctx, const float *mean, const float *std, fedc_model_rows *rows,
                          fedc_diag *d) {
    mlp *m = ctx;
    size_t nf = (size_t)m->arch.sizes[0];
    free(m->mean);
    free(m->std);
    m->mean = malloc(4 * nf);
    m->std = malloc(4 * nf);
    fedc_dataset_destroy(&m->train);
    fedc_dataset_destroy(&m->val);
    int n_all = m->all->n_rows > 0 ? m->all->n_rows : 1;
    int *idx = malloc(sizeof(int) * (size_t)n_all);
    if (!m->mean || !m->std || !idx) {
        free(idx);
        fedc_diag_set(d, "out of memory standardising the data");
        return FEDC_ENOMEM;
    }
    memcpy(m->mean, mean, 4 * nf);
    memcpy(m->std, std, 4 * nf);
    for (int i = 0; i < m->all->n_rows; i++)
        idx[i] = i;
    int bad = fedc_dataset_subset(&m->train, m->train_raw, idx, m->train_raw->n_rows) != FEDC_OK;
    if (!bad && m->val_raw)
        bad = fedc_dataset_subset(&m->val, m->val_raw, idx, m->val_raw->n_rows) != FEDC_OK;
    free(idx);
    if (bad) {
        fedc_diag_set(d, "out of memory standardising the data");
        return FEDC_ENOMEM;
    }
    fill_missing(m, mean);
    fedc_dataset_standardize(m->train, mean, std);
    if (m->val)
        fedc_dataset_standardize(m->val, mean, std);
    if (m->cfg.augment.kind != FEDC_AUG_NONE && m->task == FEDC_TASK_BINARY) {
        /* Rare-class rows added here, on this client's standardised training rows only; they
         * never leave it and do not count as examples in FedAvg. */
        fedc_dataset *big = NULL;
        fedc_aug_cfg a = m->cfg.augment;
        int added = 0;
        fedc_diag ad;
        a.seed = m->split_key;
        if (fedc_augment(&big, m->train, &a, &added, &ad)) {
            fprintf(stderr, "--augment: %s; training without it\n", ad.msg);
        } else {
            fedc_dataset_destroy(&m->train);
            m->train = big;
            if (!m->cfg.quiet)
                fprintf(stderr, "--augment: %d synthetic positive rows added locally\n", added);
        }
    }
    rows->fit_rows = (uint64_t)m->train->n_rows;
    if (fedc_model_set_schema(m->eval, NULL, NULL, mean, std)) {
        fedc_diag_set(d, "out of memory standardising the data");
        return FEDC_ENOMEM;
    }
    return FEDC_OK;
}

static fedc_err fit(void *ctx, const float *global, float *local, size_t n,
                    const fedc_model_fit *hp, fedc_model_fit_out *out, fedc_diag *d) {
    mlp *m = ctx;
    if (!m->train || n != m->local->n_params) {
        fedc_diag_set(d, "asked to train before the statistics arrived");
        return FEDC_EINVAL;
    }
#ifdef _OPENMP
    if (hp->threads > 0)
        omp_set_num_threads(hp->threads);
#endif
    fedc_train_cfg t = fedc_train_defaults();
    t.epochs = hp->local_epochs;
    t.batch = hp->batch;
    t.opt = fedc_optim_defaults();
    t.opt.kind = (fedc_opt_kind)hp->optimizer;
    t.opt.lr = hp->lr;
    t.opt.l2 = hp->l2;
    t.opt.prox_mu = hp->prox_mu;
    t.opt.prox_center = hp->prox_mu > 0 ? global : NULL;
    t.dropout = hp->dropout;
    t.pos_weight = m->task == FEDC_TASK_BINARY ? hp->pos_weight : 1.0f;
    t.patience = 0;
    t.seed = hp->seed;
    if (hp->dp_clip > 0) {
        t.dp_clip = hp->dp_clip;
        t.dp_noise = hp->dp_noise;
        t.dp_poisson = hp->dp_poisson;
        fedc_dp_noise_for_training(&t, hp->dp_rng);
    }
    memcpy(m->local->params, global, 4 * n);
    fedc_train_report rep;
    fedc_err rc = fedc_train(m->local, m->train, NULL, &t, &rep, d);
    out->loss = rep.final_train_loss;
    out->dp_steps = rep.dp_steps;
    out->dp_q = rep.dp_q;
    memcpy(local, m->local->params, 4 * n);
    return rc;
}

static fedc_err evaluate(void *ctx, const float *w, size_t n, float threshold, fedc_eval_acc *acc,
                         fedc_diag *d) {
    mlp *m = ctx;
    const fedc_dataset *v = m->val;
    if (!v || v->n_rows < 1 || !m->mean)
        return FEDC_OK; /* nothing to score (no validation rows, or before round 0) */
    memcpy(m->eval->params, w, 4 * n);
    float *pred = malloc(4 * (size_t)v->n_rows * (size_t)fedc_model_out_width(m->eval));
    if (!pred || fedc_model_predict_std(pred, m->eval, v->x, v->n_rows)) {
        free(pred);
        fedc_diag_set(d, "cannot evaluate: out of memory");
        return FEDC_ENOMEM;
    }
    fedc_eval_acc_add(acc, pred, v->y, v->n_rows, threshold);
    free(pred);
    return FEDC_OK;
}

static void destroy(void *ctx) {
    mlp *m = ctx;
    end_run(m);
    fedc_dataset_destroy(&m->all);
    free(m);
}

fedc_err fedc_mlp_model_new(fedc_client_model **out, const fedc_mlp_model_cfg *cfg, fedc_diag *d) {
    *out = NULL;
    mlp *m = calloc(1, sizeof *m);
    if (!m) {
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    m->cfg = *cfg;
    fedc_diag ld;
    fedc_err rc = fedc_csv_load_enc(&m->all, cfg->data, cfg->label, (const char *const *)cfg->drop,
                                    cfg->n_drop, cfg->encoding, &ld);
    if (!rc)
        rc = fedc_dataset_task(&m->task, &m->n_classes, m->all, cfg->force_regression, &ld);
    if (rc) {
        fedc_diag_set(d, "--data: %s", ld.msg);
        destroy(m);
        return rc;
    }
    m->iface.ctx = m;
    m->iface.describe = describe;
    m->iface.begin = begin;
    m->iface.stats = stats;
    m->iface.set_stats = set_stats;
    m->iface.fit = fit;
    m->iface.evaluate = evaluate;
    m->iface.destroy = destroy;
    m->iface.dp_sgd = 1;
    m->iface.present = present;
    *out = &m->iface;
    return FEDC_OK;
}

void fedc_client_model_destroy(fedc_client_model **pm) {
    if (!pm || !*pm)
        return;
    fedc_client_model *m = *pm;
    *pm = NULL;
    if (m->destroy)
        m->destroy(m->ctx); /* the MLP's ctx holds m itself */
}
