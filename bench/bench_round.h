/* bench_round's simulated clients (bench_round_sim.c), shared with its driver (bench_round.c). */
#ifndef FEDC_BENCH_ROUND_H
#define FEDC_BENCH_ROUND_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/codec.h"
#include "fedc/keys.h"
#include "fedc/sa_proto.h"

#define N_FEATURES 30

typedef struct sim {
    void *zctx; /* shared: one I/O thread for all simulated clients */
    const char *addr;
    int idx;
    size_t n_params;
    const float *update; /* shared, read-only */
    int done;
    /* secure aggregation: the session in progress */
    fedc_sa_client sa;
    uint64_t counter;
    uint32_t round;
    uint32_t *vec;
    size_t len;
    int collected, ready;
    /* streamed tensors (protocol 3): weights pulled in chunks, our update or masked vector served
     */
    uint64_t chunk; /* values per chunk: the coordinator's bound (Welcome) */
    int dl_stream;  /* FEDC_STREAM_FIT / _EVAL while pulling, else 0 */
    uint32_t dl_round;
    uint64_t dl_total, dl_next, dl_recv;
    int dl_inflight, dl_has_sa;
    Fedc__SecAggIns dl_sa;
    int train_ms;   /* simulated local training before answering a fit instruction */
    double *fit_at; /* (max_round + 1): when the fit instruction of each round arrived */
    uint32_t max_round;
    /* One simulated client (coord_pid > 0) reads the coordinator's memory and CPU time when the
     * next round's fit instruction (or the final Bye) shows that a round is over: index r holds
     * the state after round r, (max_round + 1) each. At a fixed sampling period a fast run could
     * end between two samples. */
    int coord_pid;
    long *rss_after, *hwm_after;
    double *cpu_after;
    const fedc_identity *self, *coord; /* CurveZMQ (--curve), else NULL */
    char err[FEDC_DIAG_MAX + 64];
} sim;

/* The feature names the simulated clients declare ("f0" ..), set by the driver. */
extern char *g_names[N_FEATURES];

/* One simulated client's thread (arg: its sim); s->err says why it stopped early. */
void *sim_main(void *arg);

/* A field of /proc/PID/status in kB ("VmRSS:", "VmHWM:"), or -1. */
long rss_kb(int pid, const char *field);

/* CPU seconds (user + system) process pid has used so far, or -1. */
double cpu_s(int pid);

#endif
