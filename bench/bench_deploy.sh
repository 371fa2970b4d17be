#!/usr/bin/env bash
# What containers add per round: the docker-compose federation (deploy/) next to the same
# federation as plain processes on loopback (fedc sim on the same banks' data, the same settings),
# alternating RUNS times, on data large enough that a round includes real training. Prints each
# run's median round and the medians over runs, with the ratio (issue: containers add < 10%).
#
#   bench/bench_deploy.sh BUILD_DIR [RUNS] [CUSTOMERS] [DAYS] [ROUNDS]
#
# Needs a working `docker info`, docker-compose (or compose v2) and a built BUILD_DIR (fedc,
# fedc-coordinator, fedc-client). Builds the local base (scripts/docker-base.sh) and the image
# once; removes everything it made at the end.
set -euo pipefail
build=${1:?usage: bench/bench_deploy.sh BUILD_DIR [RUNS] [CUSTOMERS] [DAYS] [ROUNDS]}
runs=${2:-3}
customers=${3:-3000}
days=${4:-60}
rounds=${5:-10}
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
fedc=$build/cli/fedc
[[ -x $fedc ]] || { echo "bench_deploy: no $fedc (build first)" >&2; exit 2; }
docker info > /dev/null 2>&1 || { echo "bench_deploy: docker info fails" >&2; exit 2; }
if docker-compose version > /dev/null 2>&1; then
    compose=(docker-compose)
else
    compose=(docker compose)
fi
cd "$src"
tmp=$(mktemp -d /tmp/fedc-bench-deploy-XXXXXX)
project=fedcbench$$
export COMPOSE_PROJECT_NAME=$project FEDC_IMAGE=fedc-bench:$project
export DEPLOY_OUT=$tmp/out DEPLOY_IN=$tmp/in
export FEDC_ROUNDS=$rounds FEDC_CUSTOMERS=$customers FEDC_DAYS=$days FEDC_SEED=5
mkdir -p "$DEPLOY_OUT" "$DEPLOY_IN"
chmod 777 "$DEPLOY_OUT"
dc() { "${compose[@]}" -f deploy/docker-compose.yml "$@"; }
cleanup() {
    dc down -v --remove-orphans > /dev/null 2>&1 || true
    docker image rm "$FEDC_IMAGE" > /dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
FEDC_BASE=$(scripts/docker-base.sh)
export FEDC_BASE
dc build > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
med() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rounds_med() { sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$1" | med; }
echo "bench_deploy: $runs run(s) each, fedc synth 3 banks x $customers customers x $days days," \
     "$rounds rounds, secure aggregation and CurveZMQ on both sides"
printf '%4s  %16s  %16s  %6s\n' run containers_s processes_s ratio
: > "$tmp/c.txt"
: > "$tmp/p.txt"
for ((i = 1; i <= runs; i++)); do
    rm -f "$DEPLOY_OUT"/*
    dc up -d > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; exit 1; }
    coord=$(dc ps -q coordinator)
    rc=$(timeout 1800 docker wait "$coord")
    [[ $rc == 0 ]] || { dc logs --no-color | tail -40; exit 1; }
    c=$(rounds_med "$DEPLOY_OUT/rounds.jsonl")
    if [[ $i == 1 ]]; then
        docker run --rm -v "${project}_data:/data:ro" -v "$tmp:/host" --user 0 "$FEDC_IMAGE" \
            sh -c 'cp /data/test.csv /data/bank-a.csv /data/bank-b.csv /data/bank-c.csv /host/'
        echo "rows per bank: $(($(wc -l < "$tmp/bank-a.csv") - 1))," \
             "$(($(wc -l < "$tmp/bank-b.csv") - 1)), $(($(wc -l < "$tmp/bank-c.csv") - 1))"
    fi
    dc down -v > /dev/null 2>&1
    OMP_NUM_THREADS=1 "$fedc" sim --shards "$tmp/bank-a.csv,$tmp/bank-b.csv,$tmp/bank-c.csv" \
        --test "$tmp/test.csv" --label TX_FRAUD --drop CUSTOMER_ID,TX_TIME_DAYS \
        --rounds "$rounds" --layers 32,16 --batch 256 --pos-weight auto --val-fraction 0.2 \
        --baselines none --quiet --metrics-json "$tmp/plain.jsonl" > /dev/null 2>&1
    p=$(rounds_med "$tmp/plain.jsonl")
    echo "$c" >> "$tmp/c.txt"
    echo "$p" >> "$tmp/p.txt"
    printf '%4d  %16s  %16s  %6s\n' "$i" "$c" "$p" "$(echo "scale=3; $c / $p" | bc)"
done
mc=$(med < "$tmp/c.txt")
mp=$(med < "$tmp/p.txt")
echo "median over runs: containers $mc s, processes $mp s per round, ratio" \
     "$(echo "scale=3; $mc / $mp" | bc) (target: under 1.10)"
