/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * repro.h - the runtime of harness reproducers
 *
 * A reproducer is one straight-line main(): one call per op of a harness
 * sequence, each followed by check(), which compares what the kernel did with
 * what the contract predicts, in the harness's own observation lines
 * (Corpora/README.md): "= 0", "sig p1.t0 SIGBUS AO addr=0x... lsb=12",
 * "exit p1 signal=SIGKILL", "mf pfn=0x... type=20 result=recovered",
 * "notify a1", "sgt a1 nents=1 orig=0 0x.../0x...", "fdinfo b1 ...",
 * "failure kernel \"WARNING: ...\"".
 *
 * `harness repro` builds a reproducer from the files of this directory: it
 * copies, in file order, only the definitions that main() reaches (a
 * definition is a top-level block that starts in column 0 and ends at the
 * next blank line), so a reproducer carries only the helpers it needs.  Each
 * .c file here also compiles on its own (gcc -Wall -Wextra -Werror -c), and
 * the test suite checks that.
 *
 * Conventions: helpers return 0, a non-negative value, or -errno, as the
 * kernel does; they run in the context the op names (a logical thread, or
 * the "kernel-side" worker for ops without a process context) through
 * call(); observations of the current step accumulate in obs_line() and
 * check() consumes them.
 */
#ifndef HARNESS_REPRO_H
#define HARNESS_REPRO_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define MAX_TASKS	32	/* logical threads, the worker included */
#define MAX_PROCS	16
#define MAX_LINES	128	/* observation lines of one step */
#define OP_DEADLINE_MS	5000	/* no op of the vocabulary takes this long */

/* check.c: observations of the current step, KTAP, the verdict */
struct ktap_totals {
	int passed;
	int failed;
	int skipped;
};

extern struct ktap_totals *totals;
void obs_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void obs_key(int key);
void require_symbol(const char *symbol);
void obs_ret(long ret);
void check(int step, const char *op, const char *expected);
void skip_step(int step, const char *op, const char *why);
int finish(void);
void skip_all(const char *why);
void bail_out(const char *why);

/* guard.c: the guardian, and the op that runs */
#define INJECT_SHIM	4	/* the op calls memory_failure() in a task */
#define INJECT_SYSFS	8	/* the op writes hard_offline_page */
#define INJECT_ANY	(INJECT_SHIM | INJECT_SYSFS)
#define INJECT_MCE_AR	16	/* memory_failure() runs in the thread (C5.4) */
void guard(void);
long become(const char *name);
void begin(int step, const char *op, const char *expected, int how);
void step_returned(long ret);
int step_how(void);
void step_done(void);
void step_skip(const char *why);

/* signal.c: the SIGBUS handler and its log */
#define MAX_SIGNALS	16	/* per thread and op */
struct signal_record {
	int code;
	unsigned long addr;
	int lsb;
};

long set_sigbus(long how, long unused1, long unused2, long unused3);
int signals_take(struct signal_record *rec);
void signals_report(const char *name, int key,
		    const struct signal_record *rec, int n);

/* task.c: logical processes and threads (when there are several) */
#define TASK_DIED	(-0x7fffffffL)	/* the task's process ended first */
typedef long (*task_fn)(long, long, long, long);
extern const int ntasks;
extern int kernel_broken;
extern const char *const proc_name[];
extern const char *const task_name[];
extern const int task_proc[];
void tasks_init(void);
long call(int task, task_fn fn, long a, long b, long c, long d);
long spawn(int task);
long fork_from(int task, int child_task);
long thread_create(int parent_task, int task);
long thread_exit(int task);
long proc_exit(int task, int code);
void sync_all(void);

/* mf.c: the memory-failure ops */
extern int shim_fd;
void shim_open(void);
long mask_sigbus(long block, long unused1, long unused2, long unused3);
long mce_kill(long arg2, long arg3, long unused1, long unused2);
long mce_kill_get(long unused0, long unused1, long unused2, long unused3);
long map_device(long addr, long pages, long region, long pgoff);
long unmap_device(long addr, long pages, long unused1, long unused2);
long dontfork(long addr, long pages, long unused1, long unused2);
long sysctl_early_kill(long value, long unused1, long unused2, long unused3);
long space_create(long id, long callback, long first, long last);
long space_op(long cmd, long id, long unused1, long unused2);
long poison(long pfn, long flags, long mode, long unused);
long hard_offline(long pfn, long unused1, long unused2, long unused3);
long inject_mce(long pfn, long unused1, long unused2, long unused3);
long inject_mce_ar(long pfn, long unused1, long unused2, long unused3);
extern const char repro_spin_begin[], repro_spin_end[];
long protect_device(long addr, long pages, long prot, long unused);
long move_device(long addr, long pages, long to, long unused);
long hwpoison_range(long addr, long pages, long unused1, long unused2);
long corrupt_pfn(long pfn, long unused1, long unused2, long unused3);
void corrupted_open(void);
long hw_corrupted(long unused0, long unused1, long unused2, long unused3);
long inject_check(long pfn);

/* race.c: two memory_failure() calls at once (C2.1), shared with the agent */
long mf_race_calls(int shim, unsigned long pfn);

/* trace.c: memory-failure events (tracefs), waiting for queued work */
#define WAIT_QUEUE	1	/* the op queued memory_failure_work_func() */
#define WAIT_MCE	2	/* the op raised a machine check */
void trace_open(void);
int trace_collect(int wait);
long trace_died_ret(int sysfs);

/* kmsg.c: kernel failure reports */
void kmsg_open(void);
int kmsg_collect(void);
void mf_log_open(void);
long mf_log(long unused0, long unused1, long unused2, long unused3);

/*
 * dmabuf.c: VFIO export and the shim's importer (names for observations);
 * its kernel calls are vfio.c's, which vfio.h declares for the agent too
 */
extern const char *const buf_name[];
extern const char *const att_name[];
void dmabuf_open(void);
long vfio_open(int dev);
long vfio_close(int dev);
long vfio_memory(int dev, int on);
long vfio_reset(int dev);
long vfio_low_power_op(int dev, int mode, int efd);
long vfio_config(int dev, unsigned long long offset, unsigned int width,
		 unsigned long long value);
long vfio_hot_reset(int dev);
long vfio_power(int dev);
long export_buf(int buf, int dev, unsigned int feature, unsigned int argsz,
		unsigned int region, unsigned int open_flags, unsigned int flags,
		unsigned int nr, int nranges, const unsigned long long *ranges);
long buf_close(int buf);
long buf_fdinfo(int buf);
long buf_bufinfo(int buf);
void buf_trace_open(void);
long buf_trace(void);
long imp_attach(int att, int buf, int importer, int dynamic);
long imp_map(int att);
long imp_unmap(int att);
long imp_detach(int att);
long imp_mode(int att, unsigned int mode);
void imp_collect(void);
long ioas_alloc(int ioas);
long ioas_device(int ioas, int dev);
long ioas_map_file(int map, int ioas, int buf, unsigned long long start,
		   unsigned long long length, int fixed,
		   unsigned long long iova);
long ioas_unmap(int map);

#endif
