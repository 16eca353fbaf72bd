//! Settings: `config/default.toml` embedded in the binary, an optional file layered over it, then
//! `HARK_*` environment variables over both. One loader, so every setting has one name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Value;

/// The defaults, documented setting by setting.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub admin_token: String,
    pub admin_tenant: String,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub chat: ChatConfig,
    pub supervise: SuperviseConfig,
    pub sip: SipConfig,
    pub streams: StreamsConfig,
    pub audiosocket: AudioSocketConfig,
    pub recordings: RecordingsConfig,
    pub uploads: UploadsConfig,
    pub reports: ReportsConfig,
    pub usage: UsageConfig,
    pub speech: crate::speech::SpeechConfig,
    pub rules: RulesSettings,
    pub privacy: crate::privacy::PrivacySettings,
    pub webhooks: WebhooksConfig,
    pub sites: Vec<SiteConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSettings {
    pub file: String,
}

/// Webhooks for finished sessions: the retry schedule and the sender's limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Wait after the first failed attempt; each further failure doubles it.
    pub retry_base_secs: f64,
    /// Longest wait between attempts.
    pub retry_max_secs: f64,
    /// A delivery is given up this long after it was queued (at least 24).
    pub give_up_after_hours: u64,
    /// Longest one attempt may take, connection to answer.
    pub timeout_secs: u64,
    /// Attempts in flight at once, all endpoints together.
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub addr: String,
    pub allow: Vec<ipnet::IpNet>,
    pub tenant: String,
    pub max_calls: usize,
    pub codecs: Vec<String>,
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    pub media_ip: String,
    pub media_timeout_secs: u64,
    pub answer_delay_ms: u64,
    pub digest_user: String,
    pub digest_password: String,
    pub digest_realm: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsConfig {
    pub tenant: String,
    pub reconnect_grace_secs: u64,
    pub start_timeout_secs: u64,
    pub media_timeout_secs: u64,
    pub max_frame_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSocketConfig {
    pub addr: String,
    pub allow: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingsConfig {
    /// Days a call's recordings are kept after it ended; 0 keeps them forever.
    pub retention_days: u32,
}

/// `POST /v1/uploads`: recorded calls through the same pipeline as live ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadsConfig {
    /// Largest request body (all its files and fields), in bytes; larger gets 413.
    pub max_request_bytes: usize,
    /// Most files in one request; more gets 400.
    pub max_files: usize,
    /// Uploaded files transcribed at the same time; the others wait their turn.
    pub concurrent: usize,
    /// Most files accepted and not yet finished, all requests together; more gets 503.
    pub max_queued: usize,
}

/// Reports count days and hours in one time zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// The IANA time zone (`Europe/Berlin`) whose local days and hours the roll-ups use.
    #[serde(deserialize_with = "time_zone")]
    pub timezone: jiff::tz::TimeZone,
}

fn time_zone<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<jiff::tz::TimeZone, D::Error> {
    let name = String::deserialize(deserializer)?;
    jiff::tz::TimeZone::get(&name).map_err(|_| {
        serde::de::Error::custom(format!("unknown time zone {name:?} (use an IANA name such as Europe/Berlin)"))
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageConfig {
    /// Calls analysed per tenant and calendar month (in `reports.timezone`); 0: unlimited.
    pub monthly_quota: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub country_header: String,
    pub geoip_db: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    pub max_frame_bytes: usize,
    pub max_text_chars: usize,
    pub rate_per_sec: f64,
    pub rate_burst: u32,
    pub hello_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub faq: String,
    pub bot_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuperviseConfig {
    pub release_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    pub key: String,
    pub tenant: String,
    pub bot: BotKind,
    #[serde(default)]
    pub bot_url: String,
    #[serde(default = "default_bot_timeout_ms")]
    pub bot_timeout_ms: u64,
}

fn default_bot_timeout_ms() -> u64 {
    5000
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BotKind {
    Faq,
    Http,
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, |name| std::env::var(name).ok())
    }

    /// As [`Config::load`], reading variables through `env` (tests pass their own).
    pub fn load_with_env(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut tree = parse(DEFAULT_TOML, "config/default.toml")?;
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
            merge(&mut tree, parse(&text, &path.display().to_string())?);
        }
        apply_env(&mut tree, "HARK", &env)?;
        let config: Config =
            tree.try_into().map_err(|source| ConfigError::Parse { path: "settings".into(), source })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for site in &self.sites {
            if site.bot == BotKind::Http && site.bot_url.is_empty() {
                return Err(ConfigError::Invalid(format!("site {:?}: bot = \"http\" needs bot_url", site.key)));
            }
        }
        if self.sip.rtp_port_min > self.sip.rtp_port_max {
            return Err(ConfigError::Invalid("sip.rtp_port_min must not be above sip.rtp_port_max".into()));
        }
        if let Some(codec) = self.sip.codecs.iter().find(|c| crate::ingest::sip::sdp::codec_named(c).is_none()) {
            return Err(ConfigError::Invalid(format!("sip.codecs: unknown codec {codec:?} (PCMU, PCMA, opus)")));
        }
        if self.uploads.max_files == 0 || self.uploads.concurrent == 0 || self.uploads.max_queued == 0 {
            return Err(ConfigError::Invalid("uploads.max_files, concurrent and max_queued must be at least 1".into()));
        }
        if self.chat.rate_per_sec <= 0.0 || self.chat.rate_burst == 0 {
            return Err(ConfigError::Invalid("chat.rate_per_sec and chat.rate_burst must be > 0".into()));
        }
        let hooks = &self.webhooks;
        if !(hooks.retry_base_secs > 0.0 && hooks.retry_base_secs.is_finite()) {
            return Err(ConfigError::Invalid("webhooks.retry_base_secs must be > 0".into()));
        }
        if !(hooks.retry_max_secs >= hooks.retry_base_secs && hooks.retry_max_secs.is_finite()) {
            return Err(ConfigError::Invalid("webhooks.retry_max_secs must be at least retry_base_secs".into()));
        }
        if hooks.give_up_after_hours < 24 {
            return Err(ConfigError::Invalid("webhooks.give_up_after_hours must be at least 24".into()));
        }
        if hooks.timeout_secs == 0 || hooks.concurrency == 0 {
            return Err(ConfigError::Invalid("webhooks.timeout_secs and concurrency must be at least 1".into()));
        }
        Ok(())
    }

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.data_dir.join("hark.db").display())
        } else {
            self.database.url.clone()
        }
    }
}

fn parse(text: &str, path: &str) -> Result<Value, ConfigError> {
    toml::from_str(text).map_err(|source| ConfigError::Parse { path: path.into(), source })
}

/// Tables merge key by key; any other value (lists included) replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Table(base), Value::Table(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Overrides every leaf whose `PREFIX_PATH` variable is set, parsed as the leaf's own type.
fn apply_env(node: &mut Value, prefix: &str, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    match node {
        Value::Table(table) => {
            for (key, child) in table.iter_mut() {
                apply_env(child, &format!("{prefix}_{}", key.to_uppercase()), env)?;
            }
        }
        Value::Array(items) if items.iter().all(Value::is_table) && !items.is_empty() => {
            for (i, child) in items.iter_mut().enumerate() {
                apply_env(child, &format!("{prefix}_{i}"), env)?;
            }
        }
        leaf => {
            if let Some(raw) = env(prefix) {
                *leaf = env_value(leaf, &raw).map_err(|reason| ConfigError::Env { var: prefix.into(), reason })?;
            }
        }
    }
    Ok(())
}

fn env_value(like: &Value, raw: &str) -> Result<Value, String> {
    let bad = |e: &dyn std::fmt::Display| format!("{raw:?} is not a valid {}: {e}", like.type_str());
    Ok(match like {
        Value::Integer(_) => Value::Integer(raw.trim().parse().map_err(|e| bad(&e))?),
        Value::Float(_) => Value::Float(raw.trim().parse().map_err(|e| bad(&e))?),
        Value::Boolean(_) => Value::Boolean(raw.trim().parse().map_err(|e| bad(&e))?),
        Value::Array(_) => Value::Array(
            raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_string())).collect(),
        ),
        _ => Value::String(raw.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load_with_env(None, |name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_load_and_document_the_required_settings() {
        let c = load(&[]).unwrap();
        assert_eq!(c.http.addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(c.database_url().starts_with("sqlite://./data/hark.db"));
        assert_eq!(c.sites[0].key, "demo");
        assert_eq!(c.recordings.retention_days, 90);
        assert_eq!(c.reports.timezone.iana_name(), Some("UTC"));
        assert_eq!(c.usage.monthly_quota, 0);
    }

    #[test]
    fn the_reports_time_zone_is_checked_at_load() {
        let c = load(&[("HARK_REPORTS_TIMEZONE", "Europe/Berlin")]).unwrap();
        assert_eq!(c.reports.timezone.iana_name(), Some("Europe/Berlin"));
        let err = load(&[("HARK_REPORTS_TIMEZONE", "Mars/Olympus")]).unwrap_err().to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
    }

    #[test]
    fn environment_overrides_every_kind_of_leaf() {
        let c = load(&[
            ("HARK_HTTP_ADDR", "127.0.0.1:9999"),
            ("HARK_DATA_DIR", "/tmp/x"),
            ("HARK_ADMIN_TOKEN", "secret"),
            ("HARK_DATABASE_URL", "postgres://localhost/test"),
            ("HARK_CHAT_RATE_PER_SEC", "2.5"),
            ("HARK_CHAT_RATE_BURST", "3"),
            ("HARK_HTTP_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1/32"),
            ("HARK_SITES_0_KEY", "shop"),
        ])
        .unwrap();
        assert_eq!(c.http.addr.port(), 9999);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.admin_token, "secret");
        assert_eq!(c.database_url(), "postgres://localhost/test");
        assert_eq!(c.chat.rate_per_sec, 2.5);
        assert_eq!(c.chat.rate_burst, 3);
        assert_eq!(c.http.trusted_proxies.len(), 2);
        assert_eq!(c.sites[0].key, "shop");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = load(&[("HARK_CHAT_RATE_BURST", "lots")]).unwrap_err().to_string();
        assert!(err.contains("HARK_CHAT_RATE_BURST"), "{err}");
        let err = load(&[("HARK_HTTP_ADDR", "nowhere")]).unwrap_err().to_string();
        assert!(err.contains("addr"), "{err}");
    }

    #[test]
    fn webhook_retries_must_last_a_day() {
        let c = load(&[("HARK_WEBHOOKS_RETRY_BASE_SECS", "0.25")]).unwrap();
        assert_eq!((c.webhooks.retry_base_secs, c.webhooks.give_up_after_hours), (0.25, 72));
        let err = load(&[("HARK_WEBHOOKS_GIVE_UP_AFTER_HOURS", "23")]).unwrap_err().to_string();
        assert!(err.contains("give_up_after_hours"), "{err}");
        let err = load(&[("HARK_WEBHOOKS_RETRY_BASE_SECS", "0")]).unwrap_err().to_string();
        assert!(err.contains("retry_base_secs"), "{err}");
    }

    #[test]
    fn a_file_layers_over_the_defaults() {
        let dir = std::env::temp_dir().join(format!("hark-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hark.toml");
        std::fs::write(
            &file,
            "[chat]\nidle_timeout_secs = 5\n[[sites]]\nkey = \"a\"\ntenant = \"t\"\nbot = \"none\"\n",
        )
        .unwrap();
        let c = Config::load_with_env(Some(&file), |_| None).unwrap();
        assert_eq!(c.chat.idle_timeout_secs, 5);
        assert_eq!(c.chat.max_frame_bytes, 8192);
        assert_eq!(c.sites.len(), 1);
        assert_eq!(c.sites[0].bot, BotKind::None);
        std::fs::write(&file, "[chat]\nidle_timeout = 5\n").unwrap();
        let err = Config::load_with_env(Some(&file), |_| None).unwrap_err().to_string();
        assert!(err.contains("idle_timeout"), "{err}");
    }
}
