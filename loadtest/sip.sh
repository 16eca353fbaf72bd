#!/usr/bin/env bash
# Runs the SIP load of docs/PERFORMANCE.md ("SIP calls") against fresh release servers, with
# sipp (3.6, built with rtp_stream) as the calling trunk over loopback. Three phases, each
# with its own server and its baseline in the same run:
#
#   setup  call setup rate: short calls without RTP (INVITE/200/ACK, 1 s, BYE) at 5 calls/s
#          (baseline), then at each of RATES calls/s for STEP_SECS; INVITE->200 percentiles
#          from sipp's response times (-trace_rtt, whole milliseconds).
#   idle   memory per idle call: server RSS, then CALLS calls answered that send no RTP
#          (media timeout raised so hark keeps them), RSS again; the difference over CALLS.
#   media  concurrent media-only calls: 10 calls streaming the jfk clip (baseline), then CALLS
#          calls at RAMP calls/s each streaming it for MEDIA_SECS; every call's RTP figures
#          (received, lost, late) from GET /v1/sessions/{id} after the calls end, the live
#          cards' figures while all CALLS stream, hark_media_packets_total, the kernel's UDP
#          receive-buffer drops, and the CPU of hark, of sipp and of everything else.
#
# PHASES="setup idle media" (default: all three), CALLS=1000, RATES="50 100 200 400",
# STEP_SECS=20, RAMP=100, MEDIA_SECS=30, PORT=18091 (HTTP), SIP_PORT=15060, KEEP=1 keeps the
# work folder (sipp's logs and statistics). sipp runs from a temporary copy of loadtest/sip/
# with the fixture clip beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
ulimit -n "$(ulimit -Hn)"

phases=${PHASES:-setup idle media}
calls=${CALLS:-1000}
rates=${RATES:-50 100 200 400}
step_secs=${STEP_SECS:-20}
ramp=${RAMP:-100}
media_secs=${MEDIA_SECS:-30}
port=${PORT:-18091}
sip_port=${SIP_PORT:-15060}
clip=${CLIP:-/work/shared/fixtures/sip/jfk_ask_not_8k.ulaw}
token=loadtok
base="http://127.0.0.1:$port"
hz=$(getconf CLK_TCK)

work=$(mktemp -d)
cp loadtest/sip/*.xml "$work/"
cp "$clip" "$work/jfk.ulaw"
pid=
sipp_pid=
cap_pid=
cleanup() {
  [ -n "$cap_pid" ] && kill "$cap_pid" 2>/dev/null && wait "$cap_pid" 2>/dev/null
  [ -n "$sipp_pid" ] && kill "$sipp_pid" 2>/dev/null && wait "$sipp_pid" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "work folder: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# A fresh server with its own data folder; extra HARK_* settings as arguments.
start_server() {
  local data
  data=$(mktemp -d -p "$work" data.XXXX)
  env HARK_ADMIN_TOKEN=$token HARK_DATA_DIR="$data" HARK_HTTP_ADDR=127.0.0.1:$port HARK_LOG_LEVEL=warn \
    HARK_SIP_ADDR=127.0.0.1:$sip_port HARK_AUDIOSOCKET_ADDR= HARK_SPEECH_ENABLED=false \
    HARK_SIP_RTP_PORT_MIN=20000 HARK_SIP_RTP_PORT_MAX=59998 "$@" \
    target/release/hark serve >>"$work/hark.log" 2>&1 &
  pid=$!
  until curl -sf "$base/healthz" >/dev/null; do sleep 0.1; done
  sleep 2
}
stop_server() {
  kill "$pid"
  wait "$pid" || true
  pid=
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
udp_rcvbuf_errors() { awk '/^Udp:/ {n++; if (n == 2) print $6}' /proc/net/snmp; }
pct() { awk -v ticks="$1" -v secs="$2" -v hz="$hz" 'BEGIN {printf "%.0f %%", 100 * ticks / hz / secs}'; }
api() { curl -sf --max-time 20 -H "Authorization: Bearer $token" "$base$1"; }
metric() { curl -s "$base/metrics" | awk -v m="$1" '$1 == m {print $2; found = 1} END {if (!found) print "n/a"}'; }

# The wire capture of INVITE->200 (loadtest/sip_rtt.py) needs root for its packet socket.
capture=
[ "$(id -u)" = 0 ] && command -v python3 >/dev/null && capture=1

# sipp as the trunk, in the background (sipp_pid), and the capture (cap_pid): sipp NAME SCENARIO ARGS...
sipp_start() {
  local name=$1 scenario=$2
  shift 2
  if [ -n "$capture" ]; then
    python3 loadtest/sip_rtt.py "$sip_port" "$work/$name.wire" &
    cap_pid=$!
    sleep 0.5
  fi
  (cd "$work" && exec /usr/bin/time -f "%e %U %S" -o "$name.time" \
    sipp "127.0.0.1:$sip_port" -sf "$scenario" -i 127.0.0.1 -p 16060 -mi 127.0.0.1 -mp 16000 \
    -nostdin -trace_err -trace_rtt -rtt_freq 1 -trace_stat -stf "$name.stat.csv" -fd 1 "$@" \
    >"$work/$name.sipp.out" 2>&1) &
  sipp_pid=$!
  t_start=$(date +%s.%N) h_start=$(ticks "$pid") b_start=$(busy_ticks)
}
# sipp's process (sipp_pid is /usr/bin/time's).
sipp_proc() { pgrep -P "$sipp_pid" -x sipp; }
# Waits for sipp; its response times go to NAME.rtt.
sipp_wait() {
  local name=$1 rc=0
  wait "$sipp_pid" || rc=$?
  sipp_pid=
  cat "$work"/uac_*_rtt.csv 2>/dev/null | awk -F';' 'NR > 1 && $2 ~ /^[0-9.]+$/ {print $2}' >"$work/$name.rtt"
  rm -f "$work"/uac_*_rtt.csv
  if [ -n "$cap_pid" ]; then
    kill -TERM "$cap_pid"
    wait "$cap_pid" || true
    cap_pid=
  fi
  [ "$rc" = 0 ] || echo "  sipp exited $rc (see $name.sipp.out)" >&2
  # CPU over the sipp run, 100 % = one core: hark, sipp, and everything else on the machine.
  local wall hark_t busy_t
  wall=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
  hark_t=$(($(ticks "$pid") - h_start)) busy_t=$(($(busy_ticks) - b_start))
  run_cpu=$(tail -1 "$work/$name.time" | awk -v w="$wall" -v h="$hark_t" -v b="$busy_t" -v hz="$hz" \
    '{s = ($2 + $3) * hz; printf "CPU over %.0f s: hark %.0f %%, sipp %.0f %%, everything else %.0f %%", w, 100 * h / hz / w, 100 * s / hz / w, 100 * (b - h - s) / hz / w}')
}
# INVITE->200 of a sipp run: from the capture when there is one (microseconds), and from sipp.
invite_200() {
  if [ -s "$work/$1.wire" ]; then
    echo "INVITE->200 on the wire $(percentiles "$work/$1.wire"); sipp (4 ms ticks) $(percentiles "$work/$1.rtt")"
  else
    echo "INVITE->200 from sipp (4 ms ticks) $(percentiles "$work/$1.rtt")"
  fi
}
# Counts from sipp's last statistics line: successful failed retransmissions.
sipp_counts() {
  awk -F';' 'NR == 1 {for (i = 1; i <= NF; i++) col[$i] = i; next} {last = $0}
    END {split(last, v, ";"); print v[col["SuccessfulCall(C)"]], v[col["FailedCall(C)"]], v[col["Retransmissions(C)"]]}' \
    "$work/$1.stat.csv"
}
# p50 p90 p99 max (whole ms) and count of a file of numbers.
percentiles() {
  sort -n "$1" | awk '{v[NR] = $1} END {
    if (NR == 0) {print "no samples"; exit}
    n = split("0.5 0.9 0.99 1", q, " ")
    for (i = 1; i <= n; i++) {k = int(q[i] * NR); if (k < q[i] * NR) k++; if (k < 1) k = 1; r[i] = v[k]}
    printf "p50 %s, p90 %s, p99 %s, max %s ms (%d calls)\n", r[1], r[2], r[3], r[4], NR}'
}
# Waits until no call is live; the number still live after LIMIT seconds otherwise.
wait_calls_ended() {
  local limit=$1 live
  for _ in $(seq 1 $((limit * 2))); do
    live=$(api "/v1/sessions?state=live&limit=1000" | jq '[.[] | select(.channel == "voice")] | length') || live=?
    [ "$live" = 0 ] && return 0
    sleep 0.5
  done
  echo "  $live calls still live after ${limit} s" >&2
}
# RTP figures of the newest N ended calls, from GET /v1/sessions/{id} (call.streams[].stats).
call_stats() {
  local n=$1
  api "/v1/sessions?state=ended&limit=$n" | jq -r '.[].session_id' |
    awk -v base="$base" '{printf "url = \"%s/v1/sessions/%s\"\n", base, $1}' >"$work/urls"
  curl -sf --no-progress-meter --parallel --parallel-max 8 -H "Authorization: Bearer $token" -K "$work/urls" |
    jq -s -r '[.[] | .call.streams[0].stats] |
      "calls \(length), packets \(map(.packets) | add) (per call min \(map(.packets) | min), max \(map(.packets) | max)), " +
      "lost \(map(.lost) | add), late \(map(.late) | add), duplicates \(map(.duplicates) | add), foreign \(map(.foreign) | add); " +
      "calls with lost or late packets \(map(select(.lost + .late > 0)) | length); " +
      "jitter max \(map(.jitter_ms) | max * 100 | round / 100) ms"'
}

if [[ " $phases " == *" setup "* ]]; then
  echo "== call setup rate (short calls without RTP, 1 s each)"
  start_server
  for rate in 5 $rates; do
    secs=$step_secs
    [ "$rate" = 5 ] && secs=10
    n=$((rate * secs))
    sipp_start "setup-$rate" uac_quiet.xml -r "$rate" -m "$n" -d 1000 -timeout $((secs + 60)) -timeout_error
    sipp_wait "setup-$rate"
    read -r ok failed retrans < <(sipp_counts "setup-$rate")
    label="$rate calls/s"
    [ "$rate" = 5 ] && label="baseline 5 calls/s"
    echo "$label: $n calls, $ok ok, $failed failed, $retrans retransmissions; $(invite_200 "setup-$rate"); $run_cpu"
    sleep 2
  done
  echo "hark_sip_requests_total INVITE: $(metric 'hark_sip_requests_total{method="INVITE"}'), refused busy: $(metric 'hark_sip_refused_total{reason="busy"}')"
  stop_server
fi

if [[ " $phases " == *" idle "* ]]; then
  echo "== memory per idle call ($calls calls answered, no RTP)"
  idle_rate=200
  ramp_secs=$(((calls + idle_rate - 1) / idle_rate))
  hold=$((ramp_secs + 15))
  start_server HARK_SIP_MEDIA_TIMEOUT_SECS=600 HARK_SIP_MAX_CALLS=$((calls + 100))
  rss0=$(rss_kib "$pid")
  sipp_start idle uac_quiet.xml -r $idle_rate -l "$calls" -m "$calls" -d $((hold * 1000)) -timeout $((hold + 60)) -timeout_error
  sleep $((ramp_secs + 5))
  live=$(api "/v1/sessions?state=live&limit=1000" | jq '[.[] | select(.channel == "voice")] | length') || live=?
  rss1=$(rss_kib "$pid")
  sleep 5
  rss2=$(rss_kib "$pid")
  sipp_wait idle
  read -r ok failed retrans < <(sipp_counts idle)
  wait_calls_ended 30
  rss3=$(rss_kib "$pid")
  echo "RSS: $rss0 KiB before, $rss1 KiB with the calls up ($live live voice sessions listed, at most 1000), $rss2 KiB 5 s later, $rss3 KiB after they ended"
  echo "calls: $ok ok, $failed failed, $retrans retransmissions; $(invite_200 idle); $run_cpu"
  awk -v a="$rss0" -v b="$rss1" -v n="$calls" 'BEGIN {printf "per idle call: %.0f B = %.1f KiB\n", (b - a) * 1024 / n, (b - a) / n}'
  stop_server
fi

if [[ " $phases " == *" media "* ]]; then
  echo "== concurrent media-only calls ($calls calls, each streaming the jfk clip for $media_secs s)"
  start_server HARK_SIP_MAX_CALLS=$((calls + 100))
  # Baseline: 10 calls, 15 s of RTP each.
  sipp_start media-base uac_media.xml -r 10 -m 10 -d 15000 -timeout 60 -timeout_error
  sipp_wait media-base
  wait_calls_ended 30
  echo "baseline (10 calls, 15 s each): $(call_stats 10); $run_cpu"
  e0=$(udp_rcvbuf_errors)
  ramp_secs=$(((calls + ramp - 1) / ramp))
  sipp_start media uac_media.xml -r "$ramp" -l "$calls" -m "$calls" -d $((media_secs * 1000)) \
    -timeout $((ramp_secs + media_secs + 90)) -timeout_error
  sleep $((ramp_secs + 2))
  # Every call is up and streaming from here until the first one hangs up.
  window=$((media_secs - ramp_secs - 4))
  sp=$(sipp_proc)
  h0=$(ticks "$pid") p0=$(ticks "$sp") b0=$(busy_ticks) w0=$(udp_rcvbuf_errors)
  sleep "$window"
  h1=$(ticks "$pid") p1=$(ticks "$sp") b1=$(busy_ticks) w1=$(udp_rcvbuf_errors)
  rss=$(rss_kib "$pid")
  threads=$(ls "/proc/$pid/task" | wc -l)
  sipp_threads=$(ls "/proc/$sp/task" | wc -l)
  live=$(api "/v1/sessions?state=live&limit=1000" |
    jq -r '[.[] | select(.channel == "voice") | .streams[0]] |
      "\(length) live calls: packets \(map(.packets) | add), lost \(map(.lost) | add), late \(map(.late) | add), with lost or late \(map(select(.lost + .late > 0)) | length)"') ||
    live="live cards not read"
  sipp_wait media
  read -r ok failed retrans < <(sipp_counts media)
  wait_calls_ended 60
  e1=$(udp_rcvbuf_errors)
  echo "sipp: $ok ok, $failed failed, $retrans retransmissions; $(invite_200 media); whole run $run_cpu"
  echo "live cards, $window s into full load: $live"
  echo "after the calls (GET /v1/sessions/{id}, the newest $((calls < 1000 ? calls : 1000))): $(call_stats $((calls < 1000 ? calls : 1000)))"
  echo "hark_media_packets_total: received $(metric 'hark_media_packets_total{outcome="received"}'), lost $(metric 'hark_media_packets_total{outcome="lost"}'), late $(metric 'hark_media_packets_total{outcome="late"}')"
  echo "kernel UDP receive-buffer drops (Udp RcvbufErrors, whole machine): $((w1 - w0)) in the full-load window, $((e1 - e0)) over the whole phase"
  others=$((b1 - b0 - (h1 - h0) - (p1 - p0)))
  echo "CPU over the $window s full-load window (100 % = one core): hark $(pct $((h1 - h0)) "$window"), sipp $(pct $((p1 - p0)) "$window"), everything else $(pct "$others" "$window"); hark RSS $rss KiB, $threads threads; sipp $sipp_threads threads"
  stop_server
fi
