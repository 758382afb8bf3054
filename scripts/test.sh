#!/usr/bin/env bash
# The whole test suite, from a fresh machine: format, lints, unit, integration and end-to-end
# tests. Installs what it needs and stops at the first failure, loudly.
#
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says how long the run has taken so far, so a slow phase shows in CI's log.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo is not installed (https://rustup.rs)"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
# Bundled C code (zstd, among others) builds with a C toolchain; make sure one is there.
if ! command -v cc >/dev/null; then
  step "installing a C toolchain"
  apt-get update -qq && apt-get install -y -qq build-essential
fi

# The fault suite (tests/faults) mounts real filesystems: a loop-mounted ext4 image to fill up,
# a tmpfs, and a FUSE filesystem that forgets unsynced writes at a power cut. That takes root,
# /dev/fuse, loop devices and the tools below; without them it fails, so say so now.
[ "$(id -u)" = 0 ] || fail "the fault suite mounts filesystems: run as root (CI does)"
[ -e /dev/fuse ] || fail "no /dev/fuse: the power-cut test needs FUSE (modprobe fuse)"
[ -e /dev/loop-control ] || fail "no /dev/loop-control: the disk-full tests need loop devices"
if ! command -v mkfs.ext4 >/dev/null || ! command -v fallocate >/dev/null; then
  step "installing e2fsprogs and util-linux (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq e2fsprogs util-linux >/dev/null \
    || fail "could not install e2fsprogs and util-linux"
fi

# The TLS tests (tests/tls.rs) make their certificates with openssl and check them with curl, as
# an operator would.
if ! command -v openssl >/dev/null || ! command -v curl >/dev/null; then
  step "installing openssl and curl (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl curl >/dev/null \
    || fail "could not install openssl and curl"
fi

# A run builds each crate once: incremental state would only fill the disk (tens of GB here).
export CARGO_INCREMENTAL=0

# Redis and the MongoDB, Kafka and Elasticsearch stand-ins, stopped again when this script exits.
source scripts/test-services.sh

# The web UI's Chromium tests (tests/web_ui.rs): Node.js, the locked npm packages
# (playwright-core, and the libraries the UI vendors) and Debian's Chromium.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  step "installing Node.js and npm (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null \
    || fail "could not install nodejs and npm"
fi
if [ ! -x /usr/bin/chromium ]; then
  step "installing chromium (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || fail "could not install chromium"
fi
step "npm ci in api/web (from package-lock.json)"
(cd api/web && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in api/web failed"
(cd api/web && node vendor.mjs --check) \
  || fail "api/web/static/vendor differs from what package-lock.json installs: run npm run vendor there"
export UI_SCREENSHOTS="$(pwd)/target/ui-screenshots"

step "cargo fmt --check"
cargo fmt --all -- --check || fail "code is not formatted: run cargo fmt --all"

# Clippy and the test build in one compile. `cargo clippy` is `cargo check` with clippy-driver as
# the rustc of the workspace's own crates; a separate `cargo clippy` would check all ~450
# dependencies a second time (over nine minutes of a cold run on two cores). Here the same
# driver compiles the workspace's crates for the tests and lints them as it goes: exactly
# `cargo clippy --workspace --all-targets`, plus code. The lint levels (warnings and clippy's
# default groups are errors, no unsafe code) are the workspace's own, in Cargo.toml.
CLIPPY_DRIVER="$(rustc --print sysroot)/bin/clippy-driver"
[ -x "$CLIPPY_DRIVER" ] || fail "no clippy-driver at $CLIPPY_DRIVER (rustup component add clippy)"
export RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER"

step "cargo clippy and build (all targets, warnings are errors)"
cargo test --workspace --all-targets --locked --no-run
step "cargo test (unit, integration, end to end against the real binary, the web UI in Chromium)"
cargo test --workspace --locked --no-fail-fast

step "all tests passed"
echo "screenshots of every page of the web UI: $UI_SCREENSHOTS"
