#!/bin/sh
# Conditioners through the ratfw command (TAP): argument errors with file:line:column (h < 0, an unknown
# recurrence, channels not divisible by 2*groups), and `ratfw plugins --check` classifying every module as
# batch-dependent or batch-invariant as docs/conditioners.md states.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
C="$S/tests/configs"
RATFW_PLUGIN_PATH="$B/conditioners/.libs:$B/tests/plugins/good/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
RATFW_QUIET_PLUGINS=1
export RATFW_PLUGIN_PATH RATFW_QUIET_PLUGINS
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-cond-XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$T/out" | head -20; }
# expect DESCRIPTION STATUS TEXT COMMAND...: COMMAND exits with STATUS and its output contains TEXT
expect() {
  d=$1; want=$2; text=$3; shift 3
  "$@" >"$T/out" 2>&1
  got=$?
  if [ "$got" = "$want" ] && grep -qF -- "$text" "$T/out"; then ok "$d"; else echo "# exit $got, wanted $want"; notok "$d"; fi
}

expect "hidden < 0 is an error at its line" 2 \
  "$C/conditioner-errors.yaml:11:15: model.block (toy_block).cond (rat): 'hidden' = -1 is out of range [0, 65536]" \
  "$R" validate "$C/conditioner-errors.yaml"
expect "unknown recurrence is an error at its line" 2 \
  "$C/conditioner-errors.yaml:14:17: model.conditioner (rat): 'recurrence' = 'sideways' is not one of: batch_sequence, chained" \
  "$R" validate "$C/conditioner-errors.yaml"
expect "channels not divisible by 2*groups is an error at the block" 2 \
  "$C/shuffle-attention-errors.yaml:7:5: block (shuffle_attention): shuffle attention needs channels divisible by 2*groups, but channels = 12 and groups = 4" \
  "$R" validate "$C/shuffle-attention-errors.yaml"

for spec in "affine||training|invariant" "affine||eval|invariant" "cin||training|invariant" \
            "cbn||training|dependent" "cbn||eval|invariant" \
            "rat|recurrence=batch_sequence|training|dependent" "rat|recurrence=batch_sequence|eval|dependent" \
            "rat|recurrence=chained|training|invariant" "rat|hidden=0|training|invariant" \
            "shuffle_attention||training|invariant" "conv_shuffle||training|dependent" \
            "conv_shuffle||eval|invariant"; do
  IFS='|' read -r name arg mode verdict <<EOS
$spec
EOS
  if [ -n "$arg" ]; then set -- --arg "$arg"; else set --; fi
  expect "plugins --check $name $arg ($mode): batch-$verdict" 0 "$name ($mode mode): batch-$verdict" \
    "$R" plugins --check "$name" "$@"
done
expect "--check on a non-conditioner is refused" 2 "the batch-invariance check takes conditioners and blocks" \
  "$R" plugins --check fit_line
echo "1..$n"
