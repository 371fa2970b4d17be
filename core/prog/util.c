/* List parsing, errors, thread set-up and metric reporting shared by fedc's programs (prog.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "prog.h"
#include "fedc/modelfile.h"

void cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    /* "fedc train: ..." for the toolbox's subcommands, "fedc-client: ..." for the programs. */
    fprintf(stderr, strncmp(cmd, "fedc-", 5) == 0 ? "%s: " : "fedc %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_int_list(const char *cmd, const char *flag, const char *val, int *out, int max, int *n) {
    *n = 0;
    if (val[0] == 0 || strcmp(val, "none") == 0)
        return 0;
    const char *p = val;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || (*end != ',' && *end != 0) || v < 1 || v > FEDC_MAX_WIDTH) {
            cli_error(cmd,
                      "%s: expected comma-separated layer widths in 1..%d (e.g. 64,32), got '%s'",
                      flag, FEDC_MAX_WIDTH, val);
            return -1;
        }
        if (*n == max) {
            cli_error(cmd, "%s: at most %d hidden layers, got '%s'", flag, max, val);
            return -1;
        }
        out[(*n)++] = (int)v;
        if (*end == 0)
            return 0;
        p = end + 1;
    }
}

int cli_str_list(const char *cmd, const char *flag, const char *val, char ***out, int *n) {
    int cap = 1;
    for (const char *p = val; *p; p++)
        cap += *p == ',';
    char **list = calloc((size_t)cap + 1, sizeof(char *));
    if (!list) {
        cli_error(cmd, "out of memory");
        return -1;
    }
    *n = 0;
    const char *p = val;
    while (1) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) {
            cli_error(cmd, "%s: empty name in list '%s'", flag, val);
            cli_free_list(list);
            return -1;
        }
        list[*n] = malloc(len + 1);
        if (!list[*n]) {
            cli_free_list(list);
            cli_error(cmd, "out of memory");
            return -1;
        }
        memcpy(list[*n], p, len);
        list[(*n)++][len] = 0;
        if (!e)
            break;
        p = e + 1;
    }
    *out = list;
    return 0;
}

void cli_free_list(char **list) {
    if (!list)
        return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

int cli_setup_threads(int requested) {
    int n = requested;
    if (n <= 0) {
        const char *env = getenv("OMP_NUM_THREADS");
        n = env ? atoi(env) : 0;
    }
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
#ifdef _OPENMP
    omp_set_dynamic(0);
    omp_set_num_threads(n);
#else
    n = 1;
#endif
    return n;
}

int cli_compute_metrics(cli_metrics *out, const fedc_model *m, const float *pred,
                        const fedc_dataset *ds, float threshold) {
    memset(out, 0, sizeof *out);
    out->task = m->arch.task;
    out->rows = ds->n_rows;
    out->threshold = threshold;
    switch (m->arch.task) {
    case FEDC_TASK_BINARY:
        if (fedc_metrics_binary(&out->bin, pred, ds->y, ds->n_rows, threshold))
            return -1;
        break;
    case FEDC_TASK_MULTICLASS:
        fedc_metrics_multiclass(&out->mc, pred, ds->y, ds->n_rows, m->arch.n_classes);
        break;
    case FEDC_TASK_REGRESSION:
        fedc_metrics_regression(&out->reg, pred, ds->y, ds->n_rows);
        break;
    }
    return 0;
}

/* "  NAME%.4f", or the reason it has no value. */
static void print_metric(FILE *f, const char *name, double v, const char *why) {
    if (isfinite(v))
        fprintf(f, "  %s%.4f\n", name, v);
    else
        fprintf(f, "  %s%s\n", name, why);
}

void cli_print_metrics(FILE *f, const char *title, const cli_metrics *mt) {
    fprintf(f, "%s (%d rows):\n", title, mt->rows);
    switch (mt->task) {
    case FEDC_TASK_BINARY: {
        const fedc_binary_metrics *b = &mt->bin;
        /* Ranking metrics are undefined when the rows hold one class: say so, not "nan" (the
         * JSON report writes null). */
        long n_pos = b->tp + b->fn, n_neg = b->tn + b->fp;
        char why[96] = "n/a";
        if (mt->rows > 0 && (n_pos == 0 || n_neg == 0))
            snprintf(why, sizeof why, "n/a (all %d rows are of class %d)", mt->rows, n_pos ? 1 : 0);
        print_metric(f, "roc_auc   ", b->roc_auc, why);
        print_metric(f, "pr_auc    ", b->pr_auc, why);
        fprintf(f, "  accuracy  %.4f\n", b->accuracy);
        fprintf(f, "  precision %.4f\n  recall    %.4f\n  f1        %.4f\n  log_loss  %.4f\n",
                b->precision, b->recall, b->f1, b->log_loss);
        fprintf(f, "  confusion at threshold %.2f: tp %ld  fp %ld  tn %ld  fn %ld\n",
                (double)mt->threshold, b->tp, b->fp, b->tn, b->fn);
        break;
    }
    case FEDC_TASK_MULTICLASS:
        fprintf(f, "  accuracy  %.4f\n  macro_f1  %.4f\n  log_loss  %.4f\n", mt->mc.accuracy,
                mt->mc.macro_f1, mt->mc.log_loss);
        break;
    case FEDC_TASK_REGRESSION:
        fprintf(f, "  rmse      %.4f\n  r2        %.4f\n", mt->reg.rmse, mt->reg.r2);
        break;
    }
}

void cli_metrics_json(fedc_json *j, const cli_metrics *mt) {
    fedc__json_str(j, "task", fedc_task_name(mt->task));
    fedc__json_int(j, "rows", mt->rows);
    switch (mt->task) {
    case FEDC_TASK_BINARY:
        fedc__json_num(j, "roc_auc", mt->bin.roc_auc, 17);
        fedc__json_num(j, "pr_auc", mt->bin.pr_auc, 17);
        fedc__json_num(j, "accuracy", mt->bin.accuracy, 17);
        fedc__json_num(j, "precision", mt->bin.precision, 17);
        fedc__json_num(j, "recall", mt->bin.recall, 17);
        fedc__json_num(j, "f1", mt->bin.f1, 17);
        fedc__json_num(j, "log_loss", mt->bin.log_loss, 17);
        fedc__json_num(j, "threshold", mt->threshold, 17);
        fedc__json_int(j, "tp", mt->bin.tp);
        fedc__json_int(j, "fp", mt->bin.fp);
        fedc__json_int(j, "tn", mt->bin.tn);
        fedc__json_int(j, "fn", mt->bin.fn);
        break;
    case FEDC_TASK_MULTICLASS:
        fedc__json_num(j, "accuracy", mt->mc.accuracy, 17);
        fedc__json_num(j, "macro_f1", mt->mc.macro_f1, 17);
        fedc__json_num(j, "log_loss", mt->mc.log_loss, 17);
        break;
    case FEDC_TASK_REGRESSION:
        fedc__json_num(j, "rmse", mt->reg.rmse, 17);
        fedc__json_num(j, "r2", mt->reg.r2, 17);
        break;
    }
}

int cli_write_json(const char *cmd, const char *flag, const char *path, const fedc_json *j) {
    fedc_diag d = {{0}};
    fedc_err rc;
    char *line = fedc__json_line(j, flag, &rc, &d);
    if (!line) {
        cli_error(cmd, "%s", d.msg);
        return -1;
    }
    size_t len = strlen(line);
    /* The one line and its end: line holds len + 1 bytes, the NUL becomes the line end. */
    line[len] = '\n';
    int ret = 0;
    if (fedc_write_atomic(path, line, len + 1, &d)) {
        cli_error(cmd, "%s: %s", flag, d.msg);
        ret = -1;
    }
    cJSON_free(line);
    return ret;
}

static int cmp_score_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

float cli_threshold_budget(const float *score, int n, float budget) {
    int k = (int)floor((double)budget * n + 1e-9);
    if (n < 1 || k < 1)
        return nextafterf(1.0f, 2.0f); /* nothing flagged: scores are at most 1 */
    float *s = malloc(sizeof(float) * (size_t)n);
    if (!s)
        return nextafterf(1.0f, 2.0f);
    memcpy(s, score, sizeof(float) * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_score_desc);
    /* score >= t is flagged: t = the k-th highest, moved up past ties that would exceed k. */
    float t = s[k - 1];
    if (k < n && s[k] == t) {
        int i = k - 1;
        while (i >= 0 && s[i] == t)
            i--;
        t = i >= 0 ? s[i] : nextafterf(t, 2.0f);
    }
    free(s);
    return t;
}

typedef struct sy {
    float s, y;
} sy;

static int cmp_sy_desc(const void *a, const void *b) {
    const sy *x = a, *y = b;
    return (x->s < y->s) - (x->s > y->s);
}

float cli_threshold_precision(const float *score, const float *y, int n, float p) {
    sy *v = malloc(sizeof *v * (size_t)(n > 0 ? n : 1));
    float best = 1.0f;
    if (!v)
        return best;
    for (int i = 0; i < n; i++) {
        v[i].s = score[i];
        v[i].y = y[i];
    }
    qsort(v, (size_t)n, sizeof *v, cmp_sy_desc);
    long tp = 0;
    for (int i = 0; i < n; i++) {
        tp += v[i].y > 0.5f;
        if (i + 1 < n && v[i + 1].s == v[i].s)
            continue; /* a threshold takes a whole tie group */
        if ((double)tp / (i + 1) >= p)
            best = v[i].s;
    }
    free(v);
    return best;
}

typedef struct card_row {
    float day, card, score;
    int fraud;
} card_row;

static int cmp_day_card(const void *a, const void *b) {
    const card_row *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return (x->card > y->card) - (x->card < y->card);
}

static int cmp_card_score(const void *a, const void *b) {
    const card_row *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->card > y->card) - (x->card < y->card);
}

double cli_card_precision(const float *score, const float *y, const float *card, const float *day,
                          int n, int k, int *days) {
    *days = 0;
    if (n < 1 || k < 1)
        return NAN;
    card_row *v = malloc(sizeof *v * (size_t)n);
    if (!v)
        return NAN;
    for (int i = 0; i < n; i++) {
        v[i].day = day[i];
        v[i].card = card[i];
        v[i].score = score[i];
        v[i].fraud = y[i] > 0.5f;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_day_card);
    /* One entry per (day, card): its highest score, fraudulent if any transaction was. */
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m > 0 && v[m - 1].day == v[i].day && v[m - 1].card == v[i].card) {
            v[m - 1].score = v[i].score > v[m - 1].score ? v[i].score : v[m - 1].score;
            v[m - 1].fraud |= v[i].fraud;
        } else {
            v[m++] = v[i];
        }
    }
    double sum = 0;
    for (int lo = 0; lo < m;) {
        int hi = lo;
        while (hi < m && v[hi].day == v[lo].day)
            hi++;
        qsort(v + lo, (size_t)(hi - lo), sizeof *v, cmp_card_score);
        int top = hi - lo < k ? hi - lo : k, frauds = 0;
        for (int i = 0; i < top; i++)
            frauds += v[lo + i].fraud;
        sum += (double)frauds / k; /* divided by k, as the handbook does, on every day */
        (*days)++;
        lo = hi;
    }
    free(v);
    return *days ? sum / *days : NAN;
}

static int cmp_desc_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

double cli_recall_at_budget(const float *pred, const float *y, int n, double budget) {
    if (!pred || budget <= 0 || n < 1)
        return NAN;
    float *s = malloc(sizeof(float) * (size_t)n);
    if (!s)
        return NAN;
    memcpy(s, pred, sizeof(float) * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_desc_f);
    int k = (int)ceil(budget * n);
    k = k < 1 ? 1 : k > n ? n : k;
    float thr = s[k - 1];
    free(s);
    /* Flag the k highest; at the threshold, only as many as fit the budget. */
    int above = 0;
    for (int i = 0; i < n; i++)
        above += pred[i] > thr;
    int room = k - above, tp = 0, pos = 0;
    for (int i = 0; i < n; i++) {
        pos += y[i] > 0.5f;
        if (pred[i] > thr || (pred[i] == thr && room-- > 0))
            tp += y[i] > 0.5f;
    }
    return pos ? (double)tp / pos : NAN;
}
