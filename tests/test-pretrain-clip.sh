#!/bin/sh
# pretrain_clip end to end on procedural shapes (no download) (TAP): the contrastive loss falls, held-out
# retrieval is logged, the run directory is a CLIP weights directory `ratfw clip encode` loads, and a run
# interrupted and resumed ends with the same checkpoint bytes as an uninterrupted one.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
RATFW_PLUGIN_PATH="$B/plugins/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
RATFW_QUIET_PLUGINS=1
export RATFW_PLUGIN_PATH RATFW_QUIET_PLUGINS
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-pc-XXXXXX")
trap 'rm -rf "$T"' EXIT
E="$S/configs/cpu/clip-emoji.yaml"
SMALL="--set data.type=shapes --set data.train_size=2048 --set data.test_size=64 --set train.image_size=16 --set train.patch=4 --set train.vision_width=32 --set train.vision_layers=2 --set train.vision_heads=2 --set train.text_width=32 --set train.text_layers=2 --set train.text_heads=2 --set train.embed_dim=32 --set train.batch_size=32 --set train.eval_every=40 --set train.checkpoint_every=20 --set train.lr=2e-3"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -f "$T/err" ] && sed 's/^/# /' "$T/err" | tail -15; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }

D="pretrain 120 steps on shapes"; t "$R" run "$E" $SMALL --set train.steps=120 --out "$T/a" --quiet 2>"$T/err"
D="model.safetensors, config.json, tokenizer.json, checkpoint written"
t test -s "$T/a/model.safetensors" -a -s "$T/a/config.json" -a -s "$T/a/tokenizer.json" -a -s "$T/a/checkpoint.safetensors"
loss() { sed -n "$1" "$T/a/metrics.jsonl" | grep '"loss"' | sed 's/.*"loss": *\([0-9.eE+-]*\).*/\1/' | awk '{s+=$1} END {print s/NR}'; }
first=$(loss '1,5p'); last=$(loss '100,125p')
echo "# mean contrastive loss, steps 1-5: $first; last 20 steps: $last (ln 32 = 3.47 at chance)"
D="contrastive loss falls by a quarter ($first -> $last)"; t awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a * 0.75 && b == b) }'
D="held-out retrieval logged"; t grep -q '"i2t_top5"' "$T/a/metrics.jsonl"
"$R" clip encode --weights "$T/a" --vocab "$T/a/tokenizer.json" --text "a small red circle at the top left on a blue background" --out "$T/e.safetensors" >"$T/err" 2>&1
D="ratfw clip encode loads the pretrained run"; t test -s "$T/e.safetensors"
D="uninterrupted 40 steps"; t "$R" run "$E" $SMALL --set train.steps=40 --out "$T/full" --quiet 2>"$T/err"
D="first 20 steps"; t "$R" run "$E" $SMALL --set train.steps=20 --out "$T/part" --quiet 2>"$T/err"
D="resume to 40"; t "$R" run "$E" $SMALL --set train.steps=40 --out "$T/part" --resume --quiet 2>"$T/err"
D="resumed checkpoint is bit-identical"; t cmp -s "$T/full/checkpoint.safetensors" "$T/part/checkpoint.safetensors"
echo "1..$n"
