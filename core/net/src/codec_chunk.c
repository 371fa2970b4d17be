/* Validation of streamed tensors' slices (Chunk, ChunkReq; proto/fedc.proto "streamed tensors")
 * and the finite check of float32 values, for codec.c (contracts in codec_int.h). Every refusal
 * names the field, what was expected and what arrived. */
#include "codec_int.h"

#include <stdio.h>

/* n little-endian float32 at p are finite; `base` is the first one's index in its tensor (for the
 * message). Exponent all ones = Inf or NaN. One branch-free pass (it vectorises), then a search for
 * the first offender only when there is one. */
fedc_err fedc__check_finite(const uint8_t *p, size_t n, uint64_t base, const char *what,
                            fedc_diag *d) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= (uint32_t)((get_le32(p + 4 * i) & 0x7F800000u) == 0x7F800000u);
    if (bad) {
        for (size_t i = 0; i < n; i++) {
            if ((get_le32(p + 4 * i) & 0x7F800000u) == 0x7F800000u) {
                fedc_diag_set(d, "%s: value %llu is not finite", what,
                              (unsigned long long)(base + i));
                return FEDC_ERANGE;
            }
        }
    }
    return FEDC_OK;
}

/* A stream number, an aligned offset and a count within the bounds (Chunk and ChunkReq). */
static fedc_err check_slice(const char *what, uint32_t stream, uint64_t offset, uint64_t count,
                            const fedc_msg_expect *x, fedc_diag *d) {
    if (stream < FEDC_STREAM_FIT || stream > FEDC_STREAM_MAX) {
        fedc_diag_set(d, "%s: stream %u unknown, expected %d..%d", what, stream, FEDC_STREAM_FIT,
                      FEDC_STREAM_MAX);
        return FEDC_ERANGE;
    }
    if (offset % FEDC_CHUNK_ALIGN) {
        fedc_diag_set(d, "%s: offset %llu is not a multiple of %u values", what,
                      (unsigned long long)offset, FEDC_CHUNK_ALIGN);
        return FEDC_EFORMAT;
    }
    if (count < 1 || (x->chunk_values && count > x->chunk_values)) {
        fedc_diag_set(d, "%s: %llu values, expected 1..%llu", what, (unsigned long long)count,
                      (unsigned long long)(x->chunk_values ? x->chunk_values : FEDC_MAX_PARAMS));
        return FEDC_ERANGE;
    }
    if (offset > FEDC_MAX_PARAMS || count > FEDC_MAX_PARAMS - offset) {
        fedc_diag_set(d, "%s: values %llu..%llu beyond the largest model (%llu values)", what,
                      (unsigned long long)offset, (unsigned long long)offset + count,
                      (unsigned long long)FEDC_MAX_PARAMS);
        return FEDC_ERANGE;
    }
    /* A float stream has the model's length; a masked vector's length is the secure sum's (the
     * receiver checks it against the session). */
    if (x->n_params && stream != FEDC_STREAM_MASKED && offset + count > x->n_params) {
        fedc_diag_set(d, "%s: values %llu..%llu beyond the model's %llu", what,
                      (unsigned long long)offset, (unsigned long long)(offset + count),
                      (unsigned long long)x->n_params);
        return FEDC_ERANGE;
    }
    return FEDC_OK;
}

fedc_err fedc__check_chunk(const Fedc__Chunk *c, const fedc_msg_expect *x, fedc_diag *d) {
    size_t have = x->raw ? x->raw_len : 0;
    if (have == 0 || have % 4) {
        fedc_diag_set(d, "chunk: a raw frame of %zu bytes, expected a positive multiple of 4",
                      have);
        return FEDC_EMISMATCH;
    }
    uint64_t n = have / 4;
    fedc_err rc = check_slice("chunk", c->stream, c->offset, n, x, d);
    if (rc)
        return rc;
    if (c->total < 1 || c->total > FEDC_MAX_PARAMS || c->offset + n > c->total ||
        (x->n_params && c->stream != FEDC_STREAM_MASKED && c->total != x->n_params)) {
        fedc_diag_set(d, "chunk: values %llu..%llu of a tensor of %llu (expected %llu)",
                      (unsigned long long)c->offset, (unsigned long long)(c->offset + n),
                      (unsigned long long)c->total, (unsigned long long)x->n_params);
        return FEDC_EMISMATCH;
    }
    if (c->offset + n < c->total && n % FEDC_CHUNK_ALIGN) {
        fedc_diag_set(d, "chunk: %llu values before the tensor's end, not a multiple of %u",
                      (unsigned long long)n, FEDC_CHUNK_ALIGN);
        return FEDC_EFORMAT;
    }
    if (c->stream == FEDC_STREAM_MASKED ||
        ((c->stream == FEDC_STREAM_UPDATE || c->stream == FEDC_STREAM_INIT) &&
         x->update_finite_here))
        return FEDC_OK;
    return fedc__check_finite(x->raw, (size_t)n, c->offset, "chunk", d);
}

fedc_err fedc__check_chunk_req(const Fedc__ChunkReq *r, const fedc_msg_expect *x, fedc_diag *d) {
    return check_slice("chunk_req", r->stream, r->offset, r->count, x, d);
}
