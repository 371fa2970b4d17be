/* The report's table of the run's settings (report.h): what was trained and how, read from the
 * federated model's card (fedc/card.h: the "run" object the coordinator writes) and its
 * architecture, with the clients' names from the rounds' metrics lines. A setting the card does
 * not record (a model of an older fedc) reads "not recorded", never a guess. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/card.h"
#include "report.h"

#define NOT_RECORDED "not recorded"

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One row: <tr class="setting" data-key="KEY"><td>NAME</td><td>VALUE</td></tr>, the value
 * escaped. */
static void row(FILE *f, const char *key, const char *name, const char *value) {
    fprintf(f, "<tr class=\"setting\" data-key=\"%s\"><td>%s</td><td>", key, name);
    fedc__html_esc(f, value);
    fprintf(f, "</td></tr>\n");
}

/* A number as %g, or "not recorded". */
static void row_num(FILE *f, const char *key, const char *name, double v) {
    char t[64];
    if (isnan(v))
        snprintf(t, sizeof t, NOT_RECORDED);
    else
        snprintf(t, sizeof t, "%g", v);
    row(f, key, name, t);
}

/* The distinct client names of the rounds (the "clients" arrays), in order of first appearance,
 * comma-separated into t; how many. */
static int client_names(char *t, size_t cap, const fedc_round_info *r, int nr) {
    int count = 0;
    size_t len = 0;
    t[0] = 0;
    for (int i = 0; i < nr; i++) {
        const char *p = r[i].clients;
        while ((p = strchr(p, '"')) != NULL) {
            const char *e = strchr(p + 1, '"');
            if (!e)
                break;
            char name[256];
            size_t n = (size_t)(e - p - 1);
            p = e + 1;
            if (n == 0 || n >= sizeof name)
                continue;
            memcpy(name, e - n, n);
            name[n] = 0;
            /* already listed? (whole names between ", " separators) */
            int seen = 0;
            for (const char *q = t; *q && !seen;) {
                size_t m = strcspn(q, ",");
                seen = m == n && strncmp(q, name, n) == 0;
                q += m;
                q += *q == ',' ? 2 : 0;
            }
            if (seen)
                continue;
            count++;
            if (len + n + 3 < cap) {
                len += (size_t)snprintf(t + len, cap - len, "%s%s", len ? ", " : "", name);
            } else if (len + 5 < cap && strcmp(t + len - 3, "...") != 0) {
                len += (size_t)snprintf(t + len, cap - len, ", ...");
            }
        }
    }
    return count;
}

void report_settings_section(FILE *f, const report_in *in, const fedc_round_info *r, int nr) {
    const fedc_model *m = in->model;
    char *card_text = m ? fedc_meta_get(m, "card") : NULL;
    cJSON *card = card_text ? cJSON_Parse(card_text) : NULL;
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(card, "run");
    char t[2048];
    fprintf(f, "<h2>The run</h2>\n");
    if (!card)
        fprintf(f,
                "<p class=\"note\">The federated model's file has no model card (an older "
                "fedc wrote it): the settings it does not record read \"" NOT_RECORDED "\".</p>\n");
    fprintf(f, "<table id=\"settings\"><tr><th>setting</th><th>value</th></tr>\n");
    /* rounds: run, of the planned */
    double planned = num(run, "rounds"), done = num(card, "rounds_run");
    if (isnan(done))
        done = nr > 0 ? (double)r[nr - 1].round : NAN;
    if (!isnan(done) && !isnan(planned) && done != planned)
        snprintf(t, sizeof t, "%g of %g planned", done, planned);
    else if (!isnan(done))
        snprintf(t, sizeof t, "%g", done);
    else
        snprintf(t, sizeof t, NOT_RECORDED);
    row(f, "rounds", "rounds", t);
    /* clients: who took part, and how many a round asks for */
    char names[1200];
    int n_names = client_names(names, sizeof names, r, nr);
    if (n_names > 0) {
        snprintf(t, sizeof t, "%d: %s", n_names, names);
    } else {
        int most = 0;
        for (int i = 0; i < nr; i++)
            most = r[i].participants > most ? r[i].participants : most;
        if (most > 0)
            snprintf(t, sizeof t, "up to %d a round (names not shown)", most);
        else
            snprintf(t, sizeof t, NOT_RECORDED);
    }
    row(f, "clients", "clients", t);
    double min_c = num(run, "min_clients"), frac = num(run, "fraction_fit");
    if (!isnan(min_c) || !isnan(frac)) {
        if (isnan(frac) || frac >= 1)
            snprintf(t, sizeof t, "every client connected, at least %g", isnan(min_c) ? 1 : min_c);
        else
            snprintf(t, sizeof t, "a fraction %g of the clients connected, at least %g", frac,
                     isnan(min_c) ? 1 : min_c);
        row(f, "clients_per_round", "clients per round", t);
    }
    if (str(card, "source") && strcmp(str(card, "source"), "fedc train") == 0)
        row_num(f, "local_epochs", "epochs", num(run, "epochs"));
    else
        row_num(f, "local_epochs", "local epochs per round", num(run, "local_epochs"));
    row_num(f, "lr", "learning rate", num(run, "lr"));
    row_num(f, "batch", "batch size", num(run, "batch"));
    /* layers: the model's own architecture */
    if (m && m->arch.n_layers > 0) {
        size_t len = 0;
        for (int l = 0; l <= m->arch.n_layers && len < sizeof t; l++)
            len +=
                (size_t)snprintf(t + len, sizeof t - len, "%s%d", l ? "-" : "", m->arch.sizes[l]);
        if (len < sizeof t)
            snprintf(t + len, sizeof t - len, " (%s between layers)",
                     fedc_act_name(m->arch.hidden_act));
    } else {
        snprintf(t, sizeof t, NOT_RECORDED);
    }
    row(f, "layers", "layers", t);
    const char *agg = str(run, "aggregator"), *sopt = str(run, "server_opt");
    if (agg && sopt)
        snprintf(t, sizeof t, "%s, server optimiser %s", agg, sopt);
    else
        snprintf(t, sizeof t, "%s", agg ? agg : NOT_RECORDED);
    row(f, "aggregator", "aggregator", t);
    const cJSON *sa = cJSON_GetObjectItemCaseSensitive(run, "secure_aggregation");
    row(f, "secure_aggregation", "secure aggregation",
        cJSON_IsBool(sa) ? (cJSON_IsTrue(sa) ? "on" : "off") : NOT_RECORDED);
    /* DP: a number is a spent budget; null (present) is off */
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(run, "dp_epsilon");
    if (cJSON_IsNumber(eps))
        snprintf(t, sizeof t, "epsilon %.4g at delta %g", eps->valuedouble, num(run, "dp_delta"));
    else
        snprintf(t, sizeof t, "%s", cJSON_IsNull(eps) ? "off" : NOT_RECORDED);
    row(f, "dp", "differential privacy", t);
    double seed = num(run, "seed");
    if (str(run, "seed")) /* the coordinator writes it as text, all 64 bits */
        snprintf(t, sizeof t, "%s", str(run, "seed"));
    else if (!isnan(seed))
        snprintf(t, sizeof t, "%.0f", seed);
    else if (in->have_seed)
        snprintf(t, sizeof t, "%llu", in->seed);
    else
        snprintf(t, sizeof t, NOT_RECORDED);
    row(f, "seed", "seed", t);
    /* which round's model the test set scored, and the best one */
    double round = num(card, "round");
    const char *selection = str(card, "selection"), *by = str(card, "selected_by");
    const char *metric;
    double best_value;
    long best = fedc__rounds_best(r, nr, &metric, &best_value);
    size_t len = 0;
    if (!isnan(round))
        len = (size_t)snprintf(t, sizeof t, "round %g%s", round,
                               selection && strcmp(selection, "best") == 0   ? " (the best)"
                               : selection && strcmp(selection, "last") == 0 ? " (the last)"
                                                                             : "");
    else
        len = (size_t)snprintf(t, sizeof t, NOT_RECORDED);
    if (best > 0 && len < sizeof t)
        snprintf(t + len, sizeof t - len, "; best round by validation %s: %ld",
                 metric[0] ? metric : (by ? by : "metric"), best);
    row(f, "model_round", "model scored", t);
    double thr = num(card, "threshold");
    if (!isnan(thr)) {
        const char *rule = str(card, "threshold_rule");
        snprintf(t, sizeof t, "%g%s%s", thr, rule ? ": " : "", rule ? rule : "");
        row(f, "threshold", "alert threshold", t);
    }
    fprintf(f, "</table>\n");
    cJSON_Delete(card);
    free(card_text);
}
