// SPDX-License-Identifier: GPL-2.0-only
/*
 * The stuck-op watcher: a thread of the agent that notices when an op keeps
 * a task spinning in the kernel.
 *
 * The guest kernel is preemptible (PREEMPT_LAZY).  A task that loops in the
 * kernel without sleeping (a PFN-space tree whose nodes link back to
 * themselves: findings 0005 and 0009) neither answers nor trips the
 * soft-lockup detector, and the host would wait out its op deadline (15 s).
 * Instead, once an op has run for WATCH_START_MS, this thread reads the
 * system time (stime, /proc/PID/task/TID/stat) of the agent's threads and of
 * every thread of its children every WATCH_STEP_MS.  A thread that spent at
 * least 4/5 of a WATCH_WINDOW_MS window in the kernel, or was found in
 * uninterruptible sleep (D) at every sample of the window, is stuck: no op
 * of the vocabulary keeps the kernel busy for more than milliseconds, and
 * the agent's own waits sleep interruptibly.  A gap of more than
 * WATCH_GAP_MS between two samples restarts the window: QEMU was not
 * running the guest (a busy host), and the guest's periodic tick charges
 * the ticks it missed to whatever task was current, as if it had run.  A
 * task that really loops lets the watcher sample on time (the kernel
 * preempts it).
 *
 * The watcher then copies the stuck thread's kernel stack
 * (/proc/PID/task/TID/stack) to the console through /dev/kmsg ("harness:
 * stuck ..." lines, ending with "harness: stuck end") and writes "stuck TID
 * state=S stime=MS window=MS" to the control port; the host ends the op
 * there, as a hang, and restores the guest.
 *
 * The op's answer and the stuck line never cross: the main thread ends the
 * watch (watch_end()) under the lock before it writes the answer, and the
 * watcher writes only while the op it watches is still running.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define WATCH_START_MS	200	/* an op younger than this is not sampled */
#define WATCH_STEP_MS	100
#define WATCH_WINDOW_MS	1000
#define WATCH_GAP_MS	300	/* a longer gap between samples restarts the window */
#define WATCH_TASKS	256	/* threads followed per window */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int out;		/* the control port */
	uint64_t gen;		/* ops begun */
	int64_t started;	/* ms; 0: no op runs */
} watch = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

struct sample {
	pid_t pid;
	pid_t tid;
	long stime;		/* clock ticks */
	char state;
	bool always_d;		/* in D at every sample of the window so far */
};

static long clk_tck;

/*
 * Field 3 (state) follows the ")" that ends comm, field 4 (ppid) is the
 * first number after it, field 15 (stime) the 12th.
 */
static bool read_stat(const char *path, char *state, long *stime,
		      pid_t *ppid)
{
	char text[512], *p;
	long v[16];
	int fd, i;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	p = strrchr(text, ')');
	if (!p || p[1] != ' ' || !p[2])
		return false;
	*state = p[2];
	p += 3;			/* ") S " */
	for (i = 0; i < 12; i++) {
		v[i] = strtol(p, &p, 10);
		if (*p != ' ')
			return false;
	}
	*ppid = (pid_t)v[0];
	*stime = v[11];
	return true;
}

/* The threads of the agent and of its children, with their stime. */
static int sample_tasks(struct sample *s, int max)
{
	pid_t self = getpid();
	struct dirent *d, *t;
	DIR *proc, *task;
	char path[64];
	int n = 0;

	proc = opendir("/proc");
	if (!proc)
		return 0;
	while ((d = readdir(proc)) && n < max) {
		pid_t pid = (pid_t)atoi(d->d_name), ppid;
		long stime;
		char state;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (!read_stat(path, &state, &stime, &ppid) ||
		    (pid != self && ppid != self))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task", pid);
		task = opendir(path);
		if (!task)
			continue;
		while ((t = readdir(task)) && n < max) {
			pid_t tid = (pid_t)atoi(t->d_name);

			if (tid <= 0 || tid == gettid())
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%d/stat",
				 pid, tid);
			if (read_stat(path, &state, &stime, &ppid))
				s[n++] = (struct sample) {
					.pid = pid,
					.tid = tid,
					.stime = stime,
					.state = state,
					.always_d = state == 'D',
				};
		}
		closedir(task);
	}
	closedir(proc);
	return n;
}

/* The thread's kernel stack to the console, one frame per line. */
static void log_stack(const struct sample *s, long ms, long window)
{
	char path[64], text[4096], line[256];
	int fd, kmsg;
	ssize_t n;
	char *p, *nl;

	kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (kmsg < 0)
		return;
	snprintf(line, sizeof(line),
		 "<4>harness: stuck pid %d tid %d: %ld of the last %ld ms in the kernel, stack:\n",
		 s->pid, s->tid, ms, window);
	write_all(kmsg, line, strlen(line));
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", s->pid, s->tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
	if (fd >= 0)
		close(fd);
	text[n > 0 ? n : 0] = '\0';
	for (p = text; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			break;
		*nl = '\0';
		snprintf(line, sizeof(line), "<4>harness: stuck   %.200s\n", p);
		write_all(kmsg, line, strlen(line));
	}
	snprintf(line, sizeof(line), "<4>harness: stuck end\n");
	write_all(kmsg, line, strlen(line));
	close(kmsg);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * Samples the op of generation gen until it ends or a thread is found
 * stuck; called and returns with the lock held.
 */
static void watch_op(uint64_t gen)
{
	static struct sample base[WATCH_TASKS], now[WATCH_TASKS];
	int64_t since = 0, last = 0;
	int nbase = 0;

	for (;;) {
		int64_t t = now_ms(), wait = watch.started + WATCH_START_MS - t;
		long ms, window;
		int i, j, n;

		if (since)
			wait = WATCH_STEP_MS;
		pthread_mutex_unlock(&watch.lock);
		if (wait > 0)
			sleep_ms(wait);
		/*
		 * An op that ended during the sleep is not sampled: reading
		 * every task's stat takes milliseconds under TCG, and the
		 * sleep outlasts most ops.
		 */
		pthread_mutex_lock(&watch.lock);
		if (watch.gen != gen || !watch.started)
			return;
		pthread_mutex_unlock(&watch.lock);
		n = sample_tasks(now, WATCH_TASKS);
		t = now_ms();
		pthread_mutex_lock(&watch.lock);
		if (watch.gen != gen || !watch.started)
			return;
		if (!since || t - last > WATCH_GAP_MS) {
			memcpy(base, now, n * sizeof(now[0]));
			nbase = n;
			since = last = t;
			continue;
		}
		last = t;
		for (j = 0; j < nbase; j++) {
			for (i = 0; i < n && now[i].tid != base[j].tid; i++)
				;
			base[j].always_d &= i < n && now[i].state == 'D';
		}
		if (t - since < WATCH_WINDOW_MS)
			continue;
		for (i = 0; i < n; i++) {
			for (j = 0; j < nbase && base[j].tid != now[i].tid; j++)
				;
			if (j == nbase)
				continue;
			ms = (now[i].stime - base[j].stime) * 1000 / clk_tck;
			window = (long)(t - since);

			if (5 * ms >= 4 * window || base[j].always_d) {
				char line[96];

				log_stack(&now[i], ms, window);
				snprintf(line, sizeof(line),
					 "stuck %d state=%c stime=%ld window=%ld\n",
					 now[i].tid, now[i].state, ms, window);
				write_all(watch.out, line, strlen(line));
				watch.started = 0;	/* once per op */
				return;
			}
		}
		memcpy(base, now, n * sizeof(now[0]));	/* next window */
		nbase = n;
		since = last = t;
	}
}

static void *watch_main(void *arg)
{
	uint64_t done = 0;	/* the last op watched */

	(void)arg;
	pthread_mutex_lock(&watch.lock);
	for (;;) {
		while (!watch.started || watch.gen == done)
			pthread_cond_wait(&watch.cond, &watch.lock);
		done = watch.gen;
		watch_op(done);
	}
	return NULL;
}

/* Starts the watcher thread; out is the control port.  0 or -errno. */
int watch_init(int out)
{
	pthread_t thread;
	int ret;

	clk_tck = sysconf(_SC_CLK_TCK);
	if (clk_tck <= 0)
		clk_tck = 100;
	watch.out = out;
	ret = pthread_create(&thread, NULL, watch_main, NULL);
	if (ret)
		return -ret;
	pthread_detach(thread);
	return 0;
}

/* An op begins: watch it. */
void watch_begin(void)
{
	pthread_mutex_lock(&watch.lock);
	watch.gen++;
	watch.started = now_ms();
	pthread_cond_broadcast(&watch.cond);
	pthread_mutex_unlock(&watch.lock);
}

/* The op ends: nothing about it may be written after this returns. */
void watch_end(void)
{
	pthread_mutex_lock(&watch.lock);
	watch.started = 0;
	pthread_cond_broadcast(&watch.cond);
	pthread_mutex_unlock(&watch.lock);
}
