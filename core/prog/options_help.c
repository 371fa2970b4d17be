/* --help, generated from the option table (options.h) for one program, and --print-config, every
 * effective value with where it came from; the parser in options.c calls them. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "options_int.h"

/* The titles of the --help sections, in FEDC_SECTIONS order. */
static const char *const g_section_title[] = {
#define SEC_(id, title) title,
    FEDC_SECTIONS(SEC_)
#undef SEC_
};

/* Writes text wrapped to 79 columns from column col, continuation lines indented to ind; tail
 * (a range and default) is appended as one unbreakable piece. */
static void wrap(FILE *f, int col, int ind, const char *text, const char *tail) {
    const int width = 79;
    const char *p = text;
    int first = 1;
    for (;;) {
        while (*p == ' ')
            p++;
        const char *w = p;
        int wl;
        if (*p) {
            while (*p && *p != ' ')
                p++;
            wl = (int)(p - w);
        } else if (tail && tail[0]) {
            w = tail;
            wl = (int)strlen(tail);
            tail = NULL;
        } else {
            break;
        }
        if (!first && col + 1 + wl > width) {
            fprintf(f, "\n%*s", ind, "");
            col = ind;
        } else if (!first) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", wl, w);
        col += wl;
        first = 0;
    }
    fputc('\n', f);
}

/* "[1..1000000; default 20]", "[default 256]", "" */
static void bracket(char *out, size_t cap, fedc_opt_id id, unsigned prog) {
    char range[160];
    fedc_opt_range(range, sizeof range, id);
    const char *def = fedc_opt_default(id, prog);
    if (fedc_opt_table[id].type == FEDC_OT_FLAG)
        def = NULL; /* a flag is off unless given */
    if (range[0] && def)
        snprintf(out, cap, "[%s; default %s]", range, def);
    else if (range[0])
        snprintf(out, cap, "[%s]", range);
    else if (def)
        snprintf(out, cap, "[default %s]", def);
    else
        out[0] = 0;
}

static void print_opt_line(FILE *f, const char *flag, const char *metavar, const char *help,
                           const char *tail) {
    char head[96];
    snprintf(head, sizeof head, "  %s%s%s", flag, metavar ? " " : "", metavar ? metavar : "");
    int col = (int)strlen(head);
    fputs(head, f);
    if (col >= 26) {
        fprintf(f, "\n%*s", 27, "");
    } else {
        fprintf(f, "%*s", 27 - col, "");
    }
    wrap(f, 27, 27, help, tail);
}

void fedc__opts_print_help(FILE *f, const fedc_opts *o, const fedc_prog_help *h) {
    fprintf(f, "%s\n\n%s\n", h->usage, h->intro);
    for (int s = 0; s < FEDC_SEC_COUNT; s++) {
        int any = 0;
        for (int id = 0; id < FEDC_O_COUNT; id++) {
            const fedc_opt_def *d = &fedc_opt_table[id];
            if (!(d->progs & o->prog) || (int)d->section != s)
                continue;
            if (!any)
                fprintf(f, "\n%s:\n", g_section_title[s]);
            any = 1;
            char flag[64], tail[200];
            snprintf(flag, sizeof flag, "--%s", d->name);
            bracket(tail, sizeof tail, (fedc_opt_id)id, o->prog);
            print_opt_line(f, flag, d->metavar, d->help, tail);
        }
    }
    char sec[96];
    snprintf(sec, sizeof sec, "read options from the [%s] section of FILE (INI; also FEDC_CONFIG)",
             fedc_prog_section(o->prog));
    fprintf(f, "\ngeneral:\n");
    print_opt_line(f, "--config", "FILE", sec, NULL);
    print_opt_line(f, "--print-config", NULL,
                   "print every option's effective value and where it came from, then exit", NULL);
    print_opt_line(f, "--version", NULL,
                   "version, git commit, build type and the CPU's instruction sets", NULL);
    print_opt_line(f, "-h, --help", NULL, "this message", NULL);
    fprintf(f, "\nEvery option can also be set with the environment variable FEDC_<OPTION> (upper\n"
               "case, '-' as '_': FEDC_MIN_CLIENTS) or in the --config file; a flag beats the\n"
               "environment, which beats the file, which beats the default.\n");
    /* the exceptions, so that nobody sets a variable this program never reads */
    for (int id = 0; id < FEDC_O_COUNT; id++) {
        const char *means = fedc__opt_no_env_reason((fedc_opt_id)id);
        if (!(fedc_opt_table[id].progs & o->prog) || !means)
            continue;
        char env[96], text[512];
        fedc_opt_env_name(env, sizeof env, fedc_opt_table[id].name);
        snprintf(text, sizeof text, "Except --%s: %s names %s.", fedc_opt_table[id].name, env,
                 means);
        wrap(f, 0, 0, text, NULL);
    }
    if (h->outro)
        fprintf(f, "\n%s\n", h->outro);
}

void fedc__opts_print_config(FILE *f, const fedc_opts *o) {
    fprintf(f, "# %s: every option's effective value and where it came from\n[%s]\n",
            fedc_prog_display(o->prog), fedc_prog_section(o->prog));
    for (int id = 0; id < FEDC_O_COUNT; id++) {
        const fedc_opt_def *d = &fedc_opt_table[id];
        const fedc_opt_val *v = &o->v[id];
        if (!(d->progs & o->prog))
            continue;
        char line[512], src[300];
        if (v->text)
            snprintf(line, sizeof line, "%s = %s", d->name,
                     d->type == FEDC_OT_FLAG ? (v->i ? "true" : "false") : v->text);
        else
            snprintf(line, sizeof line, "; %s (unset)", d->name);
        switch (v->src) {
        case FEDC_SRC_DEFAULT:
            snprintf(src, sizeof src, "default");
            break;
        case FEDC_SRC_FILE:
            snprintf(src, sizeof src, "file %s:%d", v->file, v->line);
            break;
        case FEDC_SRC_ENV: {
            char env[96];
            fedc_opt_env_name(env, sizeof env, d->name);
            snprintf(src, sizeof src, "env %s", env);
            break;
        }
        case FEDC_SRC_FLAG:
            snprintf(src, sizeof src, "flag");
            break;
        }
        fprintf(f, "%-40s ; %s\n", line, src);
    }
}
