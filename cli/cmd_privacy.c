/* fedc privacy: the RDP accountant of the sampled Gaussian mechanism from the command line
 * (core/fl/include/fedc/dp.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fedc/dp.h"

#define CMD "privacy"

static const fedc_prog_help g_help = {
    "usage: fedc privacy --q Q --sigma S --steps T --delta D [--orders SET]\n"
    "       fedc privacy --q Q --steps T --delta D --target-epsilon E [--orders SET]",
    "Privacy spent by T steps of the sampled Gaussian mechanism (sampling rate Q,\n"
    "noise multiplier S): RDP (Mironov et al. 2019) minimised over a set of orders and\n"
    "converted to (epsilon, delta) with the classic bound. Prints\n"
    "'epsilon = X.XXX (order A)'. With --target-epsilon instead of --sigma: the\n"
    "smallest noise multiplier that stays within the target, as\n"
    "'sigma = X.XXXX (epsilon Y.YYY at order A)'.",
    NULL};

int cmd_privacy(int argc, char **argv) {
    /* --orders' help states the range of core/fl's accountant */
    _Static_assert(FEDC_RDP_MIN_ORDER == 2 && FEDC_RDP_MAX_ORDER == 256,
                   "update --orders' help in core/prog/options.h");
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_PRIVACY, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
#define HAS(id) fedc_opt_has(&op, FEDC_O_##id)
    if (!HAS(Q) || !HAS(STEPS) || !HAS(DELTA) || HAS(SIGMA) == HAS(TARGET_EPSILON)) {
        cli_error(CMD, "%s (see fedc privacy --help)",
                  !HAS(Q)       ? "--q is required"
                  : !HAS(STEPS) ? "--steps is required"
                  : !HAS(DELTA) ? "--delta is required"
                  : !HAS(SIGMA) && !HAS(TARGET_EPSILON)
                      ? "--sigma or --target-epsilon is required"
                      : "give --sigma or --target-epsilon, not both");
        return FEDC_EXIT_USAGE;
    }
    /* Rounded to float as they always were here, so that the figures printed (and the
     * references in README and docs/security.md) stay the same digits. */
    float q = (float)op.v[FEDC_O_Q].r, steps = (float)op.v[FEDC_O_STEPS].r;
    float delta = (float)op.v[FEDC_O_DELTA].r;
    float sigma = HAS(SIGMA) ? (float)op.v[FEDC_O_SIGMA].r : -1;
    float target = HAS(TARGET_EPSILON) ? (float)op.v[FEDC_O_TARGET_EPSILON].r : -1;
    int integer_orders = strcmp(op.v[FEDC_O_ORDERS].text, "integer") == 0;
#undef HAS
    fedc_diag d;
    double eps, order, orders[FEDC_DP_MAX_ORDERS];
    int n_orders = integer_orders ? fedc_dp_orders_integer(orders) : fedc_dp_orders_default(orders);
    if (target > 0) {
        double s;
        fedc_err rc = fedc_dp_sigma_for_orders(&s, q, steps, delta, target, orders, n_orders, &d);
        if (rc) {
            cli_error(CMD, "%s", d.msg);
            return rc == FEDC_ERANGE ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
        }
        if (fedc_dp_epsilon_orders(&eps, &order, q, s, steps, delta, orders, n_orders, &d)) {
            cli_error(CMD, "%s", d.msg);
            return FEDC_EXIT_USAGE;
        }
        printf("sigma = %.4f (epsilon %.3f at order %g)\n", s, eps, order);
        return FEDC_EXIT_OK;
    }
    if (fedc_dp_epsilon_orders(&eps, &order, q, sigma, steps, delta, orders, n_orders, &d)) {
        cli_error(CMD, "%s", d.msg);
        return FEDC_EXIT_USAGE;
    }
    printf("epsilon = %.3f (order %g)\n", eps, order);
    return FEDC_EXIT_OK;
}
