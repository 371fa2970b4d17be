/* The JSON form of a features spec (fedc/features_spec.h): written and read back to the same
 * spec; the text a model file would keep read with fedc_features_spec_from_json; and every kind of
 * bad spec refused with the input's name and the key (or line:column for text that is not JSON). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedc/features_spec.h"

static void test_round_trip(void **state) {
    (void)state;
    fedc_features_spec s, t;
    fedc_features_spec_init(&s);
    assert_int_equal(fedc_features_spec_set_time(&s, "TX_DATETIME", NULL), FEDC_OK);
    assert_int_equal(fedc_features_spec_add_windows(&s,
                                                    "CUSTOMER_ID:1,7,30:count,mean=TX_AMOUNT;"
                                                    "TERMINAL_ID:1,7,30:count,rate=TX_FRAUD:"
                                                    "delay=7;C:2:sum=\"Q\"",
                                                    NULL),
                     FEDC_OK);
    s.calendar = 1;
    char *json = NULL;
    assert_int_equal(fedc_features_spec_to_json(&json, &s), FEDC_OK);
    assert_non_null(strstr(json, "\"fedc-features-spec\""));
    assert_int_equal(json[strlen(json) - 1], '\n');
    fedc_diag d = {{0}};
    assert_int_equal(fedc_features_spec_from_json(&t, json, "mem", &d), FEDC_OK);
    assert_true(fedc_features_spec_equal(&s, &t));
    fedc_features_spec_release(&t);
    /* epoch and no calendar survive too; and through a file */
    s.epoch = 1;
    s.calendar = 0;
    char dir[] = "/tmp/fedc-test-spec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/spec.json", dir);
    assert_int_equal(fedc_features_spec_save(&s, path, &d), FEDC_OK);
    assert_int_equal(fedc_features_spec_load(&t, path, &d), FEDC_OK);
    assert_true(fedc_features_spec_equal(&s, &t));
    assert_int_equal(t.epoch, 1);
    fedc_features_spec_release(&t);
    /* written by hand, without delay_days (0) and keys in another order */
    const char *hand = "{\"windows\": [{\"aggregates\": [{\"kind\": \"count\"}], \"days\": [3],"
                       " \"entity\": \"E\"}], \"calendar\": false, \"time\": \"T\","
                       " \"time_format\": \"datetime\", \"version\": 1,"
                       " \"format\": \"fedc-features-spec\"}";
    assert_int_equal(fedc_features_spec_from_json(&t, hand, "hand", &d), FEDC_OK);
    char text[128];
    fedc_features_windows_text(text, sizeof text, &t);
    assert_string_equal(text, "E:3:count");
    fedc_features_spec_release(&t);
    unlink(path);
    rmdir(dir);
    free(json);
    fedc_features_spec_release(&s);
}

/* Replaces the first occurrence of from in base with to. */
static char *edit(const char *base, const char *from, const char *to) {
    const char *at = strstr(base, from);
    assert_non_null(at);
    size_t n = strlen(base) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    return out;
}

static void test_bad_specs(void **state) {
    (void)state;
    const char *good = "{\"format\": \"fedc-features-spec\", \"version\": 1, \"time\": \"T\",\n"
                       " \"time_format\": \"datetime\", \"calendar\": true, \"windows\": [\n"
                       "  {\"entity\": \"E\", \"days\": [1, 7], \"delay_days\": 2,\n"
                       "   \"aggregates\": [{\"kind\": \"count\"}, {\"kind\": \"mean\", "
                       "\"column\": \"A\"}]}]}";
    fedc_features_spec s;
    fedc_diag d = {{0}};
    assert_int_equal(fedc_features_spec_from_json(&s, good, "spec.json", &d), FEDC_OK);
    fedc_features_spec_release(&s);
    const struct {
        const char *from, *to, *msg;
        fedc_err rc;
    } bad[] = {
        {"\"days\": [1, 7]", "\"days\": [1, 0]",
         "spec.json: key 'windows[0].days[1]': expected "
         "whole days in 1..3650, got 0",
         FEDC_EFORMAT},
        {"\"days\": [1, 7]", "\"days\": [1, 1]", "key 'windows[0].days[1]': duration 1 given twice",
         FEDC_EFORMAT},
        {"\"days\": [1, 7]", "\"days\": [1.5]", "key 'windows[0].days[0]'", FEDC_EFORMAT},
        {"\"days\": [1, 7]", "\"days\": []", "key 'windows[0].days'", FEDC_EFORMAT},
        {"\"days\": [1, 7]", "\"days\": \"1\"", "key 'windows[0].days'", FEDC_EFORMAT},
        {"\"delay_days\": 2", "\"delay_days\": -1", "key 'windows[0].delay_days'", FEDC_EFORMAT},
        {"\"kind\": \"mean\"", "\"kind\": \"median\"",
         "key 'windows[0].aggregates[1].kind': expected count, sum, mean or rate", FEDC_EFORMAT},
        {", \"column\": \"A\"", "", "key 'windows[0].aggregates[1].column': missing", FEDC_EFORMAT},
        {"{\"kind\": \"count\"}", "{\"kind\": \"count\", \"column\": \"A\"}",
         "key 'windows[0].aggregates[0].column': count takes no column", FEDC_EFORMAT},
        {"\"column\": \"A\"", "\"column\": \"A:B\"", "key 'windows[0]'", FEDC_EFORMAT},
        {"\"entity\": \"E\"", "\"entity\": 3", "key 'windows[0].entity': expected a string",
         FEDC_EFORMAT},
        {"\"entity\": \"E\", ", "", "key 'windows[0].entity': missing", FEDC_EFORMAT},
        {"\"delay_days\": 2", "\"delay\": 2", "key 'windows[0].delay': unknown key", FEDC_EFORMAT},
        {"\"calendar\": true", "\"calendar\": 1", "key 'calendar': expected true or false",
         FEDC_EFORMAT},
        {"\"calendar\": true", "\"calender\": true", "key 'calender': unknown key", FEDC_EFORMAT},
        {"\"version\": 1", "\"version\": 2", "key 'version': unsupported version", FEDC_EFORMAT},
        {"\"time_format\": \"datetime\"", "\"time_format\": \"unix\"", "key 'time_format'",
         FEDC_EFORMAT},
        {"\"time\": \"T\"", "\"time\": \"\"", "key 'time'", FEDC_EFORMAT},
        {"\"format\": \"fedc-features-spec\"", "\"format\": \"other\"", "key 'format'",
         FEDC_EFORMAT},
        {"\"delay_days\": 2,\n", "\"delay_days\": 2,,\n", "spec.json:3:", FEDC_EPARSE},
        {"]}]}", "]}]", "spec.json:", FEDC_EPARSE},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *text = edit(good, bad[i].from, bad[i].to);
        d.msg[0] = 0;
        fedc_err rc = fedc_features_spec_from_json(&s, text, "spec.json", &d);
        if (rc != bad[i].rc || !strstr(d.msg, bad[i].msg))
            print_message("case %zu: rc %d, '%s'\n", i, rc, d.msg);
        assert_int_equal(rc, bad[i].rc);
        assert_non_null(strstr(d.msg, bad[i].msg));
        fedc_features_spec_release(&s);
        free(text);
    }
    /* nothing to compute */
    char *none = edit(good, "\"calendar\": true", "\"calendar\": false");
    char *empty = edit(none, "\"windows\": [", "\"windows\": [], \"x\": [");
    assert_int_equal(fedc_features_spec_from_json(&s, empty, "spec.json", &d), FEDC_EFORMAT);
    fedc_features_spec_release(&s);
    free(none);
    free(empty);
    assert_int_equal(fedc_features_spec_from_json(&s,
                                                  "{\"format\": \"fedc-features-spec\", "
                                                  "\"version\": 1, \"time\": \"T\", "
                                                  "\"time_format\": \"epoch\", \"calendar\": "
                                                  "true, \"windows\": 3}",
                                                  "m", &d),
                     FEDC_EFORMAT);
    assert_non_null(strstr(d.msg, "m: key 'windows': expected an array"));
    fedc_features_spec_release(&s);
    assert_int_equal(fedc_features_spec_from_json(&s, "[1]", "m", &d), FEDC_EFORMAT);
    assert_non_null(strstr(d.msg, "m: a features spec is a JSON object"));
    fedc_features_spec_release(&s);
    assert_int_equal(fedc_features_spec_load(&s, "/nonexistent/spec.json", &d), FEDC_EIO);
    assert_non_null(strstr(d.msg, "/nonexistent/spec.json: cannot open"));
    fedc_features_spec_release(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_specs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
