/* Writing the Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): for each metric family one
 * "# HELP" and one "# TYPE" line, then its samples "name{labels} value". Values are written so
 * that Go's strconv.ParseFloat reads them back exactly (%.17g; NaN and +Inf/-Inf spelled as the
 * format requires). Internal to fedc. */
#ifndef FEDC_PROM_H
#define FEDC_PROM_H

#include <stdint.h>
#include <stdio.h>

/* The Content-Type of the text format (the page above, "Basic info"). */
#define FEDC_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram). help must not hold
 * a backslash or a line break (the format would need them escaped; fedc's texts have none). */
void fedc__prom_family(FILE *f, const char *name, const char *type, const char *help);

/* One sample: name, labels as written inside the braces (NULL or "" for none) and value. */
void fedc__prom_sample(FILE *f, const char *name, const char *labels, double v);

/* A family with one sample and no labels. */
void fedc__prom_one(FILE *f, const char *name, const char *type, const char *help, double v);

/* A histogram family: the buckets' upper bounds (ascending, +Inf added here), the observations in
 * each bucket (n_bounds + 1 of them, the last beyond every bound; not cumulative: the cumulative
 * counts the format wants are summed here), the sum of the observed values. */
void fedc__prom_histogram(FILE *f, const char *name, const char *help, const double *bounds,
                          int n_bounds, const uint64_t *per_bucket, double sum);

/* The index of the bucket v falls in (the first bound >= v; n_bounds beyond every bound). */
int fedc__prom_bucket(const double *bounds, int n_bounds, double v);

/* Writes s as a label value: backslash, double quote and line feed escaped as the format says. */
void fedc__prom_label_value(FILE *f, const char *s);

#endif
