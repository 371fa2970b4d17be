#include "jsoncheck.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first key that appears twice among the members of o or of any object inside it, or NULL. */
static const char *duplicate_key(const cJSON *o) {
    for (const cJSON *a = o ? o->child : NULL; a; a = a->next) {
        if (cJSON_IsObject(o)) {
            for (const cJSON *b = a->next; b; b = b->next)
                if (a->string && b->string && strcmp(a->string, b->string) == 0)
                    return a->string;
        }
        const char *inner = duplicate_key(a);
        if (inner)
            return inner;
    }
    return NULL;
}

int json_line_check(const char *line, char *why, size_t cap) {
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(line, &end, 1);
    if (!o) {
        snprintf(why, cap, "not JSON (parsing stopped at byte %td)",
                 (end ? end : cJSON_GetErrorPtr()) - line);
        return -1;
    }
    int rc = 0;
    const char *dup = duplicate_key(o);
    if (!cJSON_IsObject(o)) {
        snprintf(why, cap, "not a JSON object");
        rc = -1;
    } else if (dup) {
        snprintf(why, cap, "key \"%s\" appears twice", dup);
        rc = -1;
    }
    cJSON_Delete(o);
    return rc;
}

int json_file_check(const char *path, char *why, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, cap, "%s: cannot open", path);
        return -1;
    }
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    int lines = 0, rc = 0;
    while ((n = getline(&line, &lcap, f)) > 0) {
        lines++;
        if (line[n - 1] != '\n') {
            snprintf(why, cap, "%s:%d: no line end (a torn line)", path, lines);
            rc = -1;
            break;
        }
        line[n - 1] = '\0';
        char r[200];
        if (json_line_check(line, r, sizeof r)) {
            snprintf(why, cap, "%s:%d: %s: %.200s", path, lines, r, line);
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc ? -1 : lines;
}
