/* fedc-client's flags: parsed and checked into a client_cfg with the keys they name loaded
 * (fedc_client_args in client.h), so that the program and an embedding (tests, a thread)
 * configure a client the same way. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client_args.h"
#include "fedc/dp.h"

#define CMD "fedc-client"

static void usage(FILE *f) {
    fprintf(
        f, "usage: fedc-client --connect ENDPOINT --name NAME --data FILE.csv --label COLUMN "
           "[options]\n"
           "\n"
           "One participant of a federation: loads and checks its CSV (which never leaves this\n"
           "machine), joins the coordinator, and trains the global model on its rows when asked.\n"
           "Start it before or after the coordinator; it reconnects by itself if the coordinator\n"
           "restarts, and exits when the coordinator says the run is over.\n"
           "\n"
           "  --connect ENDPOINT       the coordinator, e.g. tcp://coord:7070 (required)\n"
           "  --key FILE               our secret key (NAME.key_secret from fedc keygen);\n"
           "                           CurveZMQ encrypts the connection and the coordinator knows\n"
           "                           us by that NAME\n"
           "  --coordinator-key FILE   the coordinator's public key file (pinned)\n"
           "  --peers DIR              the federation's public keys (the roster)\n"
           "  --insecure               no CurveZMQ (testing only); secure aggregation then trusts\n"
           "                           the coordinator to relay the neighbours' keys honestly\n"
           "  --augment KIND[:R]       add rare-class rows to the local training rows until\n"
           "                           positives/negatives = R (default 0.1): oversample, smote,\n"
           "                           noise or none (default); they never leave this machine\n"
           "  --dp-clip C              record-level DP-SGD on our rows: every example's gradient\n"
           "                           is clipped to L2 norm C and Gaussian noise is added\n"
           "  --dp-noise S             its noise multiplier (sd S x C on the summed gradient)\n"
           "  --target-epsilon E       our privacy budget: without --dp-noise the multiplier is\n"
           "                           the smallest that fits the run's planned rounds in E; we\n"
           "                           stop training (and tell the coordinator) before a round\n"
           "                           would exceed it. The budget counts this process's training\n"
           "  --dp-delta D             delta of (epsilon, delta) (default 1e-5)\n"
           "  --dp-sampling KIND       poisson (default: what the accountant assumes) or shuffle\n"
           "  --dp-state FILE          the privacy spent so far (steps, sampling rate, noise),\n"
           "                           read at start and rewritten atomically every round, so a\n"
           "                           restarted client keeps counting\n"
           "  --secagg on|off          on (default): send statistics, updates and evaluation\n"
           "                           counts only masked (secure aggregation) and refuse a\n"
           "                           coordinator that asks for them in plain; off: allow both\n"
           "  --secagg-min-neighbours M  refuse a secure sum whose neighbourhood (us included)\n"
           "                           is below M or whose threshold is below a majority of it\n"
           "                           (default 3; docs/security.md)\n"
           "  --name NAME              this participant's name (default: the key's name; with\n"
           "                           --insecure the host name)\n"
           "  --data FILE.csv          local data with a header line (required)\n"
           "  --label COLUMN           the label column (required)\n"
           "  --drop A,B               columns to ignore (identifiers, ...)\n"
           "  --task auto|regression   auto detects binary/multiclass labels (default auto)\n"
           "  --threads N              OpenMP threads for training (default OMP_NUM_THREADS or "
           "all cores)\n"
           "  --heartbeat-ms N         interval between heartbeats (default 1000)\n"
           "  --coordinator-timeout S  give up after this long without word from the coordinator\n"
           "                           (default 600)\n"
           "  --max-msg-mb N           largest message accepted, in MiB (default 256)\n"
           "  --metrics-json PATH      append one JSON line per local training round (rows,\n"
           "                           loss, seconds; with DP-SGD the epsilon spent so far)\n"
           "  --quiet                  no per-round lines on stdout\n"
           "  -h, --help               this message\n"
           "\n"
           "Training settings (epochs, batch, learning rate, ...) come from the coordinator.\n"
           "Exit status: 0 when the run is complete, 1 on a runtime failure, 2 on bad flags, bad\n"
           "data or data the federation refuses.\n");
}

int fedc_client_args(client_args *args, int argc, char **argv) {
    memset(args, 0, sizeof *args);
    client_cfg c;
    fedc_client_defaults(&c);
    const char *dp_extra = NULL;
    const char *drop = NULL, *task = "auto";
    int max_msg_mb = 256;
    float cto = 600;
    const char *key_path = NULL, *coord_key_path = NULL, *peers_dir = NULL;
    int insecure = 0;
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
        if (strcmp(a, "--insecure") == 0) {
            insecure = 1;
            continue;
        }
        char flag[64];
        const char *v;
        if (cli_flag_value(CMD, argc, argv, &i, flag, sizeof flag, &v))
            return FEDC_EXIT_USAGE;
        int bad = 0;
        if (strcmp(flag, "--connect") == 0)
            c.connect = v;
        else if (strcmp(flag, "--name") == 0)
            c.name = v;
        else if (strcmp(flag, "--data") == 0)
            c.data = v;
        else if (strcmp(flag, "--label") == 0)
            c.label = v;
        else if (strcmp(flag, "--drop") == 0)
            drop = v;
        else if (strcmp(flag, "--task") == 0)
            task = v;
        else if (strcmp(flag, "--threads") == 0)
            bad = cli_int(CMD, flag, v, 1, 4096, &c.threads);
        else if (strcmp(flag, "--heartbeat-ms") == 0)
            bad = cli_int(CMD, flag, v, 10, 600000, &c.heartbeat_ms);
        else if (strcmp(flag, "--coordinator-timeout") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e7, 1, &cto);
        else if (strcmp(flag, "--key") == 0)
            key_path = v;
        else if (strcmp(flag, "--coordinator-key") == 0)
            coord_key_path = v;
        else if (strcmp(flag, "--peers") == 0)
            peers_dir = v;
        else if (strcmp(flag, "--augment") == 0) {
            fedc_diag ad;
            if (fedc_aug_parse(&c.augment, v, &ad)) {
                cli_error(CMD, "--augment: %s", ad.msg);
                bad = 1;
            }
        } else if (strcmp(flag, "--secagg-min-neighbours") == 0) {
            bad = cli_int(CMD, flag, v, 3, 255, &c.sa_min_nbrs);
        } else if (strcmp(flag, "--secagg") == 0) {
            if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0)
                c.allow_plain = strcmp(v, "off") == 0;
            else {
                cli_error(CMD, "--secagg: expected on or off, got '%s'", v);
                bad = 1;
            }
        } else if (strcmp(flag, "--dp-clip") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &c.dp_clip);
        else if (strcmp(flag, "--dp-noise") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e4, 1, &c.dp_noise);
        else if (strcmp(flag, "--target-epsilon") == 0) {
            float e;
            bad = cli_float(CMD, flag, v, 0.0, 1e4, 1, &e);
            c.target_epsilon = e;
        } else if (strcmp(flag, "--dp-state") == 0)
            c.dp_state = v;
        else if (strcmp(flag, "--metrics-json") == 0)
            c.metrics_json = v;
        else if (strcmp(flag, "--dp-delta") == 0) {
            dp_extra = "--dp-delta";
            float e;
            bad = cli_float(CMD, flag, v, 0.0, 0.5, 1, &e);
            c.dp_delta = e;
        } else if (strcmp(flag, "--dp-sampling") == 0) {
            dp_extra = "--dp-sampling";
            if (strcmp(v, "poisson") == 0 || strcmp(v, "shuffle") == 0)
                c.dp_poisson = strcmp(v, "poisson") == 0;
            else {
                cli_error(CMD, "--dp-sampling: expected poisson or shuffle, got '%s'", v);
                bad = 1;
            }
        } else if (strcmp(flag, "--max-msg-mb") == 0)
            bad = cli_int(CMD, flag, v, 1, 4000, &max_msg_mb);
        else {
            cli_error(CMD, "unknown option '%s' (see " CMD " --help)", flag);
            return FEDC_EXIT_USAGE;
        }
        if (bad)
            return FEDC_EXIT_USAGE;
    }
    if (!(c.dp_clip > 0) && (c.dp_noise >= 0 || c.target_epsilon > 0 || dp_extra || c.dp_state)) {
        cli_error(CMD, "%s needs --dp-clip C (record-level DP-SGD)",
                  c.dp_noise >= 0        ? "--dp-noise"
                  : c.target_epsilon > 0 ? "--target-epsilon"
                  : dp_extra             ? dp_extra
                                         : "--dp-state");
        return FEDC_EXIT_USAGE;
    }
    if (c.target_epsilon > 0 && !c.dp_state)
        fprintf(stderr, CMD ": note: --target-epsilon counts the privacy spent by this process "
                            "only; --dp-state FILE keeps the count across restarts\n");
    if (c.dp_clip > 0 && c.dp_noise < 0 && !(c.target_epsilon > 0)) {
        cli_error(CMD, "--dp-clip needs --dp-noise S or --target-epsilon E");
        return FEDC_EXIT_USAGE;
    }
    if (c.dp_clip > 0 && c.augment.kind != FEDC_AUG_NONE) {
        cli_error(CMD, "--augment cannot be combined with DP-SGD: added rows copy or blend real "
                       "ones, which breaks the per-record bound");
        return FEDC_EXIT_USAGE;
    }
    if (!c.connect || !c.data || !c.label) {
        cli_error(CMD, "%s is required (see " CMD " --help)",
                  !c.connect ? "--connect"
                  : !c.data  ? "--data"
                             : "--label");
        return FEDC_EXIT_USAGE;
    }
    if (!insecure) {
        if (!key_path || !coord_key_path || !peers_dir) {
            cli_error(CMD,
                      "%s is required: CurveZMQ needs our secret key, the coordinator's public key "
                      "and the roster (fedc keygen makes them); --insecure runs without (testing "
                      "only)",
                      !key_path         ? "--key"
                      : !coord_key_path ? "--coordinator-key"
                                        : "--peers");
            return FEDC_EXIT_USAGE;
        }
        fedc_diag d;
        if (fedc_key_load_secret(&args->self, key_path, &d)) {
            cli_error(CMD, "--key: %s", d.msg);
            return FEDC_EXIT_USAGE;
        }
        if (fedc_key_load_public(&args->coord, coord_key_path, &d)) {
            cli_error(CMD, "--coordinator-key: %s", d.msg);
            return FEDC_EXIT_USAGE;
        }
        fedc_key_wipe(&args->coord); /* a public key is all we need of it */
        if (fedc_key_load_dir(&args->peers, &c.n_peers, peers_dir, &d)) {
            cli_error(CMD, "--peers: %s", d.msg);
            return FEDC_EXIT_USAGE;
        }
        if (c.name && strcmp(c.name, args->self.name) != 0) {
            cli_error(CMD,
                      "--name '%s' differs from the name in --key ('%s'): the federation knows "
                      "us by our key",
                      c.name, args->self.name);
            return FEDC_EXIT_USAGE;
        }
        c.name = args->self.name;
        c.self = &args->self;
        c.coordinator = &args->coord;
        c.peers = args->peers;
    } else if (key_path || coord_key_path || peers_dir) {
        cli_error(CMD, "--insecure contradicts %s",
                  key_path         ? "--key"
                  : coord_key_path ? "--coordinator-key"
                                   : "--peers");
        return FEDC_EXIT_USAGE;
    } else {
        fprintf(stderr, CMD ": WARNING: --insecure: the connection is neither encrypted nor "
                            "authenticated\n");
    }
    if (!c.name) {
        if (gethostname(args->host, sizeof args->host - 1) != 0 || !args->host[0]) {
            cli_error(CMD, "--name is required (the host name is not available)");
            return FEDC_EXIT_USAGE;
        }
        c.name = args->host;
    }
    size_t nl = strlen(c.name);
    int ok = nl >= 1 && nl <= 64;
    for (size_t i = 0; ok && i < nl; i++)
        ok = c.name[i] >= 0x21 && c.name[i] <= 0x7e;
    if (!ok) {
        cli_error(CMD,
                  "--name: expected 1..64 printable ASCII characters without spaces, got "
                  "'%s'",
                  c.name);
        return FEDC_EXIT_USAGE;
    }
    if (strcmp(task, "regression") == 0)
        c.force_regression = 1;
    else if (strcmp(task, "auto") != 0) {
        cli_error(CMD, "--task: expected auto or regression, got '%s'", task);
        return FEDC_EXIT_USAGE;
    }
    if (drop && cli_str_list(CMD, "--drop", drop, &args->drop_list, &c.n_drop))
        return FEDC_EXIT_USAGE;
    c.drop = args->drop_list;
    c.coordinator_timeout_s = cto;
    c.max_msg = (size_t)max_msg_mb << 20;
    cli_setup_threads(c.threads);

    args->cfg = c;
    return -1;
}

void fedc_client_args_release(client_args *args) {
    cli_free_list(args->drop_list);
    fedc_key_wipe(&args->self);
    free(args->peers);
    memset(args, 0, sizeof *args);
}
