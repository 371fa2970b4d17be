/* fedc tune's search (tune.h): the search space and its draws, the rungs of successive halving,
 * the ranking, the table and the config file. No processes, no files read: cmd_tune.c runs the
 * trials. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/modelfile.h"
#include "fedc/rng.h"
#include "prog.h"
#include "tune.h"

/* The search space. Learning rates are drawn log-uniformly, in a range per optimiser: Adam's
 * steps are normalised, SGD's scale with the gradient, so useful SGD rates are larger. */
static const char *const g_layers[] = {"16", "25", "64", "32,16", "64,32"};
static const int g_local_epochs[] = {1, 2, 3, 5};
static const int g_batch[] = {32, 64, 128, 256};
static const struct {
    const char *name;
    double lo, hi;
} g_opt[] = {{"adam", 1e-4, 3e-2}, {"sgd", 1e-3, 3e-1}};

#define COUNT(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))
/* The draws' stream, apart from every other use of the seed: "tune" in ASCII. */
#define TUNE_STREAM 0x74756e65u

int tune_draw(tune_trial *t, int id, uint64_t seed, const char *def_opt, const char *def_lr,
              int def_local_epochs, int def_batch, const char *def_layers) {
    memset(t, 0, sizeof *t);
    t->id = id;
    if (id == 1) {
        if (strlen(def_opt) >= sizeof t->opt || strlen(def_lr) >= sizeof t->lr ||
            strlen(def_layers) >= sizeof t->layers)
            return -1;
        snprintf(t->opt, sizeof t->opt, "%s", def_opt);
        snprintf(t->lr, sizeof t->lr, "%s", def_lr);
        snprintf(t->layers, sizeof t->layers, "%s", def_layers);
        t->local_epochs = def_local_epochs;
        t->batch = def_batch;
        return 0;
    }
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(seed, TUNE_STREAM, (uint64_t)id, 0));
    uint32_t o = fedc_rng_below(&r, COUNT(g_opt));
    snprintf(t->opt, sizeof t->opt, "%s", g_opt[o].name);
    /* log10(lr) uniform in [log10(lo), log10(hi)] */
    double a = log10(g_opt[o].lo), b = log10(g_opt[o].hi);
    double lr = pow(10.0, a + (b - a) * (double)fedc_rng_uniform(&r));
    snprintf(t->lr, sizeof t->lr, "%.3g", lr);
    t->local_epochs = g_local_epochs[fedc_rng_below(&r, COUNT(g_local_epochs))];
    t->batch = g_batch[fedc_rng_below(&r, COUNT(g_batch))];
    snprintf(t->layers, sizeof t->layers, "%s", g_layers[fedc_rng_below(&r, COUNT(g_layers))]);
    return 0;
}

int tune_rungs(int *rounds, int total, int eta) {
    int n = 1;
    long div = eta;
    /* one more rung while its first would still have a round: total / eta^(n) >= 1 */
    while (n < TUNE_MAX_RUNGS && total / div >= 1) {
        n++;
        div *= eta;
    }
    long d = 1;
    for (int i = n - 1; i >= 0; i--) {
        rounds[i] = (int)(total / d);
        d *= eta;
    }
    return n;
}

int tune_keep(int n, int eta) {
    int k = n / eta;
    return k < 1 ? 1 : k;
}

int tune_better(double a, double b, int higher) {
    if (isnan(a))
        return 0;
    if (isnan(b))
        return 1;
    return higher ? a > b : a < b;
}

double tune_result(const tune_trial *t, int *rung) {
    for (int r = TUNE_MAX_RUNGS - 1; r >= 0; r--)
        if (t->state[r] == TUNE_OK) {
            *rung = r;
            return t->value[r];
        }
    *rung = -1;
    return NAN;
}

/* qsort has no context argument: sort with a small insertion sort (trials are few). */
static void sort_ids(int *ids, int n, const tune_trial *tr, int higher, int rung) {
    for (int i = 1; i < n; i++) {
        int x = ids[i], j = i;
        while (j > 0) {
            const tune_trial *a = &tr[x], *b = &tr[ids[j - 1]];
            double va, vb;
            int ra = rung, rb = rung;
            if (rung < 0) {
                va = tune_result(a, &ra);
                vb = tune_result(b, &rb);
            } else {
                va = a->state[rung] == TUNE_OK ? a->value[rung] : NAN;
                vb = b->state[rung] == TUNE_OK ? b->value[rung] : NAN;
            }
            int before;
            if (tune_better(va, vb, higher))
                before = 1;
            else if (tune_better(vb, va, higher))
                before = 0;
            else if (ra != rb)
                before = ra > rb;
            else
                before = a->id < b->id;
            if (!before)
                break;
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = x;
    }
}

void tune_sort_rung(int *ids, int n, const tune_trial *trials, int rung, int higher) {
    sort_ids(ids, n, trials, higher, rung);
}

void tune_rank(int *ids, int n, const tune_trial *trials, int higher) {
    sort_ids(ids, n, trials, higher, -1);
}

void tune_print_table(FILE *f, const tune_trial *trials, const int *ids, int n, const int *rounds,
                      int n_rungs, const tune_metric *m) {
    fprintf(f,
            "validation %s (%s is better) at the best round of each rung; rounds: best of "
            "those run at the last rung reached\n",
            m->name, m->higher ? "higher" : "lower");
    fprintf(f, "%4s  %6s  %-9s  %-8s  %6s  %5s  %-6s", "rank", "trial", "optimizer", "lr", "epochs",
            "batch", "layers");
    for (int r = 0; r < n_rungs; r++) {
        char h[24];
        snprintf(h, sizeof h, "%d rounds", rounds[r]);
        fprintf(f, "  %9s", h);
    }
    fprintf(f, "  %7s  %7s\n", "rounds", "seconds");
    int any_default = 0, not_run = 0;
    for (int i = 0; i < n; i++) {
        const tune_trial *t = &trials[ids[i]];
        if (t->state[0] == TUNE_NOT_RUN) { /* the budget ran out before it started */
            not_run++;
            continue;
        }
        char id[16];
        snprintf(id, sizeof id, "%d%s", t->id, t->id == 1 ? "*" : "");
        any_default |= t->id == 1;
        fprintf(f, "%4d  %6s  %-9s  %-8s  %6d  %5d  %-6s", i + 1, id, t->opt, t->lr,
                t->local_epochs, t->batch, t->layers);
        double secs = 0;
        int last = -1;
        for (int r = 0; r < n_rungs; r++) {
            char v[24];
            switch (t->state[r]) {
            case TUNE_OK:
                snprintf(v, sizeof v, "%.4f", t->value[r]);
                last = r;
                break;
            case TUNE_FAILED:
                snprintf(v, sizeof v, "failed");
                break;
            case TUNE_CUT:
                snprintf(v, sizeof v, "cut");
                break;
            default:
                snprintf(v, sizeof v, "-");
            }
            fprintf(f, "  %9s", v);
            secs += t->seconds[r];
        }
        char rr[24] = "-";
        if (last >= 0)
            snprintf(rr, sizeof rr, "%d/%d", t->best_round[last], rounds[last]);
        fprintf(f, "  %7s  %7.1f\n", rr, secs);
    }
    if (any_default)
        fprintf(f, "* trial 1: the coordinator's defaults\n");
    if (not_run)
        fprintf(f, "%d trial%s not run\n", not_run, not_run == 1 ? "" : "s");
}

int tune_write_config(const char *path, const tune_trial *t, const int *rounds_run,
                      const tune_metric *m, uint64_t seed, const char *val_fraction,
                      const char *pos_weight, const char *header) {
    int rung;
    double v = tune_result(t, &rung);
    if (rung < 0) {
        cli_error("tune", "--out %s: trial %d has no result to write", path, t->id);
        return -1;
    }
    size_t cap = 4096 + (header ? strlen(header) * 2 : 0), n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        cli_error("tune", "--out %s: out of memory", path);
        return -1;
    }
#define OUT(...) n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__)
    OUT("; fedc tune: the best configuration found (trial %d)\n", t->id);
    OUT("; federated validation %s %.9g at round %d of the %d it ran (rounds = that round)\n",
        m->name, v, t->best_round[rung], rounds_run[rung]);
    /* header lines wrapped at 96 columns: libinih reads lines of at most 199 bytes, and
     * fedc-coordinator refuses a longer one (a comment included) rather than cut it */
    for (const char *h = header; h && *h;) {
        const char *e = strchr(h, '\n');
        size_t len = e ? (size_t)(e - h) : strlen(h), take = len;
        if (take > 96) {
            take = 96;
            while (take > 0 && h[take] != ' ')
                take--;
            if (take == 0)
                take = 96;
        }
        OUT("; %.*s\n", (int)take, h);
        h += take;
        while (*h == ' ')
            h++;
        if (take == len && e)
            h++;
    }
    OUT("; read with: fedc-coordinator --config FILE ... (flags given beat the file)\n");
    OUT("[coordinator]\n");
    OUT("optimizer = %s\n", t->opt);
    OUT("lr = %s\n", t->lr);
    OUT("local-epochs = %d\n", t->local_epochs);
    OUT("batch = %d\n", t->batch);
    OUT("layers = %s\n", t->layers);
    OUT("rounds = %d\n", t->best_round[rung]);
    OUT("seed = %llu\n", (unsigned long long)seed);
    OUT("val-fraction = %s\n", val_fraction);
    OUT("pos-weight = %s\n", pos_weight);
    OUT("select-metric = %s\n", m->name);
#undef OUT
    if (n >= cap) {
        free(buf);
        cli_error("tune", "--out %s: the configuration does not fit %zu bytes", path, cap);
        return -1;
    }
    fedc_diag d;
    fedc_err e = fedc_write_atomic(path, buf, n, &d);
    free(buf);
    if (e) {
        cli_error("tune", "--out: %s", d.msg);
        return -1;
    }
    return 0;
}
