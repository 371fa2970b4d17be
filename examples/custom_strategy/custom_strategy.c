/* A coordinator with a strategy of its own, built outside fedc's source tree against the installed
 * library (nothing but installed headers): FedAvg whose server learning rate decays every round,
 *   w_{t+1} = w_t + eta_0 * gamma^(t-1) * u_t,
 * u_t the round's weighted mean update (McMahan et al., AISTATS 2017: FedAvg is eta = 1; a
 * decaying step size is the usual condition for convergence of FedAvg on non-iid data, Li et al.,
 * "On the Convergence of FedAvg on Non-IID Data", ICLR 2020, Theorem 1). The strategy only needs
 * the mean update, so it runs with secure aggregation on (the default): the coordinator never sees
 * one client's update. Client selection is fedc's (select left NULL).
 *
 * It prints one line per round on stdout from inside the strategy ("custom_strategy: round R
 * server lr X"), which tests/fl/test_custom_strategy.c parses.
 *
 *   custom_strategy --bind tcp://0.0.0.0:7070 [--rounds N] [--min-clients N] [--model-out FILE]
 *                   [--server-lr ETA0] [--lr-decay GAMMA] [--seed N] [--secagg on|off]
 *                   [--insecure]
 * The clients are stock fedc-client processes. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* sigaction */
#endif
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/coord.h"
#include "fedc/strategy.h"

typedef struct decay {
    double lr0;   /* eta_0 */
    double gamma; /* per-round factor */
} decay;

static fedc_err decay_step(void *ctx, uint32_t round, float *w, const float *u, size_t p,
                           fedc_diag *d) {
    (void)d;
    const decay *s = ctx;
    const float lr = (float)(s->lr0 * pow(s->gamma, (double)round - 1.0));
    double norm = 0;
    for (size_t i = 0; i < p; i++) {
        w[i] += lr * u[i];
        norm += (double)u[i] * u[i];
    }
    printf("custom_strategy: round %u server lr %.9g update norm %.6g\n", round, (double)lr,
           sqrt(norm));
    fflush(stdout);
    return FEDC_OK;
}

static fedc_coord *g_running;

static void on_signal(int sig) {
    (void)sig;
    if (g_running)
        fedc_coord_stop(g_running);
}

static int usage(void) {
    fprintf(stderr, "usage: custom_strategy --bind ENDPOINT [--rounds N] [--min-clients N] "
                    "[--model-out FILE] [--server-lr ETA0] [--lr-decay GAMMA] [--seed N] "
                    "[--secagg on|off] [--insecure]\n");
    return 2;
}

/* A positive number from a flag's value, or -1 (with a message) when it is not one. */
static double number(const char *flag, const char *v) {
    char *end = NULL;
    double x = strtod(v, &end);
    if (!end || *end || !(x > 0) || !isfinite(x)) {
        fprintf(stderr, "custom_strategy: %s: expected a positive number, got '%s'\n", flag, v);
        return -1;
    }
    return x;
}

int main(int argc, char **argv) {
    coord_cfg cfg;
    fedc_coord_defaults(&cfg); /* the same defaults as fedc-coordinator */
    decay st = {1.0, 0.5};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--insecure") == 0) {
            cfg.insecure = 1;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        double x = 1;
        if (strcmp(a, "--bind") == 0)
            cfg.bind = v;
        else if (strcmp(a, "--model-out") == 0)
            cfg.model_out = v;
        else if (strcmp(a, "--secagg") == 0 && (!strcmp(v, "on") || !strcmp(v, "off")))
            cfg.secagg = strcmp(v, "on") == 0;
        else if (strcmp(a, "--rounds") == 0 && (x = number(a, v)) > 0)
            cfg.rounds = (int)x;
        else if (strcmp(a, "--min-clients") == 0 && (x = number(a, v)) > 0)
            cfg.min_clients = cfg.min_fit_clients = (int)x;
        else if (strcmp(a, "--seed") == 0 && (x = number(a, v)) > 0)
            cfg.seed = (uint64_t)x;
        else if (strcmp(a, "--server-lr") == 0 && (x = number(a, v)) > 0)
            st.lr0 = x;
        else if (strcmp(a, "--lr-decay") == 0 && (x = number(a, v)) > 0)
            st.gamma = x;
        else
            return x < 0 ? 2 : usage();
    }
    if (!cfg.bind)
        return usage();
    fedc_strategy s = {.name = "fedavg-decay", .ctx = &st, .server_step = decay_step};
    cfg.strategy = &s;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fedc_coord *co = NULL;
    fedc_diag d;
    if (fedc_coord_new(&co, &cfg, &d)) {
        fprintf(stderr, "custom_strategy: %s\n", d.msg);
        return 2;
    }
    g_running = co;
    int rc = fedc_coord_run(co);
    g_running = NULL;
    fedc_coord_destroy(&co);
    fedc_strategy_destroy(&s); /* no destroy callback: st lives on the stack */
    return rc;
}
