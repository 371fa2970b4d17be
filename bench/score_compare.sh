#!/usr/bin/env bash
# Scoring latency and throughput side by side, in one run: fedc's scoring API (bench_score),
# PyTorch (Debian's python3-torch, torch.inference_mode, one row per call) and onnxruntime (the
# same weights exported by torch.onnx.export), each on one core (taskset -c CPU), for the small
# (30-64-32-1) and the wide (30-512-256-1) model; then a summary of p50/p99 and the ratios.
#
#   bench/score_compare.sh [--build DIR] [--calls N] [--cpu CPU]
#
# Needs: scripts/install-deps.sh --bench (python3-torch, python3-venv). onnxruntime is not a
# Debian package: this script installs it from PyPI into a virtual environment of its own,
# $BUILD/bench-venv (made with --system-site-packages, so that Debian's torch is used), on its
# first run. Without network access the onnxruntime lines are left out.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
CALLS=100000
CPU=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD=$2; shift ;;
    --calls) CALLS=$2; shift ;;
    --cpu) CPU=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "score_compare: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
BIN=$BUILD/bench/bench_score
[[ -x $BIN ]] || { echo "score_compare: $BIN not built (cmake --build $BUILD --target bench_score)" >&2; exit 1; }
/usr/bin/python3 -c 'import torch' 2>/dev/null ||
  { echo "score_compare: Debian's python3 cannot import torch: scripts/install-deps.sh --bench" >&2; exit 1; }

VENV=$BUILD/bench-venv
if [[ ! -x $VENV/bin/python ]]; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
if ! "$VENV/bin/python" -c 'import onnxruntime' 2>/dev/null; then
  "$VENV/bin/python" -m pip install --quiet onnxruntime ||
    echo "score_compare: could not install onnxruntime from PyPI; its lines are left out" >&2
fi

OUT=$(mktemp -d "${TMPDIR:-/tmp}/score_compare.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
echo "## load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs; everything pinned to CPU $CPU"
echo "## cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
taskset -c "$CPU" "$BIN" --calls "$CALLS" --export "$OUT" | tee "$OUT/fedc.txt"
taskset -c "$CPU" "$VENV/bin/python" "$ROOT/bench/score_compare.py" "$OUT" --calls "$CALLS" |
  tee "$OUT/py.txt"

echo "## summary: single-row latency in microseconds (p50 / p99) and batch rows/s, one core"
awk '
  { split("", f); for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
  $1 ~ /_row$/   { rt = $1; sub(/_row$/, "", rt); p50[rt, f["model"]] = f["p50_ns"]; p99[rt, f["model"]] = f["p99_ns"]; models[f["model"]] = 1; rts[rt] = 1 }
  $1 ~ /_batch$/ { rt = $1; sub(/_batch$/, "", rt); thr[rt, f["model"]] = f["rows_per_s"] }
  END {
    for (m in models) {
      for (rt in rts) {
        if (!((rt, m) in p50)) continue
        line = sprintf("%-12s model=%-14s p50=%8.2f us  p99=%8.2f us  batch=%11.0f rows/s", rt, m,
                       p50[rt, m] / 1000, p99[rt, m] / 1000, thr[rt, m])
        if (rt != "fedc" && (("fedc", m) in p99))
          line = line sprintf("  p99 %s/fedc = %.1fx", rt, p99[rt, m] / p99["fedc", m])
        print line
      }
    }
  }' "$OUT/fedc.txt" "$OUT/py.txt" | sort
