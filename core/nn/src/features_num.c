/* Number text for the features engine (fedc/features.h): a %.15g writer and a strtod-exact
 * reader, both with a fast path for the common case (plain decimals, values from 1e-4 to 1e15)
 * and the C library for everything else. printf and strtod cost about as much as all the rest of
 * a row's work together; these make fedc features' throughput several times higher. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/features.h"

/* 10^0 .. 10^19: exact in long double (64-bit significand; 10^19 < 2^64) and in uint64_t. */
static const uint64_t g_p10u[20] = {1ull,
                                    10ull,
                                    100ull,
                                    1000ull,
                                    10000ull,
                                    100000ull,
                                    1000000ull,
                                    10000000ull,
                                    100000000ull,
                                    1000000000ull,
                                    10000000000ull,
                                    100000000000ull,
                                    1000000000000ull,
                                    10000000000000ull,
                                    100000000000000ull,
                                    1000000000000000ull,
                                    10000000000000000ull,
                                    100000000000000000ull,
                                    1000000000000000000ull,
                                    10000000000000000000ull};

size_t fedc_fmt_g15(char *buf, double v) {
    if (v == 0) {
        buf[0] = '0'; /* -0 too */
        return 1;
    }
    double a = fabs(v);
    /* %.15g writes fixed notation for decimal exponents -4..14; outside, the C library, and
     * always where long double is no wider than double (the product below would not be exact
     * enough) */
    if (!(a >= 1e-4 && a < 1e15) || LDBL_MANT_DIG < 64)
        return (size_t)snprintf(buf, 32, "%.15g", v);
    /* e: the decimal exponent, 10^e <= a < 10^(e+1); m = a * 10^(14 - e) has 15 digits before
     * the point. The product is rounded once, in long double (10^k is exact there). */
    int e = 0;
    if (a >= 1) {
        while (e < 14 && a >= (double)g_p10u[e + 1])
            e++;
    } else {
        e = -1;
        while (e > -4 && a * (double)g_p10u[-e] < 1)
            e--;
    }
    long double m;
    for (;;) {
        int k = 14 - e;
        m = (long double)a * (long double)g_p10u[k];
        if (m >= 1e15L && e < 14)
            e++;
        else if (m < 1e14L && k < 19)
            e--;
        else
            break;
    }
    long double fl = floorl(m), frac = m - fl;
    /* m < 2^50 is known to 2^-14 (its rounding in a 64-bit significand): a fraction that close
     * to a half may round either way, and is left to the C library, which rounds exactly */
    if (fabsl(frac - 0.5L) < 1.0L / 8192)
        return (size_t)snprintf(buf, 32, "%.15g", v);
    uint64_t digits = (uint64_t)fl;
    if (frac > 0.5L)
        digits++;
    if (digits >= g_p10u[15]) {
        digits /= 10; /* 999...9.5 became 10^15: one more digit before the point */
        e++;
        if (e > 14)
            return (size_t)snprintf(buf, 32, "%.15g", v);
    }
    char d[15];
    for (int i = 14; i >= 0; i--) {
        d[i] = (char)('0' + digits % 10);
        digits /= 10;
    }
    int last = 14; /* the last digit that is not a trailing zero of the fraction */
    int int_digits = e >= 0 ? e + 1 : 0;
    while (last >= int_digits && d[last] == '0')
        last--;
    size_t n = 0;
    if (v < 0)
        buf[n++] = '-';
    if (e >= 0) {
        memcpy(buf + n, d, (size_t)int_digits);
        n += (size_t)int_digits;
        if (last >= int_digits) {
            buf[n++] = '.';
            memcpy(buf + n, d + int_digits, (size_t)(last - int_digits + 1));
            n += (size_t)(last - int_digits + 1);
        }
    } else {
        buf[n++] = '0';
        buf[n++] = '.';
        for (int z = -1; z > e; z--)
            buf[n++] = '0';
        memcpy(buf + n, d, (size_t)(last + 1));
        n += (size_t)(last + 1);
    }
    return n;
}

int fedc_parse_real(const char *s, size_t n, double *out) {
    /* Fast path: [+-]digits[.digits] with at most 19 digits, whose value m / 10^f has m below
     * 2^53 and f <= 22: then m and 10^f are exact doubles and one division rounds correctly
     * (Clinger 1990), as strtod does. */
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    uint64_t m = 0;
    int nd = 0, f = 0, dot = 0, fast = 1;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (nd == 19) {
                fast = 0;
                break;
            }
            m = m * 10 + (uint64_t)(c - '0');
            nd++;
            f += dot;
        } else if (c == '.' && !dot) {
            dot = 1;
        } else {
            fast = 0;
            break;
        }
    }
    if (fast && nd > 0 && m <= (1ull << 53) && f <= 22) {
        static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
        double v = (double)m / p10[f];
        *out = neg ? -v : v;
        return 0;
    }
    /* Anything else (exponents, long mantissas, blanks, words): strtod on a NUL-terminated copy,
     * the whole text read and the value finite. */
    char small[64], *copy = n < sizeof small ? small : malloc(n + 1);
    if (!copy || n == 0) {
        if (copy && copy != small)
            free(copy);
        return -1;
    }
    memcpy(copy, s, n);
    copy[n] = 0;
    char *end = NULL;
    double v = strtod(copy, &end);
    int ok = end == copy + n && isfinite(v);
    if (copy != small)
        free(copy);
    if (!ok)
        return -1;
    *out = v;
    return 0;
}
