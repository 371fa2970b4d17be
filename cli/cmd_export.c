/* fedc export: writes a saved model in a format other tools serve. One format so far, ONNX
 * (fedc/onnx.h: standardisation, the dense layers and the output activation as one graph).
 * The file is written atomically. Flat models (a model of the clients' own) are refused: fedc
 * does not know their graph. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fedc/modelfile.h"
#include "fedc/onnx.h"

static const char *CMD = "export";

static const fedc_prog_help g_help = {
    "usage: fedc export --model FILE --out FILE.onnx [--format onnx]",
    "Writes a model saved by 'fedc train --out' (or fedc-coordinator --model-out) as an\n"
    "ONNX graph (IR version 7, operator set 13) for serving stacks such as onnxruntime:\n"
    "input 'input' float [N, features] (raw values, in the order the file's doc_string\n"
    "and its feature_names metadata list), the model's standardisation (Sub mean, Div\n"
    "std), MatMul and Add per dense layer with the hidden activation between them, then\n"
    "Sigmoid (binary: probability of class 1), Softmax (multiclass: class probabilities)\n"
    "or nothing (regression); output 'score' float [N, 1] or [N, K]. Models of the\n"
    "clients' own (flat parameter vectors) cannot be exported.",
    "Exit status: 0 success, 1 runtime failure (writing the file), 2 bad flags or model file."};

int cmd_export(int argc, char **argv) {
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_EXPORT, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
    const char *model_path = op.v[FEDC_O_MODEL_FILE].text, *out_path = op.v[FEDC_O_OUT].text;
    const char *format = op.v[FEDC_O_FORMAT].text;
    int rc = FEDC_EXIT_USAGE;
    fedc_model *m = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    fedc_diag d = {{0}};

    if (!model_path || !out_path) {
        cli_error(CMD, "%s is required (see fedc export --help)",
                  !model_path ? "--model" : "--out");
        goto out;
    }
    /* The option table admits only the formats written here; this guards the two against drift. */
    if (strcmp(format, "onnx") != 0) {
        cli_error(CMD, "--format: expected onnx, got '%s'", format);
        goto out;
    }
    if (fedc_model_load(&m, model_path, &d)) {
        cli_error(CMD, "%s", d.msg);
        goto out;
    }
    fedc_err e = fedc_onnx_encode(&buf, &len, m, FEDC_EXPORT_VERSION, &d);
    if (e) {
        /* A model this format cannot hold is bad input; running out of memory is not. */
        if (e == FEDC_ENOMEM)
            cli_error(CMD, "%s", d.msg);
        else
            cli_error(CMD, "%s: %s", model_path, d.msg);
        rc = e == FEDC_ENOMEM ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
        goto out;
    }
    if (fedc_write_atomic(out_path, buf, len, &d)) {
        cli_error(CMD, "%s", d.msg);
        rc = FEDC_EXIT_FAIL;
        goto out;
    }
    printf("fedc export: wrote %s (ONNX IR %d, opset %d, %zu bytes): input [N, %d], ", out_path,
           FEDC_ONNX_IR_VERSION, FEDC_ONNX_OPSET, len, m->arch.sizes[0]);
    for (int l = 0; l <= m->arch.n_layers; l++)
        printf("%s%d", l ? "-" : "layers ", m->arch.sizes[l]);
    printf(" %s, %s output 'score' [N, %d]\n", fedc_act_name(m->arch.hidden_act),
           fedc_task_name(m->arch.task), fedc_model_out_width(m));
    rc = FEDC_EXIT_OK;
out:
    free(buf);
    fedc_model_destroy(&m);
    return rc;
}
