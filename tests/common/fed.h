/* Test helpers for running a whole federation as local processes: one fedc-coordinator and a few
 * fedc-client processes on loopback TCP, each with its own log files in a private temporary
 * directory; German credit shards; the per-round metrics file parsed into structs; and a cleanup
 * that kills and reaps every process still running (stopped ones included) and prints the logs of
 * a failed test. Built on proc.h; like it, reports problems on stderr and as -1, never by
 * aborting, so the test framework reports the failing check. Deliberately left out: CurveZMQ keys,
 * remote hosts, more than FED_MAX_CLIENTS clients. */
#ifndef FEDC_TEST_FED_H
#define FEDC_TEST_FED_H

#include <stddef.h>

#include "proc.h"

#define FED_MAX_CLIENTS 16
#define FED_MAX_ARGS 64

#define FED_GERMAN FEDC_SOURCE_DIR "/tests/fixtures/german_credit/german_credit_numeric.csv"

/* One spawned program. */
typedef struct fed_proc {
    int pid;         /* > 0 while started and not yet reaped */
    char name[65];   /* client name, or "coordinator" */
    char *out, *err; /* log files (stdout, stderr), owned; appended across restarts */
    proc_result res; /* how it ended, after fed_wait */
} fed_proc;

typedef struct fed {
    char *dir; /* private temporary directory, owned, removed by fed_release */
    const char *coord_bin, *client_bin;
    int port;
    char endpoint[64]; /* tcp://127.0.0.1:PORT */
    fed_proc coord;
    fed_proc cl[FED_MAX_CLIENTS];
    int n_cl;
} fed;

/* Creates the directory (name starts with prefix) and picks a free loopback port, different in
 * every call of this process and spread by the process id across concurrent test programs. The
 * binaries are borrowed. Returns 0 or -1. */
int fed_init(fed *f, const char *prefix, const char *coord_bin, const char *client_bin);

/* Kills (SIGKILL) and reaps every process still running, stopped ones included; prints the logs
 * when show_logs is set; removes the directory (kept, and its path printed, when the environment
 * variable FED_KEEP is set, for debugging). Safe on a zeroed or partly initialised fed. */
void fed_release(fed *f, int show_logs);

/* A path inside the federation's directory (caller frees), or NULL when out of memory. */
char *fed_path(const fed *f, const char *name);

/* Writes the German credit fixture as n shards dir/<prefix><k>.csv, data row i going to shard
 * i % n, each with the header line. Returns 0 or -1. */
int fed_write_shards(const fed *f, int n, const char *prefix);

/* Starts the coordinator with --bind on the federation's port, the NULL-terminated args after it
 * and env_extra ("NAME=value", NULL-terminated, may be NULL) added to a default environment of
 * OMP_NUM_THREADS=1 (with FED_SECURE=1 among them, --insecure is left out: the caller passes
 * keys). Waits up to timeout_s until it logs that it listens. On a fresh start
 * (resume == 0) a port another program took in between is replaced by a new one and the start
 * retried. Returns 0, or -1 when it did not come up (it is reaped then). */
int fed_start_coord(fed *f, const char *const *env_extra, const char *const *args, int resume,
                    int timeout_s);

/* Starts a client named `name` on csv (label column `bad`), connecting to the coordinator, with
 * --heartbeat-ms 200 and --coordinator-timeout 40, then the NULL-terminated args (may be NULL),
 * and env_extra as for fed_start_coord. Returns its index in f->cl, or -1. */
int fed_start_client(fed *f, const char *name, const char *csv, const char *const *env_extra,
                     const char *const *args);

/* Waits up to timeout_s for p to end (then kills it) and fills p->res. Returns 0, or -1 when the
 * process was not running. */
int fed_wait(fed_proc *p, int timeout_s);

/* Waits up to timeout_s until the file at path contains needle at or after byte `from`. Gives up
 * early when pid (if > 0) is no longer running. Returns 0 when found, -1 otherwise. */
int fed_wait_text(const char *path, const char *needle, size_t from, int pid, int timeout_s);

/* Size of a file in bytes (0 when it does not exist). */
size_t fed_file_size(const char *path);

/* 1 when the file at path contains needle, else 0. */
int fed_file_has(const char *path, const char *needle);

/* One line of the coordinator's --metrics-json file. */
typedef struct fed_round {
    long round;
    int participants, selected;
    double train_loss;  /* NaN when null */
    double val_roc_auc; /* NaN when null */
    double seconds;     /* the round's wall time (NaN when absent) */
    int abandoned;      /* a secure round abandoned after unmasking began */
    int excluded;       /* members excluded so far for bad round keys or rosters */
} fed_round;

/* Parses the metrics file into out (at most max lines). Returns the number of lines, or -1 when
 * the file cannot be read or a line is not a complete JSON object with a round. */
int fed_read_metrics(const char *path, fed_round *out, int max);

/* Looks up "key":<number> in a one-line JSON object: 1 and *v, 0 for null, -1 when absent. */
int fed_json_num(const char *json, const char *key, double *v);

/* The number under key in line i (from 0) of a metrics file; NaN when the file, the line or the
 * key is missing, or the value is null. */
double fed_metric_at(const char *path, int i, const char *key);

/* Deals the data rows of the CSV src to n shards in the federation's directory, row r to
 * PREFIX{r % n}.csv, each with the header, whose column named label is renamed to "bad" (the label
 * fed_start_client passes). 0, or -1 when src cannot be read, has no such column or a shard cannot
 * be written. */
int fed_deal_rows(const fed *f, const char *src, const char *label, int n, const char *prefix);

#endif
