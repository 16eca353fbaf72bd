//! Streaming conversion of one speaker's audio to [`SAMPLE_RATE`] (16 kHz) mono.
//!
//! Recognition accuracy depends on a clean 8 → 16 kHz (G.711) and 48 → 16 kHz (Opus)
//! conversion, so this uses `rubato`'s synchronous FFT resampler (band-limited, the quality
//! of a long sinc filter at a fraction of its cost) on fixed 20 ms input chunks.
//! Input of any length is buffered until a chunk is full; the resampler's own delay is cut
//! from the front of the output, so output sample `k` lies exactly at input time
//! `k / SAMPLE_RATE`, and [`Resampler::flush`] ends a run with exactly
//! `input × 16 000 / rate` samples in total, then starts the next run from a clean state.
//! One instance per stream: the filter state carries over between chunks.

use super::SAMPLE_RATE;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _};
use thiserror::Error;

/// Input chunk length: 20 ms, one G.711 packet.
const CHUNK_MS: usize = 20;

#[derive(Debug, Error)]
pub enum ResampleError {
    #[error("cannot resample from {rate} Hz: {reason}")]
    Construction { rate: u32, reason: String },
    #[error("resampler: {0}")]
    Process(String),
}

/// A resampler from one fixed input rate to 16 kHz (a plain copy at 16 kHz).
pub struct Resampler {
    input_rate: u32,
    inner: Option<Fft<f32>>,
    chunk: usize,
    /// Input waiting for a full chunk.
    pending: Vec<f32>,
    scratch: Vec<f32>,
    /// Output frames still to cut from the front (the resampler's delay).
    skip: usize,
    /// Input frames taken and output frames given in this run, for an exact flush.
    taken: u64,
    given: u64,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler").field("input_rate", &self.input_rate).field("pending", &self.pending.len()).finish()
    }
}

impl Resampler {
    pub fn new(input_rate: u32) -> Result<Resampler, ResampleError> {
        let chunk = (input_rate as usize * CHUNK_MS / 1000).max(1);
        let inner = if input_rate == SAMPLE_RATE {
            None
        } else {
            let fft = Fft::new(input_rate as usize, SAMPLE_RATE as usize, chunk, 1, FixedSync::Both)
                .map_err(|e| ResampleError::Construction { rate: input_rate, reason: e.to_string() })?;
            Some(fft)
        };
        let mut r = Resampler {
            input_rate,
            chunk: inner.as_ref().map_or(chunk, |f| f.input_frames_next()),
            skip: 0,
            inner,
            pending: Vec::new(),
            scratch: Vec::new(),
            taken: 0,
            given: 0,
        };
        r.skip = r.delay();
        Ok(r)
    }

    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }

    /// The resampler's delay in output samples: how much input it holds back before the
    /// corresponding output appears (10 ms from 8 kHz). Input still waiting for a full
    /// chunk adds up to one chunk (20 ms) on top.
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |f| f.output_delay())
    }

    /// Takes samples (at the input rate, nominally -1.0..=1.0) and appends to `out` all the
    /// 16 kHz output they complete.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), ResampleError> {
        self.taken += input.len() as u64;
        if self.inner.is_none() {
            out.extend_from_slice(input);
            self.given += input.len() as u64;
            return Ok(());
        }
        self.pending.extend_from_slice(input);
        let mut start = 0;
        while self.pending.len() - start >= self.chunk {
            self.run_chunk(start, None, out)?;
            start += self.chunk;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Ends the run: pushes the held-back input through with silence after it, so that the
    /// run's output totals exactly `input × 16 000 / rate` samples, then resets the state
    /// for a new run (after a gap in the stream, or at its end).
    pub fn flush(&mut self, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let target = self.taken * u64::from(SAMPLE_RATE) / u64::from(self.input_rate.max(1));
        if self.inner.is_some() {
            let keep = out.len() + target.saturating_sub(self.given) as usize;
            let mut partial = self.pending.len();
            // Each round yields at least a chunk of output; the delay is a few chunks at most.
            for _ in 0..64 {
                if self.given >= target {
                    break;
                }
                self.pending.resize(self.chunk, 0.0);
                self.run_chunk(0, Some(partial), out)?;
                partial = 0;
            }
            out.truncate(keep);
        }
        self.pending.clear();
        if let Some(inner) = self.inner.as_mut() {
            inner.reset();
        }
        self.skip = self.delay();
        self.taken = 0;
        self.given = 0;
        Ok(())
    }

    fn run_chunk(&mut self, start: usize, partial: Option<usize>, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let Some(inner) = self.inner.as_mut() else { return Ok(()) };
        let frames_out = inner.output_frames_next();
        self.scratch.resize(frames_out, 0.0);
        let input = InterleavedSlice::new(&self.pending[start..start + self.chunk], 1, self.chunk)
            .map_err(|e| ResampleError::Process(e.to_string()))?;
        let mut output = InterleavedSlice::new_mut(&mut self.scratch[..], 1, frames_out)
            .map_err(|e| ResampleError::Process(e.to_string()))?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (_, written) = inner
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| ResampleError::Process(e.to_string()))?;
        let cut = self.skip.min(written);
        self.skip -= cut;
        out.extend_from_slice(&self.scratch[cut..written]);
        self.given += (written - cut) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    fn sine(freq: f32, rate: u32, n: usize, amplitude: f32) -> Vec<f32> {
        (0..n).map(|i| amplitude * (2.0 * PI * freq * i as f32 / rate as f32).sin()).collect()
    }

    /// Signal-to-noise ratio of `got` against `want`, in dB.
    fn snr_db(got: &[f32], want: &[f32]) -> f32 {
        let signal: f32 = want.iter().map(|x| x * x).sum();
        let noise: f32 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
        10.0 * (signal / noise.max(1e-20)).log10()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn upsamples_8k_to_16k_keeping_frequency_level_and_alignment() {
        let input = sine(1000.0, 8_000, 8_000, 0.5);
        let mut r = Resampler::new(8_000).unwrap();
        assert_eq!(r.delay(), 160, "10 ms at 16 kHz");
        let mut out = Vec::new();
        // Odd pieces, as packets of any size would come.
        for piece in input.chunks(37) {
            r.process(piece, &mut out).unwrap();
            // Latency: never more than the delay plus one chunk behind the input.
            assert!(out.len() as u64 + 160 + 320 >= 2 * r.taken);
        }
        let before_flush = out.len();
        r.flush(&mut out).unwrap();
        assert_eq!(out.len(), 16_000, "exactly twice the input");
        assert!(before_flush >= 16_000 - 160 - 320);
        // Same frequency, level and phase as the ideal 16 kHz sine (edges excluded).
        let ideal = sine(1000.0, 16_000, 16_000, 0.5);
        let snr = snr_db(&out[400..15_600], &ideal[400..15_600]);
        let level = rms(&out[400..15_600]) / rms(&ideal[400..15_600]);
        eprintln!("1 kHz 8 -> 16 kHz: SNR {snr:.1} dB against the ideal sine, level ratio {level:.4}");
        assert!(snr > 40.0, "SNR {snr:.1} dB");
        assert!((level - 1.0).abs() < 0.01, "level ratio {level}");
    }

    #[test]
    fn downsamples_48k_to_16k_and_removes_what_16k_cannot_hold() {
        let wanted = sine(1000.0, 48_000, 48_000, 0.4);
        let alias = sine(11_000.0, 48_000, 48_000, 0.4);
        let input: Vec<f32> = wanted.iter().zip(&alias).map(|(a, b)| a + b).collect();
        let mut r = Resampler::new(48_000).unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(960) {
            r.process(piece, &mut out).unwrap();
        }
        r.flush(&mut out).unwrap();
        assert_eq!(out.len(), 16_000);
        let ideal = sine(1000.0, 16_000, 16_000, 0.4);
        let snr = snr_db(&out[400..15_600], &ideal[400..15_600]);
        eprintln!("1 kHz + 11 kHz 48 -> 16 kHz: SNR {snr:.1} dB against the 1 kHz sine alone");
        assert!(snr > 30.0, "11 kHz must not fold into the band: SNR {snr:.1} dB");
    }

    #[test]
    fn flush_resets_for_a_new_run() {
        let input = sine(440.0, 8_000, 1_234, 0.3);
        let mut r = Resampler::new(8_000).unwrap();
        let (mut first, mut second) = (Vec::new(), Vec::new());
        r.process(&input, &mut first).unwrap();
        r.flush(&mut first).unwrap();
        r.process(&input, &mut second).unwrap();
        r.flush(&mut second).unwrap();
        assert_eq!(first.len(), 2_468);
        assert_eq!(first, second, "no state leaks from one run into the next");
        let mut empty = Vec::new();
        r.flush(&mut empty).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn sixteen_k_passes_through() {
        let mut r = Resampler::new(16_000).unwrap();
        let mut out = Vec::new();
        r.process(&[0.1, 0.2, 0.3], &mut out).unwrap();
        r.flush(&mut out).unwrap();
        assert_eq!(out, vec![0.1, 0.2, 0.3]);
        assert_eq!(r.delay(), 0);
    }
}
