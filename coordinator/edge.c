/* The edge aggregator, the upstream side (edge.h): the edge as a fedc_client_model whose
 * callbacks hand each upstream request to the edge's coordinator and wait for its answer, and
 * fedc_edge_run, which runs the coordinator on a thread, and once its round 0 is done the
 * upstream client on another. */
#define _POSIX_C_SOURCE 200809L
#include "edge.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fedc/client.h"
#include "fedc/fl.h"
#include "fedc/log.h"
#include "fedc/recipe.h"

#define EDGE_PROG "fedc-coordinator"
/* How often the supervising thread looks at the stop flag and the two loops. */
#define SUPERVISE_MS 50

typedef struct edge {
    edge_link link;
    const coord_cfg *cfg;
    const edge_cfg *ecfg;
    fedc_coord *coord;
    pthread_t coord_thread;
    int coord_code;
    atomic_int coord_done;
    fedc_client *client;
    pthread_t client_thread;
    int client_code;
    atomic_int client_done;
    fedc_client_model model;
    fedc_recipe_enc enc;
    int have_enc;
} edge;

void edge_cfg_release(edge_cfg *e) {
    fedc_key_wipe(&e->self);
    free(e->peers);
    memset(e, 0, sizeof *e);
}

static void say(const edge *e, fedc_log_level lv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(const edge *e, fedc_log_level lv, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fedc_log_write(&e->cfg->log, lv, EDGE_PROG, e->ecfg->name, line);
}

/* ---- the edge as the upstream client's model --------------------------------------------- */

static fedc_err m_describe(void *ctx, fedc_model_desc *out, fedc_diag *d) {
    (void)d;
    edge_link *l = &((edge *)ctx)->link;
    memset(out, 0, sizeof *out);
    out->kind = l->kind[0] ? l->kind : "mlp";
    out->task = (fedc_task)l->task;
    out->n_classes = l->n_classes;
    out->n_features = l->n_features;
    out->feature_names = l->names;
    out->label = l->label;
    /* fedc's MLP is sized by the upstream's --layers (checked in m_begin); an own model's count
     * travels with the join. */
    out->n_params = l->kind[0] ? l->n_params : 0;
    return FEDC_OK;
}

static fedc_err m_begin(void *ctx, const fedc_model_run *run, fedc_model_rows *rows, fedc_diag *d) {
    edge *e = ctx;
    edge_link *l = &e->link;
    if (run->n_params != l->n_params) {
        fedc_diag_set(d,
                      "the upstream's model has %zu parameters, this edge's federation %zu: give "
                      "the edge the upstream's --layers (or the same own model)",
                      run->n_params, l->n_params);
        return FEDC_EMISMATCH;
    }
    /* Not errors: the tree still trains, but its clients draw their seeds and validation splits
     * from the edge's settings, so it is no longer the flat federation's twin. */
    if (run->seed != l->seed)
        say(e, FEDC_LOG_WARN,
            "the edge's --seed differs from the upstream's (%s): its clients shuffle and split "
            "as under another run",
            "set both alike for a tree equal to the flat federation");
    if (run->rounds != l->rounds)
        say(e, FEDC_LOG_WARN,
            "the edge's --rounds (%d) differs from the upstream's (%d): its clients were told "
            "the edge's (DP-SGD plans its budget over them); give the edge the upstream's",
            l->rounds, run->rounds);
    if (run->val_fraction != l->val_fraction)
        say(e, FEDC_LOG_WARN, "the edge's --val-fraction differs from the upstream's (%s)",
            "its clients keep their own");
    rows->train_rows = (uint64_t)l->rows;
    rows->val_rows = 0; /* its clients' own, not known here */
    rows->fit_rows = rows->train_rows;
    return FEDC_OK;
}

static fedc_err m_stats(void *ctx, double *sum, double *sum_sq, uint64_t *class_count,
                        uint64_t *rows, fedc_diag *d) {
    (void)d;
    edge_link *l = &((edge *)ctx)->link;
    size_t nf = (size_t)l->n_features;
    memcpy(sum, l->sum, 8 * nf);
    memcpy(sum_sq, l->sq, 8 * nf);
    if (l->task == FEDC_TASK_BINARY) {
        class_count[0] = l->cc[0];
        class_count[1] = l->cc[1];
    }
    *rows = (uint64_t)l->rows;
    return FEDC_OK;
}

static fedc_err m_present(void *ctx, double *present, fedc_diag *d) {
    (void)d;
    edge_link *l = &((edge *)ctx)->link;
    for (int j = 0; j < l->n_features; j++)
        present[j] = l->present ? l->present[j] : l->rows;
    return FEDC_OK;
}

static fedc_err m_set_stats(void *ctx, const float *mean, const float *std, fedc_model_rows *rows,
                            fedc_diag *d) {
    (void)rows;
    edge_link *l = &((edge *)ctx)->link;
    size_t nf = (size_t)l->n_features;
    pthread_mutex_lock(&l->mu);
    if (!l->mean)
        l->mean = malloc(4 * nf);
    if (!l->std)
        l->std = malloc(4 * nf);
    int ok = l->mean && l->std;
    if (ok) {
        memcpy(l->mean, mean, 4 * nf);
        memcpy(l->std, std, 4 * nf);
    }
    pthread_mutex_unlock(&l->mu);
    if (!ok) {
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    return FEDC_OK;
}

/* Posts a request to the edge's coordinator and waits for its answer (or for either side to
 * end). */
static fedc_err post_and_wait(edge *e, int req, const float *w, float *local, fedc_eval_acc *acc,
                              const fedc_model_fit *hp, float threshold, double *loss,
                              fedc_diag *d) {
    edge_link *l = &e->link;
    pthread_mutex_lock(&l->mu);
    if (l->req != EDGE_REQ_NONE) {
        pthread_mutex_unlock(&l->mu);
        fedc_diag_set(d, "the edge is still running the upstream's previous request");
        return FEDC_EINVAL;
    }
    l->req = req;
    l->started = l->answered = l->ok = 0;
    l->why[0] = 0;
    l->w = w;
    l->local = local;
    l->acc = acc;
    if (hp)
        l->hp = *hp;
    l->threshold = threshold;
    if (write(l->wake[1], "r", 1) < 0 && errno != EAGAIN)
        say(e, FEDC_LOG_WARN, "edge: cannot wake the coordinator: %s", strerror(errno));
    while (!l->answered && !l->coord_over && !l->upstream_over)
        pthread_cond_wait(&l->cv, &l->mu);
    fedc_err rc = FEDC_OK;
    if (!l->answered) {
        fedc_diag_set(d, "the edge is stopping");
        rc = FEDC_EIO;
    } else if (!l->ok) {
        fedc_diag_set(d, "the edge's round failed: %s", l->why);
        rc = FEDC_EIO;
    }
    if (loss)
        *loss = l->loss;
    l->req = EDGE_REQ_NONE;
    l->started = l->answered = 0;
    l->w = NULL;
    l->local = NULL;
    l->acc = NULL;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static fedc_err m_fit(void *ctx, const float *global, float *local, size_t n,
                      const fedc_model_fit *hp, fedc_model_fit_out *out, fedc_diag *d) {
    edge *e = ctx;
    if (n != e->link.n_params) {
        fedc_diag_set(d, "fit: %zu weights, the edge's model has %zu", n, e->link.n_params);
        return FEDC_EMISMATCH;
    }
    double loss = 0;
    fedc_err rc = post_and_wait(e, EDGE_REQ_FIT, global, local, NULL, hp, 0, &loss, d);
    out->loss = loss;
    return rc;
}

static fedc_err m_evaluate(void *ctx, const float *weights, size_t n, float threshold,
                           fedc_eval_acc *acc, fedc_diag *d) {
    edge *e = ctx;
    if (n != e->link.n_params) {
        fedc_diag_set(d, "evaluate: %zu weights, the edge's model has %zu", n, e->link.n_params);
        return FEDC_EMISMATCH;
    }
    return post_and_wait(e, EDGE_REQ_EVAL, weights, NULL, acc, NULL, threshold, NULL, d);
}

/* ---- running both ------------------------------------------------------------------------ */

static void *coord_main(void *arg) {
    edge *e = arg;
    e->coord_code = fedc_coord_run(e->coord);
    atomic_store(&e->coord_done, 1);
    return NULL;
}

static void *client_main(void *arg) {
    edge *e = arg;
    e->client_code = fedc_client_run(e->client);
    atomic_store(&e->client_done, 1);
    return NULL;
}

static void nap(void) {
    struct timespec ts = {0, SUPERVISE_MS * 1000000L};
    nanosleep(&ts, NULL);
}

static void link_free(edge_link *l) {
    for (int j = 0; l->names && j < l->n_features; j++)
        free(l->names[j]);
    free(l->names);
    free(l->label);
    free(l->encoding);
    free(l->features);
    free(l->sum);
    free(l->sq);
    free(l->present);
    free(l->mean);
    free(l->std);
    if (l->wake[0] >= 0)
        close(l->wake[0]);
    if (l->wake[1] >= 0)
        close(l->wake[1]);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
}

/* The upstream client's configuration, once round 0 told the edge its schema. */
static int client_setup(edge *e, client_cfg *cc) {
    const coord_cfg *cfg = e->cfg;
    const edge_cfg *ec = e->ecfg;
    edge_link *l = &e->link;
    fedc_client_defaults(cc);
    cc->connect = ec->upstream;
    cc->name = ec->name;
    cc->model = &e->model;
    cc->heartbeat_ms = ec->heartbeat_ms;
    cc->coordinator_timeout_s = ec->upstream_timeout_s;
    cc->max_msg = cfg->max_msg;
    cc->quiet = 1; /* the edge's own metrics line is printed by its coordinator */
    cc->log = cfg->log;
    cc->allow_plain = !cfg->secagg; /* plain upstream only when the edge itself runs plain */
    cc->sa_min_nbrs = cfg->sa_min_nbrs;
    if (!cfg->insecure) {
        cc->self = &ec->self;
        cc->coordinator = &ec->up;
        cc->peers = ec->peers;
        cc->n_peers = ec->n_peers;
        cc->peers_dir = ec->peers_dir;
    }
    if (l->encoding) {
        fedc_diag d;
        if (fedc_encoding_from_json(&e->enc, l->encoding, &d)) {
            say(e, FEDC_LOG_ERROR, "edge: the federation's encoding cannot be read: %s", d.msg);
            return -1;
        }
        e->have_enc = 1;
        cc->encoding = &e->enc.enc;
    }
    cc->features = l->features;
    fedc_client_model m = {0};
    m.ctx = e;
    m.describe = m_describe;
    m.begin = m_begin;
    m.stats = m_stats;
    m.set_stats = m_set_stats;
    m.fit = m_fit;
    m.evaluate = m_evaluate;
    m.present = m_present;
    e->model = m;
    return 0;
}

int fedc_edge_run(const coord_cfg *cfg, const edge_cfg *ecfg, volatile int *stop) {
    edge *e = calloc(1, sizeof *e);
    if (!e)
        return 1;
    e->cfg = cfg;
    e->ecfg = ecfg;
    edge_link *l = &e->link;
    l->wake[0] = l->wake[1] = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    int code = 1;
    fedc_diag d;
    if (pipe(l->wake) != 0 || fcntl(l->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(l->wake[1], F_SETFL, O_NONBLOCK) != 0) {
        say(e, FEDC_LOG_ERROR, "edge: cannot make a pipe: %s", strerror(errno));
        goto out;
    }
    if (fedc_coord_new(&e->coord, cfg, &d)) {
        say(e, FEDC_LOG_ERROR, "%s", d.msg);
        code = 2;
        goto out;
    }
    fedc__coord_set_edge(e->coord, l);
    if (pthread_create(&e->coord_thread, NULL, coord_main, e) != 0) {
        say(e, FEDC_LOG_ERROR, "edge: cannot start a thread: %s", strerror(errno));
        goto out;
    }
    /* Our clients first: the schema and round 0's totals are what the edge joins upstream with. */
    int ready = 0;
    while (!ready && !atomic_load(&e->coord_done)) {
        if (*stop)
            fedc_coord_stop(e->coord);
        pthread_mutex_lock(&l->mu);
        ready = l->ready;
        pthread_mutex_unlock(&l->mu);
        if (!ready)
            nap();
    }
    code = 0;
    if (ready) {
        client_cfg cc;
        if (client_setup(e, &cc) || fedc_client_new(&e->client, &cc, &d)) {
            if (e->model.ctx && !e->client)
                say(e, FEDC_LOG_ERROR, "edge: %s", d.msg);
            code = 2;
        } else if (pthread_create(&e->client_thread, NULL, client_main, e) != 0) {
            say(e, FEDC_LOG_ERROR, "edge: cannot start a thread: %s", strerror(errno));
            code = 1;
        } else {
            int said = 0;
            while (!atomic_load(&e->client_done)) {
                if (*stop && !said) {
                    fedc_client_stop(e->client);
                    fedc_coord_stop(e->coord);
                    said = 1;
                } else if (atomic_load(&e->coord_done) && !said) {
                    /* Our federation failed: leave the upstream (it goes on without us). */
                    fedc_client_stop(e->client);
                    said = 1;
                }
                nap();
            }
            pthread_join(e->client_thread, NULL);
            code = e->client_code;
        }
        fedc_client_destroy(&e->client);
        if (e->have_enc)
            fedc_recipe_enc_release(&e->enc);
    }
    /* The upstream's run is over (or never started): ours ends with it. */
    pthread_mutex_lock(&l->mu);
    l->upstream_over = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (write(l->wake[1], "x", 1) < 0 && errno != EAGAIN)
        say(e, FEDC_LOG_WARN, "edge: cannot wake the coordinator: %s", strerror(errno));
    if (!ready && !atomic_load(&e->coord_done))
        fedc_coord_stop(e->coord);
    pthread_join(e->coord_thread, NULL);
    if (code == 0)
        code = e->coord_code;
out:
    fedc_coord_destroy(&e->coord);
    link_free(l);
    free(e);
    return code;
}
