#!/usr/bin/env bash
# Sets up the machine, builds, and runs the quickstart pipeline on the bundled sample data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
./build/lvmflow run config/quickstart.yaml "$@"
