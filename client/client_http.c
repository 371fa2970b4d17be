/* --metrics-listen: the client's Prometheus metrics (/metrics) and probes (/healthz; /readyz: 200
 * once joined to a run), served by core/obs's listener on a thread of libmicrohttpd's. The I/O
 * loop copies a few numbers into a snapshot under a mutex every turn and after each local
 * training; the listener's thread formats from the snapshot alone. Everything shown is this
 * client's own (its rows, its training time, its DP-SGD epsilon): the endpoint is for its
 * operator, bound to 127.0.0.1 unless told otherwise. */
#define _POSIX_C_SOURCE 200809L
#include "client_int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/httpd.h"
#include "fedc/prom.h"

struct cl_obs {
    pthread_mutex_t mu;
    fedc_http *http;
    /* the snapshot, under mu */
    int joined, dp;
    uint64_t rounds, rows;
    uint32_t last_round;
    double seconds, epsilon;
};

/* The listener's thread. */
static void serve(void *ctx, const char *path, fedc_http_reply *r) {
    struct cl_obs *o = ctx;
    if (strcmp(path, "/healthz") == 0) {
        fedc__http_text(r, 200, "ok\n");
        return;
    }
    if (strcmp(path, "/readyz") == 0) {
        pthread_mutex_lock(&o->mu);
        int joined = o->joined;
        pthread_mutex_unlock(&o->mu);
        fedc__http_text(r, joined ? 200 : 503,
                        joined ? "ready: joined\n" : "not ready: not joined\n");
        return;
    }
    if (strcmp(path, "/metrics") != 0) {
        fedc__http_text(r, 404, "not found: /metrics, /healthz and /readyz are served here\n");
        return;
    }
    fedc_http_body b;
    FILE *f = fedc__http_body_open(&b);
    if (f) {
        pthread_mutex_lock(&o->mu);
        fedc__prom_one(f, "fedc_client_joined", "gauge",
                       "1 while joined to the coordinator's run (/readyz)", o->joined);
        fedc__prom_one(f, "fedc_client_rounds_trained_total", "counter",
                       "Local trainings finished and their result sent", (double)o->rounds);
        fedc__prom_one(f, "fedc_client_training_seconds_total", "counter",
                       "Seconds spent in local training", o->seconds);
        fedc__prom_one(f, "fedc_client_training_rows", "gauge",
                       "Local training rows (augmented ones not counted)", (double)o->rows);
        fedc__prom_one(f, "fedc_client_last_round", "gauge", "The round last trained",
                       o->last_round);
        if (o->dp && !isnan(o->epsilon))
            fedc__prom_one(f, "fedc_client_dp_epsilon", "gauge",
                           "Record-level DP-SGD: epsilon spent so far (at --dp-delta)", o->epsilon);
        pthread_mutex_unlock(&o->mu);
    }
    fedc__http_body_take(r, &b, 200, FEDC_PROM_CONTENT_TYPE);
}

int cl_http_start(cl *c) {
    if (!c->cfg->metrics_listen)
        return 0;
    struct cl_obs *o = calloc(1, sizeof *o);
    if (!o || pthread_mutex_init(&o->mu, NULL) != 0) {
        free(o);
        cl_logm(c, "--metrics-listen: out of memory");
        return -1;
    }
    o->dp = c->cfg->dp_clip > 0;
    o->epsilon = NAN;
    c->obs = o;
    fedc_diag d;
    if (fedc__http_start(&o->http, c->cfg->metrics_listen, serve, o, &d)) {
        cl_logm(c, "--metrics-listen: %s", d.msg);
        cl_http_stop(c);
        return -1;
    }
    cl_logm(c, "metrics on %s/metrics", fedc__http_url(o->http));
    return 0;
}

void cl_http_publish(cl *c) {
    struct cl_obs *o = c->obs;
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->joined = c->joined;
    o->rows = c->have_run ? c->rows.train_rows : 0;
    pthread_mutex_unlock(&o->mu);
}

void cl_http_trained(cl *c, uint32_t round, double seconds, double epsilon) {
    struct cl_obs *o = c->obs;
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->rounds++;
    o->seconds += seconds;
    o->last_round = round;
    if (!isnan(epsilon))
        o->epsilon = epsilon;
    pthread_mutex_unlock(&o->mu);
}

void cl_http_stop(cl *c) {
    struct cl_obs *o = c->obs;
    if (!o)
        return;
    fedc__http_stop(&o->http);
    pthread_mutex_destroy(&o->mu);
    free(o);
    c->obs = NULL;
}
