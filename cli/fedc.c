/* fedc: the toolbox. Dispatches to one subcommand per file (cmd_*.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: fedc <command> [options]\n"
            "\n"
            "commands:\n"
            "  train   train a model centrally on one CSV file (the baseline for federated runs)\n"
            "  eval    evaluate a saved model on a CSV file\n"
            "  inspect what a model file holds: architecture, features, its card (threshold,\n"
            "          the round kept, validation metrics, training settings)\n"
            "  predict score a CSV file with a saved model, streaming (scores and decisions)\n"
            "  split   partition a CSV file into per-client CSV files for federated simulations\n"
            "  keygen  create a participant's identity (NAME.key and NAME.key_secret)\n"
            "  provision\n"
            "          one startup kit per participant: its keys, rosters, config, start script\n"
            "  features\n"
            "          time-window aggregates per customer or terminal from raw transactions\n"
            "  export  write a model as an ONNX graph (standardisation, layers, output)\n"
            "  synth   generate card transactions for several banks (fraud scenarios, features)\n"
            "  demo    three banks train one fraud model: synth, keys, a federation, a report\n"
            "  report  the HTML report of a finished federation (metrics file, model, test data)\n"
            "  privacy the (epsilon, delta) of the sampled Gaussian mechanism (RDP accountant)\n"
            "  health  ask a program's --metrics-listen probe (/healthz, /readyz): exit 0 on 200\n"
            "  sim     run a federation of local processes and compare it with centralised and\n"
            "          client-alone training\n"
            "  tune    search for a good federated configuration (successive halving over\n"
            "          federations of your shards, judged on federated validation)\n"
            "  help    show this message (also --help, -h)\n"
            "\n"
            "Run 'fedc <command> --help' for the options of a command. Every command also takes\n"
            "--config FILE (its section of an INI file), --print-config and --version, and reads\n"
            "FEDC_<OPTION> environment variables; 'fedc --version' shows the build.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return FEDC_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0)
        return cmd_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "predict") == 0)
        return cmd_predict(argc - 1, argv + 1);
    if (strcmp(cmd, "split") == 0)
        return cmd_split(argc - 1, argv + 1);
    if (strcmp(cmd, "sim") == 0)
        return cmd_sim(argc - 1, argv + 1);
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "provision") == 0)
        return cmd_provision(argc - 1, argv + 1);
    if (strcmp(cmd, "synth") == 0)
        return cmd_synth(argc - 1, argv + 1);
    if (strcmp(cmd, "demo") == 0)
        return cmd_demo(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    if (strcmp(cmd, "privacy") == 0)
        return cmd_privacy(argc - 1, argv + 1);
    if (strcmp(cmd, "health") == 0)
        return cmd_health(argc - 1, argv + 1);
    if (strcmp(cmd, "features") == 0)
        return cmd_features(argc - 1, argv + 1);
    if (strcmp(cmd, "inspect") == 0)
        return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "export") == 0)
        return cmd_export(argc - 1, argv + 1);
    if (strcmp(cmd, "tune") == 0)
        return cmd_tune(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return FEDC_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        fedc_print_version(stdout, "fedc");
        return FEDC_EXIT_OK;
    }
    fprintf(stderr, "fedc: unknown command '%s'\n", cmd);
    usage(stderr);
    return FEDC_EXIT_USAGE;
}
