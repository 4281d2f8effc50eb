#!/usr/bin/env bash
# Sets up a fresh clone: Debian packages, a virtualenv with pinned Python dependencies, and the
# node packages of the test servers. Idempotent; safe to run before every demo or test run.
#   bash infra/setup.sh            everything the tests need (README command 2)
#   bash infra/setup.sh --runtime  only what the portal needs (README command 1, the demo)
# JOURPOST_VENV names the virtualenv (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=test
[ "${1:-}" = "--runtime" ] && mode=runtime
venv=${JOURPOST_VENV:-.venv}
deps_flag=()
[ "$mode" = runtime ] && deps_flag=(--runtime)

if [ "$(id -u)" = 0 ]; then
  bash infra/install-system-deps.sh "${deps_flag[@]}"
elif command -v sudo >/dev/null 2>&1; then
  sudo bash infra/install-system-deps.sh "${deps_flag[@]}"
else
  echo "setup: not root and no sudo: install the packages in infra/install-system-deps.sh by hand" >&2
fi

PYTHON=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "setup: Python 3.11 or newer is required" >&2; exit 1; }
  "$PYTHON" -m venv "$venv"
fi
# Reinstall only when the dependency list or the pins changed (a test set-up also serves the demo).
stamp=$venv/.jourpost-deps
hash=$(cat pyproject.toml infra/constraints.txt | sha256sum | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$mode" = runtime ]; then
  if [ "$have" != "test-$hash" ] && [ "$have" != "runtime-$hash" ]; then
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -c infra/constraints.txt -e .
    echo "runtime-$hash" > "$stamp"
  fi
  echo "setup: ready (runtime)"
  exit 0
fi
if [ "$have" != "test-$hash" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -c infra/constraints.txt -e '.[test]'
  echo "test-$hash" > "$stamp"
fi

# eark-validator 1.1.3 (the E-ARK checks of exported packages) pins lxml==5.1.0, which pyHanko
# cannot share: it gets its own virtualenv, rebuilt when its pins change.
eark=$venv/eark-validator
want=$(sha256sum infra/eark-validator.txt | cut -d' ' -f1)
if [ "$(cat "$eark/.jourpost-deps" 2>/dev/null)" != "$want" ]; then
  "$PYTHON" -m venv --clear "$eark"
  "$eark/bin/python" -m pip install -q -r infra/eark-validator.txt
  echo "$want" > "$eark/.jourpost-deps"
fi

for dir in tests/servers/oidc_provider tests/e2e; do
  if [ -f "$dir/package-lock.json" ]; then
    lock=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    if [ "$(cat "$dir/node_modules/.jourpost-lock" 2>/dev/null)" != "$lock" ]; then
      npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
      echo "$lock" > "$dir/node_modules/.jourpost-lock"
    fi
  fi
done
echo "setup: ready"
