//! Phrase rules at the cost of one pass over the text: every phrase of every rule goes into one
//! Aho-Corasick automaton (built when the configuration is), so a message is scanned once
//! whether there are ten phrases or ten thousand. Matching ignores case (texts and phrases are
//! lower-cased) and wants whole words: "cancel" does not match "cancellation".

use aho_corasick::{AhoCorasick, MatchKind};

pub(super) struct PhraseIndex {
    automaton: Option<AhoCorasick>,
    patterns: Vec<Pattern>,
}

struct Pattern {
    phrase: String,
    /// The alert rules (indices) that list this phrase.
    rules: Vec<usize>,
    /// Whether the phrase starts (ends) with a word character, so needs a boundary before (after).
    bounded_start: bool,
    bounded_end: bool,
}

impl PhraseIndex {
    /// An index of `(rule, phrase)` pairs; phrases are trimmed and must not be empty.
    pub(super) fn new<'a>(phrases: impl IntoIterator<Item = (usize, &'a str)>) -> Result<PhraseIndex, String> {
        let mut patterns: Vec<Pattern> = Vec::new();
        let mut by_phrase = std::collections::HashMap::new();
        for (rule, phrase) in phrases {
            let phrase = phrase.trim().to_lowercase();
            let at = *by_phrase.entry(phrase.clone()).or_insert_with(|| {
                patterns.push(Pattern {
                    bounded_start: phrase.chars().next().is_some_and(is_word),
                    bounded_end: phrase.chars().next_back().is_some_and(is_word),
                    phrase,
                    rules: Vec::new(),
                });
                patterns.len() - 1
            });
            if !patterns[at].rules.contains(&rule) {
                patterns[at].rules.push(rule);
            }
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            let phrases = patterns.iter().map(|p| &p.phrase);
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(phrases)
                    .map_err(|e| format!("too many phrases: {e}"))?,
            )
        };
        Ok(PhraseIndex { automaton, patterns })
    }

    /// Each `(rule, phrase)` whose phrase is in `lowered` (a lower-cased text) as whole words,
    /// in order of where the phrases end; a rule comes once per occurrence.
    pub(super) fn find<'a>(&'a self, lowered: &'a str) -> impl Iterator<Item = (usize, &'a str)> + 'a {
        let matches = self.automaton.iter().flat_map(move |ac| ac.find_overlapping_iter(lowered));
        matches
            .filter_map(move |m| {
                let pattern = &self.patterns[m.pattern().as_usize()];
                let before = lowered[..m.start()].chars().next_back();
                let after = lowered[m.end()..].chars().next();
                let whole = !(pattern.bounded_start && before.is_some_and(is_word)
                    || pattern.bounded_end && after.is_some_and(is_word));
                whole.then_some(pattern)
            })
            .flat_map(|pattern| pattern.rules.iter().map(move |&rule| (rule, pattern.phrase.as_str())))
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(index: &PhraseIndex, text: &str) -> Vec<(usize, String)> {
        let lowered = text.to_lowercase();
        index.find(&lowered).map(|(rule, phrase)| (rule, phrase.to_string())).collect()
    }

    #[test]
    fn whole_words_ignoring_case_with_overlaps_and_shared_phrases() {
        let index =
            PhraseIndex::new([(0, "cancel"), (1, " Cancel my contract "), (2, "cancel"), (3, "refund!")]).unwrap();
        assert_eq!(
            found(&index, "I want to CANCEL my contract."),
            [(0, "cancel".into()), (2, "cancel".into()), (1, "cancel my contract".into())]
        );
        assert_eq!(found(&index, "the cancellation fee"), []);
        assert_eq!(found(&index, "precancel"), []);
        // A phrase ending in punctuation needs no boundary after it.
        assert_eq!(found(&index, "refund!!"), [(3, "refund!".into())]);
        assert_eq!(found(&index, "Ärger: cancel"), [(0, "cancel".into()), (2, "cancel".into())]);
    }

    #[test]
    fn an_empty_index_finds_nothing() {
        let index = PhraseIndex::new([]).unwrap();
        assert_eq!(found(&index, "anything"), []);
    }
}
