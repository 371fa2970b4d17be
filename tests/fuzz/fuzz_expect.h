/* What the envelope fuzz target expects of a message in its "specific" setting, shared with
 * gen_seeds.c so that the generated seeds pass validation and the fuzzer starts from messages that
 * reach every body check. */
#ifndef FEDC_FUZZ_EXPECT_H
#define FEDC_FUZZ_EXPECT_H

#include <stdint.h>

#include "fedc/codec.h"

#define FUZZ_ROUND 7
#define FUZZ_N_PARAMS 5
#define FUZZ_N_FEATURES 3
#define FUZZ_N_CLASSES 2
#define FUZZ_HIST_BINS 4

static const uint8_t FUZZ_RUN[FEDC_RUN_ID_BYTES] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                    9, 10, 11, 12, 13, 14, 15, 16};

#endif
