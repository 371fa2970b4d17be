/* --metrics-listen: the coordinator's Prometheus metrics (/metrics), probes (/healthz, /readyz) and
 * live status page (/), served by core/obs's listener on a thread of libmicrohttpd's.
 *
 * The event loop never waits on a scrape: it copies what the endpoints show into a snapshot under
 * a mutex (coord_http_publish, at most every PUBLISH_S unless the phase or round moved; the round
 * ends and failures at once), and the listener's thread formats from the snapshot alone. What is
 * shown is what the round's metrics line and the log already hold: totals, the last round's
 * line, and per client only its name, liveness and whether it was selected and answered (the
 * selection hidden under client-level DP, as the metrics line hides it). */
#define _POSIX_C_SOURCE 200809L
#include "coord_int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/chart.h"
#include "fedc/clock.h"
#include "fedc/httpd.h"
#include "fedc/prom.h"

/* The snapshot is at most this old between state changes (a scrape every 15 s or a page reloaded
 * every few seconds does not need fresher liveness than that). */
#define PUBLISH_S 0.25
/* Rounds the status page charts (the most recent ones). */
#define PAGE_ROUNDS 500
/* The status page reloads itself (<meta http-equiv="refresh">), no script needed. */
#define PAGE_REFRESH_S 5

/* Round durations' bucket bounds in seconds: a round of the demo takes a fraction of a second, a
 * round of a real federation minutes, and --round-timeout defaults to 300. */
static const double DUR_BOUNDS[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
#define N_DUR ((int)(sizeof DUR_BOUNDS / sizeof DUR_BOUNDS[0]))

typedef struct obs_client {
    char name[FEDC_NAME_MAX + 1];
    unsigned char alive, gone, excluded, selected, answered;
} obs_client;

struct coord_obs {
    pthread_mutex_t mu;
    fedc_http *http;
    double last_pub; /* loop thread only */
    /* the snapshot, under mu */
    int ready, secagg, dp, rounds_planned;
    fedc_task task;
    int have_task;
    phase ph;
    uint32_t round;
    uint64_t completed, failed, retries;
    uint64_t dur[N_DUR + 1];
    double dur_sum;
    int joined, alive, selected, answered, excluded;
    uint64_t bytes_in, bytes_out;
    long refused;
    char *last_line; /* the last completed round's metrics line */
    obs_client *cl;  /* (MAX_CLIENTS) */
    int n_cl;
    fedc_round_info *rounds; /* (PAGE_ROUNDS) the latest rounds' lines, oldest first */
    int n_rounds;
};

/* The metrics line's keys the metrics repeat for the last completed round (null ones left out). */
static const struct {
    const char *key, *name, *help;
} LINE_METRICS[] = {
    {"train_loss", "fedc_coordinator_train_loss", "Weighted mean training loss of the last round"},
    {"val_loss", "fedc_coordinator_validation_loss", "Validation loss of the last round"},
    {"val_roc_auc", "fedc_coordinator_validation_roc_auc", "Validation ROC-AUC of the last round"},
    {"val_pr_auc", "fedc_coordinator_validation_pr_auc", "Validation PR-AUC of the last round"},
    {"val_precision", "fedc_coordinator_validation_precision",
     "Validation precision at --threshold of the last round"},
    {"val_recall", "fedc_coordinator_validation_recall",
     "Validation recall at --threshold of the last round"},
    {"val_accuracy", "fedc_coordinator_validation_accuracy",
     "Validation accuracy of the last round"},
    {"val_rmse", "fedc_coordinator_validation_rmse", "Validation RMSE of the last round"},
    {"val_alert_precision", "fedc_coordinator_validation_alert_precision",
     "Validation precision at the --alert-budget share of rows flagged, last round"},
    {"val_alert_recall", "fedc_coordinator_validation_alert_recall",
     "Validation recall at the --alert-budget share of rows flagged, last round"},
    {"val_rows", "fedc_coordinator_validation_rows", "Validation rows scored in the last round"},
    {"dp_epsilon", "fedc_coordinator_dp_epsilon",
     "Client-level DP: epsilon spent so far (at fedc_coordinator_dp_delta)"},
    {"dp_delta", "fedc_coordinator_dp_delta", "Client-level DP: the delta of the epsilon spent"},
};

static const char *phase_name(phase p) {
    switch (p) {
    case PH_WAIT:
        return "waiting for clients";
    case PH_STATS:
        return "round 0 (statistics)";
    case PH_FIT:
        return "training";
    case PH_EVAL:
        return "evaluating";
    case PH_DONE:
        return "done";
    }
    return "?";
}

static void write_metrics(const struct coord_obs *o, FILE *f) {
    fedc__prom_one(f, "fedc_coordinator_ready", "gauge",
                   "1 while the coordinator accepts clients and runs rounds (/readyz)", o->ready);
    fedc__prom_one(f, "fedc_coordinator_round", "gauge", "The round in progress or next", o->round);
    fedc__prom_one(f, "fedc_coordinator_rounds_planned", "gauge", "Rounds of the run (--rounds)",
                   o->rounds_planned);
    fedc__prom_one(f, "fedc_coordinator_rounds_completed_total", "counter",
                   "Rounds this process completed (model updated, metrics line written)",
                   (double)o->completed);
    fedc__prom_one(f, "fedc_coordinator_rounds_failed_total", "counter",
                   "Attempts of a round that did not complete: retried, abandoned or given up",
                   (double)o->failed);
    fedc__prom_one(f, "fedc_coordinator_round_retries_total", "counter",
                   "Rounds started again after a failed attempt", (double)o->retries);
    fedc__prom_histogram(f, "fedc_coordinator_round_duration_seconds",
                         "Wall time of each completed round, from selection to its metrics line",
                         DUR_BOUNDS, N_DUR, o->dur, o->dur_sum);
    fedc__prom_one(f, "fedc_coordinator_clients_joined", "gauge",
                   "Clients joined and not gone (said goodbye)", o->joined);
    fedc__prom_one(f, "fedc_coordinator_clients_alive", "gauge",
                   "Joined clients heard from within --heartbeat-timeout", o->alive);
    fedc__prom_one(f, "fedc_coordinator_clients_selected", "gauge",
                   "Clients selected for the round in progress or last", o->selected);
    fedc__prom_one(f, "fedc_coordinator_clients_answered", "gauge",
                   "Clients whose update is in the aggregate of the round in progress or last",
                   o->answered);
    fedc__prom_one(f, "fedc_coordinator_clients_excluded", "gauge",
                   "Members excluded for round keys that do not verify or a roster mismatch",
                   o->excluded);
    fedc__prom_one(f, "fedc_coordinator_received_bytes_total", "counter",
                   "Bytes of the messages received from clients", (double)o->bytes_in);
    fedc__prom_one(f, "fedc_coordinator_sent_bytes_total", "counter",
                   "Bytes of the messages sent to clients", (double)o->bytes_out);
    fedc__prom_one(f, "fedc_coordinator_refused_keys_total", "counter",
                   "CurveZMQ handshakes refused by the allow-list", (double)o->refused);
    if (!o->last_line)
        return;
    fedc_round_info ri;
    fedc__round_parse(o->last_line, &ri);
    fedc__prom_one(f, "fedc_coordinator_last_round", "gauge",
                   "The round the last-round metrics below are of", (double)ri.round);
    for (size_t i = 0; i < sizeof LINE_METRICS / sizeof LINE_METRICS[0]; i++) {
        double v = fedc__json_line_num(o->last_line, LINE_METRICS[i].key);
        if (!isnan(v))
            fedc__prom_one(f, LINE_METRICS[i].name, "gauge", LINE_METRICS[i].help, v);
    }
}

static void write_page(const struct coord_obs *o, FILE *f) {
    fprintf(f,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"refresh\" content=\"%d\"><title>fedc coordinator: round %u of "
            "%d</title><style>" FEDC_CHART_CSS "</style></head><body>\n<h1>fedc coordinator</h1>\n",
            PAGE_REFRESH_S, o->round, o->rounds_planned);
    fprintf(f,
            "<table id=\"summary\"><tr><td>state</td><td id=\"phase\">%s</td></tr>\n"
            "<tr><td>round</td><td id=\"round\">%u of %d</td></tr>\n"
            "<tr><td>rounds completed / failed attempts</td><td>%llu / %llu</td></tr>\n"
            "<tr><td>clients joined / alive</td><td>%d / %d</td></tr>\n"
            "<tr><td>selected / answered (this or last round)</td><td>%d / %d</td></tr>\n"
            "<tr><td>excluded</td><td>%d</td></tr>\n"
            "<tr><td>secure aggregation</td><td>%s</td></tr>\n",
            phase_name(o->ph), o->round, o->rounds_planned, (unsigned long long)o->completed,
            (unsigned long long)o->failed, o->joined, o->alive, o->selected, o->answered,
            o->excluded, o->secagg ? "on" : "off");
    if (o->dp && o->last_line) {
        double eps = fedc__json_line_num(o->last_line, "dp_epsilon");
        double delta = fedc__json_line_num(o->last_line, "dp_delta");
        fprintf(f, "<tr><td>client-level DP spent</td><td>epsilon %.4g at delta %g</td></tr>\n",
                eps, delta);
    }
    fprintf(f, "</table>\n<h2>Clients</h2>\n");
    if (o->dp)
        fprintf(f, "<p>Under client-level DP who was selected stays secret: only liveness is "
                   "shown.</p>\n");
    fprintf(f, "<table id=\"clients\"><tr><th>client</th><th>state</th>%s</tr>\n",
            o->dp ? "" : "<th>selected</th><th>answered</th>");
    for (int i = 0; i < o->n_cl; i++) {
        const obs_client *c = &o->cl[i];
        const char *state = c->gone       ? "left"
                            : c->excluded ? "excluded"
                            : c->alive    ? "alive"
                                          : "silent";
        fprintf(f, "<tr class=\"client\"><td>");
        fedc__html_esc(f, c->name);
        fprintf(f, "</td><td class=\"%s\">%s</td>", c->alive ? "on" : "off", state);
        if (!o->dp)
            fprintf(f, "<td>%s</td><td>%s</td>", c->selected ? "yes" : "",
                    c->answered ? "yes" : "");
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n");
    /* The report's charts (core/obs chart.c), over the rounds' metrics lines. */
    if (o->have_task && o->task == FEDC_TASK_BINARY) {
        fprintf(f, "<h2>Validation ROC-AUC per round</h2>\n");
        fedc__chart_rounds(f, "roc-auc-rounds", FEDC_RM_ROC_AUC, o->rounds, o->n_rounds);
        fprintf(f, "<h2>Validation PR-AUC per round</h2>\n");
        fedc__chart_rounds(f, "pr-auc-rounds", FEDC_RM_PR_AUC, o->rounds, o->n_rounds);
    } else if (o->have_task && o->task == FEDC_TASK_MULTICLASS) {
        fprintf(f, "<h2>Validation accuracy per round</h2>\n");
        fedc__chart_rounds(f, "accuracy-rounds", FEDC_RM_ACCURACY, o->rounds, o->n_rounds);
    }
    fedc__chart_participation(f, o->rounds, o->n_rounds);
    fprintf(f,
            "<p>Served by fedc-coordinator; reloads every %d s and loads nothing from the "
            "network. Metrics for Prometheus: <a href=\"/metrics\">/metrics</a>.</p>\n"
            "</body></html>\n",
            PAGE_REFRESH_S);
}

/* The listener's thread. */
static void serve(void *ctx, const char *path, fedc_http_reply *r) {
    struct coord_obs *o = ctx;
    if (strcmp(path, "/healthz") == 0) {
        fedc__http_text(r, 200, "ok\n"); /* the process and its listener run */
        return;
    }
    if (strcmp(path, "/readyz") == 0) {
        pthread_mutex_lock(&o->mu);
        int ready = o->ready;
        pthread_mutex_unlock(&o->mu);
        fedc__http_text(r, ready ? 200 : 503, ready ? "ready: accepting clients\n" : "not ready\n");
        return;
    }
    int metrics = strcmp(path, "/metrics") == 0;
    if (!metrics && strcmp(path, "/") != 0) {
        fedc__http_text(r, 404, "not found: /, /metrics, /healthz and /readyz are served here\n");
        return;
    }
    fedc_http_body b;
    FILE *f = fedc__http_body_open(&b);
    if (f) {
        pthread_mutex_lock(&o->mu);
        if (metrics)
            write_metrics(o, f);
        else
            write_page(o, f);
        pthread_mutex_unlock(&o->mu);
    }
    fedc__http_body_take(r, &b, 200, metrics ? FEDC_PROM_CONTENT_TYPE : "text/html; charset=utf-8");
}

/* Adds a metrics line to the page's rounds, dropping the oldest beyond PAGE_ROUNDS (under mu). */
static void add_round(struct coord_obs *o, const char *line) {
    if (o->n_rounds == PAGE_ROUNDS) {
        memmove(o->rounds, o->rounds + 1, sizeof *o->rounds * (PAGE_ROUNDS - 1));
        o->n_rounds--;
    }
    if (fedc__round_parse(line, &o->rounds[o->n_rounds]) == 0)
        o->n_rounds++;
}

int coord_http_start(coord *co) {
    const coord_cfg *cfg = co->cfg;
    if (!cfg->metrics_listen)
        return 0;
    struct coord_obs *o = calloc(1, sizeof *o);
    if (o) {
        o->cl = calloc(MAX_CLIENTS, sizeof *o->cl);
        o->rounds = calloc(PAGE_ROUNDS, sizeof *o->rounds);
    }
    if (!o || !o->cl || !o->rounds || pthread_mutex_init(&o->mu, NULL) != 0) {
        logm("--metrics-listen: out of memory");
        if (o) {
            free(o->cl);
            free(o->rounds);
        }
        free(o);
        return 1;
    }
    co->obs = o;
    o->secagg = cfg->secagg;
    o->dp = agg_dp_on(co);
    o->rounds_planned = cfg->rounds;
    o->round = co->round;
    o->ph = co->ph;
    /* A resumed run's page starts with the rounds already in the metrics file. */
    if (cfg->metrics_json) {
        FILE *f = fopen(cfg->metrics_json, "r");
        fedc_round_info *seen = NULL;
        int n = fedc__rounds_read(f, &seen, 1 << 20);
        int from = n > PAGE_ROUNDS ? n - PAGE_ROUNDS : 0;
        for (int i = from; i < n; i++)
            o->rounds[o->n_rounds++] = seen[i];
        free(seen);
        if (f)
            fclose(f);
    }
    fedc_diag d;
    if (fedc__http_start(&o->http, cfg->metrics_listen, serve, o, &d)) {
        logm("--metrics-listen: %s", d.msg);
        coord_http_stop(co);
        return 2;
    }
    logm("metrics on %s/metrics, status page on %s/", fedc__http_url(o->http),
         fedc__http_url(o->http));
    return 0;
}

void coord_http_publish(coord *co, int now) {
    struct coord_obs *o = co->obs;
    if (!o)
        return;
    double t = fedc_clock_s();
    if (!now && t - o->last_pub < PUBLISH_S && o->ph == co->ph && o->round == co->round)
        return; /* o->ph and o->round are written by this thread only: read without the lock */
    o->last_pub = t;
    int joined = 0, alive = 0;
    long refused = co->ep ? fedc_net_refused(co->ep) : 0;
    pthread_mutex_lock(&o->mu);
    o->ready = co->ep && co->ph != PH_DONE && !coord_stopping(co);
    o->ph = co->ph;
    o->round = co->round;
    o->have_task = co->have_schema;
    o->task = co->task;
    o->selected = co->selected;
    o->answered = co->answered;
    o->excluded = co->excluded_total;
    o->bytes_in = co->bytes_in_done + co->bytes_in;
    o->bytes_out = co->bytes_out_done + co->bytes_out;
    o->refused = refused;
    int n = 0;
    for (int i = 0; i < co->n_cl; i++) {
        const client *c = &co->cl[i];
        if (!c->name[0])
            continue; /* a slot given back */
        obs_client *s = &o->cl[n++];
        memcpy(s->name, c->name, sizeof s->name);
        s->alive = c->alive && !c->gone;
        s->gone = (unsigned char)c->gone;
        s->excluded = (unsigned char)c->excluded;
        s->selected = (unsigned char)c->fit_sel;
        s->answered = (unsigned char)c->fit_counted;
        joined += !c->gone;
        alive += s->alive;
    }
    o->n_cl = n;
    o->joined = joined;
    o->alive = alive;
    pthread_mutex_unlock(&o->mu);
}

void coord_http_round(coord *co, const char *line, double secs, int completed) {
    struct coord_obs *o = co->obs;
    if (!o)
        return;
    char *copy = completed && line ? strdup(line) : NULL;
    pthread_mutex_lock(&o->mu);
    if (completed) {
        o->completed++;
        o->dur[fedc__prom_bucket(DUR_BOUNDS, N_DUR, secs)]++;
        o->dur_sum += secs;
        if (copy) {
            free(o->last_line);
            o->last_line = copy;
        }
    } else {
        o->failed++;
    }
    if (line)
        add_round(o, line);
    pthread_mutex_unlock(&o->mu);
    coord_http_publish(co, 1);
}

void coord_http_failed(coord *co, int retried) {
    struct coord_obs *o = co->obs;
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->failed++;
    o->retries += retried != 0;
    pthread_mutex_unlock(&o->mu);
    coord_http_publish(co, 1);
}

void coord_http_closing(coord *co) {
    struct coord_obs *o = co->obs;
    if (!o)
        return;
    coord_http_publish(co, 1);
    pthread_mutex_lock(&o->mu);
    o->ready = 0;
    pthread_mutex_unlock(&o->mu);
}

void coord_http_stop(coord *co) {
    struct coord_obs *o = co->obs;
    if (!o)
        return;
    fedc__http_stop(&o->http); /* the listener's thread is gone: nothing reads o any more */
    pthread_mutex_destroy(&o->mu);
    free(o->last_line);
    free(o->cl);
    free(o->rounds);
    free(o);
    co->obs = NULL;
}
