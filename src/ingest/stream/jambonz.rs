//! jambonz `listen` (and `dial` with a nested `listen`): a WebSocket with the subprotocol
//! `audio.jambonz.org`. The first frame is text, a JSON object of the call's attributes
//! (`callSid`, `from`, `to`, `direction`, `accountSid`, … plus `sampleRate` and `mixType`); every
//! later frame is binary, 16-bit little-endian PCM at `sampleRate`. With `mixType` `stereo`
//! the two channels are interleaved, the caller first (channel 0: the customer) and the
//! called party second (channel 1: the agent), as jambonz's `mod_audio_fork` mixes them.
//! With `passDtmf` jambonz also sends `{"event":"dtmf","dtmf":"5",…}` text frames. jambonz
//! closes the socket (with a close frame) when `listen` ends: that is the explicit stop.

use super::{Dialect, L16Stream, StreamQuery};

pub const DIALECT: Dialect = Dialect {
    source: "jambonz",
    subprotocol: "audio.jambonz.org",
    call_id_keys: &["callSid"],
    trunk_keys: &["accountSid", "originatingSipTrunkName", "originatingSipIp"],
};

/// The pure core of one jambonz connection.
pub fn protocol(query: StreamQuery) -> L16Stream {
    L16Stream::new(&DIALECT, query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::call::Role;
    use crate::ingest::stream::{Event, Protocol};

    #[test]
    fn metadata_then_stereo_audio_then_close() {
        let mut p = protocol(StreamQuery::default());
        let mut out = Vec::new();
        assert!(p.binary(&[0, 0], &mut out).is_err(), "audio before metadata");
        p.text(r#"{"callSid":"js-1","sampleRate":8000,"mixType":"stereo","from":"+1555"}"#, &mut out).unwrap();
        let Event::Start(start) = &out[0] else { panic!("start first") };
        assert_eq!(start.speakers, vec![Role::Customer, Role::Agent]);
        out.clear();
        p.binary(&[1, 0, 2, 0, 3, 0, 4, 0], &mut out).unwrap();
        assert_eq!(out[0], Event::Audio { role: Role::Customer, at: 0, samples: vec![1, 3] });
        assert_eq!(out[1], Event::Audio { role: Role::Agent, at: 0, samples: vec![2, 4] });
        out.clear();
        p.text(r#"{"event":"dtmf","dtmf":"7","duration":"1600"}"#, &mut out).unwrap();
        p.text("not json: ignored", &mut out).unwrap();
        assert_eq!(out, vec![Event::Dtmf { role: Role::Customer, digit: '7' }]);
        out.clear();
        p.closed(&mut out);
        assert_eq!(out, vec![Event::Stop]);
    }
}
