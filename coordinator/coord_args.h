/* fedc-coordinator's flags into a coordinator configuration: the program's part, kept out of
 * libfedc (it uses the option table and helpers of core/prog). */
#ifndef FEDC_COORD_ARGS_H
#define FEDC_COORD_ARGS_H

#include "fedc/coord.h"

/* Fills out from the program's flags (argv[0] is the program), with the defaults and every
 * check of fedc-coordinator --help: returns -1 when out is ready to run, else the exit code to
 * end with (0 after --help, FEDC_EXIT_USAGE after a message on stderr). Strings in out point
 * into argv. */
int fedc_coord_args(coord_cfg *out, int argc, char **argv);

#endif
