/* The participant's loop (overview in client.h). */
#define _POSIX_C_SOURCE 200809L
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fedc/codec.h"
#include "fedc/data.h"
#include "fedc/fault.h"
#include "fedc/fl.h"
#include "fedc/fl_seed.h"
#include "fedc/model.h"
#include "fedc/rng.h"
#include "fedc/train.h"
#include "fedc/transport.h"

#define PROG "fedc-client"
#define JOIN_RETRY_S 2.0

/* One round of local training, owned by the training thread while `busy`. */
typedef struct job {
    uint32_t round;
    float *global;       /* (n) the weights received */
    fedc_model *local;   /* trained in place */
    float *update;       /* (n) local - global */
    fedc_train_cfg tcfg; /* prox_center points at global */
    const fedc_dataset *train;
    int threads;
    /* results */
    double loss;
    double seconds;
    fedc_err rc;
    char msg[FEDC_DIAG_MAX];
} job;

typedef struct cl {
    const client_cfg *cfg;
    void *zctx;
    fedc_endpoint *ep;
    fedc_dataset *all; /* as loaded, never standardised */
    fedc_task task;
    int n_classes;
    /* run */
    int joined;
    int have_run;
    uint8_t run_id[FEDC_RUN_ID_BYTES];
    fedc_arch arch;
    uint64_t seed;
    int rounds;
    float val_fraction;
    fedc_dataset *train_raw, *val_raw; /* this run's split */
    fedc_dataset *train, *val;         /* standardised with the agreed statistics */
    float *mean, *std;                 /* agreed statistics (n_features) or NULL */
    fedc_model *eval_model;
    fedc_eval_acc *eval;
    /* training thread */
    job job;
    int busy;
    pthread_t thread;
    int pipe_fd[2];
    int pending; /* a FitIns arrived while training: start it next */
    uint32_t pending_round;
    float *pending_w;
    Fedc__HyperParams pending_hp;
    float pending_pw;
    /* per-round line */
    uint32_t last_fit_round;
    double last_loss, last_secs;
    int last_rows;
    /* liveness */
    double last_heard, last_hb, last_join;
    uint64_t hb_seq;
} cl;

static volatile sig_atomic_t g_stop;

void client_request_stop(void) {
    g_stop = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *g_name = "";

static void logm(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logm(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, PROG " %s: ", g_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void env_init(cl *c, Fedc__Envelope *m, uint32_t round) {
    fedc__envelope__init(m);
    m->version = FEDC_PROTOCOL_VERSION;
    if (c->have_run) {
        m->run_id.data = c->run_id;
        m->run_id.len = FEDC_RUN_ID_BYTES;
    }
    m->round = round;
}

static int send_msg(cl *c, const Fedc__Envelope *m, const void *raw, size_t raw_len) {
    fedc_diag d;
    static char last[FEDC_DIAG_MAX];
    if (fedc_net_send(c->ep, NULL, m, raw, raw_len, &d)) {
        /* While the coordinator is away the queue fills with joins; say so once. */
        if (strcmp(last, d.msg) != 0)
            logm("%s", d.msg);
        snprintf(last, sizeof last, "%s", d.msg);
        return -1;
    }
    last[0] = 0;
    return 0;
}

/* ---- join ----------------------------------------------------------------------------------- */

static void send_join(cl *c) {
    Fedc__Envelope m;
    Fedc__Join j = FEDC__JOIN__INIT;
    Fedc__Schema s = FEDC__SCHEMA__INIT;
    fedc_fault_point("join", 0);
    env_init(c, &m, 0);
    s.n_feature_names = (size_t)c->all->n_features;
    s.feature_names = c->all->feature_names;
    s.label = c->all->label_name;
    s.task = (uint32_t)c->task;
    s.n_classes = (uint32_t)c->n_classes;
    j.name = (char *)c->cfg->name;
    j.schema = &s;
    j.n_rows = (uint64_t)c->all->n_rows;
    m.body_case = FEDC__ENVELOPE__BODY_JOIN;
    m.join = &j;
    (void)send_msg(c, &m, NULL, 0);
    c->last_join = now_s();
}

static void wait_training(cl *c) {
    if (c->busy) {
        pthread_join(c->thread, NULL);
        char b;
        while (read(c->pipe_fd[0], &b, 1) == 1) {
        }
        c->busy = 0;
    }
}

static void reset_run(cl *c) {
    wait_training(c);
    fedc_dataset_destroy(&c->train_raw);
    fedc_dataset_destroy(&c->val_raw);
    fedc_dataset_destroy(&c->train);
    fedc_dataset_destroy(&c->val);
    free(c->mean);
    free(c->std);
    c->mean = c->std = NULL;
    fedc_model_destroy(&c->eval_model);
    fedc_model_destroy(&c->job.local);
    fedc_eval_acc_destroy(&c->eval);
    free(c->job.global);
    free(c->job.update);
    c->job.global = c->job.update = NULL;
    free(c->pending_w);
    c->pending_w = NULL;
    c->pending = 0;
}

/* Returns 0, or an exit code. */
static int on_welcome(cl *c, const Fedc__Envelope *e) {
    const Fedc__Welcome *w = e->welcome;
    int same_run = c->have_run && memcmp(c->run_id, e->run_id.data, FEDC_RUN_ID_BYTES) == 0;
    if (same_run) {
        c->joined = 1;
        logm("rejoined the run at round %u", e->round);
        return 0;
    }
    if (c->have_run)
        logm("the coordinator started a new run; joining it");
    reset_run(c);
    memcpy(c->run_id, e->run_id.data, FEDC_RUN_ID_BYTES);
    c->have_run = 1;
    c->joined = 1;
    int hidden[FEDC_MAX_LAYERS];
    int nl = (int)w->n_layer_sizes - 1;
    for (int i = 1; i < nl; i++)
        hidden[i - 1] = (int)w->layer_sizes[i];
    fedc_diag d;
    if (fedc_arch_make(&c->arch, (int)w->layer_sizes[0], hidden, nl - 1, (fedc_act)w->hidden_act,
                       c->task, (int)w->schema->n_classes, &d)) {
        logm("the coordinator's model does not fit our data: %s", d.msg);
        return 2;
    }
    if ((int)w->layer_sizes[nl] != c->arch.sizes[nl]) {
        logm("the coordinator's model has %u outputs, our data needs %d", w->layer_sizes[nl],
             c->arch.sizes[nl]);
        return 2;
    }
    c->seed = w->seed;
    c->rounds = (int)w->rounds;
    c->val_fraction = w->hp->val_fraction;
    uint64_t key = fedc_fl_split_seed(c->seed, c->cfg->name);
    if (fedc_dataset_split(&c->train_raw, c->val_fraction > 0 ? &c->val_raw : NULL, NULL, c->all,
                           c->task, c->val_fraction, 0.0, key) ||
        !c->train_raw || c->train_raw->n_rows < 1) {
        logm("%s: cannot keep %.0f%% of %d rows for validation and still train", c->cfg->data,
             100.0 * c->val_fraction, c->all->n_rows);
        return 2;
    }
    if (fedc_model_new(&c->eval_model, &c->arch) || fedc_model_new(&c->job.local, &c->arch) ||
        fedc_eval_acc_new(&c->eval, c->task, c->arch.n_classes, FEDC_EVAL_BINS)) {
        logm("out of memory for the model");
        return 1;
    }
    size_t n = c->job.local->n_params;
    c->job.global = malloc(4 * n);
    c->job.update = malloc(4 * n);
    c->pending_w = malloc(4 * n);
    if (!c->job.global || !c->job.update || !c->pending_w) {
        logm("out of memory for the model");
        return 1;
    }
    logm("joined run with %d round(s): %d training rows, %d validation rows, %zu parameters",
         c->rounds, c->train_raw->n_rows, c->val_raw ? c->val_raw->n_rows : 0, n);
    return 0;
}

/* ---- round 0 ------------------------------------------------------------------------------- */

static void on_stats_request(cl *c, const Fedc__Envelope *e) {
    const fedc_dataset *t = c->train_raw;
    int nf = t->n_features;
    double *sum = calloc((size_t)nf, 8), *sq = calloc((size_t)nf, 8);
    uint64_t *cc = calloc((size_t)(c->arch.n_classes > 1 ? c->arch.n_classes : 1), 8);
    if (!sum || !sq || !cc) {
        logm("out of memory for statistics");
        goto out;
    }
    for (int i = 0; i < t->n_rows; i++) {
        const float *x = t->x + (size_t)i * (size_t)nf;
        for (int j = 0; j < nf; j++) {
            sum[j] += x[j];
            sq[j] += (double)x[j] * x[j];
        }
        if (c->task != FEDC_TASK_REGRESSION)
            cc[(int)t->y[i]]++;
    }
    Fedc__Envelope m;
    Fedc__Stats s = FEDC__STATS__INIT;
    env_init(c, &m, e->round);
    s.n_rows = (uint64_t)t->n_rows;
    s.n_sum = s.n_sum_sq = (size_t)nf;
    s.sum = sum;
    s.sum_sq = sq;
    if (c->task != FEDC_TASK_REGRESSION) {
        s.n_class_count = (size_t)c->arch.n_classes;
        s.class_count = cc;
    }
    m.body_case = FEDC__ENVELOPE__BODY_STATS;
    m.stats = &s;
    fedc_fault_point("stats", 0);
    (void)send_msg(c, &m, NULL, 0);
out:
    free(sum);
    free(sq);
    free(cc);
}

/* (Re)standardises copies of the split when the agreed statistics change. */
static int apply_stats(cl *c, const float *mean, const float *std) {
    size_t nf = (size_t)c->arch.sizes[0];
    if (c->mean && memcmp(c->mean, mean, 4 * nf) == 0 && memcmp(c->std, std, 4 * nf) == 0)
        return 0;
    wait_training(c);
    free(c->mean);
    free(c->std);
    c->mean = malloc(4 * nf);
    c->std = malloc(4 * nf);
    fedc_dataset_destroy(&c->train);
    fedc_dataset_destroy(&c->val);
    int rows_t = c->train_raw->n_rows;
    int *idx = malloc(sizeof(int) * (size_t)(c->all->n_rows > 0 ? c->all->n_rows : 1));
    if (!c->mean || !c->std || !idx) {
        free(idx);
        return -1;
    }
    memcpy(c->mean, mean, 4 * nf);
    memcpy(c->std, std, 4 * nf);
    for (int i = 0; i < c->all->n_rows; i++)
        idx[i] = i;
    int bad = fedc_dataset_subset(&c->train, c->train_raw, idx, rows_t) != FEDC_OK;
    if (!bad && c->val_raw)
        bad = fedc_dataset_subset(&c->val, c->val_raw, idx, c->val_raw->n_rows) != FEDC_OK;
    free(idx);
    if (bad)
        return -1;
    fedc_dataset_standardize(c->train, mean, std);
    if (c->val)
        fedc_dataset_standardize(c->val, mean, std);
    if (fedc_model_set_schema(c->eval_model, NULL, NULL, mean, std))
        return -1;
    return 0;
}

/* ---- training ------------------------------------------------------------------------------ */

static void *train_main(void *arg) {
    cl *c = arg;
    job *j = &c->job;
#ifdef _OPENMP
    if (j->threads > 0)
        omp_set_num_threads(j->threads);
#endif
    double t0 = now_s();
    fedc_train_report rep;
    fedc_diag d = {{0}};
    memcpy(j->local->params, j->global, 4 * j->local->n_params);
    j->rc = fedc_train(j->local, j->train, NULL, &j->tcfg, &rep, &d);
    snprintf(j->msg, sizeof j->msg, "%s", d.msg);
    j->loss = rep.final_train_loss;
    size_t n = j->local->n_params;
    for (size_t i = 0; i < n; i++)
        j->update[i] = j->local->params[i] - j->global[i];
    j->seconds = now_s() - t0;
    char b = 1;
    ssize_t w = write(c->pipe_fd[1], &b, 1);
    (void)w;
    return NULL;
}

static void start_training(cl *c, uint32_t round, const float *w, const Fedc__HyperParams *hp,
                           float pos_weight) {
    job *j = &c->job;
    memcpy(j->global, w, 4 * j->local->n_params);
    j->round = round;
    j->train = c->train;
    j->threads = c->cfg->threads;
    fedc_train_cfg t = fedc_train_defaults();
    t.epochs = (int)hp->local_epochs;
    t.batch = (int)hp->batch;
    t.opt = fedc_optim_defaults();
    t.opt.kind = (fedc_opt_kind)hp->optimizer;
    t.opt.lr = hp->lr;
    t.opt.l2 = hp->l2;
    t.opt.prox_mu = hp->prox_mu;
    t.opt.prox_center = hp->prox_mu > 0 ? j->global : NULL;
    t.dropout = hp->dropout;
    t.pos_weight = c->task == FEDC_TASK_BINARY ? pos_weight : 1.0f;
    t.patience = 0;
    t.seed = fedc_fl_client_seed(c->seed, c->cfg->name, round);
    j->tcfg = t;
    fedc_fault_point("fit", round);
    if (pthread_create(&c->thread, NULL, train_main, c) != 0) {
        logm("cannot start the training thread");
        return;
    }
    c->busy = 1;
}

static void on_fit_ins(cl *c, const fedc_inbox *in) {
    const Fedc__Envelope *e = in->msg;
    const Fedc__FitIns *f = e->fit_ins;
    if (apply_stats(c, f->mean, f->std)) {
        logm("out of memory standardising the data");
        return;
    }
    if (c->busy) {
        /* Still training an earlier round (it was retried or we were late): run this next. */
        fedc_tensor_unpack(c->pending_w, f->weights, in->raw);
        c->pending = 1;
        c->pending_round = e->round;
        c->pending_hp = *f->hp;
        c->pending_pw = f->pos_weight;
        return;
    }
    fedc_tensor_unpack(c->pending_w, f->weights, in->raw);
    start_training(c, e->round, c->pending_w, f->hp, f->pos_weight);
}

static void on_training_done(cl *c) {
    wait_training(c);
    job *j = &c->job;
    if (j->rc) {
        logm("round %u: local training failed: %s", j->round, j->msg);
        /* Tell the coordinator, so that the round does not wait for us until its deadline. */
        Fedc__Envelope m;
        Fedc__Error er = FEDC__ERROR__INIT;
        char reason[FEDC_DIAG_MAX + 32];
        snprintf(reason, sizeof reason, "local training failed: %s", j->msg);
        env_init(c, &m, j->round);
        er.code = (uint32_t)(-(int)j->rc);
        er.reason = reason;
        m.body_case = FEDC__ENVELOPE__BODY_ERROR;
        m.error = &er;
        (void)send_msg(c, &m, NULL, 0);
    } else {
        Fedc__Envelope m;
        Fedc__FitRes r = FEDC__FIT_RES__INIT;
        Fedc__Tensor t = FEDC__TENSOR__INIT;
        env_init(c, &m, j->round);
        t.count = j->local->n_params;
        r.update = &t;
        r.n_examples = (uint64_t)j->train->n_rows;
        r.train_loss = isfinite(j->loss) && j->loss >= 0 ? j->loss : 0.0;
        r.seconds = j->seconds;
        m.body_case = FEDC__ENVELOPE__BODY_FIT_RES;
        m.fit_res = &r;
        fedc_fault_point("fit-res", j->round);
        (void)send_msg(c, &m, j->update, 4 * t.count);
        c->last_fit_round = j->round;
        c->last_loss = j->loss;
        c->last_secs = j->seconds;
        c->last_rows = j->train->n_rows;
    }
    if (c->pending) {
        c->pending = 0;
        start_training(c, c->pending_round, c->pending_w, &c->pending_hp, c->pending_pw);
    }
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static void on_evaluate_ins(cl *c, const fedc_inbox *in) {
    const Fedc__Envelope *e = in->msg;
    const Fedc__EvaluateIns *ei = e->evaluate_ins;
    if (ei->n_mean && apply_stats(c, ei->mean, ei->std)) {
        logm("out of memory standardising the data");
        return;
    }
    fedc_eval_acc *a = c->eval;
    fedc_eval_acc_reset(a);
    fedc_tensor_unpack(c->eval_model->params, e->evaluate_ins->weights, in->raw);
    const fedc_dataset *v = c->val;
    float *pred = NULL;
    if (v && v->n_rows > 0 && c->mean) {
        pred = malloc(4 * (size_t)v->n_rows * (size_t)fedc_model_out_width(c->eval_model));
        if (!pred || fedc_model_predict_std(pred, c->eval_model, v->x, v->n_rows)) {
            logm("cannot evaluate: out of memory");
            free(pred);
            return;
        }
        fedc_eval_acc_add(a, pred, v->y, v->n_rows, e->evaluate_ins->threshold);
    }
    free(pred);
    Fedc__Envelope m;
    Fedc__EvaluateRes r = FEDC__EVALUATE_RES__INIT;
    env_init(c, &m, e->round);
    r.n = a->n;
    r.log_loss_sum = a->loss_sum;
    if (c->task == FEDC_TASK_BINARY && a->n) {
        r.n_hist_pos = r.n_hist_neg = a->bins;
        r.hist_pos = a->hist_pos;
        r.hist_neg = a->hist_neg;
        r.tp = a->tp;
        r.fp = a->fp;
        r.tn = a->tn;
        r.fn = a->fn;
    } else if (c->task == FEDC_TASK_MULTICLASS && a->n) {
        r.n_confusion = (size_t)a->n_classes * (size_t)a->n_classes;
        r.confusion = a->confusion;
    } else if (c->task == FEDC_TASK_REGRESSION) {
        r.sse = a->sse;
        r.sum_y = a->sum_y;
        r.sum_y2 = a->sum_y2;
    }
    m.body_case = FEDC__ENVELOPE__BODY_EVALUATE_RES;
    m.evaluate_res = &r;
    fedc_fault_point("eval-res", e->round);
    if (!c->cfg->self)
        logm("WARNING: --insecure: round %u travelled without encryption", e->round);
    (void)send_msg(c, &m, NULL, 0);
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
}

/* ---- the loop -------------------------------------------------------------------------------- */

/* Handles one message; returns -1 to continue, else the exit code. */
static int handle(cl *c, const fedc_inbox *in) {
    const Fedc__Envelope *e = in->msg;
    c->last_heard = now_s();
    switch (e->body_case) {
    case FEDC__ENVELOPE__BODY_WELCOME: {
        int rc = on_welcome(c, e);
        return rc ? rc : -1;
    }
    case FEDC__ENVELOPE__BODY_BYE: {
        const char *r = e->bye->reason;
        if (strncmp(r, "run complete", 12) == 0) {
            logm("the coordinator says: %s", r);
            return 0;
        }
        if (strncmp(r, "refused", 7) == 0) {
            logm("the coordinator %s", r);
            return 2;
        }
        if (strncmp(r, "run failed", 10) == 0) {
            logm("the coordinator says: %s", r);
            return 1;
        }
        logm("the coordinator says: %s; waiting for it to come back", r);
        c->joined = 0;
        return -1;
    }
    case FEDC__ENVELOPE__BODY_ERROR:
        if (strcmp(e->error->reason, FEDC_WIRE_NOT_JOINED) == 0 ||
            strstr(e->error->reason, "join again")) {
            if (c->joined)
                logm("the coordinator does not know us (it restarted?); joining again");
            c->joined = 0;
            send_join(c);
        } else {
            logm("the coordinator refused a message: %s", e->error->reason);
        }
        return -1;
    case FEDC__ENVELOPE__BODY_HEARTBEAT:
        return -1;
    default:
        break;
    }
    /* Everything else belongs to our run. */
    if (!c->have_run || e->run_id.len != FEDC_RUN_ID_BYTES ||
        memcmp(e->run_id.data, c->run_id, FEDC_RUN_ID_BYTES) != 0) {
        logm("ignored %s from another run", fedc_msg_body_name(e->body_case));
        return -1;
    }
    switch (e->body_case) {
    case FEDC__ENVELOPE__BODY_STATS_REQUEST:
        on_stats_request(c, e);
        break;
    case FEDC__ENVELOPE__BODY_FIT_INS:
        on_fit_ins(c, in);
        break;
    case FEDC__ENVELOPE__BODY_EVALUATE_INS:
        on_evaluate_ins(c, in);
        break;
    default:
        logm("unexpected %s from the coordinator; ignored", fedc_msg_body_name(e->body_case));
        break;
    }
    return -1;
}

static void send_heartbeat(cl *c) {
    Fedc__Envelope m;
    Fedc__Heartbeat h = FEDC__HEARTBEAT__INIT;
    env_init(c, &m, 0);
    h.seq = ++c->hb_seq;
    m.body_case = FEDC__ENVELOPE__BODY_HEARTBEAT;
    m.heartbeat = &h;
    (void)send_msg(c, &m, NULL, 0);
    c->last_hb = now_s();
}

int client_run(const client_cfg *cfg) {
    cl c_, *c = &c_;
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->pipe_fd[0] = c->pipe_fd[1] = -1;
    g_name = cfg->name;
    fedc_fault_init(cfg->name);
    int code = 2;
    fedc_diag d = {{0}};
    /* The data first: a bad file is the user's to fix before anything connects. */
    if (fedc_csv_load(&c->all, cfg->data, cfg->label, (const char *const *)cfg->drop, cfg->n_drop,
                      &d)) {
        logm("--data: %s", d.msg);
        goto out;
    }
    if (fedc_dataset_task(&c->task, &c->n_classes, c->all, cfg->force_regression, &d)) {
        logm("--data: %s", d.msg);
        goto out;
    }
    code = 1;
    if (pipe(c->pipe_fd) != 0 || fcntl(c->pipe_fd[0], F_SETFL, O_NONBLOCK) != 0) {
        logm("cannot create a pipe: %s", strerror(errno));
        goto out;
    }
    c->zctx = zmq_ctx_new();
    fedc_err crc = !c->zctx ? FEDC_EIO
                   : cfg->self
                       ? fedc_net_connect_secure(&c->ep, c->zctx, cfg->connect, cfg->max_msg,
                                                 cfg->self, cfg->coordinator->curve_pk, &d)
                       : fedc_net_connect(&c->ep, c->zctx, cfg->connect, cfg->max_msg, &d);
    if (crc) {
        logm("--connect: %s", c->zctx ? d.msg : "cannot create a ZeroMQ context");
        code = 2;
        goto out;
    }
    logm("%d rows, %d features, task %s; connecting to %s", c->all->n_rows, c->all->n_features,
         fedc_task_name(c->task), cfg->connect);
    c->last_heard = now_s();
    send_join(c);
    zmq_pollitem_t items[3] = {{fedc_net_socket(c->ep), 0, ZMQ_POLLIN, 0},
                               {NULL, c->pipe_fd[0], ZMQ_POLLIN, 0},
                               {fedc_net_monitor(c->ep), 0, ZMQ_POLLIN, 0}};
    int n_items = cfg->self ? 3 : 2;
    fedc_net_event_state ev;
    memset(&ev, 0, sizeof ev);
    double no_handshake_since = now_s();
    code = -1;
    while (code < 0 && !g_stop) {
        int n = zmq_poll(items, n_items, 50);
        if (cfg->self) {
            fedc_net_events(c->ep, &ev);
            if (ev.auth_failed) {
                logm("the coordinator at %s does not accept our key '%s' (ZAP status %d): ask its "
                     "operator to put %s.key in the --allow directory",
                     cfg->connect, cfg->self->name, ev.auth_status, cfg->self->name);
                code = 2;
                break;
            }
            if (ev.handshake_ok)
                no_handshake_since = now_s();
            else if (ev.handshake_failed && now_s() - no_handshake_since > 10.0) {
                logm("the CurveZMQ handshake with %s keeps failing (%d attempts): is "
                     "--coordinator-key the coordinator's public key?",
                     cfg->connect, ev.handshake_failed);
                code = 2;
                break;
            }
        }
        if (n < 0 && zmq_errno() != EINTR) {
            logm("poll failed: %s", zmq_strerror(zmq_errno()));
            code = 1;
            break;
        }
        if (n > 0 && (items[1].revents & ZMQ_POLLIN) && c->busy)
            on_training_done(c);
        for (int k = 0; n > 0 && k < 64 && code < 0; k++) {
            fedc_inbox in;
            fedc_msg_expect x = {0};
            x.round = -1;
            x.max_bytes = cfg->max_msg;
            if (c->have_run) {
                x.n_params = fedc_arch_n_params(&c->arch);
                x.n_features = (uint32_t)c->arch.sizes[0];
            }
            fedc_err rc = fedc_net_recv(c->ep, &in, &x, 0, &d);
            if (rc == FEDC_EEMPTY)
                break;
            if (rc == FEDC_OK)
                code = handle(c, &in);
            else
                logm("refused a message from the coordinator: %s", d.msg);
            fedc_inbox_release(&in);
        }
        double t = now_s();
        if (!c->joined && t - c->last_join > JOIN_RETRY_S)
            send_join(c);
        if (c->joined && t - c->last_hb > cfg->heartbeat_ms / 1000.0)
            send_heartbeat(c);
        if (t - c->last_heard > cfg->coordinator_timeout_s) {
            logm("no word from the coordinator at %s for %.0f s; giving up", cfg->connect,
                 cfg->coordinator_timeout_s);
            code = 1;
        }
    }
    if (g_stop) {
        logm("stopping on signal");
        Fedc__Envelope m;
        Fedc__Bye b = FEDC__BYE__INIT;
        env_init(c, &m, 0);
        b.reason = "client stopped";
        m.body_case = FEDC__ENVELOPE__BODY_BYE;
        m.bye = &b;
        (void)send_msg(c, &m, NULL, 0);
        int linger = 500;
        zmq_setsockopt(fedc_net_socket(c->ep), ZMQ_LINGER, &linger, sizeof linger);
        code = 1;
    }
out:
    reset_run(c);
    fedc_dataset_destroy(&c->all);
    fedc_net_close(&c->ep);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    if (c->pipe_fd[0] >= 0)
        close(c->pipe_fd[0]);
    if (c->pipe_fd[1] >= 0)
        close(c->pipe_fd[1]);
    return code;
}
