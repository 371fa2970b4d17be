/* Identity key files: generation, the file pair and its modes, loading with every refusal, key
 * directories (allow-lists and rosters), and that the CURVE keys derived from the signing keys
 * agree on a shared secret (X25519) the way CurveZMQ will use them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <zmq.h>

#include "fedc/keys.h"
#include "proc.h"

static char *g_dir;

static int setup(void **state) {
    (void)state;
    g_dir = proc_mkdtemp("fedc-test-keys");
    return g_dir ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    proc_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static char *path_of(const char *name) {
    char *p = proc_path(g_dir, name);
    assert_non_null(p);
    return p;
}

static void test_generate_write_load(void **state) {
    (void)state;
    fedc_identity a, pub, sec;
    fedc_diag d;
    assert_int_equal(fedc_key_generate(&a, "bank-a", &d), FEDC_OK);
    assert_int_equal(fedc_key_write(&a, g_dir, 0, &d), FEDC_OK);
    char *pp = path_of("bank-a.key"), *sp = path_of("bank-a.key_secret");
    struct stat st;
    assert_int_equal(stat(sp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(pp, &st), 0);
    assert_true((st.st_mode & 0600) == 0600);
    /* The public file holds no secret. */
    char *text = proc_read_file(pp, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "secret-key"));
    free(text);

    assert_int_equal(fedc_key_load(&pub, pp, &d), FEDC_OK);
    assert_string_equal(pub.name, "bank-a");
    assert_false(pub.has_secret);
    assert_memory_equal(pub.sign_pk, a.sign_pk, 32);
    assert_memory_equal(pub.curve_pk, a.curve_pk, 32);
    assert_int_equal(fedc_key_load_secret(&sec, sp, &d), FEDC_OK);
    assert_true(sec.has_secret);
    assert_memory_equal(sec.sign_sk, a.sign_sk, 64);
    assert_memory_equal(sec.curve_sk, a.curve_sk, 32);
    assert_int_equal(fedc_key_load_secret(&pub, pp, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "public key only"));

    /* The derived CURVE keys work as X25519 keys: both sides compute the same secret. */
    fedc_identity b;
    assert_int_equal(fedc_key_generate(&b, "coordinator", &d), FEDC_OK);
    uint8_t s1[32], s2[32];
    assert_int_equal(crypto_scalarmult(s1, a.curve_sk, b.curve_pk), 0);
    assert_int_equal(crypto_scalarmult(s2, b.curve_sk, a.curve_pk), 0);
    assert_memory_equal(s1, s2, 32);
    /* Two identities differ. */
    assert_memory_not_equal(a.sign_pk, b.sign_pk, 32);

    /* No silent replacement of an identity. */
    assert_int_equal(fedc_key_write(&b, g_dir, 0, &d), FEDC_OK);
    snprintf(b.name, sizeof b.name, "bank-a");
    assert_int_equal(fedc_key_write(&b, g_dir, 0, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "already exists"));
    fedc_key_wipe(&a);
    fedc_key_wipe(&b);
    fedc_key_wipe(&sec);
    free(pp);
    free(sp);
}

static void test_refusals(void **state) {
    (void)state;
    fedc_identity a, x;
    fedc_diag d;
    assert_int_equal(fedc_key_generate(&a, "bank-b", &d), FEDC_OK);
    assert_int_equal(fedc_key_write(&a, g_dir, 1, &d), FEDC_OK);
    char *sp = path_of("bank-b.key_secret"), *pp = path_of("bank-b.key");

    /* A secret file others can read is refused, naming the fix. */
    assert_int_equal(chmod(sp, 0644), 0);
    assert_int_equal(fedc_key_load_secret(&x, sp, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "chmod 600"));
    assert_int_equal(chmod(sp, 0640), 0);
    assert_int_equal(fedc_key_load_secret(&x, sp, &d), FEDC_EINVAL);
    assert_int_equal(chmod(sp, 0600), 0);
    assert_int_equal(fedc_key_load_secret(&x, sp, &d), FEDC_OK);

    /* A public key swapped for another identity's: the secret no longer belongs to it. */
    fedc_identity other;
    assert_int_equal(fedc_key_generate(&other, "other", &d), FEDC_OK);
    char z[FEDC_Z85_KEY_LEN + 1], zc[FEDC_Z85_KEY_LEN + 1], ssk[81];
    fedc_key_z85(z, other.sign_pk);
    fedc_key_z85(zc, other.curve_pk);
    assert_non_null(zmq_z85_encode(ssk, a.sign_sk, 64));
    char text[1024];
    snprintf(text, sizeof text,
             "name = \"bank-b\"\nsign-public-key = \"%s\"\ncurve-public-key = \"%s\"\n"
             "sign-secret-key = \"%s\"\n",
             z, zc, ssk);
    char *bad = path_of("swapped.key_secret");
    assert_int_equal(proc_write_file(bad, text), 0);
    assert_int_equal(chmod(bad, 0600), 0);
    assert_int_equal(fedc_key_load(&x, bad, &d), FEDC_EMISMATCH);
    assert_non_null(strstr(d.msg, "does not belong"));

    /* A CURVE key that does not derive from the signing key. */
    fedc_key_z85(z, a.sign_pk);
    snprintf(text, sizeof text,
             "name = \"bank-b\"\nsign-public-key = \"%s\"\ncurve-public-key = \"%s\"\n", z, zc);
    assert_int_equal(proc_write_file(bad, text), 0);
    assert_int_equal(fedc_key_load(&x, bad, &d), FEDC_EMISMATCH);
    assert_non_null(strstr(d.msg, "does not derive"));

    /* Malformed files, each named with its line. */
    const char *cases[][2] = {
        {"name = bank-b\n", ":1: expected key = \"value\""},
        {"name = \"bank-b\"\ncolour = \"red\"\n", ":2: unknown key 'colour'"},
        {"name = \"bank b\"\n", ":1: bad value of name"},
        {"# comment\n\nname = \"bank-b\"\nsign-public-key = \"short\"\n",
         ":4: bad value of sign-public-key"},
        {"name = \"bank-b\"\n", "missing sign-public-key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(proc_write_file(bad, cases[i][0]), 0);
        assert_int_equal(fedc_key_load(&x, bad, &d), FEDC_EPARSE);
        if (!strstr(d.msg, cases[i][1]))
            fail_msg("case %zu: '%s' does not contain '%s'", i, d.msg, cases[i][1]);
    }
    char *missing = path_of("nope.key");
    assert_int_equal(fedc_key_load(&x, missing, &d), FEDC_EIO);
    assert_non_null(strstr(d.msg, "nope.key"));

    /* Bad names. */
    assert_int_equal(fedc_key_generate(&x, "../evil", &d), FEDC_EINVAL);
    assert_int_equal(fedc_key_generate(&x, "", &d), FEDC_EINVAL);
    assert_int_equal(fedc_key_generate(&x, "-x", &d), FEDC_EINVAL);
    assert_true(fedc_key_name_ok("bank_A.1-b"));
    fedc_key_wipe(&a);
    fedc_key_wipe(&other);
    free(sp);
    free(pp);
    free(bad);
    free(missing);
}

/* Where only a public key belongs (the coordinator's key a client pins, allow-lists, rosters), a
 * secret key file is refused with its path and line, and nothing of it is kept. */
static void test_public_only(void **state) {
    (void)state;
    fedc_identity a, x;
    fedc_diag d;
    assert_int_equal(fedc_key_generate(&a, "coord-p", &d), FEDC_OK);
    assert_int_equal(fedc_key_write(&a, g_dir, 1, &d), FEDC_OK);
    char *sp = path_of("coord-p.key_secret"), *pp = path_of("coord-p.key");
    assert_int_equal(fedc_key_load_public(&x, pp, &d), FEDC_OK);
    assert_false(x.has_secret);
    assert_memory_equal(x.curve_pk, a.curve_pk, 32);

    memset(&x, 0xaa, sizeof x);
    assert_int_equal(fedc_key_load_public(&x, sp, &d), FEDC_EINVAL);
    /* The secret is on line 5 (after the comment, the name and the two public keys). */
    char want[4200];
    snprintf(want, sizeof want, "%s:5: holds a secret key", sp);
    if (!strstr(d.msg, want) || !strstr(d.msg, "NAME.key, not NAME.key_secret"))
        fail_msg("unexpected message: %s", d.msg);
    assert_false(x.has_secret);
    uint8_t zero[64] = {0};
    assert_memory_equal(x.sign_sk, zero, 64);

    /* A secret file renamed into a roster is refused too. */
    char *dir = path_of("roster-p");
    assert_int_equal(mkdir(dir, 0700), 0);
    char *dst = proc_path(dir, "coord-p.key");
    char *text = proc_read_file(sp, NULL);
    assert_non_null(text);
    assert_int_equal(proc_write_file(dst, text), 0);
    assert_int_equal(chmod(dst, 0600), 0);
    fedc_identity *got = NULL;
    int n = 0;
    assert_int_equal(fedc_key_load_dir(&got, &n, dir, &d), FEDC_EINVAL);
    assert_null(got);
    assert_non_null(strstr(d.msg, "holds a secret key"));
    sodium_memzero(text, strlen(text));
    free(text);
    free(dst);
    free(dir);
    fedc_key_wipe(&a);
    free(sp);
    free(pp);
}

/* A secret key file owned by another user is refused, naming both uids, whatever its mode: that
 * user can replace our identity. Needs the right to chown (the tests run as root). */
static void test_secret_owner(void **state) {
    (void)state;
    fedc_identity a, x;
    fedc_diag d;
    assert_int_equal(fedc_key_generate(&a, "owned", &d), FEDC_OK);
    assert_int_equal(fedc_key_write(&a, g_dir, 1, &d), FEDC_OK);
    fedc_key_wipe(&a);
    char *sp = path_of("owned.key_secret");
    const uid_t other = geteuid() == 65534 ? 65533 : 65534;
    if (chown(sp, other, (gid_t)-1) != 0) {
        print_message("skipped: cannot chown %s to uid %u (not root?)\n", sp, (unsigned)other);
        free(sp);
        skip();
    }
    struct stat st;
    assert_int_equal(stat(sp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fedc_key_load_secret(&x, sp, &d), FEDC_EINVAL);
    char want[256];
    snprintf(want, sizeof want, "owned by uid %u, expected our effective uid %u", (unsigned)other,
             (unsigned)geteuid());
    if (!strstr(d.msg, want) || !strstr(d.msg, sp))
        fail_msg("expected '%s' and the path in: %s", want, d.msg);
    assert_false(x.has_secret);
    /* Back to us: accepted again. */
    assert_int_equal(chown(sp, geteuid(), (gid_t)-1), 0);
    assert_int_equal(fedc_key_load_secret(&x, sp, &d), FEDC_OK);
    fedc_key_wipe(&x);
    free(sp);
}

static void test_directory(void **state) {
    (void)state;
    char *dir = path_of("allow");
    assert_int_equal(mkdir(dir, 0700), 0);
    fedc_identity ids[3], *got = NULL;
    const char *names[3] = {"bank-c", "bank-a", "bank-b"};
    fedc_diag d;
    int n = 0;
    assert_int_equal(fedc_key_load_dir(&got, &n, dir, &d), FEDC_EEMPTY);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fedc_key_generate(&ids[i], names[i], &d), FEDC_OK);
        assert_int_equal(fedc_key_write(&ids[i], dir, 0, &d), FEDC_OK);
    }
    assert_int_equal(fedc_key_load_dir(&got, &n, dir, &d), FEDC_OK);
    assert_int_equal(n, 3);
    assert_string_equal(got[0].name, "bank-a"); /* sorted */
    assert_string_equal(got[2].name, "bank-c");
    assert_memory_equal(got[0].curve_pk, ids[1].curve_pk, 32);
    for (int i = 0; i < 3; i++)
        assert_false(got[i].has_secret); /* a roster never keeps secrets */
    free(got);
    /* A file whose name does not match the identity inside. */
    char *src = proc_path(dir, "bank-a.key"), *dst = proc_path(dir, "bank-z.key");
    char *text = proc_read_file(src, NULL);
    assert_int_equal(proc_write_file(dst, text), 0);
    assert_int_equal(fedc_key_load_dir(&got, &n, dir, &d), FEDC_EINVAL);
    assert_non_null(strstr(d.msg, "must be named NAME.key"));
    free(text);
    free(src);
    free(dst);
    for (int i = 0; i < 3; i++)
        fedc_key_wipe(&ids[i]);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_write_load), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_directory),           cmocka_unit_test(test_public_only),
        cmocka_unit_test(test_secret_owner),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
