//! The bot that answers a chat while no human holds it: the built-in knowledge-file bot
//! (`config/faq.toml`: patterns → answers, with a fallback) or a site's own HTTP bot endpoint.

use std::time::Duration;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::config::{BotKind, SiteConfig};
use crate::session::SessionId;

/// The knowledge file embedded in the binary, used when `chat.faq` is empty.
pub const DEFAULT_FAQ: &str = include_str!("../../config/faq.toml");

/// What the bot says when the HTTP endpoint fails.
pub const UNAVAILABLE: &str = "Sorry, I can't answer right now. Let me get a person to help you.";

pub enum Bot {
    Faq(Faq),
    Http(HttpBot),
    None,
}

impl Bot {
    /// The bot a site is configured with; `faq` is the shared knowledge file.
    pub fn for_site(site: &SiteConfig, faq: &Faq, client: &reqwest::Client) -> Bot {
        match site.bot {
            BotKind::Faq => Bot::Faq(faq.clone()),
            BotKind::Http => Bot::Http(HttpBot {
                client: client.clone(),
                url: site.bot_url.clone(),
                timeout: Duration::from_millis(site.bot_timeout_ms),
            }),
            BotKind::None => Bot::None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Bot::Faq(_) => "faq",
            Bot::Http(_) => "http",
            Bot::None => "none",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaqFile {
    fallback: String,
    #[serde(default)]
    answers: Vec<FaqAnswer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaqAnswer {
    patterns: Vec<String>,
    reply: String,
}

/// Answers from a knowledge file: the first answer with a pattern matching the message.
#[derive(Clone, Debug)]
pub struct Faq {
    answers: Vec<(Vec<Regex>, String)>,
    fallback: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FaqError {
    #[error("knowledge file: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("knowledge file, answer {answer}: pattern {pattern:?}: {source}")]
    Pattern { answer: usize, pattern: String, source: regex::Error },
}

impl Faq {
    pub fn parse(text: &str) -> Result<Faq, FaqError> {
        let file: FaqFile = toml::from_str(text)?;
        let answers =
            file.answers
                .into_iter()
                .enumerate()
                .map(|(i, a)| {
                    let patterns =
                        a.patterns
                            .iter()
                            .map(|p| {
                                RegexBuilder::new(p)
                                    .case_insensitive(true)
                                    .build()
                                    .map_err(|source| FaqError::Pattern { answer: i + 1, pattern: p.clone(), source })
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                    Ok((patterns, a.reply))
                })
                .collect::<Result<Vec<_>, FaqError>>()?;
        Ok(Faq { answers, fallback: file.fallback })
    }

    pub fn answer(&self, text: &str) -> &str {
        self.answers
            .iter()
            .find(|(patterns, _)| patterns.iter().any(|p| p.is_match(text)))
            .map_or(&self.fallback, |(_, reply)| reply)
    }
}

/// A site's own bot, reached by POSTing each visitor message.
pub struct HttpBot {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
}

/// The body hark POSTs to an HTTP bot.
#[derive(Serialize)]
pub struct BotRequest<'a> {
    pub session_id: SessionId,
    pub site: &'a str,
    pub message: BotMessage<'a>,
}

#[derive(Serialize)]
pub struct BotMessage<'a> {
    pub seq: u64,
    pub text: &'a str,
}

/// What an HTTP bot answers: `{"reply": "…"}`, or `{"reply": null}` / 204 for silence.
#[derive(Deserialize)]
struct BotResponse {
    reply: Option<String>,
}

impl HttpBot {
    pub async fn ask(&self, request: &BotRequest<'_>) -> Result<Option<String>, reqwest::Error> {
        let response =
            self.client.post(&self.url).timeout(self.timeout).json(request).send().await?.error_for_status()?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let body: BotResponse = response.json().await?;
        Ok(body.reply.filter(|r| !r.trim().is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_knowledge_file_answers_and_falls_back() {
        let faq = Faq::parse(DEFAULT_FAQ).unwrap();
        assert!(faq.answer("What are your OPENING HOURS?").contains("Monday to Friday"));
        assert!(faq.answer("where is my parcel").contains("track"));
        assert!(faq.answer("Tell me about quantum physics").contains("Let me get a person"));
    }

    #[test]
    fn a_bad_pattern_names_its_answer() {
        let err =
            Faq::parse("fallback = \"x\"\n[[answers]]\npatterns = [\"(\"]\nreply = \"y\"\n").unwrap_err().to_string();
        assert!(err.contains("answer 1"), "{err}");
    }
}
