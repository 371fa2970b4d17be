/* fedc-client: flags into a configuration (args.c), then the client object (client.c) takes part
 * in the run; the exit code is the run's. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "prog.h"
#include "client_args.h"

/* The running client, for the signal handler (this program's only global). */
static fedc_client *g_running;

/* SIGINT, SIGTERM: stop (say Bye, exit 0). SIGHUP: read the --peers roster again (systemd's
 * ExecReload sends it). */
static void on_signal(int sig) {
    if (!g_running)
        return;
    if (sig == SIGHUP)
        fedc_client_reload(g_running);
    else
        fedc_client_stop(g_running);
}

int main(int argc, char **argv) {
    client_args a;
    int rc = fedc_client_args(&a, argc, argv);
    if (rc >= 0) {
        fedc_client_args_release(&a);
        return rc; /* --help, or a bad flag (already said) */
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* Before a client runs, a SIGHUP finds g_running NULL and is ignored instead of killing the
     * process (its default). */
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fedc_client *cl = NULL;
    fedc_diag d;
    rc = FEDC_EXIT_USAGE;
    if (fedc_client_new(&cl, &a.cfg, &d)) {
        cli_error("fedc-client", "%s", d.msg);
    } else {
        g_running = cl;
        rc = fedc_client_run(cl);
        g_running = NULL;
        fedc_client_destroy(&cl);
    }
    fedc_client_args_release(&a);
    return rc;
}
