/* Tabular data: a CSV loader, task detection, feature statistics and stratified splits.
 *
 * The loader reads the file through one growing buffer, a line at a time, and parses each cell in
 * place: the character after a cell (a comma, a quote, a blank, the line end or the NUL kept
 * after the last byte read) can never continue a number, so strtof stops at the cell's end
 * without a copy. Decimals take an exact fast path that gives the same float as strtof. Rows
 * are appended to one matrix that doubles when full; nothing is allocated per cell. The happy path
 * only checks; when a row is wrong, a slower pass over that one line works out what to tell the
 * user (ragged row, empty cell, text, NaN, overflow). Deliberately left out: quoted fields that
 * contain commas, quotes or line breaks (RFC 4180 escapes), other separators, categorical columns
 * and missing values. Numbers are read in the C locale, which is in force because fedc never calls
 * setlocale. */
#include "fedc/data.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fedc/rng.h"

#define READ_CHUNK ((size_t)1 << 20)
/* A cell may take this many bytes beyond FEDC_CSV_MAX_FIELD: blanks, quotes and the comma. */
#define CELL_SLACK 8
/* How much of a cell or name an error message shows. */
#define SHOW_MAX 40
/* How much of the header an error message lists. */
#define LIST_MAX 160

/* ---- Line reader ------------------------------------------------------------------------- */

/* Hands out the lines of a file from one buffer that grows to the longest line. */
typedef struct reader {
    FILE *f;
    char *buf;   /* cap bytes; buf[len] is a NUL whenever a line is handed out */
    size_t cap;  /* allocated bytes */
    size_t len;  /* bytes of file data in buf */
    size_t pos;  /* start of the next line */
    size_t scan; /* bytes after pos already known to hold no newline */
    int eof;
    int read_errno; /* errno of a failed read, 0 if none */
    size_t nul;     /* offset in buf of the first NUL byte read, SIZE_MAX while none */
    /* > 0: a line may take at most this many bytes per field, checked while it is still being
     * read, so that a header without line breaks (a binary or sparse file) is refused after one
     * chunk instead of growing the buffer towards the whole-line limit */
    size_t field_cap;
    size_t commas; /* commas in the scanned part of the current line (with field_cap) */
    size_t limit;  /* the length limit a LINE_TOO_LONG exceeded */
} reader;

typedef enum line_status {
    LINE_OK = 0,
    LINE_EOF = 1,
    LINE_TOO_LONG = 2,
    LINE_NOMEM = 3,
    LINE_EIO = 4,
    LINE_NUL = 5,
} line_status;

/* Returns the next line in [*line, *line + *n), without its "\n" or "\r\n". The byte at
 * (*line)[*n] is '\n', '\r' or NUL. The line stays valid until the next call. A line longer than
 * max_len bytes (or, with r->field_cap, than field_cap bytes per field read so far) gives
 * LINE_TOO_LONG without growing the buffer further (r->limit says which limit). A line holding a
 * NUL byte gives LINE_NUL as soon as that byte has been read, with [*line, *line + *n) the part
 * before it: no text file holds one, and a sparse or binary file would otherwise be read up to
 * the line limit first. */
static line_status reader_line(const char **line, size_t *n, reader *r, size_t max_len) {
    r->limit = max_len;
    for (;;) {
        char *start = r->buf + r->pos;
        char *nl = memchr(start + r->scan, '\n', r->len - r->pos - r->scan);
        size_t known = nl ? (size_t)(nl - start) : r->len - r->pos; /* bytes of this line */
        if (r->nul != SIZE_MAX && r->nul - r->pos < known) {
            *line = start;
            *n = r->nul - r->pos;
            return LINE_NUL;
        }
        if (nl) {
            /* The same limit for every line, wherever it falls in the buffer. */
            if ((size_t)(nl - start) > max_len)
                return LINE_TOO_LONG;
            r->commas = 0;
            *line = start;
            *n = (size_t)(nl - start);
            r->pos += *n + 1;
            r->scan = 0;
            break;
        }
        size_t scanned = r->scan;
        r->scan = r->len - r->pos;
        if (r->eof) {
            if (r->pos == r->len)
                return LINE_EOF;
            if (r->len - r->pos > max_len)
                return LINE_TOO_LONG;
            *line = start;
            *n = r->len - r->pos;
            r->pos = r->len;
            r->scan = 0;
            r->commas = 0;
            break;
        }
        if (r->len - r->pos > max_len)
            return LINE_TOO_LONG;
        if (r->field_cap) {
            /* The fields read so far must fit field_cap bytes each (one more for the field in
             * progress), before the buffer grows for the rest of the line. */
            const char *end = start + (r->len - r->pos);
            for (const char *p = start + scanned; (p = memchr(p, ',', (size_t)(end - p))) != NULL;
                 p++)
                r->commas++;
            size_t lim =
                r->commas < max_len / r->field_cap ? (r->commas + 1) * r->field_cap : max_len;
            if (r->len - r->pos > lim) {
                r->limit = lim;
                return LINE_TOO_LONG;
            }
        }
        /* Move the partial line to the front, then grow if less than a chunk is free. */
        memmove(r->buf, start, r->len - r->pos);
        if (r->nul != SIZE_MAX)
            r->nul -= r->pos;
        r->len -= r->pos;
        r->pos = 0;
        if (r->cap - 1 - r->len < READ_CHUNK / 2) {
            if (r->cap > SIZE_MAX / 2)
                return LINE_NOMEM;
            char *nb = realloc(r->buf, r->cap * 2);
            if (!nb)
                return LINE_NOMEM;
            r->buf = nb;
            r->cap *= 2;
        }
        size_t got = fread(r->buf + r->len, 1, r->cap - 1 - r->len, r->f);
        if (r->nul == SIZE_MAX) {
            const char *z = memchr(r->buf + r->len, '\0', got);
            if (z)
                r->nul = (size_t)(z - r->buf);
        }
        r->len += got;
        r->buf[r->len] = '\0';
        if (got == 0) {
            if (ferror(r->f)) {
                r->read_errno = errno ? errno : EIO;
                return LINE_EIO;
            }
            r->eof = 1;
        }
    }
    if (*n > 0 && (*line)[*n - 1] == '\r')
        (*n)--;
    return LINE_OK;
}

/* ---- Small text helpers ------------------------------------------------------------------ */

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static const char *skip_blank(const char *p, const char *end) {
    while (p < end && is_blank(*p))
        p++;
    return p;
}

static const char *trim_end(const char *begin, const char *end) {
    while (end > begin && is_blank(end[-1]))
        end--;
    return end;
}

static int line_is_blank(const char *line, size_t n) {
    return skip_blank(line, line + n) == line + n;
}

/* Copies [s, s + n) into out for an error message: at most SHOW_MAX bytes, control bytes as '?',
 * "..." when cut (never inside a UTF-8 sequence). */
static const char *show(char out[SHOW_MAX + 4], const char *s, size_t n) {
    size_t k = n < SHOW_MAX ? n : SHOW_MAX;
    while (k < n && k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
        k--;
    for (size_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (k < n) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
    return out;
}

/* Number of comma-separated fields in [line, line + n). */
static long count_fields(const char *line, size_t n) {
    long k = 1;
    const char *p = line, *end = line + n;
    while ((p = memchr(p, ',', (size_t)(end - p))) != NULL) {
        k++;
        p++;
    }
    return k;
}

/* Offset of the first byte of [s, s + n) that does not start a well-formed UTF-8 sequence
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or SIZE_MAX when all of
 * it is UTF-8. */
static size_t utf8_invalid_at(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xbf; /* the range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        } else {
            return i;
        }
        if (n - i < len || u[i + 1] < lo || u[i + 1] > hi)
            return i;
        for (size_t k = 2; k < len; k++)
            if ((u[i + k] & 0xc0) != 0x80)
                return i;
        i += len;
    }
    return SIZE_MAX;
}

/* ---- Header ------------------------------------------------------------------------------ */

typedef struct name_ref {
    const char *name;
    int col;
} name_ref;

/* By name, then by column, so that equal names sit together in column order. */
static int cmp_name_ref(const void *pa, const void *pb) {
    const name_ref *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->col > b->col) - (a->col < b->col);
}

static int cmp_name_key(const void *pkey, const void *pelem) {
    return strcmp((const char *)pkey, ((const name_ref *)pelem)->name);
}

/* Column index of name, or -1. sorted holds n_cols names ordered by cmp_name_ref. */
static int find_column(const name_ref *sorted, int n_cols, const char *name) {
    const name_ref *hit = bsearch(name, sorted, (size_t)n_cols, sizeof *sorted, cmp_name_key);
    if (!hit)
        return -1;
    /* Names are unique by now, so any hit is the hit. */
    return hit->col;
}

/* Writes "a1, a2, ..." into out (LIST_MAX + 32 bytes), cut with the total count when long,
 * control bytes as '?'. */
static void list_columns(char *out, size_t cap, char *const *names, int n_cols) {
    size_t len = 0;
    out[0] = '\0';
    for (int j = 0; j < n_cols; j++) {
        size_t k = strlen(names[j]);
        if (len + k + 2 > LIST_MAX) {
            snprintf(out + len, cap - len, "%s... (%d columns)", j ? ", " : "", n_cols);
            break;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s", j ? ", " : "", names[j]);
    }
    for (char *c = out; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    }
}

/* A header whose column names have been split, unquoted and checked. */
typedef struct header {
    int n_cols;
    char **names;     /* n_cols strings, owned until moved into the dataset */
    name_ref *sorted; /* n_cols references ordered by cmp_name_ref */
} header;

static void header_release(header *h) {
    if (h->names) {
        for (int j = 0; j < h->n_cols; j++)
            free(h->names[j]);
    }
    free(h->names);
    free(h->sorted);
    h->names = NULL;
    h->sorted = NULL;
    h->n_cols = 0;
}

/* Splits the header line into names: blanks trimmed, one pair of quotes removed (then blanks
 * inside trimmed too), every name non-empty, at most FEDC_CSV_MAX_FIELD bytes and unique. */
static fedc_err header_parse(header *h, const char *line, size_t n, const char *path,
                             fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    char s1[SHOW_MAX + 4];
    long n_cols = count_fields(line, n);
    if (n_cols > FEDC_CSV_MAX_COLUMNS) {
        fedc_diag_set(d, "%s:1: header has %ld columns, more than the limit of %d", path, n_cols,
                      FEDC_CSV_MAX_COLUMNS);
        rc = FEDC_ERANGE;
        goto out;
    }
    h->names = calloc((size_t)n_cols, sizeof *h->names);
    h->sorted = malloc((size_t)n_cols * sizeof *h->sorted);
    if (!h->names || !h->sorted) {
        fedc_diag_set(d, "%s: out of memory reading the header (%ld columns)", path, n_cols);
        rc = FEDC_ENOMEM;
        goto out;
    }
    h->n_cols = (int)n_cols;
    const char *p = line, *end = line + n;
    for (int j = 0; j < h->n_cols; j++) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *fe = comma ? comma : end;
        const char *s = skip_blank(p, fe), *e = trim_end(s, fe);
        const char *raw_s = s, *raw_e = e;
        if (s < e && (*s == '"' || e[-1] == '"')) {
            if (e - s < 2 || *s != '"' || e[-1] != '"') {
                fedc_diag_set(d,
                              "%s:1:%d: column name '%s': unmatched double quote (a quoted "
                              "name may not contain commas or quotes)",
                              path, j + 1, show(s1, raw_s, (size_t)(raw_e - raw_s)));
                rc = FEDC_EPARSE;
                goto out;
            }
            s = skip_blank(s + 1, e - 1);
            e = trim_end(s, e - 1);
        }
        if (memchr(s, '"', (size_t)(e - s))) {
            fedc_diag_set(d, "%s:1:%d: column name '%s': unexpected double quote inside the name",
                          path, j + 1, show(s1, raw_s, (size_t)(raw_e - raw_s)));
            rc = FEDC_EPARSE;
            goto out;
        }
        if (s == e) {
            fedc_diag_set(d, "%s:1:%d: empty column name (expected a name for every column)", path,
                          j + 1);
            rc = FEDC_EPARSE;
            goto out;
        }
        /* A NUL byte, which would cut the name short (found by tests/fuzz/fuzz_csv), never gets
         * here: the reader refuses a line holding one. Names are text: UTF-8 (RFC 3629). */
        size_t bad = utf8_invalid_at(s, (size_t)(e - s));
        if (bad != SIZE_MAX) {
            fedc_diag_set(d,
                          "%s:1:%d: column name: invalid UTF-8 byte 0x%02x at byte %zu of the "
                          "name (after '%s'); expected UTF-8 text",
                          path, j + 1, (unsigned)(unsigned char)s[bad], bad + 1, show(s1, s, bad));
            rc = FEDC_EPARSE;
            goto out;
        }
        size_t len = (size_t)(e - s);
        if (len > FEDC_CSV_MAX_FIELD) {
            fedc_diag_set(d, "%s:1:%d: column name is %zu bytes long, more than the limit of %d",
                          path, j + 1, len, FEDC_CSV_MAX_FIELD);
            rc = FEDC_ERANGE;
            goto out;
        }
        h->names[j] = malloc(len + 1);
        if (!h->names[j]) {
            fedc_diag_set(d, "%s: out of memory reading the header", path);
            rc = FEDC_ENOMEM;
            goto out;
        }
        memcpy(h->names[j], s, len);
        h->names[j][len] = '\0';
        h->sorted[j] = (name_ref){h->names[j], j};
        p = fe + 1;
    }
    qsort(h->sorted, (size_t)h->n_cols, sizeof *h->sorted, cmp_name_ref);
    /* Report the duplicate whose second occurrence comes first in the line. */
    int dup_first = -1, dup_second = INT_MAX;
    for (int i = 1; i < h->n_cols; i++) {
        if (strcmp(h->sorted[i - 1].name, h->sorted[i].name) == 0 &&
            h->sorted[i].col < dup_second) {
            dup_first = h->sorted[i - 1].col;
            dup_second = h->sorted[i].col;
        }
    }
    if (dup_first >= 0) {
        fedc_diag_set(
            d, "%s:1:%d: duplicate column name '%s': columns %d and %d have the same name", path,
            dup_second + 1, show(s1, h->names[dup_second], strlen(h->names[dup_second])),
            dup_first + 1, dup_second + 1);
        rc = FEDC_EPARSE;
        goto out;
    }
out:
    return rc;
}

/* Explains why a name is not in the header: the columns it has, and a case-insensitive match. */
static void report_missing(fedc_diag *d, const char *path, const char *what, const char *name,
                           const header *h) {
    char list[LIST_MAX + 32], s1[SHOW_MAX + 4], s2[SHOW_MAX + 4];
    list_columns(list, sizeof list, h->names, h->n_cols);
    for (int j = 0; j < h->n_cols; j++) {
        if (strcasecmp(h->names[j], name) == 0) {
            fedc_diag_set(d, "%s:1: %s '%s' not found in header (did you mean '%s'? columns: %s)",
                          path, what, show(s1, name, strlen(name)),
                          show(s2, h->names[j], strlen(h->names[j])), list);
            return;
        }
    }
    fedc_diag_set(d, "%s:1: %s '%s' not found in header (columns: %s)", path, what,
                  show(s1, name, strlen(name)), list);
}

/* ---- Numbers ----------------------------------------------------------------------------- */

static int is_digit(char c) {
    return (unsigned)(c - '0') < 10u;
}

/* Characters that end a cell: after one of them, strtof could not have read further either. */
static int is_cell_end(char c) {
    return c == ',' || c == '"' || c == '\n' || c == '\0' || is_blank(c);
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
static const char *fast_float(float *v, const char *p) {
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
    if (!is_cell_end(*p) || q < -22 || q > 22)
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
    return NULL;
#endif
}

/* ---- Rows -------------------------------------------------------------------------------- */

enum { ROLE_DROP = -1, ROLE_LABEL = -2 };

/* 1 when the number at p is written in hexadecimal ([+-]0x...): strtof reads those, but a CSV
 * file of decimal data that holds one was not meant to, so the loader refuses it. */
static int is_hex_number(const char *p) {
    if (*p == '+' || *p == '-')
        p++;
    return p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
}

/* Parses one cell at p, where the cell ends at the next comma or at end. On success stores the
 * value, returns the position after the cell (the comma or end) and never reads past end. NULL
 * means the cell is not a single finite number; the caller then explains why. */
static const char *parse_cell(float *v, const char *p, const char *end) {
    char *e;
    p = skip_blank(p, end);
    if (p == end || *p == ',')
        return NULL;
    if (*p == '"') {
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!q)
            return NULL;
        const char *s = skip_blank(p + 1, q), *t = trim_end(s, q);
        if (s == t)
            return NULL;
        const char *f = fast_float(v, s);
        if (!f) {
            if (is_hex_number(s))
                return NULL;
            *v = strtof(s, &e);
            f = e;
        }
        if (f != t)
            return NULL;
        p = q + 1;
    } else {
        const char *f = fast_float(v, p);
        if (!f) {
            if (is_hex_number(p))
                return NULL;
            *v = strtof(p, &e);
            if (e == p)
                return NULL;
            f = e;
        }
        p = f;
    }
    if (!isfinite(*v))
        return NULL;
    p = skip_blank(p, end);
    return p == end || *p == ',' ? p : NULL;
}

/* Writes the message for a row that parse_cell rejected at column col (0-based): a ragged row
 * when the field count is wrong, otherwise what is wrong with that cell. */
static fedc_err row_error(fedc_diag *d, const char *path, long line_no, const char *line, size_t n,
                          int col, const header *h) {
    char s1[SHOW_MAX + 4], s2[SHOW_MAX + 4];
    long got = count_fields(line, n);
    if (got != h->n_cols) {
        long at = (got < h->n_cols ? got : h->n_cols) + 1;
        fedc_diag_set(d, "%s:%ld:%ld: ragged row: expected %d fields (as in the header), got %ld",
                      path, line_no, at, h->n_cols, got);
        return FEDC_EPARSE;
    }
    const char *p = line, *end = line + n;
    for (int j = 0; j < col; j++)
        p = (const char *)memchr(p, ',', (size_t)(end - p)) + 1;
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *fe = comma ? comma : end;
    const char *s = skip_blank(p, fe), *e = trim_end(s, fe);
    const char *name = show(s2, h->names[col], strlen(h->names[col]));
    if (s < e && (*s == '"' || e[-1] == '"')) {
        if (e - s < 2 || *s != '"' || e[-1] != '"') {
            /* Text after a closing quote is a bad number; a quote without its pair is not. */
            int paired = *s == '"' && e - s > 1 && memchr(s + 1, '"', (size_t)(e - s - 1));
            fedc_diag_set(d, "%s:%ld:%d: column '%s': %s '%s'", path, line_no, col + 1, name,
                          paired ? "expected a number, got" : "unmatched double quote in",
                          show(s1, s, (size_t)(e - s)));
            return FEDC_EPARSE;
        }
        s = skip_blank(s + 1, e - 1);
        e = trim_end(s, e - 1);
    }
    if (s == e) {
        fedc_diag_set(d, "%s:%ld:%d: column '%s': expected a number, got an empty cell", path,
                      line_no, col + 1, name);
        return FEDC_EPARSE;
    }
    char *stop;
    errno = 0;
    float v = strtof(s, &stop);
    show(s1, s, (size_t)(e - s));
    if (is_hex_number(s)) {
        fedc_diag_set(d,
                      "%s:%ld:%d: column '%s': expected a decimal number, got the hexadecimal "
                      "'%s' (hexadecimal numbers are not accepted)",
                      path, line_no, col + 1, name, s1);
    } else if (stop != e) {
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
        /* parse_cell and this pass disagree: say something true rather than nothing. */
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

/* Reports a reader failure on line line_no; for LINE_NUL, [line, line + n) is the part of the
 * line before the NUL byte. */
static fedc_err reader_error(fedc_diag *d, const char *path, long line_no, line_status st,
                             const reader *r, const char *line, size_t n) {
    switch (st) {
    case LINE_TOO_LONG:
        if (r->field_cap && r->limit < (size_t)FEDC_CSV_MAX_COLUMNS * r->field_cap)
            fedc_diag_set(d,
                          "%s:%ld: line is longer than %zu bytes in its first %zu fields, with no "
                          "line break yet (the limit is %d bytes per field; not a CSV file?)",
                          path, line_no, r->limit, r->commas + 1, FEDC_CSV_MAX_FIELD + CELL_SLACK);
        else
            fedc_diag_set(d,
                          "%s:%ld: line is longer than %zu bytes (the limit is %d bytes per field)",
                          path, line_no, r->limit, FEDC_CSV_MAX_FIELD + CELL_SLACK);
        return FEDC_ERANGE;
    case LINE_NUL:
        fedc_diag_set(d,
                      "%s:%ld:%ld: NUL byte at byte %zu of the line: expected text (a binary file, "
                      "or a sparse one with unwritten regions?)",
                      path, line_no, count_fields(line, n), n + 1);
        return FEDC_EPARSE;
    case LINE_NOMEM:
        fedc_diag_set(d, "%s:%ld: out of memory reading a long line", path, line_no);
        return FEDC_ENOMEM;
    case LINE_EIO:
        fedc_diag_set(d, "%s: cannot read: %s", path, strerror(r->read_errno));
        return FEDC_EIO;
    case LINE_OK:
    case LINE_EOF:
        break;
    }
    return FEDC_OK;
}

fedc_err fedc_csv_load(fedc_dataset **out, const char *path, const char *label,
                       const char *const *drop, int n_drop, fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    reader r = {0};
    header h = {0};
    int *role = NULL;
    fedc_dataset *ds = NULL;
    char s1[SHOW_MAX + 4];
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

    r.f = fopen(path, "rb");
    if (!r.f) {
        fedc_diag_set(d, "%s: cannot open: %s", path, strerror(errno));
        rc = FEDC_EIO;
        goto out;
    }
    r.cap = READ_CHUNK + 1;
    r.buf = malloc(r.cap);
    if (!r.buf) {
        fedc_diag_set(d, "%s: out of memory", path);
        rc = FEDC_ENOMEM;
        goto out;
    }
    r.buf[0] = '\0';
    r.nul = SIZE_MAX;

    /* Header: a line of at most FEDC_CSV_MAX_COLUMNS fields of at most FEDC_CSV_MAX_FIELD bytes
     * (plus blanks and quotes), checked as it is read. */
    r.field_cap = FEDC_CSV_MAX_FIELD + CELL_SLACK;
    const char *line = NULL;
    size_t n = 0;
    size_t max_len = (size_t)FEDC_CSV_MAX_COLUMNS * (FEDC_CSV_MAX_FIELD + CELL_SLACK);
    line_status st = reader_line(&line, &n, &r, max_len);
    if (st == LINE_EOF) {
        fedc_diag_set(d, "%s: file is empty (expected a header line)", path);
        rc = FEDC_EEMPTY;
        goto out;
    }
    if ((rc = reader_error(d, path, 1, st, &r, line, n)))
        goto out;
    if (n >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
        /* A UTF-8 byte order mark, as spreadsheet programs write it. */
        line += 3;
        n -= 3;
    }
    if (line_is_blank(line, n)) {
        /* Blank all the way down is an empty file; blank above data is a missing header. */
        long line_no = 1;
        while ((st = reader_line(&line, &n, &r, max_len)) == LINE_OK && line_is_blank(line, n))
            line_no++;
        if ((rc = reader_error(d, path, line_no + 1, st, &r, line, n)))
            goto out;
        if (st == LINE_EOF) {
            fedc_diag_set(d, "%s: file is empty (expected a header line)", path);
            rc = FEDC_EEMPTY;
        } else {
            fedc_diag_set(d, "%s:1: header line is blank (expected comma-separated column names)",
                          path);
            rc = FEDC_EPARSE;
        }
        goto out;
    }
    if ((rc = header_parse(&h, line, n, path, d)))
        goto out;
    r.field_cap = 0; /* rows: the line limit below, from the header's column count */

    /* Roles: the label, dropped columns, and features in file order. */
    int label_col = find_column(h.sorted, h.n_cols, label);
    if (label_col < 0) {
        report_missing(d, path, "label column", label, &h);
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
        int c = find_column(h.sorted, h.n_cols, drop[i]);
        if (c < 0) {
            report_missing(d, path, "column to drop", drop[i], &h);
            rc = FEDC_EINVAL;
            goto out;
        }
        if (c == label_col) {
            fedc_diag_set(d, "%s:1:%d: column '%s' is both the label and in the drop list", path,
                          c + 1, show(s1, label, strlen(label)));
            rc = FEDC_EINVAL;
            goto out;
        }
        role[c] = ROLE_DROP;
    }
    int n_features = 0;
    for (int j = 0; j < h.n_cols; j++) {
        if (role[j] == 0)
            n_features++;
    }
    if (n_features == 0) {
        fedc_diag_set(d, "%s:1: no feature columns left: all %d columns are the label or dropped",
                      path, h.n_cols);
        rc = FEDC_EINVAL;
        goto out;
    }
    ds = calloc(1, sizeof *ds);
    if (!ds)
        goto nomem;
    ds->n_features = n_features;
    ds->feature_names = calloc((size_t)n_features, sizeof *ds->feature_names);
    if (!ds->feature_names)
        goto nomem;
    for (int j = 0, k = 0; j < h.n_cols; j++) {
        if (role[j] == 0)
            role[j] = k++;
    }

    /* Rows. A blank line is held back until a later non-blank line shows it was not trailing. */
    size_t cap_rows = 0, nf = (size_t)n_features;
    long line_no = 1, first_blank = 0;
    max_len = (size_t)h.n_cols * (FEDC_CSV_MAX_FIELD + CELL_SLACK);
    while ((st = reader_line(&line, &n, &r, max_len)) == LINE_OK) {
        line_no++;
        if (line_is_blank(line, n)) {
            if (!first_blank)
                first_blank = line_no;
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
        if ((size_t)ds->n_rows == cap_rows) {
            if (cap_rows == (size_t)INT_MAX) {
                fedc_diag_set(d, "%s:%ld: more than %d data rows", path, line_no, INT_MAX);
                rc = FEDC_ERANGE;
                goto out;
            }
            if (grow_rows(ds, &cap_rows))
                goto nomem;
        }
        float *xrow = ds->x + (size_t)ds->n_rows * nf;
        const char *p = line, *end = line + n;
        for (int j = 0; j < h.n_cols; j++) {
            if (j > 0) {
                if (p == end) {
                    rc = row_error(d, path, line_no, line, n, j, &h);
                    goto out;
                }
                p++; /* the comma */
            }
            if (role[j] == ROLE_DROP) {
                const char *comma = memchr(p, ',', (size_t)(end - p));
                p = comma ? comma : end;
                continue;
            }
            float v;
            const char *next = parse_cell(&v, p, end);
            if (!next) {
                rc = row_error(d, path, line_no, line, n, j, &h);
                goto out;
            }
            p = next;
            if (role[j] == ROLE_LABEL)
                ds->y[ds->n_rows] = v;
            else
                xrow[role[j]] = v;
        }
        if (p != end) {
            rc = row_error(d, path, line_no, line, n, h.n_cols - 1, &h);
            goto out;
        }
        ds->n_rows++;
    }
    if ((rc = reader_error(d, path, line_no + 1, st, &r, line, n)))
        goto out;
    if (ds->n_rows == 0) {
        fedc_diag_set(d, "%s: no data rows after the header", path);
        rc = FEDC_EEMPTY;
        goto out;
    }
    /* The names move to the dataset only now: error messages about rows quote them. */
    for (int j = 0; j < h.n_cols; j++) {
        if (role[j] >= 0) {
            ds->feature_names[role[j]] = h.names[j];
            h.names[j] = NULL;
        }
    }
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
    if (r.f)
        fclose(r.f);
    free(r.buf);
    header_release(&h);
    free(role);
    fedc_dataset_destroy(&ds);
    return rc;
}

/* ---- Datasets ---------------------------------------------------------------------------- */

fedc_err fedc_dataset_new(fedc_dataset **out, int n_rows, int n_features) {
    fedc_err rc = FEDC_OK;
    fedc_dataset *ds = NULL;
    if (out)
        *out = NULL;
    if (!out || n_rows < 0 || n_features < 0) {
        rc = FEDC_EINVAL;
        goto out;
    }
    size_t cells = (size_t)n_rows * (size_t)n_features;
    if (n_features > 0 && cells / (size_t)n_features != (size_t)n_rows) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    ds = calloc(1, sizeof *ds);
    if (!ds) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    ds->n_rows = n_rows;
    ds->n_features = n_features;
    /* At least one element each, so that an empty dataset still has non-NULL buffers. */
    ds->x = calloc(cells ? cells : 1, sizeof(float));
    ds->y = calloc(n_rows ? (size_t)n_rows : 1, sizeof(float));
    if (!ds->x || !ds->y) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    *out = ds;
    ds = NULL;
out:
    fedc_dataset_destroy(&ds);
    return rc;
}

void fedc_dataset_destroy(fedc_dataset **ds) {
    if (!ds || !*ds)
        return;
    fedc_dataset *p = *ds;
    if (p->feature_names) {
        for (int j = 0; j < p->n_features; j++)
            free(p->feature_names[j]);
        free(p->feature_names);
    }
    free(p->label_name);
    free(p->x);
    free(p->y);
    free(p);
    *ds = NULL;
}

static char *dup_str(const char *s) {
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

fedc_err fedc_dataset_subset(fedc_dataset **out, const fedc_dataset *src, const int *rows, int n) {
    fedc_err rc = FEDC_OK;
    fedc_dataset *ds = NULL;
    if (out)
        *out = NULL;
    if (!out || !src || n < 0 || (n > 0 && !rows)) {
        rc = FEDC_EINVAL;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= src->n_rows) {
            rc = FEDC_EINVAL;
            goto out;
        }
    }
    if ((rc = fedc_dataset_new(&ds, n, src->n_features)))
        goto out;
    size_t nf = (size_t)src->n_features;
    for (int i = 0; i < n; i++) {
        if (nf)
            memcpy(ds->x + (size_t)i * nf, src->x + (size_t)rows[i] * nf, nf * sizeof(float));
        ds->y[i] = src->y[rows[i]];
    }
    if (src->feature_names) {
        ds->feature_names = calloc(nf ? nf : 1, sizeof *ds->feature_names);
        if (!ds->feature_names) {
            rc = FEDC_ENOMEM;
            goto out;
        }
        for (size_t j = 0; j < nf; j++) {
            ds->feature_names[j] = dup_str(src->feature_names[j]);
            if (src->feature_names[j] && !ds->feature_names[j]) {
                rc = FEDC_ENOMEM;
                goto out;
            }
        }
    }
    ds->label_name = dup_str(src->label_name);
    if (src->label_name && !ds->label_name) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    *out = ds;
    ds = NULL;
out:
    fedc_dataset_destroy(&ds);
    return rc;
}

/* ---- Task detection ---------------------------------------------------------------------- */

fedc_err fedc_dataset_task(fedc_task *task, int *n_classes, const fedc_dataset *ds,
                           int forced_regression, fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    unsigned char *seen = NULL;
    char s1[SHOW_MAX + 4];
    if (d)
        d->msg[0] = '\0';
    if (!task || !n_classes || !ds) {
        fedc_diag_set(d, "fedc_dataset_task: invalid arguments");
        rc = FEDC_EINVAL;
        goto out;
    }
    const char *lname = ds->label_name ? ds->label_name : "label";
    show(s1, lname, strlen(lname));
    if (forced_regression) {
        *task = FEDC_TASK_REGRESSION;
        *n_classes = 1;
        goto out;
    }
    if (ds->n_rows == 0) {
        fedc_diag_set(d, "label '%s': no rows to detect the task from", s1);
        rc = FEDC_EEMPTY;
        goto out;
    }
    /* A class index must be a non-negative integer, and every class up to the largest must
     * occur, so no index can reach max(2, n_rows): checked before allocating. */
    float limit = ds->n_rows > 2 ? (float)ds->n_rows : 2.0f;
    float max = 0.0f;
    for (int i = 0; i < ds->n_rows; i++) {
        float y = ds->y[i];
        if (!(y >= 0.0f && y == floorf(y))) {
            fedc_diag_set(d,
                          "line %d (row %d): label '%s': expected a class index (an integer 0, "
                          "1, 2, ...), got %g; pass --task regression for a real-valued target",
                          i + 2, i, s1, (double)y);
            rc = FEDC_EINVAL;
            goto out;
        }
        if (!(y < limit)) {
            fedc_diag_set(d,
                          "line %d (row %d): label '%s': class index %g is too large: classes "
                          "0..%g cannot all occur in %d rows; pass --task regression for a "
                          "real-valued target",
                          i + 2, i, s1, (double)y, (double)y, ds->n_rows);
            rc = FEDC_EINVAL;
            goto out;
        }
        if (y > max)
            max = y;
    }
    int k = (int)max + 1;
    if (k <= 2) {
        *task = FEDC_TASK_BINARY;
        *n_classes = 2;
        goto out;
    }
    seen = calloc((size_t)k, 1);
    if (!seen) {
        fedc_diag_set(d, "out of memory");
        rc = FEDC_ENOMEM;
        goto out;
    }
    for (int i = 0; i < ds->n_rows; i++)
        seen[(int)ds->y[i]] = 1;
    for (int c = 0; c < k; c++) {
        if (!seen[c]) {
            fedc_diag_set(d,
                          "label '%s': class %d has no rows, but labels go up to %d (expected "
                          "every class 0..%d to occur); pass --task regression for a "
                          "real-valued target",
                          s1, c, k - 1, k - 1);
            rc = FEDC_EINVAL;
            goto out;
        }
    }
    *task = FEDC_TASK_MULTICLASS;
    *n_classes = k;
out:
    free(seen);
    return rc;
}

/* ---- Statistics -------------------------------------------------------------------------- */

/* Columns per pass: the accumulators stay on the stack and the matrix is read row by row. */
#define STATS_BLOCK 64

void fedc_dataset_stats(float *mean, float *std, const fedc_dataset *ds) {
    FEDC_CHECK(mean && std && ds);
    size_t n = (size_t)ds->n_rows, nf = (size_t)ds->n_features;
    for (size_t j0 = 0; j0 < nf; j0 += STATS_BLOCK) {
        size_t w = nf - j0 < STATS_BLOCK ? nf - j0 : STATS_BLOCK;
        double sum[STATS_BLOCK], sq[STATS_BLOCK];
        float lo[STATS_BLOCK], hi[STATS_BLOCK];
        for (size_t j = 0; j < w; j++) {
            sum[j] = 0.0;
            sq[j] = 0.0;
            lo[j] = n ? ds->x[j0 + j] : 0.0f;
            hi[j] = lo[j];
        }
        /* Two passes, mean first, then squared deviations: no cancellation in sum(x^2) - n m^2. */
        for (size_t i = 0; i < n; i++) {
            const float *row = ds->x + i * nf + j0;
            for (size_t j = 0; j < w; j++) {
                sum[j] += (double)row[j];
                lo[j] = row[j] < lo[j] ? row[j] : lo[j];
                hi[j] = row[j] > hi[j] ? row[j] : hi[j];
            }
        }
        double m[STATS_BLOCK];
        for (size_t j = 0; j < w; j++)
            m[j] = n ? sum[j] / (double)n : 0.0;
        for (size_t i = 0; i < n; i++) {
            const float *row = ds->x + i * nf + j0;
            for (size_t j = 0; j < w; j++) {
                double dv = (double)row[j] - m[j];
                sq[j] += dv * dv;
            }
        }
        for (size_t j = 0; j < w; j++) {
            float s = n ? (float)sqrt(sq[j] / (double)n) : 1.0f;
            /* A constant column is detected exactly (min == max), not by a rounded variance. It
             * keeps its exact value as the mean so that standardising gives exactly 0. */
            if (lo[j] == hi[j]) {
                mean[j0 + j] = lo[j];
                std[j0 + j] = 1.0f;
            } else {
                mean[j0 + j] = (float)m[j];
                std[j0 + j] = s > 0.0f && isfinite(s) ? s : 1.0f;
            }
        }
    }
}

void fedc_dataset_standardize(fedc_dataset *ds, const float *mean, const float *std) {
    FEDC_CHECK(ds && mean && std);
    size_t n = (size_t)ds->n_rows, nf = (size_t)ds->n_features;
    for (size_t j = 0; j < nf; j++)
        FEDC_CHECK(std[j] != 0.0f);
    for (size_t i = 0; i < n; i++) {
        float *row = ds->x + i * nf;
        for (size_t j = 0; j < nf; j++)
            row[j] = (row[j] - mean[j]) / std[j];
    }
}

/* ---- Split ------------------------------------------------------------------------------- */

/* Row indices ordered by label, then by index: strata in ascending label order. */
typedef struct keyed_row {
    float y;
    int row;
} keyed_row;

static int cmp_keyed_row(const void *pa, const void *pb) {
    const keyed_row *a = pa, *b = pb;
    if (a->y != b->y)
        return a->y < b->y ? -1 : 1;
    return (a->row > b->row) - (a->row < b->row);
}

fedc_err fedc_dataset_split(fedc_dataset **train, fedc_dataset **val, fedc_dataset **test,
                            const fedc_dataset *ds, fedc_task task, double val_fraction,
                            double test_fraction, uint64_t seed) {
    fedc_err rc = FEDC_OK;
    keyed_row *kr = NULL;
    int *order = NULL, *sel = NULL;
    unsigned char *part = NULL;
    if (train)
        *train = NULL;
    if (val)
        *val = NULL;
    if (test)
        *test = NULL;
    if (!train || !ds || !(val_fraction >= 0.0) || !(test_fraction >= 0.0) ||
        !(val_fraction + test_fraction < 1.0) || (val_fraction > 0.0 && !val) ||
        (test_fraction > 0.0 && !test)) {
        rc = FEDC_EINVAL;
        goto out;
    }
    int n = ds->n_rows;
    size_t alloc = n > 0 ? (size_t)n : 1;
    kr = malloc(alloc * sizeof *kr);
    order = malloc(alloc * sizeof *order);
    sel = malloc(alloc * sizeof *sel);
    part = malloc(alloc);
    if (!kr || !order || !sel || !part) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    int classify = task == FEDC_TASK_BINARY || task == FEDC_TASK_MULTICLASS;
    for (int i = 0; i < n; i++) {
        if (classify && !isfinite(ds->y[i])) {
            rc = FEDC_EINVAL;
            goto out;
        }
        kr[i] = (keyed_row){classify ? ds->y[i] : 0.0f, i};
    }
    if (classify)
        qsort(kr, (size_t)n, sizeof *kr, cmp_keyed_row);
    for (int i = 0; i < n; i++)
        order[i] = kr[i].row;

    /* One stream for all strata, consumed in ascending label order. */
    fedc_rng rng;
    fedc_rng_init(&rng, fedc_rng_key(seed, 0x5350u /* "SP" */, 0, 0));
    for (int s = 0; s < n;) {
        int e = s + 1;
        while (e < n && kr[e].y == kr[s].y)
            e++;
        int n_c = e - s;
        fedc_rng_shuffle(&rng, order + s, n_c);
        int n_val = (int)round(val_fraction * n_c);
        int n_test = (int)round(test_fraction * n_c);
        /* round(a) + round(b) <= n_c whenever a + b < n_c; the clamps only guard that. */
        if (n_val > n_c)
            n_val = n_c;
        if (n_test > n_c - n_val)
            n_test = n_c - n_val;
        for (int i = 0; i < n_c; i++)
            part[order[s + i]] = i < n_val ? 1 : i < n_val + n_test ? 2 : 0;
        s = e;
    }

    /* Gather each part by scanning rows in order, so rows keep their relative order. */
    fedc_dataset **dst[3] = {train, val_fraction > 0.0 ? val : NULL,
                             test_fraction > 0.0 ? test : NULL};
    for (int p = 0; p < 3; p++) {
        if (!dst[p])
            continue;
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (part[i] == p)
                sel[k++] = i;
        }
        if ((rc = fedc_dataset_subset(dst[p], ds, sel, k)))
            goto out;
    }
out:
    if (rc) {
        if (train)
            fedc_dataset_destroy(train);
        if (val)
            fedc_dataset_destroy(val);
        if (test)
            fedc_dataset_destroy(test);
    }
    free(kr);
    free(order);
    free(sel);
    free(part);
    return rc;
}

float fedc_dataset_pos_weight(const fedc_dataset *ds) {
    FEDC_CHECK(ds);
    long pos = 0;
    for (int i = 0; i < ds->n_rows; i++) {
        if (ds->y[i] > 0.5f)
            pos++;
    }
    long neg = ds->n_rows - pos;
    /* Without both classes the ratio is undefined (0 or infinite): no reweighting. */
    return pos && neg ? (float)((double)neg / (double)pos) : 1.0f;
}
