//! Twilio Media Streams (`<Start><Stream>` / `<Connect><Stream>`): JSON text frames, one event
//! each. `connected` opens, `start` names the call (`callSid`, `accountSid`, `streamSid`,
//! `tracks`, `customParameters`, `mediaFormat`: always `audio/x-mulaw`, 8000 Hz, one channel),
//! `media` carries 20 ms of base64 µ-law of one `track` (`inbound`: the caller, our customer;
//! `outbound`: what Twilio plays or bridges to the caller, our agent) with its `timestamp` in
//! milliseconds since the stream began, `dtmf` a key (`inbound_track`), `mark` a playback
//! marker, and `stop` the end of the stream. Numbers arrive as strings (`"chunk":"2"`).

use base64::Engine;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::{call_id, Event, Protocol};
use crate::ingest::call::{Party, Role};
use crate::media::codec::ulaw_to_linear;
use crate::ws::{self, Close};

/// The only format Twilio streams.
const ENCODING: &str = "audio/x-mulaw";
const RATE: u32 = 8_000;
/// Stream timestamps beyond this (48 h) are refused: no call lasts that long.
const MAX_TIMESTAMP_MS: u64 = 48 * 3600 * 1000;

#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Frame {
    Connected {},
    Start {
        start: Start,
    },
    Media {
        media: Media,
    },
    Dtmf {
        dtmf: Dtmf,
    },
    Mark {},
    Stop {},
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Start {
    call_sid: String,
    #[serde(default)]
    account_sid: Option<String>,
    #[serde(default)]
    tracks: Vec<String>,
    #[serde(default)]
    custom_parameters: Map<String, Value>,
    #[serde(default)]
    media_format: Option<MediaFormat>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaFormat {
    encoding: String,
    #[serde(deserialize_with = "number")]
    sample_rate: u64,
    #[serde(default = "one", deserialize_with = "number")]
    channels: u64,
}

fn one() -> u64 {
    1
}

#[derive(Deserialize)]
struct Media {
    #[serde(default)]
    track: Option<String>,
    #[serde(deserialize_with = "number")]
    timestamp: u64,
    payload: String,
}

#[derive(Deserialize)]
struct Dtmf {
    #[serde(default)]
    track: Option<String>,
    digit: String,
}

/// Twilio sends numbers as strings; a number is fine too.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        N(u64),
        S(String),
    }
    match N::deserialize(d)? {
        N::N(n) => Ok(n),
        N::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

fn role(track: Option<&str>) -> Result<Role, Close> {
    match track.unwrap_or("inbound") {
        "inbound" | "inbound_track" => Ok(Role::Customer),
        "outbound" | "outbound_track" => Ok(Role::Agent),
        other => Err(Close::new(ws::BAD_MESSAGE, format!("unknown track {other:?}"))),
    }
}

/// The pure core of one Twilio connection.
#[derive(Debug, Default)]
pub struct Twilio {
    started: bool,
    decoded: Vec<u8>,
}

impl Twilio {
    pub fn new() -> Twilio {
        Twilio::default()
    }

    fn start(&mut self, start: Start, out: &mut Vec<Event>) -> Result<(), Close> {
        if let Some(format) = &start.media_format {
            if format.encoding != ENCODING || format.sample_rate != u64::from(RATE) || format.channels != 1 {
                return Err(Close::new(
                    ws::BAD_MESSAGE,
                    format!(
                        "media format {} {} Hz × {} is not audio/x-mulaw 8000 Hz mono",
                        format.encoding, format.sample_rate, format.channels
                    ),
                ));
            }
        }
        let mut speakers = Vec::new();
        for track in if start.tracks.is_empty() { vec!["inbound".to_string()] } else { start.tracks } {
            let role = role(Some(&track))?;
            if !speakers.contains(&role) {
                speakers.push(role);
            }
        }
        speakers.sort_by_key(|r| *r != Role::Customer);
        let param = |key: &str| start.custom_parameters.get(key).and_then(Value::as_str).map(str::to_string);
        self.started = true;
        out.push(Event::Start(Box::new(super::StreamStart {
            call_id: call_id(&start.call_sid)?,
            from: Party { number: param("from"), ..Party::default() },
            to: Party { number: param("to"), ..Party::default() },
            trunk: start.account_sid,
            codec: "PCMU".into(),
            sample_rate: RATE,
            speakers,
            token: param("access_token"),
        })));
        Ok(())
    }

    fn media(&mut self, media: Media, out: &mut Vec<Event>) -> Result<(), Close> {
        if media.timestamp > MAX_TIMESTAMP_MS {
            return Err(Close::new(ws::BAD_MESSAGE, format!("timestamp {} ms is out of range", media.timestamp)));
        }
        let role = role(media.track.as_deref())?;
        self.decoded.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(media.payload.as_bytes(), &mut self.decoded)
            .map_err(|e| Close::new(ws::BAD_MESSAGE, format!("media payload is not base64: {e}")))?;
        let samples = self.decoded.iter().map(|&b| ulaw_to_linear(b)).collect();
        out.push(Event::Audio { role, at: media.timestamp * u64::from(RATE) / 1000, samples });
        Ok(())
    }
}

impl Protocol for Twilio {
    fn source(&self) -> &'static str {
        "twilio"
    }

    fn text(&mut self, text: &str, out: &mut Vec<Event>) -> Result<(), Close> {
        let frame: Frame =
            serde_json::from_str(text).map_err(|e| Close::new(ws::BAD_MESSAGE, format!("malformed event: {e}")))?;
        match frame {
            Frame::Connected {} | Frame::Mark {} | Frame::Other => Ok(()),
            Frame::Start { .. } if self.started => Err(Close::new(ws::BAD_MESSAGE, "a second start")),
            Frame::Start { start } => self.start(start, out),
            _ if !self.started => Err(Close::new(ws::BAD_MESSAGE, "expected start")),
            Frame::Media { media } => self.media(media, out),
            Frame::Dtmf { dtmf } => {
                if let Some(digit) = dtmf.digit.chars().next() {
                    out.push(Event::Dtmf { role: role(dtmf.track.as_deref())?, digit });
                }
                Ok(())
            }
            Frame::Stop {} => {
                out.push(Event::Stop);
                Ok(())
            }
        }
    }

    fn binary(&mut self, _: &[u8], _: &mut Vec<Event>) -> Result<(), Close> {
        Err(Close::new(ws::UNSUPPORTED_DATA, "Twilio streams send text frames only"))
    }

    /// Twilio sends `stop` before it closes; a close without one is a lost stream.
    fn closed(&mut self, _: &mut Vec<Event>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::stream::StreamStart;

    const START: &str = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1",
        "start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["outbound","inbound"],
                 "customParameters":{"from":"+15550001","access_token":"tok"},
                 "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;

    fn feed(p: &mut Twilio, text: &str) -> Result<Vec<Event>, Close> {
        let mut out = Vec::new();
        p.text(text, &mut out).map(|()| out)
    }

    #[test]
    fn a_whole_stream() {
        let mut p = Twilio::new();
        assert!(feed(&mut p, r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).unwrap().is_empty());
        let out = feed(&mut p, START).unwrap();
        let Event::Start(start) = &out[0] else { panic!() };
        let StreamStart { call_id, speakers, token, trunk, from, .. } = &**start;
        assert_eq!(call_id, "CA1");
        assert_eq!(speakers, &vec![Role::Customer, Role::Agent], "customer first, whatever the order of tracks");
        assert_eq!((token.as_deref(), trunk.as_deref()), (Some("tok"), Some("AC1")));
        assert_eq!(from.number.as_deref(), Some("+15550001"));
        // 0xff and 0x80 are µ-law 0 and 32124; "/4A=" is base64 of ff 80.
        let out = feed(
            &mut p,
            r#"{"event":"media","sequenceNumber":"3","media":{"track":"outbound","chunk":"2","timestamp":"20","payload":"/4A="},"streamSid":"MZ1"}"#,
        )
        .unwrap();
        assert_eq!(out, vec![Event::Audio { role: Role::Agent, at: 160, samples: vec![0, 32_124] }]);
        let out = feed(&mut p, r#"{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"5"}}"#).unwrap();
        assert_eq!(out, vec![Event::Dtmf { role: Role::Customer, digit: '5' }]);
        assert!(feed(&mut p, r#"{"event":"mark","mark":{"name":"x"}}"#).unwrap().is_empty());
        assert!(feed(&mut p, r#"{"event":"somethingNew"}"#).unwrap().is_empty(), "unknown events are ignored");
        assert_eq!(feed(&mut p, r#"{"event":"stop","stop":{"callSid":"CA1"}}"#).unwrap(), vec![Event::Stop]);
    }

    #[test]
    fn refusals() {
        let media = r#"{"event":"media","media":{"track":"inbound","timestamp":"0","payload":"AAAA"}}"#;
        let mut p = Twilio::new();
        assert_eq!(feed(&mut p, media).unwrap_err().reason, "expected start");
        assert!(feed(&mut p, "{").unwrap_err().reason.starts_with("malformed event"));
        assert!(feed(&mut p, r#"{"event":"start","start":{}}"#).is_err(), "start without a callSid");
        let wrong = START.replace("audio/x-mulaw", "audio/x-alaw");
        assert!(feed(&mut p, &wrong).unwrap_err().reason.contains("media format"));
        feed(&mut p, START).unwrap();
        assert_eq!(feed(&mut p, START).unwrap_err().reason, "a second start");
        for (bad, why) in [
            (media.replace("AAAA", "!!"), "base64"),
            (media.replace("inbound", "sideways"), "unknown track"),
            (media.replace(r#""0""#, r#""-3""#), "malformed"),
            (media.replace(r#""0""#, "999999999999"), "out of range"),
        ] {
            let close = feed(&mut p, &bad).unwrap_err();
            assert_eq!(close.code, ws::BAD_MESSAGE);
            assert!(close.reason.contains(why), "{bad}: {}", close.reason);
        }
        assert_eq!(p.binary(&[1], &mut Vec::new()).unwrap_err().code, ws::UNSUPPORTED_DATA);
    }
}
