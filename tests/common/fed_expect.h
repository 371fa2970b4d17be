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

#endif
