/* fedc split's parts (split.c: options, reading, output; split_scheme.c: the schemes that assign
 * rows to shards), shared between them. Inside the fedc program only. */
#ifndef FEDC_CLI_SPLIT_INT_H
#define FEDC_CLI_SPLIT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "split.h"

/* Largest Dirichlet concentration accepted (beyond it every shard is iid anyway), and the
 * smallest one computed with (smaller ones give the same partitions). */
#define ALPHA_MAX 1e6
#define ALPHA_TINY 1e-300
/* Dirichlet redraws: at most this many, and at most about this many Gamma draws in all. */
#define DIRICHLET_MAX_TRIES 100000
#define DIRICHLET_MIN_TRIES 100
#define DIRICHLET_DRAW_BUDGET 20000000.0
/* Default Dirichlet floor: no client is left without rows. A larger default (NIID-Bench uses 10)
 * makes common set-ups such as 1000 clients at alpha 0.5 unreachable: the chance that every one
 * of N clients clears a floor falls exponentially with N. */
#define DEFAULT_MIN_ROWS 1
/* How much of a value an error message shows, and how long a label cell may be. */
#define SHOW_MAX 40
#define NUMBER_TEXT_MAX 128
/* How much of the header a "column not found" message lists. */
#define LIST_MAX 160
/* Longest column name and value kept in a column:NAME file name (bytes). */
#define NAME_PART_MAX 64
/* Classes listed on one summary line. */
#define SUMMARY_CLASSES 20
/* Stream identifier of every split draw ("SPLT"), then the scheme and the stream. */
#define RNG_PURPOSE 0x53504c54u

typedef enum scheme_kind {
    SCHEME_IID = 1,
    SCHEME_STRATIFIED = 2,
    SCHEME_DIRICHLET = 3,
    SCHEME_COLUMN = 4,
} scheme_kind;

typedef struct scheme {
    scheme_kind kind;
    double alpha;       /* dirichlet */
    const char *column; /* column:NAME, borrowed from the option string */
} scheme;

/* A byte range of the file buffer. */
/* A header name or a cell: text with surrounding blanks removed (inside quotes too, as the CSV
 * loader does). */
typedef struct field {
    const char *s;
    size_t n;
} field;

typedef struct span {
    size_t off;
    size_t len;
} span;

/* The input file and what was read from it. */
typedef struct table {
    char *buf; /* the whole file, NUL-terminated; owned */
    size_t len;
    span header;     /* the header line as in the file (a BOM included), without its line end */
    const char *eol; /* "\n" or "\r\n", after the header line */
    int n_cols;
    int label_col; /* 0-based */
    int group_col; /* 0-based column of column:NAME, else -1 */
    int n_rows;
    span *rows;    /* (n_rows) data lines without their line ends; owned */
    double *label; /* (n_rows); owned */
    span *group;   /* (n_rows) column:NAME value in gbuf, blanks and quotes removed, or NULL */
    char *gbuf;    /* the column:NAME values one after the other (a quoted value holding "" is
                      unescaped, so the values cannot point into buf); owned */
    size_t gbuf_len, gbuf_cap;
    field *names; /* (n_cols) the header's names, trimmed, in hbuf */
    char *hbuf;   /* owned */
} table;

/* The distinct label values when they are class labels. */
typedef struct classes {
    int n;          /* number of classes; 0 when the label is not a class label */
    double *value;  /* (n) ascending; owned */
    int *of_row;    /* (n_rows) class index of each row; owned */
    int binary;     /* every value is 0 or 1 */
    int first_frac; /* row of the first non-integer label, -1 if none */
    int distinct;   /* number of distinct values (also when above SPLIT_MAX_CLASSES) */
} classes;

/* Frees what t holds. */
void split_table_release(table *t);

/* Reads and checks the input: header, label column (and the column:NAME column when group_name is
 * not NULL), field counts, numeric labels. Returns 0, FEDC_EXIT_USAGE or FEDC_EXIT_FAIL. */
int split_table_load(const char *cmd, table *t, const char *path, const char *label,
                     const char *group_name, char delim, const char *positive);

/* An element count for an allocation (n >= 0 by construction). */
size_t split_count_of(int n);

/* Copies [s, s + n) into out (SHOW_MAX + 4 bytes) for a message. */
const char *split_show(char *out, const char *s, size_t n);

/* The rows of each class in input order: rows of class c are members[start[c] .. start[c + 1]).
 * Returns 0, or -1 when out of memory. */
int split_class_members(int **members, int **start, const classes *cl, int n_rows);

/* iid: a seeded shuffle, then consecutive runs of n / N rows (the first n mod N shards one
 * more). Returns 0, or -1 when out of memory. */
int split_iid(int *shard_of, int n_rows, int n_shards, uint64_t seed);

/* stratified: the rows of each class, shuffled, one class after another, are dealt round-robin
 * (position j goes to shard j mod N). Shard k then holds floor or ceil(n_c / N) rows of every
 * class c, and shard sizes differ by at most 1. Returns 0, or -1 when out of memory. */
int split_stratified(int *shard_of, const classes *cl, int n_rows, int n_shards, uint64_t seed);

/* dirichlet: per class, shares over the clients from Dir(alpha); the whole draw is repeated until
 * every client has at least min_rows rows. Then each class's rows are shuffled and cut in runs of
 * the drawn counts. Returns 0, FEDC_EXIT_USAGE (no draw met the floor) or FEDC_EXIT_FAIL. */
int split_dirichlet(const char *cmd, int *shard_of, const classes *cl, int n_rows, int n_shards,
                    uint64_t seed, double alpha, int min_rows, const char *scheme_text);

/* column:NAME: one shard per value (values compared as text, blanks and one pair of quotes
 * removed), in byte order of the values; values held by fewer than SPLIT_RARE_PERCENT % of the
 * rows go to one last shard, other.csv. File names are NAME=VALUE.csv, sanitised, with "-2",
 * "-3", ... added when two values would give the same name (compared ignoring case). Sets
 * *names (NULL-terminated, caller frees with cli_free_list) and *n_shards. Returns 0,
 * FEDC_EXIT_USAGE (a single file would result) or FEDC_EXIT_FAIL. */
int split_column(const char *cmd, int *shard_of, char ***names, int *n_shards, const table *t,
                 const char *column, const char *path);

/* client-1.csv .. client-N.csv, zero-padded to the width of N when N >= 10. */
int split_client_names(const char *cmd, char ***names, int n_shards);

#endif
