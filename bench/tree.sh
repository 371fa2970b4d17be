#!/usr/bin/env bash
# tree.sh [BUILD] [ROUNDS] [RUNS]
#
# A tree of coordinators against the flat federation, side by side (issue 18): the Taiwan credit
# data (tests/fixtures/taiwan_default, 30,000 rows) split row i -> client i % 9; the flat run is
# one fedc-coordinator with the 9 clients, the tree a root with 3 edges (fedc-coordinator
# --upstream) of 3 clients each. Both run ROUNDS rounds (default 20) with secure aggregation at
# every tier, the defaults otherwise (SGD 0.05, 2 local epochs, one hidden layer of 25), --seed 7,
# on loopback TCP without CurveZMQ (--insecure), OMP_NUM_THREADS=1 per process. The two
# alternate RUNS times (default 3) so that both see the same machine load. Prints per run the
# wall time (start of the processes to the root's exit), the final round's validation ROC-AUC
# and PR-AUC, the largest parameter difference of the two final models, then the medians.
# BUILD is a build directory with fedc-coordinator, fedc-client and bench/bench_model_diff
# (default: build).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
rounds=${2:-20}
runs=${3:-3}
coord=$build/coordinator/fedc-coordinator
client=$build/client/fedc-client
diff=$build/bench/bench_model_diff
for p in "$coord" "$client" "$diff"; do
    [[ -x $p ]] || { echo "$0: $p is missing (cmake --build $build)" >&2; exit 2; }
done
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
export OMP_NUM_THREADS=1
data=$here/tests/fixtures/taiwan_default/default_of_credit_card_clients.csv
awk -F, -v dir="$tmp" 'NR == 1 {for (k = 0; k < 9; k++) print > (dir "/s" k ".csv"); next}
    {print > (dir "/s" ((NR - 2) % 9) ".csv")}' "$data"
common=(--insecure --seed 7 --rounds "$rounds" --wait-timeout 120)
cargs=(--insecure --label default_payment_next_month --drop ID)
port=$((21000 + ($$ % 2000) * 8))

now() { date +%s.%N; }
secs=0
# The final round's field from a metrics file.
last() { tail -n 1 "$1" | sed -n "s/.*\"$2\":\([-0-9.e]*\).*/\1/p"; }

run_flat() { # $1 run dir
    local d=$1 ep=tcp://127.0.0.1:$port t0
    mkdir -p "$d"
    t0=$(now)
    "$coord" --bind "$ep" "${common[@]}" --min-clients 9 --model-out "$d/model.fedc" \
        --metrics-json "$d/metrics.jsonl" > "$d/root.out" 2> "$d/root.err" &
    local root=$!
    pids+=("$root")
    for k in $(seq 0 8); do
        "$client" --connect "$ep" --name "c$k" --data "$tmp/s$k.csv" "${cargs[@]}" \
            > "$d/c$k.out" 2> "$d/c$k.err" &
        pids+=($!)
    done
    wait "$root" || { cat "$d/root.err" >&2; exit 1; }
    secs=$(echo "$(now) - $t0" | bc)
}

run_tree() { # $1 run dir
    local d=$1 ep=tcp://127.0.0.1:$((port + 1)) t0
    mkdir -p "$d"
    t0=$(now)
    "$coord" --bind "$ep" "${common[@]}" --min-clients 3 --model-out "$d/model.fedc" \
        --metrics-json "$d/metrics.jsonl" > "$d/root.out" 2> "$d/root.err" &
    local root=$!
    pids+=("$root")
    for e in 0 1 2; do
        local eep=tcp://127.0.0.1:$((port + 2 + e))
        "$coord" --bind "$eep" --upstream "$ep" --name "edge$e" --insecure --seed 7 \
            --rounds "$rounds" --wait-timeout 120 --min-clients 3 \
            > "$d/edge$e.out" 2> "$d/edge$e.err" &
        pids+=($!)
        for j in 0 1 2; do
            local k=$((3 * e + j))
            "$client" --connect "$eep" --name "c$k" --data "$tmp/s$k.csv" "${cargs[@]}" \
                > "$d/c$k.out" 2> "$d/c$k.err" &
            pids+=($!)
        done
    done
    wait "$root" || { cat "$d/root.err" >&2; exit 1; }
    secs=$(echo "$(now) - $t0" | bc)
}

echo "max |parameter difference| of the final models: tree vs flat (the same run), flat vs flat"
echo "(this run's flat model against run 1's)"
printf "%4s  %10s %10s  %9s %9s  %9s %9s  %12s %12s\n" run flat_s tree_s flat_roc tree_roc \
    flat_pr tree_pr tree_vs_flat flat_vs_flat
for ((i = 1; i <= runs; i++)); do
    run_flat "$tmp/flat$i"
    fs=$secs
    run_tree "$tmp/tree$i"
    ts=$secs
    wait # the clients and edges end with their root (told the run is complete)
    pids=()
    cmp=$("$diff" "$tmp/flat$i/model.fedc" "$tmp/tree$i/model.fedc" | awk '{print $4}')
    # The baseline: two runs of the same flat federation differ too (the quantiser's rounding
    # draws secret randomness), by the same order when the tree is right.
    base=-
    ((i > 1)) && base=$("$diff" "$tmp/flat1/model.fedc" "$tmp/flat$i/model.fedc" | awk '{print $4}')
    printf "%4d  %10.2f %10.2f  %9.4f %9.4f  %9.4f %9.4f  %12s %12s\n" "$i" "$fs" "$ts" \
        "$(last "$tmp/flat$i/metrics.jsonl" val_roc_auc)" \
        "$(last "$tmp/tree$i/metrics.jsonl" val_roc_auc)" \
        "$(last "$tmp/flat$i/metrics.jsonl" val_pr_auc)" \
        "$(last "$tmp/tree$i/metrics.jsonl" val_pr_auc)" "$cmp" "$base" | tee -a "$tmp/rows"
    port=$((port + 5))
done
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
fm=$(awk '{print $2}' "$tmp/rows" | median)
tm=$(awk '{print $3}' "$tmp/rows" | median)
printf "median wall time over %d runs (%d rounds): flat %.2f s, tree %.2f s, tree/flat %.2f\n" \
    "$runs" "$rounds" "$fm" "$tm" "$(echo "$tm / $fm" | bc -l)"
