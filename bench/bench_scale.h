/* bench_scale's parts shared by its files: reading a process's CPU time and memory from /proc,
 * medians, the ZeroMQ baseline of the round's bytes (bench_scale_base.c) and the baseline of its
 * messages (bench_scale_msgs.c). */
#ifndef FEDC_BENCH_SCALE_H
#define FEDC_BENCH_SCALE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fedc/transport.h"

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

/* ---- the parts both baselines share (bench_scale_base.c) ---- */

#define BS_ID_MAX 256       /* ZeroMQ's routing ids are at most 255 bytes */
#define BS_DEALER_THREADS 2 /* threads answering for the clients */

/* In the ROUTER child: a ROUTER bound to 127.0.0.1:port with the coordinator's own setup
 * (fedc_net_bind: its context, high-water marks, message bound, linger, ROUTER_MANDATORY). Returns
 * its socket, or NULL (said on stderr). */
void *bs_router_open(int port, size_t max_msg, void **zctx, fedc_endpoint **ep);
/* Receives n messages (routing id + body) on the ROUTER s: the ids go to ids/id_len and the
 * bodies' bytes are added to *bytes, each when given. 0, or -1. */
int bs_recv_n(void *s, int n, uint8_t (*ids)[BS_ID_MAX], size_t *id_len, uint64_t *bytes);
void bs_router_close(void **zctx, fedc_endpoint **ep);

/* Starts this program again with av (av[1] "--router..."), its stdout into *fd. Returns its pid, or
 * -1 (said on stderr). */
pid_t bs_router_spawn(char *const *av, int *fd);

/* Reads the child's "CPU_MS WALL_MS" line from fd (closed) and reaps it. 0, or -1 (said). */
int bs_router_wait(pid_t pid, int fd, double *cpu_ms, double *wall_ms);

/* n DEALERs, each in a ZeroMQ context of its own (*ctx), as each library client has, connected to
 * 127.0.0.1:port, linger 0; NULL when one cannot be made. */
void **bs_dealers_open(int n, int port, void ***ctx);
void bs_dealers_close(void **socks, void **ctx, int n);

/* ---- the baseline of the round's messages (bench_scale_msgs.c) ---- */

#define BM_KINDS 64 /* message kinds (fedc_msg_kind is below 64) */
#define BM_NAME 32

/* The last round's messages and bytes by kind from the coordinator's metrics line, totals over
 * the clients: [training in, training out, evaluation in, evaluation out]. */
typedef struct bm_plan {
    int n;
    char name[BM_KINDS][BM_NAME];
    uint64_t msgs[BM_KINDS][4], bytes[BM_KINDS][4];
} bm_plan;

/* Reads "bytes_by_kind" and "msgs_by_kind" of a metrics line into p. 0, or -1 (said on stderr)
 * when either is missing or they disagree (other kinds, bytes without messages). */
int bm_parse(const char *line, bm_plan *p);

/* Prints p per client (n clients), bytes then messages by kind (bench_scale --by-kind). */
void bm_print(const bm_plan *p, int n);

/* Runs the message baseline: a ROUTER child process (bm_router_main) against n DEALERs here,
 * replaying per client and round p's messages (counts and sizes by kind) in a request/answer
 * rhythm, rounds times. *cpu_ms and *wall_ms get the ROUTER's median CPU time and wall time per
 * round over rounds 2..last. Returns 0, or -1 with the reason on stderr. */
int bm_baseline_run(const bm_plan *p, int port, int n, int rounds, size_t max_msg, double *cpu_ms,
                    double *wall_ms);

/* The child's main (argv after "--router-msgs"). Returns the exit code. */
int bm_router_main(int argc, char **argv);

#endif
