#!/usr/bin/env bash
# Table 2 on one GPU, as one time-boxed command (the converged-runs issue, part 4).
#
#   benchmarks/gpu_table2.sh OUT            # on a machine with one CUDA GPU (e.g. H200, 16 CPU cores)
#   DEVICE=cpu EPOCHS=1 TRAIN_SIZE=256 TEST_SIZE=200 ... benchmarks/gpu_table2.sh OUT   # the CPU test (tests/test_gpu_script.py)
#
# WORKERS sweep workers share the one GPU (each its own process and CUDA context; the results
# store's claims split the configurations between them).  The store starts as a copy of STORE's
# records (default results/runs, which travels with the working tree), so rows already stored —
# or stood in for by an fp32 record — are not trained again, and only new records come back.  They train Table 2 at the paper's full
# data (60 000 images) for EPOCHS epochs — the rows that decide the verdicts first: seed 0 of every
# model's rows, then the released-fidelity RELEASED rows (GR, LLR) at seed 0, then every row of
# RELEASED_MODELS in fidelity released at seed 0 (CNN1: the released code built another network, so the
# verdicts' released reading takes all its rows from such runs, rll.analysis.evidence.reading_fidelity), then MORE_SEEDS of
# MORE_SEEDS_MODELS (CNN2 seeds 1 and 2, as the paper) — in bf16 where it was measured safe and fp32
# elsewhere (--precision auto: the precision is in each record's key), evaluate every model with every attack of
# ATTACKS before moving on (the table plan: PGD-10 on the whole test set, MT on 1 000, AutoAttack
# on 500 / 200 test images), and start nothing new after STOP_AFTER minutes, so the command ends
# within its budget.  A run cut by the final TIMEOUT (SIGTERM) finishes its step and writes a
# checkpoint inside its epoch (rll.training.stop); the unfinished checkpoints come back whole in
# OUT/resume.tar, the most advanced first, within RESUME_MIB, and the next call resumes them at
# their step when given them in RESUME_FROM (carried: a git-ignored folder).  Then it
# measures the training throughput of rll's loop against the plain released-style loop on the
# same device (benchmarks/training.py) and packs everything into OUT, at most 8 files:
#
#   OUT/records.tar.gz      results/runs-style records, one JSON per (model, attack), new ones only
#   OUT/models.pt           the finished models' weights and configurations (python -m rll pack)
#   OUT/resume.tar          the unfinished trainings' checkpoints (python -m rll pack --unfinished)
#   OUT/throughput.md       benchmarks/training.py's table
#   OUT/summary.json        what ran, how long, the environment
#   OUT/workers.log         the workers' logs (tail)
#
# Unpack the records into the store with:  tar -xzf OUT/records.tar.gz -C results/runs
# and the unfinished trainings, to carry into the next call, with:
#   mkdir -p checkpoints/gpu-resume && tar -xf OUT/resume.tar -C checkpoints/gpu-resume
#   (run: command "RESUME_FROM=checkpoints/gpu-resume benchmarks/gpu_table2.sh $OUT",
#    carry ["checkpoints/gpu-resume"]; they resume on the CPU too, with fresh-seeded random streams)
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu_table2.sh OUT_DIR}
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-12}
# The budget: the paper's first phase on all 60 000 images — 40 epochs at the full learning rate,
# no decay — with learning curves, where the regime check (rll.analysis.regime) reads whether a row has
# fitted and settled (the budget page); a CPU affords it for a few rows, this GPU command for the table.
EPOCHS=${EPOCHS:-40}
MILESTONES=${MILESTONES-""}              # may be set, e.g. "40 45" with EPOCHS=50: decays after the first phase
CURVE_IMAGES=${CURVE_IMAGES:-1000}       # learning curves (train accuracy on 10 000, PGD-10 on N, Lipschitz on N/2)
TRAIN_SIZE=${TRAIN_SIZE:-}                # empty: all 60 000 images
TEST_SIZE=${TEST_SIZE:-}                  # empty: all 10 000 test images
MODELS=${MODELS:-"cnn2 cnn1"}              # seed 0 of these first
METHODS=${METHODS:-}                       # empty: the paper's ten rows
RELEASED=${RELEASED-"gr llr"}              # then these rows in fidelity released, seed 0 (empty: none)
RELEASED_MODELS=${RELEASED_MODELS-"cnn1"}  # then every row (METHODS) of these models in fidelity released, seed 0
MORE_SEEDS=${MORE_SEEDS-"1 2"}             # then these seeds (empty: none) ...
MORE_SEEDS_MODELS=${MORE_SEEDS_MODELS:-cnn2}   # ... of these models
ATTACKS=${ATTACKS:-"pgd mt aa-apgd aa"}
STOP_AFTER=${STOP_AFTER:-5}                # minutes: no new configuration after this
TIMEOUT=${TIMEOUT:-480}                    # seconds: workers still running then are stopped
BENCH_STEPS=${BENCH_STEPS:-30}
STORE=${STORE:-results/runs}              # records already stored: their rows are skipped
RESUME_FROM=${RESUME_FROM:-}              # unfinished checkpoints of an earlier call (resume.tar unpacked)
RESUME_MIB=${RESUME_MIB:-40}              # OUT/resume.tar at most (the whole OUT must stay under 64 MiB)
MAX_MIB=${MAX_MIB:-18}                    # OUT/models.pt at most
EXTRA=${EXTRA:-"--precision auto --channels-last"}  # bf16 where measured safe (in the key), channels-last (provenance)

mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$work/runs" "$work/ckpt"
seeded=0
if [ -d "$STORE" ]; then
  find "$STORE" -maxdepth 1 -name '*.json' -exec cp {} "$work/runs/" \;
  seeded=$(find "$work/runs" -maxdepth 1 -name '*.json' | wc -l)
fi
if [ -n "$RESUME_FROM" ]; then
  find "$RESUME_FROM" -maxdepth 1 -name '*.pt' -exec cp {} "$work/ckpt/" \;
fi
resumed_in=$(find "$work/ckpt" -maxdepth 1 -name '*.pt' | wc -l)
sleep 1; touch "$work/seeded"                # records newer than this are this call's

args=(table2 --dataset mnist --epochs "$EPOCHS" --milestones $MILESTONES
      --attacks $ATTACKS --eval-plan table --results-dir "$work/runs" --checkpoint-dir "$work/ckpt"
      --device "$DEVICE" --curve-images "$CURVE_IMAGES" $EXTRA)
[ -n "$TRAIN_SIZE" ] && args+=(--train-size "$TRAIN_SIZE")
[ -n "$TEST_SIZE" ] && args+=(--test-size "$TEST_SIZE")
[ "$DEVICE" = cpu ] || args+=(--eval-batch-size 512)
deadline=$(( $(date +%s) + TIMEOUT ))         # every worker stops here (SIGTERM, then KILL 60 s later)
no_new_after=$(( $(date +%s) + 60 * STOP_AFTER ))

sweep() {   # one sweep of a worker, within what is left of the time box
  local left=$(( deadline - $(date +%s) )) fresh=$(( no_new_after - $(date +%s) ))
  [ "$left" -gt 0 ] || return 124
  [ "$fresh" -gt 0 ] || return 0              # starts nothing new
  timeout --signal=TERM --kill-after=60 "$left" "$PY" -m rll sweep "${args[@]}" "$@" \
      --stop-after "$(awk "BEGIN { print $fresh / 60 }")"
  local r=$?
  [ "$r" -eq 137 ] && r=124                   # killed 60 s after the time box's SIGTERM
  return "$r"
}
merged() {  # the exit status of several runs so far ($1) and one more ($2): a failure wins over 0 and 124
  if [ "$2" -ne 0 ] && { [ "$1" -eq 0 ] || [ "$1" -eq 124 ]; }; then echo "$2"; else echo "$1"; fi
}
worker() {  # the four sweeps in order; exit status: 0, 124 (time box) or the first failure's
  local rc=0 r
  for part in first released released_models more; do
    case $part in
      first) sweep --seeds 0 --models $MODELS ${METHODS:+--methods $METHODS} ;;
      released) [ -n "$RELEASED" ] || continue; sweep --seeds 0 --models $MODELS --fidelity released --methods $RELEASED ;;
      released_models) [ -n "$RELEASED_MODELS" ] || continue
        sweep --seeds 0 --models $RELEASED_MODELS --fidelity released ${METHODS:+--methods $METHODS} ;;
      more) [ -n "$MORE_SEEDS" ] || continue; sweep --seeds $MORE_SEEDS --models $MORE_SEEDS_MODELS ${METHODS:+--methods $METHODS} ;;
    esac
    r=$?
    rc=$(merged "$rc" "$r")
    [ "$r" -eq 124 ] && break
  done
  return "$rc"
}

pids=()
for k in $(seq 1 "$WORKERS"); do
  worker > "$work/worker$k.log" 2>&1 &
  pids+=($!)
  sleep 0.5
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid"; r=$?
  status=$(merged "$status" "$r")
done
trained=$(date +%s)

"$PY" benchmarks/training.py --device "$DEVICE" --models cnn2 --steps "$BENCH_STEPS" --repeats 2 \
    > "$OUT/throughput.md" 2> "$work/bench.log" || echo "benchmark failed (see workers.log)" >> "$OUT/throughput.md"

out_abs=$(cd "$OUT" && pwd)
(cd "$work/runs" && find . -maxdepth 1 -name '*.json' -newer "$work/seeded" -print0 | sort -z \
   | tar -czf "$out_abs/records.tar.gz" --null -T -)
"$PY" -m rll pack --unfinished --checkpoint-dir "$work/ckpt" --out "$OUT/resume.tar" --max-mib "$RESUME_MIB" \
    2>> "$work/bench.log"
"$PY" -m rll pack --checkpoint-dir "$work/ckpt" --out "$OUT/models.pt" --max-mib "$MAX_MIB" 2>> "$work/bench.log" \
    || echo "models.pt not packed (over MAX_MIB=$MAX_MIB MiB): the records hold every attack's numbers" >> "$work/bench.log"
for f in "$work"/worker*.log "$work/bench.log"; do echo "== $(basename "$f")"; tail -c 4000 "$f" | tr '\r' '\n' | tail -n 15; done \
    > "$OUT/workers.log"
"$PY" - "$OUT" "$work/runs" "$start" "$trained" "$status" "$work/seeded" "$seeded" "$resumed_in" <<'EOF'
import json, platform, sys, tarfile, time
from pathlib import Path
import torch
out, runs, start, trained, status = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
since = Path(sys.argv[6]).stat().st_mtime
records = [json.loads(p.read_text()) for p in sorted(runs.glob("*.json")) if p.stat().st_mtime > since]
with tarfile.open(out / "resume.tar") as tar:
    unfinished = tar.getnames()
summary = {"records": len(records),
           "models": len({json.dumps({**r["config"], "attack": None}, sort_keys=True) for r in records}),
           "by_attack": {a: sum(r["config"]["attack"] == a for r in records) for a in sorted({r["config"]["attack"] for r in records})},
           "records_seeded_from_store": int(sys.argv[7]), "checkpoints_given": int(sys.argv[8]),
           "unfinished_packed": unfinished,
           "train_and_eval_seconds": trained - start, "total_seconds": int(time.time()) - start,
           "worker_exit_status": status, "torch": torch.__version__, "python": platform.python_version(),
           "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary))
EOF
# a worker stopped by the time box (124) is expected; any other failure is this command's
case $status in 0|124) exit 0 ;; *) echo "a worker failed (exit $status): see $OUT/workers.log" >&2; exit "$status" ;; esac
