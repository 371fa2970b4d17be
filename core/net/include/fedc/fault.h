/* Fault injection for tests (docs/architecture.md, "Fault injection"): kill, stop, stall or delay a
 * program at an exact protocol step instead of racing a timer.
 *
 * FEDC_FAULT holds comma-separated rules WHO/ACTION:STEP[@ROUND|@*][:MS]:
 *   WHO     the program's role: "coordinator" or a client's --name (omit "WHO/" to match all)
 *   ACTION  exit (calls _exit(FEDC_FAULT_EXIT_CODE)), kill (raises SIGKILL), stop (raises SIGSTOP,
 *           a frozen process that keeps its connections), stall (sleeps forever), delay (sleeps MS
 *           milliseconds and goes on), misbehave (the program does its test-only misdeed for
 *           that step and goes on, so tests can watch honest peers refuse or recover). Client
 *           misdeeds: sa-replay (replays its previous masked input), sa-badkeys (advertises round
 *           keys its identity did not sign), sa-silent (from then on heartbeats but answers no
 *           secure-aggregation instruction), upd-scale (x100), upd-flip (sign flipped), upd-nan
 *           (a NaN and an infinity), upd-zero (all zero), upd-weight (overstates its FedAvg
 *           weight 4x), for the robust-aggregation, bounds and DP tests. Coordinator misdeeds:
 * sa-forge (relays a forged round key), sa-one (sends a client a neighbourhood of itself with
 * threshold 1), sa-split (tells one survivor a survivor set without another member), sa-retry
 * (discards an unmasked training sum and retries the round), sa-wrap (drops a session and reuses
 * its counter) STEP    a named point, e.g. join, stats, fit, train (the training thread, after the
 * fit: delay:train@*:MS makes a slow client; only @* rules there), fit-res, eval-res (client);
 * round-start, aggregate, eval-sent, checkpoint (coordinator); secure aggregation (client):
 * sa-share (the neighbours' keys arrived: exiting here drops out before ShareKeys), sa-mask (the
 * neighbours' shares arrived, so ours were delivered: exiting here drops out right after
 * ShareKeys), sa-fit-mask (the same, in a training session only: under --mode async evaluation
 * sessions come between them), sa-unmask (our masked input was delivered) ROUND   only in that
 * round (default: the first time the step is reached); @* every time e.g.
 * FEDC_FAULT=bank-b/kill:fit@2,bank-a/delay:fit-res:300 The hooks are compiled in only with the
 * CMake option FEDC_FAULT_HOOKS (on for builds with tests); otherwise a set FEDC_FAULT is reported
 * once and ignored. */
#ifndef FEDC_FAULT_H
#define FEDC_FAULT_H

#include <stdint.h>

#define FEDC_FAULT_EXIT_CODE 86

/* Reads FEDC_FAULT and keeps the rules for `who`. A malformed rule is reported on stderr and
 * makes the program exit 2 (a test that sets a typo must not pass by doing nothing). */
void fedc_fault_init(const char *who);

/* Applies the matching rules at a step of a round (0 outside rounds). Returns 1 when a misbehave
 * rule fired (the caller then misbehaves), else 0. */
int fedc_fault_point(const char *step, uint32_t round);

/* 1 when a rule for this step is waiting to fire (so a program keeps what a misdeed needs). */
int fedc_fault_armed(const char *step);

#endif
