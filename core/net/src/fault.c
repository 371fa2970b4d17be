/* FEDC_FAULT parsing and the injection points (contract in fault.h). */
#define _POSIX_C_SOURCE 200809L
#include "fedc/fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_RULES 16

typedef enum fault_action { F_EXIT, F_KILL, F_STOP, F_STALL, F_DELAY, F_MISBEHAVE } fault_action;

typedef struct fault_rule {
    fault_action action;
    char step[32];
    long round; /* -1 = first time, -2 = every time (@*) */
    long ms;
    int fired;
} fault_rule;

static fault_rule g_rules[MAX_RULES];
static int g_n;

#ifdef FEDC_FAULT_HOOKS
static const char *const names[] = {"exit", "kill", "stop", "stall", "delay", "misbehave"};

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static int parse_rule(const char *r, size_t len, const char *who, fault_rule *out) {
    char buf[160];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, r, len);
    buf[len] = 0;
    char *p = buf;
    char *slash = strchr(p, '/');
    if (slash) {
        *slash = 0;
        if (strcmp(p, who) != 0)
            return 0; /* someone else's rule */
        p = slash + 1;
    }
    char *colon = strchr(p, ':');
    if (!colon)
        return -1;
    *colon = 0;
    int a = -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(p, names[i]) == 0)
            a = i;
    if (a < 0)
        return -1;
    out->action = (fault_action)a;
    char *step = colon + 1;
    char *ms = strchr(step, ':');
    if (ms)
        *ms++ = 0;
    if ((out->action == F_DELAY) != (ms != NULL))
        return -1;
    out->ms = 0;
    if (ms) {
        char *end;
        out->ms = strtol(ms, &end, 10);
        if (*end || out->ms < 0 || out->ms > 3600000)
            return -1;
    }
    char *at = strchr(step, '@');
    out->round = -1;
    if (at && strcmp(at + 1, "*") == 0) {
        *at = 0;
        out->round = -2;
    } else if (at) {
        *at++ = 0;
        char *end;
        out->round = strtol(at, &end, 10);
        if (*end || out->round < 0)
            return -1;
    }
    if (!step[0] || strlen(step) >= sizeof out->step)
        return -1;
    snprintf(out->step, sizeof out->step, "%s", step);
    out->fired = 0;
    return 1;
}
#endif

void fedc_fault_init(const char *who) {
    const char *spec = getenv("FEDC_FAULT");
    g_n = 0;
    if (!spec || !*spec)
        return;
#ifdef FEDC_FAULT_HOOKS
    const char *p = spec;
    while (*p) {
        size_t len = strcspn(p, ",");
        fault_rule r;
        int got = parse_rule(p, len, who, &r);
        if (got < 0 || (got > 0 && g_n == MAX_RULES)) {
            fprintf(stderr,
                    "%s: FEDC_FAULT: cannot use rule '%.*s' (expected "
                    "[WHO/]exit|kill|stop|stall|delay|misbehave:STEP[@ROUND|@*][:MS], at most %d "
                    "rules)\n",
                    who, (int)len, p, MAX_RULES);
            exit(2);
        }
        if (got > 0)
            g_rules[g_n++] = r;
        p += len;
        if (*p == ',')
            p++;
    }
#else
    fprintf(stderr,
            "%s: FEDC_FAULT is set but this build has no fault hooks (FEDC_FAULT_HOOKS "
            "off); ignoring it\n",
            who);
#endif
}

int fedc_fault_point(const char *step, uint32_t round) {
#ifdef FEDC_FAULT_HOOKS
    int misbehave = 0;
    for (int i = 0; i < g_n; i++) {
        fault_rule *r = &g_rules[i];
        if (r->fired || strcmp(r->step, step) != 0 || (r->round >= 0 && r->round != (long)round))
            continue;
        /* @* rules are never marked: the "train" step runs on a client's training thread, and
         * a rule it only reads is no data race with the I/O thread's points */
        if (r->round != -2)
            r->fired = 1;
        fprintf(stderr, "fault injection: %s at %s round %u\n", names[r->action], step, round);
        fflush(stderr);
        switch (r->action) {
        case F_EXIT:
            _exit(FEDC_FAULT_EXIT_CODE);
        case F_KILL:
            raise(SIGKILL);
            break;
        case F_STOP:
            raise(SIGSTOP);
            break;
        case F_STALL:
            for (;;)
                sleep_ms(1000);
        case F_DELAY:
            sleep_ms(r->ms);
            break;
        case F_MISBEHAVE:
            misbehave = 1;
            break;
        }
    }
    return misbehave;
#else
    (void)step;
    (void)round;
    (void)g_rules;
    (void)g_n;
    return 0;
#endif
}

int fedc_fault_armed(const char *step) {
#ifdef FEDC_FAULT_HOOKS
    for (int i = 0; i < g_n; i++)
        if (!g_rules[i].fired && strcmp(g_rules[i].step, step) == 0)
            return 1;
#else
    (void)step;
#endif
    return 0;
}
