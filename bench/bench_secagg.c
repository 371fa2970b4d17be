/* bench_secagg: the client-side cost of secure aggregation's masks against the machine's raw
 * ChaCha20 throughput (the target: mask generation at least half of it), plus
 * quantisation and Shamir sharing, for 100k and 1M parameters and 10 and 100 neighbours.
 *
 *   bench_secagg [--reps N]
 *
 * "raw ChaCha20" is libsodium's crypto_stream_chacha20_ietf writing a key stream of the same
 * size; "mask" is fedc_sa_prg_apply adding one pairwise mask to a vector (key stream + add).
 * Medians of N repetitions (default 15), one thread (OMP_NUM_THREADS decides for fedc's masks
 * of 64k values and more; run with OMP_NUM_THREADS=1 for a like-for-like ratio). */
#define _POSIX_C_SOURCE 200809L
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedc/secagg.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    int reps = 15;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--reps N]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 1000 || sodium_init() < 0)
        return 2;
    printf("bench_secagg: medians of %d repetitions\n\n", reps);
    printf("%10s  %14s  %14s  %10s  %14s  %18s  %18s\n", "params", "chacha20_GB/s", "mask_GB/s",
           "mask/raw", "quantise_ms", "mask_10_peers_ms", "mask_100_peers_ms");
    const size_t sizes[] = {100000, 1000000};
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (size_t k = 0; k < 2; k++) {
        size_t n = sizes[k];
        uint8_t *ks = malloc(4 * n), seed[32], nonce[12] = {0};
        uint32_t *v = calloc(n, 4);
        float *x = malloc(sizeof(float) * n);
        if (!t || !ks || !v || !x)
            return 1;
        randombytes_buf(seed, sizeof seed);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((int)(i % 200) - 100) * 1e-3f;
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            crypto_stream_chacha20_ietf(ks, 4 * n, nonce, seed);
            t[r] = now_s() - t0;
        }
        double raw = median(t, reps);
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            fedc_sa_prg_apply(v, n, seed, +1);
            t[r] = now_s() - t0;
        }
        double mask = median(t, reps);
        fedc_sa_quant q;
        fedc_diag d;
        if (fedc_sa_quant_make(&q, 1024, 1.0f, &d))
            return 1;
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            if (fedc_sa_quantise(v, x, n, &q, &d))
                return 1;
            t[r] = now_s() - t0;
        }
        double quant = median(t, reps);
        double gb = 4.0 * (double)n / 1e9;
        /* A client adds one self mask and one pairwise mask per neighbour. */
        printf("%10zu  %14.2f  %14.2f  %10.2f  %14.2f  %18.1f  %18.1f\n", n, gb / raw, gb / mask,
               raw / mask, 1e3 * quant, 1e3 * (quant + 11 * mask), 1e3 * (quant + 101 * mask));
        free(ks);
        free(v);
        free(x);
    }
    /* Shamir: a client shares its 32-byte masking key and 32-byte self-mask seed with each
     * neighbour. */
    printf("\n%10s  %10s  %16s  %16s\n", "neighbours", "threshold", "split_64B_us",
           "combine_64B_us");
    const int ns[] = {10, 100};
    for (int k = 0; k < 2; k++) {
        int n = ns[k], th = n / 2 + 1;
        uint8_t xs[255], secret[64], back[64];
        uint8_t *shares = malloc((size_t)n * 64);
        for (int i = 0; i < n; i++)
            xs[i] = (uint8_t)(i + 1);
        randombytes_buf(secret, sizeof secret);
        fedc_diag d;
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            if (fedc_shamir_split(shares, secret, 64, th, n, xs, &d))
                return 1;
            t[r] = now_s() - t0;
        }
        double sp = median(t, reps);
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            if (fedc_shamir_combine(back, shares, 64, th, xs, &d))
                return 1;
            t[r] = now_s() - t0;
        }
        double co = median(t, reps);
        printf("%10d  %10d  %16.1f  %16.1f\n", n, th, 1e6 * sp, 1e6 * co);
        free(shares);
    }
    free(t);
    printf("\ntarget: mask/raw >= 0.5 (mask generation at least half the raw ChaCha20 rate)\n");
    return 0;
}
