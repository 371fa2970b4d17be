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
#include "fedc/augment.h"
#include "fedc/dp.h"
#include "fedc/kernels.h"
#include "fedc/modelfile.h"
#include "fedc/train.h"

static const char *CMD = "train";

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: fedc train --data FILE.csv --label COLUMN [options]\n"
        "\n"
        "Trains an MLP on one CSV file (header line, numeric columns) and prints test metrics.\n"
        "The task follows from the label column: 0/1 -> binary (sigmoid, cross-entropy),\n"
        "integers 0..K-1 -> K-class softmax, --task regression -> mean squared error.\n"
        "\n"
        "data:\n"
        "  --data FILE            training CSV (required)\n"
        "  --label NAME           label column (required)\n"
        "  --drop A,B,...         columns to ignore (e.g. an ID column)\n"
        "  --task auto|regression auto picks binary or multiclass from the labels (default auto)\n"
        "  --val-fraction X       validation share for early stopping, 0 <= X <= 0.9 (default %s)\n"
        "  --test-fraction X      held-out test share, 0 <= X < 1 (default 0.15)\n"
        "model:\n"
        "  --layers 64,32         hidden layer widths; 'none' for a linear model (default 64,32)\n"
        "  --activation NAME      relu, leaky_relu, sigmoid or tanh (default relu)\n"
        "  --dropout P            dropout on hidden layers while training, 0 <= P < 1 (default 0)\n"
        "training:\n"
        "  --epochs N             maximum epochs (default 20)\n"
        "  --batch N              mini-batch size (default 64)\n"
        "  --lr X                 learning rate (default 0.001)\n"
        "  --optimizer NAME       adam, adamw or sgd (default adam)\n"
        "  --momentum X           SGD momentum (default 0.9)\n"
        "  --weight-decay X       decoupled weight decay (AdamW; default 0, 0.01 with adamw)\n"
        "  --l2 X                 L2 penalty on weights (default 0)\n"
        "  --l1 X                 L1 penalty on weights (default 0)\n"
        "  --pos-weight auto|X    weight of positive rows in binary cross-entropy; auto =\n"
        "                         negatives/positives of the training part (default 1)\n"
        "  --augment KIND[:R]     add rare-class rows to the training part until positives /\n"
        "                         negatives = R (default 0.1): oversample, smote, noise, or\n"
        "                         none (default); validation and test rows are untouched\n"
        "  --patience N           stop after N epochs without validation improvement and\n"
        "                         restore the best weights; 0 = never (default 5)\n"
        "  --stop-metric NAME     loss, roc_auc or pr_auc (binary) (default loss)\n"
        "  --seed N               seed for initialisation, split, shuffling, dropout (default 1)\n"
        "  --threads N            OpenMP threads (default OMP_NUM_THREADS, else all cores)\n"
        "differential privacy (record-level DP-SGD, Abadi et al. 2016):\n"
        "  --dp-clip C            clip every training row's gradient to L2 norm C; turns\n"
        "                         DP-SGD on and needs --dp-noise or --target-epsilon\n"
        "  --dp-noise SIGMA       noise multiplier: Gaussian noise of sd SIGMA*C on the sum of\n"
        "                         clipped gradients at every step\n"
        "  --target-epsilon E     instead of --dp-noise: the smallest SIGMA whose epsilon after\n"
        "                         all planned steps (--epochs) stays within E\n"
        "  --dp-delta D           delta of the (epsilon, delta) guarantee, 0 < D < 1\n"
        "                         (default 1e-5)\n"
        "  --dp-sampling KIND     poisson (each row joins a step with probability\n"
        "                         batch/rows, what the accountant assumes) or shuffle\n"
        "                         (fixed-size batches; the accountant's figure is then the\n"
        "                         usual approximation) (default poisson)\n"
        "                         After training: 'dp: epsilon = X at delta D over T steps\n"
        "                         (q Q, sigma S)'. The guarantee covers the weights; the\n"
        "                         standardisation statistics saved with the model come\n"
        "                         from the training rows without noise.\n",
        fedc_opt_table[FEDC_O_VAL_FRACTION].def);
    /* Two strings: ISO C caps a string literal at 4095 characters. */
    fputs("output:\n"
          "  --out FILE             save the trained model (path used exactly as given)\n"
          "  --metrics-json FILE    write test metrics as one JSON object on one line\n"
          "  --threshold X          decision threshold for binary metrics (default 0.5)\n"
          "  --alert-budget F       choose the threshold on the validation part so that at most\n"
          "                         the share F of rows is flagged (fraud teams' review budget)\n"
          "  --min-precision X      choose the lowest threshold whose validation precision is at\n"
          "                         least X (the most recall at that precision)\n"
          "  --quiet                no per-epoch lines\n"
          "  -h, --help             this message\n"
          "\n"
          "Exit status: 0 success, 1 runtime failure, 2 bad flags or bad input data.\n",
          f);
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

int cmd_train(int argc, char **argv) {
    const char *data = NULL, *label = NULL, *drop = NULL, *out = NULL, *json = NULL;
    const char *layers = "64,32", *act_name = "relu", *opt_name = "adam", *task_name = "auto";
    const char *pos_weight_s = "1", *stop_name = "loss";
    const char *dp_sampling = NULL;
    float dp_clip = 0, dp_noise = -1, dp_target = -1, dp_delta = -1;
    fedc_dp_noise noise;
    int noise_live = 0;
    fedc_aug_cfg aug;
    memset(&aug, 0, sizeof aug);
    /* --val-fraction means the same in every program and has the option table's default */
    float val_frac = strtof(fedc_opt_table[FEDC_O_VAL_FRACTION].def, NULL);
    float test_frac = 0.15f, threshold = 0.5f, wd = -1.0f;
    float alert_budget = 0, min_precision = 0;
    int threads = 0, quiet = 0;
    unsigned long long seed = 1;
    fedc_train_cfg cfg = fedc_train_defaults();
    int rc = FEDC_EXIT_USAGE;
    char **drop_list = NULL;
    fedc_dataset *all = NULL, *train = NULL, *val = NULL, *test = NULL;
    fedc_model *model = NULL;
    float *pred = NULL;
    fedc_diag d = {{0}};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return FEDC_EXIT_OK;
        }
        if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
            continue;
        }
        char flag[64];
        const char *v;
        if (cli_flag_value(CMD, argc, argv, &i, flag, sizeof flag, &v))
            goto out;
        int bad = 0;
        if (strcmp(flag, "--data") == 0)
            data = v;
        else if (strcmp(flag, "--label") == 0)
            label = v;
        else if (strcmp(flag, "--drop") == 0)
            drop = v;
        else if (strcmp(flag, "--task") == 0)
            task_name = v;
        else if (strcmp(flag, "--layers") == 0)
            layers = v;
        else if (strcmp(flag, "--activation") == 0)
            act_name = v;
        else if (strcmp(flag, "--optimizer") == 0)
            opt_name = v;
        else if (strcmp(flag, "--pos-weight") == 0)
            pos_weight_s = v;
        else if (strcmp(flag, "--augment") == 0) {
            fedc_diag ad;
            if (fedc_aug_parse(&aug, v, &ad)) {
                cli_error(CMD, "--augment: %s", ad.msg);
                return FEDC_EXIT_USAGE;
            }
        } else if (strcmp(flag, "--stop-metric") == 0)
            stop_name = v;
        else if (strcmp(flag, "--out") == 0)
            out = v;
        else if (strcmp(flag, "--metrics-json") == 0)
            json = v;
        else if (strcmp(flag, "--epochs") == 0)
            bad = cli_int(CMD, flag, v, 1, 1000000, &cfg.epochs);
        else if (strcmp(flag, "--batch") == 0)
            bad = cli_int(CMD, flag, v, 1, 1 << 20, &cfg.batch);
        else if (strcmp(flag, "--patience") == 0)
            bad = cli_int(CMD, flag, v, 0, 1000000, &cfg.patience);
        else if (strcmp(flag, "--threads") == 0)
            bad = cli_int(CMD, flag, v, 1, 4096, &threads);
        else if (strcmp(flag, "--seed") == 0)
            bad = cli_u64(CMD, flag, v, &seed);
        else if (strcmp(flag, "--lr") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 10.0, 1, &cfg.opt.lr);
        else if (strcmp(flag, "--momentum") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 0.9999, 0, &cfg.opt.momentum);
        else if (strcmp(flag, "--weight-decay") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1.0, 0, &wd);
        else if (strcmp(flag, "--l2") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 100.0, 0, &cfg.opt.l2);
        else if (strcmp(flag, "--l1") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 100.0, 0, &cfg.opt.l1);
        else if (strcmp(flag, "--dropout") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 0.95, 0, &cfg.dropout);
        else if (strcmp(flag, "--val-fraction") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 0.9, 0, &val_frac);
        else if (strcmp(flag, "--test-fraction") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 0.9, 0, &test_frac);
        else if (strcmp(flag, "--threshold") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1.0, 0, &threshold);
        else if (strcmp(flag, "--alert-budget") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1.0, 1, &alert_budget);
        else if (strcmp(flag, "--min-precision") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1.0, 1, &min_precision);
        else if (strcmp(flag, "--dp-clip") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &dp_clip);
        else if (strcmp(flag, "--dp-noise") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &dp_noise);
        else if (strcmp(flag, "--target-epsilon") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1e6, 1, &dp_target);
        else if (strcmp(flag, "--dp-delta") == 0)
            bad = cli_float(CMD, flag, v, 0.0, 1.0, 1, &dp_delta);
        else if (strcmp(flag, "--dp-sampling") == 0)
            dp_sampling = v;
        else {
            cli_error(CMD, "unknown option '%s' (see fedc train --help)", flag);
            goto out;
        }
        if (bad)
            goto out;
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
    if (!dp && (dp_noise >= 0 || dp_target >= 0 || dp_delta >= 0 || dp_sampling)) {
        cli_error(CMD, "%s needs --dp-clip (DP-SGD's clipping norm)",
                  dp_noise >= 0    ? "--dp-noise"
                  : dp_target >= 0 ? "--target-epsilon"
                  : dp_delta >= 0  ? "--dp-delta"
                                   : "--dp-sampling");
        goto out;
    }
    if (dp && (dp_noise < 0) == (dp_target < 0)) {
        cli_error(CMD, "%s",
                  dp_noise < 0 ? "--dp-clip needs --dp-noise or --target-epsilon"
                               : "give --dp-noise or --target-epsilon, not both");
        goto out;
    }
    if (dp_delta >= 1.0f) {
        cli_error(CMD, "--dp-delta: expected 0 < D < 1, got %g", (double)dp_delta);
        goto out;
    }
    if (dp_delta < 0)
        dp_delta = 1e-5f;
    if (dp_sampling && strcmp(dp_sampling, "poisson") != 0 && strcmp(dp_sampling, "shuffle") != 0) {
        cli_error(CMD, "--dp-sampling: expected poisson or shuffle, got '%s'", dp_sampling);
        goto out;
    }
    if (dp && aug.kind != FEDC_AUG_NONE) {
        cli_error(CMD, "--augment copies or blends real rows, so one person's row could count "
                       "several times and DP-SGD's per-row bound would not hold; drop one of "
                       "--augment and --dp-clip");
        goto out;
    }
    cfg.dp_clip = dp_clip;
    cfg.dp_poisson = !dp_sampling || strcmp(dp_sampling, "poisson") == 0;
    int hidden[FEDC_MAX_LAYERS], n_hidden = 0;
    if (cli_int_list(CMD, "--layers", layers, hidden, FEDC_MAX_LAYERS - 1, &n_hidden))
        goto out;
    fedc_act act;
    if (fedc_act_parse(&act, act_name)) {
        cli_error(CMD, "--activation: expected relu, leaky_relu, sigmoid or tanh, got '%s'",
                  act_name);
        goto out;
    }
    if (strcmp(opt_name, "adam") == 0) {
        cfg.opt.kind = FEDC_OPT_ADAM;
    } else if (strcmp(opt_name, "adamw") == 0) {
        cfg.opt.kind = FEDC_OPT_ADAM;
        if (wd < 0.0f)
            wd = 0.01f;
    } else if (strcmp(opt_name, "sgd") == 0) {
        cfg.opt.kind = FEDC_OPT_SGD;
    } else {
        cli_error(CMD, "--optimizer: expected adam, adamw or sgd, got '%s'", opt_name);
        goto out;
    }
    cfg.opt.weight_decay = wd < 0.0f ? 0.0f : wd;
    int forced_regression = 0;
    if (strcmp(task_name, "regression") == 0) {
        forced_regression = 1;
    } else if (strcmp(task_name, "auto") != 0) {
        cli_error(CMD, "--task: expected auto or regression, got '%s'", task_name);
        goto out;
    }
    if (strcmp(stop_name, "loss") == 0) {
        cfg.stop_metric = FEDC_STOP_LOSS;
    } else if (strcmp(stop_name, "roc_auc") == 0) {
        cfg.stop_metric = FEDC_STOP_ROC_AUC;
    } else if (strcmp(stop_name, "pr_auc") == 0) {
        cfg.stop_metric = FEDC_STOP_PR_AUC;
    } else {
        cli_error(CMD, "--stop-metric: expected loss, roc_auc or pr_auc, got '%s'", stop_name);
        goto out;
    }
    int auto_pw = strcmp(pos_weight_s, "auto") == 0;
    if (!auto_pw) {
        /* One message that names both forms (cli_float would print its own first). */
        char *end;
        double pw = strtod(pos_weight_s, &end);
        if (end == pos_weight_s || *end || !(pw > 0.0 && pw <= 1e6) || !((float)pw > 0.0f)) {
            cli_error(CMD, "--pos-weight: expected auto or a number in (0, 1e+06], got '%s'",
                      pos_weight_s);
            goto out;
        }
        cfg.pos_weight = (float)pw;
    }
    int n_drop = 0;
    if (drop && cli_str_list(CMD, "--drop", drop, &drop_list, &n_drop))
        goto out;
    cfg.seed = seed;

    /* Data: load, detect the task, split, standardise with training statistics. */
    if (fedc_csv_load(&all, data, label, (const char *const *)drop_list, n_drop, &d)) {
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
    fedc_dataset_stats(model->mean, model->std, train);
    if (fedc_model_set_schema(model, all->feature_names, all->label_name, model->mean,
                              model->std)) {
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
        int wrc = cli_write_json(CMD, json, &j);
        fedc__json_end(&j);
        if (wrc)
            goto out;
    }
    rc = FEDC_EXIT_OK;
out:
    if (noise_live)
        fedc_dp_noise_wipe(&noise);
    free(pred);
    cli_free_list(drop_list);
    fedc_model_destroy(&model);
    fedc_dataset_destroy(&all);
    fedc_dataset_destroy(&train);
    fedc_dataset_destroy(&val);
    fedc_dataset_destroy(&test);
    return rc;
}
