//! Prometheus metrics: the names every stage records under, and the recorder whose text the
//! `/metrics` route renders (on the axum router; no listener of its own).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Gauge: live sessions, by `channel`.
pub const LIVE_SESSIONS: &str = "hark_live_sessions";
/// Counter: log entries appended, by `channel` and author `role`.
pub const MESSAGES: &str = "hark_messages_total";
/// Counter: sessions ended, by `channel` and `reason`.
pub const SESSIONS_ENDED: &str = "hark_sessions_ended_total";
pub const SESSIONS_FINALIZED: &str = "hark_sessions_finalized_total";
/// Gauge: open WebSocket connections, by `socket` (chat, supervise).
pub const SOCKETS: &str = "hark_ws_connections";
/// Counter: WebSocket closes hark initiated, by `socket` and close `code`.
pub const SOCKET_CLOSES: &str = "hark_ws_closed_total";
/// Counter: take-overs, by `outcome` (taken, refused).
pub const TAKEOVERS: &str = "hark_takeovers_total";
/// Histogram: seconds from a log entry's append to its hand-off to a subscriber's socket.
pub const FANOUT_SECONDS: &str = "hark_fanout_latency_seconds";
/// Counter: bot replies, by `bot` (faq, http) and `outcome`.
pub const BOT_REPLIES: &str = "hark_bot_replies_total";
/// Counter: failed database commits (each is retried).
pub const STORE_ERRORS: &str = "hark_store_errors_total";
/// Histogram: seconds per database commit of a write batch.
pub const STORE_COMMIT_SECONDS: &str = "hark_store_commit_seconds";
/// Counter: calls started, by `source` (sip, siprec, twilio, …).
pub const CALLS: &str = "hark_calls_total";
/// Counter: audio frames the speech stage was too slow to take (dropped; recordings keep them).
pub const SPEECH_FRAMES_DROPPED: &str = "hark_speech_frames_dropped_total";
/// Gauge: finished calls whose recordings wait to be transcoded to Ogg Opus.
pub const RECORDING_TRANSCODE_QUEUE: &str = "hark_recording_transcode_queue";
/// Counter: partial transcripts dropped because newer audio or a final made them stale, or the
/// queue was full.
pub const ASR_PARTIALS_DROPPED: &str = "hark_asr_partials_dropped_total";
/// Counter: alerts raised by the rules stage, by `kind` and `severity`.
pub const ALERTS: &str = "hark_alerts_total";
/// Counter: SLA clock changes, by `metric` (first_response, next_response, resolution) and
/// `status` (warning, breached, hit, cancelled).
pub const SLA_CHANGES: &str = "hark_sla_changes_total";
/// Counter: rules webhooks (alert webhook, automation webhook actions) given up after retries.
pub const RULES_WEBHOOK_FAILURES: &str = "hark_rules_webhook_failures_total";
/// Gauge: utterances waiting for a Whisper worker.
pub const ASR_QUEUE: &str = "hark_asr_queue";
/// Counter: decodes no longer wanted (a tentative final the speaker talked past), label
/// `decoded` (`false`: skipped before it ran, `true`: run for nothing).
pub const ASR_ABANDONED: &str = "hark_asr_abandoned_total";
/// Histogram: Whisper decode time per utterance, by `kind` (partial, final).
pub const ASR_DECODE_SECONDS: &str = "hark_asr_decode_seconds";
/// Counter: media packets of finished calls' streams, by `outcome` (received, lost, late,
/// duplicate).
pub const MEDIA_PACKETS: &str = "hark_media_packets_total";
/// Histogram: interarrival jitter of finished calls' streams (RFC 3550), in seconds.
pub const MEDIA_JITTER_SECONDS: &str = "hark_media_jitter_seconds";
/// Counter: SIP requests received, by `method`.
pub const SIP_REQUESTS: &str = "hark_sip_requests_total";
/// Counter: SIP requests refused by policy, by `reason` (allowlist, busy).
pub const SIP_REFUSED: &str = "hark_sip_refused_total";
/// Counter: RTP packets from a source other than the stream's latched one (dropped).
pub const RTP_FOREIGN: &str = "hark_rtp_foreign_packets_total";
/// Counter: datagrams on an RTP port that are not RTP.
pub const RTP_MALFORMED: &str = "hark_rtp_malformed_packets_total";
/// Counter: frames received on streaming-ingest connections, by `protocol` (twilio, jambonz,
/// audio_fork, audiosocket).
pub const STREAM_FRAMES: &str = "hark_stream_frames_total";
/// Counter: bytes of those frames, by `protocol`.
pub const STREAM_BYTES: &str = "hark_stream_bytes_total";
/// Counter: streaming-ingest connections refused or closed for bad input, by `protocol`.
pub const STREAM_ERRORS: &str = "hark_stream_errors_total";
/// Counter: streamed calls continued by a reconnect within the grace, by `protocol`.
pub const STREAM_RESUMES: &str = "hark_stream_resumes_total";
/// Counter: HTTP requests refused for authentication, by `reason`.
pub const AUTH_REFUSALS: &str = "hark_auth_refusals_total";
/// Counter: recording folders (one per session) removed by retention.
pub const RECORDINGS_REMOVED: &str = "hark_recordings_removed_total";
/// Counter: recordings whose transcoding to Ogg Opus failed (the WAV is kept).
pub const RECORDING_TRANSCODE_FAILURES: &str = "hark_recording_transcode_failures_total";

/// Counter: attempts of finished-session webhooks, by `result` (delivered, retried, failed:
/// given up or the endpoint gone).
pub const WEBHOOK_DELIVERIES: &str = "hark_webhook_deliveries_total";
/// Gauge: webhook deliveries waiting in the outbox (all tenants).
pub const WEBHOOKS_PENDING: &str = "hark_webhook_deliveries_pending";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder once and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(LIVE_SESSIONS, "Live sessions by channel");
    describe_counter!(MESSAGES, "Log entries appended, by channel and author role");
    describe_counter!(SESSIONS_ENDED, "Sessions ended, by channel and reason");
    describe_counter!(SESSIONS_FINALIZED, "Ended sessions finalized (analysed, indexed, handed on), by channel");
    describe_gauge!(SOCKETS, "Open WebSocket connections by socket");
    describe_counter!(SOCKET_CLOSES, "WebSocket closes initiated by hark, by socket and close code");
    describe_counter!(TAKEOVERS, "Supervisor take-overs by outcome");
    describe_histogram!(FANOUT_SECONDS, Unit::Seconds, "Append-to-socket latency of log entries");
    describe_counter!(BOT_REPLIES, "Bot replies by bot and outcome");
    describe_counter!(STORE_ERRORS, "Failed database commits (retried)");
    describe_histogram!(STORE_COMMIT_SECONDS, Unit::Seconds, "Database commit time per write batch");
    describe_counter!(CALLS, "Calls started, by source");
    describe_counter!(SPEECH_FRAMES_DROPPED, "Audio frames dropped because the speech stage fell behind");
    describe_gauge!(RECORDING_TRANSCODE_QUEUE, "Finished calls whose recordings wait to be transcoded");
    describe_counter!(ASR_PARTIALS_DROPPED, "Partial transcripts dropped (stale or queue full)");
    describe_counter!(ALERTS, "Alerts raised by the rules stage, by kind and severity");
    describe_counter!(SLA_CHANGES, "SLA clock changes, by metric and status");
    describe_counter!(RULES_WEBHOOK_FAILURES, "Rules webhooks given up after their retries");
    describe_gauge!(ASR_QUEUE, "Utterances waiting for a Whisper worker");
    describe_counter!(ASR_ABANDONED, "Decodes no longer wanted when their turn came or they ended, by decoded");
    describe_histogram!(ASR_DECODE_SECONDS, Unit::Seconds, "Whisper decode time per utterance, by kind");
    describe_counter!(MEDIA_PACKETS, "Media packets of finished calls' streams, by outcome");
    describe_histogram!(MEDIA_JITTER_SECONDS, Unit::Seconds, "Interarrival jitter of finished calls' streams");
    describe_counter!(SIP_REQUESTS, "SIP requests received, by method");
    describe_counter!(SIP_REFUSED, "SIP requests refused by policy, by reason");
    describe_counter!(RTP_FOREIGN, "RTP packets from an unlatched source, dropped");
    describe_counter!(RTP_MALFORMED, "Datagrams on RTP ports that are not RTP");
    describe_counter!(STREAM_FRAMES, "Frames received on streaming-ingest connections, by protocol");
    describe_counter!(STREAM_BYTES, "Bytes received on streaming-ingest connections, by protocol");
    describe_counter!(STREAM_ERRORS, "Streaming-ingest connections refused or closed for bad input, by protocol");
    describe_counter!(STREAM_RESUMES, "Streamed calls continued by a reconnect, by protocol");
    describe_counter!(AUTH_REFUSALS, "Requests refused for authentication, by reason");
    describe_counter!(RECORDINGS_REMOVED, "Recording folders (one per session) removed by retention");
    describe_counter!(RECORDING_TRANSCODE_FAILURES, "Recordings not transcoded to Ogg Opus (WAV kept)");
}
