/* The participant's loop: one I/O thread (join, heartbeats, messages) and one training thread
 * (core/nn with OpenMP inside), so that heartbeats keep flowing while a round trains.
 *
 * The client reads and checks its CSV before it connects, joins (its schema travels with the
 * join and the coordinator refuses a mismatch, naming it), sends round-0 sums of its training
 * rows, then trains when asked and scores the global model on its validation part when asked.
 * When the coordinator restarts it answers our heartbeat with "not joined" and we join again,
 * carrying the run id, so a resumed run continues with the same participants.
 *
 * With secure aggregation (the default, and the only mode this client accepts unless started
 * with --secagg off) statistics, updates and evaluation counts leave only inside a masked vector
 * (core/fl/sa_proto.h): keys go out at once, shares when the neighbours are known, the masked
 * input when the work is done and the neighbours' shares arrived, the unmask answer last. */
#ifndef FEDC_CLIENT_H
#define FEDC_CLIENT_H

#include <stddef.h>

#include "fedc/augment.h"
#include "fedc/client_model.h"
#include "fedc/err.h"
#include "fedc/keys.h"
#include "fedc/log.h"

typedef struct client_cfg {
    const char *connect;
    const char *name;
    /* The model trained (fedc/client_model.h), borrowed; NULL: fedc's MLP on data and label
     * (with drop, force_regression and augment below). */
    const fedc_client_model *model;
    const char *data;
    const char *label;
    char **drop; /* NULL-terminated or NULL */
    int n_drop;
    int force_regression;
    int threads;                  /* OpenMP threads for training; 0 = OMP_NUM_THREADS or cores */
    int heartbeat_ms;             /* interval of heartbeats (0: as the coordinator asks) */
    double coordinator_timeout_s; /* silence from the coordinator after which we give up */
    size_t max_msg;
    int quiet;
    fedc_log_cfg log; /* --log-level, --log-format (fedc/log.h) */
    /* CurveZMQ; all NULL with --insecure */
    const fedc_identity *self;        /* our identity with its secret key */
    const fedc_identity *coordinator; /* the coordinator's public key (pinned) */
    const fedc_identity *peers;       /* the roster (secure aggregation verifies round keys) */
    int n_peers;
    const char *peers_dir; /* where peers came from, read again by fedc_client_reload; or NULL */
    int allow_plain;       /* --secagg off: answer plain requests too (default: refuse them) */
    int sa_min_nbrs;       /* our secure-aggregation floor (0: FEDC_SA_MIN_NBRS_DEFAULT) */
    fedc_aug_cfg augment;  /* rare-class augmentation of the local training rows */
    /* record-level DP-SGD on our rows (off when dp_clip == 0): per-example clip, noise of
     * multiplier dp_noise (< 0: the smallest that keeps the planned rounds within
     * target_epsilon), accounted at dp_delta; no training beyond target_epsilon (0 = none) */
    float dp_clip;
    float dp_noise;
    double dp_delta;
    double target_epsilon;
    int dp_poisson;
    const char *dp_state;     /* file keeping the privacy spent across restarts, or NULL */
    const char *metrics_json; /* one line per local training (epsilon under DP), or NULL */
    /* "ADDR:PORT" of the HTTP listener (Prometheus metrics, /healthz, /readyz), or NULL for
     * none; started by fedc_client_run, which fails (2) when it cannot bind */
    const char *metrics_listen;
    /* How the data's cells became numbers (fedc/encode.h; NULL: the defaults) and the fedc
     * features spec it was made with (JSON text, or NULL): both sent at join, where a client
     * whose encoding or spec differs from the federation's is refused; the MLP loads with it. */
    const fedc_encoding *encoding;
    const char *features;
} client_cfg;

/* The defaults of fedc-client's flags: heartbeats every second, give up after 600 s of silence,
 * messages up to 256 MiB, secure aggregation required, no DP; connect, name and the model (or
 * data and label) are the caller's to set. No CurveZMQ while self is NULL (testing only). */
void fedc_client_defaults(client_cfg *c);

/* A participant as an object: several may live in one process (each on its own thread), with no
 * process globals besides the fault-injection rules of test builds. */
typedef struct fedc_client fedc_client;

/* Creates a client for cfg (borrowed until fedc_client_destroy). FEDC_EINVAL when a required
 * field (name, connect, data, label) is missing. */
FEDC_MUST_CHECK fedc_err fedc_client_new(fedc_client **out, const client_cfg *cfg, fedc_diag *d);

/* Runs until the run ends; returns the process exit code: 0 when the coordinator says the run is
 * complete or when asked to stop (fedc_client_stop), 1 on a runtime failure (coordinator silent
 * too long, the run failed), 2 on bad data, a refused schema, key or name. A coordinator that
 * says it is stopping (FEDC_BYE_LEAVING) is waited for, up to coordinator_timeout_s, and the run
 * rejoined when it comes back (--resume). */
int fedc_client_run(fedc_client *c);

/* Asks a running client to stop at its next loop turn, saying goodbye (async-signal-safe and
 * thread-safe). */
void fedc_client_stop(fedc_client *c);

/* Asks a running client to read its roster (peers_dir) again at its next loop turn
 * (async-signal-safe and thread-safe; fedc-client calls it on SIGHUP). The new roster checks the
 * round keys of the next secure session (one under way keeps the roster it started with); a
 * roster that cannot be read changes nothing, and the reason is logged. */
void fedc_client_reload(fedc_client *c);

/* Frees the client (NULL allowed); *c becomes NULL. */
void fedc_client_destroy(fedc_client **c);

#endif
