#!/usr/bin/env bash
# Submits a campaign as a Slurm job array of shards and its merge, which starts only when
# every shard succeeded (afterok). The campaign's variables (HARNESS_SEED, HARNESS_COUNT,
# HARNESS_WORLD, HARNESS_REPORTS, HARNESS_GUEST, HARNESS…: deploy/shard.sh) are passed on
# (sbatch exports the environment).
#   HARNESS_COUNT=2000 HARNESS_REPORTS=$PWD/reports/campaign-1 deploy/slurm/submit.sh [SHARDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
shards=${1:-4}
array=$(sbatch --parsable --array="0-$((shards - 1))" deploy/slurm/shard.sbatch)
merge=$(sbatch --parsable --dependency="afterok:${array%%;*}" deploy/slurm/merge.sbatch)
echo "shards: job $array (array 0-$((shards - 1))), merge: job $merge"
