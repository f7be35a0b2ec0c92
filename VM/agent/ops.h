/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's op table: one entry per op keyword.
 *
 * Generated from the op spec (Sources/Reference/Vocabulary/OpSpec.swift) by
 * "harness spec agent-header --output" and this file's path: do not edit.
 * The harness's tests fail when this file is stale.  Each entry's comment says
 * where the op runs: host (QEMU's monitor, then the agent waits),
 * coordinator (the agent), process (the process's t0) or thread.
 */
#ifndef HARNESS_AGENT_OPS_H
#define HARNESS_AGENT_OPS_H

struct agent;
struct tokens;

/* After the op every live thread reports its signal log (proc_sync). */
#define OP_COLLECT	(1U << 0)
/* The op's effect comes later, from a kernel worker or a machine check. */
#define OP_ASYNC	(1U << 1)
/* The dma-buf half (dmabuf.c); the others are in agent.c. */
#define OP_DMABUF	(1U << 2)

/*
 * The map window (World.agentMapWindow, Sources/Reference/World): mremap
 * moves only inside it, so that it never replaces a process's own memory,
 * and madvise(MADV_HWPOISON) starts in it (harness rules: -EPERM).
 */
#define MAP_WINDOW_FIRST	0x100000000000ULL
#define MAP_WINDOW_LAST		0x1000ffffffffULL

struct agent_op {
	const char *name;
	long (*run)(struct agent *a, struct tokens *t);
	unsigned int flags;
};

/* The memory-failure half (agent.c) */
long op_spawn(struct agent *a, struct tokens *t);
long op_fork(struct agent *a, struct tokens *t);
long op_thread(struct agent *a, struct tokens *t);
long op_thread_exit(struct agent *a, struct tokens *t);
long op_exit(struct agent *a, struct tokens *t);
long op_prctl(struct agent *a, struct tokens *t);
long op_sigbus(struct agent *a, struct tokens *t);
long op_sigmask(struct agent *a, struct tokens *t);
long op_sysctl(struct agent *a, struct tokens *t);
long op_mmap(struct agent *a, struct tokens *t);
long op_munmap(struct agent *a, struct tokens *t);
long op_madvise(struct agent *a, struct tokens *t);
long op_mprotect(struct agent *a, struct tokens *t);
long op_mremap(struct agent *a, struct tokens *t);
long op_space_create(struct agent *a, struct tokens *t);
long op_space_register(struct agent *a, struct tokens *t);
long op_space_unregister(struct agent *a, struct tokens *t);
long op_space_destroy(struct agent *a, struct tokens *t);
long op_inject_sysfs(struct agent *a, struct tokens *t);
long op_inject_shim(struct agent *a, struct tokens *t);
long op_inject_queue(struct agent *a, struct tokens *t);
long op_inject_mce(struct agent *a, struct tokens *t);
long op_corrupt_pfn(struct agent *a, struct tokens *t);
long op_mf_log(struct agent *a, struct tokens *t);
long op_hw_corrupted(struct agent *a, struct tokens *t);
long op_inject_mce_ar(struct agent *a, struct tokens *t);
long op_mf_race(struct agent *a, struct tokens *t);

/* The dma-buf half (dmabuf.c) */
long op_vfio_open(struct agent *a, struct tokens *t);
long op_vfio_close(struct agent *a, struct tokens *t);
long op_vfio_memory(struct agent *a, struct tokens *t);
long op_vfio_reset(struct agent *a, struct tokens *t);
long op_export(struct agent *a, struct tokens *t);
long op_buf_close(struct agent *a, struct tokens *t);
long op_fdinfo(struct agent *a, struct tokens *t);
long op_attach(struct agent *a, struct tokens *t);
long op_map(struct agent *a, struct tokens *t);
long op_unmap(struct agent *a, struct tokens *t);
long op_detach(struct agent *a, struct tokens *t);
long op_vfio_low_power(struct agent *a, struct tokens *t);
long op_vfio_config(struct agent *a, struct tokens *t);
long op_vfio_hot_reset(struct agent *a, struct tokens *t);
long op_vfio_power(struct agent *a, struct tokens *t);
long op_importer_mode(struct agent *a, struct tokens *t);
long op_ioas_alloc(struct agent *a, struct tokens *t);
long op_ioas_map_file(struct agent *a, struct tokens *t);
long op_ioas_unmap(struct agent *a, struct tokens *t);
long op_ioas_device(struct agent *a, struct tokens *t);
long op_bufinfo(struct agent *a, struct tokens *t);
long op_dmabuf_trace(struct agent *a, struct tokens *t);

/* Only agent.c, which dispatches with it, uses the table. */
static const struct agent_op agent_ops[] = {
	/* spawn: coordinator */
	{ "spawn", op_spawn, 0 },
	/* fork: thread */
	{ "fork", op_fork, 0 },
	/* thread: process */
	{ "thread", op_thread, 0 },
	/* thread-exit: thread */
	{ "thread-exit", op_thread_exit, 0 },
	/* exit: process */
	{ "exit", op_exit, 0 },
	/* prctl: thread */
	{ "prctl", op_prctl, 0 },
	/* sigbus: process */
	{ "sigbus", op_sigbus, OP_COLLECT },
	/* sigmask: thread */
	{ "sigmask", op_sigmask, OP_COLLECT },
	/* sysctl: coordinator */
	{ "sysctl", op_sysctl, 0 },
	/* mmap: process */
	{ "mmap", op_mmap, 0 },
	/* munmap: process */
	{ "munmap", op_munmap, 0 },
	/* madvise: process */
	{ "madvise", op_madvise, 0 },
	/* mprotect: process */
	{ "mprotect", op_mprotect, 0 },
	/* mremap: process */
	{ "mremap", op_mremap, 0 },
	/* space-create: coordinator */
	{ "space-create", op_space_create, 0 },
	/* space-register: coordinator */
	{ "space-register", op_space_register, 0 },
	/* space-unregister: coordinator */
	{ "space-unregister", op_space_unregister, 0 },
	/* space-destroy: coordinator */
	{ "space-destroy", op_space_destroy, 0 },
	/* inject-sysfs: thread */
	{ "inject-sysfs", op_inject_sysfs, OP_COLLECT },
	/* inject-shim: thread */
	{ "inject-shim", op_inject_shim, OP_COLLECT },
	/* inject-queue: coordinator */
	{ "inject-queue", op_inject_queue, OP_COLLECT | OP_ASYNC },
	/* inject-mce: host */
	{ "inject-mce", op_inject_mce, OP_COLLECT | OP_ASYNC },
	/* corrupt-pfn: coordinator */
	{ "corrupt-pfn", op_corrupt_pfn, OP_COLLECT },
	/* mf-log: coordinator */
	{ "mf-log", op_mf_log, 0 },
	/* hw-corrupted: coordinator */
	{ "hw-corrupted", op_hw_corrupted, 0 },
	/* vfio-open: coordinator */
	{ "vfio-open", op_vfio_open, OP_DMABUF },
	/* vfio-close: coordinator */
	{ "vfio-close", op_vfio_close, OP_DMABUF },
	/* vfio-memory: coordinator */
	{ "vfio-memory", op_vfio_memory, OP_DMABUF },
	/* vfio-reset: coordinator */
	{ "vfio-reset", op_vfio_reset, OP_DMABUF },
	/* export: coordinator */
	{ "export", op_export, OP_DMABUF },
	/* buf-close: coordinator */
	{ "buf-close", op_buf_close, OP_DMABUF },
	/* fdinfo: coordinator */
	{ "fdinfo", op_fdinfo, OP_DMABUF },
	/* attach: coordinator */
	{ "attach", op_attach, OP_DMABUF },
	/* map: coordinator */
	{ "map", op_map, OP_DMABUF },
	/* unmap: coordinator */
	{ "unmap", op_unmap, OP_DMABUF },
	/* detach: coordinator */
	{ "detach", op_detach, OP_DMABUF },
	/* vfio-low-power: coordinator */
	{ "vfio-low-power", op_vfio_low_power, OP_DMABUF },
	/* vfio-config: coordinator */
	{ "vfio-config", op_vfio_config, OP_DMABUF },
	/* vfio-hot-reset: coordinator */
	{ "vfio-hot-reset", op_vfio_hot_reset, OP_DMABUF },
	/* vfio-power: coordinator */
	{ "vfio-power", op_vfio_power, OP_DMABUF },
	/* importer-mode: coordinator */
	{ "importer-mode", op_importer_mode, OP_DMABUF },
	/* ioas-alloc: coordinator */
	{ "ioas-alloc", op_ioas_alloc, OP_DMABUF },
	/* ioas-map-file: coordinator */
	{ "ioas-map-file", op_ioas_map_file, OP_DMABUF },
	/* ioas-unmap: coordinator */
	{ "ioas-unmap", op_ioas_unmap, OP_DMABUF },
	/* ioas-device: coordinator */
	{ "ioas-device", op_ioas_device, OP_DMABUF },
	/* inject-mce-ar: thread */
	{ "inject-mce-ar", op_inject_mce_ar, OP_COLLECT | OP_ASYNC },
	/* mf-race: coordinator */
	{ "mf-race", op_mf_race, OP_COLLECT },
	/* bufinfo: coordinator */
	{ "bufinfo", op_bufinfo, OP_DMABUF },
	/* dmabuf-trace: coordinator */
	{ "dmabuf-trace", op_dmabuf_trace, OP_DMABUF },
};

#endif /* HARNESS_AGENT_OPS_H */
