//! FreeSWITCH `mod_audio_fork` (`uuid_audio_fork <uuid> start <url> <mix> <rate> <metadata>`):
//! a WebSocket with the subprotocol `audiostream.drachtio.org`. The first frame is the
//! `metadata` argument as text, then binary frames of 16-bit little-endian PCM, one channel
//! (`mono`: the caller; `mixed`: both parties in one channel) or two (`stereo`: the caller in
//! channel 0, the callee in channel 1). The metadata is whatever the dialplan passes, so hark
//! reads the call id from `callSid`, `uuid`, `callId`, `call_id` or `callid`, the rate from
//! `sampleRate` (`8000`, `"16k"`) and the mix from `mixType`, each falling back to the URL's
//! `call_id`, `sample_rate` and `mix_type` query parameters (8000 Hz mono without either).
//! `uuid_audio_fork … stop` closes the socket with a close frame: the explicit stop.

use super::{Dialect, L16Stream, StreamQuery};

pub const DIALECT: Dialect = Dialect {
    source: "audio_fork",
    subprotocol: "audiostream.drachtio.org",
    call_id_keys: &["callSid", "uuid", "callId", "call_id", "callid"],
    trunk_keys: &["account", "trunk"],
};

/// The pure core of one audio_fork connection.
pub fn protocol(query: StreamQuery) -> L16Stream {
    L16Stream::new(&DIALECT, query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::call::Role;
    use crate::ingest::stream::{Event, Protocol};

    #[test]
    fn free_form_metadata_with_the_query_as_fallback() {
        let query =
            StreamQuery { sample_rate: Some("16000".into()), mix_type: Some("mono".into()), ..Default::default() };
        let mut p = protocol(query);
        let mut out = Vec::new();
        p.text(r#"{"uuid":"fs-1","caller":"1000","callee":"1002"}"#, &mut out).unwrap();
        let Event::Start(start) = &out[0] else { panic!("start first") };
        assert_eq!((start.call_id.as_str(), start.sample_rate), ("fs-1", 16_000));
        assert_eq!(start.to.number.as_deref(), Some("1002"));
        out.clear();
        p.binary(&(-5i16).to_le_bytes(), &mut out).unwrap();
        assert_eq!(out, vec![Event::Audio { role: Role::Customer, at: 0, samples: vec![-5] }]);
        let mut p = protocol(StreamQuery::default());
        let close = p.text(r#"{"caller":"1000"}"#, &mut out).unwrap_err();
        assert!(close.reason.contains("no call id"), "{}", close.reason);
    }
}
