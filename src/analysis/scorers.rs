//! The scorers: each measures one figure of a conversation and maps it onto 1–10 through the
//! band its settings give (10 inside the best band, 1 at or beyond the worst figure, linear in
//! between), with a sentence naming the figures. A scorer with nothing to measure gives no
//! score rather than a guess; the call-only ones (talk ratio, silence, over-talk) give none for
//! chats.

use crate::rules::Party;
use crate::session::Channel;

use super::config::Scorers;
use super::lines::Line;
use super::Score;

/// The customer's sentiment over a conversation.
pub(super) struct Sentiment {
    /// Lines it is measured on.
    pub lines: usize,
    pub average: f64,
    /// Averages over the first and the last third of those lines (at least one line each).
    pub first_third: f64,
    pub last_third: f64,
}

/// `None` without a customer line.
pub(super) fn customer_sentiment(lines: &[Line]) -> Option<Sentiment> {
    let values: Vec<f64> = lines.iter().filter_map(|line| line.sentiment).collect();
    let n = values.len();
    if n == 0 {
        return None;
    }
    let third = n.div_ceil(3);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Some(Sentiment {
        lines: n,
        average: mean(&values),
        first_third: mean(&values[..third]),
        last_third: mean(&values[n - third..]),
    })
}

/// Every enabled scorer that has something to measure, in a fixed order.
pub(super) fn scores(
    config: &Scorers,
    channel: Channel,
    duration_ms: u64,
    lines: &[Line],
    sentiment: Option<&Sentiment>,
) -> Vec<Score> {
    let call = (channel == Channel::Voice).then(|| Speech::of(lines, duration_ms));
    let on_call = |enabled: bool, scorer: fn(&Scorers, &Speech) -> Option<Score>| {
        call.as_ref().filter(|_| enabled).and_then(|speech| scorer(config, speech))
    };
    [
        sentiment.filter(|_| config.customer_sentiment.enabled).map(|s| sentiment_score(config, s)),
        on_call(config.talk_ratio.enabled, talk_ratio),
        on_call(config.silence.enabled, silence),
        on_call(config.over_talk.enabled, over_talk),
        config.response_speed.enabled.then(|| response_speed(config, channel, lines)).flatten(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// 10 at `best`, 1 at `worst`, linear in between and flat beyond (`best` may lie either side).
fn falloff(figure: f64, best: f64, worst: f64) -> f64 {
    10.0 - 9.0 * ((figure - best) / (worst - best)).clamp(0.0, 1.0)
}

/// A score from its unrounded value.
fn score(label: &str, value: f64, explanation: String) -> Score {
    Score { label: label.into(), score: value.round().clamp(1.0, 10.0) as u8, explanation }
}

/// A figure for a sentence: at most one decimal, none when it is whole.
fn num(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

fn secs(ms: u64) -> String {
    num(ms as f64 / 1000.0)
}

fn signed(value: f64) -> String {
    format!("{value:+.2}")
}

fn sentiment_score(config: &Scorers, s: &Sentiment) -> Score {
    let c = &config.customer_sentiment;
    let change = s.last_third - s.first_third;
    let trend = c.trend_points * change;
    let level = falloff(s.average, c.best_level, c.worst_level);
    let course = if s.lines == 1 {
        "on their only line".to_string()
    } else {
        format!(
            "over {} lines, from {} in the first third to {} in the last ({} points for the change)",
            s.lines,
            signed(s.first_third),
            signed(s.last_third),
            format_args!("{:+.1}", trend)
        )
    };
    let explanation = format!(
        "The customer's sentiment averaged {} {course}; an average of {} or less scores 1, {} or more scores 10.",
        signed(s.average),
        signed(c.worst_level),
        signed(c.best_level),
    );
    score("customer_sentiment", level + trend, explanation)
}

/// A call's speech as time intervals (ms), each side merged, clipped to the call.
struct Speech {
    duration_ms: u64,
    agent: Vec<(u64, u64)>,
    customer: Vec<(u64, u64)>,
    anyone: Vec<(u64, u64)>,
}

impl Speech {
    fn of(lines: &[Line], duration_ms: u64) -> Speech {
        let side = |who: Option<Party>| {
            let spans = lines
                .iter()
                .filter(|l| who.is_none_or(|w| l.speaker == w))
                .map(|l| (l.start_ms.min(duration_ms), l.end_ms.min(duration_ms)));
            merged(spans.collect())
        };
        Speech {
            duration_ms,
            agent: side(Some(Party::Agent)),
            customer: side(Some(Party::Customer)),
            anyone: side(None),
        }
    }
}

/// `spans` sorted and merged where they touch or overlap; empty ones dropped.
fn merged(mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    spans.retain(|(start, end)| end > start);
    spans.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

fn total(spans: &[(u64, u64)]) -> u64 {
    spans.iter().map(|(start, end)| end - start).sum()
}

/// The time two merged span lists share.
fn shared(a: &[(u64, u64)], b: &[(u64, u64)]) -> u64 {
    let (mut i, mut j, mut sum) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let (start, end) = (a[i].0.max(b[j].0), a[i].1.min(b[j].1));
        sum += end.saturating_sub(start);
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    sum
}

fn talk_ratio(config: &Scorers, call: &Speech) -> Option<Score> {
    let t = &config.talk_ratio;
    let (agent, customer) = (total(&call.agent), total(&call.customer));
    // A call where one side never spoke says more about the recording than about the agent.
    if agent == 0 || customer == 0 {
        return None;
    }
    let pct = 100.0 * agent as f64 / (agent + customer) as f64;
    let level = if pct < t.best_from_pct {
        falloff(pct, t.best_from_pct, t.worst_below_pct)
    } else {
        falloff(pct, t.best_to_pct, t.worst_above_pct)
    };
    let explanation = format!(
        "The agent spoke {} % of the talk time ({} s of {} s); {}–{} % scores best, {} % or less and {} % or more score 1.",
        num(pct),
        secs(agent),
        secs(agent + customer),
        num(t.best_from_pct),
        num(t.best_to_pct),
        num(t.worst_below_pct),
        num(t.worst_above_pct),
    );
    Some(score("talk_ratio", level, explanation))
}

fn silence(config: &Scorers, call: &Speech) -> Option<Score> {
    let s = &config.silence;
    if call.anyone.is_empty() || call.duration_ms == 0 {
        return None;
    }
    let dead = call.duration_ms - total(&call.anyone);
    let mut longest = 0;
    let mut last_end = 0;
    for &(start, end) in &call.anyone {
        longest = longest.max(start - last_end);
        last_end = end;
    }
    longest = longest.max(call.duration_ms - last_end);
    let pct = 100.0 * dead as f64 / call.duration_ms as f64;
    let level = falloff(pct, s.best_share_pct, s.worst_share_pct).min(falloff(
        longest as f64 / 1000.0,
        s.best_gap_secs,
        s.worst_gap_secs,
    ));
    let explanation = format!(
        "Nobody spoke for {} % of the call ({} s of {} s) and the longest silence lasted {} s; up to {} % and {} s score best, {} % or {} s score 1.",
        num(pct),
        secs(dead),
        secs(call.duration_ms),
        secs(longest),
        num(s.best_share_pct),
        num(s.best_gap_secs),
        num(s.worst_share_pct),
        num(s.worst_gap_secs),
    );
    Some(score("silence", level, explanation))
}

fn over_talk(config: &Scorers, call: &Speech) -> Option<Score> {
    let o = &config.over_talk;
    if call.agent.is_empty() || call.customer.is_empty() || call.duration_ms == 0 {
        return None;
    }
    let both = shared(&call.agent, &call.customer);
    let pct = 100.0 * both as f64 / call.duration_ms as f64;
    let explanation = format!(
        "Agent and customer spoke at once for {} s, {} % of the call; up to {} % scores best, {} % or more scores 1.",
        secs(both),
        num(pct),
        num(o.best_pct),
        num(o.worst_pct),
    );
    Some(score("over_talk", falloff(pct, o.best_pct, o.worst_pct), explanation))
}

fn response_speed(config: &Scorers, channel: Channel, lines: &[Line]) -> Option<Score> {
    let r = &config.response_speed;
    let mut waits: Vec<u64> = Vec::new();
    let mut waiting: Option<u64> = None;
    for line in lines {
        match (line.speaker, channel) {
            // A chat customer waits from their first unanswered message …
            (Party::Customer, Channel::Chat) => {
                waiting.get_or_insert(line.start_ms);
            }
            // … a caller from the moment they stop speaking.
            (Party::Customer, Channel::Voice) => waiting = Some(line.end_ms),
            (Party::Agent, _) | (Party::Bot, Channel::Chat) => {
                if let Some(since) = waiting.take() {
                    waits.push(line.start_ms.saturating_sub(since));
                }
            }
            _ => {}
        }
    }
    let longest = *waits.iter().max()?;
    let average = waits.iter().sum::<u64>() as f64 / waits.len() as f64 / 1000.0;
    let (best, worst, explanation) = match channel {
        Channel::Chat => (
            r.chat_best_secs,
            r.chat_worst_secs,
            format!(
                "The customer waited {} s for a reply on average ({} {}, the longest {} s); up to {} s scores best, {} s or more scores 1.",
                num(average),
                waits.len(),
                if waits.len() == 1 { "reply" } else { "replies" },
                secs(longest),
                num(r.chat_best_secs),
                num(r.chat_worst_secs),
            ),
        ),
        Channel::Voice => (
            r.call_best_secs,
            r.call_worst_secs,
            format!(
                "The agent took {} s to answer the customer on average ({} {}, the longest {} s); up to {} s scores best, {} s or more scores 1.",
                num(average),
                waits.len(),
                if waits.len() == 1 { "answer" } else { "answers" },
                secs(longest),
                num(r.call_best_secs),
                num(r.call_worst_secs),
            ),
        ),
    };
    Some(score("response_speed", falloff(average, best, worst), explanation))
}
