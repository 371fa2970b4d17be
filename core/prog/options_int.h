/* What options.c (the option table and its parser) and options_help.c (--help and
 * --print-config) share. Inside core/prog only. */
#ifndef FEDC_PROG_OPTIONS_INT_H
#define FEDC_PROG_OPTIONS_INT_H

#include <stdio.h>

#include "options.h"

/* What FEDC_<NAME> means instead when id has no variable, else NULL. */
const char *fedc__opt_no_env_reason(fedc_opt_id id);

/* --help for o->prog: h's usage and intro, the program's options by section, the general flags,
 * the environment rules and their exceptions, then h's outro. */
void fedc__opts_print_help(FILE *f, const fedc_opts *o, const fedc_prog_help *h);

/* --print-config: every option o->prog takes, as an INI section, with where its value came from. */
void fedc__opts_print_config(FILE *f, const fedc_opts *o);

#endif
