#!/bin/sh
# The text2shapes task end to end (TAP): a short run writes samples, metrics and a checkpoint with a falling loss;
# a run interrupted after 20 steps and resumed to 40 ends with the same checkpoint bytes as an uninterrupted
# 40-step run; every conditioner type works in the slot.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
RATFW_PLUGIN_PATH="$B/plugins/.libs:$B/conditioners/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
RATFW_QUIET_PLUGINS=1
export RATFW_PLUGIN_PATH RATFW_QUIET_PLUGINS
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-t2s-XXXXXX")
trap 'rm -rf "$T"' EXIT
E="$S/configs/cpu/text2shapes.yaml"
SMALL="--set train.image_size=16 --set train.sample_every=20 --set train.checkpoint_every=20 --set train.log_every=20"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -f "$T/err" ] && sed 's/^/# /' "$T/err" | tail -15; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }

D="run 400 steps"; t "$R" run "$E" $SMALL --set train.steps=400 --out "$T/a" --quiet 2>"$T/err"
D="samples.png, samples.txt, checkpoint, tokenizer written"
t test -s "$T/a/samples.png" -a -s "$T/a/samples.txt" -a -s "$T/a/checkpoint.safetensors" -a -s "$T/a/tokenizer.json"
D="metrics.jsonl has 400 lines"; t test "$(wc -l <"$T/a/metrics.jsonl")" -eq 400
first=$(head -5 "$T/a/metrics.jsonl" | sed 's/.*"loss": *\([0-9.eE+-]*\).*/\1/' | awk '{s+=$1} END {print s/NR}')
last=$(tail -20 "$T/a/metrics.jsonl" | sed 's/.*"loss": *\([0-9.eE+-]*\).*/\1/' | awk '{s+=$1} END {print s/NR}')
echo "# mean loss of steps 1-5: $first, of steps 381-400: $last"
D="loss falls by at least half (first 5 steps $first, last 20 $last)"
t awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a * 0.5 && b == b) }'

D="uninterrupted 40 steps"; t "$R" run "$E" $SMALL --set train.steps=40 --out "$T/full" --quiet 2>"$T/err"
D="first 20 steps"; t "$R" run "$E" $SMALL --set train.steps=20 --out "$T/part" --quiet 2>"$T/err"
D="resume to 40 steps"; t "$R" run "$E" $SMALL --set train.steps=40 --out "$T/part" --resume --quiet 2>"$T/err"
D="resumed checkpoint is bit-identical to the uninterrupted one"
t cmp -s "$T/full/checkpoint.safetensors" "$T/part/checkpoint.safetensors"

for c in affine cin cbn rat "rat --set train.conditioner.recurrence=chained"; do
  D="conditioner slot: $c"
  t "$R" run "$E" $SMALL --set train.steps=3 --set train.conditioner.type=$c --out "$T/c$n" --quiet 2>"$T/err"
done
printf 'train:\n  conditioner:\n    type: rat\n    hidden: -2\n' >"$T/bad.yaml"
printf 'include: %s\n' "$E" >"$T/bad2.yaml"
cat "$T/bad.yaml" >>"$T/bad2.yaml"
"$R" validate "$T/bad2.yaml" >"$T/err" 2>&1
D="a bad conditioner argument in the slot is a config error with its line"; t grep -q "bad2.yaml:5:13: .*'hidden' = -2 is out of range" "$T/err"
echo "1..$n"
