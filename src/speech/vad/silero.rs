//! The Silero VAD v5/v6 model, run through ONNX Runtime for many streams at once.
//!
//! The model is small (about 2 MB) but an ONNX Runtime session is not, and each call into it
//! has a fixed cost; so a worker thread holds one [`SileroModel`] (one session) and runs the
//! chunks of all the streams it serves, batched along the model's batch dimension
//! ([`SileroModel::push_batch`]). Streams ([`VadStream`]) hold only their own state.
//!
//! ONNX Runtime is loaded at run time from `libonnxruntime.so` (the `load-dynamic` feature
//! of `ort`: nothing is downloaded at build time). Its environment is process-wide: the
//! first [`SileroModel::load`] loads the library and creates it, later ones share it.
//!
//! Model contract (Silero v5/v6 at 16 kHz): inputs `input` [batch, 64 + 512] float (the
//! previous chunk's last 64 samples, then the chunk), `state` [2, batch, 128] float,
//! `sr` int64 scalar; outputs the speech probability [batch, 1] and the new state.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

use super::stream::{Sample, VadStream, CHUNK, CONTEXT, STATE};
use super::VadError;

/// File name of the Silero VAD model in the models directory.
pub const SILERO_MODEL_FILE: &str = "silero_vad.onnx";
/// File name of the ONNX Runtime library in the models directory.
pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so";

/// Streams run in one model call at most. Batching pays on CPU (`benches/vad.rs`): a chunk
/// costs about 105 µs alone and 62-66 µs in batches of 8 or 32 on the 2-core build machine.
pub const DEFAULT_MAX_BATCH: usize = 32;

const ROW: usize = CONTEXT + CHUNK;
const HALF: usize = STATE / 2;

/// The process's ONNX Runtime environment (`ort` allows one per process, ever).
static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

fn environment(library: &Path) -> Result<Environment, VadError> {
    let mut env = ENVIRONMENT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(env) = env.as_ref() {
        return Ok(env.clone());
    }
    if !library.is_file() {
        return Err(VadError::MissingFile { what: "the ONNX Runtime library", path: library.to_path_buf() });
    }
    // `ort` would look for a relative path next to the executable first: make it absolute.
    let library = &std::fs::canonicalize(library).unwrap_or_else(|_| library.to_path_buf());
    let built = ort::init_from(library)
        .map_err(|source| VadError::Runtime { path: library.to_path_buf(), source })?
        .with_name("hark")
        .with_telemetry(false)
        .build()?;
    *env = Some(built.clone());
    Ok(built)
}

/// One stream's frame for [`SileroModel::push_batch`].
pub struct Frame<'a, S: Sample> {
    pub stream: &'a mut VadStream,
    /// Stream time of `samples[0]` in 16 kHz samples (`ms_to_samples(start_ms)`).
    pub start: u64,
    pub samples: &'a [S],
}

/// A Silero session and its batch buffers; one per worker thread.
pub struct SileroModel {
    session: Session,
    max_batch: usize,
    input: Vec<f32>,
    state: Vec<f32>,
    path: PathBuf,
}

impl std::fmt::Debug for SileroModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroModel").field("path", &self.path).field("max_batch", &self.max_batch).finish()
    }
}

impl SileroModel {
    /// Loads the model from `dir` ([`SILERO_MODEL_FILE`], with ONNX Runtime from
    /// [`ORT_LIBRARY_FILE`] there), as `hark models fetch` leaves them.
    pub fn from_dir(dir: &Path) -> Result<SileroModel, VadError> {
        SileroModel::load(&dir.join(ORT_LIBRARY_FILE), &dir.join(SILERO_MODEL_FILE))
    }

    /// Loads ONNX Runtime from `library` (the first load in the process wins; later paths
    /// are ignored) and the Silero model from `model`, on one thread: the worker's own.
    pub fn load(library: &Path, model: &Path) -> Result<SileroModel, VadError> {
        if !model.is_file() {
            return Err(VadError::MissingFile { what: "the Silero VAD model", path: model.to_path_buf() });
        }
        let env = environment(library)?;
        let invalid = |reason: String| VadError::Model { path: model.to_path_buf(), reason };
        let session = Session::builder(&env)?
            .with_intra_threads(1)
            .map_err(ort::Error::from)?
            .with_inter_threads(1)
            .map_err(ort::Error::from)?
            .commit_from_file(model)
            .map_err(|e| invalid(e.to_string()))?;
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if inputs.len() != 3 || !["input", "state", "sr"].iter().all(|n| inputs.contains(n)) {
            return Err(invalid(format!("inputs {inputs:?}, expected input, state and sr")));
        }
        if session.outputs().len() != 2 {
            return Err(invalid(format!("{} outputs, expected 2 (probability, state)", session.outputs().len())));
        }
        Ok(SileroModel {
            session,
            max_batch: DEFAULT_MAX_BATCH,
            input: Vec::new(),
            state: Vec::new(),
            path: model.to_path_buf(),
        })
    }

    /// Sets how many streams' chunks go into one model call at most (at least 1).
    pub fn with_max_batch(mut self, max_batch: usize) -> SileroModel {
        self.max_batch = max_batch.max(1);
        self
    }

    /// One stream's frame: runs every chunk it completes and feeds the stream's segmenter;
    /// drain [`VadStream::poll_event`] afterwards. `start` is the stream time of
    /// `samples[0]` in 16 kHz samples. On an error the rest of the frame is dropped; the
    /// stream stays usable (a completed chunk waits for the next call).
    pub fn push<S: Sample>(&mut self, stream: &mut VadStream, start: u64, samples: &[S]) -> Result<(), VadError> {
        self.push_batch(&mut [Frame { stream, start, samples }])
    }

    /// Frames of many streams (each stream at most once): their chunks run in lock-step,
    /// one model call for all the streams that have a chunk ready (up to the maximum
    /// batch), so 20 ms frames of 32 calls cost one call per 32 ms instead of 32.
    pub fn push_batch<S: Sample>(&mut self, frames: &mut [Frame<'_, S>]) -> Result<(), VadError> {
        let mut cursors: Vec<_> = frames.iter_mut().map(|f| f.stream.begin(f.start, f.samples.len())).collect();
        loop {
            let mut ready: Vec<&mut VadStream> = Vec::with_capacity(frames.len());
            for (frame, cursor) in frames.iter_mut().zip(cursors.iter_mut()) {
                if frame.stream.advance(cursor, frame.samples) {
                    ready.push(&mut *frame.stream);
                }
            }
            if ready.is_empty() {
                return Ok(());
            }
            for batch in ready.chunks_mut(self.max_batch) {
                self.run(batch)?;
            }
        }
    }

    /// Ends the stream's run (the end of the call, or before dropping the stream): the
    /// partial chunk still waiting runs (padded with silence), then the utterance in
    /// progress is emitted. The stream then takes a new run from any time.
    pub fn finish(&mut self, stream: &mut VadStream) -> Result<(), VadError> {
        let result = if stream.filled > 0 {
            let filled = stream.filled;
            stream.chunk[filled..].fill(0.0);
            self.run(&mut [&mut *stream])
        } else {
            Ok(())
        };
        stream.end_run();
        result
    }

    /// Runs one model call for these streams' chunks (each full, or padded with silence
    /// past `filled`) and hands each stream its probability.
    fn run(&mut self, streams: &mut [&mut VadStream]) -> Result<(), VadError> {
        let batch = streams.len();
        if batch == 0 {
            return Ok(());
        }
        self.input.clear();
        self.input.resize(batch * ROW, 0.0);
        self.state.clear();
        self.state.resize(batch * STATE, 0.0);
        for (i, s) in streams.iter().enumerate() {
            let row = &mut self.input[i * ROW..(i + 1) * ROW];
            row[..CONTEXT].copy_from_slice(&s.context);
            row[CONTEXT..].copy_from_slice(&s.chunk);
            // State layout [2, batch, 128]: layer-major.
            for layer in 0..2 {
                let at = (layer * batch + i) * HALF;
                self.state[at..at + HALF].copy_from_slice(&s.state[layer * HALF..(layer + 1) * HALF]);
            }
        }
        let sr = [crate::media::SAMPLE_RATE as i64];
        let outputs = self.session.run(ort::inputs![
            "input" => TensorRef::from_array_view(([batch, ROW], &self.input[..]))?,
            "state" => TensorRef::from_array_view(([2, batch, HALF], &self.state[..]))?,
            "sr" => TensorRef::from_array_view(((), &sr[..]))?,
        ])?;
        let (_, probs) = outputs[0].try_extract_tensor::<f32>()?;
        let (_, state) = outputs[1].try_extract_tensor::<f32>()?;
        if probs.len() != batch || state.len() != batch * STATE {
            return Err(VadError::Output(format!(
                "{} probabilities and {} state values for a batch of {batch}",
                probs.len(),
                state.len()
            )));
        }
        for (i, s) in streams.iter_mut().enumerate() {
            for layer in 0..2 {
                let at = (layer * batch + i) * HALF;
                s.state[layer * HALF..(layer + 1) * HALF].copy_from_slice(&state[at..at + HALF]);
            }
            s.accept(probs[i]);
        }
        Ok(())
    }
}
