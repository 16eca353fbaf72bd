//! SIPREC (RFC 7866): a recording INVITE carries a `multipart/mixed` body with the SDP (one
//! audio m-line per participant, named by `a=label`) and the recording metadata
//! (`application/rs-metadata+xml`, RFC 7865) saying who sends which stream.
//!
//! Speakers: the stream of the first m-line is the customer (the calling side, as SBCs order
//! them), the second the agent; names and numbers come from the metadata's participants.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::ingest::call::{Party, Role};

use super::sdp::MediaOffer;

/// Largest multipart body accepted.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiprecError {
    #[error("multipart body without a boundary")]
    NoBoundary,
    #[error("multipart body over {MAX_BODY} bytes")]
    TooLarge,
    #[error("multipart body without an SDP part")]
    NoSdp,
}

/// The parts hark uses of a SIPREC body.
#[derive(Debug, Default)]
pub struct Parts {
    pub sdp: Vec<u8>,
    pub metadata: Option<Metadata>,
}

/// The participants of the recording metadata, and which stream label each one sends.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// (participant id, party).
    pub participants: Vec<(String, Party)>,
    /// (stream id, label).
    pub streams: Vec<(String, String)>,
    /// (participant id, stream id it sends).
    pub sends: Vec<(String, String)>,
}

/// Splits a `multipart/mixed` body (RFC 2046) into its SDP and metadata parts.
pub fn split(content_type: &str, body: &[u8]) -> Result<Parts, SiprecError> {
    if body.len() > MAX_BODY {
        return Err(SiprecError::TooLarge);
    }
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
        .ok_or(SiprecError::NoBoundary)?;
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let mut parts = Parts::default();
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.trim_start_matches(['\r', '\n']);
        let (headers, content) = part.split_once("\r\n\r\n").or_else(|| part.split_once("\n\n")).unwrap_or(("", part));
        let content = content.trim_end_matches(['\r', '\n']);
        let kind = headers
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if kind.starts_with("application/sdp") {
            parts.sdp = content.as_bytes().to_vec();
        } else if kind.starts_with("application/rs-metadata") {
            parts.metadata = Some(parse_metadata(content));
        }
    }
    if parts.sdp.is_empty() {
        return Err(SiprecError::NoSdp);
    }
    Ok(parts)
}

/// Reads the participants, streams and their associations; unknown or broken XML yields what
/// could be read (the call is recorded either way).
pub fn parse_metadata(xml: &str) -> Metadata {
    let mut reader = Reader::from_str(xml);
    let mut metadata = Metadata::default();
    // The element being read and the id of its enclosing participant / stream / association.
    let mut path: Vec<String> = Vec::new();
    let mut current_id = String::new();
    let mut party = Party::default();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_string();
                let attr = |key: &str| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == key.as_bytes())
                        .map(|a| String::from_utf8_lossy(&a.value).to_string())
                };
                match name.as_str() {
                    "participant" | "participantstreamassoc" => {
                        current_id = attr("participant_id").unwrap_or_default();
                        party = Party::default();
                    }
                    "stream" => current_id = attr("stream_id").unwrap_or_default(),
                    "nameID" | "nameId" => {
                        if let Some(aor) = attr("aor") {
                            party.number = aor_user(&aor);
                            party.uri = Some(aor);
                        }
                    }
                    _ => {}
                }
                path.push(name);
            }
            Ok(Event::Text(t)) => {
                let text = t.decode().map(|s| s.trim().to_string()).unwrap_or_default();
                if text.is_empty() {
                    continue;
                }
                match path.last().map(String::as_str) {
                    Some("name") => party.name = Some(text),
                    Some("label") => metadata.streams.push((current_id.clone(), text)),
                    Some("send") => metadata.sends.push((current_id.clone(), text)),
                    _ => {}
                }
            }
            Ok(Event::End(_)) => {
                let closed = path.pop();
                if closed.as_deref() == Some("participant") {
                    metadata.participants.push((current_id.clone(), std::mem::take(&mut party)));
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    metadata
}

fn aor_user(aor: &str) -> Option<String> {
    let rest = aor.strip_prefix("sip:").or_else(|| aor.strip_prefix("sips:")).or_else(|| aor.strip_prefix("tel:"))?;
    rest.split(['@', ';']).next().filter(|u| !u.is_empty()).map(str::to_string)
}

/// The speaker of each offered stream, in m-line order.
pub fn speakers(metadata: &Metadata, offers: &[MediaOffer]) -> Vec<(Role, Party)> {
    offers
        .iter()
        .enumerate()
        .map(|(index, offer)| {
            let role = if index == 0 { Role::Customer } else { Role::Agent };
            let party = offer
                .label
                .as_ref()
                .and_then(|label| metadata.streams.iter().find(|(_, l)| l == label))
                .and_then(|(stream, _)| metadata.sends.iter().find(|(_, s)| s == stream))
                .and_then(|(participant, _)| metadata.participants.iter().find(|(p, _)| p == participant))
                .map(|(_, party)| party.clone())
                .unwrap_or_default();
            (role, party)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const BODY: &str = "--rec\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 18000 RTP/AVP 0\r\na=label:1\r\na=sendonly\r\nm=audio 18002 RTP/AVP 0\r\na=label:2\r\na=sendonly\r\n\r\n--rec\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<recording xmlns=\"urn:ietf:params:xml:ns:recording:1\">\r\n<datamode>complete</datamode>\r\n<session session_id=\"s1\"></session>\r\n<participant participant_id=\"p1\"><nameID aor=\"sip:+15551234@carrier.example\"><name>Jane Caller</name></nameID></participant>\r\n<participant participant_id=\"p2\"><nameID aor=\"sip:2001@pbx.example\"><name>Agent Dana</name></nameID></participant>\r\n<stream stream_id=\"st1\" session_id=\"s1\"><label>1</label></stream>\r\n<stream stream_id=\"st2\" session_id=\"s1\"><label>2</label></stream>\r\n<participantstreamassoc participant_id=\"p1\"><send>st1</send><recv>st2</recv></participantstreamassoc>\r\n<participantstreamassoc participant_id=\"p2\"><send>st2</send><recv>st1</recv></participantstreamassoc>\r\n</recording>\r\n--rec--\r\n";

    #[test]
    fn a_siprec_body_yields_two_labelled_speakers() {
        let parts = split("multipart/mixed;boundary=rec", BODY.as_bytes()).unwrap();
        let offers = super::super::sdp::parse(&parts.sdp).unwrap();
        assert_eq!(offers.len(), 2);
        let speakers = speakers(parts.metadata.as_ref().unwrap(), &offers);
        assert_eq!(speakers[0].0, Role::Customer);
        assert_eq!(speakers[0].1.name.as_deref(), Some("Jane Caller"));
        assert_eq!(speakers[0].1.number.as_deref(), Some("+15551234"));
        assert_eq!(speakers[1].0, Role::Agent);
        assert_eq!(speakers[1].1.name.as_deref(), Some("Agent Dana"));
        assert_eq!(speakers[1].1.number.as_deref(), Some("2001"));
    }

    #[test]
    fn broken_bodies_are_errors_not_panics() {
        assert_eq!(split("multipart/mixed", b"x").unwrap_err(), SiprecError::NoBoundary);
        assert_eq!(
            split("multipart/mixed; boundary=\"b\"", b"--b\r\n\r\nhello\r\n--b--").unwrap_err(),
            SiprecError::NoSdp
        );
        let metadata = parse_metadata("<recording><participant participant_id='p'><nameID aor='sip:1@x'><name>A");
        assert!(metadata.participants.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
            let _ = split("multipart/mixed;boundary=rec", &body);
            let _ = parse_metadata(&String::from_utf8_lossy(&body));
        }
    }
}
