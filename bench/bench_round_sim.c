/* bench_round's simulated clients: threads with a DEALER socket each, speaking fedc-client's
 * protocol (plain and secure, streamed tensors included) and answering every instruction at once
 * with a fixed update (bench_round.c has the measurement). */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "fedc/clock.h"
#include "fedc/codec.h"
#include "fedc/fl.h"
#include "fedc/keys.h"
#include "fedc/sa_proto.h"
#include "fedc/transport.h"

#include "bench_round.h"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0) {
    }
}

char *g_names[N_FEATURES];

static void env_init(Fedc__Envelope *m, const uint8_t *run_id, uint32_t round) {
    fedc__envelope__init(m);
    m->version = FEDC_PROTOCOL_VERSION;
    if (run_id) {
        m->run_id.data = (uint8_t *)run_id;
        m->run_id.len = FEDC_RUN_ID_BYTES;
    }
    m->round = round;
}

/* Secure aggregation as fedc-client does it (signed with the identity under --curve; without
 * a roster, so neighbours' signatures are not checked here): keys at once, the input encoded at
 * once (zero training time), graph reveals, shares, masks and consistency signatures when
 * asked. */
static int sa_begin(sim *s, fedc_endpoint *ep, const uint8_t *run_id, uint32_t round,
                    const Fedc__SecAggIns *si, int stage, const fedc_eval_acc *ev) {
    fedc_diag d;
    fedc_sa_quant q;
    if (fedc_sa_quant_make(&q, si->max_clients, si->clip, &d))
        return -1;
    size_t len = stage == FEDC_SA_STAGE_STATS ? fedc_sa_stats_len(N_FEATURES, 2)
                 : stage == FEDC_SA_STAGE_FIT ? fedc_sa_fit_len(s->n_params)
                                              : fedc_sa_eval_len(ev);
    free(s->vec);
    s->vec = malloc(4 * len);
    if (!s->vec)
        return -1;
    s->len = len;
    s->counter = si->counter;
    s->round = round;
    s->collected = s->ready = 0;
    fedc_err rc;
    if (stage == FEDC_SA_STAGE_STATS) {
        double sum[N_FEATURES] = {0}, sq[N_FEATURES];
        uint64_t cc[2] = {900, 100};
        for (int i = 0; i < N_FEATURES; i++)
            sq[i] = 1000;
        rc = fedc_sa_stats_encode(s->vec, 1000, sum, sq, N_FEATURES, cc, 2, &d);
    } else if (stage == FEDC_SA_STAGE_FIT) {
        double w = si->total_rows > 0 ? 1000.0 / si->total_rows : 1.0;
        rc =
            fedc_sa_fit_encode(s->vec, s->update, s->n_params, w > 1 ? 1 : w, 0.5, 1000, 0, &q, &d);
    } else {
        rc = fedc_sa_eval_encode(s->vec, ev, &q, &d);
    }
    fedc_sa_adv adv;
    char name[32];
    snprintf(name, sizeof name, "sim%03d", s->idx);
    if (rc || fedc_sa_client_begin(&s->sa, run_id, si->counter, s->self ? s->self->name : name,
                                   s->self ? s->self->sign_sk : NULL, &adv, &d)) {
        snprintf(s->err, sizeof s->err, "secure aggregation: %s", d.msg);
        return -1;
    }
    s->ready = 1;
    Fedc__Envelope m;
    Fedc__SaKeys k = FEDC__SA_KEYS__INIT;
    env_init(&m, run_id, round);
    k.counter = si->counter;
    k.pk_c = (ProtobufCBinaryData){32, adv.pk_c};
    k.pk_s = (ProtobufCBinaryData){32, adv.pk_s};
    k.sig = (ProtobufCBinaryData){FEDC_SA_SIG_BYTES, adv.sig};
    k.commit = (ProtobufCBinaryData){32, adv.commit};
    m.body_case = FEDC__ENVELOPE__BODY_SA_KEYS;
    m.sa_keys = &k;
    return fedc_net_send(ep, NULL, &m, NULL, 0, &d) ? -1 : 0;
}

static int sa_step(sim *s, fedc_endpoint *ep, const uint8_t *run_id, const Fedc__Envelope *e) {
    fedc_diag d;
    Fedc__Envelope m;
    env_init(&m, run_id, e->round);
    if (e->body_case == FEDC__ENVELOPE__BODY_SA_GRAPH_INS) {
        const Fedc__SaGraphIns *gi = e->sa_graph_ins;
        uint8_t r[32];
        if (fedc_sa_client_graph(&s->sa, gi->id, (int)gi->n_names, (int)gi->h,
                                 (const char *const *)gi->names, gi->commits.data, r, &d))
            goto fail;
        Fedc__SaGraph g = FEDC__SA_GRAPH__INIT;
        g.counter = gi->counter;
        g.r = (ProtobufCBinaryData){32, r};
        m.body_case = FEDC__ENVELOPE__BODY_SA_GRAPH;
        m.sa_graph = &g;
        return fedc_net_send(ep, NULL, &m, NULL, 0, &d) ? -1 : 0;
    }
    if (e->body_case == FEDC__ENVELOPE__BODY_SA_SHARE_INS) {
        const Fedc__SaShareIns *si = e->sa_share_ins;
        int size = (int)si->n_peers;
        fedc_sa_peer peers[FEDC_SA_MAX_NBRS];
        fedc_sa_sealed box[FEDC_SA_MAX_NBRS];
        Fedc__SaSealed ms[FEDC_SA_MAX_NBRS], *mp[FEDC_SA_MAX_NBRS];
        for (int i = 0; i < size; i++) {
            peers[i].id = si->peers[i]->id;
            peers[i].name = si->peers[i]->name[0] ? si->peers[i]->name : NULL;
            memcpy(peers[i].adv.pk_c, si->peers[i]->pk_c.data, 32);
            memcpy(peers[i].adv.pk_s, si->peers[i]->pk_s.data, 32);
            memset(peers[i].adv.commit, 0, 32); /* graph mode: none on the wire */
            if (si->peers[i]->commit.len == 32)
                memcpy(peers[i].adv.commit, si->peers[i]->commit.data, 32);
            memcpy(peers[i].adv.sig, si->peers[i]->sig.data, FEDC_SA_SIG_BYTES);
        }
        if (fedc_sa_client_share(&s->sa, si->id, (int)si->n, (int)si->h, (int)si->threshold, peers,
                                 size, si->reveals.len ? si->reveals.data : NULL, box, &d))
            goto fail;
        for (int j = 0; j < size - 1; j++) {
            fedc__sa_sealed__init(&ms[j]);
            ms[j].from = box[j].from;
            ms[j].to = box[j].to;
            ms[j].ct = (ProtobufCBinaryData){FEDC_SA_SHARE_CT, box[j].ct};
            mp[j] = &ms[j];
        }
        Fedc__SaShares sh = FEDC__SA_SHARES__INIT;
        sh.counter = si->counter;
        sh.n_shares = (size_t)(size - 1);
        sh.shares = mp;
        m.body_case = FEDC__ENVELOPE__BODY_SA_SHARES;
        m.sa_shares = &sh;
        return fedc_net_send(ep, NULL, &m, NULL, 0, &d) ? -1 : 0;
    }
    if (e->body_case == FEDC__ENVELOPE__BODY_SA_CONSIST_INS) {
        const Fedc__SaConsistIns *ci = e->sa_consist_ins;
        uint8_t sig[FEDC_SA_SIG_BYTES];
        if (fedc_sa_client_consist(&s->sa, ci->survivors, (int)ci->n_survivors,
                                   s->self ? s->self->sign_sk : NULL, sig, &d))
            goto fail;
        Fedc__SaConsist cs = FEDC__SA_CONSIST__INIT;
        cs.counter = ci->counter;
        cs.sig = (ProtobufCBinaryData){FEDC_SA_SIG_BYTES, sig};
        m.body_case = FEDC__ENVELOPE__BODY_SA_CONSIST;
        m.sa_consist = &cs;
        return fedc_net_send(ep, NULL, &m, NULL, 0, &d) ? -1 : 0;
    }
    if (e->body_case == FEDC__ENVELOPE__BODY_SA_MASK_INS) {
        const Fedc__SaMaskIns *mi = e->sa_mask_ins;
        fedc_sa_sealed in[FEDC_SA_MAX_NBRS];
        for (size_t j = 0; j < mi->n_shares; j++) {
            in[j].from = mi->shares[j]->from;
            in[j].to = mi->shares[j]->to;
            memcpy(in[j].ct, mi->shares[j]->ct.data, FEDC_SA_SHARE_CT);
        }
        if (fedc_sa_client_collect(&s->sa, in, (int)mi->n_shares, &d) ||
            fedc_sa_client_mask(&s->sa, s->vec, s->len, &d))
            goto fail;
        Fedc__SaMasked sm = FEDC__SA_MASKED__INIT;
        sm.counter = mi->counter;
        sm.count = s->len;
        /* Over FEDC_INLINE_MAX_BYTES the coordinator pulls it chunk by chunk from s->vec. */
        sm.streamed = 4 * s->len > FEDC_INLINE_MAX_BYTES;
        m.body_case = FEDC__ENVELOPE__BODY_SA_MASKED;
        m.sa_masked = &sm;
        return fedc_net_send(ep, NULL, &m, sm.streamed ? NULL : s->vec,
                             sm.streamed ? 0 : 4 * s->len, &d)
                   ? -1
                   : 0;
    }
    const Fedc__SaUnmaskIns *ui = e->sa_unmask_ins;
    fedc_sa_reveal r[FEDC_SA_MAX_NBRS];
    Fedc__SaReveal rv[FEDC_SA_MAX_NBRS], *rp[FEDC_SA_MAX_NBRS];
    int k = 0;
    fedc_sa_sig *sg = malloc(sizeof *sg * (ui->n_sigs ? ui->n_sigs : 1));
    if (!sg) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return -1;
    }
    for (size_t j = 0; j < ui->n_sigs; j++) {
        sg[j].id = ui->sigs[j]->id;
        memcpy(sg[j].sig, ui->sigs[j]->sig.data, FEDC_SA_SIG_BYTES);
    }
    fedc_err urc = fedc_sa_client_unmask(&s->sa, sg, (int)ui->n_sigs, r, &k, &d);
    free(sg);
    if (urc)
        goto fail;
    for (int j = 0; j < k; j++) {
        fedc__sa_reveal__init(&rv[j]);
        rv[j].owner = r[j].owner;
        rv[j].kind = (uint32_t)r[j].kind;
        rv[j].share = (ProtobufCBinaryData){32, r[j].share};
        rp[j] = &rv[j];
    }
    Fedc__SaUnmask um = FEDC__SA_UNMASK__INIT;
    um.counter = ui->counter;
    um.n_shares = (size_t)k;
    um.shares = rp;
    m.body_case = FEDC__ENVELOPE__BODY_SA_UNMASK;
    m.sa_unmask = &um;
    return fedc_net_send(ep, NULL, &m, NULL, 0, &d) ? -1 : 0;
fail:
    snprintf(s->err, sizeof s->err, "secure aggregation: %s", d.msg);
    return -1;
}

/* A field of /proc/PID/status in kB (VmRSS:, VmHWM:), or -1. */
long rss_kb(int pid, const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0)
            v = strtol(line + fl + 1, NULL, 10);
    fclose(f);
    return v;
}

/* CPU seconds (user + system) a process has used so far, or -1. */
double cpu_s(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    unsigned long ut = 0, stt = 0;
    /* fields after the name: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) != 2)
        return -1;
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

static void sample_coord(sim *s, uint32_t after_round) {
    s->rss_after[after_round] = rss_kb(s->coord_pid, "VmRSS:");
    s->hwm_after[after_round] = rss_kb(s->coord_pid, "VmHWM:");
    s->cpu_after[after_round] = cpu_s(s->coord_pid);
}

/* A training instruction whose weights are here: simulated training, then the update (streamed
 * over FEDC_INLINE_MAX_BYTES: announced, then served chunk by chunk) or the secure session. */
static void on_fit(sim *s, fedc_endpoint *ep, const uint8_t *run_id, uint32_t round,
                   const Fedc__SecAggIns *sa, fedc_eval_acc *ev) {
    fedc_diag d;
    sleep_ms(s->train_ms);
    if (sa) {
        (void)sa_begin(s, ep, run_id, round, sa, FEDC_SA_STAGE_FIT, ev);
        return;
    }
    Fedc__Envelope m;
    Fedc__FitRes r = FEDC__FIT_RES__INIT;
    Fedc__Tensor t = FEDC__TENSOR__INIT;
    env_init(&m, run_id, round);
    t.count = s->n_params;
    t.streamed = 4 * s->n_params > FEDC_INLINE_MAX_BYTES;
    r.update = &t;
    r.n_examples = 1000;
    r.train_loss = 0.5;
    r.seconds = 0.0;
    m.body_case = FEDC__ENVELOPE__BODY_FIT_RES;
    m.fit_res = &r;
    if (fedc_net_send(ep, NULL, &m, t.streamed ? NULL : s->update, t.streamed ? 0 : 4 * s->n_params,
                      &d))
        snprintf(s->err, sizeof s->err, "fit_res: %s", d.msg);
}

static void on_eval(sim *s, fedc_endpoint *ep, const uint8_t *run_id, uint32_t round,
                    const Fedc__SecAggIns *sa, fedc_eval_acc *ev) {
    fedc_diag d;
    if (sa) {
        (void)sa_begin(s, ep, run_id, round, sa, FEDC_SA_STAGE_EVAL, ev);
        return;
    }
    Fedc__Envelope m;
    Fedc__EvaluateRes r = FEDC__EVALUATE_RES__INIT;
    env_init(&m, run_id, round);
    m.body_case = FEDC__ENVELOPE__BODY_EVALUATE_RES;
    m.evaluate_res = &r;
    if (fedc_net_send(ep, NULL, &m, NULL, 0, &d))
        snprintf(s->err, sizeof s->err, "evaluate_res: %s", d.msg);
}

/* Asks for the next chunks of the weights being pulled (a window of 2, as fedc-client). */
static void dl_request(sim *s, fedc_endpoint *ep, const uint8_t *run_id) {
    fedc_diag d;
    while (s->dl_stream && s->dl_inflight < 2 && s->dl_next < s->dl_total) {
        Fedc__Envelope m;
        Fedc__ChunkReq q = FEDC__CHUNK_REQ__INIT;
        env_init(&m, run_id, s->dl_round);
        q.stream = (uint32_t)s->dl_stream;
        q.counter = s->dl_round;
        q.offset = s->dl_next;
        uint64_t left = s->dl_total - s->dl_next;
        q.count = left < s->chunk ? left : s->chunk;
        m.body_case = FEDC__ENVELOPE__BODY_CHUNK_REQ;
        m.chunk_req = &q;
        if (fedc_net_send(ep, NULL, &m, NULL, 0, &d)) {
            snprintf(s->err, sizeof s->err, "chunk_req: %s", d.msg);
            return;
        }
        s->dl_next += q.count;
        s->dl_inflight++;
    }
}

/* An instruction with streamed weights: remembered, and its weights pulled. */
static void dl_start(sim *s, fedc_endpoint *ep, const uint8_t *run_id, uint32_t round, int stream,
                     uint64_t total, const Fedc__SecAggIns *sa) {
    s->dl_stream = stream;
    s->dl_round = round;
    s->dl_total = total;
    s->dl_next = s->dl_recv = 0;
    s->dl_inflight = 0;
    s->dl_has_sa = sa != NULL;
    if (sa)
        s->dl_sa = *sa;
    dl_request(s, ep, run_id);
}

/* A chunk request from the coordinator: a slice of our update or masked vector. */
static void serve_chunk(sim *s, fedc_endpoint *ep, const uint8_t *run_id, const Fedc__Envelope *e) {
    const Fedc__ChunkReq *q = e->chunk_req;
    const void *base = q->stream == FEDC_STREAM_UPDATE ? (const void *)s->update : s->vec;
    uint64_t total = q->stream == FEDC_STREAM_UPDATE ? s->n_params : s->len;
    fedc_diag d;
    if (!base || q->offset + q->count > total) {
        snprintf(s->err, sizeof s->err, "chunk_req beyond what we hold");
        return;
    }
    Fedc__Envelope m;
    Fedc__Chunk k = FEDC__CHUNK__INIT;
    env_init(&m, run_id, e->round);
    k.stream = q->stream;
    k.counter = q->counter;
    k.offset = q->offset;
    k.total = total;
    m.body_case = FEDC__ENVELOPE__BODY_CHUNK;
    m.chunk = &k;
    if (fedc_net_send(ep, NULL, &m, (const uint8_t *)base + 4 * q->offset, 4 * q->count, &d))
        snprintf(s->err, sizeof s->err, "chunk: %s", d.msg);
}

/* One simulated client: join, answer statistics, fit and evaluate at once, heartbeat. */
void *sim_main(void *arg) {
    sim *s = arg;
    fedc_endpoint *ep = NULL;
    fedc_diag d;
    if (s->self ? fedc_net_connect_secure(&ep, s->zctx, s->addr, (size_t)1 << 30, s->self,
                                          s->coord->curve_pk, &d)
                : fedc_net_connect(&ep, s->zctx, s->addr, (size_t)1 << 30, &d)) {
        snprintf(s->err, sizeof s->err, "%s", d.msg);
        return NULL;
    }
    char name[32];
    snprintf(name, sizeof name, "sim%03d", s->idx);
    Fedc__Envelope m;
    Fedc__Join j = FEDC__JOIN__INIT;
    Fedc__Schema sc = FEDC__SCHEMA__INIT;
    env_init(&m, NULL, 0);
    sc.n_feature_names = N_FEATURES;
    sc.feature_names = g_names;
    sc.label = "y";
    sc.task = 0;
    sc.n_classes = 2;
    j.name = name;
    j.schema = &sc;
    j.n_rows = 1000;
    m.body_case = FEDC__ENVELOPE__BODY_JOIN;
    m.join = &j;
    if (fedc_net_send(ep, NULL, &m, NULL, 0, &d))
        snprintf(s->err, sizeof s->err, "join: %s", d.msg);
    uint8_t run_id[FEDC_RUN_ID_BYTES];
    int have_run = 0;
    double last_hb = fedc_clock_s();
    fedc_eval_acc *ev = NULL;
    if (fedc_eval_acc_new(&ev, 0, 2, FEDC_EVAL_BINS)) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return NULL;
    }
    while (!s->done && !s->err[0]) {
        fedc_inbox in;
        fedc_msg_expect x = {0};
        x.round = -1;
        x.max_bytes = (size_t)1 << 30;
        fedc_err rc = fedc_net_recv(ep, &in, &x, 200, &d);
        if (fedc_clock_s() - last_hb > 1.0 && have_run) {
            Fedc__Heartbeat h = FEDC__HEARTBEAT__INIT;
            env_init(&m, run_id, 0);
            m.body_case = FEDC__ENVELOPE__BODY_HEARTBEAT;
            m.heartbeat = &h;
            if (fedc_net_send(ep, NULL, &m, NULL, 0, &d))
                snprintf(s->err, sizeof s->err, "heartbeat: %s", d.msg);
            last_hb = fedc_clock_s();
        }
        if (rc == FEDC_EEMPTY)
            continue;
        if (rc) {
            snprintf(s->err, sizeof s->err, "receive: %s", d.msg);
            break;
        }
        const Fedc__Envelope *e = fedc_inbox_envelope(&in);
        switch (e->body_case) {
        case FEDC__ENVELOPE__BODY_WELCOME:
            memcpy(run_id, e->run_id.data, FEDC_RUN_ID_BYTES);
            have_run = 1;
            s->chunk = fedc_chunk_values((size_t)e->welcome->max_msg_bytes);
            break;
        case FEDC__ENVELOPE__BODY_STATS_REQUEST: {
            if (e->stats_request->secagg) {
                (void)sa_begin(s, ep, run_id, 0, e->stats_request->secagg, FEDC_SA_STAGE_STATS, ev);
                break;
            }
            double sum[N_FEATURES], sq[N_FEATURES];
            uint64_t cc[2] = {900, 100};
            for (int i = 0; i < N_FEATURES; i++) {
                sum[i] = 0;
                sq[i] = 1000;
            }
            Fedc__Stats st = FEDC__STATS__INIT;
            env_init(&m, run_id, 0);
            st.n_rows = 1000;
            st.n_sum = st.n_sum_sq = N_FEATURES;
            st.sum = sum;
            st.sum_sq = sq;
            st.n_class_count = 2;
            st.class_count = cc;
            m.body_case = FEDC__ENVELOPE__BODY_STATS;
            m.stats = &st;
            if (fedc_net_send(ep, NULL, &m, NULL, 0, &d))
                snprintf(s->err, sizeof s->err, "stats: %s", d.msg);
            break;
        }
        case FEDC__ENVELOPE__BODY_FIT_INS: {
            if (e->round <= s->max_round) {
                s->fit_at[e->round] = fedc_clock_s(); /* a retried round: its last instruction */
                if (s->coord_pid > 0 && e->round >= 1)
                    sample_coord(s, e->round - 1);
            }
            if (e->fit_ins->weights && e->fit_ins->weights->streamed)
                dl_start(s, ep, run_id, e->round, FEDC_STREAM_FIT, e->fit_ins->weights->count,
                         e->fit_ins->secagg);
            else
                on_fit(s, ep, run_id, e->round, e->fit_ins->secagg, ev);
            break;
        }
        case FEDC__ENVELOPE__BODY_EVALUATE_INS:
            if (e->evaluate_ins->weights && e->evaluate_ins->weights->streamed)
                dl_start(s, ep, run_id, e->round, FEDC_STREAM_EVAL, e->evaluate_ins->weights->count,
                         e->evaluate_ins->secagg);
            else
                on_eval(s, ep, run_id, e->round, e->evaluate_ins->secagg, ev);
            break;
        case FEDC__ENVELOPE__BODY_CHUNK: {
            /* The weights are not used: counting them in is what a client's download costs. */
            const Fedc__Chunk *k = e->chunk;
            if (!s->dl_stream || k->stream != (uint32_t)s->dl_stream || k->offset != s->dl_recv)
                break;
            s->dl_recv += in.raw_len / 4;
            s->dl_inflight--;
            dl_request(s, ep, run_id);
            if (s->dl_recv < s->dl_total)
                break;
            int stream = s->dl_stream;
            s->dl_stream = 0;
            const Fedc__SecAggIns *sa = s->dl_has_sa ? &s->dl_sa : NULL;
            if (stream == FEDC_STREAM_FIT)
                on_fit(s, ep, run_id, s->dl_round, sa, ev);
            else
                on_eval(s, ep, run_id, s->dl_round, sa, ev);
            break;
        }
        case FEDC__ENVELOPE__BODY_CHUNK_REQ:
            serve_chunk(s, ep, run_id, e);
            break;
        case FEDC__ENVELOPE__BODY_SA_GRAPH_INS:
        case FEDC__ENVELOPE__BODY_SA_SHARE_INS:
        case FEDC__ENVELOPE__BODY_SA_MASK_INS:
        case FEDC__ENVELOPE__BODY_SA_CONSIST_INS:
        case FEDC__ENVELOPE__BODY_SA_UNMASK_INS:
            (void)sa_step(s, ep, run_id, e);
            break;
        case FEDC__ENVELOPE__BODY_BYE:
            if (s->coord_pid > 0)
                sample_coord(s, s->max_round);
            s->done = 1;
            break;
        default:
            break;
        }
        fedc_inbox_release(&in);
    }
    fedc_eval_acc_destroy(&ev);
    fedc_sa_client_free(&s->sa);
    free(s->vec);
    fedc_net_close(&ep);
    return NULL;
}
