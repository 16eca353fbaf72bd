//! A speaker's recording: 16 kHz mono 16-bit WAV, kept in time with the call (gaps in the
//! media become silence, so every speaker's file starts at the call's start and seeking to a
//! transcript time lands on the right audio).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::call::SAMPLE_RATE;

/// Longest silence filled in at once (a media gap beyond it is clamped: the recording then
/// drifts rather than growing without bound on a bogus timestamp).
const MAX_GAP_SAMPLES: u64 = SAMPLE_RATE as u64 * 60;

pub struct Recorder {
    wav: hound::WavWriter<BufWriter<File>>,
    /// Samples written so far, silence included.
    written: u64,
}

fn io(error: hound::Error) -> std::io::Error {
    match error {
        hound::Error::IoError(e) => e,
        other => std::io::Error::other(other),
    }
}

impl Recorder {
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(Recorder { wav: hound::WavWriter::create(path, spec).map_err(io)?, written: 0 })
    }

    /// Writes `samples` whose first one belongs `start_ms` into the call.
    pub fn write(&mut self, start_ms: u64, samples: &[i16]) -> std::io::Result<()> {
        let start = start_ms * SAMPLE_RATE as u64 / 1000;
        let gap = start.saturating_sub(self.written).min(MAX_GAP_SAMPLES);
        for _ in 0..gap {
            self.wav.write_sample(0i16).map_err(io)?;
        }
        self.written += gap;
        // Audio that overlaps what is already written (a late frame) is skipped.
        let overlap = (self.written.saturating_sub(start) as usize).min(samples.len());
        for &sample in &samples[overlap..] {
            self.wav.write_sample(sample).map_err(io)?;
        }
        self.written += (samples.len() - overlap) as u64;
        Ok(())
    }

    /// Completes the file; returns its length in seconds.
    pub fn finish(self) -> std::io::Result<f64> {
        let secs = self.written as f64 / SAMPLE_RATE as f64;
        self.wav.finalize().map_err(io)?;
        Ok(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_become_silence_and_overlaps_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.wav");
        let mut r = Recorder::create(&path).unwrap();
        r.write(0, &[1; 320]).unwrap(); // 0–20 ms
        r.write(40, &[2; 320]).unwrap(); // 40–60 ms, after a 20 ms gap
        r.write(50, &[3; 320]).unwrap(); // overlaps 50–60 ms, then 60–70 ms
        assert_eq!(r.finish().unwrap(), 1120.0 / 16000.0);
        let samples: Vec<i16> = hound::WavReader::open(&path).unwrap().samples().map(Result::unwrap).collect();
        assert_eq!(samples.len(), 1120);
        assert!(samples[..320].iter().all(|&s| s == 1));
        assert!(samples[320..640].iter().all(|&s| s == 0));
        assert!(samples[640..960].iter().all(|&s| s == 2));
        assert!(samples[960..].iter().all(|&s| s == 3));
    }
}
