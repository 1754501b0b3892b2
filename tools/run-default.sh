#!/usr/bin/env bash
# Sets up, builds, and runs the default experiment (configs/cpu/text2shapes.yaml) into runs/text2shapes/.
# Samples appear in runs/text2shapes/samples.png (top row: targets, bottom row: generated) within a minute and
# improve as it runs; metrics in metrics.jsonl. Run it again to continue an interrupted run (Ctrl-C stops
# cleanly with a checkpoint). Extra arguments go to `ratfw run` (e.g. --set train.conditioner.type=rat).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
bash tools/setup.sh
[ -x configure ] && [ configure -nt configure.ac ] || ./autogen.sh >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || "$top/configure" -q
make -j"$(nproc)" >make.out 2>&1 || { tail -40 make.out; exit 1; }
cd "$top"
export RATFW_PLUGIN_PATH="$top/build/plugins/.libs:$top/build/conditioners/.libs:$top/build/datasets/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
out=runs/text2shapes
resume=()
if [ -d "$out" ]; then
  if [ -f "$out/DONE" ]; then
    out="runs/text2shapes-$(date +%Y%m%d-%H%M%S)"
  else
    resume=(--resume)
    echo "continuing the run in $out"
  fi
fi
exec build/tools/ratfw run configs/cpu/text2shapes.yaml --out "$out" "${resume[@]}" "$@"
