//! The phrase-based parts of an analysis: checklist items (done, with the first line that did
//! it), tags (every rule that matches), category and outcome (the first rule that matches).
//! Every phrase of the configuration is compiled into one [`Matcher`] and each line is scanned
//! once; the rules then only compare phrase ids.

use crate::rules::Party;
use crate::session::EndReason;

use super::config::{AnalysisConfig, Window};
use super::lines::Line;
use super::phrase::{normalize, Matcher, PhraseIds};
use super::scorers::Sentiment;
use super::{ChecklistResult, Evidence};

/// A configuration's phrases compiled: the matcher and each rule's phrase ids.
pub(super) struct Compiled {
    matcher: Matcher,
    checklist: Vec<Vec<usize>>,
    tags: Vec<Vec<usize>>,
    category: Vec<Vec<usize>>,
    outcome: Vec<Vec<usize>>,
}

impl Compiled {
    pub(super) fn new(config: &AnalysisConfig) -> Result<Compiled, String> {
        let mut ids = PhraseIds::default();
        let checklist = config.checklist.iter().map(|item| ids.add(&item.phrases)).collect();
        let tags = config.tags.iter().map(|rule| ids.add(&rule.phrases)).collect();
        let category = config.category.iter().map(|rule| ids.add(&rule.phrases)).collect();
        let outcome = config.outcome.iter().map(|rule| ids.add(&rule.phrases)).collect();
        Ok(Compiled { matcher: Matcher::new(ids)?, checklist, tags, category, outcome })
    }
}

/// What one conversation's lines said, against a compiled configuration.
pub(super) struct Classifier<'a> {
    config: &'a AnalysisConfig,
    compiled: &'a Compiled,
    lines: &'a [Line<'a>],
    /// The phrase ids found in each line, ascending.
    found: Vec<Vec<usize>>,
    duration_ms: u64,
}

impl<'a> Classifier<'a> {
    pub(super) fn new(
        config: &'a AnalysisConfig,
        compiled: &'a Compiled,
        lines: &'a [Line<'a>],
        duration_ms: u64,
    ) -> Classifier<'a> {
        let found = lines.iter().map(|line| compiled.matcher.find(&normalize(line.text))).collect();
        Classifier { config, compiled, lines, found, duration_ms }
    }

    /// The first line by `speaker`, inside `window` when given, that says one of `phrases`.
    fn first(&self, speaker: Party, phrases: &[usize], window: Option<&Window>) -> Option<&'a Line<'a>> {
        let (from, to) = window.map_or((0, u64::MAX), |w| w.span_ms(self.duration_ms));
        self.lines.iter().zip(&self.found).find_map(|(line, found)| {
            let matched = speaker.covers(line.speaker)
                && line.end_ms >= from
                && line.start_ms <= to
                && phrases.iter().any(|id| found.binary_search(id).is_ok());
            matched.then_some(line)
        })
    }

    pub(super) fn checklist(&self) -> Vec<ChecklistResult> {
        self.config
            .checklist
            .iter()
            .zip(&self.compiled.checklist)
            .map(|(item, phrases)| {
                let evidence = self.first(item.speaker, phrases, item.within.as_ref()).map(|line| Evidence {
                    seq: line.seq,
                    speaker: line.speaker.as_str().into(),
                    start_ms: line.start_ms,
                    text: line.text.into(),
                });
                ChecklistResult { id: item.id.clone(), label: item.label.clone(), done: evidence.is_some(), evidence }
            })
            .collect()
    }

    /// Every tag whose rule matches, each once, in the order of the rules.
    pub(super) fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        for (rule, phrases) in self.config.tags.iter().zip(&self.compiled.tags) {
            if !tags.contains(&rule.tag) && self.first(rule.speaker, phrases, None).is_some() {
                tags.push(rule.tag.clone());
            }
        }
        tags
    }

    pub(super) fn category(&self) -> Option<String> {
        let mut rules = self.config.category.iter().zip(&self.compiled.category);
        rules
            .find(|(rule, phrases)| self.first(rule.speaker, phrases, None).is_some())
            .map(|(rule, _)| rule.category.clone())
    }

    /// The first outcome rule whose every condition holds.
    pub(super) fn outcome(
        &self,
        checklist: &[ChecklistResult],
        end_reason: Option<EndReason>,
        sentiment: Option<&Sentiment>,
    ) -> Option<String> {
        let done = |id: &String| checklist.iter().any(|item| item.done && &item.id == id);
        let mut rules = self.config.outcome.iter().zip(&self.compiled.outcome);
        rules
            .find(|(rule, phrases)| {
                (phrases.is_empty() || self.first(rule.speaker, phrases, None).is_some())
                    && (rule.end_reason.is_empty() || end_reason.is_some_and(|r| rule.end_reason.contains(&r)))
                    && rule.checklist_done.iter().all(done)
                    && rule.customer_sentiment_min.is_none_or(|min| sentiment.is_some_and(|s| s.last_third >= min))
            })
            .map(|(rule, _)| rule.outcome.clone())
    }
}
