//! Test harness: starts the real `hark` binary on a free port with its own data directory, and
//! talks to it with real WebSocket and HTTP clients. Every wait is bounded.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ADMIN: &str = "test-admin-token";
/// Longest wait for any one frame or the server's start.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    /// Starts hark with test defaults plus `env`.
    pub async fn start(env: &[(&str, &str)]) -> Server {
        let mut server = Server {
            child: None,
            port: free_port(),
            data_dir: tempfile::tempdir().unwrap(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hark"));
        command
            .arg("serve")
            .env("HARK_HTTP_ADDR", format!("127.0.0.1:{}", self.port))
            .env("HARK_DATA_DIR", self.data_dir.path())
            .env("HARK_ADMIN_TOKEN", ADMIN)
            .env("HARK_LOG_LEVEL", "warn")
            // No SIP or AudioSocket listener unless a test asks for one: servers run side by side.
            .env("HARK_SIP_ADDR", "")
            .env("HARK_AUDIOSOCKET_ADDR", "")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        self.child = Some(command.spawn().expect("hark binary starts"));
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(self.http("/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("hark exited during start: {status}");
            }
            assert!(tokio::time::Instant::now() < deadline, "hark did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Graceful stop (SIGTERM), waiting for the process to exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() {
                assert!(std::time::Instant::now() < deadline, "hark did not stop on SIGTERM");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(child.wait().unwrap().success(), "hark exits 0 after a graceful stop");
        }
    }

    /// Stops the process without any chance to clean up (SIGKILL).
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn ws(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = reqwest::Client::new().get(self.http(path)).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A new supervisor token (via the admin API).
    pub async fn token(&self, name: &str) -> String {
        let r = reqwest::Client::new()
            .post(self.http("/v1/tokens"))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.http("/metrics")).await.unwrap().text().await.unwrap()
    }

    /// A visitor that said hello on a new chat of the demo site.
    pub async fn visitor(&self) -> (Ws, Value) {
        let mut ws = Ws::connect(&self.ws("/v1/chat"), &[]).await;
        ws.send(json!({"type": "hello", "site_key": "demo"})).await;
        let welcome = ws.recv_type("welcome").await;
        (ws, welcome)
    }

    /// A supervisor connected with `token`, past its snapshot.
    pub async fn supervisor(&self, token: &str) -> (Ws, Value) {
        let mut ws = Ws::connect(&self.ws(&format!("/v1/supervise?access_token={token}")), &[]).await;
        let snapshot = ws.recv_type("snapshot").await;
        (ws, snapshot)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.crash();
    }
}

pub struct Ws {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Ws {
        Self::try_connect(url, headers).await.expect("websocket connects")
    }

    /// Connects; Err carries the HTTP status of a refused upgrade.
    pub async fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<Ws, u16> {
        let mut request = url.into_client_request().unwrap();
        for (k, v) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                tokio_tungstenite::tungstenite::http::HeaderValue::from_str(v).unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((inner, _)) => Ok(Ws { inner }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(other) => panic!("websocket connect: {other}"),
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.inner.send(Message::Text(frame.to_string().into())).await.unwrap();
    }

    pub async fn send_raw(&mut self, message: Message) {
        let _ = self.inner.send(message).await;
    }

    /// The next JSON frame; panics after [`WAIT`] or on a close.
    pub async fn recv(&mut self) -> Value {
        self.recv_within(WAIT).await.expect("a frame arrives in time")
    }

    /// The next JSON frame within `wait`, or None when none came.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let next = tokio::time::timeout(wait, self.inner.next()).await.ok()?;
            match next {
                Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(text.as_str()).unwrap()),
                Some(Ok(Message::Close(close))) => panic!("unexpected close: {close:?}"),
                Some(Ok(_)) => continue,
                other => panic!("socket broke: {other:?}"),
            }
        }
    }

    /// Sends a supervisor command; returns its reply (`ok` or `error`), skipping other frames.
    pub async fn command(&mut self, frame: Value) -> Value {
        self.send(frame).await;
        loop {
            let reply = self.recv().await;
            if reply["type"] == "ok" || reply["type"] == "error" {
                return reply;
            }
        }
    }

    /// Frames up to the first of `kind`, which is returned.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The next JSON frame, or the close code and reason when the server closes.
    pub async fn next_or_close(&mut self) -> Result<Value, (u16, String)> {
        loop {
            let next = tokio::time::timeout(WAIT, self.inner.next()).await.expect("a frame or a close in time");
            match next {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str()).unwrap()),
                Some(Ok(Message::Close(Some(frame)))) => return Err((u16::from(frame.code), frame.reason.to_string())),
                Some(Ok(Message::Close(None))) => return Err((u16::from(CloseCode::Status), String::new())),
                Some(Ok(_)) => continue,
                other => panic!("expected a frame or a close, got {other:?}"),
            }
        }
    }

    /// The close code and reason the server sends, skipping data frames.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Err(close) = self.next_or_close().await {
                return close;
            }
        }
    }

    /// Drops the TCP connection without a close handshake, as a lost network does.
    pub fn drop_connection(self) {
        drop(self.inner);
    }
}

/// A unique PostgreSQL database on the local server, dropped with the value.
pub struct PgDb {
    pub url: String,
    name: String,
}

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl PgDb {
    pub async fn create() -> PgDb {
        use sqlx::Connection;
        let name = format!("hark_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(PG_ADMIN_URL).await.expect("PostgreSQL on 127.0.0.1:5432");
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await.unwrap();
        PgDb { url: format!("postgres://postgres@127.0.0.1:5432/{name}"), name }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(PG_ADMIN_URL).await {
                    let _ = sqlx::Executor::execute(
                        &mut conn,
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                    )
                    .await;
                }
            })
        })
        .join();
    }
}

/// The shared fixtures (audio clips, sipp scenarios) beside this repository.
pub fn fixtures() -> std::path::PathBuf {
    std::env::var_os("HARK_FIXTURES")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"))
}

/// The samples of a 16-bit mono WAV file.
pub fn wav_samples(path: &std::path::Path) -> Vec<i16> {
    hound::WavReader::open(path).unwrap().samples::<i16>().map(Result::unwrap).collect()
}

/// Normalized cross-correlation of `a` against `b` at the best lag within ±`max_lag` samples
/// (a lag > 0 means `a` is late): a coarse search on every 4th sample, refined around the best.
pub fn best_correlation(a: &[i16], b: &[i16], max_lag: usize) -> (i64, f64) {
    let corr = |lag: i64, step: usize| {
        let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
        let mut i = 0usize;
        while i < b.len() {
            let j = i as i64 + lag;
            if j >= 0 && (j as usize) < a.len() {
                let (x, y) = (a[j as usize] as f64, b[i] as f64);
                ab += x * y;
                aa += x * x;
                bb += y * y;
            }
            i += step;
        }
        if aa == 0.0 || bb == 0.0 {
            0.0
        } else {
            ab / (aa.sqrt() * bb.sqrt())
        }
    };
    let max_lag = max_lag as i64;
    let coarse = (-max_lag..=max_lag).step_by(2).max_by(|&x, &y| corr(x, 8).total_cmp(&corr(y, 8))).unwrap_or(0);
    ((coarse - 4)..=(coarse + 4)).map(|lag| (lag, corr(lag, 1))).max_by(|x, y| x.1.total_cmp(&y.1)).unwrap()
}

/// A free port for both UDP and TCP on loopback.
pub fn free_udp_tcp_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
