/* The typed messages of msg.h to protobuf envelopes (contracts in msg.h and codec.h); the other
 * direction, envelopes to typed views, and the tensor helpers are in msg_view.c.
 *
 * Sending builds the envelope on the stack around the caller's arrays (nothing is copied but the
 * few secure-aggregation records protobuf-c wants as arrays of pointers). Every message the
 * programs send went through hand-built envelopes before this file existed; the encodings must stay
 * byte-identical (tests/net/test_msg.c compares them), so a field is set here exactly when they set
 * it. */
#include "fedc/codec.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The kinds are the body's field numbers: a cast converts them. */
#define SAME(k, c) _Static_assert((int)FEDC_MSG_##k == (int)FEDC__ENVELOPE__BODY_##c, #k)
SAME(JOIN, JOIN);
SAME(WELCOME, WELCOME);
SAME(STATS_REQUEST, STATS_REQUEST);
SAME(STATS, STATS);
SAME(FIT_INS, FIT_INS);
SAME(FIT_RES, FIT_RES);
SAME(EVALUATE_INS, EVALUATE_INS);
SAME(EVALUATE_RES, EVALUATE_RES);
SAME(HEARTBEAT, HEARTBEAT);
SAME(ERROR, ERROR);
SAME(BYE, BYE);
SAME(CHUNK, CHUNK);
SAME(CHUNK_REQ, CHUNK_REQ);
SAME(SA_KEYS, SA_KEYS);
SAME(SA_SHARE_INS, SA_SHARE_INS);
SAME(SA_SHARES, SA_SHARES);
SAME(SA_MASK_INS, SA_MASK_INS);
SAME(SA_MASKED, SA_MASKED);
SAME(SA_UNMASK_INS, SA_UNMASK_INS);
SAME(SA_UNMASK, SA_UNMASK);
SAME(SA_GRAPH_INS, SA_GRAPH_INS);
SAME(SA_GRAPH, SA_GRAPH);
SAME(SA_CONSIST_INS, SA_CONSIST_INS);
SAME(SA_CONSIST, SA_CONSIST);
SAME(SA_FIT_INS, SA_FIT_INS);
#undef SAME

const char *fedc_msg_kind_name(fedc_msg_kind k) {
    return fedc_msg_body_name((Fedc__Envelope__BodyCase)k);
}

const char *fedc_stream_name(uint32_t stream) {
    switch (stream) {
    case FEDC_STREAM_FIT:
        return "fit";
    case FEDC_STREAM_EVAL:
        return "eval";
    case FEDC_STREAM_UPDATE:
        return "update";
    case FEDC_STREAM_MASKED:
        return "masked";
    case FEDC_STREAM_INIT:
        return "init";
    default:
        return "none";
    }
}

uint64_t fedc_chunk_values(size_t max_msg) {
    size_t bytes = FEDC_CHUNK_DEFAULT_BYTES;
    if (max_msg && max_msg < bytes + FEDC_CHUNK_MARGIN)
        bytes = max_msg > FEDC_CHUNK_MARGIN ? max_msg - FEDC_CHUNK_MARGIN : 0;
    uint64_t v = bytes / 4 / FEDC_CHUNK_ALIGN * FEDC_CHUNK_ALIGN;
    return v < FEDC_CHUNK_ALIGN ? FEDC_CHUNK_ALIGN : v;
}

/* ---- typed -> envelope ----------------------------------------------------------------------- */

/* The envelope of one message and every part it points at. */
struct fedc_msg_wire {
    Fedc__Envelope env;
    union {
        Fedc__Join join;
        Fedc__Welcome welcome;
        Fedc__StatsRequest stats_request;
        Fedc__Stats stats;
        Fedc__FitIns fit_ins;
        Fedc__FitRes fit_res;
        Fedc__EvaluateIns evaluate_ins;
        Fedc__EvaluateRes evaluate_res;
        Fedc__Heartbeat heartbeat;
        Fedc__Error error;
        Fedc__Bye bye;
        Fedc__Chunk chunk;
        Fedc__ChunkReq chunk_req;
        Fedc__SaKeys sa_keys;
        Fedc__SaShareIns sa_share_ins;
        Fedc__SaShares sa_shares;
        Fedc__SaMaskIns sa_mask_ins;
        Fedc__SaMasked sa_masked;
        Fedc__SaUnmaskIns sa_unmask_ins;
        Fedc__SaUnmask sa_unmask;
        Fedc__SaGraphIns sa_graph_ins;
        Fedc__SaGraph sa_graph;
        Fedc__SaConsistIns sa_consist_ins;
        Fedc__SaConsist sa_consist;
        Fedc__SaFitIns sa_fit_ins;
    } b;
    Fedc__Schema schema;
    Fedc__HyperParams hp;
    Fedc__SecAggIns secagg;
    Fedc__Tensor tensor;
    char text[FEDC_REASON_MAX + 1]; /* a reason, cut to what a receiver accepts */
    void *arr;                      /* record arrays and their pointer arrays (one allocation) */
};

/* protobuf-c takes non-const pointers for what it only reads while packing. */
static uint8_t *bytes_of(const void *p) {
    return (uint8_t *)(uintptr_t)p;
}

static char *text_of(const char *s) {
    return (char *)(uintptr_t)(s ? s : "");
}

static void bin(ProtobufCBinaryData *b, const void *p, size_t len) {
    b->data = bytes_of(p);
    b->len = len;
}

static void put_schema(fedc_msg_wire *w, const fedc_schema *s) {
    fedc__schema__init(&w->schema);
    w->schema.n_feature_names = s->n_features;
    w->schema.feature_names = (char **)(uintptr_t)s->feature_names;
    w->schema.label = text_of(s->label);
    w->schema.task = s->task;
    w->schema.n_classes = s->n_classes;
    w->schema.encoding = text_of(s->encoding);
    w->schema.features = text_of(s->features);
}

static void put_hp(fedc_msg_wire *w, const fedc_hyper *h) {
    fedc__hyper_params__init(&w->hp);
    w->hp.local_epochs = h->local_epochs;
    w->hp.batch = h->batch;
    w->hp.lr = h->lr;
    w->hp.prox_mu = h->prox_mu;
    w->hp.optimizer = h->optimizer;
    w->hp.l2 = h->l2;
    w->hp.dropout = h->dropout;
    w->hp.val_fraction = h->val_fraction;
    w->hp.clip_norm = h->clip_norm;
    w->hp.uniform_weight = h->uniform_weight != 0;
    w->hp.client_dp = h->client_dp != 0;
    w->hp.keep_opt_state = h->keep_opt_state != 0;
}

static Fedc__SecAggIns *put_secagg(fedc_msg_wire *w, int has, const fedc_secagg_ins *s) {
    if (!has)
        return NULL;
    fedc__sec_agg_ins__init(&w->secagg);
    w->secagg.counter = s->counter;
    w->secagg.max_clients = s->max_clients;
    w->secagg.clip = s->clip;
    w->secagg.total_rows = s->total_rows;
    w->secagg.hold = s->hold != 0;
    return &w->secagg;
}

/* A tensor always travels as the raw frame: the envelope holds its count only. */
static Fedc__Tensor *put_tensor(fedc_msg_wire *w, const fedc_tensor *t) {
    fedc__tensor__init(&w->tensor);
    w->tensor.count = t->count;
    w->tensor.streamed = t->streamed != 0;
    return &w->tensor;
}

/* n records of `size` bytes followed by n pointers to them, in w->arr; returns the records and
 * sets *ptrs. NULL when out of memory. */
static void *records(fedc_msg_wire *w, size_t n, size_t size, void ***ptrs) {
    size_t head = (n * size + _Alignof(void *) - 1) / _Alignof(void *) * _Alignof(void *);
    w->arr = malloc(head + n * sizeof(void *) + 1);
    if (!w->arr)
        return NULL;
    *ptrs = (void **)(void *)((uint8_t *)w->arr + head);
    for (size_t i = 0; i < n; i++)
        (*ptrs)[i] = (uint8_t *)w->arr + i * size;
    return w->arr;
}

static fedc_err put_sealed(fedc_msg_wire *w, const fedc_sa_boxes *s, size_t *n_out,
                           Fedc__SaSealed ***out) {
    void **pp;
    Fedc__SaSealed *v = records(w, s->n_shares, sizeof *v, &pp);
    if (!v)
        return FEDC_ENOMEM;
    for (size_t i = 0; i < s->n_shares; i++) {
        fedc__sa_sealed__init(&v[i]);
        v[i].from = s->shares[i].from;
        v[i].to = s->shares[i].to;
        bin(&v[i].ct, s->shares[i].ct, FEDC_SA_SHARE_CT);
    }
    *n_out = s->n_shares;
    *out = (Fedc__SaSealed **)pp;
    return FEDC_OK;
}

static fedc_err put_share_ins(fedc_msg_wire *w, const fedc_sa_share_ins *s) {
    Fedc__SaShareIns *o = &w->b.sa_share_ins;
    fedc__sa_share_ins__init(o);
    /* The peers and their pointers: one allocation. */
    size_t one = sizeof(Fedc__SaPeer) + sizeof(void *);
    w->arr = malloc(s->n_peers * one + 1);
    if (!w->arr)
        return FEDC_ENOMEM;
    Fedc__SaPeer *v = w->arr;
    Fedc__SaPeer **pp = (Fedc__SaPeer **)(void *)(v + s->n_peers);
    /* Graph mode: the receiver has every name (SaGraphIns) and commitment (from the reveals). */
    int graph = s->n_reveals != 0;
    for (size_t i = 0; i < s->n_peers; i++) {
        const fedc_sa_peer *p = &s->peers[i];
        fedc__sa_peer__init(&v[i]);
        v[i].id = p->id;
        v[i].name = graph ? text_of("") : text_of(p->name);
        bin(&v[i].pk_c, p->adv.pk_c, 32);
        bin(&v[i].pk_s, p->adv.pk_s, 32);
        bin(&v[i].sig, p->adv.sig, FEDC_SA_SIG_BYTES);
        if (!graph)
            bin(&v[i].commit, p->adv.commit, 32);
        pp[i] = &v[i];
    }
    if (graph)
        bin(&o->reveals, s->reveals, 32 * s->n_reveals);
    o->counter = s->counter;
    o->id = s->id;
    o->threshold = s->threshold;
    o->n_peers = s->n_peers;
    o->peers = pp;
    o->n = s->n;
    o->h = s->h;
    w->env.sa_share_ins = o;
    return FEDC_OK;
}

static fedc_err put_body(fedc_msg_wire *w, const fedc_msg *m, fedc_diag *d) {
    Fedc__Envelope *e = &w->env;
    void **pp;
    switch (m->kind) {
    case FEDC_MSG_JOIN: {
        const fedc_join *j = &m->join;
        Fedc__Join *o = &w->b.join;
        fedc__join__init(o);
        put_schema(w, &j->schema);
        o->name = text_of(j->name);
        o->schema = &w->schema;
        o->n_rows = j->n_rows;
        o->model_kind = text_of(j->model_kind);
        o->n_params = j->n_params;
        o->init = j->init.count ? put_tensor(w, &j->init) : NULL;
        e->join = o;
        return FEDC_OK;
    }
    case FEDC_MSG_WELCOME: {
        const fedc_welcome *v = &m->welcome;
        Fedc__Welcome *o = &w->b.welcome;
        fedc__welcome__init(o);
        put_schema(w, &v->schema);
        put_hp(w, &v->hp);
        o->schema = &w->schema;
        o->n_layer_sizes = v->n_layer_sizes;
        o->layer_sizes = (uint32_t *)(uintptr_t)v->layer_sizes;
        o->hidden_act = v->hidden_act;
        o->hp = &w->hp;
        o->rounds = v->rounds;
        o->seed = v->seed;
        o->max_msg_bytes = v->max_msg_bytes;
        o->model_kind = text_of(v->model_kind);
        o->n_params = v->n_params;
        o->init_wanted = v->init_wanted != 0;
        o->heartbeat_ms = v->heartbeat_ms;
        e->welcome = o;
        return FEDC_OK;
    }
    case FEDC_MSG_STATS_REQUEST: {
        Fedc__StatsRequest *o = &w->b.stats_request;
        fedc__stats_request__init(o);
        o->secagg = put_secagg(w, m->stats_request.has_secagg, &m->stats_request.secagg);
        e->stats_request = o;
        return FEDC_OK;
    }
    case FEDC_MSG_STATS: {
        const fedc_stats *s = &m->stats;
        Fedc__Stats *o = &w->b.stats;
        fedc__stats__init(o);
        o->n_rows = s->n_rows;
        o->n_sum = s->n_sum;
        o->sum = (double *)(uintptr_t)s->sum;
        o->n_sum_sq = s->n_sum_sq;
        o->sum_sq = (double *)(uintptr_t)s->sum_sq;
        o->n_class_count = s->n_class_count;
        o->class_count = (uint64_t *)(uintptr_t)s->class_count;
        o->n_present = s->n_present;
        o->present = (double *)(uintptr_t)s->present;
        e->stats = o;
        return FEDC_OK;
    }
    case FEDC_MSG_FIT_INS: {
        const fedc_fit_ins *f = &m->fit_ins;
        Fedc__FitIns *o = &w->b.fit_ins;
        fedc__fit_ins__init(o);
        put_hp(w, &f->hp);
        o->weights = put_tensor(w, &f->weights);
        o->hp = &w->hp;
        o->n_mean = f->n_mean;
        o->mean = (float *)(uintptr_t)f->mean;
        o->n_std = f->n_std;
        o->std = (float *)(uintptr_t)f->std;
        o->pos_weight = f->pos_weight;
        o->secagg = put_secagg(w, f->has_secagg, &f->secagg);
        o->update_norm_bound = f->update_norm_bound;
        e->fit_ins = o;
        return FEDC_OK;
    }
    case FEDC_MSG_FIT_RES: {
        const fedc_fit_res *f = &m->fit_res;
        Fedc__FitRes *o = &w->b.fit_res;
        fedc__fit_res__init(o);
        o->update = put_tensor(w, &f->update);
        o->n_examples = f->n_examples;
        o->train_loss = f->train_loss;
        o->seconds = f->seconds;
        o->unclipped = f->unclipped != 0;
        o->held = f->held != 0;
        e->fit_res = o;
        return FEDC_OK;
    }
    case FEDC_MSG_EVALUATE_INS: {
        const fedc_evaluate_ins *f = &m->evaluate_ins;
        Fedc__EvaluateIns *o = &w->b.evaluate_ins;
        fedc__evaluate_ins__init(o);
        o->weights = put_tensor(w, &f->weights);
        o->threshold = f->threshold;
        o->n_mean = f->n_mean;
        o->mean = (float *)(uintptr_t)f->mean;
        o->n_std = f->n_std;
        o->std = (float *)(uintptr_t)f->std;
        o->secagg = put_secagg(w, f->has_secagg, &f->secagg);
        e->evaluate_ins = o;
        return FEDC_OK;
    }
    case FEDC_MSG_EVALUATE_RES: {
        const fedc_evaluate_res *r = &m->evaluate_res;
        Fedc__EvaluateRes *o = &w->b.evaluate_res;
        fedc__evaluate_res__init(o);
        o->n = r->n;
        o->n_hist_pos = r->n_hist_pos;
        o->hist_pos = (uint64_t *)(uintptr_t)r->hist_pos;
        o->n_hist_neg = r->n_hist_neg;
        o->hist_neg = (uint64_t *)(uintptr_t)r->hist_neg;
        o->tp = r->tp;
        o->fp = r->fp;
        o->tn = r->tn;
        o->fn = r->fn;
        o->log_loss_sum = r->log_loss_sum;
        o->n_confusion = r->n_confusion;
        o->confusion = (uint64_t *)(uintptr_t)r->confusion;
        o->sse = r->sse;
        o->sum_y = r->sum_y;
        o->sum_y2 = r->sum_y2;
        e->evaluate_res = o;
        return FEDC_OK;
    }
    case FEDC_MSG_HEARTBEAT:
        fedc__heartbeat__init(&w->b.heartbeat);
        w->b.heartbeat.seq = m->heartbeat.seq;
        e->heartbeat = &w->b.heartbeat;
        return FEDC_OK;
    case FEDC_MSG_ERROR: {
        const fedc_error *r = &m->error;
        Fedc__Error *o = &w->b.error;
        fedc__error__init(o);
        /* The wire holds the code's magnitude (fedc_err codes are negative). */
        o->code = (uint32_t)(-(int)r->code);
        snprintf(w->text, sizeof w->text, "%s", r->reason ? r->reason : "");
        o->reason = w->text;
        o->sa_refusal = r->sa_refusal;
        o->n_sa_blame = r->n_sa_blame;
        o->sa_blame = (uint32_t *)(uintptr_t)r->sa_blame;
        o->sa_counter = r->sa_counter;
        o->kind = (uint32_t)r->kind;
        e->error = o;
        return FEDC_OK;
    }
    case FEDC_MSG_BYE:
        fedc__bye__init(&w->b.bye);
        snprintf(w->text, sizeof w->text, "%s", m->bye.reason ? m->bye.reason : "");
        w->b.bye.reason = w->text;
        w->b.bye.code = (uint32_t)m->bye.code;
        e->bye = &w->b.bye;
        return FEDC_OK;
    case FEDC_MSG_CHUNK: {
        Fedc__Chunk *o = &w->b.chunk;
        fedc__chunk__init(o);
        o->stream = m->chunk.stream;
        o->counter = m->chunk.counter;
        o->offset = m->chunk.offset;
        o->total = m->chunk.total;
        e->chunk = o;
        return FEDC_OK;
    }
    case FEDC_MSG_CHUNK_REQ: {
        Fedc__ChunkReq *o = &w->b.chunk_req;
        fedc__chunk_req__init(o);
        o->stream = m->chunk_req.stream;
        o->counter = m->chunk_req.counter;
        o->offset = m->chunk_req.offset;
        o->count = m->chunk_req.count;
        e->chunk_req = o;
        return FEDC_OK;
    }
    case FEDC_MSG_SA_KEYS: {
        const fedc_sa_adv *a = &m->sa_keys.adv;
        Fedc__SaKeys *o = &w->b.sa_keys;
        fedc__sa_keys__init(o);
        o->counter = m->sa_keys.counter;
        bin(&o->pk_c, a->pk_c, 32);
        bin(&o->pk_s, a->pk_s, 32);
        bin(&o->sig, a->sig, FEDC_SA_SIG_BYTES);
        bin(&o->commit, a->commit, 32);
        e->sa_keys = o;
        return FEDC_OK;
    }
    case FEDC_MSG_SA_SHARE_INS:
        return put_share_ins(w, &m->sa_share_ins);
    case FEDC_MSG_SA_SHARES: {
        Fedc__SaShares *o = &w->b.sa_shares;
        fedc__sa_shares__init(o);
        o->counter = m->sa_shares.counter;
        e->sa_shares = o;
        return put_sealed(w, &m->sa_shares, &o->n_shares, &o->shares);
    }
    case FEDC_MSG_SA_MASK_INS: {
        Fedc__SaMaskIns *o = &w->b.sa_mask_ins;
        fedc__sa_mask_ins__init(o);
        o->counter = m->sa_mask_ins.counter;
        e->sa_mask_ins = o;
        return put_sealed(w, &m->sa_mask_ins, &o->n_shares, &o->shares);
    }
    case FEDC_MSG_SA_MASKED:
        fedc__sa_masked__init(&w->b.sa_masked);
        w->b.sa_masked.counter = m->sa_masked.counter;
        w->b.sa_masked.count = m->sa_masked.count;
        w->b.sa_masked.streamed = m->sa_masked.streamed != 0;
        e->sa_masked = &w->b.sa_masked;
        return FEDC_OK;
    case FEDC_MSG_SA_UNMASK_INS: {
        const fedc_sa_unmask_ins *u = &m->sa_unmask_ins;
        Fedc__SaUnmaskIns *o = &w->b.sa_unmask_ins;
        fedc__sa_unmask_ins__init(o);
        Fedc__SaSig *v = records(w, u->n_sigs, sizeof *v, &pp);
        if (!v)
            return FEDC_ENOMEM;
        for (size_t i = 0; i < u->n_sigs; i++) {
            fedc__sa_sig__init(&v[i]);
            v[i].id = u->sigs[i].id;
            bin(&v[i].sig, u->sigs[i].sig, FEDC_SA_SIG_BYTES);
        }
        o->counter = u->counter;
        o->n_sigs = u->n_sigs;
        o->sigs = (Fedc__SaSig **)pp;
        e->sa_unmask_ins = o;
        return FEDC_OK;
    }
    case FEDC_MSG_SA_UNMASK: {
        const fedc_sa_unmask *u = &m->sa_unmask;
        Fedc__SaUnmask *o = &w->b.sa_unmask;
        fedc__sa_unmask__init(o);
        Fedc__SaReveal *v = records(w, u->n_shares, sizeof *v, &pp);
        if (!v)
            return FEDC_ENOMEM;
        for (size_t i = 0; i < u->n_shares; i++) {
            fedc__sa_reveal__init(&v[i]);
            v[i].owner = u->shares[i].owner;
            v[i].kind = (uint32_t)u->shares[i].kind;
            bin(&v[i].share, u->shares[i].share, 32);
        }
        o->counter = u->counter;
        o->n_shares = u->n_shares;
        o->shares = (Fedc__SaReveal **)pp;
        e->sa_unmask = o;
        return FEDC_OK;
    }
    case FEDC_MSG_SA_GRAPH_INS: {
        const fedc_sa_graph_ins *g = &m->sa_graph_ins;
        Fedc__SaGraphIns *o = &w->b.sa_graph_ins;
        fedc__sa_graph_ins__init(o);
        o->counter = g->counter;
        o->id = g->id;
        o->h = g->h;
        o->n_names = g->n_members;
        o->names = (char **)(uintptr_t)g->names; /* read only by the packer */
        bin(&o->commits, g->commits_digest, 32);
        e->sa_graph_ins = o;
        return FEDC_OK;
    }
    case FEDC_MSG_SA_GRAPH:
        fedc__sa_graph__init(&w->b.sa_graph);
        w->b.sa_graph.counter = m->sa_graph.counter;
        bin(&w->b.sa_graph.r, m->sa_graph.r, 32);
        e->sa_graph = &w->b.sa_graph;
        return FEDC_OK;
    case FEDC_MSG_SA_CONSIST_INS:
        fedc__sa_consist_ins__init(&w->b.sa_consist_ins);
        w->b.sa_consist_ins.counter = m->sa_consist_ins.counter;
        w->b.sa_consist_ins.n_survivors = m->sa_consist_ins.n_survivors;
        w->b.sa_consist_ins.survivors = (uint32_t *)(uintptr_t)m->sa_consist_ins.survivors;
        e->sa_consist_ins = &w->b.sa_consist_ins;
        return FEDC_OK;
    case FEDC_MSG_SA_CONSIST:
        fedc__sa_consist__init(&w->b.sa_consist);
        w->b.sa_consist.counter = m->sa_consist.counter;
        bin(&w->b.sa_consist.sig, m->sa_consist.sig, FEDC_SA_SIG_BYTES);
        e->sa_consist = &w->b.sa_consist;
        return FEDC_OK;
    case FEDC_MSG_SA_FIT_INS: {
        Fedc__SaFitIns *o = &w->b.sa_fit_ins;
        fedc__sa_fit_ins__init(o);
        o->secagg = put_secagg(w, 1, &m->sa_fit_ins.secagg);
        o->trained_round = m->sa_fit_ins.trained_round;
        o->staleness_weight = m->sa_fit_ins.staleness_weight;
        e->sa_fit_ins = o;
        return FEDC_OK;
    }
    default:
        fedc_diag_set(d, "cannot encode a message of kind %d", (int)m->kind);
        return FEDC_EINVAL;
    }
}

fedc_err fedc_msg_to_wire(fedc_msg_wire **out, const fedc_msg *m, fedc_diag *d) {
    *out = NULL;
    fedc_msg_wire *w = malloc(sizeof *w);
    if (!w) {
        fedc_diag_set(d, "out of memory encoding %s", fedc_msg_kind_name(m->kind));
        return FEDC_ENOMEM;
    }
    w->arr = NULL;
    fedc__envelope__init(&w->env);
    w->env.version = FEDC_PROTOCOL_VERSION;
    if (m->run_id)
        bin(&w->env.run_id, m->run_id, FEDC_RUN_ID_BYTES);
    w->env.round = m->round;
    /* The body's pointer is set by put_body; the case is the kind (same numbers). */
    w->env.body_case = (Fedc__Envelope__BodyCase)m->kind;
    fedc_err rc = put_body(w, m, d);
    if (rc) {
        if (rc == FEDC_ENOMEM)
            fedc_diag_set(d, "out of memory encoding %s", fedc_msg_kind_name(m->kind));
        fedc_msg_wire_free(&w);
        return rc;
    }
    *out = w;
    return FEDC_OK;
}

const Fedc__Envelope *fedc_msg_wire_envelope(const fedc_msg_wire *w) {
    return &w->env;
}

void fedc_msg_wire_free(fedc_msg_wire **w) {
    if (!w || !*w)
        return;
    free((*w)->arr);
    free(*w);
    *w = NULL;
}

fedc_err fedc_msg_encode(uint8_t **buf, size_t *len, const fedc_msg *m, fedc_diag *d) {
    *buf = NULL;
    *len = 0;
    fedc_msg_wire *w;
    fedc_err rc = fedc_msg_to_wire(&w, m, d);
    if (rc)
        return rc;
    rc = fedc_msg_pack(buf, len, &w->env);
    if (rc)
        fedc_diag_set(d, "cannot encode %s", fedc_msg_kind_name(m->kind));
    fedc_msg_wire_free(&w);
    return rc;
}

const void *fedc_msg_raw(const fedc_msg *m, size_t *len) {
    const fedc_tensor *t = NULL;
    switch (m->kind) {
    case FEDC_MSG_JOIN:
        t = &m->join.init;
        break;
    case FEDC_MSG_FIT_INS:
        t = &m->fit_ins.weights;
        break;
    case FEDC_MSG_FIT_RES:
        t = &m->fit_res.update;
        break;
    case FEDC_MSG_EVALUATE_INS:
        t = &m->evaluate_ins.weights;
        break;
    case FEDC_MSG_SA_MASKED:
        if (m->sa_masked.streamed)
            break;
        *len = 4 * (size_t)m->sa_masked.count;
        return m->sa_masked.values;
    case FEDC_MSG_CHUNK:
        *len = 4 * (size_t)m->chunk.count;
        return m->chunk.values;
    default:
        break;
    }
    /* A Join without initial values, like every other body, has no raw frame. */
    if (!t || t->streamed || (m->kind == FEDC_MSG_JOIN && t->count == 0)) {
        *len = 0;
        return NULL;
    }
    *len = 4 * (size_t)t->count;
    return t->data;
}

size_t fedc_msg_wire_size(const fedc_msg *m) {
    fedc_msg_wire *w;
    fedc_diag d;
    if (fedc_msg_to_wire(&w, m, &d))
        return SIZE_MAX; /* cannot be sent: larger than any limit */
    size_t raw = 0;
    (void)fedc_msg_raw(m, &raw);
    size_t n = fedc__envelope__get_packed_size(&w->env) + raw;
    fedc_msg_wire_free(&w);
    return n;
}
