// SPDX-License-Identifier: GPL-2.0-only
/*
 * kmsg.c - kernel failure reports from /dev/kmsg
 *
 * A WARN, BUG, oops, panic, hung task, soft lockup or RCU stall is a failure
 * in its own right, whatever the contract predicts for the op.  The
 * reproducer reads the kernel log records the step produced; a failure is an
 * observation line ("failure warn \"WARNING: ...\""), which no expected line
 * matches, and the records that follow it are printed as diagnostics.  After
 * anything worse than a WARN the kernel cannot be trusted: the run stops.
 */
#include "repro.h"

static int kmsg_fd = -1;

/* Set when the kernel is stuck or crashed: the rest of the run is void. */
int kernel_broken;

/* From now on: records before the reproducer started are not its own. */
void kmsg_open(void)
{
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg_fd >= 0)
		lseek(kmsg_fd, 0, SEEK_END);
}

/* The failure kind of a kernel log message, or NULL. */
static const char *kmsg_failure(const char *msg)
{
	static const char *const pattern[][2] = {
		{ "Kernel panic", "panic" }, { "Oops", "oops" },
		{ "BUG:", "bug" }, { "WARNING:", "warn" }, { "KASAN", "kasan" },
		{ "hung task", "hang" }, { "blocked for more than", "hang" },
		{ "soft lockup", "lockup" }, { "rcu: INFO:", "rcu-stall" },
	};
	unsigned int i;

	for (i = 0; i < sizeof(pattern) / sizeof(pattern[0]); i++)
		if (strstr(msg, pattern[i][0]))
			return pattern[i][1];
	return NULL;
}

/* The step's kernel failures; 1 if the kernel is broken (worse than WARN). */
int kmsg_collect(void)
{
	static int shown = -1;
	char rec[1024];
	ssize_t n;

	while (kmsg_fd >= 0 &&
	       ((n = read(kmsg_fd, rec, sizeof(rec) - 1)) > 0 || errno == EPIPE)) {
		const char *msg, *kind;

		if (n <= 0)
			continue;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		rec[n - (rec[n - 1] == '\n')] = '\0';
		kind = kmsg_failure(msg);
		if (kind) {
			obs_line("failure %s \"%.300s\"", kind, msg);
			kernel_broken |= strcmp(kind, "warn") != 0;
			shown = 0;
		}
		if (kind || (shown >= 0 && shown < 40)) {
			printf("# kernel: %s\n", msg);
			shown += shown >= 0;
		}
	}
	return kernel_broken;
}
