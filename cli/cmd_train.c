/* fedc train: central training on one CSV file, the baseline that every federated run is compared
 * with. Loads and checks the data, splits it (stratified, seeded), standardises it with statistics
 * of the training part, trains with early stopping, reports test metrics and saves the model.
 * With --dp-clip it trains with record-level DP-SGD (core/nn train.h) on secret noise from core/fl
 * and reports the privacy spent (RDP accountant, core/fl dp.h). */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fedc/card.h"
#include "loadopts.h"
#include "fedc/augment.h"
#include "fedc/dp.h"
#include "fedc/kernels.h"
#include "fedc/modelfile.h"
#include "fedc/train.h"

static const char *CMD = "train";

static const fedc_prog_help g_help = {
    "usage: fedc train --data FILE.csv --label COLUMN [options]",
    "Trains an MLP on one CSV file (header line, numeric columns) and prints test metrics.\n"
    "The task follows from the label column: 0/1 -> binary (sigmoid, cross-entropy),\n"
    "integers 0..K-1 -> K-class softmax, --task regression -> mean squared error. The\n"
    "rows are split (stratified, seeded) into training, validation and test parts; the\n"
    "data is standardised with statistics of the training part.",
    "Differential privacy: --dp-clip turns on record-level DP-SGD and needs --dp-noise or\n"
    "--target-epsilon. After training: 'dp: epsilon = X at delta D over T steps (q Q,\n"
    "sigma S)'. The guarantee covers the weights; the standardisation statistics saved\n"
    "with the model come from the training rows without noise. --dp-sampling poisson is\n"
    "what the accountant assumes; with shuffle its figure is the usual approximation.\n"
    "\n"
    "--optimizer adamw, the old spelling of --optimizer adam --weight-decay 0.01, still\n"
    "works on the command line, with a warning.\n"
    "\n"
    "Exit status: 0 success, 1 runtime failure, 2 bad flags or bad input data."};

/* "--optimizer adamw" was a value of its own before the option table; it is Adam with a decoupled
 * weight decay of 0.01, which the table spells --optimizer adam --weight-decay 0.01. The table
 * keeps one set of words for every program (the coordinator has no AdamW), so the old spelling is
 * rewritten here, on the command line only. Returns argv or a copy (in *copy, to free); sets
 * *adamw. */
static char **rewrite_adamw(int argc, char **argv, char ***copy, int *adamw) {
    *copy = NULL;
    *adamw = 0;
    for (int i = 1; i < argc; i++) {
        int sep = strcmp(argv[i], "--optimizer") == 0 && i + 1 < argc &&
                  strcmp(argv[i + 1], "adamw") == 0;
        int joined = strcmp(argv[i], "--optimizer=adamw") == 0;
        if (!sep && !joined)
            continue;
        if (!*copy) {
            *copy = malloc(sizeof(char *) * (size_t)(argc + 1));
            if (!*copy)
                return NULL;
            memcpy(*copy, argv, sizeof(char *) * (size_t)(argc + 1));
        }
        static char adam[] = "adam", joined_adam[] = "--optimizer=adam";
        if (sep)
            (*copy)[++i] = adam;
        else
            (*copy)[i] = joined_adam;
        if (!*adamw)
            fprintf(stderr, "fedc train: warning: --optimizer adamw is deprecated: it is "
                            "--optimizer adam --weight-decay 0.01\n");
        *adamw = 1;
    }
    return *copy ? *copy : argv;
}

typedef struct progress {
    int tty;
    int quiet;
    const char *metric_name;
} progress;

static void on_epoch(void *ctx, const fedc_epoch_info *e) {
    const progress *p = ctx;
    if (p->quiet)
        return;
    char val[96] = "";
    if (!isnan(e->val_loss)) {
        if (strcmp(p->metric_name, "loss") == 0)
            snprintf(val, sizeof val, "  val_loss %.4f%s", e->val_loss, e->improved ? " *" : "");
        else
            snprintf(val, sizeof val, "  val_loss %.4f  val_%s %.4f%s", e->val_loss, p->metric_name,
                     e->val_metric, e->improved ? " *" : "");
    }
    fprintf(stdout, "%sepoch %3d/%d  loss %.4f%s  %.2fs  %.0f samples/s%s",
            p->tty ? "\r\033[K" : "", e->epoch, e->epochs, e->train_loss, val, e->seconds,
            e->samples_per_s, p->tty ? "" : "\n");
    fflush(stdout);
}

/* The model card (fedc/card.h) of a model trained here: the threshold and how it was chosen, the
 * best epoch, the validation part's metrics, the settings. */
static int train_card(fedc_model *model, const fedc_dataset *val, float threshold,
                      const char *thr_how, fedc_task task, const fedc_train_report *rep,
                      double dp_eps, double dp_delta, const fedc_train_cfg *cfg, const int *hidden,
                      int n_hidden, fedc_diag *d) {
    fedc_card c;
    fedc_card_init(&c);
    c.source = "fedc train";
    char rule[96];
    if (task == FEDC_TASK_BINARY) {
        c.threshold = threshold;
        snprintf(rule, sizeof rule, "%s",
                 thr_how ? (strcmp(thr_how, "alert budget") == 0
                                ? "alert budget on the validation part (--alert-budget)"
                                : "minimum precision on the validation part (--min-precision)")
                         : "given (--threshold)");
        c.threshold_rule = rule;
    }
    c.round = rep->best_epoch;
    c.rounds_run = rep->epochs_run;
    c.selected_by = val && val->n_rows > 0 ? (cfg->stop_metric == FEDC_STOP_PR_AUC    ? "pr_auc"
                                              : cfg->stop_metric == FEDC_STOP_ROC_AUC ? "roc_auc"
                                                                                      : "loss")
                                           : NULL;
    c.selection = c.selected_by ? "best" : "last";
    char *vline = NULL, *rline = NULL;
    fedc_err jrc;
    float *vp = NULL;
    if (val && val->n_rows > 0) {
        vp = malloc((size_t)val->n_rows * fedc_model_out_width(model) * sizeof(float));
        cli_metrics vm;
        if (vp && fedc_model_predict_std(vp, model, val->x, val->n_rows) == FEDC_OK &&
            cli_compute_metrics(&vm, model, vp, val, threshold) == 0) {
            fedc_json j;
            fedc__json_begin(&j);
            cli_metrics_json(&j, &vm);
            vline = fedc__json_line(&j, "the validation metrics", &jrc, d);
            fedc__json_end(&j);
        }
        free(vp);
    }
    c.validation = vline;
    fedc_json j;
    fedc__json_begin(&j);
    fedc__json_int(&j, "epochs", cfg->epochs);
    fedc__json_int(&j, "batch", cfg->batch);
    fedc__json_num(&j, "lr", cfg->opt.lr, 6);
    cJSON *layers = cJSON_CreateArray();
    for (int l = 0; layers && l < n_hidden; l++)
        cJSON_AddItemToArray(layers, cJSON_CreateNumber(hidden[l]));
    fedc__json_item(&j, "layers", layers);
    fedc__json_num(&j, "dp_epsilon", dp_eps, 6);
    fedc__json_num(&j, "dp_delta", isfinite(dp_eps) ? dp_delta : NAN, 6);
    rline = fedc__json_line(&j, "the run settings", &jrc, d);
    fedc__json_end(&j);
    c.run = rline;
    int rc = rline ? (fedc_card_put(model, &c, d) == FEDC_OK ? 0 : -1) : -1;
    cJSON_free(vline);
    cJSON_free(rline);
    return rc;
}

int cmd_train(int argc, char **argv) {
    char **args_copy;
    int adamw;
    char **args = rewrite_adamw(argc, argv, &args_copy, &adamw);
    if (!args) {
        cli_error(CMD, "out of memory");
        return FEDC_EXIT_FAIL;
    }
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_TRAIN, argc, args, &g_help);
    /* the values point into argv, not into the copy of its pointers */
    free(args_copy);
    if (prc >= 0)
        return prc;
#define V(id) (op.v[FEDC_O_##id])
#define GIVEN(id) fedc_opt_given(&op, FEDC_O_##id)
    const char *data = V(DATA).text, *label = V(LABEL).text, *drop = V(DROP).text;
    const char *out = V(OUT).text, *json = V(METRICS_JSON).text;
    const char *act_name = V(ACTIVATION).text, *opt_name = V(OPTIMIZER).text;
    const char *stop_name = V(STOP_METRIC).text;
    float dp_clip = GIVEN(DP_CLIP) ? (float)V(DP_CLIP).r : 0;
    float dp_noise = GIVEN(DP_NOISE) ? (float)V(DP_NOISE).r : -1;
    float dp_target = GIVEN(TARGET_EPSILON) ? (float)V(TARGET_EPSILON).r : -1;
    float dp_delta = (float)V(DP_DELTA).r;
    fedc_dp_noise noise;
    int noise_live = 0;
    fedc_aug_cfg aug;
    memset(&aug, 0, sizeof aug);
    float val_frac = (float)V(VAL_FRACTION).r, test_frac = (float)V(TEST_FRACTION).r;
    float threshold = (float)V(THRESHOLD).r;
    float alert_budget = fedc_opt_has(&op, FEDC_O_ALERT_BUDGET) ? (float)V(ALERT_BUDGET).r : 0;
    float min_precision = GIVEN(MIN_PRECISION) ? (float)V(MIN_PRECISION).r : 0;
    int threads = fedc_opt_has(&op, FEDC_O_THREADS) ? (int)V(THREADS).i : 0;
    int quiet = (int)V(QUIET).i;
    unsigned long long seed = V(SEED).u;
    fedc_train_cfg cfg = fedc_train_defaults();
    cfg.epochs = (int)V(EPOCHS).i;
    cfg.batch = (int)V(BATCH).i;
    cfg.patience = (int)V(PATIENCE).i;
    cfg.opt.lr = (float)V(LR).r;
    cfg.opt.momentum = (float)V(MOMENTUM).r;
    cfg.opt.l2 = (float)V(L2).r;
    cfg.opt.l1 = (float)V(L1).r;
    cfg.dropout = (float)V(DROPOUT).r;
    int rc = FEDC_EXIT_USAGE;
    char **drop_list = NULL;
    fedc_dataset *all = NULL, *train = NULL, *val = NULL, *test = NULL;
    fedc_model *model = NULL;
    float *pred = NULL, *impute = NULL;
    fedc_diag d = {{0}};
    fedc_load_opts lo;
    if ((rc = fedc_load_opts_get(&lo, &op, CMD)) != 0)
        return rc;
    rc = FEDC_EXIT_USAGE;

    {
        fedc_diag ad;
        if (fedc_aug_parse(&aug, V(AUGMENT).text, &ad)) {
            cli_error(CMD, "--augment: %s", ad.msg);
            fedc_load_opts_release(&lo);
            return FEDC_EXIT_USAGE;
        }
    }
    if (!data || !label) {
        cli_error(CMD, "%s is required (see fedc train --help)", !data ? "--data" : "--label");
        goto out;
    }
    if (val_frac + test_frac >= 0.95f) {
        cli_error(CMD, "--val-fraction + --test-fraction must be below 0.95, got %g",
                  (double)(val_frac + test_frac));
        goto out;
    }
    const int dp = dp_clip > 0;
    if (!dp &&
        (GIVEN(DP_NOISE) || GIVEN(TARGET_EPSILON) || GIVEN(DP_DELTA) || GIVEN(DP_SAMPLING))) {
        /* A variable exported for another program (FEDC_DP_NOISE for fedc sim) reaches train
         * too: the message says where the value came from. */
        fedc_opt_id why = GIVEN(DP_NOISE)         ? FEDC_O_DP_NOISE
                          : GIVEN(TARGET_EPSILON) ? FEDC_O_TARGET_EPSILON
                          : GIVEN(DP_DELTA)       ? FEDC_O_DP_DELTA
                                                  : FEDC_O_DP_SAMPLING;
        char origin[1200];
        cli_error(CMD, "--%s%s needs --dp-clip (DP-SGD's clipping norm)", fedc_opt_table[why].name,
                  fedc_opt_origin(origin, sizeof origin, &op, why));
        goto out;
    }
    if (dp && (dp_noise < 0) == (dp_target < 0)) {
        cli_error(CMD, "%s",
                  dp_noise < 0 ? "--dp-clip needs --dp-noise or --target-epsilon"
                               : "give --dp-noise or --target-epsilon, not both");
        goto out;
    }
    if (dp && aug.kind != FEDC_AUG_NONE) {
        cli_error(CMD, "--augment copies or blends real rows, so one person's row could count "
                       "several times and DP-SGD's per-row bound would not hold; drop one of "
                       "--augment and --dp-clip");
        goto out;
    }
    cfg.dp_clip = dp_clip;
    cfg.dp_poisson = strcmp(V(DP_SAMPLING).text, "poisson") == 0;
    int hidden[FEDC_MAX_LAYERS], n_hidden = V(LAYERS).n_list;
    memcpy(hidden, V(LAYERS).list, sizeof hidden);
    fedc_act act;
    if (fedc_act_parse(&act, act_name)) {
        /* the table's words are fedc_act_parse's: this is a bug, not bad input */
        cli_error(CMD, "--activation: '%s' is in the option table but unknown to core/nn",
                  act_name);
        goto out;
    }
    cfg.opt.kind = strcmp(opt_name, "sgd") == 0 ? FEDC_OPT_SGD : FEDC_OPT_ADAM;
    /* --optimizer adamw (deprecated) keeps its old default decay unless one is given */
    cfg.opt.weight_decay = adamw && !GIVEN(WEIGHT_DECAY) ? 0.01f : (float)V(WEIGHT_DECAY).r;
    if (adamw)
        opt_name = "adamw";
    int forced_regression = strcmp(V(TASK).text, "regression") == 0;
    cfg.stop_metric = strcmp(stop_name, "roc_auc") == 0  ? FEDC_STOP_ROC_AUC
                      : strcmp(stop_name, "pr_auc") == 0 ? FEDC_STOP_PR_AUC
                                                         : FEDC_STOP_LOSS;
    int auto_pw = V(POS_WEIGHT).i == 0; /* the word "auto"; -1 for a number */
    if (!auto_pw)
        cfg.pos_weight = (float)V(POS_WEIGHT).r;
    int n_drop = 0;
    if (drop && cli_str_list(CMD, "--drop", drop, &drop_list, &n_drop))
        goto out;
    cfg.seed = seed;
#undef V
#undef GIVEN

    /* Data: load, detect the task, split, standardise with training statistics. */
    if (fedc_csv_load_enc(&all, data, label, (const char *const *)drop_list, n_drop, &lo.enc, &d)) {
        fprintf(stderr, "fedc train: %s\n", d.msg);
        goto out;
    }
    fedc_task task;
    int n_classes;
    if (fedc_dataset_task(&task, &n_classes, all, forced_regression, &d)) {
        fprintf(stderr, "fedc train: %s: %s\n", data, d.msg);
        goto out;
    }
    if (task == FEDC_TASK_BINARY) {
        /* Labels in {0, 1} with one of them absent: nothing to tell apart, and every ranking
         * metric (ROC-AUC, PR-AUC) is undefined. A federated client may hold one class; a model
         * trained on one file may not. */
        int n_pos = 0;
        for (int i = 0; i < all->n_rows; i++)
            n_pos += all->y[i] == 1.0f;
        if (n_pos == 0 || n_pos == all->n_rows) {
            cli_error(CMD,
                      "%s: label column '%s' holds a single class: all %d rows are %d; binary "
                      "training needs rows of both classes (0 and 1)",
                      data, label, all->n_rows, n_pos ? 1 : 0);
            goto out;
        }
    }
    if (alert_budget > 0 && min_precision > 0) {
        cli_error(CMD, "--alert-budget and --min-precision choose the threshold in two ways; give "
                       "one");
        goto out;
    }
    if ((alert_budget > 0 || min_precision > 0) && (task != FEDC_TASK_BINARY || val_frac <= 0)) {
        cli_error(CMD, "%s needs binary labels and a validation part (--val-fraction > 0)",
                  alert_budget > 0 ? "--alert-budget" : "--min-precision");
        goto out;
    }
    if (task != FEDC_TASK_BINARY && (auto_pw || cfg.pos_weight != 1.0f)) {
        cli_error(CMD, "--pos-weight applies to binary labels only; '%s' is a %s task", label,
                  fedc_task_name(task));
        goto out;
    }
    if (task != FEDC_TASK_BINARY && cfg.stop_metric != FEDC_STOP_LOSS) {
        cli_error(CMD, "--stop-metric %s applies to binary labels only", stop_name);
        goto out;
    }
    rc = FEDC_EXIT_FAIL;
    if (fedc_dataset_split(&train, val_frac > 0 ? &val : NULL, test_frac > 0 ? &test : NULL, all,
                           task, val_frac, test_frac, seed)) {
        cli_error(CMD, "cannot split the data (fractions %g and %g)", (double)val_frac,
                  (double)test_frac);
        goto out;
    }
    if (train->n_rows < 1) {
        cli_error(CMD, "%s: no rows left for training after the split", data);
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    if (cfg.stop_metric != FEDC_STOP_LOSS) {
        /* Early stopping on a ranking metric needs both classes among the validation rows. */
        int v_pos = 0;
        for (int i = 0; val && i < val->n_rows; i++)
            v_pos += val->y[i] == 1.0f;
        if (val && val->n_rows > 0 && (v_pos == 0 || v_pos == val->n_rows)) {
            cli_error(CMD,
                      "--stop-metric %s needs both classes in the validation part: its %d rows "
                      "are all of class %d (use --stop-metric loss, or more rows of class %d)",
                      stop_name, val->n_rows, v_pos ? 1 : 0, v_pos ? 0 : 1);
            rc = FEDC_EXIT_USAGE;
            goto out;
        }
    }
    fedc_arch arch;
    if (fedc_arch_make(&arch, all->n_features, hidden, n_hidden, act, task, n_classes, &d)) {
        cli_error(CMD, "%s", d.msg);
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    if (fedc_model_new(&model, &arch)) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    /* --missing mean: the training rows' means fill every part; the model keeps them so that
     * fedc eval fills a test file's gaps with the same values, never with its own. */
    if (lo.enc.missing == FEDC_MISSING_MEAN) {
        if (!(impute = malloc(sizeof(float) * (size_t)all->n_features))) {
            cli_error(CMD, "out of memory");
            goto out;
        }
        fedc_dataset *others[2] = {val, test};
        long filled = fedc_impute_train_means(impute, train, others, 2);
        if (!quiet)
            fprintf(stderr,
                    "fedc train: --missing mean: %ld missing cells of the training rows "
                    "filled with their columns' means\n",
                    filled);
    }
    fedc_dataset_stats(model->mean, model->std, train);
    if (fedc_model_set_schema(model, all->feature_names, all->label_name, model->mean,
                              model->std) ||
        fedc_model_set_recipe(model, &lo.enc, impute, impute ? all->n_features : 0, lo.features)) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    fedc_dataset_standardize(train, model->mean, model->std);
    if (val)
        fedc_dataset_standardize(val, model->mean, model->std);
    if (test)
        fedc_dataset_standardize(test, model->mean, model->std);
    int aug_added = 0, aug_pos = 0, aug_neg = 0;
    if (aug.kind != FEDC_AUG_NONE) {
        for (int i = 0; i < train->n_rows; i++) {
            aug_pos += train->y[i] == 1.0f;
            aug_neg += train->y[i] == 0.0f;
        }
        if (task != FEDC_TASK_BINARY) {
            cli_error(CMD, "--augment applies to binary labels only");
            goto out;
        }
        fedc_dataset *big = NULL;
        fedc_diag ad;
        aug.seed = seed;
        if (fedc_augment(&big, train, &aug, &aug_added, &ad)) {
            cli_error(CMD, "--augment: %s", ad.msg);
            goto out;
        }
        fedc_dataset_destroy(&train);
        train = big;
    }
    if (auto_pw)
        cfg.pos_weight = fedc_dataset_pos_weight(train);
    fedc_model_init(model, seed);
    /* DP-SGD: the sampling rate and step count fedc_train will use (batch capped at the rows,
     * ceil(rows / batch) steps per epoch); sigma from the target over all planned steps. */
    const int dp_batch = cfg.batch < train->n_rows ? cfg.batch : train->n_rows;
    const double dp_q = (double)dp_batch / train->n_rows;
    const double dp_plan = (double)cfg.epochs * ((train->n_rows + dp_batch - 1) / dp_batch);
    if (dp && dp_target > 0) {
        double sigma;
        fedc_err e = fedc_dp_sigma_for(&sigma, dp_q, dp_plan, dp_delta, dp_target, &d);
        if (e) {
            cli_error(CMD, "--target-epsilon: %s", d.msg);
            rc = FEDC_EXIT_USAGE;
            goto out;
        }
        /* Rounded up to a float so that the noise is never below what the target needs. */
        dp_noise = (float)sigma;
        if ((double)dp_noise < sigma)
            dp_noise = nextafterf(dp_noise, INFINITY);
    }
    if (dp) {
        if (sodium_init() < 0) {
            cli_error(CMD, "libsodium failed to initialise: no secret noise for DP-SGD");
            goto out;
        }
        fedc_dp_noise_init(&noise);
        noise_live = 1;
        cfg.dp_noise = dp_noise;
        fedc_dp_noise_for_training(&cfg, &noise);
    }

    int requested = cli_setup_threads(threads);
    printf("fedc train: %s, %d rows x %d features, task %s", data, all->n_rows, all->n_features,
           fedc_task_name(task));
    if (task == FEDC_TASK_MULTICLASS)
        printf(" (%d classes)", n_classes);
    printf("\n  split: %d train, %d validation, %d test (stratified, seed %llu)\n",
           train->n_rows - aug_added, val ? val->n_rows : 0, test ? test->n_rows : 0, seed);
    if (aug.kind != FEDC_AUG_NONE)
        printf("  augment: %d synthetic positive rows added to the training part (%d positives, "
               "%d negatives before; positives/negatives now %.4f)\n",
               aug_added, aug_pos, aug_neg,
               aug_neg ? (double)(aug_pos + aug_added) / aug_neg : 0.0);
    printf("  model: %d", arch.sizes[0]);
    for (int l = 1; l <= arch.n_layers; l++)
        printf("-%d", arch.sizes[l]);
    printf(" (%s hidden, %zu parameters), %s lr %g, batch %d, up to %d epochs", act_name,
           model->n_params, opt_name, (double)cfg.opt.lr, cfg.batch, cfg.epochs);
    if (task == FEDC_TASK_BINARY)
        printf(", pos-weight %.3f", (double)cfg.pos_weight);
    printf("\n  kernels: %s, %d threads requested\n", fedc_isa_name(fedc_isa_active()), requested);
    if (dp)
        printf("  dp-sgd: clip %g, noise multiplier %.6g%s, %s sampling q %.6g, up to %.0f steps\n",
               (double)dp_clip, (double)dp_noise, dp_target > 0 ? " (from --target-epsilon)" : "",
               cfg.dp_poisson ? "Poisson" : "shuffled-batch", dp_q, dp_plan);

    progress pg = {isatty(fileno(stdout)), quiet, stop_name};
    cfg.on_epoch = on_epoch;
    cfg.ctx = &pg;
    fedc_train_report rep;
    fedc_err err = fedc_train(model, train, val, &cfg, &rep, &d);
    if (pg.tty && !quiet)
        printf("\n");
    if (err) {
        cli_error(CMD, "%s", d.msg);
        /* Out of memory and divergence are run-time failures; the rest is input that does not fit.
         */
        rc = err == FEDC_ENOMEM || err == FEDC_ERANGE ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
        goto out;
    }
    printf("trained %d epochs in %.2fs (best epoch %d), threads used: %d\n", rep.epochs_run,
           rep.seconds, rep.best_epoch, rep.threads_used);
    double dp_eps = NAN;
    if (dp) {
        fedc_dp_noise_wipe(&noise);
        noise_live = 0;
        double order;
        if (fedc_dp_epsilon(&dp_eps, &order, rep.dp_q, (double)dp_noise, (double)rep.dp_steps,
                            dp_delta, &d)) {
            cli_error(CMD, "privacy accounting: %s", d.msg);
            goto out;
        }
        printf("dp: epsilon = %.3f at delta %g over %ld steps (q %.6g, sigma %.6g)\n", dp_eps,
               (double)dp_delta, rep.dp_steps, rep.dp_q, (double)dp_noise);
    }

    /* A threshold chosen on the validation part for an operating target. */
    const char *thr_how = NULL;
    if ((alert_budget > 0 || min_precision > 0) && val && val->n_rows > 0) {
        float *vp = malloc(sizeof(float) * (size_t)val->n_rows);
        if (!vp || fedc_model_predict_std(vp, model, val->x, val->n_rows)) {
            free(vp);
            cli_error(CMD, "out of memory");
            goto out;
        }
        threshold = alert_budget > 0
                        ? cli_threshold_budget(vp, val->n_rows, alert_budget)
                        : cli_threshold_precision(vp, val->y, val->n_rows, min_precision);
        free(vp);
        thr_how = alert_budget > 0 ? "alert budget" : "minimum precision";
        printf("threshold %.6g chosen on the %d validation rows for the %s %g\n", (double)threshold,
               val->n_rows, thr_how, (double)(alert_budget > 0 ? alert_budget : min_precision));
    }

    /* Metrics on the held-out test part (or the training part when there is none). */
    const int has_test = test && test->n_rows > 0;
    const fedc_dataset *eval = has_test ? test : train;
    pred = malloc((size_t)eval->n_rows * fedc_model_out_width(model) * sizeof(float));
    if (!pred || fedc_model_predict_std(pred, model, eval->x, eval->n_rows)) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    cli_metrics mt;
    if (cli_compute_metrics(&mt, model, pred, eval, threshold)) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    cli_print_metrics(stdout, has_test ? "test metrics" : "training-set metrics (no test split)",
                      &mt);
    if (out) {
        if (train_card(model, val, threshold, thr_how, task, &rep, dp ? dp_eps : NAN,
                       (double)dp_delta, &cfg, hidden, n_hidden, &d)) {
            cli_error(CMD, "--out: the model card: %s", d.msg);
            goto out;
        }
        if (fedc_model_save(model, out, &d)) {
            cli_error(CMD, "--out: %s", d.msg);
            goto out;
        }
        printf("model written to %s\n", out);
    }
    if (json) {
        fedc_json j;
        fedc__json_begin(&j);
        cli_metrics_json(&j, &mt);
        fedc__json_str(&j, "split", has_test ? "test" : "train");
        fedc__json_int(&j, "epochs", rep.epochs_run);
        fedc__json_int(&j, "best_epoch", rep.best_epoch);
        fedc__json_int(&j, "threads", rep.threads_used);
        fedc__json_fixed(&j, "seconds", rep.seconds, 3);
        /* The threshold itself is in the metrics (binary tasks): only where it came from here. */
        fedc__json_str(&j, "threshold_from", thr_how ? thr_how : "flag");
        if (dp) {
            fedc__json_num(&j, "dp_epsilon", dp_eps, 6);
            fedc__json_num(&j, "dp_delta", (double)dp_delta, 9);
            fedc__json_int(&j, "dp_steps", rep.dp_steps);
            fedc__json_num(&j, "dp_q", rep.dp_q, 9);
            fedc__json_num(&j, "dp_sigma", (double)dp_noise, 9);
            fedc__json_num(&j, "dp_clip", (double)dp_clip, 9);
        }
        int wrc = cli_write_json(CMD, "--metrics-json", json, &j);
        fedc__json_end(&j);
        if (wrc)
            goto out;
    }
    rc = FEDC_EXIT_OK;
out:
    if (noise_live)
        fedc_dp_noise_wipe(&noise);
    free(pred);
    free(impute);
    fedc_load_opts_release(&lo);
    cli_free_list(drop_list);
    fedc_model_destroy(&model);
    fedc_dataset_destroy(&all);
    fedc_dataset_destroy(&train);
    fedc_dataset_destroy(&val);
    fedc_dataset_destroy(&test);
    return rc;
}
