/* The RDP accountant against docs/security.md's reference values (integer orders) and against
 * independent references at fractional orders (to 1e-3), per step and end to end; the noise
 * multiplier derived from a target epsilon; and the secret Gaussian noise stream: its
 * distribution (moments and Kolmogorov-Smirnov, with negative controls that must fail), its
 * secrecy (two streams differ) and its stream positions (never reused); the discrete Gaussian
 * (CKS20) against its exact pmf at small and large sigma, with negative controls, and its
 * Bernoulli(exp(-gamma)) step. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "fedc/clock.h"
#include "fedc/dp.h"

static int rel_close(double got, double want, double tol) {
    return fabs(got - want) <= tol * fabs(want);
}

/* ---- accountant ------------------------------------------------------------------------------ */

static void test_per_step(void **state) {
    (void)state;
    /* q = 0.01, sigma = 1, alpha = 2 -> 1.7181342e-4; q = 0.1, sigma = 2, alpha = 16 ->
     * 0.04529184 (relative 1e-3). */
    double a = fedc_rdp_sgm(0.01, 1.0, 2), b = fedc_rdp_sgm(0.1, 2.0, 16);
    print_message("rdp: %.8g and %.8g\n", a, b);
    assert_true(fabs(a - 1.7181342e-4) <= 1e-3 * 1.7181342e-4);
    assert_true(fabs(b - 0.04529184) <= 1e-3 * 0.04529184);
    /* Without sampling it is the Gaussian mechanism's alpha / (2 sigma^2); q = 0 costs nothing. */
    assert_true(fabs(fedc_rdp_sgm(1.0, 2.0, 8) - 1.0) < 1e-12);
    assert_true(fedc_rdp_sgm(0.0, 2.0, 8) == 0.0);
    assert_true(isnan(fedc_rdp_sgm(0.1, 0.0, 8)));
}

static void test_log_erfc(void **state) {
    (void)state;
    /* Where erfc is still a normal double, the asymptotic branch (x >= 20) meets log(erfc(x)). */
    for (double x = -3; x <= 26; x += 0.5)
        assert_true(rel_close(fedc__log_erfc(x), log(erfc(x)), 1e-13) || fabs(x) < 1e-9);
    /* Beyond underflow, against mpmath 1.4.1 (40 digits): log(erfc(x)). */
    static const double want[][2] = {{27, -732.86888650789741098},
                                     {30, -903.97411711064387808},
                                     {100, -10005.177585122664333},
                                     {1e4, -100000009.7827053199}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        assert_true(rel_close(fedc__log_erfc(want[k][0]), want[k][1], 1e-14));
    assert_true(fedc__log_erfc(INFINITY) == -INFINITY);
    assert_true(fabs(fedc__log_erfc(-INFINITY) - log(2.0)) < 1e-15);
}

/* Per-step RDP at fractional orders. References (bench/rdp_reference.py):
 *  - quad: numerical integration of the definition A_alpha = E_{z~N(0,sigma^2)}[((1-q) +
 *    q exp((2z-1)/(2 sigma^2)))^alpha] with mpmath 1.4.1 at 40 digits; the exact value.
 *  - lib: dp-accounting 0.6.0, dp_accounting.rdp.rdp_privacy_accountant.
 *    _compute_rdp_poisson_subsampled_gaussian(q, sigma, [alpha]). Its fractional series adds the
 *    generalised binomial coefficients by absolute value, an upper bound that is tight at large
 *    orders but several per cent high at alpha = 1.5 and 2.5 (and inf, "failed to converge", at
 *    q = 0.5, sigma = 0.8, alpha = 1.5); there fedc must stay at or below it. */
static void test_fractional_references(void **state) {
    (void)state;
    static const struct {
        double q, sigma, alpha, quad, lib;
    } ref[] = {
        {0.01, 1.0, 1.5, 1.2725374333e-04, 1.3236850294e-04},
        {0.01, 1.0, 2.5, 2.1757533228e-04, 2.1777202424e-04},
        {0.01, 1.0, 7.25, 7.5067383140e-04, 7.5067434953e-04},
        {0.01, 1.0, 20.5, 5.4086675941e+00, 5.4086675941e+00},
        {0.1, 2.0, 1.5, 2.0989345957e-03, 2.7267112618e-03},
        {0.1, 2.0, 2.5, 3.5940771994e-03, 3.6216360963e-03},
        {0.1, 2.0, 7.25, 1.2098783298e-02, 1.2098792174e-02},
        {0.1, 2.0, 20.5, 2.3485365252e-01, 2.3485365253e-01},
        {0.5, 0.8, 1.5, 4.0983886045e-01, INFINITY},
        {0.5, 0.8, 2.5, 9.9460953128e-01, 9.9503573019e-01},
        {0.5, 0.8, 7.25, 4.8600783872e+00, 4.8600783872e+00},
        {0.5, 0.8, 20.5, 1.5286931810e+01, 1.5286931810e+01},
    };
    for (size_t k = 0; k < sizeof ref / sizeof ref[0]; k++) {
        double r = fedc_rdp_sgm_frac(ref[k].q, ref[k].sigma, ref[k].alpha);
        print_message("q %g sigma %g alpha %g: %.10e (quad %.10e, dp-accounting %.10e)\n", ref[k].q,
                      ref[k].sigma, ref[k].alpha, r, ref[k].quad, ref[k].lib);
        assert_true(rel_close(r, ref[k].quad, 1e-3));
        assert_true(r <= ref[k].lib * (1 + 1e-9));
        if (ref[k].alpha > 7) /* where the library's bound is tight */
            assert_true(rel_close(r, ref[k].lib, 1e-3));
    }
}

static void test_fractional_edges(void **state) {
    (void)state;
    /* At integer orders the two series are finite and recombine into the integer formula (to
     * rounding: ln(A) is summed from terms near 1, so 1e-15 absolute besides 1e-12 relative). */
    static const double qs[][2] = {{0.01, 1.0}, {0.1, 2.0}, {0.5, 0.8}, {0.004, 5.0}, {0.9, 1.3}};
    for (size_t c = 0; c < sizeof qs / sizeof qs[0]; c++)
        for (int a = 2; a <= 64; a++) {
            double fi = fedc_rdp_sgm(qs[c][0], qs[c][1], a);
            double ff = fedc_rdp_sgm_frac(qs[c][0], qs[c][1], a);
            assert_true(fabs(ff - fi) <= 1e-12 * fi + 1e-15);
        }
    /* No sampling: the Gaussian mechanism's alpha / (2 sigma^2); q = 0 costs nothing. */
    assert_true(rel_close(fedc_rdp_sgm_frac(1.0, 2.0, 3.7), 3.7 / 8.0, 1e-15));
    assert_true(fedc_rdp_sgm_frac(0.0, 2.0, 3.7) == 0.0);
    /* Between integer orders, RDP is monotone in alpha (van Erven and Harremoës 2014). */
    double prev = 0;
    for (double a = 1.25; a <= 12; a += 0.25) {
        double r = fedc_rdp_sgm_frac(0.05, 1.1, a);
        assert_true(r > prev);
        prev = r;
    }
    assert_true(isnan(fedc_rdp_sgm_frac(0.1, 1.0, 1.0)));
    assert_true(isnan(fedc_rdp_sgm_frac(0.1, 1.0, NAN)));
    assert_true(isnan(fedc_rdp_sgm_frac(0.1, -1.0, 2.5)));
    assert_true(isnan(fedc_rdp_sgm_frac(1.5, 1.0, 2.5)));
}

static void test_end_to_end(void **state) {
    (void)state;
    double e, order, ints[FEDC_DP_MAX_ORDERS], defs[FEDC_DP_MAX_ORDERS];
    int n_int = fedc_dp_orders_integer(ints), n_def = fedc_dp_orders_default(defs);
    assert_int_equal(n_int, 255);
    assert_int_equal(n_def, 282);
    assert_true(ints[0] == 2 && ints[254] == 256 && defs[0] == 1.25 && defs[35] == 10 &&
                defs[36] == 11 && defs[281] == 256);
    fedc_diag d;
    /* docs/security.md, integer orders 2..256, classic conversion:
     * q = 256/60000, sigma = 1.12, T = 14062, delta = 1e-5 -> 2.922 */
    assert_int_equal(
        fedc_dp_epsilon_orders(&e, &order, 256.0 / 60000.0, 1.12, 14062, 1e-5, ints, n_int, &d),
        FEDC_OK);
    print_message("epsilon %.4f at order %g (reference 2.922)\n", e, order);
    assert_true(fabs(e - 2.922) <= 1e-3);
    /* q = 0.01, sigma = 1.0, T = 1000, delta = 1e-5 -> 2.538 */
    assert_int_equal(fedc_dp_epsilon_orders(&e, &order, 0.01, 1.0, 1000, 1e-5, ints, n_int, &d),
                     FEDC_OK);
    print_message("epsilon %.4f at order %g (reference 2.538)\n", e, order);
    assert_true(fabs(e - 2.538) <= 1e-3 && order == 8);
    /* The default set contains the integer one: these two optima are at integer orders anyway. */
    assert_int_equal(fedc_dp_epsilon(&e, &order, 0.01, 1.0, 1000, 1e-5, &d), FEDC_OK);
    assert_true(fabs(e - 2.538) <= 1e-3 && order == 8);

    /* Over the default (fractional) set, against bench/rdp_reference.py: classic conversion of
     * per-step RDP from mpmath quadrature (quad) and from dp-accounting 0.6.0 (lib, see
     * test_fractional_references), and the integer-order optimum the fractional one beats. */
    static const struct {
        double q, sigma, steps, quad, lib, order, integer;
    } ref[] = {
        {0.01, 1.0, 10000, 7.430546, 7.430594, 4.25, 7.469182},
        {0.004, 0.9, 5000, 2.596461, 2.596461, 7.75, 2.608847},
        {0.1, 1.5, 500, 9.946368, 9.954100, 3.5, 10.148970},
    };
    for (size_t k = 0; k < sizeof ref / sizeof ref[0]; k++) {
        assert_int_equal(
            fedc_dp_epsilon(&e, &order, ref[k].q, ref[k].sigma, ref[k].steps, 1e-5, &d), FEDC_OK);
        print_message("q %g sigma %g T %g: epsilon %.6f at order %g (quad %.6f, dp-accounting "
                      "%.6f)\n",
                      ref[k].q, ref[k].sigma, ref[k].steps, e, order, ref[k].quad, ref[k].lib);
        assert_true(rel_close(e, ref[k].quad, 1e-3) && rel_close(e, ref[k].lib, 1e-3));
        assert_true(order == ref[k].order);
        double ei;
        assert_int_equal(fedc_dp_epsilon_orders(&ei, NULL, ref[k].q, ref[k].sigma, ref[k].steps,
                                                1e-5, ints, n_int, &d),
                         FEDC_OK);
        assert_true(rel_close(ei, ref[k].integer, 1e-3) && e < ei);
    }

    assert_int_equal(fedc_dp_epsilon(&e, &order, 1.5, 1.0, 1000, 1e-5, &d), FEDC_EINVAL);
    assert_int_equal(fedc_dp_epsilon(&e, &order, 0.01, 1.0, 1000, 0.0, &d), FEDC_EINVAL);
    const double bad[] = {2, 0.5};
    assert_int_equal(fedc_dp_epsilon_orders(&e, &order, 0.01, 1.0, 10, 1e-5, bad, 2, &d),
                     FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "RDP order 1 is 0.5"));
    assert_int_equal(fedc_dp_epsilon_orders(&e, &order, 0.01, 1.0, 10, 1e-5, bad, 0, &d),
                     FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "at least one RDP order"));
}

static void test_sigma_for_target(void **state) {
    (void)state;
    double sigma, e, ints[FEDC_DP_MAX_ORDERS];
    int n_int = fedc_dp_orders_integer(ints);
    fedc_diag d;
    assert_int_equal(fedc_dp_sigma_for_orders(&sigma, 0.01, 1000, 1e-5, 2.538, ints, n_int, &d),
                     FEDC_OK);
    assert_true(fabs(sigma - 1.0) < 0.01);
    assert_int_equal(fedc_dp_sigma_for(&sigma, 0.01, 1000, 1e-5, 2.538, &d), FEDC_OK);
    assert_true(fabs(sigma - 1.0) < 0.01);
    assert_int_equal(fedc_dp_epsilon(&e, NULL, 0.01, sigma, 1000, 1e-5, &d), FEDC_OK);
    assert_true(e <= 2.538 + 1e-9);
    /* Fractional orders need less noise for the same target where their optimum is fractional. */
    double s_int, s_def;
    assert_int_equal(fedc_dp_sigma_for_orders(&s_int, 0.1, 500, 1e-5, 10.0, ints, n_int, &d),
                     FEDC_OK);
    assert_int_equal(fedc_dp_sigma_for(&s_def, 0.1, 500, 1e-5, 10.0, &d), FEDC_OK);
    print_message("sigma for epsilon 10: %.4f (integer orders), %.4f (default)\n", s_int, s_def);
    assert_true(s_def < s_int);
    assert_int_equal(fedc_dp_sigma_for(&sigma, 1.0, 1e9, 1e-5, 1e-6, &d), FEDC_ERANGE);
}

/* ---- secret Gaussian noise ------------------------------------------------------------------- */

#define N_DRAWS 1000000
/* Kolmogorov-Smirnov at significance 1e-6: P(sqrt(n) D > t) ~ 2 exp(-2 t^2) (the leading term
 * of Kolmogorov's series, accurate to far better than 1e-6 here) gives t = sqrt(ln(2e6) / 2)
 * = 2.6935. The moment checks allow 5 standard errors (two-sided 5.7e-7 each), so a correct
 * generator fails this test with probability about 2e-6. */
#define KS_T 2.6935
#define Z_MAX 5.0

typedef struct normal_check {
    double mean, var;     /* sample mean and (unbiased) variance */
    double z_mean, z_var; /* their distances from 0 and sd^2 in standard errors */
    double ks, ks_crit;   /* Kolmogorov-Smirnov distance to N(0, sd^2) and its critical value */
} normal_check;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Tests x[0..n) (n >= 2) against N(0, sd^2): mean, variance (standard error from the fourth
 * central moment: Var(s^2) ~ (m4 - m2^2) / n), and the KS distance; scratch holds n doubles. */
static normal_check check_normal(const float *x, size_t n, double sd, double *scratch) {
    normal_check c;
    double s = 0, m2 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    c.mean = s / n;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - c.mean, d2 = dx * dx;
        m2 += d2;
        m4 += d2 * d2;
    }
    m2 /= n;
    m4 /= n;
    c.var = m2 * n / (n - 1.0);
    c.z_mean = c.mean / sqrt(c.var / n);
    c.z_var = (c.var - sd * sd) / sqrt((m4 - m2 * m2) / n);
    for (size_t i = 0; i < n; i++)
        scratch[i] = x[i];
    qsort(scratch, n, sizeof *scratch, cmp_double);
    c.ks = 0;
    for (size_t i = 0; i < n; i++) {
        double f = 0.5 * erfc(-scratch[i] / (sd * sqrt(2.0)));
        double lo = f - (double)i / n, hi = (i + 1.0) / n - f;
        c.ks = fmax(c.ks, fmax(lo, hi));
    }
    c.ks_crit = KS_T / sqrt((double)n);
    return c;
}

static int passes(const normal_check *c) {
    return fabs(c->z_mean) <= Z_MAX && fabs(c->z_var) <= Z_MAX && c->ks <= c->ks_crit;
}

static void print_check(const char *what, const normal_check *c) {
    print_message("%s: mean %.5f (z %.2f), variance %.4f (z %.2f), KS %.5f (critical %.5f): %s\n",
                  what, c->mean, c->z_mean, c->var, c->z_var, c->ks, c->ks_crit,
                  passes(c) ? "pass" : "FAIL");
}

static double now_ms(void) {
    return 1e3 * fedc_clock_s();
}

/* splitmix64 (Steele, Lea, Flood 2014), a reproducible source for the uniform control only. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void test_noise_distribution(void **state) {
    (void)state;
    float *x = calloc(N_DRAWS, sizeof *x);
    double *scratch = malloc(N_DRAWS * sizeof *scratch);
    assert_non_null(x);
    assert_non_null(scratch);
    fedc_dp_noise g;
    fedc_dp_noise_init(&g);
    double t0 = now_ms();
    fedc_dp_noise_add(&g, x, N_DRAWS, 3.0);
    double t1 = now_ms();
    print_message("fedc_dp_noise_add: %d draws in %.1f ms\n", N_DRAWS, t1 - t0);
    normal_check c = check_normal(x, N_DRAWS, 3.0, scratch);
    print_check("sd 3 against N(0, 9)", &c);
    assert_true(passes(&c));

    /* Negative controls: the same checks must reject sd 3.3 against N(0, 9), and uniform noise of
     * the right variance (on +-3 sqrt(3)), which only the KS statistic can tell apart. */
    memset(x, 0, N_DRAWS * sizeof *x);
    fedc_dp_noise_add(&g, x, N_DRAWS, 3.3);
    c = check_normal(x, N_DRAWS, 3.0, scratch);
    print_check("sd 3.3 against N(0, 9) (must fail)", &c);
    assert_false(passes(&c));
    assert_true(c.ks > c.ks_crit && fabs(c.z_var) > Z_MAX);
    uint64_t seed = 42;
    for (size_t i = 0; i < N_DRAWS; i++)
        x[i] = (float)(((double)(splitmix64(&seed) >> 11) * 0x1p-53 * 2 - 1) * 3 * sqrt(3.0));
    c = check_normal(x, N_DRAWS, 3.0, scratch);
    print_check("uniform, variance 9, against N(0, 9) (must fail)", &c);
    assert_false(passes(&c));
    assert_true(c.ks > c.ks_crit);

    /* The noise adds to what is there. */
    for (size_t i = 0; i < N_DRAWS; i++)
        x[i] = 1000.0f;
    fedc_dp_noise_add(&g, x, N_DRAWS, 3.0);
    for (size_t i = 0; i < N_DRAWS; i++)
        x[i] -= 1000.0f;
    c = check_normal(x, N_DRAWS, 3.0, scratch);
    assert_true(fabs(c.z_mean) <= Z_MAX && fabs(c.z_var) <= Z_MAX);
    fedc_dp_noise_wipe(&g);
    free(scratch);
    free(x);
}

static void test_noise_streams(void **state) {
    (void)state;
    enum { N = 1001 }; /* odd: the last pair's second draw is dropped */
    static float a[N], b[N], c[N];
    fedc_dp_noise g1, g2;
    fedc_dp_noise_init(&g1);
    fedc_dp_noise_init(&g2);
    /* Secret keys: two streams initialised separately differ. */
    assert_memory_not_equal(g1.key, g2.key, sizeof g1.key);
    assert_true(g1.counter == 0 && g2.counter == 0);
    fedc_dp_noise_add(&g1, a, N, 1.0);
    fedc_dp_noise_add(&g2, b, N, 1.0);
    assert_memory_not_equal(a, b, sizeof a);
    int nonzero = 0;
    for (int i = 0; i < N; i++)
        nonzero += a[i] != 0;
    assert_true(nonzero == N);

    /* A stream position is a function of (key, counter) and is used once: a copy replays it, the
     * stream itself moves on. */
    fedc_dp_noise copy = g1;
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    memset(c, 0, sizeof c);
    fedc_dp_noise_add(&copy, a, N, 1.0);
    fedc_dp_noise_add(&g1, b, N, 1.0);
    assert_memory_equal(a, b, sizeof a);
    assert_true(copy.counter == g1.counter);
    uint64_t before = g1.counter;
    fedc_dp_noise_add(&g1, c, N, 1.0);
    assert_true(g1.counter > before);
    assert_memory_not_equal(b, c, sizeof b);

    /* Across the 32-bit block counter into the next nonce: still fresh keystream. */
    fedc_dp_noise_wipe(&copy);
    copy = g1;
    copy.counter = ((uint64_t)1 << 32) - 3;
    static float big[20000];
    fedc_dp_noise_add(&copy, big, 20000, 1.0);
    assert_true(copy.counter > ((uint64_t)1 << 32));
    int equal = 0;
    for (int i = 1; i < 20000; i++)
        equal += big[i] == big[i - 1];
    assert_true(equal < 5);

    /* sd = 0 leaves x untouched, bit for bit (including -0.0f). */
    for (int i = 0; i < N; i++)
        a[i] = (float)i * 0.37f - 100.0f;
    a[7] = -0.0f;
    memcpy(b, a, sizeof a);
    fedc_dp_noise_add(&g2, a, N, 0.0);
    assert_memory_equal(a, b, sizeof a);

    /* Wiping clears key and counter. */
    fedc_dp_noise_wipe(&g1);
    static const unsigned char zero[32];
    assert_memory_equal(g1.key, zero, sizeof zero);
    assert_true(g1.counter == 0);
    fedc_dp_noise_wipe(&g2);
    fedc_dp_noise_wipe(&copy);
}

/* The parallel form: parts drawn from reserved regions, in any order and on any thread, are the
 * same normal noise; a region gives the same values whoever draws it (the threads of a step do
 * not depend on the team size); regions differ from each other and from later draws. */
static void test_noise_parts(void **state) {
    (void)state;
    enum { PART = 16384, PARTS = 61 }; /* 999,424 draws */
    const size_t n = (size_t)PART * PARTS;
    float *x = calloc(n, sizeof *x), *y = calloc(PART, sizeof *y), *z = calloc(PART, sizeof *z);
    double *scratch = malloc(n * sizeof *scratch);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(z);
    assert_non_null(scratch);
    fedc_dp_noise g;
    fedc_dp_noise_init(&g);
    fedc_dp_noise_add(&g, z, 5, 1.0); /* a partly used region: reserve must skip past it */
    uint64_t base = fedc_dp_noise_reserve(&g, PARTS);
    assert_true(base >= 1);
    /* Drawn backwards, as another thread order could. */
    for (int p = PARTS - 1; p >= 0; p--)
        fedc_dp_noise_add_part(&g, base + (uint64_t)p, x + (size_t)p * PART, PART, 3.0);
    normal_check c = check_normal(x, n, 3.0, scratch);
    print_check("61 parts at sd 3 against N(0, 9)", &c);
    assert_true(passes(&c));
    c = check_normal(x, n, 3.3, scratch);
    print_check("the same parts against N(0, 10.89) (must fail)", &c);
    assert_false(passes(&c));
    /* A region is a pure function of the key and its index. */
    fedc_dp_noise_add_part(&g, base + 7, y, PART, 3.0);
    assert_memory_equal(y, x + (size_t)7 * PART, PART * sizeof *y);
    /* Neighbouring regions, and what the stream draws next, share no value. */
    memset(z, 0, PART * sizeof *z);
    fedc_dp_noise_add(&g, z, PART, 3.0);
    uint64_t next = fedc_dp_noise_reserve(&g, 2);
    assert_true(next > base + PARTS);
    int same = 0;
    for (int i = 0; i < PART; i++)
        same += x[i] == x[PART + i] || z[i] == x[i] || z[i] == x[(size_t)(PARTS - 1) * PART + i];
    assert_int_equal(same, 0);
    fedc_dp_noise_wipe(&g);
    free(scratch);
    free(x);
    free(y);
    free(z);
}

/* ---- discrete Gaussian ----------------------------------------------------------------------- */

/* Chi-square critical value at significance 1e-6 for df degrees of freedom (Wilson and Hilferty
 * 1931: chi2_df is about df (1 - 2/(9 df) + z sqrt(2/(9 df)))^3 with z = 4.7534, the standard
 * normal's 1 - 1e-6 quantile). */
static double chi2_crit(int df) {
    double k = df, h = 2.0 / (9.0 * k);
    return k * pow(1.0 - h + 4.7534 * sqrt(h), 3.0);
}

typedef struct disc_check {
    double mean, var;       /* sample mean and (unbiased) variance */
    double want_var;        /* the discrete Gaussian's exact variance (pmf summed) */
    double z_mean, z_var;   /* distances in standard errors (from the exact fourth moment) */
    double chi2, chi2_crit; /* chi-square against the exact pmf, and its critical value */
    int df;
} disc_check;

/* Tests x[0..n) against N_Z(0, sigma2): the pmf exp(-x^2 / (2 sigma2)) / Z summed over |x| <= L
 * with L = 12 sigma + 2 (the mass beyond is below e^-72), its exact variance and fourth moment,
 * and a chi-square over bins of consecutive integers each expecting at least max(5, n / 400)
 * draws (values beyond L count in the outermost bins). */
static disc_check check_discrete(const int64_t *x, size_t n, double sigma2) {
    disc_check c;
    const long L = (long)ceil(12.0 * sqrt(sigma2)) + 2, w = 2 * L + 1;
    double *pmf = malloc(sizeof(double) * (size_t)w);
    double *obs = calloc((size_t)w, sizeof(double));
    assert_non_null(pmf);
    assert_non_null(obs);
    double z = 0, m2 = 0, m4 = 0;
    for (long k = -L; k <= L; k++) {
        double p = exp(-(double)k * (double)k / (2.0 * sigma2));
        pmf[k + L] = p;
        z += p;
    }
    for (long k = -L; k <= L; k++) {
        pmf[k + L] /= z;
        m2 += pmf[k + L] * (double)k * (double)k;
        m4 += pmf[k + L] * pow((double)k, 4.0);
    }
    c.want_var = m2;
    double s = 0, v = 0;
    for (size_t i = 0; i < n; i++) {
        s += (double)x[i];
        long k = x[i] < -L ? -L : x[i] > L ? L : (long)x[i];
        obs[k + L] += 1;
    }
    c.mean = s / (double)n;
    for (size_t i = 0; i < n; i++)
        v += ((double)x[i] - c.mean) * ((double)x[i] - c.mean);
    c.var = v / ((double)n - 1.0);
    c.z_mean = c.mean / sqrt(m2 / (double)n);
    c.z_var = (c.var - m2) / sqrt((m4 - m2 * m2) / (double)n);
    /* Bins: consecutive integers until the expected count reaches emin; a short last bin joins
     * the one before it. */
    const double emin = fmax(5.0, (double)n / 400.0);
    double e = 0, o = 0, last_e = 0, last_o = 0;
    int have_last = 0;
    c.chi2 = 0;
    c.df = -1;
    for (long k = 0; k < w; k++) {
        e += pmf[k] * (double)n;
        o += obs[k];
        if (e >= emin || k == w - 1) {
            if (e < emin && have_last) { /* merge the short tail into the previous bin */
                c.chi2 -= (last_o - last_e) * (last_o - last_e) / last_e;
                e += last_e;
                o += last_o;
                c.df--;
            }
            c.chi2 += (o - e) * (o - e) / e;
            c.df++;
            last_e = e;
            last_o = o;
            have_last = 1;
            e = o = 0;
        }
    }
    c.chi2_crit = chi2_crit(c.df);
    free(pmf);
    free(obs);
    return c;
}

static int disc_passes(const disc_check *c) {
    return fabs(c->z_mean) <= Z_MAX && fabs(c->z_var) <= Z_MAX && c->chi2 <= c->chi2_crit;
}

static void print_disc(const char *what, const disc_check *c) {
    print_message("%s: mean %.5g (z %.2f), variance %.6g (exact %.6g, z %.2f), chi-square %.1f "
                  "(%d df, critical %.1f): %s\n",
                  what, c->mean, c->z_mean, c->var, c->want_var, c->z_var, c->chi2, c->df,
                  c->chi2_crit, disc_passes(c) ? "pass" : "FAIL");
}

/* Variance of Lap_Z(t), P(x) ~ exp(-|x| / t): 2 r / (1 - r)^2 with r = exp(-1 / t). */
static double dlaplace_var(double t) {
    double r = exp(-1.0 / t);
    return 2.0 * r / ((1.0 - r) * (1.0 - r));
}

#define N_DISC 1000000

/* N_Z(0, sigma^2) at small and large sigma against its exact pmf (moments and chi-square), with
 * negative controls that the same check must reject: the rounded continuous Gaussian (the naive
 * sampler), the discrete Gaussian at a sigma 4% off, and discrete Laplace noise of the same
 * variance (which only the chi-square can tell apart). */
static void test_dgauss_distribution(void **state) {
    (void)state;
    int64_t *x = malloc(N_DISC * sizeof *x);
    float *f = malloc(N_DISC * sizeof *f);
    assert_non_null(x);
    assert_non_null(f);
    fedc_dp_noise g;
    fedc_dp_noise_init(&g);
    fedc_diag d;
    static const double sigmas[] = {0.5, 1.5, 1e4};
    for (size_t k = 0; k < sizeof sigmas / sizeof sigmas[0]; k++) {
        fedc_dgauss_param p;
        assert_int_equal(fedc_dgauss_param_from(&p, sigmas[k], &d), FEDC_OK);
        memset(x, 0, N_DISC * sizeof *x);
        double t0 = now_ms();
        fedc_dgauss_add(&g, x, N_DISC, &p);
        double t1 = now_ms();
        char what[96];
        snprintf(what, sizeof what, "N_Z(0, %g^2), %d draws in %.0f ms", sigmas[k], N_DISC,
                 t1 - t0);
        disc_check c = check_discrete(x, N_DISC, sigmas[k] * sigmas[k]);
        print_disc(what, &c);
        assert_true(disc_passes(&c));
        /* Below sigma^2 at small sigma (CKS20), equal to it at large sigma. */
        if (sigmas[k] < 1)
            assert_true(c.want_var < 0.99 * sigmas[k] * sigmas[k]);
        else
            assert_true(c.want_var <= sigmas[k] * sigmas[k] * (1 + 1e-12));
    }
    /* A rational sigma^2 = 7 / 3, exactly. */
    fedc_dgauss_param p;
    assert_int_equal(fedc_dgauss_param_make(&p, 7, 3, &d), FEDC_OK);
    assert_true(p.t == 2);
    memset(x, 0, N_DISC * sizeof *x);
    fedc_dgauss_add(&g, x, N_DISC, &p);
    disc_check c = check_discrete(x, N_DISC, 7.0 / 3.0);
    print_disc("N_Z(0, 7/3)", &c);
    assert_true(disc_passes(&c));

    /* Controls. The continuous Gaussian rounded to integers at sigma 0.5: P(0) is 0.683 instead
     * of 0.787. */
    memset(f, 0, N_DISC * sizeof *f);
    fedc_dp_noise_add(&g, f, N_DISC, 0.5);
    for (size_t i = 0; i < N_DISC; i++)
        x[i] = (int64_t)lrintf(f[i]);
    c = check_discrete(x, N_DISC, 0.25);
    print_disc("control: rounded N(0, 0.5^2) against N_Z(0, 0.5^2) (must fail)", &c);
    assert_false(disc_passes(&c));
    assert_true(c.chi2 > c.chi2_crit);
    /* The discrete Gaussian at sigma 1.56 checked against 1.5. */
    assert_int_equal(fedc_dgauss_param_from(&p, 1.56, &d), FEDC_OK);
    memset(x, 0, N_DISC * sizeof *x);
    fedc_dgauss_add(&g, x, N_DISC, &p);
    c = check_discrete(x, N_DISC, 1.5 * 1.5);
    print_disc("control: N_Z(0, 1.56^2) against N_Z(0, 1.5^2) (must fail)", &c);
    assert_false(disc_passes(&c));
    assert_true(fabs(c.z_var) > Z_MAX);
    /* Discrete Laplace of the same variance, small and large: the moments agree, the shape does
     * not. */
    static const uint64_t ts[] = {1, 7071};
    for (size_t k = 0; k < 2; k++) {
        double var = dlaplace_var((double)ts[k]);
        memset(x, 0, N_DISC * sizeof *x);
        fedc_dlaplace_add(&g, x, N_DISC, ts[k]);
        c = check_discrete(x, N_DISC, var);
        char what[128];
        snprintf(what, sizeof what,
                 "control: Lap_Z(%llu) against N_Z(0, %.6g), the same variance (must fail)",
                 (unsigned long long)ts[k], var);
        print_disc(what, &c);
        assert_true(fabs(c.z_mean) <= Z_MAX);
        assert_true(c.chi2 > c.chi2_crit);
        assert_false(disc_passes(&c));
    }
    /* The noise adds to what is there; two streams differ. */
    fedc_dp_noise h;
    fedc_dp_noise_init(&h);
    assert_int_equal(fedc_dgauss_param_from(&p, 3.0, &d), FEDC_OK);
    int64_t a[64], b[64];
    for (int i = 0; i < 64; i++)
        a[i] = b[i] = INT64_C(1) << 40;
    fedc_dgauss_add(&g, a, 64, &p);
    fedc_dgauss_add(&h, b, 64, &p);
    int same = 0, near = 0;
    for (int i = 0; i < 64; i++) {
        same += a[i] == b[i];
        near += llabs(a[i] - (INT64_C(1) << 40)) < 40;
    }
    assert_true(same < 32);
    assert_int_equal(near, 64);
    fedc_dp_noise_wipe(&h);
    fedc_dp_noise_wipe(&g);
    free(x);
    free(f);
}

/* Bernoulli(exp(-gamma)) for rational gamma below and above 1 (CKS20 Algorithm 1): the share of
 * ones within 5 standard errors of exp(-gamma); a control against a gamma 10% off must fail. */
static void test_bern_exp(void **state) {
    (void)state;
    enum { TRIALS = 400000 };
    fedc_dp_noise g;
    fedc_dp_noise_init(&g);
    static const uint64_t cases[][2] = {{0, 1}, {1, 2}, {1, 1},
                                        {7, 3}, {5, 1}, {123456789, 98765432}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double gamma = (double)cases[k][0] / (double)cases[k][1], p = exp(-gamma);
        size_t ones = fedc__dp_bern_exp_count(&g, cases[k][0], cases[k][1], TRIALS);
        double share = (double)ones / TRIALS, se = sqrt(p * (1 - p) / TRIALS);
        print_message("Bernoulli(exp(-%llu/%llu)): %.5f, want %.5f (z %.2f)\n",
                      (unsigned long long)cases[k][0], (unsigned long long)cases[k][1], share, p,
                      se > 0 ? (share - p) / se : 0.0);
        if (cases[k][0] == 0)
            assert_int_equal(ones, TRIALS);
        else
            assert_true(fabs(share - p) <= Z_MAX * se);
        if (k == 1) { /* control: the same draws against gamma 0.55 */
            double q = exp(-0.55), se_q = sqrt(q * (1 - q) / TRIALS);
            assert_true(fabs(share - q) > Z_MAX * se_q);
        }
    }
    fedc_dp_noise_wipe(&g);
}

/* sigma^2 as a rational: rounded up and close; out-of-range and overflowing representations are
 * refused with a reason. */
static void test_dgauss_params(void **state) {
    (void)state;
    fedc_dgauss_param p;
    fedc_diag d;
    static const double sigmas[] = {FEDC_DGAUSS_MIN_SIGMA, 0.5, 1.0, 1.5, 1e4, 3.3e6,
                                    FEDC_DGAUSS_MAX_SIGMA};
    for (size_t k = 0; k < sizeof sigmas / sizeof sigmas[0]; k++) {
        double s = sigmas[k];
        assert_int_equal(fedc_dgauss_param_from(&p, s, &d), FEDC_OK);
        long double r = (long double)p.num / (long double)p.den, want = (long double)s * s;
        print_message("sigma %g: sigma^2 = %llu / %llu, t = %llu\n", s, (unsigned long long)p.num,
                      (unsigned long long)p.den, (unsigned long long)p.t);
        assert_true(r >= want);
        assert_true(r - want <= want * 0x1p-40L);
        assert_true(p.t == (uint64_t)floor(s) + 1);
    }
    assert_int_equal(fedc_dgauss_param_from(&p, 1e8, &d), FEDC_ERANGE);
    assert_non_null(strstr(d.msg, "sigma 1e+08 is outside the supported range"));
    assert_int_equal(fedc_dgauss_param_from(&p, 0.001, &d), FEDC_ERANGE);
    assert_int_equal(fedc_dgauss_param_from(&p, NAN, &d), FEDC_ERANGE);
    assert_int_equal(fedc_dgauss_param_make(&p, 0, 1, &d), FEDC_ERANGE);
    assert_non_null(strstr(d.msg, "expected both positive"));
    assert_int_equal(fedc_dgauss_param_make(&p, (UINT64_C(1) << 62) + 1, UINT64_C(1) << 62, &d),
                     FEDC_ERANGE);
    assert_non_null(strstr(d.msg, "beyond 128 bits"));
    assert_int_equal(fedc_dgauss_param_make(&p, 1, UINT64_C(1) << 20, &d), FEDC_ERANGE);
    assert_non_null(strstr(d.msg, "outside the supported range"));
}

int main(void) {
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_step),
        cmocka_unit_test(test_log_erfc),
        cmocka_unit_test(test_fractional_references),
        cmocka_unit_test(test_fractional_edges),
        cmocka_unit_test(test_end_to_end),
        cmocka_unit_test(test_sigma_for_target),
        cmocka_unit_test(test_noise_distribution),
        cmocka_unit_test(test_noise_streams),
        cmocka_unit_test(test_noise_parts),
        cmocka_unit_test(test_bern_exp),
        cmocka_unit_test(test_dgauss_params),
        cmocka_unit_test(test_dgauss_distribution),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
