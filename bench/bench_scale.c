/* bench_scale: one coordinator and many clients (issue 18), against the cost of moving the same
 * bytes over ZeroMQ.
 *
 *   bench_scale PATH/TO/fedc-coordinator [--clients 10,100,1000] [--params 100k,1M,10M]
 *               [--rounds N] [--secagg on|off|both] [--neighbours H] [--mem-gib G]
 *               [--timeout S] [--by-kind] [--buffer K] [--coord-arg ARG]...
 *   bench_scale PATH/TO/fedc-coordinator --big      100M parameters x 3 clients, 2 rounds
 *
 * --buffer K runs the coordinator with --mode async --buffer K (FedBuff): the clients train
 * continuously, and a "round" is a server step over K updates (mode asy-pl / asy-sa).
 * --coord-arg ARG (up to 8 times) appends ARG to the coordinator's command line, e.g.
 * `--coord-arg --server-opt --coord-arg adam` to see what a server optimiser's state costs.
 *
 * The coordinator is the real fedc-coordinator program in a child process (plain transport,
 * --insecure, --model external so that the parameter count is the clients'; secure runs with
 * --secagg on and, given --neighbours H, SecAgg+ neighbourhoods of 2H+1; --max-msg-mb large
 * enough for a whole model, which main's protocol sends in one message), so that its CPU time (its
 * CPU-time clock, all threads, in nanoseconds: /proc/PID/stat counts 10 ms ticks) and peak memory
 * (VmHWM) are its own. The clients are fedc_client objects (fedc/client.h, the library API) in
 * this process, each with a trivial model (fedc/client_model.h) whose fit writes global + a fixed
 * small delta at once and whose evaluate adds four rows: the round's cost is the federation's
 * alone. In the same run a baseline moves
 * exactly the bytes the coordinator moved per client and round (bench_scale_base.c: a ROUTER
 * process with the coordinator's socket settings, a DEALER per client), so that the coordinator's
 * CPU time per client is set against the CPU time of only receiving and sending those bytes.
 * Right after it a second baseline (bench_scale_msgs.c) moves the same bytes in the coordinator's
 * own messages: per client and round the last round's count and sizes of each message kind, each
 * way, in request/answer steps (mbase/cl, mratio), since ZeroMQ's cost is mostly per message.
 * Secure runs then time, in this process, the one piece of cryptography the unmasking cannot skip
 * per member: expanding its self-mask seed over its masked inputs (unm/cl); sratio sets the
 * coordinator against moving its messages plus that (cpu/cl over mbase/cl + unm/cl).
 *
 * Per configuration (clients x parameters x plain/secure), medians over rounds 2..N (round 1 pays
 * for connections and first buffers): the coordinator's round time (its metrics' seconds), its
 * CPU time per client and round, the baseline's, their ratio (target <= 1.5), the message
 * baseline's and the ratio to it, the bytes per client
 * up and down over the raw float32 size of the model, split as the coordinator's metrics line
 * splits them: the training (its instruction, the update and, secure, the whole SecAgg+ session
 * of the update: fit_up/raw, fit_dn/raw; target: secure fit_up/raw <= 1.05 at 1,000 clients),
 * the evaluation (its instruction with the new model, the answer and its secure session: eval_upKB,
 * eval_dnKB, in thousands of bytes) and the whole round (up/raw, down/raw; down carries the model
 * twice); --by-kind prints the last round's bytes and messages per client by message kind. Then the
 * coordinator's peak resident memory (target: < 256 MiB at 1,000 x 1M; <= 4 x the model + a
 * fixed margin), and this process's peak less its resident memory before the clients started:
 * the clients' memory, also per client and per client over the model's float32 size (target:
 * <= 4 x the model + data; the trivial model holds no data).
 *
 * Exits 1 when a configuration failed (the coordinator, a client or the baseline), else 0.
 * A configuration whose estimated memory exceeds --mem-gib (20) is skipped and says so: the
 * estimate is the clients' measured share per float32 of the model (8 copies until measured at
 * 1M parameters or more) plus the coordinator holding every update at once (what an unbounded
 * receive queue allows).
 */
#define _GNU_SOURCE /* mallopt, malloc_trim */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_scale.h"
#include "fedc/client.h"
#include "fedc/client_model.h"
#include "fedc/clock.h"
#include "fedc/secagg.h"

#define MAX_LIST 8
#define MIB (1024.0 * 1024.0)

/* ---- the trivial model: answers at once ---- */

typedef struct fake {
    size_t n;
} fake;

static char *g_feat[] = {"f0", "f1"};

static fedc_err fk_describe(void *ctx, fedc_model_desc *out, fedc_diag *d) {
    (void)d;
    const fake *m = ctx;
    memset(out, 0, sizeof *out);
    out->kind = "bench-scale-v1";
    out->task = FEDC_TASK_BINARY;
    out->n_classes = 2;
    out->n_features = 2;
    out->feature_names = g_feat;
    out->label = "y";
    out->n_params = m->n;
    return FEDC_OK;
}

static fedc_err fk_begin(void *ctx, const fedc_model_run *run, fedc_model_rows *rows,
                         fedc_diag *d) {
    (void)ctx, (void)run, (void)d;
    rows->train_rows = rows->fit_rows = 100;
    rows->val_rows = 4;
    return FEDC_OK;
}

/* Round 0: sums the coordinator checks for plausibility (classes adding up to the rows). */
static fedc_err fk_stats(void *ctx, double *sum, double *sum_sq, uint64_t *class_count,
                         uint64_t *rows, fedc_diag *d) {
    (void)ctx, (void)d;
    for (int j = 0; j < 2; j++)
        sum[j] = 50, sum_sq[j] = 100;
    class_count[0] = class_count[1] = 50;
    *rows = 100;
    return FEDC_OK;
}

static fedc_err fk_fit(void *ctx, const float *global, float *local, size_t n,
                       const fedc_model_fit *hp, fedc_model_fit_out *out, fedc_diag *d) {
    (void)ctx, (void)hp, (void)d;
    for (size_t i = 0; i < n; i++) /* a small delta, the same every round: well inside any clip */
        local[i] = global[i] + 1e-4f * (float)((int)(i % 17) - 8);
    out->loss = 0.5;
    return FEDC_OK;
}

static fedc_err fk_evaluate(void *ctx, const float *w, size_t n, float threshold,
                            fedc_eval_acc *acc, fedc_diag *d) {
    (void)ctx, (void)w, (void)n, (void)d;
    static const float p[4] = {0.2f, 0.7f, 0.4f, 0.9f}, y[4] = {0, 1, 0, 1};
    fedc_eval_acc_add(acc, p, y, 4, threshold);
    return FEDC_OK;
}

/* ---- helpers ---- */

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0, ch;
    while ((ch = getc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static double json_field(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

/* "100k", "1M", "10M", "100M" or a plain count. */
static size_t parse_count(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (*end == 'k' || *end == 'K')
        v *= 1e3;
    else if (*end == 'M' || *end == 'm')
        v *= 1e6;
    return v >= 1 ? (size_t)v : 0;
}

static int parse_list(const char *s, size_t *out) {
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n < MAX_LIST;
         t = strtok_r(NULL, ",", &save))
        if ((out[n] = parse_count(t)) > 0)
            n++;
    return n;
}

/* ---- one configuration ---- */

typedef struct opts {
    const char *coord;
    int rounds, neighbours, big;
    int buffer; /* > 0: --mode async --buffer K */
    double mem_gib, timeout_s;
    /* clients' bytes per float32 of the model, the largest measured so far; first guess 3: a
     * library client holds the global weights and the training's output (2.4-2.8 x the model
     * measured at 10-100 x 1M with the transient received frames) */
    double k_client;
    int k_measured;       /* 0: k_client is the first guess */
    int by_kind;          /* print the last round's bytes per client by message kind */
    const char *extra[8]; /* --coord-arg: appended to the coordinator's arguments */
    int n_extra;
} opts;

typedef struct result {
    int rounds;                        /* metrics lines read */
    double round_ms, cpu_ms, up, down; /* up, down: the whole round (training + evaluation) */
    double up_eval, down_eval;         /* the evaluation's part */
    long coord_hwm_kb, clients_kb;
    int failed_clients;
    bm_plan plan; /* the last round's messages and bytes by kind (the message baseline's) */
    int have_plan;
} result;

static void *client_thread(void *arg) {
    fedc_client *c = arg;
    return (void *)(intptr_t)fedc_client_run(c);
}

static pid_t start_coordinator(const opts *o, const char *dir, const char *metrics, int port, int n,
                               size_t params, int secagg) {
    char bind[64], sn[16], sr[16], smsg[16], sh[16], sb[16], log[300];
    snprintf(bind, sizeof bind, "tcp://127.0.0.1:%d", port);
    snprintf(sn, sizeof sn, "%d", n);
    snprintf(sr, sizeof sr, "%d", o->rounds);
    /* the model and an update must fit a message (today's protocol sends each whole) */
    size_t mib = 4 * params / (1u << 20) + 64;
    snprintf(smsg, sizeof smsg, "%zu", mib < 256 ? 256 : mib);
    snprintf(sh, sizeof sh, "%d", o->neighbours);
    snprintf(log, sizeof log, "%s/coordinator.log", dir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (!freopen("/dev/null", "w", stdout) || !freopen(log, "w", stderr))
        _exit(126);
    /* OpenMP threads of the coordinator's sums must not spin on cores the clients need. */
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    const char *av[48] = {o->coord,
                          "--bind",
                          bind,
                          "--insecure",
                          "--model",
                          "external",
                          "--rounds",
                          sr,
                          "--min-clients",
                          sn,
                          "--metrics-json",
                          metrics,
                          "--heartbeat-timeout",
                          "600",
                          "--round-timeout",
                          "3600",
                          "--wait-timeout",
                          "900",
                          "--max-msg-mb",
                          smsg,
                          "--quiet",
                          "--secagg",
                          secagg ? "on" : "off"};
    int k = 0;
    while (av[k]) /* the rest of av is NULL */
        k++;
    if (secagg && o->neighbours > 0) {
        av[k++] = "--secagg-neighbours";
        av[k++] = sh;
    }
    if (o->buffer > 0) {
        snprintf(sb, sizeof sb, "%d", o->buffer);
        av[k++] = "--mode";
        av[k++] = "async";
        av[k++] = "--buffer";
        av[k++] = sb;
    }
    for (int i = 0; i < o->n_extra; i++)
        av[k++] = o->extra[i];
    av[k] = NULL;
    execv(o->coord, (char *const *)av);
    _exit(127);
}

/* Runs the federation; fills r. Returns 0, or -1 (said on stderr). */
static int run_federation(const opts *o, int n, size_t params, int secagg, int port, result *r) {
    char dir[] = "/tmp/fedc-bench-scale-XXXXXX", metrics[300], cmd[400];
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(metrics, sizeof metrics, "%s/rounds.jsonl", dir);
    /* Peak memory of this run alone: reset this process's VmHWM, and let freed model buffers go
     * back to the system (a fixed mmap threshold: glibc would otherwise raise it after the first
     * free and keep later buffers in its heaps). */
    malloc_trim(0);
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    if (cr) {
        fputs("5", cr);
        fclose(cr);
    }
    long base_kb = bs_status_kb(0, "VmRSS:");
    pid_t pid = start_coordinator(o, dir, metrics, port, n, params, secagg);
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    fake m = {params};
    fedc_client_model model = {.ctx = &m,
                               .describe = fk_describe,
                               .begin = fk_begin,
                               .stats = fk_stats,
                               .fit = fk_fit,
                               .evaluate = fk_evaluate};
    char addr[64];
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", port);
    client_cfg *cfg = calloc((size_t)n, sizeof *cfg);
    fedc_client **cl = calloc((size_t)n, sizeof *cl);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    char(*names)[16] = calloc((size_t)n, 16);
    double *cpu_at = calloc((size_t)o->rounds + 1, sizeof *cpu_at);
    int started = 0, rc = 0;
    if (!cfg || !cl || !th || !names || !cpu_at) {
        fprintf(stderr, "out of memory\n");
        rc = -1;
    }
    size_t mib = 4 * params / (1u << 20) + 64;
    for (int i = 0; rc == 0 && i < n; i++) {
        fedc_diag d;
        snprintf(names[i], 16, "c%04d", i);
        fedc_client_defaults(&cfg[i]);
        cfg[i].connect = addr;
        cfg[i].name = names[i];
        cfg[i].model = &model;
        cfg[i].threads = 1;
        cfg[i].quiet = 1;
        cfg[i].log.level = FEDC_LOG_ERROR;
        cfg[i].allow_plain = !secagg;
        cfg[i].max_msg = (mib < 256 ? 256 : mib) << 20;
        if (fedc_client_new(&cl[i], &cfg[i], &d)) {
            fprintf(stderr, "client %d: %s\n", i, d.msg);
            rc = -1;
        } else if (pthread_create(&th[i], NULL, client_thread, cl[i]) != 0) {
            fprintf(stderr, "client %d: cannot start its thread\n", i);
            rc = -1;
        } else {
            started++;
        }
    }
    /* Round boundaries: the coordinator's CPU time when each round's metrics line appears. */
    int lines = 0, st = 0, exited = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    double t0 = fedc_clock_s();
    long hwm = -1, self_peak = -1;
    while (rc == 0) {
        if (wait4(pid, &st, WNOHANG, &ru) == pid) {
            exited = 1;
            break;
        }
        long h = bs_status_kb(pid, "VmHWM:"), s = bs_status_kb(0, "VmHWM:");
        hwm = h > hwm ? h : hwm;
        self_peak = s > self_peak ? s : self_peak;
        int now = count_lines(metrics);
        if (now > lines) {
            double c = bs_cpu_s(pid);
            for (int k = lines + 1; k <= now && k <= o->rounds; k++)
                cpu_at[k] = c;
            lines = now;
        }
        if (fedc_clock_s() - t0 > o->timeout_s) {
            fprintf(stderr, "timed out after %.0f s (--timeout)\n", o->timeout_s);
            rc = -1;
            break;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    } else if (count_lines(metrics) >= o->rounds) {
        /* The last round ends where the coordinator does (it only says goodbye after its last
         * line), and the CPU clock of a process that has ended (not yet reaped) reads short: the
         * last boundary is its whole CPU time from wait4 instead. */
        cpu_at[o->rounds] = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                            1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    }
    long s = bs_status_kb(0, "VmHWM:");
    self_peak = s > self_peak ? s : self_peak;
    for (int i = 0; i < started; i++)
        fedc_client_stop(cl[i]); /* those still running after the coordinator ended */
    r->failed_clients = 0;
    for (int i = 0; i < started; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        r->failed_clients += (intptr_t)ret != 0;
    }
    for (int i = 0; cl && i < n; i++)
        fedc_client_destroy(&cl[i]);
    if (rc == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
        fprintf(stderr, "the coordinator failed (status %d); its log:\n", st);
        rc = -1;
    }
    if (rc) {
        snprintf(cmd, sizeof cmd, "tail -n 5 '%s/coordinator.log' >&2", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
    }
    /* Rounds 2..N from the metrics: round time, bytes; CPU between consecutive lines. */
    double *rt = calloc((size_t)o->rounds, sizeof *rt), *cpu = calloc((size_t)o->rounds, 8),
           *up = calloc((size_t)o->rounds, 8), *down = calloc((size_t)o->rounds, 8),
           *upe = calloc((size_t)o->rounds, 8), *downe = calloc((size_t)o->rounds, 8);
    int nr = 0, nc = 0;
    FILE *f = rc == 0 ? fopen(metrics, "r") : NULL;
    char *line = NULL; /* a line names every client at 1,000 of them: no fixed buffer */
    size_t cap = 0;
    for (int k = 1; f && rt && cpu && up && down && upe && downe && k <= o->rounds &&
                    getline(&line, &cap, f) > 0;
         k++) {
        if (k == 1 && o->rounds > 1)
            continue;
        rt[nr] = 1e3 * json_field(line, "seconds");
        up[nr] = json_field(line, "bytes_in") / n;
        down[nr] = json_field(line, "bytes_out") / n;
        upe[nr] = json_field(line, "bytes_in_eval") / n;
        downe[nr] = json_field(line, "bytes_out_eval") / n;
        nr++;
        if (k == o->rounds) {
            r->have_plan = bm_parse(line, &r->plan) == 0;
            if (o->by_kind && r->have_plan)
                bm_print(&r->plan, n);
        }
        /* both boundaries seen by one sample: that round's CPU time is unknown */
        if (k > 1 && cpu_at[k] > 0 && cpu_at[k - 1] > 0 && cpu_at[k] != cpu_at[k - 1])
            cpu[nc++] = 1e3 * (cpu_at[k] - cpu_at[k - 1]);
    }
    free(line);
    if (f)
        fclose(f);
    r->rounds = nr;
    r->round_ms = bs_median(rt, nr);
    r->cpu_ms = bs_median(cpu, nc);
    r->up = bs_median(up, nr);
    r->down = bs_median(down, nr);
    r->up_eval = bs_median(upe, nr);
    r->down_eval = bs_median(downe, nr);
    r->coord_hwm_kb = hwm;
    r->clients_kb = self_peak - base_kb;
    free(rt), free(cpu), free(up), free(down), free(upe), free(downe);
    free(cfg), free(cl), free(th), free(names), free(cpu_at);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    malloc_trim(0);
    return rc == 0 && nr > 0 ? 0 : -1;
}

/* One self-mask expansion over words values, in pieces below fedc_sa_prg_apply's OpenMP
 * threshold (65,536 values), so on this thread alone. */
static void expand(uint32_t *v, size_t words, const uint8_t seed[FEDC_SA_SEED_BYTES]) {
    enum { PIECE = 32768 };
    for (size_t i = 0; i < words; i += PIECE)
        fedc_sa_prg_apply(v + i, words - i < PIECE ? words - i : PIECE, seed, -1);
}

/* The unmasking's own cryptography per member, which no secure round can skip: the coordinator
 * expands each surviving member's self-mask seed with ChaCha20 over the length of its masked input
 * (the training's and the evaluation's) and subtracts it from the sum (fedc_sa_prg_apply, as
 * sa_server.c calls it; Bonawitz et al. CCS 2017, section 4, round 4). Timed here, on this thread
 * alone (expand: the process clock would see another thread's time only at its next tick, and
 * the coordinator's second thread only adds its share of the same work), so this is the
 * single-thread cost, the least the coordinator can pay. Returns ms per expansion of `words` values
 * (the mean over repetitions filling at least 0.3 s), or -1. The rest of the unmasking (Shamir
 * reconstruction of t shares per member, the masked input's addition) is not counted: it is the
 * coordinator's work like any other. */
static double unmask_ms(size_t words) {
    uint32_t *v = words ? calloc(words, sizeof *v) : NULL;
    if (!v)
        return -1;
    uint8_t seed[FEDC_SA_SEED_BYTES];
    memset(seed, 0x5a, sizeof seed);
    expand(v, words, seed); /* pays for the pages */
    double c0 = bs_cpu_s(0), c1 = c0;
    int n = 0;
    while (c0 >= 0 && c1 >= 0 && (n < 5 || c1 - c0 < 0.3)) {
        seed[0] = (uint8_t)++n;
        expand(v, words, seed);
        c1 = bs_cpu_s(0);
    }
    free(v);
    return c0 >= 0 && c1 >= 0 ? 1e3 * (c1 - c0) / n : -1;
}

/* The 32-bit words of the masked inputs one member sends in a round (secure runs: the chunks of
 * the training and of the evaluation), from the last round's metrics. */
static size_t masked_words(const bm_plan *p, int n) {
    for (int k = 0; k < p->n; k++)
        if (strcmp(p->name[k], "chunk") == 0)
            return (size_t)((p->bytes[k][0] + p->bytes[k][2]) / (uint64_t)n / 4);
    return 0;
}

/* Returns 1 when the configuration failed (a skip is not a failure). */
static int run_config(opts *o, int n, size_t params, int secagg) {
    double raw = 4.0 * (double)params;
    /* clients: the measured share per float32 (at least 2 MiB each: ZeroMQ context, threads);
     * coordinator: the model a few times and every update at once */
    double need = n * (o->k_client * raw > 2 * MIB ? o->k_client * raw : 2 * MIB) + raw * (n + 4.0);
    const char *mode = o->buffer > 0 ? (secagg ? "asy-sa" : "asy-pl") : secagg ? "secure" : "plain";
    if (need > o->mem_gib * 1024 * MIB) {
        printf("%-6s %6d %11zu  skipped: needs about %.1f GiB (clients %.1f x the model each, "
               "the coordinator every update at once) > --mem-gib %.0f\n",
               mode, n, params, need / (1024 * MIB), o->k_client, o->mem_gib);
        fflush(stdout);
        return 0;
    }
    int port = free_port();
    result r;
    memset(&r, 0, sizeof r);
    if (port < 0 || run_federation(o, n, params, secagg, port, &r) != 0) {
        printf("%-6s %6d %11zu  failed (see stderr)\n", mode, n, params);
        fflush(stdout);
        return 1;
    }
    double share = r.clients_kb * 1024.0 / n;
    if (params >= 1000000 && (!o->k_measured || share / raw > o->k_client)) {
        o->k_client = share / raw;
        o->k_measured = 1;
    }
    /* The baseline moves the same bytes per client: the model down twice (half each), the
     * update up. */
    bs_base_cfg b = {.port = free_port(),
                     .n_clients = n,
                     .rounds = o->rounds,
                     .fit_bytes = (size_t)(r.down / 2),
                     .eval_bytes = (size_t)(r.down / 2),
                     .up_bytes = (size_t)r.up,
                     .max_msg = (4 * params / (1u << 20) + 256) << 20};
    double base_cpu = -1, base_wall = -1;
    if (b.port < 0 || bs_baseline_run(&b, &base_cpu, &base_wall) != 0)
        base_cpu = -1;
    /* Right after it, the second baseline: the same bytes in the coordinator's own messages. */
    double msgs_cpu = -1, msgs_wall = -1;
    int port2 = r.have_plan ? free_port() : -1;
    if (port2 < 0 ||
        bm_baseline_run(&r.plan, port2, n, o->rounds, b.max_msg, &msgs_cpu, &msgs_wall) != 0)
        msgs_cpu = -1;
    double cpc = r.cpu_ms / n, bpc = base_cpu / n, mpc = msgs_cpu > 0 ? msgs_cpu / n : -1.0;
    /* secure: the unmasking's ChaCha20 per member (one member per client: none drops here) */
    double upc = secagg && r.have_plan ? unmask_ms(masked_words(&r.plan, n)) : 0.0;
    printf("%-6s %6d %11zu %3d %10.1f %9.3f %9.3f %6.2f %9.3f %6.2f %8.3f %6.2f %10.4f %8.1f "
           "%7.4f %10.4f %8.1f %8.4f %9.1f %10.1f %9.2f %8.2f",
           mode, n, params, r.rounds, r.round_ms, cpc, bpc, base_cpu > 0 ? cpc / bpc : -1.0, mpc,
           msgs_cpu > 0 ? cpc / mpc : -1.0, upc,
           msgs_cpu > 0 && upc >= 0 ? cpc / (mpc + upc) : -1.0, (r.up - r.up_eval) / raw,
           r.up_eval / 1e3, r.up / raw, (r.down - r.down_eval) / raw, r.down_eval / 1e3,
           r.down / raw, r.coord_hwm_kb / 1024.0, r.clients_kb / 1024.0, share / MIB, share / raw);
    if (o->big)
        printf(" %8.2f", r.coord_hwm_kb * 1024.0 / raw);
    if (r.failed_clients)
        printf("  (%d clients ended with an error)", r.failed_clients);
    if (base_cpu < 0)
        printf("  (the baseline failed)");
    if (msgs_cpu < 0)
        printf("  (the message baseline failed)");
    if (upc < 0)
        printf("  (the unmasking's measurement failed)");
    printf("\n");
    fflush(stdout);
    return r.failed_clients || base_cpu < 0 || msgs_cpu < 0 || upc < 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--router") == 0)
        return bs_router_main(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "--router-msgs") == 0)
        return bm_router_main(argc - 2, argv + 2);
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: bench_scale PATH/TO/fedc-coordinator [--clients 10,100,1000] "
                        "[--params 100k,1M,10M] [--rounds N] [--secagg on|off|both] "
                        "[--neighbours H] [--mem-gib G] [--timeout S] [--big] [--by-kind] "
                        "[--buffer K]\n");
        return 2;
    }
    opts o = {.coord = argv[1], .rounds = 3, .mem_gib = 20, .timeout_s = 3600, .k_client = 3};
    size_t clients[MAX_LIST] = {10, 100, 1000}, params[MAX_LIST] = {100000, 1000000, 10000000};
    int n_clients = 3, n_params = 3, modes = 3, rounds_set = 0; /* modes: 1 plain, 2 secure */
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--big") == 0) {
            o.big = 1;
            continue;
        }
        if (strcmp(a, "--by-kind") == 0) {
            o.by_kind = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "%s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--clients") == 0)
            n_clients = parse_list(v, clients);
        else if (strcmp(a, "--params") == 0)
            n_params = parse_list(v, params);
        else if (strcmp(a, "--rounds") == 0)
            o.rounds = atoi(v), rounds_set = 1;
        else if (strcmp(a, "--neighbours") == 0)
            o.neighbours = atoi(v);
        else if (strcmp(a, "--mem-gib") == 0)
            o.mem_gib = atof(v);
        else if (strcmp(a, "--timeout") == 0)
            o.timeout_s = atof(v);
        else if (strcmp(a, "--buffer") == 0)
            o.buffer = atoi(v);
        else if (strcmp(a, "--coord-arg") == 0) {
            if (o.n_extra == (int)(sizeof o.extra / sizeof o.extra[0])) {
                fprintf(stderr, "bench_scale: at most %zu --coord-arg\n",
                        sizeof o.extra / sizeof o.extra[0]);
                return 2;
            }
            o.extra[o.n_extra++] = v;
        } else if (strcmp(a, "--secagg") == 0)
            modes = strcmp(v, "on") == 0 ? 2 : strcmp(v, "off") == 0 ? 1 : 3;
        else {
            fprintf(stderr, "unknown flag %s\n", a);
            return 2;
        }
    }
    if (o.big) {
        clients[0] = 3, n_clients = 1;
        params[0] = 100000000, n_params = 1;
        if (!rounds_set)
            o.rounds = 2;
    }
    if (o.rounds < 2 || n_clients < 1 || n_params < 1 || o.neighbours < 0) {
        fprintf(stderr, "--rounds must be at least 2 (round 1 is left out of the medians); "
                        "--clients and --params need at least one count\n");
        return 2;
    }
    /* A fixed threshold: model buffers are mapped and unmapped, so a run's peak is its own. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    signal(SIGPIPE, SIG_IGN);
    printf("bench_scale: %s; medians over rounds 2..%d; clients in this process (pid %d)\n",
           o.coord, o.rounds, (int)getpid());
    printf("targets: cpu/base <= 1.5; secure fit_up/raw <= 1.05 at 1,000 clients; coordinator "
           "peak < 256 MiB at 1,000 x 1M, <= 4 x model + margin; client <= 4 x model\n");
    printf("bytes per client and round: fit_* the training (instruction, update and, when secure, "
           "its whole SecAgg+ session), eval_* the evaluation (KB), *_up/raw and *_dn/raw over "
           "the raw float32 update; up/raw and down/raw the whole round\n");
    printf("baselines per client (ms of CPU): base/cl the round's bytes in 4 messages (ratio: "
           "cpu/cl over it), mbase/cl the same bytes in the coordinator's own messages by kind, "
           "counts and sizes, in request/answer steps (mratio: cpu/cl over it), unm/cl the "
           "unmasking's ChaCha20 (secure: one expansion of a member's self-mask seed over its "
           "masked inputs, measured here; sratio: cpu/cl over mbase/cl + unm/cl)\n");
    printf("%-6s %6s %11s %3s %10s %9s %9s %6s %9s %6s %8s %6s %10s %8s %7s %10s %8s %8s %9s "
           "%10s %9s %8s%s\n",
           "mode", "clients", "params", "rds", "round_ms", "cpu/cl_ms", "base/cl", "ratio",
           "mbase/cl", "mratio", "unm/cl", "sratio", "fit_up/raw", "eval_upKB", "up/raw",
           "fit_dn/raw", "eval_dnKB", "down/raw", "coord_MiB", "clients_MiB", "MiB/cl", "cl/model",
           o.big ? " coord/model" : "");
    int failed = 0;
    for (int p = 0; p < n_params; p++)
        for (int c = 0; c < n_clients; c++)
            for (int s = 0; s < 2; s++)
                if (modes & (1 << s))
                    failed |= run_config(&o, (int)clients[c], params[p], s);
    return failed;
}
