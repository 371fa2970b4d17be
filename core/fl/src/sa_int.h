/* Internals shared by sa_proto.c, sa_client.c and sa_server.c (not an interface: sa_proto.h is).
 * Names as session participants are kept in fixed slots of FEDC_SA_NAME_MAX + 1 bytes. */
#ifndef FEDC_SA_INT_H
#define FEDC_SA_INT_H

#include <stdint.h>

#include "fedc/sa_proto.h"

#define NAME_SLOT (FEDC_SA_NAME_MAX + 1)

void fedc__sa_put_le32(uint8_t *p, uint32_t v);
uint32_t fedc__sa_get_le32(const uint8_t *p);
/* h, or ceil(log2 n) when h <= 0. */
int fedc__sa_default_h(int n, int h);
/* The digest an advertisement's signature covers: session (run, counter), name, keys, commit. */
void fedc__sa_adv_digest(uint8_t out[32], const uint8_t run_id[FEDC_SA_RUN_BYTES], uint64_t counter,
                         const char *name, const fedc_sa_adv *adv);
/* BLAKE2b commitment to the graph randomness r. */
void fedc__sa_commit_of(uint8_t out[32], const uint8_t r[32]);
/* The graph drawn from every participant's name, commitment and reveal (seed_out: its seed). */
fedc_err fedc__sa_draw_graph(fedc_sa_graph *g, const uint8_t sid[FEDC_SA_SID_BYTES], int n, int h,
                             const char *names, const uint8_t *commits, const uint8_t *reveals,
                             uint8_t seed_out[32], fedc_diag *d);
/* The view digest the consistency signatures cover. */
void fedc__sa_view_digest(uint8_t out[32], const uint8_t sid[FEDC_SA_SID_BYTES], int t, int n,
                          int h, const char *names, const uint8_t seed[32]);
/* What a consistency signature signs. */
void fedc__sa_consist_digest(uint8_t out[32], const uint8_t sid[FEDC_SA_SID_BYTES], uint32_t id,
                             const uint8_t view[32], const uint32_t *u3, int n_u3);
/* n names into fresh NAME_SLOT slots (*dst, caller frees). */
fedc_err fedc__sa_copy_names(char **dst, const char *const *names, int n, fedc_diag *d);

#endif
