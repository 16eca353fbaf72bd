//! SIP messages as hark receives them, before and in its own code: the input is one UDP
//! datagram and also a TCP byte stream. rsipstack parses it (`SipMessage::try_from`, the TCP
//! codec's Content-Length framing), stamps the Via with the source (`update_msg_received`),
//! keys the transaction and dialog; then hark reads what `on_request`/`answer` read: the
//! source address from Via, the To tag, From/To/Call-ID values and the body by Content-Type
//! (SDP or SIPREC multipart). Nothing may panic.
#![no_main]

use std::net::SocketAddr;

use bytes::BytesMut;
use hark::ingest::sip::{sdp, siprec};
use libfuzzer_sys::fuzz_target;
use rsipstack::dialog::DialogId;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, SipMessage, Transport};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transport::stream::{SipCodec, SipCodecType};
use rsipstack::transport::SipConnection;
use tokio_util::codec::Decoder;

fn receive(msg: SipMessage, transport: Transport) {
    let _ = msg.to_bytes();
    let _ = msg.to_string();
    let source: SocketAddr = "198.51.100.9:5070".parse().unwrap();
    let Ok(msg) = SipConnection::update_msg_received(msg, source, transport) else { return };
    let request = match msg {
        SipMessage::Request(request) => request,
        SipMessage::Response(response) => {
            let _ = TransactionKey::from_response(&response, TransactionRole::Client);
            let _ = DialogId::try_from((&response, TransactionRole::Client));
            return;
        }
    };
    let _ = TransactionKey::from_request(&request, TransactionRole::Server);
    let _ = DialogId::try_from((&request, TransactionRole::Server));
    // hark's `source_ip`.
    if let Ok(via) = request.via_header() {
        if let Ok((_, target)) = SipConnection::parse_target_from_via(via) {
            let _ = target.host.to_string().trim_matches(|c| c == '[' || c == ']').parse::<std::net::IpAddr>();
        }
    }
    let _ = request.to_header().ok().and_then(|to| to.tag().ok().flatten());
    let _ = request.from_header().ok().map(|h| h.value().to_string());
    let _ = request.to_header().ok().map(|h| h.value().to_string());
    let _ = request.call_id_header().map(|h| h.value().to_string());
    let _ = request.cseq_header().ok().map(|c| (c.seq().ok(), c.method().ok()));
    let _ = request.method.to_string();
    // hark's `answer`: the body by its Content-Type.
    let content_type = request.headers.iter().find_map(|h| match h {
        Header::ContentType(ct) => Some(ct.value().to_ascii_lowercase()),
        _ => None,
    });
    match content_type.as_deref() {
        Some(ct) if ct.starts_with("application/sdp") => {
            let _ = sdp::parse(&request.body);
        }
        Some(ct) if ct.starts_with("multipart/mixed") => {
            if let Ok(parts) = siprec::split(ct, &request.body) {
                if let Ok(offers) = sdp::parse(&parts.sdp) {
                    let _ = siprec::speakers(&parts.metadata.unwrap_or_default(), &offers);
                }
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // UDP: one datagram is one message.
    if let Ok(msg) = SipMessage::try_from(data) {
        receive(msg, Transport::Udp);
    }
    // TCP: the codec frames messages out of the byte stream by Content-Length.
    let mut codec = SipCodec::new();
    let mut buffer = BytesMut::from(data);
    for _ in 0..64 {
        match codec.decode(&mut buffer) {
            Ok(Some(SipCodecType::Message(msg))) => receive(msg, Transport::Tcp),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
