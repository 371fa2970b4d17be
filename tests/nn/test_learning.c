/* Learning end to end: XOR, the German credit data (test ROC-AUC >= 0.75 with a small MLP),
 * early stopping that restores the best weights, and bit-identical training for 1 and 2 threads
 * with dropout on. */
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

#include "fedc/data.h"
#include "fedc/metrics.h"
#include "fedc/model.h"
#include "fedc/train.h"

#define GERMAN FEDC_SOURCE_DIR "/tests/fixtures/german_credit/german_credit_numeric.csv"

static void test_xor(void **state) {
    (void)state;
    fedc_dataset *ds = NULL;
    assert_int_equal(fedc_dataset_new(&ds, 64, 2), FEDC_OK);
    for (int i = 0; i < 64; i++) {
        int a = i & 1, b = (i >> 1) & 1;
        ds->x[2 * i] = (float)a;
        ds->x[2 * i + 1] = (float)b;
        ds->y[i] = (float)(a ^ b);
    }
    int hidden[] = {8};
    fedc_arch arch;
    fedc_diag d;
    fedc_model *m = NULL;
    assert_int_equal(fedc_arch_make(&arch, 2, hidden, 1, FEDC_ACT_TANH, FEDC_TASK_BINARY, 2, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    fedc_model_init(m, 5);
    fedc_train_cfg cfg = fedc_train_defaults();
    cfg.epochs = 300;
    cfg.batch = 16;
    cfg.opt.lr = 0.03f;
    cfg.patience = 0;
    fedc_train_report rep;
    assert_int_equal(fedc_train(m, ds, NULL, &cfg, &rep, &d), FEDC_OK);
    float p[4];
    const float q[] = {0, 0, 1, 0, 0, 1, 1, 1};
    assert_int_equal(fedc_model_predict(p, m, q, 4), FEDC_OK);
    printf("xor: p(0,0)=%.3f p(1,0)=%.3f p(0,1)=%.3f p(1,1)=%.3f loss %.4f\n", (double)p[0],
           (double)p[1], (double)p[2], (double)p[3], rep.final_train_loss);
    assert_true(p[0] < 0.1f && p[1] > 0.9f && p[2] > 0.9f && p[3] < 0.1f);
    fedc_model_destroy(&m);
    fedc_dataset_destroy(&ds);
}

/* Loads the fixture, splits 60/20/20 stratified, standardises with training statistics. */
static void german_splits(fedc_dataset **train, fedc_dataset **val, fedc_dataset **test,
                          float *mean, float *std) {
    fedc_dataset *all = NULL;
    fedc_diag d;
    assert_int_equal(fedc_csv_load(&all, GERMAN, "bad", NULL, 0, &d), FEDC_OK);
    assert_int_equal(fedc_dataset_split(train, val, test, all, FEDC_TASK_BINARY, 0.2, 0.2, 11),
                     FEDC_OK);
    fedc_dataset_stats(mean, std, *train);
    fedc_dataset_standardize(*train, mean, std);
    fedc_dataset_standardize(*val, mean, std);
    fedc_dataset_standardize(*test, mean, std);
    fedc_dataset_destroy(&all);
}

static void test_german_credit(void **state) {
    (void)state;
    fedc_dataset *train = NULL, *val = NULL, *test = NULL;
    float mean[24], std[24];
    german_splits(&train, &val, &test, mean, std);
    int hidden[] = {16};
    fedc_arch arch;
    fedc_diag d;
    fedc_model *m = NULL;
    assert_int_equal(fedc_arch_make(&arch, 24, hidden, 1, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    fedc_model_init(m, 1);
    fedc_train_cfg cfg = fedc_train_defaults();
    cfg.epochs = 60;
    cfg.batch = 32;
    cfg.dropout = 0.2f;
    cfg.opt.l2 = 1e-3f;
    cfg.patience = 8;
    cfg.pos_weight = fedc_dataset_pos_weight(train);
    fedc_train_report rep;
    assert_int_equal(fedc_train(m, train, val, &cfg, &rep, &d), FEDC_OK);
    float *p = malloc((size_t)test->n_rows * sizeof(float));
    assert_non_null(p);
    assert_int_equal(fedc_model_predict_std(p, m, test->x, test->n_rows), FEDC_OK);
    fedc_binary_metrics bm;
    assert_int_equal(fedc_metrics_binary(&bm, p, test->y, test->n_rows, 0.5f), FEDC_OK);
    printf("german credit: %d epochs (best %d), test ROC-AUC %.4f PR-AUC %.4f accuracy %.4f\n",
           rep.epochs_run, rep.best_epoch, bm.roc_auc, bm.pr_auc, bm.accuracy);
    assert_true(bm.roc_auc >= 0.75);
    free(p);
    fedc_model_destroy(&m);
    fedc_dataset_destroy(&train);
    fedc_dataset_destroy(&val);
    fedc_dataset_destroy(&test);
}

typedef struct epoch_log {
    int n;
    double val_loss[512];
} epoch_log;

static void log_epoch(void *ctx, const fedc_epoch_info *e) {
    epoch_log *lg = ctx;
    if (lg->n < 512)
        lg->val_loss[lg->n++] = e->val_loss;
}

/* A wide network with a high learning rate overfits quickly; early stopping must stop and leave
 * the model at the best epoch's validation loss, not the last one's. */
static void test_early_stopping_restores_best(void **state) {
    (void)state;
    fedc_dataset *train = NULL, *val = NULL, *test = NULL;
    float mean[24], std[24];
    german_splits(&train, &val, &test, mean, std);
    int hidden[] = {128, 128};
    fedc_arch arch;
    fedc_diag d;
    fedc_model *m = NULL;
    assert_int_equal(fedc_arch_make(&arch, 24, hidden, 2, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    fedc_model_init(m, 2);
    epoch_log lg = {0};
    fedc_train_cfg cfg = fedc_train_defaults();
    cfg.epochs = 200;
    cfg.batch = 16;
    cfg.opt.lr = 3e-3f;
    cfg.patience = 3;
    cfg.on_epoch = log_epoch;
    cfg.ctx = &lg;
    fedc_train_report rep;
    assert_int_equal(fedc_train(m, train, val, &cfg, &rep, &d), FEDC_OK);
    printf("early stopping: ran %d epochs, best %d\n", rep.epochs_run, rep.best_epoch);
    assert_true(rep.epochs_run < 200);
    assert_int_equal(rep.epochs_run, rep.best_epoch + 3);
    double best = INFINITY;
    for (int e = 0; e < lg.n; e++)
        best = fmin(best, lg.val_loss[e]);
    assert_true(lg.val_loss[lg.n - 1] > best);
    double now;
    assert_int_equal(fedc_eval_loss(&now, m, val), FEDC_OK);
    assert_true(fabs(now - best) < 1e-9);
    assert_true(fabs(lg.val_loss[rep.best_epoch - 1] - best) < 1e-12);
    fedc_model_destroy(&m);
    fedc_dataset_destroy(&train);
    fedc_dataset_destroy(&val);
    fedc_dataset_destroy(&test);
}

/* Same seed, dropout on: 1 and 2 threads give the same bits; the team really had 2 threads. */
static void test_thread_count_invariance(void **state) {
    (void)state;
#ifdef _OPENMP
    fedc_dataset *train = NULL, *val = NULL, *test = NULL;
    float mean[24], std[24];
    german_splits(&train, &val, &test, mean, std);
    int hidden[] = {37, 19};
    fedc_arch arch;
    fedc_diag d;
    assert_int_equal(fedc_arch_make(&arch, 24, hidden, 2, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d),
                     FEDC_OK);
    fedc_model *m[2] = {NULL, NULL};
    for (int t = 0; t < 2; t++) {
        assert_int_equal(fedc_model_new(&m[t], &arch), FEDC_OK);
        fedc_model_init(m[t], 9);
        fedc_train_cfg cfg = fedc_train_defaults();
        cfg.epochs = 4;
        cfg.batch = 50;
        cfg.dropout = 0.3f;
        cfg.pos_weight = 2.0f;
        omp_set_dynamic(0);
        omp_set_num_threads(t + 1);
        fedc_train_report rep;
        assert_int_equal(fedc_train(m[t], train, val, &cfg, &rep, &d), FEDC_OK);
        assert_int_equal(rep.threads_used, t + 1);
    }
    assert_memory_equal(m[0]->params, m[1]->params, m[0]->n_params * sizeof(float));
    for (int t = 0; t < 2; t++)
        fedc_model_destroy(&m[t]);
    fedc_dataset_destroy(&train);
    fedc_dataset_destroy(&val);
    fedc_dataset_destroy(&test);
#else
    skip();
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xor),
        cmocka_unit_test(test_german_credit),
        cmocka_unit_test(test_early_stopping_restores_best),
        cmocka_unit_test(test_thread_count_invariance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
