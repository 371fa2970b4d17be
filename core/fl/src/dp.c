/* RDP accountant of the sampled Gaussian mechanism (contract in dp.h). */
#include "fedc/dp.h"

#include <math.h>

static double log_add(double a, double b) {
    if (a == -INFINITY)
        return b;
    if (b == -INFINITY)
        return a;
    double m = a > b ? a : b;
    return m + log1p(exp(-fabs(a - b)));
}

double fedc_rdp_sgm(double q, double sigma, int alpha) {
    if (!(q >= 0 && q <= 1) || !(sigma > 0) || alpha < 2)
        return NAN;
    if (q == 0)
        return 0.0;
    if (q == 1) /* no sampling: the Gaussian mechanism, alpha / (2 sigma^2) */
        return alpha / (2.0 * sigma * sigma);
    double la = -INFINITY, lq = log(q), l1q = log1p(-q);
    for (int i = 0; i <= alpha; i++) {
        double lc = lgamma(alpha + 1.0) - lgamma(i + 1.0) - lgamma(alpha - i + 1.0);
        double t = lc + (alpha - i) * l1q + i * lq + ((double)i * i - i) / (2.0 * sigma * sigma);
        la = log_add(la, t);
    }
    return la / (alpha - 1.0);
}

fedc_err fedc_dp_epsilon(double *epsilon, int *best_order, double q, double sigma, double steps,
                         double delta, fedc_diag *d) {
    if (!(q >= 0 && q <= 1) || !(sigma > 0) || !(steps >= 0) || !(delta > 0 && delta < 1) ||
        !isfinite(sigma) || !isfinite(steps)) {
        fedc_diag_set(d,
                      "privacy: need 0 <= q <= 1, sigma > 0, steps >= 0 and 0 < delta < 1, got "
                      "q %g, sigma %g, steps %g, delta %g",
                      q, sigma, steps, delta);
        return FEDC_EINVAL;
    }
    double best = INFINITY;
    int order = FEDC_RDP_MIN_ORDER;
    for (int a = FEDC_RDP_MIN_ORDER; a <= FEDC_RDP_MAX_ORDER; a++) {
        double e = steps * fedc_rdp_sgm(q, sigma, a) + log(1.0 / delta) / (a - 1.0);
        if (e < best) {
            best = e;
            order = a;
        }
    }
    *epsilon = best;
    if (best_order)
        *best_order = order;
    return FEDC_OK;
}

fedc_err fedc_dp_sigma_for(double *sigma, double q, double steps, double delta,
                           double target_epsilon, fedc_diag *d) {
    double e;
    if (!(target_epsilon > 0)) {
        fedc_diag_set(d, "privacy: the target epsilon must be positive, got %g", target_epsilon);
        return FEDC_EINVAL;
    }
    double lo = 1e-3, hi = 1000;
    fedc_err rc = fedc_dp_epsilon(&e, NULL, q, hi, steps, delta, d);
    if (rc)
        return rc;
    if (e > target_epsilon) {
        fedc_diag_set(d, "privacy: epsilon %g is out of reach even with noise multiplier %g",
                      target_epsilon, hi);
        return FEDC_ERANGE;
    }
    /* epsilon falls as sigma grows: bisect on a log scale. */
    while (hi / lo > 1 + 1e-4) {
        double mid = sqrt(lo * hi);
        if (fedc_dp_epsilon(&e, NULL, q, mid, steps, delta, d))
            return FEDC_EINVAL;
        if (e <= target_epsilon)
            hi = mid;
        else
            lo = mid;
    }
    *sigma = hi;
    return FEDC_OK;
}
