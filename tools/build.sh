#!/usr/bin/env bash
# Configures and builds lvmflow (Release, Ninja, ccache) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
# Paths relative to the checkout in ccache's hash, so a fresh clone reuses earlier compiles.
export CCACHE_BASEDIR="$PWD"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLVMFLOW_ONLY_FAMILIES= >/dev/null
cmake --build build -j"$(nproc)"
