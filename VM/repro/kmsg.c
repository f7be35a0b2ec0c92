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

/* Memory-failure log lines not yet reported by mf_log() (C2.7), as "mf" lines. */
static char mf_log_lines[MAX_LINES][96];
static int mf_log_n;

/* Keeps a "Memory failure: 0x<pfn>: recovery action for <type>: <Result>" line. */
static void kmsg_mf_line(const char *msg)
{
	unsigned long long pfn;
	char type[64], result[32];
	int i;

	if (strncmp(msg, "Memory failure: ", 16) || mf_log_n == MAX_LINES ||
	    sscanf(msg + 16, "%llx: recovery action for %63[^:]: %31s", &pfn,
		   type, result) != 3)
		return;
	for (i = 0; result[i]; i++)
		if (result[i] >= 'A' && result[i] <= 'Z')
			result[i] += 'a' - 'A';
	snprintf(mf_log_lines[mf_log_n++], sizeof(mf_log_lines[0]),
		 "mf pfn=0x%llx type=%d result=%s", pfn,
		 strcmp(type, "non struct page pfn") ? -1 : 20, result);
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
		kmsg_mf_line(msg);
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

/* The memory-failure log lines since the last call, as "mf" lines (C2.7). */
long mf_log(long unused0, long unused1, long unused2, long unused3)
{
	int i;

	(void)unused0;
	(void)unused1;
	(void)unused2;
	(void)unused3;
	kmsg_collect();
	for (i = 0; i < mf_log_n; i++)
		obs_line("%s", mf_log_lines[i]);
	mf_log_n = 0;
	return 0;
}
