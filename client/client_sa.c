/* The client's side of secure aggregation: a session opened for every instruction that carries
 * its settings (fresh signed round keys at once), the graph reveal, the shares for the neighbours
 * (checked against --peers), the masked input once both our vector and the neighbours' shares are
 * here, the signature on the survivor set and the unmasking; any failure leaves the session with
 * a refusal code and the neighbour blamed. Plain requests are refused unless --secagg off. */
#include "client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fedc/fault.h"

static void send_error_sa(cl *c, uint32_t round, fedc_err code, const char *reason,
                          uint32_t refusal, int64_t blame, uint64_t counter) {
    fedc_msg m;
    uint32_t b = (uint32_t)(blame < 0 ? 0 : blame);
    cl_env_init(c, &m, FEDC_MSG_ERROR, round);
    m.error.code = code;
    m.error.reason = reason;
    m.error.sa_refusal = refusal;
    m.error.n_sa_blame = blame >= 0 ? 1 : 0;
    m.error.sa_blame = &b;
    m.error.sa_counter = counter;
    (void)cl_send_msg(c, &m);
}

static void send_error(cl *c, uint32_t round, fedc_err code, const char *reason) {
    send_error_sa(c, round, code, reason, 0, -1, 0);
}

/* Ends the session we are in, telling the coordinator why with a refusal code and the neighbour
 * blamed (so it does not wait for us and can retry without that neighbour). */
void cl_sa_abandon(cl *c, const char *why) {
    char reason[FEDC_DIAG_MAX + 64];
    /* The maths' own messages may name secure aggregation already: say it once. */
    const char *prefix = "secure aggregation: ";
    snprintf(reason, sizeof reason, "%s%s", strncmp(why, prefix, strlen(prefix)) ? prefix : "",
             why);
    cl_logm(c, "round %u: %s", c->sa_round, reason);
    uint32_t refusal = c->sa.refusal ? (uint32_t)c->sa.refusal : FEDC_SA_REFUSE_PROTOCOL;
    uint64_t counter = refusal == FEDC_SA_REFUSE_COUNTER ? c->sa.guard.last : c->sa_counter;
    send_error_sa(c, c->sa_round, FEDC_EINVAL, reason, refusal, c->sa.blame, counter);
    fedc_sa_client_end(&c->sa);
    c->sa_on = 0;
}

/* The roster lookup the protocol uses to check neighbours' signatures. */
static const uint8_t *roster_key(void *ctx, const char *name) {
    const cl *c = ctx;
    for (int i = 0; i < c->n_peers; i++)
        if (strcmp(c->peers[i].name, name) == 0)
            return c->peers[i].sign_pk;
    return NULL;
}

static const char *self_name(const cl *c) {
    return c->cfg->self ? c->cfg->self->name : c->cfg->name;
}

/* Refuses a plain request unless --secagg off: returns 1 when refused (we then exit 2). */
int cl_plain_refused(cl *c, uint32_t round, const char *what) {
    if (c->cfg->allow_plain)
        return 0;
    char reason[256];
    snprintf(reason, sizeof reason,
             "refused: %s without secure aggregation; this client sends its %s only masked "
             "(start the coordinator with --secagg on, or this client with --secagg off)",
             what, round == 0 ? "statistics" : "update and evaluation");
    cl_logm(c, "the coordinator asked for a plain %s; %s", what, reason);
    send_error(c, round, FEDC_EINVAL, reason);
    return 1;
}

void cl_sa_vec_drop(cl *c) {
    if (c->up_stream == FEDC_STREAM_MASKED)
        cl_stream_withdraw(c); /* sa_vec, which it was served from, goes */
    if (!c->sa_job)
        free(c->sa_vec);
    c->sa_vec = NULL;
    c->sa_job = 0;
}

/* Opens a session for an instruction that carries secure-aggregation settings: fresh round keys,
 * signed with our identity, go out at once. Returns -1 when it cannot. */
int cl_sa_open(cl *c, uint32_t round, int stage, const fedc_secagg_ins *si, size_t len) {
    fedc_diag d;
    fedc_sa_client_end(&c->sa);
    c->sa.min_nbrs = c->cfg->sa_min_nbrs;
    c->sa.roster = c->cfg->self ? roster_key : NULL;
    c->sa.roster_ctx = c;
    cl_sa_vec_drop(c);
    c->sa_on = 0;
    cl_apply_peers(c); /* a reloaded roster checks this session's round keys */
    c->sa_ready = c->sa_collected = c->sa_sent = 0;
    c->sa_held = 0;
    if (fedc_sa_quant_make(&c->sa_q, si->max_clients, si->clip, &d)) {
        cl_logm(c, "round %u: %s", round, d.msg);
        return -1;
    }
    /* A training's input is encoded in place of its update (job.buf, cl_on_training_done);
     * statistics and evaluation counts, which are small, get a vector of their own. */
    if (stage != FEDC_SA_STAGE_FIT)
        c->sa_vec = malloc(4 * (len ? len : 1));
    if (stage != FEDC_SA_STAGE_FIT && !c->sa_vec) {
        cl_logm(c, "out of memory for the secure-aggregation vector");
        return -1;
    }
    fedc_sa_adv adv;
    c->sa_round = round;
    c->sa_counter = si->counter;
    if (fedc_sa_client_begin(&c->sa, c->run_id, si->counter, self_name(c),
                             c->cfg->self ? c->cfg->self->sign_sk : NULL, &adv, &d)) {
        cl_sa_abandon(c, d.msg);
        return -1;
    }
    if (fedc_fault_point("sa-badkeys", round)) {
        adv.sig[0] ^= 1; /* test only: round keys our identity did not sign */
        cl_logm(c, "misbehaving (fault injection): advertising round keys with a bad signature");
    }
    c->sa_on = 1;
    c->sa_stage = stage;
    c->sa_len = len;
    c->sa_total_rows = si->total_rows;
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_SA_KEYS, round);
    m.sa_keys.counter = si->counter;
    m.sa_keys.adv = adv;
    (void)cl_send_msg(c, &m);
    return 0;
}

/* Sends the masked input once both our vector and our neighbours' shares are here. */
static void sa_try_send(cl *c) {
    if (!c->sa_on || !c->sa_ready || !c->sa_collected || c->sa_sent)
        return;
    fedc_diag d;
    if (fedc_sa_client_mask(&c->sa, c->sa_vec, c->sa_len, &d)) {
        cl_sa_abandon(c, d.msg);
        return;
    }
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_SA_MASKED, c->sa_round);
    m.sa_masked.counter = c->sa_counter;
    m.sa_masked.count = c->sa_len;
    m.sa_masked.values = c->sa_vec;
#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
    for (size_t i = 0; i < c->sa_len; i++) { /* the wire is little-endian */
        uint32_t v = c->sa_vec[i];
        uint8_t *p = (uint8_t *)&c->sa_vec[i];
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
    }
#endif
    if (c->sa_last && fedc_fault_point("sa-replay", c->sa_round)) {
        /* Test only: an earlier session's masked input again; the coordinator must refuse it. */
        fedc_msg old = m;
        old.round = c->sa_last_round;
        old.sa_masked.counter = c->sa_last_counter;
        old.sa_masked.count = c->sa_last_len;
        old.sa_masked.values = c->sa_last;
        cl_logm(c, "misbehaving (fault injection): replaying the masked input of session %llu",
                (unsigned long long)c->sa_last_counter);
        (void)cl_send_msg(c, &old);
    }
    if (cl_stream_up(c, c->sa_len)) {
        /* Pulled by the coordinator chunk by chunk from sa_vec (kept until the next session). */
        m.sa_masked.values = NULL;
        m.sa_masked.streamed = 1;
        cl_stream_offer(c, FEDC_STREAM_MASKED, c->sa_round, c->sa_counter, c->sa_vec, c->sa_len);
    }
    (void)cl_send_msg(c, &m);
    c->sa_sent = 1;
    uint32_t *keep =
        fedc_fault_armed("sa-replay") ? realloc(c->sa_last, 4 * (c->sa_len ? c->sa_len : 1)) : NULL;
    if (keep) {
        memcpy(keep, c->sa_vec, 4 * c->sa_len);
        c->sa_last = keep;
        c->sa_last_len = c->sa_len;
        c->sa_last_counter = c->sa_counter;
        c->sa_last_round = c->sa_round;
    }
}

/* Our input for the session is computed (encoded into c->sa_vec by the caller or failed). */
void cl_sa_input_ready(cl *c, fedc_err rc, const char *why) {
    if (rc) {
        cl_sa_abandon(c, why);
        return;
    }
    c->sa_ready = 1;
    sa_try_send(c);
}

static int sa_current(cl *c, const fedc_msg *e, uint64_t counter) {
    if (c->sa_on && counter == c->sa_counter && e->round == c->sa_round)
        return 1;
    cl_logm(c, "ignored %s for session %llu of round %u: not our current session",
            fedc_msg_kind_name(e->kind), (unsigned long long)counter, e->round);
    return 0;
}

void cl_on_sa_graph_ins(cl *c, const fedc_msg *e) {
    const fedc_sa_graph_ins *gi = &e->sa_graph_ins;
    if (!sa_current(c, e, gi->counter))
        return;
    uint8_t r[32];
    fedc_diag d;
    if (fedc_sa_client_graph(&c->sa, gi->id, (int)gi->n_members, (int)gi->h, gi->names,
                             gi->commits_digest, r, &d)) {
        cl_sa_abandon(c, d.msg);
        return;
    }
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_SA_GRAPH, e->round);
    m.sa_graph.counter = gi->counter;
    m.sa_graph.r = r;
    (void)cl_send_msg(c, &m);
}

void cl_on_sa_share_ins(cl *c, const fedc_msg *e) {
    const fedc_sa_share_ins *si = &e->sa_share_ins;
    if (!sa_current(c, e, si->counter))
        return;
    if (fedc_fault_point("sa-silent", e->round) || c->sa_silent) {
        c->sa_silent = 1; /* test only: heartbeats go on, instructions go unanswered */
        cl_logm(c, "misbehaving (fault injection): leaving the neighbours' keys unanswered");
        return;
    }
    fedc_fault_point("sa-share", e->round);
    int size = (int)si->n_peers;
    fedc_sa_sealed *boxes = malloc(sizeof *boxes * (size_t)size);
    fedc_diag d;
    if (!boxes) {
        cl_sa_abandon(c, "out of memory");
        return;
    }
    if (fedc_sa_client_share(&c->sa, si->id, (int)si->n, (int)si->h, (int)si->threshold, si->peers,
                             size, si->reveals, boxes, &d)) {
        cl_sa_abandon(c, d.msg);
        free(boxes);
        return;
    }
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_SA_SHARES, e->round);
    m.sa_shares.counter = si->counter;
    m.sa_shares.n_shares = (size_t)(size - 1);
    m.sa_shares.shares = boxes;
    (void)cl_send_msg(c, &m);
    free(boxes);
}

void cl_on_sa_mask_ins(cl *c, const fedc_msg *e) {
    const fedc_sa_boxes *mi = &e->sa_mask_ins;
    if (!sa_current(c, e, mi->counter))
        return;
    fedc_fault_point("sa-mask", e->round);
    if (c->sa_stage == FEDC_SA_STAGE_FIT)
        fedc_fault_point("sa-fit-mask", e->round);
    fedc_diag d;
    fedc_err rc = fedc_sa_client_collect(&c->sa, mi->shares, (int)mi->n_shares, &d);
    if (rc) {
        cl_sa_abandon(c, d.msg);
        return;
    }
    c->sa_collected = 1;
    sa_try_send(c);
}

void cl_on_sa_consist_ins(cl *c, const fedc_msg *e) {
    const fedc_sa_consist_ins *ci = &e->sa_consist_ins;
    if (!sa_current(c, e, ci->counter))
        return;
    uint8_t sig[FEDC_SA_SIG_BYTES];
    fedc_diag d;
    if (!c->sa_sent ||
        fedc_sa_client_consist(&c->sa, ci->survivors, (int)ci->n_survivors,
                               c->cfg->self ? c->cfg->self->sign_sk : NULL, sig, &d)) {
        cl_sa_abandon(c, c->sa_sent ? d.msg : "survivor set sent before our input; refused");
        return;
    }
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_SA_CONSIST, e->round);
    m.sa_consist.counter = ci->counter;
    m.sa_consist.sig = sig;
    (void)cl_send_msg(c, &m);
}

void cl_on_sa_unmask_ins(cl *c, const fedc_msg *e) {
    const fedc_sa_unmask_ins *ui = &e->sa_unmask_ins;
    if (!sa_current(c, e, ui->counter))
        return;
    fedc_fault_point("sa-unmask", e->round);
    fedc_sa_reveal r[FEDC_SA_MAX_NBRS];
    int k = 0;
    fedc_diag d;
    if (fedc_sa_client_unmask(&c->sa, ui->sigs, (int)ui->n_sigs, r, &k, &d)) {
        cl_sa_abandon(c, d.msg);
        return;
    }
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_SA_UNMASK, e->round);
    m.sa_unmask.counter = ui->counter;
    m.sa_unmask.n_shares = (size_t)k;
    m.sa_unmask.shares = r;
    (void)cl_send_msg(c, &m);
    sodium_memzero(r, sizeof r);
    /* The session is over for us: nothing more will be revealed. */
    fedc_sa_client_end(&c->sa);
    c->sa_on = 0;
    if (c->sa_held) {
        /* Unmasked once: this update never enters another session. */
        c->have_held = c->sa_held = 0;
    }
}

void cl_on_sa_fit_ins(cl *c, const fedc_msg *e) {
    const fedc_sa_fit_ins *f = &e->sa_fit_ins;
    if (!c->have_held || c->held_round != f->trained_round) {
        char reason[200];
        if (c->have_held)
            snprintf(reason, sizeof reason,
                     "sa_fit_ins: asks for the update of round %u; we hold that of round %u",
                     f->trained_round, c->held_round);
        else
            snprintf(reason, sizeof reason,
                     "sa_fit_ins: asks for the update of round %u; we hold none (restarted, or "
                     "it was unmasked or replaced already)",
                     f->trained_round);
        cl_logm(c, "round %u: %s", e->round, reason);
        send_error(c, e->round, FEDC_EMISMATCH, reason);
        return;
    }
    if (cl_sa_open(c, e->round, FEDC_SA_STAGE_FIT, &f->secagg, fedc_sa_fit_len(c->n_params)))
        return;
    c->sa_held = 1;
    size_t n = c->n_params;
    /* cl_sa_open gives a training session no vector (a synchronous round's input is encoded in
     * place of the update, job.buf); the held update's input gets one of its own (async runs take
     * small models only: coordinator/async.c). */
    c->sa_vec = malloc(4 * fedc_sa_fit_len(n));
    c->sa_job = 0;
    float *scaled = c->sa_vec ? malloc(4 * (n ? n : 1)) : NULL;
    fedc_diag d;
    fedc_err rc = FEDC_ENOMEM;
    fedc_diag_set(&d, "out of memory scaling the held update");
    if (scaled) {
        /* FedBuff's staleness weight, public, applied before quantisation: the sum the
         * coordinator unmasks is sum w s delta over sum w. */
        for (size_t i = 0; i < n; i++)
            scaled[i] = (float)(f->staleness_weight * c->held[i]);
        rc = cl_sa_fit_input(c, scaled, n, c->held_round, c->held_loss, c->held_uniform, c->held_dp,
                             c->held_unclipped, &d);
        free(scaled);
    }
    cl_sa_input_ready(c, rc, d.msg);
}
