/* fedc sim's parts (cmd_sim.c: the command and the run; sim_base.c: the process and file helpers,
 * the in-process baselines and the loading of given shards), shared between them. Inside the fedc
 * program only. */
#ifndef FEDC_CLI_SIM_INT_H
#define FEDC_CLI_SIM_INT_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "cli.h"
#include "sim.h"
#include "fedc/data.h"
#include "fedc/model.h"
#include "fedc/train.h"

/* fedc sim starts a process per client: at most this many (the option table's --clients range
 * is fedc split's, up to 10000). */
#define MAX_SIM_CLIENTS 1000

/* One model's row of the table: the federated one, the centralised one, or a client alone. */
typedef struct result {
    char name[64];
    int rows;
    cli_metrics mt;
    int ok;
    float *pred;         /* binary: the test scores, kept for the report */
    double alert_recall; /* recall when the top alert-budget share is flagged, or NaN */
} result;

/* ---- helpers (sim_base.c) */

/* The path of the program `name` (fedc-coordinator, fedc-client) into out: env's when set,
 * else next to this program, else in ../build_sub of a build tree. 0 when executable, else -1. */
int sim_find_program(char *out, size_t cap, const char *env, const char *name,
                     const char *build_sub);
/* Writes ds as CSV that the clients' loader reads back exactly. 0 or -1. */
int sim_write_csv(const char *path, const fedc_dataset *ds);
/* Starts argv[0] with stdout to log_out (kept when NULL), stderr to log_err and OMP_NUM_THREADS
 * threads; returns the child's pid (or -1 when fork failed). */
pid_t sim_spawn(char *const argv[], const char *log_out, const char *log_err, int threads);
/* Copies the file (a log) to `to`; nothing when it cannot be read. */
void sim_print_file(const char *path, FILE *to);
/* The federation's keys in dir (coordinator and names[0..n)); 0 or -1 (said). */
int sim_make_keys(const char *dir, char *const *names, int n);
/* The rows a client trained on, from its --metrics-json file; 0 when it never trained. */
long sim_client_train_rows(const char *path);
/* Removes what a run left in its own temporary work directory, then the directory. */
void sim_rm_rf(const char *dir, char **files, char **names);

/* ---- baselines (sim_base.c) */

/* Trains a model on train as fedc train would and scores it on test into r; keep: r->pred keeps
 * the test scores. 0 or -1. */
int sim_train_and_score(result *r, const fedc_arch *arch, const fedc_dataset *train,
                        const fedc_dataset *test, const fedc_train_cfg *base, int auto_pw,
                        int keep);
/* One row of the printed table. */
void sim_print_row(const result *r);
/* --summary-json: res[0] federated, res[1] centralised, res[2..] the clients. 0 or -1 (said). */
int sim_write_summary(const char *path, fedc_task task, int test_rows, const result *res,
                      int n_shards, int baselines);

/* ---- given shards (sim_base.c) */

/* Loads the n given shard files into shard_ds[0..n) and pools their rows into *pool; -1 (said)
 * when one cannot be read, their columns differ, or out of memory. */
int sim_load_given(fedc_dataset **pool, fedc_dataset **shard_ds, char *const *files, int n,
                   const char *label, char **drop, int n_drop, const fedc_encoding *enc);

#endif
