// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio.c - the kernel interface of the dma-buf ops
 *
 * What reproducers (dmabuf.c) and the guest agent (VM/agent/dmabuf.c, whose
 * Makefile compiles this file in) both do with the kernel: find the
 * exporters (ivshmem functions other than the shim's device memory), open a
 * VFIO device through the cdev + iommufd path (binding it to vfio-pci
 * first), set its MEMORY bit, reset it, export a dma-buf with
 * VFIO_DEVICE_FEATURE, read the dma-buf's fdinfo, and call the shim's
 * importer.  No state: names, fds and tables are the callers'.  vfio.h
 * declares the functions.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* strerrorname_np() */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/types.h>
#include <linux/vfio.h>
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif
#include "vfio.h"

/*
 * uapi of Linux 7.3 that older <linux/vfio.h> lack: the VFIO cdev's
 * iommufd ioctls (since 6.6), layout as in 7.3.
 */
#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd {
	__u32		argsz;
	__u32		flags;
	__s32		iommufd;
	__u32		out_devid;
	__aligned_u64	token_uuid_ptr;
};
#define VFIO_DEVICE_BIND_IOMMUFD	_IO(VFIO_TYPE, VFIO_BASE + 18)
struct vfio_device_attach_iommufd_pt {
	__u32	argsz;
	__u32	flags;
	__u32	pt_id;
	__u32	pasid;
};
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT	_IO(VFIO_TYPE, VFIO_BASE + 19)
#endif

/* uapi of Linux 7.3 without <linux/iommufd.h>: IOMMU_IOAS_ALLOC. */
#ifndef IOMMU_IOAS_ALLOC
struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC	_IO(';', 0x81)
#endif

/* uapi of Linux 7.3 without <linux/iommufd.h>: IOAS unmap, map of a file. */
#ifndef IOMMU_IOAS_UNMAP
enum {
	IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
	IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
	IOMMU_IOAS_MAP_READABLE = 1 << 2,
};
struct iommu_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};
#define IOMMU_IOAS_UNMAP	_IO(';', 0x86)
#endif
#ifndef IOMMU_IOAS_MAP_FILE
struct iommu_ioas_map_file {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__s32 fd;
	__aligned_u64 start;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP_FILE	_IO(';', 0x8f)
#endif

/* uapi of Linux 7.3 that older <linux/vfio.h> lack: the DMA_BUF feature. */
#ifndef VFIO_DEVICE_FEATURE_DMA_BUF
#define VFIO_DEVICE_FEATURE_DMA_BUF 11
struct vfio_region_dma_range {
	__u64 offset;
	__u64 length;
};
struct vfio_device_feature_dma_buf {
	__u32	region_index;
	__u32	open_flags;
	__u32	flags;
	__u32	nr_ranges;
	struct vfio_region_dma_range dma_ranges[];
};
#endif

/* The exporters: ivshmem functions; PCI_COMMAND's MEMORY bit. */
#define DMABUF_PCI_DEVICES	"/sys/bus/pci/devices"
#define DMABUF_IVSHMEM_VENDOR	0x1af4
#define DMABUF_IVSHMEM_DEVICE	0x1110
#define DMABUF_PCI_COMMAND	4
#define DMABUF_PCI_COMMAND_MEMORY	0x2

/*
 * VFIO_DEVICE_FEATURE DMA_BUF: header, payload, ranges.  The kernel copies
 * at most 262144 ranges (4 MiB, memdup_array_user()).
 */
#define DMABUF_FEATURE_HDR_SIZE	8
#define DMABUF_PAYLOAD_SIZE	16
#define DMABUF_RANGE_SIZE	16
#define DMABUF_MAX_COPIED_RANGES	262144
#define DMABUF_EXPORT_BUF_MAX	(DMABUF_FEATURE_HDR_SIZE + \
				 DMABUF_PAYLOAD_SIZE + \
				 (size_t)(DMABUF_MAX_COPIED_RANGES + 1) * \
				 DMABUF_RANGE_SIZE)

/* The contents of a small file, NUL-terminated: length or -errno. */
static int dmabuf_read_file(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, out, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	out[n] = '\0';
	close(fd);
	return n;
}

/* One write() of the whole text: 0 if all of it was taken, else -errno. */
static int dmabuf_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(text);
	ssize_t n;
	int ret;

	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	ret = n < 0 ? -errno : (size_t)n == len ? 0 : -EIO;
	close(fd);
	return ret;
}

/* A hexadecimal sysfs attribute of PCI function @bdf: 0 or -errno. */
static int dmabuf_pci_read_hex(const char *bdf, const char *attr,
			       unsigned long *v)
{
	char path[PATH_MAX], text[64];
	int n;

	snprintf(path, sizeof(path), DMABUF_PCI_DEVICES "/%s/%s", bdf, attr);
	n = dmabuf_read_file(path, text, sizeof(text));
	if (n < 0)
		return n;
	*v = strtoul(text, NULL, 0);
	return 0;
}

/* The driver bound to @bdf ("" if none). */
static void dmabuf_pci_driver(const char *bdf, char *out, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), DMABUF_PCI_DEVICES "/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		snprintf(out, len, "%s", "");
		return;
	}
	link[n] = '\0';
	base = strrchr(link, '/');
	snprintf(out, len, "%.*s", (int)len - 1, base ? base + 1 : link);
}

/* scandir() order: PCI names, as strcmp() sorts them. */
static int dmabuf_compare_names(const struct dirent **a,
				const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * The exporters: the ivshmem functions (1af4:1110) other than the shim's
 * device memory (HARNESS_SHIM_INFO of @shim, the shim's fd or -1), in PCI
 * name order; at most @max names go to @bdf.  How many.
 */
int pci_find_exporters(int shim, char (*bdf)[32], int max)
{
	struct harness_shim_info info;
	struct dirent **names;
	char devmem[32] = "";
	int i, n, found = 0;

	if (shim >= 0 && !ioctl(shim, HARNESS_SHIM_INFO, &info)) {
		info.bdf[sizeof(info.bdf) - 1] = '\0';
		snprintf(devmem, sizeof(devmem), "%s", info.bdf);
	}
	n = scandir(DMABUF_PCI_DEVICES, &names, NULL, dmabuf_compare_names);
	for (i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		unsigned long vendor, device;

		if (name[0] != '.' && strlen(name) < sizeof(*bdf) &&
		    found < max &&
		    !dmabuf_pci_read_hex(name, "vendor", &vendor) &&
		    !dmabuf_pci_read_hex(name, "device", &device) &&
		    vendor == DMABUF_IVSHMEM_VENDOR &&
		    device == DMABUF_IVSHMEM_DEVICE && strcmp(name, devmem))
			snprintf(bdf[found++], sizeof(*bdf), "%.31s", name);
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	return found;
}

/*
 * Binds @bdf to vfio-pci unless it is bound to it already; failures are
 * reported on stderr, after "@who: ".
 */
static long dmabuf_bind_vfio_pci(const char *bdf, const char *who)
{
	char path[PATH_MAX], drv[256];
	int ret;

	dmabuf_pci_driver(bdf, drv, sizeof(drv));
	if (!strcmp(drv, "vfio-pci"))
		return 0;
	if (drv[0]) {
		snprintf(path, sizeof(path),
			 DMABUF_PCI_DEVICES "/%s/driver/unbind", bdf);
		ret = dmabuf_write_file(path, bdf);
		if (ret) {
			fprintf(stderr, "%s: unbind %s from %s: %s\n", who,
				bdf, drv, strerror(-ret));
			return ret;
		}
	}
	snprintf(path, sizeof(path), DMABUF_PCI_DEVICES "/%s/driver_override",
		 bdf);
	ret = dmabuf_write_file(path, "vfio-pci");
	if (ret) {
		fprintf(stderr, "%s: %s: %s\n", who, path, strerror(-ret));
		return ret;
	}
	ret = dmabuf_write_file("/sys/bus/pci/drivers_probe", bdf);
	dmabuf_pci_driver(bdf, drv, sizeof(drv));
	if (strcmp(drv, "vfio-pci")) {
		fprintf(stderr, "%s: %s not bound to vfio-pci (%s): %s\n",
			who, bdf, drv[0] ? drv : "no driver",
			strerror(ret ? -ret : ENODEV));
		return ret ? ret : -ENODEV;
	}
	return 0;
}

/*
 * /dev/vfio/devices/vfioN (noiommu-vfioN in no-IOMMU mode) of @bdf, from its
 * vfio-dev directory.
 */
static long dmabuf_vfio_cdev(const char *bdf, char *out, size_t len)
{
	char path[PATH_MAX];
	struct dirent *e;
	long ret = -ENODEV;
	DIR *d;

	snprintf(path, sizeof(path), DMABUF_PCI_DEVICES "/%s/vfio-dev", bdf);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		/* noiommu-vfioN: a device without an IOMMU group (no-IOMMU mode) */
		if (!strncmp(e->d_name, "vfio", 4) ||
		    !strncmp(e->d_name, "noiommu-vfio", 12)) {
			snprintf(out, len, "/dev/vfio/devices/%s", e->d_name);
			ret = 0;
			break;
		}
	}
	closedir(d);
	return ret;
}

/*
 * Closes what vfio_device_open() opened, the device fd first (its release
 * revokes the device's dma-bufs); both become -1.
 */
void vfio_device_close(int *dev_fd, int *iommu_fd)
{
	if (*dev_fd >= 0)
		close(*dev_fd);
	if (*iommu_fd >= 0)
		close(*iommu_fd);
	*dev_fd = -1;
	*iommu_fd = -1;
}

/* A step of vfio_device_open() failed: what was opened is closed, -errno. */
static long dmabuf_vfio_failed(const char *bdf, const char *step,
			       int *dev_fd, int *iommu_fd, const char *who)
{
	long ret = -errno;

	fprintf(stderr, "%s: vfio-open %s: %s: %s\n", who, bdf, step,
		strerror(errno));
	vfio_device_close(dev_fd, iommu_fd);
	return ret;
}

/*
 * Binds @bdf to vfio-pci, opens its VFIO cdev (*@dev_fd) and /dev/iommu
 * (*@iommu_fd, both -1 on entry), binds them and attaches the device to a
 * new IOAS: 0, or -errno with both fds closed again (-1).  Failures are
 * reported on stderr, after "@who: ".
 */
long vfio_device_open(const char *bdf, int *dev_fd, int *iommu_fd,
		      const char *who)
{
	__u32 ioas_id;

	return vfio_device_open_ioas(bdf, dev_fd, iommu_fd, &ioas_id, who);
}

/* vfio_device_open(), and the IOAS the device is attached to (*@ioas_id). */
long vfio_device_open_ioas(const char *bdf, int *dev_fd, int *iommu_fd,
			   __u32 *ioas_id, const char *who)
{
	struct vfio_device_attach_iommufd_pt pt = { .argsz = sizeof(pt) };
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	char cdev[PATH_MAX];
	long ret;

	ret = dmabuf_bind_vfio_pci(bdf, who);
	if (ret)
		return ret;
	ret = dmabuf_vfio_cdev(bdf, cdev, sizeof(cdev));
	if (ret)
		return ret;
	*dev_fd = open(cdev, O_RDWR | O_CLOEXEC);
	if (*dev_fd < 0)
		return dmabuf_vfio_failed(bdf, cdev, dev_fd, iommu_fd, who);
	*iommu_fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (*iommu_fd < 0)
		return dmabuf_vfio_failed(bdf, "/dev/iommu", dev_fd, iommu_fd,
					  who);
	bind.iommufd = *iommu_fd;
	if (ioctl(*dev_fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return dmabuf_vfio_failed(bdf, "VFIO_DEVICE_BIND_IOMMUFD",
					  dev_fd, iommu_fd, who);
	if (ioctl(*iommu_fd, IOMMU_IOAS_ALLOC, &ioas))
		return dmabuf_vfio_failed(bdf, "IOMMU_IOAS_ALLOC", dev_fd,
					  iommu_fd, who);
	pt.pt_id = ioas.out_ioas_id;
	if (ioctl(*dev_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &pt))
		return dmabuf_vfio_failed(bdf, "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
					  dev_fd, iommu_fd, who);
	*ioas_id = ioas.out_ioas_id;
	return 0;
}

/* Sets (@on) or clears PCI_COMMAND's MEMORY bit in config space. */
long vfio_pci_memory(int dev_fd, int on)
{
	struct vfio_region_info info = {
		.argsz = sizeof(info),
		.index = VFIO_PCI_CONFIG_REGION_INDEX,
	};
	uint16_t cmd;
	ssize_t n;

	if (ioctl(dev_fd, VFIO_DEVICE_GET_REGION_INFO, &info))
		return -errno;
	n = pread(dev_fd, &cmd, sizeof(cmd), info.offset + DMABUF_PCI_COMMAND);
	if (n != sizeof(cmd))
		return n < 0 ? -errno : -EIO;
	if (on)
		cmd |= DMABUF_PCI_COMMAND_MEMORY;
	else
		cmd &= ~DMABUF_PCI_COMMAND_MEMORY;
	n = pwrite(dev_fd, &cmd, sizeof(cmd),
		   info.offset + DMABUF_PCI_COMMAND);
	if (n != sizeof(cmd))
		return n < 0 ? -errno : -EIO;
	return 0;
}

/* VFIO_DEVICE_RESET. */
long vfio_device_reset(int dev_fd)
{
	return ioctl(dev_fd, VFIO_DEVICE_RESET) ? -errno : 0;
}

/*
 * pwrite() of the low @width bytes of @value (little endian) at @offset of
 * the VFIO config region: 0, -errno, or -EIO for a short write.
 */
long vfio_pci_config_write(int dev_fd, unsigned long long offset,
			   unsigned int width, unsigned long long value)
{
	struct vfio_region_info info = {
		.argsz = sizeof(info),
		.index = VFIO_PCI_CONFIG_REGION_INDEX,
	};
	unsigned char bytes[8];
	unsigned int i;
	ssize_t n;

	if (width > sizeof(bytes))
		return -EINVAL;
	if (ioctl(dev_fd, VFIO_DEVICE_GET_REGION_INFO, &info))
		return -errno;
	for (i = 0; i < width; i++)
		bytes[i] = (unsigned char)(value >> (8 * i));
	n = pwrite(dev_fd, bytes, width, info.offset + offset);
	if (n != (ssize_t)width)
		return n < 0 ? -errno : -EIO;
	return 0;
}

/*
 * VFIO_DEVICE_FEATURE SET of a low-power feature: @feature is
 * VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, _ENTRY_WITH_WAKEUP (with
 * @wakeup_fd) or _EXIT.
 */
long vfio_low_power(int dev_fd, __u32 feature, int wakeup_fd)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_low_power_entry_with_wakeup wakeup;
	} req;
	size_t size = sizeof(req.hdr);

	memset(&req, 0, sizeof(req));
	req.hdr.flags = VFIO_DEVICE_FEATURE_SET | feature;
	if (feature == VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP) {
		req.wakeup.wakeup_eventfd = wakeup_fd;
		size = sizeof(req);
	}
	req.hdr.argsz = size;
	return ioctl(dev_fd, VFIO_DEVICE_FEATURE, &req) ? -errno : 0;
}

/* VFIO_DEVICE_PCI_HOT_RESET, the cdev form: no group fds. */
long vfio_pci_hot_reset(int dev_fd)
{
	struct vfio_pci_hot_reset reset = { .argsz = sizeof(reset) };

	return ioctl(dev_fd, VFIO_DEVICE_PCI_HOT_RESET, &reset) ? -errno : 0;
}

/*
 * The power state of PCI function @bdf from sysfs power_state: 0 for D0, 1,
 * 2, 3 for D3hot, 4 for D3cold, or -errno (-EIO for a name not known).
 */
long pci_power_state(const char *bdf)
{
	static const char *const names[] = {
		"D0", "D1", "D2", "D3hot", "D3cold", NULL
	};
	char path[PATH_MAX], text[32];
	unsigned int i;
	int n;

	snprintf(path, sizeof(path), DMABUF_PCI_DEVICES "/%s/power_state", bdf);
	n = dmabuf_read_file(path, text, sizeof(text));
	if (n < 0)
		return n;
	text[strcspn(text, "\n")] = '\0';
	for (i = 0; names[i]; i++) {
		if (!strcmp(text, names[i]))
			return i;
	}
	return -EIO;
}

/* The argsz of a DMA_BUF request that covers @nr ranges. */
__u32 vfio_dma_buf_argsz(__u32 nr)
{
	return DMABUF_FEATURE_HDR_SIZE + DMABUF_PAYLOAD_SIZE +
	       DMABUF_RANGE_SIZE * nr;
}

/*
 * VFIO_DEVICE_FEATURE with a DMA_BUF payload, built exactly as given:
 * argsz, nr_ranges, flags, open flags and the feature word go to the kernel
 * unchanged.  The buffer holds max(argsz, what nr_ranges makes the kernel
 * read) bytes, zero past the given ranges, capped at the most the kernel
 * copies (a larger argsz is passed on; the kernel does not read past the
 * ranges).  @ranges holds @nranges {offset, length} pairs.  What the ioctl
 * returns, or -errno; *@buf_fd is the new dma-buf's fd when there is one
 * (a DMA_BUF GET; a PROBE answers 0), else -1.
 */
long vfio_dma_buf(int dev_fd, __u32 feature, __u32 argsz, __u32 region,
		  __u32 open_flags, __u32 flags, __u32 nr, int nranges,
		  const unsigned long long *ranges, int *buf_fd)
{
	struct vfio_device_feature_dma_buf *payload;
	struct vfio_region_dma_range *range;
	struct vfio_device_feature *hdr;
	size_t read_ranges, size;
	long ret;
	int i;

	*buf_fd = -1;
	read_ranges = nr < DMABUF_MAX_COPIED_RANGES ? nr :
		      DMABUF_MAX_COPIED_RANGES;
	if (nranges > 0 && read_ranges < (size_t)nranges)
		read_ranges = nranges;
	size = DMABUF_FEATURE_HDR_SIZE + DMABUF_PAYLOAD_SIZE +
	       read_ranges * DMABUF_RANGE_SIZE;
	if (argsz > size)
		size = argsz < DMABUF_EXPORT_BUF_MAX ? argsz :
		       DMABUF_EXPORT_BUF_MAX;
	hdr = calloc(1, size);
	if (!hdr)
		return -ENOMEM;
	hdr->argsz = argsz;
	hdr->flags = feature;
	payload = (struct vfio_device_feature_dma_buf *)hdr->data;
	payload->region_index = region;
	payload->open_flags = open_flags;
	payload->flags = flags;
	payload->nr_ranges = nr;
	range = (struct vfio_region_dma_range *)(payload + 1);
	for (i = 0; i < nranges; i++) {
		range[i].offset = ranges[2 * i];
		range[i].length = ranges[2 * i + 1];
	}
	ret = ioctl(dev_fd, VFIO_DEVICE_FEATURE, hdr);
	if (ret < 0)
		ret = -errno;
	free(hdr);
	if (ret > 0 && (feature & VFIO_DEVICE_FEATURE_GET) &&
	    !(feature & VFIO_DEVICE_FEATURE_PROBE) &&
	    (feature & VFIO_DEVICE_FEATURE_MASK) ==
	    VFIO_DEVICE_FEATURE_DMA_BUF)
		*buf_fd = (int)ret;
	return ret;
}

/*
 * The "size:" and "exp_name:" lines of /proc/self/fdinfo/<@buf_fd>: 0,
 * -ENODATA if one of them is missing, or -errno if the file cannot be read.
 */
int dma_buf_fdinfo(int buf_fd, unsigned long long *size, char exp[256])
{
	char path[64], text[1024];
	char *line, *save = NULL;
	int have_size = 0, n;

	*size = 0;
	exp[0] = '\0';
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", buf_fd);
	n = dmabuf_read_file(path, text, sizeof(text));
	if (n < 0)
		return n;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "size: %llu", size) == 1)
			have_size = 1;
		else
			sscanf(line, "exp_name: %255s", exp);
	}
	return have_size && exp[0] ? 0 : -ENODATA;
}

#define DMABUF_BUFINFO		"/sys/kernel/debug/dma_buf/bufinfo"
#define DMABUF_BUFINFO_MAX	(1 << 20)

/*
 * The PCI names of the shim's importers, by index ("" where there is none,
 * or no shim): what bufinfo and the dma_buf:* records name them by.
 */
static void shim_importer_bdfs(int shim,
			       char bdf[HARNESS_SHIM_MAX_IMPORTERS][32])
{
	int i;

	for (i = 0; i < HARNESS_SHIM_MAX_IMPORTERS; i++) {
		struct harness_shim_importer_info info = { .index = i };

		bdf[i][0] = '\0';
		if (shim >= 0 &&
		    !ioctl(shim, HARNESS_SHIM_IMPORTER_INFO, &info))
			snprintf(bdf[i], sizeof(bdf[i]), "%s", info.bdf);
	}
}

/* Compares two importer or device names for qsort. */
static int dmabuf_name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * The entry of the dma-buf @buf_fd in debugfs dma_buf/bufinfo (found by the
 * inode of @buf_fd): its size, its exporter name, and in @attached its
 * attached devices as the shim's importer names ("i0"), or the device's own
 * name for a device that is no importer, sorted and separated by commas
 * ("-" for none).  0, -ENOENT if bufinfo lists no such buf, -ENODATA if the
 * entry could not be read, or -errno.
 */
long dma_buf_bufinfo(int shim, int buf_fd, unsigned long long *size,
		     char exp[256], char *attached, size_t len)
{
	char (*devs)[32] = NULL, bdf[HARNESS_SHIM_MAX_IMPORTERS][32];
	unsigned long long ino, want;
	char *text, *line, *save = NULL;
	int fd, i, n = 0, found = 0, in_devs = 0;
	size_t used = 0;
	struct stat st;
	ssize_t r;
	long ret = 0;

	if (fstat(buf_fd, &st))
		return -errno;
	want = st.st_ino;
	shim_importer_bdfs(shim, bdf);
	text = malloc(DMABUF_BUFINFO_MAX);
	devs = calloc(HARNESS_SHIM_MAX_IMPORTERS * 8, sizeof(*devs));
	if (!text || !devs) {
		ret = -ENOMEM;
		goto out;
	}
	fd = open(DMABUF_BUFINFO, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	while ((r = read(fd, text + used, DMABUF_BUFINFO_MAX - 1 - used)) > 0)
		used += r;
	if (r < 0)
		ret = -errno;
	close(fd);
	if (ret)
		goto out;
	text[used] = '\0';

	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long sz;
		unsigned int flags, mode;
		long count;
		char name[256];

		if (found) {
			if (!strncmp(line, "Total ", 6))
				break;
			if (!strcmp(line, "\tAttached Devices:")) {
				in_devs = 1;
				continue;
			}
			if (in_devs && line[0] == '\t' &&
			    n < HARNESS_SHIM_MAX_IMPORTERS * 8) {
				snprintf(devs[n], sizeof(devs[n]), "%s", line + 1);
				for (i = 0; i < HARNESS_SHIM_MAX_IMPORTERS; i++)
					if (bdf[i][0] && !strcmp(bdf[i], line + 1))
						snprintf(devs[n], sizeof(devs[n]),
							 "i%d", i);
				n++;
			}
			continue;
		}
		if (sscanf(line, "%llu\t%x\t%x\t%ld\t%255s\t%llu", &sz,
			   &flags, &mode, &count, name, &ino) == 6 &&
		    ino == want) {
			found = 1;
			*size = sz;
			snprintf(exp, 256, "%s", name);
		}
	}
	if (!found) {
		ret = -ENOENT;
		goto out;
	}
	qsort(devs, n, sizeof(*devs), dmabuf_name_cmp);
	snprintf(attached, len, "%s", n ? "" : "-");
	for (i = 0; i < n; i++) {
		size_t at = strlen(attached);

		snprintf(attached + at, len - at, "%s%s", i ? "," : "",
			 devs[i]);
	}
out:
	free(devs);
	free(text);
	return ret;
}

/* An ioctl of the shim's fd @shim: 0 or -errno; -ENODEV without the shim. */
long shim_call(int shim, unsigned long cmd, void *arg)
{
	if (shim < 0)
		return -ENODEV;
	return ioctl(shim, cmd, arg) < 0 ? -errno : 0;
}

/*
 * HARNESS_SHIM_IMPORT of the dma-buf @buf_fd by importer slot @importer,
 * dynamic (with invalidate_mappings) or static: 0 and the attachment's id
 * in *@id, -ENODEV without the shim, -ENOENT if there is no such importer,
 * or -errno.
 */
long shim_import(int shim, int buf_fd, long importer, int dynamic,
		 __u32 *id)
{
	struct harness_shim_importer_info info = { 0 };
	struct harness_shim_import req = { 0 };
	long ret;

	if (shim < 0)
		return -ENODEV;
	if (importer < 0 || importer >= HARNESS_SHIM_MAX_IMPORTERS)
		return -ENOENT;
	info.index = (__u32)importer;
	ret = shim_call(shim, HARNESS_SHIM_IMPORTER_INFO, &info);
	if (ret)
		return ret;
	req.fd = buf_fd;
	req.importer = (__u32)importer;
	req.flags = dynamic ? 0 : HARNESS_SHIM_IMPORT_STATIC;
	ret = shim_call(shim, HARNESS_SHIM_IMPORT, &req);
	if (!ret)
		*id = req.id;
	return ret;
}

/*
 * HARNESS_SHIM_MAP of attachment @id: 0 with nents, orig_nents and the
 * first req->count (at most @count) DMA entries of the table in @entries,
 * or -errno.  shim_map_next() reads the rest.
 */
long shim_map(int shim, __u32 id, struct harness_shim_map *req,
	      struct harness_shim_sg_entry *entries, __u32 count)
{
	memset(req, 0, sizeof(*req));
	req->id = id;
	req->count = count;
	req->entries = (uintptr_t)entries;
	return shim_call(shim, HARNESS_SHIM_MAP, req);
}

/*
 * The next entries of a table shim_map() returned (HARNESS_SHIM_TABLE, at
 * most @count, into the same entries): 1 if there were more, 0 at the end of
 * the table, or -errno (req->first is where reading failed).
 */
long shim_map_next(int shim, struct harness_shim_map *req, __u32 count)
{
	long ret;

	if (!(req->flags & HARNESS_SHIM_MAP_TRUNCATED) || !req->count)
		return 0;
	req->first += req->count;
	req->count = count;
	req->flags = 0;
	ret = shim_call(shim, HARNESS_SHIM_TABLE, req);
	return ret ? ret : 1;
}

/* HARNESS_SHIM_UNMAP of attachment @id. */
long shim_unmap(int shim, __u32 id)
{
	struct harness_shim_attach_id req = { .id = id };

	return shim_call(shim, HARNESS_SHIM_UNMAP, &req);
}

/* HARNESS_SHIM_DETACH of attachment @id. */
long shim_detach(int shim, __u32 id)
{
	struct harness_shim_attach_id req = { .id = id };

	return shim_call(shim, HARNESS_SHIM_DETACH, &req);
}

/*
 * HARNESS_SHIM_NOTIFY_READ: the oldest invalidate_mappings calls the shim
 * recorded, at most @count, into @rec: how many, or -errno.  *@lost: the
 * records the shim dropped because its log was full (0 on failure).
 */
long shim_notify_read(int shim, struct harness_shim_notification *rec,
		      __u32 count, __u32 *lost)
{
	struct harness_shim_notify req = {
		.count = count,
		.records = (uintptr_t)rec,
	};

	*lost = 0;
	if (ioctl(shim, HARNESS_SHIM_NOTIFY_READ, &req))
		return -errno;
	*lost = req.lost;
	return req.count;
}

/* HARNESS_SHIM_ATT_MODE: attachment @id's importer mode (HARNESS_SHIM_MODE_*). */
long shim_att_mode(int shim, __u32 id, __u32 mode)
{
	struct harness_shim_att_mode req = { .id = id, .mode = mode };

	return shim_call(shim, HARNESS_SHIM_ATT_MODE, &req);
}

/* HARNESS_SHIM_ATT_STATE of attachment @id into *@st. */
long shim_att_state(int shim, __u32 id, struct harness_shim_att_state *st)
{
	memset(st, 0, sizeof(*st));
	st->id = id;
	return shim_call(shim, HARNESS_SHIM_ATT_STATE, st);
}

/*
 * What the importer saw of notification @rec (C7.5), given its attachment's
 * state *@st read right after the op that notified it returned, and how long
 * that op ran (@ms): "remap=-ENODEV" (or "remap=0") when it mapped again
 * inside the callback; when it left the unmap to a worker, "revoke=early" if
 * the op returned before the worker unmapped, else "revoke=blocked" (mode
 * never: the op was still running at the deadline D, which the window W
 * exceeds) or "revoke=waited".  Symbols, never times.  Returns 1 with the
 * text in @out, or 0 when the record has nothing to report.
 */
int shim_importer_event(const struct harness_shim_notification *rec,
			const struct harness_shim_att_state *st, long ms,
			char *out, size_t len)
{
	const char *name;

	if (rec->flags & HARNESS_SHIM_NOTIFY_REMAPPED) {
		name = rec->remap < 0 ? strerrorname_np(-rec->remap) : NULL;
		if (name)
			snprintf(out, len, "remap=-%s", name);
		else
			snprintf(out, len, "remap=%d", rec->remap);
		return 1;
	}
	if (!(rec->flags & HARNESS_SHIM_NOTIFY_DEFERRED))
		return 0;
	if (st->flags & HARNESS_SHIM_ATT_PENDING)
		name = "early";
	else if (st->mode == HARNESS_SHIM_MODE_NEVER &&
		 ms >= HARNESS_SHIM_DEADLINE_MS)
		name = "blocked";
	else
		name = "waited";
	snprintf(out, len, "revoke=%s", name);
	return 1;
}

/*
 * ioas-alloc: opens /dev/iommu (*@iommu_fd, -1 on entry) and allocates an
 * IOAS in it (*@ioas_id): 0, or -errno with the fd closed again (-1).
 */
long iommufd_ioas_alloc(int *iommu_fd, __u32 *ioas_id)
{
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	long ret;

	*iommu_fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (*iommu_fd < 0)
		return -errno;
	if (ioctl(*iommu_fd, IOMMU_IOAS_ALLOC, &ioas)) {
		ret = -errno;
		close(*iommu_fd);
		*iommu_fd = -1;
		return ret;
	}
	*ioas_id = ioas.out_ioas_id;
	return 0;
}

/*
 * ioas-map-file: IOMMU_IOAS_MAP_FILE of @buf_fd, readable and writable,
 * @length bytes from @start, at *@iova when @fixed, else where the kernel
 * chooses; *@iova is then the IOVA it chose.  0 or -errno.
 */
long iommufd_map_file(int iommu_fd, __u32 ioas_id, int buf_fd,
		      unsigned long long start, unsigned long long length,
		      int fixed, unsigned long long *iova)
{
	struct iommu_ioas_map_file map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE |
			 (fixed ? IOMMU_IOAS_MAP_FIXED_IOVA : 0),
		.ioas_id = ioas_id,
		.fd = buf_fd,
		.start = start,
		.length = length,
		.iova = fixed ? *iova : 0,
	};

	if (ioctl(iommu_fd, IOMMU_IOAS_MAP_FILE, &map))
		return -errno;
	*iova = map.iova;
	return 0;
}

/*
 * ioas-unmap: IOMMU_IOAS_UNMAP of [@iova, @iova + @length): the bytes
 * unmapped, or -errno.
 */
long iommufd_unmap(int iommu_fd, __u32 ioas_id, unsigned long long iova,
		   unsigned long long length)
{
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = length,
	};

	if (ioctl(iommu_fd, IOMMU_IOAS_UNMAP, &unmap))
		return -errno;
	return (long)unmap.length;
}

/* ------------------------------------------------------------------ */
/* The dma_buf tracepoints, in a tracefs instance of their own (C7.8)  */

#define DMABUF_TRACE_DIR	"/sys/kernel/tracing/instances/harness-dmabuf"
#define DMABUF_TRACE_MAX	(1 << 20)

static const char *const dmabuf_trace_events[][2] = {
	{ "dma_buf_export", "export" },
	{ "dma_buf_fd", "fd" },
	{ "dma_buf_dynamic_attach", "attach" },
	{ "dma_buf_detach", "detach" },
};

static int dmabuf_trace_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	long ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * Creates the tracefs instance harness-dmabuf (nothing else writes to it),
 * enables dma_buf_export, dma_buf_fd, dma_buf_dynamic_attach and
 * dma_buf_detach in it, empties it and opens its trace_pipe: the fd
 * (non-blocking), or -errno.
 */
int dma_buf_trace_open(void)
{
	char path[256];
	size_t i;
	int ret, fd;

	if (access("/sys/kernel/tracing/trace_pipe", F_OK))
		mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL);
	if (mkdir(DMABUF_TRACE_DIR, 0700) && errno != EEXIST)
		return -errno;
	for (i = 0; i < sizeof(dmabuf_trace_events) / sizeof(dmabuf_trace_events[0]); i++) {
		snprintf(path, sizeof(path), DMABUF_TRACE_DIR "/events/dma_buf/%s/enable",
			 dmabuf_trace_events[i][0]);
		ret = dmabuf_trace_write(path, "1\n");
		if (ret)
			return ret;
	}
	ret = dmabuf_trace_write(DMABUF_TRACE_DIR "/trace", "");
	if (ret)
		return ret;
	fd = open(DMABUF_TRACE_DIR "/trace_pipe", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Discards what the instance's trace_pipe @trace_fd has (between sequences). */
void dma_buf_trace_drain(int trace_fd)
{
	char chunk[4096];

	if (trace_fd < 0)
		return;
	while (read(trace_fd, chunk, sizeof(chunk)) > 0)
		;
}

/* The value of "key" (e.g. "ino=") in a record, up to the next blank. */
static const char *dmabuf_trace_field(const char *rec, const char *key,
				      char *val, size_t len)
{
	const char *p = strstr(rec, key);
	size_t n = 0;

	if (!p)
		return NULL;
	p += strlen(key);
	while (p[n] && p[n] != ' ' && n + 1 < len) {
		val[n] = p[n];
		n++;
	}
	val[n] = '\0';
	return val;
}

/*
 * Reads the records the instance has since the last read (@trace_fd from
 * dma_buf_trace_open()) and calls @emit with one line each, in record
 * order: "trace export B", "trace fd B", "trace attach B I dynamic=N",
 * "trace detach B I dynamic=N".  The buf is named by @buf_name from the
 * record's inode, the device as the shim's importer ("i0", by
 * HARNESS_SHIM_IMPORTER_INFO's PCI names); a record of another device
 * (iommufd's own attachments) is left out, one of an inode no buf has is
 * an error line (@emit's is_error).  0 or -errno.
 */
long dma_buf_trace_read(int shim, int trace_fd,
			const char *(*buf_name)(void *ctx, unsigned long long ino),
			void (*emit)(void *ctx, int is_error, const char *line),
			void *ctx)
{
	char bdf[HARNESS_SHIM_MAX_IMPORTERS][32];
	char *text, *line, *save = NULL;
	size_t used = 0;
	ssize_t r;
	int i;

	if (trace_fd < 0)
		return -ENODEV;
	shim_importer_bdfs(shim, bdf);
	text = malloc(DMABUF_TRACE_MAX);
	if (!text)
		return -ENOMEM;
	while (used < DMABUF_TRACE_MAX - 1 &&
	       (r = read(trace_fd, text + used, DMABUF_TRACE_MAX - 1 - used)) > 0)
		used += r;
	text[used] = '\0';

	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char ino_s[32], dyn[8], dev[64], out[160];
		const char *event = NULL, *b;
		unsigned long long ino;
		size_t k;

		for (k = 0; k < sizeof(dmabuf_trace_events) / sizeof(dmabuf_trace_events[0]); k++) {
			char tag[64];

			snprintf(tag, sizeof(tag), " %s: ", dmabuf_trace_events[k][0]);
			if (strstr(line, tag))
				event = dmabuf_trace_events[k][1];
		}
		if (!event || !dmabuf_trace_field(line, "ino=", ino_s, sizeof(ino_s)))
			continue;
		ino = strtoull(ino_s, NULL, 10);
		b = buf_name(ctx, ino);
		if (!b) {
			snprintf(out, sizeof(out),
				 "dmabuf-trace: a dma_buf:%s record of inode %llu, which no buf of the sequence has",
				 event, ino);
			emit(ctx, 1, out);
			continue;
		}
		if (!strcmp(event, "export") || !strcmp(event, "fd")) {
			snprintf(out, sizeof(out), "trace %s %s", event, b);
			emit(ctx, 0, out);
			continue;
		}
		if (!dmabuf_trace_field(line, "is_dynamic=", dyn, sizeof(dyn)) ||
		    !dmabuf_trace_field(line, "dev_name=", dev, sizeof(dev)))
			continue;
		for (i = 0; i < HARNESS_SHIM_MAX_IMPORTERS; i++)
			if (bdf[i][0] && !strcmp(bdf[i], dev))
				break;
		if (i == HARNESS_SHIM_MAX_IMPORTERS)
			continue;
		snprintf(out, sizeof(out), "trace %s %s i%d dynamic=%s", event, b,
			 i, dyn);
		emit(ctx, 0, out);
	}
	free(text);
	return 0;
}
