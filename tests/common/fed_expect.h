/* cmocka checks on processes of a test federation (fed.h), shared by the federation tests.
 * Include after <cmocka.h>. */
#ifndef FEDC_TEST_FED_EXPECT_H
#define FEDC_TEST_FED_EXPECT_H

#include "fed.h"

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
