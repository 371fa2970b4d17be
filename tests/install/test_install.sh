#!/usr/bin/env bash
# Install and embed: `cmake --install` of this build into a temporary prefix, then
# examples/embed/embed.c built against that prefix as an outside project would, with pkg-config
# (shared libfedc) and with find_package(fedc) (fedc::fedc and fedc::fedc_static); every binary runs
# and must print the expected line. examples/custom_strategy is built both ways too and must start
# (its federation run is tests/fl/test_custom_strategy.c). Also checks what was installed: the SONAME links, the CMake
# package, fedc.pc, and that every installed header compiles alone with -Wall -Wextra -Wpedantic
# -Werror and includes neither zmq.h nor protobuf-c's headers. The prefix is removed however the
# test ends.
#
# test_install.sh BUILD_DIR SOURCE_DIR CMAKE CC PKG_CONFIG [EXTRA_FLAGS]
#   EXTRA_FLAGS: compile and link flags for the embedding programs (the sanitizer flags of a
#   sanitized build, whose libfedc needs the runtime in the executable).
# FEDC_INSTALL_BREAK=pc|header breaks the installed tree on purpose (a Libs line naming a library
# that does not exist; model.h removed): the negative controls registered next to this test, which
# must see this script fail at that step.
set -euo pipefail

if [ $# -lt 5 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR CMAKE CC PKG_CONFIG [EXTRA_FLAGS]" >&2
    exit 2
fi
build=$1 src=$2 cmake=$3 cc=$4 pkgconfig=$5 extra=${6:-}
expected='fedc embed: invalid argument; model 3-4-1 with 21 parameters; key ok'

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fedc-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

fail() {
    echo "test_install: FAIL: $*" >&2
    exit 1
}
step() { echo "test_install: $*"; }

step "installing $build into $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "cmake --install"; }

libdir=$(dirname "$(find "$prefix" -name fedc.pc -path '*/pkgconfig/*' | head -n 1)")
libdir=${libdir%/pkgconfig}
[ -n "$libdir" ] && [ -d "$libdir" ] || fail "no fedc.pc installed under $prefix"
for f in "$prefix/bin/fedc" "$prefix/bin/fedc-coordinator" "$prefix/bin/fedc-client" \
    "$libdir/libfedc.a" "$libdir/libfedc.so" "$libdir/libfedc.so.0" \
    "$libdir/cmake/fedc/fedcConfig.cmake" "$libdir/cmake/fedc/fedcConfigVersion.cmake" \
    "$prefix/include/fedc/err.h" "$prefix/include/fedc/model.h"; do
    [ -e "$f" ] || fail "not installed: ${f#"$prefix"/}"
done
soname=$(objdump -p "$libdir/libfedc.so" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = libfedc.so.0 ] || fail "SONAME of libfedc.so is '$soname', expected libfedc.so.0"
# Only public names are exported: no internal fedc__ function, no generated protobuf-c code.
internal=$(nm -D --defined-only "$libdir/libfedc.so" | awk '$3 ~ /^fedc__/ || $3 ~ /^protobuf_c/ {print $3}' | head -3)
[ -z "$internal" ] || fail "libfedc.so exports internal symbols: $(echo $internal)"

case ${FEDC_INSTALL_BREAK:-} in
pc) sed -i 's/^Libs: .*/Libs: -L${libdir} -lfedc_not_there/' "$libdir/pkgconfig/fedc.pc" ;;
header) rm "$prefix/include/fedc/model.h" ;;
'') ;;
*) fail "FEDC_INSTALL_BREAK=$FEDC_INSTALL_BREAK: expected pc or header" ;;
esac

step "checking the installed headers"
warn=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
if grep -lE '#[[:space:]]*include[[:space:]]*[<"](zmq\.h|protobuf-c/|[^">]*\.pb-c\.h)' \
    "$prefix"/include/fedc/*.h >"$tmp/leaks"; then
    fail "installed headers include libzmq or protobuf-c headers: $(tr '\n' ' ' <"$tmp/leaks")"
fi
for h in "$prefix"/include/fedc/*.h; do
    printf '#include "fedc/%s"\n' "${h##*/}" >"$tmp/h.c"
    # shellcheck disable=SC2086 # extra is a list of flags
    "$cc" "${warn[@]}" $extra -I"$prefix/include" -fsyntax-only "$tmp/h.c" 2>"$tmp/h.log" ||
        { cat "$tmp/h.log" >&2; fail "include/fedc/${h##*/} does not compile on its own"; }
done

check_run() { # NAME BINARY [ENV...]: runs the binary and compares its output with the expected line
    local name=$1 bin=$2 out
    shift 2
    out=$(env "$@" "$bin" 2>"$tmp/run.log") || { cat "$tmp/run.log" >&2; fail "$name: $bin failed"; }
    [ "$out" = "$expected" ] || fail "$name printed '$out', expected '$expected'"
    step "$name: $out"
}

step "embedding with pkg-config"
export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$("$pkgconfig" --cflags --libs fedc) || fail "pkg-config --cflags --libs fedc"
"$pkgconfig" --static --libs fedc >/dev/null || fail "pkg-config --static --libs fedc"
# shellcheck disable=SC2086 # flags and extra are lists of flags
"$cc" "${warn[@]}" $extra -o "$tmp/embed_pc" "$src/examples/embed/embed.c" $flags \
    2>"$tmp/cc.log" || { cat "$tmp/cc.log" >&2; fail "pkg-config build of examples/embed"; }
check_run pkg-config "$tmp/embed_pc" LD_LIBRARY_PATH="$libdir"
# examples/custom_strategy: a coordinator with a strategy of its own, from installed headers only;
# without --bind it must print its usage and exit 2 (it links and starts).
check_usage() { # NAME BINARY [ENV...]
    local name=$1 bin=$2 rc=0
    shift 2
    env "$@" "$bin" >/dev/null 2>"$tmp/usage.log" || rc=$?
    [ "$rc" = 2 ] && grep -q '^usage: custom_strategy --bind' "$tmp/usage.log" ||
        { cat "$tmp/usage.log" >&2; fail "$name: $bin exited $rc, expected its usage and 2"; }
    step "$name: custom_strategy starts"
}
# shellcheck disable=SC2086 # flags and extra are lists of flags
"$cc" "${warn[@]}" $extra -o "$tmp/custom_pc" "$src/examples/custom_strategy/custom_strategy.c" \
    $flags -lm 2>"$tmp/cc.log" ||
    { cat "$tmp/cc.log" >&2; fail "pkg-config build of examples/custom_strategy"; }
check_usage pkg-config "$tmp/custom_pc" LD_LIBRARY_PATH="$libdir"
ldd_out=$(env LD_LIBRARY_PATH="$libdir" ldd "$tmp/embed_pc")
grep -q "libfedc\.so\.0 => $libdir/libfedc\.so\.0" <<<"$ldd_out" ||
    fail "embed_pc does not load $libdir/libfedc.so.0"

step "embedding with find_package(fedc)"
unset PKG_CONFIG_PATH
"$cmake" -S "$src/examples/embed" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Wpedantic -Werror $extra" \
    -DCMAKE_EXE_LINKER_FLAGS="$extra" >"$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log" >&2; fail "find_package(fedc) configure of examples/embed"; }
"$cmake" --build "$tmp/cmake" >"$tmp/cmake-build.log" 2>&1 ||
    { cat "$tmp/cmake-build.log" >&2; fail "find_package(fedc) build of examples/embed"; }
check_run "find_package fedc::fedc" "$tmp/cmake/embed"
check_run "find_package fedc::fedc_static" "$tmp/cmake/embed_static"
if ldd "$tmp/cmake/embed_static" | grep -q libfedc; then
    fail "embed_static loads a shared libfedc"
fi
"$cmake" -S "$src/examples/custom_strategy" -B "$tmp/cmake-cs" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Wpedantic -Werror $extra" \
    -DCMAKE_EXE_LINKER_FLAGS="$extra" >"$tmp/cmake-cs.log" 2>&1 ||
    { cat "$tmp/cmake-cs.log" >&2; fail "find_package(fedc) configure of examples/custom_strategy"; }
"$cmake" --build "$tmp/cmake-cs" >"$tmp/cmake-cs-build.log" 2>&1 ||
    { cat "$tmp/cmake-cs-build.log" >&2; fail "find_package(fedc) build of examples/custom_strategy"; }
check_usage "find_package fedc::fedc" "$tmp/cmake-cs/custom_strategy"
step "ok"
