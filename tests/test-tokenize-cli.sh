#!/bin/sh
# `ratfw tokenize` (TAP): CLIP's known ids, standard input, 77 ids per caption with truncation keeping the end
# token, a word tokenizer file, and a clear error for a missing vocabulary. The vocabulary is the one shipped in
# tests/fixtures/clip/ (openai/CLIP's bpe_simple_vocab_16e6.txt.gz, MIT).
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
V=${RATFW_CLIP_VOCAB:-$S/tests/fixtures/clip/bpe_simple_vocab_16e6.txt.gz}
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-tok-XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$T/out" | head -5; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }

"$R" tokenize --vocab "$V" "a photo of a cat." >"$T/out" 2>&1
D="known CLIP ids for 'a photo of a cat.'"
t grep -q "^49406 320 1125 539 320 2368 269 49407 0 0" "$T/out"
D="77 ids per caption"; t test "$(wc -w <"$T/out")" -eq 77
long=$(yes "word" | head -100 | tr '\n' ' ')
"$R" tokenize --vocab "$V" "$long" >"$T/out" 2>&1
D="a caption over 77 tokens is truncated with the end token last"; t test "$(awk '{print $77, NF}' "$T/out")" = "49407 77"
printf 'a photo of a cat.\nhello world\n\n' | "$R" tokenize --vocab "$V" >"$T/out" 2>&1
D="standard input: one line per caption"; t test "$(wc -l <"$T/out")" -eq 3
D="an empty caption is start + end tokens"; t grep -q "^49406 49407 0 0" "$T/out"
"$R" tokenize --vocab "$V" --pad-eot "cat" >"$T/out" 2>&1
D="--pad-eot pads with 49407"; t test "$(awk '{print $77}' "$T/out")" = "49407"
"$R" tokenize --vocab "$T/none.txt.gz" "cat" >"$T/out" 2>&1
rc=$?
D="a missing vocabulary exits 2 naming the file"; t sh -c "[ $rc -eq 2 ] && grep -q 'none.txt.gz' '$T/out'"
echo "1..$n"
