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
 * It poisons memory on request, so it refuses to load outside a virtual
 * machine and refuses to poison online RAM.
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
#include <linux/fs.h>
#include <linux/memory-failure.h>
#include <linux/memory_hotplug.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/cpufeature.h>

#include "harness_shim.h"

#define DRIVER_NAME		"harness_shim"
#define HARNESS_SHIM_BAR	2

/* VFIO's region index lives above bit 40 of the offset: above bit 28 of pgoff */
#define HARNESS_SHIM_PGOFF_SHIFT	(HARNESS_SHIM_REGION_SHIFT - PAGE_SHIFT)
#define HARNESS_SHIM_PGOFF_MASK		((1UL << HARNESS_SHIM_PGOFF_SHIFT) - 1)

struct harness_shim;

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
 * @misc: /dev/harness_shim
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
	struct miscdevice misc;
};

static struct harness_shim harness_shim_dev;

static const struct vm_operations_struct harness_shim_vm_ops = {
	/* Only there to recognise our VMAs; remap_pfn_range() fills them. */
};

static inline struct harness_shim *to_harness_shim(struct file *filp)
{
	return container_of(filp->private_data, struct harness_shim, misc);
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
 * The pfn_to_vma_pgoff() callback, nvgrace-gpu's arithmetic (CONTRACT C4.2)
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

	/* No range check: CONTRACT C1.4, any [first, last] is allowed. */
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
 * registered must have no effect (CONTRACT C1.2), and the harness tests it.
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

static long harness_shim_ioctl(struct file *filp, unsigned int cmd,
			       unsigned long arg)
{
	struct harness_shim *shim = to_harness_shim(filp);
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
	default:
		return -ENOTTY;
	}
}

static const struct file_operations harness_shim_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = harness_shim_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = harness_shim_mmap,
};

static int harness_shim_probe(struct pci_dev *pdev,
			      const struct pci_device_id *id)
{
	struct harness_shim *shim = &harness_shim_dev;
	resource_size_t start = pci_resource_start(pdev, HARNESS_SHIM_BAR);
	resource_size_t size = pci_resource_len(pdev, HARNESS_SHIM_BAR);
	int ret;

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

static int __init harness_shim_init(void)
{
	struct harness_shim *shim = &harness_shim_dev;
	int ret;

	if (!boot_cpu_has(X86_FEATURE_HYPERVISOR)) {
		pr_err("not running under a hypervisor, refusing to load: %d\n",
		       -ENODEV);
		return -ENODEV;
	}

	mutex_init(&shim->lock);
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

	ret = pci_register_driver(&harness_shim_pci_driver);
	if (ret) {
		pr_err("cannot register PCI driver: %d\n", ret);
		misc_deregister(&shim->misc);
		return ret;
	}
	return 0;
}

static void __exit harness_shim_exit(void)
{
	struct harness_shim *shim = &harness_shim_dev;
	u32 id;

	/* No file is open (fops owner): nothing can map or ioctl any more. */
	misc_deregister(&shim->misc);

	scoped_guard(mutex, &shim->lock) {
		for (id = 0; id <= HARNESS_SHIM_MAX_SPACE_ID; id++)
			if (shim->spaces[id])
				harness_shim_space_free(shim, id);
	}

	pci_unregister_driver(&harness_shim_pci_driver);
	mutex_destroy(&shim->lock);
}

module_init(harness_shim_init);
module_exit(harness_shim_exit);

MODULE_DESCRIPTION("Memory-failure test driver for the harness (device memory, PFN spaces, poison)");
MODULE_LICENSE("GPL");
