/* A model of the clients' own larger than FEDC_INLINE_MAX_BYTES: each Join only announces its
 * initial values, and the coordinator pulls them (stream INIT) from the one client whose values it
 * takes (coordinator/stream.c, stream_init_next). argv[1] fedc-coordinator, argv[2] fedc-client.
 *
 * The real coordinator (a process, --model external, --max-msg-mb 1: the values travel in two
 * chunks) against library clients in this process, each offering values of its own. bank-a joins
 * first and its values hold a NaN in the second chunk: the coordinator refuses that chunk, after
 * it copied the first one, and must then pull bank-b's values whole. bank-c joins last and its
 * values are never asked for. Round 1's training must start from bank-b's values exactly, at
 * every client trained. */
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

#include "fed.h"
#include "fed_expect.h"
#include "fed_model.h"
#include "fedc/client.h"
#include "fedc/client_model.h"

#define RUN_TIMEOUT 120
#define START_TIMEOUT 15
/* Over FEDC_INLINE_MAX_BYTES (16,384 values), and two chunks under --max-msg-mb 1. */
#define P 300000
#define NC 3

static const char *g_coord, *g_client;

typedef fed_pair tctx;

static int setup(void **state) {
    return fed_pair_setup(state, "fedc-test-join-init-", g_coord, g_client);
}

static int teardown(void **state) {
    return fed_pair_teardown(state);
}

typedef struct fake {
    int k;
    pthread_mutex_t *mu;
    float *global1; /* the weights of its round-1 training, or NULL */
} fake;

/* Client k's initial value i: different for every client and every index. */
static float init_value(int k, size_t i) {
    return (float)k + 0.001f * (float)((i * 37u) % 1001u) - 0.5f;
}

static fedc_err fk_describe(void *ctx, fedc_model_desc *out, fedc_diag *d) {
    (void)ctx, (void)d;
    fed_model_describe(out, "test-join-init-v1", P);
    return FEDC_OK;
}

static fedc_err fk_begin(void *ctx, const fedc_model_run *run, fedc_model_rows *rows,
                         fedc_diag *d) {
    (void)ctx, (void)run, (void)d;
    fed_model_rows(rows, 100);
    return FEDC_OK;
}

static fedc_err fk_stats(void *ctx, double *sum, double *sum_sq, uint64_t *class_count,
                         uint64_t *rows, fedc_diag *d) {
    (void)ctx, (void)d;
    fed_model_stats(sum, sum_sq, class_count, rows, 100);
    return FEDC_OK;
}

static fedc_err fk_init(void *ctx, float *params, size_t n, fedc_diag *d) {
    (void)d;
    const fake *m = ctx;
    for (size_t i = 0; i < n; i++)
        params[i] = init_value(m->k, i);
    if (m->k == 0)
        params[n - 1] = NAN; /* in the second chunk: refused after the first was copied */
    return FEDC_OK;
}

static fedc_err fk_fit(void *ctx, const float *global, float *local, size_t n,
                       const fedc_model_fit *hp, fedc_model_fit_out *out, fedc_diag *d) {
    (void)d;
    fake *m = ctx;
    pthread_mutex_lock(m->mu);
    if (hp->round == 1 && !m->global1 && (m->global1 = malloc(4 * n)))
        memcpy(m->global1, global, 4 * n);
    pthread_mutex_unlock(m->mu);
    memcpy(local, global, 4 * n);
    out->loss = 0.5;
    return FEDC_OK;
}

static fedc_err fk_evaluate(void *ctx, const float *w, size_t n, float threshold,
                            fedc_eval_acc *acc, fedc_diag *d) {
    (void)ctx, (void)w, (void)n, (void)d;
    static const float p[4] = {0.2f, 0.7f, 0.4f, 0.9f}, y[4] = {0, 1, 0, 1};
    fedc_eval_acc_add(acc, p, y, 4, threshold);
    return FEDC_OK;
}

static void *client_thread(void *arg) {
    return (void *)(intptr_t)fedc_client_run(arg);
}

static void test_init_pulled_from_one(void **state) {
    tctx *c = *state;
    fed *f = &c->f[0];
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    char sn[8];
    snprintf(sn, sizeof sn, "%d", NC);
    const char *args[] = {"--model",
                          "external",
                          "--secagg",
                          "off",
                          "--min-clients",
                          sn,
                          "--rounds",
                          "1",
                          "--max-msg-mb",
                          "1",
                          "--round-timeout",
                          "60",
                          "--wait-timeout",
                          "60",
                          "--heartbeat-timeout",
                          "30",
                          NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    fake m[NC];
    fedc_client_model model[NC];
    client_cfg cfg[NC];
    fedc_client *cl[NC] = {0};
    pthread_t th[NC];
    char names[NC][16];
    /* The step each client waits for before it starts: bank-a's values refused, then bank-b's
     * taken (so that bank-c's are offered while none are wanted any more). */
    const char *after[NC] = {NULL, "its initial values were lost after",
                             "the model's initial values are those of bank-b"};
    for (int k = 0; k < NC; k++) {
        if (after[k])
            assert_int_equal(fed_wait_text(f->coord.err, after[k], 0, f->coord.pid, 30), 0);
        m[k] = (fake){k, &mu, NULL};
        model[k] = (fedc_client_model){.ctx = &m[k],
                                       .describe = fk_describe,
                                       .begin = fk_begin,
                                       .init = fk_init,
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
        cfg[k].allow_plain = 1;
        fedc_diag d;
        assert_int_equal(fedc_client_new(&cl[k], &cfg[k], &d), FEDC_OK);
        assert_int_equal(pthread_create(&th[k], NULL, client_thread, cl[k]), 0);
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, 0);
    for (int k = 0; k < NC; k++) {
        void *ret;
        pthread_join(th[k], &ret);
        fedc_client_destroy(&cl[k]);
    }
    assert_true(
        fed_file_has(f->coord.err, "pulling the model's 300000 initial values from bank-a"));
    assert_true(fed_file_has(f->coord.err, "initial value 299999 is not finite"));
    assert_true(
        fed_file_has(f->coord.err, "pulling the model's 300000 initial values from bank-b"));
    assert_false(fed_file_has(f->coord.err, "initial values from bank-c"));
    /* Every client trained round 1 from bank-b's values, bit for bit (bank-c's differ by 1 and
     * bank-a's first chunk, copied before its refusal, by -1). */
    int trained = 0;
    for (int k = 0; k < NC; k++) {
        if (!m[k].global1)
            continue;
        trained++;
        size_t bad = 0;
        for (size_t i = 0; i < P; i++)
            bad += m[k].global1[i] != init_value(1, i);
        print_message("bank-%c: round 1 started from values differing from bank-b's at %zu of %d\n",
                      'a' + k, bad, P);
        assert_int_equal(bad, 0);
        free(m[k].global1);
    }
    assert_int_equal(trained, NC);
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
        cmocka_unit_test_setup_teardown(test_init_pulled_from_one, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
