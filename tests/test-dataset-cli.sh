#!/bin/sh
# `ratfw dataset info|preview|fetch` (TAP) on the layout fixtures (tools/make-layout-fixtures.py), the procedural
# shapes, and Fashion-MNIST / emoji when they are installed: split counts, caption statistics, a corrupt image
# named, the contact sheet's size, and exit status 2 with a clear message for bad requests.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
F="$S/tests/fixtures/layouts"
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-dscli-XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$T/out" | head -8; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }
# PNG width and height from the IHDR chunk.
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}'; }

"$R" dataset info cub --set root="$F/birds" >"$T/out" 2>&1
D="cub info: split sizes from the pickles"; t sh -c "grep -q '^train: 4 items' '$T/out' && grep -q '^test: 2 items' '$T/out'"
D="cub info: captions per item (empty lines dropped)"; t grep -q "captions: 12 (3..3 per item" "$T/out"
D="cub info: cropped image sizes"; t grep -q "width 30..37, height 27..34" "$T/out"

"$R" dataset info oxford --set root="$F/flower" >"$T/out" 2>&1
D="oxford info names the corrupt image"; t grep -q "unreadable: 1 of 2; first: .*image_00005.jpg" "$T/out"

cat >"$T/exp.yaml" <<YAML
seed: 1
data:
  type: faces
  root: $F/faces
YAML
"$R" dataset info "$T/exp.yaml" >"$T/out" 2>&1
D="info on an experiment file reads its data: section"; t sh -c "grep -q 'type faces' '$T/out' && grep -q '^train: 3 items' '$T/out'"
"$R" dataset info "$T/exp.yaml" --set data.root="$F/birds" >"$T/out" 2>&1
D="--set data.root applies: a faces reader on the cub tree finds captions but names the missing images"
t grep -q "unreadable: 4 of 4; first: .*birds/images/001" "$T/out"

"$R" dataset preview cub --set root="$F/birds" --out "$T/sheet.png" --size 64 -n 4 --cols 4 >"$T/out" 2>&1
D="preview writes a contact sheet"; t test -s "$T/sheet.png"
D="contact sheet size: 4 cells of 64 px + 3 caption lines"; t test "$(png_size "$T/sheet.png")" = "276x99"
"$R" dataset preview shapes --set train_size=100 --out "$T/shapes.png" -n 10 --cols 5 --size 32 --seed 4 >"$T/out" 2>&1
D="preview of the procedural shapes with a seed"; t test "$(png_size "$T/shapes.png")" = "184x130"
"$R" dataset info shapes --set train_size=500 --set test_size=20 --images 4 >"$T/out" 2>&1
D="shapes info: the configured sizes"; t sh -c "grep -q '^train: 500 items' '$T/out' && grep -q '^test: 20 items' '$T/out'"

"$R" dataset info nosuch >"$T/out" 2>&1
rc=$?
D="an unknown dataset exits 2 listing the types"; t sh -c "[ $rc -eq 2 ] && grep -q 'dataset types: cub' '$T/out'"
"$R" dataset preview cub --set root="$F/birds" >"$T/out" 2>&1
rc=$?
D="preview without --out exits 2"; t sh -c "[ $rc -eq 2 ] && grep -q -- '--out' '$T/out'"
"$R" dataset info cub >"$T/out" 2>&1
rc=$?
D="cub without root says to set it"; t sh -c "[ $rc -ne 0 ] && grep -q 'set root:' '$T/out'"
"$R" dataset fetch cub >"$T/out" 2>&1
D="fetch cub explains where the data comes from"; t grep -q "docs/datasets.md" "$T/out"

if [ -d /usr/share/datasets/fashion-mnist ]; then
  "$R" dataset info fashion_mnist --images 2 >"$T/out" 2>&1
  D="fashion_mnist: 60000 / 10000 items of 28 px"
  t sh -c "grep -q '^train: 60000 items' '$T/out' && grep -q '^test: 10000 items' '$T/out' && grep -q 'width 28..28' '$T/out'"
else
  n=$((n + 1)); echo "ok $n # SKIP dataset-fashion-mnist not installed"
fi
# The emoji are an optional download (tools/setup.sh --emoji): skip only when the dataset's own "not fetched" error
# says so; any other failure of `dataset info emoji` is a failure.
"$R" dataset info emoji --images 0 >"$T/out" 2>&1; st=$?
if [ $st != 0 ] && grep -q 'no emoji.json and img/google/64/ here: run tools/fetch-emoji.sh' "$T/out"; then
  n=$((n + 1)); echo "ok $n # SKIP emoji not fetched (tools/fetch-emoji.sh)"
else
  D="emoji: 3,786 images in the fixed split"
  t sh -c "[ $st = 0 ] && grep -q '^train: 3346 items' '$T/out' && grep -q '^test: 440 items' '$T/out'"
fi
echo "1..$n"
