/* Fast float parsing and printing for CSV cells (fastnum.h). */
#include "fastnum.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Powers of ten that are exact doubles (up to 10^22 = 2^22 x 5^22, 5^22 < 2^53). */
static const double exact_p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The nearest doubles to 10^-k (literals are rounded correctly). */
static const double inv_p10[23] = {1e0,   1e-1,  1e-2,  1e-3,  1e-4,  1e-5,  1e-6,  1e-7,
                                   1e-8,  1e-9,  1e-10, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15,
                                   1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22};

static int is_digit(char c) {
    return (unsigned)(c - '0') < 10u;
}

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* 1 when d (in float's normal range) lies exactly halfway between two floats: the 29 bits of
 * its significand below float's 24 are 1 then zeros. Rounding such a double to float again
 * might not give the float nearest the decimal it came from. */
static int on_float_midpoint(double d) {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return (bits & ((UINT64_C(1) << 29) - 1)) == UINT64_C(1) << 28;
}

/* The careful path for numbers of more than 15 digits: digits past 2^53 are dropped, noting
 * whether any was nonzero. */
static const char *scan_long(float *v, const char *p, const char *end) {
#if FLT_EVAL_METHOD == 0
    /* m takes another digit while m * 10 + 9 stays below 2^53 (an exact double). */
    const uint64_t m_max = (UINT64_C(1) << 53) / 10 - 1;
    int neg = 0;
    if (p < end && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    uint64_t m = 0;
    int q = 0, digits = 0, lost = 0;
    for (; p < end && is_digit(*p); p++, digits++) {
        if (m <= m_max) {
            m = m * 10u + (uint64_t)(*p - '0');
        } else {
            q++;
            lost |= *p != '0';
        }
    }
    if (p < end && *p == '.') {
        for (p++; p < end && is_digit(*p); p++, digits++) {
            if (m <= m_max) {
                m = m * 10u + (uint64_t)(*p - '0');
                q--;
            } else {
                lost |= *p != '0';
            }
        }
    }
    if (digits == 0)
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '-' || *p == '+')) {
            eneg = *p == '-';
            p++;
        }
        if (p == end || !is_digit(*p))
            return NULL;
        int e = 0;
        for (; p < end && is_digit(*p); p++)
            if (e < 10000)
                e = e * 10 + (*p - '0');
        q += eneg ? -e : e;
    }
    if (q < -22 || q > 22)
        return NULL;
    /* x = m 10^q (or a little more when digits were lost); one correctly rounded operation. */
    double lo = q < 0 ? (double)m / exact_p10[-q] : (double)m * exact_p10[q];
    if (on_float_midpoint(lo))
        return NULL;
    float f = (float)lo;
    if (lost) {
        double hi = q < 0 ? (double)(m + 1) / exact_p10[-q] : (double)(m + 1) * exact_p10[q];
        if (on_float_midpoint(hi) || (float)hi != f)
            return NULL;
    }
    *v = neg ? -f : f;
    return p;
#else
    (void)v;
    (void)p;
    (void)end;
    return NULL;
#endif
}

/* Eight bytes at p at once (p + 8 must be readable): how many of them, from the first, are
 * decimal digits (n, 0..8), and in *val the number those n digits write. A byte is a digit when
 * its high nibble is 3 and its low nibble at most 9 (low + 6 stays below 16). The digits, less
 * '0', are moved to the top of the word (the bytes below become leading zeros; the bytes after
 * the run, where subtracting '0' may have borrowed, fall off), then added up in pairs, fours and
 * eights: 10 a + b in each byte pair, 100 ab + cd in each 16-bit pair, 10^4 abcd + efgh; every
 * partial sum fits its lane, so no lane carries into the next. */
static inline int digits8(const char *p, uint64_t *val) {
    const uint64_t ones = UINT64_C(0x0101010101010101);
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t bad =
        ((v & 0xF0 * ones) ^ (0x30 * ones)) | (((v & 0x0F * ones) + 6 * ones) & 0xF0 * ones);
    int n = bad ? __builtin_ctzll(bad) >> 3 : 8;
    if (n == 0) {
        *val = 0;
        return 0;
    }
    uint64_t d = (v - 0x30 * ones) << (8 * (8 - n));
    d = (d * 10 + (d >> 8)) & UINT64_C(0x00FF00FF00FF00FF);
    d = (d * 100 + (d >> 16)) & UINT64_C(0x0000FFFF0000FFFF);
    d = (d * 10000 + (d >> 32)) & UINT64_C(0xFFFFFFFF);
    *val = d;
    return n;
}

/* Reads a run of digits at p (before end) into m (m = m 10^k + run); returns the run's length. */
static inline int digit_run(uint64_t *m, const char *p, const char *end) {
    static const uint64_t pow10u[9] = {1,      10,      100,      1000,     10000,
                                       100000, 1000000, 10000000, 100000000};
    uint64_t val;
    if (end - p >= 8) {
        int n = digits8(p, &val);
        if (n < 8) {
            *m = *m * pow10u[n] + val;
            return n;
        }
    }
    const char *s = p;
    while (p < end && is_digit(*p))
        *m = *m * 10u + (uint64_t)(*p++ - '0');
    return (int)(p - s);
}

const char *cli_scan_float(float *v, const char *p, const char *end) {
#if FLT_EVAL_METHOD == 0
    /* Up to 15 digits in all: m < 10^15 < 2^53 is exact; longer numbers take scan_long (a run of
     * digits may overflow m here, but then the count is over 15 and m is not used). */
    const char *s = p;
    int neg = 0;
    if (p < end && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    uint64_t m = 0;
    int digits = digit_run(&m, p, end), q = 0;
    p += digits;
    if (p < end && *p == '.') {
        p++;
        if (digits > 15)
            return scan_long(v, s, end);
        q = -digit_run(&m, p, end);
        p -= q;
        digits -= q;
    }
    if (digits == 0)
        return NULL;
    if (digits > 15)
        return scan_long(v, s, end);
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '-' || *p == '+')) {
            eneg = *p == '-';
            p++;
        }
        if (p == end || !is_digit(*p))
            return NULL;
        int e = 0;
        for (; p < end && is_digit(*p); p++)
            if (e < 10000)
                e = e * 10 + (*p - '0');
        q += eneg ? -e : e;
    }
    if (q < -22 || q > 22)
        return NULL;
    double dv;
    if (q < 0) {
        /* x = m / 10^-q. A division costs as much as the rest of the number, so first m times
         * the nearest double to 10^q: two roundings, within 4 units in the last place of a
         * double of x. Unless that lands that close to a float midpoint, x rounds to the same
         * float; else the correctly rounded division decides. */
        dv = (double)m * inv_p10[-q];
        uint64_t bits;
        memcpy(&bits, &dv, sizeof bits);
        if ((bits & ((UINT64_C(1) << 29) - 1)) - ((UINT64_C(1) << 28) - 4) <= 8) {
            dv = (double)m / exact_p10[-q];
            if (on_float_midpoint(dv))
                return NULL;
        }
    } else {
        dv = (double)m * exact_p10[q]; /* exact operands: one correctly rounded operation */
        if (on_float_midpoint(dv))
            return NULL;
    }
    float f = (float)dv;
    *v = neg ? -f : f;
    return p;
#else
    (void)v;
    (void)p;
    (void)end;
    return NULL;
#endif
}

int cli_parse_float(float *v, const char *p, const char *end) {
    if (cli_scan_float(v, p, end) == end)
        return 0;
    while (p < end && is_blank(*p))
        p++;
    while (end > p && is_blank(end[-1]))
        end--;
    size_t n = (size_t)(end - p);
    if (n == 0 || n > 4096)
        return -1;
    const char *s = p;
    if (*s == '+' || *s == '-')
        s++;
    if (s[0] == '0' && s + 1 < end && (s[1] == 'x' || s[1] == 'X'))
        return -1; /* strtof reads hexadecimal; a CSV cell of decimal data may not hold it */
    char local[128], *copy = n < sizeof local ? local : malloc(n + 1);
    if (!copy)
        return -1;
    memcpy(copy, p, n);
    copy[n] = '\0';
    char *stop;
    float f = strtof(copy, &stop);
    int ok = stop == copy + n && isfinite(f) && !isspace((unsigned char)copy[0]);
    if (copy != local)
        free(copy);
    if (!ok)
        return -1;
    *v = f;
    return 0;
}

/* 10^k for k = 0..60, each the nearest double (the compiler rounds literals correctly; exact up
 * to 10^22). */
static const double p10[61] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31,
    1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47,
    1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59, 1e60};

int cli_format_float(char *out, float v) {
    if (!isfinite(v) || v == 0.0f) {
        if (v == 0.0f)
            return signbit(v) ? (memcpy(out, "-0", 2), 2) : (out[0] = '0', 1);
        return snprintf(out, CLI_FLOAT_CHARS, "%.9g", (double)v);
    }
    char *o = out;
    double d = fabs((double)v);
    if (v < 0.0f)
        *o++ = '-';
    /* Decimal exponent e with 10^e <= d < 10^(e+1): a first guess from the binary exponent, then
     * corrected against the scaled value. */
    int e2;
    frexp(d, &e2);
    int e = (int)floor((e2 - 1) * 0.30102999566398120);
    double scaled;
    uint64_t n;
    for (;;) {
        int k = 8 - e; /* scaled = d 10^k has 9 digits before the point */
        scaled = k >= 0 ? d * p10[k] : d / p10[-k];
        if (scaled < 1e8) {
            e--;
            continue;
        }
        if (scaled >= 1e9) {
            e++;
            continue;
        }
        n = (uint64_t)llrint(scaled);
        if (n >= 1000000000u) { /* rounded up to 10 digits: 999999999.5 -> 1000000000 */
            n = 100000000u;
            e++;
        }
        break;
    }
    char dig[9];
    for (int i = 8; i >= 0; i--) {
        dig[i] = (char)('0' + n % 10u);
        n /= 10u;
    }
    int nd = 9;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    if (e >= -4 && e < 9) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++)
                *o++ = i < nd ? dig[i] : '0';
            if (nd > e + 1) {
                *o++ = '.';
                for (int i = e + 1; i < nd; i++)
                    *o++ = dig[i];
            }
        } else {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -e - 1; i++)
                *o++ = '0';
            for (int i = 0; i < nd; i++)
                *o++ = dig[i];
        }
    } else {
        *o++ = dig[0];
        if (nd > 1) {
            *o++ = '.';
            for (int i = 1; i < nd; i++)
                *o++ = dig[i];
        }
        *o++ = 'e';
        *o++ = e < 0 ? '-' : '+';
        int ae = e < 0 ? -e : e;
        if (ae >= 10) {
            *o++ = (char)('0' + ae / 10);
            *o++ = (char)('0' + ae % 10);
        } else {
            *o++ = '0';
            *o++ = (char)('0' + ae);
        }
    }
    return (int)(o - out);
}
