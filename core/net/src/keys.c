/* Identity key files (contract in keys.h). */
#define _POSIX_C_SOURCE 200809L
#include "fedc/keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define KEY_FILE_MAX 4096

int fedc_key_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n < 1 || n > FEDC_KEY_NAME_MAX || name[0] == '.' || name[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void fedc_key_z85(char *out, const uint8_t key[32]) {
    if (!zmq_z85_encode(out, key, 32))
        out[0] = 0;
}

void fedc_key_wipe(fedc_identity *id) {
    sodium_memzero(id->sign_sk, sizeof id->sign_sk);
    sodium_memzero(id->curve_sk, sizeof id->curve_sk);
    id->has_secret = 0;
}

/* Derives the CURVE keys from the Ed25519 ones (docs/security.md). */
static int derive(fedc_identity *id) {
    if (crypto_sign_ed25519_pk_to_curve25519(id->curve_pk, id->sign_pk) != 0)
        return -1;
    if (id->has_secret && crypto_sign_ed25519_sk_to_curve25519(id->curve_sk, id->sign_sk) != 0)
        return -1;
    return 0;
}

fedc_err fedc_key_generate(fedc_identity *id, const char *name, fedc_diag *d) {
    memset(id, 0, sizeof *id);
    if (!fedc_key_name_ok(name)) {
        fedc_diag_set(d,
                      "name '%s': expected 1..%d characters of A-Z a-z 0-9 . _ -, not starting "
                      "with '.' or '-'",
                      name, FEDC_KEY_NAME_MAX);
        return FEDC_EINVAL;
    }
    if (sodium_init() < 0) {
        fedc_diag_set(d, "libsodium cannot start (no source of secret randomness?)");
        return FEDC_EIO;
    }
    snprintf(id->name, sizeof id->name, "%s", name);
    crypto_sign_keypair(id->sign_pk, id->sign_sk);
    id->has_secret = 1;
    if (derive(id)) {
        fedc_key_wipe(id);
        fedc_diag_set(d, "cannot derive the CURVE key from the signing key");
        return FEDC_EIO;
    }
    return FEDC_OK;
}

/* Writes text to path through a temporary file in the same directory: mode 0600 for secrets,
 * 0644 (less the umask) otherwise; fsync, rename, directory fsync. */
static fedc_err write_file(const char *path, const char *dir, const char *text, int secret,
                           fedc_diag *d) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp); /* created 0600 */
    if (fd < 0) {
        fedc_diag_set(d, "%s: cannot create a file beside it: %s", path, strerror(errno));
        return FEDC_EIO;
    }
    size_t len = strlen(text), done = 0;
    int bad = 0;
    while (done < len && !bad) {
        ssize_t k = write(fd, text + done, len - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            bad = 1;
        else
            done += (size_t)k;
    }
    if (!secret) {
        mode_t um = umask(0);
        umask(um);
        bad |= fchmod(fd, 0644 & ~um) != 0;
    }
    bad |= fsync(fd) != 0;
    bad |= close(fd) != 0;
    if (bad || rename(tmp, path) != 0) {
        fedc_diag_set(d, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        return FEDC_EIO;
    }
    int dfd = open(dir, O_RDONLY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return FEDC_OK;
}

fedc_err fedc_key_write(const fedc_identity *id, const char *dir, int force, fedc_diag *d) {
    if (!id->has_secret || !fedc_key_name_ok(id->name)) {
        fedc_diag_set(d, "an identity with a valid name and its secret key is needed");
        return FEDC_EINVAL;
    }
    char pub[4096], sec[4096];
    if (snprintf(pub, sizeof pub, "%s/%s.key", dir, id->name) >= (int)sizeof pub ||
        snprintf(sec, sizeof sec, "%s/%s.key_secret", dir, id->name) >= (int)sizeof sec) {
        fedc_diag_set(d, "%s: path too long", dir);
        return FEDC_EINVAL;
    }
    if (!force) {
        const char *exists = access(pub, F_OK) == 0 ? pub : access(sec, F_OK) == 0 ? sec : NULL;
        if (exists) {
            fedc_diag_set(d, "%s already exists; refusing to replace an identity (use --force)",
                          exists);
            return FEDC_EINVAL;
        }
    }
    char spk[FEDC_Z85_KEY_LEN + 1], cpk[FEDC_Z85_KEY_LEN + 1], ssk[2 * FEDC_Z85_KEY_LEN + 1];
    fedc_key_z85(spk, id->sign_pk);
    fedc_key_z85(cpk, id->curve_pk);
    if (!zmq_z85_encode(ssk, id->sign_sk, 64)) {
        fedc_diag_set(d, "cannot encode the key");
        return FEDC_EIO;
    }
    char text[1024];
    snprintf(text, sizeof text,
             "# fedc public key of '%s' (share it: allow-lists and rosters hold these files)\n"
             "name = \"%s\"\nsign-public-key = \"%s\"\ncurve-public-key = \"%s\"\n",
             id->name, id->name, spk, cpk);
    fedc_err rc = write_file(pub, dir, text, 0, d);
    if (rc)
        return rc;
    snprintf(text, sizeof text,
             "# fedc SECRET key of '%s': never share or copy it; mode 0600\n"
             "name = \"%s\"\nsign-public-key = \"%s\"\ncurve-public-key = \"%s\"\n"
             "sign-secret-key = \"%s\"\n",
             id->name, id->name, spk, cpk, ssk);
    rc = write_file(sec, dir, text, 1, d);
    sodium_memzero(text, sizeof text);
    sodium_memzero(ssk, sizeof ssk);
    return rc;
}

/* Reads a small file; refuses anything larger than KEY_FILE_MAX. */
static char *slurp(const char *path, struct stat *st, fedc_diag *d) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fedc_diag_set(d, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > KEY_FILE_MAX) {
        fedc_diag_set(d, "%s: not a key file (a regular file of at most %d bytes)", path,
                      KEY_FILE_MAX);
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st->st_size + 1);
    if (!buf) {
        close(fd);
        fedc_diag_set(d, "out of memory");
        return NULL;
    }
    ssize_t n = read(fd, buf, (size_t)st->st_size);
    close(fd);
    if (n != st->st_size) {
        free(buf);
        fedc_diag_set(d, "%s: short read", path);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* Decodes a quoted Z85 value of exactly `bytes` bytes. */
static int z85_value(uint8_t *out, size_t bytes, const char *v) {
    size_t want = bytes / 4 * 5;
    if (strlen(v) != want)
        return -1;
    return zmq_z85_decode(out, v) ? 0 : -1;
}

/* What a caller accepts: either kind of file, or a public one only. */
typedef enum key_want { WANT_ANY, WANT_PUBLIC } key_want;

static fedc_err load(fedc_identity *id, const char *path, key_want want, fedc_diag *d) {
    memset(id, 0, sizeof *id);
    struct stat st;
    char *buf = slurp(path, &st, d);
    if (!buf)
        return FEDC_EIO;
    fedc_err rc = FEDC_EPARSE;
    int have_name = 0, have_spk = 0, have_cpk = 0, have_ssk = 0, line_no = 0;
    uint8_t cpk_file[32];
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        line_no++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r')
            line[--ll] = 0;
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        char key[32], val[256];
        char *eq = strchr(line, '=');
        char *q1 = eq ? strchr(eq, '"') : NULL;
        char *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
        if (!eq || !q1 || !q2 || q2[1] != 0 || (size_t)(q2 - q1 - 1) >= sizeof val) {
            fedc_diag_set(d, "%s:%d: expected key = \"value\"", path, line_no);
            goto out;
        }
        size_t kl = (size_t)(eq - line);
        while (kl && (line[kl - 1] == ' ' || line[kl - 1] == '\t'))
            kl--;
        if (kl == 0 || kl >= sizeof key) {
            fedc_diag_set(d, "%s:%d: expected key = \"value\"", path, line_no);
            goto out;
        }
        memcpy(key, line, kl);
        key[kl] = 0;
        memcpy(val, q1 + 1, (size_t)(q2 - q1 - 1));
        val[q2 - q1 - 1] = 0;
        int bad = 0;
        if (strcmp(key, "name") == 0) {
            bad = !fedc_key_name_ok(val);
            snprintf(id->name, sizeof id->name, "%s", val);
            have_name = !bad;
        } else if (strcmp(key, "sign-public-key") == 0) {
            bad = z85_value(id->sign_pk, 32, val) != 0;
            have_spk = !bad;
        } else if (strcmp(key, "curve-public-key") == 0) {
            bad = z85_value(cpk_file, 32, val) != 0;
            have_cpk = !bad;
        } else if (strcmp(key, "sign-secret-key") == 0) {
            if (want == WANT_PUBLIC) {
                /* Refused before the value is even decoded: it has no business here. */
                sodium_memzero(val, sizeof val);
                fedc_diag_set(d,
                              "%s:%d: holds a secret key (sign-secret-key), expected a public key "
                              "file: give NAME.key, not NAME.key_secret (a secret key never "
                              "leaves its owner's machine)",
                              path, line_no);
                rc = FEDC_EINVAL;
                goto out;
            }
            bad = z85_value(id->sign_sk, 64, val) != 0;
            have_ssk = !bad;
        } else {
            fedc_diag_set(d, "%s:%d: unknown key '%s'", path, line_no, key);
            goto out;
        }
        sodium_memzero(val, sizeof val);
        if (bad) {
            fedc_diag_set(d, "%s:%d: bad value of %s", path, line_no, key);
            goto out;
        }
    }
    if (!have_name || !have_spk || !have_cpk) {
        fedc_diag_set(d, "%s: missing %s", path,
                      !have_name  ? "name"
                      : !have_spk ? "sign-public-key"
                                  : "curve-public-key");
        goto out;
    }
    if (have_ssk) {
        uid_t me = geteuid();
        if (st.st_uid != me) {
            /* Someone else's secret: whoever owns the file can replace the key under us. */
            fedc_diag_set(d,
                          "%s: secret key file is owned by uid %u, expected our effective uid %u; "
                          "run: chown %u %s",
                          path, (unsigned)st.st_uid, (unsigned)me, (unsigned)me, path);
            rc = FEDC_EINVAL;
            goto out;
        }
        if (st.st_mode & 077) {
            fedc_diag_set(d,
                          "%s: secret key file is readable by group or others (mode %03o); "
                          "run: chmod 600 %s",
                          path, (unsigned)(st.st_mode & 0777), path);
            rc = FEDC_EINVAL;
            goto out;
        }
        id->has_secret = 1;
        uint8_t pk[32];
        crypto_sign_ed25519_sk_to_pk(pk, id->sign_sk);
        if (memcmp(pk, id->sign_pk, 32) != 0) {
            fedc_diag_set(d, "%s: the secret key does not belong to the public key", path);
            rc = FEDC_EMISMATCH;
            goto out;
        }
    }
    if (derive(id) || memcmp(cpk_file, id->curve_pk, 32) != 0) {
        fedc_diag_set(d, "%s: the CURVE key does not derive from the signing key", path);
        rc = FEDC_EMISMATCH;
        goto out;
    }
    rc = FEDC_OK;
out:
    sodium_memzero(buf, (size_t)st.st_size);
    free(buf);
    if (rc)
        fedc_key_wipe(id);
    return rc;
}

fedc_err fedc_key_load(fedc_identity *id, const char *path, fedc_diag *d) {
    return load(id, path, WANT_ANY, d);
}

fedc_err fedc_key_load_public(fedc_identity *id, const char *path, fedc_diag *d) {
    return load(id, path, WANT_PUBLIC, d);
}

fedc_err fedc_key_load_secret(fedc_identity *id, const char *path, fedc_diag *d) {
    fedc_err rc = fedc_key_load(id, path, d);
    if (rc == FEDC_OK && !id->has_secret) {
        fedc_diag_set(d, "%s: holds a public key only; the secret file is NAME.key_secret", path);
        return FEDC_EINVAL;
    }
    return rc;
}

static int cmp_id(const void *a, const void *b) {
    return strcmp(((const fedc_identity *)a)->name, ((const fedc_identity *)b)->name);
}

fedc_err fedc_key_load_dir(fedc_identity **out, int *n_out, const char *dir, fedc_diag *d) {
    *out = NULL;
    *n_out = 0;
    DIR *dh = opendir(dir);
    if (!dh) {
        fedc_diag_set(d, "%s: cannot open the key directory: %s", dir, strerror(errno));
        return FEDC_EIO;
    }
    fedc_identity *ids = NULL;
    int n = 0, cap = 0;
    fedc_err rc = FEDC_OK;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".key") != 0 || e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            fedc_identity *ni = realloc(ids, sizeof *ids * (size_t)cap);
            if (!ni) {
                rc = FEDC_ENOMEM;
                break;
            }
            ids = ni;
        }
        char path[4352];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if ((rc = load(&ids[n], path, WANT_PUBLIC, d)) != FEDC_OK)
            break;
        if (strlen(ids[n].name) != l - 4 || strncmp(ids[n].name, e->d_name, l - 4) != 0) {
            fedc_diag_set(d, "%s: holds the key of '%s'; a key file must be named NAME.key", path,
                          ids[n].name);
            rc = FEDC_EINVAL;
            break;
        }
        n++;
    }
    closedir(dh);
    if (!rc && n == 0) {
        fedc_diag_set(d, "%s: no NAME.key files in the key directory", dir);
        rc = FEDC_EEMPTY;
    }
    if (!rc) {
        qsort(ids, (size_t)n, sizeof *ids, cmp_id);
        for (int i = 0; i < n && !rc; i++) {
            for (int j = i + 1; j < n && !rc; j++) {
                if (strcmp(ids[i].name, ids[j].name) == 0 ||
                    memcmp(ids[i].sign_pk, ids[j].sign_pk, 32) == 0) {
                    fedc_diag_set(d, "%s: '%s' and '%s' share a name or a key", dir, ids[i].name,
                                  ids[j].name);
                    rc = FEDC_EINVAL;
                }
            }
        }
    }
    if (rc) {
        free(ids);
        return rc;
    }
    *out = ids;
    *n_out = n;
    return FEDC_OK;
}
