/* Streamed tensors on the wire: Chunk and ChunkReq survive encode / decode through the typed API,
 * a streamed FitRes / FitIns / SaMasked carries its count and nothing else, and every malformed
 * slice (unknown stream, unaligned or out-of-range offset, a count over the chunk bound, a short
 * middle chunk, a missing or odd raw frame, a non-finite float) is refused with a reason naming
 * it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/codec.h"

static const uint8_t RUN[FEDC_RUN_ID_BYTES] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};

#define N_PARAMS 100 /* the model of these tests: 6 full chunks of 16 and a last one of 4 */

static fedc_msg_expect expect(void) {
    fedc_msg_expect x = {0};
    x.run_id = RUN;
    x.round = 3;
    x.n_params = N_PARAMS;
    x.chunk_values = 32;
    return x;
}

/* Encodes m, decodes it with x and the raw frame m names; the decoded view goes to *view (its
 * storage to *env, freed by the caller) on success. */
static fedc_err through(const fedc_msg *m, fedc_msg_expect x, fedc_diag *d, fedc_msg *view,
                        Fedc__Envelope **env) {
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fedc_msg_encode(&buf, &len, m, d), FEDC_OK);
    size_t raw_len = 0;
    const void *raw = fedc_msg_raw(m, &raw_len);
    x.raw = raw;
    x.raw_len = raw ? raw_len : 0;
    d->msg[0] = 0;
    Fedc__Envelope *e = NULL;
    fedc_err rc = fedc_msg_unpack(&e, buf, len, &x, d);
    free(buf);
    if (rc) {
        assert_null(e);
        return rc;
    }
    void *mem = NULL;
    assert_int_equal(fedc_msg_view(view, &mem, e, raw, x.raw_len, d), FEDC_OK);
    free(mem);
    *env = e;
    return FEDC_OK;
}

static void refused(const fedc_msg *m, fedc_msg_expect x, fedc_err want, const char *needle) {
    fedc_diag d;
    fedc_msg v;
    Fedc__Envelope *e = NULL;
    fedc_err rc = through(m, x, &d, &v, &e);
    fedc_msg_free(&e);
    if (rc != want || !strstr(d.msg, needle))
        fail_msg("expected %s with '%s', got %s: '%s'", fedc_strerror(want), needle,
                 fedc_strerror(rc), d.msg);
}

static float vals[N_PARAMS + 32]; /* room past the model for out-of-range chunks */

static fedc_msg chunk(uint32_t stream, uint64_t offset, uint64_t count) {
    fedc_msg m;
    memset(&m, 0, sizeof m);
    m.kind = FEDC_MSG_CHUNK;
    m.run_id = RUN;
    m.round = 3;
    m.chunk.stream = stream;
    m.chunk.counter = 3;
    m.chunk.offset = offset;
    m.chunk.total = N_PARAMS;
    m.chunk.count = count;
    m.chunk.values = vals + offset;
    return m;
}

static fedc_msg req(uint32_t stream, uint64_t offset, uint64_t count) {
    fedc_msg m;
    memset(&m, 0, sizeof m);
    m.kind = FEDC_MSG_CHUNK_REQ;
    m.run_id = RUN;
    m.round = 3;
    m.chunk_req.stream = stream;
    m.chunk_req.counter = 77;
    m.chunk_req.offset = offset;
    m.chunk_req.count = count;
    return m;
}

static void test_chunk_round_trip(void **state) {
    (void)state;
    for (int i = 0; i < N_PARAMS; i++)
        vals[i] = (float)i * 0.5f - 3.0f;
    fedc_diag d;
    fedc_msg v;
    Fedc__Envelope *e = NULL;
    /* A middle chunk and the tensor's last, shorter one. */
    fedc_msg m = chunk(FEDC_STREAM_UPDATE, 32, 32);
    assert_int_equal(through(&m, expect(), &d, &v, &e), FEDC_OK);
    assert_int_equal(v.kind, FEDC_MSG_CHUNK);
    assert_int_equal(v.chunk.stream, FEDC_STREAM_UPDATE);
    assert_int_equal(v.chunk.counter, 3);
    assert_int_equal(v.chunk.offset, 32);
    assert_int_equal(v.chunk.total, N_PARAMS);
    assert_int_equal(v.chunk.count, 32);
    assert_memory_equal(v.chunk.values, vals + 32, 32 * 4);
    fedc_msg_free(&e);
    m = chunk(FEDC_STREAM_FIT, 96, 4);
    assert_int_equal(through(&m, expect(), &d, &v, &e), FEDC_OK);
    assert_int_equal(v.chunk.count, 4);
    fedc_msg_free(&e);
    /* Masked values are uint32: any bit pattern passes, and the total is the session's. */
    uint32_t masked[16];
    for (int i = 0; i < 16; i++)
        masked[i] = 0x7fc00000u + (uint32_t)i; /* NaN patterns as floats */
    m = chunk(FEDC_STREAM_MASKED, 16, 16);
    m.chunk.values = masked;
    m.chunk.total = 1000;
    assert_int_equal(through(&m, expect(), &d, &v, &e), FEDC_OK);
    assert_int_equal(v.chunk.total, 1000);
    fedc_msg_free(&e);

    m = req(FEDC_STREAM_MASKED, 48, 32);
    assert_int_equal(through(&m, expect(), &d, &v, &e), FEDC_OK);
    assert_int_equal(v.kind, FEDC_MSG_CHUNK_REQ);
    assert_int_equal(v.chunk_req.stream, FEDC_STREAM_MASKED);
    assert_int_equal(v.chunk_req.counter, 77);
    assert_int_equal(v.chunk_req.offset, 48);
    assert_int_equal(v.chunk_req.count, 32);
    fedc_msg_free(&e);
    assert_string_equal(fedc_msg_kind_name(FEDC_MSG_CHUNK), "chunk");
    assert_string_equal(fedc_msg_kind_name(FEDC_MSG_CHUNK_REQ), "chunk_req");
    assert_string_equal(fedc_stream_name(FEDC_STREAM_MASKED), "masked");
}

static void test_chunk_refused(void **state) {
    (void)state;
    for (int i = 0; i < N_PARAMS; i++)
        vals[i] = 1.0f;
    fedc_msg m = chunk(7, 0, 16);
    refused(&m, expect(), FEDC_ERANGE, "stream 7 unknown");
    m = chunk(0, 0, 16);
    refused(&m, expect(), FEDC_ERANGE, "stream 0 unknown");
    m = chunk(FEDC_STREAM_UPDATE, 8, 16);
    refused(&m, expect(), FEDC_EFORMAT, "offset 8 is not a multiple of 16");
    m = chunk(FEDC_STREAM_UPDATE, 0, 48);
    refused(&m, expect(), FEDC_ERANGE, "48 values, expected 1..32");
    /* Past the model's end; a total that is not the model's. */
    m = chunk(FEDC_STREAM_UPDATE, 96, 4);
    m.chunk.total = 90;
    refused(&m, expect(), FEDC_EMISMATCH, "of a tensor of 90 (expected 100)");
    m = chunk(FEDC_STREAM_UPDATE, 112, 4);
    refused(&m, expect(), FEDC_ERANGE, "beyond the model's 100");
    /* A middle chunk that is not a whole number of blocks. */
    m = chunk(FEDC_STREAM_UPDATE, 16, 20);
    refused(&m, expect(), FEDC_EFORMAT, "not a multiple of 16");
    /* No values at all. */
    m = chunk(FEDC_STREAM_UPDATE, 16, 0);
    m.chunk.values = NULL;
    refused(&m, expect(), FEDC_EMISMATCH, "raw frame of 0 bytes");
    vals[20] = INFINITY;
    m = chunk(FEDC_STREAM_UPDATE, 16, 16);
    refused(&m, expect(), FEDC_ERANGE, "value 20 is not finite");
    /* A receiver that checks an update's values in its own pass (update_finite_here: the
     * coordinator's addition) gets the chunk as it is; the weights' streams are still checked. */
    {
        fedc_msg_expect x = expect();
        x.update_finite_here = 1;
        fedc_diag d;
        fedc_msg view;
        Fedc__Envelope *env = NULL;
        assert_int_equal(through(&m, x, &d, &view, &env), FEDC_OK);
        assert_true(isinf(((const float *)view.chunk.values)[4]));
        fedc_msg_free(&env);
        /* The initial values of a Join (stream INIT) are checked as they are copied, too;
         * elsewhere the codec checks them. */
        m = chunk(FEDC_STREAM_INIT, 16, 16);
        assert_int_equal(through(&m, x, &d, &view, &env), FEDC_OK);
        fedc_msg_free(&env);
        refused(&m, expect(), FEDC_ERANGE, "value 20 is not finite");
        m = chunk(FEDC_STREAM_FIT, 16, 16);
        refused(&m, x, FEDC_ERANGE, "value 20 is not finite");
    }
    vals[20] = 1.0f;
    /* Masked totals are the receiver's to check, but not beyond the largest model. */
    m = chunk(FEDC_STREAM_MASKED, 0, 16);
    m.chunk.total = FEDC_MAX_PARAMS + 16;
    refused(&m, expect(), FEDC_EMISMATCH, "chunk: values 0..16");

    m = req(9, 0, 16);
    refused(&m, expect(), FEDC_ERANGE, "chunk_req: stream 9 unknown");
    m = req(FEDC_STREAM_FIT, 4, 16);
    refused(&m, expect(), FEDC_EFORMAT, "chunk_req: offset 4");
    m = req(FEDC_STREAM_FIT, 0, 0);
    refused(&m, expect(), FEDC_ERANGE, "chunk_req: 0 values");
    m = req(FEDC_STREAM_FIT, 0, 33);
    refused(&m, expect(), FEDC_ERANGE, "33 values, expected 1..32");
    m = req(FEDC_STREAM_EVAL, 96, 32);
    refused(&m, expect(), FEDC_ERANGE, "beyond the model's 100");
    m = req(FEDC_STREAM_MASKED, UINT64_MAX - 15, 16);
    refused(&m, expect(), FEDC_ERANGE, "beyond the largest model");
}

/* A streamed tensor: the count travels, the values do not (neither inline nor as a raw frame). */
static void test_streamed_tensors(void **state) {
    (void)state;
    fedc_diag d;
    fedc_msg v;
    Fedc__Envelope *e = NULL;
    fedc_msg m;
    memset(&m, 0, sizeof m);
    m.kind = FEDC_MSG_FIT_RES;
    m.run_id = RUN;
    m.round = 3;
    m.fit_res.update.count = N_PARAMS;
    m.fit_res.update.streamed = 1;
    m.fit_res.n_examples = 10;
    size_t raw_len = 1;
    assert_null(fedc_msg_raw(&m, &raw_len));
    assert_int_equal(raw_len, 0);
    assert_int_equal(through(&m, expect(), &d, &v, &e), FEDC_OK);
    assert_true(v.fit_res.update.streamed);
    assert_int_equal(v.fit_res.update.count, N_PARAMS);
    assert_null(v.fit_res.update.data);
    fedc_msg_free(&e);

    m.fit_res.update.count = N_PARAMS - 1;
    refused(&m, expect(), FEDC_EMISMATCH, "expected 100 values, got 99");

    /* A streamed tensor with a raw frame after it is refused: values travel in chunks only. */
    uint8_t *buf = NULL;
    size_t len = 0;
    m.fit_res.update.count = N_PARAMS;
    assert_int_equal(fedc_msg_encode(&buf, &len, &m, &d), FEDC_OK);
    fedc_msg_expect x = expect();
    x.raw = (const uint8_t *)vals;
    x.raw_len = 4 * N_PARAMS;
    assert_int_equal(fedc_msg_unpack(&e, buf, len, &x, &d), FEDC_EMISMATCH);
    assert_non_null(strstr(d.msg, "streamed tensor"));
    free(buf);

    memset(&m, 0, sizeof m);
    m.kind = FEDC_MSG_SA_MASKED;
    m.run_id = RUN;
    m.round = 3;
    m.sa_masked.counter = 5;
    m.sa_masked.count = 1000;
    m.sa_masked.streamed = 1;
    assert_int_equal(through(&m, expect(), &d, &v, &e), FEDC_OK);
    assert_true(v.sa_masked.streamed);
    assert_int_equal(v.sa_masked.count, 1000);
    assert_null(v.sa_masked.values);
    fedc_msg_free(&e);
    m.sa_masked.count = 0;
    refused(&m, expect(), FEDC_EMISMATCH, "sa_masked: streamed, 0 values");
}

static void test_chunk_values(void **state) {
    (void)state;
    /* 4 MiB by default; what a small --max-msg-mb leaves, in whole 16-value blocks. */
    assert_int_equal(fedc_chunk_values(0), FEDC_CHUNK_DEFAULT_BYTES / 4);
    assert_int_equal(fedc_chunk_values((size_t)256 << 20), FEDC_CHUNK_DEFAULT_BYTES / 4);
    assert_int_equal(fedc_chunk_values((size_t)1 << 20), ((1u << 20) - FEDC_CHUNK_MARGIN) / 4);
    assert_int_equal(fedc_chunk_values((1u << 20) - FEDC_CHUNK_MARGIN) % FEDC_CHUNK_ALIGN, 0);
    assert_int_equal(fedc_chunk_values(FEDC_CHUNK_MARGIN + 100), 16);
    assert_int_equal(fedc_chunk_values(10), 16);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_round_trip),
        cmocka_unit_test(test_chunk_refused),
        cmocka_unit_test(test_streamed_tensors),
        cmocka_unit_test(test_chunk_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
