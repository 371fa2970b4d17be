/* Pure helpers of the toolbox (core/prog/util.c): card precision@k on hand-computed days, and the
 * operating thresholds for an alert budget and a minimum precision. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "prog.h"

static void test_card_precision(void **state) {
    (void)state;
    /* day 0: A .9 fraud, B .8 legit, C .1 fraud          top 2 = {A, B}: 1/2
     * day 1: A .2 legit and .95 fraud (score .95, fraud), D .5 fraud: top 2 = {A, D}: 2/2
     * day 2: E .3 fraud only                              1 fraud / k = 1/2 */
    const float score[] = {0.9f, 0.8f, 0.1f, 0.2f, 0.95f, 0.5f, 0.3f};
    const float y[] = {1, 0, 1, 0, 1, 1, 1};
    const float card[] = {1, 2, 3, 1, 1, 4, 5};
    const float day[] = {0, 0, 0, 1, 1, 1, 2};
    int days = 0;
    double cp = cli_card_precision(score, y, card, day, 7, 2, &days);
    assert_int_equal(days, 3);
    assert_true(fabs(cp - (0.5 + 1.0 + 0.5) / 3.0) < 1e-12);
    /* k = 1: day 0 A (fraud), day 1 A (fraud), day 2 E (fraud). */
    cp = cli_card_precision(score, y, card, day, 7, 1, &days);
    assert_true(fabs(cp - 1.0) < 1e-12);
}

static void test_thresholds(void **state) {
    (void)state;
    const float s[] = {0.1f, 0.9f, 0.5f, 0.7f, 0.3f, 0.8f, 0.2f, 0.6f, 0.4f, 0.95f};
    const float y[] = {0, 1, 0, 1, 0, 0, 0, 1, 0, 1};
    /* 20% of 10 rows: the 2 highest (0.95, 0.9) are flagged at 0.9. */
    assert_true(cli_threshold_budget(s, 10, 0.2f) == 0.9f);
    /* Under one row: nothing flagged, a threshold above every score. */
    assert_true(cli_threshold_budget(s, 10, 0.05f) > 1.0f);
    /* Precision >= 0.75: flagging down to 0.7 gives 3 of 4 (0.95, 0.9, 0.8, 0.7); down to 0.6
     * 4 of 5 = 0.8 is the lowest threshold that still reaches it. */
    assert_true(cli_threshold_precision(s, y, 10, 0.75f) == 0.6f);
    /* Flagging the top 20% (0.95 and 0.9, both positive) finds 2 of the 4 positives; 25% rounds
     * up to 3 rows (adding 0.8, negative). */
    assert_true(fabs(cli_recall_at_budget(s, y, 10, 0.2) - 0.5) < 1e-12);
    assert_true(fabs(cli_recall_at_budget(s, y, 10, 0.25) - 0.5) < 1e-12);
    assert_true(fabs(cli_recall_at_budget(s, y, 10, 0.4) - 0.75) < 1e-12);
    /* Precision 1: only the top two. */
    assert_true(cli_threshold_precision(s, y, 10, 1.0f) == 0.9f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_card_precision),
        cmocka_unit_test(test_thresholds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
