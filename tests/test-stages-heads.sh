#!/bin/sh
# Generator stages and discriminator heads end to end (TAP): a tiny CLIP is pretrained on shapes, then
#  - a mixed generator (stage 0 galip_block with affine fusion, stage 1 dfgan_block with cbn and conv_shuffle;
#    tests/configs/stages-mixed.yaml) trains 4 steps with finite, moving losses;
#  - GALIP's discriminator with the projection and the unconditional head, and DF-GAN's with the projection head,
#    train 3 steps each (the unconditional run logs no mismatch term and a finite MA-GP);
#  - bad stage lists are configuration errors with the stage's file:line:column: channels that do not chain, a
#    last size that is not the image size, a dfgan_block on a stage that does not double, a misspelt stage key;
#  - `ratfw inspect` lists the blocks and the head, `ratfw plugins` documents both kinds.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
RATFW_PLUGIN_PATH="$B/plugins/.libs:$B/conditioners/.libs:$B/datasets/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
RATFW_QUIET_PLUGINS=1
export RATFW_PLUGIN_PATH RATFW_QUIET_PLUGINS
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-stages-XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -f "$T/err" ] && sed 's/^/# /' "$T/err" | tail -15; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }
# finite metrics: N lines, every loss a number, D and G losses move from line to line at least M times
moving() {
  awk -v want="$2" -v need="$3" '/"loss_d"/ { n++; d=$0; sub(/.*"loss_d": */, "", d); sub(/,.*/, "", d); g=$0; sub(/.*"loss_g": */, "", g); sub(/,.*/, "", g);
      if (d !~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ || g !~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/) bad = 1; if (n > 1 && (d != pd || g != pg)) moved++; pd = d; pg = g }
      END { exit !(n == want && !bad && moved >= need) }' "$1"
}

D="tiny CLIP pretrained on shapes"
t "$R" run "$S/configs/cpu/clip-emoji.yaml" --set data.type=shapes --set data.train_size=256 --set data.test_size=32 \
  --set train.image_size=16 --set train.patch=4 --set train.vision_width=32 --set train.vision_layers=3 \
  --set train.vision_heads=2 --set train.text_width=32 --set train.text_layers=2 --set train.text_heads=2 \
  --set train.embed_dim=32 --set train.batch_size=32 --set train.steps=4 --out "$T/clip" --quiet 2>"$T/err"
W="--set model.text_encoder.weights=$T/clip"
C="$S/tests/configs"

D="mixed generator (galip_block + dfgan_block/cbn/conv_shuffle): 4 steps"
t "$R" run "$C/stages-mixed.yaml" $W --set train.steps=4 --out "$T/mixed" --quiet 2>"$T/err"
D="mixed generator: 4 finite metric lines whose losses move"; t moving "$T/mixed/metrics.jsonl" 4 3
"$R" inspect "$C/stages-mixed.yaml" $W >"$T/inspect" 2>"$T/err"
D="inspect shows each stage's block type with its output shape, the cbn of stage 1 and the NetC head"
t sh -c "grep -Eq '^  0 +galip_block +\\[1, 32, 8, 8\\]' '$T/inspect' && grep -Eq '^  1 +dfgan_block +\\[1, 16, 16, 16\\]' '$T/inspect' &&
         grep -Eq '^    affine0 +cbn +\\[1, 32, 16, 16\\]' '$T/inspect' && grep -Eq '^  joint_conv +galip_netc +\\[1\\]' '$T/inspect'"

for head in projection unconditional; do
  D="galip_discriminator with the $head head: 3 steps"
  t "$R" run "$C/gan-tiny.yaml" $W --set model.discriminator.head=$head --set train.steps=3 --out "$T/$head" --quiet 2>"$T/err"
  D="$head head: 3 finite metric lines whose losses move"; t moving "$T/$head/metrics.jsonl" 3 2
done
D="unconditional head: no mismatch term, a non-zero MA-GP"
t awk '/"loss_d"/ { m=$0; sub(/.*"d_mismatch": */, "", m); sub(/[,}].*/, "", m); g=$0; sub(/.*"ma_gp": */, "", g); sub(/[,}].*/, "", g);
       if (m + 0 != 0 || g + 0 <= 0) bad = 1; n++ } END { exit !(n == 3 && !bad) }' "$T/unconditional/metrics.jsonl"
DF="--set model.generator=dfgan_generator --set model.generator.nf=4 --set model.generator.image_size=32
    --set model.discriminator=dfgan_discriminator --set model.discriminator.nf=2 --set model.discriminator.image_size=32
    --set train.mismatch=features --set train.sim_weight=0 --set model.discriminator.head=projection"
D="dfgan_discriminator with the projection head: 3 steps"
t "$R" run "$C/gan-tiny.yaml" $W $DF --set train.steps=3 --out "$T/dfgan-proj" --quiet 2>"$T/err"
D="dfgan projection: 3 finite metric lines whose losses move"; t moving "$T/dfgan-proj/metrics.jsonl" 3 2

# configuration errors name the stage's file:line:column (validate dry-builds the generator)
err() {
  "$R" validate "$C/$1" $W >"$T/out" 2>"$T/err"; st=$?
  D="$1: exit 2 with '$2'"; t sh -c "[ $st = 2 ] && grep -qF -- \"\$1\" '$T/err'" sh "$2"
}
err stages-chain.yaml "$C/stages-chain.yaml:7:9: generator: stage 1: in is 64 but the previous stage's out gives 32 channels"
err stages-size.yaml "$C/stages-size.yaml:7:9: generator: stage 1: the last stage ends at 12 x 12 but the generator's image_size is 16"
err stages-dfgan.yaml "$C/stages-dfgan.yaml:6:9: generator: stage 0: generator.blocks.0: dfgan_block doubles its input (4) but the stage ends at 16"
err stages-keys.yaml "$C/stages-keys.yaml:6:19: model.generator (galip_generator): stage 0 of 'stages': unknown key 'sise' (did you mean 'size'?)"
err stages-keys.yaml "$C/stages-keys.yaml:7:9: model.generator (galip_generator): stage 1 of 'stages': expected a mapping {out: ..., block: ...}, got 16"

"$R" plugins galip_block >"$T/out" 2>"$T/err"
D="ratfw plugins galip_block documents the generator_block interface"
t sh -c "grep -q 'kind:    generator_block' '$T/out' && grep -q 'RatGeneratorBlockContext' '$T/out'"
"$R" plugins projection >"$T/out" 2>"$T/err"
D="ratfw plugins projection documents the discriminator_head interface"
t sh -c "grep -q 'kind:    discriminator_head' '$T/out' && grep -q 'RatDiscriminatorHeadContext' '$T/out'"
echo "1..$n"
