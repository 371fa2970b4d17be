/* The programs' log lines (format in log.h). JSON lines are built with the JSON writer
 * (jsonl.h), so that any byte of a message or a client's name is escaped. */
#define _POSIX_C_SOURCE 200809L
#include "fedc/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fedc/jsonl.h"

#define LINE_MAX_BYTES 8192

static const char *const names[] = {"info", "debug", "info", "warn", "error"};

const char *fedc_log_level_name(fedc_log_level level) {
    return (unsigned)level < sizeof names / sizeof names[0] ? names[level] : "info";
}

fedc_err fedc_log_level_parse(fedc_log_level *out, const char *name) {
    for (int l = FEDC_LOG_DEBUG; l <= FEDC_LOG_ERROR; l++) {
        if (name && strcmp(name, names[l]) == 0) {
            *out = (fedc_log_level)l;
            return FEDC_OK;
        }
    }
    return FEDC_EINVAL;
}

fedc_err fedc_log_format_parse(fedc_log_format *out, const char *name) {
    if (name && strcmp(name, "text") == 0)
        *out = FEDC_LOG_TEXT;
    else if (name && strcmp(name, "json") == 0)
        *out = FEDC_LOG_JSON;
    else
        return FEDC_EINVAL;
    return FEDC_OK;
}

void fedc_log_time(char *out, size_t cap) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    /* RFC 3339, section 5.6: date-time = full-date "T" full-time, with "Z" for UTC. */
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%.19s.%03dZ", date, (int)(ts.tv_nsec / 1000000L) % 1000);
}

static fedc_log_level effective(const fedc_log_cfg *cfg) {
    return cfg && cfg->level != FEDC_LOG_DEFAULT ? cfg->level : FEDC_LOG_INFO;
}

int fedc_log_enabled(const fedc_log_cfg *cfg, fedc_log_level level) {
    return (level == FEDC_LOG_DEFAULT ? FEDC_LOG_INFO : level) >= effective(cfg);
}

/* The whole line in one write(2) (retried after a signal; a short write of a pipe that is full
 * continues where it stopped). */
static void write_line(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

void fedc_log_write(const fedc_log_cfg *cfg, fedc_log_level level, const char *component,
                    const char *name, const char *msg) {
    if (!fedc_log_enabled(cfg, level))
        return;
    if (level == FEDC_LOG_DEFAULT)
        level = FEDC_LOG_INFO;
    int fd = cfg && cfg->fd > 0 ? cfg->fd : 2;
    char when[40];
    fedc_log_time(when, sizeof when);
    if (cfg && cfg->format == FEDC_LOG_JSON) {
        fedc_json j;
        fedc__json_begin(&j);
        fedc__json_str(&j, "time", when);
        fedc__json_str(&j, "level", fedc_log_level_name(level));
        fedc__json_str(&j, "component", component);
        if (name)
            fedc__json_str(&j, "name", name);
        fedc__json_str(&j, "msg", msg);
        fedc_err rc;
        fedc_diag d;
        char *line = fedc__json_line(&j, "log", &rc, &d);
        fedc__json_end(&j);
        if (line) {
            size_t n = strlen(line);
            line[n] = '\n'; /* the NUL becomes the line end (jsonl.h) */
            write_line(fd, line, n + 1);
            cJSON_free(line);
            return;
        }
        /* Out of memory for the JSON: the text line still says what happened. */
    }
    char line[LINE_MAX_BYTES];
    int n = snprintf(line, sizeof line - 1, "%s %-5s %s%s%s: %s", when,
                     level == FEDC_LOG_WARN    ? "WARN"
                     : level == FEDC_LOG_ERROR ? "ERROR"
                     : level == FEDC_LOG_DEBUG ? "DEBUG"
                                               : "INFO",
                     component, name ? " " : "", name ? name : "", msg);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
    line[len] = '\n';
    write_line(fd, line, len + 1);
}

void fedc_logv(const fedc_log_cfg *cfg, fedc_log_level level, const char *component,
               const char *name, const char *fmt, va_list ap) {
    if (!fedc_log_enabled(cfg, level))
        return;
    char msg[LINE_MAX_BYTES - 128];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fedc_log_write(cfg, level, component, name, msg);
}
