// SPDX-License-Identifier: GPL-2.0-only
/*
 * trace.c - memory-failure events from tracefs
 *
 * ras:memory_failure_event gives one record per memory_failure() call
 * (pfn, page type, result).  Kretprobes say when the asynchronous paths are
 * done, so that a reproducer waits for them instead of sleeping:
 * memory_failure_work_func() (memory_failure_queue()), mce_gen_pool_process()
 * (a machine check's notifiers, memory_failure() included).  A third one on
 * memory_failure() gives its return value to an op whose thread was killed
 * on the way back from the system call (a forced BUS_MCEERR_AR).
 */
#include "repro.h"

#define TRACEFS		"/sys/kernel/tracing"
#define MCE_DEADLINE_MS	10000

static int trace_fd = -1;
static char trace_buf[1 << 16];
static size_t trace_len;
static long last_mf_ret;
static int have_mf_ret;

static const char *const mf_types[] = {
	"reserved kernel page", "high-order kernel page", "0x2", "huge page",
	"free huge page", "get hwpoison page", "unmapping failed page",
	"dirty swapcache page", "clean swapcache page",
	"dirty mlocked LRU page", "clean mlocked LRU page",
	"dirty unevictable LRU page", "clean unevictable LRU page",
	"dirty LRU page", "clean LRU page", "already truncated LRU page",
	"free buddy page", "dax page", "unsplit thp", "already poisoned",
	"non struct page pfn", "unknown page",
};

static void trace_write(const char *file, const char *text)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), TRACEFS "/%s", file);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd >= 0 && write(fd, text, strlen(text)) < 0)
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Enables the event and the kretprobes, empties the buffer, opens the pipe. */
void trace_open(void)
{
	if (access(TRACEFS "/trace_pipe", F_OK))
		mount("tracefs", TRACEFS, "tracefs", 0, NULL);
	trace_write("kprobe_events",
		    "r:repro/mf_ret memory_failure ret=$retval:s32\n");
	trace_write("kprobe_events", "r:repro/mfq_ret memory_failure_work_func\n");
	trace_write("kprobe_events", "r:repro/mce_ret mce_gen_pool_process\n");
	trace_write("events/repro/enable", "1\n");
	trace_write("events/ras/memory_failure_event/enable", "1\n");
	close(open(TRACEFS "/trace", O_WRONLY | O_TRUNC | O_CLOEXEC));
	trace_fd = open(TRACEFS "/trace_pipe", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (trace_fd < 0)
		skip_all("cannot read " TRACEFS "/trace_pipe (tracefs, CONFIG_FTRACE)");
}

/* One record: an event line for the step, or a probe; 1 if it is `want`. */
static int trace_record(const char *line, const char *want)
{
	const char *at = strstr(line, " memory_failure_event: pfn ");
	const char *type, *res;
	char result[16];
	unsigned int i;
	size_t n;

	if (want && strstr(line, want))
		return 1;
	if (strstr(line, " mf_ret: ") && strstr(line, " ret=")) {
		last_mf_ret = strtol(strstr(line, " ret=") + 5, NULL, 0);
		have_mf_ret = 1;
	}
	if (!at)
		return 0;
	type = strstr(at, ": recovery action for ");
	res = type ? strstr(type + 22, ": ") : NULL;
	if (!res) {
		obs_line("failure trace \"unparsed record: %.200s\"", line);
		return 0;
	}
	n = res - type - 22;
	for (i = 0; i < sizeof(mf_types) / sizeof(mf_types[0]); i++)
		if (strlen(mf_types[i]) == n && !strncmp(type + 22, mf_types[i], n))
			break;
	/* "Recovered" -> "recovered", as the harness prints results */
	for (n = 0; n < sizeof(result) - 1 && res[2 + n] > ' '; n++)
		result[n] = (char)(res[2 + n] | 0x20);
	result[n] = '\0';
	obs_line("mf pfn=0x%llx type=%d result=%s", strtoull(at + 27, NULL, 16),
		 i < sizeof(mf_types) / sizeof(mf_types[0]) ? (int)i : -1,
		 result);
	return 0;
}

/* Reads what the pipe has, waiting up to ms for a record with want in it. */
static int trace_read(const char *want, int ms)
{
	struct pollfd p = { .fd = trace_fd, .events = POLLIN };
	int found = 0;

	while (!found) {
		ssize_t n = read(trace_fd, trace_buf + trace_len,
				 sizeof(trace_buf) - trace_len - 1);
		char *line = trace_buf, *nl;

		if (n <= 0) {
			/* a signal handler may interrupt the poll: go on */
			if (!want || ms <= 0)
				break;
			poll(&p, 1, 20);
			ms -= 20;
			continue;
		}
		trace_len += n;
		trace_buf[trace_len] = '\0';
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			found |= trace_record(line, want);
			line = nl + 1;
		}
		trace_len -= line - trace_buf;
		memmove(trace_buf, line, trace_len);
	}
	return found;
}

/*
 * The step's events, after waiting for the work it queued or the machine
 * check it raised; -1 if that never came.
 */
int trace_collect(int wait)
{
	int ret = 0;

	have_mf_ret = 0;
	if (wait & WAIT_QUEUE)
		ret = trace_read(" mfq_ret: ", OP_DEADLINE_MS) ? 0 : -1;
	if (wait & WAIT_MCE)
		ret = trace_read(" mce_ret: ", MCE_DEADLINE_MS) ? 0 : -1;
	trace_read(NULL, 0);
	return ret;
}

/*
 * What an inject answers when its thread died before it could: what
 * memory_failure() returned (hard_offline_page maps -EOPNOTSUPP to 0).
 */
long trace_died_ret(int sysfs)
{
	if (!have_mf_ret)
		return -ESRCH;
	if (sysfs && last_mf_ret == -EOPNOTSUPP)
		return 0;
	return last_mf_ret;
}
