/* The coordinator's side of a secure sum: it relays keys, commitments, sealed shares and
 * signatures it cannot forge or open, adds masked vectors to one running sum as they arrive, and
 * removes the masks once the survivors reveal their shares (core/fl/sa_proto.h has the protocol,
 * docs/security.md the argument, coord_int.h the entry points). It checks every member's round
 * keys against the allow-list before relaying them, so one member with bad keys is dropped at
 * once instead of making every honest client refuse the round. Each step closes when every
 * expected client answered or died, or at its deadline; the set of clients only shrinks. */
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
    stream_reset(co);
    sa_session *s = &co->sa;
    s->active = 1;
    s->stage = stage;
    s->step = SA_KEYS;
    s->len = len;
    s->split_victim = -1;
    uint32_t attempt = (uint32_t)co->retries + co->sa_attempt_skip;
    if (attempt > FEDC_SA_MAX_ATTEMPT)
        attempt = FEDC_SA_MAX_ATTEMPT; /* main.c caps --max-retries well below */
    if (co->sa_wrap && attempt > 0) {
        /* Test only (sa-wrap): the previous attempt's counter again, as an attempt number cut to
         * 8 bits did after 256 retries. */
        attempt--;
        co->sa_wrap = 0;
        logm("misbehaving (fault injection): reusing session counter attempt %u", attempt);
    }
    s->counter = fedc_sa_counter(stage == FEDC_SA_STAGE_STATS ? 0u : co->round, attempt, stage);
    fedc_diag d;
    /* The settings were checked at start-up (main.c), so this cannot fail. */
    if (fedc_sa_quant_make(&s->q, (uint32_t)co->cfg->sa_max_clients, co->cfg->sa_clip, &d))
        logm("%s", d.msg);
    s->deadline = s->end = fedc_clock_s() + co->cfg->round_timeout_s;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        c->sa_in = c->sa_adv_ok = c->sa_answered = c->sa_quit = 0;
        c->sa_id = -1;
    }
}

/* The secure-aggregation settings an instruction carries: those of the session just opened. */
void sa_fill_ins(coord *co, fedc_secagg_ins *si) {
    si->counter = co->sa.counter;
    si->max_clients = (uint32_t)co->cfg->sa_max_clients;
    si->clip = co->cfg->sa_clip;
    si->total_rows = co->total_rows;
    si->hold = 0;
}

static void fail(coord *co, const char *why) {
    int spent = co->sa.unmask_sent || co->sa.refused_unmasked > 0;
    logm("round %u: secure aggregation of the %s failed: %s%s", session_round(co),
         stage_name(co->sa.stage), why,
         spent ? " (shares may have been revealed: this stage is not retried)" : "");
    if (co->sa.counter_ahead) {
        /* A member's counter is ahead of ours (we resumed after a crash): go past it. */
        uint64_t ours = co->sa.counter;
        if ((co->sa.counter_ahead >> 24) == (ours >> 24))
            co->sa_attempt_skip += (uint32_t)((co->sa.counter_ahead & FEDC_SA_MAX_ATTEMPT) -
                                              (ours & FEDC_SA_MAX_ATTEMPT)) +
                                   1;
    }
    sa_stop(co);
    sa_finished(co, NULL, 0, spent);
}

static int cmp_name(const void *a, const void *b) {
    const client *x = *(client *const *)a, *y = *(client *const *)b;
    return strcmp(x->name, y->name);
}

/* The stage's own minimum of results: --min-clients for round 0, --min-fit-clients for
 * training (at most --buffer under --mode async), one for evaluation (the threshold below keeps
 * every sum over several). */
static int stage_min(const coord *co) {
    if (co->sa.stage == FEDC_SA_STAGE_FIT && co->cfg->async_mode) {
        /* A session among the K clients holding an update (async_sa.c): --min-fit-clients, but
         * never more than K (then it goes on only without dropouts). */
        int k = buffer_k(co);
        return co->cfg->min_fit_clients < k ? co->cfg->min_fit_clients : k;
    }
    if (co->sa.stage == FEDC_SA_STAGE_FIT)
        return co->cfg->min_fit_clients;
    if (co->sa.stage == FEDC_SA_STAGE_STATS)
        return min_clients_now(co);
    return 1;
}

/* The fewest participants a session may start with: the floor (clients refuse smaller
 * neighbourhoods anyway) and the stage's minimum. */
static int start_min(const coord *co) {
    int m = stage_min(co);
    return m > co->cfg->sa_min_nbrs ? m : co->cfg->sa_min_nbrs;
}

/* misbehave: forge relays a round key of our own for one neighbour (sa-forge); one sends the
 * client a neighbourhood of itself with threshold 1 (sa-one). Tests watch the client refuse. */
static void send_share_ins(coord *co, client *c, int forge, int one) {
    sa_session *s = &co->sa;
    const int *row = fedc_sa_server_nbrs(&s->srv, (uint32_t)c->sa_id);
    int size = s->srv.size;
    fedc_sa_peer *peers = calloc((size_t)size, sizeof *peers);
    if (!peers) {
        mark_dead(co, c, "could not be sent its neighbours (out of memory)");
        return;
    }
    for (int i = 0; i < size; i++) {
        const client *v = s->member[row[i]];
        peers[i].id = (uint32_t)row[i];
        peers[i].name = v->name;
        peers[i].adv = v->sa_adv;
    }
    uint8_t fake_sk[32];
    for (int i = 0; forge && i < size; i++) {
        if (row[i] == c->sa_id)
            continue;
        crypto_box_keypair(peers[i].adv.pk_s, fake_sk);
        sodium_memzero(fake_sk, sizeof fake_sk);
        logm("misbehaving (fault injection): relaying a forged round key of %s to %s",
             peers[i].name, c->name);
        break;
    }
    fedc_msg m;
    env_init(co, &m, FEDC_MSG_SA_SHARE_INS, session_round(co));
    fedc_sa_share_ins *si = &m.sa_share_ins;
    si->counter = s->counter;
    si->id = (uint32_t)c->sa_id;
    si->threshold = (uint32_t)s->srv.t;
    si->n_peers = (size_t)size;
    si->peers = peers;
    si->n = (uint32_t)s->n;
    si->h = (uint32_t)s->srv.h;
    si->n_reveals = s->srv.graph ? (size_t)s->n : 0;
    si->reveals = s->srv.graph ? s->srv.reveals : NULL;
    if (one) {
        for (int i = 0; i < size; i++)
            if (row[i] == c->sa_id)
                si->peers = &peers[i];
        si->n_peers = 1;
        si->threshold = 1;
        si->n = 1;
        si->n_reveals = 0;
        si->reveals = NULL;
        logm("misbehaving (fault injection): sending %s a neighbourhood of itself alone", c->name);
    }
    (void)send_to(co, c, &m);
    free(peers);
}

static void open_shares(coord *co) {
    sa_session *s = &co->sa;
    for (int id = 0; id < s->n; id++)
        s->member[id]->sa_answered = 0;
    int forge = fedc_fault_point("sa-forge", session_round(co));
    int one = fedc_fault_point("sa-one", session_round(co));
    for (int i = 0; i < s->n; i++)
        send_share_ins(co, s->member[i], forge && i == 0, one && i == 0);
    s->step = SA_SHARES;
    s->deadline = fedc_clock_s() + co->cfg->round_timeout_s;
    if (s->deadline > s->end)
        s->end = s->deadline;
}

/* Graph mode: every participant gets the list of names and the digest of the commitments, and
 * reveals its r. */
static void open_graph(coord *co) {
    sa_session *s = &co->sa;
    const char **names = calloc((size_t)s->n, sizeof *names);
    uint8_t *commits = malloc(32 * (size_t)s->n), digest[32];
    if (!names || !commits) {
        free(names);
        free(commits);
        fail(co, "out of memory");
        return;
    }
    for (int i = 0; i < s->n; i++) {
        names[i] = s->member[i]->name;
        memcpy(commits + 32 * (size_t)i, s->member[i]->sa_adv.commit, 32);
    }
    fedc_sa_commits_digest(digest, commits, s->n);
    free(commits);
    for (int i = 0; i < s->n; i++) {
        fedc_msg m;
        env_init(co, &m, FEDC_MSG_SA_GRAPH_INS, session_round(co));
        m.sa_graph_ins.counter = s->counter;
        m.sa_graph_ins.id = (uint32_t)i;
        m.sa_graph_ins.h = (uint32_t)s->srv.h;
        m.sa_graph_ins.n_members = (size_t)s->n;
        m.sa_graph_ins.names = names;
        m.sa_graph_ins.commits_digest = digest;
        s->member[i]->sa_answered = 0;
        (void)send_to(co, s->member[i], &m);
    }
    free(names);
    s->step = SA_GRAPH;
    s->deadline = fedc_clock_s() + co->cfg->round_timeout_s;
}

/* Step 0 closed: number the clients that advertised valid keys (by name), then either the graph
 * step or the shares step. */
static void close_keys(coord *co) {
    sa_session *s = &co->sa;
    if (fedc_fault_point("sa-wrap", session_round(co))) {
        co->sa_wrap = 1;
        fail(co, "misbehaving (fault injection): dropping the session to reuse its counter");
        return;
    }
    client **list = malloc(sizeof(client *) * MAX_CLIENTS);
    fedc_sa_adv *adv = malloc(sizeof *adv * MAX_CLIENTS);
    const char **names = malloc(sizeof(char *) * MAX_CLIENTS);
    if (!list || !adv || !names) {
        free(list);
        free(adv);
        free(names);
        fail(co, "out of memory");
        return;
    }
    int n = 0;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (c->sa_in && c->sa_adv_ok && !c->sa_quit && c->alive && !c->gone && !c->excluded)
            list[n++] = c;
    }
    qsort(list, (size_t)n, sizeof *list, cmp_name);
    char why[FEDC_DIAG_MAX + 64];
    if (n < start_min(co)) {
        snprintf(why, sizeof why,
                 "%d client(s) sent valid round keys, %d needed (--secagg-min-neighbours %d)", n,
                 start_min(co), co->cfg->sa_min_nbrs);
        free(list);
        free(adv);
        free(names);
        fail(co, why);
        return;
    }
    for (int i = 0; i < n; i++) {
        adv[i] = list[i]->sa_adv;
        names[i] = list[i]->name;
    }
    fedc_diag d;
    fedc_err rc = fedc_sa_server_new(&s->srv, n, co->cfg->sa_neighbours, co->cfg->sa_threshold,
                                     co->run_id, s->counter, adv, names, s->len, &d);
    free(adv);
    free(names);
    if (rc) {
        free(list);
        fail(co, d.msg);
        return;
    }
    s->have_srv = 1;
    s->member = list;
    s->n = n;
    for (int i = 0; i < n; i++)
        list[i]->sa_id = i;
    for (int i = 0; i < co->n_cl; i++)
        if (co->cl[i].sa_id < 0)
            co->cl[i].sa_answered = 1; /* not in the session */
    if (s->srv.graph)
        open_graph(co);
    else
        open_shares(co);
}

/* The fewest shares and masked inputs a session may go on with: the stage's minimum, and never
 * fewer than the Shamir threshold, so that an aggregate always covers several clients and 3
 * clients still survive one dropout (t = 2). */
static int need_min(const coord *co) {
    int m = stage_min(co);
    return m > co->sa.srv.t ? m : co->sa.srv.t;
}

/* Graph step closed: every participant must have revealed (the graph hashes all reveals); a
 * member that did not is left out of the retry like any dropout. */
static void close_graph(coord *co) {
    sa_session *s = &co->sa;
    if (!fedc_sa_server_graph_ready(&s->srv)) {
        char why[96];
        snprintf(why, sizeof why, "%d of %d participants revealed their graph randomness",
                 s->srv.n_r, s->n);
        fail(co, why);
        return;
    }
    open_shares(co);
}

/* Step 2 closed (U2 fixed): hand each member of U2 the boxes its neighbours sealed for it. */
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
    if (!boxes) {
        fail(co, "out of memory");
        return;
    }
    for (int id = 0; id < s->n; id++) {
        client *c = s->member[id];
        c->sa_answered = !fedc_sa_server_in_u2(&s->srv, (uint32_t)id);
        if (c->sa_answered)
            continue;
        int k = fedc_sa_server_routed(&s->srv, (uint32_t)id, boxes);
        fedc_msg m;
        env_init(co, &m, FEDC_MSG_SA_MASK_INS, session_round(co));
        m.sa_mask_ins.counter = s->counter;
        m.sa_mask_ins.n_shares = (size_t)k;
        m.sa_mask_ins.shares = boxes;
        (void)send_to(co, c, &m);
    }
    free(boxes);
    s->step = SA_MASKED;
    /* Masked inputs come after the clients' work (training), which began with the session:
     * the round's deadline, but never less than one timeout from now, so that a member that
     * held up an earlier step does not cut the others' time short. */
    double t = fedc_clock_s() + co->cfg->round_timeout_s;
    s->deadline = s->end > t ? s->end : t;
}

/* Step 3 closed (U3 fixed): a stage with fewer masked inputs than needed is abandoned before
 * anything is revealed; otherwise every member of U3 is asked to sign U3. */
static void open_consist(coord *co) {
    sa_session *s = &co->sa;
    char why[160];
    if (s->srv.n_u3 < need_min(co)) {
        snprintf(why, sizeof why, "%d masked input(s) arrived, %d needed", s->srv.n_u3,
                 need_min(co));
        fail(co, why);
        return;
    }
    uint32_t *u3 = malloc(4 * (size_t)s->n), *alt = malloc(4 * (size_t)s->n);
    if (!u3 || !alt) {
        free(u3);
        free(alt);
        fail(co, "out of memory");
        return;
    }
    int n_u3 = fedc_sa_server_u3(&s->srv, u3);
    fedc_sa_server_view(&s->srv, s->view);
    /* Test only (sa-split): tell the first survivor a survivor set without the last one, so that
     * it would reveal that member's key share while the others reveal its self-mask share. */
    int split = fedc_fault_point("sa-split", session_round(co)) && n_u3 > 1;
    for (int id = 0; id < s->n; id++) {
        client *c = s->member[id];
        c->sa_answered = !fedc_sa_server_in_u3(&s->srv, (uint32_t)id);
        if (c->sa_answered)
            continue;
        fedc_msg m;
        env_init(co, &m, FEDC_MSG_SA_CONSIST_INS, session_round(co));
        fedc_sa_consist_ins *ci = &m.sa_consist_ins;
        ci->counter = s->counter;
        ci->n_survivors = (size_t)n_u3;
        ci->survivors = u3;
        if (split && (uint32_t)id == u3[0]) {
            memcpy(alt, u3, 4 * (size_t)(n_u3 - 1));
            ci->n_survivors = (size_t)(n_u3 - 1);
            ci->survivors = alt;
            logm("misbehaving (fault injection): telling %s that %s dropped", c->name,
                 s->member[u3[n_u3 - 1]]->name);
            s->split_victim = id; /* its signature is relayed unchecked, as a liar would */
        }
        (void)send_to(co, c, &m);
    }
    free(u3);
    free(alt);
    s->step = SA_CONSIST;
    s->deadline = fedc_clock_s() + co->cfg->round_timeout_s;
}

/* Step 4 closed: relay to each signer the signatures around its neighbours; from here on shares
 * may be revealed, so this (round, stage) is spent whatever happens next. */
static void open_unmask(coord *co) {
    sa_session *s = &co->sa;
    char why[160];
    if (s->srv.n_u4 < s->srv.t) {
        snprintf(why, sizeof why, "%d member(s) signed the survivor set, the threshold is %d",
                 s->srv.n_u4, s->srv.t);
        fail(co, why);
        return;
    }
    fedc_sa_sig *sg = malloc(sizeof *sg * (size_t)s->n);
    if (!sg) {
        fail(co, "out of memory");
        return;
    }
    int dropped = 0;
    for (int id = 0; id < s->n; id++) {
        client *c = s->member[id];
        dropped += fedc_sa_server_in_u2(&s->srv, (uint32_t)id) &&
                   !fedc_sa_server_in_u3(&s->srv, (uint32_t)id);
        c->sa_answered = !fedc_sa_server_in_u4(&s->srv, (uint32_t)id);
        if (c->sa_answered)
            continue;
        int k = fedc_sa_server_sigs_for(&s->srv, (uint32_t)id, sg);
        fedc_msg m;
        env_init(co, &m, FEDC_MSG_SA_UNMASK_INS, session_round(co));
        m.sa_unmask_ins.counter = s->counter;
        m.sa_unmask_ins.n_sigs = (size_t)k;
        m.sa_unmask_ins.sigs = sg;
        (void)send_to(co, c, &m);
    }
    free(sg);
    s->unmask_sent = 1;
    if (dropped)
        logm("round %u: %d client(s) dropped after sharing their keys; their masks are removed "
             "with their neighbours' shares",
             session_round(co), dropped);
    s->step = SA_UNMASK;
    s->deadline = fedc_clock_s() + co->cfg->round_timeout_s;
}

static void close_session(coord *co) {
    sa_session *s = &co->sa;
    fedc_diag d;
    if (fedc_sa_server_finish(&s->srv, &d)) {
        fail(co, d.msg);
        return;
    }
    if (s->stage == FEDC_SA_STAGE_FIT && fedc_fault_point("sa-retry", session_round(co))) {
        /* Test only: keep the unmasked sum and run the round again, hoping for a sum without
         * one client to subtract (the clients refuse a second unmask of the stage). */
        logm("misbehaving (fault injection): discarding round %u's unmasked training sum and "
             "retrying the round",
             co->round);
        sa_stop(co);
        sa_finished(co, NULL, 0, 0);
        return;
    }
    int n = s->srv.n_u3;
    for (int id = 0; id < s->n; id++)
        if (fedc_sa_server_in_u3(&s->srv, (uint32_t)id))
            completed_exchange(s->member[id]); /* its input is in a finished sum */
    if (s->stage == FEDC_SA_STAGE_FIT)
        for (int id = 0; id < s->n; id++)
            s->member[id]->fit_counted = fedc_sa_server_in_u3(&s->srv, (uint32_t)id);
    /* sa_finished may start the next stage's session, which replaces this one: detach first. */
    fedc_sa_server srv = s->srv;
    s->have_srv = 0;
    sa_stop(co);
    sa_finished(co, srv.sum, n, 1);
    fedc_sa_server_free(&srv);
}

static int expected(const coord *co, const client *c) {
    const sa_session *s = &co->sa;
    if (c->sa_quit)
        return 0;
    if (s->step == SA_KEYS)
        return c->sa_in;
    if (c->sa_id < 0)
        return 0;
    switch (s->step) {
    case SA_GRAPH:
    case SA_SHARES:
        return 1;
    case SA_MASKED:
        return fedc_sa_server_in_u2(&s->srv, (uint32_t)c->sa_id);
    case SA_CONSIST:
        return fedc_sa_server_in_u3(&s->srv, (uint32_t)c->sa_id);
    default:
        return fedc_sa_server_in_u4(&s->srv, (uint32_t)c->sa_id);
    }
}

void sa_advance(coord *co) {
    sa_session *s = &co->sa;
    if (!s->active)
        return;
    double t = fedc_clock_s();
    /* Before the deadline, one member still awaited is enough to wait on: the scan stops there
     * (this runs after every batch of messages; a whole scan each time grew with the square of
     * the client count: 4 % of the main thread at 1,000 clients, perf). */
    int waiting = 0;
    for (int i = 0; i < co->n_cl && !(waiting && t < s->deadline); i++) {
        const client *c = &co->cl[i];
        waiting += expected(co, c) && !c->sa_answered && c->alive && !c->gone;
    }
    if (waiting && t < s->deadline)
        return;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (expected(co, c) && !c->sa_answered && c->alive && !c->gone)
            miss_deadline(co, c, "missed a secure-aggregation deadline");
    }
    switch (s->step) {
    case SA_KEYS:
        close_keys(co);
        break;
    case SA_GRAPH:
        close_graph(co);
        break;
    case SA_SHARES:
        open_masking(co);
        break;
    case SA_MASKED:
        if (stream_masked_spoilt(co)) {
            /* A member's input was added in part and never finished: no usable sum. Nothing
             * was revealed yet, so the stage is retried like any failed session. */
            stream_reset(co);
            fail(co, "a member's masked input was cut off after some of its chunks were added");
            break;
        }
        stream_reset(co);
        open_consist(co);
        break;
    case SA_CONSIST:
        open_unmask(co);
        break;
    default:
        close_session(co);
        break;
    }
}

static const char *refusal_name(uint32_t r) {
    switch (r) {
    case FEDC_SA_REFUSE_BAD_KEYS:
        return "bad round keys";
    case FEDC_SA_REFUSE_NOT_LISTED:
        return "not in its roster";
    case FEDC_SA_REFUSE_COUNTER:
        return "session counter not going forward";
    case FEDC_SA_REFUSE_UNMASKED:
        return "stage unmasked already";
    case FEDC_SA_REFUSE_FLOOR:
        return "below its floor";
    case FEDC_SA_REFUSE_TOO_FEW:
        return "too few neighbours or signatures";
    default:
        return "protocol";
    }
}

void sa_client_out(coord *co, client *c, const fedc_error *err) {
    sa_session *s = &co->sa;
    if (!s->active)
        return;
    /* Out of the whole session: not awaited in any later step (a dropout from here on). */
    c->sa_quit = 1;
    c->sa_answered = 1;
    if (!err || !err->sa_refusal)
        return;
    if (err->sa_refusal == FEDC_SA_REFUSE_UNMASKED)
        s->refused_unmasked++;
    if (err->sa_refusal == FEDC_SA_REFUSE_COUNTER && err->sa_counter > s->counter &&
        err->sa_counter > s->counter_ahead)
        s->counter_ahead = err->sa_counter;
    for (size_t i = 0; i < err->n_sa_blame && s->have_srv; i++) {
        uint32_t id = err->sa_blame[i];
        if (id >= (uint32_t)s->n || s->member[id] == c)
            continue;
        client *v = s->member[id];
        char why[FEDC_NAME_MAX + 96];
        if (err->sa_refusal == FEDC_SA_REFUSE_NOT_LISTED)
            snprintf(why, sizeof why,
                     "is not in %s's roster (--peers): the rosters differ from the allow-list",
                     c->name);
        else
            snprintf(why, sizeof why, "was refused by %s (%s)", c->name,
                     refusal_name(err->sa_refusal));
        if (err->sa_refusal == FEDC_SA_REFUSE_NOT_LISTED ||
            err->sa_refusal == FEDC_SA_REFUSE_BAD_KEYS)
            exclude_member(co, v, why);
    }
}

static void refuse(coord *co, client *c, const fedc_msg *e, fedc_err code, const char *why) {
    logp(co, &c->peer, c->name, "%s: %s refused: %s", c->name, fedc_msg_kind_name(e->kind), why);
    fedc_net_send_error(co->ep, &c->peer, co->run_id, e->round, code, why);
}

/* The session counter a message names (every session message carries one). */
static uint64_t msg_counter(const fedc_msg *e) {
    switch (e->kind) {
    case FEDC_MSG_SA_KEYS:
        return e->sa_keys.counter;
    case FEDC_MSG_SA_GRAPH:
        return e->sa_graph.counter;
    case FEDC_MSG_SA_SHARES:
        return e->sa_shares.counter;
    case FEDC_MSG_SA_MASKED:
        return e->sa_masked.counter;
    case FEDC_MSG_SA_CONSIST:
        return e->sa_consist.counter;
    case FEDC_MSG_SA_UNMASK:
        return e->sa_unmask.counter;
    default:
        return UINT64_MAX;
    }
}

static int msg_step(const fedc_msg *e) {
    switch (e->kind) {
    case FEDC_MSG_SA_KEYS:
        return SA_KEYS;
    case FEDC_MSG_SA_GRAPH:
        return SA_GRAPH;
    case FEDC_MSG_SA_SHARES:
        return SA_SHARES;
    case FEDC_MSG_SA_MASKED:
        return SA_MASKED;
    case FEDC_MSG_SA_CONSIST:
        return SA_CONSIST;
    default:
        return SA_UNMASK;
    }
}

/* Step 0: the member's keys must carry its identity's signature for this session, or it is out
 * now (and until it joins again) instead of making its neighbours refuse the round later. */
static void on_keys(coord *co, client *c, const fedc_sa_keys *k) {
    c->sa_adv = k->adv;
    const uint8_t *pk = allow_key(co, c->name);
    if (co->secure &&
        (!pk || fedc_sa_adv_verify(&c->sa_adv, pk, co->run_id, co->sa.counter, c->name))) {
        exclude_member(co, c, "sent round keys that its identity did not sign for this session");
        c->sa_quit = 1;
        return;
    }
    c->sa_adv_ok = 1;
}

/* Step 4: a signature the members would not accept is dropped here, so that it cannot make an
 * honest member count short. */
static fedc_err on_consist(coord *co, client *c, const fedc_sa_consist *m, fedc_diag *d) {
    sa_session *s = &co->sa;
    const uint8_t *pk = allow_key(co, c->name);
    if (co->secure && c->sa_id != s->split_victim) {
        uint32_t *u3 = malloc(4 * (size_t)s->n);
        if (!u3) {
            fedc_diag_set(d, "out of memory");
            return FEDC_ENOMEM;
        }
        int n_u3 = fedc_sa_server_u3(&s->srv, u3);
        fedc_err rc = pk ? fedc_sa_consist_verify(m->sig, pk, s->srv.sid, (uint32_t)c->sa_id,
                                                  s->view, u3, n_u3)
                         : FEDC_ECHECKSUM;
        free(u3);
        if (rc) {
            fedc_diag_set(d, "its signature on the survivor set does not verify");
            return rc;
        }
    }
    return fedc_sa_server_consist(&s->srv, (uint32_t)c->sa_id, m->sig, d);
}

void sa_on_msg(coord *co, client *c, const fedc_msg *e) {
    sa_session *s = &co->sa;
    char why[FEDC_DIAG_MAX + 96];
    if (!s->active || msg_counter(e) != s->counter || e->round != session_round(co)) {
        snprintf(why, sizeof why,
                 "session %llu of round %u is not the current one (%s): stale or replayed",
                 (unsigned long long)msg_counter(e), e->round,
                 s->active ? "another session is open" : "none is open");
        refuse(co, c, e, FEDC_EMISMATCH, why);
        return;
    }
    int want = msg_step(e);
    if (want != s->step || !expected(co, c) || c->sa_answered || c->up_stream) {
        snprintf(why, sizeof why, "not expected now (step %d of the session, this is step %d%s)",
                 s->step, want, c->sa_answered ? ", answered already" : "");
        refuse(co, c, e, FEDC_EMISMATCH, why);
        return;
    }
    fedc_diag d;
    fedc_err rc = FEDC_OK;
    c->sa_answered = 1; /* one answer per step, accepted or not */
    switch (e->kind) {
    case FEDC_MSG_SA_KEYS:
        on_keys(co, c, &e->sa_keys);
        return;
    case FEDC_MSG_SA_GRAPH:
        rc = fedc_sa_server_graph_r(&s->srv, (uint32_t)c->sa_id, e->sa_graph.r, &d);
        break;
    case FEDC_MSG_SA_SHARES:
        rc = fedc_sa_server_shares(&s->srv, (uint32_t)c->sa_id, e->sa_shares.shares,
                                   (int)e->sa_shares.n_shares, &d);
        break;
    case FEDC_MSG_SA_MASKED: {
        const fedc_sa_masked *sm = &e->sa_masked;
        if (sm->count != s->len) {
            snprintf(why, sizeof why, "%llu values, the session sums %zu",
                     (unsigned long long)sm->count, s->len);
            refuse(co, c, e, FEDC_EMISMATCH, why);
            return;
        }
        if (sm->streamed) {
            /* Pulled chunk by chunk into the sum: in U3 (answered) once the last is in. */
            c->sa_answered = 0;
            stream_sa_masked(co, c, e);
            return;
        }
        const uint8_t *raw = sm->values;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* The raw frame is the vector; add it in place when aligned. */
        if (((uintptr_t)raw % _Alignof(uint32_t)) == 0) {
            rc = fedc_sa_server_masked(&s->srv, (uint32_t)c->sa_id,
                                       (const uint32_t *)(const void *)raw, &d);
            break;
        }
#endif
        uint32_t *y = malloc(4 * (s->len ? s->len : 1));
        if (!y) {
            refuse(co, c, e, FEDC_ENOMEM, "out of memory");
            return;
        }
        for (size_t i = 0; i < s->len; i++) {
            const uint8_t *p = raw + 4 * i;
            y[i] =
                (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        }
        rc = fedc_sa_server_masked(&s->srv, (uint32_t)c->sa_id, y, &d);
        free(y);
        break;
    }
    case FEDC_MSG_SA_CONSIST:
        rc = on_consist(co, c, &e->sa_consist, &d);
        break;
    default:
        rc = fedc_sa_server_reveal(&s->srv, (uint32_t)c->sa_id, e->sa_unmask.shares,
                                   (int)e->sa_unmask.n_shares, &d);
        break;
    }
    if (rc)
        refuse(co, c, e, rc, d.msg);
}
