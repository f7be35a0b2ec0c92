/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * harness_shim.h - user-space interface of the harness shim (/dev/harness_shim)
 *
 * The shim plays nvgrace-gpu's role on x86 for the memory-failure tests of
 * the harness: it maps device memory (an ivshmem BAR) into processes, creates
 * pfn_address_space objects over any PFN range, registers and unregisters
 * them on request, and calls memory_failure() or memory_failure_queue().
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

/* 0x10..0x2f are reserved for the dma-buf importer. */

#endif /* _UAPI_HARNESS_SHIM_H */
