#!/bin/sh
# ratfw ablate end to end (TAP) on tiny sweeps of the tiny GAN on shapes (tests/configs/gan-tiny.yaml, 6 steps) with
# a tiny CLIP pretrained here: --dry-run's plan; a variant that fails validation stops everything before anything
# runs; --only; table.md/.csv/.tex, chart.png and index.html; the planner's hashing (a second ablate trains nothing,
# another eval: section evaluates again without training); a failing variant is recorded with its error while the
# rest of the sweep goes on (exit 1); and resume after `kill -9` of a running sweep: the next ablate waits for the
# killed sweep's runs to stop, resumes the partial one from its checkpoint and trains only what is missing.
# Hermetic: HOME and XDG_CACHE_HOME (the FID reference cache) live in the temporary directory, every path is
# absolute, and no check depends on timing: waits poll for a file or a process with a generous timeout.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
B=$(cd "$B" && pwd)
S=$(cd "$S" && pwd)
R="$B/tools/ratfw"
PY=/usr/bin/python3
RATFW_PLUGIN_PATH="$B/plugins/.libs:$B/conditioners/.libs:$B/datasets/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
RATFW_QUIET_PLUGINS=1
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-ablate-XXXXXX")
T=$(cd "$T" && pwd -P)
HOME="$T/home"
XDG_CACHE_HOME="$T/cache"
mkdir -p "$HOME"
export RATFW_PLUGIN_PATH RATFW_QUIET_PLUGINS HOME XDG_CACHE_HOME
unset OMP_NUM_THREADS
KILLPIDS=""
cleanup() {
  for p in $KILLPIDS; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -f "$T/err" ] && sed 's/^/# /' "$T/err" | tail -25; }
t() { if "$@"; then ok "$D"; else notok "$D"; fi; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s; false when it never held
wait_for() {
  w_i=0 w_n=$(($1 * 10))
  shift
  while ! "$@"; do
    w_i=$((w_i + 1))
    [ $w_i -ge $w_n ] && return 1
    sleep 0.1
  done
}
alive() { kill -0 "$1" 2>/dev/null; }
dead() { ! kill -0 "$1" 2>/dev/null; }
# count DIR FILE: how many run directories of the sweep directory DIR hold FILE (a glob)
count() { ls "$1"/runs/*/$2 2>/dev/null | wc -l; }
# the run directory of VARIANT seed SEED, from `ratfw ablate --dry-run` (column 3: the id's 16 hex digits)
rundir() { "$R" ablate "$1" --out "$2" --dry-run 2>/dev/null | awk -v v="$3" -v s="$4" '$1 == v && $2 == s {print $3}'; }

D="tiny CLIP pretrained on shapes"
t "$R" run "$S/configs/cpu/clip-emoji.yaml" --set data.type=shapes --set data.train_size=512 --set data.test_size=64 \
  --set train.image_size=16 --set train.patch=4 --set train.vision_width=32 --set train.vision_layers=3 \
  --set train.vision_heads=2 --set train.text_width=32 --set train.text_layers=2 --set train.text_heads=2 \
  --set train.embed_dim=32 --set train.batch_size=32 --set train.steps=20 --out "$T/clip" --quiet 2>"$T/err"

# sweep NAME EVAL_SAMPLES EXTRA_VARIANT_LINES: a sweep of gan-tiny in $T/NAME.yaml; affine is the baseline
sweep() {
  cat >"$T/$1.yaml" <<EOF
description: tiny conditioning sweep for tests/test-ablate-cli.sh
base: $S/tests/configs/gan-tiny.yaml
seeds: [1, 2]
baseline: affine
set:
  - model.text_encoder.weights=$T/clip
  - data.test_size=64
variants:
  affine: ['model.generator.adapter_fusion={type: affine}']
  rat: ['model.generator.adapter_fusion={type: rat, hidden: 8}']
$3
eval:
  metrics: shapes_accuracy,clip_score
  samples: $2
  batch: 8
EOF
}
sweep main 16 "  broken: [data.train_size=1]
  cbn: ['model.generator.adapter_fusion={type: cbn}']"
O="$T/out"

# ---- the plan -------------------------------------------------------------------------------------------------
"$R" ablate "$T/main.yaml" --out "$O" --dry-run >"$T/plan" 2>"$T/err"; st=$?
D="--dry-run plans 4 variants x 2 seeds, every run to do, no estimate yet, and creates nothing"
t sh -c "[ $st = 0 ] && grep -q '4 variants x 2 seeds = 8 runs (baseline: affine)' '$T/plan' &&
  [ \$(grep -c ' to do  *to do' '$T/plan') = 8 ] && grep -q 'to do: 8 trainings (0 of them resumed), 8 evaluations' '$T/plan' &&
  grep -q 'estimated time: unknown' '$T/plan' && [ ! -e '$O' ]"
"$R" ablate "$T/main.yaml" --out "$O" --dry-run --only rat >"$T/plan" 2>"$T/err"
D="--dry-run --only rat marks the other variants not selected"
t sh -c "[ \$(grep -c 'not selected by --only' '$T/plan') = 6 ] && grep -q 'to do: 2 trainings' '$T/plan'"
"$R" ablate "$T/main.yaml" --out "$O" --only rta >"$T/out.txt" 2>"$T/err"; st=$?
D="--only with an unknown variant is a usage error that suggests the nearest"
t sh -c "[ $st = 2 ] && grep -q \"'rta' is not a variant.*did you mean 'rat'\" '$T/err' && [ ! -e '$O' ]"

# ---- validation before anything runs ---------------------------------------------------------------------------
sweep invalid 16 "  bad: [model.generator.adapter_fusion.hidden=-1]"
"$R" ablate "$T/invalid.yaml" --out "$T/invalid-out" >"$T/out.txt" 2>"$T/err"; st=$?
D="a variant that fails validation: exit 2, file:line:column and the variant named, nothing created or run"
t sh -c "[ $st = 2 ] && grep -q \"invalid.yaml:1[0-9]:[0-9]*: variant 'bad': .*hidden\" '$T/err' &&
  [ ! -e '$T/invalid-out' ] && ! grep -q 'training' '$T/err'"

# ---- --only: a clean sweep -----------------------------------------------------------------------------------
"$R" ablate "$T/main.yaml" --out "$O" --only affine,rat --jobs 2 >"$T/out.txt" 2>"$T/err"; st=$?
D="--only affine,rat: a clean sweep exits 0 and prints where the table and report are"
t sh -c "[ $st = 0 ] && grep -q '^$O/table.md\$' '$T/out.txt' && grep -q '^$O/index.html\$' '$T/out.txt'"
D="... it trained and evaluated the 4 selected runs, and nothing of the other variants"
t sh -c "[ $(count "$O" DONE) = 4 ] && [ $(count "$O" 'eval/ablate-*.json') = 4 ] &&
  [ \$(grep -c ': training (pid' '$T/err') = 4 ] && ! grep -q '^\[.*\] \(broken\|cbn\) ' '$T/err'"
D="table.md: a row per variant with mean +- std over 2 seeds, the baseline, Welch's comparison and the runs"
t sh -c "grep -q '^| affine (baseline) | 2 |' '$O/table.md' && grep -q '^| rat | 2 | .* ± ' '$O/table.md' &&
  grep -q 'Welch' '$O/table.md' && grep -q 'p = ' '$O/table.md' && grep -q 'clip_score' '$O/table.md' &&
  grep -q 'shapes_accuracy' '$O/table.md' && [ \$(grep -c '^| \(affine\|rat\) | [12] | [0-9a-f]\{16\} | done |' '$O/table.md') = 4 ]"
D="table.csv: a header and one row per variant and metric, the means as numbers"
t "$PY" -c "
import csv, math, sys
rows = list(csv.DictReader(open('$O/table.csv')))
cs = [r for r in rows if r['metric'] == 'clip_score']
ok = {r['variant'] for r in cs} >= {'affine', 'rat'} and all(math.isfinite(float(r['mean'])) for r in cs if r['variant'] in ('affine', 'rat'))
sys.exit(0 if ok else 1)"
D="table.tex: a LaTeX table with the variants"
t sh -c "grep -q 'begin{table' '$O/table.tex' && grep -q 'end{table' '$O/table.tex' && grep -q '^affine' '$O/table.tex' && grep -q 'pm' '$O/table.tex'"
D="chart.png is a PNG"
t "$PY" -c "import sys; sys.exit(0 if open('$O/chart.png', 'rb').read(8) == b'\x89PNG\r\n\x1a\n' else 1)"
D="index.html: the table, the chart, sample grids and loss curves copied beside it, nothing from the network"
t "$PY" -c "
import os, re, sys
h = open('$O/index.html').read()
srcs = re.findall(r'src=\"([^\"]+)\"', h)
ok = 'chart.png' in srcs and any('samples' in s for s in srcs) and any('loss' in s for s in srcs)
ok = ok and all(os.path.exists(os.path.join('$O', s)) for s in srcs) and 'http://' not in h and 'https://' not in h
ok = ok and 'affine' in h and 'rat' in h
sys.exit(0 if ok else 1)"

# ---- hashing: what is done is not done again --------------------------------------------------------------------
AF1=$(rundir "$T/main.yaml" "$O" affine 1)
cksum "$O/runs/$AF1/checkpoint.safetensors" >"$T/ck1"
"$R" ablate "$T/main.yaml" --out "$O" --only affine,rat >"$T/out.txt" 2>"$T/err"; st=$?
D="a second ablate of the same variants trains and evaluates nothing"
t sh -c "[ $st = 0 ] && grep -q 'main: 8 runs, 0 left (' '$T/err' &&
  ! grep -q 'training\|evaluating' '$T/err' && cksum '$O/runs/$AF1/checkpoint.safetensors' | cmp -s - '$T/ck1'"
"$R" ablate "$T/main.yaml" --out "$O" --only affine,rat --dry-run >"$T/plan" 2>"$T/err"
D="... and --dry-run says so, with an estimate from the finished runs"
t sh -c "[ \$(grep -c ' done (.*) *done' '$T/plan') = 4 ] && grep -q 'estimated time: nothing left to run' '$T/plan'"
sweep renamed 16 ""
sed -i 's/^description: .*/description: the same runs described otherwise/' "$T/renamed.yaml"
"$R" ablate "$T/renamed.yaml" --out "$O" --dry-run >"$T/plan" 2>"$T/err"
D="the run id is the hash of the resolved config: another description (and file) gives the same runs"
t sh -c "[ \$(grep -c ' done (.*) *done' '$T/plan') = 4 ]"
sweep moresamples 24 ""
"$R" ablate "$T/moresamples.yaml" --out "$O" >"$T/out.txt" 2>"$T/err"; st=$?
D="another eval: section evaluates the runs again without training them"
t sh -c "[ $st = 0 ] && [ \$(grep -c ': evaluating (pid' '$T/err') = 4 ] && ! grep -q ': training (pid\|resuming' '$T/err' &&
  [ $(count "$O" 'eval/ablate-*.json') = 8 ] && cksum '$O/runs/$AF1/checkpoint.safetensors' | cmp -s - '$T/ck1'"

# ---- a failing variant -----------------------------------------------------------------------------------------
"$R" ablate "$T/main.yaml" --out "$O" --jobs 1 >"$T/out.txt" 2>"$T/err"; st=$?
D="a failing variant: exit 1 naming the failed runs and the table"
t sh -c "[ $st = 1 ] && grep -q '2 runs failed' '$T/err' && grep -q 'table.md' '$T/err'"
D="... the rest of the sweep went on: cbn trained and evaluated after broken failed"
t sh -c "[ \$(grep -c 'broken seed [12]: training FAILED' '$T/err') = 2 ] &&
  [ \$(grep -c 'cbn seed [12]: evaluated' '$T/err') = 2 ] && [ $(count "$O" DONE) = 6 ]"
D="... the table records broken as failed with its error, and still summarises the others"
t sh -c "grep -q '^| broken | [12] | [0-9a-f]\{16\} | failed |' '$O/table.md' &&
  grep -q 'fewer than one batch' '$O/table.md' && grep -q '^| cbn | 2 | .* ± ' '$O/table.md'"
"$R" ablate "$T/main.yaml" --out "$O" --dry-run >"$T/plan" 2>"$T/err"
D="... and --dry-run shows the last failure, to be retried"
t sh -c "[ \$(grep -c '^broken .* failed' '$T/plan') = 2 ] && grep -q 'last failure: train: .*fewer than one batch' '$T/plan'"

# ---- resume after kill -9 --------------------------------------------------------------------------------------
# Runs of 150 steps that checkpoint every 2 (a tiny-GAN step takes about 30 ms here, so a run lasts seconds: far
# longer than the 0.1 s poll between its first checkpoint and the freeze; 10 steps took 0.3 s in all, which a
# fast machine could finish before the freeze). Once the first run has its first checkpoint, its training is
# frozen (SIGSTOP), so that its state no longer depends on timing, and the sweep is killed with SIGKILL; the training
# (SIGCONT) then receives the SIGINT that ratfw ablate arranges for its children when it dies: it checkpoints and
# stops. The next ablate must wait for it, resume that run from its checkpoint and train only the run never
# started.
cat >"$T/kill.yaml" <<EOF
base: $S/tests/configs/gan-tiny.yaml
seeds: [1, 2]
set: [model.text_encoder.weights=$T/clip, data.test_size=64, train.steps=150, train.checkpoint_every=2,
      train.sample_every=150]
variants:
  affine: ['model.generator.adapter_fusion={type: affine}']
eval: {metrics: shapes_accuracy, samples: 8, batch: 8}
EOF
K="$T/kill-out"
K1=$(rundir "$T/kill.yaml" "$K" affine 1)
K2=$(rundir "$T/kill.yaml" "$K" affine 2)
"$R" ablate "$T/kill.yaml" --out "$K" --jobs 1 >"$T/kill1.out" 2>"$T/kill1.err" &
SW=$!
KILLPIDS="$SW"
has_ckpt() { [ -f "$K/runs/$K1/checkpoint.safetensors" ] || dead "$SW"; }
child_pid() { sed -n 's/^\[.*\] affine seed 1: training (pid \([0-9]*\),.*/\1/p' "$T/kill1.err" | head -1; }
wait_for 600 has_ckpt
CH=$(child_pid)
[ -n "$CH" ] && kill -STOP "$CH" 2>/dev/null
KILLPIDS="$SW $CH"
D="the first run of the sweep to kill has a checkpoint and no DONE (its training frozen)"
t sh -c "[ -n '$CH' ] && kill -0 '$SW' 2>/dev/null && [ -f '$K/runs/$K1/checkpoint.safetensors' ] && [ ! -e '$K/runs/$K1/DONE' ]"
kill -9 "$SW" 2>/dev/null
wait "$SW" 2>/dev/null
[ -n "$CH" ] && kill -CONT "$CH" 2>/dev/null
wait_for 600 dead "$CH"
D="killed with SIGKILL, the sweep's training receives SIGINT, checkpoints and stops"
t sh -c "! kill -0 '$CH' 2>/dev/null && [ ! -e '$K/runs/$K1/DONE' ] && [ -f '$K/runs/$K1/resolved.yaml' ]"
"$R" ablate "$T/kill.yaml" --out "$K" --dry-run >"$T/plan" 2>"$T/err"
D="--dry-run shows the killed run partial (at its checkpoint) and the other to do"
t sh -c "grep -q '^affine  *1  $K1 .*partial (step [0-9]*)' '$T/plan' && grep -q '^affine  *2  $K2 .* to do ' '$T/plan' &&
  grep -q 'to do: 2 trainings (1 of them resumed), 2 evaluations' '$T/plan'"
"$R" ablate "$T/kill.yaml" --out "$K" --jobs 1 >"$T/out.txt" 2>"$T/err"; st=$?
D="the next ablate resumes the killed run and trains the missing one, and finishes"
t sh -c "[ $st = 0 ] && grep -q 'affine seed 1: resuming training' '$T/err' && grep -q 'affine seed 2: training (pid' '$T/err' &&
  [ $(count "$K" DONE) = 2 ] && [ $(count "$K" 'eval/ablate-*.json') = 2 ]"
D="... from the checkpoint: the resumed run's log says so, and its metrics go on to step 150"
t sh -c "grep -q 'resuming at step [1-9]' '$K/runs/$K1/log.txt' && tail -1 '$K/runs/$K1/metrics.jsonl' | grep -q '\"step\": 150,'"
KILLPIDS=""

echo "1..$n"
