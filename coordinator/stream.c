/* Streamed tensors at the coordinator (docs/architecture.md, "Wire protocol"): the global weights
 * served chunk by chunk as zero-copy slices of the one blob every client reads, and the clients'
 * uploads (a plain update, a masked input) PULLED chunk by chunk and added into the accumulator
 * or the secure sum at their offset as they arrive, so that no update is ever held whole.
 *
 * Memory: at most STREAM_WINDOW chunk requests are outstanding across all clients together, so at
 * most that many chunks (4 MiB at most each) sit in ZeroMQ's queues whatever the number of clients;
 * clients with data to send wait their turn (round robin over the table).
 *
 * A plain update's checks that need the whole vector (its L2 norm against the bound) are made
 * incrementally; an update found beyond its bound after its chunks were added is taken out again
 * exactly: the accumulator sums integers, so adding the same chunks with the weight negated
 * restores it bit for bit. The coordinator asks for the chunks a second time and checks that they
 * are the same bytes (a Poly1305 tag of the first pass under a key the client never sees); a
 * client that sends other bytes, or
 * vanishes, leaves the sum spoilt and the round attempt fails (retried; no wrong model leaves).
 * The robust rules keep every update whole anyway (c->upd), so they take it out from that copy.
 * A secure member whose chunks were added but that never finished has spoilt the masked sum: the
 * session fails and the stage is retried like any failed session before unmasking. */
#include "coord_int.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/fault.h"

/* Chunk requests outstanding across all clients (each chunk at most 4 MiB): what bounds the
 * coordinator's memory for uploads. bench_round --clients 20 --big-rounds 2 (one run each, 2
 * cores): the training collection took 14.9 s with 4 (peak 188 MiB) and 4.2 s with 8 (peak 202
 * MiB), against 9.4 s and 738 MiB when every update arrived whole. */
#define STREAM_WINDOW 8
/* Requests outstanding for one client (so that one slow client cannot hold the whole window). */
#define STREAM_PER_CLIENT 2

/* The first pass's bytes of a plain update, to check a second pass against. A keyed universal
 * hash is enough here, and Poly1305 runs several times faster than BLAKE2b (bench_scale, plain 100
 * x 100k: hashing was the largest part of the coordinator's CPU time per client): the key is
 * fresh random per upload and never leaves the coordinator, nor does either tag, so a client that
 * sends other bytes the second time passes only with probability about 8 * ceil(L / 16) / 2^106
 * for L bytes (Poly1305's bound for two different messages under one secret key). */
struct stream_state {
    crypto_onetimeauth_state h;
    uint8_t key[crypto_onetimeauth_KEYBYTES];
    uint8_t first[crypto_onetimeauth_BYTES];
};

uint64_t stream_chunk(const coord *co) {
    return fedc_chunk_values(co->cfg->max_msg);
}

int stream_downlink(const coord *co) {
    return co->n_params > stream_chunk(co);
}

void stream_log_plan(const coord *co) {
    if (stream_downlink(co))
        logm("model of %zu parameters: weights travel in chunks of %llu values (--max-msg-mb), "
             "updates over %zu bytes are pulled in chunks, %d at a time across all clients",
             co->n_params, (unsigned long long)stream_chunk(co), FEDC_INLINE_MAX_BYTES,
             STREAM_WINDOW);
    else
        logm("model of %zu parameters: weights travel whole, updates over %zu bytes are pulled "
             "in chunks of %llu values, %d at a time across all clients",
             co->n_params, FEDC_INLINE_MAX_BYTES, (unsigned long long)stream_chunk(co),
             STREAM_WINDOW);
    if (co->strat->needs_updates)
        logm("aggregation rule %s needs every update whole: the coordinator keeps one model-sized "
             "vector per client this round (its memory grows with the client count)",
             co->strat->name);
}

/* Client c's upload begins (up_stream is set only here). */
static void up_begin(coord *co, client *c, uint32_t stream) {
    if (!c->up_stream)
        co->st_uploads++;
    c->up_stream = stream;
}

static void up_clear(coord *co, client *c) {
    if (c->up_stream && co->st_uploads > 0)
        co->st_uploads--;
    c->up_stream = 0;
    c->up_inflight = 0;
    c->up_removing = 0;
    if (c->up_hash)
        sodium_memzero(c->up_hash, sizeof *c->up_hash); /* the key stays the coordinator's */
    free(c->up_hash);
    c->up_hash = NULL;
}

static void refuse_chunk(coord *co, client *c, uint32_t round, fedc_err code, const char *why) {
    logp(co, &c->peer, c->name, "%s: chunk refused: %s", c->name, why);
    reply_error(co, &c->peer, round, code, why);
}

/* ---- downlink: the weights, served as slices of co->wblob ----------------------------------- */

static void on_req(coord *co, client *c, const fedc_msg *e) {
    const fedc_chunk_req *r = &e->chunk_req;
    char why[192];
    int fit = r->stream == FEDC_STREAM_FIT, eval = r->stream == FEDC_STREAM_EVAL;
    int ok = (fit && co->ph == PH_FIT && c->fit_sel && !c->fit_done) ||
             (eval && co->ph == PH_EVAL && c->eval_sel && !c->eval_done);
    /* --mode async: each client pulls the version its own FitIns carried (async.c) */
    const int afit = fit && co->cfg->async_mode;
    fedc_blob *blob = afit ? async_fit_blob(co, c, r->counter, e->round) : co->wblob;
    if (afit
            ? !blob
            : !ok || !co->w_streamed || !blob || r->counter != co->round || e->round != co->round) {
        snprintf(why, sizeof why,
                 "chunk_req for the %s weights of round %llu: not being served (round %u%s)",
                 fedc_stream_name(r->stream), (unsigned long long)r->counter, co->round,
                 co->w_streamed ? "" : ", weights sent whole");
        refuse_chunk(co, c, e->round, FEDC_EMISMATCH, why);
        return;
    }
    if (r->offset >= co->n_params || r->count > co->n_params - r->offset ||
        r->count > stream_chunk(co)) {
        snprintf(why, sizeof why, "chunk_req: values %llu..%llu outside the model's %zu",
                 (unsigned long long)r->offset, (unsigned long long)(r->offset + r->count),
                 co->n_params);
        refuse_chunk(co, c, e->round, FEDC_ERANGE, why);
        return;
    }
    fedc_msg m;
    env_init(co, &m, FEDC_MSG_CHUNK, afit ? e->round : co->round);
    m.chunk.stream = r->stream;
    m.chunk.counter = r->counter;
    m.chunk.offset = r->offset;
    m.chunk.total = co->n_params;
    m.chunk.count = r->count;
    uint8_t *env = NULL;
    size_t env_len = 0;
    fedc_diag d;
    if (fedc_msg_encode(&env, &env_len, &m, &d) ||
        fedc_net_send_packed_range(co->ep, &c->peer, env, env_len, blob, 4 * (size_t)r->offset,
                                   4 * (size_t)r->count, "chunk", &d)) {
        if (c->alive)
            logp(co, &c->peer, peer_name(c), "%s: %s; marked dead", peer_name(c), d.msg);
        c->alive = 0;
    } else {
        count_sent(co, c, FEDC_MSG_CHUNK, env_len + 4 * (size_t)r->count);
        async_dl_served(c, r->count);
    }
    free(env);
}

/* ---- uplink: pulling ------------------------------------------------------------------------ */

void stream_pump(coord *co) {
    if (!co->n_cl || co->st_uploads == 0)
        return;
    const uint64_t chunk = stream_chunk(co);
    for (int pass = 0; pass < co->n_cl && co->st_inflight < STREAM_WINDOW; pass++) {
        int moved = 0;
        for (int k = 0; k < co->n_cl && co->st_inflight < STREAM_WINDOW; k++) {
            client *c = &co->cl[(co->st_rr + k) % co->n_cl];
            if (!c->up_stream || c->up_next >= c->up_total || c->up_inflight >= STREAM_PER_CLIENT ||
                !c->alive || c->gone)
                continue;
            fedc_msg m;
            env_init(co, &m, FEDC_MSG_CHUNK_REQ, c->up_round);
            m.chunk_req.stream = c->up_stream;
            m.chunk_req.counter = c->up_counter;
            m.chunk_req.offset = c->up_next;
            uint64_t left = c->up_total - c->up_next;
            m.chunk_req.count = left < chunk ? left : chunk;
            if (send_to(co, c, &m))
                continue; /* marked dead: stream_check takes its upload out */
            c->up_next += m.chunk_req.count;
            c->up_inflight++;
            co->st_inflight++;
            moved = 1;
        }
        co->st_rr = (co->st_rr + 1) % co->n_cl;
        if (!moved)
            break;
    }
}

/* Takes client c's streamed upload out of the round: what was added is lost with it, so the sum
 * is spoilt unless nothing was added yet (a plain contribution's weight and loss then go out). */
static void up_lost(coord *co, client *c, const char *why) {
    co->st_inflight -= c->up_inflight;
    if (c->up_stream == FEDC_STREAM_INIT) {
        /* Nothing was used yet: the values are taken whole from another client. */
        logm("%s: its initial values were lost after %llu of %llu (%s); taking another client's",
             peer_name(c), (unsigned long long)c->up_recv, (unsigned long long)c->up_total, why);
        c->init_offer = 0;
        up_clear(co, c);
        stream_init_next(co, NULL);
        return;
    }
    if (c->up_recv > 0 || c->up_removing) {
        co->st_spoilt = 1;
        logm("round %u: %s vanished or failed after %llu of its %llu streamed values were added "
             "(%s): this round's sum cannot be used",
             co->round, peer_name(c), (unsigned long long)c->up_recv,
             (unsigned long long)c->up_total, why);
    } else if (c->up_stream == FEDC_STREAM_UPDATE) {
        fedc_accum_cancel(co->acc, c->up_weight, c->up_loss);
    }
    if (c->up_stream == FEDC_STREAM_MASKED)
        c->sa_answered = 1; /* out of U3: a dropout, not awaited until the deadline */
    up_clear(co, c);
}

/* A client's slot may be cleared whole elsewhere (registry.c) without up_clear, so st_uploads
 * may count more uploads than there are, never fewer: at 0 none is under way. */
void stream_check(coord *co) {
    for (int i = 0; co->st_uploads > 0 && i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (c->up_stream && (!c->alive || c->gone))
            up_lost(co, c, "its connection is gone");
    }
    stream_pump(co);
}

void stream_gone(coord *co, client *c) {
    if (c->up_stream)
        up_lost(co, c, "it no longer holds the values");
}

void stream_reset(coord *co) {
    for (int i = 0; i < co->n_cl; i++)
        up_clear(co, &co->cl[i]);
    co->st_uploads = 0;
    co->st_inflight = 0;
    co->st_spoilt = 0;
}

void stream_close(coord *co, const char *why) {
    for (int i = 0; i < co->n_cl; i++)
        if (co->cl[i].up_stream)
            up_lost(co, &co->cl[i], why);
}

/* ---- uplink: a plain update ----------------------------------------------------------------- */

void stream_fit_res(coord *co, client *c, const fedc_msg *e) {
    const fedc_fit_res *r = &e->fit_res;
    const int keep = co->strat->needs_updates;
    uint64_t weight = fedc_strategy_weight_units(r->n_examples, agg_uniform(co));
    fedc_diag d;
    fedc_err rc = FEDC_OK;
    if (keep && !c->upd && !(c->upd = malloc(4 * co->n_params))) {
        fedc_diag_set(&d, "out of memory keeping the update");
        rc = FEDC_ENOMEM;
    }
    /* An update of one chunk is checked whole before it is added (plain_chunk), so it is never
     * asked for twice: no tag to keep. */
    const int one_chunk = co->n_params <= stream_chunk(co);
    struct stream_state *st = NULL;
    if (!rc && !keep && !one_chunk && !(st = malloc(sizeof *st))) {
        fedc_diag_set(&d, "out of memory");
        rc = FEDC_ENOMEM;
    }
    if (!rc)
        rc = fedc_accum_begin(co->acc, weight, r->train_loss, &d);
    if (rc) {
        free(st);
        char reason[FEDC_DIAG_MAX + 32];
        snprintf(reason, sizeof reason, "fit_res refused: %s", d.msg);
        logm("%s: %s", c->name, reason);
        reply_error(co, &c->peer, e->round, rc, reason);
        c->fit_done = 1;
        return;
    }
    if (st) {
        randombytes_buf(st->key, sizeof st->key);
        crypto_onetimeauth_init(&st->h, st->key);
    }
    c->up_hash = st;
    up_begin(co, c, FEDC_STREAM_UPDATE);
    c->up_counter = e->round;
    c->up_round = e->round;
    c->up_total = co->n_params;
    c->up_next = c->up_recv = 0;
    c->up_inflight = 0;
    c->up_removing = 0;
    c->up_weight = weight;
    c->up_loss = r->train_loss;
    c->up_examples = r->n_examples;
    c->up_seconds = r->seconds;
    c->up_unclipped = r->unclipped;
    c->up_norm2 = 0;
    stream_pump(co);
}

/* The bound a whole plain update must keep (agg_plain_add's checks, made on the streamed norm). */
static double plain_bound(const coord *co, const char **flag) {
    if (agg_dp_on(co)) {
        *flag = "--dp-clip";
        return (double)co->dp_clip_now;
    }
    if (co->strat->clip_norm > 0) {
        /* norm-bound clips a held update itself; a streamed one is never held whole, and every
         * client clips to the same C (FitIns update_norm_bound), so one beyond it is refused. */
        *flag = "norm-bound's C";
        return (double)co->strat->clip_norm;
    }
    *flag = "--update-norm-bound";
    return (double)co->cfg->update_norm_bound;
}

/* Whether a plain update of squared norm norm2 is beyond its bound; if so it is refused to the
 * client (the caller takes it out of the round). */
static int over_bound(coord *co, client *c, double norm2) {
    const char *flag = "";
    double b = plain_bound(co, &flag), norm = sqrt(norm2);
    if (!(norm > b * (1.0 + 1e-4)))
        return 0;
    char why[256];
    snprintf(why, sizeof why,
             "fit_res refused: update norm %g exceeds the bound %g (%s): the client did not clip",
             norm, b, flag);
    logm("%s: %s", c->name, why);
    reply_error(co, &c->peer, c->up_round, FEDC_ERANGE, why);
    return 1;
}

/* The last chunk of a plain update is in: count it, or start taking it out again. */
static void plain_finished(coord *co, client *c) {
    if (over_bound(co, c, c->up_norm2)) {
        if (c->upd) { /* the robust rules keep the update: take it out from that copy */
            fedc_diag d;
            if (fedc_accum_add_range(co->acc, 0, c->upd, co->n_params, -(int64_t)c->up_weight, &d))
                co->st_spoilt = 1; /* cannot happen: the same values were added */
            fedc_accum_cancel(co->acc, c->up_weight, c->up_loss);
            c->upd_have = 0;
            c->fit_done = 1;
            up_clear(co, c);
            return;
        }
        if (!c->up_hash) { /* one chunk is checked as it is added: cannot happen */
            up_lost(co, c, "no tag of its first pass");
            c->fit_done = 1;
            return;
        }
        /* Ask for the same chunks again and subtract them (checked against the first tag). */
        crypto_onetimeauth_final(&c->up_hash->h, c->up_hash->first);
        crypto_onetimeauth_init(&c->up_hash->h, c->up_hash->key);
        c->up_removing = 1;
        c->up_next = c->up_recv = 0;
        return;
    }
    if (c->upd) {
        c->upd_have = 1;
        c->upd_examples = c->up_examples;
    }
    if (agg_dp_on(co) && c->up_unclipped)
        co->dp_unclipped++;
    if (c->round0)
        co->plain_examples += (double)c->up_examples;
    c->fit_done = 1;
    c->fit_counted = 1;
    completed_exchange(c);
    c->took_part = 1;
    c->fit_seconds = c->up_seconds;
    if (c->up_seconds > co->max_fit_seconds)
        co->max_fit_seconds = c->up_seconds;
    co->answered++;
    up_clear(co, c);
}

/* The second pass of an update taken out is over: the same bytes, or the round is spoilt. */
static void removal_finished(coord *co, client *c) {
    uint8_t again[crypto_onetimeauth_BYTES];
    crypto_onetimeauth_final(&c->up_hash->h, again);
    if (sodium_memcmp(again, c->up_hash->first, sizeof again) != 0) {
        co->st_spoilt = 1;
        logm("round %u: %s sent other values when its refused update was asked for again: this "
             "round's sum cannot be used",
             co->round, peer_name(c));
    } else {
        fedc_accum_cancel(co->acc, c->up_weight, c->up_loss);
        logm("round %u: %s's refused update was taken out of the sum", co->round, peer_name(c));
    }
    c->fit_done = 1;
    up_clear(co, c);
}

/* A chunk of a plain update: added into the accumulator, its share of the update's norm taken in
 * the same pass (fedc_accum_add_range_sq), and in that pass every value checked finite and within
 * the accumulator's range: the codec leaves an update chunk's finite check to this pass
 * (fedc_msg_expect.update_finite_here), so the received bytes are read once. */
static void plain_chunk(coord *co, client *c, const fedc_chunk *k) {
    const size_t n = (size_t)k->count;
    const float *v = NULL;
    float *tmp = NULL;
    fedc_tensor t = {k->count, k->values, 0};
    if (!(v = fedc_tensor_floats(&t))) {
        if (!(tmp = malloc(4 * n))) {
            up_lost(co, c, "out of memory");
            return;
        }
        fedc_tensor_read(tmp, &t);
        v = tmp;
    }
    fedc_diag d;
    double s2 = 0;
    const int64_t w = c->up_removing ? -(int64_t)c->up_weight : (int64_t)c->up_weight;
    /* --mode async: the buffer adds the chunk scaled by its staleness weight (the bound is
     * checked on the values as sent, so their norm takes a pass of its own then); both passes
     * scale alike, so a removal is exact. */
    const float *add = async_chunk_scale(co, c, v, n);
    fedc_err rc = FEDC_ENOMEM;
    if (!add)
        fedc_diag_set(&d, "out of memory scaling a chunk of the update");
    else if (c->up_removing)
        rc = fedc_accum_add_range(co->acc, (size_t)k->offset, add, n, w, &d);
    else if (add == v)
        rc = fedc_accum_add_range_sq(co->acc, (size_t)k->offset, v, n, w, &s2, &d);
    else if (!(rc = fedc_accum_add_range(co->acc, (size_t)k->offset, add, n, w, &d)))
        s2 = fedc_accum_sum_squares(v, n);
    if (!rc && !c->up_removing && k->offset == 0 && n == c->up_total && over_bound(co, c, s2)) {
        /* The whole update in one chunk, beyond its bound: taken out again at once (the sums are
         * integers, so exactly) and refused; it is never asked for again. */
        fedc_diag ignore;
        if (fedc_accum_add_range(co->acc, 0, add, n, -w, &ignore))
            co->st_spoilt = 1; /* cannot happen: the same values were added */
        fedc_accum_cancel(co->acc, c->up_weight, c->up_loss);
        c->fit_done = 1;
        up_clear(co, c);
        free(tmp);
        return;
    }
    if (rc && !c->up_removing) {
        /* Refused before it was added: the earlier chunks go out like an update over its bound
         * (the norm is made to exceed every bound). A value that is not finite is named as the
         * codec names it in a whole update. */
        char why[FEDC_DIAG_MAX + 64];
        size_t i = rc == FEDC_ERANGE ? 0 : n;
        while (i < n && isfinite(v[i]))
            i++;
        if (i < n)
            snprintf(why, sizeof why, "fit_res refused: chunk: value %llu is not finite",
                     (unsigned long long)(k->offset + i));
        else
            snprintf(why, sizeof why, "fit_res refused: %s", d.msg);
        logm("%s: %s", c->name, why);
        reply_error(co, &c->peer, c->up_round, rc, why);
        if (k->offset == 0) { /* nothing in the sum yet */
            co->st_inflight -= c->up_inflight;
            fedc_accum_cancel(co->acc, c->up_weight, c->up_loss);
            c->fit_done = 1;
            up_clear(co, c);
            free(tmp);
            return;
        }
        up_lost(co, c, "a refused chunk");
        c->fit_done = 1;
        free(tmp);
        return;
    }
    if (rc) {
        up_lost(co, c, "its values changed between the passes");
        c->fit_done = 1;
        free(tmp);
        return;
    }
    if (c->up_hash)
        crypto_onetimeauth_update(&c->up_hash->h, k->values, 4 * n);
    if (!c->up_removing) {
        c->up_norm2 += s2;
        if (c->upd)
            memcpy(c->upd + k->offset, v, 4 * n);
    }
    free(tmp);
    c->up_recv += n;
    if (c->up_recv < c->up_total)
        return;
    if (c->up_removing)
        removal_finished(co, c);
    else
        plain_finished(co, c);
}

/* ---- uplink: a masked input ----------------------------------------------------------------- */

void stream_sa_masked(coord *co, client *c, const fedc_msg *e) {
    up_begin(co, c, FEDC_STREAM_MASKED);
    c->up_counter = e->sa_masked.counter;
    c->up_round = e->round;
    c->up_total = e->sa_masked.count;
    c->up_next = c->up_recv = 0;
    c->up_inflight = 0;
    c->up_removing = 0;
    stream_pump(co);
}

int stream_masked_spoilt(const coord *co) {
    if (co->st_spoilt)
        return 1;
    for (int i = 0; i < co->n_cl; i++) {
        const client *c = &co->cl[i];
        if (c->up_stream == FEDC_STREAM_MASKED && c->up_recv > 0)
            return 1;
    }
    return 0;
}

static void masked_chunk(coord *co, client *c, const fedc_chunk *k) {
    sa_session *s = &co->sa;
    fedc_diag d;
    if (!s->have_srv || c->sa_id < 0 ||
        fedc_sa_server_masked_range(&s->srv, (uint32_t)c->sa_id, (size_t)k->offset, k->values,
                                    (size_t)k->count, &d)) {
        up_lost(co, c, "its chunk does not fit the session");
        return;
    }
    c->up_recv += k->count;
    if (c->up_recv < c->up_total)
        return;
    if (fedc_sa_server_masked_done(&s->srv, (uint32_t)c->sa_id, &d)) {
        up_lost(co, c, d.msg);
        return;
    }
    c->sa_answered = 1;
    c->took_part = 1;
    up_clear(co, c);
}

/* ---- uplink: a model's initial values (--model external) ------------------------------------ */

void stream_init_next(coord *co, client *c) {
    if (!co->init_wait)
        return;
    for (int i = 0; i < co->n_cl; i++)
        if (co->cl[i].up_stream == FEDC_STREAM_INIT)
            return; /* one pull at a time: the others' values are never asked for */
    if (!c || !c->init_offer || !c->alive || c->gone) {
        c = NULL;
        for (int i = 0; i < co->n_cl && !c; i++)
            if (co->cl[i].init_offer && co->cl[i].alive && !co->cl[i].gone)
                c = &co->cl[i];
    }
    if (!c) {
        logm("--model external: no connected client offers its initial values now; round 0 "
             "waits for one to join (--wait-timeout bounds the wait)");
        return;
    }
    logm("pulling the model's %zu initial values from %s", co->n_params, c->name);
    up_begin(co, c, FEDC_STREAM_INIT);
    c->up_counter = 0;
    c->up_round = co->round;
    c->up_total = co->n_params;
    c->up_next = c->up_recv = 0;
    c->up_inflight = 0;
    c->up_removing = 0;
    stream_pump(co);
}

/* A chunk of the initial values: copied into the model, every value checked finite (the codec
 * leaves that to us, update_finite_here). A client that sends another value is refused and the
 * next client's values are pulled instead, from the start. */
static void init_chunk(coord *co, client *c, const fedc_chunk *k) {
    float *dst = co->model->params + k->offset;
    fedc_tensor t = {k->count, k->values, 0};
    fedc_tensor_read(dst, &t);
    for (uint64_t i = 0; i < k->count; i++) {
        if (!isfinite(dst[i])) {
            char why[160];
            snprintf(why, sizeof why, "chunk: initial value %llu is not finite",
                     (unsigned long long)(k->offset + i));
            refuse_chunk(co, c, c->up_round, FEDC_ERANGE, why);
            up_lost(co, c, "a value that is not finite");
            return;
        }
    }
    c->up_recv += k->count;
    if (c->up_recv < c->up_total)
        return;
    logm("the model's initial values are those of %s", c->name);
    co->init_wait = 0;
    up_clear(co, c);
}

/* ---- a Chunk or a ChunkReq from a client ---------------------------------------------------- */

void stream_on_msg(coord *co, client *c, const fedc_msg *e) {
    if (e->kind == FEDC_MSG_CHUNK_REQ) {
        on_req(co, c, e);
        return;
    }
    const fedc_chunk *k = &e->chunk;
    /* Chunks come in the order they were asked for (one connection): the next one expected. */
    uint64_t want = c->up_total - c->up_recv;
    if (want > stream_chunk(co))
        want = stream_chunk(co);
    if (!c->up_stream || k->stream != c->up_stream || k->counter != c->up_counter ||
        e->round != c->up_round || k->offset != c->up_recv || k->total != c->up_total ||
        k->count != want || c->up_inflight < 1) {
        char why[256];
        snprintf(why, sizeof why,
                 "%s chunk of values %llu..%llu (session %llu) was not asked for%s",
                 fedc_stream_name(k->stream), (unsigned long long)k->offset,
                 (unsigned long long)(k->offset + k->count), (unsigned long long)k->counter,
                 c->up_stream ? "" : ": nothing is being pulled from this client");
        refuse_chunk(co, c, e->round, FEDC_EMISMATCH, why);
        return;
    }
    c->up_inflight--;
    co->st_inflight--;
    if (k->stream == FEDC_STREAM_UPDATE)
        plain_chunk(co, c, k);
    else if (k->stream == FEDC_STREAM_INIT)
        init_chunk(co, c, k);
    else
        masked_chunk(co, c, k);
    stream_pump(co);
}
