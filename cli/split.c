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
 * columns other than the label (the files are copied, not loaded).
 *
 * This file has the options, the classes, the output directory and the entry point; the input is
 * read by split_read.c and the rows assigned to shards by split_scheme.c (split_int.h). */
#include "split_int.h"

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

/* ---- Small helpers ----------------------------------------------------------------------- */

/* An element count for an allocation: n >= 0 by construction (row, shard and class counts). */
size_t split_count_of(int n) {
    assert(n >= 0);
    return (size_t)(unsigned)n;
}

/* Copies [s, s + n) into out (SHOW_MAX + 4 bytes) for a message: control bytes as '?', "..."
 * when cut (never inside a UTF-8 sequence). */
const char *split_show(char *out, const char *s, size_t n) {
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
    double *v = malloc(split_count_of(n) * sizeof *v);
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
    cl->of_row = malloc(split_count_of(n) * sizeof *cl->of_row);
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
int split_class_members(int **members, int **start, const classes *cl, int n_rows) {
    *members = malloc(split_count_of(n_rows) * sizeof **members);
    *start = calloc(split_count_of(cl->n) + 1, sizeof **start);
    int *fill = calloc(split_count_of(cl->n) + 1, sizeof *fill);
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
    if ((rc = split_table_load(cmd, &t, o->data, o->label, sc.column, o->delimiter, o->positive)))
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
                      o->scheme, split_show(s1, o->label, strlen(o->label)), o->data,
                      cl.first_frac + 2, t.label[cl.first_frac]);
        } else {
            cli_error(cmd,
                      "--scheme %s: label column '%s' has %d distinct values (expected at most "
                      "%d classes): use --scheme iid for a regression target",
                      o->scheme, split_show(s1, o->label, strlen(o->label)), cl.distinct,
                      SPLIT_MAX_CLASSES);
        }
        goto out;
    }

    /* Assign every row to a shard. */
    rc = FEDC_EXIT_FAIL;
    shard_of = malloc(split_count_of(t.n_rows) * sizeof *shard_of);
    if (!shard_of) {
        cli_error(cmd, "out of memory");
        goto out;
    }
    if (sc.kind == SCHEME_COLUMN) {
        if ((rc = split_column(cmd, shard_of, &names, &n_shards, &t, sc.column, o->data)))
            goto out;
    } else {
        n_shards = o->clients;
        if ((rc = split_client_names(cmd, &names, n_shards)))
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
    order = malloc(split_count_of(t.n_rows) * sizeof *order);
    first = calloc(split_count_of(n_shards) + 1, sizeof *first);
    paths = calloc(split_count_of(n_shards) + 1, sizeof *paths);
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
    split_table_release(&t);
    return rc;
}
