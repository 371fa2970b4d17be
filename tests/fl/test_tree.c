/* A tree of coordinators (fedc-coordinator --upstream, coordinator/edge.h) as local processes:
 * a root with 3 edges of 3 clients each gives the same model as the flat federation of the same
 * 9 clients, to within the quantisation of secure aggregation (on at both tiers), and to float
 * rounding with secure aggregation off at both; an edge killed
 * in the middle of the root's last round is left out of it (a SecAgg+ dropout: the root unmasks
 * the sum of the two others) and the run finishes; a root restarted with --resume gets its edges
 * back and finishes the run; client-level DP at the root runs over the edges; an edge refuses the
 * flags that would give it a schedule, a server step or noise of its own.
 *
 *   test_tree PATH/TO/fedc-coordinator PATH/TO/fedc-client
 *
 * Data: the first 4,500 rows of the Taiwan fixture, row i going to client i % 9 (the label column
 * renamed to the test helpers' "bad", the ID column left out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed.h"
#include "fedc/model.h"
#include "fedc/modelfile.h"
#include "proc.h"

#define TAIWAN FEDC_SOURCE_DIR "/tests/fixtures/taiwan_default/default_of_credit_card_clients.csv"
#define N_EDGES 3
#define PER_EDGE 3
#define N_CLIENTS (N_EDGES * PER_EDGE)
#define N_ROWS 4500
#define ROUNDS 3
#define RUN_TIMEOUT 120
#define START_TIMEOUT 20

/* The bound on |tree - flat| per parameter, from the secure-aggregation quantiser. Updates are
 * summed in fixed point with scale s = (2^(B-1) - 1) / c, B = 32 - ceil(log2 1024) = 22 bits for
 * the default --secagg-max-clients 1024 and c = 10 (--secagg-clip), with stochastic rounding: each
 * quantised value is off by less than 1/s. Weights are shares of the rows (summing to 1), so a
 * flat round's mean update is off by less than 9/s (9 clients); a tree's by 3/s at each edge
 * (3 clients, then divided by the edge's weight sum 1) plus 3 edges' 1/s at the root, less than
 * 6/s: per round |tree - flat| < 15/s (about 7.2e-5). A difference in a round's starting weights
 * is carried into the next round's update by training; with --lr 0.05 and 2 local epochs we take
 * it as at most doubled per round (measured: far less), so after R rounds the bound is
 * (2^R - 1) x 15/s, 5.0e-4 for 3 rounds. A diverged tree (another seed, a lost edge, a second
 * server step) differs by 1e-2 and more. */
#define QUANT_S ((double)((1u << 21) - 1) / 10.0)
#define TREE_BOUND (((1 << ROUNDS) - 1) * 15.0 / QUANT_S)

static const char *g_coord, *g_client;
/* --secagg of every coordinator (fed_start_coord's default is off; its clients accept both) */
static const char *g_secagg = "on";

typedef struct tree {
    fed flat;          /* the flat federation: 9 clients */
    fed root;          /* the tree's root (no clients of its own) */
    fed edge[N_EDGES]; /* each edge as its coordinator, with its 3 clients */
    int ok;
} tree;

static int setup(void **state) {
    g_secagg = "on"; /* a failed plain test returns without restoring it */
    tree *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    int rc = fed_init(&t->flat, "fedc-test-tree-", g_coord, g_client) |
             fed_init(&t->root, "fedc-test-tree-", g_coord, g_client);
    for (int e = 0; e < N_EDGES; e++)
        rc |= fed_init(&t->edge[e], "fedc-test-tree-", g_coord, g_client);
    *state = t;
    return rc ? -1 : 0;
}

static int teardown(void **state) {
    tree *t = *state;
    fed_release(&t->flat, !t->ok);
    fed_release(&t->root, !t->ok);
    for (int e = 0; e < N_EDGES; e++)
        fed_release(&t->edge[e], !t->ok);
    free(t);
    return 0;
}

/* Writes the 9 shards into f's directory as s0.csv .. s8.csv. */
static void write_shards(const fed *f) {
    FILE *in = fopen(TAIWAN, "r");
    assert_non_null(in);
    FILE *out[N_CLIENTS];
    for (int k = 0; k < N_CLIENTS; k++) {
        char name[16];
        snprintf(name, sizeof name, "s%d.csv", k);
        char *p = fed_path(f, name);
        out[k] = fopen(p, "w");
        free(p);
        assert_non_null(out[k]);
    }
    char line[4096];
    for (int i = -1; i < N_ROWS && fgets(line, sizeof line, in); i++) {
        /* the first column (ID) left out; the last (the label) renamed in the header */
        char *rest = strchr(line, ',');
        assert_non_null(rest);
        rest++;
        if (i < 0) {
            char *lab = strstr(rest, "default_payment_next_month");
            assert_non_null(lab);
            strcpy(lab, "bad\n");
            for (int k = 0; k < N_CLIENTS; k++)
                fputs(rest, out[k]);
        } else {
            fputs(rest, out[i % N_CLIENTS]);
        }
    }
    fclose(in);
    for (int k = 0; k < N_CLIENTS; k++)
        assert_int_equal(fclose(out[k]), 0);
}

static void start_client(fed *f, const fed *data, int k) {
    char name[16], csv[16];
    snprintf(name, sizeof name, "c%d", k);
    snprintf(csv, sizeof csv, "s%d.csv", k);
    char *p = fed_path(data, csv);
    assert_true(fed_start_client(f, name, p, NULL, NULL) >= 0);
    free(p);
}

/* The root (or the flat coordinator): --min-clients n, the model and metrics in its directory. */
static void start_root(fed *f, int n, const char *const *env, const char *const *extra) {
    char *model = fed_path(f, "model.fedc"), *metrics = fed_path(f, "metrics.jsonl");
    char nc[8];
    snprintf(nc, sizeof nc, "%d", n);
    /* fed_start_coord runs plain aggregation unless told otherwise */
    const char *args[40] = {
        "--secagg",       g_secagg, "--layers",       "8",  "--seed",      "7",
        "--rounds",       "3",      "--min-clients",  nc,   "--model-out", model,
        "--metrics-json", metrics,  "--wait-timeout", "60", NULL};
    int a = 0, resume = 0;
    while (args[a])
        a++;
    for (int i = 0; extra && extra[i]; i++) {
        resume |= strcmp(extra[i], "--resume") == 0; /* then the same port, or the edges lose it */
        args[a++] = extra[i];
    }
    args[a] = NULL;
    assert_int_equal(fed_start_coord(f, env, args, resume, START_TIMEOUT), 0);
    free(model);
    free(metrics);
}

/* Edge e under the root, with its clients 3e .. 3e+2. */
static void start_edge(tree *t, int e, const char *const *env) {
    char name[16];
    snprintf(name, sizeof name, "edge%d", e);
    const char *args[] = {"--secagg",
                          g_secagg,
                          "--upstream",
                          t->root.endpoint,
                          "--name",
                          name,
                          "--layers",
                          "8",
                          "--seed",
                          "7",
                          "--rounds",
                          "3",
                          "--min-clients",
                          "3",
                          "--wait-timeout",
                          "60",
                          "--heartbeat-ms",
                          "200",
                          NULL};
    assert_int_equal(fed_start_coord(&t->edge[e], env, args, 0, START_TIMEOUT), 0);
    for (int j = 0; j < PER_EDGE; j++)
        start_client(&t->edge[e], &t->flat, e * PER_EDGE + j);
}

static void expect_exit0(fed_proc *p) {
    assert_int_equal(fed_wait(p, RUN_TIMEOUT), 0);
    if (p->res.status != 0)
        print_message("%s: status %d, signal %d, timed out %d\n", p->name, p->res.status,
                      p->res.term_signal, p->res.timed_out);
    assert_int_equal(p->res.status, 0);
}

static void run_flat(tree *t) {
    start_root(&t->flat, N_CLIENTS, NULL, NULL);
    for (int k = 0; k < N_CLIENTS; k++)
        start_client(&t->flat, &t->flat, k);
    expect_exit0(&t->flat.coord);
}

/* The largest |a - b| over the two model files' parameters; their standardisation must agree
 * to float rounding (round 0's sums travel twice through the wide fixed point in a tree). */
static double max_param_diff(const char *pa, const char *pb) {
    fedc_model *a = NULL, *b = NULL;
    fedc_diag d;
    assert_int_equal(fedc_model_load(&a, pa, &d), FEDC_OK);
    assert_int_equal(fedc_model_load(&b, pb, &d), FEDC_OK);
    assert_int_equal(a->n_params, b->n_params);
    double m = 0;
    for (size_t i = 0; i < a->n_params; i++) {
        double x = fabs((double)a->params[i] - (double)b->params[i]);
        assert_true(isfinite(x));
        if (x > m)
            m = x;
    }
    for (int j = 0; j < a->arch.sizes[0]; j++) {
        assert_true(fabsf(a->mean[j] - b->mean[j]) <= 1e-6f * (1.0f + fabsf(a->mean[j])));
        assert_true(fabsf(a->std[j] - b->std[j]) <= 1e-6f * (1.0f + fabsf(a->std[j])));
    }
    fedc_model_destroy(&a);
    fedc_model_destroy(&b);
    return m;
}

/* The flat federation, then the tree, on the same shards; the largest parameter difference of
 * their models must be within bound, and their metrics agree round by round. */
static void tree_vs_flat(tree *t, double bound) {
    write_shards(&t->flat);
    run_flat(t);
    start_root(&t->root, N_EDGES, NULL, NULL);
    for (int e = 0; e < N_EDGES; e++)
        start_edge(t, e, NULL);
    expect_exit0(&t->root.coord);
    for (int e = 0; e < N_EDGES; e++) {
        expect_exit0(&t->edge[e].coord);
        for (int j = 0; j < PER_EDGE; j++)
            expect_exit0(&t->edge[e].cl[j]);
        /* the edge ran the upstream's rounds, securely, over its own 3 clients */
        assert_true(fed_file_has(t->edge[e].coord.err, strcmp(g_secagg, "on") == 0
                                                           ? "summed securely over 3 client(s)"
                                                           : "statistics from 3 client(s)"));
        assert_true(fed_file_has(t->edge[e].coord.err, "edge: upstream round 3"));
    }
    char *mf = fed_path(&t->flat, "model.fedc"), *mt = fed_path(&t->root, "model.fedc");
    double diff = max_param_diff(mf, mt);
    print_message("tree vs flat (secure aggregation %s): max |parameter difference| %.3g, bound "
                  "%.3g\n",
                  g_secagg, diff, bound);
    assert_true(diff <= bound);
    free(mf);
    free(mt);
    /* the root saw 3 participants a round (the edges), the flat one 9; the same metrics */
    char *pf = fed_path(&t->flat, "metrics.jsonl"), *pt = fed_path(&t->root, "metrics.jsonl");
    fed_round rf[8], rt[8];
    assert_int_equal(fed_read_metrics(pf, rf, 8), ROUNDS);
    assert_int_equal(fed_read_metrics(pt, rt, 8), ROUNDS);
    for (int r = 0; r < ROUNDS; r++) {
        assert_int_equal(rf[r].participants, N_CLIENTS);
        assert_int_equal(rt[r].participants, N_EDGES);
        assert_true(fabs(rf[r].val_roc_auc - rt[r].val_roc_auc) < 1e-3);
        assert_true(fabs(rf[r].train_loss - rt[r].train_loss) < 1e-3);
    }
    free(pf);
    free(pt);
}

static void test_tree_equals_flat(void **state) {
    tree *t = *state;
    tree_vs_flat(t, TREE_BOUND);
    t->ok = 1;
}

/* Without secure aggregation at either tier nothing is quantised: the updates are summed in
 * 64-bit fixed point at each tier, and the tree differs from the flat federation by float
 * rounding only (the edge's global + mean, and the upstream client's local - global: a few ulps
 * of weights of magnitude below 4 a round; measured 1.2e-7 after 3 rounds). */
static void test_tree_plain_equals_flat(void **state) {
    tree *t = *state;
    g_secagg = "off";
    tree_vs_flat(t, 1e-5);
    t->ok = 1;
}

/* Edge 2 is killed in round 3 after its round keys and shares went out (FEDC_FAULT sa-mask: the
 * root must unmask the others' sum without its input): round 3 completes with 2 edges and the run
 * finishes. The root's floor of 3 live members would hold a later round, so the kill is in the
 * last one. */
static void test_tree_edge_dies(void **state) {
    tree *t = *state;
    write_shards(&t->flat);
    const char *const root_extra[] = {"--min-fit-clients", "2", "--heartbeat-timeout", "6", NULL};
    start_root(&t->root, N_EDGES, NULL, root_extra);
    const char *const kill_env[] = {"FEDC_FAULT=edge2/kill:sa-mask@3", NULL};
    for (int e = 0; e < N_EDGES; e++)
        start_edge(t, e, e == 2 ? kill_env : NULL);
    expect_exit0(&t->root.coord);
    assert_int_equal(fed_wait(&t->edge[2].coord, RUN_TIMEOUT), 0);
    assert_int_equal(t->edge[2].coord.res.term_signal, SIGKILL);
    for (int e = 0; e < 2; e++)
        expect_exit0(&t->edge[e].coord);
    char *pt = fed_path(&t->root, "metrics.jsonl");
    fed_round rt[8];
    assert_int_equal(fed_read_metrics(pt, rt, 8), ROUNDS);
    for (int r = 0; r < ROUNDS - 1; r++)
        assert_int_equal(rt[r].participants, N_EDGES);
    assert_int_equal(rt[ROUNDS - 1].participants, N_EDGES - 1);
    /* its evaluation needs the floor of 3 members, which 2 edges are not: the model is written
     * all the same */
    char *model = fed_path(&t->root, "model.fedc");
    assert_true(fed_file_size(model) > 0);
    free(model);
    free(pt);
    t->ok = 1;
}

/* The root killed right after round 2's checkpoint and started again with --resume: the edges
 * (and their clients) wait for it, rejoin the same run, and round 3 runs once over all 3 edges;
 * the edges keep no state of their own to restore. */
static void test_tree_root_resumes(void **state) {
    tree *t = *state;
    write_shards(&t->flat);
    char *ck = fed_path(&t->root, "ckpt");
    const char *const extra[] = {"--checkpoint-dir", ck, NULL};
    const char *const kill_env[] = {"FEDC_FAULT=coordinator/kill:checkpoint@2", NULL};
    start_root(&t->root, N_EDGES, kill_env, extra);
    for (int e = 0; e < N_EDGES; e++)
        start_edge(t, e, NULL);
    assert_int_equal(fed_wait(&t->root.coord, RUN_TIMEOUT), 0);
    assert_int_equal(t->root.coord.res.term_signal, SIGKILL);
    const char *const resume[] = {"--checkpoint-dir", ck, "--resume", NULL};
    start_root(&t->root, N_EDGES, NULL, resume);
    expect_exit0(&t->root.coord);
    for (int e = 0; e < N_EDGES; e++)
        expect_exit0(&t->edge[e].coord);
    char *pt = fed_path(&t->root, "metrics.jsonl");
    fed_round rt[8];
    assert_int_equal(fed_read_metrics(pt, rt, 8), ROUNDS);
    for (int r = 0; r < ROUNDS; r++) {
        assert_int_equal(rt[r].round, r + 1);
        assert_int_equal(rt[r].participants, N_EDGES);
    }
    free(pt);
    free(ck);
    t->ok = 1;
}

/* Client-level DP at the root of a tree: each edge takes part as one client, whose forwarded mean
 * update its upstream client clips to C; the root adds the noise to the secure sum over the edges
 * and charges every round (the edges refuse DP of their own, test_edge_flags). */
static void test_tree_root_dp(void **state) {
    tree *t = *state;
    write_shards(&t->flat);
    const char *const extra[] = {"--dp-clip", "1", "--dp-noise", "0.6", NULL};
    start_root(&t->root, N_EDGES, NULL, extra);
    for (int e = 0; e < N_EDGES; e++)
        start_edge(t, e, NULL);
    expect_exit0(&t->root.coord);
    for (int e = 0; e < N_EDGES; e++)
        expect_exit0(&t->edge[e].coord);
    char *pt = fed_path(&t->root, "metrics.jsonl");
    fed_round rt[8];
    assert_int_equal(fed_read_metrics(pt, rt, 8), ROUNDS);
    for (int r = 0; r < ROUNDS; r++) {
        assert_int_equal(rt[r].participants, N_EDGES);
        assert_true(isfinite(rt[r].val_roc_auc));
        assert_true(fed_metric_at(pt, r, "dp_rounds_charged") == (double)(r + 1));
        assert_true(fed_metric_at(pt, r, "dp_clip") == 1.0); /* set when the noise is added */
        assert_true(fed_metric_at(pt, r, "dp_epsilon") > 0);
    }
    free(pt);
    t->ok = 1;
}

/* Flags that make no sense at an edge are refused before anything runs, naming the flag. */
static void test_edge_flags(void **state) {
    tree *t = *state;
    struct {
        const char *args[4], *expect;
    } bad[] = {{{"--aggregator", "norm-bound", "--norm-bound", "1"}, "an edge forwards"},
               {{"--checkpoint-dir", "/tmp"}, "--checkpoint-dir"},
               {{"--dp-clip", "1", "--dp-noise", "1"}, "client-level DP"},
               {{"--server-opt", "fedavgm"}, "--server-opt"},
               {{"--patience", "3"}, "--patience"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[16] = {g_coord,      "--bind",     "tcp://127.0.0.1:1",
                                "--insecure", "--upstream", "tcp://127.0.0.1:2",
                                "--name",     "e"};
        int n = 8;
        for (int k = 0; k < 4 && bad[i].args[k]; k++)
            argv[n++] = bad[i].args[k];
        argv[n] = NULL;
        proc_result r;
        assert_int_equal(proc_run(&r, argv, NULL, 20), 0);
        if (r.status != 2 || !strstr(r.err, bad[i].expect))
            print_message("%s: status %d, stderr: %s\n", bad[i].args[0], r.status, r.err);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, bad[i].expect));
        proc_result_release(&r);
    }
    /* the edge's own flags without --upstream */
    const char *argv[] = {g_coord, "--bind", "tcp://127.0.0.1:1", "--insecure", "--name",
                          "e",     NULL};
    proc_result r;
    assert_int_equal(proc_run(&r, argv, NULL, 20), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--name applies to an edge aggregator only"));
    proc_result_release(&r);
    t->ok = 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s FEDC-COORDINATOR FEDC-CLIENT\n", argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_edge_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_equals_flat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_plain_equals_flat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_edge_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_root_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_root_dp, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
