//! The analysis of hand-built conversations: every scorer at its band edges, checklist windows
//! at their edges, evidence, speakers, tags, first-match category and outcome, skips, chats
//! against calls, and a call built from the shared fixture's turns with figures recomputed
//! from the file.

use time::{Duration, OffsetDateTime};

use super::config::Scorers;
use super::*;
use crate::rules::FieldError;
use crate::session::{Author, Speech};

/// 2026-03-02, 10:00 UTC.
const T0: OffsetDateTime = match OffsetDateTime::from_unix_timestamp(1772445600) {
    Ok(t0) => t0,
    Err(_) => panic!("in range"),
};

fn ms(secs: f64) -> u64 {
    (secs * 1000.0).round() as u64
}

/// A conversation being built: lines added in order, then analysed.
struct Convo {
    channel: Channel,
    secs: f64,
    end_reason: Option<EndReason>,
    entries: Vec<Entry>,
}

impl Convo {
    fn call(secs: f64) -> Convo {
        Convo { channel: Channel::Voice, secs, end_reason: Some(EndReason::Hangup), entries: Vec::new() }
    }

    fn chat(secs: f64) -> Convo {
        Convo { channel: Channel::Chat, secs, end_reason: Some(EndReason::VisitorLeft), entries: Vec::new() }
    }

    fn entry(mut self, author: Author, at: f64, text: &str, speech: Option<Speech>) -> Convo {
        self.entries.push(Entry {
            seq: self.entries.len() as u64 + 1,
            at: T0 + Duration::milliseconds(ms(at) as i64),
            author,
            text: text.into(),
            client_id: None,
            notice: None,
            speech: speech.map(Box::new),
        });
        self
    }

    /// A call's transcript line by `who` (`agent` or `customer`) from `from` to `to` seconds.
    fn say(self, who: &str, from: f64, to: f64, text: &str) -> Convo {
        self.say_feeling(who, from, to, text, None)
    }

    fn say_feeling(self, who: &str, from: f64, to: f64, text: &str, sentiment: Option<f32>) -> Convo {
        let author = match who {
            "agent" => Author::Agent { name: "Dana".into() },
            _ => Author::Customer,
        };
        let speech = Speech {
            speaker: who.into(),
            start_ms: ms(from),
            end_ms: ms(to),
            words: Vec::new(),
            emotion: None,
            sentiment,
        };
        // Finals reach the log when the speech ends.
        self.entry(author, to, text, Some(speech))
    }

    /// A chat message at `at` seconds.
    fn write(self, author: Author, at: f64, text: &str) -> Convo {
        self.entry(author, at, text, None)
    }

    fn ended(mut self, reason: EndReason) -> Convo {
        self.end_reason = Some(reason);
        self
    }

    fn analyze(&self, config: &AnalysisConfig) -> Result<Analysis, Skipped> {
        let conversation = Conversation {
            channel: self.channel,
            started_at: T0,
            ended_at: T0 + Duration::milliseconds(ms(self.secs) as i64),
            entries: &self.entries,
            end_reason: self.end_reason,
        };
        analyze(config, &conversation)
    }
}

fn agent() -> Author {
    Author::Agent { name: "Dana".into() }
}

fn config(toml: &str) -> AnalysisConfig {
    AnalysisConfig::from_toml(toml).unwrap_or_else(|e| panic!("{e:?}"))
}

fn score(analysis: &Analysis, label: &str) -> Option<u8> {
    analysis.scores.iter().find(|s| s.label == label).map(|s| s.score)
}

fn explanation<'a>(analysis: &'a Analysis, label: &str) -> &'a str {
    &analysis.scores.iter().find(|s| s.label == label).unwrap().explanation
}

fn labels(analysis: &Analysis) -> Vec<&str> {
    analysis.scores.iter().map(|s| s.label.as_str()).collect()
}

fn paths(errors: Vec<FieldError>) -> Vec<String> {
    errors.into_iter().map(|e| e.path).collect()
}

fn done(analysis: &Analysis, id: &str) -> bool {
    analysis.checklist.iter().find(|c| c.id == id).unwrap().done
}

// ---- settings ----------------------------------------------------------------------------

#[test]
fn the_embedded_default_is_valid_and_its_scorers_are_the_defaults() {
    let default = config(DEFAULT_ANALYSIS);
    assert_eq!(default.scorers, Scorers::default(), "the file and the serde defaults agree");
    assert_eq!(default.min_duration_secs, 0);
    assert!(default.checklist.iter().any(|c| c.id == "greeting"));
    // What GET shows, PUT takes back unchanged.
    let json = serde_json::to_string(&default).unwrap();
    assert_eq!(AnalysisConfig::from_json(&json).unwrap(), default);
    // Leaving everything out is valid too: the default scorers and no rules.
    assert_eq!(AnalysisConfig::from_json("{}").unwrap(), AnalysisConfig::default());
}

#[test]
fn bad_settings_name_the_field() {
    let err = |toml: &str| paths(AnalysisConfig::from_toml(toml).unwrap_err());
    let item =
        |within: &str| format!("[[checklist]]\nid = \"a\"\nlabel = \"A\"\nphrases = [\"hi\"]\nwithin = {within}\n");
    assert_eq!(
        err(&(item("{ from_secs = 0, to_secs = 15 }")
            + &item("{ to_secs = 10 }").replace("\"a\"", "\"b\"")
            + &item("{ from_secs = 30, to_secs = 30 }").replace("\"a\"", "\"c\""))),
        ["checklist[2].within.to_secs"]
    );
    assert_eq!(err(&item("{ from_secs = 10 }")), ["checklist[0].within.to_secs"]);
    assert_eq!(err(&item("{ to_secs = 10, last_secs = 5 }")), ["checklist[0].within.last_secs"]);
    assert_eq!(err(&item("{ last_secs = 0 }")), ["checklist[0].within.last_secs"]);
    assert_eq!(err(&(item("{ last_secs = 30 }") + &item("{ last_secs = 30 }"))), ["checklist[1].id"]);
    assert_eq!(err("[[tags]]\ntag = \"x\"\nphrases = [\"ok\", \" ?! \"]"), ["tags[0].phrases[1]"]);
    assert_eq!(err("[[tags]]\ntag = \"\"\nphrases = []"), ["tags[0].tag", "tags[0].phrases"]);
    assert_eq!(err("[[category]]\ncategory = \"c\"\nphrases = []"), ["category[0].phrases"]);
    assert_eq!(err("[scorers.silence]\nbest_share_pct = 40"), ["scorers.silence.best_share_pct"]);
    assert_eq!(err("[scorers.talk_ratio]\nbest_to_pct = 30"), ["scorers.talk_ratio.best_to_pct"]);
    assert_eq!(err("[scorers.talk_ratio]\nworst_above_pct = 120"), ["scorers.talk_ratio.worst_above_pct"]);
    assert_eq!(err("[scorers.customer_sentiment]\nworst_level = 0.6"), ["scorers.customer_sentiment.worst_level"]);
    assert_eq!(
        err("[scorers.response_speed]\ncall_worst_secs = -1"),
        ["scorers.response_speed.call_worst_secs", "scorers.response_speed.call_best_secs"]
    );
    assert_eq!(err("[[outcome]]\noutcome = \"o\"\nchecklist_done = [\"nope\"]"), ["outcome[0].checklist_done[0]"]);
    assert_eq!(err("[[outcome]]\noutcome = \"o\"\ncustomer_sentiment_min = 2"), ["outcome[0].customer_sentiment_min"]);
    assert_eq!(
        err("[[outcome]]\noutcome = \"fallback\"\n[[outcome]]\noutcome = \"x\"\nphrases = [\"x\"]"),
        ["outcome[0]"]
    );
    // Unknown keys and wrong types name where they are.
    let unknown = AnalysisConfig::from_json(
        r#"{"checklist": [{"id": "a", "label": "A", "phrases": ["hi"], "speakr": "agent"}]}"#,
    )
    .unwrap_err();
    assert_eq!(unknown[0].path, "checklist[0].speakr", "{unknown:?}");
    assert!(unknown[0].message.contains("speakr"), "{unknown:?}");
    let typed = AnalysisConfig::from_json(r#"{"outcome": [{"outcome": "o", "end_reason": ["lost"]}]}"#).unwrap_err();
    assert_eq!(typed[0].path, "outcome[0].end_reason[0]", "{typed:?}");
    let syntax = AnalysisConfig::from_toml("min_duration_secs = 90\n[[checklist]\n").unwrap_err();
    assert_eq!(syntax[0].path, "");
    assert!(syntax[0].message.contains("line 2"), "{syntax:?}");
}

#[test]
fn settings_for_a_tenant_are_its_own_or_the_default() {
    let saved = serde_json::json!({"min_duration_secs": 90}).to_string();
    let settings = Settings::from_rows(vec![("acme".into(), saved)]).unwrap();
    assert_eq!(settings.for_tenant("acme").min_duration_secs, 90);
    assert_eq!(*settings.for_tenant("other"), config(DEFAULT_ANALYSIS));
    let broken = Settings::from_rows(vec![("acme".into(), r#"{"min_duration_secs": "long"}"#.into())]);
    let message = broken.err().unwrap().to_string();
    assert!(message.contains("\"acme\"") && message.contains("min_duration_secs"), "{message}");
}

// ---- skips -------------------------------------------------------------------------------

#[test]
fn a_conversation_shorter_than_the_minimum_or_without_lines_is_skipped() {
    let minimum = config("min_duration_secs = 90");
    let short = Convo::call(42.6).say("agent", 1.0, 2.0, "hello");
    let skipped = short.analyze(&minimum).unwrap_err();
    assert_eq!(skipped.reason, "shorter than the 90 s minimum (42 s)");
    assert!(Convo::call(90.0).say("agent", 1.0, 2.0, "hello").analyze(&minimum).is_ok(), "exactly the minimum");
    let silent = Convo::chat(30.0).write(Author::System, 1.0, "Dana joined");
    assert_eq!(silent.analyze(&config("")).unwrap_err().reason, "the chat has no messages");
    assert_eq!(Convo::call(30.0).analyze(&config("")).unwrap_err().reason, "the call has no transcript");
}

// ---- scorers -----------------------------------------------------------------------------

/// A 100 s call where the agent speaks the first `agent` seconds and the customer the rest.
fn split_call(agent: f64) -> Analysis {
    Convo::call(100.0).say("agent", 0.0, agent, "a").say("customer", agent, 100.0, "b").analyze(&config("")).unwrap()
}

#[test]
fn talk_ratio_at_its_band_edges() {
    let ratio = |agent: f64| score(&split_call(agent), "talk_ratio").unwrap();
    assert_eq!([ratio(40.0), ratio(60.0), ratio(50.0)], [10, 10, 10]);
    assert_eq!([ratio(10.0), ratio(90.0), ratio(5.0), ratio(95.0)], [1, 1, 1, 1]);
    // A third of the way from the best band to the worst figure: 10 − 3.
    assert_eq!([ratio(30.0), ratio(70.0)], [7, 7]);
    assert_eq!(
        explanation(&split_call(72.0), "talk_ratio"),
        "The agent spoke 72 % of the talk time (72 s of 100 s); 40–60 % scores best, 10 % or less and 90 % or more score 1."
    );
}

/// A call of `secs` with `n` agent lines of `speech` seconds, each followed by `gap` seconds.
fn gappy_call(secs: f64, n: usize, speech: f64, gap: f64) -> Analysis {
    let mut convo = Convo::call(secs);
    for i in 0..n {
        let from = i as f64 * (speech + gap);
        convo = convo.say("agent", from, from + speech, "words");
    }
    convo.analyze(&config("")).unwrap()
}

#[test]
fn silence_at_its_band_edges_the_worse_figure_decides() {
    // Share: 10 % and 40 % dead air, in gaps of 5 s (the gap's best edge).
    assert_eq!(score(&gappy_call(100.0, 2, 45.0, 5.0), "silence"), Some(10));
    let forty = gappy_call(100.0, 8, 7.5, 5.0);
    assert_eq!(score(&forty, "silence"), Some(1));
    assert_eq!(
        explanation(&forty, "silence"),
        "Nobody spoke for 40 % of the call (40 s of 100 s) and the longest silence lasted 5 s; up to 10 % and 5 s score best, 40 % or 30 s score 1."
    );
    // Longest gap: 5 s and 30 s at the end of a long call (small shares).
    assert_eq!(score(&gappy_call(400.0, 1, 395.0, 5.0), "silence"), Some(10));
    assert_eq!(score(&gappy_call(400.0, 1, 370.0, 30.0), "silence"), Some(1));
    // 25 % (5.5 points) but a 12.5 s gap (7.3 points): the share decides.
    assert_eq!(score(&gappy_call(100.0, 2, 37.5, 12.5), "silence"), Some(6));
    // The leading silence counts as a gap too.
    let late = Convo::call(100.0).say("agent", 30.0, 100.0, "finally").analyze(&config("")).unwrap();
    assert!(explanation(&late, "silence").contains("the longest silence lasted 30 s"), "{late:?}");
    assert_eq!(score(&late, "silence"), Some(1));
}

#[test]
fn over_talk_at_its_band_edges() {
    let overlap = |secs: f64| {
        let convo = Convo::call(100.0).say("agent", 0.0, 50.0, "a").say("customer", 50.0 - secs, 100.0, "b");
        convo.analyze(&config("")).unwrap()
    };
    assert_eq!(score(&overlap(0.0), "over_talk"), Some(10));
    assert_eq!(score(&overlap(2.0), "over_talk"), Some(10));
    assert_eq!(score(&overlap(4.0), "over_talk"), Some(8));
    assert_eq!(score(&overlap(10.0), "over_talk"), Some(1));
    assert_eq!(
        explanation(&overlap(4.0), "over_talk"),
        "Agent and customer spoke at once for 4 s, 4 % of the call; up to 2 % scores best, 10 % or more scores 1."
    );
}

#[test]
fn response_speed_on_calls_from_the_end_of_the_customers_speech() {
    let answered = |after: f64| {
        let convo = Convo::call(60.0)
            .say("agent", 0.0, 3.0, "hello")
            .say("customer", 4.0, 8.0, "my phone is broken")
            .say("customer", 8.5, 10.0, "again")
            .say("agent", 10.0 + after, 20.0, "let me look");
        convo.analyze(&config("")).unwrap()
    };
    assert_eq!(score(&answered(1.0), "response_speed"), Some(10));
    assert_eq!(score(&answered(5.0), "response_speed"), Some(1));
    assert_eq!(score(&answered(2.0), "response_speed"), Some(8));
    assert_eq!(
        explanation(&answered(2.0), "response_speed"),
        "The agent took 2 s to answer the customer on average (1 answer, the longest 2 s); up to 1 s scores best, 5 s or more scores 1."
    );
    // An agent who starts before the customer finished answered at once.
    let interrupted = Convo::call(30.0).say("customer", 0.0, 5.0, "so").say("agent", 4.0, 8.0, "yes");
    assert_eq!(score(&interrupted.analyze(&config("")).unwrap(), "response_speed"), Some(10));
}

#[test]
fn response_speed_in_chats_from_the_first_unanswered_message() {
    let answered = |reply: f64, author: Author| {
        let convo = Convo::chat(600.0)
            .write(Author::Visitor, 0.0, "hello?")
            .write(Author::Visitor, 100.0, "anyone?")
            .write(author, reply, "here");
        convo.analyze(&config("")).unwrap()
    };
    assert_eq!(score(&answered(30.0, agent()), "response_speed"), Some(10));
    assert_eq!(score(&answered(300.0, Author::Bot), "response_speed"), Some(1), "a bot's reply counts");
    // 192 s from the first message (4.6 points), not 92 s from the second (7.9).
    let waited = answered(192.0, agent());
    assert_eq!(score(&waited, "response_speed"), Some(5));
    assert_eq!(
        explanation(&waited, "response_speed"),
        "The customer waited 192 s for a reply on average (1 reply, the longest 192 s); up to 30 s scores best, 300 s or more scores 1."
    );
    // System notices neither answer nor wait.
    let noticed = Convo::chat(600.0).write(Author::Visitor, 0.0, "hi").write(Author::System, 5.0, "Dana joined");
    assert_eq!(score(&noticed.analyze(&config("")).unwrap(), "response_speed"), None, "never answered");
}

#[test]
fn customer_sentiment_level_and_trend() {
    let felt = |values: &[f32], toml: &str| {
        let mut convo = Convo::call(100.0);
        for (i, &v) in values.iter().enumerate() {
            convo = convo.say_feeling("customer", i as f64 * 10.0, i as f64 * 10.0 + 5.0, "words", Some(v));
        }
        convo.analyze(&config(toml)).unwrap()
    };
    assert_eq!(score(&felt(&[-0.5, -0.5, -0.5], ""), "customer_sentiment"), Some(1));
    assert_eq!(score(&felt(&[0.5, 0.5, 0.5], ""), "customer_sentiment"), Some(10));
    assert_eq!(score(&felt(&[-0.9], ""), "customer_sentiment"), Some(1), "flat beyond the worst level");
    // Average +0.1 (6.4 points); the thirds −0.2 → +0.5, 2 points per 1.0: +1.4.
    let rising = felt(&[-0.2, 0.0, 0.5], "[scorers.customer_sentiment]\ntrend_points = 2.0");
    assert_eq!(score(&rising, "customer_sentiment"), Some(8));
    assert_eq!(
        explanation(&rising, "customer_sentiment"),
        "The customer's sentiment averaged +0.10 over 3 lines, from -0.20 in the first third to +0.50 in the last \
         (+1.4 points for the change); an average of -0.50 or less scores 1, +0.50 or more scores 10."
    );
    let falling = felt(&[0.5, 0.0, -0.2], "[scorers.customer_sentiment]\ntrend_points = 2.0");
    assert_eq!(score(&falling, "customer_sentiment"), Some(5));
    // Thirds of 4 lines are 2 lines each.
    let four = felt(&[0.0, 0.2, 0.4, 0.6], "");
    assert!(explanation(&four, "customer_sentiment").contains("from +0.10 in the first third to +0.50"), "{four:?}");
    let one = felt(&[0.2], "");
    assert!(explanation(&one, "customer_sentiment").contains("averaged +0.20 on their only line"), "{one:?}");
}

#[test]
fn a_chat_customers_sentiment_comes_from_the_words() {
    let chat = |text: &str| {
        let convo = Convo::chat(120.0).write(Author::Visitor, 1.0, text).write(Author::Bot, 2.0, "ok");
        score(&convo.analyze(&config("")).unwrap(), "customer_sentiment").unwrap()
    };
    let angry = chat("This is terrible, I hate this awful service!");
    let happy = chat("Thank you so much, that was really great and helpful!");
    assert!(angry <= 2 && happy >= 9, "angry {angry}, happy {happy}");
}

#[test]
fn switched_off_scorers_and_chats_give_no_call_scores() {
    let call = Convo::call(60.0).say("agent", 0.0, 5.0, "hello").say("customer", 6.0, 10.0, "hi there").say(
        "agent",
        11.0,
        15.0,
        "how can I help",
    );
    assert_eq!(
        labels(&call.analyze(&config("")).unwrap()),
        ["customer_sentiment", "talk_ratio", "silence", "over_talk", "response_speed"]
    );
    let off = "[scorers.silence]\nenabled = false\n[scorers.customer_sentiment]\nenabled = false";
    assert_eq!(labels(&call.analyze(&config(off)).unwrap()), ["talk_ratio", "over_talk", "response_speed"]);
    let chat = Convo::chat(60.0).write(Author::Visitor, 0.0, "hi").write(agent(), 10.0, "hello");
    assert_eq!(labels(&chat.analyze(&config("")).unwrap()), ["customer_sentiment", "response_speed"]);
}

#[test]
fn a_conversation_without_customer_lines_scores_only_what_it_can() {
    let toml = "[[outcome]]\noutcome = \"happy\"\ncustomer_sentiment_min = 0.0";
    let call = Convo::call(60.0).say("agent", 0.0, 5.0, "hello, anyone there?").say("agent", 20.0, 25.0, "hello?");
    let analysis = call.analyze(&config(toml)).unwrap();
    assert_eq!(labels(&analysis), ["silence"]);
    assert_eq!(analysis.outcome, None, "no sentiment to compare");
    let bot_only = Convo::chat(60.0).write(Author::Bot, 0.0, "Welcome!");
    let analysis = bot_only.analyze(&config(toml)).unwrap();
    assert_eq!(labels(&analysis), Vec::<&str>::new());
}

// ---- checklist, tags, category, outcome -------------------------------------------------

const CHECKLIST: &str = r#"
[[checklist]]
id = "greeting"
label = "Greeted in the first 15 s"
speaker = "agent"
phrases = ["hello", "good morning"]
within = { to_secs = 15 }

[[checklist]]
id = "closing"
label = "Closed in the last 30 s"
speaker = "agent"
phrases = ["goodbye", "have a nice day"]
within = { last_secs = 30 }

[[checklist]]
id = "name"
label = "The customer gave their name"
speaker = "customer"
phrases = ["my name is"]

[[checklist]]
id = "said_thanks"
label = "Someone said thanks"
phrases = ["thank you", "thanks"]
"#;

#[test]
fn checklist_windows_at_their_edges() {
    let greeting = |at: f64| {
        let convo = Convo::call(100.0).say("agent", at, at + 2.0, "Hello, this is Dana.");
        done(&convo.analyze(&config(CHECKLIST)).unwrap(), "greeting")
    };
    assert!(greeting(14.9), "a greeting that starts at 14.9 s counts");
    assert!(greeting(15.0));
    assert!(!greeting(15.1), "a greeting that starts at 15.1 s does not");
    // A line counts when any part of it lies in the last 30 s of a 100 s call.
    let closing = |from: f64, to: f64| {
        let convo = Convo::call(100.0).say("agent", from, to, "Goodbye!");
        done(&convo.analyze(&config(CHECKLIST)).unwrap(), "closing")
    };
    assert!(closing(69.0, 70.0), "ends right at the window's start");
    assert!(closing(65.0, 75.0));
    assert!(!closing(65.0, 69.9));
    // Chats: the message's time.
    let chat_closing = |at: f64| {
        let convo = Convo::chat(100.0).write(Author::Visitor, 0.0, "hi").write(agent(), at, "Have a nice day");
        done(&convo.analyze(&config(CHECKLIST)).unwrap(), "closing")
    };
    assert!(chat_closing(70.1));
    assert!(!chat_closing(69.9));
}

#[test]
fn evidence_is_the_first_matching_line_of_the_right_speaker() {
    let convo = Convo::call(100.0)
        .say("customer", 0.5, 1.5, "Hello?")
        .say("agent", 2.0, 4.0, "Good morning! Hello.")
        .say("agent", 5.0, 6.0, "hello again")
        .say("customer", 7.0, 9.0, "Thanks. My name is Alex.")
        .say("agent", 10.0, 11.0, "Thank you, Alex.");
    let analysis = convo.analyze(&config(CHECKLIST)).unwrap();
    let greeting = &analysis.checklist[0];
    assert_eq!(
        (greeting.id.as_str(), greeting.label.as_str(), greeting.done),
        ("greeting", "Greeted in the first 15 s", true)
    );
    assert_eq!(
        greeting.evidence,
        Some(Evidence { seq: 2, speaker: "agent".into(), start_ms: 2000, text: "Good morning! Hello.".into() }),
        "the customer's hello is not the agent's"
    );
    assert_eq!(analysis.checklist[1].evidence, None);
    assert!(!analysis.checklist[1].done);
    let name = analysis.checklist[2].evidence.as_ref().unwrap();
    assert_eq!((name.seq, name.speaker.as_str()), (4, "customer"));
    let thanks = analysis.checklist[3].evidence.as_ref().unwrap();
    assert_eq!((thanks.seq, thanks.speaker.as_str()), (4, "customer"), "`any` speaker: the first line");
}

#[test]
fn evidence_follows_speech_order_not_log_order() {
    // The agent's final came first in the log but was said after the customer's.
    let convo = Convo::call(60.0).say("agent", 3.0, 4.0, "thanks").say("customer", 1.0, 5.0, "thank you");
    let analysis = convo.analyze(&config(CHECKLIST)).unwrap();
    let thanks = analysis.checklist[3].evidence.as_ref().unwrap();
    assert_eq!((thanks.seq, thanks.start_ms), (2, 1000));
}

const RULES: &str = r#"
[[checklist]]
id = "anything_else"
label = "Asked for anything else"
speaker = "agent"
phrases = ["anything else"]

[[tags]]
tag = "refund"
speaker = "customer"
phrases = ["refund", "money back"]

[[tags]]
tag = "angry"
phrases = ["ridiculous"]

[[tags]]
tag = "refund"
phrases = ["reimburse"]

[[tags]]
tag = "agent-only"
speaker = "agent"
phrases = ["cancel"]

[[category]]
category = "billing"
phrases = ["invoice"]

[[category]]
category = "technical"
phrases = ["broken", "invoice"]

[[outcome]]
outcome = "escalated"
phrases = ["supervisor"]

[[outcome]]
outcome = "resolved"
end_reason = ["resolved"]

[[outcome]]
outcome = "resolved"
checklist_done = ["anything_else"]
customer_sentiment_min = 0.0

[[outcome]]
outcome = "unresolved"
"#;

#[test]
fn tags_are_every_match_category_and_outcome_the_first() {
    let convo = Convo::chat(300.0)
        .write(Author::Visitor, 0.0, "My invoice is broken, I want my MONEY BACK. Ridiculous! Cancel it.")
        .write(Author::Visitor, 1.0, "Will you reimburse me?")
        .write(agent(), 20.0, "Sure. Is there anything else?")
        .write(Author::Visitor, 30.0, "No, thank you, that is great.");
    let analysis = convo.analyze(&config(RULES)).unwrap();
    assert_eq!(analysis.tags, ["refund", "angry"], "each tag once; the customer's cancel is not the agent's");
    assert_eq!(analysis.category.as_deref(), Some("billing"), "the first matching rule");
    assert_eq!(analysis.outcome.as_deref(), Some("resolved"), "asked for anything else, ended happy");
}

#[test]
fn outcome_rules_in_order_with_their_conditions() {
    let outcome = |convo: Convo| convo.analyze(&config(RULES)).unwrap().outcome;
    let base = || {
        Convo::chat(300.0).write(Author::Visitor, 0.0, "This is terrible and awful.").write(
            agent(),
            10.0,
            "Anything else?",
        )
    };
    assert_eq!(outcome(base()).as_deref(), Some("unresolved"), "asked, but the customer ended unhappy");
    assert_eq!(outcome(base().ended(EndReason::Resolved)).as_deref(), Some("resolved"), "by the end reason");
    let escalated = base().write(Author::Visitor, 20.0, "Get me a supervisor").ended(EndReason::Resolved);
    assert_eq!(outcome(escalated).as_deref(), Some("escalated"), "the first rule wins");
    let happy = Convo::chat(300.0).write(Author::Visitor, 0.0, "Great, thanks!").write(agent(), 10.0, "Bye");
    assert_eq!(outcome(happy).as_deref(), Some("unresolved"), "happy, but never asked for anything else");
    let mut unknown_end = base();
    unknown_end.end_reason = None;
    assert_eq!(outcome(unknown_end).as_deref(), Some("unresolved"));
    let no_rules = base().analyze(&config("")).unwrap();
    assert_eq!((no_rules.category, no_rules.outcome, no_rules.tags), (None, None, Vec::<String>::new()));
}

// ---- the fixture call --------------------------------------------------------------------

/// The shared fixtures (beside the repository, or `HARK_FIXTURES`).
fn fixtures() -> std::path::PathBuf {
    std::env::var_os("HARK_FIXTURES")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"))
}

#[test]
fn the_fixture_call_scores_as_its_turns_say() {
    let tsv = std::fs::read_to_string(fixtures().join("audio/call/turns.tsv")).unwrap();
    let mut convo = Convo::call(0.0);
    let (mut agent_secs, mut caller_secs, mut spans) = (0.0, 0.0, Vec::new());
    for row in tsv.lines().skip(1) {
        let cells: Vec<&str> = row.split('\t').collect();
        let (start, end): (f64, f64) = (cells[1].parse().unwrap(), cells[2].parse().unwrap());
        match cells[0] {
            "total" => convo.secs = end,
            "agent" => {
                agent_secs += end - start;
                spans.push((start, end));
                convo = convo.say("agent", start, end, cells[3]);
            }
            _ => {
                caller_secs += end - start;
                spans.push((start, end));
                convo = convo.say("customer", start, end, cells[3]);
            }
        }
    }
    let config = config(DEFAULT_ANALYSIS);
    let analysis = convo.analyze(&config).unwrap();
    assert_eq!(labels(&analysis), ["customer_sentiment", "talk_ratio", "silence", "over_talk", "response_speed"]);

    let ratio = 100.0 * agent_secs / (agent_secs + caller_secs);
    assert!((45.0..55.0).contains(&ratio), "the file's ratio {ratio}");
    let said = format!("The agent spoke {} % of the talk time", (ratio * 10.0).round() / 10.0);
    assert!(explanation(&analysis, "talk_ratio").starts_with(&said), "{said} / {analysis:?}");
    assert_eq!(score(&analysis, "talk_ratio"), Some(10));

    // The turns do not overlap: no over-talk; dead air is the call less the turns.
    assert_eq!(score(&analysis, "over_talk"), Some(10));
    let dead = 100.0 * (convo.secs - agent_secs - caller_secs) / convo.secs;
    let said = format!("Nobody spoke for {} % of the call", (dead * 10.0).round() / 10.0);
    assert!(explanation(&analysis, "silence").starts_with(&said), "{said} / {analysis:?}");
    let expected = 10.0 - 9.0 * (dead - 10.0) / 30.0;
    assert_eq!(score(&analysis, "silence"), Some(expected.round() as u8), "{dead} % dead air");

    // The caller's first turn ends 1 s before the agent's second starts; the last is unanswered.
    let gap = spans[2].0 - spans[1].1;
    assert!((gap - 1.0f64).abs() < 1e-9, "{gap}");
    assert!(explanation(&analysis, "response_speed").contains("1 s to answer the customer on average (1 answer"));
    assert_eq!(score(&analysis, "response_speed"), Some(10));

    // The agent said sorry but never greeted or closed; nothing to tag.
    assert!(!done(&analysis, "greeting") && !done(&analysis, "closing"));
    assert!(analysis.tags.is_empty());
    assert!((1..=10).contains(&score(&analysis, "customer_sentiment").unwrap()));
    assert_eq!(convo.analyze(&config).unwrap(), analysis, "deterministic");
}
