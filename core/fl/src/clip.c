/* L2 norm and clip (contracts in clip.h). */
#include "fedc/clip.h"

#include <math.h>

double fedc_l2_norm(const float *x, size_t n) {
    double sq = 0;
    for (size_t i = 0; i < n; i++)
        sq += (double)x[i] * (double)x[i];
    return sqrt(sq);
}

int fedc_l2_clip(float *x, size_t n, double c, double *norm) {
    double v = fedc_l2_norm(x, n);
    if (norm)
        *norm = v;
    if (v <= c)
        return 1;
    const float s = (float)(c / v);
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
    return 0;
}
