/* Envelope packing, unpacking and validation (contracts in codec.h). Every check names the field,
 * what was expected and what arrived, so the peer gets a useful Error reply. */
#include "fedc/codec.h"

#include "codec_int.h"
#include "fedc/sa_proto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_BYTES ((size_t)64 << 20)

fedc_err fedc_msg_pack(uint8_t **buf, size_t *len, const Fedc__Envelope *e) {
    size_t n = fedc__envelope__get_packed_size(e);
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return FEDC_ENOMEM;
    size_t w = fedc__envelope__pack(e, p);
    if (w != n) {
        free(p);
        return FEDC_EINVAL;
    }
    *buf = p;
    *len = n;
    return FEDC_OK;
}

void fedc_msg_free(Fedc__Envelope **e) {
    if (!e || !*e)
        return;
    fedc__envelope__free_unpacked(*e, NULL);
    *e = NULL;
}

const char *fedc_msg_body_name(Fedc__Envelope__BodyCase c) {
    switch (c) {
    case FEDC__ENVELOPE__BODY_JOIN:
        return "join";
    case FEDC__ENVELOPE__BODY_WELCOME:
        return "welcome";
    case FEDC__ENVELOPE__BODY_STATS_REQUEST:
        return "stats_request";
    case FEDC__ENVELOPE__BODY_STATS:
        return "stats";
    case FEDC__ENVELOPE__BODY_FIT_INS:
        return "fit_ins";
    case FEDC__ENVELOPE__BODY_FIT_RES:
        return "fit_res";
    case FEDC__ENVELOPE__BODY_EVALUATE_INS:
        return "evaluate_ins";
    case FEDC__ENVELOPE__BODY_EVALUATE_RES:
        return "evaluate_res";
    case FEDC__ENVELOPE__BODY_HEARTBEAT:
        return "heartbeat";
    case FEDC__ENVELOPE__BODY_ERROR:
        return "error";
    case FEDC__ENVELOPE__BODY_BYE:
        return "bye";
    case FEDC__ENVELOPE__BODY_CHUNK:
        return "chunk";
    case FEDC__ENVELOPE__BODY_CHUNK_REQ:
        return "chunk_req";
    case FEDC__ENVELOPE__BODY_SA_KEYS:
        return "sa_keys";
    case FEDC__ENVELOPE__BODY_SA_SHARE_INS:
        return "sa_share_ins";
    case FEDC__ENVELOPE__BODY_SA_SHARES:
        return "sa_shares";
    case FEDC__ENVELOPE__BODY_SA_MASK_INS:
        return "sa_mask_ins";
    case FEDC__ENVELOPE__BODY_SA_MASKED:
        return "sa_masked";
    case FEDC__ENVELOPE__BODY_SA_UNMASK_INS:
        return "sa_unmask_ins";
    case FEDC__ENVELOPE__BODY_SA_UNMASK:
        return "sa_unmask";
    case FEDC__ENVELOPE__BODY_SA_GRAPH_INS:
        return "sa_graph_ins";
    case FEDC__ENVELOPE__BODY_SA_GRAPH:
        return "sa_graph";
    case FEDC__ENVELOPE__BODY_SA_CONSIST_INS:
        return "sa_consist_ins";
    case FEDC__ENVELOPE__BODY_SA_CONSIST:
        return "sa_consist";
    case FEDC__ENVELOPE__BODY_SA_FIT_INS:
        return "sa_fit_ins";
    default:
        return "none";
    }
}

void fedc_tensor_pack(Fedc__Tensor *t, uint8_t *storage, const float *v, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(storage, v, 4 * n); /* the wire order is the host order */
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        storage[4 * i] = (uint8_t)u;
        storage[4 * i + 1] = (uint8_t)(u >> 8);
        storage[4 * i + 2] = (uint8_t)(u >> 16);
        storage[4 * i + 3] = (uint8_t)(u >> 24);
    }
#endif
    t->count = n;
    t->data.data = storage;
    t->data.len = 4 * n;
}

void fedc_tensor_unpack(float *out, const Fedc__Tensor *t, const uint8_t *raw) {
    const uint8_t *p = t->data.len ? t->data.data : raw;
    if (t->count == 0)
        return; /* p may be NULL then, and memcpy from NULL is undefined even for 0 bytes */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(out, p, 4 * (size_t)t->count);
#else
    for (size_t i = 0; i < t->count; i++) {
        uint32_t u = get_le32(p + 4 * i);
        memcpy(&out[i], &u, 4);
    }
#endif
}

/* A tensor of exactly n finite floats (or, streamed, their count only). */
static fedc_err check_tensor(const Fedc__Tensor *t, uint64_t n, const fedc_msg_expect *x,
                             const char *what, fedc_diag *d) {
    if (!t) {
        fedc_diag_set(d, "%s: missing", what);
        return FEDC_EMISMATCH;
    }
    if (n && t->count != n) {
        fedc_diag_set(d, "%s: expected %llu values, got %llu", what, (unsigned long long)n,
                      (unsigned long long)t->count);
        return FEDC_EMISMATCH;
    }
    if (t->count > SIZE_MAX / 4) {
        fedc_diag_set(d, "%s: %llu values is too many", what, (unsigned long long)t->count);
        return FEDC_ERANGE;
    }
    if (t->streamed) {
        /* The values come later in chunks the receiver asks for: nothing may come along. */
        if (t->count < 1 || t->count > FEDC_MAX_PARAMS || t->data.len || x->raw) {
            fedc_diag_set(d,
                          "%s: a streamed tensor of %llu values (expected 1..%llu) with %zu bytes "
                          "inline and %zu in a raw frame (expected none)",
                          what, (unsigned long long)t->count, (unsigned long long)FEDC_MAX_PARAMS,
                          t->data.len, x->raw ? x->raw_len : 0);
            return FEDC_EMISMATCH;
        }
        return FEDC_OK;
    }
    /* The values are either inside the message or in the raw frame that follows it. */
    const uint8_t *p = t->data.data;
    size_t have = t->data.len;
    const char *where = "in the message";
    if (have == 0 && t->count > 0) {
        p = x->raw;
        have = x->raw ? x->raw_len : 0;
        where = "in the raw frame after the message";
    } else if (x->raw) {
        fedc_diag_set(d, "%s: a raw frame of %zu bytes follows a message that carries its values",
                      what, x->raw_len);
        return FEDC_EMISMATCH;
    }
    if (have != 4 * (size_t)t->count) {
        fedc_diag_set(d, "%s: %llu values need %llu bytes %s, got %zu", what,
                      (unsigned long long)t->count, (unsigned long long)t->count * 4, where, have);
        return FEDC_EMISMATCH;
    }
    return fedc__check_finite(p, (size_t)t->count, 0, what, d);
}

static fedc_err check_doubles(const double *v, size_t n, size_t want, const char *what,
                              fedc_diag *d) {
    if (want && n != want) {
        fedc_diag_set(d, "%s: expected %zu values, got %zu", what, want, n);
        return FEDC_EMISMATCH;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            fedc_diag_set(d, "%s: value %zu is not finite", what, i);
            return FEDC_ERANGE;
        }
    }
    return FEDC_OK;
}

static fedc_err check_floats(const float *v, size_t n, size_t want, const char *what,
                             fedc_diag *d) {
    if (want && n != want) {
        fedc_diag_set(d, "%s: expected %zu values, got %zu", what, want, n);
        return FEDC_EMISMATCH;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            fedc_diag_set(d, "%s: value %zu is not finite", what, i);
            return FEDC_ERANGE;
        }
    }
    return FEDC_OK;
}

static fedc_err check_string(const char *s, size_t max, const char *what, fedc_diag *d) {
    size_t n = s ? strlen(s) : 0;
    if (n > max) {
        fedc_diag_set(d, "%s: %zu bytes, at most %zu allowed", what, n, max);
        return FEDC_ERANGE;
    }
    return FEDC_OK;
}

static fedc_err check_schema(const Fedc__Schema *s, const fedc_msg_expect *x, fedc_diag *d) {
    if (!s) {
        fedc_diag_set(d, "schema: missing");
        return FEDC_EMISMATCH;
    }
    if (s->n_feature_names < 1 || s->n_feature_names > FEDC_MAX_FEATURES) {
        fedc_diag_set(d, "schema: %zu feature names, expected 1..%d", s->n_feature_names,
                      FEDC_MAX_FEATURES);
        return FEDC_ERANGE;
    }
    if (x->n_features && s->n_feature_names != x->n_features) {
        fedc_diag_set(d, "schema: expected %u features, got %zu", x->n_features,
                      s->n_feature_names);
        return FEDC_EMISMATCH;
    }
    for (size_t i = 0; i < s->n_feature_names; i++) {
        fedc_err rc = check_string(s->feature_names[i], 4096, "schema: feature name", d);
        if (rc)
            return rc;
    }
    if (s->task > 2) {
        fedc_diag_set(d, "schema: task %u is not 0 (binary), 1 (multiclass) or 2 (regression)",
                      s->task);
        return FEDC_ERANGE;
    }
    uint32_t want = s->task == 0 ? 2 : (s->task == 2 ? 1 : s->n_classes);
    if (s->n_classes != want || s->n_classes > FEDC_MAX_CLASSES || (s->task == 1 && want < 3)) {
        fedc_diag_set(d, "schema: %u classes do not fit task %u", s->n_classes, s->task);
        return FEDC_ERANGE;
    }
    return check_string(s->label, 4096, "schema: label", d);
}

static fedc_err check_hp(const Fedc__HyperParams *hp, fedc_diag *d) {
    if (!hp) {
        fedc_diag_set(d, "hyper-parameters: missing");
        return FEDC_EMISMATCH;
    }
    if (hp->local_epochs < 1 || hp->local_epochs > 100000 || hp->batch < 1 ||
        hp->batch > (1u << 20) || !(hp->lr > 0.0f) || !isfinite(hp->lr) || !(hp->prox_mu >= 0.0f) ||
        !isfinite(hp->prox_mu) || hp->optimizer > 1 || !(hp->l2 >= 0.0f) || !isfinite(hp->l2) ||
        !(hp->dropout >= 0.0f && hp->dropout < 1.0f) ||
        !(hp->val_fraction >= 0.0f && hp->val_fraction < 1.0f) ||
        !(hp->clip_norm >= 0.0f && hp->clip_norm <= 1e6f)) {
        fedc_diag_set(
            d,
            "hyper-parameters out of range: local_epochs %u, batch %u, lr %g, prox_mu %g, "
            "optimizer %u, l2 %g, dropout %g, val_fraction %g, clip_norm %g",
            hp->local_epochs, hp->batch, (double)hp->lr, (double)hp->prox_mu, hp->optimizer,
            (double)hp->l2, (double)hp->dropout, (double)hp->val_fraction, (double)hp->clip_norm);
        return FEDC_ERANGE;
    }
    return FEDC_OK;
}

static fedc_err check_bytes(const ProtobufCBinaryData *b, size_t want, const char *what,
                            fedc_diag *d) {
    if (b->len != want) {
        fedc_diag_set(d, "%s: %zu bytes, expected %zu", what, b->len, want);
        return FEDC_EMISMATCH;
    }
    return FEDC_OK;
}

static fedc_err check_secagg_ins(const Fedc__SecAggIns *s, const char *what, fedc_diag *d) {
    if (!s)
        return FEDC_OK;
    if (s->max_clients < 1 || s->max_clients > 65536 || !(s->clip > 0.0f) || !isfinite(s->clip) ||
        !isfinite(s->total_rows) || s->total_rows < 0) {
        fedc_diag_set(d,
                      "%s: secure aggregation settings out of range: max_clients %u, clip %g, "
                      "total_rows %g",
                      what, s->max_clients, (double)s->clip, s->total_rows);
        return FEDC_ERANGE;
    }
    return FEDC_OK;
}

static fedc_err check_sealed(Fedc__SaSealed *const *v, size_t n, const char *what, fedc_diag *d) {
    if (n > FEDC_SA_MAX_NBRS) {
        fedc_diag_set(d, "%s: %zu shares, at most %d", what, n, FEDC_SA_MAX_NBRS);
        return FEDC_ERANGE;
    }
    for (size_t i = 0; i < n; i++) {
        fedc_err rc = check_bytes(&v[i]->ct, FEDC_SA_SHARE_CT, what, d);
        if (rc)
            return rc;
    }
    return FEDC_OK;
}

static fedc_err check_secagg(const Fedc__Envelope *e, const fedc_msg_expect *x, fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    switch (e->body_case) {
    case FEDC__ENVELOPE__BODY_SA_KEYS: {
        const Fedc__SaKeys *k = e->sa_keys;
        if ((rc = check_bytes(&k->pk_c, 32, "sa_keys: pk_c", d)) ||
            (rc = check_bytes(&k->pk_s, 32, "sa_keys: pk_s", d)) ||
            (rc = check_bytes(&k->sig, 64, "sa_keys: sig", d)) ||
            (rc = check_bytes(&k->commit, 32, "sa_keys: commit", d)))
            return rc;
        return FEDC_OK;
    }
    case FEDC__ENVELOPE__BODY_SA_GRAPH_INS: {
        const Fedc__SaGraphIns *g = e->sa_graph_ins;
        if (g->n_names < 2 || g->n_names > FEDC_SA_MAX_N || g->h < 1 || g->id >= g->n_names) {
            fedc_diag_set(d, "sa_graph_ins: %zu participants, h %u, receiver %u", g->n_names, g->h,
                          g->id);
            return FEDC_ERANGE;
        }
        if ((rc = check_bytes(&g->commits, 32, "sa_graph_ins: commitments' digest", d)))
            return rc;
        for (size_t i = 0; i < g->n_names; i++)
            if ((rc = check_string(g->names[i], FEDC_NAME_MAX, "sa_graph_ins: name", d)))
                return rc;
        return FEDC_OK;
    }
    case FEDC__ENVELOPE__BODY_SA_GRAPH:
        return check_bytes(&e->sa_graph->r, 32, "sa_graph: r", d);
    case FEDC__ENVELOPE__BODY_SA_CONSIST_INS: {
        const Fedc__SaConsistIns *c = e->sa_consist_ins;
        if (c->n_survivors < 1 || c->n_survivors > FEDC_SA_MAX_N) {
            fedc_diag_set(d, "sa_consist_ins: %zu survivors, expected 1..%d", c->n_survivors,
                          FEDC_SA_MAX_N);
            return FEDC_ERANGE;
        }
        for (size_t i = 1; i < c->n_survivors; i++) {
            if (c->survivors[i] <= c->survivors[i - 1]) {
                fedc_diag_set(d, "sa_consist_ins: survivor ids not ascending");
                return FEDC_EFORMAT;
            }
        }
        return FEDC_OK;
    }
    case FEDC__ENVELOPE__BODY_SA_CONSIST:
        return check_bytes(&e->sa_consist->sig, 64, "sa_consist: sig", d);
    case FEDC__ENVELOPE__BODY_SA_SHARE_INS: {
        const Fedc__SaShareIns *s = e->sa_share_ins;
        if (s->n_peers < 1 || s->n_peers > FEDC_SA_MAX_NBRS || s->threshold < 1 ||
            s->threshold > s->n_peers || s->n < s->n_peers || s->n > FEDC_SA_MAX_N ||
            (s->reveals.len != 0 && s->reveals.len != 32 * (size_t)s->n)) {
            fedc_diag_set(d,
                          "sa_share_ins: %zu neighbours of %u participants with threshold %u and "
                          "%zu bytes of reveals (expected 0 or 32 per participant)",
                          s->n_peers, s->n, s->threshold, s->reveals.len);
            return FEDC_ERANGE;
        }
        /* Graph mode (reveals): no names or commitments of the neighbours, the receiver has them;
         * otherwise both. */
        int graph = s->reveals.len != 0;
        for (size_t i = 0; i < s->n_peers; i++) {
            const Fedc__SaPeer *p = s->peers[i];
            if ((rc = check_bytes(&p->pk_c, 32, "sa_share_ins: pk_c", d)) ||
                (rc = check_bytes(&p->pk_s, 32, "sa_share_ins: pk_s", d)) ||
                (rc = check_bytes(&p->sig, 64, "sa_share_ins: sig", d)) ||
                (rc = check_bytes(&p->commit, graph ? 0 : 32, "sa_share_ins: commit", d)) ||
                (rc = check_string(p->name, FEDC_NAME_MAX, "sa_share_ins: name", d)))
                return rc;
            if (graph != !(p->name && p->name[0])) {
                fedc_diag_set(
                    d, "sa_share_ins: neighbour %u %s a name (expected %s with%s reveals)", p->id,
                    graph ? "carries" : "lacks", graph ? "none" : "one", graph ? "" : "out");
                return FEDC_EFORMAT;
            }
            if (i > 0 && p->id <= s->peers[i - 1]->id) {
                fedc_diag_set(d, "sa_share_ins: neighbour ids not ascending");
                return FEDC_EFORMAT;
            }
        }
        return FEDC_OK;
    }
    case FEDC__ENVELOPE__BODY_SA_SHARES:
        return check_sealed(e->sa_shares->shares, e->sa_shares->n_shares, "sa_shares", d);
    case FEDC__ENVELOPE__BODY_SA_MASK_INS:
        return check_sealed(e->sa_mask_ins->shares, e->sa_mask_ins->n_shares, "sa_mask_ins", d);
    case FEDC__ENVELOPE__BODY_SA_MASKED: {
        const Fedc__SaMasked *m = e->sa_masked;
        size_t have = x->raw ? x->raw_len : 0;
        if (m->streamed && (m->count < 1 || m->count > ((uint64_t)1 << 31) || have)) {
            fedc_diag_set(d,
                          "sa_masked: streamed, %llu values (expected 1..2^31) with a raw frame "
                          "of %zu bytes (expected none)",
                          (unsigned long long)m->count, have);
            return FEDC_EMISMATCH;
        }
        if (m->streamed)
            return FEDC_OK;
        if (m->count > ((uint64_t)1 << 31) || have != 4 * (size_t)m->count) {
            fedc_diag_set(d,
                          "sa_masked: %llu values of 4 bytes (at most 2^31 values) do not match "
                          "the raw frame of %zu bytes",
                          (unsigned long long)m->count, have);
            return FEDC_EMISMATCH;
        }
        return FEDC_OK;
    }
    case FEDC__ENVELOPE__BODY_SA_UNMASK_INS: {
        const Fedc__SaUnmaskIns *u = e->sa_unmask_ins;
        if (u->n_sigs > FEDC_SA_MAX_N) {
            fedc_diag_set(d, "sa_unmask_ins: %zu signatures, at most %d", u->n_sigs, FEDC_SA_MAX_N);
            return FEDC_ERANGE;
        }
        for (size_t i = 0; i < u->n_sigs; i++)
            if ((rc = check_bytes(&u->sigs[i]->sig, 64, "sa_unmask_ins: sig", d)))
                return rc;
        return FEDC_OK;
    }
    case FEDC__ENVELOPE__BODY_SA_UNMASK: {
        const Fedc__SaUnmask *u = e->sa_unmask;
        if (u->n_shares > FEDC_SA_MAX_NBRS) {
            fedc_diag_set(d, "sa_unmask: %zu shares, at most %d", u->n_shares, FEDC_SA_MAX_NBRS);
            return FEDC_ERANGE;
        }
        for (size_t i = 0; i < u->n_shares; i++) {
            if ((rc = check_bytes(&u->shares[i]->share, 32, "sa_unmask: share", d)))
                return rc;
            if (u->shares[i]->kind != FEDC_SA_REVEAL_B && u->shares[i]->kind != FEDC_SA_REVEAL_SK) {
                fedc_diag_set(d, "sa_unmask: share kind %u is not 1 or 2", u->shares[i]->kind);
                return FEDC_ERANGE;
            }
        }
        return FEDC_OK;
    }
    default:
        fedc_diag_set(d, "empty message: no body");
        return FEDC_EFORMAT;
    }
}

static fedc_err check_body(const Fedc__Envelope *e, const fedc_msg_expect *x, fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    switch (e->body_case) {
    case FEDC__ENVELOPE__BODY_JOIN: {
        const Fedc__Join *j = e->join;
        const char *name = j->name ? j->name : "";
        if (name[0] == 0 || strlen(name) > FEDC_NAME_MAX) {
            fedc_diag_set(d, "join: name must be 1..%d bytes", FEDC_NAME_MAX);
            return FEDC_ERANGE;
        }
        for (const char *p = name; *p; p++) {
            if (*p < 0x21 || *p > 0x7e) {
                fedc_diag_set(d, "join: name may contain printable ASCII only");
                return FEDC_ERANGE;
            }
        }
        if ((rc = check_schema(j->schema, x, d)) ||
            (rc = check_string(j->model_kind, FEDC_MODEL_KIND_MAX, "join: model kind", d)))
            return rc;
        if (j->n_params > FEDC_MAX_PARAMS) {
            fedc_diag_set(d, "join: %llu parameters, at most %llu", (unsigned long long)j->n_params,
                          (unsigned long long)FEDC_MAX_PARAMS);
            return FEDC_ERANGE;
        }
        if (!j->n_params && (j->init || x->raw)) {
            fedc_diag_set(d, "join: initial values without a parameter count");
            return FEDC_EMISMATCH;
        }
        return j->n_params ? check_tensor(j->init, j->n_params, x, "join: init", d) : FEDC_OK;
    }
    case FEDC__ENVELOPE__BODY_WELCOME: {
        const Fedc__Welcome *w = e->welcome;
        if ((rc = check_schema(w->schema, x, d)) ||
            (rc = check_string(w->model_kind, FEDC_MODEL_KIND_MAX, "welcome: model kind", d)))
            return rc;
        if (w->n_params) {
            /* A model of the clients' own: no layers. */
            if (w->n_layer_sizes || w->n_params > FEDC_MAX_PARAMS) {
                fedc_diag_set(d, "welcome: %zu layer sizes with %llu parameters of an own model",
                              w->n_layer_sizes, (unsigned long long)w->n_params);
                return FEDC_ERANGE;
            }
            return check_hp(w->hp, d);
        }
        if (w->n_layer_sizes < 2 || w->n_layer_sizes > 17) {
            fedc_diag_set(d, "welcome: %zu layer sizes, expected 2..17", w->n_layer_sizes);
            return FEDC_ERANGE;
        }
        for (size_t i = 0; i < w->n_layer_sizes; i++) {
            if (w->layer_sizes[i] < 1 || w->layer_sizes[i] > 65536) {
                fedc_diag_set(d, "welcome: layer %zu width %u out of range 1..65536", i,
                              w->layer_sizes[i]);
                return FEDC_ERANGE;
            }
        }
        if (w->layer_sizes[0] != w->schema->n_feature_names) {
            fedc_diag_set(d, "welcome: input width %u differs from the schema's %zu features",
                          w->layer_sizes[0], w->schema->n_feature_names);
            return FEDC_EMISMATCH;
        }
        if (w->hidden_act > 3) {
            fedc_diag_set(d, "welcome: hidden activation %u unknown", w->hidden_act);
            return FEDC_ERANGE;
        }
        return check_hp(w->hp, d);
    }
    case FEDC__ENVELOPE__BODY_STATS_REQUEST:
        return check_secagg_ins(e->stats_request->secagg, "stats_request", d);
    case FEDC__ENVELOPE__BODY_HEARTBEAT:
        return FEDC_OK;
    case FEDC__ENVELOPE__BODY_STATS: {
        const Fedc__Stats *s = e->stats;
        if ((rc = check_doubles(s->sum, s->n_sum, x->n_features, "stats: sum", d)) ||
            (rc = check_doubles(s->sum_sq, s->n_sum_sq, x->n_features, "stats: sum_sq", d)))
            return rc;
        if (s->n_sum != s->n_sum_sq) {
            fedc_diag_set(d, "stats: %zu sums but %zu sums of squares", s->n_sum, s->n_sum_sq);
            return FEDC_EMISMATCH;
        }
        for (size_t i = 0; i < s->n_sum_sq; i++) {
            if (s->sum_sq[i] < 0.0) {
                fedc_diag_set(d, "stats: sum_sq %zu is negative", i);
                return FEDC_ERANGE;
            }
        }
        if (x->n_classes > 1 && s->n_class_count != x->n_classes) {
            fedc_diag_set(d, "stats: expected %u class counts, got %zu", x->n_classes,
                          s->n_class_count);
            return FEDC_EMISMATCH;
        }
        uint64_t total = 0;
        for (size_t i = 0; i < s->n_class_count; i++) {
            if (s->class_count[i] > s->n_rows || total + s->class_count[i] < total) {
                fedc_diag_set(d, "stats: class counts exceed the %llu rows",
                              (unsigned long long)s->n_rows);
                return FEDC_ERANGE;
            }
            total += s->class_count[i];
        }
        if (s->n_class_count && total != s->n_rows) {
            fedc_diag_set(d, "stats: class counts sum to %llu, rows are %llu",
                          (unsigned long long)total, (unsigned long long)s->n_rows);
            return FEDC_EMISMATCH;
        }
        return FEDC_OK;
    }
    case FEDC__ENVELOPE__BODY_FIT_INS: {
        const Fedc__FitIns *f = e->fit_ins;
        if ((rc = check_tensor(f->weights, x->n_params, x, "fit_ins: weights", d)) ||
            (rc = check_hp(f->hp, d)) ||
            (rc = check_floats(f->mean, f->n_mean, x->n_features, "fit_ins: mean", d)) ||
            (rc = check_floats(f->std, f->n_std, x->n_features, "fit_ins: std", d)))
            return rc;
        for (size_t i = 0; i < f->n_std; i++) {
            if (!(f->std[i] > 0.0f)) {
                fedc_diag_set(d, "fit_ins: std %zu is not positive", i);
                return FEDC_ERANGE;
            }
        }
        if (!(f->pos_weight > 0.0f) || !isfinite(f->pos_weight)) {
            fedc_diag_set(d, "fit_ins: pos_weight %g is not a positive number",
                          (double)f->pos_weight);
            return FEDC_ERANGE;
        }
        if (!(f->update_norm_bound >= 0.0f && f->update_norm_bound <= 1e6f)) {
            fedc_diag_set(d, "fit_ins: update_norm_bound %g, expected 0 (none) to 1e6",
                          (double)f->update_norm_bound);
            return FEDC_ERANGE;
        }
        return check_secagg_ins(f->secagg, "fit_ins", d);
    }
    case FEDC__ENVELOPE__BODY_FIT_RES: {
        const Fedc__FitRes *f = e->fit_res;
        if (f->held) {
            /* The update stays at the client until its secure session: nothing else here. */
            if ((f->update && (f->update->count || f->update->data.len || f->update->streamed)) ||
                x->raw || f->n_examples || f->train_loss != 0.0 || !isfinite(f->seconds) ||
                f->seconds < 0.0) {
                fedc_diag_set(d,
                              "fit_res: a held update carries no values, rows or loss (got %llu "
                              "values, %llu rows, loss %g, seconds %g)",
                              (unsigned long long)(f->update ? f->update->count : 0),
                              (unsigned long long)f->n_examples, f->train_loss, f->seconds);
                return FEDC_EINVAL;
            }
            return FEDC_OK;
        }
        if ((rc = check_tensor(f->update, x->n_params, x, "fit_res: update", d)))
            return rc;
        if (f->n_examples < 1 || f->n_examples > ((uint64_t)1 << 40)) {
            fedc_diag_set(d, "fit_res: n_examples %llu out of range 1..2^40",
                          (unsigned long long)f->n_examples);
            return FEDC_ERANGE;
        }
        if (!isfinite(f->train_loss) || f->train_loss < 0.0 || !isfinite(f->seconds) ||
            f->seconds < 0.0) {
            fedc_diag_set(d, "fit_res: train_loss %g or seconds %g is not a non-negative number",
                          f->train_loss, f->seconds);
            return FEDC_ERANGE;
        }
        return FEDC_OK;
    }
    case FEDC__ENVELOPE__BODY_EVALUATE_INS: {
        const Fedc__EvaluateIns *f = e->evaluate_ins;
        if ((rc = check_tensor(f->weights, x->n_params, x, "evaluate_ins: weights", d)) ||
            (rc = check_floats(f->mean, f->n_mean, x->n_features, "evaluate_ins: mean", d)) ||
            (rc = check_floats(f->std, f->n_std, x->n_features, "evaluate_ins: std", d)))
            return rc;
        if (f->n_mean != f->n_std) {
            fedc_diag_set(d, "evaluate_ins: %zu means but %zu standard deviations", f->n_mean,
                          f->n_std);
            return FEDC_EMISMATCH;
        }
        for (size_t i = 0; i < f->n_std; i++) {
            if (!(f->std[i] > 0.0f)) {
                fedc_diag_set(d, "evaluate_ins: std %zu is not positive", i);
                return FEDC_ERANGE;
            }
        }
        if (!(f->threshold >= 0.0f && f->threshold <= 1.0f)) {
            fedc_diag_set(d, "evaluate_ins: threshold %g outside [0, 1]", (double)f->threshold);
            return FEDC_ERANGE;
        }
        return check_secagg_ins(f->secagg, "evaluate_ins", d);
    }
    case FEDC__ENVELOPE__BODY_EVALUATE_RES: {
        const Fedc__EvaluateRes *r = e->evaluate_res;
        if (!isfinite(r->log_loss_sum) || r->log_loss_sum < 0.0) {
            fedc_diag_set(d, "evaluate_res: log_loss_sum %g is not a non-negative number",
                          r->log_loss_sum);
            return FEDC_ERANGE;
        }
        if (!isfinite(r->sse) || r->sse < 0.0 || !isfinite(r->sum_y) || !isfinite(r->sum_y2) ||
            r->sum_y2 < 0.0) {
            fedc_diag_set(d, "evaluate_res: regression sums (sse %g, sum_y %g, sum_y2 %g) invalid",
                          r->sse, r->sum_y, r->sum_y2);
            return FEDC_ERANGE;
        }
        if (r->n_confusion) { /* multiclass */
            uint64_t k = x->n_classes;
            if (r->n_hist_pos || r->n_hist_neg || (k > 2 && r->n_confusion != k * k) ||
                r->n_confusion > (size_t)FEDC_MAX_CLASSES * 64) {
                fedc_diag_set(d, "evaluate_res: confusion matrix of %zu cells, expected %llu",
                              r->n_confusion, (unsigned long long)(k * k));
                return FEDC_EMISMATCH;
            }
            uint64_t total = 0;
            for (size_t i = 0; i < r->n_confusion; i++) {
                if (r->confusion[i] > r->n || total + r->confusion[i] < total) {
                    fedc_diag_set(d, "evaluate_res: confusion counts exceed n = %llu",
                                  (unsigned long long)r->n);
                    return FEDC_ERANGE;
                }
                total += r->confusion[i];
            }
            if (total != r->n) {
                fedc_diag_set(d, "evaluate_res: confusion counts sum to %llu, n is %llu",
                              (unsigned long long)total, (unsigned long long)r->n);
                return FEDC_EMISMATCH;
            }
            return FEDC_OK;
        }
        /* Empty histograms: a regression result, or an empty evaluation (the receiver, which
         * knows the task, checks which). */
        if (r->n_hist_pos != r->n_hist_neg || r->n_hist_pos > FEDC_EVAL_HIST_MAX ||
            (x->hist_bins && r->n_hist_pos && r->n_hist_pos != x->hist_bins)) {
            fedc_diag_set(d, "evaluate_res: histograms of %zu and %zu bins, expected %u",
                          r->n_hist_pos, r->n_hist_neg, x->hist_bins);
            return FEDC_EMISMATCH;
        }
        if (!r->n_hist_pos) /* regression: only the sums */
            return FEDC_OK;
        uint64_t total = 0;
        for (size_t i = 0; i < r->n_hist_pos; i++) {
            uint64_t add = r->hist_pos[i] + r->hist_neg[i];
            if (r->hist_pos[i] > r->n || r->hist_neg[i] > r->n || add < r->hist_pos[i] ||
                add > r->n || total + add < total) {
                fedc_diag_set(d, "evaluate_res: histogram counts exceed n = %llu",
                              (unsigned long long)r->n);
                return FEDC_ERANGE;
            }
            total += add;
        }
        /* Each count is at most n, yet four of them can still wrap around 2^64. */
        uint64_t conf;
        int wrap = __builtin_add_overflow(r->tp, r->fp, &conf) ||
                   __builtin_add_overflow(conf, r->tn, &conf) ||
                   __builtin_add_overflow(conf, r->fn, &conf);
        if (wrap || total != r->n || conf != r->n || r->tp > r->n || r->fp > r->n || r->tn > r->n ||
            r->fn > r->n) {
            fedc_diag_set(d,
                          "evaluate_res: counts disagree: n %llu, histograms %llu, confusion "
                          "%llu",
                          (unsigned long long)r->n, (unsigned long long)total,
                          (unsigned long long)conf);
            return FEDC_EMISMATCH;
        }
        return FEDC_OK;
    }
    case FEDC__ENVELOPE__BODY_ERROR:
        if (e->error->n_sa_blame > FEDC_SA_MAX_NBRS || e->error->sa_refusal > 255 ||
            e->error->kind > FEDC_ERROR_KIND_MAX) {
            fedc_diag_set(d, "error: %zu blamed peers (at most %d), refusal code %u, kind %u",
                          e->error->n_sa_blame, FEDC_SA_MAX_NBRS, e->error->sa_refusal,
                          e->error->kind);
            return FEDC_ERANGE;
        }
        return check_string(e->error->reason, FEDC_REASON_MAX, "error: reason", d);
    case FEDC__ENVELOPE__BODY_CHUNK:
        return fedc__check_chunk(e->chunk, x, d);
    case FEDC__ENVELOPE__BODY_CHUNK_REQ:
        return fedc__check_chunk_req(e->chunk_req, x, d);
    case FEDC__ENVELOPE__BODY_BYE:
        if (e->bye->code > FEDC_BYE_MAX) {
            fedc_diag_set(d, "bye: code %u, expected 0..%d", e->bye->code, FEDC_BYE_MAX);
            return FEDC_ERANGE;
        }
        return check_string(e->bye->reason, FEDC_REASON_MAX, "bye: reason", d);
    case FEDC__ENVELOPE__BODY_SA_FIT_INS: {
        const Fedc__SaFitIns *f = e->sa_fit_ins;
        if (!f->secagg || f->secagg->hold || f->trained_round < 1 ||
            !(f->staleness_weight > 0.0 && f->staleness_weight <= 1.0)) {
            fedc_diag_set(d,
                          "sa_fit_ins: expected session settings (without hold), a trained round "
                          ">= 1 and a staleness weight in (0, 1]; got settings %s, round %u, "
                          "weight %g",
                          !f->secagg        ? "absent"
                          : f->secagg->hold ? "with hold"
                                            : "present",
                          f->trained_round, f->staleness_weight);
            return FEDC_ERANGE;
        }
        return check_secagg_ins(f->secagg, "sa_fit_ins", d);
    }
    default:
        return check_secagg(e, x, d);
    }
}

const Fedc__Tensor *fedc_msg_tensor(const Fedc__Envelope *e) {
    switch (e->body_case) {
    case FEDC__ENVELOPE__BODY_FIT_INS:
        return e->fit_ins->weights;
    case FEDC__ENVELOPE__BODY_FIT_RES:
        return e->fit_res->update;
    case FEDC__ENVELOPE__BODY_EVALUATE_INS:
        return e->evaluate_ins->weights;
    default:
        return NULL;
    }
}

fedc_err fedc_msg_validate(const Fedc__Envelope *e, const fedc_msg_expect *x, fedc_diag *d) {
    if (e->version != FEDC_PROTOCOL_VERSION) {
        fedc_diag_set(d, "protocol version %u, expected %u", e->version, FEDC_PROTOCOL_VERSION);
        return FEDC_EFORMAT;
    }
    if (x->run_id && (e->run_id.len != FEDC_RUN_ID_BYTES ||
                      memcmp(e->run_id.data, x->run_id, FEDC_RUN_ID_BYTES) != 0)) {
        fedc_diag_set(d, "%s: run id does not match this run (%zu bytes)",
                      fedc_msg_body_name(e->body_case), e->run_id.len);
        return FEDC_EMISMATCH;
    }
    if (x->round >= 0 && (int64_t)e->round != x->round) {
        fedc_diag_set(d, "%s: round %u, expected round %lld", fedc_msg_body_name(e->body_case),
                      e->round, (long long)x->round);
        return FEDC_EMISMATCH;
    }
    if (x->raw && !fedc_msg_tensor(e) && e->body_case != FEDC__ENVELOPE__BODY_SA_MASKED &&
        e->body_case != FEDC__ENVELOPE__BODY_JOIN && e->body_case != FEDC__ENVELOPE__BODY_CHUNK) {
        fedc_diag_set(d, "%s: unexpected raw frame of %zu bytes", fedc_msg_body_name(e->body_case),
                      x->raw_len);
        return FEDC_EFORMAT;
    }
    return check_body(e, x, d);
}

fedc_err fedc_msg_unpack(Fedc__Envelope **out, const uint8_t *buf, size_t len,
                         const fedc_msg_expect *x, fedc_diag *d) {
    *out = NULL;
    size_t max = x->max_bytes ? x->max_bytes : DEFAULT_MAX_BYTES;
    if (len > max) {
        fedc_diag_set(d, "message of %zu bytes exceeds the limit of %zu", len, max);
        return FEDC_EFORMAT;
    }
    Fedc__Envelope *e = fedc__envelope__unpack(NULL, len, buf);
    if (!e) {
        fedc_diag_set(d, "malformed message: not a fedc envelope (%zu bytes)", len);
        return FEDC_EFORMAT;
    }
    fedc_err rc = fedc_msg_validate(e, x, d);
    if (rc) {
        fedc_msg_free(&e);
        return rc;
    }
    *out = e;
    return FEDC_OK;
}
