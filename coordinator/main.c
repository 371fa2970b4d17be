/* fedc-coordinator: flags into a configuration (args.c), then the coordinator object (coord.c)
 * runs the federation; the exit code is the run's. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "prog.h"
#include "coord_args.h"
#include "edge.h"

/* The running coordinator, for the signal handler (this program's globals). */
static fedc_coord *g_running;
/* An edge aggregator (--upstream) polls this flag instead: it runs two objects. */
static volatile int g_edge_stop;

/* SIGINT, SIGTERM: stop (exit 0; the checkpoint holds the rounds done). SIGHUP: read the
 * --allow directory again (systemd's ExecReload sends it). */
static void on_signal(int sig) {
    if (sig != SIGHUP)
        g_edge_stop = 1;
    if (!g_running)
        return;
    if (sig == SIGHUP)
        fedc_coord_reload(g_running);
    else
        fedc_coord_stop(g_running);
}

int main(int argc, char **argv) {
    coord_cfg c;
    edge_cfg e;
    int rc = fedc_coord_args_edge(&c, &e, argc, argv);
    if (rc >= 0)
        return rc; /* --help, or a bad flag (already said) */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* Before a coordinator runs, a SIGHUP finds g_running NULL and is ignored instead of killing
     * the process (its default). */
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (e.upstream) {
        rc = fedc_edge_run(&c, &e, &g_edge_stop);
        edge_cfg_release(&e);
        return rc;
    }
    fedc_coord *co = NULL;
    fedc_diag d;
    if (fedc_coord_new(&co, &c, &d)) {
        cli_error("fedc-coordinator", "%s", d.msg);
        return FEDC_EXIT_USAGE;
    }
    g_running = co;
    rc = fedc_coord_run(co);
    g_running = NULL;
    fedc_coord_destroy(&co);
    return rc;
}
