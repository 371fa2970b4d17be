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

/* The same for a program that can run an edge aggregator (--upstream, edge.h): edge gets the
 * edge's flags and keys (edge->upstream NULL for a root coordinator; edge_cfg_release it). An
 * embedding through fedc_coord_args refuses --upstream. */
struct edge_cfg;
int fedc_coord_args_edge(coord_cfg *out, struct edge_cfg *edge, int argc, char **argv);

/* edge_args.c: the edge's flags from the parsed options, checked against the coordinator's
 * configuration c; 0, or FEDC_EXIT_USAGE after saying why. */
struct fedc_opts;
int fedc_edge_args(struct edge_cfg *e, const coord_cfg *c, const struct fedc_opts *o);

#endif
