/* The coordinator's checkpoint: everything needed to continue a run after a crash, in one file
 * written atomically after every round (temporary file, fsync, rename, directory fsync), before
 * that round's metrics line is appended. The format is a library piece beside the server
 * optimiser whose state it carries (it needs only core/nn's model file); when the coordinator
 * saves one and how it resumes from it is coordinator/resume.c's business.
 *
 * Layout (little-endian):
 *   magic "FEDCCKPT" | u32 version | u8 run_id[16] | u32 round (last complete) | u64 seed
 *   u32 have_stats | f32 pos_weight | u32 server kind | u64 server steps | u64 n
 *   u32 has_m, f32 m[n] if 1 | u32 has_v, f32 v[n] if 1
 *   u32 metrics_len | metrics line (the JSON line of `round`, without newline)
 *   (version 2) u32 n_clients | per client u32 length + name: who had joined, so that a resumed
 *   run waits for them before it selects (the same selection as without the crash)
 *   (version 3) f64 total_rows: the training rows of round 0, which weigh secure updates
 *   u64 model_len | model file bytes (core/nn format: architecture, schema, statistics, weights)
 *   u32 CRC-32 of everything before it */
#ifndef FEDC_CHECKPOINT_H
#define FEDC_CHECKPOINT_H

#include <stdint.h>

#include "fedc/err.h"
#include "fedc/fl.h"
#include "fedc/model.h"

/* The checkpoint's name inside the coordinator's --checkpoint-dir. */
#define FEDC_CKPT_FILE "coordinator.ckpt"

typedef struct fedc_ckpt {
    uint8_t run_id[16];
    uint32_t round;
    uint64_t seed;
    int have_stats;
    float pos_weight;
    fedc_server_opt server_kind;
    uint64_t server_t;
    uint64_t n;
    float *m, *v;       /* n floats or NULL; owned after fedc_ckpt_load */
    char *metrics_line; /* owned after fedc_ckpt_load */
    char **clients;     /* names of the joined clients, n_clients; owned after fedc_ckpt_load */
    int n_clients;
    double total_rows; /* 0 in versions 1 and 2 */
    fedc_model *model; /* owned after fedc_ckpt_load */
} fedc_ckpt;

FEDC_MUST_CHECK fedc_err fedc_ckpt_save(const char *path, const fedc_ckpt *c, fedc_diag *d);
/* Reads and checks a checkpoint (magic, version, sizes, CRC); FEDC_EIO with errno ENOENT kept
 * when the file does not exist. */
FEDC_MUST_CHECK fedc_err fedc_ckpt_load(const char *path, fedc_ckpt *c, fedc_diag *d);
/* Frees what fedc_ckpt_load allocated. */
void fedc_ckpt_release(fedc_ckpt *c);

#endif
