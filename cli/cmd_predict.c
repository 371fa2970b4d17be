/* fedc predict: scores a CSV file with a saved model, as a stream.
 *
 * The file is read in blocks of up to PRED_BLOCK_ROWS records (predict.h); each block is split
 * among the OpenMP threads, each of which parses its rows, scores them with the scoring API
 * (fedc/score.h, its own workspace) and formats its output lines; the main thread then writes
 * the threads' text in row order. Memory is a few blocks whatever the file's size. Columns are
 * found by the model's feature names; the label, if present, is ignored unless kept.
 *
 * --alert-budget F reads the file three times, holding only histograms: pass 1 counts the good
 * rows and the scores by their top 16 bits (scores are non-negative floats, so the bit pattern
 * orders them), which finds the bin holding the k-th highest score, k = floor(F n); pass 2
 * counts the scores inside that bin by their low 16 bits, which gives the k-th highest score
 * exactly; pass 3 writes. Ties are broken as fedc train's threshold at a budget does: never more
 * than k rows flagged.
 *
 * Raw transactions for a model that records a feature spec (meta "features"): raw_features
 * below computes the features first, with fedc features, into a temporary file beside the
 * output. A model trained with a loader encoding is read through predict_enc.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "fastnum.h"
#include "fedc/csv.h"
#include "fedc/score.h"
#include "predict.h"
#include "fedc/card.h"
#include "fedc/features_spec.h"
#include "fedc/recipe.h"
#include "loadopts.h"

static const char *CMD = "predict";

static const fedc_prog_help g_help = {
    "usage: fedc predict --model FILE --data FILE.csv --out SCORES.csv [--keep COL,...]\n"
    "                    [--threshold X | --alert-budget F] [--skip-bad --rejects FILE]",
    "Scores every row of a CSV file with a model saved by 'fedc train --out' or\n"
    "fedc-coordinator --model-out, reading the file as a stream (memory stays flat whatever\n"
    "its size). Columns are found by the model's feature names (blanks around header names\n"
    "ignored); no label is needed. Each output row holds the --keep columns exactly as in\n"
    "the input, then 'score' (binary: the probability of class 1; multiclass: p_0..p_{K-1};\n"
    "regression: the prediction) and 'decision' (binary: 1 when the score is at least the\n"
    "threshold: --threshold, else the model card's, else 0.5; multiclass: the most probable\n"
    "class; regression has none). A bad row stops the run with file:line:column and exit 2,\n"
    "or with --skip-bad goes to --rejects with the reason and is counted.",
    "Exit status: 0 success, 1 runtime failure, 2 bad flags, data or model file."};

enum { MODE_WRITE, MODE_HIST_HI, MODE_HIST_LO };

typedef struct predictor {
    const char *data;
    int skip_bad;
    fedc_scorer *sc;
    int nf, ow, task;
    int decide; /* 1: binary decisions at thr */
    float thr;
    /* columns */
    int n_cols, n_keep;
    char **names; /* the header's names (trimmed), n_cols */
    int *role, *keep_of, *keep_col;
    char *header_raw; /* the header record as read */
    uint32_t *header_keep;
    pred_layout lay;
    char delim;     /* the field separator: --delimiter, else the recipe's, else ',' */
    char *enc_json; /* the model's encoding when it is not plain (owned), else NULL */
    pred_enc enc;
    /* blocks */
    pred_reader rd;
    pred_rec *recs;
    float *x, *score;
    pred_status *st;
    uint32_t *keep;
    int n_threads;
    void **work;
    char **tbuf;
    size_t *tcap, *tlen;
    /* counts */
    long long good, rejected;
    long blank_first, blank_count; /* blank lines not yet known to be trailing */
    /* --alert-budget */
    long long *hist;
    uint32_t hist_bin;
} predictor;

/* Whether the model's recipe records a feature spec ("features"): then a file without its
 * feature columns is told what it should hold (pred_raw_features computes them when the file
 * has the spec's time column). */
static int has_features_spec(const fedc_model *m) {
    char *f = fedc_meta_get(m, "features");
    int has = f && strcmp(f, "null") != 0;
    free(f);
    return has;
}

static char *trim_dup(const char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

/* Reads the header (the first record) and maps the columns. Returns an exit code or -1. */
static int read_header(predictor *P, const char *keep_list) {
    fedc_diag d = {{0}};
    pred_rec rec;
    int n = 0, rc = FEDC_EXIT_USAGE;
    fedc_csv_reader *cr = NULL;
    char **keep_names = NULL;
    int n_keep_names = 0;
    const fedc_model *m = fedc_scorer_model(P->sc);
    fedc_err err = pred_reader_block(&P->rd, &rec, 1, &n, &d);
    if (err) {
        fprintf(stderr, "fedc predict: %s\n", d.msg);
        return err == FEDC_EIO || err == FEDC_ENOMEM ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
    }
    if (n == 0) {
        cli_error(CMD, "%s: file is empty (expected a header line)", P->data);
        return FEDC_EXIT_USAGE;
    }
    P->header_raw = malloc((size_t)rec.len + 1);
    if (!P->header_raw)
        goto nomem;
    memcpy(P->header_raw, P->rd.buf + rec.off, rec.len);
    P->header_raw[rec.len] = '\0';
    fedc_csv_limits lim = {FEDC_CSV_MAX_COLUMNS, FEDC_CSV_MAX_FIELD + 8,
                           (size_t)FEDC_CSV_MAX_COLUMNS * (FEDC_CSV_MAX_FIELD + 8)};
    fedc_csv_record hr;
    if (fedc_csv_open_text(&cr, P->header_raw, rec.len, P->data, &lim, &d) ||
        fedc_csv_set_delimiter(cr, P->delim) || fedc_csv_next(cr, &hr, &d)) {
        fprintf(stderr, "fedc predict: %s\n", d.msg);
        goto out;
    }
    if (hr.blank) {
        cli_error(CMD, "%s:1: header line is blank (expected comma-separated column names)",
                  P->data);
        goto out;
    }
    P->n_cols = hr.n_fields;
    P->names = calloc((size_t)P->n_cols, sizeof *P->names);
    P->role = malloc(sizeof(int) * (size_t)P->n_cols);
    P->keep_of = malloc(sizeof(int) * (size_t)P->n_cols);
    if (!P->names || !P->role || !P->keep_of)
        goto nomem;
    for (int c = 0; c < P->n_cols; c++) {
        char *raw = malloc(hr.fields[c].n + 1);
        if (!raw)
            goto nomem;
        memcpy(raw, hr.fields[c].s, hr.fields[c].n);
        raw[hr.fields[c].n] = '\0';
        P->names[c] = trim_dup(raw);
        free(raw);
        if (!P->names[c])
            goto nomem;
        P->role[c] = -1;
        P->keep_of[c] = -1;
    }
    /* A model trained with a loader encoding: its source columns (predict_enc.c). */
    if (P->enc_json &&
        pred_enc_setup(&P->enc, P->role, P->names, P->n_cols, m, P->enc_json, P->data))
        goto out;
    /* The model's features by name; a model without names takes the columns in order. */
    for (int j = 0; j < P->nf && !P->enc_json; j++) {
        int found = -1, twice = 0;
        if (!m->feature_names) {
            found = j < P->n_cols ? j : -1;
        } else {
            for (int c = 0; c < P->n_cols; c++) {
                if (strcmp(P->names[c], m->feature_names[j]) == 0) {
                    twice |= found >= 0;
                    found = c;
                }
            }
        }
        if (twice) {
            cli_error(CMD,
                      "%s:1: column '%s' appears twice in the header: which one the model "
                      "reads is ambiguous",
                      P->data, m->feature_names[j]);
            goto out;
        }
        if (found < 0) {
            if (has_features_spec(m))
                cli_error(CMD,
                          "%s:1: feature column '%s' used by the model is missing; the model "
                          "records a feature spec (computed from raw transactions by fedc "
                          "features): give the raw transactions, with its time column, or the "
                          "output of fedc features",
                          P->data, m->feature_names[j]);
            else if (m->feature_names)
                cli_error(CMD, "%s:1: feature column '%s' used by the model is missing", P->data,
                          m->feature_names[j]);
            else
                cli_error(CMD, "%s: has %d columns, the model (without feature names) needs %d",
                          P->data, P->n_cols, P->nf);
            goto out;
        }
        P->role[found] = j;
    }
    /* Kept columns. */
    if (keep_list && *keep_list) {
        if (cli_str_list(CMD, "--keep", keep_list, &keep_names, &n_keep_names))
            goto out;
        P->keep_col = malloc(sizeof(int) * (size_t)(n_keep_names ? n_keep_names : 1));
        if (!P->keep_col)
            goto nomem;
        for (int k = 0; k < n_keep_names; k++) {
            int found = -1;
            for (int c = 0; c < P->n_cols && found < 0; c++)
                if (strcmp(P->names[c], keep_names[k]) == 0)
                    found = c;
            if (found < 0) {
                cli_error(CMD, "--keep: %s:1: no column '%s' in the header", P->data,
                          keep_names[k]);
                goto out;
            }
            if (P->keep_of[found] >= 0) {
                cli_error(CMD, "--keep: column '%s' is listed twice", keep_names[k]);
                goto out;
            }
            P->keep_of[found] = k;
            P->keep_col[k] = found;
        }
        P->n_keep = n_keep_names;
    }
    P->lay = (pred_layout){
        P->n_cols, P->nf, P->n_keep, P->role, P->keep_of, P->delim, P->enc_json ? &P->enc : NULL};
    /* The kept columns' header text, as in the file: split the header like a data row in which
     * no column is a feature. */
    P->header_keep = malloc(sizeof(uint32_t) * 2 * (size_t)(P->n_keep ? P->n_keep : 1));
    int *no_role = malloc(sizeof(int) * (size_t)P->n_cols);
    if (!P->header_keep || !no_role) {
        free(no_role);
        goto nomem;
    }
    for (int c = 0; c < P->n_cols; c++)
        no_role[c] = -1;
    pred_layout hl = {P->n_cols, 0, P->n_keep, no_role, P->keep_of, P->delim, NULL};
    pred_status hs;
    int bad = pred_parse_row(NULL, P->header_keep, &hs, P->header_raw, rec.len, &hl);
    free(no_role);
    if (bad) {
        char msg[256];
        pred_status_message(msg, sizeof msg, &hs, P->header_raw, &P->lay, P->names);
        cli_error(CMD, "%s:1:%d: %s", P->data, hs.col, msg);
        goto out;
    }
    rc = -1;
    goto out;
nomem:
    cli_error(CMD, "out of memory");
    rc = FEDC_EXIT_FAIL;
out:
    cli_free_list(keep_names);
    fedc_csv_close(&cr);
    return rc;
}

static int alloc_blocks(predictor *P) {
    size_t B = PRED_BLOCK_ROWS;
    P->recs = malloc(sizeof *P->recs * B);
    P->x = malloc(sizeof(float) * B * (size_t)P->nf);
    P->score = malloc(sizeof(float) * B * (size_t)P->ow);
    P->st = malloc(sizeof *P->st * B);
    P->keep = malloc(sizeof(uint32_t) * 2 * B * (size_t)(P->n_keep ? P->n_keep : 1));
#ifdef _OPENMP
    P->n_threads = omp_get_max_threads();
#else
    P->n_threads = 1;
#endif
    P->work = calloc((size_t)P->n_threads, sizeof *P->work);
    P->tbuf = calloc((size_t)P->n_threads, sizeof *P->tbuf);
    P->tcap = calloc((size_t)P->n_threads, sizeof *P->tcap);
    P->tlen = calloc((size_t)P->n_threads, sizeof *P->tlen);
    if (!P->recs || !P->x || !P->score || !P->st || !P->keep || !P->work || !P->tbuf || !P->tcap ||
        !P->tlen)
        return -1;
    for (int t = 0; t < P->n_threads; t++)
        if (!(P->work[t] = fedc_scorer_workspace_new(P->sc)))
            return -1;
    return 0;
}

/* Formats rows [lo, hi) of the block (good ones only) into thread t's buffer. Returns -1 when
 * out of memory. */
static int format_rows(predictor *P, int t, int lo, int hi) {
    size_t need = 0;
    const size_t per_row = (size_t)P->ow * (CLI_FLOAT_CHARS + 1) + (size_t)P->n_keep + 8;
    for (int i = lo; i < hi; i++)
        need += P->recs[i].len + per_row;
    if (need > P->tcap[t]) {
        char *nb = realloc(P->tbuf[t], need);
        if (!nb)
            return -1;
        P->tbuf[t] = nb;
        P->tcap[t] = need;
    }
    char *o = P->tbuf[t];
    for (int i = lo; i < hi; i++) {
        if (P->st[i].bad)
            continue;
        const char *rec = P->rd.buf + P->recs[i].off;
        const uint32_t *kp = P->keep + (size_t)i * 2 * (size_t)P->n_keep;
        for (int k = 0; k < P->n_keep; k++) {
            size_t n = kp[2 * k + 1] - kp[2 * k];
            memcpy(o, rec + kp[2 * k], n);
            o += n;
            *o++ = ',';
        }
        const float *s = P->score + (size_t)i * P->ow;
        for (int j = 0; j < P->ow; j++) {
            if (j)
                *o++ = ',';
            o += cli_format_float(o, s[j]);
        }
        if (P->task == FEDC_TASK_BINARY) {
            *o++ = ',';
            *o++ = s[0] >= P->thr ? '1' : '0';
        } else if (P->task == FEDC_TASK_MULTICLASS) {
            int best = 0;
            for (int j = 1; j < P->ow; j++)
                best = s[j] > s[best] ? j : best;
            char num[16];
            int nn = snprintf(num, sizeof num, ",%d", best);
            memcpy(o, num, (size_t)nn);
            o += nn;
        }
        *o++ = '\n';
    }
    P->tlen[t] = (size_t)(o - P->tbuf[t]);
    return 0;
}

static void write_reject(FILE *f, const predictor *P, long line, int col, const char *why,
                         const char *rec, size_t len) {
    fprintf(f, "%ld,%d,", line, col);
    pred_write_quoted(f, why, strlen(why));
    putc(',', f);
    pred_write_quoted(f, rec, len);
    putc('\n', f);
    (void)P;
}

/* Blank lines held back turn out to be inside the file: an error, or rejects. Returns 0 or an
 * exit code. */
static int flush_blanks(predictor *P, FILE *rej, int mode) {
    if (!P->blank_count)
        return 0;
    if (!P->skip_bad) {
        pred_status st = {.bad = PRED_BLANK, .col = 1};
        char msg[256];
        pred_status_message(msg, sizeof msg, &st, "", &P->lay, P->names);
        cli_error(CMD, "%s:%ld:1: %s", P->data, P->blank_first, msg);
        return FEDC_EXIT_USAGE;
    }
    if (mode == MODE_WRITE) {
        for (long k = 0; k < P->blank_count; k++)
            write_reject(rej, P, P->blank_first + k, 1, "empty line", "", 0);
        P->rejected += P->blank_count;
    }
    P->blank_count = 0;
    return 0;
}

static uint32_t float_bits(float v) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

/* One pass over the file. Returns 0 or an exit code. */
static int run_pass(predictor *P, int mode, FILE *out, FILE *rej) {
    fedc_diag d = {{0}};
    int oom = 0;
    for (;;) {
        int n = 0;
        fedc_err err = pred_reader_block(&P->rd, P->recs, PRED_BLOCK_ROWS, &n, &d);
        if (err) {
            fprintf(stderr, "fedc predict: %s\n", d.msg);
            return err == FEDC_ERANGE ? FEDC_EXIT_USAGE : FEDC_EXIT_FAIL;
        }
        if (n == 0)
            break;
#pragma omp parallel
        {
#ifdef _OPENMP
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
            int t = 0, nt = 1;
#endif
            int lo = (int)((long long)n * t / nt), hi = (int)((long long)n * (t + 1) / nt);
            for (int i = lo; i < hi; i++) {
                float *xr = P->x + (size_t)i * P->nf;
                if (pred_parse_row(xr, P->keep + (size_t)i * 2 * (size_t)P->n_keep, &P->st[i],
                                   P->rd.buf + P->recs[i].off, P->recs[i].len, &P->lay))
                    memset(xr, 0, sizeof(float) * (size_t)P->nf);
            }
            if (hi > lo && fedc_score_batch(P->score + (size_t)lo * P->ow, P->sc,
                                            P->x + (size_t)lo * P->nf, hi - lo, P->work[t])) {
#pragma omp atomic write
                oom = 1; /* cannot happen with valid arguments */
            }
            if (mode == MODE_WRITE && format_rows(P, t, lo, hi)) {
#pragma omp atomic write
                oom = 1;
            }
#pragma omp barrier
#pragma omp single
            P->n_threads = nt;
        }
        if (oom) {
            cli_error(CMD, "out of memory");
            return FEDC_EXIT_FAIL;
        }
        /* In file order: bad rows, blank lines, histograms. */
        for (int i = 0; i < n; i++) {
            const pred_status *st = &P->st[i];
            if (st->bad == PRED_BLANK) {
                if (!P->blank_count)
                    P->blank_first = P->recs[i].line;
                P->blank_count++;
                continue;
            }
            int rc = flush_blanks(P, rej, mode);
            if (rc)
                return rc;
            if (st->bad) {
                char msg[320];
                const char *rec = P->rd.buf + P->recs[i].off;
                pred_status_message(msg, sizeof msg, st, rec, &P->lay, P->names);
                if (!P->skip_bad) {
                    cli_error(CMD, "%s:%ld:%d: %s", P->data, P->recs[i].line, st->col, msg);
                    return FEDC_EXIT_USAGE;
                }
                if (mode == MODE_WRITE) {
                    write_reject(rej, P, P->recs[i].line, st->col, msg, rec, P->recs[i].len);
                    P->rejected++;
                }
                continue;
            }
            P->good++;
            if (mode == MODE_HIST_HI) {
                float s = P->score[i];
                if (s >= 0.0f) /* NaN scores are never flagged */
                    P->hist[float_bits(s) >> 16]++;
            } else if (mode == MODE_HIST_LO) {
                uint32_t b = float_bits(P->score[i]);
                if (P->score[i] >= 0.0f && (b >> 16) == P->hist_bin)
                    P->hist[b & 0xFFFFu]++;
            }
        }
        if (mode == MODE_WRITE) {
            for (int t = 0; t < P->n_threads; t++)
                if (P->tlen[t] && fwrite(P->tbuf[t], 1, P->tlen[t], out) != P->tlen[t]) {
                    cli_error(CMD, "cannot write the output: write failed");
                    return FEDC_EXIT_FAIL;
                }
        }
    }
    P->blank_count = 0; /* trailing blank lines are ignored */
    return 0;
}

/* The threshold that flags at most F of the rows (--alert-budget): passes 1 and 2. */
static int budget_threshold(predictor *P, double budget) {
    int rc;
    P->hist = calloc(65536, sizeof *P->hist);
    if (!P->hist) {
        cli_error(CMD, "out of memory");
        return FEDC_EXIT_FAIL;
    }
    if ((rc = run_pass(P, MODE_HIST_HI, NULL, NULL)))
        return rc;
    long long n = P->good, k = (long long)floor(budget * (double)n + 1e-9);
    fedc_diag d = {{0}};
    if (k < 1) {
        P->thr = nextafterf(1.0f, 2.0f); /* nothing flagged */
    } else {
        long long above = 0;
        int bin = 65535;
        while (bin > 0 && above + P->hist[bin] < k)
            above += P->hist[bin--];
        P->hist_bin = (uint32_t)bin;
        memset(P->hist, 0, 65536 * sizeof *P->hist);
        if (pred_reader_rewind(&P->rd, &d)) {
            cli_error(CMD, "%s", d.msg);
            return FEDC_EXIT_USAGE;
        }
        pred_rec hdr;
        int one = 0;
        if (pred_reader_block(&P->rd, &hdr, 1, &one, &d)) {
            cli_error(CMD, "%s", d.msg);
            return FEDC_EXIT_FAIL;
        }
        P->good = 0;
        if ((rc = run_pass(P, MODE_HIST_LO, NULL, NULL)))
            return rc;
        /* The k-th highest score v, then at most k flagged: when v's ties pass k, only the
         * scores above v are (score >= the float just above v). */
        int lo = 65535;
        long long cum = above;
        while (lo > 0 && cum + P->hist[lo] < k)
            cum += P->hist[lo--];
        uint32_t bits = ((uint32_t)bin << 16) | (uint32_t)lo;
        float v;
        memcpy(&v, &bits, sizeof v);
        P->thr = cum + P->hist[lo] > k ? nextafterf(v, 2.0f) : v;
    }
    fprintf(stderr,
            "fedc predict: --alert-budget %g: threshold %.9g flags at most %lld of %lld rows\n",
            budget, (double)P->thr, k, n);
    if (pred_reader_rewind(&P->rd, &d)) {
        cli_error(CMD, "%s", d.msg);
        return FEDC_EXIT_USAGE;
    }
    pred_rec hdr;
    int one = 0;
    if (pred_reader_block(&P->rd, &hdr, 1, &one, &d)) {
        cli_error(CMD, "%s", d.msg);
        return FEDC_EXIT_FAIL;
    }
    P->good = 0;
    return 0;
}

static void write_header(FILE *f, const predictor *P) {
    for (int k = 0; k < P->n_keep; k++) {
        fwrite(P->header_raw + P->header_keep[2 * k], 1,
               P->header_keep[2 * k + 1] - P->header_keep[2 * k], f);
        putc(',', f);
    }
    if (P->task == FEDC_TASK_MULTICLASS) {
        for (int j = 0; j < P->ow; j++)
            fprintf(f, "%sp_%d", j ? "," : "", j);
        fputs(",decision\n", f);
    } else if (P->task == FEDC_TASK_BINARY) {
        fputs("score,decision\n", f);
    } else {
        fputs("score\n", f);
    }
}

static void predictor_release(predictor *P) {
    fedc_scorer_close(&P->sc);
    if (P->names)
        for (int c = 0; c < P->n_cols; c++)
            free(P->names[c]);
    free(P->names);
    free(P->role);
    free(P->keep_of);
    free(P->keep_col);
    free(P->header_raw);
    free(P->header_keep);
    if (P->rd.buf)
        pred_reader_close(&P->rd);
    free(P->recs);
    free(P->x);
    free(P->score);
    free(P->st);
    free(P->keep);
    for (int t = 0; P->work && t < P->n_threads; t++)
        free(P->work[t]);
    for (int t = 0; P->tbuf && t < P->n_threads; t++)
        free(P->tbuf[t]);
    free(P->work);
    free(P->tbuf);
    free(P->tcap);
    free(P->tlen);
    free(P->hist);
    free(P->enc_json);
    pred_enc_release(&P->enc);
}

int cmd_predict(int argc, char **argv) {
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_PREDICT, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
    predictor P = {0};
    char *raw_tmp = NULL;
    pred_out out = {0}, rej = {0};
    fedc_diag d = {{0}};
    int rc = FEDC_EXIT_USAGE;
    const char *model_path = op.v[FEDC_O_MODEL_FILE].text, *out_path = op.v[FEDC_O_OUT].text;
    const char *rej_path = op.v[FEDC_O_REJECTS].text;
    int have_thr = fedc_opt_has(&op, FEDC_O_THRESHOLD);
    int have_budget = fedc_opt_has(&op, FEDC_O_ALERT_BUDGET);
    P.data = op.v[FEDC_O_DATA].text;
    P.skip_bad = (int)op.v[FEDC_O_SKIP_BAD].i;
    if (!model_path || !P.data || !out_path) {
        cli_error(CMD, "%s is required (see fedc predict --help)",
                  !model_path ? "--model"
                  : !P.data   ? "--data"
                              : "--out");
        goto out;
    }
    if (have_thr && have_budget) {
        cli_error(CMD, "--threshold and --alert-budget both set the threshold: give one");
        goto out;
    }
    if (P.skip_bad != (rej_path != NULL)) {
        cli_error(CMD, P.skip_bad ? "--skip-bad needs --rejects FILE (bad rows are never dropped "
                                    "unrecorded)"
                                  : "--rejects is only written with --skip-bad");
        goto out;
    }
    if (fedc_scorer_open(&P.sc, model_path, &d)) {
        fprintf(stderr, "fedc predict: %s\n", d.msg);
        goto out;
    }
    const fedc_model *m = fedc_scorer_model(P.sc);
    P.nf = fedc_scorer_n_inputs(P.sc);
    P.ow = fedc_scorer_n_outputs(P.sc);
    P.task = m->arch.task;
    if ((have_thr || have_budget) && P.task != FEDC_TASK_BINARY) {
        cli_error(CMD, "%s applies to binary models; %s is a %s model",
                  have_thr ? "--threshold" : "--alert-budget", model_path, fedc_task_name(P.task));
        goto out;
    }
    if (P.task == FEDC_TASK_BINARY) {
        double ct = -1.0; /* the model card's threshold (fedc/card.h), -1 when none */
        if (fedc_card_threshold(m, &ct))
            ct = -1.0;
        if (have_thr) {
            P.thr = (float)op.v[FEDC_O_THRESHOLD].r;
        } else if (!have_budget && ct >= 0.0) {
            P.thr = (float)ct;
        } else if (!have_budget) {
            P.thr = 0.5f;
            fprintf(stderr,
                    "fedc predict: note: %s stores no decision threshold (no model card): "
                    "deciding at 0.5 (set one with --threshold or --alert-budget)\n",
                    model_path);
        }
    }
    /* The model's loader encoding (its data recipe) and the separator. */
    P.delim = ',';
    if (pred_load_encoding(&P.delim, &P.enc_json, m, &op))
        goto out;
    /* Raw transactions for a model with a feature spec: its features first. */
    if ((rc = pred_raw_features(m, P.data, P.delim, out_path, &raw_tmp)) != 0)
        goto out;
    rc = FEDC_EXIT_USAGE;
    if (raw_tmp)
        P.data = raw_tmp; /* in the input's separator, as fedc features writes */
    /* A record may be as long as the loader allows for this many columns. */
    if (pred_reader_open(&P.rd, P.data, (size_t)FEDC_CSV_MAX_COLUMNS * (FEDC_CSV_MAX_FIELD + 8),
                         &d)) {
        fprintf(stderr, "fedc predict: %s\n", d.msg);
        goto out;
    }
    if ((rc = read_header(&P, op.v[FEDC_O_KEEP].text)) >= 0)
        goto out;
    P.rd.max_record = (size_t)P.n_cols * (FEDC_CSV_MAX_FIELD + 8);
    cli_setup_threads(fedc_opt_has(&op, FEDC_O_THREADS) ? (int)op.v[FEDC_O_THREADS].i : 0);
    if (alloc_blocks(&P)) {
        cli_error(CMD, "out of memory");
        rc = FEDC_EXIT_FAIL;
        goto out;
    }
    if (have_budget && (rc = budget_threshold(&P, op.v[FEDC_O_ALERT_BUDGET].r)))
        goto out;
    rc = FEDC_EXIT_FAIL;
    if (pred_out_open(&out, out_path, &d) || (rej_path && pred_out_open(&rej, rej_path, &d))) {
        fprintf(stderr, "fedc predict: %s\n", d.msg);
        goto out;
    }
    write_header(out.f, &P);
    if (rej.f)
        fputs("line,column,reason,record\n", rej.f);
    if ((rc = run_pass(&P, MODE_WRITE, out.f, rej.f)))
        goto out;
    rc = FEDC_EXIT_FAIL;
    if (pred_out_commit(&out, &d) || (rej.f && pred_out_commit(&rej, &d))) {
        fprintf(stderr, "fedc predict: %s\n", d.msg);
        goto out;
    }
    if (P.skip_bad)
        fprintf(stderr, "fedc predict: %lld rows scored into %s, %lld rejected into %s\n", P.good,
                out_path, P.rejected, rej_path);
    else
        fprintf(stderr, "fedc predict: %lld rows scored into %s\n", P.good, out_path);
    rc = FEDC_EXIT_OK;
out:
    pred_out_abort(&out);
    pred_out_abort(&rej);
    predictor_release(&P);
    if (raw_tmp)
        unlink(raw_tmp);
    free(raw_tmp);
    return rc;
}
