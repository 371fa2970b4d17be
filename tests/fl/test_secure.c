/* Secure aggregation in a federation of local processes (fedc-coordinator argv[1], fedc-client
 * argv[2]), with dropouts injected at exact protocol steps (FEDC_FAULT, fault.h):
 * - one round's secure aggregate equals the --secagg off aggregate within the quantisation bound;
 * - 7 clients: one exits right after ShareKeys, then two more, then one after its masked input:
 *   every round completes, the late one still counted;
 * - 7 clients, four exit after ShareKeys (below the threshold): the round aborts cleanly and is
 *   retried, the coordinator stays up and finishes; 3 clients survive one dropout;
 * - a coordinator that relays a forged round key, sends a neighbourhood of one, splits the
 *   survivor set, retries a round after unmasking or reuses a session counter is refused by the
 *   clients (CurveZMQ keys and the roster: fedc keygen); a masked input replayed from an earlier
 *   round is refused by the coordinator;
 * - availability: a member with bad round keys is excluded at once and a silent member backed
 *   off, so 20 rounds each stay within one --round-timeout of the fault-free time; a roster that
 *   lacks a member is found in round 0 and named; flags below the floor are refused;
 * - a client started with --secagg on refuses a coordinator that asks for plain updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fed.h"
#include "fed_expect.h"
#include "proc.h"
#include "fedc/fault.h"
#include "fedc/model.h"
#include "fedc/modelfile.h"

#define RUN_TIMEOUT 90
#define START_TIMEOUT 15

static const char *g_coord, *g_client, *g_fedc;

typedef fed_pair ctx;

static int setup(void **state) {
    return fed_pair_setup(state, "fedc-test-secure-", g_coord, g_client);
}

static int teardown(void **state) {
    return fed_pair_teardown(state);
}

static char *fpath(const fed *f, const char *name) {
    return fed_fpath(f, name);
}

static const char *const NAMES[] = {"bank-a", "bank-b", "bank-c", "bank-d",
                                    "bank-e", "bank-f", "bank-g", "bank-h"};

/* Runs n clients on German credit shards with the coordinator flags `extra` (NULL-terminated)
 * and FEDC_FAULT `fault` for everyone (NULL: none); clients get client_args. Waits for the
 * coordinator to exit with coord_status and returns the metrics lines in r (count in *n_r). */
static void run(fed *f, int n, const char *fault, const char *const *extra,
                const char *const *client_args, int coord_status, fed_round *r, int *n_r) {
    assert_int_equal(fed_write_shards(f, n, "shard"), 0);
    char *metrics = fpath(f, "metrics.json"), *model = fpath(f, "model.bin");
    char nbuf[8];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    const char *args[40] = {"--min-clients",
                            nbuf,
                            "--layers",
                            "16",
                            "--local-epochs",
                            "1",
                            "--heartbeat-timeout",
                            "2",
                            "--round-timeout",
                            "40",
                            "--wait-timeout",
                            "30",
                            "--metrics-json",
                            metrics,
                            "--model-out",
                            model,
                            "--secagg",
                            "on",
                            NULL};
    int na = 0;
    while (args[na])
        na++;
    for (int i = 0; extra && extra[i]; i++)
        args[na++] = extra[i];
    args[na] = NULL;
    const char *env[] = {fault, NULL};
    assert_int_equal(fed_start_coord(f, fault ? env : NULL, args, 0, START_TIMEOUT), 0);
    const char *strict[] = {"--secagg", "on", NULL};
    for (int i = 0; i < n; i++) {
        char shard[32];
        snprintf(shard, sizeof shard, "shard%d.csv", i);
        char *csv = fpath(f, shard);
        assert_true(fed_start_client(f, NAMES[i], csv, fault ? env : NULL,
                                     client_args ? client_args : strict) >= 0);
        free(csv);
    }
    fed_expect_exit(&f->coord, RUN_TIMEOUT, coord_status);
    *n_r = fed_read_metrics(metrics, r, 16);
    free(metrics);
    free(model);
}

static void expect_participants(const fed_round *r, int n_r, const int *want, int n) {
    if (n_r != n)
        print_message("%d metrics lines, expected %d\n", n_r, n);
    assert_int_equal(n_r, n);
    for (int i = 0; i < n; i++) {
        if (r[i].participants != want[i])
            print_message("round %d: %d participants, expected %d\n", i + 1, r[i].participants,
                          want[i]);
        assert_int_equal(r[i].round, i + 1);
        assert_int_equal(r[i].participants, want[i]);
        assert_true(isfinite(r[i].train_loss));
        assert_true(isfinite(r[i].val_roc_auc));
    }
}

/* The first metrics line of path, or NULL; free it. */
static char *first_line(const char *path) {
    size_t len = 0;
    char *text = proc_read_file(path, &len);
    char *end = text ? strchr(text, '\n') : NULL;
    if (end)
        *end = '\0';
    return text;
}

/* The object under key ("bytes_by_kind", "msgs_by_kind") of a metrics line: up to max kinds' names
 * and rows [training in, training out, evaluation in, evaluation out]. Returns their number, or -1
 * when the line or the object is missing or a row is not four numbers. */
/* A kind's entry as four numbers into row; 0, or -1 when it is anything else. */
static int four_numbers(const cJSON *kind, double row[4]) {
    if (!cJSON_IsArray(kind) || cJSON_GetArraySize(kind) != 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        const cJSON *x = cJSON_GetArrayItem(kind, i);
        if (!cJSON_IsNumber(x))
            return -1;
        row[i] = x->valuedouble;
    }
    return 0;
}

static int kind_rows(const char *line, const char *key, char (*names)[32], double (*rows)[4],
                     int max) {
    cJSON *root = cJSON_Parse(line);
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, key), *kind;
    int n = cJSON_IsObject(obj) ? 0 : -1;
    for (kind = n == 0 ? obj->child : NULL; kind && n < max; kind = kind->next, n++) {
        if (strlen(kind->string) >= 32 || four_numbers(kind, rows[n]) != 0) {
            n = -1;
            break;
        }
        snprintf(names[n], 32, "%s", kind->string);
    }
    if (n >= 0 && kind)
        n = -1; /* more kinds than max */
    cJSON_Delete(root);
    return n;
}

/* One kind's row of key in line; asserts that it is there. */
static void kind_row(const char *line, const char *key, const char *kind, double v[4]) {
    char names[64][32];
    double rows[64][4];
    int n = kind_rows(line, key, names, rows, 64);
    assert_true(n > 0);
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], kind) == 0) {
            memcpy(v, rows[i], sizeof rows[i]);
            return;
        }
    print_message("%s: no \"%s\"\n", key, kind);
    fail();
}

/* The metrics line's message counts agree with its byte counts: the same kinds, a message
 * wherever bytes moved and none where none did, each message at least a byte, the kinds' bytes
 * adding up to the round's bytes in and out. */
static void expect_msgs_match_bytes(const char *path) {
    char *line = first_line(path);
    assert_non_null(line);
    char bn[64][32], mn[64][32];
    double b[64][4], m[64][4], in = 0, out = 0;
    int nb = kind_rows(line, "bytes_by_kind", bn, b, 64);
    int nm = kind_rows(line, "msgs_by_kind", mn, m, 64);
    assert_true(nb > 0);
    assert_int_equal(nm, nb);
    for (int i = 0; i < nb; i++) {
        assert_string_equal(mn[i], bn[i]);
        for (int k = 0; k < 4; k++) {
            if ((m[i][k] > 0) != (b[i][k] > 0) || b[i][k] < m[i][k] || m[i][k] != floor(m[i][k]))
                print_message("%s [%d]: %.0f messages, %.0f bytes\n", bn[i], k, m[i][k], b[i][k]);
            assert_true((m[i][k] > 0) == (b[i][k] > 0));
            assert_true(b[i][k] >= m[i][k] && m[i][k] == floor(m[i][k]));
        }
        in += b[i][0] + b[i][2], out += b[i][1] + b[i][3];
    }
    assert_true(in == fed_metric_at(path, 0, "bytes_in"));
    assert_true(out == fed_metric_at(path, 0, "bytes_out"));
    free(line);
}

/* The same federation (3 clients, one round) with and without secure aggregation: the models
 * agree within the quantisation bound, and each metrics line says which mode ran. */
static void test_secure_equals_plain_within_bound(void **state) {
    ctx *c = *state;
    fed_round r[16];
    int nr;
    const char *one[] = {"--rounds", "1", NULL};
    run(&c->f[0], 3, NULL, one, NULL, 0, r, &nr);
    const char *plain[] = {"--rounds", "1", "--secagg", "off", NULL};
    const char *lax[] = {"--secagg", "off", NULL};
    run(&c->f[1], 3, NULL, plain, lax, 0, r, &nr);
    char *ms = fpath(&c->f[0], "metrics.json"), *mp = fpath(&c->f[1], "metrics.json");
    assert_true(fed_file_has(ms, "\"secagg\":true"));
    assert_true(fed_file_has(mp, "\"secagg\":false"));
    assert_false(fed_file_has(ms, "\"secagg\":false"));
    /* The round's bytes split: the evaluation's part (its secure session included) is counted
     * apart from the training's, and the message kinds are named (bench_scale reads them). */
    double in_s = fed_metric_at(ms, 0, "bytes_in"), ev_s = fed_metric_at(ms, 0, "bytes_in_eval");
    double in_p = fed_metric_at(mp, 0, "bytes_in"), ev_p = fed_metric_at(mp, 0, "bytes_in_eval");
    print_message("bytes in: secure %.0f (evaluation %.0f), plain %.0f (evaluation %.0f)\n", in_s,
                  ev_s, in_p, ev_p);
    assert_true(ev_s > 0 && ev_s < in_s && ev_p > 0 && ev_p < in_p);
    assert_true(fed_metric_at(ms, 0, "bytes_out_eval") > 0);
    assert_true(fed_file_has(ms, "\"bytes_by_kind\":{"));
    assert_true(fed_file_has(ms, "\"sa_unmask\":["));
    assert_false(fed_file_has(mp, "\"sa_keys\":["));
    assert_true(fed_file_has(mp, "\"evaluate_res\":["));
    /* ... and its messages (msgs_by_kind): a plain round sends each of the 3 clients one training
     * and one evaluation instruction (the same bytes to each) and gets one answer to each. */
    expect_msgs_match_bytes(ms);
    expect_msgs_match_bytes(mp);
    char *lp = first_line(mp);
    assert_non_null(lp);
    double v[4] = {-1, -1, -1, -1};
    kind_row(lp, "msgs_by_kind", "fit_ins", v);
    assert_true(v[0] == 0 && v[1] == 3 && v[2] == 0 && v[3] == 0);
    kind_row(lp, "msgs_by_kind", "fit_res", v);
    assert_true(v[0] == 3 && v[1] == 0 && v[2] == 0 && v[3] == 0);
    kind_row(lp, "msgs_by_kind", "evaluate_ins", v);
    assert_true(v[0] == 0 && v[1] == 0 && v[2] == 0 && v[3] == 3);
    kind_row(lp, "msgs_by_kind", "evaluate_res", v);
    assert_true(v[0] == 0 && v[1] == 0 && v[2] == 3 && v[3] == 0);
    kind_row(lp, "bytes_by_kind", "fit_ins", v);
    assert_true(v[1] > 0 && fmod(v[1], 3) == 0);
    free(lp);
    /* Secure: each client's keys once in the training's session and once in the evaluation's. */
    char *ls = first_line(ms);
    assert_non_null(ls);
    kind_row(ls, "msgs_by_kind", "sa_keys", v);
    assert_true(v[0] == 3 && v[1] == 0 && v[2] == 3 && v[3] == 0);
    free(ls);
    char *pa = fpath(&c->f[0], "model.bin"), *pb = fpath(&c->f[1], "model.bin");
    fedc_model *a = NULL, *b = NULL;
    fedc_diag d;
    assert_int_equal(fedc_model_load(&a, pa, &d), FEDC_OK);
    assert_int_equal(fedc_model_load(&b, pb, &d), FEDC_OK);
    assert_int_equal(a->n_params, b->n_params);
    /* Each client's weighted update is rounded stochastically to steps of c / (2^21 - 1) with
     * c = 10 (--secagg-clip) and n_max = 1024 (B = 22): 3 steps at most on the sum, whose
     * weights add up to 1. Round 0 statistics are exact to 2^-32, so training matches. */
    double step = 10.0 / (double)((1 << 21) - 1), worst = 0;
    for (size_t i = 0; i < a->n_params; i++) {
        double e = fabs((double)a->params[i] - (double)b->params[i]);
        worst = e > worst ? e : worst;
    }
    print_message("largest difference secure vs plain: %.3g (bound %.3g)\n", worst,
                  3 * step + 1e-6);
    assert_true(worst <= 3 * step + 1e-6);
    fedc_model_destroy(&a);
    fedc_model_destroy(&b);
    free(pa);
    free(pb);
    free(ms);
    free(mp);
    c->ok = 1;
}

/* 7 clients (t = 4): bank-c exits right after ShareKeys in round 1, bank-e and bank-f in round
 * 2; in round 3 bank-g exits after its masked input arrived: still counted. */
static void test_seven_clients_dropouts(void **state) {
    ctx *c = *state;
    const char *fault = "FEDC_FAULT=bank-c/exit:sa-mask@1,bank-e/exit:sa-mask@2,"
                        "bank-f/exit:sa-mask@2,bank-g/exit:sa-unmask@3";
    const char *extra[] = {"--rounds", "3", "--min-fit-clients", "3", NULL};
    fed_round r[16];
    int nr;
    run(&c->f[0], 7, fault, extra, NULL, 0, r, &nr);
    const int want[] = {6, 4, 4};
    expect_participants(r, nr, want, 3);
    fed *f = &c->f[0];
    for (int i = 0; i < 7; i++) {
        int victim = i == 2 || i == 4 || i == 5 || i == 6;
        fed_expect_exit(&f->cl[i], 20, victim ? FEDC_FAULT_EXIT_CODE : 0);
    }
    assert_true(fed_file_has(f->coord.err, "dropped after sharing their keys"));
    assert_false(fed_file_has(f->coord.err, "secure aggregation of the training failed"));
    c->ok = 1;
}

/* Too few survive: 7 clients, four exit right after ShareKeys, three masked inputs are below
 * t = 4: the attempt aborts and the round is retried with the three left (t = 2 of 3). */
static void test_below_threshold_retried(void **state) {
    ctx *c = *state;
    const char *fault = "FEDC_FAULT=bank-a/exit:sa-mask@1,bank-b/exit:sa-mask@1,"
                        "bank-c/exit:sa-mask@1,bank-d/exit:sa-mask@1";
    const char *extra[] = {"--rounds", "2", "--min-fit-clients", "3", NULL};
    fed_round r[16];
    int nr;
    run(&c->f[0], 7, fault, extra, NULL, 0, r, &nr);
    const int want[] = {3, 3};
    expect_participants(r, nr, want, 2);
    fed *f = &c->f[0];
    assert_true(fed_file_has(f->coord.err, "secure aggregation of the training failed"));
    assert_true(fed_file_has(f->coord.err, "retrying (attempt 2"));
    for (int i = 4; i < 7; i++)
        fed_expect_exit(&f->cl[i], 20, 0);
    c->ok = 1;
}

/* 3 clients (t = 2) survive one dropout after ShareKeys: the round's training sum covers the
 * two others. With two left the federation is below the floor of 3, so no further secure sum
 * starts (the evaluation is skipped, named in the log) rather than one over fewer clients. */
static void test_three_clients_one_dropout(void **state) {
    ctx *c = *state;
    const char *extra[] = {"--rounds", "1", "--min-fit-clients", "2", NULL};
    fed_round r[16];
    int nr;
    run(&c->f[0], 3, "FEDC_FAULT=bank-b/exit:sa-mask@1", extra, NULL, 0, r, &nr);
    assert_int_equal(nr, 1);
    assert_int_equal(r[0].participants, 2);
    assert_true(isfinite(r[0].train_loss));
    assert_true(fed_file_has(c->f[0].coord.err, "dropped after sharing their keys"));
    assert_true(fed_file_has(c->f[0].coord.err,
                             "evaluation failed: 2 client(s) sent valid round keys, 3 needed"));
    c->ok = 1;
}

/* A masked input replayed from round 1 in round 2 is refused; the round completes. */
static void test_replayed_masked_input_refused(void **state) {
    ctx *c = *state;
    const char *extra[] = {"--rounds", "2", NULL};
    fed_round r[16];
    int nr;
    run(&c->f[0], 3, "FEDC_FAULT=bank-a/misbehave:sa-replay@2", extra, NULL, 0, r, &nr);
    const int want[] = {3, 3};
    expect_participants(r, nr, want, 2);
    fed *f = &c->f[0];
    assert_true(fed_file_has(f->cl[0].err, "replaying the masked input"));
    assert_true(fed_file_has(f->coord.err, "bank-a: sa_masked refused"));
    assert_true(fed_file_has(f->coord.err, "stale or replayed"));
    c->ok = 1;
}

/* Keys for a coordinator and n banks via `fedc keygen`; dir/keys/NAME.key(_secret). */
static void make_keys(fed *f, int n) {
    char *dir = fpath(f, "keys");
    for (int i = 0; i <= n; i++) {
        const char *name = i == 0 ? "coordinator" : NAMES[i - 1];
        const char *argv[] = {g_fedc, "keygen", "--name", name, "--out", dir, NULL};
        proc_result res;
        assert_int_equal(proc_run(&res, argv, NULL, 30), 0);
        assert_int_equal(res.status, 0);
        proc_result_release(&res);
    }
    free(dir);
}

/* Copies keys/NAME.key into DIR/NAME.key for the first n banks, leaving out bank `skip` (-1:
 * none): an allow-list or a roster. */
static void make_roster(fed *f, const char *dir, int n, int skip) {
    char *d = fpath(f, dir);
    assert_int_equal(mkdir(d, 0755), 0);
    free(d);
    for (int i = 0; i < n; i++) {
        if (i == skip)
            continue;
        char src[128], dst[160];
        snprintf(src, sizeof src, "keys/%s.key", NAMES[i]);
        snprintf(dst, sizeof dst, "%s/%s.key", dir, NAMES[i]);
        char *ps = fpath(f, src), *pd = fpath(f, dst);
        size_t len;
        char *bytes = proc_read_file(ps, &len);
        assert_non_null(bytes);
        assert_int_equal(proc_write_bytes(pd, bytes, len), 0);
        free(bytes);
        free(ps);
        free(pd);
    }
}

/* A federation of n banks with CurveZMQ keys, the allow-list as every bank's roster (bank
 * `short_roster` gets one without bank `unlisted`, when >= 0), FEDC_FAULT `fault` for everyone,
 * and the coordinator flags `extra`. Waits for the coordinator's exit status coord_status and
 * returns the metrics lines (count). */
static int run_keyed(fed *f, int n, const char *fault, const char *const *extra, int coord_status,
                     int short_roster, int unlisted, fed_round *r, int max_r) {
    make_keys(f, n);
    assert_int_equal(fed_write_shards(f, n, "shard"), 0);
    char *metrics = fpath(f, "metrics.json"), *allow = fpath(f, "allow"), *shortr = NULL;
    char *ck = fpath(f, "keys/coordinator.key_secret"), *cp = fpath(f, "keys/coordinator.key");
    make_roster(f, "allow", n, -1);
    if (short_roster >= 0) {
        make_roster(f, "short", n, unlisted);
        shortr = fpath(f, "short");
    }
    char nbuf[8];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    const char *args[48] = {"--min-clients",
                            nbuf,
                            "--layers",
                            "16",
                            "--heartbeat-timeout",
                            "2",
                            "--wait-timeout",
                            "30",
                            "--metrics-json",
                            metrics,
                            "--secagg",
                            "on",
                            "--key",
                            ck,
                            "--allow",
                            allow,
                            NULL};
    int na = 0;
    while (args[na])
        na++;
    for (int i = 0; extra && extra[i]; i++)
        args[na++] = extra[i];
    args[na] = NULL;
    /* FED_SECURE=1 in the environment tells the helper to leave out --insecure. */
    const char *env[] = {"FED_SECURE=1", fault, NULL};
    assert_int_equal(fed_start_coord(f, env, args, 0, START_TIMEOUT), 0);
    for (int i = 0; i < n; i++) {
        char shard[32], key[64];
        snprintf(shard, sizeof shard, "shard%d.csv", i);
        snprintf(key, sizeof key, "keys/%s.key_secret", NAMES[i]);
        char *csv = fpath(f, shard), *k = fpath(f, key);
        const char *cargs[] = {"--secagg",
                               "on",
                               "--key",
                               k,
                               "--coordinator-key",
                               cp,
                               "--peers",
                               i == short_roster ? shortr : allow,
                               NULL};
        assert_true(fed_start_client(f, NAMES[i], csv, env, cargs) >= 0);
        free(csv);
        free(k);
    }
    fed_expect_exit(&f->coord, 4 * RUN_TIMEOUT, coord_status);
    int nr = fed_read_metrics(metrics, r, max_r);
    free(metrics);
    free(allow);
    free(shortr);
    free(ck);
    free(cp);
    return nr;
}

/* A lying coordinator (FEDC_FAULT misbehave) against 3 clients with CurveZMQ keys and a roster:
 * the client lied to refuses with client_says; the honest ones finish the round. */
static void lying_coordinator(void **state, const char *fault, const char *client_says) {
    ctx *c = *state;
    fed *f = &c->f[0];
    const char *extra[] = {"--min-fit-clients", "2",  "--rounds", "1",
                           "--round-timeout",   "40", NULL};
    fed_round r[4];
    int nr = run_keyed(f, 3, fault, extra, 0, -1, -1, r, 4);
    assert_int_equal(nr, 1);
    assert_int_equal(r[0].round, 1);
    /* The session numbers clients by name: the coordinator lies to bank-a (id 0). */
    assert_true(fed_file_has(f->cl[0].err, client_says));
    assert_true(fed_file_has(f->coord.err, "bank-a reports an error: secure aggregation"));
    assert_false(fed_file_has(f->cl[1].err, client_says));
    /* The refusal names secure aggregation once (it used to say it twice). */
    assert_false(fed_file_has(f->cl[0].err, "secure aggregation: secure aggregation:"));
    assert_false(fed_file_has(f->coord.err, "secure aggregation: secure aggregation:"));
    c->ok = 1;
}

static void test_forged_round_key_refused(void **state) {
    lying_coordinator(state, "FEDC_FAULT=coordinator/misbehave:sa-forge@1",
                      "not signed by its identity key");
}

/* The coordinator tells bank-a that bank-c dropped while the others hear it survived: bank-a
 * finds too few signatures on its survivor set and reveals nothing; the others agree on one set
 * and the round completes with all three inputs. */
static void test_split_view_refused(void **state) {
    lying_coordinator(state, "FEDC_FAULT=coordinator/misbehave:sa-split@1",
                      "valid signature(s) on the survivor set");
}

/* A neighbourhood of one (threshold 1) would reveal the client's self-mask seed: refused. */
static void test_neighbourhood_of_one_refused(void **state) {
    lying_coordinator(state, "FEDC_FAULT=coordinator/misbehave:sa-one@1", "below our floor");
}

/* The coordinator keeps round 2's unmasked training sum and retries the round, hoping to
 * subtract: every client refuses to unmask the stage again, the round is abandoned (never
 * retried) and round 3 goes on from the same model. */
static void test_retry_after_unmask_refused(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    const char *extra[] = {"--rounds", "3", "--round-timeout", "40", NULL};
    fed_round r[8];
    int nr = run_keyed(f, 3, "FEDC_FAULT=coordinator/misbehave:sa-retry@2", extra, 0, -1, -1, r, 8);
    assert_int_equal(nr, 3);
    assert_false(r[0].abandoned);
    assert_true(r[1].abandoned);
    assert_int_equal(r[1].round, 2);
    assert_false(r[2].abandoned);
    assert_int_equal(r[2].participants, 3);
    for (int i = 0; i < 3; i++)
        assert_true(fed_file_has(f->cl[i].err, "which we unmasked already in this run"));
    assert_true(fed_file_has(f->coord.err, "round 2 abandoned"));
    c->ok = 1;
}

/* The coordinator reuses a session counter (an attempt number that wrapped): every client
 * refuses it, reports its last counter, and the retry goes past it. */
static void test_counter_reuse_refused(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    const char *extra[] = {"--rounds", "2", "--round-timeout", "40", NULL};
    fed_round r[8];
    int nr = run_keyed(f, 3, "FEDC_FAULT=coordinator/misbehave:sa-wrap@2", extra, 0, -1, -1, r, 8);
    assert_int_equal(nr, 2);
    assert_int_equal(r[1].participants, 3);
    for (int i = 0; i < 3; i++)
        assert_true(fed_file_has(f->cl[i].err, "does not go forward"));
    c->ok = 1;
}

/* Availability: one member advertises round keys its identity did not sign (every session) and
 * one heartbeats but answers nothing from round 0 on. The coordinator drops the first at once
 * (excluded, counted) and backs off the second exponentially, so each of 20 rounds stays within
 * one --round-timeout of the fault-free time (and most cost nothing). */
static void test_bad_keys_and_silent_member(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    const char *extra[] = {
        "--rounds", "20", "--round-timeout", "2", "--min-fit-clients", "3", "--min-clients",
        "3",        NULL};
    fed_round r[24];
    int nr = run_keyed(f, 5, "FEDC_FAULT=bank-d/misbehave:sa-badkeys@*,bank-e/misbehave:sa-silent",
                       extra, 0, -1, -1, r, 24);
    assert_int_equal(nr, 20);
    double fastest = 1e9;
    for (int i = 0; i < nr; i++)
        if (r[i].seconds < fastest)
            fastest = r[i].seconds;
    int slow = 0;
    for (int i = 0; i < nr; i++) {
        assert_int_equal(r[i].round, i + 1);
        assert_false(r[i].abandoned);
        assert_true(r[i].participants >= 3);
        assert_true(r[i].excluded <= 1);
        /* One timeout (2 s) at most over the fault-free time, with 1 s of slack for this
         * shared machine. */
        if (r[i].seconds > fastest + 3.0)
            print_message("round %d took %.2f s (fastest %.2f s)\n", i + 1, r[i].seconds, fastest);
        assert_true(r[i].seconds <= fastest + 3.0);
        slow += r[i].seconds > fastest + 1.0;
    }
    assert_int_equal(r[nr - 1].excluded, 1);
    /* Back-off: the silent member is tried again after 1, 2, 4, 8 rounds, not every round. */
    print_message("%d of 20 rounds waited for the silent member\n", slow);
    assert_true(slow <= 5);
    assert_true(
        fed_file_has(f->coord.err, "bank-d sent round keys that its identity did not sign"));
    assert_true(fed_file_has(f->coord.err, "heartbeats do not shorten this"));
    /* No honest client refused anything because of bank-d. */
    for (int i = 0; i < 3; i++)
        assert_false(fed_file_has(f->cl[i].err, "not signed by its identity key"));
    c->ok = 1;
}

/* A key in the allow-list but missing from one bank's roster: found in round 0 and reported
 * with the name; the run goes on without the unlisted member. */
static void test_roster_mismatch_found(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    const char *extra[] = {
        "--rounds", "2", "--round-timeout", "10", "--min-clients", "4", "--min-fit-clients",
        "3",        NULL};
    fed_round r[8];
    int nr = run_keyed(f, 4, NULL, extra, 0, 2, 3, r, 8); /* bank-c lacks bank-d */
    assert_int_equal(nr, 2);
    assert_true(fed_file_has(f->coord.err, "bank-d is not in bank-c's roster"));
    assert_int_equal(r[1].excluded, 1);
    assert_int_equal(r[1].participants, 3);
    c->ok = 1;
}

/* Flags that would let a stage sum fewer clients than the floor are refused at start. */
static void test_floor_flags_refused(void **state) {
    ctx *c = *state;
    const char *cases[][8] = {
        {"--min-clients", "1", NULL},
        {"--min-clients", "2", NULL},
        {"--min-clients", "3", "--min-fit-clients", "1", NULL},
        {"--min-clients", "4", "--secagg-min-neighbours", "5", NULL},
        {"--secagg-neighbours", "1", "--secagg-min-neighbours", "5", "--min-clients", "5", NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *argv[16] = {g_coord, "--bind", "tcp://127.0.0.1:1", "--insecure"};
        int na = 4;
        for (int i = 0; cases[k][i]; i++)
            argv[na++] = cases[k][i];
        argv[na] = NULL;
        proc_result res;
        assert_int_equal(proc_run(&res, argv, NULL, 30), 0);
        if (res.status != 2 || !strstr(res.err, "floor"))
            print_message("case %zu: status %d, stderr %s\n", k, res.status, res.err);
        assert_int_equal(res.status, 2);
        assert_non_null(strstr(res.err, "floor"));
        proc_result_release(&res);
    }
    c->ok = 1;
}

/* --augment on the clients: synthetic rows are added locally (logged), the federation runs and
 * the aggregate still counts real rows only (the weights come from round 0's totals). */
static void test_clients_augment_locally(void **state) {
    ctx *c = *state;
    const char *extra[] = {"--rounds", "2", NULL};
    const char *cargs[] = {"--secagg", "on", "--augment", "smote:0.6", NULL};
    fed_round r[16];
    int nr;
    run(&c->f[0], 3, NULL, extra, cargs, 0, r, &nr);
    const int want[] = {3, 3};
    expect_participants(r, nr, want, 2);
    for (int i = 0; i < 3; i++)
        assert_true(fed_file_has(c->f[0].cl[i].err, "synthetic positive rows added locally"));
    c->ok = 1;
}

/* A client that insists on secure aggregation (the default) refuses a plain coordinator. */
static void test_client_refuses_plain_coordinator(void **state) {
    ctx *c = *state;
    fed *f = &c->f[0];
    assert_int_equal(fed_write_shards(f, 2, "shard"), 0);
    const char *args[] = {
        "--min-clients",   "2", "--rounds",      "1", "--secagg", "off", "--wait-timeout", "10",
        "--round-timeout", "5", "--max-retries", "0", NULL};
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    const char *strict[] = {"--secagg", "on", NULL};
    char *s0 = fpath(f, "shard0.csv"), *s1 = fpath(f, "shard1.csv");
    assert_true(fed_start_client(f, "bank-a", s0, NULL, strict) >= 0);
    assert_true(fed_start_client(f, "bank-b", s1, NULL, strict) >= 0);
    fed_expect_exit(&f->cl[0], 30, 2);
    fed_expect_exit(&f->cl[1], 30, 2);
    assert_true(fed_file_has(f->cl[0].err, "sends its statistics only masked"));
    (void)fed_wait(&f->coord, 30);
    assert_int_not_equal(f->coord.res.status, 0);
    free(s0);
    free(s1);
    c->ok = 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s FEDC-COORDINATOR FEDC-CLIENT FEDC\n", argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    g_fedc = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secure_equals_plain_within_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seven_clients_dropouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_below_threshold_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_clients_one_dropout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replayed_masked_input_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_round_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_view_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_neighbourhood_of_one_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_unmask_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_reuse_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_keys_and_silent_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roster_mismatch_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_floor_flags_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_refuses_plain_coordinator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_augment_locally, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
