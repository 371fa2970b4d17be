/* Error codes shared by every fedc layer, and a small diagnostic buffer.
 *
 * Functions that can fail return a fedc_err (FEDC_OK = 0, failures negative). Functions that read
 * outside input (files, flags, peer bytes) also take a fedc_diag, into which they write one
 * human-readable sentence naming what was wrong and where (file:line:column, field, expected vs
 * got). The enum and fedc_strerror() come from one X-macro so they cannot drift apart. */
#ifndef FEDC_ERR_H
#define FEDC_ERR_H

#include <stddef.h>

#define FEDC_ERRORS(X)                                                                             \
    X(FEDC_OK, 0, "success")                                                                       \
    X(FEDC_ENOMEM, -1, "out of memory")                                                            \
    X(FEDC_EINVAL, -2, "invalid argument")                                                         \
    X(FEDC_EIO, -3, "input/output error")                                                          \
    X(FEDC_EPARSE, -4, "malformed input")                                                          \
    X(FEDC_EFORMAT, -5, "unsupported or corrupt file format")                                      \
    X(FEDC_ECHECKSUM, -6, "checksum mismatch")                                                     \
    X(FEDC_EMISMATCH, -7, "shape or schema mismatch")                                              \
    X(FEDC_ERANGE, -8, "value out of range")                                                       \
    X(FEDC_EEMPTY, -9, "no data")

typedef enum fedc_err {
#define FEDC__ERR_ENUM(name, value, text) name = value,
    FEDC_ERRORS(FEDC__ERR_ENUM)
#undef FEDC__ERR_ENUM
} fedc_err;

/* Returns a static string describing rc; never NULL. */
const char *fedc_strerror(fedc_err rc);

#define FEDC_DIAG_MAX 512

/* A diagnostic message filled by a failing function; msg[0] == 0 when nothing was written. */
typedef struct fedc_diag {
    char msg[FEDC_DIAG_MAX];
} fedc_diag;

/* Writes a printf-style message into d (may be NULL: then nothing happens). */
void fedc_diag_set(fedc_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define FEDC_MUST_CHECK __attribute__((warn_unused_result))

/* Always-on check for invariants whose failure is a programming error (shape mismatches between
 * internal buffers). Prints file:line and aborts. */
#define FEDC_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fedc__panic(__FILE__, __LINE__, #cond);                                                \
    } while (0)

_Noreturn void fedc__panic(const char *file, int line, const char *what);

#endif
