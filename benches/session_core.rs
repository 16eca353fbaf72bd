//! Cost of the hot path of a chat, without IO: a visitor message through the session core and
//! the knowledge-file bot's answer. The baseline in the same run is the core alone with the bot
//! silenced (a human holds the chat).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use hark::chat::bot::{Faq, DEFAULT_FAQ};
use hark::clock::Now;
use hark::session::core::{Input, Output, SessionCore, Timing};
use hark::session::{Card, Channel};

fn core() -> (SessionCore, Now) {
    let now = Now { mono: Instant::now(), wall: time::OffsetDateTime::now_utc() };
    let card = Card::new(uuid::Uuid::new_v4(), "t", "s", Channel::Chat, now.wall);
    let timing = Timing { idle_timeout: Duration::from_secs(600), release_grace: Duration::from_secs(30) };
    (SessionCore::new(card, timing, now), now)
}

fn bench(c: &mut Criterion) {
    let faq = Faq::parse(DEFAULT_FAQ).unwrap();
    let mut group = c.benchmark_group("visitor_message");
    group.bench_function("held_by_agent_baseline", |b| {
        let (mut s, now) = core();
        s.handle(Input::TakeOver { by: "a".into(), agent_name: "Dana".into() }, now).unwrap();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let input = Input::VisitorMessage { client_id: i.to_string(), text: "Where is my parcel?".into() };
            black_box(s.handle(input, now).unwrap());
            while s.poll_output().is_some() {}
        });
    });
    group.bench_function("answered_by_faq_bot", |b| {
        let (mut s, now) = core();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let input = Input::VisitorMessage { client_id: i.to_string(), text: "Where is my parcel?".into() };
            black_box(s.handle(input, now).unwrap());
            while let Some(output) = s.poll_output() {
                if let Output::AskBot { text, .. } = output {
                    let reply = faq.answer(&text).to_string();
                    s.handle(Input::BotReply { text: reply }, now).unwrap();
                }
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
