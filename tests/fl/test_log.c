/* The programs' log lines (fedc/log.h): an RFC 3339 UTC time with milliseconds, the level and
 * the component on every text line; one JSON object per line with --log-format json, every byte
 * of a message escaped; lines below the level dropped; names parsed. Then the programs: every
 * stderr line of a fedc-coordinator and a fedc-client run with --log-format json parses as such
 * an object, and --log-level error silences the info lines.
 *
 * argv[1], argv[2]: fedc-coordinator, fedc-client (the program part is skipped without them). */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "fedc/log.h"
#include "proc.h"

static const char *g_coord, *g_client;

/* Writes through the logger into a temporary file and returns what it holds. */
static char *logged(const fedc_log_cfg *base, fedc_log_level level, const char *name,
                    const char *msg) {
    char path[] = "/tmp/fedc-test-log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fedc_log_cfg cfg = base ? *base : (fedc_log_cfg){0};
    cfg.fd = fd;
    fedc_log_write(&cfg, level, "fedc-test", name, msg);
    close(fd);
    char *text = proc_read_file(path, NULL);
    unlink(path);
    assert_non_null(text);
    return text;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (RFC 3339, section 5.6, in UTC), checked character by character. */
static int rfc3339(const char *s) {
    const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
            return 0;
    }
    int mon = atoi(s + 5), day = atoi(s + 8), hour = atoi(s + 11), min = atoi(s + 14);
    return mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hour < 24 && min < 60;
}

static void test_text_line(void **state) {
    (void)state;
    char *t = logged(NULL, FEDC_LOG_WARN, "bank-a", "round 3: late");
    assert_true(rfc3339(t));
    assert_string_equal(t + 24, " WARN  fedc-test bank-a: round 3: late\n");
    free(t);
    t = logged(NULL, FEDC_LOG_INFO, NULL, "listening");
    assert_string_equal(t + 24, " INFO  fedc-test: listening\n");
    free(t);
    /* One line whatever the message holds: an over-long one is cut, still ending the line. */
    char big[20000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    t = logged(NULL, FEDC_LOG_ERROR, NULL, big);
    assert_non_null(strstr(t, " ERROR fedc-test: xxx"));
    assert_ptr_equal(strchr(t, '\n'), t + strlen(t) - 1);
    free(t);
}

static void test_json_line(void **state) {
    (void)state;
    fedc_log_cfg cfg = {.format = FEDC_LOG_JSON};
    const char *msg = "a \"quoted\" name\nand a second line\\ \x01 end";
    char *t = logged(&cfg, FEDC_LOG_ERROR, "bank \"b\"", msg);
    assert_ptr_equal(strchr(t, '\n'), t + strlen(t) - 1); /* one line */
    cJSON *o = cJSON_Parse(t);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "msg")->valuestring, msg);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "level")->valuestring, "error");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "component")->valuestring, "fedc-test");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "name")->valuestring, "bank \"b\"");
    assert_true(rfc3339(cJSON_GetObjectItemCaseSensitive(o, "time")->valuestring));
    cJSON_Delete(o);
    free(t);
}

static void test_levels(void **state) {
    (void)state;
    fedc_log_cfg cfg = {.level = FEDC_LOG_WARN};
    char *t = logged(&cfg, FEDC_LOG_INFO, NULL, "dropped");
    assert_string_equal(t, "");
    free(t);
    t = logged(&cfg, FEDC_LOG_ERROR, NULL, "kept");
    assert_non_null(strstr(t, "kept"));
    free(t);
    /* A zeroed configuration logs info and above, not debug. */
    assert_true(fedc_log_enabled(NULL, FEDC_LOG_INFO));
    assert_false(fedc_log_enabled(NULL, FEDC_LOG_DEBUG));
    fedc_log_level l = FEDC_LOG_DEFAULT;
    assert_int_equal(fedc_log_level_parse(&l, "debug"), FEDC_OK);
    assert_int_equal(l, FEDC_LOG_DEBUG);
    assert_int_equal(fedc_log_level_parse(&l, "verbose"), FEDC_EINVAL);
    assert_int_equal(l, FEDC_LOG_DEBUG);
    fedc_log_format f = FEDC_LOG_TEXT;
    assert_int_equal(fedc_log_format_parse(&f, "json"), FEDC_OK);
    assert_int_equal(f, FEDC_LOG_JSON);
    assert_int_equal(fedc_log_format_parse(&f, "xml"), FEDC_EINVAL);
}

/* Every line of text is a JSON log object (level among the names, a time, a message). Returns the
 * number of lines. */
static int all_json(const char *text, const char *component) {
    int n = 0;
    char *copy = strdup(text);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n"), n++) {
        cJSON *o = cJSON_Parse(line);
        if (!o)
            fail_msg("not a JSON log line: %s", line);
        const cJSON *lv = cJSON_GetObjectItemCaseSensitive(o, "level");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "component");
        const cJSON *tm = cJSON_GetObjectItemCaseSensitive(o, "time");
        assert_true(cJSON_IsString(lv) && cJSON_IsString(c) && cJSON_IsString(tm));
        assert_true(rfc3339(tm->valuestring));
        assert_string_equal(c->valuestring, component);
        cJSON_Delete(o);
    }
    free(copy);
    return n;
}

static void test_programs(void **state) {
    (void)state;
    if (!g_coord || !g_client)
        skip();
    /* A coordinator that waits 1 s for clients and gives up: its start-up warning, listening and
     * giving-up lines. */
    const char *co[] = {g_coord,        "--bind",         "tcp://127.0.0.1:*",
                        "--insecure",   "--wait-timeout", "1",
                        "--log-format", "json",           NULL};
    proc_result r;
    assert_int_equal(proc_run(&r, co, NULL, 30), 0);
    assert_true(all_json(r.err, "fedc-coordinator") >= 3);
    assert_non_null(strstr(r.err, "\"level\":\"warn\""));
    proc_result_release(&r);
    /* A client whose coordinator never answers, for 1 s. */
    const char *cl[] = {
        g_client, "--connect",        "tcp://127.0.0.1:*", "--insecure", "--name",       "bank-a",
        "--data", "/nonexistent.csv", "--label",           "y",          "--log-format", "json",
        NULL};
    assert_int_equal(proc_run(&r, cl, NULL, 30), 0);
    assert_int_equal(r.status, 2); /* the data file is missing */
    assert_true(all_json(r.err, "fedc-client") >= 1);
    assert_non_null(strstr(r.err, "/nonexistent.csv"));
    proc_result_release(&r);
    /* --log-level error: the info lines go. */
    const char *quiet[] = {g_coord,       "--bind",         "tcp://127.0.0.1:*",
                           "--insecure",  "--wait-timeout", "1",
                           "--log-level", "error",          NULL};
    assert_int_equal(proc_run(&r, quiet, NULL, 30), 0);
    assert_null(strstr(r.err, "listening on"));
    proc_result_release(&r);
    const char *loud[] = {g_coord, "--bind", "tcp://127.0.0.1:*", "--insecure", "--wait-timeout",
                          "1",     NULL};
    assert_int_equal(proc_run(&r, loud, NULL, 30), 0);
    assert_non_null(strstr(r.err, "INFO  fedc-coordinator: listening on"));
    proc_result_release(&r);
}

int main(int argc, char **argv) {
    g_coord = argc > 2 ? argv[1] : NULL;
    g_client = argc > 2 ? argv[2] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_line),
        cmocka_unit_test(test_json_line),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_programs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
