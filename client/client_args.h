/* fedc-client's flags into a client configuration: the program's part, kept out of libfedc (it
 * uses the option table and helpers of core/prog). */
#ifndef FEDC_CLIENT_ARGS_H
#define FEDC_CLIENT_ARGS_H

#include "fedc/client.h"
#include "loadopts.h"

/* A configuration parsed from fedc-client's flags, with what it owns: the keys it loaded and the
 * dropped-column list. Keep it in place while a client runs on &cfg (cfg points into it). */
typedef struct client_args {
    client_cfg cfg;
    fedc_identity self, coord;
    fedc_identity *peers;
    char **drop_list;
    fedc_load_opts load; /* the loader flags (cfg.encoding, cfg.features point here) */
    char host[65];
} client_args;

/* Fills args from the program's flags (argv[0] is the program), with the defaults, every check
 * of fedc-client --help and the keys loaded: returns -1 when args->cfg is ready to run, else the
 * exit code to end with (0 after --help, FEDC_EXIT_USAGE after a message on stderr). Release it
 * with fedc_client_args_release in both cases. Strings in cfg point into argv and args. */
int fedc_client_args(client_args *args, int argc, char **argv);
void fedc_client_args_release(client_args *args);

#endif
