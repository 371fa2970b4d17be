#!/usr/bin/env bash
# Bring your own model, from outside fedc's tree: `cmake --install` of this build into a temporary
# prefix, examples/custom_model/logreg.c (a logistic regression with its own gradient step, on the
# installed headers only) built against it with pkg-config and with find_package(fedc), then a
# 3-client federation of it under the installed, stock fedc-coordinator (--model external, secure
# aggregation on). The federated model's ROC-AUC on held-out rows must be within 0.02 of the same
# model trained centrally on the three clients' rows. Also: an MLP coordinator refuses the
# logreg client, naming --model external.
#
# test_custom_model.sh BUILD_DIR SOURCE_DIR CMAKE CC PKG_CONFIG [EXTRA_FLAGS]
#   EXTRA_FLAGS: compile and link flags for the example (a sanitized build's runtime).
# FEDC_CUSTOM_MODEL_BREAK=central makes the central reference train 0 epochs (an untrained model):
# the negative control registered beside this test, which must see the comparison fail.
set -euo pipefail

if [ $# -lt 5 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR CMAKE CC PKG_CONFIG [EXTRA_FLAGS]" >&2
    exit 2
fi
build=$1 src=$2 cmake=$3 cc=$4 pkgconfig=$5 extra=${6:-}
label=default_payment_next_month
rounds=5

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fedc-custom-model.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
prefix=$tmp/prefix

fail() {
    echo "test_custom_model: FAIL: $*" >&2
    exit 1
}
step() { echo "test_custom_model: $*"; }

step "installing $build into $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "cmake --install"; }
libdir=$(dirname "$(find "$prefix" -name fedc.pc -path '*/pkgconfig/*' | head -n 1)")
libdir=${libdir%/pkgconfig}

step "building examples/custom_model with pkg-config"
flags=$(PKG_CONFIG_PATH=$libdir/pkgconfig "$pkgconfig" --cflags --libs fedc) ||
    fail "pkg-config --cflags --libs fedc"
# shellcheck disable=SC2086 # flags and extra are lists of flags
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror $extra -o "$tmp/logreg_pc" \
    "$src/examples/custom_model/logreg.c" $flags -lm 2>"$tmp/cc.log" ||
    { cat "$tmp/cc.log" >&2; fail "pkg-config build of examples/custom_model"; }

step "building examples/custom_model with find_package(fedc)"
"$cmake" -S "$src/examples/custom_model" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Wpedantic -Werror $extra" \
    -DCMAKE_EXE_LINKER_FLAGS="$extra" >"$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log" >&2; fail "find_package(fedc) configure of examples/custom_model"; }
"$cmake" --build "$tmp/cmake" >"$tmp/cmake-build.log" 2>&1 ||
    { cat "$tmp/cmake-build.log" >&2; fail "find_package(fedc) build of examples/custom_model"; }
export LD_LIBRARY_PATH=$libdir

step "splitting the Taiwan default data: 3 clients and a held-out file"
"$prefix/bin/fedc" split --data "$src/tests/fixtures/taiwan_default/default_of_credit_card_clients.csv" \
    --label "$label" --clients 4 --scheme stratified --out "$tmp/shards" --quiet ||
    fail "fedc split"
{
    head -n 1 "$tmp/shards/client-1.csv"
    tail -q -n +2 "$tmp/shards/client-1.csv" "$tmp/shards/client-2.csv" "$tmp/shards/client-3.csv"
} >"$tmp/central.csv"
test_csv=$tmp/shards/client-4.csv

# Starts the installed coordinator on a free loopback port (another on a bind failure); sets
# endpoint and coord_pid.
start_coordinator() { # LOG ARGS...
    local log=$1
    shift
    for _ in 1 2 3 4 5; do
        endpoint=tcp://127.0.0.1:$((20000 + RANDOM % 12000))
        "$prefix/bin/fedc-coordinator" --bind "$endpoint" --insecure "$@" >"$log.out" 2>"$log" &
        coord_pid=$!
        pids+=("$coord_pid")
        for _ in $(seq 100); do
            grep -q "listening on" "$log" && return 0
            grep -q "cannot bind" "$log" && break
            kill -0 "$coord_pid" 2>/dev/null || break
            sleep 0.1
        done
        wait "$coord_pid" 2>/dev/null || true
        grep -q "cannot bind" "$log" || { cat "$log" >&2; fail "the coordinator did not start"; }
    done
    fail "no free loopback port for the coordinator"
}

step "federating logreg: 3 clients, $rounds rounds, secure aggregation on"
start_coordinator "$tmp/co.err" --model external --rounds "$rounds" --min-clients 3 \
    --optimizer sgd --lr 0.1 --batch 64 --local-epochs 1 --pos-weight 1 --round-timeout 60 \
    --model-out "$tmp/federated.model"
clients=()
for i in 1 2 3; do
    bin=$tmp/logreg_pc
    [ "$i" = 3 ] && bin=$tmp/cmake/logreg # one client from each build
    timeout 120 "$bin" client --connect "$endpoint" --name "bank-$i" \
        --data "$tmp/shards/client-$i.csv" --label "$label" >"$tmp/c$i.out" 2>"$tmp/c$i.err" &
    clients+=($!)
    pids+=($!)
done
for i in 0 1 2; do
    wait "${clients[$i]}" || { cat "$tmp/c$((i + 1)).err" >&2; fail "logreg client $((i + 1)) failed"; }
done
wait "$coord_pid" || { cat "$tmp/co.err" >&2; fail "the coordinator failed"; }
grep -q "statistics summed securely over 3 client(s)" "$tmp/co.err" ||
    { cat "$tmp/co.err" >&2; fail "round 0 was not a secure sum over 3 clients"; }
grep -q "the clients' own model 'logreg-v1'" "$tmp/co.err" ||
    { cat "$tmp/co.err" >&2; fail "the coordinator did not take the clients' model"; }
[ "$(grep -c "clients 3/3" "$tmp/co.err.out")" = "$rounds" ] ||
    { cat "$tmp/co.err.out" >&2; fail "not every round had the 3 clients"; }

fed=$("$tmp/logreg_pc" score --model "$tmp/federated.model" --test "$test_csv" --label "$label" |
    awk '$1 == "roc_auc" { print $2 }')
epochs=$rounds
[ "${FEDC_CUSTOM_MODEL_BREAK:-}" = central ] && epochs=0
central=$("$tmp/logreg_pc" central --data "$tmp/central.csv" --label "$label" --test "$test_csv" \
    --epochs "$epochs" --lr 0.1 --batch 64 | awk '$1 == "roc_auc" { print $2 }')
[ -n "$fed" ] && [ -n "$central" ] || fail "no ROC-AUC (federated '$fed', central '$central')"
step "held-out ROC-AUC: federated $fed, central $central"
awk -v a="$fed" -v b="$central" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.02 && a > 0.6) }' ||
    fail "federated ROC-AUC $fed is not within 0.02 of the central $central (or not above 0.6)"

step "an MLP coordinator refuses the logreg client"
start_coordinator "$tmp/mlp.err" --rounds 1 --min-clients 3 --wait-timeout 20
set +e
timeout 60 "$tmp/logreg_pc" client --connect "$endpoint" --name bank-1 \
    --data "$tmp/shards/client-1.csv" --label "$label" >/dev/null 2>"$tmp/refused.err"
rc=$?
set -e
kill "$coord_pid" 2>/dev/null || true
[ "$rc" = 2 ] || { cat "$tmp/refused.err" >&2; fail "the refused client exited $rc, expected 2"; }
grep -q -- "--model external" "$tmp/refused.err" ||
    { cat "$tmp/refused.err" >&2; fail "the refusal does not name --model external"; }

step "an external-model coordinator refuses fedc-client's MLP"
start_coordinator "$tmp/ext.err" --model external --rounds 1 --min-clients 3 --wait-timeout 20
set +e
timeout 60 "$prefix/bin/fedc-client" --connect "$endpoint" --name bank-1 \
    --data "$tmp/shards/client-1.csv" --label "$label" --insecure >/dev/null \
    2>"$tmp/mlp-refused.err"
rc=$?
set -e
kill "$coord_pid" 2>/dev/null || true
[ "$rc" = 2 ] || { cat "$tmp/mlp-refused.err" >&2; fail "the MLP client exited $rc, expected 2"; }
grep -q "you bring fedc's MLP" "$tmp/mlp-refused.err" ||
    { cat "$tmp/mlp-refused.err" >&2; fail "the refusal does not say the client brings the MLP"; }
step "ok"
