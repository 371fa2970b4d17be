#!/usr/bin/env bash
# Installs fedc's build and test dependencies from Debian/Ubuntu packages, only those missing.
# Idempotent and quick when everything is present: checks with dpkg-query and runs apt-get
# (update, install) only when something is missing.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --test     also promtool (Debian's prometheus package),
#                                      systemd-analyze and python3-venv, which only the tests
#                                      use (make test installs them this way)
#   scripts/install-deps.sh --bench    also python3-torch, OpenBLAS and python3-venv for bench/
#                                      comparisons (bench/score_compare.sh adds onnxruntime)
set -euo pipefail

# clang and its runtime libraries (libFuzzer, ASan, UBSan) build the fuzz tests (tests/fuzz); 14 is
# Debian 12's clang. libcjson-dev: cJSON writes the JSON-lines metrics files (core/fl jsonl.c).
# libinih-dev: libinih reads the programs' --config INI files (core/prog options.c).
# libmicrohttpd-dev: libmicrohttpd serves --metrics-listen (metrics, probes, status page; core/obs).
packages=(build-essential cmake pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
          libsodium-dev libcjson-dev libinih-dev libmicrohttpd-dev libcmocka-dev clang-format clang
          libclang-rt-14-dev)
# prometheus: its promtool validates the metrics exposition in tests/fl/test_http.c. About 96 MB
# installed (the whole Prometheus server comes with it), so only with --test.
# systemd: its systemd-analyze checks the units of deploy/systemd (test_systemd_units); priority
# "important", so a full Debian has it, but minimal images (debootstrap minbase, the Docker
# debian images) do not.
# python3-venv: scripts/python-venv.sh builds the virtual environment (onnxruntime from PyPI) in
# which tests/cli/test_onnx.sh checks fedc's ONNX export.
# strace: tests/cli/test_tune.c traces every process of a fedc tune run and checks that none opens
# the test file (without it, only the FIFO trap checks that).
test_only=(prometheus systemd python3-venv strace)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3-torch libopenblas0-pthread python3-venv)
elif [[ "${1:-}" == "--test" ]]; then
  packages+=("${test_only[@]}")
elif [[ $# -gt 0 ]]; then
  echo "usage: $0 [--test | --bench]" >&2
  exit 2
fi

# With a working Docker engine the deploy tests run (tests/docker): they build a local Debian base
# image with debootstrap and drive docker-compose.
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  packages+=(debootstrap)
  if ! docker-compose version >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
    packages+=(docker-compose)
  fi
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: missing: ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: apt-get not found; install these packages with your system's package" \
       "manager: ${missing[*]}" >&2
  exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "install-deps: must run as root (or with sudo available) to install: ${missing[*]}" >&2
    echo "  as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
# Debian enables and starts the Prometheus server when the package is installed on a systemd
# host; the tests only want promtool, so a server this script brought is stopped and disabled.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [[ -d /run/systemd/system ]] &&
   command -v systemctl >/dev/null 2>&1; then
  "${sudo[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  echo "install-deps: the prometheus package's server (prometheus.service) was stopped and" \
       "disabled: fedc's tests use its promtool only"
fi
