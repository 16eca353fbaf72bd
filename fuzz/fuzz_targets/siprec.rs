//! A SIPREC INVITE's multipart body and its recording metadata are untrusted: splitting and
//! reading them never panics, and what they yield goes on through the SDP parser and the
//! speaker mapping as in `answer`.
#![no_main]

use hark::ingest::sip::{sdp, siprec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parts) = siprec::split("multipart/mixed;boundary=rec", data) {
        assert!(!parts.sdp.is_empty());
        if let Ok(offers) = sdp::parse(&parts.sdp) {
            let metadata = parts.metadata.unwrap_or_default();
            let speakers = siprec::speakers(&metadata, &offers);
            assert_eq!(speakers.len(), offers.len());
        }
    }
    // The metadata reader on its own, as quick-xml sees arbitrary text.
    let metadata = siprec::parse_metadata(&String::from_utf8_lossy(data));
    let _ = metadata.participants.len() + metadata.streams.len() + metadata.sends.len();
});
