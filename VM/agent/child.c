// SPDX-License-Identifier: GPL-2.0-only
/*
 * The logical processes: children of the agent.
 *
 * Every thread of a logical process owns one end of a channel (struct
 * chan: two packet-mode pipes); the agent holds the other.  A thread blocks
 * in read() on its channel, executes the command it gets in its own context
 * (prctl, sigmask, poison: the thread matters), and replies.  A SIGBUS sent
 * to a thread interrupts that read(); the handler (SA_RESTART) appends the
 * siginfo to the thread's log and read() resumes, so no command is lost.
 * CHILD_SYNC returns the log.
 *
 * New channels: the creating thread opens the pipes, keeps the thread's
 * ends for the new thread or process, and names the agent's ends in its
 * reply (xfer_rx, xfer_tx); the agent copies them with pidfd_getfd().  The
 * creating thread closes its copies when its next command arrives (the
 * agent takes the copies before it sends anything else), and a process
 * forked meanwhile closes them at once.  The new thread or process then
 * sends CHILD_READY (pid, tid) on its channel.
 *
 * fork: the thread forks twice and the middle process exits at once, so the
 * new logical process is reparented to the agent (a child subreaper) and
 * the agent reaps it like a spawned one.  Both forks copy the thread's VMAs
 * (minus MADV_DONTFORK), kill policy, signal mask and dispositions.
 *
 * Only this file runs in the children; it shares no state with the agent
 * but the channels.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "harness_shim.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define HARD_OFFLINE_PAGE "/sys/devices/system/memory/hard_offline_page"

struct lp_thread {
	pthread_t handle;
	pid_t tid;
	struct chan chan;
	/*
	 * The agent's ends of a channel this thread opened, until the agent
	 * has taken them.  Here rather than thread-local, so that a fork
	 * from another thread drops them too.
	 */
	struct chan handed;
	bool used;
};

/* The logical process this child is: shared by its threads. */
static struct {
	int shim_fd;
	int shim_errno;
	struct lp_thread thread[MAX_THREADS];
} lp;

/*
 * Written by the SIGBUS handler of this thread only.  volatile
 * sig_atomic_t is what C requires of data a signal handler writes.
 */
static __thread struct {
	volatile sig_atomic_t count;
	volatile sig_atomic_t lost;
	int slot;
	struct sig_rec rec[SIGLOG_LEN];
} siglog;

static void lp_sigbus(int sig, siginfo_t *si, void *uc)
{
	int n = siglog.count;

	(void)uc;
	if (n >= SIGLOG_LEN) {
		siglog.lost++;
		return;
	}
	siglog.rec[n].signo = sig;
	siglog.rec[n].code = si->si_code;
	siglog.rec[n].addr = (uintptr_t)si->si_addr;
	siglog.rec[n].lsb = si->si_addr_lsb;
	siglog.rec[n].slot = siglog.slot;
	siglog.count = n + 1;
}

static void siglog_reset(int slot)
{
	siglog.count = 0;
	siglog.lost = 0;
	siglog.slot = slot;
}

static int lp_send(const struct chan *chan, struct child_reply *rep)
{
	size_t len = REPLY_HEADER_SIZE + rep->nsig * sizeof(rep->sig[0]);

	while (write(chan->tx, rep, len) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static void lp_ready(const struct chan *chan)
{
	struct child_reply rep = {
		.ret = getpid(),
		.tid = gettid(),
		.xfer_rx = -1,
		.xfer_tx = -1,
	};

	if (lp_send(chan, &rep))
		_exit(126);
}

/*
 * Moves up to SIG_BATCH records into the reply (every reply carries them);
 * blocks signals only while copying.
 */
static void lp_drain(struct child_reply *rep)
{
	sigset_t all, old;
	int n, rest;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	n = siglog.count < SIG_BATCH ? siglog.count : SIG_BATCH;
	memcpy(rep->sig, siglog.rec, n * sizeof(rep->sig[0]));
	rest = siglog.count - n;
	memmove(siglog.rec, siglog.rec + n, rest * sizeof(siglog.rec[0]));
	siglog.count = rest;
	rep->lost = siglog.lost;
	siglog.lost = 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	rep->nsig = n;
	rep->more = rest > 0;
}

static long lp_sigaction(uint64_t disp)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	switch (disp) {
	case DISP_HANDLER:
		sa.sa_sigaction = lp_sigbus;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		break;
	case DISP_DEFAULT:
		sa.sa_handler = SIG_DFL;
		break;
	case DISP_IGNORE:
		sa.sa_handler = SIG_IGN;
		break;
	default:
		return -EINVAL;
	}
	return sigaction(SIGBUS, &sa, NULL) ? -errno : 0;
}

static long lp_sigmask(uint64_t block)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGBUS);
	return -pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static long lp_prctl(int option, uint64_t a2, uint64_t a3)
{
	int ret = prctl(option, (unsigned long)a2, (unsigned long)a3, 0UL, 0UL);

	return ret < 0 ? -errno : ret;
}

static int pages_to_len(uint64_t pages, size_t *len)
{
	if (pages > (SIZE_MAX >> PAGE_SHIFT_X86))
		return -EINVAL;
	*len = pages << PAGE_SHIFT_X86;
	return 0;
}

static long lp_mmap(const uint64_t *arg)
{
	uint64_t addr = arg[0], region = arg[2], pgoff = arg[3];
	uint64_t off = region << HARNESS_SHIM_REGION_SHIFT |
		       pgoff << PAGE_SHIFT_X86;
	size_t len;
	void *p;

	if (lp.shim_fd < 0)
		return -ENODEV;
	if (pages_to_len(arg[1], &len))
		return -EINVAL;
	p = mmap((void *)(uintptr_t)addr, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED_NOREPLACE, lp.shim_fd, (off_t)off);
	if (p == MAP_FAILED)
		return -errno;
	if ((uintptr_t)p != addr) {	/* a kernel without NOREPLACE */
		munmap(p, len);
		return -EEXIST;
	}
	return 0;
}

static long lp_munmap(const uint64_t *arg, bool dontfork)
{
	void *addr = (void *)(uintptr_t)arg[0];
	size_t len;
	int ret;

	if (pages_to_len(arg[1], &len))
		return -EINVAL;
	ret = dontfork ? madvise(addr, len, MADV_DONTFORK) : munmap(addr, len);
	return ret ? -errno : 0;
}

static long lp_mprotect(const uint64_t *arg)
{
	static const int prot[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE };
	size_t len;

	if (pages_to_len(arg[1], &len) || arg[2] >= ARRAY_SIZE(prot))
		return -EINVAL;
	return mprotect((void *)(uintptr_t)arg[0], len, prot[arg[2]]) ? -errno : 0;
}

/* Same size, to the given address; 0 when it is where the pages went. */
static long lp_mremap(const uint64_t *arg)
{
	void *to = (void *)(uintptr_t)arg[2];
	size_t len;
	void *p;

	if (pages_to_len(arg[1], &len))
		return -EINVAL;
	p = mremap((void *)(uintptr_t)arg[0], len, len,
		   MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (p == MAP_FAILED)
		return -errno;
	return p == to ? 0 : -EIO;
}

static long lp_hwpoison(const uint64_t *arg)
{
	size_t len;

	if (pages_to_len(arg[1], &len))
		return -EINVAL;
	return madvise((void *)(uintptr_t)arg[0], len, MADV_HWPOISON) ? -errno : 0;
}

/* Writes the physical address, as the contract's trigger C5.1 says. */
static long lp_inject_sysfs(uint64_t pfn)
{
	char text[32];

	snprintf(text, sizeof(text), "0x%llx\n",
		 (unsigned long long)(pfn << PAGE_SHIFT_X86));
	return write_file(HARD_OFFLINE_PAGE, text);
}

static long lp_inject_shim(uint64_t pfn, uint64_t flags)
{
	struct harness_shim_poison req = {
		.pfn = pfn,
		.flags = (uint32_t)flags,
		.mode = HARNESS_SHIM_POISON_CALL,
	};
	int ret;

	if (lp.shim_fd < 0)
		return -ENODEV;
	ret = ioctl(lp.shim_fd, HARNESS_SHIM_POISON, &req);
	return ret < 0 ? -errno : ret;
}

static void lp_serve(int slot) __noreturn;

static void *lp_thread_main(void *arg)
{
	int slot = (int)(intptr_t)arg;

	siglog_reset(slot);
	lp.thread[slot].tid = gettid();
	lp_ready(&lp.thread[slot].chan);
	lp_serve(slot);
}

static long lp_thread_create(uint64_t slot, struct chan *agent_end)
{
	struct lp_thread *t;
	struct chan mine;
	int ret;

	if (slot >= MAX_THREADS || lp.thread[slot].used)
		return -EINVAL;
	ret = chan_open(agent_end, &mine);
	if (ret)
		return ret;

	t = &lp.thread[slot];
	t->chan = mine;
	t->handed = CHAN_NONE;
	t->used = true;
	ret = pthread_create(&t->handle, NULL, lp_thread_main,
			     (void *)(intptr_t)slot);
	if (ret) {
		t->used = false;
		chan_close(agent_end);
		chan_close(&t->chan);
		return -ret;
	}
	return 0;
}

/*
 * Whether the kernel is done with thread tid of this process: unlinked, or,
 * for the group leader, which stays in the thread list until the whole group
 * ends, a zombie.
 */
static bool lp_thread_gone(pid_t tid)
{
	char path[64], text[256], *close_paren;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 || errno == ESRCH;
	text[n] = '\0';
	close_paren = strrchr(text, ')');
	return close_paren && close_paren[1] == ' ' &&
	       (close_paren[2] == 'Z' || close_paren[2] == 'X');
}

/*
 * Joins the thread (the leader cannot be joined: it was never created by
 * pthread_create), then waits until the kernel is done with it.
 */
static long lp_thread_join(int self, uint64_t slot)
{
	int64_t deadline = now_ms() + REPLY_TIMEOUT_MS / 2;
	struct lp_thread *t;
	int i, ret;

	if (slot == (uint64_t)self || slot >= MAX_THREADS ||
	    !lp.thread[slot].used)
		return -EINVAL;
	t = &lp.thread[slot];
	if (slot) {
		ret = pthread_join(t->handle, NULL);
		if (ret)
			return -ret;
	}
	t->used = false;

	for (i = 0; now_ms() < deadline; i++) {
		if (lp_thread_gone(t->tid))
			return 0;
		wait_step(i);
	}
	return -ETIMEDOUT;
}

/*
 * The new logical process: this thread, alone, becomes its t0.  It drops
 * the channels of the process it was forked from and its copy of the
 * agent's end of its own.
 */
static void lp_forked(struct chan chan, struct chan agent_end) __noreturn;
static void lp_forked(struct chan chan, struct chan agent_end)
{
	int slot;

	chan_close(&agent_end);
	for (slot = 0; slot < MAX_THREADS; slot++) {
		if (lp.thread[slot].used) {
			chan_close(&lp.thread[slot].chan);
			chan_close(&lp.thread[slot].handed);
		}
	}
	memset(lp.thread, 0, sizeof(lp.thread));
	lp.thread[0] = (struct lp_thread) {
		.handle = pthread_self(),
		.tid = gettid(),
		.chan = chan,
		.handed = CHAN_NONE,
		.used = true,
	};
	siglog_reset(0);
	lp_ready(&chan);
	lp_serve(0);
}

static long lp_fork(struct chan *agent_end)
{
	struct chan theirs;
	pid_t mid, child;
	int status;

	status = chan_open(agent_end, &theirs);
	if (status)
		return status;

	mid = fork();
	if (mid < 0) {
		status = -errno;
		chan_close(agent_end);
		chan_close(&theirs);
		return status;
	}
	if (mid == 0) {
		child = fork();
		if (child == 0)
			lp_forked(theirs, *agent_end);
		_exit(child < 0 ? 1 : 0);
	}

	chan_close(&theirs);
	while (waitpid(mid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = -1;
			break;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		chan_close(agent_end);
		return -EAGAIN;
	}
	return 0;
}

/*
 * The loop the host looks for before it injects an action-required machine
 * check (inject-mce-ar): user mode only, no system call, so that the task
 * the machine check interrupts is this thread, at CPL 3.  x86-64 only.
 */
__asm__("	.text\n"
	"	.globl agent_spin\n"
	"	.hidden agent_spin\n"
	"	.type agent_spin, @function\n"
	"agent_spin:\n"
	"	.globl agent_spin_begin\n"
	"	.hidden agent_spin_begin\n"
	"agent_spin_begin:\n"
	"	pause\n"
	"	cmpl $0, (%rdi)\n"
	"	je agent_spin_begin\n"
	"	.globl agent_spin_end\n"
	"	.hidden agent_spin_end\n"
	"agent_spin_end:\n"
	"	ret\n"
	"	.size agent_spin, .-agent_spin\n");

struct spin_ctl *spin_ctl;

/* The shared page of inject-mce-ar, mapped before the first spawn. */
int spin_ctl_setup(void)
{
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (page == MAP_FAILED)
		return -errno;
	spin_ctl = page;
	return 0;
}

/* CHILD_SPIN: spin in user mode until the agent sets stop. */
static long lp_spin(void)
{
	if (!spin_ctl)
		return -ENOMEM;
	__atomic_store_n(&spin_ctl->spinning, 1, __ATOMIC_SEQ_CST);
	agent_spin(&spin_ctl->stop);
	__atomic_store_n(&spin_ctl->spinning, 0, __ATOMIC_SEQ_CST);
	return 0;
}

/* Executes one command; *fresh gets the agent's end of a new channel. */
static void lp_execute(int slot, const struct child_cmd *cmd,
		       struct child_reply *rep, struct chan *fresh)
{
	const uint64_t *arg = cmd->arg;
	long ret;

	switch (cmd->op) {
	case CHILD_SYNC:
		ret = 0;
		break;
	case CHILD_EXIT:
		_exit((int)arg[0]);
	case CHILD_THREAD:
		ret = lp_thread_create(arg[0], fresh);
		break;
	case CHILD_JOIN:
		ret = lp_thread_join(slot, arg[0]);
		break;
	case CHILD_THREAD_EXIT:
		ret = 0;	/* lp_serve() exits after replying */
		break;
	case CHILD_FORK:
		ret = lp_fork(fresh);
		break;
	case CHILD_PRCTL:
		ret = lp_prctl(PR_MCE_KILL, arg[0], arg[1]);
		break;
	case CHILD_PRCTL_GET:
		ret = lp_prctl(PR_MCE_KILL_GET, 0, 0);
		break;
	case CHILD_SIGACTION:
		ret = lp_sigaction(arg[0]);
		break;
	case CHILD_SIGMASK:
		ret = lp_sigmask(arg[0]);
		break;
	case CHILD_MMAP:
		ret = lp_mmap(arg);
		break;
	case CHILD_MUNMAP:
		ret = lp_munmap(arg, false);
		break;
	case CHILD_MADVISE:
		ret = lp_munmap(arg, true);
		break;
	case CHILD_INJECT_SYSFS:
		ret = lp_inject_sysfs(arg[0]);
		break;
	case CHILD_INJECT_SHIM:
		ret = lp_inject_shim(arg[0], arg[1]);
		break;
	case CHILD_MPROTECT:
		ret = lp_mprotect(arg);
		break;
	case CHILD_MREMAP:
		ret = lp_mremap(arg);
		break;
	case CHILD_HWPOISON:
		ret = lp_hwpoison(arg);
		break;
	case CHILD_SPIN:
		ret = lp_spin();
		break;
	default:
		ret = -EINVAL;
		break;
	}
	rep->ret = ret;
}

/* A thread's life: serve its channel until told to exit. */
static void lp_serve(int slot)
{
	const struct chan *chan = &lp.thread[slot].chan;
	struct child_reply rep;
	struct child_cmd cmd;

	for (;;) {
		ssize_t n = read(chan->rx, &cmd, sizeof(cmd));
		struct chan fresh = CHAN_NONE;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 && slot) {
			/*
			 * The agent closes every channel of a process right after
			 * sending t0 its exit: this thread must not race t0's
			 * exit_group(code) with one of its own.  t0 reads the
			 * exit before its EOF and takes the whole group down.
			 */
			for (;;)
				pause();
		}
		if (n <= 0) {
			/* The agent is gone: so is this process. */
			_exit(n == 0 ? 0 : 125);
		}
		if (n != sizeof(cmd))
			continue;
		/* The agent has taken its copies before sending anything else. */
		chan_close(&lp.thread[slot].handed);

		memset(&rep, 0, REPLY_HEADER_SIZE);
		rep.seq = cmd.seq;
		rep.tid = gettid();
		lp_execute(slot, &cmd, &rep, &fresh);
		rep.xfer_rx = fresh.rx;
		rep.xfer_tx = fresh.tx;
		lp_drain(&rep);
		if (lp_send(chan, &rep))
			chan_close(&fresh);
		lp.thread[slot].handed = fresh;

		if (cmd.op == CHILD_THREAD_EXIT) {
			/* t0 too: the process lives on in its other threads. */
			chan_close(&lp.thread[slot].chan);
			pthread_exit(NULL);
		}
	}
}

/* Closes every descriptor from 3 up but the channel's two. */
static void close_all_but(const struct chan *chan)
{
	unsigned int lo = chan->rx < chan->tx ? chan->rx : chan->tx;
	unsigned int hi = chan->rx < chan->tx ? chan->tx : chan->rx;

	if (lo > 3)
		close_range(3, lo - 1, 0);
	if (hi > lo + 1)
		close_range(lo + 1, hi - 1, 0);
	close_range(hi + 1, ~0U, 0);
}

/*
 * Entry of a spawned process: a fresh process as the contract sees it
 * (SIGBUS default, nothing blocked, no kill policy) holding only its channel.
 */
void child_spawned(struct chan chan)
{
	sigset_t none;
	int null;

	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
	}
	close_all_but(&chan);

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0UL, 0UL, 0UL);
	signal(SIGBUS, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_MCE_KILL, PR_MCE_KILL_CLEAR, 0UL, 0UL, 0UL);

	lp.shim_fd = open(HARNESS_SHIM_DEVICE, O_RDWR | O_CLOEXEC);
	lp.shim_errno = lp.shim_fd < 0 ? errno : 0;
	lp.thread[0] = (struct lp_thread) {
		.handle = pthread_self(),
		.tid = gettid(),
		.chan = chan,
		.handed = CHAN_NONE,
		.used = true,
	};
	siglog_reset(0);
	lp_ready(&chan);
	lp_serve(0);
}
