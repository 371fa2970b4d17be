/* The option table (core/prog options.h) and the programs that read it.
 *
 * The table: every option's name, range, words and default (and each program's own default)
 * are well-formed, the default lies in the range, names and environment variables are unique
 * (but for the listed homonyms, which no program takes twice) and clear of the FEDC_ variables
 * with another meaning. The programs, every one of FEDC_PROGRAMS (fedc-coordinator, fedc-client
 * and the fedc commands): each one's --help shows, for each of its options, the flag and the
 * table's range and default, and no other program's flag; --print-config shows flag >
 * environment > file > default with each value's source (fedc-coordinator, fedc-client, fedc
 * train); --config errors (unknown key, another program's key, a bad value, an unknown section)
 * exit 2 naming file:line; a bad environment value names its variable; --version (fedc's too)
 * prints the program, the version and a commit line.
 *
 * argv[1..4]: fedc-coordinator, fedc-client, fedc (for its commands). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedc/coord.h"
#include "options.h"
#include "proc.h"

static const char *g_coord, *g_client, *g_fedc;

/* ---- the table ------------------------------------------------------------------------------ */

/* Whether text is a valid value of d, by the table's own columns (written apart from the parser,
 * so that a default the parser would refuse, or a range it would not apply, shows here). */
static int value_ok(const fedc_opt_def *d, const char *text) {
    char *end;
    switch (d->type) {
    case FEDC_OT_FLAG:
        return strcmp(text, "false") == 0 || strcmp(text, "true") == 0;
    case FEDC_OT_INT: {
        errno = 0;
        long v = strtol(text, &end, 10);
        return !errno && end != text && !*end && v >= (long)d->lo && v <= (long)d->hi;
    }
    case FEDC_OT_U64:
        for (const char *p = text; *p; p++)
            if (!isdigit((unsigned char)*p))
                return 0;
        return text[0] != 0;
    case FEDC_OT_REAL:
    case FEDC_OT_REAL_P: {
        if (d->words && strstr(d->words, text))
            return 1;
        double v = strtod(text, &end);
        if (end == text || *end || !(v <= d->hi))
            return 0;
        return d->type == FEDC_OT_REAL ? v >= d->lo : v > d->lo;
    }
    case FEDC_OT_CHOICE: {
        size_t n = strlen(text);
        for (const char *p = d->words; p; p = strchr(p, '|') ? strchr(p, '|') + 1 : NULL)
            if (strncmp(p, text, n) == 0 && (p[n] == '|' || p[n] == 0))
                return 1;
        return 0;
    }
    case FEDC_OT_LIST:
        for (const char *p = text;;) {
            long v = strtol(p, &end, 10);
            if (end == p || v < (long)d->lo || v > (long)d->hi || (*end && *end != ','))
                return 0;
            if (!*end)
                return 1;
            p = end + 1;
        }
    case FEDC_OT_STR:
    case FEDC_OT_PATH:
        return text[0] != 0;
    }
    return 0;
}

static void test_table_well_formed(void **state) {
    (void)state;
    /* FEDC_ variables that mean something else: none may be an option's. */
    static const char *const reserved[] = {"FEDC_COORDINATOR", "FEDC_CLIENT", "FEDC_FAULT",
                                           "FEDC_ISA", "FEDC_CONFIG"};
    /* Names that mean two things, for programs that never share one (options.h says why). */
    static const char *const homonyms[] = {"model", "clients"};
    static const unsigned all = FEDC_PROG_ALL;
    assert_true(FEDC_O_COUNT > 50);
    assert_true(FEDC_PROG_COUNT >= 13);
    for (int i = 0; i < FEDC_O_COUNT; i++) {
        const fedc_opt_def *d = &fedc_opt_table[i];
        assert_non_null(d->name);
        for (const char *p = d->name; *p; p++)
            if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
                fail_msg("option '%s': name is not lower-case words joined by '-'", d->name);
        if (!d->help || !d->help[0])
            fail_msg("option --%s has no help", d->name);
        if (!d->progs || (d->progs & ~all))
            fail_msg("option --%s: programs mask %#x", d->name, d->progs);
        if ((int)d->section < 0 || d->section >= FEDC_SEC_COUNT)
            fail_msg("option --%s: no such section", d->name);
        if ((d->type == FEDC_OT_FLAG) != (d->metavar == NULL))
            fail_msg("option --%s: a flag has no metavar and every other option one", d->name);
        if ((d->type == FEDC_OT_INT || d->type == FEDC_OT_LIST) &&
            !(d->lo <= d->hi && d->lo == floor(d->lo) && d->hi == floor(d->hi)))
            fail_msg("option --%s: integer range %g..%g", d->name, d->lo, d->hi);
        if ((d->type == FEDC_OT_REAL || d->type == FEDC_OT_REAL_P) && !(d->lo < d->hi))
            fail_msg("option --%s: range [%g, %g]", d->name, d->lo, d->hi);
        if ((d->type == FEDC_OT_CHOICE) != (d->words != NULL) && d->type != FEDC_OT_REAL &&
            d->type != FEDC_OT_REAL_P)
            fail_msg("option --%s: words belong to choices (and numbers with a word)", d->name);
        if (d->type == FEDC_OT_FLAG && (!d->def || strcmp(d->def, "false") != 0))
            fail_msg("option --%s: a flag defaults to false", d->name);
        if (d->def && !value_ok(d, d->def))
            fail_msg("option --%s: default '%s' is outside its type or range", d->name, d->def);
        char env[96];
        fedc_opt_env_name(env, sizeof env, d->name);
        /* an option whose variable means something else must have none (FEDC_OPTION_NO_ENV),
         * and only such an option has none */
        int taken = 0;
        for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++)
            taken |= strcmp(env, reserved[r]) == 0;
        if (taken && fedc_opt_has_env((fedc_opt_id)i))
            fail_msg("option --%s: its variable %s has another meaning", d->name, env);
        if (!taken && !fedc_opt_has_env((fedc_opt_id)i))
            fail_msg("option --%s has no variable, but %s means nothing else", d->name, env);
        for (int j = 0; j < i; j++) {
            char other[96];
            fedc_opt_env_name(other, sizeof other, fedc_opt_table[j].name);
            if (strcmp(d->name, fedc_opt_table[j].name) != 0 && strcmp(env, other) != 0)
                continue;
            int listed = 0;
            for (size_t h = 0; h < sizeof homonyms / sizeof homonyms[0]; h++)
                listed |= strcmp(d->name, homonyms[h]) == 0;
            /* a listed homonym still may not reach one program twice */
            if (!listed || (d->progs & fedc_opt_table[j].progs))
                fail_msg("options --%s and --%s collide", d->name, fedc_opt_table[j].name);
        }
        /* A per-program default: only for a program that takes the option, and in range (or
         * NULL: none, the program derives or requires the value). */
        for (int k = 0; k < FEDC_PROG_COUNT; k++) {
            unsigned p = 1u << k;
            const char *pd = fedc_opt_default((fedc_opt_id)i, p);
            if (pd != d->def && (!(d->progs & p) || (pd && !value_ok(d, pd))))
                fail_msg("option --%s: %s's default '%s' is not valid", d->name,
                         fedc_prog_display(p), pd ? pd : "(none)");
        }
    }
    char env[96];
    fedc_opt_env_name(env, sizeof env, "min-clients");
    assert_string_equal(env, "FEDC_MIN_CLIENTS");
}

/* ---- --help --------------------------------------------------------------------------------- */

/* text with every run of white space as one space: --help wraps its lines. */
static char *squeeze(const char *text) {
    char *s = malloc(strlen(text) + 1), *o = s;
    assert_non_null(s);
    for (const char *p = text; *p; p++) {
        if (isspace((unsigned char)*p)) {
            if (o > s && o[-1] != ' ')
                *o++ = ' ';
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return s;
}

/* The range as the table states it, written here from the columns. */
static void expected_range(char *out, size_t cap, const fedc_opt_def *d) {
    out[0] = 0;
    const char *var = d->words || !d->metavar ? "X" : d->metavar;
    switch (d->type) {
    case FEDC_OT_INT:
        snprintf(out, cap, "%ld..%ld", (long)d->lo, (long)d->hi);
        break;
    case FEDC_OT_REAL:
    case FEDC_OT_REAL_P:
        snprintf(out, cap, "%s%s%g %s %s <= %g", d->words ? d->words : "", d->words ? " or " : "",
                 d->lo, d->type == FEDC_OT_REAL ? "<=" : "<", var, d->hi);
        break;
    case FEDC_OT_CHOICE:
        snprintf(out, cap, "%s", d->words);
        break;
    case FEDC_OT_LIST:
        snprintf(out, cap, "%ld..%ld", (long)d->lo, (long)d->hi);
        break;
    default:
        break;
    }
}

static void check_help(unsigned prog, const char *const *argv) {
    proc_result r;
    assert_int_equal(proc_run(&r, argv, NULL, 30), 0);
    assert_int_equal(r.status, 0);
    char *help = squeeze(r.out);
    int checked = 0;
    for (int i = 0; i < FEDC_O_COUNT; i++) {
        const fedc_opt_def *d = &fedc_opt_table[i];
        char flag[80], range[160], def[200];
        snprintf(flag, sizeof flag, "--%s ", d->name);
        int takes = (d->progs & prog) != 0, name_taken = 0;
        for (int j = 0; j < FEDC_O_COUNT; j++) /* a homonym may be this program's */
            if (strcmp(fedc_opt_table[j].name, d->name) == 0)
                name_taken |= (fedc_opt_table[j].progs & prog) != 0;
        if (name_taken != (strstr(help, flag) != NULL))
            fail_msg("%s --help %s --%s", fedc_prog_display(prog),
                     name_taken ? "does not show" : "shows another program's", d->name);
        if (!takes)
            continue;
        checked++;
        expected_range(range, sizeof range, d);
        if (range[0] && !strstr(help, range))
            fail_msg("%s --help: --%s's range '%s' is missing", fedc_prog_display(prog), d->name,
                     range);
        const char *dv = fedc_opt_default((fedc_opt_id)i, prog);
        snprintf(def, sizeof def, "default %s]", dv ? dv : "");
        if (dv && d->type != FEDC_OT_FLAG && !strstr(help, def))
            fail_msg("%s --help: --%s's '%s' is missing", fedc_prog_display(prog), d->name, def);
    }
    /* a program bit the table never uses would show no option at all */
    if (checked == 0)
        fail_msg("%s takes no option of the table", fedc_prog_display(prog));
    /* the meta options of every program */
    assert_non_null(strstr(help, "--config FILE"));
    assert_non_null(strstr(help, "--print-config"));
    assert_non_null(strstr(help, "--version"));
    free(help);
    proc_result_release(&r);
}

/* The command line that runs prog with one argument: fedc-coordinator ARG, fedc train ARG. */
static void prog_argv(const char *argv[4], unsigned prog, const char *arg) {
    const char *disp = fedc_prog_display(prog);
    int n = 0;
    if (strcmp(disp, "fedc-coordinator") == 0) {
        argv[n++] = g_coord;
    } else if (strcmp(disp, "fedc-client") == 0) {
        argv[n++] = g_client;
    } else {
        if (strncmp(disp, "fedc ", 5) != 0)
            fail_msg("program '%s': neither a program here nor a fedc command", disp);
        argv[n++] = g_fedc;
        argv[n++] = disp + 5;
    }
    argv[n++] = arg;
    argv[n] = NULL;
}

static void test_help_from_table(void **state) {
    (void)state;
    /* every program of FEDC_PROGRAMS, the fedc toolbox's commands included */
    for (int k = 0; k < FEDC_PROG_COUNT; k++) {
        const char *argv[4];
        prog_argv(argv, 1u << k, "--help");
        check_help(1u << k, argv);
    }
}

/* ---- precedence ----------------------------------------------------------------------------- */

/* The line of --print-config's output for key, or fails. */
static void expect_line(const char *out, const char *key, const char *value, const char *source) {
    char want[256];
    snprintf(want, sizeof want, "\n%s = %s ", key, value);
    const char *l = strstr(out, want);
    if (!l)
        fail_msg("--print-config has no '%s = %s' in:\n%s", key, value, out);
    const char *e = strchr(l + 1, '\n');
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)(e ? e - l - 1 : (long)strlen(l + 1)), l + 1);
    char src[256];
    snprintf(src, sizeof src, "; %s", source);
    if (!strstr(line, src) || strcmp(strstr(line, src), src) != 0)
        fail_msg("--print-config: '%s' should come from '%s'", line, source);
}

static void test_precedence(void **state) {
    (void)state;
    char *dir = proc_mkdtemp("fedc-opts-");
    assert_non_null(dir);
    char *ini = proc_path(dir, "fedc.ini");
    /* rounds: file only; lr: file and env; batch: file, env and flag; local-epochs: env only. */
    assert_int_equal(proc_write_file(ini, "; a comment\n[coordinator]\nrounds = 3\nlr = 0.5\n"
                                          "batch = 7\n\n[client]\nname = elsewhere\n"),
                     0);
    proc_result r;
    const char *env[] = {"FEDC_LR=0.25", "FEDC_BATCH=9", "FEDC_LOCAL_EPOCHS=4", NULL};
    assert_int_equal(proc_run(&r,
                              (const char *[]){g_coord, "--config", ini, "--batch=11",
                                               "--print-config", "--insecure", NULL},
                              env, 30),
                     0);
    assert_int_equal(r.status, 0);
    char file_src[1100];
    snprintf(file_src, sizeof file_src, "file %s:3", ini);
    expect_line(r.out, "rounds", "3", file_src);
    expect_line(r.out, "lr", "0.25", "env FEDC_LR");
    expect_line(r.out, "batch", "11", "flag");
    expect_line(r.out, "local-epochs", "4", "env FEDC_LOCAL_EPOCHS");
    expect_line(r.out, "insecure", "true", "flag");
    expect_line(r.out, "max-retries", "5", "default");
    /* an option of another program is not the coordinator's */
    assert_null(strstr(r.out, "\nname ="));
    proc_result_release(&r);

    /* FEDC_CONFIG names the file when --config does not */
    char cfg_env[1100];
    snprintf(cfg_env, sizeof cfg_env, "FEDC_CONFIG=%s", ini);
    assert_int_equal(proc_run(&r, (const char *[]){g_client, "--print-config", NULL},
                              (const char *[]){cfg_env, NULL}, 30),
                     0);
    assert_int_equal(r.status, 0);
    snprintf(file_src, sizeof file_src, "file %s:8", ini);
    expect_line(r.out, "name", "elsewhere", file_src);
    proc_result_release(&r);

    /* a fedc command: its own section, its own default (train's --test-fraction), the shared
     * variables (FEDC_SEED means the same to every program) */
    assert_int_equal(proc_write_file(ini, "[coordinator]\nepochs-are-not-here = 1\n[train]\n"
                                          "epochs = 3\nlr = 0.5\n[eval]\nthreshold = 0.9\n"),
                     0);
    assert_int_equal(proc_run(&r,
                              (const char *[]){g_fedc, "train", "--config", ini, "--lr", "0.01",
                                               "--print-config", NULL},
                              (const char *[]){"FEDC_SEED=9", "FEDC_LR=0.2", NULL}, 30),
                     0);
    /* the coordinator's section is not read (its unknown key would be an error there) */
    if (r.status != 0)
        fail_msg("fedc train --print-config: exit %d\n%s", r.status, r.err);
    assert_non_null(strstr(r.out, "\n[train]\n"));
    snprintf(file_src, sizeof file_src, "file %s:4", ini);
    expect_line(r.out, "epochs", "3", file_src);
    expect_line(r.out, "lr", "0.01", "flag");
    expect_line(r.out, "seed", "9", "env FEDC_SEED");
    expect_line(r.out, "test-fraction", "0.15", "default");
    expect_line(r.out, "val-fraction", "0.2", "default");
    expect_line(r.out, "threshold", "0.5", "default");
    assert_non_null(strstr(r.out, "\n; alert-budget (unset)"));
    assert_null(strstr(r.out, "\nrounds ="));
    proc_result_release(&r);
    proc_rmtree(dir);
    free(ini);
    free(dir);
}

/* ---- errors --------------------------------------------------------------------------------- */

/* Runs prog and arg (a fedc command, or a flag) with a config file holding text; expects exit 2
 * and every needle on stderr. */
static void expect_config_error_with(const char *prog, const char *arg, const char *text,
                                     const char *const *needles) {
    char *dir = proc_mkdtemp("fedc-opts-");
    assert_non_null(dir);
    char *ini = proc_path(dir, "bad.ini");
    assert_int_equal(proc_write_file(ini, text), 0);
    proc_result r;
    assert_int_equal(proc_run(&r, (const char *[]){prog, arg, "--config", ini, NULL}, NULL, 30), 0);
    if (r.status != 2)
        fail_msg("exit %d, expected 2, for:\n%s\nstderr: %s", r.status, text, r.err);
    for (const char *const *n = needles; *n; n++) {
        char want[1200];
        /* "@" stands for the file's path */
        if ((*n)[0] == '@')
            snprintf(want, sizeof want, "%s%s", ini, *n + 1);
        else
            snprintf(want, sizeof want, "%s", *n);
        if (!strstr(r.err, want))
            fail_msg("stderr lacks '%s':\n%s", want, r.err);
    }
    proc_result_release(&r);
    proc_rmtree(dir);
    free(ini);
    free(dir);
}

static void expect_config_error(const char *prog, const char *text, const char *const *needles) {
    expect_config_error_with(prog, "--insecure", text, needles);
}

static void test_config_errors(void **state) {
    (void)state;
    expect_config_error(g_coord, "[coordinator]\nrounds = 2\nbogus = 1\n",
                        (const char *[]){"fedc-coordinator: ", "@:3: unknown key 'bogus'", NULL});
    expect_config_error(
        g_coord, "[coordinator]\n\ntask = auto\n",
        (const char *[]){"@:3: key 'task' in [coordinator]", "an option of fedc-client", NULL});
    expect_config_error(
        g_coord, "[coordinator]\nrounds = 2\nlr = fast\n",
        (const char *[]){"@:3: lr: expected a number in (0, 100], got 'fast'", NULL});
    expect_config_error(g_client, "[client]\nheartbeat-ms = 700000\n",
                        (const char *[]){"fedc-client: ",
                                         "@:2: heartbeat-ms: expected an integer in "
                                         "0..600000, got '700000'",
                                         NULL});
    expect_config_error(g_coord, "[coordinatr]\nrounds = 2\n",
                        (const char *[]){"@:2: unknown section [coordinatr]", NULL});
    expect_config_error(g_coord, "rounds = 2\n",
                        (const char *[]){"@:1: 'rounds' is outside a section", NULL});
    expect_config_error(g_coord, "[coordinator]\nrounds = 2\nrounds = 3\n",
                        (const char *[]){"@:3: 'rounds' set twice", NULL});
    expect_config_error(g_coord, "[coordinator]\nthis line has no equals sign\n",
                        (const char *[]){"@:2: expected 'key = value'", NULL});
    /* the fedc commands have sections of their own, checked the same way */
    expect_config_error_with(g_fedc, "train", "[train]\nepochs = 2\nrounds = 3\n",
                             (const char *[]){"fedc train: ", "@:3: key 'rounds' in [train]",
                                              "an option of fedc-coordinator", NULL});
    expect_config_error_with(
        g_fedc, "privacy", "[privacy]\ndelta = 1\n",
        (const char *[]){"fedc privacy: ", "@:2: delta: expected a number in (0, 0.5], got '1'",
                         NULL});
    expect_config_error_with(g_fedc, "keygen", "[keygn]\nname = a\n",
                             (const char *[]){"@:2: unknown section [keygn]", "[keygen]", NULL});
}

static void test_env_and_flag_errors(void **state) {
    (void)state;
    proc_result r;
    assert_int_equal(proc_run(&r, (const char *[]){g_coord, "--bind", "tcp://*:1", NULL},
                              (const char *[]){"FEDC_ROUNDS=x", NULL}, 30),
                     0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "fedc-coordinator: --rounds: expected an integer in 1..1000000, "
                                  "got 'x' (environment FEDC_ROUNDS)"));
    proc_result_release(&r);
    /* --heartbeat-ms: 0 leaves the interval to the coordinator; 1..9 ms is no interval */
    assert_int_equal(
        proc_run(&r,
                 (const char *[]){g_client, "--connect", "tcp://127.0.0.1:1", "--data", "x.csv",
                                  "--label", "y", "--heartbeat-ms", "5", NULL},
                 NULL, 30),
        0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--heartbeat-ms: expected 0 (as the coordinator asks) or "
                                  "10..600000, got 5"));
    proc_result_release(&r);
    /* an option of another program, on the command line */
    assert_int_equal(proc_run(&r, (const char *[]){g_coord, "--task", "auto", NULL}, NULL, 30), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(
        strstr(r.err, "unknown option '--task' (an option of fedc-client, fedc train)"));
    proc_result_release(&r);
    /* an option of other programs, on a fedc command's command line */
    assert_int_equal(
        proc_run(&r, (const char *[]){g_fedc, "train", "--rounds", "3", NULL}, NULL, 30), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "fedc train: unknown option '--rounds' (an option of "
                                  "fedc-coordinator, fedc sim, fedc demo, fedc tune)"));
    proc_result_release(&r);
    /* the homonym: --model is a file to fedc eval, a kind of model to the coordinator */
    assert_int_equal(
        proc_run(&r, (const char *[]){g_coord, "--bind", "tcp://*:1", "--model", "m.fedc", NULL},
                 NULL, 30),
        0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--model: expected mlp or external, got 'm.fedc'"));
    proc_result_release(&r);
    assert_int_equal(proc_run(&r,
                              (const char *[]){g_fedc, "eval", "--model", "m.fedc", "--data",
                                               "d.csv", "--print-config", NULL},
                              NULL, 30),
                     0);
    assert_int_equal(r.status, 0);
    expect_line(r.out, "model", "m.fedc", "flag");
    proc_result_release(&r);
    /* the old spellings, rewritten on the command line with a warning: report's --rounds FILE
     * (both forms; a value that reads "--rounds" stays a value) and train's --optimizer adamw */
    assert_int_equal(
        proc_run(&r,
                 (const char *[]){g_fedc, "report", "--title", "--rounds", "--rounds", "r1.jsonl",
                                  "--rounds=r2.jsonl", "--print-config", NULL},
                 NULL, 30),
        0);
    assert_int_equal(r.status, 0);
    expect_line(r.out, "metrics", "r2.jsonl", "flag");
    expect_line(r.out, "title", "--rounds", "flag");
    assert_non_null(strstr(r.err, "fedc report: warning: --rounds FILE is deprecated"));
    proc_result_release(&r);
    assert_int_equal(
        proc_run(&r,
                 (const char *[]){g_fedc, "train", "--optimizer", "adamw", "--print-config", NULL},
                 NULL, 30),
        0);
    assert_int_equal(r.status, 0);
    expect_line(r.out, "optimizer", "adam", "flag");
    assert_non_null(strstr(r.err, "fedc train: warning: --optimizer adamw is deprecated"));
    proc_result_release(&r);
    /* a check between options names the variable a value came from */
    assert_int_equal(
        proc_run(&r, (const char *[]){g_fedc, "train", "--data", "d.csv", "--label", "y", NULL},
                 (const char *[]){"FEDC_DP_NOISE=1", NULL}, 30),
        0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "fedc train: --dp-noise (environment FEDC_DP_NOISE) needs "
                                  "--dp-clip"));
    proc_result_release(&r);
    /* a fedc command's bad environment value names its variable */
    assert_int_equal(proc_run(&r, (const char *[]){g_fedc, "split", "--print-config", NULL},
                              (const char *[]){"FEDC_CLIENTS=1", NULL}, 30),
                     0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "fedc split: --clients: expected an integer in 2..10000, got '1' "
                                  "(environment FEDC_CLIENTS)"));
    proc_result_release(&r);
    /* --test-fraction 0 is fedc train's "no test part"; fedc sim, sharing the range, refuses it */
    assert_int_equal(proc_run(&r,
                              (const char *[]){g_fedc, "sim", "--data", "d.csv", "--label", "y",
                                               "--clients", "3", "--test-fraction", "0", NULL},
                              NULL, 30),
                     0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "fedc sim: --test-fraction: expected a number in (0, 0.9]"));
    proc_result_release(&r);
    /* fedc sim takes the coordinator's range for the same flag */
    assert_int_equal(proc_run(&r, (const char *[]){g_fedc, "sim", "--rounds", "0", NULL}, NULL, 30),
                     0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "fedc sim: --rounds: expected an integer in 1..1000000"));
    proc_result_release(&r);
}

/* Runs argv with env; expects exit status want and, when needle is given, needle on stderr (exit
 * 2) or stdout (exit 0). Returns the result, to release. */
static proc_result run_expect(const char *const *argv, const char *const *env, int want,
                              const char *needle) {
    proc_result r;
    assert_int_equal(proc_run(&r, argv, env, 30), 0);
    const char *text = want == 0 ? r.out : r.err;
    if (r.status != want || (needle && !strstr(text, needle)))
        fail_msg("%s %s: exit %d (expected %d), no '%s' in:\n%s\nstderr: %s", argv[0], argv[1],
                 r.status, want, needle ? needle : "", r.out, r.err);
    return r;
}

/* fedc provision and fedc health, the last commands moved onto the table: their spellings from
 * before (README, deploy/docker-compose.yml) next to the table's sources. */
static void test_provision_and_health(void **state) {
    (void)state;
    char *dir = proc_mkdtemp("fedc-opts-");
    assert_non_null(dir);
    char *ini = proc_path(dir, "fedc.ini");
    assert_int_equal(proc_write_file(ini, "[provision]\ncoordinator = coord:7070\nlabel = bad\n"
                                          "[health]\ntimeout = 0.5\n"),
                     0);
    /* --clients is a list of names here (a count to fedc split); the file gives --coordinator;
     * FEDC_COORDINATOR, another program's path, is not read for it; FEDC_DROP is */
    proc_result r = run_expect(
        (const char *[]){g_fedc, "provision", "--config", ini, "--clients", "bank-a,bank-b",
                         "--out", "kits/", "--print-config", NULL},
        (const char *[]){"FEDC_COORDINATOR=/opt/fedc/bin/fedc-coordinator", "FEDC_DROP=id", NULL},
        0, "\n[provision]\n");
    char file_src[1100];
    snprintf(file_src, sizeof file_src, "file %s:2", ini);
    expect_line(r.out, "coordinator", "coord:7070", file_src);
    expect_line(r.out, "clients", "bank-a,bank-b", "flag");
    expect_line(r.out, "out", "kits/", "flag");
    expect_line(r.out, "drop", "id", "env FEDC_DROP");
    proc_result_release(&r);
    r = run_expect((const char *[]){g_fedc, "provision", "--out", "k", "--print-config", NULL},
                   (const char *[]){"FEDC_COORDINATOR=/opt/fedc/bin/fedc-coordinator", NULL}, 0,
                   "\n; coordinator (unset)");
    proc_result_release(&r);
    r = run_expect((const char *[]){g_fedc, "split", "--clients", "bank-a,bank-b", NULL}, NULL, 2,
                   "fedc split: --clients: expected an integer in 2..10000, got 'bank-a,bank-b'");
    proc_result_release(&r);
    /* a check of provision's own names where the value came from */
    r = run_expect((const char *[]){g_fedc, "provision", "--coordinator", "h:1", "--out",
                                    "never-written", NULL},
                   (const char *[]){"FEDC_CLIENTS=a,b,a", NULL}, 2,
                   "fedc provision: --clients (environment FEDC_CLIENTS): 'a' is given twice");
    proc_result_release(&r);
    r = run_expect(
        (const char *[]){g_fedc, "provision", "--out", "k", "--add", "d", "--config", ini, NULL},
        NULL, 2, "--add takes no --coordinator (");
    proc_result_release(&r);
    r = run_expect((const char *[]){g_fedc, "provision", "--coordinator", "h:1", "--clients",
                                    "a,b,c", "--out", "k", "--secagg", "off", NULL},
                   NULL, 2,
                   "fedc provision: unknown option '--secagg' (an option of fedc-coordinator");
    proc_result_release(&r);

    /* health's bare URL (the compose file's spelling) is --url; the later one wins */
    r = run_expect((const char *[]){g_fedc, "health", "--config", ini, "http://127.0.0.1:1/healthz",
                                    "--print-config", NULL},
                   NULL, 0, "\n[health]\n");
    expect_line(r.out, "url", "http://127.0.0.1:1/healthz", "flag");
    snprintf(file_src, sizeof file_src, "file %s:5", ini);
    expect_line(r.out, "timeout", "0.5", file_src);
    proc_result_release(&r);
    r = run_expect((const char *[]){g_fedc, "health", "--url", "http://127.0.0.1:1/a",
                                    "http://127.0.0.1:1/b", "--print-config", NULL},
                   NULL, 0, NULL);
    expect_line(r.out, "url", "http://127.0.0.1:1/b", "flag");
    proc_result_release(&r);
    r = run_expect((const char *[]){g_fedc, "health", "--print-config", NULL},
                   (const char *[]){"FEDC_URL=http://127.0.0.1:1/readyz", NULL}, 0, NULL);
    expect_line(r.out, "url", "http://127.0.0.1:1/readyz", "env FEDC_URL");
    proc_result_release(&r);
    /* one bare argument only; a bad one names where it came from */
    r = run_expect(
        (const char *[]){g_fedc, "health", "http://127.0.0.1:1/a", "http://127.0.0.1:1/b", NULL},
        NULL, 2, "fedc health: unexpected argument 'http://127.0.0.1:1/b'");
    proc_result_release(&r);
    r = run_expect(
        (const char *[]){g_fedc, "health", "--timeout", "0", "http://127.0.0.1:1/a", NULL}, NULL, 2,
        "fedc health: --timeout: expected a number in (0, 3600], got '0'");
    proc_result_release(&r);
    r = run_expect((const char *[]){g_fedc, "health", NULL},
                   (const char *[]){"FEDC_URL=localhost:9100", NULL}, 2,
                   "got 'localhost:9100' (environment FEDC_URL)");
    proc_result_release(&r);
    r = run_expect((const char *[]){g_fedc, "health", "--metrics-listen", ":9100", NULL}, NULL, 2,
                   "fedc health: unknown option '--metrics-listen'");
    proc_result_release(&r);
    proc_rmtree(dir);
    free(ini);
    free(dir);
}

/* fedc sim clears the FEDC_ variables of the processes it starts, but not FEDC_COORDINATOR: that
 * one is no option's (--coordinator has none) and names the program to start. */
static void test_unsetenv_keeps_others(void **state) {
    (void)state;
    assert_int_equal(setenv("FEDC_COORDINATOR", "/opt/fedc/bin/fedc-coordinator", 1), 0);
    assert_int_equal(setenv("FEDC_LR", "0.5", 1), 0);
    assert_int_equal(setenv("FEDC_CLIENTS", "3", 1), 0);
    fedc_opts_unsetenv();
    assert_string_equal(getenv("FEDC_COORDINATOR"), "/opt/fedc/bin/fedc-coordinator");
    assert_null(getenv("FEDC_LR"));
    assert_null(getenv("FEDC_CLIENTS"));
    unsetenv("FEDC_COORDINATOR");
}

static void test_version(void **state) {
    (void)state;
    /* every program, and fedc itself (the last) */
    for (int k = 0; k <= FEDC_PROG_COUNT; k++) {
        const char *argv[4] = {g_fedc, "--version", NULL};
        if (k < FEDC_PROG_COUNT)
            prog_argv(argv, 1u << k, "--version");
        proc_result r;
        assert_int_equal(proc_run(&r, argv, NULL, 30), 0);
        assert_int_equal(r.status, 0);
        char want[96];
        snprintf(want, sizeof want, "%s (fedc) %s\n",
                 k < FEDC_PROG_COUNT ? fedc_prog_display(1u << k) : "fedc", FEDC_TEST_VERSION);
        if (!strstr(r.out, want))
            fail_msg("--version lacks '%s':\n%s", want, r.out);
        /* a commit: 12 hex digits (maybe -dirty), or unknown outside a git checkout */
        const char *c = strstr(r.out, "\ncommit: ");
        assert_non_null(c);
        c += 9;
        size_t hex = strspn(c, "0123456789abcdef");
        assert_true(hex == 12 || strncmp(c, "unknown", 7) == 0);
        assert_non_null(strstr(r.out, "\nbuild type: "));
        assert_non_null(strstr(r.out, "\ninstruction sets: "));
        proc_result_release(&r);
    }
}

/* --val-fraction has one default everywhere: the table's. The programs' --help say it (fedc train
 * from the table too now), and so does fedc_coord_defaults, the
 * coordinator's defaults for embedders. */
static void test_val_fraction_one_default(void **state) {
    (void)state;
    const char *def = fedc_opt_table[FEDC_O_VAL_FRACTION].def;
    assert_non_null(def);
    coord_cfg c;
    fedc_coord_defaults(&c);
    assert_true(c.val_fraction == strtof(def, NULL));
    const char *const *progs[] = {(const char *[]){g_coord, "--help", NULL},
                                  (const char *[]){g_fedc, "sim", "--help", NULL},
                                  (const char *[]){g_fedc, "train", "--help", NULL}};
    char want[64];
    snprintf(want, sizeof want, "default %s", def);
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        proc_result r;
        assert_int_equal(proc_run(&r, progs[i], NULL, 30), 0);
        assert_int_equal(r.status, 0);
        /* the option's entry: from its flag to the next option's */
        const char *p = strstr(r.out, "  --val-fraction ");
        if (!p) {
            fail_msg("%s %s: no --val-fraction in --help", progs[i][0], progs[i][1]);
            return; /* fail_msg does not return; said for the compiler */
        }
        const char *e = strstr(p + 3, "\n  -");
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *entry = strndup(p, len);
        assert_non_null(entry);
        const char *d = strstr(entry, want);
        /* the whole number: "default 0.2" must not match "default 0.25" */
        if (!d || isdigit((unsigned char)d[strlen(want)]))
            fail_msg("%s %s: --val-fraction's entry does not say '%s':\n%s", progs[i][0],
                     progs[i][1], want, entry);
        free(entry);
        proc_result_release(&r);
    }
}

/* Whether the --help of argv has an entry for flag ("--lr") that says want ("default 0.1"), the
 * whole number (fails the test with the entry otherwise). */
static void help_says(const char *const *argv, const char *flag, const char *want) {
    proc_result r;
    assert_int_equal(proc_run(&r, argv, NULL, 30), 0);
    assert_int_equal(r.status, 0);
    char key[64];
    snprintf(key, sizeof key, "  %s ", flag);
    const char *p = strstr(r.out, key);
    if (!p) {
        fail_msg("%s %s: no %s in --help", argv[0], argv[1], flag);
        return; /* fail_msg does not return; said for the compiler */
    }
    const char *e = strstr(p + 3, "\n  -");
    char *entry = strndup(p, e ? (size_t)(e - p) : strlen(p));
    assert_non_null(entry);
    const char *d = strstr(entry, want);
    if (!d || isdigit((unsigned char)d[strlen(want)]) || d[strlen(want)] == '.')
        fail_msg("%s %s: %s's entry does not say '%s':\n%s", argv[0], argv[1], flag, want, entry);
    free(entry);
    proc_result_release(&r);
}

/* The training defaults bench/defaults.sh chose (README "Defaults") are one set: the table's
 * (a federation's), fedc_coord_defaults (embedders) agree with them, fedc train's own (Adam at
 * 0.01) come from FEDC_OPTION_DEFAULTS, and every program's --help says its own. */
static void test_training_defaults_agree(void **state) {
    (void)state;
    coord_cfg c;
    fedc_coord_defaults(&c);
    const unsigned co = FEDC_PROG_COORD;
    assert_true(c.lr == strtof(fedc_opt_default(FEDC_O_LR, co), NULL));
    assert_int_equal(c.local_epochs, atoi(fedc_opt_default(FEDC_O_LOCAL_EPOCHS, co)));
    assert_int_equal(c.batch, atoi(fedc_opt_default(FEDC_O_BATCH, co)));
    assert_int_equal(c.rounds, atoi(fedc_opt_default(FEDC_O_ROUNDS, co)));
    assert_string_equal(fedc_opt_default(FEDC_O_OPTIMIZER, co),
                        c.optimizer == FEDC_OPT_SGD ? "sgd" : "adam");
    assert_string_equal(fedc_opt_default(FEDC_O_OPTIMIZER_STATE, co),
                        c.keep_opt_state ? "kept" : "fresh");
    char layers[64] = "";
    for (int i = 0; i < c.n_hidden; i++)
        snprintf(layers + strlen(layers), sizeof layers - strlen(layers), "%s%d", i ? "," : "",
                 c.hidden[i]);
    assert_string_equal(fedc_opt_default(FEDC_O_LAYERS, co), layers);
    /* a federation and fedc sim: the table's; fedc train: its own optimiser and rate */
    assert_string_equal(fedc_opt_default(FEDC_O_LR, FEDC_PROG_SIM),
                        fedc_opt_default(FEDC_O_LR, co));
    assert_string_equal(fedc_opt_default(FEDC_O_OPTIMIZER, FEDC_PROG_TRAIN), "adam");
    assert_string_equal(fedc_opt_default(FEDC_O_LR, FEDC_PROG_TRAIN), "0.01");
    assert_string_equal(fedc_opt_default(FEDC_O_LAYERS, FEDC_PROG_TRAIN), layers);
    char want[64];
    const char *coord_help[] = {g_coord, "--help", NULL};
    const char *sim_help[] = {g_fedc, "sim", "--help", NULL};
    const char *train_help[] = {g_fedc, "train", "--help", NULL};
    snprintf(want, sizeof want, "default %s", fedc_opt_default(FEDC_O_LR, co));
    help_says(coord_help, "--lr", want);
    help_says(sim_help, "--lr", want);
    help_says(train_help, "--lr", "default 0.01");
    help_says(sim_help, "--optimizer",
              c.optimizer == FEDC_OPT_SGD ? "default sgd" : "default adam");
    help_says(train_help, "--optimizer", "default adam");
    snprintf(want, sizeof want, "default %s", layers);
    help_says(coord_help, "--layers", want);
    help_says(train_help, "--layers", want);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s FEDC-COORDINATOR FEDC-CLIENT FEDC\n", argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    g_fedc = argv[3];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table_well_formed),
                                       cmocka_unit_test(test_help_from_table),
                                       cmocka_unit_test(test_precedence),
                                       cmocka_unit_test(test_config_errors),
                                       cmocka_unit_test(test_env_and_flag_errors),
                                       cmocka_unit_test(test_provision_and_health),
                                       cmocka_unit_test(test_unsetenv_keeps_others),
                                       cmocka_unit_test(test_version),
                                       cmocka_unit_test(test_val_fraction_one_default),
                                       cmocka_unit_test(test_training_defaults_agree)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
