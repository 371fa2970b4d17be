/* fedc features on rows out of time order: an external merge sort, so that memory stays bounded
 * by --memory-mb (plus the engine's windows) whatever the file's size.
 *
 *   1. The rows are read and parsed (every bad value is found here, in file order); each becomes a
 *      record (time, row number; the entities' texts and the values) in a chunk of memory, and a
 *      full chunk is sorted by (time, row number) and written to a temporary file: a run.
 *   2. The runs are merged in that order through the engine, which needs rows in time order with
 *      ties in file order; each row's features, as text, become a record (row number; text) of a
 *      second kind of run, sorted by row number.
 *   3. Those runs are merged by row number, beside the input read again from its start, and each
 *      row is written with its features: the output keeps the input's order.
 * When the input cannot be read twice (a pipe), step 1 also copies each row's text into one more
 * temporary file, read in step 3. Temporary files are unlinked as soon as they are created, so
 * nothing is left behind, even after a crash. More than FANIN runs are first merged FANIN at a time
 * into longer ones. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "features_run.h"

#define CMD "features"
#define FANIN 64
#define HDR_BYTES 20 /* int64 k1, uint64 k2, uint32 payload length */

/* ---- runs: records (k1, k2, payload) in files ---------------------------------------------- */

typedef struct chunk_ix {
    int64_t k1;
    uint64_t k2;
    size_t off;
    uint32_t len;
} chunk_ix;

/* Records gathered in memory, written out sorted as one run. */
typedef struct chunk {
    char *arena;
    size_t used, cap;
    chunk_ix *ix;
    size_t n, ix_cap;
} chunk;

typedef struct runs {
    FILE **f;
    size_t n, cap;
} runs;

typedef struct sorter {
    feat_io *io;
    runs a;     /* parsed rows, by time */
    runs b;     /* features, by row */
    FILE *copy; /* the rows' text when the input cannot be read twice */
    chunk c;
    int rc;
    unsigned long long next_row; /* step 3: the row number expected next */
    fedc_csv_reader *rd;         /* step 3: the input read again */
    struct src *cp;              /* step 3: the copy's current row */
} sorter;

static int fail_io(const char *what, const char *path) {
    cli_error(CMD, "%s %s: %s", what, path, strerror(errno));
    return FEDC_EXIT_FAIL;
}

/* A temporary file under dir, already unlinked. */
static FILE *tmp_file(const char *dir) {
    size_t n = strlen(dir) + 32;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/fedc-features-XXXXXX", dir);
    int fd = mkstemp(p);
    FILE *f = NULL;
    if (fd >= 0) {
        unlink(p);
        if (!(f = fdopen(fd, "w+b")))
            close(fd);
    }
    if (!f)
        cli_error(CMD, "--tmpdir: cannot create a temporary file in %s: %s", dir, strerror(errno));
    free(p);
    return f;
}

static int put_rec(FILE *f, int64_t k1, uint64_t k2, const void *p, uint32_t len) {
    unsigned char h[HDR_BYTES];
    memcpy(h, &k1, 8);
    memcpy(h + 8, &k2, 8);
    memcpy(h + 16, &len, 4);
    return fwrite(h, 1, HDR_BYTES, f) != HDR_BYTES || (len && fwrite(p, 1, len, f) != len);
}

static int runs_add(runs *r, FILE *f) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        FILE **nf = realloc(r->f, cap * sizeof *nf);
        if (!nf)
            return -1;
        r->f = nf;
        r->cap = cap;
    }
    r->f[r->n++] = f;
    return 0;
}

static void runs_close(runs *r) {
    for (size_t i = 0; i < r->n; i++)
        if (r->f[i])
            fclose(r->f[i]);
    free(r->f);
    memset(r, 0, sizeof *r);
}

/* Room for a record of len payload bytes in the chunk; NULL when out of memory. */
static char *chunk_add(chunk *c, int64_t k1, uint64_t k2, size_t len) {
    if (c->n == c->ix_cap) {
        size_t cap = c->ix_cap ? c->ix_cap * 2 : 1024;
        chunk_ix *ni = realloc(c->ix, cap * sizeof *ni);
        if (!ni)
            return NULL;
        c->ix = ni;
        c->ix_cap = cap;
    }
    if (c->used + len > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1 << 16;
        while (cap < c->used + len)
            cap *= 2;
        char *na = realloc(c->arena, cap);
        if (!na)
            return NULL;
        c->arena = na;
        c->cap = cap;
    }
    c->ix[c->n++] = (chunk_ix){k1, k2, c->used, (uint32_t)len};
    c->used += len;
    return c->arena + c->used - len;
}

static size_t chunk_bytes(const chunk *c) {
    return c->used + c->n * sizeof(chunk_ix);
}

static int ix_cmp(const void *a, const void *b) {
    const chunk_ix *x = a, *y = b;
    if (x->k1 != y->k1)
        return x->k1 < y->k1 ? -1 : 1;
    return x->k2 < y->k2 ? -1 : x->k2 > y->k2;
}

/* Sorts the chunk into a new run of r and empties it. Returns 0 or an exit status. */
static int chunk_spill(sorter *s, chunk *c, runs *r) {
    if (c->n == 0)
        return 0;
    qsort(c->ix, c->n, sizeof *c->ix, ix_cmp);
    FILE *f = tmp_file(s->io->tmpdir);
    if (!f)
        return FEDC_EXIT_FAIL;
    int bad = 0;
    for (size_t i = 0; i < c->n && !bad; i++)
        bad = put_rec(f, c->ix[i].k1, c->ix[i].k2, c->arena + c->ix[i].off, c->ix[i].len);
    if (bad || fflush(f) || runs_add(r, f)) {
        fclose(f);
        return fail_io("cannot write a temporary file in", s->io->tmpdir);
    }
    c->n = 0;
    c->used = 0;
    return 0;
}

/* A run being read: its current record. */
typedef struct src {
    FILE *f;
    int64_t k1;
    uint64_t k2;
    uint32_t len;
    char *buf;
    size_t cap;
} src;

/* Reads the next record: 1, 0 at the end, -1 on a read error or a torn record. */
static int src_next(src *r) {
    unsigned char h[HDR_BYTES];
    size_t got = fread(h, 1, HDR_BYTES, r->f);
    if (got == 0 && !ferror(r->f))
        return 0;
    if (got != HDR_BYTES)
        return -1;
    memcpy(&r->k1, h, 8);
    memcpy(&r->k2, h + 8, 8);
    memcpy(&r->len, h + 16, 4);
    if (r->len + 1 > r->cap) {
        size_t cap = r->len + 1 > 256 ? (size_t)r->len + 1 : 256;
        char *nb = realloc(r->buf, cap);
        if (!nb)
            return -1;
        r->buf = nb;
        r->cap = cap;
    }
    return r->len && fread(r->buf, 1, r->len, r->f) != r->len ? -1 : 1;
}

static int src_less(const src *a, const src *b) {
    return a->k1 != b->k1 ? a->k1 < b->k1 : a->k2 < b->k2;
}

typedef int (*emit_fn)(sorter *s, const src *r, FILE *to);

/* Merges files f[0..n) (rewound here, closed after) in (k1, k2) order, handing each record to
 * emit. Returns 0 or an exit status. */
static int merge(sorter *s, FILE **f, size_t n, emit_fn emit, FILE *to) {
    src *r = calloc(n ? n : 1, sizeof *r);
    size_t *heap = calloc(n ? n : 1, sizeof *heap), hn = 0;
    int rc = 0;
    if (!r || !heap) {
        cli_error(CMD, "out of memory merging %zu sorted runs", n);
        rc = FEDC_EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        r[i].f = f[i];
        rewind(f[i]);
        int g = src_next(&r[i]);
        if (g < 0) {
            rc = fail_io("cannot read a temporary file in", s->io->tmpdir);
            goto out;
        }
        if (g == 0)
            continue;
        /* sift up */
        size_t k = hn++;
        heap[k] = i;
        while (k && src_less(&r[heap[k]], &r[heap[(k - 1) / 2]])) {
            size_t p = (k - 1) / 2, t = heap[p];
            heap[p] = heap[k];
            heap[k] = t;
            k = p;
        }
    }
    while (hn) {
        src *top = &r[heap[0]];
        if ((rc = emit(s, top, to)))
            goto out;
        int g = src_next(top);
        if (g < 0) {
            rc = fail_io("cannot read a temporary file in", s->io->tmpdir);
            goto out;
        }
        if (g == 0)
            heap[0] = heap[--hn];
        /* sift down */
        for (size_t k = 0;;) {
            size_t l = 2 * k + 1, m = k;
            if (l < hn && src_less(&r[heap[l]], &r[heap[m]]))
                m = l;
            if (l + 1 < hn && src_less(&r[heap[l + 1]], &r[heap[m]]))
                m = l + 1;
            if (m == k)
                break;
            size_t t = heap[m];
            heap[m] = heap[k];
            heap[k] = t;
            k = m;
        }
    }
out:
    for (size_t i = 0; i < n; i++) {
        fclose(f[i]);
        f[i] = NULL;
        if (r)
            free(r[i].buf);
    }
    free(r);
    free(heap);
    return rc;
}

static int emit_copy(sorter *s, const src *r, FILE *to) {
    if (put_rec(to, r->k1, r->k2, r->buf, r->len))
        return fail_io("cannot write a temporary file in", s->io->tmpdir);
    return 0;
}

/* Merges runs FANIN at a time into longer ones until at most FANIN are left. */
static int reduce(sorter *s, runs *r) {
    while (r->n > FANIN) {
        runs next = {0};
        for (size_t i = 0; i < r->n; i += FANIN) {
            size_t k = r->n - i < FANIN ? r->n - i : FANIN;
            FILE *to = tmp_file(s->io->tmpdir);
            int rc = to ? merge(s, r->f + i, k, emit_copy, to) : FEDC_EXIT_FAIL;
            if (!rc && (fflush(to) || runs_add(&next, to)))
                rc = fail_io("cannot write a temporary file in", s->io->tmpdir);
            if (rc) {
                if (to)
                    fclose(to);
                runs_close(&next);
                return rc;
            }
        }
        runs_close(r);
        *r = next;
    }
    return 0;
}

/* ---- step 1: parse and sort by time --------------------------------------------------------- */

static int read_rows(sorter *s, fedc_csv_reader *rd) {
    feat_io *io = s->io;
    fedc_feat_row *row = fedc_feat_engine_row(io->eng);
    fedc_diag d = {{0}};
    fedc_csv_record rec;
    for (;;) {
        fedc_err e = fedc_csv_next(rd, &rec, &d);
        if (e != FEDC_OK)
            return features_csv_fail(e, &d);
        if (rec.n_fields == 0)
            break;
        if (rec.blank)
            continue;
        if ((e = fedc_feat_engine_parse(io->eng, &rec, io->data, &d)) != FEDC_OK) {
            cli_error(CMD, "%s", d.msg);
            return e == FEDC_ENOMEM ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
        }
        size_t len = (size_t)row->n_val * sizeof(double);
        for (int i = 0; i < row->n_key; i++)
            len += 4 + row->key_len[i];
        if (len > UINT32_MAX || rec.raw_len > UINT32_MAX) {
            cli_error(CMD, "%s:%ld: row longer than 4 GiB", io->data, rec.line);
            return FEDC_EXIT_USAGE;
        }
        if (s->c.n && chunk_bytes(&s->c) + len > io->chunk_bytes) {
            int rc = chunk_spill(s, &s->c, &s->a);
            if (rc)
                return rc;
        }
        char *p = chunk_add(&s->c, row->t, io->rows, len);
        if (!p) {
            cli_error(CMD, "out of memory sorting %s (lower --memory-mb)", io->data);
            return FEDC_EXIT_FAIL;
        }
        for (int i = 0; i < row->n_key; i++) {
            uint32_t kl = (uint32_t)row->key_len[i];
            memcpy(p, &kl, 4);
            memcpy(p + 4, row->key[i], kl);
            p += 4 + kl;
        }
        memcpy(p, row->val, (size_t)row->n_val * sizeof(double));
        if (s->copy && put_rec(s->copy, (int64_t)io->rows, 0, rec.raw, (uint32_t)rec.raw_len))
            return fail_io("cannot write a temporary file in", io->tmpdir);
        io->rows++;
    }
    return chunk_spill(s, &s->c, &s->a);
}

/* ---- step 2: the engine, in time order --------------------------------------------------------
 */

static int emit_features(sorter *s, const src *r, FILE *to) {
    (void)to;
    feat_io *io = s->io;
    fedc_feat_row *row = fedc_feat_engine_row(io->eng);
    const char *p = r->buf, *end = r->buf + r->len;
    for (int i = 0; i < row->n_key; i++) {
        uint32_t kl;
        if (end - p < 4)
            goto torn;
        memcpy(&kl, p, 4);
        if ((size_t)(end - p) - 4 < kl)
            goto torn;
        row->key[i] = p + 4;
        row->key_len[i] = kl;
        p += 4 + kl;
    }
    if ((size_t)(end - p) != (size_t)row->n_val * sizeof(double))
        goto torn;
    memcpy(row->val, p, (size_t)row->n_val * sizeof(double));
    row->t = r->k1;
    fedc_err e = fedc_feat_engine_push(io->eng, row, io->vals);
    if (e != FEDC_OK) {
        cli_error(CMD, "%s",
                  e == FEDC_ENOMEM ? "out of memory for the windows"
                                   : "internal error: rows out of time order after "
                                     "sorting");
        return FEDC_EXIT_FAIL;
    }
    size_t n =
        fedc_feat_engine_format_sep(io->eng, io->text, io->vals, io->delim ? io->delim : ',');
    if (s->c.n && chunk_bytes(&s->c) + n > io->chunk_bytes) {
        int rc = chunk_spill(s, &s->c, &s->b);
        if (rc)
            return rc;
    }
    char *q = chunk_add(&s->c, (int64_t)r->k2, 0, n);
    if (!q) {
        cli_error(CMD, "out of memory sorting %s (lower --memory-mb)", io->data);
        return FEDC_EXIT_FAIL;
    }
    memcpy(q, io->text, n);
    return 0;
torn:
    cli_error(CMD, "a temporary file in %s was changed while fedc features used it", io->tmpdir);
    return FEDC_EXIT_FAIL;
}

/* ---- step 3: back in input order ---------------------------------------------------------- */

static int emit_output(sorter *s, const src *r, FILE *copy) {
    feat_io *io = s->io;
    if ((unsigned long long)r->k1 != s->next_row) {
        cli_error(CMD, "internal error: row %lld where row %llu was expected", (long long)r->k1,
                  s->next_row);
        return FEDC_EXIT_FAIL;
    }
    s->next_row++;
    const char *raw = NULL;
    size_t raw_len = 0;
    fedc_csv_record rec;
    if (copy) {
        s->cp->f = copy;
        if (src_next(s->cp) != 1 || (unsigned long long)s->cp->k1 != s->next_row - 1)
            return fail_io("cannot read a temporary file in", io->tmpdir);
        raw = s->cp->buf;
        raw_len = s->cp->len;
    } else {
        fedc_diag d = {{0}};
        do {
            fedc_err e = fedc_csv_next(s->rd, &rec, &d);
            if (e != FEDC_OK)
                return features_csv_fail(e, &d);
            if (rec.n_fields == 0) {
                cli_error(CMD, "%s: the file changed while fedc features read it (fewer rows)",
                          io->data);
                return FEDC_EXIT_FAIL;
            }
        } while (rec.blank);
        raw = rec.raw;
        raw_len = rec.raw_len;
    }
    /* the record's payload is the row's features as text */
    fedc_diag d = {{0}};
    char *room = fedc_afile_room(io->out, raw_len + r->len + 1, NULL);
    if (!room) {
        if (fedc_afile_write(io->out, raw, raw_len, &d) ||
            fedc_afile_write(io->out, r->buf, r->len, &d) ||
            fedc_afile_write(io->out, "\n", 1, &d)) {
            cli_error(CMD, "%s", d.msg);
            return FEDC_EXIT_FAIL;
        }
        return 0;
    }
    memcpy(room, raw, raw_len);
    memcpy(room + raw_len, r->buf, r->len);
    room[raw_len + r->len] = '\n';
    fedc_afile_wrote(io->out, raw_len + r->len + 1);
    return 0;
}

int features_sorted_by_files(feat_io *io, fedc_csv_reader *rd, int seekable) {
    sorter s = {0};
    src cp = {0};
    s.io = io;
    s.cp = &cp;
    int rc = 0;
    io->rows = 0;
    if (!seekable && !(s.copy = tmp_file(io->tmpdir)))
        return FEDC_EXIT_FAIL;
    if ((rc = read_rows(&s, rd)) || (rc = reduce(&s, &s.a)))
        goto out;
    if ((rc = merge(&s, s.a.f, s.a.n, emit_features, NULL)) || (rc = chunk_spill(&s, &s.c, &s.b)) ||
        (rc = reduce(&s, &s.b)))
        goto out;
    free(s.c.arena);
    free(s.c.ix);
    memset(&s.c, 0, sizeof s.c);
    if (s.copy) {
        if (fflush(s.copy)) {
            rc = fail_io("cannot write a temporary file in", io->tmpdir);
            goto out;
        }
        rewind(s.copy);
    } else {
        /* the input again, from its start */
        fedc_csv_record hdr;
        if (fseek(io->in, 0, SEEK_SET) != 0) {
            rc = fail_io("cannot read again", io->data);
            goto out;
        }
        int st = features_open(io, &s.rd, &hdr);
        if (st >= 0) {
            rc = st;
            goto out;
        }
    }
    rc = merge(&s, s.b.f, s.b.n, emit_output, s.copy);
    if (!rc && s.next_row != io->rows) {
        cli_error(CMD, "internal error: %llu rows written of %llu", s.next_row, io->rows);
        rc = FEDC_EXIT_FAIL;
    }
out:
    runs_close(&s.a);
    runs_close(&s.b);
    if (s.copy)
        fclose(s.copy);
    fedc_csv_close(&s.rd);
    free(cp.buf);
    free(s.c.arena);
    free(s.c.ix);
    return rc;
}
