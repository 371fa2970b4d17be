/* Client-level DP-FedAvg maths (contracts and sources in dp_fedavg.h). */
#include "fedc/dp_fedavg.h"

#include <math.h>
#include <sodium.h>
#include <stdint.h>

#include "fedc/dp.h"

int fedc_dpfa_sample(int *chosen, int n, double q) {
    const uint64_t cut = (uint64_t)(q * 4294967296.0);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (q >= 1.0 || (uint64_t)randombytes_random() < cut)
            chosen[k++] = i;
    return k;
}

fedc_err fedc_dpfa_update_multiplier(double *z_update, double z, double count_noise, fedc_diag *d) {
    double zb = 2.0 * count_noise;
    double inv = 1.0 / (z * z) - 1.0 / (zb * zb);
    if (!(z > 0) || !(inv > 0) || !isfinite(inv)) {
        fedc_diag_set(d,
                      "the count's noise (sd %g) leaves no privacy for the update at noise "
                      "multiplier %g: 2 x the count's noise must exceed the multiplier",
                      count_noise, z);
        return FEDC_EINVAL;
    }
    *z_update = 1.0 / sqrt(inv);
    return FEDC_OK;
}

double fedc_dpfa_grid_sensitivity(double scale, double c, double m, size_t n_params) {
    double rn = sqrt((double)n_params);
    return scale * c / m + rn * (2.0 + scale * 0x1p-25 / m) + 1.0;
}

fedc_err fedc_dpfa_grid(double *m, double *sigma, double z_update, double scale, double c,
                        size_t n_params, fedc_diag *d) {
    double mm = 1.0;
    for (int j = 0; j <= 40; j++, mm *= 2.0) {
        double s = z_update * fedc_dpfa_grid_sensitivity(scale, c, mm, n_params);
        if (s <= FEDC_DGAUSS_MAX_SIGMA) {
            *m = mm;
            *sigma = s;
            return FEDC_OK;
        }
    }
    fedc_diag_set(d, "no grid up to 2^40 keeps the noise (multiplier %g, clip %g) within %g steps",
                  z_update, c, FEDC_DGAUSS_MAX_SIGMA);
    return FEDC_ERANGE;
}

double fedc_dpfa_clip_step(double c, double frac, double eta, double gamma) {
    double next = c * exp(-eta * (frac - gamma));
    return fmin(fmax(next, 1e-9), 1e6);
}
