/* fedc predict and the scoring API (fedc/score.h), driven as a user would.
 *
 *  - scores equal fedc_model_predict's (the training kernels, a code path of their own) on the
 *    rows of the same file as fedc_csv_load reads them, for binary, multiclass and regression
 *    models, with columns in another order than the model's, blanks around header names, a
 *    label and extra columns, quoted numbers and CRLF line ends;
 *  - --keep copies fields byte for byte (quoted, with commas, "" and line breaks inside);
 *  - the scoring API from 4 threads at once (pthreads, a workspace each) gives, row by row and
 *    in batches, exactly the floats fedc predict wrote (9 digits read back to the same float);
 *  - bad rows: exit 2 with file:line:column and no output file; --skip-bad writes each to the
 *    rejects file with its reason and counts them; blank lines only at the end are ignored;
 *  - the threshold: --threshold, the model card's (meta "card"), 0.5 with a note, and
 *    --alert-budget against a sort of the written scores;
 *  - memory: on a generated file of FEDC_PREDICT_RSS_MB MiB (default 1024) in $TMPDIR, the peak
 *    RSS of the fedc predict process (wait4) stays below an eighth of the file's size (and 48
 *    MiB for small sizes) and every row is scored; the file is removed afterwards. */
/* wait4 (the child's own peak RSS) is a BSD call. */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "fedc/card.h"
#include "fedc/data.h"
#include "fedc/recipe.h"
#include "fedc/modelfile.h"
#include "fedc/score.h"
#include "proc.h"

#define RUN_TIMEOUT 100
#define NF 6

static const char *g_fedc;
static char *g_dir;

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}
static double rnd_unit(void) {
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static char *path_of(const char *name) {
    char *p = proc_path(g_dir, name);
    assert_non_null(p);
    return p;
}

/* A random MLP over features f0..f{NF-1} with non-trivial standardisation, saved to name. */
static fedc_model *make_model(fedc_task task, int classes, const char *name, const char *meta) {
    fedc_arch a;
    fedc_model *m = NULL;
    fedc_diag d = {{0}};
    const int hidden[] = {16, 8};
    assert_int_equal(fedc_arch_make(&a, NF, hidden, 2, FEDC_ACT_TANH, task, classes, &d), 0);
    assert_int_equal(fedc_model_new(&m, &a), 0);
    fedc_model_init(m, 7 + (uint64_t)task);
    for (int l = 0; l < a.n_layers; l++)
        for (int j = 0; j < a.sizes[l + 1]; j++)
            m->b[l][j] = (float)(rnd_unit() - 0.5);
    char *names[NF], buf[NF][8];
    float mean[NF], std[NF];
    for (int j = 0; j < NF; j++) {
        snprintf(buf[j], sizeof buf[j], "f%d", j);
        names[j] = buf[j];
        mean[j] = (float)(rnd_unit() * 4 - 2);
        std[j] = (float)(0.5 + rnd_unit() * 2);
    }
    assert_int_equal(fedc_model_set_schema(m, names, "label", mean, std), 0);
    assert_int_equal(fedc_model_set_meta(m, meta), 0);
    char *p = path_of(name);
    assert_int_equal(fedc_model_save(m, p, &d), 0);
    free(p);
    return m;
}

/* A data file: columns id, f5, " f1 ", label, note, f0, f2, f3, f4 (not the model's order,
 * blanks around one name), numbers in several spellings, some quoted, CRLF on some lines. The
 * raw text of id and note is kept in raw_id/raw_note (rows of up to 64 bytes). */
static void write_data(const char *file, int rows, char (*raw_id)[64], char (*raw_note)[64]) {
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    fputs("id,f5, f1 ,label,note,f0,f2,f3,f4\n", f);
    const int order[] = {5, 1, -1, -2, 0, 2, 3, 4}; /* -1 label, -2 note */
    for (int i = 0; i < rows; i++) {
        switch (i % 4) {
        case 0:
            snprintf(raw_id[i], 64, "%d", 1000 + i);
            break;
        case 1:
            snprintf(raw_id[i], 64, "\"C-%d, \"\"x\"\"\"", i);
            break;
        case 2:
            snprintf(raw_id[i], 64, "\"line\nbreak %d\"", i);
            break;
        default:
            snprintf(raw_id[i], 64, " padded-%d ", i);
            break;
        }
        snprintf(raw_note[i], 64, i % 3 ? "n%d" : "\"q,%d\"", i);
        fputs(raw_id[i], f);
        for (int k = 0; k < 8; k++) {
            fputc(',', f);
            if (order[k] == -1) {
                fprintf(f, "%d", (int)(rnd() % 3));
            } else if (order[k] == -2) {
                fputs(raw_note[i], f);
            } else {
                double v = (rnd_unit() - 0.5) * 10;
                switch (rnd() % 6) {
                case 0:
                    fprintf(f, "%.6f", v);
                    break;
                case 1:
                    fprintf(f, "%.17g", v);
                    break;
                case 2:
                    fprintf(f, "\"%.3f\"", v);
                    break;
                case 3:
                    fprintf(f, "%.4e", v);
                    break;
                case 4:
                    fprintf(f, " %.2f ", v);
                    break;
                default:
                    fprintf(f, "%d", (int)v);
                    break;
                }
            }
        }
        fputs(i % 5 == 0 ? "\r\n" : "\n", f);
    }
    fclose(f);
}

static void run(proc_result *r, const char *const *argv) {
    assert_int_equal(proc_run(r, argv, NULL, RUN_TIMEOUT), 0);
    assert_false(r->timed_out);
}

/* Walks the output: each row starts with the expected kept text (may be NULL), then n_scores
 * numbers, then (when want_decision) a decision. Fills scores (rows x n_scores) and decisions. */
static void read_output(const char *text, int rows, int n_scores, int want_decision,
                        char (*raw_id)[64], char (*raw_note)[64], float *scores, int *decisions) {
    const char *p = strchr(text, '\n');
    assert_non_null(p);
    p++;
    for (int i = 0; i < rows; i++) {
        if (raw_id) {
            size_t a = strlen(raw_id[i]), b = strlen(raw_note[i]);
            if (strncmp(p, raw_id[i], a) != 0 || p[a] != ',' ||
                strncmp(p + a + 1, raw_note[i], b) || p[a + 1 + b] != ',')
                fail_msg("row %d: kept fields differ: expected '%s,%s,' got '%.40s'", i, raw_id[i],
                         raw_note[i], p);
            p += a + b + 2;
        }
        for (int k = 0; k < n_scores; k++) {
            char *end;
            scores[(size_t)i * n_scores + k] = strtof(p, &end);
            assert_true(end > p);
            p = end;
            if (k + 1 < n_scores || want_decision) {
                assert_int_equal(*p, ',');
                p++;
            }
        }
        if (want_decision) {
            decisions[i] = (int)strtol(p, (char **)&p, 10);
        }
        if (*p != '\n')
            fail_msg("row %d: expected the end of the line, got '%.20s'", i, p);
        p++;
    }
    assert_int_equal(*p, '\0');
}

/* fedc_model_predict on the file as fedc_csv_load reads it (columns mapped by name). */
static float *reference_scores(const fedc_model *m, const char *file, int rows) {
    fedc_dataset *ds = NULL;
    fedc_diag d = {{0}};
    const char *drop[] = {"id", "note"};
    if (fedc_csv_load(&ds, file, "label", drop, 2, &d))
        fail_msg("fedc_csv_load: %s", d.msg);
    assert_int_equal(ds->n_rows, rows);
    float *x = malloc(sizeof(float) * (size_t)rows * NF);
    float *out = malloc(sizeof(float) * (size_t)rows * (size_t)fedc_model_out_width(m));
    assert_non_null(x);
    assert_non_null(out);
    for (int j = 0; j < NF; j++) {
        int c = -1;
        for (int k = 0; k < ds->n_features; k++)
            if (strcmp(ds->feature_names[k], m->feature_names[j]) == 0)
                c = k;
        assert_true(c >= 0);
        for (int i = 0; i < rows; i++)
            x[(size_t)i * NF + j] = ds->x[(size_t)i * ds->n_features + c];
    }
    assert_int_equal(fedc_model_predict(out, m, x, rows), 0);
    free(x);
    fedc_dataset_destroy(&ds);
    return out;
}

static void check_task(fedc_task task, int classes, const char *model_name) {
    const int rows = 3000;
    fedc_model *m = make_model(task, classes, model_name, NULL);
    char(*raw_id)[64] = malloc(64 * (size_t)rows), (*raw_note)[64] = malloc(64 * (size_t)rows);
    char *data = path_of("data.csv"), *out = path_of("scores.csv"), *mp = path_of(model_name);
    write_data(data, rows, raw_id, raw_note);
    const char *argv[] = {g_fedc,  "predict", "--model", mp,        "--data", data,
                          "--out", out,       "--keep",  "id,note", NULL};
    proc_result r;
    run(&r, argv);
    if (r.status != 0)
        fail_msg("fedc predict exited %d: %s", r.status, r.err);
    proc_result_release(&r);
    size_t len;
    char *text = proc_read_file(out, &len);
    assert_non_null(text);
    int ow = fedc_model_out_width(m), decide = task != FEDC_TASK_REGRESSION;
    float *got = malloc(sizeof(float) * (size_t)rows * (size_t)ow);
    int *dec = malloc(sizeof(int) * (size_t)rows);
    read_output(text, rows, ow, decide, raw_id, raw_note, got, dec);
    const char *want_header = task == FEDC_TASK_MULTICLASS ? "id,note,p_0,p_1,p_2,decision\n"
                              : decide                     ? "id,note,score,decision\n"
                                                           : "id,note,score\n";
    assert_memory_equal(text, want_header, strlen(want_header));
    float *ref = reference_scores(m, data, rows);
    for (int i = 0; i < rows; i++) {
        int best = 0;
        for (int k = 0; k < ow; k++) {
            float a = got[(size_t)i * ow + k], b = ref[(size_t)i * ow + k];
            if (fabsf(a - b) > 1e-5f * (1.0f + fabsf(b)))
                fail_msg("%s row %d output %d: fedc predict %.9g, fedc_model_predict %.9g",
                         model_name, i, k, (double)a, (double)b);
            if (got[(size_t)i * ow + k] > got[(size_t)i * ow + best])
                best = k;
        }
        if (task == FEDC_TASK_BINARY)
            assert_int_equal(dec[i], got[i] >= 0.5f);
        else if (task == FEDC_TASK_MULTICLASS)
            assert_int_equal(dec[i], best);
    }
    free(ref);
    free(got);
    free(dec);
    free(text);
    free(raw_id);
    free(raw_note);
    free(data);
    free(out);
    free(mp);
    fedc_model_destroy(&m);
}

static void test_scores_equal_eval(void **state) {
    (void)state;
    check_task(FEDC_TASK_BINARY, 2, "bin.fedc");
    check_task(FEDC_TASK_MULTICLASS, 3, "multi.fedc");
    check_task(FEDC_TASK_REGRESSION, 1, "reg.fedc");
}

/* ---- The scoring API from 4 threads against fedc predict's output --------------------------- */

typedef struct api_job {
    const fedc_scorer *sc;
    const float *x;
    const float *want;
    int rows, first, mismatches;
} api_job;

static void *api_thread(void *arg) {
    api_job *j = arg;
    void *work = fedc_scorer_workspace_new(j->sc);
    float batch[1000];
    if (!work)
        return NULL;
    /* Each thread goes through every row, starting at its own offset, row by row ... */
    for (int k = 0; k < j->rows; k++) {
        int i = (j->first + k) % j->rows;
        float out;
        if (fedc_score_row(&out, j->sc, j->x + (size_t)i * NF, work) ||
            memcmp(&out, &j->want[i], sizeof out) != 0)
            j->mismatches++;
    }
    /* ... then in batches of odd sizes. */
    for (int i = 0; i < j->rows;) {
        int n = 1 + (j->first * 37 + i) % 999;
        if (n > j->rows - i)
            n = j->rows - i;
        if (fedc_score_batch(batch, j->sc, j->x + (size_t)i * NF, n, work) ||
            memcmp(batch, j->want + i, sizeof(float) * (size_t)n) != 0)
            j->mismatches++;
        i += n;
    }
    free(work);
    return NULL;
}

static void test_api_threads(void **state) {
    (void)state;
    const int rows = 4000;
    fedc_model *m = make_model(FEDC_TASK_BINARY, 2, "api.fedc", NULL);
    char *data = path_of("api.csv"), *out = path_of("api_scores.csv"), *mp = path_of("api.fedc");
    float *x = malloc(sizeof(float) * rows * NF), *want = malloc(sizeof(float) * rows);
    int *dec = malloc(sizeof(int) * rows);
    FILE *f = fopen(data, "wb");
    assert_non_null(f);
    fputs("f0,f1,f2,f3,f4,f5\n", f);
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < NF; j++) {
            /* Values written with 9 digits, so the file holds exactly these floats. */
            x[i * NF + j] = (float)((rnd_unit() - 0.5) * 8);
            fprintf(f, "%s%.9g", j ? "," : "", (double)x[i * NF + j]);
        }
        fputc('\n', f);
    }
    fclose(f);
    const char *argv[] = {g_fedc,  "predict", "--model",   mp,  "--data", data,
                          "--out", out,       "--threads", "2", NULL};
    proc_result r;
    run(&r, argv);
    if (r.status != 0)
        fail_msg("fedc predict exited %d: %s", r.status, r.err);
    proc_result_release(&r);
    char *text = proc_read_file(out, NULL);
    assert_non_null(text);
    read_output(text, rows, 1, 1, NULL, NULL, want, dec);
    fedc_scorer *sc = NULL;
    fedc_diag d = {{0}};
    if (fedc_scorer_open(&sc, mp, &d))
        fail_msg("fedc_scorer_open: %s", d.msg);
    assert_int_equal(fedc_scorer_n_inputs(sc), NF);
    assert_int_equal(fedc_scorer_n_outputs(sc), 1);
    pthread_t th[4];
    api_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (api_job){sc, x, want, rows, t * (rows / 4), 0};
        assert_int_equal(pthread_create(&th[t], NULL, api_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(jobs[t].mismatches, 0);
    }
    /* The negative control of the comparison: another model's scores do not match. */
    fedc_model *other = make_model(FEDC_TASK_BINARY, 2, "other.fedc", NULL);
    fedc_scorer *so = NULL;
    assert_int_equal(fedc_scorer_from_model(&so, other, &d), 0);
    api_job neg = {so, x, want, rows, 0, 0};
    api_thread(&neg);
    assert_true(neg.mismatches > rows / 2);
    /* Arguments the API refuses. */
    void *work = fedc_scorer_workspace_new(sc);
    float o;
    assert_int_equal(fedc_score_row(&o, sc, x, NULL), FEDC_EINVAL);
    assert_int_equal(fedc_score_batch(&o, sc, x, -1, work), FEDC_EINVAL);
    free(work);
    fedc_scorer_close(&so);
    fedc_scorer_close(&sc);
    assert_null(sc);
    fedc_model_destroy(&other);
    fedc_model_destroy(&m);
    free(text);
    free(x);
    free(want);
    free(dec);
    free(data);
    free(out);
    free(mp);
}

/* ---- Bad rows ---------------------------------------------------------------------------- */

static void test_bad_rows(void **state) {
    (void)state;
    fedc_model *m = make_model(FEDC_TASK_BINARY, 2, "bad.fedc", NULL);
    char *data = path_of("bad.csv"), *out = path_of("bad_scores.csv"), *mp = path_of("bad.fedc");
    char *rej = path_of("rejects.csv");
    /* line 1 header; 2 good; 3 text in f2 (column 4); 4 good; 5 ragged (5 fields); 6 blank;
     * 7 good; 8 quote inside an unquoted field (column 2); 9 good; then trailing blank lines. */
    const char *text = "f0,f1,f2,f3,f4,f5\n"
                       "1,2,3,4,5,6\n"
                       "1,2,abc,4,5,6\n"
                       "1,2,3,4,5,6\n"
                       "1,2,3,4,5\n"
                       "\n"
                       "1,2,3,4,5,6\n"
                       "1,2\"x,3,4,5,6\n"
                       "1,2,3,4,5,6\n"
                       "\n"
                       "  \n";
    assert_int_equal(proc_write_file(data, text), 0);
    const char *argv[] = {g_fedc, "predict", "--model", mp, "--data", data, "--out", out, NULL};
    proc_result r;
    run(&r, argv);
    assert_int_equal(r.status, 2);
    char want[4096];
    snprintf(want, sizeof want, "%s:3:3: column 'f2': expected a finite decimal number, got 'abc'",
             data);
    if (!strstr(r.err, want))
        fail_msg("expected '%s' in: %s", want, r.err);
    assert_false(proc_exists(out));
    proc_result_release(&r);

    const char *argv2[] = {g_fedc,  "predict", "--model",    mp,          "--data", data,
                           "--out", out,       "--skip-bad", "--rejects", rej,      NULL};
    run(&r, argv2);
    if (r.status != 0)
        fail_msg("--skip-bad: exit %d: %s", r.status, r.err);
    if (!strstr(r.err, "4 rows scored") || !strstr(r.err, "4 rejected"))
        fail_msg("expected the counts (4 scored, 4 rejected) in: %s", r.err);
    proc_result_release(&r);
    char *o = proc_read_file(out, NULL), *rj = proc_read_file(rej, NULL);
    assert_non_null(o);
    assert_non_null(rj);
    int lines = 0;
    for (char *c = o; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 5); /* header + 4 */
    const char *expect[] = {"3,3,\"column 'f2': expected a finite decimal number, got 'abc'\","
                            "\"1,2,abc,4,5,6\"\n",
                            "5,6,\"ragged row: expected 6 fields (as in the header), got 5\","
                            "\"1,2,3,4,5\"\n",
                            "6,1,\"empty line\",\"\"\n", "8,2,\"column 'f1': double quote inside"};
    assert_memory_equal(rj, "line,column,reason,record\n", 26);
    for (size_t k = 0; k < sizeof expect / sizeof expect[0]; k++)
        if (!strstr(rj, expect[k]))
            fail_msg("expected '%s' in the rejects file:\n%s", expect[k], rj);
    free(o);
    free(rj);

    /* An unterminated quote in the last row; --skip-bad without --rejects; a missing column. */
    assert_int_equal(proc_write_file(data, "f0,f1,f2,f3,f4,f5\n1,2,3,4,5,6\n1,\"2,3,4,5,6\n"), 0);
    run(&r, argv);
    assert_int_equal(r.status, 2);
    snprintf(want, sizeof want, "%s:3:2: column 'f1': unterminated quoted field", data);
    if (!strstr(r.err, want))
        fail_msg("expected '%s' in: %s", want, r.err);
    proc_result_release(&r);
    const char *argv3[] = {g_fedc, "predict", "--model", mp,           "--data",
                           data,   "--out",   out,       "--skip-bad", NULL};
    run(&r, argv3);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--skip-bad needs --rejects"));
    proc_result_release(&r);
    assert_int_equal(proc_write_file(data, "f0,f1,f2,f3,f5\n1,2,3,4,6\n"), 0);
    run(&r, argv);
    assert_int_equal(r.status, 2);
    snprintf(want, sizeof want, "%s:1: feature column 'f4' used by the model is missing", data);
    if (!strstr(r.err, want))
        fail_msg("expected '%s' in: %s", want, r.err);
    proc_result_release(&r);
    fedc_model_destroy(&m);
    free(data);
    free(out);
    free(mp);
    free(rej);
}

/* ---- Thresholds -------------------------------------------------------------------------- */

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void test_thresholds(void **state) {
    (void)state;
    const int rows = 2500;
    fedc_model *mc = make_model(FEDC_TASK_BINARY, 2, "card.fedc",
                                "{\"card\": {\"threshold\": 0.3, \"chosen\": \"test\"}}");
    fedc_model *mn = make_model(FEDC_TASK_BINARY, 2, "nocard.fedc", NULL);
    char(*raw_id)[64] = malloc(64 * (size_t)rows), (*raw_note)[64] = malloc(64 * (size_t)rows);
    char *data = path_of("thr.csv"), *out = path_of("thr_scores.csv");
    char *pc = path_of("card.fedc"), *pn = path_of("nocard.fedc");
    write_data(data, rows, raw_id, raw_note);
    float *s = malloc(sizeof(float) * rows), *sorted = malloc(sizeof(float) * rows);
    int *dec = malloc(sizeof(int) * rows);
    struct {
        const char *model, *flag, *value;
        float thr;
        int note;
    } cases[] = {{pc, NULL, NULL, 0.3f, 0},
                 {pn, NULL, NULL, 0.5f, 1},
                 {pc, "--threshold", "0.7", 0.7f, 0},
                 {pn, "--alert-budget", "0.01", -1.0f, 0},
                 {pn, "--alert-budget", "0.0001", -1.0f, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *argv[] = {g_fedc,        "predict",      "--model", cases[c].model, "--data",
                              data,          "--out",        out,       "--keep",       "id,note",
                              cases[c].flag, cases[c].value, NULL};
        proc_result r;
        run(&r, argv);
        if (r.status != 0)
            fail_msg("case %zu: exit %d: %s", c, r.status, r.err);
        assert_int_equal(strstr(r.err, "deciding at 0.5") != NULL, cases[c].note);
        proc_result_release(&r);
        char *text = proc_read_file(out, NULL);
        assert_non_null(text);
        read_output(text, rows, 1, 1, raw_id, raw_note, s, dec);
        free(text);
        if (cases[c].thr >= 0.0f) {
            for (int i = 0; i < rows; i++)
                assert_int_equal(dec[i], s[i] >= cases[c].thr);
            continue;
        }
        /* --alert-budget F: at most k = floor(F n) flagged, the highest scores, and no fewer
         * than fedc train's rule gives: the k-th highest unless its ties pass k. */
        double budget = strtod(cases[c].value, NULL);
        int k = (int)floor(budget * rows + 1e-9), flagged = 0;
        float lowest_flagged = 2.0f, highest_not = -1.0f;
        for (int i = 0; i < rows; i++) {
            flagged += dec[i];
            if (dec[i] && s[i] < lowest_flagged)
                lowest_flagged = s[i];
            if (!dec[i] && s[i] > highest_not)
                highest_not = s[i];
        }
        assert_true(flagged <= k);
        assert_true(highest_not < lowest_flagged || flagged == 0);
        memcpy(sorted, s, sizeof(float) * rows);
        qsort(sorted, rows, sizeof(float), cmp_desc);
        int expect = k;
        if (k > 0 && k < rows && sorted[k] == sorted[k - 1]) {
            expect = k - 1;
            while (expect > 0 && sorted[expect - 1] == sorted[k - 1])
                expect--;
        }
        assert_int_equal(flagged, expect);
    }
    free(s);
    free(sorted);
    free(dec);
    free(raw_id);
    free(raw_note);
    free(data);
    free(out);
    free(pc);
    free(pn);
    fedc_model_destroy(&mc);
    fedc_model_destroy(&mn);
}

/* ---- Flat memory on a large file ---------------------------------------------------------- */

static void test_flat_memory(void **state) {
    (void)state;
    const char *env = getenv("FEDC_PREDICT_RSS_MB");
    long long mb = env ? atoll(env) : 1024;
    assert_true(mb >= 16);
    const long long size = mb << 20;
    fedc_model *m = make_model(FEDC_TASK_BINARY, 2, "rss.fedc", NULL);
    char *mp = path_of("rss.fedc");
    const char *tmp = getenv("TMPDIR");
    char data[4096], out[4096];
    snprintf(data, sizeof data, "%s/fedc-predict-rss-%d.csv", tmp ? tmp : "/tmp", (int)getpid());
    snprintf(out, sizeof out, "%s/fedc-predict-rss-%d.out", tmp ? tmp : "/tmp", (int)getpid());
    /* 4096 distinct rows of about 300 bytes (the features and a text column that is not),
     * repeated until the file reaches the size. */
    size_t cap = 4096 * 400, len = 0;
    char *block = malloc(cap);
    assert_non_null(block);
    for (int i = 0; i < 4096; i++) {
        len += (size_t)snprintf(block + len, cap - len, "%d", i);
        for (int j = 0; j < NF; j++)
            len += (size_t)snprintf(block + len, cap - len, ",%.6f", (rnd_unit() - 0.5) * 6);
        block[len++] = ',';
        for (int k = 0; k < 240; k++)
            block[len++] = (char)('a' + (i + k) % 26);
        block[len++] = '\n';
    }
    int fd = open(data, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    const char *hdr = "id,f0,f1,f2,f3,f4,f5,text\n";
    assert_int_equal(write(fd, hdr, strlen(hdr)), (ssize_t)strlen(hdr));
    long long written = 0, rows = 0;
    while (written < size) {
        ssize_t k = write(fd, block, len);
        assert_int_equal(k, (ssize_t)len);
        written += k;
        rows += 4096;
    }
    close(fd);
    free(block);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl(g_fedc, g_fedc, "predict", "--model", mp, "--data", data, "--out", out, "--keep",
              "id", "--threshold", "0.5", (char *)NULL);
        _exit(127);
    }
    int status;
    struct rusage ru;
    assert_int_equal(wait4(pid, &status, 0, &ru), pid);
    long long peak = (long long)ru.ru_maxrss * 1024;
    struct stat st;
    int ok_out = stat(out, &st) == 0;
    long long out_rows = 0;
    if (ok_out) {
        FILE *f = fopen(out, "rb");
        char buf[1 << 16];
        size_t k;
        while (f && (k = fread(buf, 1, sizeof buf, f)) > 0)
            for (size_t i = 0; i < k; i++)
                out_rows += buf[i] == '\n';
        if (f)
            fclose(f);
    }
    unlink(data);
    unlink(out);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    print_message("flat memory: %lld MiB file, %lld rows, peak RSS %.1f MiB\n", mb, rows,
                  (double)peak / (1 << 20));
    assert_int_equal(out_rows, rows + 1);
    /* An eighth of the file, and never less than 48 MiB (the program's own size, its buffers
     * and the C library's; a small file would otherwise set a bar below them). */
    long long limit = size / 8 > (48ll << 20) ? size / 8 : 48ll << 20;
    if (peak > limit)
        fail_msg("peak RSS %lld bytes on a %lld-byte file (limit %lld): memory is not flat", peak,
                 size, limit);
    free(mp);
    fedc_model_destroy(&m);
}

/* A model trained with a loader encoding (--delimiter ';', --missing mean with indicator columns,
 * a categorical column hashed into 8 buckets): fedc predict encodes each row as the loader does
 * with the model's recipe (the training means for missing cells, the same hash), checked against
 * fedc_model_predict on the file as fedc_csv_load_enc reads it with that recipe; and a model
 * trained with --missing error refuses a missing cell naming it. */
static void test_encoded(void **state) {
    (void)state;
    char *train = path_of("enc_train.csv"), *score = path_of("enc_score.csv");
    char *model = path_of("enc.fedc"), *out = path_of("enc_scores.csv");
    char *model_err = path_of("enc_err.fedc");
    static const char *const cats[] = {"grocery", "travel", "online", "fuel", "a \"quoted\" one"};
    for (int f = 0; f < 2; f++) {
        FILE *o = fopen(f ? score : train, "w");
        assert_non_null(o);
        fprintf(o, "id;amount;mcc;age;label\n");
        int rows = f ? 400 : 2000;
        for (int i = 0; i < rows; i++) {
            double a = -50.0 * log(1.0 - rnd_unit());
            int c = (int)(rnd() % (f ? 6 : 5)); /* the scored file has an unseen category */
            int age = 18 + (int)(rnd() % 60);
            int y = (c == 2 && a > 60) || rnd_unit() < 0.05;
            double u = rnd_unit();
            fprintf(o, "%d;", i);
            if (u < 0.1)
                fprintf(o, "%s;", f ? (i % 2 ? "NA" : "null") : "");
            else
                fprintf(o, "%.2f;", a);
            if (c == 5)
                fprintf(o, "never seen;");
            else if (c == 4)
                fprintf(o, "\"a \"\"quoted\"\" one\";");
            else
                fprintf(o, "%s;", cats[c]);
            if (rnd_unit() < 0.05)
                fprintf(o, "NaN;%d\n", y);
            else
                fprintf(o, "%d;%d\n", age, y);
        }
        assert_int_equal(fclose(o), 0);
    }
    proc_result r;
    const char *tr[] = {g_fedc,
                        "train",
                        "--data",
                        train,
                        "--label",
                        "label",
                        "--drop",
                        "id",
                        "--delimiter",
                        ";",
                        "--missing",
                        "mean",
                        "--categorical",
                        "mcc",
                        "--hash-buckets",
                        "8",
                        "--epochs",
                        "3",
                        "--out",
                        model,
                        NULL};
    run(&r, tr);
    if (r.status != 0)
        fail_msg("fedc train: %s", r.err);
    proc_result_release(&r);
    const char *pr[] = {g_fedc,  "predict", "--model", model, "--data", score,
                        "--out", out,       "--keep",  "id",  NULL};
    run(&r, pr);
    if (r.status != 0)
        fail_msg("fedc predict: %s", r.err);
    proc_result_release(&r);

    /* the reference: the loader with the model's recipe */
    fedc_model *m = NULL;
    fedc_diag d = {{0}};
    assert_int_equal(fedc_model_load(&m, model, &d), FEDC_OK);
    char *ej = fedc_meta_get(m, "encoding");
    assert_non_null(ej);
    fedc_recipe_enc re;
    assert_int_equal(fedc_encoding_from_json(&re, ej, &d), FEDC_OK);
    assert_non_null(re.enc.impute);
    fedc_dataset *ds = NULL;
    const char *drop[] = {"id"};
    if (fedc_csv_load_enc(&ds, score, "label", drop, 1, &re.enc, &d))
        fail_msg("fedc_csv_load_enc: %s", d.msg);
    assert_int_equal(ds->n_features, m->arch.sizes[0]);
    assert_int_equal(ds->n_features, 1 + 1 + 8 + 1 + 1);
    for (int j = 0; j < ds->n_features; j++)
        assert_string_equal(ds->feature_names[j], m->feature_names[j]);
    float *want = malloc(sizeof(float) * (size_t)ds->n_rows);
    assert_non_null(want);
    assert_int_equal(fedc_model_predict(want, m, ds->x, ds->n_rows), 0);
    size_t len = 0;
    char *text = proc_read_file(out, &len);
    assert_non_null(text);
    const char *p = strchr(text, '\n') + 1;
    double worst = 0;
    for (int i = 0; i < ds->n_rows; i++) {
        char *end;
        long id = strtol(p, &end, 10);
        assert_int_equal(id, i);
        float got = strtof(end + 1, &end);
        double diff = fabs((double)got - (double)want[i]);
        worst = diff > worst ? diff : worst;
        p = strchr(end, '\n') + 1;
    }
    print_message("encoded model: %d rows, largest difference to the loader's %.3g\n", ds->n_rows,
                  worst);
    assert_true(worst <= 1e-5);
    free(text);
    free(want);
    fedc_dataset_destroy(&ds);
    fedc_recipe_enc_release(&re);
    free(ej);
    fedc_model_destroy(&m);

    /* --missing error (a categorical column keeps the encoding in use): trained on a file
     * without missing cells, the first missing cell of the scored file stops predict */
    char *clean = path_of("enc_clean.csv");
    FILE *o = fopen(clean, "w");
    assert_non_null(o);
    fprintf(o, "id;amount;mcc;age;label\n");
    for (int i = 0; i < 300; i++)
        fprintf(o, "%d;%.2f;%s;%d;%d\n", i, 100.0 * rnd_unit(), cats[i % 4], 20 + i % 50,
                i % 7 == 0);
    assert_int_equal(fclose(o), 0);
    const char *tr2[] = {g_fedc,          "train",  "--data",   clean,         "--label",
                         "label",         "--drop", "id",       "--delimiter", ";",
                         "--categorical", "mcc",    "--epochs", "1",           "--out",
                         model_err,       NULL};
    run(&r, tr2);
    if (r.status != 0)
        fail_msg("fedc train: %s", r.err);
    proc_result_release(&r);
    const char *pr2[] = {g_fedc, "predict", "--model", model_err, "--data",
                         score,  "--out",   out,       NULL};
    run(&r, pr2);
    assert_int_equal(r.status, 2);
    if (!strstr(r.err, "missing value"))
        print_message("stderr: %s\n", r.err);
    assert_non_null(strstr(r.err, "missing value"));
    assert_non_null(strstr(r.err, "enc_score.csv:"));
    proc_result_release(&r);
    free(clean);
    free(train);
    free(score);
    free(model);
    free(out);
    free(model_err);
}

/* Raw transactions (';'-separated) for a model trained with a feature spec: fedc predict on the raw
 * file computes the features itself, and its output is byte for byte that of fedc features with
 * the same spec followed by fedc predict; no temporary file is left beside the output. */
static void test_raw(void **state) {
    (void)state;
    char *dir = path_of("raw");
    assert_int_equal(mkdir(dir, 0755), 0);
    char *raw_train = proc_path(dir, "raw_train.csv"), *raw_score = proc_path(dir, "raw_score.csv");
    char *feat_train = proc_path(dir, "feat_train.csv"), *feat_score = proc_path(dir, "feat.csv");
    char *spec = proc_path(dir, "spec.json"), *model = proc_path(dir, "raw.fedc");
    char *s_raw = proc_path(dir, "s_raw.csv"), *s_feat = proc_path(dir, "s_feat.csv");
    long t = 1767225600; /* 2026-01-01 */
    for (int f = 0; f < 2; f++) {
        FILE *o = fopen(f ? raw_score : raw_train, "w");
        assert_non_null(o);
        fprintf(o, "TX_DATETIME;TX_ID;CUSTOMER_ID;TERMINAL_ID;TX_AMOUNT;TX_FRAUD\n");
        for (int i = 0; i < (f ? 800 : 3000); i++) {
            t += (long)(rnd() % 1500);
            time_t tt = (time_t)t;
            struct tm tm;
            gmtime_r(&tt, &tm);
            char ts[32];
            strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
            double a = -50.0 * log(1.0 - rnd_unit());
            fprintf(o, "%s;%d;C%d;T%d;%.2f;%d\n", ts, i, (int)(rnd() % 150), (int)(rnd() % 200), a,
                    a > 140 || rnd_unit() < 0.03);
        }
        assert_int_equal(fclose(o), 0);
    }
    proc_result r;
    const char *fe[] = {g_fedc,
                        "features",
                        "--data",
                        raw_train,
                        "--delimiter",
                        ";",
                        "--time",
                        "TX_DATETIME",
                        "--calendar",
                        "--window",
                        "CUSTOMER_ID:1,7:count,mean=TX_AMOUNT;TERMINAL_ID:7:count,rate=TX_FRAUD:"
                        "delay=7",
                        "--out",
                        feat_train,
                        "--spec-out",
                        spec,
                        NULL};
    run(&r, fe);
    if (r.status)
        fail_msg("fedc features: %s", r.err);
    proc_result_release(&r);
    const char *tr[] = {g_fedc,
                        "train",
                        "--data",
                        feat_train,
                        "--delimiter",
                        ";",
                        "--label",
                        "TX_FRAUD",
                        "--drop",
                        "TX_DATETIME,TX_ID,CUSTOMER_ID,TERMINAL_ID",
                        "--features-spec",
                        spec,
                        "--epochs",
                        "2",
                        "--out",
                        model,
                        NULL};
    run(&r, tr);
    if (r.status)
        fail_msg("fedc train: %s", r.err);
    proc_result_release(&r);
    const char *p1[] = {g_fedc,  "predict", "--model", model,   "--data", raw_score,
                        "--out", s_raw,     "--keep",  "TX_ID", NULL};
    run(&r, p1);
    if (r.status)
        fail_msg("fedc predict (raw): %s", r.err);
    assert_non_null(strstr(r.err, "raw transactions"));
    proc_result_release(&r);
    const char *f2[] = {g_fedc,   "features", "--data", raw_score,  "--delimiter", ";",
                        "--spec", spec,       "--out",  feat_score, NULL};
    run(&r, f2);
    assert_int_equal(r.status, 0);
    proc_result_release(&r);
    const char *p2[] = {g_fedc,  "predict", "--model", model,   "--data", feat_score,
                        "--out", s_feat,    "--keep",  "TX_ID", NULL};
    run(&r, p2);
    assert_int_equal(r.status, 0);
    proc_result_release(&r);
    size_t la = 0, lb = 0;
    char *a = proc_read_file(s_raw, &la), *b = proc_read_file(s_feat, &lb);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(la > 800 * 4);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    /* nothing left beside the output but what the test wrote */
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(dp)) != NULL)
        files += de->d_name[0] != '.';
    closedir(dp);
    assert_int_equal(files, 8);
    free(raw_train);
    free(raw_score);
    free(feat_train);
    free(feat_score);
    free(spec);
    free(model);
    free(s_raw);
    free(s_feat);
    free(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_predict FEDC\n");
        return 2;
    }
    g_fedc = argv[1];
    g_dir = proc_mkdtemp("fedc-predict");
    if (!g_dir)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scores_equal_eval),
        cmocka_unit_test(test_api_threads),
        cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_flat_memory),
        cmocka_unit_test(test_encoded),
        cmocka_unit_test(test_raw),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    proc_rmtree(g_dir);
    free(g_dir);
    return rc;
}
