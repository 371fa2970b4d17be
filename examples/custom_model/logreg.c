/* A model of the user's own in a fedc federation: logistic regression with its own gradient step,
 * written against the installed headers only (fedc/client_model.h is the interface). fedc does
 * the rest: joining, round 0, update clipping and weighting, secure aggregation, evaluation.
 *
 *   logreg client  --connect EP --name NAME --data FILE.csv --label COL   join a federation whose
 *                  coordinator runs `fedc-coordinator --model external --optimizer sgd`
 *   logreg central --data ALL.csv --label COL --test T.csv --epochs E --lr X --batch B
 *                  the same model trained on all the clients' rows at once; prints the test
 *                  ROC-AUC
 *   logreg score   --model FILE --test T.csv --label COL
 *                  the ROC-AUC of a federated model (the coordinator's --model-out)
 *
 * The model: p = sigmoid(w . z + b) on standardised inputs z = (x - mean) / std, the mean and
 * deviation the federation agrees in round 0 (set_stats). One step per mini-batch:
 * w -= lr (mean over the batch of (p - y) x_i, with positives weighted by pos_weight, plus
 * l2 w). Parameters: n_features weights, then the bias. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/client.h"
#include "fedc/client_model.h"
#include "fedc/data.h"
#include "fedc/fl.h"
#include "fedc/modelfile.h"

typedef struct logreg {
    fedc_dataset *all;
    int *train, *val; /* row indices of this run's split */
    int n_train, n_val;
    float *mean, *std;
} logreg;

static uint64_t mix(uint64_t x) { /* splitmix64's finaliser: a well-spread hash */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static float score(const logreg *m, const float *w, int row) {
    int nf = m->all->n_features;
    const float *x = m->all->x + (size_t)row * (size_t)nf;
    double z = w[nf];
    for (int j = 0; j < nf; j++)
        z += w[j] * (x[j] - m->mean[j]) / m->std[j];
    return (float)(1.0 / (1.0 + exp(-z)));
}

static fedc_err describe(void *ctx, fedc_model_desc *out, fedc_diag *d) {
    (void)d;
    logreg *m = ctx;
    memset(out, 0, sizeof *out);
    out->kind = "logreg-v1";
    out->task = FEDC_TASK_BINARY;
    out->n_classes = 2;
    out->n_features = m->all->n_features;
    out->feature_names = m->all->feature_names;
    out->label = m->all->label_name;
    out->n_params = (size_t)m->all->n_features + 1;
    return FEDC_OK;
}

static fedc_err begin(void *ctx, const fedc_model_run *run, fedc_model_rows *rows, fedc_diag *d) {
    (void)d;
    logreg *m = ctx;
    m->n_train = m->n_val = 0;
    for (int i = 0; i < m->all->n_rows; i++) { /* the split follows the client's key */
        double u = (double)(mix(run->split_key ^ (uint64_t)i) >> 11) / 9007199254740992.0;
        if (u < run->val_fraction)
            m->val[m->n_val++] = i;
        else
            m->train[m->n_train++] = i;
    }
    rows->train_rows = rows->fit_rows = (uint64_t)m->n_train;
    rows->val_rows = (uint64_t)m->n_val;
    return FEDC_OK;
}

static fedc_err stats(void *ctx, double *sum, double *sq, uint64_t *cc, uint64_t *rows,
                      fedc_diag *d) {
    (void)d;
    logreg *m = ctx;
    int nf = m->all->n_features;
    for (int k = 0; k < m->n_train; k++) {
        const float *x = m->all->x + (size_t)m->train[k] * (size_t)nf;
        for (int j = 0; j < nf; j++) {
            sum[j] += x[j];
            sq[j] += (double)x[j] * x[j];
        }
        cc[m->all->y[m->train[k]] > 0.5f]++;
    }
    *rows = (uint64_t)m->n_train;
    return FEDC_OK;
}

static fedc_err set_stats(void *ctx, const float *mean, const float *std, fedc_model_rows *rows,
                          fedc_diag *d) {
    (void)rows;
    (void)d;
    logreg *m = ctx;
    memcpy(m->mean, mean, sizeof(float) * (size_t)m->all->n_features);
    memcpy(m->std, std, sizeof(float) * (size_t)m->all->n_features);
    return FEDC_OK;
}

static fedc_err fit(void *ctx, const float *global, float *w, size_t n, const fedc_model_fit *hp,
                    fedc_model_fit_out *out, fedc_diag *d) {
    logreg *m = ctx;
    int nf = m->all->n_features;
    double *g = calloc(n, sizeof *g);
    if (!g) {
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    memcpy(w, global, n * sizeof *w);
    uint64_t s = hp->seed;
    double loss = 0;
    for (int e = 0; e < hp->local_epochs; e++) {
        for (int k = m->n_train - 1; k > 0; k--) { /* Fisher-Yates shuffle */
            int r = (int)((s = mix(s)) % (uint64_t)(k + 1)), t = m->train[k];
            m->train[k] = m->train[r];
            m->train[r] = t;
        }
        loss = 0;
        for (int b0 = 0; b0 < m->n_train; b0 += hp->batch) {
            int b1 = b0 + hp->batch < m->n_train ? b0 + hp->batch : m->n_train;
            memset(g, 0, n * sizeof *g);
            for (int k = b0; k < b1; k++) {
                int row = m->train[k];
                float y = m->all->y[row], p = score(m, w, row);
                double c = y > 0.5f ? hp->pos_weight : 1.0;
                double r = c * (p - y);
                loss -= c * (y > 0.5f ? log(fmax(p, 1e-7)) : log(fmax(1 - p, 1e-7)));
                const float *x = m->all->x + (size_t)row * (size_t)nf;
                for (int j = 0; j < nf; j++)
                    g[j] += r * (x[j] - m->mean[j]) / m->std[j];
                g[nf] += r;
            }
            for (size_t j = 0; j < n; j++)
                w[j] -= hp->lr * (float)(g[j] / (b1 - b0) + (j < n - 1 ? hp->l2 * w[j] : 0));
        }
    }
    free(g);
    out->loss = loss / (m->n_train > 0 ? m->n_train : 1);
    return FEDC_OK;
}

static fedc_err evaluate(void *ctx, const float *w, size_t n, float threshold, fedc_eval_acc *acc,
                         fedc_diag *d) {
    (void)n;
    (void)d;
    logreg *m = ctx;
    for (int k = 0; k < m->n_val; k++) {
        float p = score(m, w, m->val[k]);
        fedc_eval_acc_add(acc, &p, &m->all->y[m->val[k]], 1, threshold);
    }
    return FEDC_OK;
}

static int logreg_open(logreg *m, fedc_dataset *all) {
    memset(m, 0, sizeof *m);
    m->all = all;
    size_t r = (size_t)all->n_rows, f = (size_t)all->n_features;
    m->train = malloc(sizeof(int) * r);
    m->val = malloc(sizeof(int) * r);
    m->mean = calloc(f, sizeof(float));
    m->std = malloc(sizeof(float) * f);
    for (size_t j = 0; m->std && j < f; j++)
        m->std[j] = 1.0f;
    return m->train && m->val && m->mean && m->std ? 0 : -1;
}

static void logreg_close(logreg *m) {
    fedc_dataset_destroy(&m->all);
    free(m->train);
    free(m->val);
    free(m->mean);
    free(m->std);
}

static const char *arg(int argc, char **argv, const char *name, const char *def) {
    for (int i = 2; i + 1 < argc; i += 2)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

/* ROC-AUC of weights w on the rows of a test file, standardised with m's statistics. */
static double test_auc(logreg *m, const float *w, const char *test, const char *label) {
    fedc_dataset *t = NULL;
    fedc_eval_acc *acc = NULL;
    fedc_diag d;
    if (fedc_csv_load(&t, test, label, NULL, 0, &d) ||
        fedc_eval_acc_new(&acc, FEDC_TASK_BINARY, 2, FEDC_EVAL_BINS)) {
        fprintf(stderr, "logreg: %s\n", d.msg);
        return NAN;
    }
    fedc_dataset *keep = m->all;
    m->all = t;
    for (int i = 0; i < t->n_rows; i++) {
        float p = score(m, w, i);
        fedc_eval_acc_add(acc, &p, &t->y[i], 1, 0.5f);
    }
    m->all = keep;
    fedc_eval_summary s;
    fedc_eval_acc_summary(acc, &s);
    fedc_eval_acc_destroy(&acc);
    fedc_dataset_destroy(&t);
    return s.roc_auc;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    const char *label = arg(argc, argv, "--label", NULL), *data = arg(argc, argv, "--data", NULL);
    fedc_diag d = {{0}};
    if (strcmp(mode, "score") == 0) {
        fedc_model *fm = NULL;
        logreg m;
        const char *test = arg(argc, argv, "--test", NULL), *path = arg(argc, argv, "--model", "");
        if (!test || !label || fedc_model_load(&fm, path, &d)) {
            fprintf(stderr, "logreg score: %s\n", test && label ? d.msg : "--test, --label");
            return 2;
        }
        /* The coordinator's model file holds the weights and the federation's statistics. */
        m.mean = fm->mean;
        m.std = fm->std;
        printf("roc_auc %.4f\n", test_auc(&m, fm->params, test, label));
        fedc_model_destroy(&fm);
        return 0;
    }
    if (!data || !label || (strcmp(mode, "client") != 0 && strcmp(mode, "central") != 0)) {
        fprintf(stderr, "usage: logreg client|central|score ... (see the comment in logreg.c)\n");
        return 2;
    }
    fedc_dataset *all = NULL;
    if (fedc_csv_load(&all, data, label, NULL, 0, &d)) {
        fprintf(stderr, "logreg: %s\n", d.msg);
        return 2;
    }
    logreg m;
    if (logreg_open(&m, all)) {
        fprintf(stderr, "logreg: out of memory\n");
        return 1;
    }
    fedc_client_model model = {.ctx = &m,
                               .describe = describe,
                               .begin = begin,
                               .stats = stats,
                               .set_stats = set_stats,
                               .fit = fit,
                               .evaluate = evaluate};
    int rc = 0;
    if (strcmp(mode, "central") == 0) { /* the same steps on every row at once */
        size_t n = (size_t)all->n_features + 1, nf = n - 1;
        float *w0 = calloc(n, sizeof *w0), *w = calloc(n, sizeof *w), *mean = calloc(nf, 4),
              *sd = calloc(nf, 4);
        double *sum = calloc(nf, 8), *sq = calloc(nf, 8);
        uint64_t cc[2] = {0, 0}, rows = 0;
        fedc_model_rows r;
        fedc_model_run run = {.val_fraction = 0};
        fedc_model_fit hp = {.local_epochs = atoi(arg(argc, argv, "--epochs", "5")),
                             .batch = atoi(arg(argc, argv, "--batch", "64")),
                             .lr = (float)atof(arg(argc, argv, "--lr", "0.1")),
                             .pos_weight = 1.0f,
                             .seed = 1};
        begin(&m, &run, &r, &d);
        stats(&m, sum, sq, cc, &rows, &d);
        for (size_t j = 0; j < nf; j++) { /* the deviation the coordinator derives, too */
            mean[j] = (float)(sum[j] / (double)rows);
            double v = sq[j] / (double)rows - (double)mean[j] * mean[j];
            sd[j] = v > 1e-12 ? (float)sqrt(v) : 1.0f;
        }
        set_stats(&m, mean, sd, &r, &d);
        fedc_model_fit_out o;
        fit(&m, w0, w, n, &hp, &o, &d);
        printf("roc_auc %.4f\n", test_auc(&m, w, arg(argc, argv, "--test", ""), label));
        free(w0), free(w), free(mean), free(sd), free(sum), free(sq);
    } else {
        client_cfg cfg;
        fedc_client_defaults(&cfg);
        cfg.connect = arg(argc, argv, "--connect", "tcp://127.0.0.1:7000");
        cfg.name = arg(argc, argv, "--name", "logreg");
        cfg.model = &model;
        fedc_client *c = NULL;
        if (fedc_client_new(&c, &cfg, &d)) {
            fprintf(stderr, "logreg: %s\n", d.msg);
            rc = 2;
        } else {
            rc = fedc_client_run(c);
            fedc_client_destroy(&c);
        }
    }
    logreg_close(&m);
    return rc;
}
