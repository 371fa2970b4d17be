#!/usr/bin/env bash
# make demo: trains a fraud model on the bundled real card-fraud sample, evaluates the saved model,
# and runs the small worked example. Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
fedc="$build/cli/fedc"
[[ -x "$fedc" ]] || { echo "demo: $fedc not built (run make build)" >&2; exit 1; }
out=out/demo
mkdir -p "$out"
data=tests/fixtures/ulb_creditcard/creditcard_balanced984.csv

echo "== fedc demo: card-fraud detection on real transactions (ULB/Worldline sample, 984 rows)"
echo "   (the federation itself arrives with the next issues; this is the central baseline)"
"$fedc" train --data "$data" --label Class --layers 32,16 --epochs 60 --patience 8 \
    --stop-metric pr_auc --dropout 0.1 --seed 7 \
    --out "$out/fraud.fedc" --metrics-json "$out/fraud-metrics.json"
echo
echo "== evaluating the saved model file on the whole sample"
"$fedc" eval --model "$out/fraud.fedc" --data "$data" --metrics-json "$out/eval-metrics.json"
echo
echo "== the worked example: study hours and attendance -> pass, a 2-3-1 sigmoid network"
"$build/examples/study_hours"
echo
echo "demo outputs: $out/fraud.fedc, $out/fraud-metrics.json, $out/eval-metrics.json"
