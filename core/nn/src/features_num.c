/* Number text for the features engine (fedc/features.h): a %.15g writer and a strtod-exact
 * reader, both with a fast path for the common case (plain decimals, values from 1e-4 to 1e15)
 * and the C library for everything else. printf and strtod cost about as much as all the rest of
 * a row's work together; these make fedc features' throughput several times higher. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features_engine_int.h"

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

/* The decimal digits of x < 10^8 as 8 bytes, most significant first in memory (little endian),
 * each 0..9 (add '0' to each byte for text): x splits into two halves of 4 digits, each into
 * pairs, each into digits, all lanes at once in one 64-bit word (SWAR), each division by a
 * multiplication and a shift exact for the lane's range (x / 100 = x * 10486 >> 20 for x < 10^4,
 * x / 10 = x * 103 >> 10 for x < 100). */
static inline uint64_t digits8(uint64_t x) {
    uint64_t hi = x / 10000, lo = x - hi * 10000;
    uint64_t m = hi | (lo << 32); /* lanes of 32 bits: the first 4 digits low */
    uint64_t t = ((m * 10486) >> 20) & 0x0000007F0000007Full;
    m = t | ((m - 100 * t) << 16); /* lanes of 16 bits: pairs */
    t = ((m * 103) >> 10) & 0x000F000F000F000Full;
    return t | ((m - 10 * t) << 8); /* lanes of 8 bits: digits */
}

#define ASCII0 0x3030303030303030ull

static inline size_t fmt_uint(char *buf, uint64_t v) {
    if (v < 10) {
        buf[0] = (char)('0' + v);
        return 1;
    }
    if (v < 100000000) {
        /* the 8 digits, the leading zeros (the low bytes) shifted out; the buffer has room for
         * the 8 bytes stored */
        uint64_t d = digits8(v);
        int lz = __builtin_ctzll(d) / 8;
        d = (d + ASCII0) >> (8 * lz);
        memcpy(buf, &d, 8);
        return (size_t)(8 - lz);
    }
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

#if FAST_G15
/* 10^k as doubles for k = -4..15 (g_p10d[k + 4]): exact from 10^0 on; below, the nearest doubles,
 * which all lie above the true powers, so that a >= g_p10d[k + 4] holds for a double a exactly
 * when a >= 10^k (no double lies between). */
static const double g_p10d[20] = {1e-4, 1e-3, 1e-2, 1e-1, 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,
                                  1e6,  1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
#endif

/* %.15g's text of v (buf: 40 bytes, which the fixed-size copies may use beyond the text). */
static inline size_t fmt_g15(char *buf, double v) {
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
     * 3 <= sh <= 66 in this range. */
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    const uint64_t mant = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    const int sh = 1075 - (int)(bits >> 52), b = 52 - sh;
    /* e, the decimal exponent (10^e <= a < 10^(e+1)), exactly: 2^b <= a < 2^(b + 1) puts it at
     * floor(b log10 2) or one more (78913 / 2^18 gives that floor for every b of the range,
     * -14..49; for negative b, as minus the ceiling of -b log10 2, shifting only non-negative
     * numbers), and one comparison with 10^(e+1) decides (exact, see g_p10d) */
    int e = b >= 0 ? (b * 78913) >> 18 : -((-b * 78913 + (1 << 18) - 1) >> 18);
    if (e < -4)
        e = -4;
    if (e < 14 && a >= g_p10d[e + 5])
        e++;
    /* The 15 significant digits: a * 10^(14 - e), in [10^14, 10^15), rounded half to even.
     * Scaled by 2^64 it is mant * 10^(14 - e) * 2^(64 - sh), an integer when sh <= 64 whose
     * high word is the integer part and whose low word the fraction, from one 64 x 64-bit
     * product: 10^(14 - e) * 2^(64 - sh) < 10^15 * 2^64 / mant <= 10^15 * 2^12 fits in 64 bits.
     * Only a < 2^-12 (sh 65, 66) needs the product shifted right by the rest, 1 or 2 bits,
     * which fall out as sticky bits. */
    const uint64_t p10 = g_p10u[14 - e];
    uint64_t digits, frac, sticky = 0;
    if (sh <= 64) {
        const u128 x = (u128)mant * (p10 << (64 - sh));
        digits = (uint64_t)(x >> 64);
        frac = (uint64_t)x;
    } else {
        const u128 x = (u128)mant * p10;
        const int d = sh - 64;
        const uint64_t hi = (uint64_t)(x >> 64), lo = (uint64_t)x;
        digits = hi >> d;
        frac = (hi << (64 - d)) | (lo >> d);
        sticky = lo & ((1ull << d) - 1);
    }
    const uint64_t half = 1ull << 63;
    if (frac > half || (frac == half && (sticky || (digits & 1))))
        digits++;
    if (digits == g_p10u[15]) {
        digits = g_p10u[14]; /* 999...9.5 became 10^15: one more digit before the point */
        e++;
    }
    /* digits is in [10^14, 10^15) now (e being exact); e is 15 for a value that rounds up to
     * 10^15, which %.15g writes in exponent notation */
    if (e > 14)
        return (size_t)snprintf(buf, 32, "%.15g", v);
    /* the 15 digits at d + 1 (d[0] is the leading 0 of the first 8), then zeros: the
     * fixed-size copies below may read past them */
    const uint64_t top = digits / 100000000, low = digits - top * 100000000;
    const uint64_t dt = digits8(top), dl = digits8(low);
    char d[40];
    const uint64_t at = dt + ASCII0, al = dl + ASCII0;
    memcpy(d, &at, 8);
    memcpy(d + 8, &al, 8);
    memset(d + 16, '0', 24);
    /* trailing zero digits of the 15, from the highest zero bytes of the digit words */
    const int tz = dl ? __builtin_clzll(dl) / 8 : 8 + (dt ? __builtin_clzll(dt) / 8 : 7);
    size_t n = 0;
    if (v < 0)
        buf[n++] = '-';
    if (e >= 0) {
        /* fixed-size copies (the caller's 40 bytes hold them), the lengths counted after */
        const int int_digits = e + 1, frac_digits = 15 - int_digits - tz;
        memcpy(buf + n, d + 1, 16);
        n += (size_t)int_digits;
        if (frac_digits > 0) {
            buf[n++] = '.';
            memcpy(buf + n, d + 1 + int_digits, 16);
            n += (size_t)frac_digits;
        }
    } else {
        memcpy(buf + n, "0.000", 5);
        n += (size_t)(1 - e); /* "0." and -e - 1 zeros */
        memcpy(buf + n, d + 1, 16);
        n += (size_t)(15 - tz);
    }
    return n;
#endif
}

size_t fedc_fmt_g15(char *buf, double v) {
    return fmt_g15(buf, v);
}

size_t feat_format(char *buf, const double *out, const unsigned char *is_int, int n_out, char sep) {
    char *p = buf;
    for (int c = 0; c < n_out; c++) {
        const double x = out[c];
        *p++ = sep;
        if (is_int[c] && x >= 0 && x < 9e15)
            p += fmt_uint(p, (uint64_t)x);
        else if (x == 0)
            *p++ = '0'; /* -0 too; the usual rate or mean over an empty window */
        else
            p += fmt_g15(p, x);
    }
    return (size_t)(p - buf);
}

/* fedc_parse_real's other cases (exponents, long mantissas, blanks, words): strtod on a
 * NUL-terminated copy, the whole text read and the value finite. Out of line: the fast path
 * keeps no buffer. */
static __attribute__((noinline)) int parse_real_slow(const char *s, size_t n, double *out) {
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

int fedc_parse_real(const char *s, size_t n, double *out) {
    /* Fast path: [+-]digits[.digits] with 1 to 19 digits, whose value m / 10^f has m at most
     * 2^53 (and f <= 19): then m and 10^f are exact doubles and one division rounds correctly
     * (Clinger 1990), as strtod does. m may wrap past 19 digits; it is not used then. */
    size_t i = 0;
    int neg = 0;
    if (n && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    uint64_t m = 0;
    const size_t int0 = i;
    for (unsigned d; i < n && (d = (unsigned)(unsigned char)s[i] - '0') < 10; i++)
        m = m * 10 + d;
    size_t nd = i - int0, f = 0;
    if (i < n && s[i] == '.') {
        const size_t frac0 = ++i;
        for (unsigned d; i < n && (d = (unsigned)(unsigned char)s[i] - '0') < 10; i++)
            m = m * 10 + d;
        f = i - frac0;
        nd += f;
    }
    if (i == n && nd > 0 && nd <= 19 && m <= (1ull << 53)) {
        static const double p10[20] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
                                       1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};
        double v = (double)m / p10[f];
        *out = neg ? -v : v;
        return 0;
    }
    return parse_real_slow(s, n, out);
}
