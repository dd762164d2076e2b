#!/usr/bin/env bash
# Runs every test: lint; the whole suite against OctoPrint 1.11 (.venv); the plugin's
# units, the integration, security, compatibility and Plugin Manager install tests
# against OctoPrint 2.0 (.venv20); then the field-by-field comparison of the same scripted
# session on both. Arguments go to pytest and run against 1.11 only.
set -euo pipefail
cd "$(dirname "$0")/.."

OCTOPRINT_1=${FLUXPRINT_OCTOPRINT_1:-octoprint==1.11.8}
# the OctoPrint 2.0 release the tests run against: bump it on release
OCTOPRINT_2=${FLUXPRINT_OCTOPRINT_2:-octoprint==2.0.0rc7}

if [ "$#" -gt 0 ]; then
  OCTOPRINT="$OCTOPRINT_1" bash scripts/setup.sh --test
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  exec .venv/bin/pytest -p no:cacheprovider -ra "$@"
fi

# everything pip builds, side by side (pip keeps about one core busy; one after the
# other this was about 3 minutes): .venv with the shared parts (Node packages, .hubvenv,
# apt), .venv20 alone, and for each version the Plugin Manager install test's clean
# venv (OctoPrint and python-socketio, never FluxPrint: tests/install/test_install.py
# installs the same again, a no-op, and takes FluxPrint out first)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
install_venv() {
  "${PYTHON:-python3}" -m venv "$1" &&
    "$1/bin/python" -m pip install -q --disable-pip-version-check "$2" \
      "python-socketio>=5.11,<6"
}
pids=()
names=()
background() {
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
}
background venv20 env VENV=.venv20 OCTOPRINT="$OCTOPRINT_2" \
  bash scripts/setup.sh --test --venv-only
background install1 install_venv "$work/install1" "$OCTOPRINT_1"
background install2 install_venv "$work/install2" "$OCTOPRINT_2"
OCTOPRINT="$OCTOPRINT_1" bash scripts/setup.sh --test
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    cat "$work/${names[$i]}.log" >&2
    echo "setup step ${names[$i]} failed" >&2
    exit 1
  fi
  cat "$work/${names[$i]}.log"
done
.venv/bin/ruff check .
.venv/bin/ruff format --check .
FLUXPRINT_COMPAT_DIR=$work/compat
mkdir -p "$FLUXPRINT_COMPAT_DIR"
export FLUXPRINT_COMPAT_DIR
status=0
# one version after the other: side by side, the two suites' OctoPrints and Node
# clients load the 2 cores enough to make real-time tests flaky
echo "== OctoPrint $OCTOPRINT_1: everything"
FLUXPRINT_TEST_OCTOPRINT="$OCTOPRINT_1" FLUXPRINT_INSTALL_VENV="$work/install1" \
  .venv/bin/pytest -p no:cacheprovider -ra || status=$?
# on 2.0 what touches OctoPrint: the plugin's units, the integration, security,
# compatibility and install tests, the plugin's REST fallback; the engine's stress tests (marker "engine") and
# the pure units run once, above: the socket.io, engine.io and tornado are the same
echo "== OctoPrint $OCTOPRINT_2: plugin units, integration, security, compat, install, REST"
FLUXPRINT_TEST_OCTOPRINT="$OCTOPRINT_2" FLUXPRINT_ARTIFACTS=test-artifacts/octoprint-2 \
  FLUXPRINT_INSTALL_VENV="$work/install2" \
  .venv20/bin/pytest -p no:cacheprovider -ra -m "not engine" \
  tests/unit/plugin tests/unit/test_layers.py tests/integration tests/security \
  tests/compat tests/install/test_install.py tests/js/test_rest.py \
  || status=$?
echo "== the same scripted session on both versions"
.venv/bin/pytest -p no:cacheprovider -ra tests/compat/compare_versions.py || status=$?
exit "$status"
