// SPDX-License-Identifier: GPL-2.0-only
/*
 * guard.c - the guardian: a verdict even when the kernel kills or hangs
 * the reproducer
 *
 * guard() forks: the child (the runner) returns and runs main's ops; the
 * parent waits for it.  Before each op the runner writes which op it runs
 * and what the contract predicts for it into memory both share (begin()).
 * If the runner dies during an op (a SIGKILL the contract did not predict,
 * an oops in its system call) or an op does not return within the deadline
 * (a task looping in the kernel), the guardian reports that op itself, with
 * the kernel's failure reports and events, and stops the run.  When the
 * sequence has a single logical process, the runner is that process.
 */
#include "repro.h"

struct progress {
	struct ktap_totals totals;
	int step;		/* 0: between ops */
	int returned;		/* the op returned ret */
	long ret;
	int how;		/* WAIT_*, INJECT_* */
	const char *op;		/* string literals: the same in both */
	const char *expected;
	const char *runner;	/* the logical process the runner is, or NULL */
	struct timespec started;
};

static struct progress *progress;

static long elapsed_ms(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000 +
	       (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* The runner ended or is stuck in op progress->step: report it, stop. */
static void runner_lost(pid_t runner, int status, int stuck)
{
	struct progress p = *progress;
	char cmd[96];

	if (stuck) {
		obs_line("failure hang \"%s: no answer in %d ms\"", p.op,
			 OP_DEADLINE_MS);
		snprintf(cmd, sizeof(cmd),
			 "cat /proc/%d/task/*/stack | sed 's/^/# stack: /'",
			 runner);
		fflush(stdout);
		if (system(cmd) < 0)
			perror("system");
	} else {
		if (p.returned)
			obs_ret(p.ret);
		else if (p.how & INJECT_ANY)
			obs_ret(trace_died_ret(p.how & INJECT_SYSFS));
		if (p.runner && WIFSIGNALED(status))
			obs_line("exit %s signal=SIG%s", p.runner,
				 sigabbrev_np(WTERMSIG(status)));
	}
	trace_collect(0);
	kmsg_collect();
	check(p.step, p.op, p.expected);
	kill(runner, SIGKILL);
	bail_out(stuck ? "the kernel is stuck in an op" :
			 "the reproducer was killed during an op");
}

/* Forks the runner; the guardian never returns. */
void guard(void)
{
	int status, pidfd;
	pid_t runner;

	progress = mmap(NULL, sizeof(*progress), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (progress == MAP_FAILED)
		bail_out("mmap: out of memory");
	progress->totals = *totals;
	totals = &progress->totals;
	fflush(stdout);
	runner = fork();
	if (runner == 0)
		return;
	pidfd = (int)syscall(SYS_pidfd_open, runner, 0);
	for (;;) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };

		if (poll(&p, 1, 100) > 0) {
			waitpid(runner, &status, 0);
			if (WIFEXITED(status) && !progress->step)
				exit(WEXITSTATUS(status));
			runner_lost(runner, status, 0);
		}
		if (progress->step &&
		    elapsed_ms(&progress->started) > OP_DEADLINE_MS + 2000)
			runner_lost(runner, 0, 1);
	}
}

/* The runner is the sequence's one logical process (spawn): its pid. */
long become(const char *name)
{
	progress->runner = name;
	prctl(PR_MCE_KILL, PR_MCE_KILL_CLEAR, 0UL, 0UL, 0UL);
	return getpid();
}

/* The runner starts op `step`: what the guardian needs if it never ends. */
void begin(int step, const char *op, const char *expected, int how)
{
	progress->op = op;
	progress->expected = expected;
	progress->how = how;
	progress->returned = 0;
	clock_gettime(CLOCK_MONOTONIC, &progress->started);
	progress->step = step;
}

/* The running op returned ret (what the kernel does next may still kill). */
void step_returned(long ret)
{
	progress->ret = ret;
	progress->returned = 1;
}

/* What the running op waits for (WAIT_*) and is (INJECT_*). */
int step_how(void)
{
	return progress->how;
}

/* The running op's observations against the contract's; the kernel may
 * have broken down: then the rest is not run.
 */
void step_done(void)
{
	check(progress->step, progress->op, progress->expected);
	progress->step = 0;
	if (kernel_broken)
		bail_out("the kernel crashed or hung: the rest is not run");
}

/* The running op could not be observed: what the run needs. */
void step_skip(const char *why)
{
	skip_step(progress->step, progress->op, why);
	progress->step = 0;
}
