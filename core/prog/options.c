/* The option table (options.h) as data, and the parser every program uses over it: flags, then
 * FEDC_ environment variables, then a --config INI file (libinih), then the defaults. --help and
 * --print-config are written by options_help.c. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "options_int.h"

#define CO FEDC_PROG_COORD
#define CL FEDC_PROG_CLIENT
#define SIM FEDC_PROG_SIM
#define DEMO FEDC_PROG_DEMO
#define TR FEDC_PROG_TRAIN
#define EV FEDC_PROG_EVAL
#define SPL FEDC_PROG_SPLIT
#define KG FEDC_PROG_KEYGEN
#define SYN FEDC_PROG_SYNTH
#define PRV FEDC_PROG_PRIVACY
#define REP FEDC_PROG_REPORT
#define PROV FEDC_PROG_PROVISION
#define HLT FEDC_PROG_HEALTH
#define FEAT FEDC_PROG_FEATURES
#define INSP FEDC_PROG_INSPECT
#define EXP FEDC_PROG_EXPORT
#define PRED FEDC_PROG_PREDICT
#define TUNE FEDC_PROG_TUNE

const fedc_opt_def fedc_opt_table[FEDC_O_COUNT] = {
#define ROW_(id, name, type, lo, hi, words, def, progs, sec, metavar, help)                        \
    [FEDC_O_##id] = {name, type, lo, hi, words, def, progs, sec, metavar, help},
    FEDC_OPTIONS(ROW_)
#undef ROW_
};

static const struct {
    unsigned bit;
    const char *section, *display;
} g_progs[] = {
#define PROG_(id, section, display) {FEDC_PROG_##id, section, display},
    FEDC_PROGRAMS(PROG_)
#undef PROG_
};

static const struct {
    unsigned prog;
    fedc_opt_id id;
    const char *def;
} g_prog_defaults[] = {
#define DEF_(prog, id, def) {FEDC_PROG_##prog, FEDC_O_##id, def},
    FEDC_OPTION_DEFAULTS(DEF_)
#undef DEF_
};

static const struct {
    fedc_opt_id id;
    const char *var_means;
} g_no_env[] = {
#define NO_ENV_(id, means) {FEDC_O_##id, means},
    FEDC_OPTION_NO_ENV(NO_ENV_)
#undef NO_ENV_
};

static const struct {
    unsigned prog;
    fedc_opt_id id;
} g_positional[] = {
#define POS_(prog, id) {FEDC_PROG_##prog, FEDC_O_##id},
    FEDC_OPTION_POSITIONAL(POS_)
#undef POS_
};

/* What FEDC_<NAME> means instead when id has no variable, else NULL. */
const char *fedc__opt_no_env_reason(fedc_opt_id id) {
    for (size_t i = 0; i < sizeof g_no_env / sizeof g_no_env[0]; i++)
        if (g_no_env[i].id == id)
            return g_no_env[i].var_means;
    return NULL;
}

int fedc_opt_has_env(fedc_opt_id id) {
    return fedc__opt_no_env_reason(id) == NULL;
}

/* The option prog's bare argument sets, or -1 when it takes none (or the table's entry names an
 * option prog does not take: a bare argument is then refused, as for every other program). */
static int positional_of(unsigned prog) {
    for (size_t i = 0; i < sizeof g_positional / sizeof g_positional[0]; i++)
        if (g_positional[i].prog == prog && (fedc_opt_table[g_positional[i].id].progs & prog))
            return (int)g_positional[i].id;
    return -1;
}

const char *fedc_prog_section(unsigned prog) {
    for (size_t i = 0; i < sizeof g_progs / sizeof g_progs[0]; i++)
        if (g_progs[i].bit == prog)
            return g_progs[i].section;
    return "?";
}

const char *fedc_prog_display(unsigned prog) {
    for (size_t i = 0; i < sizeof g_progs / sizeof g_progs[0]; i++)
        if (g_progs[i].bit == prog)
            return g_progs[i].display;
    return "?";
}

/* The programs that take an option, for "it is an option of fedc-client". */
static void prog_list(char *out, size_t cap, unsigned progs) {
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof g_progs / sizeof g_progs[0]; i++)
        if ((progs & g_progs[i].bit) && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", g_progs[i].display);
}

const char *fedc_opt_default(fedc_opt_id id, unsigned prog) {
    for (size_t i = 0; i < sizeof g_prog_defaults / sizeof g_prog_defaults[0]; i++)
        if (g_prog_defaults[i].prog == prog && g_prog_defaults[i].id == id)
            return g_prog_defaults[i].def;
    return fedc_opt_table[id].def;
}

void fedc_opt_env_name(char *out, size_t cap, const char *name) {
    size_t n = (size_t)snprintf(out, cap, "FEDC_");
    for (const char *p = name; *p && n + 1 < cap; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n < cap ? n : cap - 1] = 0;
}

const char *fedc_opt_origin(char *out, size_t cap, const fedc_opts *o, fedc_opt_id id) {
    const fedc_opt_val *v = &o->v[id];
    out[0] = 0;
    if (v->src == FEDC_SRC_ENV) {
        char env[96];
        fedc_opt_env_name(env, sizeof env, fedc_opt_table[id].name);
        snprintf(out, cap, " (environment %s)", env);
    } else if (v->src == FEDC_SRC_FILE) {
        snprintf(out, cap, " (%s:%d)", v->file, v->line);
    }
    return out;
}

static int name_is(fedc_opt_id id, const char *name, size_t len) {
    return strlen(fedc_opt_table[id].name) == len &&
           strncmp(fedc_opt_table[id].name, name, len) == 0;
}

/* The option called name of prog; else one of another program (for "an option of ..."), else
 * -1. A name is one option, except the homonyms of options.h (--model), whose programs differ. */
static int find_option(const char *name, size_t len, unsigned prog) {
    int other = -1;
    for (int i = 0; i < FEDC_O_COUNT; i++) {
        if (!name_is((fedc_opt_id)i, name, len))
            continue;
        if (fedc_opt_table[i].progs & prog)
            return i;
        if (other < 0)
            other = i;
    }
    return other;
}

/* The programs that take an option called name, under any of its meanings. */
static unsigned name_progs(const char *name, size_t len) {
    unsigned progs = 0;
    for (int i = 0; i < FEDC_O_COUNT; i++)
        if (name_is((fedc_opt_id)i, name, len))
            progs |= fedc_opt_table[i].progs;
    return progs;
}

/* Index of text among '|'-separated words, or -1. */
static int word_index(const char *words, const char *text) {
    if (!words)
        return -1;
    size_t tl = strlen(text);
    int k = 0;
    for (const char *p = words;; k++) {
        const char *e = strchr(p, '|');
        size_t wl = e ? (size_t)(e - p) : strlen(p);
        if (wl == tl && strncmp(p, text, tl) == 0)
            return k;
        if (!e)
            return -1;
        p = e + 1;
    }
}

/* "a, b or c" from "a|b|c". */
static void words_text(char *out, size_t cap, const char *words) {
    size_t n = 0, total = 1;
    for (const char *p = words; *p; p++)
        total += *p == '|';
    size_t k = 0;
    for (const char *p = words; n < cap;) {
        const char *e = strchr(p, '|');
        int wl = e ? (int)(e - p) : (int)strlen(p);
        const char *sep = k == 0 ? "" : k + 1 == total ? " or " : ", ";
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s", sep, wl, p);
        k++;
        if (!e)
            break;
        p = e + 1;
    }
}

void fedc_opt_range(char *out, size_t cap, fedc_opt_id id) {
    const fedc_opt_def *d = &fedc_opt_table[id];
    out[0] = 0;
    switch (d->type) {
    case FEDC_OT_INT:
        snprintf(out, cap, "%ld..%ld", (long)d->lo, (long)d->hi);
        break;
    case FEDC_OT_REAL:
    case FEDC_OT_REAL_P:
        /* "0 < X <= 100": the metavar between the bounds reads unambiguously inside --help's
         * brackets (the messages write the interval, "(0, 100]") */
        snprintf(out, cap, "%s%s%g %s %s <= %g", d->words ? d->words : "", d->words ? " or " : "",
                 d->lo,
                 d->type == FEDC_OT_REAL_P ? "<" : "<=", d->words || !d->metavar ? "X" : d->metavar,
                 d->hi);
        break;
    case FEDC_OT_CHOICE:
        snprintf(out, cap, "%s", d->words);
        break;
    case FEDC_OT_LIST:
        snprintf(out, cap, "widths in %ld..%ld", (long)d->lo, (long)d->hi);
        break;
    default:
        break;
    }
}

/* What a value of the option must be, for the messages. */
static void expected_text(char *out, size_t cap, fedc_opt_id id) {
    const fedc_opt_def *d = &fedc_opt_table[id];
    char w[256];
    switch (d->type) {
    case FEDC_OT_FLAG:
        snprintf(out, cap, "true or false (or 1/0, yes/no, on/off)");
        break;
    case FEDC_OT_INT:
        snprintf(out, cap, "an integer in %ld..%ld", (long)d->lo, (long)d->hi);
        break;
    case FEDC_OT_U64:
        snprintf(out, cap, "a non-negative integer");
        break;
    case FEDC_OT_REAL:
    case FEDC_OT_REAL_P:
        if (d->words)
            words_text(w, sizeof w, d->words);
        snprintf(out, cap, "%s%sa number in %s%g, %g]", d->words ? w : "", d->words ? " or " : "",
                 d->type == FEDC_OT_REAL_P ? "(" : "[", d->lo, d->hi);
        break;
    case FEDC_OT_CHOICE:
        words_text(out, cap, d->words);
        break;
    case FEDC_OT_LIST:
        snprintf(out, cap, "comma-separated layer widths in %ld..%ld (e.g. 64,32) or none",
                 (long)d->lo, (long)d->hi);
        break;
    case FEDC_OT_STR:
    case FEDC_OT_PATH:
        snprintf(out, cap, "a non-empty value");
        break;
    }
}

static int parse_bool(const char *t) {
    static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0", "no",
                                                                                "off"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(t, yes[i]) == 0)
            return 1;
        if (strcmp(t, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* Parses text as option id's value into v. Returns 0, or -1 (the value does not fit the option;
 * *too_many set when a layer list is well-formed but too long). */
static int parse_value(fedc_opt_val *v, fedc_opt_id id, const char *text, int *too_many) {
    const fedc_opt_def *d = &fedc_opt_table[id];
    char *end;
    *too_many = 0;
    switch (d->type) {
    case FEDC_OT_FLAG: {
        int b = parse_bool(text);
        if (b < 0)
            return -1;
        v->i = b;
        return 0;
    }
    case FEDC_OT_INT: {
        errno = 0;
        long x = strtol(text, &end, 10);
        if (errno || end == text || *end || x < (long)d->lo || x > (long)d->hi)
            return -1;
        v->i = x;
        return 0;
    }
    case FEDC_OT_U64: {
        if (!isdigit((unsigned char)text[0]))
            return -1;
        errno = 0;
        unsigned long long x = strtoull(text, &end, 10);
        if (errno || *end)
            return -1;
        v->u = x;
        return 0;
    }
    case FEDC_OT_REAL:
    case FEDC_OT_REAL_P: {
        int w = word_index(d->words, text);
        if (w >= 0) {
            v->i = w;
            v->r = NAN;
            return 0;
        }
        errno = 0;
        double x = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(x) || x < d->lo || x > d->hi ||
            (d->type == FEDC_OT_REAL_P && (float)x <= (float)d->lo))
            return -1;
        v->i = -1;
        v->r = x;
        return 0;
    }
    case FEDC_OT_CHOICE: {
        int w = word_index(d->words, text);
        if (w < 0)
            return -1;
        v->i = w;
        return 0;
    }
    case FEDC_OT_LIST: {
        v->n_list = 0;
        if (text[0] == 0 || strcmp(text, "none") == 0)
            return 0;
        for (const char *p = text;;) {
            errno = 0;
            long x = strtol(p, &end, 10);
            if (errno || end == p || (*end != ',' && *end != 0) || x < (long)d->lo ||
                x > (long)d->hi)
                return -1;
            if (v->n_list == FEDC_MAX_LAYERS - 1) {
                *too_many = 1;
                return -1;
            }
            v->list[v->n_list++] = (int)x;
            if (*end == 0)
                return 0;
            p = end + 1;
        }
    }
    case FEDC_OT_STR:
    case FEDC_OT_PATH:
        return text[0] ? 0 : -1;
    }
    return -1;
}

/* Sets id from text given at src (file and line for a file, else unused); prints the error
 * naming the source and returns -1 when it does not parse. */
static int set_value(fedc_opts *o, fedc_opt_id id, const char *text, fedc_opt_src src,
                     const char *file, int line) {
    fedc_opt_val nv;
    memset(&nv, 0, sizeof nv);
    int too_many;
    const fedc_opt_def *d = &fedc_opt_table[id];
    if (parse_value(&nv, id, text, &too_many)) {
        char exp[320], where[300] = "";
        if (too_many)
            snprintf(exp, sizeof exp, "at most %d hidden layers", FEDC_MAX_LAYERS - 1);
        else
            expected_text(exp, sizeof exp, id);
        if (src == FEDC_SRC_FILE) {
            cli_error(o->cmd, "%s:%d: %s: expected %s, got '%s'", file, line, d->name, exp, text);
            return -1;
        }
        if (src == FEDC_SRC_ENV) {
            char env[96];
            fedc_opt_env_name(env, sizeof env, d->name);
            snprintf(where, sizeof where, " (environment %s)", env);
        } else if (src == FEDC_SRC_DEFAULT) {
            snprintf(where, sizeof where, " (the option table's default: a bug)");
        }
        cli_error(o->cmd, "--%s: expected %s, got '%s'%s", d->name, exp, text, where);
        return -1;
    }
    nv.text = text;
    nv.src = src;
    nv.file = file;
    nv.line = line;
    o->v[id] = nv;
    return 0;
}

/* ---- --config FILE ------------------------------------------------------------------------- */

/* Values read from a config file live as long as the process, as argv's strings do: a
 * configuration points into them after the parser returns. Kept on a list reachable from here. */
typedef struct kept_str {
    struct kept_str *next;
    char s[];
} kept_str;
static kept_str *g_kept;

static const char *keep(const char *s) {
    size_t n = strlen(s) + 1;
    kept_str *k = malloc(sizeof *k + n);
    if (!k)
        return NULL;
    memcpy(k->s, s, n);
    k->next = g_kept;
    g_kept = k;
    return k->s;
}

typedef struct ini_ctx {
    fedc_opts *o;
    const char *path;
    FILE *f;
    char *buf;
    size_t cap;
    int line, errors, long_line;
    int first_line[FEDC_O_COUNT]; /* where each key was set, to refuse a second one */
    char bad_section[64];
} ini_ctx;

/* libinih's reader (config_reader): one whole line per call, counted, so that the handler knows its
 * line (the Debian library is built without INI_HANDLER_LINENO). A line longer than inih's buffer
 * is refused rather than cut into two. */
static char *config_reader(char *str, int num, void *stream) {
    ini_ctx *c = stream;
    ssize_t n = getline(&c->buf, &c->cap, c->f);
    if (n < 0)
        return NULL;
    c->line++;
    if (n >= num) {
        if (c->errors++ < 10)
            cli_error(c->o->cmd, "%s:%d: line longer than %d characters", c->path, c->line,
                      num - 1);
        str[0] = '\n';
        str[1] = 0;
        return str;
    }
    memcpy(str, c->buf, (size_t)n + 1);
    return str;
}

static const char *all_sections(void) {
    static char s[512];
    if (!s[0]) {
        size_t n = 0, k = sizeof g_progs / sizeof g_progs[0];
        for (size_t i = 0; i < k; i++)
            n += (size_t)snprintf(s + n, sizeof s - n, "%s[%s]",
                                  i == 0       ? ""
                                  : i + 1 == k ? " or "
                                               : ", ",
                                  g_progs[i].section);
    }
    return s;
}

static int config_handler(void *user, const char *section, const char *name, const char *value) {
    ini_ctx *c = user;
    fedc_opts *o = c->o;
    const char *mine = fedc_prog_section(o->prog);
#define INI_ERR(...)                                                                               \
    do {                                                                                           \
        if (c->errors++ < 10)                                                                      \
            cli_error(o->cmd, __VA_ARGS__);                                                        \
        return 1;                                                                                  \
    } while (0)
    if (!section[0])
        INI_ERR("%s:%d: '%s' is outside a section: put it under [%s] (sections: %s)", c->path,
                c->line, name, mine, all_sections());
    int known = 0;
    for (size_t i = 0; i < sizeof g_progs / sizeof g_progs[0]; i++)
        known |= strcmp(section, g_progs[i].section) == 0;
    if (!known) {
        if (strcmp(c->bad_section, section) == 0)
            return 1; /* said once per section */
        snprintf(c->bad_section, sizeof c->bad_section, "%s", section);
        INI_ERR("%s:%d: unknown section [%s] (expected %s)", c->path, c->line, section,
                all_sections());
    }
    if (strcmp(section, mine) != 0)
        return 1; /* another program's settings: one file can serve them all */
    int id = find_option(name, strlen(name), o->prog);
    if (strcmp(name, "config") == 0)
        INI_ERR("%s:%d: 'config' cannot be set in a config file", c->path, c->line);
    if (id < 0)
        INI_ERR("%s:%d: unknown key '%s' in [%s]: %s has no option --%s (keys are the options "
                "without the dashes; see %s --help)",
                c->path, c->line, name, mine, fedc_prog_display(o->prog), name,
                fedc_prog_display(o->prog));
    if (!(fedc_opt_table[id].progs & o->prog)) {
        char who[256];
        prog_list(who, sizeof who, name_progs(name, strlen(name)));
        INI_ERR("%s:%d: key '%s' in [%s]: --%s is an option of %s, not of %s", c->path, c->line,
                name, mine, name, who, fedc_prog_display(o->prog));
    }
    if (c->first_line[id])
        INI_ERR("%s:%d: '%s' set twice in [%s] (first at line %d)", c->path, c->line, name, mine,
                c->first_line[id]);
    c->first_line[id] = c->line;
    const char *v = keep(value);
    if (!v)
        INI_ERR("%s:%d: out of memory", c->path, c->line);
    if (set_value(o, (fedc_opt_id)id, v, FEDC_SRC_FILE, c->path, c->line))
        c->errors++;
    return 1;
#undef INI_ERR
}

static int read_config(fedc_opts *o, const char *path) {
    ini_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    c.path = path;
    c.f = fopen(path, "r");
    if (!c.f) {
        cli_error(o->cmd, "--config: cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(config_reader, &c, config_handler, &c);
    fclose(c.f);
    free(c.buf);
    if (rc > 0) /* the handler never fails: a line inih could not read */
        cli_error(o->cmd, "%s:%d: expected 'key = value', '[section]' or a comment", path, rc);
    else if (rc < 0 && c.errors == 0)
        cli_error(o->cmd, "--config: cannot read %s: out of memory", path);
    return rc || c.errors ? -1 : 0;
}

/* ---- the parser ----------------------------------------------------------------------------- */

int fedc_opts_parse(fedc_opts *o, unsigned prog, int argc, char **argv, const fedc_prog_help *h) {
    memset(o, 0, sizeof *o);
    o->prog = prog;
    const char *disp = fedc_prog_display(prog);
    /* cli_error prints "fedc-client: ..." for a program and "fedc sim: ..." for a command */
    o->cmd = strncmp(disp, "fedc ", 5) == 0 ? disp + 5 : disp;
    const char *flag_text[FEDC_O_COUNT] = {0};
    const char *config = NULL;
    int print = 0, positional = positional_of(prog), positional_seen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fedc__opts_print_help(stdout, o, h);
            return FEDC_EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            fedc_print_version(stdout, disp);
            return FEDC_EXIT_OK;
        }
        if (strcmp(a, "--print-config") == 0) {
            print = 1;
            continue;
        }
        if (a[0] != '-' && positional >= 0 && !positional_seen) {
            /* as if --NAME A: the later of it and a --NAME flag wins, as between two flags */
            flag_text[positional] = a;
            positional_seen = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            cli_error(o->cmd, "unexpected argument '%s' (see %s --help)", a, disp);
            return FEDC_EXIT_USAGE;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int is_config = len == 6 && strncmp(name, "config", 6) == 0;
        int id = is_config ? -1 : find_option(name, len, prog);
        if (!is_config && (id < 0 || !(fedc_opt_table[id].progs & prog))) {
            char who[256] = "";
            if (id >= 0)
                prog_list(who, sizeof who, name_progs(name, len));
            cli_error(o->cmd, "unknown option '--%.*s'%s%s%s (see %s --help)", (int)len, name,
                      id >= 0 ? " (an option of " : "", who, id >= 0 ? ")" : "", disp);
            return FEDC_EXIT_USAGE;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && !is_config && fedc_opt_table[id].type == FEDC_OT_FLAG)
            v = "true";
        if (!v) {
            if (i + 1 >= argc) {
                cli_error(o->cmd, "--%.*s: missing value", (int)len, name);
                return FEDC_EXIT_USAGE;
            }
            v = argv[++i];
        }
        if (is_config)
            config = v;
        else
            flag_text[id] = v; /* the last one given wins */
    }
    for (int id = 0; id < FEDC_O_COUNT; id++) {
        const char *def = fedc_opt_default((fedc_opt_id)id, prog);
        if ((fedc_opt_table[id].progs & prog) && def &&
            set_value(o, (fedc_opt_id)id, def, FEDC_SRC_DEFAULT, NULL, 0))
            return FEDC_EXIT_USAGE;
    }
    if (!config) {
        const char *e = getenv("FEDC_CONFIG");
        config = e && *e ? e : NULL;
    }
    if (config && read_config(o, config))
        return FEDC_EXIT_USAGE;
    for (int id = 0; id < FEDC_O_COUNT; id++) {
        if (!(fedc_opt_table[id].progs & prog) || !fedc_opt_has_env((fedc_opt_id)id))
            continue;
        char env[96];
        fedc_opt_env_name(env, sizeof env, fedc_opt_table[id].name);
        const char *e = getenv(env);
        /* An empty variable counts as unset (compose files write FEDC_X: ${FEDC_X:-}). */
        if (e && *e && set_value(o, (fedc_opt_id)id, e, FEDC_SRC_ENV, NULL, 0))
            return FEDC_EXIT_USAGE;
    }
    for (int id = 0; id < FEDC_O_COUNT; id++)
        if (flag_text[id] && set_value(o, (fedc_opt_id)id, flag_text[id], FEDC_SRC_FLAG, NULL, 0))
            return FEDC_EXIT_USAGE;
    if (print) {
        fedc__opts_print_config(stdout, o);
        return FEDC_EXIT_OK;
    }
    return -1;
}

void fedc_opts_unsetenv(void) {
    for (int id = 0; id < FEDC_O_COUNT; id++) {
        /* a variable with another meaning is no option's to clear (FEDC_COORDINATOR) */
        if (!fedc_opt_has_env((fedc_opt_id)id))
            continue;
        char env[96];
        fedc_opt_env_name(env, sizeof env, fedc_opt_table[id].name);
        unsetenv(env);
    }
    unsetenv("FEDC_CONFIG");
}
