//! Cost of the rules engine, without IO.
//!
//! - `rules_1000/*`: one event (a chat message, a call utterance, a score update) through an
//!   engine with 1,000 rules (400 phrase rules with 800 phrases, 200 score rules, 100 emotion
//!   rules, 300 automations) and 2,000 live sessions; the baseline in the same run is the same
//!   event through an engine without rules. Each iteration builds the event (its text is
//!   cloned) and drains the outputs.
//! - `sessions_100k/*`: 100,000 live chat sessions under an SLA policy, each with two pending
//!   deadlines (first response and resolution); an event alternately starts a response clock
//!   (a customer message) and stops it (an agent reply) on a session picked at random, which
//!   moves a timer in the ordered set of 200,000.
//!
//! Memory is printed before the timings: a counting global allocator sums the bytes requested
//! from the system allocator that are still live (the allocator's own rounding and headers are
//! not in it), read before and after building the sessions; the process's resident set from
//! `/proc/self/statm` is printed beside it. Firing 100,000 deadlines is timed once by hand.
//!
//! `cargo bench --bench rules` (add `-- --quick` for a short run).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use criterion::Criterion;
use hark::rules::{
    ActionConfig, AlertCondition, AlertRule, Automation, Condition, DefaultSla, Event, EventKind, Party, RulesConfig,
    RulesEngine, ScoreOp, SessionFacts, Severity, SlaPolicy, Trigger,
};
use hark::session::{Author, Channel};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Counts the bytes live on the heap.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// The resident set in bytes (Linux), 0 where it cannot be read.
fn rss_bytes() -> isize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: isize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

const TEXT: &str = "Hello, I ordered a blue jacket last week and it still has not arrived, can you check the \
                    tracking number for me please?";

fn alert(i: usize, condition: AlertCondition) -> AlertRule {
    AlertRule {
        id: format!("alert-{i}"),
        name: format!("Alert {i}"),
        severity: Severity::Warning,
        enabled: true,
        webhook: None,
        condition,
    }
}

fn automation(i: usize, event: Trigger, conditions: Condition) -> Automation {
    Automation {
        id: format!("automation-{i}"),
        name: format!("Automation {i}"),
        enabled: true,
        event,
        conditions: Some(conditions),
        actions: vec![ActionConfig::AddTag(format!("tag-{i}"))],
    }
}

fn policy() -> SlaPolicy {
    SlaPolicy {
        id: "chat".into(),
        name: "Chat".into(),
        first_response_secs: Some(300),
        next_response_secs: Some(600),
        resolution_secs: Some(86_400),
        warning_fraction: 0.8,
        bot_replies_count: false,
        business_hours: None,
    }
}

/// 1,000 rules: 400 phrase, 200 score and 100 emotion alert rules, 300 automations.
fn thousand_rules() -> RulesConfig {
    let speakers = [Party::Customer, Party::Agent, Party::Any];
    let scores = ["customer_sentiment", "customer_satisfaction", "action_required", "agent_rating"];
    let emotions = ["angry", "sad", "happy", "fearful"];
    let mut alerts = Vec::new();
    for i in 0..400 {
        let phrases = vec![format!("cancel plan {i}"), format!("speak to manager {i}")];
        alerts.push(alert(i, AlertCondition::Phrase { phrases, speaker: speakers[i % 3], channel: None }));
    }
    for i in 400..600 {
        let op = if i % 2 == 0 { ScoreOp::LessThan } else { ScoreOp::GreaterThan };
        let value = Some(if op == ScoreOp::LessThan { -0.5 - (i % 5) as f32 / 10.0 } else { 0.95 });
        alerts.push(alert(i, AlertCondition::Score { score: scores[i % 4].into(), op, value }));
    }
    for i in 600..700 {
        let emotion = emotions[i % 4].into();
        alerts.push(alert(
            i,
            AlertCondition::Emotion { emotion, consecutive: 2 + (i % 5) as u32, speaker: Party::Customer },
        ));
    }
    let mut automations = Vec::new();
    for i in 0..100 {
        let conditions =
            Condition::All(vec![Condition::Author(Party::Customer), Condition::TextContains(format!("keyword {i}"))]);
        automations.push(automation(i, Trigger::MessageCreated, conditions));
    }
    for i in 100..200 {
        let conditions = Condition::Any(vec![Condition::SentimentBelow(-0.9), Condition::Tag(format!("vip-{i}"))]);
        automations.push(automation(i, Trigger::Utterance, conditions));
    }
    for i in 200..300 {
        let plan = Condition::Attribute { name: "plan".into(), equals: format!("plan-{i}") };
        automations.push(automation(
            i,
            Trigger::ScoreUpdated,
            Condition::All(vec![Condition::Channel(Channel::Voice), plan]),
        ));
    }
    RulesConfig {
        alerts,
        sla_policies: vec![policy()],
        default_sla: DefaultSla { chat: Some("chat".into()), voice: None },
        automations,
    }
}

fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn event(session: Uuid, kind: EventKind) -> Event {
    Event { session, tenant: "acme".into(), kind }
}

fn facts(channel: Channel) -> SessionFacts {
    let mut facts = SessionFacts::new(channel);
    facts.contact_name = Some("Ada Lovelace".into());
    facts.country = Some("DE".into());
    facts.attributes = BTreeMap::from([("plan".to_string(), "basic".to_string())]);
    facts
}

/// An engine with `config` and `n` live sessions with `facts` (ids 0..n); outputs are drained
/// after each event, as the shell does.
fn engine(config: RulesConfig, facts: &SessionFacts, n: u128, now: OffsetDateTime) -> RulesEngine {
    let mut engine = RulesEngine::new(config).unwrap();
    for i in 0..n {
        engine.handle(now, event(Uuid::from_u128(i), EventKind::SessionCreated(facts.clone())));
        drain(&mut engine);
    }
    engine
}

fn drain(engine: &mut RulesEngine) {
    while let Some(output) = engine.poll_output() {
        black_box(output);
    }
}

fn rules_1000(c: &mut Criterion) {
    let now = start();
    let mut group = c.benchmark_group("rules_1000");
    for (name, config) in [("baseline_no_rules", RulesConfig::default()), ("with_1000_rules", thousand_rules())] {
        let mut chat = engine(config.clone(), &facts(Channel::Chat), 1000, now);
        let mut i = 0u128;
        group.bench_function(format!("chat_message/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % 1000;
                chat.handle(
                    now,
                    event(Uuid::from_u128(i), EventKind::Message { author: Author::Visitor, text: TEXT.into() }),
                );
                drain(&mut chat);
            })
        });
        let mut voice = engine(config, &facts(Channel::Voice), 1000, now);
        group.bench_function(format!("utterance/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % 1000;
                let kind = EventKind::Utterance {
                    speaker: Author::Customer,
                    text: TEXT.into(),
                    emotion: Some("neutral".into()),
                    sentiment: Some(0.1),
                    start_ms: 0,
                    end_ms: 4000,
                };
                voice.handle(now, event(Uuid::from_u128(i), kind));
                drain(&mut voice);
            })
        });
        group.bench_function(format!("score_updated/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % 1000;
                let kind = EventKind::ScoreUpdated { score: "customer_sentiment".into(), value: 0.2 };
                voice.handle(now, event(Uuid::from_u128(i), kind));
                drain(&mut voice);
            })
        });
    }
    group.finish();
}

const SESSIONS: u128 = 100_000;

/// 100,000 chat sessions with `facts`, each waiting for a first response: two deadlines each.
fn waiting_sessions(facts: &SessionFacts, now: OffsetDateTime) -> RulesEngine {
    let config = RulesConfig {
        sla_policies: vec![policy()],
        default_sla: DefaultSla { chat: Some("chat".into()), voice: None },
        ..RulesConfig::default()
    };
    let mut engine = engine(config, facts, SESSIONS, now);
    for i in 0..SESSIONS {
        engine.handle(
            now,
            event(Uuid::from_u128(i), EventKind::Message { author: Author::Visitor, text: "hello?".into() }),
        );
        drain(&mut engine);
    }
    engine
}

fn memory_and_firing() {
    let now = start();
    let n = SESSIONS as isize;
    let mut engines = Vec::new();
    for (name, facts) in
        [("bare facts", SessionFacts::new(Channel::Chat)), ("a contact, country, attribute", facts(Channel::Chat))]
    {
        let (bytes, rss) = (live_bytes(), rss_bytes());
        engines.push(waiting_sessions(&facts, now));
        let (bytes, rss) = (live_bytes() - bytes, rss_bytes() - rss);
        println!(
            "sessions_100k/memory ({name}): {SESSIONS} sessions, {bytes} B requested ({} B per session), \
             resident set +{rss} B ({} B per session)",
            bytes / n,
            rss / n
        );
    }
    let before = live_bytes();
    let rules = RulesEngine::new(thousand_rules()).unwrap();
    println!("rules_1000/memory: the compiled 1,000 rules (and their configuration) take {} B", live_bytes() - before);
    drop(rules);

    // Every first-response warning is due 240 s after `now`: fire them all at once.
    let mut engine = engines.pop().unwrap();
    drop(engines);
    let started = Instant::now();
    engine.handle_timeout(now + Duration::seconds(240));
    let mut outputs = 0;
    while engine.poll_output().is_some() {
        outputs += 1;
    }
    let elapsed = started.elapsed();
    println!(
        "sessions_100k/fire_warnings: {outputs} warnings in {:.1} ms, {:.0} ns each",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / outputs as f64
    );
}

fn sessions_100k(c: &mut Criterion) {
    let now = start();
    let mut engine = waiting_sessions(&facts(Channel::Chat), now);
    let mut waiting = vec![true; SESSIONS as usize];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let later = now + Duration::seconds(1);
    c.bench_function("sessions_100k/message_or_reply", |b| {
        b.iter(|| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed % SESSIONS as u64) as usize;
            let author = if waiting[i] { Author::Agent { name: "Dana".into() } } else { Author::Visitor };
            waiting[i] = !waiting[i];
            engine.handle(later, event(Uuid::from_u128(i as u128), EventKind::Message { author, text: "ok".into() }));
            drain(&mut engine);
        })
    });
}

fn main() {
    memory_and_firing();
    let mut c = Criterion::default().configure_from_args();
    rules_1000(&mut c);
    sessions_100k(&mut c);
    c.final_summary();
}
