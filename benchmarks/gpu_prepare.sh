#!/usr/bin/env bash
# Prepare what a device call carries for benchmarks/gpu_checks.sh, here (no device time spent):
#   .whl/   Optuna and what it needs that the GPU machine lacks, as wheels for its CPython 3.12
#   .data/  the data the pack reads: Fashion-MNIST (30 MB), the CIFAR-10 JPEG tarball (19.5 MB),
#           the NB201 table (3 MB)
# Both folders are ignored by git (.gitignore); a call ships at most 64 MiB in all, so only the data
# a pack needs is copied:  bash benchmarks/gpu_prepare.sh PACK   (default: core).
# Then:  device run  carry=[".whl", ".data"]  command="bash benchmarks/gpu_checks.sh PACK"
#
# It fails (non-zero, with the reason on stderr) rather than leave a carry that would waste device
# time: a wheel that did not download, a wheel more or fewer than WHEELS names (two versions of one
# package make pip refuse the whole install there), data missing, or more than 64 MiB in all.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${1:-core}
SHARED_DATA=${SHARED_DATA:-../shared/data}  # the shared CIFAR-10 tarball and NB201 table
PY=${PYTHON:-python3}

fail() { echo "gpu_prepare: $*" >&2; exit 1; }

case "$PACK" in
  core | speed | transfer | e2e60 | e2e480-nas-* | e2e480-resnet-*) ;;
  *) echo "unknown pack '$PACK': core, speed, transfer, e2e60, e2e480-nas-S or e2e480-resnet-S" >&2; exit 2 ;;
esac

# The GPU image has tqdm, PyYAML, MarkupSafe, packaging, typing_extensions, numpy, Pillow, scipy,
# scikit-learn and pytest (the device tool's KINDS.md). Optuna 5 needs SQLAlchemy, alembic and
# colorlog; alembic needs Mako; SQLAlchemy 2.1 no longer needs greenlet.
# The versions CI's tests ran with (pip's newest on 2026-12-06: optuna 5.1.0 there, 5.0.0 was pinned here).
WHEELS=${WHEELS:-"optuna==5.1.0 SQLAlchemy==2.1.9 alembic==1.20.1 Mako==1.4.3 colorlog==6.12.0"}
# Cleared first: wheels of an earlier version left beside the new ones would make pip refuse them all.
rm -rf .whl
mkdir -p .whl
dl_log=$(mktemp)
trap 'rm -f "$dl_log"' EXIT
if ! "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl $WHEELS >"$dl_log" 2>&1; then
  grep -v "^WARNING: Location" "$dl_log" >&2 || true
  fail "pip download failed (above); .whl is incomplete: fix WHEELS or the network, then run this again"
fi
# Exactly one wheel per requirement, of the version asked for (wheel names normalise '-' to '_').
for req in $WHEELS; do
  name=${req%%==*} version=${req#*==}
  norm=$(echo "$name" | tr 'A-Z-' 'a-z_')
  found=$(find .whl -maxdepth 1 -type f -iname "${norm}-*.whl" | wc -l)
  [ "$found" -eq 1 ] || fail "expected one wheel for $name in .whl, found $found"
  find .whl -maxdepth 1 -type f -iname "${norm}-${version}-*.whl" | grep -q . \
    || fail "the wheel for $name in .whl is not version $version: $(ls .whl | grep -i "^${norm}-")"
done
n=$(find .whl -maxdepth 1 -type f -name "*.whl" | wc -l)
[ "$n" -eq "$(echo $WHEELS | wc -w)" ] || fail "expected $(echo $WHEELS | wc -w) wheels in .whl, found $n: $(ls .whl)"
echo "wheels: $(ls .whl | tr '\n' ' ')"

rm -rf .data
need_fm=0 need_cifar=0 need_table=0
case "$PACK" in
  core) need_fm=1 need_cifar=1 ;;
  speed) need_cifar=1 ;;
  transfer) need_fm=1 need_table=1 ;;
  e2e*) need_fm=1 ;;
esac
FM_SRC=${FM_SRC:-/usr/share/datasets/fashion-mnist}
if [ $need_fm = 1 ]; then
  [ -e "$FM_SRC/train-images-idx3-ubyte.gz" ] || fail "no Fashion-MNIST in $FM_SRC: apt-get install dataset-fashion-mnist"
  mkdir -p .data/fashion-mnist && cp "$FM_SRC"/*-ubyte.gz .data/fashion-mnist/
  [ "$(ls .data/fashion-mnist/*-ubyte.gz | wc -l)" -eq 4 ] || fail "expected 4 Fashion-MNIST IDX files in $FM_SRC"
fi
if [ $need_cifar = 1 ]; then
  [ -s "$SHARED_DATA/cifar10-jpeg.tar.gz" ] || fail "no CIFAR-10 tarball at $SHARED_DATA/cifar10-jpeg.tar.gz (set SHARED_DATA)"
  mkdir -p .data/cifar10 && cp "$SHARED_DATA/cifar10-jpeg.tar.gz" .data/cifar10/
fi
if [ $need_table = 1 ]; then
  [ -s "$SHARED_DATA/nb201/nats_tss_200ep_test.csv" ] || fail "no NB201 table at $SHARED_DATA/nb201/nats_tss_200ep_test.csv (set SHARED_DATA)"
  mkdir -p .data/nb201 && cp "$SHARED_DATA/nb201/nats_tss_200ep_test.csv" .data/nb201/
fi
mkdir -p .data  # (a pack that needs no data still carries the folder)

tree=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1)
carry=$(du -sb .whl .data | awk '{s += $1} END {print s}')
total=$(( (tree + carry) / 1048576 ))
echo "pack $PACK: working tree $((tree / 1048576)) MiB + .whl and .data $((carry / 1048576)) MiB = ${total} MiB (limit 64)"
[ $total -lt 64 ] || fail "too large for one call: carry less"
echo "ready: run(command=\"bash benchmarks/gpu_checks.sh $PACK\", carry=[\".whl\", \".data\"], timeout_s=600)"
