/* Long-term identities of the participants (docs/security.md, "Transport and admission").
 *
 * Each participant has one Ed25519 signing key pair (libsodium); its CURVE (X25519) key pair for
 * CurveZMQ is derived from it with crypto_sign_ed25519_{pk,sk}_to_curve25519, so one file pair is
 * both the transport identity and the key that signs per-round secure-aggregation keys.
 *
 * Files, in the spirit of czmq's zcert, are text with one `key = "value"` per line, keys as Z85
 * (ZeroMQ's base-85, 5 characters per 4 bytes):
 *   NAME.key          name, sign-public-key (32 bytes), curve-public-key (32 bytes)
 *   NAME.key_secret   the same plus sign-secret-key (64 bytes; the Ed25519 seed and public key),
 *                     written with mode 0600
 * A loaded secret file is checked for consistency (the public keys are re-derived from the secret
 * one) and refused when it is not owned by the effective user or when its group or others may read
 * it. A directory of NAME.key files is an
 * allow-list (coordinator) and a roster (clients). */
#ifndef FEDC_KEYS_H
#define FEDC_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"

#define FEDC_KEY_NAME_MAX 64
#define FEDC_Z85_KEY_LEN 40 /* Z85 text of a 32-byte key */

typedef struct fedc_identity {
    char name[FEDC_KEY_NAME_MAX + 1];
    uint8_t sign_pk[32];  /* Ed25519 public key */
    uint8_t curve_pk[32]; /* X25519 public key derived from sign_pk */
    int has_secret;
    uint8_t sign_sk[64];  /* Ed25519 secret key (seed || public key); zero without a secret */
    uint8_t curve_sk[32]; /* X25519 secret key derived from sign_sk */
} fedc_identity;

/* 1 when name is usable as a participant name and file name: 1..64 bytes of [A-Za-z0-9._-], not
 * starting with '.' or '-'. */
int fedc_key_name_ok(const char *name);

/* Creates a fresh identity from libsodium's secret randomness. FEDC_EINVAL for a bad name,
 * FEDC_EIO when libsodium cannot start. */
FEDC_MUST_CHECK fedc_err fedc_key_generate(fedc_identity *id, const char *name, fedc_diag *d);

/* Writes DIR/NAME.key and DIR/NAME.key_secret (mode 0600, created exclusively unless force),
 * each atomically. Refuses to overwrite existing files without force (FEDC_EINVAL naming them). */
FEDC_MUST_CHECK fedc_err fedc_key_write(const fedc_identity *id, const char *dir, int force,
                                        fedc_diag *d);

/* Loads a public key file (NAME.key) or a secret one (NAME.key_secret: then the secret part too).
 * Errors name the path and line: FEDC_EIO unreadable, FEDC_EPARSE malformed, FEDC_EMISMATCH keys
 * that do not belong together, FEDC_EINVAL a secret file owned by another user than the effective
 * one (the message names both uids) or readable by group or others (the message says to run
 * chmod 600). */
FEDC_MUST_CHECK fedc_err fedc_key_load(fedc_identity *id, const char *path, fedc_diag *d);

/* Same, but requires a public key file: a file holding a secret key (NAME.key_secret) is refused
 * with FEDC_EINVAL naming the path and line, before its secret is decoded. For keys that belong
 * to someone else (the coordinator's key a client pins). */
FEDC_MUST_CHECK fedc_err fedc_key_load_public(fedc_identity *id, const char *path, fedc_diag *d);

/* Same, but requires a secret file (FEDC_EINVAL when path holds only a public key). */
FEDC_MUST_CHECK fedc_err fedc_key_load_secret(fedc_identity *id, const char *path, fedc_diag *d);

/* Loads every *.key file of a directory (sorted by name; at least one) as public keys (a file
 * holding a secret key is refused, as by fedc_key_load_public). Two files with the same name or
 * the same key are refused. *out is caller-owned (free()). */
FEDC_MUST_CHECK fedc_err fedc_key_load_dir(fedc_identity **out, int *n, const char *dir,
                                           fedc_diag *d);

/* Z85 text of a 32-byte key (out: FEDC_Z85_KEY_LEN + 1 bytes). */
void fedc_key_z85(char *out, const uint8_t key[32]);

/* Zeroes the secret parts (sodium_memzero). */
void fedc_key_wipe(fedc_identity *id);

#endif
