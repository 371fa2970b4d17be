/* The coordinator's side of a secure sum: it relays keys and sealed shares it cannot open, adds
 * masked vectors to one running sum as they arrive, and removes the masks once the survivors
 * reveal their shares (core/fl/sa_proto.h has the protocol, coord_int.h the entry points). Each
 * step closes when every expected client answered or died, or at its deadline; the set of
 * clients only shrinks (U1 >= U2 >= U3). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "coord_int.h"
#include "fedc/fault.h"

static const char *stage_name(int stage) {
    return stage == FEDC_SA_STAGE_STATS ? "statistics"
           : stage == FEDC_SA_STAGE_FIT ? "training"
                                        : "evaluation";
}

static uint32_t session_round(const coord *co) {
    return co->sa.stage == FEDC_SA_STAGE_STATS ? 0u : co->round;
}

void sa_stop(coord *co) {
    sa_session *s = &co->sa;
    if (s->have_srv)
        fedc_sa_server_free(&s->srv);
    free(s->member);
    /* The stage and the quantiser outlive the session: sa_finished decodes with them. */
    int stage = s->stage;
    fedc_sa_quant q = s->q;
    memset(s, 0, sizeof *s);
    s->stage = stage;
    s->q = q;
}

void sa_start(coord *co, int stage, size_t len) {
    sa_stop(co);
    sa_session *s = &co->sa;
    s->active = 1;
    s->stage = stage;
    s->step = 0;
    s->len = len;
    s->counter = fedc_sa_counter(stage == FEDC_SA_STAGE_STATS ? 0u : co->round, co->retries, stage);
    fedc_diag d;
    /* The settings were checked at start-up (main.c), so this cannot fail. */
    if (fedc_sa_quant_make(&s->q, (uint32_t)co->cfg->sa_max_clients, co->cfg->sa_clip, &d))
        logm("%s", d.msg);
    s->deadline = s->end = now_s() + co->cfg->round_timeout_s;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        c->sa_in = c->sa_adv_ok = c->sa_answered = c->sa_quit = 0;
        c->sa_id = -1;
    }
}

static void fail(coord *co, const char *why) {
    logm("round %u: secure aggregation of the %s failed: %s", session_round(co),
         stage_name(co->sa.stage), why);
    sa_stop(co);
    sa_finished(co, NULL, 0);
}

static int cmp_name(const void *a, const void *b) {
    const client *x = *(client *const *)a, *y = *(client *const *)b;
    return strcmp(x->name, y->name);
}

/* The fewest clients a session may end with: the stage's own minimum, and never fewer than the
 * Shamir threshold (checked by the server), so that an aggregate always covers several. */
static int stage_min(const coord *co) {
    if (co->sa.stage == FEDC_SA_STAGE_FIT)
        return co->cfg->min_fit_clients;
    if (co->sa.stage == FEDC_SA_STAGE_STATS)
        return co->cfg->min_clients;
    return 1;
}

/* forge: relay a round key of our own for one neighbour (a test of the clients' roster check,
 * FEDC_FAULT misbehave:sa-forge). */
static void send_share_ins(coord *co, client *c, int forge) {
    sa_session *s = &co->sa;
    const int *row = fedc_sa_server_nbrs(&s->srv, (uint32_t)c->sa_id);
    int size = s->srv.size;
    Fedc__SaPeer *peers = calloc((size_t)size, sizeof *peers);
    Fedc__SaPeer **pp = calloc((size_t)size, sizeof *pp);
    if (!peers || !pp) {
        free(peers);
        free(pp);
        mark_dead(co, c, "could not be sent its neighbours (out of memory)");
        return;
    }
    for (int i = 0; i < size; i++) {
        const client *v = s->member[row[i]];
        fedc__sa_peer__init(&peers[i]);
        peers[i].id = (uint32_t)row[i];
        peers[i].name = (char *)v->name;
        peers[i].pk_c.data = (uint8_t *)v->sa_adv.pk_c;
        peers[i].pk_c.len = 32;
        peers[i].pk_s.data = (uint8_t *)v->sa_adv.pk_s;
        peers[i].pk_s.len = 32;
        peers[i].sig.data = (uint8_t *)v->sa_adv.sig;
        peers[i].sig.len = FEDC_SA_SIG_BYTES;
        pp[i] = &peers[i];
    }
    uint8_t fake_pk[32], fake_sk[32];
    for (int i = 0; forge && i < size; i++) {
        if (row[i] == c->sa_id)
            continue;
        crypto_box_keypair(fake_pk, fake_sk);
        sodium_memzero(fake_sk, sizeof fake_sk);
        peers[i].pk_s.data = fake_pk;
        logm("misbehaving (fault injection): relaying a forged round key of %s to %s",
             peers[i].name, c->name);
        break;
    }
    Fedc__Envelope m;
    Fedc__SaShareIns si = FEDC__SA_SHARE_INS__INIT;
    env_init(co, &m, session_round(co));
    si.counter = s->counter;
    si.id = (uint32_t)c->sa_id;
    si.threshold = (uint32_t)s->srv.t;
    si.n_peers = (size_t)size;
    si.peers = pp;
    m.body_case = FEDC__ENVELOPE__BODY_SA_SHARE_INS;
    m.sa_share_ins = &si;
    (void)send_to(co, c, &m);
    free(peers);
    free(pp);
}

/* Step 0 closed: number the clients that advertised (by name) and send each its neighbours. */
static void open_shares(coord *co) {
    sa_session *s = &co->sa;
    client **list = malloc(sizeof(client *) * MAX_CLIENTS);
    fedc_sa_adv *adv = malloc(sizeof *adv * MAX_CLIENTS);
    if (!list || !adv) {
        free(list);
        free(adv);
        fail(co, "out of memory");
        return;
    }
    int n = 0;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (c->sa_in && c->sa_adv_ok && !c->sa_quit && c->alive && !c->gone)
            list[n++] = c;
    }
    qsort(list, (size_t)n, sizeof *list, cmp_name);
    char why[FEDC_DIAG_MAX + 64];
    if (n < stage_min(co) || n < 1) {
        snprintf(why, sizeof why, "%d client(s) sent round keys, %d needed", n, stage_min(co));
        free(list);
        free(adv);
        fail(co, why);
        return;
    }
    for (int i = 0; i < n; i++)
        adv[i] = list[i]->sa_adv;
    fedc_diag d;
    if (fedc_sa_server_new(&s->srv, n, co->cfg->sa_neighbours, co->cfg->sa_threshold, co->cfg->seed,
                           co->run_id, s->counter, adv, s->len, &d)) {
        free(list);
        free(adv);
        fail(co, d.msg);
        return;
    }
    free(adv);
    s->have_srv = 1;
    s->member = list;
    s->n = n;
    for (int i = 0; i < n; i++) {
        list[i]->sa_id = i;
        list[i]->sa_answered = 0;
    }
    for (int i = 0; i < co->n_cl; i++)
        if (co->cl[i].sa_id < 0)
            co->cl[i].sa_answered = 1; /* not in the session */
    int forge = fedc_fault_point("sa-forge", session_round(co));
    for (int i = 0; i < n; i++)
        send_share_ins(co, list[i], forge && i == 0);
    s->step = 1;
    s->deadline = now_s() + co->cfg->round_timeout_s;
    if (s->deadline > s->end)
        s->end = s->deadline;
}

static int need_min(const coord *co) {
    int m = stage_min(co);
    return m > co->sa.srv.t ? m : co->sa.srv.t;
}

/* Step 1 closed (U2 fixed): hand each member of U2 the boxes its neighbours sealed for it. */
static void open_masking(coord *co) {
    sa_session *s = &co->sa;
    char why[160];
    if (s->srv.n_u2 < need_min(co)) {
        snprintf(why, sizeof why, "%d client(s) shared their keys, %d needed", s->srv.n_u2,
                 need_min(co));
        fail(co, why);
        return;
    }
    fedc_sa_sealed *boxes = malloc(sizeof *boxes * (size_t)s->srv.size);
    Fedc__SaSealed *msg = malloc(sizeof *msg * (size_t)s->srv.size);
    Fedc__SaSealed **mp = malloc(sizeof *mp * (size_t)s->srv.size);
    if (!boxes || !msg || !mp) {
        free(boxes);
        free(msg);
        free(mp);
        fail(co, "out of memory");
        return;
    }
    for (int id = 0; id < s->n; id++) {
        client *c = s->member[id];
        c->sa_answered = !fedc_sa_server_in_u2(&s->srv, (uint32_t)id);
        if (c->sa_answered)
            continue;
        int k = fedc_sa_server_routed(&s->srv, (uint32_t)id, boxes);
        for (int j = 0; j < k; j++) {
            fedc__sa_sealed__init(&msg[j]);
            msg[j].from = boxes[j].from;
            msg[j].to = boxes[j].to;
            msg[j].ct.data = boxes[j].ct;
            msg[j].ct.len = FEDC_SA_SHARE_CT;
            mp[j] = &msg[j];
        }
        Fedc__Envelope m;
        Fedc__SaMaskIns mi = FEDC__SA_MASK_INS__INIT;
        env_init(co, &m, session_round(co));
        mi.counter = s->counter;
        mi.n_shares = (size_t)k;
        mi.shares = mp;
        m.body_case = FEDC__ENVELOPE__BODY_SA_MASK_INS;
        m.sa_mask_ins = &mi;
        (void)send_to(co, c, &m);
    }
    free(boxes);
    free(msg);
    free(mp);
    s->step = 2;
    s->deadline = s->end; /* masked inputs come after the clients' work (training) */
}

/* Step 2 closed (U3 fixed): tell each member of U3 who survived and who dropped. */
static void open_unmask(coord *co) {
    sa_session *s = &co->sa;
    char why[160];
    if (s->srv.n_u3 < need_min(co)) {
        snprintf(why, sizeof why, "%d masked input(s) arrived, %d needed", s->srv.n_u3,
                 need_min(co));
        fail(co, why);
        return;
    }
    uint32_t *sv = malloc(4 * (size_t)s->srv.size), *dr = malloc(4 * (size_t)s->srv.size);
    if (!sv || !dr) {
        free(sv);
        free(dr);
        fail(co, "out of memory");
        return;
    }
    int dropped = 0, both = fedc_fault_point("sa-both", session_round(co));
    for (int id = 0; id < s->n; id++) {
        client *c = s->member[id];
        dropped += fedc_sa_server_in_u2(&s->srv, (uint32_t)id) &&
                   !fedc_sa_server_in_u3(&s->srv, (uint32_t)id);
        c->sa_answered = !fedc_sa_server_in_u3(&s->srv, (uint32_t)id);
        if (c->sa_answered)
            continue;
        int ns, nd;
        fedc_sa_server_unmask_lists(&s->srv, (uint32_t)id, sv, &ns, dr, &nd);
        if (both) { /* test only: ask for both share kinds of one surviving neighbour */
            for (int j = 0; j < ns; j++) {
                if (sv[j] != (uint32_t)id) {
                    dr[nd++] = sv[j];
                    logm("misbehaving (fault injection): asking %s for both share kinds of %s",
                         c->name, s->member[sv[j]]->name);
                    break;
                }
            }
            both = 0;
        }
        Fedc__Envelope m;
        Fedc__SaUnmaskIns ui = FEDC__SA_UNMASK_INS__INIT;
        env_init(co, &m, session_round(co));
        ui.counter = s->counter;
        ui.n_survivors = (size_t)ns;
        ui.survivors = sv;
        ui.n_dropped = (size_t)nd;
        ui.dropped = dr;
        m.body_case = FEDC__ENVELOPE__BODY_SA_UNMASK_INS;
        m.sa_unmask_ins = &ui;
        (void)send_to(co, c, &m);
    }
    free(sv);
    free(dr);
    if (dropped)
        logm("round %u: %d client(s) dropped after sharing their keys; their masks are removed "
             "with their neighbours' shares",
             session_round(co), dropped);
    s->step = 3;
    s->deadline = now_s() + co->cfg->round_timeout_s;
}

static void close_session(coord *co) {
    sa_session *s = &co->sa;
    fedc_diag d;
    if (fedc_sa_server_finish(&s->srv, &d)) {
        fail(co, d.msg);
        return;
    }
    int n = s->srv.n_u3;
    if (s->stage == FEDC_SA_STAGE_FIT)
        for (int id = 0; id < s->n; id++)
            s->member[id]->fit_counted = fedc_sa_server_in_u3(&s->srv, (uint32_t)id);
    /* sa_finished may start the next stage's session, which replaces this one: detach first. */
    fedc_sa_server srv = s->srv;
    s->have_srv = 0;
    sa_stop(co);
    sa_finished(co, srv.sum, n);
    fedc_sa_server_free(&srv);
}

static int expected(const coord *co, const client *c) {
    const sa_session *s = &co->sa;
    if (c->sa_quit)
        return 0;
    if (s->step == 0)
        return c->sa_in;
    if (c->sa_id < 0)
        return 0;
    if (s->step == 1)
        return 1;
    if (s->step == 2)
        return fedc_sa_server_in_u2(&s->srv, (uint32_t)c->sa_id);
    return fedc_sa_server_in_u3(&s->srv, (uint32_t)c->sa_id);
}

void sa_advance(coord *co) {
    sa_session *s = &co->sa;
    if (!s->active)
        return;
    double t = now_s();
    int waiting = 0;
    for (int i = 0; i < co->n_cl; i++) {
        const client *c = &co->cl[i];
        waiting += expected(co, c) && !c->sa_answered && c->alive && !c->gone;
    }
    if (waiting && t < s->deadline)
        return;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (expected(co, c) && !c->sa_answered && c->alive && !c->gone)
            mark_dead(co, c, "missed a secure-aggregation deadline");
    }
    switch (s->step) {
    case 0:
        open_shares(co);
        break;
    case 1:
        open_masking(co);
        break;
    case 2:
        open_unmask(co);
        break;
    default:
        close_session(co);
        break;
    }
}

void sa_client_out(coord *co, client *c) {
    /* Out of the whole session: not awaited in any later step (a dropout from here on). */
    if (co->sa.active) {
        c->sa_quit = 1;
        c->sa_answered = 1;
    }
}

static void refuse(coord *co, client *c, const Fedc__Envelope *e, fedc_err code, const char *why) {
    logm("%s: %s refused: %s", c->name, fedc_msg_body_name(e->body_case), why);
    fedc_net_send_error(co->ep, &c->peer, co->run_id, e->round, code, why);
}

/* The session counter a message names (every session message carries one). */
static uint32_t msg_counter(const Fedc__Envelope *e) {
    switch (e->body_case) {
    case FEDC__ENVELOPE__BODY_SA_KEYS:
        return e->sa_keys->counter;
    case FEDC__ENVELOPE__BODY_SA_SHARES:
        return e->sa_shares->counter;
    case FEDC__ENVELOPE__BODY_SA_MASKED:
        return e->sa_masked->counter;
    case FEDC__ENVELOPE__BODY_SA_UNMASK:
        return e->sa_unmask->counter;
    default:
        return 0xffffffffu;
    }
}

void sa_on_msg(coord *co, client *c, const fedc_inbox *in) {
    const Fedc__Envelope *e = in->msg;
    sa_session *s = &co->sa;
    char why[FEDC_DIAG_MAX + 96];
    if (!s->active || msg_counter(e) != s->counter || e->round != session_round(co)) {
        snprintf(why, sizeof why,
                 "session %u of round %u is not the current one (%s): stale or replayed",
                 msg_counter(e), e->round, s->active ? "another session is open" : "none is open");
        refuse(co, c, e, FEDC_EMISMATCH, why);
        return;
    }
    int want = e->body_case == FEDC__ENVELOPE__BODY_SA_KEYS     ? 0
               : e->body_case == FEDC__ENVELOPE__BODY_SA_SHARES ? 1
               : e->body_case == FEDC__ENVELOPE__BODY_SA_MASKED ? 2
                                                                : 3;
    if (want != s->step || !expected(co, c) || c->sa_answered) {
        snprintf(why, sizeof why, "not expected now (step %d of the session, this is step %d%s)",
                 s->step, want, c->sa_answered ? ", answered already" : "");
        refuse(co, c, e, FEDC_EMISMATCH, why);
        return;
    }
    fedc_diag d;
    fedc_err rc = FEDC_OK;
    c->sa_answered = 1; /* one answer per step, accepted or not */
    switch (e->body_case) {
    case FEDC__ENVELOPE__BODY_SA_KEYS: {
        const Fedc__SaKeys *k = e->sa_keys;
        memcpy(c->sa_adv.pk_c, k->pk_c.data, 32);
        memcpy(c->sa_adv.pk_s, k->pk_s.data, 32);
        memcpy(c->sa_adv.sig, k->sig.data, FEDC_SA_SIG_BYTES);
        c->sa_adv_ok = 1;
        return;
    }
    case FEDC__ENVELOPE__BODY_SA_SHARES: {
        const Fedc__SaShares *sh = e->sa_shares;
        fedc_sa_sealed *b = malloc(sizeof *b * (sh->n_shares ? sh->n_shares : 1));
        if (!b) {
            refuse(co, c, e, FEDC_ENOMEM, "out of memory");
            return;
        }
        for (size_t j = 0; j < sh->n_shares; j++) {
            b[j].from = sh->shares[j]->from;
            b[j].to = sh->shares[j]->to;
            memcpy(b[j].ct, sh->shares[j]->ct.data, FEDC_SA_SHARE_CT);
        }
        rc = fedc_sa_server_shares(&s->srv, (uint32_t)c->sa_id, b, (int)sh->n_shares, &d);
        free(b);
        break;
    }
    case FEDC__ENVELOPE__BODY_SA_MASKED: {
        if (e->sa_masked->count != s->len) {
            snprintf(why, sizeof why, "%llu values, the session sums %zu",
                     (unsigned long long)e->sa_masked->count, s->len);
            refuse(co, c, e, FEDC_EMISMATCH, why);
            return;
        }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* The raw frame is the vector; add it in place when aligned. */
        if (((uintptr_t)in->raw % _Alignof(uint32_t)) == 0) {
            rc = fedc_sa_server_masked(&s->srv, (uint32_t)c->sa_id,
                                       (const uint32_t *)(const void *)in->raw, &d);
            break;
        }
#endif
        uint32_t *y = malloc(4 * (s->len ? s->len : 1));
        if (!y) {
            refuse(co, c, e, FEDC_ENOMEM, "out of memory");
            return;
        }
        for (size_t i = 0; i < s->len; i++) {
            const uint8_t *p = in->raw + 4 * i;
            y[i] =
                (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        }
        rc = fedc_sa_server_masked(&s->srv, (uint32_t)c->sa_id, y, &d);
        free(y);
        break;
    }
    default: {
        const Fedc__SaUnmask *u = e->sa_unmask;
        fedc_sa_reveal *r = malloc(sizeof *r * (u->n_shares ? u->n_shares : 1));
        if (!r) {
            refuse(co, c, e, FEDC_ENOMEM, "out of memory");
            return;
        }
        for (size_t j = 0; j < u->n_shares; j++) {
            r[j].owner = u->shares[j]->owner;
            r[j].kind = (int)u->shares[j]->kind;
            memcpy(r[j].share, u->shares[j]->share.data, 32);
        }
        rc = fedc_sa_server_reveal(&s->srv, (uint32_t)c->sa_id, r, (int)u->n_shares, &d);
        free(r);
        break;
    }
    }
    if (rc)
        refuse(co, c, e, rc, d.msg);
}
