/* fedc sim for tests (simrun.h). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "simrun.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/modelfile.h"
#include "proc.h"

sim_out simrun(const char *fedc, const char *const *args, const char *fault, int timeout_s) {
    sim_out o;
    memset(&o, 0, sizeof o);
    o.status = -1;
    char *dir = proc_mkdtemp("fedc-test-simrun");
    if (!dir)
        return o;
    char *summary = proc_path(dir, "summary.json"), *work = proc_path(dir, "work"),
         *metrics = proc_path(dir, "rounds.jsonl");
    /* --val-fraction 0.1: fedc sim's default until the option table gave every program 0.2; the
     * quality tests' thresholds (ROC-AUC margins, DP-SGD step counts) were set with a tenth of
     * each client's rows held out, and a test's args may still override it (a later flag wins). */
    const char *argv[96] = {fedc,          "sim",
                            "--baselines", "none",
                            "--quiet",     "--work-dir",
                            work,          "--summary-json",
                            summary,       "--metrics-json",
                            metrics,       "--val-fraction",
                            "0.1"};
    int n = 0;
    while (argv[n])
        n++;
    for (int i = 0; args[i] && n < 95; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char fenv[512];
    snprintf(fenv, sizeof fenv, "FEDC_FAULT=%s", fault ? fault : "");
    const char *env[] = {"OMP_NUM_THREADS=1", fenv, NULL};
    proc_result r;
    if (proc_run(&r, argv, env, timeout_s) == 0) {
        o.status = r.status;
        o.out = strdup(r.out ? r.out : "");
        o.err = strdup(r.err ? r.err : "");
    }
    proc_result_release(&r);
    char *clog = proc_path(work, "coordinator.log"), *c1 = proc_path(work, "client-1.log"),
         *model = proc_path(work, "global.fedc"), *cm = proc_path(work, "client-1.jsonl");
    o.client_metrics = proc_read_file(cm, NULL);
    free(cm);
    o.coord_log = proc_read_file(clog, NULL);
    o.client_log = proc_read_file(c1, NULL);
    o.metrics = proc_read_file(metrics, NULL);
    o.summary = proc_read_file(summary, NULL);
    fedc_diag d;
    if (fedc_model_load(&o.model, model, &d))
        o.model = NULL;
    free(clog);
    free(c1);
    free(model);
    proc_rmtree(dir);
    free(summary);
    free(work);
    free(metrics);
    free(dir);
    return o;
}

void simrun_free(sim_out *o) {
    free(o->out);
    free(o->err);
    free(o->coord_log);
    free(o->client_log);
    free(o->client_metrics);
    free(o->metrics);
    free(o->summary);
    fedc_model_destroy(&o->model);
    memset(o, 0, sizeof *o);
}

double simrun_json_num(const char *json, const char *section, const char *key) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", section);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p)
        return NAN;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *q = strstr(p, pat);
    const char *end = strchr(p, '}');
    if (!q || (end && q > end))
        return NAN;
    return strtod(q + strlen(pat), NULL);
}

double simrun_line_num(const char *line, const char *key) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *q = line ? strstr(line, pat) : NULL;
    return q ? strtod(q + strlen(pat), NULL) : NAN;
}

char *simrun_nth_line(const char *text, int i) {
    const char *p = text;
    for (int k = 0; k < i && p; k++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p || !*p)
        return NULL;
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    memcpy(out, p, len);
    out[len] = 0;
    return out;
}

int simrun_count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s ? strstr(s, needle) : NULL; p; p = strstr(p + 1, needle))
        n++;
    return n;
}

double simrun_privacy(const char *fedc, double q, double sigma, int steps) {
    char qs[32], ss[32], ts[16];
    snprintf(qs, sizeof qs, "%.17g", q);
    snprintf(ss, sizeof ss, "%.17g", sigma);
    snprintf(ts, sizeof ts, "%d", steps);
    const char *argv[] = {fedc,      "privacy", "--q",     qs,     "--sigma", ss,
                          "--steps", ts,        "--delta", "1e-5", NULL};
    proc_result r;
    double v = NAN;
    if (proc_run(&r, argv, NULL, 60) == 0 && r.status == 0) {
        const char *e = strstr(r.out, "epsilon = ");
        if (e)
            v = strtod(e + strlen("epsilon = "), NULL);
    }
    proc_result_release(&r);
    return v;
}
