/* fedc-client's options: read through the option table (core/prog options.h: flags,
 * environment, --config file, defaults) and checked into a client_cfg with the keys they name
 * loaded (fedc_client_args), so that the program and an embedding (tests, a thread) configure a
 * client the same way. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "client_args.h"
#include "fedc/dp.h"
#include "fedc/httpd.h"

#define CMD "fedc-client"

static const fedc_prog_help g_help = {
    "usage: fedc-client --connect ENDPOINT --name NAME --data FILE.csv --label COLUMN [options]",
    "One participant of a federation: loads and checks its CSV (which never leaves this\n"
    "machine), joins the coordinator, and trains the global model on its rows when asked.\n"
    "Start it before or after the coordinator; it reconnects by itself if the coordinator\n"
    "restarts, and exits when the coordinator says the run is over. Its differential privacy\n"
    "options (--dp-clip, ...) are record-level DP-SGD on its own rows.",
    "Training settings (epochs, batch, learning rate, ...) come from the coordinator.\n"
    "Signals: SIGTERM or SIGINT stops (saying goodbye), SIGHUP reads --peers again.\n"
    "Exit status: 0 when the run is complete or when stopped by a signal, 1 on a runtime\n"
    "failure, 2 on bad options, bad data, or data, a key or a name the federation refuses."};

int fedc_client_args(client_args *args, int argc, char **argv) {
    memset(args, 0, sizeof *args);
    fedc_opts o;
    int prc = fedc_opts_parse(&o, FEDC_PROG_CLIENT, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
#define V(id) (o.v[FEDC_O_##id])
#define HAS(id) fedc_opt_has(&o, FEDC_O_##id)
#define GIVEN(id) fedc_opt_given(&o, FEDC_O_##id)
    client_cfg c;
    fedc_client_defaults(&c);
    c.connect = V(CONNECT).text;
    c.name = V(NAME).text;
    c.data = V(DATA).text;
    c.label = V(LABEL).text;
    const char *drop = V(DROP).text, *task = V(TASK).text;
    if (HAS(THREADS))
        c.threads = (int)V(THREADS).i;
    c.heartbeat_ms = (int)V(HEARTBEAT_MS).i;
    if (c.heartbeat_ms > 0 && c.heartbeat_ms < 10) {
        cli_error(CMD, "--heartbeat-ms: expected 0 (as the coordinator asks) or 10..600000, got %d",
                  c.heartbeat_ms);
        return FEDC_EXIT_USAGE;
    }
    float cto = (float)V(COORDINATOR_TIMEOUT).r;
    const char *key_path = V(KEY).text, *coord_key_path = V(COORDINATOR_KEY).text;
    const char *peers_dir = V(PEERS).text;
    int insecure = (int)V(INSECURE).i;
    c.quiet = (int)V(QUIET).i;
    /* choices are indices into their words: debug|info|warn|error, text|json (fedc/log.h) */
    c.log.level = (fedc_log_level)(FEDC_LOG_DEBUG + (int)V(LOG_LEVEL).i);
    c.log.format = (fedc_log_format)V(LOG_FORMAT).i;
    fedc_diag ad;
    if (fedc_aug_parse(&c.augment, V(AUGMENT).text, &ad)) {
        cli_error(CMD, "--augment: %s", ad.msg);
        return FEDC_EXIT_USAGE;
    }
    c.sa_min_nbrs = (int)V(SECAGG_MIN_NEIGHBOURS).i;
    c.allow_plain = V(SECAGG).i == 1; /* on|off */
    if (HAS(DP_CLIP))
        c.dp_clip = (float)V(DP_CLIP).r;
    if (HAS(DP_NOISE))
        c.dp_noise = (float)V(DP_NOISE).r;
    if (HAS(TARGET_EPSILON))
        c.target_epsilon = (float)V(TARGET_EPSILON).r;
    c.dp_state = V(DP_STATE).text;
    c.metrics_json = V(METRICS_JSON).text;
    c.metrics_listen = V(METRICS_LISTEN).text;
    c.dp_delta = (float)V(DP_DELTA).r;
    c.dp_poisson = V(DP_SAMPLING).i == 0; /* poisson|shuffle */
    /* DP-SGD's own settings, refused without --dp-clip when given */
    const char *dp_extra = GIVEN(DP_DELTA)      ? "--dp-delta"
                           : GIVEN(DP_SAMPLING) ? "--dp-sampling"
                                                : NULL;
    int max_msg_mb = (int)V(MAX_MSG_MB).i;
#undef V
#undef HAS
#undef GIVEN
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
    if (c.metrics_listen) {
        struct sockaddr_storage sa;
        socklen_t sl;
        fedc_diag d;
        if (fedc__http_parse(c.metrics_listen, &sa, &sl, &d)) {
            cli_error(CMD, "--metrics-listen: %s", d.msg);
            return FEDC_EXIT_USAGE;
        }
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
        c.peers_dir = peers_dir;
    } else if (key_path || coord_key_path || peers_dir) {
        cli_error(CMD, "--insecure contradicts %s",
                  key_path         ? "--key"
                  : coord_key_path ? "--coordinator-key"
                                   : "--peers");
        return FEDC_EXIT_USAGE;
    } else {
        fedc_log_write(&c.log, FEDC_LOG_WARN, CMD, c.name,
                       "--insecure: the connection is neither encrypted nor authenticated");
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
    int lrc = fedc_load_opts_get(&args->load, &o, CMD);
    if (lrc)
        return lrc;
    c.encoding = &args->load.enc;
    c.features = args->load.features;
    c.coordinator_timeout_s = cto;
    c.max_msg = (size_t)max_msg_mb << 20;
    cli_setup_threads(c.threads);

    args->cfg = c;
    return -1;
}

void fedc_client_args_release(client_args *args) {
    cli_free_list(args->drop_list);
    fedc_load_opts_release(&args->load);
    fedc_key_wipe(&args->self);
    free(args->peers);
    memset(args, 0, sizeof *args);
}
