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

#include "fedc/csv.h"
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

/* ---- The spec: which features to compute ------------------------------------------------------
 *
 * A spec names the time column and its format, whether the calendar columns are wanted, and window
 * specs ENTITY:D1,D2,...:AGG,...[:delay=L], AGG one of count, sum=COL, mean=COL, rate=COL (a 0/1
 * column: sum over count), durations D and delay L in whole days. The output columns, after the
 * input's, are TX_WEEKEND and TX_NIGHT (calendar), then per window spec, per duration and per
 * aggregate {ENTITY}_COUNT_{D}D, {ENTITY}_SUM_{COL}_{D}D, {ENTITY}_MEAN_{COL}_{D}D or
 * {ENTITY}_RATE_{COL}_{D}D. A mean or rate over an empty window is 0. The JSON form of a spec
 * (written by fedc features --spec-out, kept in model files) is read and written by
 * fedc/features_spec.h in core/fl, which links cJSON. */

#define FEDC_FEAT_MAX_DURS 32
#define FEDC_FEAT_MAX_AGGS 16
#define FEDC_FEAT_MAX_WINDOWS 64
#define FEDC_FEAT_MAX_DAYS 3650
/* Longest column name accepted in a spec (entity and value columns), in bytes. */
#define FEDC_FEAT_MAX_NAME 200

typedef enum fedc_feat_agg_kind {
    FEDC_FEAT_COUNT,
    FEDC_FEAT_SUM,
    FEDC_FEAT_MEAN,
    FEDC_FEAT_RATE
} fedc_feat_agg_kind;

typedef struct fedc_feat_agg {
    fedc_feat_agg_kind kind;
    char *col; /* owned; NULL for count */
} fedc_feat_agg;

typedef struct fedc_feat_window {
    char *entity; /* owned */
    int n_dur;
    int days[FEDC_FEAT_MAX_DURS]; /* distinct, 1..FEDC_FEAT_MAX_DAYS */
    int n_agg;
    fedc_feat_agg aggs[FEDC_FEAT_MAX_AGGS];
    int delay_days; /* 0..FEDC_FEAT_MAX_DAYS */
} fedc_feat_window;

typedef struct fedc_features_spec {
    char *time_col; /* owned; NULL until set */
    int epoch;      /* 1: integer epoch seconds; 0: "YYYY-MM-DD HH:MM:SS" text */
    int calendar;   /* 1: TX_WEEKEND and TX_NIGHT */
    int n_win;
    fedc_feat_window *win; /* owned, n_win entries */
} fedc_features_spec;

/* An empty spec (no time column, no window). */
void fedc_features_spec_init(fedc_features_spec *s);

/* Frees what s owns and leaves it empty; accepts a spec only initialised. */
void fedc_features_spec_release(fedc_features_spec *s);

/* Sets the time column (copied). Errors: FEDC_EINVAL (empty or longer than FEDC_FEAT_MAX_NAME),
 * FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_features_spec_set_time(fedc_features_spec *s, const char *col,
                                                     fedc_diag *d);

/* Appends the window specs of text, several separated by ';'. On FEDC_EPARSE d says
 * "'SPEC': what is wrong" with SPEC the offending spec's text as given; s is then unchanged.
 * Errors: FEDC_EPARSE, FEDC_ERANGE (more than FEDC_FEAT_MAX_WINDOWS), FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_features_spec_add_windows(fedc_features_spec *s, const char *text,
                                                        fedc_diag *d);

/* Appends a copy of w (checked as the text form is). Errors as fedc_features_spec_add_windows. */
FEDC_MUST_CHECK fedc_err fedc_features_spec_add_window(fedc_features_spec *s,
                                                       const fedc_feat_window *w, fedc_diag *d);

/* Writes window w's canonical text (ENTITY:D1,D2:AGG,...[:delay=L], delay only when not 0) into
 * buf, truncated to cap bytes with a NUL; returns the full length, as snprintf does. */
size_t fedc_features_window_text(char *buf, size_t cap, const fedc_feat_window *w);

/* The spec's window specs as one text, joined with ';' (cap and result as above). */
size_t fedc_features_windows_text(char *buf, size_t cap, const fedc_features_spec *s);

/* 1 when a and b compute the same columns the same way (time column, format, calendar, windows in
 * order), else 0. */
int fedc_features_spec_equal(const fedc_features_spec *a, const fedc_features_spec *b);

/* Columns the spec adds to each row, and the name of column i (0 <= i < that count) in buf as
 * snprintf does. */
int fedc_features_n_columns(const fedc_features_spec *s);
size_t fedc_features_column_name(char *buf, size_t cap, const fedc_features_spec *s, int i);

/* ---- The streaming engine ---------------------------------------------------------------------
 *
 * Computes a spec's columns row by row for rows given in time order (non-decreasing; rows of equal
 * time in file order), each row once: the window aggregates above, exactly, with memory that grows
 * with the rows inside the longest window (max over window specs of D + L) and the entities seen
 * in it, not with the rows pushed. Per window spec, one queue holds the rows still inside a window
 * (time, entity, values; all entities together, in time order) with one position per duration
 * into it, and a hash table maps each entity to a small record of its counts and sums per
 * duration: rows update their entity's record as they enter and leave, the sums in double-double
 * pairs that keep every rounding error and restart at 0 whenever the window is empty, so nothing
 * drifts. A row is dropped when it leaves the longest window, an entity with its last row. Not
 * thread-safe. */

typedef struct fedc_feat_engine fedc_feat_engine;

/* One parsed row: its time, per window spec the entity's text, per value slot the value (the
 * slots are the distinct (window spec, column) pairs of sum, mean and rate, in spec order). */
typedef struct fedc_feat_row {
    int64_t t;
    const char **key; /* n_key entries, borrowed (from the record parsed, or the caller's) */
    size_t *key_len;
    double *val; /* n_val entries */
    int n_key, n_val;
} fedc_feat_row;

/* An engine for spec (copied: s may be freed after). Errors: FEDC_EINVAL (no time column, or
 * neither a window nor the calendar), FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_feat_engine_new(fedc_feat_engine **out, const fedc_features_spec *s,
                                              fedc_diag *d);

/* Frees *e; accepts NULL; sets *e = NULL. */
void fedc_feat_engine_destroy(fedc_feat_engine **e);

/* The engine's copy of its spec (borrowed for the engine's life). */
const fedc_features_spec *fedc_feat_engine_spec(const fedc_feat_engine *e);

/* Finds the spec's columns in a header of n fields (names compared exactly) and refuses an output
 * with two columns of one name (an input column or a feature twice). file names the input in the
 * messages: "time column 'T': no column 'T' in FILE:1", "window 'SPEC': no column 'X' in FILE:1",
 * "output column 'C' would appear twice (...)". Errors: FEDC_EMISMATCH, FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_feat_engine_bind(fedc_feat_engine *e, const fedc_csv_field *hdr,
                                               int n, const char *file, fedc_diag *d);

/* The engine's row buffer (borrowed for the engine's life), with n_key and n_val set: filled by
 * fedc_feat_engine_parse, or by a caller that stored rows itself (its keys its own). */
fedc_feat_row *fedc_feat_engine_row(fedc_feat_engine *e);

/* As fedc_feat_engine_parse, into the caller's row (its arrays of n_key and n_val entries). */
FEDC_MUST_CHECK fedc_err fedc_feat_engine_parse_into(fedc_feat_engine *e, fedc_feat_row *row,
                                                     const fedc_csv_record *rec, const char *file,
                                                     fedc_diag *d);

/* Parses record rec of the bound input into fedc_feat_engine_row(e): the time, the entities (the
 * keys point into rec, valid as long as it is) and the values, checked: a bad timestamp, a value
 * that is not a finite number or a rate's value that is not 0 or 1 gives FEDC_EPARSE with
 * "FILE:LINE:FIELD: COLUMN: 'text' is not ...". */
FEDC_MUST_CHECK fedc_err fedc_feat_engine_parse(fedc_feat_engine *e, const fedc_csv_record *rec,
                                                const char *file, fedc_diag *d);

/* Computes the features of rows[0..n) into out (n rows of fedc_features_n_columns values), as n
 * calls of fedc_feat_engine_push would, faster: the memory each row will read is fetched a few rows
 * ahead. The rows must be in time order (else FEDC_EINVAL before anything changes). */
FEDC_MUST_CHECK fedc_err fedc_feat_engine_push_n(fedc_feat_engine *e, const fedc_feat_row *rows,
                                                 size_t n, double *out);

/* Computes row's features into out[0 .. fedc_features_n_columns) in column order (counts and the
 * calendar's 0/1 as whole numbers). row->t must be at least the time of the row computed before
 * (else FEDC_EINVAL, nothing changed). Errors: FEDC_EINVAL, FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_feat_engine_push(fedc_feat_engine *e, const fedc_feat_row *row,
                                               double *out);

/* Writes ",v1,v2,...": each of out's values as CSV text (whole counts as integers, others with 15
 * significant digits as printf's %.15g would, read back within half a unit of the 15th digit) into
 * buf, which must hold fedc_feat_engine_text_max(e) bytes; returns the length (no NUL written). */
size_t fedc_feat_engine_format(const fedc_feat_engine *e, char *buf, const double *out);
/* The same with sep before each value instead of ','. */
size_t fedc_feat_engine_format_sep(const fedc_feat_engine *e, char *buf, const double *out,
                                   char sep);
size_t fedc_feat_engine_text_max(const fedc_feat_engine *e);

/* Rows held in the queues now, and the most ever held (what memory grows with). */
size_t fedc_feat_engine_held(const fedc_feat_engine *e);
size_t fedc_feat_engine_held_max(const fedc_feat_engine *e);

/* Number formatting and parsing of the engine, for tests and other writers. fedc_fmt_g15 writes
 * v as %.15g does (15 significant digits, trailing zeros dropped, -0 as 0) into buf (40 bytes at
 * least, which it may use beyond the text) and returns the length; fedc_parse_real reads s[0..n) as
 * strtod would, fully and to a finite value, returning 0, or -1 when it is not such a number. */
size_t fedc_fmt_g15(char *buf, double v);
int fedc_parse_real(const char *s, size_t n, double *out);

#endif
