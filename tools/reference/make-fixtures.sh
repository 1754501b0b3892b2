#!/bin/sh
# Regenerates every golden fixture in tests/fixtures/ from the PyTorch reference scripts.
# Needs python3-torch, python3-pil, python3-torchvision and python3-scipy (tools/setup.sh --torch); runs with
# /usr/bin/python3.
set -e
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
for s in ref_*.py; do
  echo "== $s"
  "$PY" "$s"
done
echo "== ../make-layout-fixtures.py"
"$PY" ../make-layout-fixtures.py
