// SPDX-License-Identifier: GPL-2.0-only
/*
 * The dma-buf ops (Corpora/README.md, "VFIO export and the shim's
 * importer"): VFIO devices opened through the cdev + iommufd path, dma-bufs
 * exported with VFIO_DEVICE_FEATURE, and the shim's importer (attach, map,
 * unmap, detach, notifications).  PROTOCOL.md describes the ops.
 *
 * Names: exporters x0, x1... are the ivshmem functions (1af4:1110) other
 * than the shim's device memory, in PCI name order; importers i0, i1... are
 * the shim's importer slots.  Bufs and attachments are named by the
 * sequence and never reused.  The kernel calls are VM/repro/vfio.c's, which
 * reproducers share.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "agent.h"
#include "harness_shim.h"
#include "ops.h"
#include "vfio.h"

#define PCI_DEVICES		"/sys/bus/pci/devices"
#define EXPORTER_BAR		2

/* Config space: status, capability list, the power-management capability. */
#define PCI_STATUS_BYTE		0x6
#define PCI_STATUS_CAPS		0x10
#define PCI_CAPS_POINTER	0x34
#define PCI_CAP_ID_POWER	0x01
/* Extended config space: the ACS capability and its control register. */
#define PCI_EXT_CAPS		0x100
#define PCI_EXT_CAP_ID_ACS	0x0d
#define PCI_ACS_CTRL		0x6
#define SHIM_DMA_BITS		"/sys/module/harness_shim/parameters/importer_dma_bits"

#define MAX_GIVEN_RANGES	1024	/* ranges on one op line */
/* The default argsz counts at most this many ranges (the host's rule). */
#define DEFAULT_ARGSZ_MAX_NR	(1U << 20)

#define SGT_CHUNK		4096	/* entries per MAP / TABLE call */
#define NOTIFY_CHUNK		256	/* records per NOTIFY_READ call */

/* ------------------------------------------------------------------ */
/* sysfs helpers */

/* Exporters: ivshmem functions that are not the shim's device memory. */
void dmabuf_discover(struct agent *a)
{
	char bdf[MAX_EXPORTERS][32];
	struct exporter *x;
	int i;

	a->nexporters = pci_find_exporters(a->shim_fd, bdf, MAX_EXPORTERS);
	for (i = 0; i < a->nexporters; i++) {
		x = &a->exporter[i];
		snprintf(x->bdf, sizeof(x->bdf), "%.31s", bdf[i]);
		x->dev_fd = -1;
		x->iommu_fd = -1;
	}
}

/* "0000:00:02.0/0000:01:00.0/..." from the root bus down, from sysfs. */
static void pci_path(const char *bdf, char *out, size_t len)
{
	char path[PATH_MAX], real[PATH_MAX], *tok, *save = NULL;
	size_t used = 0;

	out[0] = '\0';
	snprintf(path, sizeof(path), PCI_DEVICES "/%s", bdf);
	if (!realpath(path, real))
		return;
	for (tok = strtok_r(real, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		unsigned int dom, bus, dev, fn;
		int end = 0;

		if (sscanf(tok, "%4x:%2x:%2x.%1u%n", &dom, &bus, &dev, &fn,
			   &end) != 4 || tok[end])
			continue;
		used += snprintf(out + used, used < len ? len - used : 0,
				 "%s%s", used ? "/" : "", tok);
	}
}

/* BAR @bar of @bdf from its resource file: start and size, or -errno. */
static int pci_bar(const char *bdf, int bar, uint64_t *start, uint64_t *size)
{
	unsigned long long s, e, flags;
	char path[PATH_MAX], line[128];
	FILE *f;
	int i, ret = -ENOENT;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/resource", bdf);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	for (i = 0; fgets(line, sizeof(line), f); i++) {
		if (i != bar)
			continue;
		if (sscanf(line, "%llx %llx %llx", &s, &e, &flags) == 3) {
			*start = s;
			*size = e >= s && (s || e) ? e - s + 1 : 0;
			ret = 0;
		}
		break;
	}
	fclose(f);
	return ret;
}

/*
 * From config space in sysfs: its size, and the offset of the PCI power
 * management capability (0 when there is none).
 */
static void pci_config_facts(const char *bdf, long *size, unsigned int *pm)
{
	unsigned char cfg[256];
	char path[PATH_MAX];
	unsigned int pos, hops;
	struct stat st;
	ssize_t n;
	int fd;

	*size = 0;
	*pm = 0;
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/config", bdf);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (!fstat(fd, &st))
		*size = (long)st.st_size;
	n = pread(fd, cfg, sizeof(cfg), 0);
	close(fd);
	if (n != (ssize_t)sizeof(cfg) || !(cfg[PCI_STATUS_BYTE] & PCI_STATUS_CAPS))
		return;
	pos = cfg[PCI_CAPS_POINTER] & ~3U;
	for (hops = 0; pos >= 0x40 && hops < 48; hops++) {
		if (cfg[pos] == PCI_CAP_ID_POWER) {
			*pm = pos;
			return;
		}
		pos = cfg[pos + 1] & ~3U;
	}
}

/* The ACS control register of @bdf, or -1 when it has no ACS capability. */
static int pci_acs_ctrl(const char *bdf)
{
	unsigned char cfg[4096];
	char path[PATH_MAX];
	unsigned int pos, hops, hdr;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/config", bdf);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = pread(fd, cfg, sizeof(cfg), 0);
	close(fd);
	if (n != (ssize_t)sizeof(cfg))
		return -1;
	for (pos = PCI_EXT_CAPS, hops = 0; pos >= PCI_EXT_CAPS &&
	     pos <= sizeof(cfg) - 8 && hops < 480; hops++) {
		hdr = cfg[pos] | cfg[pos + 1] << 8 | cfg[pos + 2] << 16 |
		      (unsigned int)cfg[pos + 3] << 24;
		if (!hdr || hdr == 0xffffffffU)
			return -1;
		if ((hdr & 0xffff) == PCI_EXT_CAP_ID_ACS)
			return cfg[pos + PCI_ACS_CTRL] |
			       cfg[pos + PCI_ACS_CTRL + 1] << 8;
		pos = (hdr >> 20) & ~3U;
	}
	return -1;
}

/*
 * "fact acs BDF ctrl=0x.." for every node of @chain with an ACS capability
 * not reported yet (@seen holds the reported ones, ';'-separated).
 */
static void acs_facts(struct buf *b, const char *chain, char *seen, size_t len)
{
	char copy[512], key[40], *tok, *save = NULL;
	size_t used;
	int ctrl;

	snprintf(copy, sizeof(copy), "%s", chain);
	for (tok = strtok_r(copy, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		snprintf(key, sizeof(key), "%s;", tok);
		if (strstr(seen, key))
			continue;
		used = strlen(seen);
		snprintf(seen + used, len - used, "%s", key);
		ctrl = pci_acs_ctrl(tok);
		if (ctrl >= 0)
			buf_printf(b, "fact acs %s ctrl=0x%x\n", tok, ctrl);
	}
}

/*
 * "fact iova-reserved iN FIRST-LAST..." (bytes, inclusive): what the DMA
 * domain of importer @bdf keeps out of its IOVA space: the host bridge's
 * memory windows (dma-iommu reserves them for PCI devices; top-level
 * "PCI Bus" lines of /proc/iomem) and its IOMMU group's reserved regions.
 */
static void iova_reserved_fact(struct buf *b, unsigned int index,
			       const char *bdf)
{
	unsigned long long first, last;
	char path[PATH_MAX], line[256];
	FILE *f;
	int n;

	buf_printf(b, "fact iova-reserved i%u", index);
	f = fopen("/proc/iomem", "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (line[0] == ' ' || !strstr(line, ": PCI Bus "))
			continue;
		if (sscanf(line, "%llx-%llx", &first, &last) == 2)
			buf_printf(b, " 0x%llx-0x%llx", first, last);
	}
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/iommu_group/reserved_regions", bdf);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		n = sscanf(line, "%llx %llx", &first, &last);
		if (n == 2)
			buf_printf(b, " 0x%llx-0x%llx", first, last);
	}
	if (f)
		fclose(f);
	buf_printf(b, "\n");
}

void dmabuf_facts(struct agent *a, struct buf *b)
{
	struct harness_shim_importer_info info;
	char path[PATH_MAX], text[256], chain[512], seen[1024] = "";
	unsigned int i;
	int n, bits;

	for (i = 0; i < (unsigned int)a->nexporters; i++) {
		const char *bdf = a->exporter[i].bdf;
		uint64_t start = 0, size = 0;
		unsigned int pm;
		long cfg_size;
		char *c;

		pci_bar(bdf, EXPORTER_BAR, &start, &size);
		snprintf(path, sizeof(path), PCI_DEVICES "/%s/reset_method", bdf);
		n = read_file(path, text, sizeof(text));
		if (n < 0)
			n = 0;
		text[strcspn(text, "\n")] = '\0';
		for (c = text; *c; c++) {
			if (*c == ' ')
				*c = ',';
		}
		pci_config_facts(bdf, &cfg_size, &pm);
		buf_printf(b, "fact exporter x%u bdf=%s bar=%d phys=0x%llx size=0x%llx reset=%s",
			   i, bdf, EXPORTER_BAR, (unsigned long long)start,
			   (unsigned long long)size, text[0] ? text : "none");
		buf_printf(b, " cfgsize=%ld pm=0x%x\n", cfg_size, pm);
	}
	/* The mask the shim set on every importer function (its parameter). */
	n = read_file(SHIM_DMA_BITS, text, sizeof(text));
	bits = n > 0 ? atoi(text) : 0;
	for (i = 0; a->shim_fd >= 0 && i < HARNESS_SHIM_MAX_IMPORTERS; i++) {
		memset(&info, 0, sizeof(info));
		info.index = i;
		if (ioctl(a->shim_fd, HARNESS_SHIM_IMPORTER_INFO, &info))
			continue;
		info.bdf[sizeof(info.bdf) - 1] = '\0';
		buf_printf(b, "fact importer i%u bdf=%s", i, info.bdf);
		if (bits > 0)
			buf_printf(b, " dmabits=%d", bits < 24 ? 24 : bits > 64 ? 64 : bits);
		buf_printf(b, "\n");
		iova_reserved_fact(b, i, info.bdf);
	}
	for (i = 0; i < (unsigned int)a->nexporters; i++) {
		pci_path(a->exporter[i].bdf, chain, sizeof(chain));
		if (chain[0])
			buf_printf(b, "fact pcipath x%u %s\n", i, chain);
		acs_facts(b, chain, seen, sizeof(seen));
	}
	for (i = 0; a->shim_fd >= 0 && i < HARNESS_SHIM_MAX_IMPORTERS; i++) {
		memset(&info, 0, sizeof(info));
		info.index = i;
		if (ioctl(a->shim_fd, HARNESS_SHIM_IMPORTER_INFO, &info))
			continue;
		info.bdf[sizeof(info.bdf) - 1] = '\0';
		pci_path(info.bdf, chain, sizeof(chain));
		if (chain[0])
			buf_printf(b, "fact pcipath i%u %s\n", i, chain);
		acs_facts(b, chain, seen, sizeof(seen));
	}
}

/* ------------------------------------------------------------------ */
/* Names */

static long malformed(struct agent *a, const struct tokens *t, const char *why)
{
	agent_error(a, "malformed %s: %s", t->tok[0], why);
	return -EINVAL;
}

/* "x3" -> 3 for a name P followed by a canonical decimal, else -1. */
static long indexed_name(const char *s, char prefix)
{
	uint64_t v;

	if (s[0] != prefix || s[1] < '0' || s[1] > '9' ||
	    (s[1] == '0' && s[2]) || parse_u64(s + 1, &v) || v > 1000000)
		return -1;
	return (long)v;
}

/* Exporter @name: 0, -EINVAL (malformed, reported) or -ENOENT. */
static long get_exporter(struct agent *a, const struct tokens *t,
			 const char *name, struct exporter **xp)
{
	long i;

	if (!valid_name(name))
		return malformed(a, t, "bad device name");
	i = indexed_name(name, 'x');
	if (i < 0 || i >= a->nexporters)
		return -ENOENT;
	*xp = &a->exporter[i];
	return 0;
}

static struct dbuf *buf_find(struct agent *a, const char *name)
{
	int i;

	for (i = 0; i < a->nbuf; i++) {
		if (!strcmp(a->dbuf[i].name, name))
			return &a->dbuf[i];
	}
	return NULL;
}

static struct attachment *att_find(struct agent *a, const char *name)
{
	int i;

	for (i = 0; i < a->natt; i++) {
		if (!strcmp(a->att[i].name, name))
			return &a->att[i];
	}
	return NULL;
}

/* A live attachment by name: 0, -EINVAL (reported), -ENOENT. */
static long get_att(struct agent *a, const struct tokens *t, const char *name,
		    struct attachment **ap)
{
	struct attachment *att;

	if (!valid_name(name))
		return malformed(a, t, "bad attachment name");
	att = att_find(a, name);
	if (!att || att->detached)
		return -ENOENT;
	*ap = att;
	return 0;
}

static long need(struct agent *a, const struct tokens *t, int n)
{
	return t->n == n ? 0 : malformed(a, t, "wrong number of arguments");
}

/* ------------------------------------------------------------------ */
/* VFIO devices */

long op_vfio_open(struct agent *a, struct tokens *t)
{
	struct exporter *x;
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	ret = get_exporter(a, t, t->tok[1], &x);
	if (ret)
		return ret;
	if (x->dev_fd >= 0)
		return -EBUSY;
	ret = vfio_device_open_ioas(x->bdf, &x->dev_fd, &x->iommu_fd,
				    &x->ioas_id, "agent");
	if (!ret)
		x->opens++;
	return ret;
}

/* An open exporter: 0, -EINVAL, -ENOENT or -EBADF (not open). */
static long get_open_exporter(struct agent *a, const struct tokens *t,
			      const char *name, struct exporter **xp)
{
	long ret = get_exporter(a, t, name, xp);

	if (ret)
		return ret;
	return (*xp)->dev_fd < 0 ? -EBADF : 0;
}

/* The device fd goes first: its release revokes the device's dma-bufs. */
long op_vfio_close(struct agent *a, struct tokens *t)
{
	struct exporter *x;
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	ret = get_open_exporter(a, t, t->tok[1], &x);
	if (ret)
		return ret;
	vfio_device_close(&x->dev_fd, &x->iommu_fd);
	return 0;
}

long op_vfio_memory(struct agent *a, struct tokens *t)
{
	struct exporter *x;
	bool on;
	long ret;

	if (need(a, t, 3))
		return -EINVAL;
	if (!strcmp(t->tok[2], "on"))
		on = true;
	else if (!strcmp(t->tok[2], "off"))
		on = false;
	else
		return malformed(a, t, "expected on or off");
	ret = get_open_exporter(a, t, t->tok[1], &x);
	if (ret)
		return ret;
	return vfio_pci_memory(x->dev_fd, on);
}

long op_vfio_reset(struct agent *a, struct tokens *t)
{
	struct exporter *x;
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	ret = get_open_exporter(a, t, t->tok[1], &x);
	if (ret)
		return ret;
	return vfio_device_reset(x->dev_fd);
}

/*
 * vfio-low-power DEV entry | wakeup efd=eventfd|none|file | exit: the
 * low-power features; the wakeup fd is a new eventfd, -1, or the device's
 * own fd (not an eventfd).
 */
long op_vfio_low_power(struct agent *a, struct tokens *t)
{
	const char *efd = NULL;
	struct exporter *x;
	__u32 feature;
	long ret;
	int fd = -1;

	if (t->n < 3)
		return malformed(a, t, "wrong number of arguments");
	if (!strcmp(t->tok[2], "entry") && t->n == 3) {
		feature = VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY;
	} else if (!strcmp(t->tok[2], "exit") && t->n == 3) {
		feature = VFIO_DEVICE_FEATURE_LOW_POWER_EXIT;
	} else if (!strcmp(t->tok[2], "wakeup") && t->n == 4) {
		feature = VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP;
		efd = kv_value(t->tok[3], "efd");
		if (!efd || (strcmp(efd, "eventfd") && strcmp(efd, "none") &&
			     strcmp(efd, "file")))
			return malformed(a, t, "expected efd=eventfd, none or file");
	} else {
		return malformed(a, t, "expected entry, exit or wakeup efd=FD");
	}
	ret = get_open_exporter(a, t, t->tok[1], &x);
	if (ret)
		return ret;
	if (efd && !strcmp(efd, "eventfd")) {
		fd = eventfd(0, EFD_CLOEXEC);
		if (fd < 0)
			return -errno;
	} else if (efd && !strcmp(efd, "file")) {
		fd = x->dev_fd;
	}
	ret = vfio_low_power(x->dev_fd, feature, fd);
	if (efd && !strcmp(efd, "eventfd"))
		close(fd);
	return ret;
}

/* vfio-config DEV offset=O width=W value=V: one pwrite of the config region. */
long op_vfio_config(struct agent *a, struct tokens *t)
{
	uint64_t offset, width, value;
	struct exporter *x;
	long ret;

	if (need(a, t, 5))
		return -EINVAL;
	if (parse_kv_u64(t->tok[2], "offset", &offset) ||
	    offset >= (1ULL << 40) ||
	    parse_kv_u64(t->tok[3], "width", &width) || width > 8 ||
	    parse_kv_u64(t->tok[4], "value", &value))
		return malformed(a, t, "expected offset=O width=W (0-8) value=V");
	ret = get_open_exporter(a, t, t->tok[1], &x);
	if (ret)
		return ret;
	return vfio_pci_config_write(x->dev_fd, offset, (unsigned int)width,
				     value);
}

long op_vfio_hot_reset(struct agent *a, struct tokens *t)
{
	struct exporter *x;
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	ret = get_open_exporter(a, t, t->tok[1], &x);
	if (ret)
		return ret;
	return vfio_pci_hot_reset(x->dev_fd);
}

/* vfio-power DEV: the power state (0 D0, 1, 2, 3 D3hot, 4 D3cold). */
long op_vfio_power(struct agent *a, struct tokens *t)
{
	struct exporter *x;
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	ret = get_open_exporter(a, t, t->tok[1], &x);
	if (ret)
		return ret;
	return pci_power_state(x->bdf);
}

/* ------------------------------------------------------------------ */
/* Export */

struct export_req {
	uint32_t region;
	uint32_t feature;
	uint32_t argsz;
	uint32_t nr;
	uint32_t flags;
	uint32_t open_flags;
	int nranges;
	unsigned long long range[2 * MAX_GIVEN_RANGES];	/* offset, length */
};

/* "none" or "O+L,O+L,..." */
static int parse_ranges(const char *s, struct export_req *r)
{
	char copy[4096], *tok, *save = NULL;

	r->nranges = 0;
	if (!strcmp(s, "none"))
		return 0;
	if (strlen(s) >= sizeof(copy) || !*s || s[strlen(s) - 1] == ',')
		return -EINVAL;
	snprintf(copy, sizeof(copy), "%s", s);
	if (strstr(copy, ",,") || copy[0] == ',')
		return -EINVAL;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *plus = strchr(tok, '+');
		uint64_t offset, length;

		if (!plus || r->nranges == MAX_GIVEN_RANGES)
			return -EINVAL;
		*plus = '\0';
		if (parse_u64(tok, &offset) || parse_u64(plus + 1, &length))
			return -EINVAL;
		r->range[2 * r->nranges] = offset;
		r->range[2 * r->nranges + 1] = length;
		r->nranges++;
	}
	return 0;
}

static int parse_u32_kv(const char *tok, const char *key, uint32_t *v,
			bool *seen)
{
	uint64_t u;

	if (!kv_value(tok, key))
		return 1;	/* another key */
	if (*seen || parse_kv_u64(tok, key, &u) || u > UINT32_MAX)
		return -EINVAL;
	*v = (uint32_t)u;
	*seen = true;
	return 0;
}

static long parse_export(struct agent *a, struct tokens *t,
			 struct export_req *r)
{
	bool seen[5] = { false };
	const char *ranges;
	uint64_t region;
	int i;

	if (t->n < 5 || t->n > 10)
		return malformed(a, t, "wrong number of arguments");
	if (!valid_name(t->tok[1]))
		return malformed(a, t, "bad buf name");
	if (!valid_name(t->tok[2]))
		return malformed(a, t, "bad device name");
	if (parse_kv_u64(t->tok[3], "region", &region) || region > UINT32_MAX)
		return malformed(a, t, "expected region=R");
	ranges = kv_value(t->tok[4], "ranges");
	if (!ranges || parse_ranges(ranges, r))
		return malformed(a, t, "expected ranges=none or ranges=O+L,...");

	r->region = (uint32_t)region;
	r->feature = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF;
	r->nr = (uint32_t)r->nranges;
	r->flags = 0;
	r->open_flags = O_RDWR | O_CLOEXEC;
	for (i = 5; i < t->n; i++) {
		const char *tok = t->tok[i];
		int ret;

		ret = parse_u32_kv(tok, "feature", &r->feature, &seen[0]);
		if (ret > 0)
			ret = parse_u32_kv(tok, "argsz", &r->argsz, &seen[1]);
		if (ret > 0)
			ret = parse_u32_kv(tok, "nr", &r->nr, &seen[2]);
		if (ret > 0)
			ret = parse_u32_kv(tok, "flags", &r->flags, &seen[3]);
		if (ret > 0)
			ret = parse_u32_kv(tok, "open", &r->open_flags, &seen[4]);
		if (ret)
			return malformed(a, t, "bad option (feature= argsz= nr= flags= open=, once each)");
	}
	/* As the host computes it (ExportRequest.effectiveArgsz). */
	if (!seen[1])
		r->argsz = vfio_dma_buf_argsz(r->nr < DEFAULT_ARGSZ_MAX_NR ?
					      r->nr : DEFAULT_ARGSZ_MAX_NR);
	return 0;
}

static struct dbuf *buf_add(struct agent *a, const char *name, int fd)
{
	struct stat st;
	struct dbuf *b;

	if (a->nbuf == a->buf_cap) {
		int cap = a->buf_cap ? 2 * a->buf_cap : 16;

		b = realloc(a->dbuf, cap * sizeof(*b));
		if (!b)
			return NULL;
		a->dbuf = b;
		a->buf_cap = cap;
	}
	b = &a->dbuf[a->nbuf++];
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->fd = fd;
	b->ino = fstat(fd, &st) ? 0 : st.st_ino;
	return b;
}

/*
 * VFIO_DEVICE_FEATURE with a DMA_BUF payload built exactly as given
 * (vfio_dma_buf()); a new fd only from a DMA_BUF GET (PROBE answers 0).
 */
long op_export(struct agent *a, struct tokens *t)
{
	static struct export_req r;
	struct exporter *x;
	long ret;
	int fd;

	ret = parse_export(a, t, &r);
	if (ret)
		return ret;
	if (buf_find(a, t->tok[1]))
		return -EEXIST;
	ret = get_open_exporter(a, t, t->tok[2], &x);
	if (ret)
		return ret;
	ret = vfio_dma_buf(x->dev_fd, r.feature, r.argsz, r.region,
			   r.open_flags, r.flags, r.nr, r.nranges, r.range, &fd);
	if (fd >= 0 && !buf_add(a, t->tok[1], fd)) {
		close(fd);
		return -ENOMEM;
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* Bufs */

/* An open buf: 0, -EINVAL (reported), -ENOENT, -EBADF (closed). */
static long get_open_buf(struct agent *a, const struct tokens *t,
			 const char *name, struct dbuf **bp)
{
	struct dbuf *b;

	if (!valid_name(name))
		return malformed(a, t, "bad buf name");
	b = buf_find(a, name);
	if (!b)
		return -ENOENT;
	if (b->fd < 0)
		return -EBADF;
	*bp = b;
	return 0;
}

long op_buf_close(struct agent *a, struct tokens *t)
{
	struct dbuf *b;
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	ret = get_open_buf(a, t, t->tok[1], &b);
	if (ret)
		return ret;
	ret = close(b->fd) ? -errno : 0;
	b->fd = -1;
	return ret;
}

long op_fdinfo(struct agent *a, struct tokens *t)
{
	unsigned long long size;
	struct dbuf *b;
	char exp[256];
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	ret = get_open_buf(a, t, t->tok[1], &b);
	if (ret)
		return ret;
	ret = dma_buf_fdinfo(b->fd, &size, exp);
	if (ret == -ENODATA) {
		agent_error(a, "fdinfo %s: no size: or exp_name: line in /proc/self/fdinfo/%d",
			    t->tok[1], b->fd);
		return 0;
	}
	if (ret)
		return ret;
	buf_printf(&a->fdinfo, "fdinfo %s size=0x%llx exp=%s\n", t->tok[1],
		   size, exp);
	return 0;
}

/*
 * The buf's entry in debugfs dma_buf/bufinfo (C7.8), after fdinfo's lines:
 * "bufinfo B size=0x... exp=NAME attached=i0,i1" (importer names, sorted).
 */
long op_bufinfo(struct agent *a, struct tokens *t)
{
	char exp[256], attached[512];
	unsigned long long size;
	struct dbuf *b;
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	ret = get_open_buf(a, t, t->tok[1], &b);
	if (ret)
		return ret;
	ret = dma_buf_bufinfo(a->shim_fd, b->fd, &size, exp, attached,
			      sizeof(attached));
	if (ret == -ENOENT) {
		agent_error(a, "bufinfo %s: debugfs dma_buf/bufinfo lists no dma-buf with the inode of fd %d",
			    t->tok[1], b->fd);
		return 0;
	}
	if (ret)
		return ret;
	buf_printf(&a->fdinfo, "bufinfo %s size=0x%llx exp=%s attached=%s\n",
		   t->tok[1], size, exp, attached);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The shim's importer */

static struct attachment *att_add(struct agent *a, const char *name, uint32_t id)
{
	struct attachment *att;

	if (a->natt == a->att_cap) {
		int cap = a->att_cap ? 2 * a->att_cap : 16;

		att = realloc(a->att, cap * sizeof(*att));
		if (!att)
			return NULL;
		a->att = att;
		a->att_cap = cap;
	}
	att = &a->att[a->natt++];
	memset(att, 0, sizeof(*att));
	snprintf(att->name, sizeof(att->name), "%s", name);
	att->id = id;
	return att;
}

long op_attach(struct agent *a, struct tokens *t)
{
	const char *imp;
	struct dbuf *b;
	long ret;
	uint32_t id;

	if (t->n == 5 && strcmp(t->tok[4], "static"))
		return malformed(a, t, "expected static");
	if (t->n != 4 && t->n != 5)
		return malformed(a, t, "wrong number of arguments");
	if (!valid_name(t->tok[1]))
		return malformed(a, t, "bad attachment name");
	imp = kv_value(t->tok[3], "importer");
	if (!imp || !valid_name(imp))
		return malformed(a, t, "expected importer=I");
	if (att_find(a, t->tok[1]))
		return -EEXIST;
	ret = get_open_buf(a, t, t->tok[2], &b);
	if (ret)
		return ret;
	ret = shim_import(a->shim_fd, b->fd, indexed_name(imp, 'i'), t->n == 4,
			  &id);
	if (ret)
		return ret;
	if (!att_add(a, t->tok[1], id)) {
		shim_detach(a->shim_fd, id);
		return -ENOMEM;
	}
	return 0;
}

long op_map(struct agent *a, struct tokens *t)
{
	static struct harness_shim_sg_entry entries[SGT_CHUNK];
	struct harness_shim_map req;
	struct attachment *att;
	uint32_t i;
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	ret = get_att(a, t, t->tok[1], &att);
	if (ret)
		return ret;
	ret = shim_map(a->shim_fd, att->id, &req, entries, SGT_CHUNK);
	if (ret)
		return ret;

	buf_printf(&a->sgt, "sgt %s nents=%u orig=%u", att->name, req.nents,
		   req.orig_nents);
	do {
		for (i = 0; i < req.count; i++)
			buf_printf(&a->sgt, " 0x%llx/0x%llx",
				   (unsigned long long)entries[i].addr,
				   (unsigned long long)entries[i].len);
		ret = shim_map_next(a->shim_fd, &req, SGT_CHUNK);
	} while (ret > 0);
	/* A revocation between the calls cannot happen: we are alone. */
	if (ret < 0)
		agent_error(a, "map %s: reading entries from %u: %s",
			    att->name, req.first, strerror((int)-ret));
	buf_printf(&a->sgt, "\n");
	return 0;
}

static long op_unmap_detach(struct agent *a, struct tokens *t, bool detach)
{
	struct attachment *att;
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	ret = get_att(a, t, t->tok[1], &att);
	if (ret)
		return ret;
	if (!detach)
		return shim_unmap(a->shim_fd, att->id);
	ret = shim_detach(a->shim_fd, att->id);
	if (!ret)
		att->detached = true;
	return ret;
}

/*
 * unmap A: on success, what the shim saw through the importer's IOMMU
 * domain (C6.7), when it could look: "importer A stale=N", N of the table's
 * addresses that still translate.
 */
long op_unmap(struct agent *a, struct tokens *t)
{
	struct harness_shim_att_state st;
	struct attachment *att;
	long ret = op_unmap_detach(a, t, false);

	if (ret || get_att(a, t, t->tok[1], &att))
		return ret;
	if (shim_att_state(a->shim_fd, att->id, &st))
		agent_error(a, "HARNESS_SHIM_ATT_STATE %s: failed", att->name);
	else if (st.flags & HARNESS_SHIM_ATT_CHECKED)
		buf_printf(&a->notify, "importer %s stale=%u\n", att->name,
			   st.stale);
	return 0;
}

/* importer-mode A unmap|remap|delayed|never: HARNESS_SHIM_ATT_MODE. */
long op_importer_mode(struct agent *a, struct tokens *t)
{
	static const char *const modes[] = {
		[HARNESS_SHIM_MODE_UNMAP] = "unmap",
		[HARNESS_SHIM_MODE_REMAP] = "remap",
		[HARNESS_SHIM_MODE_DELAYED] = "delayed",
		[HARNESS_SHIM_MODE_NEVER] = "never",
	};
	struct attachment *att;
	unsigned int mode;
	long ret;

	if (need(a, t, 3))
		return -EINVAL;
	for (mode = 0; mode < ARRAY_SIZE(modes); mode++) {
		if (!strcmp(t->tok[2], modes[mode]))
			break;
	}
	if (mode == ARRAY_SIZE(modes))
		return malformed(a, t, "expected unmap, remap, delayed or never");
	ret = get_att(a, t, t->tok[1], &att);
	if (ret)
		return ret;
	return shim_att_mode(a->shim_fd, att->id, mode);
}

long op_detach(struct agent *a, struct tokens *t)
{
	return op_unmap_detach(a, t, true);
}

/* ------------------------------------------------------------------ */
/* iommufd as a second importer */

/* Grows *@arr (of *@cap elements of @size bytes) for one more: 0 or -1. */
static int grow(void **arr, int n, int *cap, size_t size)
{
	void *p;
	int c;

	if (n < *cap)
		return 0;
	c = *cap ? 2 * *cap : 16;
	p = realloc(*arr, c * size);
	if (!p)
		return -1;
	*arr = p;
	*cap = c;
	return 0;
}

static int ioas_find(struct agent *a, const char *name)
{
	int i;

	for (i = 0; i < a->nioas; i++) {
		if (!strcmp(a->ioas[i].name, name))
			return i;
	}
	return -1;
}

static struct iomap *iomap_find(struct agent *a, const char *name)
{
	int i;

	for (i = 0; i < a->niomap; i++) {
		if (!strcmp(a->iomap[i].name, name))
			return &a->iomap[i];
	}
	return NULL;
}

/* ioas-alloc S: /dev/iommu of its own and IOMMU_IOAS_ALLOC. */
long op_ioas_alloc(struct agent *a, struct tokens *t)
{
	struct ioas *s;
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	if (!valid_name(t->tok[1]))
		return malformed(a, t, "bad IOAS name");
	if (ioas_find(a, t->tok[1]) >= 0)
		return -EEXIST;
	if (grow((void **)&a->ioas, a->nioas, &a->ioas_cap, sizeof(*s)))
		return -ENOMEM;
	s = &a->ioas[a->nioas];
	ret = iommufd_ioas_alloc(&s->fd, &s->id);
	if (ret)
		return ret;
	snprintf(s->name, sizeof(s->name), "%s", t->tok[1]);
	s->dev = -1;
	a->nioas++;
	return 0;
}

/*
 * ioas-device S D: S names the IOAS exporter D is attached to (vfio-open's,
 * in D's iommufd), for as long as this open of D lasts.
 */
long op_ioas_device(struct agent *a, struct tokens *t)
{
	struct exporter *x;
	struct ioas *s;
	long ret;

	if (need(a, t, 3))
		return -EINVAL;
	if (!valid_name(t->tok[1]))
		return malformed(a, t, "bad IOAS name");
	if (ioas_find(a, t->tok[1]) >= 0)
		return -EEXIST;
	ret = get_open_exporter(a, t, t->tok[2], &x);
	if (ret)
		return ret;
	if (grow((void **)&a->ioas, a->nioas, &a->ioas_cap, sizeof(*s)))
		return -ENOMEM;
	s = &a->ioas[a->nioas++];
	snprintf(s->name, sizeof(s->name), "%s", t->tok[1]);
	s->fd = -1;
	s->id = x->ioas_id;
	s->dev = (int)(x - a->exporter);
	s->open = x->opens;
	return 0;
}

/*
 * The iommufd of IOAS @s: its own, or its exporter's while the open it was
 * named in lasts; -1 (the harness's -EBADF) once that device was closed.
 */
static int ioas_fd(struct agent *a, const struct ioas *s)
{
	const struct exporter *x;

	if (s->dev < 0)
		return s->fd;
	x = &a->exporter[s->dev];
	return x->dev_fd >= 0 && x->opens == s->open ? x->iommu_fd : -1;
}

/*
 * ioas-map-file M S B start=X length=Y [iova=Z]: IOMMU_IOAS_MAP_FILE of B's
 * fd, at Z (FIXED_IOVA) or where the kernel chooses, whose IOVA is then the
 * result.  Harness rule: -EPERM, without a call, for a fixed IOVA in an IOAS
 * holding a live kernel-placed mapping (the model cannot say whether they
 * meet).
 */
long op_ioas_map_file(struct agent *a, struct tokens *t)
{
	unsigned long long iova = 0;
	uint64_t start, length, z;
	const char *v;
	struct iomap *m;
	struct dbuf *b;
	bool fixed;
	long ret;
	int s, i;

	if (t->n != 6 && t->n != 7)
		return malformed(a, t, "wrong number of arguments");
	if (!valid_name(t->tok[1]) || !valid_name(t->tok[2]))
		return malformed(a, t, "bad mapping or IOAS name");
	v = kv_value(t->tok[4], "start");
	if (!v || parse_u64(v, &start))
		return malformed(a, t, "expected start=X");
	v = kv_value(t->tok[5], "length");
	if (!v || parse_u64(v, &length))
		return malformed(a, t, "expected length=N");
	fixed = t->n == 7;
	if (fixed) {
		v = kv_value(t->tok[6], "iova");
		if (!v || parse_u64(v, &z))
			return malformed(a, t, "expected iova=A");
		iova = z;
	}
	if (iomap_find(a, t->tok[1]))
		return -EEXIST;
	s = ioas_find(a, t->tok[2]);
	if (s < 0)
		return -ENOENT;
	if (ioas_fd(a, &a->ioas[s]) < 0)
		return -EBADF;
	ret = get_open_buf(a, t, t->tok[3], &b);
	if (ret)
		return ret;
	for (i = 0; fixed && i < a->niomap; i++) {
		if (a->iomap[i].ioas == s && a->iomap[i].live &&
		    a->iomap[i].chosen)
			return -EPERM;
	}
	if (grow((void **)&a->iomap, a->niomap, &a->iomap_cap, sizeof(*m)))
		return -ENOMEM;
	ret = iommufd_map_file(ioas_fd(a, &a->ioas[s]), a->ioas[s].id, b->fd, start,
			       length, fixed, &iova);
	if (ret)
		return ret;
	m = &a->iomap[a->niomap++];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", t->tok[1]);
	m->ioas = s;
	m->live = true;
	m->chosen = !fixed;
	m->iova = iova;
	m->length = length;
	return fixed ? 0 : (long)iova;
}

/* ioas-unmap M: IOMMU_IOAS_UNMAP of M's range; the bytes unmapped. */
long op_ioas_unmap(struct agent *a, struct tokens *t)
{
	struct iomap *m;
	long ret;

	if (need(a, t, 2))
		return -EINVAL;
	if (!valid_name(t->tok[1]))
		return malformed(a, t, "bad mapping name");
	m = iomap_find(a, t->tok[1]);
	if (!m || !m->live)
		return -ENOENT;
	if (ioas_fd(a, &a->ioas[m->ioas]) < 0)
		return -EBADF;
	ret = iommufd_unmap(ioas_fd(a, &a->ioas[m->ioas]), a->ioas[m->ioas].id,
			    m->iova, m->length);
	if (ret >= 0)
		m->live = false;
	return ret;
}

/*
 * Notification @rec of @att: counted, and what the importer saw of it, if
 * anything (shim_importer_event(): a remap's answer, whether the op waited
 * for a deferred unmap), from the attachment's state right after the op.
 */
static void att_notified(struct agent *a, struct attachment *att,
			 const struct harness_shim_notification *rec)
{
	struct harness_shim_att_state st;
	char text[32];

	att->pending_notify++;
	if (!(rec->flags & (HARNESS_SHIM_NOTIFY_REMAPPED |
			    HARNESS_SHIM_NOTIFY_DEFERRED)))
		return;
	if (shim_att_state(a->shim_fd, att->id, &st)) {
		agent_error(a, "HARNESS_SHIM_ATT_STATE %s: failed", att->name);
		return;
	}
	if (!shim_importer_event(rec, &st, a->op_ms, text, sizeof(text)))
		return;
	if (att->nevent == (int)ARRAY_SIZE(att->event)) {
		agent_error(a, "%s: too many importer reports in one op",
			    att->name);
		return;
	}
	snprintf(att->event[att->nevent++], sizeof(att->event[0]), "%s", text);
}

/*
 * After every op: the invalidate_mappings calls the shim recorded, as
 * "notify A" lines in attachment creation order (an attachment notified
 * twice gets two lines).
 */
void dmabuf_report(struct agent *a)
{
	static struct harness_shim_notification rec[NOTIFY_CHUNK];
	uint32_t lost;
	long i, n;
	int j;

	if (a->shim_fd < 0 || !a->natt)
		return;
	do {
		n = shim_notify_read(a->shim_fd, rec, NOTIFY_CHUNK, &lost);
		if (n < 0) {
			agent_error(a, "HARNESS_SHIM_NOTIFY_READ: %s",
				    strerror((int)-n));
			break;
		}
		if (lost)
			agent_error(a, "%u notifications lost (shim log full)",
				    lost);
		for (i = 0; i < n; i++) {
			for (j = 0; j < a->natt; j++) {
				if (a->att[j].id == rec[i].id)
					break;
			}
			if (j == a->natt)
				agent_error(a, "notification for unknown attachment id %u",
					    rec[i].id);
			else
				att_notified(a, &a->att[j], &rec[i]);
		}
	} while (n == NOTIFY_CHUNK);

	for (j = 0; j < a->natt; j++) {
		for (; a->att[j].pending_notify; a->att[j].pending_notify--)
			buf_printf(&a->notify, "notify %s\n", a->att[j].name);
		for (i = 0; i < a->att[j].nevent; i++)
			buf_printf(&a->notify, "importer %s %s\n",
				   a->att[j].name, a->att[j].event[i]);
		a->att[j].nevent = 0;
	}
}

/* "Total N objects" of debugfs dma_buf/bufinfo, -1 if unreadable. */
static long dmabuf_count(void)
{
	FILE *f = fopen("/sys/kernel/debug/dma_buf/bufinfo", "re");
	char line[256];
	long n = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Total %ld objects", &n) == 1)
			break;
	}
	fclose(f);
	return n;
}

/*
 * The "reset" op's dma-buf part: the agent's shim file is closed and opened
 * again (the shim unmaps and detaches every attachment of the file and drops
 * its notification log), every exported fd is closed, every open VFIO device
 * is closed (its release revokes and frees what is left), and the names are
 * forgotten.  Then no dma-buf may remain (debugfs bufinfo), else dirty.
 */
void dmabuf_reset(struct agent *a, struct buf *dirty)
{
	long n;
	int i;

	if (a->shim_fd >= 0 && a->natt) {
		close(a->shim_fd);
		a->shim_fd = open(HARNESS_SHIM_DEVICE, O_RDWR | O_CLOEXEC);
		if (a->shim_fd < 0)
			buf_printf(dirty, "dirty reopening %s: %s\n",
				   HARNESS_SHIM_DEVICE, strerror(errno));
	}
	a->natt = 0;
	/* Each IOAS's iommufd: closing it unmaps and drops its dma-bufs. */
	for (i = 0; i < a->nioas; i++) {
		if (a->ioas[i].fd >= 0)
			close(a->ioas[i].fd);
	}
	a->nioas = 0;
	a->niomap = 0;
	for (i = 0; i < a->nbuf; i++) {
		if (a->dbuf[i].fd >= 0)
			close(a->dbuf[i].fd);
	}
	a->nbuf = 0;
	for (i = 0; i < a->nexporters; i++)
		vfio_device_close(&a->exporter[i].dev_fd,
				  &a->exporter[i].iommu_fd);
	n = dmabuf_count();
	if (n > 0)
		buf_printf(dirty, "dirty %ld dma-buf(s) left (debugfs bufinfo)\n",
			   n);
	/* The records of this sequence (and of its teardown) are not the next one's. */
	dma_buf_trace_drain(a->dmabuf_trace_fd);
}

static const char *trace_buf_name(void *ctx, unsigned long long ino)
{
	struct agent *a = ctx;
	int i;

	for (i = 0; i < a->nbuf; i++)
		if (a->dbuf[i].ino == ino)
			return a->dbuf[i].name;
	return NULL;
}

static void trace_emit(void *ctx, int is_error, const char *line)
{
	struct agent *a = ctx;

	if (is_error)
		agent_error(a, "%s", line);
	else
		buf_printf(&a->fdinfo, "%s\n", line);
}

/*
 * The dma_buf tracepoint records (export, fd, attach, detach) since the last
 * dmabuf-trace, from the instance harness-dmabuf (C7.8), after bufinfo's
 * lines: "trace export B", "trace attach B I dynamic=N"...
 */
long op_dmabuf_trace(struct agent *a, struct tokens *t)
{
	if (need(a, t, 1))
		return -EINVAL;
	return dma_buf_trace_read(a->shim_fd, a->dmabuf_trace_fd,
				  trace_buf_name, trace_emit, a);
}
