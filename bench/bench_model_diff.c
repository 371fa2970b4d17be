/* bench_model_diff A.fedc B.fedc: how far two model files' parameters are apart (bench/tree.sh
 * compares a tree of coordinators with the flat federation): prints the parameter count, the
 * largest and the mean |a - b|, and the largest difference of the standardisation. Exit 2 when a
 * file cannot be read or the two models differ in shape. */
#include <math.h>
#include <stdio.h>

#include "fedc/model.h"
#include "fedc/modelfile.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s A.fedc B.fedc\n", argv[0]);
        return 2;
    }
    fedc_model *a = NULL, *b = NULL;
    fedc_diag d;
    if (fedc_model_load(&a, argv[1], &d) || fedc_model_load(&b, argv[2], &d)) {
        fprintf(stderr, "bench_model_diff: %s\n", d.msg);
        fedc_model_destroy(&a);
        return 2;
    }
    int rc = 0;
    if (a->n_params != b->n_params || a->arch.sizes[0] != b->arch.sizes[0]) {
        fprintf(stderr, "bench_model_diff: %zu against %zu parameters\n", a->n_params, b->n_params);
        rc = 2;
    } else {
        double max = 0, sum = 0, stdmax = 0;
        for (size_t i = 0; i < a->n_params; i++) {
            double x = fabs((double)a->params[i] - (double)b->params[i]);
            sum += x;
            max = x > max ? x : max;
        }
        for (int j = 0; j < a->arch.sizes[0]; j++) {
            double x = fmax(fabs((double)a->mean[j] - (double)b->mean[j]),
                            fabs((double)a->std[j] - (double)b->std[j]));
            stdmax = x > stdmax ? x : stdmax;
        }
        printf("params %zu max_abs_diff %.3g mean_abs_diff %.3g standardisation_max_diff %.3g\n",
               a->n_params, max, sum / (double)a->n_params, stdmax);
    }
    fedc_model_destroy(&a);
    fedc_model_destroy(&b);
    return rc;
}
