//! What was said, by whom and when: a conversation's log reduced to the lines the analysis
//! measures. On a call, the transcript lines (entries with `speech`; times from the speech);
//! in a chat, the messages (times from the entry's `at`). System entries are left out.

use crate::rules::Party;
use crate::session::{Author, Channel};
use crate::speech::emotion::{Emotion, ProsodyBaseline};

use super::Conversation;

/// One line of the conversation.
pub(super) struct Line<'a> {
    pub seq: u64,
    pub speaker: Party,
    /// Milliseconds from the start of the conversation; a chat message has `start_ms == end_ms`.
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: &'a str,
    /// −1 … 1, on the customer's lines only.
    pub sentiment: Option<f64>,
}

/// The conversation's lines, in the order they were said (start, then `seq`).
pub(super) fn lines<'a>(conversation: &Conversation<'a>) -> Vec<Line<'a>> {
    let emotion = Emotion::new();
    let mut lines: Vec<Line> = conversation
        .entries
        .iter()
        .filter_map(|entry| {
            let speaker = match entry.author {
                Author::Visitor | Author::Customer => Party::Customer,
                Author::Agent { .. } => Party::Agent,
                Author::Bot => Party::Bot,
                Author::System => return None,
            };
            let (start_ms, end_ms) = match (&entry.speech, conversation.channel) {
                (Some(speech), _) => (speech.start_ms, speech.end_ms.max(speech.start_ms)),
                (None, Channel::Chat) => {
                    let at = (entry.at - conversation.started_at).whole_milliseconds().max(0);
                    let at = u64::try_from(at).unwrap_or(u64::MAX);
                    (at, at)
                }
                (None, Channel::Voice) => return None,
            };
            // A call's line carries the speech stage's sentiment (words and voice); a chat
            // message, or a line without one, gets the same lexicon's verdict on its words.
            let sentiment = (speaker == Party::Customer).then(|| {
                entry.speech.as_ref().and_then(|s| s.sentiment).map(f64::from).unwrap_or_else(|| {
                    f64::from(emotion.judge(&entry.text, &[], &[], &mut ProsodyBaseline::default()).sentiment)
                })
            });
            Some(Line { seq: entry.seq, speaker, start_ms, end_ms, text: &entry.text, sentiment })
        })
        .collect();
    lines.sort_by_key(|line| (line.start_ms, line.seq));
    lines
}
