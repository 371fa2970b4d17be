/* The CSV tokenizer (fedc/csv.h): RFC 4180 records out of one buffer.
 *
 * A record is scanned once, byte by byte through a table of the bytes that end an unquoted field
 * (comma, LF, double quote, NUL), and a quoted field with memchr from quote to quote. The buffer
 * keeps a NUL after its last byte, so the scan needs no bounds check: reaching that NUL means
 * "read more" (or the end of the input), any other NUL is a NUL byte in the input. While a record
 * is being read, field positions are kept as offsets from the record's start, because making
 * room for the rest of a record moves it to the front of the buffer (or to a larger one). Only a
 * quoted field holding "" is copied (into a scratch buffer, unescaped); every other field points
 * into the buffer, where the byte after it is a comma, a quote, a line end or the NUL. */
#include "fedc/csv.h"

#include "csv_window.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include <emmintrin.h>
#define FEDC_CSV_SSE2 1
#endif

#define READ_CHUNK ((size_t)1 << 20)

/* A field unescaped into scratch: its pointer is set once the record is whole, since scratch may
 * move while the record is read. */
typedef struct scratch_field {
    int k;
    size_t off;
} scratch_field;

/* A cached mask: the field-ending bytes of buf[base, end) (end 0: nothing cached). */
typedef struct stop_cache {
    size_t base, end;
    uint64_t mask;
} stop_cache;

struct fedc_csv_reader {
    FILE *f; /* NULL for a text reader */
    const char *name;
    char *buf;       /* FILE: owned, cap bytes; text: the caller's */
    size_t cap, len; /* buf[len] is NUL */
    size_t pos;      /* start of the next record */
    int eof;
    int started; /* the byte order mark has been looked for */
    int bom;
    long line; /* line of the next record */
    fedc_csv_limits lim;
    int expect;
    fedc_csv_field *fields; /* of the record being read; s is NULL for a scratch field */
    size_t *offs;           /* fields_cap entries, used while a refill moves the buffer */
    int fields_cap;
    scratch_field *sfix;
    int sfix_n, sfix_cap;
    char *scratch;
    size_t scratch_cap, scratch_len;
    fedc_csv_error err;
    fedc_err err_rc;
    stop_cache stops;
    char delim;              /* the field separator: ',' unless fedc_csv_set_delimiter says */
    unsigned char stop[256]; /* bytes that end an unquoted field: NUL, LF, the quote, delim */
    unsigned char lead[256]; /* bytes a field's fast path leaves alone: the quote, blanks */
};

/* Sets the separator and the table of bytes that end an unquoted field. */
static void set_delim(fedc_csv_reader *r, char delim) {
    memset(r->stop, 0, sizeof r->stop);
    r->stop['\0'] = r->stop['\n'] = r->stop['"'] = 1;
    r->stop[(unsigned char)delim] = 1;
    r->delim = delim;
    /* a quote opens a quoted field, and blanks may stand before one (quote_blank) */
    memset(r->lead, 0, sizeof r->lead);
    r->lead['"'] = r->lead[' '] = 1;
    r->lead['\t'] = delim != '\t';
}

/* A blank that may stand before an opening quote or after a closing one: a space, or a tab
 * unless the tab separates fields. */
static inline int quote_blank(const fedc_csv_reader *r, char c) {
    return c == ' ' || (c == '\t' && r->delim != '\t');
}

#ifdef FEDC_CSV_SSE2
/* Bit k set when p[k] ends an unquoted field, for k < 64: sixteen bytes per comparison. */
static uint64_t stop_mask64(const char *p, char delim) {
    const __m128i comma = _mm_set1_epi8(delim), lf = _mm_set1_epi8('\n'),
                  quote = _mm_set1_epi8('"'), zero = _mm_setzero_si128();
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i e = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, lf)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, zero)));
        m |= (uint64_t)(unsigned)_mm_movemask_epi8(e) << (16 * k);
    }
    return m;
}
#endif

/* The first byte at or after i that ends an unquoted field; b[len] (a NUL) ends the search.
 * With SSE2, one 64-byte mask serves all the short fields inside it; the last 64 bytes before
 * len go byte by byte, so nothing past the NUL is read. */
static inline size_t find_stop(const char *b, size_t len, size_t i, stop_cache *c,
                               const unsigned char *field_stop, char delim) {
#ifdef FEDC_CSV_SSE2
    for (;;) {
        if (i >= c->base && i < c->end) {
            uint64_t m = c->mask >> (i - c->base);
            if (m)
                return i + (size_t)__builtin_ctzll(m);
            i = c->end;
        }
        if (i + 64 > len)
            break;
        c->base = i;
        c->end = i + 64;
        c->mask = stop_mask64(b + i, delim);
    }
#else
    (void)len;
    (void)c;
    (void)delim;
#endif
    while (!field_stop[(unsigned char)b[i]])
        i++;
    return i;
}

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Records an error: d->msg is "name:line:field: what" (":field" left out when field is 0, and
 * the whole position when line is 0). */
static fedc_err fail(fedc_csv_reader *r, fedc_diag *d, fedc_err rc, fedc_csv_problem problem,
                     long line, long field, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static fedc_err fail(fedc_csv_reader *r, fedc_diag *d, fedc_err rc, fedc_csv_problem problem,
                     long line, long field, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err.what, sizeof r->err.what, fmt, ap);
    va_end(ap);
    r->err.problem = problem;
    r->err.line = line;
    r->err.field = field;
    r->err_rc = rc;
    if (line > 0 && field > 0)
        fedc_diag_set(d, "%s:%ld:%ld: %s", r->name, line, field, r->err.what);
    else if (line > 0)
        fedc_diag_set(d, "%s:%ld: %s", r->name, line, r->err.what);
    else
        fedc_diag_set(d, "%s: %s", r->name, r->err.what);
    return rc;
}

static int limits_ok(const fedc_csv_limits *lim) {
    return lim && lim->max_fields >= 1 && lim->max_field_bytes >= 1 &&
           lim->max_record_bytes >= lim->max_field_bytes;
}

static fedc_err open_common(fedc_csv_reader **out, const char *name, const fedc_csv_limits *lim,
                            fedc_diag *d) {
    if (!out || !name || !limits_ok(lim)) {
        fedc_diag_set(d, "fedc_csv_open: invalid arguments (a name and limits of at least 1 are "
                         "required, max_record_bytes >= max_field_bytes)");
        return FEDC_EINVAL;
    }
    *out = calloc(1, sizeof **out);
    if (!*out) {
        fedc_diag_set(d, "%s: out of memory", name);
        return FEDC_ENOMEM;
    }
    (*out)->name = name;
    (*out)->lim = *lim;
    set_delim(*out, ',');
    (*out)->line = 1;
    return FEDC_OK;
}

fedc_err fedc_csv_open_file(fedc_csv_reader **out, FILE *f, const char *name,
                            const fedc_csv_limits *lim, fedc_diag *d) {
    if (out)
        *out = NULL;
    if (!f) {
        fedc_diag_set(d, "fedc_csv_open_file: no FILE given");
        return FEDC_EINVAL;
    }
    fedc_err rc = open_common(out, name, lim, d);
    if (rc)
        return rc;
    fedc_csv_reader *r = *out;
    r->f = f;
    r->cap = READ_CHUNK + 1;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        fedc_csv_close(out);
        fedc_diag_set(d, "%s: out of memory", name);
        return FEDC_ENOMEM;
    }
    r->buf[0] = '\0';
    return FEDC_OK;
}

fedc_err fedc_csv_open_text(fedc_csv_reader **out, const char *text, size_t n, const char *name,
                            const fedc_csv_limits *lim, fedc_diag *d) {
    if (out)
        *out = NULL;
    if (!text || text[n] != '\0') {
        fedc_diag_set(d, "fedc_csv_open_text: the text must be given with a NUL after its end");
        return FEDC_EINVAL;
    }
    fedc_err rc = open_common(out, name, lim, d);
    if (rc)
        return rc;
    /* Never written to: only FILE readers move or fill their buffer. */
    (*out)->buf = (char *)(uintptr_t)text;
    (*out)->len = n;
    (*out)->eof = 1;
    return FEDC_OK;
}

fedc_err fedc_csv_set_limits(fedc_csv_reader *r, const fedc_csv_limits *lim) {
    if (!r || !limits_ok(lim))
        return FEDC_EINVAL;
    r->lim = *lim;
    return FEDC_OK;
}

fedc_err fedc_csv_set_delimiter(fedc_csv_reader *r, char delim) {
    if (!r || !fedc_csv_delimiter_ok(delim))
        return FEDC_EINVAL;
    set_delim(r, delim);
    r->stops.end = 0; /* the cached mask was of the old separator */
    return FEDC_OK;
}

int fedc_csv_delimiter_ok(char c) {
    unsigned char u = (unsigned char)c;
    if (c == '\t')
        return 1;
    /* Printable ASCII punctuation that cannot continue a number nor open a quote. */
    return u > 0x20 && u < 0x7f && !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') &&
           !(c >= 'A' && c <= 'Z') && c != '"' && c != '.' && c != '+' && c != '-' && c != '_';
}

void fedc_csv_expect_fields(fedc_csv_reader *r, int n) {
    if (r)
        r->expect = n > 0 ? n : 0;
}

const fedc_csv_error *fedc_csv_last_error(const fedc_csv_reader *r) {
    return &r->err;
}

int fedc_csv_had_bom(const fedc_csv_reader *r) {
    return r->bom;
}

void fedc_csv_close(fedc_csv_reader **r) {
    if (!r || !*r)
        return;
    if ((*r)->f)
        free((*r)->buf);
    free((*r)->offs);
    free((*r)->sfix);
    free((*r)->fields);
    free((*r)->scratch);
    free(*r);
    *r = NULL;
}

/* State of the record being scanned, as offsets that a refill shifts together. */
typedef struct scan {
    size_t rs; /* record start */
    size_t i;  /* scan position */
    size_t ls; /* start of the current physical line */
    size_t fs; /* start of the current field */
    long nl;   /* line breaks inside the record so far */
    int nf;    /* fields found so far */
} scan;

/* Reads more of a FILE after the scan reached r->len inside a record: the record moves to the
 * front of the buffer, which doubles when less than half a chunk is free. The limits are checked
 * first, so that a record beyond them never makes the buffer grow. Sets r->eof at the end. */
static fedc_err refill(fedc_csv_reader *r, scan *s, fedc_diag *d) {
    size_t have = r->len - s->rs;
    long line = r->line + s->nl;
    size_t nf = (size_t)s->nf;
    size_t lim = nf < r->lim.max_record_bytes / r->lim.max_field_bytes
                     ? (nf + 1) * r->lim.max_field_bytes
                     : r->lim.max_record_bytes;
    if (have > lim && lim < r->lim.max_record_bytes)
        return fail(r, d, FEDC_ERANGE, FEDC_CSV_TOO_LONG, line, 0,
                    "line is longer than %zu bytes in its first %zu fields, with no line break "
                    "yet (the limit is %zu bytes per field; not a CSV file?)",
                    lim, nf + 1, r->lim.max_field_bytes);
    if (have > r->lim.max_record_bytes)
        return fail(r, d, FEDC_ERANGE, FEDC_CSV_TOO_LONG, line, 0,
                    "line is longer than %zu bytes (the limit is %zu bytes per field)",
                    r->lim.max_record_bytes, r->lim.max_field_bytes);
    /* Fields found so far point into the buffer: keep them as offsets across the move. */
    int stored = s->nf < r->fields_cap ? s->nf : r->fields_cap;
    for (int k = 0; k < stored; k++)
        r->offs[k] = r->fields[k].s ? (size_t)(r->fields[k].s - (r->buf + s->rs)) : 0;
    r->stops.end = 0; /* the cached mask is of bytes about to move */
    size_t shift = s->rs;
    if (shift) {
        memmove(r->buf, r->buf + shift, have);
        r->len = have;
        s->rs -= shift;
        s->i -= shift;
        s->ls -= shift;
        s->fs -= shift;
    }
    if (r->cap - 1 - r->len < READ_CHUNK / 2) {
        char *nb = r->cap <= SIZE_MAX / 2 ? realloc(r->buf, r->cap * 2) : NULL;
        if (!nb)
            return fail(r, d, FEDC_ENOMEM, FEDC_CSV_NOMEM, line, 0,
                        "out of memory reading a long line");
        r->buf = nb;
        r->cap *= 2;
    }
    for (int k = 0; k < stored; k++) {
        if (r->fields[k].s)
            r->fields[k].s = r->buf + r->offs[k];
    }
    size_t got = fread(r->buf + r->len, 1, r->cap - 1 - r->len, r->f);
    r->len += got;
    r->buf[r->len] = '\0';
    if (got == 0) {
        if (ferror(r->f))
            return fail(r, d, FEDC_EIO, FEDC_CSV_READ, 0, 0, "cannot read: %s",
                        strerror(errno ? errno : EIO));
        r->eof = 1;
    }
    return FEDC_OK;
}

static fedc_err nul_error(fedc_csv_reader *r, fedc_diag *d, const scan *s, size_t at) {
    return fail(r, d, FEDC_EPARSE, FEDC_CSV_NUL, r->line + s->nl, s->nf + 1,
                "NUL byte at byte %zu of the line: expected text (a binary file, or a sparse one "
                "with unwritten regions?)",
                at - s->ls + 1);
}

/* Makes room for one more field (at most max_fields are kept; beyond them fields are only
 * counted, and the error comes at the record's end with the full count). */
static fedc_err grow_fields(fedc_csv_reader *r, fedc_diag *d, const scan *s) {
    int cap = r->fields_cap ? r->fields_cap * 2 : 64;
    if (cap > r->lim.max_fields)
        cap = r->lim.max_fields;
    size_t *no = realloc(r->offs, (size_t)cap * sizeof *no);
    if (no)
        r->offs = no;
    fedc_csv_field *nf = no ? realloc(r->fields, (size_t)cap * sizeof *nf) : NULL;
    if (!nf)
        return fail(r, d, FEDC_ENOMEM, FEDC_CSV_NOMEM, r->line + s->nl, 0,
                    "out of memory reading a record of %d fields", s->nf + 1);
    r->fields = nf;
    r->fields_cap = cap;
    return FEDC_OK;
}

/* Appends the field [p, p + n): the common case inline, growth out of line. */
static inline fedc_err add_field(fedc_csv_reader *r, fedc_diag *d, scan *s, const char *p, size_t n,
                                 int quoted) {
    if (s->nf >= r->fields_cap) {
        if (s->nf >= r->lim.max_fields) {
            s->nf++;
            return FEDC_OK;
        }
        fedc_err rc = grow_fields(r, d, s);
        if (rc)
            return rc;
    }
    fedc_csv_field *f = &r->fields[s->nf++];
    f->s = p;
    f->n = n;
    f->quoted = quoted;
    return FEDC_OK;
}

/* Copies [from, to) of the buffer into scratch with each "" turned into ", NUL-terminated. */
static fedc_err unescape(fedc_csv_reader *r, fedc_diag *d, const scan *s, size_t from, size_t to,
                         size_t *off) {
    size_t need = r->scratch_len + (to - from) + 1;
    if (need > r->scratch_cap) {
        size_t cap = r->scratch_cap ? r->scratch_cap : 256;
        while (cap < need)
            cap *= 2;
        char *ns = realloc(r->scratch, cap);
        if (!ns)
            return fail(r, d, FEDC_ENOMEM, FEDC_CSV_NOMEM, r->line + s->nl, 0,
                        "out of memory reading a quoted field");
        r->scratch = ns;
        r->scratch_cap = cap;
    }
    *off = r->scratch_len;
    char *o = r->scratch + r->scratch_len;
    for (size_t k = from; k < to; k++) {
        *o++ = r->buf[k];
        if (r->buf[k] == '"')
            k++; /* the second quote of the pair */
    }
    *o++ = '\0';
    r->scratch_len = (size_t)(o - r->scratch);
    return FEDC_OK;
}

fedc_err fedc_csv_next(fedc_csv_reader *r, fedc_csv_record *rec, fedc_diag *d) {
    fedc_err rc;
    if (!r || !rec) {
        fedc_diag_set(d, "fedc_csv_next: invalid arguments");
        return FEDC_EINVAL;
    }
    memset(rec, 0, sizeof *rec);
    if (r->err.problem) {
        /* The reader stopped at its error: say it again. */
        fedc_csv_error e = r->err;
        return fail(r, d, r->err_rc, e.problem, e.line, e.field, "%s", e.what);
    }
    scan s = {r->pos, r->pos, r->pos, r->pos, 0, 0};
    if (r->pos == r->len && !r->eof && (rc = refill(r, &s, d)))
        return rc;
    if (!r->started) {
        r->started = 1;
        if (r->len - s.rs >= 3 && memcmp(r->buf + s.rs, "\xef\xbb\xbf", 3) == 0) {
            /* A UTF-8 byte order mark, as spreadsheet programs write it. */
            r->bom = 1;
            s.rs = s.i = s.fs = r->pos = s.rs + 3;
        }
    }
    if (s.rs == r->len && r->eof)
        return FEDC_OK; /* the end: n_fields 0 */
    r->scratch_len = 0;
    r->sfix_n = 0;
    size_t rec_end = 0, next = 0;
    for (;;) { /* one field per pass */
        int done = 0;
        {
            /* The common case in locals the compiler can keep in registers: unquoted fields
             * that end in a comma or, the record's last, in a line feed, in the buffer already.
             * Anything else (quotes, blanks before a quote, the buffer's end) takes the path
             * below. */
            const char *b = r->buf;
            size_t i = s.i, len = r->len;
            int nf = s.nf, cap = r->fields_cap;
            fedc_csv_field *fl = r->fields;
            stop_cache sc = r->stops;
            const unsigned char *stop = r->stop, *lead = r->lead;
            const char delim = r->delim;
            while (nf < cap) {
                if (lead[(unsigned char)b[i]])
                    break;
                size_t e = find_stop(b, len, i, &sc, stop, delim);
                if (b[e] != delim) {
                    if (b[e] == '\n') {
                        /* the record's end, as the unquoted case below ends it (a CR before
                         * the LF is not the field's) */
                        size_t end = e > i && b[e - 1] == '\r' ? e - 1 : e;
                        fl[nf].s = b + i;
                        fl[nf].n = end - i;
                        fl[nf].quoted = 0;
                        nf++;
                        rec_end = end;
                        next = e + 1;
                        done = 1;
                    }
                    break;
                }
                fl[nf].s = b + i;
                fl[nf].n = e - i;
                fl[nf].quoted = 0;
                nf++;
                i = e + 1;
            }
            r->stops = sc;
            s.i = i;
            s.nf = nf;
        }
        if (done)
            break;
        s.fs = s.i;
        size_t j = s.i;
        while (quote_blank(r, r->buf[j]))
            j++;
        if (j == r->len && !r->eof) {
            if ((rc = refill(r, &s, d)))
                return rc;
            continue; /* look at this field again, with more of it */
        }
        if (r->buf[j] != '"') {
            /* Unquoted: up to a comma, a line end or the end of the input. */
            size_t i = s.i;
            for (;;) {
                const char *b = r->buf;
                i = find_stop(b, r->len, i, &r->stops, r->stop, r->delim);
                if (b[i] != '\0' || i < r->len || r->eof)
                    break;
                s.i = i;
                if ((rc = refill(r, &s, d)))
                    return rc;
                i = s.i;
            }
            s.i = i;
            char c = r->buf[i];
            if (c == '"')
                return fail(r, d, FEDC_EPARSE, FEDC_CSV_QUOTE_IN_FIELD, r->line + s.nl, s.nf + 1,
                            "double quote inside an unquoted field (RFC 4180: a field holding a "
                            "double quote must be quoted, the quote doubled)");
            if (c == '\0' && i < r->len)
                return nul_error(r, d, &s, i);
            size_t end = i;
            int sep = c == r->delim && c != '\0';
            if (!sep && end > s.fs && r->buf[end - 1] == '\r')
                end--; /* CRLF, or a CR at the end of the input */
            if ((rc = add_field(r, d, &s, r->buf + s.fs, end - s.fs, 0)))
                return rc;
            if (sep) {
                s.i = i + 1;
                continue;
            }
            rec_end = end;
            next = c == '\n' ? i + 1 : i;
            break;
        }

        /* Quoted: from quote to quote, "" staying inside. */
        long open_line = r->line + s.nl;
        int open_field = s.nf + 1, doubled = 0;
        size_t i = j + 1, close;
        for (;;) {
            const char *b = r->buf;
            const char *q = memchr(b + i, '"', r->len - i);
            size_t upto = q ? (size_t)(q - b) : r->len;
            const char *z = memchr(b + i, '\0', upto - i);
            for (const char *p = b + i; (p = memchr(p, '\n', (size_t)((z ? z : b + upto) - p)));
                 p++) {
                s.nl++;
                s.ls = (size_t)(p - b) + 1;
            }
            if (z)
                return nul_error(r, d, &s, (size_t)(z - b));
            i = upto;
            if (q && (i + 1 < r->len || r->eof)) {
                if (b[i + 1] != '"') {
                    close = i;
                    i++;
                    break;
                }
                doubled = 1;
                i += 2;
                continue;
            }
            if (!q && r->eof)
                return fail(r, d, FEDC_EPARSE, FEDC_CSV_UNTERMINATED_QUOTE, open_line, open_field,
                            "unmatched double quote: the quoted field opened here is not closed "
                            "before the end of the input");
            s.i = i;
            if ((rc = refill(r, &s, d)))
                return rc;
            i = s.i;
        }
        /* Blanks may follow the closing quote; then a comma or the record's end (one byte more
         * is needed to tell CRLF from a stray CR). */
        for (;;) {
            while (quote_blank(r, r->buf[i]))
                i++;
            if (!(i + 1 >= r->len && !r->eof))
                break;
            size_t k = i - close;
            s.i = close;
            if ((rc = refill(r, &s, d)))
                return rc;
            close = s.i;
            i = close + k;
        }
        char c = r->buf[i];
        if (c == '\r' && r->buf[i + 1] != '\n' && i + 1 < r->len)
            c = 'x'; /* a CR not before LF nor at the end: text */
        if (c != r->delim && c != '\n' && c != '\r' && !(c == '\0' && i == r->len)) {
            if (c == '\0')
                return nul_error(r, d, &s, i);
            return fail(r, d, FEDC_EPARSE, FEDC_CSV_TEXT_AFTER_QUOTE, r->line + s.nl, s.nf + 1,
                        "text after the closing double quote (a quoted field must be followed "
                        "by the separator or the line end; a quote inside it is written \"\")");
        }
        /* The opening quote is the first '"' after fs (a refill may have moved it). */
        size_t open = s.fs;
        while (r->buf[open] != '"')
            open++;
        if (!doubled) {
            if ((rc = add_field(r, d, &s, r->buf + open + 1, close - open - 1, 1)))
                return rc;
        } else {
            size_t off = 0;
            if ((rc = unescape(r, d, &s, open + 1, close, &off)))
                return rc;
            if (s.nf < r->lim.max_fields) {
                if (r->sfix_n == r->sfix_cap) {
                    int cap = r->sfix_cap ? r->sfix_cap * 2 : 16;
                    scratch_field *ns = realloc(r->sfix, (size_t)cap * sizeof *ns);
                    if (!ns)
                        return fail(r, d, FEDC_ENOMEM, FEDC_CSV_NOMEM, r->line + s.nl, 0,
                                    "out of memory reading a quoted field");
                    r->sfix = ns;
                    r->sfix_cap = cap;
                }
                r->sfix[r->sfix_n++] = (scratch_field){s.nf, off};
            }
            if ((rc = add_field(r, d, &s, NULL, r->scratch_len - 1 - off, 1)))
                return rc;
        }
        if (c == r->delim) {
            s.i = i + 1;
            continue;
        }
        rec_end = i;
        next = c == '\n' ? i + 1 : c == '\r' ? (r->buf[i + 1] == '\n' ? i + 2 : i + 1) : i;
        break;
    }

    long line = r->line;
    if (rec_end - s.rs > r->lim.max_record_bytes)
        return fail(r, d, FEDC_ERANGE, FEDC_CSV_TOO_LONG, line, 0,
                    "line is longer than %zu bytes (the limit is %zu bytes per field)",
                    r->lim.max_record_bytes, r->lim.max_field_bytes);
    if (s.nf > r->lim.max_fields) {
        r->err.count = s.nf;
        return fail(r, d, FEDC_ERANGE, FEDC_CSV_TOO_MANY_FIELDS, line, 0,
                    "record has %d fields, more than the limit of %d", s.nf, r->lim.max_fields);
    }
    const char *base = r->buf + s.rs;
    for (int k = 0; k < r->sfix_n; k++)
        r->fields[r->sfix[k].k].s = r->scratch + r->sfix[k].off;
    int blank = 0;
    if (s.nf == 1 && !r->fields[0].quoted) {
        blank = 1;
        for (size_t k = 0; k < r->fields[0].n && blank; k++)
            blank = is_blank(r->fields[0].s[k]);
    }
    if (r->expect && !blank && s.nf != r->expect) {
        r->err.count = s.nf;
        return fail(r, d, FEDC_EPARSE, FEDC_CSV_FIELD_COUNT, line,
                    (s.nf < r->expect ? s.nf : r->expect) + 1,
                    "ragged row: expected %d fields (as in the header), got %d", r->expect, s.nf);
    }
    rec->line = line;
    rec->lines = s.nl + 1;
    rec->raw = base;
    rec->raw_len = rec_end - s.rs;
    rec->blank = blank;
    rec->n_fields = s.nf;
    rec->fields = r->fields;
    r->line += s.nl + 1;
    r->pos = next;
    return FEDC_OK;
}

int fedc_csv_window_get(const fedc_csv_reader *r, fedc_csv_window *w) {
    if (!r->started || r->err.problem)
        return -1;
    w->p = r->buf + r->pos;
    w->end = r->buf + r->len;
    w->eof = r->eof;
    return 0;
}

void fedc_csv_window_take(fedc_csv_reader *r, const char *next) {
    r->pos = (size_t)(next - r->buf);
    r->line++;
}

int fedc_csv_write_field(FILE *f, const char *s) {
    return fedc_csv_write_field_sep(f, s, ',');
}

int fedc_csv_write_field_sep(FILE *f, const char *s, char delim) {
    size_t n = strlen(s);
    int quote = n > 0 && (is_blank(s[0]) || is_blank(s[n - 1]));
    for (size_t k = 0; k < n && !quote; k++)
        quote = s[k] == delim || s[k] == '"' || s[k] == '\n' || s[k] == '\r';
    if (!quote)
        return fwrite(s, 1, n, f) == n ? 0 : -1;
    if (fputc('"', f) == EOF)
        return -1;
    for (size_t k = 0; k < n; k++) {
        if ((s[k] == '"' && fputc('"', f) == EOF) || fputc(s[k], f) == EOF)
            return -1;
    }
    return fputc('"', f) == EOF ? -1 : 0;
}
