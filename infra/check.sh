#!/usr/bin/env bash
# The one check command: format, lint, types, then the whole test suite (warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
echo "== ruff format --check"; ruff format --check portal auth signing storage tests bench
echo "== ruff check";          ruff check portal auth signing storage tests bench
echo "== mypy --strict";       mypy
echo "== pytest";              pytest "$@"
