#!/bin/sh
# Regenerate the autotools build files (configure, Makefile.in). Run once after a fresh clone.
set -e
cd "$(dirname "$0")"
autoreconf --force --install --verbose
echo "Now run ./configure && make && make check"
