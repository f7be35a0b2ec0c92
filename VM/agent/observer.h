/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The libbpf observer's records, shared by the BPF programs
 * (observer.bpf.c) and the agent that reads them (observer.c).
 *
 * One record per kernel decision, in the order the kernel took them,
 * through one ring buffer.  Every function of the series whose return
 * value the observer follows has an id (OBS_FUNCS): its error returns
 * make up an op's error chain.
 */
#ifndef HARNESS_OBSERVER_H
#define HARNESS_OBSERVER_H

/*
 * The followed functions: name, and INT (an int return, the upper half of
 * the register undefined) or PTR (a pointer, ERR_PTR on error).  A function
 * the kernel inlined, or does not have, is left out at attach time.
 */
#define OBS_FUNCS(X)						\
	X(memory_failure, INT)					\
	X(register_pfn_address_space, INT)			\
	X(action_result, INT)					\
	X(kill_proc, INT)					\
	X(send_sig_mceerr, INT)					\
	X(force_sig_mceerr, INT)				\
	X(soft_offline_page, INT)				\
	X(unpoison_memory, INT)					\
	X(vfio_pci_core_ioctl_feature, INT)			\
	X(vfio_pci_core_feature_dma_buf, INT)			\
	X(validate_dmabuf_input, INT)				\
	X(vfio_pci_core_fill_phys_vec, INT)			\
	X(vfio_pci_core_get_dmabuf_phys, INT)			\
	X(vfio_pci_dma_buf_attach, INT)				\
	X(vfio_pci_dma_buf_map, PTR)				\
	X(dma_buf_phys_vec_to_sgt, PTR)				\
	X(dma_iova_link, INT)					\
	X(dma_iova_sync, INT)					\
	X(dma_buf_map_attachment, PTR)				\
	X(dma_buf_dynamic_attach, PTR)				\
	X(dma_buf_export, PTR)					\
	X(memdup_user, PTR)					\
	X(vmemdup_user, PTR)

#define OBS_FUNC_ID(name, kind) OBS_FN_##name,
enum obs_func { OBS_FUNCS(OBS_FUNC_ID) OBS_NFUNCS };
#undef OBS_FUNC_ID

enum obs_kind {
	OBS_ERR = 1,		/* fn returned val (a -errno) */
	OBS_CANDIDATE,		/* kill_procs(): one entry of the to_kill list */
	OBS_SIGNAL,		/* force_sig_mceerr (AR) / send_sig_mceerr: val = si_code */
	OBS_KILL_RET,		/* kill_proc() returned val: the signal's generation */
	OBS_MAP_TYPE,		/* pci_p2pdma_map_type() returned val (enum obs_map_type) */
};

/* pci_p2pdma_map_type()'s answer, by name (CO-RE enum values in the program). */
enum obs_map_type {
	OBS_MAP_OTHER = 0,
	OBS_MAP_NONE,
	OBS_MAP_NOT_SUPPORTED,
	OBS_MAP_BUS_ADDR,
	OBS_MAP_THRU_HOST_BRIDGE,
};

struct obs_record {
	unsigned int kind;	/* enum obs_kind */
	unsigned int fn;	/* OBS_ERR: enum obs_func */
	int tgid;		/* OBS_CANDIDATE, OBS_SIGNAL: the task; else current */
	int tid;
	long long val;
	unsigned long long addr;	/* OBS_CANDIDATE, OBS_SIGNAL: the user address */
	long long lsb;		/* OBS_CANDIDATE: size_shift; OBS_SIGNAL: addr_lsb */
	long long force;	/* OBS_CANDIDATE: kill_procs()'s forcekill */
};

#endif /* HARNESS_OBSERVER_H */
