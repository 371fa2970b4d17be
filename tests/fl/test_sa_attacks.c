/* A dishonest coordinator against the SecAgg+ state machines, in memory (docs/security.md,
 * "Tests that prove it"). Each test plays one attack from the review of the
 * protocol and hands what the coordinator obtained to a decoder that tries to rebuild the
 * victim's input exactly; with the defences it must recover nothing. Each attack runs a second
 * time with that one defence switched off (this executable compiles core/fl/src/sa_client.c with
 * FEDC_SA_TEST_WEAK, which adds the switches; the library never has them), and the same decoder
 * must then recover the input bit for bit, which shows that the test can fail:
 *   - a neighbourhood of one with threshold 1 (the floors);
 *   - split survivor views with a victim that got only two neighbours' shares (the consistency
 *     round);
 *   - a neighbourhood the coordinator picked around colluding clients (the drawn graph);
 *   - a retried stage without one client, at the next attempt and at a reused counter (one
 *     unmask per run, round and stage; the counter that only goes forward). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "fedc/sa_proto.h"
#include "sa_sim.h"

#define LEN SA_SIM_LEN
#define MAXN SA_SIM_MAXN

/* What the coordinator collected from the unmask answers: per owner, the shares it got (by the
 * holder's position in the owner's neighbourhood) of each kind. */
typedef struct loot {
    uint8_t b[MAXN][MAXN][32], sk[MAXN][MAXN][32];
    uint8_t has_b[MAXN][MAXN], has_sk[MAXN][MAXN];
} loot;

static void take(loot *l, const fedc_sa_reveal *r, int k, int holder_pos_of_owner[MAXN]) {
    for (int j = 0; j < k; j++) {
        int o = (int)r[j].owner, p = holder_pos_of_owner[o];
        if (r[j].kind == FEDC_SA_REVEAL_B) {
            memcpy(l->b[o][p], r[j].share, 32);
            l->has_b[o][p] = 1;
        } else {
            memcpy(l->sk[o][p], r[j].share, 32);
            l->has_sk[o][p] = 1;
        }
    }
}

/* Rebuilds owner o's secret of one kind from whatever shares there are (garbage below t, as
 * Shamir must give). 0 when there is no share at all. */
static int rebuild(uint8_t out[32], uint8_t sh[MAXN][32], const uint8_t has[MAXN]) {
    uint8_t xs[MAXN], buf[MAXN * 32];
    int k = 0;
    for (int p = 0; p < MAXN; p++) {
        if (!has[p])
            continue;
        xs[k] = (uint8_t)(p + 1);
        memcpy(buf + 32 * k, sh[p], 32);
        k++;
    }
    fedc_diag d;
    return k > 0 && fedc_shamir_combine(out, buf, 32, k, xs, &d) == FEDC_OK;
}

/* The decoder: x_v = y_v - PRG(b_v) - sum over v's neighbours w in `masked_with` of
 * sign(v, w) PRG(s_vw), with s_vw from w's masking key (rebuilt from key shares, or known to the
 * coordinator for its colluders). Returns 1 when it produced a candidate into x. */
static int decode(uint32_t *x, const uint32_t *y, const uint8_t b_v[32], int v,
                  const int *masked_with, int n_with, uint8_t sk_of[MAXN][32],
                  const fedc_sa_adv *adv, const uint8_t sid[FEDC_SA_SID_BYTES]) {
    memcpy(x, y, 4 * LEN);
    fedc_sa_prg_apply(x, LEN, b_v, -1);
    for (int j = 0; j < n_with; j++) {
        int w = masked_with[j];
        uint8_t seed[32];
        if (fedc_sa_pair_secret(seed, sk_of[w], adv[w].pk_s, adv[v].pk_s, sid))
            return 0;
        fedc_sa_prg_apply(x, LEN, seed, v < w ? -1 : +1);
    }
    return 1;
}

static void weaken(int floor_, int consist, int graph, int guard) {
    fedc_sa_weakened.no_floor = floor_;
    fedc_sa_weakened.no_consist = consist;
    fedc_sa_weakened.no_graph = graph;
    fedc_sa_weakened.no_guard = guard;
}

static fedc_sa_peer peer_of(const sa_sim *s, int id) {
    fedc_sa_peer p;
    p.id = (uint32_t)id;
    p.name = s->names[id];
    p.adv = s->adv[id];
    return p;
}

/* ---- 1. a neighbourhood of one ----------------------------------------------------------------
 */

/* The coordinator tells the victim it is alone (n = 1, t = 1): its self-mask seed has one share,
 * which is the seed itself, and its input carries no pairwise mask. Returns 1 when the decoder
 * recovered the victim's input exactly. */
static int attack_alone(void) {
    sa_sim *s = sa_sim_new(3, 0, 0);
    assert_non_null(s);
    assert_int_equal(sa_sim_begin(s, fedc_sa_counter(1, 0, FEDC_SA_STAGE_FIT)), FEDC_OK);
    fedc_sa_client *v = &s->cl[0];
    fedc_sa_peer me = peer_of(s, 0);
    fedc_sa_sealed boxes[1];
    fedc_diag d;
    int got = 0;
    if (fedc_sa_client_share(v, 0, 1, 0, 1, &me, 1, NULL, boxes, &d) == FEDC_OK &&
        fedc_sa_client_collect(v, NULL, 0, &d) == FEDC_OK) {
        uint32_t *y = malloc(4 * LEN), *x = malloc(4 * LEN);
        assert_non_null(y);
        assert_non_null(x);
        memcpy(y, s->x[0], 4 * LEN);
        assert_int_equal(fedc_sa_client_mask(v, y, LEN, &d), FEDC_OK);
        uint32_t u3[1] = {0};
        uint8_t sig[64];
        assert_int_equal(fedc_sa_client_consist(v, u3, 1, s->id_sk[0], sig, &d), FEDC_OK);
        fedc_sa_sig sg = {0, {0}};
        memcpy(sg.sig, sig, 64);
        fedc_sa_reveal r[1];
        int k = 0;
        if (fedc_sa_client_unmask(v, &sg, 1, r, &k, &d) == FEDC_OK && k == 1) {
            loot *l = calloc(1, sizeof *l);
            assert_non_null(l);
            int pos[MAXN] = {0};
            take(l, r, k, pos);
            uint8_t b[32];
            if (rebuild(b, l->b[0], l->has_b[0]) &&
                decode(x, y, b, 0, NULL, 0, NULL, s->adv, s->srv.sid))
                got = memcmp(x, s->x[0], 4 * LEN) == 0;
            free(l);
        }
        free(y);
        free(x);
    } else {
        assert_int_equal(v->refusal, FEDC_SA_REFUSE_FLOOR);
    }
    sa_sim_free(s);
    return got;
}

static void test_neighbourhood_of_one(void **state) {
    (void)state;
    weaken(0, 0, 0, 0);
    assert_false(attack_alone());
    weaken(1, 0, 0, 0); /* negative control: no floor */
    assert_true(attack_alone());
    weaken(0, 0, 0, 0);
}

/* ---- 2. split survivor views --------------------------------------------------------------------
 */

/* 5 clients, t = 3, genuine signed keys, no colluder. The coordinator routes to the victim (0)
 * only the shares of 1 and 2, so the victim masks with those two alone, then tells each holder
 * its own story: 1 hears that 2 dropped, 2 that 1 dropped, 3 and 4 that both did. Each story
 * passes the holder's local checks; together they give the victim's self-mask seed (everyone
 * says it survived) and the masking keys of 1 and 2 (each said to have dropped by three
 * holders). Returns 1 when the decoder recovered the victim's input. */
static int attack_split(void) {
    sa_sim *s = sa_sim_new(5, 0, 0);
    assert_non_null(s);
    fedc_diag d;
    assert_int_equal(sa_sim_begin(s, fedc_sa_counter(3, 0, FEDC_SA_STAGE_FIT)), FEDC_OK);
    assert_int_equal(s->srv.t, 3);
    fedc_sa_peer peers[5];
    for (int i = 0; i < 5; i++)
        peers[i] = peer_of(s, i);
    for (int u = 0; u < 5; u++) {
        fedc_sa_sealed boxes[5];
        assert_int_equal(
            fedc_sa_client_share(&s->cl[u], (uint32_t)u, 5, 0, 3, peers, 5, NULL, boxes, &d),
            FEDC_OK);
        assert_int_equal(fedc_sa_server_shares(&s->srv, (uint32_t)u, boxes, 4, &d), FEDC_OK);
    }
    for (int u = 0; u < 5; u++) {
        fedc_sa_sealed in[5];
        int k = fedc_sa_server_routed(&s->srv, (uint32_t)u, in);
        if (u == 0) { /* only the boxes of 1 and 2 reach the victim */
            int m = 0;
            for (int j = 0; j < k; j++)
                if (in[j].from == 1 || in[j].from == 2)
                    in[m++] = in[j];
            k = m;
        }
        assert_int_equal(fedc_sa_client_collect(&s->cl[u], in, k, &d), FEDC_OK);
        memcpy(s->y[u], s->x[u], 4 * LEN);
        assert_int_equal(fedc_sa_client_mask(&s->cl[u], s->y[u], LEN, &d), FEDC_OK);
    }
    const uint32_t story[5][5] = {{0, 1, 2}, {0, 1, 3, 4}, {0, 2, 3, 4}, {0, 3, 4}, {0, 3, 4}};
    const int story_n[5] = {3, 4, 4, 3, 3};
    fedc_sa_sig sg[5];
    for (int u = 0; u < 5; u++) {
        sg[u].id = (uint32_t)u;
        assert_int_equal(
            fedc_sa_client_consist(&s->cl[u], story[u], story_n[u], s->id_sk[u], sg[u].sig, &d),
            FEDC_OK);
    }
    loot *l = calloc(1, sizeof *l);
    assert_non_null(l);
    int refused = 0;
    for (int u = 0; u < 5; u++) {
        fedc_sa_reveal r[5];
        int k = 0, pos[MAXN];
        for (int o = 0; o < 5; o++)
            pos[o] = u; /* everyone's neighbourhood is 0..4: the holder's position is its id */
        if (fedc_sa_client_unmask(&s->cl[u], sg, 5, r, &k, &d) != FEDC_OK) {
            assert_int_equal(s->cl[u].refusal, FEDC_SA_REFUSE_TOO_FEW);
            refused++;
            continue;
        }
        take(l, r, k, pos);
    }
    int got = 0;
    uint8_t b[32], sk_of[MAXN][32];
    uint32_t *x = malloc(4 * LEN);
    assert_non_null(x);
    const int with[2] = {1, 2};
    if (rebuild(b, l->b[0], l->has_b[0]) && rebuild(sk_of[1], l->sk[1], l->has_sk[1]) &&
        rebuild(sk_of[2], l->sk[2], l->has_sk[2]) &&
        decode(x, s->y[0], b, 0, with, 2, sk_of, s->adv, s->srv.sid))
        got = memcmp(x, s->x[0], 4 * LEN) == 0;
    if (!fedc_sa_weakened.no_consist)
        assert_int_equal(refused, 5); /* nobody holds t signatures on its own story */
    free(x);
    free(l);
    sa_sim_free(s);
    return got;
}

static void test_split_views(void **state) {
    (void)state;
    weaken(0, 0, 0, 0);
    assert_false(attack_split());
    weaken(0, 1, 0, 0); /* negative control: no consistency round */
    assert_true(attack_split());
    weaken(0, 0, 0, 0);
}

/* ---- 3. chosen neighbours -----------------------------------------------------------------------
 */

/* 40 clients, neighbourhoods of 7 drawn from everyone's reveals, t = 4; clients 1..4 collude
 * with the coordinator. It tells the victim (0) that its neighbourhood is 0..6, so the four
 * colluders hold shares of its secrets: they open the victim's boxes, rebuild its self-mask
 * seed, and seal shares of their own for it so that it masks with them alone. Returns 1 when the
 * decoder recovered the victim's input. */
static int attack_chosen(void) {
    sa_sim *s = sa_sim_new(40, 3, 0);
    assert_non_null(s);
    fedc_diag d;
    assert_int_equal(sa_sim_begin(s, fedc_sa_counter(2, 0, FEDC_SA_STAGE_FIT)), FEDC_OK);
    assert_true(s->srv.graph);
    assert_int_equal(s->srv.size, 7);
    assert_int_equal(s->srv.t, 4);
    const int *real = fedc_sa_server_nbrs(&s->srv, 0);
    int same = 1;
    for (int i = 0; i < 7; i++)
        same &= real[i] == i;
    assert_false(same); /* the drawn neighbourhood is not the chosen one */
    fedc_sa_peer peers[7];
    for (int i = 0; i < 7; i++)
        peers[i] = peer_of(s, i);
    fedc_sa_sealed boxes[7];
    fedc_sa_client *v = &s->cl[0];
    int got = 0;
    if (fedc_sa_client_share(v, 0, 40, 3, 4, peers, 7, s->srv.reveals, boxes, &d) != FEDC_OK) {
        assert_int_equal(v->refusal, FEDC_SA_REFUSE_PROTOCOL);
        sa_sim_free(s);
        return 0;
    }
    /* The colluders k = 1..4 open the boxes addressed to them (x-coordinate k + 1). */
    uint8_t xs[4], bsh[4 * 32], sksh[4 * 32];
    for (int k = 1; k <= 4; k++) {
        uint8_t key[32], plain[FEDC_SA_SHARE_PLAIN];
        const fedc_sa_client *ck = &s->cl[k];
        assert_int_equal(fedc_sa_pair_secret(key, ck->sk_c, ck->pk_c, s->adv[0].pk_c, v->sid),
                         FEDC_OK);
        assert_int_equal(boxes[k - 1].to, (uint32_t)k);
        assert_int_equal(
            fedc_sa_open(plain, boxes[k - 1].ct, FEDC_SA_SHARE_CT, key, v->sid, 0, (uint32_t)k),
            FEDC_OK);
        xs[k - 1] = (uint8_t)(k + 1);
        memcpy(bsh + 32 * (k - 1), plain + 8, 32);
        memcpy(sksh + 32 * (k - 1), plain + 40, 32);
    }
    uint8_t b[32], sk_v[32], pk[32];
    assert_int_equal(fedc_shamir_combine(b, bsh, 32, 4, xs, &d), FEDC_OK);
    assert_int_equal(fedc_shamir_combine(sk_v, sksh, 32, 4, xs, &d), FEDC_OK);
    crypto_scalarmult_base(pk, sk_v);
    /* Colluders 1..3 seal shares for the victim so that it has t = 4 of its neighbourhood. */
    fedc_sa_sealed in[3];
    for (int k = 1; k <= 3; k++) {
        uint8_t key[32], plain[FEDC_SA_SHARE_PLAIN] = {0};
        assert_int_equal(
            fedc_sa_pair_secret(key, s->cl[k].sk_c, s->cl[k].pk_c, s->adv[0].pk_c, v->sid),
            FEDC_OK);
        plain[0] = (uint8_t)k;
        in[k - 1].from = (uint32_t)k;
        in[k - 1].to = 0;
        fedc_sa_seal(in[k - 1].ct, plain, sizeof plain, key, v->sid, (uint32_t)k, 0);
    }
    uint32_t *x = malloc(4 * LEN);
    assert_non_null(x);
    if (fedc_sa_client_collect(v, in, 3, &d) == FEDC_OK) {
        memcpy(s->y[0], s->x[0], 4 * LEN);
        assert_int_equal(fedc_sa_client_mask(v, s->y[0], LEN, &d), FEDC_OK);
        uint8_t sk_of[MAXN][32];
        const int with[3] = {1, 2, 3};
        for (int k = 1; k <= 3; k++)
            memcpy(sk_of[k], s->cl[k].sk_s, 32); /* the colluders' own masking keys */
        if (sodium_memcmp(pk, s->adv[0].pk_s, 32) == 0 &&
            decode(x, s->y[0], b, 0, with, 3, sk_of, s->adv, v->sid))
            got = memcmp(x, s->x[0], 4 * LEN) == 0;
    }
    free(x);
    sa_sim_free(s);
    return got;
}

/* The graph step sends one digest of the commitments (protocol 5). A coordinator that swaps a
 * participant's reveal after the digest (to grind the graph seed), or ours, is refused before
 * anything secret is sealed; the genuine reveals pass (positive control). */
static void test_swapped_reveal(void **state) {
    (void)state;
    weaken(0, 0, 0, 0);
    sa_sim *s = sa_sim_new(40, 3, 0);
    assert_non_null(s);
    fedc_diag d;
    assert_int_equal(sa_sim_begin(s, fedc_sa_counter(2, 0, FEDC_SA_STAGE_FIT)), FEDC_OK);
    assert_true(s->srv.graph);
    uint8_t *rv = malloc(32 * 40);
    assert_non_null(rv);
    fedc_sa_sealed boxes[7];
    for (int who = 0; who < 3; who++) {
        /* client `who`: another's reveal swapped (0), our own swapped (1), genuine (2) */
        const int *row = fedc_sa_server_nbrs(&s->srv, (uint32_t)who);
        fedc_sa_peer peers[7];
        for (int i = 0; i < 7; i++) {
            peers[i] = peer_of(s, row[i]);
            if (i % 2) /* graph mode: names and commitments come from the list and reveals */
                peers[i].name = NULL, memset(peers[i].adv.commit, 0, 32);
        }
        memcpy(rv, s->srv.reveals, 32 * 40);
        if (who < 2)
            rv[32 * (who == 0 ? 17 : who) + 5] ^= 1;
        fedc_err rc = fedc_sa_client_share(&s->cl[who], (uint32_t)who, 40, 3, s->srv.t, peers, 7,
                                           rv, boxes, &d);
        if (who < 2) {
            assert_int_equal(rc, FEDC_ECHECKSUM);
            assert_int_equal(s->cl[who].refusal, FEDC_SA_REFUSE_PROTOCOL);
            assert_non_null(strstr(d.msg, "do not match the commitments"));
            if (who == 1)
                assert_non_null(strstr(d.msg, "ours is not at our place"));
        } else {
            assert_int_equal(rc, FEDC_OK);
        }
    }
    free(rv);
    sa_sim_free(s);
}

static void test_chosen_neighbours(void **state) {
    (void)state;
    weaken(0, 0, 0, 0);
    assert_false(attack_chosen());
    weaken(0, 0, 1, 0); /* negative control: the neighbourhood is not checked */
    assert_true(attack_chosen());
    weaken(0, 0, 0, 0);
}

/* ---- 4. retry subtraction -----------------------------------------------------------------------
 */

/* Inputs are deterministic per round (the same weights give the same update), so a coordinator
 * that unmasks a stage, then retries it without client 3 and unmasks again, gets x_3 as the
 * difference. `second` is the counter of the retry: the next attempt, or the same counter again
 * (what an attempt number cut to 8 bits gave after 256 retries). Returns 1 when the decoder
 * recovered x_3. */
static int attack_retry(uint64_t first, uint64_t second) {
    sa_sim *s = sa_sim_new(4, 0, 0);
    assert_non_null(s);
    int out[MAXN] = {0}, withheld;
    assert_int_equal(sa_sim_run(s, out, first, &withheld), FEDC_OK);
    assert_true(sa_sim_sum_ok(s, out));
    uint32_t *s1 = malloc(4 * LEN), *x3 = malloc(4 * LEN);
    assert_non_null(s1);
    assert_non_null(x3);
    memcpy(s1, s->srv.sum, 4 * LEN);
    out[3] = OUT_BEFORE_SHARE;
    int got = 0;
    fedc_err rc = sa_sim_run(s, out, second, &withheld);
    if (rc == FEDC_OK) {
        for (int i = 0; i < LEN; i++)
            x3[i] = s1[i] - s->srv.sum[i];
        got = memcmp(x3, s->x[3], 4 * LEN) == 0;
    } else {
        assert_int_equal(rc, FEDC_EMISMATCH);
        assert_true(s->cl[0].refusal == FEDC_SA_REFUSE_UNMASKED ||
                    s->cl[0].refusal == FEDC_SA_REFUSE_COUNTER);
    }
    free(s1);
    free(x3);
    sa_sim_free(s);
    return got;
}

static void test_retry_subtraction(void **state) {
    (void)state;
    uint64_t a0 = fedc_sa_counter(6, 0, FEDC_SA_STAGE_FIT), a1 = fedc_sa_counter(6, 1, 1);
    weaken(0, 0, 0, 0);
    assert_false(attack_retry(a0, a1));
    assert_false(attack_retry(a0, a0));
    weaken(0, 0, 0, 1); /* negative control: no guard */
    assert_true(attack_retry(a0, a1));
    assert_true(attack_retry(a0, a0));
    weaken(0, 0, 0, 0);
}

/* The honest path still works in this build with every defence on (the switches default off). */
static void test_control_honest_session(void **state) {
    (void)state;
    weaken(0, 0, 0, 0);
    sa_sim *s = sa_sim_new(40, 3, 0);
    int out[MAXN] = {0}, withheld;
    out[7] = OUT_AFTER_SHARE;
    assert_int_equal(sa_sim_run(s, out, 99, &withheld), FEDC_OK);
    assert_true(sa_sim_sum_ok(s, out));
    sa_sim_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_honest_session),
        cmocka_unit_test(test_neighbourhood_of_one),
        cmocka_unit_test(test_split_views),
        cmocka_unit_test(test_chosen_neighbours),
        cmocka_unit_test(test_swapped_reveal),
        cmocka_unit_test(test_retry_subtraction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
