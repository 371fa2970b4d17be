/* fedc demo: the flagship use on one machine. Synthesises card transactions of three banks
 * (fedc synth), makes keys, runs a coordinator and one client per bank on loopback with CurveZMQ
 * and secure aggregation (fedc sim's runner), and ends with the federated model against
 * centralised training on the pooled data and against each bank alone on the common test set,
 * written as a table (stdout, summary.json) and a self-contained report.html. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "sim.h"

#define CMD "demo"

/* Whether DIR/data holds what fedc synth made with these settings: its synth.json (written last,
 * and removed before synth runs again, so it never describes files of another run) says so and
 * every file is there. make demo run again then spends no time making the same data again. */
static int data_reusable(const char *data, int customers, int days, unsigned long long seed) {
    char p[3200];
    snprintf(p, sizeof p, "%s/synth.json", data);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    char head[1024];
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[n] = 0;
    char want[4][64];
    snprintf(want[0], sizeof want[0], "\"banks\": 3,");
    snprintf(want[1], sizeof want[1], "\"customers_per_bank\": %d,", customers);
    snprintf(want[2], sizeof want[2], "\"days\": %d,", days);
    snprintf(want[3], sizeof want[3], "\"seed\": %llu,", seed);
    for (int i = 0; i < 4; i++)
        if (!strstr(head, want[i]))
            return 0;
    const char *files[] = {"bank-a.csv", "bank-b.csv", "bank-c.csv", "test.csv"};
    for (int i = 0; i < 4; i++) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", data, files[i]);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
            return 0;
    }
    return 1;
}

static const fedc_prog_help g_help = {
    "usage: fedc demo [--out DIR] [options]",
    "Three banks that may not pool card transactions train one fraud model together:\n"
    "fedc synth makes their data (disjoint customers and terminals, different fraud\n"
    "scenario mixes, a common test set held out in time), then a coordinator and three\n"
    "clients run on loopback with CurveZMQ keys and secure aggregation, one line per\n"
    "round. The end: the federated model, centralised training on the pooled data and\n"
    "each bank alone on the test set (PR-AUC, ROC-AUC, recall at the alert budget), in\n"
    "DIR/summary.json and DIR/report.html (charts inline; it loads nothing). The banks'\n"
    "data stays in DIR/data/ and is reused by the next run with the same --customers,\n"
    "--days and --seed; the federation's model, keys and logs are in DIR/federation/.",
    NULL};

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
    char data[3100], cs[16], ds[16], ss[32];
    snprintf(data, sizeof data, "%s/data", out);
    snprintf(cs, sizeof cs, "%d", customers);
    snprintf(ds, sizeof ds, "%d", days);
    snprintf(ss, sizeof ss, "%llu", seed);
    int rc;
    if (data_reusable(data, customers, days, seed)) {
        printf("== fedc demo: 3 banks, %d customers each, %d days of card transactions: reusing "
               "%s/ (fedc synth made it with these settings and seed; remove it to make it "
               "again)\n",
               customers, days, data);
    } else {
        printf("== fedc demo: 3 banks, %d customers each, %d days of card transactions (fedc "
               "synth)\n",
               customers, days);
        fflush(stdout);
        char sj[3200];
        snprintf(sj, sizeof sj, "%s/synth.json", data);
        if (unlink(sj) != 0 && errno != ENOENT) {
            cli_error(CMD, "cannot remove %s: %s", sj, strerror(errno));
            return FEDC_EXIT_FAIL;
        }
        char *sargv[] = {"synth", "--banks", "3", "--customers", cs,   "--days",
                         ds,      "--seed",  ss,  "--out",       data, NULL};
        rc = cmd_synth(11, sargv);
        if (rc)
            return rc;
    }
    char files[3][3200], test[3200], work[3100], metrics[3100], summary[3100], report[3100];
    char *shards[4];
    for (int k = 0; k < 3; k++) {
        snprintf(files[k], sizeof files[k], "%s/bank-%c.csv", data, 'a' + k);
        shards[k] = files[k];
    }
    shards[3] = NULL;
    snprintf(test, sizeof test, "%s/test.csv", data);
    snprintf(work, sizeof work, "%s/federation", out);
    snprintf(metrics, sizeof metrics, "%s/rounds.jsonl", out);
    snprintf(summary, sizeof summary, "%s/summary.json", out);
    snprintf(report, sizeof report, "%s/report.html", out);
    sim_opts o;
    sim_defaults(&o);
    o.shard_files = shards;
    o.test_file = test;
    o.label = "TX_FRAUD";
    o.drop = "CUSTOMER_ID,TX_TIME_DAYS";
    o.rounds = rounds;
    o.local_epochs = 1;
    o.batch = 256;
    o.layers = "32,16";
    /* Adam: the demo weighs frauds by --pos-weight auto (about 150), and SGD's steps grow with
     * that weight (README "Defaults"); the README's table was measured with these settings. */
    o.optimizer = "adam";
    o.lr = "0.001";
    o.pos_weight = "auto";
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
            "(the federated model), %s/ (the banks' data)\n",
            report, summary, metrics, work, data);
    return rc;
}
