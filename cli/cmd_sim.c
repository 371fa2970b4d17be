/* fedc sim: a whole federation on this machine, compared with the alternatives a data owner has.
 *
 * Holds out a stratified test set, splits the rest into N client files (fedc split), starts
 * fedc-coordinator and N fedc-client processes on loopback TCP (the same programs and code paths
 * as a real deployment), waits for the run, then trains the baselines in-process with core/nn:
 * centralised training on the union of the clients' rows (what pooling the data would give) and
 * each client alone on its own rows, with the same architecture, optimiser and number of passes
 * over the data (rounds x local epochs). Everything is scored on the same held-out test set and
 * printed as one table. This file holds the command and the run; the helpers it uses (starting
 * the programs, the work directory's files and keys, the baselines' training, table rows and
 * --summary-json, loading given shards) are sim_base.c's (sim_int.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
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
#include "report.h"
#include "sim.h"
#include "sim_int.h"
#include "fedc/csv.h"
#include "fedc/data.h"
#include "fedc/model.h"
#include "fedc/sa_proto.h"
#include "fedc/modelfile.h"
#include "fedc/train.h"
#include "loadopts.h"
#include "split.h"

#define CMD "sim"

static const fedc_prog_help g_help = {
    "usage: fedc sim --data FILE.csv --label COLUMN --clients N [options]",
    "Runs a federation on this machine: holds out a test set, splits the rest into N\n"
    "client files, starts fedc-coordinator and N fedc-client processes on loopback TCP,\n"
    "and prints the federated model next to centralised training on the union of the\n"
    "clients' rows and each client training alone, all on the same test set. The options it\n"
    "shares with fedc-coordinator are handed on to it; --dp-clip and the like are\n"
    "client-level DP there, --dp-sgd-* record-level DP-SGD in every client.",
    "The programs fedc-coordinator and fedc-client are looked up next to this program\n"
    "(or in ../coordinator and ../client in a build tree); FEDC_COORDINATOR and\n"
    "FEDC_CLIENT override the paths. They get their options as flags: the FEDC_ variables of\n"
    "options are removed from their environment."};

/* ---- the command ---------------------------------------------------------------------------- */

static int run(const sim_opts *o) {
    int rc = FEDC_EXIT_USAGE;
    char coord_bin[PATH_MAX], client_bin[PATH_MAX];
    if (sim_find_program(coord_bin, sizeof coord_bin, "FEDC_COORDINATOR", "fedc-coordinator",
                         "coordinator") ||
        sim_find_program(client_bin, sizeof client_bin, "FEDC_CLIENT", "fedc-client", "client")) {
        cli_error(CMD, "cannot find fedc-coordinator and fedc-client next to this program; set "
                       "FEDC_COORDINATOR and FEDC_CLIENT");
        return FEDC_EXIT_FAIL;
    }
    char **drop_list = NULL, **shards = NULL, **names = NULL;
    int n_drop = 0, n_shards = 0;
    fedc_dataset *all = NULL, *pool = NULL, *test = NULL;
    fedc_dataset **shard_ds = NULL;
    result *res = NULL;
    pid_t *pids = NULL;
    char dir[1024] = "", tmpl[] = "/tmp/fedc-sim-XXXXXX";
    int own_dir = !o->work_dir, given = o->shard_files != NULL;
    fedc_diag d;
    /* The source files (--data, the given shards, --test) load with the flags' encoding; shards
     * written here from encoded rows are numbers, with NaN cells under --missing mean. */
    fedc_encoding enc_src, enc_shard;
    fedc_encoding_init(&enc_src);
    if (o->load)
        enc_src = fedc_load_opts_scoring(o->load);
    int mean = enc_src.missing == FEDC_MISSING_MEAN;
    fedc_encoding_init(&enc_shard);
    if (given) {
        enc_shard = enc_src;
    } else if (mean) {
        enc_shard.missing = FEDC_MISSING_MEAN;
        enc_shard.ind_mode = FEDC_IND_NONE;
    }
    if (o->drop && cli_str_list(CMD, "--drop", o->drop, &drop_list, &n_drop))
        return FEDC_EXIT_USAGE;
    if (own_dir) {
        if (!mkdtemp(tmpl)) {
            cli_error(CMD, "cannot create a temporary directory: %s", strerror(errno));
            rc = FEDC_EXIT_FAIL;
            goto out;
        }
        snprintf(dir, sizeof dir, "%s", tmpl);
    } else {
        if (strlen(o->work_dir) >= sizeof dir - 64) {
            cli_error(CMD, "--work-dir: path longer than %zu bytes", sizeof dir - 64);
            goto out;
        }
        snprintf(dir, sizeof dir, "%s", o->work_dir);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            cli_error(CMD, "--work-dir: cannot create %s: %s", dir, strerror(errno));
            rc = FEDC_EXIT_FAIL;
            goto out;
        }
    }
    char pool_path[PATH_MAX + 16], shard_dir[PATH_MAX + 16], model_path[PATH_MAX + 16];
    char metrics_path[PATH_MAX + 16];
    snprintf(pool_path, sizeof pool_path, "%s/pool.csv", dir);
    snprintf(shard_dir, sizeof shard_dir, "%s/shards", dir);
    snprintf(model_path, sizeof model_path, "%s/global.fedc", dir);
    if (o->metrics)
        snprintf(metrics_path, sizeof metrics_path, "%s", o->metrics);
    else
        snprintf(metrics_path, sizeof metrics_path, "%s/rounds.jsonl", dir);
    const char *data_path = o->data;
    if (given) {
        for (n_shards = 0; o->shard_files[n_shards]; n_shards++) {
        }
        shard_ds = calloc((size_t)n_shards, sizeof *shard_ds);
        if (!shard_ds || sim_load_given(&all, shard_ds, o->shard_files, n_shards, o->label,
                                        drop_list, n_drop, &enc_src))
            goto out;
        data_path = "the shards";
    } else if (fedc_csv_load_enc(&all, data_path, o->label, (const char *const *)drop_list, n_drop,
                                 &enc_src, &d)) {
        cli_error(CMD, "%s", d.msg);
        goto out;
    }
    fedc_task task;
    int n_classes;
    if (fedc_dataset_task(&task, &n_classes, all, 0, &d)) {
        cli_error(CMD, "%s: %s", data_path, d.msg);
        goto out;
    }
    if (strcmp(o->pos_weight, "1") != 0 && task != FEDC_TASK_BINARY) {
        cli_error(CMD, "--pos-weight applies to binary labels only");
        goto out;
    }
    int hidden[FEDC_MAX_LAYERS], n_hidden = 0;
    fedc_act act;
    if (cli_int_list(CMD, "--layers", o->layers, hidden, FEDC_MAX_LAYERS - 1, &n_hidden))
        goto out;
    if (fedc_act_parse(&act, o->activation)) {
        cli_error(CMD, "--activation: expected relu, leaky_relu, sigmoid or tanh, got '%s'",
                  o->activation);
        goto out;
    }
    fedc_arch arch;
    if (fedc_arch_make(&arch, all->n_features, hidden, n_hidden, act, task, n_classes, &d)) {
        cli_error(CMD, "%s", d.msg);
        goto out;
    }
    rc = FEDC_EXIT_FAIL;
    if (given) {
        if (o->test_file &&
            fedc_csv_load_enc(&test, o->test_file, o->label, (const char *const *)drop_list, n_drop,
                              &enc_src, &d)) {
            cli_error(CMD, "%s", d.msg);
            rc = FEDC_EXIT_USAGE;
            goto out;
        }
        pool = all;
        all = NULL;
        if (fedc_dataset_split(&all, NULL, NULL, pool, task, 0.0, 0.0, o->seed) || !all) {
            cli_error(CMD, "out of memory");
            goto out;
        }
        for (n_shards = 0; o->shard_files[n_shards]; n_shards++) {
        }
        shards = calloc((size_t)n_shards + 1, sizeof *shards);
        for (int i = 0; shards && i < n_shards; i++)
            if (!(shards[i] = strdup(o->shard_files[i])))
                goto out;
    } else {
        if (fedc_dataset_split(&pool, NULL, &test, all, task, 0.0, o->test_fraction, o->seed) ||
            !test || test->n_rows < 1) {
            cli_error(CMD, "cannot hold out %.0f%% of %d rows as a test set",
                      100.0 * o->test_fraction, all->n_rows);
            goto out;
        }
        if (sim_write_csv(pool_path, pool)) {
            cli_error(CMD, "cannot write %s: %s", pool_path, strerror(errno));
            goto out;
        }
        split_opts so;
        memset(&so, 0, sizeof so);
        so.data = pool_path;
        so.label = all->label_name;
        so.scheme = o->split;
        so.out_dir = shard_dir;
        so.clients = strncmp(o->split, "column:", 7) == 0 ? 0 : o->clients;
        so.seed = o->seed;
        so.force = 1;
        so.quiet = o->quiet;
        int src = split_run(CMD, &so, &shards, &n_shards);
        /* The pooled rows were only the split's input: the shards and the test set are what a
         * --work-dir keeps, and this copy of the whole data need not stay beside them. */
        unlink(pool_path);
        if (src) {
            rc = src;
            goto out;
        }
    }
    if (!shards || n_shards > MAX_SIM_CLIENTS) {
        cli_error(CMD, "%d clients, at most %d run here", n_shards, MAX_SIM_CLIENTS);
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    /* Client names: the shard files' names (bank-a.csv -> bank-a, EDUCATION=1.csv ->
     * EDUCATION_1: sim_names.c), else client-1, ... */
    names = calloc((size_t)n_shards + 1, sizeof *names);
    if (!names)
        goto out;
    if (given) {
        if (sim_shard_names(CMD, shards, n_shards, names)) {
            rc = FEDC_EXIT_USAGE;
            goto out;
        }
    } else {
        for (int i = 0; i < n_shards; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "client-%d", i + 1);
            if (!(names[i] = strdup(nm)))
                goto out;
        }
    }
    /* The federation. Secure aggregation sums no fewer than its floor of clients in a session
     * (docs/security.md): say so here rather than let the coordinator refuse its flags. */
    if (strcmp(o->secagg, "on") == 0 && n_shards < FEDC_SA_MIN_NBRS_DEFAULT) {
        cli_error(CMD,
                  "%d clients with secure aggregation: every secure sum needs at least %d "
                  "clients in a session (docs/security.md); use more clients or --secagg off",
                  n_shards, FEDC_SA_MIN_NBRS_DEFAULT);
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    int port = o->port > 0 ? o->port : sim_free_port();
    if (port < 0) {
        cli_error(CMD, "cannot find a free TCP port on 127.0.0.1");
        goto out;
    }
    char bind_s[64], n_s[16], rounds_s[16], le_s[16], batch_s[16], seed_s[32];
    snprintf(bind_s, sizeof bind_s, "tcp://127.0.0.1:%d", port);
    snprintf(n_s, sizeof n_s, "%d", n_shards);
    snprintf(rounds_s, sizeof rounds_s, "%d", o->rounds);
    snprintf(le_s, sizeof le_s, "%d", o->local_epochs);
    snprintf(batch_s, sizeof batch_s, "%d", o->batch);
    snprintf(seed_s, sizeof seed_s, "%llu", o->seed);
    char *cargv[192];
    int k = 0;
    cargv[k++] = coord_bin;
#define ARG(flag, val)                                                                             \
    do {                                                                                           \
        cargv[k++] = (char *)(flag);                                                               \
        cargv[k++] = (char *)(val);                                                                \
    } while (0)
    ARG("--bind", bind_s);
    ARG("--min-clients", n_s);
    ARG("--rounds", rounds_s);
    ARG("--local-epochs", le_s);
    ARG("--batch", batch_s);
    ARG("--seed", seed_s);
    ARG("--layers", o->layers);
    ARG("--activation", o->activation);
    ARG("--optimizer", o->optimizer);
    ARG("--server-opt", o->server_opt);
    ARG("--pos-weight", o->pos_weight);
    ARG("--lr", o->lr);
    ARG("--prox-mu", o->prox_mu);
    ARG("--val-fraction", o->val_fraction);
    ARG("--round-timeout", o->round_timeout);
    ARG("--model-out", model_path);
    ARG("--metrics-json", metrics_path);
    ARG("--wait-timeout", "60");
    ARG("--secagg", o->secagg);
    char keyfile[1200], allowdir[1200], coordpub[1200];
    snprintf(keyfile, sizeof keyfile, "%s/keys/coordinator.key_secret", dir);
    snprintf(allowdir, sizeof allowdir, "%s/allow", dir);
    snprintf(coordpub, sizeof coordpub, "%s/keys/coordinator.key", dir);
    if (o->insecure) {
        cargv[k++] = "--insecure";
    } else {
        if (sim_make_keys(dir, names, n_shards))
            goto out;
        ARG("--key", keyfile);
        ARG("--allow", allowdir);
    }
    if (o->server_lr)
        ARG("--server-lr", o->server_lr);
    if (o->fraction_fit)
        ARG("--fraction-fit", o->fraction_fit);
    if (o->quiet)
        cargv[k++] = "--quiet";
    for (int i = 0; i < o->n_coord_extra; i++)
        cargv[k++] = (char *)o->coord_extra[i];
    cargv[k] = NULL;
    char clog[PATH_MAX + 32];
    snprintf(clog, sizeof clog, "%s/coordinator.log", dir);
    pids = calloc((size_t)n_shards + 1, sizeof *pids);
    res = calloc((size_t)n_shards + 2, sizeof *res);
    if (!shard_ds) /* given shards are loaded already */
        shard_ds = calloc((size_t)n_shards, sizeof *shard_ds);
    if (!pids || !res || !shard_ds)
        goto out;
    if (!o->quiet)
        printf("fedc sim: %d clients (%s), %d rounds; coordinator on %s (%s, secure "
               "aggregation %s)\n",
               n_shards, given ? "given shards" : o->split, o->rounds, bind_s,
               o->insecure ? "plain TCP" : "CurveZMQ, keys in the work directory", o->secagg);
    pids[0] = sim_spawn(cargv, NULL, clog, 1);
    char th_s[16];
    snprintf(th_s, sizeof th_s, "%d", o->threads);
    for (int i = 0; i < n_shards; i++) {
        char name[80], out_p[1200], err_p[1200];
        snprintf(name, sizeof name, "%s", names[i]);
        snprintf(out_p, sizeof out_p, "%s/%s.out", dir, name);
        snprintf(err_p, sizeof err_p, "%s/%s.log", dir, name);
        char ckey[1200];
        snprintf(ckey, sizeof ckey, "%s/keys/%s.key_secret", dir, name);
        char *av[72];
        int a = 0;
        av[a++] = client_bin;
        av[a++] = "--connect";
        av[a++] = bind_s;
        av[a++] = "--name";
        av[a++] = name;
        av[a++] = "--data";
        av[a++] = shards[i];
        av[a++] = "--label";
        av[a++] = all->label_name;
        av[a++] = "--threads";
        av[a++] = th_s;
        av[a++] = "--quiet";
        av[a++] = "--secagg";
        av[a++] = (char *)o->secagg;
        if (given && o->drop) { /* the shards still hold the dropped columns */
            av[a++] = "--drop";
            av[a++] = (char *)o->drop;
        }
        for (int x = 0; x < o->n_load_flags; x += 2) {
            /* Given shards are raw files: every loader flag. Shards written here are encoded
             * already: only the features spec, and --missing mean's policy (below). */
            if (given || strcmp(o->load_flags[x], "--features-spec") == 0) {
                av[a++] = (char *)o->load_flags[x];
                av[a++] = (char *)o->load_flags[x + 1];
            }
        }
        if (!given && mean) {
            av[a++] = "--missing";
            av[a++] = "mean";
            av[a++] = "--missing-indicators";
            av[a++] = "none";
        }
        if (o->insecure) {
            av[a++] = "--insecure";
        } else {
            av[a++] = "--key";
            av[a++] = ckey;
            av[a++] = "--coordinator-key";
            av[a++] = coordpub;
            av[a++] = "--peers";
            av[a++] = allowdir;
        }
        for (int x = 0; x < o->n_client_extra; x++)
            av[a++] = (char *)o->client_extra[x];
        char cm[1200];
        snprintf(cm, sizeof cm, "%s/%s.jsonl", dir, name);
        /* The client appends; this run's rows are counted from it (like its log, it is this
         * run's file in a reused --work-dir). */
        unlink(cm);
        av[a++] = "--metrics-json";
        av[a++] = cm;
        char dps[1200];
        if (o->dp_state_dir) {
            snprintf(dps, sizeof dps, "%s/%s.dpstate", o->dp_state_dir, name);
            av[a++] = "--dp-state";
            av[a++] = dps;
        }
        av[a] = NULL;
        pids[i + 1] = sim_spawn(av, out_p, err_p, o->threads);
    }
    int st = 0;
    while (waitpid(pids[0], &st, 0) < 0 && errno == EINTR) {
    }
    int coord_ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    /* Clients exit when told the run is over; give them a moment, then stop stragglers. */
    int clients_ok = 1;
    for (int i = 1; i <= n_shards; i++) {
        int cst = 0, waited = 0;
        for (int t = 0; t < 100 && !waited; t++) {
            pid_t w = waitpid(pids[i], &cst, WNOHANG);
            if (w == pids[i])
                waited = 1;
            else {
                struct timespec ts = {0, 50000000};
                nanosleep(&ts, NULL);
            }
        }
        if (!waited) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], &cst, 0);
        }
        if (!WIFEXITED(cst) || WEXITSTATUS(cst) != 0) {
            clients_ok = 0;
            if (coord_ok) {
                fprintf(stderr, "fedc sim: %s did not finish cleanly; its log:\n", names[i - 1]);
                char p[PATH_MAX + 100];
                snprintf(p, sizeof p, "%s/%s.log", dir, names[i - 1]);
                sim_print_file(p, stderr);
            }
        }
    }
    if (!coord_ok) {
        cli_error(CMD, "the coordinator failed; its log (%s):", clog);
        sim_print_file(clog, stderr);
        goto out;
    }
    (void)clients_ok;
    if (!test) { /* the federation only (no test set given): its metrics file is the result */
        rc = FEDC_EXIT_OK;
        goto out;
    }

    /* Baselines, trained here with the same settings. */
    cli_setup_threads(o->threads);
    fedc_train_cfg base = fedc_train_defaults();
    base.epochs = o->rounds * o->local_epochs;
    base.batch = o->batch;
    base.opt = fedc_optim_defaults();
    base.opt.kind = strcmp(o->optimizer, "sgd") == 0 ? FEDC_OPT_SGD : FEDC_OPT_ADAM;
    base.opt.lr = strtof(o->lr, NULL);
    base.patience = 0;
    base.seed = o->seed;
    int auto_pw = strcmp(o->pos_weight, "auto") == 0;
    if (!auto_pw)
        base.pos_weight = strtof(o->pos_weight, NULL);
    /* federated */
    result *fed = &res[0], *cen = &res[1];
    snprintf(fed->name, sizeof fed->name, "federated (%d clients)", n_shards);
    fedc_model *gm = NULL;
    float *pred = NULL;
    if (fedc_model_load(&gm, model_path, &d) == FEDC_OK) {
        /* The recipe in the model: the flags' encoding (what a raw file needs for fedc eval),
         * with round 0's federation-wide means as the imputation values under --missing mean
         * (the coordinator's model holds the clients' encoding, which for shards written here
         * is that of encoded numbers). The test rows are filled with the same means. */
        if (o->load && (fedc_model_set_recipe(gm, &o->load->enc, mean ? gm->mean : NULL,
                                              mean ? gm->arch.sizes[0] : 0, o->load->features) ||
                        fedc_model_save(gm, model_path, &d)))
            cli_error(CMD, "cannot store the data recipe in %s", model_path);
        if (mean && test->n_features == gm->arch.sizes[0])
            (void)fedc_dataset_fill_missing(test, gm->mean);
        pred = malloc(4 * (size_t)test->n_rows * (size_t)fedc_model_out_width(gm));
        if (pred && fedc_model_predict(pred, gm, test->x, test->n_rows) == FEDC_OK &&
            cli_compute_metrics(&fed->mt, gm, pred, test, 0.5f) == 0) {
            fed->ok = 1;
            if (task == FEDC_TASK_BINARY) {
                fed->pred = pred;
                pred = NULL;
            }
        }
    } else {
        cli_error(CMD, "%s", d.msg);
    }
    /* The rows the federated model was trained on: what the clients report, not the rows they
     * hold (each keeps its --val-fraction share for validation). */
    long fed_rows = 0;
    for (int i = 0; i < n_shards; i++) {
        char cm[PATH_MAX + 100];
        snprintf(cm, sizeof cm, "%s/%s.jsonl", dir, names[i]);
        fed_rows += sim_client_train_rows(cm);
    }
    fed->rows = fed_rows > INT_MAX ? INT_MAX : (int)fed_rows;
    free(pred);
    fedc_model_destroy(&gm);
    snprintf(cen->name, sizeof cen->name, "centralised (union)");
    if (!o->quiet && o->baselines >= 1)
        printf("fedc sim: training the baselines, %s (%d epochs each)\n",
               o->baselines >= 2 ? "centralised and each client on its own" : "centralised",
               base.epochs);
    int keep = task == FEDC_TASK_BINARY;
    float *impute = NULL;
    if (mean && (impute = malloc(sizeof(float) * (size_t)pool->n_features)) != NULL) {
        /* The baselines fill their training rows with their own means (the test rows are
         * filled already with the federation's, or with the pooled rows' when it failed). */
        fedc_dataset *others[1] = {test};
        (void)fedc_impute_train_means(impute, pool, others, 1);
    }
    if (o->baselines >= 1) {
        sim_train_and_score(cen, &arch, pool, test, &base, auto_pw, keep);
        cen->rows = pool->n_rows;
    }
    for (int i = 0; i < n_shards && o->baselines >= 2; i++) {
        result *r = &res[2 + i];
        const char *base_name = strrchr(shards[i], '/');
        base_name = base_name ? base_name + 1 : shards[i];
        snprintf(r->name, sizeof r->name, "%.40s alone", given ? names[i] : base_name);
        if (!shard_ds[i] && fedc_csv_load_enc(&shard_ds[i], shards[i], all->label_name,
                                              given ? (const char *const *)drop_list : NULL,
                                              given ? n_drop : 0, &enc_shard, &d)) {
            cli_error(CMD, "%s", d.msg);
            continue;
        }
        r->rows = shard_ds[i]->n_rows;
        if (mean && impute)
            (void)fedc_impute_train_means(impute, shard_ds[i], NULL, 0);
        sim_train_and_score(r, &arch, shard_ds[i], test, &base, auto_pw, keep);
    }
    free(impute);
    int have_budget = task == FEDC_TASK_BINARY && o->alert_budget > 0;
    for (int i = 0; i < n_shards + 2; i++)
        res[i].alert_recall =
            have_budget ? cli_recall_at_budget(res[i].pred, test->y, test->n_rows, o->alert_budget)
                        : NAN;
    if (given)
        printf("\ntest set: %s, %d rows\n", o->test_file, test->n_rows);
    else
        printf("\ntest set: %d rows held out (%.0f%%, stratified, seed %llu)\n", test->n_rows,
               100.0 * o->test_fraction, o->seed);
    char budget_col[32] = "";
    if (have_budget)
        snprintf(budget_col, sizeof budget_col, "  recall@%.4g%%", 100.0 * o->alert_budget);
    if (task == FEDC_TASK_BINARY)
        printf("  %-24s %9s   %7s  %7s  %8s  %9s  %6s  %6s%s\n", "model", "train_rows", "roc_auc",
               "pr_auc", "accuracy", "precision", "recall", "f1", budget_col);
    else if (task == FEDC_TASK_MULTICLASS)
        printf("  %-24s %9s   %8s  %8s  %8s\n", "model", "train_rows", "accuracy", "macro_f1",
               "log_loss");
    else
        printf("  %-24s %9s   %8s  %8s\n", "model", "train_rows", "rmse", "r2");
    for (int i = 0; i < n_shards + 2; i++)
        if (i == 0 || (i == 1 && o->baselines >= 1) || o->baselines >= 2)
            sim_print_row(&res[i]);
    if (fed->rows != pool->n_rows)
        printf("\ntrain_rows: the rows each model was trained on. The clients hold %d rows and "
               "trained on %d (each keeps --val-fraction %s of its rows for validation)%s\n",
               pool->n_rows, fed->rows, o->val_fraction,
               o->baselines >= 1 ? "; the baselines train on all of theirs" : "");
    if (task == FEDC_TASK_BINARY && fed->ok && cen->ok)
        printf("\nfederated - centralised ROC-AUC: %+.4f\n",
               fed->mt.bin.roc_auc - cen->mt.bin.roc_auc);
    if (o->summary &&
        sim_write_summary(o->summary, task, test->n_rows, res, n_shards, o->baselines))
        goto out;
    if (o->report && task == FEDC_TASK_BINARY) {
        report_model *rm = calloc((size_t)n_shards + 2, sizeof *rm);
        int n_rep = 0;
        for (int i = 0; rm && i < n_shards + 2; i++) {
            if (i == 1 ? o->baselines < 1 : i > 1 && o->baselines < 2)
                continue; /* not trained: no row for it */
            rm[n_rep] = (report_model){res[i].name,
                                       i == 0   ? FEDC_SERIES_FEDERATED
                                       : i == 1 ? FEDC_SERIES_CENTRALISED
                                                : FEDC_SERIES_CLIENT,
                                       i - 2,
                                       res[i].pred,
                                       res[i].ok ? res[i].mt.bin.pr_auc : NAN,
                                       res[i].ok ? res[i].mt.bin.roc_auc : NAN,
                                       res[i].alert_recall};
            n_rep++;
        }
        fedc_model *card_model = NULL; /* the federated model again, for its card */
        if (fedc_model_load(&card_model, model_path, &d) != FEDC_OK)
            card_model = NULL;
        const report_in in = {.title = o->title ? o->title : "fedc federation",
                              .rounds_path = metrics_path,
                              .models = rm,
                              .n_models = n_rep,
                              .y = test->y,
                              .n = test->n_rows,
                              .alert_budget = o->alert_budget,
                              .model = card_model,
                              .have_seed = 1,
                              .seed = o->seed};
        int bad = !rm || report_write(o->report, &in);
        if (!rm)
            cli_error(CMD, "out of memory");
        fedc_model_destroy(&card_model);
        free(rm);
        if (bad)
            goto out;
    }
    rc = fed->ok && (cen->ok || o->baselines < 1) ? FEDC_EXIT_OK : FEDC_EXIT_FAIL;
out:
    for (int i = 0; res && i < n_shards + 2; i++)
        free(res[i].pred);
    if (own_dir && dir[0] && strncmp(dir, "/tmp/fedc-sim-", 14) == 0)
        sim_rm_rf(dir, given ? NULL : shards, names);
    cli_free_list(names);
    for (int i = 0; shard_ds && i < n_shards; i++)
        fedc_dataset_destroy(&shard_ds[i]);
    free(shard_ds);
    free(res);
    free(pids);
    cli_free_list(shards);
    cli_free_list(drop_list);
    fedc_dataset_destroy(&all);
    fedc_dataset_destroy(&pool);
    fedc_dataset_destroy(&test);
    return rc;
}

/* The option table's defaults for fedc sim (fedc demo starts from them too). */
void sim_defaults(sim_opts *o) {
    memset(o, 0, sizeof *o);
#define D(id) fedc_opt_default(FEDC_O_##id, FEDC_PROG_SIM)
    o->split = D(SPLIT);
    o->threads = atoi(D(THREADS));
    o->test_fraction = strtof(D(TEST_FRACTION), NULL);
    o->rounds = atoi(D(ROUNDS));
    o->local_epochs = atoi(D(LOCAL_EPOCHS));
    o->batch = atoi(D(BATCH));
    o->layers = D(LAYERS);
    o->activation = D(ACTIVATION);
    o->optimizer = D(OPTIMIZER);
    o->server_opt = D(SERVER_OPT);
    o->pos_weight = D(POS_WEIGHT);
    o->lr = D(LR);
    o->prox_mu = D(PROX_MU);
    o->val_fraction = D(VAL_FRACTION);
    o->round_timeout = D(ROUND_TIMEOUT);
    o->seed = strtoull(D(SEED), NULL, 10);
    o->secagg = D(SECAGG);
    o->alert_budget = strtod(D(ALERT_BUDGET), NULL);
    o->baselines = 2;
#undef D
}

int sim_run(const sim_opts *o) {
    signal(SIGPIPE, SIG_IGN);
    return run(o);
}

/* Options of fedc sim that are sim_opts fields of their own (used here too, or handed on in
 * run()); every other option it shares with fedc-coordinator is handed on as given. */
static int sim_own(fedc_opt_id id) {
    static const fedc_opt_id own[] = {
        FEDC_O_ROUNDS,        FEDC_O_LOCAL_EPOCHS, FEDC_O_BATCH,       FEDC_O_SEED,
        FEDC_O_LAYERS,        FEDC_O_ACTIVATION,   FEDC_O_OPTIMIZER,   FEDC_O_SERVER_OPT,
        FEDC_O_POS_WEIGHT,    FEDC_O_LR,           FEDC_O_PROX_MU,     FEDC_O_VAL_FRACTION,
        FEDC_O_ROUND_TIMEOUT, FEDC_O_SECAGG,       FEDC_O_SERVER_LR,   FEDC_O_FRACTION_FIT,
        FEDC_O_QUIET,         FEDC_O_INSECURE,     FEDC_O_METRICS_JSON};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (own[i] == id)
            return 1;
    return 0;
}

/* fedc sim's --dp-sgd-X is every client's --X. */
static const struct {
    fedc_opt_id sim;
    const char *client;
} g_dp_sgd[] = {{FEDC_O_DP_SGD_CLIP, "--dp-clip"},
                {FEDC_O_DP_SGD_NOISE, "--dp-noise"},
                {FEDC_O_DP_SGD_EPSILON, "--target-epsilon"},
                {FEDC_O_DP_SGD_DELTA, "--dp-delta"},
                {FEDC_O_DP_SGD_SAMPLING, "--dp-sampling"}};

int cmd_sim(int argc, char **argv) {
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_SIM, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
#define T(id) (op.v[FEDC_O_##id].text)
#define V(id) (op.v[FEDC_O_##id])
    sim_opts o;
    sim_defaults(&o);
    o.data = T(DATA);
    o.label = T(LABEL);
    o.drop = T(DROP);
    o.clients = fedc_opt_has(&op, FEDC_O_CLIENTS) ? (int)V(CLIENTS).i : 0;
    o.split = T(SPLIT);
    o.secagg = T(SECAGG);
    o.test_fraction = (float)V(TEST_FRACTION).r;
    o.rounds = (int)V(ROUNDS).i;
    o.local_epochs = (int)V(LOCAL_EPOCHS).i;
    o.batch = (int)V(BATCH).i;
    o.threads = (int)V(THREADS).i;
    o.seed = V(SEED).u;
    o.layers = T(LAYERS);
    o.activation = T(ACTIVATION);
    o.optimizer = T(OPTIMIZER);
    o.server_opt = T(SERVER_OPT);
    o.pos_weight = T(POS_WEIGHT);
    o.lr = T(LR);
    o.prox_mu = T(PROX_MU);
    o.server_lr = T(SERVER_LR);
    /* handed on only when given, as before: the coordinator's default is the same */
    o.fraction_fit = fedc_opt_given(&op, FEDC_O_FRACTION_FIT) ? T(FRACTION_FIT) : NULL;
    o.val_fraction = T(VAL_FRACTION);
    o.round_timeout = T(ROUND_TIMEOUT);
    o.metrics = T(METRICS_JSON);
    o.summary = T(SUMMARY_JSON);
    o.work_dir = T(WORK_DIR);
    o.test_file = T(TEST);
    o.report = T(REPORT);
    o.alert_budget = V(ALERT_BUDGET).r;
    o.dp_state_dir = T(DP_SGD_STATE_DIR);
    o.baselines = 2 - (int)V(BASELINES).i; /* all|central|none */
    o.quiet = (int)V(QUIET).i;
    o.insecure = (int)V(INSECURE).i;
    /* The coordinator's flags, with their names from the table: live until sim_run returns. */
    char flags[FEDC_O_COUNT][48];
    for (int id = 0; id < FEDC_O_COUNT; id++) {
        const fedc_opt_def *d = &fedc_opt_table[id];
        if (!(d->progs & FEDC_PROG_COORD) || !(d->progs & FEDC_PROG_SIM) ||
            sim_own((fedc_opt_id)id) || !fedc_opt_given(&op, (fedc_opt_id)id))
            continue;
        if (d->type == FEDC_OT_FLAG && !op.v[id].i)
            continue; /* given as false */
        snprintf(flags[id], sizeof flags[id], "--%s", d->name);
        if (o.n_coord_extra + 2 > (int)(sizeof o.coord_extra / sizeof o.coord_extra[0])) {
            cli_error(CMD, "too many coordinator options");
            return FEDC_EXIT_USAGE;
        }
        o.coord_extra[o.n_coord_extra++] = flags[id];
        if (d->type != FEDC_OT_FLAG)
            o.coord_extra[o.n_coord_extra++] = op.v[id].text;
    }
    for (size_t k = 0; k < sizeof g_dp_sgd / sizeof g_dp_sgd[0]; k++) {
        if (!fedc_opt_given(&op, g_dp_sgd[k].sim))
            continue;
        if (o.n_client_extra + 2 > (int)(sizeof o.client_extra / sizeof o.client_extra[0])) {
            cli_error(CMD, "too many client options");
            return FEDC_EXIT_USAGE;
        }
        o.client_extra[o.n_client_extra++] = g_dp_sgd[k].client;
        o.client_extra[o.n_client_extra++] = op.v[g_dp_sgd[k].sim].text;
    }
    char **shard_list = NULL;
    int n_shard_list = 0;
    if (T(SHARDS)) {
        if (cli_str_list(CMD, "--shards", T(SHARDS), &shard_list, &n_shard_list))
            return FEDC_EXIT_USAGE;
        o.shard_files = shard_list;
    }
#undef T
#undef V
    if (o.shard_files) {
        if (o.data || !o.test_file || !o.label || n_shard_list < 2) {
            cli_error(CMD, "--shards takes the place of --data and needs --test and --label, and "
                           "at least 2 files");
            cli_free_list(shard_list);
            return FEDC_EXIT_USAGE;
        }
    } else if (!o.data || !o.label || (!o.clients && strncmp(o.split, "column:", 7) != 0)) {
        cli_error(CMD, "%s is required (see fedc sim --help)",
                  !o.data    ? "--data"
                  : !o.label ? "--label"
                             : "--clients");
        return FEDC_EXIT_USAGE;
    }
    if (!o.shard_files && o.test_fraction <= 0.0f) {
        /* the table's range admits 0 for fedc train (no test part); sim compares on one */
        cli_error(CMD,
                  "--test-fraction: expected a number in (0, 0.9] (fedc sim compares the "
                  "models on a held-out test set), got %g",
                  (double)o.test_fraction);
        return FEDC_EXIT_USAGE;
    }
    fedc_load_opts lo;
    int lrc = fedc_load_opts_get(&lo, &op, CMD);
    if (lrc) {
        cli_free_list(shard_list);
        return lrc;
    }
    o.load = &lo;
    static const fedc_opt_id load_ids[] = {
        FEDC_O_DELIMITER,   FEDC_O_MISSING,      FEDC_O_MISSING_INDICATORS, FEDC_O_POSITIVE,
        FEDC_O_CATEGORICAL, FEDC_O_HASH_BUCKETS, FEDC_O_HASH_KEY,           FEDC_O_FEATURES_SPEC};
    static char load_flag_names[8][32];
    for (size_t k = 0; k < sizeof load_ids / sizeof load_ids[0]; k++) {
        if (!fedc_opt_given(&op, load_ids[k]))
            continue;
        snprintf(load_flag_names[k], sizeof load_flag_names[k], "--%s",
                 fedc_opt_table[load_ids[k]].name);
        o.load_flags[o.n_load_flags++] = load_flag_names[k];
        o.load_flags[o.n_load_flags++] = op.v[load_ids[k]].text;
    }
    int rc = sim_run(&o);
    cli_free_list(shard_list);
    fedc_load_opts_release(&lo);
    return rc;
}
