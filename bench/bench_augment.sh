#!/usr/bin/env bash
# bench_augment: does rare-class augmentation help PR-AUC on the demo data? For each bank of a
# fedc synth data set (and the pooled banks) it trains one model per --augment setting with the
# same seed and settings, scores it on the common test set, and prints PR-AUC next to the
# no-augmentation baseline (and the difference). One seed: differences of ~0.01 are noise.
#
#   bench/bench_augment.sh [BUILD_DIR] [DATA_DIR]
#
# DATA_DIR defaults to a fresh `fedc synth --banks 3 --customers 5000 --days 100 --seed 1` (the
# demo's data) in a temporary directory.
set -euo pipefail
build=${1:-build}
fedc="$build/cli/fedc"
[[ -x "$fedc" ]] || { echo "bench_augment: $fedc not built" >&2; exit 1; }
tmp=$(mktemp -d /tmp/fedc-bench-augment-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
data=${2:-}
if [[ -z "$data" ]]; then
    data="$tmp/data"
    "$fedc" synth --banks 3 --customers 5000 --days 100 --seed 1 --out "$data" > /dev/null
fi
{ cat "$data/bank-a.csv"; tail -n +2 "$data/bank-b.csv"; tail -n +2 "$data/bank-c.csv"; } > "$tmp/pooled.csv"
settings=(none oversample:0.1 smote:0.1 noise:0.1 oversample:0.5 smote:0.5)
printf "%-12s" "train data"
for s in "${settings[@]}"; do printf "  %14s" "$s"; done
printf "\n"
for f in bank-a bank-b bank-c pooled; do
    src="$data/$f.csv"; [[ $f == pooled ]] && src="$tmp/pooled.csv"
    printf "%-12s" "$f"
    base=""
    for s in "${settings[@]}"; do
        OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$fedc" train --data "$src" --label TX_FRAUD \
            --drop CUSTOMER_ID,TX_TIME_DAYS --layers 32,16 --epochs 5 --batch 256 \
            --test-fraction 0 --seed 1 --augment "$s" --quiet --out "$tmp/m.fedc" > /dev/null
        "$fedc" eval --model "$tmp/m.fedc" --data "$data/test.csv" --label TX_FRAUD \
            --metrics-json "$tmp/e.json" > /dev/null 2>&1
        pr=$(sed -n 's/.*"pr_auc":\([0-9.]*\).*/\1/p' "$tmp/e.json")
        if [[ -z "$base" ]]; then base=$pr; printf "  %14.4f" "$pr"
        else printf "  %7.4f (%+.3f)" "$pr" "$(echo "$pr - $base" | bc -l)"; fi
    done
    printf "\n"
done
echo "PR-AUC on test.csv (the last 20 days of all banks); in brackets: difference from 'none'."
