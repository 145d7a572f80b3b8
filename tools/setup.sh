#!/usr/bin/env bash
# Installs the Debian 12 packages lvmflow builds and runs against. Idempotent: packages that are
# already present are not touched, and a second run prints nothing.
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libfaiss-dev libtbb-dev libyaml-cpp-dev libsqlite3-dev zlib1g-dev libgtest-dev
  libsentencepiece-dev libbz2-dev nlohmann-json3-dev
  # Gloo headers for libtorch's c10d ProcessGroupGloo (data-parallel lvm.train).
  libgloo-dev
  # A single-node Slurm cluster for the scale-out test (tests/pipeline/slurm_test.cpp).
  munge slurmctld slurmd slurm-client
  # SHA-256 of cache keys and fingerprints (pipeline/hash.cpp): OpenSSL's libcrypto.
  libssl-dev
  # XXH3: the per-file checksums of committed artifacts (pipeline/artifact_check.cpp).
  libxxhash-dev
  # Debian's libtorch calls whatever libblas.so.3 points to; the reference BLAS is ~30x slower.
  libopenblas0-pthread
  # Only used to build test fixtures and the Python peers in benchmarks; lvmflow never needs it.
  python3 python3-torch python3-sentencepiece python3-numpy python3-faiss
  # Headless browser for the test that renders `lvmflow report` (tests/pipeline/report_test.cpp).
  chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Make sure the BLAS libtorch resolves at run time is OpenBLAS, not the reference implementation.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
case "$blas" in
  *openblas*) ;;
  *) update-alternatives --set libblas.so.3-x86_64-linux-gnu \
       /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 >/dev/null ;;
esac
