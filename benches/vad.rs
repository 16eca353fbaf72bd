//! Cost of the VAD per 32 ms chunk: does running many streams' chunks in one Silero call
//! (the batch dimension) pay on this CPU? The same 32 streams run with at most 1, 8 or 32
//! chunks per model call; a single stream alone is the baseline, and the segmenter (pure
//! core) alone shows what the model's share is. Throughput is in chunks: divide 1 by it for
//! the cost of one stream's 32 ms.
//!
//! Needs the model files (`hark models fetch`, or `HARK_SPEECH_MODELS_DIR`).
//!
//! `CARGO_TARGET_DIR=/work/speech-target nice -n 19 cargo bench --bench vad -- --warm-up-time 1
//! --measurement-time 5` on the 2-core build machine (ONNX Runtime 1.32, one intra-op thread;
//! other builds were running, so the second run is slower throughout), per 32 ms chunk:
//!
//! | streams, chunks per call | run 1 | run 2 |
//! |---|---|---|
//! | 1 stream, 1 | 105 µs | 165 µs |
//! | 32 streams, 1 per call | 107 µs | 176 µs |
//! | 32 streams, 8 per call | 62 µs | 97 µs |
//! | 32 streams, 32 per call | 66 µs | 95 µs |
//! | segmenter alone | 1.4 µs | 2.2 µs |
//!
//! Batching pays: 1.7-1.8 times fewer CPU seconds per chunk from 8 streams per call on
//! (8 and 32 are level), about 500 live streams per core against about 300 unbatched.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hark::speech::vad::{Frame, Segmenter, SileroModel, VadSettings, VadStream};

const CHUNK: usize = 512;

fn speech() -> Vec<i16> {
    let fixtures = std::env::var_os("HARK_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    let path = fixtures.join("audio/jfk_ask_not.wav");
    let reader = hound::WavReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader.into_samples::<i16>().map(Result::unwrap).collect()
}

fn model(max_batch: usize) -> SileroModel {
    let dir = std::env::var_os("HARK_SPEECH_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    SileroModel::from_dir(&dir)
        .unwrap_or_else(|e| panic!("{e} (models from {}; `hark models fetch` gets them)", dir.display()))
        .with_max_batch(max_batch)
}

fn bench(c: &mut Criterion) {
    let speech = speech();
    let chunks = speech.len() / CHUNK;
    let mut group = c.benchmark_group("vad_chunk");
    for (streams, max_batch) in [(1, 1), (32, 1), (32, 8), (32, 32)] {
        let mut model = model(max_batch);
        let mut states: Vec<VadStream> =
            (0..streams).map(|_| VadStream::new(&VadSettings::default()).unwrap()).collect();
        let mut i = 0usize;
        group.throughput(Throughput::Elements(streams as u64));
        let id = BenchmarkId::new(format!("{streams}_streams"), format!("batch_{max_batch}"));
        group.bench_function(id, |b| {
            b.iter(|| {
                let mut frames: Vec<Frame<'_, i16>> = states
                    .iter_mut()
                    .enumerate()
                    .map(|(k, stream)| {
                        // Each stream at its own place in the speech.
                        let c = (i + k * 7) % chunks;
                        Frame { stream, start: (i * CHUNK) as u64, samples: &speech[c * CHUNK..(c + 1) * CHUNK] }
                    })
                    .collect();
                model.push_batch(&mut frames).unwrap();
                for stream in states.iter_mut() {
                    while let Some(event) = stream.poll_event() {
                        black_box(event);
                    }
                }
                i += 1;
            })
        });
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function("segmenter_only", |b| {
        let mut seg = Segmenter::new(&VadSettings::default()).unwrap();
        let floats: Vec<f32> = speech.iter().map(|&s| f32::from(s) / 32_768.0).collect();
        let mut i = 0usize;
        b.iter(|| {
            let c = i % chunks;
            // Speech for 2 s, silence for 1 s: utterances start, grow and end.
            let prob = if i % 94 < 62 { 0.9 } else { 0.1 };
            seg.push((i * CHUNK) as u64, prob, &floats[c * CHUNK..(c + 1) * CHUNK]);
            while let Some(event) = seg.poll_event() {
                black_box(event);
            }
            i += 1;
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
