/* fedc tune's search, without the processes: the configurations it draws, the rungs of successive
 * halving, which trials go on to the next rung, the ranking, the table and the config file it
 * writes. cmd_tune.c runs the trials (each a federation, cli/sim.h) and fills in their results.
 *
 * Random search (Bergstra & Bengio, JMLR 2012) with successive halving (Jamieson & Talwalkar,
 * AISTATS 2016; as one bracket of Hyperband, Li et al., JMLR 2018): every trial runs the first
 * rung's rounds, the best 1/eta of them run eta times as many rounds, and so on up to --rounds.
 * A promoted trial starts again from the initial model (it is a new federation with more rounds),
 * which keeps every run reproducible from its configuration alone. Deliberately left out: the
 * other brackets of Hyperband, and any model of the search space (Bayesian optimisation). */
#ifndef FEDC_CLI_TUNE_H
#define FEDC_CLI_TUNE_H

#include <stdint.h>
#include <stdio.h>

#define TUNE_MAX_RUNGS 3

/* What became of one run of a trial at one rung. */
typedef enum tune_state {
    TUNE_NOT_RUN = 0, /* not promoted to this rung (or the budget ran out before it started) */
    TUNE_OK,          /* finished: value and best_round are set */
    TUNE_FAILED,      /* the federation failed, or gave no value for the metric */
    TUNE_CUT          /* stopped when the budget ran out */
} tune_state;

/* One configuration and its results per rung. */
typedef struct tune_trial {
    int id;      /* 1-based; trial 1 is the coordinator's defaults */
    char opt[8]; /* adam | sgd */
    char lr[16]; /* as handed to the coordinator: 3 significant digits */
    int local_epochs;
    int batch;
    char layers[32]; /* "25", "64,32" */
    tune_state state[TUNE_MAX_RUNGS];
    double value[TUNE_MAX_RUNGS]; /* the metric at the run's best round */
    int best_round[TUNE_MAX_RUNGS];
    double seconds[TUNE_MAX_RUNGS];
} tune_trial;

/* The metric that judges trials. */
typedef struct tune_metric {
    const char *name; /* pr_auc | roc_auc | loss: the coordinator's --select-metric */
    int higher;       /* 1: higher is better */
} tune_metric;

/* Trial `id` (1-based) drawn with seed: id 1 takes the given defaults (optimizer, lr, local
 * epochs, batch and layers as the option table has them, borrowed), every other id is drawn
 * from the search space with a stream of its own, so trial k is the same whatever the number of
 * trials. Returns 0, or -1 when a default does not fit the trial's fields. */
int tune_draw(tune_trial *t, int id, uint64_t seed, const char *def_opt, const char *def_lr,
              int def_local_epochs, int def_batch, const char *def_layers);

/* The rounds of each rung into rounds[TUNE_MAX_RUNGS], the last being total: up to 3 rungs, each
 * eta times the one before, as many as give the first at least one round. Returns the number of
 * rungs (1..3). */
int tune_rungs(int *rounds, int total, int eta);

/* How many of n trials go on to the next rung: floor(n / eta), at least 1. */
int tune_keep(int n, int eta);

/* Whether value a is strictly better than b (NaN is worse than anything). */
int tune_better(double a, double b, int higher);

/* The trial's best result: its value at the highest rung it finished (each rung reruns the
 * earlier rounds, so that value is at least as good), in *rung; NaN and -1 when none. */
double tune_result(const tune_trial *t, int *rung);

/* Sorts ids (indices into trials) by the trials' value at rung `rung`, best first; failed and
 * missing values last; ties by trial id. */
void tune_sort_rung(int *ids, int n, const tune_trial *trials, int rung, int higher);

/* Sorts ids by tune_result, best first; then by the higher rung; then by trial id. */
void tune_rank(int *ids, int n, const tune_trial *trials, int higher);

/* Prints the ranked table: rank, trial, configuration, the value at each rung, the best round
 * of the last rung run, seconds; trials that never started are counted in one line at the end.
 * ids is the ranking of tune_rank. */
void tune_print_table(FILE *f, const tune_trial *trials, const int *ids, int n, const int *rounds,
                      int n_rungs, const tune_metric *m);

/* The config file for trial t's best result (tune_result): a [coordinator] section whose keys
 * are fedc-coordinator's options (rounds: the trial's best round, so that the file reproduces the
 * model that was judged), led by comments saying where it came from. seed, val_fraction and
 * pos_weight are the search's own settings, written too; secure aggregation is left to the
 * federation. rounds_run: the rounds of each rung (tune_rungs). header (may be NULL) is added
 * as comment lines. Writes it to path atomically.
 * Returns 0, or -1 after a message. */
int tune_write_config(const char *path, const tune_trial *t, const int *rounds_run,
                      const tune_metric *m, uint64_t seed, const char *val_fraction,
                      const char *pos_weight, const char *header);

#endif
