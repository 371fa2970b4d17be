/* fedc features: time-window aggregates per entity from a raw transaction CSV (issue 16). The
 * definitions are those of Le Borgne et al. 2022, "Reproducible Machine Learning for Credit Card
 * Fraud Detection - Practical Handbook", ch. 3.4: a customer's number and mean amount of
 * transactions over the last D days, a terminal's number of transactions and share of frauds over
 * D days ending a delay of L days earlier (a label is used only once it is known). The window
 * semantics and the engine that computes them are fedc/features.h's.
 *
 * The file is streamed: rows in time order (the usual export) are read, computed and written in
 * one pass, so that memory grows with the rows inside the longest window, not with the file. At
 * the first row out of time order the pass is dropped and the file is sorted through temporary
 * files (features_sort.c), still in bounded memory. The output is written atomically. The spec can
 * come from flags or from a JSON file (--spec, written by --spec-out; fedc/features_spec.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "loadopts.h"
#include "features_run.h"
#include "fedc/features_spec.h"

#define CMD "features"

static fedc_prog_help features_help(void) {
    fedc_prog_help h = {
        "usage: fedc features --data tx.csv --time COLUMN --out features.csv [--calendar]\n"
        "       [--window 'ENTITY:D1,D2:AGG,...[:delay=L];...'] [--spec-out spec.json]\n"
        "   or: fedc features --data tx.csv --spec spec.json --out features.csv",
        "Adds time-window aggregates per entity to a raw transaction CSV (Le Borgne et al. 2022,\n"
        "fraud detection handbook ch. 3.4: customer spending and terminal risk features).\n"
        "Output: every input column as it was written, in input row order, then TX_WEEKEND and\n"
        "TX_NIGHT (hour 0..6) with --calendar, then per window spec and duration D (days) the\n"
        "columns ENTITY_COUNT_DD, ENTITY_SUM_COL_DD, ENTITY_MEAN_COL_DD, ENTITY_RATE_COL_DD asked\n"
        "for. The window of a row at time t holds the same entity's rows with time in (t - D, t],\n"
        "rows of equal time in file order (itself and earlier ones, not later ones); with\n"
        "delay=L, those in (t - L - D, t - L]. A mean or rate over an empty window is 0; counts\n"
        "are written as integers, sums, means and rates with 15 significant digits.\n"
        "\n"
        "Memory: rows in time order (non-decreasing; the usual export) are streamed in one pass,\n"
        "holding only the rows inside the longest window (D + L of the longest window spec, about\n"
        "100 bytes a row per window spec, plus each entity seen in it), never the file. At the\n"
        "first row out of order the file is sorted instead, through temporary files under\n"
        "--tmpdir: add --memory-mb (default 256 MiB) for the sort to that, and about as much disk\n"
        "as the output. Rows need not be sorted; sorted ones are several times faster.\n"
        "\n"
        "--spec FILE reads the spec (time column, format, calendar, window specs) from a JSON "
        "file\n"
        "written by --spec-out; flags given with it must agree with it (a flag that differs is\n"
        "refused, naming both). Model files keep the spec they were trained with.",
        "Example:\n"
        "  fedc features --data tx.csv --time TX_DATETIME --out features.csv --calendar \\\n"
        "    --window 'CUSTOMER_ID:1,7,30:count,mean=TX_AMOUNT;"
        "TERMINAL_ID:1,7,30:count,rate=TX_FRAUD:delay=7' \\\n"
        "    --spec-out spec.json\n"
        "  fedc features --data new-tx.csv --spec spec.json --out new-features.csv\n"
        "\n"
        "Exit status: 0 success, 1 runtime failure (memory, writing), 2 bad flags or bad input\n"
        "(named by file:line:field, by the spec's text, or by the spec file and key)."};
    return h;
}

int features_csv_fail(fedc_err e, const fedc_diag *d) {
    cli_error(CMD, "%s", d->msg);
    return e == FEDC_ENOMEM || e == FEDC_EIO ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
}

int features_open(feat_io *io, fedc_csv_reader **rd, fedc_csv_record *hdr) {
    fedc_diag d = {{0}};
    const fedc_csv_limits lim = {INT_MAX, SIZE_MAX, SIZE_MAX};
    fedc_err e = fedc_csv_open_file(rd, io->in, io->data, &lim, &d);
    if (e == FEDC_OK && io->delim && io->delim != ',')
        e = fedc_csv_set_delimiter(*rd, io->delim);
    if (e == FEDC_OK)
        e = fedc_csv_next(*rd, hdr, &d);
    if (e != FEDC_OK)
        return features_csv_fail(e, &d);
    if (hdr->n_fields == 0) {
        cli_error(CMD, "%s: empty file (a header line is needed)", io->data);
        return FEDC_EXIT_USAGE;
    }
    fedc_csv_expect_fields(*rd, hdr->n_fields);
    return -1;
}

int features_write_row(feat_io *io, const char *raw, size_t raw_len) {
    const char sep = io->delim ? io->delim : ',';
    size_t tmax = fedc_feat_engine_text_max(io->eng);
    char *room = fedc_afile_room(io->out, raw_len + tmax + 1, NULL);
    if (room) {
        memcpy(room, raw, raw_len);
        size_t n = fedc_feat_engine_format_sep(io->eng, room + raw_len, io->vals, sep);
        room[raw_len + n] = '\n';
        fedc_afile_wrote(io->out, raw_len + n + 1);
        return 0;
    }
    /* a row longer than the writer's buffer, or a failed write (said again below) */
    size_t n = fedc_feat_engine_format_sep(io->eng, io->text, io->vals, sep);
    io->text[n++] = '\n';
    fedc_diag d = {{0}};
    if (fedc_afile_write(io->out, raw, raw_len, &d) || fedc_afile_write(io->out, io->text, n, &d)) {
        cli_error(CMD, "%s", d.msg);
        return FEDC_EXIT_FAIL;
    }
    return 0;
}

/* The output's header line: the input's, then the feature columns (quoted where needed). */
static int write_header(feat_io *io, const fedc_csv_record *hdr) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return FEDC_EXIT_FAIL;
    const fedc_features_spec *s = fedc_feat_engine_spec(io->eng);
    int bad = fwrite(hdr->raw, 1, hdr->raw_len, m) != hdr->raw_len;
    for (int c = 0; c < fedc_features_n_columns(s); c++) {
        char name[1024];
        fedc_features_column_name(name, sizeof name, s, c);
        bad |= fputc(io->delim ? io->delim : ',', m) == EOF;
        bad |= fedc_csv_write_field(m, name);
    }
    bad |= fputc('\n', m) == EOF;
    bad |= fclose(m) != 0;
    fedc_diag d = {{0}};
    int rc = 0;
    if (bad) {
        cli_error(CMD, "out of memory");
        rc = FEDC_EXIT_FAIL;
    } else if (fedc_afile_write(io->out, buf, len, &d)) {
        cli_error(CMD, "%s", d.msg);
        rc = FEDC_EXIT_FAIL;
    }
    free(buf);
    return rc;
}

/* Rows read ahead of the engine, so that it can fetch what they need while it computes the ones
 * before (fedc_feat_engine_push_n): their text and keys are copied, the reader's record being
 * valid only until the next one. */
#define BATCH 256

typedef struct batch {
    fedc_feat_row rows[BATCH];
    const char **key; /* BATCH * n_key */
    size_t *key_len, *key_off;
    double *val; /* BATCH * n_val */
    size_t raw_off[BATCH], raw_len[BATCH];
    char *arena;
    size_t used, cap;
    double *out; /* BATCH * n_out */
    int n;
} batch;

static int batch_init(batch *b, const feat_io *io) {
    const fedc_feat_row *r = fedc_feat_engine_row(io->eng);
    size_t nk = (size_t)r->n_key + 1, nv = (size_t)r->n_val + 1;
    size_t no = (size_t)fedc_features_n_columns(fedc_feat_engine_spec(io->eng)) + 1;
    memset(b, 0, sizeof *b);
    b->key = calloc(BATCH * nk, sizeof *b->key);
    b->key_len = calloc(BATCH * nk, sizeof *b->key_len);
    b->key_off = calloc(BATCH * nk, sizeof *b->key_off);
    b->val = calloc(BATCH * nv, sizeof *b->val);
    b->out = calloc(BATCH * no, sizeof *b->out);
    b->cap = 1 << 20;
    b->arena = malloc(b->cap);
    if (!b->key || !b->key_len || !b->key_off || !b->val || !b->out || !b->arena)
        return -1;
    for (int i = 0; i < BATCH; i++) {
        b->rows[i].n_key = r->n_key;
        b->rows[i].n_val = r->n_val;
        b->rows[i].key = b->key + (size_t)i * nk;
        b->rows[i].key_len = b->key_len + (size_t)i * nk;
        b->rows[i].val = b->val + (size_t)i * nv;
    }
    return 0;
}

static void batch_free(batch *b) {
    free(b->key);
    free(b->key_len);
    free(b->key_off);
    free(b->val);
    free(b->out);
    free(b->arena);
}

/* Computes and writes the rows gathered. Returns 0 or an exit status. */
static int batch_flush(feat_io *io, batch *b) {
    if (b->n == 0)
        return 0;
    const int nk = b->rows[0].n_key;
    /* push_n writes n_out values per row */
    const size_t no = (size_t)fedc_features_n_columns(fedc_feat_engine_spec(io->eng));
    for (int r = 0; r < b->n; r++)
        for (int i = 0; i < nk; i++)
            b->rows[r].key[i] = b->arena + b->key_off[(size_t)r * (size_t)(nk + 1) + (size_t)i];
    if (fedc_feat_engine_push_n(io->eng, b->rows, (size_t)b->n, b->out) != FEDC_OK) {
        cli_error(CMD, "out of memory for the windows (%zu rows held)",
                  fedc_feat_engine_held(io->eng));
        return FEDC_EXIT_FAIL;
    }
    for (int r = 0; r < b->n; r++) {
        /* features_write_row reads io->vals: point it at this row's */
        double *keep = io->vals;
        io->vals = b->out + (size_t)r * no;
        int rc = features_write_row(io, b->arena + b->raw_off[r], b->raw_len[r]);
        io->vals = keep;
        if (rc)
            return rc;
    }
    io->rows += (unsigned long long)b->n;
    b->n = 0;
    b->used = 0;
    return 0;
}

/* 1 when row's key i is a part of rec's text (an unquoted field, or a quoted one without doubled
 * quotes), which the batch keeps anyway. */
static int key_in_raw(const fedc_feat_row *row, int i, const fedc_csv_record *rec) {
    /* as addresses: the key may point into another buffer (the reader's, for unescaped text) */
    const uintptr_t k = (uintptr_t)row->key[i], r = (uintptr_t)rec->raw;
    return k >= r && row->key_len[i] <= rec->raw_len && k - r <= rec->raw_len - row->key_len[i];
}

/* Copies record rec's text and row r's keys into the batch. Returns 0 or an exit status. */
static int batch_add(feat_io *io, batch *b, const fedc_csv_record *rec) {
    fedc_feat_row *row = &b->rows[b->n];
    size_t need = rec->raw_len;
    /* bit i: key i lies in rec's text (asked once: a flush below keeps the keys' pointers) */
    _Static_assert(FEDC_FEAT_MAX_WINDOWS <= 64, "one bit per key");
    uint64_t in_raw = 0;
    for (int i = 0; i < row->n_key; i++) {
        if (key_in_raw(row, i, rec))
            in_raw |= 1ull << i;
        else
            need += row->key_len[i];
    }
    if (b->used + need > b->cap) {
        /* a full arena: compute what it holds (the keys of row r are still the reader's), then
         * grow it if this one row is larger */
        const char *key[FEDC_FEAT_MAX_WINDOWS];
        size_t key_len[FEDC_FEAT_MAX_WINDOWS];
        double val[FEDC_FEAT_MAX_WINDOWS * FEDC_FEAT_MAX_AGGS];
        memcpy(key, row->key, (size_t)row->n_key * sizeof *key);
        memcpy(key_len, row->key_len, (size_t)row->n_key * sizeof *key_len);
        memcpy(val, row->val, (size_t)row->n_val * sizeof *val);
        int64_t t = row->t;
        int rc = batch_flush(io, b);
        if (rc)
            return rc;
        row = &b->rows[0];
        memcpy(row->key, key, (size_t)row->n_key * sizeof *key);
        memcpy(row->key_len, key_len, (size_t)row->n_key * sizeof *key_len);
        memcpy(row->val, val, (size_t)row->n_val * sizeof *val);
        row->t = t;
        if (need > b->cap) {
            char *na = realloc(b->arena, need);
            if (!na) {
                cli_error(CMD, "%s:%ld: out of memory for a row of %zu bytes", io->data, rec->line,
                          need);
                return FEDC_EXIT_FAIL;
            }
            b->arena = na;
            b->cap = need;
        }
    }
    b->raw_off[b->n] = b->used;
    b->raw_len[b->n] = rec->raw_len;
    memcpy(b->arena + b->used, rec->raw, rec->raw_len);
    b->used += rec->raw_len;
    const size_t raw_off = b->raw_off[b->n];
    for (int i = 0; i < row->n_key; i++) {
        size_t *off = &b->key_off[(size_t)b->n * (size_t)(row->n_key + 1) + (size_t)i];
        if (in_raw >> i & 1) {
            *off = raw_off + (size_t)(row->key[i] - rec->raw);
            continue;
        }
        *off = b->used;
        memcpy(b->arena + b->used, row->key[i], row->key_len[i]);
        b->used += row->key_len[i];
    }
    return ++b->n == BATCH ? batch_flush(io, b) : 0;
}

/* Streams rows in time order: returns 0 when done, an exit status, or -1 at the first row whose
 * time is earlier than the one before (*line: its line). */
static int stream_sorted(feat_io *io, fedc_csv_reader *rd, long *line) {
    batch *b = malloc(sizeof *b);
    if (!b || batch_init(b, io)) {
        if (b)
            batch_free(b);
        free(b);
        cli_error(CMD, "out of memory");
        return FEDC_EXIT_FAIL;
    }
    fedc_diag d = {{0}};
    fedc_csv_record rec;
    int64_t last = INT64_MIN;
    int rc = 0;
    for (;;) {
        fedc_err e = fedc_csv_next(rd, &rec, &d);
        if (e != FEDC_OK) {
            rc = features_csv_fail(e, &d);
            break;
        }
        if (rec.n_fields == 0) {
            rc = batch_flush(io, b);
            break;
        }
        if (rec.blank)
            continue; /* an empty line is no transaction */
        fedc_feat_row *row = &b->rows[b->n];
        if ((e = fedc_feat_engine_parse_into(io->eng, row, &rec, io->data, &d)) != FEDC_OK) {
            cli_error(CMD, "%s", d.msg);
            rc = e == FEDC_ENOMEM ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
            break;
        }
        if (row->t < last) {
            *line = rec.line;
            rc = -1;
            break;
        }
        last = row->t;
        if ((rc = batch_add(io, b, &rec)))
            break;
    }
    batch_free(b);
    free(b);
    return rc;
}

/* Refuses a flag that says otherwise than the --spec file. */
static int agrees(const fedc_opts *op, fedc_opt_id id, const char *flag, int same,
                  const char *spec_path, const char *spec_value) {
    if (op->v[id].src == FEDC_SRC_DEFAULT || same)
        return 1;
    cli_error(CMD, "%s '%s' differs from the spec file %s (%s); leave it out or write a new spec",
              flag, op->v[id].text ? op->v[id].text : "true", spec_path, spec_value);
    return 0;
}

/* The spec from --spec (checked against the flags also given) or from the flags. Returns -1 when
 * ready, else an exit status. */
static int build_spec(fedc_features_spec *s, const fedc_opts *op) {
    fedc_diag d = {{0}};
    const char *path = op->v[FEDC_O_SPEC].text, *win = op->v[FEDC_O_WINDOW].text;
    const char *time_col = op->v[FEDC_O_TIME_COL].text;
    int epoch = op->v[FEDC_O_TIME_FORMAT].i == 1, calendar = (int)op->v[FEDC_O_CALENDAR].i;
    fedc_err e;
    if (path) {
        if ((e = fedc_features_spec_load(s, path, &d)) != FEDC_OK) {
            cli_error(CMD, "--spec %s", d.msg);
            return e == FEDC_ENOMEM ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
        }
        char have[4096];
        fedc_features_windows_text(have, sizeof have, s);
        int same_win = 1;
        if (win) {
            fedc_features_spec given;
            fedc_features_spec_init(&given);
            if ((e = fedc_features_spec_add_windows(&given, win, &d)) != FEDC_OK) {
                fedc_features_spec_release(&given);
                cli_error(CMD, "--window %s", d.msg);
                return e == FEDC_ENOMEM ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
            }
            given.time_col = s->time_col; /* borrowed: only the windows are compared */
            given.epoch = s->epoch;
            given.calendar = s->calendar;
            same_win = fedc_features_spec_equal(&given, s);
            given.time_col = NULL;
            fedc_features_spec_release(&given);
        }
        if (!agrees(op, FEDC_O_TIME_COL, "--time", time_col && strcmp(time_col, s->time_col) == 0,
                    path, s->time_col) ||
            !agrees(op, FEDC_O_TIME_FORMAT, "--time-format", epoch == s->epoch, path,
                    s->epoch ? "epoch" : "datetime") ||
            !agrees(op, FEDC_O_CALENDAR, "--calendar", calendar == s->calendar, path,
                    s->calendar ? "calendar true" : "calendar false") ||
            !(win ? agrees(op, FEDC_O_WINDOW, "--window", same_win, path, have) : 1))
            return FEDC_EXIT_USAGE;
        return -1;
    }
    if (!time_col) {
        cli_error(CMD, "--data, --time and --out are required, or --spec for --time (see fedc "
                       "features --help)");
        return FEDC_EXIT_USAGE;
    }
    if (!win && !calendar) {
        cli_error(CMD, "nothing to compute: give --window or --calendar");
        return FEDC_EXIT_USAGE;
    }
    if ((e = fedc_features_spec_set_time(s, time_col, &d)) != FEDC_OK ||
        (win && (e = fedc_features_spec_add_windows(s, win, &d)) != FEDC_OK)) {
        cli_error(CMD, "%s %s", e == FEDC_EINVAL ? "--time" : "--window", d.msg);
        return e == FEDC_ENOMEM ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
    }
    s->epoch = epoch;
    s->calendar = calendar;
    return -1;
}

/* --tmpdir, else $TMPDIR, else the output's directory (in *own when made here). */
static const char *tmp_dir(const fedc_opts *op, const char *out, char **own) {
    const char *t = op->v[FEDC_O_TMPDIR].text;
    if (t && *t)
        return t;
    t = getenv("TMPDIR");
    if (t && *t)
        return t;
    const char *slash = strrchr(out, '/');
    if (!slash)
        return ".";
    size_t n = slash == out ? 1 : (size_t)(slash - out);
    if ((*own = malloc(n + 1))) {
        memcpy(*own, out, n);
        (*own)[n] = 0;
    }
    return *own;
}

int cmd_features(int argc, char **argv) {
    fedc_prog_help h = features_help();
    /* the option parser keeps the last of a repeated flag; a second --window would silently drop
     * the first spec, so it is refused here and the specs are joined with ';' instead */
    int n_window = 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--window") == 0 || strncmp(argv[i], "--window=", 9) == 0)
            n_window++;
    if (n_window > 1) {
        cli_error(CMD, "--window given %d times: give it once, the specs separated by ';'",
                  n_window);
        return FEDC_EXIT_USAGE;
    }
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_FEATURES, argc, argv, &h);
    if (prc >= 0)
        return prc;
    feat_io io = {0};
    io.data = op.v[FEDC_O_DATA].text;
    io.delim = ',';
    if (fedc_opt_given(&op, FEDC_O_DELIMITER) &&
        fedc_parse_delimiter(&io.delim, op.v[FEDC_O_DELIMITER].text)) {
        cli_error(CMD, "--delimiter: expected one separator character (or 'tab'), got '%s'",
                  op.v[FEDC_O_DELIMITER].text);
        return FEDC_EXIT_USAGE;
    }
    const char *out = op.v[FEDC_O_OUT].text, *spec_out = op.v[FEDC_O_SPEC_OUT].text;
    fedc_features_spec spec;
    fedc_features_spec_init(&spec);
    fedc_csv_reader *rd = NULL;
    fedc_csv_record hdr;
    char *own_tmp = NULL;
    fedc_diag d = {{0}};
    int rc = FEDC_EXIT_USAGE;
    if (!io.data || !out) {
        cli_error(CMD, "--data and --out are required (see fedc features --help)");
        goto done;
    }
    int st = build_spec(&spec, &op);
    if (st >= 0) {
        rc = st;
        goto done;
    }
    if (!(io.in = fopen(io.data, "rb"))) {
        cli_error(CMD, "%s: cannot open: %s", io.data, strerror(errno));
        goto done;
    }
    struct stat sb;
    int seekable = fstat(fileno(io.in), &sb) == 0 && S_ISREG(sb.st_mode);
    if ((st = features_open(&io, &rd, &hdr)) >= 0) {
        rc = st;
        goto done;
    }
    fedc_err e = fedc_feat_engine_new(&io.eng, &spec, &d);
    if (e == FEDC_OK)
        e = fedc_feat_engine_bind(io.eng, hdr.fields, hdr.n_fields, io.data, &d);
    if (e != FEDC_OK) {
        cli_error(CMD, "%s", d.msg);
        rc = e == FEDC_ENOMEM ? FEDC_EXIT_FAIL : FEDC_EXIT_USAGE;
        goto done;
    }
    rc = FEDC_EXIT_FAIL;
    io.tmpdir = tmp_dir(&op, out, &own_tmp);
    double mb = op.v[FEDC_O_MEMORY_MB].r * 1048576.0;
    io.chunk_bytes = mb < 1 ? 1 : mb > (double)(SIZE_MAX / 2) ? SIZE_MAX / 2 : (size_t)mb;
    io.vals = calloc((size_t)fedc_features_n_columns(&spec) + 1, sizeof *io.vals);
    io.text = malloc(fedc_feat_engine_text_max(io.eng) + 1);
    if (!io.tmpdir || !io.vals || !io.text) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    if (fedc_afile_open(&io.out, out, &d) != FEDC_OK) {
        cli_error(CMD, "--out %s", d.msg);
        goto done;
    }
    if ((rc = write_header(&io, &hdr)))
        goto done;
    long line = 0;
    if (!seekable) {
        /* a pipe cannot be read twice: sort from the start */
        if ((rc = features_sorted_by_files(&io, rd, 0)))
            goto done;
    } else if ((st = stream_sorted(&io, rd, &line)) >= 0) {
        if ((rc = st))
            goto done;
    } else {
        /* Out of time order: start again, sorting. The engine has seen later rows already, so a
         * new one takes over, and a new output file. */
        fprintf(stderr,
                "fedc features: %s:%ld: rows out of time order; sorting through temporary files "
                "in %s\n",
                io.data, line, io.tmpdir);
        fedc_feat_engine_destroy(&io.eng);
        fedc_afile_abort(&io.out);
        fedc_csv_close(&rd);
        if (fseek(io.in, 0, SEEK_SET) != 0) {
            cli_error(CMD, "%s: cannot read again: %s", io.data, strerror(errno));
            goto done;
        }
        if ((st = features_open(&io, &rd, &hdr)) >= 0) {
            rc = st;
            goto done;
        }
        rc = FEDC_EXIT_FAIL;
        if ((e = fedc_feat_engine_new(&io.eng, &spec, &d)) != FEDC_OK ||
            (e = fedc_feat_engine_bind(io.eng, hdr.fields, hdr.n_fields, io.data, &d)) != FEDC_OK) {
            cli_error(CMD, "%s", d.msg);
            goto done;
        }
        if (fedc_afile_open(&io.out, out, &d) != FEDC_OK) {
            cli_error(CMD, "--out %s", d.msg);
            goto done;
        }
        if ((rc = write_header(&io, &hdr)) || (rc = features_sorted_by_files(&io, rd, 1)))
            goto done;
    }
    rc = 0;
done:
    if (rc == 0 && io.out) {
        if (fedc_afile_commit(&io.out, &d) != FEDC_OK) {
            cli_error(CMD, "--out %s", d.msg);
            rc = FEDC_EXIT_FAIL;
        } else if (spec_out && fedc_features_spec_save(&spec, spec_out, &d) != FEDC_OK) {
            cli_error(CMD, "--spec-out %s", d.msg);
            rc = FEDC_EXIT_FAIL;
        }
    }
    fedc_afile_abort(&io.out);
    fedc_feat_engine_destroy(&io.eng);
    fedc_csv_close(&rd);
    if (io.in)
        fclose(io.in);
    free(io.vals);
    free(io.text);
    free(own_tmp);
    fedc_features_spec_release(&spec);
    return rc;
}
