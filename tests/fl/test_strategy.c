/* The strategy interface (fedc/strategy.h): the weighting rule; every built-in rule and server
 * optimiser through the interface gives bit for bit what robust.c and server.c give when called
 * directly; a strategy of the test's own, run by an in-process coordinator with three client
 * threads (secure aggregation off), has its callbacks called in order with the right arguments
 * and its choices obeyed; a strategy that needs individual updates is refused with secure
 * aggregation on, and one with its own select under client-level DP. */
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

#include "client_args.h"
#include "coord_args.h"
#include "fed.h"
#include "fedc/client.h"
#include "fedc/coord.h"
#include "fedc/rng.h"
#include "fedc/strategy.h"

#define P 37
#define N 7

/* Deterministic pseudo-random updates in [-1, 1), a few with a large norm. */
static void fill(float u[N][P], uint64_t seed) {
    for (int k = 0; k < N; k++)
        for (int i = 0; i < P; i++) {
            double x = (double)(fedc_rng_at(seed, (uint64_t)(k * P + i)) >> 11) * 0x1p-53;
            u[k][i] = (float)(2.0 * x - 1.0) * (k == 3 ? 5.0f : 1.0f);
        }
}

/* ---- the weighting rule -----------------------------------------------------------------------
 */

static void test_weight_rule(void **state) {
    (void)state;
    assert_true(fedc_strategy_weight(30, 120.0, 4, 0) == 0.25);
    assert_true(fedc_strategy_weight(30, 120.0, 4, 1) == 0.25);
    assert_true(fedc_strategy_weight(90, 120.0, 4, 1) == 0.25); /* uniform ignores rows */
    assert_true(fedc_strategy_weight(90, 120.0, 4, 0) == 0.75);
    assert_true(isnan(fedc_strategy_weight(1, 0.0, 4, 0)));
    assert_true(isnan(fedc_strategy_weight(1, 10.0, 0, 1)));
    /* A client's weight in the secure sum (client_train.c): its share of round 0's rows, the
     * same double as rows / total, or 1 when uniform, without a total too. */
    assert_true(fedc_strategy_weight(37, 1234.0, 1, 0) == 37.0 / 1234.0);
    assert_true(fedc_strategy_weight(37, 1234.0, 1, 1) == 1.0);
    assert_true(fedc_strategy_weight(37, 0.0, 1, 1) == 1.0);
    assert_int_equal(fedc_strategy_weight_units(17, 0), 17);
    assert_int_equal(fedc_strategy_weight_units(17, 1), 1);
}

/* ---- built-in rules against robust.c ------------------------------------------------------ */

static void check_rule(fedc_robust_cfg a, int needs, int uniform, double clip, int coordwise) {
    float u[N][P], got[P], want[P];
    const float *pu[N];
    double w[N];
    fill(u, 100 + (uint64_t)a.kind);
    for (int k = 0; k < N; k++) {
        pu[k] = u[k];
        w[k] = 1.0 / N;
    }
    fedc_strategy s;
    fedc_diag d;
    fedc_server_cfg sc = fedc_server_defaults(FEDC_SERVER_FEDAVG);
    assert_int_equal(fedc_strategy_fedavg(&s, &a, &sc, &d), FEDC_OK);
    assert_int_equal(s.needs_updates, needs);
    assert_int_equal(s.uniform_weights, uniform);
    assert_true(s.clip_norm == clip);
    assert_int_equal(s.coordinatewise, coordwise);
    assert_null(s.select);
    int cg = -1, cw = -1;
    assert_int_equal(s.aggregate(s.ctx, got, pu, w, N, P, &cg, &d), FEDC_OK);
    assert_int_equal(fedc_robust_aggregate(want, pu, N, P, &a, &cw, &d), FEDC_OK);
    assert_memory_equal(got, want, sizeof got);
    assert_int_equal(cg, cw);
    fedc_strategy_destroy(&s);
    assert_null(s.ctx);
}

static void test_builtin_rules_match_robust(void **state) {
    (void)state;
    fedc_robust_cfg a = {FEDC_AGG_MEDIAN, 0, 0, 0, 0};
    check_rule(a, 1, 1, 0, 1);
    a = (fedc_robust_cfg){FEDC_AGG_TRIMMED_MEAN, 0.2, 0, 0, 0};
    check_rule(a, 1, 1, 0, 1);
    a = (fedc_robust_cfg){FEDC_AGG_KRUM, 0, 2, 0, 0};
    check_rule(a, 1, 1, 0, 0);
    a = (fedc_robust_cfg){FEDC_AGG_MULTI_KRUM, 0, 1, 3, 0};
    check_rule(a, 1, 1, 0, 0);
    a = (fedc_robust_cfg){FEDC_AGG_NORM_BOUND, 0, 0, 0, 0.75};
    check_rule(a, 0, 1, 0.75, 0);
}

/* The mean is FedAvg's weighted mean: against the sum written out here, in double. */
static void test_builtin_mean_is_weighted(void **state) {
    (void)state;
    float u[N][P], got[P];
    const float *pu[N];
    double w[N], tot = 0;
    uint64_t rows[N] = {10, 250, 3, 40, 40, 7, 1000};
    fill(u, 5);
    for (int k = 0; k < N; k++) {
        pu[k] = u[k];
        tot += (double)rows[k];
    }
    for (int k = 0; k < N; k++)
        w[k] = fedc_strategy_weight(rows[k], tot, N, 0);
    fedc_robust_cfg a = {FEDC_AGG_MEAN, 0, 0, 0, 0};
    fedc_server_cfg sc = fedc_server_defaults(FEDC_SERVER_FEDAVG);
    fedc_strategy s;
    fedc_diag d;
    assert_int_equal(fedc_strategy_fedavg(&s, &a, &sc, &d), FEDC_OK);
    assert_int_equal(s.needs_updates, 0);
    assert_int_equal(s.uniform_weights, 0);
    int chosen = -1;
    assert_int_equal(s.aggregate(s.ctx, got, pu, w, N, P, &chosen, &d), FEDC_OK);
    assert_int_equal(chosen, -1);
    for (int i = 0; i < P; i++) {
        double e = 0;
        for (int k = 0; k < N; k++)
            e += (double)rows[k] * u[k][i];
        e /= tot;
        assert_float_equal(got[i], e, 1e-6);
    }
    fedc_strategy_destroy(&s);
}

static void test_builtin_refuses_bad_settings(void **state) {
    (void)state;
    fedc_server_cfg sc = fedc_server_defaults(FEDC_SERVER_FEDAVG);
    fedc_strategy s;
    fedc_diag d;
    fedc_robust_cfg a = {FEDC_AGG_TRIMMED_MEAN, 0.5, 0, 0, 0};
    assert_int_equal(fedc_strategy_fedavg(&s, &a, &sc, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "[0, 0.5), got 0.5"));
    a = (fedc_robust_cfg){FEDC_AGG_NORM_BOUND, 0, 0, 0, 0};
    assert_int_equal(fedc_strategy_fedavg(&s, &a, &sc, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "norm-bound"));
    a = (fedc_robust_cfg){FEDC_AGG_MEAN, 0, 0, 0, 0};
    sc.lr = -1.0f;
    assert_int_equal(fedc_strategy_fedavg(&s, &a, &sc, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "fedavg"));
    assert_null(s.ctx);
}

/* ---- built-in server optimisers against server.c ----------------------------------------- */

static void test_builtin_server_matches(void **state) {
    (void)state;
    const fedc_server_opt kinds[] = {FEDC_SERVER_FEDAVG, FEDC_SERVER_FEDAVGM, FEDC_SERVER_FEDADAM};
    for (size_t t = 0; t < 3; t++) {
        float u[N][P], w_s[P], w_d[P];
        fill(u, 40 + t);
        for (int i = 0; i < P; i++)
            w_s[i] = w_d[i] = 0.1f * (float)i;
        fedc_server_cfg sc = fedc_server_defaults(kinds[t]);
        sc.lr = 0.5f;
        fedc_robust_cfg a = {FEDC_AGG_MEAN, 0, 0, 0, 0};
        fedc_strategy s;
        fedc_diag d;
        assert_int_equal(fedc_strategy_fedavg(&s, &a, &sc, &d), FEDC_OK);
        assert_null(fedc_strategy_server(&s)); /* before start */
        assert_int_equal(s.start(s.ctx, P, &d), FEDC_OK);
        fedc_server *direct = NULL;
        assert_int_equal(fedc_server_new(&direct, &sc, P), FEDC_OK);
        for (int r = 0; r < 4; r++) {
            assert_int_equal(s.server_step(s.ctx, (uint32_t)r + 1, w_s, u[r], P, &d), FEDC_OK);
            fedc_server_step(direct, w_d, u[r]);
        }
        assert_memory_equal(w_s, w_d, sizeof w_s);
        fedc_server *in = fedc_strategy_server(&s);
        assert_non_null(in);
        assert_int_equal(in->t, 4);
        assert_int_equal(in->cfg.kind, kinds[t]);
        /* The starting point moved: the comparison is not of two no-ops. */
        assert_true(w_s[1] != 0.1f);
        fedc_server_destroy(&direct);
        fedc_strategy_destroy(&s);
    }
}

/* ---- fedc_strategy_check -------------------------------------------------------------------- */

static fedc_err noop_step(void *ctx, uint32_t round, float *w, const float *u, size_t p,
                          fedc_diag *d) {
    (void)ctx, (void)round, (void)w, (void)u, (void)p, (void)d;
    return FEDC_OK;
}

static fedc_err copy_first(void *ctx, float *out, const float *const *u, const double *w, int n,
                           size_t p, int *chosen, fedc_diag *d) {
    (void)ctx, (void)w, (void)n, (void)d;
    memcpy(out, u[0], sizeof(float) * p);
    *chosen = 0;
    return FEDC_OK;
}

static int pick_all(void *ctx, const fedc_select_in *in, int *chosen, fedc_diag *d) {
    (void)ctx, (void)d;
    for (int i = 0; i < in->n; i++)
        chosen[i] = i;
    return in->n;
}

static void test_check(void **state) {
    (void)state;
    fedc_diag d;
    fedc_strategy s = {.name = "mine", .server_step = noop_step};
    assert_int_equal(fedc_strategy_check(&s, 1, 1, &d), FEDC_OK);
    s.needs_updates = 1;
    assert_int_equal(fedc_strategy_check(&s, 0, 0, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "aggregate is NULL"));
    s.aggregate = copy_first;
    assert_int_equal(fedc_strategy_check(&s, 0, 0, &d), FEDC_OK);
    assert_int_equal(fedc_strategy_check(&s, 1, 0, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "strategy mine needs every client's update"));
    assert_non_null(strstr(d.msg, "secure aggregation"));
    s.needs_updates = 0;
    s.select = pick_all;
    assert_int_equal(fedc_strategy_check(&s, 1, 0, &d), FEDC_OK);
    assert_int_equal(fedc_strategy_check(&s, 1, 1, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "Poisson") ? strstr(d.msg, "selects clients itself") : NULL);
    s.select = NULL;
    s.server_step = NULL;
    assert_int_equal(fedc_strategy_check(&s, 0, 0, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "server_step is required"));
}

/* ---- a strategy of the test's own, run by the coordinator --------------------------------- */

#define N_CL 3
#define ROUNDS 2
#define MAX_EV 64

static const char *g_coord, *g_client;

typedef struct ev {
    char what; /* 'S'tart, s'E'lect, 'A'ggregate, step 'W' */
    uint32_t round;
    int n;
    size_t p;
    double wsum;
    char names[N_CL][16];
    uint64_t examples[N_CL];
} ev;

typedef struct rec {
    ev ev[MAX_EV];
    int n_ev;
    size_t p;
    float last_u[4096];
} rec;

static ev *push(rec *r, char what) {
    assert_true(r->n_ev < MAX_EV);
    ev *e = &r->ev[r->n_ev++];
    memset(e, 0, sizeof *e);
    e->what = what;
    return e;
}

static fedc_err rec_start(void *ctx, size_t p, fedc_diag *d) {
    (void)d;
    rec *r = ctx;
    ev *e = push(r, 'S');
    e->p = p;
    r->p = p;
    return FEDC_OK;
}

/* Trains two of the three: the first and the last by name. */
static int rec_select(void *ctx, const fedc_select_in *in, int *chosen, fedc_diag *d) {
    (void)d;
    ev *e = push(ctx, 'E');
    e->round = in->round;
    e->n = in->n;
    for (int i = 0; i < in->n && i < N_CL; i++) {
        snprintf(e->names[i], sizeof e->names[i], "%s", in->clients[i].name);
        e->examples[i] = in->clients[i].examples;
    }
    chosen[0] = in->n - 1;
    chosen[1] = 0;
    return 2;
}

/* The coordinate-wise median of the updates it gets, and records them. */
static fedc_err rec_aggregate(void *ctx, float *out, const float *const *u, const double *w, int n,
                              size_t p, int *chosen, fedc_diag *d) {
    rec *r = ctx;
    ev *e = push(r, 'A');
    e->n = n;
    e->p = p;
    for (int k = 0; k < n; k++)
        e->wsum += w[k];
    if (n >= 1)
        e->examples[0] = (uint64_t)llround(w[0] * 1e6);
    if (n >= 2)
        e->examples[1] = (uint64_t)llround(w[1] * 1e6);
    fedc_robust_cfg a = {FEDC_AGG_MEDIAN, 0, 0, 0, 0};
    fedc_err rc = fedc_robust_aggregate(out, u, n, p, &a, chosen, d);
    if (!rc && p <= 4096)
        memcpy(r->last_u, out, sizeof(float) * p);
    return rc;
}

static fedc_err rec_step(void *ctx, uint32_t round, float *w, const float *u, size_t p,
                         fedc_diag *d) {
    (void)d;
    rec *r = ctx;
    ev *e = push(r, 'W');
    e->round = round;
    e->p = p;
    /* The update the step gets is the one aggregate produced. */
    e->wsum = p <= 4096 && memcmp(u, r->last_u, sizeof(float) * p) == 0 ? 1.0 : 0.0;
    for (size_t i = 0; i < p; i++)
        w[i] += u[i];
    return FEDC_OK;
}

typedef struct job {
    fedc_coord *co;
    fedc_client *cl;
    int rc;
} job;

static void *run_coord(void *arg) {
    job *j = arg;
    j->rc = fedc_coord_run(j->co);
    return NULL;
}

static void *run_client(void *arg) {
    job *j = arg;
    j->rc = fedc_client_run(j->cl);
    return NULL;
}

/* Rows of shard k of the German credit fixture split N_CL ways (fed_write_shards: row i to shard
 * i % N_CL, 1000 rows); a client trains on part of them (the rest validates). */
static uint64_t shard_rows(int k) {
    return (uint64_t)((1000 - k + N_CL - 1) / N_CL);
}

static void test_user_strategy_called_in_order(void **state) {
    (void)state;
    fed f;
    memset(&f, 0, sizeof f);
    assert_int_equal(fed_init(&f, "fedc-test-strategy-", g_coord, g_client), 0);
    assert_int_equal(fed_write_shards(&f, N_CL, "shard"), 0);
    const char *cargv[] = {
        "fedc-coordinator", "--bind", f.endpoint,          "--insecure", "--secagg", "off",
        "--min-clients",    "3",      "--min-fit-clients", "2",          "--rounds", "2",
        "--layers",         "4",      "--wait-timeout",    "60",         "--quiet",  NULL};
    coord_cfg cfg;
    assert_int_equal(fedc_coord_args(&cfg, (int)(sizeof cargv / sizeof *cargv) - 1, (char **)cargv),
                     -1);
    static rec r;
    memset(&r, 0, sizeof r);
    fedc_strategy s = {.name = "recorder",
                       .ctx = &r,
                       .needs_updates = 1,
                       .uniform_weights = 0,
                       .select = rec_select,
                       .aggregate = rec_aggregate,
                       .start = rec_start,
                       .server_step = rec_step};
    cfg.strategy = &s;
    char shard[N_CL][4096], name[N_CL][16];
    static client_args ca[N_CL];
    job cj = {0}, kj[N_CL];
    memset(kj, 0, sizeof kj);
    fedc_diag d;
    assert_int_equal(fedc_coord_new(&cj.co, &cfg, &d), FEDC_OK);
    for (int k = 0; k < N_CL; k++) {
        char file[32];
        snprintf(file, sizeof file, "shard%d.csv", k);
        char *sp = fed_path(&f, file);
        snprintf(shard[k], sizeof shard[k], "%s", sp);
        free(sp);
        snprintf(name[k], sizeof name[k], "bank-%c", 'a' + k);
        const char *kargv[] = {"fedc-client", "--connect", f.endpoint, "--insecure", "--secagg",
                               "off",         "--name",    name[k],    "--data",     shard[k],
                               "--label",     "bad",       "--quiet",  NULL};
        assert_int_equal(fedc_client_args(&ca[k], 13, (char **)kargv), -1);
        assert_int_equal(fedc_client_new(&kj[k].cl, &ca[k].cfg, &d), FEDC_OK);
    }
    pthread_t ct, kt[N_CL];
    assert_int_equal(pthread_create(&ct, NULL, run_coord, &cj), 0);
    for (int k = 0; k < N_CL; k++)
        assert_int_equal(pthread_create(&kt[k], NULL, run_client, &kj[k]), 0);
    assert_int_equal(pthread_join(ct, NULL), 0);
    for (int k = 0; k < N_CL; k++)
        assert_int_equal(pthread_join(kt[k], NULL), 0);
    assert_int_equal(cj.rc, 0);
    for (int k = 0; k < N_CL; k++) {
        fedc_client_destroy(&kj[k].cl);
        fedc_client_args_release(&ca[k]);
    }
    fedc_coord_destroy(&cj.co);
    fed_release(&f, 0);

    /* start once, then per round select, aggregate, server step. */
    assert_int_equal(r.n_ev, 1 + 3 * ROUNDS);
    assert_int_equal(r.ev[0].what, 'S');
    assert_true(r.p > 0);
    /* The training rows select was told, bank-a's and bank-c's (the two it chose). */
    const double ra = (double)r.ev[1].examples[0], rc_ = (double)r.ev[1].examples[2];
    for (int t = 0; t < ROUNDS; t++) {
        const ev *e = &r.ev[1 + 3 * t], *a = e + 1, *w = e + 2;
        assert_int_equal(e->what, 'E');
        assert_int_equal(e->round, (uint32_t)t + 1);
        assert_int_equal(e->n, N_CL);
        for (int k = 0; k < N_CL; k++) {
            assert_string_equal(e->names[k], name[k]);
            assert_true(e->examples[k] > shard_rows(k) / 2 && e->examples[k] <= shard_rows(k));
            assert_int_equal(e->examples[k], r.ev[1].examples[k]);
        }
        assert_int_equal(a->what, 'A');
        assert_int_equal(a->n, 2); /* only the two selected trained */
        assert_int_equal(a->p, r.p);
        assert_float_equal(a->wsum, 1.0, 1e-12);
        /* In name order: bank-a's share first, then bank-c's (FedAvg weights n_k / n). */
        assert_int_equal(a->examples[0], (uint64_t)llround(ra / (ra + rc_) * 1e6));
        assert_int_equal(a->examples[1], (uint64_t)llround(rc_ / (ra + rc_) * 1e6));
        assert_int_equal(w->what, 'W');
        assert_int_equal(w->round, (uint32_t)t + 1);
        assert_int_equal(w->p, r.p);
        assert_true(w->wsum == 1.0);
    }
}

/* With secure aggregation on, a strategy that needs each update is refused before the coordinator
 * binds: exit code 2, the strategy named in the reason, no callback called. */
static void test_needs_updates_refused_with_secagg(void **state) {
    (void)state;
    coord_cfg cfg;
    fedc_coord_defaults(&cfg);
    cfg.bind = "tcp://127.0.0.1:1"; /* never bound: refused first */
    cfg.insecure = 1;
    static rec r;
    memset(&r, 0, sizeof r);
    fedc_strategy s = {.name = "recorder",
                       .ctx = &r,
                       .needs_updates = 1,
                       .aggregate = rec_aggregate,
                       .start = rec_start,
                       .server_step = rec_step};
    cfg.strategy = &s;
    assert_int_equal(cfg.secagg, 1);
    fedc_coord *co = NULL;
    fedc_diag d;
    assert_int_equal(fedc_coord_new(&co, &cfg, &d), FEDC_OK);
    assert_int_equal(fedc_coord_run(co), 2);
    fedc_coord_destroy(&co);
    assert_int_equal(r.n_ev, 0);
    /* The same strategy without needs_updates passes the check (the refusal is about that). */
    fedc_diag d2;
    s.needs_updates = 0;
    assert_int_equal(fedc_strategy_check(&s, 1, 0, &d2), FEDC_OK);
}

int main(int argc, char **argv) {
    if (argc >= 3) {
        g_coord = argv[1];
        g_client = argv[2];
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weight_rule),
        cmocka_unit_test(test_builtin_rules_match_robust),
        cmocka_unit_test(test_builtin_mean_is_weighted),
        cmocka_unit_test(test_builtin_refuses_bad_settings),
        cmocka_unit_test(test_builtin_server_matches),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_needs_updates_refused_with_secagg),
        cmocka_unit_test(test_user_strategy_called_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
