// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test driver for the memory-failure harness.
 *
 * On arm64, nvgrace-gpu-vfio-pci maps GPU device memory (PFNs without struct
 * page) into processes and registers it with register_pfn_address_space(), so
 * that memory_failure() on such a PFN signals the processes mapping it.  This
 * driver plays the same role on an x86 guest so that the harness can test
 * that path under QEMU:
 *
 *  - it binds to an ivshmem function (1af4:1110) whose BAR2 is the "device
 *    memory", and lets processes mmap it with VFIO-style offsets: region 2 is
 *    the first half of BAR2, region 4 the second half, and the byte offset of
 *    a mapping is region << 40 | offset in the region;
 *  - it creates pfn_address_space objects over any PFN range (valid or not:
 *    the harness tests what the kernel does with them), with nvgrace-gpu's
 *    pfn_to_vma_pgoff() arithmetic, a strict variant that also checks that
 *    the PFN lies inside the VMA, or no callback at all, and registers,
 *    unregisters and frees them in whatever order it is asked to;
 *  - it calls memory_failure() in the caller's context or queues it with
 *    memory_failure_queue().
 *
 * It poisons memory on request, so it refuses to load anywhere but in the
 * harness's own QEMU machine (see harness_shim_hardware_present()) and
 * refuses to poison online RAM.
 *
 * With devmem=0 it leaves ivshmem alone (the dma-buf worlds hand it to
 * vfio-pci as the exporter) and only provides the other half; with
 * devmem_bdf=DDDD:BB:DD.F it binds only that ivshmem function and leaves the
 * others to vfio-pci (a world with both halves):
 *
 *  - a dma-buf importer: a PCI driver for QEMU's edu device (1234:11e8);
 *    each bound function is an importer that attaches to dma-bufs (dynamic,
 *    peer-to-peer, revocable: an invalidate_mappings callback that records a
 *    notification and unmaps; or static), maps them under the reservation
 *    lock and reports the DMA table it got (harness_shim.h has the uapi).
 *
 * Userspace uses it like this (w/o error handling):
 *
 *     struct harness_shim_info info;
 *     struct harness_shim_space s = { .id = 1, .callback = 1,
 *                                     .first = pfn, .last = pfn + n - 1 };
 *     struct harness_shim_space_id sid = { .id = 1 };
 *     struct harness_shim_poison p = { .pfn = pfn + 1, .flags = 0x20 };
 *
 *     fd = open("/dev/harness_shim", O_RDWR);
 *     ioctl(fd, HARNESS_SHIM_INFO, &info);
 *     addr = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
 *                 2ULL << 40);
 *     ioctl(fd, HARNESS_SHIM_SPACE_CREATE, &s);
 *     ioctl(fd, HARNESS_SHIM_SPACE_REGISTER, &sid);
 *     ret = ioctl(fd, HARNESS_SHIM_POISON, &p); // SIGBUS at addr + 4096
 *     ioctl(fd, HARNESS_SHIM_SPACE_DESTROY, &sid);
 *
 * All opens of /dev/harness_shim share one address_space (the device node's
 * inode), which is the mapping of every space, as nvgrace-gpu uses the VFIO
 * device inode's mapping for all its regions.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cleanup.h>
#include <linux/delay.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/dma-resv.h>
#include <linux/fs.h>
#include <linux/iommu.h>
#include <linux/memory-failure.h>
#include <linux/memory_hotplug.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <asm/cpufeature.h>

#include "harness_shim.h"

#define DRIVER_NAME		"harness_shim"
#define IMPORTER_DRIVER_NAME	"harness_shim_importer"
#define HARNESS_SHIM_BAR	2
#define HARNESS_SHIM_MAX_UNMAP_DELAY_MS	100
/* DMA addresses an unmap probes through the IOMMU domain (C6.7). */
#define HARNESS_SHIM_MAX_PROBES		32

static bool devmem = true;
module_param(devmem, bool, 0444);
MODULE_PARM_DESC(devmem, "Bind ivshmem (1af4:1110) as device memory (default: 1)");

static char *devmem_bdf;
module_param(devmem_bdf, charp, 0444);
MODULE_PARM_DESC(devmem_bdf,
		 "Bind only the ivshmem function of this PCI name as device memory (default: the first)");

static unsigned int unmap_delay_ms;
module_param(unmap_delay_ms, uint, 0644);
MODULE_PARM_DESC(unmap_delay_ms,
		 "Sleep this long in invalidate_mappings before unmapping (ms, at most 100; default: 0)");

static unsigned int importer_dma_bits = 64;
module_param(importer_dma_bits, uint, 0444);
MODULE_PARM_DESC(importer_dma_bits, "DMA mask of the importer functions in bits (default: 64)");

/* VFIO's region index lives above bit 40 of the offset: above bit 28 of pgoff */
#define HARNESS_SHIM_PGOFF_SHIFT	(HARNESS_SHIM_REGION_SHIFT - PAGE_SHIFT)
#define HARNESS_SHIM_PGOFF_MASK		((1UL << HARNESS_SHIM_PGOFF_SHIFT) - 1)

struct harness_shim;
struct harness_shim_importer;

/**
 * struct harness_shim_pfn_space - one PFN-space object
 * @pfn_space: what the kernel sees; linked in its interval tree once registered
 * @inode: the inode whose i_mapping @pfn_space points to, pinned
 * @callback: HARNESS_SHIM_CALLBACK_*
 * @registered: register_pfn_address_space() returned 0 and no unregister
 *              was requested since
 */
struct harness_shim_pfn_space {
	struct pfn_address_space pfn_space;
	struct inode *inode;
	u32 callback;
	bool registered;
};

/**
 * struct harness_shim - the driver instance
 * @lock: protects everything below but @misc
 * @pdev: the bound ivshmem function, or NULL
 * @devmem_phys: physical address of BAR2
 * @devmem_size: size of BAR2 in bytes
 * @region_pages: pages in each half of BAR2 (regions 2 and 4)
 * @spaces: PFN-space objects by id
 * @import_lock: protects @importers, @attachments and @next_id; taken
 *               before any reservation lock, never inside one
 * @importers: bound importer functions by index
 * @attachments: struct harness_shim_attachment by id
 * @next_id: the next attachment id
 * @misc: /dev/harness_shim
 * @overlap_armed: callbacks count themselves (HARNESS_SHIM_OVERLAP)
 * @overlap_now: callbacks running now, while armed
 * @overlap_max: the most that ran at once since ARM
 * @overlap_calls: callbacks since ARM
 *
 * @devmem_phys and @region_pages are written at probe only and kept after
 * remove, so that the callback (which runs under RCU, without @lock) can read
 * them for mappings that outlive the binding.
 */
struct harness_shim {
	struct mutex lock;
	struct pci_dev *pdev;
	phys_addr_t devmem_phys;
	resource_size_t devmem_size;
	unsigned long region_pages;
	struct harness_shim_pfn_space *spaces[HARNESS_SHIM_MAX_SPACE_ID + 1];

	struct mutex import_lock;
	struct harness_shim_importer *importers[HARNESS_SHIM_MAX_IMPORTERS];
	struct xarray attachments;
	u32 next_id;

	struct miscdevice misc;

	bool overlap_armed;
	atomic_t overlap_now;
	atomic_t overlap_max;
	atomic_t overlap_calls;
};

/**
 * struct harness_shim_file - one open of /dev/harness_shim
 * @shim: the driver instance
 * @notify_lock: protects the notification log (a leaf lock: taken inside
 *               reservation locks by the callback)
 * @notify_log: notification ring of the file's attachments, allocated at
 *              the first IMPORT (under import_lock); @notify_head oldest,
 *              @notify_len records
 * @notify_lost: records dropped since the last read
 * @notify_seq: last sequence number given out
 */
struct harness_shim_file {
	struct harness_shim *shim;
	spinlock_t notify_lock;
	struct harness_shim_notification *notify_log;
	unsigned int notify_head;
	unsigned int notify_len;
	u32 notify_lost;
	u64 notify_seq;
};

/**
 * struct harness_shim_importer - one bound edu function
 * @pdev: the function; its struct device is the importing device
 * @index: its slot in harness_shim.importers
 */
struct harness_shim_importer {
	struct pci_dev *pdev;
	unsigned int index;
};

/**
 * struct harness_shim_attachment - one attachment of an importer
 * @shim: the driver instance
 * @id: its id (the xarray index)
 * @owner: the open file that created it
 * @importer: the importer attached
 * @dmabuf: the buffer, a reference held (dma_buf_get())
 * @attach: the kernel's attachment
 * @sgt: the mapped table or NULL; protected by @dmabuf's reservation lock
 * @dynamic: attached with dma_buf_dynamic_attach() and importer ops
 * @mode: HARNESS_SHIM_MODE_*, what invalidate_mappings does when mapped
 * @unmap_work: the deferred unmap of the delayed and never modes
 * @unmap_pending: @unmap_work will unmap; under the reservation lock
 * @checked: the last unmap was checked through the IOMMU domain (C6.7)
 * @probed: addresses it probed
 * @stale: of those, still translating after the unmap
 */
struct harness_shim_attachment {
	struct harness_shim *shim;
	u32 id;
	struct harness_shim_file *owner;
	struct harness_shim_importer *importer;
	struct dma_buf *dmabuf;
	struct dma_buf_attachment *attach;
	struct sg_table *sgt;
	bool dynamic;
	u32 mode;
	struct delayed_work unmap_work;
	bool unmap_pending;
	bool checked;
	u32 probed;
	u32 stale;
};

static struct harness_shim harness_shim_dev;

static const struct vm_operations_struct harness_shim_vm_ops = {
	/* Only there to recognise our VMAs; remap_pfn_range() fills them. */
};

static inline struct harness_shim_file *to_harness_shim_file(struct file *filp)
{
	return filp->private_data;
}

static inline struct harness_shim *to_harness_shim(struct file *filp)
{
	return to_harness_shim_file(filp)->shim;
}

static struct device *harness_shim_device(struct harness_shim *shim)
{
	return shim->misc.this_device;
}

/*
 * First PFN of region @index, or 0 with -EINVAL if @index is not one of the
 * two device-memory regions.
 */
static int harness_shim_region_pfn(struct harness_shim *shim,
				   unsigned long index, unsigned long *pfn)
{
	unsigned long base = PHYS_PFN(shim->devmem_phys);

	switch (index) {
	case HARNESS_SHIM_REGION_LOW:
		*pfn = base;
		return 0;
	case HARNESS_SHIM_REGION_HIGH:
		*pfn = base + shim->region_pages;
		return 0;
	default:
		return -EINVAL;
	}
}

/*
 * While HARNESS_SHIM_OVERLAP is armed: counts the callback in, waits and
 * counts it out, so that two memory_failure() calls that were not
 * serialised (C2.1) would be seen running callbacks at once.  It must not
 * sleep (the callback runs under RCU).
 */
static void harness_shim_overlap_count(struct harness_shim *shim)
{
	int now, max;

	if (!READ_ONCE(shim->overlap_armed))
		return;
	now = atomic_inc_return(&shim->overlap_now);
	atomic_inc(&shim->overlap_calls);
	max = atomic_read(&shim->overlap_max);
	while (now > max && !atomic_try_cmpxchg(&shim->overlap_max, &max, now))
		;
	udelay(HARNESS_SHIM_OVERLAP_DELAY_US);
	atomic_dec(&shim->overlap_now);
}

/*
 * The pfn_to_vma_pgoff() callback, nvgrace-gpu's arithmetic (contract C4.2)
 * and, if @strict, the check that the PFN lies inside the VMA.  It runs
 * under rcu_read_lock() and i_mmap_lock_read(): it must not sleep.
 */
static int harness_shim_vma_pgoff(struct vm_area_struct *vma,
				  unsigned long pfn, pgoff_t *pgoff,
				  bool strict)
{
	unsigned long index = vma->vm_pgoff >> HARNESS_SHIM_PGOFF_SHIFT;
	pgoff_t vma_offset = vma->vm_pgoff & HARNESS_SHIM_PGOFF_MASK;
	struct harness_shim *shim;
	unsigned long first, offset;
	int ret;

	if (vma->vm_ops != &harness_shim_vm_ops)
		return -ENOENT;
	shim = vma->vm_private_data;

	harness_shim_overlap_count(shim);

	ret = harness_shim_region_pfn(shim, index, &first);
	if (ret)
		return ret;
	if (pfn < first || pfn - first >= shim->region_pages)
		return -EFAULT;

	offset = pfn - first;
	if (offset < vma_offset)
		return -EFAULT;
	if (strict && offset - vma_offset >= vma_pages(vma))
		return -EFAULT;

	*pgoff = vma->vm_pgoff + (offset - vma_offset);
	return 0;
}

static int harness_shim_nvgrace_pgoff(struct vm_area_struct *vma,
				      unsigned long pfn, pgoff_t *pgoff)
{
	return harness_shim_vma_pgoff(vma, pfn, pgoff, false);
}

static int harness_shim_strict_pgoff(struct vm_area_struct *vma,
				     unsigned long pfn, pgoff_t *pgoff)
{
	return harness_shim_vma_pgoff(vma, pfn, pgoff, true);
}

static int (*const harness_shim_callbacks[])(struct vm_area_struct *vma,
					      unsigned long pfn,
					      pgoff_t *pgoff) = {
	[HARNESS_SHIM_CALLBACK_NONE] = NULL,
	[HARNESS_SHIM_CALLBACK_NVGRACE] = harness_shim_nvgrace_pgoff,
	[HARNESS_SHIM_CALLBACK_STRICT] = harness_shim_strict_pgoff,
};

/*
 * Maps device memory.  Argument errors are reported with dev_dbg(): the
 * fuzzer provokes them on purpose and the harness scans the console.
 */
static int harness_shim_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct harness_shim *shim = to_harness_shim(filp);
	unsigned long index = vma->vm_pgoff >> HARNESS_SHIM_PGOFF_SHIFT;
	unsigned long offset = vma->vm_pgoff & HARNESS_SHIM_PGOFF_MASK;
	unsigned long pages = vma_pages(vma);
	unsigned long first;
	int ret;

	if (!(vma->vm_flags & VM_SHARED)) {
		dev_dbg(harness_shim_device(shim), "mmap: not a shared mapping\n");
		return -EINVAL;
	}

	guard(mutex)(&shim->lock);

	if (!shim->pdev) {
		dev_dbg(harness_shim_device(shim), "mmap: no device memory\n");
		return -ENODEV;
	}
	ret = harness_shim_region_pfn(shim, index, &first);
	if (ret) {
		dev_dbg(harness_shim_device(shim), "mmap: region %lu: %d\n",
			index, ret);
		return ret;
	}
	if (offset >= shim->region_pages ||
	    pages > shim->region_pages - offset) {
		dev_dbg(harness_shim_device(shim),
			"mmap: pages %#lx+%lu past region %lu\n",
			offset, pages, index);
		return -EINVAL;
	}

	vma->vm_ops = &harness_shim_vm_ops;
	vma->vm_private_data = shim;

	/* Keeps vm_pgoff (a shared mapping): the callback arithmetic uses it. */
	ret = remap_pfn_range(vma, vma->vm_start, first + offset,
			      vma->vm_end - vma->vm_start, vma->vm_page_prot);
	if (ret)
		dev_err(harness_shim_device(shim),
			"mmap: remap_pfn_range of %#lx+%lu failed: %d\n",
			first + offset, pages, ret);
	return ret;
}

static long harness_shim_info(struct harness_shim *shim, void __user *argp)
{
	struct harness_shim_info info = { };

	scoped_guard(mutex, &shim->lock) {
		if (!shim->pdev)
			return -ENODEV;
		info.devmem_phys = shim->devmem_phys;
		info.devmem_size = shim->devmem_size;
		info.flags = HARNESS_SHIM_INFO_DEVMEM;
		strscpy(info.bdf, pci_name(shim->pdev), sizeof(info.bdf));
	}

	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long harness_shim_space_create(struct harness_shim *shim,
				      struct file *filp, void __user *argp)
{
	struct harness_shim_pfn_space *space;
	struct harness_shim_space req;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.id > HARNESS_SHIM_MAX_SPACE_ID ||
	    req.callback >= ARRAY_SIZE(harness_shim_callbacks))
		return -EINVAL;

	guard(mutex)(&shim->lock);

	if (shim->spaces[req.id])
		return -EEXIST;

	space = kzalloc_obj(*space, GFP_KERNEL);
	if (!space)
		return -ENOMEM;

	/* No range check: contract C1.4, any [first, last] is allowed. */
	space->pfn_space.node.start = req.first;
	space->pfn_space.node.last = req.last;
	space->pfn_space.mapping = filp->f_mapping;
	space->pfn_space.pfn_to_vma_pgoff = harness_shim_callbacks[req.callback];
	space->inode = filp->f_mapping->host;
	ihold(space->inode);
	space->callback = req.callback;

	shim->spaces[req.id] = space;
	return 0;
}

static struct harness_shim_pfn_space *
harness_shim_space_get(struct harness_shim *shim, void __user *argp,
		       u32 *id)
{
	struct harness_shim_space_id req;

	lockdep_assert_held(&shim->lock);

	if (copy_from_user(&req, argp, sizeof(req)))
		return ERR_PTR(-EFAULT);
	if (req.pad)
		return ERR_PTR(-EINVAL);
	if (req.id > HARNESS_SHIM_MAX_SPACE_ID || !shim->spaces[req.id])
		return ERR_PTR(-ENOENT);

	*id = req.id;
	return shim->spaces[req.id];
}

/* Returns the kernel's answer: 0, -EBUSY or -EINVAL. */
static long harness_shim_space_register(struct harness_shim *shim,
					void __user *argp)
{
	struct harness_shim_pfn_space *space;
	u32 id;
	int ret;

	guard(mutex)(&shim->lock);

	space = harness_shim_space_get(shim, argp, &id);
	if (IS_ERR(space))
		return PTR_ERR(space);

	ret = register_pfn_address_space(&space->pfn_space);
	if (!ret)
		space->registered = true;
	return ret;
}

/*
 * Always asks the kernel, registered or not: unregistering what is not
 * registered must have no effect (contract C1.2), and the harness tests it.
 */
static long harness_shim_space_unregister(struct harness_shim *shim,
					  void __user *argp)
{
	struct harness_shim_pfn_space *space;
	u32 id;

	guard(mutex)(&shim->lock);

	space = harness_shim_space_get(shim, argp, &id);
	if (IS_ERR(space))
		return PTR_ERR(space);

	unregister_pfn_address_space(&space->pfn_space);
	space->registered = false;
	return 0;
}

static void harness_shim_space_free(struct harness_shim *shim, u32 id)
{
	struct harness_shim_pfn_space *space = shim->spaces[id];

	lockdep_assert_held(&shim->lock);

	if (space->registered)
		unregister_pfn_address_space(&space->pfn_space);
	shim->spaces[id] = NULL;
	iput(space->inode);
	kfree(space);
}

static long harness_shim_space_destroy(struct harness_shim *shim,
				       void __user *argp)
{
	struct harness_shim_pfn_space *space;
	u32 id;

	guard(mutex)(&shim->lock);

	space = harness_shim_space_get(shim, argp, &id);
	if (IS_ERR(space))
		return PTR_ERR(space);

	harness_shim_space_free(shim, id);
	return 0;
}

/* HARNESS_SHIM_RESET (harness_shim.h). */
static long harness_shim_reset(struct harness_shim *shim, struct file *filp)
{
	struct pfn_address_space probe = {
		.node = { .start = 0, .last = ULONG_MAX },
		.mapping = filp->f_mapping,
		.pfn_to_vma_pgoff = harness_shim_nvgrace_pgoff,
	};
	struct harness_shim_pfn_space *space;
	int ret;
	u32 id;

	guard(mutex)(&shim->lock);

	for (id = 0; id <= HARNESS_SHIM_MAX_SPACE_ID; id++) {
		space = shim->spaces[id];
		if (space && space->registered) {
			unregister_pfn_address_space(&space->pfn_space);
			space->registered = false;
		}
	}
	ret = register_pfn_address_space(&probe);
	if (ret)
		return ret;
	unregister_pfn_address_space(&probe);
	for (id = 0; id <= HARNESS_SHIM_MAX_SPACE_ID; id++) {
		if (shim->spaces[id])
			harness_shim_space_free(shim, id);
	}
	return 0;
}

static long harness_shim_poison(struct harness_shim *shim, void __user *argp)
{
	struct harness_shim_poison req;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.mode != HARNESS_SHIM_POISON_CALL &&
	    req.mode != HARNESS_SHIM_POISON_QUEUE)
		return -EINVAL;
	if (pfn_to_online_page(req.pfn)) {
		dev_dbg(harness_shim_device(shim),
			"poison: %#llx is online RAM\n", req.pfn);
		return -EPERM;
	}

	if (req.mode == HARNESS_SHIM_POISON_QUEUE) {
		memory_failure_queue(req.pfn, req.flags);
		return 0;
	}
	return memory_failure(req.pfn, req.flags);
}

/*
 * HARNESS_SHIM_OVERLAP: ARM zeroes the callback counts and arms them; 0
 * disarms and returns them.
 */
static long harness_shim_overlap(struct harness_shim *shim, void __user *argp)
{
	struct harness_shim_overlap req;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.flags & ~HARNESS_SHIM_OVERLAP_ARM || req.pad)
		return -EINVAL;

	guard(mutex)(&shim->lock);

	if (req.flags & HARNESS_SHIM_OVERLAP_ARM) {
		atomic_set(&shim->overlap_max, 0);
		atomic_set(&shim->overlap_calls, 0);
		WRITE_ONCE(shim->overlap_armed, true);
		req.max = 0;
		req.calls = 0;
	} else {
		WRITE_ONCE(shim->overlap_armed, false);
		req.max = atomic_read(&shim->overlap_max);
		req.calls = atomic_read(&shim->overlap_calls);
	}
	if (copy_to_user(argp, &req, sizeof(req)))
		return -EFAULT;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The dma-buf importer */

static void harness_shim_notify_record(struct harness_shim_file *hf, u32 id,
				       u32 flags, s32 remap)
{
	struct harness_shim_notification *rec;

	guard(spinlock)(&hf->notify_lock);

	if (hf->notify_len == HARNESS_SHIM_NOTIFY_LOG_LEN) {
		hf->notify_lost++;
		return;
	}
	rec = &hf->notify_log[(hf->notify_head + hf->notify_len) %
			      HARNESS_SHIM_NOTIFY_LOG_LEN];
	rec->id = id;
	rec->flags = flags;
	rec->seq = ++hf->notify_seq;
	rec->remap = remap;
	rec->pad = 0;
	hf->notify_len++;
}

/*
 * C6.7: dma_buf_free_sgt() undoes what the map did.  When the importer's
 * IOMMU domain translates (a DMA domain), notes the first and last byte of
 * the first entries of @att's table; harness_shim_att_unmap() asks again
 * after the unmap.  Returns how many it noted, 0 when it cannot check (no
 * DMA domain, or an address that does not translate: not an IOVA).
 */
static u32 harness_shim_probe_before(struct harness_shim_attachment *att,
				     struct iommu_domain **domp,
				     dma_addr_t *probe)
{
	struct iommu_domain *dom;
	struct scatterlist *sg;
	u32 n = 0, k;
	int i;

	dom = iommu_get_domain_for_dev(&att->importer->pdev->dev);
	if (!dom || !iommu_is_dma_domain(dom))
		return 0;
	for_each_sgtable_dma_sg(att->sgt, sg, i) {
		if (n + 2 > HARNESS_SHIM_MAX_PROBES || !sg_dma_len(sg))
			break;
		probe[n++] = sg_dma_address(sg);
		probe[n++] = sg_dma_address(sg) + sg_dma_len(sg) - 1;
	}
	for (k = 0; k < n; k++) {
		if (!iommu_iova_to_phys(dom, probe[k]))
			return 0;
	}
	*domp = dom;
	return n;
}

/* Unmaps @att if it is mapped; its buffer's reservation lock is held. */
static void harness_shim_att_unmap(struct harness_shim_attachment *att)
{
	dma_addr_t probe[HARNESS_SHIM_MAX_PROBES];
	struct iommu_domain *dom = NULL;
	u32 n, k, stale = 0;

	dma_resv_assert_held(att->dmabuf->resv);

	att->unmap_pending = false;
	if (!att->sgt)
		return;
	n = harness_shim_probe_before(att, &dom, probe);
	dma_buf_unmap_attachment(att->attach, att->sgt, DMA_BIDIRECTIONAL);
	att->sgt = NULL;
	for (k = 0; k < n; k++) {
		if (iommu_iova_to_phys(dom, probe[k]))
			stale++;
	}
	att->checked = n > 0;
	att->probed = n;
	att->stale = stale;
}

/* The delayed and never modes: unmaps @ms from now, from a worker. */
static void harness_shim_defer_unmap(struct harness_shim_attachment *att,
				     unsigned int ms)
{
	dma_resv_assert_held(att->dmabuf->resv);

	att->unmap_pending = true;
	queue_delayed_work(system_unbound_wq, &att->unmap_work,
			   msecs_to_jiffies(ms));
}

static void harness_shim_deferred_unmap(struct work_struct *work)
{
	struct harness_shim_attachment *att =
		container_of(to_delayed_work(work),
			     struct harness_shim_attachment, unmap_work);

	dma_resv_lock(att->dmabuf->resv, NULL);
	if (att->unmap_pending)
		harness_shim_att_unmap(att);
	dma_resv_unlock(att->dmabuf->resv);
}

/*
 * dma_buf_attach_ops.invalidate_mappings: called by the exporter with the
 * reservation lock held (C7.5: revocation waits until we have unmapped).
 * Records the notification and, if mapped, does what the attachment's mode
 * says: unmaps (optionally after a bounded sleep), unmaps and maps again
 * (the answer goes in the record; a table it gets is unmapped by a worker
 * after the window), or leaves the unmap to a worker (delayed, never).
 */
static void harness_shim_invalidate_mappings(struct dma_buf_attachment *attach)
{
	struct harness_shim_attachment *att = attach->importer_priv;
	unsigned int delay = min(READ_ONCE(unmap_delay_ms),
				 HARNESS_SHIM_MAX_UNMAP_DELAY_MS);
	u32 flags = HARNESS_SHIM_NOTIFY_MAPPED;
	struct sg_table *sgt;
	s32 remap = 0;

	dma_resv_assert_held(attach->dmabuf->resv);

	if (!att->sgt) {
		harness_shim_notify_record(att->owner, att->id, 0, 0);
		return;
	}
	switch (READ_ONCE(att->mode)) {
	case HARNESS_SHIM_MODE_DELAYED:
		flags |= HARNESS_SHIM_NOTIFY_DEFERRED;
		harness_shim_defer_unmap(att, HARNESS_SHIM_DELAYED_MS);
		break;
	case HARNESS_SHIM_MODE_NEVER:
		flags |= HARNESS_SHIM_NOTIFY_DEFERRED;
		harness_shim_defer_unmap(att, HARNESS_SHIM_WINDOW_MS);
		break;
	case HARNESS_SHIM_MODE_REMAP:
		harness_shim_att_unmap(att);
		flags |= HARNESS_SHIM_NOTIFY_REMAPPED;
		sgt = dma_buf_map_attachment(att->attach, DMA_BIDIRECTIONAL);
		if (IS_ERR(sgt)) {
			remap = PTR_ERR(sgt);
		} else {
			att->sgt = sgt;
			harness_shim_defer_unmap(att, HARNESS_SHIM_WINDOW_MS);
		}
		break;
	default:
		if (delay)
			msleep(delay);
		harness_shim_att_unmap(att);
	}
	harness_shim_notify_record(att->owner, att->id, flags, remap);
}

static const struct dma_buf_attach_ops harness_shim_importer_ops = {
	.allow_peer2peer = true,
	.invalidate_mappings = harness_shim_invalidate_mappings,
};

/* Unmaps, detaches and frees @att; removes it from the table. */
static void harness_shim_att_free(struct harness_shim *shim,
				  struct harness_shim_attachment *att)
{
	lockdep_assert_held(&shim->import_lock);

	/* The worker takes only the reservation lock: no cycle. */
	cancel_delayed_work_sync(&att->unmap_work);
	dma_resv_lock(att->dmabuf->resv, NULL);
	harness_shim_att_unmap(att);
	dma_resv_unlock(att->dmabuf->resv);

	dma_buf_detach(att->dmabuf, att->attach);
	dma_buf_put(att->dmabuf);
	xa_erase(&shim->attachments, att->id);
	kfree(att);
}

/* Frees every attachment of @owner (NULL: any) or of @imp (NULL: any). */
static void harness_shim_att_free_all(struct harness_shim *shim,
				      struct harness_shim_file *owner,
				      struct harness_shim_importer *imp)
{
	struct harness_shim_attachment *att;
	unsigned long id;

	lockdep_assert_held(&shim->import_lock);

	xa_for_each(&shim->attachments, id, att) {
		if ((!owner || att->owner == owner) &&
		    (!imp || att->importer == imp))
			harness_shim_att_free(shim, att);
	}
}

/* The attachment @id of @hf, or NULL. */
static struct harness_shim_attachment *
harness_shim_att_get(struct harness_shim *shim, struct harness_shim_file *hf,
		     u32 id)
{
	struct harness_shim_attachment *att;

	lockdep_assert_held(&shim->import_lock);

	att = xa_load(&shim->attachments, id);
	if (!att || att->owner != hf)
		return NULL;
	return att;
}

static long harness_shim_importer_info(struct harness_shim *shim,
				       void __user *argp)
{
	struct harness_shim_importer_info info;
	struct harness_shim_importer *imp;

	if (copy_from_user(&info, argp, sizeof(info)))
		return -EFAULT;
	if (info.pad)
		return -EINVAL;

	scoped_guard(mutex, &shim->import_lock) {
		if (info.index >= HARNESS_SHIM_MAX_IMPORTERS)
			return -ENOENT;
		imp = shim->importers[info.index];
		if (!imp)
			return -ENOENT;
		memset(info.bdf, 0, sizeof(info.bdf));
		strscpy(info.bdf, pci_name(imp->pdev), sizeof(info.bdf));
	}

	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long harness_shim_import(struct harness_shim *shim,
				struct harness_shim_file *hf, void __user *argp)
{
	struct harness_shim_attachment *att;
	struct harness_shim_importer *imp;
	struct dma_buf_attachment *attach;
	struct harness_shim_import req;
	struct dma_buf *dmabuf;
	u32 id;
	int ret;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.flags & ~HARNESS_SHIM_IMPORT_STATIC)
		return -EINVAL;

	scoped_guard(mutex, &shim->import_lock) {
		if (req.importer >= HARNESS_SHIM_MAX_IMPORTERS ||
		    !shim->importers[req.importer])
			return -ENOENT;
		imp = shim->importers[req.importer];

		if (!hf->notify_log) {
			hf->notify_log = kvcalloc(HARNESS_SHIM_NOTIFY_LOG_LEN,
						  sizeof(*hf->notify_log),
						  GFP_KERNEL);
			if (!hf->notify_log)
				return -ENOMEM;
		}

		dmabuf = dma_buf_get(req.fd);
		if (IS_ERR(dmabuf))
			return PTR_ERR(dmabuf);

		att = kzalloc_obj(*att, GFP_KERNEL);
		if (!att) {
			dma_buf_put(dmabuf);
			return -ENOMEM;
		}
		att->shim = shim;
		att->owner = hf;
		att->importer = imp;
		att->dmabuf = dmabuf;
		att->dynamic = !(req.flags & HARNESS_SHIM_IMPORT_STATIC);
		INIT_DELAYED_WORK(&att->unmap_work,
				  harness_shim_deferred_unmap);

		/* The id first: the callback may run as soon as we are attached. */
		ret = xa_alloc(&shim->attachments, &id, att,
			       XA_LIMIT(shim->next_id, U32_MAX), GFP_KERNEL);
		if (ret) {
			kfree(att);
			dma_buf_put(dmabuf);
			return ret == -EBUSY ? -ENOSPC : ret;
		}
		att->id = id;

		if (att->dynamic)
			attach = dma_buf_dynamic_attach(dmabuf, &imp->pdev->dev,
							&harness_shim_importer_ops,
							att);
		else
			attach = dma_buf_attach(dmabuf, &imp->pdev->dev);
		if (IS_ERR(attach)) {
			xa_erase(&shim->attachments, id);
			kfree(att);
			dma_buf_put(dmabuf);
			return PTR_ERR(attach);
		}
		att->attach = attach;
		shim->next_id = id + 1;
	}

	req.id = id;
	if (copy_to_user(argp, &req, sizeof(req))) {
		/* The caller cannot learn the id: undo. */
		scoped_guard(mutex, &shim->import_lock) {
			att = harness_shim_att_get(shim, hf, id);
			if (att)
				harness_shim_att_free(shim, att);
		}
		return -EFAULT;
	}
	return 0;
}

/*
 * Maps @att (@map) or checks that it is mapped, then copies DMA entries
 * [req->first, req->first + count) of its table into @entries.  Called
 * with the reservation lock held: a revocation may free the table as soon
 * as it is dropped.
 */
static int harness_shim_map_locked(struct harness_shim_attachment *att,
				   struct harness_shim_map *req,
				   struct harness_shim_sg_entry *entries,
				   u32 count, bool map)
{
	struct scatterlist *sg;
	struct sg_table *sgt;
	u32 n = 0;
	int i;

	dma_resv_assert_held(att->dmabuf->resv);

	if (map) {
		if (att->sgt)
			return -EBUSY;
		sgt = dma_buf_map_attachment(att->attach, DMA_BIDIRECTIONAL);
		if (IS_ERR(sgt))
			return PTR_ERR(sgt);
		att->sgt = sgt;
	} else if (!att->sgt || req->first > att->sgt->nents) {
		return -EINVAL;
	}

	sgt = att->sgt;
	req->nents = sgt->nents;
	req->orig_nents = sgt->orig_nents;
	for_each_sgtable_dma_sg(sgt, sg, i) {
		if ((u32)i < req->first)
			continue;
		if (n == count)
			break;
		entries[n].addr = sg_dma_address(sg);
		entries[n].len = sg_dma_len(sg);
		n++;
	}
	req->count = n;
	if (req->first + n < sgt->nents)
		req->flags |= HARNESS_SHIM_MAP_TRUNCATED;
	return 0;
}

/*
 * MAP (@map) or TABLE.  The entries are copied to user space from a kernel
 * buffer without any lock held (a page fault must not nest in the
 * reservation lock).
 */
static long harness_shim_map(struct harness_shim *shim,
			     struct harness_shim_file *hf, void __user *argp,
			     bool map)
{
	struct harness_shim_sg_entry *entries = NULL;
	struct harness_shim_attachment *att;
	struct harness_shim_map req;
	u32 count;
	int ret;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.flags || (map && req.first))
		return -EINVAL;
	count = min_t(u32, req.count, HARNESS_SHIM_MAX_SG_ENTRIES);
	if (count) {
		entries = kvcalloc(count, sizeof(*entries), GFP_KERNEL);
		if (!entries)
			return -ENOMEM;
	}

	scoped_guard(mutex, &shim->import_lock) {
		att = harness_shim_att_get(shim, hf, req.id);
		if (!att) {
			ret = -ENOENT;
		} else {
			ret = dma_resv_lock_interruptible(att->dmabuf->resv,
							  NULL);
			if (!ret) {
				ret = harness_shim_map_locked(att, &req, entries,
							      count, map);
				dma_resv_unlock(att->dmabuf->resv);
			}
		}
	}

	/* A failed copy leaves the mapping: the caller can UNMAP or DETACH. */
	if (!ret && req.count &&
	    copy_to_user(u64_to_user_ptr(req.entries), entries,
			 req.count * sizeof(*entries)))
		ret = -EFAULT;
	if (!ret && copy_to_user(argp, &req, sizeof(req)))
		ret = -EFAULT;
	kvfree(entries);
	return ret;
}

static long harness_shim_unmap_detach(struct harness_shim *shim,
				      struct harness_shim_file *hf,
				      void __user *argp, bool detach)
{
	struct harness_shim_attachment *att;
	struct harness_shim_attach_id req;
	int ret = 0;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.pad)
		return -EINVAL;

	guard(mutex)(&shim->import_lock);

	att = harness_shim_att_get(shim, hf, req.id);
	if (!att)
		return -ENOENT;
	if (detach) {
		harness_shim_att_free(shim, att);
		return 0;
	}

	dma_resv_lock(att->dmabuf->resv, NULL);
	if (att->sgt)
		harness_shim_att_unmap(att);
	else
		ret = -EINVAL;
	dma_resv_unlock(att->dmabuf->resv);
	return ret;
}

/* HARNESS_SHIM_ATT_MODE (harness_shim.h). */
static long harness_shim_att_mode(struct harness_shim *shim,
				  struct harness_shim_file *hf,
				  void __user *argp)
{
	struct harness_shim_attachment *att;
	struct harness_shim_att_mode req;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.mode > HARNESS_SHIM_MODE_NEVER)
		return -EINVAL;

	guard(mutex)(&shim->import_lock);

	att = harness_shim_att_get(shim, hf, req.id);
	if (!att)
		return -ENOENT;
	WRITE_ONCE(att->mode, req.mode);
	return 0;
}

/* HARNESS_SHIM_ATT_STATE (harness_shim.h). */
static long harness_shim_att_state(struct harness_shim *shim,
				   struct harness_shim_file *hf,
				   void __user *argp)
{
	struct harness_shim_attachment *att;
	struct harness_shim_att_state req;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;

	scoped_guard(mutex, &shim->import_lock) {
		att = harness_shim_att_get(shim, hf, req.id);
		if (!att)
			return -ENOENT;
		dma_resv_lock(att->dmabuf->resv, NULL);
		req.mode = att->mode;
		req.flags = (att->sgt ? HARNESS_SHIM_ATT_MAPPED : 0) |
			    (att->unmap_pending ? HARNESS_SHIM_ATT_PENDING : 0) |
			    (att->checked ? HARNESS_SHIM_ATT_CHECKED : 0);
		req.probed = att->probed;
		req.stale = att->stale;
		req.pad = 0;
		dma_resv_unlock(att->dmabuf->resv);
	}

	if (copy_to_user(argp, &req, sizeof(req)))
		return -EFAULT;
	return 0;
}

static long harness_shim_notify_read(struct harness_shim_file *hf,
				     void __user *argp)
{
	struct harness_shim_notification *recs;
	struct harness_shim_notify req;
	unsigned int i, n;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	n = min_t(u32, req.count, HARNESS_SHIM_NOTIFY_LOG_LEN);
	recs = n ? kvcalloc(n, sizeof(*recs), GFP_KERNEL) : NULL;
	if (n && !recs)
		return -ENOMEM;

	/*
	 * Copied out and removed in one step: a record is either returned or
	 * stays in the log.  If the copy to user space fails they are lost
	 * (counted in the next read).
	 */
	scoped_guard(spinlock, &hf->notify_lock) {
		n = min(n, hf->notify_len);
		for (i = 0; i < n; i++)
			recs[i] = hf->notify_log[(hf->notify_head + i) %
						 HARNESS_SHIM_NOTIFY_LOG_LEN];
		hf->notify_head = (hf->notify_head + n) %
				  HARNESS_SHIM_NOTIFY_LOG_LEN;
		hf->notify_len -= n;
		req.lost = hf->notify_lost;
		hf->notify_lost = 0;
	}

	req.count = n;
	if ((n && copy_to_user(u64_to_user_ptr(req.records), recs,
			       n * sizeof(*recs))) ||
	    copy_to_user(argp, &req, sizeof(req))) {
		scoped_guard(spinlock, &hf->notify_lock)
			hf->notify_lost += n;
		kvfree(recs);
		return -EFAULT;
	}
	kvfree(recs);
	return 0;
}

/* misc_open() has set private_data to the miscdevice. */
static int harness_shim_open(struct inode *inode, struct file *filp)
{
	struct harness_shim *shim = container_of(filp->private_data,
						 struct harness_shim, misc);
	struct harness_shim_file *hf;

	hf = kzalloc_obj(*hf, GFP_KERNEL);
	if (!hf)
		return -ENOMEM;
	hf->shim = shim;
	spin_lock_init(&hf->notify_lock);
	filp->private_data = hf;
	return 0;
}

/* Unmaps and detaches the file's attachments. */
static int harness_shim_release(struct inode *inode, struct file *filp)
{
	struct harness_shim_file *hf = to_harness_shim_file(filp);
	struct harness_shim *shim = hf->shim;

	scoped_guard(mutex, &shim->import_lock)
		harness_shim_att_free_all(shim, hf, NULL);
	kvfree(hf->notify_log);
	kfree(hf);
	return 0;
}

static long harness_shim_ioctl(struct file *filp, unsigned int cmd,
			       unsigned long arg)
{
	struct harness_shim_file *hf = to_harness_shim_file(filp);
	struct harness_shim *shim = hf->shim;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case HARNESS_SHIM_INFO:
		return harness_shim_info(shim, argp);
	case HARNESS_SHIM_SPACE_CREATE:
		return harness_shim_space_create(shim, filp, argp);
	case HARNESS_SHIM_SPACE_REGISTER:
		return harness_shim_space_register(shim, argp);
	case HARNESS_SHIM_SPACE_UNREGISTER:
		return harness_shim_space_unregister(shim, argp);
	case HARNESS_SHIM_SPACE_DESTROY:
		return harness_shim_space_destroy(shim, argp);
	case HARNESS_SHIM_POISON:
		return harness_shim_poison(shim, argp);
	case HARNESS_SHIM_RESET:
		return harness_shim_reset(shim, filp);
	case HARNESS_SHIM_OVERLAP:
		return harness_shim_overlap(shim, argp);
	case HARNESS_SHIM_IMPORTER_INFO:
		return harness_shim_importer_info(shim, argp);
	case HARNESS_SHIM_IMPORT:
		return harness_shim_import(shim, hf, argp);
	case HARNESS_SHIM_MAP:
		return harness_shim_map(shim, hf, argp, true);
	case HARNESS_SHIM_TABLE:
		return harness_shim_map(shim, hf, argp, false);
	case HARNESS_SHIM_UNMAP:
		return harness_shim_unmap_detach(shim, hf, argp, false);
	case HARNESS_SHIM_DETACH:
		return harness_shim_unmap_detach(shim, hf, argp, true);
	case HARNESS_SHIM_ATT_MODE:
		return harness_shim_att_mode(shim, hf, argp);
	case HARNESS_SHIM_ATT_STATE:
		return harness_shim_att_state(shim, hf, argp);
	case HARNESS_SHIM_NOTIFY_READ:
		return harness_shim_notify_read(hf, argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations harness_shim_fops = {
	.owner = THIS_MODULE,
	.open = harness_shim_open,
	.unlocked_ioctl = harness_shim_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = harness_shim_mmap,
	.release = harness_shim_release,
};

static int harness_shim_probe(struct pci_dev *pdev,
			      const struct pci_device_id *id)
{
	struct harness_shim *shim = &harness_shim_dev;
	resource_size_t start = pci_resource_start(pdev, HARNESS_SHIM_BAR);
	resource_size_t size = pci_resource_len(pdev, HARNESS_SHIM_BAR);
	int ret;

	/* Another ivshmem function than the one named: an exporter's. */
	if (devmem_bdf && devmem_bdf[0] && strcmp(pci_name(pdev), devmem_bdf))
		return -ENODEV;

	guard(mutex)(&shim->lock);

	if (shim->pdev) {
		dev_err(&pdev->dev, "device memory already bound to %s: %d\n",
			pci_name(shim->pdev), -EBUSY);
		return -EBUSY;
	}
	if (!(pci_resource_flags(pdev, HARNESS_SHIM_BAR) & IORESOURCE_MEM) ||
	    !size) {
		dev_err(&pdev->dev, "BAR%d is not memory: %d\n",
			HARNESS_SHIM_BAR, -ENODEV);
		return -ENODEV;
	}
	if (!PAGE_ALIGNED(start) || !IS_ALIGNED(size, 2 * PAGE_SIZE)) {
		dev_err(&pdev->dev, "BAR%d %pa+%pa is not two page-aligned halves: %d\n",
			HARNESS_SHIM_BAR, &start, &size, -EINVAL);
		return -EINVAL;
	}

	ret = pci_enable_device(pdev);
	if (ret) {
		dev_err(&pdev->dev, "cannot enable device: %d\n", ret);
		return ret;
	}
	ret = pci_request_region(pdev, HARNESS_SHIM_BAR, DRIVER_NAME);
	if (ret) {
		dev_err(&pdev->dev, "cannot claim BAR%d: %d\n",
			HARNESS_SHIM_BAR, ret);
		pci_disable_device(pdev);
		return ret;
	}

	shim->pdev = pdev;
	shim->devmem_phys = start;
	shim->devmem_size = size;
	shim->region_pages = size >> (PAGE_SHIFT + 1);
	pci_set_drvdata(pdev, shim);

	dev_info(&pdev->dev, "device memory %pa+%pa (PFN %#lx)\n",
		 &start, &size, (unsigned long)PHYS_PFN(start));
	return 0;
}

static void harness_shim_remove(struct pci_dev *pdev)
{
	struct harness_shim *shim = pci_get_drvdata(pdev);

	guard(mutex)(&shim->lock);

	shim->pdev = NULL;
	pci_release_region(pdev, HARNESS_SHIM_BAR);
	pci_disable_device(pdev);
}

static const struct pci_device_id harness_shim_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110) },	/* ivshmem */
	{ }
};
MODULE_DEVICE_TABLE(pci, harness_shim_ids);

static struct pci_driver harness_shim_pci_driver = {
	.name = DRIVER_NAME,
	.id_table = harness_shim_ids,
	.probe = harness_shim_probe,
	.remove = harness_shim_remove,
};

/*
 * An importer function: the first free slot.  Its DMA mask is what a real
 * importer would set (importer_dma_bits); the table's IOVA range is
 * allocated below it.
 */
static int harness_shim_importer_probe(struct pci_dev *pdev,
				       const struct pci_device_id *id)
{
	struct harness_shim *shim = &harness_shim_dev;
	struct harness_shim_importer *imp;
	unsigned int bits = clamp(importer_dma_bits, 24U, 64U);
	unsigned int index;
	int ret;

	guard(mutex)(&shim->import_lock);

	for (index = 0; index < HARNESS_SHIM_MAX_IMPORTERS; index++) {
		if (!shim->importers[index])
			break;
	}
	if (index == HARNESS_SHIM_MAX_IMPORTERS) {
		dev_err(&pdev->dev, "more than %d importers: %d\n",
			HARNESS_SHIM_MAX_IMPORTERS, -ENOSPC);
		return -ENOSPC;
	}

	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(bits));
	if (ret) {
		dev_err(&pdev->dev, "cannot set a %u-bit DMA mask: %d\n",
			bits, ret);
		return ret;
	}
	ret = pci_enable_device(pdev);
	if (ret) {
		dev_err(&pdev->dev, "cannot enable device: %d\n", ret);
		return ret;
	}
	pci_set_master(pdev);

	imp = kzalloc_obj(*imp, GFP_KERNEL);
	if (!imp) {
		pci_clear_master(pdev);
		pci_disable_device(pdev);
		return -ENOMEM;
	}
	imp->pdev = pdev;
	imp->index = index;
	shim->importers[index] = imp;
	pci_set_drvdata(pdev, imp);

	dev_info(&pdev->dev, "importer i%u (%u-bit DMA)\n", index, bits);
	return 0;
}

/* Unmaps and detaches everything this importer attached. */
static void harness_shim_importer_remove(struct pci_dev *pdev)
{
	struct harness_shim_importer *imp = pci_get_drvdata(pdev);
	struct harness_shim *shim = &harness_shim_dev;

	scoped_guard(mutex, &shim->import_lock) {
		harness_shim_att_free_all(shim, NULL, imp);
		shim->importers[imp->index] = NULL;
	}
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	kfree(imp);
}

static const struct pci_device_id harness_shim_importer_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },	/* QEMU edu */
	{ }
};
MODULE_DEVICE_TABLE(pci, harness_shim_importer_ids);

static struct pci_driver harness_shim_importer_driver = {
	.name = IMPORTER_DRIVER_NAME,
	.id_table = harness_shim_importer_ids,
	.probe = harness_shim_importer_probe,
	.remove = harness_shim_importer_remove,
};

/* QEMU's default subsystem IDs, which QEMU's own devices keep. */
#define QEMU_SUBVENDOR_ID	PCI_SUBVENDOR_ID_REDHAT_QUMRANET
#define QEMU_SUBDEVICE_ID	PCI_SUBDEVICE_ID_QEMU
#define Q35_MCH_DEVICE_ID	0x29c0	/* QEMU's q35 host bridge */
#define IVSHMEM_DEVICE_ID	0x1110

/*
 * Whether this is the harness's machine, not merely a virtual one: a
 * hypervisor, QEMU's q35 host bridge at 0000:00:00.0 and an ivshmem function,
 * both with QEMU's subsystem IDs.  Every world of the harness has them (the
 * device memory, or the dma-buf exporter); a cloud or desktop VM has no
 * ivshmem device.
 */
static bool harness_shim_hardware_present(void)
{
	struct pci_dev *host, *ivshmem;
	bool found;

	if (!boot_cpu_has(X86_FEATURE_HYPERVISOR))
		return false;

	host = pci_get_domain_bus_and_slot(0, 0, PCI_DEVFN(0, 0));
	ivshmem = pci_get_subsys(PCI_VENDOR_ID_REDHAT_QUMRANET,
				 IVSHMEM_DEVICE_ID, QEMU_SUBVENDOR_ID,
				 QEMU_SUBDEVICE_ID, NULL);
	found = host && ivshmem &&
		host->vendor == PCI_VENDOR_ID_INTEL &&
		host->device == Q35_MCH_DEVICE_ID &&
		host->subsystem_vendor == QEMU_SUBVENDOR_ID &&
		host->subsystem_device == QEMU_SUBDEVICE_ID;
	pci_dev_put(ivshmem);
	pci_dev_put(host);
	return found;
}

static int __init harness_shim_init(void)
{
	struct harness_shim *shim = &harness_shim_dev;
	int ret;

	if (!harness_shim_hardware_present()) {
		pr_err("no QEMU q35 machine with an ivshmem device (1af4:1110), refusing to load: %d\n",
		       -ENODEV);
		return -ENODEV;
	}

	mutex_init(&shim->lock);
	mutex_init(&shim->import_lock);
	xa_init_flags(&shim->attachments, XA_FLAGS_ALLOC1);
	shim->next_id = 1;

	shim->misc = (struct miscdevice) {
		.minor = MISC_DYNAMIC_MINOR,
		.name = DRIVER_NAME,
		.fops = &harness_shim_fops,
		.mode = 0600,
	};

	ret = misc_register(&shim->misc);
	if (ret) {
		pr_err("cannot register /dev/%s: %d\n", DRIVER_NAME, ret);
		return ret;
	}

	/* devmem=0: ivshmem stays unbound, for vfio-pci (the exporter). */
	if (devmem) {
		ret = pci_register_driver(&harness_shim_pci_driver);
		if (ret) {
			pr_err("cannot register PCI driver: %d\n", ret);
			goto err_misc;
		}
	}

	ret = pci_register_driver(&harness_shim_importer_driver);
	if (ret) {
		pr_err("cannot register importer PCI driver: %d\n", ret);
		goto err_devmem;
	}
	return 0;

err_devmem:
	if (devmem)
		pci_unregister_driver(&harness_shim_pci_driver);
err_misc:
	misc_deregister(&shim->misc);
	return ret;
}

static void __exit harness_shim_exit(void)
{
	struct harness_shim *shim = &harness_shim_dev;
	u32 id;

	/*
	 * No file is open (fops owner): nothing can map or ioctl any more,
	 * and every file's attachments went with its release.  Unbinding the
	 * importers detaches anything left all the same.
	 */
	misc_deregister(&shim->misc);
	pci_unregister_driver(&harness_shim_importer_driver);

	scoped_guard(mutex, &shim->lock) {
		for (id = 0; id <= HARNESS_SHIM_MAX_SPACE_ID; id++)
			if (shim->spaces[id])
				harness_shim_space_free(shim, id);
	}

	if (devmem)
		pci_unregister_driver(&harness_shim_pci_driver);
	WARN_ON(!xa_empty(&shim->attachments));
	xa_destroy(&shim->attachments);
	mutex_destroy(&shim->import_lock);
	mutex_destroy(&shim->lock);
}

module_init(harness_shim_init);
module_exit(harness_shim_exit);

MODULE_DESCRIPTION("Test driver for the harness (device memory, PFN spaces, poison; dma-buf importer)");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS("DMA_BUF");
