//! Audio decoders for telephony payloads: G.711 µ-law (PCMU), A-law (PCMA) and Opus.
//!
//! Each [`Decoder`] turns one RTP payload into mono `i16` samples at the codec's own rate
//! (8 kHz for G.711, 48 kHz for Opus) and fills a lost packet's time with
//! [`Decoder::conceal`]: Opus runs its own packet-loss concealment, G.711 fades the last
//! frame out into silence. Resampling to the pipeline rate happens later, in `resample`.
//! A decoder keeps its output buffer and hands out a borrowed slice, so decoding a packet
//! allocates nothing once the buffers have grown.

use thiserror::Error;

/// The longest Opus frame (120 ms at 48 kHz), so the largest output of one packet.
const OPUS_MAX_FRAME: usize = 5_760;
/// Opus concealment runs in whole 2.5 ms steps.
const OPUS_PLC_STEP: usize = 120;

/// A codec negotiated for a payload type (the SDP stage decides which number means which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Pcmu,
    Pcma,
    Opus,
}

impl Codec {
    /// The RTP clock rate, which is also the rate of the decoded samples.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8_000,
            Codec::Opus => 48_000,
        }
    }

    /// The codec of a static payload type (RFC 3551): 0 is PCMU, 8 is PCMA.
    pub fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The codec of an SDP `a=rtpmap` encoding name and clock rate (`PCMU/8000`, `opus/48000`).
    pub fn from_rtpmap(name: &str, clock_rate: u32) -> Option<Codec> {
        let codec = match name.to_ascii_lowercase().as_str() {
            "pcmu" => Codec::Pcmu,
            "pcma" => Codec::Pcma,
            "opus" => Codec::Opus,
            _ => return None,
        };
        (codec.clock_rate() == clock_rate).then_some(codec)
    }
}

#[derive(Debug, Error)]
pub enum CodecError {
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
}

/// A stateful decoder for one stream.
pub enum Decoder {
    G711(G711Decoder),
    Opus(OpusDecoder),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Decoder").field(&self.codec()).finish()
    }
}

impl Decoder {
    pub fn new(codec: Codec) -> Result<Decoder, CodecError> {
        Ok(match codec {
            Codec::Pcmu => Decoder::G711(G711Decoder::new(G711Law::MuLaw)),
            Codec::Pcma => Decoder::G711(G711Decoder::new(G711Law::ALaw)),
            Codec::Opus => Decoder::Opus(OpusDecoder::new()?),
        })
    }

    pub fn codec(&self) -> Codec {
        match self {
            Decoder::G711(d) if d.law == G711Law::MuLaw => Codec::Pcmu,
            Decoder::G711(_) => Codec::Pcma,
            Decoder::Opus(_) => Codec::Opus,
        }
    }

    /// The rate of the samples this decoder produces.
    pub fn sample_rate(&self) -> u32 {
        self.codec().clock_rate()
    }

    /// Decodes one RTP payload into mono samples at [`Decoder::sample_rate`].
    pub fn decode(&mut self, payload: &[u8]) -> Result<&[i16], CodecError> {
        match self {
            Decoder::G711(d) => Ok(d.decode(payload)),
            Decoder::Opus(d) => d.decode(payload),
        }
    }

    /// Produces `samples` samples to stand in for lost packets.
    pub fn conceal(&mut self, samples: usize) -> Result<&[i16], CodecError> {
        match self {
            Decoder::G711(d) => Ok(d.conceal(samples)),
            Decoder::Opus(d) => d.conceal(samples),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711Law {
    MuLaw,
    ALaw,
}

/// G.711 has no state of its own; this keeps the last frame to fade out over a loss.
#[derive(Debug, Clone)]
pub struct G711Decoder {
    law: G711Law,
    frame: Vec<i16>,
    concealed: Vec<i16>,
}

impl G711Decoder {
    pub fn new(law: G711Law) -> G711Decoder {
        G711Decoder { law, frame: Vec::new(), concealed: Vec::new() }
    }

    pub fn decode(&mut self, payload: &[u8]) -> &[i16] {
        let expand = match self.law {
            G711Law::MuLaw => ulaw_to_linear,
            G711Law::ALaw => alaw_to_linear,
        };
        self.frame.clear();
        self.frame.extend(payload.iter().map(|&b| expand(b)));
        &self.frame
    }

    /// Repeats the last frame once with a linear fade to zero, then silence. A second loss in
    /// a row continues in silence.
    pub fn conceal(&mut self, samples: usize) -> &[i16] {
        let last = std::mem::take(&mut self.frame);
        let fade = last.len().min(samples);
        self.concealed.clear();
        self.concealed.extend((0..fade).map(|i| {
            let gain = 1.0 - (i as f32 + 1.0) / fade as f32;
            (f32::from(last[i]) * gain) as i16
        }));
        self.concealed.resize(samples, 0);
        &self.concealed
    }
}

/// An Opus decoder at 48 kHz with mono output (stereo packets are mixed down by libopus).
pub struct OpusDecoder {
    inner: opus::Decoder,
    out: Vec<i16>,
}

impl OpusDecoder {
    pub fn new() -> Result<OpusDecoder, CodecError> {
        Ok(OpusDecoder { inner: opus::Decoder::new(48_000, opus::Channels::Mono)?, out: vec![0; OPUS_MAX_FRAME] })
    }

    pub fn decode(&mut self, payload: &[u8]) -> Result<&[i16], CodecError> {
        if payload.is_empty() {
            // An empty payload would mean "lost" to libopus; for RTP it is just nothing.
            return Ok(&[]);
        }
        self.out.resize(OPUS_MAX_FRAME, 0);
        let n = self.inner.decode(payload, &mut self.out, false)?;
        Ok(&self.out[..n.min(OPUS_MAX_FRAME)])
    }

    /// libopus' packet-loss concealment, in steps of at most 120 ms.
    pub fn conceal(&mut self, samples: usize) -> Result<&[i16], CodecError> {
        let steps = samples.div_ceil(OPUS_PLC_STEP);
        self.out.clear();
        self.out.resize(steps * OPUS_PLC_STEP, 0);
        let mut done = 0;
        while done < samples {
            let chunk = (steps * OPUS_PLC_STEP - done).min(OPUS_MAX_FRAME);
            let n = self.inner.decode(&[], &mut self.out[done..done + chunk], false)?;
            if n == 0 {
                break; // leave the rest as silence
            }
            done += n.min(chunk);
        }
        Ok(&self.out[..samples])
    }
}

/// G.711 µ-law to 16-bit linear (ITU-T G.711, the classic Sun `ulaw2linear`).
pub const fn ulaw_to_linear(byte: u8) -> i16 {
    const BIAS: i16 = 0x84;
    let u = !byte;
    let mantissa = ((u & 0x0f) as i16) << 3;
    let exponent = (u & 0x70) >> 4;
    let magnitude = ((mantissa + BIAS) << exponent) - BIAS;
    if u & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// G.711 A-law to 16-bit linear (ITU-T G.711, the classic Sun `alaw2linear`).
pub const fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mantissa = ((a & 0x0f) as i16) << 4;
    let segment = (a & 0x70) >> 4;
    let magnitude = match segment {
        0 => mantissa + 8,
        1 => mantissa + 0x108,
        _ => (mantissa + 0x108) << (segment - 1),
    };
    if a & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// µ-law encoder (Sun `linear2ulaw`), written independently of the decoder above.
    pub(crate) fn linear_to_ulaw(pcm: i16) -> u8 {
        const BIAS: i32 = 0x84;
        const CLIP: i32 = 32_635;
        let (mut x, mask) = if pcm < 0 { (-i32::from(pcm), 0x7f) } else { (i32::from(pcm), 0xff) };
        x = x.min(CLIP) + BIAS;
        let segment = (31 - x.leading_zeros() as i32 - 7).clamp(0, 7);
        let value = (segment << 4) | ((x >> (segment + 3)) & 0x0f);
        (value ^ mask) as u8
    }

    /// A-law encoder (Sun `linear2alaw`).
    fn linear_to_alaw(pcm: i16) -> u8 {
        const SEGMENT_END: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
        let mut x = i32::from(pcm) >> 3;
        let mask = if x >= 0 {
            0xd5
        } else {
            x = -x - 1;
            0x55
        };
        let Some(segment) = SEGMENT_END.iter().position(|&end| x <= end) else {
            return (0x7f ^ mask) as u8;
        };
        let shift = if segment < 2 { 1 } else { segment };
        let value = ((segment as i32) << 4) | ((x >> shift) & 0x0f);
        (value ^ mask) as u8
    }

    #[test]
    fn g711_known_values() {
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(ulaw_to_linear(0x80), 32_124);
        assert_eq!(ulaw_to_linear(0x00), -32_124);
        assert_eq!(ulaw_to_linear(0xfe), 8);
        assert_eq!(ulaw_to_linear(0xef), 132);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32_256);
        assert_eq!(alaw_to_linear(0x2a), -32_256);
        assert_eq!(alaw_to_linear(0xc5), 264);
    }

    #[test]
    fn g711_round_trips_through_an_independent_encoder() {
        for b in 0..=255u8 {
            let expect_u = if b == 0x7f { 0xff } else { b }; // µ-law has a negative zero
            assert_eq!(linear_to_ulaw(ulaw_to_linear(b)), expect_u, "µ-law {b:#04x}");
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "A-law {b:#04x}");
        }
        // Encoding then decoding stays within the logarithmic quantisation step (about 1/16 of
        // the magnitude), except near full scale where both laws clip at about 32 100.
        for x in (i16::MIN..=i16::MAX).step_by(7) {
            let bound = if x.unsigned_abs() > 32_000 { 1024 } else { i32::from(x.unsigned_abs()) / 16 + 16 };
            for y in [ulaw_to_linear(linear_to_ulaw(x)), alaw_to_linear(linear_to_alaw(x))] {
                assert!((i32::from(y) - i32::from(x)).abs() <= bound, "{x} came back as {y}");
            }
        }
    }

    #[test]
    fn g711_decoder_and_concealment() {
        let mut d = Decoder::new(Codec::Pcmu).unwrap();
        assert_eq!(d.sample_rate(), 8_000);
        let frame: Vec<u8> = (0..160).map(|i| linear_to_ulaw(((i as f32 * 0.3).sin() * 8000.0) as i16)).collect();
        assert_eq!(d.decode(&frame).unwrap().len(), 160);
        let first = d.conceal(240).unwrap().to_vec();
        assert_eq!(first.len(), 240);
        // The fade starts near the last frame and ends in silence.
        assert!(first[..20].iter().any(|&s| s.abs() > 1000));
        assert!(first[160..].iter().all(|&s| s == 0));
        // A second loss in a row is silent.
        assert!(d.conceal(160).unwrap().iter().all(|&s| s == 0));
    }

    #[test]
    fn opus_decodes_and_conceals_at_48k() {
        let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let pcm: Vec<i16> = (0..960)
            .map(|i| ((i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 48_000.0).sin() * 10_000.0) as i16)
            .collect();
        let mut d = Decoder::new(Codec::Opus).unwrap();
        assert_eq!(d.sample_rate(), 48_000);
        for _ in 0..5 {
            let packet = enc.encode_vec(&pcm, 1500).unwrap();
            assert_eq!(d.decode(&packet).unwrap().len(), 960);
        }
        let plc = d.conceal(1000).unwrap();
        assert_eq!(plc.len(), 1000);
        assert!(plc.iter().any(|&s| s != 0), "Opus PLC continues the signal");
        assert!(d.decode(&[0xff, 0xff, 0xff]).is_err(), "a corrupt packet is an error, not a panic");
        assert!(d.decode(&[]).unwrap().is_empty());
    }

    #[test]
    fn codec_names() {
        assert_eq!(Codec::from_rtpmap("PCMU", 8000), Some(Codec::Pcmu));
        assert_eq!(Codec::from_rtpmap("opus", 48000), Some(Codec::Opus));
        assert_eq!(Codec::from_rtpmap("opus", 16000), None);
        assert_eq!(Codec::from_static_payload_type(8), Some(Codec::Pcma));
    }
}
