//! Frames of the widget socket. See docs/PROTOCOLS.md for their meaning and examples.

use serde::{Deserialize, Serialize};

use crate::session::{Entry, Holder, SessionId};

/// Longest visitor `client_id`.
pub const MAX_CLIENT_ID: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VisitorFrame {
    Hello {
        site_key: String,
        #[serde(default)]
        resume_token: Option<String>,
        #[serde(default)]
        last_seq: u64,
    },
    Message {
        client_id: String,
        text: String,
    },
    Leave,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Welcome {
        session_id: SessionId,
        resume_token: &'a str,
        last_seq: u64,
        holder: &'a Holder,
        resumed: bool,
        /// The display name the widget shows for the bot.
        bot_name: &'a str,
    },
    Ack {
        client_id: &'a str,
        seq: u64,
    },
    Message(&'a Entry),
    Holder {
        holder: &'a Holder,
    },
}
