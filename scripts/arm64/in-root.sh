#!/usr/bin/env bash
# Runs INSIDE the emulated arm64 root (called by scripts/arm64-check.sh; not meant to be run by hand).
# The checkout is a fresh copy at /work/main, ../shared is bind-mounted read-only at /work/shared.
#   1. the venv /opt/venv (kept in the cached root): refreshed only when pyproject.toml changed; every third-party
#      package must come as a prebuilt aarch64 wheel (--only-binary=:all:), as it does on a Pi;
#   2. the runtime tests (files that import nothing of the converter/TensorFlow, see runtime_tests.py), not marked
#      slow: the core ones (core-tests.txt) or, with EDGE_CLASSIFIER_ARM64_TESTS=all, all of them; results as JUnit
#      XML in /work/results (on the cached root, read by the caller after the run).
# Usage: bash scripts/arm64/in-root.sh [pytest args]
set -euo pipefail
cd /work/main
venv=/opt/venv
stamp=$venv/.edge-classifier-installed
want=$(cat pyproject.toml scripts/arm64/requirements.py | sha256sum | cut -d' ' -f1)

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "arm64: installing the runtime and test requirements into $venv (prebuilt aarch64 wheels only)"
  [ -x $venv/bin/python ] || python3 -m venv $venv
  pip=($venv/bin/python -m pip install -q --disable-pip-version-check)
  "${pip[@]}" --only-binary=:all: --upgrade pip "setuptools>=77" wheel
  python3 scripts/arm64/requirements.py pyproject.toml > /tmp/requirements-arm64.txt
  "${pip[@]}" --only-binary=:all: -r /tmp/requirements-arm64.txt
  # The project itself from the checkout copy (editable, like the README's developer install; nothing to compile).
  "${pip[@]}" --no-deps --no-build-isolation -e /work/main
  $venv/bin/python -c "import edge_classifier, ai_edge_litert, cv2, numpy, PIL" && echo "$want" > "$stamp"
fi
# The versions that matter on a Pi, on one line for the CI log.
$venv/bin/python - <<'EOF'
import platform
from importlib.metadata import PackageNotFoundError, version


def installed(name: str) -> str:
    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return f"{name} (not installed)"


names = ["ai-edge-litert", "numpy", "opencv-python-headless", "pillow", "paho-mqtt", "psutil", "pytest", "pytest-timeout"]
wheels = " ".join(installed(n) for n in names)
print(f"arm64: {platform.machine()} Python {platform.python_version()} glibc {platform.libc_ver()[1]}; wheels: {wheels}")
EOF

# --prepare (EDGE_CLASSIFIER_ARM64_TESTS=prepare): the venv is ready, no tests.
[ "${EDGE_CLASSIFIER_ARM64_TESTS:-core}" != prepare ] || exit 0

# Host-only test files (converter, TensorFlow) are left out by their imports; the reasons go to the log. Unless
# --all (EDGE_CLASSIFIER_ARM64_TESTS=all) or test paths were given: only the core files (scripts/arm64/core-tests.txt).
mapfile -t ignores < <(python3 scripts/arm64/runtime_tests.py tests)
selection=()
named=0
for arg in "$@"; do case "$arg" in tests/* | ./tests/*) named=1 ;; esac; done
if [ "${EDGE_CLASSIFIER_ARM64_TESTS:-core}" = core ] && [ "$named" = 0 ]; then
  core=$(python3 scripts/arm64/runtime_tests.py tests --core scripts/arm64/core-tests.txt) || exit 2
  mapfile -t selection <<<"$core"
  echo "arm64: core runtime tests: ${selection[*]#tests/}"
fi
mkdir -p /work/results
rm -f /work/results/junit.xml /work/results/counts
rc=0
# -p no:cacheprovider: nothing to keep between runs. --timeout: a hung test must not eat CI's budget (tests with
# their own timeout mark keep it).
$venv/bin/python -m pytest -q -p no:cacheprovider -m "not slow" --timeout=600 --continue-on-collection-errors \
  --junitxml=/work/results/junit.xml "${ignores[@]}" "${selection[@]}" "$@" || rc=$?
# Counts for the caller's closing line: passed failed skipped (errors count as failed).
python3 - <<'EOF2' || true
import xml.etree.ElementTree as ET

suites = ET.parse("/work/results/junit.xml").getroot().iter("testsuite")
tests = failed = skipped = 0
for s in suites:
    tests += int(s.get("tests", 0))
    failed += int(s.get("failures", 0)) + int(s.get("errors", 0))
    skipped += int(s.get("skipped", 0))
with open("/work/results/counts", "w") as f:
    f.write(f"{tests - failed - skipped} {failed} {skipped}\n")
EOF2
exit $rc
