/* fedc features' two paths, shared by cmd_features.c (options, the spec, rows already in time
 * order streamed in one pass) and features_sort.c (rows out of time order, sorted through
 * temporary files). */
#ifndef FEDC_CLI_FEATURES_RUN_H
#define FEDC_CLI_FEATURES_RUN_H

#include <stddef.h>
#include <stdio.h>

#include "fedc/atomic_file.h"
#include "fedc/csv.h"
#include "fedc/features.h"

typedef struct feat_io {
    const char *data;      /* the input's name, for messages */
    FILE *in;              /* the input, read from its start (borrowed) */
    fedc_feat_engine *eng; /* bound to the input's header (borrowed) */
    fedc_afile *out;       /* the output, its header written (borrowed) */
    const char *tmpdir;    /* where the sort's files go */
    size_t chunk_bytes;    /* rows sorted in memory at a time, in bytes */
    double *vals;          /* fedc_features_n_columns values */
    char delim;            /* the field separator of the input, and so of the output */
    char *text;            /* fedc_feat_engine_text_max bytes */
    unsigned long long rows;
} feat_io;

/* Exit status for a failed fedc_csv_* call (its message printed): 2 for bad input, 1 for memory
 * or reading. */
int features_csv_fail(fedc_err e, const fedc_diag *d);

/* Opens a reader of io->in from where it stands and reads the header line into *hdr (valid until
 * the next record), expecting every later record to have as many fields. Returns -1 when ready,
 * else an exit status (its message printed). */
int features_open(feat_io *io, fedc_csv_reader **rd, fedc_csv_record *hdr);

/* Writes one output row: the input row's text, its features (io->vals) and a line end. Returns 0
 * or an exit status. */
int features_write_row(feat_io *io, const char *raw, size_t raw_len);

/* Computes the features of every row of rd (the input, after its header) when the rows are not in
 * time order: sorted runs of the parsed rows go to files under io->tmpdir, are merged in time order
 * through the engine, the features of each row go to runs sorted by row number, and these are
 * merged back in input order beside the input's rows, read again: from the input when seekable
 * (rd is then replaced by a reader from the start), else from a copy made while reading. Returns
 * 0 or an exit status (its message printed). */
int features_sorted_by_files(feat_io *io, fedc_csv_reader *rd, int seekable);

#endif
