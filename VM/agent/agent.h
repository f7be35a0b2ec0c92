/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The harness guest agent: shared declarations.
 *
 * agent.c   the protocol loop, facts, op dispatch (PROTOCOL.md)
 * parse.c   op lines: tokens, numbers, names
 * proc.c    the agent's side of the logical processes: table, channels, sync
 * child.c   the logical processes themselves (run in the forked children)
 * mf.c      memory-failure helpers: RAM ranges, injectability, tracefs
 * dmabuf.c  the dma-buf ops: VFIO devices, export, the shim's importer
 *           (their kernel calls: ../repro/vfio.c, shared with reproducers)
 * util.c    output buffers, errno and signal names, clocks, channels
 * watch.c   the stuck-op watcher (a thread spinning in the kernel)
 * gcov.c    the coverage command: the kernel's gcov counts to the host
 * observer.c the libbpf observer: the kernel's decisions inside the series
 *           (its BPF programs: observer.bpf.c, records: observer.h)
 */
#ifndef HARNESS_AGENT_H
#define HARNESS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(x)		(sizeof(x) / sizeof((x)[0]))
#define __printf(a, b)		__attribute__((format(printf, a, b)))
#define __noreturn		__attribute__((noreturn))

#define AGENT_VERSION		1
#define NAME_LEN		32	/* process and space names, with NUL */
#define MAX_THREADS		64	/* threads per logical process, ever */
#define MAX_SPACES		256	/* the shim's space ids 0..255 */
#define MAX_RAM			64	/* System RAM ranges in /proc/iomem */
#define MAX_EVENTS		64	/* memory-failure events per op */
#define MAX_EXPORTERS		8	/* VFIO exporter devices x0.. */
#define SIG_BATCH		32	/* signal records per reply */
#define SIGLOG_LEN		256	/* signal records a thread keeps */
#define REPLY_TIMEOUT_MS	2000	/* a child must answer within this */
#define EVENT_TIMEOUT_MS	3000	/* inject-queue, inject-mce */
#define MCE_DONE_TIMEOUT_MS	1000	/* the MCE notifiers, after the event */
#define PAGE_SHIFT_X86		12
#define SECTION_PFN_SHIFT	15	/* 128 MiB sections */

/* ------------------------------------------------------------------ */
/* Agent <-> logical process messages (SOCK_SEQPACKET, one per message) */

enum child_op {
	CHILD_READY = 1,	/* unsolicited: a new thread or process */
	CHILD_SYNC,		/* report the signal log */
	CHILD_EXIT,		/* exit_group(arg0); no reply */
	CHILD_THREAD,		/* create thread in slot arg0; fd reply */
	CHILD_THREAD_EXIT,	/* this thread replies, then exits (t0 too) */
	CHILD_JOIN,		/* join slot arg0, wait until it is gone */
	CHILD_FORK,		/* fork the child; fd reply */
	CHILD_PRCTL,		/* prctl(PR_MCE_KILL, arg0, arg1, 0, 0) */
	CHILD_PRCTL_GET,	/* prctl(PR_MCE_KILL_GET, 0, 0, 0, 0) */
	CHILD_SIGACTION,	/* enum disposition arg0 */
	CHILD_SIGMASK,		/* arg0: 1 block, 0 unblock */
	CHILD_MMAP,		/* addr, pages, region, pgoff */
	CHILD_MUNMAP,		/* addr, pages */
	CHILD_MADVISE,		/* addr, pages: MADV_DONTFORK */
	CHILD_INJECT_SYSFS,	/* pfn */
	CHILD_INJECT_SHIM,	/* pfn, flags */
	CHILD_MPROTECT,		/* addr, pages, prot */
	CHILD_MREMAP,		/* addr, pages, new addr: MAYMOVE | FIXED */
	CHILD_HWPOISON,		/* addr, pages: MADV_HWPOISON */
	CHILD_SPIN,		/* spin in user mode until spin_ctl->stop */
};

enum disposition {
	DISP_HANDLER,
	DISP_DEFAULT,
	DISP_IGNORE,
};

struct child_cmd {
	uint32_t seq;
	uint32_t op;
	uint64_t arg[5];
};

/* One SIGBUS as the handler saw it. */
struct sig_rec {
	int32_t signo;
	int32_t code;
	uint64_t addr;
	int32_t lsb;
	int32_t slot;		/* thread slot that ran the handler */
};

struct child_reply {
	uint32_t seq;		/* the command's; 0 for CHILD_READY */
	uint32_t nsig;		/* records in sig[] */
	int64_t ret;		/* value or -errno; READY: pid */
	int64_t tid;		/* gettid() of the replying thread */
	uint32_t lost;		/* records dropped since the last SYNC */
	uint32_t more;		/* SYNC: more records are waiting */
	/*
	 * THREAD, FORK: the agent's ends of the new channel, as descriptors
	 * of the replying process (the agent copies them with pidfd_getfd());
	 * -1 otherwise.
	 */
	int32_t xfer_rx;
	int32_t xfer_tx;
	struct sig_rec sig[SIG_BATCH];
};

#define REPLY_HEADER_SIZE	offsetof(struct child_reply, sig)

/*
 * A channel between the agent and one thread of a logical process: two
 * packet-mode pipes (O_DIRECT: a read returns exactly one write, as a
 * SOCK_SEQPACKET socket would, without needing CONFIG_NET), one each way.
 * The agent's end reads replies (rx) and writes commands (tx); the
 * thread's end the other way round.  A reply message is smaller than
 * PIPE_BUF, so no write is split.
 */
struct chan {
	int rx;
	int tx;
};

#define CHAN_NONE	((struct chan) { .rx = -1, .tx = -1 })

/* util.c */
int chan_open(struct chan *agent_end, struct chan *thread_end);
void chan_close(struct chan *c);

/* child.c: run in a freshly forked child; never returns. */
void child_spawned(struct chan chan) __noreturn;

/*
 * inject-mce-ar: one page shared by the agent and every logical process
 * (MAP_SHARED before the first spawn; fork keeps it).  A thread told
 * CHILD_SPIN sets spinning, runs agent_spin() until stop is set, clears
 * spinning.  The host injects only while the CPU is at CPL 3 with RIP in
 * [agent_spin_begin, agent_spin_end) (PROTOCOL.md).
 */
struct spin_ctl {
	uint32_t spinning;
	uint32_t stop;
};
extern struct spin_ctl *spin_ctl;
void agent_spin(const uint32_t *stop);
extern const char agent_spin_begin[], agent_spin_end[];
int spin_ctl_setup(void);

/* ------------------------------------------------------------------ */
/* util.c */

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_printf(struct buf *b, const char *fmt, ...)
	__printf(2, 3);
void buf_append(struct buf *b, const struct buf *from);
void buf_reset(struct buf *b);
const char *errno_name(long err, char *tmp, size_t len);
const char *signal_name(int sig, char *tmp, size_t len);
int64_t now_ms(void);
void wait_step(int step);
int write_all(int fd, const void *data, size_t len);
int read_file(const char *path, char *out, size_t len);
int write_file(const char *path, const char *text);

/* ------------------------------------------------------------------ */
/* parse.c */

#define MAX_TOKENS	24

struct tokens {
	int n;
	char *tok[MAX_TOKENS];
};

int tokenize(char *line, struct tokens *t);
bool valid_name(const char *s);
int parse_u64(const char *s, uint64_t *v);
int parse_s64(const char *s, int64_t *v);
int parse_thread_ref(const char *s, char *proc, int *index);
int parse_kv_u64(const char *tok, const char *key, uint64_t *v);
int parse_kv_s64(const char *tok, const char *key, int64_t *v);
const char *kv_value(const char *tok, const char *key);

/* ------------------------------------------------------------------ */
/* The agent's state (one instance, in agent.c) */

struct thread {
	int index;		/* N of P.tN */
	int slot;		/* creation order in its process */
	struct chan chan;	/* agent's end, CHAN_NONE when gone */
	pid_t tid;
	uint32_t sync_seq;	/* SYNC in flight, 0 if none */
	bool alive;
	bool reported;		/* its log came with a reply during this op */
	int npend;		/* records from replies, printed at the sync */
	struct sig_rec pend[SIG_BATCH];
};

struct process {
	char name[NAME_LEN];
	pid_t pid;
	int nthreads;
	struct thread thread[MAX_THREADS];
	bool alive;		/* no exit reported yet */
	bool dying;		/* channel closed or exit sent: to reap */
	bool reaped;
	int status;		/* waitpid() status once reaped */
};

struct space {
	char name[NAME_LEN];
	int id;			/* the shim's id, -1 once destroyed */
	bool inverted;		/* first > last */
};

struct ram_range {
	uint64_t first;		/* byte addresses, inclusive */
	uint64_t last;
};

struct mf_event {
	uint64_t pfn;
	int type;		/* enum mf_action_page_type, -1 unknown */
	const char *result;	/* "ignored", "recovered"... */
};

struct mf_ret {
	pid_t pid;		/* task that called memory_failure() */
	long ret;
};

/* An exporter device (x0...) and, while open, its VFIO fds. */
struct exporter {
	char bdf[32];
	int dev_fd;		/* /dev/vfio/devices/vfioN, -1 when not open */
	int iommu_fd;		/* /dev/iommu bound to it, -1 when not open */
	uint32_t ioas_id;	/* the IOAS it is attached to, while open */
	unsigned int opens;	/* successful vfio-opens so far */
};

/* A dma-buf exported by the sequence. */
struct dbuf {
	char name[NAME_LEN];
	int fd;			/* -1 after buf-close */
	unsigned long long ino;	/* its inode: dma_buf tracepoints name it so */
};

/* An attachment of the shim's importer. */
struct attachment {
	char name[NAME_LEN];
	uint32_t id;		/* the shim's attachment id */
	bool detached;
	int pending_notify;	/* notifications read during this op */
	char event[4][32];	/* the importer's reports of them (C7.5) */
	int nevent;
};

/*
 * An IOAS: of its own iommufd context (ioas-alloc), or the one an exporter
 * is attached to (ioas-device), valid while that open lasts.
 */
struct ioas {
	char name[NAME_LEN];
	int fd;			/* its /dev/iommu (an exporter's is not ours) */
	uint32_t id;
	int dev;		/* the exporter's index, -1 for ioas-alloc */
	unsigned int open;	/* the exporter's open (its opens) */
};

/* A mapping of a dma-buf in an IOAS (ioas-map-file). */
struct iomap {
	char name[NAME_LEN];
	int ioas;		/* index in agent.ioas */
	bool live;		/* not unmapped yet */
	bool chosen;		/* the kernel chose its IOVA */
	uint64_t iova;
	uint64_t length;
};

struct agent;
struct tokens;

struct agent {
	int in;			/* protocol input and output */
	int out;
	bool is_port;		/* virtio port: read() == 0 is "no host" */
	char inbuf[8192];
	size_t inlen;
	bool overlong;		/* dropping the rest of a too long line */

	int shim_fd;		/* -1 when the shim is not loaded */
	int shim_errno;

	struct process *proc;	/* creation order; never removed */
	int nproc;
	int proc_cap;
	uint32_t seq;

	struct space *space;	/* creation order; never removed */
	int nspace;
	int space_cap;
	bool tree_suspect;	/* an inverted range registered: see reset() */

	struct ram_range ram[MAX_RAM];
	int nram;
	int phys_bits;	/* the CPU's physical address width, 0 unknown */

	int trace_fd;		/* trace_pipe, -1 without tracing */
	int marker_fd;		/* trace_marker, -1 without it: console_mark() */
	bool have_kretprobe;
	bool have_so_kretprobe;	/* harness/so_ret: soft_offline_page() returned */
	int nso_ret;		/* so_ret records read in this op */
	bool have_mfq_kretprobe; /* harness/mfq_ret: the queue's worker returned */
	int nmfq_ret;		/* mfq_ret records read in this op */
	bool have_mce_kretprobe; /* harness/mce_ret: the MCE notifier work returned */
	int nmce_ret;		/* mce_ret records read in this op */
	char trace_partial[1024];
	size_t trace_partial_len;
	struct mf_event event[MAX_EVENTS];
	int nevents;
	struct mf_ret mf_ret[MAX_EVENTS];
	int nmf_ret;

	int kmsg_fd;		/* /dev/kmsg, read by mf-log; -1 without */
	int dmabuf_trace_fd;	/* instances/harness-dmabuf/trace_pipe; -1 without */
	long corrupted_base_kb;	/* HardwareCorrupted at the sequence's start */

	const char *sysctl_path;	/* early-kill sysctl file */
	char boot_early_kill[16];	/* its value when the agent started */

	struct exporter exporter[MAX_EXPORTERS];
	int nexporters;
	struct dbuf *dbuf;	/* creation order; never removed */
	int nbuf;
	int buf_cap;
	struct attachment *att;	/* creation order; never removed */
	int natt;
	int att_cap;
	long op_ms;		/* how long the current op ran (C7.5's deadline) */
	struct ioas *ioas;	/* creation order; never removed */
	int nioas;
	int ioas_cap;
	struct iomap *iomap;	/* creation order; never removed */
	int niomap;
	int iomap_cap;

	/* Observations of the current op, by category (canonical order). */
	struct buf res;
	struct buf sig;
	struct buf exits;
	struct buf mf;
	struct buf notify;
	struct buf sgt;
	struct buf fdinfo;
	struct buf err;
	struct buf bpf;		/* the observer's lines */
};

/* proc.c */
struct process *proc_find(struct agent *a, const char *name);
struct thread *thread_find(struct process *p, int index);
int proc_call(struct agent *a, struct process *p, struct thread *t,
	      const struct child_cmd *cmd, struct child_reply *rep,
	      struct chan *fresh);
int proc_call_while(struct agent *a, struct process *p, struct thread *t,
		    const struct child_cmd *cmd, struct child_reply *rep,
		    struct chan *fresh,
		    void (*during)(struct agent *a, void *arg), void *arg);
int proc_spawn(struct agent *a, const char *name, int64_t *pid);
int proc_fork(struct agent *a, struct process *p, struct thread *t,
	      const char *child, int64_t *pid);
struct thread *proc_first(struct process *p);
int proc_thread(struct agent *a, struct process *p, int index);
int proc_thread_exit(struct agent *a, struct process *p, struct thread *t);
int proc_exit(struct agent *a, struct process *p, int code);
void proc_sync(struct agent *a, bool collect);
void proc_shutdown(struct agent *a);
void proc_reset(struct agent *a, struct buf *dirty);

/* mf.c */
int ram_load(struct agent *a);
bool pfn_injectable(const struct agent *a, uint64_t pfn);
bool pfn_mce_injectable(const struct agent *a, uint64_t pfn);
int cpu_phys_bits(void);
int trace_setup(struct agent *a);
void trace_poll(struct agent *a, int timeout_ms);

/* VM/repro/race.c: two memory_failure() calls at once (C2.1) */
long mf_race_calls(int shim, unsigned long pfn);

/* VM/repro/vfio.c: the dma_buf tracepoints' instance (C7.8) */
int dma_buf_trace_open(void);
bool trace_wait_pfn(struct agent *a, uint64_t pfn, int timeout_ms);
bool trace_wait_soft_offline(struct agent *a, uint64_t pfn, int timeout_ms);
bool trace_wait_queue_done(struct agent *a, int timeout_ms);
bool trace_wait_mce_done(struct agent *a, int timeout_ms);
int console_mark(struct agent *a, const char *token);
void mflog_open(struct agent *a);
void mflog_read(struct agent *a, bool report);
long corrupted_kb(void);

/* watch.c */
int watch_init(int out);
void watch_begin(void);
void watch_end(void);
void trace_report(struct agent *a);
bool mf_ret_of(const struct agent *a, pid_t pid, long *ret);

/* gcov.c */
void gcov_dump(struct agent *a);

/* observer.c */
void observer_setup(struct agent *a);
void observer_fact(struct agent *a, struct buf *b);
void observer_begin(struct agent *a);
void observer_report(struct agent *a, struct buf *b);

/* dmabuf.c */
void dmabuf_discover(struct agent *a);
void dmabuf_facts(struct agent *a, struct buf *b);
void dmabuf_report(struct agent *a);
void dmabuf_reset(struct agent *a, struct buf *dirty);

void agent_error(struct agent *a, const char *fmt, ...)
	__printf(2, 3);

#endif /* HARNESS_AGENT_H */
