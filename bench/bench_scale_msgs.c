/* bench_scale's second baseline: the cost of receiving and sending a round's MESSAGES over ZeroMQ.
 *
 * The first baseline (bench_scale_base.c) moves a round's bytes per client in four messages; the
 * coordinator moves them in many more (a secure round: two SecAgg+ sessions of several round trips
 * each, chunk pulls, heartbeats), and ZeroMQ's cost is mostly per message. This one replays, per
 * client and round, the coordinator's own message counts and sizes by kind, read from the last
 * round's metrics line ("msgs_by_kind", "bytes_by_kind": {"kind": [training in, training out,
 * evaluation in, evaluation out]}):
 *
 * - a kind's total count in one direction and part of the round is dealt to the clients as evenly
 *   as whole messages allow (client i gets floor((i+1)C/n) - floor(iC/n)), and its total bytes to
 *   those messages likewise, so that every kind's count and bytes, and so every direction's, are
 *   the coordinator's exactly;
 * - the rhythm is the coordinator's request/answer one: the ROUTER (a process of its own, bound
 *   with the coordinator's socket setup, bs_router_open) sends a step's message to every client,
 *   waits for all of that step's answers, then sends the next step. A client's steps are its
 *   messages down, the training's then the evaluation's, each in kind order; its messages up are
 *   spread over its steps in order (step j of d in a part of the round answers up messages
 *   floor(j u / d) .. floor((j + 1) u / d) - 1 of that part's u), so that the last step of a part
 *   is always answered. Which message answers which differs from the real protocol (heartbeats
 *   and downloaded chunks are the clients' requests there, here the ROUTER's), the numbers do not;
 * - a message is one frame (the coordinator's with a tensor are two: envelope and raw values);
 *   those of at least ZERO_COPY bytes go zero-copy from one buffer, as the coordinator sends its
 *   weights and chunks, smaller ones are copied, as it sends an encoded envelope.
 *
 * Both processes build the same plan from the same figures: the child gets them on its command
 * line. Nothing is decoded: the dealers answer by counting the messages they receive. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <zmq.h>

#include <cjson/cJSON.h>

#include "bench_scale.h"
#include "fedc/clock.h"

#define ZERO_COPY 65536 /* bytes from which a message goes zero-copy (a chunked update's bound) */
#define SILENCE_S 600.0 /* a dealer gives up after this long without a message (see base.c) */
#define SPEC_LEN (8 * 21 + 8) /* one kind on the command line: eight counts and commas */

/* ---- the plan: the last round's figures ---- */

/* The four numbers of each kind under key (an object of kind: [4 counts]) into v, the kind
 * names into names; the count, or -1 when the object is missing or malformed. */
static int read_kinds(const cJSON *root, const char *key, char (*names)[BM_NAME],
                      uint64_t (*v)[4]) {
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, key), *kind;
    if (!cJSON_IsObject(obj))
        return -1;
    int n = 0;
    cJSON_ArrayForEach(kind, obj) {
        if (n == BM_KINDS || strlen(kind->string) >= BM_NAME || !cJSON_IsArray(kind) ||
            cJSON_GetArraySize(kind) != 4)
            return -1;
        snprintf(names[n], BM_NAME, "%s", kind->string);
        for (int i = 0; i < 4; i++) {
            const cJSON *x = cJSON_GetArrayItem(kind, i);
            if (!cJSON_IsNumber(x) || x->valuedouble < 0)
                return -1;
            v[n][i] = (uint64_t)x->valuedouble;
        }
        n++;
    }
    return n;
}

int bm_parse(const char *line, bm_plan *p) {
    char names[BM_KINDS][BM_NAME];
    uint64_t msgs[BM_KINDS][4];
    memset(p, 0, sizeof *p);
    cJSON *root = cJSON_Parse(line);
    int nb = read_kinds(root, "bytes_by_kind", p->name, p->bytes);
    int nm = read_kinds(root, "msgs_by_kind", names, msgs);
    cJSON_Delete(root);
    if (nb < 0 || nm < 0) {
        fprintf(stderr,
                "the metrics line has no readable %s (a coordinator older than "
                "msgs_by_kind?)\n",
                nb < 0 ? "bytes_by_kind" : "msgs_by_kind");
        return -1;
    }
    /* the same kinds in both (the coordinator writes both from one loop); matched by name */
    for (int k = 0; k < nb; k++) {
        int j = 0;
        while (j < nm && strcmp(names[j], p->name[k]) != 0)
            j++;
        if (j == nm) {
            fprintf(stderr, "msgs_by_kind has no \"%s\", bytes_by_kind has\n", p->name[k]);
            return -1;
        }
        for (int i = 0; i < 4; i++) {
            p->msgs[k][i] = msgs[j][i];
            if ((p->msgs[k][i] == 0) != (p->bytes[k][i] == 0)) {
                fprintf(stderr, "%s: %llu messages of %llu bytes in column %d\n", p->name[k],
                        (unsigned long long)p->msgs[k][i], (unsigned long long)p->bytes[k][i], i);
                return -1;
            }
        }
    }
    if (nm != nb) {
        fprintf(stderr, "msgs_by_kind has %d kinds, bytes_by_kind %d\n", nm, nb);
        return -1;
    }
    p->n = nb;
    return 0;
}

void bm_print(const bm_plan *p, int n) {
    printf("  per client in the last round, by message kind: bytes (training in / out, evaluation "
           "in / out), then messages (the same columns)\n");
    double in = 0, out = 0;
    for (int k = 0; k < p->n; k++) {
        const uint64_t *b = p->bytes[k], *m = p->msgs[k];
        printf("    %-16s %12.1f %12.1f %12.1f %12.1f   %7.2f %7.2f %7.2f %7.2f\n", p->name[k],
               (double)b[0] / n, (double)b[1] / n, (double)b[2] / n, (double)b[3] / n,
               (double)m[0] / n, (double)m[1] / n, (double)m[2] / n, (double)m[3] / n);
        in += (double)(m[0] + m[2]), out += (double)(m[1] + m[3]);
    }
    printf("    messages per client: %.2f up, %.2f down\n", in / n, out / n);
}

/* ---- one client's script ---- */

typedef struct script {
    int steps;    /* messages down per round */
    size_t *down; /* [steps]: their sizes */
    int *up_at;   /* [steps + 1]: step s is answered by up[up_at[s] .. up_at[s + 1]) */
    size_t *up;
} script;

/* Where client i's messages start when c are dealt over n clients: client i gets
 * floor((i + 1) c / n) - floor(i c / n) of them. */
static uint64_t share_lo(uint64_t c, int i, int n) {
    return c * (uint64_t)i / (uint64_t)n;
}

/* Bytes of message m (0..c-1) when b bytes are dealt over c messages: floor((m + 1) b / c) -
 * floor(m b / c), computed without overflow (b % c < c). */
static size_t size_of(uint64_t b, uint64_t c, uint64_t m) {
    uint64_t r = b % c;
    return (size_t)(b / c + ((m + 1) * r) / c - (m * r) / c);
}

/* Appends client i's messages of column col (0 training in, 1 training out, 2, 3 evaluation) to
 * out (when given) in kind order; returns their number. */
static int deal(const bm_plan *p, int col, int i, int n, size_t *out) {
    int got = 0;
    for (int k = 0; k < p->n; k++) {
        uint64_t c = p->msgs[k][col], lo = share_lo(c, i, n), hi = share_lo(c, i + 1, n);
        for (uint64_t m = lo; m < hi; m++, got++)
            if (out)
                out[got] = size_of(p->bytes[k][col], c, m);
    }
    return got;
}

/* Client i's script; *lost gets the messages up it has no step to answer with (a client sent
 * something while it was sent nothing). 0, or -1 when out of memory. */
static int script_build(const bm_plan *p, int i, int n, script *s, int *lost) {
    int d[2], u[2];
    for (int ph = 0; ph < 2; ph++)
        d[ph] = deal(p, 2 * ph + 1, i, n, NULL), u[ph] = deal(p, 2 * ph, i, n, NULL);
    memset(s, 0, sizeof *s);
    s->steps = d[0] + d[1];
    s->down = malloc(sizeof *s->down * (size_t)(s->steps + 1));
    s->up_at = calloc((size_t)s->steps + 1, sizeof *s->up_at);
    s->up = malloc(sizeof *s->up * (size_t)(u[0] + u[1] + 1));
    if (!s->down || !s->up_at || !s->up)
        return -1;
    deal(p, 1, i, n, s->down);
    deal(p, 3, i, n, s->down + d[0]);
    deal(p, 0, i, n, s->up);
    deal(p, 2, i, n, s->up + u[0]);
    /* The up messages are in order, so each step only needs where its answers end: the first
     * step starts at 0 (also taking a part's answers when that part sent nothing down), and the
     * last ends at the end. */
    int g = 0, base = 0;
    for (int ph = 0; ph < 2; ph++) {
        for (int j = 0; j < d[ph]; j++)
            s->up_at[++g] = base + (int)((int64_t)(j + 1) * u[ph] / d[ph]);
        base += u[ph];
    }
    if (s->steps > 0)
        s->up_at[s->steps] = base;
    *lost = s->steps > 0 ? 0 : base;
    return 0;
}

static void script_free(script *s) {
    free(s->down), free(s->up_at), free(s->up);
}

static void scripts_free(script *sc, int n) {
    for (int i = 0; sc && i < n; i++)
        script_free(&sc[i]);
    free(sc);
}

/* The plan's messages and bytes up (col 0) or down (col 1), both parts of the round. */
static void plan_total(const bm_plan *p, int col, uint64_t *msgs, uint64_t *bytes) {
    *msgs = *bytes = 0;
    for (int k = 0; k < p->n; k++) {
        *msgs += p->msgs[k][col] + p->msgs[k][col + 2];
        *bytes += p->bytes[k][col] + p->bytes[k][col + 2];
    }
}

/* Every client's script, and the largest message each way; NULL (said) when out of memory or when
 * the scripts do not add up to the plan's totals each way (which is this baseline's claim). */
static script *scripts_build(const bm_plan *p, int n, size_t *max_down, size_t *max_up) {
    script *sc = calloc((size_t)n, sizeof *sc);
    int lost = 0;
    uint64_t got[4] = {0, 0, 0, 0}; /* messages down, their bytes, messages up, their bytes */
    *max_down = *max_up = 1;
    for (int i = 0; sc && i < n; i++) {
        int l = 0;
        if (script_build(p, i, n, &sc[i], &l)) {
            scripts_free(sc, i + 1);
            fprintf(stderr, "message baseline: out of memory\n");
            return NULL;
        }
        lost += l;
        got[0] += (uint64_t)sc[i].steps;
        got[2] += (uint64_t)sc[i].up_at[sc[i].steps];
        for (int s = 0; s < sc[i].steps; s++) {
            *max_down = sc[i].down[s] > *max_down ? sc[i].down[s] : *max_down;
            got[1] += sc[i].down[s];
        }
        for (int a = 0; a < sc[i].up_at[sc[i].steps]; a++) {
            *max_up = sc[i].up[a] > *max_up ? sc[i].up[a] : *max_up;
            got[3] += sc[i].up[a];
        }
    }
    if (!sc) {
        fprintf(stderr, "message baseline: out of memory\n");
        return NULL;
    }
    uint64_t want[4];
    plan_total(p, 1, &want[0], &want[1]);
    plan_total(p, 0, &want[2], &want[3]);
    if (lost || memcmp(got, want, sizeof want) != 0) {
        fprintf(stderr,
                "message baseline: its clients would move %llu messages (%llu bytes) down and "
                "%llu (%llu bytes) up, the coordinator's %llu (%llu) and %llu (%llu)%s\n",
                (unsigned long long)got[0], (unsigned long long)got[1], (unsigned long long)got[2],
                (unsigned long long)got[3], (unsigned long long)want[0],
                (unsigned long long)want[1], (unsigned long long)want[2],
                (unsigned long long)want[3],
                lost ? ": a client sent messages while it was sent none" : "");
        scripts_free(sc, n);
        return NULL;
    }
    return sc;
}

/* ---- the plan on the command line ---- */

static void spec_format(const bm_plan *p, int k, char *out, size_t cap) {
    const uint64_t *m = p->msgs[k], *b = p->bytes[k];
    snprintf(out, cap, "%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu", (unsigned long long)m[0],
             (unsigned long long)m[1], (unsigned long long)m[2], (unsigned long long)m[3],
             (unsigned long long)b[0], (unsigned long long)b[1], (unsigned long long)b[2],
             (unsigned long long)b[3]);
}

static int spec_parse(const char *s, bm_plan *p, int k) {
    char *e = (char *)s;
    for (int i = 0; i < 8; i++) {
        const char *at = e;
        uint64_t v = strtoull(at, &e, 10);
        if (e == at || *e != (i < 7 ? ',' : '\0'))
            return -1;
        e += i < 7;
        if (i < 4)
            p->msgs[k][i] = v;
        else
            p->bytes[k][i - 4] = v;
    }
    snprintf(p->name[k], BM_NAME, "kind%d", k);
    return (p->msgs[k][0] | p->msgs[k][1] | p->msgs[k][2] | p->msgs[k][3]) ? 0 : -1;
}

/* ---- the ROUTER ---- */

static void no_free(void *data, void *hint) {
    (void)data;
    (void)hint;
}

static int send_one(void *s, const uint8_t *id, size_t id_len, uint8_t *buf, size_t bytes) {
    if (zmq_send(s, id, id_len, ZMQ_SNDMORE) < 0)
        return -1;
    if (bytes < ZERO_COPY)
        return zmq_send(s, buf, bytes, 0) < 0 ? -1 : 0;
    zmq_msg_t m;
    if (zmq_msg_init_data(&m, buf, bytes, no_free, NULL) != 0)
        return -1;
    if (zmq_msg_send(&m, s, 0) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    return 0;
}

/* The clients' hellos, each with its index (4 bytes): the routing id of client i into ids[i]. */
static int recv_hellos(void *s, int n, uint8_t (*ids)[BS_ID_MAX], size_t *id_len) {
    for (int got = 0; got < n; got++) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        uint32_t i = UINT32_MAX;
        int ok = zmq_msg_recv(&id, s, 0) >= 0 && zmq_msg_more(&id) &&
                 zmq_msg_recv(&body, s, 0) >= 0 && zmq_msg_size(&body) == 4;
        if (ok)
            memcpy(&i, zmq_msg_data(&body), 4);
        ok = ok && i < (uint32_t)n && id_len[i] == 0 && zmq_msg_size(&id) < BS_ID_MAX;
        if (ok) {
            id_len[i] = zmq_msg_size(&id);
            memcpy(ids[i], zmq_msg_data(&id), id_len[i]);
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
        if (!ok) {
            fprintf(stderr, "router: a hello that is not a new client's index (%u of %d)\n",
                    (unsigned)i, n);
            return -1;
        }
    }
    return 0;
}

int bm_router_main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "bench_scale --router-msgs PORT CLIENTS ROUNDS MAX_MSG KIND...\n");
        return 2;
    }
    int port = atoi(argv[0]), n = atoi(argv[1]), rounds = atoi(argv[2]);
    size_t max_msg = strtoull(argv[3], NULL, 10);
    static bm_plan p;
    p.n = argc - 4;
    if (n < 1 || rounds < 1 || p.n > BM_KINDS) {
        fprintf(stderr, "router: %d clients, %d rounds, %d kinds\n", n, rounds, p.n);
        return 2;
    }
    for (int k = 0; k < p.n; k++)
        if (spec_parse(argv[4 + k], &p, k)) {
            fprintf(stderr, "router: kind %d: '%s' is not 8 counts with a message\n", k,
                    argv[4 + k]);
            return 2;
        }
    size_t max_down, max_up;
    script *sc = scripts_build(&p, n, &max_down, &max_up);
    int steps = 0;
    for (int i = 0; sc && i < n; i++)
        steps = sc[i].steps > steps ? sc[i].steps : steps;
    int *expect = calloc((size_t)steps + 1, sizeof *expect);
    for (int i = 0; sc && expect && i < n; i++)
        for (int s = 0; s < sc[i].steps; s++)
            expect[s] += sc[i].up_at[s + 1] - sc[i].up_at[s];
    uint8_t(*ids)[BS_ID_MAX] = calloc((size_t)n, BS_ID_MAX);
    size_t *id_len = calloc((size_t)n, sizeof *id_len);
    uint8_t *buf = malloc(max_down);
    double *cpu = calloc((size_t)rounds, sizeof *cpu), *wall = calloc((size_t)rounds, sizeof *wall);
    void *zctx = NULL;
    fedc_endpoint *ep = NULL;
    int mem = sc && expect && ids && id_len && buf && cpu && wall;
    if (sc && !mem)
        fprintf(stderr, "router: out of memory\n");
    void *s = mem ? bs_router_open(port, max_msg, &zctx, &ep) : NULL;
    /* a client that stopped answering ends the run instead of holding it (and the parent) */
    int timeout_ms = (int)(SILENCE_S * 1e3), rc = s ? 0 : 1;
    if (rc == 0 && zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms) != 0)
        rc = 1;
    if (rc == 0) {
        memset(buf, 0x3c, max_down);
        rc = recv_hellos(s, n, ids, id_len);
    }
    uint64_t want_msgs, want_bytes;
    plan_total(&p, 0, &want_msgs, &want_bytes);
    for (int r = 0; rc == 0 && r < rounds; r++) {
        double t0 = fedc_clock_s(), c0 = bs_cpu_s(0);
        uint64_t bytes = 0;
        for (int st = 0; rc == 0 && st < steps; st++) {
            for (int i = 0; rc == 0 && i < n; i++)
                if (st < sc[i].steps && send_one(s, ids[i], id_len[i], buf, sc[i].down[st])) {
                    fprintf(stderr, "router: round %d, step %d, client %d: cannot send: %s\n",
                            r + 1, st + 1, i, zmq_strerror(zmq_errno()));
                    rc = 1;
                }
            if (rc == 0 && bs_recv_n(s, expect[st], NULL, NULL, &bytes)) {
                fprintf(stderr, "router: round %d, step %d: %d answers expected: %s\n", r + 1,
                        st + 1, expect[st], zmq_strerror(zmq_errno()));
                rc = 1;
            }
        }
        cpu[r] = 1e3 * (bs_cpu_s(0) - c0);
        wall[r] = 1e3 * (fedc_clock_s() - t0);
        /* what came up is what the coordinator received (the counts are by construction) */
        if (rc == 0 && bytes != want_bytes) {
            fprintf(stderr, "router: round %d received %llu bytes, the coordinator %llu\n", r + 1,
                    (unsigned long long)bytes, (unsigned long long)want_bytes);
            rc = 1;
        }
    }
    if (rc == 0) {
        int skip = rounds > 1; /* round 1 pays for the first buffers, as in the other baseline */
        printf("%.6f %.6f\n", bs_median(cpu + skip, rounds - skip),
               bs_median(wall + skip, rounds - skip));
        fflush(stdout);
    }
    bs_router_close(&zctx, &ep);
    scripts_free(sc, n);
    free(expect), free(ids), free(id_len), free(buf), free(cpu), free(wall);
    return rc ? 1 : 0;
}

/* ---- the clients ---- */

typedef struct dealers {
    void **socks;
    int lo, n;              /* clients lo .. lo + n - 1 */
    const script *sc;       /* every client's */
    const uint8_t *up;      /* the answers' bytes, shared */
    const atomic_int *stop; /* set once the ROUTER has ended */
    int err;
} dealers;

/* One thread answers for a share of the clients: each message received is the next step of that
 * client's script, answered with that step's messages, until told to stop. */
static void *dealer_main(void *arg) {
    dealers *g = arg;
    zmq_pollitem_t *items = calloc((size_t)g->n, sizeof *items);
    long *got = calloc((size_t)g->n, sizeof *got);
    if (!items || !got) {
        g->err = 1;
        free(items), free(got);
        return NULL;
    }
    for (int i = 0; i < g->n; i++)
        items[i] = (zmq_pollitem_t){g->socks[i], 0, ZMQ_POLLIN, 0};
    double heard = fedc_clock_s();
    while (!atomic_load(g->stop)) {
        int r = zmq_poll(items, g->n, 100);
        if (r < 0 || (r == 0 && fedc_clock_s() - heard > SILENCE_S)) {
            g->err = 1;
            break;
        }
        if (r > 0)
            heard = fedc_clock_s();
        for (int i = 0; r > 0 && i < g->n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t m;
            zmq_msg_init(&m);
            int ok = zmq_msg_recv(&m, g->socks[i], ZMQ_DONTWAIT) >= 0;
            zmq_msg_close(&m);
            const script *s = &g->sc[g->lo + i];
            if (!ok || s->steps == 0)
                continue;
            int st = (int)(got[i]++ % s->steps);
            for (int a = s->up_at[st]; a < s->up_at[st + 1]; a++)
                if (zmq_send_const(g->socks[i], g->up, s->up[a], ZMQ_DONTWAIT) < 0)
                    g->err = 1; /* a full queue: the ROUTER is not reading (never blocks) */
        }
    }
    free(items), free(got);
    return NULL;
}

int bm_baseline_run(const bm_plan *p, int port, int n, int rounds, size_t max_msg, double *cpu_ms,
                    double *wall_ms) {
    if (p->n < 1 || p->n > BM_KINDS)
        return -1;
    /* the plan's figures on the child's command line: it builds the same scripts from them */
    char sp[16], sn[16], sr[16], sm[32];
    static char spec[BM_KINDS][SPEC_LEN];
    char *av[5 + BM_KINDS + 1] = {"bench_scale", "--router-msgs", sp, sn, sr, sm};
    snprintf(sp, sizeof sp, "%d", port);
    snprintf(sn, sizeof sn, "%d", n);
    snprintf(sr, sizeof sr, "%d", rounds);
    snprintf(sm, sizeof sm, "%zu", max_msg);
    for (int k = 0; k < p->n; k++) {
        spec_format(p, k, spec[k], sizeof spec[k]);
        av[6 + k] = spec[k];
    }
    av[6 + p->n] = NULL;
    size_t max_down, max_up;
    script *sc = scripts_build(p, n, &max_down, &max_up);
    if (!sc)
        return -1;
    int fd = -1;
    pid_t pid = bs_router_spawn(av, &fd);
    if (pid < 0) {
        scripts_free(sc, n);
        return -1;
    }
    uint8_t *upbuf = malloc(max_up);
    void **zctx = NULL, **socks = bs_dealers_open(n, port, &zctx);
    int rc = upbuf && socks ? 0 : -1;
    if (rc == 0)
        memset(upbuf, 0x5a, max_up);
    for (uint32_t i = 0; rc == 0 && i < (uint32_t)n; i++)
        if (zmq_send(socks[i], &i, sizeof i, 0) < 0)
            rc = -1;
    atomic_int stop;
    atomic_init(&stop, 0);
    dealers g[BS_DEALER_THREADS];
    pthread_t th[BS_DEALER_THREADS];
    int started = 0;
    for (int t = 0; rc == 0 && t < BS_DEALER_THREADS; t++) {
        int lo = n * t / BS_DEALER_THREADS, hi = n * (t + 1) / BS_DEALER_THREADS;
        g[t] = (dealers){socks + lo, lo, hi - lo, sc, upbuf, &stop, 0};
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
    atomic_store(&stop, 1);
    for (int t = 0; t < started; t++) {
        pthread_join(th[t], NULL);
        if (g[t].err)
            rc = -1;
    }
    bs_dealers_close(socks, zctx, n);
    free(upbuf);
    scripts_free(sc, n);
    if (rc) {
        fprintf(stderr, "message baseline failed\n");
        return -1;
    }
    *cpu_ms = c;
    *wall_ms = w;
    return 0;
}
