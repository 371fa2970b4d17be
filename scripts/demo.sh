#!/usr/bin/env bash
# make demo: a federation of three credit institutions on real data (fedc sim: a coordinator and
# three client processes on loopback TCP, compared with pooling the data and with each alone),
# then a fraud model trained centrally on the bundled card-fraud sample and evaluated from its
# file, and the small worked example. Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
fedc="$build/cli/fedc"
[[ -x "$fedc" ]] || { echo "demo: $fedc not built (run make build)" >&2; exit 1; }
out=out/demo
mkdir -p "$out"
data=tests/fixtures/ulb_creditcard/creditcard_balanced984.csv

echo "== fedc demo: 3 lenders train one credit-default model without pooling their records"
echo "   (UCI Taiwan credit data, 30,000 clients; fedc-coordinator + 3 fedc-client processes on"
echo "   loopback TCP with CurveZMQ and a key allow-list; secure aggregation comes next)"
OMP_NUM_THREADS=1 "$fedc" sim --data tests/fixtures/taiwan_default/default_of_credit_card_clients.csv \
    --label default_payment_next_month --drop ID --clients 3 --split dirichlet:1.0 --rounds 15 \
    --optimizer sgd --lr 0.03 --layers 32,16 --metrics-json "$out/federated-rounds.jsonl" \
    --work-dir "$out/federation"
echo
echo "== card-fraud detection on real transactions (ULB/Worldline sample, 984 rows), centrally"
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
echo "demo outputs: $out/federation/global.fedc (federated model), $out/federated-rounds.jsonl,"
echo "  $out/fraud.fedc, $out/fraud-metrics.json, $out/eval-metrics.json"
