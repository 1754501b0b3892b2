#!/bin/sh
# Regenerates every golden fixture in tests/fixtures/ from the PyTorch reference scripts.
# Needs Debian's python3-torch (apt-get install python3-torch); runs with /usr/bin/python3.
set -e
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
for s in ref_*.py; do
  echo "== $s"
  "$PY" "$s"
done
