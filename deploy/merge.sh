#!/usr/bin/env bash
# Merges the shards deploy/shard.sh wrote under HARNESS_REPORTS/shards/ (reports) into
# HARNESS_REPORTS/<run-id>/, the report one run over all the seeds writes. Run once every shard
# finished. `harness merge` names a missing shard and refuses shards of another campaign,
# kernel, world, ledger or harness (exit 2).
#
# Exit status: harness merge's: 0 no new divergence, 1 new divergences, 2 missing or foreign
# shards.
set -euo pipefail

harness=${HARNESS:-harness}
reports=${HARNESS_REPORTS:-reports}
shopt -s nullglob
shards=("$reports"/shards/fuzz-*-shard-*-of-*)
if ((${#shards[@]} == 0)); then
	echo "merge.sh: no shard reports under $reports/shards/" >&2
	exit 2
fi
exec "$harness" merge --reports "$reports" "${shards[@]}" "$@"
