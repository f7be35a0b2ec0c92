/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vfio.h - the kernel interface of the dma-buf ops, shared by reproducers
 * and the guest agent
 *
 * vfio.c holds what VM/repro/dmabuf.c and VM/agent/dmabuf.c both call: PCI
 * functions in sysfs, VFIO devices through the cdev + iommufd path, the
 * VFIO_DEVICE_FEATURE DMA_BUF request, a dma-buf's fdinfo and the shim's
 * importer ioctls.  The helpers keep no state of their own: they take fds,
 * PCI names and values, and return 0, a non-negative value or -errno, as the
 * kernel does.  The agent compiles vfio.c in (VM/agent/Makefile).
 *
 * Only prototypes here: `harness repro --standalone` copies the definitions
 * of vfio.c a reproducer reaches (before those of dmabuf.c, which use them)
 * but not this header, so the macros, types and uapi fallbacks vfio.c needs
 * are defined in vfio.c.
 */
#ifndef HARNESS_VFIO_H
#define HARNESS_VFIO_H

#include <stddef.h>
#include <linux/types.h>
#include "../shim/harness_shim.h"

/* PCI functions: the exporters (each name has room for 32 bytes) */
int pci_find_exporters(int shim, char (*bdf)[32], int max);

/* VFIO devices: cdev + iommufd, config space, reset, DMA_BUF export */
long vfio_device_open(const char *bdf, int *dev_fd, int *iommu_fd,
		      const char *who);
long vfio_device_open_ioas(const char *bdf, int *dev_fd, int *iommu_fd,
			   __u32 *ioas_id, const char *who);
void vfio_device_close(int *dev_fd, int *iommu_fd);
long vfio_pci_memory(int dev_fd, int on);
long vfio_device_reset(int dev_fd);
long vfio_pci_config_write(int dev_fd, unsigned long long offset,
			   unsigned int width, unsigned long long value);
long vfio_low_power(int dev_fd, __u32 feature, int wakeup_fd);
long vfio_pci_hot_reset(int dev_fd);
long pci_power_state(const char *bdf);
__u32 vfio_dma_buf_argsz(__u32 nr);
long vfio_dma_buf(int dev_fd, __u32 feature, __u32 argsz, __u32 region,
		  __u32 open_flags, __u32 flags, __u32 nr, int nranges,
		  const unsigned long long *ranges, int *buf_fd);
int dma_buf_fdinfo(int buf_fd, unsigned long long *size, char exp[256]);
long dma_buf_bufinfo(int shim, int buf_fd, unsigned long long *size,
		     char exp[256], char *attached, size_t len);
int dma_buf_trace_open(void);
void dma_buf_trace_drain(int trace_fd);
long dma_buf_trace_read(int shim, int trace_fd,
			const char *(*buf_name)(void *ctx, unsigned long long ino),
			void (*emit)(void *ctx, int is_error, const char *line),
			void *ctx);

/* The shim's importer */
long shim_call(int shim, unsigned long cmd, void *arg);
long shim_import(int shim, int buf_fd, long importer, int dynamic,
		 __u32 *id);
long shim_map(int shim, __u32 id, struct harness_shim_map *req,
	      struct harness_shim_sg_entry *entries, __u32 count);
long shim_map_next(int shim, struct harness_shim_map *req, __u32 count);
long shim_unmap(int shim, __u32 id);
long shim_detach(int shim, __u32 id);
long shim_notify_read(int shim, struct harness_shim_notification *rec,
		      __u32 count, __u32 *lost);
long shim_att_mode(int shim, __u32 id, __u32 mode);
long shim_att_state(int shim, __u32 id, struct harness_shim_att_state *st);
int shim_importer_event(const struct harness_shim_notification *rec,
			const struct harness_shim_att_state *st, long ms,
			char *out, size_t len);

/* iommufd as an importer: an IOAS of its own, maps of dma-buf fds */
long iommufd_ioas_alloc(int *iommu_fd, __u32 *ioas_id);
long iommufd_map_file(int iommu_fd, __u32 ioas_id, int buf_fd,
		      unsigned long long start, unsigned long long length,
		      int fixed, unsigned long long *iova);
long iommufd_unmap(int iommu_fd, __u32 ioas_id, unsigned long long iova,
		   unsigned long long length);

#endif
