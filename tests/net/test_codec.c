/* The wire codec: every message type survives a pack/unpack round trip, and every malformed or
 * unexpected message (wrong version, run id, stale round, wrong dimension, NaN/Inf, oversize,
 * truncated protobuf, empty body, inconsistent counts) is refused with a reason naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/codec.h"
#include "fedc/sa_proto.h"

static const uint8_t RUN[FEDC_RUN_ID_BYTES] = {1, 2,  3,  4,  5,  6,  7,  8,
                                               9, 10, 11, 12, 13, 14, 15, 16};

static void envelope(Fedc__Envelope *e, uint32_t round) {
    fedc__envelope__init(e);
    e->version = FEDC_PROTOCOL_VERSION;
    e->run_id.data = (uint8_t *)RUN;
    e->run_id.len = FEDC_RUN_ID_BYTES;
    e->round = round;
}

static fedc_msg_expect expect_round(int64_t round) {
    fedc_msg_expect x = {0};
    x.run_id = RUN;
    x.round = round;
    x.n_params = 5;
    x.n_features = 3;
    x.n_classes = 2;
    x.hist_bins = 4;
    return x;
}

/* Packs e and unpacks it with x; returns the code, leaves the message in d. */
static fedc_err roundtrip(const Fedc__Envelope *e, const fedc_msg_expect *x, fedc_diag *d,
                          Fedc__Envelope **out) {
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fedc_msg_pack(&buf, &len, e), FEDC_OK);
    d->msg[0] = 0;
    Fedc__Envelope *got = NULL;
    fedc_err rc = fedc_msg_unpack(&got, buf, len, x, d);
    free(buf);
    if (out)
        *out = got;
    else
        fedc_msg_free(&got);
    if (rc)
        assert_null(got);
    return rc;
}

static void refused(const Fedc__Envelope *e, const fedc_msg_expect *x, fedc_err want,
                    const char *needle) {
    fedc_diag d;
    fedc_err rc = roundtrip(e, x, &d, NULL);
    if (rc != want || !strstr(d.msg, needle))
        fail_msg("expected %s with '%s', got %s: '%s'", fedc_strerror(want), needle,
                 fedc_strerror(rc), d.msg);
}

/* A fit result with 5 finite values, 100 examples. */
typedef struct fit_msg {
    Fedc__Envelope e;
    Fedc__FitRes res;
    Fedc__Tensor t;
    uint8_t store[4 * 8];
    float v[8];
} fit_msg;

static void fit_res(fit_msg *m, uint32_t round, size_t n) {
    envelope(&m->e, round);
    fedc__fit_res__init(&m->res);
    fedc__tensor__init(&m->t);
    for (size_t i = 0; i < n; i++)
        m->v[i] = 0.25f * (float)i - 0.5f;
    fedc_tensor_pack(&m->t, m->store, m->v, n);
    m->res.update = &m->t;
    m->res.n_examples = 100;
    m->res.train_loss = 0.4;
    m->res.seconds = 0.01;
    m->e.body_case = FEDC__ENVELOPE__BODY_FIT_RES;
    m->e.fit_res = &m->res;
}

static void test_fit_res_round_trip(void **state) {
    (void)state;
    fit_msg m;
    fit_res(&m, 7, 5);
    fedc_msg_expect x = expect_round(7);
    fedc_diag d;
    Fedc__Envelope *got = NULL;
    assert_int_equal(roundtrip(&m.e, &x, &d, &got), FEDC_OK);
    assert_int_equal(got->body_case, FEDC__ENVELOPE__BODY_FIT_RES);
    assert_int_equal(got->round, 7);
    float back[5];
    fedc_tensor_unpack(back, got->fit_res->update, NULL);
    assert_memory_equal(back, m.v, sizeof back);
    assert_int_equal(got->fit_res->n_examples, 100);
    fedc_msg_free(&got);
    assert_null(got);

    /* An empty tensor, accepted where no length is expected, unpacks to nothing (it used to
     * memcpy from NULL, found by tests/fuzz/fuzz_envelope). */
    fit_res(&m, 7, 0);
    fedc_msg_expect any = {0};
    any.round = -1;
    assert_int_equal(roundtrip(&m.e, &any, &d, &got), FEDC_OK);
    assert_int_equal(got->fit_res->update->count, 0);
    fedc_tensor_unpack(back, got->fit_res->update, NULL);
    fedc_msg_free(&got);
}

static void test_envelope_checks(void **state) {
    (void)state;
    fit_msg m;
    fedc_msg_expect x = expect_round(7);

    fit_res(&m, 7, 5);
    m.e.version = 1;
    refused(&m.e, &x, FEDC_EFORMAT, "protocol version 1, expected 6");

    fit_res(&m, 7, 5);
    uint8_t other[FEDC_RUN_ID_BYTES] = {0};
    m.e.run_id.data = other;
    refused(&m.e, &x, FEDC_EMISMATCH, "run id does not match");

    fit_res(&m, 6, 5); /* a late answer from the previous round */
    refused(&m.e, &x, FEDC_EMISMATCH, "fit_res: round 6, expected round 7");

    fit_res(&m, 7, 4); /* wrong dimension */
    refused(&m.e, &x, FEDC_EMISMATCH, "fit_res: update: expected 5 values, got 4");

    fit_res(&m, 7, 5);
    m.v[2] = NAN;
    fedc_tensor_pack(&m.t, m.store, m.v, 5);
    refused(&m.e, &x, FEDC_ERANGE, "fit_res: update: value 2 is not finite");

    fit_res(&m, 7, 5);
    m.v[4] = INFINITY;
    fedc_tensor_pack(&m.t, m.store, m.v, 5);
    refused(&m.e, &x, FEDC_ERANGE, "value 4 is not finite");

    fit_res(&m, 7, 5);
    m.t.data.len = 19; /* count says 5 floats, bytes say otherwise */
    refused(&m.e, &x, FEDC_EMISMATCH, "5 values need 20 bytes in the message, got 19");

    fit_res(&m, 7, 5);
    m.res.n_examples = 0;
    refused(&m.e, &x, FEDC_ERANGE, "n_examples 0");

    fit_res(&m, 7, 5);
    m.res.train_loss = NAN;
    refused(&m.e, &x, FEDC_ERANGE, "train_loss");

    Fedc__Envelope empty;
    envelope(&empty, 7);
    refused(&empty, &x, FEDC_EFORMAT, "no body");
}

/* Tensors may travel as a raw frame after the envelope: checked like inline data. */
static void test_raw_frame(void **state) {
    (void)state;
    fit_msg m;
    fit_res(&m, 7, 5);
    uint8_t raw[4 * 5];
    memcpy(raw, m.store, sizeof raw);
    m.t.data.len = 0; /* only the count travels in the message */
    m.t.data.data = NULL;
    fedc_msg_expect x = expect_round(7);
    x.raw = raw;
    x.raw_len = sizeof raw;
    fedc_diag d;
    Fedc__Envelope *got = NULL;
    assert_int_equal(roundtrip(&m.e, &x, &d, &got), FEDC_OK);
    float back[5];
    fedc_tensor_unpack(back, got->fit_res->update, raw);
    assert_memory_equal(back, m.v, sizeof back);
    fedc_msg_free(&got);

    x.raw_len = 16;
    refused(&m.e, &x, FEDC_EMISMATCH, "need 20 bytes in the raw frame after the message, got 16");
    x.raw_len = sizeof raw;
    float nan = NAN;
    memcpy(raw + 8, &nan, 4);
    refused(&m.e, &x, FEDC_ERANGE, "value 2 is not finite");
    x.raw = NULL; /* announced as raw, but no frame came */
    refused(&m.e, &x, FEDC_EMISMATCH, "got 0");

    fit_res(&m, 7, 5); /* inline data and a raw frame as well */
    x.raw = raw;
    refused(&m.e, &x, FEDC_EMISMATCH, "follows a message that carries its values");

    Fedc__Envelope hb;
    Fedc__Heartbeat h;
    envelope(&hb, 7);
    fedc__heartbeat__init(&h);
    hb.body_case = FEDC__ENVELOPE__BODY_HEARTBEAT;
    hb.heartbeat = &h;
    refused(&hb, &x, FEDC_EFORMAT, "heartbeat: unexpected raw frame of 20 bytes");
}

static void test_bytes_level_failures(void **state) {
    (void)state;
    fit_msg m;
    fit_res(&m, 7, 5);
    fedc_msg_expect x = expect_round(7);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fedc_msg_pack(&buf, &len, &m.e), FEDC_OK);
    fedc_diag d;
    Fedc__Envelope *got = NULL;
    /* Every truncation is refused (as malformed or as a mismatch), never accepted or crashed on. */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, buf, cut);
        assert_int_not_equal(fedc_msg_unpack(&got, copy, cut, &x, &d), FEDC_OK);
        assert_null(got);
        free(copy);
    }
    /* Oversize: refused before parsing. */
    x.max_bytes = len - 1;
    assert_int_equal(fedc_msg_unpack(&got, buf, len, &x, &d), FEDC_EFORMAT);
    assert_non_null(strstr(d.msg, "exceeds the limit"));
    /* Garbage. */
    x.max_bytes = 0;
    uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(fedc_msg_unpack(&got, junk, sizeof junk, &x, &d), FEDC_EFORMAT);
    assert_non_null(strstr(d.msg, "malformed"));
    free(buf);
}

static void test_join_and_schema(void **state) {
    (void)state;
    Fedc__Envelope e;
    Fedc__Join j;
    Fedc__Schema s;
    char f0[] = "a1", f1[] = "a2", f2[] = "a3", label[] = "bad", name[] = "bank-a";
    char *names[] = {f0, f1, f2};
    envelope(&e, 0);
    fedc__join__init(&j);
    fedc__schema__init(&s);
    s.n_feature_names = 3;
    s.feature_names = names;
    s.label = label;
    s.task = 0;
    s.n_classes = 2;
    j.name = name;
    j.schema = &s;
    j.n_rows = 700;
    e.body_case = FEDC__ENVELOPE__BODY_JOIN;
    e.join = &j;
    fedc_msg_expect x = {0};
    x.round = -1; /* a first join: any run id, any round */
    fedc_diag d;
    Fedc__Envelope *got = NULL;
    assert_int_equal(roundtrip(&e, &x, &d, &got), FEDC_OK);
    assert_string_equal(got->join->schema->feature_names[2], "a3");
    assert_string_equal(got->join->name, "bank-a");
    fedc_msg_free(&got);

    x.n_features = 4;
    refused(&e, &x, FEDC_EMISMATCH, "schema: expected 4 features, got 3");
    x.n_features = 0;
    s.n_classes = 3; /* binary with 3 classes */
    refused(&e, &x, FEDC_ERANGE, "schema: 3 classes do not fit task 0");
    s.n_classes = 2;
    s.task = 9;
    refused(&e, &x, FEDC_ERANGE, "task 9");
    s.task = 0;
    char bad_name[] = "bank a";
    j.name = bad_name;
    refused(&e, &x, FEDC_ERANGE, "printable ASCII");
    j.name = name;

    /* A model of the client's own: kind, count and initial values in the raw frame. */
    char kind[] = "logreg-v1";
    Fedc__Tensor t;
    fedc__tensor__init(&t);
    t.count = 4;
    float init[4] = {0.5f, -1.0f, 2.0f, 0.0f};
    j.model_kind = kind;
    j.n_params = 4;
    j.init = &t;
    x.raw = (const uint8_t *)init;
    x.raw_len = sizeof init;
    assert_int_equal(roundtrip(&e, &x, &d, &got), FEDC_OK);
    assert_int_equal(got->join->n_params, 4);
    assert_string_equal(got->join->model_kind, "logreg-v1");
    float back[4];
    fedc_tensor_unpack(back, got->join->init, x.raw);
    assert_memory_equal(back, init, sizeof init);
    fedc_msg_free(&got);
    x.raw_len = 12; /* a value short */
    refused(&e, &x, FEDC_EMISMATCH, "join: init: 4 values need 16 bytes");
    x.raw_len = sizeof init;
    t.count = 3; /* the tensor disagrees with the announced count */
    refused(&e, &x, FEDC_EMISMATCH, "join: init: expected 4 values, got 3");
    t.count = 4;
    init[1] = INFINITY;
    refused(&e, &x, FEDC_ERANGE, "not finite");
    init[1] = -1.0f;
    j.n_params = 0; /* values without a count */
    refused(&e, &x, FEDC_EMISMATCH, "initial values without a parameter count");
    j.n_params = FEDC_MAX_PARAMS + 1;
    refused(&e, &x, FEDC_ERANGE, "join: 1073741825 parameters");
    char long_kind[FEDC_MODEL_KIND_MAX + 2];
    memset(long_kind, 'k', sizeof long_kind - 1);
    long_kind[sizeof long_kind - 1] = 0;
    j.n_params = 4;
    j.model_kind = long_kind;
    refused(&e, &x, FEDC_ERANGE, "join: model kind");
}

/* The coordinator's Welcome for a run of the clients' own model: a parameter count and no
 * layers; both at once are refused. */
static void test_welcome_own_model(void **state) {
    (void)state;
    Fedc__Envelope e;
    Fedc__Welcome w;
    Fedc__Schema s;
    Fedc__HyperParams hp;
    char f0[] = "a1", label[] = "bad", kind[] = "logreg-v1";
    char *names[] = {f0};
    envelope(&e, 0);
    fedc__welcome__init(&w);
    fedc__schema__init(&s);
    fedc__hyper_params__init(&hp);
    s.n_feature_names = 1;
    s.feature_names = names;
    s.label = label;
    s.n_classes = 2;
    hp.local_epochs = 1;
    hp.batch = 64;
    hp.lr = 0.1f;
    hp.val_fraction = 0.2f;
    w.schema = &s;
    w.hp = &hp;
    w.rounds = 3;
    w.n_params = 2;
    w.model_kind = kind;
    e.body_case = FEDC__ENVELOPE__BODY_WELCOME;
    e.welcome = &w;
    fedc_msg_expect x = expect_round(0);
    x.n_features = 0;
    fedc_diag d;
    Fedc__Envelope *got = NULL;
    assert_int_equal(roundtrip(&e, &x, &d, &got), FEDC_OK);
    assert_int_equal(got->welcome->n_params, 2);
    fedc_msg_free(&got);
    uint32_t sizes[] = {1, 1};
    w.n_layer_sizes = 2;
    w.layer_sizes = sizes;
    refused(&e, &x, FEDC_ERANGE, "layer sizes with 2 parameters of an own model");
    w.n_layer_sizes = 0;
    w.hp = NULL;
    refused(&e, &x, FEDC_EMISMATCH, "hyper-parameters: missing");
}

static void test_stats_and_evaluation(void **state) {
    (void)state;
    Fedc__Envelope e;
    Fedc__Stats s;
    double sum[3] = {1, 2, 3}, sq[3] = {4, 5, 6};
    uint64_t cc[2] = {60, 40};
    envelope(&e, 0);
    fedc__stats__init(&s);
    s.n_rows = 100;
    s.n_sum = 3;
    s.sum = sum;
    s.n_sum_sq = 3;
    s.sum_sq = sq;
    s.n_class_count = 2;
    s.class_count = cc;
    e.body_case = FEDC__ENVELOPE__BODY_STATS;
    e.stats = &s;
    fedc_msg_expect x = expect_round(0);
    fedc_diag d;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    cc[1] = 41;
    refused(&e, &x, FEDC_EMISMATCH, "class counts sum to 101, rows are 100");
    cc[1] = 400;
    refused(&e, &x, FEDC_ERANGE, "class counts exceed the 100 rows");
    cc[1] = 40;
    sq[1] = -1;
    refused(&e, &x, FEDC_ERANGE, "sum_sq 1 is negative");
    sq[1] = 5;
    sum[0] = INFINITY;
    refused(&e, &x, FEDC_ERANGE, "stats: sum: value 0 is not finite");
    sum[0] = 1;
    s.n_sum = 2;
    refused(&e, &x, FEDC_EMISMATCH, "stats: sum: expected 3 values, got 2");

    Fedc__EvaluateRes r;
    uint64_t hp[4] = {0, 1, 2, 7}, hn[4] = {20, 5, 3, 2};
    envelope(&e, 3);
    fedc__evaluate_res__init(&r);
    r.n = 40;
    r.n_hist_pos = 4;
    r.hist_pos = hp;
    r.n_hist_neg = 4;
    r.hist_neg = hn;
    r.tp = 9;
    r.fp = 5;
    r.tn = 25;
    r.fn = 1;
    r.log_loss_sum = 12.5;
    e.body_case = FEDC__ENVELOPE__BODY_EVALUATE_RES;
    e.evaluate_res = &r;
    x = expect_round(3);
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    r.tn = 24;
    refused(&e, &x, FEDC_EMISMATCH, "counts disagree");
    /* Counts that each fit in n but whose sums wrap around 2^64 (they used to pass; found by the
     * contract check in tests/fuzz/fuzz_envelope.c). */
    const uint64_t big = UINT64_C(1) << 63;
    uint64_t wrap_pos[4] = {big, 0, 0, 0}, wrap_neg[4] = {big, big, 0, 0}, zero[4] = {0};
    r.n = big;
    r.hist_pos = wrap_pos;
    r.hist_neg = wrap_neg;
    r.tp = r.fp = r.tn = big;
    r.fn = 0;
    refused(&e, &x, FEDC_ERANGE, "histogram counts exceed");
    r.hist_neg = zero; /* histograms now sum to n; tp + fp + tn = 3n still wraps to n */
    refused(&e, &x, FEDC_EMISMATCH, "counts disagree");
    r.n = 40;
    r.hist_pos = hp;
    r.hist_neg = hn;
    r.tp = 9;
    r.fp = 5;
    r.fn = 1;
    r.tn = 25;
    x.hist_bins = 10;
    refused(&e, &x, FEDC_EMISMATCH, "expected 10");

    /* Multiclass: a K x K confusion matrix that sums to n. */
    uint64_t conf[9] = {10, 1, 0, 2, 12, 1, 0, 3, 11};
    fedc__evaluate_res__init(&r);
    r.n = 40;
    r.n_confusion = 9;
    r.confusion = conf;
    r.log_loss_sum = 3.0;
    x = expect_round(3);
    x.n_classes = 3;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    conf[4] = 11;
    refused(&e, &x, FEDC_EMISMATCH, "confusion counts sum to 39");
    conf[4] = 12;
    x.n_classes = 4;
    refused(&e, &x, FEDC_EMISMATCH, "expected 16");

    /* Regression: sums only, finite and non-negative where they must be. */
    fedc__evaluate_res__init(&r);
    r.n = 40;
    r.sse = 4.5;
    r.sum_y = -3.0;
    r.sum_y2 = 20.0;
    x = expect_round(3);
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    r.sse = NAN;
    refused(&e, &x, FEDC_ERANGE, "regression sums");
    r.sse = 4.5;
    r.sum_y2 = -1.0;
    refused(&e, &x, FEDC_ERANGE, "regression sums");
}

/* An evaluation request carries the weights and, for clients that joined late, the agreed
 * standardisation, checked like a FitIns's. */
static void test_evaluate_ins(void **state) {
    (void)state;
    Fedc__Envelope e;
    Fedc__EvaluateIns v;
    Fedc__Tensor t;
    float w[4] = {0.5f, -1.0f, 2.0f, 0.0f}, mean[2] = {1.0f, 2.0f}, sd[2] = {1.0f, 3.0f};
    uint8_t store[sizeof w];
    envelope(&e, 4);
    fedc__evaluate_ins__init(&v);
    fedc__tensor__init(&t);
    fedc_tensor_pack(&t, store, w, 4);
    v.weights = &t;
    v.threshold = 0.5f;
    v.n_mean = v.n_std = 2;
    v.mean = mean;
    v.std = sd;
    e.body_case = FEDC__ENVELOPE__BODY_EVALUATE_INS;
    e.evaluate_ins = &v;
    fedc_msg_expect x = expect_round(4);
    x.n_params = 4;
    x.n_features = 2;
    fedc_diag d;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    sd[1] = 0.0f;
    refused(&e, &x, FEDC_ERANGE, "evaluate_ins: std 1 is not positive");
    sd[1] = 3.0f;
    v.n_std = 1;
    refused(&e, &x, FEDC_EMISMATCH, "evaluate_ins: std: expected 2 values, got 1");
    v.n_std = 2;
    v.threshold = 1.5f;
    refused(&e, &x, FEDC_ERANGE, "threshold 1.5 outside [0, 1]");
}

/* A training request: its L2 bound on the update (update_norm_bound) must be 0 (none) to 1e6. */
static void test_fit_ins_bound(void **state) {
    (void)state;
    Fedc__Envelope e;
    Fedc__FitIns f;
    Fedc__HyperParams hp;
    Fedc__Tensor t;
    float w[4] = {0.5f, -1.0f, 2.0f, 0.0f}, mean[2] = {1.0f, 2.0f}, sd[2] = {1.0f, 3.0f};
    uint8_t store[sizeof w];
    envelope(&e, 2);
    fedc__fit_ins__init(&f);
    fedc__hyper_params__init(&hp);
    fedc__tensor__init(&t);
    fedc_tensor_pack(&t, store, w, 4);
    hp.local_epochs = 1;
    hp.batch = 32;
    hp.lr = 0.01f;
    f.weights = &t;
    f.hp = &hp;
    f.n_mean = f.n_std = 2;
    f.mean = mean;
    f.std = sd;
    f.pos_weight = 1.0f;
    f.update_norm_bound = 16.0f;
    e.body_case = FEDC__ENVELOPE__BODY_FIT_INS;
    e.fit_ins = &f;
    fedc_msg_expect x = expect_round(2);
    x.n_params = 4;
    x.n_features = 2;
    fedc_diag d;
    Fedc__Envelope *got = NULL;
    assert_int_equal(roundtrip(&e, &x, &d, &got), FEDC_OK);
    assert_true(got->fit_ins->update_norm_bound == 16.0f);
    fedc_msg_free(&got);
    f.update_norm_bound = 0.0f; /* an older coordinator: no bound */
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    f.update_norm_bound = -1.0f;
    refused(&e, &x, FEDC_ERANGE, "fit_ins: update_norm_bound -1, expected 0 (none) to 1e6");
    f.update_norm_bound = 2e6f;
    refused(&e, &x, FEDC_ERANGE, "fit_ins: update_norm_bound 2e+06");
    f.update_norm_bound = NAN;
    refused(&e, &x, FEDC_ERANGE, "fit_ins: update_norm_bound nan");
}

/* Secure-aggregation messages: fixed key, signature, sealed-share and share sizes; a masked
 * input's raw frame must hold exactly its count of uint32 values (any bits: no finite check);
 * a raw frame after any other SecAgg message is refused. */
static void test_secagg_messages(void **state) {
    (void)state;
    fedc_msg_expect x = expect_round(2);
    Fedc__Envelope e;
    fedc_diag d;
    uint8_t k32[32] = {1}, sig[64] = {2}, ct[FEDC_SA_SHARE_CT] = {3};
    Fedc__SaKeys k = FEDC__SA_KEYS__INIT;
    k.counter = 9;
    k.pk_c = (ProtobufCBinaryData){32, k32};
    k.pk_s = (ProtobufCBinaryData){32, k32};
    k.sig = (ProtobufCBinaryData){64, sig};
    k.commit = (ProtobufCBinaryData){32, k32};
    envelope(&e, 2);
    e.body_case = FEDC__ENVELOPE__BODY_SA_KEYS;
    e.sa_keys = &k;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    k.commit.len = 16;
    refused(&e, &x, FEDC_EMISMATCH, "sa_keys: commit: 16 bytes, expected 32");
    k.commit.len = 32;
    k.pk_s.len = 31;
    refused(&e, &x, FEDC_EMISMATCH, "sa_keys: pk_s: 31 bytes, expected 32");
    k.pk_s.len = 32;
    k.sig.len = 0;
    refused(&e, &x, FEDC_EMISMATCH, "sa_keys: sig: 0 bytes, expected 64");

    Fedc__SaSealed box = FEDC__SA_SEALED__INIT, *boxes[1] = {&box};
    box.from = 1;
    box.to = 2;
    box.ct = (ProtobufCBinaryData){FEDC_SA_SHARE_CT, ct};
    Fedc__SaShares sh = FEDC__SA_SHARES__INIT;
    sh.counter = 9;
    sh.n_shares = 1;
    sh.shares = boxes;
    e.body_case = FEDC__ENVELOPE__BODY_SA_SHARES;
    e.sa_shares = &sh;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    box.ct.len = FEDC_SA_SHARE_CT - 1;
    refused(&e, &x, FEDC_EMISMATCH, "sa_shares");

    Fedc__SaPeer p0 = FEDC__SA_PEER__INIT, p1 = FEDC__SA_PEER__INIT, *peers[2] = {&p0, &p1};
    char n0[] = "bank-a", n1[] = "bank-b";
    p0.id = 0;
    p1.id = 1;
    p0.name = n0;
    p1.name = n1;
    p0.pk_c = p0.pk_s = p1.pk_c = p1.pk_s = (ProtobufCBinaryData){32, k32};
    p0.sig = p1.sig = (ProtobufCBinaryData){64, sig};
    p0.commit = p1.commit = (ProtobufCBinaryData){32, k32};
    Fedc__SaShareIns si = FEDC__SA_SHARE_INS__INIT;
    si.counter = 9;
    si.threshold = 2;
    si.n_peers = 2;
    si.peers = peers;
    si.n = 2;
    e.body_case = FEDC__ENVELOPE__BODY_SA_SHARE_INS;
    e.sa_share_ins = &si;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    si.threshold = 3;
    refused(&e, &x, FEDC_ERANGE, "2 neighbours of 2 participants with threshold 3");
    si.threshold = 2;
    si.n = 1;
    refused(&e, &x, FEDC_ERANGE, "2 neighbours of 1 participants");
    si.n = 2;
    /* Graph mode: the reveals packed, 32 bytes per participant, and the neighbours without
     * names or commitments (the receiver has both). */
    uint8_t rvl[64];
    memset(rvl, 7, sizeof rvl);
    si.reveals = (ProtobufCBinaryData){32, rvl};
    refused(&e, &x, FEDC_ERANGE, "32 bytes of reveals (expected 0 or 32 per participant)");
    si.reveals.len = 64;
    refused(&e, &x, FEDC_EMISMATCH, "sa_share_ins: commit: 32 bytes, expected 0");
    p0.commit.len = p1.commit.len = 0;
    refused(&e, &x, FEDC_EFORMAT, "neighbour 0 carries a name (expected none with reveals)");
    char none[] = "";
    p0.name = p1.name = none;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    si.reveals.len = 0;
    refused(&e, &x, FEDC_EMISMATCH, "sa_share_ins: commit: 0 bytes, expected 32");
    p0.commit.len = p1.commit.len = 32;
    refused(&e, &x, FEDC_EFORMAT, "neighbour 0 lacks a name (expected one without reveals)");
    p0.name = n0;
    p1.name = n1;
    p1.id = 0;
    refused(&e, &x, FEDC_EFORMAT, "not ascending");
    p1.id = 1;
    p1.commit.len = 0;
    refused(&e, &x, FEDC_EMISMATCH, "sa_share_ins: commit: 0 bytes");
    p1.commit.len = 32;

    /* The graph step: every participant's name in order and the commitments' 32-byte digest; a
     * 32-byte reveal. */
    char *nm[2] = {n0, n1};
    Fedc__SaGraphIns gi = FEDC__SA_GRAPH_INS__INIT;
    gi.counter = 9;
    gi.h = 1;
    gi.n_names = 2;
    gi.names = nm;
    gi.commits = (ProtobufCBinaryData){32, k32};
    e.body_case = FEDC__ENVELOPE__BODY_SA_GRAPH_INS;
    e.sa_graph_ins = &gi;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    gi.commits.len = 31;
    refused(&e, &x, FEDC_EMISMATCH, "sa_graph_ins: commitments' digest: 31 bytes, expected 32");
    gi.commits.len = 32;
    gi.id = 2;
    refused(&e, &x, FEDC_ERANGE, "2 participants, h 1, receiver 2");
    gi.id = 0;
    Fedc__SaGraph gr = FEDC__SA_GRAPH__INIT;
    gr.counter = 9;
    gr.r = (ProtobufCBinaryData){32, k32};
    e.body_case = FEDC__ENVELOPE__BODY_SA_GRAPH;
    e.sa_graph = &gr;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    gr.r = (ProtobufCBinaryData){33, sig}; /* sig has 64 bytes to read */
    refused(&e, &x, FEDC_EMISMATCH, "sa_graph: r: 33 bytes, expected 32");

    /* Consistency: an ascending survivor set; a 64-byte signature; relayed signatures. */
    uint32_t surv[3] = {0, 2, 5};
    Fedc__SaConsistIns ci = FEDC__SA_CONSIST_INS__INIT;
    ci.counter = 9;
    ci.n_survivors = 3;
    ci.survivors = surv;
    e.body_case = FEDC__ENVELOPE__BODY_SA_CONSIST_INS;
    e.sa_consist_ins = &ci;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    surv[2] = 2;
    refused(&e, &x, FEDC_EFORMAT, "survivor ids not ascending");
    ci.n_survivors = 0;
    refused(&e, &x, FEDC_ERANGE, "0 survivors");
    Fedc__SaConsist cs = FEDC__SA_CONSIST__INIT;
    cs.counter = 9;
    cs.sig = (ProtobufCBinaryData){64, sig};
    e.body_case = FEDC__ENVELOPE__BODY_SA_CONSIST;
    e.sa_consist = &cs;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    cs.sig.len = 63;
    refused(&e, &x, FEDC_EMISMATCH, "sa_consist: sig: 63 bytes, expected 64");
    Fedc__SaSig sg = FEDC__SA_SIG__INIT, *sgs[1] = {&sg};
    sg.id = 3;
    sg.sig = (ProtobufCBinaryData){64, sig};
    Fedc__SaUnmaskIns ui = FEDC__SA_UNMASK_INS__INIT;
    ui.counter = 9;
    ui.n_sigs = 1;
    ui.sigs = sgs;
    e.body_case = FEDC__ENVELOPE__BODY_SA_UNMASK_INS;
    e.sa_unmask_ins = &ui;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    sg.sig.len = 1;
    refused(&e, &x, FEDC_EMISMATCH, "sa_unmask_ins: sig: 1 bytes, expected 64");

    /* An error's refusal code and blamed ids are bounded. */
    Fedc__Error er = FEDC__ERROR__INIT;
    uint32_t blame[1] = {4};
    char why[] = "secure aggregation: refused";
    er.code = 2;
    er.reason = why;
    er.sa_refusal = 2;
    er.n_sa_blame = 1;
    er.sa_blame = blame;
    e.body_case = FEDC__ENVELOPE__BODY_ERROR;
    e.error = &er;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    er.sa_refusal = 300;
    refused(&e, &x, FEDC_ERANGE, "refusal code 300");
    er.sa_refusal = 2;
    er.kind = FEDC_ERROR_JOIN_AGAIN;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    er.kind = 9;
    refused(&e, &x, FEDC_ERANGE, "kind 9");

    /* A goodbye's code is one the receivers know. */
    Fedc__Bye bye = FEDC__BYE__INIT;
    char done[] = "run complete";
    bye.reason = done;
    bye.code = FEDC_BYE_COMPLETE;
    e.body_case = FEDC__ENVELOPE__BODY_BYE;
    e.bye = &bye;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    bye.code = FEDC_BYE_MAX + 1;
    refused(&e, &x, FEDC_ERANGE, "bye: code 4, expected 0..3");

    Fedc__SaReveal rv = FEDC__SA_REVEAL__INIT, *rvs[1] = {&rv};
    rv.owner = 1;
    rv.kind = 1;
    rv.share = (ProtobufCBinaryData){32, k32};
    Fedc__SaUnmask um = FEDC__SA_UNMASK__INIT;
    um.counter = 9;
    um.n_shares = 1;
    um.shares = rvs;
    e.body_case = FEDC__ENVELOPE__BODY_SA_UNMASK;
    e.sa_unmask = &um;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    rv.kind = 3;
    refused(&e, &x, FEDC_ERANGE, "share kind 3");

    /* Masked input: the raw frame carries the values, NaN bit patterns included. */
    Fedc__SaMasked sm = FEDC__SA_MASKED__INIT;
    sm.counter = 9;
    sm.count = 4;
    e.body_case = FEDC__ENVELOPE__BODY_SA_MASKED;
    e.sa_masked = &sm;
    uint32_t raw[4] = {0x7fc00000u, 0xffffffffu, 0, 0x7f800000u};
    x.raw = (const uint8_t *)raw;
    x.raw_len = sizeof raw;
    assert_int_equal(roundtrip(&e, &x, &d, NULL), FEDC_OK);
    x.raw_len = 12;
    refused(&e, &x, FEDC_EMISMATCH,
            "4 values of 4 bytes (at most 2^31 values) do not match the "
            "raw frame of 12 bytes");
    /* A huge count is named as sent, not as an overflowed byte size. */
    sm.count = 0x4000000000000001ull;
    refused(&e, &x, FEDC_EMISMATCH, "4611686018427387905 values of 4 bytes");
    sm.count = 4;
    x.raw = NULL;
    x.raw_len = 0;
    refused(&e, &x, FEDC_EMISMATCH, "raw frame of 0 bytes");
    /* A raw frame after a message that has none. */
    x.raw = (const uint8_t *)raw;
    x.raw_len = sizeof raw;
    e.body_case = FEDC__ENVELOPE__BODY_SA_UNMASK;
    e.sa_unmask = &um;
    rv.kind = 1;
    refused(&e, &x, FEDC_EFORMAT, "unexpected raw frame");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_res_round_trip),   cmocka_unit_test(test_envelope_checks),
        cmocka_unit_test(test_bytes_level_failures), cmocka_unit_test(test_raw_frame),
        cmocka_unit_test(test_join_and_schema),      cmocka_unit_test(test_welcome_own_model),
        cmocka_unit_test(test_stats_and_evaluation), cmocka_unit_test(test_evaluate_ins),
        cmocka_unit_test(test_fit_ins_bound),        cmocka_unit_test(test_secagg_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
