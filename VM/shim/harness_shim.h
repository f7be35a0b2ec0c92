/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * harness_shim.h - user-space interface of the harness shim (/dev/harness_shim)
 *
 * The shim plays nvgrace-gpu's role on x86 for the memory-failure tests of
 * the harness: it maps device memory (an ivshmem BAR) into processes, creates
 * pfn_address_space objects over any PFN range, registers and unregisters
 * them on request, and calls memory_failure() or memory_failure_queue().
 * It is also the dma-buf importer of the VFIO export tests (below).
 *
 * Every ioctl returns 0 or -1 with errno set (POISON in mode 0 returns what
 * memory_failure() returned).  All structures have a fixed size; padding
 * fields must be zero.
 */
#ifndef _UAPI_HARNESS_SHIM_H
#define _UAPI_HARNESS_SHIM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define HARNESS_SHIM_DEVICE		"/dev/harness_shim"
#define HARNESS_SHIM_IOCTL_MAGIC	'H'

/*
 * mmap() offsets follow VFIO: byte offset = region << 40 | page offset << 12,
 * that is vm_pgoff = region << 28 | pgoff.  Region 2 is the first half of the
 * device memory, region 4 the second half.
 */
#define HARNESS_SHIM_REGION_SHIFT	40
#define HARNESS_SHIM_REGION_LOW		2
#define HARNESS_SHIM_REGION_HIGH	4

/* Highest space id; ids are chosen by the caller. */
#define HARNESS_SHIM_MAX_SPACE_ID	255

/* harness_shim_info.flags */
#define HARNESS_SHIM_INFO_DEVMEM	(1U << 0)	/* device memory bound */

/**
 * struct harness_shim_info - HARNESS_SHIM_INFO
 * @devmem_phys: physical address of the device memory (BAR2)
 * @devmem_size: its size in bytes
 * @flags: HARNESS_SHIM_INFO_*
 * @pad: zero
 * @bdf: PCI name of the device, "0000:00:02.0", NUL terminated
 *
 * Fails with ENODEV when no device memory is bound.
 */
struct harness_shim_info {
	__u64 devmem_phys;
	__u64 devmem_size;
	__u32 flags;
	__u32 pad;
	char bdf[32];
};

/* harness_shim_space.callback */
#define HARNESS_SHIM_CALLBACK_NONE	0	/* pfn_to_vma_pgoff = NULL */
#define HARNESS_SHIM_CALLBACK_NVGRACE	1	/* nvgrace-gpu's arithmetic */
#define HARNESS_SHIM_CALLBACK_STRICT	2	/* nvgrace + PFN inside the VMA */

/**
 * struct harness_shim_space - HARNESS_SHIM_SPACE_CREATE
 * @id: 0..HARNESS_SHIM_MAX_SPACE_ID, chosen by the caller (EEXIST if in use)
 * @callback: HARNESS_SHIM_CALLBACK_*
 * @first: first PFN of the space (inclusive)
 * @last: last PFN of the space (inclusive)
 *
 * The range is not checked: any [first, last] is accepted.
 */
struct harness_shim_space {
	__u32 id;
	__u32 callback;
	__u64 first;
	__u64 last;
};

/**
 * struct harness_shim_space_id - REGISTER, UNREGISTER, DESTROY
 * @id: the space (ENOENT if it does not exist)
 * @pad: zero
 */
struct harness_shim_space_id {
	__u32 id;
	__u32 pad;
};

/* harness_shim_poison.mode */
#define HARNESS_SHIM_POISON_CALL	0	/* memory_failure(), caller's context */
#define HARNESS_SHIM_POISON_QUEUE	1	/* memory_failure_queue() */

/**
 * struct harness_shim_poison - HARNESS_SHIM_POISON
 * @pfn: the PFN
 * @flags: enum mf_flags, passed unchanged
 * @mode: HARNESS_SHIM_POISON_*
 *
 * Refused with EPERM for a PFN of online RAM (poisoning the guest's memory
 * would kill the test).
 */
struct harness_shim_poison {
	__u64 pfn;
	__u32 flags;
	__u32 mode;
};

#define HARNESS_SHIM_INFO \
	_IOR(HARNESS_SHIM_IOCTL_MAGIC, 0x00, struct harness_shim_info)
#define HARNESS_SHIM_SPACE_CREATE \
	_IOW(HARNESS_SHIM_IOCTL_MAGIC, 0x01, struct harness_shim_space)
#define HARNESS_SHIM_SPACE_REGISTER \
	_IOW(HARNESS_SHIM_IOCTL_MAGIC, 0x02, struct harness_shim_space_id)
#define HARNESS_SHIM_SPACE_UNREGISTER \
	_IOW(HARNESS_SHIM_IOCTL_MAGIC, 0x03, struct harness_shim_space_id)
#define HARNESS_SHIM_SPACE_DESTROY \
	_IOW(HARNESS_SHIM_IOCTL_MAGIC, 0x04, struct harness_shim_space_id)
#define HARNESS_SHIM_POISON \
	_IOW(HARNESS_SHIM_IOCTL_MAGIC, 0x05, struct harness_shim_poison)
/*
 * Between sequences: unregisters every space the shim registered, then asks
 * the kernel whether any space is left in its tree (a probe registered over
 * every PFN must succeed).  If none is left: unregisters the probe, frees
 * every space, 0.  Otherwise EBUSY and nothing is freed (a space the kernel
 * still holds must not be freed); the caller then restores the guest.
 */
#define HARNESS_SHIM_RESET \
	_IO(HARNESS_SHIM_IOCTL_MAGIC, 0x06)

/* harness_shim_overlap.flags */
#define HARNESS_SHIM_OVERLAP_ARM	(1U << 0)

/**
 * struct harness_shim_overlap - HARNESS_SHIM_OVERLAP
 * @flags: HARNESS_SHIM_OVERLAP_ARM starts a count, 0 ends it
 * @max: out: the most pfn_to_vma_pgoff() callbacks that ran at once
 * @calls: out: how many callbacks ran
 * @pad: zero
 *
 * Observes contract C2.1 (memory_failure() calls never run concurrently)
 * through the callback: while armed, every callback counts itself and
 * busy-waits HARNESS_SHIM_OVERLAP_DELAY_US so that unserialised calls
 * would overlap.  ARM zeroes the counts; ending returns them and disarms.
 */
struct harness_shim_overlap {
	__u32 flags;
	__u32 max;
	__u32 calls;
	__u32 pad;
};

#define HARNESS_SHIM_OVERLAP_DELAY_US	200

#define HARNESS_SHIM_OVERLAP \
	_IOWR(HARNESS_SHIM_IOCTL_MAGIC, 0x0a, struct harness_shim_overlap)

/*
 * The dma-buf importer (ioctls 0x10..0x2f).
 *
 * Every PCI function the importer driver binds (QEMU's edu device, 1234:11e8)
 * is an importer; importer index N is the (N+1)-th function bound (the first
 * free slot at probe).  IMPORT takes a dma-buf fd and attaches one of them
 * to it, dynamically (dma_buf_dynamic_attach() with allow_peer2peer and an
 * invalidate_mappings callback) or statically (dma_buf_attach()); it returns
 * an attachment id.  Attachments belong to the open file that created them:
 * other files get ENOENT for them, and closing that file (or unbinding the
 * importer, or unloading the module) unmaps and detaches them.
 *
 * invalidate_mappings appends {id, flags, seq} to a notification log
 * (HARNESS_SHIM_NOTIFY_LOG_LEN records; older ones are kept, newer ones
 * dropped and counted as lost when it is full) and, if the attachment is
 * mapped, does what its mode (HARNESS_SHIM_ATT_MODE) says: by default it
 * unmaps, after sleeping unmap_delay_ms (module parameter, writable in
 * /sys/module/harness_shim/parameters, capped at 100 ms) when it is not 0.
 */

/* Importer slots. */
#define HARNESS_SHIM_MAX_IMPORTERS	8

/**
 * struct harness_shim_importer_info - HARNESS_SHIM_IMPORTER_INFO
 * @index: the importer (in); ENOENT if no function is bound in that slot
 * @pad: zero
 * @bdf: PCI name of the function, NUL terminated (out)
 */
struct harness_shim_importer_info {
	__u32 index;
	__u32 pad;
	char bdf[32];
};

/* harness_shim_import.flags */
#define HARNESS_SHIM_IMPORT_STATIC	(1U << 0)	/* dma_buf_attach() */

/**
 * struct harness_shim_import - HARNESS_SHIM_IMPORT
 * @fd: the dma-buf (in); EBADF / EINVAL as dma_buf_get() answers
 * @importer: importer index (in); ENOENT if none is bound there
 * @flags: HARNESS_SHIM_IMPORT_* (in); EINVAL for unknown bits
 * @id: attachment id, never 0 and not reused while the module is loaded (out)
 *
 * Errors of the attach itself (e.g. EOPNOTSUPP, ENODEV from the exporter)
 * are returned unchanged; nothing is kept then.
 */
struct harness_shim_import {
	__s32 fd;
	__u32 importer;
	__u32 flags;
	__u32 id;
};

/**
 * struct harness_shim_sg_entry - one DMA entry of a mapped table
 * @addr: sg_dma_address()
 * @len: sg_dma_len()
 */
struct harness_shim_sg_entry {
	__u64 addr;
	__u64 len;
};

/* harness_shim_map.flags (out) */
#define HARNESS_SHIM_MAP_TRUNCATED	(1U << 0)	/* entries past first + count remain */

/* Most entries one MAP or TABLE call copies. */
#define HARNESS_SHIM_MAX_SG_ENTRIES	65536

/**
 * struct harness_shim_map - HARNESS_SHIM_MAP, HARNESS_SHIM_TABLE
 * @id: the attachment (in)
 * @flags: HARNESS_SHIM_MAP_* (out; must be 0 in)
 * @nents: the table's nents (out)
 * @orig_nents: the table's orig_nents (out)
 * @first: index of the first DMA entry to copy (in; MAP: must be 0)
 * @count: room in @entries (in, capped at HARNESS_SHIM_MAX_SG_ENTRIES);
 *         entries copied (out)
 * @entries: user pointer to struct harness_shim_sg_entry[@count]
 *
 * MAP: dma_buf_map_attachment(DMA_BIDIRECTIONAL) under the buffer's
 * reservation lock; EBUSY if the attachment is mapped, else the kernel's
 * error.  The mapping is kept whether or not all entries fit: entries past
 * @first + @count are read with TABLE (EINVAL if the attachment is not
 * mapped or @first > nents).  Entries are the for_each_sgtable_dma_sg()
 * walk, i.e. the first nents DMA entries of the table.
 */
struct harness_shim_map {
	__u32 id;
	__u32 flags;
	__u32 nents;
	__u32 orig_nents;
	__u32 first;
	__u32 count;
	__u64 entries;
};

/**
 * struct harness_shim_attach_id - HARNESS_SHIM_UNMAP, HARNESS_SHIM_DETACH
 * @id: the attachment; ENOENT if unknown (or detached)
 * @pad: zero
 *
 * UNMAP: EINVAL if not mapped (a revocation may have unmapped it).
 * DETACH: unmaps if mapped, detaches, drops the dma-buf reference.
 */
struct harness_shim_attach_id {
	__u32 id;
	__u32 pad;
};

#define HARNESS_SHIM_NOTIFY_LOG_LEN	4096

/* harness_shim_notification.flags */
#define HARNESS_SHIM_NOTIFY_MAPPED	(1U << 0)	/* was mapped */
#define HARNESS_SHIM_NOTIFY_REMAPPED	(1U << 1)	/* mapped again: @remap */
#define HARNESS_SHIM_NOTIFY_DEFERRED	(1U << 2)	/* a worker unmaps */

/**
 * struct harness_shim_notification - one invalidate_mappings call
 * @id: the attachment
 * @flags: HARNESS_SHIM_NOTIFY_*
 * @seq: 1 for the first notification since the module was loaded, then +1
 * @remap: with HARNESS_SHIM_NOTIFY_REMAPPED, what dma_buf_map_attachment()
 *         answered inside the callback: 0 or -errno
 * @pad: zero
 */
struct harness_shim_notification {
	__u32 id;
	__u32 flags;
	__u64 seq;
	__s32 remap;
	__u32 pad;
};

/**
 * struct harness_shim_notify - HARNESS_SHIM_NOTIFY_READ
 * @count: room in @records (in); records copied (out)
 * @lost: records dropped because the log was full, since the last read (out)
 * @records: user pointer to struct harness_shim_notification[@count]
 *
 * Copies the oldest records (of every attachment of every file, in the
 * order the callbacks ran) and removes them from the log.
 */
struct harness_shim_notify {
	__u32 count;
	__u32 lost;
	__u64 records;
};

#define HARNESS_SHIM_IMPORTER_INFO \
	_IOWR(HARNESS_SHIM_IOCTL_MAGIC, 0x10, struct harness_shim_importer_info)
#define HARNESS_SHIM_IMPORT \
	_IOWR(HARNESS_SHIM_IOCTL_MAGIC, 0x11, struct harness_shim_import)
#define HARNESS_SHIM_MAP \
	_IOWR(HARNESS_SHIM_IOCTL_MAGIC, 0x12, struct harness_shim_map)
#define HARNESS_SHIM_TABLE \
	_IOWR(HARNESS_SHIM_IOCTL_MAGIC, 0x13, struct harness_shim_map)
#define HARNESS_SHIM_UNMAP \
	_IOW(HARNESS_SHIM_IOCTL_MAGIC, 0x14, struct harness_shim_attach_id)
#define HARNESS_SHIM_DETACH \
	_IOW(HARNESS_SHIM_IOCTL_MAGIC, 0x15, struct harness_shim_attach_id)
#define HARNESS_SHIM_NOTIFY_READ \
	_IOWR(HARNESS_SHIM_IOCTL_MAGIC, 0x16, struct harness_shim_notify)

/*
 * Importer modes (HARNESS_SHIM_ATT_MODE): what invalidate_mappings does with
 * a mapped attachment.  C7.5: the revoking operation completes only after
 * every importer has unmapped; the modes that unmap late make that wait
 * observable, and a worker always unmaps in the end, so nothing waits for
 * ever.
 */
#define HARNESS_SHIM_MODE_UNMAP		0	/* unmaps inside the callback */
#define HARNESS_SHIM_MODE_REMAP		1	/* unmaps, maps again inside it */
#define HARNESS_SHIM_MODE_DELAYED	2	/* a worker unmaps after DELAYED_MS */
#define HARNESS_SHIM_MODE_NEVER		3	/* not within WINDOW_MS (a worker then) */

#define HARNESS_SHIM_DELAYED_MS		50
/* W: a "never" attachment is unmapped this long after its notification. */
#define HARNESS_SHIM_WINDOW_MS		1000
/* D < W: a revoking op still running this long after it started is blocked. */
#define HARNESS_SHIM_DEADLINE_MS	500

/**
 * struct harness_shim_att_mode - HARNESS_SHIM_ATT_MODE
 * @id: the attachment (in); ENOENT if unknown
 * @mode: HARNESS_SHIM_MODE_* (in); EINVAL for another value
 *
 * A successful remap inside the callback is kept and unmapped by a worker
 * after HARNESS_SHIM_WINDOW_MS.
 */
struct harness_shim_att_mode {
	__u32 id;
	__u32 mode;
};

/* harness_shim_att_state.flags (out) */
#define HARNESS_SHIM_ATT_MAPPED		(1U << 0)	/* holds a table */
#define HARNESS_SHIM_ATT_PENDING	(1U << 1)	/* a worker will unmap */
#define HARNESS_SHIM_ATT_CHECKED	(1U << 2)	/* last unmap checked */

/**
 * struct harness_shim_att_state - HARNESS_SHIM_ATT_STATE
 * @id: the attachment (in); ENOENT if unknown
 * @mode: its HARNESS_SHIM_MODE_* (out)
 * @flags: HARNESS_SHIM_ATT_* (out)
 * @probed: DMA addresses the last unmap probed (out)
 * @stale: of those, how many still translated after it (out)
 * @pad: zero (out)
 *
 * C6.7: before each unmap the shim notes the first and last byte of the
 * table's first entries (at most 16) and, when the importer's IOMMU domain
 * translates (a DMA domain) and every one of them translates
 * (iommu_iova_to_phys()), counts after the unmap those that still do:
 * HARNESS_SHIM_ATT_CHECKED, @probed and @stale.
 */
struct harness_shim_att_state {
	__u32 id;
	__u32 mode;
	__u32 flags;
	__u32 probed;
	__u32 stale;
	__u32 pad;
};

#define HARNESS_SHIM_ATT_MODE \
	_IOW(HARNESS_SHIM_IOCTL_MAGIC, 0x17, struct harness_shim_att_mode)
#define HARNESS_SHIM_ATT_STATE \
	_IOWR(HARNESS_SHIM_IOCTL_MAGIC, 0x18, struct harness_shim_att_state)

#endif /* _UAPI_HARNESS_SHIM_H */
