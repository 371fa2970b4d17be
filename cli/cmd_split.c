/* fedc split: partitions one CSV file into per-client CSV files for federated simulations. This
 * file parses the flags; the work is done by split_run (split.c), which `fedc sim` calls too. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "loadopts.h"
#include "split.h"

static const char *CMD = "split";

/* Split's --help: the table's options between a usage paragraph and the rules, written with
 * split.h's bounds (built once: the text needs numbers the preprocessor cannot stringify). */
static fedc_prog_help split_help(void) {
    static char intro[1024], outro[3072];
    snprintf(intro, sizeof intro,
             "Partitions the rows of one CSV file into per-client CSV files. Every data row goes\n"
             "to exactly one file, copied byte for byte (numbers keep every digit); every file\n"
             "starts with the input's header line. The label column is numeric; its distinct\n"
             "integer values are the classes (at most %d).",
             SPLIT_MAX_CLASSES);
    snprintf(outro, sizeof outro,
             "Schemes (--scheme):\n"
             "  iid                seeded shuffle, then N shards whose sizes differ by at most 1\n"
             "  stratified         each class dealt across the shards: every shard holds\n"
             "                     floor or ceil(n_c / N) rows of each class c, sizes differ by\n"
             "                     at most 1\n"
             "  dirichlet:ALPHA    label skew: for each class, its shares over the N clients are\n"
             "                     drawn from Dirichlet(ALPHA, ..., ALPHA); ALPHA in (0, 1e6]:\n"
             "                     0.1 gives clients dominated by one class, 100 near-uniform\n"
             "  column:NAME        one file per distinct value of column NAME (compared as text,\n"
             "                     blanks and quotes removed); values held by under %d%% of the\n"
             "                     rows are merged into other.csv; --clients is not given\n"
             "\n"
             "Files: DIR/client-1.csv .. DIR/client-N.csv (numbers zero-padded to equal width\n"
             "when N >= 10), or for column:NAME DIR/NAME=VALUE.csv per value plus DIR/other.csv\n"
             "for the merged rare values (bytes other than letters, digits, '.', '-' and '_'\n"
             "become '_'; a suffix -2, -3, ... tells apart values that would give the same\n"
             "name). Rows keep their input order within a file. Line ends follow the header\n"
             "line: a CRLF file gives CRLF files, an LF file LF files, and every line gets one,\n"
             "the last included. Blank lines at the end of the input are dropped. Each file is\n"
             "written atomically (temporary file, fsync, rename). The same seed and input give\n"
             "the same files (column:NAME draws nothing).\n"
             "\n"
             "Existing files: DIR may not already hold shard files (client-<digits>.csv, *=*.csv,\n"
             "other.csv) unless --force is given; then they are replaced, and those this run does\n"
             "not write are removed, so DIR holds exactly this run's shards. Other files are\n"
             "never touched.\n"
             "\n"
             "Output: one line per file on stdout (path, rows, then pos and pos_rate for 0/1\n"
             "labels, classes=VALUE:COUNT,... for other class labels, label_mean for other\n"
             "numeric labels), then a total line.\n"
             "\n"
             "Exit status: 0 success, 1 runtime failure (writing the files), 2 bad flags or bad\n"
             "input.",
             SPLIT_RARE_PERCENT);
    fedc_prog_help h = {
        "usage: fedc split --data FILE.csv --label COLUMN --clients N --out DIR [options]\n"
        "       fedc split --data FILE.csv --label COLUMN --scheme column:NAME --out DIR "
        "[options]",
        intro, outro};
    return h;
}

int cmd_split(int argc, char **argv) {
    fedc_prog_help h = split_help();
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_SPLIT, argc, argv, &h);
    if (prc >= 0)
        return prc;
    split_opts o;
    memset(&o, 0, sizeof o);
    o.data = op.v[FEDC_O_DATA].text;
    o.label = op.v[FEDC_O_LABEL].text;
    o.scheme = op.v[FEDC_O_SCHEME].text;
    o.out_dir = op.v[FEDC_O_OUT].text;
    o.clients = fedc_opt_has(&op, FEDC_O_CLIENTS) ? (int)op.v[FEDC_O_CLIENTS].i : 0;
    /* split_run refuses --min-rows outside dirichlet: only a given one is handed on (0 = 1) */
    o.min_rows = fedc_opt_given(&op, FEDC_O_MIN_ROWS) ? (int)op.v[FEDC_O_MIN_ROWS].i : 0;
    o.seed = op.v[FEDC_O_SEED].u;
    o.force = (int)op.v[FEDC_O_FORCE].i;
    o.quiet = (int)op.v[FEDC_O_QUIET].i;
    o.positive = op.v[FEDC_O_POSITIVE].text;
    if (fedc_opt_has(&op, FEDC_O_DELIMITER) &&
        fedc_parse_delimiter(&o.delimiter, op.v[FEDC_O_DELIMITER].text)) {
        cli_error(CMD, "--delimiter '%s': expected one character such as , ; | : or 'tab'",
                  op.v[FEDC_O_DELIMITER].text);
        return FEDC_EXIT_USAGE;
    }
    return split_run(CMD, &o, NULL, NULL);
}
