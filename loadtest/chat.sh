#!/usr/bin/env bash
# Runs the chat load of docs/PERFORMANCE.md against a fresh release server: 10,000 idle widget
# sockets, 2,000 visitor messages/s over 500 active sockets, two watching supervisors, with the
# low-rate baseline in the same run. Extra arguments go to hark-loadtest (e.g. --json run.json).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
ulimit -n "$(ulimit -Hn)"
data=$(mktemp -d)
port=${PORT:-18090}
HARK_ADMIN_TOKEN=loadtok HARK_DATA_DIR="$data" HARK_HTTP_ADDR=127.0.0.1:$port HARK_LOG_LEVEL=warn \
  HARK_SIP_ADDR= HARK_AUDIOSOCKET_ADDR= \
  target/release/hark serve &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.1; done
target/release/hark-loadtest --url "ws://127.0.0.1:$port" --token loadtok --server-pid $pid \
  --idle 10000 --active 500 --rate 2000 --supervisors 2 --duration 60 --baseline-secs 20 "$@"
curl -s "http://127.0.0.1:$port/metrics" | grep '^hark_store_commit_seconds' || true
