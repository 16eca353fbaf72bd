//! One speaker's VAD state: what must live as long as the stream, and nothing more.
//!
//! Hundreds of calls are live at once, so the per-stream part is kept small and apart from
//! the model (which is shared, one per worker thread): Silero's recurrent state (2 × 128
//! floats), the last 64 samples of the previous chunk (the context Silero v5/v6 takes in
//! front of every chunk), the partial chunk being filled, and the [`Segmenter`]. It is
//! pure data: the [`SileroModel`](super::SileroModel) fills in the probabilities.
//!
//! Frames arrive with a stream time and any length. Frames of one run follow each other
//! exactly; a frame that starts later than expected leaves a gap, filled with silence up
//! to [`GAP_FILL`] (beyond that the run ends: the utterance in progress is flushed and
//! the model state starts over); a frame that starts earlier (a repeat) has its already
//! seen samples skipped. Samples that are not numbers count as silence.

use super::segmenter::{Ongoing, Segmenter, VadEvent};
use super::{VadError, VadSettings};

/// Samples per Silero chunk at 16 kHz (32 ms).
pub const CHUNK: usize = 512;
/// Samples of the previous chunk Silero sees in front of each chunk.
pub const CONTEXT: usize = 64;
/// Floats of Silero's recurrent state per stream (2 × 128).
pub const STATE: usize = 2 * 128;
/// The longest gap in a stream filled with silence (1 s); a longer one ends the run.
pub const GAP_FILL: u64 = 16_000;

/// A sample type frames may come in: 16-bit PCM or float (-1.0..=1.0).
pub trait Sample: Copy {
    /// The sample as a float in -1.0..=1.0 (not-a-number as 0).
    fn to_unit(self) -> f32;
}

impl Sample for i16 {
    fn to_unit(self) -> f32 {
        f32::from(self) / 32_768.0
    }
}

impl Sample for f32 {
    fn to_unit(self) -> f32 {
        if self.is_nan() {
            0.0
        } else {
            self.clamp(-1.0, 1.0)
        }
    }
}

/// One speaker's VAD: chunking, Silero's state, the segmenter.
#[derive(Debug)]
pub struct VadStream {
    pub(super) state: [f32; STATE],
    pub(super) context: [f32; CONTEXT],
    /// The chunk being filled; `filled` samples of it are valid.
    pub(super) chunk: [f32; CHUNK],
    pub(super) filled: usize,
    /// Stream time of `chunk[0]`; `None` before a run's first frame.
    chunk_start: Option<u64>,
    last_prob: Option<f32>,
    segmenter: Segmenter,
}

/// Where one frame's input stands while it is cut into chunks: silence still to insert for
/// a gap, a new run to start, then the frame's samples from `pos`.
#[derive(Debug)]
pub(super) struct Cursor {
    zeros: u64,
    restart: Option<u64>,
    pos: usize,
}

impl VadStream {
    pub fn new(settings: &VadSettings) -> Result<VadStream, VadError> {
        Ok(VadStream {
            state: [0.0; STATE],
            context: [0.0; CONTEXT],
            chunk: [0.0; CHUNK],
            filled: 0,
            chunk_start: None,
            last_prob: None,
            segmenter: Segmenter::new(settings)?,
        })
    }

    /// The next event, oldest first; drain after every push.
    pub fn poll_event(&mut self) -> Option<VadEvent> {
        self.segmenter.poll_event()
    }

    /// The announced utterance in progress so far, for a partial transcript.
    pub fn ongoing(&self) -> Option<Ongoing> {
        self.segmenter.ongoing()
    }

    /// Whether an announced utterance is in progress.
    pub fn is_speaking(&self) -> bool {
        self.segmenter.is_speaking()
    }

    /// Speech probability of the last chunk the model ran on.
    pub fn last_probability(&self) -> Option<f32> {
        self.last_prob
    }

    /// Stream time just past the last sample taken, once a run has started.
    pub fn position(&self) -> Option<u64> {
        self.chunk_start.map(|start| start.saturating_add(self.filled as u64))
    }

    /// Bytes this stream holds: itself plus what its segmenter has on the heap.
    pub fn memory_bytes(&self) -> usize {
        size_of::<VadStream>() + self.segmenter.heap_bytes()
    }

    /// Plans the input of a frame starting at `start` with `len` samples.
    pub(super) fn begin(&mut self, start: u64, len: usize) -> Cursor {
        let Some(next) = self.position() else {
            self.chunk_start = Some(start);
            return Cursor { zeros: 0, restart: None, pos: 0 };
        };
        if start >= next {
            let gap = start - next;
            if gap <= GAP_FILL {
                Cursor { zeros: gap, restart: None, pos: 0 }
            } else {
                // Complete the partial chunk with the gap's silence, then start over.
                let pad = if self.filled == 0 { 0 } else { (CHUNK - self.filled) as u64 };
                Cursor { zeros: pad, restart: Some(start), pos: 0 }
            }
        } else {
            let overlap = (next - start).min(len as u64) as usize;
            Cursor { zeros: 0, restart: None, pos: overlap }
        }
    }

    /// Moves input from the frame into the chunk until the chunk is full (true: run the
    /// model, then [`VadStream::accept`]) or the frame is used up (false).
    pub(super) fn advance<S: Sample>(&mut self, cursor: &mut Cursor, samples: &[S]) -> bool {
        loop {
            if self.filled == CHUNK {
                return true;
            }
            if cursor.zeros > 0 {
                let take = (CHUNK - self.filled).min(cursor.zeros.min(CHUNK as u64) as usize);
                self.chunk[self.filled..self.filled + take].fill(0.0);
                self.filled += take;
                cursor.zeros -= take as u64;
            } else if let Some(at) = cursor.restart.take() {
                self.end_run();
                self.chunk_start = Some(at);
            } else if cursor.pos < samples.len() {
                let take = (CHUNK - self.filled).min(samples.len() - cursor.pos);
                let from = &samples[cursor.pos..cursor.pos + take];
                for (to, &s) in self.chunk[self.filled..self.filled + take].iter_mut().zip(from) {
                    *to = s.to_unit();
                }
                self.filled += take;
                cursor.pos += take;
            } else {
                return false;
            }
        }
    }

    /// Takes the model's verdict on the chunk (its new state already in `self.state`): the
    /// first `self.filled` samples go to the segmenter and the chunk is emptied.
    pub(super) fn accept(&mut self, prob: f32) {
        let Some(at) = self.chunk_start else { return };
        let real = self.filled;
        self.last_prob = Some(prob);
        self.segmenter.push(at, prob, &self.chunk[..real]);
        self.context.copy_from_slice(&self.chunk[CHUNK - CONTEXT..]);
        self.chunk_start = Some(at.saturating_add(real as u64));
        self.filled = 0;
    }

    /// Ends the run: flushes the segmenter and forgets the model state. Samples of a
    /// partial chunk still waiting are dropped (the model runs them first, in
    /// [`SileroModel::finish`](super::SileroModel::finish)).
    pub(super) fn end_run(&mut self) {
        self.segmenter.finish();
        self.state = [0.0; STATE];
        self.context = [0.0; CONTEXT];
        self.filled = 0;
        self.chunk_start = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> VadStream {
        VadStream::new(&VadSettings::default()).unwrap()
    }

    /// Runs a frame through the chunker with a fake model (probability 0.9 for chunks with
    /// any sound); returns the chunks' (start, samples) as the segmenter saw them.
    fn push(s: &mut VadStream, start: u64, samples: &[i16], seen: &mut Vec<(u64, Vec<f32>)>) {
        let mut cursor = s.begin(start, samples.len());
        while s.advance(&mut cursor, samples) {
            seen.push((s.chunk_start.unwrap(), s.chunk[..s.filled].to_vec()));
            let prob = if s.chunk.iter().any(|&x| x != 0.0) { 0.9 } else { 0.0 };
            s.accept(prob);
        }
    }

    #[test]
    fn frames_of_any_size_become_exact_chunks_with_their_times() {
        let mut s = stream();
        let mut seen = Vec::new();
        let input: Vec<i16> = (1..=5_000).map(|i| i as i16).collect();
        let mut t = 320;
        for piece in input.chunks(333) {
            push(&mut s, t, piece, &mut seen);
            t += piece.len() as u64;
        }
        assert_eq!(seen.len(), 5_000 / CHUNK);
        for (i, (at, chunk)) in seen.iter().enumerate() {
            assert_eq!(*at, 320 + (i * CHUNK) as u64);
            assert_eq!(chunk[0], input[i * CHUNK] as f32 / 32_768.0);
        }
        assert_eq!(s.position(), Some(5_320));
        assert_eq!(s.context[CONTEXT - 1], input[seen.len() * CHUNK - 1] as f32 / 32_768.0);
    }

    #[test]
    fn short_gaps_are_silence_long_gaps_start_a_new_run_and_repeats_are_skipped() {
        let mut s = stream();
        let mut seen = Vec::new();
        push(&mut s, 0, &[1; 300], &mut seen);
        // 100 samples late: filled with silence.
        push(&mut s, 400, &[2; 300], &mut seen);
        assert_eq!(seen.len(), 1);
        assert_eq!(&seen[0].1[..300], &[1.0 / 32_768.0; 300][..]);
        assert_eq!(&seen[0].1[300..400], &[0.0; 100][..]);
        assert_eq!(seen[0].1[400], 2.0 / 32_768.0);
        assert_eq!(s.position(), Some(700));
        // A repeat of samples already taken: only the new part counts.
        push(&mut s, 600, &[3; 200], &mut seen);
        assert_eq!(s.position(), Some(800));
        // Two seconds late: the partial chunk is completed with silence, then a new run.
        s.state[0] = 1.0;
        push(&mut s, 800 + 32_000, &[4; 10], &mut seen);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].0, 512);
        assert_eq!(&seen[1].1[800 - 512..], &[0.0; 1_024 - 800][..]);
        assert_eq!(s.position(), Some(32_810));
        assert_eq!(s.state[0], 0.0, "the model state starts over");
    }

    #[test]
    fn odd_samples_do_not_panic() {
        let mut s = stream();
        let mut cursor = s.begin(0, 4);
        let odd = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 7.0];
        assert!(!s.advance(&mut cursor, &odd));
        assert_eq!(&s.chunk[..4], &[0.0, 1.0, -1.0, 1.0]);
        // A jump to the end of time: the partial chunk is completed, then a new run.
        for (start, samples) in [(u64::MAX - 2, &[0.5f32; 0][..]), (u64::MAX - 2, &[0.5; 1_000][..])] {
            let mut cursor = s.begin(start, samples.len());
            while s.advance(&mut cursor, samples) {
                s.accept(0.9);
            }
        }
        assert_eq!(s.position(), Some(u64::MAX));
    }

    #[test]
    fn an_idle_stream_is_small() {
        let s = stream();
        eprintln!("idle VadStream: {} bytes ({} inline)", s.memory_bytes(), size_of::<VadStream>());
        assert!(s.memory_bytes() < 12 * 1024, "{} bytes", s.memory_bytes());
    }
}
