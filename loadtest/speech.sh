#!/usr/bin/env bash
# Runs the speech load of docs/PERFORMANCE.md ("Speech") against fresh release servers: for
# each N in CALLS, a new `hark serve` (default settings: 2 Whisper workers × 1 thread, tiny.en)
# and `hark-speech-loadtest --calls N`: N two-party calls as Twilio Media Streams in real time,
# SECS seconds each, watched by one supervisor; N = 1 is the baseline. Prints a table at the end.
#
# CALLS="1 4 8 12 16 20 24" (default), SECS=60, PORT=18092, OUT=folder for the JSON and logs
# (default: a temporary one, kept), extra arguments go to hark-speech-loadtest. HARK_* settings
# in the environment reach the server (e.g. HARK_SPEECH_ASR_WORKERS=1).
# CARGO="nice -n 19 cargo" builds at low priority; BIN=folder runs the hark and
# hark-speech-loadtest found there instead of building (another build, to compare in the same
# window). Needs the models (`make models`) and jq.
# About 90 s per N.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release}
[ -n "${BIN:-}" ] || ${CARGO:-cargo} build --release --bins
ulimit -n "$(ulimit -Hn)"

calls=${CALLS:-1 4 8 12 16 20 24}
secs=${SECS:-60}
port=${PORT:-18092}
out=${OUT:-$(mktemp -d /tmp/hark-speech-load.XXXX)}
mkdir -p "$out"
token=loadtok
pid=
data=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$data" ] && rm -rf "$data"
  echo "results: $out" >&2
}
trap cleanup EXIT

machine() {
  echo "$(date -u +%FT%TZ) $(uptime | sed 's/.*load/load/')"
  top -b -n1 -o %CPU | awk 'NR > 7 && $9 + 0 >= 5 {printf "  %s%% nice %s %s\n", $9, $4, $12}' | head -8
}

echo "== machine before: $(nproc) cores"
machine | tee "$out/machine-before.txt"
for n in $calls; do
  data=$(mktemp -d)
  env HARK_ADMIN_TOKEN=$token HARK_DATA_DIR="$data" HARK_HTTP_ADDR=127.0.0.1:$port HARK_LOG_LEVEL=warn \
    HARK_SIP_ADDR= HARK_AUDIOSOCKET_ADDR= \
    "$bin/hark" serve >>"$out/hark-$n.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "hark did not start, see $out/hark-$n.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "== $n calls ($(machine | head -1))"
  "$bin/hark-speech-loadtest" --url "ws://127.0.0.1:$port" --token $token --server-pid "$pid" \
    --calls "$n" --secs "$secs" --json "$out/calls-$n.json" "$@" | tee "$out/calls-$n.txt"
  curl -s "http://127.0.0.1:$port/metrics" | grep -E '^hark_(asr|speech)' >"$out/metrics-$n.txt" || true
  kill "$pid"
  wait "$pid" || true
  pid=
  rm -rf "$data"
  data=
  machine | tail -n +2 >"$out/machine-after-$n.txt"
done
echo "== machine after"
machine | tee "$out/machine-after.txt"

echo
echo "| calls | finals / expected | end_ms → final p50 / p95 / max (ms) | full load p50 / p95 | turn end → final p50 / p95 | partials, age p50 / p95 (ms) | frames dropped | partials dropped | final decode mean (ms) | Whisper busy | queue max | server CPU (full load) | other processes' CPU | p95 vs N=1 | p95 ≤ 1.5 s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
base=
for n in $calls; do
  f="$out/calls-$n.json"
  [ -s "$f" ] || continue
  p95=$(jq '.latency_full_load.p95_ms // .latency.p95_ms' "$f")
  [ -n "$base" ] || base=$p95
  jq -r --arg base "$base" '
    def r: if . == null then "-" else (. * 1 | round | tostring) end;
    def pc: if . == null then "-" else ((. * 100 | round | tostring) + " %") end;
    (.latency_full_load.p95_ms // .latency.p95_ms) as $p95 |
    (.cpu.full_load // .cpu.whole_run) as $cpu |
    "| \(.args.calls) | \(.finals.received) / \(.finals.expected) | \(.latency.p50_ms | r) / \(.latency.p95_ms | r) / \(.latency.max_ms | r) | \(.latency_full_load.p50_ms | r) / \(.latency_full_load.p95_ms | r) | \(.latency_from_turn_end.p50_ms | r) / \(.latency_from_turn_end.p95_ms | r) | \(.partials.received), \(.partials.age.p50_ms | r) / \(.partials.age.p95_ms | r) | \(.server_drops.speech_frames) | \(.server_drops.asr_partials) | \(.whisper.final_decode_mean_s * 1000 | r) | \(.whisper.workers_busy * 100 | round / 100) | \(.whisper.queue_max) | \($cpu.server | pc) | \(if $cpu.machine == null then null else ([$cpu.machine - $cpu.server - $cpu.generator, 0] | max) end | pc) | ×\($p95 / ($base | tonumber) * 100 | round / 100) | \(if .met then "yes" else "no" end) |"' "$f"
done
