/* The JSON-lines writer of every metrics file fedc appends to (the coordinator's per-round line,
 * fedc-client --metrics-json, fedc train and eval --metrics-json): the object is built with cJSON,
 * so that keys and strings are escaped whatever a client or column is called, and printed on one
 * line.
 *
 * Numbers are printed with the printf conversion the files have always used (cJSON's own prints
 * up to 17 digits), and a number that is not finite is written as null: JSON has no NaN. A
 * builder keeps going after an allocation fails and reports it once at the end, so a line is
 * never written with a key silently missing.
 *
 * Not installed with libfedc: it includes cJSON's header, a private dependency. */
#ifndef FEDC_JSONL_H
#define FEDC_JSONL_H

#include <cjson/cJSON.h>

#include "fedc/err.h"

typedef struct fedc_json {
    cJSON *obj; /* the object being built; NULL when even that could not be allocated */
    int failed; /* an allocation failed: the object lacks something */
} fedc_json;

/* Starts an empty object. */
void fedc__json_begin(fedc_json *j);

/* Adds key: v printed with %.*g (digits significant digits), or null when v is not finite. */
void fedc__json_num(fedc_json *j, const char *key, double v, int digits);
/* Adds key: v printed with %.*f (decimals after the point), or null when v is not finite. */
void fedc__json_fixed(fedc_json *j, const char *key, double v, int decimals);
void fedc__json_int(fedc_json *j, const char *key, long long v);
void fedc__json_uint(fedc_json *j, const char *key, unsigned long long v);
void fedc__json_bool(fedc_json *j, const char *key, int v);
void fedc__json_null(fedc_json *j, const char *key);
/* A string value (escaped by cJSON). */
void fedc__json_str(fedc_json *j, const char *key, const char *v);
/* Adds item (an array, an object) under key; takes it, and a NULL item counts as a failure. */
void fedc__json_item(fedc_json *j, const char *key, cJSON *item);

/* The object on one line, without a line end: a string the caller frees with cJSON_free, or NULL
 * (FEDC_ENOMEM in *rc and d, "what: out of memory building the JSON line") when building or
 * printing it failed. */
char *fedc__json_line(const fedc_json *j, const char *what, fedc_err *rc, fedc_diag *d);

/* Frees the object; accepts one that was never begun (zeroed). */
void fedc__json_end(fedc_json *j);

/* Appends line and a line end to fd with one write(2), then fsync: a crash leaves the whole line
 * or none of it (the file is opened O_APPEND by the caller). name is the file's name for d:
 * "name: cannot append: <errno text>" (FEDC_EIO), also when the write was short. */
FEDC_MUST_CHECK fedc_err fedc__jsonl_write(int fd, const char *line, const char *name,
                                           fedc_diag *d);

/* Prints obj on one line and appends it to fd as fedc__jsonl_write does. */
FEDC_MUST_CHECK fedc_err fedc__jsonl_append(int fd, const cJSON *obj, const char *name,
                                            fedc_diag *d);

/* Opens path for appending (created 0644 when missing), appends obj, closes it. */
FEDC_MUST_CHECK fedc_err fedc__jsonl_append_path(const char *path, const cJSON *obj, fedc_diag *d);

#endif
