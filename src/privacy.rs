//! PII redaction: card numbers (with a valid Luhn check digit), e-mail addresses, phone numbers
//! and configurable national-id patterns become `***` before a message or transcript line is
//! stored, published, evaluated by rules or sent to a bot. Pure: text in, text out.
//!
//! A call's transcript line carries its words with their times; a word that overlaps a
//! redacted part of the line is redacted too, so the words never give back what the text hides.

use std::ops::Range;

use regex::Regex;
use serde::Deserialize;

/// What replaces each redacted part.
pub const MASK: &str = "***";

/// `[privacy]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    /// Off: text is kept as written.
    pub redact: bool,
    /// Regular expressions of national identity numbers (e.g. a US SSN `\b\d{3}-\d{2}-\d{4}\b`).
    pub national_id_patterns: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("privacy.national_id_patterns[{index}]: {source}")]
pub struct PatternError {
    index: usize,
    source: regex::Error,
}

/// Finds and masks personal data in text.
#[derive(Debug)]
pub struct Redactor {
    enabled: bool,
    /// Runs of 13–19 digits, single spaces or dashes between them (checked with Luhn).
    card: Regex,
    email: Regex,
    /// An optional `+` or `(`, then 9–15 digits with spaces, dots, dashes or parentheses
    /// between (a date's 8 digits are not a phone number).
    phone: Regex,
    national_ids: Vec<Regex>,
}

impl Redactor {
    pub fn new(settings: &PrivacySettings) -> Result<Redactor, PatternError> {
        let national_ids = settings
            .national_id_patterns
            .iter()
            .enumerate()
            .map(|(index, p)| Regex::new(p).map_err(|source| PatternError { index, source }))
            .collect::<Result<_, _>>()?;
        Ok(Redactor {
            enabled: settings.redact,
            card: Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").expect("card pattern"),
            email: Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b").expect("email pattern"),
            phone: Regex::new(r"(?:\+|\()?\b\d(?:[ .()-]{0,2}\d){8,14}\b").expect("phone pattern"),
            national_ids,
        })
    }

    /// The byte ranges of `text` to mask, in order, not overlapping.
    pub fn find(&self, text: &str) -> Vec<Range<usize>> {
        if !self.enabled {
            return Vec::new();
        }
        let mut found: Vec<Range<usize>> = Vec::new();
        found.extend(self.card.find_iter(text).filter(|m| luhn(m.as_str())).map(|m| m.range()));
        found.extend(self.email.find_iter(text).map(|m| m.range()));
        for pattern in &self.national_ids {
            found.extend(pattern.find_iter(text).map(|m| m.range()));
        }
        found.extend(self.phone.find_iter(text).map(|m| m.range()));
        found.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
        let mut merged: Vec<Range<usize>> = Vec::new();
        for r in found.into_iter().filter(|r| !r.is_empty()) {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged
    }

    /// `text` with every part [`Redactor::find`] finds replaced by [`MASK`].
    pub fn redact(&self, text: &str) -> String {
        mask(text, &self.find(text))
    }

    /// Redacts a transcript line and its words: a word overlapping a redacted part of the line
    /// becomes [`MASK`]. Words are found in the line in order; one not found is redacted if
    /// it holds personal data by itself.
    pub fn redact_words<'w>(&self, text: &str, words: impl Iterator<Item = &'w mut String>) -> String {
        let ranges = self.find(text);
        if ranges.is_empty() {
            return text.to_string();
        }
        let mut from = 0;
        for word in words {
            let trimmed = word.trim();
            let span = text[from..].find(trimmed).map(|at| from + at..from + at + trimmed.len());
            let hidden = match &span {
                Some(span) => ranges.iter().any(|r| r.start < span.end && span.start < r.end),
                None => !self.find(word).is_empty(),
            };
            if let Some(span) = span {
                from = span.end;
            }
            if hidden {
                *word = MASK.to_string();
            }
        }
        mask(text, &ranges)
    }
}

fn mask(text: &str, ranges: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in ranges {
        out.push_str(&text[at..r.start]);
        out.push_str(MASK);
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Whether the digits of `number` (other characters ignored) pass the Luhn check.
fn luhn(number: &str) -> bool {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    (13..=19).contains(&digits.len()) && sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(&PrivacySettings {
            redact: true,
            national_id_patterns: vec![r"\b\d{3}-\d{2}-\d{4}\b".into(), r"\b[A-Z]{2}\d{6}[A-D]\b".into()],
        })
        .unwrap()
    }

    #[test]
    fn card_numbers_with_a_valid_check_digit_are_masked_others_kept() {
        let r = redactor();
        assert_eq!(r.redact("my card is 4111 1111 1111 1111, ok?"), "my card is ***, ok?");
        assert_eq!(r.redact("card 4111-1111-1111-1111"), "card ***");
        assert_eq!(r.redact("5500005555555559 expires soon"), "*** expires soon");
        // Sixteen digits failing Luhn are not a card (an order number): kept, unless a phone.
        assert_eq!(r.redact("order 1234567812345678"), "order 1234567812345678");
    }

    #[test]
    fn emails_phones_and_national_ids_are_masked() {
        let r = redactor();
        assert_eq!(r.redact("write to Dana.Levi+cc@example.co.uk today"), "write to *** today");
        assert_eq!(r.redact("call me on +44 20 7946 0958 please"), "call me on *** please");
        assert_eq!(r.redact("or (212) 555-0199"), "or ***");
        assert_eq!(r.redact("SSN 078-05-1120 and NI QQ123456C"), "SSN *** and NI ***");
        assert_eq!(r.redact("room 42 on 2026-11-29, 3 items"), "room 42 on 2026-11-29, 3 items");
        assert_eq!(r.redact("שלום, המספר שלי 052-1234567"), "שלום, המספר שלי ***");
    }

    #[test]
    fn words_overlapping_a_masked_part_are_masked_too() {
        let r = redactor();
        let mut words: Vec<String> =
            ["My", " card", " is", " 4111", " 1111", " 1111", " 1111."].iter().map(|s| s.to_string()).collect();
        let text = r.redact_words("My card is 4111 1111 1111 1111.", words.iter_mut());
        assert_eq!(text, "My card is ***.");
        assert_eq!(words, ["My", " card", " is", MASK, MASK, MASK, MASK]);
    }

    #[test]
    fn off_keeps_everything_and_bad_patterns_name_their_index() {
        let off = Redactor::new(&PrivacySettings { redact: false, national_id_patterns: vec![] }).unwrap();
        assert_eq!(off.redact("4111 1111 1111 1111"), "4111 1111 1111 1111");
        let err = Redactor::new(&PrivacySettings { redact: true, national_id_patterns: vec!["ok".into(), "(".into()] })
            .unwrap_err();
        assert!(err.to_string().starts_with("privacy.national_id_patterns[1]"), "{err}");
    }
}
