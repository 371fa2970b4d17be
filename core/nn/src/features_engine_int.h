/* The streaming features engine's state (fedc/features.h), shared by features_engine.c (set-up,
 * binding, parsing and writing rows) and features_window.c (the windows). Inside fedc_nn only.
 *
 * Per window spec, one queue holds every row still inside some window, in time order (all
 * entities together), and each entity is a small fixed-size record of running counts and sums.
 * Positions in the queue are sequence numbers that only grow: tail is the next row's, hi the
 * first row not yet inside the windows (with a delay L, rows enter once their time is at most
 * t - L), and lo[k] the first row still inside duration k's window; a row leaves duration k's
 * window when lo[k] passes it, and is dropped when it leaves the longest one. Entering and leaving
 * update the record of the row's own entity, whose index the queue keeps, so the memory a row
 * touches is the queue (read in order) and a few records (about 64 bytes each), not a structure
 * per entity spread over the heap: the records and the table that finds them stay small enough
 * for the caches. */
#ifndef FEDC_FEATURES_ENGINE_INT_H
#define FEDC_FEATURES_ENGINE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/features.h"

/* Keys of up to this many bytes live in their table slot; longer ones in a copy it points to. */
#define KEY_INLINE 16

typedef struct wslot {
    uint64_t hash;
    uint32_t idx; /* the entity's record + 1; 0: an empty slot */
    uint32_t len; /* the key's length */
    union {
        char in[KEY_INLINE];
        char *out;
    } key;
} wslot;

/* An entity's record, rec bytes at pool + idx * rec: uint32 held (its rows in the queue), uint32
 * cnt[n_dur] (its rows inside each duration's window), then at sum_off the double sum[2 * n_dur *
 * nv]: per duration, per value, a pair (high, low) holding the sum over the window. */
#define REC_HELD(r) ((uint32_t *)(void *)(r))
#define REC_CNT(r) ((uint32_t *)(void *)(r) + 1)

/* One window spec at work. */
typedef struct wtab {
    const fedc_feat_window *w;
    int key_col;
    int nv;                                /* distinct value columns */
    int v0;                                /* their first slot in the row's values */
    int vcol[FEDC_FEAT_MAX_AGGS];          /* input column of each */
    const char *vname[FEDC_FEAT_MAX_AGGS]; /* its name */
    int vrate[FEDC_FEAT_MAX_AGGS];         /* 1: must be 0 or 1 */
    int agg_v[FEDC_FEAT_MAX_AGGS];         /* value of each aggregate (-1: count) */
    int64_t dur_s[FEDC_FEAT_MAX_DURS];     /* seconds */
    int64_t delay_s;                       /* L */
    int64_t dur_min_s;                     /* the shortest duration, in seconds */
    int kmax;                              /* the longest duration */
    int order[FEDC_FEAT_MAX_DURS];         /* the durations, the longest last */
    /* per output column of the spec (per duration k, per aggregate a): -1 for a count, else
     * where its value's sum pair starts in the record's sums (2 * (k * nv + v)); and 1 for a
     * sum, 0 for a mean or a rate */
    int16_t out_v[FEDC_FEAT_MAX_DURS * FEDC_FEAT_MAX_AGGS];
    unsigned char out_sum[FEDC_FEAT_MAX_DURS * FEDC_FEAT_MAX_AGGS];
    /* per aggregate, for specs of one value column at most: 0 a count, 1 a sum, 2 a mean or a
     * rate (each duration's three candidates are computed once, and each column picks one) */
    unsigned char agg_kind[FEDC_FEAT_MAX_AGGS];
    /* the queue, row p at index p & qmask of three arrays: its time, its entity's record and
     * its nv values */
    int64_t *qt;
    uint32_t *qx;
    double *qv;
    uint64_t qmask, head, hi, tail;
    uint64_t lo[FEDC_FEAT_MAX_DURS];
    /* the entities: a linear-probing table of slots, the records in a pool */
    wslot *slots;
    size_t cap, used;
    size_t rec, sum_off;
    unsigned char *pool;
    uint64_t *ent_hash; /* per record: its key's hash, to find its slot when it goes */
    uint32_t *free_idx; /* records free for reuse */
    uint32_t n_pool, pool_cap, n_free;
} wtab;

struct fedc_feat_engine {
    fedc_features_spec spec;
    int n_out, n_val, time_col, bound;
    wtab *tabs;
    unsigned char *is_int; /* per output column: written as a whole number */
    fedc_feat_row row;
    int64_t last_t;
    int have_last;
    /* the date of the last timestamp parsed ("YYYY-MM-DD") and its midnight, in epoch seconds:
     * rows in time order mostly share it */
    char date[10];
    int have_date;
    int64_t date_s;
    size_t entities, held, held_max;
};

/* fedc_feat_engine_format_sep's text for n_out values out, those with is_int[c] set (and in
 * 0..9e15) as whole numbers, the others as fedc_fmt_g15 writes them; buf as there. */
size_t feat_format(char *buf, const double *out, const unsigned char *is_int, int n_out, char sep);

/* Frees what t's windows hold (the queue, the table, the records). */
void feat_win_free(wtab *t);

#endif
