/* fedc provision's kits: writing one participant's kit (its keys, the rosters of public keys, the
 * config file, start.sh and the README) and the file helpers the command shares (provision.h).
 *
 * Secret keys reach other kits only by mistake, and the one path that copies keys between kits
 * (kit_copy_public) reads the source with fedc_key_load_public, which refuses a secret key file. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fedc/keys.h"
#include "fedc/modelfile.h"
#include "provision.h"

/* ---- files ---------------------------------------------------------------------------------- */

/* "%s/%s" into out; -1 (said) when it does not fit. */
int kit_join(char *out, size_t cap, const char *a, const char *b) {
    if (snprintf(out, cap, "%s/%s", a, b) >= (int)cap) {
        cli_error(CMD, "%s/%s: path too long", a, b);
        return -1;
    }
    return 0;
}

int kit_make_dir(const char *path, mode_t mode) {
    if (mkdir(path, mode) != 0) {
        cli_error(CMD, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes text to path atomically (fedc_write_atomic), then gives it mode when mode is not 0. */
static int write_text(const char *path, const char *text, mode_t mode) {
    fedc_diag d;
    if (fedc_write_atomic(path, text, strlen(text), &d)) {
        cli_error(CMD, "%s", d.msg);
        return -1;
    }
    if (mode && chmod(path, mode) != 0) {
        cli_error(CMD, "%s: cannot set mode %o: %s", path, (unsigned)mode, strerror(errno));
        return -1;
    }
    return 0;
}

/* Copies the public key file src to dst. src is read as a public key first: a secret key file is
 * refused here, so no secret can travel into another participant's kit through this path. */
int kit_copy_public(const char *src, const char *dst) {
    fedc_identity id;
    fedc_diag d;
    if (fedc_key_load_public(&id, src, &d)) {
        cli_error(CMD, "%s", d.msg);
        return -1;
    }
    fedc_key_wipe(&id);
    FILE *f = fopen(src, "r");
    char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    int bad = !f || ferror(f) || !feof(f) || n == 0;
    if (f)
        fclose(f);
    if (bad) {
        cli_error(CMD, "%s: cannot read it whole", src);
        return -1;
    }
    if (fedc_write_atomic(dst, buf, n, &d)) {
        cli_error(CMD, "%s", d.msg);
        return -1;
    }
    return 0;
}

/* A fresh identity written into dir as NAME.key and NAME.key_secret (never replacing a file). */
int kit_make_identity(const char *dir, const char *name) {
    fedc_identity id;
    fedc_diag d;
    if (fedc_key_generate(&id, name, &d)) {
        cli_error(CMD, "%s", d.msg);
        return -1;
    }
    fedc_err rc = fedc_key_write(&id, dir, 0, &d);
    fedc_key_wipe(&id);
    if (rc) {
        cli_error(CMD, "%s", d.msg);
        return -1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes a directory this command created (a temporary kit), with what it holds. */
void kit_rm_tree(const char *dir) {
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        cli_error(CMD, "could not remove all of %s (remove it by hand)", dir);
}

/* ---- the kits' texts ------------------------------------------------------------------------ */

/* A growing text, so that the READMEs and configs need no fixed buffer. -1 (said) on failure. */
typedef struct text {
    char *s;
    size_t n, cap;
    int failed;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...) {
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            t->failed = 1;
            return;
        }
        if (t->s && t->n + (size_t)k < t->cap) {
            t->n += (size_t)k;
            return;
        }
        size_t cap = (t->cap ? t->cap : 1024) * 2 + (size_t)k;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->failed = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
}

/* Writes t to path (mode as write_text) and frees it. */
static int write_done(text *t, const char *path, mode_t mode) {
    int rc = -1;
    if (t->failed || !t->s)
        cli_error(CMD, "%s: out of memory", path);
    else
        rc = write_text(path, t->s, mode);
    free(t->s);
    memset(t, 0, sizeof *t);
    return rc;
}

/* What every kit says about paths and the programs. */
static void add_paths_note(text *t, const char *prog, const char *env) {
    add(t,
        "Paths in the config file are relative to this directory: start.sh changes to it before\n"
        "starting %s, so the kit works wherever it is unpacked (move it as a whole). Flags\n"
        "given to start.sh beat the config file; paths in them are relative to this directory\n"
        "too. The program is %s on the PATH; %s=/path/to/%s picks another.\n",
        prog, prog, env, prog);
}

int kit_write_coordinator_files(const char *kit, const char *endpoint, int port, int n_clients) {
    char path[PATH_MAX];
    text t = {0};
    add(&t,
        "; fedc-coordinator's settings, written by fedc provision. Every key is a\n"
        "; fedc-coordinator flag without the dashes (fedc-coordinator --help lists them); paths\n"
        "; are relative to this directory (start.sh runs from here).\n"
        "[coordinator]\n"
        "; every interface: the clients connect to %s\n"
        "bind = tcp://*:%d\n"
        "key = " COORD ".key_secret\n"
        "; the clients' public keys: only these may join\n"
        "allow = allow\n"
        "; every client must join before round 0 (fedc provision --add raises it); lower it to\n"
        "; start without stragglers, 3 at least with secure aggregation\n"
        "min-clients = %d\n"
        "model-out = global.fedc\n"
        "metrics-json = rounds.jsonl\n"
        "; rounds = 20\n",
        endpoint, port, n_clients);
    if (kit_join(path, sizeof path, kit, COORD ".ini") || write_done(&t, path, 0))
        return -1;
    add(&t, "#!/bin/sh\n"
            "# Starts this federation's coordinator from its kit (written by fedc provision).\n"
            "# usage: ./start.sh [fedc-coordinator flags, e.g. --rounds 50]\n"
            "# It runs from the kit's directory: the paths in " COORD ".ini are relative to it.\n"
            "set -eu\n"
            "cd \"$(dirname \"$0\")\"\n"
            "exec \"${FEDC_COORDINATOR:-fedc-coordinator}\" --config " COORD ".ini \"$@\"\n");
    if (kit_join(path, sizeof path, kit, "start.sh") || write_done(&t, path, 0755))
        return -1;
    add(&t,
        "The coordinator's kit (fedc provision)\n"
        "======================================\n"
        "\n"
        "  " COORD ".key_secret  the coordinator's secret key, mode 0600: it stays on this\n"
        "                          machine and is never copied anywhere else\n"
        "  " COORD ".key         its public key (every client's kit holds a copy)\n"
        "  allow/                  the clients' public keys: only these may join\n"
        "  " COORD ".ini         fedc-coordinator's settings (training, rounds, outputs)\n"
        "  start.sh                starts fedc-coordinator with " COORD ".ini\n"
        "\n"
        "Start it with ./start.sh (e.g. ./start.sh --rounds 50). It listens on TCP port %d on\n"
        "every interface: the clients connect to the address given to fedc provision, so that\n"
        "port must be reachable from them. It waits for the min-clients of " COORD ".ini (all\n"
        "the clients provisioned), runs the rounds, writes the final model to global.fedc and\n"
        "one line per round to rounds.jsonl here, tells the clients the run is over and exits.\n"
        "\n",
        port);
    add_paths_note(&t, "fedc-coordinator", "FEDC_COORDINATOR");
    add(&t, "\n"
            "A new client: fedc provision --out DIR --add NAME, run where the kits were made,\n"
            "writes allow/NAME.key into DIR/coordinator/ (and raises min-clients there). Copy\n"
            "that file into allow/ here, change min-clients, and restart: the allow-list is read\n"
            "at start.\n");
    return kit_join(path, sizeof path, kit, "README") || write_done(&t, path, 0) ? -1 : 0;
}

int kit_write_client_files(const char *kit, const char *name, const char *endpoint,
                           const char *label, const char *drop) {
    char path[PATH_MAX];
    text t = {0};
    add(&t,
        "; fedc-client's settings for %s, written by fedc provision. Every key is a fedc-client\n"
        "; flag without the dashes (fedc-client --help lists them); paths are relative to this\n"
        "; directory (start.sh runs from here).\n"
        "[client]\n"
        "connect = tcp://%s\n"
        "key = %s.key_secret\n"
        "; the coordinator's public key, pinned\n"
        "coordinator-key = " COORD ".key\n"
        "; every client's public key: the roster of secure aggregation\n"
        "peers = peers\n"
        "; this bank's data: ./start.sh /path/to/data.csv, or uncomment (an absolute path, or\n"
        "; one relative to this directory)\n"
        "; data = /path/to/%s.csv\n",
        name, endpoint, name, name);
    if (label)
        add(&t, "label = %s\n", label);
    else
        add(&t, "; the label column: uncomment, or ./start.sh DATA.csv --label COLUMN\n"
                "; label = COLUMN\n");
    if (drop)
        add(&t, "drop = %s\n", drop);
    add(&t, "; one line per local training, on this machine only\n"
            "metrics-json = rounds.jsonl\n");
    if (kit_join(path, sizeof path, kit, "client.ini") || write_done(&t, path, 0))
        return -1;
    add(&t,
        "#!/bin/sh\n"
        "# Starts %s's fedc-client from its kit (written by fedc provision).\n"
        "# usage: ./start.sh [DATA.csv] [fedc-client flags]\n"
        "#   DATA.csv is taken relative to where you run this (or set data = in client.ini).\n"
        "# It runs from the kit's directory: the paths in client.ini are relative to it.\n"
        "set -eu\n"
        "if [ $# -gt 0 ]; then\n"
        "    case $1 in\n"
        "    -*) ;;\n"
        "    *)\n"
        "        data=$1\n"
        "        shift\n"
        "        case $data in /*) ;; *) data=$(pwd)/$data ;; esac\n"
        "        set -- --data \"$data\" \"$@\"\n"
        "        ;;\n"
        "    esac\n"
        "fi\n"
        "cd \"$(dirname \"$0\")\"\n"
        "exec \"${FEDC_CLIENT:-fedc-client}\" --config client.ini \"$@\"\n",
        name);
    if (kit_join(path, sizeof path, kit, "start.sh") || write_done(&t, path, 0755))
        return -1;
    /* the file names in one column, however long the name */
    int w = (int)strlen(name) + (int)strlen(".key_secret") + 2;
    char sec[FEDC_KEY_NAME_MAX + 16], pub[FEDC_KEY_NAME_MAX + 16];
    snprintf(sec, sizeof sec, "%s.key_secret", name);
    snprintf(pub, sizeof pub, "%s.key", name);
    add(&t, "%s's kit (fedc provision)\n", name);
    for (size_t k = strlen(name) + strlen("'s kit (fedc provision)"); k > 0; k--)
        add(&t, "=");
    add(&t,
        "\n\n"
        "  %-*s your secret key, mode 0600: it stays on this machine and is\n"
        "  %-*s never copied anywhere else\n"
        "  %-*s your public key (the coordinator and the other clients hold copies)\n"
        "  %-*s the coordinator's public key: the client talks to no one else\n"
        "  %-*s every client's public key, the roster of secure aggregation\n"
        "  %-*s fedc-client's settings\n"
        "  %-*s starts fedc-client with client.ini\n"
        "\n"
        "Start it with ./start.sh /path/to/your-data.csv (a CSV file with a header line; it\n"
        "never leaves this machine). The path is taken relative to where you run start.sh; or\n"
        "write it into client.ini as data = PATH and run ./start.sh alone.\n"
        "%s\n"
        "The client connects to tcp://%s, trains on your rows each round,\n"
        "sends only its masked update (secure aggregation), and exits when the coordinator\n"
        "ends the run.\n"
        "\n",
        w, sec, w, "", w, pub, w, COORD ".key", w, "peers/", w, "client.ini", w, "start.sh",
        label ? "The label column is set in client.ini."
              : "The label column is not set: add --label COLUMN to start.sh, or label = in\n"
                "client.ini.",
        endpoint);
    add_paths_note(&t, "fedc-client", "FEDC_CLIENT");
    add(&t, "\n"
            "A new client joins the federation with its public key in peers/: the file\n"
            "peers/NAME.key comes from the coordinator's operator (fedc provision --add); copy\n"
            "it into peers/ and restart, the roster is read at start.\n");
    return kit_join(path, sizeof path, kit, "README") || write_done(&t, path, 0) ? -1 : 0;
}

/* One client's kit in kit (an existing, empty directory): identity, the coordinator's public
 * key, peers/ with the roster's files (the paths in roster, then its own) and the texts. */
int kit_build_client_kit(const char *kit, const char *name, const char *coord_pub,
                         char *const *roster, int n_roster, const char *endpoint, const char *label,
                         const char *drop) {
    char peers[PATH_MAX], p[PATH_MAX], own[PATH_MAX], file[FEDC_KEY_NAME_MAX + 8];
    if (kit_join(peers, sizeof peers, kit, "peers") || kit_make_dir(peers, 0755) ||
        kit_make_identity(kit, name) || kit_join(p, sizeof p, kit, COORD ".key") ||
        kit_copy_public(coord_pub, p))
        return -1;
    for (int i = 0; i < n_roster; i++) {
        const char *b = strrchr(roster[i], '/');
        if (kit_join(p, sizeof p, peers, b ? b + 1 : roster[i]) || kit_copy_public(roster[i], p))
            return -1;
    }
    snprintf(file, sizeof file, "%s.key", name);
    if (kit_join(own, sizeof own, kit, file) || kit_join(p, sizeof p, peers, file) ||
        kit_copy_public(own, p))
        return -1;
    return kit_write_client_files(kit, name, endpoint, label, drop);
}

int kit_write_manifest(const char *dir, const char *endpoint, const char *label, const char *drop) {
    char path[PATH_MAX];
    text t = {0};
    add(&t,
        "; fedc provision's record of the federation whose kits are here: fedc provision --add\n"
        "; reads it. The roster is DIR/" COORD "/allow/.\n"
        "[provision]\n"
        "coordinator = %s\n",
        endpoint);
    if (label)
        add(&t, "label = %s\n", label);
    if (drop)
        add(&t, "drop = %s\n", drop);
    return kit_join(path, sizeof path, dir, MANIFEST) || write_done(&t, path, 0) ? -1 : 0;
}

/* ---- --add's edit of the coordinator's config ------------------------------------------ */

/* Replaces the line "min-clients = from" of the coordinator's config with "= to" (atomically).
 * 1: replaced; 0: no such line (an operator changed it: left alone); -1: error (said). */
int kit_raise_min_clients(const char *ini, int from, int to) {
    FILE *f = fopen(ini, "r");
    if (!f) {
        cli_error(CMD, "cannot read %s: %s", ini, strerror(errno));
        return -1;
    }
    text t = {0};
    char *line = NULL;
    size_t cap = 0;
    char want[64];
    snprintf(want, sizeof want, "min-clients = %d\n", from);
    int found = 0;
    while (getline(&line, &cap, f) > 0) {
        if (!found && strcmp(line, want) == 0) {
            add(&t, "min-clients = %d\n", to);
            found = 1;
        } else {
            add(&t, "%s", line);
        }
    }
    int bad = ferror(f);
    fclose(f);
    free(line);
    if (bad) {
        cli_error(CMD, "cannot read %s", ini);
        free(t.s);
        return -1;
    }
    if (!found) {
        free(t.s);
        return 0;
    }
    return write_done(&t, ini, 0) ? -1 : 1;
}
