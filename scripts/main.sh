#!/usr/bin/env bash
# The main job: install dependencies, build kvlab, queue the n = 8 study and
# the Q sweep on the embedded default (random V4-Flash weights, synthetic
# host), run them into an SQLite database, then regenerate the reports.
#   KVLAB_DB=path   database file (default results/kvlab.db; reused: runs
#                   already done are not redone)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2 --target kvlab
K=build/src/cli/kvlab
DB=${KVLAB_DB:-results/kvlab.db}
mkdir -p "$(dirname "$DB")" reports
"$K" queue experiments/stage075_n8.ini --db "$DB"
"$K" queue experiments/stage075_qsweep.ini --db "$DB"
"$K" run --db "$DB"
"$K" status --db "$DB"
"$K" report findings --db "$DB" --experiment stage075_n8 --out reports/FINDINGS_N8.md
"$K" report max-usable-cr --db "$DB" --experiment stage075_qsweep --out reports/MAX_USABLE_CR.md
echo "main: reports written to reports/FINDINGS_N8.md and reports/MAX_USABLE_CR.md"
