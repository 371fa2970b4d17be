/* fedc demo's features step: from every bank's raw transactions to its training features and its
 * share of the common test set (demo.h).
 *
 * History. A transaction's windows reach back up to 30 days (37 for the terminal's, ending 7 days
 * before it), so features of the first test days need the bank's earlier transactions. A bank
 * scoring new transactions has that history, so each bank computes its features over all its
 * days and only then splits in time: a training row sees only earlier rows (windows look back,
 * never forward), and a test row sees the bank's training period and the earlier test rows, whose
 * labels count only once they are 7 days old, as they would in production. Computing the test
 * rows alone would give their first days empty windows that no bank would ever see.
 *
 * Left out: checking that the raw files are in time order (the split goes by each row's time, so
 * any order works) and merging the test parts in time order (the metrics do not depend on it). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "demo.h"
#include "fedc/csv.h"
#include "fedc/features.h"
#include "fedc/modelfile.h"

#define CMD "demo"
#define MAX_DEMO_BANKS 26

/* A file written through a temporary and renamed into place once complete. */
typedef struct afile {
    FILE *f;
    char path[3300], tmp[3400];
} afile;

static int afile_open(afile *a, const char *path) {
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp", path);
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        cli_error(CMD, "cannot write %s: %s", a->tmp, strerror(errno));
        return -1;
    }
    return 0;
}

/* Flushes, syncs and renames; on any failure the temporary goes and the message says why. */
static int afile_commit(afile *a) {
    int bad = ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int err = errno;
    bad |= fclose(a->f) != 0;
    a->f = NULL;
    if (bad || rename(a->tmp, a->path) != 0) {
        cli_error(CMD, "cannot write %s: %s", a->path, strerror(bad ? err : errno));
        unlink(a->tmp);
        return -1;
    }
    return 0;
}

static void afile_abandon(afile *a) {
    if (a->f) {
        fclose(a->f);
        unlink(a->tmp);
        a->f = NULL;
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The rows of `in` (fedc features' output) with TX_DATETIME before `from` to before_path, the
 * others to after_path, each file with in's header line and the rows byte for byte in their
 * order. Counts go to *nb and *na. Returns an exit code. */
static int split_time(const char *in, const char *before_path, const char *after_path, int64_t from,
                      long *nb, long *na) {
    FILE *f = fopen(in, "rb");
    if (!f) {
        cli_error(CMD, "cannot read %s: %s", in, strerror(errno));
        return FEDC_EXIT_FAIL;
    }
    const fedc_csv_limits lim = {INT_MAX, SIZE_MAX, SIZE_MAX};
    fedc_csv_reader *r = NULL;
    fedc_diag d = {{0}};
    afile out[2] = {{0}};
    int rc = FEDC_EXIT_FAIL, col = -1;
    *nb = *na = 0;
    if (fedc_csv_open_file(&r, f, in, &lim, &d) != FEDC_OK) {
        cli_error(CMD, "%s", d.msg);
        goto done;
    }
    fedc_csv_record rec;
    if (fedc_csv_next(r, &rec, &d) != FEDC_OK) {
        cli_error(CMD, "%s", d.msg);
        goto done;
    }
    for (int c = 0; c < rec.n_fields; c++)
        if (rec.fields[c].n == strlen(DEMO_TIME_COL) &&
            memcmp(rec.fields[c].s, DEMO_TIME_COL, rec.fields[c].n) == 0)
            col = c;
    if (col < 0) {
        cli_error(CMD, "%s:1: no column %s in the header", in, DEMO_TIME_COL);
        goto done;
    }
    fedc_csv_expect_fields(r, rec.n_fields);
    if (afile_open(&out[0], before_path) || afile_open(&out[1], after_path))
        goto done;
    for (int k = 0; k < 2; k++) {
        fwrite(rec.raw, 1, rec.raw_len, out[k].f);
        fputc('\n', out[k].f);
    }
    for (;;) {
        if (fedc_csv_next(r, &rec, &d) != FEDC_OK) {
            cli_error(CMD, "%s", d.msg);
            goto done;
        }
        if (rec.n_fields == 0)
            break;
        if (rec.blank)
            continue;
        int64_t t;
        const fedc_csv_field *fl = &rec.fields[col];
        if (fedc_parse_datetime(fl->s, fl->n, &t) != 0) {
            cli_error(CMD, "%s:%ld:%d: expected a time YYYY-MM-DD HH:MM:SS, got '%.*s'", in,
                      rec.line, col + 1, (int)(fl->n > 64 ? 64 : fl->n), fl->s);
            goto done;
        }
        afile *o = &out[t >= from];
        fwrite(rec.raw, 1, rec.raw_len, o->f);
        fputc('\n', o->f);
        ++*(t >= from ? na : nb);
    }
    if (afile_commit(&out[0]) || afile_commit(&out[1]))
        goto done;
    rc = FEDC_EXIT_OK;
done:
    afile_abandon(&out[0]);
    afile_abandon(&out[1]);
    fedc_csv_close(&r);
    fclose(f);
    return rc;
}

/* One bank, in its own process: features over its whole raw file, then the split in time. The
 * summary line goes to `report`. */
static int one_bank(const char *data_dir, const char *feat_dir, char letter, int64_t from,
                    const char *test_from, FILE *report) {
    char raw[3200], all[3200], train[3200], part[3200];
    snprintf(raw, sizeof raw, "%s/bank-%c.csv", data_dir, letter);
    snprintf(all, sizeof all, "%s/bank-%c.all.csv", feat_dir, letter);
    snprintf(train, sizeof train, "%s/bank-%c.csv", feat_dir, letter);
    snprintf(part, sizeof part, "%s/bank-%c.test.csv", feat_dir, letter);
    double t0 = now_s();
    char *fargv[] = {"features", "--data",     raw,        "--time",    DEMO_TIME_COL, "--out",
                     all,        "--calendar", "--window", DEMO_WINDOW, NULL};
    int rc = cmd_features(10, fargv);
    if (rc)
        return rc;
    double t1 = now_s();
    long nb, na;
    rc = split_time(all, train, part, from, &nb, &na);
    unlink(all);
    if (rc)
        return rc;
    fprintf(report,
            "bank-%c: fedc features on %s (%.1f s): %ld rows before %s to %s, %ld to the common "
            "test set\n",
            letter, raw, t1 - t0, nb, test_from, train, na);
    return 0;
}

/* feat_dir/test.csv: the banks' parts one after the other, one header (the parts' headers must
 * be equal: one spec). The parts are removed. */
static int join_parts(const char *feat_dir, int n_banks, long *rows) {
    char path[3200], *head0 = NULL, *line = NULL;
    size_t cap = 0, cap0 = 0;
    afile out = {0};
    int rc = FEDC_EXIT_FAIL;
    *rows = 0;
    snprintf(path, sizeof path, "%s/test.csv", feat_dir);
    if (afile_open(&out, path))
        return rc;
    for (int k = 0; k < n_banks; k++) {
        snprintf(path, sizeof path, "%s/bank-%c.test.csv", feat_dir, 'a' + k);
        FILE *f = fopen(path, "rb");
        if (!f) {
            cli_error(CMD, "cannot read %s: %s", path, strerror(errno));
            goto done;
        }
        ssize_t n = getline(k ? &line : &head0, k ? &cap : &cap0, f);
        if (n <= 0 || (k && strcmp(line, head0) != 0)) {
            cli_error(CMD, "%s: its header differs from bank-a's part", path);
            fclose(f);
            goto done;
        }
        if (!k)
            fputs(head0, out.f);
        while ((n = getline(&line, &cap, f)) > 0) {
            fwrite(line, 1, (size_t)n, out.f);
            ++*rows;
        }
        int bad = ferror(f);
        fclose(f);
        if (bad) {
            cli_error(CMD, "cannot read %s", path);
            goto done;
        }
    }
    if (afile_commit(&out))
        goto done;
    for (int k = 0; k < n_banks; k++) {
        snprintf(path, sizeof path, "%s/bank-%c.test.csv", feat_dir, 'a' + k);
        unlink(path);
    }
    rc = FEDC_EXIT_OK;
done:
    afile_abandon(&out);
    free(head0);
    free(line);
    return rc;
}

int demo_features_reusable(const char *feat_dir, const char *marker) {
    char p[3200];
    snprintf(p, sizeof p, "%s/features.json", feat_dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (strcmp(buf, marker) != 0)
        return 0;
    const char *files[] = {"bank-a.csv", "bank-b.csv", "bank-c.csv", "test.csv"};
    for (int i = 0; i < 4; i++) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", feat_dir, files[i]);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
            return 0;
    }
    return 1;
}

int demo_make_features(const char *data_dir, const char *feat_dir, int n_banks,
                       const char *test_from, const char *marker) {
    int64_t from;
    if (n_banks < 1 || n_banks > MAX_DEMO_BANKS ||
        fedc_parse_datetime(test_from, strlen(test_from), &from) != 0) {
        cli_error(CMD, "internal: bad banks (%d) or test start '%s'", n_banks, test_from);
        return FEDC_EXIT_FAIL;
    }
    char mk[3200];
    snprintf(mk, sizeof mk, "%s/features.json", feat_dir);
    if ((mkdir(feat_dir, 0755) != 0 && errno != EEXIST) || (unlink(mk) != 0 && errno != ENOENT)) {
        cli_error(CMD, "cannot prepare %s: %s", feat_dir, strerror(errno));
        return FEDC_EXIT_FAIL;
    }
    pid_t pid[MAX_DEMO_BANKS];
    int fd[MAX_DEMO_BANKS], rc = FEDC_EXIT_OK, started = 0;
    double t0 = now_s();
    fflush(NULL); /* nothing buffered may be written twice by the children */
    for (int k = 0; k < n_banks; k++) {
        int p[2];
        if (pipe(p) != 0 || (pid[k] = fork()) < 0) {
            cli_error(CMD, "cannot start bank-%c's features: %s", 'a' + k, strerror(errno));
            rc = FEDC_EXIT_FAIL;
            break;
        }
        if (pid[k] == 0) {
            close(p[0]);
            for (int j = 0; j < k; j++)
                close(fd[j]);
            FILE *report = fdopen(p[1], "w");
            int code = report
                           ? one_bank(data_dir, feat_dir, (char)('a' + k), from, test_from, report)
                           : FEDC_EXIT_FAIL;
            if (report)
                fclose(report);
            fflush(NULL);
            _exit(code);
        }
        close(p[1]);
        fd[k] = p[0];
        started++;
    }
    /* The summaries in bank order, then every child's status. */
    for (int k = 0; k < started; k++) {
        char buf[4096];
        ssize_t n;
        size_t got = 0;
        while ((n = read(fd[k], buf + got, sizeof buf - 1 - got)) > 0 && got < sizeof buf - 1)
            got += (size_t)n;
        buf[got] = 0;
        close(fd[k]);
        int st;
        while (waitpid(pid[k], &st, 0) < 0 && errno == EINTR)
            ;
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : FEDC_EXIT_FAIL;
        if (code && !rc)
            rc = code;
        if (!code)
            fputs(buf, stdout);
        else
            cli_error(CMD, "bank-%c's features failed (exit %d)", 'a' + k, code);
    }
    if (rc)
        return rc;
    long rows;
    if ((rc = join_parts(feat_dir, n_banks, &rows)) != 0)
        return rc;
    printf("common test set: %s/test.csv, %ld rows from %s on, the banks' parts (%.1f s in "
           "all)\n",
           feat_dir, rows, test_from, now_s() - t0);
    fedc_diag d = {{0}};
    if (fedc_write_atomic(mk, marker, strlen(marker), &d) != FEDC_OK) {
        cli_error(CMD, "%s", d.msg);
        return FEDC_EXIT_FAIL;
    }
    return FEDC_EXIT_OK;
}
