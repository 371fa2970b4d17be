/* Minority augmentation (core/nn/include/fedc/augment.h): each kind brings positives/negatives to
 * the stated ratio exactly, keeps the original rows first and unchanged, and makes the new rows
 * as stated: copies of positives (oversample), points on a segment between two positives
 * (SMOTE), positives plus noise of the stated size (noise); deterministic by seed; nothing added
 * when the ratio is already met; bad specifications refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedc/augment.h"
#include "fedc/rng.h"

enum { N = 2000, NF = 4, POS = 40 };

/* 40 positives around (3, 3, 3, 3), 1960 negatives around 0. */
static fedc_dataset *make(void) {
    fedc_dataset *ds = NULL;
    assert_int_equal(fedc_dataset_new(&ds, N, NF), FEDC_OK);
    fedc_rng r;
    fedc_rng_init(&r, 99);
    for (int i = 0; i < N; i++) {
        int p = i % 50 == 0;
        ds->y[i] = p ? 1.0f : 0.0f;
        for (int j = 0; j < NF; j++)
            ds->x[i * NF + j] = (p ? 3.0f : 0.0f) + fedc_rng_normal(&r);
    }
    return ds;
}

static int count_pos(const fedc_dataset *ds) {
    int p = 0;
    for (int i = 0; i < ds->n_rows; i++)
        p += ds->y[i] == 1.0f;
    return p;
}

/* Distance from x to the nearest original positive, and that positive's index. */
static double nearest_pos(const fedc_dataset *in, const float *x, int *at) {
    double best = 1e300;
    for (int i = 0; i < in->n_rows; i++) {
        if (in->y[i] != 1.0f)
            continue;
        double d = 0;
        for (int j = 0; j < NF; j++)
            d += ((double)x[j] - in->x[i * NF + j]) * ((double)x[j] - in->x[i * NF + j]);
        if (d < best) {
            best = d;
            *at = i;
        }
    }
    return sqrt(best);
}

static fedc_dataset *run(const fedc_dataset *in, const char *spec, int *added) {
    fedc_aug_cfg c;
    fedc_diag d;
    assert_int_equal(fedc_aug_parse(&c, spec, &d), FEDC_OK);
    c.seed = 5;
    fedc_dataset *out = NULL;
    assert_int_equal(fedc_augment(&out, in, &c, added, &d), FEDC_OK);
    /* Ratio exact, originals first and unchanged. */
    int neg = N - POS, want = (int)ceil(c.ratio * neg - 1e-9);
    assert_int_equal(count_pos(out), want > POS ? want : POS);
    assert_int_equal(out->n_rows, N + *added);
    assert_memory_equal(out->x, in->x, sizeof(float) * N * NF);
    assert_memory_equal(out->y, in->y, sizeof(float) * N);
    for (int i = N; i < out->n_rows; i++)
        assert_true(out->y[i] == 1.0f);
    return out;
}

static void test_oversample(void **state) {
    (void)state;
    fedc_dataset *in = make();
    int added;
    fedc_dataset *out = run(in, "oversample:0.1", &added);
    assert_int_equal(added, 196 - POS);
    int at;
    for (int i = N; i < out->n_rows; i++)
        assert_true(nearest_pos(in, out->x + i * NF, &at) == 0.0); /* exact copies */
    fedc_dataset_destroy(&out);
    fedc_dataset_destroy(&in);
}

static void test_smote(void **state) {
    (void)state;
    fedc_dataset *in = make();
    int added;
    fedc_dataset *out = run(in, "smote:0.25", &added);
    assert_int_equal(added, 490 - POS);
    /* Each new row lies on a segment from a positive to another positive: some positive a and
     * b with x - a parallel to b - a and 0 <= u <= 1. */
    int on_segment = 0, copies = 0;
    for (int i = N; i < out->n_rows; i++) {
        const float *x = out->x + i * NF;
        int at;
        if (nearest_pos(in, x, &at) == 0.0)
            copies++;
        int found = 0;
        for (int a = 0; a < N && !found; a += 50) {
            for (int b = 0; b < N && !found; b += 50) {
                if (a == b)
                    continue;
                double u = -1, ok = 1;
                for (int j = 0; j < NF && ok; j++) {
                    double ba = (double)in->x[b * NF + j] - in->x[a * NF + j];
                    double xa = (double)x[j] - in->x[a * NF + j];
                    if (u < 0)
                        u = xa / ba;
                    ok = fabs(xa - u * ba) < 1e-4;
                }
                found = ok && u >= -1e-6 && u <= 1 + 1e-6;
            }
        }
        on_segment += found;
    }
    assert_int_equal(on_segment, added);
    assert_true(copies < added / 10); /* u = 0 exactly is rare */
    fedc_dataset_destroy(&out);
    fedc_dataset_destroy(&in);
}

static void test_noise(void **state) {
    (void)state;
    fedc_dataset *in = make();
    int added;
    fedc_dataset *out = run(in, "noise:0.5", &added);
    assert_int_equal(added, 980 - POS);
    /* New row minus the positive it came from: N(0, 0.05^2) per feature. The nearest positive is
     * its source (positives lie about 1 apart, the noise is 0.05). */
    double ss = 0;
    long cnt = 0;
    for (int i = N; i < out->n_rows; i++) {
        int at = -1;
        (void)nearest_pos(in, out->x + i * NF, &at);
        for (int j = 0; j < NF; j++) {
            double e = (double)out->x[i * NF + j] - in->x[at * NF + j];
            ss += e * e;
            cnt++;
        }
    }
    double sd = sqrt(ss / (double)cnt);
    print_message("noise sd %.4f (expected 0.05)\n", sd);
    assert_true(sd > 0.045 && sd < 0.055);
    fedc_dataset_destroy(&out);
    fedc_dataset_destroy(&in);
}

static void test_deterministic_and_edge_cases(void **state) {
    (void)state;
    fedc_dataset *in = make();
    int a1, a2;
    fedc_dataset *o1 = run(in, "smote", &a1), *o2 = run(in, "smote", &a2);
    assert_int_equal(a1, a2);
    assert_memory_equal(o1->x, o2->x, sizeof(float) * (size_t)o1->n_rows * NF);
    fedc_dataset_destroy(&o1);
    fedc_dataset_destroy(&o2);
    /* Already balanced enough: nothing added. */
    o1 = run(in, "oversample:0.01", &a1);
    assert_int_equal(a1, 0);
    fedc_dataset_destroy(&o1);
    fedc_aug_cfg c;
    fedc_diag d;
    assert_int_equal(fedc_aug_parse(&c, "smote:0", &d), FEDC_EINVAL);
    assert_int_equal(fedc_aug_parse(&c, "smote:1.5", &d), FEDC_EINVAL);
    assert_int_equal(fedc_aug_parse(&c, "rose", &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "oversample, smote or noise"));
    /* No positives: refused. */
    for (int i = 0; i < N; i++)
        in->y[i] = 0.0f;
    assert_int_equal(fedc_aug_parse(&c, "oversample", &d), FEDC_OK);
    assert_int_equal(fedc_augment(&o1, in, &c, &a1, &d), FEDC_EINVAL);
    fedc_dataset_destroy(&in);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oversample),
        cmocka_unit_test(test_smote),
        cmocka_unit_test(test_noise),
        cmocka_unit_test(test_deterministic_and_edge_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
