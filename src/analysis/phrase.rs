//! Phrase matching for the checklist, tags, category and outcome rules: one Aho-Corasick
//! automaton over every phrase of a configuration, so each line is scanned once however many
//! rules there are. Texts and phrases are normalized the same way first — lower case,
//! apostrophes dropped ("I'm" = "im"), every other run of punctuation or space one space, a
//! space at each end — so matching ignores case and punctuation, and a phrase padded with
//! spaces can only match whole words: "cancel" does not match "cancellation".

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};

/// `text` as ` word word … ` (see the module documentation); `" "` when it has no words.
pub(super) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    for c in text.chars().filter(|c| !matches!(c, '\'' | '’' | 'ʼ')) {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

/// Collects phrases, numbering each distinct (normalized) one once.
#[derive(Default)]
pub(super) struct PhraseIds {
    patterns: Vec<String>,
    ids: HashMap<String, usize>,
}

impl PhraseIds {
    /// The ids of `phrases`.
    pub(super) fn add(&mut self, phrases: &[String]) -> Vec<usize> {
        phrases
            .iter()
            .map(|phrase| {
                let pattern = normalize(phrase);
                *self.ids.entry(pattern.clone()).or_insert_with(|| {
                    self.patterns.push(pattern);
                    self.patterns.len() - 1
                })
            })
            .collect()
    }
}

/// Finds the phrases collected in a [`PhraseIds`] in normalized texts.
pub(super) struct Matcher {
    automaton: Option<AhoCorasick>,
}

impl Matcher {
    pub(super) fn new(phrases: PhraseIds) -> Result<Matcher, String> {
        if phrases.patterns.is_empty() {
            return Ok(Matcher { automaton: None });
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&phrases.patterns)
            .map_err(|e| format!("too many phrases: {e}"))?;
        Ok(Matcher { automaton: Some(automaton) })
    }

    /// The ids of the phrases in `normalized` (a [`normalize`]d text), ascending, each once.
    pub(super) fn find(&self, normalized: &str) -> Vec<usize> {
        let mut found: Vec<usize> = self
            .automaton
            .iter()
            .flat_map(|ac| ac.find_overlapping_iter(normalized))
            .map(|m| m.pattern().as_usize())
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(phrases: &[&str]) -> (Matcher, Vec<usize>) {
        let mut ids = PhraseIds::default();
        let list: Vec<String> = phrases.iter().map(|p| p.to_string()).collect();
        let numbered = ids.add(&list);
        (Matcher::new(ids).unwrap(), numbered)
    }

    #[test]
    fn normalizing_drops_case_punctuation_and_apostrophes() {
        assert_eq!(normalize("Is there ANYTHING else?!"), " is there anything else ");
        assert_eq!(normalize("  I'm   sorry…  it’s—fine "), " im sorry its fine ");
        assert_eq!(normalize("?!"), " ");
        assert_eq!(normalize("Ärger, Straße"), " ärger straße ");
    }

    #[test]
    fn whole_words_ignoring_case_and_punctuation() {
        let (m, ids) = matcher(&["cancel", "Anything else?", "cancel", "I'm done", "else"]);
        assert_eq!(ids, [0, 1, 0, 2, 3], "the same phrase gets the same id");
        assert_eq!(m.find(&normalize("Is there anything, else.")), [1, 3]);
        assert_eq!(m.find(&normalize("the cancellation fee")), Vec::<usize>::new());
        assert_eq!(m.find(&normalize("precancel")), Vec::<usize>::new());
        assert_eq!(m.find(&normalize("CANCEL! cancel")), [0]);
        assert_eq!(m.find(&normalize("Im done")), [2]);
        assert_eq!(m.find(&normalize("something elsewhere")), Vec::<usize>::new());
    }

    #[test]
    fn no_phrases_find_nothing() {
        let (m, _) = matcher(&[]);
        assert_eq!(m.find(&normalize("anything")), Vec::<usize>::new());
    }
}
