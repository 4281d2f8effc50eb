#!/usr/bin/env bash
# Sets up a fresh clone: Debian packages, a virtualenv with pinned Python dependencies, and the
# node packages of the test servers. Idempotent; safe to run before every demo or test run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
  bash infra/install-system-deps.sh
elif command -v sudo >/dev/null 2>&1; then
  sudo bash infra/install-system-deps.sh
else
  echo "setup: not root and no sudo: install the packages in infra/install-system-deps.sh by hand" >&2
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "setup: Python 3.11 or newer is required" >&2; exit 1; }
  "$PYTHON" -m venv .venv
fi
# Reinstall only when the dependency list or the pins changed.
stamp=.venv/.jourpost-deps
want=$(cat pyproject.toml infra/constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c infra/constraints.txt -e '.[test]'
  echo "$want" > "$stamp"
fi

# eark-validator 1.1.3 (the E-ARK checks of exported packages) pins lxml==5.1.0, which pyHanko
# cannot share: it gets its own virtualenv, rebuilt when its pins change.
eark=.venv/eark-validator
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
