#!/usr/bin/env bash
# Starts OctoPrint with the Virtual Printer and FluxPrint, ready for a client.
# PORT (default 5000) and HOST (default 127.0.0.1) can be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python tools/demo.py "$@"
