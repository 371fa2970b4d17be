/* The C side of tests/cli/test_onnx.sh: builds the models the ONNX export is checked on, random
 * rows for them, and fedc's own scores of those rows (fedc_model_predict on the model file as
 * loaded), which onnxruntime's scores of the exported graph are compared with. Also the two
 * deliberately wrong exports of the negative controls. It does not use the exporter: what it
 * writes comes from the model API and the model file only.
 *
 *   onnx_fixture models DIR          writes DIR/NAME.fedc for every case of g_cases, and
 *                                    DIR/flat.fedc (a flat model, which export must refuse)
 *   onnx_fixture rows MODEL N SEED OUT.csv
 *                                    N raw rows around the model's mean and std (every tenth far
 * out, to saturate the activations), no header; its feature names, one a line, in OUT.csv.names
 *   onnx_fixture score MODEL ROWS.csv OUT.csv
 *                                    fedc's scores of the rows (one line per row, K columns for
 *                                    multiclass), %.9g
 *   onnx_fixture unstandardise MODEL OUT
 *                                    the same model with mean 0 and std 1 (negative control)
 *   onnx_fixture alpha FILE.onnx     rewrites LeakyRelu's alpha attribute 0.01 as 0.02 in the
 *                                    exported bytes (negative control)
 * Exit 0 on success, 1 with a message otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/model.h"
#include "fedc/modelfile.h"
#include "fedc/rng.h"

#define MAX_LINE (1 << 20)

typedef struct model_case {
    const char *name;
    fedc_task task;
    int n_classes;
    fedc_act act;
    int n_in;
    int hidden[4];
    int n_hidden;
} model_case;

/* Each hidden activation under each output, and the shapes at the edges (no hidden layer, four
 * hidden layers, a single input). */
static const model_case g_cases[] = {
    {"binary_relu", FEDC_TASK_BINARY, 2, FEDC_ACT_RELU, 12, {16, 8}, 2},
    {"binary_leaky_relu", FEDC_TASK_BINARY, 2, FEDC_ACT_LEAKY_RELU, 12, {16, 8}, 2},
    {"binary_sigmoid", FEDC_TASK_BINARY, 2, FEDC_ACT_SIGMOID, 12, {16}, 1},
    {"binary_tanh", FEDC_TASK_BINARY, 2, FEDC_ACT_TANH, 30, {64, 32}, 2},
    {"binary_linear", FEDC_TASK_BINARY, 2, FEDC_ACT_RELU, 7, {0}, 0},
    {"multiclass_relu", FEDC_TASK_MULTICLASS, 4, FEDC_ACT_RELU, 10, {24, 12}, 2},
    {"multiclass_leaky_relu", FEDC_TASK_MULTICLASS, 3, FEDC_ACT_LEAKY_RELU, 10, {16}, 1},
    {"multiclass_sigmoid", FEDC_TASK_MULTICLASS, 5, FEDC_ACT_SIGMOID, 9, {12, 12}, 2},
    {"multiclass_tanh", FEDC_TASK_MULTICLASS, 3, FEDC_ACT_TANH, 9, {20, 16, 12, 8}, 4},
    {"regression_relu", FEDC_TASK_REGRESSION, 1, FEDC_ACT_RELU, 8, {16, 8}, 2},
    {"regression_leaky_relu", FEDC_TASK_REGRESSION, 1, FEDC_ACT_LEAKY_RELU, 8, {16}, 1},
    {"regression_sigmoid", FEDC_TASK_REGRESSION, 1, FEDC_ACT_SIGMOID, 1, {8}, 1},
    {"regression_tanh", FEDC_TASK_REGRESSION, 1, FEDC_ACT_TANH, 8, {16, 8}, 2},
};

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "onnx_fixture: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

static int load(fedc_model **m, const char *path) {
    fedc_diag d = {{0}};
    if (fedc_model_load(m, path, &d))
        return fail("%s", d.msg);
    return 0;
}

static int save(const fedc_model *m, const char *path) {
    fedc_diag d = {{0}};
    if (fedc_model_save(m, path, &d))
        return fail("%s", d.msg);
    return 0;
}

/* One model of a case: fedc's initialisation, then non-zero biases (the initialisation leaves
 * them at 0, which would hide a missing Add), standardisation statistics far from the identity,
 * feature names that need escaping in JSON, and a data recipe on one of them. */
static int make_model(const model_case *c, int index, const char *dir) {
    fedc_arch a;
    fedc_model *m = NULL;
    fedc_diag d = {{0}};
    char path[4096], **names = NULL;
    float *mean = NULL, *std = NULL;
    int rc = 1;
    if (fedc_arch_make(&a, c->n_in, c->hidden, c->n_hidden, c->act, c->task, c->n_classes, &d) ||
        fedc_model_new(&m, &a)) {
        fail("%s: %s", c->name, d.msg);
        goto out;
    }
    fedc_model_init(m, 1000u + (uint64_t)index);
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(77, (uint64_t)index, 0, 0));
    for (int l = 0; l < a.n_layers; l++)
        for (int j = 0; j < a.sizes[l + 1]; j++)
            m->b[l][j] = 0.5f * fedc_rng_normal(&r);
    names = calloc((size_t)c->n_in, sizeof *names);
    mean = malloc((size_t)c->n_in * sizeof *mean);
    std = malloc((size_t)c->n_in * sizeof *std);
    if (!names || !mean || !std)
        goto out;
    for (int j = 0; j < c->n_in; j++) {
        char nm[64];
        /* Names with a quote, a comma and a non-ASCII character among the plain ones. */
        if (j == 1)
            snprintf(nm, sizeof nm, "amount \"EUR\", net");
        else if (j == 2)
            snprintf(nm, sizeof nm,
                     "dur\xc3\xa9"
                     "e_%d",
                     j);
        else
            snprintf(nm, sizeof nm, "f%d", j);
        if (!(names[j] = strdup(nm)))
            goto out;
        mean[j] = 10.0f * fedc_rng_normal(&r);
        std[j] = 0.25f + 8.0f * fedc_rng_uniform(&r);
    }
    if (fedc_model_set_schema(m, names, "y", mean, std) ||
        (index == 0 && fedc_model_set_meta(m, "{\"encoding\":{\"missing\":\"error\"}}")))
        goto out;
    snprintf(path, sizeof path, "%s/%s.fedc", dir, c->name);
    rc = save(m, path);
out:
    for (int j = 0; names && j < c->n_in; j++)
        free(names[j]);
    free(names);
    free(mean);
    free(std);
    fedc_model_destroy(&m);
    return rc;
}

static int cmd_models(const char *dir) {
    for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++)
        if (make_model(&g_cases[i], (int)i, dir))
            return 1;
    fedc_model *flat = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/flat.fedc", dir);
    if (fedc_model_new_flat(&flat, 5, FEDC_TASK_BINARY, 2, 40))
        return fail("%s", "cannot make a flat model");
    int rc = save(flat, path);
    fedc_model_destroy(&flat);
    return rc;
}

static int cmd_rows(const char *model, int n, unsigned long long seed, const char *out) {
    fedc_model *m = NULL;
    char names_path[4096];
    if (load(&m, model))
        return 1;
    snprintf(names_path, sizeof names_path, "%s.names", out);
    FILE *f = fopen(out, "w"), *fn = fopen(names_path, "w");
    int bad = !f || !fn;
    const int nf = m->arch.sizes[0];
    for (int j = 0; !bad && j < nf; j++) {
        if (m->feature_names)
            fprintf(fn, "%s\n", m->feature_names[j]);
        else
            fprintf(fn, "x%d\n", j);
    }
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(seed, 1, 0, 0));
    for (int i = 0; !bad && i < n; i++) {
        /* Most rows within a few standard deviations; every tenth row far out (12 sd), where
         * sigmoid, tanh and softmax saturate. */
        float spread = i % 10 == 9 ? 12.0f : 2.0f;
        for (int j = 0; j < nf; j++) {
            float x = m->mean[j] + m->std[j] * spread * fedc_rng_normal(&r);
            fprintf(f, "%s%.9g", j ? "," : "", (double)x);
        }
        fprintf(f, "\n");
    }
    if (f && fclose(f) != 0)
        bad = 1;
    if (fn && fclose(fn) != 0)
        bad = 1;
    fedc_model_destroy(&m);
    return bad ? fail("cannot write %s or %s", out, names_path) : 0;
}

/* Reads the rows written by cmd_rows: nf numbers per line. */
static int read_rows(float **x, int *n, const char *path, int nf) {
    FILE *f = fopen(path, "r");
    char *line = malloc(MAX_LINE);
    int rc = 1, cap = 0;
    *x = NULL;
    *n = 0;
    if (!f || !line) {
        fail("cannot read %s", path);
        goto out;
    }
    while (fgets(line, MAX_LINE, f)) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            float *nx = realloc(*x, (size_t)cap * (size_t)nf * sizeof(float));
            if (!nx)
                goto out;
            *x = nx;
        }
        char *p = line, *end;
        for (int j = 0; j < nf; j++) {
            (*x)[(size_t)*n * nf + j] = strtof(p, &end);
            if (end == p || (*end != ',' && j < nf - 1)) {
                fail("%s: malformed row %s", path, line);
                goto out;
            }
            p = end + 1;
        }
        (*n)++;
    }
    rc = 0;
out:
    if (f)
        fclose(f);
    free(line);
    return rc;
}

static int cmd_score(const char *model, const char *rows, const char *out) {
    fedc_model *m = NULL;
    float *x = NULL, *y = NULL;
    int n = 0, rc = 1;
    if (load(&m, model) || read_rows(&x, &n, rows, m->arch.sizes[0]))
        goto out;
    const int ow = fedc_model_out_width(m);
    y = malloc((size_t)(n > 0 ? n : 1) * (size_t)ow * sizeof *y);
    if (!y || fedc_model_predict(y, m, x, n)) {
        fail("%s: prediction failed", model);
        goto out;
    }
    FILE *f = fopen(out, "w");
    if (!f) {
        fail("cannot write %s", out);
        goto out;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < ow; k++)
            fprintf(f, "%.9g%s", (double)y[(size_t)i * ow + k], k == ow - 1 ? "\n" : ",");
    rc = fclose(f) != 0 ? fail("cannot write %s", out) : 0;
out:
    free(x);
    free(y);
    fedc_model_destroy(&m);
    return rc;
}

static int cmd_unstandardise(const char *model, const char *out) {
    fedc_model *m = NULL;
    if (load(&m, model))
        return 1;
    for (int j = 0; j < m->arch.sizes[0]; j++) {
        m->mean[j] = 0.0f;
        m->std[j] = 1.0f;
    }
    int rc = save(m, out);
    fedc_model_destroy(&m);
    return rc;
}

/* An AttributeProto's f (field 2, wire type 5: tag byte 0x15) holding 0.01f, little-endian. */
static int cmd_alpha(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail("cannot read %s", path);
    static unsigned char buf[1 << 24];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n == sizeof buf)
        return fail("%s: larger than the %zu bytes this helper reads", path, sizeof buf);
    float from = 0.01f, to = 0.02f;
    unsigned char pat[5] = {0x15}, rep[5] = {0x15};
    uint32_t u;
    memcpy(&u, &from, 4);
    for (int b = 0; b < 4; b++)
        pat[1 + b] = (unsigned char)(u >> (8 * b));
    memcpy(&u, &to, 4);
    for (int b = 0; b < 4; b++)
        rep[1 + b] = (unsigned char)(u >> (8 * b));
    int hits = 0;
    for (size_t i = 0; i + 5 <= n; i++)
        if (memcmp(buf + i, pat, 5) == 0) {
            memcpy(buf + i, rep, 5);
            hits++;
        }
    if (hits == 0)
        return fail("%s: no LeakyRelu alpha 0.01 found", path);
    f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0)
        return fail("cannot write %s", path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "models") == 0)
        return cmd_models(argv[2]);
    if (argc == 6 && strcmp(argv[1], "rows") == 0)
        return cmd_rows(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10), argv[5]);
    if (argc == 5 && strcmp(argv[1], "score") == 0)
        return cmd_score(argv[2], argv[3], argv[4]);
    if (argc == 4 && strcmp(argv[1], "unstandardise") == 0)
        return cmd_unstandardise(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "alpha") == 0)
        return cmd_alpha(argv[2]);
    fprintf(stderr, "usage: onnx_fixture models DIR | rows MODEL N SEED OUT.csv | score MODEL "
                    "ROWS.csv OUT.csv | unstandardise MODEL OUT | alpha FILE.onnx\n");
    return 1;
}
