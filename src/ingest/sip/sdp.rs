//! SDP offer/answer for calls hark listens to (RFC 3264, audio only): parse an offer, pick a
//! codec by preference, and write the answer (or, for an offerless INVITE, the offer). hark
//! never sends media, so it answers `recvonly` (or `inactive` to a held offer).
//!
//! Hand-written on purpose: hark needs a dozen attributes of the audio m-lines, and a small
//! pure parser with property tests is easier to trust on hostile input than a general model.

use std::net::IpAddr;

use crate::media::codec::Codec;

/// Longest SDP body accepted.
pub const MAX_SDP_BYTES: usize = 16 * 1024;
/// Most audio m-lines in one offer (SIPREC sends one per participant).
const MAX_MEDIA: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// One payload format of an m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub payload_type: u8,
    /// The codec, when hark decodes it.
    pub codec: Option<Codec>,
    /// RFC 4733 `telephone-event/8000`.
    pub telephone_event: bool,
}

/// An offered audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaOffer {
    pub port: u16,
    /// Where its RTP comes from (`c=` of the m-line, else of the session).
    pub address: Option<IpAddr>,
    pub formats: Vec<Format>,
    pub ptime: Option<u32>,
    pub direction: Direction,
    /// `a=label` (SIPREC names streams by it).
    pub label: Option<String>,
}

impl MediaOffer {
    /// On hold: the far end will not send (RFC 3264 §8.4), or its address is 0.0.0.0.
    pub fn on_hold(&self) -> bool {
        matches!(self.direction, Direction::RecvOnly | Direction::Inactive)
            || self.address.is_some_and(|a| a.is_unspecified())
            || self.port == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body over {MAX_SDP_BYTES} bytes")]
    TooLarge,
    #[error("SDP is not UTF-8")]
    NotText,
    #[error("SDP line {line}: {reason}")]
    Line { line: usize, reason: &'static str },
    #[error("no audio stream in the SDP")]
    NoAudio,
}

/// The audio m-lines of an offer, in order.
pub fn parse(body: &[u8]) -> Result<Vec<MediaOffer>, SdpError> {
    if body.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let mut session_address = None;
    let mut session_direction = Direction::SendRecv;
    let mut media: Vec<MediaOffer> = Vec::new();
    // Attributes of a non-audio m-line are skipped.
    let mut in_other_media = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let raw = raw.trim_end_matches('\r');
        if raw.is_empty() {
            continue;
        }
        let (kind, value) = raw.split_once('=').ok_or(SdpError::Line { line, reason: "not type=value" })?;
        match kind {
            "m" => {
                let mut fields = value.split_ascii_whitespace();
                let (Some(kind), Some(port), Some(_proto)) = (fields.next(), fields.next(), fields.next()) else {
                    return Err(SdpError::Line { line, reason: "m= needs media, port, proto and formats" });
                };
                in_other_media = kind != "audio";
                if in_other_media {
                    continue;
                }
                if media.len() == MAX_MEDIA {
                    return Err(SdpError::Line { line, reason: "too many audio streams" });
                }
                // `port/count` is allowed by RFC 4566; hark uses the first port.
                let port = port.split('/').next().unwrap_or_default();
                let port = port.parse().map_err(|_| SdpError::Line { line, reason: "bad port" })?;
                let formats = fields
                    .map(|f| f.parse::<u8>().map_err(|_| SdpError::Line { line, reason: "bad payload type" }))
                    .map(|pt| {
                        pt.map(|pt| Format {
                            payload_type: pt,
                            codec: Codec::from_static_payload_type(pt),
                            telephone_event: false,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                media.push(MediaOffer {
                    port,
                    address: session_address,
                    formats,
                    ptime: None,
                    direction: session_direction,
                    label: None,
                });
            }
            "c" => {
                let address = parse_connection(value).ok_or(SdpError::Line { line, reason: "bad c= line" })?;
                match media.last_mut() {
                    Some(m) if !in_other_media => m.address = Some(address),
                    None => session_address = Some(address),
                    _ => {}
                }
            }
            "a" if !in_other_media => {
                let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                let direction = match name {
                    "sendrecv" => Some(Direction::SendRecv),
                    "sendonly" => Some(Direction::SendOnly),
                    "recvonly" => Some(Direction::RecvOnly),
                    "inactive" => Some(Direction::Inactive),
                    _ => None,
                };
                let Some(m) = media.last_mut() else {
                    if let Some(direction) = direction {
                        session_direction = direction;
                    }
                    continue;
                };
                if let Some(direction) = direction {
                    m.direction = direction;
                    continue;
                }
                match name {
                    "rtpmap" => {
                        let (pt, encoding) =
                            arg.split_once(' ').ok_or(SdpError::Line { line, reason: "bad rtpmap" })?;
                        let pt: u8 = pt.trim().parse().map_err(|_| SdpError::Line { line, reason: "bad rtpmap" })?;
                        let mut parts = encoding.trim().split('/');
                        let name = parts.next().unwrap_or_default();
                        let rate: u32 = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                        if let Some(format) = m.formats.iter_mut().find(|f| f.payload_type == pt) {
                            format.codec = Codec::from_rtpmap(name, rate);
                            format.telephone_event = name.eq_ignore_ascii_case("telephone-event");
                        }
                    }
                    "ptime" => m.ptime = arg.trim().parse().ok(),
                    "label" => m.label = Some(arg.trim().to_string()),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if media.is_empty() {
        return Err(SdpError::NoAudio);
    }
    Ok(media)
}

fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut fields = value.split_ascii_whitespace();
    let (Some("IN"), Some(_family), Some(address)) = (fields.next(), fields.next(), fields.next()) else {
        return None;
    };
    // Multicast `addr/ttl` forms keep the address part.
    address.split('/').next()?.parse().ok()
}

/// What hark takes from an offered stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chosen {
    pub payload_type: u8,
    pub codec: Codec,
    pub telephone_event: Option<u8>,
}

/// The first codec of `preference` the offer carries, with its payload type.
pub fn choose(offer: &MediaOffer, preference: &[Codec]) -> Option<Chosen> {
    let telephone_event = offer.formats.iter().find(|f| f.telephone_event).map(|f| f.payload_type);
    preference.iter().find_map(|wanted| {
        offer.formats.iter().find(|f| f.codec == Some(*wanted)).map(|f| Chosen {
            payload_type: f.payload_type,
            codec: *wanted,
            telephone_event,
        })
    })
}

/// One stream of hark's answer (or offer).
#[derive(Debug, Clone)]
pub struct LocalMedia {
    pub port: u16,
    /// The payload types hark lists, first the chosen one.
    pub formats: Vec<(u8, Codec)>,
    pub telephone_event: Option<u8>,
    pub direction: Direction,
    pub label: Option<String>,
}

fn rtpmap(codec: Codec) -> &'static str {
    match codec {
        Codec::Pcmu => "PCMU/8000",
        Codec::Pcma => "PCMA/8000",
        Codec::Opus => "opus/48000/2",
    }
}

/// The codec a setting names (`PCMU`, `PCMA`, `opus`, any case).
pub fn codec_named(name: &str) -> Option<Codec> {
    [Codec::Pcmu, Codec::Pcma, Codec::Opus]
        .into_iter()
        .find(|&c| rtpmap(c).split('/').next().is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

/// Payload types hark offers its codecs under when it makes the offer.
pub fn offer_formats(preference: &[Codec]) -> Vec<(u8, Codec)> {
    preference
        .iter()
        .map(|&c| match c {
            Codec::Pcmu => (0, c),
            Codec::Pcma => (8, c),
            Codec::Opus => (111, c),
        })
        .collect()
}

/// The SDP body for `media`, with `version` as the o= session version.
pub fn write(address: IpAddr, session_id: u64, version: u64, media: &[LocalMedia]) -> String {
    let family = if address.is_ipv4() { "IP4" } else { "IP6" };
    let mut sdp = format!(
        "v=0\r\no=hark {session_id} {version} IN {family} {address}\r\ns=hark\r\nc=IN {family} {address}\r\nt=0 0\r\n"
    );
    for m in media {
        let mut pts: Vec<String> = m.formats.iter().map(|(pt, _)| pt.to_string()).collect();
        if let Some(te) = m.telephone_event {
            pts.push(te.to_string());
        }
        sdp.push_str(&format!("m=audio {} RTP/AVP {}\r\n", m.port, pts.join(" ")));
        for (pt, codec) in &m.formats {
            sdp.push_str(&format!("a=rtpmap:{pt} {}\r\n", rtpmap(*codec)));
        }
        if let Some(te) = m.telephone_event {
            sdp.push_str(&format!("a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"));
        }
        sdp.push_str("a=ptime:20\r\n");
        if let Some(label) = &m.label {
            sdp.push_str(&format!("a=label:{label}\r\n"));
        }
        sdp.push_str(match m.direction {
            Direction::SendRecv => "a=sendrecv\r\n",
            Direction::SendOnly => "a=sendonly\r\n",
            Direction::RecvOnly => "a=recvonly\r\n",
            Direction::Inactive => "a=inactive\r\n",
        });
    }
    sdp
}

/// hark's direction for an offered stream: it only receives, and nothing while held.
pub fn answer_direction(offer: &MediaOffer) -> Direction {
    if offer.on_hold() {
        Direction::Inactive
    } else {
        Direction::RecvOnly
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 18000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n";

    #[test]
    fn parses_the_fixture_offer_and_picks_pcmu() {
        let media = parse(SIPP_OFFER.as_bytes()).unwrap();
        assert_eq!(media.len(), 1);
        let m = &media[0];
        assert_eq!((m.port, m.address, m.ptime), (18000, Some("127.0.0.1".parse().unwrap()), Some(20)));
        assert!(!m.on_hold());
        let chosen = choose(m, &[Codec::Opus, Codec::Pcma, Codec::Pcmu]).unwrap();
        assert_eq!((chosen.payload_type, chosen.codec, chosen.telephone_event), (0, Codec::Pcmu, None));
    }

    #[test]
    fn dynamic_types_holds_and_dtmf() {
        let offer = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 111 8 101\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\nm=video 5000 RTP/AVP 96\r\na=recvonly\r\nm=audio 4002 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=label:2\r\n";
        let media = parse(offer.as_bytes()).unwrap();
        assert_eq!(media.len(), 2, "the video stream is skipped");
        let chosen = choose(&media[0], &[Codec::Opus, Codec::Pcmu]).unwrap();
        assert_eq!((chosen.payload_type, chosen.codec, chosen.telephone_event), (111, Codec::Opus, Some(101)));
        assert_eq!(media[0].direction, Direction::SendOnly);
        assert_eq!(answer_direction(&media[0]), Direction::RecvOnly);
        assert!(media[1].on_hold(), "c=0.0.0.0 is hold");
        assert_eq!(media[1].label.as_deref(), Some("2"));
    }

    #[test]
    fn an_offer_without_a_wanted_codec_chooses_nothing() {
        let offer = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 18 9\r\na=rtpmap:18 G729/8000\r\n";
        let media = parse(offer.as_bytes()).unwrap();
        assert_eq!(choose(&media[0], &[Codec::Pcmu, Codec::Pcma]), None);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n"), Err(SdpError::Line { line: 2, reason: "bad port" }));
        assert_eq!(parse(b"v=0\r\ns=-\r\n"), Err(SdpError::NoAudio));
        assert_eq!(parse(b"garbage"), Err(SdpError::Line { line: 1, reason: "not type=value" }));
        assert_eq!(parse(&[0xff, 0xfe]), Err(SdpError::NotText));
    }

    #[test]
    fn the_answer_round_trips_through_the_parser() {
        let local = LocalMedia {
            port: 20000,
            formats: vec![(0, Codec::Pcmu)],
            telephone_event: Some(101),
            direction: Direction::RecvOnly,
            label: Some("1".into()),
        };
        let sdp = write("127.0.0.1".parse().unwrap(), 7, 1, &[local]);
        let parsed = parse(sdp.as_bytes()).unwrap();
        assert_eq!(parsed[0].port, 20000);
        assert_eq!(parsed[0].direction, Direction::RecvOnly);
        assert_eq!(choose(&parsed[0], &[Codec::Pcmu]).unwrap().telephone_event, Some(101));
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse(&body);
        }

        #[test]
        fn arbitrary_sdp_like_lines_never_panic(lines in proptest::collection::vec("[vmcao]=[ -~]{0,60}", 0..40)) {
            let _ = parse(lines.join("\r\n").as_bytes());
        }
    }
}
