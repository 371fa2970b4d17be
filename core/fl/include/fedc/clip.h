/* The one L2 clip of fedc: client updates before they leave (the bound of every run, the DP clip
 * norm), the coordinator's norm-bound rule and its checks of updates and aggregates all use it, so
 * every side computes a norm the same way (double sum in index order). */
#ifndef FEDC_CLIP_H
#define FEDC_CLIP_H

#include <stddef.h>

/* ||x||_2 of n values, the squares summed in double in index order. */
double fedc_l2_norm(const float *x, size_t n);

/* Scales x (n values) to L2 norm <= c (c > 0) by the factor (float)(c / ||x||). Returns 1 when
 * x was within c already (then unchanged), else 0; *norm (may be NULL) gets ||x|| before. */
int fedc_l2_clip(float *x, size_t n, double c, double *norm);

#endif
