/* fedc privacy: the RDP accountant of the sampled Gaussian mechanism from the command line
 * (core/fl/include/fedc/dp.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fedc/dp.h"

#define CMD "privacy"

static void usage(FILE *f) {
    fprintf(f,
            "usage: fedc privacy --q Q --sigma S --steps T --delta D [--orders SET]\n"
            "       fedc privacy --q Q --steps T --delta D --target-epsilon E [--orders SET]\n"
            "\n"
            "Privacy spent by T steps of the sampled Gaussian mechanism (sampling rate Q,\n"
            "noise multiplier S): RDP (Mironov et al. 2019) minimised over a set of orders and\n"
            "converted to (epsilon, delta) with the classic bound. Prints\n"
            "'epsilon = X.XXX (order A)'. With --target-epsilon instead of --sigma: the\n"
            "smallest noise multiplier that stays within the target, as\n"
            "'sigma = X.XXXX (epsilon Y.YYY at order A)'.\n"
            "\n"
            "  --q Q               sampling rate per step, 0..1 (clients per round / clients, or\n"
            "                      batch / rows for DP-SGD)\n"
            "  --sigma S           noise multiplier (noise sd / clipping norm)\n"
            "  --steps T           steps (rounds, or DP-SGD iterations)\n"
            "  --delta D           delta, 0 < D < 1 (e.g. 1e-5)\n"
            "  --target-epsilon E  solve for sigma instead\n"
            "  --orders SET        'default': 1.25..10 in steps of 0.25, then 11..%d;\n"
            "                      'integer': %d..%d (default: default)\n"
            "  -h, --help          this message\n",
            FEDC_RDP_MAX_ORDER, FEDC_RDP_MIN_ORDER, FEDC_RDP_MAX_ORDER);
}

int cmd_privacy(int argc, char **argv) {
    float q = -1, sigma = -1, delta = -1, target = -1, steps = -1;
    int integer_orders = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return FEDC_EXIT_OK;
        }
        char flag[64];
        const char *v;
        if (cli_flag_value(CMD, argc, argv, &i, flag, sizeof flag, &v))
            return FEDC_EXIT_USAGE;
        int bad = 0;
        if (strcmp(flag, "--q") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1.0, 0, &q);
        else if (strcmp(flag, "--sigma") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &sigma);
        else if (strcmp(flag, "--steps") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e12, 0, &steps);
        else if (strcmp(flag, "--delta") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1.0, 1, &delta);
        else if (strcmp(flag, "--target-epsilon") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &target);
        else if (strcmp(flag, "--orders") == 0) {
            if (strcmp(v, "default") == 0 || strcmp(v, "integer") == 0)
                integer_orders = strcmp(v, "integer") == 0;
            else {
                cli_error(CMD, "--orders: expected 'default' or 'integer', got '%s'", v);
                bad = 1;
            }
        } else {
            cli_error(CMD, "unknown option '%s' (see fedc privacy --help)", flag);
            return FEDC_EXIT_USAGE;
        }
        if (bad)
            return FEDC_EXIT_USAGE;
    }
    if (q < 0 || steps < 0 || delta < 0 || (sigma < 0) == (target < 0)) {
        cli_error(CMD, "%s (see fedc privacy --help)",
                  q < 0                       ? "--q is required"
                  : steps < 0                 ? "--steps is required"
                  : delta < 0                 ? "--delta is required"
                  : (sigma < 0 && target < 0) ? "--sigma or --target-epsilon is required"
                                              : "give --sigma or --target-epsilon, not both");
        return FEDC_EXIT_USAGE;
    }
    if (delta >= 1.0f) {
        cli_error(CMD, "--delta: expected 0 < D < 1, got %g", (double)delta);
        return FEDC_EXIT_USAGE;
    }
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
