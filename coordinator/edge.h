/* A tree of coordinators (fedc-coordinator --upstream): the edge aggregator. Internal, not an
 * interface.
 *
 * An edge is two library objects in one process: a fedc_coord for its own clients (its event loop
 * on a thread of its own) and a fedc_client connected upstream whose fedc_client_model is the edge
 * itself (edge.c). They meet in an edge_link: the client's callbacks post a request (train one
 * round from these weights, or score these weights) and wait; the coordinator's loop, woken
 * through a pipe, runs that round among its clients (secure sum and all) and answers. So the edge
 * runs no schedule of its own: after its round 0 (the statistics of its clients, summed as any
 * coordinator sums them) it only runs what the upstream asks for, with the upstream's round
 * number, hyperparameters, standardisation and class weight, so that its clients train exactly as
 * they would in a flat federation under the root.
 *
 *   edge_coord.c  the coordinator's side (hooks called from coord.c, round0.c, rounds.c)
 *   edge.c        the upstream client's side (the model callbacks) and fedc_edge_run
 *   edge_args.c   the edge's flags, checked against the coordinator's */
#ifndef FEDC_EDGE_H
#define FEDC_EDGE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "fedc/client_model.h"
#include "fedc/coord.h"
#include "fedc/keys.h"

/* What the edge needs besides its coordinator's configuration: the upstream and how to reach it
 * (the edge's identity upstream is its own --key; its name is the key's). */
typedef struct edge_cfg {
    const char *upstream; /* NULL: not an edge */
    const char *name;     /* our name upstream */
    fedc_identity self;   /* --key, loaded (secure mode) */
    fedc_identity up;     /* --coordinator-key: the upstream's public key */
    fedc_identity *peers; /* --peers: the upstream roster, owned */
    int n_peers;
    const char *peers_dir;
    int heartbeat_ms;
    double upstream_timeout_s;
} edge_cfg;

void edge_cfg_release(edge_cfg *e);

/* What the upstream asks of the edge. */
enum { EDGE_REQ_NONE, EDGE_REQ_FIT, EDGE_REQ_EVAL };

/* The meeting point of the two threads; every field below the mutex is guarded by it. */
typedef struct edge_link {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wake[2]; /* pipe: the client's side writes a byte when it posts a request or ends */
    /* published by the coordinator once its round 0 is done (ready = 1) */
    int ready;
    int coord_over; /* the coordinator's loop ended: no request will be answered */
    char **names;   /* the schema: n_features names, the label, the task */
    int n_features;
    char *label;
    int task, n_classes;
    size_t n_params; /* of the edge federation's model */
    char kind[65];   /* the clients' own model's name ("" for fedc's MLP) */
    char *encoding;  /* the federation's encoding (recipe JSON), or NULL */
    char *features;  /* its features spec (JSON), or NULL */
    uint64_t seed;   /* the edge's --seed (its clients' seeds come from it) */
    int rounds;      /* the edge's --rounds: what its clients were told to plan for */
    float val_fraction;
    /* round 0's totals over the edge's clients */
    double rows;
    double *sum, *sq, *present; /* (n_features); present NULL unless --missing mean */
    uint64_t cc[2];             /* binary class counts (others: none) */
    /* the upstream's standardisation (set_stats), or NULL before it came */
    float *mean, *std;
    /* the request in progress */
    int req;     /* EDGE_REQ_* */
    int started; /* taken by the coordinator */
    int answered;
    const float *w;     /* the weights to train from or to score (n_params), the caller's */
    fedc_model_fit hp;  /* fit: the upstream's settings for this round */
    float threshold;    /* eval: the decision threshold */
    float *local;       /* fit: where the trained weights go (n_params), the caller's */
    double loss;        /* fit: the edge's weighted mean training loss */
    fedc_eval_acc *acc; /* eval: the caller's accumulator our clients' sum is merged into */
    int ok;             /* the answer: 1 done, 0 failed (why) */
    char why[256];
    int upstream_over; /* the upstream client ended: the coordinator finishes its run */
} edge_link;

/* edge_coord.c: the coordinator's side. All are called on the coordinator's thread, and do
 * nothing (or return 0) without an edge. */
struct coord;
/* Attaches the link to a coordinator before fedc_coord_run (coord.c keeps the pointer; internal:
 * fedc__ names stay out of libfedc's exports). */
void fedc__coord_set_edge(fedc_coord *c, edge_link *link);
/* The pipe's read end to wait on beside the socket, or -1 without an edge. */
int edge_wake_fd(const struct coord *co);
/* Round 0 is done: publishes the schema and the totals (rows, sums, squares, class counts,
 * present cells) to the upstream side. */
void edge_round0_done(struct coord *co, double rows, const double *sum, const double *sq,
                      const uint64_t *cc, const double *present);
/* Empties the wake-up pipe (the loop found it readable). */
void edge_drain(struct coord *co);
/* The PH_WAIT step once round 0 is done: starts the request waiting, if any (enough: whether
 * enough clients are live to run it, else it is answered as failed at once). Returns 1 when the
 * run is over (the upstream ended). */
int edge_wait_step(struct coord *co, int enough, int alive, int need);
/* 1 when the run ended because the upstream's did (a complete run, not a failure). */
int edge_finished(const struct coord *co);
/* The instruction being encoded for our clients takes the upstream's settings (FitIns: the
 * hyperparameters and class weight; EvaluateIns: the threshold). */
struct fedc_msg;
void edge_fill_ins(struct coord *co, struct fedc_msg *e);
/* After a training round's aggregate is in co->upd (the mean update over the survivors): answers
 * the upstream with global + mean update and returns to PH_WAIT. Returns 1 when it took over
 * (edge mode), else 0 for the usual server step. */
int edge_fit_done(struct coord *co);
/* A training round without a usable aggregate: answered as failed, PH_WAIT (1), or 0 when not an
 * edge. */
int edge_fit_failed(struct coord *co, const char *why);
/* After the evaluation's metrics line: our clients' sum goes to the upstream's accumulator. */
void edge_eval_done(struct coord *co);

/* edge.c: runs the edge: the coordinator for cfg on a thread, and once its round 0 is done the
 * upstream client on this one; returns the exit code (coord.h's and client.h's meanings). stop
 * is polled: set it (a signal) to stop both. */
int fedc_edge_run(const coord_cfg *cfg, const edge_cfg *ecfg, volatile int *stop);

#endif
