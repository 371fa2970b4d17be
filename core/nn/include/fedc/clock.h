/* The one clock of fedc: seconds on the monotonic clock (CLOCK_MONOTONIC), for deadlines,
 * timeouts and durations. Never the wall clock: it jumps. */
#ifndef FEDC_CLOCK_H
#define FEDC_CLOCK_H

/* Seconds since an arbitrary fixed point, monotonic, nanosecond resolution. */
double fedc_clock_s(void);

#endif
