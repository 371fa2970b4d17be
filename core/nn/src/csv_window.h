/* A look into the CSV reader's buffer for the data loader's fast path (inside fedc_nn only).
 *
 * Most data files are lines of unquoted numbers. Handing those through fedc_csv_next costs a scan
 * of every record for its field boundaries before the cells are parsed, about a quarter of the
 * loading time; the loader can instead parse the numbers straight from the buffer and find the
 * boundaries as it goes. It takes a record that way only when it can prove the tokenizer would
 * have split it the same way (fields ended by commas, one line, no quote, no NUL, within the
 * record limit); anything else goes through fedc_csv_next, which reads the record as usual and
 * names what is wrong with it. */
#ifndef FEDC_CSV_WINDOW_H
#define FEDC_CSV_WINDOW_H

#include "fedc/csv.h"

typedef struct fedc_csv_window {
    const char *p;   /* the next record starts here */
    const char *end; /* the end of what has been read so far: *end is a NUL */
    int eof;         /* 1 when nothing follows end; else the record may go on past it */
} fedc_csv_window;

/* Fills w and returns 0 when the next record may be read from the buffer directly; returns -1
 * before the first record (the byte order mark is still to be looked for) and after an error,
 * when records must go through fedc_csv_next. */
int fedc_csv_window_get(const fedc_csv_reader *r, fedc_csv_window *w);

/* Consumes one record read from the window: one physical line, the next record starting at
 * next (a pointer into the same window, after the line end). */
void fedc_csv_window_take(fedc_csv_reader *r, const char *next);

#endif
