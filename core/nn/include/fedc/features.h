/* Time-window aggregates per entity, the customer spending and terminal risk features of Le Borgne
 * et al. 2022, "Reproducible Machine Learning for Credit Card Fraud Detection - Practical
 * Handbook", ch. 3.4 (Baseline feature transformation): for a transaction of entity e at time t,
 * the count and the sum of a value over e's transactions in a window of D days ending at t, or,
 * with a delay of L days (labels become known L days after the transaction), ending at t - L.
 *
 * Exactly: without delay the window of row i holds the rows j of the same entity with
 * t_i - D < t_j <= t_i, where rows of equal time count in row order (j <= i: row i itself and the
 * earlier rows with its time, not the later ones); with delay L > 0 it holds those with
 * t_i - L - D < t_j <= t_i - L, all rows of that time whatever their order. Times are integer
 * seconds (continuous time, not calendar days). */
#ifndef FEDC_FEATURES_H
#define FEDC_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"

/* For n rows with entity ids entity[i] (any values; equal ids are one entity) and times time[i]
 * (seconds, in any order), and n_dur window lengths dur_s[k] > 0 (seconds) with a delay delay_s
 * >= 0: count[k * n + i] is the number of rows in row i's window of length dur_s[k] and, when
 * value and sum are not NULL, sum[k * n + i] the sum of value[j] over them. O(n log n + n_dur n):
 * the rows are sorted by (entity, time, row) once, then each window is two pointers over the
 * entity's rows and a prefix sum. Errors: FEDC_EINVAL (bad arguments), FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_window_aggregate(size_t n, const uint64_t *entity,
                                               const int64_t *time, const double *value,
                                               int64_t delay_s, int n_dur, const int64_t *dur_s,
                                               int64_t *count, double *sum, fedc_diag *d);

/* Parses a timestamp: "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DDTHH:MM:SS", optionally followed by 'Z'
 * (all read as UTC; years 0001..9999, seconds 00..59), into seconds since 1970-01-01 00:00:00.
 * Returns 0, or -1 when s[0..n) is not such a timestamp or a date that does not exist. */
int fedc_parse_datetime(const char *s, size_t n, int64_t *out);

/* The weekday of epoch seconds t (0 Sunday .. 6 Saturday) and the hour of the day (0..23), UTC. */
int fedc_epoch_weekday(int64_t t);
int fedc_epoch_hour(int64_t t);

#endif
