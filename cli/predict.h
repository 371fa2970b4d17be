/* fedc predict's streaming input (predict_io.c): a CSV file read in blocks of whole records, each
 * record split and its model columns parsed on any thread, without the whole file in memory.
 *
 * The reader keeps one buffer of at least PRED_CHUNK bytes; a block is up to PRED_BLOCK_ROWS
 * records that lie whole in it. Records end at a line feed outside double quotes (RFC 4180,
 * as fedc/csv.h reads it: a quoted field may hold commas, "" and line breaks); a CR before the
 * line feed is not part of the record. Splitting a record into fields and parsing its numbers
 * touches only that record, so the rows of a block are parsed in parallel. */
#ifndef FEDC_PREDICT_H
#define FEDC_PREDICT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fedc/err.h"

#define PRED_BLOCK_ROWS 16384
#define PRED_CHUNK (4u << 20)

/* One record of a block: its text is buf[off, off + len), without the line end. */
typedef struct pred_rec {
    size_t off;
    uint32_t len;
    long line; /* the line it starts on (the header is line 1) */
} pred_rec;

typedef struct pred_reader {
    FILE *f;
    const char *path;
    char *buf;  /* cap + 1 bytes; buf[len] is always NUL */
    size_t cap; /* grows up to max_record + PRED_CHUNK */
    size_t len; /* bytes held */
    size_t pos; /* the next record starts here */
    size_t max_record;
    int eof;   /* nothing more to read */
    long line; /* line of the record at pos */
    int bom_checked;
} pred_reader;

/* Opens path for reading. max_record bounds one record's bytes (the line end excluded). Errors:
 * FEDC_EIO (d->msg "path: cannot open: ..."), FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err pred_reader_open(pred_reader *r, const char *path, size_t max_record,
                                          fedc_diag *d);
/* Goes back to the start of the file (for another pass). FEDC_EIO when it cannot seek (a pipe). */
FEDC_MUST_CHECK fedc_err pred_reader_rewind(pred_reader *r, fedc_diag *d);
void pred_reader_close(pred_reader *r);

/* The next block: up to max records into recs (*n of them; 0 at the end of the file). Records
 * point into r->buf until the next call. Errors: FEDC_EIO read failure, FEDC_ERANGE a record
 * longer than max_record (d->msg "path:line: ..."), FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err pred_reader_block(pred_reader *r, pred_rec *recs, int max, int *n,
                                           fedc_diag *d);

/* What was wrong with a row, found while parsing it. */
typedef enum pred_bad {
    PRED_OK = 0,
    PRED_BLANK,          /* a line of blanks only */
    PRED_RAGGED,         /* field count differs from the header's (count: fields found) */
    PRED_NOT_NUMBER,     /* a model column that is not a finite decimal number */
    PRED_UNTERMINATED,   /* a quoted field without its closing quote */
    PRED_TEXT_AFTER,     /* something other than blanks, a comma or the end after a closing quote */
    PRED_QUOTE_IN_FIELD, /* a double quote inside an unquoted field */
    PRED_NUL,            /* a NUL byte */
    PRED_MISSING,        /* a missing cell, and the model's encoding refuses them */
    PRED_TOO_LONG,       /* a categorical cell longer than FEDC_CSV_MAX_FIELD */
} pred_bad;

typedef struct pred_status {
    int bad;         /* pred_bad */
    int col;         /* 1-based field where it was found */
    int count;       /* PRED_RAGGED: fields found */
    uint32_t fs, fe; /* the offending field's text, offsets in the record */
} pred_status;

/* A column that the model's loader encoding (fedc/encode.h, the "encoding" of its data recipe)
 * turns into features: a number (PRED_SRC_NUM: feature j, and j_ind its indicator column or -1; a
 * missing cell becomes impute and sets the indicator) or a categorical column (PRED_SRC_CAT: the
 * one-hot features j .. j + buckets - 1, the cell's text hashed into one of them). */
enum { PRED_SRC_NUM = 0, PRED_SRC_CAT = 1 };
typedef struct pred_src {
    int kind;
    int j, j_ind, buckets;
    float impute;
} pred_src;

typedef struct pred_enc {
    int missing; /* fedc_missing: FEDC_MISSING_ERROR refuses a missing cell */
    uint8_t key[16];
    pred_src *src; /* n_src; role[c] indexes it */
    int n_src;
} pred_enc;

/* How the columns of the file are used. role[c] >= 0: model feature role[c] (with enc: source
 * enc->src[role[c]]); -1: not a feature. keep_of[c] >= 0: the kept column keep_of[c] (a column
 * may be both). delim separates the fields. */
typedef struct pred_layout {
    int n_cols, nf, n_keep;
    const int *role, *keep_of;
    char delim;
    const pred_enc *enc; /* NULL: every feature is a plain number of its own column */
} pred_layout;

/* Splits the record s[0, len) and parses its features into x (nf floats); records the kept
 * fields' raw text (quotes and blanks included, as in the file) as offsets into the record in
 * keep (2 per kept column: start, end). On a bad row fills st and returns -1 (x is then
 * undefined); else 0. */
int pred_parse_row(float *x, uint32_t *keep, pred_status *st, const char *s, size_t len,
                   const pred_layout *lay);

/* Builds the encoded layout of a model with a non-plain encoding: enc from the recipe's JSON,
 * role[] (n_cols) from the header names. Returns 0, or -1 after printing what is wrong (a model
 * column the file lacks, a model whose features do not follow the encoding). */
struct fedc_model;
int pred_enc_setup(pred_enc *out, int *role, char *const *names, int n_cols,
                   const struct fedc_model *m, const char *enc_json, const char *data);
void pred_enc_release(pred_enc *e);

/* The separator (--delimiter, else the recipe's, else ',') into *delim and, when the model's
 * encoding is not plain, its JSON into *enc_json (caller frees). Returns 0, or -1 after a
 * message. */
struct fedc_opts;
int pred_load_encoding(char *delim, char **enc_json, const struct fedc_model *m,
                       const struct fedc_opts *op);

/* Raw transactions for a model whose recipe records a fedc features spec: computes the features
 * into a temporary file beside out_path (*tmp_out, caller unlinks and frees; NULL when the file
 * already holds them). Returns 0 or an exit status. */
int pred_raw_features(const struct fedc_model *m, const char *data, char delim,
                      const char *out_path, char **tmp_out);

/* Formats the status of a bad row as a message without the "path:line:col: " prefix. names are
 * the header's column names (n_cols of them), for the column in question. */
void pred_status_message(char *out, size_t cap, const pred_status *st, const char *rec,
                         const pred_layout *lay, char *const *names);

/* An output file written in place of path only when complete: a temporary file beside it
 * (path.tmp.XXXXXX, permissions from the umask), then fflush, fsync, rename and an fsync of the
 * directory; pred_out_abort removes the temporary file. */
typedef struct pred_out {
    FILE *f;
    char *tmp;
    const char *path;
} pred_out;

FEDC_MUST_CHECK fedc_err pred_out_open(pred_out *o, const char *path, fedc_diag *d);
FEDC_MUST_CHECK fedc_err pred_out_commit(pred_out *o, fedc_diag *d);
void pred_out_abort(pred_out *o);

/* Writes s[0, n) as one CSV field, always quoted, quotes doubled (a NUL byte, which CSV text
 * cannot hold, as '?'). */
void pred_write_quoted(FILE *f, const char *s, size_t n);

#endif
