/* What the CSV loader (data.c) and the dataset operations (dataset.c) share. */
#ifndef FEDC_DATA_INT_H
#define FEDC_DATA_INT_H

#include <stddef.h>

/* How much of a cell or name an error message shows. */
#define SHOW_MAX 40

/* Copies [s, s + n) into out for an error message: at most SHOW_MAX bytes, control bytes as '?',
 * "..." when cut (never inside a UTF-8 sequence). Returns out. */
const char *fedc__show(char out[SHOW_MAX + 4], const char *s, size_t n);

#endif
