// SPDX-License-Identifier: GPL-2.0-only
/*
 * The libbpf observer: loads observer.bpf.o (compiled in, CO-RE against the
 * running kernel's BTF), attaches its programs to the series' functions,
 * and turns what they recorded during an op into the op's observer lines
 * (PROTOCOL.md, "Observer lines"):
 *
 *   bpf walk P.tN addr=0x… lsb=N            a candidate of a kill walk
 *   bpf signal P.tN AR|AO addr=0x… lsb=N ret=R   its signal's generation
 *   bpf map-type bus|host-bridge|not-supported|none|other
 *   bpf error-chain FN=-ERRNO …             error returns, innermost first
 *
 * A kernel without BTF, or without the BPF syscall, has no observer: the
 * agent says so in its facts and writes no observer line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <bpf/libbpf.h>

#include "agent.h"
#include "observer.h"

/* The BPF object, built by the Makefile and placed here by the assembler. */
#define STR(x) #x
#define XSTR(x) STR(x)
__asm__(".section .rodata\n"
	".balign 8\n"
	".global observer_obj\n"
	"observer_obj:\n"
	".incbin \"" XSTR(OBSERVER_OBJ) "\"\n"
	".global observer_obj_end\n"
	"observer_obj_end:\n"
	".previous\n");

static const char *const func_names[OBS_NFUNCS] = {
	[OBS_FN_memory_failure] = "memory_failure",
	[OBS_FN_register_pfn_address_space] = "register_pfn_address_space",
	[OBS_FN_action_result] = "action_result",
	[OBS_FN_kill_proc] = "kill_proc",
	[OBS_FN_send_sig_mceerr] = "send_sig_mceerr",
	[OBS_FN_force_sig_mceerr] = "force_sig_mceerr",
	[OBS_FN_soft_offline_page] = "soft_offline_page",
	[OBS_FN_unpoison_memory] = "unpoison_memory",
	[OBS_FN_vfio_pci_core_ioctl_feature] = "vfio_pci_core_ioctl_feature",
	[OBS_FN_vfio_pci_core_feature_dma_buf] = "vfio_pci_core_feature_dma_buf",
	[OBS_FN_validate_dmabuf_input] = "validate_dmabuf_input",
	[OBS_FN_vfio_pci_core_fill_phys_vec] = "vfio_pci_core_fill_phys_vec",
	[OBS_FN_vfio_pci_core_get_dmabuf_phys] = "vfio_pci_core_get_dmabuf_phys",
	[OBS_FN_vfio_pci_dma_buf_attach] = "vfio_pci_dma_buf_attach",
	[OBS_FN_vfio_pci_dma_buf_map] = "vfio_pci_dma_buf_map",
	[OBS_FN_dma_buf_phys_vec_to_sgt] = "dma_buf_phys_vec_to_sgt",
	[OBS_FN_dma_iova_link] = "dma_iova_link",
	[OBS_FN_dma_iova_sync] = "dma_iova_sync",
	[OBS_FN_dma_buf_map_attachment] = "dma_buf_map_attachment",
	[OBS_FN_dma_buf_dynamic_attach] = "dma_buf_dynamic_attach",
	[OBS_FN_dma_buf_export] = "dma_buf_export",
	[OBS_FN_memdup_user] = "memdup_user",
	[OBS_FN_vmemdup_user] = "vmemdup_user",
};

#define MAX_RECORDS	512

static struct observer {
	struct bpf_object *obj;
	struct ring_buffer *rb;
	int attached;		/* programs attached */
	int missing;		/* programs whose function the kernel lacks */
	char why[160];		/* no observer: why */
	struct obs_record rec[MAX_RECORDS];
	int nrec;
	int dropped;
} obs;

static int on_record(void *ctx, void *data, size_t size)
{
	if (size < sizeof(struct obs_record))
		return 0;
	if (obs.nrec < MAX_RECORDS)
		memcpy(&obs.rec[obs.nrec++], data, sizeof(struct obs_record));
	else
		obs.dropped++;
	return 0;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_WARN || !getenv("HARNESS_OBSERVER_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void observer_setup(struct agent *a)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "observer");
	struct bpf_program *prog;
	struct stat st;
	int err;

	libbpf_set_print(quiet);
	/* As tracing (mf.c): only in the guest, never on a host running tests. */
	if (a->shim_fd < 0) {
		snprintf(obs.why, sizeof(obs.why), "no-shim");
		return;
	}
	if (stat("/sys/kernel/btf/vmlinux", &st)) {
		snprintf(obs.why, sizeof(obs.why), "no-btf");
		return;
	}
	obs.obj = bpf_object__open_mem(observer_obj,
				       (size_t)(observer_obj_end - observer_obj),
				       &opts);
	if (!obs.obj) {
		snprintf(obs.why, sizeof(obs.why), "open:%s", strerror(errno));
		return;
	}
	/* Each program is attached by hand: a missing function is no failure. */
	bpf_object__for_each_program(prog, obs.obj)
		bpf_program__set_autoattach(prog, false);
	err = bpf_object__load(obs.obj);
	if (err) {
		snprintf(obs.why, sizeof(obs.why), "load:%s", strerror(-err));
		goto fail;
	}
	bpf_object__for_each_program(prog, obs.obj) {
		if (bpf_program__attach(prog))
			obs.attached++;
		else
			obs.missing++;
	}
	obs.rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obs.obj, "records")),
				  on_record, NULL, NULL);
	if (!obs.rb) {
		snprintf(obs.why, sizeof(obs.why), "ringbuf:%s", strerror(errno));
		goto fail;
	}
	return;
fail:
	bpf_object__close(obs.obj);
	obs.obj = NULL;
}

void observer_fact(struct agent *a, struct buf *b)
{
	if (obs.rb)
		buf_printf(b, "fact observer attached=%d missing=%d\n",
			   obs.attached, obs.missing);
	else
		buf_printf(b, "fact observer none reason=%s\n", obs.why);
}

/* Before an op: what the kernel did before it is not the op's. */
void observer_begin(struct agent *a)
{
	if (!obs.rb)
		return;
	ring_buffer__consume(obs.rb);
	obs.nrec = 0;
	obs.dropped = 0;
}

/* The sequence's name of a task, "P.tN", or "other" (a worker, the agent). */
static void task_name(struct agent *a, int tgid, int tid, char *out, size_t len)
{
	int i, j;

	for (i = 0; i < a->nproc; i++) {
		struct process *p = &a->proc[i];

		if (p->pid != tgid)
			continue;
		for (j = 0; j < p->nthreads; j++) {
			if (p->thread[j].tid == tid) {
				snprintf(out, len, "%s.t%d", p->name, p->thread[j].index);
				return;
			}
		}
	}
	snprintf(out, len, "other");
}

static const char *map_type_name(long long t)
{
	switch (t) {
	case OBS_MAP_NONE: return "none";
	case OBS_MAP_NOT_SUPPORTED: return "not-supported";
	case OBS_MAP_BUS_ADDR: return "bus";
	case OBS_MAP_THRU_HOST_BRIDGE: return "host-bridge";
	default: return "other";
	}
}

static const char *code_name(long long code, char *tmp, size_t len)
{
	if (code == 4)		/* BUS_MCEERR_AR */
		return "AR";
	if (code == 5)		/* BUS_MCEERR_AO */
		return "AO";
	snprintf(tmp, len, "code=%lld", code);
	return tmp;
}

/* After an op: its observer lines, in canonical order, into b. */
void observer_report(struct agent *a, struct buf *b)
{
	char name[NAME_LEN + 16], tmp[32];
	struct buf chain = { 0 };
	int i, j;

	if (!obs.rb)
		return;
	ring_buffer__consume(obs.rb);
	for (i = 0; i < obs.nrec; i++) {
		const struct obs_record *r = &obs.rec[i];

		if (r->kind != OBS_CANDIDATE)
			continue;
		task_name(a, r->tgid, r->tid, name, sizeof(name));
		if (r->addr == (unsigned long long)-EFAULT)
			buf_printf(b, "bpf walk %s addr=-EFAULT lsb=%lld\n", name, r->lsb);
		else
			buf_printf(b, "bpf walk %s addr=0x%llx lsb=%lld\n", name, r->addr, r->lsb);
	}
	for (i = 0; i < obs.nrec; i++) {
		const struct obs_record *r = &obs.rec[i];
		long long ret = 0;
		bool have_ret = false;

		if (r->kind != OBS_SIGNAL)
			continue;
		/* kill_proc() returns the generation's result next. */
		for (j = i + 1; j < obs.nrec; j++) {
			if (obs.rec[j].kind == OBS_KILL_RET) {
				ret = obs.rec[j].val;
				have_ret = true;
				break;
			}
			if (obs.rec[j].kind == OBS_SIGNAL)
				break;
		}
		task_name(a, r->tgid, r->tid, name, sizeof(name));
		buf_printf(b, "bpf signal %s %s addr=0x%llx lsb=%lld",
			   name, code_name(r->val, tmp, sizeof(tmp)), r->addr, r->lsb);
		if (have_ret)
			buf_printf(b, " ret=%s\n", errno_name(ret, tmp, sizeof(tmp)));
		else
			buf_printf(b, "\n");
	}
	for (i = 0; i < obs.nrec; i++) {
		if (obs.rec[i].kind == OBS_MAP_TYPE)
			buf_printf(b, "bpf map-type %s\n", map_type_name(obs.rec[i].val));
	}
	for (i = 0; i < obs.nrec; i++) {
		const struct obs_record *r = &obs.rec[i];

		if (r->kind != OBS_ERR || r->fn >= OBS_NFUNCS)
			continue;
		buf_printf(&chain, " %s=%s", func_names[r->fn],
			   errno_name(r->val, tmp, sizeof(tmp)));
	}
	if (chain.len)
		buf_printf(b, "bpf error-chain%.*s\n", (int)chain.len, chain.data);
	if (obs.dropped)
		buf_printf(b, "bpf dropped %d\n", obs.dropped);
	free(chain.data);
	obs.nrec = 0;
	obs.dropped = 0;
}
