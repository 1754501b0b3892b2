#!/bin/sh
# Out-of-tree plugin (TAP): installs ratfw into a temporary prefix (make install DESTDIR=...), builds the FiLM
# example of docs/writing-a-conditioner.md with `cc $(pkg-config --cflags --libs ratfw) -shared -fPIC`, loads it
# through RATFW_PLUGIN_PATH with the installed ratfw and runs it (ratfw inspect: one forward pass).
B=${RATFW_BUILDDIR:-$(pwd)}
S=${RATFW_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
T=$(mktemp -d "${TMPDIR:-/tmp}/ratfw-oot-XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$T/log" | tail -25; }
step() { # step DESCRIPTION COMMAND...
  d=$1; shift
  if "$@" >"$T/log" 2>&1; then ok "$d"; else notok "$d"; echo "1..$n"; exit 0; fi
}

prefix=$(sed -n 's/^prefix=//p' "$B/core/ratfw.pc")
D="$T/dest"
P="$D$prefix"
# Installs the library, the command, the headers and ratfw.pc as built (-o: never rebuild them here, since other
# tests of `make check` are using the build tree at the same time), in a clean make environment.
step "make install into a temporary DESTDIR" env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$B" \
  -o core/libratfw.la -o tools/ratfw install-libLTLIBRARIES install-binPROGRAMS install-ratfwincludeHEADERS \
  install-nodist_ratfwincludeHEADERS install-nodist_pkgconfigDATA DESTDIR="$D"
if [ -f "$P/include/ratfw-0/ratfw/ratfw.h" ] && [ -f "$P/include/ratfw-0/ratfw/module.h" ] && \
   [ -f "$P/lib/pkgconfig/ratfw.pc" ] && [ -x "$P/bin/ratfw" ]; then ok "headers, ratfw.pc and ratfw installed"
else ls -R "$D" >"$T/log" 2>&1; notok "installed files"; fi

# DESTDIR moved the prefix: a copy of ratfw.pc pointing at it (as configure --prefix=$P would have written)
mkdir -p "$T/pc"
sed "s|^prefix=.*|prefix=$P|" "$P/lib/pkgconfig/ratfw.pc" >"$T/pc/ratfw.pc"
export PKG_CONFIG_PATH="$T/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
PC="pkg-config"
mkdir -p "$T/plugins"
# shellcheck disable=SC2046
step "cc \$(pkg-config --cflags --libs ratfw) -shared -fPIC builds film.so" \
  sh -c "cc -Wall -Wextra -Werror \$($PC --cflags --libs ratfw) -shared -fPIC -o '$T/plugins/film.so' '$S/docs/examples/film/film.c' \$($PC --libs ratfw)"

export LD_LIBRARY_PATH="$P/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RATFW_PLUGIN_PATH="$T/plugins"
step "installed ratfw loads film through RATFW_PLUGIN_PATH" "$P/bin/ratfw" plugins film
if grep -q "gain               double   1.0            \[0, 100\]" "$T/log" && grep -q "Plugin film 1.0.0 (MIT)" "$T/log"
then ok "ratfw plugins film shows its arguments"; else notok "ratfw plugins film"; fi
step "ratfw validate film.yaml" "$P/bin/ratfw" validate "$S/docs/examples/film/film.yaml"
step "ratfw inspect film.yaml runs a forward" "$P/bin/ratfw" inspect "$S/docs/examples/film/film.yaml"
# channels 16, cond_dim 8: gamma and beta linear layers, 2 * (16*8 + 16) = 288 learnable parameters
if grep -Eq "^conditioner +film +\[1, 16, 8, 8\] +288 +0 " "$T/log"; then ok "film: output [1, 16, 8, 8], 288 parameters"
else notok "inspect output"; fi
echo "1..$n"
