/* The JSON-lines metrics writer (fedc/jsonl.h). */
#include "fedc/jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fedc__json_begin(fedc_json *j) {
    j->obj = cJSON_CreateObject();
    j->failed = j->obj == NULL;
}

/* Every add goes through here: a NULL item (allocation failed) marks the builder. */
static void add(fedc_json *j, const char *key, cJSON *item) {
    if (!item || !j->obj || !cJSON_AddItemToObject(j->obj, key, item)) {
        cJSON_Delete(item);
        j->failed = 1;
    }
}

/* A number as raw text in the conversion the files use; cJSON prints it as it is. */
static void add_formatted(fedc_json *j, const char *key, double v, int prec, int fixed) {
    if (!isfinite(v)) {
        add(j, key, cJSON_CreateNull());
        return;
    }
    char buf[400]; /* %.*f of the largest double takes 309 digits before the point */
    if (fixed)
        snprintf(buf, sizeof buf, "%.*f", prec, v);
    else
        snprintf(buf, sizeof buf, "%.*g", prec, v);
    add(j, key, cJSON_CreateRaw(buf));
}

void fedc__json_num(fedc_json *j, const char *key, double v, int digits) {
    add_formatted(j, key, v, digits, 0);
}

void fedc__json_fixed(fedc_json *j, const char *key, double v, int decimals) {
    add_formatted(j, key, v, decimals, 1);
}

void fedc__json_int(fedc_json *j, const char *key, long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    add(j, key, cJSON_CreateRaw(buf));
}

void fedc__json_uint(fedc_json *j, const char *key, unsigned long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", v);
    add(j, key, cJSON_CreateRaw(buf));
}

void fedc__json_bool(fedc_json *j, const char *key, int v) {
    add(j, key, cJSON_CreateBool(v != 0));
}

void fedc__json_null(fedc_json *j, const char *key) {
    add(j, key, cJSON_CreateNull());
}

void fedc__json_str(fedc_json *j, const char *key, const char *v) {
    add(j, key, cJSON_CreateString(v));
}

void fedc__json_item(fedc_json *j, const char *key, cJSON *item) {
    add(j, key, item);
}

char *fedc__json_line(const fedc_json *j, const char *what, fedc_err *rc, fedc_diag *d) {
    char *s = j->failed ? NULL : cJSON_PrintUnformatted(j->obj);
    if (!s) {
        fedc_diag_set(d, "%s: out of memory building the JSON line", what);
        *rc = FEDC_ENOMEM;
        return NULL;
    }
    *rc = FEDC_OK;
    return s;
}

void fedc__json_end(fedc_json *j) {
    cJSON_Delete(j->obj);
    j->obj = NULL;
    j->failed = 0;
}

fedc_err fedc__jsonl_write(int fd, const char *line, const char *name, fedc_diag *d) {
    size_t len = strlen(line);
    /* The line and its end in one buffer: one write(2) of a regular file opened O_APPEND lands
     * whole at the end, and no reader sees the line without its end. */
    char *buf = malloc(len + 1);
    if (!buf) {
        fedc_diag_set(d, "%s: out of memory appending a line", name);
        return FEDC_ENOMEM;
    }
    memcpy(buf, line, len);
    buf[len] = '\n';
    ssize_t w = write(fd, buf, len + 1);
    int err = errno;
    free(buf);
    if (w != (ssize_t)(len + 1)) {
        fedc_diag_set(d, "%s: cannot append: %s", name,
                      w < 0 ? strerror(err) : "short write (disk full?)");
        return FEDC_EIO;
    }
    if (fsync(fd) != 0) {
        fedc_diag_set(d, "%s: cannot append: fsync: %s", name, strerror(errno));
        return FEDC_EIO;
    }
    return FEDC_OK;
}

fedc_err fedc__jsonl_append(int fd, const cJSON *obj, const char *name, fedc_diag *d) {
    char *s = cJSON_PrintUnformatted(obj);
    if (!s) {
        fedc_diag_set(d, "%s: out of memory building the JSON line", name);
        return FEDC_ENOMEM;
    }
    fedc_err rc = fedc__jsonl_write(fd, s, name, d);
    cJSON_free(s);
    return rc;
}

fedc_err fedc__jsonl_append_path(const char *path, const cJSON *obj, fedc_diag *d) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fedc_diag_set(d, "%s: cannot open for appending: %s", path, strerror(errno));
        return FEDC_EIO;
    }
    fedc_err rc = fedc__jsonl_append(fd, obj, path, d);
    if (close(fd) != 0 && rc == FEDC_OK) {
        fedc_diag_set(d, "%s: cannot append: close: %s", path, strerror(errno));
        rc = FEDC_EIO;
    }
    return rc;
}
