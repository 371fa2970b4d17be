/* Scoring for native systems: load a model once, then score one row or a batch from any number
 * of threads at once, without allocating.
 *
 * A scorer is an immutable copy of a model (fedc_model: an MLP with its standardisation), laid
 * out for inference and bound at open to the widest instruction set the CPU has (AVX-512, AVX2 or
 * the generic build; FEDC_ISA can lower it, as for the training kernels). Every scoring call
 * reads the scorer and writes only the caller's output and workspace, so one scorer serves many
 * threads as long as each brings its own workspace (fedc_scorer_workspace_size bytes). Nothing
 * here starts threads or uses OpenMP: a caller that wants a batch scored on several cores splits
 * it (fedc predict does, one block of rows per thread).
 *
 * The single-row path runs a dedicated loop per layer with no tiling: for the 30-64-32-1 model
 * (about 4,000 multiply-adds) a call takes well under a microsecond (bench/bench_score). The
 * products run without fused multiply-add, in the same order for every instruction set, so the
 * scores of a scorer do not depend on the CPU's instruction set, the batch size or the thread
 * count; they equal fedc_model_predict's to within float rounding (that uses fused multiply-add
 * where the CPU has it).
 *
 * Left out: models that are not fedc's MLP (fedc_model_new_flat's own models: FEDC_EINVAL at
 * open), raw transactions (the feature spec in the model's meta is the caller's to apply), and
 * the decision threshold (the model card in meta is the caller's to read). */
#ifndef FEDC_SCORE_H
#define FEDC_SCORE_H

#include <stddef.h>

#include "fedc/err.h"
#include "fedc/model.h"

typedef struct fedc_scorer fedc_scorer;

/* Opens the model file at path (fedc_model_load's format and checks) as a scorer. *out is
 * caller-owned (fedc_scorer_close). Errors: those of fedc_model_load, with d->msg naming the
 * file; FEDC_EINVAL for a model that is not an MLP; FEDC_ENOMEM. */
FEDC_MUST_CHECK fedc_err fedc_scorer_open(fedc_scorer **out, const char *path, fedc_diag *d);

/* A scorer from a model in memory. The model is copied (borrowed for the call only): later
 * changes to m do not reach the scorer. Errors as fedc_scorer_open. */
FEDC_MUST_CHECK fedc_err fedc_scorer_from_model(fedc_scorer **out, const fedc_model *m,
                                                fedc_diag *d);

/* Frees *s; accepts NULL; sets *s = NULL. No call may be using the scorer. */
void fedc_scorer_close(fedc_scorer **s);

/* The scorer's copy of the model: feature names (the order of a row's values), task, classes,
 * the data recipe (meta). Borrowed until fedc_scorer_close; never to be modified. */
const fedc_model *fedc_scorer_model(const fedc_scorer *s);

/* Values a row holds (the model's input width) and values a row's result holds: 1 (binary: the
 * probability of class 1; regression: the prediction), or K (multiclass: class probabilities). */
int fedc_scorer_n_inputs(const fedc_scorer *s);
int fedc_scorer_n_outputs(const fedc_scorer *s);

/* Bytes of workspace one thread needs for fedc_score_row and fedc_score_batch (any n): at most a
 * few hundred KiB (tiles of FEDC_SCORE_TILE rows). The workspace must be aligned for float; 64
 * bytes is best (fedc_scorer_workspace_new gives such a block). */
#define FEDC_SCORE_TILE 64
size_t fedc_scorer_workspace_size(const fedc_scorer *s);

/* A zeroed, 64-byte aligned workspace of fedc_scorer_workspace_size(s) bytes, caller-owned
 * (free()); NULL when out of memory. */
void *fedc_scorer_workspace_new(const fedc_scorer *s);

/* Scores one raw (unstandardised) row x (n_inputs values) into out (n_outputs values), using the
 * workspace work (borrowed for the call; one per concurrent caller). Allocates nothing, takes no
 * lock. FEDC_EINVAL when a pointer is NULL. Non-finite inputs give non-finite scores. */
FEDC_MUST_CHECK fedc_err fedc_score_row(float *out, const fedc_scorer *s, const float *x,
                                        void *work);

/* Scores n rows x (n, n_inputs) into out (n, n_outputs), in tiles of FEDC_SCORE_TILE rows on the
 * calling thread; each row's result equals fedc_score_row's bit for bit. FEDC_EINVAL for a NULL
 * pointer or n < 0. */
FEDC_MUST_CHECK fedc_err fedc_score_batch(float *out, const fedc_scorer *s, const float *x, int n,
                                          void *work);

#endif
