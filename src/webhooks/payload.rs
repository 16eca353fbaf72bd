//! The body of a `call.finished` webhook: one finished call or chat as a customer's CRM or
//! helpdesk wants it — who, when, how long, the transcript, and the analysis — built from the
//! stored session record. Pure; serialized once, when the delivery is queued.

use serde::Serialize;
use time::OffsetDateTime;

use crate::analysis::{ChecklistResult, Score};
use crate::ingest::call::{CallRecord, Role};
use crate::session::{Author, Channel, SessionId};
use crate::store::SessionRecord;

/// The body of a `call.finished` webhook.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FinishedCall {
    /// The session id.
    #[schema(value_type = String)]
    pub id: SessionId,
    /// The call's id at its source (SIP Call-ID, Twilio callSid, …); null for chats.
    pub origin_id: Option<String>,
    /// Seconds from start to end.
    pub duration: i64,
    /// When it started (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: OffsetDateTime,
    /// The customer's phone number; null for chats or when the signalling did not carry one.
    pub client_phone: Option<String>,
    /// `inbound` for calls hark receives (every call source today); null for chats.
    pub direction: Option<Direction>,
    pub channel: Channel,
    pub category: Option<String>,
    pub outcome: Option<String>,
    /// A call's transcript lines, or a chat's messages, oldest first.
    pub transcription: Vec<Line>,
    pub checklist: Vec<ChecklistResult>,
    pub scores: Vec<Score>,
    /// The session's labels (set by automations) and the analysis' tags, each once.
    pub tags: Vec<String>,
    pub agent_name: Option<String>,
    /// The agent's phone extension.
    pub extension: Option<String>,
    pub desk_name: Option<String>,
    pub department_name: Option<String>,
    /// Why the session was not analysed (too short, over quota); null when it was.
    pub analysis_skipped: Option<String>,
}

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
}

/// One line of the transcription.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Line {
    /// Seconds from the start of the session (a chat message: when it was sent; `end` the same).
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// `customer`, `agent` or (chats) `bot`: the same names on calls and chats.
    pub speaker: String,
    /// neutral, happy, angry, sad, … (calls, when detected).
    pub emotion: Option<String>,
}

/// The webhook body of a finished session.
pub fn finished_call(record: &SessionRecord) -> FinishedCall {
    let card = &record.card;
    let voice = card.channel == Channel::Voice;
    let call = record.call.as_ref().filter(|_| voice);
    let analysis = record.analysis.as_ref();
    let mut tags = card.tags.clone();
    for tag in analysis.map(|a| a.tags.as_slice()).unwrap_or_default() {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    let placement = &card.placement;
    FinishedCall {
        id: card.session_id,
        origin_id: call.map(|c| c.external_id.clone()),
        duration: card.ended_at.map_or(card.duration_secs, |end| (end - card.started_at).whole_seconds().max(0)),
        timestamp: card.started_at,
        client_phone: call.and_then(customer_number),
        direction: voice.then_some(Direction::Inbound),
        channel: card.channel,
        category: analysis.and_then(|a| a.category.clone()),
        outcome: analysis.and_then(|a| a.outcome.clone()),
        transcription: transcription(record, voice),
        checklist: analysis.map(|a| a.checklist.clone()).unwrap_or_default(),
        scores: analysis.map(|a| a.scores.clone()).unwrap_or_default(),
        tags,
        agent_name: placement.agent_name.clone(),
        extension: placement.extension.clone(),
        desk_name: placement.desk_name.clone(),
        department_name: placement.department_name.clone(),
        analysis_skipped: record.analysis_skipped.clone(),
    }
}

/// The customer's number: their stream's party (a SIPREC participant, an upload's phone), else
/// the caller's (`From`), since every call hark receives is the customer calling in.
fn customer_number(call: &CallRecord) -> Option<String> {
    call.streams
        .iter()
        .find(|s| s.role == Role::Customer)
        .and_then(|s| s.party.number.clone())
        .or_else(|| call.from.number.clone())
}

fn transcription(record: &SessionRecord, voice: bool) -> Vec<Line> {
    let seconds = |ms: u64| ms as f64 / 1000.0;
    let started = record.card.started_at;
    record
        .messages
        .iter()
        .filter_map(|entry| match (&entry.speech, voice) {
            (Some(speech), true) => Some(Line {
                start: seconds(speech.start_ms),
                end: seconds(speech.end_ms),
                text: entry.text.clone(),
                speaker: speech.speaker.clone(),
                emotion: speech.emotion.clone(),
            }),
            (_, false) if entry.author != Author::System => {
                let at = seconds((entry.at - started).whole_milliseconds().max(0) as u64);
                Some(Line {
                    start: at,
                    end: at,
                    text: entry.text.clone(),
                    speaker: match entry.author {
                        Author::Visitor | Author::Customer => "customer",
                        _ => entry.author.role(),
                    }
                    .to_string(),
                    emotion: None,
                })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Analysis;
    use crate::ingest::call::{CallStream, Party};
    use crate::org::Placement;
    use crate::session::{Card, EndReason, Entry, Notice, Speech, StreamCard};
    use serde_json::json;

    fn entry(seq: u64, at: OffsetDateTime, author: Author, text: &str) -> Entry {
        Entry { seq, at, author, text: text.into(), client_id: None, notice: None, speech: None }
    }

    fn record(channel: Channel) -> SessionRecord {
        // 2026-11-30T09:00:00Z
        let start = OffsetDateTime::from_unix_timestamp(1_796_029_200).unwrap();
        let mut card = Card::new(uuid::Uuid::nil(), "acme", "sip", channel, start);
        card.state = "ended".into();
        card.ended_at = Some(start + time::Duration::seconds(95));
        card.end_reason = Some(EndReason::Hangup);
        card.tags = vec!["vip".into()];
        card.placement = Placement {
            agent_id: Some("a1".into()),
            agent_name: Some("Dana".into()),
            extension: Some("2001".into()),
            desk_id: Some("d1".into()),
            desk_name: Some("Billing desk".into()),
            department_id: Some("dep1".into()),
            department_name: Some("Support".into()),
        };
        SessionRecord {
            card,
            messages: Vec::new(),
            holds: Vec::new(),
            call: None,
            notes: Vec::new(),
            analysis: None,
            analysis_skipped: None,
        }
    }

    #[test]
    fn a_finished_call_carries_its_source_id_customer_transcript_and_analysis() {
        let mut record = record(Channel::Voice);
        let start = record.card.started_at;
        let party = |number: &str| Party { name: None, number: Some(number.into()), uri: None };
        let stream = |role, number| CallStream {
            role,
            party: party(number),
            stats: StreamCard::default(),
            recorded_secs: 0.0,
            recording: None,
        };
        record.call = Some(CallRecord {
            source: "siprec".into(),
            external_id: "call-42@pbx".into(),
            trunk: "10.0.0.1".into(),
            from: party("+15550000"),
            to: party("2001"),
            codec: "PCMU".into(),
            hangup_cause: Some("caller hung up".into()),
            streams: vec![stream(Role::Agent, "2001"), stream(Role::Customer, "+15551234")],
        });
        let speech = |speaker: &str, start_ms, end_ms, emotion: Option<&str>| {
            Some(Box::new(Speech {
                speaker: speaker.into(),
                start_ms,
                end_ms,
                words: Vec::new(),
                emotion: emotion.map(Into::into),
                sentiment: None,
            }))
        };
        let mut dtmf = entry(1, start, Author::System, "");
        dtmf.notice = Some(Notice::Dtmf { speaker: "customer".into(), digit: '5' });
        let mut hello = entry(2, start, Author::Customer, "I was billed twice");
        hello.speech = speech("customer", 1_250, 3_500, Some("angry"));
        let mut answer = entry(3, start, Author::Agent { name: "Dana".into() }, "Let me refund that");
        answer.speech = speech("agent", 4_000, 5_020, None);
        record.messages = vec![dtmf, hello, answer];
        record.analysis = Some(Analysis {
            scores: vec![Score { label: "silence".into(), score: 8, explanation: "2 s of silence".into() }],
            checklist: vec![ChecklistResult {
                id: "greet".into(),
                label: "Greeted".into(),
                done: false,
                evidence: None,
            }],
            tags: vec!["refund".into(), "vip".into()],
            category: Some("billing".into()),
            outcome: Some("resolved".into()),
        });

        let body = serde_json::to_value(finished_call(&record)).unwrap();
        assert_eq!(
            body,
            json!({
                "id": "00000000-0000-0000-0000-000000000000",
                "origin_id": "call-42@pbx",
                "duration": 95,
                "timestamp": "2026-11-30T09:00:00Z",
                "client_phone": "+15551234",
                "direction": "inbound",
                "channel": "voice",
                "category": "billing",
                "outcome": "resolved",
                "transcription": [
                    {"start": 1.25, "end": 3.5, "text": "I was billed twice", "speaker": "customer", "emotion": "angry"},
                    {"start": 4.0, "end": 5.02, "text": "Let me refund that", "speaker": "agent", "emotion": null},
                ],
                "checklist": [{"id": "greet", "label": "Greeted", "done": false}],
                "scores": [{"label": "silence", "score": 8, "explanation": "2 s of silence"}],
                "tags": ["vip", "refund"],
                "agent_name": "Dana",
                "extension": "2001",
                "desk_name": "Billing desk",
                "department_name": "Support",
                "analysis_skipped": null,
            })
        );
    }

    #[test]
    fn a_call_without_a_customer_number_on_its_stream_falls_back_to_the_caller() {
        let mut record = record(Channel::Voice);
        record.call = Some(CallRecord {
            source: "twilio".into(),
            external_id: "CA1".into(),
            trunk: "acct".into(),
            from: Party { number: Some("+15557777".into()), ..Party::default() },
            to: Party::default(),
            codec: "PCMU".into(),
            hangup_cause: None,
            streams: Vec::new(),
        });
        assert_eq!(finished_call(&record).client_phone.as_deref(), Some("+15557777"));
    }

    #[test]
    fn a_chat_has_its_messages_by_author_and_no_call_fields() {
        let mut record = record(Channel::Chat);
        let start = record.card.started_at;
        let mut joined = entry(3, start + time::Duration::seconds(5), Author::System, "Dana joined");
        joined.notice = Some(Notice::AgentJoined { agent: "Dana".into() });
        record.messages = vec![
            entry(1, start + time::Duration::milliseconds(1_500), Author::Visitor, "hi"),
            entry(2, start + time::Duration::seconds(2), Author::Bot, "Hello! How can I help?"),
            joined,
            entry(4, start + time::Duration::seconds(9), Author::Agent { name: "Dana".into() }, "Dana here"),
        ];
        record.analysis_skipped = Some("too short".into());
        let call = finished_call(&record);
        assert_eq!((call.origin_id, call.client_phone, call.direction), (None, None, None));
        assert_eq!(call.channel, Channel::Chat);
        assert_eq!((call.category, call.outcome), (None, None));
        assert!(call.scores.is_empty() && call.checklist.is_empty());
        assert_eq!(call.tags, ["vip"]);
        assert_eq!(call.analysis_skipped.as_deref(), Some("too short"));
        let lines: Vec<_> = call.transcription.iter().map(|l| (l.start, l.end, l.speaker.as_str())).collect();
        assert_eq!(lines, [(1.5, 1.5, "customer"), (2.0, 2.0, "bot"), (9.0, 9.0, "agent")]);
    }
}
