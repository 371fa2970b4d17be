#!/usr/bin/env bash
# fedc provision's startup kits, used as written: three banks provisioned, every kit checked (its
# own secret key at 0600, no other participant's secret key material anywhere in it, rosters that
# hold the same public keys as their owners' files), then a federation started only through the
# kits' start.sh scripts, each run from another directory, completes. Then --add bank-d: its kit,
# the coordinator's allow-list and every roster updated, no existing secret key rewritten, a
# second --add of the same name refused without changing a byte, and a federation of the four
# completes.
#
# test_provision.sh FEDC FEDC_COORDINATOR FEDC_CLIENT SOURCE_DIR
# FEDC_PROVISION_BREAK=leak plants bank-b's secret key, renamed, into bank-a's kit before the
# checks: the negative control registered beside this test, which must see the check fail.
set -euo pipefail

if [ $# -lt 4 ]; then
    echo "usage: $0 FEDC FEDC_COORDINATOR FEDC_CLIENT SOURCE_DIR" >&2
    exit 2
fi
fedc=$1 coordinator=$2 client=$3 src=$4
data=$src/tests/fixtures/german_credit/german_credit_numeric.csv
# The start scripts run fedc-coordinator and fedc-client from the PATH, as on a participant's
# machine.
PATH=$(dirname "$coordinator"):$(dirname "$client"):$PATH
export PATH OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
unset FEDC_COORDINATOR FEDC_CLIENT FEDC_CONFIG

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fedc-provision.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "test_provision: FAIL: $*" >&2
    exit 1
}
step() { echo "test_provision: $*"; }

step "four stratified shards of the German credit data (bank-d's waits for --add)"
"$fedc" split --data "$data" --label bad --clients 4 --scheme stratified --out "$tmp/shards" \
    --quiet || fail "fedc split"
mkdir "$tmp/elsewhere" # where the participants run start.sh from: not their kit

# Checks one kit: exactly one secret key file, its own, mode 0600; and no other participant's
# secret key material (the Ed25519 seed, the first 40 Z85 characters of sign-secret-key) in any
# file of the kit, whatever its name.
seed_of() { sed -n 's/^sign-secret-key = "\(.\{40\}\).*"$/\1/p' "$1"; }
check_kit() { # KITS NAME ALL_NAMES...
    local kits=$1 name=$2 other secret
    shift 2
    secret=$kits/$name/$name.key_secret
    [ -f "$secret" ] || fail "$name's kit has no $name.key_secret"
    [ "$(stat -c %a "$secret")" = 600 ] ||
        fail "$secret has mode $(stat -c %a "$secret"), expected 600"
    [ "$(find "$kits/$name" -name '*.key_secret' | wc -l)" = 1 ] ||
        fail "$name's kit holds more than its own secret key file"
    [ -n "$(seed_of "$secret")" ] || fail "no sign-secret-key in $secret"
    for other in "$@"; do
        [ "$other" = "$name" ] && continue
        if grep -rqF -- "$(seed_of "$kits/$other/$other.key_secret")" "$kits/$name"; then
            fail "the secret key of $other is in $name's kit ($(grep -rlF -- \
                "$(seed_of "$kits/$other/$other.key_secret")" "$kits/$name" | head -n 1))"
        fi
    done
    # Its own secret is in its secret key file and nowhere else in the kit.
    [ "$(grep -rlF -- "$(seed_of "$secret")" "$kits/$name" | wc -l)" = 1 ] ||
        fail "$name's own secret key is in more than one file of its kit"
}

# Every copy of a public key is its owner's file, byte for byte.
check_rosters() { # KITS CLIENTS...
    local kits=$1 c p
    shift
    [ "$(find "$kits/coordinator/allow" -name '*.key' | wc -l)" = $# ] ||
        fail "coordinator/allow holds $(ls "$kits/coordinator/allow" | tr '\n' ' '), expected $*"
    for c in "$@"; do
        cmp -s "$kits/$c/$c.key" "$kits/coordinator/allow/$c.key" ||
            fail "coordinator/allow/$c.key is not $c's public key"
        cmp -s "$kits/coordinator/coordinator.key" "$kits/$c/coordinator.key" ||
            fail "$c's coordinator.key is not the coordinator's public key"
        [ "$(find "$kits/$c/peers" -name '*.key' | wc -l)" = $# ] ||
            fail "$c/peers holds $(ls "$kits/$c/peers" | tr '\n' ' '), expected $*"
        for p in "$@"; do
            cmp -s "$kits/$p/$p.key" "$kits/$c/peers/$p.key" ||
                fail "$c/peers/$p.key is not $p's public key"
        done
    done
}

# Starts the coordinator from its kit; 0 when it listens, 1 when its port is taken, else fails.
start_coordinator() { # KITS LOG ARGS...
    local kits=$1 log=$2
    shift 2
    (cd "$tmp/elsewhere" && exec timeout 180 "$kits/coordinator/start.sh" "$@") \
        >"$log.out" 2>"$log" &
    coord_pid=$!
    pids+=("$coord_pid")
    for _ in $(seq 200); do
        grep -q "listening on" "$log" && return 0
        grep -q "cannot bind" "$log" && break
        kill -0 "$coord_pid" 2>/dev/null || break
        sleep 0.1
    done
    wait "$coord_pid" 2>/dev/null || true
    grep -q "cannot bind" "$log" && return 1
    cat "$log" >&2
    fail "the coordinator did not start from its kit"
}

# Runs one federation from the kits: the coordinator, then each client with its shard given to
# start.sh as a path relative to the directory it is run from.
run_federation() { # KITS ROUNDS LOG_PREFIX CLIENTS...
    local kits=$1 rounds=$2 log=$3 i=0 c
    shift 3
    local cl=()
    for c in "$@"; do
        i=$((i + 1))
        (cd "$tmp/elsewhere" && exec timeout 180 "$kits/$c/start.sh" "../shards/client-$i.csv") \
            >"$log-$c.out" 2>"$log-$c.err" &
        cl+=($!)
        pids+=($!)
    done
    i=0
    for c in "$@"; do
        wait "${cl[$i]}" || { cat "$log-$c.err" >&2; fail "$c's kit: fedc-client failed"; }
        i=$((i + 1))
        [ "$(wc -l <"$kits/$c/rounds.jsonl")" -ge "$rounds" ] ||
            fail "$c trained fewer than $rounds rounds ($kits/$c/rounds.jsonl)"
    done
    wait "$coord_pid" || { cat "$log-co.err" >&2; fail "the coordinator's kit: it failed"; }
    grep -q "run complete: $rounds round(s)" "$log-co.err" ||
        { cat "$log-co.err" >&2; fail "the coordinator did not complete $rounds rounds"; }
    grep -q "summed securely over $# client(s)" "$log-co.err" ||
        { cat "$log-co.err" >&2; fail "round 0 was not a secure sum over the $# clients"; }
    [ -s "$kits/coordinator/global.fedc" ] || fail "no global.fedc in the coordinator's kit"
    "$fedc" eval --model "$kits/coordinator/global.fedc" --data "$data" --label bad \
        >"$log-eval.out" 2>&1 || { cat "$log-eval.out" >&2; fail "fedc eval of the model"; }
}

step "bad input is refused (exit 2), naming the problem, and writes nothing"
refused() { # NEEDLE ARGS...
    local needle=$1 rc
    shift
    set +e
    "$fedc" provision "$@" >"$tmp/refused.out" 2>&1
    rc=$?
    set -e
    [ "$rc" = 2 ] || { cat "$tmp/refused.out" >&2; fail "provision $* exited $rc, expected 2"; }
    grep -qF -- "$needle" "$tmp/refused.out" ||
        { cat "$tmp/refused.out" >&2; fail "provision $*: no '$needle' in the message"; }
}
refused "--coordinator: expected HOST:PORT" --coordinator 127.0.0.1 --clients a,b,c --out "$tmp/x"
refused "--coordinator: expected HOST:PORT" --coordinator h:70000 --clients a,b,c --out "$tmp/x"
refused "'a' is given twice" --coordinator h:7070 --clients a,b,a --out "$tmp/x"
refused "the name of the coordinator's kit" --coordinator h:7070 --clients a,coordinator \
    --out "$tmp/x"
refused "--label: expected one line" --coordinator h:7070 --clients a,b,c --out "$tmp/x" \
    --label "a;b"
refused "provision.ini" --out "$tmp/shards" --add bank-d
refused "not an empty directory" --coordinator h:7070 --clients a,b,c --out "$tmp/shards"
[ ! -e "$tmp/x" ] || fail "a refused provision wrote $tmp/x"
[ -z "$(find "$tmp" -maxdepth 1 -name '*.tmp-*')" ] || fail "a refused provision left a directory"

step "provisioning bank-a, bank-b, bank-c and starting the coordinator from its kit"
kits=
for try in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 12000))
    k=$tmp/kits-$try
    "$fedc" provision --coordinator "127.0.0.1:$port" --clients bank-a,bank-b,bank-c \
        --out "$k/" --label bad >"$tmp/provision.out" 2>&1 ||
        { cat "$tmp/provision.out" >&2; fail "fedc provision"; }
    if [ "$try" = 1 ]; then
        [ "${FEDC_PROVISION_BREAK:-}" = leak ] &&
            cp "$k/bank-b/bank-b.key_secret" "$k/bank-a/peers/notes.txt"
        for n in coordinator bank-a bank-b bank-c; do
            check_kit "$k" "$n" coordinator bank-a bank-b bank-c
        done
        check_rosters "$k" bank-a bank-b bank-c
        step "kits checked: own secret at 0600 only, no other's key material, rosters match"
    fi
    if start_coordinator "$k" "$tmp/run1-co.err" --rounds 3 --wait-timeout 60 \
        --round-timeout 60; then
        kits=$k
        break
    fi
    rm -rf "$k"
done
[ -n "$kits" ] || fail "no free loopback port for the coordinator"

step "three clients started from their kits' start.sh (3 rounds, secure aggregation)"
run_federation "$kits" 3 "$tmp/run1" bank-a bank-b bank-c

step "--add bank-d"
secrets_before=$(sha256sum "$kits"/*/*.key_secret)
"$fedc" provision --out "$kits" --add bank-d >"$tmp/add.out" 2>&1 ||
    { cat "$tmp/add.out" >&2; fail "fedc provision --add bank-d"; }
[ "$(sha256sum "$kits"/{bank-a,bank-b,bank-c,coordinator}/*.key_secret)" = "$secrets_before" ] ||
    fail "--add rewrote an existing secret key"
for n in coordinator bank-a bank-b bank-c bank-d; do
    check_kit "$kits" "$n" coordinator bank-a bank-b bank-c bank-d
done
check_rosters "$kits" bank-a bank-b bank-c bank-d
grep -qx "min-clients = 4" "$kits/coordinator/coordinator.ini" ||
    fail "coordinator.ini's min-clients was not raised to 4"
grep -qx "label = bad" "$kits/bank-d/client.ini" || fail "bank-d's client.ini has no label = bad"

step "a second --add bank-d is refused and changes nothing"
tree_before=$(cd "$kits" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
set +e
"$fedc" provision --out "$kits" --add bank-d >"$tmp/add2.out" 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || { cat "$tmp/add2.out" >&2; fail "the second --add bank-d exited $rc, expected 2"; }
grep -q "already in this federation" "$tmp/add2.out" ||
    { cat "$tmp/add2.out" >&2; fail "the refusal does not say bank-d is already there"; }
[ "$(cd "$kits" && find . -type f -print0 | sort -z | xargs -0 sha256sum)" = "$tree_before" ] ||
    fail "the refused --add changed files"

step "four clients from their kits after --add (2 rounds)"
rm -f "$kits"/bank-?/rounds.jsonl
start_coordinator "$kits" "$tmp/run2-co.err" --rounds 2 --wait-timeout 60 --round-timeout 60 ||
    fail "the coordinator's port $port was taken between the runs"
run_federation "$kits" 2 "$tmp/run2" bank-a bank-b bank-c bank-d
step "ok"
