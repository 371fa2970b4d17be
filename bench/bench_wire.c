/* bench_wire: what it costs to put a weight vector on the wire, three ways, for 100k and 10M
 * parameters: (1) a protobuf `bytes` field of little-endian floats inside the envelope (what
 * proto/fedc.proto uses), (2) a protobuf packed `repeated float`, (3) a raw ZeroMQ frame after a
 * small envelope (modelled as a memcpy of the bytes, the least a copying send does). Each is timed
 * for encode and for decode including the finite-value check a receiver must do; sizes are the
 * encoded bytes against the raw float32 size. Medians of 7 runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedc/clock.h"
#include "bench_wire.pb-c.h"
#include "fedc/codec.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define RUNS 7
static double median(double *v) {
    qsort(v, RUNS, sizeof(double), cmp_double);
    return v[RUNS / 2];
}

static int all_finite(const float *v, size_t n) {
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= isfinite(v[i]) != 0;
    return ok;
}

int main(void) {
    static const size_t sizes[] = {100000, 10000000};
    printf("# bench_wire: encode/decode of one weight vector, medians of %d runs\n", RUNS);
    for (size_t s = 0; s < 2; s++) {
        const size_t n = sizes[s];
        float *w = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
        uint8_t *store = malloc(4 * n), *frame = malloc(4 * n);
        if (!w || !back || !store || !frame)
            return 1;
        for (size_t i = 0; i < n; i++)
            w[i] = sinf((float)i) * 0.1f;
        const uint8_t run[FEDC_RUN_ID_BYTES] = {0};
        fedc_msg_expect x = {.run_id = run, .round = 1, .n_params = n, .max_bytes = 8 * n + 4096};
        double te[RUNS], td[RUNS];
        size_t bytes = 0;

        /* (1) bytes field */
        for (int r = 0; r < RUNS; r++) {
            double t0 = fedc_clock_s();
            Fedc__Envelope e = FEDC__ENVELOPE__INIT;
            Fedc__FitRes f = FEDC__FIT_RES__INIT;
            Fedc__Tensor t = FEDC__TENSOR__INIT;
            e.version = FEDC_PROTOCOL_VERSION;
            e.run_id.data = (uint8_t *)run;
            e.run_id.len = FEDC_RUN_ID_BYTES;
            e.round = 1;
            fedc_tensor_pack(&t, store, w, n);
            f.update = &t;
            f.n_examples = 1;
            e.body_case = FEDC__ENVELOPE__BODY_FIT_RES;
            e.fit_res = &f;
            uint8_t *buf = NULL;
            if (fedc_msg_pack(&buf, &bytes, &e))
                return 1;
            double t1 = fedc_clock_s();
            Fedc__Envelope *got = NULL;
            fedc_diag d;
            if (fedc_msg_unpack(&got, buf, bytes, &x, &d)) {
                fprintf(stderr, "bench_wire: %s\n", d.msg);
                return 1;
            }
            fedc_tensor_unpack(back, got->fit_res->update, NULL);
            double t2 = fedc_clock_s();
            fedc_msg_free(&got);
            free(buf);
            te[r] = t1 - t0;
            td[r] = t2 - t1;
        }
        printf("wire params=%zu encoding=protobuf_bytes bytes=%zu overhead=%.4f%% encode_ms=%.3f "
               "decode_ms=%.3f\n",
               n, bytes, 100.0 * ((double)bytes / (4.0 * n) - 1.0), 1e3 * median(te),
               1e3 * median(td));

        /* (2) packed repeated float */
        for (int r = 0; r < RUNS; r++) {
            double t0 = fedc_clock_s();
            Fedcbench__Packed p = FEDCBENCH__PACKED__INIT;
            p.n_values = n;
            p.values = w;
            bytes = fedcbench__packed__get_packed_size(&p);
            uint8_t *buf = malloc(bytes);
            if (!buf)
                return 1;
            fedcbench__packed__pack(&p, buf);
            double t1 = fedc_clock_s();
            Fedcbench__Packed *got = fedcbench__packed__unpack(NULL, bytes, buf);
            if (!got || got->n_values != n || !all_finite(got->values, n))
                return 1;
            memcpy(back, got->values, n * sizeof(float));
            double t2 = fedc_clock_s();
            fedcbench__packed__free_unpacked(got, NULL);
            free(buf);
            te[r] = t1 - t0;
            td[r] = t2 - t1;
        }
        printf("wire params=%zu encoding=protobuf_packed_float bytes=%zu overhead=%.4f%% "
               "encode_ms=%.3f decode_ms=%.3f\n",
               n, bytes, 100.0 * ((double)bytes / (4.0 * n) - 1.0), 1e3 * median(te),
               1e3 * median(td));

        /* (3) raw frame: a copy out, a copy in, the finite check */
        for (int r = 0; r < RUNS; r++) {
            double t0 = fedc_clock_s();
            memcpy(frame, w, 4 * n);
            double t1 = fedc_clock_s();
            memcpy(back, frame, 4 * n);
            if (!all_finite(back, n))
                return 1;
            double t2 = fedc_clock_s();
            te[r] = t1 - t0;
            td[r] = t2 - t1;
        }
        bytes = 4 * n + 32; /* plus a small envelope describing the frame */
        printf("wire params=%zu encoding=raw_frame bytes=%zu overhead=%.4f%% encode_ms=%.3f "
               "decode_ms=%.3f\n",
               n, bytes, 100.0 * ((double)bytes / (4.0 * n) - 1.0), 1e3 * median(te),
               1e3 * median(td));
        free(w);
        free(back);
        free(store);
        free(frame);
    }
    return 0;
}
