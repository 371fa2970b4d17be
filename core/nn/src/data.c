/* Tabular data: the CSV loader (its header: data_header.c; datasets, tasks, statistics and splits:
 * dataset.c).
 *
 * The loader reads through the CSV tokenizer's reader (fedc/csv.h: RFC 4180, quoted fields may
 * hold commas, doubled quotes and line breaks). A record that is one line of plain numbers is
 * parsed straight from the reader's buffer, the fields found as the numbers are read (the fast
 * path, csv_window.h: the cost of a separate tokenizing pass was a quarter of the loading time);
 * any other record goes through fedc_csv_next and each cell is parsed in place: the byte after a
 * field (a comma, a quote, a line end or the NUL kept after the last byte read) can never continue
 * a number, so strtof stops at the cell's end without a copy. Decimals take an exact fast path
 * that gives the same float as strtof. Rows are appended to one matrix that doubles when full;
 * nothing is allocated per cell. The happy path only checks; when a cell is wrong, a slower pass
 * over that one cell works out what to tell the user (empty cell, text, NaN, overflow); field
 * counts and syntax are the tokenizer's to check. Separators, missing values, text labels and
 * categorical columns follow a fedc_encoding (fedc/encode.h): encode.c plans the output columns,
 * the row loops here fill them (a categorical cell or a text label is read as text on both
 * paths; a missing cell sends its record to the general path). Numbers are read in the C
 * locale, which is in force because fedc never calls setlocale. */
#include "fedc/data.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fedc/csv.h"
#include "fedc/rng.h"

#include "csv_window.h"
#include "data_int.h"
#include "encode_int.h"

/* A cell may take this many bytes beyond FEDC_CSV_MAX_FIELD: blanks, quotes and the comma. */
#define CELL_SLACK 8

/* ---- Numbers ----------------------------------------------------------------------------- */

static int is_digit(char c) {
    return (unsigned)(c - '0') < 10u;
}

/* Characters that end a cell: after one of them, strtof could not have read further either. */
static int is_cell_end(char c, char delim) {
    return c == delim || c == '"' || c == '\n' || c == '\0' || is_blank(c);
}

/* 1 when d, a double within float's normal range, lies exactly halfway between two floats: its
 * 29 bits below float precision are 1 followed by zeros. */
static int is_float_midpoint(double d) {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return (bits & ((UINT64_C(1) << 29) - 1)) == UINT64_C(1) << 28;
}

/* Reads [+-]digits[.digits][(e|E)[+-]digits] at p to the same float as strtof (correct rounding
 * of the decimal value x), several times faster than glibc's general algorithm. Up to 15 or 16
 * leading digits form an integer w < 2^53, and x = w * 10^q exactly, or x lies strictly between
 * w * 10^q and (w + 1) * 10^q when nonzero digits were dropped. With |q| <= 22, w and 10^|q| are
 * exact doubles, so one multiplication or division rounds x once to the double d (Clinger's fast
 * path, "How to read floating point numbers accurately", PLDI 1990), and every such d lies in
 * float's normal range. Rounding d to float again gives the float nearest x unless d landed
 * exactly on a midpoint between two floats: rounding is monotonic and midpoints are doubles, so
 * x and d lie between the same two midpoints otherwise. When digits were dropped, both ends must
 * round to the same float. Returns the end of the number, or NULL to leave the cell to strtof:
 * a midpoint, ends that differ, a larger exponent, hex, inf, nan, no digits, or a number followed
 * by anything but a cell end. Where double arithmetic is evaluated in a wider type, always
 * NULL. */
static const char *fast_float(float *v, const char *p, char delim) {
#if FLT_EVAL_METHOD == 0
    static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                           1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                           1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    /* The largest w that can take another digit and stay <= 2^53: (2^53 - 9) / 10. */
    const uint64_t keep_max = UINT64_C(900719925474098);
    int neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    uint64_t w = 0;
    int n_digits = 0, q = 0, dropped = 0;
    for (; is_digit(*p); p++, n_digits++) {
        if (w <= keep_max) {
            w = w * 10u + (uint64_t)(*p - '0');
        } else {
            q++;
            dropped |= *p != '0';
        }
    }
    if (*p == '.') {
        for (p++; is_digit(*p); p++, n_digits++) {
            if (w <= keep_max) {
                w = w * 10u + (uint64_t)(*p - '0');
                q--;
            } else {
                dropped |= *p != '0';
            }
        }
    }
    if (n_digits == 0)
        return NULL;
    if (*p == 'e' || *p == 'E') {
        p++;
        int eneg = *p == '-';
        if (*p == '-' || *p == '+')
            p++;
        if (!is_digit(*p))
            return NULL;
        int e = 0;
        for (; is_digit(*p); p++) {
            if (e < 1000)
                e = e * 10 + (*p - '0');
        }
        q += eneg ? -e : e;
    }
    if (!is_cell_end(*p, delim) || q < -22 || q > 22)
        return NULL;
    double lo = q < 0 ? (double)w / exact_pow10[-q] : (double)w * exact_pow10[q];
    if (is_float_midpoint(lo))
        return NULL;
    float f = (float)lo;
    if (dropped) {
        double hi = q < 0 ? (double)(w + 1) / exact_pow10[-q] : (double)(w + 1) * exact_pow10[q];
        if (is_float_midpoint(hi) || (float)hi != f)
            return NULL;
    }
    *v = neg ? -f : f;
    return p;
#else
    (void)v;
    (void)p;
    (void)delim;
    return NULL;
#endif
}

/* ---- Rows -------------------------------------------------------------------------------- */

enum { ROLE_DROP = FEDC__ROLE_DROP, ROLE_LABEL = FEDC__ROLE_LABEL, ROLE_CAT = FEDC__ROLE_CAT };

/* 1 when the number at p is written in hexadecimal ([+-]0x...): strtof reads those, but a CSV
 * file of decimal data that holds one was not meant to, so the loader refuses it. */
static int is_hex_number(const char *p) {
    if (*p == '+' || *p == '-')
        p++;
    return p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
}

/* Parses one field as a finite number: blanks around it (inside quotes too) allowed, nothing
 * else. The byte after the field ends any number (fedc/csv.h), so the number is read in place.
 * Returns 0, or -1; the caller then explains why. */
static int parse_field(float *v, const fedc_csv_field *f, char delim) {
    const char *end = f->s + f->n;
    const char *p = skip_blank(f->s, end);
    /* strtof would skip a line break (a quoted cell may hold one); a number may not start so. */
    if (p == end || *p == '\n')
        return -1;
    const char *stop = fast_float(v, p, delim);
    if (!stop) {
        char *e;
        if (is_hex_number(p))
            return -1;
        *v = strtof(p, &e);
        if (e == p)
            return -1;
        stop = e;
    }
    if (!isfinite(*v))
        return -1;
    return skip_blank(stop, end) == end ? 0 : -1;
}

/* A text cell s[0..e) of a categorical column or a text label (pl->label_text): sets the cell's
 * one-hot column, or *y to 1 when the label is the positive value and 0 otherwise. Returns 0, or
 * -1 for a missing label (the caller explains it). A missing categorical cell sets no column. */
static int text_cell(float *xrow, float *y, const fedc__plan *pl, int col, const char *s,
                     const char *e) {
    if (fedc_is_missing_text(s, (size_t)(e - s)))
        return pl->aux[col] >= 0 ? 0 : -1;
    if (pl->aux[col] >= 0) {
        xrow[pl->aux[col] + fedc_hash_bucket(pl->key, pl->buckets, s, (size_t)(e - s))] = 1.0f;
        return 0;
    }
    size_t n = (size_t)(e - s);
    s = fedc__trim(s, &n);
    *y = n == pl->positive_len && memcmp(s, pl->positive, n) == 0 ? 1.0f : 0.0f;
    return 0;
}

/* The fast path (csv_window.h): reads the record at w->p, one line of n_cols fields, straight
 * from the buffer: each numeric cell a number that fast_float reads up to the separator or line
 * end, each dropped or text one anything but a quote or a NUL. Writes the values into xrow and
 * *y and returns the start of the next record, or NULL when the record has to go through the
 * tokenizer: a quote, a blank, a NUL, a line that runs past what has been read, a number
 * fast_float leaves to strtof, a bad or missing cell, a ragged row, a line over max_bytes. The
 * general path then reads it again (overwriting whatever was stored here) and either loads it or
 * says what is wrong, so that values and messages do not depend on which path took a record. */
static const char *fast_row(float *xrow, float *y, const fedc_csv_window *w, const int *role,
                            int n_cols, size_t max_bytes, const fedc__plan *pl) {
    const char *p = w->p;
    const char delim = pl->delim;
    for (int j = 0;; j++) {
        const char *stop;
        int rj = role[j];
        if (rj >= 0 || (rj == ROLE_LABEL && !pl->label_text)) {
            float v;
            stop = fast_float(&v, p, delim);
            if (!stop)
                return NULL;
            if (rj >= 0)
                xrow[rj] = v;
            else
                *y = v;
        } else {
            stop = p;
            while (!pl->stop[(unsigned char)*stop])
                stop++;
            if (rj != ROLE_DROP && text_cell(xrow, y, pl, j, p, stop))
                return NULL;
        }
        if (j == n_cols - 1) {
            p = stop;
            break;
        }
        if (*stop != delim)
            return NULL;
        p = stop + 1;
    }
    if ((size_t)(p - w->p) > max_bytes)
        return NULL;
    if (*p == '\n')
        return p + 1;
    if (*p == '\r' && p[1] == '\n')
        return p + 2;
    if (p == w->end && w->eof)
        return p;
    return NULL;
}

/* Writes the message for a cell that parse_field rejected: what is wrong with it. */
static fedc_err cell_error(fedc_diag *d, const char *path, long line_no, int col,
                           const fedc_csv_field *f, const header *h, int is_label) {
    char s1[SHOW_MAX + 4], s2[SHOW_MAX + 4];
    const char *s = skip_blank(f->s, f->s + f->n), *e = trim_end(s, f->s + f->n);
    const char *name = fedc__show(s2, h->names[col], strlen(h->names[col]));
    if (fedc_is_missing_text(f->s, f->n)) {
        char what[SHOW_MAX + 32];
        if (s == e)
            snprintf(what, sizeof what, "an empty cell");
        else
            snprintf(what, sizeof what, "the missing value '%s'",
                     fedc__show(s1, s, (size_t)(e - s)));
        if (is_label)
            fedc_diag_set(d,
                          "%s:%ld:%d: label column '%s': expected a label, got %s (every row "
                          "needs its label; remove the row)",
                          path, line_no, col + 1, name, what);
        else
            fedc_diag_set(d,
                          "%s:%ld:%d: column '%s': expected a number, got %s (pass --missing "
                          "mean or --missing zero to impute missing values)",
                          path, line_no, col + 1, name, what);
        return FEDC_EPARSE;
    }
    char *stop;
    errno = 0;
    float v = strtof(s, &stop);
    fedc__show(s1, s, (size_t)(e - s));
    if (is_hex_number(s)) {
        fedc_diag_set(d,
                      "%s:%ld:%d: column '%s': expected a decimal number, got the hexadecimal "
                      "'%s' (hexadecimal numbers are not accepted)",
                      path, line_no, col + 1, name, s1);
    } else if (stop != e || isspace((unsigned char)*s)) {
        fedc_diag_set(d, "%s:%ld:%d: column '%s': expected a number, got '%s'", path, line_no,
                      col + 1, name, s1);
    } else if (isinf(v) && errno == ERANGE) {
        fedc_diag_set(d,
                      "%s:%ld:%d: column '%s': expected a number within float range "
                      "(magnitude below 3.4e38), got '%s'",
                      path, line_no, col + 1, name, s1);
    } else if (!isfinite(v)) {
        fedc_diag_set(d, "%s:%ld:%d: column '%s': expected a finite number, got '%s'", path,
                      line_no, col + 1, name, s1);
    } else {
        /* parse_field and this pass disagree: say something true rather than nothing. */
        fedc_diag_set(d, "%s:%ld:%d: column '%s': malformed cell '%s'", path, line_no, col + 1,
                      name, s1);
    }
    return FEDC_EPARSE;
}

/* Grows ds->x and ds->y to hold *cap_rows * 2 rows (at least 1024). */
static fedc_err grow_rows(fedc_dataset *ds, size_t *cap_rows) {
    fedc_err rc = FEDC_OK;
    size_t cap = *cap_rows ? *cap_rows * 2 : 1024;
    if (cap > (size_t)INT_MAX)
        cap = (size_t)INT_MAX;
    size_t nf = (size_t)ds->n_features;
    if (cap > SIZE_MAX / sizeof(float) / nf) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    float *nx = realloc(ds->x, cap * nf * sizeof(float));
    if (!nx) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    ds->x = nx;
    float *ny = realloc(ds->y, cap * sizeof(float));
    if (!ny) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    ds->y = ny;
    *cap_rows = cap;
out:
    return rc;
}

/* Rewords a tokenizer error for the loader: the column limit as the header's, and a syntax error
 * inside a data row with the name of its column. Otherwise the tokenizer's message stands. */
static void csv_error(fedc_diag *d, const char *path, const fedc_csv_reader *r, const header *h) {
    const fedc_csv_error *e = fedc_csv_last_error(r);
    char s1[SHOW_MAX + 4];
    switch (e->problem) {
    case FEDC_CSV_TOO_MANY_FIELDS:
        if (!h)
            fedc_diag_set(d, "%s:1: header has %ld columns, more than the limit of %d", path,
                          e->count, FEDC_CSV_MAX_COLUMNS);
        break;
    case FEDC_CSV_UNTERMINATED_QUOTE:
    case FEDC_CSV_TEXT_AFTER_QUOTE:
    case FEDC_CSV_QUOTE_IN_FIELD:
    case FEDC_CSV_NUL:
        if (h && e->field >= 1 && e->field <= h->n_cols) {
            const char *name = h->names[e->field - 1];
            fedc_diag_set(d, "%s:%ld:%ld: column '%s': %s", path, e->line, e->field,
                          fedc__show(s1, name, strlen(name)), e->what);
        }
        break;
    default:
        break;
    }
}

fedc_err fedc_csv_load(fedc_dataset **out, const char *path, const char *label,
                       const char *const *drop, int n_drop, fedc_diag *d) {
    return fedc_csv_load_enc(out, path, label, drop, n_drop, NULL, d);
}

fedc_err fedc_csv_load_enc(fedc_dataset **out, const char *path, const char *label,
                           const char *const *drop, int n_drop, const fedc_encoding *enc,
                           fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    FILE *f = NULL;
    fedc_csv_reader *r = NULL;
    fedc_csv_record rec;
    header h = {0};
    int *role = NULL;
    fedc_dataset *ds = NULL;
    fedc__plan pl = {0};
    char s1[SHOW_MAX + 4];
    char delim = enc && enc->delimiter ? enc->delimiter : ',';
    if (d)
        d->msg[0] = '\0';
    if (out)
        *out = NULL;
    if (!out || !path || !label || n_drop < 0 || (n_drop > 0 && !drop)) {
        fedc_diag_set(d, "fedc_csv_load: invalid arguments (path and label are required)");
        rc = FEDC_EINVAL;
        goto out;
    }
    for (int i = 0; i < n_drop; i++) {
        if (!drop[i]) {
            fedc_diag_set(d, "fedc_csv_load: drop list entry %d is NULL", i);
            rc = FEDC_EINVAL;
            goto out;
        }
    }

    f = fopen(path, "rb");
    if (!f) {
        fedc_diag_set(d, "%s: cannot open: %s", path, strerror(errno));
        rc = FEDC_EIO;
        goto out;
    }
    /* Header: at most FEDC_CSV_MAX_COLUMNS fields of at most FEDC_CSV_MAX_FIELD bytes (plus
     * blanks and quotes), checked per field as it is read. */
    fedc_csv_limits lim = {FEDC_CSV_MAX_COLUMNS, FEDC_CSV_MAX_FIELD + CELL_SLACK,
                           (size_t)FEDC_CSV_MAX_COLUMNS * (FEDC_CSV_MAX_FIELD + CELL_SLACK)};
    if ((rc = fedc_csv_open_file(&r, f, path, &lim, d)))
        goto out;
    if (fedc_csv_set_delimiter(r, delim)) {
        fedc_diag_set(d,
                      "%s: the separator 0x%02x cannot separate fields (expected a tab or "
                      "punctuation such as , ; | :)",
                      path, (unsigned)(unsigned char)delim);
        rc = FEDC_EINVAL;
        goto out;
    }
    if ((rc = fedc_csv_next(r, &rec, d))) {
        csv_error(d, path, r, NULL);
        goto out;
    }
    if (rec.n_fields == 0) {
        fedc_diag_set(d, "%s: file is empty (expected a header line)", path);
        rc = FEDC_EEMPTY;
        goto out;
    }
    if (rec.blank) {
        /* Blank all the way down is an empty file; blank above data is a missing header. */
        while ((rc = fedc_csv_next(r, &rec, d)) == FEDC_OK && rec.n_fields > 0 && rec.blank)
            ;
        if (rc)
            goto out;
        if (rec.n_fields == 0) {
            fedc_diag_set(d, "%s: file is empty (expected a header line)", path);
            rc = FEDC_EEMPTY;
        } else {
            fedc_diag_set(d, "%s:1: header line is blank (expected comma-separated column names)",
                          path);
            rc = FEDC_EPARSE;
        }
        goto out;
    }
    if ((rc = fedc__header_parse(&h, &rec, path, d)))
        goto out;

    /* Roles: the label, dropped columns, and features in file order. */
    int label_col = fedc__header_find(&h, label);
    if (label_col < 0) {
        fedc__header_missing(d, path, "label column", label, &h);
        rc = FEDC_EINVAL;
        goto out;
    }
    role = calloc((size_t)h.n_cols, sizeof *role);
    if (!role) {
        fedc_diag_set(d, "%s: out of memory", path);
        rc = FEDC_ENOMEM;
        goto out;
    }
    role[label_col] = ROLE_LABEL;
    for (int i = 0; i < n_drop; i++) {
        int c = fedc__header_find(&h, drop[i]);
        if (c < 0) {
            fedc__header_missing(d, path, "column to drop", drop[i], &h);
            rc = FEDC_EINVAL;
            goto out;
        }
        if (c == label_col) {
            fedc_diag_set(d, "%s:1:%d: column '%s' is both the label and in the drop list", path,
                          c + 1, fedc__show(s1, label, strlen(label)));
            rc = FEDC_EINVAL;
            goto out;
        }
        role[c] = ROLE_DROP;
    }
    /* Numeric features, indicator and one-hot columns in file order (encode.c). */
    if ((rc = fedc__plan_build(&pl, role, h.names, h.n_cols, enc, path, d)))
        goto out;
    int n_features = pl.n_features;
    ds = calloc(1, sizeof *ds);
    if (!ds)
        goto nomem;
    ds->n_features = n_features;

    /* Rows: every one as wide as the header, a line at most FEDC_CSV_MAX_FIELD + 8 bytes per
     * column. A blank line is held back until a later non-blank line shows it was not
     * trailing. */
    lim.max_record_bytes = (size_t)h.n_cols * (FEDC_CSV_MAX_FIELD + CELL_SLACK);
    if ((rc = fedc_csv_set_limits(r, &lim)))
        goto out;
    fedc_csv_expect_fields(r, h.n_cols);
    size_t cap_rows = 0, nf = (size_t)n_features;
    long first_blank = 0;
    for (;;) {
        /* Room for the next row before it is read, so that the fast path can parse into it. */
        if ((size_t)ds->n_rows == cap_rows && cap_rows < (size_t)INT_MAX &&
            grow_rows(ds, &cap_rows))
            goto nomem;
        int room = (size_t)ds->n_rows < cap_rows;
        fedc_csv_window w;
        if (room && !first_blank && fedc_csv_window_get(r, &w) == 0) {
            float *xrow = ds->x + (size_t)ds->n_rows * nf;
            if (pl.zero_rows)
                memset(xrow, 0, nf * sizeof *xrow);
            const char *next =
                fast_row(xrow, ds->y + ds->n_rows, &w, role, h.n_cols, lim.max_record_bytes, &pl);
            if (next) {
                fedc_csv_window_take(r, next);
                ds->n_rows++;
                continue;
            }
        }
        if ((rc = fedc_csv_next(r, &rec, d)) != FEDC_OK || rec.n_fields == 0)
            break;
        if (rec.blank) {
            if (!first_blank)
                first_blank = rec.line;
            continue;
        }
        if (first_blank) {
            fedc_diag_set(d,
                          "%s:%ld:1: ragged row: expected %d fields (as in the header), got an "
                          "empty line (only blank lines at the end of the file are ignored)",
                          path, first_blank, h.n_cols);
            rc = FEDC_EPARSE;
            goto out;
        }
        if (!room) {
            fedc_diag_set(d, "%s:%ld: more than %d data rows", path, rec.line, INT_MAX);
            rc = FEDC_ERANGE;
            goto out;
        }
        float *xrow = ds->x + (size_t)ds->n_rows * nf;
        if (pl.zero_rows)
            memset(xrow, 0, nf * sizeof *xrow);
        for (int j = 0; j < h.n_cols; j++) {
            int rj = role[j];
            const fedc_csv_field *fj = &rec.fields[j];
            if (rj == ROLE_DROP)
                continue;
            if (rj == ROLE_CAT || (rj == ROLE_LABEL && pl.label_text)) {
                if (text_cell(xrow, ds->y + ds->n_rows, &pl, j, fj->s, fj->s + fj->n) == 0)
                    continue;
            } else {
                float v;
                if (parse_field(&v, fj, delim) == 0) {
                    if (rj == ROLE_LABEL)
                        ds->y[ds->n_rows] = v;
                    else
                        xrow[rj] = v;
                    continue;
                }
                if (rj >= 0 && pl.missing != FEDC_MISSING_ERROR &&
                    fedc_is_missing_text(fj->s, fj->n)) {
                    xrow[rj] = pl.impute                         ? pl.impute[rj]
                               : pl.missing == FEDC_MISSING_ZERO ? 0.0f
                                                                 : NAN;
                    if (pl.aux[j] >= 0)
                        xrow[pl.aux[j]] = 1.0f;
                    continue;
                }
            }
            rc = cell_error(d, path, rec.line, j, fj, &h, rj == ROLE_LABEL);
            goto out;
        }
        ds->n_rows++;
    }
    if (rc) {
        csv_error(d, path, r, &h);
        goto out;
    }
    if (ds->n_rows == 0) {
        fedc_diag_set(d, "%s: no data rows after the header", path);
        rc = FEDC_EEMPTY;
        goto out;
    }
    /* The names move to the dataset only now: error messages about rows quote them. */
    ds->feature_names = pl.names;
    pl.names = NULL;
    ds->label_name = h.names[label_col];
    h.names[label_col] = NULL;
    /* Give back the unused tail of the last doubling; keep the larger block if that fails. */
    float *nx = realloc(ds->x, (size_t)ds->n_rows * nf * sizeof(float));
    if (nx)
        ds->x = nx;
    float *ny = realloc(ds->y, (size_t)ds->n_rows * sizeof(float));
    if (ny)
        ds->y = ny;
    *out = ds;
    ds = NULL;
    goto out;
nomem:
    fedc_diag_set(d, "%s: out of memory loading the data", path);
    rc = FEDC_ENOMEM;
out:
    fedc_csv_close(&r);
    if (f)
        fclose(f);
    fedc__header_release(&h);
    fedc__plan_release(&pl);
    free(role);
    fedc_dataset_destroy(&ds);
    return rc;
}
