#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite; ends with the line "N passed, N failed".
#   tools/test.sh            setup, then the optimised build (-Werror) in build/ and an ASan+UBSan build in
#                            build-san/, each running the whole suite (what CI runs)
#   tools/test.sh --quick    the optimised build only
# Test counts are TAP results (one per g_test case) summed over every test program.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
sanitize=1
for a in "$@"; do
  case "$a" in
    --quick) sanitize=0 ;;
    --sanitize) sanitize=1 ;;
    *) echo "test.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
bash tools/setup.sh --torch || exit 1  # torch: the converter test unpickles .pth checkpoints
jobs=$(nproc)
[ -x configure ] && [ configure -nt configure.ac ] || ./autogen.sh >/dev/null || exit 1

run_suite() { # dir configure-args...
  local dir=$1; shift
  mkdir -p "$dir" && cd "$dir" || return 1
  if [ ! -f Makefile ]; then "$top/configure" -q "$@" || return 1; fi
  make -j"$jobs" >make.out 2>&1 || { tail -40 make.out; return 1; }
  make -j"$jobs" check >check.out 2>&1
  local rc=$?
  grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP|XFAIL):' check.out | grep -v '^PASS' || true
  cd "$top"
  return $rc
}

status=0
run_suite build --enable-werror || status=1
dirs=(build)
if [ $sanitize = 1 ]; then
  ASAN_OPTIONS=detect_leaks=0 run_suite build-san --enable-werror --enable-sanitizers || status=1
  dirs+=(build-san)
fi
passed=0; failed=0; skipped=0
for d in "${dirs[@]}"; do
  [ -d "$d/tests" ] || continue
  p=$(cat "$d"/tests/*.trs 2>/dev/null | grep -cE '^:test-result: (PASS|XFAIL)') || true
  f=$(cat "$d"/tests/*.trs 2>/dev/null | grep -cE '^:test-result: (FAIL|XPASS|ERROR)') || true
  s=$(cat "$d"/tests/*.trs 2>/dev/null | grep -cE '^:test-result: SKIP') || true
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done
[ $status != 0 ] && [ $failed = 0 ] && failed=1   # a build failure counts as a failure
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed = 0 ] && [ $status = 0 ]
