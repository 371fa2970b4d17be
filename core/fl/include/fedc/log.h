/* The log of fedc's long-running programs (the coordinator, the client): one line per event on
 * stderr with an RFC 3339 UTC timestamp (milliseconds), a level and the component, as text
 *
 *   2026-12-05T19:00:00.123Z INFO  fedc-client bank-a: joined run with 20 round(s): ...
 *
 * or as one JSON object per line (--log-format json):
 *
 *   {"time":"2026-12-05T19:00:00.123Z","level":"info","component":"fedc-client",
 *    "name":"bank-a","msg":"joined run with 20 round(s): ..."}
 *
 * Each line is formatted whole and written with one write(2), so lines of several threads (the
 * clients of one process) never interleave. Lines below the configured level are dropped. The
 * configuration travels with each object (coord_cfg, client_cfg): no process-wide state. */
#ifndef FEDC_LOG_H
#define FEDC_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "fedc/err.h"

typedef enum fedc_log_level {
    FEDC_LOG_DEFAULT = 0, /* info (a zeroed configuration logs what fedc always logged) */
    FEDC_LOG_DEBUG = 1,
    FEDC_LOG_INFO = 2,
    FEDC_LOG_WARN = 3,
    FEDC_LOG_ERROR = 4
} fedc_log_level;

typedef enum fedc_log_format { FEDC_LOG_TEXT = 0, FEDC_LOG_JSON = 1 } fedc_log_format;

typedef struct fedc_log_cfg {
    fedc_log_level level;   /* the least severe level written */
    fedc_log_format format; /* text or JSON lines */
    int fd;                 /* where lines go; 0 means stderr (2) */
} fedc_log_cfg;

/* "debug", "info", "warn", "error". */
const char *fedc_log_level_name(fedc_log_level level);
/* Parses those names; FEDC_EINVAL (out unchanged) for anything else. */
FEDC_MUST_CHECK fedc_err fedc_log_level_parse(fedc_log_level *out, const char *name);
/* Parses "text" or "json". */
FEDC_MUST_CHECK fedc_err fedc_log_format_parse(fedc_log_format *out, const char *name);

/* RFC 3339 UTC time with milliseconds ("2026-12-05T19:00:00.123Z") of the wall clock now, in out
 * (at least 25 bytes). */
void fedc_log_time(char *out, size_t cap);

/* 1 when a line of this level would be written. cfg may be NULL (the defaults). */
int fedc_log_enabled(const fedc_log_cfg *cfg, fedc_log_level level);

/* Writes one line: component ("fedc-coordinator"), name (a client's name, or NULL) and the
 * message. A message longer than a few KiB is cut. cfg may be NULL (the defaults). */
void fedc_log_write(const fedc_log_cfg *cfg, fedc_log_level level, const char *component,
                    const char *name, const char *msg);

/* The same from a format. */
void fedc_logv(const fedc_log_cfg *cfg, fedc_log_level level, const char *component,
               const char *name, const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#endif
