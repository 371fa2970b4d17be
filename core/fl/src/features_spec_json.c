/* The JSON form of a features spec (fedc/features_spec.h), read and written with cJSON. */
#include "fedc/features_spec.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fedc/modelfile.h"

#define FORMAT_NAME "fedc-features-spec"
#define VERSION 1

static const char *const g_kinds[] = {"count", "sum", "mean", "rate"};

/* Where a key is, for messages: "windows[1].days[0]". */
typedef struct keypath {
    char s[256];
} keypath;

static fedc_err bad(fedc_diag *d, const char *name, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static fedc_err bad(fedc_diag *d, const char *name, const char *key, const char *fmt, ...) {
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    fedc_diag_set(d, "%s: key '%s': %s", name, key, what);
    return FEDC_EFORMAT;
}

/* Refuses keys of obj not in allowed (NULL-terminated). */
static fedc_err only_keys(const cJSON *obj, const char *const *allowed, const char *name,
                          const char *where, fedc_diag *d) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = it->string && strcmp(it->string, *a) == 0;
        if (!ok) {
            keypath k;
            snprintf(k.s, sizeof k.s, "%s%s%s", where, *where ? "." : "",
                     it->string ? it->string : "");
            return bad(d, name, k.s,
                       "unknown key (expected one of the spec's keys: see fedc "
                       "features --help)");
        }
    }
    return FEDC_OK;
}

static const char *get_string(const cJSON *obj, const char *key, const char *where,
                              const char *name, fedc_diag *d, fedc_err *rc) {
    keypath k;
    snprintf(k.s, sizeof k.s, "%s%s%s", where, *where ? "." : "", key);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) {
        *rc = bad(d, name, k.s, "missing");
        return NULL;
    }
    if (!cJSON_IsString(it) || !it->valuestring) {
        *rc = bad(d, name, k.s, "expected a string");
        return NULL;
    }
    return it->valuestring;
}

/* The whole number lo..hi in it (key names it in messages); 0 and *rc set when it is not one. */
static int get_int(const cJSON *it, int lo, int hi, const char *key, const char *name, fedc_diag *d,
                   fedc_err *rc) {
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
        it->valuedouble != floor(it->valuedouble) || it->valuedouble < lo || it->valuedouble > hi) {
        char got[64];
        if (cJSON_IsNumber(it))
            snprintf(got, sizeof got, "%.17g", it->valuedouble);
        else
            snprintf(got, sizeof got, "%s", cJSON_IsString(it) ? "a string" : "not a number");
        *rc = bad(d, name, key, "expected whole days in %d..%d, got %s", lo, hi, got);
        return 0;
    }
    return (int)it->valuedouble;
}

static fedc_err read_window(fedc_feat_window *w, const cJSON *o, int i, const char *name,
                            fedc_diag *d) {
    keypath k;
    struct {
        char s[32];
    } at;
    snprintf(at.s, sizeof at.s, "windows[%d]", i);
    if (!cJSON_IsObject(o))
        return bad(d, name, at.s, "expected an object");
    static const char *const keys[] = {"entity", "days", "delay_days", "aggregates", NULL};
    fedc_err rc = only_keys(o, keys, name, at.s, d);
    if (rc)
        return rc;
    memset(w, 0, sizeof *w);
    w->entity = (char *)get_string(o, "entity", at.s, name, d, &rc);
    if (!w->entity)
        return rc;
    const cJSON *days = cJSON_GetObjectItemCaseSensitive(o, "days");
    snprintf(k.s, sizeof k.s, "%s.days", at.s);
    if (!cJSON_IsArray(days) || cJSON_GetArraySize(days) < 1 ||
        cJSON_GetArraySize(days) > FEDC_FEAT_MAX_DURS)
        return bad(d, name, k.s, "%s",
                   days ? "expected an array of 1 to 32 whole days" : "missing");
    for (const cJSON *it = days->child; it; it = it->next) {
        snprintf(k.s, sizeof k.s, "%s.days[%d]", at.s, w->n_dur);
        w->days[w->n_dur] = get_int(it, 1, FEDC_FEAT_MAX_DAYS, k.s, name, d, &rc);
        if (rc)
            return rc;
        for (int j = 0; j < w->n_dur; j++)
            if (w->days[j] == w->days[w->n_dur])
                return bad(d, name, k.s, "duration %d given twice", w->days[j]);
        w->n_dur++;
    }
    const cJSON *delay = cJSON_GetObjectItemCaseSensitive(o, "delay_days");
    if (delay) {
        snprintf(k.s, sizeof k.s, "%s.delay_days", at.s);
        w->delay_days = get_int(delay, 0, FEDC_FEAT_MAX_DAYS, k.s, name, d, &rc);
        if (rc)
            return rc;
    }
    const cJSON *aggs = cJSON_GetObjectItemCaseSensitive(o, "aggregates");
    snprintf(k.s, sizeof k.s, "%s.aggregates", at.s);
    if (!cJSON_IsArray(aggs) || cJSON_GetArraySize(aggs) < 1 ||
        cJSON_GetArraySize(aggs) > FEDC_FEAT_MAX_AGGS)
        return bad(d, name, k.s, "%s",
                   aggs ? "expected an array of 1 to 16 aggregates" : "missing");
    for (const cJSON *it = aggs->child; it; it = it->next) {
        struct {
            char s[96];
        } ak;
        snprintf(ak.s, sizeof ak.s, "%s.aggregates[%d]", at.s, w->n_agg);
        if (!cJSON_IsObject(it))
            return bad(d, name, ak.s, "expected an object {\"kind\": ..., \"column\": ...}");
        static const char *const akeys[] = {"kind", "column", NULL};
        if ((rc = only_keys(it, akeys, name, ak.s, d)))
            return rc;
        const char *kind = get_string(it, "kind", ak.s, name, d, &rc);
        if (!kind)
            return rc;
        fedc_feat_agg *a = &w->aggs[w->n_agg];
        int found = -1;
        for (int j = 0; j < 4; j++)
            if (strcmp(kind, g_kinds[j]) == 0)
                found = j;
        snprintf(k.s, sizeof k.s, "%s.kind", ak.s);
        if (found < 0)
            return bad(d, name, k.s, "expected count, sum, mean or rate, got '%.64s'", kind);
        a->kind = (fedc_feat_agg_kind)found;
        const cJSON *col = cJSON_GetObjectItemCaseSensitive(it, "column");
        snprintf(k.s, sizeof k.s, "%s.column", ak.s);
        if (a->kind == FEDC_FEAT_COUNT && col)
            return bad(d, name, k.s, "count takes no column");
        if (a->kind != FEDC_FEAT_COUNT) {
            if (!(a->col = (char *)get_string(it, "column", ak.s, name, d, &rc)))
                return rc;
        }
        w->n_agg++;
    }
    return FEDC_OK;
}

fedc_err fedc_features_spec_from_json(fedc_features_spec *out, const char *json, const char *name,
                                      fedc_diag *d) {
    fedc_features_spec_init(out);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root) {
        /* line and column of where the parser stopped */
        long line = 1, col = 1;
        const char *stop = end ? end : cJSON_GetErrorPtr();
        for (const char *p = json; stop && *p && p < stop; p++) {
            if (*p == '\n')
                line++, col = 1;
            else
                col++;
        }
        fedc_diag_set(d, "%s:%ld:%ld: not valid JSON (a features spec is one JSON object)", name,
                      line, col);
        return FEDC_EPARSE;
    }
    fedc_err rc = FEDC_OK;
    if (!cJSON_IsObject(root)) {
        fedc_diag_set(d, "%s: a features spec is a JSON object", name);
        rc = FEDC_EFORMAT;
        goto out;
    }
    static const char *const keys[] = {"format",   "version", "time", "time_format",
                                       "calendar", "windows", NULL};
    if ((rc = only_keys(root, keys, name, "", d)))
        goto out;
    const char *fmt = get_string(root, "format", "", name, d, &rc);
    if (!fmt)
        goto out;
    if (strcmp(fmt, FORMAT_NAME) != 0) {
        rc = bad(d, name, "format", "expected \"%s\", got \"%.64s\"", FORMAT_NAME, fmt);
        goto out;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!cJSON_IsNumber(ver) || ver->valuedouble != VERSION) {
        rc = bad(d, name, "version", "%s (this fedc reads version %d)",
                 ver ? "unsupported version" : "missing", VERSION);
        goto out;
    }
    const char *time = get_string(root, "time", "", name, d, &rc);
    if (!time)
        goto out;
    if (!*time || strlen(time) > FEDC_FEAT_MAX_NAME) {
        rc = bad(d, name, "time", "expected a column name of 1..%d bytes", FEDC_FEAT_MAX_NAME);
        goto out;
    }
    const char *tf = get_string(root, "time_format", "", name, d, &rc);
    if (!tf)
        goto out;
    if (strcmp(tf, "datetime") != 0 && strcmp(tf, "epoch") != 0) {
        rc = bad(d, name, "time_format", "expected \"datetime\" or \"epoch\", got \"%.64s\"", tf);
        goto out;
    }
    const cJSON *cal = cJSON_GetObjectItemCaseSensitive(root, "calendar");
    if (!cJSON_IsBool(cal)) {
        rc = bad(d, name, "calendar", "%s", cal ? "expected true or false" : "missing");
        goto out;
    }
    const cJSON *wins = cJSON_GetObjectItemCaseSensitive(root, "windows");
    if (!cJSON_IsArray(wins) || cJSON_GetArraySize(wins) > FEDC_FEAT_MAX_WINDOWS) {
        rc = bad(d, name, "windows", "%s",
                 wins ? "expected an array of at most 64 window specs" : "missing");
        goto out;
    }
    if ((rc = fedc_features_spec_set_time(out, time, d)))
        goto out;
    out->epoch = strcmp(tf, "epoch") == 0;
    out->calendar = cJSON_IsTrue(cal);
    int i = 0;
    for (const cJSON *it = wins->child; it; it = it->next, i++) {
        fedc_feat_window w;
        if ((rc = read_window(&w, it, i, name, d)))
            goto out;
        fedc_diag wd = {{0}};
        if ((rc = fedc_features_spec_add_window(out, &w, &wd))) {
            keypath k;
            snprintf(k.s, sizeof k.s, "windows[%d]", i);
            if (rc != FEDC_ENOMEM)
                rc = bad(d, name, k.s, "%s", wd.msg);
            else
                fedc_diag_set(d, "%s: out of memory", name);
            goto out;
        }
    }
    if (out->n_win == 0 && !out->calendar) {
        rc = bad(d, name, "windows", "nothing to compute: no window spec and calendar false");
        goto out;
    }
out:
    cJSON_Delete(root);
    return rc;
}

fedc_err fedc_features_spec_load(fedc_features_spec *out, const char *path, fedc_diag *d) {
    fedc_features_spec_init(out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fedc_diag_set(d, "%s: cannot open: %s", path, strerror(errno));
        return FEDC_EIO;
    }
    fedc_err rc = FEDC_EIO;
    char *buf = malloc(FEDC_FEATURES_SPEC_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, FEDC_FEATURES_SPEC_MAX_BYTES + 1, f) : 0;
    if (!buf) {
        fedc_diag_set(d, "%s: out of memory", path);
        rc = FEDC_ENOMEM;
    } else if (ferror(f)) {
        fedc_diag_set(d, "%s: cannot read: %s", path, strerror(errno));
    } else if (n > FEDC_FEATURES_SPEC_MAX_BYTES) {
        fedc_diag_set(d, "%s: larger than %u bytes: not a features spec", path,
                      FEDC_FEATURES_SPEC_MAX_BYTES);
        rc = FEDC_EFORMAT;
    } else if (memchr(buf, 0, n)) {
        fedc_diag_set(d, "%s: holds a NUL byte: not a features spec (JSON text)", path);
        rc = FEDC_EPARSE;
    } else {
        buf[n] = 0;
        rc = fedc_features_spec_from_json(out, buf, path, d);
    }
    free(buf);
    fclose(f);
    return rc;
}

/* Adds item to obj (or arr when key is NULL); a NULL item or a failed add marks *failed. */
static void add(cJSON *to, const char *key, cJSON *item, int *failed) {
    int ok = item && (key ? cJSON_AddItemToObject(to, key, item) : cJSON_AddItemToArray(to, item));
    if (!ok) {
        cJSON_Delete(item);
        *failed = 1;
    }
}

fedc_err fedc_features_spec_to_json(char **out, const fedc_features_spec *s) {
    *out = NULL;
    if (!s->time_col)
        return FEDC_EINVAL;
    int failed = 0;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return FEDC_ENOMEM;
    add(root, "format", cJSON_CreateString(FORMAT_NAME), &failed);
    add(root, "version", cJSON_CreateNumber(VERSION), &failed);
    add(root, "time", cJSON_CreateString(s->time_col), &failed);
    add(root, "time_format", cJSON_CreateString(s->epoch ? "epoch" : "datetime"), &failed);
    add(root, "calendar", cJSON_CreateBool(s->calendar), &failed);
    cJSON *wins = cJSON_CreateArray();
    for (int i = 0; wins && i < s->n_win; i++) {
        const fedc_feat_window *w = &s->win[i];
        cJSON *o = cJSON_CreateObject(), *days = cJSON_CreateIntArray(w->days, w->n_dur),
              *aggs = cJSON_CreateArray();
        if (o) {
            add(o, "entity", cJSON_CreateString(w->entity), &failed);
            add(o, "days", days, &failed);
            days = NULL;
            add(o, "delay_days", cJSON_CreateNumber(w->delay_days), &failed);
            for (int a = 0; aggs && a < w->n_agg; a++) {
                cJSON *ag = cJSON_CreateObject();
                if (ag) {
                    add(ag, "kind", cJSON_CreateString(g_kinds[w->aggs[a].kind]), &failed);
                    if (w->aggs[a].col)
                        add(ag, "column", cJSON_CreateString(w->aggs[a].col), &failed);
                }
                add(aggs, NULL, ag, &failed);
            }
            add(o, "aggregates", aggs, &failed);
            aggs = NULL;
        }
        cJSON_Delete(days);
        cJSON_Delete(aggs);
        add(wins, NULL, o, &failed);
    }
    add(root, "windows", wins, &failed);
    char *text = failed ? NULL : cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return FEDC_ENOMEM;
    size_t n = strlen(text);
    char *withnl = malloc(n + 2);
    if (withnl) {
        memcpy(withnl, text, n);
        withnl[n] = '\n';
        withnl[n + 1] = 0;
    }
    cJSON_free(text);
    if (!withnl)
        return FEDC_ENOMEM;
    *out = withnl;
    return FEDC_OK;
}

fedc_err fedc_features_spec_save(const fedc_features_spec *s, const char *path, fedc_diag *d) {
    char *text = NULL;
    fedc_err rc = fedc_features_spec_to_json(&text, s);
    if (rc) {
        fedc_diag_set(d, "%s: %s", path,
                      rc == FEDC_EINVAL ? "the spec has no time column" : "out of memory");
        return rc;
    }
    rc = fedc_write_atomic(path, text, strlen(text), d);
    free(text);
    return rc;
}
