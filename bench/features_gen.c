/* Raw card transactions for bench/bench_features.sh: the columns of the fraud detection
 * handbook's simulated data (Le Borgne et al. 2022, ch. 3.2: TRANSACTION_ID, TX_DATETIME,
 * CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD), in time order, written as CSV on stdout.
 *
 *   features_gen ROWS [CUSTOMERS TERMINALS DAYS SEED [ties|unique]]
 *
 * Times are seconds from 2018-04-01 00:00:00 spread evenly over DAYS days with random gaps;
 * "unique" (the default) makes every timestamp different (gaps of at least one second, which
 * needs ROWS < DAYS * 86400 / 2), "ties" lets gaps of 0 make equal timestamps. Amounts are
 * uniform in [0, 200) with cents; about 1% of the rows are frauds, more on a few terminals, so
 * that the terminal rates are not all 0. This is data to time and compare on, not a fraud model
 * (fedc synth makes those). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* xorshift64* (Vigna 2016) */
static uint64_t next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static long arg(int argc, char **argv, int i, long def) {
    if (i >= argc)
        return def;
    char *end = NULL;
    long v = strtol(argv[i], &end, 10);
    if (!*argv[i] || *end || v <= 0) {
        fprintf(stderr, "features_gen: argument %d '%s' is not a positive integer\n", i, argv[i]);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 7) {
        fprintf(stderr, "usage: features_gen ROWS [CUSTOMERS TERMINALS DAYS SEED [ties|unique]]\n");
        return 2;
    }
    long rows = arg(argc, argv, 1, 0), customers = arg(argc, argv, 2, 5000),
         terminals = arg(argc, argv, 3, 10000), days = arg(argc, argv, 4, 183),
         seed = arg(argc, argv, 5, 1);
    int unique = 1;
    if (argc == 7) {
        if (strcmp(argv[6], "ties") == 0)
            unique = 0;
        else if (strcmp(argv[6], "unique") != 0) {
            fprintf(stderr, "features_gen: '%s' is not ties or unique\n", argv[6]);
            return 2;
        }
    }
    /* the mean gap; unique times draw gaps in [1, 2 * mean - 1], ties in [0, 2 * mean] */
    int64_t span = (int64_t)days * 86400, mean = span / rows;
    if (mean < 2) {
        fprintf(stderr, "features_gen: %ld rows do not fit in %ld days with distinct seconds\n",
                rows, days);
        return 2;
    }
    uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)seed;
    for (int i = 0; i < 8; i++)
        next(&s);
    static char buf[1 << 16];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    puts("TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD");
    /* 2018-04-01 00:00:00 UTC */
    int64_t t = 1522540800;
    for (long i = 0; i < rows; i++) {
        int64_t gap = unique ? 1 + (int64_t)(next(&s) % (uint64_t)(2 * mean - 1))
                             : (int64_t)(next(&s) % (uint64_t)(2 * mean + 1));
        if (i)
            t += gap;
        int64_t day = t / 86400, sec = t % 86400;
        /* civil date from days since 1970 (H. Hinnant's civil_from_days) */
        int64_t z = day + 719468, era = z / 146097, doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
        int dd = (int)(doy - (153 * mp + 2) / 5 + 1), mm = (int)(mp < 10 ? mp + 3 : mp - 9);
        int64_t yy = yoe + era * 400 + (mm <= 2);
        long cust = (long)(next(&s) % (uint64_t)customers);
        long term = (long)(next(&s) % (uint64_t)terminals);
        long cents = (long)(next(&s) % 20000);
        /* terminals whose number is a multiple of 97 are risky: 20% fraud, else 1% */
        int fraud = (int)(next(&s) % 1000) < (term % 97 == 0 ? 200 : 10);
        printf("%ld,%04lld-%02d-%02d %02d:%02d:%02d,%ld,%ld,%ld.%02ld,%d\n", i, (long long)yy, mm,
               dd, (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60), cust, term,
               cents / 100, cents % 100, fraud);
    }
    return fflush(stdout) ? 1 : 0;
}
