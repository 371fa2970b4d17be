/* Number text for the features engine (fedc/features.h): a %.15g writer and a strtod-exact
 * reader, both with a fast path for the common case (plain decimals, values from 1e-4 to 1e15)
 * and the C library for everything else. printf and strtod cost about as much as all the rest of
 * a row's work together; these make fedc features' throughput several times higher. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/features.h"

/* 10^0 .. 10^19 (10^19 < 2^64). */
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

#if defined(__SIZEOF_INT128__)
__extension__ typedef unsigned __int128 u128;
#define FAST_G15 1
#else
#define FAST_G15 0
#endif

static const char g_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

size_t fedc_fmt_g15(char *buf, double v) {
    if (v == 0) {
        buf[0] = '0'; /* -0 too */
        return 1;
    }
    double a = fabs(v);
    /* %.15g writes fixed notation for decimal exponents -4..14; outside, the C library (and
     * always without 128-bit integers) */
    if (!(a >= 1e-4 && a < 1e15) || !FAST_G15)
        return (size_t)snprintf(buf, 32, "%.15g", v);
#if FAST_G15
    /* a = mant * 2^-sh exactly (a normal double: 52 stored bits and the implicit one), with
     * 3 <= sh <= 67 in this range. e: the decimal exponent, 10^e <= a < 10^(e+1); the 15
     * significant digits are a * 10^(14 - e) rounded half to even, computed exactly in 128-bit
     * integers: mant * 10^k < 2^53 * 2^64. */
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    const uint64_t mant = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    const int sh = 1075 - (int)(bits >> 52);
    int e = 0;
    if (a >= 1) {
        while (e < 14 && a >= (double)g_p10u[e + 1])
            e++;
    } else {
        e = -1;
        while (e > -4 && a * (double)g_p10u[-e] < 1)
            e--;
    }
    u128 p, q;
    for (int tries = 0;; tries++) {
        p = (u128)mant * g_p10u[14 - e];
        q = p >> sh;
        if (q >= g_p10u[15] && e < 14 && tries < 4)
            e++;
        else if (q < g_p10u[14] && e > -4 && tries < 4)
            e--;
        else
            break;
    }
    const u128 rem = p - (q << sh), half = (u128)1 << (sh - 1);
    uint64_t digits = (uint64_t)q;
    if (rem > half || (rem == half && (digits & 1)))
        digits++;
    if (digits >= g_p10u[15]) {
        digits /= 10; /* 999...9.5 became 10^15: one more digit before the point */
        e++;
    }
    if (digits < g_p10u[14] || digits >= g_p10u[15] || e > 14)
        return (size_t)snprintf(buf, 32, "%.15g", v); /* cannot happen; kept safe */
    /* the 15 digits, two at a time (7 + 8), into d; d is padded so that the fixed-size copies
     * below may read past them */
    char d[32];
    memset(d + 15, '0', sizeof d - 15);
    const uint64_t top = digits / 100000000, low = digits % 100000000;
    d[0] = (char)('0' + top / 1000000);
    memcpy(d + 1, g_pairs + 2 * (top / 10000 % 100), 2);
    memcpy(d + 3, g_pairs + 2 * (top / 100 % 100), 2);
    memcpy(d + 5, g_pairs + 2 * (top % 100), 2);
    memcpy(d + 7, g_pairs + 2 * (low / 1000000), 2);
    memcpy(d + 9, g_pairs + 2 * (low / 10000 % 100), 2);
    memcpy(d + 11, g_pairs + 2 * (low / 100 % 100), 2);
    memcpy(d + 13, g_pairs + 2 * (low % 100), 2);
    int last = 14; /* the last digit that is not a trailing zero of the fraction */
    const int int_digits = e >= 0 ? e + 1 : 0;
    while (last >= int_digits && d[last] == '0')
        last--;
    size_t n = 0;
    if (v < 0)
        buf[n++] = '-';
    if (e >= 0) {
        /* fixed-size copies (the caller's 40 bytes hold them), the lengths counted after */
        memcpy(buf + n, d, 16);
        n += (size_t)int_digits;
        if (last >= int_digits) {
            buf[n++] = '.';
            memcpy(buf + n, d + int_digits, 16);
            n += (size_t)(last - int_digits + 1);
        }
    } else {
        memcpy(buf + n, "0.000", 5);
        n += (size_t)(1 - e); /* "0." and -e - 1 zeros */
        memcpy(buf + n, d, 16);
        n += (size_t)(last + 1);
    }
    return n;
#endif
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
