/* RDP accountant of the sampled Gaussian mechanism at integer and fractional orders, and secret
 * Gaussian noise from a ChaCha20 keystream (contracts in dp.h). Left out: the improved RDP-to-DP
 * conversion (Balle et al. 2020), which would give smaller epsilons than the classic one that
 * docs/security.md's reference values use. */
#include "fedc/dp.h"
#include "fedc/train.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* ---- accountant ------------------------------------------------------------------------------ */

/* ln(2) and ln(sqrt(pi)) */
#define LN2 0.69314718055994530942
#define LOG_SQRT_PI 0.57236494292470008707
/* Beyond this many terms fedc_rdp_sgm_frac gives up (NaN); orders >= 1.25 need far fewer. */
#define FRAC_MAX_TERMS 1000000L
/* The series stop once a term is below e^-FRAC_LOG_TOL times the sum. */
#define FRAC_LOG_TOL 32.0

/* ln(e^a + e^b) */
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

double fedc__log_erfc(double x) {
    if (x < 20.0)
        return log(erfc(x)); /* glibc's erfc keeps its relative accuracy up to x = 26 */
    /* erfc(x) = exp(-x^2) / (x sqrt(pi)) * (1 + sum_{n>=1} (-1)^n (2n-1)!! / (2x^2)^n), the
     * asymptotic expansion (Abramowitz and Stegun 7.1.23); at x >= 20 its terms fall below 1e-17
     * within eight terms, long before they would start to grow. */
    double r = 1.0 / (2.0 * x * x), t = 1.0, s = 0.0;
    for (int n = 1; n <= 12; n++) {
        t *= -(2.0 * n - 1.0) * r;
        s += t;
        if (fabs(t) < 1e-17)
            break;
    }
    return -x * x - log(x) - LOG_SQRT_PI + log1p(s);
}

double fedc_rdp_sgm_frac(double q, double sigma, double alpha) {
    if (!(q >= 0 && q <= 1) || !(sigma > 0) || !isfinite(sigma) || !(alpha > 1) || !isfinite(alpha))
        return NAN;
    if (q == 0)
        return 0.0;
    if (q == 1)
        return alpha / (2.0 * sigma * sigma);
    const double lq = log(q), l1q = log1p(-q), s2 = 2.0 * sigma * sigma, r2s = sqrt(2.0) * sigma;
    /* z0 = sigma^2 ln(1/q - 1) + 1/2 splits the real line where q e^((2z-1)/(2 sigma^2)) = 1 - q:
     * below it the binomial series of ((1-q) + q e^(...))^alpha is expanded in powers of the
     * second summand (A_0), above it in powers of the first (A_1); each part integrates against
     * N(0, sigma^2) to a Gaussian tail, the erfc factors. */
    const double z0 = sigma * sigma * (l1q - lq) + 0.5;
    double pos = -INFINITY, neg = -INFINITY; /* ln of the positive and negative parts of A */
    double lc = 0.0, last = INFINITY;        /* ln |C(alpha, k)|, ln |term k-1| */
    int sign = 1, done = 0;                  /* sign of C(alpha, k) */
    for (long k = 0; k < FRAC_MAX_TERMS; k++) {
        if (k > 0) { /* C(alpha, k) = C(alpha, k-1) (alpha - k + 1) / k */
            double f = alpha - (double)(k - 1);
            if (f == 0) { /* integer alpha: the series end at k = alpha, exactly */
                done = 1;
                break;
            }
            lc += log(fabs(f)) - log((double)k);
            if (f < 0)
                sign = -sign;
        }
        const double i = (double)k, j = alpha - i;
        double t0 = lc + j * l1q + i * lq + (i * i - i) / s2 - LN2 + fedc__log_erfc((i - z0) / r2s);
        double t1 = lc + i * l1q + j * lq + (j * j - j) / s2 - LN2 + fedc__log_erfc((z0 - j) / r2s);
        double t = log_add(t0, t1); /* both halves share the sign of C(alpha, k) */
        if (sign > 0)
            pos = log_add(pos, t);
        else
            neg = log_add(neg, t);
        /* Beyond k = alpha + 1 the terms alternate in sign; once their magnitudes fall, the tail
         * is smaller than the last term, so stop when that is negligible against the sum. */
        if (i > alpha + 1 && t < last && neg < pos &&
            t < pos + log1p(-exp(neg - pos)) - FRAC_LOG_TOL) {
            done = 1;
            break;
        }
        last = t;
    }
    if (!done || !(neg < pos))
        return NAN;
    double la = neg == -INFINITY ? pos : pos + log1p(-exp(neg - pos));
    /* A_alpha >= 1 (a Rényi divergence is non-negative); rounding must not make the RDP negative.
     */
    return la > 0 ? la / (alpha - 1.0) : 0.0;
}

/* 36 fractional-grid orders 1.25..10, then 11..FEDC_RDP_MAX_ORDER. */
_Static_assert(36 + FEDC_RDP_MAX_ORDER - 10 <= FEDC_DP_MAX_ORDERS, "FEDC_DP_MAX_ORDERS too small");

int fedc_dp_orders_default(double *orders) {
    int n = 0;
    for (int i = 5; i <= 40; i++) /* 1.25 .. 10 */
        orders[n++] = i * 0.25;
    for (int a = 11; a <= FEDC_RDP_MAX_ORDER; a++)
        orders[n++] = a;
    return n;
}

int fedc_dp_orders_integer(double *orders) {
    int n = 0;
    for (int a = FEDC_RDP_MIN_ORDER; a <= FEDC_RDP_MAX_ORDER; a++)
        orders[n++] = a;
    return n;
}

/* RDP of one step at order a > 1: the finite integer formula where a is an integer. */
static double rdp_at(double q, double sigma, double a) {
    if (a >= 2 && a <= INT_MAX / 2 && a == floor(a))
        return fedc_rdp_sgm(q, sigma, (int)a);
    return fedc_rdp_sgm_frac(q, sigma, a);
}

fedc_err fedc_dp_epsilon_orders(double *epsilon, double *best_order, double q, double sigma,
                                double steps, double delta, const double *orders, int n_orders,
                                fedc_diag *d) {
    if (!(q >= 0 && q <= 1) || !(sigma > 0) || !(steps >= 0) || !(delta > 0 && delta < 1) ||
        !isfinite(sigma) || !isfinite(steps)) {
        fedc_diag_set(d,
                      "privacy: need 0 <= q <= 1, sigma > 0, steps >= 0 and 0 < delta < 1, got "
                      "q %g, sigma %g, steps %g, delta %g",
                      q, sigma, steps, delta);
        return FEDC_EINVAL;
    }
    if (!orders || n_orders < 1) {
        fedc_diag_set(d, "privacy: need at least one RDP order, got %d", n_orders);
        return FEDC_EINVAL;
    }
    for (int k = 0; k < n_orders; k++)
        if (!(orders[k] > 1) || !isfinite(orders[k])) {
            fedc_diag_set(d, "privacy: RDP order %d is %g, expected a finite real > 1", k,
                          orders[k]);
            return FEDC_EINVAL;
        }
    double best = INFINITY, order = orders[0];
    for (int k = 0; k < n_orders; k++) {
        double a = orders[k];
        /* An order whose series did not converge (NaN) is skipped. */
        double e = steps * rdp_at(q, sigma, a) + log(1.0 / delta) / (a - 1.0);
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

fedc_err fedc_dp_epsilon(double *epsilon, double *best_order, double q, double sigma, double steps,
                         double delta, fedc_diag *d) {
    double orders[FEDC_DP_MAX_ORDERS];
    int n = fedc_dp_orders_default(orders);
    return fedc_dp_epsilon_orders(epsilon, best_order, q, sigma, steps, delta, orders, n, d);
}

fedc_err fedc_dp_sigma_for_orders(double *sigma, double q, double steps, double delta,
                                  double target_epsilon, const double *orders, int n_orders,
                                  fedc_diag *d) {
    double e;
    if (!(target_epsilon > 0)) {
        fedc_diag_set(d, "privacy: the target epsilon must be positive, got %g", target_epsilon);
        return FEDC_EINVAL;
    }
    double lo = 1e-3, hi = 1000;
    fedc_err rc = fedc_dp_epsilon_orders(&e, NULL, q, hi, steps, delta, orders, n_orders, d);
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
        rc = fedc_dp_epsilon_orders(&e, NULL, q, mid, steps, delta, orders, n_orders, d);
        if (rc)
            return rc;
        if (e <= target_epsilon)
            hi = mid;
        else
            lo = mid;
    }
    *sigma = hi;
    return FEDC_OK;
}

fedc_err fedc_dp_sigma_for(double *sigma, double q, double steps, double delta,
                           double target_epsilon, fedc_diag *d) {
    double orders[FEDC_DP_MAX_ORDERS];
    int n = fedc_dp_orders_default(orders);
    return fedc_dp_sigma_for_orders(sigma, q, steps, delta, target_epsilon, orders, n, d);
}

/* ---- secret Gaussian noise ------------------------------------------------------------------- */

/* Keystream blocks per libsodium call: 4 KiB, 256 pairs of 64-bit words. */
#define NOISE_BLOCKS 64
#define NOISE_BLOCK_BYTES 64

void fedc_dp_noise_init(fedc_dp_noise *g) {
    /* Idempotent and thread-safe; the key must come from an initialised libsodium. A failure
     * means no usable randomness source, which must not pass silently. */
    if (sodium_init() < 0)
        abort();
    randombytes_buf(g->key, sizeof g->key);
    g->counter = 0;
}

void fedc_dp_noise_wipe(fedc_dp_noise *g) {
    sodium_memzero(g, sizeof *g);
}

/* Writes the keystream blocks from g->counter on into buf (at most NOISE_BLOCKS, never crossing
 * the 32-bit block counter into the next nonce), advances the counter past them and returns the
 * byte count. Block b of the stream is block (b mod 2^32) under nonce (b div 2^32, little-endian
 * in the first four nonce bytes, the rest zero). */
static size_t keystream(fedc_dp_noise *g, unsigned char *buf) {
    const uint32_t ic = (uint32_t)g->counter, hi = (uint32_t)(g->counter >> 32);
    const uint64_t to_wrap = (uint64_t)UINT32_MAX - ic + 1;
    const size_t nb = to_wrap < NOISE_BLOCKS ? (size_t)to_wrap : NOISE_BLOCKS;
    /* 2^64 blocks (2^70 bytes) are out of reach; wrapping would repeat the stream. */
    FEDC_CHECK(g->counter <= UINT64_MAX - nb);
    unsigned char nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
    for (int b = 0; b < 4; b++)
        nonce[b] = (unsigned char)(hi >> (8 * b));
    memset(buf, 0, nb * NOISE_BLOCK_BYTES);
    crypto_stream_chacha20_ietf_xor_ic(buf, buf, nb * NOISE_BLOCK_BYTES, nonce, ic, g->key);
    g->counter += nb;
    return nb * NOISE_BLOCK_BYTES;
}

/* Marsaglia's polar method: u, v uniform on (-1, 1) from the top 53 bits of two keystream words;
 * with s = u^2 + v^2 in (0, 1) (else both are rejected), u f and v f with
 * f = sqrt(-2 ln(s) / s) are two independent N(0, 1) draws, computed in double.
 * Floating-point caveat (Mironov, "On significance of the least significant bits for differential
 * privacy", CCS 2012): textbook samplers over floating-point numbers leave gaps and a pattern in
 * the low-order bits of the result that can reveal the value the noise was added to. Here the
 * normal draw is made in double precision (53-bit uniforms) and the sum is rounded to float, and
 * the noise sd in DP-FedAvg and DP-SGD (noise multiplier times the clipping norm, typically 0.1 to
 * 10 times a norm) is many orders of magnitude above float resolution of the values, so the
 * rounding to float dominates the sampler's own granularity; this is not Mironov's snapping
 * mechanism, and no formal guarantee against that attack is claimed. */
void fedc_dp_noise_add(fedc_dp_noise *g, float *x, size_t n, double sd) {
    assert(sd >= 0 && isfinite(sd));
    if (sd == 0 || n == 0)
        return;
    unsigned char buf[NOISE_BLOCKS * NOISE_BLOCK_BYTES];
    size_t len = 0, pos = 0, i = 0;
    while (i < n) {
        if (pos == len) { /* the buffer holds whole 16-byte pairs */
            len = keystream(g, buf);
            pos = 0;
        }
        uint64_t a, b;
        memcpy(&a, buf + pos, 8);
        memcpy(&b, buf + pos + 8, 8);
        pos += 16;
        double u = (double)(a >> 11) * 0x1p-52 - 1.0, v = (double)(b >> 11) * 0x1p-52 - 1.0;
        double s = u * u + v * v;
        if (s >= 1.0 || s == 0.0)
            continue;
        double f = sd * sqrt(-2.0 * log(s) / s);
        x[i] = (float)((double)x[i] + u * f);
        i++;
        if (i < n) {
            x[i] = (float)((double)x[i] + v * f);
            i++;
        }
    }
    /* Whatever keystream is left in buf is discarded (and wiped): the counter is already past it.
     */
    sodium_memzero(buf, sizeof buf);
}

uint64_t fedc_dp_noise_reserve(fedc_dp_noise *g, uint64_t parts) {
    /* The next whole region (nonce) not touched yet, then `parts` of them. */
    uint64_t base = (g->counter >> 32) + ((g->counter & 0xffffffffu) != 0);
    FEDC_CHECK(parts <= UINT32_MAX && base <= UINT32_MAX - parts);
    g->counter = (base + parts) << 32;
    return base;
}

void fedc_dp_noise_add_part(const fedc_dp_noise *g, uint64_t region, float *x, size_t n,
                            double sd) {
    /* A region holds 2^32 blocks; n values take at most ~n/2 accepted pairs of 16 bytes each
     * over the polar method's acceptance pi/4, far below that for n <= 2^30. */
    FEDC_CHECK(n <= (size_t)1 << 30 && region <= UINT32_MAX);
    fedc_dp_noise part;
    memcpy(part.key, g->key, sizeof part.key);
    part.counter = region << 32;
    fedc_dp_noise_add(&part, x, n, sd);
    sodium_memzero(&part, sizeof part);
}

static void train_noise(void *ctx, float *x, size_t n, double sd) {
    fedc_dp_noise_add(ctx, x, n, sd);
}

static uint64_t train_reserve(void *ctx, uint64_t parts) {
    return fedc_dp_noise_reserve(ctx, parts);
}

static void train_part(void *ctx, uint64_t region, float *x, size_t n, double sd) {
    fedc_dp_noise_add_part(ctx, region, x, n, sd);
}

void fedc_dp_noise_for_training(struct fedc_train_cfg *cfg, fedc_dp_noise *g) {
    cfg->dp_noise_fn = train_noise;
    cfg->dp_noise_reserve = train_reserve;
    cfg->dp_noise_part = train_part;
    cfg->dp_noise_ctx = g;
}
