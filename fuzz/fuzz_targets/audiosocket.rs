//! An Asterisk AudioSocket TCP stream under hostile input, read as `read_frame` reads it: a
//! 3-byte header (kind, u16 big-endian length), then the payload; a short read is the end of
//! the connection. Frames must decode (and re-encode to themselves) or be refused, the core
//! must give events or an error, and the audio must be placed in order.
#![no_main]

use hark::ingest::audiosocket::{header, AudioSocket, Frame};
use hark_fuzz::Shell;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut core = AudioSocket::new();
    let mut shell = Shell::default();
    let mut events = Vec::new();
    let mut rest = data;
    while let [a, b, c, tail @ ..] = rest {
        let (kind, len) = header([*a, *b, *c]);
        if tail.len() < len {
            break;
        }
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let Ok(frame) = Frame::decode(kind, payload) else { break };
        let bytes = frame.encode();
        assert_eq!(Frame::decode(bytes[0], &bytes[3..]), Ok(frame), "encode/decode round trip");
        if matches!(frame, Frame::Audio(_) | Frame::Uuid(_)) {
            assert_eq!(&bytes[..], &data[data.len() - tail.len() - 3 - len..data.len() - tail.len()]);
        }
        if core.handle(frame, &mut events).is_err() || !shell.take(&mut events) {
            break;
        }
    }
    shell.finish();
});
