/* fedc predict's streaming CSV input (predict.h). The block scan runs on one thread and only
 * looks for line feeds (memchr) unless a record holds a double quote; the fields and numbers of
 * each record are parsed later by whichever thread owns the row. */
#include "predict.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fastnum.h"
#include "fedc/data.h"
#include "fedc/encode.h"

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

fedc_err pred_reader_open(pred_reader *r, const char *path, size_t max_record, fedc_diag *d) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->max_record = max_record;
    r->line = 1;
    r->cap = PRED_CHUNK;
    r->buf = malloc(r->cap + 1);
    if (!r->buf) {
        fedc_diag_set(d, "%s: out of memory", path);
        return FEDC_ENOMEM;
    }
    r->buf[0] = '\0';
    r->f = fopen(path, "rb");
    if (!r->f) {
        fedc_diag_set(d, "%s: cannot open: %s", path, strerror(errno));
        free(r->buf);
        r->buf = NULL;
        return FEDC_EIO;
    }
    return FEDC_OK;
}

fedc_err pred_reader_rewind(pred_reader *r, fedc_diag *d) {
    if (fseek(r->f, 0, SEEK_SET) != 0) {
        fedc_diag_set(d,
                      "%s: cannot read it a second time (%s): --alert-budget needs a file, not a "
                      "pipe",
                      r->path, strerror(errno));
        return FEDC_EIO;
    }
    clearerr(r->f);
    r->len = r->pos = 0;
    r->buf[0] = '\0';
    r->eof = 0;
    r->line = 1;
    r->bom_checked = 0;
    return FEDC_OK;
}

void pred_reader_close(pred_reader *r) {
    if (r->f)
        fclose(r->f);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* Moves the unread bytes to the front and reads until the buffer is full or the file ends. */
static fedc_err refill(pred_reader *r, fedc_diag *d) {
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    while (!r->eof && r->len < r->cap) {
        size_t got = fread(r->buf + r->len, 1, r->cap - r->len, r->f);
        r->len += got;
        if (got == 0) {
            if (ferror(r->f)) {
                fedc_diag_set(d, "%s: cannot read: %s", r->path, strerror(errno));
                return FEDC_EIO;
            }
            r->eof = 1;
        }
    }
    r->buf[r->len] = '\0';
    if (!r->bom_checked && (r->len >= 3 || r->eof)) {
        r->bom_checked = 1;
        if (r->len >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0)
            r->pos = 3;
    }
    return FEDC_OK;
}

/* Finds the end of the record at p in [p, end): the line feed that ends it, scanning fields as
 * fedc/csv.h does (a quote opens a quoted field only at a field's start, after blanks). Returns
 * it, or NULL when the buffer ends first; *lines counts line feeds inside quotes. */
static const char *quoted_record_end(const char *p, const char *end, long *lines) {
    enum { START, PLAIN, QUOTED, AFTER } st = START;
    for (; p < end; p++) {
        char c = *p;
        switch (st) {
        case START:
            if (c == '"')
                st = QUOTED;
            else if (c == '\n')
                return p;
            else if (c != ',' && !is_blank(c))
                st = PLAIN;
            break;
        case PLAIN:
        case AFTER:
            if (c == ',')
                st = START;
            else if (c == '\n')
                return p;
            break;
        case QUOTED:
            if (c == '"') {
                if (p + 1 < end && p[1] == '"')
                    p++;
                else if (p + 1 == end)
                    return NULL; /* "" or a closing quote: the next byte decides */
                else
                    st = AFTER;
            } else if (c == '\n') {
                (*lines)++;
            }
            break;
        }
    }
    return NULL;
}

fedc_err pred_reader_block(pred_reader *r, pred_rec *recs, int max, int *n, fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    *n = 0;
    /* Read on when less than half a buffer is left (moving the rest to the front costs at most
     * half of what was consumed); a record that does not fit makes the loop below read on. */
    if (!r->eof && r->len - r->pos < r->cap / 2 && (rc = refill(r, d)))
        return rc;
    while (*n < max) {
        const char *start = r->buf + r->pos, *end = r->buf + r->len;
        if (start == end && r->eof)
            break;
        long inner = 0;
        const char *nl = memchr(start, '\n', (size_t)(end - start));
        const char *q = memchr(start, '"', (size_t)((nl ? nl : end) - start));
        if (q)
            nl = quoted_record_end(start, end, &inner);
        const char *rec_end = nl;
        if (!nl) {
            if (!r->eof) {
                if (*n > 0)
                    break; /* the block ends before this record; the next call reads on */
                /* Not even one whole record in the buffer: read on, into a larger buffer when
                 * this one is full. */
                if (r->pos > 0 || r->len < r->cap) {
                    if ((rc = refill(r, d)))
                        return rc;
                    continue;
                }
                size_t held = (size_t)(end - start);
                if (held > r->max_record) {
                    fedc_diag_set(d,
                                  "%s:%ld: record longer than %zu bytes (the limit for this many "
                                  "columns)",
                                  r->path, r->line, r->max_record);
                    return FEDC_ERANGE;
                }
                if (r->cap < r->max_record + PRED_CHUNK) {
                    size_t ncap = r->cap * 2;
                    char *nb = realloc(r->buf, ncap + 1);
                    if (!nb) {
                        fedc_diag_set(d, "%s: out of memory", r->path);
                        return FEDC_ENOMEM;
                    }
                    r->buf = nb;
                    r->cap = ncap;
                }
                if ((rc = refill(r, d)))
                    return rc;
                continue;
            }
            rec_end = end; /* the last record, without a line end (or an unterminated quote) */
        }
        const char *body_end = rec_end;
        if (body_end > start && body_end[-1] == '\r')
            body_end--;
        if ((size_t)(body_end - start) > r->max_record) {
            fedc_diag_set(d,
                          "%s:%ld: record longer than %zu bytes (the limit for this many columns)",
                          r->path, r->line, r->max_record);
            return FEDC_ERANGE;
        }
        recs[*n].off = r->pos;
        recs[*n].len = (uint32_t)(body_end - start);
        recs[*n].line = r->line;
        (*n)++;
        r->line += 1 + inner;
        r->pos = (size_t)(rec_end - r->buf) + (rec_end < end ? 1 : 0);
    }
    return FEDC_OK;
}

/* ---- Rows -------------------------------------------------------------------------------- */

static int bad(pred_status *st, int why, int col, const char *s, const char *fs, const char *fe) {
    st->bad = why;
    st->col = col;
    st->fs = (uint32_t)(fs - s);
    st->fe = (uint32_t)(fe - s);
    return -1;
}

/* One cell [p, end) of an encoded source column into x (quoted: the text between the quotes,
 * escaped when it holds ""). Returns 0 or the pred_bad reason. */
static int enc_cell(float *x, const pred_enc *enc, int role, const char *p, const char *end,
                    int escaped) {
    const pred_src *src = &enc->src[role];
    char tmp[FEDC_CSV_MAX_FIELD + 1];
    if (escaped) { /* "" stands for one quote */
        size_t k = 0;
        for (const char *t = p; t < end; t++) {
            if (k == FEDC_CSV_MAX_FIELD)
                return PRED_TOO_LONG;
            tmp[k++] = *t;
            if (*t == '"')
                t++;
        }
        p = tmp;
        end = tmp + k;
    }
    if (fedc_is_missing_text(p, (size_t)(end - p))) {
        if (src->kind == PRED_SRC_CAT)
            return 0; /* a missing category sets no column */
        if (enc->missing == FEDC_MISSING_ERROR)
            return PRED_MISSING;
        x[src->j] = src->impute;
        if (src->j_ind >= 0)
            x[src->j_ind] = 1.0f;
        return 0;
    }
    if (src->kind == PRED_SRC_CAT) {
        x[src->j + fedc_hash_bucket(enc->key, src->buckets, p, (size_t)(end - p))] = 1.0f;
        return 0;
    }
    return escaped || cli_parse_float(&x[src->j], p, end) ? PRED_NOT_NUMBER : 0;
}

int pred_parse_row(float *x, uint32_t *keep, pred_status *st, const char *s, size_t len,
                   const pred_layout *lay) {
    const char *p = s, *e = s + len;
    const char dl = lay->delim ? lay->delim : ',';
    st->bad = PRED_OK;
    if (lay->enc && x)
        memset(x, 0, sizeof(float) * (size_t)lay->nf); /* the one-hot columns start at 0 */
    int blank = 1;
    for (const char *c = s; c < e && blank; c++)
        blank = is_blank(*c);
    if (blank)
        return bad(st, PRED_BLANK, 1, s, s, e);
    for (int c = 0;; c++) {
        if (c == lay->n_cols) {
            /* A comma after the last field: count them all for the message. */
            int count = c;
            for (const char *t = p - 1; t < e; t++)
                count += *t == dl;
            st->count = count;
            return bad(st, PRED_RAGGED, c + 1, s, p, e);
        }
        const int role = lay->role[c];
        const char *fs = p, *fe;
        const char *q = p;
        while (q < e && is_blank(*q))
            q++;
        if (q < e && *q == '"') {
            /* Quoted: up to the lone closing quote; "" stands for one quote. */
            const char *r = q + 1;
            int escaped = 0;
            for (;;) {
                while (r < e && *r != '"' && *r != '\0')
                    r++;
                if (r == e)
                    return bad(st, PRED_UNTERMINATED, c + 1, s, fs, e);
                if (*r == '\0')
                    return bad(st, PRED_NUL, c + 1, s, fs, r);
                if (r + 1 < e && r[1] == '"') {
                    escaped = 1;
                    r += 2;
                    continue;
                }
                break;
            }
            const char *close = r;
            fe = close + 1;
            while (fe < e && is_blank(*fe))
                fe++;
            if (fe < e && *fe != dl)
                return bad(st, PRED_TEXT_AFTER, c + 1, s, fs, fe);
            if (role >= 0 && lay->enc) {
                int why = enc_cell(x, lay->enc, role, q + 1, close, escaped);
                if (why)
                    return bad(st, why, c + 1, s, fs, fe);
            } else if (role >= 0 && (escaped || cli_parse_float(&x[role], q + 1, close)))
                return bad(st, PRED_NOT_NUMBER, c + 1, s, fs, fe);
        } else {
            const char *stop = NULL;
            if (role >= 0 && !lay->enc && (stop = cli_scan_float(&x[role], p, e)) != NULL &&
                (stop == e || *stop == dl)) {
                fe = stop; /* the fast path: a plain number up to the comma */
            } else {
                fe = p;
                while (fe < e && *fe != dl) {
                    if (*fe == '"')
                        return bad(st, PRED_QUOTE_IN_FIELD, c + 1, s, fs, fe);
                    if (*fe == '\0')
                        return bad(st, PRED_NUL, c + 1, s, fs, fe);
                    fe++;
                }
                if (role >= 0 && lay->enc) {
                    int why = enc_cell(x, lay->enc, role, fs, fe, 0);
                    if (why)
                        return bad(st, why, c + 1, s, fs, fe);
                } else if (role >= 0 && cli_parse_float(&x[role], fs, fe))
                    return bad(st, PRED_NOT_NUMBER, c + 1, s, fs, fe);
            }
        }
        if (lay->keep_of[c] >= 0) {
            keep[2 * lay->keep_of[c]] = (uint32_t)(fs - s);
            keep[2 * lay->keep_of[c] + 1] = (uint32_t)(fe - s);
        }
        if (fe == e) {
            if (c + 1 != lay->n_cols) {
                st->count = c + 1;
                return bad(st, PRED_RAGGED, c + 2, s, e, e);
            }
            return 0;
        }
        p = fe + 1; /* past the separator */
    }
}

/* Copies text for a message: at most 40 bytes, control bytes as '?', "..." when cut. */
static void show(char *out, size_t cap, const char *s, size_t n) {
    size_t k = 0, lim = n > 40 ? 40 : n;
    while (k < lim && k + 4 < cap) {
        unsigned char ch = (unsigned char)s[k];
        out[k++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    if (lim < n && k + 4 <= cap) {
        /* Do not end inside a UTF-8 sequence. */
        while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > 0 && (unsigned char)out[k - 1] >= 0xC0)
            k--;
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

void pred_status_message(char *out, size_t cap, const pred_status *st, const char *rec,
                         const pred_layout *lay, char *const *names) {
    char text[64], name[64];
    const char *nm = "";
    if (st->col >= 1 && st->col <= lay->n_cols) {
        show(name, sizeof name, names[st->col - 1], strlen(names[st->col - 1]));
        nm = name;
    }
    const char *fs = rec + st->fs;
    size_t fn = st->fe - st->fs;
    while (fn > 0 && is_blank(*fs)) {
        fs++;
        fn--;
    }
    while (fn > 0 && is_blank(fs[fn - 1]))
        fn--;
    show(text, sizeof text, fs, fn);
    switch ((pred_bad)st->bad) {
    case PRED_BLANK:
        snprintf(out, cap,
                 "ragged row: expected %d fields (as in the header), got an empty line (only "
                 "blank lines at the end of the file are ignored)",
                 lay->n_cols);
        break;
    case PRED_RAGGED:
        snprintf(out, cap, "ragged row: expected %d fields (as in the header), got %d", lay->n_cols,
                 st->count);
        break;
    case PRED_NOT_NUMBER:
        if (fn == 0)
            snprintf(out, cap, "column '%s': expected a number, got an empty cell", nm);
        else
            snprintf(out, cap, "column '%s': expected a finite decimal number, got '%s'", nm, text);
        break;
    case PRED_UNTERMINATED:
        snprintf(out, cap, "column '%s': unterminated quoted field (no closing double quote)", nm);
        break;
    case PRED_TEXT_AFTER:
        snprintf(
            out, cap,
            "column '%s': expected the separator or the end of the line after the closing quote, "
            "got '%s'",
            nm, text);
        break;
    case PRED_QUOTE_IN_FIELD:
        snprintf(out, cap,
                 "column '%s': double quote inside an unquoted field (quote the whole field and "
                 "double the quote)",
                 nm);
        break;
    case PRED_NUL:
        snprintf(out, cap, "column '%s': NUL byte (CSV is text)", nm);
        break;
    case PRED_MISSING:
        snprintf(out, cap,
                 "column '%s': missing value '%s' (the model was trained with --missing error: "
                 "its cells may not be missing)",
                 nm, text);
        break;
    case PRED_TOO_LONG:
        snprintf(out, cap, "column '%s': a cell longer than %d bytes", nm, FEDC_CSV_MAX_FIELD);
        break;
    default:
        snprintf(out, cap, "bad row");
        break;
    }
}

/* ---- Output ------------------------------------------------------------------------------ */

fedc_err pred_out_open(pred_out *o, const char *path, fedc_diag *d) {
    memset(o, 0, sizeof *o);
    o->path = path;
    size_t pl = strlen(path);
    o->tmp = malloc(pl + 16);
    if (!o->tmp) {
        fedc_diag_set(d, "%s: out of memory", path);
        return FEDC_ENOMEM;
    }
    snprintf(o->tmp, pl + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        fedc_diag_set(d, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        return FEDC_EIO;
    }
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0666 & ~um) != 0 || !(o->f = fdopen(fd, "wb"))) {
        fedc_diag_set(d, "%s: cannot set up the temporary file: %s", o->tmp, strerror(errno));
        close(fd);
        unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
        return FEDC_EIO;
    }
    setvbuf(o->f, NULL, _IOFBF, 1 << 20);
    return FEDC_OK;
}

fedc_err pred_out_commit(pred_out *o, fedc_diag *d) {
    fedc_err rc = FEDC_EIO;
    if (fflush(o->f) != 0 || ferror(o->f)) {
        fedc_diag_set(d, "%s: write failed: %s", o->tmp, strerror(errno));
        goto out;
    }
    if (fsync(fileno(o->f)) != 0) {
        fedc_diag_set(d, "%s: fsync failed: %s", o->tmp, strerror(errno));
        goto out;
    }
    int crc = fclose(o->f);
    o->f = NULL;
    if (crc != 0) {
        fedc_diag_set(d, "%s: close failed: %s", o->tmp, strerror(errno));
        goto out;
    }
    if (rename(o->tmp, o->path) != 0) {
        fedc_diag_set(d, "%s: cannot rename the temporary file into place: %s", o->path,
                      strerror(errno));
        goto out;
    }
    free(o->tmp);
    o->tmp = NULL;
    /* Make the rename itself durable. */
    size_t pl = strlen(o->path);
    char *dir = malloc(pl + 2);
    if (dir) {
        memcpy(dir, o->path, pl + 1);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[slash == dir ? 1 : 0] = '\0';
        else
            strcpy(dir, ".");
        int dfd = open(dir, O_RDONLY);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    rc = FEDC_OK;
out:
    if (rc)
        pred_out_abort(o);
    return rc;
}

void pred_out_abort(pred_out *o) {
    if (o->f)
        fclose(o->f);
    o->f = NULL;
    if (o->tmp) {
        unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
    }
}

void pred_write_quoted(FILE *f, const char *s, size_t n) {
    putc('"', f);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"')
            putc('"', f);
        putc(c == '\0' ? '?' : c, f);
    }
    putc('"', f);
}
