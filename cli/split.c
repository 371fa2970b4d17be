/* fedc split as a library: reads a CSV file as text, assigns every data row to one shard and
 * writes each shard as a CSV file with the input's header line.
 *
 * Rows are never parsed into numbers and printed back: each data line is copied byte for byte,
 * so values keep every digit they had. Only the header, the label field and the column:NAME field
 * of each row are looked at, and every row must have as many fields as the header. Line ends
 * follow the header line (CRLF if it ends in "\r\n", else LF) for every line written, the last one
 * included; a file with mixed line ends is thus normalised to its header's. Rows keep their input
 * order within a shard. Randomness comes from the counter-based generator of core/nn, seeded by the
 * caller, so the same seed and input give the same files.
 *
 * The Dirichlet scheme is the label-skew partition of Yurochkin et al., "Bayesian nonparametric
 * federated learning of neural networks" (ICML 2019), as benchmarked by Li, Diao, Chen & He,
 * "Federated learning on non-IID data silos: an experimental study" (ICDE 2022): for each class
 * c, shares p_c ~ Dir(alpha, ..., alpha) over the N clients, and client k gets round(p_ck * n_c)
 * of that class's rows. Hsu, Qi & Brown, "Measuring the effects of non-identical data distribution
 * for federated visual classification" (arXiv:1909.06335, 2019) draw per-client class mixtures
 * from Dir(alpha * prior) instead; alpha means the same in both (-> 0: each client holds few
 * classes; -> infinity: every client matches the whole). Gamma variates, normalised to give the
 * Dirichlet draw, come from Marsaglia & Tsang, "A simple method for generating gamma variables",
 * ACM TOMS 26(3), 2000. Draws are repeated (a bounded number of times) until every client has a
 * minimum number of rows (1 unless asked for more), as NIID-Bench does (with 10).
 *
 * Records are read by the CSV tokenizer of core (fedc/csv.h, RFC 4180), so a quoted field may hold
 * the separator (a comma unless --delimiter says), doubled quotes and line breaks; a record
 * spanning lines is copied whole, so shards keep the input's separator. A text label (--positive)
 * is read as 1 for the positive value and 0 for other text. Deliberately left out: validating
 * columns other than the label (the files are copied, not loaded). */
#include "split.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli.h"
#include "fedc/csv.h"
#include "fedc/modelfile.h"
#include "fedc/rng.h"

/* Largest Dirichlet concentration accepted (beyond it every shard is iid anyway), and the
 * smallest one computed with (smaller ones give the same partitions). */
#define ALPHA_MAX 1e6
#define ALPHA_TINY 1e-300
/* Dirichlet redraws: at most this many, and at most about this many Gamma draws in all. */
#define DIRICHLET_MAX_TRIES 100000
#define DIRICHLET_MIN_TRIES 100
#define DIRICHLET_DRAW_BUDGET 20000000.0
/* Default Dirichlet floor: no client is left without rows. A larger default (NIID-Bench uses 10)
 * makes common set-ups such as 1000 clients at alpha 0.5 unreachable: the chance that every one
 * of N clients clears a floor falls exponentially with N. */
#define DEFAULT_MIN_ROWS 1
/* How much of a value an error message shows, and how long a label cell may be. */
#define SHOW_MAX 40
#define NUMBER_TEXT_MAX 128
/* How much of the header a "column not found" message lists. */
#define LIST_MAX 160
/* Longest column name and value kept in a column:NAME file name (bytes). */
#define NAME_PART_MAX 64
/* Classes listed on one summary line. */
#define SUMMARY_CLASSES 20
/* Stream identifier of every split draw ("SPLT"), then the scheme and the stream. */
#define RNG_PURPOSE 0x53504c54u

typedef enum scheme_kind {
    SCHEME_IID = 1,
    SCHEME_STRATIFIED = 2,
    SCHEME_DIRICHLET = 3,
    SCHEME_COLUMN = 4,
} scheme_kind;

typedef struct scheme {
    scheme_kind kind;
    double alpha;       /* dirichlet */
    const char *column; /* column:NAME, borrowed from the option string */
} scheme;

/* A byte range of the file buffer. */
/* A header name or a cell: text with surrounding blanks removed (inside quotes too, as the CSV
 * loader does). */
typedef struct field {
    const char *s;
    size_t n;
} field;

typedef struct span {
    size_t off;
    size_t len;
} span;

/* The input file and what was read from it. */
typedef struct table {
    char *buf; /* the whole file, NUL-terminated; owned */
    size_t len;
    span header;     /* the header line as in the file (a BOM included), without its line end */
    const char *eol; /* "\n" or "\r\n", after the header line */
    int n_cols;
    int label_col; /* 0-based */
    int group_col; /* 0-based column of column:NAME, else -1 */
    int n_rows;
    span *rows;    /* (n_rows) data lines without their line ends; owned */
    double *label; /* (n_rows); owned */
    span *group;   /* (n_rows) column:NAME value in gbuf, blanks and quotes removed, or NULL */
    char *gbuf;    /* the column:NAME values one after the other (a quoted value holding "" is
                      unescaped, so the values cannot point into buf); owned */
    size_t gbuf_len, gbuf_cap;
    field *names; /* (n_cols) the header's names, trimmed, in hbuf */
    char *hbuf;   /* owned */
} table;

/* The distinct label values when they are class labels. */
typedef struct classes {
    int n;          /* number of classes; 0 when the label is not a class label */
    double *value;  /* (n) ascending; owned */
    int *of_row;    /* (n_rows) class index of each row; owned */
    int binary;     /* every value is 0 or 1 */
    int first_frac; /* row of the first non-integer label, -1 if none */
    int distinct;   /* number of distinct values (also when above SPLIT_MAX_CLASSES) */
} classes;

/* ---- Small helpers ----------------------------------------------------------------------- */

/* An element count for an allocation: n >= 0 by construction (row, shard and class counts). */
static size_t count_of(int n) {
    assert(n >= 0);
    return (size_t)(unsigned)n;
}

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

/* Copies [s, s + n) into out (SHOW_MAX + 4 bytes) for a message: control bytes as '?', "..."
 * when cut (never inside a UTF-8 sequence). */
static const char *show(char *out, const char *s, size_t n) {
    size_t k = n;
    if (k > SHOW_MAX) {
        k = SHOW_MAX;
        while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
            k--;
    }
    for (size_t i = 0; i < k; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (k < n) {
        memcpy(out + k, "...", 4);
    } else {
        out[k] = 0;
    }
    return out;
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

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Joins dir (trailing slashes dropped) and name. Returns a new string, or NULL (out of memory). */
static char *join_path(const char *dir, const char *name) {
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    int slash = !(dl == 1 && dir[0] == '/');
    size_t nl = strlen(name);
    char *p = malloc(dl + (size_t)slash + nl + 1);
    if (!p)
        return NULL;
    memcpy(p, dir, dl);
    if (slash)
        p[dl] = '/';
    memcpy(p + dl + (size_t)slash, name, nl + 1);
    return p;
}

/* ---- Options ----------------------------------------------------------------------------- */

static int parse_scheme(const char *cmd, scheme *sc, const char *s) {
    memset(sc, 0, sizeof *sc);
    if (!s || strcmp(s, "iid") == 0) {
        sc->kind = SCHEME_IID;
        return 0;
    }
    if (strcmp(s, "stratified") == 0) {
        sc->kind = SCHEME_STRATIFIED;
        return 0;
    }
    if (strncmp(s, "dirichlet", 9) == 0 && (s[9] == ':' || s[9] == 0)) {
        double a = 0.0;
        char *end = NULL;
        if (s[9] == ':' && s[10] != 0) {
            errno = 0;
            a = strtod(s + 10, &end);
        }
        if (!end || *end || !isfinite(a) || !(a > 0.0) || a > ALPHA_MAX) {
            cli_error(cmd,
                      "--scheme: expected dirichlet:ALPHA with ALPHA a number in (0, %g] "
                      "(e.g. dirichlet:0.5), got '%s'",
                      ALPHA_MAX, s);
            return -1;
        }
        sc->kind = SCHEME_DIRICHLET;
        sc->alpha = a;
        return 0;
    }
    if (strncmp(s, "column:", 7) == 0) {
        if (s[7] == 0) {
            cli_error(cmd, "--scheme: expected column:NAME with a column name, got '%s'", s);
            return -1;
        }
        sc->kind = SCHEME_COLUMN;
        sc->column = s + 7;
        return 0;
    }
    cli_error(cmd, "--scheme: expected iid, stratified, dirichlet:ALPHA or column:NAME, got '%s'",
              s);
    return -1;
}

/* Checks the options that do not need the data. Returns 0 or FEDC_EXIT_USAGE. */
static int check_opts(const char *cmd, const split_opts *o, const scheme *sc) {
    const char *missing = !o->data      ? "--data"
                          : !o->label   ? "--label"
                          : !o->out_dir ? "--out"
                                        : NULL;
    if (missing) {
        cli_error(cmd, "%s is required (see fedc %s --help)", missing, cmd);
        return FEDC_EXIT_USAGE;
    }
    if (!o->out_dir[0]) {
        cli_error(cmd, "--out: expected a directory, got ''");
        return FEDC_EXIT_USAGE;
    }
    if (sc->kind == SCHEME_COLUMN) {
        if (o->clients != 0) {
            cli_error(cmd,
                      "--clients: not used with --scheme column:NAME (it writes one file per "
                      "value of the column), got '%d'",
                      o->clients);
            return FEDC_EXIT_USAGE;
        }
    } else if (o->clients == 0) {
        cli_error(cmd, "--clients is required with --scheme %s (see fedc %s --help)",
                  o->scheme ? o->scheme : "iid", cmd);
        return FEDC_EXIT_USAGE;
    } else if (o->clients < SPLIT_MIN_CLIENTS || o->clients > SPLIT_MAX_CLIENTS) {
        cli_error(cmd, "--clients: expected an integer in %d..%d, got '%d'", SPLIT_MIN_CLIENTS,
                  SPLIT_MAX_CLIENTS, o->clients);
        return FEDC_EXIT_USAGE;
    }
    if (o->min_rows < 0) {
        cli_error(cmd, "--min-rows: expected a positive integer, got '%d'", o->min_rows);
        return FEDC_EXIT_USAGE;
    }
    if (o->min_rows > 0 && sc->kind != SCHEME_DIRICHLET) {
        cli_error(cmd, "--min-rows: only used with --scheme dirichlet:ALPHA (got --scheme %s)",
                  o->scheme ? o->scheme : "iid");
        return FEDC_EXIT_USAGE;
    }
    return 0;
}

/* ---- Reading ----------------------------------------------------------------------------- */

static void table_release(table *t) {
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
        show(s, t->names[j].s, t->names[j].n);
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
                          j + 1, flag, show(s1, name, strlen(name)), found + 1, j + 1);
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
                  path, flag, show(s1, name, strlen(name)),
                  show(s2, t->names[near].s, t->names[near].n), list);
    else
        cli_error(cmd, "%s:1: %s: column '%s' not found in header (columns: %s)", path, flag,
                  show(s1, name, strlen(name)), list);
    return -1;
}

/* Reads and checks the input: header, label column (and the column:NAME column when group_name is
 * not NULL), field counts, numeric labels. Returns 0, FEDC_EXIT_USAGE or FEDC_EXIT_FAIL. */
static int table_load(const char *cmd, table *t, const char *path, const char *label,
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
                          path, rec.line, t->label_col + 1, show(s1, label, strlen(label)));
            else
                cli_error(cmd, "%s:%ld:%d: label column '%s': expected a number, got '%s'", path,
                          rec.line, t->label_col + 1, show(s1, label, strlen(label)),
                          show(s2, lf.s, lf.n));
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

/* ---- Classes ----------------------------------------------------------------------------- */

static void classes_release(classes *cl) {
    free(cl->value);
    free(cl->of_row);
    memset(cl, 0, sizeof *cl);
}

/* Finds the distinct label values. They are classes when all are integers and there are at most
 * SPLIT_MAX_CLASSES of them; otherwise cl->n = 0. Returns 0, or -1 when out of memory. */
static int classes_find(classes *cl, const table *t) {
    const int n = t->n_rows;
    memset(cl, 0, sizeof *cl);
    cl->first_frac = -1;
    if (n <= 0) /* table_load refuses a file without rows */
        return 0;
    double *v = malloc(count_of(n) * sizeof *v);
    if (!v)
        return -1;
    memcpy(v, t->label, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || v[i] != v[k - 1])
            v[k++] = v[i];
    }
    cl->distinct = k;
    for (int i = 0; i < n && cl->first_frac < 0; i++) {
        double y = t->label[i];
        if (y != floor(y) || fabs(y) > 9007199254740992.0)
            cl->first_frac = i;
    }
    if (cl->first_frac >= 0 || k > SPLIT_MAX_CLASSES) {
        free(v);
        return 0;
    }
    cl->of_row = malloc(count_of(n) * sizeof *cl->of_row);
    if (!cl->of_row) {
        free(v);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const double *hit = bsearch(&t->label[i], v, (size_t)k, sizeof *v, cmp_double);
        cl->of_row[i] = (int)(hit - v);
    }
    cl->value = v;
    cl->n = k;
    cl->binary = k <= 2;
    for (int c = 0; c < k; c++)
        cl->binary &= v[c] == 0.0 || v[c] == 1.0;
    return 0;
}

/* The rows of each class in input order: rows of class c are members[start[c] .. start[c + 1]).
 * start has cl->n + 1 entries. Returns 0, or -1 when out of memory. */
static int class_members(int **members, int **start, const classes *cl, int n_rows) {
    *members = malloc(count_of(n_rows) * sizeof **members);
    *start = calloc(count_of(cl->n) + 1, sizeof **start);
    int *fill = calloc(count_of(cl->n) + 1, sizeof *fill);
    if (!*members || !*start || !fill) {
        free(fill);
        return -1;
    }
    for (int i = 0; i < n_rows; i++)
        (*start)[cl->of_row[i] + 1]++;
    for (int c = 0; c < cl->n; c++)
        (*start)[c + 1] += (*start)[c];
    memcpy(fill, *start, (size_t)cl->n * sizeof *fill);
    for (int i = 0; i < n_rows; i++)
        (*members)[fill[cl->of_row[i]]++] = i;
    free(fill);
    return 0;
}

/* ---- Schemes ----------------------------------------------------------------------------- */

static uint64_t stream_key(uint64_t seed, scheme_kind kind, uint64_t stream) {
    return fedc_rng_key(seed, RNG_PURPOSE, (uint64_t)kind, stream);
}

/* iid: a seeded shuffle, then consecutive runs of n / N rows (the first n mod N shards one
 * more). Returns 0, or -1 when out of memory. */
static int split_iid(int *shard_of, int n_rows, int n_shards, uint64_t seed) {
    int *idx = malloc(count_of(n_rows) * sizeof *idx);
    if (!idx)
        return -1;
    for (int i = 0; i < n_rows; i++)
        idx[i] = i;
    fedc_rng r;
    fedc_rng_init(&r, stream_key(seed, SCHEME_IID, 0));
    fedc_rng_shuffle(&r, idx, n_rows);
    const int q = n_rows / n_shards, rem = n_rows % n_shards;
    for (int k = 0, pos = 0; k < n_shards; k++) {
        for (int j = 0; j < q + (k < rem); j++)
            shard_of[idx[pos++]] = k;
    }
    free(idx);
    return 0;
}

/* stratified: the rows of each class, shuffled, one class after another, are dealt round-robin
 * (position j goes to shard j mod N). Shard k then holds floor or ceil(n_c / N) rows of every
 * class c, and shard sizes differ by at most 1. Returns 0, or -1 when out of memory. */
static int split_stratified(int *shard_of, const classes *cl, int n_rows, int n_shards,
                            uint64_t seed) {
    int *members = NULL, *start = NULL, rc = -1;
    if (class_members(&members, &start, cl, n_rows))
        goto out;
    fedc_rng r;
    fedc_rng_init(&r, stream_key(seed, SCHEME_STRATIFIED, 0));
    for (int c = 0; c < cl->n; c++)
        fedc_rng_shuffle(&r, members + start[c], start[c + 1] - start[c]);
    for (int j = 0; j < n_rows; j++)
        shard_of[members[j]] = j % n_shards;
    rc = 0;
out:
    free(members);
    free(start);
    return rc;
}

/* Uniform in (0, 1), never 0 or 1: 53 random bits, offset by half a step. */
static double uniform_open(fedc_rng *r) {
    return ((double)(fedc_rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Standard normal, Box-Muller in double (the second value of the pair is not used). */
static double normal(fedc_rng *r) {
    double u1 = uniform_open(r), u2 = uniform_open(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* log X for X ~ Gamma(a, 1), a > 0 (Marsaglia & Tsang 2000): with d = a - 1/3, c = 1/sqrt(9d),
 * x ~ N(0, 1) and v = (1 + cx)^3 > 0, accept d*v when log U < x^2/2 + d - dv + d log v (the
 * squeeze U < 1 - 0.0331 x^4 first). For a < 1, Gamma(a) = Gamma(a + 1) * U^(1/a), kept in logs
 * because U^(1/a) underflows for small a. */
static double log_gamma_draw(fedc_rng *r, double a) {
    double boost = 0.0;
    if (a < 1.0) {
        boost = log(uniform_open(r)) / a;
        a += 1.0;
    }
    const double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        const double u = uniform_open(r), x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2 || log(u) < 0.5 * x2 + d * (1.0 - v + log(v)))
            return log(d * v) + boost;
    }
}

/* Draws p ~ Dir(alpha, ..., alpha) over n_shards clients and cuts n_c rows by it: counts[k] =
 * round(n_c * (p_0 + ... + p_k)) - round(n_c * (p_0 + ... + p_{k-1})). lw is scratch (n_shards). */
static void dirichlet_counts(int *counts, double *lw, fedc_rng *r, double alpha, int n_c,
                             int n_shards) {
    /* Below ALPHA_TINY, log(U) / alpha could overflow to -inf; at ALPHA_TINY it cannot (|log U| is
     * within [2^-54, 38]), and the draw is already the limit: one client takes the whole class. */
    const double a = alpha < ALPHA_TINY ? ALPHA_TINY : alpha;
    double m = -DBL_MAX;
    for (int k = 0; k < n_shards; k++) {
        lw[k] = log_gamma_draw(r, a);
        if (lw[k] > m)
            m = lw[k];
    }
    double sum = 0.0;
    for (int k = 0; k < n_shards; k++) {
        lw[k] = exp(lw[k] - m); /* the largest share becomes 1: no overflow, some nonzero */
        sum += lw[k];
    }
    double cum = 0.0;
    int prev = 0;
    for (int k = 0; k < n_shards; k++) {
        cum += lw[k];
        int cut = k == n_shards - 1 ? n_c : (int)llround(cum / sum * n_c);
        if (cut < prev)
            cut = prev;
        if (cut > n_c)
            cut = n_c;
        counts[k] = cut - prev;
        prev = cut;
    }
}

/* dirichlet: per class, shares over the clients from Dir(alpha); the whole draw is repeated until
 * every client has at least min_rows rows. Then each class's rows are shuffled and cut in runs of
 * the drawn counts. Returns 0, FEDC_EXIT_USAGE (no draw met the floor) or FEDC_EXIT_FAIL. */
static int split_dirichlet(const char *cmd, int *shard_of, const classes *cl, int n_rows,
                           int n_shards, uint64_t seed, double alpha, int min_rows,
                           const char *scheme_text) {
    int rc = FEDC_EXIT_FAIL;
    int *members = NULL, *start = NULL, *counts = NULL;
    long *size = NULL;
    double *lw = NULL;
    if (class_members(&members, &start, cl, n_rows))
        goto nomem;
    counts = malloc(count_of(cl->n) * count_of(n_shards) * sizeof *counts);
    size = malloc(count_of(n_shards) * sizeof *size);
    lw = malloc(count_of(n_shards) * sizeof *lw);
    if (!counts || !size || !lw)
        goto nomem;
    double budget = DIRICHLET_DRAW_BUDGET / ((double)cl->n * n_shards);
    long max_tries = budget > DIRICHLET_MAX_TRIES   ? DIRICHLET_MAX_TRIES
                     : budget < DIRICHLET_MIN_TRIES ? DIRICHLET_MIN_TRIES
                                                    : (long)budget;
    fedc_rng r;
    fedc_rng_init(&r, stream_key(seed, SCHEME_DIRICHLET, 0));
    long tries = 0;
    int ok = 0, smallest = 0;
    while (!ok && tries < max_tries) {
        tries++;
        memset(size, 0, (size_t)n_shards * sizeof *size);
        for (int c = 0; c < cl->n; c++) {
            int *cc = counts + (size_t)c * n_shards;
            dirichlet_counts(cc, lw, &r, alpha, start[c + 1] - start[c], n_shards);
            for (int k = 0; k < n_shards; k++)
                size[k] += cc[k];
        }
        long lo = size[0];
        for (int k = 1; k < n_shards; k++)
            lo = size[k] < lo ? size[k] : lo;
        ok = lo >= min_rows;
        smallest = (int)lo > smallest ? (int)lo : smallest;
    }
    if (!ok) {
        cli_error(cmd,
                  "--scheme %s: no draw in %ld gave every client at least %d row%s (the best gave "
                  "the smallest client %d); use a larger ALPHA or fewer --clients%s",
                  scheme_text, tries, min_rows, min_rows == 1 ? "" : "s", smallest,
                  min_rows > 1 ? ", or a smaller --min-rows" : "");
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    fedc_rng sr;
    fedc_rng_init(&sr, stream_key(seed, SCHEME_DIRICHLET, 1));
    for (int c = 0; c < cl->n; c++) {
        int pos = start[c];
        fedc_rng_shuffle(&sr, members + pos, start[c + 1] - pos);
        for (int k = 0; k < n_shards; k++) {
            for (int j = 0; j < counts[(size_t)c * n_shards + k]; j++)
                shard_of[members[pos++]] = k;
        }
        assert(pos == start[c + 1]);
    }
    rc = 0;
    goto out;
nomem:
    cli_error(cmd, "out of memory");
out:
    free(members);
    free(start);
    free(counts);
    free(size);
    free(lw);
    return rc;
}

/* Appends a file-name-safe copy of [s, s + n) to out (at most NAME_PART_MAX bytes): letters,
 * digits, '.', '-' and '_' are kept, every other byte becomes '_'; an empty value gives "_". */
static size_t sanitize(char *out, const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n && k < NAME_PART_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '-' || ch == '_';
        out[k++] = ok ? (char)ch : '_';
    }
    if (k == 0)
        out[k++] = '_';
    out[k] = 0;
    return k;
}

/* A row's column:NAME value, for sorting. */
typedef struct group_key {
    const char *s;
    size_t n;
    int row;
} group_key;

static int cmp_group_key(const void *a, const void *b) {
    const group_key *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, m);
    if (c)
        return c;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* column:NAME: one shard per value (values compared as text, blanks and one pair of quotes
 * removed), in byte order of the values; values held by fewer than SPLIT_RARE_PERCENT % of the
 * rows go to one last shard, other.csv. File names are NAME=VALUE.csv, sanitised, with "-2",
 * "-3", ... added when two values would give the same name (compared ignoring case). Sets
 * *names (NULL-terminated, caller frees with cli_free_list) and *n_shards. Returns 0,
 * FEDC_EXIT_USAGE (a single file would result) or FEDC_EXIT_FAIL. */
static int split_column(const char *cmd, int *shard_of, char ***names, int *n_shards,
                        const table *t, const char *column, const char *path) {
    const int n = t->n_rows;
    int rc = FEDC_EXIT_FAIL, n_groups = 0, n_common = 0, n_rare_rows = 0;
    char **list = NULL;
    group_key *keys = malloc(count_of(n) * sizeof *keys);
    if (!keys)
        goto nomem;
    for (int i = 0; i < n; i++) {
        keys[i].s = t->gbuf + t->group[i].off;
        keys[i].n = t->group[i].len;
        keys[i].row = i;
    }
    qsort(keys, (size_t)n, sizeof *keys, cmp_group_key);
    /* First pass: count the common values (at most 100 / SPLIT_RARE_PERCENT of them). */
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && keys[j].n == keys[i].n && memcmp(keys[j].s, keys[i].s, keys[i].n) == 0)
            j++;
        n_groups++;
        if ((long)(j - i) * 100 >= (long)SPLIT_RARE_PERCENT * n)
            n_common++;
        else
            n_rare_rows += j - i;
        i = j;
    }
    const int total = n_common + (n_rare_rows > 0);
    if (total < 2) {
        char s1[SHOW_MAX + 4];
        if (n_groups == 1)
            cli_error(cmd,
                      "--scheme column:%s: every row of %s has the same value in this column: "
                      "nothing to split",
                      show(s1, column, strlen(column)), path);
        else
            cli_error(cmd,
                      "--scheme column:%s: each of the %d values of this column in %s is held by "
                      "under %d%% of the rows, so all would merge into other.csv: nothing to "
                      "split (is it an ID column?)",
                      show(s1, column, strlen(column)), n_groups, path, SPLIT_RARE_PERCENT);
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    list = calloc(count_of(total) + 1, sizeof *list);
    if (!list)
        goto nomem;
    char col_part[NAME_PART_MAX + 1];
    size_t col_len = sanitize(col_part, column, strlen(column));
    /* Second pass: name the common values, assign rows. */
    int g = 0;
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && keys[j].n == keys[i].n && memcmp(keys[j].s, keys[i].s, keys[i].n) == 0)
            j++;
        int shard = total - 1;
        if ((long)(j - i) * 100 >= (long)SPLIT_RARE_PERCENT * n) {
            char val[NAME_PART_MAX + 1];
            size_t vl = sanitize(val, keys[i].s, keys[i].n);
            size_t cap = col_len + vl + 32;
            char *name = malloc(cap);
            if (!name)
                goto nomem;
            snprintf(name, cap, "%s=%s.csv", col_part, val);
            for (int suffix = 2;; suffix++) {
                int clash = 0;
                for (int e = 0; e < g && !clash; e++)
                    clash = strcasecmp(list[e], name) == 0;
                if (!clash)
                    break;
                snprintf(name, cap, "%s=%s-%d.csv", col_part, val, suffix);
            }
            list[g] = name;
            shard = g++;
        }
        for (int k = i; k < j; k++)
            shard_of[keys[k].row] = shard;
        i = j;
    }
    if (n_rare_rows > 0) {
        list[g] = strdup("other.csv");
        if (!list[g])
            goto nomem;
    }
    *names = list;
    list = NULL;
    *n_shards = total;
    rc = 0;
    goto out;
nomem:
    cli_error(cmd, "out of memory");
out:
    cli_free_list(list);
    free(keys);
    return rc;
}

/* client-1.csv .. client-N.csv, zero-padded to the width of N when N >= 10. */
static int client_names(const char *cmd, char ***names, int n_shards) {
    char **list = calloc(count_of(n_shards) + 1, sizeof *list);
    if (!list)
        goto nomem;
    int width = 1;
    if (n_shards >= 10)
        width = snprintf(NULL, 0, "%d", n_shards);
    for (int k = 0; k < n_shards; k++) {
        char name[64];
        snprintf(name, sizeof name, "client-%0*d.csv", width, k + 1);
        list[k] = strdup(name);
        if (!list[k])
            goto nomem;
    }
    *names = list;
    return 0;
nomem:
    cli_free_list(list);
    cli_error(cmd, "out of memory");
    return FEDC_EXIT_FAIL;
}

/* ---- Output directory -------------------------------------------------------------------- */

/* Names split writes: client-<digits>.csv, other.csv, and <column>=<value>.csv. */
static int is_shard_name(const char *name) {
    size_t n = strlen(name);
    if (n < 5 || strcmp(name + n - 4, ".csv") != 0)
        return 0;
    if (strcmp(name, "other.csv") == 0 || memchr(name, '=', n - 4))
        return 1;
    if (n <= 11 || strncmp(name, "client-", 7) != 0)
        return 0;
    for (size_t i = 7; i < n - 4; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
    }
    return 1;
}

/* Before anything is written: out_dir must be a directory or missing (*exists says which).
 * Without force it may not hold shard files; with force none of them may be the input file
 * (input_st), since they are all replaced or removed. Returns 0 or FEDC_EXIT_USAGE. */
static int check_out_dir(const char *cmd, const char *dir, int force, const struct stat *input_st,
                         int *exists) {
    struct stat st;
    *exists = 0;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        cli_error(cmd, "--out: cannot use '%s': %s", dir, strerror(errno));
        return FEDC_EXIT_USAGE;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_error(cmd, "--out: '%s' exists and is not a directory", dir);
        return FEDC_EXIT_USAGE;
    }
    *exists = 1;
    DIR *dp = opendir(dir);
    if (!dp) {
        cli_error(cmd, "--out: cannot list '%s': %s", dir, strerror(errno));
        return FEDC_EXIT_USAGE;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(dp)) != NULL) {
        if (!is_shard_name(e->d_name))
            continue;
        if (!force) {
            cli_error(cmd,
                      "--out: '%s' already holds shard files (e.g. '%s'); use a new or empty "
                      "directory, or --force to replace them",
                      dir, e->d_name);
            rc = FEDC_EXIT_USAGE;
            break;
        }
        char *p = join_path(dir, e->d_name);
        if (!p) {
            cli_error(cmd, "out of memory");
            rc = FEDC_EXIT_FAIL;
            break;
        }
        if (stat(p, &st) == 0 && st.st_dev == input_st->st_dev && st.st_ino == input_st->st_ino) {
            cli_error(cmd,
                      "--out: '%s' is the input file (--data); --force would replace it: write "
                      "the shards to another directory",
                      p);
            rc = FEDC_EXIT_USAGE;
        }
        free(p);
    }
    closedir(dp);
    return rc;
}

/* After writing with force: removes shard files that this run did not write. Returns 0 or
 * FEDC_EXIT_FAIL. */
static int remove_stale(const char *cmd, const char *dir, char *const *names, int n_names,
                        int quiet) {
    DIR *dp = opendir(dir);
    if (!dp) {
        cli_error(cmd, "--out: cannot list '%s': %s", dir, strerror(errno));
        return FEDC_EXIT_FAIL;
    }
    int rc = 0, removed = 0;
    struct dirent *e;
    while (!rc && (e = readdir(dp)) != NULL) {
        if (!is_shard_name(e->d_name))
            continue;
        int ours = 0;
        for (int k = 0; k < n_names && !ours; k++)
            ours = strcmp(names[k], e->d_name) == 0;
        if (ours)
            continue;
        char *p = join_path(dir, e->d_name);
        if (!p) {
            cli_error(cmd, "out of memory");
            rc = FEDC_EXIT_FAIL;
        } else if (unlink(p) != 0) {
            cli_error(cmd, "--force: cannot remove the earlier shard file '%s': %s", p,
                      strerror(errno));
            rc = FEDC_EXIT_FAIL;
        } else {
            removed++;
        }
        free(p);
    }
    closedir(dp);
    if (removed && !quiet)
        fprintf(stderr, "fedc %s: note: removed %d earlier shard file%s from %s (--force)\n", cmd,
                removed, removed == 1 ? "" : "s", dir);
    return rc;
}

/* ---- Writing and summary ----------------------------------------------------------------- */

/* Prints "rows=R" and the label statistics of the rows in rows[0..n). */
static void print_stats(FILE *f, const table *t, const classes *cl, const int *rows, int n,
                        int *class_count) {
    fprintf(f, " rows=%d", n);
    if (cl->n == 0) {
        double sum = 0.0;
        for (int i = 0; i < n; i++)
            sum += t->label[rows ? rows[i] : i];
        fprintf(f, " label_mean=%.6g\n", n ? sum / n : 0.0);
        return;
    }
    memset(class_count, 0, (size_t)cl->n * sizeof *class_count);
    for (int i = 0; i < n; i++)
        class_count[cl->of_row[rows ? rows[i] : i]]++;
    if (cl->binary) {
        int pos = cl->value[cl->n - 1] == 1.0 ? class_count[cl->n - 1] : 0;
        fprintf(f, " pos=%d pos_rate=%.4f\n", pos, n ? (double)pos / n : 0.0);
        return;
    }
    fprintf(f, " classes=");
    for (int c = 0; c < cl->n && c < SUMMARY_CLASSES; c++)
        fprintf(f, "%s%.17g:%d", c ? "," : "", cl->value[c], class_count[c]);
    if (cl->n > SUMMARY_CLASSES)
        fprintf(f, ",... n_classes=%d", cl->n);
    fputc('\n', f);
}

/* Writes shard k (its rows in input order, rows[0..n)) to path atomically. Returns 0 or
 * FEDC_EXIT_FAIL. */
static int write_shard(const char *cmd, const char *path, const table *t, const int *rows, int n) {
    const size_t el = strlen(t->eol);
    size_t total = t->header.len + el;
    for (int i = 0; i < n; i++)
        total += t->rows[rows[i]].len + el;
    char *buf = malloc(total);
    if (!buf) {
        cli_error(cmd, "out of memory");
        return FEDC_EXIT_FAIL;
    }
    size_t k = 0;
    memcpy(buf, t->buf + t->header.off, t->header.len);
    k += t->header.len;
    memcpy(buf + k, t->eol, el);
    k += el;
    for (int i = 0; i < n; i++) {
        const span *s = &t->rows[rows[i]];
        memcpy(buf + k, t->buf + s->off, s->len);
        k += s->len;
        memcpy(buf + k, t->eol, el);
        k += el;
    }
    assert(k == total);
    fedc_diag d = {{0}};
    int rc = 0;
    if (fedc_write_atomic(path, buf, total, &d)) {
        cli_error(cmd, "--out: %s", d.msg);
        rc = FEDC_EXIT_FAIL;
    }
    free(buf);
    return rc;
}

/* ---- Entry point ------------------------------------------------------------------------- */

int split_run(const char *cmd, const split_opts *o, char ***paths_out, int *n_out) {
    int rc = FEDC_EXIT_USAGE, n_shards = 0, out_exists = 0;
    table t;
    classes cl;
    scheme sc;
    memset(&t, 0, sizeof t);
    memset(&cl, 0, sizeof cl);
    int *shard_of = NULL, *order = NULL, *first = NULL, *class_count = NULL;
    char **names = NULL, **paths = NULL;
    if (paths_out)
        *paths_out = NULL;
    if (n_out)
        *n_out = 0;

    if (parse_scheme(cmd, &sc, o->scheme))
        goto out;
    if ((rc = check_opts(cmd, o, &sc)))
        goto out;
    if ((rc = table_load(cmd, &t, o->data, o->label, sc.column, o->delimiter, o->positive)))
        goto out;
    rc = FEDC_EXIT_USAGE;
    struct stat input_st;
    if (stat(o->data, &input_st) != 0)
        memset(&input_st, 0, sizeof input_st);
    if ((rc = check_out_dir(cmd, o->out_dir, o->force, &input_st, &out_exists)))
        goto out;
    rc = FEDC_EXIT_USAGE;
    if (sc.kind != SCHEME_COLUMN && o->clients > t.n_rows) {
        cli_error(cmd, "--clients: %d clients need at least %d data rows, %s has %d", o->clients,
                  o->clients, o->data, t.n_rows);
        goto out;
    }
    int min_rows = o->min_rows;
    if (sc.kind == SCHEME_DIRICHLET) {
        if (min_rows == 0)
            min_rows = DEFAULT_MIN_ROWS;
        else if ((long)min_rows * o->clients > t.n_rows) {
            cli_error(cmd,
                      "--min-rows: %d rows for each of %d clients need %ld data rows, %s has %d",
                      min_rows, o->clients, (long)min_rows * o->clients, o->data, t.n_rows);
            goto out;
        }
    }
    if (classes_find(&cl, &t)) {
        cli_error(cmd, "out of memory");
        rc = FEDC_EXIT_FAIL;
        goto out;
    }
    if ((sc.kind == SCHEME_STRATIFIED || sc.kind == SCHEME_DIRICHLET) && cl.n == 0) {
        char s1[SHOW_MAX + 4];
        if (cl.first_frac >= 0) {
            cli_error(cmd,
                      "--scheme %s: label column '%s' is not a class label (%s:%d has %.17g); "
                      "stratified and dirichlet need integer classes: use --scheme iid for a "
                      "regression target",
                      o->scheme, show(s1, o->label, strlen(o->label)), o->data, cl.first_frac + 2,
                      t.label[cl.first_frac]);
        } else {
            cli_error(cmd,
                      "--scheme %s: label column '%s' has %d distinct values (expected at most "
                      "%d classes): use --scheme iid for a regression target",
                      o->scheme, show(s1, o->label, strlen(o->label)), cl.distinct,
                      SPLIT_MAX_CLASSES);
        }
        goto out;
    }

    /* Assign every row to a shard. */
    rc = FEDC_EXIT_FAIL;
    shard_of = malloc(count_of(t.n_rows) * sizeof *shard_of);
    if (!shard_of) {
        cli_error(cmd, "out of memory");
        goto out;
    }
    if (sc.kind == SCHEME_COLUMN) {
        if ((rc = split_column(cmd, shard_of, &names, &n_shards, &t, sc.column, o->data)))
            goto out;
    } else {
        n_shards = o->clients;
        if ((rc = client_names(cmd, &names, n_shards)))
            goto out;
        int bad = 0;
        if (sc.kind == SCHEME_IID)
            bad = split_iid(shard_of, t.n_rows, n_shards, o->seed);
        else if (sc.kind == SCHEME_STRATIFIED)
            bad = split_stratified(shard_of, &cl, t.n_rows, n_shards, o->seed);
        else if ((rc = split_dirichlet(cmd, shard_of, &cl, t.n_rows, n_shards, o->seed, sc.alpha,
                                       min_rows, o->scheme)))
            goto out;
        if (bad) {
            cli_error(cmd, "out of memory");
            rc = FEDC_EXIT_FAIL;
            goto out;
        }
    }

    /* Rows of each shard in input order: order[first[k] .. first[k + 1]). */
    rc = FEDC_EXIT_FAIL;
    order = malloc(count_of(t.n_rows) * sizeof *order);
    first = calloc(count_of(n_shards) + 1, sizeof *first);
    paths = calloc(count_of(n_shards) + 1, sizeof *paths);
    class_count = malloc(((size_t)cl.n + 1) * sizeof *class_count);
    if (!order || !first || !paths || !class_count) {
        cli_error(cmd, "out of memory");
        goto out;
    }
    for (int i = 0; i < t.n_rows; i++)
        first[shard_of[i] + 1]++;
    for (int k = 0; k < n_shards; k++)
        first[k + 1] += first[k];
    for (int i = 0; i < t.n_rows; i++)
        order[first[shard_of[i]]++] = i;
    for (int k = n_shards; k > 0; k--)
        first[k] = first[k - 1];
    first[0] = 0;
    for (int k = 0; k < n_shards; k++) {
        paths[k] = join_path(o->out_dir, names[k]);
        if (!paths[k]) {
            cli_error(cmd, "out of memory");
            goto out;
        }
    }

    if (!out_exists && mkdir(o->out_dir, 0755) != 0 && errno != EEXIST) {
        cli_error(cmd, "--out: cannot create directory '%s': %s%s", o->out_dir, strerror(errno),
                  errno == ENOENT ? " (its parent must exist)" : "");
        goto out;
    }
    for (int k = 0; k < n_shards; k++) {
        if ((rc = write_shard(cmd, paths[k], &t, order + first[k], first[k + 1] - first[k])))
            goto out;
    }
    if (o->force && (rc = remove_stale(cmd, o->out_dir, names, n_shards, o->quiet)))
        goto out;
    if (!o->quiet) {
        for (int k = 0; k < n_shards; k++) {
            fputs(paths[k], stdout);
            print_stats(stdout, &t, &cl, order + first[k], first[k + 1] - first[k], class_count);
        }
        printf("total files=%d", n_shards);
        print_stats(stdout, &t, &cl, NULL, t.n_rows, class_count);
        fflush(stdout);
    }
    if (paths_out) {
        *paths_out = paths;
        paths = NULL;
    }
    if (n_out)
        *n_out = n_shards;
    rc = FEDC_EXIT_OK;
out:
    cli_free_list(paths);
    cli_free_list(names);
    free(shard_of);
    free(order);
    free(first);
    free(class_count);
    classes_release(&cl);
    table_release(&t);
    return rc;
}
