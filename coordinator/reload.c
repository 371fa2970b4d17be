/* The allow-list read again without a restart (fedc_coord_reload, SIGHUP in fedc-coordinator).
 *
 * Two moments, so that a reload never breaks a round under way:
 *   allow_reload  (the loop turn after the request) reads --allow; a list that cannot be read
 *                 changes nothing. A good one goes to the ZAP handler at once, so a new key can
 *                 connect now and a removed one cannot open a new connection; it waits in
 *                 allow_next, and the clients whose key left (or changed) are marked revoked.
 *   allow_apply   (the next round boundary: the state machine in PH_WAIT, before it selects)
 *                 makes allow_next the list that signs secure-aggregation keys, and tells each
 *                 revoked client Bye (refused) and forgets it.
 * A revoked client connected mid-round thus finishes that round (its answer counts: it was
 * admitted when the round began, and dropping it from a secure session would cost the others the
 * round); it is selected for no later round. A client that joins between the two moments with a
 * key only the new list holds (await_list) is selected for no session until allow_apply: every
 * session of a round checks round keys against the one list in force for it (secure.c on_keys),
 * and that list does not know the new key, so selecting it earlier excluded it for good. A
 * removed key is thus never used after the round under way, and a new one waits one boundary.
 * CurveZMQ authenticates a connection once, at its handshake, so its old connection stays up: the
 * coordinator no longer knows it, and a Join from it is refused (allow_revoked_peer). */
#include "coord_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The entry for name in a list, or NULL. */
static const fedc_identity *find_id(const fedc_identity *ids, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i].name, name) == 0)
            return &ids[i];
    return NULL;
}

/* 1 when name's key in `now` differs from the one in `was` (absent counts as different). */
static int key_changed(const fedc_identity *was, const fedc_identity *now) {
    return !was || !now || memcmp(was->curve_pk, now->curve_pk, 32) != 0 ||
           memcmp(was->sign_pk, now->sign_pk, 32) != 0;
}

/* Appends name to a comma-separated list in buf (cap bytes), with "..." once it is full. */
static void list_add(char *buf, size_t cap, const char *name) {
    size_t n = strlen(buf);
    if (n + 4 >= cap)
        return;
    size_t need = strlen(name) + (n ? 2 : 0);
    if (n + need + 4 >= cap) {
        snprintf(buf + n, cap - n, "%s...", n ? ", " : "");
        return;
    }
    snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", name);
}

void allow_reload(coord *co) {
    const coord_cfg *cfg = co->cfg;
    if (!co->secure) {
        logm("reload requested: --insecure has no allow-list; nothing changed");
        return;
    }
    fedc_identity *ids = NULL;
    int n = 0;
    fedc_diag d;
    if (fedc_key_load_dir(&ids, &n, cfg->allow_dir, &d)) {
        logm("reload of the allow-list failed, the %d key(s) loaded before stay in force: "
             "--allow: %s",
             co->allow_next ? co->n_allow_next : co->n_allow, d.msg);
        return;
    }
    if (fedc_net_set_allow(co->ep, ids, n, &d)) {
        logm("reload of the allow-list failed, the %d key(s) loaded before stay in force: %s",
             co->allow_next ? co->n_allow_next : co->n_allow, d.msg);
        free(ids);
        return;
    }
    /* Against the list in force for the round under way: what this reload adds and removes. */
    char added[512] = "", removed[512] = "";
    for (int i = 0; i < n; i++) {
        const fedc_identity *was = find_id(co->allow, co->n_allow, ids[i].name);
        if (!was)
            list_add(added, sizeof added, ids[i].name);
        else if (key_changed(was, &ids[i]))
            list_add(removed, sizeof removed, ids[i].name); /* the old key is gone */
    }
    for (int i = 0; i < co->n_allow; i++)
        if (!find_id(ids, n, co->allow[i].name))
            list_add(removed, sizeof removed, co->allow[i].name);
    /* Marks from an earlier reload that has not applied yet are recomputed against this list:
     * each client against the key it connected with, which for one that joined under that
     * earlier list (await_list) is in allow_next, not in the list in force. */
    int revoked = 0, in_round = co->ph != PH_WAIT;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        c->revoked = 0;
        if (c->gone || !c->name[0])
            continue;
        const fedc_identity *had = c->await_list
                                       ? find_id(co->allow_next, co->n_allow_next, c->name)
                                       : find_id(co->allow, co->n_allow, c->name);
        if (key_changed(had, find_id(ids, n, c->name))) {
            c->revoked = 1;
            revoked++;
        }
    }
    free(co->allow_next);
    co->allow_next = ids;
    co->n_allow_next = n;
    logm("reloaded the allow-list %s: %d key(s); added: %s; removed or changed: %s; %d connected "
         "client(s) affected, refused %s",
         cfg->allow_dir, n, added[0] ? added : "none", removed[0] ? removed : "none", revoked,
         in_round ? "when the round under way ends" : "now");
}

static void remember_peer(coord *co, const fedc_peer *p) {
    co->revoked_peer[co->n_revoked % REVOKED_MAX] = *p;
    co->n_revoked++;
}

int allow_revoked_peer(const coord *co, const fedc_peer *p) {
    int n = co->n_revoked < REVOKED_MAX ? co->n_revoked : REVOKED_MAX;
    for (int i = 0; i < n; i++) {
        const fedc_peer *r = &co->revoked_peer[i];
        if (r->len == p->len && memcmp(r->id, p->id, p->len) == 0)
            return 1;
    }
    return 0;
}

int allow_pending_key(const coord *co, const char *name) {
    if (!co->allow_next)
        return 0;
    return key_changed(find_id(co->allow, co->n_allow, name),
                       find_id(co->allow_next, co->n_allow_next, name));
}

void allow_apply(coord *co) {
    if (!co->allow_next)
        return;
    free(co->allow);
    co->allow = co->allow_next;
    co->n_allow = co->n_allow_next;
    co->allow_next = NULL;
    co->n_allow_next = 0;
    for (int i = 0; i < co->n_cl; i++) {
        client *c = &co->cl[i];
        c->await_list = 0; /* its key is in the list in force now (or it is revoked below) */
        if (!c->revoked)
            continue;
        c->revoked = 0;
        if (c->gone || !c->name[0])
            continue;
        logm("%s: its key is no longer in the allow-list; refused from round %u on", c->name,
             co->round);
        send_bye(co, c, FEDC_BYE_REFUSED,
                 "refused: your key was removed from the coordinator's allow-list (--allow); ask "
                 "its operator to add it back");
        remember_peer(co, &c->peer);
        c->alive = 0;
        c->gone = 1;
    }
}
