/* fastnum.h: the CSV float parser against strtof (the oracle) on generated decimals of every
 * shape the fast paths take or refuse, and the float printer against strtof (every float written
 * must read back to itself) and printf's "%.9g" (the same text but for a last digit at a rounding
 * boundary). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fastnum.h"

static uint64_t g_s = 0x243F6A8885A308D3ull;
static uint64_t next(void) {
    g_s ^= g_s << 13;
    g_s ^= g_s >> 7;
    g_s ^= g_s << 17;
    return g_s;
}

/* Writes a random decimal: sign, 0..20 integer digits, maybe a point and 0..20 fraction digits,
 * maybe an exponent. */
static void random_decimal(char *out) {
    char *o = out;
    uint64_t r = next();
    if (r % 3 == 0)
        *o++ = '-';
    else if (r % 11 == 0)
        *o++ = '+';
    int ni = (int)(next() % 21), nfr = (int)(next() % 21);
    if (next() % 4 == 0)
        ni = (int)(next() % 3);
    for (int i = 0; i < ni; i++)
        *o++ = (char)('0' + next() % 10);
    if (next() % 5 != 0) {
        *o++ = '.';
        for (int i = 0; i < nfr; i++)
            *o++ = (char)('0' + next() % 10);
    }
    if (o == out || (o == out + 1 && (out[0] == '-' || out[0] == '+')))
        *o++ = '7';
    if (next() % 6 == 0)
        o += sprintf(o, "e%d", (int)(next() % 61) - 30);
    *o = '\0';
}

static void test_parse_matches_strtof(void **state) {
    (void)state;
    char buf[96];
    long fast = 0;
    for (int k = 0; k < 2000000; k++) {
        random_decimal(buf);
        size_t n = strlen(buf);
        char *stop;
        float want = strtof(buf, &stop);
        float got = NAN;
        int rc = cli_parse_float(&got, buf, buf + n);
        if (!isfinite(want) || stop != buf + n) {
            if (rc != -1)
                fail_msg("'%s': strtof refuses it, cli_parse_float reads %.9g", buf, (double)got);
            continue;
        }
        if (rc != 0 || memcmp(&got, &want, sizeof got) != 0)
            fail_msg("'%s': strtof %.9g, cli_parse_float rc %d value %.9g", buf, (double)want, rc,
                     (double)got);
        float g2;
        if (cli_scan_float(&g2, buf, buf + n) == buf + n) {
            fast++;
            assert_memory_equal(&g2, &want, sizeof g2);
        }
    }
    /* The fast path must take most of these (else it is not being tested). */
    assert_true(fast > 500000);
}

/* Decimals of the shapes data files hold, with 1..8 digits before and after the point, so that
 * the eight-at-once digit reader sees runs of every length and what follows them. */
static void test_parse_short_runs(void **state) {
    (void)state;
    char buf[64];
    const char *tails[] = {"", ",", ",5", "\n", " ", "x"};
    long refused = 0;
    for (int k = 0; k < 400000; k++) {
        int ni = 1 + (int)(next() % 8), nfr = (int)(next() % 9);
        char *o = buf;
        for (int i = 0; i < ni; i++)
            *o++ = (char)('0' + next() % 10);
        if (nfr) {
            *o++ = '.';
            for (int i = 0; i < nfr; i++)
                *o++ = (char)('0' + next() % 10);
        }
        size_t numlen = (size_t)(o - buf);
        strcpy(o, tails[next() % 6]);
        size_t n = strlen(buf);
        char num[64];
        memcpy(num, buf, numlen);
        num[numlen] = '\0';
        float want = strtof(num, NULL), got = NAN;
        const char *stop = cli_scan_float(&got, buf, buf + n);
        if (!stop) { /* a float midpoint: strtof's, through cli_parse_float */
            refused++;
            assert_int_equal(cli_parse_float(&got, num, num + numlen), 0);
            stop = buf + numlen;
        }
        assert_ptr_equal(stop, buf + numlen);
        assert_memory_equal(&got, &want, sizeof got);
    }
    assert_true(refused < 4000); /* midpoints are rare: the fast path took the rest */
}

static void test_parse_refuses(void **state) {
    (void)state;
    const char *bad[] = {"",    "  ",   "abc", "1.2.3", "0x1p3", "-0X10", "nan",
                         "inf", "1e39", "1e",  "1e+",   "--1",   "1 2",   "\n1",
                         ".",   "-",    "1,5", "1e99",  "+inf",  "1x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        float v;
        if (cli_parse_float(&v, bad[i], bad[i] + strlen(bad[i])) == 0)
            fail_msg("cli_parse_float accepted '%s' as %g", bad[i], (double)v);
    }
    const char *good[] = {" 1.5 ",
                          "\t-2",
                          "5.",
                          ".5",
                          "1E5",
                          "-0",
                          "3.4e38",
                          "1e-45",
                          "12345678901234567890",
                          "0.000000000000000000000000001"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        float v, want = strtof(good[i], NULL);
        assert_int_equal(cli_parse_float(&v, good[i], good[i] + strlen(good[i])), 0);
        assert_memory_equal(&v, &want, sizeof v);
    }
}

static void test_format_round_trip(void **state) {
    (void)state;
    char out[CLI_FLOAT_CHARS + 1], ref[32];
    long differ = 0, total = 0;
    for (int k = 0; k < 3000000; k++) {
        uint32_t bits = (uint32_t)next();
        float v;
        memcpy(&v, &bits, sizeof v);
        if (k % 3 == 0) /* also plenty of probabilities */
            v = (float)((double)(next() >> 11) / 9007199254740992.0);
        if (!isfinite(v))
            continue;
        int n = cli_format_float(out, v);
        assert_true(n > 0 && n <= CLI_FLOAT_CHARS);
        out[n] = '\0';
        float back = strtof(out, NULL);
        if (memcmp(&back, &v, sizeof v) != 0)
            fail_msg("%.9g written as '%s' reads back as %.9g", (double)v, out, (double)back);
        snprintf(ref, sizeof ref, "%.9g", (double)v);
        total++;
        differ += strcmp(ref, out) != 0;
    }
    /* Only values within about 1e-16 of a rounding boundary may differ from printf. */
    assert_true(differ * 10000 < total);
    const float special[] = {0.0f,
                             -0.0f,
                             1.0f,
                             0.5f,
                             1e-4f,
                             9.99999944e-5f,
                             1e9f,
                             999999999.0f,
                             3.40282347e38f,
                             1.17549435e-38f,
                             1.40129846e-45f,
                             0.1f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        int n = cli_format_float(out, special[i]);
        out[n] = '\0';
        snprintf(ref, sizeof ref, "%.9g", (double)special[i]);
        assert_string_equal(out, ref);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_matches_strtof),
        cmocka_unit_test(test_parse_short_runs),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_format_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
