// SPDX-License-Identifier: GPL-2.0-only
/*
 * Output buffers, errno and signal names, clocks, small file helpers, channels.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			b->len += n;
			return;
		}
		b->cap = (b->cap ? 2 * b->cap : 4096) + (size_t)n;
		b->data = realloc(b->data, b->cap);
		if (!b->data) {
			fprintf(stderr, "agent: out of memory\n");
			exit(1);
		}
	}
}

void buf_append(struct buf *b, const struct buf *from)
{
	if (from->len)
		buf_printf(b, "%.*s", (int)from->len, from->data);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
}

/* The names the host's vocabulary knows (Sources/Reference/Vocabulary). */
static const struct {
	int err;
	const char *name;
} errno_names[] = {
	{ EPERM, "EPERM" },	{ ENOENT, "ENOENT" },	{ ESRCH, "ESRCH" },
	{ EINTR, "EINTR" },	{ EIO, "EIO" },		{ ENXIO, "ENXIO" },
	{ E2BIG, "E2BIG" },	{ EBADF, "EBADF" },	{ EAGAIN, "EAGAIN" },
	{ ENOMEM, "ENOMEM" },	{ EACCES, "EACCES" },	{ EFAULT, "EFAULT" },
	{ EBUSY, "EBUSY" },	{ EEXIST, "EEXIST" },	{ ENODEV, "ENODEV" },
	{ EINVAL, "EINVAL" },	{ EMFILE, "EMFILE" },	{ ENOTTY, "ENOTTY" },
	{ ENOSPC, "ENOSPC" },	{ ERANGE, "ERANGE" },	{ ENOSYS, "ENOSYS" },
	{ EOVERFLOW, "EOVERFLOW" },	{ EOPNOTSUPP, "EOPNOTSUPP" },
	{ EADDRINUSE, "EADDRINUSE" },	{ ETIMEDOUT, "ETIMEDOUT" },
	{ ECANCELED, "ECANCELED" },
};

/* "-EINVAL" for -22, "-N" for numbers without a name. */
const char *errno_name(long err, char *tmp, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(errno_names); i++) {
		if (errno_names[i].err == -err) {
			snprintf(tmp, len, "-%s", errno_names[i].name);
			return tmp;
		}
	}
	snprintf(tmp, len, "%ld", err);
	return tmp;
}

const char *signal_name(int sig, char *tmp, size_t len)
{
	static const char *const names[] = {
		[SIGHUP] = "SIGHUP",	[SIGINT] = "SIGINT",
		[SIGQUIT] = "SIGQUIT",	[SIGILL] = "SIGILL",
		[SIGTRAP] = "SIGTRAP",	[SIGABRT] = "SIGABRT",
		[SIGBUS] = "SIGBUS",	[SIGFPE] = "SIGFPE",
		[SIGKILL] = "SIGKILL",	[SIGUSR1] = "SIGUSR1",
		[SIGSEGV] = "SIGSEGV",	[SIGUSR2] = "SIGUSR2",
		[SIGPIPE] = "SIGPIPE",	[SIGALRM] = "SIGALRM",
		[SIGTERM] = "SIGTERM",
	};

	if (sig > 0 && sig < (int)(ARRAY_SIZE(names)) &&
	    names[sig])
		return names[sig];
	snprintf(tmp, len, "%d", sig);
	return tmp;
}

/*
 * One step of a bounded wait for another task.  The guest kernel has no
 * high-resolution timers (a sleep lasts a 4 ms tick): yield first, the task
 * waited for usually needs only the CPU.
 */
void wait_step(int step)
{
	struct timespec ms = { .tv_nsec = 1000000 };

	if (step < 1000)
		sched_yield();
	else
		nanosleep(&ms, NULL);
}

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 0, or -errno.  Retries short writes and EINTR. */
int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* Reads up to len - 1 bytes, NUL terminated; returns the length or -errno. */
int read_file(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, out, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	out[n] = '\0';
	close(fd);
	return n;
}

/* One write() of the whole text: 0 if all of it was taken, else -errno. */
int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(text);
	ssize_t n;
	int ret;

	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	ret = n < 0 ? -errno : (size_t)n == len ? 0 : -EIO;
	close(fd);
	return ret;
}

/* Two packet-mode pipes; both ends close on exec.  0 or -errno. */
int chan_open(struct chan *agent_end, struct chan *thread_end)
{
	int cmd[2], reply[2];

	if (pipe2(cmd, O_DIRECT | O_CLOEXEC))
		return -errno;
	if (pipe2(reply, O_DIRECT | O_CLOEXEC)) {
		int ret = -errno;

		close(cmd[0]);
		close(cmd[1]);
		return ret;
	}
	*agent_end = (struct chan) { .rx = reply[0], .tx = cmd[1] };
	*thread_end = (struct chan) { .rx = cmd[0], .tx = reply[1] };
	return 0;
}

void chan_close(struct chan *c)
{
	if (c->rx >= 0)
		close(c->rx);
	if (c->tx >= 0)
		close(c->tx);
	*c = CHAN_NONE;
}
