/* The RDP accountant against SECURITY.md's reference values (to 1e-3), per step and end to end,
 * and the noise multiplier derived from a target epsilon. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fedc/dp.h"

static void test_per_step(void **state) {
    (void)state;
    /* q = 0.01, sigma = 1, alpha = 2 -> 1.7181342e-4; q = 0.1, sigma = 2, alpha = 16 ->
     * 0.04529184 (relative 1e-3). */
    double a = fedc_rdp_sgm(0.01, 1.0, 2), b = fedc_rdp_sgm(0.1, 2.0, 16);
    print_message("rdp: %.8g and %.8g\n", a, b);
    assert_true(fabs(a - 1.7181342e-4) <= 1e-3 * 1.7181342e-4);
    assert_true(fabs(b - 0.04529184) <= 1e-3 * 0.04529184);
    /* Without sampling it is the Gaussian mechanism's alpha / (2 sigma^2); q = 0 costs nothing. */
    assert_true(fabs(fedc_rdp_sgm(1.0, 2.0, 8) - 1.0) < 1e-12);
    assert_true(fedc_rdp_sgm(0.0, 2.0, 8) == 0.0);
    assert_true(isnan(fedc_rdp_sgm(0.1, 0.0, 8)));
}

static void test_end_to_end(void **state) {
    (void)state;
    double e;
    int order;
    fedc_diag d;
    /* q = 256/60000, sigma = 1.12, T = 14062, delta = 1e-5 -> 2.922 */
    assert_int_equal(fedc_dp_epsilon(&e, &order, 256.0 / 60000.0, 1.12, 14062, 1e-5, &d), FEDC_OK);
    print_message("epsilon %.4f at order %d (reference 2.922)\n", e, order);
    assert_true(fabs(e - 2.922) <= 1e-3);
    /* q = 0.01, sigma = 1.0, T = 1000, delta = 1e-5 -> 2.538 */
    assert_int_equal(fedc_dp_epsilon(&e, &order, 0.01, 1.0, 1000, 1e-5, &d), FEDC_OK);
    print_message("epsilon %.4f at order %d (reference 2.538)\n", e, order);
    assert_true(fabs(e - 2.538) <= 1e-3);
    assert_int_equal(fedc_dp_epsilon(&e, &order, 1.5, 1.0, 1000, 1e-5, &d), FEDC_EINVAL);
    assert_int_equal(fedc_dp_epsilon(&e, &order, 0.01, 1.0, 1000, 0.0, &d), FEDC_EINVAL);
}

static void test_sigma_for_target(void **state) {
    (void)state;
    double sigma, e;
    fedc_diag d;
    assert_int_equal(fedc_dp_sigma_for(&sigma, 0.01, 1000, 1e-5, 2.538, &d), FEDC_OK);
    assert_true(fabs(sigma - 1.0) < 0.01);
    assert_int_equal(fedc_dp_epsilon(&e, NULL, 0.01, sigma, 1000, 1e-5, &d), FEDC_OK);
    assert_true(e <= 2.538 + 1e-9);
    assert_int_equal(fedc_dp_sigma_for(&sigma, 1.0, 1e9, 1e-5, 1e-6, &d), FEDC_ERANGE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_step),
        cmocka_unit_test(test_end_to_end),
        cmocka_unit_test(test_sigma_for_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
