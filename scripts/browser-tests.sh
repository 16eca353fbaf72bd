#!/usr/bin/env bash
# Runs the real-browser end-to-end tests in Debian's Chromium, through playwright-core:
# tests/browser/chat.spec.mjs (the chat widget and the console's live board) and
# tests/browser/console.spec.mjs (the console's alerts, SLA clocks, history and call pages, an
# uploaded call and a call streamed by sipp; it needs the speech models that `make test` fetches)
# and tests/browser/reports.spec.mjs (the console's Reports tab: tiles, agents table, SVG charts,
# agent comparison and the print-to-PDF layout, over chats it makes; speech off).
# Called by `make test` after `cargo test`; safe to run again, and quick when everything is there.
#
# Installs what is missing on a fresh Debian machine: chromium (Debian's package; no browser is
# ever downloaded by npm or playwright), nodejs and npm, and the pinned npm packages of
# tests/browser (npm ci, only when node_modules is missing or the lockfile changed), and sipp
# (Debian's sip-tester) for the console spec's SIP call.
#
# Environment: HARK_BIN (default $CARGO_TARGET_DIR/debug/hark, else target/debug/hark; built with `cargo build --bin hark` when the
# default is missing), CHROMIUM_PATH (default /usr/bin/chromium), HARK_FIXTURES (default
# ../shared/fixtures), HARK_SPEECH_MODELS_DIR (default ./models). Arguments name the specs to
# run (default: all), e.g. `scripts/browser-tests.sh console`.
# Screenshots and hark's log land in artifacts/browser/.
set -euo pipefail

cd "$(dirname "$0")/.."
DIR=tests/browser
CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo

need_apt=()
if [ ! -x "$CHROMIUM_PATH" ]; then
  if [ "$CHROMIUM_PATH" != /usr/bin/chromium ]; then
    echo "browser tests: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable" >&2
    exit 1
  fi
  # Without recommends (they pull udev, mesa, printing); fonts so screenshots show text, DejaVu
  # for the Hebrew of the right-to-left check.
  need_apt+=(chromium fonts-liberation fonts-dejavu-core)
fi
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v sipp >/dev/null 2>&1 || need_apt+=(sip-tester)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "browser tests: installing ${need_apt[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi
export CHROMIUM_PATH

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "browser tests: Node.js $(node --version) is too old; 18 or newer is needed" >&2
  exit 1
fi

# npm ci only when node_modules is missing or package.json / package-lock.json changed since.
stamp="$DIR/node_modules/.hark-lock.sha256"
want=$(cat "$DIR/package.json" "$DIR/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "browser tests: npm ci in $DIR"
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi

# The binary `cargo test` built, wherever cargo's target directory is.
export HARK_BIN="${HARK_BIN:-${CARGO_TARGET_DIR:-target}/debug/hark}"
if [ ! -x "$HARK_BIN" ]; then
  echo "browser tests: $HARK_BIN is missing, building it"
  cargo build --bin hark
fi

specs=("$@")
[ ${#specs[@]} -gt 0 ] || specs=(chat console reports)
for spec in "${specs[@]}"; do
  echo "browser tests: $spec.spec.mjs"
  node "$DIR/$spec.spec.mjs"
done
