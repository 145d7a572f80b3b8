#!/usr/bin/env bash
# Sets up the machine, builds, and runs every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
ctest --test-dir build --output-on-failure -j2 --timeout 600
