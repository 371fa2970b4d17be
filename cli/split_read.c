/* fedc split's input (split_int.h): the CSV file read whole, its header's names, the label and
 * column:NAME fields of every row; the rows themselves are kept as text. */
#include "split_int.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "fedc/csv.h"

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

/* fld without the blanks around it. */
static field trimmed(const fedc_csv_field *fld) {
    const char *e = fld->s + fld->n;
    const char *s = skip_blank(fld->s, e);
    return (field){s, (size_t)(trim_end(s, e) - s)};
}

static int field_is(const field *f, const char *name) {
    size_t n = strlen(name);
    return f->n == n && memcmp(f->s, name, n) == 0;
}

/* Parses a whole field as a finite number in the C locale. Returns 0, or -1. */
static int parse_number(double *v, const char *s, size_t n) {
    char tmp[NUMBER_TEXT_MAX];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    double x = strtod(tmp, &end);
    if (end != tmp + n || !isfinite(x))
        return -1;
    *v = x;
    return 0;
}

/* ---- Reading ----------------------------------------------------------------------------- */

void split_table_release(table *t) {
    free(t->buf);
    free(t->rows);
    free(t->label);
    free(t->group);
    free(t->gbuf);
    free(t->names);
    free(t->hbuf);
    memset(t, 0, sizeof *t);
}

/* Reads the whole file into t->buf. Returns 0, FEDC_EXIT_USAGE (cannot read) or FEDC_EXIT_FAIL. */
static int read_file(const char *cmd, table *t, const char *path) {
    int rc = FEDC_EXIT_USAGE;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error(cmd, "--data: cannot open '%s': %s", path, strerror(errno));
        return rc;
    }
    struct stat st;
    const int have_st = fstat(fileno(f), &st) == 0;
    if (have_st && S_ISDIR(st.st_mode)) {
        cli_error(cmd, "--data: '%s' is a directory (expected a CSV file)", path);
        goto out;
    }
    /* A regular file is read in one go; a pipe grows the buffer as it comes. */
    size_t cap = (size_t)1 << 16, n = 0;
    if (have_st && S_ISREG(st.st_mode) && st.st_size > 0 && (uintmax_t)st.st_size < SIZE_MAX / 2)
        cap = (size_t)st.st_size + 1;
    char *buf = malloc(cap);
    if (!buf)
        goto nomem;
    t->buf = buf;
    for (;;) {
        if (n == cap - 1) {
            if (cap > SIZE_MAX / 2)
                goto nomem;
            char *nb = realloc(t->buf, cap * 2);
            if (!nb)
                goto nomem;
            t->buf = nb;
            cap *= 2;
        }
        size_t got = fread(t->buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                cli_error(cmd, "--data: cannot read '%s': %s", path, strerror(errno ? errno : EIO));
                goto out;
            }
            break;
        }
    }
    t->buf[n] = 0;
    t->len = n;
    rc = 0;
    goto out;
nomem:
    cli_error(cmd, "out of memory reading '%s'", path);
    rc = FEDC_EXIT_FAIL;
out:
    fclose(f);
    return rc;
}

/* Lists the header's column names into out (cap bytes), cut after about LIST_MAX bytes. */
static void list_columns(char *out, size_t cap, const table *t) {
    size_t k = 0;
    out[0] = 0;
    for (int j = 0; j < t->n_cols; j++) {
        char s[SHOW_MAX + 4];
        split_show(s, t->names[j].s, t->names[j].n);
        if (k > LIST_MAX) {
            snprintf(out + k, cap - k, ", ...");
            return;
        }
        int w = snprintf(out + k, cap - k, "%s%s", k ? ", " : "", s);
        if (w < 0 || (size_t)w >= cap - k)
            return;
        k += (size_t)w;
    }
}

/* Finds the column named `name` in the header. Returns its 0-based index, or -1 after printing
 * an error (missing, duplicated). `flag` names the option that gave the name. */
static int find_column(const char *cmd, const char *path, const table *t, const char *flag,
                       const char *name) {
    int found = -1, near = -1;
    char s1[SHOW_MAX + 4], s2[SHOW_MAX + 4], list[LIST_MAX + 64];
    for (int j = 0; j < t->n_cols; j++) {
        const field *f = &t->names[j];
        if (field_is(f, name)) {
            if (found >= 0) {
                cli_error(cmd, "%s:1:%d: %s: column '%s' appears twice (columns %d and %d)", path,
                          j + 1, flag, split_show(s1, name, strlen(name)), found + 1, j + 1);
                return -1;
            }
            found = j;
        } else if (near < 0 && f->n == strlen(name) && strncasecmp(f->s, name, f->n) == 0) {
            near = j;
        }
    }
    if (found >= 0)
        return found;
    list_columns(list, sizeof list, t);
    if (near >= 0)
        cli_error(cmd, "%s:1: %s: column '%s' not found in header (did you mean '%s'? columns: %s)",
                  path, flag, split_show(s1, name, strlen(name)),
                  split_show(s2, t->names[near].s, t->names[near].n), list);
    else
        cli_error(cmd, "%s:1: %s: column '%s' not found in header (columns: %s)", path, flag,
                  split_show(s1, name, strlen(name)), list);
    return -1;
}

/* Reads and checks the input: header, label column (and the column:NAME column when group_name is
 * not NULL), field counts, numeric labels. Returns 0, FEDC_EXIT_USAGE or FEDC_EXIT_FAIL. */
int split_table_load(const char *cmd, table *t, const char *path, const char *label,
                     const char *group_name, char delim, const char *positive) {
    int rc = read_file(cmd, t, path);
    if (rc)
        return rc;
    rc = FEDC_EXIT_USAGE;
    char s1[SHOW_MAX + 4], s2[SHOW_MAX + 4];
    const char *buf = t->buf, *end = buf + t->len;
    if (t->len == 0) {
        cli_error(cmd, "%s: file is empty (expected a header line)", path);
        return rc;
    }
    /* The whole file is in memory: no limit beyond what it holds. */
    const fedc_csv_limits lim = {INT_MAX, SIZE_MAX, SIZE_MAX};
    fedc_csv_reader *r = NULL;
    fedc_csv_record rec;
    fedc_diag d;
    if (fedc_csv_open_text(&r, buf, t->len, path, &lim, &d)) {
        cli_error(cmd, "%s", d.msg);
        return FEDC_EXIT_FAIL;
    }
    if (delim && fedc_csv_set_delimiter(r, delim)) {
        cli_error(cmd, "--delimiter: 0x%02x cannot separate fields",
                  (unsigned)(unsigned char)delim);
        goto out;
    }
    /* Header: copied out by the bytes (a BOM included), its names kept trimmed. */
    if (fedc_csv_next(r, &rec, &d)) {
        cli_error(cmd, "%s (in the header)", d.msg);
        goto out;
    }
    if (rec.n_fields == 0 || rec.blank) {
        cli_error(cmd, "%s:1: header line is blank (expected comma-separated column names)", path);
        goto out;
    }
    const char *hend = rec.raw + rec.raw_len;
    t->header.off = 0;
    t->header.len = (size_t)(hend - buf);
    t->eol = hend[0] == '\r' && hend[1] == '\n' ? "\r\n" : "\n";
    t->n_cols = rec.n_fields;
    size_t hbytes = 0;
    for (int j = 0; j < rec.n_fields; j++)
        hbytes += rec.fields[j].n + 1;
    t->names = malloc((size_t)rec.n_fields * sizeof *t->names);
    t->hbuf = malloc(hbytes);
    if (!t->names || !t->hbuf) {
        cli_error(cmd, "out of memory reading '%s'", path);
        rc = FEDC_EXIT_FAIL;
        goto out;
    }
    for (size_t j = 0, k = 0; j < (size_t)rec.n_fields; j++) {
        field f = trimmed(&rec.fields[j]);
        memcpy(t->hbuf + k, f.s, f.n);
        t->hbuf[k + f.n] = 0;
        t->names[j] = (field){t->hbuf + k, f.n};
        k += f.n + 1;
    }
    t->label_col = find_column(cmd, path, t, "--label", label);
    if (t->label_col < 0)
        goto out;
    t->group_col = -1;
    if (group_name) {
        t->group_col = find_column(cmd, path, t, "--scheme column:NAME", group_name);
        if (t->group_col < 0)
            goto out;
    }

    /* Rows: count the line ends first to allocate once (a record takes one or more lines). */
    size_t max_rows = 1;
    for (const char *q = hend; q < end; q++)
        max_rows += *q == '\n';
    if (max_rows > (size_t)INT32_MAX) {
        cli_error(cmd, "%s: more than %d data rows", path, INT32_MAX);
        goto out;
    }
    t->rows = malloc(max_rows * sizeof *t->rows);
    t->label = malloc(max_rows * sizeof *t->label);
    t->group = group_name ? malloc(max_rows * sizeof *t->group) : NULL;
    if (!t->rows || !t->label || (group_name && !t->group)) {
        cli_error(cmd, "out of memory reading '%s'", path);
        rc = FEDC_EXIT_FAIL;
        goto out;
    }
    fedc_csv_expect_fields(r, t->n_cols);
    long first_blank = 0;
    while (!fedc_csv_next(r, &rec, &d) && rec.n_fields > 0) {
        if (rec.blank) {
            if (!first_blank)
                first_blank = rec.line;
            continue;
        }
        if (first_blank) {
            cli_error(cmd,
                      "%s:%ld:1: ragged row: expected %d fields (as in the header), got an empty "
                      "line (only blank lines at the end of the file are ignored)",
                      path, first_blank, t->n_cols);
            goto out;
        }
        field lf = trimmed(&rec.fields[t->label_col]);
        int i = t->n_rows;
        if (positive && !fedc_is_missing_text(lf.s, lf.n)) {
            size_t pn = strlen(positive);
            t->label[i] = lf.n == pn && memcmp(lf.s, positive, pn) == 0 ? 1.0 : 0.0;
        } else if (parse_number(&t->label[i], lf.s, lf.n)) {
            if (lf.n == 0)
                cli_error(cmd, "%s:%ld:%d: label column '%s': expected a number, got an empty cell",
                          path, rec.line, t->label_col + 1, split_show(s1, label, strlen(label)));
            else
                cli_error(cmd, "%s:%ld:%d: label column '%s': expected a number, got '%s'", path,
                          rec.line, t->label_col + 1, split_show(s1, label, strlen(label)),
                          split_show(s2, lf.s, lf.n));
            goto out;
        }
        t->rows[i].off = (size_t)(rec.raw - buf);
        t->rows[i].len = rec.raw_len;
        if (t->group) {
            field gf = trimmed(&rec.fields[t->group_col]);
            if (t->gbuf_len + gf.n + 1 > t->gbuf_cap) {
                size_t cap = t->gbuf_cap ? t->gbuf_cap : 4096;
                while (cap < t->gbuf_len + gf.n + 1)
                    cap *= 2;
                char *ng = realloc(t->gbuf, cap);
                if (!ng) {
                    cli_error(cmd, "out of memory reading '%s'", path);
                    rc = FEDC_EXIT_FAIL;
                    goto out;
                }
                t->gbuf = ng;
                t->gbuf_cap = cap;
            }
            memcpy(t->gbuf + t->gbuf_len, gf.s, gf.n);
            t->gbuf[t->gbuf_len + gf.n] = 0;
            t->group[i].off = t->gbuf_len;
            t->group[i].len = gf.n;
            t->gbuf_len += gf.n + 1;
        }
        t->n_rows++;
    }
    if (fedc_csv_last_error(r)->problem) {
        cli_error(cmd, "%s", d.msg);
        goto out;
    }
    if (t->n_rows == 0) {
        cli_error(cmd, "%s: no data rows after the header", path);
        goto out;
    }
    rc = 0;
out:
    fedc_csv_close(&r);
    return rc;
}
