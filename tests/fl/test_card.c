/* The data recipe's keys and the model card (core/fl card.c): a key set keeps the others and
 * replaces itself; text that is not JSON, and a recipe that is not an object, are refused; the
 * card's fields land as given; its creation time is now (or SOURCE_DATE_EPOCH when set); the
 * threshold is read back only when it is a number in 0..1. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedc/card.h"

static fedc_model *flat(void) {
    fedc_model *m = NULL;
    assert_int_equal(fedc_model_new_flat(&m, 3, FEDC_TASK_BINARY, 2, 4), FEDC_OK);
    return m;
}

static void test_meta_keys(void **state) {
    (void)state;
    fedc_model *m = flat();
    fedc_diag d = {{0}};
    assert_null(fedc_meta_get(m, "features"));
    assert_int_equal(fedc_meta_put(m, "features", "{\"time\":\"T\"}", &d), FEDC_OK);
    assert_int_equal(fedc_meta_put(m, "encoding", "{\"delimiter\":\";\"}", &d), FEDC_OK);
    assert_int_equal(fedc_meta_put(m, "features", "{\"time\":\"U\"}", &d), FEDC_OK);
    char *f = fedc_meta_get(m, "features"), *e = fedc_meta_get(m, "encoding");
    assert_string_equal(f, "{\"time\":\"U\"}");
    assert_string_equal(e, "{\"delimiter\":\";\"}");
    free(f);
    free(e);
    /* one "features" key, not two */
    cJSON *o = cJSON_Parse(m->meta);
    assert_int_equal(cJSON_GetArraySize(o), 2);
    cJSON_Delete(o);
    assert_int_equal(fedc_meta_put(m, "x", "{not json", &d), FEDC_EPARSE);
    assert_non_null(strstr(d.msg, "'x'"));
    assert_int_equal(fedc_model_set_meta(m, "[1,2]"), FEDC_OK);
    assert_int_equal(fedc_meta_put(m, "x", "1", &d), FEDC_EPARSE);
    assert_null(fedc_meta_get(m, "x"));
    fedc_model_destroy(&m);
}

static void test_card_fields(void **state) {
    (void)state;
    fedc_model *m = flat();
    fedc_diag d = {{0}};
    assert_int_equal(fedc_meta_put(m, "features", "{\"time\":\"T\"}", &d), FEDC_OK);
    fedc_card c;
    fedc_card_init(&c);
    c.source = "federation";
    c.threshold = 0.25;
    c.threshold_rule = "alert budget";
    c.round = 7;
    c.rounds_run = 20;
    c.selected_by = "pr_auc";
    c.selection = "best";
    c.validation = "{\"val_pr_auc\":0.5}";
    c.run = "{\"rounds\":20}";
    unsetenv("SOURCE_DATE_EPOCH");
    time_t before = time(NULL);
    assert_int_equal(fedc_card_put(m, &c, &d), FEDC_OK);
    time_t after = time(NULL);
    double thr = -1;
    assert_int_equal(fedc_card_threshold(m, &thr), 0);
    assert_true(thr == 0.25);
    char *t = fedc_meta_get(m, "card");
    cJSON *o = cJSON_Parse(t);
    free(t);
    assert_string_equal(cJSON_GetObjectItem(o, "source")->valuestring, "federation");
    assert_int_equal(cJSON_GetObjectItem(o, "round")->valueint, 7);
    assert_int_equal(cJSON_GetObjectItem(o, "rounds_run")->valueint, 20);
    assert_string_equal(cJSON_GetObjectItem(o, "selection")->valuestring, "best");
    assert_true(
        cJSON_GetObjectItem(cJSON_GetObjectItem(o, "validation"), "val_pr_auc")->valuedouble ==
        0.5);
    assert_non_null(cJSON_GetObjectItem(o, "fedc_version")->valuestring);
    /* created: now, in RFC 3339 UTC */
    const char *cr = cJSON_GetObjectItem(o, "created")->valuestring;
    struct tm tm = {0};
    assert_non_null(strptime(cr, "%Y-%m-%dT%H:%M:%SZ", &tm));
    time_t at = timegm(&tm);
    assert_true(at >= before && at <= after);
    cJSON_Delete(o);
    /* the other key stays */
    char *f = fedc_meta_get(m, "features");
    assert_string_equal(f, "{\"time\":\"T\"}");
    free(f);
    /* pinned by SOURCE_DATE_EPOCH */
    setenv("SOURCE_DATE_EPOCH", "86400", 1);
    assert_int_equal(fedc_card_put(m, &c, &d), FEDC_OK);
    assert_non_null(strstr(m->meta, "\"created\":\"1970-01-02T00:00:00Z\""));
    /* a malformed part is refused, the model's recipe unchanged */
    char *keep = strdup(m->meta);
    c.validation = "[1]";
    assert_int_not_equal(fedc_card_put(m, &c, &d), FEDC_OK);
    assert_string_equal(m->meta, keep);
    free(keep);
    /* no threshold: none read back; a threshold out of range is not one */
    c.validation = NULL;
    c.threshold = NAN;
    assert_int_equal(fedc_card_put(m, &c, &d), FEDC_OK);
    assert_int_equal(fedc_card_threshold(m, &thr), -1);
    assert_int_equal(fedc_meta_put(m, "card", "{\"threshold\":1.5}", &d), FEDC_OK);
    assert_int_equal(fedc_card_threshold(m, &thr), -1);
    assert_int_equal(fedc_meta_put(m, "card", "{\"threshold\":\"0.3\"}", &d), FEDC_OK);
    assert_int_equal(fedc_card_threshold(m, &thr), -1);
    fedc_model_destroy(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_keys),
        cmocka_unit_test(test_card_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
