/* Federated-learning maths that turns client results into global ones, with no sockets in sight:
 * the fixed-point FedAvg accumulator, the server optimisers, client sampling and federated
 * evaluation. Not here yet: quantisation for secure aggregation, masks, Shamir shares,
 * differential privacy, robust aggregators, checkpoints.
 *
 * Fixed-point accumulation (fedc_accum). The coordinator must get the same global model whatever
 * order the updates arrive in (docs/architecture.md, "Determinism and randomness"), and float
 * addition is not associative. So each update element is quantised to an integer number of 2^-f
 * steps (f = frac_bits, FEDC_ACCUM_FRAC_BITS = 24 by default), q = round_half_even(delta * 2^f),
 * multiplied exactly by the client's integer weight n_k (its example count), and added to an
 * int64 sum. Integer addition is exact and commutative, so the sum, and the mean
 *   mean[i] = sum[i] / (2^f * W),   W = sum of n_k,
 * are bit-identical for any arrival order. The mean is within 2^-(f+1) of the exact weighted mean
 * of the float updates (each q is within half a step of delta * 2^f, and a weighted mean of
 * errors bounded by 2^-(f+1) is bounded by it too), plus the final rounding to float.
 *
 * Headroom. With |q| <= FEDC_ACCUM_MAX_Q = 2^30 and W <= FEDC_ACCUM_MAX_WEIGHT = 2^32, every
 * partial sum satisfies |sum| <= W * 2^30 <= 2^62 < 2^63, so no sum can overflow in any order,
 * with one bit to spare. |q| <= 2^30 means |delta| <= 2^(30 - f): FEDC_ACCUM_MAX_ABS = 2^6 = 64
 * at the default f = 24 (FEDC_ACCUM_MAX_ABS_AT(f) in general). Updates are differences of weights
 * after one round of local training, normally far below 1 (and clipped before secure aggregation),
 * so an element beyond 64 signals a broken or hostile client and is refused. 2^32 examples per
 * round is far beyond any federation this code serves.
 *
 * The training loss is accumulated the same way, so that the reported round loss does not depend
 * on arrival order either: sum of n_k * round_half_even(loss_k * 2^24) in a 128-bit integer
 * (|loss_k| <= FEDC_ACCUM_MAX_LOSS = 2^38 keeps each term below 2^62 * 2^32 = 2^94).
 *
 * Server optimisers (fedc_server) apply the FedAvg mean update u = mean_k(w_k - w) to the global
 * weights w, following Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2
 * (their Delta_t is our u, their eta our lr):
 *   FedAvg  (McMahan et al., AISTATS 2017):   w += lr * u
 *   FedAvgM (Hsu, Qi & Brown, "Measuring the Effects of Non-Identical Data Distribution for
 *            Federated Visual Classification", arXiv:1909.06335, 2019):
 *                                             v = momentum * v + u;  w += lr * v
 *   FedAdam (Reddi et al. 2021, Algorithm 2, no bias correction):
 *                                             m = b1 m + (1 - b1) u;  v = b2 v + (1 - b2) u^2;
 *                                             w += lr * m / (sqrt(v) + tau)
 *
 * Client sampling (fedc_sample_clients) draws from the reproducible counter-based stream keyed by
 * (seed, "SAMP", round), so a restarted coordinator picks the same clients for the same round.
 *
 * Federated evaluation (fedc_eval_acc): clients add their predictions into counts, sums and score
 * histograms; the coordinator merges these and derives global metrics from them, so global
 * precision, recall and accuracy are exact and ROC-AUC / PR-AUC are finely binned, never averages
 * of per-client metrics. Counts are integers and merge exactly in any order; the double sums
 * (loss, regression sums) may differ in the last bits with the merge order, which affects reported
 * figures only, never the model.
 *
 * None of these objects is thread-safe; fedc_accum_add uses OpenMP inside for large vectors. */
#ifndef FEDC_FL_H
#define FEDC_FL_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/data.h"
#include "fedc/err.h"

/* ---- Fixed-point FedAvg accumulator ---------------------------------------------------------- */

#define FEDC_ACCUM_FRAC_BITS 24 /* resolution 2^-24 ~ 6e-8 per update element */
#define FEDC_ACCUM_MAX_FRAC_BITS 30
#define FEDC_ACCUM_MAX_WEIGHT (UINT64_C(1) << 32) /* largest total weight W of one round */
#define FEDC_ACCUM_MAX_Q (INT64_C(1) << 30)       /* largest |quantised element| */
/* Largest |delta| accepted at f fractional bits: FEDC_ACCUM_MAX_Q / 2^f = 2^(30 - f). */
#define FEDC_ACCUM_MAX_ABS_AT(f) ((double)(FEDC_ACCUM_MAX_Q >> (f)))
#define FEDC_ACCUM_MAX_ABS FEDC_ACCUM_MAX_ABS_AT(FEDC_ACCUM_FRAC_BITS) /* 64.0 */
#define FEDC_ACCUM_LOSS_FRAC_BITS 24
#define FEDC_ACCUM_MAX_LOSS 274877906944.0 /* 2^38, largest |train_loss| accepted */

typedef struct fedc_accum {
    size_t n;         /* elements */
    int frac_bits;    /* f: one step is 2^-f */
    int64_t *sum;     /* (n) owned: sum over contributions of n_k * round(delta_k[i] * 2^f) */
    uint64_t weight;  /* W = sum of n_k */
    int count;        /* number of contributions */
    double loss_sum;  /* sum of n_k * train_loss_k, converted from the exact loss_fx after every
                         add, so it is order-independent too */
    uint64_t loss_lo; /* loss_fx, a 128-bit two's-complement integer (loss_hi:loss_lo) = */
    int64_t loss_hi;  /* sum of n_k * round(train_loss_k * 2^FEDC_ACCUM_LOSS_FRAC_BITS) */
} fedc_accum;

/* Allocates a zeroed accumulator for n > 0 elements (*out caller-owned, fedc_accum_destroy).
 * FEDC_EINVAL when n == 0 or frac_bits is outside [0, FEDC_ACCUM_MAX_FRAC_BITS]; FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_accum_new(fedc_accum **out, size_t n, int frac_bits);
/* Frees *a (NULL allowed) and sets *a = NULL. */
void fedc_accum_destroy(fedc_accum **a);
/* Back to no contributions (zero sums, weight, count and loss). */
void fedc_accum_reset(fedc_accum *a);

/* Adds one client's contribution: sum[i] += weight * round(delta[i] * 2^f), rounding to nearest
 * with ties to even, and weight * train_loss to the loss sum. delta: (a->n) borrowed. Refuses
 * with FEDC_ERANGE, the accumulator unchanged and d naming the problem (the first offending
 * element's index and value): a non-finite element or one with |delta| > FEDC_ACCUM_MAX_ABS_AT(f),
 * weight 0, a total weight beyond FEDC_ACCUM_MAX_WEIGHT, a non-finite train_loss or one beyond
 * FEDC_ACCUM_MAX_LOSS. One vectorised pass moving 20 bytes per element, so memory-bound: for
 * 10M elements about 19 ms on one thread and 10 ms on two of the 2-vCPU development VM (where a
 * memset of the 80 MB sum alone takes 9 ms). OpenMP-parallel for large n; the result does not
 * depend on the thread count. d may be NULL. */
FEDC_MUST_CHECK fedc_err fedc_accum_add(fedc_accum *a, const float *delta, uint64_t weight,
                                        double train_loss, fedc_diag *d);

/* The same in pieces, for an update that arrives in chunks (streamed, never held whole):
 * fedc_accum_begin checks and counts the contribution's weight and loss (the checks of
 * fedc_accum_add; nothing changes on failure); fedc_accum_add_range adds
 * weight * round(delta[i] * 2^f) to sum[offset + i] for i < count (weight negative: takes such a
 * range out again exactly, the sums being integers), refusing like fedc_accum_add with that range
 * unchanged and d naming the element by its index in the whole vector; fedc_accum_cancel takes
 * a begun contribution's weight and loss back out (its ranges are the caller's to take out). */
FEDC_MUST_CHECK fedc_err fedc_accum_begin(fedc_accum *a, uint64_t weight, double train_loss,
                                          fedc_diag *d);
FEDC_MUST_CHECK fedc_err fedc_accum_add_range(fedc_accum *a, size_t offset, const float *delta,
                                              size_t count, int64_t weight, fedc_diag *d);
void fedc_accum_cancel(fedc_accum *a, uint64_t weight, double train_loss);
/* fedc_accum_add_range, and *sq = the sum of squares of delta[0..count) in double (0 on
 * refusal), in the same pass over delta: a streamed update's chunk is added and its share of the
 * update's L2 norm taken while its bytes are read once. */
FEDC_MUST_CHECK fedc_err fedc_accum_add_range_sq(fedc_accum *a, size_t offset, const float *delta,
                                                 size_t count, int64_t weight, double *sq,
                                                 fedc_diag *d);

/* The sum of squares of v[0..n) in double, in fedc_accum_add_range_sq's order (eight interleaved
 * partial sums), so that a norm taken apart from the addition has the same bits. */
double fedc_accum_sum_squares(const float *v, size_t n);

/* out: (a->n) caller-owned. out[i] = sum[i] / (2^f * W), divided in double and rounded to float.
 * FEDC_EEMPTY (out untouched) when nothing was added. */
FEDC_MUST_CHECK fedc_err fedc_accum_mean(const fedc_accum *a, float *out);

/* The weighted mean training loss, sum of n_k * loss_k / W from the exact fixed-point sum
 * (order-independent); NaN when nothing was added. */
double fedc_accum_mean_loss(const fedc_accum *a);

/* ---- Server optimisers ----------------------------------------------------------------------- */

typedef enum fedc_server_opt {
    FEDC_SERVER_FEDAVG = 0,
    FEDC_SERVER_FEDAVGM = 1,
    FEDC_SERVER_FEDADAM = 2,
} fedc_server_opt;

typedef struct fedc_server_cfg {
    fedc_server_opt kind;
    float lr;       /* server learning rate (eta); > 0 */
    float momentum; /* FedAvgM; in [0, 1) */
    float beta1;    /* FedAdam; in [0, 1) */
    float beta2;    /* FedAdam; in [0, 1) */
    float tau;      /* FedAdam adaptivity (the epsilon of Adam); > 0 */
} fedc_server_cfg;

/* Defaults per kind (fields that kind does not use are still filled, with FedAdam's values):
 *  FedAvg:  lr 1, which makes w the plain weighted average of the local models.
 *  FedAvgM: lr 1, momentum 0.9, the server momentum Hsu et al. (2019) report. Their effective
 *           step is lr / (1 - momentum) = 10 in steady state: with diverging rounds lower lr
 *           (lr = 1 - momentum gives FedAvg's effective step).
 *  FedAdam: lr 1e-2, beta1 0.9, beta2 0.99, tau 1e-3. Reddi et al. (2021) fix beta1 = 0.9 and
 *           beta2 = 0.99 and tune lr and tau per task on a grid; 1e-2 and 1e-3 are conservative
 *           choices from those grids (each step moves a coordinate by at most about lr). */
fedc_server_cfg fedc_server_defaults(fedc_server_opt kind);

typedef struct fedc_server {
    fedc_server_cfg cfg;
    size_t n;
    float *m;   /* (n) owned: FedAvgM velocity v, or FedAdam first moment m; NULL for FedAvg */
    float *v;   /* (n) owned: FedAdam second moment v; NULL otherwise */
    uint64_t t; /* steps taken */
} fedc_server;

/* Allocates a server optimiser for n > 0 parameters with zeroed state (*out caller-owned,
 * fedc_server_destroy). cfg is copied. FEDC_EINVAL for an unknown kind, n == 0 or a
 * hyperparameter outside the ranges above (non-finite included); FEDC_ENOMEM. The coordinator
 * checkpoints s->m, s->v and s->t and restores them by copying them back. */
FEDC_MUST_CHECK fedc_err fedc_server_new(fedc_server **out, const fedc_server_cfg *cfg, size_t n);
/* Frees *s (NULL allowed) and sets *s = NULL. */
void fedc_server_destroy(fedc_server **s);
/* One server step: updates w (n) in place from mean_update (n, borrowed), per the formulas at the
 * top, and advances s->t. Elementwise in float. */
void fedc_server_step(fedc_server *s, float *w, const float *mean_update);
/* "fedavg", "fedavgm", "fedadam"; "?" for an unknown value. */
const char *fedc_server_name(fedc_server_opt k);
/* The inverse of fedc_server_name (exact, lower case); FEDC_EINVAL for anything else. */
FEDC_MUST_CHECK fedc_err fedc_server_parse(fedc_server_opt *out, const char *name);

/* ---- Client sampling ------------------------------------------------------------------------- */

/* Chooses k = clamp(max(min_clients, ceil(fraction * n_candidates)), 0, n_candidates) distinct
 * clients out of candidates (n_candidates distinct ids, borrowed), with a partial Fisher-Yates
 * shuffle of the sorted candidates driven by the stream fedc_rng_key(seed, "SAMP", round, 0).
 * The pick therefore depends only on the candidate set, seed and round, not on the order the
 * candidates are listed in. ceil() forgives rounding noise of 1e-9 relative, so 0.1 of 30 is 3.
 * chosen: caller-owned, room for n_candidates ints (all used as scratch); the first k entries hold
 * the result in ascending order. Returns k, or -1 (a caller bug) when fraction is not in (0, 1],
 * n_candidates or min_clients is negative, or the candidates contain a duplicate. */
int fedc_sample_clients(int *chosen, const int *candidates, int n_candidates, double fraction,
                        int min_clients, uint64_t seed, uint64_t round);

/* ---- Federated evaluation -------------------------------------------------------------------- */

#define FEDC_EVAL_BINS 10000          /* score bins for binary tasks */
#define FEDC_EVAL_BINS_MAX (1u << 20) /* largest bin count accepted */
#define FEDC_EVAL_MAX_CLASSES 1024    /* the confusion matrix holds K^2 counts (8 MiB here) */

typedef struct fedc_eval_acc {
    int task;        /* fedc_task */
    int n_classes;   /* 2 binary, K multiclass, 1 regression */
    uint64_t n;      /* rows added */
    double loss_sum; /* sum of per-row unweighted loss: binary log loss with p clipped to
                        [1e-7, 1 - 1e-7], multiclass -log max(p[y], 1e-7), regression squared
                        error (the clipping of core/nn's metrics) */
    /* binary */
    uint32_t bins;                 /* FEDC_EVAL_BINS by default; 0 for other tasks */
    uint64_t *hist_pos, *hist_neg; /* (bins) owned: scores p binned by bin = min(bins-1,
                                      floor(p * bins)); p < 0 and NaN go to bin 0 */
    uint64_t tp, fp, tn, fn;       /* at the threshold: positive when p >= threshold */
    /* multiclass */
    uint64_t *confusion; /* (K, K) owned: row = true class, column = predicted (argmax) */
    /* regression */
    double sse, sum_y, sum_y2; /* sum (pred - y)^2, sum y, sum y^2 */
} fedc_eval_acc;

/* Allocates a zeroed accumulator (*out caller-owned, fedc_eval_acc_destroy). task is a fedc_task;
 * n_classes must be 2 for binary, in [2, FEDC_EVAL_MAX_CLASSES] for multiclass and 1 for
 * regression; bins (binary only, ignored otherwise) in [2, FEDC_EVAL_BINS_MAX]. FEDC_EINVAL
 * otherwise; FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_eval_acc_new(fedc_eval_acc **out, int task, int n_classes,
                                           uint32_t bins);
/* Frees *a (NULL allowed) and sets *a = NULL. */
void fedc_eval_acc_destroy(fedc_eval_acc **a);
/* Back to no rows (shape kept). */
void fedc_eval_acc_reset(fedc_eval_acc *a);

/* Client side: adds n rows. pred: binary (n) P(class 1); multiclass (n, K) class probabilities;
 * regression (n) predictions. y: (n) labels (binary: positive when y > 0.5; multiclass: class
 * index as a float, which must be valid, as the data loader guarantees: FEDC_CHECK otherwise;
 * regression: targets). threshold: binary only. Both borrowed. Every merged accumulator must
 * use the same threshold (nothing can check it). */
void fedc_eval_acc_add(fedc_eval_acc *a, const float *pred, const float *y, int n, float threshold);

/* Coordinator side: a += b. FEDC_EMISMATCH (a unchanged) when task, n_classes or bins differ. */
FEDC_MUST_CHECK fedc_err fedc_eval_acc_merge(fedc_eval_acc *a, const fedc_eval_acc *b);

/* Global metrics; NaN where not applicable to the task or undefined for the data. */
typedef struct fedc_eval_summary {
    uint64_t n;
    double loss;      /* loss_sum / n */
    double roc_auc;   /* binary: binned, ties within a bin count 1/2; NaN with one class */
    double pr_auc;    /* binary: binned average precision; NaN without positives */
    double precision; /* binary: 0 when nothing is predicted positive */
    double recall;    /* binary: 0 without positives */
    double f1;        /* binary: 2 TP / (2 TP + FP + FN), 0 when TP = 0 */
    double accuracy;  /* binary and multiclass */
    double macro_f1;  /* multiclass: mean of per-class F1, 0 for a class never seen or predicted */
    double rmse;      /* regression */
    double r2;        /* regression: NaN when the target is constant (to rounding) */
} fedc_eval_summary;

/* Binned ROC-AUC is the exact AUC of the binned scores:
 *   sum over bins b of pos_b * (neg below b + neg_b / 2), divided by P N.
 * Binned PR-AUC is average precision (scikit-learn's definition) with each bin one threshold:
 *   sum over bins from the highest down of (R_b - R_{b-1}) P_b.
 * With 10000 bins both agree with core/nn's exact metrics to about 1e-4 on typical data. */
void fedc_eval_acc_summary(const fedc_eval_acc *a, fedc_eval_summary *out);

/* The operating point of a fraud team that reviews at most `budget` (a share, 0 < budget <= 1)
 * of all rows, from the federation's binary score histograms: bins are taken from the highest
 * score down while the rows flagged stay within the budget. *threshold gets the lower edge of
 * the last bin taken (1 when none fits), *alerts the share flagged, *precision and *recall their
 * values there (NaN when undefined). Whole bins only: with 10,000 bins the flagged share can fall
 * short of the budget by the rows of one bin. */
void fedc_eval_acc_budget(const fedc_eval_acc *a, double budget, double *threshold, double *alerts,
                          double *precision, double *recall);

#endif
