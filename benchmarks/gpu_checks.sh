#!/usr/bin/env bash
# The GPU checks, packed to fit one device call (at most 10 minutes) of a 15-minute device session.
#
# The device machine is one NVIDIA H100 (kind nvidia-h100-x1, the default; a call that names no kind
# may land on an H200, and every section names the device it ran on). A device session has 15
# minutes in all, a fresh machine takes a minute or two to start, and what it installed is gone at
# the next start: so each pack below is one command, run once, that stays under PACK_LIMIT seconds
# (default 570, under the call's 600 s with room for the tool). It starts with a preflight that
# stops the pack within seconds (exit 3, the reason in the log) when Optuna cannot be imported,
# CUDA is not available (SMOKE=1 excepted) or the pack's data is missing: nothing else would work.
# Then stages run in priority order, each under its own limit, cut to what is left of the pack's; a
# stage that fails or runs out of time does not stop the next one, and every script writes its
# rows as it measures them, so a stage cut off keeps what it measured. What comes back under $OUT
# (the device returns at most 8 files):
#   gpu_checks.log        every stage's output, then a summary line per stage (rc, seconds)
#   RESULTS.new.md        only the sections this pack measured: append it here with
#                         cat RESULTS.new.md >> benchmarks/RESULTS.md   (never copy it over the file)
#   rows-*.jsonl          the end-to-end runs, one JSON line each (a run cut off: "partial": true):
#                         keep them in benchmarks/rows/
#   speed-rows.jsonl      gpu_speed.py's rows (speed and accuracy), as measured
#   transfer-progress.md  transfer pack: every cell trained so far, rewritten as each finishes
#
# Packs (which to run: the first whose numbers are not yet in RESULTS.md). Stage limits in
# brackets; they add up to at most ~555 s. Throughput assumed in the budgets (not measured yet):
# the NB201 best cell (C=16 N=5, batch 512) trains ~5k images/s eager on an H100, several times
# that in graph mode; a fused compile takes a minute or so.
#   core      pytest -m gpu without the fused-compile test [110] (the real search on CUDA first);
#             the 60 s Fashion-MNIST budget, seed 0, NAS and ResNet-20 (issue 2) [170]; images/s
#             of the best cell in eager, graph and concurrent mode, 10,240 images x 3 timed
#             epochs (issue 5) [90]; throughput vs the DataLoader loop (issue 2) [90]; evaluation
#             speed [45]; last, the fused-compile test [50, cut to what is left]
#   speed     issue 5. The best cell in graph mode (the fused rows' baseline, on the same card in
#             the same call), then fused, alone and 2 at once, batch 512 [135]; the 10-epoch
#             CIFAR-10 accuracy of eager alone at seeds 0 and 1 (their spread: the noise floor)
#             [200] (50,000 images x 10 epochs at ~5k/s is ~100 s of training a seed, with ~15 s
#             of JPEG decoding; each seed's row is kept as it is measured, so a cut costs seed 1
#             only); then graph, concurrent x2 and fused, each also 10 epochs, in that order
#             (graph is what a search runs on a GPU; concurrent is graph on streams; fused is
#             opt-in and compiles, so it goes last), compared with the eager row of the stage
#             before through speed-rows.jsonl [145]; then the wide, deep and tiny cells unfused at
#             batch 512, 10,240 images x 2 timed epochs [70] (the best cell's unfused numbers come
#             from core). The 10-epoch criterion is kept for every mode; concurrent trains 2
#             candidates, not 4 (accuracy per candidate does not depend on how many run at once).
#   transfer  issue 3: first how well the final training's cost is forecast per cell on the GPU
#             (final_forecast.py, short and bounded) [100]; then the transfer check, k=12 on
#             Fashion-MNIST at full size (C=16, N=5, 12 epochs), the NB201 CIFAR-10 top 12 under
#             1M parameters, Spearman rho, with every second left [~450]: one line per cell in the
#             log and transfer-progress.md as cells finish; cut off, it resumes from runs/transfer
#             when run again on the same warm machine
#   e2e60     issue 2: the 60 s budget, seeds 1 and 2, both methods [340]; then seed 0 with
#             --step-mode eager (issue 5's before/after) [170]
#   e2e480-nas-S, e2e480-resnet-S   the 480 s budget, seed S, one method [the rest, ~555: a run
#             takes ~500 s with start-up, loading and the test]; --progress logs every trial or
#             epoch, and a run cut off still leaves its row, marked partial
#
# On the device machine, from the repo root, carrying .whl and .data (see benchmarks/README.md,
# "Prepare the carry"):
#   bash benchmarks/gpu_checks.sh core
# Here, on a CPU, to prove a pack's wiring (tiny settings, the pack's own stages and modes, results
# to a temporary folder; on a CPU the graph modes train eagerly and say so):
#   SMOKE=1 bash benchmarks/gpu_checks.sh core
# (PYTHON=path/to/python picks the interpreter, python3 by default; OUT=folder keeps the results;
# SHARED_DATA=folder holds the CIFAR-10 tarball and NB201 table where .data/ does not.)
set -u
cd "$(dirname "$0")/.."

PACK=${1:-core}
SMOKE=${SMOKE:-}
OUT=${OUT:-$(mktemp -d -t gpu-checks-XXXXXX)}
PACK_LIMIT=${PACK_LIMIT:-570}
LOG=$OUT/gpu_checks.log
NEW=$OUT/RESULTS.new.md
mkdir -p "$OUT"
: >"$LOG"
: >"$NEW"  # (exists: the scripts append their sections to it without the file's header)
START=$(date +%s)
SUMMARY=()
export PYTHONUNBUFFERED=1

say() { echo "$*" | tee -a "$LOG"; }

case "$PACK" in
  core | speed | transfer | e2e60 | e2e480-nas-* | e2e480-resnet-*) ;;
  *)
    echo "unknown pack '$PACK': core, speed, transfer, e2e60, e2e480-nas-S or e2e480-resnet-S" >&2
    exit 2
    ;;
esac

PY=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}  # where the carried wheels are installed
SHARED_DATA=${SHARED_DATA:-../shared/data}
FM=.data/fashion-mnist
CIFAR=.data/cifar10/cifar10-jpeg.tar.gz
TABLE=.data/nb201/nats_tss_200ep_test.csv
[ -e "$FM/train-images-idx3-ubyte.gz" ] || FM=/usr/share/datasets/fashion-mnist
[ -e "$CIFAR" ] || CIFAR=$SHARED_DATA/cifar10-jpeg.tar.gz
[ -e "$TABLE" ] || TABLE=$SHARED_DATA/nb201/nats_tss_200ep_test.csv

# ------------------------------------------------------------------------------------ preflight
say "pack $PACK on $(hostname), $(date -u '+%Y-%m-%d %H:%M UTC'), limit ${PACK_LIMIT}s${SMOKE:+ (SMOKE: tiny CPU settings)}"
preflight_fail() {
  say "PREFLIGHT FAILED: $*"
  say "(the pack stopped after $(($(date +%s) - START))s, before any stage; files in $OUT)"
  exit 3
}
# Optuna and its needs travel as wheels (the device machine has no network and no Optuna).
if ! "$PY" -c "import optuna" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || preflight_fail "Optuna is not installed and .whl holds no wheels: run bash benchmarks/gpu_prepare.sh $PACK here and carry .whl"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    .whl/*.whl >>"$LOG" 2>&1 || preflight_fail "installing the wheels in .whl failed (pip's output above): $(ls .whl | tr '\n' ' ')"
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
fi
# The data each pack reads (a smoke run uses random CIFAR-10-sized images instead of the tarball).
need=()
case "$PACK" in
  core) need=("$FM/train-images-idx3-ubyte.gz" "$FM/t10k-images-idx3-ubyte.gz"); [ -n "$SMOKE" ] || need+=("$CIFAR") ;;
  speed) [ -n "$SMOKE" ] || need=("$CIFAR") ;;
  transfer) need=("$FM/train-images-idx3-ubyte.gz" "$FM/t10k-images-idx3-ubyte.gz" "$TABLE") ;;
  e2e*) need=("$FM/train-images-idx3-ubyte.gz" "$FM/t10k-images-idx3-ubyte.gz") ;;
esac
for f in "${need[@]}"; do
  [ -s "$f" ] || preflight_fail "the pack's data is missing: $f (run bash benchmarks/gpu_prepare.sh $PACK here and carry .data)"
done
# One Python start: versions, Optuna and budgetnas import, CUDA (unless SMOKE), pytest-timeout.
checks=$("$PY" - "${SMOKE:-}" <<'EOF' 2>&1
import importlib.util, sys
smoke = bool(sys.argv[1])
problems = []
try:
    import torch
except Exception as e:
    print(f"FAIL torch does not import: {e}"); sys.exit(1)
try:
    import optuna
    optuna_v = optuna.__version__
except Exception as e:
    optuna_v = None
    problems.append(f"optuna does not import ({type(e).__name__}: {e})")
try:
    import budgetnas  # noqa: F401
except Exception as e:
    problems.append(f"budgetnas does not import ({type(e).__name__}: {e})")
else:
    if optuna_v is not None:  # (a study needs SQLAlchemy's SQLite dialect and Alembic, which an
        # import of optuna does not load: wheels installed --no-deps could fail only here, in stage 1)
        try:
            import pathlib, tempfile
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            from budgetnas.search.study import open_study
            with tempfile.TemporaryDirectory() as tmp:
                open_study(pathlib.Path(tmp), ["maximize"]).set_user_attr("preflight", True)
        except Exception as e:
            problems.append(f"an Optuna study cannot be created in SQLite ({type(e).__name__}: {e})")
cuda = torch.cuda.is_available()
name = torch.cuda.get_device_name(0) if cuda else None
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, optuna {optuna_v}, cuda {name or cuda}")
if not cuda and not smoke:
    problems.append("torch.cuda.is_available() is False: no GPU here (SMOKE=1 for the CPU wiring check)")
print("TIMEOUT_PLUGIN", int(importlib.util.find_spec("pytest_timeout") is not None))
for p in problems:
    print("FAIL", p)
sys.exit(1 if problems else 0)
EOF
)
rc=$?
echo "$checks" | grep -v "^TIMEOUT_PLUGIN" | tee -a "$LOG"
[ $rc -eq 0 ] || preflight_fail "$(echo "$checks" | grep "^FAIL" | sed 's/^FAIL //' | tr '\n' ';')"
TIMEOUT_PLUGIN=$(echo "$checks" | awk '/^TIMEOUT_PLUGIN/ {print $2}')
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv >>"$LOG" 2>&1
say "preflight ok in $(($(date +%s) - START))s"

# ------------------------------------------------------------------------------------ stages
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

# gpu_tests PER_TEST_S FILE...: pytest -m gpu on the files in the order given, each test under
# PER_TEST_S (pytest-timeout where installed, as on the device; else each file under `timeout`).
gpu_tests() {
  local per=$1 rc=0
  shift
  if [ "${TIMEOUT_PLUGIN:-0}" = 1 ]; then
    "$PY" -m pytest -v -p no:cacheprovider -m gpu --timeout="$per" "$@"
    return
  fi
  for f in "$@"; do
    echo "--- $f (no pytest-timeout here: the file under timeout $((per * 3))s)"
    timeout -k 5 $((per * 3)) "$PY" -m pytest -v -p no:cacheprovider -m gpu "$f" || { r=$?; [ $r -eq 5 ] || rc=$r; }
  done
  return $rc
}
export -f gpu_tests
export PY TIMEOUT_PLUGIN
# The GPU tests: the real search on CUDA first (every benchmark stands on it), the fused compile
# (a minute or so of inductor) on its own, last in its pack.
TRAIN_TESTS=()
for f in $(grep -l "mark.gpu" tests/train/test_*.py); do [ "$f" = tests/train/test_fuse.py ] || TRAIN_TESTS+=("$f"); done

# Each benchmark's options come last in its stage, so that the smoke settings override the pack's
# sizes; the stages' own cells and modes stay, so a smoke run goes through the same code paths.
if [ -n "$SMOKE" ]; then
  # Tiny settings on a CPU: each benchmark's own --smoke, a small network, synthetic images where
  # that is faster.
  E2E=(--data-root "$FM" --smoke --budgets 20)
  THR=(--smoke --synthetic)
  SPD=(--rows "$OUT/speed-rows.jsonl" --smoke --synthetic -C 4 -N 1)
  TRF=(--table "$TABLE" --data-root "$FM" --progress-file "$OUT/transfer-progress.md" --poll 2 --smoke
       --keep-runs "$OUT/transfer-runs")  # (not runs/transfer: a GPU run must not resume a smoke run)
  FFC=(-C 4 -N 1 --images 256 --cells 2 --epochs 1 --threads 1)
  EVS=(-C 4 -N 1 --resolution 8 --images 128 --batches 32,64 --repeats 1 --threads 1)
else
  E2E=(--data-root "$FM")
  THR=(--cifar-tar "$CIFAR" --epochs 3)
  SPD=(--rows "$OUT/speed-rows.jsonl" --cifar-tar "$CIFAR")
  TRF=(--table "$TABLE" --data-root "$FM" --progress-file "$OUT/transfer-progress.md")
  FFC=(--resolution 32 --in-channels 3 --images 8192 --epochs 4 --device cuda)  # real runs: 1 vs 5 epochs of 16 steps
  EVS=(--resolution 32 --in-channels 3 --images 4096 --batches 256,1024,4096 --repeats 2 --device cuda)
fi

case "$PACK" in
  # Stage limits add up to at most ~555 s: the pack's 570 less the preflight and slack.
  core)
    stage "pytest -m gpu: search and trainer" 110 bash -c 'gpu_tests 60 "$@"' _ \
      tests/search/test_search_gpu.py "${TRAIN_TESTS[@]}"
    stage "e2e 60 s, seed 0" 170 "$PY" benchmarks/fashion_mnist_e2e.py --budgets 60 --seeds 0 \
      --rows "$OUT/rows-60-s0.jsonl" --out "$NEW" "${E2E[@]}"
    stage "speed: best cell, unfused" 90 "$PY" benchmarks/gpu_speed.py --cells best --batches 512,1024 \
      --modes eager,graph,concurrent --images 10240 --epochs 3 --out "$NEW" "${SPD[@]}"
    stage "throughput vs DataLoader" 90 "$PY" benchmarks/throughput.py --out "$NEW" "${THR[@]}"
    stage "evaluation speed by batch" 45 "$PY" benchmarks/eval_speed.py --out "$NEW" "${EVS[@]}"
    stage "pytest -m gpu: fused compile" 50 bash -c 'gpu_tests 45 "$@"' _ tests/train/test_fuse.py
    ;;
  speed)
    # Each network compiles anew (dynamo and AOTAutograd trace even with inductor's cache warm):
    # one batch size and 2 at once keep this to a few compilations.
    # (graph again first: the fused rows' baseline, measured in the same call on the same card)
    stage "speed: best cell, graph and fused" 135 "$PY" benchmarks/gpu_speed.py --cells best --batches 512 \
      --modes graph,fused,concurrent-fused --concurrent 2 --images 10240 --epochs 3 --out "$NEW" "${SPD[@]}"
    # (eager at seeds 0 and 1, each row kept as it is measured: their spread is the noise floor)
    stage "accuracy: eager, 10 epochs, seeds 0 and 1" 200 "$PY" benchmarks/gpu_speed.py --modes none --accuracy \
      --acc-modes eager --eager-seeds 0,1 --out "$NEW" "${SPD[@]}"
    stage "accuracy: graph, concurrent x2, fused, 10 epochs" 145 "$PY" benchmarks/gpu_speed.py --modes none \
      --accuracy --acc-modes graph,concurrent,fused --acc-concurrent 2 --out "$NEW" "${SPD[@]}"
    stage "speed: wide, deep, tiny cells, unfused" 70 "$PY" benchmarks/gpu_speed.py --cells wide,deep,tiny \
      --batches 512 --modes eager,graph,concurrent --images 10240 --epochs 2 --out "$NEW" "${SPD[@]}"
    ;;
  transfer)
    stage "final-training forecast per cell" 100 "$PY" benchmarks/final_forecast.py --out "$NEW" "${FFC[@]}"
    stage "transfer check top-k" 540 "$PY" benchmarks/transfer_check.py --modes top-k --keep-runs runs/transfer \
      --out "$NEW" "${TRF[@]}"
    ;;
  e2e60)
    stage "e2e 60 s, seeds 1,2" 340 "$PY" benchmarks/fashion_mnist_e2e.py --budgets 60 --seeds 1,2 \
      --rows "$OUT/rows-60-s12.jsonl" --out "$NEW" "${E2E[@]}"
    stage "e2e 60 s, seed 0, eager (before issue 5)" 170 "$PY" benchmarks/fashion_mnist_e2e.py --budgets 60 \
      --seeds 0 --methods nas --step-mode eager --rows "$OUT/rows-60-s0-eager.jsonl" --out "$NEW" "${E2E[@]}"
    ;;
  e2e480-nas-* | e2e480-resnet-*)
    method=${PACK#e2e480-}; seed=${method#*-}; method=${method%-*}
    stage "e2e 480 s, $method, seed $seed" 570 "$PY" benchmarks/fashion_mnist_e2e.py --budgets 480 --seeds "$seed" \
      --methods "$method" --progress --rows "$OUT/rows-480-$method-$seed.jsonl" --out "$NEW" "${E2E[@]}"
    ;;
esac

say ""
say "=== summary of pack $PACK ($(($(date +%s) - START))s; files in $OUT) ==="
for line in "${SUMMARY[@]}"; do say "  $line"; done
say "  files: $(cd "$OUT" && ls | tr '\n' ' ')"
say "  here: cat RESULTS.new.md >> benchmarks/RESULTS.md (never copy it over); rows-*.jsonl to benchmarks/rows/"
echo "--- tables and key lines from $LOG:"
grep -E "^\| |images/s|^accuracy |^  (NAS|ResNet)|^  \[|target >=|Error|error:|^(FAILED|ERROR) |PREFLIGHT|[0-9]+ (passed|failed|skipped)|cut off" "$LOG" \
  | grep -v "^===" | tail -60
