#!/bin/sh
# Every shipped experiment (configs/**/*.yaml) validates against the built plugins (TAP), and `ratfw inspect` of
# the paper configs gives the parameter counts that the PyTorch reference (tools/reference/ref_gan.py at full size)
# gives for the same modules (docs/models.md). CLIP weights are not shipped: the text encoder is built as a
# random ViT-B/32 of the same architecture (--set ...architecture=vit-b32), which leaves every count unchanged.
# configs/paper/base/ holds the included bases; they are validated through the files that include them. Sweeps
# (configs/ablations/, `base:`) validate every variant the same way.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-configs-XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$T/out" | tail -8; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }
A="--set model.text_encoder.weights= --set model.text_encoder.architecture=vit-b32"
for f in $(cd "$S" && find configs -name '*.yaml' -not -path '*/runs/*' -not -path '*/base/*' | sort); do
  if grep -q "^task: train_gan\|^include:\|^base:" "$S/$f" && ! grep -q "^task: pretrain_clip\|^task: text2shapes" "$S/$f"; then
    "$R" validate "$S/$f" $A >"$T/out" 2>&1
  else
    "$R" validate "$S/$f" >"$T/out" 2>&1
  fi
  D="$f validates"; t test $? -eq 0
done
# generator and discriminator learnable parameters: ratfw inspect vs the PyTorch reference's count
check() {
  "$R" inspect "$S/configs/paper/$1-cub.yaml" $A >"$T/out" 2>&1
  g=$(awk '$1 == "generator" {print $(NF-2)}' "$T/out")
  d=$(awk '$1 == "discriminator" {print $(NF-2)}' "$T/out")
  D="$1: G $g (reference $2), D $d (reference $3) learnable parameters"; t test "$g $d" = "$2 $3"
}
check galip 51830211 30806021
check ratlip 53771379 30806021
check dfgan 12005123 7062598
echo "1..$n"
