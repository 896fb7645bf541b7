#!/usr/bin/env bash
# Prepare what a device call carries for benchmarks/gpu_checks.sh, here (no device time spent):
#   .whl/   Optuna and what it needs that the GPU machine lacks, as wheels for its CPython 3.12
#   .data/  the data the pack reads: Fashion-MNIST (30 MB), the CIFAR-10 JPEG tarball (19.5 MB),
#           the NB201 table (3 MB)
# Both folders are ignored by git (.gitignore); a call ships at most 64 MiB in all, so only the data
# a pack needs is copied:  bash benchmarks/gpu_prepare.sh PACK   (default: core).
# Then:  device run  carry=[".whl", ".data"]  command="bash benchmarks/gpu_checks.sh PACK"
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${1:-core}

# The GPU image has tqdm, PyYAML, MarkupSafe, packaging, typing_extensions, numpy, Pillow, scipy,
# scikit-learn and pytest (the device tool's KINDS.md). Optuna 5 needs SQLAlchemy, alembic and
# colorlog; alembic needs Mako; SQLAlchemy 2.1 no longer needs greenlet.
WHEELS="optuna==5.0.0 SQLAlchemy==2.1.9 alembic==1.20.1 Mako==1.4.3 colorlog==6.12.0"
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl $WHEELS 2>&1 | grep -v "^WARNING: Location" || true

rm -rf .data
need_fm=0 need_cifar=0 need_table=0
case "$PACK" in
  core) need_fm=1 need_cifar=1 ;;
  speed) need_cifar=1 ;;
  transfer) need_fm=1 need_table=1 ;;
  e2e*) need_fm=1 ;;
  *) echo "unknown pack '$PACK'" >&2; exit 2 ;;
esac
FM_SRC=${FM_SRC:-/usr/share/datasets/fashion-mnist}
if [ $need_fm = 1 ]; then
  [ -e "$FM_SRC/train-images-idx3-ubyte.gz" ] || { echo "no Fashion-MNIST in $FM_SRC: apt-get install dataset-fashion-mnist" >&2; exit 1; }
  mkdir -p .data/fashion-mnist && cp "$FM_SRC"/*-ubyte.gz .data/fashion-mnist/
fi
[ $need_cifar = 1 ] && mkdir -p .data/cifar10 && cp ../shared/data/cifar10-jpeg.tar.gz .data/cifar10/
[ $need_table = 1 ] && mkdir -p .data/nb201 && cp ../shared/data/nb201/nats_tss_200ep_test.csv .data/nb201/

tree=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1)
carry=$(du -sb .whl .data | awk '{s += $1} END {print s}')
total=$(( (tree + carry) / 1048576 ))
echo "pack $PACK: working tree $((tree / 1048576)) MiB + .whl and .data $((carry / 1048576)) MiB = ${total} MiB (limit 64)"
[ $total -lt 64 ] || { echo "too large for one call: carry less" >&2; exit 1; }
