// SPDX-License-Identifier: GPL-2.0-only
/*
 * race.c - two memory_failure() calls at once (contract C2.1), shared by
 * reproducers (mf.c's mf_race) and the guest agent (mf-race)
 *
 * Two threads wait on a barrier, then each calls memory_failure(pfn, 0)
 * through the shim's direct poison.  The shim counts the pfn_to_vma_pgoff()
 * callbacks that run at once meanwhile (HARNESS_SHIM_OVERLAP; each armed
 * callback waits HARNESS_SHIM_OVERLAP_DELAY_US, so that calls that were not
 * serialised would overlap).  Neither thread belongs to a process that maps
 * the device memory: nobody is "current" for the walk.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include "../shim/harness_shim.h"

struct race_call {
	int shim;
	unsigned long pfn;
	pthread_barrier_t *start;
	long ret;
};

static void *race_call_main(void *arg)
{
	struct race_call *c = arg;
	struct harness_shim_poison p = {
		.pfn = c->pfn, .mode = HARNESS_SHIM_POISON_CALL,
	};

	pthread_barrier_wait(c->start);
	c->ret = ioctl(c->shim, HARNESS_SHIM_POISON, &p) ? -errno : 0;
	return NULL;
}

/*
 * Returns the first call's error if a call failed, else the most callbacks
 * that ran at once (C2.1: at most 1), or -errno if the race could not run.
 */
long mf_race_calls(int shim, unsigned long pfn)
{
	struct harness_shim_overlap o = { .flags = HARNESS_SHIM_OVERLAP_ARM };
	struct race_call c[2];
	pthread_barrier_t start;
	pthread_t th[2];
	long ret = 0;
	int i, n, err;

	if (ioctl(shim, HARNESS_SHIM_OVERLAP, &o))
		return -errno;
	err = pthread_barrier_init(&start, NULL, 2);
	if (err)
		return -err;
	for (n = 0; n < 2; n++) {
		c[n] = (struct race_call){ .shim = shim, .pfn = pfn, .start = &start };
		err = pthread_create(&th[n], NULL, race_call_main, &c[n]);
		if (err)
			break;
	}
	if (n < 2) {
		/* Open the barrier for the thread that started, if one did. */
		if (n == 1)
			pthread_barrier_wait(&start);
		ret = -err;
	}
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	o.flags = 0;
	if (ioctl(shim, HARNESS_SHIM_OVERLAP, &o) && !ret)
		ret = -errno;
	if (ret)
		return ret;
	if (c[0].ret)
		return c[0].ret;
	if (c[1].ret)
		return c[1].ret;
	return o.max;
}
