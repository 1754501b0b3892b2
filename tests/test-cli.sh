#!/bin/sh
# Drives the built ratfw command (TAP): help and exit codes, validate with file:line:column errors, plugins,
# run (run directory contents, --set, --resume after an interruption, requires:, a failing task), inspect.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
C="$S/tests/configs"
RATFW_PLUGIN_PATH="$B/tests/plugins/good/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
RATFW_QUIET_PLUGINS=1
export RATFW_PLUGIN_PATH RATFW_QUIET_PLUGINS
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$T/err" 2>/dev/null | head -20; }
# check DESCRIPTION EXPECTED_STATUS COMMAND...: runs COMMAND with stdout in $T/out, stderr in $T/err
check() {
  d=$1; want=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; st=$?
  if [ "$st" = "$want" ]; then ok "$d"; else echo "# exit status $st, expected $want"; notok "$d"; fi
}
has() { # has DESCRIPTION FILE TEXT
  if grep -qF -- "$3" "$2"; then ok "$1"; else echo "# '$3' not in $2:"; sed 's/^/#   /' "$2" | head -20; notok "$1"; fi
}
lastline() { # lastline DESCRIPTION FILE TEXT: the last line of FILE is exactly TEXT
  l=$(tail -n 1 "$2")
  if [ "$l" = "$3" ]; then ok "$1"; else echo "# last line: $l"; notok "$1"; fi
}


check "ratfw --help" 0 "$R" --help
has "--help lists commands" "$T/out" "inspect    build the model"
for c in validate plugins inspect run; do check "ratfw $c --help" 0 "$R" $c --help; done
has "run --help documents --resume" "$T/out" "--resume"
check "unknown command exits 2" 2 "$R" frobnicate
lastline "unknown command cause" "$T/err" "ratfw: unknown command 'frobnicate' (commands: run, validate, plugins, inspect; see ratfw --help)"
check "bad option exits 2" 2 "$R" run --no-such-option "$C/base.yaml"

check "validate base" 0 "$R" validate "$C/base.yaml"
check "validate errors.yaml exits 2" 2 "$R" validate "$C/errors.yaml"
has "unknown key with closest" "$T/err" "$C/errors.yaml:4:3: train: unknown key 'step' (did you mean 'steps'?)"
has "out of range" "$T/err" "$C/errors.yaml:6:13: train: 'n_points' = 100000 is out of range [2, 4096]"
has "unknown type lists installed" "$T/err" "$C/errors.yaml:10:11: model.conditioner: unknown conditioner type 'toy_cnd' (did you mean 'toy_cond'?) (installed: "
if grep -qE "\(installed: ([a-z_]+, )*toy_cond[,)]" "$T/err"; then ok "installed list names toy_cond"; else notok "installed list names toy_cond"; fi
lastline "all errors, one-line cause last" "$T/err" "ratfw validate: 7 errors"
check "validate syntax error" 2 "$R" validate "$C/syntax.yaml"
lastline "syntax error cause" "$T/err" "ratfw validate: $C/syntax.yaml:4:5: YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence"
check "validate --set wrong type" 2 "$R" validate "$C/base.yaml" --set train.steps=many
lastline "--set error names the assignment" "$T/err" "ratfw validate: --set train.steps=many:1:13: train: 'steps' expects an integer, got 'many'"

check "plugins" 0 "$R" plugins
has "plugins lists testtask" "$T/out" "testtask             1.2.3    MIT"
check "plugins toy_cond" 0 "$R" plugins toy_cond
has "arguments with default, range, doc" "$T/out" "scale              double   1.0            [0, 10]              multiplies the modulation"
has "choices" "$T/out" "mode               choice   mul            add|mul"
check "plugins unknown name exits 2" 2 "$R" plugins toy_cnd
lastline "plugins suggests" "$T/err" "ratfw plugins: no plugin or module type named 'toy_cnd' (did you mean 'toy_cond'?)"

check "run base" 0 "$R" run "$C/base.yaml"
if [ -f runs/base/resolved.yaml ] && [ -f runs/base/provenance.json ] && [ -f runs/base/log.txt ] && [ -f runs/base/DONE ]; then
  ok "run directory holds resolved.yaml provenance.json log.txt DONE"; else notok "run directory files"; fi
has "resolved config fills defaults" runs/base/resolved.yaml "  n_points: 16"
has "provenance: plugin versions" runs/base/provenance.json '"version" : "1.2.3"'
has "provenance: seed" runs/base/provenance.json '"seed" : 7'
lines=$(wc -l <runs/base/metrics.jsonl)
first=$(head -n 1 runs/base/metrics.jsonl | sed 's/.*"loss": \([^}]*\)}/\1/')
last=$(tail -n 1 runs/base/metrics.jsonl | sed 's/.*"loss": \([^}]*\)}/\1/')
if [ "$lines" = 40 ] && awk "BEGIN { exit !($last < 0.01 * $first) }"; then ok "metrics.jsonl: 40 steps, loss $first -> $last"
else echo "# $lines lines, loss $first -> $last"; notok "metrics.jsonl"; fi
has "plain progress lines when not a terminal" "$T/err" "fit_line 20/40 (50%)"
check "run into an existing run directory exits 2" 2 "$R" run "$C/base.yaml"

check "interrupted run exits 1" 1 "$R" run "$C/base.yaml" --out r2 --set train.stop_after=15
lastline "interruption cause" "$T/err" "ratfw run: base: interrupted (continue it with --resume)"
check "--resume completes it" 0 "$R" run "$C/base.yaml" --out r2 --resume
if [ "$(wc -l <r2/metrics.jsonl)" = 40 ] && [ -f r2/DONE ] && grep -q "resuming at step 15" r2/log.txt; then
  ok "resumed run: 15 + 25 metric lines, DONE"; else notok "resumed run"; fi
if cmp -s runs/base/state.txt r2/state.txt; then ok "resumed result equals the uninterrupted one"
else echo "# $(cat runs/base/state.txt) vs $(cat r2/state.txt)"; notok "resumed result"; fi

# Ctrl-C: the task polls the stop flag, saves its state and returns; exit 1, no DONE, resumable
"$R" run "$C/base.yaml" --out sig --set train.steps=1000000 >"$T/out" 2>"$T/err" &
pid=$!
sleep 1
kill -INT $pid
wait $pid
st=$?
if [ "$st" = 1 ] && [ ! -f sig/DONE ] && [ -s sig/state.txt ] && grep -q "(interrupted)" sig/log.txt; then
  ok "SIGINT: stopped cleanly at step $(cut -d' ' -f1 sig/state.txt), exit 1, resumable"
else echo "# exit status $st"; notok "SIGINT"; fi

check "run --set train.steps=5" 0 "$R" run "$C/base.yaml" --out r3 --set train.steps=5 -q
if [ "$(wc -l <r3/metrics.jsonl)" = 5 ] && [ ! -s "$T/err" ]; then ok "--set applied, --quiet silent"; else notok "--set/--quiet"; fi

check "requires: runs the prerequisite first" 0 "$R" run "$C/needs-pretrain.yaml"
if [ -f runs/pretrain/DONE ] && [ -f runs/needs-pretrain/DONE ]; then ok "both run directories complete"; else notok "requires dirs"; fi
check "requires: prerequisite present is not rerun" 0 "$R" run "$C/needs-pretrain.yaml" --out runs/again
has "reuses output" "$T/err" "pretrain: output present in $T/runs/pretrain"

check "failing task exits 1" 1 "$R" run "$C/failing.yaml"
lastline "failure cause" "$T/err" "ratfw run: failing: fit_line failed on purpose (fail: true)"

check "inspect" 0 "$R" inspect "$C/base.yaml"
has "inspect: child with shape, params, FLOPs" "$T/out" "  stage1                           toy_cond             [1, 8, 8, 8]                 40          0       1088"
has "inspect: total" "$T/out" "total                                                                                80          0       2176"
echo "1..$n"
exit 0
