#!/bin/sh
# Fetches the emoji image source (emoji-datasource-google 16.0.0 from the npm registry: emoji.json plus
# img/google/64/*.png) into a cache directory, checks the tarball's sha512 against the registry's
# dist.integrity, and unpacks it. Usage: tools/fetch-emoji.sh [DIR]   (default $RATFW_EMOJI_DIR or
# ~/.cache/ratfw/emoji). The unpacked package ends up in DIR/package (what core/data/emoji.c reads).
set -eu

PKG=emoji-datasource-google
VERSION=16.0.0
INTEGRITY='ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A=='

DIR=${1:-${RATFW_EMOJI_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ratfw/emoji}}
TARBALL="$DIR/$PKG-$VERSION.tgz"

die() {
  echo "fetch-emoji: $*" >&2
  exit 1
}

command -v npm >/dev/null 2>&1 || die "npm not found: install the Debian package npm (apt-get install npm)"
command -v openssl >/dev/null 2>&1 || die "openssl not found: install the Debian package openssl"
mkdir -p "$DIR"

check() {
  got=$(openssl dgst -sha512 -binary "$1" | base64 | tr -d '\n')
  [ "$got" = "$INTEGRITY" ]
}

if [ -f "$TARBALL" ] && check "$TARBALL"; then
  echo "fetch-emoji: $TARBALL already present and verified"
else
  rm -f "$TARBALL"
  tmp=$(mktemp -d "$DIR/.pack.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$PKG@$VERSION" >/dev/null) || die "npm pack $PKG@$VERSION failed"
  [ -f "$tmp/$PKG-$VERSION.tgz" ] || die "npm pack did not produce $PKG-$VERSION.tgz"
  check "$tmp/$PKG-$VERSION.tgz" || die "sha512 of the downloaded tarball does not match the registry's integrity"
  mv "$tmp/$PKG-$VERSION.tgz" "$TARBALL"
fi

if [ -f "$DIR/package/emoji.json" ] && [ -f "$DIR/package/.ratfw-$VERSION" ]; then
  echo "fetch-emoji: already unpacked in $DIR/package"
else
  rm -rf "$DIR/package"
  tar -xzf "$TARBALL" -C "$DIR" || die "cannot unpack $TARBALL"
  [ -f "$DIR/package/emoji.json" ] || die "$TARBALL has no package/emoji.json"
  touch "$DIR/package/.ratfw-$VERSION"
fi
n=$(find "$DIR/package/img/google/64" -name '*.png' | wc -l)
echo "fetch-emoji: $n images of 64x64 in $DIR/package/img/google/64"
