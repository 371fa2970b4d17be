/* bench_scale's parts shared by its two files: reading a process's CPU time and memory from
 * /proc, medians, and the ZeroMQ baseline (bench_scale_base.c). */
#ifndef FEDC_BENCH_SCALE_H
#define FEDC_BENCH_SCALE_H

#include <stddef.h>

/* A field of /proc/PID/status in kB ("VmHWM:", "VmRSS:"), or -1. pid 0: this process. */
long bs_status_kb(int pid, const char *field);

/* CPU seconds a process (all its threads) has used so far, from its CPU-time clock
 * (clock_getcpuclockid), or -1. pid 0: this process. */
double bs_cpu_s(int pid);

/* Median of v[0..n) (sorted in place); -1 when n is 0. */
double bs_median(double *v, int n);

/* What one round of the baseline moves per client: the model down twice (fit_bytes, then
 * eval_bytes), the update up once (up_bytes), a small answer to the second. */
typedef struct bs_base_cfg {
    int port;
    int n_clients;
    int rounds;
    size_t fit_bytes, eval_bytes, up_bytes;
    size_t max_msg; /* the coordinator's --max-msg-mb, in bytes */
} bs_base_cfg;

/* Runs the baseline: a ROUTER child process (this program again, bs_router_main) against
 * n_clients DEALERs here. *cpu_ms and *wall_ms get the ROUTER's median CPU time and wall time per
 * round over rounds 2..last. Returns 0, or -1 with the reason on stderr. */
int bs_baseline_run(const bs_base_cfg *b, double *cpu_ms, double *wall_ms);

/* The child's main (argv after "--router"): binds, moves the rounds' bytes, prints its figures on
 * stdout. Returns the exit code. */
int bs_router_main(int argc, char **argv);

#endif
