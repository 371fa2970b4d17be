/* bench_scale's baseline: the cost of only receiving and sending a round's bytes over ZeroMQ.
 *
 * A ROUTER in a process of its own (this program run again with --router, so that its CPU time
 * is read the same way as the coordinator's, from its CPU-time clock) bound with the coordinator's
 * own socket setup (fedc_net_bind: the same ZeroMQ context, high-water mark, message bound, linger
 * and ROUTER_MANDATORY), and one DEALER per client in this process. A round: the ROUTER sends the
 * model's bytes to every client (one buffer, sent zero-copy to all, as the coordinator does),
 * receives every client's update, sends the evaluation message's bytes to every client and
 * receives a small answer from each. Nothing is decoded, checked or added: that is the
 * coordinator's work that the ratio of the two CPU times shows. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_scale.h"
#include "fedc/clock.h"
#include "fedc/transport.h"

#define EVAL_ANSWER 64 /* bytes of a client's answer to the evaluation message */
#define ID_MAX BS_ID_MAX

long bs_status_kb(int pid, const char *field) {
    char path[64], line[256];
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%d/status", pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0)
            v = strtol(line + fl, NULL, 10);
    fclose(f);
    return v;
}

/* utime + stime of /proc/PID/stat count in clock ticks (10 ms), too coarse for a round of a few
 * milliseconds; the process's CPU-time clock has nanoseconds and counts every thread, also those
 * that have ended (summing /proc/PID/task/TID/schedstat would lose those). The same for the
 * coordinator and the baseline. */
double bs_cpu_s(int pid) {
    clockid_t clk = CLOCK_PROCESS_CPUTIME_ID;
    struct timespec ts;
    if ((pid > 0 && clock_getcpuclockid((pid_t)pid, &clk) != 0) || clock_gettime(clk, &ts) != 0)
        return -1;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bs_median(double *v, int n) {
    if (n <= 0)
        return -1;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void no_free(void *data, void *hint) {
    (void)data;
    (void)hint;
}

/* Sends buf to every client, zero-copy (ZeroMQ holds a reference to the one buffer). */
static int send_all(void *s, uint8_t (*ids)[ID_MAX], const size_t *id_len, int n, uint8_t *buf,
                    size_t bytes) {
    for (int i = 0; i < n; i++) {
        zmq_msg_t m;
        if (zmq_send(s, ids[i], id_len[i], ZMQ_SNDMORE) < 0 ||
            zmq_msg_init_data(&m, buf, bytes, no_free, NULL) != 0)
            return -1;
        if (zmq_msg_send(&m, s, 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
    }
    return 0;
}

int bs_recv_n(void *s, int n, uint8_t (*ids)[ID_MAX], size_t *id_len, uint64_t *bytes) {
    for (int got = 0; got < n; got++) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, s, 0) < 0 || !zmq_msg_more(&id) || zmq_msg_recv(&body, s, 0) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&body);
            return -1;
        }
        if (bytes)
            *bytes += zmq_msg_size(&body);
        if (ids) {
            id_len[got] = zmq_msg_size(&id) < ID_MAX ? zmq_msg_size(&id) : ID_MAX;
            memcpy(ids[got], zmq_msg_data(&id), id_len[got]);
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
    }
    return 0;
}

void *bs_router_open(int port, size_t max_msg, void **zctx, fedc_endpoint **ep) {
    char addr[64];
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", port);
    fedc_diag d;
    *zctx = fedc_net_context_new();
    *ep = NULL;
    if (!*zctx || fedc_net_bind(ep, *zctx, addr, max_msg, &d)) {
        fprintf(stderr, "router: %s\n", *zctx ? d.msg : "no ZeroMQ context");
        fedc_net_context_free(zctx);
        return NULL;
    }
    return fedc_net_socket(*ep);
}

void bs_router_close(void **zctx, fedc_endpoint **ep) {
    fedc_net_close(ep);
    fedc_net_context_free(zctx);
}

int bs_router_main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "bench_scale --router PORT CLIENTS ROUNDS FIT EVAL MAX_MSG\n");
        return 2;
    }
    int port = atoi(argv[0]), n = atoi(argv[1]), rounds = atoi(argv[2]);
    size_t fit = strtoull(argv[3], NULL, 10), eval = strtoull(argv[4], NULL, 10),
           max_msg = strtoull(argv[5], NULL, 10);
    void *zctx = NULL;
    fedc_endpoint *ep = NULL;
    void *s = bs_router_open(port, max_msg, &zctx, &ep);
    if (!s)
        return 1;
    uint8_t(*ids)[ID_MAX] = calloc((size_t)n, ID_MAX);
    size_t *id_len = calloc((size_t)n, sizeof *id_len);
    uint8_t *fit_buf = malloc(fit ? fit : 1), *eval_buf = malloc(eval ? eval : 1), quit = 'Q';
    double *cpu = calloc((size_t)rounds, sizeof *cpu), *wall = calloc((size_t)rounds, sizeof *wall);
    if (!ids || !id_len || !fit_buf || !eval_buf || !cpu || !wall) {
        fprintf(stderr, "router: out of memory\n");
        return 1;
    }
    memset(fit_buf, 0x3c, fit ? fit : 1);
    memset(eval_buf, 0x3c, eval ? eval : 1);
    fit_buf[0] = 'F';
    eval_buf[0] = 'E';
    int rc = bs_recv_n(s, n, ids, id_len, NULL); /* every DEALER says hello first */
    for (int r = 0; rc == 0 && r < rounds; r++) {
        double t0 = fedc_clock_s(), c0 = bs_cpu_s(0);
        rc = send_all(s, ids, id_len, n, fit_buf, fit ? fit : 1) ||
             bs_recv_n(s, n, NULL, NULL, NULL) ||
             send_all(s, ids, id_len, n, eval_buf, eval ? eval : 1) ||
             bs_recv_n(s, n, NULL, NULL, NULL);
        cpu[r] = 1e3 * (bs_cpu_s(0) - c0);
        wall[r] = 1e3 * (fedc_clock_s() - t0);
    }
    for (int i = 0; rc == 0 && i < n; i++)
        rc = zmq_send(s, ids[i], id_len[i], ZMQ_SNDMORE) < 0 || zmq_send(s, &quit, 1, 0) < 0;
    if (rc) {
        fprintf(stderr, "router: %s\n", zmq_strerror(zmq_errno()));
    } else {
        /* Round 1 pays for the connections' first buffers: it is left out, like the
         * coordinator's. */
        int skip = rounds > 1;
        printf("%.6f %.6f\n", bs_median(cpu + skip, rounds - skip),
               bs_median(wall + skip, rounds - skip));
        fflush(stdout);
        sleep(1); /* lets the quit messages leave before the linger-0 close drops them */
    }
    bs_router_close(&zctx, &ep);
    free(ids), free(id_len), free(fit_buf), free(eval_buf), free(cpu), free(wall);
    return rc ? 1 : 0;
}

typedef struct dealers {
    void **socks;
    int n;
    const uint8_t *up; /* the update's bytes, shared */
    size_t up_bytes;
    int err;
} dealers;

/* One thread answers for a share of the clients: the update for a model, a small answer for an
 * evaluation message, until each has been told to quit. */
static void *dealer_main(void *arg) {
    dealers *g = arg;
    static const uint8_t answer[EVAL_ANSWER];
    zmq_pollitem_t *items = calloc((size_t)g->n, sizeof *items);
    int left = g->n;
    if (!items) {
        g->err = 1;
        return NULL;
    }
    for (int i = 0; i < g->n; i++)
        items[i] = (zmq_pollitem_t){g->socks[i], 0, ZMQ_POLLIN, 0};
    while (left > 0) {
        /* Ten minutes of silence: the ROUTER is gone (one minute was too short for 1,000 x 1M
         * on a machine loaded by other runs: the dealers gave up while the ROUTER still sent,
         * and it then waited for their answers for ever). */
        if (zmq_poll(items, g->n, 600000) <= 0) {
            g->err = 1;
            break;
        }
        for (int i = 0; i < g->n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, g->socks[i], ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                continue;
            }
            uint8_t kind = zmq_msg_size(&m) ? *(uint8_t *)zmq_msg_data(&m) : 0;
            zmq_msg_close(&m);
            if (kind == 'F')
                zmq_send_const(g->socks[i], g->up, g->up_bytes, 0);
            else if (kind == 'E')
                zmq_send_const(g->socks[i], answer, sizeof answer, 0);
            else if (kind == 'Q') {
                items[i].events = 0;
                left--;
            }
        }
    }
    free(items);
    return NULL;
}

pid_t bs_router_spawn(char *const *av, int *fd) {
    int out[2];
    if (pipe(out) != 0) {
        perror("pipe");
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execv("/proc/self/exe", av);
        _exit(127);
    }
    close(out[1]);
    if (pid < 0) {
        perror("fork");
        close(out[0]);
        return -1;
    }
    *fd = out[0];
    return pid;
}

int bs_router_wait(pid_t pid, int fd, double *cpu_ms, double *wall_ms) {
    FILE *f = fdopen(fd, "r");
    double c = -1, w = -1;
    int got = f && fscanf(f, "%lf %lf", &c, &w) == 2;
    if (f)
        fclose(f);
    else
        close(fd);
    int st = 0;
    waitpid(pid, &st, 0);
    if (!got || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "baseline failed (status %d)\n", st);
        return -1;
    }
    *cpu_ms = c;
    *wall_ms = w;
    return 0;
}

/* One ZeroMQ context per client, as every fedc_client has its own: each then has its own I/O
 * thread, which the ROUTER's every send to it must wake (on loopback the sender's system call does
 * that). With one shared context for all the dealers the baseline paid for two threads' wake-ups
 * where the coordinator paid for one per client and message. */
void **bs_dealers_open(int n, int port, void ***ctx) {
    char addr[64];
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", port);
    void **socks = calloc((size_t)n, sizeof *socks);
    *ctx = calloc((size_t)n, sizeof **ctx);
    if (!socks || !*ctx) {
        bs_dealers_close(socks, *ctx, n);
        *ctx = NULL;
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        int linger = 0;
        (*ctx)[i] = zmq_ctx_new();
        socks[i] = (*ctx)[i] ? zmq_socket((*ctx)[i], ZMQ_DEALER) : NULL;
        if (!socks[i] || zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger) ||
            zmq_connect(socks[i], addr)) {
            bs_dealers_close(socks, *ctx, n);
            *ctx = NULL;
            return NULL;
        }
    }
    return socks;
}

void bs_dealers_close(void **socks, void **ctx, int n) {
    for (int i = 0; socks && i < n; i++)
        if (socks[i])
            zmq_close(socks[i]);
    for (int i = 0; ctx && i < n; i++)
        if (ctx[i])
            zmq_ctx_term(ctx[i]);
    free(socks);
    free(ctx);
}

int bs_baseline_run(const bs_base_cfg *b, double *cpu_ms, double *wall_ms) {
    char sp[16], sn[16], sr[16], sf[32], se[32], sm[32];
    snprintf(sp, sizeof sp, "%d", b->port);
    snprintf(sn, sizeof sn, "%d", b->n_clients);
    snprintf(sr, sizeof sr, "%d", b->rounds);
    snprintf(sf, sizeof sf, "%zu", b->fit_bytes);
    snprintf(se, sizeof se, "%zu", b->eval_bytes);
    snprintf(sm, sizeof sm, "%zu", b->max_msg);
    char *av[] = {"bench_scale", "--router", sp, sn, sr, sf, se, sm, NULL};
    int fd = -1;
    pid_t pid = bs_router_spawn(av, &fd);
    if (pid < 0)
        return -1;
    size_t up = b->up_bytes > EVAL_ANSWER ? b->up_bytes - EVAL_ANSWER : 1;
    uint8_t *upbuf = malloc(up);
    void **zctx = NULL, **socks = bs_dealers_open(b->n_clients, b->port, &zctx);
    int rc = !upbuf || !socks ? -1 : 0;
    if (rc == 0)
        memset(upbuf, 0x5a, up);
    for (int i = 0; rc == 0 && i < b->n_clients; i++)
        if (zmq_send(socks[i], "H", 1, 0) < 0)
            rc = -1;
    dealers g[BS_DEALER_THREADS];
    pthread_t th[BS_DEALER_THREADS];
    int started = 0;
    for (int t = 0; rc == 0 && t < BS_DEALER_THREADS; t++) {
        int lo = b->n_clients * t / BS_DEALER_THREADS,
            hi = b->n_clients * (t + 1) / BS_DEALER_THREADS;
        g[t] = (dealers){socks + lo, hi - lo, upbuf, up, 0};
        if (pthread_create(&th[t], NULL, dealer_main, &g[t]) != 0)
            rc = -1;
        else
            started++;
    }
    if (rc)
        kill(pid, SIGKILL);
    double c = -1, w = -1;
    if (bs_router_wait(pid, fd, &c, &w) != 0)
        rc = -1;
    for (int t = 0; t < started; t++) {
        pthread_join(th[t], NULL);
        if (g[t].err)
            rc = -1;
    }
    bs_dealers_close(socks, zctx, b->n_clients);
    free(upbuf);
    if (rc) {
        fprintf(stderr, "baseline failed: its clients (out of memory, or a silent ROUTER)\n");
        return -1;
    }
    *cpu_ms = c;
    *wall_ms = w;
    return 0;
}
