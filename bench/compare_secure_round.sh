#!/usr/bin/env bash
# compare_secure_round.sh BASE_BUILD NEW_BUILD [RUNS] [CLIENTS]
#
# Secure round time of two builds side by side: runs each build's bench_round against its own
# fedc-coordinator (--secagg, 100k parameters, 10 rounds per configuration), alternating the two
# builds RUNS times (default 5) so that both see the same machine load, and prints per client
# count the median over runs of each build's median secure round, the ratio new / base, and the
# wire ratio secure / plain. The base is typically a checkout of an earlier commit built with
# `cmake -S . -B build && cmake --build build --target fedc-coordinator bench_round`.
set -euo pipefail
base=${1:?usage: $0 BASE_BUILD NEW_BUILD [RUNS] [CLIENTS]}
new=${2:?usage: $0 BASE_BUILD NEW_BUILD [RUNS] [CLIENTS]}
runs=${3:-5}
clients=${4:-10,100}
for b in "$base" "$new"; do
    [[ -x $b/bench/bench_round && -x $b/coordinator/fedc-coordinator ]] \
        || { echo "$0: $b has no bench/bench_round or coordinator/fedc-coordinator" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((i = 1; i <= runs; i++)); do
    for which in base new; do
        b=$base
        [[ $which == new ]] && b=$new
        "$b/bench/bench_round" "$b/coordinator/fedc-coordinator" --clients "$clients" \
            --small-rounds 10 --no-big --secagg > "$tmp/$which.$i" 2>&1 \
            || { cat "$tmp/$which.$i" >&2; exit 1; }
        # The "secure vs plain" table: clients parameters plain_ms secure_ms ratio wire.
        awk '/^secure vs plain/ {t = 1; next} t && /^ *[0-9]/ {print $1, $4, $6}' \
            "$tmp/$which.$i" >> "$tmp/$which.rows"
    done
done
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
printf "%8s  %16s  %16s  %10s  %12s  %12s\n" clients base_secure_ms new_secure_ms new/base \
    base_wire new_wire
for n in ${clients//,/ }; do
    bm=$(awk -v n="$n" '$1 == n {print $2}' "$tmp/base.rows" | median)
    nm=$(awk -v n="$n" '$1 == n {print $2}' "$tmp/new.rows" | median)
    bw=$(awk -v n="$n" '$1 == n {print $3}' "$tmp/base.rows" | median)
    nw=$(awk -v n="$n" '$1 == n {print $3}' "$tmp/new.rows" | median)
    printf "%8s  %16.2f  %16.2f  %10.3f  %12s  %12s\n" "$n" "$bm" "$nm" \
        "$(awk -v a="$nm" -v b="$bm" 'BEGIN {print a / b}')" "$bw" "$nw"
done
echo "medians over $runs alternating runs of 10 rounds each (100,963 parameters, loopback, no CurveZMQ)"
