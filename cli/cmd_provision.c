/* fedc provision: one startup kit per participant, so that nobody copies key files by hand.
 *
 * A kit is a directory that one participant receives whole: its own secret key (0600), the public
 * keys it needs (the coordinator's allow-list, a client's roster and the coordinator's key), a
 * config file for its program, a start script and a README. The kits are built in a temporary
 * directory beside --out and renamed into place at the end, so a failure leaves no half-written
 * federation. --add writes one more client's kit into an existing directory and puts its public
 * key into the coordinator's allow-list and every client's roster; it never touches a secret key.
 *
 * Secret keys reach other kits only by mistake, and the one path that copies keys between kits
 * (kit_copy_public) reads the source with fedc_key_load_public, which refuses a secret key file. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fedc/keys.h"
#include "fedc/modelfile.h"
#include "provision.h"

#define MAX_CLIENTS 4096 /* --min-clients' top in the option table */

/* --help: the table's options between these paragraphs. They name no flag of another program
 * (tests/prog/test_options.c refuses a --help that shows one). */
static const fedc_prog_help g_help = {
    "usage: fedc provision --coordinator HOST:PORT --clients A,B,C --out DIR\n"
    "                      [--label COLUMN] [--drop A,B]\n"
    "       fedc provision --out DIR --add NAME [--label COLUMN] [--drop A,B]",
    "Writes one startup kit per participant: DIR/coordinator/ and DIR/NAME/ for each client.\n"
    "Each holds the participant's own secret key (NAME.key_secret, mode 0600; no kit holds\n"
    "anyone else's), the public keys it needs (the coordinator: allow/ with the clients' keys;\n"
    "a client: coordinator.key and peers/, the roster of all clients for secure aggregation),\n"
    "a config file (coordinator.ini or client.ini), start.sh and a README. Send each\n"
    "directory to its participant as it is; nothing else needs copying. DIR/" MANIFEST "\n"
    "records the coordinator's address (and the label and drop given) for --add.",
    "Paths in the config files are relative to the kit: start.sh changes to its own\n"
    "directory first, so a kit works wherever it is unpacked. A client's data file differs\n"
    "per bank: ./start.sh /path/to/data.csv (relative to where you run it), or data = in\n"
    "client.ini. DIR itself holds every participant's secret key until the kits are sent:\n"
    "delete the *.key_secret files from it then (--add needs only the public files).\n"
    "\n"
    "Exit status: 0 done, 1 a file could not be written (nothing is left half-done), 2 bad\n"
    "arguments or an existing name."};

/* ---- checks --------------------------------------------------------------------------------- */

/* HOST:PORT with HOST a name, an IPv4 address or a bracketed IPv6 one, PORT in 1..65535. */
static int parse_endpoint(const char *s, int *port) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hl < 3 || s[hl - 1] != ']')
            return -1;
        for (size_t i = 1; i + 1 < hl; i++)
            if (!strchr("0123456789abcdefABCDEF:.", s[i]))
                return -1;
    } else {
        for (size_t i = 0; i < hl; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", s[i]))
                return -1;
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

/* A value written into an INI file must read back as itself: one line, no comment characters
 * (libinih may cut an inline "; ..."), no spaces at the ends (it strips them). */
static int ini_value_ok(const char *v) {
    size_t n = strlen(v);
    if (n == 0 || n > 1000 || v[0] == ' ' || v[n - 1] == ' ')
        return 0;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ';' || *p == '#')
            return 0;
    return 1;
}

static int client_name_ok(const char *flag, const char *name) {
    if (!fedc_key_name_ok(name)) {
        cli_error(CMD,
                  "%s: expected 1..%d characters of A-Z a-z 0-9 . _ -, not starting with '.' or "
                  "'-', got '%s'",
                  flag, FEDC_KEY_NAME_MAX, name);
        return 0;
    }
    if (strcmp(name, COORD) == 0 || strcmp(name, MANIFEST) == 0) {
        cli_error(CMD, "%s: '%s' is the name of the coordinator's kit; choose another", flag, name);
        return 0;
    }
    return 1;
}

/* ---- a new federation ----------------------------------------------------------------------- */

static int provision_new(const char *out, const char *endpoint, int port, char **names, int n,
                         const char *label, const char *drop) {
    struct stat st;
    if (stat(out, &st) == 0) {
        DIR *dd = S_ISDIR(st.st_mode) ? opendir(out) : NULL;
        int empty = dd != NULL;
        for (struct dirent *e; dd && (e = readdir(dd));)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
                empty = 0;
        if (dd)
            closedir(dd);
        if (!empty) {
            cli_error(CMD,
                      "--out: %s exists and is not an empty directory; kits are never written "
                      "over (fedc provision --out %s --add NAME adds a client)",
                      out, out);
            return FEDC_EXIT_USAGE;
        }
    }
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", out) >= (int)sizeof tmp - 1024) {
        cli_error(CMD, "--out: path too long");
        return FEDC_EXIT_USAGE;
    }
    if (!mkdtemp(tmp)) { /* 0700: it holds every secret key until the kits are sent */
        cli_error(CMD, "cannot create a directory beside %s: %s", out, strerror(errno));
        return FEDC_EXIT_FAIL;
    }
    char coord[PATH_MAX], allow[PATH_MAX], coord_pub[PATH_MAX], kit[PATH_MAX], p[PATH_MAX];
    char **pubs = calloc((size_t)n, sizeof *pubs);
    int rc = FEDC_EXIT_FAIL;
    if (!pubs) {
        cli_error(CMD, "out of memory");
        goto fail;
    }
    if (kit_join(coord, sizeof coord, tmp, COORD) ||
        kit_join(allow, sizeof allow, coord, "allow") ||
        kit_join(coord_pub, sizeof coord_pub, coord, COORD ".key") || kit_make_dir(coord, 0700) ||
        kit_make_dir(allow, 0755) || kit_make_identity(coord, COORD))
        goto fail;
    /* Every client's identity first: each roster needs all the public keys. */
    for (int i = 0; i < n; i++) {
        char file[FEDC_KEY_NAME_MAX + 8];
        snprintf(file, sizeof file, "%s.key", names[i]);
        if (kit_join(kit, sizeof kit, tmp, names[i]) || kit_make_dir(kit, 0700) ||
            kit_make_identity(kit, names[i]) || kit_join(p, sizeof p, kit, file) ||
            !(pubs[i] = strdup(p)))
            goto fail;
        if (kit_join(p, sizeof p, allow, file) || kit_copy_public(pubs[i], p))
            goto fail;
    }
    for (int i = 0; i < n; i++) {
        char peers[PATH_MAX];
        if (kit_join(kit, sizeof kit, tmp, names[i]) ||
            kit_join(peers, sizeof peers, kit, "peers") || kit_make_dir(peers, 0755) ||
            kit_join(p, sizeof p, kit, COORD ".key") || kit_copy_public(coord_pub, p))
            goto fail;
        for (int j = 0; j < n; j++) {
            char file[FEDC_KEY_NAME_MAX + 8];
            snprintf(file, sizeof file, "%s.key", names[j]);
            if (kit_join(p, sizeof p, peers, file) || kit_copy_public(pubs[j], p))
                goto fail;
        }
        if (kit_write_client_files(kit, names[i], endpoint, label, drop))
            goto fail;
    }
    if (kit_write_coordinator_files(coord, endpoint, port, n) ||
        kit_write_manifest(tmp, endpoint, label, drop))
        goto fail;
    if (rename(tmp, out) != 0) {
        cli_error(CMD, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
        goto fail;
    }
    printf("wrote %d kits into %s/ for the coordinator at %s:\n", n + 1, out, endpoint);
    printf("  %s/%s/  send to the coordinator's machine; start it with ./start.sh\n", out, COORD);
    for (int i = 0; i < n; i++)
        printf("  %s/%s/  send to %s; start it with ./start.sh /path/to/its-data.csv\n", out,
               names[i], names[i]);
    printf("Each kit holds its own secret key only. %s/ holds them all: delete the "
           "*.key_secret files from it once the kits are sent (--add needs only the public "
           "files).\n",
           out);
    if (n < 3)
        printf("note: %d client(s); secure aggregation needs 3 or more: set secagg = off in "
               "coordinator.ini and every client.ini, or add clients\n",
               n);
    rc = FEDC_EXIT_OK;
    tmp[0] = 0;
fail:
    if (tmp[0])
        kit_rm_tree(tmp);
    for (int i = 0; pubs && i < n; i++)
        free(pubs[i]);
    free(pubs);
    return rc;
}

/* ---- --add ---------------------------------------------------------------------------------- */

typedef struct manifest {
    char endpoint[300], label[1024], drop[1024];
    int bad;
} manifest;

static int manifest_entry(void *user, const char *section, const char *name, const char *value) {
    manifest *m = user;
    char *dst = NULL;
    size_t cap = 0;
    if (strcmp(section, "provision") == 0 && strcmp(name, "coordinator") == 0)
        dst = m->endpoint, cap = sizeof m->endpoint;
    else if (strcmp(section, "provision") == 0 && strcmp(name, "label") == 0)
        dst = m->label, cap = sizeof m->label;
    else if (strcmp(section, "provision") == 0 && strcmp(name, "drop") == 0)
        dst = m->drop, cap = sizeof m->drop;
    if (!dst || snprintf(dst, cap, "%s", value) >= (int)cap)
        m->bad = 1;
    return 1;
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a > b && strcmp(s + a - b, suf) == 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The roster: the NAME of every DIR/coordinator/allow/NAME.key, sorted; checked as public keys
 * with distinct names and keys (fedc_key_load_dir, as the coordinator reads it). */
static int read_roster(const char *allow, char ***names_out, int *n_out) {
    fedc_identity *ids = NULL;
    int n_ids = 0;
    fedc_diag d;
    if (fedc_key_load_dir(&ids, &n_ids, allow, &d)) {
        cli_error(CMD, "%s", d.msg);
        return -1;
    }
    free(ids);
    DIR *dd = opendir(allow);
    if (!dd) {
        cli_error(CMD, "cannot read %s: %s", allow, strerror(errno));
        return -1;
    }
    char **names = calloc((size_t)n_ids + 1, sizeof *names);
    int n = 0, bad = !names;
    for (struct dirent *e; !bad && (e = readdir(dd));) {
        if (!has_suffix(e->d_name, ".key"))
            continue;
        if (n == n_ids || !(names[n] = strdup(e->d_name))) {
            bad = 1;
            break;
        }
        names[n][strlen(names[n]) - 4] = 0;
        n++;
    }
    closedir(dd);
    if (bad || n != n_ids) {
        cli_error(CMD, "%s changed while it was read, or out of memory", allow);
        cli_free_list(names);
        return -1;
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    *names_out = names;
    *n_out = n;
    return 0;
}

static int provision_add(const char *out, const char *name, const char *label, const char *drop) {
    char p[PATH_MAX], coord[PATH_MAX], allow[PATH_MAX], coord_pub[PATH_MAX], kit[PATH_MAX];
    char file[FEDC_KEY_NAME_MAX + 8];
    snprintf(file, sizeof file, "%s.key", name);
    if (kit_join(p, sizeof p, out, MANIFEST) || kit_join(coord, sizeof coord, out, COORD) ||
        kit_join(allow, sizeof allow, coord, "allow") ||
        kit_join(coord_pub, sizeof coord_pub, coord, COORD ".key") ||
        kit_join(kit, sizeof kit, out, name))
        return FEDC_EXIT_USAGE;
    manifest m;
    memset(&m, 0, sizeof m);
    int irc = ini_parse(p, manifest_entry, &m);
    if (irc < 0) {
        cli_error(CMD, "--add: cannot read %s: %s (is %s a directory written by fedc provision?)",
                  p, strerror(errno), out);
        return FEDC_EXIT_USAGE;
    }
    int port;
    if (irc > 0 || m.bad || parse_endpoint(m.endpoint, &port) ||
        (m.label[0] && !ini_value_ok(m.label)) || (m.drop[0] && !ini_value_ok(m.drop))) {
        cli_error(CMD,
                  "%s%s%d: expected [provision] with coordinator = HOST:PORT and optionally "
                  "label and drop, as fedc provision wrote it",
                  p, irc > 0 ? ":" : "", irc > 0 ? irc : 0);
        return FEDC_EXIT_USAGE;
    }
    if (!label && m.label[0])
        label = m.label;
    if (!drop && m.drop[0])
        drop = m.drop;
    struct stat st;
    char allow_new[PATH_MAX];
    if (kit_join(allow_new, sizeof allow_new, allow, file))
        return FEDC_EXIT_USAGE;
    if (lstat(kit, &st) == 0) {
        cli_error(CMD,
                  "--add: '%s' is already in this federation (%s exists); names are never "
                  "reused, so that no key is replaced: choose another",
                  name, kit);
        return FEDC_EXIT_USAGE;
    }
    if (lstat(allow_new, &st) == 0) {
        cli_error(CMD,
                  "--add: %s exists but %s does not: '%s' was provisioned before (its kit sent "
                  "away) or an earlier --add was interrupted; names are never reused, so that no "
                  "key is replaced: choose another (or remove %s and every peers/%s first)",
                  allow_new, kit, name, allow_new, file);
        return FEDC_EXIT_USAGE;
    }
    char **roster = NULL, **roster_paths = NULL, **written = NULL;
    int n = 0, n_written = 0, rc = FEDC_EXIT_USAGE;
    char tmp[PATH_MAX] = "";
    if (read_roster(allow, &roster, &n))
        return FEDC_EXIT_USAGE;
    if (n + 1 > MAX_CLIENTS) {
        cli_error(CMD, "--add: %d clients already, at most %d", n, MAX_CLIENTS);
        goto out;
    }
    rc = FEDC_EXIT_FAIL;
    roster_paths = calloc((size_t)n + 1, sizeof *roster_paths);
    written = calloc((size_t)n + 2, sizeof *written);
    if (!roster_paths || !written) {
        cli_error(CMD, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        char rf[FEDC_KEY_NAME_MAX + 8];
        snprintf(rf, sizeof rf, "%s.key", roster[i]);
        if (kit_join(p, sizeof p, allow, rf) || !(roster_paths[i] = strdup(p)))
            goto out;
    }
    /* The new kit, beside the others under a name no client can have (a leading '.'). */
    if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp-XXXXXX", out, name) >= (int)sizeof tmp - 1024) {
        tmp[0] = 0;
        goto out;
    }
    if (!mkdtemp(tmp)) {
        cli_error(CMD, "cannot create a directory in %s: %s", out, strerror(errno));
        tmp[0] = 0;
        goto out;
    }
    char own[PATH_MAX];
    if (kit_build_client_kit(tmp, name, coord_pub, roster_paths, n, m.endpoint, label, drop) ||
        kit_join(own, sizeof own, tmp, file))
        goto out;
    /* The rosters: the coordinator's allow-list, then each client kit still here. Every file
     * written is new (checked first), so that a failure can take them all back. */
    const char *missing[MAX_CLIENTS];
    int n_missing = 0;
    for (int i = 0; i <= n; i++) {
        char dst[PATH_MAX], peers[PATH_MAX], ckit[PATH_MAX];
        if (i == n) {
            snprintf(dst, sizeof dst, "%s", allow_new);
        } else {
            if (kit_join(ckit, sizeof ckit, out, roster[i]) ||
                kit_join(peers, sizeof peers, ckit, "peers") ||
                kit_join(dst, sizeof dst, peers, file))
                goto out;
            if (stat(peers, &st) != 0 || !S_ISDIR(st.st_mode)) {
                missing[n_missing++] = roster[i]; /* sent away, or never here */
                continue;
            }
        }
        if (lstat(dst, &st) == 0) {
            cli_error(CMD, "--add: %s exists already; refusing to replace a key", dst);
            goto out;
        }
        if (kit_copy_public(own, dst) || !(written[n_written] = strdup(dst))) {
            if (!written[n_written])
                unlink(dst);
            goto out;
        }
        n_written++;
    }
    if (rename(tmp, kit) != 0) {
        cli_error(CMD, "cannot rename %s to %s: %s", tmp, kit, strerror(errno));
        goto out;
    }
    tmp[0] = 0;
    n_written = 0; /* done: they stay */
    char ini[PATH_MAX];
    int raised =
        kit_join(ini, sizeof ini, coord, COORD ".ini") ? -1 : kit_raise_min_clients(ini, n, n + 1);
    printf("wrote %s/ (its kit: send it to %s; start it with ./start.sh /path/to/its-data.csv)\n",
           kit, name);
    printf("and %s's public key into the roster; send each file to its participant, who copies "
           "it in and restarts (the rosters are read at start):\n",
           name);
    printf("  %s  to the coordinator (allow/)\n", allow_new);
    for (int i = 0; i < n; i++) {
        int gone = 0;
        for (int k = 0; k < n_missing; k++)
            gone |= strcmp(missing[k], roster[i]) == 0;
        if (!gone)
            printf("  %s/%s/peers/%s  to %s (peers/)\n", out, roster[i], file, roster[i]);
    }
    for (int k = 0; k < n_missing; k++)
        printf("  %s has no kit in %s/ (sent away?): send it %s as peers/%s yourself\n", missing[k],
               out, allow_new, file);
    if (raised == 1)
        printf("%s: min-clients %d -> %d (change it on the coordinator's machine too)\n", ini, n,
               n + 1);
    else if (raised == 0)
        printf("%s: min-clients was changed by hand, left as it is (%d clients now)\n", ini, n + 1);
    rc = raised < 0 ? FEDC_EXIT_FAIL : FEDC_EXIT_OK;
    if (raised < 0)
        cli_error(CMD, "the kit and the rosters are written; only min-clients in %s is not", ini);
out:
    for (int i = 0; i < n_written; i++)
        if (unlink(written[i]) != 0)
            cli_error(CMD, "could not take back %s: remove it by hand", written[i]);
    if (tmp[0])
        kit_rm_tree(tmp);
    for (int i = 0; written && i < n + 2; i++)
        free(written[i]);
    free(written);
    for (int i = 0; roster_paths && i < n; i++)
        free(roster_paths[i]);
    free(roster_paths);
    cli_free_list(roster);
    return rc;
}

/* ---- the command ---------------------------------------------------------------------------- */

/* "--clients", or "--clients (environment FEDC_CLIENTS)" / "(FILE:LINE)" when the value came from
 * elsewhere: a message about it says where to look (FEDC_CLIENTS is also fedc split's count). */
static const char *flag_of(char *out, size_t cap, const fedc_opts *op, fedc_opt_id id) {
    char origin[1200];
    snprintf(out, cap, "--%s%s", fedc_opt_table[id].name,
             fedc_opt_origin(origin, sizeof origin, op, id));
    return out;
}

int cmd_provision(int argc, char **argv) {
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_PROVISION, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
    const char *coordinator = op.v[FEDC_O_COORD_ADDR].text;
    const char *clients = op.v[FEDC_O_CLIENT_NAMES].text, *add_name = op.v[FEDC_O_ADD].text;
    const char *out = op.v[FEDC_O_OUT].text;
    const char *label = op.v[FEDC_O_LABEL].text, *drop = op.v[FEDC_O_DROP].text;
    char flag[1300];
    if (!out) {
        cli_error(CMD, "--out is required (see fedc provision --help)");
        return FEDC_EXIT_USAGE;
    }
    /* "kits/" and "kits" are one directory; the temporary one goes beside it. */
    char dir[PATH_MAX];
    size_t ol = strlen(out);
    while (ol > 1 && out[ol - 1] == '/')
        ol--;
    if (ol == 0 || ol >= sizeof dir - 1024) {
        cli_error(CMD, "%s: expected a directory path, got '%s'",
                  flag_of(flag, sizeof flag, &op, FEDC_O_OUT), out);
        return FEDC_EXIT_USAGE;
    }
    memcpy(dir, out, ol);
    dir[ol] = 0;
    for (int k = 0; k < 2; k++) {
        fedc_opt_id id = k ? FEDC_O_DROP : FEDC_O_LABEL;
        const char *v = op.v[id].text;
        if (v && !ini_value_ok(v)) {
            cli_error(CMD,
                      "%s: expected one line without ';', '#' or spaces at its ends (it goes "
                      "into client.ini), got '%s'",
                      flag_of(flag, sizeof flag, &op, id), v);
            return FEDC_EXIT_USAGE;
        }
    }
    if (add_name) {
        if (coordinator || clients) {
            cli_error(CMD,
                      "--add takes no %s: the federation in %s is described by %s/" MANIFEST
                      " and its roster",
                      flag_of(flag, sizeof flag, &op,
                              coordinator ? FEDC_O_COORD_ADDR : FEDC_O_CLIENT_NAMES),
                      dir, dir);
            return FEDC_EXIT_USAGE;
        }
        if (!client_name_ok(flag_of(flag, sizeof flag, &op, FEDC_O_ADD), add_name))
            return FEDC_EXIT_USAGE;
        return provision_add(dir, add_name, label, drop);
    }
    if (!coordinator || !clients) {
        cli_error(CMD, "%s is required (see fedc provision --help)",
                  !coordinator ? "--coordinator" : "--clients");
        return FEDC_EXIT_USAGE;
    }
    int port;
    if (parse_endpoint(coordinator, &port)) {
        cli_error(CMD,
                  "%s: expected HOST:PORT (a host name, an IPv4 address or [IPv6], and a port in "
                  "1..65535), got '%s'",
                  flag_of(flag, sizeof flag, &op, FEDC_O_COORD_ADDR), coordinator);
        return FEDC_EXIT_USAGE;
    }
    char **names = NULL;
    int n = 0;
    flag_of(flag, sizeof flag, &op, FEDC_O_CLIENT_NAMES);
    if (cli_str_list(CMD, flag, clients, &names, &n))
        return FEDC_EXIT_USAGE;
    int rc = FEDC_EXIT_USAGE;
    if (n > MAX_CLIENTS) {
        cli_error(CMD, "%s: %d names, at most %d", flag, n, MAX_CLIENTS);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (!client_name_ok(flag, names[i]))
            goto out;
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) {
                cli_error(CMD, "%s: '%s' is given twice", flag, names[i]);
                goto out;
            }
    }
    rc = provision_new(dir, coordinator, port, names, n, label, drop);
out:
    cli_free_list(names);
    return rc;
}
