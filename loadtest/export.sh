#!/usr/bin/env bash
# The CSV export's memory (docs/PERFORMANCE.md "CSV export"): for each N in SESSIONS, a fresh
# release `hark serve` on SQLite whose database holds N ended chat sessions (inserted directly
# with python3's sqlite3 after hark created the schema), then `GET /v1/sessions/export.csv` of all
# of them; prints the rows, bytes and time of the export and the server's resident set before it
# and at its peak (VmHWM). The smallest N is the baseline.
#
# SESSIONS="1000 100000" (default), PORT=18093. CARGO="nice -n 19 cargo" builds at low priority.
set -euo pipefail
cd "$(dirname "$0")/.."
${CARGO:-cargo} build --release --bin hark
port=${PORT:-18093}
token=exporttok
pid=
data=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$data" ] && rm -rf "$data"
  return 0
}
trap cleanup EXIT

start() {
  env HARK_ADMIN_TOKEN=$token HARK_DATA_DIR="$data" HARK_HTTP_ADDR=127.0.0.1:$port HARK_LOG_LEVEL=warn \
    HARK_SIP_ADDR= HARK_AUDIOSOCKET_ADDR= HARK_SPEECH_ENABLED=false target/release/hark serve &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "hark did not start" >&2; exit 1; }
    sleep 0.2
  done
}

stop() {
  kill "$pid"
  wait "$pid" || true
  pid=
}

kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }

printf '%10s %10s %12s %8s %14s %14s\n' sessions rows bytes ms "RSS before" "RSS peak"
for n in ${SESSIONS:-1000 100000}; do
  data=$(mktemp -d)
  start
  stop
  python3 - "$data/hark.db" "$n" <<'EOF'
import sqlite3, sys, uuid
db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db)
t0 = 1_790_000_000_000
rows = ((str(uuid.uuid4()), "default", "demo", "chat", "ended", t0 + i * 60_000, t0 + i * 60_000 + 240_000,
         "visitor_left", 6, f"Thanks, order {i} is on its way", t0 + i * 60_000 + 230_000, "DE", "mobile",
         '{"kind":"bot"}', 0.25, '["refund"]', 240_000, t0 + i * 60_000 + 241_000) for i in range(n))
# Finalized already (duration, finalized_at), as every finished session is a moment after it ends.
con.executemany("INSERT INTO sessions (id, tenant, site, channel, state, started_at, ended_at, end_reason, "
                "message_count, last_message, last_message_at, country, device, holder, sentiment, tags, "
                "duration_ms, finalized_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
con.commit()
EOF
  start
  before=$(kib VmRSS)
  started=$(date +%s%N)
  bytes=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/sessions/export.csv" | tee "$data/out.csv" | wc -c)
  ms=$((($(date +%s%N) - started) / 1000000))
  peak=$(kib VmHWM)
  rows=$(($(wc -l <"$data/out.csv") - 1))
  printf '%10s %10s %12s %8s %11s KiB %11s KiB\n' "$n" "$rows" "$bytes" "$ms" "$before" "$peak"
  stop
  rm -rf "$data"
  data=
done
