#!/bin/sh
# `ratfw clip encode` (TAP) on the project's small CLIP fixture written as a Hugging Face weights directory with a
# word tokenizer: output tensors and shapes, taps, identical embeddings for identical inputs, and errors.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-clipcli-XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$T/out" | head -8; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }

mkdir -p "$T/w"
cp "$S/tests/fixtures/clip_small_hf.safetensors" "$T/w/model.safetensors"
echo '{"vision_config": {"num_attention_heads": 3}, "text_config": {"num_attention_heads": 3}}' >"$T/w/config.json"
echo '{"format":"ratfw-words","version":1,"context":12,"words":["<pad>","<sot>","<eot>","<unk>","a","red","blue","circle","square"]}' >"$T/words.json"
python3 - "$T/img.png" <<'PY'
import struct, sys, zlib
w = h = 16
raw = b"".join(b"\x00" + bytes(v for x in range(w) for v in (x * 16 % 256, y * 16 % 256, (x + y) * 8 % 256)) for y in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
# shapes from the safetensors header (python3 only, no torch)
shapes() {
  python3 - "$1" <<'PY'
import json, struct, sys
f = open(sys.argv[1], "rb")
n = struct.unpack("<Q", f.read(8))[0]
h = json.loads(f.read(n))
print(" ".join(f"{k}={'x'.join(map(str, v['shape']))}" for k, v in sorted(h.items()) if k != "__metadata__"))
PY
}
"$R" clip encode --weights "$T/w" --vocab "$T/words.json" --text "a red circle" --text "a blue square" \
  --image "$T/img.png" --image "$T/img.png" --taps 0,2 --out "$T/emb.safetensors" >"$T/out" 2>&1
rc=$?
D="clip encode exits 0"; t test $rc -eq 0
shapes "$T/emb.safetensors" >"$T/out"
D="text_embeds [2,16], image_embeds [2,16], taps [2,17,24]"
t grep -qx "image_embeds=2x16 image_tap.0=2x17x24 image_tap.2=2x17x24 text_embeds=2x16 text_ids=2x12" "$T/out"
python3 - "$T/emb.safetensors" >"$T/out" <<'PY'
import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); base = 8 + n
def get(k):
    a, b = h[k]["data_offsets"]; f.seek(base + a); d = f.read(b - a)
    return struct.unpack("<%df" % (len(d) // 4), d)
img, txt = get("image_embeds"), get("text_embeds")
print("same" if img[:16] == img[16:] else "differ", "distinct" if txt[:16] != txt[16:] else "equal")
PY
D="identical images embed identically, different captions differently"; t grep -qx "same distinct" "$T/out"
"$R" clip encode --weights "$T/w" --image "$T/img.png" --transform standard --out "$T/std.safetensors" >"$T/out" 2>&1 &&
  python3 - "$T/emb.safetensors" "$T/std.safetensors" >"$T/out" <<'PY'
import json, struct, sys
def get(p, k):
    f = open(p, "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n))
    a, b = h[k]["data_offsets"]; f.seek(8 + n + a); d = f.read(b - a)
    return struct.unpack("<%df" % (len(d) // 4), d)
g, s = get(sys.argv[1], "image_embeds")[:16], get(sys.argv[2], "image_embeds")
print("differ" if len(s) == 16 and max(abs(x - y) for x, y in zip(g, s)) > 1e-3 else "same")
PY
D="--transform standard: runs, and embeds differently from galip (no second (v+1)/2 mapping)"
t grep -qx differ "$T/out"
"$R" clip encode --weights "$T/nope" --text x --out "$T/e2.safetensors" >"$T/out" 2>&1
rc=$?
D="missing weights: exit 1 naming the file"; t sh -c "[ $rc -eq 1 ] && grep -q 'nope' '$T/out'"
"$R" clip encode --weights "$T/w" --image "$T/img.png" --taps 2,1 --out "$T/e3.safetensors" >"$T/out" 2>&1
rc=$?
D="decreasing --taps is a usage error"; t sh -c "[ $rc -eq 2 ] && grep -q 'increasing' '$T/out'"
"$R" clip encode --weights "$T/w" --out "$T/e4.safetensors" >"$T/out" 2>&1
rc=$?
D="nothing to embed is a usage error"; t test $rc -eq 2
RATFW_PLUGIN_PATH="$B/plugins/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
export RATFW_PLUGIN_PATH
cp "$T/words.json" "$T/w/tokenizer.json"
printf 'seed: 1\nmodel:\n  text_encoder:\n    type: clip_text\n    weights: w\n  image_encoder:\n    type: clip_image\n    weights: w\n' >"$T/exp.yaml"
"$R" inspect "$T/exp.yaml" >"$T/out" 2>&1
D="inspect: clip_text and clip_image modules with the file's 40105 frozen parameters"
t sh -c "grep -Eq '^text_encoder +clip_text +\[1, 16\] +0 +40105 ' '$T/out' && grep -Eq '^image_encoder +clip_image +\[1, 16\] +0 +40105 ' '$T/out'"
printf 'seed: 1\nmodel:\n  image_encoder:\n    type: clip_image\n    weights: w\n    transform: bicubic\n' >"$T/bad.yaml"
"$R" validate "$T/bad.yaml" >"$T/out" 2>&1
D="an unknown transform is a config error with its line"; t grep -q "bad.yaml:6:16: .*'transform' = 'bicubic' is not one of: galip, standard" "$T/out"
echo "1..$n"
