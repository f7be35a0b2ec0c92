// SPDX-License-Identifier: GPL-2.0-only
/*
 * The agent's side of the logical processes: the process table, calls over
 * the channels (child.c has the other side), the synchronisation after every
 * op and reaping.
 *
 * Every wait is bounded: a child that does not answer within
 * REPLY_TIMEOUT_MS is reported in an "error" line and the op goes on.
 * A channel that reads EOF means the process died (threads that exit on
 * request are closed by the agent first): it is marked dying and reaped.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

struct process *proc_find(struct agent *a, const char *name)
{
	int i;

	for (i = 0; i < a->nproc; i++) {
		if (!strcmp(a->proc[i].name, name))
			return &a->proc[i];
	}
	return NULL;
}

/* Any thread ever created with that index, alive or not. */
struct thread *thread_find(struct process *p, int index)
{
	int i;

	for (i = 0; i < p->nthreads; i++) {
		if (p->thread[i].index == index)
			return &p->thread[i];
	}
	return NULL;
}

static void proc_mark_dying(struct process *p)
{
	int i;

	p->dying = true;
	for (i = 0; i < p->nthreads; i++) {
		chan_close(&p->thread[i].chan);
		p->thread[i].alive = false;
	}
}

/* SIGPIPE is ignored in the agent: a thread that is gone is -EPIPE. */
static int chan_send(const struct chan *chan, const struct child_cmd *cmd)
{
	if (chan->tx < 0)
		return -EPIPE;
	while (write(chan->tx, cmd, sizeof(*cmd)) < 0) {
		if (errno == EINTR)
			continue;
		return -errno;
	}
	return 0;
}

/*
 * Receives the reply to seq (0: a CHILD_READY) before deadline; stale
 * replies (to commands that timed out earlier) are dropped.  Returns 0,
 * -EPIPE when the peer is gone, -ETIMEDOUT, or -errno.
 */
static int chan_recv(const struct chan *chan, uint32_t seq,
		     struct child_reply *rep, int64_t deadline)
{
	if (chan->rx < 0)
		return -EPIPE;
	for (;;) {
		struct pollfd pfd = { .fd = chan->rx, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left < 0)
			left = 0;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;

		n = read(chan->rx, rep, sizeof(*rep));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		if ((size_t)n < REPLY_HEADER_SIZE || rep->seq != seq ||
		    rep->nsig > SIG_BATCH ||
		    (size_t)n != REPLY_HEADER_SIZE +
				 rep->nsig * sizeof(rep->sig[0]))
			continue;
		return 0;
	}
}

/*
 * Copies the agent's ends of a new channel, named in rep, out of process
 * pid (whose thread opened it): 0 or -errno.  The agent runs as root, so
 * pidfd_getfd()'s ptrace check passes.
 */
#define PIDFD_THREAD_FLAG	0200	/* PIDFD_THREAD (O_EXCL) */

static int chan_take(pid_t pid, const struct child_reply *rep,
		     struct chan *c)
{
	int pidfd, ret = 0;

	*c = CHAN_NONE;
	if (rep->xfer_rx < 0 || rep->xfer_tx < 0)
		return -EBADF;
	/*
	 * The replying thread's own pidfd (PIDFD_THREAD, Linux 6.9): the
	 * process's leader may have exited, taking its file table reference
	 * along, while the process lives on.
	 */
	pidfd = (int)syscall(SYS_pidfd_open, (pid_t)rep->tid, PIDFD_THREAD_FLAG);
	if (pidfd < 0)
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	c->rx = (int)syscall(SYS_pidfd_getfd, pidfd, rep->xfer_rx, 0);
	if (c->rx >= 0)
		c->tx = (int)syscall(SYS_pidfd_getfd, pidfd, rep->xfer_tx, 0);
	if (c->rx < 0 || c->tx < 0) {
		ret = -errno;
		chan_close(c);
	}
	close(pidfd);
	return ret;
}

/*
 * The thread's log came with the reply: keep it for the sync (which prints
 * in creation order), and spare the thread its SYNC if nothing is left.
 */
static void keep_signals(struct agent *a, const struct process *p,
			 struct thread *t, const struct child_reply *rep)
{
	uint32_t k;

	for (k = 0; k < rep->nsig && t->npend < SIG_BATCH; k++)
		t->pend[t->npend++] = rep->sig[k];
	if (k < rep->nsig || rep->lost)
		agent_error(a, "%s.t%d: %u signal records lost", p->name,
			    t->index, rep->nsig - k + rep->lost);
	t->reported = !rep->more;
}

/*
 * One command to one thread and its reply.  -EPIPE: the process died (it
 * is marked dying); -ETIMEDOUT: reported as an error line.
 */
int proc_call(struct agent *a, struct process *p, struct thread *t,
	      const struct child_cmd *cmd, struct child_reply *rep,
	      struct chan *fresh)
{
	return proc_call_while(a, p, t, cmd, rep, fresh, NULL, NULL);
}

/*
 * proc_call(), running during(a, arg) after the command is sent and before
 * the reply is awaited (the thread works meanwhile: inject-mce-ar).
 */
int proc_call_while(struct agent *a, struct process *p, struct thread *t,
		    const struct child_cmd *cmd, struct child_reply *rep,
		    struct chan *fresh,
		    void (*during)(struct agent *a, void *arg), void *arg)
{
	struct child_cmd c = *cmd;
	int ret;

	if (fresh)
		*fresh = CHAN_NONE;
	c.seq = ++a->seq;
	ret = chan_send(&t->chan, &c);
	if (!ret && during)
		during(a, arg);
	if (!ret)
		ret = chan_recv(&t->chan, c.seq, rep,
				now_ms() + REPLY_TIMEOUT_MS);
	if (!ret)
		keep_signals(a, p, t, rep);
	if (!ret && fresh && rep->ret >= 0) {
		int err = chan_take(p->pid, rep, fresh);

		if (err) {
			char tmp[16];

			agent_error(a, "%s.t%d: cannot take the new channel: %s",
				    p->name, t->index,
				    errno_name(err, tmp, sizeof(tmp)));
		}
	}
	if (ret == -EPIPE)
		proc_mark_dying(p);
	else if (ret == -ETIMEDOUT)
		agent_error(a, "%s.t%d did not answer within %d ms",
			    p->name, t->index, REPLY_TIMEOUT_MS);
	else if (ret)
		agent_error(a, "%s.t%d: channel error %d", p->name,
			    t->index, ret);
	return ret;
}

static struct process *proc_add(struct agent *a, const char *name)
{
	struct process *p;

	if (a->nproc == a->proc_cap) {
		int cap = a->proc_cap ? 2 * a->proc_cap : 16;

		p = realloc(a->proc, cap * sizeof(*p));
		if (!p)
			return NULL;
		a->proc = p;
		a->proc_cap = cap;
	}
	p = &a->proc[a->nproc++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->alive = true;
	return p;
}

static struct thread *thread_add(struct process *p, int index,
				 struct chan chan, pid_t tid)
{
	struct thread *t = &p->thread[p->nthreads];

	*t = (struct thread) {
		.index = index,
		.slot = p->nthreads,
		.chan = chan,
		.tid = tid,
		.alive = true,
	};
	p->nthreads++;
	return t;
}

/* The CHILD_READY of a new process or thread on chan: 0 or -errno. */
static int wait_ready(struct agent *a, const char *what,
		      const struct chan *chan, struct child_reply *rep)
{
	int ret = chan_recv(chan, 0, rep, now_ms() + REPLY_TIMEOUT_MS);

	if (ret)
		agent_error(a, "%s did not start: %s", what,
			    ret == -ETIMEDOUT ? "timeout" : "channel closed");
	return ret;
}

int proc_spawn(struct agent *a, const char *name, int64_t *pid)
{
	struct child_reply rep;
	struct chan mine, theirs;
	struct process *p;
	pid_t child;
	int ret;

	p = proc_add(a, name);
	if (!p)
		return -ENOMEM;
	ret = chan_open(&mine, &theirs);
	if (ret) {
		p->alive = false;
		return ret;
	}
	child = fork();
	if (child < 0) {
		ret = -errno;
		p->alive = false;
		chan_close(&mine);
		chan_close(&theirs);
		return ret;
	}
	if (child == 0) {
		chan_close(&mine);
		child_spawned(theirs);
	}
	chan_close(&theirs);
	p->pid = child;
	thread_add(p, 0, mine, 0);

	if (wait_ready(a, name, &p->thread[0].chan, &rep)) {
		kill(child, SIGKILL);
		proc_mark_dying(p);
		return -EAGAIN;
	}
	p->thread[0].tid = (pid_t)rep.tid;
	*pid = child;
	return 0;
}

int proc_fork(struct agent *a, struct process *p, struct thread *t,
	      const char *child, int64_t *pid)
{
	struct child_cmd cmd = { .op = CHILD_FORK };
	struct child_reply rep;
	struct process *q;
	struct chan fresh;
	int ret;

	ret = proc_call(a, p, t, &cmd, &rep, &fresh);
	if (ret)
		return ret == -EPIPE ? -ESRCH : ret;
	if (rep.ret < 0)
		return rep.ret;
	if (fresh.rx < 0) {
		agent_error(a, "fork: no channel came back");
		return -EIO;
	}

	q = proc_add(a, child);
	if (!q) {
		chan_close(&fresh);
		return -ENOMEM;
	}
	thread_add(q, 0, fresh, 0);
	if (wait_ready(a, child, &q->thread[0].chan, &rep)) {
		proc_mark_dying(q);
		q->alive = false;	/* no pid to reap */
		return -EAGAIN;
	}
	q->pid = (pid_t)rep.ret;
	q->thread[0].tid = (pid_t)rep.tid;
	*pid = q->pid;
	return 0;
}

/* The thread that runs the process's ops: its first live one (t0 until it exits). */
struct thread *proc_first(struct process *p)
{
	int i;

	for (i = 0; i < p->nthreads; i++) {
		if (p->thread[i].alive)
			return &p->thread[i];
	}
	return &p->thread[0];
}

int proc_thread(struct agent *a, struct process *p, int index)
{
	struct child_cmd cmd = { .op = CHILD_THREAD };
	struct child_reply rep;
	char what[NAME_LEN + 16];
	struct chan fresh;
	int ret;

	if (p->nthreads == MAX_THREADS) {
		agent_error(a, "%s: more than %d threads", p->name,
			    MAX_THREADS);
		return -EAGAIN;
	}
	cmd.arg[0] = p->nthreads;
	ret = proc_call(a, p, proc_first(p), &cmd, &rep, &fresh);
	if (ret)
		return ret == -EPIPE ? -ESRCH : ret;
	if (rep.ret < 0)
		return rep.ret;
	if (fresh.rx < 0) {
		agent_error(a, "thread: no channel came back");
		return -EIO;
	}

	snprintf(what, sizeof(what), "%s.t%d", p->name, index);
	if (wait_ready(a, what, &fresh, &rep)) {
		chan_close(&fresh);
		return -EAGAIN;
	}
	thread_add(p, index, fresh, (pid_t)rep.tid);
	return 0;
}

int proc_thread_exit(struct agent *a, struct process *p, struct thread *t)
{
	struct child_cmd cmd = { .op = CHILD_THREAD_EXIT };
	struct child_reply rep;
	int ret;

	ret = proc_call(a, p, t, &cmd, &rep, NULL);
	if (ret)
		return ret == -EPIPE ? -ESRCH : ret;
	if (rep.ret < 0)
		return rep.ret;
	chan_close(&t->chan);
	t->alive = false;

	cmd = (struct child_cmd) { .op = CHILD_JOIN, .arg = { t->slot } };
	ret = proc_call(a, p, proc_first(p), &cmd, &rep, NULL);
	if (ret)
		return ret == -EPIPE ? -ESRCH : ret;
	return rep.ret;
}

/* exit_group(code) in its first live thread; reaped (and reported) by proc_sync(). */
int proc_exit(struct agent *a, struct process *p, int code)
{
	struct child_cmd cmd = {
		.seq = ++a->seq,
		.op = CHILD_EXIT,
		.arg = { (uint64_t)(int64_t)code },
	};
	int ret = chan_send(&proc_first(p)->chan, &cmd);

	proc_mark_dying(p);
	return ret == -EPIPE ? 0 : ret;
}

static void print_signal(struct agent *a, const struct process *p,
			 const struct thread *t, const struct sig_rec *r)
{
	char tmp[16];

	buf_printf(&a->sig, "sig %s.t%d %s ", p->name, t->index,
		   signal_name(r->signo, tmp, sizeof(tmp)));
	if (r->code == 4)
		buf_printf(&a->sig, "AR");
	else if (r->code == 5)
		buf_printf(&a->sig, "AO");
	else
		buf_printf(&a->sig, "code=%d", r->code);
	buf_printf(&a->sig, " addr=0x%llx lsb=%d\n",
		   (unsigned long long)r->addr, r->lsb);
}

static bool proc_live(const struct process *p)
{
	return p->alive && !p->dying;
}

/* Sends SYNC to every live thread first, so that they answer in parallel. */
static void sync_send(struct agent *a)
{
	int i, j;

	for (i = 0; i < a->nproc; i++) {
		struct process *p = &a->proc[i];

		for (j = 0; proc_live(p) && j < p->nthreads; j++) {
			struct thread *t = &p->thread[j];
			struct child_cmd cmd = { .op = CHILD_SYNC };

			if (!t->alive || t->reported)
				continue;
			cmd.seq = t->sync_seq = ++a->seq;
			if (chan_send(&t->chan, &cmd) == -EPIPE)
				proc_mark_dying(p);
		}
	}
}

/* Collects one thread's log; false if its process is gone. */
static bool sync_thread(struct agent *a, struct process *p, struct thread *t)
{
	int64_t deadline = now_ms() + REPLY_TIMEOUT_MS;
	struct child_cmd cmd = { .op = CHILD_SYNC };
	struct child_reply rep;
	uint32_t k;
	int ret;

	for (;;) {
		ret = chan_recv(&t->chan, t->sync_seq, &rep, deadline);
		if (ret == -EPIPE) {
			proc_mark_dying(p);
			return false;
		}
		if (ret) {
			char tmp[16];

			agent_error(a, "%s.t%d did not answer the sync: %s",
				    p->name, t->index,
				    errno_name(ret, tmp, sizeof(tmp)));
			return true;
		}
		for (k = 0; k < rep.nsig; k++)
			print_signal(a, p, t, &rep.sig[k]);
		if (rep.lost)
			agent_error(a, "%s.t%d: %u signal records lost",
				    p->name, t->index, rep.lost);
		if (!rep.more)
			return true;

		cmd.seq = t->sync_seq = ++a->seq;
		if (chan_send(&t->chan, &cmd) == -EPIPE) {
			proc_mark_dying(p);
			return false;
		}
	}
}

static struct process *proc_by_pid(struct agent *a, pid_t pid)
{
	int i;

	for (i = 0; i < a->nproc; i++) {
		if (a->proc[i].pid == pid && a->proc[i].alive)
			return &a->proc[i];
	}
	return NULL;
}

static void reap_nohang(struct agent *a)
{
	struct process *p;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		p = proc_by_pid(a, pid);
		if (!p || p->reaped)
			continue;
		p->reaped = true;
		p->status = status;
		if (!p->dying)
			proc_mark_dying(p);
	}
}

/* Waits until pid is a zombie: its pidfd polls readable. */
static void wait_zombie(pid_t pid, int64_t deadline)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int64_t left;

	if (fd < 0)
		return;
	do {
		left = deadline - now_ms();
	} while (left > 0 && poll(&pfd, 1, (int)left) < 0 && errno == EINTR);
	close(fd);
}

/* Waits (bounded) for the processes known to be dying. */
static void reap_dying(struct agent *a)
{
	int64_t deadline = now_ms() + REPLY_TIMEOUT_MS;
	int i, step;

	for (i = 0; i < a->nproc; i++) {
		struct process *p = &a->proc[i];

		for (step = 0; p->alive && p->dying && !p->reaped; step++) {
			reap_nohang(a);
			if (p->reaped)
				break;
			if (now_ms() > deadline) {
				agent_error(a, "%s (pid %d) did not exit within %d ms",
					    p->name, p->pid, REPLY_TIMEOUT_MS);
				break;
			}
			if (step == 0)
				wait_zombie(p->pid, deadline);
			else
				wait_step(step);
		}
	}
}

static void print_exits(struct agent *a)
{
	char tmp[16];
	int i;

	for (i = 0; i < a->nproc; i++) {
		struct process *p = &a->proc[i];

		if (!p->alive || !p->reaped)
			continue;
		p->alive = false;
		if (WIFEXITED(p->status))
			buf_printf(&a->exits, "exit %s code=%d\n", p->name,
				   WEXITSTATUS(p->status));
		else if (WIFSIGNALED(p->status))
			buf_printf(&a->exits, "exit %s signal=%s\n", p->name,
				   signal_name(WTERMSIG(p->status), tmp,
					       sizeof(tmp)));
		else
			agent_error(a, "%s: unexpected wait status %#x",
				    p->name, p->status);
	}
}

/*
 * After every op: every live thread of every live process (creation
 * order) reports its signal log; dead processes are reaped.  Only an op
 * that may have run a SIGBUS handler in a thread other than the one that
 * replied (collect: the injects; sigmask and sigbus, which change what a
 * pending SIGBUS does) asks every thread; after the others, whatever came
 * with the replies is printed and nobody else is asked: no SIGBUS was sent.
 */
void proc_sync(struct agent *a, bool collect)
{
	int i, j, k;

	if (collect)
		sync_send(a);
	for (i = 0; i < a->nproc; i++) {
		struct process *p = &a->proc[i];

		for (j = 0; p->alive && j < p->nthreads; j++) {
			struct thread *t = &p->thread[j];

			for (k = 0; k < t->npend; k++)
				print_signal(a, p, t, &t->pend[k]);
			t->npend = 0;
			t->reported = false;
			if (t->sync_seq && proc_live(p) && t->alive)
				sync_thread(a, p, t);
			t->sync_seq = 0;
		}
	}
	reap_nohang(a);
	reap_dying(a);
	print_exits(a);
}

/*
 * Ends every logical process: SIGKILL, then reaped.  Closing the channels
 * alone would not do: a process whose t0 has exited (thread-exit P.t0) has
 * only threads that pause on end of file (lp_serve), and waiting out
 * REPLY_TIMEOUT_MS for it made the host give the reset up.
 */
void proc_shutdown(struct agent *a)
{
	int i;

	for (i = 0; i < a->nproc; i++) {
		struct process *p = &a->proc[i];

		if (!p->alive)
			continue;
		if (!p->dying)
			proc_mark_dying(p);
		if (!p->reaped && p->pid > 0)
			kill(p->pid, SIGKILL);
	}
	reap_dying(a);
	for (i = 0; i < a->nproc; i++) {
		if (a->proc[i].alive && !a->proc[i].reaped &&
		    a->proc[i].pid > 0) {
			kill(a->proc[i].pid, SIGKILL);
			waitpid(a->proc[i].pid, NULL, 0);
		}
	}
}

/*
 * The "reset" op: ends every logical process (SIGKILL, reaped) and forgets
 * the table, so that the next sequence may use its names again.  A child
 * the agent did not know of (it reaps everything as a subreaper) is
 * reported in dirty.
 */
void proc_reset(struct agent *a, struct buf *dirty)
{
	pid_t pid;

	proc_shutdown(a);
	while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
		buf_printf(dirty, "dirty unknown child %d reaped\n", (int)pid);
	a->nproc = 0;
}
