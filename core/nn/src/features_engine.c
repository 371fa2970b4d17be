/* The streaming features engine (fedc/features.h): rows in time order in, a spec's columns out,
 * memory bounded by the rows inside the longest window. This file sets the engine up, binds it to
 * a header, parses rows and writes the features as text; the windows themselves are
 * features_window.c's (the state both share: features_engine_int.h). */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "features_engine_int.h"

/* 0001-01-01 00:00:00 and 9999-12-31 23:59:59 UTC in epoch seconds */
#define EPOCH_MIN (-62135596800LL)
#define EPOCH_MAX 253402300799LL

/* ---- set-up ------------------------------------------------------------------------------- */

static int copy_spec(fedc_features_spec *dst, const fedc_features_spec *s) {
    fedc_features_spec_init(dst);
    dst->epoch = s->epoch;
    dst->calendar = s->calendar;
    if (s->time_col && fedc_features_spec_set_time(dst, s->time_col, NULL))
        return -1;
    for (int i = 0; i < s->n_win; i++)
        if (fedc_features_spec_add_window(dst, &s->win[i], NULL))
            return -1;
    return 0;
}

fedc_err fedc_feat_engine_new(fedc_feat_engine **out, const fedc_features_spec *s, fedc_diag *d) {
    *out = NULL;
    if (!s->time_col || (s->n_win == 0 && !s->calendar)) {
        fedc_diag_set(d, "features spec: %s",
                      !s->time_col ? "no time column"
                                   : "nothing to compute (no window "
                                     "spec and no calendar columns)");
        return FEDC_EINVAL;
    }
    fedc_feat_engine *e = calloc(1, sizeof *e);
    if (!e || copy_spec(&e->spec, s))
        goto nomem;
    e->n_out = fedc_features_n_columns(&e->spec);
    if (!(e->is_int = calloc((size_t)e->n_out + 1, 1)) ||
        !(e->tabs = calloc((size_t)e->spec.n_win + 1, sizeof *e->tabs)))
        goto nomem;
    int col = 0;
    if (e->spec.calendar) {
        e->is_int[col++] = 1;
        e->is_int[col++] = 1;
    }
    for (int i = 0; i < e->spec.n_win; i++) {
        wtab *t = &e->tabs[i];
        const fedc_feat_window *w = t->w = &e->spec.win[i];
        t->v0 = e->n_val;
        for (int a = 0; a < w->n_agg; a++) {
            t->agg_v[a] = -1;
            t->agg_kind[a] = w->aggs[a].kind == FEDC_FEAT_COUNT ? 0
                             : w->aggs[a].kind == FEDC_FEAT_SUM ? 1
                                                                : 2;
            if (!w->aggs[a].col)
                continue;
            int v = 0;
            while (v < t->nv && strcmp(t->vname[v], w->aggs[a].col) != 0)
                v++; /* the distinct columns, in the order first named */
            if (v == t->nv)
                t->vname[t->nv++] = w->aggs[a].col;
            t->agg_v[a] = v;
            if (w->aggs[a].kind == FEDC_FEAT_RATE)
                t->vrate[v] = 1;
        }
        e->n_val += t->nv;
        t->delay_s = (int64_t)w->delay_days * 86400;
        for (int k = 0; k < w->n_dur; k++) {
            t->dur_s[k] = (int64_t)w->days[k] * 86400;
            if (t->dur_s[k] > t->dur_s[t->kmax])
                t->kmax = k;
            if (k == 0 || t->dur_s[k] < t->dur_min_s)
                t->dur_min_s = t->dur_s[k];
            for (int a = 0; a < w->n_agg; a++)
                e->is_int[col++] = w->aggs[a].kind == FEDC_FEAT_COUNT;
        }
        /* an entity's record: held, cnt[n_dur], then the sums from an 8-byte boundary, in
         * whole cache lines */
        t->sum_off = (4 + 4 * (size_t)w->n_dur + 7) & ~(size_t)7;
        t->rec = (t->sum_off + (size_t)(2 * w->n_dur * t->nv) * sizeof(double) + 63) & ~(size_t)63;
        for (int k = 0, c = 0; k < w->n_dur; k++)
            for (int a = 0; a < w->n_agg; a++, c++) {
                t->out_v[c] = (int16_t)(t->agg_v[a] < 0 ? -1 : 2 * (k * t->nv + t->agg_v[a]));
                t->out_sum[c] = w->aggs[a].kind == FEDC_FEAT_SUM;
            }
        /* rows leave the longest window last: a row that leaves it is dropped */
        for (int k = 0, j = 0; k < w->n_dur; k++)
            if (k != t->kmax)
                t->order[j++] = k;
        t->order[w->n_dur - 1] = t->kmax;
    }
    e->row.n_key = e->spec.n_win;
    e->row.n_val = e->n_val;
    e->row.key = calloc((size_t)e->spec.n_win + 1, sizeof *e->row.key);
    e->row.key_len = calloc((size_t)e->spec.n_win + 1, sizeof *e->row.key_len);
    e->row.val = calloc((size_t)e->n_val + 1, sizeof *e->row.val);
    if (!e->row.key || !e->row.key_len || !e->row.val)
        goto nomem;
    *out = e;
    return FEDC_OK;
nomem:
    fedc_feat_engine_destroy(&e);
    fedc_diag_set(d, "out of memory for the features engine");
    return FEDC_ENOMEM;
}

void fedc_feat_engine_destroy(fedc_feat_engine **pe) {
    if (!pe || !*pe)
        return;
    fedc_feat_engine *e = *pe;
    if (e->tabs)
        for (int i = 0; i < e->spec.n_win; i++)
            feat_win_free(&e->tabs[i]);
    free(e->tabs);
    free(e->is_int);
    free(e->row.key);
    free(e->row.key_len);
    free(e->row.val);
    fedc_features_spec_release(&e->spec);
    free(e);
    *pe = NULL;
}

const fedc_features_spec *fedc_feat_engine_spec(const fedc_feat_engine *e) {
    return &e->spec;
}

fedc_feat_row *fedc_feat_engine_row(fedc_feat_engine *e) {
    return &e->row;
}

size_t fedc_feat_engine_held(const fedc_feat_engine *e) {
    return e->held;
}

size_t fedc_feat_engine_held_max(const fedc_feat_engine *e) {
    return e->held_max;
}

static int find_col(const fedc_csv_field *hdr, int n, const char *name) {
    size_t len = strlen(name);
    for (int c = 0; c < n; c++)
        if (hdr[c].n == len && memcmp(hdr[c].s, name, len) == 0)
            return c;
    return -1;
}

fedc_err fedc_feat_engine_bind(fedc_feat_engine *e, const fedc_csv_field *hdr, int n,
                               const char *file, fedc_diag *d) {
    char text[512];
    if ((e->time_col = find_col(hdr, n, e->spec.time_col)) < 0) {
        fedc_diag_set(d, "time column: no column '%s' in %s:1", e->spec.time_col, file);
        return FEDC_EMISMATCH;
    }
    for (int i = 0; i < e->spec.n_win; i++) {
        wtab *t = &e->tabs[i];
        fedc_features_window_text(text, sizeof text, t->w);
        const char *miss = NULL;
        if ((t->key_col = find_col(hdr, n, t->w->entity)) < 0)
            miss = t->w->entity;
        for (int a = 0; a < t->w->n_agg && !miss; a++)
            if (t->agg_v[a] >= 0 &&
                (t->vcol[t->agg_v[a]] = find_col(hdr, n, t->w->aggs[a].col)) < 0)
                miss = t->w->aggs[a].col;
        if (miss) {
            fedc_diag_set(d, "window '%s': no column '%s' in %s:1", text, miss, file);
            return FEDC_EMISMATCH;
        }
    }
    /* an output with two columns of one name: a reader would take one for the other */
    size_t total = (size_t)n + (size_t)e->n_out;
    char(*names)[256] = malloc(total * sizeof *names);
    if (!names) {
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    for (int c = 0; c < n; c++)
        snprintf(names[c], sizeof names[0], "%.*s", (int)(hdr[c].n < 255 ? hdr[c].n : 255),
                 hdr[c].s);
    for (int c = 0; c < e->n_out; c++)
        fedc_features_column_name(names[n + c], sizeof names[0], &e->spec, c);
    fedc_err rc = FEDC_OK;
    for (size_t i = (size_t)n; i < total && !rc; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) {
                fedc_diag_set(d,
                              "output column '%s' would appear twice (%s); give each window "
                              "spec its own entity, durations or aggregates",
                              names[i],
                              j < (size_t)n ? "it is an input column" : "from the window specs");
                rc = FEDC_EMISMATCH;
                break;
            }
    free(names);
    e->bound = rc == FEDC_OK;
    return rc;
}

/* ---- parsing a row ------------------------------------------------------------------------ */

static int parse_epoch(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i == n || n - i > 15)
        return -1; /* 15 digits hold every time of years 1..9999 */
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    v = neg ? -v : v;
    if (v < EPOCH_MIN || v > EPOCH_MAX)
        return -1;
    *out = v;
    return 0;
}

/* fedc_parse_datetime, quicker for a timestamp of the date before: only its time of day is read
 * then (checked as fedc_parse_datetime checks it), the date being the one read and checked
 * already. */
static int parse_datetime(fedc_feat_engine *e, const char *s, size_t n, int64_t *out) {
    if ((n == 19 || (n == 20 && s[19] == 'Z')) && e->have_date && (s[10] == ' ' || s[10] == 'T') &&
        memcmp(s, e->date, 10) == 0) {
        const unsigned char *c = (const unsigned char *)s + 11;
        /* "HH:MM:SS" as one word, byte k of the text at bits 8k: the colons at bytes 2 and 5,
         * and with them put to '0', every byte '0'..'9' (high nibble 3, and adding 6 leaves it
         * 3: no byte carries into the next) */
        const uint64_t colons = 0x0000ff0000ff0000ull, nib = 0xf0f0f0f0f0f0f0f0ull,
                       zeros = 0x3030303030303030ull;
        uint64_t w;
        memcpy(&w, c, 8);
        const uint64_t dg = (w & ~colons) | (zeros & colons);
        if ((w & colons) != 0x00003a00003a0000ull || (dg & nib) != zeros ||
            ((dg + 0x0606060606060606ull) & nib) != zeros)
            return -1;
        int h = (c[0] - '0') * 10 + (c[1] - '0'), mi = (c[3] - '0') * 10 + (c[4] - '0'),
            se = (c[6] - '0') * 10 + (c[7] - '0');
        if (h > 23 || mi > 59 || se > 59)
            return -1;
        *out = e->date_s + h * 3600 + mi * 60 + se;
        return 0;
    }
    if (fedc_parse_datetime(s, n, out))
        return -1;
    memcpy(e->date, s, 10);
    e->date_s = *out - ((*out % 86400) + 86400) % 86400;
    e->have_date = 1;
    return 0;
}

fedc_err fedc_feat_engine_parse_into(fedc_feat_engine *e, fedc_feat_row *row,
                                     const fedc_csv_record *rec, const char *file, fedc_diag *d) {
    if (!e->bound || rec->n_fields <= e->time_col) {
        fedc_diag_set(d, "%s:%ld: the features engine has no header bound for this record", file,
                      rec->line);
        return FEDC_EINVAL;
    }
    const fedc_csv_field *tf = &rec->fields[e->time_col];
    int bad = e->spec.epoch ? parse_epoch(tf->s, tf->n, &row->t)
                            : parse_datetime(e, tf->s, tf->n, &row->t);
    if (bad) {
        fedc_diag_set(d, "%s:%ld:%d: %s: '%.*s' is not a %s", file, rec->line, e->time_col + 1,
                      e->spec.time_col, (int)(tf->n > 64 ? 64 : tf->n), tf->s,
                      e->spec.epoch ? "whole number of seconds in years 1..9999 (time format "
                                      "epoch)"
                                    : "timestamp YYYY-MM-DD HH:MM:SS or YYYY-MM-DDTHH:MM:SS[Z]");
        return FEDC_EPARSE;
    }
    for (int i = 0; i < e->spec.n_win; i++) {
        const wtab *t = &e->tabs[i];
        row->key[i] = rec->fields[t->key_col].s;
        row->key_len[i] = rec->fields[t->key_col].n;
        for (int v = 0; v < t->nv; v++) {
            const fedc_csv_field *vf = &rec->fields[t->vcol[v]];
            double x = 0;
            if (fedc_parse_real(vf->s, vf->n, &x) || (t->vrate[v] && x != 0 && x != 1)) {
                char text[512];
                fedc_features_window_text(text, sizeof text, t->w);
                fedc_diag_set(d, "%s:%ld:%d: %s: '%.*s' is not %s (window '%s')", file, rec->line,
                              t->vcol[v] + 1, t->vname[v], (int)(vf->n > 64 ? 64 : vf->n), vf->s,
                              t->vrate[v] ? "0 or 1" : "a finite number", text);
                return FEDC_EPARSE;
            }
            row->val[t->v0 + v] = x;
        }
    }
    return FEDC_OK;
}

fedc_err fedc_feat_engine_parse(fedc_feat_engine *e, const fedc_csv_record *rec, const char *file,
                                fedc_diag *d) {
    return fedc_feat_engine_parse_into(e, &e->row, rec, file, d);
}

/* ---- output text -------------------------------------------------------------------------- */

size_t fedc_feat_engine_text_max(const fedc_feat_engine *e) {
    return (size_t)e->n_out * 41 + 1; /* "," and fedc_fmt_g15's 40 bytes per column */
}

size_t fedc_feat_engine_format_sep(const fedc_feat_engine *e, char *buf, const double *out,
                                   char sep) {
    return feat_format(buf, out, e->is_int, e->n_out, sep);
}

size_t fedc_feat_engine_format(const fedc_feat_engine *e, char *buf, const double *out) {
    return fedc_feat_engine_format_sep(e, buf, out, ',');
}
