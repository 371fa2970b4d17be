/* fedc_strerror, diagnostics and the panic used by FEDC_CHECK. */
#include "fedc/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *fedc_strerror(fedc_err rc) {
    switch (rc) {
#define FEDC__ERR_CASE(name, value, text)                                                          \
    case name:                                                                                     \
        return text;
        FEDC_ERRORS(FEDC__ERR_CASE)
#undef FEDC__ERR_CASE
    }
    return "unknown error";
}

void fedc_diag_set(fedc_diag *d, const char *fmt, ...) {
    if (!d)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
}

_Noreturn void fedc__panic(const char *file, int line, const char *what) {
    fprintf(stderr, "fedc: internal check failed at %s:%d: %s\n", file, line, what);
    abort();
}
