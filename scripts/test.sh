#!/usr/bin/env bash
# Runs every test: lint, unit tests, and the integration, browser, install and
# benchmark-smoke tests against real OctoPrint servers it starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest -p no:cacheprovider -ra "$@"
