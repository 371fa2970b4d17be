/* fedc demo: the flagship use on one machine, from raw data. fedc synth --raw makes the raw card
 * transactions of three banks (their fraud scenarios only in a truth file), each bank computes
 * its window features with fedc features and one spec (demo_features.c, the test set's history
 * explained there), keys are made, a coordinator and one client per bank run on loopback with
 * CurveZMQ and secure aggregation (fedc sim's runner), and the end is the federated model against
 * centralised training on the pooled data and against each bank alone on the common test set,
 * written as a table (stdout, summary.json) and a self-contained report.html. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "demo.h"
#include "sim.h"

#define CMD "demo"

/* Whether DIR/data holds what fedc synth --raw made with these settings: its synth.json (written
 * last, and removed before synth runs again, so it never describes files of another run) says so
 * and every file is there. make demo run again then spends no time making the same data again.
 * On 1, test_from gets the first time of the common test period. */
static int data_reusable(const char *data, int customers, int days, unsigned long long seed,
                         char test_from[32]) {
    char p[3200];
    snprintf(p, sizeof p, "%s/synth.json", data);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *j = cJSON_Parse(text);
    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(j, "raw");
    const cJSON *tf = cJSON_GetObjectItemCaseSensitive(j, "test_from");
    const char *num[3] = {"banks", "customers_per_bank", "days"};
    const double want[3] = {3, customers, days};
    /* the seed as text: a double cannot tell every pair of 64-bit seeds apart */
    char seed_text[48];
    snprintf(seed_text, sizeof seed_text, "\"seed\": %llu,", seed);
    int ok = cJSON_IsTrue(raw) && cJSON_IsString(tf) && strlen(tf->valuestring) < 32 &&
             strstr(text, seed_text) != NULL;
    for (int i = 0; ok && i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, num[i]);
        ok = cJSON_IsNumber(v) && v->valuedouble == want[i];
    }
    if (ok)
        snprintf(test_from, 32, "%s", tf->valuestring);
    cJSON_Delete(j);
    const char *files[] = {"bank-a.csv", "bank-b.csv", "bank-c.csv", "truth.csv"};
    for (int i = 0; ok && i < 4; i++) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", data, files[i]);
        ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    }
    return ok;
}

static const fedc_prog_help g_help = {
    "usage: fedc demo [--out DIR] [options]",
    "Three banks that may not pool card transactions train one fraud model together,\n"
    "starting from raw data: fedc synth in raw mode makes their transactions (disjoint\n"
    "customers and terminals, different fraud scenario mixes, the scenarios only in a truth\n"
    "file); each bank computes its features with fedc features and one spec over all its\n"
    "days and keeps the rows before the common test period for training (its later rows,\n"
    "computed with its history, go to the common test set); then a coordinator and three\n"
    "clients run on loopback with CurveZMQ keys and secure aggregation, one line per round.\n"
    "The end: the federated model, centralised training on the pooled data and each bank\n"
    "alone on the test set (PR-AUC, ROC-AUC, recall at the alert budget), in\n"
    "DIR/summary.json and DIR/report.html (charts inline; it loads nothing). The raw data\n"
    "stays in DIR/data/, the feature files in DIR/features/; both are reused by the next\n"
    "run with the same --customers, --days and --seed; the federation's model, keys and\n"
    "logs are in DIR/federation/.",
    "The banks' spec (fedc features): the time column " DEMO_TIME_COL ", the calendar\n"
    "columns and the windows\n"
    "  " DEMO_WINDOW "\n"
    "Training drops " DEMO_DROP ";\n"
    "the clients train with SGD (lr 0.1, positive weight 1), README \"The demo\" says why."};

int cmd_demo(int argc, char **argv) {
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_DEMO, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
    const char *out = op.v[FEDC_O_OUT].text, *secagg = op.v[FEDC_O_SECAGG].text;
    int customers = (int)op.v[FEDC_O_CUSTOMERS].i, days = (int)op.v[FEDC_O_DAYS].i;
    int rounds = (int)op.v[FEDC_O_ROUNDS].i;
    unsigned long long seed = op.v[FEDC_O_SEED].u;
    double budget = op.v[FEDC_O_ALERT_BUDGET].r;
    if (strlen(out) > 3000) {
        cli_error(CMD, "--out: path too long");
        return FEDC_EXIT_USAGE;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        cli_error(CMD, "--out: cannot create %s: %s", out, strerror(errno));
        return FEDC_EXIT_USAGE;
    }
    char data[3100], feat[3100], cs[16], ds[16], ss[32], test_from[32] = "";
    snprintf(data, sizeof data, "%s/data", out);
    snprintf(feat, sizeof feat, "%s/features", out);
    snprintf(cs, sizeof cs, "%d", customers);
    snprintf(ds, sizeof ds, "%d", days);
    snprintf(ss, sizeof ss, "%llu", seed);
    int rc;
    if (data_reusable(data, customers, days, seed, test_from)) {
        printf("== fedc demo: 3 banks, %d customers each, %d days of raw card transactions: "
               "reusing %s/ (fedc synth --raw made it with these settings and seed; remove it to "
               "make it again)\n",
               customers, days, data);
    } else {
        printf("== fedc demo: 3 banks, %d customers each, %d days of raw card transactions "
               "(fedc synth --raw)\n",
               customers, days);
        fflush(stdout);
        char sj[3200], fj[3200];
        snprintf(sj, sizeof sj, "%s/synth.json", data);
        snprintf(fj, sizeof fj, "%s/features.json", feat);
        if ((unlink(sj) != 0 && errno != ENOENT) || (unlink(fj) != 0 && errno != ENOENT)) {
            cli_error(CMD, "cannot remove %s or %s: %s", sj, fj, strerror(errno));
            return FEDC_EXIT_FAIL;
        }
        char *sargv[] = {"synth",  "--banks", "3",     "--customers", cs,      "--days", ds,
                         "--seed", ss,        "--out", data,          "--raw", NULL};
        rc = cmd_synth(12, sargv);
        if (rc)
            return rc;
        if (!data_reusable(data, customers, days, seed, test_from)) {
            cli_error(CMD, "%s/synth.json does not describe what fedc synth just made", data);
            return FEDC_EXIT_FAIL;
        }
    }
    /* The features depend on the spec and the data; the marker says which, written last. */
    char marker[1024];
    snprintf(marker, sizeof marker,
             "{\"time\": \"%s\", \"calendar\": true, \"window\": \"%s\", \"test_from\": "
             "\"%s\", \"customers\": %d, \"days\": %d, \"seed\": %llu}\n",
             DEMO_TIME_COL, DEMO_WINDOW, test_from, customers, days, seed);
    if (demo_features_reusable(feat, marker)) {
        printf("\n== features: reusing %s/ (made from this data with this spec)\n", feat);
    } else {
        printf("\n== features: each bank runs fedc features on its own raw file, all days, then "
               "keeps the rows before %s for training\n   --time %s --calendar --window '%s'\n",
               test_from, DEMO_TIME_COL, DEMO_WINDOW);
        rc = demo_make_features(data, feat, 3, test_from, marker);
        if (rc)
            return rc;
    }
    char files[3][3200], test[3200], work[3100], metrics[3100], summary[3100], report[3100];
    char *shards[4];
    for (int k = 0; k < 3; k++) {
        snprintf(files[k], sizeof files[k], "%s/bank-%c.csv", feat, 'a' + k);
        shards[k] = files[k];
    }
    shards[3] = NULL;
    snprintf(test, sizeof test, "%s/test.csv", feat);
    snprintf(work, sizeof work, "%s/federation", out);
    snprintf(metrics, sizeof metrics, "%s/rounds.jsonl", out);
    snprintf(summary, sizeof summary, "%s/summary.json", out);
    snprintf(report, sizeof report, "%s/report.html", out);
    sim_opts o;
    sim_defaults(&o);
    o.shard_files = shards;
    o.test_file = test;
    o.label = "TX_FRAUD";
    o.drop = DEMO_DROP;
    o.rounds = rounds;
    /* Plain SGD on the clients: with Adam, restarted every round, each bank's first steps have
     * a fixed size whatever its gradient, so banks that never see a fraud scenario pull the
     * average as hard as the one that does (README "The demo" lists what was tried). */
    o.local_epochs = 1;
    o.batch = 256;
    o.layers = "32,16";
    o.optimizer = "sgd";
    o.lr = "0.1";
    o.pos_weight = "1";
    o.seed = seed;
    o.secagg = secagg;
    o.work_dir = work;
    o.metrics = metrics;
    o.summary = summary;
    o.report = report;
    o.alert_budget = budget;
    o.title = "fedc demo: three banks, one fraud model";
    printf("\n== federation: fedc-coordinator and bank-a, bank-b, bank-c on loopback (CurveZMQ, "
           "secure aggregation %s)\n",
           secagg);
    fflush(stdout);
    rc = sim_run(&o);
    if (rc == 0)
        printf(
            "\ndemo outputs: %s (charts), %s (the table as JSON), %s (per round), %s/global.fedc "
            "(the federated model), %s/ (the banks' raw data), %s/ (their features)\n",
            report, summary, metrics, work, data, feat);
    return rc;
}
