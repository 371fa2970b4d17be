/* Optimizer updates against the published formulas evaluated here in double: SGD with momentum,
 * Adam with bias correction, AdamW's decoupled decay, L1/L2 penalties on weights but not biases;
 * and an optimiser state kept across fedc_train calls (a federated client's --optimizer-state
 * kept). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/data.h"
#include "fedc/model.h"
#include "fedc/optim.h"
#include "fedc/train.h"

/* A 2-1 linear binary model: params = w0, w1 (weights), b (bias). */
static fedc_model *tiny_model(void) {
    fedc_arch arch;
    fedc_diag d;
    fedc_model *m = NULL;
    assert_int_equal(fedc_arch_make(&arch, 2, NULL, 0, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    assert_int_equal(m->n_params, 3);
    m->params[0] = 0.5f;
    m->params[1] = -1.0f;
    m->params[2] = 0.25f;
    return m;
}

static void test_sgd_momentum_and_penalties(void **state) {
    (void)state;
    fedc_model *m = tiny_model();
    fedc_optim_cfg c = fedc_optim_defaults();
    c.kind = FEDC_OPT_SGD;
    c.lr = 0.1f;
    c.momentum = 0.9f;
    c.l2 = 0.01f;
    c.l1 = 0.02f;
    fedc_optim *o = NULL;
    assert_int_equal(fedc_optim_new(&o, &c, m), FEDC_OK);
    double w[3] = {0.5, -1.0, 0.25}, v[3] = {0, 0, 0};
    const double g0[3] = {0.3, -0.2, 0.1};
    for (long t = 1; t <= 3; t++) {
        float g[3] = {(float)g0[0], (float)g0[1], (float)g0[2]};
        fedc_optim_step(o, m->params, g, t);
        for (int i = 0; i < 3; i++) {
            double gi = g0[i];
            if (i < 2) /* penalties on weights only */
                gi += 0.01 * w[i] + 0.02 * (w[i] > 0 ? 1 : -1);
            v[i] = 0.9 * v[i] + gi;
            w[i] -= 0.1 * v[i];
        }
        for (int i = 0; i < 3; i++)
            assert_true(fabs(m->params[i] - w[i]) < 1e-6);
    }
    fedc_optim_destroy(&o);
    assert_null(o);
    fedc_model_destroy(&m);
}

static void test_adam_and_adamw(void **state) {
    (void)state;
    for (int decoupled = 0; decoupled < 2; decoupled++) {
        fedc_model *m = tiny_model();
        fedc_optim_cfg c = fedc_optim_defaults();
        c.lr = 0.01f;
        c.weight_decay = decoupled ? 0.1f : 0.0f;
        fedc_optim *o = NULL;
        assert_int_equal(fedc_optim_new(&o, &c, m), FEDC_OK);
        double w[3] = {0.5, -1.0, 0.25}, mo[3] = {0}, vo[3] = {0};
        for (long t = 1; t <= 5; t++) {
            double gd[3] = {0.3 / (double)t, -0.2, 0.1 * (double)t};
            float g[3] = {(float)gd[0], (float)gd[1], (float)gd[2]};
            fedc_optim_step(o, m->params, g, t);
            for (int i = 0; i < 3; i++) {
                if (decoupled && i < 2)
                    w[i] -= 0.01 * 0.1 * w[i];
                mo[i] = 0.9 * mo[i] + 0.1 * gd[i];
                vo[i] = 0.999 * vo[i] + 0.001 * gd[i] * gd[i];
                double mh = mo[i] / (1 - pow(0.9, (double)t)),
                       vh = vo[i] / (1 - pow(0.999, (double)t));
                w[i] -= 0.01 * mh / (sqrt(vh) + 1e-8);
            }
            for (int i = 0; i < 3; i++)
                if (fabs(m->params[i] - w[i]) > 2e-6)
                    fail_msg("adam%s step %ld param %d: got %.8f expected %.8f",
                             decoupled ? "w" : "", t, i, (double)m->params[i], w[i]);
        }
        /* The first Adam step moves every parameter by about lr (sign of the gradient). */
        fedc_optim_destroy(&o);
        fedc_model_destroy(&m);
    }
}

static void test_reset(void **state) {
    (void)state;
    fedc_model *m = tiny_model();
    fedc_optim_cfg c = fedc_optim_defaults();
    fedc_optim *o = NULL;
    assert_int_equal(fedc_optim_new(&o, &c, m), FEDC_OK);
    float g[3] = {1, 1, 1};
    fedc_optim_step(o, m->params, g, 1);
    assert_true(o->m[0] != 0.0f);
    fedc_optim_reset(o);
    for (int i = 0; i < 3; i++)
        assert_true(o->m[i] == 0.0f && o->v[i] == 0.0f);
    assert_int_equal(o->is_weight[0], 1);
    assert_int_equal(o->is_weight[2], 0);
    fedc_optim_destroy(&o);
    fedc_model_destroy(&m);
}

/* FedProx adds prox_mu * (w - w0) to every parameter's gradient, biases included (SGD without
 * momentum makes the update visible directly). */
static void test_fedprox_term(void **state) {
    (void)state;
    fedc_model *m = tiny_model();
    const float centre[3] = {1.0f, 1.0f, 1.0f};
    fedc_optim_cfg c = fedc_optim_defaults();
    c.kind = FEDC_OPT_SGD;
    c.lr = 0.1f;
    c.momentum = 0.0f;
    c.prox_mu = 0.5f;
    c.prox_center = centre;
    fedc_optim *o = NULL;
    assert_int_equal(fedc_optim_new(&o, &c, m), FEDC_OK);
    float g[3] = {0.2f, -0.2f, 0.0f};
    const double w[3] = {0.5, -1.0, 0.25}, g0[3] = {0.2, -0.2, 0.0};
    fedc_optim_step(o, m->params, g, 1);
    for (int i = 0; i < 3; i++) {
        double want = w[i] - 0.1 * (g0[i] + 0.5 * (w[i] - 1.0));
        assert_true(fabs(m->params[i] - want) < 1e-6);
    }
    fedc_optim_destroy(&o);
    fedc_model_destroy(&m);
}

/* 16 rows of a separable-ish binary problem in 2 features, for the fedc_train tests below. */
static fedc_dataset *tiny_data(void) {
    fedc_dataset *ds = NULL;
    assert_int_equal(fedc_dataset_new(&ds, 16, 2), FEDC_OK);
    for (int i = 0; i < 16; i++) {
        ds->x[2 * i] = (float)(i % 4) - 1.5f;
        ds->x[2 * i + 1] = (float)(i / 4) - 1.5f + 0.1f * (float)(i % 3);
        ds->y[i] = ds->x[2 * i] + 0.5f * ds->x[2 * i + 1] > 0.2f ? 1.0f : 0.0f;
    }
    return ds;
}

/* A kept state carries the moments and the step count across calls: two one-epoch calls with it
 * land where one two-epoch call does (full batches, so only the order of the gradient's sum
 * differs), while two fresh calls do not (SGD's momentum restarts); the report counts the
 * call's own steps; a state made for another model is refused. */
static void test_kept_state_across_calls(void **state) {
    (void)state;
    fedc_dataset *ds = tiny_data();
    for (int kind = 0; kind < 2; kind++) {
        fedc_train_cfg cfg = fedc_train_defaults();
        cfg.batch = 16;
        cfg.patience = 0;
        cfg.opt.kind = kind ? FEDC_OPT_ADAM : FEDC_OPT_SGD;
        cfg.opt.lr = kind ? 0.05f : 0.2f;
        fedc_train_report rep;
        fedc_diag d;
        fedc_model *once = tiny_model(), *kept = tiny_model(), *fresh = tiny_model();
        cfg.epochs = 2;
        assert_int_equal(fedc_train(once, ds, NULL, &cfg, &rep, &d), FEDC_OK);
        assert_int_equal(rep.steps, 2);
        cfg.epochs = 1;
        fedc_optim *o = NULL;
        assert_int_equal(fedc_optim_new(&o, &cfg.opt, kept), FEDC_OK);
        fedc_train_cfg kc = cfg;
        kc.opt_state = o;
        for (int call = 0; call < 2; call++) {
            assert_int_equal(fedc_train(kept, ds, NULL, &kc, &rep, &d), FEDC_OK);
            assert_int_equal(rep.steps, 1); /* this call's steps, not the state's */
            assert_int_equal(fedc_train(fresh, ds, NULL, &cfg, &rep, &d), FEDC_OK);
        }
        assert_int_equal(o->t, 2);
        double d_kept = 0, d_fresh = 0;
        for (int i = 0; i < 3; i++) {
            d_kept = fmax(d_kept, fabs(kept->params[i] - once->params[i]));
            d_fresh = fmax(d_fresh, fabs(fresh->params[i] - once->params[i]));
        }
        printf("%s: kept state vs one call %.2g, fresh state vs one call %.2g\n",
               kind ? "adam" : "sgd", d_kept, d_fresh);
        assert_true(d_kept < 1e-5);
        assert_true(d_fresh > 1e-4);
        /* a state of another size */
        fedc_arch arch;
        fedc_model *big = NULL;
        int hidden[] = {4};
        assert_int_equal(
            fedc_arch_make(&arch, 2, hidden, 1, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d), FEDC_OK);
        assert_int_equal(fedc_model_new(&big, &arch), FEDC_OK);
        fedc_model_init(big, 1);
        assert_int_equal(fedc_train(big, ds, NULL, &kc, &rep, &d), FEDC_EINVAL);
        assert_non_null(strstr(d.msg, "optimiser state"));
        assert_int_equal(o->t, 2);
        fedc_model_destroy(&big);
        fedc_optim_destroy(&o);
        fedc_model_destroy(&once);
        fedc_model_destroy(&kept);
        fedc_model_destroy(&fresh);
    }
    fedc_dataset_destroy(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum_and_penalties),
        cmocka_unit_test(test_adam_and_adamw),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_fedprox_term),
        cmocka_unit_test(test_kept_state_across_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
