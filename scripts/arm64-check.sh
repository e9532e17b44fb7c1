#!/usr/bin/env bash
# The runtime test suite on the Raspberry Pi's own architecture: an arm64 Debian root file system (the userland of
# Raspberry Pi OS: Bookworm, Python 3.11; or --suite trixie, Python 3.13) run through qemu user-mode emulation.
#
# Usage: bash scripts/arm64-check.sh [--suite bookworm|trixie] [--all | --prepare | --host-tools] [--rebuild] [pytest args]
#   default: the core runtime tests (scripts/arm64/core-tests.txt: those whose outcome can depend on the CPU);
#   --all: every runtime test (over an hour and a half of CPU under emulation: by hand or nightly, not in CI);
#   --prepare: only build or refresh the cached root and its venv, no tests (CI does this while its first stages
#   run; a check started meanwhile waits for it on the cache's lock);
#   --host-tools: only install what the host needs from apt (debootstrap, Debian's keyring), then exit. CI runs it
#   before anything else runs in the background, so no two apt-get calls ever race for dpkg's lock.
#
# Needs root (or password-less sudo) on a Debian-family host with apt, and deb.debian.org and PyPI on first use.
# Cached outside the repository, in $EDGE_CLASSIFIER_ARM64_CACHE (default /var/cache/edge-classifier/arm64-SUITE):
#   qemu/  qemu-aarch64 (>= 8; 10.x from bookworm-backports' qemu-user .deb, a static binary, extracted, not
#          installed). Bookworm's own qemu 7.2 is no stand-in: ai-edge-litert 2.2+ crashes in allocate_tensors under it.
#   root/  the arm64 root (debootstrap from Debian's archive) with python3, the system tools the tests use and the
#          venv /opt/venv. Rebuilt when its package list changes (or --rebuild); the venv when pyproject.toml does.
# Each run copies the checkout (tracked and untracked, not ignored files) to /work/main in the root and bind-mounts
# ../shared read-only at /work/shared, so the tests find their data at the same relative path.
# Emulation: a binfmt_misc handler registered for this run only (removed on exit, whatever the exit); on an aarch64
# host, none. (PRoot is no fallback: Debian's 5.1 does not translate the paths of statx, which qemu 10 uses, so gcc
# and ls fail inside the root.) The tests are those that import nothing of the converter or TensorFlow (see
# scripts/arm64/runtime_tests.py), not marked slow.
# Last line: "arm64: N passed, N failed, N skipped (...)"; the exit status is non-zero when any test failed.
# Where no emulation is possible (no root, no binfmt_misc): "arm64: skipped: REASON" and exit 0; under CI=true that
# is a failure (exit 1).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ARGS=("$@")
SUITE=bookworm
REBUILD=0
TESTS=core
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) SUITE=${2:-}; shift 2 ;;
    --suite=*) SUITE=${1#*=}; shift ;;
    --rebuild) REBUILD=1; shift ;;
    --all) TESTS=all; shift ;;
    --prepare) TESTS=prepare; shift ;;
    --host-tools) TESTS=host-tools; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
case "$SUITE" in
  bookworm | trixie) ;;
  *) echo "arm64-check: --suite must be bookworm or trixie, not '$SUITE'" >&2; exit 2 ;;
esac
CACHE=${EDGE_CLASSIFIER_ARM64_CACHE:-/var/cache/edge-classifier/arm64-$SUITE}
CACHE=${CACHE%/}
# The cache is deleted and rebuilt in parts: never let a typo point it at / or a relative path.
case "$CACHE" in
  /?*) ;;
  *) echo "arm64-check: EDGE_CLASSIFIER_ARM64_CACHE must be an absolute folder other than /, not '$CACHE'" >&2; exit 2 ;;
esac
MIRROR=${EDGE_CLASSIFIER_ARM64_MIRROR:-http://deb.debian.org/debian}
QEMU_SUITE=${EDGE_CLASSIFIER_ARM64_QEMU_SUITE:-bookworm-backports}
# The CPU qemu presents: a Pi 4's Cortex-A72 (the ISA of every 64-bit Pi up to the 4), so LiteRT and OpenCV pick the
# kernels a Pi runs, not those of qemu's default "max" CPU (SVE, SME: no Pi has them). cortex-a76: a Pi 5.
export QEMU_CPU=${EDGE_CLASSIFIER_ARM64_CPU:-cortex-a72}
SHARED=$(dirname "$REPO")/shared
ROOT=$CACHE/root
# The root's Debian packages: Python, and gcc for the fake libedgetpu the Edge TPU tests build. With --all, also the
# tools only the other runtime tests call (installed into the cached root on first use): mosquitto, the MQTT tests'
# broker; openssl, their TLS certificates; systemd, systemd-analyze for the unit file; chromium, the web view's page.
PACKAGES=python3,python3-venv,ca-certificates,gcc,libc6-dev
FULL_PACKAGES="mosquitto mosquitto-clients openssl systemd chromium"
ROOT_FORMAT=1 # bump when the way the root is made changes: the cached root is then rebuilt
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
START=$SECONDS

under_ci() { case "${CI:-}" in 1 | true | TRUE | True | yes) return 0 ;; esac; return 1; }
log() { echo "arm64: $*"; }
# No way to emulate here: a skip with the reason, except under CI, where the check must run.
unavailable() {
  if under_ci; then
    echo "arm64: FAILED: the arm64 check cannot run on this machine: $1 (CI=true requires it)"
    exit 1
  fi
  echo "arm64: skipped: $1"
  exit 0
}
elapsed() { local s=$((SECONDS - ${1:-$START})); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

[ "$(uname -s)" = Linux ] || unavailable "qemu user-mode emulation needs a Linux host, this is $(uname -s)"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n --preserve-env=CI,PIP_INDEX_URL,EDGE_CLASSIFIER_ARM64_CACHE,EDGE_CLASSIFIER_ARM64_MIRROR,EDGE_CLASSIFIER_ARM64_QEMU_SUITE,EDGE_CLASSIFIER_ARM64_QEMU,EDGE_CLASSIFIER_ARM64_CPU \
      bash "$0" "${ARGS[@]}"
  fi
  unavailable "building the arm64 root needs root (debootstrap, chroot, binfmt_misc) and sudo -n is not allowed"
fi
command -v apt-get >/dev/null 2>&1 || unavailable "no apt-get: debootstrap and qemu come from Debian's archive"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  log "waiting for another arm64 check using $CACHE"
  flock 9
fi

# ---- host tools --------------------------------------------------------------------------------------------------
case "$(uname -m)" in aarch64 | arm64) METHOD=native ;; *) METHOD=binfmt ;; esac
need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
[ -f "$KEYRING" ] || need+=(debian-archive-keyring)
# Another apt-get (a test script's) may hold apt's locks: DPkg::Lock::Timeout waits for dpkg's, but `apt-get update`
# fails at once on the lists' lock (apt 2.6), so each call is retried for up to two minutes.
host_apt() {
  local try
  for try in 1 2 3 4 5 6 7 8 9 10 11 12; do
    if env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 "$@"; then return 0; fi
    log "apt-get $1 failed (another apt-get running?): try $try of 12, again in 10 s"
    sleep 10
  done
  return 1
}
if [ ${#need[@]} -gt 0 ]; then
  log "installing on the host: ${need[*]}"
  { host_apt update -qq && host_apt install -y -qq "${need[@]}" >/dev/null; } ||
    unavailable "could not install ${need[*]} with apt-get (see the lines above)"
fi
if [ "$TESTS" = host-tools ]; then
  log "host tools ready: debootstrap $(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null || echo '?')"
  exit 0
fi

# ---- qemu-aarch64 >= 8 -------------------------------------------------------------------------------------------
QEMU=
qemu_major() { "$1" --version 2>/dev/null | sed -n '1s/.*version \([0-9]*\)\..*/\1/p'; }
# The static qemu-aarch64 of $QEMU_SUITE's qemu-user package, fetched with apt using a private state folder (the
# host's sources and package cache stay untouched) and extracted without installing it.
fetch_qemu() {
  local apt=$CACHE/apt deb tmp
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d" "$CACHE/qemu"
  echo "deb [signed-by=$KEYRING] $MIRROR $QEMU_SUITE main" >"$apt/sources.list"
  local opts=(-qq -o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/sources.list.d"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Sandbox::User=root")
  apt-get "${opts[@]}" update
  rm -f "$apt"/qemu-user_*.deb
  (cd "$apt" && apt-get "${opts[@]}" download "qemu-user/$QEMU_SUITE")
  deb=$(ls "$apt"/qemu-user_*.deb)
  tmp=$(mktemp -d)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/bin/qemu-aarch64
  mv "$tmp/usr/bin/qemu-aarch64" "$CACHE/qemu/qemu-aarch64"
  rm -rf "$tmp" "$deb" "$apt/lists" "$apt/cache"
}
if [ "$METHOD" != native ]; then
  if [ -n "${EDGE_CLASSIFIER_ARM64_QEMU:-}" ]; then
    QEMU=$EDGE_CLASSIFIER_ARM64_QEMU
  else
    QEMU=$CACHE/qemu/qemu-aarch64
    if [ ! -x "$QEMU" ] || [ "$(qemu_major "$QEMU")" = "" ]; then
      log "fetching qemu-user from Debian $QEMU_SUITE"
      fetch_qemu || unavailable "could not fetch qemu-user from $MIRROR $QEMU_SUITE"
    fi
  fi
  major=$(qemu_major "$QEMU")
  [ -n "$major" ] && [ "$major" -ge 8 ] ||
    unavailable "$QEMU is qemu ${major:-?}: ai-edge-litert needs qemu >= 8 (Bookworm's 7.2 crashes in allocate_tensors)"
  QEMU_VERSION=$("$QEMU" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')
fi

# ---- emulation: a binfmt_misc handler for this run --------------------------------------------------------------
BINFMT=/proc/sys/fs/binfmt_misc
BINFMT_ENTRY=
MOUNTED_BINFMT=0
cleanup() {
  if [ -n "$BINFMT_ENTRY" ] && [ -e "$BINFMT_ENTRY" ]; then echo -1 >"$BINFMT_ENTRY" || true; fi
  # Unmount only what this run mounted, and only when no other handler (another run's) lives there.
  if [ "$MOUNTED_BINFMT" = 1 ] && [ -z "$(ls "$BINFMT" | grep -vx -e register -e status)" ]; then
    umount "$BINFMT" 2>/dev/null || true
  fi
}
CHILD=
on_signal() {
  # The emulated command runs in a process group of its own (run_child): stop all of it, then clean up.
  [ -z "$CHILD" ] || kill -TERM -- "-$CHILD" 2>/dev/null || true
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM
# Run "$@" (a function too) in a process group of its own (set -m) and wait for it: a signal to this script then
# reaches the trap at once instead of after the command, and the trap stops the whole group.
run_child() {
  set -m
  "$@" &
  CHILD=$!
  set +m
  local status=0
  wait "$CHILD" || status=$?
  CHILD=
  return "$status"
}

register_binfmt() {
  if [ ! -e "$BINFMT/register" ]; then
    mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null || return 1
    MOUNTED_BINFMT=1
  fi
  # qemu's own aarch64 ELF pattern and flags (Debian's binfmt.d/qemu-aarch64.conf). F: the kernel opens the
  # interpreter now, so it works inside the chroot; P with a "-binfmt-P" name: qemu keeps the program's argv[0].
  ln -sf "$QEMU" "$CACHE/qemu/aarch64-binfmt-P"
  # A run killed outright (SIGKILL, a lost CI runner) could not remove its handler: drop those whose run is gone.
  local stale pid
  for stale in "$BINFMT"/edge-classifier-aarch64-*; do
    [ -e "$stale" ] || continue
    pid=${stale##*-}
    kill -0 "$pid" 2>/dev/null || { echo -1 >"$stale" 2>/dev/null && log "removed the stale handler of run $pid"; } || true
  done
  local name=edge-classifier-aarch64-$$
  local magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
  local mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
  printf '%s' ":$name:M::$magic:$mask:$CACHE/qemu/aarch64-binfmt-P:OPF" >"$BINFMT/register" 2>/dev/null || return 1
  BINFMT_ENTRY=$BINFMT/$name
}
if [ "$METHOD" = binfmt ] && ! register_binfmt; then
  unavailable "cannot register a binfmt_misc handler for qemu-aarch64 (no permission to mount or write $BINFMT: a container without CAP_SYS_ADMIN?)"
fi
unshare --mount --propagation private true 2>/dev/null ||
  unavailable "cannot make a private mount namespace for the root (unshare needs CAP_SYS_ADMIN)"

# Run a command in an arm64 root, in a private mount namespace (every mount vanishes with the command). "run" mode
# binds /dev, /sys, a fresh /tmp and ../shared (read-only) at /work/shared; "bootstrap" mode only /proc
# (debootstrap's second stage makes its own /dev).
in_root() {
  local mode=$1 root=$2
  shift 2
  # PYTHONPYCACHEPREFIX: bytecode outside the checkout copy (renewed every run), kept in the root between runs.
  local envs=(env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" QEMU_CPU="$QEMU_CPU" EDGE_CLASSIFIER_ARM64_TESTS="$TESTS"
    PYTHONUNBUFFERED=1 PYTHONPYCACHEPREFIX=/work/pycache PIP_DISABLE_PIP_VERSION_CHECK=1
    PIP_CERT=/etc/ssl/certs/edge-classifier-host-ca.crt PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  [ -z "${PIP_INDEX_URL:-}" ] || envs+=("PIP_INDEX_URL=$PIP_INDEX_URL")
  local shared=
  [ "$mode" = run ] && [ -d "$SHARED" ] && shared=$SHARED
  unshare --mount --propagation private bash -c '
    set -e
    mode=$1 root=$2 shared=$3
    shift 3
    mount -t proc proc "$root/proc"
    if [ "$mode" = run ]; then
      mount --rbind /sys "$root/sys"
      mount --rbind /dev "$root/dev"
      mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
      if [ -n "$shared" ]; then
        mkdir -p "$root/work/shared"
        mount --bind "$shared" "$root/work/shared"
        mount -o remount,bind,ro "$root/work/shared"
      fi
    fi
    exec chroot "$root" "$@"
  ' bash "$mode" "$root" "$shared" "${envs[@]}" "$@"
}

case $METHOD in
  native) log "Debian $SUITE arm64 root in $ROOT, native (aarch64 host)" ;;
  binfmt) log "Debian $SUITE arm64 root in $ROOT; qemu-aarch64 $QEMU_VERSION through binfmt_misc ($BINFMT_ENTRY, for this run)" ;;
esac

# ---- the arm64 root (cached) -------------------------------------------------------------------------------------
want_root="format=$ROOT_FORMAT suite=$SUITE mirror=$MIRROR packages=$PACKAGES"
if [ "$REBUILD" = 1 ] || [ "$(cat "$ROOT/.edge-classifier-root" 2>/dev/null)" != "$want_root" ]; then
  t0=$SECONDS
  log "building the root with debootstrap (first run: minutes; cached afterwards)"
  rm -rf "$ROOT" "$ROOT.new"
  foreign=(--foreign)
  [ "$METHOD" != native ] || foreign=()
  debootstrap --arch=arm64 --variant=minbase --keyring="$KEYRING" --include="$PACKAGES" "${foreign[@]}" \
    "$SUITE" "$ROOT.new" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$CACHE/debootstrap.log"; echo "arm64: FAILED: debootstrap (log: $CACHE/debootstrap.log)"; exit 1; }
  # A build root, not a system: no fsync per file (emulated dpkg is slow enough), no docs or translations, and no
  # services started by package scripts.
  mkdir -p "$ROOT.new/etc/dpkg/dpkg.cfg.d"
  printf '%s\n' force-unsafe-io path-exclude=/usr/share/doc/* path-exclude=/usr/share/man/* \
    path-exclude=/usr/share/info/* path-exclude=/usr/share/locale/* >"$ROOT.new/etc/dpkg/dpkg.cfg.d/01-edge-classifier"
  printf '#!/bin/sh\nexit 101\n' >"$ROOT.new/usr/sbin/policy-rc.d"
  chmod 755 "$ROOT.new/usr/sbin/policy-rc.d"
  if [ "$METHOD" != native ]; then
    in_root bootstrap "$ROOT.new" /bin/true ||
      unavailable "the emulated root does not start (qemu-aarch64 $QEMU_VERSION via $METHOD)"
    run_child in_root bootstrap "$ROOT.new" /debootstrap/debootstrap --second-stage >>"$CACHE/debootstrap.log" 2>&1 ||
      { tail -20 "$CACHE/debootstrap.log"; echo "arm64: FAILED: debootstrap --second-stage (log: $CACHE/debootstrap.log)"; exit 1; }
  fi
  echo "$want_root" >"$ROOT.new/.edge-classifier-root"
  mv "$ROOT.new" "$ROOT"
  log "root built in $(elapsed "$t0")"
fi

# ---- the host's network settings, the --all extras, the checkout -------------------------------------------------
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
cp -L /etc/hosts "$ROOT/etc/hosts" 2>/dev/null || true
# pip in the root trusts what the host trusts (a CI proxy's own CA included).
for ca in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
  if [ -n "$ca" ] && [ -f "$ca" ]; then cp -L "$ca" "$ROOT/etc/ssl/certs/edge-classifier-host-ca.crt"; break; fi
done
if [ "$TESTS" = all ] && [ "$(cat "$ROOT/.edge-classifier-full" 2>/dev/null)" != "$FULL_PACKAGES" ]; then
  t0=$SECONDS
  log "installing into the root what the other runtime tests call: $FULL_PACKAGES"
  run_child in_root bootstrap "$ROOT" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends $FULL_PACKAGES" >>"$CACHE/apt-full.log" 2>&1 ||
    { tail -20 "$CACHE/apt-full.log"; echo "arm64: FAILED: apt-get install $FULL_PACKAGES (log: $CACHE/apt-full.log)"; exit 1; }
  echo "$FULL_PACKAGES" >"$ROOT/.edge-classifier-full"
  log "installed in $(elapsed "$t0")"
fi
rm -rf "$ROOT/work/main" "$ROOT/work/results"
mkdir -p "$ROOT/work/main"
if git -c safe.directory='*' -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # What git would commit: tracked files still present plus untracked ones that are not ignored (.venv, builds).
  (cd "$REPO" && git -c safe.directory='*' ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) |
    tar -xf - -C "$ROOT/work/main"
else
  tar -C "$REPO" --exclude=.git --exclude=.venv --exclude='*.egg-info' --exclude=__pycache__ -cf - . |
    tar -xf - -C "$ROOT/work/main"
fi
[ -d "$SHARED" ] || log "$SHARED is absent: the tests that need it skip (CI=true: fail)"

# ---- the tests ---------------------------------------------------------------------------------------------------
if [ "$TESTS" = prepare ]; then
  run_child in_root run "$ROOT" bash /work/main/scripts/arm64/in-root.sh ||
    { echo "arm64: FAILED: preparing the root's venv ($(elapsed))"; exit 1; }
  echo "arm64: prepared: the root and its venv are ready in $CACHE ($(elapsed))"
  exit 0
fi
rc=0
run_child in_root run "$ROOT" bash /work/main/scripts/arm64/in-root.sh "$@" || rc=$?
passed=0 failed=0 skipped=0
[ ! -f "$ROOT/work/results/counts" ] || read -r passed failed skipped <"$ROOT/work/results/counts"
for arg in "$@"; do case "$arg" in tests/* | ./tests/*) TESTS=selected ;; esac; done
where="Debian $SUITE arm64, $TESTS tests, $METHOD${QEMU_VERSION:+ qemu $QEMU_VERSION -cpu $QEMU_CPU}, $(elapsed)"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "arm64: $passed passed, $failed failed, $skipped skipped ($where); pytest exited with $rc"
  exit "$rc"
fi
echo "arm64: $passed passed, $failed failed, $skipped skipped ($where)"
exit "$rc"
