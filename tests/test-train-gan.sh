#!/bin/sh
# train_gan end to end (TAP): a tiny CLIP is pretrained on shapes for a few steps, then the tiny GALIP of
# tests/configs/gan-tiny.yaml and its RATLIP variant (rat + conv_shuffle slots) train for 6 steps. Checks: the
# outputs exist; losses are finite and move; a run stopped at step 3 and resumed ends with the same checkpoint
# bytes as an uninterrupted one; `ratfw sample` writes a grid; a diverging run stops naming the step and the loss
# term and keeps the last good checkpoint; configuration mistakes are reported before training. DF-GAN (pixel
# discriminator, feature mismatch) trains through the same task, and asking it for a CLIP similarity is refused.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
RATFW_PLUGIN_PATH="$B/plugins/.libs:$B/conditioners/.libs:$B/datasets/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
RATFW_QUIET_PLUGINS=1
export RATFW_PLUGIN_PATH RATFW_QUIET_PLUGINS
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-gan-XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -f "$T/err" ] && sed 's/^/# /' "$T/err" | tail -15; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }

D="tiny CLIP pretrained on shapes"
t "$R" run "$S/configs/cpu/clip-emoji.yaml" --set data.type=shapes --set data.train_size=512 --set data.test_size=64 \
  --set train.image_size=16 --set train.patch=4 --set train.vision_width=32 --set train.vision_layers=3 \
  --set train.vision_heads=2 --set train.text_width=32 --set train.text_layers=2 --set train.text_heads=2 \
  --set train.embed_dim=32 --set train.batch_size=32 --set train.steps=20 --out "$T/clip" --quiet 2>"$T/err"
C="$S/tests/configs/gan-tiny.yaml"
W="--set model.text_encoder.weights=$T/clip"
RATLIP="--set model.generator.adapter_fusion.type=rat --set model.generator.adapter_conv.type=conv_shuffle --set model.generator.block_conv.type=conv_shuffle"

for variant in galip ratlip; do
  V=""
  [ $variant = ratlip ] && V=$RATLIP
  D="$variant: 6 steps"; t "$R" run "$C" $W $V --out "$T/$variant" --quiet 2>"$T/err"
  D="$variant: checkpoint, samples, loss curve, metrics"
  t test -s "$T/$variant/checkpoint.safetensors" -a -s "$T/$variant/samples/step_0000006.png" -a -s "$T/$variant/losses.png" -a -s "$T/$variant/samples.txt"
  D="$variant: 6 finite metric lines whose D and G losses move"
  t awk '/"loss_d"/ { n++; d=$0; sub(/.*"loss_d": */, "", d); sub(/,.*/, "", d); g=$0; sub(/.*"loss_g": */, "", g); sub(/,.*/, "", g);
         if (d !~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ || g !~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/) bad = 1; if (n > 1 && (d != pd || g != pg)) moved++; pd = d; pg = g }
         END { exit !(n == 6 && !bad && moved >= 4) }' "$T/$variant/metrics.jsonl"
  D="$variant: first 3 steps"; t "$R" run "$C" $W $V --set train.steps=3 --out "$T/$variant-part" --quiet 2>"$T/err"
  D="$variant: resume to 6"; t "$R" run "$C" $W $V --out "$T/$variant-part" --resume --quiet 2>"$T/err"
  D="$variant: resumed checkpoint is bit-identical to the uninterrupted one"
  t cmp -s "$T/$variant/checkpoint.safetensors" "$T/$variant-part/checkpoint.safetensors"
done

# DF-GAN through the same task: pixel discriminator, feature mismatch, no CLIP similarity, 32 px (its minimum)
DF="--set model.generator=dfgan_generator --set model.generator.nf=4 --set model.generator.image_size=32
    --set model.discriminator=dfgan_discriminator --set model.discriminator.nf=2 --set model.discriminator.image_size=32
    --set train.mismatch=features --set train.sim_weight=0"
D="dfgan: 6 steps"; t "$R" run "$C" $W $DF --out "$T/dfgan" --quiet 2>"$T/err"
D="dfgan: 6 finite metric lines, samples of 32 px"
t sh -c "[ \$(grep -c '\"loss_d\"' '$T/dfgan/metrics.jsonl') = 6 ] && ! grep -qi 'nan\\|inf' '$T/dfgan/metrics.jsonl' && [ -s '$T/dfgan/samples/step_0000006.png' ]"
"$R" run "$C" $W $DF --set train.sim_weight=4 --out "$T/dfgan-sim" --quiet 2>"$T/err"; st=$?
D="dfgan with a CLIP similarity weight is refused with the fix named"; t sh -c "[ $st != 0 ] && grep -q 'sim_weight' '$T/err'"
D="dfgan: truncated-noise sampling is seeded and differs from plain N(0, I)"
t sh -c "'$R' sample '$T/dfgan' --caption 'a blue square' -n 3 --seed 2 --truncation 0.5 --out '$T/t1.png' >/dev/null 2>&1 &&
         '$R' sample '$T/dfgan' --caption 'a blue square' -n 3 --seed 2 --truncation 0.5 --out '$T/t2.png' >/dev/null 2>&1 &&
         '$R' sample '$T/dfgan' --caption 'a blue square' -n 3 --seed 2 --out '$T/t0.png' >/dev/null 2>&1 &&
         cmp -s '$T/t1.png' '$T/t2.png' && ! cmp -s '$T/t1.png' '$T/t0.png'"

D="ratfw sample writes a grid (2 captions x 3 images, train-mode normalisation)"
t "$R" sample "$T/ratlip" --caption "a small red circle at the top left on a blue background" --caption "a large green star" \
  -n 3 --mode train --seed 5 --out "$T/grid.png" 2>"$T/err"
D="sample grid is a PNG"; t sh -c "head -c 8 '$T/grid.png' | od -An -c | grep -q 'P   N   G'"
D="the same seed gives the same grid"
t sh -c "'$R' sample '$T/ratlip' --caption 'a large green star' -n 2 --seed 5 --out '$T/g1.png' >/dev/null 2>&1 &&
         '$R' sample '$T/ratlip' --caption 'a large green star' -n 2 --seed 5 --out '$T/g2.png' >/dev/null 2>&1 && cmp -s '$T/g1.png' '$T/g2.png'"
"$R" sample "$T/ratlip/checkpoint.safetensors" --caption x --out "$T/g3.png" >"$T/out" 2>"$T/err"; st=$?
D="sample: a checkpoint file without --experiment is a usage error"; t sh -c "[ $st = 2 ] && grep -q -- '--experiment' '$T/err'"

# divergence: resume a 3-step run with the CLIP adapter's bridge weight blown up, so the fake images overflow
"$R" run "$C" $W --set train.steps=3 --out "$T/nan" --quiet 2>"$T/err"
cp "$T/nan/checkpoint.safetensors" "$T/good.safetensors"
"$R" run "$C" $W --set model.generator.bridge_scale=1e38 --out "$T/nan" --resume --quiet 2>"$T/err"; st=$?
D="a diverging run exits 1 naming the step and the loss term"; t sh -c "[ $st = 1 ] && grep -q 'became .* at step 4' '$T/err'"
D="... and keeps its last good checkpoint"; t cmp -s "$T/nan/checkpoint.safetensors" "$T/good.safetensors"

"$R" run "$C" $W --set model.discriminator.taps=[0,5] --out "$T/bad" 2>"$T/err"; st=$?
D="a tap beyond the CLIP's blocks is a config error naming it"; t sh -c "[ $st != 0 ] && grep -q 'tap 5 but the CLIP has 3' '$T/err'"
"$R" run "$C" --out "$T/bad2" 2>"$T/err"; st=$?
# gan-tiny.yaml says `weights: none`, a path relative to the experiment file: the error names the module and the
# resolved path (a bare grep for 'none' would also match help text)
D="missing CLIP weights are reported with the path"
t sh -c "[ $st = 1 ] && grep -q 'text_encoder (clip_text): cannot open /.*/tests/configs/none: ' '$T/err'"
echo "1..$n"
