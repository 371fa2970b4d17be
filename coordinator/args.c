/* fedc-coordinator's options: read through the option table (core/prog options.h: flags,
 * environment, --config file, defaults) and checked against each other into a coord_cfg
 * (fedc_coord_args), so that the program and an embedding (tests, a thread) configure a
 * coordinator the same way. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "coord_args.h"
#include "edge.h"
#include "fedc/dp.h"
#include "fedc/httpd.h"
#include "fedc/sa_proto.h"

#define CMD "fedc-coordinator"

/* Options given (not left at their defaults), for the ones that only apply with others. */
#define SEEN_TRIM 1u
#define SEEN_KRUM_F 2u
#define SEEN_MULTI_M 4u
#define SEEN_DP_DELTA 8u
#define SEEN_DP_ADAPTIVE 16u
#define SEEN_UPDATE_BOUND 32u

static int agg_individual(fedc_robust_kind k) {
    return k != FEDC_AGG_MEAN && k != FEDC_AGG_NORM_BOUND;
}

static const fedc_prog_help g_help = {
    "usage: fedc-coordinator --bind ENDPOINT [options]",
    "Owns the global model and runs the federated rounds: waits for --min-clients clients,\n"
    "agrees on the data (schema, standardisation), then for each round sends the model to\n"
    "the selected clients, averages their updates (FedAvg weighted by example count; with\n"
    "secure aggregation as a masked sum it can only unmask in total), applies the server\n"
    "optimiser, evaluates the new model on the clients' validation data, checkpoints, and\n"
    "prints one line. Security (docs/security.md): CurveZMQ with --key and --allow, and\n"
    "secure aggregation, both on by default.",
    "Signals: SIGTERM or SIGINT stops (the clients are told to wait; --resume continues),\n"
    "SIGHUP reads --allow again (removed keys are refused from the next round).\n"
    "Exit status: 0 when all rounds ran or when stopped by a signal, 1 on a runtime failure\n"
    "(gave up waiting, I/O), 2 on bad options or an unusable checkpoint."};

/* --aggregator and its parameters against each other and secure aggregation. */
static int check_aggregation(coord_cfg *c, const char *name, float beta, int f, int m, float bound,
                             const unsigned seen) {
    fedc_robust_cfg *a = &c->agg;
    memset(a, 0, sizeof *a);
    if (strcmp(name, "mean") == 0)
        a->kind = FEDC_AGG_MEAN;
    else if (strcmp(name, "median") == 0)
        a->kind = FEDC_AGG_MEDIAN;
    else if (strcmp(name, "trimmed-mean") == 0)
        a->kind = FEDC_AGG_TRIMMED_MEAN;
    else if (strcmp(name, "krum") == 0)
        a->kind = FEDC_AGG_KRUM;
    else if (strcmp(name, "multi-krum") == 0)
        a->kind = FEDC_AGG_MULTI_KRUM;
    else if (strcmp(name, "norm-bound") == 0)
        a->kind = FEDC_AGG_NORM_BOUND;
    else {
        cli_error(CMD,
                  "--aggregator: expected mean, median, trimmed-mean, krum, multi-krum or "
                  "norm-bound, got '%s'",
                  name);
        return 1;
    }
    a->beta = beta;
    a->f = f;
    a->m = m;
    a->clip = bound;
    int individual = a->kind != FEDC_AGG_MEAN && a->kind != FEDC_AGG_NORM_BOUND;
    if (individual && c->secagg) {
        cli_error(CMD,
                  "--aggregator %s needs every client's update on its own, which secure "
                  "aggregation hides from the coordinator (it learns only the sum). Use "
                  "--secagg off (updates still travel encrypted by CurveZMQ, but the coordinator "
                  "sees each one), or keep secure aggregation with --aggregator norm-bound "
                  "--norm-bound C: clients clip to C and the coordinator checks the aggregate's "
                  "norm",
                  name);
        return 1;
    }
    if (a->kind == FEDC_AGG_NORM_BOUND && !(bound > 0)) {
        cli_error(CMD, "--aggregator norm-bound needs --norm-bound C > 0");
        return 1;
    }
    if (a->kind != FEDC_AGG_NORM_BOUND && bound > 0) {
        cli_error(CMD, "--norm-bound applies to --aggregator norm-bound only");
        return 1;
    }
    if ((seen & SEEN_TRIM) && a->kind != FEDC_AGG_TRIMMED_MEAN) {
        cli_error(CMD, "--trim-beta applies to --aggregator trimmed-mean only");
        return 1;
    }
    if ((seen & SEEN_KRUM_F) && a->kind != FEDC_AGG_KRUM && a->kind != FEDC_AGG_MULTI_KRUM) {
        cli_error(CMD, "--krum-f applies to --aggregator krum or multi-krum only");
        return 1;
    }
    if ((seen & SEEN_MULTI_M) && a->kind != FEDC_AGG_MULTI_KRUM) {
        cli_error(CMD, "--multi-krum-m applies to --aggregator multi-krum only");
        return 1;
    }
    if (a->kind == FEDC_AGG_MULTI_KRUM && m > c->min_fit_clients - f) {
        cli_error(CMD,
                  "--multi-krum-m %d exceeds the updates Multi-Krum can keep in a round of "
                  "--min-fit-clients %d with --krum-f %d (at most %d)",
                  m, c->min_fit_clients, f, c->min_fit_clients - f);
        return 1;
    }
    if ((a->kind == FEDC_AGG_KRUM || a->kind == FEDC_AGG_MULTI_KRUM) &&
        c->min_fit_clients <= 2 * f + 2) {
        cli_error(CMD,
                  "--aggregator %s with --krum-f %d needs more than %d updates per round; "
                  "--min-fit-clients is %d",
                  name, f, 2 * f + 2, c->min_fit_clients);
        return 1;
    }
    if (a->kind == FEDC_AGG_TRIMMED_MEAN && (int)(beta * (float)c->min_fit_clients) < 1)
        fprintf(stderr,
                CMD ": note: --trim-beta %g trims nothing from rounds of %d updates (it drops "
                    "floor(beta n) at each end)\n",
                (double)beta, c->min_fit_clients);
    return 0;
}

/* Client-level DP flags: consistent, and the first round within the budget. */
static int check_dp(coord_cfg *c, float clip, float noise, float delta, float target, float gamma,
                    float eta, float count_noise, const unsigned seen) {
    c->dp_clip = clip;
    c->dp_delta = delta;
    c->target_epsilon = target;
    c->dp_quantile = gamma;
    c->dp_clip_lr = eta;
    /* Andrew et al. 2021: sigma_b = expected clients per round / 20. */
    double expected = c->fraction_fit * (double)c->min_clients;
    c->dp_count_noise = count_noise > 0 ? count_noise : expected / 20.0;
    if (!(clip > 0)) {
        const char *orphan = NULL;
        if (noise >= 0)
            orphan = "--dp-noise";
        else if (target > 0)
            orphan = "--target-epsilon";
        else if (c->dp_adaptive)
            orphan = "--dp-adaptive";
        else if (seen & SEEN_DP_DELTA)
            orphan = "--dp-delta";
        else if (seen & SEEN_DP_ADAPTIVE)
            orphan = "--dp-quantile, --dp-clip-lr or --dp-count-noise";
        if (orphan) {
            cli_error(CMD,
                      "%s needs --dp-clip C (client-level DP); record-level DP-SGD is a "
                      "client's own setting (fedc-client --dp-clip)",
                      orphan);
            return 1;
        }
        return 0;
    }
    if ((seen & SEEN_DP_ADAPTIVE) && !c->dp_adaptive) {
        cli_error(CMD, "--dp-quantile, --dp-clip-lr and --dp-count-noise apply with --dp-adaptive "
                       "only");
        return 1;
    }
    if (expected < (double)c->min_fit_clients) {
        cli_error(CMD,
                  "under client-level DP every client is sampled independently with probability "
                  "--fraction-fit %g, about %.1f of --min-clients %d per round, fewer than "
                  "--min-fit-clients %d: lower --min-fit-clients (or raise --fraction-fit)",
                  c->fraction_fit, expected, c->min_clients, c->min_fit_clients);
        return 1;
    }
    if (agg_individual(c->agg.kind) || c->agg.kind == FEDC_AGG_NORM_BOUND) {
        cli_error(CMD,
                  "--dp-clip works with --aggregator mean (its clipping is the norm bound); "
                  "got --aggregator %s",
                  c->agg.kind == FEDC_AGG_NORM_BOUND ? "norm-bound" : "a robust rule");
        return 1;
    }
    double q = c->fraction_fit;
    fedc_diag d;
    if (noise < 0) {
        if (!(target > 0)) {
            cli_error(CMD, "--dp-clip needs --dp-noise Z or --target-epsilon E");
            return 1;
        }
        double z;
        if (fedc_dp_sigma_for(&z, q, (double)c->rounds, delta, target, &d)) {
            cli_error(CMD, "--target-epsilon %g: %s", (double)target, d.msg);
            return 1;
        }
        noise = (float)z;
        fprintf(stderr,
                CMD ": --target-epsilon %g over %d round(s) at sampling rate %g: noise "
                    "multiplier %.4f\n",
                (double)target, c->rounds, q, z);
    }
    c->dp_noise = noise;
    if (target > 0) {
        double eps, order;
        if (fedc_dp_epsilon(&eps, &order, q, c->dp_noise, 1.0, delta, &d)) {
            cli_error(CMD, "--dp-noise: %s", d.msg);
            return 1;
        }
        if (eps > target) {
            cli_error(CMD,
                      "one round at noise multiplier %g and sampling rate %g already spends "
                      "epsilon %.3f, beyond --target-epsilon %g: refusing to start",
                      c->dp_noise, q, eps, (double)target);
            return 1;
        }
    }
    if (c->dp_adaptive && !(2.0 * c->dp_count_noise > c->dp_noise)) {
        cli_error(CMD,
                  "--dp-adaptive: 2 x the count's noise %g%s must exceed the noise multiplier "
                  "%g (Andrew et al. 2021: the update keeps (z^-2 - (2 sigma_b)^-2)^-1/2); set "
                  "--dp-count-noise above %g",
                  c->dp_count_noise, count_noise > 0 ? "" : " (default: expected clients / 20)",
                  c->dp_noise, c->dp_noise / 2.0);
        return 1;
    }
    return 0;
}

/* --mode async against the rest (coordinator/async.c says why each is refused). */
static int check_async(coord_cfg *c, int buffer, int async_flags) {
    if (!c->async_mode) {
        if (async_flags) {
            cli_error(CMD, "--buffer and --max-staleness apply with --mode async only");
            return 1;
        }
        return 0;
    }
    c->buffer = buffer > 0 ? buffer : c->min_fit_clients;
    if (c->secagg && c->buffer < c->sa_min_nbrs) {
        /* Each server step is one secure session among exactly the K clients whose updates are
         * held (async_sa.c): a smaller K would be a session the clients refuse (their floor),
         * and the coordinator would learn sums over fewer clients than the floor promises. */
        cli_error(CMD,
                  "--mode async with secure aggregation: --buffer %d is below the secure floor "
                  "--secagg-min-neighbours %d (each server step is one secure session among the "
                  "--buffer clients whose updates are held)",
                  c->buffer, c->sa_min_nbrs);
        return 1;
    }
    if (c->dp_clip > 0 && c->buffer > c->min_clients) {
        /* Under client-level DP a buffer holds at most one update per client (async.c), so K
         * distinct clients must be able to take part. */
        cli_error(CMD,
                  "--mode async with --dp-clip: --buffer %d exceeds --min-clients %d; under "
                  "client-level DP each server step counts a client once, so a step needs "
                  "--buffer distinct clients",
                  c->buffer, c->min_clients);
        return 1;
    }
    if (c->fraction_fit < 1.0) {
        cli_error(CMD, "--fraction-fit applies to --mode sync: asynchronous aggregation sends the "
                       "newest model to every idle client (--buffer sets how many updates make "
                       "a step)");
        return 1;
    }
    if (agg_individual(c->agg.kind)) {
        cli_error(CMD, "--mode async works with --aggregator mean or norm-bound: a buffer may hold "
                       "two updates of one fast client, and the robust rules count one per client");
        return 1;
    }
    if (c->buffer > c->min_clients)
        fprintf(stderr,
                CMD ": note: --buffer %d exceeds --min-clients %d: a server step waits for more "
                    "updates than the clients the run needs, so fast clients fill it twice\n",
                c->buffer, c->min_clients);
    return 0;
}

int fedc_coord_args(coord_cfg *out, int argc, char **argv) {
    return fedc_coord_args_edge(out, NULL, argc, argv);
}

int fedc_coord_args_edge(coord_cfg *out, edge_cfg *edge, int argc, char **argv) {
    fedc_opts o;
    int prc = fedc_opts_parse(&o, FEDC_PROG_COORD, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
#define V(id) (o.v[FEDC_O_##id])
#define HAS(id) fedc_opt_has(&o, FEDC_O_##id)
#define GIVEN(id) fedc_opt_given(&o, FEDC_O_##id)
    coord_cfg c;
    /* The library's defaults (an embedder gets the same), then the options. The table states the
     * same defaults; options without one keep the library's or are derived below. */
    fedc_coord_defaults(&c);
    c.bind = V(BIND).text;
    c.rounds = (int)V(ROUNDS).i;
    c.min_clients = HAS(MIN_CLIENTS) ? (int)V(MIN_CLIENTS).i : -1; /* 3 with secagg, else 2 */
    c.min_fit_clients = HAS(MIN_FIT_CLIENTS) ? (int)V(MIN_FIT_CLIENTS).i : -1;
    c.max_retries = (int)V(MAX_RETRIES).i;
    c.async_mode = V(MODE).i == 1; /* sync|async */
    int buffer = HAS(BUFFER) ? (int)V(BUFFER).i : 0;
    c.max_staleness = (int)V(MAX_STALENESS).i;
    int async_flags = GIVEN(BUFFER) || GIVEN(MAX_STALENESS);
    c.n_hidden = V(LAYERS).n_list;
    memcpy(c.hidden, V(LAYERS).list, sizeof(int) * (size_t)c.n_hidden);
    c.init_weights = V(INIT_WEIGHTS).text;
    c.model_external = V(MODEL).i == 1;
    c.local_epochs = (int)V(LOCAL_EPOCHS).i;
    c.batch = (int)V(BATCH).i;
    c.lr = (float)V(LR).r;
    c.prox_mu = (float)V(PROX_MU).r;
    c.l2 = (float)V(L2).r;
    c.dropout = (float)V(DROPOUT).r;
    c.val_fraction = (float)V(VAL_FRACTION).r;
    if (V(POS_WEIGHT).i >= 0)
        c.pos_weight_auto = 1; /* the word "auto" */
    else
        c.pos_weight = (float)V(POS_WEIGHT).r;
    c.threshold = (float)V(THRESHOLD).r;
    c.alert_budget = V(ALERT_BUDGET).r;
    c.model_out = V(MODEL_OUT).text;
    c.best_model_out = V(BEST_MODEL_OUT).text;
    c.select_metric = V(SELECT_METRIC).text;
    c.patience = (int)V(PATIENCE).i;
    c.metrics_json = V(METRICS_JSON).text;
    c.metrics_listen = V(METRICS_LISTEN).text;
    c.checkpoint_dir = V(CHECKPOINT_DIR).text;
    c.key_path = V(KEY).text;
    c.allow_dir = V(ALLOW).text;
    c.secagg = V(SECAGG).i == 0; /* on|off */
    c.sa_neighbours = HAS(SECAGG_NEIGHBOURS) ? (int)V(SECAGG_NEIGHBOURS).i : 0;
    c.sa_threshold = HAS(SECAGG_THRESHOLD) ? (int)V(SECAGG_THRESHOLD).i : 0;
    c.sa_min_nbrs = (int)V(SECAGG_MIN_NEIGHBOURS).i;
    c.sa_clip = (float)V(SECAGG_CLIP).r;
    c.sa_max_clients = (int)V(SECAGG_MAX_CLIENTS).i;
    /* Given only: its default is fedc_coord_defaults' (coord.c has the measurements behind it),
     * and --dp-clip or --norm-bound replace it there. */
    if (GIVEN(UPDATE_NORM_BOUND))
        c.update_norm_bound = (float)V(UPDATE_NORM_BOUND).r;
    c.quiet = (int)V(QUIET).i;
    /* choices are indices into their words: debug|info|warn|error, text|json (fedc/log.h) */
    c.log.level = (fedc_log_level)(FEDC_LOG_DEBUG + (int)V(LOG_LEVEL).i);
    c.log.format = (fedc_log_format)V(LOG_FORMAT).i;
    c.resume = (int)V(RESUME).i;
    c.insecure = (int)V(INSECURE).i;
    c.dp_adaptive = (int)V(DP_ADAPTIVE).i;
    c.keep_opt_state = V(OPTIMIZER_STATE).i == 1; /* fresh|kept */
    const char *server_name = V(SERVER_OPT).text, *opt_name = V(OPTIMIZER).text;
    const char *act_name = V(ACTIVATION).text, *agg_kind = V(AGGREGATOR).text;
    float server_lr = HAS(SERVER_LR) ? (float)V(SERVER_LR).r : -1;
    float server_mom = HAS(SERVER_MOMENTUM) ? (float)V(SERVER_MOMENTUM).r : -1;
    float fraction = (float)V(FRACTION_FIT).r, rto = (float)V(ROUND_TIMEOUT).r;
    float hbto = (float)V(HEARTBEAT_TIMEOUT).r, wto = (float)V(WAIT_TIMEOUT).r;
    int max_msg_mb = (int)V(MAX_MSG_MB).i;
    float trim_beta = (float)V(TRIM_BETA).r;
    float norm_bound = HAS(NORM_BOUND) ? (float)V(NORM_BOUND).r : 0;
    float dp_clip = HAS(DP_CLIP) ? (float)V(DP_CLIP).r : 0;
    float dp_noise = HAS(DP_NOISE) ? (float)V(DP_NOISE).r : -1;
    float dp_delta = (float)V(DP_DELTA).r;
    float target_eps = HAS(TARGET_EPSILON) ? (float)V(TARGET_EPSILON).r : 0;
    float dp_quantile = (float)V(DP_QUANTILE).r, dp_clip_lr = (float)V(DP_CLIP_LR).r;
    float dp_count_noise = HAS(DP_COUNT_NOISE) ? (float)V(DP_COUNT_NOISE).r : -1;
    int krum_f = (int)V(KRUM_F).i, multi_m = HAS(MULTI_KRUM_M) ? (int)V(MULTI_KRUM_M).i : 0;
    unsigned long long seed = V(SEED).u;
    unsigned seen =
        (GIVEN(TRIM_BETA) ? SEEN_TRIM : 0) | (GIVEN(KRUM_F) ? SEEN_KRUM_F : 0) |
        (GIVEN(MULTI_KRUM_M) ? SEEN_MULTI_M : 0) | (GIVEN(DP_DELTA) ? SEEN_DP_DELTA : 0) |
        (GIVEN(DP_QUANTILE) || GIVEN(DP_CLIP_LR) || GIVEN(DP_COUNT_NOISE) ? SEEN_DP_ADAPTIVE : 0) |
        (GIVEN(UPDATE_NORM_BOUND) ? SEEN_UPDATE_BOUND : 0);
#undef V
#undef HAS
#undef GIVEN
    if (!c.bind) {
        cli_error(CMD, "--bind is required, e.g. --bind tcp://*:7070 (see " CMD " --help)");
        return FEDC_EXIT_USAGE;
    }
    if (c.metrics_listen) {
        struct sockaddr_storage sa;
        socklen_t sl;
        fedc_diag d;
        if (fedc__http_parse(c.metrics_listen, &sa, &sl, &d)) {
            cli_error(CMD, "--metrics-listen: %s", d.msg);
            return FEDC_EXIT_USAGE;
        }
    }
    if (!c.insecure && (!c.key_path || !c.allow_dir)) {
        cli_error(CMD,
                  "%s is required: CurveZMQ needs the coordinator's secret key and the clients' "
                  "public keys (fedc keygen makes them); --insecure runs without (testing only)",
                  !c.key_path ? "--key" : "--allow");
        return FEDC_EXIT_USAGE;
    }
    if (c.insecure && (c.key_path || c.allow_dir)) {
        cli_error(CMD, "--insecure contradicts %s", c.key_path ? "--key" : "--allow");
        return FEDC_EXIT_USAGE;
    }
    if (c.insecure) {
        char w[512];
        snprintf(w, sizeof w,
                 "--insecure: no encryption and no client authentication; anyone who can reach "
                 "%s can join and read the model",
                 c.bind);
        fedc_log_write(&c.log, FEDC_LOG_WARN, CMD, NULL, w);
    }
    if (c.min_clients < 0)
        c.min_clients = c.secagg ? c.sa_min_nbrs : 2;
    if (c.min_fit_clients < 0)
        c.min_fit_clients = c.min_clients;
    if (c.secagg && (c.min_clients < c.sa_min_nbrs ||
                     c.min_fit_clients < fedc_sa_fewest_in_sum(c.sa_min_nbrs))) {
        /* A session over fewer clients than the floor, or a round counted with one result,
         * would let the coordinator learn a sum of too few inputs (one client's alone with
         * --min-clients 1): refuse before anything. */
        cli_error(CMD,
                  "--min-clients %d / --min-fit-clients %d are below the secure-aggregation floor "
                  "(at least %d clients in a session, --secagg-min-neighbours, and %d results in "
                  "a sum); raise them, or use --secagg off",
                  c.min_clients, c.min_fit_clients, c.sa_min_nbrs,
                  fedc_sa_fewest_in_sum(c.sa_min_nbrs));
        return FEDC_EXIT_USAGE;
    }
    if (c.secagg && c.sa_neighbours && 2 * c.sa_neighbours + 1 < c.sa_min_nbrs) {
        cli_error(CMD,
                  "--secagg-neighbours %d gives neighbourhoods of %d, below the floor of %d "
                  "(--secagg-min-neighbours)",
                  c.sa_neighbours, 2 * c.sa_neighbours + 1, c.sa_min_nbrs);
        return FEDC_EXIT_USAGE;
    }
    if (c.secagg && c.max_retries >= (int)FEDC_SA_MAX_ATTEMPT / 2) {
        cli_error(CMD, "--max-retries %d: at most %u with secure aggregation (session counter)",
                  c.max_retries, FEDC_SA_MAX_ATTEMPT / 2 - 1);
        return FEDC_EXIT_USAGE;
    }
    if (!c.secagg && (c.sa_neighbours || c.sa_threshold))
        fprintf(stderr, CMD ": note: --secagg off: the --secagg-* settings are unused\n");
    if (c.secagg && c.sa_threshold) {
        /* The smallest neighbourhood that can occur is the smallest cohort (every client when
         * the federation is small): the threshold must leave room for dropouts there. */
        int size = c.sa_neighbours ? 2 * c.sa_neighbours + 1 : 0;
        if (size && c.sa_threshold > size) {
            cli_error(CMD,
                      "--secagg-threshold %d exceeds the neighbourhood of %d clients "
                      "(--secagg-neighbours %d)",
                      c.sa_threshold, size, c.sa_neighbours);
            return FEDC_EXIT_USAGE;
        }
    }
    if (c.secagg && c.min_clients > c.sa_max_clients) {
        cli_error(CMD, "--min-clients %d exceeds --secagg-max-clients %d", c.min_clients,
                  c.sa_max_clients);
        return FEDC_EXIT_USAGE;
    }
    if (c.init_weights && !c.model_external) {
        cli_error(CMD, "--init-weights applies to --model external only (the MLP is initialised "
                       "from --seed)");
        return FEDC_EXIT_USAGE;
    }
    if (c.resume && !c.checkpoint_dir) {
        cli_error(CMD, "--resume needs --checkpoint-dir");
        return FEDC_EXIT_USAGE;
    }
    if (fedc_act_parse(&c.act, act_name)) {
        cli_error(CMD, "--activation: expected relu, leaky_relu, sigmoid or tanh, got '%s'",
                  act_name);
        return FEDC_EXIT_USAGE;
    }
    if (strcmp(opt_name, "adam") == 0)
        c.optimizer = FEDC_OPT_ADAM;
    else if (strcmp(opt_name, "sgd") == 0)
        c.optimizer = FEDC_OPT_SGD;
    else {
        cli_error(CMD, "--optimizer: expected adam or sgd, got '%s'", opt_name);
        return FEDC_EXIT_USAGE;
    }
    fedc_server_opt kind;
    if (fedc_server_parse(&kind, server_name)) {
        cli_error(CMD, "--server-opt: expected fedavg, fedavgm or fedadam, got '%s'", server_name);
        return FEDC_EXIT_USAGE;
    }
    c.server = fedc_server_defaults(kind);
    if (server_lr > 0)
        c.server.lr = server_lr;
    if (server_mom >= 0) {
        if (kind != FEDC_SERVER_FEDAVGM) {
            cli_error(CMD, "--server-momentum applies to --server-opt fedavgm only");
            return FEDC_EXIT_USAGE;
        }
        c.server.momentum = server_mom;
    }
    c.fraction_fit = fraction;
    if (check_aggregation(&c, agg_kind, trim_beta, krum_f, multi_m, norm_bound, seen))
        return FEDC_EXIT_USAGE;
    if (check_dp(&c, dp_clip, dp_noise, dp_delta, target_eps, dp_quantile, dp_clip_lr,
                 dp_count_noise, seen))
        return FEDC_EXIT_USAGE;
    if ((seen & SEEN_UPDATE_BOUND) && (c.dp_clip > 0 || c.agg.kind == FEDC_AGG_NORM_BOUND)) {
        cli_error(CMD,
                  "--update-norm-bound: %s is the bound clients clip to and the coordinator "
                  "checks; leave --update-norm-bound out",
                  c.dp_clip > 0 ? "under client-level DP the clip norm (--dp-clip)"
                                : "with --aggregator norm-bound, --norm-bound");
        return FEDC_EXIT_USAGE;
    }
    if (check_async(&c, buffer, async_flags))
        return FEDC_EXIT_USAGE;
    c.round_timeout_s = rto;
    c.heartbeat_timeout_s = hbto;
    c.wait_timeout_s = wto;
    c.seed = seed;
    /* A client's largest message is its update (4 bytes per parameter); the bound keeps a peer
     * from making us allocate more (ZMQ_MAXMSGSIZE). */
    c.max_msg = (size_t)max_msg_mb << 20;
    if (!edge && o.v[FEDC_O_UPSTREAM].text) {
        cli_error(CMD, "--upstream: this program runs a root coordinator only");
        return FEDC_EXIT_USAGE;
    }
    edge_cfg none;
    if (fedc_edge_args(edge ? edge : &none, &c, &o))
        return FEDC_EXIT_USAGE;

    *out = c;
    return -1;
}
