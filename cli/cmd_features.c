/* fedc features: time-window aggregates per entity from a raw transaction CSV (issue 16, first
 * increment). The definitions are those of Le Borgne et al. 2022, "Reproducible Machine Learning
 * for Credit Card Fraud Detection - Practical Handbook", ch. 3.4: a customer's number and mean
 * amount of transactions over the last D days, a terminal's number of transactions and share of
 * frauds over D days ending a delay of L days earlier (a label is used only once it is known).
 * The window semantics are fedc/features.h's. This increment holds the whole file in memory; the
 * issue's later goal is memory bounded by the longest window. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fedc/csv.h"
#include "fedc/features.h"
#include "fedc/modelfile.h"

#define CMD "features"
#define MAX_DURS 32
#define MAX_AGGS 16
#define MAX_SPECS 64
#define MAX_DAYS 3650
/* 0001-01-01 00:00:00 and 9999-12-31 23:59:59 UTC in epoch seconds */
#define EPOCH_MIN (-62135596800LL)
#define EPOCH_MAX 253402300799LL

typedef enum agg_kind { AGG_COUNT, AGG_SUM, AGG_MEAN, AGG_RATE } agg_kind;
static const char *const g_agg_word[] = {"COUNT", "SUM", "MEAN", "RATE"};

typedef struct agg {
    agg_kind kind;
    char *col; /* NULL for count */
    int col_idx;
    double *value; /* per row */
    double *sum;   /* n_dur * n */
} agg;

typedef struct spec {
    const char *text; /* for messages */
    char *entity;
    int ent_idx;
    int n_dur;
    int days[MAX_DURS];
    int n_agg;
    agg aggs[MAX_AGGS];
    int delay_days;
    uint64_t *ids;  /* per row */
    int64_t *count; /* n_dur * n */
} spec;

/* A days count 1..MAX_DAYS (lo 0 for the delay) from s[0..n). */
static int parse_days(const char *s, size_t n, int lo, int *out) {
    if (n == 0 || n > 4)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > MAX_DAYS)
        return -1;
    *out = v;
    return 0;
}

static char *dup_n(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = 0;
    }
    return c;
}

/* One spec ENTITY:D1,D2:AGG,AGG[:delay=L]; text is modified (split in place). */
static int parse_spec(spec *sp, char *text, const char *orig) {
    sp->text = orig;
    char *part[5] = {0};
    int np = 0;
    for (char *p = text; np < 5;) {
        part[np++] = p;
        char *c = strchr(p, ':');
        if (!c)
            break;
        *c = 0;
        p = c + 1;
    }
    if (np < 3 || np > 4) {
        cli_error(CMD, "--window '%s': expected ENTITY:D1,D2,...:AGG,...[:delay=L]", orig);
        return -1;
    }
    if (!*part[0]) {
        cli_error(CMD, "--window '%s': empty entity column", orig);
        return -1;
    }
    sp->entity = part[0];
    for (char *p = part[1];;) {
        char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (sp->n_dur == MAX_DURS || parse_days(p, n, 1, &sp->days[sp->n_dur])) {
            cli_error(CMD,
                      "--window '%s': durations must be at most %d whole days in 1..%d, got "
                      "'%s'",
                      orig, MAX_DURS, MAX_DAYS, part[1]);
            return -1;
        }
        for (int k = 0; k < sp->n_dur; k++)
            if (sp->days[k] == sp->days[sp->n_dur]) {
                cli_error(CMD, "--window '%s': duration %d given twice", orig, sp->days[k]);
                return -1;
            }
        sp->n_dur++;
        if (!c)
            break;
        p = c + 1;
    }
    for (char *p = part[2];;) {
        char *c = strchr(p, ',');
        if (c)
            *c = 0;
        agg *a = &sp->aggs[sp->n_agg];
        char *eq = strchr(p, '=');
        size_t wl = eq ? (size_t)(eq - p) : strlen(p);
        int ok = sp->n_agg < MAX_AGGS;
        if (ok && !eq && strcmp(p, "count") == 0) {
            a->kind = AGG_COUNT;
        } else if (ok && eq && eq[1]) {
            a->col = eq + 1;
            if (wl == 3 && strncmp(p, "sum", 3) == 0)
                a->kind = AGG_SUM;
            else if (wl == 4 && strncmp(p, "mean", 4) == 0)
                a->kind = AGG_MEAN;
            else if (wl == 4 && strncmp(p, "rate", 4) == 0)
                a->kind = AGG_RATE;
            else
                ok = 0;
        } else {
            ok = 0;
        }
        if (!ok) {
            cli_error(CMD,
                      "--window '%s': aggregate '%s' is not count, sum=COL, mean=COL or "
                      "rate=COL (at most %d)",
                      orig, p, MAX_AGGS);
            return -1;
        }
        sp->n_agg++;
        if (!c)
            break;
        p = c + 1;
    }
    if (np == 4) {
        if (strncmp(part[3], "delay=", 6) != 0 ||
            parse_days(part[3] + 6, strlen(part[3] + 6), 0, &sp->delay_days)) {
            cli_error(CMD, "--window '%s': '%s' is not delay=L with L whole days in 0..%d", orig,
                      part[3], MAX_DAYS);
            return -1;
        }
    }
    return 0;
}

/* Interned entity values: an open-addressing hash table from text to a dense id. */
typedef struct intern {
    char **keys;
    size_t *lens;
    size_t cap, used;
} intern;

/* FNV-1a (Fowler, Noll, Vo), 64 bits. */
static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int intern_grow(intern *t) {
    size_t cap = t->cap ? t->cap * 2 : 1024;
    char **keys = calloc(cap, sizeof *keys);
    size_t *lens = calloc(cap, sizeof *lens);
    if (!keys || !lens) {
        free(keys);
        free(lens);
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++)
        if (t->keys[i]) {
            size_t j = fnv1a(t->keys[i], t->lens[i]) & (cap - 1);
            while (keys[j])
                j = (j + 1) & (cap - 1);
            keys[j] = t->keys[i];
            lens[j] = t->lens[i];
        }
    free(t->keys);
    free(t->lens);
    t->keys = keys;
    t->lens = lens;
    t->cap = cap;
    return 0;
}

/* The id of s[0..n): the address of its stored copy, which growing the table does not move (only
 * the pointers are rehashed), so equal texts get equal ids and different texts different ones. */
static int intern_id(intern *t, const char *s, size_t n, uint64_t *id) {
    if ((t->used + 1) * 2 > t->cap && intern_grow(t))
        return -1;
    size_t j = fnv1a(s, n) & (t->cap - 1);
    while (t->keys[j]) {
        if (t->lens[j] == n && memcmp(t->keys[j], s, n) == 0) {
            *id = (uint64_t)(uintptr_t)t->keys[j];
            return 0;
        }
        j = (j + 1) & (t->cap - 1);
    }
    if (!(t->keys[j] = dup_n(s, n)))
        return -1;
    t->lens[j] = n;
    t->used++;
    *id = (uint64_t)(uintptr_t)t->keys[j];
    return 0;
}

static void intern_free(intern *t) {
    for (size_t i = 0; i < t->cap; i++)
        free(t->keys[i]);
    free(t->keys);
    free(t->lens);
}

static fedc_prog_help features_help(void) {
    fedc_prog_help h = {
        "usage: fedc features --data tx.csv --time COLUMN --out features.csv [--calendar]\n"
        "       [--window 'ENTITY:D1,D2:AGG,...[:delay=L];...']",
        "Adds time-window aggregates per entity to a raw transaction CSV (Le Borgne et al. 2022,\n"
        "fraud detection handbook ch. 3.4: customer spending and terminal risk features).\n"
        "Output: every input column as text, in input row order, then TX_WEEKEND and TX_NIGHT\n"
        "(hour 0..6) with --calendar, then per window spec and duration D (days) the columns\n"
        "ENTITY_COUNT_DD, ENTITY_SUM_COL_DD, ENTITY_MEAN_COL_DD, ENTITY_RATE_COL_DD asked for.\n"
        "The window of a row at time t holds the same entity's rows with time in (t - D, t],\n"
        "rows of equal time in file order (itself and earlier ones, not later ones); with\n"
        "delay=L, those in (t - L - D, t - L]. A mean or rate over an empty window is 0. Rows\n"
        "need not be sorted; the whole file is held in memory.",
        "Example:\n"
        "  fedc features --data tx.csv --time TX_DATETIME --out features.csv --calendar \\\n"
        "    --window 'CUSTOMER_ID:1,7,30:count,mean=TX_AMOUNT;"
        "TERMINAL_ID:1,7,30:count,rate=TX_FRAUD:delay=7'\n"
        "\n"
        "Exit status: 0 success, 1 runtime failure (memory, writing), 2 bad flags or bad input\n"
        "(named by file:line:field or by the spec's text)."};
    return h;
}

static int find_col(char **names, int n_cols, const char *name) {
    for (int c = 0; c < n_cols; c++)
        if (strcmp(names[c], name) == 0)
            return c;
    return -1;
}

/* Writes a number of the output: integers as such, others with 15 significant digits (what a
 * double keeps of a decimal). */
static void put_real(FILE *f, double v) {
    fprintf(f, ",%.15g", v == 0 ? 0.0 : v);
}

typedef struct run {
    const char *data, *time_col, *out;
    int epoch, calendar;
    int n_spec;
    spec specs[MAX_SPECS];
    char **names;
    int n_cols;
    size_t n, cap;
    int64_t *time;
    size_t *row_off; /* n + 1 offsets into the encoded input rows */
    char *rows_text;
    size_t rows_len;
    intern ids;
} run;

/* Output column k of spec sp for duration index k and aggregate a. */
static void feature_name(char *out, size_t cap, const spec *sp, int k, const agg *ag) {
    snprintf(out, cap, "%s_%s%s%s_%dD", sp->entity, g_agg_word[ag->kind], ag->col ? "_" : "",
             ag->col ? ag->col : "", sp->days[k]);
}

/* Refuses an output with two columns of one name (an input column, a calendar column or a
 * feature twice): a reader would take one for the other. */
static int check_names(const run *r) {
    size_t n = (size_t)r->n_cols + 2, cap = n;
    for (int s = 0; s < r->n_spec; s++)
        cap += (size_t)r->specs[s].n_dur * (size_t)r->specs[s].n_agg;
    char(*names)[256] = malloc(cap * sizeof *names);
    if (!names)
        return 0; /* the writer fails later for want of memory anyway */
    n = 0;
    for (int c = 0; c < r->n_cols; c++)
        snprintf(names[n++], sizeof names[0], "%s", r->names[c]);
    if (r->calendar) {
        snprintf(names[n++], sizeof names[0], "TX_WEEKEND");
        snprintf(names[n++], sizeof names[0], "TX_NIGHT");
    }
    for (int s = 0; s < r->n_spec; s++)
        for (int k = 0; k < r->specs[s].n_dur; k++)
            for (int a = 0; a < r->specs[s].n_agg; a++)
                feature_name(names[n++], sizeof names[0], &r->specs[s], k, &r->specs[s].aggs[a]);
    for (size_t i = (size_t)r->n_cols; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) {
                cli_error(CMD,
                          "output column '%s' would appear twice (%s); give each window "
                          "spec its own entity, durations or aggregates",
                          names[i],
                          j < (size_t)r->n_cols ? "it is an input column" : "from --window");
                free(names);
                return -1;
            }
    free(names);
    return 0;
}

static int grow_rows(run *r) {
    size_t cap = r->cap ? r->cap * 2 : 4096;
    int64_t *t = realloc(r->time, cap * sizeof *t);
    if (!t)
        return -1;
    r->time = t;
    size_t *o = realloc(r->row_off, (cap + 1) * sizeof *o);
    if (!o)
        return -1;
    r->row_off = o;
    for (int s = 0; s < r->n_spec; s++) {
        spec *sp = &r->specs[s];
        uint64_t *ids = realloc(sp->ids, cap * sizeof *ids);
        if (!ids)
            return -1;
        sp->ids = ids;
        for (int a = 0; a < sp->n_agg; a++) {
            if (!sp->aggs[a].col)
                continue;
            double *v = realloc(sp->aggs[a].value, cap * sizeof *v);
            if (!v)
                return -1;
            sp->aggs[a].value = v;
        }
    }
    r->cap = cap;
    return 0;
}

/* Reads the file: header, then each row's encoded text, time, entity ids and values. Returns an
 * exit status, or -1 to go on. */
static int read_input(run *r) {
    FILE *f = fopen(r->data, "rb");
    if (!f) {
        cli_error(CMD, "%s: cannot open: %s", r->data, strerror(errno));
        return FEDC_EXIT_USAGE;
    }
    int rc = FEDC_EXIT_FAIL;
    fedc_diag d = {{0}};
    fedc_csv_reader *rd = NULL;
    const fedc_csv_limits lim = {INT_MAX, SIZE_MAX, SIZE_MAX};
    FILE *enc = NULL;
    char *enc_buf = NULL;
    size_t enc_len = 0;
    fedc_csv_record rec;
    fedc_err e = fedc_csv_open_file(&rd, f, r->data, &lim, &d);
    if (e == FEDC_OK)
        e = fedc_csv_next(rd, &rec, &d);
    if (e != FEDC_OK) {
        cli_error(CMD, "%s", d.msg);
        rc = e == FEDC_ENOMEM ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
        goto out;
    }
    if (rec.n_fields == 0) {
        cli_error(CMD, "%s: empty file (a header line is needed)", r->data);
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    r->n_cols = rec.n_fields;
    if (!(r->names = calloc((size_t)r->n_cols, sizeof *r->names)))
        goto out;
    for (int c = 0; c < r->n_cols; c++)
        if (!(r->names[c] = dup_n(rec.fields[c].s, rec.fields[c].n)))
            goto out;
    int tcol = find_col(r->names, r->n_cols, r->time_col);
    if (tcol < 0) {
        cli_error(CMD, "--time: no column '%s' in %s:1", r->time_col, r->data);
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    for (int s = 0; s < r->n_spec; s++) {
        spec *sp = &r->specs[s];
        if ((sp->ent_idx = find_col(r->names, r->n_cols, sp->entity)) < 0) {
            cli_error(CMD, "--window '%s': no column '%s' in %s:1", sp->text, sp->entity, r->data);
            rc = FEDC_EXIT_USAGE;
            goto out;
        }
        for (int a = 0; a < sp->n_agg; a++)
            if (sp->aggs[a].col &&
                (sp->aggs[a].col_idx = find_col(r->names, r->n_cols, sp->aggs[a].col)) < 0) {
                cli_error(CMD, "--window '%s': no column '%s' in %s:1", sp->text, sp->aggs[a].col,
                          r->data);
                rc = FEDC_EXIT_USAGE;
                goto out;
            }
    }
    if (check_names(r)) {
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    fedc_csv_expect_fields(rd, r->n_cols);
    if (!(enc = open_memstream(&enc_buf, &enc_len)))
        goto out;
    for (;;) {
        e = fedc_csv_next(rd, &rec, &d);
        if (e != FEDC_OK) {
            cli_error(CMD, "%s", d.msg);
            rc = e == FEDC_ENOMEM || e == FEDC_EIO ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
            goto out;
        }
        if (rec.n_fields == 0)
            break;
        if (rec.blank)
            continue; /* an empty line is no transaction */
        if (r->n == r->cap && grow_rows(r))
            goto out;
        size_t i = r->n;
        const fedc_csv_field *tf = &rec.fields[tcol];
        int bad;
        if (r->epoch) {
            char *end = NULL;
            errno = 0;
            long long v = tf->n ? strtoll(tf->s, &end, 10) : 0;
            /* strtoll would skip leading blanks; the range is the datetime form's (years 1..9999)
             * and keeps t - L - D far from overflowing int64 */
            bad = !tf->n || end != tf->s + tf->n || errno == ERANGE ||
                  isspace((unsigned char)tf->s[0]) || v < EPOCH_MIN || v > EPOCH_MAX;
            r->time[i] = v;
        } else {
            bad = fedc_parse_datetime(tf->s, tf->n, &r->time[i]) != 0;
        }
        if (bad) {
            cli_error(CMD, "%s:%ld:%d: %s: '%.*s' is not a %s", r->data, rec.line, tcol + 1,
                      r->time_col, (int)(tf->n > 64 ? 64 : tf->n), tf->s,
                      r->epoch ? "whole number of seconds in years 1..9999 (--time-format epoch)"
                               : "timestamp YYYY-MM-DD HH:MM:SS or YYYY-MM-DDTHH:MM:SS[Z]");
            rc = FEDC_EXIT_USAGE;
            goto out;
        }
        for (int s = 0; s < r->n_spec; s++) {
            spec *sp = &r->specs[s];
            const fedc_csv_field *ef = &rec.fields[sp->ent_idx];
            if (intern_id(&r->ids, ef->s, ef->n, &sp->ids[i]))
                goto out;
            for (int a = 0; a < sp->n_agg; a++) {
                agg *ag = &sp->aggs[a];
                if (!ag->col)
                    continue;
                const fedc_csv_field *vf = &rec.fields[ag->col_idx];
                char *end = NULL;
                double v = vf->n ? strtod(vf->s, &end) : NAN;
                if (!vf->n || end != vf->s + vf->n || !isfinite(v) ||
                    (ag->kind == AGG_RATE && v != 0 && v != 1)) {
                    cli_error(CMD, "%s:%ld:%d: %s: '%.*s' is not %s (--window '%s')", r->data,
                              rec.line, ag->col_idx + 1, ag->col, (int)(vf->n > 64 ? 64 : vf->n),
                              vf->s, ag->kind == AGG_RATE ? "0 or 1" : "a finite number", sp->text);
                    rc = FEDC_EXIT_USAGE;
                    goto out;
                }
                ag->value[i] = v;
            }
        }
        r->row_off[i] = (size_t)ftell(enc);
        for (int c = 0; c < rec.n_fields; c++) {
            char *txt = dup_n(rec.fields[c].s, rec.fields[c].n);
            if (!txt)
                goto out;
            if (c)
                fputc(',', enc);
            int wr = fedc_csv_write_field(enc, txt);
            free(txt);
            if (wr)
                goto out;
        }
        r->n++;
    }
    if (fflush(enc))
        goto out;
    r->row_off[r->n] = enc_len;
    fclose(enc);
    enc = NULL;
    r->rows_text = enc_buf;
    r->rows_len = enc_len;
    enc_buf = NULL;
    rc = -1;
out:
    if (rc == FEDC_EXIT_FAIL && !d.msg[0])
        cli_error(CMD, "%s: out of memory", r->data);
    if (enc)
        fclose(enc);
    free(enc_buf);
    fedc_csv_close(&rd);
    fclose(f);
    return rc;
}

static int compute(run *r) {
    fedc_diag d = {{0}};
    for (int s = 0; s < r->n_spec; s++) {
        spec *sp = &r->specs[s];
        int64_t dur[MAX_DURS];
        for (int k = 0; k < sp->n_dur; k++)
            dur[k] = (int64_t)sp->days[k] * 86400;
        size_t cells = (size_t)sp->n_dur * (r->n ? r->n : 1);
        if (!(sp->count = malloc(cells * sizeof *sp->count)))
            return -1;
        if (fedc_window_aggregate(r->n, sp->ids, r->time, NULL, (int64_t)sp->delay_days * 86400,
                                  sp->n_dur, dur, sp->count, NULL, &d) != FEDC_OK)
            return -1;
        for (int a = 0; a < sp->n_agg; a++) {
            agg *ag = &sp->aggs[a];
            if (!ag->col)
                continue;
            int64_t *cnt = malloc(cells * sizeof *cnt);
            ag->sum = malloc(cells * sizeof *ag->sum);
            fedc_err e = cnt && ag->sum ? fedc_window_aggregate(r->n, sp->ids, r->time, ag->value,
                                                                (int64_t)sp->delay_days * 86400,
                                                                sp->n_dur, dur, cnt, ag->sum, &d)
                                        : FEDC_ENOMEM;
            free(cnt);
            if (e != FEDC_OK)
                return -1;
        }
    }
    return 0;
}

static int write_output(run *r) {
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (!o)
        return FEDC_EXIT_FAIL;
    int bad = 0;
    for (int c = 0; c < r->n_cols; c++) {
        if (c)
            fputc(',', o);
        bad |= fedc_csv_write_field(o, r->names[c]);
    }
    if (r->calendar)
        fputs(",TX_WEEKEND,TX_NIGHT", o);
    for (int s = 0; s < r->n_spec; s++) {
        const spec *sp = &r->specs[s];
        for (int k = 0; k < sp->n_dur; k++)
            for (int a = 0; a < sp->n_agg; a++) {
                const agg *ag = &sp->aggs[a];
                char name[1024];
                feature_name(name, sizeof name, sp, k, ag);
                fputc(',', o);
                bad |= fedc_csv_write_field(o, name);
            }
    }
    fputc('\n', o);
    for (size_t i = 0; i < r->n; i++) {
        fwrite(r->rows_text + r->row_off[i], 1, r->row_off[i + 1] - r->row_off[i], o);
        if (r->calendar) {
            int wd = fedc_epoch_weekday(r->time[i]), hr = fedc_epoch_hour(r->time[i]);
            /* the handbook's TX_DURING_WEEKEND (Saturday, Sunday) and TX_DURING_NIGHT (hour
             * 0..6, both ends included) */
            fprintf(o, ",%d,%d", wd == 0 || wd == 6, hr <= 6);
        }
        for (int s = 0; s < r->n_spec; s++) {
            const spec *sp = &r->specs[s];
            for (int k = 0; k < sp->n_dur; k++) {
                size_t at = (size_t)k * r->n + i;
                int64_t cnt = sp->count[at];
                for (int a = 0; a < sp->n_agg; a++) {
                    const agg *ag = &sp->aggs[a];
                    if (ag->kind == AGG_COUNT)
                        fprintf(o, ",%lld", (long long)cnt);
                    else if (ag->kind == AGG_SUM)
                        put_real(o, ag->sum[at]);
                    else /* a mean or rate over an empty window is 0 */
                        put_real(o, cnt ? ag->sum[at] / (double)cnt : 0.0);
                }
            }
        }
        fputc('\n', o);
    }
    bad |= fclose(o) != 0;
    int rc = FEDC_EXIT_OK;
    fedc_diag d = {{0}};
    if (bad) {
        cli_error(CMD, "%s: cannot build the output (out of memory)", r->out);
        rc = FEDC_EXIT_FAIL;
    } else if (fedc_write_atomic(r->out, buf, len, &d) != FEDC_OK) {
        cli_error(CMD, "%s", d.msg);
        rc = FEDC_EXIT_FAIL;
    }
    free(buf);
    return rc;
}

int cmd_features(int argc, char **argv) {
    fedc_prog_help h = features_help();
    /* the option parser keeps the last of a repeated flag; a second --window would silently drop
     * the first spec, so it is refused here and the specs are joined with ';' instead */
    int n_window = 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--window") == 0 || strncmp(argv[i], "--window=", 9) == 0)
            n_window++;
    if (n_window > 1) {
        cli_error(CMD, "--window given %d times: give it once, the specs separated by ';'",
                  n_window);
        return FEDC_EXIT_USAGE;
    }
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_FEATURES, argc, argv, &h);
    if (prc >= 0)
        return prc;
    run *r = calloc(1, sizeof *r);
    char *wtext = NULL, *orig = NULL;
    int rc = FEDC_EXIT_FAIL;
    if (!r)
        goto done;
    r->data = op.v[FEDC_O_DATA].text;
    r->time_col = op.v[FEDC_O_TIME_COL].text;
    r->out = op.v[FEDC_O_OUT].text;
    r->epoch = op.v[FEDC_O_TIME_FORMAT].i == 1;
    r->calendar = (int)op.v[FEDC_O_CALENDAR].i;
    const char *win = op.v[FEDC_O_WINDOW].text;
    rc = FEDC_EXIT_USAGE;
    if (!r->data || !r->time_col || !r->out) {
        cli_error(CMD, "--data, --time and --out are required (see fedc features --help)");
        goto done;
    }
    if (!win && !r->calendar) {
        cli_error(CMD, "nothing to compute: give --window or --calendar");
        goto done;
    }
    if (win) {
        /* wtext is cut at ';' and ':' while parsing; orig only at ';', so that each spec's own
         * text stays whole for the messages (both live until the end) */
        if (!(wtext = strdup(win)) || !(orig = strdup(win))) {
            rc = FEDC_EXIT_FAIL;
            goto done;
        }
        for (char *p = wtext, *q = orig;;) {
            char *sc = strchr(p, ';'), *sq = strchr(q, ';');
            if (sc)
                *sc = 0, *sq = 0;
            if (r->n_spec == MAX_SPECS) {
                cli_error(CMD, "--window: more than %d specs", MAX_SPECS);
                goto done;
            }
            if (parse_spec(&r->specs[r->n_spec++], p, q))
                goto done;
            if (!sc)
                break;
            p = sc + 1;
            q = sq + 1;
        }
    }
    int st = read_input(r);
    if (st >= 0) {
        rc = st;
        goto done;
    }
    if (compute(r)) {
        cli_error(CMD, "out of memory for %zu rows", r->n);
        rc = FEDC_EXIT_FAIL;
        goto done;
    }
    rc = write_output(r);
done:
    if (r) {
        for (int s = 0; s < r->n_spec; s++) {
            spec *sp = &r->specs[s];
            free(sp->ids);
            free(sp->count);
            for (int a = 0; a < sp->n_agg; a++) {
                free(sp->aggs[a].value);
                free(sp->aggs[a].sum);
            }
        }
        for (int c = 0; c < r->n_cols; c++)
            free(r->names[c]);
        free(r->names);
        free(r->time);
        free(r->row_off);
        free(r->rows_text);
        intern_free(&r->ids);
        free(r);
    }
    free(wtext);
    free(orig);
    return rc;
}
