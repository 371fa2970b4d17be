/* fedc keygen: one long-term identity per participant (docs/security.md, "Transport and
 * admission"). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fedc/keys.h"

#define CMD "keygen"

static const fedc_prog_help g_help = {
    "usage: fedc keygen --name NAME --out DIR [--force]",
    "Creates a participant's identity: an Ed25519 signing key pair with the CurveZMQ\n"
    "(X25519) key derived from it, written as DIR/NAME.key (public: put it in the\n"
    "coordinator's allow-list directory and the clients' roster) and DIR/NAME.key_secret\n"
    "(secret, mode 0600: it never leaves this machine). Keys come from libsodium's\n"
    "secret randomness. DIR is created with mode 0700 if missing.",
    NULL};

int cmd_keygen(int argc, char **argv) {
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_KEYGEN, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
    const char *name = op.v[FEDC_O_NAME].text, *out = op.v[FEDC_O_OUT].text;
    int force = (int)op.v[FEDC_O_FORCE].i;
    if (!name || !out) {
        cli_error(CMD, "%s is required (see fedc keygen --help)", !name ? "--name" : "--out");
        return FEDC_EXIT_USAGE;
    }
    if (!fedc_key_name_ok(name)) {
        cli_error(CMD,
                  "--name: expected 1..%d characters of A-Z a-z 0-9 . _ -, not starting with '.' "
                  "or '-', got '%s'",
                  FEDC_KEY_NAME_MAX, name);
        return FEDC_EXIT_USAGE;
    }
    if (mkdir(out, 0700) != 0 && errno != EEXIST) {
        cli_error(CMD, "--out: cannot create %s: %s", out, strerror(errno));
        return FEDC_EXIT_FAIL;
    }
    fedc_identity id;
    fedc_diag d;
    if (fedc_key_generate(&id, name, &d)) {
        cli_error(CMD, "%s", d.msg);
        return FEDC_EXIT_FAIL;
    }
    fedc_err rc = fedc_key_write(&id, out, force, &d);
    char z[FEDC_Z85_KEY_LEN + 1];
    fedc_key_z85(z, id.curve_pk);
    fedc_key_wipe(&id);
    if (rc) {
        cli_error(CMD, "%s", d.msg);
        return rc == FEDC_EINVAL ? FEDC_EXIT_USAGE : FEDC_EXIT_FAIL;
    }
    printf("wrote %s/%s.key (public) and %s/%s.key_secret (secret, mode 0600)\n", out, name, out,
           name);
    printf("curve public key: %s\n", z);
    return FEDC_EXIT_OK;
}
