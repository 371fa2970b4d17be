#!/usr/bin/env bash
# Creates (once) the Python virtual environment that bench/ comparisons with Python libraries run
# in, and installs the packages named into it with pip from PyPI; prints the environment's python.
# Quick when everything is there already: it only checks that each package imports.
#
#   scripts/pyvenv.sh [--venv DIR] PACKAGE[==VERSION]...     (default DIR: .venv at the repo root)
#   PY=$(scripts/pyvenv.sh pandas)                           (the python to run them with)
#
# Needs python3 with its venv module (Debian: python3-venv, which scripts/install-deps.sh --bench
# installs). Progress goes to stderr, the python's path alone to stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$ROOT/.venv
pkgs=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --venv) [[ $# -ge 2 ]] || { echo "pyvenv: --venv needs a directory" >&2; exit 2; }
            VENV=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "pyvenv: unknown option '$1' (try --help)" >&2; exit 2 ;;
    *) pkgs+=("$1") ;;
  esac
  shift
done
[[ ${#pkgs[@]} -gt 0 ]] || { echo "pyvenv: name the packages to install (try --help)" >&2; exit 2; }

PY=$VENV/bin/python
if [[ ! -x "$PY" ]]; then
  command -v python3 >/dev/null 2>&1 || { echo "pyvenv: python3 not found" >&2; exit 1; }
  echo "pyvenv: creating $VENV" >&2
  if ! python3 -m venv "$VENV" >&2; then
    echo "pyvenv: python3 -m venv failed; on Debian/Ubuntu: scripts/install-deps.sh --bench" \
         "(python3-venv)" >&2
    rm -rf "$VENV"
    exit 1
  fi
fi
missing=()
for p in "${pkgs[@]}"; do
  mod=${p%%[=<>]*}
  "$PY" -c "import ${mod//-/_}" >/dev/null 2>&1 || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "pyvenv: installing ${missing[*]} into $VENV" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check "${missing[@]}" >&2
fi
echo "$PY"
