/* fedc-coordinator --upstream: the edge's flags (edge.h), checked against the coordinator's. An
 * edge runs what its upstream asks, so the flags that would run a schedule, a server step or
 * noise of its own are refused with the reason instead of being ignored. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_args.h"
#include "edge.h"
#include "options.h"

#define CMD "fedc-coordinator"

/* The first edge-only flag given, or NULL. */
static const char *edge_only_given(const fedc_opts *o) {
    static const struct {
        fedc_opt_id id;
        const char *flag;
    } only[] = {{FEDC_O_NAME, "--name"},
                {FEDC_O_COORDINATOR_KEY, "--coordinator-key"},
                {FEDC_O_PEERS, "--peers"},
                {FEDC_O_HEARTBEAT_MS, "--heartbeat-ms"},
                {FEDC_O_COORDINATOR_TIMEOUT, "--coordinator-timeout"}};
    for (size_t i = 0; i < sizeof only / sizeof only[0]; i++)
        if (fedc_opt_given(o, only[i].id))
            return only[i].flag;
    return NULL;
}

/* What an edge cannot do, with the reason; NULL when c is fine for an edge. */
static const char *edge_refusal(const coord_cfg *c, const fedc_opts *o) {
    if (c->checkpoint_dir || c->resume)
        return "--checkpoint-dir/--resume: an edge keeps no model of its own between rounds (each "
               "round starts from the upstream's); the root's checkpoint holds the run, and a "
               "restarted edge rejoins it";
    if (c->dp_clip > 0 || fedc_opt_given(o, FEDC_O_DP_NOISE) ||
        fedc_opt_given(o, FEDC_O_TARGET_EPSILON))
        return "client-level DP (--dp-clip, --dp-noise, --target-epsilon) belongs to the root, "
               "whose noise covers the sum over all edges once; noise added at each edge would "
               "be charged nowhere";
    if (fedc_opt_given(o, FEDC_O_SERVER_OPT) || fedc_opt_given(o, FEDC_O_SERVER_LR) ||
        fedc_opt_given(o, FEDC_O_SERVER_MOMENTUM))
        return "--server-opt/--server-lr/--server-momentum: the server step is the root's; an "
               "edge forwards its clients' plain weighted mean";
    if (c->agg.kind != FEDC_AGG_MEAN)
        return "--aggregator: an edge forwards its clients' weighted mean (FedAvg); a robust rule "
               "or a norm bound belongs to the root";
    if (c->patience || c->best_model_out)
        return "--patience/--best-model-out: the root picks the best round";
    if (c->init_weights)
        return "--init-weights: an edge trains from the upstream's model";
    if (c->async_mode)
        return "--mode async: an edge answers each upstream round with one round of its clients; "
               "run the root asynchronously instead";
    if (c->strategy)
        return "an embedder's strategy: an edge forwards its clients' weighted mean";
    return NULL;
}

int fedc_edge_args(edge_cfg *e, const coord_cfg *c, const fedc_opts *o) {
    memset(e, 0, sizeof *e);
    const char *up = o->v[FEDC_O_UPSTREAM].text;
    if (!up) {
        const char *flag = edge_only_given(o);
        if (flag) {
            cli_error(CMD, "%s applies to an edge aggregator only (with --upstream ENDPOINT)",
                      flag);
            return FEDC_EXIT_USAGE;
        }
        return 0;
    }
    const char *why = edge_refusal(c, o);
    if (why) {
        cli_error(CMD, "--upstream (an edge aggregator) cannot take %s", why);
        return FEDC_EXIT_USAGE;
    }
    e->upstream = up;
    e->heartbeat_ms = (int)o->v[FEDC_O_HEARTBEAT_MS].i;
    if (e->heartbeat_ms > 0 && e->heartbeat_ms < 10) {
        cli_error(CMD, "--heartbeat-ms: expected 0 (as the upstream asks) or 10..600000, got %d",
                  e->heartbeat_ms);
        return FEDC_EXIT_USAGE;
    }
    e->upstream_timeout_s = o->v[FEDC_O_COORDINATOR_TIMEOUT].r;
    const char *name = o->v[FEDC_O_NAME].text;
    const char *up_key = o->v[FEDC_O_COORDINATOR_KEY].text, *peers = o->v[FEDC_O_PEERS].text;
    if (c->insecure) {
        if (up_key || peers) {
            cli_error(CMD, "--insecure contradicts %s", up_key ? "--coordinator-key" : "--peers");
            return FEDC_EXIT_USAGE;
        }
        if (!name) {
            cli_error(CMD,
                      "--upstream with --insecure needs --name NAME: the edge's name upstream");
            return FEDC_EXIT_USAGE;
        }
        e->name = name;
    } else {
        if (!up_key || !peers) {
            cli_error(CMD,
                      "--upstream needs %s: the edge joins its upstream with its own --key, "
                      "pinning the upstream's public key (--coordinator-key) and checking the "
                      "upstream roster's round keys (--peers)",
                      !up_key ? "--coordinator-key" : "--peers");
            return FEDC_EXIT_USAGE;
        }
        fedc_diag d;
        if (fedc_key_load_secret(&e->self, c->key_path, &d)) {
            cli_error(CMD, "--key: %s", d.msg);
            return FEDC_EXIT_USAGE;
        }
        if (fedc_key_load_public(&e->up, up_key, &d)) {
            cli_error(CMD, "--coordinator-key: %s", d.msg);
            edge_cfg_release(e);
            return FEDC_EXIT_USAGE;
        }
        fedc_key_wipe(&e->up); /* its public key is all we need */
        if (fedc_key_load_dir(&e->peers, &e->n_peers, peers, &d)) {
            cli_error(CMD, "--peers: %s", d.msg);
            edge_cfg_release(e);
            return FEDC_EXIT_USAGE;
        }
        if (name && strcmp(name, e->self.name) != 0) {
            cli_error(CMD,
                      "--name '%s' differs from the name in --key ('%s'): the upstream knows the "
                      "edge by its key",
                      name, e->self.name);
            edge_cfg_release(e);
            return FEDC_EXIT_USAGE;
        }
        e->name = e->self.name;
        e->peers_dir = peers;
    }
    size_t nl = strlen(e->name);
    int ok = nl >= 1 && nl <= 64;
    for (size_t i = 0; ok && i < nl; i++)
        ok = e->name[i] >= 0x21 && e->name[i] <= 0x7e;
    if (!ok) {
        cli_error(CMD, "--name: expected 1..64 printable ASCII characters without spaces, got '%s'",
                  e->name);
        edge_cfg_release(e);
        return FEDC_EXIT_USAGE;
    }
    return 0;
}
