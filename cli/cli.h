/* The fedc toolbox's subcommands (cmd_*.c) and the report writer; the helpers they share with
 * fedc-coordinator and fedc-client live in core/prog (prog.h, options.h). */
#ifndef FEDC_CLI_H
#define FEDC_CLI_H

#include "options.h"
#include "prog.h"

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_split(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_privacy(int argc, char **argv);
int cmd_provision(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_tune(int argc, char **argv);

#endif
