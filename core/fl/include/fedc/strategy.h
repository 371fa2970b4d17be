/* Strategies: how the coordinator selects the clients of a round, combines their updates into one
 * and applies it to the global model, behind one interface. fedc's own rules are strategies
 * built from the coordinator's flags (fedc_strategy_fedavg); a program embedding the coordinator
 * can hand it a strategy of its own (coord_cfg.strategy) without changing fedc
 * (examples/custom_strategy).
 *
 * A round, as the coordinator drives it:
 *   1. select       which of the eligible clients train (NULL: the built-in uniform sample)
 *   2. the clients train and send their updates u_k = w_k - w
 *   3. aggregate    the updates into one update u (only when needs_updates; otherwise the
 *                   framework forms the weighted mean itself, see below)
 *   4. server_step  w <- w + f(u) with the strategy's own state (server learning rate, momentum)
 * Client-level differential privacy, when configured, stays the framework's: the Poisson sample
 * replaces step 1 and the noise is added to u between steps 3 and 4 (coordinator/aggregate.c).
 *
 * Weighting: one rule (fedc_strategy_weight). FedAvg (McMahan et al., AISTATS 2017) weights
 * client k by n_k / n, its share of the training examples; a strategy with uniform_weights, and
 * every round under client-level DP (McMahan et al., ICLR 2018: one client must move the sum by
 * at most the clip norm), weights every update 1 / (number of updates).
 *
 * Individual updates. With secure aggregation (the default) the coordinator only ever learns the
 * weighted sum of the updates, so a strategy with needs_updates is refused when the coordinator
 * starts with secure aggregation on (fedc_strategy_check says why); without needs_updates the
 * aggregate is the weighted mean sum_k w_k u_k of the updates (each scaled to clip_norm first
 * when that is set), which the framework forms incrementally in exact fixed point (fl.h) or as
 * the secure sum, and aggregate is not called.
 *
 * Callbacks run on the coordinator's thread, one at a time; none may keep a pointer it is given
 * beyond the call. A strategy handed to the coordinator is borrowed: its owner destroys it
 * (fedc_strategy_destroy) after fedc_coord_destroy. Its state is not checkpointed (the built-in
 * server optimisers' is, by the coordinator). */
#ifndef FEDC_STRATEGY_H
#define FEDC_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"
#include "fedc/fl.h"
#include "fedc/robust.h"

/* One eligible client in select. */
typedef struct fedc_candidate {
    const char *name;  /* the client's name (the list is in name order, stable across rounds) */
    uint64_t examples; /* its training rows when known (round 0 statistics with secure
                          aggregation off), else 0 */
} fedc_candidate;

/* What select is told about the round. */
typedef struct fedc_select_in {
    uint32_t round;                /* from 1 */
    uint64_t seed;                 /* the run's seed (coord_cfg.seed), for reproducible picks */
    double fraction_fit;           /* the configured share of clients per round */
    int min_fit_clients;           /* results a round needs to count */
    const fedc_candidate *clients; /* the eligible clients */
    int n;                         /* how many (>= 1) */
} fedc_select_in;

typedef struct fedc_strategy {
    const char *name; /* for logs: "mean", "krum", "my-rule", ... */
    void *ctx;        /* the strategy's own state, passed to every callback */
    /* 1: aggregate must see every update on its own (refused with secure aggregation on). */
    int needs_updates;
    /* 1: every update weighs the same; 0: FedAvg's n_k / n (fedc_strategy_weight). */
    int uniform_weights;
    /* > 0: the L2 norm every update is scaled down to before aggregation (the norm bound of Sun
     * et al., "Can You Really Backdoor Federated Learning?", 2019): clients are told to clip to
     * it, and the coordinator scales a plain update beyond it itself. 0: the coordinator's
     * --update-norm-bound, beyond which an update is refused. */
    double clip_norm;
    /* needs_updates only: 1 when the aggregate is bounded by the updates coordinate by
     * coordinate only (median, trimmed mean), so its L2 norm is checked against sqrt(n) times the
     * updates' bound; 0 when it is a convex combination of them (mean, Krum, Multi-Krum). */
    int coordinatewise;

    /* Optional (NULL: the built-in uniform sample, fedc_sample_clients of fraction_fit, at least
     * min_fit_clients). Writes the indices into in->clients of the clients that train to chosen
     * (room for in->n) and returns how many (0 .. in->n), or -1 with d set to give up the round.
     * Refused under client-level DP, whose accountant assumes Poisson sampling. */
    int (*select)(void *ctx, const fedc_select_in *in, int *chosen, fedc_diag *d);
    /* Required when needs_updates, else not called (may be NULL). out (p values) = the one
     * update made of u[0..n) (p values each, in client-name order, all finite) with weights
     * w[0..n) (fedc_strategy_weight, summing to 1). *chosen (never NULL) starts at -1; a rule
     * that picks one update (Krum) sets it to that index, for the log. */
    fedc_err (*aggregate)(void *ctx, float *out, const float *const *u, const double *w, int n,
                          size_t p, int *chosen, fedc_diag *d);
    /* Optional: called once the model's size p is known, before any server_step (and before a
     * resumed run restores the built-in optimisers' state). */
    fedc_err (*start)(void *ctx, size_t p, fedc_diag *d);
    /* Required: applies the round's aggregated update u (p values) to the global weights w (p
     * values) in place. An error stops the run with d's message. */
    fedc_err (*server_step)(void *ctx, uint32_t round, float *w, const float *u, size_t p,
                            fedc_diag *d);
    /* Optional: frees ctx (fedc_strategy_destroy). */
    void (*destroy)(void *ctx);
} fedc_strategy;

/* The weighting rule, the one place it is written: the weight of an update of `examples` rows
 * among updates totalling `total` rows, or 1 / n_updates when uniform. Under secure aggregation
 * each client weighs its own update with total = round 0's federation-wide rows
 * (fedc_strategy_weight(rows, total, 1, uniform): a share in (0, 1], the weights summing to at
 * most 1, or 1 when uniform, the coordinator dividing the sum by the summed weight); the plain
 * accumulator uses the integer numerators (fedc_strategy_weight_units). NaN for total <= 0 or
 * n_updates < 1 when needed. */
double fedc_strategy_weight(uint64_t examples, double total, int n_updates, int uniform);
/* The same rule as integer numerators for the fixed-point accumulator (fl.h), whose mean divides
 * by their sum: 1 when uniform, else the example count. */
uint64_t fedc_strategy_weight_units(uint64_t examples, int uniform);

/* Buffered asynchronous aggregation (FedBuff, Nguyen et al. AISTATS 2022; fedc-coordinator
 * --mode async): an update trained on a model tau server steps older than the current one counts
 * s(tau) = 1 / sqrt(1 + tau) of a fresh one. fedc_staleness_scale writes s(tau) * src[i] to
 * dst[i] (dst may be src) and returns s(tau); the buffer's mean is then the accumulator's
 * (fl.h) weighted mean of the scaled updates: sum_k n_k s(tau_k) delta_k / sum_k n_k. */
double fedc_staleness_weight(uint32_t tau);
double fedc_staleness_scale(float *dst, const float *src, size_t n, uint32_t tau);

/* fedc's own strategies: the aggregation rule agg (mean = FedAvg's weighted mean; median, trimmed
 * mean, Krum, Multi-Krum, norm bound as in robust.h) and the server optimiser server (FedAvg,
 * FedAvgM, FedAdam as in fl.h), both copied. Fills *out (its ctx owned: fedc_strategy_destroy).
 * FEDC_EINVAL (d names the field) for an unknown rule or optimiser, a trimmed share outside
 * [0, 0.5), Krum's f < 0, a norm bound <= 0, or server hyperparameters outside fl.h's ranges;
 * FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_strategy_fedavg(fedc_strategy *out, const fedc_robust_cfg *agg,
                                              const fedc_server_cfg *server, fedc_diag *d);

/* The server optimiser of a strategy made by fedc_strategy_fedavg, after its start (the
 * coordinator checkpoints its state); NULL for any other strategy or before start. */
fedc_server *fedc_strategy_server(const fedc_strategy *s);

/* Whether the coordinator can run s: FEDC_EINVAL with the reason in d when server_step is
 * missing, needs_updates without aggregate, needs_updates with secure aggregation on (secagg),
 * or under client-level DP (dp) a select of its own, needs_updates or a clip_norm. */
FEDC_MUST_CHECK fedc_err fedc_strategy_check(const fedc_strategy *s, int secagg, int dp,
                                             fedc_diag *d);

/* Calls s->destroy(s->ctx) if set and zeroes *s; NULL or a zeroed strategy allowed. */
void fedc_strategy_destroy(fedc_strategy *s);

#endif
