#!/usr/bin/env bash
# Installs the Debian packages Jourpost needs on a fresh machine (Debian 12): with --runtime only
# what the portal itself needs (the demo), otherwise also what the tests use.
# Idempotent: packages already present are left alone. Run as root (CI runs as root).
set -euo pipefail

runtime=(
  # WeasyPrint (PDF/A rendering of decisions and reports)
  libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
)
packages=(
  "${runtime[@]}"
  # Independent signature checks (pdfsig), NSS trust store tool (certutil), PDF structure checks
  poppler-utils libnss3-tools qpdf
  # Validation with the clock really moved (signatures years after the certificate expired)
  faketime
  # PKCS#11 HSM for the signing CA key in tests
  softhsm2
  # Real browser for end-to-end journeys; HTTP load generator for bench/
  chromium wrk
  # `nginx -t` and `systemd-analyze verify` of the deployment examples (tests/infra); nginx is
  # also run, unprivileged on a loopback port, in front of a test portal
  # (tests/portal/test_trusted_proxies.py)
  nginx systemd
)
# Node.js (independent OpenID provider, axe-core) comes with the machine; install Debian's only if absent.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
if [ "${1:-}" = "--runtime" ]; then
  packages=("${runtime[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "infra: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "infra: system packages present"
