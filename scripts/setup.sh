#!/usr/bin/env bash
# Installs everything FluxPrint's demo and tests need, idempotently:
#   a venv ($VENV, default .venv) with OctoPrint ($OCTOPRINT, default 1.11.8) and
#   the plugin (editable), Node's socket.io-client for the test clients; the hub as
#   a user installs it (.hubvenv: the wheel built once, "<wheel>[hub]" in a venv
#   without OctoPrint or the develop extra, tools/hubvenv.py), which the demo and
#   the hub tests run; and with --test also the test tools, the FluxStudio relay
#   stand-in's packages and Debian's chromium for the browser tests.
#   --venv-only makes $VENV alone (a second OctoPrint version's venv, beside a full
#   run: scripts/test.sh makes .venv20 this way while .venv's run does the rest).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
venv_only=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --venv-only) venv_only=1 ;;
    *) echo "usage: $0 [--test] [--venv-only]  (env: VENV=.venv OCTOPRINT=octoprint==1.11.8)" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# OctoPrint is not a dependency of the distribution (see pyproject.toml): the demo
# and the tests install the version they run against explicitly
OCTOPRINT=${OCTOPRINT:-octoprint==1.11.8}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
if [ "$want_test" = 1 ]; then
  "${pip[@]}" install "$OCTOPRINT" -e ".[develop,hub]"
else
  "${pip[@]}" install "$OCTOPRINT" -e ".[hub]" build
fi
"$VENV/bin/pip" check
if [ "$venv_only" = 1 ]; then
  exit 0
fi
# the hub from its wheel, as "pip install OctoPrint-FluxPrint[hub]" gives it
PYTHON="$PYTHON" "$VENV/bin/python" tools/hubvenv.py >/dev/null

if [ "$want_test" = 1 ]; then
  (cd tests/node && npm ci --silent --no-audit --no-fund)
  if [ -f tests/fluxstudio/package.json ]; then
    (cd tests/fluxstudio && npm ci --silent --no-audit --no-fund)
  fi
  # the npm client (clients/js): its build and test tools from the committed lock;
  # this also fills npm's cache, from which tests/js installs the packed tarball
  # into a scratch project offline
  (cd clients/js && npm ci --silent --no-audit --no-fund)
  # Debian's chromium for the browser tests, Debian's redis-server for the farm's
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v redis-server >/dev/null || missing+=(redis-server)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
      # the tests start their own redis-server; Debian's service is not needed
      if command -v systemctl >/dev/null; then systemctl disable --now redis-server 2>/dev/null || true; fi
    else
      echo "The tests need Debian's ${missing[*]}: sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
  fi
fi
