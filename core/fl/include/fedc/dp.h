/* Differential privacy: the Rényi-DP accountant of the sampled Gaussian mechanism (Mironov,
 * Talwar, Zhang, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", 2019, section
 * 3.3) at integer and fractional orders, composed over steps and converted to (epsilon, delta)
 * with the classic bound epsilon = min over orders a of T * rdp(a) + ln(1 / delta) / (a - 1)
 * (Mironov 2017, proposition 3), and a stream of secret Gaussian noise for DP-FedAvg and DP-SGD.
 * Reference values in docs/security.md ("Accountant") and tests/fl/test_dp.c; and exact discrete
 * Gaussian noise (integers, no floating point) for client-level DP at the coordinator. Left out:
 * the improved RDP-to-DP conversion of Balle et al. 2020, sampling without replacement, and a
 * floating-point hardened ("snapping") version of the continuous noise, which DP-SGD inside the
 * clients still uses. */
#ifndef FEDC_DP_H
#define FEDC_DP_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"

/* The integer orders of the classic accountant (and of docs/security.md's reference values). */
#define FEDC_RDP_MIN_ORDER 2
#define FEDC_RDP_MAX_ORDER 256
/* Room an order array needs for fedc_dp_orders_default and fedc_dp_orders_integer. */
#define FEDC_DP_MAX_ORDERS 288

/* RDP of one step at integer order alpha >= 2 for sampling rate q in [0, 1] and noise multiplier
 * sigma > 0: ln(A_alpha) / (alpha - 1) with
 *   A_alpha = sum_{i=0..alpha} C(alpha, i) (1-q)^(alpha-i) q^i exp((i^2 - i) / (2 sigma^2)),
 * summed in log space (lgamma, log1p). NaN for arguments out of range. */
double fedc_rdp_sgm(double q, double sigma, int alpha);

/* RDP of one step at real order alpha > 1 (Mironov et al. 2019, section 3.3): ln(A_alpha) /
 * (alpha - 1) with A_alpha = A_0 + A_1, z0 = sigma^2 ln(1/q - 1) + 1/2 and
 *   A_0 = sum_{k>=0} C(alpha,k) (1-q)^(alpha-k) q^k     exp((k^2 - k) / (2 sigma^2))
 *                    * erfc((k - z0) / (sqrt(2) sigma)) / 2,
 *   A_1 = sum_{k>=0} C(alpha,k) (1-q)^k     q^(alpha-k) exp((j^2 - j) / (2 sigma^2))
 *                    * erfc((z0 - j) / (sqrt(2) sigma)) / 2,   j = alpha - k,
 * with signed generalised binomial coefficients C(alpha, k) = alpha (alpha-1) ... (alpha-k+1) / k!.
 * Both series are summed in log space until the terms (alternating in sign beyond k = alpha) fall
 * below e^-32 of the sum, so the truncation error is below that too. Equals fedc_rdp_sgm at
 * integer alpha (to rounding). q = 0 gives 0, q = 1 gives alpha / (2 sigma^2). NaN for arguments
 * out of range and when the series has not converged after 10^6 terms. */
double fedc_rdp_sgm_frac(double q, double sigma, double alpha);

/* ln(erfc(x)) for any real x, accurate where erfc(x) underflows (an asymptotic expansion beyond
 * x = 20). Internal; exposed for the tests. */
double fedc__log_erfc(double x);

/* Fill orders (room for FEDC_DP_MAX_ORDERS, caller owns) with an order set and return its size.
 * Default: 1.25, 1.5, ..., 10 in steps of 0.25, then the integers 11..256 (282 orders).
 * Integer: FEDC_RDP_MIN_ORDER..FEDC_RDP_MAX_ORDER (255 orders), docs/security.md's set. */
int fedc_dp_orders_default(double *orders);
int fedc_dp_orders_integer(double *orders);

/* (epsilon, delta) after `steps` compositions, minimised over the orders orders[0..n_orders)
 * (borrowed, each a real > 1; integer orders use fedc_rdp_sgm, the others fedc_rdp_sgm_frac);
 * *best_order (may be NULL) gets the minimising order. FEDC_EINVAL for q outside [0, 1],
 * sigma <= 0, steps < 0, delta outside (0, 1), or an empty or invalid order list. */
FEDC_MUST_CHECK fedc_err fedc_dp_epsilon_orders(double *epsilon, double *best_order, double q,
                                                double sigma, double steps, double delta,
                                                const double *orders, int n_orders, fedc_diag *d);

/* fedc_dp_epsilon_orders over the default order set (fedc_dp_orders_default). */
FEDC_MUST_CHECK fedc_err fedc_dp_epsilon(double *epsilon, double *best_order, double q,
                                         double sigma, double steps, double delta, fedc_diag *d);

/* The smallest noise multiplier (to 1e-4 relative) whose epsilon after `steps` over the given
 * orders (borrowed) stays within target_epsilon; FEDC_ERANGE when even sigma = 1000 does not
 * reach it, FEDC_EINVAL for arguments out of range. */
FEDC_MUST_CHECK fedc_err fedc_dp_sigma_for_orders(double *sigma, double q, double steps,
                                                  double delta, double target_epsilon,
                                                  const double *orders, int n_orders, fedc_diag *d);

/* fedc_dp_sigma_for_orders over the default order set. */
FEDC_MUST_CHECK fedc_err fedc_dp_sigma_for(double *sigma, double q, double steps, double delta,
                                           double target_epsilon, fedc_diag *d);

/* A stream of Gaussian noise from secret randomness: ChaCha20 (libsodium
 * crypto_stream_chacha20_ietf) under a fresh random 256-bit key; `counter` is the next unused
 * 64-byte keystream block (its high 32 bits form the nonce, its low 32 bits the block counter),
 * so no block is ever used twice. Embedded struct: _init and _wipe; not thread-safe (one stream
 * per thread). The key is a secret: wipe the stream when done. Init calls sodium_init() (aborts
 * when libsodium has no randomness source). */
typedef struct fedc_dp_noise {
    unsigned char key[32];
    uint64_t counter;
} fedc_dp_noise;

/* Key from randombytes_buf, counter 0. */
void fedc_dp_noise_init(fedc_dp_noise *g);

/* x[i] += N(0, sd^2) for i < n (x borrowed), independent draws; sd >= 0 and finite (sd = 0 leaves
 * x untouched). Consumes whole keystream blocks and never returns to a stream position. */
void fedc_dp_noise_add(fedc_dp_noise *g, float *x, size_t n, double sd);

/* sodium_memzero of the key and counter. */
void fedc_dp_noise_wipe(fedc_dp_noise *g);

/* Noise drawn by several threads at once. fedc_dp_noise_reserve sets aside `parts` regions of
 * the stream (each a nonce of its own, 2^32 blocks) and returns the first; then any thread may
 * call fedc_dp_noise_add_part for region base + p (p < parts), each region at most once: it only
 * reads the key, so distinct regions run concurrently. The stream never returns to a reserved
 * region (fedc_dp_noise_add and later reservations continue beyond). n per part at most 2^30. */
uint64_t fedc_dp_noise_reserve(fedc_dp_noise *g, uint64_t parts);
void fedc_dp_noise_add_part(const fedc_dp_noise *g, uint64_t region, float *x, size_t n, double sd);

/* ---- Discrete Gaussian noise ---------------------------------------------------------------
 *
 * Exact sampling from the discrete Gaussian N_Z(0, sigma^2), P(x) proportional to
 * exp(-x^2 / (2 sigma^2)) on the integers, after Canonne, Kamath, Steinke, "The Discrete Gaussian
 * for Differential Privacy", NeurIPS 2020 (arXiv 2004.00010; "CKS20"): Bernoulli(exp(-gamma)) for a
 * rational gamma by von Neumann's method (their Algorithm 1), the discrete Laplace by rejection
 * (Algorithm 2) and the discrete Gaussian by rejection from the discrete Laplace of scale
 * t = floor(sigma) + 1 (Algorithm 3). Every decision is an integer comparison of uniform draws
 * (rejection sampling below a bound, from the ChaCha20 stream of a fedc_dp_noise) against integers
 * and 128-bit rationals: no floating point, so no Mironov-style leak through rounding (Mironov,
 * CCS 2012). sigma^2 is the rational num / den of fedc_dgauss_param.
 *
 * Privacy (CKS20, Section 2): adding N_Z(0, sigma^2) independently to every coordinate of an
 * integer vector whose L2 sensitivity is Delta gives Renyi divergences of at most alpha Delta^2 /
 * (2 sigma^2) at every order alpha, which is the continuous Gaussian mechanism's (their Theorem 4
 * and its multivariate form), so the accountant above charges it as the continuous one. The
 * variance is slightly below sigma^2 (CKS20 show Var < sigma^2; tests sum the pmf). */

/* sigma^2 = num / den. Made by fedc_dgauss_param_make or fedc_dgauss_param_from, which check
 * that the sampler's 128-bit intermediates cannot overflow. */
typedef struct fedc_dgauss_param {
    uint64_t num, den;
    uint64_t t; /* floor(sigma) + 1, the discrete Laplace's scale */
} fedc_dgauss_param;

/* The range the sampler supports: sigma in [FEDC_DGAUSS_MIN_SIGMA, FEDC_DGAUSS_MAX_SIGMA]. */
#define FEDC_DGAUSS_MIN_SIGMA 0.015625   /* 2^-6 */
#define FEDC_DGAUSS_MAX_SIGMA 67108864.0 /* 2^26 */

/* sigma^2 = num / den exactly. FEDC_ERANGE (d says why) for num or den 0, sigma^2 outside
 * [2^-13, 2^53] (the supported range with a margin for rounding), or a representation whose
 * intermediates (2 num den t^2 < 2^112, den t < 2^64) would not fit 128 bits; then reduce the
 * fraction or take fedc_dgauss_param_from. */
FEDC_MUST_CHECK fedc_err fedc_dgauss_param_make(fedc_dgauss_param *p, uint64_t num, uint64_t den,
                                                fedc_diag *d);

/* sigma^2 from a real sigma, rounded up (never less noise than asked for): den = 2^k with the
 * largest k <= 62 that fits, num = ceil(sigma^2 2^k); the relative error is below 2^-40 over the
 * supported range. FEDC_ERANGE outside [FEDC_DGAUSS_MIN_SIGMA, FEDC_DGAUSS_MAX_SIGMA] or NaN. */
FEDC_MUST_CHECK fedc_err fedc_dgauss_param_from(fedc_dgauss_param *p, double sigma, fedc_diag *d);

/* x[i] += N_Z(0, sigma^2) for i < n (x borrowed), independent draws from the stream g (whole
 * keystream blocks, never reused; what is left of the last one is discarded and wiped). A
 * proposal so far in the tail that its acceptance probability's 128-bit rational would not fit
 * (beyond about 360 sigma) is rejected outright: its acceptance probability is below e^-65536, so
 * the output differs from the exact distribution by less than that in total variation. */
void fedc_dgauss_add(fedc_dp_noise *g, int64_t *x, size_t n, const fedc_dgauss_param *p);

/* x[i] += the discrete Laplace Lap_Z(t), P(x) proportional to exp(-|x| / t) (CKS20 Algorithm 2
 * with s = 1), for 1 <= t <= 2^32: the proposal of the Gaussian sampler, exposed for tests. */
void fedc_dlaplace_add(fedc_dp_noise *g, int64_t *x, size_t n, uint64_t t);

/* How many of `trials` Bernoulli(exp(-num / den)) draws come out 1 (CKS20 Algorithm 1; den >= 1,
 * den < 2^64). Internal; exposed for the tests. */
size_t fedc__dp_bern_exp_count(fedc_dp_noise *g, uint64_t num, uint64_t den, size_t trials);

/* Points DP-SGD's noise source (core/nn's fedc_train_cfg: dp_noise_fn, dp_noise_reserve,
 * dp_noise_part, dp_noise_ctx) at the stream g, which stays borrowed while training. */
struct fedc_train_cfg;
void fedc_dp_noise_for_training(struct fedc_train_cfg *cfg, fedc_dp_noise *g);

#endif
