/* A model's data recipe and the loader encoding in it (fedc/recipe.h), through cJSON. */
#include "fedc/recipe.h"

#include "fedc/features_spec.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *str_array(const char *const *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *s = cJSON_CreateString(v[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

/* Adds item to o under key; on failure deletes it and marks *bad. */
static void put(cJSON *o, const char *key, cJSON *item, int *bad) {
    if (!item || !cJSON_AddItemToObject(o, key, item)) {
        cJSON_Delete(item);
        *bad = 1;
    }
}

char *fedc_encoding_json(const fedc_encoding *e, int full) {
    fedc_encoding def;
    if (!e) {
        fedc_encoding_init(&def);
        e = &def;
    }
    cJSON *o = cJSON_CreateObject();
    int bad = !o;
    if (!bad) {
        put(o, "missing", cJSON_CreateString(fedc_missing_name(e->missing)), &bad);
        if (e->missing == FEDC_MISSING_ERROR || e->ind_mode == FEDC_IND_NONE)
            put(o, "indicators", cJSON_CreateString("none"), &bad);
        else if (e->ind_mode == FEDC_IND_ALL)
            put(o, "indicators", cJSON_CreateString("all"), &bad);
        else
            put(o, "indicators", str_array(e->indicators, e->n_indicators), &bad);
        put(o, "categorical", str_array(e->categorical, e->n_categorical), &bad);
        char key[33];
        fedc_hash_key_format(key, e->hash_key);
        put(o, "hash", cJSON_CreateString(FEDC_HASH_NAME), &bad);
        put(o, "hash_key", cJSON_CreateString(key), &bad);
        put(o, "hash_buckets", cJSON_CreateNumber(e->hash_buckets), &bad);
    }
    if (!bad && full) {
        char delim[2] = {e->delimiter ? e->delimiter : ',', '\0'};
        put(o, "delimiter", cJSON_CreateString(delim), &bad);
        put(o, "positive", e->positive ? cJSON_CreateString(e->positive) : cJSON_CreateNull(),
            &bad);
        if (e->missing == FEDC_MISSING_MEAN && e->impute) {
            cJSON *a = cJSON_CreateArray();
            for (int j = 0; a && j < e->n_impute; j++) {
                cJSON *v = cJSON_CreateNumber((double)e->impute[j]);
                if (!v || !cJSON_AddItemToArray(a, v)) {
                    cJSON_Delete(v);
                    cJSON_Delete(a);
                    a = NULL;
                }
            }
            put(o, "impute", a, &bad);
        }
    }
    char *text = bad ? NULL : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

void fedc_recipe_enc_release(fedc_recipe_enc *r) {
    for (int i = 0; r->categorical && i < r->enc.n_categorical; i++)
        free(r->categorical[i]);
    for (int i = 0; r->indicators && i < r->enc.n_indicators; i++)
        free(r->indicators[i]);
    free(r->categorical);
    free(r->indicators);
    free(r->positive);
    free(r->impute);
    memset(r, 0, sizeof *r);
}

static char *dup(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

/* Copies a JSON array of strings; -1 not such an array, -2 out of memory. */
static int get_strings(char ***out, int *n, const cJSON *a) {
    if (!cJSON_IsArray(a))
        return -1;
    int k = cJSON_GetArraySize(a);
    *out = calloc((size_t)(k ? k : 1), sizeof **out);
    if (!*out)
        return -2;
    *n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it))
            return -1;
        if (!((*out)[(*n)++] = dup(it->valuestring)))
            return -2;
    }
    return 0;
}

fedc_err fedc_encoding_from_json(fedc_recipe_enc *out, const char *json, fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    const char *bad = NULL;
    memset(out, 0, sizeof *out);
    fedc_encoding_init(&out->enc);
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsObject(o)) {
        fedc_diag_set(d, "encoding: expected a JSON object");
        rc = FEDC_EPARSE;
        goto out;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "missing");
    if (!cJSON_IsString(v) || fedc_missing_parse(&out->enc.missing, v->valuestring)) {
        bad = "missing";
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "indicators");
    if (cJSON_IsString(v) && strcmp(v->valuestring, "all") == 0) {
        out->enc.ind_mode = FEDC_IND_ALL;
    } else if (cJSON_IsString(v) && strcmp(v->valuestring, "none") == 0) {
        out->enc.ind_mode = FEDC_IND_NONE;
    } else {
        int g = get_strings(&out->indicators, &out->enc.n_indicators, v);
        if (g) {
            bad = g == -1 ? "indicators" : NULL;
            rc = g == -1 ? FEDC_EPARSE : FEDC_ENOMEM;
            goto out;
        }
        out->enc.ind_mode = FEDC_IND_LIST;
        out->enc.indicators = (const char *const *)out->indicators;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "categorical");
    int g = get_strings(&out->categorical, &out->enc.n_categorical, v);
    if (g) {
        bad = g == -1 ? "categorical" : NULL;
        rc = g == -1 ? FEDC_EPARSE : FEDC_ENOMEM;
        goto out;
    }
    out->enc.categorical = (const char *const *)out->categorical;
    v = cJSON_GetObjectItemCaseSensitive(o, "hash");
    if (!cJSON_IsString(v) || strcmp(v->valuestring, FEDC_HASH_NAME) != 0) {
        bad = "hash";
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "hash_key");
    if (!cJSON_IsString(v) || fedc_hash_key_parse(out->enc.hash_key, v->valuestring)) {
        bad = "hash_key";
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "hash_buckets");
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 2 ||
        v->valuedouble > FEDC_HASH_BUCKETS_MAX) {
        bad = "hash_buckets";
        goto out;
    }
    out->enc.hash_buckets = (int)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(o, "delimiter");
    if (v) {
        if (!cJSON_IsString(v) || strlen(v->valuestring) != 1) {
            bad = "delimiter";
            goto out;
        }
        out->enc.delimiter = v->valuestring[0];
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "positive");
    if (cJSON_IsString(v)) {
        if (!(out->positive = dup(v->valuestring))) {
            rc = FEDC_ENOMEM;
            goto out;
        }
        out->enc.positive = out->positive;
    } else if (v && !cJSON_IsNull(v)) {
        bad = "positive";
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "impute");
    if (v) {
        int k = cJSON_GetArraySize(v);
        if (!cJSON_IsArray(v)) {
            bad = "impute";
            goto out;
        }
        if (!(out->impute = malloc(sizeof(float) * (size_t)(k ? k : 1)))) {
            rc = FEDC_ENOMEM;
            goto out;
        }
        int j = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            if (!cJSON_IsNumber(it) || !isfinite((float)it->valuedouble)) {
                bad = "impute";
                goto out;
            }
            out->impute[j++] = (float)it->valuedouble;
        }
        out->enc.impute = out->impute;
        out->enc.n_impute = k;
    }
out:
    if (bad) {
        fedc_diag_set(d, "encoding: key \"%s\" is missing or holds an unexpected value", bad);
        rc = FEDC_EPARSE;
    } else if (rc == FEDC_ENOMEM) {
        fedc_diag_set(d, "encoding: out of memory");
    }
    cJSON_Delete(o);
    if (rc)
        fedc_recipe_enc_release(out);
    return rc;
}

/* "[A, B]" of a list of names, cut to fit cap. */
static void list_text(char *out, size_t cap, const fedc_encoding *e) {
    size_t len = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < e->n_categorical && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? ", " : "", e->categorical[i]);
    if (len < cap)
        snprintf(out + len, cap - len, "]");
}

static void ind_text(char *out, size_t cap, const fedc_encoding *e) {
    if (e->missing == FEDC_MISSING_ERROR || e->ind_mode == FEDC_IND_NONE) {
        snprintf(out, cap, "none");
    } else if (e->ind_mode == FEDC_IND_ALL) {
        snprintf(out, cap, "all");
    } else {
        size_t len = 0;
        out[0] = '\0';
        for (int i = 0; i < e->n_indicators && len < cap; i++)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", e->indicators[i]);
    }
}

int fedc_encoding_differs(const char *mine, const char *federation, char *why, size_t cap) {
    fedc_recipe_enc a, b;
    fedc_diag d;
    int ea = mine && *mine ? fedc_encoding_from_json(&a, mine, &d) != FEDC_OK : 0;
    if (!(mine && *mine))
        memset(&a, 0, sizeof a), fedc_encoding_init(&a.enc);
    int eb = federation && *federation ? fedc_encoding_from_json(&b, federation, &d) != FEDC_OK : 0;
    if (!(federation && *federation))
        memset(&b, 0, sizeof b), fedc_encoding_init(&b.enc);
    int differs = 1;
    char t1[256], t2[256];
    const fedc_encoding *x = &a.enc, *y = &b.enc;
    if (ea || eb) {
        snprintf(why, cap, "the %s encoding cannot be read", ea ? "client's" : "federation's");
    } else if (x->missing != y->missing) {
        snprintf(why, cap, "missing values --missing %s, the federation uses --missing %s",
                 fedc_missing_name(x->missing), fedc_missing_name(y->missing));
    } else if ((ind_text(t1, sizeof t1, x), ind_text(t2, sizeof t2, y), strcmp(t1, t2) != 0)) {
        snprintf(why, cap, "missing-value indicators for %s, the federation has them for %s", t1,
                 t2);
    } else if ((list_text(t1, sizeof t1, x), list_text(t2, sizeof t2, y), strcmp(t1, t2) != 0)) {
        snprintf(why, cap, "categorical columns %s, the federation uses %s", t1, t2);
    } else if (x->n_categorical > 0 && x->hash_buckets != y->hash_buckets) {
        snprintf(why, cap, "categorical column %s hashed into %d buckets, the federation uses %d",
                 x->categorical[0], x->hash_buckets, y->hash_buckets);
    } else if (x->n_categorical > 0 && memcmp(x->hash_key, y->hash_key, 16) != 0) {
        fedc_hash_key_format(t1, x->hash_key);
        fedc_hash_key_format(t2, y->hash_key);
        snprintf(why, cap,
                 "categorical column %s hashed with --hash-key %s, the federation uses %s",
                 x->categorical[0], t1, t2);
    } else {
        differs = 0;
    }
    if (!ea)
        fedc_recipe_enc_release(&a);
    if (!eb)
        fedc_recipe_enc_release(&b);
    return differs;
}

/* Line and column (from 1) of byte off of text. */
static void line_col(const char *text, size_t off, long *line, long *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

fedc_err fedc_features_spec_read(char **out, const char *path, fedc_diag *d) {
    fedc_err rc = FEDC_OK;
    char *buf = NULL;
    cJSON *o = NULL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fedc_diag_set(d, "%s: cannot open: %s", path, strerror(errno));
        return FEDC_EIO;
    }
    buf = malloc(FEDC_SPEC_MAX_BYTES + 1);
    if (!buf) {
        rc = FEDC_ENOMEM;
        fedc_diag_set(d, "%s: out of memory", path);
        goto out;
    }
    size_t n = fread(buf, 1, FEDC_SPEC_MAX_BYTES + 1, f);
    if (ferror(f)) {
        fedc_diag_set(d, "%s: cannot read: %s", path, strerror(errno));
        rc = FEDC_EIO;
        goto out;
    }
    if (n > FEDC_SPEC_MAX_BYTES) {
        fedc_diag_set(d, "%s: larger than %d bytes (expected a features spec)", path,
                      FEDC_SPEC_MAX_BYTES);
        rc = FEDC_ERANGE;
        goto out;
    }
    buf[n] = '\0';
    const char *end = NULL;
    o = cJSON_ParseWithLengthOpts(buf, n, &end, 0);
    if (!o) {
        long line, col;
        size_t at = end && end >= buf && end <= buf + n ? (size_t)(end - buf) : 0;
        line_col(buf, at, &line, &col);
        fedc_diag_set(d,
                      "%s:%ld:%ld: not valid JSON (expected the object fedc features "
                      "--spec-out writes)",
                      path, line, col);
        rc = FEDC_EPARSE;
        goto out;
    }
    if (!cJSON_IsObject(o)) {
        fedc_diag_set(d,
                      "%s:1:1: expected a JSON object (the spec fedc features --spec-out "
                      "writes), got another JSON value",
                      path);
        rc = FEDC_EPARSE;
        goto out;
    }
    /* and a spec fedc features can use (every key checked as --spec reads it) */
    fedc_features_spec sp;
    fedc_err src = fedc_features_spec_from_json(&sp, buf, path, d);
    fedc_features_spec_release(&sp);
    if (src) {
        rc = src == FEDC_ENOMEM ? FEDC_ENOMEM : FEDC_EPARSE;
        goto out;
    }
    if (!(*out = cJSON_PrintUnformatted(o))) {
        fedc_diag_set(d, "%s: out of memory", path);
        rc = FEDC_ENOMEM;
    }
out:
    cJSON_Delete(o);
    free(buf);
    fclose(f);
    return rc;
}

int fedc_json_differs(const char *a, const char *b) {
    int ea = !a || !*a, eb = !b || !*b;
    if (ea || eb)
        return ea != eb;
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    int differs = !x || !y || !cJSON_Compare(x, y, 1);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return differs;
}
