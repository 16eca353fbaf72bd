//! The SIP user agent server PBXs and trunks send calls to (UDP and TCP on `sip.addr`).
//!
//! `rsipstack` does the RFC 3261 work: parsing, transactions with their retransmissions and
//! timers (a 200 OK is retransmitted until its ACK), dialogs. This module is hark's policy on
//! top: who may call (source allowlist → 403), how many at once (486), which codec (488 when
//! none fits), the SDP answer, and a [`media::CallMedia`] task per answered call that owns its
//! RTP ports and its [`crate::ingest::call::LiveCall`].
//!
//! - [`auth`] — optional digest authentication of trunks.
//! - [`sdp`] — offer/answer.
//! - [`media`] — a call's RTP sockets, latching, decoding and hang-up on media timeout.
//! - [`siprec`] — SIPREC (RFC 7866) multipart bodies and recording metadata.

pub mod auth;
pub mod media;
pub mod sdp;
pub mod siprec;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use rsipstack::dialog::dialog::{Dialog, DialogState, DialogStateReceiver, DialogStateSender, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipConnection, TcpListenerConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio::sync::mpsc;

use crate::ingest::call::{CallSpec, Party, Role};
use crate::media::codec::Codec;
use crate::server::App;

use media::{CallMedia, MediaCommand, RtpPorts};

#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("sip.addr {0:?} is not an address")]
    Addr(String),
    #[error("SIP transport: {0}")]
    Stack(Box<rsipstack::Error>),
}

impl From<rsipstack::Error> for SipError {
    fn from(error: rsipstack::Error) -> SipError {
        SipError::Stack(Box::new(error))
    }
}

/// Calls hark holds a dialog for, by dialog id: their media task's command queue.
type Calls = DashMap<String, mpsc::Sender<MediaCommand>>;

struct Sip {
    app: Arc<App>,
    dialogs: Arc<DialogLayer>,
    states: DialogStateSender,
    calls: Calls,
    /// Calls admitted and not yet finished (ringing ones included), against `max_calls`.
    active: AtomicUsize,
    ports: RtpPorts,
    preference: Vec<Codec>,
    media_ip: IpAddr,
    digest: Option<auth::DigestAuth>,
}

/// Starts the SIP server when `sip.addr` is set; it stops with the app's shutdown token.
pub async fn start(app: Arc<App>) -> Result<(), SipError> {
    let config = &app.config.sip;
    if config.addr.is_empty() {
        return Ok(());
    }
    let addr: SocketAddr = config.addr.parse().map_err(|_| SipError::Addr(config.addr.clone()))?;
    let cancel = app.shutdown.child_token();
    let transport = TransportLayer::new(cancel.clone());
    let udp = UdpConnection::create_connection(addr, None, Some(cancel.child_token())).await?;
    transport.add_transport(udp.into());
    let tcp = TcpListenerConnection::new(addr, None).await?;
    transport.add_transport(SipConnection::from(tcp));
    let endpoint = EndpointBuilder::new()
        .with_transport_layer(transport)
        .with_cancel_token(cancel.clone())
        .with_user_agent(concat!("hark/", env!("CARGO_PKG_VERSION")))
        .build();
    let inner = endpoint.inner.clone();
    tokio::spawn(async move {
        if let Err(error) = inner.serve().await {
            tracing::error!(%error, "SIP endpoint stopped");
        }
    });
    let mut incoming = endpoint.incoming_transactions()?;
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    let (states, state_rx) = dialogs.new_dialog_state_channel();
    let media_ip = match config.media_ip.parse() {
        Ok(ip) => ip,
        Err(_) if !addr.ip().is_unspecified() => addr.ip(),
        Err(_) => IpAddr::from([127, 0, 0, 1]),
    };
    let sip = Arc::new(Sip {
        dialogs,
        states,
        calls: DashMap::new(),
        active: AtomicUsize::new(0),
        ports: RtpPorts::new(config.rtp_port_min, config.rtp_port_max),
        preference: config.codecs.iter().filter_map(|c| sdp::codec_named(c)).collect(),
        media_ip,
        digest: (!config.digest_user.is_empty()).then(|| {
            auth::DigestAuth::new(&config.digest_user, &config.digest_password, &config.digest_realm, rand::random())
        }),
        app,
    });
    tokio::spawn(sip.clone().follow_dialogs(state_rx));
    tracing::info!(%addr, "SIP listening (UDP and TCP)");
    tokio::spawn(async move {
        // Keep the endpoint alive as long as requests come in.
        let _endpoint = endpoint;
        while let Some(tx) = incoming.recv().await {
            tokio::spawn(sip.clone().on_request(tx));
        }
    });
    Ok(())
}

impl Sip {
    async fn on_request(self: Arc<Self>, mut tx: Transaction) {
        let method = tx.original.method;
        metrics::counter!(crate::metrics::SIP_REQUESTS, "method" => method.to_string()).increment(1);
        if let Err(status) = self.admit(&tx) {
            reply(&mut tx, status).await;
            return;
        }
        let in_dialog = tx.original.to_header().ok().and_then(|to| to.tag().ok().flatten()).is_some();
        if in_dialog {
            return self.in_dialog(tx).await;
        }
        if let Err(challenge) = self.authenticate(&tx) {
            if let Err(error) =
                tx.reply_with(StatusCode::Unauthorized, vec![Header::WwwAuthenticate(challenge.into())], None).await
            {
                tracing::debug!(%error, "SIP reply not sent");
            }
            return;
        }
        match method {
            Method::Invite => self.on_invite(tx).await,
            Method::Options => reply(&mut tx, StatusCode::OK).await,
            Method::Bye => reply(&mut tx, StatusCode::CallTransactionDoesNotExist).await,
            _ => reply(&mut tx, StatusCode::MethodNotAllowed).await,
        }
    }

    /// Source allowlist: the sender's address as the transport saw it (Via `received`).
    fn admit(&self, tx: &Transaction) -> Result<(), StatusCode> {
        let source = source_ip(tx).ok_or(StatusCode::BadRequest)?;
        if self.app.config.sip.allow.iter().any(|net| net.contains(&source)) {
            Ok(())
        } else {
            tracing::warn!(%source, "SIP request from outside the allowlist");
            metrics::counter!(crate::metrics::SIP_REFUSED, "reason" => "allowlist").increment(1);
            Err(StatusCode::Forbidden)
        }
    }

    /// Digest credentials, when configured; Err carries the challenge to send with 401.
    fn authenticate(&self, tx: &Transaction) -> Result<(), String> {
        let Some(digest) = &self.digest else { return Ok(()) };
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        let authorization = tx.original.headers.iter().find_map(|h| match h {
            Header::Authorization(a) => Some(a.value().to_string()),
            _ => None,
        });
        match digest.verify(&tx.original.method.to_string(), authorization.as_deref(), now) {
            Ok(()) => Ok(()),
            Err(error) => {
                if authorization.is_some() {
                    tracing::warn!(source = ?source_ip(tx), %error, "SIP digest authentication failed");
                    metrics::counter!(crate::metrics::SIP_REFUSED, "reason" => "digest").increment(1);
                }
                Err(digest.challenge(now))
            }
        }
    }

    /// A request inside an existing dialog (ACK, BYE, re-INVITE, …): the dialog handles it.
    async fn in_dialog(&self, mut tx: Transaction) {
        match self.dialogs.match_dialog(&tx) {
            Some(Dialog::Invite(mut dialog)) => {
                if let Err(error) = dialog.handle(&mut tx).await {
                    tracing::debug!(%error, "in-dialog request");
                }
            }
            _ if tx.original.method == Method::Ack => {}
            _ => reply(&mut tx, StatusCode::CallTransactionDoesNotExist).await,
        }
    }

    async fn on_invite(self: Arc<Self>, mut tx: Transaction) {
        let config = &self.app.config.sip;
        if self.active.fetch_add(1, Ordering::SeqCst) >= config.max_calls {
            self.active.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!(crate::metrics::SIP_REFUSED, "reason" => "busy").increment(1);
            reply(&mut tx, StatusCode::BusyHere).await;
            return;
        }
        let result = self.clone().answer(&mut tx).await;
        if let Err(status) = result {
            self.active.fetch_sub(1, Ordering::SeqCst);
            reply(&mut tx, status).await;
        }
    }

    /// Negotiates, opens the media, answers; the call then lives in its media task.
    async fn answer(self: Arc<Self>, tx: &mut Transaction) -> Result<(), StatusCode> {
        let request = &tx.original;
        let content_type = request.headers.iter().find_map(|h| match h {
            Header::ContentType(ct) => Some(ct.value().to_ascii_lowercase()),
            _ => None,
        });
        let (offers, metadata) = match content_type.as_deref() {
            None if request.body.is_empty() => (None, None),
            Some(ct) if ct.starts_with("application/sdp") => {
                (Some(sdp::parse(&request.body).map_err(|_| StatusCode::BadRequest)?), None)
            }
            Some(ct) if ct.starts_with("multipart/mixed") => {
                let parts = siprec::split(ct, &request.body).map_err(|_| StatusCode::BadRequest)?;
                let offers = sdp::parse(&parts.sdp).map_err(|_| StatusCode::BadRequest)?;
                (Some(offers), parts.metadata)
            }
            _ => return Err(StatusCode::UnsupportedMediaType),
        };
        let from = party(request.from_header().ok().map(|h| h.value().to_string()));
        let to = party(request.to_header().ok().map(|h| h.value().to_string()));
        let call_id = request.call_id_header().map(|h| h.value().to_string()).unwrap_or_default();
        let source = source_ip(tx).map(|ip| ip.to_string()).unwrap_or_default();

        // Which streams, with which codec and speaker.
        let (streams, codec, speakers) = match &offers {
            Some(offers) => {
                let mut streams = Vec::new();
                for offer in offers {
                    let chosen = sdp::choose(offer, &self.preference).ok_or(StatusCode::NotAcceptableHere)?;
                    streams.push((Some(offer.clone()), chosen));
                }
                let codec = streams[0].1.codec;
                let speakers = match &metadata {
                    Some(metadata) => siprec::speakers(metadata, offers),
                    None => vec![(Role::Customer, from.clone())],
                };
                (streams, codec, speakers)
            }
            None => {
                // Offerless INVITE: hark offers in the 200 and learns the far end's in the ACK.
                let codec = self.preference[0];
                let chosen =
                    sdp::Chosen { payload_type: sdp::offer_formats(&[codec])[0].0, codec, telephone_event: Some(101) };
                (vec![(None, chosen)], codec, vec![(Role::Customer, from.clone())])
            }
        };
        let mut sockets = Vec::new();
        for _ in &streams {
            sockets.push(self.ports.bind(self.media_ip).await.ok_or(StatusCode::ServiceUnavailable)?);
        }
        let local: Vec<sdp::LocalMedia> = streams
            .iter()
            .zip(&sockets)
            .map(|((offer, chosen), socket)| sdp::LocalMedia {
                port: socket.local_addr().map(|a| a.port()).unwrap_or(0),
                formats: match offer {
                    Some(_) => vec![(chosen.payload_type, chosen.codec)],
                    None => sdp::offer_formats(&self.preference),
                },
                telephone_event: chosen.telephone_event,
                direction: offer.as_ref().map_or(sdp::Direction::RecvOnly, sdp::answer_direction),
                label: offer.as_ref().and_then(|o| o.label.clone()),
            })
            .collect();
        let body = sdp::write(self.media_ip, rand::random::<u32>() as u64, 1, &local);

        let contact = format!("sip:hark@{}", self.app.config.sip.addr.replace("0.0.0.0", &self.media_ip.to_string()));
        let dialog = self
            .dialogs
            .get_or_create_server_invite(tx, self.states.clone(), None, contact.parse().ok())
            .map_err(|_| StatusCode::ServerInternalError)?;
        let dialog_id = dialog.id();
        let id = dialog_id.to_string();
        let spec = CallSpec {
            source: if metadata.is_some() { "siprec" } else { "sip" },
            external_id: call_id,
            tenant: self.app.config.sip.tenant.clone(),
            trunk: source,
            from,
            to,
            codec: codec_name(codec).to_string(),
            speakers,
            live: true,
        };
        let (commands, command_rx) = mpsc::channel(16);
        self.calls.insert(id.clone(), commands);
        let media = CallMedia::new(self.app.clone(), spec, sockets, streams, dialog.clone());
        let sip = self.clone();
        self.app.calls.spawn(async move {
            media.run(command_rx).await;
            sip.calls.remove(&id);
            sip.dialogs.remove_dialog(&dialog_id);
            sip.active.fetch_sub(1, Ordering::SeqCst);
        });

        let mut handler = dialog.clone();
        let answer_delay = Duration::from_millis(self.app.config.sip.answer_delay_ms);
        let answering = async move {
            dialog.ringing(None, None).ok();
            tokio::time::sleep(answer_delay).await;
            let headers = vec![Header::ContentType("application/sdp".into())];
            dialog.accept(Some(headers), Some(body.into_bytes())).ok();
        };
        // The dialog drives the INVITE transaction (100, retransmissions, ACK or CANCEL) while
        // the answer goes out through it.
        tokio::join!(async { handler.handle(tx).await.ok() }, answering);
        Ok(())
    }

    /// Follows dialog states: a confirmed dialog starts the call's media clock; a terminated
    /// one ends the call.
    async fn follow_dialogs(self: Arc<Self>, mut states: DialogStateReceiver) {
        while let Some(state) = states.recv().await {
            let (id, command) = match state {
                DialogState::Confirmed(id, _) => (id, MediaCommand::Answered),
                DialogState::Terminated(id, reason) => (id, MediaCommand::Ended(cause(&reason).to_string())),
                DialogState::Updated(id, request, handle) => (id, MediaCommand::Reinvite(request, handle)),
                _ => continue,
            };
            if let Some(commands) = self.calls.get(&id.to_string()).map(|c| c.clone()) {
                let _ = commands.send(command).await;
            }
        }
    }
}

/// The hang-up cause of a terminated dialog, as the call record says it.
fn cause(reason: &TerminatedReason) -> &'static str {
    match reason {
        TerminatedReason::UacBye => "caller hung up",
        TerminatedReason::UasBye => "hark hung up",
        TerminatedReason::UacCancel => "cancelled before answer",
        TerminatedReason::Timeout => "no ACK",
        _ => "call failed",
    }
}

pub(crate) fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Pcmu => "PCMU",
        Codec::Pcma => "PCMA",
        Codec::Opus => "opus",
    }
}

async fn reply(tx: &mut Transaction, status: StatusCode) {
    if let Err(error) = tx.reply(status).await {
        tracing::debug!(%error, "SIP reply not sent");
    }
}

/// The address a request came from: Via's `received`, or its host when it matched.
fn source_ip(tx: &Transaction) -> Option<IpAddr> {
    let via = tx.original.via_header().ok()?;
    let (_, target) = SipConnection::parse_target_from_via(via).ok()?;
    target.host.to_string().trim_matches(|c| c == '[' || c == ']').parse().ok()
}

/// A party from a From/To header value: `"Name" <sip:number@host>;tag=…`.
fn party(header: Option<String>) -> Party {
    let Some(value) = header else { return Party::default() };
    let (name, rest) = match value.find('<') {
        Some(i) => (value[..i].trim().trim_matches('"').trim(), &value[i + 1..]),
        None => ("", value.as_str()),
    };
    let uri = rest.split(['>', ';']).next().unwrap_or_default().trim().to_string();
    let number = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .or_else(|| uri.strip_prefix("tel:"))
        .and_then(|u| u.split('@').next())
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    Party { name: (!name.is_empty()).then(|| name.to_string()), number, uri: (!uri.is_empty()).then_some(uri) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_from_header_values() {
        let p = party(Some("\"Jane Doe\" <sip:+4930123@pbx.example.com>;tag=abc".into()));
        assert_eq!(p.name.as_deref(), Some("Jane Doe"));
        assert_eq!(p.number.as_deref(), Some("+4930123"));
        assert_eq!(p.uri.as_deref(), Some("sip:+4930123@pbx.example.com"));
        let p = party(Some("sip:service@127.0.0.1:5060;tag=1".into()));
        assert_eq!((p.name, p.number.as_deref()), (None, Some("service")));
        assert_eq!(party(None), Party::default());
    }
}
