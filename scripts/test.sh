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

OCTOPRINT="$OCTOPRINT_1" bash scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
if [ "$#" -gt 0 ]; then
  exec .venv/bin/pytest -p no:cacheprovider -ra "$@"
fi

VENV=.venv20 OCTOPRINT="$OCTOPRINT_2" bash scripts/setup.sh --test
FLUXPRINT_COMPAT_DIR=$(mktemp -d)
export FLUXPRINT_COMPAT_DIR
status=0
# one version after the other: side by side, the two suites' OctoPrints and Node
# clients load the 2 cores enough to make real-time tests flaky
echo "== OctoPrint $OCTOPRINT_1: everything"
FLUXPRINT_TEST_OCTOPRINT="$OCTOPRINT_1" .venv/bin/pytest -p no:cacheprovider -ra || status=$?
# on 2.0 what touches OctoPrint: the plugin's units, the integration, security,
# compatibility and install tests, the plugin's REST fallback; the engine's stress tests (marker "engine") and
# the pure units run once, above: the socket.io, engine.io and tornado are the same
echo "== OctoPrint $OCTOPRINT_2: plugin units, integration, security, compat, install, REST"
FLUXPRINT_TEST_OCTOPRINT="$OCTOPRINT_2" FLUXPRINT_ARTIFACTS=test-artifacts/octoprint-2 \
  .venv20/bin/pytest -p no:cacheprovider -ra -m "not engine" \
  tests/unit/plugin tests/unit/test_layers.py tests/integration tests/security \
  tests/compat tests/install/test_install.py tests/js/test_rest.py \
  || status=$?
echo "== the same scripted session on both versions"
.venv/bin/pytest -p no:cacheprovider -ra tests/compat/compare_versions.py || status=$?
exit "$status"
