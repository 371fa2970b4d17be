/* Private to core/net: the endpoint and ZAP handler state shared by transport.c and zap.c. */
#ifndef FEDC_NET_TRANSPORT_INT_H
#define FEDC_NET_TRANSPORT_INT_H

#include "fedc/transport.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_LOGGED_KEYS 64

/* The ZAP handler (RFC 27): a REP socket in the coordinator's context answering libzmq's
 * authentication requests from its own thread, with the allow-list. */
typedef struct zap {
    pthread_t thread;
    void *rep;
    /* allow, n_allow and the logged keys are swapped by fedc_net_set_allow from the owner's
     * thread while this thread answers requests: both hold lock while they touch them. */
    pthread_mutex_t lock;
    fedc_identity *allow;
    int n_allow;
    atomic_int stop;
    atomic_long refused;
    uint8_t probe_key[32]; /* the start-up self-test's key: refused without logging or counting */
    int has_probe;
    uint8_t logged[MAX_LOGGED_KEYS][32];
    int n_logged;
    const char *domain; /* the ZAP domain the endpoint sets (ZMQ_ZAP_DOMAIN) */
} zap;

struct fedc_endpoint {
    void *sock;
    int router;
    size_t max_msg; /* the bound on one incoming message (every frame after a routing id) */
    char endpoint[256];
    zap *zap;
    void *mon; /* PAIR socket receiving the monitor's events (secure DEALER) */
    int secure;
    uint8_t server_pk[32]; /* secure ROUTER: our public key, for the start-up check */
};

/* transport.c: a socket of the given type with the endpoint's limits set (no bind/connect). */
fedc_err fedc__open_socket(fedc_endpoint **out, void *zctx, int type, size_t max_msg, fedc_diag *d);
/* zap.c: stops the handler thread and frees its state (z may be NULL). */
void fedc__zap_stop(zap *z);

#endif
