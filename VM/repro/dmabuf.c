// SPDX-License-Identifier: GPL-2.0-only
/*
 * dmabuf.c - the dma-buf ops of harness reproducers
 *
 * VFIO devices opened through the cdev + iommufd path, dma-bufs exported
 * with VFIO_DEVICE_FEATURE, and the shim's importer (attach, map, unmap,
 * detach, notifications): the guest agent's dma-buf ops
 * (VM/agent/dmabuf.c, VM/agent/PROTOCOL.md) with the same checks and the
 * same observation lines.  The kernel calls are vfio.c's, which the agent
 * compiles in too.
 *
 * Names: exporter x<dev> is the dev-th ivshmem function (1af4:1110) other
 * than the shim's device memory, in PCI name order; importer i<N> is the
 * shim's importer slot N; bufs and attachments are the indexes of buf_name[]
 * and att_name[], created once and never reused.  Every function runs in the
 * process that called dmabuf_open() (the fds are that process's, as the
 * agent's are the agent's).
 */
#include "repro.h"
#include <sys/eventfd.h>
#include <linux/types.h>
#include <linux/vfio.h>
#include "vfio.h"
#include "../shim/harness_shim.h"

/* Most exporters a reproducer finds (pci_find_exporters()). */
#define DMABUF_MAX_EXPORTERS	8

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
	__u32 ioas_id;		/* the IOAS it is attached to, while open */
	unsigned int opens;	/* successful vfio_open()s so far */
};

/* The exporters x0, x1... (dmabuf_open()). */
static struct dmabuf_exporter dmabuf_exporters[DMABUF_MAX_EXPORTERS];

/* How many of dmabuf_exporters[] exist. */
static int dmabuf_nexporters;

/* A buf: exported once (its name is then used), fd -1 after buf_close(). */
struct dmabuf_buf {
	int created;
	int fd;
	unsigned long long ino;	/* dma_buf tracepoints name it so */
};

/* The bufs, by index of buf_name[]. */
static struct dmabuf_buf dmabuf_bufs[DMABUF_MAX_NAMES];

/* An attachment of the shim's importer. */
struct dmabuf_att {
	int created;
	int detached;
	__u32 id;		/* the shim's attachment id */
	int pending_notify;	/* notifications read by imp_collect() */
	char event[4][32];	/* the importer's reports of them (C7.5) */
	int nevent;
};

/* The attachments, by index of att_name[]. */
static struct dmabuf_att dmabuf_atts[DMABUF_MAX_NAMES];

/* Indexes of the attachments in creation order (the order of notify). */
static int dmabuf_att_order[DMABUF_MAX_NAMES];

/* How many attachments were created (entries of dmabuf_att_order[]). */
static int dmabuf_natt;

/*
 * When the last op's observations were collected: the next op's start, for
 * C7.5's deadline (the op's duration is at most the time since).
 */
static struct timespec dmabuf_last_done;

/* Exporters: ivshmem functions that are not the shim's device memory. */
static void dmabuf_discover(void)
{
	char bdf[DMABUF_MAX_EXPORTERS][32];
	struct dmabuf_exporter *x;
	int i;

	dmabuf_nexporters = pci_find_exporters(shim_fd, bdf,
					       DMABUF_MAX_EXPORTERS);
	for (i = 0; i < dmabuf_nexporters; i++) {
		x = &dmabuf_exporters[i];
		snprintf(x->bdf, sizeof(x->bdf), "%.31s", bdf[i]);
		x->dev_fd = -1;
		x->iommu_fd = -1;
	}
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
	clock_gettime(CLOCK_MONOTONIC, &dmabuf_last_done);
}

/* Exporter @dev, or NULL (-ENOENT) if there is no such device. */
static struct dmabuf_exporter *dmabuf_get_exporter(int dev)
{
	if (dev < 0 || dev >= dmabuf_nexporters)
		return NULL;
	return &dmabuf_exporters[dev];
}

/*
 * vfio-open: binds the device to vfio-pci, opens its VFIO cdev and
 * /dev/iommu, binds them and attaches the device to a new IOAS.
 */
long vfio_open(int dev)
{
	struct dmabuf_exporter *x = dmabuf_get_exporter(dev);
	long ret;

	if (!x)
		return -ENOENT;
	if (x->dev_fd >= 0)
		return -EBUSY;
	ret = vfio_device_open_ioas(x->bdf, &x->dev_fd, &x->iommu_fd,
				    &x->ioas_id, "repro");
	if (!ret)
		x->opens++;
	return ret;
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
	vfio_device_close(&x->dev_fd, &x->iommu_fd);
	return 0;
}

/* vfio-memory: sets or clears PCI_COMMAND's MEMORY bit in config space. */
long vfio_memory(int dev, int on)
{
	struct dmabuf_exporter *x;
	long ret = dmabuf_get_open_exporter(dev, &x);

	if (ret)
		return ret;
	return vfio_pci_memory(x->dev_fd, on);
}

/* vfio-reset: VFIO_DEVICE_RESET. */
long vfio_reset(int dev)
{
	struct dmabuf_exporter *x;
	long ret = dmabuf_get_open_exporter(dev, &x);

	if (ret)
		return ret;
	return vfio_device_reset(x->dev_fd);
}

/*
 * vfio-low-power: VFIO_DEVICE_FEATURE SET LOW_POWER_ENTRY (@mode 0),
 * _ENTRY_WITH_WAKEUP (1) or _EXIT (2); the wakeup fd is a new eventfd
 * (@efd 0), -1 (1) or the device's own fd (2).
 */
long vfio_low_power_op(int dev, int mode, int efd)
{
	static const __u32 feature[] = {
		VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
		VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
		VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
	};
	struct dmabuf_exporter *x;
	long ret = dmabuf_get_open_exporter(dev, &x);
	int fd;

	if (ret)
		return ret;
	if (mode < 0 || mode > 2)
		return -EINVAL;
	fd = efd == 0 ? eventfd(0, EFD_CLOEXEC) : efd == 1 ? -1 : x->dev_fd;
	if (efd == 0 && fd < 0)
		return -errno;
	ret = vfio_low_power(x->dev_fd, feature[mode], fd);
	if (efd == 0)
		close(fd);
	return ret;
}

/* vfio-config: @width bytes of @value at @offset of the config region. */
long vfio_config(int dev, unsigned long long offset, unsigned int width,
		 unsigned long long value)
{
	struct dmabuf_exporter *x;
	long ret = dmabuf_get_open_exporter(dev, &x);

	if (ret)
		return ret;
	return vfio_pci_config_write(x->dev_fd, offset, width, value);
}

/* vfio-hot-reset: VFIO_DEVICE_PCI_HOT_RESET with no group fds. */
long vfio_hot_reset(int dev)
{
	struct dmabuf_exporter *x;
	long ret = dmabuf_get_open_exporter(dev, &x);

	if (ret)
		return ret;
	return vfio_pci_hot_reset(x->dev_fd);
}

/* vfio-power: the device's power state (0 D0 ... 3 D3hot, 4 D3cold). */
long vfio_power(int dev)
{
	struct dmabuf_exporter *x;
	long ret = dmabuf_get_open_exporter(dev, &x);

	if (ret)
		return ret;
	return pci_power_state(x->bdf);
}

/* Buf @buf; an index beyond the tables is a generator bug. */
static struct dmabuf_buf *dmabuf_get_buf(int buf)
{
	if (buf < 0 || buf >= DMABUF_MAX_NAMES)
		bail_out("dmabuf.c: buf index out of range");
	return &dmabuf_bufs[buf];
}

/*
 * export: VFIO_DEVICE_FEATURE with a DMA_BUF payload built exactly as given
 * (vfio_dma_buf()); @ranges holds @nranges {offset, length} pairs.  The buf
 * is created only from a new fd of a DMA_BUF GET (a PROBE answers 0).
 */
long export_buf(int buf, int dev, unsigned int feature, unsigned int argsz,
		unsigned int region, unsigned int open_flags,
		unsigned int flags, unsigned int nr, int nranges,
		const unsigned long long *ranges)
{
	struct dmabuf_buf *b = dmabuf_get_buf(buf);
	struct dmabuf_exporter *x;
	long ret;
	int fd;

	if (b->created)
		return -EEXIST;
	ret = dmabuf_get_open_exporter(dev, &x);
	if (ret)
		return ret;
	ret = vfio_dma_buf(x->dev_fd, feature, argsz, region, open_flags,
			   flags, nr, nranges, ranges, &fd);
	if (fd >= 0) {
		struct stat st;

		b->created = 1;
		b->fd = fd;
		b->ino = fstat(fd, &st) ? 0 : st.st_ino;
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
	unsigned long long size;
	struct dmabuf_buf *b;
	char exp[256];
	long ret = dmabuf_get_open_buf(buf, &b);

	if (ret)
		return ret;
	ret = dma_buf_fdinfo(b->fd, &size, exp);
	if (ret == -ENODATA) {
		obs_line("error fdinfo %s: no size: or exp_name: line in /proc/self/fdinfo/%d",
			 buf_name[buf], b->fd);
		return 0;
	}
	if (ret)
		return ret;
	obs_line("fdinfo %s size=0x%llx exp=%s", buf_name[buf], size, exp);
	return 0;
}

/*
 * bufinfo: "bufinfo B size=0x... exp=NAME attached=i0,..." from debugfs
 * dma_buf/bufinfo (C7.8).
 */
long buf_bufinfo(int buf)
{
	char exp[256], attached[512];
	unsigned long long size;
	struct dmabuf_buf *b;
	long ret = dmabuf_get_open_buf(buf, &b);

	if (ret)
		return ret;
	ret = dma_buf_bufinfo(shim_fd, b->fd, &size, exp, attached,
			      sizeof(attached));
	if (ret == -ENOENT) {
		obs_line("error bufinfo %s: debugfs dma_buf/bufinfo lists no dma-buf with the inode of fd %d",
			 buf_name[buf], b->fd);
		return 0;
	}
	if (ret)
		return ret;
	obs_line("bufinfo %s size=0x%llx exp=%s attached=%s", buf_name[buf],
		 size, exp, attached);
	return 0;
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
	struct dmabuf_att *a = dmabuf_get_att(att);
	struct dmabuf_buf *b;
	long ret;

	if (a->created)
		return -EEXIST;
	ret = dmabuf_get_open_buf(buf, &b);
	if (ret)
		return ret;
	ret = shim_import(shim_fd, b->fd, importer, dynamic, &a->id);
	if (ret)
		return ret;
	a->created = 1;
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
	struct harness_shim_map req;
	struct dmabuf_att *a;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	__u32 i;
	long ret = dmabuf_get_live_att(att, &a);

	if (ret)
		return ret;
	ret = shim_map(shim_fd, a->id, &req, entries, DMABUF_SGT_CHUNK);
	if (ret)
		return ret;
	f = open_memstream(&text, &len);
	if (!f)
		bail_out("dmabuf.c: open_memstream failed");
	fprintf(f, "sgt %s nents=%u orig=%u", att_name[att], req.nents,
		req.orig_nents);
	do {
		for (i = 0; i < req.count; i++)
			fprintf(f, " 0x%llx/0x%llx",
				(unsigned long long)entries[i].addr,
				(unsigned long long)entries[i].len);
		ret = shim_map_next(shim_fd, &req, DMABUF_SGT_CHUNK);
	} while (ret > 0);
	/* No revocation between the calls: we are alone. */
	if (ret < 0)
		obs_line("error map %s: reading entries from %u: %s",
			 att_name[att], req.first, strerror((int)-ret));
	fclose(f);
	obs_line("%s", text);
	free(text);
	return 0;
}

/*
 * unmap: HARNESS_SHIM_UNMAP; on success, when the shim could look through
 * the importer's IOMMU domain (C6.7), "importer A stale=N".
 */
long imp_unmap(int att)
{
	struct harness_shim_att_state st;
	struct dmabuf_att *a;
	long ret = dmabuf_get_live_att(att, &a);

	if (ret)
		return ret;
	ret = shim_unmap(shim_fd, a->id);
	if (ret)
		return ret;
	if (shim_att_state(shim_fd, a->id, &st))
		obs_line("error HARNESS_SHIM_ATT_STATE %s failed", att_name[att]);
	else if (st.flags & HARNESS_SHIM_ATT_CHECKED)
		obs_line("importer %s stale=%u", att_name[att], st.stale);
	return 0;
}

/* importer-mode: HARNESS_SHIM_ATT_MODE (HARNESS_SHIM_MODE_*). */
long imp_mode(int att, unsigned int mode)
{
	struct dmabuf_att *a;
	long ret = dmabuf_get_live_att(att, &a);

	if (ret)
		return ret;
	return shim_att_mode(shim_fd, a->id, mode);
}

/* detach: HARNESS_SHIM_DETACH; the name stays used. */
long imp_detach(int att)
{
	struct dmabuf_att *a;
	long ret = dmabuf_get_live_att(att, &a);

	if (ret)
		return ret;
	ret = shim_detach(shim_fd, a->id);
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

/* Notification @rec of @a: counted, and what the importer saw of it. */
static void dmabuf_notified(struct dmabuf_att *a, int att,
			    const struct harness_shim_notification *rec, long ms)
{
	struct harness_shim_att_state st;
	char text[32];

	a->pending_notify++;
	if (!(rec->flags & (HARNESS_SHIM_NOTIFY_REMAPPED |
			    HARNESS_SHIM_NOTIFY_DEFERRED)))
		return;
	if (shim_att_state(shim_fd, a->id, &st)) {
		obs_line("error HARNESS_SHIM_ATT_STATE %s failed", att_name[att]);
		return;
	}
	if (!shim_importer_event(rec, &st, ms, text, sizeof(text)))
		return;
	if (a->nevent == 4) {
		obs_line("error %s: too many importer reports", att_name[att]);
		return;
	}
	snprintf(a->event[a->nevent++], sizeof(a->event[0]), "%s", text);
}

/*
 * After every op: the invalidate_mappings calls the shim recorded, as
 * "notify A" lines in attachment creation order (an attachment notified
 * twice gets two lines).
 */
void imp_collect(void)
{
	static struct harness_shim_notification rec[DMABUF_NOTIFY_CHUNK];
	struct dmabuf_att *a;
	struct timespec now;
	__u32 lost;
	long i, n, ms;
	int j, k;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - dmabuf_last_done.tv_sec) * 1000L +
	     (now.tv_nsec - dmabuf_last_done.tv_nsec) / 1000000L;
	if (shim_fd < 0 || !dmabuf_natt)
		goto done;
	do {
		n = shim_notify_read(shim_fd, rec, DMABUF_NOTIFY_CHUNK, &lost);
		if (n < 0) {
			obs_line("error HARNESS_SHIM_NOTIFY_READ: %s",
				 strerror((int)-n));
			break;
		}
		if (lost)
			obs_line("error %u notifications lost (shim log full)",
				 lost);
		for (i = 0; i < n; i++) {
			a = dmabuf_att_by_id(rec[i].id);
			if (!a)
				obs_line("error notification for unknown attachment id %u",
					 rec[i].id);
			else
				dmabuf_notified(a, (int)(a - dmabuf_atts),
						&rec[i], ms);
		}
	} while (n == DMABUF_NOTIFY_CHUNK);
	for (j = 0; j < dmabuf_natt; j++) {
		a = &dmabuf_atts[dmabuf_att_order[j]];
		for (; a->pending_notify; a->pending_notify--)
			obs_line("notify %s", att_name[dmabuf_att_order[j]]);
		for (k = 0; k < a->nevent; k++)
			obs_line("importer %s %s", att_name[dmabuf_att_order[j]],
				 a->event[k]);
		a->nevent = 0;
	}
done:
	clock_gettime(CLOCK_MONOTONIC, &dmabuf_last_done);
}

/* ------------------------------------------------------------------ */
/* iommufd as a second importer */

/*
 * An IOAS of its own iommufd context (ioas-alloc), or the one an exporter is
 * attached to (ioas-device), valid while that open lasts.
 */
struct dmabuf_ioas {
	int created;
	int fd;			/* its /dev/iommu (an exporter's is not ours) */
	__u32 id;
	int dev;		/* the exporter, -1 for ioas-alloc */
	unsigned int open;	/* the exporter's open (its opens) */
};

/* The IOASes, by their index in the sequence. */
static struct dmabuf_ioas dmabuf_ioases[DMABUF_MAX_NAMES];

/* A mapping of a dma-buf in an IOAS (ioas-map-file). */
struct dmabuf_iomap {
	int created;
	int live;		/* not unmapped yet */
	int chosen;		/* the kernel chose its IOVA */
	int ioas;
	unsigned long long iova;
	unsigned long long length;
};

/* The mappings, by their index in the sequence. */
static struct dmabuf_iomap dmabuf_iomaps[DMABUF_MAX_NAMES];

/* ioas-alloc: /dev/iommu and IOMMU_IOAS_ALLOC (-EEXIST for a used name). */
long ioas_alloc(int ioas)
{
	struct dmabuf_ioas *s;
	long ret;

	if (ioas < 0 || ioas >= DMABUF_MAX_NAMES)
		bail_out("dmabuf.c: IOAS index out of range");
	s = &dmabuf_ioases[ioas];
	if (s->created)
		return -EEXIST;
	ret = iommufd_ioas_alloc(&s->fd, &s->id);
	if (!ret) {
		s->created = 1;
		s->dev = -1;
	}
	return ret;
}

/* ioas-device: names the IOAS exporter @dev is attached to. */
long ioas_device(int ioas, int dev)
{
	struct dmabuf_exporter *x;
	struct dmabuf_ioas *s;
	long ret;

	if (ioas < 0 || ioas >= DMABUF_MAX_NAMES)
		bail_out("dmabuf.c: IOAS index out of range");
	s = &dmabuf_ioases[ioas];
	if (s->created)
		return -EEXIST;
	ret = dmabuf_get_open_exporter(dev, &x);
	if (ret)
		return ret;
	*s = (struct dmabuf_ioas){ .created = 1, .fd = -1, .id = x->ioas_id,
				   .dev = dev, .open = x->opens };
	return 0;
}

/* The iommufd of IOAS @s, -1 (-EBADF) once its exporter's open ended. */
static int dmabuf_ioas_fd(const struct dmabuf_ioas *s)
{
	const struct dmabuf_exporter *x;

	if (s->dev < 0)
		return s->fd;
	x = &dmabuf_exporters[s->dev];
	return x->dev_fd >= 0 && x->opens == s->open ? x->iommu_fd : -1;
}

/*
 * ioas-map-file: IOMMU_IOAS_MAP_FILE of buf @buf's fd, at @iova when @fixed,
 * else where the kernel chooses (then the result is that IOVA).  Harness
 * rules: -EEXIST, -ENOENT, -EBADF as for the other names; -EPERM, without
 * a call, for a fixed IOVA in an IOAS holding a live kernel-placed mapping.
 */
long ioas_map_file(int map, int ioas, int buf, unsigned long long start,
		   unsigned long long length, int fixed,
		   unsigned long long iova)
{
	struct dmabuf_iomap *m;
	struct dmabuf_buf *b;
	long ret;
	int i;

	if (map < 0 || map >= DMABUF_MAX_NAMES || ioas < 0 ||
	    ioas >= DMABUF_MAX_NAMES)
		bail_out("dmabuf.c: IOAS mapping index out of range");
	m = &dmabuf_iomaps[map];
	if (m->created)
		return -EEXIST;
	if (!dmabuf_ioases[ioas].created)
		return -ENOENT;
	if (dmabuf_ioas_fd(&dmabuf_ioases[ioas]) < 0)
		return -EBADF;
	ret = dmabuf_get_open_buf(buf, &b);
	if (ret)
		return ret;
	for (i = 0; fixed && i < DMABUF_MAX_NAMES; i++) {
		if (dmabuf_iomaps[i].live && dmabuf_iomaps[i].chosen &&
		    dmabuf_iomaps[i].ioas == ioas)
			return -EPERM;
	}
	ret = iommufd_map_file(dmabuf_ioas_fd(&dmabuf_ioases[ioas]),
			       dmabuf_ioases[ioas].id,
			       b->fd, start, length, fixed, &iova);
	if (ret)
		return ret;
	*m = (struct dmabuf_iomap){ .created = 1, .live = 1, .chosen = !fixed,
				    .ioas = ioas, .iova = iova,
				    .length = length };
	return fixed ? 0 : (long)iova;
}

/* ioas-unmap: IOMMU_IOAS_UNMAP of the mapping's range: the bytes unmapped. */
long ioas_unmap(int map)
{
	struct dmabuf_iomap *m;
	long ret;

	if (map < 0 || map >= DMABUF_MAX_NAMES)
		bail_out("dmabuf.c: IOAS mapping index out of range");
	m = &dmabuf_iomaps[map];
	if (!m->live)
		return -ENOENT;
	if (dmabuf_ioas_fd(&dmabuf_ioases[m->ioas]) < 0)
		return -EBADF;
	ret = iommufd_unmap(dmabuf_ioas_fd(&dmabuf_ioases[m->ioas]),
			    dmabuf_ioases[m->ioas].id, m->iova, m->length);
	if (ret >= 0)
		m->live = 0;
	return ret;
}

/* The trace_pipe of the instance harness-dmabuf, for buf_trace(). */
static int dmabuf_trace_fd = -1;

/* Sets the dma_buf tracepoints' instance up before the first step (C7.8). */
void buf_trace_open(void)
{
	dmabuf_trace_fd = dma_buf_trace_open();
	if (dmabuf_trace_fd < 0)
		skip_all("cannot set up the tracefs instance harness-dmabuf (dma_buf events)");
}

static const char *dmabuf_trace_name(void *ctx, unsigned long long ino)
{
	int i;

	(void)ctx;
	for (i = 0; i < DMABUF_MAX_NAMES; i++)
		if (dmabuf_bufs[i].created && dmabuf_bufs[i].ino == ino)
			return buf_name[i];
	return NULL;
}

static void dmabuf_trace_emit(void *ctx, int is_error, const char *line)
{
	(void)ctx;
	if (is_error)
		obs_line("error %s", line);
	else
		obs_line("%s", line);
}

/*
 * dmabuf-trace: the dma_buf records (export, fd, attach, detach) since the
 * last call, "trace export B"... (C7.8).
 */
long buf_trace(void)
{
	return dma_buf_trace_read(shim_fd, dmabuf_trace_fd, dmabuf_trace_name,
				  dmabuf_trace_emit, NULL);
}
