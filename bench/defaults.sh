#!/usr/bin/env bash
# Chooses fedc's training defaults by measurement (issue 19): federations (`fedc sim`, secure
# aggregation on, as a user runs it) over the bundled data with several seeds, across the client
# optimiser (SGD with momentum 0.9, Adam with its state kept across rounds, Adam started afresh
# every round), learning rate, local epochs, batch, rounds and hidden layers, and centralised
# `fedc train` runs over the same pooled training rows; every model is scored on the same
# held-out test rows. bench/defaults_table.py prints the table: test ROC-AUC and PR-AUC, median
# over the seeds, per setting and data set, and the gap to centralised training.
#
#   bench/defaults.sh [--fedc PATH] [--out DIR] [--jobs N] [--seeds "1 2 3"]
#                     [--stages "central fed1 fed2 synth posw"]
#
# The data, for every seed S:
#   german   German credit (1000 rows), 3 clients iid
#   tw-iid   Taiwan credit default (30000 rows), 3 clients iid
#   tw-dir   the same, 5 clients with Dirichlet(0.5) label skew
#   tw-edu   the same, split by EDUCATION (small groups merged: 4 clients)
#   ulb      the ULB card-fraud sample (984 rows, balanced), 3 clients stratified
#   synth    `fedc synth --banks 3 --customers 500 --days 40`: three banks' transactions, the
#            common test set held out in time (the last 8 days)
# The first five hold out a stratified 20% test part (seed S) before the clients' split (seed S),
# so the three Taiwan splits share the pooled training rows and the test rows of a seed.
#
# Stages: central (fedc train's grid), fed1 (the main federated grid: optimiser x learning rate x
# local epochs at 20 rounds, batch 64, one hidden layer of 25; plus the old defaults), fed2 (the
# best of fed1 with another batch, more rounds, other layers), synth (candidates on the synthetic
# banks, which are the slowest). Results append to DIR/results.tsv (one line per run: stage, data,
# seed, setting, ROC-AUC, PR-AUC, seconds); a run already there is not repeated. Every process
# runs on one thread (OMP_NUM_THREADS=1), at most --jobs at a time (default 2).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fedc=${FEDC:-$here/../build/cli/fedc}
out=bench-defaults
jobs=2
seeds="1 2 3"
stages="central fed1 fed2 synth posw"
while [ $# -gt 0 ]; do
    case $1 in
    --fedc) fedc=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --stages) stages=$2; shift 2 ;;
    *) echo "defaults.sh: unknown argument '$1' (see the comment at the top)" >&2; exit 2 ;;
    esac
done
[ -x "$fedc" ] || { echo "defaults.sh: no fedc program at $fedc (build first, or --fedc)" >&2; exit 2; }
fedc=$(cd "$(dirname "$fedc")" && pwd)/$(basename "$fedc")
mkdir -p "$out"
out=$(cd "$out" && pwd)
fx=$here/../tests/fixtures
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

# ---- data ---------------------------------------------------------------------------------------
# prep NAME FILE LABEL SEED: DIR/data/NAME-S/{train,test}.csv (a stratified 20% test part).
prep() {
    local d=$out/data/$1-$4
    [ -f "$d/train.csv" ] && return 0
    rm -rf "$d.tmp" && mkdir -p "$d.tmp"
    "$fedc" split --data "$2" --label "$3" --scheme stratified --clients 5 --seed "$4" \
        --out "$d.tmp/parts" --quiet
    cp "$d.tmp/parts/client-1.csv" "$d.tmp/test.csv"
    { cat "$d.tmp/parts/client-2.csv"
      for i in 3 4 5; do tail -n +2 "$d.tmp/parts/client-$i.csv"; done; } >"$d.tmp/train.csv"
    rm -rf "$d.tmp/parts" "$d" && mv "$d.tmp" "$d"
}
# shards DIR LABEL SCHEME [CLIENTS] SEED: DIR/shards-SCHEME from DIR/train.csv.
shards() {
    local d=$1 s=$3 sd=$1/shards-${3//[:]/-}
    [ -d "$sd" ] && return 0
    local n=()
    [ -n "$4" ] && n=(--clients "$4")
    [[ $s == dirichlet:* ]] && n+=(--min-rows 10)
    rm -rf "$sd.tmp"
    "$fedc" split --data "$d/train.csv" --label "$2" --scheme "$s" "${n[@]}" --seed "$5" \
        --out "$sd.tmp" --quiet
    # fedc split names a column's groups COL=VALUE.csv; renamed COL-VALUE.csv, the client names
    # (fedc sim --shards names a client after its file, and its seeds follow the name) that the
    # README's figures were run with (fedc sim would take COL=VALUE.csv as client COL_VALUE)
    local f
    for f in "$sd.tmp"/*=*.csv; do [ -e "$f" ] && mv "$f" "${f//=/-}"; done
    mv "$sd.tmp" "$sd"
}
echo "defaults.sh: preparing the data in $out/data" >&2
for s in $seeds; do
    prep german "$fx/german_credit/german_credit_numeric.csv" bad "$s"
    prep taiwan "$fx/taiwan_default/default_of_credit_card_clients.csv" \
        default_payment_next_month "$s"
    prep ulb "$fx/ulb_creditcard/creditcard_balanced984.csv" Class "$s"
    shards "$out/data/german-$s" bad iid 3 "$s"
    shards "$out/data/taiwan-$s" default_payment_next_month iid 3 "$s"
    shards "$out/data/taiwan-$s" default_payment_next_month dirichlet:0.5 5 "$s"
    shards "$out/data/taiwan-$s" default_payment_next_month column:EDUCATION "" "$s"
    shards "$out/data/ulb-$s" Class stratified 3 "$s"
    case " $stages " in
    *" synth "*)
        d=$out/data/synth-$s
        if [ ! -f "$d/train.csv" ]; then
            rm -rf "$d.tmp"
            "$fedc" synth --banks 3 --customers 500 --days 40 --seed "$s" --out "$d.tmp" >/dev/null
            mkdir -p "$d.tmp/shards-banks"
            mv "$d.tmp"/bank-*.csv "$d.tmp/shards-banks/"
            { head -1 "$d.tmp/shards-banks/bank-a.csv"
              for f in "$d.tmp"/shards-banks/bank-*.csv; do tail -n +2 "$f"; done; } >"$d.tmp/train.csv"
            rm -rf "$d" && mv "$d.tmp" "$d"
        fi ;;
    esac
done

# ---- the data sets' federations: name, data directory prefix, label, drop, shard directory ------
fed_sets=("german german bad - shards-iid"
          "tw-iid taiwan default_payment_next_month ID shards-iid"
          "tw-dir taiwan default_payment_next_month ID shards-dirichlet-0.5"
          "tw-edu taiwan default_payment_next_month ID shards-column-EDUCATION"
          "ulb ulb Class - shards-stratified")
synth_set="synth synth TX_FRAUD CUSTOMER_ID,TX_TIME_DAYS shards-banks"
# centralised: one per data directory
cen_sets=("german german bad -" "taiwan taiwan default_payment_next_month ID" "ulb ulb Class -")
cen_synth="synth synth TX_FRAUD CUSTOMER_ID,TX_TIME_DAYS"

# ---- the settings ---------------------------------------------------------------------------------
# A federated setting: optimiser, state, lr, local epochs, batch, rounds, layers.
fed() { echo "--optimizer $1 --optimizer-state $2 --lr $3 --local-epochs $4 --batch $5 --rounds $6 --layers $7"; }
grid_fed1() {
    fed adam fresh 0.001 1 64 20 64,32 # the defaults before issue 19
    for le in 1 2 5; do
        for lr in 0.01 0.03 0.1; do fed sgd fresh $lr $le 64 20 25; done
        for lr in 0.001 0.003 0.01; do
            fed adam kept $lr $le 64 20 25
            fed adam fresh $lr $le 64 20 25
        done
    done
}
# fed2: around the front runners of fed1 (SGD with momentum at 0.1 and 2 local epochs, at 0.03
# and 5): learning rate and local epochs in between, then batch, rounds and layers one at a time.
grid_fed2() {
    fed sgd fresh 0.05 2 64 20 25
    fed sgd fresh 0.05 3 64 20 25
    fed sgd fresh 0.1 3 64 20 25
    fed sgd kept 0.1 2 64 20 25
    for c in "sgd fresh 0.1 2" "sgd fresh 0.03 5"; do
        set -- $c
        fed $1 $2 $3 $4 32 20 25
        fed $1 $2 $3 $4 128 20 25
        fed $1 $2 $3 $4 64 40 25
        fed $1 $2 $3 $4 64 20 64,32
        fed $1 $2 $3 $4 64 20 16
        fed $1 $2 $3 $4 64 20 64
        fed $1 $2 $3 $4 64 20 32,16
    done
}
grid_synth() {
    fed adam fresh 0.001 1 64 20 64,32
    fed sgd fresh 0.05 2 64 20 25
    fed sgd fresh 0.1 2 64 20 25
    fed sgd fresh 0.03 5 64 20 25
    fed sgd fresh 0.1 2 64 20 64,32
    fed adam fresh 0.003 2 64 20 25
    fed adam kept 0.003 2 64 20 25
}
# posw: the front runners and the old defaults with --pos-weight auto (negatives / positives:
# about 2.3 on German credit, 3.5 on Taiwan, 1 on the balanced ULB sample, 150-250 on the
# synthetic banks), which scales the gradients of the positive rows and so suits SGD's learning
# rate less than Adam's, which does not depend on the gradient's scale.
grid_posw() {
    local c
    for c in "adam fresh 0.001 1 64 20 64,32" "sgd fresh 0.1 2 64 20 25" "sgd fresh 0.05 2 64 20 25" \
        "sgd fresh 0.05 3 64 20 25" "sgd fresh 0.01 2 64 20 25" "adam fresh 0.003 2 64 20 25" \
        "adam kept 0.003 2 64 20 25"; do
        echo "$(fed $c) --pos-weight auto"
    done
}
# A centralised setting (fedc train, its early stopping and validation part as they are).
cen() { echo "--optimizer $1 --lr $2 --epochs $3 --batch $4 --layers $5"; }
grid_central() {
    for layers in 64,32 25 16 32,16 64; do
        for lr in 0.001 0.003 0.01; do
            cen adam $lr 20 64 $layers
            cen adam $lr 100 64 $layers
        done
        cen sgd 0.03 100 64 $layers
        cen sgd 0.1 100 64 $layers
    done
}

# ---- the jobs ---------------------------------------------------------------------------------------
res=$out/results.tsv
touch "$res"
jobfile=$out/jobs.txt
: >"$jobfile"
add_job() { # stage data seed setting...
    local key="$1	$2	$3	$4"
    grep -qF "$key	" "$res" || printf '%s\n' "$key" >>"$jobfile"
}
for st in $stages; do
    case $st in
    central)
        while read -r cfg; do
            for s in $seeds; do for c in "${cen_sets[@]}"; do
                set -- $c; add_job central "$1" "$s" "$cfg"; done; done
        done < <(grid_central)
        if [[ " $stages " == *" synth "* ]]; then
            for s in $seeds; do add_job central synth "$s" "$(cen adam 0.003 20 64 25)"
                add_job central synth "$s" "$(cen adam 0.01 20 64 25)"
                add_job central synth "$s" "$(cen adam 0.001 20 64 64,32)"
                add_job central synth "$s" "$(cen adam 0.003 20 64 64,32)"; done
        fi ;;
    fed1 | fed2)
        while read -r cfg; do
            for s in $seeds; do for c in "${fed_sets[@]}"; do
                set -- $c; add_job "$st" "$1" "$s" "$cfg"; done; done
        done < <(grid_$st) ;;
    synth)
        while read -r cfg; do
            for s in $seeds; do add_job synth synth "$s" "$cfg"; done
        done < <(grid_synth) ;;
    posw)
        while read -r cfg; do
            for s in $seeds; do for c in "${fed_sets[@]}" "$synth_set"; do
                set -- $c; add_job posw "$1" "$s" "$cfg"; done; done
        done < <(grid_posw)
        for s in $seeds; do for c in "${cen_sets[@]}" "$cen_synth"; do
            set -- $c; add_job central "$1" "$s" "$(cen adam 0.01 20 64 25) --pos-weight auto"
        done; done ;;
    *) echo "defaults.sh: unknown stage '$st'" >&2; exit 2 ;;
    esac
done

# run_one "STAGE<TAB>DATA<TAB>SEED<TAB>SETTING": one run, one line appended to results.tsv.
run_one() {
    IFS=$'\t' read -r stage data seed cfg <<<"$1"
    local set dir label drop sh
    if [ "$stage" = central ]; then
        for set in "${cen_sets[@]}" "$cen_synth"; do
            read -r name dir label drop <<<"$set"; [ "$name" = "$data" ] && break; done
    else
        for set in "${fed_sets[@]}" "$synth_set"; do
            read -r name dir label drop sh <<<"$set"; [ "$name" = "$data" ] && break; done
    fi
    local d=$out/data/$dir-$seed tmp
    tmp=$(mktemp -d "$out/run.XXXXXX")
    local dropf=()
    [ "$drop" != - ] && dropf=(--drop "$drop")
    local t0 roc pr
    t0=$(date +%s.%N)
    if [ "$stage" = central ]; then
        # shellcheck disable=SC2086
        if "$fedc" train --data "$d/train.csv" --label "$label" "${dropf[@]}" --test-fraction 0 \
            --seed "$seed" --threads 1 --quiet --out "$tmp/m.fedc" $cfg >"$tmp/log" 2>&1 &&
            "$fedc" eval --model "$tmp/m.fedc" --data "$d/test.csv" --metrics-json "$tmp/m.json" \
                >>"$tmp/log" 2>&1; then
            roc=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%.4f %.4f" % (j["roc_auc"], j["pr_auc"]))' "$tmp/m.json")
        else roc="nan nan"; fi
    else
        local list
        list=$(ls "$d/$sh"/*.csv | paste -sd,)
        # shellcheck disable=SC2086
        if "$fedc" sim --shards "$list" --test "$d/test.csv" --label "$label" "${dropf[@]}" \
            --seed "$seed" --baselines none --quiet --summary-json "$tmp/s.json" $cfg \
            >"$tmp/log" 2>&1; then
            roc=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["federated"]; print("%.4f %.4f" % (j["roc_auc"], j["pr_auc"]))' "$tmp/s.json")
        else roc="nan nan"; fi
    fi
    local secs
    secs=$(echo "$(date +%s.%N) - $t0" | bc)
    read -r roc pr <<<"$roc"
    [ "$roc" = nan ] && { echo "defaults.sh: failed: $1" >&2; tail -3 "$tmp/log" >&2; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%.1f\n' "$stage" "$data" "$seed" "$cfg" "$roc" "$pr" "$secs" \
        >>"$res"
    rm -rf "$tmp"
}
export -f run_one
export out fedc res
n=$(wc -l <"$jobfile")
echo "defaults.sh: $n runs to do, $jobs at a time (results in $res)" >&2
# Arrays do not cross into the xargs shells: each job re-sources this file's tables.
tr '\n' '\0' <"$jobfile" | xargs -0 -P "$jobs" -I{} bash -c "$(declare -p fed_sets cen_sets synth_set cen_synth); $(declare -f run_one); run_one \"\$1\"" _ {}
python3 "$here/defaults_table.py" "$res"
