//! Test harness: starts the real `hark` binary on a free port with its own data directory, and
//! talks to it with real WebSocket and HTTP clients. Every wait is bounded.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ADMIN: &str = "test-admin-token";
/// Test servers run without speech: it loads Whisper and takes the CPU that the servers of
/// other tests running beside it need, and a call's end waits for its last finals. A test
/// that listens to the words passes this.
pub const SPEECH: (&str, &str) = ("HARK_SPEECH_ENABLED", "true");

/// One server with speech at a time in a test binary: each one's Whisper pool is sized to own
/// the machine's cores, as in production, and two of them side by side oversubscribe the cores
/// (whisper.cpp's threads spin at their barriers), which delays every transcript by seconds.
static SPEECH_SERVERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
/// Longest wait for any one frame or the server's start.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// Held while a server with speech lives (see [`SPEECH_SERVERS`]).
    _speech: Option<tokio::sync::SemaphorePermit<'static>>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    /// Starts hark with test defaults plus `env`.
    pub async fn start(env: &[(&str, &str)]) -> Server {
        let speech = match env.contains(&SPEECH) {
            true => Some(SPEECH_SERVERS.acquire().await.expect("the semaphore is never closed")),
            false => None,
        };
        let mut server = Server {
            child: None,
            port: free_port(),
            data_dir: tempfile::tempdir().unwrap(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            _speech: speech,
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
            .env("HARK_SPEECH_ENABLED", "false")
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
        // Bounded: a request hark never answers fails the test instead of hanging it.
        let r = reqwest::Client::new().get(self.http(path)).bearer_auth(token).timeout(WAIT).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A new supervisor token of the admin's tenant (via the admin API).
    pub async fn token(&self, name: &str) -> String {
        self.tenant_token(name, None).await
    }

    /// A new supervisor token of `tenant` (the admin's when `None`).
    pub async fn tenant_token(&self, name: &str, tenant: Option<&str>) -> String {
        let r = reqwest::Client::new()
            .post(self.http("/v1/tokens"))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": name, "tenant": tenant }))
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
/// Writes a rules file (TOML) into a fresh directory, which must outlive the server: the
/// directory and the file's path for `HARK_RULES_FILE`.
pub fn rules_file(rules: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, rules).unwrap();
    let path = path.display().to_string();
    (dir, path)
}

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

/// A minimal SIP UAC over UDP, for what sipp cannot do here: SIPREC INVITEs, offerless INVITEs,
/// re-INVITEs, answering hark's BYE, and RTP with injected faults.
pub struct Uac {
    socket: tokio::net::UdpSocket,
    hark: std::net::SocketAddr,
    call_id: String,
    /// hark's tag, once a final response carried it.
    pub to_tag: Option<String>,
    cseq: u32,
    /// The called user (an agent's extension, say).
    to_user: String,
}

/// A SIP message as the test reads it.
pub struct SipMessage {
    pub first_line: String,
    pub headers: String,
    pub body: String,
}

impl SipMessage {
    /// The status code of a response, 0 for a request.
    pub fn status(&self) -> u16 {
        self.first_line
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.split(' ').next())
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    /// The audio ports of the SDP body.
    pub fn sdp_ports(&self) -> Vec<u16> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("m=audio "))
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect()
    }
}

/// An SDP offer for one PCMU stream from `port`, with `telephone-event` and `direction`.
pub fn pcmu_offer(port: u16, direction: &str) -> String {
    format!(
        "v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na={direction}\r\n"
    )
}

impl Uac {
    pub async fn new(port: u16) -> Uac {
        Uac::calling(port, "hark").await
    }

    /// A UAC whose requests are addressed to `user` at hark.
    pub async fn calling(port: u16, user: &str) -> Uac {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let hark = format!("127.0.0.1:{port}").parse().unwrap();
        let call_id = format!("{}@test", uuid::Uuid::new_v4());
        Uac { socket, hark, call_id, to_tag: None, cseq: 0, to_user: user.to_string() }
    }

    /// Sends a request of the dialog (a new CSeq unless it is an ACK).
    pub async fn send(&mut self, method: &str, extra_headers: &str, body: &str) {
        if method != "ACK" {
            self.cseq += 1;
        }
        let local = self.socket.local_addr().unwrap();
        let to_tag = self.to_tag.as_ref().map(|t| format!(";tag={t}")).unwrap_or_default();
        let message = format!(
            "{method} sip:{to}@{hark} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             From: <sip:caller@{local}>;tag=uac1\r\nTo: <sip:{to}@{hark}>{to_tag}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:caller@{local}>\r\nMax-Forwards: 70\r\n{extra_headers}\
             Content-Length: {len}\r\n\r\n{body}",
            hark = self.hark,
            to = self.to_user,
            branch = uuid::Uuid::new_v4().simple(),
            call_id = self.call_id,
            cseq = self.cseq,
            len = body.len(),
        );
        self.socket.send_to(message.as_bytes(), self.hark).await.unwrap();
    }

    /// The next message from hark within `wait`.
    pub async fn recv_within(&self, wait: Duration) -> Option<SipMessage> {
        let mut buf = vec![0u8; 65536];
        let (len, _) = tokio::time::timeout(wait, self.socket.recv_from(&mut buf)).await.ok()?.unwrap();
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let (first_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
        Some(SipMessage { first_line: first_line.into(), headers: headers.into(), body: body.into() })
    }

    /// The next final response (provisional ones skipped); keeps hark's To tag.
    pub async fn final_response(&mut self) -> SipMessage {
        loop {
            let message = self.recv_within(WAIT).await.expect("a SIP response in time");
            if message.status() >= 200 {
                if let Some(tag) = message.header("To").and_then(|to| to.split(";tag=").nth(1)) {
                    self.to_tag = Some(tag.split(';').next().unwrap().to_string());
                }
                return message;
            }
        }
    }

    /// Answers a request hark sent (its BYE) with 200.
    pub async fn answer_ok(&self, request: &SipMessage) {
        let mut response = String::from("SIP/2.0 200 OK\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            response.push_str(&format!("{name}: {}\r\n", request.header(name).unwrap_or_default()));
        }
        response.push_str("Content-Length: 0\r\n\r\n");
        self.socket.send_to(response.as_bytes(), self.hark).await.unwrap();
    }
}

/// One RTP packet.
pub fn rtp_packet(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, payload_type, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&sequence.to_be_bytes());
    p[4..8].copy_from_slice(&timestamp.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Sends `ulaw` from `socket` as 20 ms PCMU packets at real-time pace, with every 40th pair of
/// packets swapped and every 25th packet sent twice.
pub async fn stream_rtp(socket: &tokio::net::UdpSocket, to: std::net::SocketAddr, ulaw: &[u8], ssrc: u32) {
    let packets: Vec<Vec<u8>> =
        ulaw.chunks(160).enumerate().map(|(i, chunk)| rtp_packet(0, i as u16, (i * 160) as u32, ssrc, chunk)).collect();
    let mut order: Vec<usize> = (0..packets.len()).collect();
    for i in (40..order.len()).step_by(40) {
        order.swap(i - 1, i);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for (n, &i) in order.iter().enumerate() {
        tick.tick().await;
        socket.send_to(&packets[i], to).await.unwrap();
        if n % 25 == 0 {
            socket.send_to(&packets[i], to).await.unwrap();
        }
    }
}

/// A hark with SIP on a free port and its own RTP port block.
pub async fn sip_server(extra: &[(&str, &str)]) -> (Server, u16) {
    let port = free_udp_tcp_port();
    let rtp_min = 20000 + (port % 200) * 100;
    let (addr, min, max) = (format!("127.0.0.1:{port}"), rtp_min.to_string(), (rtp_min + 98).to_string());
    let mut env: Vec<(&str, &str)> =
        vec![("HARK_SIP_ADDR", &addr), ("HARK_SIP_RTP_PORT_MIN", &min), ("HARK_SIP_RTP_PORT_MAX", &max)];
    env.extend_from_slice(extra);
    (Server::start(&env).await, port)
}

/// The newest ended voice session's record.
pub async fn last_call(server: &Server) -> Value {
    let (_, ended) = server.get("/v1/sessions?state=ended", ADMIN).await;
    let card = ended.as_array().unwrap().iter().find(|c| c["channel"] == "voice").expect("a finished call").clone();
    let (status, record) = server.get(&format!("/v1/sessions/{}", card["session_id"].as_str().unwrap()), ADMIN).await;
    assert_eq!(status, 200);
    record
}

/// The first finished call's record, once it is stored.
pub async fn finished_call(server: &Server) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, ended) = server.get("/v1/sessions?state=ended", ADMIN).await;
        if ended.as_array().is_some_and(|e| !e.is_empty()) {
            return last_call(server).await;
        }
        assert!(std::time::Instant::now() < deadline, "the call ends in time");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The 16 kHz samples of the recording of a finished call's `stream`, once the transcoder has
/// turned its WAV into Ogg Opus.
pub async fn recording_samples(server: &Server, stream: &Value) -> Vec<i16> {
    let wav =
        server.data_dir.path().join("recordings").join(stream["recording"].as_str().unwrap()).with_extension("wav");
    let opus = wav.with_extension("opus");
    let deadline = tokio::time::Instant::now() + WAIT;
    while wav.exists() || !opus.exists() {
        assert!(tokio::time::Instant::now() < deadline, "{} was transcoded", wav.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    opus_samples(&opus)
}

/// The 16 kHz samples of a mono Ogg Opus recording as hark writes them: decoded at 16 kHz with
/// the pre-skip removed and the end trimmed to the last page's granule position.
pub fn opus_samples(path: &std::path::Path) -> Vec<i16> {
    let mut reader = ogg::PacketReader::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let head = reader.read_packet_expected().unwrap();
    assert_eq!(&head.data[..8], b"OpusHead", "{} is Ogg Opus", path.display());
    let pre_skip = u16::from_le_bytes([head.data[10], head.data[11]]) as usize / 3;
    let tags = reader.read_packet_expected().unwrap();
    assert_eq!(&tags.data[..8], b"OpusTags");
    let mut decoder = opus::Decoder::new(16_000, opus::Channels::Mono).unwrap();
    let (mut samples, mut buf, mut granule) = (Vec::new(), vec![0i16; 5760], 0);
    while let Some(packet) = reader.read_packet().unwrap() {
        let n = decoder.decode(&packet.data, &mut buf, false).unwrap();
        samples.extend_from_slice(&buf[..n]);
        granule = packet.absgp_page();
    }
    let end = (granule as usize / 3).min(samples.len());
    samples[pre_skip.min(end)..end].to_vec()
}

// sipp as the calling trunk.

/// A working directory with the sipp scenarios and audio (sipp resolves audio paths against it
/// and may write logs there; the shared fixtures are read-only).
pub fn scenario_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("sip")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    for file in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sip")).unwrap() {
        let path = file.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Runs sipp as a UAC against hark; returns its exit status code.
pub async fn sipp(dir: &Path, port: u16, scenario: &str, extra: &[&str]) -> i32 {
    let media_port = (free_udp_tcp_port() & !1).to_string();
    let local_port = free_udp_tcp_port().to_string();
    let mut args = vec![
        format!("127.0.0.1:{port}"),
        "-sf".into(),
        scenario.into(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        local_port,
        "-mi".into(),
        "127.0.0.1".into(),
        "-mp".into(),
        media_port,
        "-s".into(),
        "speech".into(),
        "-m".into(),
        "1".into(),
        "-timeout".into(),
        "30".into(),
        "-timeout_error".into(),
        "-nostdin".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let dir: PathBuf = dir.into();
    tokio::task::spawn_blocking(move || {
        let status = Command::new("sipp")
            .args(&args)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("sipp is installed (apt-get install sip-tester)");
        status.code().unwrap_or(-1)
    })
    .await
    .unwrap()
}

// The two-party call fixture (../shared/fixtures/audio/call) streamed as Twilio Media Streams.

pub fn call_fixture(name: &str) -> std::path::PathBuf {
    fixtures().join("audio/call").join(name)
}

pub fn ulaw(name: &str) -> Vec<u8> {
    std::fs::read(call_fixture(name)).unwrap()
}

/// The record of the ended session whose call has `external_id`.
pub async fn ended_call(server: &Server, external_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, ended) = server.get("/v1/sessions?state=ended&limit=1000", ADMIN).await;
        for card in ended.as_array().unwrap() {
            let (_, record) =
                server.get(&format!("/v1/sessions/{}", card["session_id"].as_str().unwrap()), ADMIN).await;
            if record["call"]["external_id"] == external_id {
                return record;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no ended call {external_id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Twilio `start` event of a call with both tracks; the token goes as a custom parameter.
pub fn twilio_start(call_sid: &str, token: Option<&str>) -> Value {
    let mut params = json!({"from": "+15550100", "to": "+15550199"});
    if let Some(token) = token {
        params["access_token"] = json!(token);
    }
    json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
           "start": {"accountSid": "AC1", "streamSid": "MZ1", "callSid": call_sid,
                     "tracks": ["inbound", "outbound"], "customParameters": params,
                     "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
}

pub fn twilio_media(track: &str, chunk: usize, timestamp_ms: usize, payload: &[u8]) -> Value {
    json!({"event": "media", "sequenceNumber": (chunk + 2).to_string(), "streamSid": "MZ1",
           "media": {"track": track, "chunk": (chunk + 1).to_string(), "timestamp": timestamp_ms.to_string(),
                     "payload": base64::engine::general_purpose::STANDARD.encode(payload)}})
}

/// Sends the media of chunks `range` of both fixture tracks; timestamps count from `first`.
pub async fn twilio_send(ws: &mut Ws, range: std::ops::Range<usize>, first: usize) {
    send_chunks(ws, range, first, false).await;
}

/// As [`twilio_send`], in real time as Twilio streams a live call: chunk k leaves when its 20 ms
/// have been spoken. The live speech stage drops what it cannot keep up with, as it must on a
/// real call, so a test of what it hears must not send faster than a caller speaks.
pub async fn twilio_send_live(ws: &mut Ws, range: std::ops::Range<usize>, first: usize) {
    send_chunks(ws, range, first, true).await;
}

async fn send_chunks(ws: &mut Ws, range: std::ops::Range<usize>, first: usize, live: bool) {
    let (caller, agent) = (ulaw("caller.ulaw"), ulaw("agent.ulaw"));
    let t0 = tokio::time::Instant::now();
    for (k, i) in range.enumerate() {
        if live {
            tokio::time::sleep_until(t0 + Duration::from_millis(20 * (k as u64 + 1))).await;
        }
        let span = i * CHUNK..((i + 1) * CHUNK).min(caller.len());
        ws.send(twilio_media("inbound", i, (i - first) * 20, &caller[span.clone()])).await;
        ws.send(twilio_media("outbound", i, (i - first) * 20, &agent[span])).await;
    }
}

pub fn chunks() -> usize {
    ulaw("caller.ulaw").len().div_ceil(CHUNK)
}

/// 20 ms at 8 kHz: one chunk of the streamed call fixture.
pub const CHUNK: usize = 160;

// Speech: the model files, the fixture clips and their transcripts, word error rate.

/// The model files, or a failure that says how to get them.
pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("HARK_SPEECH_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    let missing = hark::speech::models::ModelPaths::new(&dir).missing();
    assert!(missing.is_empty(), "model files missing: {missing:?}; run `cargo run -- models fetch` (make test does)");
    dir
}

/// Runs sox with `args`, failing the test with its message.
pub fn sox(args: &[&str]) {
    let out = Command::new("sox").args(args).output().expect("sox is installed (apt-get install sox)");
    assert!(out.status.success(), "sox {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

pub struct Clip {
    pub name: String,
    pub wav: PathBuf,
    pub seconds: f64,
    pub reference: String,
}

/// The single-speaker clips of ../shared/fixtures/audio/manifest.tsv.
pub fn manifest() -> Vec<Clip> {
    let dir = fixtures().join("audio");
    let text = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.len() >= 4 && !cols[0].contains('/')).then(|| Clip {
                name: cols[0].trim_end_matches(".wav").to_string(),
                wav: dir.join(cols[0]),
                seconds: cols[1].parse().unwrap(),
                reference: cols[3].to_string(),
            })
        })
        .collect()
}

/// Words for WER: lower case, no punctuation, numbers as words, "mr" as "mister", "oh" as
/// "zero" (digit strings are read either way).
pub fn words(text: &str) -> Vec<String> {
    #[rustfmt::skip]
    const ONES: [&str; 20] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    ];
    const TENS: [&str; 10] = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    let cleaned: String =
        text.to_lowercase().chars().map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' }).collect();
    let mut out = Vec::new();
    for word in cleaned.split_whitespace() {
        let word = word.trim_matches('\'');
        if word.chars().all(|c| c.is_ascii_digit()) && !word.is_empty() {
            match word.parse::<usize>() {
                Ok(n) if n < 20 && word.len() <= 2 => out.push(ONES[n].to_string()),
                Ok(n) if n < 100 && word.len() == 2 => {
                    out.push(TENS[n / 10].to_string());
                    if n % 10 != 0 {
                        out.push(ONES[n % 10].to_string());
                    }
                }
                _ => out.extend(word.chars().map(|d| ONES[d.to_digit(10).unwrap() as usize].to_string())),
            }
            continue;
        }
        out.push(match word {
            "mr" => "mister".into(),
            "oh" => "zero".into(),
            other => other.to_string(),
        });
    }
    out
}

/// Word edit distance of `hypothesis` against `reference`, and the reference's length.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let (r, h) = (words(reference), words(hypothesis));
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut diagonal = row[0];
        row[0] = i;
        for j in 1..=h.len() {
            let substitution = diagonal + usize::from(r[i - 1] != h[j - 1]);
            diagonal = row[j];
            row[j] = substitution.min(row[j] + 1).min(row[j - 1] + 1);
        }
    }
    (row[h.len()], r.len())
}

/// The final utterances of a stored session, in time order.
pub fn utterances(record: &Value) -> Vec<Value> {
    let mut lines: Vec<Value> =
        record["messages"].as_array().unwrap().iter().filter(|m| m.get("speech").is_some()).cloned().collect();
    lines.sort_by_key(|m| m["speech"]["start_ms"].as_u64().unwrap());
    lines
}

pub fn transcript(record: &Value) -> String {
    utterances(record).iter().map(|m| m["text"].as_str().unwrap().to_string()).collect::<Vec<_>>().join(" ")
}

/// A `multipart/form-data` body of `files` (name, bytes) as `file` parts and `fields` (name,
/// value); returns its content type and bytes.
pub fn multipart_form(files: &[(String, Vec<u8>)], fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = format!("hark-test-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
