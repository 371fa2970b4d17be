/* Model layout: the flat parameter buffer, its named views, architecture limits and
 * initialisation statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "fedc/data.h"
#include "fedc/model.h"
#include "fedc/train.h"

/* Named views cover the flat buffer exactly, in order, and find the right pointers. */
static void test_named_views(void **state) {
    (void)state;
    int hidden[] = {5, 3};
    fedc_arch arch;
    fedc_diag d;
    fedc_model *m = NULL;
    assert_int_equal(
        fedc_arch_make(&arch, 4, hidden, 2, FEDC_ACT_RELU, FEDC_TASK_MULTICLASS, 3, &d), FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    fedc_param_view v[8];
    assert_int_equal(fedc_model_views(m, v, 8), 6);
    size_t off = 0;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(v[i].offset, off);
        off += (size_t)v[i].rows * v[i].cols;
    }
    assert_int_equal(off, m->n_params);
    assert_int_equal(m->n_params, 4 * 5 + 5 + 5 * 3 + 3 + 3 * 3 + 3);
    int r, c;
    assert_ptr_equal(fedc_model_param(m, "dense1.weight", &r, &c), m->w[1]);
    assert_int_equal(r, 5);
    assert_int_equal(c, 3);
    assert_ptr_equal(fedc_model_param(m, "dense2.bias", &r, &c), m->b[2]);
    assert_int_equal(c, 3);
    assert_null(fedc_model_param(m, "dense3.bias", NULL, NULL));
    fedc_model_destroy(&m);
}

/* Architecture limits are refused with a message, not a crash. */
static void test_arch_limits(void **state) {
    (void)state;
    fedc_arch arch;
    fedc_diag d = {{0}};
    int bad[] = {64, 0};
    assert_int_equal(fedc_arch_make(&arch, 10, bad, 2, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d),
                     FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "hidden layer 2"));
    int many[FEDC_MAX_LAYERS];
    for (int i = 0; i < FEDC_MAX_LAYERS; i++)
        many[i] = 4;
    assert_int_equal(
        fedc_arch_make(&arch, 10, many, FEDC_MAX_LAYERS, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d),
        FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "too many hidden layers"));
    assert_int_equal(fedc_arch_make(&arch, 10, NULL, 0, FEDC_ACT_RELU, FEDC_TASK_MULTICLASS, 2, &d),
                     FEDC_EINVAL);
    assert_int_equal(fedc_arch_make(&arch, 10, NULL, 0, FEDC_ACT_SOFTMAX, FEDC_TASK_BINARY, 2, &d),
                     FEDC_EINVAL);
}

/* He initialisation for ReLU layers (sd sqrt(2/fan_in)), Glorot for the sigmoid output
 * (sd sqrt(2/(fan_in+fan_out))), zero biases, and the same seed gives the same weights. */
static void test_init_statistics(void **state) {
    (void)state;
    int hidden[] = {400};
    fedc_arch arch;
    fedc_diag d;
    fedc_model *m = NULL, *m2 = NULL;
    assert_int_equal(fedc_arch_make(&arch, 200, hidden, 1, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    assert_int_equal(fedc_model_new(&m2, &arch), FEDC_OK);
    fedc_model_init(m, 5);
    fedc_model_init(m2, 5);
    assert_memory_equal(m->params, m2->params, m->n_params * sizeof(float));
    fedc_model_init(m2, 6);
    assert_memory_not_equal(m->params, m2->params, m->n_params * sizeof(float));
    double s = 0, s2 = 0;
    const int n0 = 200 * 400;
    for (int i = 0; i < n0; i++) {
        s += m->w[0][i];
        s2 += (double)m->w[0][i] * m->w[0][i];
    }
    double sd = sqrt(s2 / n0 - (s / n0) * (s / n0));
    /* 80,000 draws: the sample sd is within 1% of sqrt(2/200) = 0.1 with a wide margin. */
    assert_true(fabs(sd - 0.1) < 0.002);
    assert_true(fabs(s / n0) < 0.002);
    for (int j = 0; j < 400; j++)
        assert_true(m->b[0][j] == 0.0f);
    s2 = 0;
    for (int i = 0; i < 400; i++)
        s2 += (double)m->w[1][i] * m->w[1][i];
    double sd1 = sqrt(s2 / 400), want = sqrt(2.0 / 401.0);
    assert_true(fabs(sd1 - want) < 0.15 * want);
    fedc_model_destroy(&m);
    fedc_model_destroy(&m2);
    assert_null(m);
}

/* set_schema may be given the model's own names (they are copied before the old ones go). */
static void test_set_schema_self(void **state) {
    (void)state;
    fedc_arch arch;
    fedc_diag d;
    fedc_model *m = NULL;
    assert_int_equal(fedc_arch_make(&arch, 2, NULL, 0, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    char a[] = "age", b[] = "income";
    char *names[] = {a, b};
    float mean[] = {1, 2}, sd[] = {3, 4};
    assert_int_equal(fedc_model_set_schema(m, names, "bad", mean, sd), FEDC_OK);
    assert_int_equal(fedc_model_set_schema(m, m->feature_names, m->label_name, m->mean, m->std),
                     FEDC_OK);
    assert_string_equal(m->feature_names[1], "income");
    assert_string_equal(m->label_name, "bad");
    assert_true(m->std[1] == 4.0f);
    fedc_model_destroy(&m);
}

/* The positive-class weight is negatives / positives, and 1 when a class is absent. */
static void test_pos_weight(void **state) {
    (void)state;
    fedc_dataset *ds = NULL;
    assert_int_equal(fedc_dataset_new(&ds, 5, 1), FEDC_OK);
    float y[] = {1, 0, 0, 0, 1};
    memcpy(ds->y, y, sizeof y);
    assert_true(fedc_dataset_pos_weight(ds) == 1.5f);
    for (int i = 0; i < 5; i++)
        ds->y[i] = 1.0f;
    assert_true(fedc_dataset_pos_weight(ds) == 1.0f);
    for (int i = 0; i < 5; i++)
        ds->y[i] = 0.0f;
    assert_true(fedc_dataset_pos_weight(ds) == 1.0f);
    fedc_dataset_destroy(&ds);
}

/* fedc_eval_loss refuses data that does not fit the model instead of reading out of bounds. */
static void test_eval_loss_checks_data(void **state) {
    (void)state;
    fedc_arch arch;
    fedc_diag d;
    fedc_model *m = NULL;
    fedc_dataset *ds = NULL;
    assert_int_equal(fedc_arch_make(&arch, 3, NULL, 0, FEDC_ACT_RELU, FEDC_TASK_MULTICLASS, 3, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    assert_int_equal(fedc_dataset_new(&ds, 4, 2), FEDC_OK);
    double loss = 0.0;
    assert_int_equal(fedc_eval_loss(&loss, m, ds), FEDC_EMISMATCH);
    fedc_dataset_destroy(&ds);
    assert_int_equal(fedc_dataset_new(&ds, 4, 3), FEDC_OK);
    ds->y[2] = 3.0f; /* class 3 of a 3-class model */
    assert_int_equal(fedc_eval_loss(&loss, m, ds), FEDC_EINVAL);
    ds->y[2] = 2.0f;
    assert_int_equal(fedc_eval_loss(&loss, m, ds), FEDC_OK);
    /* Zero weights: every class has probability 1/3. */
    assert_true(fabs(loss - log(3.0)) < 1e-6);
    fedc_dataset_destroy(&ds);
    fedc_model_destroy(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_views),     cmocka_unit_test(test_arch_limits),
        cmocka_unit_test(test_init_statistics), cmocka_unit_test(test_set_schema_self),
        cmocka_unit_test(test_pos_weight),      cmocka_unit_test(test_eval_loss_checks_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
