/* The metrics: each round's JSON line (and the line printed for people), appended to --metrics-json
 * after the round's checkpoint, and the metrics file made to agree with the checkpoint when the
 * coordinator starts (a resumed run keeps the rounds it finished, each once). */
#define _POSIX_C_SOURCE 200809L
#include "coord_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedc/clock.h"
#include "fedc/jsonl.h"
#include "fedc/modelfile.h"

static int pred_counted(const coord *co, const client *c) {
    (void)co;
    return c->fit_counted;
}

/* {"kind": [training in, training out, evaluation in, evaluation out]} of a round's counts (bytes
 * or messages, indexed [evaluation][sent][kind]) for the kinds that moved; a kind that cannot be
 * added is left out; NULL when out of memory (fedc__json_item then fails the line). */
static cJSON *by_kind(uint64_t (*t)[2][64]) {
    cJSON *kinds = cJSON_CreateObject();
    for (int k = 0; kinds && k < 64; k++) {
        if (!t[0][0][k] && !t[0][1][k] && !t[1][0][k] && !t[1][1][k])
            continue;
        double v[4] = {(double)t[0][0][k], (double)t[0][1][k], (double)t[1][0][k],
                       (double)t[1][1][k]};
        cJSON *a = cJSON_CreateDoubleArray(v, 4);
        if (a && !cJSON_AddItemToObject(kinds, fedc_msg_kind_name((fedc_msg_kind)k), a))
            cJSON_Delete(a);
    }
    return kinds;
}

/* The round's metrics line (one JSON object without newline; cJSON_free it) from its evaluation
 * summary s, training loss and seconds and what the coordinator counted; NULL (logged) when it
 * cannot be built. Under client-level DP it also logs what the round cost. */
char *metrics_line(coord *co, const fedc_eval_summary *s, double loss, double secs) {
    double b_thr, b_alerts, b_prec, b_rec;
    fedc_eval_acc_budget(co->eval, co->cfg->alert_budget, &b_thr, &b_alerts, &b_prec, &b_rec);
    int have_b = co->task == FEDC_TASK_BINARY && s->n > 0;
    /* The overhead is the round's wall time minus the slowest client's own training time. */
    double overhead = (co->fit_done_at - co->round_t0) - co->max_fit_seconds;
    /* Keys in the order of the files written before cJSON; numbers in their old conversions
     * (%.6g for metrics, null when there is none). */
    fedc_json j;
    fedc__json_begin(&j);
    fedc__json_uint(&j, "round", co->round);
    fedc__json_int(&j, "participants", co->answered);
    fedc__json_int(&j, "selected", co->selected);
    fedc__json_num(&j, "train_loss", loss, 6);
    fedc__json_num(&j, "val_loss", s->loss, 6);
    fedc__json_num(&j, "val_roc_auc", s->roc_auc, 6);
    fedc__json_num(&j, "val_pr_auc", s->pr_auc, 6);
    fedc__json_num(&j, "val_precision", s->precision, 6);
    fedc__json_num(&j, "val_recall", s->recall, 6);
    fedc__json_num(&j, "val_accuracy", s->accuracy, 6);
    fedc__json_num(&j, "val_rmse", s->rmse, 6);
    fedc__json_uint(&j, "val_rows", (unsigned long long)s->n);
    fedc__json_num(&j, "alert_budget", co->cfg->alert_budget, 6);
    fedc__json_num(&j, "val_alert_threshold", have_b ? b_thr : NAN, 6);
    fedc__json_num(&j, "val_alert_share", have_b ? b_alerts : NAN, 6);
    fedc__json_num(&j, "val_alert_precision", have_b ? b_prec : NAN, 6);
    fedc__json_num(&j, "val_alert_recall", have_b ? b_rec : NAN, 6);
    /* the best round so far by --select-metric (best.c), null before any round counted */
    fedc__json_str(&j, "best_metric", best_metric_name(co));
    if (co->best_round > 0) {
        fedc__json_int(&j, "best_round", co->best_round);
        fedc__json_num(&j, "best_value", co->best_val, 17);
    } else {
        fedc__json_null(&j, "best_round");
        fedc__json_null(&j, "best_value");
    }
    fedc__json_fixed(&j, "seconds", secs, 4);
    /* Under secure aggregation a client's training time stays with it: no overhead figure. */
    fedc__json_num(&j, "fit_overhead_s", co->cfg->secagg ? NAN : overhead, 6);
    fedc__json_uint(&j, "bytes_in", (unsigned long long)co->bytes_in);
    fedc__json_uint(&j, "bytes_out", (unsigned long long)co->bytes_out);
    /* The evaluation's share of those, and both by message kind: {"kind": [training in, training
     * out, evaluation in, evaluation out]} for the kinds that moved (bench_scale separates the
     * update's bytes from the evaluation's with them), and the messages counted the same way. */
    uint64_t ev[2] = {0, 0};
    for (int k = 0; k < 64; k++)
        ev[0] += co->bytes_kind[1][0][k], ev[1] += co->bytes_kind[1][1][k];
    fedc__json_uint(&j, "bytes_in_eval", (unsigned long long)ev[0]);
    fedc__json_uint(&j, "bytes_out_eval", (unsigned long long)ev[1]);
    fedc__json_item(&j, "bytes_by_kind", by_kind(co->bytes_kind));
    fedc__json_item(&j, "msgs_by_kind", by_kind(co->msgs_kind));
    fedc__json_int(&j, "retries", co->retries);
    fedc__json_int(&j, "refused_keys", fedc_net_refused(co->ep));
    fedc__json_int(&j, "excluded", co->excluded_total);
    fedc__json_bool(&j, "curve", co->secure);
    fedc__json_bool(&j, "secagg", co->cfg->secagg);
    if (co->cfg->async_mode)
        async_metrics(co, &j);
    /* The rule that aggregated: an embedder's strategy by its own name. */
    fedc__json_str(&j, "aggregator",
                   co->cfg->strategy && co->cfg->strategy->name ? co->cfg->strategy->name
                                                                : agg_name(co->cfg->agg.kind));
    /* The round's bound checks: the mean update's norm (not under DP: un-noised) and the limit,
     * and whether the weights and example counts added up (null when nothing was aggregated). */
    fedc__json_num(&j, "update_norm", co->chk_norm, 6);
    fedc__json_num(&j, "update_norm_bound", co->chk_bound, 6);
    if (co->chk_weights < 0)
        fedc__json_null(&j, "weights_ok");
    else
        fedc__json_bool(&j, "weights_ok", co->chk_weights);
    /* Client-level DP: what this round cost (the accountant composes rounds 1..this one). */
    if (agg_dp_on(co)) {
        double eps = agg_epsilon(co, (double)co->round);
        fedc__json_num(&j, "dp_epsilon", eps, 6);
        fedc__json_num(&j, "dp_delta", co->cfg->dp_delta, 17);
        fedc__json_num(&j, "dp_noise", co->cfg->dp_noise, 17);
        fedc__json_num(&j, "dp_q", co->dp_q, 17);
        fedc__json_fixed(&j, "dp_rounds_charged", agg_rounds_charged(co, (double)co->round), 0);
        fedc__json_num(&j, "dp_clip", (double)co->dp_clip_used, 6);
        fedc__json_num(&j, "dp_clip_next", (double)co->dp_clip_now, 6);
        fedc__json_num(&j, "dp_unclipped_share", co->cfg->dp_adaptive ? co->dp_frac_unclipped : NAN,
                       6);
        fedc__json_int(&j, "dp_sampled", co->dp_sampled);
        fedc__json_bool(&j, "dp_noise_only", co->dp_noise_only);
        logm("round %u: client-level DP: epsilon %.3f at delta %g after %.0f round(s) charged "
             "(noise multiplier %g, sampling rate %g, clip norm %g%s)",
             co->round, eps, co->cfg->dp_delta, agg_rounds_charged(co, (double)co->round),
             co->cfg->dp_noise, co->dp_q, (double)co->dp_clip_used,
             co->cfg->dp_adaptive ? ", adaptive" : "");
    }
    /* Who took part: the clients whose update is in the aggregate (the coordinator knows who
     * sent what, never what), sorted by name; null under DP, where who was sampled must stay
     * secret. */
    if (agg_dp_on(co)) {
        fedc__json_null(&j, "clients");
    } else {
        client **names = malloc(sizeof(client *) * MAX_CLIENTS);
        cJSON *who = names ? cJSON_CreateArray() : NULL;
        int nn = who ? sorted_clients(co, names, pred_counted) : 0;
        for (int i = 0; i < nn; i++) {
            cJSON *name = cJSON_CreateString(names[i]->name);
            if (!name || !cJSON_AddItemToArray(who, name)) {
                cJSON_Delete(name);
                cJSON_Delete(who);
                who = NULL;
                break;
            }
        }
        free(names);
        fedc__json_item(&j, "clients", who);
    }
    fedc_err jrc;
    fedc_diag jd;
    char *line = fedc__json_line(&j, "the round's metrics", &jrc, &jd);
    fedc__json_end(&j);
    if (!line)
        logm("round %u: %s", co->round, jd.msg);
    return line;
}

/* The round's line on standard output (the caller checks --quiet). */
void metrics_print(const coord *co, const fedc_eval_summary *s, double loss, double secs) {
    char best[64] = "";
    if (co->best_round > 0)
        snprintf(best, sizeof best, "  best %s r%d", best_metric_name(co), co->best_round);
    /* --mode async: updates in the step out of its buffer's K (requests sent can be more) */
    const int sel = !co->cfg->async_mode  ? co->selected
                    : co->cfg->buffer > 0 ? co->cfg->buffer
                                          : co->cfg->min_fit_clients;
    if (co->task == FEDC_TASK_BINARY)
        printf("round %3u/%d  clients %d/%d  train_loss %.4f  val_roc_auc %.4f  val_pr_auc "
               "%.4f  %.3f s%s\n",
               co->round, co->cfg->rounds, co->answered, sel, loss, s->roc_auc, s->pr_auc, secs,
               best);
    else if (co->task == FEDC_TASK_MULTICLASS)
        printf("round %3u/%d  clients %d/%d  train_loss %.4f  val_accuracy %.4f  "
               "val_macro_f1 %.4f  %.3f s%s\n",
               co->round, co->cfg->rounds, co->answered, sel, loss, s->accuracy, s->macro_f1, secs,
               best);
    else
        printf("round %3u/%d  clients %d/%d  train_loss %.4f  val_rmse %.4f  val_r2 %.4f  "
               "%.3f s%s\n",
               co->round, co->cfg->rounds, co->answered, sel, loss, s->rmse, s->r2, secs, best);
    fflush(stdout);
}

/* The line of a round abandoned after unmasking began (rounds.c): no model moved, so nothing
 * was evaluated; NULL (logged) when it cannot be built. */
char *metrics_abandoned_line(coord *co) {
    fedc_json j;
    fedc__json_begin(&j);
    fedc__json_uint(&j, "round", co->round);
    fedc__json_bool(&j, "abandoned", 1);
    fedc__json_int(&j, "participants", 0);
    fedc__json_int(&j, "selected", co->selected);
    fedc__json_null(&j, "train_loss");
    fedc__json_null(&j, "val_roc_auc");
    fedc__json_fixed(&j, "seconds", fedc_clock_s() - co->round_t0, 4);
    fedc__json_int(&j, "retries", co->retries);
    fedc__json_int(&j, "excluded", co->excluded_total);
    fedc__json_bool(&j, "secagg", 1);
    fedc_err jrc;
    fedc_diag jd;
    char *line = fedc__json_line(&j, "the abandoned round's metrics", &jrc, &jd);
    fedc__json_end(&j);
    if (!line)
        logm("round %u: %s", co->round, jd.msg);
    return line;
}

/* Appends one line to the metrics file (fedc/jsonl.h: one write(2) then fsync, so a crash
 * leaves either no line or the whole line). */
int append_metrics(coord *co, const char *line) {
    if (co->metrics_fd < 0)
        return 0;
    fedc_diag d;
    if (fedc__jsonl_write(co->metrics_fd, line, co->cfg->metrics_json, &d)) {
        logm("cannot append the round's metrics: %s", d.msg);
        return -1;
    }
    return 0;
}

/* Round number of a metrics line, or -1. */
static long line_round(const char *line) {
    const char *p = strstr(line, "\"round\":");
    if (!p)
        return -1;
    return strtol(p + 8, NULL, 10);
}

/* Makes the metrics file agree with the checkpoint: complete lines of rounds up to `round`
 * only, and the checkpoint's own line if a crash came between the checkpoint and the append.
 * Without a checkpoint the file starts empty. */
int open_metrics(coord *co, uint32_t round, const char *ckpt_line) {
    const char *path = co->cfg->metrics_json;
    co->metrics_fd = -1;
    if (!path)
        return 0;
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    if (!out)
        return -1;
    out[0] = 0;
    long last = 0;
    if (round > 0) {
        FILE *f = fopen(path, "r");
        if (f) {
            char *line = NULL;
            size_t lcap = 0;
            ssize_t n;
            while ((n = getline(&line, &lcap, f)) > 0) {
                if (line[n - 1] != '\n')
                    break; /* a torn last line */
                long r = line_round(line);
                if (r < 1 || r > (long)round || r != last + 1)
                    continue;
                while (len + (size_t)n + 1 > cap) {
                    cap *= 2;
                    char *nb = realloc(out, cap);
                    if (!nb) {
                        free(out);
                        free(line);
                        fclose(f);
                        return -1;
                    }
                    out = nb;
                }
                memcpy(out + len, line, (size_t)n);
                len += (size_t)n;
                last = r;
            }
            free(line);
            fclose(f);
        }
        if (last == (long)round - 1 && ckpt_line && ckpt_line[0]) {
            size_t n = strlen(ckpt_line);
            if (len + n + 2 > cap) {
                cap = len + n + 2;
                char *nb = realloc(out, cap);
                if (!nb) {
                    free(out);
                    return -1;
                }
                out = nb;
            }
            memcpy(out + len, ckpt_line, n);
            len += n;
            out[len++] = '\n';
            last = round;
        }
        if (last != (long)round)
            logm("%s: rounds %ld..%u are missing from the metrics file and cannot be restored",
                 path, last + 1, round);
    }
    fedc_diag d;
    if (fedc_write_atomic(path, out, len, &d)) {
        logm("--metrics-json: %s", d.msg);
        free(out);
        return -1;
    }
    free(out);
    co->metrics_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (co->metrics_fd < 0) {
        logm("--metrics-json: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
