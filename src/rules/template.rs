//! Message templates for the `send_message` action: text with `{{variable}}` and
//! `{{variable || 'fallback'}}` holes, filled from the session's facts. Parsed when the
//! configuration is, so an unknown variable or a broken hole is a configuration error and never
//! a half-rendered message in front of a customer.

use std::borrow::Cow;

use uuid::Uuid;

use super::event::SessionFacts;

/// The variables a template may use; `attributes.NAME` reads a custom attribute.
const VARIABLES: &[&str] = &[
    "contact.name",
    "contact.email",
    "contact.country",
    "agent.name",
    "team.name",
    "inbox.name",
    "session.id",
    "session.channel",
    "session.priority",
    "attributes.NAME",
];

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// A variable, and what stands in when it is unset or empty.
    Hole(Var, String),
}

#[derive(Debug, Clone, PartialEq)]
enum Var {
    ContactName,
    ContactEmail,
    ContactCountry,
    AgentName,
    TeamName,
    InboxName,
    SessionId,
    SessionChannel,
    SessionPriority,
    Attribute(String),
}

impl Template {
    pub(super) fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` at byte {} is never closed", source.len() - rest.len() + open))?;
            parts.push(hole(after[..close].trim())?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template(parts))
    }

    pub(super) fn render(&self, session: Uuid, facts: &SessionFacts) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Hole(var, fallback) => match var.value(session, facts) {
                    Some(value) if !value.is_empty() => out.push_str(&value),
                    _ => out.push_str(fallback),
                },
            }
        }
        out
    }
}

/// `name` or `name || 'fallback'` (either quote).
fn hole(inner: &str) -> Result<Part, String> {
    let (name, fallback) = match inner.split_once("||") {
        None => (inner, String::new()),
        Some((name, fallback)) => (name.trim(), unquote(fallback.trim())?),
    };
    let var = match name {
        "contact.name" => Var::ContactName,
        "contact.email" => Var::ContactEmail,
        "contact.country" => Var::ContactCountry,
        "agent.name" => Var::AgentName,
        "team.name" => Var::TeamName,
        "inbox.name" => Var::InboxName,
        "session.id" => Var::SessionId,
        "session.channel" => Var::SessionChannel,
        "session.priority" => Var::SessionPriority,
        _ => match name.strip_prefix("attributes.") {
            Some(attribute) if !attribute.is_empty() => Var::Attribute(attribute.to_string()),
            _ => return Err(format!("unknown variable {name:?} (known: {})", VARIABLES.join(", "))),
        },
    };
    Ok(Part::Hole(var, fallback))
}

fn unquote(text: &str) -> Result<String, String> {
    let quoted = [('\'', '\''), ('"', '"')]
        .iter()
        .find_map(|&(open, close)| text.strip_prefix(open).and_then(|t| t.strip_suffix(close)));
    match quoted {
        Some(inner) => Ok(inner.to_string()),
        None => Err(format!("the fallback {text:?} must be quoted, as 'there'")),
    }
}

impl Var {
    fn value<'a>(&self, session: Uuid, facts: &'a SessionFacts) -> Option<Cow<'a, str>> {
        let text = |value: &'a Option<String>| value.as_deref().map(Cow::Borrowed);
        match self {
            Var::ContactName => text(&facts.contact_name),
            Var::ContactEmail => text(&facts.contact_email),
            Var::ContactCountry => text(&facts.country),
            Var::AgentName => text(&facts.agent),
            Var::TeamName => text(&facts.team),
            Var::InboxName => text(&facts.inbox),
            Var::SessionId => Some(Cow::Owned(session.to_string())),
            Var::SessionChannel => Some(Cow::Borrowed(facts.channel.as_str())),
            Var::SessionPriority => facts.priority.map(|p| Cow::Borrowed(p.as_str())),
            Var::Attribute(name) => facts.attributes.get(name).map(|v| Cow::Borrowed(v.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Channel;

    #[test]
    fn holes_take_the_facts_or_their_fallback() {
        let template = Template::parse(
            "Hi {{ contact.name || 'there' }}, {{agent.name||\"we\"}} ({{attributes.plan}}) {{session.channel}}!",
        )
        .unwrap();
        let mut facts = SessionFacts::new(Channel::Chat);
        assert_eq!(template.render(Uuid::nil(), &facts), "Hi there, we () chat!");
        facts.contact_name = Some("Ada".into());
        facts.agent = Some("Dana".into());
        facts.attributes.insert("plan".into(), "gold".into());
        assert_eq!(template.render(Uuid::nil(), &facts), "Hi Ada, Dana (gold) chat!");
        facts.contact_name = Some(String::new());
        assert_eq!(template.render(Uuid::nil(), &facts), "Hi there, Dana (gold) chat!");
        let id = Template::parse("{{session.id}}").unwrap();
        assert_eq!(id.render(Uuid::nil(), &facts), "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn broken_templates_say_why() {
        assert!(Template::parse("Hi {{contact.nmae}}").unwrap_err().starts_with("unknown variable \"contact.nmae\""));
        assert_eq!(Template::parse("Hi {{contact.name").unwrap_err(), "`{{` at byte 3 is never closed");
        assert_eq!(
            Template::parse("{{contact.name || there}}").unwrap_err(),
            "the fallback \"there\" must be quoted, as 'there'"
        );
        assert!(Template::parse("{{attributes.}}").is_err());
        assert_eq!(
            Template::parse("no holes }}").unwrap().render(Uuid::nil(), &SessionFacts::new(Channel::Voice)),
            "no holes }}"
        );
    }
}
