/* bench_round: the coordinator's cost per round, separated from the clients' training.
 *
 *   bench_round PATH/TO/fedc-coordinator [--clients 2,10,50] [--small-rounds 20] [--big-rounds 5]
 *               [--no-big] [--secagg] [--train-ms N] [--curve] [--metrics-listen]
 *
 * Runs the real fedc-coordinator process (plain transport, --insecure) against N simulated clients
 * (threads in this program, each with its own DEALER socket, speaking the same protocol as
 * fedc-client) that answer every instruction at once with a fixed update: their "training time" is
 * zero, so the round's wall time is the federation's overhead (the definition: round wall
 * time minus the slowest client's local training time). Two models: about 100k parameters (30
 * inputs, layers 350,256) and about 10M (30 inputs, layers 3150,3150). Prints, per configuration,
 * the median over rounds of: the fit phase's overhead (instruction out to last result aggregated,
 * from the coordinator's metrics), the whole round (fit + federated evaluation + checkpoint), bytes
 * on the wire per client per round in each direction against the raw float32 size of the weights,
 * and the coordinator's resident memory after the first, middle and last round (flat = no growth
 * per round), plus its peak (VmHWM), and the round's wall time as the simulated clients see it
 * (first fit instruction of a round to the first of the next) against the coordinator's busy time
 * (its own round time; its CPU time plus the simulated training). Targets from the issue are
 * printed alongside: overhead under 5 ms for 10 clients and 100k parameters on loopback, wire bytes
 * within 5% of the raw size each way, wall time at most 1.2 x the busy time.
 *
 * --metrics-listen [--repeat N]: every configuration also runs N times (5) without and N times with
 * the coordinator's --metrics-listen, alternating, the listener scraped by this program as
 * Prometheus would, only far more often (/metrics every 100 ms, the status page every second);
 * prints the median over the runs of each run's median round time and of the coordinator's CPU
 * time per round, without and with, and their ratios (the target: under 2% more). The
 * alternation and the medians are there because other work on a shared machine moves single
 * runs by more than the effect measured.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "fedc/clock.h"
#include "fedc/codec.h"
#include "fedc/fl.h"
#include "fedc/keys.h"
#include "fedc/sa_proto.h"
#include "fedc/transport.h"

#include "bench_round.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : 0.0;
}

static double json_field(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1.0;
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* One federation; *round_ms gets the median whole-round time, *bytes the mean bytes per client
 * per round both ways. */
static int g_train_ms, g_curve;
/* > 0: the coordinator of this run serves --metrics-listen 127.0.0.1:g_http_port, scraped. */
static int g_http_port;
/* The coordinator's CPU time per round in the last run_config (-1: not measured). */
static double g_last_cpu_ms;

/* One GET of path from 127.0.0.1:port, the answer read and dropped; 0 when one came. */
static int http_get(int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[128], buf[65536];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, req, (size_t)n) == n;
    ssize_t got = 0, total = 0;
    while (ok && (got = read(fd, buf, sizeof buf)) > 0)
        total += got;
    close(fd);
    return ok && total > 0 ? 0 : -1;
}

/* A loopback port free at the moment (bound to port 0, then released), or -1. */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    int port = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                       getsockname(fd, (struct sockaddr *)&a, &al) == 0
                   ? ntohs(a.sin_port)
                   : -1;
    if (fd >= 0)
        close(fd);
    return port;
}

typedef struct scraper {
    int port;
    volatile int done;
    long scrapes;
} scraper;

/* Scrapes /metrics every 100 ms and the status page every second until done. */
static void *scrape_main(void *arg) {
    scraper *s = arg;
    for (int k = 0; !s->done; k++) {
        if (http_get(s->port, "/metrics") == 0)
            s->scrapes++;
        if (k % 10 == 0 && http_get(s->port, "/") == 0)
            s->scrapes++;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* CurveZMQ's throughput on this machine: one DEALER streaming 4 MB messages to a ROUTER over
 * loopback TCP, both CURVE (no ZAP handler: admission is not what is measured). Bytes/s. */
static double curve_throughput(int port) {
    void *ctx = zmq_ctx_new();
    void *srv = zmq_socket(ctx, ZMQ_ROUTER), *cli = zmq_socket(ctx, ZMQ_DEALER);
    uint8_t spk[32], ssk[32], cpk[32], csk[32];
    crypto_box_keypair(spk, ssk);
    crypto_box_keypair(cpk, csk);
    int one = 1, hwm = 0;
    zmq_setsockopt(srv, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(srv, ZMQ_CURVE_SECRETKEY, ssk, 32);
    zmq_setsockopt(srv, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(cli, ZMQ_CURVE_SERVERKEY, spk, 32);
    zmq_setsockopt(cli, ZMQ_CURVE_PUBLICKEY, cpk, 32);
    zmq_setsockopt(cli, ZMQ_CURVE_SECRETKEY, csk, 32);
    zmq_setsockopt(cli, ZMQ_SNDHWM, &hwm, sizeof hwm);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    double bps = -1;
    if (zmq_bind(srv, ep) == 0 && zmq_connect(cli, ep) == 0) {
        enum { MSG = 4 << 20, N = 40 };
        char *buf = calloc(1, MSG);
        zmq_send(cli, buf, 1, 0); /* handshake first */
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, srv, 0);
        zmq_msg_recv(&m, srv, 0);
        double t0 = fedc_clock_s();
        for (int i = 0; i < N; i++)
            zmq_send(cli, buf, MSG, 0);
        for (int i = 0; i < N; i++) {
            zmq_msg_recv(&m, srv, 0); /* routing id */
            zmq_msg_recv(&m, srv, 0);
        }
        bps = (double)MSG * N / (fedc_clock_s() - t0);
        zmq_msg_close(&m);
        free(buf);
    }
    int zero = 0;
    zmq_setsockopt(cli, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(srv, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(cli);
    zmq_close(srv);
    zmq_ctx_term(ctx);
    return bps;
}

static int run_config(const char *coord, int n_clients, const char *layers, size_t n_params,
                      int rounds, int port, int secagg, double *round_ms, double *bytes) {
    char dir[] = "/tmp/fedc-bench-round-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return -1;
    }
    char metrics[256], bind[64], addr[64], sclients[16], srounds[16];
    snprintf(metrics, sizeof metrics, "%s/rounds.jsonl", dir);
    snprintf(bind, sizeof bind, "tcp://127.0.0.1:%d", port);
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", port);
    snprintf(sclients, sizeof sclients, "%d", n_clients);
    snprintf(srounds, sizeof srounds, "%d", rounds);
    /* --curve: keys for the coordinator and every simulated client, allow-list in dir/allow. */
    fedc_identity coord_id, *ids = NULL;
    char keyfile[300], allow[300];
    snprintf(keyfile, sizeof keyfile, "%s/coordinator.key_secret", dir);
    snprintf(allow, sizeof allow, "%s/allow", dir);
    if (g_curve) {
        fedc_diag d;
        ids = calloc((size_t)n_clients, sizeof *ids);
        if (!ids || mkdir(allow, 0700) != 0 || fedc_key_generate(&coord_id, "coordinator", &d) ||
            fedc_key_write(&coord_id, dir, 1, &d)) {
            fprintf(stderr, "cannot make keys in %s\n", dir);
            return -1;
        }
        for (int i = 0; i < n_clients; i++) {
            char name[32];
            snprintf(name, sizeof name, "sim%03d", i);
            if (fedc_key_generate(&ids[i], name, &d) || fedc_key_write(&ids[i], allow, 1, &d)) {
                fprintf(stderr, "cannot make keys: %s\n", d.msg);
                return -1;
            }
        }
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(126);
        /* The coordinator may use both cores, but shares them with the simulated clients: no
         * spinning at OpenMP barriers (see main for the clients). */
        setenv("OMP_NUM_THREADS", "2", 1);
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        char listen[32];
        snprintf(listen, sizeof listen, "127.0.0.1:%d", g_http_port);
        const char *av[40];
        int k = 0;
        const char *common[] = {coord,      "--bind",
                                bind,       "--rounds",
                                srounds,    "--min-clients",
                                sclients,   "--layers",
                                layers,     "--metrics-json",
                                metrics,    "--heartbeat-timeout",
                                "120",      "--round-timeout",
                                "600",      "--quiet",
                                "--secagg", secagg ? "on" : "off",
                                NULL};
        for (int j = 0; common[j]; j++)
            av[k++] = common[j];
        if (g_curve) {
            av[k++] = "--key";
            av[k++] = keyfile;
            av[k++] = "--allow";
            av[k++] = allow;
        } else {
            av[k++] = "--insecure";
        }
        if (g_http_port > 0) {
            av[k++] = "--metrics-listen";
            av[k++] = listen;
        }
        av[k] = NULL;
        execv(coord, (char *const *)av);
        _exit(127);
    }
    float *update = malloc(4 * n_params);
    sim *sims = calloc((size_t)n_clients, sizeof *sims);
    pthread_t *th = calloc((size_t)n_clients, sizeof *th);
    double *fit_at = calloc((size_t)n_clients * (size_t)(rounds + 1), sizeof *fit_at);
    double *cpu_after = calloc((size_t)(rounds + 1), sizeof *cpu_after);
    long *rss_after = calloc((size_t)(rounds + 1), sizeof *rss_after),
         *hwm_after = calloc((size_t)(rounds + 1), sizeof *hwm_after);
    if (!update || !sims || !th || !fit_at || !cpu_after || !rss_after || !hwm_after) {
        fprintf(stderr, "out of memory\n");
        kill(pid, SIGKILL);
        return -1;
    }
    for (size_t i = 0; i < n_params; i++)
        update[i] = 1e-4f * (float)((int)(i % 17) - 8);
    void *zctx = zmq_ctx_new();
    for (int i = 0; i < n_clients; i++) {
        sims[i].zctx = zctx;
        sims[i].addr = addr;
        sims[i].idx = i;
        sims[i].n_params = n_params;
        sims[i].update = update;
        sims[i].train_ms = g_train_ms;
        sims[i].fit_at = fit_at + (size_t)i * (size_t)(rounds + 1);
        sims[i].max_round = (uint32_t)rounds;
        sims[i].coord_pid = i == 0 ? (int)pid : 0;
        sims[i].rss_after = rss_after;
        sims[i].hwm_after = hwm_after;
        sims[i].cpu_after = cpu_after;
        sims[i].self = g_curve ? &ids[i] : NULL;
        sims[i].coord = g_curve ? &coord_id : NULL;
        pthread_create(&th[i], NULL, sim_main, &sims[i]);
    }
    scraper scr = {g_http_port, 0, 0};
    pthread_t scr_th;
    int scraping = g_http_port > 0 && pthread_create(&scr_th, NULL, scrape_main, &scr) == 0;
    long rss_first = -1, rss_mid = -1, rss_last = -1, hwm = -1;
    double cpu_first = -1, cpu_last = -1;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        int lines = count_lines(metrics);
        long r = rss_kb(pid, "VmRSS:");
        if (lines >= 1 && rss_first < 0) {
            rss_first = r;
            cpu_first = cpu_s(pid);
        }
        if (lines >= rounds / 2 + 1 && rss_mid < 0)
            rss_mid = r;
        if (lines >= rounds) {
            if (rss_last < 0) {
                rss_last = r;
                cpu_last = cpu_s(pid);
            }
        }
        long h = rss_kb(pid, "VmHWM:");
        if (h > hwm)
            hwm = h;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < n_clients; i++) {
        sims[i].done = 1;
        pthread_join(th[i], NULL);
        if (sims[i].err[0])
            fprintf(stderr, "client %d: %s\n", i, sims[i].err);
    }
    zmq_ctx_term(zctx);
    if (scraping) {
        scr.done = 1;
        pthread_join(scr_th, NULL);
        if (scr.scrapes == 0)
            fprintf(stderr, "the metrics listener on port %d never answered\n", g_http_port);
    }
    /* The samples taken at round boundaries by the first simulated client, where it got them;
     * the periodic ones above otherwise (the last may miss a fast run's end). */
    int mid_round = rounds / 2 + 1 < rounds ? rounds / 2 + 1 : rounds;
    if (rss_after[1] > 0)
        rss_first = rss_after[1];
    if (cpu_after[1] > 0)
        cpu_first = cpu_after[1];
    if (rss_after[mid_round] > 0)
        rss_mid = rss_after[mid_round];
    if (rss_after[rounds] > 0)
        rss_last = rss_after[rounds];
    if (cpu_after[rounds] > 0)
        cpu_last = cpu_after[rounds];
    for (int r = 0; r <= rounds; r++)
        if (hwm_after[r] > hwm)
            hwm = hwm_after[r];
    free(cpu_after);
    free(rss_after);
    free(hwm_after);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "coordinator failed (status %d)\n", st);
        return -1;
    }
    double *ov = calloc((size_t)rounds, sizeof(double)),
           *rt = calloc((size_t)rounds, sizeof(double));
    double bin = 0, bout = 0;
    int n = 0;
    FILE *f = fopen(metrics, "r");
    char line[2048];
    while (f && ov && rt && n < rounds && fgets(line, sizeof line, f)) {
        ov[n] = json_field(line, "fit_overhead_s") * 1e3;
        rt[n] = json_field(line, "seconds") * 1e3;
        bin += json_field(line, "bytes_in");
        bout += json_field(line, "bytes_out");
        n++;
    }
    if (f)
        fclose(f);
    double raw = 4.0 * (double)n_params;
    /* A round carries the weights out twice (fit, then evaluation) and the update back once. */
    double out_per = bout / n / n_clients, in_per = bin / n / n_clients;
    /* The coordinator's own CPU time per round (rounds 2..last): what it costs on a machine of
     * its own, apart from the simulated clients sharing the cores here. */
    double cpu_ms = n > 1 && cpu_first >= 0 && cpu_last >= 0
                        ? 1e3 * (cpu_last - cpu_first) / (double)(n - 1)
                        : -1.0;
    *round_ms = median(rt, n);
    *bytes = in_per + out_per;
    g_last_cpu_ms = cpu_ms;
    /* The round's wall time as the clients see it: from the first fit instruction of a round to
     * the first of the next (fit, evaluation, checkpoint and whatever the coordinator waits for in
     * between), median over rounds 1..n-1. Against it: the coordinator's busy time, its own
     * `seconds` (round start to end, the slowest client's work included) and its CPU time plus
     * the slowest client's (simulated) training. */
    double *wall = calloc((size_t)rounds, sizeof *wall);
    int n_wall = 0;
    for (int r = 1; wall && r < rounds; r++) {
        double a = -1, b = -1;
        for (int i = 0; i < n_clients; i++) {
            double x = sims[i].fit_at[r], y = sims[i].fit_at[r + 1];
            if (x > 0 && (a < 0 || x < a))
                a = x;
            if (y > 0 && (b < 0 || y < b))
                b = y;
        }
        if (a > 0 && b > a)
            wall[n_wall++] = 1e3 * (b - a);
    }
    double wall_ms = n_wall ? median(wall, n_wall) : -1.0;
    free(wall);
    if (g_curve) {
        for (int i = 0; i < n_clients; i++)
            fedc_key_wipe(&ids[i]);
        free(ids);
        fedc_key_wipe(&coord_id);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    printf("%-6s %7d  %10zu  %6d  %11.2f  %11.2f  %11.2f  %12.0f  %8.3f  %12.0f  %8.3f  %7.1f "
           "%7.1f %7.1f  %7.1f  %8.2f  %9.2f  %15.2f\n",
           secagg ? "secure" : "plain", n_clients, n_params, n, secagg ? -1.0 : median(ov, n),
           *round_ms, cpu_ms, in_per, in_per / raw, out_per, out_per / (2 * raw),
           rss_first / 1024.0, rss_mid / 1024.0, rss_last / 1024.0, hwm / 1024.0, wall_ms,
           wall_ms / *round_ms, wall_ms / (cpu_ms + g_train_ms));
    fflush(stdout);
    free(ov);
    free(rt);
    free(update);
    free(sims);
    free(th);
    free(fit_at);
    unlink(metrics);
    rmdir(dir);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr,
                "usage: %s PATH/TO/fedc-coordinator [--clients 2,10,50] [--small-rounds N] "
                "[--big-rounds N] [--no-big] [--secagg] [--train-ms N] [--curve] "
                "[--metrics-listen [--repeat N]]\n",
                argv[0]);
        return 2;
    }
    const char *coord = argv[1];
    int clients[16] = {2, 10, 50}, n_clients = 3, small_rounds = 20, big_rounds = 5, big = 1;
    int secure = 0; /* --secagg: plain and secure rounds side by side */
    int listen = 0; /* --metrics-listen: each configuration without and with the listener */
    int repeat = 5; /* --repeat: runs of each */
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc) {
            n_clients = 0;
            for (char *p = argv[++i]; *p && n_clients < 16;) {
                clients[n_clients++] = (int)strtol(p, &p, 10);
                if (*p == ',')
                    p++;
            }
        } else if (strcmp(argv[i], "--small-rounds") == 0 && i + 1 < argc) {
            small_rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--big-rounds") == 0 && i + 1 < argc) {
            big_rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--no-big") == 0) {
            big = 0;
        } else if (strcmp(argv[i], "--secagg") == 0) {
            secure = 1;
        } else if (strcmp(argv[i], "--metrics-listen") == 0) {
            listen = 1;
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            repeat = atoi(argv[++i]);
            if (repeat < 1 || repeat > 64) {
                fprintf(stderr, "--repeat: expected 1..64\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--curve") == 0) {
            g_curve = 1;
        } else if (strcmp(argv[i], "--train-ms") == 0 && i + 1 < argc) {
            g_train_ms = atoi(argv[++i]);
        } else {
            fprintf(stderr, "unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    /* Each simulated client stands for a machine of its own: one thread each for its masks,
     * instead of every client thread starting an OpenMP team on the same two cores. */
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    for (int i = 0; i < N_FEATURES; i++) {
        g_names[i] = malloc(8);
        snprintf(g_names[i], 8, "f%d", i);
    }
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0)
        return 1;
    printf("bench_round: fedc-coordinator against simulated clients that answer at once (zero "
           "training time), loopback TCP\n");
    printf("targets: fit overhead < 5 ms at 10 clients x 100k parameters; wire bytes within 5%% "
           "of raw float32 each way (ratio <= 1.05)\n");
    printf("targets: client-seen round wall time / coordinator busy time <= 1.2 at 10 clients x "
           "100k, plain and secure (wall_ms: first fit instruction of a round to the first of the "
           "next, as the simulated clients see it; wall/secs: against the coordinator's own round "
           "time; wall/(cpu+train): against its CPU time per round plus the slowest client's "
           "training, --train-ms)\n\n");
    printf("mode   clients  parameters  rounds  fit_ovh_ms  round_ms  coord_cpu_ms  in_B/client  "
           "in/raw  out_B/client  out/2raw  rss_MiB(first mid last)  peak_MiB  wall_ms  wall/secs  "
           "wall/(cpu+train)\n");
    int port = 20000 + (int)(getpid() % 20000);
    /* 30 inputs: layers 350,256 -> 100,963 parameters; 3150,3150 -> 10,026,451; with --secagg
     * the large model is 1000,970 -> 1,003,941 (100 clients masking 10M values each would take
     * minutes on two cores). */
    const size_t small = 30 * 350 + 350 + 350 * 256 + 256 + 256 + 1;
    const size_t large = 30 * 3150 + 3150 + 3150 * 3150 + 3150 + 3150 + 1;
    const size_t mid = 30 * 1000 + 1000 + 1000 * 970 + 970 + 970 + 1;
    double ms[2], by[2];
    double curve_bps = g_curve ? curve_throughput(port++) : 0;
    if (g_curve)
        printf("CurveZMQ throughput, one stream of 4 MB messages on loopback: %.0f MB/s\n\n",
               curve_bps / 1e6);
    char summary[4096];
    size_t sl = 0;
    summary[0] = 0;
    for (int b = 0; b < 1 + big; b++) {
        const char *layers = b == 0 ? "350,256" : secure ? "1000,970" : "3150,3150";
        size_t np = b == 0 ? small : secure ? mid : large;
        int rounds = b == 0 ? small_rounds : big_rounds;
        for (int i = 0; i < n_clients; i++) {
            for (int m = 0; m <= secure; m++)
                if (run_config(coord, clients[i], layers, np, rounds, port++, m, &ms[m], &by[m]))
                    return 1;
            for (int m = 0; listen && m <= secure; m++) {
                double t[2][64], cpu[2][64], by_l;
                for (int r = 0; r < repeat; r++)
                    for (int on = 0; on < 2; on++) {
                        /* The listener on its own port, scraped, every other run. */
                        g_http_port = on ? free_port() : 0;
                        int rc = run_config(coord, clients[i], layers, np, rounds, port++, m,
                                            &t[on][r], &by_l);
                        g_http_port = 0;
                        if (rc)
                            return 1;
                        cpu[on][r] = g_last_cpu_ms;
                    }
                double t0 = median(t[0], repeat), t1 = median(t[1], repeat);
                double c0 = median(cpu[0], repeat), c1 = median(cpu[1], repeat);
                printf("       metrics listener (%s, %d clients, %zu parameters, %d runs each, "
                       "medians): round %.3f ms without, %.3f ms with, ratio %.4f; coordinator "
                       "CPU per round %.3f ms without, %.3f ms with, ratio %.4f (target < 1.02)\n",
                       m ? "secure" : "plain", clients[i], np, repeat, t0, t1, t1 / t0, c0, c1,
                       c1 / c0);
            }
            /* CurveZMQ: the secure round against the time its bytes take at CurveZMQ's rate. */
            double wire_ms = g_curve ? 1e3 * by[secure] * clients[i] / curve_bps : 0;
            if (g_curve)
                printf("       CurveZMQ: %.0f bytes per round at %.0f MB/s = %.2f ms; round %.2f "
                       "ms = %.2fx (target <= 1.5x)\n",
                       by[secure] * clients[i], curve_bps / 1e6, wire_ms, ms[secure],
                       ms[secure] / wire_ms);
            if (secure && sl < sizeof summary)
                sl += (size_t)snprintf(summary + sl, sizeof summary - sl,
                                       "%7d  %10zu  %13.2f  %13.2f  %11.2f  %17.3f\n", clients[i],
                                       np, ms[0], ms[1], ms[1] / ms[0], by[1] / by[0]);
        }
    }
    if (secure) {
        printf("\nsecure vs plain, same transport (loopback, %s), medians over rounds:\n"
               "clients  parameters  plain_round_ms  secure_round_ms  secure/plain  "
               "wire_bytes secure/plain\n%s",
               g_curve ? "CurveZMQ" : "no CurveZMQ", summary);
        printf("targets: secure/plain <= 1.5 at 10 clients x 100k; wire bytes <= 1.1 at 100 "
               "clients\n");
    }
    printf("\nout/2raw: each round sends the weights twice (fit and evaluation instructions); "
           "in/raw: one update back (evaluation results are counts, included).\n");
    return 0;
}
