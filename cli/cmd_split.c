/* fedc split: partitions one CSV file into per-client CSV files for federated simulations. This
 * file parses the flags; the work is done by split_run (split.c), which `fedc sim` calls too. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "split.h"

static const char *CMD = "split";

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: fedc split --data FILE.csv --label COLUMN --clients N --out DIR [options]\n"
        "       fedc split --data FILE.csv --label COLUMN --scheme column:NAME --out DIR "
        "[options]\n"
        "\n"
        "Partitions the rows of one CSV file into per-client CSV files. Every data row goes to\n"
        "exactly one file, copied byte for byte (numbers keep every digit); every file starts\n"
        "with the input's header line.\n"
        "\n"
        "  --data FILE            input CSV with a header line (required)\n"
        "  --label NAME           label column, numeric (required); its distinct integer values\n"
        "                         are the classes (at most %d)\n"
        "  --clients N            number of files, %d..%d and at most the number of rows\n"
        "                         (required, except with column:NAME, where it must not be given)\n"
        "  --scheme S             how rows are assigned to clients (default iid):\n"
        "      iid                seeded shuffle, then N shards whose sizes differ by at most 1\n"
        "      stratified         each class dealt across the shards: every shard holds\n"
        "                         floor or ceil(n_c / N) rows of each class c, sizes differ by\n"
        "                         at most 1\n"
        "      dirichlet:ALPHA    label skew: for each class, its shares over the N clients are\n"
        "                         drawn from Dirichlet(ALPHA, ..., ALPHA); ALPHA in (0, 1e6]:\n"
        "                         0.1 gives clients dominated by one class, 100 near-uniform ones\n"
        "      column:NAME        one file per distinct value of column NAME (compared as text,\n"
        "                         blanks and quotes removed); values held by under %d%% of the\n"
        "                         rows are merged into other.csv\n"
        "  --min-rows K           dirichlet only: draws are repeated (at most 100000 times) until\n"
        "                         every client has at least K rows (default 1: no empty client;\n"
        "                         e.g. 10 when every client must be able to train)\n"
        "  --seed N               seed of the shuffles and draws (default 1); the same seed and\n"
        "                         input give the same files (column:NAME draws nothing)\n"
        "  --out DIR              output directory; created if missing (its parent must exist)\n"
        "  --force                replace shard files already in DIR (see below)\n"
        "  --quiet                no summary lines\n"
        "  -h, --help             this message\n"
        "\n"
        "Files: DIR/client-1.csv .. DIR/client-N.csv (numbers zero-padded to equal width when\n"
        "N >= 10), or for column:NAME DIR/NAME=VALUE.csv per value plus DIR/other.csv for the\n"
        "merged rare values (bytes other than letters, digits, '.', '-' and '_' become '_'; a\n"
        "suffix -2, -3, ... tells apart values that would give the same name). Rows keep their\n"
        "input order within a file. Line ends follow the header line: a CRLF file gives CRLF\n"
        "files, an LF file LF files, and every line gets one, the last included. Blank lines at\n"
        "the end of the input are dropped. Each file is written atomically (temporary file,\n"
        "fsync, rename).\n"
        "\n"
        "Existing files: DIR may not already hold shard files (client-<digits>.csv, *=*.csv,\n"
        "other.csv) unless --force is given; then they are replaced, and those this run does not\n"
        "write are removed, so DIR holds exactly this run's shards. Other files are never "
        "touched.\n"
        "\n"
        "Output: one line per file on stdout (path, rows, then pos and pos_rate for 0/1 labels,\n"
        "classes=VALUE:COUNT,... for other class labels, label_mean for other numeric labels),\n"
        "then a total line.\n"
        "\n"
        "Exit status: 0 success, 1 runtime failure (writing the files), 2 bad flags or bad "
        "input.\n",
        SPLIT_MAX_CLASSES, SPLIT_MIN_CLIENTS, SPLIT_MAX_CLIENTS, SPLIT_RARE_PERCENT);
}

int cmd_split(int argc, char **argv) {
    split_opts o;
    memset(&o, 0, sizeof o);
    o.seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return FEDC_EXIT_OK;
        }
        if (strcmp(a, "--force") == 0) {
            o.force = 1;
            continue;
        }
        if (strcmp(a, "--quiet") == 0) {
            o.quiet = 1;
            continue;
        }
        char flag[64];
        const char *v;
        if (cli_flag_value(CMD, argc, argv, &i, flag, sizeof flag, &v))
            return FEDC_EXIT_USAGE;
        int bad = 0;
        if (strcmp(flag, "--data") == 0)
            o.data = v;
        else if (strcmp(flag, "--label") == 0)
            o.label = v;
        else if (strcmp(flag, "--scheme") == 0)
            o.scheme = v;
        else if (strcmp(flag, "--out") == 0)
            o.out_dir = v;
        else if (strcmp(flag, "--clients") == 0)
            bad = cli_int(CMD, flag, v, SPLIT_MIN_CLIENTS, SPLIT_MAX_CLIENTS, &o.clients);
        else if (strcmp(flag, "--min-rows") == 0)
            bad = cli_int(CMD, flag, v, 1, 1000000000, &o.min_rows);
        else if (strcmp(flag, "--seed") == 0)
            bad = cli_u64(CMD, flag, v, &o.seed);
        else {
            cli_error(CMD, "unknown option '%s' (see fedc split --help)", flag);
            return FEDC_EXIT_USAGE;
        }
        if (bad)
            return FEDC_EXIT_USAGE;
    }
    return split_run(CMD, &o, NULL, NULL);
}
