// SPDX-License-Identifier: GPL-2.0-only
/*
 * task.c - logical processes and threads of a sequence
 *
 * Every logical thread ("task") serves a channel of its own, two pipes made
 * before anything forks: the coordinator (main) writes a request, the task
 * runs it in its own context and answers with the return value and the
 * SIGBUS signals its handler recorded since its last answer.  A task blocks
 * in read() between requests, so a signal sent to it runs the handler there
 * (SA_RESTART: the read resumes) and nothing is lost.  The coordinator waits
 * for an answer and for the task's process to end at once (a pidfd), with a
 * deadline: a process killed while it runs an op is reaped and reported, an
 * op that never returns is a hang.  Processes forked by a task are forked
 * twice, so that they are reparented to the coordinator, a child subreaper,
 * which reaps every logical process itself.
 *
 * The coordinator is the runner of guard.c: it runs the ops that have no
 * process context itself.
 */
#include "repro.h"

enum { REQ_RUN, REQ_SYNC, REQ_FORK, REQ_THREAD, REQ_THREAD_EXIT, REQ_EXIT };

struct request {
	int kind;
	int arg;
	task_fn fn;
	long a[4];
};

struct answer {
	long ret;
	int nsig;
	struct signal_record sig[MAX_SIGNALS];
};

struct channel {
	int down[2];
	int up[2];
};

static struct channel chan[MAX_TASKS];
static int task_live[MAX_TASKS];
static pid_t task_tid[MAX_TASKS];
static pid_t proc_pid[MAX_PROCS];
static int proc_fd[MAX_PROCS] = { [0 ... MAX_PROCS - 1] = -1 };
/* The first fd a logical process does not keep (opened after the channels). */
static int first_private_fd;

static void serve(int task);

static void *thread_main(void *arg)
{
	serve((int)(long)arg);
	return NULL;
}

/* Forks twice: the new process is reparented to the coordinator. */
static long fork_twice(int child_task)
{
	pid_t mid, pid = -1;
	int p[2];

	if (pipe(p))
		return -errno;
	mid = fork();
	if (mid == 0) {
		pid = fork();
		if (pid == 0) {
			signals_take(NULL);
			serve(child_task);
		}
		_exit(write(p[1], &pid, sizeof(pid)) != sizeof(pid));
	}
	if (mid < 0 || read(p[0], &pid, sizeof(pid)) != sizeof(pid))
		pid = -EAGAIN;
	close(p[0]);
	close(p[1]);
	if (mid > 0)
		waitpid(mid, NULL, 0);
	return pid;
}

static long run(const struct request *q)
{
	pthread_t t;
	long ret;

	switch (q->kind) {
	case REQ_RUN:
		return q->fn(q->a[0], q->a[1], q->a[2], q->a[3]);
	case REQ_FORK:
		return fork_twice(q->arg);
	case REQ_THREAD:
		ret = -pthread_create(&t, NULL, thread_main, (void *)(long)q->arg);
		if (!ret)
			pthread_detach(t);
		return ret;
	case REQ_EXIT:
		_exit(q->arg);
	}
	return 0;
}

/* A task: runs what the coordinator sends, answers with its signals. */
static void serve(int task)
{
	struct answer r = { .ret = gettid() };
	struct request q = { .kind = REQ_SYNC };

	for (;;) {
		r.nsig = signals_take(r.sig);
		if (write(chan[task].up[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		if (q.kind == REQ_THREAD_EXIT && r.ret == 0)
			pthread_exit(NULL);
		while (read(chan[task].down[0], &q, sizeof(q)) != sizeof(q))
			if (errno != EINTR)
				_exit(1);
		r.ret = run(&q);
	}
}

/* How process `proc` ended, once it has: reaped and reported. */
static void reap(int proc)
{
	int status, t;

	if (waitpid(proc_pid[proc], &status, 0) != proc_pid[proc])
		return;
	close(proc_fd[proc]);
	proc_fd[proc] = -1;
	for (t = 0; t < ntasks; t++)
		if (task_proc[t] == proc)
			task_live[t] = 0;
	if (WIFSIGNALED(status))
		obs_line("exit %s signal=SIG%s", proc_name[proc],
			 sigabbrev_np(WTERMSIG(status)));
	else
		obs_line("exit %s code=%d", proc_name[proc],
			 WEXITSTATUS(status));
	obs_key(proc);
}

/* The kernel stacks of a stuck process, as KTAP diagnostics. */
static void print_stacks(pid_t pid)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd),
		 "cat /proc/%d/task/*/stack 2>/dev/null | sed 's/^/#   /'", pid);
	fflush(stdout);
	if (system(cmd) < 0)
		perror("system");
}

/* Waits for task's answer: 0, or -ESRCH if its process ended first. */
static int receive(int task, struct answer *r)
{
	int proc = task_proc[task];
	struct pollfd p[2] = {
		{ .fd = chan[task].up[0], .events = POLLIN },
		{ .fd = proc_fd[proc], .events = POLLIN },
	};

	if (poll(p, 2, OP_DEADLINE_MS) == 0) {
		obs_line("failure hang \"%s: no answer in %d ms\"",
			 task_name[task], OP_DEADLINE_MS);
		print_stacks(proc_pid[proc]);
		kernel_broken = 1;
		return -ESRCH;
	}
	if (!(p[0].revents & POLLIN)) {
		reap(proc);
		return -ESRCH;
	}
	if (read(chan[task].up[0], r, sizeof(*r)) != sizeof(*r))
		return -ESRCH;
	signals_report(task_name[task], task, r->sig, r->nsig);
	return 0;
}

static long request(int task, const struct request *q)
{
	struct answer r;
	int err;

	if (!task_live[task])
		return -ESRCH;
	if (write(chan[task].down[1], q, sizeof(*q)) != sizeof(*q))
		return -errno;
	err = receive(task, &r);
	return err ? TASK_DIED : r.ret;
}

/* Runs fn(a, b, c, d) in task's context; TASK_DIED if it did not return. */
long call(int task, task_fn fn, long a, long b, long c, long d)
{
	struct request q = { .kind = REQ_RUN, .fn = fn, .a = { a, b, c, d } };

	return request(task, &q);
}

/* A new task became live in process proc: wait for its first answer. */
static long started(int task, int proc, pid_t pid)
{
	struct answer r;

	if (pid > 0 && proc_fd[proc] < 0) {
		proc_pid[proc] = pid;
		proc_fd[proc] = (int)syscall(SYS_pidfd_open, pid, 0);
	}
	task_live[task] = 1;
	if (receive(task, &r))
		return TASK_DIED;
	task_tid[task] = (pid_t)r.ret;
	return pid;
}

/* Makes every task's channel and becomes the reaper of its processes. */
void tasks_init(void)
{
	static int done;
	int t;

	if (done++)
		return;
	prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL);
	signal(SIGPIPE, SIG_IGN);
	for (t = 0; t < ntasks; t++)
		if (pipe(chan[t].down) || pipe(chan[t].up))
			bail_out("pipe: out of file descriptors");
	first_private_fd = dup(0);
	close(first_private_fd);
}

/* A new process whose first thread is `task`: its pid. */
long spawn(int task)
{
	pid_t pid;

	tasks_init();
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* VFIO devices and dma-bufs stay the runner's alone */
		close_range(first_private_fd, ~0U, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0UL, 0UL, 0UL);
		prctl(PR_MCE_KILL, PR_MCE_KILL_CLEAR, 0UL, 0UL, 0UL);
		serve(task);
	}
	return started(task, task_proc[task], pid);
}

/* Task forks a new process whose first thread is `child_task`. */
long fork_from(int task, int child_task)
{
	struct request q = { .kind = REQ_FORK, .arg = child_task };
	long pid = request(task, &q);

	return pid > 0 ? started(child_task, task_proc[child_task], pid) : pid;
}

/* Parent_task starts the thread `task` in its process. */
long thread_create(int parent_task, int task)
{
	struct request q = { .kind = REQ_THREAD, .arg = task };
	long ret = request(parent_task, &q);

	return ret ? ret : (started(task, task_proc[task], 0), 0);
}

/* Whether the kernel is done with a thread: unlinked, or (a leader) a zombie. */
static int thread_gone(const char *stat_path)
{
	char text[256], *paren;
	int fd = open(stat_path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	text[n] = '\0';
	paren = strrchr(text, ')');
	return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/*
 * Task ends, the first thread too (its process lives on in the others), but
 * not its process's last one: -EINVAL.  0 once the kernel is done with it.
 */
long thread_exit(int task)
{
	struct request q = { .kind = REQ_THREAD_EXIT };
	char path[64];
	int i, live = 0;
	long ret;

	for (i = 0; i < ntasks; i++)
		live += task_live[i] && task_proc[i] == task_proc[task];
	if (live <= 1)
		return -EINVAL;
	ret = request(task, &q);
	if (ret)
		return ret;
	task_live[task] = 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat",
		 proc_pid[task_proc[task]], task_tid[task]);
	for (i = 0; i < 2000 && !thread_gone(path); i++)
		usleep(1000);
	return 0;
}

/* Task's process calls _exit(code); the next sync reaps it. */
long proc_exit(int task, int code)
{
	struct request q = { .kind = REQ_EXIT, .arg = code };

	if (!task_live[task])
		return -ESRCH;
	if (write(chan[task].down[1], &q, sizeof(q)) != sizeof(q))
		return -errno;
	return 0;
}

/* After an op: every live thread reports its signals, in creation order. */
void sync_all(void)
{
	struct request q = { .kind = REQ_SYNC };
	int t;

	for (t = 0; t < ntasks; t++)
		if (task_live[t])
			request(t, &q);
}
