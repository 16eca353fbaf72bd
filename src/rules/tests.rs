//! The engine driven by hand: events with explicit times, deadlines checked a nanosecond before
//! and at their moment, outputs compared whole.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::*;
use crate::session::{Author, Channel};

/// Monday 2026-03-02, 10:00 UTC.
const T0: OffsetDateTime = match OffsetDateTime::from_unix_timestamp(1772445600) {
    Ok(t0) => t0,
    Err(_) => panic!("in range"),
};
const NS: Duration = Duration::nanoseconds(1);
const ID: Uuid = Uuid::from_u128(1);

/// `y-m-d h:min` UTC.
pub(super) fn utc(y: i32, m: u8, d: u8, h: u8, min: u8) -> OffsetDateTime {
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
    date.with_hms(h, min, 0).unwrap().assume_utc()
}

fn at(secs: i64) -> OffsetDateTime {
    T0 + Duration::seconds(secs)
}

fn engine(toml: &str) -> RulesEngine {
    RulesEngine::new(RulesConfig::from_toml(toml).unwrap()).unwrap()
}

fn send(engine: &mut RulesEngine, now: OffsetDateTime, kind: EventKind) -> Vec<Output> {
    send_to(engine, ID, now, kind)
}

fn send_to(engine: &mut RulesEngine, session: Uuid, now: OffsetDateTime, kind: EventKind) -> Vec<Output> {
    engine.handle(now, Event { session, tenant: "acme".into(), kind });
    drain(engine)
}

fn tick(engine: &mut RulesEngine, now: OffsetDateTime) -> Vec<Output> {
    engine.handle_timeout(now);
    drain(engine)
}

fn drain(engine: &mut RulesEngine) -> Vec<Output> {
    std::iter::from_fn(|| engine.poll_output()).collect()
}

fn created(channel: Channel) -> EventKind {
    EventKind::SessionCreated(SessionFacts::new(channel))
}

fn message(author: Author, text: &str) -> EventKind {
    EventKind::Message { author, text: text.into() }
}

fn visitor(text: &str) -> EventKind {
    message(Author::Visitor, text)
}

fn agent(text: &str) -> EventKind {
    message(Author::Agent { name: "Dana".into() }, text)
}

fn utterance(speaker: Author, text: &str, emotion: Option<&str>) -> EventKind {
    let emotion = emotion.map(str::to_string);
    EventKind::Utterance { speaker, text: text.into(), emotion, sentiment: None, start_ms: 0, end_ms: 1000 }
}

fn rule(id: &str, name: &str) -> RuleRef {
    RuleRef { id: id.into(), name: name.into() }
}

fn change(metric: SlaMetric, status: SlaStatus, deadline: OffsetDateTime, now: OffsetDateTime) -> Output {
    let (session, tenant, policy) = (ID, "acme".into(), rule("chat", "Chat"));
    Output::SlaChanged(SlaChange { session, tenant, policy, metric, status, deadline, at: now })
}

fn card(state: SlaState, next: Option<(SlaMetric, OffsetDateTime)>) -> Output {
    let (session, tenant, policy) = (ID, "acme".into(), rule("chat", "Chat"));
    let (next, deadline) = (next.map(|n| n.0), next.map(|n| n.1));
    Output::SlaState(SlaCard { session, tenant, policy, state, next, deadline })
}

/// (rule id, message, evidence, moment) of each alert.
fn alerts(outputs: &[Output]) -> Vec<(String, String, Option<String>, OffsetDateTime)> {
    let alerts = outputs.iter().filter_map(|o| match o {
        Output::Alert(a) => Some((a.rule.id.clone(), a.message.clone(), a.evidence.clone(), a.at)),
        _ => None,
    });
    alerts.collect()
}

fn actions(outputs: &[Output]) -> Vec<Action> {
    outputs.iter().filter_map(|o| if let Output::Action(a) = o { Some(a.action.clone()) } else { None }).collect()
}

fn add_tag(tag: &str) -> Action {
    Action::AddTag { tag: tag.into() }
}

fn remove_tag(tag: &str) -> Action {
    Action::RemoveTag { tag: tag.into() }
}

/// A chat policy "chat" as the chat default: first response 60 s, next response 120 s,
/// resolution 1 h, warnings at half time; `extra` is appended to its table.
fn chat_policy(extra: &str) -> String {
    format!(
        r#"
        default_sla = {{ chat = "chat" }}
        [[sla_policies]]
        id = "chat"
        name = "Chat"
        first_response_secs = 60
        next_response_secs = 120
        resolution_secs = 3600
        warning_fraction = 0.5
        {extra}
        "#
    )
}

#[test]
fn first_response_warns_and_breaches_exactly_at_its_deadlines() {
    let config = chat_policy("")
        + r#"
        [[alerts]]
        id = "frt"
        name = "FRT breached"
        severity = "critical"
        condition = { kind = "sla", metric = "first_response" }
        "#;
    let mut e = engine(&config);
    use SlaMetric::*;
    use SlaStatus::*;
    assert_eq!(send(&mut e, T0, created(Channel::Chat)), [card(SlaState::Active, Some((Resolution, at(3600))))]);
    assert_eq!(send(&mut e, at(10), visitor("hello?")), [card(SlaState::Active, Some((FirstResponse, at(70))))]);
    assert_eq!(e.poll_timeout(), Some(at(40)));
    assert_eq!(tick(&mut e, at(40) - NS), []);
    assert_eq!(tick(&mut e, at(40)), [change(FirstResponse, Warning, at(70), at(40))]);
    assert_eq!(e.poll_timeout(), Some(at(70)));
    assert_eq!(tick(&mut e, at(70) - NS), []);
    let breach = tick(&mut e, at(70));
    assert_eq!(breach[0], change(FirstResponse, Breached, at(70), at(70)));
    let message = "first response SLA of Chat breached".to_string();
    assert_eq!(alerts(&breach), [("frt".into(), message, None, at(70))]);
    assert_eq!(breach[2], card(SlaState::ActiveWithMisses, Some((Resolution, at(3600)))));
    assert_eq!(breach.len(), 3);
    // The late reply changes nothing: the first response is missed.
    assert_eq!(send(&mut e, at(80), agent("sorry")), []);
    assert_eq!(e.poll_timeout(), Some(at(1800)));
}

#[test]
fn a_reply_before_the_deadline_hits_and_next_response_runs_from_the_next_wait() {
    let mut e = engine(&chat_policy(""));
    use SlaMetric::*;
    use SlaStatus::*;
    send(&mut e, T0, created(Channel::Chat));
    send(&mut e, T0, visitor("hi"));
    let reply = send(&mut e, at(60) - NS, agent("hello"));
    let expected = [
        change(FirstResponse, Warning, at(60), at(30)),
        change(FirstResponse, Hit, at(60), at(60) - NS),
        card(SlaState::Active, Some((Resolution, at(3600)))),
    ];
    assert_eq!(reply, expected);
    // The first response's timers are gone: next is the resolution warning.
    assert_eq!(e.poll_timeout(), Some(at(1800)));
    assert_eq!(
        send(&mut e, at(100), visitor("one more thing")),
        [card(SlaState::Active, Some((NextResponse, at(220))))]
    );
    assert_eq!(send(&mut e, at(150), visitor("hello?")), []);
    assert_eq!(tick(&mut e, at(220) - NS), [change(NextResponse, Warning, at(220), at(160))]);
    let breach = tick(&mut e, at(220));
    assert_eq!(
        breach,
        [
            change(NextResponse, Breached, at(220), at(220)),
            card(SlaState::ActiveWithMisses, Some((Resolution, at(3600))))
        ]
    );
}

#[test]
fn a_reply_at_the_very_deadline_is_late() {
    let mut e = engine(&chat_policy(""));
    send(&mut e, T0, created(Channel::Chat));
    send(&mut e, T0, visitor("hi"));
    // No timeout call in between: the event is handled after the deadlines due by its time.
    let out = send(&mut e, at(60), agent("hello"));
    let statuses: Vec<_> =
        out.iter().filter_map(|o| if let Output::SlaChanged(c) = o { Some(c.status) } else { None }).collect();
    assert_eq!(statuses, [SlaStatus::Warning, SlaStatus::Breached]);
}

#[test]
fn resolution_breaches_at_its_deadline_and_an_ended_session_hits_it() {
    let mut e = engine(&chat_policy(""));
    use SlaMetric::*;
    use SlaStatus::*;
    send(&mut e, T0, created(Channel::Chat));
    assert_eq!(tick(&mut e, at(1800)), [change(Resolution, Warning, at(3600), at(1800))]);
    assert_eq!(tick(&mut e, at(3600) - NS), []);
    assert_eq!(
        tick(&mut e, at(3600)),
        [change(Resolution, Breached, at(3600), at(3600)), card(SlaState::Missed, None)]
    );
    assert_eq!(e.poll_timeout(), None);

    let mut e = engine(&chat_policy(""));
    send(&mut e, T0, created(Channel::Chat));
    send(&mut e, at(5), visitor("hi"));
    let end = send(&mut e, at(30), EventKind::SessionEnded);
    let expected = [
        change(FirstResponse, Cancelled, at(65), at(30)),
        change(Resolution, Hit, at(3600), at(30)),
        card(SlaState::Hit, None),
    ];
    assert_eq!(end, expected);
    assert_eq!((e.poll_timeout(), e.session_count()), (None, 0));
    // Events of a session that ended are ignored.
    assert_eq!(send(&mut e, at(40), visitor("hello?")), []);
}

#[test]
fn business_hours_move_deadlines_past_the_weekend_and_holidays() {
    let config = r#"
        default_sla = { chat = "chat" }
        [[sla_policies]]
        id = "chat"
        name = "Chat"
        first_response_secs = 3600
        [sla_policies.business_hours]
        time_zone = "Europe/Berlin"
        holidays = ["2026-03-09"]
        [sla_policies.business_hours.weekly]
        mon = ["09:00-17:00"]
        tue = ["09:00-17:00"]
        wed = ["09:00-17:00"]
        thu = ["09:00-17:00"]
        fri = ["09:00-12:00", "13:00-17:00"]
    "#;
    let mut e = engine(config);
    // Friday 16:30 in Berlin (UTC+1); Monday is a holiday, so the hour runs out on Tuesday
    // 09:30 local. The warning (48 min) comes Tuesday 09:18.
    let friday = utc(2026, 3, 6, 15, 30);
    send(&mut e, friday, created(Channel::Chat));
    send(&mut e, friday, visitor("anyone?"));
    assert_eq!(e.poll_timeout(), Some(utc(2026, 3, 10, 8, 18)));
    assert_eq!(tick(&mut e, utc(2026, 3, 10, 8, 18) - NS), []);
    let warning = tick(&mut e, utc(2026, 3, 10, 8, 18));
    assert!(matches!(&warning[..], [Output::SlaChanged(c)] if c.deadline == utc(2026, 3, 10, 8, 30)));
    let breach = tick(&mut e, utc(2026, 3, 10, 8, 30));
    assert!(matches!(&breach[0], Output::SlaChanged(c) if c.status == SlaStatus::Breached));
}

#[test]
fn bot_replies_answer_only_when_the_policy_says_so() {
    for (counts, answered) in [(false, false), (true, true)] {
        let mut e = engine(&chat_policy(&format!("bot_replies_count = {counts}")));
        send(&mut e, T0, created(Channel::Chat));
        send(&mut e, T0, visitor("hi"));
        let out = send(&mut e, at(5), message(Author::Bot, "I am a bot"));
        let hit = change(SlaMetric::FirstResponse, SlaStatus::Hit, at(60), at(5));
        assert_eq!(out.contains(&hit), answered, "bot_replies_count = {counts}");
        assert_eq!(e.poll_timeout(), Some(if answered { at(1800) } else { at(30) }));
    }
}

#[test]
fn phrase_rules_fire_for_their_speaker_once_per_session() {
    let config = r#"
        [[alerts]]
        id = "cancel"
        name = "Wants to cancel"
        webhook = "https://hooks.example/alerts"
        condition = { kind = "phrase", phrases = ["cancel my contract", "terminate"], speaker = "customer" }
        [[alerts]]
        id = "rude"
        name = "Agent rude"
        condition = { kind = "phrase", phrases = ["calm down"], speaker = "agent", channel = "voice" }
    "#;
    let mut e = engine(config);
    send(&mut e, T0, created(Channel::Voice));
    let agent_says = utterance(Author::Agent { name: "Dana".into() }, "You can cancel my contract, said nobody", None);
    assert_eq!(send(&mut e, at(1), agent_says), []);
    let text = "Honestly I want to CANCEL my contract.";
    let out = send(&mut e, at(2), utterance(Author::Customer, text, None));
    let expected = ("cancel".to_string(), "customer said \"cancel my contract\"".to_string(), Some(text.into()), at(2));
    assert_eq!(alerts(&out), [expected]);
    let [Output::Alert(alert), Output::Action(hook)] = &out[..] else { panic!("{out:?}") };
    let payload = serde_json::to_value(alert).unwrap();
    assert_eq!(hook.action, Action::Webhook { url: "https://hooks.example/alerts".into(), payload });
    assert_eq!(send(&mut e, at(3), utterance(Author::Customer, "terminate it, cancel my contract", None)), []);
    // The customer saying the agent's phrase does nothing; the agent saying it does.
    assert_eq!(send(&mut e, at(4), utterance(Author::Customer, "calm down", None)), []);
    let out = send(&mut e, at(5), utterance(Author::Agent { name: "Dana".into() }, "Calm down, sir", None));
    assert_eq!(alerts(&out)[0].1, "agent said \"calm down\"");
    // On chat, the agent rule is off (voice only) and the visitor is the customer.
    let chat = Uuid::from_u128(2);
    send_to(&mut e, chat, T0, created(Channel::Chat));
    assert_eq!(send_to(&mut e, chat, at(1), agent("calm down")), []);
    assert_eq!(alerts(&send_to(&mut e, chat, at(2), visitor("terminate"))).len(), 1);
}

#[test]
fn emotion_rules_fire_when_a_streak_reaches_n() {
    let config = r#"
        [[alerts]]
        id = "angry"
        name = "Angry customer"
        condition = { kind = "emotion", emotion = "angry", consecutive = 3 }
    "#;
    let mut e = engine(config);
    send(&mut e, T0, created(Channel::Voice));
    let (customer, dana) = (Author::Customer, Author::Agent { name: "Dana".into() });
    let utterances = [
        (&customer, Some("angry")),
        (&customer, Some("Angry")),
        (&dana, Some("angry")),
        (&customer, Some("angry")),
        (&customer, Some("angry")),
        (&customer, Some("neutral")),
        (&customer, Some("angry")),
        (&customer, Some("angry")),
        (&customer, None),
        (&customer, Some("angry")),
        (&customer, Some("angry")),
        (&customer, Some("angry")),
    ];
    let mut fired = Vec::new();
    for (i, (speaker, emotion)) in utterances.into_iter().enumerate() {
        let text = format!("utterance {i}");
        let out = send(&mut e, at(i as i64), utterance(speaker.clone(), &text, emotion));
        fired.extend(alerts(&out).into_iter().map(|a| (i, a.1, a.2)));
    }
    // The agent's utterance does not break the customer's streak; another emotion, or none,
    // does; a streak fires once.
    let message = "customer angry for 3 utterances in a row".to_string();
    assert_eq!(fired, [(3, message.clone(), Some("utterance 3".into())), (11, message, Some("utterance 11".into()))]);
}

#[test]
fn silence_and_hold_fire_at_their_deadlines_once_per_stretch() {
    let config = r#"
        [[alerts]]
        id = "quiet"
        name = "Dead air"
        condition = { kind = "silence", seconds = 30 }
        [[alerts]]
        id = "very-quiet"
        name = "Long dead air"
        condition = { kind = "silence", seconds = 60 }
        [[alerts]]
        id = "hold"
        name = "Long hold"
        condition = { kind = "hold", seconds = 45 }
    "#;
    let mut e = engine(config);
    send(&mut e, T0, created(Channel::Voice));
    assert_eq!(e.poll_timeout(), Some(at(30)));
    send(&mut e, at(20), utterance(Author::Customer, "hello", None));
    assert_eq!(e.poll_timeout(), Some(at(50)));
    assert_eq!(tick(&mut e, at(50) - NS), []);
    assert_eq!(alerts(&tick(&mut e, at(50))), [("quiet".into(), "nobody spoke for 30 s".into(), None, at(50))]);
    assert_eq!(e.poll_timeout(), Some(at(80)));
    // Handled late, the alert still carries its own moment.
    assert_eq!(alerts(&tick(&mut e, at(95))), [("very-quiet".into(), "nobody spoke for 60 s".into(), None, at(80))]);
    assert_eq!(e.poll_timeout(), None);
    send(&mut e, at(100), utterance(Author::Agent { name: "Dana".into() }, "still there?", None));
    assert_eq!(e.poll_timeout(), Some(at(130)));
    // On hold there is no silence, only the hold clock.
    send(&mut e, at(110), EventKind::HoldStarted);
    assert_eq!(e.poll_timeout(), Some(at(155)));
    assert_eq!(alerts(&tick(&mut e, at(155))), [("hold".into(), "on hold for 45 s".into(), None, at(155))]);
    send(&mut e, at(200), EventKind::HoldEnded);
    assert_eq!(e.poll_timeout(), Some(at(230)));
    // Chat sessions have no silence clock.
    send_to(&mut e, Uuid::from_u128(2), at(200), created(Channel::Chat));
    assert_eq!(e.poll_timeout(), Some(at(230)));
}

#[test]
fn score_rules_fire_once_per_episode() {
    let config = r#"
        [[alerts]]
        id = "csat"
        name = "Unhappy"
        condition = { kind = "score", score = "customer_satisfaction", op = "less_than", value = 5 }
        [[alerts]]
        id = "action"
        name = "Action required"
        severity = "info"
        condition = { kind = "score", score = "action_required", op = "greater_than", value = 0.5 }
        [[alerts]]
        id = "off"
        name = "Off"
        condition = { kind = "score", score = "customer_satisfaction", op = "off" }
    "#;
    let mut e = engine(config);
    send(&mut e, T0, created(Channel::Chat));
    let score = |score: &str, value: f32| EventKind::ScoreUpdated { score: score.into(), value };
    let fired: Vec<String> = [4.0, 3.0, 5.0, 2.0, 2.5]
        .into_iter()
        .flat_map(|v| alerts(&send(&mut e, T0, score("customer_satisfaction", v))))
        .map(|a| a.1)
        .collect();
    assert_eq!(fired, ["customer_satisfaction is 4, below 5", "customer_satisfaction is 2, below 5"]);
    let out = send(&mut e, T0, score("action_required", 0.9));
    let [Output::Alert(alert)] = &out[..] else { panic!("{out:?}") };
    assert_eq!(
        (alert.kind, alert.severity, alert.message.as_str()),
        (AlertKind::Score, Severity::Info, "action_required is 0.9, above 0.5")
    );
}

#[test]
fn automations_tag_and_send_a_templated_message_with_a_fallback() {
    let config = r#"
        [[automations]]
        id = "refund"
        name = "Refund requests"
        event = "message_created"
        conditions = { all = [{ author = "customer" }, { text_contains = "Refund" }, { any = [{ country = "DE" }, { country = "AT" }] }] }
        actions = [
            { add_tag = "refund" },
            { send_message = "Hi {{contact.name || 'there'}}, {{agent.name || 'an agent'}} will look at your refund." },
            { set_priority = "high" },
        ]
    "#;
    let mut e = engine(config);
    let mut facts = SessionFacts::new(Channel::Chat);
    facts.country = Some("de".into());
    send(&mut e, T0, EventKind::SessionCreated(facts.clone()));
    assert_eq!(actions(&send(&mut e, at(1), visitor("Where is my parcel?"))), []);
    let out = send(&mut e, at(2), visitor("I want a REFUND"));
    let text = "Hi there, an agent will look at your refund.".to_string();
    let expected = [add_tag("refund"), Action::SendMessage { text }, Action::SetPriority { priority: Priority::High }];
    assert_eq!(actions(&out), expected);
    let Output::Action(first) = &out[0] else { panic!("{out:?}") };
    assert_eq!((first.session, first.tenant.as_str(), &first.rule), (ID, "acme", &rule("refund", "Refund requests")));

    let other = Uuid::from_u128(2);
    facts.contact_name = Some("Ada".into());
    send_to(&mut e, other, T0, EventKind::SessionCreated(facts));
    send_to(&mut e, other, at(1), EventKind::TakeOver { agent: "Dana".into() });
    let out = send_to(&mut e, other, at(2), visitor("refund please"));
    assert_eq!(actions(&out)[1], Action::SendMessage { text: "Hi Ada, Dana will look at your refund.".into() });
}

#[test]
fn an_automation_that_tags_on_tag_added_does_not_loop() {
    // Left alone, this would remove and add "seen" forever: each add is a new tag_added.
    let config = r#"
        [[automations]]
        id = "retag"
        name = "Re-tag"
        event = "tag_added"
        conditions = { tag = "vip" }
        actions = [{ remove_tag = "seen" }, { add_tag = "seen" }]
    "#;
    let mut e = engine(config);
    send(&mut e, T0, created(Channel::Chat));
    let out = send(&mut e, at(1), EventKind::TagAdded("vip".into()));
    assert_eq!(actions(&out), [remove_tag("seen"), add_tag("seen")]);
    // A new outside event runs it again, once.
    let out = send(&mut e, at(2), EventKind::TagAdded("other".into()));
    assert_eq!(actions(&out), [remove_tag("seen"), add_tag("seen")]);
}

#[test]
fn cause_chains_stop_at_the_depth_limit() {
    // t0 → t1 → t2 → …: each automation answers the previous one's tag.
    // In reverse order, so each runs on the event the one before caused, not on the first.
    let config: String = (0..12)
        .rev()
        .map(|i| {
            format!(
                "[[automations]]\nid = \"a{i}\"\nname = \"a{i}\"\nevent = \"tag_added\"\n\
                 conditions = {{ tag = \"t{i}\" }}\nactions = [{{ add_tag = \"t{}\" }}]\n",
                i + 1
            )
        })
        .collect();
    let mut e = engine(&config);
    send(&mut e, T0, created(Channel::Chat));
    let out = send(&mut e, at(1), EventKind::TagAdded("t0".into()));
    let expected: Vec<_> = (1..=MAX_CAUSE_DEPTH).map(|i| add_tag(&format!("t{i}"))).collect();
    assert_eq!(actions(&out), expected);
}

#[test]
fn apply_sla_policy_and_resolve_from_automations() {
    let config = chat_policy("")
        + r#"
        [[sla_policies]]
        id = "vip"
        name = "VIP"
        first_response_secs = 20
        [[automations]]
        id = "vip"
        name = "VIP first"
        event = "tag_added"
        conditions = { tag = "vip" }
        actions = [{ apply_sla_policy = "vip" }]
        [[automations]]
        id = "thanks"
        name = "Resolve on thanks"
        event = "message_created"
        conditions = { all = [{ author = "customer" }, { text_contains = "thanks, bye" }] }
        actions = ["resolve"]
    "#;
    let mut e = engine(&config);
    send(&mut e, T0, created(Channel::Chat));
    send(&mut e, at(10), visitor("hi"));
    // The VIP policy's first response runs from the wait's start, and it has no resolution.
    let out = send(&mut e, at(12), EventKind::TagAdded("vip".into()));
    // The chat policy's resolution clock has no place in the VIP policy.
    assert_eq!(out[1], change(SlaMetric::Resolution, SlaStatus::Cancelled, at(3600), at(12)));
    let Output::SlaState(card) = &out[2] else { panic!("{out:?}") };
    assert_eq!((&card.policy, card.state, card.deadline), (&rule("vip", "VIP"), SlaState::Active, Some(at(30))));
    assert_eq!(e.poll_timeout(), Some(at(26)));
    send(&mut e, at(13), agent("hello"));
    let out = send(&mut e, at(14), visitor("thanks, bye"));
    assert_eq!(actions(&out), [Action::Resolve]);
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn replace_config_keeps_what_sessions_went_through() {
    let phrase = r#"
        [[alerts]]
        id = "cancel"
        name = "Cancel"
        condition = { kind = "phrase", phrases = ["cancel"] }
    "#;
    let mut e = engine(&(chat_policy("") + phrase));
    send(&mut e, T0, created(Channel::Chat));
    send(&mut e, T0, visitor("cancel"));
    assert_eq!(e.poll_timeout(), Some(at(30)));
    // Slower thresholds: the running first response is timed anew from its start.
    let slower = chat_policy("").replace("first_response_secs = 60", "first_response_secs = 200") + phrase;
    e.replace_config(at(1), RulesConfig::from_toml(&slower).unwrap()).unwrap();
    assert_eq!(e.poll_timeout(), Some(at(100)));
    assert_eq!(drain(&mut e), [card(SlaState::Active, Some((SlaMetric::FirstResponse, at(200))))]);
    // The phrase rule stays latched.
    assert_eq!(send(&mut e, at(2), visitor("cancel now")), []);
    // Without the policy its clocks are cancelled.
    e.replace_config(at(3), RulesConfig::from_toml(phrase).unwrap()).unwrap();
    let cancelled: Vec<_> = drain(&mut e)
        .into_iter()
        .filter_map(|o| if let Output::SlaChanged(c) = o { Some((c.metric, c.status)) } else { None })
        .collect();
    assert_eq!(
        cancelled,
        [(SlaMetric::FirstResponse, SlaStatus::Cancelled), (SlaMetric::Resolution, SlaStatus::Cancelled)]
    );
    assert_eq!(e.poll_timeout(), None);
    // An invalid configuration changes nothing.
    assert!(e.replace_config(at(4), bad_config()).is_err());
    assert_eq!(e.config(), &RulesConfig::from_toml(phrase).unwrap());
}

fn bad_config() -> RulesConfig {
    RulesConfig::from_toml(
        r#"
        default_sla = { voice = "nope" }
        [[alerts]]
        id = "a"
        name = "A"
        webhook = "ftp://x"
        condition = { kind = "score", score = "csat", op = "less_than" }
        [[alerts]]
        id = "a"
        name = ""
        condition = { kind = "phrase", phrases = ["ok", " "] }
        [[alerts]]
        id = "e"
        name = "E"
        condition = { kind = "emotion", emotion = "angry", consecutive = 0, speaker = "bot" }
        [[sla_policies]]
        id = "p"
        name = "P"
        first_response_secs = 0
        warning_fraction = 1.0
        [sla_policies.business_hours]
        time_zone = "Europe/Nowhere"
        weekly = { mon = ["9-17"] }
        [[automations]]
        id = "x y"
        name = "X"
        event = "message_created"
        conditions = { any = [{ text_contains = "" }, { not = { sentiment_below = -2 } }, { all = [] }] }
        actions = [{ send_message = "Hi {{contact.nmae}}" }, { apply_sla_policy = "gold" }, { webhook = "https://ok" }]
        [[automations]]
        id = "y"
        name = "Y"
        event = "session_created"
        actions = []
        "#,
    )
    .unwrap()
}

#[test]
fn invalid_configurations_name_every_bad_field() {
    let errors = RulesEngine::new(bad_config()).err().unwrap();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "alerts[1].id",
            "automations[0].id",
            "sla_policies[0].first_response_secs",
            "sla_policies[0].warning_fraction",
            "sla_policies[0].business_hours.time_zone",
            "sla_policies[0].business_hours.weekly.mon[0]",
            "default_sla.voice",
            "alerts[0].webhook",
            "alerts[0].condition.value",
            "alerts[1].name",
            "alerts[1].condition.phrases[1]",
            "alerts[2].condition.consecutive",
            "alerts[2].condition.speaker",
            "automations[0].conditions.any[0].text_contains",
            "automations[0].conditions.any[1].not.sentiment_below",
            "automations[0].conditions.any[2].all",
            "automations[0].actions[0].send_message",
            "automations[0].actions[1].apply_sla_policy",
            "automations[1].actions",
        ]
    );
    assert_eq!(errors[0].message, "duplicate id \"a\" (also alerts[0])");
    assert_eq!(errors[8].message, "required unless op is \"off\"");
}

#[test]
fn parse_errors_name_the_field_too() {
    let toml = "[[alerts]]\nid = \"a\"\nname = \"A\"\ncondition = { kind = \"silence\", seconds = 10, secs = 3 }\n";
    let error = RulesConfig::from_toml(toml).unwrap_err();
    assert_eq!(error.path, "alerts[0].condition");
    assert!(error.message.contains("unknown field `secs`") && error.message.ends_with("(line 4)"), "{error}");
    let json = r#"{"sla_policies": [{"id": "p", "name": "P", "first_response_secs": "soon"}]}"#;
    let error = RulesConfig::from_json(json).unwrap_err();
    assert_eq!(error.path, "sla_policies[0].first_response_secs");
    let error = RulesConfig::from_json(r#"{"alerts": [], "automation": []}"#).unwrap_err();
    assert_eq!((error.path.as_str(), error.message.contains("unknown field `automation`")), ("automation", true));
}

#[test]
fn the_shipped_rules_file_is_valid() {
    let config = RulesConfig::from_toml(include_str!("../../config/rules.toml")).unwrap();
    assert!(!config.alerts.is_empty() && !config.automations.is_empty() && !config.sla_policies.is_empty());
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(RulesConfig::from_json(&json).unwrap(), config);
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn the_engine_can_live_in_a_task() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<RulesEngine>();
}
