#!/usr/bin/env bash
# The docker deployment (deploy/), on a real Docker engine: a Debian base image built locally
# (scripts/docker-base.sh: no registry), deploy/Dockerfile built on it unchanged, and
# deploy/docker-compose.yml brought up: init services make keys and data, a coordinator and three
# banks run the configured rounds with CurveZMQ and secure aggregation, the final model and the
# metrics land in the output directory; the federation's validation ROC-AUC (mean of the last 5
# rounds) is within 0.02 of the same federation run as plain processes, and `fedc eval` of the model on the
# held-out test set is at least 0.85 x centralised training on the pooled banks. (With issue 16's
# scenario mixes the test-set ROC-AUC of the last round's model moves by up to 0.06 between two
# secure runs of one federation, whose secret rounding differs (measured on 2026-12-06: 0.751 in
# containers against 0.807 as processes, centralised 0.853, in one of three runs), while their
# validation trajectories agree to about 0.01; the test compares the latter, and holds the test
# set to 0.85 x, which that spread clears and a model that did not learn does not.) The wall time per round is printed next to the same federation as plain
# processes on loopback (fedc sim on the same data). Everything is torn down afterwards, also on
# failure. Exit 77 (CTest: skipped) with the reason when `docker info` fails.
#
#   tests/docker/test_deploy.sh SOURCE_DIR PATH/TO/fedc
set -euo pipefail
src=$1
fedc=$2
if ! docker info > /dev/null 2>&1; then
    echo "SKIPPED: docker info fails here: $(docker info 2>&1 | tail -1)"
    exit 77
fi
if docker-compose version > /dev/null 2>&1; then
    compose=(docker-compose)
elif docker compose version > /dev/null 2>&1; then
    compose=(docker compose)
else
    echo "SKIPPED: no docker-compose or docker compose (scripts/install-deps.sh installs it)"
    exit 77
fi
cd "$src"
tmp=$(mktemp -d /tmp/fedc-test-deploy-XXXXXX)
project=fedcdeploy$$
export COMPOSE_PROJECT_NAME=$project
export FEDC_IMAGE=fedc-test:$project
export DEPLOY_OUT=$tmp/out DEPLOY_IN=$tmp/in
mkdir -p "$DEPLOY_OUT" "$DEPLOY_IN"
chmod 777 "$DEPLOY_OUT"
dc() { "${compose[@]}" -f deploy/docker-compose.yml "$@"; }
cleanup() {
    status=$?
    if [[ $status != 0 ]]; then
        echo "--- compose logs (last 80 lines) ---"
        dc logs --no-color 2>&1 | tail -80 || true
    fi
    dc down -v --remove-orphans > /dev/null 2>&1 || true
    docker image rm "$FEDC_IMAGE" > /dev/null 2>&1 || true
    rm -rf "$tmp"
    exit $status
}
trap cleanup EXIT
fail() { echo "FAILED: $*"; exit 1; }

FEDC_BASE=$(scripts/docker-base.sh)
export FEDC_BASE
echo "base image: $FEDC_BASE"
# 20 rounds: with issue 16's scenario mixes 10 rounds leave the model still moving, and two
# secure runs of it (secret rounding) differ by 0.02 ROC-AUC; after 20 they agree to 0.001
export FEDC_ROUNDS=20 FEDC_CUSTOMERS=1000 FEDC_DAYS=50 FEDC_SEED=3
t0=$(date +%s.%N)
# `up -d` returns once the report service could start, i.e. after the coordinator finished.
dc up -d --build > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; fail "docker-compose up"; }
coord=$(dc ps -q coordinator)
[[ -n $coord ]] || fail "no coordinator container"
rc=$(timeout 900 docker wait "$coord") || fail "the coordinator did not finish in 900 s"
t1=$(date +%s.%N)
[[ $rc == 0 ]] || fail "the coordinator exited with $rc"
[[ -s $DEPLOY_OUT/global.fedc ]] || fail "no model in $DEPLOY_OUT"
report=$(dc ps -q report)
[[ -n $report ]] && rrc=$(timeout 300 docker wait "$report") || fail "no report service"
[[ $rrc == 0 ]] || fail "the report service exited with $rrc"
grep -q 'class="pr-point"' "$DEPLOY_OUT/report.html" || fail "no report.html with the rounds"
[[ -s $DEPLOY_OUT/eval.json ]] || fail "no eval.json"
rounds=$(wc -l < "$DEPLOY_OUT/rounds.jsonl")
[[ $rounds == "$FEDC_ROUNDS" ]] || fail "$rounds metrics lines, expected $FEDC_ROUNDS"
grep -q '"secagg":true' "$DEPLOY_OUT/rounds.jsonl" || fail "secure aggregation was not on"
grep -q '"curve":true' "$DEPLOY_OUT/rounds.jsonl" || fail "CurveZMQ was not on"
for b in a b c; do
    grep -q "\"bank-$b\"" "$DEPLOY_OUT/rounds.jsonl" || fail "bank-$b never took part"
done
# The held-out test set from the data volume, scored with the host's fedc.
docker run --rm -v "${project}_data:/data:ro" -v "$tmp:/host" --user 0 "$FEDC_IMAGE" \
    sh -c 'cp /data/test.csv /data/bank-a.csv /data/bank-b.csv /data/bank-c.csv /host/' \
    || fail "cannot copy the data out of the volume"
"$fedc" eval --model "$DEPLOY_OUT/global.fedc" --data "$tmp/test.csv" \
    --metrics-json "$tmp/eval.json" > /dev/null 2>&1 || fail "fedc eval"
roc=$(sed -n 's/.*"roc_auc":\([0-9.]*\).*/\1/p' "$tmp/eval.json")
pr=$(sed -n 's/.*"pr_auc":\([0-9.]*\).*/\1/p' "$tmp/eval.json")
# The same federation as plain processes on loopback (fedc sim, the same data, settings and
# client names), with centralised training on the pooled banks alongside: the quality bar.
med() { sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$1" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
docker_round=$(med "$DEPLOY_OUT/rounds.jsonl")
# (FEDC_SEED and the other variables exported for docker-compose would reach fedc sim as its
# options: the containers' coordinator runs with the default seed, so must this one)
env -u FEDC_SEED -u FEDC_CUSTOMERS -u FEDC_DAYS OMP_NUM_THREADS=1 "$fedc" sim --shards "$tmp/bank-a.csv,$tmp/bank-b.csv,$tmp/bank-c.csv" \
    --test "$tmp/test.csv" --label TX_FRAUD --drop CUSTOMER_ID,TX_TIME_DAYS \
    --rounds "$FEDC_ROUNDS" --layers 32,16 --batch 256 --pos-weight 1 --val-fraction 0.2 \
    --optimizer sgd --lr 0.1 \
    --quiet --metrics-json "$tmp/plain.jsonl" --summary-json "$tmp/summary.json" \
    > /dev/null 2>&1 || fail "fedc sim"
plain_round=$(med "$tmp/plain.jsonl")
j() { sed -n "s/.*\"$1\":{[^}]*\"$2\":\([0-9.]*\).*/\1/p" "$tmp/summary.json"; }
sim_roc=$(j federated roc_auc)
cen_roc=$(j centralised roc_auc)
echo "test set: containers ROC-AUC $roc (PR-AUC $pr); processes $sim_roc; centralised $cen_roc"
# the mean over the last 5 rounds: one round's figure moves by 0.01-0.03 with the secret rounding
lastval() { tail -n 5 "$1" | sed -n 's/.*"val_roc_auc":\([0-9.]*\).*/\1/p' |
            awk '{s += $1; n++} END {if (n) printf "%.6f", s / n}'; }
val_c=$(lastval "$DEPLOY_OUT/rounds.jsonl")
val_p=$(lastval "$tmp/plain.jsonl")
echo "federated validation ROC-AUC, mean of the last 5 rounds: containers $val_c, processes $val_p"
awk -v a="$val_c" -v b="$val_p" 'BEGIN {d = a - b; exit !(a > 0 && d < 0.02 && d > -0.02)}' \
    || fail "the containers' federation ($val_c) differs from the same federation as processes ($val_p)"
awk -v a="$roc" -v c="$cen_roc" 'BEGIN {exit !(a >= 0.85 * c)}' \
    || fail "ROC-AUC $roc below 0.85 x centralised ($cen_roc)"
echo "wall time of the whole docker federation (build, init, $FEDC_ROUNDS rounds): $(echo "$t1 - $t0" | bc) s"
echo "median round: containers $docker_round s, plain processes $plain_round s, ratio" \
     "$(echo "scale=3; $docker_round / $plain_round" | bc) (target: containers add under 10%)"
dc down -v > /dev/null 2>&1 || fail "docker-compose down -v"

# ---- faults: an unlisted key, a cut network, a killed bank, a restarted coordinator ------------
# 16 rounds of at least 1.5 s (a delay at every round start), heartbeats missed after 3 s, a round
# given up after 6 s. In order: a bank whose key is not on the allow-list is refused and exits
# non-zero; bank-b's network is cut for longer than the round timeout: the round in flight
# finishes without it, and since two banks are below the secure-aggregation floor of three
# (docs/security.md) no further round starts until it rejoins; bank-c is killed (docker kill):
# the rounds pause the same way until it is started again; the coordinator container is restarted
# and resumes from its checkpoint with no round lost or repeated.
rm -f "$DEPLOY_OUT"/*
export FEDC_ROUNDS=16 FEDC_ROUND_TIMEOUT=6 FEDC_HEARTBEAT_TIMEOUT=3
fault="" && for r in $(seq 1 16); do fault+="${fault:+,}coordinator/delay:round-start@$r:1500"; done
export FEDC_FAULT=$fault
# Not the report service: `up -d` would wait for the coordinator to finish before returning.
dc up -d coordinator bank-a bank-b bank-c > "$tmp/up2.log" 2>&1 \
    || { cat "$tmp/up2.log"; fail "docker-compose up (faults)"; }
coord=$(dc ps -q coordinator)
bank_b=$(dc ps -q bank-b)
bank_c=$(dc ps -q bank-c)
lines() { [[ -e $DEPLOY_OUT/rounds.jsonl ]] && wc -l < "$DEPLOY_OUT/rounds.jsonl" || echo 0; }
wait_rounds() { # N TIMEOUT: until N metrics lines exist
    local end=$((SECONDS + $2))
    while (( $(lines) < $1 )); do
        (( SECONDS < end )) || fail "waited $2 s for round $1 (have $(lines))"
        sleep 0.3
    done
}
part() { sed -n "${1}p" "$DEPLOY_OUT/rounds.jsonl" | sed -n 's/.*"participants":\([0-9]*\).*/\1/p'; }
wait_rounds 1 120
# The compose health checks ask --metrics-listen's /healthz with `fedc health`.
for c in "$coord" "$bank_b"; do
    end=$((SECONDS + 30))
    until [[ $(docker inspect -f '{{.State.Health.Status}}' "$c") == healthy ]]; do
        (( SECONDS < end )) || fail "container $c is '$(docker inspect -f '{{.State.Health.Status}}' "$c")'," \
            "expected healthy (fedc health /healthz)"
        sleep 1
    done
done
docker exec "$coord" fedc health http://127.0.0.1:9100/readyz > /dev/null \
    || fail "the coordinator's /readyz does not answer 200 while rounds run"
# An unlisted key: refused at the handshake, the client says so and exits non-zero.
set +e
timeout 120 docker run --rm --network "${project}_bank-a-net" -v "${project}_keys:/keys:ro" \
    -v "${project}_data:/data:ro" "$FEDC_IMAGE" sh -c \
    'fedc keygen --name bank-x --out /tmp/k > /dev/null && exec fedc-client --connect tcp://coordinator:7070 --key /tmp/k/bank-x.key_secret --coordinator-key /keys/coordinator.key --peers /keys/allow --data /data/bank-a.csv --label TX_FRAUD --drop CUSTOMER_ID,TX_TIME_DAYS --coordinator-timeout 60' \
    > "$tmp/unlisted.log" 2>&1
unlisted=$?
set -e
[[ $unlisted != 0 ]] || fail "a client with an unlisted key was not refused"
grep -q "does not accept our key" "$tmp/unlisted.log" || { cat "$tmp/unlisted.log"; fail "the refused client did not say why"; }
echo "unlisted key: refused (exit $unlisted)"
# bank-b's network cut for 9 s (> the 6 s round timeout), then restored.
n0=$(lines)
docker network disconnect "${project}_bank-b-net" "$bank_b" || fail "network disconnect"
sleep 9
n_cut=$(lines)
docker network connect --alias bank-b "${project}_bank-b-net" "$bank_b" || fail "network connect"
# At most the round in flight (and one started before the heartbeats ran out) finished in those
# 9 s: with 1.5 s per round the run would otherwise have gone on.
(( n_cut - n0 <= 2 )) || fail "$((n_cut - n0)) rounds finished while bank-b was cut off: below the floor of 3, none should start"
for r in $(seq $((n0 + 1)) "$n_cut"); do
    (( $(part "$r") >= 2 )) || fail "round $r had $(part "$r") participants while bank-b was cut off"
done
# It rejoins: a later round has three participants again.
back=0
for _ in $(seq 1 120); do
    n=$(lines)
    if (( n > n_cut )) && (( $(part "$n") == 3 )); then back=$n; break; fi
    sleep 0.5
done
(( back > 0 )) || fail "bank-b did not take part again after its network came back"
echo "network cut: $((n_cut - n0)) round(s) finished in the 9 s cut (none below the floor), bank-b back in round $back"
# bank-c killed: the rounds pause below the floor until it is started again.
docker kill "$bank_c" > /dev/null || fail "docker kill bank-c"
killed_at=$(lines)
sleep 8
paused=$(lines)
(( paused - killed_at <= 2 )) || fail "$((paused - killed_at)) rounds finished after bank-c was killed: below the floor of 3, none should start"
docker start "$bank_c" > /dev/null || fail "docker start bank-c"
back=0
for _ in $(seq 1 120); do
    n=$(lines)
    if (( n > paused )) && (( $(part "$n") == 3 )); then back=$n; break; fi
    sleep 0.5
done
(( back > 0 )) || fail "bank-c did not take part again after it was started"
echo "bank-c killed after round $killed_at: $((paused - killed_at)) round(s) in the next 8 s, back in round $back"
# The coordinator restarted mid-run: it resumes from its checkpoint.
restart_at=$(lines)
(( restart_at < 14 )) || fail "too late to restart the coordinator (round $restart_at of 16)"
docker restart "$coord" > /dev/null || fail "docker restart coordinator"
end=$((SECONDS + 240))
while [[ $(docker inspect -f '{{.State.Status}}' "$coord") != exited ]]; do
    (( SECONDS < end )) || fail "the restarted coordinator did not finish in 240 s"
    sleep 0.5
done
rc=$(docker inspect -f '{{.State.ExitCode}}' "$coord")
[[ $rc == 0 ]] || fail "the restarted coordinator exited with $rc"
docker logs "$coord" > "$tmp/coord.log" 2>&1 || true
grep -q "resuming run after round" "$tmp/coord.log" || fail "the coordinator did not resume from its checkpoint"
got=$(sed -n 's/.*"round":\([0-9]*\),.*/\1/p' "$DEPLOY_OUT/rounds.jsonl" | tr '\n' ' ')
[[ $got == "$(seq -s ' ' 1 16) " ]] || fail "rounds in the metrics: $got (expected 1..16, each once)"
echo "coordinator restarted after round $restart_at: resumed, rounds 1..16 each once"
grep -q '"refused_keys":[1-9]' "$DEPLOY_OUT/rounds.jsonl" || echo "note: the refusal was counted in a round before the restart only"
echo "PASSED"
