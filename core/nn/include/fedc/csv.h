/* The CSV tokenizer every CSV reader of fedc goes through (the data loader, fedc split, fedc sim):
 * a reader over a FILE or a text in memory that hands out records, each a list of fields.
 *
 * The syntax is RFC 4180 ("Common Format and MIME Type for Comma-Separated Values (CSV) Files",
 * section 2), read leniently where spreadsheets and hand-written files differ from it:
 *   - fields are separated by commas (or the one byte fedc_csv_set_delimiter chooses: ';', '|',
 *     a tab, ...), records by LF or CRLF (a lone CR before the end of the input is dropped too);
 *     the last record may lack its line end;
 *   - a field that starts with a double quote (after blanks: spaces, or tabs unless the tab is
 *     the separator) is quoted: it ends at the next lone double quote, may hold the separator, CR
 *     and LF, and "" stands for one quote; blanks may follow the closing quote, anything else
 *     there is an error;
 *   - a double quote inside an unquoted field is an error (RFC 4180 2.5: such a field must be
 *     quoted), and so is a NUL byte anywhere (CSV is text);
 *   - a UTF-8 byte order mark at the very start of the input is skipped;
 *   - unquoted fields are handed out as they are, blanks included (trimming is the caller's
 *     choice); quoted ones without their quotes, "" turned into ".
 * Every error names the input, the line (from 1) and the field (from 1) where it was found; an
 * unterminated quote names the line where the quote was opened. Limits keep a hostile input from
 * making the reader allocate without bound: the longest record is max_record_bytes, and while a
 * record is still being read it may take at most max_field_bytes per field found so far, so that
 * a file without line breaks or commas is refused after one read. */
#ifndef FEDC_CSV_H
#define FEDC_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "fedc/err.h"

typedef struct fedc_csv_reader fedc_csv_reader;

/* One field of a record. s[0..n) is the text; s[n] is always one of NUL, the separator, '"', CR or
 * LF, none of which can continue a number (fedc_csv_delimiter_ok refuses separators that could),
 * so strtod/strtof may parse a field in place. */
typedef struct fedc_csv_field {
    const char *s;
    size_t n;
    int quoted; /* 1 when the field was written between double quotes */
} fedc_csv_field;

typedef struct fedc_csv_record {
    long line;              /* line on which the record starts (1-based) */
    long lines;             /* physical lines it takes (more than 1 when a quoted field holds LF) */
    const char *raw;        /* the record's text as read, without its final line end */
    size_t raw_len;         /* (the byte order mark, if any, is not part of the first record) */
    int blank;              /* 1 when raw holds only blanks (spaces, tabs, CR, VT, FF) */
    int n_fields;           /* 1 or more (an empty line is one empty field) */
    fedc_csv_field *fields; /* n_fields entries */
} fedc_csv_record;

typedef enum fedc_csv_problem {
    FEDC_CSV_FINE = 0,
    FEDC_CSV_UNTERMINATED_QUOTE, /* a quoted field reaches the end of the input */
    FEDC_CSV_TEXT_AFTER_QUOTE,   /* something other than blanks, a comma or a line end after it */
    FEDC_CSV_QUOTE_IN_FIELD,     /* a double quote inside an unquoted field */
    FEDC_CSV_NUL,                /* a NUL byte */
    FEDC_CSV_TOO_MANY_FIELDS,    /* more than max_fields fields in a record */
    FEDC_CSV_TOO_LONG,           /* beyond max_record_bytes or max_field_bytes per field */
    FEDC_CSV_FIELD_COUNT,        /* a non-blank record whose field count is not the expected one */
    FEDC_CSV_READ,               /* the FILE could not be read */
    FEDC_CSV_NOMEM,
} fedc_csv_problem;

/* Where and what the last error was, for callers that word their own message. */
typedef struct fedc_csv_error {
    fedc_csv_problem problem;
    long line;      /* line of the error (of the opening quote for an unterminated one) */
    long field;     /* field (1-based) where it was found */
    long count;     /* FEDC_CSV_TOO_MANY_FIELDS, FEDC_CSV_FIELD_COUNT: fields in the record */
    char what[256]; /* the message without the "name:line:field: " prefix */
} fedc_csv_error;

typedef struct fedc_csv_limits {
    int max_fields;          /* fields per record; must be >= 1 */
    size_t max_field_bytes;  /* bytes per field while a record is read (see above); >= 1 */
    size_t max_record_bytes; /* bytes per record, line end excluded; >= max_field_bytes */
} fedc_csv_limits;

/* A reader of f (which stays the caller's: not closed). name is what messages call the input
 * (kept by pointer: it must outlive the reader). Reads in 1 MiB chunks into one buffer that grows
 * to the longest record. Errors: FEDC_EINVAL bad arguments or limits, FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_csv_open_file(fedc_csv_reader **out, FILE *f, const char *name,
                                            const fedc_csv_limits *lim, fedc_diag *d);

/* A reader of text[0..n), which must stay unchanged while the reader is used and have a NUL at
 * text[n] (so that the last field ends in one). Records and fields point into text wherever they
 * can; a quoted field holding "" points into storage of the reader. */
FEDC_MUST_CHECK fedc_err fedc_csv_open_text(fedc_csv_reader **out, const char *text, size_t n,
                                            const char *name, const fedc_csv_limits *lim,
                                            fedc_diag *d);

/* Replaces the limits (as a loader does once the header has told it the column count). */
FEDC_MUST_CHECK fedc_err fedc_csv_set_limits(fedc_csv_reader *r, const fedc_csv_limits *lim);

/* 1 when c may separate fields: a tab, or printable ASCII punctuation other than '"', '.', '+',
 * '-' and '_' (bytes that could open a quote or continue a number or a name are refused). */
int fedc_csv_delimiter_ok(char c);

/* Chooses the field separator (',' until called): for the records read from now on, normally
 * called before the first. FEDC_EINVAL when !fedc_csv_delimiter_ok(delim). */
FEDC_MUST_CHECK fedc_err fedc_csv_set_delimiter(fedc_csv_reader *r, char delim);

/* From now on every record that is not blank must have n fields, else FEDC_CSV_FIELD_COUNT
 * ("ragged row: expected n fields (as in the header), got k", at the first missing or extra
 * field). 0 turns the check off. Blank records are still handed out (rec->blank) for the caller
 * to judge. */
void fedc_csv_expect_fields(fedc_csv_reader *r, int n);

/* Reads the next record into *rec, valid until the next call. Returns FEDC_OK with rec->n_fields
 * >= 1, or FEDC_OK with rec->n_fields == 0 at the end of the input, or an error with d->msg
 * "name:line:field: what" (FEDC_EPARSE bad syntax, NUL or field count, FEDC_ERANGE beyond a
 * limit, FEDC_EIO read failure as "name: cannot read: ...", FEDC_ENOMEM); after an error the
 * reader only repeats it. */
FEDC_MUST_CHECK fedc_err fedc_csv_next(fedc_csv_reader *r, fedc_csv_record *rec, fedc_diag *d);

/* The last error (problem FEDC_CSV_FINE when none). */
const fedc_csv_error *fedc_csv_last_error(const fedc_csv_reader *r);

/* 1 when the input started with a UTF-8 byte order mark (skipped). */
int fedc_csv_had_bom(const fedc_csv_reader *r);

/* Frees *r (not the FILE nor the text); accepts NULL; sets *r = NULL. */
void fedc_csv_close(fedc_csv_reader **r);

/* Writes s as one field: as it is when it holds no comma, double quote, CR, LF or leading or
 * trailing blank, else quoted with its quotes doubled (RFC 4180 2.6, 2.7), so that the reader
 * gives s back. Returns 0, or -1 when the stream fails. */
int fedc_csv_write_field(FILE *f, const char *s);

/* The same for a file whose fields are separated by delim: quoted when s holds delim. */
int fedc_csv_write_field_sep(FILE *f, const char *s, char delim);

#endif
