/* The federation runner behind `fedc sim` and `fedc demo`: a coordinator and one client process
 * per shard on loopback TCP (CurveZMQ with generated keys, secure aggregation unless turned
 * off), then the same model trained on the pooled shards and on each shard alone, all scored on
 * one test set. */
#ifndef FEDC_CLI_SIM_H
#define FEDC_CLI_SIM_H

#include <stddef.h>

typedef struct sim_opts {
    const char *data, *label, *drop, *split, *metrics, *summary, *work_dir;
    int clients, threads, quiet, insecure;
    float test_fraction;
    /* passed through */
    int rounds, local_epochs, batch;
    const char *layers, *activation, *optimizer, *server_opt, *pos_weight;
    const char *lr, *prox_mu, *server_lr, *fraction_fit, *val_fraction, *round_timeout;
    const char *secagg;
    unsigned long long seed;
    /* Shards given instead of --data/--split (fedc demo): the clients are named after the files
     * (bank-a.csv -> bank-a) and the models are scored on test_file. With shards and no test_file
     * (fedc tune's trials) only the federation runs: no test set is read, no baseline trained,
     * no table printed; its validation metrics are in the metrics file. */
    char **shard_files; /* NULL-terminated */
    const char *test_file;
    int port;            /* the coordinator's loopback port (0: a free one) */
    double alert_budget; /* share of transactions flagged for the recall column (0: none) */
    const char *report;  /* write an HTML report here (binary tasks) */
    const char *title;   /* the report's title */
    /* Flags handed on as they are (the programs check them): to the coordinator (robust
     * aggregation, client-level DP) and to every client (record-level DP-SGD). */
    const char *coord_extra[96];
    int n_coord_extra;
    const char *client_extra[16];
    int n_client_extra;
    int baselines; /* 2: centralised and each client alone; 1: centralised only; 0: none */
    const char *dp_state_dir; /* each client's --dp-state file goes here (NAME.dpstate) */
    /* The loader flags (loadopts.h), or NULL for the defaults, and those given, as flag/value
     * pairs: handed to every client of given shards, which load their files themselves. With
     * --data the shards are written from the encoded rows (numbers; missing cells as NaN under
     * --missing mean), so the clients get only --missing mean --missing-indicators none and
     * --features-spec. The model's recipe is then rewritten with the flags' encoding. */
    const struct fedc_load_opts *load;
    const char *load_flags[16];
    int n_load_flags;
} sim_opts;

/* Defaults of `fedc sim`. */
void sim_defaults(sim_opts *o);

/* Runs it; returns the exit code. */
int sim_run(const sim_opts *o);

/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int sim_free_port(void);

/* sim_names.c: the client name for a given shard file: its base name without the extension,
 * each byte outside A-Z a-z 0-9 . _ - (and a leading '.' or '-') turned into '_', cut to the
 * longest key name (EDUCATION=1.csv -> EDUCATION_1). */
void sim_client_name(char *out, size_t cap, const char *path);
/* Fills names[0..n) with the files' client names (strdup); -1 after an error naming the two
 * files when two would get the same name (compared without case), or on out of memory. */
int sim_shard_names(const char *cmd, char *const *files, int n, char **names);

#endif
