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

/* ---- discrete Gaussian (CKS20) --------------------------------------------------------------- */

/* 128-bit unsigned arithmetic (GCC and Clang; __extension__ keeps -Wpedantic quiet). */
__extension__ typedef unsigned __int128 u128;

#define U128_ONE ((u128)1)

/* Uniform 64-bit words from the keystream of g, a buffer of whole blocks at a time. */
typedef struct rbits {
    fedc_dp_noise *g;
    unsigned char buf[NOISE_BLOCKS * NOISE_BLOCK_BYTES];
    size_t pos, len;
} rbits;

static uint64_t next_u64(rbits *r) {
    if (r->pos + 8 > r->len) {
        r->len = keystream(r->g, r->buf);
        r->pos = 0;
    }
    uint64_t v;
    memcpy(&v, r->buf + r->pos, 8);
    r->pos += 8;
    return v;
}

/* Number of significant bits of x (0 for x = 0). */
static int bit_len(u128 x) {
    uint64_t hi = (uint64_t)(x >> 64), lo = (uint64_t)x;
    if (hi)
        return 128 - __builtin_clzll(hi);
    return lo ? 64 - __builtin_clzll(lo) : 0;
}

/* Uniform on {0, ..., m - 1} for m >= 1: draws of bit_len(m - 1) random bits until one is below
 * m (fewer than two draws on average), so exactly uniform. */
static u128 below(rbits *r, u128 m) {
    int bits = bit_len(m - 1);
    if (bits == 0)
        return 0;
    for (;;) {
        u128 v = next_u64(r);
        if (bits > 64)
            v |= (u128)next_u64(r) << 64;
        if (bits < 128)
            v &= (U128_ONE << bits) - 1;
        if (v < m)
            return v;
    }
}

/* Bernoulli(num / den) for num <= den, den >= 1: uniform below den compared with num. */
static int bern_frac(rbits *r, u128 num, u128 den) {
    return below(r, den) < num;
}

/* Bernoulli(exp(-gamma)) for gamma = num / den in [0, 1] (CKS20 Algorithm 1, von Neumann): draw
 * A_k ~ Bernoulli(gamma / k) for k = 1, 2, ... until the first A_k = 0; answer 1 when that k is
 * odd. P(the first zero at k) = gamma^(k-1) / (k-1)! - gamma^k / k!, and the odd k sum to
 * exp(-gamma). den < 2^112, and k stays far below 2^16 (reaching k has probability 1 / (k-1)!),
 * so den k never overflows. */
static int bern_exp_unit(rbits *r, u128 num, u128 den) {
    uint64_t k = 1;
    while (bern_frac(r, num, den * k)) {
        k++;
        FEDC_CHECK(k < 65536);
    }
    return (int)(k & 1);
}

/* Bernoulli(exp(-num / den)) for any num >= 0, 1 <= den < 2^112: one Bernoulli(exp(-1)) for every
 * whole unit of gamma and one for the fraction (CKS20 Algorithm 1 for gamma > 1); the first 0
 * decides, so a large gamma costs few draws on average. */
static int bern_exp(rbits *r, u128 num, u128 den) {
    u128 whole = num / den, frac = num % den;
    for (u128 i = 0; i < whole; i++)
        if (!bern_exp_unit(r, 1, 1))
            return 0;
    return bern_exp_unit(r, frac, den);
}

/* The discrete Laplace Lap_Z(t), P(x) proportional to exp(-|x| / t), t >= 1 (CKS20 Algorithm 2
 * with s = 1): X = U + t V with U uniform on {0..t-1} kept with probability exp(-U / t) and V
 * geometric (the count of Bernoulli(exp(-1)) successes before the first failure), so
 * P(X = x) ~ exp(-x / t); a random sign, with the negative zero rejected so that 0 is not counted
 * twice. */
static int64_t dlaplace(rbits *r, uint64_t t) {
    for (;;) {
        uint64_t u = (uint64_t)below(r, t);
        if (!bern_exp(r, u, t))
            continue;
        uint64_t v = 0;
        while (bern_exp_unit(r, 1, 1))
            v++;
        /* V > 2^20 has probability e^-(2^20): never, but must not overflow either. */
        FEDC_CHECK(v < ((uint64_t)1 << 20));
        uint64_t x = u + t * v;
        int neg = (int)(next_u64(r) & 1);
        if (neg && x == 0)
            continue;
        return neg ? -(int64_t)x : (int64_t)x;
    }
}

/* floor(sqrt(num / den)): the largest integer s with s^2 den <= num (num, den < 2^64, so s <
 * 2^32 and s^2 den < 2^128). */
static uint64_t isqrt_ratio(uint64_t num, uint64_t den) {
    uint64_t lo = 0, hi = (uint64_t)1 << 32; /* s in [lo, hi) */
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if ((u128)mid * mid * den <= num)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* 2^112: the sampler's denominators stay below it (bern_exp_unit multiplies by k < 2^16). */
#define DEN_CAP (U128_ONE << 112)

fedc_err fedc_dgauss_param_make(fedc_dgauss_param *p, uint64_t num, uint64_t den, fedc_diag *d) {
    fedc_err rc = FEDC_ERANGE;
    if (num == 0 || den == 0) {
        fedc_diag_set(d, "discrete Gaussian: sigma^2 = %llu / %llu, expected both positive",
                      (unsigned long long)num, (unsigned long long)den);
        goto out;
    }
    /* sigma^2 in [2^-13, 2^53] (compared exactly), a little beyond [FEDC_DGAUSS_MIN_SIGMA^2,
     * FEDC_DGAUSS_MAX_SIGMA^2] so that fedc_dgauss_param_from's rounding up stays inside. */
    if ((u128)num << 13 < den || (u128)num > (u128)den << 53) {
        fedc_diag_set(d,
                      "discrete Gaussian: sigma^2 = %llu / %llu is outside the supported range "
                      "[2^-13, 2^53]",
                      (unsigned long long)num, (unsigned long long)den);
        goto out;
    }
    uint64_t t = isqrt_ratio(num, den) + 1; /* <= 2^26.5 + 1 */
    /* The acceptance step's gamma = (|Y| den t - num)^2 / (2 num den t^2): its denominator must
     * stay below 2^112 and den t below 2^64 (then |Y| den t fits 128 bits for any int64 Y).
     * With num, den < 2^63 the product 2 num den fits 128 bits. */
    if (num >= ((uint64_t)1 << 63) || den >= ((uint64_t)1 << 63) ||
        (u128)2 * num * den >= DEN_CAP / ((u128)t * t) || (u128)den * t >= (U128_ONE << 64)) {
        fedc_diag_set(
            d,
            "discrete Gaussian: sigma^2 = %llu / %llu needs intermediates beyond 128 bits; "
            "use a smaller denominator",
            (unsigned long long)num, (unsigned long long)den);
        goto out;
    }
    p->num = num;
    p->den = den;
    p->t = t;
    rc = FEDC_OK;
out:
    return rc;
}

fedc_err fedc_dgauss_param_from(fedc_dgauss_param *p, double sigma, fedc_diag *d) {
    if (!(sigma >= FEDC_DGAUSS_MIN_SIGMA && sigma <= FEDC_DGAUSS_MAX_SIGMA)) {
        fedc_diag_set(d, "discrete Gaussian: sigma %g is outside the supported range [%g, %g]",
                      sigma, FEDC_DGAUSS_MIN_SIGMA, FEDC_DGAUSS_MAX_SIGMA);
        return FEDC_ERANGE;
    }
    /* sigma^2 rounded up: the product of two doubles is within half an ulp, so the next double up
     * is at least the exact square. */
    double s2 = nextafter(sigma * sigma, INFINITY);
    for (int k = 62; k >= 0; k--) {
        double scaled = ceil(ldexp(s2, k)); /* exact: a power-of-two scaling, then ceil */
        if (scaled >= 0x1p62)
            continue;
        if (fedc_dgauss_param_make(p, (uint64_t)scaled, (uint64_t)1 << k, NULL) == FEDC_OK)
            return FEDC_OK;
    }
    fedc_diag_set(d, "discrete Gaussian: no 128-bit representation of sigma %g", sigma);
    return FEDC_ERANGE;
}

/* One draw of N_Z(0, num / den) (CKS20 Algorithm 3): a discrete Laplace proposal Y of scale t,
 * kept with probability exp(-(|Y| - sigma^2 / t)^2 / (2 sigma^2)). With sigma^2 = n / d that
 * exponent is the rational (|Y| d t - n)^2 / (2 n d t^2). */
static int64_t dgauss(rbits *r, const fedc_dgauss_param *p, u128 den2) {
    const u128 dt = (u128)p->den * p->t; /* < 2^64, checked by fedc_dgauss_param_make */
    for (;;) {
        int64_t y = dlaplace(r, p->t);
        uint64_t ay = y < 0 ? (uint64_t)0 - (uint64_t)y : (uint64_t)y;
        u128 a = (u128)ay * dt; /* < 2^128 */
        u128 diff = a >= p->num ? a - p->num : p->num - a;
        if (diff >> 64) /* gamma > 2^128 / 2^112: acceptance below e^-65536 (dp.h) */
            continue;
        if (bern_exp(r, diff * diff, den2))
            return y;
    }
}

/* The random words of one call come from a buffer on the stack (4 KiB), wiped before return:
 * whatever keystream is left in it is never used again (the stream's counter is past it). */
void fedc_dgauss_add(fedc_dp_noise *g, int64_t *x, size_t n, const fedc_dgauss_param *p) {
    FEDC_CHECK(p->num > 0 && p->den > 0 && p->t > 0);
    rbits r = {.g = g, .pos = 0, .len = 0};
    const u128 den2 = (u128)2 * p->num * p->den * p->t * p->t; /* < 2^112 */
    for (size_t i = 0; i < n; i++)
        x[i] += dgauss(&r, p, den2);
    sodium_memzero(&r, sizeof r);
}

void fedc_dlaplace_add(fedc_dp_noise *g, int64_t *x, size_t n, uint64_t t) {
    FEDC_CHECK(t >= 1 && t <= ((uint64_t)1 << 32));
    rbits r = {.g = g, .pos = 0, .len = 0};
    for (size_t i = 0; i < n; i++)
        x[i] += dlaplace(&r, t);
    sodium_memzero(&r, sizeof r);
}

size_t fedc__dp_bern_exp_count(fedc_dp_noise *g, uint64_t num, uint64_t den, size_t trials) {
    FEDC_CHECK(den >= 1);
    rbits r = {.g = g, .pos = 0, .len = 0};
    size_t ones = 0;
    for (size_t i = 0; i < trials; i++)
        ones += (size_t)bern_exp(&r, num, den);
    sodium_memzero(&r, sizeof r);
    return ones;
}
