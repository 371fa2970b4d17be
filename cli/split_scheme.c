/* fedc split's schemes (split_int.h): iid, stratified, dirichlet:ALPHA and column:NAME assign
 * every row to a shard; split.c has the references for the Dirichlet partition. */
#include "split_int.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "fedc/csv.h"
#include "fedc/rng.h"

/* ---- Schemes ----------------------------------------------------------------------------- */

static uint64_t stream_key(uint64_t seed, scheme_kind kind, uint64_t stream) {
    return fedc_rng_key(seed, RNG_PURPOSE, (uint64_t)kind, stream);
}

/* iid: a seeded shuffle, then consecutive runs of n / N rows (the first n mod N shards one
 * more). Returns 0, or -1 when out of memory. */
int split_iid(int *shard_of, int n_rows, int n_shards, uint64_t seed) {
    int *idx = malloc(split_count_of(n_rows) * sizeof *idx);
    if (!idx)
        return -1;
    for (int i = 0; i < n_rows; i++)
        idx[i] = i;
    fedc_rng r;
    fedc_rng_init(&r, stream_key(seed, SCHEME_IID, 0));
    fedc_rng_shuffle(&r, idx, n_rows);
    const int q = n_rows / n_shards, rem = n_rows % n_shards;
    for (int k = 0, pos = 0; k < n_shards; k++) {
        for (int j = 0; j < q + (k < rem); j++)
            shard_of[idx[pos++]] = k;
    }
    free(idx);
    return 0;
}

/* stratified: the rows of each class, shuffled, one class after another, are dealt round-robin
 * (position j goes to shard j mod N). Shard k then holds floor or ceil(n_c / N) rows of every
 * class c, and shard sizes differ by at most 1. Returns 0, or -1 when out of memory. */
int split_stratified(int *shard_of, const classes *cl, int n_rows, int n_shards, uint64_t seed) {
    int *members = NULL, *start = NULL, rc = -1;
    if (split_class_members(&members, &start, cl, n_rows))
        goto out;
    fedc_rng r;
    fedc_rng_init(&r, stream_key(seed, SCHEME_STRATIFIED, 0));
    for (int c = 0; c < cl->n; c++)
        fedc_rng_shuffle(&r, members + start[c], start[c + 1] - start[c]);
    for (int j = 0; j < n_rows; j++)
        shard_of[members[j]] = j % n_shards;
    rc = 0;
out:
    free(members);
    free(start);
    return rc;
}

/* Uniform in (0, 1), never 0 or 1: 53 random bits, offset by half a step. */
static double uniform_open(fedc_rng *r) {
    return ((double)(fedc_rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Standard normal, Box-Muller in double (the second value of the pair is not used). */
static double normal(fedc_rng *r) {
    double u1 = uniform_open(r), u2 = uniform_open(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* log X for X ~ Gamma(a, 1), a > 0 (Marsaglia & Tsang 2000): with d = a - 1/3, c = 1/sqrt(9d),
 * x ~ N(0, 1) and v = (1 + cx)^3 > 0, accept d*v when log U < x^2/2 + d - dv + d log v (the
 * squeeze U < 1 - 0.0331 x^4 first). For a < 1, Gamma(a) = Gamma(a + 1) * U^(1/a), kept in logs
 * because U^(1/a) underflows for small a. */
static double log_gamma_draw(fedc_rng *r, double a) {
    double boost = 0.0;
    if (a < 1.0) {
        boost = log(uniform_open(r)) / a;
        a += 1.0;
    }
    const double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        const double u = uniform_open(r), x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2 || log(u) < 0.5 * x2 + d * (1.0 - v + log(v)))
            return log(d * v) + boost;
    }
}

/* Draws p ~ Dir(alpha, ..., alpha) over n_shards clients and cuts n_c rows by it: counts[k] =
 * round(n_c * (p_0 + ... + p_k)) - round(n_c * (p_0 + ... + p_{k-1})). lw is scratch (n_shards). */
static void dirichlet_counts(int *counts, double *lw, fedc_rng *r, double alpha, int n_c,
                             int n_shards) {
    /* Below ALPHA_TINY, log(U) / alpha could overflow to -inf; at ALPHA_TINY it cannot (|log U| is
     * within [2^-54, 38]), and the draw is already the limit: one client takes the whole class. */
    const double a = alpha < ALPHA_TINY ? ALPHA_TINY : alpha;
    double m = -DBL_MAX;
    for (int k = 0; k < n_shards; k++) {
        lw[k] = log_gamma_draw(r, a);
        if (lw[k] > m)
            m = lw[k];
    }
    double sum = 0.0;
    for (int k = 0; k < n_shards; k++) {
        lw[k] = exp(lw[k] - m); /* the largest share becomes 1: no overflow, some nonzero */
        sum += lw[k];
    }
    double cum = 0.0;
    int prev = 0;
    for (int k = 0; k < n_shards; k++) {
        cum += lw[k];
        int cut = k == n_shards - 1 ? n_c : (int)llround(cum / sum * n_c);
        if (cut < prev)
            cut = prev;
        if (cut > n_c)
            cut = n_c;
        counts[k] = cut - prev;
        prev = cut;
    }
}

/* dirichlet: per class, shares over the clients from Dir(alpha); the whole draw is repeated until
 * every client has at least min_rows rows. Then each class's rows are shuffled and cut in runs of
 * the drawn counts. Returns 0, FEDC_EXIT_USAGE (no draw met the floor) or FEDC_EXIT_FAIL. */
int split_dirichlet(const char *cmd, int *shard_of, const classes *cl, int n_rows, int n_shards,
                    uint64_t seed, double alpha, int min_rows, const char *scheme_text) {
    int rc = FEDC_EXIT_FAIL;
    int *members = NULL, *start = NULL, *counts = NULL;
    long *size = NULL;
    double *lw = NULL;
    if (split_class_members(&members, &start, cl, n_rows))
        goto nomem;
    counts = malloc(split_count_of(cl->n) * split_count_of(n_shards) * sizeof *counts);
    size = malloc(split_count_of(n_shards) * sizeof *size);
    lw = malloc(split_count_of(n_shards) * sizeof *lw);
    if (!counts || !size || !lw)
        goto nomem;
    double budget = DIRICHLET_DRAW_BUDGET / ((double)cl->n * n_shards);
    long max_tries = budget > DIRICHLET_MAX_TRIES   ? DIRICHLET_MAX_TRIES
                     : budget < DIRICHLET_MIN_TRIES ? DIRICHLET_MIN_TRIES
                                                    : (long)budget;
    fedc_rng r;
    fedc_rng_init(&r, stream_key(seed, SCHEME_DIRICHLET, 0));
    long tries = 0;
    int ok = 0, smallest = 0;
    while (!ok && tries < max_tries) {
        tries++;
        memset(size, 0, (size_t)n_shards * sizeof *size);
        for (int c = 0; c < cl->n; c++) {
            int *cc = counts + (size_t)c * n_shards;
            dirichlet_counts(cc, lw, &r, alpha, start[c + 1] - start[c], n_shards);
            for (int k = 0; k < n_shards; k++)
                size[k] += cc[k];
        }
        long lo = size[0];
        for (int k = 1; k < n_shards; k++)
            lo = size[k] < lo ? size[k] : lo;
        ok = lo >= min_rows;
        smallest = (int)lo > smallest ? (int)lo : smallest;
    }
    if (!ok) {
        cli_error(cmd,
                  "--scheme %s: no draw in %ld gave every client at least %d row%s (the best gave "
                  "the smallest client %d); use a larger ALPHA or fewer --clients%s",
                  scheme_text, tries, min_rows, min_rows == 1 ? "" : "s", smallest,
                  min_rows > 1 ? ", or a smaller --min-rows" : "");
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    fedc_rng sr;
    fedc_rng_init(&sr, stream_key(seed, SCHEME_DIRICHLET, 1));
    for (int c = 0; c < cl->n; c++) {
        int pos = start[c];
        fedc_rng_shuffle(&sr, members + pos, start[c + 1] - pos);
        for (int k = 0; k < n_shards; k++) {
            for (int j = 0; j < counts[(size_t)c * n_shards + k]; j++)
                shard_of[members[pos++]] = k;
        }
        assert(pos == start[c + 1]);
    }
    rc = 0;
    goto out;
nomem:
    cli_error(cmd, "out of memory");
out:
    free(members);
    free(start);
    free(counts);
    free(size);
    free(lw);
    return rc;
}

/* Appends a file-name-safe copy of [s, s + n) to out (at most NAME_PART_MAX bytes): letters,
 * digits, '.', '-' and '_' are kept, every other byte becomes '_'; an empty value gives "_". */
static size_t sanitize(char *out, const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n && k < NAME_PART_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '-' || ch == '_';
        out[k++] = ok ? (char)ch : '_';
    }
    if (k == 0)
        out[k++] = '_';
    out[k] = 0;
    return k;
}

/* A row's column:NAME value, for sorting. */
typedef struct group_key {
    const char *s;
    size_t n;
    int row;
} group_key;

static int cmp_group_key(const void *a, const void *b) {
    const group_key *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, m);
    if (c)
        return c;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* column:NAME: one shard per value (values compared as text, blanks and one pair of quotes
 * removed), in byte order of the values; values held by fewer than SPLIT_RARE_PERCENT % of the
 * rows go to one last shard, other.csv. File names are NAME=VALUE.csv, sanitised, with "-2",
 * "-3", ... added when two values would give the same name (compared ignoring case). Sets
 * *names (NULL-terminated, caller frees with cli_free_list) and *n_shards. Returns 0,
 * FEDC_EXIT_USAGE (a single file would result) or FEDC_EXIT_FAIL. */
int split_column(const char *cmd, int *shard_of, char ***names, int *n_shards, const table *t,
                 const char *column, const char *path) {
    const int n = t->n_rows;
    int rc = FEDC_EXIT_FAIL, n_groups = 0, n_common = 0, n_rare_rows = 0;
    char **list = NULL;
    group_key *keys = malloc(split_count_of(n) * sizeof *keys);
    if (!keys)
        goto nomem;
    for (int i = 0; i < n; i++) {
        keys[i].s = t->gbuf + t->group[i].off;
        keys[i].n = t->group[i].len;
        keys[i].row = i;
    }
    qsort(keys, (size_t)n, sizeof *keys, cmp_group_key);
    /* First pass: count the common values (at most 100 / SPLIT_RARE_PERCENT of them). */
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && keys[j].n == keys[i].n && memcmp(keys[j].s, keys[i].s, keys[i].n) == 0)
            j++;
        n_groups++;
        if ((long)(j - i) * 100 >= (long)SPLIT_RARE_PERCENT * n)
            n_common++;
        else
            n_rare_rows += j - i;
        i = j;
    }
    const int total = n_common + (n_rare_rows > 0);
    if (total < 2) {
        char s1[SHOW_MAX + 4];
        if (n_groups == 1)
            cli_error(cmd,
                      "--scheme column:%s: every row of %s has the same value in this column: "
                      "nothing to split",
                      split_show(s1, column, strlen(column)), path);
        else
            cli_error(cmd,
                      "--scheme column:%s: each of the %d values of this column in %s is held by "
                      "under %d%% of the rows, so all would merge into other.csv: nothing to "
                      "split (is it an ID column?)",
                      split_show(s1, column, strlen(column)), n_groups, path, SPLIT_RARE_PERCENT);
        rc = FEDC_EXIT_USAGE;
        goto out;
    }
    list = calloc(split_count_of(total) + 1, sizeof *list);
    if (!list)
        goto nomem;
    char col_part[NAME_PART_MAX + 1];
    size_t col_len = sanitize(col_part, column, strlen(column));
    /* Second pass: name the common values, assign rows. */
    int g = 0;
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && keys[j].n == keys[i].n && memcmp(keys[j].s, keys[i].s, keys[i].n) == 0)
            j++;
        int shard = total - 1;
        if ((long)(j - i) * 100 >= (long)SPLIT_RARE_PERCENT * n) {
            char val[NAME_PART_MAX + 1];
            size_t vl = sanitize(val, keys[i].s, keys[i].n);
            size_t cap = col_len + vl + 32;
            char *name = malloc(cap);
            if (!name)
                goto nomem;
            snprintf(name, cap, "%s=%s.csv", col_part, val);
            for (int suffix = 2;; suffix++) {
                int clash = 0;
                for (int e = 0; e < g && !clash; e++)
                    clash = strcasecmp(list[e], name) == 0;
                if (!clash)
                    break;
                snprintf(name, cap, "%s=%s-%d.csv", col_part, val, suffix);
            }
            list[g] = name;
            shard = g++;
        }
        for (int k = i; k < j; k++)
            shard_of[keys[k].row] = shard;
        i = j;
    }
    if (n_rare_rows > 0) {
        list[g] = strdup("other.csv");
        if (!list[g])
            goto nomem;
    }
    *names = list;
    list = NULL;
    *n_shards = total;
    rc = 0;
    goto out;
nomem:
    cli_error(cmd, "out of memory");
out:
    cli_free_list(list);
    free(keys);
    return rc;
}

/* client-1.csv .. client-N.csv, zero-padded to the width of N when N >= 10. */
int split_client_names(const char *cmd, char ***names, int n_shards) {
    char **list = calloc(split_count_of(n_shards) + 1, sizeof *list);
    if (!list)
        goto nomem;
    int width = 1;
    if (n_shards >= 10)
        width = snprintf(NULL, 0, "%d", n_shards);
    for (int k = 0; k < n_shards; k++) {
        char name[64];
        snprintf(name, sizeof name, "client-%0*d.csv", width, k + 1);
        list[k] = strdup(name);
        if (!list[k])
            goto nomem;
    }
    *names = list;
    return 0;
nomem:
    cli_free_list(list);
    cli_error(cmd, "out of memory");
    return FEDC_EXIT_FAIL;
}
