#!/bin/sh
# ratfw eval end to end (TAP) on a tiny GALIP trained a few steps on shapes with a tiny pretrained CLIP: results.json
# has the fields docs/evaluation.md and the ablate contract name, its values are finite and the same seed reproduces
# them; the eval: section of a run's experiment sets the defaults; `eval fid` on the generated statistics and the
# cached reference gives the FID results.json holds; `eval stats` reuses its cache; bad requests exit 2 (usage) and
# a refused measurement exits 1, each with the reason.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
PY=/usr/bin/python3
RATFW_PLUGIN_PATH="$B/plugins/.libs:$B/conditioners/.libs:$B/datasets/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
RATFW_QUIET_PLUGINS=1
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-eval-XXXXXX")
XDG_CACHE_HOME="$T/cache"
export RATFW_PLUGIN_PATH RATFW_QUIET_PLUGINS XDG_CACHE_HOME
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -f "$T/err" ] && sed 's/^/# /' "$T/err" | tail -15; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }
# json FILE EXPR: a Python expression on the parsed file (j) must be true; json2 A B EXPR: on two files (a, b)
json() { "$PY" -c "import json, math, sys; j = json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }
json2() { "$PY" -c "import json, sys; a, b = (json.load(open(f)) for f in sys.argv[1:3]); sys.exit(0 if ($3) else 1)" "$1" "$2"; }

D="tiny CLIP pretrained on shapes"
t "$R" run "$S/configs/cpu/clip-emoji.yaml" --set data.type=shapes --set data.train_size=512 --set data.test_size=64 \
  --set train.image_size=16 --set train.patch=4 --set train.vision_width=32 --set train.vision_layers=3 \
  --set train.vision_heads=2 --set train.text_width=32 --set train.text_layers=2 --set train.text_heads=2 \
  --set train.embed_dim=32 --set train.batch_size=32 --set train.steps=20 --out "$T/clip" --quiet 2>"$T/err"
D="tiny GALIP: 6 steps"
t "$R" run "$S/tests/configs/gan-tiny.yaml" --set model.text_encoder.weights="$T/clip" --out "$T/run" --quiet 2>"$T/err"

# The test split of gan-tiny has 16 items and the CLIP 32-d embeddings: the reference comes from the train split.
E="--samples 40 --batch 16 --set eval.fid.reference_split=train"
D="eval writes results.json and prints the table"
t sh -c "'$R' eval '$T/run' $E >'$T/out' 2>'$T/err' && grep -q '^fid ' '$T/out' && test -s '$T/run/eval/results.json'"
J="$T/run/eval/results.json"
D="results.json has the contract's fields"
t json "$J" "j['format'] == 'ratfw-eval/1' and j['ratfw_version'] and j['run'] == '$T/run' and
  j['checkpoint'] == '$T/run/checkpoint.safetensors' and j['step'] == 6 and j['wall_seconds'] > 0 and
  len(j['protocol_hash']) == 64 and set(j['metrics']) == set(j['higher_is_better'])"
D="metrics: auto on shapes computes FID, CLIP score, R-precision and shapes accuracy, all finite"
t json "$J" "{'fid', 'clip_score', 'r_precision_top1', 'r_precision_top5', 'shapes_accuracy', 'shapes_accuracy_kind',
  'shapes_accuracy_color', 'shapes_accuracy_position'} <= set(j['metrics']) and
  all(isinstance(v, float) and math.isfinite(v) for v in j['metrics'].values()) and
  j['higher_is_better']['fid'] is False and j['higher_is_better']['clip_score'] is True and j['metrics']['fid'] >= 0 and
  0 <= j['metrics']['r_precision_top1'] <= j['metrics']['r_precision_top5'] <= 1"
D="the protocol records samples, seed, batch, split, mode and the FID's extractor, weights and reference"
t json "$J" "j['protocol']['samples'] == 40 and j['protocol']['seed'] == 0 and j['protocol']['batch'] == 16 and
  j['protocol']['split'] == 'test' and j['protocol']['mode'] == 'eval' and
  j['protocol']['metrics']['fid']['extractor'] == 'clip:embedding' and
  j['protocol']['metrics']['fid']['weights'] == '$T/clip/model.safetensors' and
  len(j['protocol']['metrics']['fid']['weights_sha256']) == 64 and
  len(j['protocol']['metrics']['fid']['reference_sha256']) == 64 and
  'train split' in j['protocol']['metrics']['fid']['reference']"
"$R" eval "$T/run" $E --out "$T/again.json" --quiet >/dev/null 2>"$T/err"
D="the same seed reproduces every value"
t json2 "$J" "$T/again.json" "a['metrics'] == b['metrics'] and a['protocol_hash'] == b['protocol_hash']"
"$R" eval "$T/run" $E --seed 5 --metrics fid,clip_score --out "$T/seed5.json" --quiet >/dev/null 2>"$T/err"
D="another seed gives other images (other values, another protocol hash); --metrics selects"
t json2 "$J" "$T/seed5.json" "a['metrics']['fid'] != b['metrics']['fid'] and a['protocol_hash'] != b['protocol_hash']
  and set(b['metrics']) == {'fid', 'clip_score'}"

D="eval fid on the generated statistics and the cached reference gives the FID of results.json"
REF=$(ls "$T"/cache/ratfw/fid-stats/*.npz 2>/dev/null | head -1)
"$R" eval fid "$T/run/eval/fid_stats.npz" "$REF" >"$T/fid.out" 2>"$T/err"
t json "$J" "abs(float(open('$T/fid.out').read().split()[-1]) - j['metrics']['fid']) <= 1e-12 * max(1, j['metrics']['fid'])"

D="the eval: section of the run's experiment sets the defaults"
cp -r "$T/run" "$T/run2"
printf 'eval:\n  samples: 24\n  batch: 8\n  metrics: clip_score,shapes_accuracy\n' >>"$T/run2/resolved.yaml"
"$R" eval "$T/run2" --quiet >/dev/null 2>"$T/err"
t json "$T/run2/eval/results.json" "j['protocol']['samples'] == 24 and j['protocol']['batch'] == 8 and
  'fid' not in j['metrics'] and 'clip_score' in j['metrics']"
D="... and a flag overrides it"
"$R" eval "$T/run2" --samples 16 --quiet >/dev/null 2>"$T/err"
t json "$T/run2/eval/results.json" "j['protocol']['samples'] == 16"

D="eval stats computes the reference of a run's data and a second call reads the cache"
XDG_CACHE_HOME="$T/cache2" "$R" eval stats "$T/run" --split train --out "$T/s1.npz" >"$T/s1.out" 2>"$T/err"
XDG_CACHE_HOME="$T/cache2" "$R" eval stats "$T/run" --split train --out "$T/s2.npz" >"$T/s2.out" 2>>"$T/err"
t sh -c "! grep -q 'from the cache' '$T/s1.out' && grep -q 'from the cache' '$T/s2.out' && cmp -s '$T/s1.npz' '$T/s2.npz' && test -s '$T/cache2/ratfw/fid-stats/'*.txt"
D="... and it is the reference ratfw eval used (their FID is 0 to round-off: below 1e-6 Tr(S))"
"$R" eval fid "$T/s1.npz" "$REF" >"$T/fid0.out" 2>"$T/err"
t "$PY" -c "import re, sys; t = open('$T/fid0.out').read(); tr = float(re.search(r'Tr\(S1\) (\S+)', t).group(1));
sys.exit(0 if abs(float(t.split()[-1])) < 1e-6 * tr else 1)"

"$R" eval "$T/run" --samples 40 --quiet >"$T/out" 2>"$T/err"; st=$?
D="too few reference images for the feature width is refused (exit 1) with the reason"
t sh -c "[ $st = 1 ] && grep -q 'rank at most 15 < 32' '$T/err' && grep -q 'reference_split=train' '$T/err'"
"$R" eval "$T/run" --metrics fid,nope --quiet >"$T/out" 2>"$T/err"; st=$?
D="an unknown metric is a usage error listing the installed ones"
t sh -c "[ $st = 2 ] && grep -q \"unknown metric type 'nope'\" '$T/err' && grep -q 'shapes_accuracy' '$T/err'"
"$R" eval "$T/nothing" >"$T/out" 2>"$T/err"; st=$?
D="a missing run is a usage error"; t sh -c "[ $st = 2 ] && grep -q 'no such run directory' '$T/err'"
"$R" eval "$T/run" --samples 0 >"$T/out" 2>"$T/err"; st=$?
D="--samples 0 is a usage error"; t sh -c "[ $st = 2 ]"
"$R" eval "$T/run" --set eval.fid.extractor=nope >"$T/out" 2>"$T/err"; st=$?
D="a bad eval setting is a config error with file:line:column"; t sh -c "[ $st = 2 ] && grep -q -- '--set.*extractor' '$T/err'"

echo "1..$n"
