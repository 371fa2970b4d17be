/* A file written as a stream yet replaced atomically: the bytes go to a temporary file beside
 * the destination (PATH.tmpXXXXXX, created 0600 by mkstemp, then given the umask's mode as fopen
 * would), and only fedc_afile_commit makes them visible under PATH (fsync, rename, fsync of the
 * directory), so that readers see the old file or the whole new one, never a part. The rules are
 * fedc_write_atomic's (fedc/modelfile.h), for outputs too large to hold in memory. A file not
 * committed is removed by fedc_afile_abort; after a crash only PATH.tmpXXXXXX is left behind. */
#ifndef FEDC_ATOMIC_FILE_H
#define FEDC_ATOMIC_FILE_H

#include <stddef.h>

#include "fedc/err.h"

typedef struct fedc_afile fedc_afile;

/* Creates the temporary file for path (kept by copy). Errors: FEDC_EIO (the directory cannot take
 * a file: d names path and why), FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_afile_open(fedc_afile **out, const char *path, fedc_diag *d);

/* Appends n bytes (buffered: 1 MiB). Errors: FEDC_EIO (d names the temporary file and why). */
FEDC_MUST_CHECK fedc_err fedc_afile_write(fedc_afile *f, const void *data, size_t n, fedc_diag *d);

/* Room for n more bytes (n at most 1 MiB), written by the caller and then counted with
 * fedc_afile_wrote: saves a copy for the many small pieces of a row. NULL on a write failure. */
char *fedc_afile_room(fedc_afile *f, size_t n, fedc_diag *d);
void fedc_afile_wrote(fedc_afile *f, size_t n);

/* Flushes, fsyncs, renames the temporary file onto the path and fsyncs the directory; frees *f
 * (also on failure, when the temporary file is removed) and sets *f = NULL. Errors: FEDC_EIO. */
FEDC_MUST_CHECK fedc_err fedc_afile_commit(fedc_afile **f, fedc_diag *d);

/* Removes the temporary file and frees *f; the path is left as it was. Accepts NULL. */
void fedc_afile_abort(fedc_afile **f);

#endif
