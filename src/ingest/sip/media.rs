//! The media of one answered SIP call: its RTP sockets (one per stream), symmetric-RTP latching
//! (once a stream has heard from a source, packets from any other are dropped and counted),
//! one [`MediaStream`] per speaker feeding the [`LiveCall`], re-INVITEs (hold, codec change),
//! and the hang-up: by the far end (BYE), or by hark with BYE when RTP stops.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Request, StatusCode};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::ingest::call::{CallSpec, LiveCall};
use crate::media::pipeline::{MediaStream, Output};
use crate::server::App;
use crate::session::StreamCard;

use super::sdp::{self, Chosen, MediaOffer};

/// What the signalling tells a call's media task.
pub enum MediaCommand {
    /// The ACK arrived: the call is up.
    Answered,
    /// The dialog ended (BYE, CANCEL, no ACK), with the cause for the call record.
    Ended(String),
    /// A re-INVITE to answer (hold, resume, codec change).
    Reinvite(Request, TransactionHandle),
}

/// Hands out RTP ports from the configured range, round robin, even ports only.
pub struct RtpPorts {
    min: u16,
    max: u16,
    next: AtomicU16,
}

impl RtpPorts {
    pub fn new(min: u16, max: u16) -> RtpPorts {
        let min = min + min % 2;
        RtpPorts { min, max: max.max(min), next: AtomicU16::new(min) }
    }

    /// A socket on the next free port, or None when the whole range is taken.
    pub async fn bind(&self, ip: IpAddr) -> Option<UdpSocket> {
        let span = (self.max - self.min) / 2 + 1;
        for _ in 0..span {
            let offset = self.next.fetch_add(2, Ordering::Relaxed).wrapping_sub(self.min) % (span * 2);
            let port = self.min + offset;
            if let Ok(socket) = UdpSocket::bind(SocketAddr::new(ip, port)).await {
                return Some(socket);
            }
        }
        None
    }
}

/// Largest RTP datagram read.
const MAX_DATAGRAM: usize = 2048;
/// How often the card's media figures are refreshed.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// Datagrams per socket still read once the call has ended: 5 s of 20 ms packets.
const HELD_AT_HANGUP: usize = 250;

struct Stream {
    media: MediaStream,
    /// The source this stream latched onto.
    latched: Option<SocketAddr>,
    foreign: u64,
    /// Milliseconds from the call's answer to this stream's first packet.
    offset_ms: Option<u64>,
    on_hold: bool,
    codec: String,
}

impl Stream {
    /// Takes one RTP datagram from `from`: the first source latches the stream, another one's
    /// packets are counted as foreign and dropped. Returns whether it was this stream's.
    fn receive(&mut self, bytes: &[u8], from: SocketAddr, now: Instant, answered: Instant) -> bool {
        if *self.latched.get_or_insert(from) != from {
            self.foreign += 1;
            metrics::counter!(crate::metrics::RTP_FOREIGN).increment(1);
            return false;
        }
        self.offset_ms.get_or_insert_with(|| now.duration_since(answered).as_millis() as u64);
        if self.media.push_rtp(bytes, now).is_err() {
            metrics::counter!(crate::metrics::RTP_MALFORMED).increment(1);
        }
        true
    }
}

pub struct CallMedia {
    app: Arc<App>,
    spec: CallSpec,
    sockets: Vec<Arc<UdpSocket>>,
    offers: Vec<(Option<MediaOffer>, Chosen)>,
    dialog: InviteDialog,
}

impl CallMedia {
    pub fn new(
        app: Arc<App>,
        spec: CallSpec,
        sockets: Vec<UdpSocket>,
        offers: Vec<(Option<MediaOffer>, Chosen)>,
        dialog: InviteDialog,
    ) -> CallMedia {
        CallMedia { app, spec, sockets: sockets.into_iter().map(Arc::new).collect(), offers, dialog }
    }

    /// Runs the call from answer to hang-up.
    pub async fn run(self, mut commands: mpsc::Receiver<MediaCommand>) {
        // Nothing is live before the ACK; a CANCEL or a missing ACK ends it here.
        loop {
            match commands.recv().await {
                Some(MediaCommand::Answered) => break,
                Some(MediaCommand::Reinvite(_, handle)) => {
                    let _ = handle.reply(StatusCode::RequestPending).await;
                }
                Some(MediaCommand::Ended(cause)) => {
                    tracing::info!(call = %self.spec.external_id, %cause, "call ended before answer");
                    return;
                }
                None => return,
            }
        }
        let live = match LiveCall::start(&self.app, self.spec.clone()).await {
            Ok(live) => live,
            Err(error) => {
                tracing::error!(%error, "call could not start; hanging up");
                let _ = self.dialog.bye().await;
                return;
            }
        };
        // After an offerless INVITE the far end's answer comes in the ACK.
        let ack_answer = self.dialog.last_remote_ack().and_then(|ack| sdp::parse(&ack.body).ok());
        let cause = self.serve(live, commands, ack_answer).await;
        tracing::info!(call = %self.spec.external_id, %cause, "call ended");
    }

    async fn serve(
        &self,
        mut live: LiveCall,
        mut commands: mpsc::Receiver<MediaCommand>,
        ack_answer: Option<Vec<MediaOffer>>,
    ) -> String {
        let answered = Instant::now();
        let mut streams = Vec::new();
        for (index, (offer, chosen)) in self.offers.iter().enumerate() {
            let chosen = match (offer, ack_answer.as_ref().and_then(|a| a.get(index))) {
                (None, Some(answer)) => sdp::choose(answer, &self.app_preference()).unwrap_or(*chosen),
                _ => *chosen,
            };
            let media = match MediaStream::new(&[(chosen.payload_type, chosen.codec)], chosen.telephone_event) {
                Ok(media) => media,
                Err(error) => {
                    let _ = self.dialog.bye().await;
                    live.finish(&format!("decoder failed: {error}")).await;
                    return error.to_string();
                }
            };
            streams.push(Stream {
                media,
                latched: None,
                foreign: 0,
                offset_ms: None,
                on_hold: offer.as_ref().is_some_and(MediaOffer::on_hold),
                codec: super::codec_name(chosen.codec).to_string(),
            });
        }
        let (packets, mut incoming) = mpsc::channel::<(usize, Vec<u8>, SocketAddr)>(256);
        let readers: Vec<_> = self
            .sockets
            .iter()
            .enumerate()
            .map(|(index, socket)| tokio::spawn(read_rtp(index, socket.clone(), packets.clone())))
            .collect();
        drop(packets);
        let media_timeout = Duration::from_secs(self.app.config.sip.media_timeout_secs);
        let mut last_packet = Instant::now();
        let mut stats_at = Instant::now() + STATS_EVERY;
        let cause = loop {
            let next_media = streams.iter().filter_map(|s| s.media.poll_timeout()).min();
            let held = streams.iter().all(|s| s.on_hold);
            let timeout_at = (!held).then_some(last_packet + media_timeout);
            let wake = [next_media, Some(stats_at), timeout_at].into_iter().flatten().min().unwrap_or(stats_at);
            tokio::select! {
                packet = incoming.recv() => {
                    let Some((index, bytes, from)) = packet else { break "media sockets closed".to_string() };
                    let now = Instant::now();
                    if streams[index].receive(&bytes, from, now, answered) {
                        last_packet = now;
                    }
                }
                _ = self.app.shutdown.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), self.dialog.bye()).await;
                    break "server shutting down".to_string();
                }
                command = commands.recv() => match command {
                    Some(MediaCommand::Ended(cause)) => break cause,
                    Some(MediaCommand::Reinvite(request, handle)) => {
                        self.reinvite(&request, handle, &mut streams).await;
                        let now_held = streams.iter().all(|s| s.on_hold);
                        if now_held != held {
                            live.hold(now_held).await;
                        }
                    }
                    Some(MediaCommand::Answered) => {}
                    None => break "signalling gone".to_string(),
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    if timeout_at.is_some_and(|at| at <= now) {
                        let _ = self.dialog.bye().await;
                        break "media timeout".to_string();
                    }
                    if stats_at <= now {
                        live.stats(cards(&streams)).await;
                        stats_at = now + STATS_EVERY;
                    }
                }
            }
            drain(&mut streams, &mut live, Instant::now()).await;
        };
        for reader in readers {
            reader.abort();
        }
        // What arrived before the hang-up is part of the call: a far end sends its last packets
        // just before its BYE, which can overtake them here. Take those already read, then
        // those the sockets still hold (a bounded number: a flood must not keep the call open).
        let now = Instant::now();
        while let Ok((index, bytes, from)) = incoming.try_recv() {
            streams[index].receive(&bytes, from, now, answered);
        }
        let mut buf = vec![0u8; MAX_DATAGRAM];
        for (stream, socket) in streams.iter_mut().zip(&self.sockets) {
            for _ in 0..HELD_AT_HANGUP {
                let Ok((len, from)) = socket.try_recv_from(&mut buf) else { break };
                stream.receive(&buf[..len], from, now, answered);
            }
        }
        for stream in &mut streams {
            stream.media.flush();
        }
        drain(&mut streams, &mut live, Instant::now() + Duration::from_secs(3600)).await;
        live.stats(cards(&streams)).await;
        live.finish(&cause).await;
        cause
    }

    /// Answers a re-INVITE: hold and resume change only the direction; a new codec re-keys
    /// the stream's decoder. A re-INVITE hark cannot accept gets 488 and the call goes on.
    async fn reinvite(&self, request: &Request, handle: TransactionHandle, streams: &mut [Stream]) {
        let preference: Vec<_> = self.offers.iter().map(|(_, c)| c.codec).collect();
        let offers = match sdp::parse(&request.body) {
            Ok(offers) if offers.len() == streams.len() => offers,
            _ => {
                let _ = handle.reply(StatusCode::NotAcceptableHere).await;
                return;
            }
        };
        let mut local = Vec::new();
        for ((offer, stream), socket) in offers.iter().zip(streams.iter_mut()).zip(&self.sockets) {
            let Some(chosen) = sdp::choose(offer, &preference).or_else(|| sdp::choose(offer, &self.app_preference()))
            else {
                let _ = handle.reply(StatusCode::NotAcceptableHere).await;
                return;
            };
            stream.on_hold = offer.on_hold();
            if stream.media.set_payload_types(&[(chosen.payload_type, chosen.codec)], chosen.telephone_event).is_err() {
                let _ = handle.reply(StatusCode::NotAcceptableHere).await;
                return;
            }
            stream.codec = super::codec_name(chosen.codec).to_string();
            local.push(sdp::LocalMedia {
                port: socket.local_addr().map(|a| a.port()).unwrap_or(0),
                formats: vec![(chosen.payload_type, chosen.codec)],
                telephone_event: chosen.telephone_event,
                direction: sdp::answer_direction(offer),
                label: offer.label.clone(),
            });
        }
        let ip = self.sockets[0].local_addr().map(|a| a.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let body = sdp::write(ip, 1, 2, &local);
        let headers = vec![Header::ContentType("application/sdp".into())];
        let _ = handle.respond(StatusCode::OK, Some(headers), Some(body.into_bytes())).await;
    }

    fn app_preference(&self) -> Vec<crate::media::codec::Codec> {
        self.app.config.sip.codecs.iter().filter_map(|c| sdp::codec_named(c)).collect()
    }
}

/// Moves decoded audio and DTMF from every stream into the call, up to `now`.
async fn drain(streams: &mut [Stream], live: &mut LiveCall, now: Instant) {
    for (index, stream) in streams.iter_mut().enumerate() {
        let offset = stream.offset_ms.unwrap_or(0);
        while let Some(output) = stream.media.poll(now) {
            match output {
                Output::Audio { start_ms, samples } => live.audio(index, offset + start_ms, &samples),
                Output::Dtmf { digit, end: true, .. } => live.dtmf(index, digit).await,
                Output::Dtmf { .. } => {}
            }
        }
    }
}

fn cards(streams: &[Stream]) -> Vec<StreamCard> {
    streams
        .iter()
        .map(|s| {
            let stats = s.media.stats();
            StreamCard {
                speaker: String::new(),
                codec: s.codec.clone(),
                packets: stats.received,
                lost: stats.lost,
                late: stats.late,
                duplicates: stats.duplicates,
                foreign: s.foreign,
                jitter_ms: stats.jitter_ms,
            }
        })
        .collect()
}

async fn read_rtp(index: usize, socket: Arc<UdpSocket>, packets: mpsc::Sender<(usize, Vec<u8>, SocketAddr)>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while let Ok((len, from)) = socket.recv_from(&mut buf).await {
        if packets.send((index, buf[..len].to_vec(), from)).await.is_err() {
            return;
        }
    }
}
