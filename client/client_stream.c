/* Streamed tensors at the client (docs/architecture.md, "Wire protocol"): global weights larger
 * than one chunk are pulled (a window of STREAM_WINDOW requests) into the vector the instruction
 * would have been read into (job.global, or while a training runs a vector of its own:
 * cl_weights_dest), and the instruction is then handled as if it had carried them; our own update
 * or masked input, when larger than FEDC_INLINE_MAX_BYTES, is announced without its values and
 * served from the vector we keep (job.buf: the update, or the masked input in its place) chunk by
 * chunk as the coordinator asks. No copy of a model-sized vector is made for either direction. */
#include "client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/fault.h"

/* Chunk requests we keep outstanding while pulling weights. */
#define STREAM_WINDOW 2

/* Values per chunk: what the coordinator's and our own message bound allow. */
static uint64_t chunk_values(const cl *c) {
    uint64_t a = fedc_chunk_values(c->coord_max_msg), b = fedc_chunk_values(c->cfg->max_msg);
    return a < b ? a : b;
}

int cl_stream_up(const cl *c, size_t values) {
    return 4 * values > FEDC_INLINE_MAX_BYTES ||
           (c->coord_max_msg && 4 * values + FEDC_CHUNK_MARGIN > c->coord_max_msg);
}

void cl_stream_offer(cl *c, uint32_t stream, uint32_t round, uint64_t counter, const void *data,
                     uint64_t total) {
    c->up_stream = stream;
    c->up_round = round;
    c->up_counter = counter;
    c->up_data = data;
    c->up_total = total;
}

void cl_stream_withdraw(cl *c) {
    c->up_stream = 0;
    c->up_data = NULL;
}

static void dl_request(cl *c) {
    uint64_t chunk = chunk_values(c);
    while (c->dl_on && c->dl_inflight < STREAM_WINDOW && c->dl_next < c->dl_total) {
        fedc_msg m;
        cl_env_init(c, &m, FEDC_MSG_CHUNK_REQ, c->dl_round);
        m.chunk_req.stream = c->dl_stream;
        m.chunk_req.counter = c->dl_round;
        m.chunk_req.offset = c->dl_next;
        uint64_t left = c->dl_total - c->dl_next;
        m.chunk_req.count = left < chunk ? left : chunk;
        if (cl_send_msg(c, &m))
            return; /* logged; the instruction is repeated or the round goes on without us */
        c->dl_next += m.chunk_req.count;
        c->dl_inflight++;
    }
}

int cl_stream_instruction(cl *c, const fedc_msg *e) {
    int fit = e->kind == FEDC_MSG_FIT_INS;
    const fedc_tensor *w = fit ? &e->fit_ins.weights : &e->evaluate_ins.weights;
    float *dest = w->count == c->n_params ? cl_weights_dest(c, fit) : NULL;
    if (w->count == c->n_params && !dest) {
        cl_logm(c, "%s: out of memory for the streamed weights; ignored",
                fedc_msg_kind_name(e->kind));
        return -1;
    }
    if (w->count != c->n_params) {
        cl_logm(c, "%s with %llu streamed weights, the model has %zu; ignored",
                fedc_msg_kind_name(e->kind), (unsigned long long)w->count, c->n_params);
        return -1;
    }
    /* The statistics now (they come inline); the instruction is kept with them pointing at ours,
     * and handled once the weights are in. */
    size_t nm = fit ? e->fit_ins.n_mean : e->evaluate_ins.n_mean;
    const float *mean = fit ? e->fit_ins.mean : e->evaluate_ins.mean;
    const float *std = fit ? e->fit_ins.std : e->evaluate_ins.std;
    if (nm && cl_apply_stats(c, mean, std)) {
        cl_logm(c, "out of memory standardising the data");
        return -1;
    }
    c->dl_msg = *e;
    c->dl_msg.run_id = c->run_id;
    if (fit) {
        c->dl_msg.fit_ins.mean = nm ? c->mean : NULL;
        c->dl_msg.fit_ins.std = nm ? c->std : NULL;
    } else {
        c->dl_msg.evaluate_ins.mean = nm ? c->mean : NULL;
        c->dl_msg.evaluate_ins.std = nm ? c->std : NULL;
    }
    c->dl_on = 1;
    c->dl_stream = fit ? FEDC_STREAM_FIT : FEDC_STREAM_EVAL;
    c->dl_round = e->round;
    c->dl_total = w->count;
    c->dl_next = c->dl_recv = 0;
    c->dl_inflight = 0;
    c->dl_buf = dest;
    dl_request(c);
    return -1;
}

/* A chunk of the weights we are pulling: stored; the instruction is handled after the last. */
static int on_weights_chunk(cl *c, const fedc_msg *e) {
    const fedc_chunk *k = &e->chunk;
    uint64_t chunk = chunk_values(c), left = c->dl_total - c->dl_recv;
    if (!c->dl_on || k->stream != c->dl_stream || k->counter != c->dl_round ||
        e->round != c->dl_round || k->offset != c->dl_recv || k->total != c->dl_total ||
        k->count != (left < chunk ? left : chunk) || c->dl_inflight < 1) {
        cl_logm(c, "a %s chunk of values %llu..%llu that we did not ask for; ignored",
                fedc_stream_name(k->stream), (unsigned long long)k->offset,
                (unsigned long long)(k->offset + k->count));
        return -1;
    }
    fedc_tensor t = {k->count, k->values, 0};
    fedc_tensor_read(c->dl_buf + k->offset, &t);
    c->dl_recv += k->count;
    c->dl_inflight--;
    if (c->dl_recv < c->dl_total) {
        dl_request(c);
        return -1;
    }
    c->dl_on = 0;
    fedc_msg m = c->dl_msg;
    fedc_tensor whole = {c->dl_total, c->dl_buf, 0};
    if (m.kind == FEDC_MSG_FIT_INS) {
        m.fit_ins.weights = whole;
        return cl_on_fit_ins(c, &m);
    }
    m.evaluate_ins.weights = whole;
    return cl_on_evaluate_ins(c, &m);
}

/* The coordinator asks for a slice of what we announced. */
static void on_req(cl *c, const fedc_msg *e) {
    const fedc_chunk_req *r = &e->chunk_req;
    if (!c->up_stream || r->stream != c->up_stream || r->counter != c->up_counter ||
        e->round != c->up_round || r->offset >= c->up_total || r->count > c->up_total - r->offset) {
        cl_logm(c, "the coordinator asked for %s values %llu..%llu we do not hold; ignored",
                fedc_stream_name(r->stream), (unsigned long long)r->offset,
                (unsigned long long)(r->offset + r->count));
        fedc_msg m;
        cl_env_init(c, &m, FEDC_MSG_ERROR, e->round);
        m.error.code = FEDC_EMISMATCH;
        m.error.kind = FEDC_ERROR_NO_VALUES;
        m.error.reason = "chunk_req: we no longer hold these values (a newer instruction replaced "
                         "them)";
        (void)cl_send_msg(c, &m);
        return;
    }
    fedc_msg m;
    cl_env_init(c, &m, FEDC_MSG_CHUNK, c->up_round);
    m.chunk.stream = c->up_stream;
    m.chunk.counter = c->up_counter;
    m.chunk.offset = r->offset;
    m.chunk.total = c->up_total;
    m.chunk.count = r->count;
    m.chunk.values = (const uint8_t *)c->up_data + 4 * (size_t)r->offset;
    (void)cl_send_msg(c, &m);
    if (fedc_fault_point("chunk-rogue", c->up_round)) {
        /* Test only: a chunk nobody asked for (past the end); the coordinator must refuse it
         * and go on. */
        cl_logm(c, "misbehaving (fault injection): sending a chunk that was not asked for");
        m.chunk.offset = c->up_total > 16 ? (c->up_total - 1) / 16 * 16 : 0;
        m.chunk.count = c->up_total - m.chunk.offset;
        m.chunk.values = (const uint8_t *)c->up_data + 4 * (size_t)m.chunk.offset;
        (void)cl_send_msg(c, &m);
    }
    fedc_fault_point("chunk-sent", c->up_round);
}

int cl_stream_on_msg(cl *c, const fedc_msg *e) {
    if (e->kind == FEDC_MSG_CHUNK_REQ) {
        on_req(c, e);
        return -1;
    }
    return on_weights_chunk(c, e);
}
