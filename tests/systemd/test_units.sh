#!/usr/bin/env bash
# The systemd units of deploy/systemd pass `systemd-analyze verify` without a word: it exits 0 on
# an unknown directive and only prints a warning, so any output fails the test. verify also checks
# that ExecStart's program exists, so the units are checked in a copy whose /usr/local/bin paths
# point at the programs just built. A negative control (the same unit with a misspelt directive)
# must fail the same check, and the example INI files must be accepted by the programs'
# --config (--print-config parses them without running).
#   test_units.sh SOURCE_DIR FEDC_COORDINATOR FEDC_CLIENT
set -euo pipefail
src=$1 coord=$(realpath "$2") client=$(realpath "$3")
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "test_units: systemd-analyze not found (scripts/install-deps.sh installs systemd)" >&2
  exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fedc-test-units.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Copies unit $1 into the temporary directory with the built programs in its ExecStart.
stage() {
  sed -e "s#/usr/local/bin/fedc-coordinator#$coord#g" -e "s#/usr/local/bin/fedc-client#$client#g" \
      "$src/deploy/systemd/$1" > "$tmp/$1"
}

# Runs verify on the given units (paths in $tmp); 0 only when it exits 0 and prints nothing.
verify_quiet() {
  local out rc=0
  out=$(cd "$tmp" && systemd-analyze verify "$@" 2>&1) || rc=$?
  if [[ $rc -ne 0 || -n "$out" ]]; then
    echo "systemd-analyze verify $* (exit $rc):"
    echo "$out"
    return 1
  fi
  return 0
}

stage fedc-coordinator.service
stage fedc-client@.service
# A template is verified through an instance: %i becomes the participant's name.
verify_quiet ./fedc-coordinator.service ./fedc-client@bank-a.service
echo "test_units: fedc-coordinator.service and fedc-client@.service verify cleanly"

# Negative control: a misspelt directive is only a warning for systemd, a failure here.
sed -e 's/^ProtectSystem=/ProtectSytem=/' "$tmp/fedc-coordinator.service" > "$tmp/typo.service"
grep -q '^ProtectSytem=' "$tmp/typo.service"
if verify_quiet ./typo.service > "$tmp/typo.out"; then
  echo "test_units: a unit with a misspelt directive passed the check" >&2
  exit 1
fi
grep -q "ProtectSytem" "$tmp/typo.out"
echo "test_units: negative control: the misspelt directive is caught"

# The example configuration files: every key known to the program of its section.
"$coord" --config "$src/deploy/systemd/coordinator.ini" --key /dev/null --print-config > /dev/null
"$client" --config "$src/deploy/systemd/client.ini" --key /dev/null --print-config > /dev/null
echo "test_units: the example INI files parse"
