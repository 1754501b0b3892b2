#!/bin/sh
# `ratfw eval fid A.npz B.npz` (TAP): on the fixtures of tools/reference/ref_fid.py it prints pytorch-fid's value
# (scipy, tests/fixtures/fid/fid.json) alone on its last line; on bad input (issue 11 "Bad input": a truncated file,
# not a zip, a bad .npy header, a wrong dtype, shapes that disagree, a non-symmetric or non-finite sigma, a D
# mismatch between the two files, fewer than 2 samples, fewer samples than the feature width, ...) it exits 1 (a
# refused measurement) or 2 (a usage error such as a missing file), never with a signal or a sanitizer report, and
# its message names the file and the problem. The bad files are written here with /usr/bin/python3 + numpy.
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
R="$B/tools/ratfw"
PY=/usr/bin/python3
F="$S/tests/fixtures/fid"
RATFW_PLUGIN_PATH="$B/plugins/.libs:$B/conditioners/.libs:$B/datasets/.libs${RATFW_PLUGIN_PATH:+:$RATFW_PLUGIN_PATH}"
RATFW_QUIET_PLUGINS=1
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-npz-bad-XXXXXX")
HOME="$T"
XDG_CACHE_HOME="$T/cache"
export RATFW_PLUGIN_PATH RATFW_QUIET_PLUGINS HOME XDG_CACHE_HOME
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -f "$T/err" ] && sed 's/^/# /' "$T/err" | tail -15; }

# ---- good input: the value pytorch-fid gives -------------------------------------------------------------------
# close A B WANT: the last line of `eval fid A B` is a number within 1e-3 relative of WANT (the issue's contract)
# and within 1e-12 of the terms' scale of it (test-fid measures 1.2e-15)
close() {
  "$PY" - "$1" "$2" "$3" <<'EOF'
import sys
got, want, scale = float(open(sys.argv[1]).read().strip().splitlines()[-1]), float(sys.argv[2]), float(sys.argv[3])
sys.exit(0 if abs(got - want) <= max(1e-3 * abs(want), 1e-12 * scale) and abs(got - want) <= 1e-12 * scale else 1)
EOF
}
"$PY" -c "
import json, sys
for c in json.load(open(sys.argv[1]))['cases']:
    print(c['a'], c['b'], int(c['allow_rank_deficient']), repr(c['scipy']), repr(c['mean_term'] + c['trace1'] + c['trace2']))
" "$F/fid.json" >"$T/cases" || echo "Bail out! cannot read $F/fid.json"
while read -r a b allow want scale; do
  opt=
  [ "$allow" = 1 ] && opt=--allow-rank-deficient
  if "$R" eval fid $opt "$F/$a" "$F/$b" >"$T/out" 2>"$T/err" && close "$T/out" "$want" "$scale"; then
    ok "eval fid $a $b prints pytorch-fid's $want"
  else
    cat "$T/out" >>"$T/err"
    notok "eval fid $a $b prints pytorch-fid's $want"
  fi
done <"$T/cases"

# ---- bad input ---------------------------------------------------------------------------------------------------
"$PY" - "$T" "$F" <<'EOF' || echo "Bail out! cannot write the bad files"
import io, os, sys, zipfile
import numpy as np
t, f = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(3)
D = 8
x = rng.normal(size=(40, D))
mu, sigma = x.mean(0), np.cov(x, rowvar=False)
def npz(name, **arrays):
    np.savez(os.path.join(t, name), **arrays)
def raw(name, members):
    """an .npz whose members are raw bytes"""
    with zipfile.ZipFile(os.path.join(t, name), "w") as z:
        for k, v in members.items():
            z.writestr(k + ".npy", v)
def npy_bytes(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()
good = open(os.path.join(f, "stats_a.npz"), "rb").read()
open(os.path.join(t, "truncated.npz"), "wb").write(good[: len(good) // 2])
open(os.path.join(t, "empty.npz"), "wb").write(b"")
open(os.path.join(t, "text.npz"), "w").write("mu, sigma\n1, 2\n" * 40)
npz("good.npz", mu=mu, sigma=sigma)
npz("dead_features.npz", features=np.zeros((40, D)))
sig = npy_bytes(sigma)
raw("bad_magic.npz", {"mu": npy_bytes(mu), "sigma": b"NOTNUMPY" + sig[8:]})
raw("bad_header.npz", {"mu": npy_bytes(mu), "sigma": sig.replace(b"'shape'", b"'shap3'", 1)})
raw("bad_header_dict.npz", {"mu": npy_bytes(mu), "sigma": sig[:10] + b"[" + sig[11:]})
raw("bad_header_len.npz", {"mu": npy_bytes(mu), "sigma": sig[:8] + b"\xff\xff" + sig[10:]})
raw("short_data.npz", {"mu": npy_bytes(mu), "sigma": sig[:-16]})
raw("bad_version.npz", {"mu": npy_bytes(mu), "sigma": sig[:6] + b"\x07\x00" + sig[8:]})
npz("int8.npz", mu=mu.astype(np.int8), sigma=sigma.astype(np.int8))
npz("complex.npz", mu=mu, sigma=sigma.astype(np.complex128))
npz("features_int8.npz", features=(x * 10).astype(np.int8))
npz("big_endian.npz", mu=mu.astype(">f8"), sigma=sigma.astype(">f8"))
npz("object.npz", mu=mu, sigma=np.array([None, 1], dtype=object))
npz("fortran.npz", mu=mu, sigma=np.asfortranarray(sigma + np.triu(np.ones((D, D)), 1)))
npz("mu_sigma_disagree.npz", mu=mu, sigma=np.eye(D + 1))
npz("mu_2d.npz", mu=mu[None, :], sigma=sigma)
npz("sigma_1d.npz", mu=mu, sigma=np.diag(sigma))
npz("no_sigma.npz", mu=mu)
npz("nothing.npz", means=mu)
s = sigma.copy(); s[1, 5] += 0.5
npz("nonsymmetric.npz", mu=mu, sigma=s)
s = sigma.copy(); s[2, 3] = s[3, 2] = np.nan
npz("nan_sigma.npz", mu=mu, sigma=s)
s = sigma.copy(); s[0, 0] = np.inf
npz("inf_sigma.npz", mu=mu, sigma=s)
m = mu.copy(); m[4] = np.nan
npz("nan_mu.npz", mu=m, sigma=sigma)
s = sigma.copy(); s[3, 3] = -1.0
npz("negative_variance.npz", mu=mu, sigma=s)
s = np.eye(D); s[0, 1] = s[1, 0] = 2.0  # eigenvalues 3 and -1 with a positive diagonal
npz("indefinite.npz", mu=mu, sigma=s)
npz("wider.npz", mu=np.zeros(D + 4), sigma=np.eye(D + 4))
npz("one_row.npz", features=x[:1])
npz("no_rows.npz", features=x[:0])
npz("few_rows.npz", features=x[:5])
npz("features_1d.npz", features=x[0])
y = x.copy(); y[7, 2] = np.inf
npz("inf_features.npz", features=y)
EOF
G="$T/good.npz"

# bad FILE PATTERN DESCRIPTION [OPTIONS...]: `eval fid FILE good.npz` exits 1 or 2 (not a signal: >= 128) with a
# message on stderr naming FILE and matching the extended regular expression PATTERN
bad() {
  file=$1 pat=$2 what=$3
  shift 3
  "$R" eval fid "$@" "$T/$file" "$G" >"$T/out" 2>"$T/err"
  st=$?
  if { [ $st -eq 1 ] || [ $st -eq 2 ]; } && grep -q "$T/$file" "$T/err" && grep -Eq "$pat" "$T/err" &&
    ! grep -q "AddressSanitizer\|runtime error" "$T/err"; then
    ok "$what: exit $st, names the file and says so"
  else
    echo "exit status $st" >>"$T/err"
    notok "$what"
  fi
}
bad truncated.npz "not a zip|truncated|corrupt|inconsistent" "a truncated file"
bad empty.npz "not an .npz|not a zip|empty" "an empty file"
bad text.npz "not a zip" "a text file (not a zip)"
bad missing.npz "no such file" "a missing file"
bad bad_magic.npz "not a \.npy array" "a member that is not .npy (bad magic)"
bad bad_header.npz "bad \.npy header.*key other than" "a .npy header with an unknown key"
bad bad_header_dict.npz "bad \.npy header.*not a dict" "a .npy header that is not a dict"
bad bad_header_len.npz "truncated \.npy header" "a .npy header longer than the member"
bad short_data.npz "sigma\.npy.*bytes follow" "data shorter than the header says"
bad bad_version.npz "version 7\.0 is not supported" "an unknown .npy version"
bad int8.npz "dtype '\|i1' is not supported" "dtype int8"
bad complex.npz "dtype '<c16' is not supported" "dtype complex128"
bad features_int8.npz "features\.npy: dtype '\|i1' is not supported" "int8 features"
bad big_endian.npz "big-endian" "big-endian float64"
bad object.npz "dtype '\|O' is not supported|bad \.npy header" "an object array"
bad fortran.npz "Fortran order" "a Fortran-order sigma"
bad mu_sigma_disagree.npz "sigma is \[9, 9\] float64 but mu has 8 entries" "mu [D] but sigma [D+1, D+1]"
bad mu_2d.npz "mu has 2 dimensions" "mu [1, D]"
bad sigma_1d.npz "sigma is \[8\] float64" "sigma [D]"
bad no_sigma.npz "no array 'sigma'" "mu without sigma"
bad nothing.npz "neither 'mu' \+ 'sigma' nor 'features'.*means" "neither mu/sigma nor features"
bad nonsymmetric.npz "sigma is not symmetric: \[5, 1\]" "a non-symmetric sigma"
bad nan_sigma.npz "sigma\[2, 3\] is nan" "NaN in sigma"
bad inf_sigma.npz "sigma\[0, 0\] is inf" "Inf in sigma"
bad nan_mu.npz "mu\[4\] is nan" "NaN in mu"
bad negative_variance.npz "sigma\[3, 3\] = -1 is negative" "a negative variance"
bad indefinite.npz "not positive semi-definite" "a sigma that is not positive semi-definite"
bad wider.npz "12-d statistics but .* 8-d" "D mismatch between the two files"
bad one_row.npz "1 sample: a covariance needs at least 2" "features with 1 row"
bad one_row.npz "1 sample: a covariance needs at least 2" "features with 1 row, rank deficiency allowed" \
  --allow-rank-deficient
bad no_rows.npz "0 samples: a covariance needs at least 2" "features with 0 rows"
bad few_rows.npz "5 samples of 8-d features.*rank at most 4" "fewer samples than the feature width"
bad features_1d.npz "features has 1 dimensions: expected \[N, D\]" "features [D]"
bad inf_features.npz "features\[7, 2\] is inf" "Inf in the features"
"$R" eval fid "$T/dead_features.npz" "$G" >"$T/out" 2>"$T/err"
st=$?
D="features with a zero covariance (dead units) still give a finite FID or a clear refusal, never a crash"
if [ $st -lt 3 ] && ! grep -q "AddressSanitizer\|runtime error" "$T/err"; then ok "$D"; else notok "$D (exit $st)"; fi
"$R" eval fid "$G" >"$T/out" 2>"$T/err"
st=$?
D="one file is a usage error (exit 2)"
if [ $st -eq 2 ] && grep -q "two .npz files" "$T/err"; then ok "$D"; else notok "$D"; fi
echo "1..$n"
