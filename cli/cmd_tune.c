/* fedc tune: a small hyperparameter search over federations of the user's own shards.
 *
 * Draws --trials configurations (tune_search.c: optimiser, learning rate, local epochs, batch,
 * hidden layers; trial 1 is the coordinator's defaults) and runs them with successive halving:
 * every trial is a federation (fedc sim's runner, cli/sim.h, with the shards as the clients and
 * no test set) of the first rung's rounds, the best 1/eta go on with eta times the rounds, up to
 * --rounds. A trial is judged only by the federated validation metric that the coordinator writes
 * in its metrics file (each client's --val-fraction part; the value at the best round, as
 * --select-metric and --best-model-out choose it). fedc tune takes no test set and opens no file
 * but the shards, its work directory and --out.
 *
 * Each run is a child process (its own process group: the coordinator and clients it starts
 * share it, so that one kill stops them all) with its own loopback port and work directory; at
 * most --jobs run at once, each federation's processes single-threaded. --budget bounds the wall
 * time: when it runs out nothing more starts, the running federations are killed, and the best
 * result so far is reported. Left out: resuming a promoted trial from its checkpoint (it runs
 * again from the start, so every result depends on its configuration and seed alone), and options
 * beyond the search space (aggregator, DP), which the written file leaves to the federation. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fedc/clock.h"
#include "fedc/data.h"
#include "fedc/keys.h"
#include "fedc/sa_proto.h"
#include "sim.h"
#include "tune.h"

#define CMD "tune"

static const fedc_prog_help g_help = {
    "usage: fedc tune --shards A.csv,B.csv,C.csv --label COLUMN --out best.ini [options]",
    "Searches for a good federated configuration: draws --trials settings of optimiser\n"
    "(Adam, SGD with momentum), learning rate (log-uniform), local epochs, batch and hidden\n"
    "layers (trial 1: the coordinator's defaults), runs each as a federation of the shards on\n"
    "this machine, and keeps the best 1/--eta at each rung of successive halving (rungs of\n"
    "--rounds/eta^2, --rounds/eta and --rounds rounds). Trials are judged only on the\n"
    "federated validation metric (--metric, at its best round; each client keeps --val-fraction\n"
    "of its rows for it): no test set is read. Prints the trials ranked and writes the best\n"
    "as a config file for fedc-coordinator --config. Secure aggregation is off by default\n"
    "here: every federation runs on this machine, and without its secret rounding two runs\n"
    "of one configuration (and the same --seed) give the same result.",
    "Exit status: 0 when a configuration was written (also when --budget cut the search: it\n"
    "says so), 1 when no trial finished, 2 for bad options or shards."};

/* One federation in progress. */
typedef struct run_slot {
    pid_t pid; /* 0: free */
    int trial, rung, port;
    double t0;
    char dir[PATH_MAX];
} run_slot;

typedef struct tune_ctx {
    char **shards;
    int n_shards;
    const char *label, *drop, *val_fraction, *pos_weight, *secagg;
    unsigned long long seed;
    tune_metric metric;
    int rounds[TUNE_MAX_RUNGS], n_rungs, eta, jobs, quiet;
    double deadline; /* fedc_clock_s() time when the budget runs out (INFINITY: none) */
    char root[1024]; /* the work directory, below $TMPDIR */
    tune_trial *trials;
    int n_trials;
    run_slot *slots;
    int cut, stopped; /* the budget ran out; a signal asked us to stop */
} tune_ctx;

/* Set by SIGINT and SIGTERM: the search stops, and its federations with it. */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* ---- the shards -------------------------------------------------------------------------- */

/* Loads every shard once before any trial: an unreadable file, a missing label or drop column,
 * shards whose columns differ, two shards that would give clients the same name, or labels that
 * the metric cannot judge are bad input (exit 2) here rather than failed trials. */
static int check_shards(const tune_ctx *c, char **drop, int n_drop) {
    fedc_dataset *first = NULL;
    char **names = NULL;
    int rc = FEDC_EXIT_USAGE, pos = 0, neg = 0, other = 0;
    for (int i = 0; i < c->n_shards; i++) {
        fedc_diag d;
        fedc_dataset *ds = NULL;
        if (fedc_csv_load(&ds, c->shards[i], c->label, (const char *const *)drop, n_drop, &d)) {
            cli_error(CMD, "%s", d.msg);
            goto out;
        }
        int same = !first || (first->n_features == ds->n_features);
        for (int j = 0; same && first && j < ds->n_features; j++)
            same = strcmp(first->feature_names[j], ds->feature_names[j]) == 0;
        if (!same) {
            cli_error(CMD, "%s: its columns differ from %s's (every client needs the same)",
                      c->shards[i], c->shards[0]);
            fedc_dataset_destroy(&ds);
            goto out;
        }
        for (int r = 0; r < ds->n_rows; r++) {
            pos += ds->y[r] == 1.0f;
            neg += ds->y[r] == 0.0f;
            other += ds->y[r] != 1.0f && ds->y[r] != 0.0f;
        }
        if (!first)
            first = ds;
        else
            fedc_dataset_destroy(&ds);
    }
    /* sim names each client after its file (sim_names.c): two files must not give one name. */
    names = calloc((size_t)c->n_shards + 1, sizeof *names);
    if (!names) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    if (sim_shard_names(CMD, c->shards, c->n_shards, names))
        goto out;
    if (c->metric.higher && (other || !pos || !neg)) {
        cli_error(CMD,
                  "--metric %s needs binary 0/1 labels with both classes; column '%s' has %d "
                  "rows of 1, %d of 0 and %d of other values (use --metric loss)",
                  c->metric.name, c->label, pos, neg, other);
        goto out;
    }
    rc = 0;
out:
    cli_free_list(names);
    fedc_dataset_destroy(&first);
    return rc;
}

/* ---- one run ------------------------------------------------------------------------------ */

/* Starts trial t at rung r in slot s: a child process in a process group of its own that runs
 * the federation (sim_run) with its output in DIR/trial.log. Returns 0, or -1 after a message. */
static int launch(tune_ctx *c, run_slot *s, int t, int r) {
    const tune_trial *tr = &c->trials[t];
    snprintf(s->dir, sizeof s->dir, "%s/trial%d-rung%d", c->root, tr->id, r + 1);
    if (mkdir(s->dir, 0700) != 0) {
        cli_error(CMD, "cannot create %s: %s", s->dir, strerror(errno));
        return -1;
    }
    /* a port no running federation of ours has */
    int port = -1;
    for (int tries = 0; tries < 50 && port < 0; tries++) {
        port = sim_free_port();
        for (int k = 0; port > 0 && k < c->jobs; k++)
            if (c->slots[k].pid > 0 && c->slots[k].port == port)
                port = -1;
    }
    if (port < 0) {
        cli_error(CMD, "cannot find a free TCP port on 127.0.0.1");
        return -1;
    }
    char metrics[PATH_MAX + 16], log[PATH_MAX + 16], rounds[16], batch[16];
    snprintf(metrics, sizeof metrics, "%s/rounds.jsonl", s->dir);
    snprintf(log, sizeof log, "%s/trial.log", s->dir);
    snprintf(rounds, sizeof rounds, "%d", c->rounds[r]);
    snprintf(batch, sizeof batch, "%d", tr->batch);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cli_error(CMD, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(FEDC_EXIT_FAIL);
        close(fd);
        sim_opts o;
        sim_defaults(&o);
        o.shard_files = c->shards;
        o.test_file = NULL; /* the federation only: no test set */
        o.label = c->label;
        o.drop = c->drop;
        o.work_dir = s->dir;
        o.metrics = metrics;
        o.quiet = 1;
        o.threads = 1;
        o.baselines = 0;
        o.port = port;
        o.secagg = c->secagg;
        o.seed = c->seed;
        o.rounds = c->rounds[r];
        o.local_epochs = tr->local_epochs;
        o.batch = tr->batch;
        o.layers = tr->layers;
        o.optimizer = tr->opt;
        o.lr = tr->lr;
        o.val_fraction = c->val_fraction;
        o.pos_weight = c->pos_weight;
        o.coord_extra[o.n_coord_extra++] = "--select-metric";
        o.coord_extra[o.n_coord_extra++] = c->metric.name;
        int rc = sim_run(&o);
        fflush(NULL);
        _exit(rc);
    }
    setpgid(pid, pid); /* also here: the child may not have run yet when we kill its group */
    s->pid = pid;
    s->trial = t;
    s->rung = r;
    s->port = port;
    s->t0 = fedc_clock_s();
    return 0;
}

/* The last lines of a run's log on stderr, after a failure. */
static void print_log_tail(const char *dir) {
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/trial.log", dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return;
    char lines[12][512];
    int n = 0;
    while (fgets(lines[n % 12], sizeof lines[0], f))
        n++;
    fclose(f);
    for (int i = n > 12 ? n - 12 : 0; i < n; i++)
        fprintf(stderr, "  | %s", lines[i % 12]);
}

/* Reads the run's result from the coordinator's metrics file: the last line must be the last
 * round, judged by our metric. Returns 0 with *value and *best_round, or -1 with why. */
static int read_result(const tune_ctx *c, const run_slot *s, double *value, int *best_round,
                       char *why, size_t cap) {
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/rounds.jsonl", s->dir);
    FILE *f = fopen(p, "r");
    if (!f) {
        snprintf(why, cap, "no metrics file (%s)", strerror(errno));
        return -1;
    }
    char *line = NULL, *last = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        free(last);
        last = strdup(line);
    }
    free(line);
    fclose(f);
    cJSON *j = last ? cJSON_Parse(last) : NULL;
    free(last);
    int rc = -1;
    const cJSON *round = cJSON_GetObjectItemCaseSensitive(j, "round");
    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(j, "best_metric");
    const cJSON *bv = cJSON_GetObjectItemCaseSensitive(j, "best_value");
    const cJSON *br = cJSON_GetObjectItemCaseSensitive(j, "best_round");
    if (!j)
        snprintf(why, cap, "its metrics file has no complete line");
    else if (!cJSON_IsNumber(round) || (int)round->valuedouble != c->rounds[s->rung])
        snprintf(why, cap, "its metrics file ends before round %d", c->rounds[s->rung]);
    else if (!cJSON_IsString(bm) || strcmp(bm->valuestring, c->metric.name) != 0)
        snprintf(why, cap, "the coordinator judged rounds by another metric");
    else if (!cJSON_IsNumber(bv) || !isfinite(bv->valuedouble) || !cJSON_IsNumber(br))
        snprintf(why, cap, "no validation %s (too few validation rows of a class?)",
                 c->metric.name);
    else {
        *value = bv->valuedouble;
        *best_round = (int)br->valuedouble;
        rc = 0;
    }
    cJSON_Delete(j);
    return rc;
}

/* Records how slot s's run ended (status from waitpid) and frees the slot. */
static void finish(tune_ctx *c, run_slot *s, int status) {
    tune_trial *t = &c->trials[s->trial];
    int r = s->rung;
    t->seconds[r] = fedc_clock_s() - s->t0;
    char why[256] = "";
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
        read_result(c, s, &t->value[r], &t->best_round[r], why, sizeof why) == 0) {
        t->state[r] = TUNE_OK;
        if (!c->quiet)
            printf("  trial %d (%s lr %s, %d local epoch%s, batch %d, layers %s): %s %.4f at "
                   "round %d of %d, %.1f s\n",
                   t->id, t->opt, t->lr, t->local_epochs, t->local_epochs == 1 ? "" : "s", t->batch,
                   t->layers, c->metric.name, t->value[r], t->best_round[r], c->rounds[r],
                   t->seconds[r]);
    } else {
        t->state[r] = TUNE_FAILED;
        if (!why[0])
            snprintf(why, sizeof why, "the federation failed (%s %d)",
                     WIFEXITED(status) ? "exit status" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        fprintf(stderr, "fedc tune: trial %d at %d rounds: %s; the end of its log:\n", t->id,
                c->rounds[r], why);
        print_log_tail(s->dir);
    }
    s->pid = 0;
}

/* Kills every running federation (its whole process group) and reaps the runs. */
static void kill_all(tune_ctx *c, tune_state as) {
    for (int k = 0; k < c->jobs; k++) {
        run_slot *s = &c->slots[k];
        if (s->pid <= 0)
            continue;
        kill(-s->pid, SIGKILL);
        kill(s->pid, SIGKILL);
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
        }
        tune_trial *t = &c->trials[s->trial];
        t->state[s->rung] = as;
        t->seconds[s->rung] = fedc_clock_s() - s->t0;
        s->pid = 0;
    }
}

/* Runs the trials ids[0..n) at rung r, at most --jobs at once. Returns 0 when all ran (each
 * finished or failed), 1 when the budget or a signal stopped the rung, -1 on an error of ours. */
static int run_rung(tune_ctx *c, const int *ids, int n, int r) {
    int next = 0, running = 0;
    for (;;) {
        if (g_stop && !c->stopped) {
            c->stopped = 1;
            kill_all(c, TUNE_CUT);
            return 1;
        }
        if (fedc_clock_s() >= c->deadline) {
            c->cut = 1;
            kill_all(c, TUNE_CUT);
            return 1;
        }
        for (int k = 0; k < c->jobs && next < n; k++) {
            if (c->slots[k].pid > 0)
                continue;
            if (launch(c, &c->slots[k], ids[next], r)) {
                kill_all(c, TUNE_CUT);
                return -1;
            }
            next++;
            running++;
        }
        if (running == 0 && next == n)
            return 0;
        int status;
        pid_t w = waitpid(-1, &status, WNOHANG);
        if (w > 0) {
            for (int k = 0; k < c->jobs; k++)
                if (c->slots[k].pid == w) {
                    finish(c, &c->slots[k], status);
                    running--;
                }
            continue;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ---- the search --------------------------------------------------------------------------- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(p) : unlink(p)) != 0)
        fprintf(stderr, "fedc tune: cannot remove %s: %s\n", p, strerror(errno));
    return 0;
}

/* The header comment of the config file: how the search went (the clients by name, as sim
 * names them after their files). */
static void describe(char *out, size_t cap, const tune_ctx *c, int n_ok) {
    size_t n = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (n < cap)                                                                               \
            n += (size_t)snprintf(out + n, cap - n, __VA_ARGS__);                                  \
    } while (0)
    ADD("searched %d trials (seed %llu), label %s, %d clients:", c->n_trials, c->seed, c->label,
        c->n_shards);
    for (int i = 0; i < c->n_shards; i++) {
        char nm[FEDC_KEY_NAME_MAX + 1];
        sim_client_name(nm, sizeof nm, c->shards[i]);
        ADD("%s%s", i ? ", " : " ", nm);
    }
    ADD("; rungs of");
    for (int r = 0; r < c->n_rungs; r++)
        ADD("%s%d", r ? ", " : " ", c->rounds[r]);
    ADD(" rounds, eta %d, secure aggregation %s; %d runs finished", c->eta, c->secagg, n_ok);
    if (c->cut)
        ADD("\nthe --budget ran out: the search was cut short");
#undef ADD
}

static int search(tune_ctx *c, const char *out_path) {
    int rc = FEDC_EXIT_FAIL;
    int *ids = malloc(sizeof *ids * (size_t)c->n_trials);
    if (!ids) {
        cli_error(CMD, "out of memory");
        return FEDC_EXIT_FAIL;
    }
    int n = c->n_trials;
    for (int i = 0; i < n; i++)
        ids[i] = i;
    double t0 = fedc_clock_s();
    for (int r = 0; r < c->n_rungs; r++) {
        if (r > 0) {
            /* the best 1/eta of the trials that ran the rung before; failed ones never go on */
            tune_sort_rung(ids, n, c->trials, r - 1, c->metric.higher);
            int keep = tune_keep(n, c->eta), k = 0;
            while (k < keep && c->trials[ids[k]].state[r - 1] == TUNE_OK)
                k++;
            n = k;
            if (n == 0)
                break;
        }
        if (!c->quiet)
            printf("fedc tune: rung %d of %d, %d trial%s of %d rounds (%d at once)\n", r + 1,
                   c->n_rungs, n, n == 1 ? "" : "s", c->rounds[r], c->jobs);
        int st = run_rung(c, ids, n, r);
        if (st < 0)
            goto out;
        if (st > 0)
            break;
    }
    for (int i = 0; i < c->n_trials; i++)
        ids[i] = i;
    tune_rank(ids, c->n_trials, c->trials, c->metric.higher);
    int n_ok = 0;
    for (int i = 0; i < c->n_trials; i++)
        for (int r = 0; r < c->n_rungs; r++)
            n_ok += c->trials[i].state[r] == TUNE_OK;
    printf("\n");
    tune_print_table(stdout, c->trials, ids, c->n_trials, c->rounds, c->n_rungs, &c->metric);
    double secs = fedc_clock_s() - t0;
    if (c->cut)
        printf("\nthe budget ran out after %.1f s: the search was cut short (%d runs finished); "
               "the best so far is reported\n",
               secs, n_ok);
    if (c->stopped) {
        cli_error(CMD, "stopped by a signal after %.1f s; nothing written", secs);
        goto out;
    }
    int best_rung;
    const tune_trial *best = &c->trials[ids[0]];
    double v = tune_result(best, &best_rung);
    if (best_rung < 0) {
        cli_error(CMD, "no trial finished%s; nothing written",
                  c->cut ? " within the --budget" : " (see the logs above)");
        goto out;
    }
    char header[2048];
    describe(header, sizeof header, c, n_ok);
    if (tune_write_config(out_path, best, c->rounds, &c->metric, c->seed, c->val_fraction,
                          c->pos_weight, header))
        goto out;
    printf("\nbest: trial %d, validation %s %.4f at round %d of %d, in %.1f s; written to %s\n",
           best->id, c->metric.name, v, best->best_round[best_rung], c->rounds[best_rung], secs,
           out_path);
    rc = FEDC_EXIT_OK;
out:
    free(ids);
    return rc;
}

int cmd_tune(int argc, char **argv) {
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_TUNE, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
#define T(id) (op.v[FEDC_O_##id].text)
#define V(id) (op.v[FEDC_O_##id])
    tune_ctx c;
    memset(&c, 0, sizeof c);
    c.label = T(LABEL);
    c.drop = T(DROP);
    c.val_fraction = T(VAL_FRACTION);
    c.pos_weight = T(POS_WEIGHT);
    c.secagg = T(SECAGG);
    c.seed = V(SEED).u;
    c.metric.name = T(METRIC);
    c.metric.higher = strcmp(c.metric.name, "loss") != 0;
    c.eta = (int)V(ETA).i;
    c.jobs = (int)V(JOBS).i;
    c.quiet = (int)V(QUIET).i;
    c.n_trials = (int)V(TRIALS).i;
    c.n_rungs = tune_rungs(c.rounds, (int)V(ROUNDS).i, c.eta);
    const char *out_path = T(OUT);
    const char *budget = T(BUDGET);
    double budget_s = budget ? V(BUDGET).r : 0, val_fraction = V(VAL_FRACTION).r;
    char **drop_list = NULL;
    int n_drop = 0, rc = FEDC_EXIT_USAGE;
    if (!T(SHARDS) || !c.label || !out_path) {
        cli_error(CMD, "%s is required (see fedc tune --help)",
                  !T(SHARDS) ? "--shards"
                  : !c.label ? "--label"
                             : "--out");
        return FEDC_EXIT_USAGE;
    }
    if (cli_str_list(CMD, "--shards", T(SHARDS), &c.shards, &c.n_shards))
        return FEDC_EXIT_USAGE;
#undef T
#undef V
    if (val_fraction <= 0) {
        cli_error(CMD,
                  "--val-fraction: expected a share in (0, 0.9] (trials are judged on the "
                  "clients' validation rows), got %s",
                  c.val_fraction);
        goto out;
    }
    if (c.n_shards < 2) {
        cli_error(CMD, "--shards: a federation needs at least 2 client files, got %d", c.n_shards);
        goto out;
    }
    if (strcmp(c.secagg, "on") == 0 && c.n_shards < FEDC_SA_MIN_NBRS_DEFAULT) {
        cli_error(CMD,
                  "%d shards with secure aggregation: every secure sum needs at least %d "
                  "clients (docs/security.md); give more shards or --secagg off",
                  c.n_shards, FEDC_SA_MIN_NBRS_DEFAULT);
        goto out;
    }
    if (c.drop && cli_str_list(CMD, "--drop", c.drop, &drop_list, &n_drop))
        goto out;
    if (check_shards(&c, drop_list, n_drop))
        goto out;
    rc = FEDC_EXIT_FAIL;
    c.trials = calloc((size_t)c.n_trials, sizeof *c.trials);
    c.slots = calloc((size_t)c.jobs, sizeof *c.slots);
    if (!c.trials || !c.slots) {
        cli_error(CMD, "out of memory");
        goto out;
    }
#define D(id) fedc_opt_default(FEDC_O_##id, FEDC_PROG_COORD)
    for (int i = 0; i < c.n_trials; i++)
        if (tune_draw(&c.trials[i], i + 1, c.seed, D(OPTIMIZER), D(LR), atoi(D(LOCAL_EPOCHS)),
                      atoi(D(BATCH)), D(LAYERS))) {
            cli_error(CMD, "the coordinator's defaults do not fit a trial");
            goto out;
        }
#undef D
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    if (strlen(tmp) > sizeof c.root - 32) {
        cli_error(CMD, "TMPDIR: a path of at most %zu bytes, got %zu", sizeof c.root - 32,
                  strlen(tmp));
        goto out;
    }
    snprintf(c.root, sizeof c.root, "%s/fedc-tune-XXXXXX", tmp);
    if (!mkdtemp(c.root)) {
        cli_error(CMD, "cannot create a temporary directory %s: %s", c.root, strerror(errno));
        c.root[0] = 0;
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    c.deadline = budget_s > 0 ? fedc_clock_s() + budget_s : INFINITY;
    if (!c.quiet) {
        printf("fedc tune: %d trials on %d shards, rungs of", c.n_trials, c.n_shards);
        for (int r = 0; r < c.n_rungs; r++)
            printf("%s%d", r ? ", " : " ", c.rounds[r]);
        printf(" rounds (the best 1/%d go on), judged on federated validation %s", c.eta,
               c.metric.name);
        if (budget_s > 0)
            printf(", budget %g s", budget_s);
        printf("\n");
    }
    rc = search(&c, out_path);
out:
    if (c.root[0])
        nftw(c.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(c.trials);
    free(c.slots);
    cli_free_list(c.shards);
    cli_free_list(drop_list);
    return rc;
}
