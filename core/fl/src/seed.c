/* Per-client stream keys (contract in fl_seed.h). */
#include "fedc/fl_seed.h"

#include "fedc/rng.h"

#define STREAM_TRAIN 0x747261696eull /* "train" */
#define STREAM_SPLIT 0x73706c6974ull /* "split" */

uint64_t fedc_fl_name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

uint64_t fedc_fl_client_seed(uint64_t run_seed, const char *name, uint32_t round) {
    return fedc_rng_key(run_seed, fedc_fl_name_hash(name), STREAM_TRAIN, round);
}

uint64_t fedc_fl_split_seed(uint64_t run_seed, const char *name) {
    return fedc_rng_key(run_seed, fedc_fl_name_hash(name), STREAM_SPLIT, 0);
}
