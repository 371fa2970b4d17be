#!/usr/bin/env bash
# The Python virtual environment of the tests that check fedc against an independent
# implementation (tests/cli/test_onnx.sh: onnxruntime on fedc's ONNX export). Creates it once,
# installs scripts/requirements-test.txt into it from PyPI with its own pip, and prints the path of
# its python on stdout (the last line). Idempotent and cached: a stamp records the requirements
# file and the Python it was built with, so a second run only checks that the packages import.
# Several runs at once (ctest -j) wait on a lock.
#
#   scripts/python-venv.sh            the environment in $FEDC_VENV, default
#                                     ${XDG_CACHE_HOME:-~/.cache}/fedc/venv-test
#   scripts/python-venv.sh bench      the benchmarks' (bench/bench_features.sh: pandas), from
#                                     scripts/requirements-bench.txt, default .../fedc/venv-bench
# Needs python3 with its venv module (Debian: python3-venv, which scripts/install-deps.sh --test
# installs) and PyPI (or a pip configured for a mirror: PIP_INDEX_URL and the like are honoured).
# Exit 1 with a message saying what failed when the environment cannot be built: the tests that
# need it then fail rather than skip.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
kind=${1:-test}
case "$kind" in
test | bench) ;;
*)
    echo "python-venv: usage: $0 [test | bench]" >&2
    exit 2
    ;;
esac
req=$here/requirements-$kind.txt
venv=${FEDC_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/fedc/venv-$kind}
log() { echo "python-venv: $*" >&2; }
die() {
    log "$*"
    exit 1
}

command -v python3 >/dev/null 2>&1 || die "python3 not found (Debian: apt-get install python3 python3-venv)"
[ -f "$req" ] || die "missing $req"
mkdir -p "$(dirname "$venv")" || die "cannot create $(dirname "$venv")"

# One builder at a time; the others wait, then find it ready.
exec 9>"$venv.lock" || die "cannot open the lock $venv.lock"
flock -w 900 9 || die "waited 900 s for another run to build $venv"

want="$(sha256sum "$req" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
check_imports() {
    "$venv/bin/python" - "$req" <<'EOF' >&2
import importlib, sys
mods = {"onnxruntime": "onnxruntime", "numpy": "numpy"}
for line in open(sys.argv[1]):
    name = line.split("#")[0].strip()
    if not name:
        continue
    for sep in "<>=!~;[ ":
        name = name.split(sep)[0]
    m = importlib.import_module(mods.get(name, name))
    print(f"python-venv: {name} {getattr(m, '__version__', '?')}")
EOF
}

if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.fedc-stamp" 2>/dev/null)" = "$want" ] &&
    check_imports; then
    echo "$venv/bin/python"
    exit 0
fi

log "building $venv (pip install -r $req)"
rm -rf "$venv"
if ! python3 -m venv "$venv" >&2; then
    rm -rf "$venv"
    die "python3 -m venv failed: install python3-venv (scripts/install-deps.sh --test)"
fi
if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req" >&2; then
    rm -rf "$venv"
    die "pip install -r $req failed (is PyPI reachable? pip's message is above)"
fi
check_imports || {
    rm -rf "$venv"
    die "the packages of $req were installed but do not import"
}
echo "$want" >"$venv/.fedc-stamp"
echo "$venv/bin/python"
