/* Best-model selection and the model card (issue 17). After every round the federated validation
 * metric named by --select-metric decides whether the new global model is the best so far; if so
 * it is written, with its card, to --best-model-out before the round's checkpoint, so the file on
 * disk never lags what the checkpoint claims. The metrics line carries best_round and the best
 * value, which is also how --resume gets them back. */
#include "coord_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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
    /* too few positives to tell rounds apart: said once */
    uint64_t pos = co->eval->tp + co->eval->fn;
    if (co->task == FEDC_TASK_BINARY && s->n > 0 && pos < 30 && !co->val_warned) {
        co->val_warned = 1;
        logw("the federated validation data holds %llu positive row(s) of %llu: fewer than 30 "
             "rank rounds poorly (the best round, --patience); raise --val-fraction",
             (unsigned long long)pos, (unsigned long long)s->n);
    }
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
    if (co->cfg->patience <= 0 || co->best_round == 0)
        return;
    /* --patience: the best round's model, from --best-model-out when it holds that round */
    fedc_model *m = NULL;
    fedc_diag d;
    char *val = NULL;
    if (co->cfg->best_model_out && fedc_model_load(&m, co->cfg->best_model_out, &d) == FEDC_OK &&
        m->n_params == co->n_params && (val = fedc_meta_get(m, "card")) != NULL) {
        cJSON *card = cJSON_Parse(val);
        const cJSON *rd = cJSON_GetObjectItemCaseSensitive(card, "round");
        const cJSON *vl = cJSON_GetObjectItemCaseSensitive(card, "validation");
        char *vline = cJSON_IsObject(vl) ? cJSON_PrintUnformatted(vl) : NULL;
        if (cJSON_IsNumber(rd) && (int)rd->valuedouble == co->best_round && vline &&
            (co->best_params = malloc(co->n_params * sizeof(float))) != NULL) {
            memcpy(co->best_params, m->params, co->n_params * sizeof(float));
            co->best_line = strdup(vline);
        }
        cJSON_free(vline);
        cJSON_Delete(card);
    }
    free(val);
    fedc_model_destroy(&m);
    /* the patience may have run out before the restart */
    if ((int)co->round - 1 - co->best_round >= co->cfg->patience) {
        co->early_stop = 1;
        logm("--resume: the validation %s had not improved for %d round(s) after round %d "
             "(--patience %d): the run is over",
             best_metric_name(co), (int)co->round - 1 - co->best_round, co->best_round,
             co->cfg->patience);
    }
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

int best_keep(coord *co, const char *line) {
    if (co->cfg->patience <= 0)
        return 0;
    if (!co->best_params && !(co->best_params = malloc(co->n_params * sizeof(float)))) {
        logm("--patience: out of memory keeping the best round's %zu parameters", co->n_params);
        return -1;
    }
    memcpy(co->best_params, co->model->params, co->n_params * sizeof(float));
    free(co->best_line);
    co->best_line = strdup(line);
    return co->best_line ? 0 : -1;
}

int best_patience(coord *co) {
    int p = co->cfg->patience;
    int since = (int)co->round - co->best_round;
    if (p <= 0 || co->best_round == 0 || since < p || co->early_stop)
        return co->early_stop;
    co->early_stop = 1;
    if (co->round < (uint32_t)co->cfg->rounds)
        logm("stopping early after round %u of %d: the validation %s has not improved for %d "
             "round(s) (--patience %d); the best was %.6g in round %d, and that round's model "
             "is kept",
             co->round, co->cfg->rounds, best_metric_name(co), since, p, co->best_val,
             co->best_round);
    return 1;
}

const char *best_final(coord *co, const char *last_line, const char **selection) {
    *selection = "last";
    int last = (int)co->round - 1;
    if (co->cfg->patience > 0 && co->best_round > 0 && co->best_round != last) {
        if (co->best_params && co->best_line) {
            memcpy(co->model->params, co->best_params, co->n_params * sizeof(float));
            *selection = "best";
            logm("--patience: the model written is round %d's, the best by %s (%.6g)",
                 co->best_round, best_metric_name(co), co->best_val);
            return co->best_line;
        }
        logw("--patience: round %d was the best by %s, but its model did not survive the "
             "restart (--resume); the last round's is written%s",
             co->best_round, best_metric_name(co),
             co->cfg->best_model_out ? " (the best one is in --best-model-out)" : "");
    } else if (co->best_round > 0 && co->best_round == last && last > 1 && !co->early_stop) {
        logm("the validation %s still improved in the last round (%d): more rounds (--rounds) "
             "may give a better model",
             best_metric_name(co), last);
    }
    return last_line;
}
