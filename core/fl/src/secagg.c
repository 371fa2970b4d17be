/* Secure-aggregation maths (contracts and formulas in secagg.h and docs/security.md). */
#include "fedc/secagg.h"

#include "fedc/rng.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define RAND_CHUNK 4096 /* uniform draws fetched per randombytes_buf call */
#define PRG_CHUNK 1024  /* uint32 values per key-stream piece: 64 ChaCha20 blocks */

static int sodium_ready(void) {
    return sodium_init() >= 0;
}

fedc_err fedc_sa_quant_make(fedc_sa_quant *q, uint32_t n_max, float clip, fedc_diag *d) {
    if (n_max < 1 || n_max > (1u << 20) || !(clip > 0.0f) || !isfinite(clip)) {
        fedc_diag_set(d,
                      "secure aggregation: need 1 <= clients <= 2^20 and a positive clip, got "
                      "%u and %g",
                      n_max, (double)clip);
        return FEDC_EINVAL;
    }
    int lg = 0;
    while ((1u << lg) < n_max)
        lg++; /* ceil(log2 n_max) */
    q->bits = 32 - lg;
    q->scale = (ldexp(1.0, q->bits - 1) - 1.0) / (double)clip;
    q->clip = clip;
    return FEDC_OK;
}

fedc_err fedc_sa_quantise(uint32_t *out, const float *x, size_t n, const fedc_sa_quant *q,
                          fedc_diag *d) {
    return fedc_sa_quantise_scaled(out, x, n, 1.0, q, NULL, d);
}

fedc_err fedc_sa_quantise_scaled(uint32_t *out, const float *x, size_t n, double w,
                                 const fedc_sa_quant *q, size_t *clamped, fedc_diag *d) {
    if (!sodium_ready()) {
        fedc_diag_set(d, "libsodium cannot start");
        return FEDC_EIO;
    }
    if (!(w >= 0.0 && w <= 1.0)) {
        fedc_diag_set(d, "secure aggregation: weight %g outside [0, 1]", w);
        return FEDC_EINVAL;
    }
    /* The rounding noise must be secret: a ChaCha20 stream under a fresh random key (one
     * getrandom-backed draw instead of one per chunk, which cost most of the time). */
    uint32_t r[RAND_CHUNK];
    uint8_t key[crypto_stream_chacha20_ietf_KEYBYTES];
    static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
    static const uint8_t zeros[RAND_CHUNK * 4] = {0};
    randombytes_buf(key, sizeof key);
    const double c = (double)q->clip, s = q->scale * w, inv32 = ldexp(1.0, -32);
    size_t nc = 0;
    for (size_t i0 = 0; i0 < n; i0 += RAND_CHUNK) {
        size_t m = n - i0 < RAND_CHUNK ? n - i0 : RAND_CHUNK;
        crypto_stream_chacha20_ietf_xor_ic((uint8_t *)r, zeros, m * 4, nonce, (uint32_t)(i0 / 16),
                                           key);
        for (size_t k = 0; k < m; k++) {
            double v = x[i0 + k];
            if (!isfinite(v)) {
                sodium_memzero(r, sizeof r);
                sodium_memzero(key, sizeof key);
                fedc_diag_set(d, "secure aggregation: value %zu is not finite", i0 + k);
                return FEDC_ERANGE;
            }
            nc += v > c || v < -c;
            v = v > c ? c : v < -c ? -c : v;
            double f = floor(v * s + (double)r[k] * inv32);
            out[i0 + k] = (uint32_t)(int32_t)f;
        }
    }
    sodium_memzero(key, sizeof key);
    sodium_memzero(r, sizeof r);
    if (clamped)
        *clamped = nc;
    return FEDC_OK;
}

void fedc_sa_decode(float *out, const uint32_t *z, size_t n, const fedc_sa_quant *q) {
    const double inv = 1.0 / q->scale;
    for (size_t i = 0; i < n; i++)
        out[i] = (float)((double)(int32_t)z[i] * inv);
}

void fedc_sa_prg_apply(uint32_t *v, size_t n, const uint8_t seed[FEDC_SA_SEED_BYTES], int sign) {
    static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
    static const uint8_t zeros[PRG_CHUNK * 4] = {0};
    const size_t chunks = (n + PRG_CHUNK - 1) / PRG_CHUNK;
    (void)sodium_ready();
#pragma omp parallel for schedule(static) if (n >= (1u << 16))
    for (size_t ch = 0; ch < chunks; ch++) {
        uint8_t ks[PRG_CHUNK * 4];
        size_t i0 = ch * PRG_CHUNK, m = n - i0 < PRG_CHUNK ? n - i0 : PRG_CHUNK;
        /* Block counter: 16 values per 64-byte block, so this chunk starts at block i0 / 16. */
        crypto_stream_chacha20_ietf_xor_ic(ks, zeros, m * 4, nonce, (uint32_t)(i0 / 16), seed);
        for (size_t k = 0; k < m; k++) {
            uint32_t w = (uint32_t)ks[4 * k] | (uint32_t)ks[4 * k + 1] << 8 |
                         (uint32_t)ks[4 * k + 2] << 16 | (uint32_t)ks[4 * k + 3] << 24;
            v[i0 + k] += sign > 0 ? w : (uint32_t)0 - w;
        }
        sodium_memzero(ks, sizeof ks);
    }
}

static void put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

fedc_err fedc_sa_pair_secret(uint8_t out[32], const uint8_t my_sk[32], const uint8_t my_pk[32],
                             const uint8_t their_pk[32], const uint8_t sid[FEDC_SA_SID_BYTES]) {
    uint8_t q[crypto_scalarmult_BYTES];
    (void)sodium_ready();
    if (crypto_scalarmult(q, my_sk, their_pk) != 0) {
        sodium_memzero(q, sizeof q);
        return FEDC_EINVAL; /* a low-order point: never use the all-zero result */
    }
    int mine_first = memcmp(my_pk, their_pk, 32) < 0;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, q, sizeof q);
    crypto_generichash_update(&st, mine_first ? my_pk : their_pk, 32);
    crypto_generichash_update(&st, mine_first ? their_pk : my_pk, 32);
    crypto_generichash_update(&st, sid, FEDC_SA_SID_BYTES);
    crypto_generichash_final(&st, out, 32);
    sodium_memzero(q, sizeof q);
    return FEDC_OK;
}

/* ---- GF(2^8), reduction polynomial x^8 + x^4 + x^3 + x + 1, constant time ------------------ */

static uint8_t gf_mul(uint8_t a, uint8_t b) {
    uint8_t p = 0;
    for (int i = 0; i < 8; i++) {
        p ^= (uint8_t)(-(b & 1) & a);
        uint8_t hi = (uint8_t) - (a >> 7);
        a = (uint8_t)((a << 1) ^ (hi & 0x1b));
        b >>= 1;
    }
    return p;
}

/* a^254 = a^-1 for a != 0 (the multiplicative group has order 255). */
static uint8_t gf_inv(uint8_t a) {
    uint8_t r = 1, x = a;
    for (int e = 254; e; e >>= 1) {
        if (e & 1)
            r = gf_mul(r, x);
        x = gf_mul(x, x);
    }
    return r;
}

static int check_xs(const uint8_t *xs, int k, fedc_diag *d) {
    for (int i = 0; i < k; i++) {
        if (xs[i] == 0) {
            fedc_diag_set(d, "Shamir: x-coordinate %d is 0 (it would reveal the secret)", i);
            return -1;
        }
        for (int j = 0; j < i; j++) {
            if (xs[i] == xs[j]) {
                fedc_diag_set(d, "Shamir: x-coordinate %u appears twice", xs[i]);
                return -1;
            }
        }
    }
    return 0;
}

fedc_err fedc_shamir_split(uint8_t *shares, const uint8_t *secret, size_t len, int t, int n,
                           const uint8_t *xs, fedc_diag *d) {
    if (t < 1 || n < t || n > 255) {
        fedc_diag_set(d, "Shamir: need 1 <= t <= n <= 255, got t %d, n %d", t, n);
        return FEDC_EINVAL;
    }
    if (check_xs(xs, n, d))
        return FEDC_EINVAL;
    if (!sodium_ready()) {
        fedc_diag_set(d, "libsodium cannot start");
        return FEDC_EIO;
    }
    uint8_t coef[255];
    for (size_t j = 0; j < len; j++) {
        coef[0] = secret[j];
        randombytes_buf(coef + 1, (size_t)t - 1);
        for (int i = 0; i < n; i++) {
            uint8_t y = 0; /* Horner */
            for (int k = t - 1; k >= 0; k--)
                y = (uint8_t)(gf_mul(y, xs[i]) ^ coef[k]);
            shares[(size_t)i * len + j] = y;
        }
    }
    sodium_memzero(coef, sizeof coef);
    return FEDC_OK;
}

fedc_err fedc_shamir_combine(uint8_t *secret, const uint8_t *shares, size_t len, int k,
                             const uint8_t *xs, fedc_diag *d) {
    if (k < 1 || k > 255) {
        fedc_diag_set(d, "Shamir: need 1..255 shares, got %d", k);
        return FEDC_EINVAL;
    }
    if (check_xs(xs, k, d))
        return FEDC_EINVAL;
    uint8_t lag[255];
    for (int i = 0; i < k; i++) { /* Lagrange basis at 0: prod x_m / (x_m - x_i) */
        uint8_t num = 1, den = 1;
        for (int m = 0; m < k; m++) {
            if (m == i)
                continue;
            num = gf_mul(num, xs[m]);
            den = gf_mul(den, (uint8_t)(xs[m] ^ xs[i]));
        }
        lag[i] = gf_mul(num, gf_inv(den));
    }
    for (size_t j = 0; j < len; j++) {
        uint8_t s = 0;
        for (int i = 0; i < k; i++)
            s ^= gf_mul(shares[(size_t)i * len + j], lag[i]);
        secret[j] = s;
    }
    return FEDC_OK;
}

static void make_ad(uint8_t ad[FEDC_SA_SID_BYTES + 8], const uint8_t *sid, uint32_t sender,
                    uint32_t receiver) {
    memcpy(ad, sid, FEDC_SA_SID_BYTES);
    put_le32(ad + FEDC_SA_SID_BYTES, sender);
    put_le32(ad + FEDC_SA_SID_BYTES + 4, receiver);
}

void fedc_sa_seal(uint8_t *out, const uint8_t *msg, size_t len,
                  const uint8_t key[FEDC_SA_KEY_BYTES], const uint8_t sid[FEDC_SA_SID_BYTES],
                  uint32_t sender, uint32_t receiver) {
    uint8_t ad[FEDC_SA_SID_BYTES + 8];
    (void)sodium_ready();
    make_ad(ad, sid, sender, receiver);
    randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                               &clen, msg, len, ad, sizeof ad, NULL, out, key);
}

fedc_err fedc_sa_open(uint8_t *out, const uint8_t *in, size_t in_len,
                      const uint8_t key[FEDC_SA_KEY_BYTES], const uint8_t sid[FEDC_SA_SID_BYTES],
                      uint32_t sender, uint32_t receiver) {
    if (in_len < FEDC_SA_SEAL_OVERHEAD)
        return FEDC_ECHECKSUM;
    uint8_t ad[FEDC_SA_SID_BYTES + 8];
    (void)sodium_ready();
    make_ad(ad, sid, sender, receiver);
    unsigned long long mlen = 0;
    const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, in + nb, in_len - nb, ad,
                                                   sizeof ad, in, key) != 0)
        return FEDC_ECHECKSUM;
    return FEDC_OK;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

fedc_err fedc_sa_graph_make(fedc_sa_graph *g, int n, int h, uint64_t seed, uint32_t round,
                            fedc_diag *d) {
    memset(g, 0, sizeof *g);
    if (n < 1 || n > (1 << 20)) {
        fedc_diag_set(d, "secure aggregation: %d clients, expected 1..2^20", n);
        return FEDC_EINVAL;
    }
    if (h <= 0) {
        h = 0;
        while ((1 << h) < n)
            h++; /* ceil(log2 n) */
    }
    int size = 2 * h + 1 < n ? 2 * h + 1 : n;
    int *order = malloc(sizeof(int) * (size_t)n), *pos = malloc(sizeof(int) * (size_t)n);
    g->nbr = malloc(sizeof(int) * (size_t)n * (size_t)size);
    if (!order || !pos || !g->nbr) {
        free(order);
        free(pos);
        free(g->nbr);
        g->nbr = NULL;
        return FEDC_ENOMEM;
    }
    for (int i = 0; i < n; i++)
        order[i] = i;
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(seed, 0x7365636167677270ull /* "secaggrp" */, round, 0));
    fedc_rng_shuffle(&r, order, n);
    for (int i = 0; i < n; i++)
        pos[order[i]] = i;
    for (int u = 0; u < n; u++) {
        int *row = g->nbr + (size_t)u * (size_t)size;
        if (size == n) {
            for (int v = 0; v < n; v++)
                row[v] = v;
            continue;
        }
        for (int k = -h; k <= h; k++)
            row[k + h] = order[((pos[u] + k) % n + n) % n];
        qsort(row, (size_t)size, sizeof *row, cmp_int);
    }
    free(order);
    free(pos);
    g->n = n;
    g->size = size;
    return FEDC_OK;
}

void fedc_sa_graph_free(fedc_sa_graph *g) {
    free(g->nbr);
    memset(g, 0, sizeof *g);
}

int fedc_sa_threshold(int size, int requested) {
    if (size < 1)
        return -1;
    if (requested <= 0)
        return size / 2 + 1;
    return requested > size / 2 && requested <= size ? requested : -1;
}
