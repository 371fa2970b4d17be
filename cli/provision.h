/* fedc provision's private interface between the command (cmd_provision.c: options, the first
 * provisioning and --add) and the writing of one participant's kit (provision_kit.c: keys,
 * rosters, config files, start.sh, README texts and the file helpers they use).
 *
 * Every function here prints its own error as "fedc provision: ..." (cli_error) before it
 * returns -1; none is meant for any other command. */
#ifndef FEDC_CLI_PROVISION_H
#define FEDC_CLI_PROVISION_H

#include <stddef.h>
#include <sys/types.h>

#define CMD "provision"
#define COORD "coordinator"
#define MANIFEST "provision.ini"

/* "%s/%s" into out; -1 (said) when it does not fit. */
int kit_join(char *out, size_t cap, const char *a, const char *b);
/* mkdir with mode; -1 (said) on failure. */
int kit_make_dir(const char *path, mode_t mode);
/* Copies the public key file src to dst, refusing a secret key file as src. */
int kit_copy_public(const char *src, const char *dst);
/* A fresh identity written into dir as NAME.key and NAME.key_secret (never replacing a file). */
int kit_make_identity(const char *dir, const char *name);
/* Removes a directory this command created (a temporary kit), with what it holds. */
void kit_rm_tree(const char *dir);

/* The coordinator's coordinator.ini, start.sh and README in kit. */
int kit_write_coordinator_files(const char *kit, const char *endpoint, int port, int n_clients);
/* A client's client.ini, start.sh and README in kit. */
int kit_write_client_files(const char *kit, const char *name, const char *endpoint,
                           const char *label, const char *drop);
/* One client's whole kit in kit (an existing, empty directory). */
int kit_build_client_kit(const char *kit, const char *name, const char *coord_pub,
                         char *const *roster, int n_roster, const char *endpoint, const char *label,
                         const char *drop);
/* DIR/provision.ini, the record fedc provision --add reads. */
int kit_write_manifest(const char *dir, const char *endpoint, const char *label, const char *drop);
/* "min-clients = from" -> "= to" in the coordinator's config: 1 replaced, 0 no such line, -1. */
int kit_raise_min_clients(const char *ini, int from, int to);

#endif
