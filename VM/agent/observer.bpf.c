// SPDX-License-Identifier: GPL-2.0-only
/*
 * The harness's libbpf observer: what the kernel decided inside the two
 * series during an op, recorded at kprobes of the series' functions and
 * read by the agent (observer.c) after the op.  CO-RE: the structures below
 * declare only the fields read; libbpf relocates them against the guest
 * kernel's BTF.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "observer.h"

char LICENSE[] SEC("license") = "GPL";

#define MAX_CANDIDATES	16

struct list_head {
	struct list_head *next;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

/* mm/memory-failure.c's private list entry of a kill walk. */
struct to_kill {
	struct list_head nd;
	struct task_struct *tsk;
	unsigned long addr;
	short size_shift;
} __attribute__((preserve_access_index));

enum pci_p2pdma_map_type {
	PCI_P2PDMA_MAP_NONE = 1,
	PCI_P2PDMA_MAP_NOT_SUPPORTED = 2,
	PCI_P2PDMA_MAP_BUS_ADDR = 3,
	PCI_P2PDMA_MAP_THRU_HOST_BRIDGE = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} records SEC(".maps");

static __always_inline void emit(const struct obs_record *r)
{
	bpf_ringbuf_output(&records, (void *)r, sizeof(*r), 0);
}

static __always_inline void current_ids(struct obs_record *r)
{
	__u64 id = bpf_get_current_pid_tgid();

	r->tgid = id >> 32;
	r->tid = (__u32)id;
}

static __always_inline int returned(unsigned int fn, long ret)
{
	struct obs_record r = { .kind = OBS_ERR, .fn = fn, .val = ret };

	if (ret >= 0 || ret < -4095)
		return 0;
	current_ids(&r);
	emit(&r);
	return 0;
}

#define RET_PROBE(fn, type)					\
	SEC("kretprobe/" #fn)					\
	int ret_##fn(struct pt_regs *ctx)			\
	{							\
		return returned(OBS_FN_##fn, (type)PT_REGS_RC(ctx)); \
	}

RET_PROBE(memory_failure, int)
RET_PROBE(register_pfn_address_space, int)
RET_PROBE(action_result, int)
RET_PROBE(kill_proc, int)
RET_PROBE(send_sig_mceerr, int)
RET_PROBE(force_sig_mceerr, int)
RET_PROBE(soft_offline_page, int)
RET_PROBE(unpoison_memory, int)
RET_PROBE(vfio_pci_core_ioctl_feature, int)
RET_PROBE(vfio_pci_core_feature_dma_buf, int)
RET_PROBE(validate_dmabuf_input, int)
RET_PROBE(vfio_pci_core_fill_phys_vec, int)
RET_PROBE(vfio_pci_core_get_dmabuf_phys, int)
RET_PROBE(vfio_pci_dma_buf_attach, int)
RET_PROBE(vfio_pci_dma_buf_map, long)
RET_PROBE(dma_buf_phys_vec_to_sgt, long)
RET_PROBE(dma_iova_link, int)
RET_PROBE(dma_iova_sync, int)
RET_PROBE(dma_buf_map_attachment, long)
RET_PROBE(dma_buf_dynamic_attach, long)
RET_PROBE(dma_buf_export, long)
RET_PROBE(memdup_user, long)
RET_PROBE(vmemdup_user, long)

/* kill_procs(to_kill, forcekill, pfn, flags): every candidate of the walk. */
SEC("kprobe/kill_procs")
int BPF_KPROBE(walk_kill_procs, struct list_head *head, unsigned char forcekill)
{
	struct list_head *pos = BPF_CORE_READ(head, next);
	int i;

	for (i = 0; i < MAX_CANDIDATES && pos && pos != head; i++) {
		/* nd is to_kill's first member: the entry is at the node. */
		struct to_kill *tk = (struct to_kill *)pos;
		struct obs_record r = { .kind = OBS_CANDIDATE };

		r.tgid = BPF_CORE_READ(tk, tsk, tgid);
		r.tid = BPF_CORE_READ(tk, tsk, pid);
		r.addr = BPF_CORE_READ(tk, addr);
		r.lsb = BPF_CORE_READ(tk, size_shift);
		r.force = forcekill;
		emit(&r);
		pos = BPF_CORE_READ(pos, next);
	}
	return 0;
}

/* force_sig_mceerr(code, addr, lsb): to current, by force (AR). */
SEC("kprobe/force_sig_mceerr")
int BPF_KPROBE(sig_force, int code, void *addr, short lsb)
{
	struct obs_record r = { .kind = OBS_SIGNAL, .val = code };

	current_ids(&r);
	r.addr = (unsigned long)addr;
	r.lsb = lsb;
	emit(&r);
	return 0;
}

/* send_sig_mceerr(code, addr, lsb, t): not forced. */
SEC("kprobe/send_sig_mceerr")
int BPF_KPROBE(sig_send, int code, void *addr, short lsb, struct task_struct *t)
{
	struct obs_record r = { .kind = OBS_SIGNAL, .val = code };

	r.tgid = BPF_CORE_READ(t, tgid);
	r.tid = BPF_CORE_READ(t, pid);
	r.addr = (unsigned long)addr;
	r.lsb = lsb;
	emit(&r);
	return 0;
}

SEC("kretprobe/kill_proc")
int walk_kill_ret(struct pt_regs *ctx)
{
	struct obs_record r = { .kind = OBS_KILL_RET, .val = (int)PT_REGS_RC(ctx) };

	current_ids(&r);
	emit(&r);
	return 0;
}

SEC("kretprobe/pci_p2pdma_map_type")
int map_type_ret(struct pt_regs *ctx)
{
	struct obs_record r = { .kind = OBS_MAP_TYPE, .val = OBS_MAP_OTHER };
	int t = (int)PT_REGS_RC(ctx);

	if (t == bpf_core_enum_value(enum pci_p2pdma_map_type, PCI_P2PDMA_MAP_NONE))
		r.val = OBS_MAP_NONE;
	else if (t == bpf_core_enum_value(enum pci_p2pdma_map_type, PCI_P2PDMA_MAP_NOT_SUPPORTED))
		r.val = OBS_MAP_NOT_SUPPORTED;
	else if (t == bpf_core_enum_value(enum pci_p2pdma_map_type, PCI_P2PDMA_MAP_BUS_ADDR))
		r.val = OBS_MAP_BUS_ADDR;
	else if (t == bpf_core_enum_value(enum pci_p2pdma_map_type, PCI_P2PDMA_MAP_THRU_HOST_BRIDGE))
		r.val = OBS_MAP_THRU_HOST_BRIDGE;
	current_ids(&r);
	emit(&r);
	return 0;
}
