/* The CSV loader's header (data.c): names split, unquoted, trimmed and checked (UTF-8, unique,
 * non-empty), looked up with blanks around a name ignored, and the error messages that quote a
 * cell or list the columns. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fedc/data.h"

#include "data_int.h"

/* How much of the header an error message lists. */
#define LIST_MAX 160

const char *fedc__show(char out[SHOW_MAX + 4], const char *s, size_t n) {
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

/* ---- Names ------------------------------------------------------------------------------ */

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

void fedc__header_release(header *h) {
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

/* Turns the header record into names: blanks trimmed (inside quotes too), every name non-empty,
 * on one line, UTF-8, at most FEDC_CSV_MAX_FIELD bytes and unique. */
fedc_err fedc__header_parse(header *h, const fedc_csv_record *rec, const char *path, fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    char s1[SHOW_MAX + 4];
    int n_cols = rec->n_fields;
    h->names = calloc((size_t)n_cols, sizeof *h->names);
    h->sorted = malloc((size_t)n_cols * sizeof *h->sorted);
    if (!h->names || !h->sorted) {
        fedc_diag_set(d, "%s: out of memory reading the header (%d columns)", path, n_cols);
        rc = FEDC_ENOMEM;
        goto out;
    }
    h->n_cols = n_cols;
    for (int j = 0; j < h->n_cols; j++) {
        const fedc_csv_field *f = &rec->fields[j];
        const char *s = skip_blank(f->s, f->s + f->n), *e = trim_end(s, f->s + f->n);
        if (s == e) {
            fedc_diag_set(d, "%s:1:%d: empty column name (expected a name for every column)", path,
                          j + 1);
            rc = FEDC_EPARSE;
            goto out;
        }
        /* A quoted name may hold a line break; no name in a model file or report should. */
        if (memchr(s, '\n', (size_t)(e - s)) || memchr(s, '\r', (size_t)(e - s))) {
            fedc_diag_set(d,
                          "%s:1:%d: column name '%s' holds a line break (expected a name on one "
                          "line)",
                          path, j + 1, fedc__show(s1, s, (size_t)(e - s)));
            rc = FEDC_EPARSE;
            goto out;
        }
        /* A NUL byte, which would cut the name short (found by tests/fuzz/fuzz_csv), never gets
         * here: the tokenizer refuses it. Names are text: UTF-8 (RFC 3629). */
        size_t bad = utf8_invalid_at(s, (size_t)(e - s));
        if (bad != SIZE_MAX) {
            fedc_diag_set(d,
                          "%s:1:%d: column name: invalid UTF-8 byte 0x%02x at byte %zu of the "
                          "name (after '%s'); expected UTF-8 text",
                          path, j + 1, (unsigned)(unsigned char)s[bad], bad + 1,
                          fedc__show(s1, s, bad));
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
            dup_second + 1, fedc__show(s1, h->names[dup_second], strlen(h->names[dup_second])),
            dup_first + 1, dup_second + 1);
        rc = FEDC_EPARSE;
        goto out;
    }
out:
    return rc;
}

/* Explains why a name is not in the header: the columns it has, and a case-insensitive match. */
void fedc__header_missing(fedc_diag *d, const char *path, const char *what, const char *name,
                          const header *h) {
    char list[LIST_MAX + 32], s1[SHOW_MAX + 4], s2[SHOW_MAX + 4];
    list_columns(list, sizeof list, h->names, h->n_cols);
    for (int j = 0; j < h->n_cols; j++) {
        if (strcasecmp(h->names[j], name) == 0) {
            fedc_diag_set(d, "%s:1: %s '%s' not found in header (did you mean '%s'? columns: %s)",
                          path, what, fedc__show(s1, name, strlen(name)),
                          fedc__show(s2, h->names[j], strlen(h->names[j])), list);
            return;
        }
    }
    fedc_diag_set(d, "%s:1: %s '%s' not found in header (columns: %s)", path, what,
                  fedc__show(s1, name, strlen(name)), list);
}

/* Column of name with blanks around it ignored (header names are trimmed already), or -1. */
int fedc__header_find(const header *h, const char *name) {
    size_t n = strlen(name);
    const char *s = skip_blank(name, name + n), *e = trim_end(s, name + n);
    if (s == name && e == name + n)
        return find_column(h->sorted, h->n_cols, name);
    char *t = malloc((size_t)(e - s) + 1);
    if (!t)
        return -1;
    memcpy(t, s, (size_t)(e - s));
    t[e - s] = '\0';
    int c = find_column(h->sorted, h->n_cols, t);
    free(t);
    return c;
}
