/* Client-level differential privacy (DP-FedAvg) end to end with fedc sim: real coordinator and
 * client processes, secure aggregation on unless said otherwise.
 *   - the noise the coordinator adds has the configured standard deviation z C / n on the mean
 *     (clients send all-zero updates through the fault hook, so the model moves by the noise
 *     alone), with negative controls in the same test;
 *   - runs with DP on are not bit-identical (secret noise), runs without are;
 *   - clients clip their update to C; an update beyond C is refused with a reason;
 *   - --target-epsilon stops before the budget is exceeded (epsilon matches `fedc privacy`) and
 *     refuses to start when one round would exceed it; adaptive clipping moves C;
 *   - every sampled round is released and charged, never redrawn: a sample too small to
 *     aggregate, or a rejected sum, releases the noise alone;
 *   - a robust aggregator that needs individual updates is refused under secure aggregation.
 * With the argument "quality": hundreds of clients on the Taiwan data (epsilon and ROC-AUC per
 * round), and record-level DP-SGD over 5 clients at epsilon about 8.
 *
 *   test_sim_dp PATH/TO/fedc [quality] */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proc.h"
#include "simrun.h"

static const char *g_fedc;

/* out = a then b (both NULL-terminated), NULL-terminated; out holds 64. */
static void concat(const char **out, const char *const *a, const char *const *b) {
    int n = 0;
    for (int i = 0; a[i] && n < 63; i++)
        out[n++] = a[i];
    for (int i = 0; b[i] && n < 63; i++)
        out[n++] = b[i];
    out[n] = NULL;
}

#define TAIWAN FEDC_SOURCE_DIR "/tests/fixtures/taiwan_default/default_of_credit_card_clients.csv"
#define GERMAN FEDC_SOURCE_DIR "/tests/fixtures/german_credit/german_credit_numeric.csv"

/* Standard normal CDF. */
static double phi(double x) {
    return 0.5 * erfc(-x / sqrt(2.0));
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Whether d (n values) looks like N(0, sd^2): mean within 5 standard errors of 0, sample sd
 * within 5 standard errors of sd (SE of a sample sd ~ sd / sqrt(2n)), and the Kolmogorov-Smirnov
 * statistic below 1.95 / sqrt(n) (significance 0.001). Prints the figures. */
static int looks_normal(const double *d, size_t n, double sd, const char *what) {
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++)
        m += d[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
        v += (d[i] - m) * (d[i] - m);
    double s = sqrt(v / (double)(n - 1));
    double *z = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++)
        z[i] = d[i] / sd;
    qsort(z, n, sizeof *z, cmp_double);
    double ks = 0;
    for (size_t i = 0; i < n; i++) {
        double f = phi(z[i]);
        double a = fabs(f - (double)i / (double)n), b = fabs((double)(i + 1) / (double)n - f);
        ks = fmax(ks, fmax(a, b));
    }
    free(z);
    double mean_z = m / (sd / sqrt((double)n));
    double sd_z = (s - sd) / (sd / sqrt(2.0 * (double)n));
    double ks_crit = 1.95 / sqrt((double)n);
    int ok = fabs(mean_z) < 5 && fabs(sd_z) < 5 && ks < ks_crit;
    printf("%s: n %zu, sample sd %.5f vs %.5f (z %.2f), mean z %.2f, KS %.4f (critical %.4f): %s\n",
           what, n, s, sd, sd_z, mean_z, ks, ks_crit, ok ? "fits" : "does not fit");
    return ok;
}

/* Three clients send all-zero updates: with FedAvg at server rate 1 the model moves by the noise
 * alone, which must be N(0, (z C / 3)^2) per parameter. */
static void test_noise_sd(void **state) {
    (void)state;
    const char *base[] = {"--data",   TAIWAN, "--label",   "default_payment_next_month",
                          "--drop",   "ID",   "--clients", "3",
                          "--rounds", "1",    "--layers",  "64,32",
                          NULL};
    sim_out plain = simrun(g_fedc, base, "misbehave:upd-zero@*", 300);
    assert_int_equal(plain.status, 0);
    assert_non_null(plain.model);
    const char *dp[] = {"--data",    TAIWAN, "--label",    "default_payment_next_month",
                        "--drop",    "ID",   "--clients",  "3",
                        "--rounds",  "1",    "--layers",   "64,32",
                        "--dp-clip", "0.5",  "--dp-noise", "2",
                        NULL};
    sim_out a = simrun(g_fedc, dp, "misbehave:upd-zero@*", 300);
    sim_out b = simrun(g_fedc, dp, "misbehave:upd-zero@*", 300);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    assert_non_null(a.model);
    assert_non_null(b.model);
    size_t n = plain.model->n_params;
    assert_int_equal(a.model->n_params, n);
    double *d = calloc(n ? n : 1, sizeof(double));
    assert_non_null(d);
    for (size_t i = 0; i < n; i++)
        d[i] = (double)a.model->params[i] - (double)plain.model->params[i];
    const double sd = 2.0 * 0.5 / 3.0;
    assert_true(looks_normal(d, n, sd, "DP noise on the mean, z C / n"));
    /* Negative controls on the same draws: the noise of the sum (not divided by n) and the noise
     * of two clients' mean must not fit. */
    assert_false(looks_normal(d, n, 2.0 * 0.5, "control: z C (the sum's sd)"));
    assert_false(looks_normal(d, n, 2.0 * 0.5 / 2.0, "control: z C / 2"));
    /* Secret noise: two DP runs with the same seed differ (DP runs are not bit-identical, unlike
     * runs without DP, which the federation tests check are). */
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        same += a.model->params[i] == b.model->params[i];
    printf("two DP runs with the same seed: %zu of %zu parameters equal\n", same, n);
    assert_true(same < n / 100);
    assert_non_null(strstr(a.metrics, "\"dp_noise\":2,"));
    assert_non_null(strstr(a.metrics, "\"dp_clip\":0.5,"));
    free(d);
    simrun_free(&plain);
    simrun_free(&a);
    simrun_free(&b);
}

/* Honest clients clip (their log says so; the norms before clipping exceed C), a client that
 * scales its update after clipping is refused with the norm in the reason. Secure aggregation
 * off so that the coordinator sees each update. */
static void test_clipping(void **state) {
    (void)state;
    const char *args[] = {
        "--data",     GERMAN, "--label",  "bad", "--clients",         "4", "--rounds",  "3",
        "--layers",   "16",   "--secagg", "off", "--min-fit-clients", "3", "--dp-clip", "0.01",
        "--dp-noise", "0.5",  NULL};
    sim_out o = simrun(g_fedc, args, "client-2/misbehave:upd-scale@*", 300);
    if (o.status != 0)
        fprintf(stderr, "%s\n%s\n", o.err, o.coord_log ? o.coord_log : "");
    assert_int_equal(o.status, 0);
    int refused = simrun_count(o.coord_log, "client-2: fit_res refused: update norm");
    printf("client-2 refused in %d of 3 rounds\n", refused);
    assert_int_equal(refused, 3);
    assert_non_null(strstr(o.coord_log, "exceeds the clip norm 0.01 (--dp-clip)"));
    assert_int_equal(simrun_count(o.metrics, "\"participants\":3,"), 3);
    simrun_free(&o);
}

/* The budget: one round at z 0.8 with every client sampled costs more than 1.5, so
 * --target-epsilon 1.5 refuses to start; at 20 the run stops before the round that would exceed
 * it, and the last epsilon reported is what `fedc privacy` computes for those rounds. */
static void test_budget(void **state) {
    (void)state;
    const char *refuse[] = {"--data",     GERMAN, "--label",          "bad", "--clients", "3",
                            "--rounds",   "5",    "--layers",         "8",   "--dp-clip", "1",
                            "--dp-noise", "0.8",  "--target-epsilon", "1.5", NULL};
    sim_out r = simrun(g_fedc, refuse, NULL, 120);
    printf("refused: status %d, coordinator log: %s\n", r.status, r.coord_log ? r.coord_log : "");
    assert_int_not_equal(r.status, 0);
    assert_non_null(r.coord_log);
    assert_non_null(strstr(r.coord_log, "refusing to start"));
    simrun_free(&r);

    const char *args[] = {"--data",     GERMAN, "--label",          "bad", "--clients", "3",
                          "--rounds",   "30",   "--layers",         "8",   "--dp-clip", "1",
                          "--dp-noise", "0.8",  "--target-epsilon", "20",  NULL};
    sim_out o = simrun(g_fedc, args, NULL, 300);
    if (o.status != 0)
        fprintf(stderr, "%s\n%s\n", o.err, o.coord_log ? o.coord_log : "");
    assert_int_equal(o.status, 0);
    int rounds = simrun_count(o.metrics, "\"round\":");
    printf("stopped after %d of 30 rounds\n", rounds);
    assert_true(rounds >= 2 && rounds < 30);
    assert_non_null(strstr(o.coord_log, "privacy budget: round"));
    char *last = simrun_nth_line(o.metrics, rounds - 1);
    assert_non_null(last);
    double eps = simrun_line_num(last, "dp_epsilon");
    /* The accountant from the command line, for the same rounds, and one round more. */
    double want = simrun_privacy(g_fedc, 1.0, 0.8, rounds);
    double next = simrun_privacy(g_fedc, 1.0, 0.8, rounds + 1);
    printf("last round's epsilon %.4f (fedc privacy: %.4f; one more round: %.4f > 20)\n", eps, want,
           next);
    assert_true(fabs(eps - want) <= 1e-3 * want + 1e-3);
    assert_true(eps <= 20.0);
    assert_true(next > 20.0);
    /* epsilon grows every round */
    double prev = 0;
    for (int i = 0; i < rounds; i++) {
        char *l = simrun_nth_line(o.metrics, i);
        double x = simrun_line_num(l, "dp_epsilon");
        assert_true(x > prev);
        prev = x;
        free(l);
    }
    free(last);
    simrun_free(&o);
}

/* Every sampled round is released and charged, none redrawn: 4 clients sampled at q = 0.5 with
 * at least 3 needed (the secure-aggregation floor, above --min-fit-clients 2) leaves a round with
 * 0, 1 or 2 client(s) (probability 11/16) to release noise alone. Over 30 rounds (the chance that
 * none is noise-only is below 1e-15) the metrics hold exactly
 * 30 lines, none retried, noise-only ones among them with their sample size, and the epsilon
 * after them is `fedc privacy` at q 0.5, z 1 for 30 steps. Secure aggregation on. */
static void test_noise_only_rounds(void **state) {
    (void)state;
    const char *args[] = {"--data",
                          GERMAN,
                          "--label",
                          "bad",
                          "--clients",
                          "4",
                          "--rounds",
                          "30",
                          "--layers",
                          "8",
                          "--fraction-fit",
                          "0.5",
                          "--min-fit-clients",
                          "2",
                          "--dp-clip",
                          "1",
                          "--dp-noise",
                          "1",
                          NULL};
    sim_out o = simrun(g_fedc, args, NULL, 300);
    if (o.status != 0)
        fprintf(stderr, "%s\n%s\n", o.err, o.coord_log ? o.coord_log : "");
    assert_int_equal(o.status, 0);
    int rounds = simrun_count(o.metrics, "\"round\":");
    int noise = simrun_count(o.metrics, "\"dp_noise_only\":true");
    int real = simrun_count(o.metrics, "\"dp_noise_only\":false");
    printf("30 rounds: %d metrics lines, %d noise-only, %d aggregated\n", rounds, noise, real);
    assert_int_equal(rounds, 30);
    assert_int_equal(noise + real, 30);
    assert_true(noise >= 1);
    assert_int_equal(simrun_count(o.metrics, "\"retries\":0,"), 30);
    assert_null(strstr(o.coord_log, "retrying"));
    assert_non_null(strstr(o.coord_log, "releases a noise-only update"));
    for (int i = 0; i < 30; i++) {
        char *l = simrun_nth_line(o.metrics, i);
        assert_non_null(l);
        double k = simrun_line_num(l, "dp_sampled");
        assert_true(k >= 0 && k <= 4);
        assert_true(simrun_line_num(l, "dp_rounds_charged") == i + 1.0);
        if (strstr(l, "\"dp_noise_only\":true")) {
            /* The sample was too small (nothing failed here): below the floor of 3, none took
             * part. */
            assert_true(k < 3);
            assert_true(simrun_line_num(l, "participants") == 0.0);
        } else {
            assert_true(k >= 3);
        }
        free(l);
    }
    char *last = simrun_nth_line(o.metrics, 29);
    assert_non_null(last);
    double eps = simrun_line_num(last, "dp_epsilon");
    double want = simrun_privacy(g_fedc, 0.5, 1.0, 30);
    printf("epsilon after 30 rounds %.4f, fedc privacy --q 0.5 --sigma 1 --steps 30: %.4f\n", eps,
           want);
    assert_true(fabs(eps - want) <= 1e-3 * want);
    free(last);
    simrun_free(&o);

    /* A round whose secure sum is rejected (a client scaled its update past the clip norm) is
     * released as noise too, not retried. */
    const char *one[] = {"--data",   GERMAN, "--label",   "bad", "--clients",  "3", "--rounds", "2",
                         "--layers", "8",    "--dp-clip", "1",   "--dp-noise", "1", NULL};
    o = simrun(g_fedc, one, "client-2/misbehave:upd-scale@1", 300);
    if (o.status != 0)
        fprintf(stderr, "%s\n%s\n", o.err, o.coord_log ? o.coord_log : "");
    assert_int_equal(o.status, 0);
    assert_non_null(strstr(o.coord_log, "round 1: the securely summed mean update has norm"));
    assert_non_null(strstr(o.coord_log, "round 1: no usable secure sum; client-level DP releases"));
    char *l1 = simrun_nth_line(o.metrics, 0), *l2 = simrun_nth_line(o.metrics, 1);
    assert_non_null(l1);
    assert_non_null(l2);
    assert_non_null(strstr(l1, "\"retries\":0,"));
    assert_non_null(strstr(l1, "\"dp_noise_only\":true"));
    assert_non_null(strstr(l2, "\"dp_noise_only\":false"));
    assert_true(simrun_line_num(l2, "dp_rounds_charged") == 2.0);
    free(l1);
    free(l2);
    simrun_free(&o);
}

/* Adaptive clipping: starting far above every update's norm, C shrinks each round (all clients
 * report "unclipped", b = 1 > gamma = 0.5) by about exp(-0.2 x 0.5) up to the count's noise. */
static void test_adaptive(void **state) {
    (void)state;
    const char *args[] = {"--data",     GERMAN, "--label",       "bad",
                          "--clients",  "3",    "--rounds",      "6",
                          "--layers",   "8",    "--dp-clip",     "50",
                          "--dp-noise", "0.05", "--dp-adaptive", "--dp-count-noise",
                          "0.05",       NULL};
    sim_out o = simrun(g_fedc, args, NULL, 300);
    if (o.status != 0)
        fprintf(stderr, "%s\n%s\n", o.err, o.coord_log ? o.coord_log : "");
    assert_int_equal(o.status, 0);
    double prev = 50.0;
    for (int i = 0; i < 6; i++) {
        char *l = simrun_nth_line(o.metrics, i);
        assert_non_null(l);
        double used = simrun_line_num(l, "dp_clip"), next = simrun_line_num(l, "dp_clip_next");
        double share = simrun_line_num(l, "dp_unclipped_share");
        printf("round %d: clip %.4f -> %.4f, unclipped share %.3f\n", i + 1, used, next, share);
        assert_true(fabs(used - prev) <= 1e-3 * prev);
        assert_true(share > 0.8);
        assert_true(next < used * 0.97 && next > used * 0.85);
        prev = next;
        free(l);
    }
    simrun_free(&o);
}

/* Rules that need each update cannot run under secure aggregation: the coordinator says why. */
static void test_refusals(void **state) {
    (void)state;
    const char *args[] = {"--data",   GERMAN, "--label",      "bad",    "--clients", "3",
                          "--rounds", "1",    "--aggregator", "median", NULL};
    sim_out o = simrun(g_fedc, args, NULL, 120);
    assert_int_not_equal(o.status, 0);
    assert_non_null(o.coord_log);
    printf("%s", o.coord_log);
    assert_non_null(strstr(o.coord_log, "--aggregator median needs every client's update"));
    assert_non_null(strstr(o.coord_log, "--secagg off"));
    simrun_free(&o);
}

/* The client-level case: hundreds of clients (300 processes, the same code path as a real
 * deployment: CurveZMQ and secure aggregation) on the Taiwan data split finely, 20% sampled per
 * round, z = 1, C = 0.5: epsilon and validation ROC-AUC every round, the epsilon matching
 * `fedc privacy` at the sampling rate charged, and the test ROC-AUC next to the same run without
 * DP. */
static void test_many_clients(void **state) {
    (void)state;
    const char *base[] = {"--data",
                          TAIWAN,
                          "--label",
                          "default_payment_next_month",
                          "--drop",
                          "ID",
                          "--clients",
                          "300",
                          "--rounds",
                          "30",
                          "--local-epochs",
                          "3",
                          "--optimizer",
                          "sgd",
                          "--lr",
                          "0.1",
                          "--layers",
                          "32,16",
                          "--fraction-fit",
                          "0.2",
                          "--min-fit-clients",
                          "30",
                          NULL};
    sim_out plain = simrun(g_fedc, base, NULL, 1200);
    assert_int_equal(plain.status, 0);
    const char *extra[] = {"--dp-clip", "0.5", "--dp-noise", "1", NULL};
    const char *dp[64];
    concat(dp, base, extra);
    sim_out o = simrun(g_fedc, dp, NULL, 1200);
    if (o.status != 0)
        fprintf(stderr, "%s\n", o.err);
    assert_int_equal(o.status, 0);
    printf("round  participants  epsilon  val_roc_auc\n");
    double prev = 0, q = 0, eps = 0;
    for (int i = 0; i < 30; i++) {
        char *l = simrun_nth_line(o.metrics, i);
        assert_non_null(l);
        eps = simrun_line_num(l, "dp_epsilon");
        q = simrun_line_num(l, "dp_q");
        printf("%5d  %12.0f  %7.3f  %11.4f\n", i + 1, simrun_line_num(l, "participants"), eps,
               simrun_line_num(l, "val_roc_auc"));
        assert_true(eps > prev);
        prev = eps;
        free(l);
    }
    double want = simrun_privacy(g_fedc, q, 1.0, 30);
    double auc = simrun_json_num(o.summary, "federated", "roc_auc");
    double auc0 = simrun_json_num(plain.summary, "federated", "roc_auc");
    printf("300 clients, q %.4f, z 1, C 0.5, 30 rounds: epsilon %.3f at delta 1e-5 (fedc privacy "
           "%.3f); test ROC-AUC %.4f with DP, %.4f without (%+.4f)\n",
           q, eps, want, auc, auc0, auc - auc0);
    assert_true(fabs(eps - want) <= 1e-3 * want + 1e-3);
    assert_true(fabs(q - 0.2) < 1e-6);
    assert_true(auc0 > 0.72);
    assert_true(auc > auc0 - 0.03);
    simrun_free(&plain);
    simrun_free(&o);
}

/* The last "DP-SGD epsilon X" a client logged (NaN if none). */
static double last_client_epsilon(const char *log) {
    double eps = NAN;
    for (const char *p = log ? strstr(log, ": DP-SGD epsilon ") : NULL; p;
         p = strstr(p + 1, ": DP-SGD epsilon "))
        eps = strtod(p + strlen(": DP-SGD epsilon "), NULL);
    return eps;
}

/* A client's own budget: at noise multiplier 1 the budget of 3 allows a few rounds; then every
 * client refuses to train, says why, and the coordinator cannot complete the run. */
static void test_client_budget(void **state) {
    (void)state;
    const char *args[] = {"--data",
                          GERMAN,
                          "--label",
                          "bad",
                          "--clients",
                          "3",
                          "--rounds",
                          "12",
                          "--layers",
                          "8",
                          "--dp-sgd-clip",
                          "1",
                          "--dp-sgd-noise",
                          "2",
                          "--dp-sgd-epsilon",
                          "3",
                          "--round-timeout",
                          "20",
                          NULL};
    sim_out o = simrun(g_fedc, args, NULL, 300);
    assert_non_null(o.client_log);
    int trained = simrun_count(o.client_log, ": DP-SGD epsilon ");
    double eps = last_client_epsilon(o.client_log);
    printf("client-1 trained %d round(s), epsilon %.3f; run status %d\n", trained, eps, o.status);
    assert_true(trained >= 1 && trained < 12);
    assert_int_equal(simrun_count(o.client_metrics, "\"dp_epsilon\":"), trained);
    assert_true(eps <= 3.0);
    assert_non_null(strstr(o.client_log, "privacy budget spent: round"));
    assert_non_null(strstr(o.coord_log, "privacy budget spent"));
    assert_int_not_equal(o.status, 0); /* nobody may train any more: the run cannot finish */
    simrun_free(&o);

    /* With --dp-state the count survives a restart: a first run spends the budget, a second run
     * with the same state files refuses to train from its first round. */
    char *dir = proc_mkdtemp("fedc-test-dpstate");
    assert_non_null(dir);
    const char *state_flag[] = {"--dp-sgd-state-dir", dir, NULL};
    const char *st[64];
    concat(st, args, state_flag);
    sim_out a = simrun(g_fedc, st, NULL, 300);
    assert_true(simrun_count(a.client_log, ": DP-SGD epsilon ") >= 1);
    char *file = proc_path(dir, "client-1.dpstate");
    char *saved = proc_read_file(file, NULL);
    assert_non_null(saved);
    printf("client-1's state file after the first run:\n%s", saved);
    assert_non_null(strstr(saved, "fedc-dp-state 1\nsteps "));
    sim_out b = simrun(g_fedc, st, NULL, 300);
    printf("second run: %d round(s) trained\n", simrun_count(b.client_log, ": DP-SGD epsilon "));
    assert_non_null(strstr(b.client_log, "DP-SGD step(s) spent already"));
    assert_int_equal(simrun_count(b.client_log, ": DP-SGD epsilon "), 0);
    assert_non_null(strstr(b.client_log, "privacy budget spent"));
    simrun_free(&a);
    simrun_free(&b);
    free(saved);
    free(file);
    proc_rmtree(dir);
    free(dir);
}

/* The DP-SGD target: Taiwan credit data over 5 clients, epsilon about 8 per client over
 * the run (the noise multiplier derived from --target-epsilon 8 for 30 rounds), federated test
 * ROC-AUC within 0.05 of the same federation without DP. */
static void test_dpsgd_taiwan(void **state) {
    (void)state;
    const char *base[] = {"--data",         TAIWAN, "--label",     "default_payment_next_month",
                          "--drop",         "ID",   "--clients",   "5",
                          "--rounds",       "30",   "--optimizer", "sgd",
                          "--lr",           "0.03", "--layers",    "64,32",
                          "--local-epochs", "1",    NULL};
    sim_out plain = simrun(g_fedc, base, NULL, 900);
    assert_int_equal(plain.status, 0);
    const char *extra[] = {"--dp-sgd-clip", "1", "--dp-sgd-epsilon", "8", NULL};
    const char *dp[64];
    concat(dp, base, extra);
    sim_out o = simrun(g_fedc, dp, NULL, 900);
    if (o.status != 0)
        fprintf(stderr, "%s\n", o.err);
    assert_int_equal(o.status, 0);
    double eps = last_client_epsilon(o.client_log);
    double auc = simrun_json_num(o.summary, "federated", "roc_auc");
    double auc0 = simrun_json_num(plain.summary, "federated", "roc_auc");
    printf("DP-SGD, 5 clients, 30 rounds: client-1's epsilon %.3f at delta 1e-5; test ROC-AUC "
           "%.4f with DP-SGD, %.4f without (%+.4f; target within 0.05)\n",
           eps, auc, auc0, auc - auc0);
    assert_int_equal(simrun_count(o.client_log, ": DP-SGD epsilon "), 30);
    /* The same figures, one line per round, in client-1's --metrics-json. */
    assert_int_equal(simrun_count(o.client_metrics, "\"dp_epsilon\":"), 30);
    char *l30 = simrun_nth_line(o.client_metrics, 29);
    assert_non_null(l30);
    assert_true(fabs(simrun_line_num(l30, "dp_epsilon") - eps) <= 1e-3);
    assert_true(simrun_line_num(l30, "dp_steps") == 2040.0);
    free(l30);
    assert_true(eps > 7.5 && eps <= 8.0 + 1e-3);
    assert_true(auc0 > 0.74);
    assert_true(auc >= auc0 - 0.05);
    simrun_free(&plain);
    simrun_free(&o);
}

/* build/cli/fedc -> build/coordinator/fedc-coordinator */
static void coordinator_path(char *out, size_t cap) {
    snprintf(out, cap, "%s", g_fedc);
    char *slash = strrchr(out, '/');
    assert_non_null(slash);
    *slash = 0;
    slash = strrchr(out, '/');
    assert_non_null(slash);
    snprintf(slash, cap - (size_t)(slash - out), "/coordinator/fedc-coordinator");
}

/* Flag combinations that would do nothing, or not what they say, are refused before anything
 * starts, naming the flags. */
static void test_flag_refusals(void **state) {
    (void)state;
    char coord[4096];
    coordinator_path(coord, sizeof coord);
    struct {
        const char *args[12];
        const char *needle;
    } cases[] = {
        {{"--aggregator", "krum", "--secagg", "off", NULL}, "needs more than 4 updates"},
        {{"--trim-beta", "0.1", "--secagg", "off", NULL}, "--trim-beta applies to"},
        {{"--krum-f", "2", "--aggregator", "median", "--secagg", "off", NULL}, "--krum-f applies"},
        {{"--dp-noise", "1", NULL}, "--dp-noise needs --dp-clip"},
        {{"--dp-delta", "1e-6", NULL}, "--dp-delta needs --dp-clip"},
        {{"--dp-clip", "1", NULL}, "--dp-clip needs --dp-noise"},
        {{"--dp-clip", "1", "--dp-noise", "1", "--dp-quantile", "0.3", NULL}, "--dp-adaptive only"},
        {{"--dp-clip", "1", "--dp-noise", "1", "--dp-adaptive", NULL},
         "set --dp-count-noise above"},
        {{"--dp-clip", "1", "--dp-noise", "1", "--fraction-fit", "0.2", NULL},
         "lower --min-fit-clients"},
        {{"--dp-clip", "1", "--dp-noise", "1", "--aggregator", "norm-bound", "--norm-bound", "1",
          NULL},
         "--dp-clip works with --aggregator mean"},
        {{"--dp-clip", "1", "--dp-noise", "1", "--update-norm-bound", "5", NULL},
         "under client-level DP the clip norm (--dp-clip) is the bound"},
        {{"--aggregator", "norm-bound", "--norm-bound", "1", "--update-norm-bound", "5", NULL},
         "with --aggregator norm-bound, --norm-bound is the bound"},
        {{"--update-norm-bound", "0", NULL}, "--update-norm-bound"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *argv[24] = {coord,        "--bind",        "tcp://127.0.0.1:1",
                                "--insecure", "--min-clients", "3"};
        int n = 6;
        for (int i = 0; cases[k].args[i]; i++)
            argv[n++] = cases[k].args[i];
        argv[n] = NULL;
        proc_result r;
        assert_int_equal(proc_run(&r, argv, NULL, 30), 0);
        if (r.status != 2 || !strstr(r.err, cases[k].needle))
            fprintf(stderr, "case %zu: status %d, stderr: %s\n", k, r.status, r.err);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, cases[k].needle));
        proc_result_release(&r);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/fedc [quality]\n", argv[0]);
        return 2;
    }
    g_fedc = argv[1];
    if (argc > 2 && strcmp(argv[2], "quality") == 0) {
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_dpsgd_taiwan),
                                           cmocka_unit_test(test_many_clients)};
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flag_refusals), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_noise_sd),      cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_budget),        cmocka_unit_test(test_adaptive),
        cmocka_unit_test(test_client_budget), cmocka_unit_test(test_noise_only_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
