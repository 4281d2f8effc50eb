#!/usr/bin/env bash
# README command 1: set up a fresh clone and start the demo on http://127.0.0.1:8000/.
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo needs only the runtime: no test tools, browsers or node packages.
bash infra/setup.sh --runtime
exec "${JOURPOST_VENV:-.venv}/bin/jourpost" demo "$@"
