/* Model card and data recipe keys (fedc/card.h). */
#define _POSIX_C_SOURCE 200809L
#include "fedc/card.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

fedc_err fedc_meta_put(fedc_model *m, const char *key, const char *json, fedc_diag *d) {
    cJSON *root = m->meta ? cJSON_Parse(m->meta) : cJSON_CreateObject();
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        fedc_diag_set(d, "the model's data recipe is not a JSON object");
        return m->meta ? FEDC_EPARSE : FEDC_ENOMEM;
    }
    cJSON *v = cJSON_Parse(json);
    if (!v) {
        cJSON_Delete(root);
        fedc_diag_set(d, "data recipe key '%s': the value is not JSON", key);
        return FEDC_EPARSE;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    if (!cJSON_AddItemToObject(root, key, v)) {
        cJSON_Delete(v);
        cJSON_Delete(root);
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        fedc_diag_set(d, "out of memory");
        return FEDC_ENOMEM;
    }
    fedc_err rc = fedc_model_set_meta(m, text);
    cJSON_free(text);
    if (rc == FEDC_EINVAL)
        fedc_diag_set(d, "the data recipe would exceed %d bytes", FEDC_MODEL_MAX_META);
    else if (rc)
        fedc_diag_set(d, "out of memory");
    return rc;
}

char *fedc_meta_get(const fedc_model *m, const char *key) {
    if (!m->meta)
        return NULL;
    cJSON *root = cJSON_Parse(m->meta);
    const cJSON *v = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, key) : NULL;
    char *out = NULL;
    if (v) {
        char *t = cJSON_PrintUnformatted(v);
        if (t) {
            out = strdup(t);
            cJSON_free(t);
        }
    }
    cJSON_Delete(root);
    return out;
}

void fedc_card_init(fedc_card *c) {
    memset(c, 0, sizeof *c);
    c->threshold = NAN;
    c->round = c->rounds_run = -1;
}

static void add_str(cJSON *o, const char *k, const char *v, int *bad) {
    if (v && !cJSON_AddStringToObject(o, k, v))
        *bad = 1;
}

/* A JSON object given as text, added under k; text that is not an object is a failure. */
static void add_obj(cJSON *o, const char *k, const char *json, int *bad) {
    if (!json)
        return;
    cJSON *v = cJSON_Parse(json);
    if (!cJSON_IsObject(v) || !cJSON_AddItemToObject(o, k, v)) {
        cJSON_Delete(v);
        *bad = 1;
    }
}

fedc_err fedc_card_put(fedc_model *m, const fedc_card *c, fedc_diag *d) {
    cJSON *o = cJSON_CreateObject();
    int bad = !o;
    char created[32] = "";
    /* SOURCE_DATE_EPOCH (reproducible-builds.org) pins the time, so that two identical runs can
     * write byte-identical model files */
    time_t now = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        char *end;
        long long v = strtoll(sde, &end, 10);
        if (!*end && v >= 0)
            now = (time_t)v;
    }
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (o) {
        add_str(o, "fedc_version", FEDC_CARD_VERSION, &bad);
        add_str(o, "created", created, &bad);
        add_str(o, "source", c->source, &bad);
        if (isfinite(c->threshold)) {
            if (!cJSON_AddNumberToObject(o, "threshold", c->threshold))
                bad = 1;
            add_str(o, "threshold_rule", c->threshold_rule ? c->threshold_rule : "given", &bad);
        }
        if (c->round >= 0 && !cJSON_AddNumberToObject(o, "round", c->round))
            bad = 1;
        if (c->rounds_run >= 0 && !cJSON_AddNumberToObject(o, "rounds_run", c->rounds_run))
            bad = 1;
        add_str(o, "selected_by", c->selected_by, &bad);
        add_str(o, "selection", c->selection, &bad);
        add_obj(o, "validation", c->validation, &bad);
        add_obj(o, "run", c->run, &bad);
    }
    char *text = bad ? NULL : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) {
        fedc_diag_set(d, "model card: out of memory or a malformed part (validation, run)");
        return bad && o ? FEDC_EINVAL : FEDC_ENOMEM;
    }
    fedc_err rc = fedc_meta_put(m, "card", text, d);
    cJSON_free(text);
    return rc;
}

int fedc_card_threshold(const fedc_model *m, double *thr) {
    if (!m->meta)
        return -1;
    cJSON *root = cJSON_Parse(m->meta);
    const cJSON *card =
        cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "card") : NULL;
    const cJSON *t =
        cJSON_IsObject(card) ? cJSON_GetObjectItemCaseSensitive(card, "threshold") : NULL;
    int rc = -1;
    if (cJSON_IsNumber(t) && t->valuedouble >= 0 && t->valuedouble <= 1) {
        *thr = t->valuedouble;
        rc = 0;
    }
    cJSON_Delete(root);
    return rc;
}
