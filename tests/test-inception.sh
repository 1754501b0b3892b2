#!/bin/sh
# Inception-v3 FID extractors (TAP): the C networks (core/eval/inception.c) against torchvision's inception_v3 and
# pytorch-fid's FID-Inception (written in tools/reference/ref_inception.py) with random weights and randomised
# BatchNorm statistics, computed by PyTorch in float64, on a few images: pool3 features within 1e-4 of the largest
# feature (GALIP and standard preprocessing; pytorch-fid's); the padded pools alone; then through the CLI,
# `ratfw eval stats --extractor inception` gives finite 2048-d statistics, and bad weights are refused with the
# way to convert them. The weights (~100 MB each) are generated into a temporary directory, never committed.
# Exit 77 (skip) only when torch/torchvision cannot be imported.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
PY=/usr/bin/python3
RATFW_PLUGIN_PATH="$B/plugins/.libs:$B/conditioners/.libs:$B/datasets/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
RATFW_QUIET_PLUGINS=1
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-inception-XXXXXX")
HOME="$T/home"
XDG_CACHE_HOME="$T/cache"
export RATFW_PLUGIN_PATH RATFW_QUIET_PLUGINS XDG_CACHE_HOME HOME
trap 'rm -rf "$T"' EXIT
if ! "$PY" -c "import torch, torchvision" >/dev/null 2>&1; then
  echo "1..0 # SKIP torch/torchvision not importable by $PY"
  exit 77
fi
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -f "$T/err" ] && sed 's/^/# /' "$T/err" | tail -15; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }

D="reference: random torchvision and pytorch-fid Inception-v3, features in float64"
t "$PY" "$S/tools/reference/ref_inception.py" "$T" --images 2 --size 64 --pth 2>"$T/err"
D="the C extractors run on the same images"
t sh -c "'$B/tests/inception-features' '$T' >'$T/c.out' 2>'$T/err'"
sed 's/^/# /' "$T/c.out"

# compare NAME TOL: max |c - ref| <= TOL * max |ref| (prints the achieved error)
compare() {
  "$PY" - "$T" "$1" "$2" <<'PYEOF'
import json, os, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float32).reshape(v["shape"]).astype(np.float64)
    return out
d, name, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
ref, c = load(os.path.join(d, "data.safetensors"))[name], load(os.path.join(d, "c.safetensors"))[name]
if ref.shape != c.shape or not np.isfinite(c).all():
    print(f"# {name}: shape {c.shape} vs {ref.shape} or not finite"); sys.exit(1)
err = np.abs(c - ref).max() / np.abs(ref).max()
print(f"# {name}: max |C - torch| / max |torch| = {err:.3g} (tolerance {tol:g}); max |torch| = {np.abs(ref).max():.4g}")
sys.exit(0 if err <= tol else 1)
PYEOF
}
# Tolerance: measured errors are about 1e-6 (float32 through 94 convolutions against float64); 1e-4 as the issue
# asks leaves a margin of ~50x.
for k in tv.galip tv.standard fid.standard; do
  D="pool3 features $k within 1e-4 of PyTorch"
  t compare "$k" 1e-4
done
for k in pool.max_3_2_0 pool.max_3_1_1 pool.avg_incl_3_1_1 pool.avg_excl_3_1_1 pool.avg_excl_3_2_1; do
  D="$k matches torch (float32 sums of 9 terms: 1e-6)"
  t compare "$k" 1e-6
done

# Through the CLI: the statistics of 4 test images of tests/configs/gan-tiny.yaml (shapes) resized to 32 px.
TINY="--set data.test_size=4"
D="ratfw eval stats --extractor inception gives finite 2048-d statistics"
"$R" eval stats "$S/tests/configs/gan-tiny.yaml" $TINY --extractor inception --weights "$T/tv.safetensors" --size 32 \
  --allow-rank-deficient --no-cache --batch 8 --quiet --out "$T/s.npz" >"$T/s.out" 2>"$T/err"
t "$PY" -c "import numpy as np, sys; z = np.load('$T/s.npz'); mu, s = z['mu'], z['sigma']
sys.exit(0 if mu.shape == (2048,) and s.shape == (2048, 2048) and np.isfinite(mu).all() and np.isfinite(s).all()
         and np.abs(mu).max() > 0 else 1)"
D="... and with --extractor inception_fid and pytorch-fid's weights"
"$R" eval stats "$S/tests/configs/gan-tiny.yaml" $TINY --extractor inception_fid --weights "$T/fid.safetensors" --size 32 \
  --allow-rank-deficient --no-cache --batch 8 --quiet --out "$T/f.npz" >"$T/f.out" 2>"$T/err"
t "$PY" -c "import numpy as np, sys; z = np.load('$T/f.npz'); mu, s = z['mu'], z['sigma']
sys.exit(0 if mu.shape == (2048,) and s.shape == (2048, 2048) and np.isfinite(mu).all() and np.isfinite(s).all() else 1)"
D="the eval.fid section of an experiment selects the extractor (--set eval.fid.extractor=inception)"
"$R" eval stats "$S/tests/configs/gan-tiny.yaml" $TINY --set eval.fid.extractor=inception \
  --set "eval.fid.weights=$T/tv.safetensors" --size 32 --allow-rank-deficient --no-cache --batch 8 --quiet \
  --out "$T/s2.npz" \
  >"$T/s2.out" 2>"$T/err"
t cmp -s "$T/s.npz" "$T/s2.npz"  # same batch, so the same oneDNN kernels: the same bytes
D="tools/convert-inception.py turns the .pth into weights that give the same statistics"
"$PY" "$S/tools/convert-inception.py" "$T/tv.pth" "$T/conv.safetensors" >"$T/conv.out" 2>"$T/err" &&
  rm -f "$T/tv.pth" &&
  "$R" eval stats "$S/tests/configs/gan-tiny.yaml" $TINY --extractor inception --weights "$T/conv.safetensors" --size 32 \
    --allow-rank-deficient --no-cache --batch 8 --quiet --out "$T/s3.npz" >"$T/s3.out" 2>>"$T/err"
t sh -c "grep -q 'use extractor: inception\$' '$T/conv.out' && cmp -s '$T/s.npz' '$T/s3.npz'"
rm -f "$T/conv.safetensors"

D="no weights: an error that says how to convert them"
"$R" eval stats "$S/tests/configs/gan-tiny.yaml" $TINY --extractor inception --size 32 --no-cache --quiet --out "$T/x.npz" \
  >/dev/null 2>"$T/err"; st=$?
t sh -c "[ $st != 0 ] && grep -q 'needs weights' '$T/err' && grep -q 'convert-inception.py' '$T/err'"
D="a missing weights file names it and says how to convert"
"$R" eval stats "$S/tests/configs/gan-tiny.yaml" $TINY --extractor inception --weights "$T/nope.safetensors" --size 32 \
  --no-cache --quiet --out "$T/x.npz" >/dev/null 2>"$T/err"; st=$?
t sh -c "[ $st != 0 ] && grep -q 'nope.safetensors: no such file' '$T/err' && grep -q 'convert-inception.py' '$T/err'"
D="torchvision's weights given to inception_fid are refused (the fc's class count tells them apart)"
"$R" eval stats "$S/tests/configs/gan-tiny.yaml" $TINY --extractor inception_fid --weights "$T/tv.safetensors" --size 32 \
  --no-cache --quiet --out "$T/x.npz" >/dev/null 2>"$T/err"; st=$?
t sh -c "[ $st != 0 ] && grep -q 'use extractor inception' '$T/err'"
D="a file without the Inception tensors names the missing one"
"$R" eval stats "$S/tests/configs/gan-tiny.yaml" $TINY --extractor inception --weights "$T/data.safetensors" --size 32 \
  --no-cache --quiet --out "$T/x.npz" >/dev/null 2>"$T/err"; st=$?
t sh -c "[ $st != 0 ] && grep -q \"no tensor 'Conv2d_1a_3x3.conv.weight'\" '$T/err'"

echo "1..$n"
