/* Client-level DP-FedAvg maths (McMahan et al., ICLR 2018; adaptive clipping after Andrew et al.,
 * NeurIPS 2021), kept apart from the coordinator so each formula has a unit test: Poisson
 * sampling of the clients, the noise multiplier left for the update when the adaptive clip's
 * count is noised too, the integer grid the discrete Gaussian noise is drawn on and its L2
 * sensitivity, and the adaptive clip norm's step. The accountant is dp.h. */
#ifndef FEDC_DP_FEDAVG_H
#define FEDC_DP_FEDAVG_H

#include <stddef.h>

#include "fedc/err.h"

/* Poisson sampling: each of the n candidates joins with probability q (0 <= q <= 1), decided by
 * a secret uniform 32-bit draw (libsodium). chosen gets the indices of those that joined, in
 * order; returns their number. The expected count is q n (the fixed denominator of DP-FedAvg). */
int fedc_dpfa_sample(int *chosen, int n, double q);

/* The noise multiplier left for the update when the count of unclipped updates is released with
 * noise of sd count_noise (Andrew et al., Theorem 1: z_update = (z^-2 - (2 sigma_b)^-2)^-1/2, so
 * that both releases together cost z). FEDC_EINVAL when 2 count_noise does not exceed z (nothing
 * would be left for the update). */
FEDC_MUST_CHECK fedc_err fedc_dpfa_update_multiplier(double *z_update, double z, double count_noise,
                                                     fedc_diag *d);

/* The bound on the L2 distance between the integer sums of two neighbouring rounds (one client
 * more or less) on the grid m / scale, for updates clipped to c, with n_params values: the
 * secure-aggregation quantiser rounds each client's values to 1 / scale with at most one step per
 * coordinate, and the sum re-rounded to the coarser grid moves each coordinate by at most 1/2:
 * scale c / m + sqrt(n) (2 + scale 2^-25 / m) + 1 (covering the plain accumulator's 2^-24 grid
 * too). */
double fedc_dpfa_grid_sensitivity(double scale, double c, double m, size_t n_params);

/* The coarsest-needed grid: m the smallest power of two (1, 2, 4, ... 2^40) for which the noise
 * sd z_update x sensitivity stays within the discrete sampler's range; *m and *sigma (in grid
 * steps) are written. FEDC_ERANGE when no such m exists. */
FEDC_MUST_CHECK fedc_err fedc_dpfa_grid(double *m, double *sigma, double z_update, double scale,
                                        double c, size_t n_params, fedc_diag *d);

/* The adaptive clip norm's step: C exp(-eta (frac - gamma)), frac the noised share of updates
 * within C, kept within [1e-9, 1e6] (what the wire accepts). */
double fedc_dpfa_clip_step(double c, double frac, double eta, double gamma);

#endif
