#!/usr/bin/env bash
# README command 1: set up a fresh clone and start the demo on http://127.0.0.1:8000/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
exec .venv/bin/jourpost demo "$@"
