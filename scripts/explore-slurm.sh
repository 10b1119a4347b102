#!/usr/bin/env bash
# Run `shootdown explore` on a Slurm cluster: an array job of N shards, then
# a merge job that starts only when every shard succeeded.
#
#   SHARDS=16 BOUND=2 NOTIFY=end-only scripts/explore-slurm.sh scenarios/programs/cow.yaml
#
# prints the two job ids (array, merge). Everything goes to $OUT, which (like
# the binary and the scenarios) must be on a filesystem every node sees:
#   shard-<i>.json, shard-<i>.log   task i's partial result and its output
#   merged.txt                      the table and lines an unsharded run prints
#   merged.json, findings/          the merged cells; the shrunk scenarios
#   jobs                            the two job ids (for squeue, scancel)
#
# Slurm numbers array tasks from 0 (--array=0-(N-1), SLURM_ARRAY_TASK_ID)
# and shootdown's shards from 1 (--shard K/N), so task i runs shard i+1.
#
# Environment (all optional):
#   SHOOTDOWN    the binary (default: target/release/shootdown of this repo)
#   NOTIFY       policies, comma-separated (default: those the scenario expects)
#   BOUND        preemption bound (default 1)
#   SHARDS       N, the number of array tasks (default 4)
#   CPUS         cores per shard (default 2; explore forks one worker per core)
#   OUT          output directory (default: ./explore-slurm)
#   EXTRA        more explore options given to every shard, e.g. "--driver batched --overlap"
#   SUBCMD       explore (default) or sweep (`sweep --shard`, same K/N)
#   SBATCH_OPTS  more sbatch options, e.g. "--partition=long --time=2:00:00"
# The same options go to every shard, as merging requires.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
SHOOTDOWN=$(realpath "${SHOOTDOWN:-$here/target/release/shootdown}")
OUT=$(realpath -m "${OUT:-explore-slurm}")
export SHOOTDOWN OUT NOTIFY=${NOTIFY:-} BOUND=${BOUND:-1} SHARDS=${SHARDS:-4} CPUS=${CPUS:-2}
export EXTRA=${EXTRA:-} SUBCMD=${SUBCMD:-explore}

# The options of one run, the same for every shard. (EXTRA and SBATCH_OPTS
# split on spaces.)
opts() {
  [ -n "$NOTIFY" ] && printf '%s\n' --notify "$NOTIFY"
  [ "$SUBCMD" = explore ] && printf '%s\n' --bound "$BOUND"
  for o in $EXTRA; do printf '%s\n' "$o"; done
}

case "${1:-}" in
  --task)
    # An array task (run by Slurm): shard SLURM_ARRAY_TASK_ID+1 of N.
    shift
    i=$SLURM_ARRAY_TASK_ID
    mapfile -t o < <(opts)
    [ "$SUBCMD" = explore ] && o+=(--out "$OUT/shard-$i")
    # A shard exits 0 unless a cell could not run (its verdicts are
    # partial: the merge judges them), so any other status fails the task.
    "$SHOOTDOWN" "$SUBCMD" "$@" "${o[@]}" --jobs "${SLURM_CPUS_PER_TASK:-$CPUS}" \
      --shard "$((i + 1))/$SLURM_ARRAY_TASK_COUNT" --json "$OUT/shard-$i.json"
    ;;
  --merge)
    # The merge job (run by Slurm after every task succeeded); its exit
    # status is shootdown's: 0 as expected, 1 a mismatch, 2 an error.
    o=(--json "$OUT/merged.json")
    [ "$SUBCMD" = explore ] && o+=(--out "$OUT/findings")
    "$SHOOTDOWN" "$SUBCMD" --merge "$OUT"/shard-*.json "${o[@]}" | tee "$OUT/merged.txt"
    ;;
  *)
    # Submit (on a login node): the array, then the merge depending on it.
    [ $# -gt 0 ] || { echo "usage: $0 SCENARIO..." >&2; exit 2; }
    scenarios=()
    for s in "$@"; do
      if [ -e "$s" ]; then scenarios+=("$(realpath "$s")"); else scenarios+=("$s"); fi
    done
    mkdir -p "$OUT"
    rm -f "$OUT"/shard-*.json "$OUT/merged.txt" "$OUT/merged.json"
    self=$(realpath "$0")
    # shellcheck disable=SC2086  # SBATCH_OPTS is a list of options
    array=$(sbatch --parsable --job-name=explore --array="0-$((SHARDS - 1))" \
      --cpus-per-task="$CPUS" --chdir="$OUT" --output="$OUT/shard-%a.log" \
      ${SBATCH_OPTS:-} "$self" --task "${scenarios[@]}")
    array=${array%%;*}
    # shellcheck disable=SC2086
    merge=$(sbatch --parsable --job-name=explore-merge --dependency="afterok:$array" \
      --kill-on-invalid-dep=yes --cpus-per-task=1 --chdir="$OUT" \
      --output="$OUT/merge.log" ${SBATCH_OPTS:-} "$self" --merge)
    echo "$array ${merge%%;*}" >"$OUT/jobs"
    echo "array job ${array} (${SHARDS} shards), merge job ${merge%%;*}; output in $OUT"
    ;;
esac
