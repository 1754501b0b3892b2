#!/bin/sh
# train_gan's periodic evaluation (train.eval_every) on the tiny GALIP of tests/configs/gan-tiny.yaml (TAP): the
# metrics.jsonl records at the period and at the end, RUN/eval/step_N.json and the loss plot; the training is not
# disturbed (the checkpoint after 6 steps is bit-identical to a run without evaluation, also with EMA weights and
# with G evaluated in train mode, which moves batch-norm statistics); a run stopped at step 3 and resumed ends with
# the same checkpoint and the same metric values as the uninterrupted one.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
PY=/usr/bin/python3
RATFW_PLUGIN_PATH="$B/plugins/.libs:$B/conditioners/.libs:$B/datasets/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
RATFW_QUIET_PLUGINS=1
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-train-eval-XXXXXX")
HOME="$T"
XDG_CACHE_HOME="$T/cache"
export RATFW_PLUGIN_PATH RATFW_QUIET_PLUGINS HOME XDG_CACHE_HOME
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -f "$T/err" ] && sed 's/^/# /' "$T/err" | tail -15; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }
# evals FILE EXPR: EXPR (Python) on r, the list of metrics.jsonl records that hold "eval_seconds"
evals() {
  "$PY" -c "import json, math, sys; r = [j for j in map(json.loads, open(sys.argv[1])) if 'eval_seconds' in j]
sys.exit(0 if ($2) else 1)" "$1"
}

D="tiny CLIP pretrained on shapes"
t "$R" run "$S/configs/cpu/clip-emoji.yaml" --set data.type=shapes --set data.train_size=512 --set data.test_size=64 \
  --set train.image_size=16 --set train.patch=4 --set train.vision_width=32 --set train.vision_layers=3 \
  --set train.vision_heads=2 --set train.text_width=32 --set train.text_layers=2 --set train.text_heads=2 \
  --set train.embed_dim=32 --set train.batch_size=32 --set train.steps=20 --out "$T/clip" --quiet 2>"$T/err"
C="$S/tests/configs/gan-tiny.yaml"
W="--set model.text_encoder.weights=$T/clip"
# 40 samples of the 32-d CLIP features; the test split has 16 items, so the FID reference is the train split
E="--set train.eval_every=2 --set train.eval_samples=40 --set eval.batch=16 --set eval.fid.reference_split=train"

D="without evaluation: 6 steps"; t "$R" run "$C" $W --out "$T/off" --quiet 2>"$T/err"
D="with eval_every 2: 6 steps"; t "$R" run "$C" $W $E --out "$T/on" --quiet 2>"$T/err"
D="the weights (the whole checkpoint) are bit-identical to the run without evaluation"
t cmp -s "$T/off/checkpoint.safetensors" "$T/on/checkpoint.safetensors"
D="the training loss records are the same too"
t "$PY" -c "import json, sys
a, b = ([{k: v for k, v in j.items() if k not in ('time', 'step_time')} for j in map(json.loads, open(f)) if 'loss_d' in j]
        for f in sys.argv[1:3])
sys.exit(0 if a == b and len(a) == 6 else 1)" "$T/off/metrics.jsonl" "$T/on/metrics.jsonl"
D="eval records at steps 2, 4, 6 with FID, CLIP score, R-precision, shapes accuracy, finite, 40 samples"
t evals "$T/on/metrics.jsonl" "[j['step'] for j in r] == [2, 4, 6] and all({'fid', 'clip_score', 'r_precision_top1',
  'shapes_accuracy'} <= set(j) and all(math.isfinite(j[k]) for k in ('fid', 'clip_score', 'r_precision_top1')) and
  j['eval_samples'] == 40 and j['eval_seconds'] > 0 for j in r)"
D="RUN/eval/step_N.json holds the same values and the protocol, the log says it, losses.png is written"
t "$PY" -c "import json, sys
d = sys.argv[1]
recs = {j['step']: j for j in map(json.loads, open(d + '/metrics.jsonl')) if 'eval_seconds' in j}
for s in (2, 4, 6):
    e = json.load(open('%s/eval/step_%07d.json' % (d, s)))
    assert e['step'] == s and e['protocol']['samples'] == 40, e
    assert all(abs(v - recs[s][k]) <= 1e-8 * max(1, abs(v)) for k, v in e['metrics'].items()), (e, recs[s])
assert 'eval at step 6 (40 samples' in open(d + '/log.txt').read()
" "$T/on" 2>"$T/err" && test -s "$T/on/losses.png"
D="the metrics differ between steps (the model changes)"
t evals "$T/on/metrics.jsonl" "r[0]['fid'] != r[2]['fid']"

D="EMA weights, eval in train mode (batch statistics): 6 steps each way"
t sh -c "'$R' run '$C' $W --set train.ema=0.9 --out '$T/ema-off' --quiet 2>'$T/err' &&
  '$R' run '$C' $W $E --set train.ema=0.9 --set eval.mode=train --out '$T/ema-on' --quiet 2>>'$T/err'"
D="... still bit-identical"; t cmp -s "$T/ema-off/checkpoint.safetensors" "$T/ema-on/checkpoint.safetensors"
D="... and the evaluation recorded EMA and train mode"
t "$PY" -c "import json, sys; e = json.load(open(sys.argv[1]))
sys.exit(0 if e['protocol']['ema'] is True and e['protocol']['mode'] == 'train' else 1)" "$T/ema-on/eval/step_0000006.json"

D="resume: first 3 steps with evaluation"
t "$R" run "$C" $W $E --set train.steps=3 --out "$T/part" --quiet 2>"$T/err"
D="resume: to 6"; t "$R" run "$C" $W $E --out "$T/part" --resume --quiet 2>"$T/err"
D="the resumed checkpoint is bit-identical to the uninterrupted one"
t cmp -s "$T/on/checkpoint.safetensors" "$T/part/checkpoint.safetensors"
D="the resumed run evaluated at 2, 3 (its end), then 4 and 6, with the uninterrupted run's values at 2, 4 and 6"
t "$PY" -c "import json, sys
a, b = ({j['step']: {k: v for k, v in j.items() if k not in ('time', 'eval_seconds')} for j in map(json.loads, open(f))
         if 'eval_seconds' in j} for f in sys.argv[1:3])
steps = [j['step'] for j in map(json.loads, open(sys.argv[2])) if 'eval_seconds' in j]
sys.exit(0 if steps == [2, 3, 4, 6] and all(a[s] == b[s] for s in (2, 4, 6)) else 1)" "$T/on/metrics.jsonl" "$T/part/metrics.jsonl"

D="eval_every with an impossible evaluation stops the run naming the setting"
"$R" run "$C" $W --set train.eval_every=2 --set train.eval_samples=8 --set eval.metrics=fid --out "$T/bad" --quiet \
  >/dev/null 2>"$T/err"
st=$?
if [ $st -eq 1 ] && grep -q "train.eval_every: the evaluation at step 2 failed" "$T/err"; then ok "$D"; else notok "$D (exit $st)"; fi
echo "1..$n"
