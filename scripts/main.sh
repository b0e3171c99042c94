#!/usr/bin/env bash
# The main job: install dependencies, build kvlab, then on the embedded
# default (random V4-Flash weights, synthetic host) run every study into one
# SQLite database and regenerate the reports from it:
#   stage075_n8      the published n = 8 study (published write path, fp8_per64)
#   stage075_qsweep  its Q sweep, refined until the max usable Q is exact on
#                    the integer Q grid (`kvlab refine` until nothing is added)
#   stage075_seq     the same codecs over up to 32 passages, passages added
#                    until every threshold decision is resolved (family-wise
#                    95 % over all decisions and every look: Holm over the
#                    open decisions at alpha/31 per look)
#   v4_native_n8     V4 as deployed (v4 write path, 584-byte v4_native baseline)
#                    with matched-rate scalar codecs and attention metrics
#   frontier         every codec family over ~1.5-8 bits/dim with bounds,
#                    entropy rates and attention metrics
# and the four published reference files, imported beside them.
#   KVLAB_DB=path   database file (default results/kvlab.db; reused: runs
#                   already done are not redone)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2 --target kvlab
K=build/src/cli/kvlab
DB=${KVLAB_DB:-results/kvlab.db}
REF=../shared/reference
mkdir -p "$(dirname "$DB")" reports
for spec in stage075_n8 stage075_qsweep v4_native_n8 frontier; do
  "$K" queue "experiments/$spec.ini" --db "$DB"
done
# The sequential study starts from 2 passages (the least a CI needs).
"$K" queue experiments/stage075_seq.ini --passages 2 --db "$DB"
"$K" run --db "$DB"

# Refine the Q sweep: queue the Q values between the admissible and the
# inadmissible ones for every threshold and view, run them, repeat until
# nothing is added (two rounds on the default).
for round in 1 2 3 4 5 6; do
  added=0
  for t in A B C; do
    for view in "" --ci-safe --paired; do
      n=$("$K" refine --db "$DB" --experiment stage075_qsweep --threshold "$t" $view --json |
          sed -n 's/^ *"runs_added": *\([0-9]*\).*/\1/p')
      added=$((added + ${n:-0}))
    done
  done
  echo "main: refine round $round queued $added runs"
  [ "$added" -eq 0 ] && break
  "$K" run --db "$DB"
done

"$K" run --until-resolved --spec experiments/stage075_seq.ini --db "$DB"
"$K" status --db "$DB"

# The published study beside the run (SPEC section 6; idempotent re-import).
if [ -d "$REF" ]; then
  for f in n8 qsweep_n8 qsweep_fine_n8 trained; do
    "$K" import published "$REF/stage075_$f.json" --db "$DB" --experiment "published_$f"
  done
  PUB_N8=(--published-db "$DB" --published-experiment published_n8)
  PUB_Q=(--published-db "$DB" --published-experiment published_qsweep_fine_n8)
else
  echo "main: $REF not found; reports are written without the published comparison" >&2
  PUB_N8=() PUB_Q=()
fi

"$K" report findings --db "$DB" --experiment stage075_n8 --out reports/FINDINGS_N8.md "${PUB_N8[@]}"
"$K" report max-usable-cr --db "$DB" --experiment stage075_qsweep --out reports/MAX_USABLE_CR.md "${PUB_Q[@]}"
"$K" report findings --db "$DB" --experiment stage075_seq --out reports/FINDINGS_SEQUENTIAL.md "${PUB_N8[@]}"
"$K" report findings --db "$DB" --experiment v4_native_n8 --out reports/FINDINGS_V4_N8.md "${PUB_N8[@]}"
"$K" report frontier --db "$DB" --experiment frontier --out reports/FRONTIER.md
echo "main: reports written to reports/ (FINDINGS_N8, MAX_USABLE_CR, FINDINGS_SEQUENTIAL, FINDINGS_V4_N8, FRONTIER)"
