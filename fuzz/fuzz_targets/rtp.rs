//! The RTP parser takes untrusted datagrams: any bytes must give a packet or an error, and a
//! packet must lie inside the datagram.
#![no_main]

use hark::media::rtp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = rtp::parse(data) {
        let header = rtp::FIXED_HEADER_LEN + packet.csrc_count() * 4;
        let extension = packet.extension.map_or(0, |e| 4 + e.data.len());
        assert!(header + extension + packet.payload.len() <= data.len());
        assert_eq!(packet.csrcs().count(), packet.csrc_count());
    }
});
