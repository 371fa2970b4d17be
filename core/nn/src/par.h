/* Internal: work-sharing without a barrier for a team of one.
 *
 * Every kernel is an orphaned `omp for` (see kernels.h). Its implied barrier costs about 0.2 us
 * even in a team of one thread (measured on the 2-vCPU machines), more than a small layer's
 * arithmetic at batch 64. So kernels share work with FEDC_OMP_FOR (nowait) and end with
 * fedc__sync(), which waits at a barrier only when the team has more than one thread. All
 * threads of a team see the same team size, so they agree on whether to meet at the barrier. */
#ifndef FEDC_PAR_H
#define FEDC_PAR_H

#ifdef _OPENMP
#include <omp.h>
#endif

#define FEDC_OMP_FOR _Pragma("omp for schedule(static) nowait")

static inline int fedc__team_size(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

static inline int fedc__thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* A barrier for teams of two or more threads; nothing for a team of one. */
static inline void fedc__sync(void) {
#ifdef _OPENMP
    if (omp_get_num_threads() > 1) {
#pragma omp barrier
    }
#endif
}

#endif
