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
 * The followed functions, whose error returns make up an op's error chain:
 * observer.bpf.c has a kretprobe for each (an int return is read as int, its
 * register's upper half being undefined; a pointer as long, ERR_PTR on
 * error), observer.c their names.  A function the kernel inlined, or does
 * not have, is left out at attach time.
 */
enum obs_func {
	OBS_FN_memory_failure,
	OBS_FN_register_pfn_address_space,
	OBS_FN_action_result,
	OBS_FN_kill_proc,
	OBS_FN_send_sig_mceerr,
	OBS_FN_force_sig_mceerr,
	OBS_FN_soft_offline_page,
	OBS_FN_unpoison_memory,
	OBS_FN_vfio_pci_core_ioctl_feature,
	OBS_FN_vfio_pci_core_feature_dma_buf,
	OBS_FN_validate_dmabuf_input,
	OBS_FN_vfio_pci_core_fill_phys_vec,
	OBS_FN_vfio_pci_core_get_dmabuf_phys,
	OBS_FN_vfio_pci_dma_buf_attach,
	OBS_FN_vfio_pci_dma_buf_map,
	OBS_FN_dma_buf_phys_vec_to_sgt,
	OBS_FN_dma_iova_link,
	OBS_FN_dma_iova_sync,
	OBS_FN_dma_buf_map_attachment,
	OBS_FN_dma_buf_dynamic_attach,
	OBS_FN_dma_buf_export,
	OBS_FN_memdup_user,
	OBS_FN_vmemdup_user,
	OBS_NFUNCS
};

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

/* The BPF object, compiled in by observer.c. */
extern const char observer_obj[], observer_obj_end[];

#endif /* HARNESS_OBSERVER_H */
