/* Checks that what fedc writes as JSON is JSON: every line of a JSON-lines file parses with cJSON
 * as one object, and no object in it (at any depth) holds the same key twice, which cJSON (and
 * most readers) would silently resolve to one of the values. */
#ifndef FEDC_TEST_JSONCHECK_H
#define FEDC_TEST_JSONCHECK_H

#include <stddef.h>

/* 0 when line (one line, no line end) is such an object; else -1 with the reason in why. */
int json_line_check(const char *line, char *why, size_t cap);

/* Checks every line of the file at path (each must end in a line end). Returns the number of
 * lines, or -1 with "path:line: reason" in why. */
int json_file_check(const char *path, char *why, size_t cap);

#endif
