/* The model card and the other keys of a model's data recipe (fedc_model.meta, a JSON object kept
 * in the model file): what a later reader of the model needs to use it well and to know where it
 * came from. The card is the object under the key "card":
 *
 *   fedc_version, created (RFC 3339, UTC)    who wrote it, when
 *   source                                    "fedc train" or "federation"
 *   threshold, threshold_rule                 the decision threshold of a binary model and how it
 *                                             was chosen ("alert budget 0.01 on the federated
 *                                             validation data", "given", "default")
 *   round, rounds_run                         the round (federation) or epoch (fedc train) whose
 *                                             model this is, and how many ran
 *   selected_by, selection                    the validation metric that chose it and "best" or
 *                                             "last"
 *   validation                                that round's validation metrics (an object of
 *                                             numbers, nulls where undefined)
 *   run                                       the training settings: clients per round,
 *                                             aggregator, secure aggregation, DP epsilon and
 *                                             delta (null without DP), ... (an object)
 *
 * Every key is optional to a reader: a model file of an older fedc has no card (fedc inspect says
 * so, and the threshold falls back to 0.5). */
#ifndef FEDC_CARD_H
#define FEDC_CARD_H

#include "fedc/err.h"
#include "fedc/model.h"

/* Sets key of m->meta to the JSON value json (any JSON text: an object, a number, a string...),
 * keeping the other keys; m->meta NULL counts as {}. FEDC_EPARSE when m->meta is not a JSON
 * object or json is not JSON (d says which), FEDC_EINVAL beyond FEDC_MODEL_MAX_META,
 * FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_meta_put(fedc_model *m, const char *key, const char *json,
                                       fedc_diag *d);

/* The value of key in m->meta as JSON text (caller frees with free()), or NULL when there is no
 * such key, no recipe, or the recipe is not a JSON object. */
char *fedc_meta_get(const fedc_model *m, const char *key);

/* What a card records; text fields NULL and numbers NaN (or -1 for counts) when unknown. */
typedef struct fedc_card {
    const char *source;         /* "fedc train", "federation" */
    double threshold;           /* NaN: none (not a binary model) */
    const char *threshold_rule; /* how it was chosen */
    int round, rounds_run;      /* -1: unknown */
    const char *selected_by;    /* "pr_auc", "roc_auc", "loss", ... */
    const char *selection;      /* "best", "last" */
    const char *validation;     /* a JSON object of metrics, or NULL */
    const char *run;            /* a JSON object of training settings, or NULL */
} fedc_card;

/* A card with nothing known. */
void fedc_card_init(fedc_card *c);

/* Writes c as m's card (key "card"), adding fedc_version and created (now). Errors as
 * fedc_meta_put. */
FEDC_MUST_CHECK fedc_err fedc_card_put(fedc_model *m, const fedc_card *c, fedc_diag *d);

/* The decision threshold the card records: 0 with *thr set, or -1 (no card, no threshold, or not
 * a number in 0..1). */
int fedc_card_threshold(const fedc_model *m, double *thr);

#endif
