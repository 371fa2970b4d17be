/* fedc sim's helpers (sim_int.h): finding and starting the programs, the files and keys of the
 * work directory and its removal, the baselines trained in-process (centralised and each client
 * alone) with the table row and --summary-json they give, and the loading of given shards
 * (fedc demo's banks). The command and the run itself are cmd_sim.c's. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim_int.h"
#include "fedc/csv.h"
#include "fedc/jsonl.h"
#include "fedc/keys.h"

#define CMD "sim"

/* ---- helpers -------------------------------------------------------------------------------- */

int sim_find_program(char *out, size_t cap, const char *env, const char *name,
                     const char *build_sub) {
    const char *e = getenv(env);
    if (e && *e) {
        snprintf(out, cap, "%s", e);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    char self[2048];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = 0;
    snprintf(out, cap, "%s/%s", self, name);
    if (access(out, X_OK) == 0)
        return 0;
    snprintf(out, cap, "%s/../%s/%s", self, build_sub, name);
    return access(out, X_OK) == 0 ? 0 : -1;
}

int sim_free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

/* Writes ds as CSV (header, then %.9g: every float32 value reads back exactly). Names go
 * through the tokenizer's writer, quoted when they hold a comma or a quote, so that the clients'
 * loader reads back the names the data set had. */
int sim_write_csv(const char *path, const fedc_dataset *ds) {
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (int j = 0; j < ds->n_features; j++) {
        fedc_csv_write_field(f, ds->feature_names[j]);
        fputc(',', f);
    }
    fedc_csv_write_field(f, ds->label_name);
    fputc('\n', f);
    for (int i = 0; i < ds->n_rows; i++) {
        const float *x = ds->x + (size_t)i * (size_t)ds->n_features;
        for (int j = 0; j < ds->n_features; j++)
            fprintf(f, "%.9g,", (double)x[j]);
        fprintf(f, "%.9g\n", (double)ds->y[i]);
    }
    int bad = ferror(f);
    return fclose(f) != 0 || bad ? -1 : 0;
}

pid_t sim_spawn(char *const argv[], const char *log_out, const char *log_err, int threads) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (log_out) {
        int fd = open(log_out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0)
            _exit(126);
        close(fd);
    }
    int fd = open(log_err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 2) < 0)
        _exit(126);
    close(fd);
    char t[16];
    snprintf(t, sizeof t, "%d", threads);
    setenv("OMP_NUM_THREADS", t, 1);
    /* Every option reaches the programs as a flag; a FEDC_DP_CLIP meant for this sim's
     * client-level DP must not also turn on DP-SGD in the clients. */
    fedc_opts_unsetenv();
    execv(argv[0], argv);
    _exit(127);
}

void sim_print_file(const char *path, FILE *to) {
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, to);
    fclose(f);
}

/* Makes the federation's identities in dir: keys/NAME.key(_secret) for the coordinator and
 * every client, and allow/ with the clients' public files (the allow-list and the roster). */
int sim_make_keys(const char *dir, char *const *names, int n) {
    char keys[1100], allow[1100];
    snprintf(keys, sizeof keys, "%s/keys", dir);
    snprintf(allow, sizeof allow, "%s/allow", dir);
    if ((mkdir(keys, 0700) != 0 && errno != EEXIST) ||
        (mkdir(allow, 0755) != 0 && errno != EEXIST)) {
        cli_error(CMD, "cannot create %s: %s", keys, strerror(errno));
        return -1;
    }
    for (int i = 0; i <= n; i++) {
        char name[80];
        snprintf(name, sizeof name, "%s", i == 0 ? "coordinator" : names[i - 1]);
        fedc_identity id;
        fedc_diag d;
        if (fedc_key_generate(&id, name, &d) || fedc_key_write(&id, keys, 1, &d)) {
            cli_error(CMD, "keys: %s", d.msg);
            fedc_key_wipe(&id);
            return -1;
        }
        fedc_key_wipe(&id);
        if (i == 0)
            continue;
        char src[1200], dst[1200];
        snprintf(src, sizeof src, "%s/%s.key", keys, name);
        snprintf(dst, sizeof dst, "%s/%s.key", allow, name);
        FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
        char buf[1024];
        size_t k = in ? fread(buf, 1, sizeof buf, in) : 0;
        int bad = !in || !out || k == 0 || fwrite(buf, 1, k, out) != k;
        if (in)
            fclose(in);
        if (out && fclose(out) != 0)
            bad = 1;
        if (bad) {
            cli_error(CMD, "cannot copy %s to %s", src, dst);
            return -1;
        }
    }
    return 0;
}

/* The rows a client trained on in its last local training: "train_rows" of the last line of its
 * --metrics-json file (the rows left after its --val-fraction share is held out for validation;
 * augmented rows are not counted). 0 when it never trained. */
long sim_client_train_rows(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    long rows = 0;
    while (getline(&line, &cap, f) > 0) {
        const char *p = strstr(line, "\"train_rows\":");
        if (p)
            rows = strtol(p + strlen("\"train_rows\":"), NULL, 10);
    }
    free(line);
    fclose(f);
    return rows > 0 ? rows : 0;
}

/* ---- baselines ------------------------------------------------------------------------------ */

/* Trains a model on a copy of train (standardised with its own statistics) as fedc train would,
 * and scores it on the raw test set. */
int sim_train_and_score(result *r, const fedc_arch *arch, const fedc_dataset *train,
                        const fedc_dataset *test, const fedc_train_cfg *base, int auto_pw,
                        int keep) {
    fedc_model *m = NULL;
    fedc_dataset *t = NULL;
    float *pred = NULL;
    int rc = -1;
    int *idx = malloc(sizeof(int) * (size_t)train->n_rows);
    if (!idx || fedc_model_new(&m, arch))
        goto out;
    for (int i = 0; i < train->n_rows; i++)
        idx[i] = i;
    if (fedc_dataset_subset(&t, train, idx, train->n_rows))
        goto out;
    fedc_dataset_stats(m->mean, m->std, t);
    fedc_dataset_standardize(t, m->mean, m->std);
    fedc_model_init(m, base->seed);
    fedc_train_cfg cfg = *base;
    if (auto_pw)
        cfg.pos_weight = fedc_dataset_pos_weight(t);
    fedc_train_report rep;
    fedc_diag d;
    if (fedc_train(m, t, NULL, &cfg, &rep, &d)) {
        fprintf(stderr, "fedc sim: training %s: %s\n", r->name, d.msg);
        goto out;
    }
    pred = malloc(4 * (size_t)test->n_rows * (size_t)fedc_model_out_width(m));
    if (!pred || fedc_model_predict(pred, m, test->x, test->n_rows) ||
        cli_compute_metrics(&r->mt, m, pred, test, 0.5f))
        goto out;
    r->rows = train->n_rows;
    r->ok = 1;
    rc = 0;
    if (keep) {
        r->pred = pred;
        pred = NULL;
    }
out:
    free(idx);
    free(pred);
    fedc_dataset_destroy(&t);
    fedc_model_destroy(&m);
    return rc;
}

void sim_print_row(const result *r) {
    if (!r->ok) {
        printf("  %-24s %9d   (failed)\n", r->name, r->rows);
        return;
    }
    const cli_metrics *m = &r->mt;
    switch (m->task) {
    case FEDC_TASK_BINARY:
        printf("  %-24s %9d   %7.4f  %7.4f  %8.4f  %9.4f  %6.4f  %6.4f", r->name, r->rows,
               m->bin.roc_auc, m->bin.pr_auc, m->bin.accuracy, m->bin.precision, m->bin.recall,
               m->bin.f1);
        if (!isnan(r->alert_recall))
            printf("  %12.4f", r->alert_recall);
        printf("\n");
        break;
    case FEDC_TASK_MULTICLASS:
        printf("  %-24s %9d   %8.4f  %8.4f  %8.4f\n", r->name, r->rows, m->mc.accuracy,
               m->mc.macro_f1, m->mc.log_loss);
        break;
    case FEDC_TASK_REGRESSION:
        printf("  %-24s %9d   %8.4f  %8.4f\n", r->name, r->rows, m->reg.rmse, m->reg.r2);
        break;
    }
}

/* One result as a JSON object (fedc/jsonl.h: names escaped, non-finite figures null), or NULL
 * when out of memory. */
static cJSON *json_row(const result *r) {
    const cli_metrics *m = &r->mt;
    fedc_json j;
    fedc__json_begin(&j);
    fedc__json_str(&j, "name", r->name);
    fedc__json_int(&j, "rows", r->rows);
    fedc__json_bool(&j, "ok", r->ok);
    if (r->ok) {
        if (m->task == FEDC_TASK_BINARY) {
            fedc__json_fixed(&j, "roc_auc", m->bin.roc_auc, 6);
            fedc__json_fixed(&j, "pr_auc", m->bin.pr_auc, 6);
            fedc__json_fixed(&j, "accuracy", m->bin.accuracy, 6);
            fedc__json_fixed(&j, "f1", m->bin.f1, 6);
            if (!isnan(r->alert_recall))
                fedc__json_fixed(&j, "recall_at_alert_budget", r->alert_recall, 6);
        } else if (m->task == FEDC_TASK_MULTICLASS) {
            fedc__json_fixed(&j, "accuracy", m->mc.accuracy, 6);
            fedc__json_fixed(&j, "macro_f1", m->mc.macro_f1, 6);
        } else {
            fedc__json_fixed(&j, "rmse", m->reg.rmse, 6);
            fedc__json_fixed(&j, "r2", m->reg.r2, 6);
        }
    }
    if (j.failed) {
        fedc__json_end(&j);
        return NULL;
    }
    return j.obj;
}

/* --summary-json: the whole summary on one line, replaced atomically. Returns 0 or -1 (said). */
int sim_write_summary(const char *path, fedc_task task, int test_rows, const result *res,
                      int n_shards, int baselines) {
    fedc_json j;
    fedc__json_begin(&j);
    fedc__json_str(&j, "task", fedc_task_name(task));
    fedc__json_int(&j, "test_rows", test_rows);
    fedc__json_item(&j, "federated", json_row(&res[0]));
    /* Only the models trained: --baselines central or none leaves the others out rather than
     * writing rows for them. */
    if (baselines >= 1)
        fedc__json_item(&j, "centralised", json_row(&res[1]));
    cJSON *clients = baselines >= 2 ? cJSON_CreateArray() : NULL;
    for (int i = 0; clients && i < n_shards; i++) {
        cJSON *row = json_row(&res[2 + i]);
        if (!row || !cJSON_AddItemToArray(clients, row)) {
            cJSON_Delete(row);
            cJSON_Delete(clients);
            clients = NULL;
        }
    }
    if (baselines >= 2)
        fedc__json_item(&j, "clients", clients);
    int ret = cli_write_json(CMD, "--summary-json", path, &j);
    fedc__json_end(&j);
    return ret;
}

void sim_rm_rf(const char *dir, char **files, char **names) {
    if (strlen(dir) > 1024)
        return;
    for (int i = 0; files && files[i]; i++)
        unlink(files[i]);
    const char *fixed[] = {"pool.csv",        "global.fedc",  "coordinator.log",
                           "coordinator.out", "rounds.jsonl", NULL};
    char p[PATH_MAX];
    for (int i = 0; fixed[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, fixed[i]);
        unlink(p);
    }
    for (int i = 0; i <= MAX_SIM_CLIENTS; i++) {
        char name[80];
        if (i && names && !names[i - 1])
            break;
        if (i && names)
            snprintf(name, sizeof name, "%s", names[i - 1]);
        else
            snprintf(name, sizeof name, i ? "client-%d" : "coordinator", i);
        snprintf(p, sizeof p, "%s/%s.log", dir, name);
        unlink(p);
        snprintf(p, sizeof p, "%s/%s.out", dir, name);
        unlink(p);
        snprintf(p, sizeof p, "%s/keys/%s.key", dir, name);
        unlink(p);
        snprintf(p, sizeof p, "%s/keys/%s.key_secret", dir, name);
        unlink(p);
        snprintf(p, sizeof p, "%s/allow/%s.key", dir, name);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/keys", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/allow", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/shards", dir);
    rmdir(p);
    rmdir(dir);
}

/* ---- given shards ---------------------------------------------------------------------------- */

/* The given shards (fedc demo's banks), each loaded once into shard_ds[i] (kept for its own
 * baseline) and pooled in memory into *pool: the "whole" data, for the schema, the task and the
 * centralised model. Pooled here rather than through a concatenated CSV file in the work
 * directory, which doubled the disk the demo's data takes. */
int sim_load_given(fedc_dataset **pool, fedc_dataset **shard_ds, char *const *files, int n,
                   const char *label, char **drop, int n_drop, const fedc_encoding *enc) {
    fedc_diag d;
    long total = 0;
    for (int i = 0; i < n; i++) {
        if (fedc_csv_load_enc(&shard_ds[i], files[i], label, (const char *const *)drop, n_drop, enc,
                              &d)) {
            cli_error(CMD, "%s", d.msg);
            return -1;
        }
        const fedc_dataset *a = shard_ds[0], *b = shard_ds[i];
        int same = a->n_features == b->n_features && strcmp(a->label_name, b->label_name) == 0;
        for (int j = 0; same && j < a->n_features; j++)
            same = strcmp(a->feature_names[j], b->feature_names[j]) == 0;
        if (!same) {
            cli_error(CMD, "%s: its columns differ from %s's", files[i], files[0]);
            return -1;
        }
        total += b->n_rows;
    }
    int nf = shard_ds[0]->n_features;
    if (total > INT_MAX || fedc_dataset_new(pool, (int)total, nf)) {
        cli_error(CMD, "%ld rows in the shards: out of memory", total);
        return -1;
    }
    fedc_dataset *p = *pool;
    p->feature_names = calloc((size_t)(nf > 0 ? nf : 1), sizeof *p->feature_names);
    p->label_name = strdup(shard_ds[0]->label_name);
    int bad = !p->feature_names || !p->label_name;
    for (int j = 0; !bad && j < nf; j++)
        bad = !(p->feature_names[j] = strdup(shard_ds[0]->feature_names[j]));
    if (bad) {
        cli_error(CMD, "out of memory");
        return -1;
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        const fedc_dataset *b = shard_ds[i];
        memcpy(p->x + at * (size_t)nf, b->x, sizeof(float) * (size_t)b->n_rows * (size_t)nf);
        memcpy(p->y + at, b->y, sizeof(float) * (size_t)b->n_rows);
        at += (size_t)b->n_rows;
    }
    return 0;
}
