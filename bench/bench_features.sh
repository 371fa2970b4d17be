#!/usr/bin/env bash
# fedc features against pandas on the issue's spec (issue 16), in one run:
#
#   fedc features --calendar --window 'CUSTOMER_ID:1,7,30:count,mean=TX_AMOUNT;
#                                      TERMINAL_ID:1,7,30:count,rate=TX_FRAUD:delay=7'
#
# on ROWS raw transactions in time order made by features_gen (5000 customers, 10000 terminals,
# 183 days; timestamps may repeat: both sides count equal times in file order, see
# bench/pandas_features.py). fedc runs RUNS times (the best is kept), end to end: reading and
# parsing the CSV, the windows, writing the output (into a new file each run, fsynced and renamed
# into place as fedc always does). pandas (bench/pandas_features.py, groupby +
# time-based rolling as the fraud detection handbook defines the features) runs once, also end to
# end (read_csv, the features, to_csv), and then compares its values with fedc's: counts and the
# calendar columns exactly, means and rates within 1e-9 relative. Prints both times, rows/s and
# the ratio, in wall and in CPU time (on a shared machine the CPU time is the steadier), fedc's
# best and median. A benchmark: it prints figures and fails only when the values differ or a step
# fails.
#
#   bench/bench_features.sh [ROWS] [--runs N] [--build DIR] [--ties|--unique] [--keep DIR]
#                           [--vs FEDC]
#       ROWS default 1300000; --build default build/ (BUILD env var also accepted); --keep leaves
#       the files in DIR (else a temporary directory, removed); --vs times another fedc binary
#       (an earlier version, say) on the same input, its runs alternating with this one's, checks
#       that it writes the same bytes and prints both side by side
# Needs: the build (fedc, bench/features_gen) and pandas in the benchmarks' virtual environment,
# which scripts/python-venv.sh bench creates on first use (pip install -r
# scripts/requirements-bench.txt; python3-venv on Debian: scripts/install-deps.sh --bench).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
ROWS=1300000
RUNS=3
TIES=ties
KEEP=
VS=

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) [[ $# -ge 2 ]] || { echo "bench_features: --runs needs a number" >&2; exit 2; }
            RUNS=$2; shift ;;
    --build) [[ $# -ge 2 ]] || { echo "bench_features: --build needs a directory" >&2; exit 2; }
             BUILD=$2; shift ;;
    --keep) [[ $# -ge 2 ]] || { echo "bench_features: --keep needs a directory" >&2; exit 2; }
            KEEP=$2; shift ;;
    --vs) [[ $# -ge 2 ]] || { echo "bench_features: --vs needs a fedc binary" >&2; exit 2; }
          VS=$2; shift ;;
    --ties) TIES=ties ;;
    --unique) TIES=unique ;;
    -h|--help) usage; exit 0 ;;
    [0-9]*) ROWS=$1 ;;
    *) echo "bench_features: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

FEDC=$BUILD/cli/fedc
GEN=$BUILD/bench/features_gen
for b in "$FEDC" "$GEN" ${VS:+"$VS"}; do
  [[ -x "$b" ]] || { echo "bench_features: $b not built (cmake --build $BUILD)" >&2; exit 1; }
done
PY=$("$ROOT/scripts/python-venv.sh" bench | tail -n 1)

if [[ -n "$KEEP" ]]; then
  mkdir -p "$KEEP"
  WORK=$KEEP
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/fedc-bench-features-XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
fi

echo "## input: $ROWS transactions (features_gen: 5000 customers, 10000 terminals, 183 days," \
     "timestamps $TIES)"
"$GEN" "$ROWS" 5000 10000 183 1 "$TIES" > "$WORK/tx.csv"
ls -l "$WORK/tx.csv" | awk '{printf "   %s bytes\n", $5}'

WIN='CUSTOMER_ID:1,7,30:count,mean=TX_AMOUNT;TERMINAL_ID:1,7,30:count,rate=TX_FRAUD:delay=7'
TIMEFORMAT='%R %U %S'
# one timed run of fedc binary $1 into $2; prints "wall cpu"
run_one() {
  local t
  # each run writes a new file, as pandas does below: replacing the last run's output would add
  # the kernel's freeing of its pages (143 MB: about 40 ms in rename(2) on the development VM)
  rm -f "$2"
  t=$( { time "$1" features --data "$WORK/tx.csv" --time TX_DATETIME --out "$2" --calendar \
    --window "$WIN" ; } 2>&1 )
  echo "$t" | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }'
}
# best and median of the numbers given
best_of() { printf '%s\n' "$@" | sort -g | head -n 1; }
median_of() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
  printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "## fedc features, $RUNS runs (end to end: read, windows, write; wall and CPU seconds)"
walls=() cpus=() vwalls=() vcpus=()
for ((i = 1; i <= RUNS; i++)); do
  read -r s c < <(run_one "$FEDC" "$WORK/fedc.csv")
  walls+=("$s") cpus+=("$c")
  line="   run $i: $s s wall, $c s CPU"
  if [[ -n "$VS" ]]; then
    read -r s c < <(run_one "$VS" "$WORK/vs.csv")
    vwalls+=("$s") vcpus+=("$c")
    line="$line; --vs: $s s wall, $c s CPU"
  fi
  echo "$line"
done
best=$(best_of "${walls[@]}") bestcpu=$(best_of "${cpus[@]}")
med=$(median_of "${walls[@]}") medcpu=$(median_of "${cpus[@]}")
echo "   fedc: best $best s wall ($(awk -v n="$ROWS" -v s="$best" 'BEGIN { printf "%.0f", n / s }')" \
     "rows/s), $bestcpu s CPU; median $med s wall" \
     "($(awk -v n="$ROWS" -v s="$med" 'BEGIN { printf "%.0f", n / s }') rows/s), $medcpu s CPU"
if [[ -n "$VS" ]]; then
  vbest=$(best_of "${vwalls[@]}") vbestcpu=$(best_of "${vcpus[@]}")
  vmed=$(median_of "${vwalls[@]}") vmedcpu=$(median_of "${vcpus[@]}")
  echo "   --vs $VS: best $vbest s wall, $vbestcpu s CPU; median $vmed s wall, $vmedcpu s CPU"
  awk -v a="$best" -v b="$vbest" -v c="$bestcpu" -v d="$vbestcpu" -v e="$med" -v f="$vmed" \
      -v g="$medcpu" -v h="$vmedcpu" 'BEGIN {
    printf "   fedc is %.2fx as fast as --vs (best wall), %.2fx (best CPU), %.2fx (median wall), %.2fx (median CPU)\n",
           b / a, d / c, f / e, h / g }'
  if ! cmp -s "$WORK/fedc.csv" "$WORK/vs.csv"; then
    echo "bench_features: --vs wrote other bytes than fedc ($(cmp "$WORK/fedc.csv" "$WORK/vs.csv" 2>&1))" >&2
    exit 1
  fi
  echo "   --vs wrote the same bytes"
fi

echo "## pandas (bench/pandas_features.py: read_csv, groupby + time-based rolling, to_csv)"
set +e
"$PY" "$ROOT/bench/pandas_features.py" --data "$WORK/tx.csv" --out "$WORK/pandas.csv" \
  --fedc-out "$WORK/fedc.csv" | tee "$WORK/pandas.log"
cmp_rc=${PIPESTATUS[0]}
set -e
field() { awk -v k="$1" '/^pandas / { for (i = 1; i <= NF; i++) if ($i == k) print $(i + 1) }' \
  "$WORK/pandas.log"; }
total=$(field total)
feat=$(field features)
cpu=$(field cpu)
echo "## summary ($ROWS rows, $(nproc) cores, one used by each side; load $(cut -d ' ' -f 1-3 /proc/loadavg))"
awk -v n="$ROWS" -v f="$best" -v fc="$bestcpu" -v p="$total" -v pc="$cpu" -v q="$feat" \
    -v m="$med" -v mc="$medcpu" 'BEGIN {
  printf "   fedc    %8.3f s  %10.0f rows/s  (end to end, best; %.3f s CPU)\n", f, n / f, fc
  printf "   fedc    %8.3f s  %10.0f rows/s  (end to end, median; %.3f s CPU)\n", m, n / m, mc
  printf "   pandas  %8.3f s  %10.0f rows/s  (end to end; %.3f s CPU; the features alone %.3f s)\n",
         p, n / p, pc, q
  printf "   fedc is %.1fx faster end to end (%.1fx in CPU time, %.1fx against pandas'"'"' features alone; best)\n",
         p / f, pc / fc, q / f
  printf "   fedc is %.1fx faster end to end (%.1fx in CPU time; median)\n", p / m, pc / mc
}'
if [[ $cmp_rc -ne 0 ]]; then
  echo "bench_features: the values differ (see above)" >&2
  exit 1
fi
