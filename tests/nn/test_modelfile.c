/* Model files (core/nn/src/modelfile.c): encode/decode and save/load round trips for every task;
 * refusal of every truncation, of a flipped byte in the parameters (checksum), a bad magic, an
 * unsupported version, inconsistent sizes, trailing bytes and oversized name lengths, each with
 * the reason in the message; the CRC-32 check value; atomic writes. Damaged buffers are copied
 * into allocations of their exact size so that the sanitizer build catches any over-read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fedc/modelfile.h"

/* Byte offsets of the fixed header fields (see modelfile.h). */
#define OFF_VERSION 8
#define OFF_N_LAYERS 24
#define OFF_SIZES 28

/* ---- small file helpers (this test links core/nn only) ---------------------------------- */

/* A fresh private directory under $TMPDIR or /tmp; caller frees the path. */
static char *make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    size_t n = strlen(base) + 40;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/fedc-test-modelfile-XXXXXX", base);
    assert_non_null(mkdtemp(p));
    return p;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Reads a whole file; caller frees. */
static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        print_message("%s: %s\n", path, strerror(errno));
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Removes a flat directory of files (what these tests create) and the directory itself. */
static void remove_dir(const char *dir) {
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = join(dir, e->d_name);
        assert_int_equal(unlink(p), 0);
        free(p);
    }
    closedir(dp);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- models -------------------------------------------------------------------------- */

static const char *const NAMES3[] = {"age", "income", "débt ratio"};

/* A model with a hidden layer of 4 units over 3 inputs, seeded weights and (optionally) names and
 * standardisation statistics. Caller destroys. */
static fedc_model *make_model(fedc_task task, int n_classes, int with_names) {
    fedc_arch arch;
    fedc_diag d = {{0}};
    fedc_model *m = NULL;
    const int hidden[] = {4, 5};
    assert_int_equal(fedc_arch_make(&arch, 3, hidden, 2, FEDC_ACT_TANH, task, n_classes, &d),
                     FEDC_OK);
    assert_int_equal(fedc_model_new(&m, &arch), FEDC_OK);
    fedc_model_init(m, 42);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] += 0.001f * (float)i; /* make biases nonzero too */
    const float mean[] = {40.5f, -1250.25f, 0.125f};
    const float std[] = {12.0f, 800.5f, 0.0625f};
    assert_int_equal(fedc_model_set_schema(m, with_names ? (char *const *)NAMES3 : NULL,
                                           with_names ? "default" : NULL, mean, std),
                     FEDC_OK);
    return m;
}

static void encode(uint8_t **buf, size_t *len, const fedc_model *m) {
    assert_int_equal(fedc_model_encode(buf, len, m), FEDC_OK);
    assert_non_null(*buf);
    assert_true(*len > 8 + 4);
}

static void expect_same_model(const fedc_model *a, const fedc_model *b) {
    assert_int_equal(a->arch.n_layers, b->arch.n_layers);
    for (int l = 0; l <= a->arch.n_layers; l++)
        assert_int_equal(a->arch.sizes[l], b->arch.sizes[l]);
    assert_int_equal(a->arch.task, b->arch.task);
    assert_int_equal(a->arch.n_classes, b->arch.n_classes);
    assert_int_equal(a->arch.hidden_act, b->arch.hidden_act);
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    const int nf = a->arch.sizes[0];
    assert_memory_equal(a->mean, b->mean, (size_t)nf * sizeof(float));
    assert_memory_equal(a->std, b->std, (size_t)nf * sizeof(float));
    if (a->meta)
        assert_string_equal(a->meta, b->meta);
    else
        assert_null(b->meta);
    if (a->feature_names) {
        assert_non_null(b->feature_names);
        for (int j = 0; j < nf; j++)
            assert_string_equal(a->feature_names[j], b->feature_names[j]);
        assert_string_equal(a->label_name, b->label_name);
    } else {
        assert_null(b->feature_names);
        assert_null(b->label_name);
    }
    /* The views must point into the decoded model's own buffer. */
    for (int l = 0; l < b->arch.n_layers; l++) {
        assert_ptr_equal(b->w[l], b->params + b->w_off[l]);
        assert_ptr_equal(b->b[l], b->params + b->b_off[l]);
    }
}

/* Decodes a copy of buf[0..len) held in an allocation of exactly len bytes. */
static fedc_err decode_exact(fedc_model **out, const uint8_t *buf, size_t len, fedc_diag *d) {
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, buf, len);
    d->msg[0] = 0;
    fedc_err rc = fedc_model_decode(out, copy, len, "m.bin", d);
    free(copy);
    return rc;
}

/* Decoding must fail with rc and a message naming the buffer and containing `needle`. */
static void expect_refused(const uint8_t *buf, size_t len, fedc_err rc, const char *needle) {
    fedc_model *m = (fedc_model *)(uintptr_t)1; /* must be reset to NULL */
    fedc_diag d;
    fedc_err got = decode_exact(&m, buf, len, &d);
    if (got != rc || !strstr(d.msg, needle) || strncmp(d.msg, "m.bin: ", 7) != 0)
        print_message("len %zu: got %s '%s', expected %s with '%s'\n", len, fedc_strerror(got),
                      d.msg, fedc_strerror(rc), needle);
    assert_int_equal(got, rc);
    assert_null(m);
    assert_int_equal(strncmp(d.msg, "m.bin: ", 7), 0);
    assert_non_null(strstr(d.msg, needle));
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Recomputes the trailing CRC so that only a deliberate patch is wrong. */
static void fix_crc(uint8_t *buf, size_t len) {
    put_u32(buf + len - 4, fedc_crc32(buf, len - 4));
}

/* Offset of the u64 parameter count: just before the parameters, the (empty) data recipe's
 * length and the CRC, for a model without a data recipe. */
static size_t n_params_offset(const fedc_model *m, size_t len) {
    return len - 4 - 4 - m->n_params * 4 - 8;
}

static void test_crc32_check_value(void **state) {
    (void)state;
    assert_int_equal(fedc_crc32("123456789", 9), 0xCBF43926u);
    assert_int_equal(fedc_crc32("", 0), 0u);
    /* zlib's crc32 of "The quick brown fox jumps over the lazy dog". */
    const char *fox = "The quick brown fox jumps over the lazy dog";
    assert_int_equal(fedc_crc32(fox, strlen(fox)), 0x414FA339u);
}

static void test_round_trip_every_task(void **state) {
    (void)state;
    const struct {
        fedc_task task;
        int n_classes, names;
    } cases[] = {{FEDC_TASK_BINARY, 2, 1},
                 {FEDC_TASK_BINARY, 2, 0},
                 {FEDC_TASK_MULTICLASS, 4, 1},
                 {FEDC_TASK_REGRESSION, 1, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fedc_model *m = make_model(cases[i].task, cases[i].n_classes, cases[i].names);
        uint8_t *buf = NULL;
        size_t len = 0;
        encode(&buf, &len, m);
        assert_memory_equal(buf, FEDC_MODEL_MAGIC, 8);
        assert_int_equal(get_u32(buf + OFF_VERSION), FEDC_MODEL_VERSION);
        assert_int_equal(get_u32(buf + len - 4), fedc_crc32(buf, len - 4));
        fedc_model *back = NULL;
        fedc_diag d = {{0}};
        assert_int_equal(decode_exact(&back, buf, len, &d), FEDC_OK);
        assert_non_null(back);
        expect_same_model(m, back);
        /* Encoding is deterministic: the decoded model encodes to the same bytes. */
        uint8_t *buf2 = NULL;
        size_t len2 = 0;
        encode(&buf2, &len2, back);
        assert_int_equal(len2, len);
        assert_memory_equal(buf2, buf, len);
        free(buf2);
        free(buf);
        fedc_model_destroy(&back);
        fedc_model_destroy(&m);
        assert_null(m);
    }
}

/* A flat vector of a model of the clients' own: saved and loaded like an MLP (no layers, the
 * count stored), refused by predict, and a corrupt count refused before anything is allocated. */
static void test_flat_model(void **state) {
    (void)state;
    fedc_model *m = NULL, *back = NULL;
    assert_int_equal(fedc_model_new_flat(&m, 3, FEDC_TASK_BINARY, 2, 4), FEDC_OK);
    assert_int_equal(m->arch.n_layers, 0);
    assert_int_equal(m->n_params, 4);
    for (size_t i = 0; i < 4; i++)
        m->params[i] = 0.5f * (float)i - 1.0f;
    char n0[] = "a", n1[] = "b", n2[] = "c";
    char *names[] = {n0, n1, n2};
    const float mean[3] = {1, 2, 3}, sd[3] = {4, 5, 6};
    assert_int_equal(fedc_model_set_schema(m, names, "y", mean, sd), FEDC_OK);
    uint8_t *buf = NULL;
    size_t len = 0;
    encode(&buf, &len, m);
    fedc_diag d = {{0}};
    assert_int_equal(decode_exact(&back, buf, len, &d), FEDC_OK);
    assert_int_equal(back->arch.n_layers, 0);
    assert_int_equal(back->n_params, 4);
    assert_memory_equal(back->params, m->params, 4 * sizeof(float));
    assert_memory_equal(back->std, sd, sizeof sd);
    assert_string_equal(back->feature_names[2], "c");
    float x[3] = {0}, out[1];
    assert_int_equal(fedc_model_predict(out, back, x, 1), FEDC_EINVAL);
    fedc_model_destroy(&back);
    for (size_t k = 0; k < len; k++)
        expect_refused(buf, k, FEDC_EFORMAT, "truncated");
    /* The count sits after the statistics: 2^40 parameters in a file of a few bytes. */
    size_t at = len - 4 - 4 - 4 * 4 - 8;
    uint64_t huge = (uint64_t)1 << 40;
    memcpy(buf + at, &huge, 8);
    expect_refused(buf, len, FEDC_EFORMAT, "parameters of a flat model");
    free(buf);
    fedc_model_destroy(&m);
    assert_int_equal(fedc_model_new_flat(&m, 3, FEDC_TASK_BINARY, 2, 0), FEDC_EINVAL);
    assert_null(m);
}

static void test_save_load(void **state) {
    (void)state;
    char *dir = make_tmpdir();
    assert_non_null(dir);
    char *path = join(dir, "model");
    fedc_model *m = make_model(FEDC_TASK_BINARY, 2, 1), *back = NULL;
    fedc_diag d = {{0}};
    assert_int_equal(fedc_model_save(m, path, &d), FEDC_OK);
    assert_int_equal(fedc_model_load(&back, path, &d), FEDC_OK);
    expect_same_model(m, back);
    fedc_model_destroy(&back);
    /* The file holds exactly the encoding. */
    uint8_t *buf = NULL;
    size_t len = 0, flen = 0;
    encode(&buf, &len, m);
    char *file = read_all(path, &flen);
    assert_non_null(file);
    assert_int_equal(flen, len);
    assert_memory_equal(file, buf, len);
    free(file);
    free(buf);

    /* Loading a missing file or a directory names the path. */
    char *missing = join(dir, "missing");
    back = (fedc_model *)(uintptr_t)1;
    assert_int_equal(fedc_model_load(&back, missing, &d), FEDC_EIO);
    assert_null(back);
    assert_non_null(strstr(d.msg, missing));
    d.msg[0] = 0;
    assert_int_not_equal(fedc_model_load(&back, dir, &d), FEDC_OK);
    assert_null(back);
    assert_non_null(strstr(d.msg, dir));
    free(missing);

    fedc_model_destroy(&m);
    free(path);
    remove_dir(dir);
    free(dir);
}

static void test_every_truncation_refused(void **state) {
    (void)state;
    const int with_names[] = {1, 0};
    for (int t = 0; t < 2; t++) {
        fedc_model *m = make_model(FEDC_TASK_MULTICLASS, 3, with_names[t]);
        uint8_t *buf = NULL;
        size_t len = 0;
        encode(&buf, &len, m);
        for (size_t k = 0; k < len; k++)
            expect_refused(buf, k, FEDC_EFORMAT, "truncated");
        free(buf);
        fedc_model_destroy(&m);
    }
}

static void test_flipped_parameter_byte(void **state) {
    (void)state;
    fedc_model *m = make_model(FEDC_TASK_BINARY, 2, 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    encode(&buf, &len, m);
    const size_t p0 = len - 4 - 4 - m->n_params * 4;
    for (size_t i = p0; i < len; i++) { /* every parameter byte and the CRC itself */
        if (i >= len - 8 && i < len - 4) {
            /* the data recipe's length: a flip is a wrong length, refused before the CRC */
            buf[i] ^= 0x01;
            expect_refused(buf, len, FEDC_EFORMAT, i < len - 5 ? "truncated" : "data recipe of");
            buf[i] ^= 0x01;
            continue;
        }
        for (int bit = 0; bit < 8; bit += 7) {
            buf[i] ^= (uint8_t)(1u << bit);
            expect_refused(buf, len, FEDC_ECHECKSUM, "checksum");
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* And in the standardisation statistics and the names before them. */
    for (size_t i = OFF_SIZES + 4 * ((size_t)m->arch.n_layers + 1); i < p0 - 8; i++) {
        buf[i] ^= 0x01;
        fedc_model *out = NULL;
        fedc_diag d;
        assert_int_not_equal(decode_exact(&out, buf, len, &d), FEDC_OK);
        assert_null(out);
        assert_true(d.msg[0] != 0);
        buf[i] ^= 0x01;
    }
    fedc_model *out = NULL;
    fedc_diag d;
    assert_int_equal(decode_exact(&out, buf, len, &d), FEDC_OK);
    fedc_model_destroy(&out);
    free(buf);
    fedc_model_destroy(&m);
}

/* A 44-byte header announcing a 65536-32768-1 network (over 2^31 parameters) must be refused as
 * truncated before anything is allocated for it: no multi-gigabyte allocation from a tiny file. */
static void test_huge_architecture_in_tiny_file(void **state) {
    (void)state;
    uint8_t buf[44];
    memcpy(buf, FEDC_MODEL_MAGIC, 8);
    const uint32_t fields[] = {
        FEDC_MODEL_VERSION, FEDC_TASK_BINARY, 2, FEDC_ACT_RELU, 2, 65536, 32768, 1, 0};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        put_u32(buf + 8 + 4 * i, fields[i]);
    expect_refused(buf, sizeof buf, FEDC_EFORMAT, "truncated");
}

/* A NaN parameter with a valid checksum is refused, naming the parameter. */
static void test_non_finite_parameter(void **state) {
    (void)state;
    fedc_model *m = make_model(FEDC_TASK_BINARY, 2, 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    encode(&buf, &len, m);
    const size_t p0 = len - 4 - 4 - m->n_params * 4;
    put_u32(buf + p0 + 4 * 3, 0x7FC00000u); /* quiet NaN in parameter 3 */
    fix_crc(buf, len);
    expect_refused(buf, len, FEDC_EFORMAT, "parameter 3 is not a finite number");
    put_u32(buf + p0 + 4 * 3, 0x7F800000u); /* +Inf */
    fix_crc(buf, len);
    expect_refused(buf, len, FEDC_EFORMAT, "not a finite number");
    free(buf);
    fedc_model_destroy(&m);
}

static void test_bad_magic_and_version(void **state) {
    (void)state;
    fedc_model *m = make_model(FEDC_TASK_BINARY, 2, 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    encode(&buf, &len, m);
    for (int i = 0; i < 8; i++) {
        buf[i] ^= 0x40;
        fix_crc(buf, len);
        expect_refused(buf, len, FEDC_EFORMAT, "magic");
        buf[i] ^= 0x40;
    }
    /* Only the version is wrong: the CRC matches the patched bytes. */
    const uint32_t versions[] = {0, FEDC_MODEL_VERSION + 1, 0xFFFFFFFFu};
    for (int i = 0; i < 3; i++) {
        put_u32(buf + OFF_VERSION, versions[i]);
        fix_crc(buf, len);
        char want[64];
        snprintf(want, sizeof want, "version %u is not supported", versions[i]);
        expect_refused(buf, len, FEDC_EFORMAT, want);
    }
    put_u32(buf + OFF_VERSION, FEDC_MODEL_VERSION);
    fix_crc(buf, len);
    fedc_model *out = NULL;
    fedc_diag d;
    assert_int_equal(decode_exact(&out, buf, len, &d), FEDC_OK);
    fedc_model_destroy(&out);
    free(buf);
    fedc_model_destroy(&m);
}

/* The data recipe (version 2): carried byte for byte; a version 1 file (without it) still reads;
 * a recipe length beyond the limit or past the end, and a NUL inside it, are refused. */
static void test_data_recipe(void **state) {
    (void)state;
    fedc_model *m = make_model(FEDC_TASK_BINARY, 2, 1);
    const char *recipe = "{\"features\":{\"time\":\"TX_DATETIME\"},\"encoding\":{}}";
    assert_int_equal(fedc_model_set_meta(m, recipe), FEDC_OK);
    assert_string_equal(m->meta, recipe);
    uint8_t *buf = NULL;
    size_t len = 0;
    encode(&buf, &len, m);
    fedc_model *back = NULL;
    fedc_diag d = {{0}};
    assert_int_equal(decode_exact(&back, buf, len, &d), FEDC_OK);
    expect_same_model(m, back);
    fedc_model_destroy(&back);
    size_t rl = strlen(recipe), at = len - 4 - rl - 4; /* offset of the recipe's length */
    assert_int_equal(get_u32(buf + at), rl);
    /* a NUL inside the recipe */
    buf[at + 4 + 3] = 0;
    fix_crc(buf, len);
    expect_refused(buf, len, FEDC_EFORMAT, "NUL byte in the data recipe");
    /* a length beyond the limit, and one past the end of the file */
    put_u32(buf + at, FEDC_MODEL_MAX_META + 1);
    fix_crc(buf, len);
    expect_refused(buf, len, FEDC_EFORMAT, "data recipe of");
    put_u32(buf + at, (uint32_t)rl + 5);
    fix_crc(buf, len);
    expect_refused(buf, len, FEDC_EFORMAT, "truncated");
    free(buf);
    /* version 1: the same bytes without the recipe's length, read with no recipe */
    assert_int_equal(fedc_model_set_meta(m, NULL), FEDC_OK);
    assert_null(m->meta);
    encode(&buf, &len, m);
    assert_int_equal(get_u32(buf + len - 8), 0);
    memmove(buf + len - 8, buf + len - 4, 4);
    len -= 4;
    put_u32(buf + OFF_VERSION, 1);
    fix_crc(buf, len);
    assert_int_equal(decode_exact(&back, buf, len, &d), FEDC_OK);
    expect_same_model(m, back);
    fedc_model_destroy(&back);
    free(buf);
    /* setting: a copy, replaced and cleared; too long refused */
    char *big = malloc(FEDC_MODEL_MAX_META + 2);
    assert_non_null(big);
    memset(big, 'x', FEDC_MODEL_MAX_META + 1);
    big[FEDC_MODEL_MAX_META + 1] = 0;
    assert_int_equal(fedc_model_set_meta(m, big), FEDC_EINVAL);
    big[FEDC_MODEL_MAX_META] = 0;
    assert_int_equal(fedc_model_set_meta(m, big), FEDC_OK);
    big[0] = 'y';
    assert_int_equal(m->meta[0], 'x');
    free(big);
    fedc_model_destroy(&m);
}

static void test_inconsistent_sizes(void **state) {
    (void)state;
    fedc_model *m = make_model(FEDC_TASK_BINARY, 2, 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    encode(&buf, &len, m);
    const size_t np = n_params_offset(m, len);
    assert_int_equal(get_u32(buf + np), (uint32_t)m->n_params);
    assert_int_equal(get_u32(buf + np + 4), 0);

    /* One parameter more than the architecture has, and a count in the high word. */
    put_u32(buf + np, (uint32_t)m->n_params + 1);
    fix_crc(buf, len);
    char want[64];
    snprintf(want, sizeof want, "%zu parameters stored", m->n_params + 1);
    expect_refused(buf, len, FEDC_EFORMAT, want);
    put_u32(buf + np, (uint32_t)m->n_params);
    put_u32(buf + np + 4, 1);
    fix_crc(buf, len);
    expect_refused(buf, len, FEDC_EFORMAT, "parameters stored");
    put_u32(buf + np + 4, 0);

    /* Two outputs for a binary task. */
    const int n_layers = m->arch.n_layers;
    assert_int_equal(get_u32(buf + OFF_N_LAYERS), (uint32_t)n_layers);
    put_u32(buf + OFF_SIZES + 4 * (size_t)n_layers, 2);
    fix_crc(buf, len);
    expect_refused(buf, len, FEDC_EFORMAT, "inconsistent architecture");
    put_u32(buf + OFF_SIZES + 4 * (size_t)n_layers, 1);

    /* Layer counts and widths out of range. */
    put_u32(buf + OFF_N_LAYERS, FEDC_MAX_LAYERS + 1);
    fix_crc(buf, len);
    expect_refused(buf, len, FEDC_EFORMAT, "out of range");
    put_u32(buf + OFF_N_LAYERS, (uint32_t)n_layers);
    put_u32(buf + OFF_SIZES, FEDC_MAX_WIDTH + 1);
    fix_crc(buf, len);
    expect_refused(buf, len, FEDC_EFORMAT, "out of range");
    put_u32(buf + OFF_SIZES, 3);

    /* A zero or NaN deviation would divide by zero when standardising (the last feature's
     * deviation sits just before the parameter count). */
    const size_t std_last = np - 4;
    const uint32_t saved = get_u32(buf + std_last);
    const uint32_t bad_std[] = {0x00000000u /* 0.0f */, 0x7FC00000u /* NaN */,
                                0xBF800000u /* -1.0f */};
    for (int i = 0; i < 3; i++) {
        put_u32(buf + std_last, bad_std[i]);
        fix_crc(buf, len);
        expect_refused(buf, len, FEDC_EFORMAT, "invalid standardisation statistics for feature 3");
    }
    put_u32(buf + std_last, saved);

    /* Trailing bytes after a valid model. */
    fix_crc(buf, len);
    uint8_t *longer = malloc(len + 3);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    memcpy(longer + len, "xyz", 3);
    expect_refused(longer, len + 3, FEDC_EFORMAT, "3 unexpected bytes");
    free(longer);

    fedc_model *out = NULL;
    fedc_diag d;
    assert_int_equal(decode_exact(&out, buf, len, &d), FEDC_OK);
    fedc_model_destroy(&out);
    free(buf);
    fedc_model_destroy(&m);
}

static void test_oversized_name_length(void **state) {
    (void)state;
    fedc_model *m = make_model(FEDC_TASK_BINARY, 2, 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    encode(&buf, &len, m);
    /* After the sizes comes the name flag, then the first name's length. */
    const size_t flag = OFF_SIZES + 4 * ((size_t)m->arch.n_layers + 1), first = flag + 4;
    assert_int_equal(get_u32(buf + flag), 1);
    assert_int_equal(get_u32(buf + first), strlen(NAMES3[0]));
    const uint32_t huge[] = {FEDC_MODEL_MAX_NAME + 1, 0x7FFFFFFFu, 0xFFFFFFFFu};
    for (int i = 0; i < 3; i++) {
        put_u32(buf + first, huge[i]);
        fix_crc(buf, len);
        expect_refused(buf, len, FEDC_EFORMAT, "exceeds");
    }
    /* Within the cap but past the end of the buffer. */
    put_u32(buf + first, FEDC_MODEL_MAX_NAME);
    fix_crc(buf, len);
    expect_refused(buf, len, FEDC_EFORMAT, "truncated");
    put_u32(buf + first, (uint32_t)strlen(NAMES3[0]));
    /* A name flag other than 0 or 1. */
    put_u32(buf + flag, 2);
    fix_crc(buf, len);
    expect_refused(buf, len, FEDC_EFORMAT, "name flag");
    free(buf);
    fedc_model_destroy(&m);
}

/* Lists dir: the number of entries other than . and .., and whether one is named `name`. */
static int count_entries(const char *dir, const char *name, int *found) {
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    int n = 0;
    *found = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        *found |= strcmp(e->d_name, name) == 0;
    }
    closedir(dp);
    return n;
}

static void test_write_atomic(void **state) {
    (void)state;
    char *dir = make_tmpdir();
    assert_non_null(dir);
    char *path = join(dir, "out.bin");
    fedc_diag d = {{0}};
    int found = 0;

    assert_int_equal(fedc_write_atomic(path, "first version", 13, &d), FEDC_OK);
    size_t len = 0;
    char *got = read_all(path, &len);
    assert_non_null(got);
    assert_int_equal(len, 13);
    assert_memory_equal(got, "first version", 13);
    free(got);
    assert_int_equal(count_entries(dir, "out.bin", &found), 1);
    assert_true(found);

    /* Replacing a longer file with a shorter one leaves exactly the new bytes, no temp file. */
    assert_int_equal(fedc_write_atomic(path, "2nd", 3, &d), FEDC_OK);
    got = read_all(path, &len);
    assert_non_null(got);
    assert_int_equal(len, 3);
    assert_memory_equal(got, "2nd", 3);
    free(got);
    assert_int_equal(count_entries(dir, "out.bin", &found), 1);
    assert_true(found);

    /* An empty write gives an empty file. */
    assert_int_equal(fedc_write_atomic(path, "", 0, &d), FEDC_OK);
    got = read_all(path, &len);
    assert_non_null(got);
    assert_int_equal(len, 0);
    free(got);

    /* A path in a directory that does not exist fails, names the path, leaves nothing behind. */
    char *sub = join(dir, "no-such-dir");
    char *bad = join(sub, "model");
    fedc_model *m = make_model(FEDC_TASK_BINARY, 2, 0);
    d.msg[0] = 0;
    assert_int_equal(fedc_model_save(m, bad, &d), FEDC_EIO);
    assert_non_null(strstr(d.msg, bad));
    d.msg[0] = 0;
    assert_int_equal(fedc_write_atomic(bad, "x", 1, &d), FEDC_EIO);
    assert_non_null(strstr(d.msg, bad));
    assert_false(exists(sub));
    assert_int_equal(count_entries(dir, "out.bin", &found), 1);
    fedc_model_destroy(&m);

    free(sub);
    free(bad);
    free(path);
    remove_dir(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_check_value),
        cmocka_unit_test(test_round_trip_every_task),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_flat_model),
        cmocka_unit_test(test_every_truncation_refused),
        cmocka_unit_test(test_flipped_parameter_byte),
        cmocka_unit_test(test_bad_magic_and_version),
        cmocka_unit_test(test_huge_architecture_in_tiny_file),
        cmocka_unit_test(test_non_finite_parameter),
        cmocka_unit_test(test_inconsistent_sizes),
        cmocka_unit_test(test_data_recipe),
        cmocka_unit_test(test_oversized_name_length),
        cmocka_unit_test(test_write_atomic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
