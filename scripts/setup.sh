#!/usr/bin/env bash
# Installs everything FluxPrint's demo and tests need, idempotently:
#   a venv in .venv with OctoPrint 1.11 and the plugin (editable), Node's
#   socket.io-client for the test clients, and with --test also the test tools
#   and Debian's chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# OctoPrint is not a dependency of the distribution (see pyproject.toml): the demo
# and the tests install the version they run against explicitly
OCTOPRINT=${OCTOPRINT:-octoprint==1.11.8}
if [ "$want_test" = 1 ]; then
  .venv/bin/pip install -q --disable-pip-version-check "$OCTOPRINT" -e ".[develop]"
else
  .venv/bin/pip install -q --disable-pip-version-check "$OCTOPRINT" -e .
fi
.venv/bin/pip check

if [ "$want_test" = 1 ]; then
  (cd tests/node && npm ci --silent --no-audit --no-fund)
  (cd tests/fluxstudio && npm ci --silent --no-audit --no-fund)
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "The browser tests need Debian's chromium: sudo apt-get install -y chromium" >&2
      exit 1
    fi
  fi
fi
