/* Received protobuf envelopes to the typed fedc_msg views of msg.h, and the tensor helpers
 * (contracts in msg.h and codec.h). The other direction, typed messages to envelopes, is in msg.c.
 *
 * Receiving points the view into the decoded envelope and the raw frame: nothing is copied but
 * the few secure-aggregation records the view holds as arrays. */
#include "fedc/codec.h"

#include <stdlib.h>
#include <string.h>

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
    if (t->count == 0 || (const void *)out == t->data)
        return; /* data may be NULL then, and memcpy from NULL is undefined even for 0 bytes; a
                 * tensor already in out (pulled in chunks into it) stays */
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
/* ---- envelope -> typed view ------------------------------------------------------------------ */

static void get_tensor(fedc_tensor *t, const Fedc__Tensor *w, const uint8_t *raw) {
    t->count = w ? w->count : 0;
    t->streamed = w && w->streamed;
    t->data = !w || !w->count || w->streamed ? NULL
              : w->data.len                  ? (const void *)w->data.data
                                             : (const void *)raw;
}

static void get_schema(fedc_schema *s, const Fedc__Schema *w) {
    s->n_features = w->n_feature_names;
    s->feature_names = w->feature_names;
    s->label = w->label;
    s->task = w->task;
    s->n_classes = w->n_classes;
    s->encoding = w->encoding;
    s->features = w->features;
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
    h->keep_opt_state = w->keep_opt_state != 0;
}

static int get_secagg(fedc_secagg_ins *s, const Fedc__SecAggIns *w) {
    if (!w)
        return 0;
    s->counter = w->counter;
    s->max_clients = w->max_clients;
    s->clip = w->clip;
    s->total_rows = w->total_rows;
    s->hold = w->hold != 0;
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
        out->welcome.init_wanted = w->init_wanted;
        out->welcome.heartbeat_ms = w->heartbeat_ms;
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
        out->stats.n_present = s->n_present;
        out->stats.present = s->present;
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
        out->fit_res.held = f->held != 0;
        break;
    }
    case FEDC__ENVELOPE__BODY_SA_FIT_INS: {
        const Fedc__SaFitIns *f = e->sa_fit_ins;
        out->sa_fit_ins.trained_round = f->trained_round;
        out->sa_fit_ins.staleness_weight = f->staleness_weight;
        (void)get_secagg(&out->sa_fit_ins.secagg, f->secagg);
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
        fedc_sa_peer *p = alloc_view(mem, s->n_peers * sizeof *p);
        if (!p)
            goto oom;
        for (size_t i = 0; i < s->n_peers; i++) {
            const Fedc__SaPeer *w = s->peers[i];
            memset(&p[i], 0, sizeof p[i]);
            p[i].id = w->id;
            p[i].name = w->name && w->name[0] ? w->name : NULL; /* none in graph mode */
            memcpy(p[i].adv.pk_c, w->pk_c.data, 32);
            memcpy(p[i].adv.pk_s, w->pk_s.data, 32);
            memcpy(p[i].adv.sig, w->sig.data, FEDC_SA_SIG_BYTES);
            if (w->commit.len == 32)
                memcpy(p[i].adv.commit, w->commit.data, 32);
        }
        fedc_sa_share_ins *o = &out->sa_share_ins;
        o->counter = s->counter;
        o->id = s->id;
        o->threshold = s->threshold;
        o->n_peers = s->n_peers;
        o->peers = p;
        o->n = s->n;
        o->h = s->h;
        o->n_reveals = s->reveals.len / 32;
        o->reveals = s->reveals.len ? s->reveals.data : NULL;
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
        out->sa_masked.streamed = e->sa_masked->streamed != 0;
        break;
    case FEDC__ENVELOPE__BODY_CHUNK:
        out->chunk.stream = e->chunk->stream;
        out->chunk.counter = e->chunk->counter;
        out->chunk.offset = e->chunk->offset;
        out->chunk.total = e->chunk->total;
        out->chunk.count = raw_len / 4;
        out->chunk.values = raw_len ? raw : NULL;
        break;
    case FEDC__ENVELOPE__BODY_CHUNK_REQ:
        out->chunk_req.stream = e->chunk_req->stream;
        out->chunk_req.counter = e->chunk_req->counter;
        out->chunk_req.offset = e->chunk_req->offset;
        out->chunk_req.count = e->chunk_req->count;
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
        out->sa_graph_ins.counter = g->counter;
        out->sa_graph_ins.id = g->id;
        out->sa_graph_ins.h = g->h;
        out->sa_graph_ins.n_members = g->n_names;
        out->sa_graph_ins.names = (const char *const *)g->names;
        out->sa_graph_ins.commits_digest = g->commits.data;
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
