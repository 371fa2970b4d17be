/* Versioned binary model files.
 *
 * Layout (all integers little-endian, floats IEEE-754 binary32 little-endian):
 *   magic "FEDCMODL" (8 bytes) | u32 version
 *   u32 task | u32 n_classes | u32 hidden_act | u32 n_layers | u32 sizes[n_layers + 1]
 *   u32 has_names; if 1: per feature u32 length + bytes, then the label as u32 length + bytes
 *   f32 mean[sizes[0]] | f32 std[sizes[0]]
 *   u64 n_params | f32 params[n_params]
 *   (version 2 on) u32 length + bytes of the data recipe, fedc_model.meta (0: none)
 *   u32 CRC-32 (IEEE 802.3, as in zlib) of every byte before it
 * Files are written atomically: a temporary file in the same directory, fsync, rename, fsync of
 * the directory; a crash leaves either the old file or the new one. */
#ifndef FEDC_MODELFILE_H
#define FEDC_MODELFILE_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"
#include "fedc/model.h"

/* Version 1 files (no data recipe) are still read. */
#define FEDC_MODEL_MAGIC "FEDCMODL"
#define FEDC_MODEL_VERSION 2u
/* Largest model file we agree to read (bounds the allocation a hostile file can cause). */
#define FEDC_MODEL_MAX_BYTES ((size_t)1 << 31)
#define FEDC_MODEL_MAX_NAME 4096

/* CRC-32 (reflected polynomial 0xEDB88320). */
uint32_t fedc_crc32(const void *data, size_t len);

/* Serialises m into a new buffer (*buf caller-owned, free()). */
FEDC_MUST_CHECK fedc_err fedc_model_encode(uint8_t **buf, size_t *len, const fedc_model *m);

/* Parses a buffer; `what` names it in messages (a path). Refuses a bad magic, an unknown
 * version, a truncated or oversized buffer, a checksum mismatch and inconsistent sizes, each with
 * a message saying which. */
FEDC_MUST_CHECK fedc_err fedc_model_decode(fedc_model **out, const uint8_t *buf, size_t len,
                                           const char *what, fedc_diag *d);

/* Writes m to path atomically (the path is used exactly as given). */
FEDC_MUST_CHECK fedc_err fedc_model_save(const fedc_model *m, const char *path, fedc_diag *d);

/* Reads a model file written by fedc_model_save. */
FEDC_MUST_CHECK fedc_err fedc_model_load(fedc_model **out, const char *path, fedc_diag *d);

/* Writes len bytes to path atomically (temporary file, fsync, rename, directory fsync). */
FEDC_MUST_CHECK fedc_err fedc_write_atomic(const char *path, const void *data, size_t len,
                                           fedc_diag *d);

#endif
