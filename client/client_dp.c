/* Record-level DP-SGD at the client: the plan of each round (the noise multiplier derived once
 * from --target-epsilon for every planned round, and whether the budget allows this round), the
 * privacy spent after it, and --dp-state, which carries the steps spent across restarts. */
#include "client_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fedc/modelfile.h"

/* --dp-state: the privacy spent so far, as text: "fedc-dp-state 1", then "steps N", "q Q",
 * "sigma S" (full precision). Returns 0 (loaded, or no file yet), or -1 after logging why. */
int cl_dp_state_load(cl *c) {
    const char *path = c->cfg->dp_state;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        cl_logm(c, "--dp-state %s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    char magic[32] = "";
    long steps = -1;
    double q = -1, sigma = -1;
    int ok = fscanf(f, "%31s 1 steps %ld q %lf sigma %lf", magic, &steps, &q, &sigma) == 4 &&
             strcmp(magic, "fedc-dp-state") == 0 && steps >= 0 && q > 0 && q <= 1 && sigma > 0 &&
             isfinite(sigma);
    fclose(f);
    if (!ok) {
        cl_logm(c,
                "--dp-state %s: not a DP state file (expected \"fedc-dp-state 1\", then steps, q "
                "and sigma); refusing to guess how much privacy was spent",
                path);
        return -1;
    }
    if (c->cfg->dp_noise > 0 && (float)sigma != c->cfg->dp_noise) {
        cl_logm(c,
                "--dp-state %s: the steps so far used noise multiplier %.17g, not --dp-noise %g; "
                "the accountant cannot mix them",
                path, sigma, (double)c->cfg->dp_noise);
        return -1;
    }
    c->dp_steps = steps;
    c->dp_q = q;
    c->dp_sigma = (float)sigma;
    cl_logm(c,
            "--dp-state %s: %ld DP-SGD step(s) spent already (sampling rate %.6g, noise multiplier "
            "%.6g)",
            path, steps, q, sigma);
    return 0;
}

static int dp_state_save(cl *c) {
    char buf[256];
    int len = snprintf(buf, sizeof buf, "fedc-dp-state 1\nsteps %ld\nq %.17g\nsigma %.17g\n",
                       c->dp_steps, c->dp_q, (double)c->dp_sigma);
    fedc_diag d;
    if (fedc_write_atomic(c->cfg->dp_state, buf, (size_t)len, &d)) {
        cl_logm(c,
                "--dp-state: %s; not training any more (the privacy spent could not be recorded)",
                d.msg);
        return -1;
    }
    return 0;
}

/* Record-level DP-SGD for one round of local training: the noise multiplier (derived from
 * --target-epsilon for all planned rounds on the first), and whether the budget allows this
 * round. Returns 0 to train, -1 when it must not (said and logged). */
int cl_dp_plan(cl *c, uint32_t round, const fedc_hyper *hp) {
    const client_cfg *cfg = c->cfg;
    int n = (int)c->rows.fit_rows;
    double q = n > 0 ? (double)hp->batch / n : 1.0;
    q = q > 1.0 ? 1.0 : q;
    long per_round = (long)hp->local_epochs * (long)((n + (int)hp->batch - 1) / (int)hp->batch);
    fedc_diag d;
    char why[FEDC_DIAG_MAX + 160];
    if (c->dp_steps > 0 && fabs(q - c->dp_q) > 1e-12 * q) {
        snprintf(why, sizeof why,
                 "DP-SGD: this round samples at rate %.6g, the %ld step(s) so far at %.6g (another "
                 "batch size or data); the accountant cannot mix them: not training",
                 q, c->dp_steps, c->dp_q);
        cl_refuse_fit(c, round, FEDC_EINVAL, why);
        c->dp_exhausted = 1;
        return -1;
    }
    if (c->dp_sigma <= 0) {
        double sigma = cfg->dp_noise;
        if (sigma < 0) {
            double steps = (double)per_round * (double)(c->rounds > 0 ? c->rounds : 1);
            if (fedc_dp_sigma_for(&sigma, q, steps, cfg->dp_delta, cfg->target_epsilon, &d)) {
                snprintf(why, sizeof why, "DP-SGD: --target-epsilon %g: %s", cfg->target_epsilon,
                         d.msg);
                cl_refuse_fit(c, round, FEDC_EINVAL, why);
                c->dp_exhausted = 1;
                return -1;
            }
            cl_logm(c,
                    "DP-SGD: noise multiplier %.4f keeps %d round(s) of %ld step(s) at sampling "
                    "rate %.4g within epsilon %g (delta %g)",
                    sigma, c->rounds, per_round, q, cfg->target_epsilon, cfg->dp_delta);
        }
        c->dp_sigma = (float)sigma;
        if ((double)c->dp_sigma < sigma) /* never below what the target needs */
            c->dp_sigma = nextafterf(c->dp_sigma, INFINITY);
    }
    if (cfg->target_epsilon > 0) {
        double eps = NAN, order = 0;
        if (c->dp_exhausted) {
            snprintf(why, sizeof why,
                     "privacy budget spent: our DP-SGD epsilon allows no more training "
                     "(--target-epsilon %g)",
                     cfg->target_epsilon);
            cl_refuse_fit(c, round, FEDC_ERANGE, why);
            return -1;
        }
        if (fedc_dp_epsilon(&eps, &order, q, c->dp_sigma, (double)(c->dp_steps + per_round),
                            cfg->dp_delta, &d) ||
            eps > cfg->target_epsilon) {
            snprintf(why, sizeof why,
                     "privacy budget spent: round %u would bring our DP-SGD epsilon to %.3f, "
                     "beyond --target-epsilon %g; not training any more",
                     round, eps, cfg->target_epsilon);
            cl_refuse_fit(c, round, FEDC_ERANGE, why);
            c->dp_exhausted = 1;
            return -1;
        }
    }
    return 0;
}

/* A round of DP-SGD was trained: its steps are spent (and recorded in --dp-state before the
 * update can leave; a failure to record stops further training) and the epsilon so far is
 * logged. Returns that epsilon for the metrics line (NaN when the accountant cannot say). */
double cl_dp_spend(cl *c, const job *j) {
    double eps = NAN;
    c->dp_steps += j->dp_steps;
    c->dp_q = j->dp_q;
    if (c->cfg->dp_state && dp_state_save(c))
        c->dp_exhausted = 1;
    double order = 0;
    fedc_diag dd;
    if (fedc_dp_epsilon(&eps, &order, c->dp_q, c->dp_sigma, (double)c->dp_steps, c->cfg->dp_delta,
                        &dd) == FEDC_OK)
        cl_logm(c,
                "round %u: DP-SGD epsilon %.3f at delta %g after %ld step(s) (sampling rate %.4g, "
                "noise multiplier %.4g, clip %g)",
                j->round, eps, c->cfg->dp_delta, c->dp_steps, c->dp_q, (double)c->dp_sigma,
                (double)c->cfg->dp_clip);
    return eps;
}
