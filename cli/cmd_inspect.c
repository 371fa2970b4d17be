/* fedc inspect: what a model file holds and where it came from. The architecture, the features,
 * the standardisation, and the data recipe (fedc_model.meta): the model card (fedc/card.h), the
 * feature spec and the loader's encoding. Text for people, --json for programs (the recipe's keys
 * as they are, with the architecture added). A model file of an older fedc has no recipe: said so,
 * not an error. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fedc/modelfile.h"

#define CMD "inspect"

static const fedc_prog_help g_help = {
    "usage: fedc inspect MODEL [--json]",
    "Prints what a model file holds: the architecture, the feature names, the standardisation,\n"
    "and its card: the decision threshold and how it was chosen, the round (or epoch) kept and\n"
    "the metric that chose it, that round's validation metrics, the training settings (rounds,\n"
    "clients per round, aggregator, secure aggregation, DP epsilon and delta), the creation\n"
    "time and the fedc version; then the feature spec (fedc features) and the loader's\n"
    "encoding when the model records them. --json prints all of it as one JSON object.",
    "Exit status: 0, 2 for a file that is not a readable model (the reason is printed)."};

static cJSON *arch_json(const fedc_model *m) {
    cJSON *a = cJSON_CreateObject();
    if (!a)
        return NULL;
    cJSON_AddStringToObject(a, "task", fedc_task_name(m->arch.task));
    cJSON_AddNumberToObject(a, "classes", m->arch.n_classes);
    cJSON_AddNumberToObject(a, "inputs", m->arch.sizes[0]);
    cJSON_AddNumberToObject(a, "parameters", (double)m->n_params);
    if (m->arch.n_layers > 0) {
        cJSON *sizes = cJSON_AddArrayToObject(a, "layer_sizes");
        for (int l = 0; sizes && l <= m->arch.n_layers; l++)
            cJSON_AddItemToArray(sizes, cJSON_CreateNumber(m->arch.sizes[l]));
        cJSON_AddStringToObject(a, "hidden_activation", fedc_act_name(m->arch.hidden_act));
    } else {
        cJSON_AddStringToObject(a, "kind", "flat (a model of the clients' own)");
    }
    if (m->feature_names) {
        cJSON *f = cJSON_AddArrayToObject(a, "features");
        for (int j = 0; f && j < m->arch.sizes[0]; j++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", m->feature_names[j]);
            cJSON_AddNumberToObject(o, "mean", m->mean[j]);
            cJSON_AddNumberToObject(o, "std", m->std[j]);
            cJSON_AddItemToArray(f, o);
        }
        cJSON_AddStringToObject(a, "label", m->label_name);
    }
    return a;
}

/* One value of a card for text output. */
static void put_value(const cJSON *v) {
    if (cJSON_IsString(v))
        printf("%s", v->valuestring);
    else if (cJSON_IsBool(v))
        printf("%s", cJSON_IsTrue(v) ? "yes" : "no");
    else if (cJSON_IsNull(v))
        printf("-");
    else if (cJSON_IsNumber(v))
        printf("%.6g", v->valuedouble);
    else {
        char *t = cJSON_PrintUnformatted(v);
        printf("%s", t ? t : "?");
        cJSON_free(t);
    }
}

static void put_object(const char *indent, const cJSON *o) {
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        printf("%s%-22s ", indent, it->string);
        put_value(it);
        putchar('\n');
    }
}

static void print_text(const char *path, const fedc_model *m, const cJSON *meta) {
    const fedc_arch *a = &m->arch;
    printf("model %s\n", path);
    printf("  task                   %s", fedc_task_name(a->task));
    if (a->task == FEDC_TASK_MULTICLASS)
        printf(" (%d classes)", a->n_classes);
    printf("\n");
    if (a->n_layers > 0) {
        printf("  layers                 ");
        for (int l = 0; l <= a->n_layers; l++)
            printf("%s%d", l ? "-" : "", a->sizes[l]);
        printf(" (%s hidden), %zu parameters\n", fedc_act_name(a->hidden_act), m->n_params);
    } else {
        printf("  layers                 none: a flat vector of %zu parameters over %d inputs\n",
               m->n_params, a->sizes[0]);
    }
    if (m->feature_names) {
        printf("  label                  %s\n", m->label_name);
        printf("  features (%d)          mean, std\n", a->sizes[0]);
        for (int j = 0; j < a->sizes[0]; j++)
            printf("    %-28s %.6g, %.6g\n", m->feature_names[j], m->mean[j], m->std[j]);
    }
    const cJSON *card = cJSON_GetObjectItemCaseSensitive(meta, "card");
    if (!cJSON_IsObject(card)) {
        printf("card: none (a model file of an older fedc, or written without one; the decision "
               "threshold is 0.5 unless given)\n");
    } else {
        printf("card\n");
        const cJSON *it;
        cJSON_ArrayForEach(it, card) {
            if (cJSON_IsObject(it)) {
                printf("  %s\n", it->string);
                put_object("    ", it);
            } else {
                printf("  %-22s ", it->string);
                put_value(it);
                putchar('\n');
            }
        }
    }
    const char *keys[] = {"features", "encoding"};
    for (int k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, keys[k]);
        if (!v)
            continue;
        char *t = cJSON_Print(v);
        printf("%s %s\n", keys[k] == keys[0] ? "feature spec (fedc features)" : "encoding",
               t ? t : "?");
        cJSON_free(t);
    }
}

int cmd_inspect(int argc, char **argv) {
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_INSPECT, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
    const char *path = op.v[FEDC_O_MODEL_FILE].text;
    if (!path) {
        cli_error(CMD, "give the model file (fedc inspect MODEL)");
        return FEDC_EXIT_USAGE;
    }
    fedc_model *m = NULL;
    fedc_diag d = {{0}};
    if (fedc_model_load(&m, path, &d)) {
        cli_error(CMD, "%s", d.msg);
        return FEDC_EXIT_USAGE;
    }
    cJSON *meta = m->meta ? cJSON_Parse(m->meta) : cJSON_CreateObject();
    if (!cJSON_IsObject(meta)) {
        /* the file's checksum held: a recipe that is not an object was written so */
        cJSON_Delete(meta);
        meta = cJSON_CreateObject();
        fprintf(stderr, "fedc inspect: %s: the data recipe is not a JSON object; shown without\n",
                path);
    }
    int rc = FEDC_EXIT_OK;
    if (op.v[FEDC_O_JSON].i) {
        cJSON *arch = arch_json(m);
        if (!meta || !arch || !cJSON_AddItemToObject(meta, "model", arch)) {
            cJSON_Delete(arch);
            rc = FEDC_EXIT_FAIL;
        } else {
            char *t = cJSON_Print(meta);
            if (t)
                printf("%s\n", t);
            else
                rc = FEDC_EXIT_FAIL;
            cJSON_free(t);
        }
        if (rc)
            cli_error(CMD, "out of memory");
    } else {
        print_text(path, m, meta);
    }
    cJSON_Delete(meta);
    fedc_model_destroy(&m);
    return rc;
}
