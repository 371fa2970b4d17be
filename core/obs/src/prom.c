/* The Prometheus text exposition format (prom.h). */
#include "fedc/prom.h"

#include <math.h>

static void value(FILE *f, double v) {
    /* The format's spellings of the special values (exposition_formats, "Text format details"). */
    if (isnan(v))
        fputs("NaN", f);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    else if (v == floor(v) && fabs(v) < 9.007199254740992e15)
        fprintf(f, "%.0f", v); /* integers as integers: counters read naturally */
    else
        fprintf(f, "%.17g", v);
}

void fedc__prom_family(FILE *f, const char *name, const char *type, const char *help) {
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void fedc__prom_sample(FILE *f, const char *name, const char *labels, double v) {
    if (labels && labels[0])
        fprintf(f, "%s{%s} ", name, labels);
    else
        fprintf(f, "%s ", name);
    value(f, v);
    fputc('\n', f);
}

void fedc__prom_one(FILE *f, const char *name, const char *type, const char *help, double v) {
    fedc__prom_family(f, name, type, help);
    fedc__prom_sample(f, name, NULL, v);
}

void fedc__prom_histogram(FILE *f, const char *name, const char *help, const double *bounds,
                          int n_bounds, const uint64_t *per_bucket, double sum) {
    fedc__prom_family(f, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i <= n_bounds; i++) {
        cum += per_bucket[i];
        if (i < n_bounds)
            fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
        else
            fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    fprintf(f, "%s_sum ", name);
    value(f, sum);
    fprintf(f, "\n%s_count %llu\n", name, (unsigned long long)cum);
}

int fedc__prom_bucket(const double *bounds, int n_bounds, double v) {
    int i = 0;
    while (i < n_bounds && !(v <= bounds[i]))
        i++;
    return i;
}

void fedc__prom_label_value(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '"')
            fputs("\\\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}
