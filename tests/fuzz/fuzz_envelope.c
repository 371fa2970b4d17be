/* libFuzzer target for the wire codec: every input is handed to fedc_msg_unpack under four
 * expectations (a first Join that accepts any run id and round; a running round with the model's
 * dimensions; the same with a raw tensor frame after the message; a small size cap). Besides the
 * sanitizers' checks (no crash, leak or undefined behaviour), it checks the codec's contract:
 * a refusal leaves *out NULL and names the problem, and an accepted message keeps the promises
 * that receivers rely on (tensor sizes and finite values, counts that add up, a re-packed copy is
 * accepted again, and so is its typed view of msg.h sent again). A broken promise aborts, which
 * libFuzzer reports as a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/codec.h"
#include "fuzz_expect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_envelope: contract broken: %s (%s)\n", what, detail);
    abort();
}

/* a + b + ... without wrapping; returns 0 when the true sum does not fit. */
static int add_u64(uint64_t *sum, uint64_t v) {
    return !__builtin_add_overflow(*sum, v, sum);
}

/* The promises of an accepted message (codec.h). */
static void check_accepted(const Fedc__Envelope *e, const fedc_msg_expect *x, const char *msg) {
    if (e->version != FEDC_PROTOCOL_VERSION)
        broken("accepted another protocol version", msg);
    if (x->round >= 0 && (int64_t)e->round != x->round)
        broken("accepted another round", msg);
    if (x->run_id &&
        (e->run_id.len != FEDC_RUN_ID_BYTES || memcmp(e->run_id.data, x->run_id, 16) != 0))
        broken("accepted another run id", msg);
    const Fedc__Tensor *t = fedc_msg_tensor(e);
    if (e->body_case == FEDC__ENVELOPE__BODY_FIT_RES && e->fit_res->held) {
        /* --mode async with secure aggregation: "trained, holding it"; no values at all. */
        if ((t && (t->count || t->data.len || t->streamed)) || x->raw)
            broken("a held update came with values", msg);
        t = NULL;
    }
    if (t && t->streamed && (t->data.len || x->raw))
        broken("a streamed tensor came with values", msg);
    if (t && !t->streamed) {
        if (x->n_params && t->count != x->n_params)
            broken("tensor of the wrong length", msg);
        float *v = malloc(t->count ? 4 * (size_t)t->count : 1);
        if (!v)
            abort();
        fedc_tensor_unpack(v, t, x->raw);
        for (size_t i = 0; i < t->count; i++) {
            if (!(v[i] - v[i] == 0.0f))
                broken("tensor value not finite", msg);
        }
        free(v);
    }
    if (e->body_case == FEDC__ENVELOPE__BODY_CHUNK) {
        /* A chunk lies inside its tensor, starts on a block, and its floats are finite (an
         * update's unless the receiver checks them itself: update_finite_here). */
        const Fedc__Chunk *c = e->chunk;
        uint64_t n = x->raw ? x->raw_len / 4 : 0;
        if (!n || c->offset % FEDC_CHUNK_ALIGN || c->offset + n > c->total ||
            c->stream < FEDC_STREAM_FIT || c->stream > FEDC_STREAM_MAX)
            broken("chunk outside its tensor", msg);
        int unchecked = c->stream == FEDC_STREAM_MASKED ||
                        (c->stream == FEDC_STREAM_UPDATE && x->update_finite_here);
        for (uint64_t i = 0; !unchecked && i < n; i++) {
            float f;
            memcpy(&f, x->raw + 4 * i, 4);
            if (!(f - f == 0.0f))
                broken("chunk value not finite", msg);
        }
    }
    if (e->body_case == FEDC__ENVELOPE__BODY_EVALUATE_RES) {
        /* Binary results carry histograms and the counts at the threshold, multiclass results a
         * confusion matrix; either way the counts add up to n, exactly (no wrap-around). */
        const Fedc__EvaluateRes *r = e->evaluate_res;
        if (r->n_hist_pos) {
            uint64_t conf = 0, hist = 0;
            if (!add_u64(&conf, r->tp) || !add_u64(&conf, r->fp) || !add_u64(&conf, r->tn) ||
                !add_u64(&conf, r->fn) || conf != r->n)
                broken("evaluate_res: tp + fp + tn + fn is not n", msg);
            for (size_t i = 0; i < r->n_hist_pos; i++) {
                if (!add_u64(&hist, r->hist_pos[i]) || !add_u64(&hist, r->hist_neg[i]))
                    broken("evaluate_res: histogram counts overflow", msg);
            }
            if (hist != r->n)
                broken("evaluate_res: histogram counts do not add up to n", msg);
        }
        uint64_t cells = 0;
        for (size_t i = 0; i < r->n_confusion; i++) {
            if (!add_u64(&cells, r->confusion[i]))
                broken("evaluate_res: confusion counts overflow", msg);
        }
        if (r->n_confusion && cells != r->n)
            broken("evaluate_res: confusion counts do not add up to n", msg);
    }
    if (e->body_case == FEDC__ENVELOPE__BODY_STATS) {
        const Fedc__Stats *s = e->stats;
        uint64_t total = 0;
        for (size_t i = 0; i < s->n_class_count; i++) {
            if (!add_u64(&total, s->class_count[i]))
                broken("stats: class counts overflow", msg);
        }
        if (s->n_class_count && total != s->n_rows)
            broken("stats: class counts do not add up to n_rows", msg);
    }
}

/* Encodes the typed message m (envelope and raw frame) and decodes it again under x into a view
 * (*env and *mem hold what it borrows from); the re-encoded envelope goes to *buf. */
static void typed_again(const fedc_msg *m, const fedc_msg_expect *x, uint8_t **buf, size_t *len,
                        Fedc__Envelope **env, fedc_msg *out, void **mem) {
    fedc_diag d;
    d.msg[0] = '\0';
    if (fedc_msg_encode(buf, len, m, &d) != FEDC_OK)
        broken("the typed view of an accepted message does not encode", d.msg);
    fedc_msg_expect xx = *x;
    size_t raw_len = 0;
    const void *raw = fedc_msg_raw(m, &raw_len);
    xx.raw = raw;
    xx.raw_len = raw_len;
    if (fedc_msg_unpack(env, *buf, *len, &xx, &d) != FEDC_OK)
        broken("the typed view of an accepted message, sent again, is refused", d.msg);
    if (fedc_msg_view(out, mem, *env, raw, raw_len, &d) != FEDC_OK)
        broken("no typed view of a re-encoded message", d.msg);
}

/* What the programs get (msg.h): the typed view of an accepted message. Sent again, it must be
 * accepted under the same expectation, and its encoding must be stable from then on (the view
 * loses nothing the receiver checked). */
static void check_typed(const Fedc__Envelope *e, const fedc_msg_expect *x) {
    fedc_msg v;
    void *mem = NULL;
    fedc_diag d;
    d.msg[0] = '\0';
    if (fedc_msg_view(&v, &mem, e, x->raw, x->raw ? x->raw_len : 0, &d) != FEDC_OK)
        broken("no typed view of an accepted message", d.msg);
    if ((int)v.kind != (int)e->body_case)
        broken("typed view of another kind", fedc_msg_kind_name(v.kind));
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    Fedc__Envelope *e1 = NULL, *e2 = NULL;
    fedc_msg v1, v2;
    void *m1 = NULL, *m2 = NULL;
    typed_again(&v, x, &b1, &n1, &e1, &v1, &m1);
    typed_again(&v1, x, &b2, &n2, &e2, &v2, &m2);
    size_t r1 = 0, r2 = 0;
    const void *raw1 = fedc_msg_raw(&v1, &r1), *raw2 = fedc_msg_raw(&v2, &r2);
    if (n1 != n2 || memcmp(b1, b2, n1) != 0 || r1 != r2 || (r1 && memcmp(raw1, raw2, r1) != 0))
        broken("the typed view's encoding is not stable", fedc_msg_kind_name(v.kind));
    free(b1);
    free(b2);
    fedc_msg_free(&e1);
    fedc_msg_free(&e2);
    free(m1);
    free(m2);
    free(mem);
}

/* Unpacks under x and checks the outcome; repack: also check that a re-packed copy passes. */
static void one(const uint8_t *data, size_t size, const fedc_msg_expect *x, int repack) {
    Fedc__Envelope *e = (Fedc__Envelope *)&e; /* not NULL: the codec must clear it */
    fedc_diag d;
    d.msg[0] = '\0';
    fedc_err rc = fedc_msg_unpack(&e, data, size, x, &d);
    if (rc != FEDC_OK) {
        if (e)
            broken("refused message left *out set", d.msg);
        if (!d.msg[0] || !memchr(d.msg, '\0', sizeof d.msg))
            broken("refusal without a message", fedc_strerror(rc));
        return;
    }
    if (!e)
        broken("accepted message is NULL", "");
    check_accepted(e, x, "first decode");
    check_typed(e, x);
    if (repack) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (fedc_msg_pack(&buf, &len, e) != FEDC_OK)
            broken("accepted message does not pack", "");
        /* libprotobuf-c 1.4 reads an unknown field whose tag is 0 when the tag is written
         * non-canonically ("80 00"), keeps it, and writes it back as "00", which it then refuses
         * to parse; so only validation, not parsing, must accept the copy. */
        Fedc__Envelope *again = NULL;
        fedc_err rc2 = fedc_msg_unpack(&again, buf, len, x, &d);
        if (rc2 != FEDC_OK && !(rc2 == FEDC_EFORMAT && strstr(d.msg, "malformed message")))
            broken("re-packed accepted message is refused", d.msg);
        if (again)
            check_accepted(again, x, "second decode");
        fedc_msg_free(&again);
        free(buf);
    }
    fedc_msg_free(&e);
    if (e)
        broken("fedc_msg_free left the pointer set", "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A raw frame of FUZZ_N_PARAMS finite little-endian floats (0.5, -1.25, 3, 0, -0.0625). */
    static const uint8_t raw[4 * FUZZ_N_PARAMS] = {0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0xa0,
                                                   0xbf, 0x00, 0x00, 0x40, 0x40, 0x00, 0x00,
                                                   0x00, 0x00, 0x00, 0x00, 0x80, 0xbd};

    fedc_msg_expect any = {0};
    any.round = -1;
    one(data, size, &any, 1);

    fedc_msg_expect x = {0};
    x.run_id = FUZZ_RUN;
    x.round = FUZZ_ROUND;
    x.n_params = FUZZ_N_PARAMS;
    x.n_features = FUZZ_N_FEATURES;
    x.n_classes = FUZZ_N_CLASSES;
    x.hist_bins = FUZZ_HIST_BINS;
    one(data, size, &x, 1);

    x.raw = raw;
    x.raw_len = sizeof raw;
    one(data, size, &x, 1);

    any.max_bytes = 64;
    one(data, size, &any, 0);
    return 0;
}
