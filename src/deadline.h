/* deadline: time on the monotonic clock, which the wall clock's jumps do
 * not move. Every timeout, wait and elapsed time in gcs is measured here. */
#ifndef GCS_DEADLINE_H
#define GCS_DEADLINE_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

/* Seconds since an arbitrary fixed point. */
double deadline_now(void);

/* The moment `seconds` from now, for deadline_wait. */
struct timespec deadline_after(double seconds);

/* The CPU time thread has used, in seconds; false when it cannot be read. */
bool deadline_thread_cpu(pthread_t thread, double *seconds);

/* Sleeps `seconds`, resuming after a signal. */
void deadline_sleep(double seconds);

/* Makes a condition variable whose timed waits use the monotonic clock. */
int deadline_cond_init(pthread_cond_t *cond);

/* pthread_cond_timedwait on a condition made by deadline_cond_init; true
 * once `until` has passed. */
bool deadline_wait(pthread_cond_t *cond, pthread_mutex_t *mu, const struct timespec *until);

#endif
