/* --mode async with a model whose updates stream (above FEDC_INLINE_MAX_BYTES: 16,384 parameters;
 * coordinator/async.c pulls them chunk by chunk into the buffer, stream.c).
 * argv[1] fedc-coordinator, argv[2] fedc-client.
 *
 * - plain and secure: the real coordinator (a process, --model external, 100,000 parameters: each
 *   update or masked input is pulled in a chunk) against library clients in this process
 *   (fedc/client.h) whose model's fit writes global + a fixed delta of its own. The test decides
 *   when each training answers, so it knows which updates fill each buffer and how stale each is;
 *   the model after two server steps must be v0 + mean_1 + mean_2 with
 *   mean = sum_k n_k s(tau_k) delta_k / sum_k n_k, s(tau) = 1 / sqrt(1 + tau), computed here
 *   (exactly up to the accumulator's rounding when plain, within the quantiser's bound when
 * secure).
 * - a client killed mid-stream (fedc-client processes, its first chunk of round 1 delivered, then
 *   killed): the partial chunk spoils the buffer, which is dropped whole and filled again; the run
 *   completes its steps with K updates each and its model is finite. The killed client's update is
 *   100x too large, so any part of it left in a step's sum would break the step's norm check.
 *   There the model (288,257 parameters, --max-msg-mb 1) travels in two chunks each way, so the
 *   training requests' weights are pulled too. Secure: a member killed after the first chunk of
 *   its masked input spoils the session, which fails before any unmasking; the step's next
 *   attempt completes among the others. (fedc-client processes train fedc's MLP: the scripted
 *   runs' own model lives in this process.) */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fed.h"
#include "fed_expect.h"
#include "fed_model.h"
#include "fedc/client.h"
#include "fedc/client_model.h"
#include "fedc/model.h"
#include "fedc/modelfile.h"

#define RUN_TIMEOUT 120
#define START_TIMEOUT 15
/* Above FEDC_INLINE_MAX_BYTES (16,384 values): the updates stream. */
#define P 100000
#define MAXC 4

static const char *g_coord, *g_client;

typedef fed_pair tctx;

static int setup(void **state) {
    return fed_pair_setup(state, "fedc-test-async-big-", g_coord, g_client);
}

static int teardown(void **state) {
    return fed_pair_teardown(state);
}

/* ---- the scripted model ----------------------------------------------------------------------
 * Clients 0..n-1; the last one (the "late" client) holds its first training (round 1) until some
 * other client is asked to train on the model after step 1 (round 2): its update then enters the
 * second buffer with staleness 1. Every other client answers its first request of round 1 at once
 * and any later request of round 1 never (it waits until the test ends); of round 2, the first
 * `fresh2` requests of the other clients answer at once, later ones never. So (plain, K = 2, 3
 * clients) buffer 1 is {0, 1} and buffer 2 is {X, 2} with X the first client sent round 2; and
 * (secure, K = 3, 4 clients) buffer 1 is {0, 1, 2} and buffer 2 is {X, Y, 3}. */

typedef struct script {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n, fresh2, round2_seen, released;
    int first_done[MAXC]; /* answered its round-1 request */
    int fresh[MAXC];      /* answered a round-2 request at once */
    float *v0;            /* the global weights of the first training request */
    float *last_eval[MAXC];
    int evals[MAXC];
} script;

typedef struct fake {
    script *s;
    int k;
    uint64_t rows;
} fake;

/* Client k's delta: within +-0.01 per value (norm under 5.5, well inside the bound of 16). */
static float delta(int k, size_t i) {
    return 0.002f * (float)((int)((i * (size_t)(2 * k + 3) + (size_t)k) % 11) - 5);
}

static fedc_err fk_describe(void *ctx, fedc_model_desc *out, fedc_diag *d) {
    (void)ctx, (void)d;
    fed_model_describe(out, "test-async-big-v1", P);
    return FEDC_OK;
}

static fedc_err fk_begin(void *ctx, const fedc_model_run *run, fedc_model_rows *rows,
                         fedc_diag *d) {
    (void)run, (void)d;
    fed_model_rows(rows, ((const fake *)ctx)->rows);
    return FEDC_OK;
}

static fedc_err fk_stats(void *ctx, double *sum, double *sum_sq, uint64_t *class_count,
                         uint64_t *rows, fedc_diag *d) {
    (void)d;
    fed_model_stats(sum, sum_sq, class_count, rows, ((const fake *)ctx)->rows);
    return FEDC_OK;
}

/* Waits (the mutex held) until cond or the test's end; 0 when cond came true. */
#define WAIT_UNTIL(s, cond)                                                                        \
    do {                                                                                           \
        while (!(cond) && !(s)->released)                                                          \
            pthread_cond_wait(&(s)->cv, &(s)->mu);                                                 \
    } while (0)

static fedc_err fk_fit(void *ctx, const float *global, float *local, size_t n,
                       const fedc_model_fit *hp, fedc_model_fit_out *out, fedc_diag *d) {
    fake *m = ctx;
    script *s = m->s;
    const int late = m->k == s->n - 1;
    int answer = 0;
    pthread_mutex_lock(&s->mu);
    if (!s->v0 && hp->round == 1 && (s->v0 = malloc(4 * n)))
        memcpy(s->v0, global, 4 * n);
    if (hp->round == 1 && late) {
        WAIT_UNTIL(s, s->round2_seen);
        answer = !s->released;
    } else if (hp->round == 1 && !s->first_done[m->k]) {
        s->first_done[m->k] = 1;
        answer = 1;
    } else if (hp->round == 2 && !late && s->round2_seen < s->fresh2) {
        s->round2_seen++;
        s->fresh[m->k] = 1;
        pthread_cond_broadcast(&s->cv);
        answer = 1;
    } else {
        WAIT_UNTIL(s, 0);
    }
    pthread_mutex_unlock(&s->mu);
    if (!answer) {
        fedc_diag_set(d, "the test is over");
        return FEDC_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        local[i] = global[i] + delta(m->k, i);
    out->loss = 0.5;
    return FEDC_OK;
}

static fedc_err fk_evaluate(void *ctx, const float *w, size_t n, float threshold,
                            fedc_eval_acc *acc, fedc_diag *d) {
    (void)d;
    fake *m = ctx;
    script *s = m->s;
    pthread_mutex_lock(&s->mu);
    if (!s->last_eval[m->k])
        s->last_eval[m->k] = malloc(4 * n);
    if (s->last_eval[m->k]) {
        memcpy(s->last_eval[m->k], w, 4 * n);
        s->evals[m->k]++;
    }
    pthread_mutex_unlock(&s->mu);
    static const float p[4] = {0.2f, 0.7f, 0.4f, 0.9f}, y[4] = {0, 1, 0, 1};
    fedc_eval_acc_add(acc, p, y, 4, threshold);
    return FEDC_OK;
}

static void *client_thread(void *arg) {
    return (void *)(intptr_t)fedc_client_run(arg);
}

/* One federation: n library clients (rows 100, 200, ...), buffers of K, two steps; secure or
 * plain. Checks the model after step 2 against the weighted means computed here. */
static void scripted_run(fed *f, int secure) {
    const int n = secure ? 4 : 3, K = secure ? 3 : 2;
    script s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    s.n = n;
    s.fresh2 = K - 1;
    char *metrics = fed_fpath(f, "metrics.json");
    char sn[8], sk[8];
    snprintf(sn, sizeof sn, "%d", n);
    snprintf(sk, sizeof sk, "%d", K);
    const char *args[] = {"--mode",
                          "async",
                          "--secagg",
                          secure ? "on" : "off",
                          "--model",
                          "external",
                          "--min-clients",
                          sn,
                          "--buffer",
                          sk,
                          "--rounds",
                          "2",
                          "--max-staleness",
                          "5",
                          "--round-timeout",
                          "60",
                          "--wait-timeout",
                          "60",
                          "--heartbeat-timeout",
                          "30",
                          "--metrics-json",
                          metrics,
                          NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    fake m[MAXC];
    fedc_client_model model[MAXC];
    client_cfg cfg[MAXC];
    fedc_client *cl[MAXC] = {0};
    pthread_t th[MAXC];
    char names[MAXC][16];
    for (int k = 0; k < n; k++) {
        m[k] = (fake){&s, k, 100 * (uint64_t)(k + 1)};
        model[k] = (fedc_client_model){.ctx = &m[k],
                                       .describe = fk_describe,
                                       .begin = fk_begin,
                                       .stats = fk_stats,
                                       .fit = fk_fit,
                                       .evaluate = fk_evaluate};
        snprintf(names[k], sizeof names[k], "bank-%c", 'a' + k);
        fedc_client_defaults(&cfg[k]);
        cfg[k].connect = f->endpoint;
        cfg[k].name = names[k];
        cfg[k].model = &model[k];
        cfg[k].threads = 1;
        cfg[k].quiet = 1;
        cfg[k].log.level = FEDC_LOG_ERROR;
        cfg[k].allow_plain = !secure;
        fedc_diag d;
        assert_int_equal(fedc_client_new(&cl[k], &cfg[k], &d), FEDC_OK);
        assert_int_equal(pthread_create(&th[k], NULL, client_thread, cl[k]), 0);
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    /* The trainings still waiting give up; the clients saw the run end. */
    pthread_mutex_lock(&s.mu);
    s.released = 1;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    for (int k = 0; k < n; k++) {
        void *ret;
        pthread_join(th[k], &ret);
        fedc_client_destroy(&cl[k]);
    }
    /* The updates streamed, and each step took exactly K of them. */
    assert_true(fed_file_has(f->coord.err, "model of 100000 parameters: weights travel whole, "
                                           "updates over 65536 bytes are pulled"));
    assert_false(fed_file_has(f->coord.err, "takes models whose update travels whole"));
    fed_round r[4];
    assert_int_equal(fed_read_metrics(metrics, r, 4), 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(r[i].participants, K);
    assert_true(fed_metric_at(metrics, 0, "staleness_max") == 0.0);
    assert_true(fed_metric_at(metrics, 1, "staleness_max") == 1.0);
    /* Buffer 1: clients 0..K-1, fresh. Buffer 2: the K-1 sent round 2 first, fresh, and the late
     * client, one step stale. */
    int in2[MAXC] = {0}, n2 = 0;
    for (int k = 0; k < n - 1; k++)
        if (s.fresh[k])
            in2[k] = 1, n2++;
    in2[n - 1] = 1;
    assert_int_equal(n2, K - 1);
    assert_non_null(s.v0);
    for (int k = 0; k < n; k++) {
        assert_true(s.evals[k] >= 1);
        assert_non_null(s.last_eval[k]);
    }
    const double s1 = 1.0 / sqrt(2.0);
    double w1 = 0, w2 = 0;
    for (int k = 0; k < K; k++)
        w1 += (double)m[k].rows;
    for (int k = 0; k < n; k++)
        if (in2[k])
            w2 += (double)m[k].rows;
    /* Plain: the accumulator's rounding (2^-25 per value) and float sums. Secure: at most one
     * quantiser step (range 10 over 2^21 - 1 levels) per member and value, on sums of FedAvg
     * weights rows / total of at least 0.6, in each of two steps. */
    double total = 0;
    for (int k = 0; k < n; k++)
        total += (double)m[k].rows;
    double qstep = 10.0 / (double)((1 << 21) - 1);
    double bound = secure ? 2.0 * K * qstep / (w1 / total) + 1e-6 : 1e-6;
    double worst = 0, worst_unscaled = 0;
    const float *got = s.last_eval[0];
    for (size_t i = 0; i < P; i++) {
        double m1 = 0, m2 = 0, m2u = 0;
        for (int k = 0; k < K; k++)
            m1 += (double)m[k].rows * (double)delta(k, i);
        for (int k = 0; k < n; k++)
            if (in2[k]) {
                double t = (double)m[k].rows * (double)delta(k, i);
                m2 += k == n - 1 ? s1 * t : t;
                m2u += t;
            }
        double want = (double)s.v0[i] + m1 / w1 + m2 / w2;
        double e = fabs((double)got[i] - want);
        worst = e > worst ? e : worst;
        double eu = fabs((double)got[i] - ((double)s.v0[i] + m1 / w1 + m2u / w2));
        worst_unscaled = eu > worst_unscaled ? eu : worst_unscaled;
        for (int k = 1; k < n; k++)
            assert_true(s.last_eval[k][i] == got[i]); /* every client scored the same model */
    }
    print_message("%s: model after 2 steps vs the weighted means: largest difference %.3g (bound "
                  "%.3g); without the staleness weight it would be %.3g\n",
                  secure ? "secure" : "plain", worst, bound, worst_unscaled);
    assert_true(worst <= bound);
    /* the check tells a missing staleness weight apart */
    assert_true(worst_unscaled > 10 * bound);
    free(s.v0);
    for (int k = 0; k < n; k++)
        free(s.last_eval[k]);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    free(metrics);
}

static void test_plain_streamed(void **state) {
    tctx *c = *state;
    scripted_run(&c->f[0], 0);
    c->ok = 1;
}

static void test_secure_streamed(void **state) {
    tctx *c = *state;
    scripted_run(&c->f[0], 1);
    c->ok = 1;
}

/* ---- a client killed mid-stream (processes) -------------------------------------------------- */

/* 4 clients, buffers of 3, 288,257 parameters in two chunks each way; bank-d dies after the first
 * chunk of its update (plain) or masked input (secure) of round 1 was delivered. */
static void dies_mid_stream(fed *f, int secure) {
    static const char *names[] = {"bank-a", "bank-b", "bank-c", "bank-d"};
    assert_int_equal(fed_write_shards(f, 4, "shard"), 0);
    char *metrics = fed_fpath(f, "metrics.json"), *model = fed_fpath(f, "model.bin");
    /* 24 -> 1024 -> 256 -> 1: 288,257 parameters, two chunks each way. */
    const char *args[] = {"--mode",
                          "async",
                          "--secagg",
                          secure ? "on" : "off",
                          "--min-clients",
                          "4",
                          "--min-fit-clients",
                          "3",
                          "--buffer",
                          "3",
                          "--rounds",
                          "4",
                          "--layers",
                          "1024,256",
                          "--local-epochs",
                          "1",
                          "--max-msg-mb",
                          "1",
                          "--round-timeout",
                          "60",
                          "--wait-timeout",
                          "60",
                          "--heartbeat-timeout",
                          "2",
                          "--metrics-json",
                          metrics,
                          "--model-out",
                          model,
                          NULL};
    /* Plain: bank-d's update of round 1 is 100x too large. It dies after its first chunk of
     * round 1 (its update, or its masked input in step 1's session) was delivered (the pause lets
     * ZeroMQ's I/O thread send it). */
    /* Secure: the others train 300 ms longer in round 1, so bank-d's announcement is among the
     * oldest three and it is a member of step 1's training session (its evaluation input, one
     * chunk, comes after that). */
    const char *fault =
        secure ? "FEDC_FAULT=bank-a/delay:train@1:300,bank-b/delay:train@1:300,"
                 "bank-c/delay:train@1:300,bank-d/delay:chunk-sent@1:1000,bank-d/kill:chunk-sent@1"
               : "FEDC_FAULT=bank-d/misbehave:upd-scale@1,bank-d/delay:chunk-sent@1:"
                 "1000,bank-d/kill:chunk-sent@1";
    const char *env[] = {fault, NULL};
    assert_int_equal(fed_start_coord(f, env, args, 0, START_TIMEOUT), 0);
    const char *cargs[] = {"--secagg", "off", NULL};
    for (int i = 0; i < 4; i++) {
        char shard[32];
        snprintf(shard, sizeof shard, "shard%d.csv", i);
        char *csv = fed_fpath(f, shard);
        assert_true(fed_start_client(f, names[i], csv, env, secure ? NULL : cargs) >= 0);
        free(csv);
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int i = 0; i < 3; i++)
        fed_expect_exit(&f->cl[i], 15, 0);
    assert_int_equal(fed_wait(&f->cl[3], 15), 0);
    assert_int_not_equal(f->cl[3].res.term_signal, 0);
    if (secure) {
        /* The session's sum was spoilt before any unmasking: it failed, and the next attempt
         * ran among the others, whose updates stayed at their clients. */
        assert_true(fed_file_has(f->coord.err, "masked input was cut off after some of its "
                                               "chunks were added"));
        assert_true(fed_file_has(f->coord.err, "the secure session failed before anything was "
                                               "revealed"));
    } else {
        /* Its first chunk was added, then it vanished: the buffer went whole. */
        assert_true(fed_file_has(f->coord.err, "bank-d vanished or failed after 261888 of its"));
        assert_true(fed_file_has(f->coord.err, "update(s) are dropped (no partial contribution"));
        /* No step saw any of it: its 100x values would break the step's norm check. */
        assert_false(fed_file_has(f->coord.err, "no usable aggregate"));
        assert_false(fed_file_has(f->coord.err, "exceeds"));
    }
    fed_round r[8];
    int nr = fed_read_metrics(metrics, r, 8);
    assert_int_equal(nr, 4);
    for (int i = 0; i < nr; i++) {
        assert_int_equal(r[i].participants, 3);
        assert_int_equal(r[i].abandoned, 0);
        assert_true(isfinite(r[i].train_loss));
    }
    fedc_model *m = NULL;
    fedc_diag d;
    assert_int_equal(fedc_model_load(&m, model, &d), FEDC_OK);
    assert_int_equal(m->n_params, 288257);
    for (size_t i = 0; i < m->n_params; i++)
        assert_true(isfinite(m->params[i]));
    fedc_model_destroy(&m);
    free(metrics);
    free(model);
}

static void test_dies_mid_stream(void **state) {
    tctx *c = *state;
    dies_mid_stream(&c->f[0], 0);
    c->ok = 1;
}

static void test_secure_dies_mid_stream(void **state) {
    tctx *c = *state;
    dies_mid_stream(&c->f[0], 1);
    c->ok = 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s fedc-coordinator fedc-client\n", argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_streamed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secure_streamed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dies_mid_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secure_dies_mid_stream, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
