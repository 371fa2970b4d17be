/* Client names for given shard files (fedc sim --shards, fedc tune --shards).
 *
 * A client is named after its file (bank-a.csv -> bank-a). sim makes a key for every client, and
 * a key's name is restricted (fedc_key_name_ok: A-Z a-z 0-9 . _ -, not starting with '.' or '-'),
 * so a base name is mapped onto that set instead of refused: fedc split --scheme column:NAME writes
 * files such as EDUCATION=1.csv, which becomes client EDUCATION_1. The same names are used with
 * --insecure, so that a run's logs, metrics and per-client table do not depend on that flag. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "sim.h"
#include "fedc/keys.h"

void sim_client_name(char *out, size_t cap, const char *path) {
    if (cap == 0)
        return;
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap && k < FEDC_KEY_NAME_MAX; i++) {
        unsigned char ch = (unsigned char)b[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ((ch == '.' || ch == '-') && k > 0);
        out[k++] = ok ? (char)ch : '_';
    }
    if (k == 0 && cap > 1)
        out[k++] = '_';
    out[k] = 0;
}

int sim_shard_names(const char *cmd, char *const *files, int n, char **names) {
    for (int i = 0; i < n; i++) {
        char nm[FEDC_KEY_NAME_MAX + 1];
        sim_client_name(nm, sizeof nm, files[i]);
        /* Compared without case: the names become key and log file names, and two files that
         * differ only in case would overwrite each other on a case-insensitive file system. */
        for (int k = 0; k < i; k++)
            if (strcasecmp(names[k], nm) == 0) {
                cli_error(cmd,
                          "--shards: %s and %s would both be client '%s' (a client is named after "
                          "its file, with characters other than A-Z a-z 0-9 . _ - turned into "
                          "'_'); rename one of them",
                          files[k], files[i], nm);
                return -1;
            }
        if (!(names[i] = strdup(nm))) {
            cli_error(cmd, "out of memory");
            return -1;
        }
    }
    return 0;
}
