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

	for (i = 0; i < ARRAY_SIZE(pattern); i++)
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

/* The kernel log from the program's start on, for mf_log() (C2.7). */
static int mf_log_fd = -1;

void mf_log_open(void)
{
	mf_log_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (mf_log_fd >= 0)
		lseek(mf_log_fd, 0, SEEK_END);
}

/*
 * The "Memory failure: 0x<pfn>: recovery action for <type>: <Result>" lines
 * logged since the last call, as "mf" lines (type 20 for "non struct page
 * pfn", else -1).
 */
long mf_log(long unused0, long unused1, long unused2, long unused3)
{
	unsigned long long pfn;
	char rec[1024], type[64], result[32];
	const char *msg;
	ssize_t n;
	int i;

	(void)unused0;
	(void)unused1;
	(void)unused2;
	(void)unused3;
	if (mf_log_fd < 0)
		return -ENODEV;
	while ((n = read(mf_log_fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		if (!msg || strncmp(msg + 1, "Memory failure: ", 16) ||
		    sscanf(msg + 17, "%llx: recovery action for %63[^:]: %31s",
			   &pfn, type, result) != 3)
			continue;
		for (i = 0; result[i]; i++)
			if (result[i] >= 'A' && result[i] <= 'Z')
				result[i] += 'a' - 'A';
		obs_line("mf pfn=0x%llx type=%d result=%s", pfn,
			 strcmp(type, "non struct page pfn") ? -1 : 20, result);
	}
	return 0;
}
