// SPDX-License-Identifier: GPL-2.0-only
/*
 * mf.c - the memory-failure ops of a reproducer
 *
 * Each runs in the context its op names (call() in task.c): a logical
 * thread for prctl, sigmask, mmap and the injects that have a "current"
 * task, the worker for PFN spaces, sysctl and queued failures.  The shim
 * (VM/shim, /dev/harness_shim) plays nvgrace-gpu's part: it maps its device
 * memory with VFIO's region offsets, registers PFN spaces and calls
 * memory_failure() or memory_failure_queue().
 */
#include "repro.h"
#include "../shim/harness_shim.h"

int shim_fd = -1;

/* HardwareCorrupted of /proc/meminfo in kB, or -1 when absent. */
static long corrupted_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "HardwareCorrupted: %ld kB", &kb) == 1)
			break;
	}
	if (f)
		fclose(f);
	return kb;
}

/* HardwareCorrupted when the program started (C2.8). */
static long corrupted_base = -1;

void corrupted_open(void)
{
	corrupted_base = corrupted_kb();
}

/* The shim must be loaded: skip (exit 4) when it is not. */
void shim_open(void)
{
	shim_fd = open(HARNESS_SHIM_DEVICE, O_RDWR | O_CLOEXEC);
	if (shim_fd < 0)
		skip_all(HARNESS_SHIM_DEVICE " missing: load the harness shim (insmod harness_shim.ko)");
}

static long sys(long ret)
{
	return ret < 0 ? -errno : ret;
}

/*
 * The harness's rule for the injects: only a PFN in a 128 MiB section that
 * holds no System RAM (C2.2: the kernel has no memory map there) and below
 * 2^52 is poisoned; anything else is -EPERM, so that a reproducer never
 * poisons the memory of the guest it runs in.
 */
static int injectable(unsigned long pfn)
{
	FILE *f = fopen("/proc/iomem", "re");
	unsigned long long first, last;
	char line[256];
	int name, ram = 0, ok = pfn >> 52 == 0 && f;

	while (ok && fgets(line, sizeof(line), f)) {
		name = 0;
		if (sscanf(line, " %llx-%llx : %n", &first, &last, &name) < 2 ||
		    !name || strcmp(line + name, "System RAM\n"))
			continue;
		ram++;
		ok = pfn >> 15 < first >> 27 || pfn >> 15 > last >> 27;
	}
	if (f)
		fclose(f);
	/* no RAM map (not root?): nothing is injectable */
	return ok && ram;
}

/* Blocks (1) or unblocks (0) SIGBUS in the calling thread. */
long mask_sigbus(long block, long unused1, long unused2, long unused3)
{
	sigset_t s;

	(void)unused1;
	(void)unused2;
	(void)unused3;
	sigemptyset(&s);
	sigaddset(&s, SIGBUS);
	return -pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &s, NULL);
}

/* prctl(PR_MCE_KILL, arg2, arg3, 0, 0) in the calling thread. */
long mce_kill(long arg2, long arg3, long unused1, long unused2)
{
	(void)unused1;
	(void)unused2;
	return sys(prctl(PR_MCE_KILL, arg2, arg3, 0UL, 0UL));
}

/* prctl(PR_MCE_KILL_GET, 0, 0, 0, 0) in the calling thread. */
long mce_kill_get(long unused0, long unused1, long unused2, long unused3)
{
	(void)unused0;
	(void)unused1;
	(void)unused2;
	(void)unused3;
	return sys(prctl(PR_MCE_KILL_GET, 0UL, 0UL, 0UL, 0UL));
}

/* Maps pages of a shim region at addr (page offset pgoff in the region). */
long map_device(long addr, long pages, long region, long pgoff)
{
	off_t off = (off_t)region << HARNESS_SHIM_REGION_SHIFT | pgoff << 12;
	void *p = mmap((void *)addr, pages << 12, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_FIXED_NOREPLACE, shim_fd, off);

	return p == MAP_FAILED ? -errno : 0;
}

long unmap_device(long addr, long pages, long unused1, long unused2)
{
	(void)unused1;
	(void)unused2;
	return sys(munmap((void *)addr, pages << 12));
}

long dontfork(long addr, long pages, long unused1, long unused2)
{
	(void)unused1;
	(void)unused2;
	return sys(madvise((void *)addr, pages << 12, MADV_DONTFORK));
}

long protect_device(long addr, long pages, long prot, long unused)
{
	static const int prots[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE };

	(void)unused;
	return sys(mprotect((void *)addr, pages << 12, prots[prot]));
}

/*
 * Moves the pages, same size, to the given address (MREMAP_MAYMOVE |
 * MREMAP_FIXED).  The harness's rule: never to a place outside its map
 * window, which would replace the program's own memory: -EPERM.
 */
long move_device(long addr, long pages, long to, long unused)
{
	unsigned long len = (unsigned long)pages << 12;
	void *p;

	(void)unused;
	if (pages > 0 && !((addr | to) & 0xfff) &&
	    ((unsigned long)to < 0x100000000000UL ||
	     (unsigned long)to > 0x1000ffffffffUL ||
	     len > 0x1000ffffffffUL + 1 - (unsigned long)to))
		return -EPERM;
	p = mremap((void *)addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
		   (void *)to);
	if (p == MAP_FAILED)
		return -errno;
	return p == (void *)to ? 0 : -EIO;
}

/*
 * madvise(MADV_HWPOISON) (C5.2).  The harness's rule: never below its map
 * window, where the program's own memory is: -EPERM.
 */
long hwpoison_range(long addr, long pages, long unused1, long unused2)
{
	(void)unused1;
	(void)unused2;
	if (pages > 0 && !(addr & 0xfff) &&
	    (unsigned long)addr < 0x100000000000UL)
		return -EPERM;
	return sys(madvise((void *)addr, pages << 12, MADV_HWPOISON));
}

/* HardwareCorrupted's change since the program started, in pages (C2.8). */
long hw_corrupted(long unused0, long unused1, long unused2, long unused3)
{
	long kb = corrupted_kb();

	(void)unused0;
	(void)unused1;
	(void)unused2;
	(void)unused3;
	if (kb < 0 || corrupted_base < 0)
		return -ENODEV;
	return (kb - corrupted_base) >> 2;
}

/* Writes text to a file: 0 or -errno. */
static long write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	long ret;

	if (fd < 0)
		return -errno;
	ret = write(fd, text, strlen(text));
	ret = ret < 0 ? -errno : 0;
	close(fd);
	return ret;
}

long sysctl_early_kill(long value, long unused1, long unused2, long unused3)
{
	char text[32];

	(void)unused1;
	(void)unused2;
	(void)unused3;
	snprintf(text, sizeof(text), "%ld\n", value);
	return write_file("/proc/sys/vm/memory_failure_early_kill", text);
}

/* A PFN-space object of the shim (not registered yet). */
long space_create(long id, long callback, long first, long last)
{
	struct harness_shim_space s = { .id = id, .callback = callback,
					.first = first, .last = last };

	return sys(ioctl(shim_fd, HARNESS_SHIM_SPACE_CREATE, &s));
}

/* HARNESS_SHIM_SPACE_REGISTER, _UNREGISTER or _DESTROY of space id. */
long space_op(long cmd, long id, long unused1, long unused2)
{
	struct harness_shim_space_id s = { .id = id };

	(void)unused1;
	(void)unused2;
	return sys(ioctl(shim_fd, cmd, &s));
}

/* memory_failure(pfn, flags) in the caller's context, or queued (mode). */
long poison(long pfn, long flags, long mode, long unused)
{
	struct harness_shim_poison p = { .pfn = pfn, .flags = flags,
					 .mode = mode };

	(void)unused;
	if (!injectable(pfn))
		return -EPERM;
	return sys(ioctl(shim_fd, HARNESS_SHIM_POISON, &p));
}

/* The physical address of pfn to hard_offline_page: the writer is current. */
long hard_offline(long pfn, long unused1, long unused2, long unused3)
{
	char text[32];

	(void)unused1;
	(void)unused2;
	(void)unused3;
	if (!injectable(pfn))
		return -EPERM;
	snprintf(text, sizeof(text), "0x%lx\n", pfn << 12);
	return write_file("/sys/devices/system/memory/hard_offline_page", text);
}

/*
 * An action-optional machine check at pfn.  On an Intel CPU the guest cannot
 * raise one itself (mce-inject's software mode stops short of
 * memory_failure()): the hypervisor injects it.  `harness repro --run` reads
 * this line and sends the command to QEMU's monitor; by hand, type it there.
 * trace_collect(WAIT_MCE) then waits for the machine check to be handled.
 */
/* debugfs hwpoison/corrupt-pfn (C5.2), under the injects' rule. */
long corrupt_pfn(long pfn, long unused1, long unused2, long unused3)
{
	char text[32];

	(void)unused1;
	(void)unused2;
	(void)unused3;
	if (!injectable(pfn))
		return -EPERM;
	snprintf(text, sizeof(text), "%lu\n", (unsigned long)pfn);
	return write_file("/sys/kernel/debug/hwpoison/corrupt-pfn", text);
}

/*
 * The injects' rule alone: 0, or -EPERM for a PFN that is not injectable.
 * mf-race calls it before race.c's mf_race_calls() (which the agent shares).
 */
long inject_check(long pfn)
{
	return injectable(pfn) ? 0 : -EPERM;
}

long inject_mce(long pfn, long unused1, long unused2, long unused3)
{
	(void)unused1;
	(void)unused2;
	(void)unused3;
	if (!injectable(pfn))
		return -EPERM;
	printf("# machine check needed: (qemu) mce 0 9 0xbd000000000000c0 5 0x%lx 0x8c\n",
	       pfn << 12);
	fflush(stdout);
	return 0;
}

/*
 * Spins in user mode until *stop: the loop the host looks for (CPL 3, RIP in
 * [repro_spin_begin, repro_spin_end)) before it injects inject-mce-ar's
 * machine check.  x86-64 only; called from one place, so emitted once.
 */
static void spin_until(const unsigned int *stop)
{
	__asm__ volatile(".globl repro_spin_begin\n"
			 ".hidden repro_spin_begin\n"
			 "repro_spin_begin:\n\t"
			 "pause\n\t"
			 "cmpl $0, (%0)\n\t"
			 "je repro_spin_begin\n"
			 ".globl repro_spin_end\n"
			 ".hidden repro_spin_end\n"
			 "repro_spin_end:\n"
			 : : "r"(stop) : "memory", "cc");
}

static void *spin_timer(void *stop)
{
	struct timespec t = { .tv_sec = 1, .tv_nsec = 500 * 1000 * 1000 };

	nanosleep(&t, NULL);
	__atomic_store_n((unsigned int *)stop, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * An action-required machine check that this thread consumes (C5.4): it
 * spins in user mode for 1.5 s while the hypervisor injects, at a moment the
 * CPU runs the loop (a machine check taken in kernel mode would panic).
 * `harness repro --run` reads the line and does it; by hand, stop the guest
 * in QEMU's monitor until `info registers` shows CPL=3 and RIP in the range,
 * then `mce 0 9 0xbd80000000000134 6 ADDR 0x8c` and `cont`.  Returns 0: end()
 * takes memory_failure()'s return from the trace (INJECT_MCE_AR).
 */
long inject_mce_ar(long pfn, long unused1, long unused2, long unused3)
{
	static unsigned int stop;
	pthread_t timer;
	int ret;

	(void)unused1;
	(void)unused2;
	(void)unused3;
	if (!injectable(pfn))
		return -EPERM;
	__atomic_store_n(&stop, 0, __ATOMIC_SEQ_CST);
	ret = pthread_create(&timer, NULL, spin_timer, (void *)&stop);
	if (ret)
		return -ret;
	printf("# machine check needed: (qemu) mce-ar 0x%lx 0x%lx 0x%lx\n",
	       (unsigned long)repro_spin_begin, (unsigned long)repro_spin_end,
	       pfn << 12);
	fflush(stdout);
	spin_until(&stop);
	pthread_join(timer, NULL);
	return 0;
}
