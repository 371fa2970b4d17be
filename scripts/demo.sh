#!/usr/bin/env bash
# make demo: `fedc demo` — three banks train one card-fraud model with secure aggregation, from raw
# data (fedc synth --raw transactions, each bank's features from fedc features, CurveZMQ keys, a
# coordinator and three clients on loopback), compared with pooling the data and with each bank
# alone; the report lands in demo-out/report.html.
# Usage: scripts/demo.sh [BUILD_DIR] (make demo builds first; running it again reuses the build).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
fedc="$build/cli/fedc"
[[ -x "$fedc" ]] || { echo "demo: $fedc not built (run make build)" >&2; exit 1; }
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$fedc" demo --out demo-out
