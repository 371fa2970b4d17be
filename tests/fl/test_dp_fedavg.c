/* Client-level DP-FedAvg maths (core/fl dp_fedavg.h): Poisson sampling at rate q (edge rates
 * exact, the count's mean and variance within a few standard errors over many draws, a wrong
 * rate fails the same check), the update's noise multiplier under adaptive clipping against the
 * formula and its refusal, the grid sensitivity's terms, the grid choice at the sampler's limit,
 * and the adaptive clip step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>

#include "fedc/dp.h"
#include "fedc/dp_fedavg.h"

/* z of the sample mean of the counts of `rounds` Poisson samples of n at rate q against q n. */
static double count_z(int n, double q, int rounds, double true_q) {
    int *chosen = malloc(sizeof(int) * (size_t)n);
    assert_non_null(chosen);
    double sum = 0;
    for (int r = 0; r < rounds; r++) {
        int k = fedc_dpfa_sample(chosen, n, true_q);
        for (int i = 1; i < k; i++)
            assert_true(chosen[i] > chosen[i - 1]);
        sum += k;
    }
    free(chosen);
    double mean = sum / rounds, sd = sqrt(n * q * (1 - q) / rounds);
    return (mean - q * n) / sd;
}

static void test_sampling(void **state) {
    (void)state;
    assert_true(sodium_init() >= 0);
    int chosen[50];
    assert_int_equal(fedc_dpfa_sample(chosen, 50, 1.0), 50);
    for (int i = 0; i < 50; i++)
        assert_int_equal(chosen[i], i);
    assert_int_equal(fedc_dpfa_sample(chosen, 50, 0.0), 0);
    double z = count_z(1000, 0.1, 400, 0.1);
    print_message("q 0.1: z of the mean count %.2f\n", z);
    assert_true(fabs(z) < 5.0);
    /* Negative control: drawing at 0.11 fails the check for 0.1. */
    double zc = count_z(1000, 0.1, 400, 0.11);
    print_message("drawn at 0.11, checked against 0.1: z %.2f\n", zc);
    assert_true(fabs(zc) > 5.0);
}

static void test_update_multiplier(void **state) {
    (void)state;
    fedc_diag d;
    double zu = 0;
    assert_int_equal(fedc_dpfa_update_multiplier(&zu, 1.0, 5.0, &d), FEDC_OK);
    assert_true(fabs(zu - 1.0 / sqrt(1.0 - 1.0 / 100.0)) < 1e-12);
    assert_true(zu > 1.0);
    /* Both releases together cost z: 1/zu^2 + 1/(2 sigma_b)^2 = 1/z^2. */
    assert_true(fabs(1.0 / (zu * zu) + 1.0 / 100.0 - 1.0) < 1e-12);
    assert_int_equal(fedc_dpfa_update_multiplier(&zu, 2.0, 1.0, &d), FEDC_EINVAL);
    assert_int_equal(fedc_dpfa_update_multiplier(&zu, 1.0, 0.5, &d), FEDC_EINVAL);
    assert_int_equal(fedc_dpfa_update_multiplier(&zu, 0.0, 5.0, &d), FEDC_EINVAL);
}

static void test_grid(void **state) {
    (void)state;
    fedc_diag d;
    /* scale c / m + sqrt(n) (2 + scale 2^-25 / m) + 1 */
    double s = 1000.0, c = 2.0;
    double g1 = fedc_dpfa_grid_sensitivity(s, c, 1.0, 10000);
    assert_true(fabs(g1 - (2000.0 + 100.0 * (2.0 + 1000.0 * 0x1p-25) + 1.0)) < 1e-9);
    double g4 = fedc_dpfa_grid_sensitivity(s, c, 4.0, 10000);
    assert_true(g4 < g1);
    assert_true(fabs(g4 - (500.0 + 100.0 * (2.0 + 250.0 * 0x1p-25) + 1.0)) < 1e-9);
    /* A small noise fits the quantiser's own grid. */
    double m = 0, sigma = 0;
    assert_int_equal(fedc_dpfa_grid(&m, &sigma, 1.0, s, c, 10000, &d), FEDC_OK);
    assert_true(m == 1.0);
    assert_true(fabs(sigma - g1) < 1e-9);
    /* A clip norm so large that the sd leaves the sampler's range on the fine grid: a coarser
     * power-of-two grid brings it back under FEDC_DGAUSS_MAX_SIGMA. */
    double big_c = 4.0 * FEDC_DGAUSS_MAX_SIGMA / s;
    assert_int_equal(fedc_dpfa_grid(&m, &sigma, 1.0, s, big_c, 100, &d), FEDC_OK);
    assert_true(m >= 4.0);
    assert_true(sigma <= FEDC_DGAUSS_MAX_SIGMA);
    assert_true(1.0 * fedc_dpfa_grid_sensitivity(s, big_c, m / 2, 100) > FEDC_DGAUSS_MAX_SIGMA);
    /* Hopeless: no grid fits. */
    assert_int_equal(fedc_dpfa_grid(&m, &sigma, 1e30, s, c, 100, &d), FEDC_ERANGE);
}

static void test_clip_step(void **state) {
    (void)state;
    assert_true(fabs(fedc_dpfa_clip_step(2.0, 0.5, 0.2, 0.5) - 2.0) < 1e-12);
    assert_true(fabs(fedc_dpfa_clip_step(2.0, 1.0, 0.2, 0.5) - 2.0 * exp(-0.1)) < 1e-12);
    assert_true(fabs(fedc_dpfa_clip_step(2.0, 0.0, 0.2, 0.5) - 2.0 * exp(0.1)) < 1e-12);
    assert_true(fedc_dpfa_clip_step(1e-9, 100.0, 1.0, 0.5) == 1e-9);
    assert_true(fedc_dpfa_clip_step(1e6, -100.0, 1.0, 0.5) == 1e6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_update_multiplier),
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_clip_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
