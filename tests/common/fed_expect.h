/* cmocka checks on processes of a test federation (fed.h), shared by the federation tests.
 * Include after <cmocka.h>. */
#ifndef FEDC_TEST_FED_EXPECT_H
#define FEDC_TEST_FED_EXPECT_H

#include <stdlib.h>

#include "fed.h"

/* Two federations per test (a run and its control), released by the teardown; `ok` is set at the
 * end of a passing test, otherwise the teardown prints the logs. */
typedef struct fed_pair {
    fed f[2];
    int ok;
} fed_pair;

/* cmocka setup: both federations with temporary directories named after prefix. */
static inline int fed_pair_setup(void **state, const char *prefix, const char *coord_bin,
                                 const char *client_bin) {
    fed_pair *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    if (fed_init(&c->f[0], prefix, coord_bin, client_bin) ||
        fed_init(&c->f[1], prefix, coord_bin, client_bin)) {
        fed_release(&c->f[0], 0);
        fed_release(&c->f[1], 0);
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static inline int fed_pair_teardown(void **state) {
    fed_pair *c = *state;
    fed_release(&c->f[0], !c->ok);
    fed_release(&c->f[1], !c->ok);
    free(c);
    return 0;
}

/* A path in the federation's directory (caller frees); checked. */
static inline char *fed_fpath(const fed *f, const char *name) {
    char *p = fed_path(f, name);
    assert_non_null(p);
    return p;
}

/* Waits up to timeout_s for p and checks it exited on its own with `status`. */
static inline void fed_expect_exit(fed_proc *p, int timeout_s, int status) {
    assert_int_equal(fed_wait(p, timeout_s), 0);
    if (p->res.timed_out || p->res.term_signal || p->res.status != status)
        print_message("%s: status %d, signal %d, timed out %d; expected status %d\n", p->name,
                      p->res.status, p->res.term_signal, p->res.timed_out, status);
    assert_false(p->res.timed_out);
    assert_int_equal(p->res.term_signal, 0);
    assert_int_equal(p->res.status, status);
}

#ifdef FEDC_DP_H
/* Metrics line i of an asynchronous run under client-level DP with noise multiplier z (as the
 * coordinator holds it, a float) and delta 1e-5: no amplification by sampling claimed (dp_q 1),
 * one charge per step, the noise added (dp_clip is set when it is) at clip norm clip, and the
 * epsilon the accountant gives for i + 1 unsampled Gaussian steps. Include fedc/dp.h first. */
static inline void fed_expect_dp_unsampled(const char *metrics, int i, float z, double clip) {
    assert_true(fed_metric_at(metrics, i, "dp_q") == 1.0);
    assert_true(fed_metric_at(metrics, i, "dp_rounds_charged") == (double)(i + 1));
    assert_true(fed_metric_at(metrics, i, "dp_noise") == (double)z);
    assert_true(fed_metric_at(metrics, i, "dp_clip") == clip);
    double want, order, eps = fed_metric_at(metrics, i, "dp_epsilon");
    fedc_diag d;
    assert_int_equal(fedc_dp_epsilon(&want, &order, 1.0, (double)z, (double)(i + 1), 1e-5, &d),
                     FEDC_OK);
    if (!(fabs(eps - want) <= 1e-5 * want))
        print_message("step %d: dp_epsilon %.9g, an unsampled Gaussian gives %.9g\n", i + 1, eps,
                      want);
    assert_true(fabs(eps - want) <= 1e-5 * want);
}
#endif

#endif
