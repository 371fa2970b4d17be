#!/usr/bin/env bash
# Compares fedc's dense-network throughput with PyTorch's (Debian python3-torch on OpenBLAS).
#
# Torch side: runs bench/torch_mlp.py with /usr/bin/python3 (training samples/s and torch.mm
# GFLOP/s; see that file's header for what is timed) at 1 thread and at 2 threads, the 2-thread
# runs both with OMP_WAIT_POLICY=passive and with the libgomp default, and prints for each
# model x batch (and each GEMM shape) every setting and the best one. PyTorch gets its best:
# OPENBLAS_CORETYPE is pinned to SkylakeX when the CPU has avx512f (Haswell with only avx2),
# OPENBLAS_NUM_THREADS matches the thread count, and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE /
# OMP_WAIT_POLICY from the caller's environment are overridden for these commands only.
# It also checks that the pinned OpenBLAS kernel is not slower than OpenBLAS's own choice
# (256x256x256 torch.mm, OPENBLAS_CORETYPE unset).
# fedc side: fedc_side() runs "$BUILD/bench/bench_nn" when it is built.
#
#   bench/compare_torch.sh [--quick] [--build DIR]     (BUILD env var also accepted; default build/)
# Needs: scripts/install-deps.sh --bench  (python3-torch, libopenblas0-pthread)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PY=/usr/bin/python3
TORCH_MLP=$ROOT/bench/torch_mlp.py
QUICK=()

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=(--quick) ;;
    --build) [[ $# -ge 2 ]] || { echo "compare_torch: --build needs a directory" >&2; exit 2; }
             BUILD=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare_torch: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

# ---------------------------------------------------------------------------------------------
# fedc side: bench_nn's training lines, best of 1 and 2 threads, against torch's best setting.
# ---------------------------------------------------------------------------------------------
fedc_side() {
  local bin=$BUILD/bench/bench_nn
  echo "## fedc: $bin"
  if [[ ! -x "$bin" ]]; then
    echo "fedc bench_nn not built ($bin not found); build the project (bench target) first," \
         "or pass --build DIR"
    return
  fi
  "$bin" "${QUICK[@]}" | tee "$OUT/fedc"
  echo
  echo "## fedc vs torch: training samples/s, each side's best thread setting"
  awk '
    FNR == NR && $1 == "torch_best" && / samples_per_s=/ {   # torch training summary lines
      split("", f)
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      t[f["model"] " " f["batch"]] = f["samples_per_s"]; tw[f["model"] " " f["batch"]] = f["setting"]
      next
    }
    FNR == NR { next }
    $1 == "train" {
      split("", f)
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      id = f["model"] " " f["batch"]
      if (!(id in best) || f["samples_per_s"] + 0 > best[id] + 0) { best[id] = f["samples_per_s"]; bt[id] = f["threads"] }
      if (!(id in seen)) { seen[id] = 1; order[++n] = id }
    }
    END {
      for (k = 1; k <= n; k++) {
        id = order[k]; split(id, p, " ")
        printf "ratio model=%s batch=%s fedc_best=%.0f (threads=%s) torch_best=%.0f (%s) fedc/torch=%.2f\n",
               p[1], p[2], best[id], bt[id], t[id], tw[id], (t[id] > 0 ? best[id] / t[id] : 0)
      }
    }' "$OUT/torch_summary" "$OUT/fedc"
}

# ---------------------------------------------------------------------------------------------
# Torch side
# ---------------------------------------------------------------------------------------------
if [[ ! -x "$PY" ]] || ! import_err=$("$PY" -c 'import torch' 2>&1); then
  echo "compare_torch: error: $PY cannot import torch${import_err:+ (${import_err##*$'\n'})}." >&2
  echo "  Install PyTorch and OpenBLAS with: scripts/install-deps.sh --bench" >&2
  exit 1
fi

if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  CORETYPE=SkylakeX
elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
  CORETYPE=Haswell
else
  CORETYPE=""  # let OpenBLAS choose
fi

# run_torch THREADS WAIT_POLICY CORETYPE ARGS... ; "" for WAIT_POLICY / CORETYPE means unset.
run_torch() {
  local threads=$1 wait=$2 core=$3
  shift 3
  local e=(env -u OPENBLAS_L2_SIZE -u OPENBLAS_CORETYPE -u OMP_WAIT_POLICY
           OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads")
  [[ -n "$core" ]] && e+=(OPENBLAS_CORETYPE="$core")
  [[ -n "$wait" ]] && e+=(OMP_WAIT_POLICY="$wait")
  "${e[@]}" "$PY" "$TORCH_MLP" --threads "$threads" "${QUICK[@]}" "$@"
}

OUT=$(mktemp -d "${TMPDIR:-/tmp}/compare_torch.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

# Settings: label threads wait_policy
SETTINGS=("t1 1 -" "t2-passive 2 passive" "t2-default 2 -")

loadavg() { echo "## load average (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" \
                 "on $(nproc) CPUs; 2-thread numbers are unreliable when other work runs"; }
loadavg
echo "## torch: $("$PY" -c 'import torch; print(torch.__version__)'), OPENBLAS_CORETYPE=${CORETYPE:-unset}" \
     "(caller had OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset})"
for mode in train gemm; do
  for s in "${SETTINGS[@]}"; do
    read -r label threads wait <<<"$s"
    [[ $wait == - ]] && wait=""
    echo "## torch $mode $label (threads=$threads OMP_WAIT_POLICY=${wait:-unset})"
    args=()
    [[ $mode == gemm ]] && args=(--gemm)
    run_torch "$threads" "$wait" "$CORETYPE" "${args[@]}" | tee "$OUT/$mode.$label"
  done
done

echo "## OpenBLAS kernel check: 256x256x256 torch.mm, 1 thread"
for core in "$CORETYPE" ""; do
  run_torch 1 "" "$core" --gemm --models "" | awk -v c="${core:-unset(auto)}" \
    '/^torch_gemm/ { print "openblas_coretype=" c, $2, $3, $4 }'
done

# Summary: every setting and the best per configuration.
loadavg
echo "## torch summary (best of: ${SETTINGS[*]%% *})"
summarize() {  # summarize MODE VALUE_KEY ID_KEYS... ; reads $OUT/MODE.<setting>, one row per id
  local mode=$1 value=$2
  shift 2
  for s in "${SETTINGS[@]}"; do
    label=${s%% *}
    awk -v L="$label" -v V="$value" -v keys="$*" '
      $1 ~ /^torch/ {
        n = split(keys, k, " "); id = ""; val = ""
        for (i = 2; i <= NF; i++) {
          split($i, kv, "=")
          for (j = 1; j <= n; j++) if (kv[1] == k[j]) id = id (id == "" ? "" : " ") $i
          if (kv[1] == V) val = kv[2]
        }
        print id "\t" L "\t" val
      }' "$OUT/$mode.$label"
  done | awk -F'\t' -v V="$value" '
    !($1 in seen) { seen[$1] = 1; order[++n] = $1 }
    { row[$1] = row[$1] sprintf(" %s=%s", $2, $3)
      if (!($1 in best) || $3 + 0 > best[$1] + 0) { best[$1] = $3; who[$1] = $2 } }
    END { for (i = 1; i <= n; i++)
            printf "torch_best %s %s=%s setting=%s |%s\n", order[i], V, best[order[i]],
                   who[order[i]], row[order[i]] }'
}
{ summarize train samples_per_s model batch
  summarize gemm gflops shape model layer batch op; } | tee "$OUT/torch_summary"

echo
fedc_side
