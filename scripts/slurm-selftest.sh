#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine (Debian 12, as root, no
# systemd needed): install slurm-wlm and munge when missing, start munged,
# slurmctld and slurmd as plain daemons with every file under a temporary
# directory (nothing written to /etc), run scripts/explore-slurm.sh with
# SHARDS array tasks and its merge job, and check the merged output is the
# unsharded run's (explore with --no-prune: a pruned shard cuts within its
# own subtrees, so only its verdicts are the unsharded run's). Exit status 0 when it is, 1 when it differs or a job
# failed, 2 when the cluster could not be set up. The daemons are stopped
# on every exit.
#
# Environment: SHOOTDOWN (binary, default target/release/shootdown),
# SCENARIO, NOTIFY, BOUND, SHARDS (default scenarios/programs/cow.yaml,
# end-only, 1, 3), SUBCMD (explore or sweep), TIMEOUT (seconds for each
# wait, default 300), KEEP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export SHOOTDOWN=${SHOOTDOWN:-$repo/target/release/shootdown}
SCENARIO=${SCENARIO:-scenarios/programs/cow.yaml}
# Absolute, as explore-slurm.sh gives it to the jobs (the output names it).
[ -e "$SCENARIO" ] && SCENARIO=$(realpath "$SCENARIO")
export NOTIFY=${NOTIFY:-end-only} BOUND=${BOUND:-1} SHARDS=${SHARDS:-3}
export SUBCMD=${SUBCMD:-explore}
TIMEOUT=${TIMEOUT:-300}
say() { echo "slurm-selftest: $*"; }
die() { say "$2" >&2; exit "$1"; }

[ "$(id -u)" = 0 ] || die 2 "needs root (it installs packages and runs the daemons)"
[ -x "$SHOOTDOWN" ] || die 2 "no $SHOOTDOWN: cargo build --release first"
start=$SECONDS

# 1. Install (as .ci/run installs Verilator).
t=$SECONDS
need=()
command -v sbatch >/dev/null 2>&1 || need+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
install_s=$((SECONDS - t))

# 2. The daemons, everything under $d.
d=$(mktemp -d /tmp/slurm-selftest.XXXXXX)
chmod 755 "$d" # munged wants its socket's directory open to all
ids=()
stop() {
  status=$?
  # Jobs first (their steps are children of slurmd), then the daemons,
  # each by the pid it wrote, waiting (10 s at most) for each to end.
  if [ ${#ids[@]} -gt 0 ]; then
    scancel "${ids[@]}" 2>/dev/null || true
    for _ in $(seq 20); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  for p in slurmd slurmctld munged; do
    [ -s "$d/$p.pid" ] || continue
    pid=$(cat "$d/$p.pid")
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  done
  if [ "$status" -ne 0 ]; then
    for l in "$d"/*.log "$d"/out/*.log; do
      [ -e "$l" ] && { echo "--- $l"; tail -n 20 "$l"; }
    done
  fi
  if [ "${KEEP:-}" = 1 ]; then say "kept $d"; else rm -rf "$d"; fi
  exit "$status"
}
trap stop EXIT
t=$SECONDS
mkdir -p "$d/state" "$d/spool" "$d/out"
node=$(hostname -s)
# Two free ports, so that this can run beside another Slurm.
free_port() {
  for p in $(shuf -i 20000-60000 -n 100); do
    [ -z "$(ss -Hltn "sport = :$p")" ] && [ "$p" != "${1:-}" ] && { echo "$p"; return; }
  done
  return 1
}
ctld_port=$(free_port) || die 2 "no free port"
slurmd_port=$(free_port "$ctld_port") || die 2 "no free port"
# A key of munge's own length; munged refuses a key others may read.
head -c 1024 /dev/urandom >"$d/munge.key"
chmod 600 "$d/munge.key"
munged --force --key-file="$d/munge.key" --socket="$d/munge.sock" \
  --pid-file="$d/munged.pid" --log-file="$d/munged.log" --seed-file="$d/munged.seed" ||
  die 2 "munged did not start (see $d/munged.log)"
export SLURM_CONF=$d/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=selftest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$d/munge.sock
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MailProg=/bin/true
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Default=YES Nodes=ALL State=UP MaxTime=INFINITE
EOF
slurmctld -f "$SLURM_CONF" || die 2 "slurmctld did not start (see $d/slurmctld.log)"
slurmd -f "$SLURM_CONF" -N "$node" || die 2 "slurmd did not start (see $d/slurmd.log)"
# Ready when the node is idle.
until [ "$(sinfo -h -N -o %t 2>/dev/null)" = idle ]; do
  [ $((SECONDS - t)) -lt "$TIMEOUT" ] || die 2 "node not idle after $TIMEOUT s: $(sinfo -N 2>&1)"
  sleep 0.5
done
daemons_s=$((SECONDS - t))
say "installed in $install_s s, daemons up in $daemons_s s ($(sinfo -V))"

# 3. The reference: the same command, unsharded, in this process.
opts=(--notify "$NOTIFY")
[ "$SUBCMD" = explore ] && opts+=(--bound "$BOUND" --no-prune --out "$d/unsharded")
t=$SECONDS
ref=0
timeout "$TIMEOUT" "$SHOOTDOWN" "$SUBCMD" "$SCENARIO" "${opts[@]}" >"$d/unsharded.txt" || ref=$?
[ "$ref" -le 1 ] || die 1 "the unsharded run failed with status $ref"
unsharded_s=$((SECONDS - t))

# 4. The array job and its merge, through the cluster.
t=$SECONDS
extra=
[ "$SUBCMD" = explore ] && extra=--no-prune
OUT=$d/out CPUS=1 EXTRA=$extra scripts/explore-slurm.sh "$SCENARIO"
read -r -a ids <"$d/out/jobs"
merge=${ids[1]}
state=
until [[ "$state" =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)$ ]]; do
  [ $((SECONDS - t)) -lt "$TIMEOUT" ] || die 1 "jobs not done after $TIMEOUT s: $(squeue 2>&1)"
  sleep 1
  state=$(scontrol -o show job "$merge" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
done
jobs_s=$((SECONDS - t))
scontrol -o show job "${ids[0]}" | grep -o 'ArrayTaskId=[0-9]*\|JobState=[A-Z_]*\|ExitCode=[0-9:]*' |
  paste -d' ' - - - | sort | sed 's/^/  /'
exit_code=$(scontrol -o show job "$merge" | grep -o 'ExitCode=[0-9]*' | cut -d= -f2)
say "merge job $merge: $state, exit code $exit_code (unsharded: $ref)"
failed=$(scontrol -o show job "${ids[0]}" | grep -o 'JobState=[A-Z_]*' | grep -vc COMPLETED || true)
[ "$failed" = 0 ] || die 1 "$failed array task(s) did not complete"
# A merge that exits 1 (a cell not as expected) is FAILED to Slurm.
case "$state:$exit_code" in
  COMPLETED:0 | FAILED:1) ;;
  *) die 1 "the merge job ended $state with exit code $exit_code" ;;
esac
[ "$exit_code" = "$ref" ] || die 1 "the merge exits $exit_code, the unsharded run $ref"

# 5. The same lines (the shrunk scenarios' directory aside), the same
# shrunk scenarios.
sed "s#$d/unsharded#OUT#g" "$d/unsharded.txt" >"$d/a.txt"
sed "s#$d/out/findings#OUT#g" "$d/out/merged.txt" >"$d/b.txt"
diff -u "$d/a.txt" "$d/b.txt" >&2 || die 1 "the merged output differs from the unsharded run's"
if [ "$SUBCMD" = explore ]; then
  diff <(ls "$d/unsharded") <(ls "$d/out/findings") >&2 || die 1 "the merge shrank other findings"
  for f in "$d"/unsharded/*; do
    diff <(sed "s#$d/unsharded#OUT#g" "$f") <(sed "s#$d/out/findings#OUT#g" "$d/out/findings/${f##*/}") >&2 ||
      die 1 "the merge shrank ${f##*/} otherwise"
  done
fi
say "merged output of $SHARDS shards = unsharded ($(wc -l <"$d/a.txt") lines):"
sed 's/^/  /' "$d/b.txt"
say "install $install_s s, daemons $daemons_s s, jobs $jobs_s s (unsharded $unsharded_s s), total $((SECONDS - start)) s"
