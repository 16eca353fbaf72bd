//! RTP packets (RFC 3550) read from untrusted datagrams, without copying.
//!
//! The parser only borrows: a [`RtpPacket`] points into the datagram, so reading a packet
//! allocates nothing, and every length in the header is checked against the bytes that are
//! really there before it is used. Anything malformed is an [`RtpError`], never a panic.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! |                           timestamp                           |
//! |                             SSRC                              |
//! |                 CSRC list (CC × 32 bits)                       |
//! | extension: profile (16) | length in 32-bit words (16) | data  |
//! |                  payload ...  | padding ... | padding count   |
//! ```

use thiserror::Error;

/// The fixed part of the header: version, flags, payload type, sequence, timestamp, SSRC.
pub const FIXED_HEADER_LEN: usize = 12;

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("datagram of {0} bytes is shorter than the 12-byte RTP header")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    #[error("packet type {0} is RTCP multiplexed on the RTP port (RFC 5761)")]
    Rtcp(u8),
    #[error("CSRC list of {count} entries does not fit in {len} bytes")]
    CsrcTruncated { count: u8, len: usize },
    #[error("header extension does not fit in the packet")]
    ExtensionTruncated,
    #[error("padding count {count} does not fit a payload of {available} bytes")]
    BadPadding { count: u8, available: usize },
}

/// A header extension (RFC 3550 §5.3.1): a profile-defined 16-bit value and its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    pub profile: u16,
    pub data: &'a [u8],
}

/// One RTP packet borrowed from its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Whether the sender padded the payload (the padding is already removed from `payload`).
    pub padding: bool,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// The contributing sources, 4 bytes each in network order; see [`RtpPacket::csrcs`].
    csrc: &'a [u8],
    pub extension: Option<Extension<'a>>,
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// The contributing sources (mixers list the streams they mixed here).
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrc.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    pub fn csrc_count(&self) -> usize {
        self.csrc.len() / 4
    }
}

/// Reads one RTP packet from a datagram.
pub fn parse(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let (fixed, rest) = buf.split_first_chunk::<FIXED_HEADER_LEN>().ok_or(RtpError::TooShort(buf.len()))?;
    let version = fixed[0] >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion(version));
    }
    // RFC 5761 §4: RTCP packet types 192..=223 land in the marker + payload-type byte.
    if (192..=223).contains(&fixed[1]) {
        return Err(RtpError::Rtcp(fixed[1]));
    }
    let padding = fixed[0] & 0x20 != 0;
    let has_extension = fixed[0] & 0x10 != 0;
    let csrc_count = fixed[0] & 0x0f;

    let csrc_len = usize::from(csrc_count) * 4;
    let (csrc, rest) =
        rest.split_at_checked(csrc_len).ok_or(RtpError::CsrcTruncated { count: csrc_count, len: buf.len() })?;

    let (extension, rest) = if has_extension {
        let (head, rest) = rest.split_first_chunk::<4>().ok_or(RtpError::ExtensionTruncated)?;
        let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let (data, rest) = rest.split_at_checked(words * 4).ok_or(RtpError::ExtensionTruncated)?;
        (Some(Extension { profile: u16::from_be_bytes([head[0], head[1]]), data }), rest)
    } else {
        (None, rest)
    };

    let payload = if padding {
        // The last byte counts the padding bytes, itself included, so it is at least 1.
        let count = rest.last().copied().unwrap_or(0);
        if count == 0 || usize::from(count) > rest.len() {
            return Err(RtpError::BadPadding { count, available: rest.len() });
        }
        &rest[..rest.len() - usize::from(count)]
    } else {
        rest
    };

    Ok(RtpPacket {
        padding,
        marker: fixed[1] & 0x80 != 0,
        payload_type: fixed[1] & 0x7f,
        sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
        timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        csrc,
        extension,
        payload,
    })
}

/// Writes a minimal RTP packet (no CSRC, no extension, no padding); for tests and load tools.
pub fn write(marker: bool, payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED_HEADER_LEN + payload.len());
    out.push(0x80);
    out.push((u8::from(marker) << 7) | (payload_type & 0x7f));
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_a_plain_pcmu_packet() {
        let bytes = write(false, 0, 65535, 160, 0xCA11_0000, &[0xff; 160]);
        let p = parse(&bytes).unwrap();
        assert_eq!((p.payload_type, p.sequence, p.timestamp, p.ssrc), (0, 65535, 160, 0xCA11_0000));
        assert!(!p.marker && !p.padding && p.extension.is_none());
        assert_eq!(p.csrc_count(), 0);
        assert_eq!(p.payload, &[0xff; 160][..]);
    }

    #[test]
    fn reads_csrc_extension_padding_and_marker() {
        let mut b = vec![0x80 | 0x20 | 0x10 | 2, 0x80 | 8, 0, 7, 0, 0, 1, 0, 1, 2, 3, 4];
        b.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 10]); // two CSRCs
        b.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]); // one-byte extension, 1 word
        b.extend_from_slice(&[1, 2, 3]); // payload
        b.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let p = parse(&b).unwrap();
        assert!(p.marker && p.padding);
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.sequence, 7);
        assert_eq!(p.timestamp, 256);
        assert_eq!(p.ssrc, 0x0102_0304);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![9, 10]);
        assert_eq!(p.extension, Some(Extension { profile: 0xBEDE, data: &[0x10, 0xAA, 0, 0] }));
        assert_eq!(p.payload, &[1, 2, 3]);
    }

    #[test]
    fn rejects_malformed_packets() {
        assert_eq!(parse(&[0x80; 11]), Err(RtpError::TooShort(11)));
        assert_eq!(parse(&[0x40; 12]), Err(RtpError::BadVersion(1)));
        assert_eq!(parse(&[0x80, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Err(RtpError::Rtcp(200)));
        let mut csrc = vec![0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        csrc.extend_from_slice(&[0; 8]);
        assert!(matches!(parse(&csrc), Err(RtpError::CsrcTruncated { count: 3, .. })));
        let ext = [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0, 2, 0, 0, 0, 0];
        assert_eq!(parse(&ext), Err(RtpError::ExtensionTruncated));
        let pad = [0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5];
        assert_eq!(parse(&pad), Err(RtpError::BadPadding { count: 5, available: 2 }));
        let zero_pad = [0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse(&zero_pad), Err(RtpError::BadPadding { count: 0, available: 1 }));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = parse(&bytes) {
                // Whatever was read lies inside the datagram.
                prop_assert!(FIXED_HEADER_LEN + p.csrc_count() * 4 + p.payload.len() <= bytes.len());
            }
        }

        #[test]
        fn write_then_parse_round_trips(
            marker: bool, pt in 0u8..128, seq: u16, ts: u32, ssrc: u32,
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            prop_assume!(!(marker && (64..=95).contains(&pt)));
            let bytes = write(marker, pt, seq, ts, ssrc, &payload);
            let p = parse(&bytes).unwrap();
            prop_assert_eq!((p.marker, p.payload_type, p.sequence, p.timestamp, p.ssrc), (marker, pt, seq, ts, ssrc));
            prop_assert_eq!(p.payload, &payload[..]);
        }
    }
}
