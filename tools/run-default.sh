#!/usr/bin/env bash
# Sets up (Debian packages, npm, the emoji dataset), builds, and runs the default experiment
# (configs/cpu/ratlip-emoji.yaml: RATLIP at CPU scale on the Noto emoji) into runs/ratlip-emoji/. It first
# pretrains the small CLIP it needs (configs/cpu/clip-emoji.yaml, about 4-5 minutes, once), then trains the GAN:
# the first sample grid is runs/ratlip-emoji/samples.png a minute or two later, rewritten every 200 steps (one
# caption per row); the loss curve is losses.png, metrics in metrics.jsonl. Run it again to continue an
# interrupted run (Ctrl-C stops cleanly with a checkpoint). Extra arguments go to `ratfw run`
# (e.g. --set model.generator.adapter_fusion.recurrence=chained).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
bash tools/setup.sh --emoji
[ -x configure ] && [ configure -nt configure.ac ] || ./autogen.sh >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || "$top/configure" -q
make -j"$(nproc)" >make.out 2>&1 || { tail -40 make.out; exit 1; }
cd "$top"
export RATFW_PLUGIN_PATH="$top/build/plugins/.libs:$top/build/conditioners/.libs:$top/build/datasets/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
out=runs/ratlip-emoji
resume=()
if [ -d "$out" ]; then
  if [ -f "$out/DONE" ]; then
    out="runs/ratlip-emoji-$(date +%Y%m%d-%H%M%S)"
  else
    resume=(--resume)
    echo "continuing the run in $out"
  fi
fi
exec build/tools/ratfw run configs/cpu/ratlip-emoji.yaml --out "$out" "${resume[@]}" "$@"
