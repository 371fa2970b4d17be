/* fedc demo, driven as a user would (small sizes): it runs three times in the same directory (the
 * second reuses the banks' data, the third, with other --days, makes it again; no pooled copy of
 * the data is written), and the
 * report is a self-contained HTML page with one PR-AUC point per round and the best round
 * marked, one precision-recall curve for the federated model and one for each bank alone, each
 * with a note on where it starts, the run's settings, the rounds' participation folded into one
 * row, nothing loaded from the network; the final table is also JSON for machines.
 *
 *   test_demo PATH/TO/fedc */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "proc.h"

static const char *g_fedc;

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_demo_report(void **state) {
    (void)state;
    char *dir = proc_mkdtemp("fedc-test-demo");
    assert_non_null(dir);
    char *out = proc_path(dir, "demo-out");
    const char *argv[] = {g_fedc,   "demo", "--out",    out, "--customers", "300",
                          "--days", "40",   "--rounds", "3", NULL};
    assert_string_equal(argv[7], "40");
    const char *env[] = {"OMP_NUM_THREADS=1", NULL};
    char *bank_a = proc_path(out, "data/bank-a.csv");
    struct stat st0 = {0};
    /* A second run reuses the directory and the banks' data fedc synth made for the same
     * settings; a third with other --days makes it again. */
    for (int run = 0; run < 3; run++) {
        if (run == 2)
            argv[7] = "41";
        proc_result r;
        assert_int_equal(proc_run(&r, argv, env, 300), 0);
        if (r.status != 0)
            fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", r.out, r.err);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, "round   3/3"));
        assert_non_null(strstr(r.out, "recall@0.5%"));
        int reused = strstr(r.out, "reusing") != NULL;
        if (reused != (run == 1))
            fail_msg("run %d: the data was %sreused:\n%s", run, reused ? "" : "not ", r.out);
        struct stat st;
        assert_int_equal(stat(bank_a, &st), 0);
        if (run == 0)
            st0 = st;
        else if (run == 1) /* the same file, not written again */
            assert_true(st.st_ino == st0.st_ino && st.st_mtime == st0.st_mtime &&
                        st.st_size == st0.st_size);
        proc_result_release(&r);
    }
    argv[7] = "40";
    free(bank_a);
    /* No second copy of the banks' data: the pooled rows stay in memory. */
    char *pool = proc_path(out, "federation/pool.csv");
    assert_false(proc_exists(pool));
    free(pool);
    char *rp = proc_path(out, "report.html"), *sp = proc_path(out, "summary.json");
    char *html = proc_read_file(rp, NULL), *js = proc_read_file(sp, NULL);
    assert_non_null(html);
    assert_non_null(js);
    assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    assert_non_null(strstr(html, "</html>"));
    assert_int_equal(count(html, "<svg"), count(html, "</svg>"));
    assert_int_equal(count(html, "<table"), count(html, "</table>"));
    /* Two charts, and a legend swatch for each of the five models in the table. */
    assert_int_equal(count(html, "<svg id="), 2);
    assert_int_equal(count(html, "<svg class=\"swatch\""), 5);
    /* One PR-AUC point per round; the three rounds, alike, share one participation row that
     * names all three banks; the best round is marked; ROC-AUC is in the table. */
    assert_int_equal(count(html, "class=\"pr-point\""), 3);
    assert_int_equal(count(html, "<tr class=\"rounds\""), 1);
    assert_non_null(strstr(html, "data-first=\"1\" data-last=\"3\" data-count=\"3\""));
    assert_int_equal(count(html, "bank-a bank-b bank-c (3)"), 1);
    assert_int_equal(count(html, "<g class=\"best-round\""), 1);
    assert_int_equal(count(html, "<td class=\"roc-auc\">"), 5);
    assert_int_equal(count(html, "<li class=\"pr-start-note\""), 5);
    assert_non_null(strstr(html, "<table id=\"settings\">"));
    /* Curves: federated, centralised, and each bank alone, each with many points. */
    const char *models[] = {"federated (3 clients)", "bank-a alone", "bank-b alone",
                            "bank-c alone"};
    for (int i = 0; i < 4; i++) {
        char pat[96];
        snprintf(pat, sizeof pat, "class=\"pr-curve\" data-model=\"%s\"", models[i]);
        const char *p = strstr(html, pat);
        if (!p)
            fail_msg("no precision-recall curve for %s", models[i]);
        const char *pts = strstr(p, "points=\"");
        assert_non_null(pts);
        const char *end = strchr(pts + 8, '"');
        int commas = 0;
        for (const char *q = pts + 8; q < end; q++)
            commas += *q == ',';
        assert_true(commas >= 10);
    }
    assert_int_equal(count(html, "class=\"pr-curve\""), 5);
    /* Self-contained: nothing to fetch. */
    const char *loads[] = {"<script", "src=", "href=", "url(", "@import", "http:", "https:"};
    for (int i = 0; i < 7; i++)
        if (strstr(html, loads[i]))
            fail_msg("report.html contains '%s'", loads[i]);
    /* The table for machines. */
    assert_non_null(strstr(js, "\"federated\":{\"name\":\"federated (3 clients)\""));
    assert_non_null(strstr(js, "\"centralised\":"));
    assert_int_equal(count(js, "\"recall_at_alert_budget\":"), 5);
    assert_int_equal(count(js, " alone\""), 3);
    free(html);
    free(js);
    free(rp);
    free(sp);
    proc_rmtree(dir);
    free(out);
    free(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/fedc\n", argv[0]);
        return 2;
    }
    g_fedc = argv[1];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_demo_report)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
