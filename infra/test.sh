#!/usr/bin/env bash
# README command 2: set up a fresh clone and run every check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
bash infra/check.sh "$@"
