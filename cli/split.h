/* fedc split as a library: partitions the rows of one CSV file into per-client CSV files, for the
 * `fedc split` command and for in-process callers such as `fedc sim`.
 *
 * Schemes: iid (seeded shuffle, near-equal shards), stratified (every class dealt evenly across
 * the shards), dirichlet:ALPHA (label skew: for each class, shares over the clients drawn from a
 * symmetric Dirichlet) and column:NAME (one file per value of a column, rare values merged).
 * Rows are copied as text, byte for byte; each file starts with the input's header line. What is
 * left out: splitting features (vertical federated learning), time-based splits, line breaks
 * inside quoted fields. The option and file-naming rules are those of `fedc split --help`. */
#ifndef FEDC_CLI_SPLIT_H
#define FEDC_CLI_SPLIT_H

/* Bounds on the number of clients of the iid, stratified and dirichlet schemes. */
#define SPLIT_MIN_CLIENTS 2
#define SPLIT_MAX_CLIENTS 10000
/* At most this many distinct label values count as classes (stratified, dirichlet, summaries). */
#define SPLIT_MAX_CLASSES 1000
/* column:NAME merges the values held by fewer than this percentage of the rows into other.csv. */
#define SPLIT_RARE_PERCENT 1

/* What to split and how. Strings are borrowed for the duration of split_run. */
typedef struct split_opts {
    const char *data;        /* input CSV path (required) */
    const char *label;       /* label column, numeric unless positive is set (required) */
    const char *scheme;      /* "iid", "stratified", "dirichlet:ALPHA", "column:NAME"; NULL = iid */
    const char *out_dir;     /* output directory, created (one level, mode 0755) if missing */
    int clients;             /* SPLIT_MIN_CLIENTS..SPLIT_MAX_CLIENTS; must be 0 for column:NAME */
    unsigned long long seed; /* seed of every shuffle and draw */
    int force;               /* replace shard files an earlier run left in out_dir */
    int quiet;               /* no summary lines on stdout, no notes on stderr */
    int min_rows;            /* dirichlet only: rows every client gets at least; 0 = 1 */
    char delimiter;          /* the field separator; 0 = ',' */
    const char *positive;    /* a text label: this value is 1, other text 0; NULL = numeric */
} split_opts;

/* Splits o->data into files in o->out_dir and prints one summary line per file (unless quiet).
 * Errors are printed as "fedc CMD: ..." naming the flag, file and line concerned. Returns
 * FEDC_EXIT_OK, FEDC_EXIT_USAGE (bad options or input data, or out_dir holds earlier shard files
 * without force) or FEDC_EXIT_FAIL (out of memory, writing failed). On success, when paths_out is
 * not NULL, *paths_out receives the written paths in order (client-1 .. client-N, or the value
 * files sorted by value then other.csv), NULL-terminated and caller-owned (cli_free_list); n_out
 * (may be NULL) receives their number. On failure *paths_out is NULL and *n_out 0. */
int split_run(const char *cmd, const split_opts *o, char ***paths_out, int *n_out);

#endif
