//! The Whisper model `hark models fetch` converts from CTranslate2 transcribes with whisper.cpp
//! exactly as Whisper does. Needs the fetched model (`make test` fetches it first).

use std::path::PathBuf;

use hark::speech::models::{self, Hparams, ModelPaths, MODELS_DIR_ENV, WHISPER_FILE};
use whisper_rs::{FullParams, SamplingStrategy};

/// `HARK_SPEECH_MODELS_DIR`, else `models/` of the repository.
fn models_dir() -> PathBuf {
    ModelPaths::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"))
        .with_env_override(std::env::var_os(MODELS_DIR_ENV))
        .models_dir
}

fn fixtures() -> PathBuf {
    std::env::var_os("HARK_FIXTURES")
        .map(Into::into)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"))
}

/// Lower case, letters, digits and single spaces only.
fn normalize(text: &str) -> String {
    let kept: String = text.chars().map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { ' ' }).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn converted_tiny_en_transcribes_jfk_exactly() {
    let path = models_dir().join(WHISPER_FILE);
    assert!(
        path.is_file(),
        "{} is missing: fetch the models first with `make models` (or `cargo run --bin hark -- models fetch`; \
         {MODELS_DIR_ENV} chooses another folder)",
        path.display()
    );

    let summary = models::inspect_ggml(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(summary.hparams, Hparams::TINY_EN);
    assert_eq!((summary.tensors, summary.vocab_tokens, summary.n_mel, summary.n_freq), (167, 50256, 80, 201));

    let ctx = models::load_whisper(&path).unwrap();
    let mut reader = hound::WavReader::open(fixtures().join("audio/jfk_ask_not.wav")).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels, spec.bits_per_sample), (16_000, 1, 16));
    let samples: Vec<f32> = reader.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect();

    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_language(Some("en"));
    params.set_n_threads(2);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    let mut state = ctx.create_state().unwrap();
    state.full(params, &samples).unwrap();
    let text: String = state.as_iter().map(|s| s.to_str_lossy().unwrap().into_owned()).collect();

    eprintln!("whisper.cpp heard: {text}");
    let expected = "And so my fellow Americans, ask not what your country can do for you, \
                    ask what you can do for your country.";
    assert_eq!(normalize(&text), normalize(expected), "whisper.cpp heard: {text:?}");
}

#[test]
fn normalize_ignores_case_and_punctuation() {
    assert_eq!(normalize(" And so, my fellow   Americans: ask-not!"), "and so my fellow americans ask not");
}
