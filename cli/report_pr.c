/* The report's precision-recall chart (report.h): one curve per model scored on the test set,
 * and a caption that says how the curves are drawn and where each starts.
 *
 * A curve is the list of (recall, precision) pairs of the score thresholds, highest first: at
 * threshold t every row scoring t or more is flagged. Rows with equal scores are flagged
 * together, so a curve's first point is the set of rows tied at the top score; when a model
 * saturates (many rows at the same top score) the curve starts far from recall 0, and the
 * caption gives that set's size from the data. Between thresholds the curve is drawn as steps,
 * each threshold's precision held over the recall it adds: the area under those steps is the
 * average precision the table calls PR-AUC (core/nn metrics.c), and steps, unlike straight
 * lines, claim no precision that no threshold reaches (Davis and Goadrich, "The relationship
 * between precision-recall and ROC curves", ICML 2006, on why linear interpolation in PR space
 * is wrong). Vertices closer than half a pixel to the last one drawn are merged. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define W FEDC_CHART_W
#define H FEDC_CHART_H
#define PADL FEDC_CHART_PADL

/* NaN scores sort last: they flag nothing until the very end. */
static int score_gt(float a, float b) {
    if (isnan(a))
        return 0;
    return isnan(b) || a > b;
}

void report_pr_start_of(report_pr_start *st, const float *pred, const float *y, int n) {
    memset(st, 0, sizeof *st);
    st->top_score = NAN;
    for (int i = 0; i < n; i++) {
        st->frauds += y[i] > 0.5f;
        if (i == 0 || score_gt(pred[i], st->top_score))
            st->top_score = pred[i];
    }
    for (int i = 0; i < n; i++)
        if (pred[i] == st->top_score || (isnan(pred[i]) && isnan(st->top_score))) {
            st->tied_rows++;
            st->tied_frauds += y[i] > 0.5f;
        }
    st->recall = st->frauds ? (double)st->tied_frauds / (double)st->frauds : NAN;
    st->precision = st->tied_rows ? (double)st->tied_frauds / (double)st->tied_rows : NAN;
}

typedef struct scored_row {
    float s;
    int fraud;
} scored_row;

static int cmp_desc(const void *a, const void *b) {
    const scored_row *x = a, *y = b;
    return score_gt(x->s, y->s) ? -1 : score_gt(y->s, x->s) ? 1 : 0;
}

static int same_score(float a, float b) {
    return a == b || (isnan(a) && isnan(b));
}

/* The polyline's vertices. The newest is held back until the next shows whether it lies on the
 * same horizontal or vertical run; if so it is replaced, so that a run of steps along one
 * precision (or one recall) costs two vertices, not one per threshold. */
typedef struct pen {
    FILE *f;
    double x, y;   /* the newest vertex, not written yet */
    double px, py; /* the one written before it */
    int n;         /* vertices so far (written + the held one) */
} pen;

static void vertex(pen *p, double x, double y) {
    x = round(x * 10) / 10;
    y = round(y * 10) / 10;
    if (p->n > 0 && x == p->x && y == p->y)
        return;
    if (p->n >= 2 && ((y == p->y && p->y == p->py) || (x == p->x && p->x == p->px))) {
        p->x = x; /* the same run: the held vertex moves along it */
        p->y = y;
        return;
    }
    if (p->n > 0) {
        fprintf(p->f, "%.1f,%.1f ", p->x, p->y);
        p->px = p->x;
        p->py = p->y;
    }
    p->x = x;
    p->y = y;
    p->n++;
}

static void pen_flush(pen *p) {
    if (p->n > 0)
        fprintf(p->f, "%.1f,%.1f", p->x, p->y);
}

/* One threshold's step: up or down to its precision at the recall drawn so far, then along to
 * its recall. */
static void step(pen *p, double rec, double prec) {
    vertex(p, p->x, fedc__chart_py(prec));
    vertex(p, fedc__chart_px(rec), fedc__chart_py(prec));
}

/* The curve of one model: sorts a copy of its scores. -1 when out of memory. */
static int curve(FILE *f, const report_model *m, const float *y, int n, const report_pr_start *st) {
    scored_row *v = malloc(sizeof *v * (size_t)(n ? n : 1));
    if (!v)
        return -1;
    for (int i = 0; i < n; i++) {
        v[i].s = m->pred[i];
        v[i].fraud = y[i] > 0.5f;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_desc);
    const fedc_series_style sty = fedc__chart_style(m->role, m->index);
    const double pos = (double)st->frauds;
    /* The lead: from recall 0 to the first point, at its precision (what average precision
     * counts there; no threshold flags fewer rows). */
    if (st->recall > 0) {
        fprintf(f,
                "<line class=\"pr-lead\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"%s\" stroke-width=\"1.5\" stroke-dasharray=\"1 3\"/>",
                fedc__chart_px(0), fedc__chart_py(st->precision), fedc__chart_px(st->recall),
                fedc__chart_py(st->precision), sty.colour);
    }
    fprintf(f, "<polyline class=\"pr-curve\" data-model=\"");
    fedc__html_esc(f, m->name);
    fprintf(f, "\" fill=\"none\"");
    fedc__chart_stroke(f, &sty);
    fprintf(f, " points=\"");
    pen p = {f, 0, 0, 0, 0, 0};
    long tp = 0, fp = 0;
    int pending = 0; /* a merged threshold not drawn yet */
    double pend_rec = 0, pend_prec = 0;
    for (int k = 0; k < n;) {
        int j = k;
        for (; j < n && same_score(v[j].s, v[k].s); j++)
            tp += v[j].fraud, fp += !v[j].fraud;
        double rec = (double)tp / pos, prec = (double)tp / (double)(tp + fp);
        if (p.n == 0) {
            vertex(&p, fedc__chart_px(rec), fedc__chart_py(prec)); /* the first point */
        } else if (fabs(fedc__chart_px(rec) - p.x) < 0.5 &&
                   fabs(fedc__chart_py(prec) - p.y) < 0.5 && j < n) {
            pending = 1; /* within half a pixel of the last vertex: merged */
            pend_rec = rec;
            pend_prec = prec;
        } else {
            if (pending)
                step(&p, pend_rec, pend_prec);
            step(&p, rec, prec);
            pending = 0;
        }
        k = j;
    }
    pen_flush(&p);
    fprintf(f, "\"/>");
    fprintf(f, "<circle class=\"pr-start\" data-model=\"");
    fedc__html_esc(f, m->name);
    fprintf(f,
            "\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#fff\" stroke=\"%s\" stroke-width=\"2\"/>",
            fedc__chart_px(st->recall), fedc__chart_py(st->precision), sty.colour);
    free(v);
    return 0;
}

/* One model's line of the caption. */
static void start_note(FILE *f, const report_model *m, const report_pr_start *st) {
    fprintf(f, "<li class=\"pr-start-note\" data-model=\"");
    fedc__html_esc(f, m->name);
    fprintf(f,
            "\" data-tied-rows=\"%ld\" data-tied-frauds=\"%ld\" data-recall=\"%.6f\" "
            "data-precision=\"%.6f\">",
            st->tied_rows, st->tied_frauds, st->recall, st->precision);
    fedc__html_esc(f, m->name);
    fprintf(f, ": starts at recall %.4f, precision %.3f: ", st->recall, st->precision);
    long legit = st->tied_rows - st->tied_frauds;
    if (st->tied_frauds == 0)
        fprintf(f, "its top score, %.6g, is held by %ld legitimate row%s and no fraud",
                st->top_score, legit, legit == 1 ? "" : "s");
    else if (st->tied_rows == 1)
        fprintf(f, "its top score, %.6g, is one fraud's alone (1 of the %ld frauds)", st->top_score,
                st->frauds);
    else
        fprintf(f, "%ld of the %ld frauds (%.2f%%) %s its top score, %.6g, ", st->tied_frauds,
                st->frauds, 100.0 * st->recall, st->tied_frauds == 1 ? "shares" : "share",
                st->top_score);
    if (st->tied_frauds > 0 && st->tied_rows > 1) {
        if (legit == 0)
            fprintf(f, "and no legitimate row does");
        else
            fprintf(f, "with %ld legitimate row%s", legit, legit == 1 ? "" : "s");
    }
    if (st->tied_rows > 1 && st->top_score == 1.0f)
        fprintf(f,
                " (the score rounds to 1 in single precision: those %ld rows cannot be told "
                "apart)",
                st->tied_rows);
    fprintf(f, ".</li>\n");
}

int report_pr_section(FILE *f, const report_in *in) {
    const int legend_h = 20 * ((in->n_models + 1) / 2);
    fprintf(f, "<h2>Precision-recall on the test set</h2>\n");
    long frauds = 0;
    for (int i = 0; i < in->n; i++)
        frauds += in->y[i] > 0.5f;
    if (frauds == 0) {
        fprintf(f, "<p class=\"note\">The test set has no frauds: recall is undefined, so no "
                   "curve is drawn.</p>\n");
        return 0;
    }
    fprintf(f, "<svg id=\"pr-curves\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">", W,
            H + 16 + legend_h, W, H + 16 + legend_h);
    fedc__chart_axes(f, "recall", "precision", 1.0, 0);
    report_pr_start *st = calloc((size_t)(in->n_models ? in->n_models : 1), sizeof *st);
    if (!st)
        return -1;
    /* The federated model last, on top of the others. */
    for (int pass = 0; pass < 2; pass++)
        for (int m = 0; m < in->n_models; m++) {
            const report_model *rm = &in->models[m];
            if (!rm->pred || (rm->role == FEDC_SERIES_FEDERATED) != (pass == 1))
                continue;
            report_pr_start_of(&st[m], rm->pred, in->y, in->n);
            if (curve(f, rm, in->y, in->n, &st[m])) {
                free(st);
                return -1;
            }
        }
    for (int m = 0; m < in->n_models; m++) {
        const report_model *rm = &in->models[m];
        fedc_series_style sty = fedc__chart_style(rm->role, rm->index);
        int lx = PADL + (m % 2) * 280, ly = H + 10 + 20 * (m / 2);
        fprintf(f, "<line class=\"legend\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"", lx, ly,
                lx + 24, ly);
        fedc__chart_stroke(f, &sty);
        fprintf(f, "/><text x=\"%d\" y=\"%d\" class=\"label\">", lx + 30, ly + 4);
        fedc__html_esc(f, rm->name);
        fprintf(f, "</text>");
    }
    fprintf(f, "</svg>\n");
    fprintf(f, "<p class=\"note\" id=\"pr-how\">Each point of a curve is a score threshold: every "
               "transaction scoring at or above it is flagged. Between thresholds the curves are "
               "steps, each threshold's precision held over the recall it adds (not straight "
               "lines, which would claim precision no threshold reaches); the area under the steps "
               "is the table's PR-AUC. Points within half a pixel are merged. A curve starts "
               "where its top score does: every transaction with that score is flagged at once, "
               "so no threshold gives a lower recall. The ring marks that first point; the dotted "
               "lead to recall 0 is what PR-AUC counts at its precision.</p>\n<ul class=\"note\" "
               "id=\"pr-starts\">\n");
    for (int m = 0; m < in->n_models; m++)
        if (in->models[m].pred)
            start_note(f, &in->models[m], &st[m]);
    fprintf(f, "</ul>\n");
    free(st);
    return 0;
}
