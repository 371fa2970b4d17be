/* The SecAgg+ protocol (Bonawitz et al. CCS 2017, eprint 2017/281, section 4; Bell et al. CCS
 * 2020, eprint 2020/704) as two state machines, one per side, on plain structs: the programs move
 * their inputs and outputs over the wire (proto/fedc.proto, fields 30-49), tests drive them in
 * memory. The maths underneath is in secagg.h; SECURITY.md has the design.
 *
 * One secure sum ("session") has four steps; the surviving sets shrink U1 >= U2 >= U3:
 *   0. advertise  each client draws two X25519 key pairs (c: share encryption, s: masking) and
 *                 signs the public halves with its Ed25519 identity (fedc_sa_client_begin). The
 *                 coordinator numbers the advertisers U1 0..n-1 and builds the neighbourhood
 *                 graph (fedc_sa_server_new).
 *   1. share      a client checks its neighbours' signatures against the roster, Shamir-shares its
 *                 self-mask seed b and its masking secret key t-of-|N(u)| and seals one share
 *                 pair per neighbour (fedc_sa_client_share); the coordinator keeps the sealed
 *                 boxes (fedc_sa_server_shares) and, when the step closes (U2), hands each client
 *                 the boxes addressed to it (fedc_sa_server_routed, fedc_sa_client_collect).
 *   2. mask       y_u = x_u + PRG(b_u) + sum over v in N(u) and U2, v != u, of +-PRG(s_uv)
 *                 (fedc_sa_client_mask); the coordinator adds y_u to one running sum
 *                 (fedc_sa_server_masked). A client withholds y_u when fewer than t of its
 *                 neighbours remain.
 *   3. unmask     the coordinator tells each member of U3 which neighbours survived and which
 *                 dropped (fedc_sa_server_unmask_lists); the client returns b-shares of survivors
 *                 and key shares of the dropped, never both kinds for one peer
 *                 (fedc_sa_client_unmask); the coordinator removes the self masks of the
 *                 survivors and the pairwise masks of the dropped (fedc_sa_server_reveal,
 *                 fedc_sa_server_finish), leaving sum over U3 of x_u mod 2^32.
 *
 * Deviation from SECURITY.md's session id (a hash over every participant's keys): under SecAgg+
 * a client sees only its neighbourhood, so it could not recompute such a hash. The session id
 * here is BLAKE2b over the run id and a session counter (round, attempt, stage) that both sides
 * know; binding to the keys comes from the pairwise secrets, which hash both fresh public keys
 * with the session id, and from the signatures, which cover the counter and the run. */
#ifndef FEDC_SA_PROTO_H
#define FEDC_SA_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"
#include "fedc/secagg.h"

#define FEDC_SA_RUN_BYTES 16
#define FEDC_SA_MAX_NBRS 255                  /* GF(2^8) Shamir: at most 255 holders */
#define FEDC_SA_SHARE_PLAIN (4 + 4 + 32 + 32) /* owner, holder, b share, key share */
#define FEDC_SA_SHARE_CT (FEDC_SA_SHARE_PLAIN + FEDC_SA_SEAL_OVERHEAD) /* 112 bytes */

/* Share kinds revealed in the unmask step. */
enum { FEDC_SA_REVEAL_B = 1, FEDC_SA_REVEAL_SK = 2 };

/* A client's advertisement: its two round public keys and its signature over them. */
typedef struct fedc_sa_adv {
    uint8_t pk_c[32], pk_s[32];
    uint8_t sig[FEDC_SA_SIG_BYTES];
} fedc_sa_adv;

/* One share pair sealed by `from` for `to` (ids in the session). */
typedef struct fedc_sa_sealed {
    uint32_t from, to;
    uint8_t ct[FEDC_SA_SHARE_CT];
} fedc_sa_sealed;

/* One share revealed in the unmask step: of `owner`'s self-mask seed or masking key. */
typedef struct fedc_sa_reveal {
    uint32_t owner;
    int kind; /* FEDC_SA_REVEAL_B or FEDC_SA_REVEAL_SK */
    uint8_t share[32];
} fedc_sa_reveal;

/* The session counter both sides derive: distinct for every round, retry and stage. */
uint32_t fedc_sa_counter(uint32_t round, int attempt, int stage);

/* BLAKE2b-256("fedc-secagg-session" || run id || counter). */
void fedc_sa_session(uint8_t sid[FEDC_SA_SID_BYTES], const uint8_t run_id[FEDC_SA_RUN_BYTES],
                     uint32_t counter);

/* ---- client --------------------------------------------------------------------------------- */

typedef struct fedc_sa_client {
    int state; /* internal: 0 idle, 1 advertised, 2 shared, 3 collected, 4 masked, 5 revealed,
                  -1 aborted */
    uint32_t counter, run_tag;
    uint8_t sid[FEDC_SA_SID_BYTES];
    uint8_t pk_c[32], sk_c[32], pk_s[32], sk_s[32];
    uint8_t b[32];
    uint32_t me;
    int size, t;
    uint32_t *ids;      /* (size) ascending, holding me */
    uint8_t *enc_key;   /* (size x 32) share-encryption secret with each neighbour */
    uint8_t *mask_seed; /* (size x 32) pairwise mask seed with each neighbour */
    uint8_t *held;      /* (size x 64) the b and key shares each neighbour gave us */
    uint8_t *in_u2;     /* (size) the neighbour's shares reached us (U2) */
    uint8_t *revealed;  /* (size) the kind already revealed for each neighbour, or 0 */
} fedc_sa_client;

/* Starts a session: fresh key pairs, the advertisement signed with sign_sk (the Ed25519 secret
 * key of our identity; NULL leaves the signature zero, for runs without a roster). */
FEDC_MUST_CHECK fedc_err fedc_sa_client_begin(fedc_sa_client *c,
                                              const uint8_t run_id[FEDC_SA_RUN_BYTES],
                                              uint32_t counter, const uint8_t *sign_sk,
                                              fedc_sa_adv *out, fedc_diag *d);

/* Step 1. ids (ascending, holding `me`), advs and roster (each neighbour's Ed25519 public key, or
 * roster == NULL to trust the coordinator's relay) describe our neighbourhood of `size`. Checks
 * every signature and that our own entry is ours, then writes size - 1 sealed share pairs to out.
 * FEDC_ECHECKSUM for a signature that does not verify (the coordinator relayed keys that are not
 * the peer's), FEDC_EINVAL for a malformed neighbourhood or threshold. */
FEDC_MUST_CHECK fedc_err fedc_sa_client_share(fedc_sa_client *c, uint32_t me, int t,
                                              const uint32_t *ids, const fedc_sa_adv *advs,
                                              const uint8_t *const *roster, int size,
                                              fedc_sa_sealed *out, fedc_diag *d);

/* Step 2, first half: the k boxes the coordinator routed to us (from neighbours in U2). Any box
 * that does not open or names the wrong owner or holder aborts the session (FEDC_ECHECKSUM: a
 * replayed or forged share). FEDC_ERANGE when fewer than t neighbours (us included) remain: we
 * must withhold our input. */
FEDC_MUST_CHECK fedc_err fedc_sa_client_collect(fedc_sa_client *c, const fedc_sa_sealed *in, int k,
                                                fedc_diag *d);

/* Step 2: adds our masks to v (n values, mod 2^32) and wipes the mask secrets. */
FEDC_MUST_CHECK fedc_err fedc_sa_client_mask(fedc_sa_client *c, uint32_t *v, size_t n,
                                             fedc_diag *d);

/* Step 3: survivors get their b share revealed, dropped neighbours their key share. Refuses
 * (FEDC_EINVAL, session aborted) when the lists overlap, name a non-neighbour or one outside U2,
 * leave someone out, omit us, hold fewer than t survivors, or ask for the other kind of a share
 * already revealed. out needs room for size entries; *n_out gets the count. */
FEDC_MUST_CHECK fedc_err fedc_sa_client_unmask(fedc_sa_client *c, const uint32_t *survivors,
                                               int n_surv, const uint32_t *dropped, int n_drop,
                                               fedc_sa_reveal *out, int *n_out, fedc_diag *d);

/* Wipes the secrets and frees; the struct may begin a new session afterwards. */
void fedc_sa_client_free(fedc_sa_client *c);

/* ---- coordinator ----------------------------------------------------------------------------- */

typedef struct fedc_sa_server {
    int n, size, t;
    fedc_sa_graph g;
    uint8_t sid[FEDC_SA_SID_BYTES];
    fedc_sa_adv *adv;    /* (n) */
    uint8_t *flags;      /* (n) internal: shared (U2), masked (U3), revealed */
    fedc_sa_sealed *box; /* (n x size) box[to][pos of sender in N(to)] */
    uint8_t *box_ok;     /* (n x size) */
    uint8_t *shares;     /* (n x size x 32) shares[owner][pos of holder in N(owner)] */
    uint8_t *got;        /* (n x size) */
    uint32_t *sum;       /* (len) running sum of masked inputs; the result after finish */
    size_t len;
    int n_u2, n_u3;
} fedc_sa_server;

/* Sets up a session over the n advertisers (ids 0..n-1, in the order of adv): neighbourhoods of
 * 2h + 1 (h <= 0: about log2 n; everyone when n is small), threshold t from t_req as
 * fedc_sa_threshold, inputs of len values. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_new(fedc_sa_server *s, int n, int h, int t_req,
                                            uint64_t seed, const uint8_t run_id[FEDC_SA_RUN_BYTES],
                                            uint32_t counter, const fedc_sa_adv *adv, size_t len,
                                            fedc_diag *d);

/* Whether client id is in U2 (its shares arrived) / in U3 (its masked input arrived). */
int fedc_sa_server_in_u2(const fedc_sa_server *s, uint32_t id);
int fedc_sa_server_in_u3(const fedc_sa_server *s, uint32_t id);

/* Client `id`'s neighbourhood: size ids, ascending, holding id. */
const int *fedc_sa_server_nbrs(const fedc_sa_server *s, uint32_t id);

/* Step 1: the boxes client `from` sealed for its neighbours (exactly size - 1, one per
 * neighbour). FEDC_EINVAL for a wrong set; the client then stays out of U2. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_shares(fedc_sa_server *s, uint32_t from,
                                               const fedc_sa_sealed *in, int k, fedc_diag *d);

/* After step 1 closed: the boxes for `to` from its neighbours in U2 (out: room for size - 1);
 * returns the count. */
int fedc_sa_server_routed(const fedc_sa_server *s, uint32_t to, fedc_sa_sealed *out);

/* Step 2: adds client `from`'s masked input (len values). FEDC_EINVAL when it is not in U2 or
 * sent one already. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_masked(fedc_sa_server *s, uint32_t from, const uint32_t *y,
                                               fedc_diag *d);

/* After step 2 closed: for client id in U3, its neighbours in U3 and those in U2 but not U3
 * (both ascending; room for size each). */
void fedc_sa_server_unmask_lists(const fedc_sa_server *s, uint32_t id, uint32_t *surv, int *n_surv,
                                 uint32_t *dropped, int *n_drop);

/* Step 3: client `from`'s revealed shares. FEDC_EINVAL for a share it was not asked for. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_reveal(fedc_sa_server *s, uint32_t from,
                                               const fedc_sa_reveal *r, int k, fedc_diag *d);

/* Removes the masks: s->sum becomes the sum over U3 of the inputs. FEDC_ERANGE when a secret
 * lacks t shares (the round must be retried), FEDC_ECHECKSUM when a rebuilt key does not match
 * its public key (a lying client). */
FEDC_MUST_CHECK fedc_err fedc_sa_server_finish(fedc_sa_server *s, fedc_diag *d);

void fedc_sa_server_free(fedc_sa_server *s);

/* ---- encodings of values in the summed vector ------------------------------------------------ */

/* A real number in FEDC_SA_WIDE_SLOTS slots: 128-bit two's complement fixed point with 32
 * fraction bits, 16 bits per slot, so sums of up to 65536 encodings never wrap a slot and the
 * carries are resolved at decoding. Exact for integers below 2^53 (counts), 2^-32 resolution
 * otherwise. FEDC_ERANGE for a value that is not finite or not below 2^94 in magnitude. */
#define FEDC_SA_WIDE_SLOTS 8
FEDC_MUST_CHECK fedc_err fedc_sa_wide_put(uint32_t out[FEDC_SA_WIDE_SLOTS], double v);
double fedc_sa_wide_get(const uint32_t s[FEDC_SA_WIDE_SLOTS]);

/* What the clients sum in each stage (stage numbers go into fedc_sa_counter). Every value a
 * client would otherwise report on its own rides here, so the coordinator learns only totals.
 * Counts in histograms and confusion matrices take one slot each and must stay below 2^B (B of
 * the quantiser: 2^22 rows per bin for 1024 clients); scalars are wide. */
enum { FEDC_SA_STAGE_STATS = 0, FEDC_SA_STAGE_FIT = 1, FEDC_SA_STAGE_EVAL = 2 };

/* Round 0: [rows][sum x nf][sum of squares x nf][class counts x k], all wide. */
size_t fedc_sa_stats_len(int nf, int k);
FEDC_MUST_CHECK fedc_err fedc_sa_stats_encode(uint32_t *v, uint64_t rows, const double *sum,
                                              const double *sq, int nf, const uint64_t *cc, int k,
                                              fedc_diag *d);
/* Decodes the summed vector and checks it: rows a non-negative integer, class counts summing to
 * the rows, sums of squares non-negative. FEDC_ERANGE names what is implausible. */
FEDC_MUST_CHECK fedc_err fedc_sa_stats_decode(const uint32_t *v, int nf, int k, double *rows,
                                              double *sum, double *sq, uint64_t *cc, fedc_diag *d);

/* Training: [weight][weight x loss][examples][clipped coordinates][unclipped], wide, then
 * weight x clamp(delta, -c, c) in fixed point (c = q->clip). weight in [0, 1]: the client's share
 * of the federation's examples, so that the sum divided by the summed weight is the weighted
 * FedAvg (1 for every client under DP-FedAvg's uniform weights). unclipped: 1 when the update's
 * L2 norm was within the clip norm before clipping (adaptive clipping counts these), else 0. */
size_t fedc_sa_fit_len(size_t n_params);
FEDC_MUST_CHECK fedc_err fedc_sa_fit_encode(uint32_t *v, const float *delta, size_t n,
                                            double weight, double loss, uint64_t examples,
                                            int unclipped, const fedc_sa_quant *q, fedc_diag *d);
typedef struct fedc_sa_fit_sum {
    double weight, wloss, examples, clipped, unclipped;
} fedc_sa_fit_sum;
/* wdelta gets the decoded sum of weight x delta. Checks: weight in (0, n_max], examples a
 * positive integer, the loss non-negative, every coordinate within weight x c. */
FEDC_MUST_CHECK fedc_err fedc_sa_fit_decode(float *wdelta, fedc_sa_fit_sum *out, const uint32_t *v,
                                            size_t n, const fedc_sa_quant *q, uint32_t n_max,
                                            fedc_diag *d);

/* Evaluation: [n][loss sum] wide, then binary [tp][fp][tn][fn] wide and the two histograms one
 * slot per bin; multiclass the K x K confusion one slot per cell; regression [sse][sum y][sum
 * y^2] wide. */
struct fedc_eval_acc;
size_t fedc_sa_eval_len(const struct fedc_eval_acc *a);
FEDC_MUST_CHECK fedc_err fedc_sa_eval_encode(uint32_t *v, const struct fedc_eval_acc *a,
                                             const fedc_sa_quant *q, fedc_diag *d);
/* Into a reset accumulator of the same task and shape; checks that the counts agree (histograms
 * and confusion cells sum to n). */
FEDC_MUST_CHECK fedc_err fedc_sa_eval_decode(struct fedc_eval_acc *a, const uint32_t *v,
                                             fedc_diag *d);

#endif
