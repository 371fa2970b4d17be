/* An in-memory SecAgg+ session for tests: n honest clients with Ed25519 identities and a roster,
 * driven step by step through core/fl/sa_proto.h exactly as the programs drive them over the
 * wire, with dropouts injected at exact steps. The attack tests reuse the pieces to play a
 * dishonest coordinator. */
#ifndef FEDC_TEST_SA_SIM_H
#define FEDC_TEST_SA_SIM_H

#include <stdint.h>

#include "fedc/sa_proto.h"

#define SA_SIM_MAXN 40
#define SA_SIM_LEN 2053

/* When a client drops out: never, before ShareKeys (it advertised), right after ShareKeys,
 * right after its masked input, right after signing the survivor set. */
enum { OUT_NONE, OUT_BEFORE_SHARE, OUT_AFTER_SHARE, OUT_AFTER_MASK, OUT_AFTER_CONSIST };

typedef struct sa_sim {
    int n, h, t_req, min_nbrs;
    uint8_t id_pk[SA_SIM_MAXN][32], id_sk[SA_SIM_MAXN][64];
    char names[SA_SIM_MAXN][16];
    fedc_sa_client cl[SA_SIM_MAXN];
    fedc_sa_adv adv[SA_SIM_MAXN];
    fedc_sa_server srv;
    uint32_t x[SA_SIM_MAXN][SA_SIM_LEN]; /* the inputs */
    uint32_t y[SA_SIM_MAXN][SA_SIM_LEN]; /* the masked inputs, as the coordinator saw them */
    int refused[SA_SIM_MAXN];            /* a step a client refused, or 0 */
} sa_sim;

/* n clients named c00, c01, ... (session order is name order), random inputs. */
sa_sim *sa_sim_new(int n, int h, int t_req);
void sa_sim_free(sa_sim *s);

/* The roster callback (ctx: the sa_sim): the identity key of a name. */
const uint8_t *sa_sim_roster(void *ctx, const char *name);

/* Steps 0-1: every client begins the session at `counter` and the server is set up over all n
 * (graph reveals included). Returns the first failure. */
fedc_err sa_sim_begin(sa_sim *s, uint64_t counter);

/* Runs one whole session honestly; out[u] says when client u drops. Returns the server's finish
 * code (or the first failure), with the result in s->srv.sum; *withheld counts clients that
 * withheld their input below the threshold. */
fedc_err sa_sim_run(sa_sim *s, const int *out, uint64_t counter, int *withheld);

/* The sum mod 2^32 of the inputs of the clients with out[u] in {NONE, AFTER_MASK,
 * AFTER_CONSIST}: what a finished session must hold. 1 when s->srv.sum equals it. */
int sa_sim_sum_ok(const sa_sim *s, const int *out);

#endif
