#!/usr/bin/env bash
# CI's Slurm checks (called by .ci/run after `tools/cluster/slurm-local.sh start`; root, a fresh clone):
#  1. distill experiment table2 --scale smoke --seeds 1 --only none,dsmd-official --executor slurm; while
#     task 1 trains it is killed with scancel: the command fails naming the task and its log;
#     the same command again submits only task 1, leaves task 0's result untouched, and its results.json rows
#     equal the local executor's ($1: a results.json of the same experiment from the local executor).
#  2. distill teacher extract --executor slurm --shards 2 (two Slurm tasks, --shard 0/2 and 1/2) gives a cache
#     file byte-identical to one unsharded extraction (cmp).
# Usage: tools/cluster/ci-slurm.sh <local results.json> [work folder]
set -euo pipefail
cd "$(dirname "$0")/../.."
LOCAL_RESULTS="$1"
WORK="${2:-$(mktemp -d)}"
mkdir -p "$WORK"
export DISTILL_SLURM_POLL_S=1
distill() { node apps/cli/bin/distill.js "$@"; }
EXP=(experiment table2 --scale smoke --seeds 1 --only none,dsmd-official)
# the local run (--workers 2) gave each training process max(1, cores/2) onnxruntime threads: the same here
T="$(( $(nproc) / 2 > 1 ? $(nproc) / 2 : 1 ))"
SL=(--executor slurm --threads "$T" --cpus-per-task "$T")
S="$WORK/store"; O="$WORK/out"

echo "-- slurm: ${EXP[*]} --executor slurm, task 1 killed with scancel while it trains"
distill "${EXP[@]}" --store "$S" --plan --json >"$WORK/plan.json"
dir_of() { node -e "const p=require(process.argv[1]); console.log(p.tasks[+process.argv[2]].dir)" "$WORK/plan.json" "$1"; }
D0="$(dir_of 0)"; D1="$(dir_of 1)"
set +e
distill "${EXP[@]}" "${SL[@]}" --store "$S" --out "$O" >"$WORK/first.log" 2>&1 &
FIRST=$!
set -e
# wait until task 1 trains (its record and its training log exist)
for _ in $(seq 1 600); do
  if [ -s "$D1/config.json" ] && [ -s "$D1/train.log" ]; then break; fi
  sleep 0.2
done
JOB="$(squeue -h -r --name "$(squeue -h -o %j | grep '^distill-table2' | head -1)" -o '%A %K %T' | awk '$2==1 && $3=="RUNNING" {print $1}')"
test -n "$JOB" || { echo "task 1 is not running"; cat "$WORK/first.log"; squeue; exit 1; }
scancel "${JOB}_1"
echo "scancel ${JOB}_1"
if wait "$FIRST"; then echo "the experiment should have failed after scancel"; cat "$WORK/first.log"; exit 1; fi
grep -E "task 1 \(none seed 0\).*(CANCELLED|did not finish).*see .*_1\.log" "$WORK/first.log" || { echo "the failure does not name task 1 and its log"; cat "$WORK/first.log"; exit 1; }
test ! -e "$D1/result.json"
test -s "$D0/result.json"
M0="$(stat -c %Y.%N "$D0/result.json" 2>/dev/null || stat -c %Y "$D0/result.json")"
distill "${EXP[@]}" "${SL[@]}" --store "$S" --out "$O" 2>&1 | tee "$WORK/second.log" | grep -E "^slurm|results:"
grep -q "1 done in the store, 0 already queued, 1 to submit" "$WORK/second.log"
grep -q "(array 1)" "$WORK/second.log"
test "$M0" = "$(stat -c %Y.%N "$D0/result.json" 2>/dev/null || stat -c %Y "$D0/result.json")" || { echo "task 0 was retrained"; exit 1; }
node tools/cluster/same-results.mjs "$O/results.json" "$LOCAL_RESULTS"
grep -c "Name=distill-table2.*JobState=COMPLETED" /var/log/distill-slurm/jobcomp.log | xargs echo "Slurm's job completion log: COMPLETED tasks of distill-table2:"

echo "-- slurm: teacher extract --executor slurm --shards 2 (Slurm tasks --shard 0/2, 1/2) against one unsharded extraction"
TX=(teacher extract --train-subset 64 --eval-subset 16)
DISTILL_CACHE_DIR="$WORK/cache-sharded" distill "${TX[@]}" --executor slurm --shards 2 >"$WORK/sharded.json" 2>"$WORK/sharded.log" || { cat "$WORK/sharded.log"; exit 1; }
grep -E "^slurm .*(submitted|finished)" "$WORK/sharded.log" | tail -2
DISTILL_CACHE_DIR="$WORK/cache-one" distill "${TX[@]}" >"$WORK/one.json" 2>/dev/null
cache_of() { node -e "console.log(require(process.argv[1]).cache)" "$1"; }
cmp "$(cache_of "$WORK/sharded.json")" "$(cache_of "$WORK/one.json")"
echo "same cache bytes: $(sha256sum "$(cache_of "$WORK/one.json")" | cut -c1-16) ($(stat -c %s "$(cache_of "$WORK/one.json")") bytes), two Slurm shards = one extraction"
