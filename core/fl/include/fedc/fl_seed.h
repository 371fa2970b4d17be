/* The reproducible streams of one participant (docs/architecture.md, "Determinism and randomness"):
 * derived from the run seed, the client's name and the round with core/nn's counter-based
 * generator, so a client's shuffling and its train/validation split are the same whichever order
 * things happen in, and differ between clients. Tests use these to reproduce a client's training
 * in-process. */
#ifndef FEDC_FL_SEED_H
#define FEDC_FL_SEED_H

#include <stdint.h>

/* FNV-1a (64-bit) of a NUL-terminated name. */
uint64_t fedc_fl_name_hash(const char *name);

/* Seed of a client's local training (shuffling, dropout) in a round. */
uint64_t fedc_fl_client_seed(uint64_t run_seed, const char *name, uint32_t round);

/* Seed of a client's stratified train/validation split for a run. */
uint64_t fedc_fl_split_seed(uint64_t run_seed, const char *name);

#endif
