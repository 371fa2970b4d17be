/* Numerical gradient checks (central differences) of every layer's weights and biases, for every
 * hidden activation, every loss (binary cross-entropy with a positive weight, softmax
 * cross-entropy, mean squared error), with and without dropout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/model.h"
#include "fedc/rng.h"
#include "fedc/train.h"

#define N 9

/* A fingerprint of which hidden pre-activations are positive: when a perturbation moves one
 * across the kink of ReLU, the central difference straddles a point where the loss is not
 * differentiable, and that parameter is skipped (the count of skips is bounded below). */
static uint64_t sign_pattern(const fedc_workspace *ws, const fedc_arch *a, int n) {
    uint64_t h = 1469598103934665603ULL;
    for (int l = 0; l + 1 < a->n_layers; l++)
        for (int i = 0; i < n * a->sizes[l + 1]; i++)
            h = (h ^ (uint64_t)(ws->z[l][i] > 0.0f)) * 1099511628211ULL;
    return h;
}

typedef struct gc_case {
    fedc_act act;
    fedc_task task;
    int classes;
    float pos_weight;
    float dropout;
} gc_case;

/* Checks d loss / d theta for every parameter of a 5-7-6-K network. Per layer and per kind
 * (weights, biases) the relative error ||num - ana|| / (||num|| + ||ana||) must be below 2e-3
 * (above the difference quotient's noise floor), and no single entry may be off by more than 2e-2
 * relative (with an absolute floor for tiny ones). */
static void gradcheck(const gc_case *gc) {
    int hidden[] = {7, 6};
    fedc_arch arch;
    fedc_diag d;
    assert_int_equal(fedc_arch_make(&arch, 5, hidden, 2, gc->act, gc->task, gc->classes, &d),
                     FEDC_OK);
    fedc_model *m = NULL;
    fedc_workspace *ws = NULL;
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    assert_int_equal(fedc_workspace_new(&ws, &arch, N), FEDC_OK);
    fedc_model_init(m, 3);
    fedc_rng r;
    fedc_rng_init(&r, 17);
    /* Non-zero biases so that every path matters. */
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] += 0.1f * fedc_rng_normal(&r);
    float x[N * 5], y[N];
    for (int i = 0; i < N * 5; i++)
        x[i] = fedc_rng_normal(&r);
    for (int i = 0; i < N; i++) {
        if (gc->task == FEDC_TASK_BINARY)
            y[i] = (float)(i % 3 == 0);
        else if (gc->task == FEDC_TASK_MULTICLASS)
            y[i] = (float)(i % gc->classes);
        else
            y[i] = fedc_rng_normal(&r);
    }
    const uint64_t key = 77, step = 5;
    fedc_loss_grad(ws, m, x, y, N, gc->pos_weight, gc->dropout, key, step);
    float *ana = malloc(m->n_params * sizeof(float));
    float *num = malloc(m->n_params * sizeof(float));
    assert_non_null(ana);
    assert_non_null(num);
    memcpy(ana, ws->grad, m->n_params * sizeof(float));
    const float eps = 2e-3f;
    int kinked = 0;
    uint8_t *skip = calloc(m->n_params, 1);
    assert_non_null(skip);
    for (size_t i = 0; i < m->n_params; i++) {
        float keep = m->params[i];
        m->params[i] = keep + eps;
        double lp = fedc_loss_grad(ws, m, x, y, N, gc->pos_weight, gc->dropout, key, step);
        uint64_t sp = sign_pattern(ws, &arch, N);
        m->params[i] = keep - eps;
        double lm = fedc_loss_grad(ws, m, x, y, N, gc->pos_weight, gc->dropout, key, step);
        m->params[i] = keep;
        if (sp != sign_pattern(ws, &arch, N)) {
            skip[i] = 1;
            kinked++;
            num[i] = ana[i];
        }
        /* The perturbation is the difference of the float parameters actually used. */
        if (!skip[i])
            num[i] = (float)((lp - lm) / ((double)(keep + eps) - (double)(keep - eps)));
    }
    /* Sigmoid and tanh have no kinks; for ReLU-family layers only a few parameters may straddle
     * one. */
    if (gc->act == FEDC_ACT_SIGMOID || gc->act == FEDC_ACT_TANH)
        assert_int_equal(kinked, 0);
    assert_true((size_t)kinked * 20 < m->n_params);
    for (int l = 0; l < arch.n_layers; l++) {
        for (int kind = 0; kind < 2; kind++) {
            size_t off = kind ? m->b_off[l] : m->w_off[l];
            size_t cnt =
                kind ? (size_t)arch.sizes[l + 1] : (size_t)arch.sizes[l] * arch.sizes[l + 1];
            double dn = 0, nn = 0, na = 0, gmax = 0;
            for (size_t i = off; i < off + cnt; i++) {
                dn += ((double)num[i] - ana[i]) * ((double)num[i] - ana[i]);
                nn += (double)num[i] * num[i];
                na += (double)ana[i] * ana[i];
                gmax = fmax(gmax, fabs(ana[i]));
            }
            double rel = sqrt(dn) / (sqrt(nn) + sqrt(na) + 1e-12);
            /* Noise floor of the central difference: the loss is a float mean (relative error
             * ~1e-7 of a loss near 1) divided by 2 eps = 4e-3, about 3e-5 per entry. */
            double floor = 3e-5 * sqrt((double)cnt);
            if (!(sqrt(dn) < 2e-3 * (sqrt(nn) + sqrt(na)) + floor) || !(na > 0.0)) {
                fail_msg("act %s task %s dropout %.1f layer %d %s: relative error %.3g (|ana| "
                         "%.3g)",
                         fedc_act_name(gc->act), fedc_task_name(gc->task), (double)gc->dropout, l,
                         kind ? "bias" : "weights", rel, sqrt(na));
            }
            for (size_t i = off; i < off + cnt; i++) {
                double e = fabs((double)num[i] - ana[i]);
                if (e > 2e-2 * fabs(ana[i]) + 2e-3 * gmax + 1e-4)
                    fail_msg("act %s task %s layer %d %s entry %zu: numeric %.6g analytic %.6g",
                             fedc_act_name(gc->act), fedc_task_name(gc->task), l,
                             kind ? "bias" : "weights", i - off, (double)num[i], (double)ana[i]);
            }
        }
    }
    free(ana);
    free(num);
    free(skip);
    fedc_workspace_destroy(&ws);
    fedc_model_destroy(&m);
}

static void test_all_activations_and_losses(void **state) {
    (void)state;
    static const fedc_act acts[] = {FEDC_ACT_RELU, FEDC_ACT_LEAKY_RELU, FEDC_ACT_SIGMOID,
                                    FEDC_ACT_TANH};
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        gc_case cases[] = {
            {acts[a], FEDC_TASK_BINARY, 2, 1.0f, 0.0f},
            {acts[a], FEDC_TASK_BINARY, 2, 3.5f, 0.0f},
            {acts[a], FEDC_TASK_MULTICLASS, 4, 1.0f, 0.0f},
            {acts[a], FEDC_TASK_REGRESSION, 1, 1.0f, 0.0f},
            {acts[a], FEDC_TASK_BINARY, 2, 2.0f, 0.3f},
            {acts[a], FEDC_TASK_MULTICLASS, 3, 1.0f, 0.5f},
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            gradcheck(&cases[c]);
    }
}

/* The loss values themselves, against formulas evaluated here in double. */
static void test_loss_values(void **state) {
    (void)state;
    fedc_arch arch;
    fedc_diag d;
    fedc_model *m = NULL;
    fedc_workspace *ws = NULL;
    /* A linear model (no hidden layers) with w = 0.5, b = -0.25 on one feature. */
    assert_int_equal(fedc_arch_make(&arch, 1, NULL, 0, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    assert_int_equal(fedc_workspace_new(&ws, &arch, 4), FEDC_OK);
    m->w[0][0] = 0.5f;
    m->b[0][0] = -0.25f;
    float x[] = {-2.0f, 0.0f, 1.0f, 3.0f}, y[] = {0, 1, 1, 0};
    double pw = 2.0, expect = 0.0;
    for (int i = 0; i < 4; i++) {
        double z = 0.5 * x[i] - 0.25, p = 1.0 / (1.0 + exp(-z));
        expect += y[i] > 0.5 ? -pw * log(p) : -log(1.0 - p);
    }
    expect /= 4;
    double got = fedc_loss_grad(ws, m, x, y, 4, (float)pw, 0.0f, 0, 0);
    assert_true(fabs(got - expect) < 1e-6);
    fedc_workspace_destroy(&ws);
    fedc_model_destroy(&m);

    /* Softmax cross-entropy with three classes and zero weights: loss = log 3 for any label. */
    assert_int_equal(fedc_arch_make(&arch, 1, NULL, 0, FEDC_ACT_RELU, FEDC_TASK_MULTICLASS, 3, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    assert_int_equal(fedc_workspace_new(&ws, &arch, 4), FEDC_OK);
    float yc[] = {0, 1, 2, 1};
    got = fedc_loss_grad(ws, m, x, yc, 4, 1.0f, 0.0f, 0, 0);
    assert_true(fabs(got - log(3.0)) < 1e-6);
    fedc_workspace_destroy(&ws);
    fedc_model_destroy(&m);

    /* Mean squared error. */
    assert_int_equal(fedc_arch_make(&arch, 1, NULL, 0, FEDC_ACT_RELU, FEDC_TASK_REGRESSION, 1, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    assert_int_equal(fedc_workspace_new(&ws, &arch, 4), FEDC_OK);
    m->w[0][0] = 2.0f;
    float yr[] = {-4.0f, 1.0f, 2.0f, 5.0f}; /* predictions -4, 0, 2, 6: errors 0, 1, 0, 1 */
    got = fedc_loss_grad(ws, m, x, yr, 4, 1.0f, 0.0f, 0, 0);
    assert_true(fabs(got - 0.5) < 1e-6);
    fedc_workspace_destroy(&ws);
    fedc_model_destroy(&m);
}

/* Dropout keeps about 1 - p of the hidden units, scaled by 1 / (1 - p), and the mask is a pure
 * function of (key, step). */
static void test_dropout_mask(void **state) {
    (void)state;
    int hidden[] = {64};
    fedc_arch arch;
    fedc_diag d;
    fedc_model *m = NULL;
    fedc_workspace *ws = NULL;
    assert_int_equal(fedc_arch_make(&arch, 4, hidden, 1, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    assert_int_equal(fedc_workspace_new(&ws, &arch, 128), FEDC_OK);
    fedc_model_init(m, 1);
    float x[128 * 4], y[128] = {0};
    for (int i = 0; i < 128 * 4; i++)
        x[i] = 1.0f;
    fedc_loss_grad(ws, m, x, y, 128, 1.0f, 0.25f, 5, 9);
    int kept = 0;
    for (int i = 0; i < 128 * 64; i++) {
        assert_true(ws->mask[0][i] == 0.0f || ws->mask[0][i] == 1.0f / 0.75f);
        kept += ws->mask[0][i] != 0.0f;
    }
    /* 8192 Bernoulli(0.75) draws: mean 6144, sd 39. */
    assert_true(abs(kept - 6144) < 5 * 39);
    float *first = malloc(128 * 64 * sizeof(float));
    assert_non_null(first);
    memcpy(first, ws->mask[0], 128 * 64 * sizeof(float));
    fedc_loss_grad(ws, m, x, y, 128, 1.0f, 0.25f, 5, 9);
    assert_memory_equal(first, ws->mask[0], 128 * 64 * sizeof(float));
    fedc_loss_grad(ws, m, x, y, 128, 1.0f, 0.25f, 5, 10);
    assert_memory_not_equal(first, ws->mask[0], 128 * 64 * sizeof(float));
    free(first);
    fedc_workspace_destroy(&ws);
    fedc_model_destroy(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_activations_and_losses),
        cmocka_unit_test(test_loss_values),
        cmocka_unit_test(test_dropout_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
