#!/usr/bin/env bash
# fedc export --format onnx, checked against an independent implementation: onnxruntime (from
# PyPI, in the virtual environment of scripts/python-venv.sh) scores random rows with every
# exported graph, and each score must equal fedc's own (fedc_model_predict on the model file) to
# 1e-5 (tests/cli/onnx_check.py). The models: every hidden activation under every output (binary,
# multiclass, regression), no hidden layer, four hidden layers, one input (made with the model
# API by tests/cli/onnx_fixture), and two trained by `fedc train` on the German credit data
# (binary, and a regression). Then the command's errors: a flat model, an unreadable model file,
# an unknown format, an unwritable output (exit status and message, no file left behind).
#
# test_onnx.sh FEDC ONNX_FIXTURE SOURCE_DIR
# FEDC_ONNX_BREAK makes a deliberately wrong export, the negative controls registered beside this
# test, which must see the comparison fail: nostd exports binary_relu without its
# standardisation (mean 0, std 1), alpha rewrites binary_leaky_relu's LeakyRelu alpha 0.01 as 0.02
# in the exported bytes.
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 FEDC ONNX_FIXTURE SOURCE_DIR" >&2
    exit 2
fi
fedc=$1 fixture=$2 src=$3
brk=${FEDC_ONNX_BREAK:-}
data=$src/tests/fixtures/german_credit/german_credit_numeric.csv
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
unset FEDC_CONFIG FEDC_FORMAT FEDC_MODEL FEDC_OUT

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fedc-onnx.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "test_onnx: FAIL: $*"
    exit 1
}
step() { echo "test_onnx: $*"; }

step "the Python environment (scripts/python-venv.sh: onnxruntime, numpy)"
py=$("$src/scripts/python-venv.sh" | tail -n 1) ||
    fail "scripts/python-venv.sh could not build the virtual environment with onnxruntime (message above)"
[ -x "$py" ] || fail "scripts/python-venv.sh printed '$py', not a python"

step "models: the fixture's, and two trained by fedc train on the German credit data"
mkdir "$tmp/m"
"$fixture" models "$tmp/m" || fail "onnx_fixture models"
"$fedc" train --data "$data" --label bad --layers 16,8 --activation relu --epochs 5 --seed 3 \
    --quiet --out "$tmp/m/trained_binary.fedc" >/dev/null || fail "fedc train (binary)"
"$fedc" train --data "$data" --label a2 --task regression --drop bad --layers 12 \
    --activation tanh --epochs 5 --seed 4 --quiet --out "$tmp/m/trained_regression.fedc" \
    >/dev/null || fail "fedc train (regression)"

n_checked=0
for model in "$tmp"/m/*.fedc; do
    name=$(basename "$model" .fedc)
    [ "$name" = flat ] && continue
    src_model=$model
    if [ "$brk" = nostd ] && [ "$name" = binary_relu ]; then
        # The wrong export: the same layers without the standardisation, compared with the
        # scores of the real model.
        "$fixture" unstandardise "$model" "$tmp/$name.nostd.fedc" || fail "unstandardise"
        src_model=$tmp/$name.nostd.fedc
    fi
    "$fedc" export --model "$src_model" --format onnx --out "$tmp/$name.onnx" >"$tmp/export.out" ||
        fail "$name: fedc export exited $? ($(cat "$tmp/export.out"))"
    grep -q "^fedc export: wrote $tmp/$name.onnx (ONNX IR 7, opset 13" "$tmp/export.out" ||
        fail "$name: unexpected summary: $(cat "$tmp/export.out")"
    if [ "$brk" = alpha ] && [ "$name" = binary_leaky_relu ]; then
        "$fixture" alpha "$tmp/$name.onnx" || fail "alpha"
    fi
    "$fixture" rows "$model" 2000 "$((n_checked + 11))" "$tmp/$name.rows.csv" || fail "rows"
    "$fixture" score "$model" "$tmp/$name.rows.csv" "$tmp/$name.fedc.csv" || fail "score"
    "$py" "$src/tests/cli/onnx_check.py" "$name" "$tmp/$name.onnx" "$tmp/$name.rows.csv" \
        "$tmp/$name.fedc.csv" || exit 1
    n_checked=$((n_checked + 1))
done
[ "$n_checked" -ge 15 ] || fail "only $n_checked models were checked"

step "errors: flat model, unreadable model, unknown format, unwritable output"
# expect_error STATUS MESSAGE ARGS...: fedc export exits STATUS, says MESSAGE, writes no file.
expect_error() {
    local want=$1 msg=$2 rc=0
    shift 2
    rm -f "$tmp/err.onnx"
    "$fedc" export "$@" >"$tmp/err.out" 2>&1 || rc=$?
    [ "$rc" = "$want" ] || fail "fedc export $* exited $rc, expected $want: $(cat "$tmp/err.out")"
    grep -qF -- "$msg" "$tmp/err.out" ||
        fail "fedc export $*: expected the message '$msg', got: $(cat "$tmp/err.out")"
    [ ! -e "$tmp/err.onnx" ] || fail "fedc export $* left $tmp/err.onnx behind"
}
expect_error 2 "flat.fedc: the model is a flat parameter vector" \
    --model "$tmp/m/flat.fedc" --out "$tmp/err.onnx"
printf 'not a model\n' >"$tmp/garbage.fedc"
expect_error 2 "fedc export: $tmp/garbage.fedc" --model "$tmp/garbage.fedc" --out "$tmp/err.onnx"
expect_error 2 "fedc export: $tmp/missing.fedc: cannot open model file" \
    --model "$tmp/missing.fedc" --out "$tmp/err.onnx"
expect_error 2 "--format: expected" --model "$tmp/m/binary_relu.fedc" --format tflite \
    --out "$tmp/err.onnx"
expect_error 2 "--out is required" --model "$tmp/m/binary_relu.fedc"
expect_error 1 "$tmp/no/such/dir/m.onnx" --model "$tmp/m/binary_relu.fedc" \
    --out "$tmp/no/such/dir/m.onnx"
[ "$(ls "$tmp" | grep -c '\.tmp')" = 0 ] || fail "a temporary file was left in $tmp"

step "ok: $n_checked exported models agree with fedc to 1e-5 under onnxruntime"
