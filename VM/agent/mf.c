// SPDX-License-Identifier: GPL-2.0-only
/*
 * Memory-failure helpers: System RAM from /proc/iomem, which PFNs may be
 * poisoned, and the tracefs records of memory_failure():
 *
 *  - ras:memory_failure_event, one per memory_failure() call (contract
 *    C2.7, docs/contract.md), reported as "mf pfn=... type=... result=...";
 *  - harness/mf_ret, a kretprobe on memory_failure() giving its return
 *    value, used only when the calling thread's process died before it
 *    could report the value itself (a forced SIGBUS kills it on the way
 *    back from the system call).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "agent.h"

#define TRACEFS		"/sys/kernel/tracing"
#define MF_EVENT	TRACEFS "/events/ras/memory_failure_event/enable"
#define MF_RET_PROBE	"r:harness/mf_ret memory_failure ret=$retval:s32\n"
#define MF_RET_ENABLE	TRACEFS "/events/harness/mf_ret/enable"
/* A queued soft offline emits no event: its return ends inject-queue's wait. */
#define SO_RET_PROBE	"r:harness/so_ret soft_offline_page ret=$retval:s32\n"
#define SO_RET_ENABLE	TRACEFS "/events/harness/so_ret/enable"
/*
 * The ends of the two asynchronous paths, so that the console can be
 * synchronised with a marker (op "mark"): everything the kernel printed
 * for a queued failure or a machine check is in the log before these return
 * (action_result() prints after the event, the MCE notifiers after
 * memory_failure() returns).
 */
#define MFQ_RET_PROBE	"r:harness/mfq_ret memory_failure_work_func\n"
#define MFQ_RET_ENABLE	TRACEFS "/events/harness/mfq_ret/enable"
#define MCE_RET_PROBE	"r:harness/mce_ret mce_gen_pool_process\n"
#define MCE_RET_ENABLE	TRACEFS "/events/harness/mce_ret/enable"

int ram_load(struct agent *a)
{
	FILE *f = fopen("/proc/iomem", "re");
	char line[256];

	a->nram = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long first, last;
		int name = 0;

		if (sscanf(line, " %llx-%llx : %n", &first, &last, &name) < 2 ||
		    !name)
			continue;
		if (strcmp(line + name, "System RAM\n"))
			continue;
		if (a->nram == MAX_RAM)
			break;
		a->ram[a->nram].first = first;
		a->ram[a->nram].last = last;
		a->nram++;
	}
	fclose(f);
	return 0;
}

/*
 * Harness rule: a PFN may be poisoned iff its 128 MiB section holds no
 * System RAM (so it is no RAM either).  Without a RAM map (not root, no
 * /proc/iomem) nothing is injectable; neither is a PFN whose physical
 * address does not fit in 64 bits.
 */
bool pfn_injectable(const struct agent *a, uint64_t pfn)
{
	uint64_t section = pfn >> SECTION_PFN_SHIFT;
	int i;

	if (!a->nram || pfn > (UINT64_MAX >> PAGE_SHIFT_X86))
		return false;
	for (i = 0; i < a->nram; i++) {
		uint64_t lo = a->ram[i].first >> PAGE_SHIFT_X86;
		uint64_t hi = a->ram[i].last >> PAGE_SHIFT_X86;

		if (section >= lo >> SECTION_PFN_SHIFT &&
		    section <= hi >> SECTION_PFN_SHIFT)
			return false;
	}
	return true;
}

/*
 * Harness rule: a machine check reports its address in MCi_ADDR, which
 * holds a physical address of the CPU's width (bits above it are reserved),
 * so an MCE is injected only where the address fits that width.
 */
bool pfn_mce_injectable(const struct agent *a, uint64_t pfn)
{
	if (a->phys_bits <= PAGE_SHIFT_X86 || a->phys_bits >= 64)
		return false;
	return pfn_injectable(a, pfn) &&
	       pfn >> (a->phys_bits - PAGE_SHIFT_X86) == 0;
}

/* "address sizes : 40 bits physical, 48 bits virtual" of the first CPU. */
int cpu_phys_bits(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];
	int bits = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (colon && !strncmp(line, "address sizes", 13) &&
		    sscanf(colon + 1, " %d bits physical", &bits) == 1)
			break;
	}
	fclose(f);
	return bits;
}

/* Page types as the 7.3 tracepoint prints them (enum mf_action_page_type). */
static const char *const mf_page_types[] = {
	"reserved kernel page",		/* MF_MSG_KERNEL */
	"high-order kernel page",	/* MF_MSG_KERNEL_HIGH_ORDER */
	"",	/* MF_MSG_DIFFERENT_COMPOUND: printed as 0x2 */
	"huge page",
	"free huge page",
	"get hwpoison page",
	"unmapping failed page",
	"dirty swapcache page",
	"clean swapcache page",
	"dirty mlocked LRU page",
	"clean mlocked LRU page",
	"dirty unevictable LRU page",
	"clean unevictable LRU page",
	"dirty LRU page",
	"clean LRU page",
	"already truncated LRU page",
	"free buddy page",
	"dax page",
	"unsplit thp",
	"already poisoned",
	"non struct page pfn",		/* MF_MSG_PFN_MAP = 20 */
	"unknown page",
};

static const char *const mf_results[] = {
	"ignored", "failed", "delayed", "recovered",
};

/* "non struct page pfn" -> 20; "0x2" (not in the print table) -> 2. */
static int mf_page_type(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mf_page_types); i++) {
		if (strlen(mf_page_types[i]) == len &&
		    !strncmp(s, mf_page_types[i], len))
			return (int)i;
	}
	if (len > 2 && s[0] == '0' && s[1] == 'x')
		return (int)strtol(s, NULL, 16);
	return -1;
}

static const char *mf_result(const char *s)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mf_results); i++) {
		if (!strcasecmp(s, mf_results[i]))
			return mf_results[i];
	}
	return NULL;
}

/* The pid of "comm-1234 [000] ....: event:", found left of at. */
static pid_t trace_pid(const char *line, const char *at)
{
	const char *p = at;

	while (p > line && *p != '[')
		p--;
	while (p > line && p[-1] == ' ')
		p--;
	while (p > line && p[-1] >= '0' && p[-1] <= '9')
		p--;
	if (p == line || p[-1] != '-')
		return -1;
	return (pid_t)strtol(p, NULL, 10);
}

static void trace_event(struct agent *a, const char *line, const char *at)
{
	const char *type, *colon, *res;
	struct mf_event *e;
	char result[32];
	char *end;

	if (a->nevents == MAX_EVENTS) {
		agent_error(a, "more than %d memory-failure events", MAX_EVENTS);
		return;
	}
	e = &a->event[a->nevents];
	e->pfn = strtoull(at, &end, 16);
	type = strstr(end, ": recovery action for ");
	if (!type)
		goto raw;
	type += strlen(": recovery action for ");
	colon = strstr(type, ": ");
	if (!colon)
		goto raw;
	res = colon + 2;
	snprintf(result, sizeof(result), "%.*s", (int)strcspn(res, "\n "), res);
	e->type = mf_page_type(type, colon - type);
	e->result = mf_result(result);
	if (e->type < 0 || !e->result)
		goto raw;
	a->nevents++;
	return;
raw:
	agent_error(a, "unparsed trace record: %s", line);
}

static void trace_ret(struct agent *a, const char *line, const char *at)
{
	const char *r = strstr(at, " ret=");

	if (!r || a->nmf_ret == MAX_EVENTS)
		return;
	a->mf_ret[a->nmf_ret].pid = trace_pid(line, at);
	a->mf_ret[a->nmf_ret].ret = strtol(r + 5, NULL, 0);
	a->nmf_ret++;
}

static void trace_line(struct agent *a, const char *line)
{
	const char *at;

	at = strstr(line, " memory_failure_event: pfn ");
	if (at) {
		trace_event(a, line, at + strlen(" memory_failure_event: pfn "));
		return;
	}
	at = strstr(line, " mf_ret: ");
	if (at) {
		trace_ret(a, line, at);
		return;
	}
	if (strstr(line, " so_ret: "))
		a->nso_ret++;
	else if (strstr(line, " mfq_ret: "))
		a->nmfq_ret++;
	else if (strstr(line, " mce_ret: "))
		a->nmce_ret++;
}

/* Reads what trace_pipe has, waiting up to timeout_ms for the first byte. */
void trace_poll(struct agent *a, int timeout_ms)
{
	struct pollfd pfd = { .fd = a->trace_fd, .events = POLLIN };
	char chunk[4096];

	if (a->trace_fd < 0)
		return;
	if (timeout_ms > 0)
		poll(&pfd, 1, timeout_ms);

	for (;;) {
		ssize_t n = read(a->trace_fd, chunk, sizeof(chunk));
		ssize_t i;

		if (n <= 0)
			return;
		for (i = 0; i < n; i++) {
			char c = chunk[i];

			if (c != '\n') {
				if (a->trace_partial_len <
				    sizeof(a->trace_partial) - 1)
					a->trace_partial[a->trace_partial_len++] = c;
				continue;
			}
			a->trace_partial[a->trace_partial_len] = '\0';
			trace_line(a, a->trace_partial);
			a->trace_partial_len = 0;
		}
	}
}

/* Waits until a memory_failure_event for pfn has been read. */
bool trace_wait_pfn(struct agent *a, uint64_t pfn, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int i;

	if (a->trace_fd < 0)
		return false;
	for (;;) {
		int64_t left;

		for (i = 0; i < a->nevents; i++) {
			if (a->event[i].pfn == pfn)
				return true;
		}
		left = deadline - now_ms();
		if (left <= 0)
			return false;
		trace_poll(a, left < 20 ? (int)left : 20);
	}
}

/*
 * Waits until soft_offline_page() has returned in this op (a queued soft
 * offline: no memory_failure_event comes).  Without the kretprobe, waits for
 * pfn's event as for any other queued failure.
 */
bool trace_wait_soft_offline(struct agent *a, uint64_t pfn, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	if (!a->have_so_kretprobe)
		return trace_wait_pfn(a, pfn, timeout_ms);
	for (;;) {
		int64_t left;

		if (a->nso_ret)
			return true;
		left = deadline - now_ms();
		if (left <= 0)
			return false;
		trace_poll(a, left < 20 ? (int)left : 20);
	}
}

/* Waits until *count is nonzero (a record of this op), up to timeout_ms. */
static bool trace_wait_count(struct agent *a, const int *count, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		int64_t left;

		if (*count)
			return true;
		left = deadline - now_ms();
		if (left <= 0)
			return false;
		trace_poll(a, left < 20 ? (int)left : 20);
	}
}

/* Waits until the queue's worker (memory_failure_work_func) has returned. */
bool trace_wait_queue_done(struct agent *a, int timeout_ms)
{
	return a->have_mfq_kretprobe &&
	       trace_wait_count(a, &a->nmfq_ret, timeout_ms);
}

/* Waits until the MCE notifier work (mce_gen_pool_process) has returned. */
bool trace_wait_mce_done(struct agent *a, int timeout_ms)
{
	return a->have_mce_kretprobe &&
	       trace_wait_count(a, &a->nmce_ret, timeout_ms);
}

/*
 * Has the console print what the kernel logged now rather than at the next
 * tick.  The serial console is an nbcon console: its printing thread is
 * woken by a lazy irq_work, which (no NO_HZ) runs at the next timer tick, up
 * to 4 ms later with HZ=250, while the guest sits idle.  A trace record
 * written while a trace_pipe reader is registered (poll, which sets the ring
 * buffer's waiters_pending) queues the ring buffer's wakeup, an ordinary
 * irq_work: its self-IPI runs the lazy irq_works too, and so wakes the
 * printing thread at once.  The record ("harness: flush") is not one that
 * trace_line() reads.  Without trace_pipe or trace_marker nothing is done.
 */
static void console_kick(struct agent *a)
{
	static const char text[] = "harness: flush\n";
	struct pollfd pfd = { .fd = a->trace_fd, .events = POLLIN };

	if (a->trace_fd < 0 || a->marker_fd < 0)
		return;
	poll(&pfd, 1, 0);
	if (write(a->marker_fd, text, sizeof(text) - 1) < 0)
		return;
}

/*
 * Writes "harness: mark TOKEN" to the kernel log (level err, so that a
 * quiet console prints it; needs printk.devkmsg=on, else /dev/kmsg writes
 * are rate limited).  Everything logged before it reaches the console first.
 */
int console_mark(struct agent *a, const char *token)
{
	char line[128];
	int fd, ret;

	snprintf(line, sizeof(line), "<3>harness: mark %s\n", token);
	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = write_all(fd, line, strlen(line));
	close(fd);
	if (!ret)
		console_kick(a);
	return ret;
}

/*
 * The kernel log, for mf-log (C2.7): from the agent's start, or the last
 * reset, on.  Each "Memory failure: 0x<pfn>: recovery action for <type>:
 * <Result>" line becomes an "mf" line; "non struct page pfn" is type 20,
 * any other type name -1.
 */
void mflog_open(struct agent *a)
{
	a->kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (a->kmsg_fd >= 0)
		lseek(a->kmsg_fd, 0, SEEK_END);
}

static void mflog_line(struct agent *a, const char *msg)
{
	static const char prefix[] = "Memory failure: ";
	unsigned long long pfn;
	char type[64], result[32];
	int i;

	if (strncmp(msg, prefix, sizeof(prefix) - 1) ||
	    sscanf(msg + sizeof(prefix) - 1,
		   "%llx: recovery action for %63[^:]: %31s", &pfn, type,
		   result) != 3)
		return;
	for (i = 0; result[i]; i++)
		result[i] = (char)tolower((unsigned char)result[i]);
	buf_printf(&a->mf, "mf pfn=0x%llx type=%d result=%s\n", pfn,
		   strcmp(type, "non struct page pfn") ? -1 : 20, result);
}

/* Reads every record logged since; reports the memory-failure ones if asked. */
void mflog_read(struct agent *a, bool report)
{
	char rec[1024];
	ssize_t n;

	while (a->kmsg_fd >= 0) {
		const char *msg;

		n = read(a->kmsg_fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE) {
			if (report)
				agent_error(a, "kernel log records were overwritten before mf-log read them");
			continue;
		}
		if (n <= 0)
			break;
		rec[n] = '\0';
		rec[n - (rec[n - 1] == '\n')] = '\0';
		msg = strchr(rec, ';');
		if (report && msg)
			mflog_line(a, msg + 1);
	}
}

/* HardwareCorrupted of /proc/meminfo in kB, or -1 when absent. */
long corrupted_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "HardwareCorrupted: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* The return of the last memory_failure() that pid called in this op. */
bool mf_ret_of(const struct agent *a, pid_t pid, long *ret)
{
	int i;

	for (i = a->nmf_ret - 1; i >= 0; i--) {
		if (a->mf_ret[i].pid == pid) {
			*ret = a->mf_ret[i].ret;
			return true;
		}
	}
	return false;
}

/* The op's "mf" lines; forgets the op's records. */
void trace_report(struct agent *a)
{
	int i;

	trace_poll(a, 0);
	for (i = 0; i < a->nevents; i++)
		buf_printf(&a->mf, "mf pfn=0x%llx type=%d result=%s\n",
			   (unsigned long long)a->event[i].pfn,
			   a->event[i].type, a->event[i].result);
	a->nevents = 0;
	a->nmf_ret = 0;
	a->nso_ret = 0;
	a->nmfq_ret = 0;
	a->nmce_ret = 0;
}

static int trace_append(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = write_all(fd, text, strlen(text));
	close(fd);
	return ret;
}

/* Defines a kretprobe event (one that exists already is fine) and enables it. */
static bool kretprobe_setup(const char *definition, const char *enable)
{
	int ret = trace_append(TRACEFS "/kprobe_events", definition);

	if (ret && ret != -EEXIST && ret != -EBUSY)
		return false;
	return !write_file(enable, "1\n");
}

/*
 * Enables the tracepoint (and the kretprobes if kprobe events exist),
 * empties the buffer, opens trace_pipe.  Only in the guest: the caller
 * does not trace the host it is tested on.
 */
int trace_setup(struct agent *a)
{
	int ret, fd;

	a->trace_fd = -1;
	if (access(TRACEFS "/trace_pipe", F_OK))
		mount("tracefs", TRACEFS, "tracefs", 0, NULL);

	ret = write_file(MF_EVENT, "1\n");
	if (ret) {
		fprintf(stderr, "agent: cannot enable %s: %s\n", MF_EVENT,
			strerror(-ret));
		return ret;
	}

	a->have_kretprobe = kretprobe_setup(MF_RET_PROBE, MF_RET_ENABLE);
	a->have_so_kretprobe = kretprobe_setup(SO_RET_PROBE, SO_RET_ENABLE);
	a->have_mfq_kretprobe = kretprobe_setup(MFQ_RET_PROBE, MFQ_RET_ENABLE);
	a->have_mce_kretprobe = kretprobe_setup(MCE_RET_PROBE, MCE_RET_ENABLE);

	fd = open(TRACEFS "/trace", O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd >= 0)
		close(fd);

	a->trace_fd = open(TRACEFS "/trace_pipe",
			   O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (a->trace_fd < 0) {
		ret = -errno;
		fprintf(stderr, "agent: cannot open trace_pipe: %s\n",
			strerror(-ret));
		return ret;
	}
	/* Optional: console_mark() only flushes the console sooner with it. */
	a->marker_fd = open(TRACEFS "/trace_marker", O_WRONLY | O_CLOEXEC);
	return 0;
}
