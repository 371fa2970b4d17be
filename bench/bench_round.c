/* bench_round: the coordinator's cost per round, separated from the clients' training.
 *
 *   bench_round PATH/TO/fedc-coordinator [--clients 2,10,50] [--small-rounds 20] [--big-rounds 5]
 *               [--no-big]
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
 * per round), plus its peak (VmHWM). Targets from the issue are printed alongside: overhead under 5
 * ms for 10 clients and 100k parameters on loopback, wire bytes within 5% of the raw size each way.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "fedc/codec.h"
#include "fedc/transport.h"

#define N_FEATURES 30

typedef struct sim {
    void *zctx; /* shared: one I/O thread for all simulated clients */
    const char *addr;
    int idx;
    size_t n_params;
    const float *update; /* shared, read-only */
    int done;
    char err[FEDC_DIAG_MAX + 64];
} sim;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *g_names[N_FEATURES];

static void env_init(Fedc__Envelope *m, const uint8_t *run_id, uint32_t round) {
    fedc__envelope__init(m);
    m->version = FEDC_PROTOCOL_VERSION;
    if (run_id) {
        m->run_id.data = (uint8_t *)run_id;
        m->run_id.len = FEDC_RUN_ID_BYTES;
    }
    m->round = round;
}

/* One simulated client: join, answer statistics, fit and evaluate at once, heartbeat. */
static void *sim_main(void *arg) {
    sim *s = arg;
    fedc_endpoint *ep = NULL;
    fedc_diag d;
    if (fedc_net_connect(&ep, s->zctx, s->addr, (size_t)1 << 30, &d)) {
        snprintf(s->err, sizeof s->err, "%s", d.msg);
        return NULL;
    }
    char name[32];
    snprintf(name, sizeof name, "sim-%03d", s->idx);
    Fedc__Envelope m;
    Fedc__Join j = FEDC__JOIN__INIT;
    Fedc__Schema sc = FEDC__SCHEMA__INIT;
    env_init(&m, NULL, 0);
    sc.n_feature_names = N_FEATURES;
    sc.feature_names = g_names;
    sc.label = "y";
    sc.task = 0;
    sc.n_classes = 2;
    j.name = name;
    j.schema = &sc;
    j.n_rows = 1000;
    m.body_case = FEDC__ENVELOPE__BODY_JOIN;
    m.join = &j;
    if (fedc_net_send(ep, NULL, &m, NULL, 0, &d))
        snprintf(s->err, sizeof s->err, "join: %s", d.msg);
    uint8_t run_id[FEDC_RUN_ID_BYTES];
    int have_run = 0;
    double last_hb = now_s();
    while (!s->done && !s->err[0]) {
        fedc_inbox in;
        fedc_msg_expect x = {0};
        x.round = -1;
        x.max_bytes = (size_t)1 << 30;
        fedc_err rc = fedc_net_recv(ep, &in, &x, 200, &d);
        if (now_s() - last_hb > 1.0 && have_run) {
            Fedc__Heartbeat h = FEDC__HEARTBEAT__INIT;
            env_init(&m, run_id, 0);
            m.body_case = FEDC__ENVELOPE__BODY_HEARTBEAT;
            m.heartbeat = &h;
            if (fedc_net_send(ep, NULL, &m, NULL, 0, &d))
                snprintf(s->err, sizeof s->err, "heartbeat: %s", d.msg);
            last_hb = now_s();
        }
        if (rc == FEDC_EEMPTY)
            continue;
        if (rc) {
            snprintf(s->err, sizeof s->err, "receive: %s", d.msg);
            break;
        }
        const Fedc__Envelope *e = in.msg;
        switch (e->body_case) {
        case FEDC__ENVELOPE__BODY_WELCOME:
            memcpy(run_id, e->run_id.data, FEDC_RUN_ID_BYTES);
            have_run = 1;
            break;
        case FEDC__ENVELOPE__BODY_STATS_REQUEST: {
            double sum[N_FEATURES], sq[N_FEATURES];
            uint64_t cc[2] = {900, 100};
            for (int i = 0; i < N_FEATURES; i++) {
                sum[i] = 0;
                sq[i] = 1000;
            }
            Fedc__Stats st = FEDC__STATS__INIT;
            env_init(&m, run_id, 0);
            st.n_rows = 1000;
            st.n_sum = st.n_sum_sq = N_FEATURES;
            st.sum = sum;
            st.sum_sq = sq;
            st.n_class_count = 2;
            st.class_count = cc;
            m.body_case = FEDC__ENVELOPE__BODY_STATS;
            m.stats = &st;
            if (fedc_net_send(ep, NULL, &m, NULL, 0, &d))
                snprintf(s->err, sizeof s->err, "stats: %s", d.msg);
            break;
        }
        case FEDC__ENVELOPE__BODY_FIT_INS: {
            Fedc__FitRes r = FEDC__FIT_RES__INIT;
            Fedc__Tensor t = FEDC__TENSOR__INIT;
            env_init(&m, run_id, e->round);
            t.count = s->n_params;
            r.update = &t;
            r.n_examples = 1000;
            r.train_loss = 0.5;
            r.seconds = 0.0;
            m.body_case = FEDC__ENVELOPE__BODY_FIT_RES;
            m.fit_res = &r;
            if (fedc_net_send(ep, NULL, &m, s->update, 4 * s->n_params, &d))
                snprintf(s->err, sizeof s->err, "fit_res: %s", d.msg);
            break;
        }
        case FEDC__ENVELOPE__BODY_EVALUATE_INS: {
            Fedc__EvaluateRes r = FEDC__EVALUATE_RES__INIT;
            env_init(&m, run_id, e->round);
            m.body_case = FEDC__ENVELOPE__BODY_EVALUATE_RES;
            m.evaluate_res = &r;
            if (fedc_net_send(ep, NULL, &m, NULL, 0, &d))
                snprintf(s->err, sizeof s->err, "evaluate_res: %s", d.msg);
            break;
        }
        case FEDC__ENVELOPE__BODY_BYE:
            s->done = 1;
            break;
        default:
            break;
        }
        fedc_inbox_release(&in);
    }
    fedc_net_close(&ep);
    return NULL;
}

static long rss_kb(int pid, const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0)
            v = strtol(line + fl + 1, NULL, 10);
    fclose(f);
    return v;
}

/* CPU seconds (user + system) a process has used so far, or -1. */
static double cpu_s(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    unsigned long ut = 0, stt = 0;
    /* fields after the name: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) != 2)
        return -1;
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

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

static int run_config(const char *coord, int n_clients, const char *layers, size_t n_params,
                      int rounds, int port) {
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
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(126);
        execl(coord, coord, "--bind", bind, "--rounds", srounds, "--min-clients", sclients,
              "--layers", layers, "--metrics-json", metrics, "--heartbeat-timeout", "120",
              "--round-timeout", "600", "--quiet", "--insecure", (char *)NULL);
        _exit(127);
    }
    float *update = malloc(4 * n_params);
    sim *sims = calloc((size_t)n_clients, sizeof *sims);
    pthread_t *th = calloc((size_t)n_clients, sizeof *th);
    if (!update || !sims || !th) {
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
        pthread_create(&th[i], NULL, sim_main, &sims[i]);
    }
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
    printf("%7d  %10zu  %6d  %11.2f  %11.2f  %11.2f  %12.0f  %8.3f  %12.0f  %8.3f  %7.1f %7.1f "
           "%7.1f  %7.1f\n",
           n_clients, n_params, n, median(ov, n), median(rt, n), cpu_ms, in_per, in_per / raw,
           out_per, out_per / (2 * raw), rss_first / 1024.0, rss_mid / 1024.0, rss_last / 1024.0,
           hwm / 1024.0);
    fflush(stdout);
    free(ov);
    free(rt);
    free(update);
    free(sims);
    free(th);
    unlink(metrics);
    rmdir(dir);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr,
                "usage: %s PATH/TO/fedc-coordinator [--clients 2,10,50] [--small-rounds N] "
                "[--big-rounds N] [--no-big]\n",
                argv[0]);
        return 2;
    }
    const char *coord = argv[1];
    int clients[16] = {2, 10, 50}, n_clients = 3, small_rounds = 20, big_rounds = 5, big = 1;
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
        } else {
            fprintf(stderr, "unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    for (int i = 0; i < N_FEATURES; i++) {
        g_names[i] = malloc(8);
        snprintf(g_names[i], 8, "f%d", i);
    }
    signal(SIGPIPE, SIG_IGN);
    printf("bench_round: fedc-coordinator against simulated clients that answer at once (zero "
           "training time), loopback TCP\n");
    printf("targets: fit overhead < 5 ms at 10 clients x 100k parameters; wire bytes within 5%% "
           "of raw float32 each way (ratio <= 1.05)\n\n");
    printf("clients  parameters  rounds  fit_ovh_ms  round_ms  coord_cpu_ms  in_B/client  in/raw  "
           "out_B/client  out/2raw  rss_MiB(first mid last)  peak_MiB\n");
    int port = 20000 + (int)(getpid() % 20000);
    /* 30 inputs: layers 350,256 -> 100,963 parameters; 3150,3150 -> 10,026,451. */
    const size_t small = 30 * 350 + 350 + 350 * 256 + 256 + 256 + 1;
    const size_t large = 30 * 3150 + 3150 + 3150 * 3150 + 3150 + 3150 + 1;
    for (int i = 0; i < n_clients; i++)
        if (run_config(coord, clients[i], "350,256", small, small_rounds, port++))
            return 1;
    if (big)
        for (int i = 0; i < n_clients; i++)
            if (run_config(coord, clients[i], "3150,3150", large, big_rounds, port++))
                return 1;
    printf("\nout/2raw: each round sends the weights twice (fit and evaluation instructions); "
           "in/raw: one update back (evaluation results are counts, included).\n");
    return 0;
}
