/* Secure-aggregation maths (SecAgg / SecAgg+, Bonawitz et al. CCS 2017; Bell et al. CCS 2020),
 * with the libsodium calls of docs/security.md. No sockets here: the protocol rounds that move
 * these values between clients and the coordinator live in the programs.
 *
 * - Fixed point: x in [-c, c] becomes q = floor(x * s + u), u uniform in [0, 1) from secret
 *   randomness (unbiased stochastic rounding), s = (2^(B-1) - 1) / c with B = 32 - ceil(log2
 *   n_max), stored as (uint32_t)(int32_t)q; sums of up to n_max such values cannot wrap, and
 *   decoding reads the sum as int32 and divides by s.
 * - Masks: a ChaCha20 (IETF) key stream keyed by a 256-bit seed, read as little-endian uint32,
 *   added or subtracted mod 2^32. Pairwise seeds come from X25519 (crypto_scalarmult) hashed with
 *   both public keys in a fixed order and the session id, so PRG(s_uv) == PRG(s_vu); client u adds
 *   the pairwise mask when u < v and subtracts it otherwise, so the masks cancel in the sum.
 * - Shamir t-of-n sharing, bytewise over GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1), so at
 *   most 255 shareholders; x-coordinates 1..255, distinct.
 * - Shares travel encrypted with XChaCha20-Poly1305, the associated data binding session, sender
 *   and receiver. */
#ifndef FEDC_SECAGG_H
#define FEDC_SECAGG_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"

#define FEDC_SA_SEED_BYTES 32
#define FEDC_SA_KEY_BYTES 32
#define FEDC_SA_SID_BYTES 32
#define FEDC_SA_SEAL_OVERHEAD (24 + 16) /* nonce + tag */

/* Bits per value and scale for at most n_max clients and clipping bound c > 0. */
typedef struct fedc_sa_quant {
    int bits;     /* B = 32 - ceil(log2 n_max) */
    double scale; /* s = (2^(B-1) - 1) / c */
    float clip;   /* c */
} fedc_sa_quant;

/* FEDC_EINVAL for n_max < 1 or > 2^20, or a clip that is not a positive finite number. */
FEDC_MUST_CHECK fedc_err fedc_sa_quant_make(fedc_sa_quant *q, uint32_t n_max, float clip,
                                            fedc_diag *d);

/* out[i] = (uint32_t)(int32_t)floor(clamp(x[i], -c, c) * s + u_i), u_i secret uniform in [0, 1).
 * Non-finite inputs: FEDC_ERANGE naming the index (out unchanged beyond it). */
FEDC_MUST_CHECK fedc_err fedc_sa_quantise(uint32_t *out, const float *x, size_t n,
                                          const fedc_sa_quant *q, fedc_diag *d);

/* The same for clamp(x[i], -c, c) * w with w in [0, 1] (a client's weight in FedAvg); *clamped
 * (may be NULL) gets the number of values that were outside [-c, c]. */
FEDC_MUST_CHECK fedc_err fedc_sa_quantise_scaled(uint32_t *out, const float *x, size_t n, double w,
                                                 const fedc_sa_quant *q, size_t *clamped,
                                                 fedc_diag *d);

/* out[i] = (int32_t)z[i] / s: the decoded sum of the quantised values. */
void fedc_sa_decode(float *out, const uint32_t *z, size_t n, const fedc_sa_quant *q);

/* v[i] += sign * PRG(seed)[i] mod 2^32 (sign +1 or -1). The key stream is ChaCha20-IETF with a
 * zero nonce, split across OpenMP threads by 64-byte block counter. */
void fedc_sa_prg_apply(uint32_t *v, size_t n, const uint8_t seed[FEDC_SA_SEED_BYTES], int sign);

/* The pairwise secret of two X25519 key pairs: BLAKE2b-256(q || min(pk) || max(pk) || sid) with q
 * = crypto_scalarmult(my_sk, their_pk). Both sides get the same 32 bytes. FEDC_EINVAL when
 * crypto_scalarmult fails (a low-order public key). */
FEDC_MUST_CHECK fedc_err fedc_sa_pair_secret(uint8_t out[32], const uint8_t my_sk[32],
                                             const uint8_t my_pk[32], const uint8_t their_pk[32],
                                             const uint8_t sid[FEDC_SA_SID_BYTES]);

/* Splits len secret bytes into n shares for x-coordinates xs[0..n) with threshold t (1 <= t <= n
 * <= 255): shares is n x len bytes. Coefficients come from secret randomness. FEDC_EINVAL for a
 * bad t/n or a zero or repeated x. */
FEDC_MUST_CHECK fedc_err fedc_shamir_split(uint8_t *shares, const uint8_t *secret, size_t len,
                                           int t, int n, const uint8_t *xs, fedc_diag *d);

/* Reconstructs the secret from k shares (k x len bytes) at xs[0..k) by Lagrange interpolation at
 * 0. With fewer than t shares the result is garbage, as it must be. FEDC_EINVAL for k < 1 or a
 * zero or repeated x. */
FEDC_MUST_CHECK fedc_err fedc_shamir_combine(uint8_t *secret, const uint8_t *shares, size_t len,
                                             int k, const uint8_t *xs, fedc_diag *d);

/* Encrypts len bytes for a peer: out gets nonce || ciphertext || tag (len +
 * FEDC_SA_SEAL_OVERHEAD bytes), associated data = sid || sender || receiver. */
void fedc_sa_seal(uint8_t *out, const uint8_t *msg, size_t len,
                  const uint8_t key[FEDC_SA_KEY_BYTES], const uint8_t sid[FEDC_SA_SID_BYTES],
                  uint32_t sender, uint32_t receiver);

/* Decrypts and authenticates; FEDC_ECHECKSUM when the key, session, sender, receiver or bytes do
 * not match. out gets in_len - FEDC_SA_SEAL_OVERHEAD bytes. */
FEDC_MUST_CHECK fedc_err fedc_sa_open(uint8_t *out, const uint8_t *in, size_t in_len,
                                      const uint8_t key[FEDC_SA_KEY_BYTES],
                                      const uint8_t sid[FEDC_SA_SID_BYTES], uint32_t sender,
                                      uint32_t receiver);

/* Neighbourhoods (SecAgg+, Bell et al. 2020): over an order of the n clients shuffled by (seed,
 * round), each client is linked to h clients on each side of a ring, so its neighbourhood holds
 * 2h + 1 clients including itself; with n <= 2h + 1 that is everyone (full SecAgg). h <= 0 picks
 * h = ceil(log2 n). The graph is symmetric: v is u's neighbour exactly when u is v's. */
typedef struct fedc_sa_graph {
    int n;    /* clients, indices 0..n-1 */
    int size; /* neighbourhood size, the same for everyone: min(n, 2h + 1) */
    int *nbr; /* n x size client indices, each row ascending and holding the client itself */
} fedc_sa_graph;

FEDC_MUST_CHECK fedc_err fedc_sa_graph_make(fedc_sa_graph *g, int n, int h, uint64_t seed,
                                            uint32_t round, fedc_diag *d);
void fedc_sa_graph_free(fedc_sa_graph *g);

/* The Shamir threshold for a neighbourhood of `size`: requested when > 0 (it must be more than
 * size / 2, so a lying coordinator cannot obtain both share kinds of one client, and at most
 * size), else floor(size / 2) + 1. Returns -1 for an impossible request. */
int fedc_sa_threshold(int size, int requested);

#define FEDC_SA_SIG_BYTES 64 /* Ed25519 signatures (sa_proto.h signs round keys with them) */

#endif
