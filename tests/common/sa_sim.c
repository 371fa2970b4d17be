/* In-memory SecAgg+ sessions for tests (contracts in sa_sim.h). */
#include "sa_sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

sa_sim *sa_sim_new(int n, int h, int t_req) {
    if (sodium_init() < 0 || n < 1 || n > SA_SIM_MAXN)
        return NULL;
    sa_sim *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->n = n;
    s->h = h;
    s->t_req = t_req;
    for (int u = 0; u < n; u++) {
        crypto_sign_keypair(s->id_pk[u], s->id_sk[u]);
        randombytes_buf(s->x[u], sizeof s->x[u]);
        snprintf(s->names[u], sizeof s->names[u], "c%02d", u);
    }
    return s;
}

void sa_sim_free(sa_sim *s) {
    if (!s)
        return;
    for (int u = 0; u < s->n; u++)
        fedc_sa_client_free(&s->cl[u]);
    fedc_sa_server_free(&s->srv);
    free(s);
}

const uint8_t *sa_sim_roster(void *ctx, const char *name) {
    const sa_sim *s = ctx;
    for (int u = 0; u < s->n; u++)
        if (strcmp(s->names[u], name) == 0)
            return s->id_pk[u];
    return NULL;
}

static const uint8_t RUN[FEDC_SA_RUN_BYTES] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

fedc_err sa_sim_begin(sa_sim *s, uint64_t counter) {
    fedc_diag d;
    const char *names[SA_SIM_MAXN];
    fedc_err rc;
    memset(s->refused, 0, sizeof s->refused);
    for (int u = 0; u < s->n; u++) {
        fedc_sa_client *c = &s->cl[u];
        c->min_nbrs = s->min_nbrs;
        c->roster = sa_sim_roster;
        c->roster_ctx = s;
        if ((rc = fedc_sa_client_begin(c, RUN, counter, s->names[u], s->id_sk[u], &s->adv[u], &d)))
            return rc;
        names[u] = s->names[u];
    }
    fedc_sa_server_free(&s->srv);
    rc = fedc_sa_server_new(&s->srv, s->n, s->h, s->t_req, RUN, counter, s->adv, names, SA_SIM_LEN,
                            &d);
    if (rc || !s->srv.graph)
        return rc;
    uint8_t *commits = malloc(32 * (size_t)s->n), r[32], digest[32];
    if (!commits)
        return FEDC_ENOMEM;
    for (int u = 0; u < s->n; u++)
        memcpy(commits + 32 * u, s->adv[u].commit, 32);
    fedc_sa_commits_digest(digest, commits, s->n);
    for (int u = 0; u < s->n && !rc; u++) {
        rc = fedc_sa_client_graph(&s->cl[u], (uint32_t)u, s->n, s->srv.h, names, digest, r, &d);
        if (!rc)
            rc = fedc_sa_server_graph_r(&s->srv, (uint32_t)u, r, &d);
    }
    free(commits);
    return rc;
}

fedc_err sa_sim_run(sa_sim *s, const int *out, uint64_t counter, int *withheld) {
    fedc_diag d;
    int n = s->n;
    *withheld = 0;
    fedc_err rc = sa_sim_begin(s, counter);
    if (rc)
        return rc;
    int size = s->srv.size;
    for (int u = 0; u < n; u++) {
        if (out[u] == OUT_BEFORE_SHARE)
            continue;
        const int *row = fedc_sa_server_nbrs(&s->srv, (uint32_t)u);
        fedc_sa_peer peers[SA_SIM_MAXN];
        for (int i = 0; i < size; i++) {
            peers[i].id = (uint32_t)row[i];
            peers[i].name = s->names[row[i]];
            peers[i].adv = s->adv[row[i]];
        }
        fedc_sa_sealed boxes[SA_SIM_MAXN];
        if ((rc = fedc_sa_client_share(&s->cl[u], (uint32_t)u, n, s->srv.h, s->srv.t, peers, size,
                                       s->srv.graph ? s->srv.reveals : NULL, boxes, &d))) {
            s->refused[u] = 2;
            return rc;
        }
        if ((rc = fedc_sa_server_shares(&s->srv, (uint32_t)u, boxes, size - 1, &d)))
            return rc;
    }
    for (int u = 0; u < n; u++) {
        if (out[u] == OUT_BEFORE_SHARE || out[u] == OUT_AFTER_SHARE)
            continue;
        fedc_sa_sealed in[SA_SIM_MAXN];
        int k = fedc_sa_server_routed(&s->srv, (uint32_t)u, in);
        rc = fedc_sa_client_collect(&s->cl[u], in, k, &d);
        if (rc == FEDC_ERANGE) {
            (*withheld)++;
            continue;
        }
        if (rc)
            return rc;
        memcpy(s->y[u], s->x[u], sizeof s->y[u]);
        if ((rc = fedc_sa_client_mask(&s->cl[u], s->y[u], SA_SIM_LEN, &d)) ||
            (rc = fedc_sa_server_masked(&s->srv, (uint32_t)u, s->y[u], &d)))
            return rc;
    }
    uint32_t u3[SA_SIM_MAXN];
    int n_u3 = fedc_sa_server_u3(&s->srv, u3);
    if (n_u3 < s->srv.t)
        return FEDC_ERANGE; /* the coordinator abandons the stage before anything is revealed */
    for (int j = 0; j < n_u3; j++) {
        int u = (int)u3[j];
        if (out[u] == OUT_AFTER_MASK)
            continue;
        uint8_t sig[FEDC_SA_SIG_BYTES];
        if ((rc = fedc_sa_client_consist(&s->cl[u], u3, n_u3, s->id_sk[u], sig, &d))) {
            s->refused[u] = 4;
            return rc;
        }
        if ((rc = fedc_sa_server_consist(&s->srv, (uint32_t)u, sig, &d)))
            return rc;
    }
    for (int u = 0; u < n; u++) {
        if (out[u] != OUT_NONE || !fedc_sa_server_in_u4(&s->srv, (uint32_t)u))
            continue;
        fedc_sa_sig sg[SA_SIM_MAXN];
        fedc_sa_reveal r[SA_SIM_MAXN];
        int k = fedc_sa_server_sigs_for(&s->srv, (uint32_t)u, sg), nr;
        if ((rc = fedc_sa_client_unmask(&s->cl[u], sg, k, r, &nr, &d))) {
            s->refused[u] = 5;
            return rc;
        }
        if ((rc = fedc_sa_server_reveal(&s->srv, (uint32_t)u, r, nr, &d)))
            return rc;
    }
    return fedc_sa_server_finish(&s->srv, &d);
}

int sa_sim_sum_ok(const sa_sim *s, const int *out) {
    static uint32_t want[SA_SIM_LEN];
    memset(want, 0, sizeof want);
    for (int u = 0; u < s->n; u++)
        if (out[u] == OUT_NONE || out[u] == OUT_AFTER_MASK || out[u] == OUT_AFTER_CONSIST)
            if (fedc_sa_server_in_u3(&s->srv, (uint32_t)u))
                for (int i = 0; i < SA_SIM_LEN; i++)
                    want[i] += s->x[u][i];
    return memcmp(want, s->srv.sum, sizeof want) == 0;
}
