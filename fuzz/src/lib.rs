//! Helpers the fuzz targets share: the framing of a fuzz input into a connection's frames, and
//! the shell's part of a streamed call (events into [`Clocks`]) with its invariants.

use hark::ingest::stream::{Clocks, Event, Placed};

/// Cuts `data` into frames of `kind byte, length (u16, little-endian), payload`; a length past
/// the end takes what is left.
pub fn frames(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&kind, rest) = data.split_first()?;
        let (len, rest) = match rest {
            [lo, hi, rest @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), rest),
            _ => (rest.len(), &rest[rest.len()..]),
        };
        let (payload, rest) = rest.split_at(len.min(rest.len()));
        data = rest;
        Some((kind, payload))
    })
}

/// What the WebSocket and AudioSocket shells do with a core's events, without the session:
/// the start makes the call's [`Clocks`], audio is placed on the call's time line, a stop
/// flushes. Placed audio of each speaker must lie in whole milliseconds and never overlap.
#[derive(Default)]
pub struct Shell {
    clocks: Option<Clocks>,
    speakers: usize,
    /// Per speaker, the end (16 kHz samples) of the last placed audio.
    ends: Vec<u64>,
    placed: Vec<Placed>,
    pub stopped: bool,
}

impl Shell {
    /// Takes the events of one frame; false when the shell would close the connection.
    pub fn take(&mut self, events: &mut Vec<Event>) -> bool {
        for event in events.drain(..) {
            match event {
                Event::Start(start) => {
                    assert!(self.clocks.is_none(), "a second start event");
                    assert!(!start.call_id.is_empty() && start.call_id.len() <= hark::ingest::stream::MAX_CALL_ID);
                    assert!((8_000..=96_000).contains(&start.sample_rate), "rate {}", start.sample_rate);
                    assert!(!start.speakers.is_empty());
                    let Ok(clocks) = Clocks::new(&start) else { return false };
                    self.speakers = start.speakers.len();
                    self.ends = vec![0; self.speakers];
                    self.clocks = Some(clocks);
                }
                Event::Audio { role, at, samples } => {
                    let clocks = self.clocks.as_mut().expect("audio before the start event");
                    clocks.audio(role, at, &samples, &mut self.placed);
                }
                Event::Dtmf { role, .. } => {
                    let clocks = self.clocks.as_ref().expect("DTMF before the start event");
                    // The shell hands DTMF of a speaker the call does not have to no one.
                    let _ = clocks.speaker(role);
                }
                Event::Stop => {
                    self.stopped = true;
                    if let Some(clocks) = self.clocks.as_mut() {
                        clocks.flush(&mut self.placed);
                    }
                }
            }
        }
        self.check();
        !self.stopped
    }

    /// The end of the connection: what the tracks hold is flushed.
    pub fn finish(&mut self) {
        if let Some(clocks) = self.clocks.as_mut() {
            clocks.flush(&mut self.placed);
            let stats = clocks.stats();
            assert_eq!(stats.len(), self.speakers);
        }
        self.check();
    }

    fn check(&mut self) {
        for placed in self.placed.drain(..) {
            assert!(placed.speaker < self.speakers);
            let start = placed.start_ms * 16;
            let end = &mut self.ends[placed.speaker];
            assert!(start >= *end, "audio at {} ms overlaps the speaker's audio up to sample {}", placed.start_ms, end);
            *end = start + placed.samples.len() as u64;
        }
    }
}
