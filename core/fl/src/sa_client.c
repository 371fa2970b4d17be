/* The client's side of a SecAgg+ session (contracts in sa_proto.h). */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/sa_proto.h"
#include "sa_int.h"

enum {
    C_IDLE,
    C_ADVERTISED,
    C_GRAPHED,
    C_SHARED,
    C_COLLECTED,
    C_MASKED,
    C_SIGNED,
    C_REVEALED,
    C_ABORTED = -1
};

#ifdef FEDC_SA_TEST_WEAK
fedc_sa_weak fedc_sa_weakened;
#define WEAK(x) (fedc_sa_weakened.x)
#else
#define WEAK(x) 0
#endif

/* ---- client ---------------------------------------------------------------------------------- */

static void wipe_session(fedc_sa_client *c) {
    if (c->enc_key)
        sodium_memzero(c->enc_key, (size_t)c->size * 32);
    if (c->mask_seed)
        sodium_memzero(c->mask_seed, (size_t)c->size * 32);
    if (c->held)
        sodium_memzero(c->held, (size_t)c->size * 64);
    free(c->names);
    free(c->commits);
    free(c->nbr);
    free(c->ids);
    free(c->enc_key);
    free(c->mask_seed);
    free(c->held);
    free(c->in_u2);
    free(c->u3);
    /* Everything from `state` on is the session. */
    size_t off = offsetof(fedc_sa_client, state);
    sodium_memzero((uint8_t *)c + off, sizeof *c - off);
}

void fedc_sa_client_end(fedc_sa_client *c) {
    wipe_session(c);
}

void fedc_sa_client_free(fedc_sa_client *c) {
    wipe_session(c);
    free(c->guard.done);
    memset(c, 0, sizeof *c);
}

static fedc_err abort_session(fedc_sa_client *c, fedc_err rc, fedc_sa_refusal why) {
    /* A session that saw a protocol violation answers nothing more. */
    if (c->enc_key)
        sodium_memzero(c->enc_key, (size_t)c->size * 32);
    if (c->mask_seed)
        sodium_memzero(c->mask_seed, (size_t)c->size * 32);
    if (c->held)
        sodium_memzero(c->held, (size_t)c->size * 64);
    sodium_memzero(c->sk_c, 32);
    sodium_memzero(c->sk_s, 32);
    sodium_memzero(c->b, 32);
    sodium_memzero(c->r, 32);
    c->state = C_ABORTED;
    c->refusal = why;
    return rc;
}

static int guard_done(const fedc_sa_guard *g, uint64_t counter) {
    uint64_t key = counter >> 24; /* round << 8 | stage */
    for (int i = 0; i < g->n_done; i++)
        if (g->done[i] == key)
            return 1;
    return 0;
}

static fedc_err guard_note(fedc_sa_guard *g, uint64_t counter) {
    if (guard_done(g, counter))
        return FEDC_OK;
    if (g->n_done == g->cap) {
        int cap = g->cap ? 2 * g->cap : 16;
        uint64_t *p = realloc(g->done, sizeof *p * (size_t)cap);
        if (!p)
            return FEDC_ENOMEM;
        g->done = p;
        g->cap = cap;
    }
    g->done[g->n_done++] = counter >> 24;
    return FEDC_OK;
}

static const char *stage_word(int stage) {
    return stage == 0 ? "statistics" : stage == 1 ? "training" : "evaluation";
}

fedc_err fedc_sa_client_begin(fedc_sa_client *c, const uint8_t run_id[FEDC_SA_RUN_BYTES],
                              uint64_t counter, const char *name, const uint8_t *sign_sk,
                              fedc_sa_adv *out, fedc_diag *d) {
    if (sodium_init() < 0) {
        fedc_diag_set(d, "libsodium cannot start");
        return FEDC_EIO;
    }
    wipe_session(c);
    c->blame = -1;
    c->refusal = FEDC_SA_REFUSE_NONE;
    fedc_sa_guard *g = &c->guard;
    if (!g->have || memcmp(g->run, run_id, FEDC_SA_RUN_BYTES) != 0) {
        /* A new run: what we unmasked in another run says nothing about this one. */
        free(g->done);
        memset(g, 0, sizeof *g);
        memcpy(g->run, run_id, FEDC_SA_RUN_BYTES);
    } else if (!WEAK(no_guard)) {
        if (guard_done(g, counter)) {
            fedc_diag_set(d,
                          "session %llu asks again for the %s of round %u, which we unmasked "
                          "already in this run; refused (a retry after unmasking would let the "
                          "coordinator subtract sums)",
                          (unsigned long long)counter, stage_word(fedc_sa_counter_stage(counter)),
                          fedc_sa_counter_round(counter));
            return abort_session(c, FEDC_EMISMATCH, FEDC_SA_REFUSE_UNMASKED);
        }
        if (counter <= g->last) {
            fedc_diag_set(d, "session counter %llu does not go forward (last was %llu); refused",
                          (unsigned long long)counter, (unsigned long long)g->last);
            return abort_session(c, FEDC_EMISMATCH, FEDC_SA_REFUSE_COUNTER);
        }
    }
    g->have = 1;
    g->last = counter;
    if (strlen(name) > FEDC_SA_NAME_MAX) {
        fedc_diag_set(d, "identity name longer than %d bytes", FEDC_SA_NAME_MAX);
        return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
    }
    c->counter = counter;
    fedc_sa_session(c->sid, run_id, counter);
    snprintf(c->name, sizeof c->name, "%s", name);
    crypto_box_keypair(c->pk_c, c->sk_c);
    crypto_box_keypair(c->pk_s, c->sk_s);
    randombytes_buf(c->r, 32);
    fedc__sa_commit_of(c->commit, c->r);
    memset(out, 0, sizeof *out);
    memcpy(out->pk_c, c->pk_c, 32);
    memcpy(out->pk_s, c->pk_s, 32);
    memcpy(out->commit, c->commit, 32);
    if (sign_sk) {
        uint8_t m[32];
        fedc__sa_adv_digest(m, run_id, counter, c->name, out);
        crypto_sign_detached(out->sig, NULL, m, sizeof m, sign_sk);
    }
    c->state = C_ADVERTISED;
    return FEDC_OK;
}

fedc_err fedc_sa_client_graph(fedc_sa_client *c, uint32_t me, int n, int h,
                              const char *const *names, const uint8_t commits_digest[32],
                              uint8_t r[32], fedc_diag *d) {
    if (c->state != C_ADVERTISED) {
        fedc_diag_set(d, "the participant list arrived out of order");
        return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
    }
    if (n < 1 || n > FEDC_SA_MAX_N || h < 1 || !fedc_sa_graph_mode(n, h) || me >= (uint32_t)n) {
        fedc_diag_set(d,
                      "participant list of %d with %d link(s) a side and us at %u does not call "
                      "for a drawn graph",
                      n, h, me);
        return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
    }
    fedc_err rc = fedc__sa_copy_names(&c->names, names, n, d);
    if (rc)
        return abort_session(c, rc, FEDC_SA_REFUSE_PROTOCOL);
    if (strcmp(names[me], c->name) != 0) {
        fedc_diag_set(d, "the participant list does not hold our own name at %u", me);
        return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
    }
    for (int i = 1; i < n; i++) {
        if (strcmp(names[i - 1], names[i]) >= 0) {
            fedc_diag_set(d, "the participant list is not in strictly ascending name order");
            return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
        }
    }
    memcpy(c->cdigest, commits_digest, 32);
    c->me = me;
    c->n = n;
    c->h = h;
    memcpy(r, c->r, 32);
    c->state = C_GRAPHED;
    return FEDC_OK;
}

static int pos_of(const uint32_t *ids, int size, uint32_t id) {
    int lo = 0, hi = size - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (ids[mid] == id)
            return mid;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* The checks of the share step that concern the neighbourhood's shape and the graph. */
static fedc_err check_neighbourhood(fedc_sa_client *c, uint32_t me, int n, int h, int t,
                                    const fedc_sa_peer *peers, int size, const uint8_t *reveals,
                                    uint8_t seed[32], fedc_diag *d) {
    int floor_n = c->min_nbrs > 0 ? c->min_nbrs : FEDC_SA_MIN_NBRS_DEFAULT;
    memset(seed, 0, 32);
    if (size < 1 || size > FEDC_SA_MAX_NBRS || n < size || n > FEDC_SA_MAX_N || t < 1 || t > size) {
        fedc_diag_set(d, "neighbourhood of %d out of %d with threshold %d is malformed", size, n,
                      t);
        c->refusal = FEDC_SA_REFUSE_PROTOCOL;
        return FEDC_EINVAL;
    }
    if (!WEAK(no_floor) && (size < floor_n || t < fedc_sa_threshold_floor(size))) {
        fedc_diag_set(d,
                      "neighbourhood of %d with threshold %d is below our floor (at least %d "
                      "clients, us included, and a threshold of at least %d); refused",
                      size, t, floor_n, fedc_sa_threshold_floor(size > floor_n ? size : floor_n));
        c->refusal = FEDC_SA_REFUSE_FLOOR;
        return FEDC_EINVAL;
    }
    for (int i = 1; i < size; i++) {
        if (peers[i].id <= peers[i - 1].id || peers[i].id >= (uint32_t)n) {
            fedc_diag_set(d, "neighbour ids not ascending below %d", n);
            c->refusal = FEDC_SA_REFUSE_PROTOCOL;
            return FEDC_EINVAL;
        }
    }
    if (WEAK(no_graph))
        return FEDC_OK;
    if (fedc_sa_graph_mode(n, h)) {
        if (c->state != C_GRAPHED || c->n != n || c->h != h || c->me != me || !reveals) {
            fedc_diag_set(d,
                          "a drawn graph (%d participants, %d links a side) without the "
                          "participant list and reveals it comes from; refused",
                          n, h);
            c->refusal = FEDC_SA_REFUSE_PROTOCOL;
            return FEDC_EINVAL;
        }
        /* The commitments fixed in step 1 (by their digest) must be the reveals' hashes, ours
         * among them: the coordinator could not pick any reveal after seeing honest ones. */
        free(c->commits);
        c->commits = malloc(32 * (size_t)n);
        if (!c->commits) {
            fedc_diag_set(d, "out of memory");
            c->refusal = FEDC_SA_REFUSE_PROTOCOL;
            return FEDC_ENOMEM;
        }
        for (int i = 0; i < n; i++)
            fedc__sa_commit_of(c->commits + 32 * (size_t)i, reveals + 32 * (size_t)i);
        uint8_t dg[32];
        fedc_sa_commits_digest(dg, c->commits, n);
        if (sodium_memcmp(c->commits + 32 * (size_t)me, c->commit, 32) != 0 ||
            sodium_memcmp(dg, c->cdigest, 32) != 0) {
            fedc_diag_set(d, "the reveals do not match the commitments of the participant list%s",
                          sodium_memcmp(c->commits + 32 * (size_t)me, c->commit, 32) != 0
                              ? " (ours is not at our place)"
                              : "");
            c->refusal = FEDC_SA_REFUSE_PROTOCOL;
            return FEDC_ECHECKSUM;
        }
        fedc_sa_graph g;
        fedc_err rc = fedc__sa_draw_graph(&g, c->sid, n, h, c->names, c->commits, reveals, seed, d);
        if (rc) {
            c->refusal = FEDC_SA_REFUSE_PROTOCOL;
            return rc;
        }
        int ok = g.size == size;
        const int *row = g.nbr + (size_t)me * (size_t)g.size;
        for (int i = 0; ok && i < size; i++)
            ok = (uint32_t)row[i] == peers[i].id;
        if (!ok) {
            fedc_sa_graph_free(&g);
            fedc_diag_set(d, "the neighbourhood sent is not the one the graph draws for us; "
                             "refused (the coordinator may not choose our neighbours)");
            c->refusal = FEDC_SA_REFUSE_PROTOCOL;
            return FEDC_EINVAL;
        }
        c->nbr = g.nbr; /* keep the rows: the consistency check needs neighbours' neighbours */
        c->size = g.size;
        return FEDC_OK;
    }
    /* Not a drawn graph: the neighbourhood is everyone. */
    if (size != n) {
        fedc_diag_set(d, "%d participants need a drawn graph, but %d neighbours came without one",
                      n, size);
        c->refusal = FEDC_SA_REFUSE_PROTOCOL;
        return FEDC_EINVAL;
    }
    if (c->state == C_GRAPHED) {
        fedc_diag_set(d, "a participant list came for a session that draws no graph");
        c->refusal = FEDC_SA_REFUSE_PROTOCOL;
        return FEDC_EINVAL;
    }
    return FEDC_OK;
}

fedc_err fedc_sa_client_share(fedc_sa_client *c, uint32_t me, int n, int h, int t,
                              const fedc_sa_peer *peers, int size, const uint8_t *reveals,
                              fedc_sa_sealed *out, fedc_diag *d) {
    if (c->state != C_ADVERTISED && c->state != C_GRAPHED) {
        fedc_diag_set(d, "share keys asked out of order");
        return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
    }
    h = fedc__sa_default_h(n, h);
    uint8_t seed[32];
    fedc_err rc = check_neighbourhood(c, me, n, h, t, peers, size, reveals, seed, d);
    if (rc)
        return abort_session(c, rc, c->refusal);
    int mine = -1;
    for (int i = 0; i < size; i++)
        if (peers[i].id == me)
            mine = i;
    /* In graph mode names and commitments come from the participant list and the reveals (the
     * peer entries carry none); otherwise from the peer entries. */
    int listed = c->names != NULL;
    if (mine < 0 ||
        (!listed && (!peers[mine].name || strcmp(peers[mine].name, c->name) != 0 ||
                     memcmp(peers[mine].adv.commit, c->commit, 32) != 0)) ||
        memcmp(peers[mine].adv.pk_c, c->pk_c, 32) != 0 ||
        memcmp(peers[mine].adv.pk_s, c->pk_s, 32) != 0) {
        fedc_diag_set(d, "our own keys are missing from the neighbourhood");
        return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
    }
    if (!c->names) { /* everyone is a neighbour: the peers are the participant list */
        const char *nm[FEDC_SA_MAX_NBRS];
        for (int i = 0; i < size; i++) {
            if (!peers[i].name) {
                fedc_diag_set(d, "participant %u came without its name", peers[i].id);
                return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
            }
            nm[i] = peers[i].name;
        }
        if ((rc = fedc__sa_copy_names(&c->names, nm, size, d)))
            return abort_session(c, rc, FEDC_SA_REFUSE_PROTOCOL);
        for (int i = 1; i < size; i++) {
            if (strcmp(nm[i - 1], nm[i]) >= 0) {
                fedc_diag_set(d, "the participants are not in strictly ascending name order");
                return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
            }
        }
    }
    uint8_t run_id[FEDC_SA_RUN_BYTES];
    memcpy(run_id, c->guard.run, FEDC_SA_RUN_BYTES);
    for (int i = 0; i < size; i++) {
        if (i == mine)
            continue;
        /* The entry checked: its name and commitment from the participant list (graph mode). */
        fedc_sa_peer pe = peers[i];
        const fedc_sa_peer *p = &pe;
        if (listed)
            pe.name = c->names + (size_t)p->id * NAME_SLOT;
        if (listed && c->commits)
            memcpy(pe.adv.commit, c->commits + 32 * (size_t)p->id, 32);
        if (c->roster) {
            const uint8_t *pk = c->roster(c->roster_ctx, p->name);
            if (!pk) {
                fedc_diag_set(d,
                              "neighbour '%s' is not in our roster (--peers); its keys cannot be "
                              "checked, so the round is refused",
                              p->name);
                c->blame = p->id;
                return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_NOT_LISTED);
            }
            if (fedc_sa_adv_verify(&p->adv, pk, run_id, c->counter, p->name) != FEDC_OK) {
                fedc_diag_set(d,
                              "the round keys relayed for neighbour '%s' (%u) are not signed by "
                              "its identity key for this session",
                              p->name, p->id);
                c->blame = p->id;
                return abort_session(c, FEDC_ECHECKSUM, FEDC_SA_REFUSE_BAD_KEYS);
            }
        }
        if (!memcmp(p->adv.pk_s, c->pk_s, 32) || !memcmp(p->adv.pk_c, c->pk_c, 32)) {
            fedc_diag_set(d, "neighbour %u carries our own keys", p->id);
            c->blame = p->id;
            return abort_session(c, FEDC_ECHECKSUM, FEDC_SA_REFUSE_BAD_KEYS);
        }
    }
    size_t sz = (size_t)size;
    c->ids = malloc(4 * sz);
    c->enc_key = malloc(32 * sz);
    c->mask_seed = malloc(32 * sz);
    c->held = calloc(sz, 64);
    c->in_u2 = calloc(sz, 1);
    c->u3 = calloc((size_t)n, 1);
    uint8_t *sh = malloc(64 * sz), *tmp = malloc(32 * sz), xs[FEDC_SA_MAX_NBRS];
    if (!c->ids || !c->enc_key || !c->mask_seed || !c->held || !c->in_u2 || !c->u3 || !sh || !tmp) {
        free(sh);
        free(tmp);
        fedc_diag_set(d, "out of memory");
        return abort_session(c, FEDC_ENOMEM, FEDC_SA_REFUSE_PROTOCOL);
    }
    for (int i = 0; i < size; i++)
        c->ids[i] = peers[i].id;
    c->me = me;
    c->n = n;
    c->h = h;
    c->size = size;
    c->t = t;
    fedc__sa_view_digest(c->view, c->sid, t, n, h, c->names, seed);
    for (int i = 0; i < size; i++) {
        xs[i] = (uint8_t)(i + 1);
        if (i == mine)
            continue;
        if (fedc_sa_pair_secret(c->enc_key + 32 * i, c->sk_c, c->pk_c, peers[i].adv.pk_c, c->sid) ||
            fedc_sa_pair_secret(c->mask_seed + 32 * i, c->sk_s, c->pk_s, peers[i].adv.pk_s,
                                c->sid)) {
            free(sh);
            free(tmp);
            fedc_diag_set(d, "neighbour %u sent an unusable public key", peers[i].id);
            c->blame = peers[i].id;
            return abort_session(c, FEDC_ECHECKSUM, FEDC_SA_REFUSE_BAD_KEYS);
        }
    }
    randombytes_buf(c->b, 32);
    /* sh[i] = (b share, key share) for the holder at position i, x-coordinate i + 1. */
    rc = fedc_shamir_split(tmp, c->b, 32, t, size, xs, d);
    for (int i = 0; !rc && i < size; i++)
        memcpy(sh + 64 * i, tmp + 32 * i, 32);
    if (!rc)
        rc = fedc_shamir_split(tmp, c->sk_s, 32, t, size, xs, d);
    for (int i = 0; !rc && i < size; i++)
        memcpy(sh + 64 * i + 32, tmp + 32 * i, 32);
    sodium_memzero(tmp, 32 * sz);
    free(tmp);
    if (rc) {
        sodium_memzero(sh, 64 * sz);
        free(sh);
        return abort_session(c, rc, FEDC_SA_REFUSE_PROTOCOL);
    }
    int k = 0;
    for (int i = 0; i < size; i++) {
        if (i == mine) {
            memcpy(c->held + 64 * i, sh + 64 * i, 64);
            c->in_u2[i] = 1;
            continue;
        }
        uint8_t plain[FEDC_SA_SHARE_PLAIN];
        fedc__sa_put_le32(plain, me);
        fedc__sa_put_le32(plain + 4, peers[i].id);
        memcpy(plain + 8, sh + 64 * i, 64);
        out[k].from = me;
        out[k].to = peers[i].id;
        fedc_sa_seal(out[k].ct, plain, sizeof plain, c->enc_key + 32 * i, c->sid, me, peers[i].id);
        sodium_memzero(plain, sizeof plain);
        k++;
    }
    sodium_memzero(sh, 64 * sz);
    free(sh);
    sodium_memzero(c->r, 32);
    c->state = C_SHARED;
    return FEDC_OK;
}

fedc_err fedc_sa_client_collect(fedc_sa_client *c, const fedc_sa_sealed *in, int k, fedc_diag *d) {
    if (c->state != C_SHARED) {
        fedc_diag_set(d, "neighbours' shares arrived out of order");
        return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
    }
    int mine = pos_of(c->ids, c->size, c->me);
    for (int j = 0; j < k; j++) {
        int p = pos_of(c->ids, c->size, in[j].from);
        if (in[j].to != c->me || p < 0 || p == mine || c->in_u2[p]) {
            fedc_diag_set(d, "a share from %u to %u is not one of ours (or came twice)", in[j].from,
                          in[j].to);
            return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
        }
        uint8_t plain[FEDC_SA_SHARE_PLAIN];
        if (fedc_sa_open(plain, in[j].ct, FEDC_SA_SHARE_CT, c->enc_key + 32 * p, c->sid, in[j].from,
                         c->me) != FEDC_OK ||
            fedc__sa_get_le32(plain) != in[j].from || fedc__sa_get_le32(plain + 4) != c->me) {
            sodium_memzero(plain, sizeof plain);
            fedc_diag_set(d,
                          "the share from neighbour %u does not open for this session (replayed "
                          "or forged)",
                          in[j].from);
            c->blame = in[j].from;
            return abort_session(c, FEDC_ECHECKSUM, FEDC_SA_REFUSE_PROTOCOL);
        }
        memcpy(c->held + 64 * p, plain + 8, 64);
        sodium_memzero(plain, sizeof plain);
        c->in_u2[p] = 1;
    }
    int alive = 0;
    for (int i = 0; i < c->size; i++)
        alive += c->in_u2[i];
    c->state = C_COLLECTED;
    if (alive < c->t) {
        fedc_diag_set(d,
                      "only %d of our %d neighbours remain, the threshold is %d; our input is "
                      "withheld",
                      alive, c->size, c->t);
        return abort_session(c, FEDC_ERANGE, FEDC_SA_REFUSE_TOO_FEW);
    }
    return FEDC_OK;
}

fedc_err fedc_sa_client_mask(fedc_sa_client *c, uint32_t *v, size_t n, fedc_diag *d) {
    if (c->state != C_COLLECTED) {
        fedc_diag_set(d, "masking asked out of order");
        return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
    }
    fedc_sa_prg_apply(v, n, c->b, +1);
    for (int i = 0; i < c->size; i++) {
        if (!c->in_u2[i] || c->ids[i] == c->me)
            continue;
        fedc_sa_prg_apply(v, n, c->mask_seed + 32 * i, c->me < c->ids[i] ? +1 : -1);
    }
    /* The masks are spent: only the shares we hold for others are still needed. */
    sodium_memzero(c->mask_seed, (size_t)c->size * 32);
    sodium_memzero(c->enc_key, (size_t)c->size * 32);
    sodium_memzero(c->b, 32);
    sodium_memzero(c->sk_s, 32);
    sodium_memzero(c->sk_c, 32);
    c->state = C_MASKED;
    return FEDC_OK;
}

fedc_err fedc_sa_client_consist(fedc_sa_client *c, const uint32_t *u3, int n_u3,
                                const uint8_t *sign_sk, uint8_t sig[FEDC_SA_SIG_BYTES],
                                fedc_diag *d) {
    memset(sig, 0, FEDC_SA_SIG_BYTES);
    if (c->state != C_MASKED) {
        fedc_diag_set(d, "a survivor set to sign arrived out of order (we sign one per session)");
        return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
    }
    int me_in = 0, nbrs = 0;
    for (int i = 0; i < n_u3; i++) {
        if (u3[i] >= (uint32_t)c->n || (i > 0 && u3[i] <= u3[i - 1])) {
            fedc_diag_set(d, "the survivor set is not ascending session ids below %d", c->n);
            return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
        }
        me_in |= u3[i] == c->me;
        int p = pos_of(c->ids, c->size, u3[i]);
        if (p >= 0) {
            if (!c->in_u2[p]) {
                fedc_diag_set(d,
                              "the survivor set names neighbour %u, whose shares never reached "
                              "us",
                              u3[i]);
                c->blame = u3[i];
                return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
            }
            nbrs++;
        }
    }
    if (!me_in || nbrs < c->t) {
        fedc_diag_set(d,
                      "the survivor set %s us and holds %d of our neighbours, the threshold is "
                      "%d; refused",
                      me_in ? "holds" : "omits", nbrs, c->t);
        return abort_session(c, FEDC_EINVAL,
                             me_in ? FEDC_SA_REFUSE_TOO_FEW : FEDC_SA_REFUSE_PROTOCOL);
    }
    for (int i = 0; i < n_u3; i++)
        c->u3[u3[i]] = 1;
    if (sign_sk) {
        uint8_t m[32];
        fedc__sa_consist_digest(m, c->sid, c->me, c->view, u3, n_u3);
        crypto_sign_detached(sig, NULL, m, sizeof m, sign_sk);
    }
    c->state = C_SIGNED;
    return FEDC_OK;
}

fedc_err fedc_sa_client_unmask(fedc_sa_client *c, const fedc_sa_sig *sigs, int k,
                               fedc_sa_reveal *out, int *n_out, fedc_diag *d) {
    *n_out = 0;
    int want_state = WEAK(no_consist) ? C_MASKED : C_SIGNED;
    if (c->state != want_state && c->state != C_SIGNED) {
        fedc_diag_set(d, "unmask asked out of order (%s)",
                      c->state == C_REVEALED ? "we revealed once in this session already"
                                             : "before our survivor set was signed");
        return abort_session(c, FEDC_EINVAL, FEDC_SA_REFUSE_PROTOCOL);
    }
    fedc_err rc = FEDC_OK;
    uint8_t *valid = calloc((size_t)c->n, 1);
    uint32_t *u3 = malloc(4 * (size_t)c->n);
    if (!valid || !u3) {
        free(valid);
        free(u3);
        fedc_diag_set(d, "out of memory");
        return abort_session(c, FEDC_ENOMEM, FEDC_SA_REFUSE_PROTOCOL);
    }
    int n_u3 = 0;
    for (int i = 0; i < c->n; i++)
        if (c->u3[i])
            u3[n_u3++] = (uint32_t)i;
    if (!WEAK(no_consist)) {
        uint8_t m[32];
        for (int j = 0; j < k; j++) {
            uint32_t id = sigs[j].id;
            if (id >= (uint32_t)c->n || !c->u3[id] || valid[id])
                continue; /* not a survivor, or counted already */
            if (c->roster) {
                const uint8_t *pk = c->roster(c->roster_ctx, c->names + (size_t)id * NAME_SLOT);
                if (!pk)
                    continue;
                fedc__sa_consist_digest(m, c->sid, id, c->view, u3, n_u3);
                if (crypto_sign_verify_detached(sigs[j].sig, m, sizeof m, pk) != 0)
                    continue;
            }
            valid[id] = 1;
        }
        /* For each neighbour whose shares we hold: t signatures from its own neighbourhood. */
        for (int i = 0; i < c->size && !rc; i++) {
            if (!c->in_u2[i])
                continue;
            uint32_t v = c->ids[i];
            int got = 0;
            if (c->nbr) { /* a drawn graph: v's own row */
                const int *row = c->nbr + (size_t)v * (size_t)c->size;
                for (int j = 0; j < c->size; j++)
                    got += valid[row[j]];
            } else { /* everyone is everyone's neighbour */
                for (int w = 0; w < c->n; w++)
                    got += valid[w];
            }
            if (got < c->t) {
                fedc_diag_set(d,
                              "%d valid signature(s) on the survivor set from neighbour %u's "
                              "neighbourhood, %d needed; nothing revealed",
                              got, v, c->t);
                c->blame = v;
                rc = FEDC_ERANGE;
            }
        }
    }
    free(valid);
    free(u3);
    if (rc)
        return abort_session(c, rc, FEDC_SA_REFUSE_TOO_FEW);
    int n = 0;
    for (int i = 0; i < c->size; i++) {
        if (!c->in_u2[i])
            continue; /* never gave us shares: nothing to reveal */
        int kind = c->u3[c->ids[i]] ? FEDC_SA_REVEAL_B : FEDC_SA_REVEAL_SK;
        out[n].owner = c->ids[i];
        out[n].kind = kind;
        memcpy(out[n].share, c->held + 64 * i + (kind == FEDC_SA_REVEAL_B ? 0 : 32), 32);
        n++;
    }
    if (guard_note(&c->guard, c->counter) != FEDC_OK) {
        sodium_memzero(out, sizeof *out * (size_t)n);
        fedc_diag_set(d, "out of memory");
        return abort_session(c, FEDC_ENOMEM, FEDC_SA_REFUSE_PROTOCOL);
    }
    sodium_memzero(c->held, (size_t)c->size * 64);
    *n_out = n;
    c->state = C_REVEALED;
    return FEDC_OK;
}
