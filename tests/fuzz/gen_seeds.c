/* Writes the seed corpus of the envelope fuzz target: one valid envelope per body type (and a
 * tensor announced as a raw frame), packed with fedc_msg_pack, one file each in the directory
 * named by argv[1]. Run at build time, so the seeds always match proto/fedc.proto; nothing
 * generated lands in the source tree. Every seed is checked to pass fedc_msg_unpack with the
 * expectation it was made for, so a drifting validator cannot silently empty the corpus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/codec.h"
#include "fedc/sa_proto.h"
#include "fuzz_expect.h"

/* Packs e, checks that it unpacks under x, and writes it to dir/name. Returns 0 on success. */
static int write_seed(const char *dir, const char *name, const Fedc__Envelope *e,
                      const fedc_msg_expect *x) {
    int rc = 1;
    uint8_t *buf = NULL;
    size_t len = 0;
    Fedc__Envelope *back = NULL;
    FILE *f = NULL;
    fedc_diag d = {{0}};
    char path[4096];
    if (fedc_msg_pack(&buf, &len, e)) {
        fprintf(stderr, "gen_seeds: %s: cannot pack\n", name);
        goto out;
    }
    if (fedc_msg_unpack(&back, buf, len, x, &d)) {
        fprintf(stderr, "gen_seeds: %s: refused by the codec: %s\n", name, d.msg);
        goto out;
    }
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        fprintf(stderr, "gen_seeds: %s/%s: path too long\n", dir, name);
        goto out;
    }
    f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) {
        fprintf(stderr, "gen_seeds: cannot write %s\n", path);
        goto out;
    }
    rc = 0;
out:
    if (f && fclose(f) && rc == 0) {
        fprintf(stderr, "gen_seeds: cannot write %s\n", path);
        rc = 1;
    }
    fedc_msg_free(&back);
    free(buf);
    return rc;
}

static void envelope(Fedc__Envelope *e, uint32_t round) {
    fedc__envelope__init(e);
    e->version = FEDC_PROTOCOL_VERSION;
    e->run_id.data = (uint8_t *)FUZZ_RUN;
    e->run_id.len = FEDC_RUN_ID_BYTES;
    e->round = round;
}

static void hyper_params(Fedc__HyperParams *hp) {
    fedc__hyper_params__init(hp);
    hp->local_epochs = 2;
    hp->batch = 32;
    hp->lr = 0.05f;
    hp->prox_mu = 0.01f;
    hp->l2 = 1e-4f;
    hp->dropout = 0.1f;
    hp->val_fraction = 0.2f;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int bad = 0;
    fedc_msg_expect any = {0};
    any.round = -1;
    fedc_msg_expect x = {0};
    x.run_id = FUZZ_RUN;
    x.round = FUZZ_ROUND;
    x.n_params = FUZZ_N_PARAMS;
    x.n_features = FUZZ_N_FEATURES;
    x.n_classes = FUZZ_N_CLASSES;
    x.hist_bins = FUZZ_HIST_BINS;

    char f0[] = "age", f1[] = "income", f2[] = "debt", label[] = "default", name[] = "bank-a";
    char *names[] = {f0, f1, f2};
    Fedc__Schema schema;
    fedc__schema__init(&schema);
    schema.n_feature_names = FUZZ_N_FEATURES;
    schema.feature_names = names;
    schema.label = label;
    schema.task = 0;
    schema.n_classes = FUZZ_N_CLASSES;
    Fedc__HyperParams hp;
    hyper_params(&hp);
    const float v[FUZZ_N_PARAMS] = {0.5f, -1.25f, 3.0f, 0.0f, -0.0625f};
    uint8_t store[4 * FUZZ_N_PARAMS];
    Fedc__Tensor t;
    fedc__tensor__init(&t);
    fedc_tensor_pack(&t, store, v, FUZZ_N_PARAMS);
    Fedc__Envelope e;

    /* Round 0: a first join (no run id yet), welcome, statistics. */
    Fedc__Join join;
    fedc__join__init(&join);
    join.name = name;
    join.schema = &schema;
    join.n_rows = 700;
    envelope(&e, 0);
    e.run_id.data = NULL;
    e.run_id.len = 0;
    e.body_case = FEDC__ENVELOPE__BODY_JOIN;
    e.join = &join;
    bad |= write_seed(dir, "join", &e, &any);

    Fedc__Welcome welcome;
    uint32_t layers[] = {FUZZ_N_FEATURES, 8, 1};
    fedc__welcome__init(&welcome);
    welcome.schema = &schema;
    welcome.n_layer_sizes = 3;
    welcome.layer_sizes = layers;
    welcome.hidden_act = 1;
    welcome.hp = &hp;
    welcome.rounds = 10;
    welcome.seed = 42;
    envelope(&e, 0);
    e.body_case = FEDC__ENVELOPE__BODY_WELCOME;
    e.welcome = &welcome;
    bad |= write_seed(dir, "welcome", &e, &any);

    Fedc__StatsRequest sreq;
    fedc__stats_request__init(&sreq);
    envelope(&e, FUZZ_ROUND);
    e.body_case = FEDC__ENVELOPE__BODY_STATS_REQUEST;
    e.stats_request = &sreq;
    bad |= write_seed(dir, "stats_request", &e, &x);

    Fedc__Stats stats;
    double sum[FUZZ_N_FEATURES] = {1.5, -2.0, 30.0}, sq[FUZZ_N_FEATURES] = {4.0, 5.0, 600.0};
    uint64_t cc[FUZZ_N_CLASSES] = {60, 40};
    fedc__stats__init(&stats);
    stats.n_rows = 100;
    stats.n_sum = FUZZ_N_FEATURES;
    stats.sum = sum;
    stats.n_sum_sq = FUZZ_N_FEATURES;
    stats.sum_sq = sq;
    stats.n_class_count = FUZZ_N_CLASSES;
    stats.class_count = cc;
    envelope(&e, FUZZ_ROUND);
    e.body_case = FEDC__ENVELOPE__BODY_STATS;
    e.stats = &stats;
    bad |= write_seed(dir, "stats", &e, &x);

    /* Training rounds. */
    Fedc__FitIns fit_ins;
    float mean[FUZZ_N_FEATURES] = {0.1f, 2.0f, -3.0f}, std[FUZZ_N_FEATURES] = {1.0f, 0.5f, 4.0f};
    fedc__fit_ins__init(&fit_ins);
    fit_ins.weights = &t;
    fit_ins.hp = &hp;
    fit_ins.n_mean = FUZZ_N_FEATURES;
    fit_ins.mean = mean;
    fit_ins.n_std = FUZZ_N_FEATURES;
    fit_ins.std = std;
    fit_ins.pos_weight = 1.5f;
    envelope(&e, FUZZ_ROUND);
    e.body_case = FEDC__ENVELOPE__BODY_FIT_INS;
    e.fit_ins = &fit_ins;
    bad |= write_seed(dir, "fit_ins", &e, &x);

    Fedc__FitRes fit_res;
    fedc__fit_res__init(&fit_res);
    fit_res.update = &t;
    fit_res.n_examples = 100;
    fit_res.train_loss = 0.4;
    fit_res.seconds = 0.01;
    envelope(&e, FUZZ_ROUND);
    e.body_case = FEDC__ENVELOPE__BODY_FIT_RES;
    e.fit_res = &fit_res;
    bad |= write_seed(dir, "fit_res", &e, &x);

    /* The same result with its update announced as a raw frame (the fuzz target supplies one). */
    Fedc__Tensor counted;
    fedc__tensor__init(&counted);
    counted.count = FUZZ_N_PARAMS;
    fit_res.update = &counted;
    fedc_msg_expect xr = x;
    xr.raw = store;
    xr.raw_len = sizeof store;
    bad |= write_seed(dir, "fit_res_raw", &e, &xr);

    /* The same result streamed (its values pulled in chunks), and a chunk and a chunk request of
     * that update: the raw frame the fuzz target supplies is the chunk's values. */
    counted.streamed = 1;
    bad |= write_seed(dir, "fit_res_streamed", &e, &x);
    Fedc__Chunk ch = FEDC__CHUNK__INIT;
    ch.stream = FEDC_STREAM_UPDATE;
    ch.counter = FUZZ_ROUND;
    ch.total = FUZZ_N_PARAMS;
    envelope(&e, FUZZ_ROUND);
    e.body_case = FEDC__ENVELOPE__BODY_CHUNK;
    e.chunk = &ch;
    bad |= write_seed(dir, "chunk", &e, &xr);
    Fedc__ChunkReq cr = FEDC__CHUNK_REQ__INIT;
    cr.stream = FEDC_STREAM_MASKED;
    cr.counter = 5;
    cr.offset = 16;
    cr.count = 32;
    e.body_case = FEDC__ENVELOPE__BODY_CHUNK_REQ;
    e.chunk_req = &cr;
    bad |= write_seed(dir, "chunk_req", &e, &x);

    Fedc__EvaluateIns eval_ins;
    fedc__evaluate_ins__init(&eval_ins);
    eval_ins.weights = &t;
    eval_ins.threshold = 0.5f;
    eval_ins.n_mean = eval_ins.n_std = FUZZ_N_FEATURES;
    eval_ins.mean = mean;
    eval_ins.std = std;
    envelope(&e, FUZZ_ROUND);
    e.body_case = FEDC__ENVELOPE__BODY_EVALUATE_INS;
    e.evaluate_ins = &eval_ins;
    bad |= write_seed(dir, "evaluate_ins", &e, &x);

    Fedc__EvaluateRes eval_res;
    uint64_t hpos[FUZZ_HIST_BINS] = {0, 1, 2, 7}, hneg[FUZZ_HIST_BINS] = {20, 5, 3, 2};
    fedc__evaluate_res__init(&eval_res);
    eval_res.n = 40;
    eval_res.n_hist_pos = FUZZ_HIST_BINS;
    eval_res.hist_pos = hpos;
    eval_res.n_hist_neg = FUZZ_HIST_BINS;
    eval_res.hist_neg = hneg;
    eval_res.tp = 9;
    eval_res.fp = 5;
    eval_res.tn = 25;
    eval_res.fn = 1;
    eval_res.log_loss_sum = 12.5;
    envelope(&e, FUZZ_ROUND);
    e.body_case = FEDC__ENVELOPE__BODY_EVALUATE_RES;
    e.evaluate_res = &eval_res;
    bad |= write_seed(dir, "evaluate_res", &e, &x);

    /* Housekeeping. */
    Fedc__Heartbeat hb;
    fedc__heartbeat__init(&hb);
    hb.seq = 3;
    envelope(&e, FUZZ_ROUND);
    e.body_case = FEDC__ENVELOPE__BODY_HEARTBEAT;
    e.heartbeat = &hb;
    bad |= write_seed(dir, "heartbeat", &e, &x);

    Fedc__Error err;
    char reason[] = "fit_res: update: expected 5 values, got 4";
    fedc__error__init(&err);
    err.code = (uint32_t)-FEDC_EMISMATCH;
    err.reason = reason;
    envelope(&e, FUZZ_ROUND);
    e.body_case = FEDC__ENVELOPE__BODY_ERROR;
    e.error = &err;
    bad |= write_seed(dir, "error", &e, &x);

    Fedc__Bye bye;
    char done[] = "run complete";
    fedc__bye__init(&bye);
    bye.reason = done;
    envelope(&e, FUZZ_ROUND);
    e.body_case = FEDC__ENVELOPE__BODY_BYE;
    e.bye = &bye;
    bad |= write_seed(dir, "bye", &e, &x);

    /* Secure aggregation (the masked input without its raw frame: count 0). */
    uint8_t k32[32] = {7}, sig[64] = {8}, ct[FEDC_SA_SHARE_CT] = {9};
    char peer_name[] = "bank-a";
    Fedc__SaKeys keys = FEDC__SA_KEYS__INIT;
    keys.counter = 5;
    keys.pk_c = keys.pk_s = (ProtobufCBinaryData){32, k32};
    keys.sig = (ProtobufCBinaryData){64, sig};
    keys.commit = (ProtobufCBinaryData){32, k32};
    envelope(&e, FUZZ_ROUND);
    e.body_case = FEDC__ENVELOPE__BODY_SA_KEYS;
    e.sa_keys = &keys;
    bad |= write_seed(dir, "sa_keys", &e, &x);
    Fedc__SaPeer peer = FEDC__SA_PEER__INIT, *peers[1] = {&peer};
    peer.name = peer_name;
    peer.pk_c = peer.pk_s = (ProtobufCBinaryData){32, k32};
    peer.sig = (ProtobufCBinaryData){64, sig};
    peer.commit = (ProtobufCBinaryData){32, k32};
    Fedc__SaShareIns si = FEDC__SA_SHARE_INS__INIT;
    si.counter = 5;
    si.threshold = 1;
    si.n_peers = 1;
    si.peers = peers;
    si.n = 1;
    e.body_case = FEDC__ENVELOPE__BODY_SA_SHARE_INS;
    e.sa_share_ins = &si;
    bad |= write_seed(dir, "sa_share_ins", &e, &x);
    Fedc__SaSealed box = FEDC__SA_SEALED__INIT, *boxes[1] = {&box};
    box.to = 1;
    box.ct = (ProtobufCBinaryData){FEDC_SA_SHARE_CT, ct};
    Fedc__SaShares sh = FEDC__SA_SHARES__INIT;
    sh.counter = 5;
    sh.n_shares = 1;
    sh.shares = boxes;
    e.body_case = FEDC__ENVELOPE__BODY_SA_SHARES;
    e.sa_shares = &sh;
    bad |= write_seed(dir, "sa_shares", &e, &x);
    Fedc__SaMaskIns mi = FEDC__SA_MASK_INS__INIT;
    mi.counter = 5;
    mi.n_shares = 1;
    mi.shares = boxes;
    e.body_case = FEDC__ENVELOPE__BODY_SA_MASK_INS;
    e.sa_mask_ins = &mi;
    bad |= write_seed(dir, "sa_mask_ins", &e, &x);
    Fedc__SaMasked sm = FEDC__SA_MASKED__INIT;
    sm.counter = 5;
    e.body_case = FEDC__ENVELOPE__BODY_SA_MASKED;
    e.sa_masked = &sm;
    bad |= write_seed(dir, "sa_masked", &e, &x);
    sm.count = 1000;
    sm.streamed = 1;
    bad |= write_seed(dir, "sa_masked_streamed", &e, &x);
    Fedc__SaSig sg = FEDC__SA_SIG__INIT, *sgs[1] = {&sg};
    sg.id = 1;
    sg.sig = (ProtobufCBinaryData){64, sig};
    Fedc__SaUnmaskIns ui = FEDC__SA_UNMASK_INS__INIT;
    ui.counter = 5;
    ui.n_sigs = 1;
    ui.sigs = sgs;
    e.body_case = FEDC__ENVELOPE__BODY_SA_UNMASK_INS;
    e.sa_unmask_ins = &ui;
    bad |= write_seed(dir, "sa_unmask_ins", &e, &x);
    char other_name[] = "bank-b";
    char *mem[2] = {peer_name, other_name};
    Fedc__SaGraphIns gi = FEDC__SA_GRAPH_INS__INIT;
    gi.counter = 5;
    gi.h = 1;
    gi.n_names = 2;
    gi.names = mem;
    gi.commits = (ProtobufCBinaryData){32, k32};
    e.body_case = FEDC__ENVELOPE__BODY_SA_GRAPH_INS;
    e.sa_graph_ins = &gi;
    bad |= write_seed(dir, "sa_graph_ins", &e, &x);
    Fedc__SaGraph gr = FEDC__SA_GRAPH__INIT;
    gr.counter = 5;
    gr.r = (ProtobufCBinaryData){32, k32};
    e.body_case = FEDC__ENVELOPE__BODY_SA_GRAPH;
    e.sa_graph = &gr;
    bad |= write_seed(dir, "sa_graph", &e, &x);
    uint32_t surv[2] = {0, 1};
    Fedc__SaConsistIns ci = FEDC__SA_CONSIST_INS__INIT;
    ci.counter = 5;
    ci.n_survivors = 2;
    ci.survivors = surv;
    e.body_case = FEDC__ENVELOPE__BODY_SA_CONSIST_INS;
    e.sa_consist_ins = &ci;
    bad |= write_seed(dir, "sa_consist_ins", &e, &x);
    Fedc__SaConsist cs = FEDC__SA_CONSIST__INIT;
    cs.counter = 5;
    cs.sig = (ProtobufCBinaryData){64, sig};
    e.body_case = FEDC__ENVELOPE__BODY_SA_CONSIST;
    e.sa_consist = &cs;
    bad |= write_seed(dir, "sa_consist", &e, &x);
    Fedc__SaReveal rv = FEDC__SA_REVEAL__INIT, *rvs[1] = {&rv};
    rv.kind = 2;
    rv.share = (ProtobufCBinaryData){32, k32};
    Fedc__SaUnmask um = FEDC__SA_UNMASK__INIT;
    um.counter = 5;
    um.n_shares = 1;
    um.shares = rvs;
    e.body_case = FEDC__ENVELOPE__BODY_SA_UNMASK;
    e.sa_unmask = &um;
    bad |= write_seed(dir, "sa_unmask", &e, &x);

    return bad ? 1 : 0;
}
