/* The loader's encodings (fedc/encode.h through fedc_csv_load_enc) and the recipe JSON
 * (fedc/recipe.h): quoting and separators round trips, header names with blanks, missing values
 * under each policy (values and indicator columns against values computed here), the error under
 * --missing error naming file:line:column, text labels, feature hashing (SipHash-2-4 against
 * libsodium's crypto_shorthash, which is SipHash-2-4: the oracle is another implementation),
 * bucket counts, unknown categories, and the encoding JSON and its agreement check. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "fedc/csv.h"
#include "fedc/data.h"
#include "fedc/encode.h"
#include "fedc/recipe.h"

static char g_dir[] = "/tmp/fedc_test_encode.XXXXXX";

static const char *write_file(const char *name, const char *text) {
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return p;
}

static fedc_dataset *load(const char *path, const char *label, const fedc_encoding *e) {
    fedc_dataset *ds = NULL;
    fedc_diag d = {{0}};
    fedc_err rc = fedc_csv_load_enc(&ds, path, label, NULL, 0, e, &d);
    if (rc)
        print_message("load %s: %s\n", path, d.msg);
    assert_int_equal(rc, FEDC_OK);
    return ds;
}

static void load_fails(const char *path, const char *label, const fedc_encoding *e,
                       const char *want1, const char *want2) {
    fedc_dataset *ds = NULL;
    fedc_diag d = {{0}};
    assert_int_not_equal(fedc_csv_load_enc(&ds, path, label, NULL, 0, e, &d), FEDC_OK);
    assert_null(ds);
    print_message("%s\n", d.msg);
    assert_non_null(strstr(d.msg, want1));
    if (want2)
        assert_non_null(strstr(d.msg, want2));
}

static int col(const fedc_dataset *ds, const char *name) {
    for (int j = 0; j < ds->n_features; j++)
        if (strcmp(ds->feature_names[j], name) == 0)
            return j;
    return -1;
}

static float at(const fedc_dataset *ds, int i, const char *name) {
    int j = col(ds, name);
    assert_true(j >= 0);
    return ds->x[(size_t)i * (size_t)ds->n_features + (size_t)j];
}

/* The oracle of the feature hash: libsodium's SipHash-2-4 of the trimmed text, mod buckets. */
static int oracle_bucket(const uint8_t key[16], int buckets, const char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)s, n, key);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | h[i];
    return (int)(v % (uint64_t)buckets);
}

static void test_siphash_against_libsodium(void **state) {
    (void)state;
    uint8_t key[16], buf[64];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(i * 17 + 3);
    for (int i = 0; i < 64; i++)
        buf[i] = (uint8_t)(i * 31 + 7);
    for (size_t n = 0; n <= 64; n++) {
        unsigned char h[crypto_shorthash_BYTES];
        crypto_shorthash(h, buf, n, key);
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
            v = v << 8 | h[i];
        assert_true(fedc_siphash24(key, buf, n) == v);
    }
    /* The default key is the ASCII of "fedc categorical". */
    fedc_encoding e;
    fedc_encoding_init(&e);
    assert_memory_equal(e.hash_key, "fedc categorical", 16);
}

/* Separators and quoting: a table written with each separator, fields quoted where they hold
 * the separator, a quote or a line break, loads back to the numbers written and the categories'
 * buckets. */
static void test_delimiters_and_quoting(void **state) {
    (void)state;
    const char seps[] = {',', ';', '|', '\t', ':'};
    const char *cats[] = {"Shop, \"Inc\"", "a;b|c:d", "two\nlines", "  padded  ", "plain"};
    for (size_t s = 0; s < sizeof seps; s++) {
        char path[512];
        snprintf(path, sizeof path, "%s/sep%zu.csv", g_dir, s);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        char sep = seps[s];
        /* header: names with blanks around them and one holding the separator, quoted */
        fprintf(f, " x %c\"y%cz\"%cCAT%c label \n", sep, sep, sep, sep);
        float xs[5], ys[5];
        for (int i = 0; i < 5; i++) {
            xs[i] = (float)(i * 1.25 - 3.0);
            ys[i] = (float)(i * i) / 7.0f;
            fprintf(f, "%.9g%c\"%.9g\"%c", (double)xs[i], sep, (double)ys[i], sep);
            assert_int_equal(fedc_csv_write_field_sep(f, cats[i], sep), 0);
            fprintf(f, "%c%d\r\n", sep, i % 2);
        }
        assert_int_equal(fclose(f), 0);
        fedc_encoding e;
        fedc_encoding_init(&e);
        e.delimiter = sep;
        const char *cat[] = {" CAT "};
        e.categorical = cat;
        e.n_categorical = 1;
        e.hash_buckets = 8;
        fedc_dataset *ds = load(path, "label", &e);
        assert_int_equal(ds->n_rows, 5);
        assert_int_equal(ds->n_features, 2 + 8);
        char yz[8];
        snprintf(yz, sizeof yz, "y%cz", sep);
        assert_string_equal(ds->feature_names[0], "x");
        assert_string_equal(ds->feature_names[1], yz);
        assert_string_equal(ds->feature_names[2], "CAT=h0");
        assert_string_equal(ds->feature_names[9], "CAT=h7");
        for (int i = 0; i < 5; i++) {
            char t[32];
            snprintf(t, sizeof t, "%.9g", (double)xs[i]);
            assert_true(at(ds, i, "x") == strtof(t, NULL));
            snprintf(t, sizeof t, "%.9g", (double)ys[i]);
            assert_true(at(ds, i, yz) == strtof(t, NULL));
            assert_true(ds->y[i] == (float)(i % 2));
            int b = oracle_bucket(e.hash_key, 8, cats[i]), ones = 0;
            for (int k = 0; k < 8; k++) {
                char nm[16];
                snprintf(nm, sizeof nm, "CAT=h%d", k);
                float v = at(ds, i, nm);
                assert_true(v == (k == b ? 1.0f : 0.0f));
                ones += v == 1.0f;
            }
            assert_int_equal(ones, 1);
        }
        fedc_dataset_destroy(&ds);
    }
    /* A separator that could be part of a number is refused. */
    assert_false(fedc_csv_delimiter_ok('.'));
    assert_false(fedc_csv_delimiter_ok('-'));
    assert_false(fedc_csv_delimiter_ok('"'));
    assert_false(fedc_csv_delimiter_ok('e'));
    fedc_encoding e;
    fedc_encoding_init(&e);
    e.delimiter = '.';
    load_fails(write_file("dot.csv", "a.b\n1.2\n"), "b", &e, "cannot separate", NULL);
}

/* Header names and flag names with blanks around them match. */
static void test_header_blanks(void **state) {
    (void)state;
    const char *p = write_file("blank.csv", "  a ,\" b \",\t y\t\n1,2,0\n3,4,1\n");
    fedc_dataset *ds = NULL;
    fedc_diag d;
    const char *drop[] = {"  b"};
    assert_int_equal(fedc_csv_load_enc(&ds, p, " y ", drop, 1, NULL, &d), FEDC_OK);
    assert_int_equal(ds->n_features, 1);
    assert_string_equal(ds->feature_names[0], "a");
    assert_string_equal(ds->label_name, "y");
    assert_true(ds->x[1] == 3.0f && ds->y[1] == 1.0f);
    fedc_dataset_destroy(&ds);
}

/* The test's own reading of the missing-value cells: which spellings are missing. */
static const char *const g_missing_cells[] = {"", "NA", "n/a", "NaN", "null", "NULL", " na "};

static void test_missing_policies(void **state) {
    (void)state;
    /* a: every spelling once among numbers; b: never missing; y: labels. */
    const char *text = "a,b,y\n"
                       "1.5,10,0\n"
                       ",11,1\n"
                       "NA,12,0\n"
                       "4.25,13,1\n"
                       "n/a,14,0\n"
                       "NaN,15,1\n"
                       "-2,16,0\n"
                       "null,17,1\n"
                       "NULL,18,0\n"
                       "\" na \",19,1\n"
                       "8,20,0\n";
    const char *p = write_file("missing.csv", text);
    /* Expected values, computed here: present a cells and their mean. */
    const float present[] = {1.5f, 4.25f, -2.0f, 8.0f};
    const int present_row[] = {0, 3, 6, 10};
    double sum = 0;
    for (int i = 0; i < 4; i++)
        sum += present[i];
    float mean_a = (float)(sum / 4);
    assert_int_equal((int)(sizeof g_missing_cells / sizeof g_missing_cells[0]), 7);
    for (size_t k = 0; k < 7; k++)
        assert_true(fedc_is_missing_text(g_missing_cells[k], strlen(g_missing_cells[k])));
    assert_false(fedc_is_missing_text("nana", 4));
    assert_false(fedc_is_missing_text("0", 1));

    /* error: the first missing cell, with its line and column and the flag. */
    fedc_encoding e;
    fedc_encoding_init(&e);
    load_fails(p, "y", &e, "missing.csv:3:1: column 'a'", "--missing mean or --missing zero");
    load_fails(write_file("na.csv", "a,y\n1,0\nNA,1\n"), "y", &e, "na.csv:3:1",
               "the missing value 'NA'");

    for (int pol = 0; pol < 3; pol++) {
        fedc_encoding_init(&e);
        e.missing = pol == 0 ? FEDC_MISSING_ZERO : FEDC_MISSING_MEAN;
        float given[4] = {42.5f, -1, -1, -1}; /* a, a_MISSING, b, b_MISSING */
        if (pol == 2) {
            e.impute = given;
            e.n_impute = 4;
        }
        fedc_dataset *ds = load(p, "y", &e);
        assert_int_equal(ds->n_rows, 11);
        /* indicators for every numeric feature by default, whatever the data holds */
        assert_int_equal(ds->n_features, 4);
        assert_string_equal(ds->feature_names[0], "a");
        assert_string_equal(ds->feature_names[1], "a" FEDC_MISSING_SUFFIX);
        assert_string_equal(ds->feature_names[2], "b");
        assert_string_equal(ds->feature_names[3], "b" FEDC_MISSING_SUFFIX);
        for (int i = 0; i < 11; i++) {
            int k = -1;
            for (int q = 0; q < 4; q++)
                if (present_row[q] == i)
                    k = q;
            float v = at(ds, i, "a"), ind = at(ds, i, "a_MISSING");
            assert_true(at(ds, i, "b") == (float)(10 + i));
            assert_true(at(ds, i, "b_MISSING") == 0.0f);
            assert_true(ind == (k < 0 ? 1.0f : 0.0f));
            if (k >= 0)
                assert_true(v == present[k]);
            else if (pol == 0)
                assert_true(v == 0.0f);
            else if (pol == 1)
                assert_true(isnan(v));
            else
                assert_true(v == 42.5f);
        }
        if (pol == 1) {
            assert_int_equal(fedc_dataset_count_missing(ds), 7);
            float m[4];
            fedc_dataset_missing_means(m, ds);
            assert_true(fabsf(m[0] - mean_a) <= 1e-6f * fabsf(mean_a));
            assert_int_equal(fedc_dataset_fill_missing(ds, m), 7);
            assert_true(at(ds, 1, "a") == m[0]);
            assert_int_equal(fedc_dataset_count_missing(ds), 0);
        }
        fedc_dataset_destroy(&ds);
    }
    /* Indicator lists: none, one column; a name that is not a numeric feature is refused. */
    fedc_encoding_init(&e);
    e.missing = FEDC_MISSING_ZERO;
    e.ind_mode = FEDC_IND_NONE;
    fedc_dataset *ds = load(p, "y", &e);
    assert_int_equal(ds->n_features, 2);
    fedc_dataset_destroy(&ds);
    const char *only_b[] = {"b"};
    e.ind_mode = FEDC_IND_LIST;
    e.indicators = only_b;
    e.n_indicators = 1;
    ds = load(p, "y", &e);
    assert_int_equal(ds->n_features, 3);
    assert_string_equal(ds->feature_names[2], "b_MISSING");
    assert_true(at(ds, 1, "a") == 0.0f);
    for (int i = 0; i < ds->n_rows; i++)
        assert_true(at(ds, i, "b_MISSING") == 0.0f);
    fedc_dataset_destroy(&ds);
    const char *label_ind[] = {"y"};
    e.indicators = label_ind;
    load_fails(p, "y", &e, "not a numeric feature", NULL);
    /* A generated name meeting a header name. */
    e.ind_mode = FEDC_IND_ALL;
    load_fails(write_file("clash.csv", "a,a_MISSING,y\n1,2,0\n"), "y", &e, "two feature columns",
               "'a_MISSING'");
    /* A missing label is an error under every policy. */
    e.missing = FEDC_MISSING_MEAN;
    load_fails(write_file("nolabel.csv", "a,y\n1,0\n2,NA\n"), "y", &e, "nolabel.csv:3:2",
               "label column 'y'");
}

static void test_text_labels(void **state) {
    (void)state;
    const char *p =
        write_file("text.csv", "a,cls\n1,fraud\n2,ok\n3, fraud \n4,\"fraud\"\n5,FRAUD\n");
    fedc_encoding e;
    fedc_encoding_init(&e);
    e.positive = "fraud";
    fedc_dataset *ds = load(p, "cls", &e);
    const float want[] = {1, 0, 1, 1, 0}; /* blanks trimmed; case counts */
    for (int i = 0; i < 5; i++)
        assert_true(ds->y[i] == want[i]);
    fedc_dataset_destroy(&ds);
    load_fails(write_file("text_missing.csv", "a,cls\n1,fraud\n2,\n"), "cls", &e,
               "text_missing.csv:3:2", "expected a label");
    /* Without --positive a text label is not a number. */
    fedc_encoding_init(&e);
    load_fails(p, "cls", &e, "text.csv:2:2", "expected a number, got 'fraud'");
}

/* The same category in two files lands in the same column; every bucket count is respected; a
 * category never seen before and a missing cell are fine. */
static void test_hashing(void **state) {
    (void)state;
    const char *p1 = write_file("h1.csv", "MCC,amt,y\n5411,1,0\ngrocery,2,1\n7995,3,0\n");
    const char *p2 = write_file("h2.csv", "amt,MCC,y\n9,7995,1\n8,never-seen,0\n7,,1\n6,5411,0\n");
    for (int buckets = 2; buckets <= 64; buckets *= 4) {
        fedc_encoding e;
        fedc_encoding_init(&e);
        const char *cat[] = {"MCC"};
        e.categorical = cat;
        e.n_categorical = 1;
        e.hash_buckets = buckets;
        fedc_dataset *a = load(p1, "y", &e), *b = load(p2, "y", &e);
        assert_int_equal(a->n_features, buckets + 1);
        assert_int_equal(b->n_features, buckets + 1);
        const char *texts1[] = {"5411", "grocery", "7995"};
        const char *texts2[] = {"7995", "never-seen", NULL, "5411"};
        for (int i = 0; i < 3; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "MCC=h%d", oracle_bucket(e.hash_key, buckets, texts1[i]));
            assert_true(at(a, i, nm) == 1.0f);
        }
        for (int i = 0; i < 4; i++) {
            int ones = 0;
            for (int k = 0; k < buckets; k++) {
                char nm[32];
                snprintf(nm, sizeof nm, "MCC=h%d", k);
                ones += at(b, i, nm) == 1.0f;
            }
            assert_int_equal(ones, texts2[i] ? 1 : 0);
            if (texts2[i]) {
                char nm[32];
                snprintf(nm, sizeof nm, "MCC=h%d", oracle_bucket(e.hash_key, buckets, texts2[i]));
                assert_true(at(b, i, nm) == 1.0f);
            }
        }
        /* 7995 in file 1 row 2 and file 2 row 0: the same column. */
        for (int k = 0; k < buckets; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "MCC=h%d", k);
            assert_true(at(a, 2, nm) == at(b, 0, nm));
            assert_true(at(a, 0, nm) == at(b, 3, nm));
        }
        fedc_dataset_destroy(&a);
        fedc_dataset_destroy(&b);
    }
    /* Another key moves categories: at 64 buckets some of these texts must change column. */
    uint8_t k2[16] = {1};
    fedc_encoding e;
    fedc_encoding_init(&e);
    int moved = 0;
    const char *texts[] = {"5411", "7995", "grocery", "a", "b", "c"};
    for (int i = 0; i < 6; i++)
        moved += fedc_hash_bucket(e.hash_key, 64, texts[i], strlen(texts[i])) !=
                 fedc_hash_bucket(k2, 64, texts[i], strlen(texts[i]));
    assert_true(moved > 0);
    /* The label or an unknown column as categorical is refused. */
    const char *bad[] = {"nope"};
    e.categorical = bad;
    e.n_categorical = 1;
    load_fails(p1, "y", &e, "categorical column 'nope'", "not found");
}

static void test_recipe_json(void **state) {
    (void)state;
    fedc_encoding e;
    fedc_encoding_init(&e);
    e.delimiter = ';';
    e.missing = FEDC_MISSING_MEAN;
    const char *cat[] = {"MCC", "COUNTRY"};
    e.categorical = cat;
    e.n_categorical = 2;
    e.hash_buckets = 64;
    e.positive = "fraud";
    float imp[3] = {0.5f, 1.0f / 3.0f, -7e-20f};
    e.impute = imp;
    e.n_impute = 3;
    char *full = fedc_encoding_json(&e, 1), *agree = fedc_encoding_json(&e, 0);
    assert_non_null(full);
    assert_non_null(agree);
    print_message("%s\n%s\n", full, agree);
    assert_null(strstr(agree, "impute"));
    assert_null(strstr(agree, "delimiter"));
    fedc_recipe_enc r;
    fedc_diag d;
    assert_int_equal(fedc_encoding_from_json(&r, full, &d), FEDC_OK);
    assert_int_equal(r.enc.delimiter, ';');
    assert_int_equal(r.enc.missing, FEDC_MISSING_MEAN);
    assert_int_equal(r.enc.ind_mode, FEDC_IND_ALL);
    assert_int_equal(r.enc.n_categorical, 2);
    assert_string_equal(r.enc.categorical[1], "COUNTRY");
    assert_int_equal(r.enc.hash_buckets, 64);
    assert_memory_equal(r.enc.hash_key, e.hash_key, 16);
    assert_string_equal(r.enc.positive, "fraud");
    assert_int_equal(r.enc.n_impute, 3);
    for (int j = 0; j < 3; j++)
        assert_true(r.enc.impute[j] == imp[j]); /* floats survive the text exactly */
    fedc_recipe_enc_release(&r);
    /* Agreement: equal with itself and its full form; a bucket count named when it differs. */
    char why[300];
    assert_int_equal(fedc_encoding_differs(agree, full, why, sizeof why), 0);
    fedc_encoding e16 = e;
    e16.hash_buckets = 16;
    char *a16 = fedc_encoding_json(&e16, 0);
    assert_int_equal(fedc_encoding_differs(a16, agree, why, sizeof why), 1);
    print_message("%s\n", why);
    assert_non_null(strstr(why, "categorical column MCC hashed into 16 buckets, the federation "
                                "uses 64"));
    fedc_encoding ez = e;
    ez.missing = FEDC_MISSING_ZERO;
    char *az = fedc_encoding_json(&ez, 0);
    assert_int_equal(fedc_encoding_differs(az, agree, why, sizeof why), 1);
    assert_non_null(strstr(why, "--missing zero, the federation uses --missing mean"));
    /* The defaults agree with an empty encoding (a client of an older version). */
    char *def = fedc_encoding_json(NULL, 0);
    assert_int_equal(fedc_encoding_differs(def, "", why, sizeof why), 0);
    assert_int_equal(fedc_encoding_differs(agree, "", why, sizeof why), 1);
    /* JSON comparison (the features spec), key order ignored. */
    const char *spec = "{\"b\":1,\"a\":[2]}";
    assert_int_equal(fedc_json_differs(spec, "{\"a\":[2],\"b\":1}"), 0);
    assert_int_equal(fedc_json_differs(spec, "{\"a\":[3],\"b\":1}"), 1);
    assert_int_equal(fedc_json_differs(spec, NULL), 1);
    assert_int_equal(fedc_json_differs("", NULL), 0);
    free(def);
    free(az);
    free(a16);
    free(full);
    free(agree);
    /* A spec file must be a features spec (a JSON object fedc features can use); syntax errors
     * name line and column. */
    char *out = NULL;
    const char *spec_text =
        "{\"format\": \"fedc-features-spec\", \"version\": 1, \"time\": \"T\",\n"
        " \"time_format\": \"datetime\", \"calendar\": true, \"windows\": []}\n";
    assert_int_equal(fedc_features_spec_read(&out, write_file("s.json", spec_text), &d), FEDC_OK);
    assert_non_null(strstr(out, "\"time\":\"T\""));
    free(out);
    assert_int_equal(fedc_features_spec_read(&out, write_file("w.json", "{\"w\": [1, 2]}\n"), &d),
                     FEDC_EPARSE);
    assert_non_null(strstr(d.msg, "w.json"));
    assert_int_equal(fedc_features_spec_read(&out, write_file("a.json", "[1]"), &d), FEDC_EPARSE);
    assert_non_null(strstr(d.msg, "expected a JSON object"));
    assert_int_equal(fedc_features_spec_read(&out, write_file("b.json", "{\n \"w\": ]"), &d),
                     FEDC_EPARSE);
    assert_non_null(strstr(d.msg, "b.json:2:"));
}

static int group_setup(void **state) {
    (void)state;
    if (sodium_init() < 0 || !mkdtemp(g_dir))
        return -1;
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_against_libsodium),
        cmocka_unit_test(test_delimiters_and_quoting),
        cmocka_unit_test(test_header_blanks),
        cmocka_unit_test(test_missing_policies),
        cmocka_unit_test(test_text_labels),
        cmocka_unit_test(test_hashing),
        cmocka_unit_test(test_recipe_json),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
