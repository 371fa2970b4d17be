/* What the CSV loader (data.c), its header (data_header.c) and the dataset operations (dataset.c)
 * share. */
#ifndef FEDC_DATA_INT_H
#define FEDC_DATA_INT_H

#include <stddef.h>

#include "fedc/csv.h"
#include "fedc/err.h"

/* How much of a cell or name an error message shows. */
#define SHOW_MAX 40

/* Copies [s, s + n) into out for an error message: at most SHOW_MAX bytes, control bytes as '?',
 * "..." when cut (never inside a UTF-8 sequence). Returns out. */
const char *fedc__show(char out[SHOW_MAX + 4], const char *s, size_t n);

/* Blanks a cell or name may carry around it (not the line feed, which ends a record). */
static inline int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static inline const char *skip_blank(const char *p, const char *end) {
    while (p < end && is_blank(*p))
        p++;
    return p;
}

static inline const char *trim_end(const char *begin, const char *end) {
    while (end > begin && is_blank(end[-1]))
        end--;
    return end;
}

typedef struct name_ref {
    const char *name;
    int col;
} name_ref;

/* A header whose column names have been split, unquoted and checked. */
typedef struct header {
    int n_cols;
    char **names;     /* n_cols strings, owned until moved into the dataset */
    name_ref *sorted; /* n_cols references ordered by cmp_name_ref */
} header;

/* Frees h's names and index. */
void fedc__header_release(header *h);
/* Turns the header record into names: blanks trimmed (inside quotes too), every name non-empty,
 * on one line, UTF-8, at most FEDC_CSV_MAX_FIELD bytes and unique; errors name path. */
fedc_err fedc__header_parse(header *h, const fedc_csv_record *rec, const char *path, fedc_diag *d);
/* Column of name with blanks around it ignored, or -1. */
int fedc__header_find(const header *h, const char *name);
/* Explains in d why `what` `name` is not in h: the columns it has, a case-insensitive match. */
void fedc__header_missing(fedc_diag *d, const char *path, const char *what, const char *name,
                          const header *h);

#endif
