// SPDX-License-Identifier: GPL-2.0-only
/*
 * dmabuf.c - the dma-buf ops of harness reproducers
 *
 * VFIO devices opened through the cdev + iommufd path, dma-bufs exported
 * with VFIO_DEVICE_FEATURE, and the shim's importer (attach, map, unmap,
 * detach, notifications): the guest agent's dma-buf ops
 * (VM/agent/dmabuf.c, VM/agent/PROTOCOL.md) with the same checks, the same
 * kernel calls and the same observation lines.
 *
 * Names: exporter x<dev> is the dev-th ivshmem function (1af4:1110) other
 * than the shim's device memory, in PCI name order; importer i<N> is the
 * shim's importer slot N; bufs and attachments are the indexes of buf_name[]
 * and att_name[], created once and never reused.  Every function runs in the
 * process that called dmabuf_open() (the fds are that process's, as the
 * agent's are the agent's).
 */
#include "repro.h"
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <linux/types.h>
#include <linux/vfio.h>
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif
#include "../shim/harness_shim.h"

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

/* The exporters: ivshmem functions, BAR 2; PCI_COMMAND's MEMORY bit. */
#define DMABUF_PCI_DEVICES	"/sys/bus/pci/devices"
#define DMABUF_IVSHMEM_VENDOR	0x1af4
#define DMABUF_IVSHMEM_DEVICE	0x1110
#define DMABUF_MAX_EXPORTERS	8
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

/* Entries per HARNESS_SHIM_MAP / TABLE call, records per NOTIFY_READ. */
#define DMABUF_SGT_CHUNK	4096
#define DMABUF_NOTIFY_CHUNK	256

/* Most bufs and attachments a reproducer names (buf_name[], att_name[]). */
#define DMABUF_MAX_NAMES	256

/* An exporter device and, while it is open, its VFIO fds. */
struct dmabuf_exporter {
	char bdf[32];
	int dev_fd;		/* /dev/vfio/devices/vfioN, -1 when not open */
	int iommu_fd;		/* /dev/iommu bound to it, -1 when not open */
};

/* The exporters x0, x1... (dmabuf_open()). */
static struct dmabuf_exporter dmabuf_exporters[DMABUF_MAX_EXPORTERS];

/* How many of dmabuf_exporters[] exist. */
static int dmabuf_nexporters;

/* A buf: exported once (its name is then used), fd -1 after buf_close(). */
struct dmabuf_buf {
	int created;
	int fd;
};

/* The bufs, by index of buf_name[]. */
static struct dmabuf_buf dmabuf_bufs[DMABUF_MAX_NAMES];

/* An attachment of the shim's importer. */
struct dmabuf_att {
	int created;
	int detached;
	__u32 id;		/* the shim's attachment id */
	int pending_notify;	/* notifications read by imp_collect() */
};

/* The attachments, by index of att_name[]. */
static struct dmabuf_att dmabuf_atts[DMABUF_MAX_NAMES];

/* Indexes of the attachments in creation order (the order of notify). */
static int dmabuf_att_order[DMABUF_MAX_NAMES];

/* How many attachments were created (entries of dmabuf_att_order[]). */
static int dmabuf_natt;

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

/* Exporters: ivshmem functions that are not the shim's device memory. */
static void dmabuf_discover(void)
{
	struct harness_shim_info info;
	struct dirent **names;
	char devmem[32] = "";
	int i, n;
	if (shim_fd >= 0 && !ioctl(shim_fd, HARNESS_SHIM_INFO, &info)) {
		info.bdf[sizeof(info.bdf) - 1] = '\0';
		snprintf(devmem, sizeof(devmem), "%s", info.bdf);
	}
	dmabuf_nexporters = 0;
	n = scandir(DMABUF_PCI_DEVICES, &names, NULL, dmabuf_compare_names);
	for (i = 0; i < n; i++) {
		const char *bdf = names[i]->d_name;
		unsigned long vendor, device;
		struct dmabuf_exporter *x;
		if (bdf[0] != '.' && strlen(bdf) < sizeof(x->bdf) &&
		    dmabuf_nexporters < DMABUF_MAX_EXPORTERS &&
		    !dmabuf_pci_read_hex(bdf, "vendor", &vendor) &&
		    !dmabuf_pci_read_hex(bdf, "device", &device) &&
		    vendor == DMABUF_IVSHMEM_VENDOR &&
		    device == DMABUF_IVSHMEM_DEVICE && strcmp(bdf, devmem)) {
			x = &dmabuf_exporters[dmabuf_nexporters++];
			snprintf(x->bdf, sizeof(x->bdf), "%.31s", bdf);
			x->dev_fd = -1;
			x->iommu_fd = -1;
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
}

/*
 * Opens the shim unless it is open (mf ops may have opened it) and finds the
 * exporters, as the agent does when it starts.
 */
void dmabuf_open(void)
{
	if (shim_fd < 0)
		shim_open();
	dmabuf_discover();
}

/* Exporter @dev, or NULL (-ENOENT) if there is no such device. */
static struct dmabuf_exporter *dmabuf_get_exporter(int dev)
{
	if (dev < 0 || dev >= dmabuf_nexporters)
		return NULL;
	return &dmabuf_exporters[dev];
}

/* Binds @bdf to vfio-pci unless it is bound to it already. */
static long dmabuf_bind_vfio_pci(const char *bdf)
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
			fprintf(stderr, "repro: unbind %s from %s: %s\n", bdf,
				drv, strerror(-ret));
			return ret;
		}
	}
	snprintf(path, sizeof(path), DMABUF_PCI_DEVICES "/%s/driver_override",
		 bdf);
	ret = dmabuf_write_file(path, "vfio-pci");
	if (ret) {
		fprintf(stderr, "repro: %s: %s\n", path, strerror(-ret));
		return ret;
	}
	ret = dmabuf_write_file("/sys/bus/pci/drivers_probe", bdf);
	dmabuf_pci_driver(bdf, drv, sizeof(drv));
	if (strcmp(drv, "vfio-pci")) {
		fprintf(stderr, "repro: %s not bound to vfio-pci (%s): %s\n",
			bdf, drv[0] ? drv : "no driver",
			strerror(ret ? -ret : ENODEV));
		return ret ? ret : -ENODEV;
	}
	return 0;
}

/* /dev/vfio/devices/vfioN of @bdf, from its vfio-dev directory. */
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
		if (!strncmp(e->d_name, "vfio", 4)) {
			snprintf(out, len, "/dev/vfio/devices/%s", e->d_name);
			ret = 0;
			break;
		}
	}
	closedir(d);
	return ret;
}

/* The device fd first: its release revokes the device's dma-bufs. */
static void dmabuf_vfio_close_fds(struct dmabuf_exporter *x)
{
	if (x->dev_fd >= 0)
		close(x->dev_fd);
	if (x->iommu_fd >= 0)
		close(x->iommu_fd);
	x->dev_fd = -1;
	x->iommu_fd = -1;
}

/* A step of vfio_open() failed: what was opened is closed, -errno. */
static long dmabuf_vfio_failed(struct dmabuf_exporter *x, const char *step)
{
	long ret = -errno;
	fprintf(stderr, "repro: vfio-open %s: %s: %s\n", x->bdf, step,
		strerror(errno));
	dmabuf_vfio_close_fds(x);
	return ret;
}

/*
 * vfio-open: binds the device to vfio-pci, opens its VFIO cdev and
 * /dev/iommu, binds them and attaches the device to a new IOAS.
 */
long vfio_open(int dev)
{
	struct vfio_device_attach_iommufd_pt pt = { .argsz = sizeof(pt) };
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct dmabuf_exporter *x = dmabuf_get_exporter(dev);
	char cdev[PATH_MAX];
	long ret;
	if (!x)
		return -ENOENT;
	if (x->dev_fd >= 0)
		return -EBUSY;
	ret = dmabuf_bind_vfio_pci(x->bdf);
	if (ret)
		return ret;
	ret = dmabuf_vfio_cdev(x->bdf, cdev, sizeof(cdev));
	if (ret)
		return ret;
	x->dev_fd = open(cdev, O_RDWR | O_CLOEXEC);
	if (x->dev_fd < 0)
		return dmabuf_vfio_failed(x, cdev);
	x->iommu_fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (x->iommu_fd < 0)
		return dmabuf_vfio_failed(x, "/dev/iommu");
	bind.iommufd = x->iommu_fd;
	if (ioctl(x->dev_fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return dmabuf_vfio_failed(x, "VFIO_DEVICE_BIND_IOMMUFD");
	if (ioctl(x->iommu_fd, IOMMU_IOAS_ALLOC, &ioas))
		return dmabuf_vfio_failed(x, "IOMMU_IOAS_ALLOC");
	pt.pt_id = ioas.out_ioas_id;
	if (ioctl(x->dev_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &pt))
		return dmabuf_vfio_failed(x, "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
	return 0;
}

/* An open exporter: 0, -ENOENT (no such device) or -EBADF (not open). */
static long dmabuf_get_open_exporter(int dev, struct dmabuf_exporter **xp)
{
	*xp = dmabuf_get_exporter(dev);
	if (!*xp)
		return -ENOENT;
	return (*xp)->dev_fd < 0 ? -EBADF : 0;
}

/* vfio-close: the device fd (revoking its dma-bufs), then the iommufd. */
long vfio_close(int dev)
{
	struct dmabuf_exporter *x;
	long ret = dmabuf_get_open_exporter(dev, &x);
	if (ret)
		return ret;
	dmabuf_vfio_close_fds(x);
	return 0;
}

/* vfio-memory: sets or clears PCI_COMMAND's MEMORY bit in config space. */
long vfio_memory(int dev, int on)
{
	struct vfio_region_info info = {
		.argsz = sizeof(info),
		.index = VFIO_PCI_CONFIG_REGION_INDEX,
	};
	struct dmabuf_exporter *x;
	uint16_t cmd;
	ssize_t n;
	long ret = dmabuf_get_open_exporter(dev, &x);
	if (ret)
		return ret;
	if (ioctl(x->dev_fd, VFIO_DEVICE_GET_REGION_INFO, &info))
		return -errno;
	n = pread(x->dev_fd, &cmd, sizeof(cmd),
		  info.offset + DMABUF_PCI_COMMAND);
	if (n != sizeof(cmd))
		return n < 0 ? -errno : -EIO;
	if (on)
		cmd |= DMABUF_PCI_COMMAND_MEMORY;
	else
		cmd &= ~DMABUF_PCI_COMMAND_MEMORY;
	n = pwrite(x->dev_fd, &cmd, sizeof(cmd),
		   info.offset + DMABUF_PCI_COMMAND);
	if (n != sizeof(cmd))
		return n < 0 ? -errno : -EIO;
	return 0;
}

/* vfio-reset: VFIO_DEVICE_RESET. */
long vfio_reset(int dev)
{
	struct dmabuf_exporter *x;
	long ret = dmabuf_get_open_exporter(dev, &x);
	if (ret)
		return ret;
	return ioctl(x->dev_fd, VFIO_DEVICE_RESET) ? -errno : 0;
}

/* Buf @buf; an index beyond the tables is a generator bug. */
static struct dmabuf_buf *dmabuf_get_buf(int buf)
{
	if (buf < 0 || buf >= DMABUF_MAX_NAMES)
		bail_out("dmabuf.c: buf index out of range");
	return &dmabuf_bufs[buf];
}

/*
 * export: the request is built exactly as given: argsz, nr_ranges, flags,
 * open flags and the feature word go to the kernel unchanged.  The buffer
 * holds max(argsz, what nr_ranges makes the kernel read) bytes, zero past
 * the given ranges, capped at the most the kernel copies (a larger argsz is
 * passed on; the kernel does not read past the ranges).  @ranges holds
 * @nranges {offset, length} pairs.  The buf is created only from a new fd
 * of a DMA_BUF GET (a PROBE answers 0).
 */
long export_buf(int buf, int dev, unsigned int feature, unsigned int argsz,
		unsigned int region, unsigned int open_flags,
		unsigned int flags, unsigned int nr, int nranges,
		const unsigned long long *ranges)
{
	struct dmabuf_buf *b = dmabuf_get_buf(buf);
	struct vfio_device_feature_dma_buf *payload;
	struct vfio_region_dma_range *range;
	struct vfio_device_feature *hdr;
	struct dmabuf_exporter *x;
	size_t read_ranges, size;
	long ret;
	int i;
	if (b->created)
		return -EEXIST;
	ret = dmabuf_get_open_exporter(dev, &x);
	if (ret)
		return ret;
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
	ret = ioctl(x->dev_fd, VFIO_DEVICE_FEATURE, hdr);
	if (ret < 0)
		ret = -errno;
	free(hdr);
	if (ret > 0 && (feature & VFIO_DEVICE_FEATURE_GET) &&
	    !(feature & VFIO_DEVICE_FEATURE_PROBE) &&
	    (feature & VFIO_DEVICE_FEATURE_MASK) ==
	    VFIO_DEVICE_FEATURE_DMA_BUF) {
		b->created = 1;
		b->fd = (int)ret;
	}
	return ret;
}

/* An open buf: 0, -ENOENT (never exported) or -EBADF (closed). */
static long dmabuf_get_open_buf(int buf, struct dmabuf_buf **bp)
{
	*bp = dmabuf_get_buf(buf);
	if (!(*bp)->created)
		return -ENOENT;
	return (*bp)->fd < 0 ? -EBADF : 0;
}

/* buf-close: close() of the fd (attachments keep the dma-buf alive). */
long buf_close(int buf)
{
	struct dmabuf_buf *b;
	long ret = dmabuf_get_open_buf(buf, &b);
	if (ret)
		return ret;
	ret = close(b->fd) ? -errno : 0;
	b->fd = -1;
	return ret;
}

/* fdinfo: "fdinfo B size=0x... exp=NAME" from /proc/self/fdinfo/<fd>. */
long buf_fdinfo(int buf)
{
	char path[64], text[1024], exp[256] = "";
	char *line, *save = NULL;
	unsigned long long size = 0;
	int have_size = 0, n;
	struct dmabuf_buf *b;
	long ret = dmabuf_get_open_buf(buf, &b);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", b->fd);
	n = dmabuf_read_file(path, text, sizeof(text));
	if (n < 0)
		return n;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "size: %llu", &size) == 1)
			have_size = 1;
		else
			sscanf(line, "exp_name: %255s", exp);
	}
	if (!have_size || !exp[0]) {
		obs_line("error fdinfo %s: no size: or exp_name: line in %s",
			 buf_name[buf], path);
		return 0;
	}
	obs_line("fdinfo %s size=0x%llx exp=%s", buf_name[buf], size, exp);
	return 0;
}

/* A shim ioctl: 0 or -errno; -ENODEV without the shim. */
static long dmabuf_shim_call(unsigned long cmd, void *arg)
{
	if (shim_fd < 0)
		return -ENODEV;
	return ioctl(shim_fd, cmd, arg) < 0 ? -errno : 0;
}

/* Attachment @att; an index beyond the tables is a generator bug. */
static struct dmabuf_att *dmabuf_get_att(int att)
{
	if (att < 0 || att >= DMABUF_MAX_NAMES)
		bail_out("dmabuf.c: attachment index out of range");
	return &dmabuf_atts[att];
}

/*
 * attach: HARNESS_SHIM_IMPORT of @buf's fd by importer @importer,
 * dynamic (with invalidate_mappings) or static.
 */
long imp_attach(int att, int buf, int importer, int dynamic)
{
	struct harness_shim_importer_info info = { 0 };
	struct harness_shim_import req = { 0 };
	struct dmabuf_att *a = dmabuf_get_att(att);
	struct dmabuf_buf *b;
	long ret;
	if (a->created)
		return -EEXIST;
	ret = dmabuf_get_open_buf(buf, &b);
	if (ret)
		return ret;
	if (shim_fd < 0)
		return -ENODEV;
	if (importer < 0 || importer >= HARNESS_SHIM_MAX_IMPORTERS)
		return -ENOENT;
	info.index = (__u32)importer;
	ret = dmabuf_shim_call(HARNESS_SHIM_IMPORTER_INFO, &info);
	if (ret)
		return ret;
	req.fd = b->fd;
	req.importer = (__u32)importer;
	req.flags = dynamic ? 0 : HARNESS_SHIM_IMPORT_STATIC;
	ret = dmabuf_shim_call(HARNESS_SHIM_IMPORT, &req);
	if (ret)
		return ret;
	a->created = 1;
	a->id = req.id;
	dmabuf_att_order[dmabuf_natt++] = att;
	return 0;
}

/* A live attachment: 0, or -ENOENT (never attached, or detached). */
static long dmabuf_get_live_att(int att, struct dmabuf_att **ap)
{
	*ap = dmabuf_get_att(att);
	return (*ap)->created && !(*ap)->detached ? 0 : -ENOENT;
}

/*
 * map: HARNESS_SHIM_MAP; on success the line "sgt A nents=N orig=M" with
 * every DMA entry (the rest of a table longer than one chunk is read with
 * HARNESS_SHIM_TABLE).
 */
long imp_map(int att)
{
	static struct harness_shim_sg_entry entries[DMABUF_SGT_CHUNK];
	struct harness_shim_map req = { 0 };
	struct dmabuf_att *a;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	__u32 i;
	long ret = dmabuf_get_live_att(att, &a);
	if (ret)
		return ret;
	req.id = a->id;
	req.count = DMABUF_SGT_CHUNK;
	req.entries = (uintptr_t)entries;
	ret = dmabuf_shim_call(HARNESS_SHIM_MAP, &req);
	if (ret)
		return ret;
	f = open_memstream(&text, &len);
	if (!f)
		bail_out("dmabuf.c: open_memstream failed");
	fprintf(f, "sgt %s nents=%u orig=%u", att_name[att], req.nents,
		req.orig_nents);
	for (;;) {
		for (i = 0; i < req.count; i++)
			fprintf(f, " 0x%llx/0x%llx",
				(unsigned long long)entries[i].addr,
				(unsigned long long)entries[i].len);
		if (!(req.flags & HARNESS_SHIM_MAP_TRUNCATED) || !req.count)
			break;
		req.first += req.count;
		req.count = DMABUF_SGT_CHUNK;
		req.flags = 0;
		ret = dmabuf_shim_call(HARNESS_SHIM_TABLE, &req);
		if (ret) {
			/* No revocation between the calls: we are alone. */
			obs_line("error map %s: reading entries from %u: %s",
				 att_name[att], req.first, strerror((int)-ret));
			break;
		}
	}
	fclose(f);
	obs_line("%s", text);
	free(text);
	return 0;
}

/* unmap: HARNESS_SHIM_UNMAP. */
long imp_unmap(int att)
{
	struct harness_shim_attach_id req = { 0 };
	struct dmabuf_att *a;
	long ret = dmabuf_get_live_att(att, &a);
	if (ret)
		return ret;
	req.id = a->id;
	return dmabuf_shim_call(HARNESS_SHIM_UNMAP, &req);
}

/* detach: HARNESS_SHIM_DETACH; the name stays used. */
long imp_detach(int att)
{
	struct harness_shim_attach_id req = { 0 };
	struct dmabuf_att *a;
	long ret = dmabuf_get_live_att(att, &a);
	if (ret)
		return ret;
	req.id = a->id;
	ret = dmabuf_shim_call(HARNESS_SHIM_DETACH, &req);
	if (!ret)
		a->detached = 1;
	return ret;
}

/* The attachment the shim calls @id, NULL if none of ours. */
static struct dmabuf_att *dmabuf_att_by_id(__u32 id)
{
	int j;
	for (j = 0; j < dmabuf_natt; j++) {
		if (dmabuf_atts[dmabuf_att_order[j]].id == id)
			return &dmabuf_atts[dmabuf_att_order[j]];
	}
	return NULL;
}

/*
 * After every op: the invalidate_mappings calls the shim recorded, as
 * "notify A" lines in attachment creation order (an attachment notified
 * twice gets two lines).
 */
void imp_collect(void)
{
	static struct harness_shim_notification rec[DMABUF_NOTIFY_CHUNK];
	struct harness_shim_notify req;
	struct dmabuf_att *a;
	__u32 i;
	int j;
	if (shim_fd < 0 || !dmabuf_natt)
		return;
	do {
		req.count = DMABUF_NOTIFY_CHUNK;
		req.lost = 0;
		req.records = (uintptr_t)rec;
		if (ioctl(shim_fd, HARNESS_SHIM_NOTIFY_READ, &req)) {
			obs_line("error HARNESS_SHIM_NOTIFY_READ: %s",
				 strerror(errno));
			break;
		}
		if (req.lost)
			obs_line("error %u notifications lost (shim log full)",
				 req.lost);
		for (i = 0; i < req.count; i++) {
			a = dmabuf_att_by_id(rec[i].id);
			if (!a)
				obs_line("error notification for unknown attachment id %u",
					 rec[i].id);
			else
				a->pending_notify++;
		}
	} while (req.count == DMABUF_NOTIFY_CHUNK);
	for (j = 0; j < dmabuf_natt; j++) {
		a = &dmabuf_atts[dmabuf_att_order[j]];
		for (; a->pending_notify; a->pending_notify--)
			obs_line("notify %s", att_name[dmabuf_att_order[j]]);
	}
}
