/* The client registry: the table of client slots (find, take, give back), who is alive, eligible,
 * dead, benched or excluded; a Join with its checks (the schema and the model against the
 * federation's, the message size cap of --max-msg-mb) and the Welcome; and the messages sent to
 * clients. The first Join fixes the schema and builds the global model. */
#include "coord_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/card.h"
#include "fedc/recipe.h"
#include "fedc/transport.h"

/* Bytes of a message beyond its raw frame (the envelope), in the size checks of --max-msg-mb. */
#define ENVELOPE_SLACK 4096

void env_init(coord *co, fedc_msg *m, fedc_msg_kind kind, uint32_t round) {
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->run_id = co->run_id;
    m->round = round;
}

const char *peer_name(const client *c) {
    return c->name[0] ? c->name : "(unnamed)";
}

void count_bytes(coord *co, int out, fedc_msg_kind k, size_t n) {
    if (out)
        co->bytes_out += n;
    else
        co->bytes_in += n;
    co->bytes_kind[co->ph == PH_EVAL][out != 0][(unsigned)k & 63u] += n;
    co->msgs_kind[co->ph == PH_EVAL][out != 0][(unsigned)k & 63u]++;
}

void count_sent(coord *co, client *c, fedc_msg_kind k, size_t n) {
    count_bytes(co, 1, k, n);
    c->last_sent = fedc_clock_s();
}

void count_bytes_reset(coord *co) {
    co->bytes_in_done += co->bytes_in;
    co->bytes_out_done += co->bytes_out;
    co->bytes_in = co->bytes_out = 0;
    memset(co->bytes_kind, 0, sizeof co->bytes_kind);
    memset(co->msgs_kind, 0, sizeof co->msgs_kind);
}

/* Sends to one client; a vanished peer is marked dead instead of failing the run. */
int send_to(coord *co, client *c, const fedc_msg *m) {
    fedc_diag d;
    size_t sent = 0;
    if (fedc_net_send_msg(co->ep, &c->peer, m, &sent, &d)) {
        if (c->alive)
            logp(co, &c->peer, peer_name(c), "%s: %s; marked dead", peer_name(c), d.msg);
        c->alive = 0;
        return -1;
    }
    count_sent(co, c, m->kind, sent);
    return 0;
}

int send_packed(coord *co, client *c, const char *what) {
    fedc_diag d;
    /* Streamed weights: the instruction alone; the client pulls the chunks (stream.c). */
    fedc_blob *raw = co->w_streamed ? NULL : co->wblob;
    if (fedc_net_send_packed(co->ep, &c->peer, co->env, co->env_len, raw, what, &d)) {
        if (c->alive)
            logp(co, &c->peer, peer_name(c), "%s: %s; marked dead", peer_name(c), d.msg);
        c->alive = 0;
        return -1;
    }
    count_sent(co, c, co->ph == PH_EVAL ? FEDC_MSG_EVALUATE_INS : FEDC_MSG_FIT_INS,
               co->env_len + (raw ? raw->len : 0));
    return 0;
}

/* code: fedc_bye_code, what the client acts on; reason: for people. */
void send_bye(coord *co, client *c, int code, const char *reason) {
    fedc_msg m;
    env_init(co, &m, FEDC_MSG_BYE, co->round);
    m.bye.reason = reason;
    m.bye.code = (fedc_bye_code)code;
    (void)send_to(co, c, &m);
}

void reply_error(coord *co, const fedc_peer *to, uint32_t round, fedc_err code,
                 const char *reason) {
    fedc_net_send_error(co->ep, to, co->run_id, round, code, reason);
}

/* Compares a joining client's encoding and features spec with the federation's (kept in the
 * model's recipe since the first client fixed them); names the first difference. */
static int recipe_differs(const coord *co, const fedc_schema *s, char *why, size_t cap) {
    const fedc_model *m = co->model;
    char *enc = fedc_meta_get(m, "encoding"), *spec = fedc_meta_get(m, "features");
    char what[400];
    int differs = 1;
    if (fedc_encoding_differs(s->encoding, enc, what, sizeof what))
        snprintf(why, cap, "encoding: %s", what);
    else if (fedc_json_differs(s->features, spec))
        snprintf(why, cap, "features spec: %s, the federation's %s",
                 s->features && *s->features
                     ? "yours differs from the federation's (--features-spec)"
                     : "you bring none",
                 spec ? "is another" : "has none");
    else
        differs = 0;
    free(enc);
    free(spec);
    return differs;
}

/* The first client's encoding and features spec become the federation's: the model's recipe
 * (the imputation values join it after round 0). Returns 0, or -1 when out of memory. */
static int adopt_recipe(coord *co, const fedc_schema *s) {
    fedc_diag d;
    int rc = 0;
    if (s->encoding && *s->encoding && fedc_meta_put(co->model, "encoding", s->encoding, &d))
        rc = -1;
    if (!rc && s->features && *s->features && fedc_meta_put(co->model, "features", s->features, &d))
        rc = -1;
    if (rc)
        logm("cannot keep the first client's encoding and features spec (not JSON, or out of "
             "memory)");
    return rc;
}

/* Compares a joining client's schema with the federation's; names the first difference. */
static int schema_differs(const coord *co, const fedc_schema *s, char *why, size_t cap) {
    const fedc_model *m = co->model;
    /* The encoding first: a different bucket count also shows as other column names. */
    if (recipe_differs(co, s, why, cap))
        return 1;
    if (strcmp(s->label, m->label_name) != 0) {
        snprintf(why, cap, "label column '%s', the federation uses '%s'", s->label, m->label_name);
        return 1;
    }
    size_t n = (size_t)co->n_features, i = 0;
    while (i < n && i < s->n_features && strcmp(s->feature_names[i], m->feature_names[i]) == 0)
        i++;
    /* A column too few or too many shows as the first position where the names part. */
    if (s->n_features < n) {
        snprintf(why, cap, "%zu features, the federation has %zu: missing column '%s'",
                 s->n_features, n, m->feature_names[i]);
        return 1;
    }
    if (s->n_features > n) {
        snprintf(why, cap, "%zu features, the federation has %zu: extra column '%s'", s->n_features,
                 n, s->feature_names[i]);
        return 1;
    }
    if (i < n) {
        snprintf(why, cap, "feature %zu is '%s', the federation has '%s' there", i + 1,
                 s->feature_names[i], m->feature_names[i]);
        return 1;
    }
    int task = (int)s->task;
    if (task != (int)co->task) {
        /* A multiclass client may simply lack the top classes; binary vs multiclass is a
         * matter of which labels a shard happens to hold. */
        int ok = co->task == FEDC_TASK_MULTICLASS && task == FEDC_TASK_BINARY;
        if (!ok) {
            snprintf(why, cap, "task %s, the federation trains %s", fedc_task_name(task),
                     fedc_task_name(co->task));
            return 1;
        }
    } else if (task == FEDC_TASK_MULTICLASS && (int)s->n_classes > co->n_classes) {
        snprintf(why, cap, "%u classes, the federation has %d", s->n_classes, co->n_classes);
        return 1;
    }
    return 0;
}

/* --init-weights: n raw little-endian float32 values, every one finite. Returns 0, or -1 after
 * logging why. */
static int read_init_weights(const char *path, float *out, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        logm("--init-weights %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t got = fread(out, 4, n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        logm("--init-weights %s: expected exactly %zu float32 values (%zu bytes) for the clients' "
             "model, the file holds %s",
             path, n, 4 * n, extra ? "more" : "fewer");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(out[i])) {
            logm("--init-weights %s: value %zu is not a finite number", path, i);
            return -1;
        }
    }
    return 0;
}

/* A run of clients' own models: the first client's model fixes the kind and the parameter count;
 * the initial values come from --init-weights or from its offer (j->init): inline, or announced
 * streamed and then pulled from it alone (stream.c, stream_init_next), so that the other clients'
 * values never reach us (every Join carrying a model would cost the coordinator one model per
 * client while ZeroMQ receives them). */
static int adopt_external(coord *co, const fedc_join *j) {
    const fedc_schema *s = &j->schema;
    if (!j->n_params) {
        logm("--model external: the first client brings fedc's MLP, not a model of its own");
        return -1;
    }
    if (fedc_model_new_flat(&co->model, (int)s->n_features, (fedc_task)s->task, (int)s->n_classes,
                            (size_t)j->n_params) ||
        fedc_model_set_schema(co->model, s->feature_names, s->label, NULL, NULL)) {
        logm("cannot hold a model of %llu parameters", (unsigned long long)j->n_params);
        return -1;
    }
    snprintf(co->model_kind, sizeof co->model_kind, "%s", j->model_kind ? j->model_kind : "");
    logm("the clients' own model '%s': %zu parameters, initial values from %s", co->model_kind,
         co->model->n_params, co->cfg->init_weights ? co->cfg->init_weights : "the first client");
    if (adopt_recipe(co, s))
        return -1;
    if (co->cfg->init_weights)
        return read_init_weights(co->cfg->init_weights, co->model->params, co->model->n_params);
    if (j->init.streamed)
        co->init_wait = 1; /* on_join starts the pull once the client has its slot */
    else
        fedc_tensor_read(co->model->params, &j->init);
    return 0;
}

/* Fixes the schema from the first client and builds the initial global model. */
static int adopt_schema(coord *co, const fedc_join *j) {
    const fedc_schema *s = &j->schema;
    if (co->cfg->model_external)
        return adopt_external(co, j);
    fedc_arch arch;
    fedc_diag d;
    if (fedc_arch_make(&arch, (int)s->n_features, co->cfg->hidden, co->cfg->n_hidden, co->cfg->act,
                       (fedc_task)s->task, (int)s->n_classes, &d)) {
        logm("cannot build the model for this schema: %s", d.msg);
        return -1;
    }
    if (fedc_model_new(&co->model, &arch) ||
        fedc_model_set_schema(co->model, s->feature_names, s->label, NULL, NULL)) {
        logm("out of memory building the model");
        return -1;
    }
    fedc_model_init(co->model, co->cfg->seed);
    return adopt_recipe(co, s);
}

/* Bytes of the largest message a client sends for a model of n_params parameters: its update as
 * a raw frame (under secure aggregation the masked vector, a few values longer) when it is small
 * enough to travel whole, else one chunk of it (--max-msg-mb bounds a chunk, not a model), or its
 * evaluation counts (eval_bytes), plus the envelope. */
static size_t client_msg_bytes(const coord *co, size_t n_params, size_t eval_bytes) {
    size_t fit = 4 * (co->cfg->secagg ? fedc_sa_fit_len(n_params) : n_params);
    if (fit > FEDC_INLINE_MAX_BYTES)
        fit = FEDC_INLINE_MAX_BYTES;
    return (fit > eval_bytes ? fit : eval_bytes) + ENVELOPE_SLACK;
}

/* The evaluation answer for the model in co (binary: two histograms; multiclass: a confusion
 * matrix), in the worst case of its encoding. */
size_t eval_msg_bytes(const coord *co) {
    if (!co->eval)
        return 0;
    if (co->cfg->secagg)
        return 4 * fedc_sa_eval_len(co->eval);
    /* Plain EvaluateRes: varint counts of at most 10 bytes each. */
    return 10 * (2 * (size_t)co->eval->bins + (size_t)co->n_classes * (size_t)co->n_classes + 8);
}

/* Writes why --max-msg-mb cannot carry a model of n_params parameters on n_features inputs into
 * why (cap bytes); returns 0 when it can. ZeroMQ would drop each such message with its
 * connection, and the run would stall with nothing in the log to say why. */
int msg_cap_too_small(const coord *co, size_t n_params, int n_features, size_t eval_bytes,
                      char *why, size_t cap) {
    size_t need = client_msg_bytes(co, n_params, eval_bytes), have = co->cfg->max_msg;
    if (need <= have)
        return 0;
    size_t mib = (need + ((size_t)1 << 20) - 1) >> 20;
    snprintf(why, cap,
             "--max-msg-mb %zu (%zu bytes) is below what one update message needs: %zu bytes "
             "for a model of %zu parameters on %d feature(s) (4 bytes each%s, plus the "
             "envelope); start the coordinator with --max-msg-mb %zu or more",
             have >> 20, have, need, n_params, n_features,
             co->cfg->secagg ? ", a few more values under secure aggregation" : "", mib);
    return 1;
}

/* --layers alone bounds the model from below (one input feature, one output): a cap below even
 * that is refused before the coordinator listens. Returns 0 or an exit code (logged). */
int check_msg_cap_early(const coord *co) {
    if (co->cfg->model_external)
        return 0; /* the size comes with the first client */
    fedc_arch arch;
    fedc_diag d;
    if (fedc_arch_make(&arch, 1, co->cfg->hidden, co->cfg->n_hidden, co->cfg->act, FEDC_TASK_BINARY,
                       2, &d))
        return 0; /* the flags were checked in main.c; the schema step reports the rest */
    char why[512];
    if (msg_cap_too_small(co, fedc_arch_n_params(&arch), 1, 0, why, sizeof why)) {
        logm("%s (even with a single input feature, --layers fixes that much)", why);
        return 2;
    }
    return 0;
}

/* The round state sized by the model, once the first Join fixed it or a checkpoint restored it;
 * -1 (logged) when it cannot be had. */
int alloc_round_state(coord *co) {
    co->n_params = co->model->n_params;
    co->n_features = co->model->arch.sizes[0];
    co->task = co->model->arch.task;
    co->n_classes = co->model->arch.n_classes;
    co->have_schema = 1;
    /* co->upd (the round's aggregate) is allocated per round (rounds.c, upd_begin). Under secure
     * aggregation updates are summed in the session's vector, never here: the plain accumulator (8
     * bytes per parameter) is not needed at full size. */
    size_t acc_n = co->cfg->secagg ? 1 : co->n_params;
    if (fedc_accum_new(&co->acc, acc_n, FEDC_ACCUM_FRAC_BITS) ||
        fedc_eval_acc_new(&co->eval, co->task, co->n_classes, FEDC_EVAL_BINS) ||
        fedc_eval_acc_new(&co->eval_tmp, co->task, co->n_classes, FEDC_EVAL_BINS)) {
        logm("out of memory for a model of %zu parameters", co->n_params);
        return -1;
    }
    if (agg_strategy_start(co))
        return -1;
    stream_log_plan(co);
    return 0;
}

static int peer_is(const client *c, const fedc_peer *p) {
    return !c->gone && c->peer.len == p->len && memcmp(c->peer.id, p->id, p->len) == 0;
}

static uint32_t peer_hash(const fedc_peer *p) {
    uint32_t h = 2166136261u; /* FNV-1a: the ids are the ROUTER's own, not chosen by peers */
    for (size_t i = 0; i < p->len; i++)
        h = (h ^ p->id[i]) * 16777619u;
    return h;
}

/* Every message is looked up by its sender, so a scan over the table cost O(clients) per message
 * (bench_scale, 1,000 clients: a visible share of the coordinator's CPU per client). The index
 * only caches where a peer was found: a slot whose client left or changed peer is skipped, and
 * the index is emptied when half full, so it never needs to follow the table's changes. The
 * ROUTER's routing ids are unique among its connections, so the live client with a given peer
 * is the one the scan would find. */
client *find_peer(coord *co, const fedc_peer *p) {
    const uint32_t mask = PEER_IX_SLOTS - 1;
    uint32_t s = peer_hash(p) & mask;
    for (; co->peer_ix[s]; s = (s + 1) & mask) {
        int i = co->peer_ix[s] - 1;
        if (i < co->n_cl && peer_is(&co->cl[i], p))
            return &co->cl[i];
    }
    for (int i = 0; i < co->n_cl; i++) {
        if (!peer_is(&co->cl[i], p))
            continue;
        if (co->peer_ix_used >= PEER_IX_SLOTS / 2) {
            memset(co->peer_ix, 0, PEER_IX_SLOTS * sizeof *co->peer_ix);
            co->peer_ix_used = 0;
            s = peer_hash(p) & mask;
        }
        co->peer_ix[s] = i + 1;
        co->peer_ix_used++;
        return &co->cl[i];
    }
    return NULL;
}

client *find_name(coord *co, const char *name) {
    for (int i = 0; i < co->n_cl; i++)
        if (strcmp(co->cl[i].name, name) == 0)
            return &co->cl[i];
    return NULL;
}

static int n_alive(const coord *co) {
    int n = 0;
    for (int i = 0; i < co->n_cl; i++)
        n += co->cl[i].alive && !co->cl[i].gone;
    return n;
}

void free_stats(client *c) {
    free(c->st_sum);
    free(c->st_sq);
    free(c->st_cc);
    free(c->st_present);
    c->st_present = NULL;
    c->st_sum = c->st_sq = NULL;
    c->st_cc = NULL;
}

void mark_dead(coord *co, client *c, const char *why) {
    if (c->alive)
        logp(co, &c->peer, peer_name(c), "%s %s; marked dead (not selected until it shows life)",
             peer_name(c), why);
    c->alive = 0;
}

void miss_deadline(coord *co, client *c, const char *why) {
    if (c->strikes < 30)
        c->strikes++;
    int wait = 1 << (c->strikes - 1 < 10 ? c->strikes - 1 : 10);
    c->bench_until = co->round + (uint32_t)wait;
    if (c->alive)
        logm("%s %s; marked dead and left out until round %u (%d deadline(s) missed in a row; "
             "heartbeats do not shorten this)",
             peer_name(c), why, c->bench_until, c->strikes);
    c->alive = 0;
}

void completed_exchange(client *c) {
    c->strikes = 0;
}

void exclude_member(coord *co, client *c, const char *why) {
    if (!c->excluded) {
        logm("%s %s; excluded from secure aggregation until it joins again", peer_name(c), why);
        co->excluded_total++;
    }
    c->excluded = 1;
}

const uint8_t *allow_key(const coord *co, const char *name) {
    for (int i = 0; i < co->n_allow; i++)
        if (strcmp(co->allow[i].name, name) == 0)
            return co->allow[i].sign_pk;
    return NULL;
}

/* Whether a client may be sent work this round: live, not excluded, not benched, and not waiting
 * for the allow-list that admitted it (reload.c). */
int client_eligible(const coord *co, const client *c) {
    return c->alive && !c->gone && !c->excluded && !c->await_list &&
           (co->round >= c->bench_until || co->bench_relaxed);
}

int min_clients_now(const coord *co) {
    int excluded = 0;
    for (int i = 0; i < co->n_cl; i++)
        excluded += co->cl[i].excluded && !co->cl[i].gone;
    int m = co->cfg->min_clients - excluded, floor_n = co->cfg->secagg ? co->cfg->sa_min_nbrs : 1;
    return m > floor_n ? m : floor_n;
}

int n_eligible(const coord *co) {
    int n = 0;
    for (int i = 0; i < co->n_cl; i++)
        n += client_eligible(co, &co->cl[i]);
    return n;
}

/* Join slots. The table holds MAX_CLIENTS slots. A slot whose client never had an answer counted
 * (took_part) and that is gone (Bye) or has been silent for the heartbeat timeout is given back
 * when a join finds the table full, so that joins that go silent (a misbehaving or hostile peer,
 * say with
 * --insecure) cannot fill it for good. A freed slot keeps gone = 1 and an empty name, so every
 * loop over the table skips it; a slot that is part of the open secure-aggregation session is
 * left alone (the session refers to it). */

static int slot_free(const client *c) {
    return c->gone && !c->name[0];
}

static int slot_reclaimable(const coord *co, const client *c, double t) {
    if (slot_free(c) || c->took_part)
        return 0;
    if (co->sa.active && (c->sa_in || c->sa_id >= 0))
        return 0;
    return c->gone || (!c->alive && t - c->last_seen > co->cfg->heartbeat_timeout_s);
}

/* A slot for a new client (zeroed, not yet counted), or NULL when every one is held by a live
 * client or one that took part in the run. */
static client *take_slot(coord *co) {
    if (co->n_cl < MAX_CLIENTS)
        return &co->cl[co->n_cl++];
    client *got = NULL;
    int freed = 0;
    double t = fedc_clock_s();
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        if (slot_reclaimable(co, c, t)) {
            free_stats(c);
            free(c->upd);
            free(c->as_held); /* --mode async: an update it had held (async.c) */
            memset(c, 0, sizeof *c);
            c->gone = 1;
            c->sa_id = -1;
            freed++;
        }
        if (!got && slot_free(c))
            got = c;
    }
    if (freed)
        logm("the table of %d client slots was full: freed %d slot(s) of clients that left or "
             "fell silent for %.0f s without taking part",
             MAX_CLIENTS, freed, co->cfg->heartbeat_timeout_s);
    return got;
}

static void send_welcome(coord *co, client *c) {
    const fedc_model *m = co->model;
    fedc_msg e;
    uint32_t sizes[FEDC_MAX_LAYERS + 1];
    env_init(co, &e, FEDC_MSG_WELCOME, co->round);
    fedc_welcome *w = &e.welcome;
    w->schema.n_features = (size_t)co->n_features;
    w->schema.feature_names = m->feature_names;
    w->schema.label = m->label_name;
    w->schema.task = (uint32_t)co->task;
    w->schema.n_classes = (uint32_t)co->n_classes;
    for (int i = 0; i <= m->arch.n_layers; i++)
        sizes[i] = (uint32_t)m->arch.sizes[i];
    if (co->cfg->model_external) {
        w->n_params = co->n_params;
        w->model_kind = co->model_kind;
    } else {
        w->n_layer_sizes = (size_t)m->arch.n_layers + 1;
        w->layer_sizes = sizes;
        w->hidden_act = (uint32_t)m->arch.hidden_act;
    }
    w->hp.local_epochs = (uint32_t)co->cfg->local_epochs;
    w->hp.batch = (uint32_t)co->cfg->batch;
    w->hp.lr = co->cfg->lr;
    w->hp.prox_mu = co->cfg->prox_mu;
    w->hp.optimizer = (uint32_t)co->cfg->optimizer;
    w->hp.keep_opt_state = co->cfg->keep_opt_state;
    w->hp.l2 = co->cfg->l2;
    w->hp.dropout = co->cfg->dropout;
    w->hp.val_fraction = co->cfg->val_fraction;
    w->rounds = (uint32_t)co->cfg->rounds;
    w->seed = co->cfg->seed;
    w->max_msg_bytes = co->cfg->max_msg;
    w->init_wanted = co->init_wait;
    w->heartbeat_ms = fedc_heartbeat_ask_ms(co->cfg->heartbeat_timeout_s);
    (void)send_to(co, c, &e);
}

/* Whether a joining client's model is the run's: the MLP for an MLP run, the same kind and
 * parameter count for a run of the clients' own models. */
static int model_differs(const coord *co, const fedc_join *j, char *why, size_t cap) {
    const char *kind = j->model_kind ? j->model_kind : "";
    if (!co->cfg->model_external) {
        if (j->n_params)
            snprintf(why, cap,
                     "your model is your own ('%s', %llu parameters) but this coordinator trains "
                     "fedc's MLP (start it with --model external for own models)",
                     kind, (unsigned long long)j->n_params);
        return j->n_params != 0;
    }
    if (!j->n_params) {
        snprintf(why, cap,
                 "you bring fedc's MLP but this run trains the clients' own model%s%s%s "
                 "(--model external)",
                 co->model_kind[0] ? " '" : "", co->model_kind, co->model_kind[0] ? "'" : "");
        return 1;
    }
    if (!co->have_schema)
        return 0; /* the first own model fixes the run's */
    if (j->n_params != co->n_params || (co->model_kind[0] && strcmp(kind, co->model_kind) != 0)) {
        snprintf(why, cap, "your model is '%s' with %llu parameters, the run's is '%s' with %zu",
                 kind, (unsigned long long)j->n_params, co->model_kind, co->n_params);
        return 1;
    }
    return 0;
}

/* Whether client c's connection is closed: a heartbeat to it cannot be routed (ZeroMQ drops the
 * routing id of a closed connection). A heartbeat is harmless to a client that is there. */
static int connection_gone(coord *co, client *c) {
    fedc_msg m;
    env_init(co, &m, FEDC_MSG_HEARTBEAT, co->round);
    fedc_diag d;
    return fedc_net_send_msg(co->ep, &c->peer, &m, NULL, &d) != FEDC_OK;
}

/* A Join from `from`. name: the ZAP user id with CurveZMQ (the name bound to the client's key),
 * else the name the client gives. */
void on_join(coord *co, const fedc_peer *from, const fedc_msg *e, const char *name) {
    const fedc_join *j = &e->join;
    char why[512];
    if (!co->have_schema && model_differs(co, j, why, sizeof why)) {
        /* An MLP client at a run of own models or the reverse: refused before it fixes
         * anything. */
        char reason[700];
        snprintf(reason, sizeof reason, "refused: %s", why);
        logp(co, from, name, "refused %s: %s", name, why);
        fedc_net_send_bye(co->ep, from, co->run_id, e->round, FEDC_BYE_REFUSED, reason);
        return;
    }
    if (!co->have_schema) {
        if (adopt_schema(co, j) || alloc_round_state(co)) {
            reply_error(co, from, e->round, FEDC_EINVAL, "the coordinator cannot use this schema");
            return;
        }
        logm("schema fixed by %s: %zu features, label '%s', task %s", name, j->schema.n_features,
             j->schema.label, fedc_task_name(co->task));
        char too[512];
        if (msg_cap_too_small(co, co->n_params, co->n_features, eval_msg_bytes(co), too,
                              sizeof too)) {
            /* Only now is the model's size known: stop here rather than run rounds whose
             * updates would vanish. */
            logm("cannot run: %s", too);
            char reason[600];
            snprintf(reason, sizeof reason, "run failed: the coordinator's %s", too);
            fedc_net_send_bye(co->ep, from, co->run_id, e->round, FEDC_BYE_FAILED, reason);
            co->exit_code = 2;
            co->ph = PH_DONE;
            return;
        }
    }
    if (co->cfg->model_external && !co->model_kind[0] && j->n_params == co->n_params)
        snprintf(co->model_kind, sizeof co->model_kind, "%s", j->model_kind); /* resumed run */
    if (schema_differs(co, &j->schema, why, sizeof why) || model_differs(co, j, why, sizeof why)) {
        char reason[700];
        snprintf(reason, sizeof reason, "refused: your data does not match the federation: %s",
                 why);
        logp(co, from, name, "refused %s: %s", name, why);
        fedc_net_send_bye(co->ep, from, co->run_id, e->round, FEDC_BYE_REFUSED, reason);
        return;
    }
    if (allow_revoked_peer(co, from)) {
        /* The old connection of a client whose key left the allow-list (reload.c). */
        logp(co, from, name, "refused a join from %s: its key was removed from the allow-list",
             name);
        fedc_net_send_bye(co->ep, from, co->run_id, e->round, FEDC_BYE_REFUSED,
                          "refused: your key was removed from the coordinator's allow-list");
        return;
    }
    client *c = find_peer(co, from);
    client *same = find_name(co, name);
    if (same && same != c) {
        /* Two live connections with one identity. With CurveZMQ the name is the key's, so this
         * is the same key: the newer one is refused until the older one falls silent. */
        double live = co->cfg->heartbeat_timeout_s;
        int is_live = same->alive && !same->gone && fedc_clock_s() - same->last_seen < live;
        if (is_live && co->secure) {
            char reason[160];
            snprintf(reason, sizeof reason,
                     "the name '%s' is in use by a live client; retry later or pick another name",
                     name);
            reply_error(co, from, e->round, FEDC_EINVAL, reason);
            return;
        }
        /* With --insecure the name is only what the client says (by default its host name),
         * so two processes may claim one. A restart shows as a closed old connection (ZeroMQ
         * forgets its routing id at once): take over then. An old connection that is still up
         * and heard from is another client: refuse the newcomer for good, naming the flag,
         * rather than let the two evict each other round after round. */
        if (is_live && !connection_gone(co, same)) {
            char reason[300];
            snprintf(reason, sizeof reason,
                     "refused: the name '%s' is taken by another client connected now; with "
                     "--insecure every client needs its own --name (the default is the host "
                     "name)",
                     name);
            logp(co, from, name, "refused a second client calling itself '%s': %s", name,
                 "that name is connected already (--insecure: names are not keys)");
            fedc_net_send_bye(co->ep, from, co->run_id, e->round, FEDC_BYE_REFUSED, reason);
            return;
        }
        /* The same participant on a new connection (it restarted, or we did): take over. */
        if (c)
            c->gone = 1;
        c = same;
        c->peer = *from;
        c->gone = 0;
        c->revoked = 0; /* a new connection passed the allow-list in force */
        if (co->cfg->async_mode) {
            /* --mode async: a training in flight on the old one is lost, and so is an update the
             * client held for a secure session (async_sa.c) */
            c->fit_sel = 0;
            c->as_ready = 0;
            if (c->as_remote) /* a streamed update it kept for a later buffer, too */
                c->as_have = c->as_remote = 0;
            c->as_dl_left = 0;
            c->as_eval_due = 0;
        }
        logm("%s reconnected", c->name);
    }
    if (!c) {
        c = take_slot(co);
        if (!c) {
            char reason[256];
            snprintf(reason, sizeof reason,
                     "the federation is full: all %d client slots (the coordinator's limit) are "
                     "held by live clients or clients that took part; retry later",
                     MAX_CLIENTS);
            logp(co, from, name, "refused %s: %s", name, reason);
            reply_error(co, from, e->round, FEDC_ERANGE, reason);
            return;
        }
        memset(c, 0, sizeof *c);
        c->sa_id = -1; /* in no secure session until one numbers it */
        c->peer = *from;
        snprintf(c->name, sizeof c->name, "%s", name);
        logm("%s joined; %d client(s) connected", c->name, n_alive(co) + 1);
    }
    c->alive = 1;
    c->excluded = 0; /* its next round keys are checked again */
    if (c->up_stream == FEDC_STREAM_INIT)
        stream_gone(co, c); /* a new connection: the requests sent on the old one are lost */
    c->init_offer = co->cfg->model_external && j->n_params == co->n_params && j->init.streamed;
    c->last_seen = fedc_clock_s();
    /* Admitted by a reloaded list before it applies: its round keys could only be checked
     * against the list in force, which lacks its key; so it waits for the round boundary. */
    c->await_list = allow_pending_key(co, c->name);
    if (c->await_list)
        logm("%s: admitted by the reloaded allow-list; selected once that list applies, at the "
             "next round boundary",
             c->name);
    send_welcome(co, c);
    if (co->init_wait)
        stream_init_next(co, c);
}

static int cmp_client_name(const void *a, const void *b) {
    const client *x = *(client *const *)a, *y = *(client *const *)b;
    return strcmp(x->name, y->name);
}

/* Sorted (by name) list of clients matching a predicate, for order-independent arithmetic. */
int sorted_clients(coord *co, client **out, int (*pred)(const coord *, const client *)) {
    int n = 0;
    for (int i = 0; i < co->n_cl; i++)
        if (pred(co, &co->cl[i]))
            out[n++] = &co->cl[i];
    qsort(out, (size_t)n, sizeof *out, cmp_client_name);
    return n;
}
