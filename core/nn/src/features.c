/* Time-window aggregates per entity (fedc/features.h). */
#include "fedc/features.h"

#include <stdlib.h>

typedef struct key {
    uint64_t entity;
    int64_t time;
    size_t row;
} key;

/* Sort order (entity, time, row): within an entity, time order with ties in row order, which is
 * the order the window's "equal times count in file order" rule needs. */
static int key_cmp(const void *a, const void *b) {
    const key *x = a, *y = b;
    if (x->entity != y->entity)
        return x->entity < y->entity ? -1 : 1;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

fedc_err fedc_window_aggregate(size_t n, const uint64_t *entity, const int64_t *time,
                               const double *value, int64_t delay_s, int n_dur,
                               const int64_t *dur_s, int64_t *count, double *sum, fedc_diag *d) {
    if ((n && (!entity || !time || !count)) || n_dur < 0 || (n_dur && !dur_s) || delay_s < 0 ||
        (!value) != (!sum)) {
        fedc_diag_set(d, "fedc_window_aggregate: bad arguments");
        return FEDC_EINVAL;
    }
    for (int k = 0; k < n_dur; k++)
        if (dur_s[k] <= 0) {
            fedc_diag_set(d, "fedc_window_aggregate: window length %lld s is not positive",
                          (long long)dur_s[k]);
            return FEDC_EINVAL;
        }
    if (n == 0)
        return FEDC_OK;
    key *ks = malloc(n * sizeof *ks);
    /* prefix[p] = sum of the values of the first p sorted rows of the current entity, in long
     * double so that a window's sum as a difference of prefixes keeps double precision */
    long double *prefix = value ? malloc((n + 1) * sizeof *prefix) : NULL;
    if (!ks || (value && !prefix)) {
        free(ks);
        free(prefix);
        fedc_diag_set(d, "fedc_window_aggregate: out of memory for %zu rows", n);
        return FEDC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        ks[i] = (key){entity[i], time[i], i};
    qsort(ks, n, sizeof *ks, key_cmp);
    for (size_t g = 0; g < n;) {
        size_t e = g;
        while (e < n && ks[e].entity == ks[g].entity)
            e++;
        if (value) {
            prefix[g] = 0;
            for (size_t p = g; p < e; p++)
                prefix[p + 1] = prefix[p] + value[ks[p].row];
        }
        for (int k = 0; k < n_dur; k++) {
            /* window of sorted position p: [lo, hi) with lo the first position whose time is
             * after t - L - D and hi one past the last position inside: p itself without delay
             * (later equal times are later rows), else the last time <= t - L. Both only move
             * forward as p does, since the times grow with p. */
            size_t lo = g, hi = g;
            for (size_t p = g; p < e; p++) {
                int64_t t = ks[p].time;
                int64_t end = t - delay_s, start = end - dur_s[k];
                if (delay_s == 0) {
                    hi = p + 1;
                } else {
                    while (hi < e && ks[hi].time <= end)
                        hi++;
                }
                while (lo < hi && ks[lo].time <= start)
                    lo++;
                if (lo > hi)
                    lo = hi;
                size_t row = ks[p].row, at = (size_t)k * n + row;
                count[at] = (int64_t)(hi - lo);
                if (value)
                    sum[at] = (double)(prefix[hi] - prefix[lo]);
            }
        }
        g = e;
    }
    free(ks);
    free(prefix);
    return FEDC_OK;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant, "chrono-
 * Compatible Low-Level Date Algorithms", days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int dd) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + dd - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int k, int *out) {
    int v = 0;
    for (int i = 0; i < k; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int fedc_parse_datetime(const char *s, size_t n, int64_t *out) {
    /* "YYYY-MM-DD HH:MM:SS" is 19 characters; a 20th may only be 'Z' */
    if (n != 19 && !(n == 20 && s[19] == 'Z'))
        return -1;
    int y, mo, dd, h, mi, se;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &dd) || (s[10] != ' ' && s[10] != 'T') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
        return -1;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || dd < 1 || dd > mdays[mo - 1] ||
        (mo == 2 && !leap && dd > 28) || h > 23 || mi > 59 || se > 59)
        return -1;
    *out = days_from_civil(y, mo, dd) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

/* Floor division, so that times before 1970 fall on the right day. */
static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int fedc_epoch_weekday(int64_t t) {
    /* 1970-01-01 was a Thursday (4) */
    int64_t w = (floor_div(t, 86400) + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

int fedc_epoch_hour(int64_t t) {
    return (int)((t - floor_div(t, 86400) * 86400) / 3600);
}
