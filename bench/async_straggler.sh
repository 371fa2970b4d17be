#!/usr/bin/env bash
# async_straggler.sh BUILD [RUNS] [SLOW_MS] [SECAGG]
#
# Synchronous rounds against buffered asynchronous aggregation (fedc-coordinator --mode async,
# FedBuff) with one straggler, side by side: the Taiwan credit fixture split row by row over 5
# clients on loopback (--insecure --secagg off, OMP_NUM_THREADS=1, defaults otherwise), one of
# them slowed by SLOW_MS (default 250) per local training (the client's test-only fault point
# delay:train@*, so BUILD needs FEDC_FAULT_HOOKS, on in builds with tests). Per run, alternating:
#   sync   --rounds 10
#   async  --rounds 40 --buffer 3 --max-staleness 30
# and prints per mode the median over RUNS (default 3) of: the training seconds of a fast and of
# the slow client (from their --metrics-json), the wall time of all rounds/steps (the sum of the
# metrics lines' seconds, round 0 excluded), the final validation ROC-AUC, and for async the time
# until its ROC-AUC first reached the sync run's final ROC-AUC minus 0.01, and that over sync's
# time. SECAGG on runs both modes with secure aggregation (async: one SecAgg+ session per buffer
# of K held updates, coordinator/async_sa.c); default off.
set -euo pipefail
build=${1:?usage: $0 BUILD [RUNS] [SLOW_MS] [SECAGG]}
runs=${2:-3}
slow=${3:-250}
secagg=${4:-off}
[[ $secagg == on || $secagg == off ]] || { echo "$0: SECAGG is on or off, got '$secagg'" >&2; exit 2; }
coord=$build/coordinator/fedc-coordinator
client=$build/client/fedc-client
[[ -x $coord && -x $client ]] || { echo "$0: $build has no fedc-coordinator/fedc-client" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
data=$here/../tests/fixtures/taiwan_default/default_of_credit_card_clients.csv
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
awk -F, -v d="$tmp" 'NR == 1 {for (k = 0; k < 5; k++) print > (d "/s" k ".csv"); next}
                     {print > (d "/s" ((NR - 2) % 5) ".csv")}' "$data"
export OMP_NUM_THREADS=1
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# run NAME FLAGS...: one federation; its metrics in $tmp/NAME.m, the clients' in $tmp/NAME.cK
run() {
    local name=$1
    shift
    local port
    port=$(free_port)
    "$coord" --bind "tcp://127.0.0.1:$port" --insecure --secagg "$secagg" --min-clients 5 --quiet \
        --wait-timeout 60 --metrics-json "$tmp/$name.m" "$@" > /dev/null 2> "$tmp/$name.err" &
    local cp=$!
    pids=("$cp")
    for k in 0 1 2 3 4; do
        local fault=""
        [[ $k == 4 ]] && fault="c4/delay:train@*:$slow"
        FEDC_FAULT=$fault "$client" --connect "tcp://127.0.0.1:$port" --insecure --secagg "$secagg" \
            --name "c$k" --data "$tmp/s$k.csv" --label default_payment_next_month --drop ID \
            --quiet --coordinator-timeout 30 --metrics-json "$tmp/$name.c$k" \
            > /dev/null 2>> "$tmp/$name.err" &
        pids+=("$!")
    done
    wait "$cp" || { tail -20 "$tmp/$name.err" >&2; exit 1; }
    wait
    pids=()
}
# num FILE KEY: the KEY numbers of every line of FILE
num() { grep -o "\"$2\":[-0-9.e]*" "$1" | cut -d: -f2; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for ((i = 1; i <= runs; i++)); do
    run "sync$i" --mode sync --rounds 10
    run "async$i" --mode async --rounds 40 --buffer 3 --max-staleness 30
    target=$(num "$tmp/sync$i.m" val_roc_auc | tail -1)
    for m in sync async; do
        f=$tmp/$m$i.m
        paste <(num "$f" seconds) <(num "$f" val_roc_auc) | awk -v t="$target" '
            {s += $1; if (!r && $2 >= t - 0.01) {r = s}} END {print s, $2, r}' >> "$tmp/$m.rows"
        num "$tmp/$m$i.c0" seconds | median >> "$tmp/$m.fast"
        num "$tmp/$m$i.c4" seconds | median >> "$tmp/$m.slow"
    done
done
col() { awk -v c="$2" '{print $c}' "$1" | median; }
st=$(col "$tmp/sync.rows" 1)
printf "%-6s %14s %14s %12s %12s %22s %10s\n" mode fast_train_s slow_train_s wall_s final_auc \
    "reach_sync-0.01_s" "reach/sync"
for m in sync async; do
    w=$(col "$tmp/$m.rows" 1)
    a=$(col "$tmp/$m.rows" 2)
    r=$(col "$tmp/$m.rows" 3)
    printf "%-6s %14.4f %14.4f %12.3f %12.4f %22.3f %10.3f\n" "$m" "$(median < "$tmp/$m.fast")" \
        "$(median < "$tmp/$m.slow")" "$w" "$a" "$r" "$(awk -v r="$r" -v s="$st" 'BEGIN {print r / s}')"
done
echo "medians over $runs alternating runs; Taiwan credit, 5 clients (row i to client i % 5), one" \
    "slowed by $slow ms per training; loopback, --insecure --secagg $secagg, OMP_NUM_THREADS=1"
