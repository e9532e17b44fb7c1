#!/usr/bin/env bash
# Install what the tests need into .venv (only when pyproject.toml changed), then ruff, mypy and the tests.
# Usage: bash scripts/test.sh            # lint, types, and every test but the slow conversion ones (-m "not slow")
#        bash scripts/test.sh --slow     # the slow stage alone: conversions and training that run TensorFlow (minutes)
#        bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: a real MQTT broker for the IoT tests, gcc for the stand-in libedgetpu the tests build, openssl for
# TLS tests, systemd-analyze for the unit file, Chromium for the web view's browser tests.
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto mosquitto-clients)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # DPkg::Lock::Timeout waits for dpkg's lock if another apt-get holds it (`apt-get update` does not wait on its lists'
  # lock: CI installs the arm64 check's packages before this runs, so the two never overlap).
  { $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq &&
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null; } ||
    { echo "test.sh: could not install ${need[*]} with apt-get (see above): install them, then run this again" >&2; exit 1; }
fi

[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
# Reinstall only when the project's dependencies changed: the stamp is the sha256 of pyproject.toml.
stamp=".venv/.edge-classifier-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored: it is neither" || true
  .venv/bin/python -m pip install -q -e ".[dev,convert,mqtt]" 2>&1 | grep -v "is ignored: it is neither" || true
  .venv/bin/python -c "import edge_classifier, edge_classifier.convert" && echo "$want" > "$stamp"
fi

if [ "${1:-}" = "--slow" ]; then
  shift
  exec .venv/bin/python -m pytest -q -m slow "$@"
fi
.venv/bin/ruff check edge_classifier converters tests benchmarks examples scripts
.venv/bin/mypy --strict edge_classifier   # the package: strict
.venv/bin/mypy converters                 # the host-side tools: checked, not yet strict
.venv/bin/python -m pytest -q "$@"
