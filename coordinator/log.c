/* The coordinator's log: plain lines (logm) and lines about one peer (logp), rate-limited per peer
 * and kind of line so that a peer flooding the coordinator with bad messages cannot flood the log.
 * The event loop (coord.c) ends the windows that are over (plog_tick) and wakes up for them
 * (plog_next_due). */
#include "coord_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fedc/clock.h"
#include "fedc/log.h"

/* Log lines about one peer: one kind of line at most once per window, then a summary. */
#define LOG_WINDOW_S 5.0

/* The log configuration of the coordinator running on this thread (log_bind): each coordinator
 * runs on its own thread, so several in one process keep their own levels and formats without
 * every logm call naming its coordinator. */
static _Thread_local const fedc_log_cfg *tl_log;

void log_bind(const coord_cfg *cfg) {
    tl_log = cfg ? &cfg->log : NULL;
}

#define LOG_AT(fn, level)                                                                          \
    void fn(const char *fmt, ...) {                                                                \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        fedc_logv(tl_log, level, PROG, NULL, fmt, ap);                                             \
        va_end(ap);                                                                                \
    }
LOG_AT(logm, FEDC_LOG_INFO)
LOG_AT(logw, FEDC_LOG_WARN)
LOG_AT(loge, FEDC_LOG_ERROR)
LOG_AT(logd, FEDC_LOG_DEBUG)
#undef LOG_AT

/* A peer that floods the coordinator with bad or extra messages must not flood the log: each kind
 * of line (its format) about one peer (its connection) is printed the first time, then counted
 * for LOG_WINDOW_S; a window that counted any ends with one line "N more messages like this from
 * PEER suppressed" quoting the latest, and a window without any forgets the entry. Up to
 * PEER_LOG_MAX (peer, kind) pairs are tracked; beyond that the oldest is summarised and replaced.
 */
static void plog_summary(peer_log *e, double t) {
    if (e->suppressed > 0)
        logm("%ld more message(s) like this from %s suppressed in the last %.0f s (the latest: "
             "%s)",
             e->suppressed, e->who, t - e->since, e->last);
    e->suppressed = 0;
    e->since = t;
}

void logp(coord *co, const fedc_peer *p, const char *who, const char *fmt, ...) {
    char text[FEDC_DIAG_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (!co->plog || !p || !p->len) {
        logm("%s", text);
        return;
    }
    double t = fedc_clock_s();
    peer_log *e = NULL, *unused = NULL, *oldest = NULL;
    for (int i = 0; i < PEER_LOG_MAX && !e; i++) {
        peer_log *x = &co->plog[i];
        if (!x->peer.len) {
            unused = unused ? unused : x;
        } else if (x->kind == fmt && x->peer.len == p->len &&
                   memcmp(x->peer.id, p->id, p->len) == 0) {
            e = x;
        } else if (!oldest || x->since < oldest->since) {
            oldest = x;
        }
    }
    if (!e) {
        e = unused;
        if (!e) {
            e = oldest;
            plog_summary(e, t);
        }
        memset(e, 0, sizeof *e);
        e->peer = *p;
        e->kind = fmt;
        e->since = t;
        snprintf(e->who, sizeof e->who, "%s", who);
        logm("%s", text);
        return;
    }
    snprintf(e->who, sizeof e->who, "%s", who);
    if (t - e->since >= LOG_WINDOW_S) {
        if (e->suppressed == 0) {
            e->since = t;
            logm("%s", text);
            return;
        }
        plog_summary(e, t);
    }
    e->suppressed++;
    size_t k = strlen(text);
    if (k >= sizeof e->last) { /* cut, marked as cut */
        k = sizeof e->last - 4;
        memcpy(e->last + k, "...", 4);
    } else {
        e->last[k] = '\0';
    }
    memcpy(e->last, text, k);
}

/* Ends the windows that are over: a summary line where lines were held back, else the entry is
 * forgotten. Called from the event loop. */
void plog_tick(coord *co) {
    double t = fedc_clock_s();
    for (int i = 0; co->plog && i < PEER_LOG_MAX; i++) {
        peer_log *e = &co->plog[i];
        if (!e->peer.len || t - e->since < LOG_WINDOW_S)
            continue;
        if (e->suppressed > 0)
            plog_summary(e, t);
        else
            memset(e, 0, sizeof *e);
    }
}

/* Summarises whatever is held back (at the end of the run). */
void plog_flush(coord *co) {
    double t = fedc_clock_s();
    for (int i = 0; co->plog && i < PEER_LOG_MAX; i++)
        if (co->plog[i].peer.len)
            plog_summary(&co->plog[i], t);
}

/* The earliest end of a log window before `due` (plog_tick acts then), else `due`: for the event
 * loop's poll timeout. */
double plog_next_due(const coord *co, double due) {
    for (int i = 0; co->plog && i < PEER_LOG_MAX; i++)
        if (co->plog[i].peer.len && co->plog[i].since + LOG_WINDOW_S < due)
            due = co->plog[i].since + LOG_WINDOW_S;
    return due;
}
