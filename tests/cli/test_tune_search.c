/* fedc tune's search without processes (cli/tune_search.c): the rungs of successive halving and
 * how many go on, the draws (trial 1 the defaults, every other inside the search space, the same
 * for the same seed and id whatever the number of trials, different for another seed), the
 * ranking with failed trials and ties, and the config file's keys and values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "tune.h"

static void test_rungs(void **state) {
    (void)state;
    int r[TUNE_MAX_RUNGS];
    assert_int_equal(tune_rungs(r, 20, 2), 3);
    assert_int_equal(r[0], 5);
    assert_int_equal(r[1], 10);
    assert_int_equal(r[2], 20);
    assert_int_equal(tune_rungs(r, 10, 3), 3);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[1], 3);
    assert_int_equal(r[2], 10);
    /* too few rounds for three rungs */
    assert_int_equal(tune_rungs(r, 3, 2), 2);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[1], 3);
    assert_int_equal(tune_rungs(r, 1, 2), 1);
    assert_int_equal(r[0], 1);
    assert_int_equal(tune_rungs(r, 1000000, 16), 3);
    assert_int_equal(r[0], 1000000 / 256);
    assert_int_equal(tune_keep(16, 2), 8);
    assert_int_equal(tune_keep(9, 3), 3);
    assert_int_equal(tune_keep(5, 2), 2);
    assert_int_equal(tune_keep(1, 2), 1);
    assert_int_equal(tune_keep(3, 4), 1);
}

static int in_set(int v, const int *set, int n) {
    for (int i = 0; i < n; i++)
        if (set[i] == v)
            return 1;
    return 0;
}

static void test_draws(void **state) {
    (void)state;
    tune_trial t, u;
    assert_int_equal(tune_draw(&t, 1, 5, "adam", "0.001", 1, 64, "64,32"), 0);
    assert_string_equal(t.opt, "adam");
    assert_string_equal(t.lr, "0.001");
    assert_int_equal(t.local_epochs, 1);
    assert_int_equal(t.batch, 64);
    assert_string_equal(t.layers, "64,32");
    assert_int_equal(
        tune_draw(&t, 1, 5, "adam", "0.001", 1, 64, "1,2,3,4,5,6,7,8,9,10,11,12,13,14"), -1);
    const int epochs[] = {1, 2, 3, 5}, batches[] = {32, 64, 128, 256};
    const char *layers[] = {"16", "25", "64", "32,16", "64,32"};
    int seen_opt[2] = {0, 0}, seen_layers[5] = {0}, differ = 0;
    double lo[2] = {1, 1}, hi[2] = {0, 0};
    for (int id = 2; id < 402; id++) {
        assert_int_equal(tune_draw(&t, id, 5, "adam", "0.001", 1, 64, "64,32"), 0);
        assert_int_equal(t.id, id);
        int o = strcmp(t.opt, "sgd") == 0;
        assert_true(o || strcmp(t.opt, "adam") == 0);
        seen_opt[o]++;
        double lr = strtod(t.lr, NULL);
        /* 3 significant digits of a draw in [1e-4, 3e-2] (adam) or [1e-3, 3e-1] (sgd) */
        assert_true(lr >= (o ? 1e-3 : 1e-4) * 0.9995 && lr <= (o ? 3e-1 : 3e-2) * 1.0005);
        lo[o] = fmin(lo[o], lr);
        hi[o] = fmax(hi[o], lr);
        assert_true(in_set(t.local_epochs, epochs, 4));
        assert_true(in_set(t.batch, batches, 4));
        int l = -1;
        for (int k = 0; k < 5; k++)
            if (strcmp(t.layers, layers[k]) == 0)
                l = k;
        assert_true(l >= 0);
        seen_layers[l]++;
        /* the same seed and id: the same trial; another seed: mostly another */
        assert_int_equal(tune_draw(&u, id, 5, "x", "x", 9, 9, "x"), 0);
        assert_memory_equal(&t, &u, sizeof t);
        assert_int_equal(tune_draw(&u, id, 6, "adam", "0.001", 1, 64, "64,32"), 0);
        differ += strcmp(t.lr, u.lr) != 0;
    }
    assert_true(seen_opt[0] > 120 && seen_opt[1] > 120);
    for (int k = 0; k < 5; k++)
        assert_true(seen_layers[k] > 40);
    /* log-uniform: the draws reach both ends of each range (within a factor of 1.5) */
    assert_true(lo[0] < 1.5e-4 && hi[0] > 2e-2 && lo[1] < 1.5e-3 && hi[1] > 2e-1);
    assert_true(differ > 390);
}

static tune_trial trial(int id, tune_state s0, double v0, tune_state s1, double v1) {
    tune_trial t;
    memset(&t, 0, sizeof t);
    t.id = id;
    t.state[0] = s0;
    t.value[0] = v0;
    t.state[1] = s1;
    t.value[1] = v1;
    return t;
}

static void test_ranking(void **state) {
    (void)state;
    assert_true(tune_better(0.5, 0.4, 1));
    assert_false(tune_better(0.4, 0.5, 1));
    assert_true(tune_better(0.4, 0.5, 0));
    assert_true(tune_better(0.1, NAN, 1));
    assert_false(tune_better(NAN, 0.1, 0));
    assert_false(tune_better(0.5, 0.5, 1));
    tune_trial tr[6] = {
        trial(1, TUNE_OK, 0.60, TUNE_OK, 0.70),    /* 0.70 at rung 2 */
        trial(2, TUNE_OK, 0.65, TUNE_CUT, 0),      /* 0.65 at rung 1 */
        trial(3, TUNE_FAILED, 0, TUNE_NOT_RUN, 0), /* nothing */
        trial(4, TUNE_OK, 0.50, TUNE_NOT_RUN, 0),  /* 0.50 */
        trial(5, TUNE_OK, 0.70, TUNE_NOT_RUN, 0),  /* 0.70 at rung 1: after trial 1 */
        trial(6, TUNE_OK, 0.65, TUNE_NOT_RUN, 0),  /* a tie with trial 2: by id */
    };
    int rung;
    assert_true(tune_result(&tr[0], &rung) == 0.70 && rung == 1);
    assert_true(isnan(tune_result(&tr[2], &rung)) && rung == -1);
    int ids[6] = {5, 4, 3, 2, 1, 0};
    tune_rank(ids, 6, tr, 1);
    const int want[6] = {0, 4, 1, 5, 3, 2};
    assert_memory_equal(ids, want, sizeof want);
    /* by rung 1 alone, higher better; then lower better (failed still last) */
    int r1[6] = {0, 1, 2, 3, 4, 5};
    tune_sort_rung(r1, 6, tr, 0, 1);
    const int want1[6] = {4, 1, 5, 0, 3, 2};
    assert_memory_equal(r1, want1, sizeof want1);
    tune_sort_rung(r1, 6, tr, 0, 0);
    const int want0[6] = {3, 0, 1, 5, 4, 2};
    assert_memory_equal(r1, want0, sizeof want0);
}

static void test_config_file(void **state) {
    (void)state;
    char *dir = proc_mkdtemp("fedc-tune-search-");
    assert_non_null(dir);
    char *path = proc_path(dir, "best.ini");
    tune_trial t;
    assert_int_equal(tune_draw(&t, 3, 1, "adam", "0.001", 1, 64, "64,32"), 0);
    t.state[0] = TUNE_OK;
    t.value[0] = 0.5;
    t.best_round[0] = 4;
    t.state[1] = TUNE_OK;
    t.value[1] = 0.612345678;
    t.best_round[1] = 7;
    const int rounds[3] = {5, 10, 20};
    tune_metric m = {"roc_auc", 1};
    assert_int_equal(
        tune_write_config(path, &t, rounds, &m, 42, "0.25", "auto", "line one\nline two"), 0);
    char *text = proc_read_file(path, NULL);
    assert_non_null(text);
    char want[512];
    const char *sec = strstr(text, "\n[coordinator]\n");
    assert_non_null(sec);
    snprintf(want, sizeof want,
             "\n[coordinator]\noptimizer = %s\nlr = %s\nlocal-epochs = %d\nbatch = %d\n"
             "layers = %s\nrounds = 7\nseed = 42\nval-fraction = 0.25\npos-weight = auto\n"
             "select-metric = roc_auc\n",
             t.opt, t.lr, t.local_epochs, t.batch, t.layers);
    assert_string_equal(sec, want);
    assert_non_null(
        strstr(text, "; federated validation roc_auc 0.612345678 at round 7 of the 10"));
    assert_non_null(strstr(text, "\n; line one\n; line two\n"));
    /* every line before the section is a comment */
    for (const char *p = text; p < sec; p = strchr(p, '\n') + 1)
        assert_int_equal(*p, ';');
    free(text);
    /* nothing to write: an error, and the file stays as it was */
    tune_trial none;
    memset(&none, 0, sizeof none);
    assert_int_equal(tune_write_config(path, &none, rounds, &m, 42, "0.25", "1", NULL), -1);
    text = proc_read_file(path, NULL);
    assert_non_null(strstr(text, "rounds = 7\n"));
    free(text);
    free(path);
    assert_int_equal(proc_rmtree(dir), 0);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rungs),
        cmocka_unit_test(test_draws),
        cmocka_unit_test(test_ranking),
        cmocka_unit_test(test_config_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
