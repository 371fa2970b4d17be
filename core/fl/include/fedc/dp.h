/* Differential-privacy accounting: Rényi DP of the sampled Gaussian mechanism (Mironov, Talwar,
 * Zhang, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", 2019, section 3.3) for
 * integer orders, composed over steps and converted to (epsilon, delta) with the classic bound
 * epsilon = min over orders a of T * rdp(a) + ln(1 / delta) / (a - 1) (Mironov 2017,
 * proposition 3). Reference values in SECURITY.md ("Accountant"). Fractional orders are not
 * here yet. */
#ifndef FEDC_DP_H
#define FEDC_DP_H

#include "fedc/err.h"

#define FEDC_RDP_MIN_ORDER 2
#define FEDC_RDP_MAX_ORDER 256

/* RDP of one step at integer order alpha >= 2 for sampling rate q in [0, 1] and noise multiplier
 * sigma > 0: ln(A_alpha) / (alpha - 1) with
 *   A_alpha = sum_{i=0..alpha} C(alpha, i) (1-q)^(alpha-i) q^i exp((i^2 - i) / (2 sigma^2)),
 * summed in log space (lgamma, log1p). NaN for arguments out of range. */
double fedc_rdp_sgm(double q, double sigma, int alpha);

/* (epsilon, delta) after `steps` compositions, minimised over the integer orders
 * FEDC_RDP_MIN_ORDER..FEDC_RDP_MAX_ORDER; *best_order gets the minimising order. FEDC_EINVAL for
 * q outside [0, 1], sigma <= 0, steps < 0 or delta outside (0, 1). */
FEDC_MUST_CHECK fedc_err fedc_dp_epsilon(double *epsilon, int *best_order, double q, double sigma,
                                         double steps, double delta, fedc_diag *d);

/* The smallest noise multiplier (to 1e-4 relative) whose epsilon after `steps` stays within
 * target_epsilon; FEDC_ERANGE when even sigma = 1000 does not reach it. */
FEDC_MUST_CHECK fedc_err fedc_dp_sigma_for(double *sigma, double q, double steps, double delta,
                                           double target_epsilon, fedc_diag *d);

#endif
