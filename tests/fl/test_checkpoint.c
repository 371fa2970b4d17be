/* The coordinator's checkpoint file (core/fl/src/checkpoint.c) on its own, now that it is a
 * library piece: a save/load round trip keeps every field (server state, metrics line, the joined
 * clients, the row total, the model); a missing file is FEDC_EIO with errno ENOENT (the
 * coordinator starts a new run then); a flipped byte fails the CRC-32 and a cut file is refused,
 * and neither leaves anything allocated. The process-level resume is tests/fl/test_faults.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedc/checkpoint.h"

typedef struct fixture {
    char dir[64];
    char path[96];
    fedc_model *model;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *base = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/fedc-ckpt-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, FEDC_CKPT_FILE);
    int hidden[1] = {4};
    fedc_arch arch;
    fedc_diag d;
    if (fedc_arch_make(&arch, 3, hidden, 1, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d) ||
        fedc_model_new(&f->model, &arch))
        return -1;
    fedc_model_init(f->model, 7);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    fedc_model_destroy(&f->model);
    free(f);
    return 0;
}

/* Writes a checkpoint of the fixture's model with FedAdam state and two joined clients. */
static void save_one(fixture *f, float *m, float *v) {
    size_t n = f->model->n_params;
    for (size_t i = 0; i < n; i++) {
        m[i] = 0.5f * (float)i;
        v[i] = 0.25f + (float)i;
    }
    char a[] = "alice", b[] = "bob";
    char *names[] = {a, b};
    char line[] = "{\"round\":3,\"participants\":2}";
    fedc_ckpt c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 16; i++)
        c.run_id[i] = (uint8_t)(i * 11);
    c.round = 3;
    c.seed = 42;
    c.have_stats = 1;
    c.pos_weight = 2.5f;
    c.server_kind = FEDC_SERVER_FEDADAM;
    c.server_t = 3;
    c.n = n;
    c.m = m;
    c.v = v;
    c.metrics_line = line;
    c.clients = names;
    c.n_clients = 2;
    c.total_rows = 1234;
    c.model = f->model;
    fedc_diag d;
    assert_int_equal(fedc_ckpt_save(f->path, &c, &d), FEDC_OK);
}

static void test_round_trip(void **state) {
    fixture *f = *state;
    size_t n = f->model->n_params;
    float *m = malloc(4 * n), *v = malloc(4 * n);
    assert_non_null(m);
    assert_non_null(v);
    save_one(f, m, v);
    fedc_ckpt c;
    fedc_diag d;
    assert_int_equal(fedc_ckpt_load(f->path, &c, &d), FEDC_OK);
    for (int i = 0; i < 16; i++)
        assert_int_equal(c.run_id[i], (uint8_t)(i * 11));
    assert_int_equal(c.round, 3);
    assert_int_equal(c.seed, 42);
    assert_int_equal(c.have_stats, 1);
    assert_true(c.pos_weight == 2.5f);
    assert_int_equal(c.server_kind, FEDC_SERVER_FEDADAM);
    assert_int_equal(c.server_t, 3);
    assert_int_equal(c.n, n);
    assert_non_null(c.m);
    assert_non_null(c.v);
    assert_memory_equal(c.m, m, 4 * n);
    assert_memory_equal(c.v, v, 4 * n);
    assert_string_equal(c.metrics_line, "{\"round\":3,\"participants\":2}");
    assert_int_equal(c.n_clients, 2);
    assert_string_equal(c.clients[0], "alice");
    assert_string_equal(c.clients[1], "bob");
    assert_true(c.total_rows == 1234);
    assert_non_null(c.model);
    assert_int_equal(c.model->n_params, n);
    assert_memory_equal(c.model->params, f->model->params, 4 * n);
    fedc_ckpt_release(&c);
    assert_null(c.model);
    assert_null(c.m);
    free(m);
    free(v);
}

static void test_missing_file(void **state) {
    fixture *f = *state;
    fedc_ckpt c;
    fedc_diag d;
    assert_int_equal(fedc_ckpt_load(f->path, &c, &d), FEDC_EIO);
    assert_int_equal(errno, ENOENT);
}

/* Rewrites the saved file with one byte flipped (at `at`) or cut to `len` bytes. */
static void damage(const char *path, long at, long len) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    assert_true(n > 64 && at < (long)n);
    if (at >= 0)
        buf[at] ^= 0x10;
    if (len >= 0)
        n = (size_t)len;
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    fclose(fp);
    free(buf);
}

static void test_corrupt_and_cut(void **state) {
    fixture *f = *state;
    size_t n = f->model->n_params;
    float *m = malloc(4 * n), *v = malloc(4 * n);
    assert_non_null(m);
    assert_non_null(v);
    fedc_ckpt c;
    fedc_diag d;
    save_one(f, m, v);
    damage(f->path, 40, -1); /* inside the server state */
    assert_int_equal(fedc_ckpt_load(f->path, &c, &d), FEDC_ECHECKSUM);
    assert_non_null(strstr(d.msg, "checksum"));
    assert_null(c.model);
    save_one(f, m, v);
    damage(f->path, -1, 50);
    assert_int_not_equal(fedc_ckpt_load(f->path, &c, &d), FEDC_OK);
    assert_null(c.model);
    assert_null(c.metrics_line);
    save_one(f, m, v);
    damage(f->path, 0, -1); /* the magic */
    assert_int_equal(fedc_ckpt_load(f->path, &c, &d), FEDC_EFORMAT);
    free(m);
    free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_and_cut, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
