/* Best-model selection and the model card (issue 17). After every round the federated validation
 * metric named by --select-metric decides whether the new global model is the best so far; if so
 * it is written, with its card, to --best-model-out before the round's checkpoint, so the file on
 * disk never lags what the checkpoint claims. The metrics line carries best_round and the best
 * value, which is also how --resume gets them back. */
#include "coord_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fedc/card.h"
#include "fedc/jsonl.h"
#include "fedc/modelfile.h"

typedef enum sel_kind {
    SEL_PR_AUC,
    SEL_ROC_AUC,
    SEL_LOSS,
    SEL_ACCURACY,
    SEL_MACRO_F1,
    SEL_RMSE,
    SEL_R2,
    SEL_COUNT
} sel_kind;

static const char *const g_sel_name[SEL_COUNT] = {"pr_auc",   "roc_auc", "loss", "accuracy",
                                                  "macro_f1", "rmse",    "r2"};

/* 1 when a larger value is better. */
static int sel_higher(sel_kind k) {
    return k != SEL_LOSS && k != SEL_RMSE;
}

/* Whether the task has the metric. */
static int sel_fits(sel_kind k, fedc_task t) {
    switch (k) {
    case SEL_PR_AUC:
    case SEL_ROC_AUC:
        return t == FEDC_TASK_BINARY;
    case SEL_ACCURACY:
        return t != FEDC_TASK_REGRESSION;
    case SEL_MACRO_F1:
        return t == FEDC_TASK_MULTICLASS;
    case SEL_RMSE:
    case SEL_R2:
        return t == FEDC_TASK_REGRESSION;
    default:
        return 1;
    }
}

static sel_kind sel_auto(fedc_task t) {
    return t == FEDC_TASK_BINARY ? SEL_PR_AUC : t == FEDC_TASK_MULTICLASS ? SEL_ACCURACY : SEL_RMSE;
}

static double sel_value(sel_kind k, const fedc_eval_summary *s) {
    switch (k) {
    case SEL_PR_AUC:
        return s->pr_auc;
    case SEL_ROC_AUC:
        return s->roc_auc;
    case SEL_LOSS:
        return s->loss;
    case SEL_ACCURACY:
        return s->accuracy;
    case SEL_MACRO_F1:
        return s->macro_f1;
    case SEL_RMSE:
        return s->rmse;
    default:
        return s->r2;
    }
}

/* The metric in use: --select-metric, or the task's default when it is auto or does not fit the
 * task (said once). */
static sel_kind sel_resolve(coord *co) {
    const char *want = co->cfg->select_metric;
    sel_kind k = sel_auto(co->task);
    if (want && strcmp(want, "auto") != 0) {
        sel_kind asked = SEL_COUNT;
        for (int i = 0; i < SEL_COUNT; i++)
            if (strcmp(want, g_sel_name[i]) == 0)
                asked = (sel_kind)i;
        if (asked < SEL_COUNT && sel_fits(asked, co->task))
            k = asked;
        else if (!co->best_warned) {
            co->best_warned = 1;
            logw("--select-metric %s does not apply to a %s task; the best round is chosen by "
                 "%s instead",
                 want, fedc_task_name(co->task), g_sel_name[k]);
        }
    }
    co->sel_metric = (int)k;
    return k;
}

const char *best_metric_name(const coord *co) {
    return g_sel_name[co->sel_metric];
}

int best_consider(coord *co, const fedc_eval_summary *s) {
    sel_kind k = sel_resolve(co);
    double v = sel_value(k, s);
    if (!isfinite(v) || s->n == 0)
        return 0;
    int better = co->best_round == 0 || (sel_higher(k) ? v > co->best_val : v < co->best_val);
    if (better) {
        co->best_round = (int)co->round;
        co->best_val = v;
    }
    return better;
}

void best_restore(coord *co, const char *line) {
    cJSON *o = line ? cJSON_Parse(line) : NULL;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "best_round");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "best_value");
    if (cJSON_IsNumber(r) && cJSON_IsNumber(v) && r->valuedouble >= 1) {
        co->best_round = (int)r->valuedouble;
        co->best_val = v->valuedouble;
    }
    cJSON_Delete(o);
}

/* The training settings of the run, for the card. */
static char *run_json(const coord *co) {
    const coord_cfg *c = co->cfg;
    fedc_json j;
    fedc__json_begin(&j);
    fedc__json_int(&j, "rounds", c->rounds);
    fedc__json_int(&j, "min_clients", c->min_clients);
    fedc__json_num(&j, "fraction_fit", c->fraction_fit, 6);
    fedc__json_int(&j, "local_epochs", c->local_epochs);
    fedc__json_int(&j, "batch", c->batch);
    fedc__json_num(&j, "lr", c->lr, 6);
    fedc__json_str(&j, "aggregator",
                   c->strategy && c->strategy->name ? c->strategy->name : agg_name(c->agg.kind));
    fedc__json_str(&j, "server_opt", fedc_server_name(c->server.kind));
    fedc__json_bool(&j, "secure_aggregation", c->secagg);
    fedc__json_bool(&j, "curve", co->secure);
    char seed[24]; /* as text: a JSON number (a double) would not keep all 64 bits */
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    fedc__json_str(&j, "seed", seed);
    if (agg_dp_on(co)) {
        fedc__json_num(&j, "dp_epsilon", agg_epsilon(co, (double)co->round), 6);
        fedc__json_num(&j, "dp_delta", c->dp_delta, 6);
        fedc__json_num(&j, "dp_noise", c->dp_noise, 6);
    } else {
        fedc__json_null(&j, "dp_epsilon");
        fedc__json_null(&j, "dp_delta");
    }
    fedc_err rc;
    fedc_diag d;
    char *t = fedc__json_line(&j, "the card's run settings", &rc, &d);
    fedc__json_end(&j);
    return t;
}

int card_put(coord *co, fedc_model *m, const char *line, const char *selection, int rounds_run) {
    cJSON *o = line ? cJSON_Parse(line) : NULL;
    const cJSON *round = cJSON_GetObjectItemCaseSensitive(o, "round");
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(o, "val_alert_threshold");
    fedc_card c;
    fedc_card_init(&c);
    c.source = "federation";
    char rule[160];
    if (co->task == FEDC_TASK_BINARY) {
        if (cJSON_IsNumber(thr)) {
            c.threshold = thr->valuedouble;
            snprintf(rule, sizeof rule,
                     "alert budget %g on the federated validation data (--alert-budget)",
                     co->cfg->alert_budget);
        } else {
            c.threshold = co->cfg->threshold;
            snprintf(rule, sizeof rule, "given (--threshold)");
        }
        c.threshold_rule = rule;
    }
    c.round = cJSON_IsNumber(round) ? (int)round->valuedouble : -1;
    c.rounds_run = rounds_run;
    c.selected_by = best_metric_name(co);
    c.selection = selection;
    /* the round's validation metrics: its line less what differs between identical runs
     * (seconds, bytes) */
    cJSON *val = cJSON_CreateObject();
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        if (val &&
            (strncmp(it->string, "val_", 4) == 0 || strcmp(it->string, "round") == 0 ||
             strcmp(it->string, "participants") == 0 || strcmp(it->string, "selected") == 0 ||
             strcmp(it->string, "alert_budget") == 0 || strcmp(it->string, "train_loss") == 0))
            cJSON_AddItemToObject(val, it->string, cJSON_Duplicate(it, 1));
    }
    char *vtext = val ? cJSON_PrintUnformatted(val) : NULL;
    cJSON_Delete(val);
    c.validation = vtext;
    char *run = run_json(co);
    c.run = run;
    fedc_diag d;
    int bad = !run || fedc_card_put(m, &c, &d) != FEDC_OK;
    if (bad)
        logm("cannot write the model card: %s", run ? d.msg : "out of memory");
    cJSON_free(run);
    cJSON_free(vtext);
    cJSON_Delete(o);
    return bad ? -1 : 0;
}

int best_save(coord *co, const char *line) {
    if (!co->cfg->best_model_out)
        return 0;
    if (card_put(co, co->model, line, "best", (int)co->round))
        return -1;
    fedc_diag d;
    if (fedc_model_save(co->model, co->cfg->best_model_out, &d)) {
        logm("--best-model-out: %s", d.msg);
        return -1;
    }
    return 0;
}
