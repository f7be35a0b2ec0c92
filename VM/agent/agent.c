// SPDX-License-Identifier: GPL-2.0-only
/*
 * agent - the harness's end of the control channel inside the guest.
 *
 * Usage: agent /dev/vportNpM    the virtio-serial control port
 *        agent -                stdin/stdout (tests, a shell)
 *
 * It says hello and reports the guest's facts, then reads one op per line
 * (the op lines of Corpora/README.md), executes it, synchronises with every
 * logical process and writes the op's observation lines in canonical order,
 * then ".".  PROTOCOL.md has the framing and examples.
 *
 * Environment (host testing only):
 *   HARNESS_AGENT_SYSCTL  file that "sysctl early-kill=V" writes instead of
 *                         /proc/sys/vm/memory_failure_early_kill
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "harness_shim.h"
#include "ops.h"

#define EARLY_KILL_SYSCTL "/proc/sys/vm/memory_failure_early_kill"
#define CORRUPT_PFN "/sys/kernel/debug/hwpoison/corrupt-pfn"

void agent_error(struct agent *a, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msg[strcspn(msg, "\n")] = '\0';
	buf_printf(&a->err, "error %s\n", msg);
}

/* ------------------------------------------------------------------ */
/* Arguments */

static long malformed(struct agent *a, const struct tokens *t,
		      const char *why)
{
	agent_error(a, "malformed %s: %s", t->tok[0], why);
	return -EINVAL;
}

/* A live process by name: 0, -ESRCH, or -EINVAL (malformed, reported). */
static long get_proc(struct agent *a, const struct tokens *t,
		     const char *name, struct process **pp)
{
	struct process *p;

	if (!valid_name(name))
		return malformed(a, t, "bad process name");
	p = proc_find(a, name);
	if (!p || !p->alive || p->dying)
		return -ESRCH;
	*pp = p;
	return 0;
}

/* A live thread "P.tN". */
static long get_thread(struct agent *a, const struct tokens *t,
		       const char *ref, struct process **pp,
		       struct thread **tp)
{
	char name[NAME_LEN];
	struct thread *th;
	int index;
	long ret;

	if (parse_thread_ref(ref, name, &index))
		return malformed(a, t, "bad thread reference");
	ret = get_proc(a, t, name, pp);
	if (ret)
		return ret;
	th = thread_find(*pp, index);
	if (!th || !th->alive)
		return -ESRCH;
	*tp = th;
	return 0;
}

static long need_tokens(struct agent *a, const struct tokens *t, int n)
{
	if (t->n != n)
		return malformed(a, t, "wrong number of arguments");
	return 0;
}

/* One command to one thread: its return, or -ESRCH if the process died. */
static long call(struct agent *a, struct process *p, struct thread *th,
		 enum child_op op, uint64_t a0, uint64_t a1, uint64_t a2,
		 uint64_t a3)
{
	struct child_cmd cmd = {
		.op = op,
		.arg = { a0, a1, a2, a3 },
	};
	struct child_reply rep;
	int ret;

	ret = proc_call(a, p, th, &cmd, &rep, NULL);
	if (ret == -EPIPE) {
		agent_error(a, "%s died during the op", p->name);
		return -ESRCH;
	}
	return ret ? ret : rep.ret;
}

/* ------------------------------------------------------------------ */
/* Processes and threads */

long op_spawn(struct agent *a, struct tokens *t)
{
	int64_t pid;
	long ret;

	if (need_tokens(a, t, 2))
		return -EINVAL;
	if (!valid_name(t->tok[1]))
		return malformed(a, t, "bad process name");
	if (proc_find(a, t->tok[1]))
		return -EEXIST;
	ret = proc_spawn(a, t->tok[1], &pid);
	return ret ? ret : pid;
}

long op_fork(struct agent *a, struct tokens *t)
{
	struct process *p;
	struct thread *th;
	int64_t pid;
	long ret;

	if (need_tokens(a, t, 3))
		return -EINVAL;
	ret = get_thread(a, t, t->tok[1], &p, &th);
	if (ret)
		return ret;
	if (!valid_name(t->tok[2]))
		return malformed(a, t, "bad process name");
	if (proc_find(a, t->tok[2]))
		return -EEXIST;
	ret = proc_fork(a, p, th, t->tok[2], &pid);
	return ret ? ret : pid;
}

long op_thread(struct agent *a, struct tokens *t)
{
	char name[NAME_LEN];
	struct process *p;
	int index;
	long ret;

	if (need_tokens(a, t, 2))
		return -EINVAL;
	if (parse_thread_ref(t->tok[1], name, &index))
		return malformed(a, t, "bad thread reference");
	ret = get_proc(a, t, name, &p);
	if (ret)
		return ret;
	if (thread_find(p, index))
		return -EEXIST;
	return proc_thread(a, p, index);
}

/* Any thread, t0 included, but not the process's last (harness rule). */
long op_thread_exit(struct agent *a, struct tokens *t)
{
	char name[NAME_LEN];
	struct process *p;
	struct thread *th;
	int index, i, live = 0;
	long ret;

	if (need_tokens(a, t, 2))
		return -EINVAL;
	if (parse_thread_ref(t->tok[1], name, &index))
		return malformed(a, t, "bad thread reference");
	ret = get_proc(a, t, name, &p);
	if (ret)
		return ret;
	th = thread_find(p, index);
	if (!th || !th->alive)
		return -ESRCH;
	for (i = 0; i < p->nthreads; i++)
		live += p->thread[i].alive;
	if (live == 1)
		return -EINVAL;
	return proc_thread_exit(a, p, th);
}

long op_exit(struct agent *a, struct tokens *t)
{
	struct process *p;
	int64_t code;
	long ret;

	if (need_tokens(a, t, 3))
		return -EINVAL;
	if (parse_kv_s64(t->tok[2], "code", &code) || code < INT32_MIN ||
	    code > INT32_MAX)
		return malformed(a, t, "expected code=N");
	ret = get_proc(a, t, t->tok[1], &p);
	if (ret)
		return ret;
	return proc_exit(a, p, (int)code);
}

long op_prctl(struct agent *a, struct tokens *t)
{
	struct process *p;
	struct thread *th;
	uint64_t a2, a3;
	long ret;

	if (t->n == 3 && !strcmp(t->tok[2], "mce-kill-get")) {
		ret = get_thread(a, t, t->tok[1], &p, &th);
		return ret ? ret : call(a, p, th, CHILD_PRCTL_GET, 0, 0, 0, 0);
	}
	if (t->n != 5 || strcmp(t->tok[2], "mce-kill"))
		return malformed(a, t, "expected mce-kill A2 A3 or mce-kill-get");
	if (parse_u64(t->tok[3], &a2) || parse_u64(t->tok[4], &a3))
		return malformed(a, t, "bad number");
	ret = get_thread(a, t, t->tok[1], &p, &th);
	return ret ? ret : call(a, p, th, CHILD_PRCTL, a2, a3, 0, 0);
}

long op_sigbus(struct agent *a, struct tokens *t)
{
	static const char *const names[] = {
		[DISP_HANDLER] = "handler",
		[DISP_DEFAULT] = "default",
		[DISP_IGNORE] = "ignore",
	};
	struct process *p;
	unsigned int d;
	long ret;

	if (need_tokens(a, t, 3))
		return -EINVAL;
	for (d = 0; d < ARRAY_SIZE(names); d++) {
		if (!strcmp(t->tok[2], names[d]))
			break;
	}
	if (d == ARRAY_SIZE(names))
		return malformed(a, t, "expected handler, default or ignore");
	ret = get_proc(a, t, t->tok[1], &p);
	return ret ? ret : call(a, p, proc_first(p), CHILD_SIGACTION, d, 0, 0, 0);
}

long op_sigmask(struct agent *a, struct tokens *t)
{
	struct child_cmd cmd = { 0 };
	struct child_reply rep;
	struct process *p;
	struct thread *th;
	bool block;
	long ret;

	if (need_tokens(a, t, 3))
		return -EINVAL;
	if (!strcmp(t->tok[2], "block"))
		block = true;
	else if (!strcmp(t->tok[2], "unblock"))
		block = false;
	else
		return malformed(a, t, "expected block or unblock");
	ret = get_thread(a, t, t->tok[1], &p, &th);
	if (ret)
		return ret;
	if (block)
		return call(a, p, th, CHILD_SIGMASK, 1, 0, 0, 0);

	/*
	 * Unblocking delivers a pending SIGBUS on the way back: with the
	 * default action the process dies before it can answer.  The call
	 * itself cannot fail, so the op returned 0 (its exit follows).
	 */
	cmd.op = CHILD_SIGMASK;
	ret = proc_call(a, p, th, &cmd, &rep, NULL);
	if (ret == -EPIPE)
		return 0;
	return ret ? ret : rep.ret;
}

long op_sysctl(struct agent *a, struct tokens *t)
{
	char text[32];
	int64_t v;

	if (need_tokens(a, t, 2))
		return -EINVAL;
	if (parse_kv_s64(t->tok[1], "early-kill", &v))
		return malformed(a, t, "expected early-kill=V");
	/* Outside the guest only a stand-in file is ever written. */
	if (a->shim_fd < 0 && !getenv("HARNESS_AGENT_SYSCTL"))
		return -ENODEV;
	snprintf(text, sizeof(text), "%lld\n", (long long)v);
	return write_file(a->sysctl_path, text);
}

/* ------------------------------------------------------------------ */
/* Mappings */

static long op_mapping(struct agent *a, struct tokens *t, enum child_op op)
{
	uint64_t addr, pages, region = 0, pgoff = 0;
	struct process *p;
	long ret;

	switch (op) {
	case CHILD_MMAP:
		if (need_tokens(a, t, 6))
			return -EINVAL;
		if (parse_kv_u64(t->tok[4], "region", &region) ||
		    parse_kv_u64(t->tok[5], "pgoff", &pgoff))
			return malformed(a, t, "expected region=R pgoff=O");
		break;
	case CHILD_MADVISE:
		if (need_tokens(a, t, 5))
			return -EINVAL;
		if (!strcmp(t->tok[4], "hwpoison"))
			op = CHILD_HWPOISON;
		else if (strcmp(t->tok[4], "dontfork"))
			return malformed(a, t, "expected dontfork or hwpoison");
		break;
	case CHILD_MPROTECT: {
		static const char *const prot[] = { "none", "read", "rw" };
		const char *v;

		if (need_tokens(a, t, 5))
			return -EINVAL;
		v = kv_value(t->tok[4], "prot");
		for (region = 0; v && region < ARRAY_SIZE(prot); region++) {
			if (!strcmp(v, prot[region]))
				break;
		}
		if (!v || region == ARRAY_SIZE(prot))
			return malformed(a, t, "expected prot=none|read|rw");
		break;
	}
	case CHILD_MREMAP:
		if (need_tokens(a, t, 5))
			return -EINVAL;
		if (parse_kv_u64(t->tok[4], "to", &region))
			return malformed(a, t, "expected to=A");
		break;
	default:
		if (need_tokens(a, t, 4))
			return -EINVAL;
		break;
	}
	if (parse_kv_u64(t->tok[2], "addr", &addr) ||
	    parse_kv_u64(t->tok[3], "pages", &pages))
		return malformed(a, t, "expected addr=A pages=N");
	ret = get_proc(a, t, t->tok[1], &p);
	if (ret)
		return ret;
	/*
	 * Harness rules, for well-formed ranges (the kernel refuses the
	 * others): mremap never replaces memory outside the map window, and
	 * MADV_HWPOISON never reaches below it, where a process's own RAM is.
	 */
	if (pages && pages <= (UINT64_MAX >> PAGE_SHIFT_X86) &&
	    !((addr | (op == CHILD_MREMAP ? region : 0)) & 0xfff)) {
		if (op == CHILD_MREMAP &&
		    (region < MAP_WINDOW_FIRST || region > MAP_WINDOW_LAST ||
		     pages << PAGE_SHIFT_X86 > MAP_WINDOW_LAST + 1 - region))
			return -EPERM;
		if (op == CHILD_HWPOISON && addr < MAP_WINDOW_FIRST)
			return -EPERM;
	}
	return call(a, p, proc_first(p), op, addr, pages, region, pgoff);
}

long op_mmap(struct agent *a, struct tokens *t)
{
	return op_mapping(a, t, CHILD_MMAP);
}

long op_munmap(struct agent *a, struct tokens *t)
{
	return op_mapping(a, t, CHILD_MUNMAP);
}

long op_madvise(struct agent *a, struct tokens *t)
{
	return op_mapping(a, t, CHILD_MADVISE);
}

long op_mprotect(struct agent *a, struct tokens *t)
{
	return op_mapping(a, t, CHILD_MPROTECT);
}

long op_mremap(struct agent *a, struct tokens *t)
{
	return op_mapping(a, t, CHILD_MREMAP);
}

/* ------------------------------------------------------------------ */
/* PFN spaces: names map to the shim's ids, a name is never reused */

static struct space *space_find(struct agent *a, const char *name)
{
	int i;

	for (i = 0; i < a->nspace; i++) {
		if (!strcmp(a->space[i].name, name))
			return &a->space[i];
	}
	return NULL;
}

static int space_free_id(const struct agent *a)
{
	bool used[MAX_SPACES] = { false };
	int i;

	for (i = 0; i < a->nspace; i++) {
		if (a->space[i].id >= 0)
			used[a->space[i].id] = true;
	}
	for (i = 0; i < MAX_SPACES; i++) {
		if (!used[i])
			return i;
	}
	return -1;
}

static long shim_ioctl(struct agent *a, unsigned long cmd, void *arg)
{
	int ret;

	if (a->shim_fd < 0)
		return -ENODEV;
	ret = ioctl(a->shim_fd, cmd, arg);
	return ret < 0 ? -errno : ret;
}

long op_space_create(struct agent *a, struct tokens *t)
{
	static const char *const flavours[] = {
		[HARNESS_SHIM_CALLBACK_NONE] = "none",
		[HARNESS_SHIM_CALLBACK_NVGRACE] = "nvgrace",
		[HARNESS_SHIM_CALLBACK_STRICT] = "strict",
	};
	struct harness_shim_space req = { 0 };
	const char *cb;
	struct space *s;
	uint64_t first, last;
	long ret;
	int id;

	if (need_tokens(a, t, 5))
		return -EINVAL;
	if (!valid_name(t->tok[1]))
		return malformed(a, t, "bad space name");
	if (parse_kv_u64(t->tok[2], "first", &first) ||
	    parse_kv_u64(t->tok[3], "last", &last))
		return malformed(a, t, "expected first=F last=L");
	cb = kv_value(t->tok[4], "callback");
	if (!cb)
		return malformed(a, t, "expected callback=nvgrace|strict|none");
	for (req.callback = 0; req.callback < 3; req.callback++) {
		if (!strcmp(cb, flavours[req.callback]))
			break;
	}
	if (req.callback == 3)
		return malformed(a, t, "expected callback=nvgrace|strict|none");
	if (space_find(a, t->tok[1]))
		return -EEXIST;
	id = space_free_id(a);
	if (id < 0) {
		agent_error(a, "more than %d live spaces", MAX_SPACES);
		return -ENOSPC;
	}

	req.id = id;
	req.first = first;
	req.last = last;
	ret = shim_ioctl(a, HARNESS_SHIM_SPACE_CREATE, &req);
	if (ret)
		return ret;

	if (a->nspace == a->space_cap) {
		int cap = a->space_cap ? 2 * a->space_cap : 16;

		s = realloc(a->space, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		a->space = s;
		a->space_cap = cap;
	}
	s = &a->space[a->nspace++];
	snprintf(s->name, sizeof(s->name), "%s", t->tok[1]);
	s->id = id;
	s->inverted = first > last;
	return 0;
}

static long op_space(struct agent *a, struct tokens *t, unsigned long cmd)
{
	struct harness_shim_space_id req = { 0 };
	struct space *s;
	long ret;

	if (need_tokens(a, t, 2))
		return -EINVAL;
	if (!valid_name(t->tok[1]))
		return malformed(a, t, "bad space name");
	s = space_find(a, t->tok[1]);
	if (!s || s->id < 0)
		return -ENOENT;
	req.id = s->id;
	ret = shim_ioctl(a, cmd, &req);
	if (!ret && cmd == HARNESS_SHIM_SPACE_DESTROY)
		s->id = -1;
	if (!ret && cmd == HARNESS_SHIM_SPACE_REGISTER && s->inverted)
		a->tree_suspect = true;
	return ret;
}

long op_space_register(struct agent *a, struct tokens *t)
{
	return op_space(a, t, HARNESS_SHIM_SPACE_REGISTER);
}

long op_space_unregister(struct agent *a, struct tokens *t)
{
	return op_space(a, t, HARNESS_SHIM_SPACE_UNREGISTER);
}

long op_space_destroy(struct agent *a, struct tokens *t)
{
	return op_space(a, t, HARNESS_SHIM_SPACE_DESTROY);
}

/* ------------------------------------------------------------------ */
/* Triggers */

/* -ENODEV outside the guest (no shim: never poison the host), -EPERM (rule). */
static long inject_allowed(struct agent *a, uint64_t pfn)
{
	if (a->shim_fd < 0)
		return -ENODEV;
	if (!pfn_injectable(a, pfn))
		return -EPERM;
	return 0;
}

/* The one field of an op `KEYWORD pfn=X`, under the injects' rule. */
static long inject_pfn_arg(struct agent *a, struct tokens *t, uint64_t *pfn)
{
	if (need_tokens(a, t, 2))
		return -EINVAL;
	if (parse_kv_u64(t->tok[1], "pfn", pfn))
		return malformed(a, t, "expected pfn=X");
	return inject_allowed(a, *pfn);
}

/*
 * A poison from a thread of a logical process.  When that process dies of
 * the SIGBUS before it can answer (forced AR), the value comes from the
 * kretprobe on memory_failure(); sysfs maps it as hard_offline_page does.
 */
static long op_inject_thread(struct agent *a, struct tokens *t, bool sysfs)
{
	struct child_cmd cmd = { 0 };
	struct child_reply rep;
	uint64_t pfn, flags = 0;
	struct process *p;
	struct thread *th;
	pid_t tid;
	long ret;

	if (need_tokens(a, t, sysfs ? 3 : 4))
		return -EINVAL;
	if (parse_kv_u64(t->tok[2], "pfn", &pfn))
		return malformed(a, t, "expected pfn=X");
	if (!sysfs && (parse_kv_u64(t->tok[3], "flags", &flags) ||
		       flags > UINT32_MAX))
		return malformed(a, t, "expected flags=F");
	ret = get_thread(a, t, t->tok[1], &p, &th);
	if (ret)
		return ret;
	ret = inject_allowed(a, pfn);
	if (ret)
		return ret;

	tid = th->tid;
	cmd.op = sysfs ? CHILD_INJECT_SYSFS : CHILD_INJECT_SHIM;
	cmd.arg[0] = pfn;
	cmd.arg[1] = flags;
	ret = proc_call(a, p, th, &cmd, &rep, NULL);
	if (!ret)
		return rep.ret;
	if (ret != -EPIPE)
		return ret;

	trace_poll(a, 0);
	if (!mf_ret_of(a, tid, &ret)) {
		agent_error(a, "%s died before answering; no mf_ret record for tid %d",
			    p->name, tid);
		return -ESRCH;
	}
	if (sysfs && ret == -EOPNOTSUPP)
		ret = 0;
	return ret;
}

long op_inject_sysfs(struct agent *a, struct tokens *t)
{
	return op_inject_thread(a, t, true);
}

long op_inject_shim(struct agent *a, struct tokens *t)
{
	return op_inject_thread(a, t, false);
}

long op_inject_queue(struct agent *a, struct tokens *t)
{
	struct harness_shim_poison req = { .mode = HARNESS_SHIM_POISON_QUEUE };
	uint64_t pfn, flags;
	long ret;

	if (need_tokens(a, t, 3))
		return -EINVAL;
	if (parse_kv_u64(t->tok[1], "pfn", &pfn) ||
	    parse_kv_u64(t->tok[2], "flags", &flags) || flags > UINT32_MAX)
		return malformed(a, t, "expected pfn=X flags=F");
	ret = inject_allowed(a, pfn);
	if (ret)
		return ret;
	req.pfn = pfn;
	req.flags = (uint32_t)flags;
	ret = shim_ioctl(a, HARNESS_SHIM_POISON, &req);
	if (ret)
		return ret;
	/* The queue's worker runs soft_offline_page() for MF_SOFT_OFFLINE (1 << 3). */
	if (trace_wait_queue_done(a, EVENT_TIMEOUT_MS))
		return 0;
	if (flags & (1 << 3))
		trace_wait_soft_offline(a, pfn, EVENT_TIMEOUT_MS);
	else
		trace_wait_pfn(a, pfn, EVENT_TIMEOUT_MS);
	return 0;
}

/* The host has injected the machine check: wait for its event. */
long op_inject_mce(struct agent *a, struct tokens *t)
{
	uint64_t pfn;
	long ret;

	ret = inject_pfn_arg(a, t, &pfn);
	if (ret)
		return ret;
	if (!pfn_mce_injectable(a, pfn))
		return -EPERM;
	if (trace_wait_pfn(a, pfn, EVENT_TIMEOUT_MS))
		trace_wait_mce_done(a, MCE_DONE_TIMEOUT_MS);
	return 0;
}

static char *read_line(struct agent *a);

struct mce_ar {
	uint64_t pfn;
	bool injected;
};

/*
 * While the thread spins: ask the host to inject ("mce-ar BEGIN END", the
 * loop's addresses), read its answer ("injected N" or "missed N"), wait for
 * the failure's event, then let the thread stop.
 */
static void mce_ar_during(struct agent *a, void *arg)
{
	const struct timespec pause = { .tv_nsec = 100 * 1000 };
	int64_t deadline = now_ms() + REPLY_TIMEOUT_MS / 2;
	struct mce_ar *m = arg;
	char *line;

	while (!__atomic_load_n(&spin_ctl->spinning, __ATOMIC_SEQ_CST)) {
		if (now_ms() > deadline) {
			agent_error(a, "inject-mce-ar: the thread did not start spinning");
			goto stop;
		}
		nanosleep(&pause, NULL);
	}
	dprintf(a->out, "mce-ar 0x%llx 0x%llx\n",
		(unsigned long long)(uintptr_t)agent_spin_begin,
		(unsigned long long)(uintptr_t)agent_spin_end);
	line = read_line(a);
	m->injected = line && !strncmp(line, "injected ", 9);
	if (!m->injected) {
		agent_error(a, "inject-mce-ar: the host did not inject (%s)",
			    line ? line : "no answer");
		goto stop;
	}
	if (trace_wait_pfn(a, m->pfn, EVENT_TIMEOUT_MS))
		trace_wait_mce_done(a, MCE_DONE_TIMEOUT_MS);
stop:
	__atomic_store_n(&spin_ctl->stop, 1, __ATOMIC_SEQ_CST);
}

/*
 * An action-required machine check consumed by a thread (C5.4): the thread
 * spins in user mode and the host injects while the CPU runs that loop, so
 * memory_failure(pfn, MF_ACTION_REQUIRED) runs in the thread's context.  The
 * result is that call's return (the harness/mf_ret kretprobe, by tid; from
 * the event when there is no probe).
 */
long op_inject_mce_ar(struct agent *a, struct tokens *t)
{
	struct child_cmd cmd = { .op = CHILD_SPIN };
	struct mce_ar m = { 0 };
	struct child_reply rep;
	struct process *p;
	struct thread *th;
	long ret, mf;
	pid_t tid;
	int i;

	if (need_tokens(a, t, 3))
		return -EINVAL;
	if (parse_kv_u64(t->tok[2], "pfn", &m.pfn))
		return malformed(a, t, "expected pfn=X");
	ret = get_thread(a, t, t->tok[1], &p, &th);
	if (ret)
		return ret;
	ret = inject_allowed(a, m.pfn);
	if (ret)
		return ret;
	if (!pfn_mce_injectable(a, m.pfn))
		return -EPERM;
	if (!spin_ctl)
		return -ENOMEM;
	__atomic_store_n(&spin_ctl->spinning, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&spin_ctl->stop, 0, __ATOMIC_SEQ_CST);
	tid = th->tid;
	ret = proc_call_while(a, p, th, &cmd, &rep, NULL, mce_ar_during, &m);
	if (ret && ret != -EPIPE)
		return ret;
	if (!m.injected)
		return -EAGAIN;
	trace_poll(a, 0);
	if (mf_ret_of(a, tid, &mf))
		return mf;
	for (i = 0; i < a->nevents; i++) {
		if (a->event[i].pfn == m.pfn)
			return strcmp(a->event[i].result, "ignored") ? 0 : -EBUSY;
	}
	agent_error(a, "inject-mce-ar: no memory_failure() record for tid %d",
		    tid);
	return -EIO;
}

/* debugfs hwpoison/corrupt-pfn (C5.2), under the injects' rule. */
long op_corrupt_pfn(struct agent *a, struct tokens *t)
{
	char text[32];
	uint64_t pfn;
	long ret;

	ret = inject_pfn_arg(a, t, &pfn);
	if (ret)
		return ret;
	snprintf(text, sizeof(text), "%llu\n", (unsigned long long)pfn);
	return write_file(CORRUPT_PFN, text);
}

/*
 * Two memory_failure(pfn, 0) calls at once from two threads of the agent
 * (C2.1, VM/repro/race.c): the first error, else the most pfn_to_vma_pgoff()
 * callbacks that ran at once.
 */
long op_mf_race(struct agent *a, struct tokens *t)
{
	uint64_t pfn;
	long ret;

	ret = inject_pfn_arg(a, t, &pfn);
	if (ret)
		return ret;
	return mf_race_calls(a->shim_fd, pfn);
}

/* The kernel log's memory-failure lines since the last mf-log (C2.7). */
long op_mf_log(struct agent *a, struct tokens *t)
{
	if (need_tokens(a, t, 1))
		return -EINVAL;
	if (a->kmsg_fd < 0)
		return -ENODEV;
	mflog_read(a, true);
	return 0;
}

/* HardwareCorrupted's change since the sequence began, in pages (C2.8). */
long op_hw_corrupted(struct agent *a, struct tokens *t)
{
	long kb;

	if (need_tokens(a, t, 1))
		return -EINVAL;
	kb = corrupted_kb();
	if (kb < 0 || a->corrupted_base_kb < 0)
		return -ENODEV;
	return (kb - a->corrupted_base_kb) >> (PAGE_SHIFT_X86 - 10);
}

static void flush(struct agent *a, struct buf *b);

/*
 * "reset": brings the guest back to the state the agent started in, so that
 * the next sequence can run without restoring a snapshot, and says whether
 * it could: one "dirty WHAT" line per thing that is not as at start (the
 * host then restores the snapshot).  Processes are killed, dma-bufs,
 * attachments and VFIO devices closed, the early-kill sysctl restored, and
 * the shim unregisters every space it registered and frees them, after the
 * kernel has shown that no space is left in its tree (HARNESS_SHIM_RESET);
 * names are forgotten.
 */
static void reset(struct agent *a)
{
	struct buf dirty = { 0 };
	char val[16];
	long ret;

	proc_reset(a, &dirty);
	dmabuf_reset(a, &dirty);
	if (a->tree_suspect) {
		/*
		 * The kernel keeps an inverted range in its tree after unregister
		 * (findings 0005, 0009, 0010), maybe inserted twice or freed: the probe
		 * would hang or oops on it.  Nothing is freed; restore instead.
		 */
		buf_printf(&dirty, "dirty an inverted range was registered: the kernel's PFN-space tree cannot be trusted (findings 0005, 0009, 0010)\n");
	} else if (a->shim_fd >= 0) {
		ret = shim_ioctl(a, HARNESS_SHIM_RESET, NULL);
		if (ret == -EBUSY)
			buf_printf(&dirty, "dirty the kernel's PFN-space tree is not empty after unregistering every space\n");
		else if (ret)
			buf_printf(&dirty, "dirty HARNESS_SHIM_RESET: %s\n",
				   strerror((int)-ret));
	}
	a->nspace = 0;
	/* As op_sysctl: outside the guest only a stand-in file is written. */
	if (a->boot_early_kill[0] &&
	    (a->shim_fd >= 0 || getenv("HARNESS_AGENT_SYSCTL"))) {
		ret = write_file(a->sysctl_path, a->boot_early_kill);
		if (ret || read_file(a->sysctl_path, val, sizeof(val)) < 0 ||
		    strcmp(val, a->boot_early_kill))
			buf_printf(&dirty, "dirty cannot restore %s\n",
				   a->sysctl_path);
	}
	trace_report(a);
	buf_reset(&a->mf);
	mflog_read(a, false);
	a->corrupted_base_kb = corrupted_kb();
	buf_printf(&dirty, ".\n");
	flush(a, &dirty);
	free(dirty.data);
}

/* ------------------------------------------------------------------ */
/* The protocol */

static void flush(struct agent *a, struct buf *b)
{
	watch_end();
	if (write_all(a->out, b->data, b->len)) {
		fprintf(stderr, "agent: cannot write the control channel: %s\n",
			strerror(errno));
		exit(1);
	}
}

static void say_hello(struct agent *a);

/* The op's entry in the table (ops.h), or NULL for an unknown keyword. */
static const struct agent_op *find_op(const char *keyword)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(agent_ops); i++) {
		if (!strcmp(keyword, agent_ops[i].name))
			return &agent_ops[i];
	}
	return NULL;
}

/* Executes one line and writes its observations; blank and # lines: nothing. */
static void handle_line(struct agent *a, char *line)
{
	const struct agent_op *op = NULL;
	struct timespec start, end;
	struct buf out = { 0 };
	struct tokens t;
	char tmp[32];
	long ret;

	line[strcspn(line, "\r")] = '\0';
	if (!strncmp(line, "echo ", 5)) {
		/* The rest of the line as a reply, unchecked: the host's fault tests. */
		dprintf(a->out, "%s\n.\n", line + 5);
		return;
	}
	a->op_ms = 0;
	buf_reset(&a->res);
	buf_reset(&a->sig);
	buf_reset(&a->exits);
	buf_reset(&a->mf);
	buf_reset(&a->notify);
	buf_reset(&a->sgt);
	buf_reset(&a->fdinfo);
	buf_reset(&a->err);
	buf_reset(&a->bpf);

	ret = tokenize(line, &t);
	if (!ret && (!t.n || t.tok[0][0] == '#'))
		return;
	if (!ret && t.n == 1 && !strcmp(t.tok[0], "ping")) {
		write_all(a->out, ".\n", 2);
		return;
	}
	if (!ret && t.n == 1 && !strcmp(t.tok[0], "reset")) {
		watch_begin();
		reset(a);
		return;
	}
	if (!ret && t.n == 2 && !strcmp(t.tok[0], "mark")) {
		ret = console_mark(a, t.tok[1]);
		if (ret)
			dprintf(a->out, "error cannot write /dev/kmsg: %s\n",
				strerror((int)-ret));
		write_all(a->out, ".\n", 2);
		return;
	}
	if (!ret && t.n == 1 && !strcmp(t.tok[0], "hello")) {
		say_hello(a);
		return;
	}
	if (!ret && t.n == 1 && !strcmp(t.tok[0], "die")) {
		/* No answer: pid1 reports the death and powers off (fault tests). */
		kill(getpid(), SIGKILL);
		return;
	}
	if (!ret && t.n == 1 && !strcmp(t.tok[0], "coverage")) {
		gcov_dump(a);
		return;
	}
	if (ret) {
		agent_error(a, "malformed line: too many tokens");
		ret = -EINVAL;
	} else {
		op = find_op(t.tok[0]);
		if (op) {
			watch_begin();
			observer_begin(a);
			clock_gettime(CLOCK_MONOTONIC, &start);
			ret = op->run(a, &t);
			clock_gettime(CLOCK_MONOTONIC, &end);
			a->op_ms = (end.tv_sec - start.tv_sec) * 1000L +
				   (end.tv_nsec - start.tv_nsec) / 1000000L;
		} else {
			agent_error(a, "malformed line: unknown op: %s", t.tok[0]);
			ret = -EINVAL;
		}
	}

	if (ret < 0)
		buf_printf(&a->res, "= %s\n", errno_name(ret, tmp, sizeof(tmp)));
	else
		buf_printf(&a->res, "= %ld\n", ret);

	proc_sync(a, op && (op->flags & OP_COLLECT));
	trace_report(a);
	dmabuf_report(a);
	if (op)
		observer_report(a, &a->bpf);

	buf_append(&out, &a->res);
	buf_append(&out, &a->sig);
	buf_append(&out, &a->exits);
	buf_append(&out, &a->mf);
	buf_append(&out, &a->notify);
	buf_append(&out, &a->sgt);
	buf_append(&out, &a->fdinfo);
	buf_append(&out, &a->err);
	buf_append(&out, &a->bpf);
	buf_printf(&out, ".\n");
	flush(a, &out);
	free(out.data);
}

/*
 * The next line, NUL terminated, or NULL at the end of input.  On the port
 * read() returns 0 while no host is connected: wait and retry.
 */
static char *read_line(struct agent *a)
{
	static char line[sizeof(a->inbuf) + 1];
	struct timespec wait = { .tv_nsec = 5 * 1000 * 1000 };

	for (;;) {
		char *nl = memchr(a->inbuf, '\n', a->inlen);
		ssize_t n;

		if (nl) {
			size_t len = nl - a->inbuf;

			memcpy(line, a->inbuf, len);
			line[len] = '\0';
			memmove(a->inbuf, nl + 1, a->inlen - len - 1);
			a->inlen -= len + 1;
			if (a->overlong) {
				a->overlong = false;
				snprintf(line, sizeof(line), "line-too-long");
			}
			return line;
		}
		if (a->inlen == sizeof(a->inbuf)) {
			/* An overlong line: dropped up to its end, one answer. */
			a->inlen = 0;
			a->overlong = true;
		}

		n = read(a->in, a->inbuf + a->inlen,
			 sizeof(a->inbuf) - a->inlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "agent: read: %s\n", strerror(errno));
			return NULL;
		}
		if (n == 0) {
			if (!a->is_port)
				return NULL;
			nanosleep(&wait, NULL);
			continue;
		}
		a->inlen += n;
	}
}

/* ------------------------------------------------------------------ */
/* Facts */

static void fact_cpu(const struct agent *a, struct buf *b)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256], vendor[64] = "unknown";
	int family = -1, model = -1;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (!colon)
			continue;
		if (!strncmp(line, "vendor_id\t", 10) &&
		    sscanf(colon + 1, " %63s", vendor) != 1)
			snprintf(vendor, sizeof(vendor), "unknown");
		else if (!strncmp(line, "cpu family\t", 11) && family < 0)
			family = atoi(colon + 1);
		else if (!strncmp(line, "model\t", 6) && model < 0)
			model = atoi(colon + 1);
		else if (line[0] == '\n' && family >= 0)
			break;	/* the first CPU is enough */
	}
	fclose(f);
	buf_printf(b, "fact cpu vendor=%s family=%d model=%d physbits=%d\n",
		   vendor, family, model, a->phys_bits);
}

static void fact_devmem(struct agent *a, struct buf *b)
{
	struct harness_shim_info info;

	if (a->shim_fd < 0 || ioctl(a->shim_fd, HARNESS_SHIM_INFO, &info))
		return;
	info.bdf[sizeof(info.bdf) - 1] = '\0';
	buf_printf(b, "fact devmem bdf=%s phys=0x%llx size=0x%llx\n", info.bdf,
		   (unsigned long long)info.devmem_phys,
		   (unsigned long long)info.devmem_size);
}

/* none: no IOMMU groups; dma: a translating default domain; else passthrough. */
static void fact_iommu(struct buf *b)
{
	DIR *d = opendir("/sys/kernel/iommu_groups");
	bool groups = false, dma = false;
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[300], type[32];

		if (e->d_name[0] == '.')
			continue;
		groups = true;
		snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%s/type",
			 e->d_name);
		if (read_file(path, type, sizeof(type)) > 0 &&
		    !strncmp(type, "DMA", 3))
			dma = true;
	}
	if (d)
		closedir(d);
	buf_printf(b, "fact iommu %s\n",
		   !groups ? "none" : dma ? "dma" : "passthrough");
}

static void say_hello(struct agent *a)
{
	struct buf b = { 0 };
	struct utsname u;
	char val[32];
	int i;

	buf_printf(&b, "hello harness-agent %d\n", AGENT_VERSION);
	if (!uname(&u))
		buf_printf(&b, "fact kernel release=%s\n", u.release);
	fact_cpu(a, &b);
	fact_devmem(a, &b);
	for (i = 0; i < a->nram; i++)
		buf_printf(&b, "fact ram first=0x%llx last=0x%llx\n",
			   (unsigned long long)a->ram[i].first,
			   (unsigned long long)a->ram[i].last);
	fact_iommu(&b);
	dmabuf_facts(a, &b);
	if (read_file(EARLY_KILL_SYSCTL, val, sizeof(val)) > 0)
		buf_printf(&b, "fact early-kill %d\n", atoi(val));
	if (a->trace_fd >= 0)
		buf_printf(&b, "fact probes mf_ret=%d so_ret=%d mfq_ret=%d mce_ret=%d\n",
			   a->have_kretprobe, a->have_so_kretprobe,
			   a->have_mfq_kretprobe, a->have_mce_kretprobe);
	observer_fact(a, &b);
	buf_printf(&b, ".\n");
	flush(a, &b);
	free(b.data);
}

static int open_channel(struct agent *a, const char *path)
{
	if (!strcmp(path, "-")) {
		a->in = STDIN_FILENO;
		a->out = STDOUT_FILENO;
		a->is_port = false;
		return 0;
	}
	a->in = open(path, O_RDWR | O_CLOEXEC);
	if (a->in < 0)
		return -errno;
	a->out = a->in;
	a->is_port = true;
	return 0;
}

int main(int argc, char **argv)
{
	static struct agent agent;
	struct agent *a = &agent;
	char *line;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: %s /dev/vportNpM | -\n", argv[0]);
		return 2;
	}
	ret = open_channel(a, argv[1]);
	if (ret) {
		fprintf(stderr, "agent: cannot open %s: %s\n", argv[1],
			strerror(-ret));
		return 1;
	}

	signal(SIGPIPE, SIG_IGN);
	/* Children of forked logical processes are reparented to us. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL))
		fprintf(stderr, "agent: PR_SET_CHILD_SUBREAPER: %s\n",
			strerror(errno));

	a->trace_fd = -1;
	a->marker_fd = -1;
	mflog_open(a);
	a->corrupted_base_kb = corrupted_kb();
	a->shim_fd = open(HARNESS_SHIM_DEVICE, O_RDWR | O_CLOEXEC);
	a->shim_errno = a->shim_fd < 0 ? errno : 0;
	a->sysctl_path = getenv("HARNESS_AGENT_SYSCTL");
	if (!a->sysctl_path)
		a->sysctl_path = EARLY_KILL_SYSCTL;
	if (read_file(a->sysctl_path, a->boot_early_kill,
		      sizeof(a->boot_early_kill)) < 0)
		a->boot_early_kill[0] = '\0';
	ram_load(a);
	if (spin_ctl_setup())
		fprintf(stderr, "agent: no spin page: inject-mce-ar fails\n");
	a->phys_bits = cpu_phys_bits();
	a->dmabuf_trace_fd = -1;
	if (a->shim_fd >= 0) {
		trace_setup(a);
		a->dmabuf_trace_fd = dma_buf_trace_open();
		if (a->dmabuf_trace_fd < 0)
			fprintf(stderr, "agent: no dma_buf trace instance: %s\n",
				strerror(-a->dmabuf_trace_fd));
	}
	dmabuf_discover(a);
	observer_setup(a);
	ret = watch_init(a->out);
	if (ret)
		fprintf(stderr, "agent: no stuck-op watcher: %s\n",
			strerror(-ret));

	say_hello(a);
	while ((line = read_line(a)))
		handle_line(a, line);

	proc_shutdown(a);
	return 0;
}
