//! Wires the stages together: loads the store, the sites and their bots, serves the HTTP
//! router, and on shutdown stops accepting, closes sockets (1001), ends live sessions as
//! `interrupted` and waits until they are persisted.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chat::bot::{Bot, Faq, FaqError, DEFAULT_FAQ};
use crate::clock::Clock;
use crate::config::Config;
use crate::session::actor;
use crate::session::core::Timing;
use crate::session::origin::{GeoIpError, Origin};
use crate::session::Registry;
use crate::store::{Store, StoreError, Writer};

/// Everything the routes and sockets share.
pub struct App {
    pub config: Config,
    pub clock: Clock,
    pub registry: Arc<Registry>,
    pub store: Store,
    pub writer: Writer,
    /// What each session's owner task needs.
    pub sessions: actor::Context,
    pub sites: HashMap<String, Site>,
    pub origin: Origin,
    pub metrics: PrometheusHandle,
    /// Cancelled when the server begins to shut down.
    pub shutdown: CancellationToken,
    /// Tasks that own a call (SIP media, streaming sockets, AudioSocket connections): shutdown
    /// waits for them to finish their calls before ending the remaining sessions.
    pub calls: TaskTracker,
    /// Streamed calls by call id, with those waiting for a reconnect.
    pub streams: crate::ingest::stream::Streams,
    /// Turns finished calls' recordings into Ogg Opus, one at a time.
    pub transcoder: crate::ingest::recording::Transcoder,
    /// The speech stage calls are transcribed by (`None` when `speech.enabled` is off).
    pub speech: Option<Arc<crate::speech::live::Engine>>,
    /// The rules stage: alerts, SLA clocks, automations.
    pub rules: crate::rules::stage::Rules,
    /// Sends finished sessions' webhooks from the outbox; `wake()` it after queuing some.
    pub webhooks: crate::webhooks::Webhooks,
    /// Each tenant's post-call analysis settings.
    pub analysis: crate::analysis::Settings,
}

/// A site that may embed the widget.
pub struct Site {
    pub tenant: String,
    pub bot: Arc<Bot>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    #[error("{path}: {source}")]
    Faq { path: String, source: FaqError },
    #[error("cannot read {path}: {source}")]
    FaqRead { path: String, source: std::io::Error },
    #[error("HTTP address {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Sip(#[from] crate::ingest::sip::SipError),
    #[error("AudioSocket address {addr}: {source}")]
    AudioSocket { addr: String, source: std::io::Error },
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Speech(#[from] crate::speech::SpeechError),
    #[error(transparent)]
    Privacy(#[from] crate::privacy::PatternError),
    #[error("rules from {source_name}: {errors}")]
    Rules { source_name: String, errors: String },
}

impl App {
    pub async fn new(config: Config, clock: Clock) -> Result<Arc<App>, StartError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
        let metrics = crate::metrics::install();
        let store = Store::connect(&config.database_url(), config.database.max_connections).await?;
        let source = crate::api::auth::bootstrap_admin(&store, &config, clock.now().wall).await?;
        tracing::info!(from = %source, "admin token installed");
        let writer = store.spawn_writer();
        let faq = load_faq(&config.chat.faq)?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("hark/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("TLS backend");
        let sites = config
            .sites
            .iter()
            .map(|s| (s.key.clone(), Site { tenant: s.tenant.clone(), bot: Arc::new(Bot::for_site(s, &faq, &client)) }))
            .collect();
        let origin =
            Origin::new(&config.http.geoip_db, config.http.trusted_proxies.clone(), &config.http.country_header)?;
        let registry = Registry::new();
        let timing = Timing {
            idle_timeout: Duration::from_secs(config.chat.idle_timeout_secs),
            release_grace: Duration::from_secs(config.supervise.release_grace_secs),
        };
        let rules = crate::rules::stage::Rules::start(
            load_rules(&config.rules, &store).await?,
            crate::rules::stage::StageContext {
                registry: registry.clone(),
                writer: writer.clone(),
                clock: clock.clone(),
                http: client.clone(),
            },
        );
        let analysis = crate::analysis::Settings::load(&store).await?;
        let redactor = crate::privacy::Redactor::new(&config.privacy)?;
        let directory = crate::org::Directory::load(&store).await?;
        let shutdown = CancellationToken::new();
        let webhooks =
            crate::webhooks::Webhooks::start(store.clone(), &config.webhooks, clock.clone(), shutdown.clone());
        let finalizer = crate::finalize::Finalizer::start(crate::finalize::FinalizeContext {
            store: store.clone(),
            directory: directory.clone(),
            clock: clock.clone(),
            webhooks: webhooks.clone(),
            analysis: analysis.clone(),
            zone: config.reports.timezone.clone(),
            monthly_quota: config.usage.monthly_quota,
        });
        let sessions = actor::Context {
            directory,
            finalizer,
            registry: registry.clone(),
            writer: writer.clone(),
            clock: clock.clone(),
            timing,
            rules: rules.clone(),
            redactor: Arc::new(redactor),
        };
        let speech = match config.speech.enabled {
            true => Some(Arc::new(crate::speech::live::Engine::start(&config.speech)?)),
            false => None,
        };
        Ok(Arc::new(App {
            speech,
            rules,
            webhooks,
            analysis,
            transcoder: crate::ingest::recording::Transcoder::start(&config.data_dir, writer.clone()),
            calls: TaskTracker::new(),
            streams: crate::ingest::stream::Streams::new(Duration::from_secs(config.streams.reconnect_grace_secs)),
            config,
            clock,
            registry,
            store,
            writer,
            sessions,
            sites,
            origin,
            metrics,
            shutdown,
        }))
    }
}

/// The rule set saved through REST, else `rules.file`, else the embedded default, as an engine.
async fn load_rules(
    settings: &crate::config::RulesSettings,
    store: &Store,
) -> Result<crate::rules::RulesEngine, StartError> {
    use crate::rules::{RulesConfig, RulesEngine};
    let fail = |source_name: &str, errors: Vec<crate::rules::FieldError>| StartError::Rules {
        source_name: source_name.into(),
        errors: errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
    };
    let (source_name, parsed) = if let Some(json) = store.rules_config().await? {
        ("the database (saved through /v1/rules)".to_string(), RulesConfig::from_json(&json))
    } else if settings.file.is_empty() {
        ("config/rules.toml (embedded)".to_string(), RulesConfig::from_toml(crate::rules::stage::DEFAULT_RULES))
    } else {
        let text = std::fs::read_to_string(&settings.file)
            .map_err(|e| fail(&settings.file, vec![crate::rules::FieldError::new("", e.to_string())]))?;
        (settings.file.clone(), RulesConfig::from_toml(&text))
    };
    let config = parsed.map_err(|e| fail(&source_name, vec![e]))?;
    RulesEngine::new(config).map_err(|errors| fail(&source_name, errors))
}

fn load_faq(path: &str) -> Result<Faq, StartError> {
    if path.is_empty() {
        return Faq::parse(DEFAULT_FAQ)
            .map_err(|source| StartError::Faq { path: "config/faq.toml (embedded)".into(), source });
    }
    let text = std::fs::read_to_string(path).map_err(|source| StartError::FaqRead { path: path.into(), source })?;
    Faq::parse(&text).map_err(|source| StartError::Faq { path: path.into(), source })
}

/// How long shutdown waits for calls to hang up and close their recordings.
const CALLS_SHUTDOWN: Duration = Duration::from_secs(60);

/// How long shutdown waits for finished calls' recordings to be transcoded.
const TRANSCODE_SHUTDOWN: Duration = Duration::from_secs(30);

/// Pending connections the kernel queues; a burst of widgets reconnecting after a restart must
/// not overflow it (the default of 128 drops SYNs and costs a 1 s retry).
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Runs the server until `signal` completes, then shuts down gracefully.
pub async fn serve(config: Config, signal: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
    let addr = config.http.addr;
    let app = App::new(config, Clock::System).await?;
    let listener = listen(addr).map_err(|source| StartError::Bind { addr, source })?;
    tracing::info!(addr = %listener.local_addr().map_err(StartError::Serve)?, "hark is listening");
    let shutdown = app.shutdown.clone();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    let upkeep = app.metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    crate::ingest::sip::start(app.clone()).await?;
    crate::ingest::audiosocket::start(app.clone()).await?;
    crate::ingest::recording::start_retention(app.clone());
    let router = crate::api::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    // Sockets carry many small frames (acks, cards): send each at once.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(app.shutdown.clone().cancelled_owned())
        .await
        .map_err(StartError::Serve)?;
    app.webhooks.drain().await;
    app.calls.close();
    if tokio::time::timeout(CALLS_SHUTDOWN, app.calls.wait()).await.is_err() {
        tracing::warn!("calls did not finish within {} s; ending their sessions anyway", CALLS_SHUTDOWN.as_secs());
    }
    if tokio::time::timeout(TRANSCODE_SHUTDOWN, app.transcoder.drain()).await.is_err() {
        tracing::warn!("recordings still queued for transcoding keep their WAV");
    }
    let live = app.registry.len();
    app.registry.shutdown_all().await;
    app.writer.flush().await;
    tracing::info!(interrupted = live, "live sessions persisted; stopped");
    Ok(())
}
