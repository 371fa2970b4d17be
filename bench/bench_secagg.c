/* bench_secagg: the client-side cost of secure aggregation's masks against the machine's raw
 * ChaCha20 throughput (the target: mask generation at least half of it), plus
 * quantisation and Shamir sharing, for 100k and 1M parameters and 10 and 100 neighbours.
 *
 *   bench_secagg [--reps N]
 *
 * "raw ChaCha20" is libsodium's crypto_stream_chacha20_ietf writing a key stream of the same
 * size; "mask" is fedc_sa_prg_apply adding one pairwise mask to a vector (key stream + add).
 * Medians of N repetitions (default 15), one thread (OMP_NUM_THREADS decides for fedc's masks
 * of 64k values and more; run with OMP_NUM_THREADS=1 for a like-for-like ratio).
 *
 * Then the whole SecAgg+ protocol in memory (core/fl/sa_proto.h) for 10 and 100 clients and 100k
 * and 1M values: per client the time of its key agreement and sharing (step 1) and of its
 * masking (step 2), the coordinator's time to add the masked inputs and to unmask with no
 * dropouts and with 10% of the clients dropping right after ShareKeys, the bytes one client
 * sends and receives in the session's secure-aggregation messages (keys, graph reveals, shares,
 * masked vector, survivor set, consistency signatures, unmask) against the 4 bytes per value of
 * a plain float32 update, and per client the time of the consistency round (signing the
 * survivor set, checking the neighbourhoods' signatures) and of revealing. Every client has an
 * Ed25519 identity and checks its neighbours against a roster, as fedc-client does. */
#define _POSIX_C_SOURCE 200809L
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedc/clock.h"
#include "fedc/sa_proto.h"
#include "fedc/secagg.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Protobuf framing is not counted: a sealed share is 112 bytes plus two ids, a key message two
 * 32-byte keys, a commitment and a signature, a revealed share 32 bytes plus owner and kind. */
#define WIRE_KEYS (32 + 32 + 64)
#define WIRE_BOX (FEDC_SA_SHARE_CT + 8)
#define WIRE_REVEAL (32 + 8)

static fedc_sa_server g_srv;

/* Identities and the roster of the simulated clients (every client checks its neighbours'
 * signatures, as fedc-client does with --peers). */
typedef struct roster {
    int n;
    char (*name)[16];
    uint8_t (*pk)[32];
    uint8_t (*sk)[64];
} roster;

static const uint8_t *roster_find(void *ctx, const char *name) {
    const roster *r = ctx;
    int u = atoi(name + 1);
    return u >= 0 && u < r->n && strcmp(r->name[u], name) == 0 ? r->pk[u] : NULL;
}

/* One session; with drop, the first 10% of the clients drop after ShareKeys. Prints one line
 * per call (drop = 0: everything; drop = 1: the unmask time with dropouts, merged into the
 * previous line's slot). */
static double g_unmask0;
static int protocol(int n, size_t len, int drop) {
    fedc_diag d;
    uint8_t run[FEDC_SA_RUN_BYTES] = {1};
    uint64_t counter = fedc_sa_counter(1, 0, FEDC_SA_STAGE_FIT);
    fedc_sa_client *cl = calloc((size_t)n, sizeof *cl);
    fedc_sa_adv *adv = calloc((size_t)n, sizeof *adv);
    uint32_t *y = malloc(4 * len);
    fedc_sa_sealed *box = malloc(sizeof *box * FEDC_SA_MAX_NBRS);
    roster ro = {n, calloc((size_t)n, 16), calloc((size_t)n, 32), calloc((size_t)n, 64)};
    const char **names = calloc((size_t)n, sizeof *names);
    uint8_t *commits = malloc(32 * (size_t)n);
    uint32_t *u3 = malloc(4 * (size_t)n);
    fedc_sa_sig *sg = malloc(sizeof *sg * (size_t)n);
    if (!cl || !adv || !y || !box || !ro.name || !ro.pk || !ro.sk || !names || !commits || !u3 ||
        !sg)
        return 1;
    for (int u = 0; u < n; u++) {
        snprintf(ro.name[u], 16, "c%05d", u);
        crypto_sign_keypair(ro.pk[u], ro.sk[u]);
        names[u] = ro.name[u];
        cl[u].roster = roster_find;
        cl[u].roster_ctx = &ro;
    }
    double begin_t = 0;
    for (int u = 0; u < n; u++) {
        double t0 = fedc_clock_s();
        if (fedc_sa_client_begin(&cl[u], run, counter, ro.name[u], ro.sk[u], &adv[u], &d))
            return 1;
        begin_t += fedc_clock_s() - t0;
        memcpy(commits + 32 * (size_t)u, adv[u].commit, 32);
    }
    if (fedc_sa_server_new(&g_srv, n, 0, 0, run, counter, adv, names, len, &d))
        return 1;
    for (int u = 0; g_srv.graph && u < n; u++) {
        uint8_t r[32];
        double t0 = fedc_clock_s();
        uint8_t dg[32];
        fedc_sa_commits_digest(dg, commits, n);
        if (fedc_sa_client_graph(&cl[u], (uint32_t)u, n, g_srv.h, names, dg, r, &d))
            return 1;
        begin_t += fedc_clock_s() - t0;
        if (fedc_sa_server_graph_r(&g_srv, (uint32_t)u, r, &d))
            return 1;
    }
    int size = g_srv.size, n_drop = drop ? (n + 9) / 10 : 0;
    double share_t = begin_t, mask_t = 0, sum_t = 0;
    for (int u = 0; u < n; u++) {
        const int *row = fedc_sa_server_nbrs(&g_srv, (uint32_t)u);
        fedc_sa_peer peers[FEDC_SA_MAX_NBRS];
        for (int i = 0; i < size; i++) {
            peers[i].id = (uint32_t)row[i];
            peers[i].name = names[row[i]];
            peers[i].adv = adv[row[i]];
        }
        double t0 = fedc_clock_s();
        if (fedc_sa_client_share(&cl[u], (uint32_t)u, n, g_srv.h, g_srv.t, peers, size,
                                 g_srv.graph ? g_srv.reveals : NULL, box, &d)) {
            fprintf(stderr, "%s\n", d.msg);
            return 1;
        }
        share_t += fedc_clock_s() - t0;
        if (fedc_sa_server_shares(&g_srv, (uint32_t)u, box, size - 1, &d))
            return 1;
    }
    for (int u = n_drop; u < n; u++) {
        int k = fedc_sa_server_routed(&g_srv, (uint32_t)u, box);
        for (size_t i = 0; i < len; i++)
            y[i] = (uint32_t)i * 2654435761u;
        double t0 = fedc_clock_s();
        if (fedc_sa_client_collect(&cl[u], box, k, &d) || fedc_sa_client_mask(&cl[u], y, len, &d))
            return 1;
        double t1 = fedc_clock_s();
        if (fedc_sa_server_masked(&g_srv, (uint32_t)u, y, &d))
            return 1;
        mask_t += t1 - t0;
        sum_t += fedc_clock_s() - t1;
    }
    int n_u3 = fedc_sa_server_u3(&g_srv, u3);
    double unmask_client = 0;
    for (int j = 0; j < n_u3; j++) {
        uint8_t sig[FEDC_SA_SIG_BYTES];
        double t0 = fedc_clock_s();
        if (fedc_sa_client_consist(&cl[u3[j]], u3, n_u3, ro.sk[u3[j]], sig, &d))
            return 1;
        unmask_client += fedc_clock_s() - t0;
        if (fedc_sa_server_consist(&g_srv, u3[j], sig, &d))
            return 1;
    }
    for (int u = n_drop; u < n; u++) {
        int k, ns = fedc_sa_server_sigs_for(&g_srv, (uint32_t)u, sg);
        fedc_sa_reveal r[FEDC_SA_MAX_NBRS];
        double t0 = fedc_clock_s();
        if (fedc_sa_client_unmask(&cl[u], sg, ns, r, &k, &d)) {
            fprintf(stderr, "%s\n", d.msg);
            return 1;
        }
        unmask_client += fedc_clock_s() - t0;
        if (fedc_sa_server_reveal(&g_srv, (uint32_t)u, r, k, &d))
            return 1;
    }
    double t0 = fedc_clock_s();
    if (fedc_sa_server_finish(&g_srv, &d)) {
        fprintf(stderr, "%s\n", d.msg);
        return 1;
    }
    double unmask = fedc_clock_s() - t0;
    if (!drop) {
        g_unmask0 = unmask;
    } else {
        /* keys out and in (the neighbourhood's), graph list and reveals (graph mode), shares out
         * and in, masked vector, survivor set, signatures out and in, unmask. */
        int m = n - n_drop;
        double graph = g_srv.graph ? (double)n * (32 + 24) + 32 + (double)n * 32 : 0;
        double bytes = WIRE_KEYS + 32 + (double)size * (WIRE_KEYS + 32 + 8) + graph +
                       2.0 * (size - 1) * WIRE_BOX + 4.0 * (double)len + 4.0 * m + 64 +
                       (double)size * size * (64 + 4) + (double)size * WIRE_REVEAL;
        printf("%7d  %10zu  %5d  %5d  %13.2f  %13.2f  %12.2f  %14.2f  %15.2f  %12.0f  %14.4f  "
               "%12.2f\n",
               n, len, size, g_srv.t, 1e3 * share_t / n, 1e3 * mask_t / m, 1e3 * sum_t,
               1e3 * g_unmask0, 1e3 * unmask, bytes, bytes / (4.0 * (double)len),
               1e3 * unmask_client / m);
    }
    for (int u = 0; u < n; u++)
        fedc_sa_client_free(&cl[u]);
    fedc_sa_server_free(&g_srv);
    free(cl);
    free(adv);
    free(y);
    free(box);
    free(ro.name);
    free(ro.pk);
    free(ro.sk);
    free(names);
    free(commits);
    free(u3);
    free(sg);
    return 0;
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
            double t0 = fedc_clock_s();
            crypto_stream_chacha20_ietf(ks, 4 * n, nonce, seed);
            t[r] = fedc_clock_s() - t0;
        }
        double raw = median(t, reps);
        for (int r = 0; r < reps; r++) {
            double t0 = fedc_clock_s();
            fedc_sa_prg_apply(v, n, seed, +1);
            t[r] = fedc_clock_s() - t0;
        }
        double mask = median(t, reps);
        fedc_sa_quant q;
        fedc_diag d;
        if (fedc_sa_quant_make(&q, 1024, 1.0f, &d))
            return 1;
        for (int r = 0; r < reps; r++) {
            double t0 = fedc_clock_s();
            if (fedc_sa_quantise(v, x, n, &q, &d))
                return 1;
            t[r] = fedc_clock_s() - t0;
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
            double t0 = fedc_clock_s();
            if (fedc_shamir_split(shares, secret, 64, th, n, xs, &d))
                return 1;
            t[r] = fedc_clock_s() - t0;
        }
        double sp = median(t, reps);
        for (int r = 0; r < reps; r++) {
            double t0 = fedc_clock_s();
            if (fedc_shamir_combine(back, shares, 64, th, xs, &d))
                return 1;
            t[r] = fedc_clock_s() - t0;
        }
        double co = median(t, reps);
        printf("%10d  %10d  %16.1f  %16.1f\n", n, th, 1e6 * sp, 1e6 * co);
        free(shares);
    }
    free(t);
    printf("\ntarget: mask/raw >= 0.5 (mask generation at least half the raw ChaCha20 rate)\n");
    printf("\nwhole protocol in memory, one repetition each (neighbourhoods of 2h+1, h = "
           "ceil(log2 n)):\n");
    printf("%7s  %10s  %5s  %5s  %13s  %13s  %12s  %14s  %15s  %12s  %14s  %12s\n", "clients",
           "values", "nbrs", "t", "share_ms/cl", "mask_ms/cl", "sum_ms", "unmask_0%_ms",
           "unmask_10%_ms", "bytes/client", "bytes/plain", "check_ms/cl");
    const int clients[] = {10, 100};
    for (int a = 0; a < 2; a++)
        for (size_t k = 0; k < 2; k++)
            for (int drop = 0; drop < 2; drop++)
                if (protocol(clients[a], sizes[k], drop))
                    return 1;
    return 0;
}
