#include "deadline.h"

#include <errno.h>

double deadline_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timespec deadline_after(double seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (seconds < 0)
		seconds = 0;
	time_t whole = (time_t)seconds;
	long long ns = ts.tv_nsec + (long long)((seconds - (double)whole) * 1e9);
	ts.tv_sec += whole + (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	return ts;
}

bool deadline_thread_cpu(pthread_t thread, double *seconds)
{
	clockid_t clock;
	struct timespec ts;
	if (pthread_getcpuclockid(thread, &clock) != 0 || clock_gettime(clock, &ts) != 0)
		return false;
	*seconds = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	return true;
}

void deadline_sleep(double seconds)
{
	if (seconds <= 0)
		return;
	time_t whole = (time_t)seconds;
	struct timespec ts = {.tv_sec = whole, .tv_nsec = (long)((seconds - (double)whole) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int deadline_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc = pthread_condattr_init(&attr);
	if (rc != 0)
		return rc;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return rc;
}

bool deadline_wait(pthread_cond_t *cond, pthread_mutex_t *mu, const struct timespec *until)
{
	return pthread_cond_timedwait(cond, mu, until) == ETIMEDOUT;
}
