//! A jambonz or audio_fork connection under hostile input. The first byte picks the dialect and
//! the URL query fallbacks; the rest is frames (`kind, length u16 LE, payload`: kind % 4 is
//! 0 text, 1 or 2 binary L16, 3 the peer's close). Metadata JSON, DTMF text and cut sample
//! frames must give events or a close, never a panic, and the audio must be placed in order.
#![no_main]

use hark::ingest::stream::{audio_fork, jambonz, Event, Protocol, StreamQuery};
use hark_fuzz::{frames, Shell};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&config, data)) = data.split_first() else { return };
    let query = StreamQuery {
        access_token: None,
        call_id: (config & 0x08 != 0).then(|| "q-1".to_string()),
        sample_rate: [None, Some("8000"), Some("16k"), Some("44100")][usize::from(config >> 1 & 3)].map(str::to_string),
        mix_type: [None, Some("mono"), Some("stereo"), Some("mixed")][usize::from(config >> 4 & 3)].map(str::to_string),
    };
    let mut core = if config & 1 == 0 { jambonz::protocol(query) } else { audio_fork::protocol(query) };
    let mut shell = Shell::default();
    let mut events: Vec<Event> = Vec::new();
    let mut channels = 0;
    for (kind, payload) in frames(data) {
        let result = match kind % 4 {
            0 => match std::str::from_utf8(payload) {
                Ok(text) => core.text(text, &mut events),
                Err(_) => continue,
            },
            3 => {
                core.closed(&mut events);
                Ok(())
            }
            _ => core.binary(payload, &mut events),
        };
        if result.is_err() {
            break;
        }
        // Every channel of a binary frame gets the same sample count at the same stream time.
        if let Some(Event::Start(start)) = events.first() {
            channels = start.speakers.len();
        }
        let audio: Vec<(u64, usize)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Audio { at, samples, .. } => Some((*at, samples.len())),
                _ => None,
            })
            .collect();
        if !audio.is_empty() {
            assert_eq!(audio.len(), channels);
            assert!(audio.iter().all(|a| *a == audio[0] && a.1 > 0));
        }
        if !shell.take(&mut events) {
            break;
        }
    }
    shell.finish();
});
