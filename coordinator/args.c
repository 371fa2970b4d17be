/* fedc-coordinator's flags: parsed and checked into a coord_cfg (fedc_coord_args in coord.h), so
 * that the program and an embedding (tests, a thread) configure a coordinator the same way. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coord_args.h"
#include "fedc/dp.h"
#include "fedc/sa_proto.h"

#define CMD "fedc-coordinator"

/* Flags given, for the ones that only apply with others. */
#define SEEN_TRIM 1u
#define SEEN_KRUM_F 2u
#define SEEN_MULTI_M 4u
#define SEEN_DP_DELTA 8u
#define SEEN_DP_ADAPTIVE 16u
#define SEEN_UPDATE_BOUND 32u

/* --update-norm-bound's default as the help states it: fedc_coord_defaults' value (coord.c has
 * the measurements behind it). */
#define UPDATE_BOUND_DEFAULT_TEXT "16"

static int agg_individual(fedc_robust_kind k) {
    return k != FEDC_AGG_MEAN && k != FEDC_AGG_NORM_BOUND;
}

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: fedc-coordinator --bind ENDPOINT [options]\n"
        "\n"
        "Owns the global model and runs the federated rounds: waits for --min-clients clients,\n"
        "agrees on the data (schema, standardisation), then for each round sends the model to\n"
        "the selected clients, averages their updates (FedAvg weighted by example count; with\n"
        "secure aggregation as a masked sum it can only unmask in total), applies the server\n"
        "optimiser, evaluates the new model on the clients' validation data, checkpoints, and\n"
        "prints one line.\n"
        "\n"
        "network:\n"
        "  --bind ENDPOINT          ZeroMQ endpoint to listen on, e.g. tcp://*:7070 (required)\n"
        "  --max-msg-mb N           largest message accepted from a client, in MiB (default\n"
        "                           256: models up to 64M parameters); a larger one is refused\n"
        "                           naming its size; a model whose updates do not fit stops the\n"
        "                           run (exit 2)\n"
        "security (docs/security.md; both layers on by default):\n"
        "  --key FILE               our secret key, NAME.key_secret from fedc keygen (CurveZMQ)\n"
        "  --allow DIR              directory of the clients' NAME.key files: only these join\n"
        "  --insecure               no CurveZMQ and no allow-list (testing only; warns every\n"
        "                           round); secure aggregation stays on\n"
        "  --secagg on|off          secure aggregation (SecAgg+): the coordinator learns only\n"
        "                           sums over several clients (default on); off: plain updates\n"
        "  --secagg-neighbours H    neighbourhoods of 2H+1 clients (default about log2 n;\n"
        "                           everyone when the federation is small)\n"
        "  --secagg-threshold T     Shamir threshold: more than half the neighbourhood\n"
        "                           (default floor(size/2)+1: 3 clients survive one dropout)\n"
        "  --secagg-min-neighbours M  the floor: no secure sum over fewer than M clients'\n"
        "                           neighbourhoods (default 3; clients hold their own floor);\n"
        "                           the coordinator can unmask no sum of fewer than\n"
        "                           max(2, floor(M/2)+1) inputs (docs/security.md)\n"
        "  --secagg-clip C          updates are clipped to [-C, C] per coordinate (default 10)\n"
        "  --secagg-max-clients N   clients the fixed point leaves headroom for (default 1024)\n");
    fprintf(
        f,
        "aggregation (README \"Robust aggregation\"):\n"
        "  --aggregator NAME        mean (FedAvg weighted by examples, the default), median,\n"
        "                           trimmed-mean, krum, multi-krum (need each update: only with\n"
        "                           --secagg off; unweighted) or norm-bound (updates scaled to\n"
        "                           L2 norm <= --norm-bound; under secure aggregation the clients\n"
        "                           clip and the coordinator checks the aggregate's norm)\n"
        "  --trim-beta B            trimmed mean: share dropped at each end, [0, 0.5) (default\n"
        "                           0.2; must exceed the share of bad clients)\n"
        "  --krum-f F               Krum: bad clients tolerated; needs more than 2F+2 updates\n"
        "                           (default 1)\n"
        "  --multi-krum-m M         Multi-Krum: updates averaged (default: updates - F)\n"
        "  --norm-bound C           the L2 bound of norm-bound\n"
        "  --update-norm-bound B    every client clips its update to L2 norm B and the\n"
        "                           coordinator rejects an update or aggregate beyond it\n"
        "                           (default " UPDATE_BOUND_DEFAULT_TEXT
        "; --dp-clip or --norm-bound replace it)\n"
        "client-level differential privacy (DP-FedAvg; README \"Differential privacy\"):\n"
        "  --dp-clip C              clients scale their update to L2 norm <= C and count once\n"
        "                           (uniform weights); the coordinator adds N(0, (zC)^2) to the "
        "sum\n"
        "  --dp-noise Z             noise multiplier z\n"
        "  --target-epsilon E       privacy budget: stop before a round would exceed it (refuse\n"
        "                           to start if the first would); without --dp-noise, z is the\n"
        "                           smallest that fits --rounds rounds in E\n"
        "  --dp-delta D             delta of (epsilon, delta) (default 1e-5)\n"
        "  --dp-adaptive            adapt C towards the --dp-quantile of update norms (Andrew\n"
        "                           et al. 2021); the count is noised too, within the same z\n"
        "  --dp-quantile G          target share of unclipped updates (default 0.5)\n"
        "  --dp-clip-lr ETA         geometric step of C (default 0.2)\n"
        "  --dp-count-noise S       noise sd on the count of unclipped updates (default\n"
        "                           --min-fit-clients / 20)\n");
    fprintf(
        f,
        "rounds:\n"
        "  --rounds N               training rounds (default 20)\n"
        "  --min-clients N          clients that must join before round 0 starts (default 3 with\n"
        "                           secure aggregation, its floor; 2 with --secagg off)\n"
        "  --min-fit-clients N      results a round needs to count (default: --min-clients)\n"
        "  --fraction-fit F         share of live clients selected per round, (0, 1] "
        "(default 1)\n"
        "  --round-timeout S        seconds a round waits for results (default 300)\n"
        "  --heartbeat-timeout S    silence after which a client is marked dead (default 10)\n"
        "  --wait-timeout S         give up after waiting this long for enough clients\n"
        "                           (default 0: wait for ever)\n"
        "  --max-retries N          failed attempts of one round before giving up (default 5)\n"
        "model (input and output sizes come from the data):\n"
        "  --model NAME             mlp: fedc's MLP (default); external: the clients bring a\n"
        "                           model of their own (fedc/client_model.h), its parameter\n"
        "                           count and initial values come from the first client\n"
        "  --init-weights FILE      with --model external: the initial values instead, as raw\n"
        "                           little-endian float32 (4 bytes per parameter)\n"
        "  --layers 64,32           hidden layer widths (default 64,32; 'none' for a linear "
        "model)\n"
        "  --activation NAME        relu, leaky_relu, sigmoid or tanh (default relu)\n"
        "  --seed N                 initialisation and the clients' shuffling (default 1)\n"
        "client training (sent to every client):\n"
        "  --local-epochs N         epochs over the local data per round (default 1)\n"
        "  --batch N                mini-batch size (default 64)\n"
        "  --lr X                   learning rate (default 0.001)\n"
        "  --optimizer NAME         adam or sgd (default adam; fresh state each round)\n"
        "  --prox-mu X              FedProx proximal weight (default 0: plain FedAvg)\n"
        "  --l2 X                   L2 penalty on weights (default 0)\n"
        "  --dropout P              dropout on hidden layers (default 0)\n"
        "  --val-fraction F         share of each client's rows kept for evaluation (default "
        "0.2)\n"
        "  --pos-weight auto|X      positive-class weight for binary labels; auto = negatives /\n"
        "                           positives over all clients (default 1)\n"
        "  --threshold X            decision threshold for precision/recall (default 0.5)\n"
        "  --alert-budget F         also report precision and recall when the share F of\n"
        "                           validation rows with the highest scores is flagged\n"
        "                           (binary; default 0.005, from the summed histograms)\n"
        "server optimiser:\n"
        "  --server-opt NAME        fedavg, fedavgm or fedadam (default fedavg)\n"
        "  --server-lr X            server learning rate (default 1 for fedavg/fedavgm, 0.01 "
        "for fedadam)\n"
        "  --server-momentum X      FedAvgM momentum (default 0.9)\n"
        "outputs:\n"
        "  --model-out PATH         final global model (core/nn format, read by fedc eval)\n"
        "  --metrics-json PATH      one JSON object per round, appended after the checkpoint\n"
        "  --checkpoint-dir DIR     checkpoint after every round (atomic)\n"
        "  --resume                 continue from the checkpoint in --checkpoint-dir if there is\n"
        "                           one (a fresh run otherwise)\n"
        "  --quiet                  no per-round lines on stdout\n"
        "  -h, --help               this message\n"
        "\n"
        "Exit status: 0 when all rounds ran, 1 on a runtime failure (gave up waiting, I/O),\n"
        "2 on bad flags or an unusable checkpoint.\n");
}

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

int fedc_coord_args(coord_cfg *out, int argc, char **argv) {
    coord_cfg c;
    /* The library's defaults (an embedder gets the same), then what only the flags decide. */
    fedc_coord_defaults(&c);
    c.min_clients = -1; /* 3 with secure aggregation (its floor), else 2 */
    c.min_fit_clients = -1;
    const char *server_name = "fedavg", *opt_name = "adam", *act_name = "relu";
    float server_lr = -1, server_mom = -1, fraction = 1.0f, rto = 300, hbto = 10, wto = 0;
    int max_msg_mb = 0;
    const char *agg_kind = "mean";
    float trim_beta = 0.2f, norm_bound = 0, dp_clip = 0, dp_noise = -1, dp_delta = 1e-5f,
          target_eps = 0, dp_quantile = 0.5f, dp_clip_lr = 0.2f, dp_count_noise = -1;
    int krum_f = 1, multi_m = 0;
    unsigned seen = 0;
    unsigned long long seed = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return FEDC_EXIT_OK;
        }
        if (strcmp(a, "--quiet") == 0) {
            c.quiet = 1;
            continue;
        }
        if (strcmp(a, "--resume") == 0) {
            c.resume = 1;
            continue;
        }
        if (strcmp(a, "--insecure") == 0) {
            c.insecure = 1;
            continue;
        }
        if (strcmp(a, "--dp-adaptive") == 0) {
            c.dp_adaptive = 1;
            continue;
        }
        char flag[64];
        const char *v;
        if (cli_flag_value(CMD, argc, argv, &i, flag, sizeof flag, &v))
            return FEDC_EXIT_USAGE;
        int bad = 0;
        if (strcmp(flag, "--bind") == 0)
            c.bind = v;
        else if (strcmp(flag, "--rounds") == 0)
            bad = cli_int(CMD, flag, v, 1, 1000000, &c.rounds);
        else if (strcmp(flag, "--min-clients") == 0)
            bad = cli_int(CMD, flag, v, 1, 4096, &c.min_clients);
        else if (strcmp(flag, "--min-fit-clients") == 0)
            bad = cli_int(CMD, flag, v, 1, 4096, &c.min_fit_clients);
        else if (strcmp(flag, "--fraction-fit") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1.0, 1, &fraction);
        else if (strcmp(flag, "--round-timeout") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &rto);
        else if (strcmp(flag, "--heartbeat-timeout") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &hbto);
        else if (strcmp(flag, "--wait-timeout") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e7, 0, &wto);
        else if (strcmp(flag, "--max-retries") == 0)
            bad = cli_int(CMD, flag, v, 0, 1000000, &c.max_retries);
        else if (strcmp(flag, "--max-msg-mb") == 0)
            bad = cli_int(CMD, flag, v, 1, 4000, &max_msg_mb);
        else if (strcmp(flag, "--layers") == 0)
            bad = cli_int_list(CMD, flag, v, c.hidden, FEDC_MAX_LAYERS - 1, &c.n_hidden);
        else if (strcmp(flag, "--activation") == 0)
            act_name = v;
        else if (strcmp(flag, "--init-weights") == 0)
            c.init_weights = v;
        else if (strcmp(flag, "--model") == 0) {
            if (strcmp(v, "mlp") == 0 || strcmp(v, "external") == 0)
                c.model_external = strcmp(v, "external") == 0;
            else {
                cli_error(CMD, "--model: expected mlp or external, got '%s'", v);
                bad = 1;
            }
        } else if (strcmp(flag, "--seed") == 0)
            bad = cli_u64(CMD, flag, v, &seed);
        else if (strcmp(flag, "--local-epochs") == 0)
            bad = cli_int(CMD, flag, v, 1, 10000, &c.local_epochs);
        else if (strcmp(flag, "--batch") == 0)
            bad = cli_int(CMD, flag, v, 1, 1 << 20, &c.batch);
        else if (strcmp(flag, "--lr") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 100.0, 1, &c.lr);
        else if (strcmp(flag, "--optimizer") == 0)
            opt_name = v;
        else if (strcmp(flag, "--prox-mu") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e4, 0, &c.prox_mu);
        else if (strcmp(flag, "--l2") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e4, 0, &c.l2);
        else if (strcmp(flag, "--dropout") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 0.95, 0, &c.dropout);
        else if (strcmp(flag, "--val-fraction") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 0.9, 0, &c.val_fraction);
        else if (strcmp(flag, "--pos-weight") == 0) {
            if (strcmp(v, "auto") == 0)
                c.pos_weight_auto = 1;
            else
                bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &c.pos_weight);
        } else if (strcmp(flag, "--threshold") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1.0, 0, &c.threshold);
        else if (strcmp(flag, "--server-opt") == 0)
            server_name = v;
        else if (strcmp(flag, "--server-lr") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 100.0, 1, &server_lr);
        else if (strcmp(flag, "--server-momentum") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 0.999f, 0, &server_mom);
        else if (strcmp(flag, "--model-out") == 0)
            c.model_out = v;
        else if (strcmp(flag, "--metrics-json") == 0)
            c.metrics_json = v;
        else if (strcmp(flag, "--checkpoint-dir") == 0)
            c.checkpoint_dir = v;
        else if (strcmp(flag, "--key") == 0)
            c.key_path = v;
        else if (strcmp(flag, "--allow") == 0)
            c.allow_dir = v;
        else if (strcmp(flag, "--secagg") == 0) {
            if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0)
                c.secagg = strcmp(v, "on") == 0;
            else {
                cli_error(CMD, "--secagg: expected on or off, got '%s'", v);
                bad = 1;
            }
        } else if (strcmp(flag, "--secagg-neighbours") == 0)
            bad = cli_int(CMD, flag, v, 1, 127, &c.sa_neighbours);
        else if (strcmp(flag, "--secagg-threshold") == 0)
            bad = cli_int(CMD, flag, v, 1, 255, &c.sa_threshold);
        else if (strcmp(flag, "--secagg-min-neighbours") == 0)
            bad = cli_int(CMD, flag, v, 3, 255, &c.sa_min_nbrs);
        else if (strcmp(flag, "--secagg-clip") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &c.sa_clip);
        else if (strcmp(flag, "--secagg-max-clients") == 0)
            bad = cli_int(CMD, flag, v, 2, 65536, &c.sa_max_clients);
        else if (strcmp(flag, "--aggregator") == 0)
            agg_kind = v;
        else if (strcmp(flag, "--trim-beta") == 0) {
            seen |= SEEN_TRIM;
            bad = cli_float(CMD, flag, v, 0.0, 0.499f, 0, &trim_beta);
        } else if (strcmp(flag, "--krum-f") == 0) {
            seen |= SEEN_KRUM_F;
            bad = cli_int(CMD, flag, v, 0, 1000, &krum_f);
        } else if (strcmp(flag, "--multi-krum-m") == 0) {
            seen |= SEEN_MULTI_M;
            bad = cli_int(CMD, flag, v, 1, 4096, &multi_m);
        } else if (strcmp(flag, "--norm-bound") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &norm_bound);
        else if (strcmp(flag, "--update-norm-bound") == 0) {
            seen |= SEEN_UPDATE_BOUND;
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &c.update_norm_bound);
        } else if (strcmp(flag, "--dp-clip") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &dp_clip);
        else if (strcmp(flag, "--dp-noise") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e4, 1, &dp_noise);
        else if (strcmp(flag, "--dp-delta") == 0) {
            seen |= SEEN_DP_DELTA;
            bad = cli_float(CMD, flag, v, 0.0, 0.5, 1, &dp_delta);
        } else if (strcmp(flag, "--target-epsilon") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e4, 1, &target_eps);
        else if (strcmp(flag, "--dp-quantile") == 0) {
            seen |= SEEN_DP_ADAPTIVE;
            bad = cli_float(CMD, flag, v, 0.0, 1.0, 1, &dp_quantile);
        } else if (strcmp(flag, "--dp-clip-lr") == 0) {
            seen |= SEEN_DP_ADAPTIVE;
            bad = cli_float(CMD, flag, v, 0.0, 10.0, 1, &dp_clip_lr);
        } else if (strcmp(flag, "--dp-count-noise") == 0) {
            seen |= SEEN_DP_ADAPTIVE;
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &dp_count_noise);
        } else {
            cli_error(CMD, "unknown option '%s' (see " CMD " --help)", flag);
            return FEDC_EXIT_USAGE;
        }
        if (bad)
            return FEDC_EXIT_USAGE;
    }
    if (!c.bind) {
        cli_error(CMD, "--bind is required, e.g. --bind tcp://*:7070 (see " CMD " --help)");
        return FEDC_EXIT_USAGE;
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
    if (c.insecure)
        fprintf(stderr,
                CMD ": WARNING: --insecure: no encryption and no client authentication; "
                    "anyone who can reach %s can join and read the model\n",
                c.bind);
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
    c.round_timeout_s = rto;
    c.heartbeat_timeout_s = hbto;
    c.wait_timeout_s = wto;
    c.seed = seed;
    /* A client's largest message is its update (4 bytes per parameter); the bound keeps a peer
     * from making us allocate more (ZMQ_MAXMSGSIZE). */
    c.max_msg = (size_t)(max_msg_mb ? max_msg_mb : 256) << 20;

    *out = c;
    return -1;
}
