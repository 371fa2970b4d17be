/* Crash recovery: the checkpoint written after every round (core/fl's fedc/checkpoint.h has the
 * file), --resume restoring the run from it (checked against this run's flags), the wait for the
 * clients of the interrupted run, and the restart that finds every round done. */
#include "coord_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/checkpoint.h"
#include "fedc/clock.h"
#include "fedc/transport.h"

int save_checkpoint(coord *co, const char *line) {
    if (!co->cfg->checkpoint_dir)
        return 0;
    fedc_ckpt c;
    memset(&c, 0, sizeof c);
    memcpy(c.run_id, co->run_id, sizeof c.run_id);
    c.round = co->round;
    c.seed = co->cfg->seed;
    c.have_stats = co->have_stats;
    c.pos_weight = co->pos_weight;
    c.total_rows = co->total_rows;
    /* A strategy of the embedder's keeps its own state: the checkpoint records --server-opt's kind
     * with no optimiser state for it. */
    c.server_kind = co->srv ? co->srv->cfg.kind : co->cfg->server.kind;
    c.server_t = co->srv ? co->srv->t : 0;
    c.n = co->n_params;
    c.m = co->srv ? co->srv->m : NULL;
    c.v = co->srv ? co->srv->v : NULL;
    c.metrics_line = (char *)line;
    c.model = co->model;
    char *names[MAX_CLIENTS];
    for (int i = 0; i < co->n_cl; i++)
        if (co->cl[i].alive && !co->cl[i].gone)
            names[c.n_clients++] = co->cl[i].name;
    c.clients = names;
    fedc_diag d;
    if (fedc_ckpt_save(co->ckpt_path, &c, &d)) {
        logm("cannot write the checkpoint: %s", d.msg);
        return -1;
    }
    return 0;
}

void drop_expect(coord *co) {
    for (int i = 0; i < co->n_expect; i++)
        free(co->expect[i]);
    free(co->expect);
    co->expect = NULL;
    co->n_expect = 0;
}

/* 1 while a resumed run still waits for clients of the interrupted one. */
int awaiting_resumed(coord *co) {
    if (!co->n_expect)
        return 0;
    int missing = 0;
    for (int i = 0; i < co->n_expect; i++) {
        client *c = find_name(co, co->expect[i]);
        missing += !c || !c->alive || c->gone;
    }
    if (!missing || fedc_clock_s() - co->resumed_at > co->cfg->heartbeat_timeout_s) {
        if (missing)
            logm("%d client(s) of the interrupted run did not come back within %.0f s; going on",
                 missing, co->cfg->heartbeat_timeout_s);
        drop_expect(co);
        return 0;
    }
    return 1;
}

static int same_arch(const fedc_arch *a, const coord_cfg *cfg, char *why, size_t cap) {
    if ((a->n_layers == 0) != (cfg->model_external != 0)) {
        snprintf(why, cap, "it holds %s, this run was started %s",
                 a->n_layers ? "fedc's MLP" : "the clients' own model",
                 cfg->model_external ? "with --model external" : "for fedc's MLP");
        return 0;
    }
    if (cfg->model_external)
        return 1;
    if (a->n_layers != cfg->n_hidden + 1) {
        snprintf(why, cap, "%d hidden layers, --layers gives %d", a->n_layers - 1, cfg->n_hidden);
        return 0;
    }
    for (int i = 0; i < cfg->n_hidden; i++) {
        if (a->sizes[i + 1] != cfg->hidden[i]) {
            snprintf(why, cap, "hidden layer %d has %d units, --layers gives %d", i + 1,
                     a->sizes[i + 1], cfg->hidden[i]);
            return 0;
        }
    }
    if (a->hidden_act != cfg->act) {
        snprintf(why, cap, "activation %s, --activation gives %s", fedc_act_name(a->hidden_act),
                 fedc_act_name(cfg->act));
        return 0;
    }
    return 1;
}

/* Loads the checkpoint when resuming. Returns 0 (state restored or fresh start), or an exit code.
 */
int restore_checkpoint(coord *co, char **ckpt_line) {
    *ckpt_line = NULL;
    fedc_ckpt c;
    fedc_diag d;
    fedc_err rc = fedc_ckpt_load(co->ckpt_path, &c, &d);
    if (rc == FEDC_EIO && errno == ENOENT) {
        logm("--resume: no checkpoint in %s; starting a new run", co->cfg->checkpoint_dir);
        return 0;
    }
    if (rc) {
        logm("--resume: %s", d.msg);
        return 2;
    }
    char why[512];
    if (!same_arch(&c.model->arch, co->cfg, why, sizeof why)) {
        logm("--resume: the checkpoint's model has %s; start with the same architecture or "
             "without --resume",
             why);
        fedc_ckpt_release(&c);
        return 2;
    }
    if (c.seed != co->cfg->seed) {
        logm("--resume: the checkpoint was made with --seed %llu, not %llu",
             (unsigned long long)c.seed, (unsigned long long)co->cfg->seed);
        fedc_ckpt_release(&c);
        return 2;
    }
    if (c.server_kind != co->cfg->server.kind) {
        logm("--resume: the checkpoint used --server-opt %s, not %s",
             fedc_server_name(c.server_kind), fedc_server_name(co->cfg->server.kind));
        fedc_ckpt_release(&c);
        return 2;
    }
    memcpy(co->run_id, c.run_id, sizeof co->run_id);
    co->model = c.model;
    c.model = NULL;
    if (alloc_round_state(co)) {
        fedc_ckpt_release(&c);
        return 1;
    }
    if (msg_cap_too_small(co, co->n_params, co->n_features, eval_msg_bytes(co), why, sizeof why)) {
        logm("--resume: %s", why);
        fedc_ckpt_release(&c);
        return 2;
    }
    if (co->srv) {
        co->srv->t = c.server_t;
        if (c.m && co->srv->m)
            memcpy(co->srv->m, c.m, 4 * c.n);
        if (c.v && co->srv->v)
            memcpy(co->srv->v, c.v, 4 * c.n);
    }
    co->have_stats = c.have_stats;
    co->pos_weight = c.pos_weight;
    co->total_rows = c.total_rows;
    if (co->cfg->secagg && co->have_stats && !(co->total_rows > 0)) {
        /* An older checkpoint lacks the row total that weighs secure updates: redo round 0. */
        logm("--resume: the checkpoint predates secure aggregation; round 0 runs again");
        co->have_stats = 0;
    }
    co->round = c.round + 1;
    /* Wait for the clients of the interrupted run before selecting, so the round picks from the
     * same set as it would have without the crash. */
    co->expect = c.clients;
    co->n_expect = c.n_clients;
    c.clients = NULL;
    c.n_clients = 0;
    co->resumed_at = fedc_clock_s();
    /* Client-level DP: the accountant's settings travel in the last metrics line. */
    int drc = agg_restore(co, c.metrics_line, c.round);
    if (drc) {
        fedc_ckpt_release(&c);
        return drc;
    }
    best_restore(co, c.metrics_line); /* the best round so far travels there too */
    *ckpt_line = c.metrics_line;
    c.metrics_line = NULL;
    fedc_ckpt_release(&c);
    logm("resuming run after round %u from %s", co->round - 1, co->ckpt_path);
    return 0;
}

/* A restart that finds every round in the checkpoint (the last crash came after the last
 * checkpoint) still owes the clients their "run complete": they keep heartbeating into the
 * endpoint, so for one heartbeat timeout every peer that shows up gets that Bye. */
void say_run_complete(coord *co) {
    const coord_cfg *cfg = co->cfg;
    fedc_diag d;
    if (open_endpoint(co, &d)) {
        logm("--bind: %s; clients still waiting for the end of the run will time out", d.msg);
        return;
    }
    logm("listening on %s to tell clients that show up within %.0f s that the run is complete",
         fedc_net_endpoint(co->ep), cfg->heartbeat_timeout_s);
    fedc_msg m;
    env_init(co, &m, FEDC_MSG_BYE, co->round - 1);
    m.bye.reason = "run complete";
    m.bye.code = FEDC_BYE_COMPLETE;
    double end = fedc_clock_s() + cfg->heartbeat_timeout_s;
    for (double t = fedc_clock_s(); !coord_stopping(co) && t < end; t = fedc_clock_s()) {
        unsigned ready = 0;
        if (fedc_net_wait(co->ep, -1, 0, poll_ms(t + MAX_SLEEP_S < end ? t + MAX_SLEEP_S : end, t),
                          &ready, &d)) {
            logm("%s", d.msg);
            break;
        }
        for (int k = 0; ready && k < 1024; k++) {
            fedc_inbox in;
            fedc_msg_expect x = {0};
            x.round = -1;
            x.max_bytes = cfg->max_msg;
            fedc_err rc = fedc_net_recv(co->ep, &in, &x, 0, &d);
            if (rc == FEDC_EEMPTY)
                break;
            if (rc != FEDC_EIO && in.from.len && fedc_net_send_msg(co->ep, &in.from, &m, NULL, &d))
                logm("cannot say goodbye: %s", d.msg);
            fedc_inbox_release(&in);
        }
    }
}
