/* Record-level DP-SGD in the training loop (train.h): the batched clipped sum against a naive
 * per-example oracle, the per-example norm bound, the noise requests, Poisson sampling
 * statistics, one whole step against its formula, learning under moderate noise (and not under
 * huge noise), thread-count invariance with a deterministic noise source, and refused
 * configurations. The noise here is a deterministic test source: the secret one is core/fl's,
 * which this module must not link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fedc/metrics.h"
#include "fedc/model.h"
#include "fedc/rng.h"
#include "fedc/train.h"

/* ---- a deterministic noise source that records what it was asked for ---------------------- */

#define MAX_CALLS 4096

typedef struct test_noise {
    fedc_rng r;
    int calls;
    size_t n[MAX_CALLS];
    double sd[MAX_CALLS];
} test_noise;

static void test_noise_init(test_noise *t, uint64_t key) {
    memset(t, 0, sizeof *t);
    fedc_rng_init(&t->r, key);
}

static void test_noise_add(void *ctx, float *x, size_t n, double sd) {
    test_noise *t = ctx;
    if (t->calls < MAX_CALLS) {
        t->n[t->calls] = n;
        t->sd[t->calls] = sd;
    }
    t->calls++;
    for (size_t i = 0; i < n; i++)
        x[i] += (float)(sd * fedc_rng_normal(&t->r));
}

/* ---- helpers ------------------------------------------------------------------------------- */

static fedc_model *make_model(int n_in, const int *hidden, int n_hidden, fedc_act act,
                              fedc_task task, int classes, uint64_t seed) {
    fedc_arch arch;
    fedc_diag d;
    assert_int_equal(fedc_arch_make(&arch, n_in, hidden, n_hidden, act, task, classes, &d),
                     FEDC_OK);
    fedc_model *m = NULL;
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    fedc_model_init(m, seed);
    fedc_rng r;
    fedc_rng_init(&r, seed + 100);
    /* Non-zero biases so that every path matters. */
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] += 0.1f * fedc_rng_normal(&r);
    return m;
}

static double norm2(const float *v, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

/* Rows with very different scales: small rows give small gradients (not clipped), large rows
 * large ones (clipped). */
static void make_rows(float *x, float *y, int n, int nf, fedc_task task, int classes, uint64_t s) {
    fedc_rng r;
    fedc_rng_init(&r, s);
    for (int i = 0; i < n; i++) {
        const float scale = i % 3 == 0 ? 0.05f : (i % 3 == 1 ? 1.0f : 6.0f);
        for (int j = 0; j < nf; j++)
            x[(size_t)i * nf + j] = scale * fedc_rng_normal(&r);
        if (task == FEDC_TASK_BINARY)
            y[i] = (float)(i % 2);
        else if (task == FEDC_TASK_MULTICLASS)
            y[i] = (float)(i % classes);
        else
            y[i] = 3.0f * fedc_rng_normal(&r);
    }
}

/* Naive oracle: every row's full gradient from a one-row batch (fedc_loss_grad divides by n = 1,
 * so it is the row's own gradient), into g (n, n_params), and its norm. */
static void naive_per_example(float *g, double *norms, const fedc_model *m, const float *x,
                              const float *y, int n, float pos_weight) {
    fedc_workspace *ws1 = NULL;
    assert_int_equal(fedc_workspace_new(&ws1, &m->arch, 1), FEDC_OK);
    const int nf = m->arch.sizes[0];
    for (int i = 0; i < n; i++) {
        fedc_loss_grad(ws1, m, x + (size_t)i * nf, y + i, 1, pos_weight, 0.0f, 0, 0);
        memcpy(g + (size_t)i * m->n_params, ws1->grad, m->n_params * sizeof(float));
        norms[i] = norm2(ws1->grad, m->n_params);
    }
    fedc_workspace_destroy(&ws1);
}

typedef struct dp_case {
    fedc_act act;
    fedc_task task;
    int classes;
    int n_hidden;
    float pos_weight;
} dp_case;

static const dp_case CASES[] = {
    {FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, 2, 3.0f},
    {FEDC_ACT_TANH, FEDC_TASK_MULTICLASS, 4, 2, 1.0f},
    {FEDC_ACT_SIGMOID, FEDC_TASK_REGRESSION, 1, 1, 1.0f},
    {FEDC_ACT_LEAKY_RELU, FEDC_TASK_BINARY, 2, 1, 1.0f},
};

#define NR 23
#define NF 6

/* (1) and (2): for every case, the clipped sum of fedc_dp_clipped_grad (in one chunk and in
 * chunks of 5 rows) equals sum_i min(1, C/||g_i||) g_i over naive per-row gradients, the scales
 * equal the naive ones, some rows are clipped and some not, and every scaled contribution has
 * norm <= C (1 + 1e-5), clipped ones norm C. */
static void test_clipped_sum_matches_naive(void **state) {
    (void)state;
    for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
        const dp_case *c = &CASES[ci];
        int hidden[] = {9, 7};
        fedc_model *m = make_model(NF, hidden, c->n_hidden, c->act, c->task, c->classes, 5 + ci);
        const size_t P = m->n_params;
        float x[NR * NF], y[NR];
        make_rows(x, y, NR, NF, c->task, c->classes, 31 + ci);
        float *g = malloc((size_t)NR * P * sizeof(float));
        double norms[NR], sorted[NR];
        assert_non_null(g);
        naive_per_example(g, norms, m, x, y, NR, c->pos_weight);
        /* C: the median norm, so that about half of the rows are clipped. */
        memcpy(sorted, norms, sizeof sorted);
        for (int i = 1; i < NR; i++)
            for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
                double t = sorted[j];
                sorted[j] = sorted[j - 1];
                sorted[j - 1] = t;
            }
        const float C = (float)sorted[NR / 2];
        double *want = calloc(P, sizeof(double));
        double cn[NR];
        int clipped = 0, unclipped = 0;
        for (int i = 0; i < NR; i++) {
            cn[i] = norms[i] > C ? C / norms[i] : 1.0;
            clipped += cn[i] < 1.0;
            unclipped += cn[i] == 1.0;
            for (size_t p = 0; p < P; p++)
                want[p] += cn[i] * g[(size_t)i * P + p];
        }
        assert_true(clipped >= 5);
        assert_true(unclipped >= 5);
        double wn = 0.0;
        for (size_t p = 0; p < P; p++)
            wn += want[p] * want[p];
        wn = sqrt(wn);
        const int chunks[] = {NR, 5};
        for (int k = 0; k < 2; k++) {
            fedc_workspace *ws = NULL;
            assert_int_equal(fedc_workspace_new(&ws, &m->arch, chunks[k]), FEDC_OK);
            float scales[NR];
            fedc_dp_clipped_grad(ws, scales, m, x, y, NR, c->pos_weight, 0.0f, C, 7, 1);
            /* The sum: within float rounding of the naive one, element by element. */
            double err = 0.0;
            for (size_t p = 0; p < P; p++) {
                double e = fabs((double)ws->grad[p] - want[p]);
                err = e > err ? e : err;
            }
            if (err > 1e-5 * (wn + C))
                print_message("case %zu, chunk %d: max error %g, sum norm %g\n", ci, chunks[k], err,
                              wn);
            assert_true(err <= 1e-5 * (wn + C));
            for (int i = 0; i < NR; i++) {
                assert_true(fabs(scales[i] - cn[i]) <= 1e-5 * cn[i]);
                /* (2) the contribution's norm, measured on the naive gradient. */
                double ni = scales[i] * norms[i];
                assert_true(ni <= C * (1.0 + 1e-5));
                if (cn[i] < 1.0)
                    assert_true(ni >= C * (1.0 - 1e-5));
                else
                    assert_true(scales[i] == 1.0f);
            }
            fedc_workspace_destroy(&ws);
        }
        free(want);
        free(g);
        fedc_model_destroy(&m);
    }
}

/* With clipping inactive (C huge) and dropout on, the DP pass gives n times the plain mean
 * gradient: same masks, same deltas, only the 1/n differs. */
static void test_unclipped_equals_plain_gradient(void **state) {
    (void)state;
    int hidden[] = {9, 7};
    fedc_model *m = make_model(NF, hidden, 2, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, 4);
    float x[NR * NF], y[NR], scales[NR];
    make_rows(x, y, NR, NF, FEDC_TASK_BINARY, 2, 8);
    fedc_workspace *ws = NULL;
    assert_int_equal(fedc_workspace_new(&ws, &m->arch, NR), FEDC_OK);
    const size_t P = m->n_params;
    float *plain = malloc(P * sizeof(float));
    assert_non_null(plain);
    double l0 = fedc_loss_grad(ws, m, x, y, NR, 2.0f, 0.4f, 99, 3);
    memcpy(plain, ws->grad, P * sizeof(float));
    double l1 = fedc_dp_clipped_grad(ws, scales, m, x, y, NR, 2.0f, 0.4f, 1e30f, 99, 3);
    assert_true(fabs(l0 - l1) <= 1e-6 * fabs(l0));
    const double pn = norm2(plain, P) * NR;
    for (size_t p = 0; p < P; p++)
        assert_true(fabs(ws->grad[p] - NR * plain[p]) <= 1e-5 * pn);
    for (int i = 0; i < NR; i++)
        assert_true(scales[i] == 1.0f);
    free(plain);
    fedc_workspace_destroy(&ws);
    fedc_model_destroy(&m);
}

/* A linearly separable binary problem: y = [w . x > 0] for a fixed w over nf features. */
static fedc_dataset *separable(int n, int nf, uint64_t seed) {
    fedc_dataset *ds = NULL;
    assert_int_equal(fedc_dataset_new(&ds, n, nf), FEDC_OK);
    fedc_rng r;
    fedc_rng_init(&r, seed);
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int j = 0; j < nf; j++) {
            float v = fedc_rng_normal(&r);
            ds->x[(size_t)i * nf + j] = v;
            s += v * (j % 2 ? -1.0 : 1.0) / (1.0 + j);
        }
        ds->y[i] = s > 0.0 ? 1.0f : 0.0f;
    }
    return ds;
}

/* (3) Every step asks for n_params values of sd sigma*C, after one first request of 8 values of
 * sd 1 (the secret key of sampling, shuffling and dropout); none per step without noise. The
 * report gives T and q for the accountant. Both sampling modes. */
static void test_noise_requests(void **state) {
    (void)state;
    fedc_dataset *ds = separable(100, 5, 3);
    int hidden[] = {8};
    for (int poisson = 0; poisson < 2; poisson++) {
        for (int with_noise = 0; with_noise < 2; with_noise++) {
            fedc_model *m = make_model(5, hidden, 1, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, 1);
            test_noise *tn = malloc(sizeof *tn);
            assert_non_null(tn);
            test_noise_init(tn, 5);
            fedc_train_cfg cfg = fedc_train_defaults();
            cfg.epochs = 2;
            cfg.batch = 16;
            cfg.dp_clip = 0.7f;
            cfg.dp_noise = with_noise ? 1.3f : 0.0f;
            cfg.dp_poisson = poisson;
            cfg.dp_noise_fn = test_noise_add;
            cfg.dp_noise_ctx = tn;
            fedc_train_report rep;
            fedc_diag d;
            assert_int_equal(fedc_train(m, ds, NULL, &cfg, &rep, &d), FEDC_OK);
            const long steps = 2 * 7; /* ceil(100 / 16) per epoch */
            assert_int_equal(rep.steps, steps);
            assert_int_equal(rep.dp_steps, steps);
            assert_true(rep.dp_q == 16.0 / 100.0);
            assert_int_equal(tn->calls, 1 + (with_noise ? steps : 0));
            assert_int_equal(tn->n[0], 8);
            assert_true(tn->sd[0] == 1.0);
            for (int k = 1; k < tn->calls; k++) {
                assert_int_equal(tn->n[k], m->n_params);
                assert_true(tn->sd[k] == (double)1.3f * (double)0.7f);
            }
            free(tn);
            fedc_model_destroy(&m);
        }
    }
    /* Without DP the report says so and the noise source is never used. */
    fedc_model *m = make_model(5, hidden, 1, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, 1);
    fedc_train_cfg cfg = fedc_train_defaults();
    cfg.epochs = 1;
    cfg.dp_noise_fn = test_noise_add; /* ignored: dp_clip is 0 */
    cfg.dp_noise_ctx = NULL;
    fedc_train_report rep;
    fedc_diag d;
    assert_int_equal(fedc_train(m, ds, NULL, &cfg, &rep, &d), FEDC_OK);
    assert_int_equal(rep.dp_steps, 0);
    assert_true(rep.dp_q == 0.0);
    fedc_model_destroy(&m);
    fedc_dataset_destroy(&ds);
}

/* One whole step, by its formula: with batch = n (q = 1, every row sampled) and plain SGD of
 * rate lr, the new parameters are w - lr (sum_i c_i g_i + noise) / n, with the noise replayed
 * from the same deterministic source. */
static void test_one_step_formula(void **state) {
    (void)state;
    const int n = 40, nf = 5;
    fedc_dataset *ds = separable(n, nf, 9);
    int hidden[] = {6, 4};
    fedc_model *m = make_model(nf, hidden, 2, FEDC_ACT_TANH, FEDC_TASK_BINARY, 2, 2);
    const size_t P = m->n_params;
    float *w0 = malloc(P * sizeof(float)), *want = malloc(P * sizeof(float));
    assert_non_null(w0);
    assert_non_null(want);
    memcpy(w0, m->params, P * sizeof(float));
    const float C = 0.3f, sigma = 0.8f, lr = 0.5f;
    /* The clipped sum (row order does not matter beyond rounding). */
    fedc_workspace *ws = NULL;
    assert_int_equal(fedc_workspace_new(&ws, &m->arch, n), FEDC_OK);
    fedc_dp_clipped_grad(ws, NULL, m, ds->x, ds->y, n, 1.0f, 0.0f, C, 0, 1);
    /* The noise: the source's second request (the first is the 8-value key). */
    test_noise *tn = malloc(sizeof *tn);
    assert_non_null(tn);
    test_noise_init(tn, 77);
    float key8[8] = {0};
    test_noise_add(tn, key8, 8, 1.0);
    float *noise = calloc(P, sizeof(float));
    assert_non_null(noise);
    test_noise_add(tn, noise, P, (double)sigma * C);
    for (size_t p = 0; p < P; p++)
        want[p] = w0[p] - lr * (ws->grad[p] + noise[p]) / n;

    fedc_train_cfg cfg = fedc_train_defaults();
    cfg.epochs = 1;
    cfg.batch = n;
    cfg.opt.kind = FEDC_OPT_SGD;
    cfg.opt.momentum = 0.0f;
    cfg.opt.lr = lr;
    cfg.dp_clip = C;
    cfg.dp_noise = sigma;
    cfg.dp_noise_fn = test_noise_add;
    cfg.dp_noise_ctx = tn;
    test_noise_init(tn, 77);
    fedc_train_report rep;
    fedc_diag d;
    assert_int_equal(fedc_train(m, ds, NULL, &cfg, &rep, &d), FEDC_OK);
    assert_int_equal(rep.dp_steps, 1);
    assert_true(rep.dp_q == 1.0);
    double moved = 0.0;
    for (size_t p = 0; p < P; p++) {
        assert_true(fabs(m->params[p] - want[p]) <= 1e-5f * (1.0f + fabsf(want[p])));
        moved += fabs(m->params[p] - w0[p]);
    }
    assert_true(moved > 1e-3);

    /* Poisson with q = 10/40: whatever the realised batch size, the sum is divided by q n = 10.
     * Clipping to 1e-6 makes the rows' part negligible (at most 40e-6 against noise of sd 1). */
    memcpy(m->params, w0, P * sizeof(float));
    test_noise_init(tn, 78);
    cfg.batch = 10;
    cfg.dp_clip = 1e-6f;
    cfg.dp_noise = 1e6f;
    cfg.opt.lr = 1.0f;
    assert_int_equal(fedc_train(m, ds, NULL, &cfg, &rep, &d), FEDC_OK);
    assert_int_equal(rep.dp_steps, 4);
    /* Four steps (ceil(40 / 10)) of plain SGD on pure noise: w0 - sum of the noises / 10. */
    float *sum4 = calloc(P, sizeof(float));
    assert_non_null(sum4);
    test_noise_init(tn, 78);
    test_noise_add(tn, key8, 8, 1.0);
    for (int k = 0; k < 4; k++) {
        memset(noise, 0, P * sizeof(float));
        test_noise_add(tn, noise, P, (double)1e6f * (double)1e-6f);
        for (size_t p = 0; p < P; p++)
            sum4[p] += noise[p];
    }
    for (size_t p = 0; p < P; p++)
        assert_true(fabs(m->params[p] - (w0[p] - sum4[p] / 10.0f)) <= 1e-4);
    free(sum4);
    free(noise);
    free(tn);
    free(w0);
    free(want);
    fedc_workspace_destroy(&ws);
    fedc_model_destroy(&m);
    fedc_dataset_destroy(&ds);
}

/* (4) Poisson sampling: the batch size over many steps has mean q n and variance n q (1 - q)
 * (within 4 standard errors), every row is chosen at rate q in both halves of the index range,
 * samples are increasing and in range, consecutive steps differ, empty batches occur at the
 * rate (1 - q)^n when q n is small, and q = 0 / q = 1 take no row / every row. */
static void test_poisson_sampling(void **state) {
    (void)state;
    const int n = 1000, T = 4000;
    const double q = 0.05;
    int *idx = malloc((size_t)n * sizeof(int)), *prev = malloc((size_t)n * sizeof(int));
    long *hits = calloc((size_t)n, sizeof(long));
    assert_non_null(idx);
    assert_non_null(prev);
    assert_non_null(hits);
    double s = 0.0, s2 = 0.0;
    int prev_k = -1, same = 0;
    for (int t = 0; t < T; t++) {
        int k = fedc_dp_poisson_sample(idx, n, q, 1234, (uint64_t)t + 1);
        assert_true(k >= 0 && k <= n);
        for (int i = 0; i < k; i++) {
            assert_true(idx[i] >= 0 && idx[i] < n);
            if (i > 0)
                assert_true(idx[i] > idx[i - 1]);
            hits[idx[i]]++;
        }
        same += k == prev_k && memcmp(idx, prev, (size_t)k * sizeof(int)) == 0;
        memcpy(prev, idx, (size_t)k * sizeof(int));
        prev_k = k;
        s += k;
        s2 += (double)k * k;
    }
    assert_int_equal(same, 0);
    const double mean = s / T, var = (s2 - s * s / T) / (T - 1);
    const double want_var = n * q * (1 - q);
    print_message("Poisson q %g n %d: mean batch %.3f (want %.1f), variance %.3f (want %.3f)\n", q,
                  n, mean, q * n, var, want_var);
    assert_true(fabs(mean - q * n) <= 4.0 * sqrt(want_var / T));
    /* The sample variance of a near-normal count has standard error var sqrt(2 / (T - 1)). */
    assert_true(fabs(var - want_var) <= 4.0 * want_var * sqrt(2.0 / (T - 1)));
    for (int h = 0; h < 2; h++) {
        double rate = 0.0;
        for (int i = h * n / 2; i < (h + 1) * n / 2; i++)
            rate += hits[i];
        rate /= (double)T * (n / 2);
        assert_true(fabs(rate - q) <= 4.0 * sqrt(q * (1 - q) / ((double)T * (n / 2))));
    }
    /* q n = 1: a third of the batches are empty. */
    int empty = 0;
    for (int t = 0; t < T; t++)
        empty += fedc_dp_poisson_sample(idx, n, 1.0 / n, 99, (uint64_t)t) == 0;
    const double pe = pow(1.0 - 1.0 / n, n);
    assert_true(fabs((double)empty / T - pe) <= 4.0 * sqrt(pe * (1 - pe) / T));
    assert_int_equal(fedc_dp_poisson_sample(idx, n, 0.0, 1, 1), 0);
    assert_int_equal(fedc_dp_poisson_sample(idx, n, 1.0, 1, 1), n);
    for (int i = 0; i < n; i++)
        assert_int_equal(idx[i], i);
    free(idx);
    free(prev);
    free(hits);
}

/* Test-set ROC-AUC of a 12-16-1 model trained with DP-SGD on separable data. */
static double dp_auc(float sigma, int poisson, float dropout, double *loss) {
    fedc_dataset *train = separable(4000, 12, 21), *test = separable(2000, 12, 22);
    int hidden[] = {16};
    fedc_model *m = make_model(12, hidden, 1, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, 3);
    test_noise *tn = malloc(sizeof *tn);
    assert_non_null(tn);
    test_noise_init(tn, 11);
    fedc_train_cfg cfg = fedc_train_defaults();
    cfg.epochs = 5;
    cfg.batch = 64;
    cfg.opt.lr = 0.01f;
    cfg.dropout = dropout;
    cfg.dp_clip = 1.0f;
    cfg.dp_noise = sigma;
    cfg.dp_poisson = poisson;
    cfg.dp_noise_fn = test_noise_add;
    cfg.dp_noise_ctx = tn;
    fedc_train_report rep;
    fedc_diag d;
    assert_int_equal(fedc_train(m, train, NULL, &cfg, &rep, &d), FEDC_OK);
    float *p = malloc((size_t)test->n_rows * sizeof(float));
    assert_non_null(p);
    assert_int_equal(fedc_model_predict_std(p, m, test->x, test->n_rows), FEDC_OK);
    fedc_binary_metrics bm;
    assert_int_equal(fedc_metrics_binary(&bm, p, test->y, test->n_rows, 0.5f), FEDC_OK);
    assert_int_equal(fedc_eval_loss(loss, m, test), FEDC_OK);
    free(p);
    free(tn);
    fedc_model_destroy(&m);
    fedc_dataset_destroy(&train);
    fedc_dataset_destroy(&test);
    return bm.roc_auc;
}

/* (5) Learning survives moderate noise (C = 1, sigma = 0.5) in both sampling modes and with
 * dropout; with sigma = 1000 the model learns nothing. */
static void test_learns_with_moderate_noise(void **state) {
    (void)state;
    double loss;
    double a = dp_auc(0.5f, 1, 0.0f, &loss);
    print_message("DP-SGD sigma 0.5, Poisson: test ROC-AUC %.4f, loss %.4f\n", a, loss);
    assert_true(a > 0.9);
    a = dp_auc(0.5f, 0, 0.0f, &loss);
    print_message("DP-SGD sigma 0.5, shuffled batches: test ROC-AUC %.4f, loss %.4f\n", a, loss);
    assert_true(a > 0.9);
    a = dp_auc(0.5f, 1, 0.2f, &loss);
    print_message("DP-SGD sigma 0.5, Poisson, dropout 0.2: test ROC-AUC %.4f, loss %.4f\n", a,
                  loss);
    assert_true(a > 0.9);
    a = dp_auc(1000.0f, 1, 0.0f, &loss);
    print_message("DP-SGD sigma 1000: test ROC-AUC %.4f, loss %.4f\n", a, loss);
    assert_true(a < 0.75);
}

/* With a deterministic noise source, DP-SGD gives the same bits for 1 and 2 threads (dropout
 * and Poisson sampling on). */
static void test_thread_count_invariance(void **state) {
    (void)state;
#ifdef _OPENMP
    fedc_dataset *ds = separable(700, 12, 5);
    int hidden[] = {33, 17};
    fedc_model *m[2];
    for (int t = 0; t < 2; t++) {
        m[t] = make_model(12, hidden, 2, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, 6);
        test_noise *tn = malloc(sizeof *tn);
        assert_non_null(tn);
        test_noise_init(tn, 3);
        fedc_train_cfg cfg = fedc_train_defaults();
        cfg.epochs = 2;
        cfg.batch = 50;
        cfg.dropout = 0.3f;
        cfg.dp_clip = 0.5f;
        cfg.dp_noise = 1.0f;
        cfg.dp_noise_fn = test_noise_add;
        cfg.dp_noise_ctx = tn;
        omp_set_dynamic(0);
        omp_set_num_threads(t + 1);
        fedc_train_report rep;
        fedc_diag d;
        assert_int_equal(fedc_train(m[t], ds, NULL, &cfg, &rep, &d), FEDC_OK);
        assert_int_equal(rep.threads_used, t + 1);
        free(tn);
    }
    assert_memory_equal(m[0]->params, m[1]->params, m[0]->n_params * sizeof(float));
    for (int t = 0; t < 2; t++)
        fedc_model_destroy(&m[t]);
    fedc_dataset_destroy(&ds);
#else
    skip();
#endif
}

/* ---- the noise drawn by the whole team, in parts ----------------------------------------------
 */

#define MAX_REGIONS 4096

/* A deterministic stand-in for core/fl's regions: region r's values depend only on (r, index). */
typedef struct part_noise {
    uint64_t next;         /* next region to hand out */
    int reserves;          /* reserve calls */
    int seq_calls;         /* calls of the sequential function (the sampling key) */
    size_t n[MAX_REGIONS]; /* values drawn from each region (one writer per region) */
    double sd[MAX_REGIONS];
    int calls[MAX_REGIONS];
} part_noise;

static void part_seq(void *ctx, float *x, size_t n, double sd) {
    part_noise *t = ctx;
    t->seq_calls++;
    fedc_rng r;
    fedc_rng_init(&r, 991);
    for (size_t i = 0; i < n; i++)
        x[i] += (float)(sd * fedc_rng_normal(&r));
}

static uint64_t part_reserve(void *ctx, uint64_t parts) {
    part_noise *t = ctx;
    uint64_t base = t->next;
    t->next += parts;
    t->reserves++;
    return base;
}

static void part_add(void *ctx, uint64_t region, float *x, size_t n, double sd) {
    part_noise *t = ctx;
    if (region < MAX_REGIONS) {
        t->n[region] += n;
        t->sd[region] = sd;
        t->calls[region]++;
    }
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(77, region, 0, 0));
    for (size_t i = 0; i < n; i++)
        x[i] += (float)(sd * fedc_rng_normal(&r));
}

/* With dp_noise_reserve and dp_noise_part, every step reserves ceil(P / FEDC_DP_NOISE_PART)
 * regions and each is drawn exactly once, with sd sigma C, together covering all P parameters;
 * the sequential function only draws the sampling key; the model is the same for 1 and 2
 * threads; giving only one of the two functions is refused. */
static void test_noise_in_parts(void **state) {
    (void)state;
    fedc_dataset *ds = separable(300, 12, 9);
    int hidden[] = {200, 80}; /* 18,761 parameters: two parts */
    int teams = 1;
#ifdef _OPENMP
    teams = 2;
#endif
    fedc_model *m[2] = {NULL, NULL};
    for (int t = 0; t < teams; t++) {
        m[t] = make_model(12, hidden, 2, FEDC_ACT_TANH, FEDC_TASK_BINARY, 2, 4);
        part_noise *pn = calloc(1, sizeof *pn);
        assert_non_null(pn);
        fedc_train_cfg cfg = fedc_train_defaults();
        cfg.epochs = 1;
        cfg.batch = 30;
        cfg.dp_clip = 0.5f;
        cfg.dp_noise = 2.0f;
        cfg.dp_noise_fn = part_seq;
        cfg.dp_noise_reserve = part_reserve;
        cfg.dp_noise_part = part_add;
        cfg.dp_noise_ctx = pn;
#ifdef _OPENMP
        omp_set_dynamic(0);
        omp_set_num_threads(t + 1);
#endif
        fedc_train_report rep;
        fedc_diag d;
        assert_int_equal(fedc_train(m[t], ds, NULL, &cfg, &rep, &d), FEDC_OK);
        const long P = (long)m[t]->n_params;
        const int per_step = (int)((P + FEDC_DP_NOISE_PART - 1) / FEDC_DP_NOISE_PART);
        assert_int_equal(per_step, 2);
        assert_int_equal(pn->reserves, (int)rep.dp_steps);
        assert_int_equal((long)pn->next, rep.dp_steps * per_step);
        assert_int_equal(pn->seq_calls, 1); /* the key only */
        for (long step = 0; step < rep.dp_steps; step++) {
            size_t total = 0;
            for (int k = 0; k < per_step; k++) {
                uint64_t region = (uint64_t)(step * per_step + k);
                assert_int_equal(pn->calls[region], 1);
                assert_true(pn->sd[region] == 2.0 * 0.5);
                total += pn->n[region];
            }
            assert_int_equal(total, (size_t)P);
        }
        free(pn);
    }
    if (teams == 2)
        assert_memory_equal(m[0]->params, m[1]->params, m[0]->n_params * sizeof(float));
    /* One without the other is refused. */
    part_noise *pn = calloc(1, sizeof *pn);
    assert_non_null(pn);
    fedc_train_cfg cfg = fedc_train_defaults();
    cfg.dp_clip = 0.5f;
    cfg.dp_noise = 2.0f;
    cfg.dp_noise_fn = part_seq;
    cfg.dp_noise_part = part_add;
    cfg.dp_noise_ctx = pn;
    fedc_train_report rep;
    fedc_diag d;
    assert_int_equal(fedc_train(m[0], ds, NULL, &cfg, &rep, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "both or neither"));
    free(pn);
    for (int t = 0; t < teams; t++)
        fedc_model_destroy(&m[t]);
    fedc_dataset_destroy(&ds);
}

/* Tiny Poisson batches (q n = 1 per step, many empty) still train without error; the epoch loss
 * is over the rows drawn. */
static void test_empty_batches(void **state) {
    (void)state;
    fedc_dataset *ds = separable(60, 4, 2);
    int hidden[] = {5};
    fedc_model *m = make_model(4, hidden, 1, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, 2);
    test_noise *tn = malloc(sizeof *tn);
    assert_non_null(tn);
    test_noise_init(tn, 1);
    fedc_train_cfg cfg = fedc_train_defaults();
    cfg.epochs = 3;
    cfg.batch = 1;
    cfg.dp_clip = 1.0f;
    cfg.dp_noise = 1.0f;
    cfg.dp_noise_fn = test_noise_add;
    cfg.dp_noise_ctx = tn;
    fedc_train_report rep;
    fedc_diag d;
    assert_int_equal(fedc_train(m, ds, NULL, &cfg, &rep, &d), FEDC_OK);
    assert_int_equal(rep.dp_steps, 3 * 60);
    assert_int_equal(tn->calls, 1 + 3 * 60);
    for (size_t p = 0; p < m->n_params; p++)
        assert_true(isfinite(m->params[p]));
    free(tn);
    fedc_model_destroy(&m);
    fedc_dataset_destroy(&ds);
}

/* (6) Refused configurations, each with a message that names the problem; the model is left
 * untouched. */
static void test_bad_configurations(void **state) {
    (void)state;
    fedc_dataset *ds = separable(50, 4, 2);
    int hidden[] = {5};
    fedc_model *m = make_model(4, hidden, 1, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, 2);
    float *w0 = malloc(m->n_params * sizeof(float));
    assert_non_null(w0);
    memcpy(w0, m->params, m->n_params * sizeof(float));
    test_noise tn1;
    test_noise_init(&tn1, 1);
    struct {
        float clip, noise;
        int poisson, with_fn;
        const char *msg;
    } bad[] = {
        {-1.0f, 1.0f, 1, 1, "dp_clip -1 and dp_noise 1 must be finite and >= 0"},
        {1.0f, -0.5f, 1, 1, "dp_noise -0.5 must be finite and >= 0"},
        {NAN, 1.0f, 1, 1, "must be finite and >= 0"},
        {INFINITY, 1.0f, 1, 1, "must be finite and >= 0"},
        {1.0f, INFINITY, 1, 1, "must be finite and >= 0"},
        {0.0f, 1.0f, 1, 1, "dp_noise 1 without clipping (dp_clip 0)"},
        {1.0f, 1.0f, 1, 0, "dp_clip 1 needs dp_noise_fn"},
        {1.0f, 0.0f, 0, 0, "dp_clip 1 needs dp_noise_fn"},
        {1.0f, 1.0f, 2, 1, "dp_poisson must be 1 (Poisson sampling) or 0"},
        {1.0f, 1.0f, -1, 1, "got -1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fedc_train_cfg cfg = fedc_train_defaults();
        cfg.epochs = 1;
        cfg.dp_clip = bad[i].clip;
        cfg.dp_noise = bad[i].noise;
        cfg.dp_poisson = bad[i].poisson;
        cfg.dp_noise_fn = bad[i].with_fn ? test_noise_add : NULL;
        cfg.dp_noise_ctx = &tn1;
        fedc_train_report rep;
        fedc_diag d = {{0}};
        assert_int_equal(fedc_train(m, ds, NULL, &cfg, &rep, &d), FEDC_EINVAL);
        if (!strstr(d.msg, bad[i].msg))
            print_message("case %zu: message '%s' lacks '%s'\n", i, d.msg, bad[i].msg);
        assert_non_null(strstr(d.msg, bad[i].msg));
        assert_non_null(strstr(d.msg, "DP-SGD"));
        assert_memory_equal(m->params, w0, m->n_params * sizeof(float));
    }
    assert_int_equal(tn1.calls, 0);
    free(w0);
    fedc_model_destroy(&m);
    fedc_dataset_destroy(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clipped_sum_matches_naive),
        cmocka_unit_test(test_unclipped_equals_plain_gradient),
        cmocka_unit_test(test_noise_requests),
        cmocka_unit_test(test_one_step_formula),
        cmocka_unit_test(test_poisson_sampling),
        cmocka_unit_test(test_learns_with_moderate_noise),
        cmocka_unit_test(test_thread_count_invariance),
        cmocka_unit_test(test_noise_in_parts),
        cmocka_unit_test(test_empty_batches),
        cmocka_unit_test(test_bad_configurations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
