//! A Twilio Media Streams connection under hostile input: each line of the input is one text
//! frame. The core must answer every frame with events or a close, never panic; its events go
//! through the shell's part (the call's clocks), where audio must be placed without overlaps.
#![no_main]

use hark::ingest::stream::twilio::Twilio;
use hark::ingest::stream::Protocol;
use hark_fuzz::Shell;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut core = Twilio::new();
    let mut shell = Shell::default();
    let mut events = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        // WebSocket text frames are UTF-8 (tungstenite checks); the rest is the fuzzer's.
        let Ok(text) = std::str::from_utf8(line) else { continue };
        if core.text(text, &mut events).is_err() || !shell.take(&mut events) {
            break;
        }
    }
    shell.finish();
});
