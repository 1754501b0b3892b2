#!/bin/sh
# Out-of-tree plugins (TAP): installs ratfw into a temporary prefix (make install DESTDIR=...), builds the FiLM
# example of docs/writing-a-conditioner.md, the upconv_block of docs/writing-a-block.md and the concat_head of
# docs/writing-a-head.md with `cc $(pkg-config --cflags --libs ratfw) -shared -fPIC`, loads them through
# RATFW_PLUGIN_PATH with the installed ratfw and runs them (ratfw inspect: one forward pass).
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
# the generator_block and discriminator_head examples (docs/writing-a-block.md, docs/writing-a-head.md)
# run inside the built DF-GAN generator and discriminator and the CLIP text encoder, so the tree's plugins follow
export RATFW_PLUGIN_PATH="$T/plugins:$B/plugins/.libs:$B/conditioners/.libs"
for ex in upconv_block concat_head; do
  step "cc \$(pkg-config --cflags --libs ratfw) -shared -fPIC builds $ex.so" \
    sh -c "cc -Wall -Wextra -Werror \$($PC --cflags --libs ratfw) -shared -fPIC -o '$T/plugins/$ex.so' '$S/docs/examples/$ex/$ex.c' \$($PC --libs ratfw)"
  step "installed ratfw loads $ex through RATFW_PLUGIN_PATH" "$P/bin/ratfw" plugins $ex
  if grep -q "Interface (RatGeneratorBlockIface\|Interface (RatDiscriminatorHeadIface" "$T/log"
  then ok "ratfw plugins $ex documents its kind's interface"; else notok "ratfw plugins $ex interface"; fi
  step "ratfw validate $ex.yaml" "$P/bin/ratfw" validate "$S/docs/examples/$ex/$ex.yaml"
  step "ratfw inspect $ex.yaml runs a forward" "$P/bin/ratfw" inspect "$S/docs/examples/$ex/$ex.yaml"
  cp "$T/log" "$T/inspect-$ex"
done
# stage 1: conv 16 -> 8 (1160) + an affine on 8 channels of [z; s] (612 wide): 2 * (612*8 + 8 + 8*8 + 8) = 9952
cp "$T/inspect-upconv_block" "$T/log"
if grep -Eq "^  1 +upconv_block +\[1, 8, 16, 16\] +11112 +0 " "$T/log"
then ok "upconv_block: stage 1 output [1, 8, 16, 16], 11112 parameters"; else notok "upconv_block inspect row"; fi
# fc1 (8 nf + E = 32 + 512 -> 16) + fc2 (16 -> 1): 544*16 + 16 + 17 = 8737
cp "$T/inspect-concat_head" "$T/log"
if grep -Eq "^  head +concat_head +\[1\] +8737 +0 " "$T/log"
then ok "concat_head: logits [1], 8737 parameters"; else notok "concat_head inspect row"; fi
echo "1..$n"
