/* Growable little-endian byte buffer (contract in wbuf.h). */
#include "fedc/wbuf.h"

#include <stdlib.h>
#include <string.h>

void fedc_wbuf_put(fedc_wbuf *w, const void *src, size_t n) {
    if (w->oom)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *q = realloc(w->p, cap);
        if (!q) {
            w->oom = 1;
            return;
        }
        w->p = q;
        w->cap = cap;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

void fedc_wbuf_u32(fedc_wbuf *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fedc_wbuf_put(w, b, 4);
}

void fedc_wbuf_u64(fedc_wbuf *w, uint64_t v) {
    fedc_wbuf_u32(w, (uint32_t)v);
    fedc_wbuf_u32(w, (uint32_t)(v >> 32));
}
