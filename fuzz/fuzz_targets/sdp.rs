//! The SDP of an INVITE (or a SIPREC part) is untrusted: any bytes must give offers or an
//! error. Offers that parse go through what hark does with them: choose a codec by every
//! preference order, write the answer, and the answer must parse back to the same streams.
#![no_main]

use hark::ingest::sip::sdp::{self, LocalMedia};
use hark::media::codec::Codec;
use libfuzzer_sys::fuzz_target;

const PREFERENCES: [&[Codec]; 4] =
    [&[Codec::Pcmu, Codec::Pcma, Codec::Opus], &[Codec::Opus, Codec::Pcma, Codec::Pcmu], &[Codec::Pcma], &[]];

fuzz_target!(|data: &[u8]| {
    let Ok(offers) = sdp::parse(data) else { return };
    assert!(!offers.is_empty(), "Ok without an audio stream");
    for preference in PREFERENCES {
        let mut local = Vec::new();
        for offer in &offers {
            let _ = offer.on_hold();
            let Some(chosen) = sdp::choose(offer, preference) else { continue };
            assert!(preference.contains(&chosen.codec));
            assert!(offer
                .formats
                .iter()
                .any(|f| f.payload_type == chosen.payload_type && f.codec == Some(chosen.codec)));
            local.push(LocalMedia {
                port: offer.port,
                formats: vec![(chosen.payload_type, chosen.codec)],
                telephone_event: chosen.telephone_event,
                direction: sdp::answer_direction(offer),
                label: offer.label.clone(),
            });
        }
        if local.is_empty() {
            continue;
        }
        for address in ["192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap()] {
            let answer = sdp::write(address, u64::MAX, 1, &local);
            if answer.len() > sdp::MAX_SDP_BYTES {
                // A 16 KiB label makes a longer answer; hark's own limit is for what it reads.
                continue;
            }
            let parsed = sdp::parse(answer.as_bytes()).expect("hark's answer parses");
            assert_eq!(parsed.len(), local.len());
            for (back, sent) in parsed.iter().zip(&local) {
                assert_eq!(back.port, sent.port);
                assert_eq!(back.direction, sent.direction);
                assert_eq!(back.address, Some(address));
                assert_eq!(back.label, sent.label);
                let (pt, codec) = sent.formats[0];
                let again = sdp::choose(back, &[codec]).expect("the answer carries its codec");
                assert_eq!(again.codec, codec);
                assert!(back.formats.iter().any(|f| f.payload_type == pt));
            }
        }
    }
});
