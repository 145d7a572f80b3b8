#!/usr/bin/env bash
# Configures and builds lvmflow (Release, Ninja, ccache) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLVMFLOW_ONLY_FAMILIES= >/dev/null
cmake --build build -j"$(nproc)"
