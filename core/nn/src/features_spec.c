/* The features spec (fedc/features.h): the window specs' text form, parsed and written back, the
 * output column names, equality. The JSON form lives in core/fl (fedc/features_spec.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/features.h"

static const char *const g_agg_word[] = {"COUNT", "SUM", "MEAN", "RATE"};
static const char *const g_agg_text[] = {"count", "sum", "mean", "rate"};

void fedc_features_spec_init(fedc_features_spec *s) {
    memset(s, 0, sizeof *s);
}

static void window_release(fedc_feat_window *w) {
    free(w->entity);
    for (int a = 0; a < w->n_agg; a++)
        free(w->aggs[a].col);
    memset(w, 0, sizeof *w);
}

void fedc_features_spec_release(fedc_features_spec *s) {
    if (!s)
        return;
    free(s->time_col);
    for (int i = 0; i < s->n_win; i++)
        window_release(&s->win[i]);
    free(s->win);
    fedc_features_spec_init(s);
}

static char *dup_n(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = 0;
    }
    return c;
}

/* A column name a spec may hold: not empty, at most FEDC_FEAT_MAX_NAME bytes, none of the spec
 * text's separators (so that the text form gives the same spec back) nor control characters. */
static int name_ok(const char *s, size_t n) {
    if (n == 0 || n > FEDC_FEAT_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':' || s[i] == ',' || s[i] == ';' || s[i] == '=' ||
            (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

fedc_err fedc_features_spec_set_time(fedc_features_spec *s, const char *col, fedc_diag *d) {
    size_t n = col ? strlen(col) : 0;
    if (n == 0 || n > FEDC_FEAT_MAX_NAME) {
        fedc_diag_set(d, "time column '%.64s': expected a name of 1..%d bytes", col ? col : "",
                      FEDC_FEAT_MAX_NAME);
        return FEDC_EINVAL;
    }
    char *c = dup_n(col, n);
    if (!c) {
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    free(s->time_col);
    s->time_col = c;
    return FEDC_OK;
}

/* A days count lo..FEDC_FEAT_MAX_DAYS from s[0..n). */
static int parse_days(const char *s, size_t n, int lo, int *out) {
    if (n == 0 || n > 4)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > FEDC_FEAT_MAX_DAYS)
        return -1;
    *out = v;
    return 0;
}

/* Checks a window (from text or from JSON) and fills what its aggregates need. */
static fedc_err window_check(const fedc_feat_window *w, const char *orig, fedc_diag *d) {
    if (!w->entity || !name_ok(w->entity, strlen(w->entity))) {
        fedc_diag_set(d,
                      "'%s': the entity column must be a name of 1..%d bytes without : , ; =", orig,
                      FEDC_FEAT_MAX_NAME);
        return FEDC_EPARSE;
    }
    if (w->n_dur < 1 || w->n_dur > FEDC_FEAT_MAX_DURS) {
        fedc_diag_set(d, "'%s': durations must be 1 to %d whole days in 1..%d", orig,
                      FEDC_FEAT_MAX_DURS, FEDC_FEAT_MAX_DAYS);
        return FEDC_EPARSE;
    }
    for (int k = 0; k < w->n_dur; k++) {
        if (w->days[k] < 1 || w->days[k] > FEDC_FEAT_MAX_DAYS) {
            fedc_diag_set(d, "'%s': durations must be whole days in 1..%d, got %d", orig,
                          FEDC_FEAT_MAX_DAYS, w->days[k]);
            return FEDC_EPARSE;
        }
        for (int j = 0; j < k; j++)
            if (w->days[j] == w->days[k]) {
                fedc_diag_set(d, "'%s': duration %d given twice", orig, w->days[k]);
                return FEDC_EPARSE;
            }
    }
    if (w->n_agg < 1 || w->n_agg > FEDC_FEAT_MAX_AGGS) {
        fedc_diag_set(d, "'%s': expected 1 to %d aggregates", orig, FEDC_FEAT_MAX_AGGS);
        return FEDC_EPARSE;
    }
    for (int a = 0; a < w->n_agg; a++) {
        const fedc_feat_agg *g = &w->aggs[a];
        int needs = g->kind != FEDC_FEAT_COUNT;
        if ((unsigned)g->kind > FEDC_FEAT_RATE || needs != (g->col != NULL) ||
            (g->col && !name_ok(g->col, strlen(g->col)))) {
            fedc_diag_set(d,
                          "'%s': aggregate %d is not count, sum=COL, mean=COL or rate=COL (COL "
                          "a name of 1..%d bytes without : , ; =)",
                          orig, a + 1, FEDC_FEAT_MAX_NAME);
            return FEDC_EPARSE;
        }
    }
    if (w->delay_days < 0 || w->delay_days > FEDC_FEAT_MAX_DAYS) {
        fedc_diag_set(d, "'%s': the delay must be whole days in 0..%d, got %d", orig,
                      FEDC_FEAT_MAX_DAYS, w->delay_days);
        return FEDC_EPARSE;
    }
    return FEDC_OK;
}

static int window_copy(fedc_feat_window *dst, const fedc_feat_window *w) {
    *dst = *w;
    dst->entity = NULL;
    for (int a = 0; a < w->n_agg; a++)
        dst->aggs[a].col = NULL;
    if (!(dst->entity = dup_n(w->entity, strlen(w->entity))))
        return -1;
    for (int a = 0; a < w->n_agg; a++)
        if (w->aggs[a].col && !(dst->aggs[a].col = dup_n(w->aggs[a].col, strlen(w->aggs[a].col))))
            return -1;
    return 0;
}

static fedc_err append(fedc_features_spec *s, const fedc_feat_window *w, fedc_diag *d) {
    if (s->n_win >= FEDC_FEAT_MAX_WINDOWS) {
        fedc_diag_set(d, "more than %d window specs", FEDC_FEAT_MAX_WINDOWS);
        return FEDC_ERANGE;
    }
    fedc_feat_window *nw = realloc(s->win, (size_t)(s->n_win + 1) * sizeof *nw);
    if (!nw) {
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    s->win = nw;
    if (window_copy(&nw[s->n_win], w)) {
        window_release(&nw[s->n_win]);
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    s->n_win++;
    return FEDC_OK;
}

fedc_err fedc_features_spec_add_window(fedc_features_spec *s, const fedc_feat_window *w,
                                       fedc_diag *d) {
    char orig[512];
    fedc_features_window_text(orig, sizeof orig, w);
    fedc_err rc = window_check(w, orig, d);
    return rc ? rc : append(s, w, d);
}

/* One spec ENTITY:D1,D2:AGG,AGG[:delay=L] from text (cut in place); orig is the text as given,
 * for messages. The window's strings point into text. */
static fedc_err parse_one(fedc_feat_window *w, char *text, const char *orig, fedc_diag *d) {
    memset(w, 0, sizeof *w);
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
        fedc_diag_set(d, "'%s': expected ENTITY:D1,D2,...:AGG,...[:delay=L]", orig);
        return FEDC_EPARSE;
    }
    if (!*part[0]) {
        fedc_diag_set(d, "'%s': empty entity column", orig);
        return FEDC_EPARSE;
    }
    w->entity = part[0];
    for (char *p = part[1];;) {
        char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (w->n_dur == FEDC_FEAT_MAX_DURS || parse_days(p, n, 1, &w->days[w->n_dur])) {
            fedc_diag_set(d, "'%s': durations must be at most %d whole days in 1..%d, got '%s'",
                          orig, FEDC_FEAT_MAX_DURS, FEDC_FEAT_MAX_DAYS, part[1]);
            return FEDC_EPARSE;
        }
        for (int k = 0; k < w->n_dur; k++)
            if (w->days[k] == w->days[w->n_dur]) {
                fedc_diag_set(d, "'%s': duration %d given twice", orig, w->days[k]);
                return FEDC_EPARSE;
            }
        w->n_dur++;
        if (!c)
            break;
        p = c + 1;
    }
    for (char *p = part[2];;) {
        char *c = strchr(p, ',');
        if (c)
            *c = 0;
        fedc_feat_agg *a = &w->aggs[w->n_agg];
        char *eq = strchr(p, '=');
        size_t wl = eq ? (size_t)(eq - p) : strlen(p);
        int ok = w->n_agg < FEDC_FEAT_MAX_AGGS;
        if (ok && !eq && strcmp(p, "count") == 0) {
            a->kind = FEDC_FEAT_COUNT;
        } else if (ok && eq && eq[1] && name_ok(eq + 1, strlen(eq + 1))) {
            a->col = eq + 1;
            if (wl == 3 && strncmp(p, "sum", 3) == 0)
                a->kind = FEDC_FEAT_SUM;
            else if (wl == 4 && strncmp(p, "mean", 4) == 0)
                a->kind = FEDC_FEAT_MEAN;
            else if (wl == 4 && strncmp(p, "rate", 4) == 0)
                a->kind = FEDC_FEAT_RATE;
            else
                ok = 0;
        } else {
            ok = 0;
        }
        if (!ok) {
            fedc_diag_set(d,
                          "'%s': aggregate '%s' is not count, sum=COL, mean=COL or rate=COL (at "
                          "most %d)",
                          orig, p, FEDC_FEAT_MAX_AGGS);
            return FEDC_EPARSE;
        }
        w->n_agg++;
        if (!c)
            break;
        p = c + 1;
    }
    if (np == 4 && (strncmp(part[3], "delay=", 6) != 0 ||
                    parse_days(part[3] + 6, strlen(part[3] + 6), 0, &w->delay_days))) {
        fedc_diag_set(d, "'%s': '%s' is not delay=L with L whole days in 0..%d", orig, part[3],
                      FEDC_FEAT_MAX_DAYS);
        return FEDC_EPARSE;
    }
    return window_check(w, orig, d);
}

fedc_err fedc_features_spec_add_windows(fedc_features_spec *s, const char *text, fedc_diag *d) {
    /* work is cut at ';' and ':' while parsing, orig only at ';' so that each spec's own text
     * stays whole for the messages */
    char *work = dup_n(text, strlen(text)), *orig = dup_n(text, strlen(text));
    int n0 = s->n_win;
    fedc_err rc = FEDC_OK;
    if (!work || !orig) {
        fedc_diag_set(d, "out of memory");
        rc = FEDC_ENOMEM;
        goto out;
    }
    for (char *p = work, *q = orig;;) {
        char *sc = strchr(p, ';'), *sq = strchr(q, ';');
        if (sc)
            *sc = 0, *sq = 0;
        fedc_feat_window w;
        if ((rc = parse_one(&w, p, q, d)) || (rc = append(s, &w, d)))
            goto out;
        if (!sc)
            break;
        p = sc + 1;
        q = sq + 1;
    }
out:
    if (rc)
        while (s->n_win > n0)
            window_release(&s->win[--s->n_win]);
    free(work);
    free(orig);
    return rc;
}

/* Appends s[0..n) at *len, which grows by n even where buf (cap bytes) is full. */
static void put(char *buf, size_t cap, size_t *len, const char *s, size_t n) {
    if (*len < cap)
        memcpy(buf + *len, s, n < cap - *len ? n : cap - *len);
    *len += n;
}

static void put_str(char *buf, size_t cap, size_t *len, const char *s) {
    put(buf, cap, len, s, strlen(s));
}

static void put_int(char *buf, size_t cap, size_t *len, int v) {
    char tmp[16];
    int n = snprintf(tmp, sizeof tmp, "%d", v);
    put(buf, cap, len, tmp, n > 0 ? (size_t)n : 0);
}

static size_t window_text(char *buf, size_t cap, size_t len, const fedc_feat_window *w) {
    put_str(buf, cap, &len, w->entity ? w->entity : "");
    for (int k = 0; k < w->n_dur; k++) {
        put_str(buf, cap, &len, k ? "," : ":");
        put_int(buf, cap, &len, w->days[k]);
    }
    for (int a = 0; a < w->n_agg; a++) {
        unsigned kind = (unsigned)w->aggs[a].kind <= FEDC_FEAT_RATE ? w->aggs[a].kind : 0;
        put_str(buf, cap, &len, a ? "," : ":");
        put_str(buf, cap, &len, g_agg_text[kind]);
        if (w->aggs[a].col) {
            put_str(buf, cap, &len, "=");
            put_str(buf, cap, &len, w->aggs[a].col);
        }
    }
    if (w->delay_days) {
        put_str(buf, cap, &len, ":delay=");
        put_int(buf, cap, &len, w->delay_days);
    }
    return len;
}

static size_t terminate(char *buf, size_t cap, size_t len) {
    if (cap)
        buf[len < cap ? len : cap - 1] = 0;
    return len;
}

size_t fedc_features_window_text(char *buf, size_t cap, const fedc_feat_window *w) {
    return terminate(buf, cap, window_text(buf, cap, 0, w));
}

size_t fedc_features_windows_text(char *buf, size_t cap, const fedc_features_spec *s) {
    size_t len = 0;
    for (int i = 0; i < s->n_win; i++) {
        if (i)
            put_str(buf, cap, &len, ";");
        len = window_text(buf, cap, len, &s->win[i]);
    }
    return terminate(buf, cap, len);
}

static int str_eq(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

int fedc_features_spec_equal(const fedc_features_spec *a, const fedc_features_spec *b) {
    if (!str_eq(a->time_col, b->time_col) || !a->epoch != !b->epoch ||
        !a->calendar != !b->calendar || a->n_win != b->n_win)
        return 0;
    for (int i = 0; i < a->n_win; i++) {
        const fedc_feat_window *x = &a->win[i], *y = &b->win[i];
        if (!str_eq(x->entity, y->entity) || x->n_dur != y->n_dur || x->n_agg != y->n_agg ||
            x->delay_days != y->delay_days ||
            memcmp(x->days, y->days, (size_t)x->n_dur * sizeof x->days[0]) != 0)
            return 0;
        for (int g = 0; g < x->n_agg; g++)
            if (x->aggs[g].kind != y->aggs[g].kind || !str_eq(x->aggs[g].col, y->aggs[g].col))
                return 0;
    }
    return 1;
}

int fedc_features_n_columns(const fedc_features_spec *s) {
    int n = s->calendar ? 2 : 0;
    for (int i = 0; i < s->n_win; i++)
        n += s->win[i].n_dur * s->win[i].n_agg;
    return n;
}

size_t fedc_features_column_name(char *buf, size_t cap, const fedc_features_spec *s, int i) {
    if (s->calendar) {
        if (i < 2)
            return (size_t)snprintf(buf, cap, "%s", i == 0 ? "TX_WEEKEND" : "TX_NIGHT");
        i -= 2;
    }
    for (int w = 0; w < s->n_win; w++) {
        const fedc_feat_window *win = &s->win[w];
        int n = win->n_dur * win->n_agg;
        if (i >= n) {
            i -= n;
            continue;
        }
        int k = i / win->n_agg;
        const fedc_feat_agg *a = &win->aggs[i % win->n_agg];
        return (size_t)snprintf(buf, cap, "%s_%s%s%s_%dD", win->entity, g_agg_word[a->kind],
                                a->col ? "_" : "", a->col ? a->col : "", win->days[k]);
    }
    return (size_t)snprintf(buf, cap, "%s", "");
}
