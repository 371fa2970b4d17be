/* The ROUTER/DEALER transport over loopback TCP: envelopes and raw tensor frames both ways, a
 * malformed or stale message refused with the sender known (so it can be answered) while the
 * ROUTER keeps serving, the size limit, sends to unknown peers failing loudly, and timeouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "fedc/transport.h"

static const uint8_t RUN[FEDC_RUN_ID_BYTES] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};

typedef struct pair {
    void *ctx;
    fedc_endpoint *router, *dealer;
} pair;

static int setup(void **state) {
    pair *p = calloc(1, sizeof *p);
    fedc_diag d;
    p->ctx = zmq_ctx_new();
    if (!p->ctx || fedc_net_bind(&p->router, p->ctx, "tcp://127.0.0.1:*", 1 << 20, &d) ||
        fedc_net_connect(&p->dealer, p->ctx, fedc_net_endpoint(p->router), 1 << 20, &d))
        return -1;
    *state = p;
    return 0;
}

static int teardown(void **state) {
    pair *p = *state;
    fedc_net_close(&p->router);
    fedc_net_close(&p->dealer);
    zmq_ctx_term(p->ctx);
    free(p);
    return 0;
}

static fedc_msg_expect expect(int64_t round, uint64_t n_params) {
    fedc_msg_expect x = {0};
    x.run_id = RUN;
    x.round = round;
    x.n_params = n_params;
    return x;
}

static void send_heartbeat(fedc_endpoint *e, const fedc_peer *to, uint32_t round, uint64_t seq) {
    fedc_heartbeat h = {seq};
    fedc_diag d;
    assert_int_equal(fedc_net_send_heartbeat(e, to, RUN, round, &h, &d), FEDC_OK);
}

static void test_both_ways_with_raw_frame(void **state) {
    pair *p = *state;
    fedc_diag d;
    fedc_inbox in;
    /* DEALER -> ROUTER: a fit result whose 1000 values follow as a raw frame. */
    float v[1000];
    for (int i = 0; i < 1000; i++)
        v[i] = (float)i * 0.001f - 0.5f;
    fedc_fit_res f;
    memset(&f, 0, sizeof f);
    f.update.count = 1000;
    f.update.data = v;
    f.n_examples = 50;
    f.train_loss = 0.3;
    assert_int_equal(fedc_net_send_fit_res(p->dealer, NULL, RUN, 3, &f, &d), FEDC_OK);
    fedc_msg_expect x = expect(3, 1000);
    assert_int_equal(fedc_net_recv(p->router, &in, &x, 5000, &d), FEDC_OK);
    assert_true(in.from.len > 0);
    assert_int_equal(in.msg.kind, FEDC_MSG_FIT_RES);
    assert_int_equal(in.msg.round, 3);
    assert_memory_equal(in.msg.run_id, RUN, FEDC_RUN_ID_BYTES);
    assert_int_equal(in.raw_len, sizeof v);
    assert_int_equal(in.msg.fit_res.n_examples, 50);
    assert_true(in.msg.fit_res.train_loss == 0.3);
    /* The view's tensor is the raw frame itself, not a copy. */
    assert_int_equal(in.msg.fit_res.update.count, 1000);
    assert_ptr_equal(in.msg.fit_res.update.data, in.raw);
    float back[1000];
    fedc_tensor_read(back, &in.msg.fit_res.update);
    assert_memory_equal(back, v, sizeof v);
    fedc_peer who = in.from;
    fedc_inbox_release(&in);
    /* ROUTER -> that DEALER. */
    send_heartbeat(p->router, &who, 3, 42);
    fedc_msg_expect y = expect(3, 0);
    assert_int_equal(fedc_net_recv(p->dealer, &in, &y, 5000, &d), FEDC_OK);
    assert_int_equal(in.msg.kind, FEDC_MSG_HEARTBEAT);
    assert_int_equal(in.msg.heartbeat.seq, 42);
    fedc_inbox_release(&in);
}

static void test_refused_then_still_serving(void **state) {
    pair *p = *state;
    fedc_diag d;
    fedc_inbox in;
    /* Garbage in one frame. */
    const char junk[] = "\xff\xff\xff\xff\xff not a protobuf";
    assert_true(zmq_send(fedc_net_socket(p->dealer), junk, sizeof junk, 0) >= 0);
    fedc_msg_expect x = expect(3, 0);
    assert_int_equal(fedc_net_recv(p->router, &in, &x, 5000, &d), FEDC_EFORMAT);
    assert_non_null(strstr(d.msg, "malformed"));
    assert_int_equal(in.msg.kind, FEDC_MSG_NONE);
    assert_true(in.from.len > 0);
    fedc_net_send_error(p->router, &in.from, RUN, 3, FEDC_EFORMAT, d.msg);
    fedc_inbox_release(&in);
    fedc_msg_expect y = expect(3, 0);
    assert_int_equal(fedc_net_recv(p->dealer, &in, &y, 5000, &d), FEDC_OK);
    assert_int_equal(in.msg.kind, FEDC_MSG_ERROR);
    assert_int_equal(in.msg.error.code, FEDC_EFORMAT);
    assert_int_equal(in.msg.error.kind, FEDC_ERROR_NOTE);
    assert_non_null(strstr(in.msg.error.reason, "malformed"));
    fedc_inbox_release(&in);
    /* A stale round is refused with the round named. */
    send_heartbeat(p->dealer, NULL, 2, 1);
    assert_int_equal(fedc_net_recv(p->router, &in, &x, 5000, &d), FEDC_EMISMATCH);
    assert_non_null(strstr(d.msg, "round 2, expected round 3"));
    fedc_inbox_release(&in);
    /* Three frames where one or two are allowed. */
    void *s = fedc_net_socket(p->dealer);
    assert_true(zmq_send(s, "a", 1, ZMQ_SNDMORE) >= 0 && zmq_send(s, "b", 1, ZMQ_SNDMORE) >= 0 &&
                zmq_send(s, "c", 1, 0) >= 0);
    assert_int_equal(fedc_net_recv(p->router, &in, &x, 5000, &d), FEDC_EFORMAT);
    assert_non_null(strstr(d.msg, "3 frames"));
    fedc_inbox_release(&in);
    /* The ROUTER still serves the same peer. */
    send_heartbeat(p->dealer, NULL, 3, 7);
    assert_int_equal(fedc_net_recv(p->router, &in, &x, 5000, &d), FEDC_OK);
    assert_int_equal(in.msg.heartbeat.seq, 7);
    fedc_inbox_release(&in);
}

static void test_unknown_peer_and_timeout(void **state) {
    pair *p = *state;
    fedc_diag d;
    fedc_peer ghost = {.id = {0, 1, 2, 3}, .len = 4};
    fedc_heartbeat h = {0};
    assert_int_equal(fedc_net_send_heartbeat(p->router, &ghost, RUN, 0, &h, &d), FEDC_EIO);
    assert_non_null(strstr(d.msg, "not connected"));
    fedc_inbox in;
    fedc_msg_expect x = expect(-1, 0);
    assert_int_equal(fedc_net_recv(p->router, &in, &x, 50, &d), FEDC_EEMPTY);
}

/* A message over the limit but within twice it arrives and is refused with both sizes named, the
 * sender known, so that it can be told; the ROUTER goes on serving it. */
static void test_oversize_refused_with_sizes(void **state) {
    (void)state;
    void *ctx = zmq_ctx_new();
    fedc_endpoint *r = NULL, *c = NULL;
    fedc_diag d;
    assert_int_equal(fedc_net_bind(&r, ctx, "tcp://127.0.0.1:*", 1000, &d), FEDC_OK);
    assert_int_equal(fedc_net_connect(&c, ctx, fedc_net_endpoint(r), 0, &d), FEDC_OK);
    static uint8_t big[1500];
    assert_true(zmq_send(fedc_net_socket(c), big, sizeof big, 0) >= 0);
    fedc_inbox in;
    fedc_msg_expect x = expect(-1, 0);
    assert_int_equal(fedc_net_recv(r, &in, &x, 5000, &d), FEDC_ERANGE);
    print_message("1500 bytes -> %s\n", d.msg);
    assert_non_null(
        strstr(d.msg, "message of 1500 bytes exceeds the receiver's limit of 1000 bytes"));
    assert_true(in.from.len > 0);
    assert_int_equal(in.msg.kind, FEDC_MSG_NONE);
    fedc_net_send_error(r, &in.from, RUN, 0, FEDC_ERANGE, d.msg);
    fedc_inbox_release(&in);
    fedc_msg_expect y = expect(-1, 0);
    assert_int_equal(fedc_net_recv(c, &in, &y, 5000, &d), FEDC_OK);
    assert_int_equal(in.msg.kind, FEDC_MSG_ERROR);
    assert_int_equal(in.msg.error.code, FEDC_ERANGE);
    assert_non_null(strstr(in.msg.error.reason, "1500 bytes"));
    fedc_inbox_release(&in);
    /* Two frames: the limit counts the whole message (envelope and raw frame). */
    assert_true(zmq_send(fedc_net_socket(c), big, 600, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(fedc_net_socket(c), big, 600, 0) >= 0);
    assert_int_equal(fedc_net_recv(r, &in, &x, 5000, &d), FEDC_ERANGE);
    assert_non_null(strstr(d.msg, "message of 1200 bytes"));
    fedc_inbox_release(&in);
    fedc_net_close(&c);
    fedc_net_close(&r);
    zmq_ctx_term(ctx);
}

/* ZMQ_MAXMSGSIZE (twice the limit): a frame over it never reaches the application (ZeroMQ drops
 * the connection), so a peer cannot make the ROUTER allocate more than that. */
static void test_size_limit(void **state) {
    (void)state;
    void *ctx = zmq_ctx_new();
    fedc_endpoint *r = NULL, *c = NULL;
    fedc_diag d;
    assert_int_equal(fedc_net_bind(&r, ctx, "tcp://127.0.0.1:*", 1000, &d), FEDC_OK);
    assert_int_equal(fedc_net_connect(&c, ctx, fedc_net_endpoint(r), 0, &d), FEDC_OK);
    static uint8_t big[4000];
    assert_true(zmq_send(fedc_net_socket(c), big, sizeof big, 0) >= 0);
    fedc_inbox in;
    fedc_msg_expect x = expect(-1, 0);
    assert_int_equal(fedc_net_recv(r, &in, &x, 500, &d), FEDC_EEMPTY);
    fedc_net_close(&c);
    fedc_net_close(&r);
    zmq_ctx_term(ctx);
}

/* The ZAP handler answers libzmq's requests on inproc://zeromq.zap.01 of the endpoint's context;
 * a REQ socket of the test in that context sends it hand-made ones (RFC 27 frames: version,
 * request id, domain, address, identity, mechanism, key) and reads the status. */
typedef struct zap_answer {
    char version[16], id[16], code[8], text[128], user[80];
} zap_answer;

static int zap_ask(void *req, const char *version, const char *domain, const char *mechanism,
                   const uint8_t *key, int n_frames, zap_answer *out) {
    const char *text[6] = {version, "req-7", domain, "127.0.0.1", "", mechanism};
    for (int i = 0; i < n_frames; i++) {
        int more = i + 1 < n_frames ? ZMQ_SNDMORE : 0;
        int rc =
            i < 6 ? zmq_send(req, text[i], strlen(text[i]), more) : zmq_send(req, key, 32, more);
        if (rc < 0)
            return -1;
    }
    char *dst[5] = {out->version, out->id, out->code, out->text, out->user};
    size_t cap[5] = {sizeof out->version, sizeof out->id, sizeof out->code, sizeof out->text,
                     sizeof out->user};
    memset(out, 0, sizeof *out);
    int more = 1;
    for (int i = 0; more; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, req, 0) < 0) {
            zmq_msg_close(&m);
            return -1; /* no answer within the receive timeout */
        }
        if (i < 5) {
            size_t k = zmq_msg_size(&m) < cap[i] - 1 ? zmq_msg_size(&m) : cap[i] - 1;
            memcpy(dst[i], zmq_msg_data(&m), k);
        }
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    return 0;
}

static void test_zap_checks_version_and_domain(void **state) {
    (void)state;
    void *ctx = zmq_ctx_new();
    fedc_identity server, bank, stranger;
    fedc_diag d;
    assert_int_equal(fedc_key_generate(&server, "coordinator", &d), FEDC_OK);
    assert_int_equal(fedc_key_generate(&bank, "bank-a", &d), FEDC_OK);
    assert_int_equal(fedc_key_generate(&stranger, "stranger", &d), FEDC_OK);
    fedc_endpoint *r = NULL;
    assert_int_equal(
        fedc_net_bind_secure(&r, ctx, "tcp://127.0.0.1:*", 1 << 20, &server, &bank, 1, &d),
        FEDC_OK);
    void *req = zmq_socket(ctx, ZMQ_REQ);
    assert_non_null(req);
    int timeout = 3000, zero = 0;
    assert_int_equal(zmq_setsockopt(req, ZMQ_RCVTIMEO, &timeout, sizeof timeout), 0);
    assert_int_equal(zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_connect(req, "inproc://zeromq.zap.01"), 0);
    zap_answer a;

    /* The control: a well-formed request with a listed key is admitted under its name. */
    assert_int_equal(zap_ask(req, "1.0", "fedc", "CURVE", bank.curve_pk, 7, &a), 0);
    assert_string_equal(a.version, "1.0");
    assert_string_equal(a.id, "req-7");
    assert_string_equal(a.code, "200");
    assert_string_equal(a.user, "bank-a");

    /* Another ZAP version: refused, whatever the key. */
    assert_int_equal(zap_ask(req, "2.0", "fedc", "CURVE", bank.curve_pk, 7, &a), 0);
    assert_string_equal(a.code, "400");
    assert_string_equal(a.user, "");
    assert_non_null(strstr(a.text, "expected \"1.0\""));

    /* A domain that is not the coordinator's: refused. */
    assert_int_equal(zap_ask(req, "1.0", "other", "CURVE", bank.curve_pk, 7, &a), 0);
    assert_string_equal(a.code, "400");
    assert_string_equal(a.user, "");
    assert_non_null(strstr(a.text, "expected \"fedc\""));
    assert_int_equal(zap_ask(req, "1.0", "", "CURVE", bank.curve_pk, 7, &a), 0);
    assert_string_equal(a.code, "400");

    /* An unlisted key: refused and counted. */
    long before = fedc_net_refused(r);
    assert_int_equal(zap_ask(req, "1.0", "fedc", "CURVE", stranger.curve_pk, 7, &a), 0);
    assert_string_equal(a.code, "400");
    assert_non_null(strstr(a.text, "allow-list"));
    assert_int_equal(fedc_net_refused(r), before + 1);

    /* A request cut short is answered (400), and the handler still serves the next one. */
    assert_int_equal(zap_ask(req, "1.0", "fedc", "CURVE", NULL, 4, &a), 0);
    assert_string_equal(a.code, "400");
    assert_non_null(strstr(a.text, "malformed"));
    assert_int_equal(zap_ask(req, "1.0", "fedc", "CURVE", bank.curve_pk, 7, &a), 0);
    assert_string_equal(a.code, "200");

    zmq_close(req);
    fedc_net_close(&r);
    fedc_key_wipe(&server);
    fedc_key_wipe(&bank);
    fedc_key_wipe(&stranger);
    zmq_ctx_term(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_both_ways_with_raw_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_then_still_serving, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_peer_and_timeout, setup, teardown),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_oversize_refused_with_sizes),
        cmocka_unit_test(test_zap_checks_version_and_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
