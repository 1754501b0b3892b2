#!/bin/sh
# Runs the ops benchmark in ratfw (bench/bench-ops, built by `make bench`) and in PyTorch (bench/bench_ops.py) at the
# same thread count and prints one table: time and GFLOP/s of each, and speed-up = torch time / ratfw time (> 1:
# ratfw faster). Usage: bench/run-bench-ops.sh [BUILDDIR] [--quick]; OMP_NUM_THREADS defaults to 2.
# The machines are shared: run it twice and trust only what repeats.
set -e
here=$(cd "$(dirname "$0")" && pwd)
builddir=.
quick=
for a in "$@"; do
  case "$a" in
  --quick) quick=--quick ;;
  *) builddir=$a ;;
  esac
done
bin=${BENCH_OPS_BIN:-$builddir/bench/bench-ops}
if [ ! -x "$bin" ]; then
  echo "run-bench-ops.sh: $bin not found: run 'make bench' in the build directory first" >&2
  exit 1
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" --tsv $quick >"$tmp/rat.tsv"
"$PY" "$here/bench_ops.py" --tsv $quick >"$tmp/torch.tsv"
echo "ops benchmark, $OMP_NUM_THREADS threads, best of repeats (ms); speed-up = torch ms / ratfw ms"
awk -F'\t' '
  NR == FNR { key = $1 "|" $2; tms[key] = $3; tgf[key] = $4; next }
  FNR == 1 {
    printf "%-20s %-30s %10s %8s %10s %8s %8s\n", "op", "shape", "ratfw ms", "GFLOP/s", "torch ms", "GFLOP/s", "speed-up"
  }
  {
    key = $1 "|" $2
    if (key in tms)
      printf "%-20s %-30s %10.3f %8.1f %10.3f %8.1f %8.2f\n", $1, $2, $3, $4, tms[key], tgf[key], tms[key] / $3
    else
      printf "%-20s %-30s %10.3f %8.1f %10s %8s %8s\n", $1, $2, $3, $4, "-", "-", "-"
  }' "$tmp/torch.tsv" "$tmp/rat.tsv"
