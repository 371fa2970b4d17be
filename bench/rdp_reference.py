#!/usr/bin/env python3
"""Reference values for tests/fl/test_dp.c, from two implementations independent of fedc.

1. Google's dp-accounting package (pip install dp-accounting; the values in test_dp.c came from
   version 0.6.0): per-step RDP of the Poisson-sampled Gaussian mechanism from
   dp_accounting.rdp.rdp_privacy_accountant._compute_rdp_poisson_subsampled_gaussian(q, sigma,
   [alpha]). Its fractional-order series (_compute_log_a_frac) adds the generalised binomial
   coefficients C(alpha, k) by absolute value (log-gamma drops their sign for k > alpha + 1), so
   at fractional orders it returns an upper bound rather than A_alpha itself; the bound is tight
   at large orders but several per cent high near alpha = 1.5 (and it gives up, returning inf, at
   q = 0.5, sigma = 0.8, alpha <= 1.75 after 1000 terms).
2. Direct numerical integration (mpmath 1.4.1, 40 digits) of the definition of
   A_alpha = E_{z ~ N(0, sigma^2)} [((1-q) + q exp((2z - 1) / (2 sigma^2)))^alpha]
   (Mironov, Talwar, Zhang 2019, section 3.3), the exact value the signed series converges to.

Epsilon after T steps uses the classic conversion (Mironov 2017, proposition 3)
    epsilon = min over orders a of T * rdp(a) + ln(1 / delta) / (a - 1),
computed here from either source's RDP values, because dp-accounting's compute_epsilon applies the
improved conversion of Balle et al. 2020 (printed too, for information only).

Run: python3 bench/rdp_reference.py   (needs dp-accounting, which brings mpmath)
"""
import math

import mpmath as mp
from dp_accounting.rdp import rdp_privacy_accountant as rdp

mp.mp.dps = 40


def default_orders():
    """fedc's default order set: 1.25..10 in steps of 0.25, then the integers 11..256."""
    return [0.25 * i for i in range(5, 41)] + [float(a) for a in range(11, 257)]


def rdp_library(q, sigma, alpha):
    return float(rdp._compute_rdp_poisson_subsampled_gaussian(q, sigma, [alpha])[0])


def rdp_quadrature(q, sigma, alpha):
    """ln(A_alpha) / (alpha - 1) with A_alpha integrated numerically from its definition."""
    q, s, a = mp.mpf(q), mp.mpf(sigma), mp.mpf(alpha)
    if float(alpha).is_integer():  # the finite binomial sum, exactly
        A = mp.fsum(mp.binomial(a, i) * (1 - q) ** (a - i) * q**i * mp.exp((i * i - i) / (2 * s * s))
                    for i in range(int(alpha) + 1))
    else:
        def f(z):
            return mp.npdf(z, 0, s) * ((1 - q) + q * mp.exp((2 * z - 1) / (2 * s * s))) ** a
        z0 = s * s * mp.log(1 / q - 1) + mp.mpf(1) / 2
        peak = a * s * s  # roughly where the tilted integrand peaks
        cuts = sorted({-20 * s, -5 * s, mp.mpf(0), z0, peak, peak + 10 * s, peak + 40 * s})
        A = mp.quad(f, [-mp.inf] + cuts + [mp.inf])
    return float(mp.log(A) / (a - 1))


def classic_epsilon(rdp_fn, q, sigma, steps, delta, orders):
    best = (math.inf, None)
    for a in orders:
        e = steps * rdp_fn(q, sigma, a) + math.log(1.0 / delta) / (a - 1.0)
        if e < best[0]:
            best = (e, a)
    return best


def main():
    print("per-step RDP: q sigma alpha -> dp-accounting, quadrature")
    for q, sigma in ((0.01, 1.0), (0.1, 2.0), (0.5, 0.8)):
        for a in (1.5, 2.5, 7.25, 20.5):
            print(f"  {q} {sigma} {a}: {rdp_library(q, sigma, a):.10e} "
                  f"{rdp_quadrature(q, sigma, a):.10e}")
    print("epsilon, classic conversion, default orders: dp-accounting, quadrature; integer orders")
    for q, sigma, steps, delta in ((0.01, 1.0, 10000, 1e-5), (0.004, 0.9, 5000, 1e-5),
                                   (0.1, 1.5, 500, 1e-5), (0.01, 1.0, 1000, 1e-5),
                                   (256.0 / 60000.0, 1.12, 14062, 1e-5)):
        orders = default_orders()
        e_lib, a_lib = classic_epsilon(rdp_library, q, sigma, steps, delta, orders)
        e_quad, a_quad = classic_epsilon(rdp_quadrature, q, sigma, steps, delta, orders)
        ints = [float(a) for a in range(2, 257)]
        e_int, a_int = classic_epsilon(rdp_library, q, sigma, steps, delta, ints)
        r = [steps * rdp_library(q, sigma, a) for a in orders]
        e_imp, a_imp = rdp.compute_epsilon(orders, r, delta)
        print(f"  q {q:.8g} sigma {sigma} T {steps} delta {delta}: {e_lib:.6f} (order {a_lib:g}), "
              f"{e_quad:.6f} (order {a_quad:g}); integer {e_int:.6f} (order {a_int:g}) "
              f"[improved conversion: {e_imp:.6f} at {a_imp:g}]")


if __name__ == "__main__":
    main()
