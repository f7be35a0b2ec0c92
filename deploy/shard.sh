#!/usr/bin/env bash
# One shard of a fuzz campaign, as every engine in deploy/ runs it (Kubernetes Indexed Job,
# Slurm array task, GitHub Actions matrix job).
#
# The shard comes from the engine's own variables, read by `harness fuzz` itself:
#   Kubernetes: JOB_COMPLETION_INDEX (set by the Job) and HARNESS_SHARDS (= the Job's completions)
#   Slurm:      SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT (and SLURM_ARRAY_TASK_MIN)
#   otherwise:  HARNESS_SHARD=I/N (GitHub Actions: from the matrix)
# The campaign: HARNESS_SEED (1), HARNESS_COUNT (1000), HARNESS_WORLD (mf), HARNESS_LENGTH (30),
# HARNESS_TARGET (both), HARNESS_BUDGET (none); reports under HARNESS_REPORTS/shards/ (reports).
# HARNESS (harness) is the binary; HARNESS_GUEST, when set, the guest built once and shipped.
# Extra arguments go to `harness fuzz`.
#
# Exit status: 0 when the shard ran (new divergences included: its report holds them and the
# merge's status says so), else harness's (2 usage, 3 environment): the engine may retry.
set -euo pipefail

harness=${HARNESS:-harness}
reports=${HARNESS_REPORTS:-reports}
args=(fuzz --seed "${HARNESS_SEED:-1}" --count "${HARNESS_COUNT:-1000}"
	--world "${HARNESS_WORLD:-mf}" --length "${HARNESS_LENGTH:-30}"
	--target "${HARNESS_TARGET:-both}" --reports "$reports/shards")
if [[ -n ${HARNESS_SHARD:-} ]]; then args+=(--shard "$HARNESS_SHARD"); fi
if [[ -n ${HARNESS_BUDGET:-} ]]; then args+=(--budget "$HARNESS_BUDGET"); fi

status=0
"$harness" "${args[@]}" "$@" || status=$?
if ((status == 1)); then status=0; fi
exit "$status"
