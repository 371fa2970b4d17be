/* A federation of local processes for integration tests (see fed.h). Processes are started with
 * proc_spawn (own process group, output appended to files) and reaped with proc_wait; a test's
 * teardown calls fed_release so that nothing outlives it, not even a SIGSTOPped client. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "fedc/clock.h"
#include "fed.h"
#include "jsoncheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT_LO 20000
#define PORT_SPAN 12000 /* below Linux's ephemeral range (32768..) */
#define LOG_TAIL 12000

static int g_port_seq;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* 1 when nothing listens on (or lingers at) the loopback port: a plain bind succeeds. */
static int port_free(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

static int pick_port(void) {
    unsigned pid = (unsigned)getpid();
    for (int i = 0; i < 500; i++) {
        unsigned k = pid * 131u + (unsigned)g_port_seq++ * 17u;
        int port = PORT_LO + (int)(k % PORT_SPAN);
        if (port_free(port))
            return port;
    }
    fprintf(stderr, "fed: no free loopback port found\n");
    return -1;
}

static void set_port(fed *f, int port) {
    f->port = port;
    snprintf(f->endpoint, sizeof f->endpoint, "tcp://127.0.0.1:%d", port);
}

char *fed_path(const fed *f, const char *name) {
    return proc_path(f->dir, name);
}

int fed_init(fed *f, const char *prefix, const char *coord_bin, const char *client_bin) {
    memset(f, 0, sizeof *f);
    f->coord_bin = coord_bin;
    f->client_bin = client_bin;
    f->dir = proc_mkdtemp(prefix);
    if (!f->dir)
        return -1;
    int port = pick_port();
    if (port < 0)
        return -1;
    set_port(f, port);
    snprintf(f->coord.name, sizeof f->coord.name, "coordinator");
    f->coord.out = fed_path(f, "coordinator.out");
    f->coord.err = fed_path(f, "coordinator.err");
    return f->coord.out && f->coord.err ? 0 : -1;
}

static void show_file(const char *title, const char *path) {
    size_t len = 0;
    char *s = path ? proc_read_file(path, &len) : NULL;
    if (!s)
        return;
    const char *p = len > LOG_TAIL ? s + len - LOG_TAIL : s;
    fprintf(stderr, "----- %s (%s)%s -----\n%s", title, path, len > LOG_TAIL ? ", tail" : "", p);
    if (len && s[len - 1] != '\n')
        fputc('\n', stderr);
    free(s);
}

static void reap(fed_proc *p) {
    if (p->pid > 0) {
        proc_signal(p->pid, SIGKILL);
        proc_result r;
        (void)proc_wait(p->pid, &r, 10);
        p->pid = 0;
    }
}

static void proc_free(fed_proc *p) {
    free(p->out);
    free(p->err);
    p->out = p->err = NULL;
}

void fed_release(fed *f, int show_logs) {
    reap(&f->coord);
    for (int i = 0; i < f->n_cl; i++)
        reap(&f->cl[i]);
    if (show_logs && f->dir) {
        show_file("coordinator stderr", f->coord.err);
        show_file("coordinator stdout", f->coord.out);
        for (int i = 0; i < f->n_cl; i++) {
            char t[128];
            snprintf(t, sizeof t, "client %s stderr", f->cl[i].name);
            show_file(t, f->cl[i].err);
        }
        char *m = fed_path(f, "metrics.json");
        show_file("metrics", m);
        free(m);
        fflush(stderr);
    }
    proc_free(&f->coord);
    for (int i = 0; i < f->n_cl; i++)
        proc_free(&f->cl[i]);
    if (f->dir) {
        if (!getenv("FED_KEEP"))
            (void)proc_rmtree(f->dir);
        else
            fprintf(stderr, "fed: kept %s\n", f->dir);
        free(f->dir);
    }
    memset(f, 0, sizeof *f);
}

int fed_write_shards(const fed *f, int n, const char *prefix) {
    size_t len = 0;
    char *all = proc_read_file(FED_GERMAN, &len);
    if (!all) {
        fprintf(stderr, "fed: cannot read %s\n", FED_GERMAN);
        return -1;
    }
    int rc = -1;
    char *bufs[FED_MAX_CLIENTS] = {0};
    size_t lens[FED_MAX_CLIENTS] = {0};
    if (n < 1 || n > FED_MAX_CLIENTS)
        goto out;
    char *nl = strchr(all, '\n');
    if (!nl)
        goto out;
    size_t hlen = (size_t)(nl - all) + 1;
    for (int k = 0; k < n; k++) {
        bufs[k] = malloc(len + 1);
        if (!bufs[k])
            goto out;
        memcpy(bufs[k], all, hlen);
        lens[k] = hlen;
    }
    const char *p = all + hlen;
    for (long row = 0; *p; row++) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) + 1 : strlen(p);
        int k = (int)(row % n);
        memcpy(bufs[k] + lens[k], p, l);
        lens[k] += l;
        p += l;
    }
    for (int k = 0; k < n; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s%d.csv", prefix, k);
        char *path = fed_path(f, name);
        int bad = !path || proc_write_bytes(path, bufs[k], lens[k]) != 0;
        free(path);
        if (bad)
            goto out;
    }
    rc = 0;
out:
    for (int k = 0; k < FED_MAX_CLIENTS; k++)
        free(bufs[k]);
    free(all);
    return rc;
}

/* env_extra plus the defaults it does not set, into out (NULL-terminated). */
static void make_env(const char **out, int cap, const char *const *env_extra) {
    static const char *const defaults[] = {"OMP_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE", NULL};
    int n = 0;
    for (int i = 0; env_extra && env_extra[i] && n < cap - 3; i++)
        out[n++] = env_extra[i];
    for (int d = 0; defaults[d]; d++) {
        size_t nl = (size_t)(strchr(defaults[d], '=') - defaults[d]) + 1;
        int set = 0;
        for (int i = 0; env_extra && env_extra[i]; i++)
            set |= strncmp(env_extra[i], defaults[d], nl) == 0;
        if (!set)
            out[n++] = defaults[d];
    }
    out[n] = NULL;
}

size_t fed_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

int fed_file_has(const char *path, const char *needle) {
    char *s = proc_read_file(path, NULL);
    int has = s && strstr(s, needle) != NULL;
    free(s);
    return has;
}

/* 1 while pid has not ended (a zombie has ended); the process is not reaped. */
static int running(int pid) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return 0;
    return si.si_pid == 0;
}

int fed_wait_text(const char *path, const char *needle, size_t from, int pid, int timeout_s) {
    double deadline = fedc_clock_s() + timeout_s;
    for (;;) {
        size_t len = 0;
        char *s = proc_read_file(path, &len);
        int found = s && len > from && strstr(s + from, needle) != NULL;
        free(s);
        if (found)
            return 0;
        if (fedc_clock_s() > deadline || (pid > 0 && !running(pid)))
            return -1;
        sleep_ms(20);
    }
}

int fed_wait(fed_proc *p, int timeout_s) {
    if (p->pid <= 0)
        return -1;
    int rc = proc_wait(p->pid, &p->res, timeout_s);
    p->pid = 0;
    return rc;
}

/* FED_SECURE=1 among the extra variables: the caller passes keys, so no --insecure. */
static int secure_env(const char *const *env_extra) {
    for (int i = 0; env_extra && env_extra[i]; i++)
        if (strcmp(env_extra[i], "FED_SECURE=1") == 0)
            return 1;
    return 0;
}

int fed_start_coord(fed *f, const char *const *env_extra, const char *const *args, int resume,
                    int timeout_s) {
    for (int attempt = 0; attempt < 5; attempt++) {
        const char *argv[FED_MAX_ARGS + 8];
        int n = 0;
        argv[n++] = f->coord_bin;
        argv[n++] = "--bind";
        argv[n++] = f->endpoint;
        /* These tests are about rounds and faults; tests/net/test_admission.c covers CurveZMQ. */
        if (!secure_env(env_extra))
            argv[n++] = "--insecure";
        /* Plain aggregation unless a test passes --secagg on (a later flag wins): the exact
         * FedAvg comparisons need it; tests/fl/test_secure.c runs the secure rounds. */
        argv[n++] = "--secagg";
        argv[n++] = "off";
        for (int i = 0; args && args[i]; i++) {
            if (n >= FED_MAX_ARGS + 2)
                return -1;
            argv[n++] = args[i];
        }
        argv[n] = NULL;
        const char *env[32];
        make_env(env, 32, env_extra);
        size_t from = fed_file_size(f->coord.err);
        f->coord.pid = proc_spawn(argv, env, f->coord.out, f->coord.err);
        if (f->coord.pid < 0) {
            f->coord.pid = 0;
            return -1;
        }
        if (fed_wait_text(f->coord.err, "listening on", from, f->coord.pid, timeout_s) == 0)
            return 0;
        char *s = proc_read_file(f->coord.err, NULL);
        int bind_failed = s && strlen(s) > from && strstr(s + from, "cannot bind") != NULL;
        free(s);
        reap(&f->coord);
        if (!bind_failed || resume)
            break;
        int port = pick_port();
        if (port < 0)
            break;
        set_port(f, port);
    }
    fprintf(stderr, "fed: the coordinator did not start listening on %s\n", f->endpoint);
    return -1;
}

int fed_start_client(fed *f, const char *name, const char *csv, const char *const *env_extra,
                     const char *const *args) {
    if (f->n_cl >= FED_MAX_CLIENTS)
        return -1;
    fed_proc *p = &f->cl[f->n_cl];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    char file[96];
    snprintf(file, sizeof file, "%s.out", name);
    p->out = fed_path(f, file);
    snprintf(file, sizeof file, "%s.err", name);
    p->err = fed_path(f, file);
    if (!p->out || !p->err) {
        proc_free(p);
        return -1;
    }
    f->n_cl++;
    const char *argv[FED_MAX_ARGS + 18];
    int n = 0;
    argv[n++] = f->client_bin;
    argv[n++] = "--connect";
    argv[n++] = f->endpoint;
    argv[n++] = "--name";
    argv[n++] = name;
    argv[n++] = "--data";
    argv[n++] = csv;
    argv[n++] = "--label";
    argv[n++] = "bad";
    argv[n++] = "--heartbeat-ms";
    argv[n++] = "200";
    argv[n++] = "--coordinator-timeout";
    argv[n++] = "40";
    if (!secure_env(env_extra))
        argv[n++] = "--insecure";
    argv[n++] = "--secagg"; /* accept plain requests; secure ones are answered as well */
    argv[n++] = "off";
    for (int i = 0; args && args[i]; i++) {
        if (n >= FED_MAX_ARGS + 14)
            return -1;
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    const char *env[32];
    make_env(env, 32, env_extra);
    p->pid = proc_spawn(argv, env, p->out, p->err);
    if (p->pid < 0) {
        p->pid = 0;
        return -1;
    }
    return f->n_cl - 1;
}

int fed_json_num(const char *json, const char *key, double *v) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    if (strncmp(p, "null", 4) == 0) {
        *v = NAN;
        return 0;
    }
    char *end;
    *v = strtod(p, &end);
    if (end == p || (*end != ',' && *end != '}'))
        return -1;
    return 1;
}

int fed_read_metrics(const char *path, fed_round *out, int max) {
    /* Every line JSON, no key twice: what the fields below are read from is checked whole. */
    char why[600];
    if (json_file_check(path, why, sizeof why) < 0) {
        fprintf(stderr, "fed: %s\n", why);
        return -1;
    }
    size_t len = 0;
    char *s = proc_read_file(path, &len);
    if (!s)
        return -1;
    int n = 0, rc = 0;
    char *line = s;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (!nl) {
            fprintf(stderr, "fed: %s: torn last line '%s'\n", path, line);
            rc = -1;
            break;
        }
        *nl = 0;
        double r = 0, p = 0, sel = 0, loss = NAN, auc = NAN;
        size_t ll = strlen(line);
        if (ll < 2 || line[0] != '{' || line[ll - 1] != '}' ||
            fed_json_num(line, "round", &r) != 1 || fed_json_num(line, "participants", &p) != 1 ||
            fed_json_num(line, "selected", &sel) != 1 ||
            fed_json_num(line, "train_loss", &loss) < 0 ||
            fed_json_num(line, "val_roc_auc", &auc) < 0) {
            fprintf(stderr, "fed: %s: line %d is not a metrics object: '%s'\n", path, n + 1, line);
            rc = -1;
            break;
        }
        if (n < max) {
            double secs = NAN, ex = 0;
            (void)fed_json_num(line, "seconds", &secs);
            (void)fed_json_num(line, "excluded", &ex);
            out[n].seconds = secs;
            out[n].excluded = (int)ex;
            out[n].abandoned = strstr(line, "\"abandoned\":true") != NULL;
            out[n].round = (long)r;
            out[n].participants = (int)p;
            out[n].selected = (int)sel;
            out[n].train_loss = loss;
            out[n].val_roc_auc = auc;
        }
        n++;
        line = nl + 1;
    }
    free(s);
    return rc ? -1 : n;
}

double fed_metric_at(const char *path, int i, const char *key) {
    size_t len = 0;
    char *text = proc_read_file(path, &len);
    double v = NAN;
    if (!text)
        return v;
    char *line = text;
    for (int k = 0; k < i && line; k++) {
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    if (line) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (fed_json_num(line, key, &v) != 1)
            v = NAN;
    }
    free(text);
    return v;
}

int fed_deal_rows(const fed *f, const char *src, const char *label, int n, const char *prefix) {
    size_t len = 0;
    char *text = proc_read_file(src, &len);
    FILE *out[FED_MAX_CLIENTS] = {0};
    int rc = text && n > 0 && n <= FED_MAX_CLIENTS ? 0 : -1;
    for (int k = 0; k < n && !rc; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s%d.csv", prefix, k);
        char *p = fed_path(f, name);
        out[k] = p ? fopen(p, "w") : NULL;
        free(p);
        rc = out[k] ? 0 : -1;
    }
    char *line = rc ? NULL : text, *next;
    for (long row = -1; line && *line && !rc; row++, line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (row >= 0) {
            fprintf(out[row % n], "%s\n", line);
            continue;
        }
        char *lab = strstr(line, label);
        if (!lab) {
            rc = -1;
            break;
        }
        *lab = '\0';
        for (int k = 0; k < n; k++)
            fprintf(out[k], "%sbad%s\n", line, lab + strlen(label));
    }
    for (int k = 0; k < n && k < FED_MAX_CLIENTS; k++)
        if (out[k] && fclose(out[k]) != 0)
            rc = -1;
    free(text);
    return rc;
}
