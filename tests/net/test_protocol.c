/* The coordinator (argv[1]) against a hostile peer while two real clients (argv[2]) train: a raw
 * ZeroMQ DEALER in this process joins like a client, then sends garbage bytes, a truncated
 * protobuf, a wrong protocol version, a wrong run id, a fit_res for a stale round and one with the
 * wrong dimension; once selected for a round it answers with NaN and Inf updates and an
 * evaluation with an infinite loss; finally it sends messages bigger than --max-msg-mb. Every
 * message that gets an answer gets an Error whose reason names the problem; a refused answer does
 * not hold the round (the heartbeat timeout and round deadline are longer than the whole test);
 * a message over the limit is refused naming its size and the limit, one over twice the limit
 * makes ZeroMQ drop the connection, after which the coordinator still answers a new peer; and the
 * federation of the real clients completes normally. Then: --max-msg-mb too small for the model
 * (coordinator and client refuse, naming both sizes); a peer flooding heartbeats (its log lines
 * are rate-limited); heartbeats answered only after a quiet half second; thousands of fake joins
 * that fall silent (their slots are given back). The codec's own checks have unit tests in
 * test_codec.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <zmq.h>

#include "fedc/clock.h"
#include "fed.h"
#include "fedc/codec.h"

#define RUN_TIMEOUT 45
#define START_TIMEOUT 15
#define REPLY_TIMEOUT_MS 10000
#define ROUNDS 8
#define EVAL_BINS 10000 /* FEDC_EVAL_BINS, the histogram size the coordinator expects */

static const char *g_coord, *g_client;

typedef struct ctx {
    fed f;
    void *zctx;
    void *rogue, *rogue2;
    void **fakes; /* (n_fakes) sockets of test_join_flood, closed by the teardown */
    int n_fakes;
    int ok;
    /* Instructions the rogue received while it waited for something else: round, or -1. */
    long fit_round, eval_round;
} ctx;

static void close_socket(void **s) {
    if (*s) {
        int zero = 0;
        zmq_setsockopt(*s, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(*s);
        *s = NULL;
    }
}

static int setup(void **state) {
    ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    if (fed_init(&c->f, "fedc-test-protocol-", g_coord, g_client)) {
        fed_release(&c->f, 0);
        free(c);
        return -1;
    }
    c->zctx = zmq_ctx_new();
    if (!c->zctx) {
        fed_release(&c->f, 0);
        free(c);
        return -1;
    }
    c->fit_round = c->eval_round = -1;
    *state = c;
    return 0;
}

static int teardown(void **state) {
    ctx *c = *state;
    close_socket(&c->rogue);
    close_socket(&c->rogue2);
    for (int i = 0; i < c->n_fakes; i++)
        close_socket(&c->fakes[i]); /* zmq_ctx_term waits for every socket */
    free(c->fakes);
    zmq_ctx_term(c->zctx);
    fed_release(&c->f, !c->ok);
    free(c);
    return 0;
}

static void *rogue_connect(ctx *c) {
    void *s = zmq_socket(c->zctx, ZMQ_DEALER);
    assert_non_null(s);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_connect(s, c->f.endpoint), 0);
    return s;
}

/* Sends one message: the envelope bytes and, if raw is not NULL, a raw frame after them. */
static void send_bytes(void *s, const void *env, size_t len, const void *raw, size_t raw_len) {
    assert_true(zmq_send(s, env, len, raw ? ZMQ_SNDMORE : 0) == (int)len);
    if (raw)
        assert_true(zmq_send(s, raw, raw_len, 0) == (int)raw_len);
}

static void send_env(void *s, const Fedc__Envelope *e, const void *raw, size_t raw_len) {
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fedc_msg_pack(&buf, &len, e), FEDC_OK);
    send_bytes(s, buf, len, raw, raw_len);
    free(buf);
}

/* Receives messages until one with body `want` arrives, or with `any_instruction` until a FitIns
 * or EvaluateIns has arrived (then returns NULL). Others are skipped, but the round of a FitIns or
 * EvaluateIns is noted in c, to be answered later. Caller frees the envelope. */
static Fedc__Envelope *recv_until(ctx *c, void *s, Fedc__Envelope__BodyCase want,
                                  int any_instruction) {
    for (int waited = 0; waited < REPLY_TIMEOUT_MS;) {
        if (any_instruction && (c->fit_round >= 0 || c->eval_round >= 0))
            return NULL;
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&it, 1, 100);
        assert_true(n >= 0);
        if (n == 0) {
            waited += 100;
            continue;
        }
        zmq_msg_t first;
        zmq_msg_init(&first);
        assert_true(zmq_msg_recv(&first, s, 0) >= 0);
        int more = zmq_msg_more(&first);
        while (more) { /* a raw tensor frame: not needed here */
            zmq_msg_t f;
            zmq_msg_init(&f);
            assert_true(zmq_msg_recv(&f, s, 0) >= 0);
            more = zmq_msg_more(&f);
            zmq_msg_close(&f);
        }
        Fedc__Envelope *e =
            fedc__envelope__unpack(NULL, zmq_msg_size(&first), zmq_msg_data(&first));
        zmq_msg_close(&first);
        assert_non_null(e);
        if (e->body_case == want)
            return e;
        if (e->body_case == FEDC__ENVELOPE__BODY_FIT_INS)
            c->fit_round = e->round;
        if (e->body_case == FEDC__ENVELOPE__BODY_EVALUATE_INS)
            c->eval_round = e->round;
        if (e->body_case == FEDC__ENVELOPE__BODY_BYE)
            print_message("the coordinator said goodbye: %s\n", e->bye->reason);
        fedc__envelope__free_unpacked(e, NULL);
    }
    print_message("no %s within %d ms\n",
                  any_instruction ? "instruction" : fedc_msg_body_name(want), REPLY_TIMEOUT_MS);
    fail();
    return NULL;
}

static Fedc__Envelope *recv_body(ctx *c, void *s, Fedc__Envelope__BodyCase want) {
    return recv_until(c, s, want, 0);
}

/* The next Error reply must name the problem: its reason contains `names`. */
static void expect_error(ctx *c, void *s, const char *what, const char *names) {
    Fedc__Envelope *e = recv_body(c, s, FEDC__ENVELOPE__BODY_ERROR);
    print_message("%-22s -> Error: %s\n", what, e->error->reason);
    if (!strstr(e->error->reason, names))
        print_message("expected the reason to contain '%s'\n", names);
    assert_non_null(strstr(e->error->reason, names));
    assert_int_equal(e->version, FEDC_PROTOCOL_VERSION);
    fedc__envelope__free_unpacked(e, NULL);
}

/* A Join with the German credit schema (a1..a24, label bad, binary). */
static void make_join(Fedc__Envelope *e, Fedc__Join *j, Fedc__Schema *s, char **names,
                      char storage[24][8]) {
    fedc__envelope__init(e);
    fedc__join__init(j);
    fedc__schema__init(s);
    for (int i = 0; i < 24; i++) {
        snprintf(storage[i], 8, "a%d", i + 1);
        names[i] = storage[i];
    }
    s->n_feature_names = 24;
    s->feature_names = names;
    s->label = "bad";
    s->task = 0;
    s->n_classes = 2;
    j->name = "rogue";
    j->schema = s;
    j->n_rows = 100;
    e->version = FEDC_PROTOCOL_VERSION;
    e->body_case = FEDC__ENVELOPE__BODY_JOIN;
    e->join = j;
}

/* A fit_res for `round` carrying `count` floats as a raw frame (values from v). */
static void send_fit_res(void *s, const uint8_t *run_id, uint32_t round, const float *v,
                         size_t count, int inline_values) {
    Fedc__Envelope e;
    Fedc__FitRes r = FEDC__FIT_RES__INIT;
    Fedc__Tensor t = FEDC__TENSOR__INIT;
    fedc__envelope__init(&e);
    e.version = FEDC_PROTOCOL_VERSION;
    e.run_id.data = (uint8_t *)run_id;
    e.run_id.len = FEDC_RUN_ID_BYTES;
    e.round = round;
    uint8_t *bytes = malloc(4 * count + 1);
    assert_non_null(bytes);
    fedc_tensor_pack(&t, bytes, v, count);
    if (!inline_values) {
        t.data.data = NULL;
        t.data.len = 0;
    }
    r.update = &t;
    r.n_examples = 100;
    r.train_loss = 0.5;
    r.seconds = 0.1;
    e.body_case = FEDC__ENVELOPE__BODY_FIT_RES;
    e.fit_res = &r;
    send_env(s, &e, inline_values ? NULL : bytes, 4 * count);
    free(bytes);
}

/* An evaluate_res for `round` with empty binary histograms of `bins` bins and the given loss. */
static void send_eval_res(void *s, const uint8_t *run_id, uint32_t round, size_t bins,
                          double loss) {
    Fedc__Envelope e;
    Fedc__EvaluateRes r = FEDC__EVALUATE_RES__INIT;
    uint64_t *zero = calloc(bins, sizeof(uint64_t));
    assert_non_null(zero);
    fedc__envelope__init(&e);
    e.version = FEDC_PROTOCOL_VERSION;
    e.run_id.data = (uint8_t *)run_id;
    e.run_id.len = FEDC_RUN_ID_BYTES;
    e.round = round;
    r.n_hist_pos = r.n_hist_neg = bins;
    r.hist_pos = r.hist_neg = zero;
    r.log_loss_sum = loss;
    e.body_case = FEDC__ENVELOPE__BODY_EVALUATE_RES;
    e.evaluate_res = &r;
    send_env(s, &e, NULL, 0);
    free(zero);
}

static void send_heartbeat_v(void *s, uint32_t version, const uint8_t *run_id, uint64_t seq) {
    Fedc__Envelope e;
    Fedc__Heartbeat h = FEDC__HEARTBEAT__INIT;
    fedc__envelope__init(&e);
    e.version = version;
    e.run_id.data = (uint8_t *)run_id;
    e.run_id.len = FEDC_RUN_ID_BYTES;
    h.seq = seq;
    e.body_case = FEDC__ENVELOPE__BODY_HEARTBEAT;
    e.heartbeat = &h;
    send_env(s, &e, NULL, 0);
}

static void send_heartbeat(void *s, uint32_t version, const uint8_t *run_id) {
    send_heartbeat_v(s, version, run_id, 1);
}

static void send_heartbeat_seq(void *s, const uint8_t *run_id, uint64_t seq) {
    send_heartbeat_v(s, FEDC_PROTOCOL_VERSION, run_id, seq);
}

static void test_hostile_peer(void **state) {
    ctx *c = *state;
    fed *f = &c->f;
    assert_int_equal(fed_write_shards(f, 2, "shard"), 0);
    char *metrics = fed_path(f, "metrics.json");
    assert_non_null(metrics);
    /* The heartbeat timeout and the round deadline outlast the test: a round that waited for
     * the rogue instead of going on would make it fail. */
    /* clang-format off */
    const char *args[] = {"--min-clients", "2", "--rounds", "8", "--local-epochs", "2",
                          "--layers", "16", "--max-msg-mb", "1", "--round-timeout", "100",
                          "--heartbeat-timeout", "100", "--wait-timeout", "30",
                          "--metrics-json", metrics, NULL};
    /* clang-format on */
    /* Rounds of at least 200 ms, so that the attack happens while the run goes on. */
    char fault[512];
    size_t fl = (size_t)snprintf(fault, sizeof fault, "FEDC_FAULT=");
    for (int r = 1; r <= ROUNDS; r++)
        fl += (size_t)snprintf(fault + fl, sizeof fault - fl, "%sbank-a/delay:fit-res@%d:200",
                               r > 1 ? "," : "", r);
    assert_true(fl < sizeof fault);
    const char *env[] = {fault, NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    char *csv0 = fed_path(f, "shard0.csv"), *csv1 = fed_path(f, "shard1.csv");
    assert_true(fed_start_client(f, "bank-a", csv0, env, NULL) >= 0);
    assert_true(fed_start_client(f, "bank-b", csv1, env, NULL) >= 0);
    free(csv0);
    free(csv1);
    /* Round 0 (statistics) is between the real clients. */
    assert_int_equal(fed_wait_text(f->coord.err, "round 0: statistics from 2", 0, f->coord.pid, 15),
                     0);

    /* Join like a client to learn the run id and the model's size. */
    c->rogue = rogue_connect(c);
    void *s = c->rogue;
    Fedc__Envelope je;
    Fedc__Join j;
    Fedc__Schema sch;
    char *names[24];
    char storage[24][8];
    make_join(&je, &j, &sch, names, storage);
    send_env(s, &je, NULL, 0);
    Fedc__Envelope *w = recv_body(c, s, FEDC__ENVELOPE__BODY_WELCOME);
    assert_int_equal(w->run_id.len, FEDC_RUN_ID_BYTES);
    uint8_t run_id[FEDC_RUN_ID_BYTES];
    memcpy(run_id, w->run_id.data, FEDC_RUN_ID_BYTES);
    size_t n_params = 0;
    for (size_t l = 0; l + 1 < w->welcome->n_layer_sizes; l++)
        n_params += (size_t)w->welcome->layer_sizes[l] * w->welcome->layer_sizes[l + 1] +
                    w->welcome->layer_sizes[l + 1];
    assert_int_equal(w->welcome->layer_sizes[0], 24);
    fedc__envelope__free_unpacked(w, NULL);
    float *zeros = calloc(n_params, sizeof(float));
    assert_non_null(zeros);

    /* Garbage: a varint that never ends is no protobuf. */
    uint8_t junk[16];
    memset(junk, 0xff, sizeof junk);
    send_bytes(s, junk, sizeof junk, NULL, 0);
    expect_error(c, s, "garbage bytes", "malformed");

    /* A Join cut in the middle. */
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fedc_msg_pack(&buf, &len, &je), FEDC_OK);
    send_bytes(s, buf, len / 2, NULL, 0);
    free(buf);
    expect_error(c, s, "truncated protobuf", "malformed");

    send_heartbeat(s, FEDC_PROTOCOL_VERSION + 1, run_id);
    expect_error(c, s, "protocol version 7", "version");

    uint8_t other_run[FEDC_RUN_ID_BYTES];
    memset(other_run, 0x42, sizeof other_run);
    send_heartbeat(s, FEDC_PROTOCOL_VERSION, other_run);
    expect_error(c, s, "wrong run id", "run id");

    send_fit_res(s, run_id, 0, zeros, n_params, 0);
    expect_error(c, s, "stale round fit_res", "round");

    send_fit_res(s, run_id, 1, zeros, 5, 0);
    expect_error(c, s, "wrong dimension", "expected");

    /* As a member of the federation it is asked to train and to evaluate (evaluation also in
     * rounds it does not train in). Its first two updates (NaN in the raw frame, Inf inside the
     * message) and its first evaluation (an infinite loss) are refused, and each time the round
     * goes on without waiting for it; later evaluations are valid and empty. */
    int fits = 0, evals = 0, last_was_eval = 0;
    while (fits < 2 || evals < 1 || !last_was_eval) {
        Fedc__Envelope *bye_msg = recv_until(c, s, FEDC__ENVELOPE__BODY_BYE, 1);
        if (bye_msg) {
            print_message("unexpected goodbye: %s\n", bye_msg->bye->reason);
            fedc__envelope__free_unpacked(bye_msg, NULL);
            fail();
        }
        if (c->fit_round >= 0) {
            uint32_t r = (uint32_t)c->fit_round;
            c->fit_round = -1;
            last_was_eval = 0;
            if (fits++ == 0) {
                zeros[3] = NAN;
                send_fit_res(s, run_id, r, zeros, n_params, 0);
                zeros[3] = 0.0f;
                expect_error(c, s, "NaN in the raw frame", "not finite");
            } else {
                zeros[n_params - 1] = INFINITY;
                send_fit_res(s, run_id, r, zeros, n_params, 1);
                zeros[n_params - 1] = 0.0f;
                expect_error(c, s, "Inf in the message", "not finite");
            }
        } else {
            uint32_t r = (uint32_t)c->eval_round;
            c->eval_round = -1;
            last_was_eval = 1;
            if (evals++ == 0) {
                send_eval_res(s, run_id, r, EVAL_BINS, INFINITY);
                expect_error(c, s, "infinite evaluation", "log_loss_sum");
            } else {
                send_eval_res(s, run_id, r, EVAL_BINS, 0.0);
            }
        }
    }
    free(zeros);
    /* Leaves, so that the coordinator does not wait for it in later rounds (a connection that
     * merely goes away is noticed only at the next send or after the heartbeat timeout). */
    Fedc__Envelope be;
    Fedc__Bye bye = FEDC__BYE__INIT;
    fedc__envelope__init(&be);
    be.version = FEDC_PROTOCOL_VERSION;
    be.run_id.data = run_id;
    be.run_id.len = FEDC_RUN_ID_BYTES;
    bye.reason = "done";
    be.body_case = FEDC__ENVELOPE__BODY_BYE;
    be.bye = &bye;
    send_env(s, &be, NULL, 0);
    assert_int_equal(fed_wait_text(f->coord.err, "rogue left", 0, f->coord.pid, 10), 0);

    /* Bigger than --max-msg-mb 1 (1.5 MiB): refused with an Error naming its size and the limit. */
    size_t big = (size_t)3 << 20;
    uint8_t *huge = calloc(big, 1);
    assert_non_null(huge);
    send_bytes(s, huge, big / 2, NULL, 0);
    expect_error(c, s, "1.5 MiB message",
                 "message of 1572864 bytes exceeds the receiver's limit of 1048576 bytes");
    /* Beyond twice the limit ZeroMQ itself drops the connection, no reply. */
    send_bytes(s, huge, big, NULL, 0);
    free(huge);
    /* The coordinator is still up and answers a new peer. */
    c->rogue2 = rogue_connect(c);
    send_bytes(c->rogue2, junk, sizeof junk, NULL, 0);
    expect_error(c, c->rogue2, "after the oversize one", "malformed");
    assert_true(fed_file_has(f->coord.err, "refused a message from rogue"));
    assert_true(fed_file_has(f->coord.err, "rogue: its answer was refused"));
    /* It was selected to train in at least the two rounds it spoiled. */

    /* Meanwhile the federation went on and completes normally. */
    assert_int_equal(fed_wait(&f->coord, RUN_TIMEOUT), 0);
    if (f->coord.res.status != 0)
        print_message("coordinator: status %d, signal %d\n", f->coord.res.status,
                      f->coord.res.term_signal);
    assert_int_equal(f->coord.res.term_signal, 0);
    assert_int_equal(f->coord.res.status, 0);
    for (int i = 0; i < f->n_cl; i++) {
        assert_int_equal(fed_wait(&f->cl[i], 15), 0);
        assert_int_equal(f->cl[i].res.term_signal, 0);
        assert_int_equal(f->cl[i].res.status, 0);
    }
    fed_round r[ROUNDS + 2];
    assert_int_equal(fed_read_metrics(metrics, r, ROUNDS + 2), ROUNDS);
    int with_rogue = 0;
    for (int i = 0; i < ROUNDS; i++) {
        assert_int_equal(r[i].round, i + 1);
        assert_int_equal(r[i].participants, 2);
        with_rogue += r[i].selected == 3;
    }
    assert_true(with_rogue >= 2);
    /* The oversize message is in the log too (possibly in a summary of the rogue's refusals). */
    assert_true(fed_file_has(f->coord.err, "message of 1572864 bytes exceeds"));
    /* Nobody was waited for until a deadline. */
    assert_false(fed_file_has(f->coord.err, "deadline"));
    assert_false(fed_file_has(f->coord.err, "missed its heartbeats"));
    free(metrics);
    c->ok = 1;
}

/* ---- join slots ------------------------------------------------------------------------------ */

#define FLOOD_SLOTS 4096 /* MAX_CLIENTS of coordinator/coord_int.h */
#define FLOOD_HB_TIMEOUT 25

/* Sends a Join with the German credit schema under `name`. */
static void send_join_as(void *s, const char *name) {
    Fedc__Envelope je;
    Fedc__Join j;
    Fedc__Schema sch;
    char *names[24];
    char storage[24][8];
    make_join(&je, &j, &sch, names, storage);
    j.name = (char *)name;
    send_env(s, &je, NULL, 0);
}

/* With --insecure anyone can join under any name. FLOOD_SLOTS fake joins, each on a connection of
 * its own, fill the coordinator's table of client slots and then fall silent. While they still
 * count as live (within --heartbeat-timeout), one more join is refused with an Error that names
 * the cap. Once they have been silent for the heartbeat timeout without ever taking part, their
 * slots are given back: a genuine client joins and the run completes. (Before, the slots were
 * never freed and every later join was refused for good.) */
static void test_join_flood(void **state) {
    ctx *c = *state;
    fed *f = &c->f;
    /* Each fake holds a TCP connection here and one at the coordinator, plus a ZeroMQ mailbox
     * (an eventfd) here: raise the open-file limit, which the coordinator inherits. */
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    const rlim_t want = 3 * FLOOD_SLOTS + 1024;
    if (rl.rlim_cur < want && rl.rlim_max >= want) {
        rl.rlim_cur = want;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur < want) {
        print_message("skipped: %lu open files are needed, the hard limit is %lu\n",
                      (unsigned long)want, (unsigned long)rl.rlim_max);
        skip();
    }
    assert_int_equal(zmq_ctx_set(c->zctx, ZMQ_MAX_SOCKETS, FLOOD_SLOTS + 64), 0);
    assert_int_equal(fed_write_shards(f, 1, "shard"), 0);
    char *metrics = fed_path(f, "metrics.json");
    assert_non_null(metrics);
    char hb[16];
    snprintf(hb, sizeof hb, "%d", FLOOD_HB_TIMEOUT);
    /* clang-format off */
    const char *args[] = {"--min-clients", "1", "--rounds", "2", "--layers", "8",
                          "--heartbeat-timeout", hb, "--round-timeout", "3",
                          "--max-retries", "500", "--wait-timeout", "120",
                          "--metrics-json", metrics, NULL};
    /* clang-format on */
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);

    void **fake = c->fakes = calloc(FLOOD_SLOTS, sizeof *fake);
    assert_non_null(fake);
    c->n_fakes = FLOOD_SLOTS;
    double t0 = fedc_clock_s();
    enum { BATCH = 256 };
    for (int b = 0; b < FLOOD_SLOTS; b += BATCH) {
        for (int i = b; i < b + BATCH && i < FLOOD_SLOTS; i++) {
            fake[i] = rogue_connect(c);
            char name[32];
            snprintf(name, sizeof name, "fake-%d", i);
            send_join_as(fake[i], name);
        }
        for (int i = b; i < b + BATCH && i < FLOOD_SLOTS; i++) {
            Fedc__Envelope *w = recv_body(c, fake[i], FEDC__ENVELOPE__BODY_WELCOME);
            fedc__envelope__free_unpacked(w, NULL);
        }
    }
    double t_full = fedc_clock_s();
    print_message("%d fake joins in %.1f s\n", FLOOD_SLOTS, t_full - t0);
    /* The table is full of live (if silent) clients: one more join is refused, naming the cap. */
    if (t_full - t0 < FLOOD_HB_TIMEOUT - 2) {
        c->rogue = rogue_connect(c);
        send_join_as(c->rogue, "one-too-many");
        char cap[64];
        snprintf(cap, sizeof cap, "all %d client slots", FLOOD_SLOTS);
        expect_error(c, c->rogue, "join into a full table", cap);
    } else {
        print_message("the flood took longer than the heartbeat timeout: the full table is not "
                      "checked\n");
    }

    /* Silent past the heartbeat timeout (and any round-0 attempt with them past its deadline):
     * their slots can be given back. */
    while (fedc_clock_s() < t_full + FLOOD_HB_TIMEOUT + 4)
        nanosleep(&(struct timespec){0, 200000000}, NULL);
    char *csv = fed_path(f, "shard0.csv");
    assert_true(fed_start_client(f, "bank-a", csv, NULL, NULL) >= 0);
    free(csv);
    assert_int_equal(fed_wait(&f->coord, 90), 0);
    if (f->coord.res.status != 0 || !fed_file_has(f->coord.err, "freed"))
        print_message("coordinator: status %d\n", f->coord.res.status);
    assert_int_equal(f->coord.res.status, 0);
    assert_true(fed_file_has(f->coord.err, "freed"));
    assert_true(fed_file_has(f->coord.err, "bank-a joined"));
    assert_int_equal(fed_wait(&f->cl[0], 20), 0);
    assert_int_equal(f->cl[0].res.status, 0);
    fed_round r[4];
    assert_int_equal(fed_read_metrics(metrics, r, 4), 2);
    assert_int_equal(r[1].participants, 1);
    free(metrics);
    c->ok = 1;
}

/* ---- log lines ---------------------------------------------------------------------------------
 */

/* The number of lines in a file that contain needle (at their start when anchored). */
/* Counts the log lines holding needle; anchored: where the line's text starts, after the log
 * line's time and level (fedc/log.h: "2026-12-05T19:00:00.123Z INFO  fedc-coordinator: ..."). */
static int count_lines(const char *path, const char *needle, int anchored) {
    char *t = proc_read_file(path, NULL);
    int n = 0;
    for (char *line = t; line && *line;) {
        char *e = strchr(line, '\n');
        if (e)
            *e = '\0';
        const char *text = line;
        for (int field = 0; field < 2 && *line >= '0' && *line <= '9'; field++) {
            text = strchr(text, ' ');
            text = text ? text + strspn(text, " ") : line + strlen(line);
        }
        const char *at = strstr(line, needle);
        n += at && (!anchored || at == text);
        line = e ? e + 1 : line + strlen(line);
    }
    free(t);
    return n;
}

/* Starts a coordinator that waits for two clients (so no run starts) and joins it as `name`
 * with c->rogue; the run id from the Welcome goes to run_id. */
static void join_idle(ctx *c, const char *name, uint8_t run_id[FEDC_RUN_ID_BYTES]) {
    const char *args[] = {
        "--min-clients", "2", "--heartbeat-timeout", "60", "--wait-timeout", "60", NULL};
    assert_int_equal(fed_start_coord(&c->f, NULL, args, 0, START_TIMEOUT), 0);
    c->rogue = rogue_connect(c);
    send_join_as(c->rogue, name);
    Fedc__Envelope *w = recv_body(c, c->rogue, FEDC__ENVELOPE__BODY_WELCOME);
    memcpy(run_id, w->run_id.data, FEDC_RUN_ID_BYTES);
    fedc__envelope__free_unpacked(w, NULL);
}

/* A peer that sends 1000 heartbeats a second for 3 s (every other one with a wrong protocol
 * version, so refused, and never reading the replies) must not write a log line per message: the
 * coordinator prints the first line of each kind about it, then summarises the rest ("N more
 * messages like this from flooder suppressed") at most once per window of a few seconds. */
static void test_log_flood(void **state) {
    ctx *c = *state;
    fed *f = &c->f;
    uint8_t run_id[FEDC_RUN_ID_BYTES];
    join_idle(c, "flooder", run_id);
    int sent = 0;
    double t0 = fedc_clock_s();
    while (fedc_clock_s() < t0 + 3.0) {
        send_heartbeat(c->rogue, sent % 2 ? FEDC_PROTOCOL_VERSION : FEDC_PROTOCOL_VERSION + 1,
                       run_id);
        sent++;
        if (sent % 10 == 0) /* about 1000 a second */
            nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    /* Past the end of the window: the summary is out. */
    nanosleep(&(struct timespec){7, 0}, NULL);
    int lines = count_lines(f->coord.err, "flooder", 0);
    int refused = count_lines(f->coord.err, "fedc-coordinator: refused a message from flooder", 1);
    int summaries = count_lines(f->coord.err, "more message(s) like this from flooder", 0);
    print_message("%d messages sent; %d log lines about the flooder (%d refusals, %d summaries)\n",
                  sent, lines, refused, summaries);
    assert_true(sent >= 1500);
    assert_int_equal(refused, 1);
    assert_true(summaries >= 1);
    assert_true(lines <= 12);
    /* The summary counts what it held back. */
    assert_true(fed_file_has(f->coord.err, "suppressed in the last"));
    c->ok = 1;
}

/* Heartbeat answers only tell a client that the coordinator is there, so the coordinator skips
 * them when it sent that client something within the last half second (the rule in
 * coordinator/coord.c, which took most heartbeat traffic out of 1,000-client secure rounds): a
 * heartbeat right after the Welcome gets no answer, one after a second of quiet gets its own seq
 * back. */
static void test_heartbeat_answers(void **state) {
    ctx *c = *state;
    uint8_t run_id[FEDC_RUN_ID_BYTES];
    join_idle(c, "quiet", run_id);
    double t0 = fedc_clock_s();
    send_heartbeat_seq(c->rogue, run_id, 7);
    double lag = fedc_clock_s() - t0;
    zmq_pollitem_t it = {c->rogue, 0, ZMQ_POLLIN, 0};
    int n = zmq_poll(&it, 1, 300);
    assert_true(n >= 0);
    print_message("heartbeat %.0f ms after the Welcome: %s\n", 1e3 * lag,
                  n ? "answered" : "not answered");
    /* The Welcome was sent at most `lag` before our heartbeat left. */
    assert_true(lag < 0.2);
    assert_int_equal(n, 0);
    nanosleep(&(struct timespec){1, 0}, NULL);
    send_heartbeat_seq(c->rogue, run_id, 8);
    Fedc__Envelope *h = recv_body(c, c->rogue, FEDC__ENVELOPE__BODY_HEARTBEAT);
    assert_int_equal(h->heartbeat->seq, 8);
    fedc__envelope__free_unpacked(h, NULL);
    c->ok = 1;
}

/* ---- the message size cap ----------------------------------------------------------------------
 */

/* --max-msg-mb bounds one message, not the model (protocol 3): a coordinator whose cap is below the
 * model's size (24 features -> 8192 -> 8 -> 1: 270,353 parameters, 1,081,412 bytes > 1 MiB) runs,
 * its weights and updates travelling in chunks; a client whose own cap is too small for the
 * coordinator's instructions (weights sent whole under the coordinator's default cap) says so and
 * exits 2, naming both numbers. */
static void test_max_msg_too_small(void **state) {
    ctx *c = *state;
    fed *f = &c->f;
    assert_int_equal(fed_write_shards(f, 1, "shard"), 0);
    const char *args[] = {"--min-clients",  "1", "--layers", "8192,8",
                          "--max-msg-mb",   "1", "--rounds", "1",
                          "--local-epochs", "1", NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    char *csv = fed_path(f, "shard0.csv");
    assert_true(fed_start_client(f, "bank-a", csv, NULL, NULL) >= 0);
    assert_int_equal(fed_wait(&f->coord, 60), 0);
    assert_int_equal(f->coord.res.status, 0);
    assert_true(fed_file_has(f->coord.err, "model of 270353 parameters: weights travel in chunks "
                                           "of 261888 values (--max-msg-mb)"));
    assert_false(fed_file_has(f->coord.err, "refused"));
    assert_int_equal(fed_wait(&f->cl[0], 20), 0);
    assert_int_equal(f->cl[0].res.status, 0);

    /* The coordinator's cap is ample (the default), the client's is not. */
    const char *args2[] = {"--min-clients",  "1",  "--layers", "8192,8",
                           "--wait-timeout", "30", NULL};
    assert_int_equal(fed_start_coord(f, NULL, args2, 0, START_TIMEOUT), 0);
    const char *cargs[] = {"--max-msg-mb", "1", NULL};
    int k = fed_start_client(f, "bank-b", csv, NULL, cargs);
    assert_true(k >= 0);
    assert_int_equal(fed_wait(&f->cl[k], 30), 0);
    assert_int_equal(f->cl[k].res.status, 2);
    assert_true(fed_file_has(f->cl[k].err, "--max-msg-mb 1 (1048576 bytes) is below the "
                                           "coordinator's instructions for this model"));
    free(csv);
    c->ok = 1;
}

/* A coordinator (played by a ROUTER in this process) that accepts messages of at most 1000 bytes,
 * as its Welcome says: below even the smallest chunk of an update (16 values and the envelope
 * margin, 1088 bytes), so the client exits 2 naming both sizes, instead of sending updates that
 * ZeroMQ would drop with its connection. */
static void test_client_checks_coordinator_cap(void **state) {
    ctx *c = *state;
    fed *f = &c->f;
    assert_int_equal(fed_write_shards(f, 1, "shard"), 0);
    void *r = c->rogue = zmq_socket(c->zctx, ZMQ_ROUTER);
    assert_non_null(r);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(r, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_bind(r, f->endpoint), 0);
    char *csv = fed_path(f, "shard0.csv");
    int k = fed_start_client(f, "bank-a", csv, NULL, NULL);
    assert_true(k >= 0);
    free(csv);
    /* The client's Join: [routing id][envelope]. */
    zmq_pollitem_t it = {r, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&it, 1, REPLY_TIMEOUT_MS), 1);
    uint8_t id[256], env[4096];
    int idn = zmq_recv(r, id, sizeof id, 0);
    assert_true(idn > 0);
    int en = zmq_recv(r, env, sizeof env, 0);
    assert_true(en > 0 && en < (int)sizeof env);
    Fedc__Envelope *j = fedc__envelope__unpack(NULL, (size_t)en, env);
    assert_non_null(j);
    assert_int_equal(j->body_case, FEDC__ENVELOPE__BODY_JOIN);

    Fedc__Envelope e;
    Fedc__Welcome w = FEDC__WELCOME__INIT;
    Fedc__HyperParams hp = FEDC__HYPER_PARAMS__INIT;
    uint32_t sizes[3] = {24, 8, 1};
    uint8_t run_id[FEDC_RUN_ID_BYTES];
    memset(run_id, 7, sizeof run_id);
    fedc__envelope__init(&e);
    e.version = FEDC_PROTOCOL_VERSION;
    e.run_id.data = run_id;
    e.run_id.len = FEDC_RUN_ID_BYTES;
    hp.local_epochs = 1;
    hp.batch = 32;
    hp.lr = 0.01f;
    hp.val_fraction = 0.2f;
    w.schema = j->join->schema; /* the client's own schema */
    w.n_layer_sizes = 3;
    w.layer_sizes = sizes;
    w.hp = &hp;
    w.rounds = 1;
    w.seed = 1;
    w.max_msg_bytes = 1000;
    e.body_case = FEDC__ENVELOPE__BODY_WELCOME;
    e.welcome = &w;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fedc_msg_pack(&buf, &len, &e), FEDC_OK);
    assert_true(zmq_send(r, id, (size_t)idn, ZMQ_SNDMORE) == idn);
    assert_true(zmq_send(r, buf, len, 0) == (int)len);
    free(buf);
    fedc__envelope__free_unpacked(j, NULL);

    assert_int_equal(fed_wait(&f->cl[k], 20), 0);
    if (f->cl[k].res.status != 2)
        print_message("client: status %d\n", f->cl[k].res.status);
    assert_int_equal(f->cl[k].res.status, 2);
    assert_true(fed_file_has(f->cl[k].err, "the coordinator accepts messages of at most 1000 "
                                           "bytes (its --max-msg-mb), but our update for this "
                                           "model takes up to"));
    c->ok = 1;
}

/* The client acts on the code of a Bye or an Error, never on its text (played by a ROUTER in this
 * process): a Bye whose text says "run complete" but whose code says the run failed ends the
 * client with 1, and so on; an Error of kind join-again makes it join again whatever its text,
 * while the not-joined text alone does not. */
static void *rogue_wait_join(ctx *c, uint8_t *id, int *idn, int timeout_ms) {
    zmq_pollitem_t it = {c->rogue, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) != 1)
        return NULL;
    uint8_t env[4096];
    *idn = zmq_recv(c->rogue, id, 256, 0);
    int en = zmq_recv(c->rogue, env, sizeof env, 0);
    if (*idn <= 0 || en <= 0 || en >= (int)sizeof env)
        return NULL;
    Fedc__Envelope *j = fedc__envelope__unpack(NULL, (size_t)en, env);
    if (j && j->body_case != FEDC__ENVELOPE__BODY_JOIN) {
        fedc__envelope__free_unpacked(j, NULL);
        return NULL;
    }
    return j;
}

static void rogue_send(ctx *c, const uint8_t *id, int idn, Fedc__Envelope *e) {
    uint8_t *buf = NULL;
    size_t len = 0;
    e->version = FEDC_PROTOCOL_VERSION;
    assert_int_equal(fedc_msg_pack(&buf, &len, e), FEDC_OK);
    assert_true(zmq_send(c->rogue, id, (size_t)idn, ZMQ_SNDMORE) == idn);
    assert_true(zmq_send(c->rogue, buf, len, 0) == (int)len);
    free(buf);
}

static void test_client_acts_on_codes(void **state) {
    ctx *c = *state;
    fed *f = &c->f;
    assert_int_equal(fed_write_shards(f, 1, "shard"), 0);
    void *r = c->rogue = zmq_socket(c->zctx, ZMQ_ROUTER);
    assert_non_null(r);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(r, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_bind(r, f->endpoint), 0);
    char *csv = fed_path(f, "shard0.csv");
    const struct {
        uint32_t code;
        const char *text;
        int status;
    } byes[] = {{FEDC_BYE_FAILED, "run complete", 1},
                {FEDC_BYE_COMPLETE, "run failed: nothing of the sort", 0},
                {FEDC_BYE_REFUSED, "run complete", 2}};
    uint8_t id[256];
    int idn = 0;
    for (size_t b = 0; b < sizeof byes / sizeof byes[0]; b++) {
        int k = fed_start_client(f, "bank-a", csv, NULL, NULL);
        assert_true(k >= 0);
        Fedc__Envelope *j = rogue_wait_join(c, id, &idn, REPLY_TIMEOUT_MS);
        assert_non_null(j);
        fedc__envelope__free_unpacked(j, NULL);
        Fedc__Envelope e;
        Fedc__Bye bye = FEDC__BYE__INIT;
        fedc__envelope__init(&e);
        bye.code = byes[b].code;
        bye.reason = (char *)byes[b].text;
        e.body_case = FEDC__ENVELOPE__BODY_BYE;
        e.bye = &bye;
        rogue_send(c, id, idn, &e);
        assert_int_equal(fed_wait(&f->cl[k], 20), 0);
        if (f->cl[k].res.status != byes[b].status)
            print_message("bye code %u ('%s'): status %d, expected %d\n", byes[b].code,
                          byes[b].text, f->cl[k].res.status, byes[b].status);
        assert_int_equal(f->cl[k].res.status, byes[b].status);
    }
    /* Errors: the not-joined text with no kind is only logged; the join-again kind with any text
     * brings a second Join. */
    int k = fed_start_client(f, "bank-a", csv, NULL, NULL);
    assert_true(k >= 0);
    Fedc__Envelope *j = rogue_wait_join(c, id, &idn, REPLY_TIMEOUT_MS);
    assert_non_null(j);
    fedc__envelope__free_unpacked(j, NULL);
    Fedc__Envelope e;
    Fedc__Error er = FEDC__ERROR__INIT;
    fedc__envelope__init(&e);
    er.code = 2;
    er.reason = FEDC_WIRE_NOT_JOINED;
    e.body_case = FEDC__ENVELOPE__BODY_ERROR;
    e.error = &er;
    rogue_send(c, id, idn, &e);
    j = rogue_wait_join(c, id, &idn, 1000);
    assert_null(j); /* no Join for text alone (the client re-sends a Join only after 2 s) */
    er.reason = "something else entirely";
    er.kind = FEDC_ERROR_JOIN_AGAIN;
    rogue_send(c, id, idn, &e);
    j = rogue_wait_join(c, id, &idn, 1500);
    assert_non_null(j);
    fedc__envelope__free_unpacked(j, NULL);
    free(csv);
    c->ok = 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s FEDC_COORDINATOR FEDC_CLIENT [TEST-NAME-PATTERN]\n", argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    if (argc > 3) /* run only the tests whose names match, e.g. test_join_flood */
        cmocka_set_test_filter(argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_msg_too_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_checks_coordinator_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_acts_on_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_flood, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
