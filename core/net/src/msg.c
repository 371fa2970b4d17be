/* The typed messages of msg.h to and from protobuf envelopes (contracts in msg.h and codec.h).
 *
 * Sending builds the envelope on the stack around the caller's arrays (nothing is copied but the
 * few secure-aggregation records protobuf-c wants as arrays of pointers); receiving points the
 * view into the decoded envelope and the raw frame. Every message the programs send went through
 * hand-built envelopes before this file existed; the encodings must stay byte-identical
 * (tests/net/test_msg.c compares them), so a field is set here exactly when they set it. */
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
#undef SAME

const char *fedc_msg_kind_name(fedc_msg_kind k) {
    return fedc_msg_body_name((Fedc__Envelope__BodyCase)k);
}

/* ---- tensors --------------------------------------------------------------------------------- */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LE 1
#else
#define HOST_LE 0
#endif

void fedc_tensor_write(uint8_t *out, const float *v, size_t n) {
    if (n == 0)
        return;
#if HOST_LE
    memcpy(out, v, 4 * n); /* the wire order is the host order */
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        out[4 * i] = (uint8_t)u;
        out[4 * i + 1] = (uint8_t)(u >> 8);
        out[4 * i + 2] = (uint8_t)(u >> 16);
        out[4 * i + 3] = (uint8_t)(u >> 24);
    }
#endif
}

void fedc_tensor_read(float *out, const fedc_tensor *t) {
    if (t->count == 0)
        return; /* data may be NULL then, and memcpy from NULL is undefined even for 0 bytes */
#if HOST_LE
    memcpy(out, t->data, 4 * (size_t)t->count);
#else
    const uint8_t *p = t->data;
    for (size_t i = 0; i < t->count; i++) {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        memcpy(&out[i], &u, 4);
    }
#endif
}

const float *fedc_tensor_floats(const fedc_tensor *t) {
#if HOST_LE
    if (t->data && ((uintptr_t)t->data % _Alignof(float)) == 0)
        return t->data;
#else
    (void)t;
#endif
    return NULL;
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
}

static Fedc__SecAggIns *put_secagg(fedc_msg_wire *w, int has, const fedc_secagg_ins *s) {
    if (!has)
        return NULL;
    fedc__sec_agg_ins__init(&w->secagg);
    w->secagg.counter = s->counter;
    w->secagg.max_clients = s->max_clients;
    w->secagg.clip = s->clip;
    w->secagg.total_rows = s->total_rows;
    return &w->secagg;
}

/* A tensor always travels as the raw frame: the envelope holds its count only. */
static Fedc__Tensor *put_tensor(fedc_msg_wire *w, const fedc_tensor *t) {
    fedc__tensor__init(&w->tensor);
    w->tensor.count = t->count;
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
    /* The peers, their pointers, then the reveals: one allocation. */
    size_t one = sizeof(Fedc__SaPeer) + sizeof(void *);
    w->arr = malloc(s->n_peers * one + s->n_reveals * sizeof(ProtobufCBinaryData) + 1);
    if (!w->arr)
        return FEDC_ENOMEM;
    Fedc__SaPeer *v = w->arr;
    Fedc__SaPeer **pp = (Fedc__SaPeer **)(void *)(v + s->n_peers);
    ProtobufCBinaryData *rv = (ProtobufCBinaryData *)(void *)(pp + s->n_peers);
    for (size_t i = 0; i < s->n_peers; i++) {
        const fedc_sa_peer *p = &s->peers[i];
        fedc__sa_peer__init(&v[i]);
        v[i].id = p->id;
        v[i].name = text_of(p->name);
        bin(&v[i].pk_c, p->adv.pk_c, 32);
        bin(&v[i].pk_s, p->adv.pk_s, 32);
        bin(&v[i].sig, p->adv.sig, FEDC_SA_SIG_BYTES);
        bin(&v[i].commit, p->adv.commit, 32);
        pp[i] = &v[i];
    }
    for (size_t i = 0; i < s->n_reveals; i++)
        bin(&rv[i], s->reveals + 32 * i, 32);
    o->counter = s->counter;
    o->id = s->id;
    o->threshold = s->threshold;
    o->n_peers = s->n_peers;
    o->peers = pp;
    o->n = s->n;
    o->h = s->h;
    o->n_reveals = s->n_reveals;
    o->reveals = s->n_reveals ? rv : NULL;
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
        Fedc__SaMember *v = records(w, g->n_members, sizeof *v, &pp);
        if (!v)
            return FEDC_ENOMEM;
        for (size_t i = 0; i < g->n_members; i++) {
            fedc__sa_member__init(&v[i]);
            v[i].id = g->members[i].id;
            v[i].name = text_of(g->members[i].name);
            bin(&v[i].commit, g->members[i].commit, 32);
        }
        o->counter = g->counter;
        o->id = g->id;
        o->h = g->h;
        o->n_members = g->n_members;
        o->members = (Fedc__SaMember **)pp;
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
        *len = 4 * (size_t)m->sa_masked.count;
        return m->sa_masked.values;
    default:
        break;
    }
    /* A Join without initial values, like every other body, has no raw frame. */
    if (!t || (m->kind == FEDC_MSG_JOIN && t->count == 0)) {
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

/* ---- envelope -> typed view ------------------------------------------------------------------ */

static void get_tensor(fedc_tensor *t, const Fedc__Tensor *w, const uint8_t *raw) {
    t->count = w ? w->count : 0;
    t->data = !w || !w->count ? NULL : w->data.len ? (const void *)w->data.data : (const void *)raw;
}

static void get_schema(fedc_schema *s, const Fedc__Schema *w) {
    s->n_features = w->n_feature_names;
    s->feature_names = w->feature_names;
    s->label = w->label;
    s->task = w->task;
    s->n_classes = w->n_classes;
}

static void get_hp(fedc_hyper *h, const Fedc__HyperParams *w) {
    h->local_epochs = w->local_epochs;
    h->batch = w->batch;
    h->lr = w->lr;
    h->prox_mu = w->prox_mu;
    h->optimizer = w->optimizer;
    h->l2 = w->l2;
    h->dropout = w->dropout;
    h->val_fraction = w->val_fraction;
    h->clip_norm = w->clip_norm;
    h->uniform_weight = w->uniform_weight != 0;
    h->client_dp = w->client_dp != 0;
}

static int get_secagg(fedc_secagg_ins *s, const Fedc__SecAggIns *w) {
    if (!w)
        return 0;
    s->counter = w->counter;
    s->max_clients = w->max_clients;
    s->clip = w->clip;
    s->total_rows = w->total_rows;
    return 1;
}

/* Validation checked every byte string's length; these copies rely on it. */
static void get_sealed(fedc_sa_sealed *v, Fedc__SaSealed *const *w, size_t n) {
    for (size_t i = 0; i < n; i++) {
        v[i].from = w[i]->from;
        v[i].to = w[i]->to;
        memcpy(v[i].ct, w[i]->ct.data, FEDC_SA_SHARE_CT);
    }
}

static void *alloc_view(void **mem, size_t bytes) {
    *mem = malloc(bytes ? bytes : 1);
    return *mem;
}

fedc_err fedc_msg_view(fedc_msg *out, void **mem, const Fedc__Envelope *e, const uint8_t *raw,
                       size_t raw_len, fedc_diag *d) {
    memset(out, 0, sizeof *out);
    *mem = NULL;
    out->kind = (fedc_msg_kind)e->body_case;
    out->round = e->round;
    out->run_id = e->run_id.len == FEDC_RUN_ID_BYTES ? e->run_id.data : NULL;
    switch (e->body_case) {
    case FEDC__ENVELOPE__BODY_JOIN: {
        const Fedc__Join *j = e->join;
        get_schema(&out->join.schema, j->schema);
        out->join.name = j->name;
        out->join.n_rows = j->n_rows;
        out->join.model_kind = j->model_kind;
        out->join.n_params = j->n_params;
        get_tensor(&out->join.init, j->init, raw);
        break;
    }
    case FEDC__ENVELOPE__BODY_WELCOME: {
        const Fedc__Welcome *w = e->welcome;
        get_schema(&out->welcome.schema, w->schema);
        get_hp(&out->welcome.hp, w->hp);
        out->welcome.n_layer_sizes = w->n_layer_sizes;
        out->welcome.layer_sizes = w->layer_sizes;
        out->welcome.hidden_act = w->hidden_act;
        out->welcome.rounds = w->rounds;
        out->welcome.seed = w->seed;
        out->welcome.max_msg_bytes = w->max_msg_bytes;
        out->welcome.model_kind = w->model_kind;
        out->welcome.n_params = w->n_params;
        break;
    }
    case FEDC__ENVELOPE__BODY_STATS_REQUEST:
        out->stats_request.has_secagg =
            get_secagg(&out->stats_request.secagg, e->stats_request->secagg);
        break;
    case FEDC__ENVELOPE__BODY_STATS: {
        const Fedc__Stats *s = e->stats;
        out->stats.n_rows = s->n_rows;
        out->stats.n_sum = s->n_sum;
        out->stats.sum = s->sum;
        out->stats.n_sum_sq = s->n_sum_sq;
        out->stats.sum_sq = s->sum_sq;
        out->stats.n_class_count = s->n_class_count;
        out->stats.class_count = s->class_count;
        break;
    }
    case FEDC__ENVELOPE__BODY_FIT_INS: {
        const Fedc__FitIns *f = e->fit_ins;
        get_tensor(&out->fit_ins.weights, f->weights, raw);
        get_hp(&out->fit_ins.hp, f->hp);
        out->fit_ins.n_mean = f->n_mean;
        out->fit_ins.mean = f->mean;
        out->fit_ins.n_std = f->n_std;
        out->fit_ins.std = f->std;
        out->fit_ins.pos_weight = f->pos_weight;
        out->fit_ins.has_secagg = get_secagg(&out->fit_ins.secagg, f->secagg);
        out->fit_ins.update_norm_bound = f->update_norm_bound;
        break;
    }
    case FEDC__ENVELOPE__BODY_FIT_RES: {
        const Fedc__FitRes *f = e->fit_res;
        get_tensor(&out->fit_res.update, f->update, raw);
        out->fit_res.n_examples = f->n_examples;
        out->fit_res.train_loss = f->train_loss;
        out->fit_res.seconds = f->seconds;
        out->fit_res.unclipped = f->unclipped != 0;
        break;
    }
    case FEDC__ENVELOPE__BODY_EVALUATE_INS: {
        const Fedc__EvaluateIns *f = e->evaluate_ins;
        get_tensor(&out->evaluate_ins.weights, f->weights, raw);
        out->evaluate_ins.threshold = f->threshold;
        out->evaluate_ins.n_mean = f->n_mean;
        out->evaluate_ins.mean = f->mean;
        out->evaluate_ins.n_std = f->n_std;
        out->evaluate_ins.std = f->std;
        out->evaluate_ins.has_secagg = get_secagg(&out->evaluate_ins.secagg, f->secagg);
        break;
    }
    case FEDC__ENVELOPE__BODY_EVALUATE_RES: {
        const Fedc__EvaluateRes *r = e->evaluate_res;
        fedc_evaluate_res *o = &out->evaluate_res;
        o->n = r->n;
        o->n_hist_pos = r->n_hist_pos;
        o->hist_pos = r->hist_pos;
        o->n_hist_neg = r->n_hist_neg;
        o->hist_neg = r->hist_neg;
        o->tp = r->tp;
        o->fp = r->fp;
        o->tn = r->tn;
        o->fn = r->fn;
        o->log_loss_sum = r->log_loss_sum;
        o->n_confusion = r->n_confusion;
        o->confusion = r->confusion;
        o->sse = r->sse;
        o->sum_y = r->sum_y;
        o->sum_y2 = r->sum_y2;
        break;
    }
    case FEDC__ENVELOPE__BODY_HEARTBEAT:
        out->heartbeat.seq = e->heartbeat->seq;
        break;
    case FEDC__ENVELOPE__BODY_ERROR: {
        const Fedc__Error *r = e->error;
        /* The wire holds the magnitude of a (negative) fedc_err; a peer may send any number. */
        out->error.code = r->code <= INT_MAX ? (fedc_err)(-(int)r->code) : FEDC_EINVAL;
        out->error.reason = r->reason;
        out->error.sa_refusal = r->sa_refusal;
        out->error.n_sa_blame = r->n_sa_blame;
        out->error.sa_blame = r->sa_blame;
        out->error.sa_counter = r->sa_counter;
        out->error.kind = (fedc_error_kind)r->kind; /* validated: 0..FEDC_ERROR_KIND_MAX */
        break;
    }
    case FEDC__ENVELOPE__BODY_BYE:
        out->bye.code = (fedc_bye_code)e->bye->code; /* validated: 0..FEDC_BYE_MAX */
        out->bye.reason = e->bye->reason;
        break;
    case FEDC__ENVELOPE__BODY_SA_KEYS: {
        const Fedc__SaKeys *k = e->sa_keys;
        out->sa_keys.counter = k->counter;
        memcpy(out->sa_keys.adv.pk_c, k->pk_c.data, 32);
        memcpy(out->sa_keys.adv.pk_s, k->pk_s.data, 32);
        memcpy(out->sa_keys.adv.sig, k->sig.data, FEDC_SA_SIG_BYTES);
        memcpy(out->sa_keys.adv.commit, k->commit.data, 32);
        break;
    }
    case FEDC__ENVELOPE__BODY_SA_SHARE_INS: {
        const Fedc__SaShareIns *s = e->sa_share_ins;
        fedc_sa_peer *p = alloc_view(mem, s->n_peers * sizeof *p + 32 * s->n_reveals);
        if (!p)
            goto oom;
        uint8_t *rv = (uint8_t *)(p + s->n_peers);
        for (size_t i = 0; i < s->n_peers; i++) {
            const Fedc__SaPeer *w = s->peers[i];
            p[i].id = w->id;
            p[i].name = w->name;
            memcpy(p[i].adv.pk_c, w->pk_c.data, 32);
            memcpy(p[i].adv.pk_s, w->pk_s.data, 32);
            memcpy(p[i].adv.sig, w->sig.data, FEDC_SA_SIG_BYTES);
            memcpy(p[i].adv.commit, w->commit.data, 32);
        }
        for (size_t i = 0; i < s->n_reveals; i++)
            memcpy(rv + 32 * i, s->reveals[i].data, 32);
        fedc_sa_share_ins *o = &out->sa_share_ins;
        o->counter = s->counter;
        o->id = s->id;
        o->threshold = s->threshold;
        o->n_peers = s->n_peers;
        o->peers = p;
        o->n = s->n;
        o->h = s->h;
        o->n_reveals = s->n_reveals;
        o->reveals = s->n_reveals ? rv : NULL;
        break;
    }
    case FEDC__ENVELOPE__BODY_SA_SHARES:
    case FEDC__ENVELOPE__BODY_SA_MASK_INS: {
        int shares = e->body_case == FEDC__ENVELOPE__BODY_SA_SHARES;
        uint64_t counter = shares ? e->sa_shares->counter : e->sa_mask_ins->counter;
        size_t n = shares ? e->sa_shares->n_shares : e->sa_mask_ins->n_shares;
        fedc_sa_sealed *v = alloc_view(mem, n * sizeof *v);
        if (!v)
            goto oom;
        get_sealed(v, shares ? e->sa_shares->shares : e->sa_mask_ins->shares, n);
        fedc_sa_boxes *o = shares ? &out->sa_shares : &out->sa_mask_ins;
        o->counter = counter;
        o->n_shares = n;
        o->shares = v;
        break;
    }
    case FEDC__ENVELOPE__BODY_SA_MASKED:
        out->sa_masked.counter = e->sa_masked->counter;
        out->sa_masked.count = e->sa_masked->count;
        out->sa_masked.values = raw_len ? raw : NULL;
        break;
    case FEDC__ENVELOPE__BODY_SA_UNMASK_INS: {
        const Fedc__SaUnmaskIns *u = e->sa_unmask_ins;
        fedc_sa_sig *v = alloc_view(mem, u->n_sigs * sizeof *v);
        if (!v)
            goto oom;
        for (size_t i = 0; i < u->n_sigs; i++) {
            v[i].id = u->sigs[i]->id;
            memcpy(v[i].sig, u->sigs[i]->sig.data, FEDC_SA_SIG_BYTES);
        }
        out->sa_unmask_ins.counter = u->counter;
        out->sa_unmask_ins.n_sigs = u->n_sigs;
        out->sa_unmask_ins.sigs = v;
        break;
    }
    case FEDC__ENVELOPE__BODY_SA_UNMASK: {
        const Fedc__SaUnmask *u = e->sa_unmask;
        fedc_sa_reveal *v = alloc_view(mem, u->n_shares * sizeof *v);
        if (!v)
            goto oom;
        for (size_t i = 0; i < u->n_shares; i++) {
            v[i].owner = u->shares[i]->owner;
            v[i].kind = (int)u->shares[i]->kind;
            memcpy(v[i].share, u->shares[i]->share.data, 32);
        }
        out->sa_unmask.counter = u->counter;
        out->sa_unmask.n_shares = u->n_shares;
        out->sa_unmask.shares = v;
        break;
    }
    case FEDC__ENVELOPE__BODY_SA_GRAPH_INS: {
        const Fedc__SaGraphIns *g = e->sa_graph_ins;
        fedc_sa_member *v = alloc_view(mem, g->n_members * sizeof *v);
        if (!v)
            goto oom;
        for (size_t i = 0; i < g->n_members; i++) {
            v[i].id = g->members[i]->id;
            v[i].name = g->members[i]->name;
            v[i].commit = g->members[i]->commit.data;
        }
        out->sa_graph_ins.counter = g->counter;
        out->sa_graph_ins.id = g->id;
        out->sa_graph_ins.h = g->h;
        out->sa_graph_ins.n_members = g->n_members;
        out->sa_graph_ins.members = v;
        break;
    }
    case FEDC__ENVELOPE__BODY_SA_GRAPH:
        out->sa_graph.counter = e->sa_graph->counter;
        out->sa_graph.r = e->sa_graph->r.data;
        break;
    case FEDC__ENVELOPE__BODY_SA_CONSIST_INS:
        out->sa_consist_ins.counter = e->sa_consist_ins->counter;
        out->sa_consist_ins.n_survivors = e->sa_consist_ins->n_survivors;
        out->sa_consist_ins.survivors = e->sa_consist_ins->survivors;
        break;
    case FEDC__ENVELOPE__BODY_SA_CONSIST:
        out->sa_consist.counter = e->sa_consist->counter;
        out->sa_consist.sig = e->sa_consist->sig.data;
        break;
    default:
        out->kind = FEDC_MSG_NONE;
        fedc_diag_set(d, "a message without a body");
        return FEDC_EFORMAT;
    }
    return FEDC_OK;
oom:
    out->kind = FEDC_MSG_NONE;
    fedc_diag_set(d, "out of memory reading %s", fedc_msg_body_name(e->body_case));
    return FEDC_ENOMEM;
}
