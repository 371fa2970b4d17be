/* A growable byte buffer for writing binary file formats (model files, the coordinator's
 * checkpoint): values are appended little-endian; an allocation failure is remembered in `oom`
 * and makes later appends no-ops, so a writer checks once at the end. */
#ifndef FEDC_WBUF_H
#define FEDC_WBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct fedc_wbuf {
    uint8_t *p; /* owned (free()) */
    size_t len, cap;
    int oom;
} fedc_wbuf;

void fedc_wbuf_put(fedc_wbuf *w, const void *src, size_t n);
void fedc_wbuf_u32(fedc_wbuf *w, uint32_t v);
void fedc_wbuf_u64(fedc_wbuf *w, uint64_t v);

#endif
