//! A whole media stream under hostile input: the input is cut into datagrams (a length byte,
//! then that many bytes, the first byte of each also advancing the clock), each pushed and
//! polled. Nothing may panic, and audio must come out in stream order.
#![no_main]

use hark::media::codec::Codec;
use hark::media::pipeline::{MediaStream, Output};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Ok(mut stream) = MediaStream::new(&[(0, Codec::Pcmu), (8, Codec::Pcma)], Some(101)) else { return };
    let t0 = Instant::now();
    let mut now = t0;
    let mut end_ms = 0;
    let mut check = |output: Output| {
        if let Output::Audio { start_ms, samples } = output {
            assert!(start_ms + 1 >= end_ms, "audio went back in time");
            end_ms = start_ms + samples.len() as u64 / 16;
        }
    };
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (datagram, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        now += Duration::from_millis(u64::from(datagram.first().copied().unwrap_or(0) % 64));
        let _ = stream.push_rtp(datagram, now);
        while let Some(output) = stream.poll(now) {
            check(output);
        }
    }
    stream.flush();
    while let Some(output) = stream.poll(now) {
        check(output);
    }
});
