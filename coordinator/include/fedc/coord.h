/* The coordinator: owns the global model and the rounds (docs/architecture.md, "Data flow of one
 * round").
 *
 * One event loop (zmq_poll with timers) drives a small state machine:
 *   WAIT   until enough live clients have joined (--min-clients to start, --min-fit-clients later)
 *   STATS  round 0: clients send sums, sums of squares and class counts; the coordinator derives
 *          the standardisation and the positive-class weight every client uses
 *   FIT    the selected clients train; updates are summed in 64-bit fixed point as they arrive
 *   EVAL   every live client scores the new global model on its validation part; counts and
 *          histograms are summed into global metrics
 * then a checkpoint (atomic), the round's metrics line, and the next round. A round closes when
 * every selected client answered or died, or at the deadline; with fewer than --min-fit-clients
 * results it is retried (under client-level DP released as noise instead: aggregate.c). With secure
 * aggregation (the default) STATS, FIT and EVAL each collect a secure sum instead of per-client
 * answers (secure.c; core/fl/sa_proto.h): the coordinator learns the totals only, and a round whose
 * sum cannot be unmasked or looks implausible is retried. */
#ifndef FEDC_COORD_H
#define FEDC_COORD_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/fl.h"
#include "fedc/keys.h"
#include "fedc/log.h"
#include "fedc/model.h"
#include "fedc/optim.h"
#include "fedc/robust.h"
#include "fedc/strategy.h"

typedef struct coord_cfg {
    const char *bind;
    int rounds;
    int min_clients;     /* joined clients needed to start */
    int min_fit_clients; /* results needed for a round to count */
    double fraction_fit; /* share of live clients selected per round */
    /* 1: the clients bring a model of their own (fedc/client_model.h): the coordinator averages
     * a flat vector whose length and initial values come from init_weights (raw little-endian
     * float32) or else from the first client's offer, and refuses a client whose model (kind,
     * parameter count) differs; hidden and act are unused. 0: fedc's MLP, built from hidden. */
    int model_external;
    const char *init_weights;
    int hidden[FEDC_MAX_LAYERS];
    int n_hidden;
    fedc_act act;
    /* dictated to the clients */
    int local_epochs;
    int batch;
    float lr;
    fedc_opt_kind optimizer;
    int keep_opt_state; /* clients keep their optimiser's moments across rounds */
    float prox_mu;
    float l2;
    float dropout;
    float val_fraction;
    int pos_weight_auto; /* derive negatives/positives from the summed class counts */
    float pos_weight;
    float threshold;     /* decision threshold for precision and recall */
    double alert_budget; /* share of rows a fraud team reviews: the metrics' operating point */
    fedc_server_cfg server;
    double round_timeout_s;
    double heartbeat_timeout_s;
    double wait_timeout_s; /* give up waiting for clients after this long (0 = never) */
    int max_retries;       /* consecutive failed attempts of one round before giving up */
    /* buffered asynchronous aggregation (FedBuff, coordinator/async.c): 0 = synchronous rounds;
     * 1 = a server step whenever `buffer` updates are in, each weighted by 1/sqrt(1 + staleness),
     * an update trained on a model more than max_staleness steps old refused; "round" then
     * counts server steps (metrics, checkpoints, --rounds) */
    int async_mode;
    int buffer;
    int max_staleness;
    const char *model_out;
    /* the model of the best round so far by select_metric (the federated validation metric),
     * rewritten whenever a round beats it, or NULL for none */
    const char *best_model_out;
    /* the validation metric that picks the best round: "pr_auc", "roc_auc", "loss",
     * "accuracy", "macro_f1", "rmse", "r2", or NULL/"auto" = pr_auc for binary, accuracy for
     * multiclass, rmse for regression */
    const char *select_metric;
    /* early stopping: stop after this many rounds without a better select_metric and keep the
     * best round's model (0: run all the rounds) */
    int patience;
    const char *metrics_json;
    /* "ADDR:PORT" of the HTTP listener (Prometheus metrics, /healthz, /readyz, the status page at
     * /), or NULL for none; started by fedc_coord_run, which fails (2) when it cannot bind */
    const char *metrics_listen;
    const char *checkpoint_dir;
    const char *key_path;  /* our NAME.key_secret (CurveZMQ server key) */
    const char *allow_dir; /* directory of the clients' NAME.key files */
    int insecure;          /* no CurveZMQ, no allow-list */
    /* secure aggregation (SecAgg+); off: plain updates over the (CurveZMQ) transport */
    int secagg;
    int sa_neighbours;  /* h: neighbourhoods of 2h + 1; 0 = about log2 n */
    int sa_min_nbrs;    /* the floor: no session with neighbourhoods below it */
    int sa_threshold;   /* Shamir t; 0 = floor(size / 2) + 1 */
    float sa_clip;      /* per-coordinate clip of updates */
    int sa_max_clients; /* headroom of the fixed point */
    /* how updates are combined (aggregate.c): mean = weighted FedAvg; the robust rules that need
     * each update (median, trimmed mean, Krum, Multi-Krum) only with secure aggregation off */
    fedc_robust_cfg agg;
    /* selection, aggregation and the server step (fedc/strategy.h), borrowed: NULL = fedc's own,
     * built from agg and server above */
    const fedc_strategy *strategy;
    /* the L2 bound every client clips its update to, checked on every round's aggregate (the DP
     * clip norm or norm-bound's C take its place when set) */
    float update_norm_bound;
    /* client-level DP-FedAvg: clients clip to dp_clip (0 = off), the coordinator adds noise of
     * multiplier dp_noise to the sum; accounting at dp_delta; stop before target_epsilon */
    float dp_clip;
    double dp_noise;
    double dp_delta;
    double target_epsilon; /* 0 = no budget */
    int dp_adaptive;       /* adaptive clipping (Andrew et al. 2021) */
    double dp_quantile;    /* gamma: share of updates meant to be within the clip norm */
    double dp_clip_lr;     /* eta */
    double dp_count_noise; /* sigma_b: noise on the count of unclipped updates */
    int resume;
    uint64_t seed;
    size_t max_msg; /* bytes */
    int quiet;
    fedc_log_cfg log; /* --log-level, --log-format (fedc/log.h) */
} coord_cfg;

/* Fills *cfg with fedc-coordinator's defaults (its --help): 20 rounds, secure aggregation on with
 * --min-clients 3, FedAvg with the mean, no strategy of the embedder's, no endpoint; the embedder
 * sets bind and whatever else it needs, then calls fedc_coord_new. */
void fedc_coord_defaults(coord_cfg *cfg);

/* A coordinator as an object: several may live in one process (each on its own thread), with no
 * process globals besides the fault-injection rules of test builds. */
typedef struct fedc_coord fedc_coord;

/* Creates a coordinator for cfg (borrowed until fedc_coord_destroy). FEDC_EINVAL without an
 * endpoint to bind. */
FEDC_MUST_CHECK fedc_err fedc_coord_new(fedc_coord **out, const coord_cfg *cfg, fedc_diag *d);

/* Runs the whole federation; returns the process exit code (0 done, or stopped on request;
 * 1 failure, 2 bad input such as an unusable checkpoint). Prints one line per round on stdout,
 * problems on stderr. */
int fedc_coord_run(fedc_coord *c);

/* Asks a running coordinator to stop at its next loop turn (async-signal-safe and thread-safe).
 * The round in progress is dropped: the checkpoint (--checkpoint-dir) holds every round finished
 * before it, written when each finished, so --resume with the same flags runs it again. The
 * connected clients are told FEDC_BYE_LEAVING ("stopping; come back"): they keep waiting and
 * rejoin the resumed run. fedc_coord_run then returns 0: a requested stop is not a failure. */
void fedc_coord_stop(fedc_coord *c);

/* Asks a running coordinator to read its --allow directory again at its next loop turn
 * (async-signal-safe and thread-safe; fedc-coordinator calls it on SIGHUP). A list that cannot be
 * read (a missing directory, a bad key file, no key at all) changes nothing and the reason is
 * logged. A read list admits new connections at once (a new key can join now); the clients whose
 * key left the list (or changed) finish the round or round-0 step in progress, their answers
 * counting, and at the end of it are sent FEDC_BYE_REFUSED and forgotten; any message from their
 * old connections is refused after that. No effect with --insecure (logged). */
void fedc_coord_reload(fedc_coord *c);

/* Frees the coordinator (NULL allowed); *c becomes NULL. */
void fedc_coord_destroy(fedc_coord **c);

#endif
