#!/usr/bin/env bash
# The GPU checks, packed to fit one device call (at most 10 minutes) of a 15-minute device session.
#
# A device session now has 15 minutes in all, a fresh machine takes a minute or two to start, and
# what it installed is gone at the next start: so each pack below is one command, run once, that
# stays under PACK_LIMIT seconds (default 540). Stages run in priority order, each under its own
# limit, cut to what is left of the pack's; a stage that fails or runs out of time does not stop
# the next one. Everything comes back in at most 4 files under $OUT (the device returns 8):
#   gpu_checks.log  every stage's output, then a summary line per stage (rc, seconds)
#   RESULTS.md      benchmarks/RESULTS.md with each benchmark's new section appended: copy it over
#                   benchmarks/RESULTS.md here
#   rows-*.jsonl    the end-to-end runs, one JSON line each: keep them in benchmarks/rows/
#
# Packs (which to run: the first whose numbers are not yet in RESULTS.md):
#   core      (~9 min) pytest -m gpu (graph vs eager, memory, a real search on CUDA, concurrent);
#             the 60 s Fashion-MNIST budget, seed 0, NAS and ResNet-20 (issue 2); images/s of the
#             best cell in eager, graph and concurrent mode (issue 5); throughput vs the
#             DataLoader loop (issue 2)
#   speed     (~9 min) issue 5: all four cells unfused; then the fused modes of the best cell;
#             then the 10-epoch CIFAR-10 accuracy of eager, graph, fused and concurrent
#   transfer  (~8.5 min) issue 3: finetune k=12 on Fashion-MNIST at full size (C=16, N=5,
#             12 epochs), the NB201 CIFAR-10 top 12 under 1M parameters, Spearman rho; then how
#             well the final training's cost is forecast per cell on the GPU (final_forecast.py)
#   e2e60     (~9 min) issue 2: the 60 s budget, seeds 1 and 2, both methods; then seed 0 with
#             --step-mode eager (issue 5's before/after)
#   e2e480-nas-S, e2e480-resnet-S   (~8.5 min each) the 480 s budget, seed S, one method
#
# On the device machine, from the repo root, carrying .whl and .data (see benchmarks/README.md,
# "Prepare the carry"):
#   bash benchmarks/gpu_checks.sh core
# Here, on a CPU, to prove a pack's wiring (tiny settings, results to a temporary folder):
#   SMOKE=1 bash benchmarks/gpu_checks.sh core
set -u
cd "$(dirname "$0")/.."

PACK=${1:-core}
SMOKE=${SMOKE:-}
OUT=${OUT:-$(mktemp -d -t gpu-checks-XXXXXX)}
PACK_LIMIT=${PACK_LIMIT:-540}
LOG=$OUT/gpu_checks.log
mkdir -p "$OUT"
: >"$LOG"
START=$(date +%s)
SUMMARY=()
export PYTHONUNBUFFERED=1

say() { echo "$*" | tee -a "$LOG"; }

PY=${PYTHON:-python3}
# Optuna and its needs travel as wheels (the device machine has no network and no Optuna).
if ! "$PY" -c "import optuna" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl >>"$LOG" 2>&1 || say "warning: installing the wheels in .whl failed"
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
RES=$OUT/RESULTS.md

FM=.data/fashion-mnist
CIFAR=.data/cifar10/cifar10-jpeg.tar.gz
TABLE=.data/nb201/nats_tss_200ep_test.csv
[ -e "$FM/train-images-idx3-ubyte.gz" ] || FM=/usr/share/datasets/fashion-mnist
[ -e "$CIFAR" ] || CIFAR=../shared/data/cifar10-jpeg.tar.gz
[ -e "$TABLE" ] || TABLE=../shared/data/nb201/nats_tss_200ep_test.csv

# stage NAME LIMIT_S COMMAND...: run it under min(LIMIT_S, what is left of the pack), log it.
stage() {
  local name=$1 limit=$2
  shift 2
  local left=$((PACK_LIMIT - ($(date +%s) - START) - 5))
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -lt 20 ]; then
    SUMMARY+=("$name: SKIPPED (${left}s left of the pack)")
    say "=== $name: skipped, ${left}s left ==="
    return
  fi
  say "=== $name (limit ${limit}s): $* ==="
  local t0 rc
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  local verdict="ok"
  [ $rc -ne 0 ] && verdict="FAILED rc=$rc"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && verdict="TIMED OUT after ${limit}s"
  SUMMARY+=("$name: $verdict in $(($(date +%s) - t0))s")
  say "=== $name: $verdict in $(($(date +%s) - t0))s ==="
}

# Each benchmark's options come last in its stage, so that the smoke settings override the pack's.
if [ -n "$SMOKE" ]; then
  # Tiny settings on a CPU: each benchmark's own --smoke, synthetic images where that is faster.
  E2E=(--smoke --budgets 20)
  THR=(--smoke --synthetic)
  SPD=(--smoke --synthetic --cells best --batches 64 --modes eager,concurrent --concurrent 2)
  TRF=(--smoke)
  FFC=(-C 4 -N 1 --images 256 --cells 2 --epochs 1)
  EVS=(-C 4 -N 1 --resolution 8 --images 128 --batches 32,64 --repeats 1)
else
  E2E=(--data-root "$FM")
  THR=(--cifar-tar "$CIFAR" --epochs 3)
  SPD=(--cifar-tar "$CIFAR")
  TRF=(--table "$TABLE" --data-root "$FM")
  FFC=(--resolution 32 --in-channels 3 --images 8192 --epochs 2 --device cuda)
  EVS=(--resolution 32 --in-channels 3 --images 4096 --batches 256,1024,4096 --repeats 2 --device cuda)
fi

say "pack $PACK on $(hostname), $(date -u '+%Y-%m-%d %H:%M UTC'), limit ${PACK_LIMIT}s${SMOKE:+ (SMOKE: tiny CPU settings)}"
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))" 2>&1 | tee -a "$LOG"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv >>"$LOG" 2>&1

case "$PACK" in
  # Stage limits add up to at most ~515 s, inside the pack's 540 less set-up and slack.
  core)
    stage "pytest -m gpu" 120 "$PY" -m pytest -v -m gpu tests/train tests/search/test_search_gpu.py
    stage "e2e 60 s, seed 0" 170 "$PY" benchmarks/fashion_mnist_e2e.py --budgets 60 --seeds 0 \
      --rows "$OUT/rows-60-s0.jsonl" --out "$RES" "${E2E[@]}"
    stage "speed: best cell, unfused" 110 "$PY" benchmarks/gpu_speed.py --cells best --batches 512,1024 \
      --modes eager,graph,concurrent --out "$RES" "${SPD[@]}"
    stage "throughput vs DataLoader" 95 "$PY" benchmarks/throughput.py --out "$RES" "${THR[@]}"
    stage "evaluation speed by batch" 20 "$PY" benchmarks/eval_speed.py --out "$RES" "${EVS[@]}"
    ;;
  speed)
    stage "speed: four cells, unfused" 160 "$PY" benchmarks/gpu_speed.py --batches 512,1024 --out "$RES" "${SPD[@]}"
    # Each network compiles anew (dynamo and AOTAutograd trace even with inductor's cache warm):
    # one batch size and 2 at once keep this to a few compilations.
    stage "speed: best cell, fused" 190 "$PY" benchmarks/gpu_speed.py --cells best --batches 512 \
      --modes fused,concurrent-fused --concurrent 2 --out "$RES" "${SPD[@]}"
    stage "accuracy per mode, 10 epochs" 165 "$PY" benchmarks/gpu_speed.py --cells best --batches 512 \
      --modes graph --accuracy --out "$RES" "${SPD[@]}"
    ;;
  transfer)
    stage "transfer check top-k" 500 "$PY" benchmarks/transfer_check.py --modes top-k --keep-runs runs/transfer \
      --out "$RES" "${TRF[@]}"
    stage "final-training forecast per cell" 30 "$PY" benchmarks/final_forecast.py --out "$RES" "${FFC[@]}"
    ;;
  e2e60)
    stage "e2e 60 s, seeds 1,2" 360 "$PY" benchmarks/fashion_mnist_e2e.py --budgets 60 --seeds 1,2 \
      --rows "$OUT/rows-60-s12.jsonl" --out "$RES" "${E2E[@]}"
    stage "e2e 60 s, seed 0, eager (before issue 5)" 170 "$PY" benchmarks/fashion_mnist_e2e.py --budgets 60 \
      --seeds 0 --methods nas --step-mode eager --rows "$OUT/rows-60-s0-eager.jsonl" --out "$RES" "${E2E[@]}"
    ;;
  e2e480-nas-* | e2e480-resnet-*)
    method=${PACK#e2e480-}; seed=${method#*-}; method=${method%-*}
    stage "e2e 480 s, $method, seed $seed" 530 "$PY" benchmarks/fashion_mnist_e2e.py --budgets 480 --seeds "$seed" \
      --methods "$method" --rows "$OUT/rows-480-$method-$seed.jsonl" --out "$RES" "${E2E[@]}"
    ;;
  *)
    echo "unknown pack '$PACK': core, speed, transfer, e2e60, e2e480-nas-S or e2e480-resnet-S" >&2
    exit 2
    ;;
esac

say ""
say "=== summary of pack $PACK ($(($(date +%s) - START))s; files in $OUT) ==="
for line in "${SUMMARY[@]}"; do say "  $line"; done
echo "--- tables and key lines from $LOG:"
grep -E "^\| |images/s|^accuracy |^  (NAS|ResNet)|target >=|Error|error:|^(FAILED|ERROR) |[0-9]+ (passed|failed)" "$LOG" | grep -v "^===" | tail -60
