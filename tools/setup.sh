#!/usr/bin/env bash
# Installs the Debian 12 packages ratfw needs to build and test (idempotent: skips apt when all are present).
#   tools/setup.sh            build + test dependencies
#   tools/setup.sh --torch    also python3-torch, PIL, torchvision and scipy: fixture regeneration (scipy: the FID
#                             and Welch-test references), PyTorch benchmarks, and the checkpoint converter
#                             (tools/test.sh installs them: its converter test needs torch)
#   tools/setup.sh --emoji    also npm and openssl, then fetches the emoji dataset (tools/fetch-emoji.sh)
set -euo pipefail
emoji=0
fetch_emoji() { if [ "$emoji" = 1 ]; then sh "$(dirname "$0")/fetch-emoji.sh"; fi; }
pkgs=(build-essential autoconf automake libtool autoconf-archive pkg-config
      libglib2.0-dev libyaml-dev libpng-dev libdnnl-dev libjson-glib-dev libzip-dev libcairo2-dev
      libjpeg62-turbo-dev zlib1g-dev libopenblas-openmp-dev python3 dataset-fashion-mnist)
for a in "$@"; do
  case "$a" in
    --torch)  # libopenblas0-openmp: without it Debian's torch calls the reference BLAS (about 2 GFLOP/s here),
              # which would make every PyTorch benchmark a strawman
              pkgs+=(python3-torch python3-numpy python3-pil python3-torchvision libopenblas0-openmp python3-scipy) ;;
    --emoji)  # npm may come from elsewhere (nodesource): Debian's npm would conflict with that nodejs
              command -v npm >/dev/null || pkgs+=(npm)
              command -v openssl >/dev/null || pkgs+=(openssl)
              pkgs+=(ca-certificates); emoji=1 ;;
    *) echo "setup.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#pkgs[@]} packages present"
  fetch_emoji
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo (need: ${missing[*]})" >&2; exit 1; }
  SUDO=sudo
fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fetch_emoji
