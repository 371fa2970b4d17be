/* The SecAgg+ protocol (Bonawitz et al. CCS 2017, eprint 2017/281, section 4 and figure 5; Bell
 * et al. CCS 2020, eprint 2020/704) as two state machines, one per side, on plain structs: the
 * programs move their inputs and outputs over the wire (proto/fedc.proto, fields 30-49), tests
 * drive them in memory. The maths underneath is in secagg.h; docs/security.md has the threat
 * model and the argument for each check.
 *
 * One secure sum ("session") has up to six steps; the surviving sets shrink U1 >= U2 >= U3 >= U4:
 *   0. advertise  each client draws two X25519 key pairs (c: share encryption, s: masking) and a
 *                 32-byte secret r, and signs the public keys and a commitment BLAKE2b(r) with
 *                 its Ed25519 identity, over the full session id and its name
 *                 (fedc_sa_client_begin). The coordinator numbers the advertisers U1 0..n-1 by
 *                 name (fedc_sa_server_new).
 *   1. graph      only when neighbourhoods are smaller than U1 (SecAgg+): the coordinator sends
 *                 everyone the list of names and a digest of the list of commitments
 *                 (fedc_sa_commits_digest); each client reveals r (fedc_sa_client_graph). The
 *                 neighbourhood graph is drawn from a hash of all names, commitments and
 *                 reveals, so no party chooses it: an honest client's r is unpredictable until
 *                 every commitment is fixed, and the digest fixes them (a client checks in step 2
 *                 that the reveals hash to commitments with that digest).
 *   2. share      a client checks the floors (neighbourhood of at least its own min_nbrs, a
 *                 threshold above half of it and at least 2), recomputes the graph and checks its
 *                 neighbourhood against it, checks its neighbours' signatures against the roster,
 *                 Shamir-shares its self-mask seed b and its masking secret key t-of-|N(u)| and
 *                 seals one share pair per neighbour (fedc_sa_client_share). The coordinator
 *                 routes the boxes (fedc_sa_server_shares, fedc_sa_server_routed,
 *                 fedc_sa_client_collect).
 *   3. mask       y_u = x_u + PRG(b_u) + sum over v in N(u) and U2, v != u, of +-PRG(s_uv)
 *                 (fedc_sa_client_mask); the coordinator adds y_u to one running sum
 *                 (fedc_sa_server_masked). A client withholds y_u when fewer than t of its
 *                 neighbours remain.
 *   4. consistency  the coordinator sends U3 (whose masked inputs arrived) to its members; each
 *                 signs (session, its id, the view, U3) with its identity
 *                 (fedc_sa_client_consist), at most once per session.
 *   5. unmask     the coordinator relays the signatures; a client reveals shares of neighbour v
 *                 only after checking at least t valid signatures on the same U3 from v's own
 *                 neighbourhood: b-shares of neighbours in U3, key shares of those in U2 but not
 *                 U3, never both kinds for one peer, at most once per (run, round, stage)
 *                 (fedc_sa_client_unmask). The coordinator removes the masks
 *                 (fedc_sa_server_reveal, fedc_sa_server_finish), leaving sum over U3 of x_u.
 *
 * The session id is BLAKE2b over the run id and a 64-bit counter (round, stage, attempt) that
 * both sides know; a client refuses a counter that does not go forward within a run. Under
 * SecAgg+ a client sees only part of U1, so the id cannot hash everyone's keys; binding to the
 * participants comes from the signatures, the view digest (the threshold and every participant's
 * name, plus the graph seed) that the consistency signatures cover, and the pairwise secrets,
 * which hash both fresh public keys with the session id. */
#ifndef FEDC_SA_PROTO_H
#define FEDC_SA_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"
#include "fedc/secagg.h"

#define FEDC_SA_RUN_BYTES 16
#define FEDC_SA_MAX_NBRS 255                  /* GF(2^8) Shamir: at most 255 holders */
#define FEDC_SA_MAX_N 65536                   /* participants of one session */
#define FEDC_SA_NAME_MAX 64                   /* identity names, as FEDC_NAME_MAX */
#define FEDC_SA_SHARE_PLAIN (4 + 4 + 32 + 32) /* owner, holder, b share, key share */
#define FEDC_SA_SHARE_CT (FEDC_SA_SHARE_PLAIN + FEDC_SA_SEAL_OVERHEAD) /* 112 bytes */
#define FEDC_SA_MAX_ATTEMPT 0xffffffu /* attempts per (round, stage): 24 bits */
#define FEDC_SA_MIN_NBRS_DEFAULT 3

/* Share kinds revealed in the unmask step. */
enum { FEDC_SA_REVEAL_B = 1, FEDC_SA_REVEAL_SK = 2 };

/* Why a client refused a step, for the coordinator to act on (sent as a code with the ids it
 * blames, never as text alone). */
typedef enum fedc_sa_refusal {
    FEDC_SA_REFUSE_NONE = 0,
    FEDC_SA_REFUSE_BAD_KEYS = 1,   /* a neighbour's round keys or signature do not verify */
    FEDC_SA_REFUSE_NOT_LISTED = 2, /* a neighbour is missing from our roster */
    FEDC_SA_REFUSE_COUNTER = 3,    /* the session counter did not go forward */
    FEDC_SA_REFUSE_UNMASKED = 4,   /* this (round, stage) was unmasked already */
    FEDC_SA_REFUSE_FLOOR = 5,      /* neighbourhood or threshold below our floor */
    FEDC_SA_REFUSE_PROTOCOL = 6,   /* anything else the coordinator got wrong */
    FEDC_SA_REFUSE_TOO_FEW = 7     /* too few neighbours or signatures left (withheld) */
} fedc_sa_refusal;

/* A client's advertisement: its two round public keys, its commitment to the graph randomness,
 * and its identity's signature over them. */
typedef struct fedc_sa_adv {
    uint8_t pk_c[32], pk_s[32];
    uint8_t commit[32];
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

/* A consistency signature of session member `id`. */
typedef struct fedc_sa_sig {
    uint32_t id;
    uint8_t sig[FEDC_SA_SIG_BYTES];
} fedc_sa_sig;

/* The session counter both sides derive: round << 32 | stage << 24 | attempt. Within a run it
 * only grows (round 0's statistics, then each round's training and evaluation, retries in
 * between), and it never wraps: attempt must stay below 2^24. */
uint64_t fedc_sa_counter(uint32_t round, uint32_t attempt, int stage);
uint32_t fedc_sa_counter_round(uint64_t counter);
int fedc_sa_counter_stage(uint64_t counter);

/* BLAKE2b-256("fedc-secagg-session" || run id || counter, little-endian 64 bits). */
void fedc_sa_session(uint8_t sid[FEDC_SA_SID_BYTES], const uint8_t run_id[FEDC_SA_RUN_BYTES],
                     uint64_t counter);

/* The smallest threshold a client accepts for a neighbourhood of `size`: a majority of it, and
 * never below 2. */
int fedc_sa_threshold_floor(int size);

/* The fewest inputs in any sum a coordinator can unmask from clients whose floor is min_nbrs
 * (docs/security.md, "What the coordinator learns"): fedc_sa_threshold_floor(min_nbrs). */
int fedc_sa_fewest_in_sum(int min_nbrs);

/* Whether a session of n participants with h links on each side draws a graph (SecAgg+) rather
 * than linking everyone; h <= 0 means ceil(log2 n). */
int fedc_sa_graph_mode(int n, int h);

/* Checks an advertisement against the signer's Ed25519 identity key (the coordinator does it
 * before relaying, every neighbour again). FEDC_ECHECKSUM when it does not verify. */
FEDC_MUST_CHECK fedc_err fedc_sa_adv_verify(const fedc_sa_adv *adv, const uint8_t sign_pk[32],
                                            const uint8_t run_id[FEDC_SA_RUN_BYTES],
                                            uint64_t counter, const char *name);

/* ---- client --------------------------------------------------------------------------------- */

/* Returns the Ed25519 identity key registered for name, or NULL (not in the roster). */
typedef const uint8_t *(*fedc_sa_roster_fn)(void *ctx, const char *name);

/* What a client remembers across the sessions of one run: the last counter it accepted and the
 * (round, stage) pairs it unmasked. */
typedef struct fedc_sa_guard {
    uint8_t run[FEDC_SA_RUN_BYTES];
    int have;
    uint64_t last;
    uint64_t *done; /* (n_done) round << 32 | stage of the stages unmasked */
    int n_done, cap;
} fedc_sa_guard;

typedef struct fedc_sa_client {
    /* settings, kept across sessions (set them after zeroing the struct) */
    int min_nbrs;             /* our floor: 0 means FEDC_SA_MIN_NBRS_DEFAULT */
    fedc_sa_roster_fn roster; /* NULL: no roster, the coordinator's relay is trusted */
    void *roster_ctx;
    fedc_sa_guard guard;
    /* why the last step failed, and the session id it blames (or -1) */
    fedc_sa_refusal refusal;
    int64_t blame;
    /* the session */
    int state;
    uint64_t counter;
    uint8_t sid[FEDC_SA_SID_BYTES];
    char name[FEDC_SA_NAME_MAX + 1];
    uint8_t pk_c[32], sk_c[32], pk_s[32], sk_s[32];
    uint8_t b[32], r[32], commit[32];
    uint8_t view[32];
    uint32_t me;
    int n, h, size, t, graph;
    char *names;         /* (n x (FEDC_SA_NAME_MAX + 1)) every participant's name */
    uint8_t *commits;    /* (n x 32), graph mode: recomputed from the reveals in step 2 */
    uint8_t cdigest[32]; /* graph mode: the digest of the commitments, from step 1 */
    int *nbr;            /* (n x size) graph rows, graph mode (NULL: everyone) */
    uint32_t *ids;       /* (size) our neighbourhood, ascending, holding me */
    uint8_t *enc_key;    /* (size x 32) share-encryption secret with each neighbour */
    uint8_t *mask_seed;  /* (size x 32) pairwise mask seed with each neighbour */
    uint8_t *held;       /* (size x 64) the b and key shares each neighbour gave us */
    uint8_t *in_u2;      /* (size) the neighbour's shares reached us (U2) */
    uint8_t *u3;         /* (n) the survivor set we signed */
} fedc_sa_client;

/* Step 0. Starts a session: refuses (FEDC_EMISMATCH, refusal COUNTER or UNMASKED) a counter that
 * does not go forward in this run or names a (round, stage) unmasked already; otherwise fresh key
 * pairs and graph randomness, the advertisement signed with sign_sk (the Ed25519 secret key of
 * our identity `name`; NULL leaves the signature zero, for runs without a roster). */
FEDC_MUST_CHECK fedc_err fedc_sa_client_begin(fedc_sa_client *c,
                                              const uint8_t run_id[FEDC_SA_RUN_BYTES],
                                              uint64_t counter, const char *name,
                                              const uint8_t *sign_sk, fedc_sa_adv *out,
                                              fedc_diag *d);

/* BLAKE2b-256("fedc-secagg-commits" || n as 32 bits little-endian || the n commitments in session
 * order): what the graph step sends in place of the commitments themselves (32 bytes instead of
 * 32 n); each client recomputes every commitment from the reveals in step 2 and checks it. */
void fedc_sa_commits_digest(uint8_t out[32], const uint8_t *commits, int n);

/* Step 1 (graph mode). The n participants' names in session order and the digest of their
 * commitments: checks that we are `me`, keeps the list and the digest and writes our graph
 * randomness to r. That our own commitment is at `me` is checked in step 2, from the reveals,
 * before anything secret leaves us (r is no secret once revealed). */
FEDC_MUST_CHECK fedc_err fedc_sa_client_graph(fedc_sa_client *c, uint32_t me, int n, int h,
                                              const char *const *names,
                                              const uint8_t commits_digest[32], uint8_t r[32],
                                              fedc_diag *d);

/* One neighbour as the coordinator relays it. */
typedef struct fedc_sa_peer {
    uint32_t id;
    const char *name;
    fedc_sa_adv adv;
} fedc_sa_peer;

/* Step 2. Our neighbourhood of `size` (ascending ids, us included) out of n participants with h
 * links a side and threshold t; reveals holds the n graph reveals in graph mode (NULL
 * otherwise, when the neighbourhood must be everyone). Checks the floors, the reveals against
 * the commitments' digest of step 1 (ours at `me`), the graph, every signature and that our own
 * entry is ours, then writes size - 1 sealed share pairs to out. In graph mode a peer's name and
 * commitment are taken from the participant list and the reveals, never from the peer entry
 * (the coordinator sends neither: its name may be NULL and its adv.commit is not read).
 * FEDC_ECHECKSUM (refusal BAD_KEYS, blame set) for keys that do not verify, FEDC_EINVAL for
 * anything else malformed (refusal FLOOR, NOT_LISTED or PROTOCOL). */
FEDC_MUST_CHECK fedc_err fedc_sa_client_share(fedc_sa_client *c, uint32_t me, int n, int h, int t,
                                              const fedc_sa_peer *peers, int size,
                                              const uint8_t *reveals, fedc_sa_sealed *out,
                                              fedc_diag *d);

/* Step 3, first half: the k boxes the coordinator routed to us (from neighbours in U2). Any box
 * that does not open or names the wrong owner or holder aborts the session (FEDC_ECHECKSUM: a
 * replayed or forged share). FEDC_ERANGE when fewer than t neighbours (us included) remain: we
 * must withhold our input. */
FEDC_MUST_CHECK fedc_err fedc_sa_client_collect(fedc_sa_client *c, const fedc_sa_sealed *in, int k,
                                                fedc_diag *d);

/* Step 3: adds our masks to v (n values, mod 2^32) and wipes the mask secrets. */
FEDC_MUST_CHECK fedc_err fedc_sa_client_mask(fedc_sa_client *c, uint32_t *v, size_t n,
                                             fedc_diag *d);

/* Step 4. U3 (ascending session ids): checks it holds us, names only neighbours whose shares
 * reached us and at least t of our neighbourhood, then signs it with sign_sk (NULL: zero
 * signature). Once per session. */
FEDC_MUST_CHECK fedc_err fedc_sa_client_consist(fedc_sa_client *c, const uint32_t *u3, int n_u3,
                                                const uint8_t *sign_sk,
                                                uint8_t sig[FEDC_SA_SIG_BYTES], fedc_diag *d);

/* Step 5. The consistency signatures relayed to us. For every neighbour v whose shares we hold,
 * at least t valid signatures on our U3 must come from v's neighbourhood (without a roster every
 * signature is taken as valid); then b-shares of neighbours in U3 and key shares of the others
 * go to out (room for size entries, *n_out the count) and the (round, stage) is recorded as
 * unmasked. FEDC_ERANGE (refusal TOO_FEW) when the signatures fall short. */
FEDC_MUST_CHECK fedc_err fedc_sa_client_unmask(fedc_sa_client *c, const fedc_sa_sig *sigs, int k,
                                               fedc_sa_reveal *out, int *n_out, fedc_diag *d);

/* Ends the session (secrets wiped) but keeps the settings and the guard. */
void fedc_sa_client_end(fedc_sa_client *c);
/* Wipes and frees everything, the guard included. */
void fedc_sa_client_free(fedc_sa_client *c);

/* ---- coordinator ----------------------------------------------------------------------------- */

typedef struct fedc_sa_server {
    int n, h, size, t, graph;
    uint64_t counter;
    fedc_sa_graph g;
    uint8_t sid[FEDC_SA_SID_BYTES];
    uint8_t run[FEDC_SA_RUN_BYTES];
    uint8_t gseed[32];   /* the graph seed in graph mode, else zero */
    fedc_sa_adv *adv;    /* (n) */
    char *names;         /* (n x (FEDC_SA_NAME_MAX + 1)) */
    uint8_t *reveals;    /* (n x 32), graph mode */
    uint8_t *flags;      /* (n) internal: revealed r, shared (U2), masked (U3), signed (U4) */
    fedc_sa_sealed *box; /* (n x size) box[to][pos of sender in N(to)] */
    uint8_t *box_ok;     /* (n x size) */
    uint8_t *shares;     /* (n x size x 32) shares[owner][pos of holder in N(owner)] */
    uint8_t *got;        /* (n x size) */
    uint8_t *sigs;       /* (n x 64) consistency signatures */
    uint32_t *sum;       /* (len) running sum of masked inputs; the result after finish */
    size_t len;
    int n_r, n_u2, n_u3, n_u4;
} fedc_sa_server;

/* Sets up a session over the n advertisers (ids 0..n-1, in the order of adv and names): h links
 * on each side (h <= 0: about log2 n; everyone when that covers n), threshold t from t_req as
 * fedc_sa_threshold, inputs of len values. In graph mode the graph is drawn once every reveal
 * is in (fedc_sa_server_graph_r); otherwise at once. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_new(fedc_sa_server *s, int n, int h, int t_req,
                                            const uint8_t run_id[FEDC_SA_RUN_BYTES],
                                            uint64_t counter, const fedc_sa_adv *adv,
                                            const char *const *names, size_t len, fedc_diag *d);

/* Graph mode: client id's reveal. FEDC_ECHECKSUM when it does not match its commitment. When
 * the last one arrives the graph is drawn. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_graph_r(fedc_sa_server *s, uint32_t id, const uint8_t r[32],
                                                fedc_diag *d);
/* Whether the graph is known (always outside graph mode). */
int fedc_sa_server_graph_ready(const fedc_sa_server *s);

/* Whether client id is in U2 (its shares arrived) / U3 (its masked input arrived) / U4 (it
 * signed U3). */
int fedc_sa_server_in_u2(const fedc_sa_server *s, uint32_t id);
int fedc_sa_server_in_u3(const fedc_sa_server *s, uint32_t id);
int fedc_sa_server_in_u4(const fedc_sa_server *s, uint32_t id);

/* Client `id`'s neighbourhood (once the graph is ready): size ids, ascending, holding id. */
const int *fedc_sa_server_nbrs(const fedc_sa_server *s, uint32_t id);

/* Step 2: the boxes client `from` sealed for its neighbours (exactly size - 1, one per
 * neighbour). FEDC_EINVAL for a wrong set; the client then stays out of U2. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_shares(fedc_sa_server *s, uint32_t from,
                                               const fedc_sa_sealed *in, int k, fedc_diag *d);

/* After step 2 closed: the boxes for `to` from its neighbours in U2 (out: room for size - 1);
 * returns the count. */
int fedc_sa_server_routed(const fedc_sa_server *s, uint32_t to, fedc_sa_sealed *out);

/* Step 3: adds client `from`'s masked input (len values). FEDC_EINVAL when it is not in U2 or
 * sent one already. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_masked(fedc_sa_server *s, uint32_t from, const uint32_t *y,
                                               fedc_diag *d);
/* The same for an input that arrives in chunks: adds count little-endian uint32 at y (wire bytes,
 * any alignment) into the sum at offset, mod 2^32; the client counts as having sent its input
 * (U3) only with fedc_sa_server_masked_done after its last chunk. A member whose chunks were
 * added but that never finishes has spoilt the sum: the caller must fail the session. FEDC_EINVAL
 * when `from` is not in U2 or is in U3 already, FEDC_ERANGE for a range outside the input. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_masked_range(fedc_sa_server *s, uint32_t from,
                                                     size_t offset, const uint8_t *y, size_t count,
                                                     fedc_diag *d);
FEDC_MUST_CHECK fedc_err fedc_sa_server_masked_done(fedc_sa_server *s, uint32_t from, fedc_diag *d);

/* After step 3 closed: U3 in ascending order (room for n); returns its size. */
int fedc_sa_server_u3(const fedc_sa_server *s, uint32_t *out);

/* Step 4: client `from`'s consistency signature (checked by the caller, who holds the
 * identities). FEDC_EINVAL when it is not in U3 or signed already. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_consist(fedc_sa_server *s, uint32_t from,
                                                const uint8_t sig[FEDC_SA_SIG_BYTES], fedc_diag *d);

/* After step 4 closed: the signatures client `to` needs, those of U4 in the neighbourhoods of
 * its neighbours (out: room for n); returns the count. */
int fedc_sa_server_sigs_for(const fedc_sa_server *s, uint32_t to, fedc_sa_sig *out);

/* Checks a consistency signature over (session, signer id, view, U3) against the signer's
 * identity key; view as the clients compute it (fedc_sa_server_view). */
FEDC_MUST_CHECK fedc_err fedc_sa_consist_verify(const uint8_t sig[FEDC_SA_SIG_BYTES],
                                                const uint8_t sign_pk[32],
                                                const uint8_t sid[FEDC_SA_SID_BYTES], uint32_t id,
                                                const uint8_t view[32], const uint32_t *u3,
                                                int n_u3);
/* The view digest every honest client of this session computes (after the graph is ready). */
void fedc_sa_server_view(const fedc_sa_server *s, uint8_t view[32]);

/* Step 5: client `from`'s revealed shares. FEDC_EINVAL for a share it was not asked for. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_reveal(fedc_sa_server *s, uint32_t from,
                                               const fedc_sa_reveal *r, int k, fedc_diag *d);

/* Removes the masks: s->sum becomes the sum over U3 of the inputs. FEDC_ERANGE when a secret
 * lacks t shares or U3 is below t (the stage must then be abandoned, never retried once shares
 * were revealed), FEDC_ECHECKSUM when a rebuilt key does not match its public key. */
FEDC_MUST_CHECK fedc_err fedc_sa_server_finish(fedc_sa_server *s, fedc_diag *d);

void fedc_sa_server_free(fedc_sa_server *s);

#ifdef FEDC_SA_TEST_WEAK
/* Test-only build (tests/fl/test_sa_attacks.c): switches that turn single defences off so that
 * each attack test can show its decoder does recover an input when the defence is missing. */
typedef struct fedc_sa_weak {
    int no_floor;   /* accept any neighbourhood size and threshold >= 1 */
    int no_consist; /* reveal without checking consistency signatures */
    int no_graph;   /* accept any neighbourhood the coordinator sends */
    int no_guard;   /* accept any counter and repeated unmasks */
} fedc_sa_weak;
extern fedc_sa_weak fedc_sa_weakened;
#endif

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
/* The same with np (0 or nf) more wide values after the class counts: per feature, the cells
 * present (--missing mean: sums and squares are over these). Decoding also checks each is a
 * count of at most the rows. */
size_t fedc_sa_stats_len_p(int nf, int k, int np);
FEDC_MUST_CHECK fedc_err fedc_sa_stats_encode_p(uint32_t *v, uint64_t rows, const double *sum,
                                                const double *sq, int nf, const uint64_t *cc, int k,
                                                const double *present, int np, fedc_diag *d);
FEDC_MUST_CHECK fedc_err fedc_sa_stats_decode_p(const uint32_t *v, int nf, int k, double *rows,
                                                double *sum, double *sq, uint64_t *cc,
                                                double *present, int np, fedc_diag *d);

/* Training: [weight][weight x loss][examples][clipped coordinates][unclipped], wide, then
 * weight x clamp(delta, -c, c) in fixed point (c = q->clip). weight in [0, 1]: the client's share
 * of the federation's examples, so that the sum divided by the summed weight is the weighted
 * FedAvg (1 for every client under DP-FedAvg's uniform weights). unclipped: 1 when the update's
 * L2 norm was within the clip norm before clipping (adaptive clipping counts these), else 0.
 * delta may lie in v itself, as floats at v + fedc_sa_fit_len(n) - n (where the values go): each
 * value is read before its slot is written, so a client encodes its update in place. */
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
