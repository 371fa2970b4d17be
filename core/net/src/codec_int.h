/* core/net's internal checks shared by the codec's files (codec.c: every body; codec_chunk.c:
 * the slices of streamed tensors). Not installed. */
#ifndef FEDC_CODEC_INT_H
#define FEDC_CODEC_INT_H

#include <stdint.h>

#include "fedc/codec.h"

static inline uint32_t get_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* n little-endian float32 at p are finite; base is the first one's index in its tensor (named in
 * the message: "<what>: value <i> is not finite"). FEDC_ERANGE otherwise. */
fedc_err fedc__check_finite(const uint8_t *p, size_t n, uint64_t base, const char *what,
                            fedc_diag *d);

/* A Chunk with its raw frame (x->raw) and a ChunkReq against the expectation: stream known,
 * offset aligned, count within the chunk bound, the tensor and the model. */
fedc_err fedc__check_chunk(const Fedc__Chunk *c, const fedc_msg_expect *x, fedc_diag *d);
fedc_err fedc__check_chunk_req(const Fedc__ChunkReq *r, const fedc_msg_expect *x, fedc_diag *d);

#endif
