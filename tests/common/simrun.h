/* Test helpers around `fedc sim`: one federation of real processes with its logs, metrics,
 * summary and model collected, and the small JSON lookups the tests make on them. Errors are
 * reported as NULL fields or NaN, never by aborting, so the calling test reports the check. */
#ifndef FEDC_TEST_SIMRUN_H
#define FEDC_TEST_SIMRUN_H

#include "fedc/model.h"

/* What one `fedc sim` produced. Every string is owned and may be NULL (file not written). */
typedef struct sim_out {
    int status;           /* fedc sim's exit code (-1 when it did not exit normally) */
    char *out, *err;      /* its stdout and stderr */
    char *coord_log;      /* the coordinator's log */
    char *client_log;     /* client-1's log */
    char *client_metrics; /* client-1's --metrics-json lines */
    char *metrics;        /* the coordinator's metrics lines */
    char *summary;        /* --summary-json */
    fedc_model *model;
} sim_out;

/* Runs `fedc sim --baselines none --quiet` with a work directory, summary and metrics files of
 * its own, then the NULL-terminated args; FEDC_FAULT=fault (NULL: none) and OMP_NUM_THREADS=1 in
 * the environment. Removes the directory afterwards. */
sim_out simrun(const char *fedc, const char *const *args, const char *fault, int timeout_s);
void simrun_free(sim_out *o);

/* The number after "key": inside the object that follows "section": (NaN if absent). */
double simrun_json_num(const char *json, const char *section, const char *key);
/* The number after "key": in one metrics line (NaN if absent). */
double simrun_line_num(const char *line, const char *key);
/* The i-th line (0-based) of text, copied (caller frees), or NULL. */
char *simrun_nth_line(const char *text, int i);
/* How many times needle occurs in s (0 for a NULL s). */
int simrun_count(const char *s, const char *needle);
/* `fedc privacy --q Q --sigma S --steps T --delta 1e-5`'s epsilon (NaN if it fails). */
double simrun_privacy(const char *fedc, double q, double sigma, int steps);

#endif
