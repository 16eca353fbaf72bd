//! Web chat: the widget socket `/v1/chat` (protocol in docs/PROTOCOLS.md) and the bot that
//! answers while no human holds the chat.
//!
//! - [`protocol`]: the frames a visitor and hark exchange.
//! - [`socket`]: one visitor connection: hello, resume, messages, acks, limits.
//! - [`bot`]: the knowledge-file bot and the HTTP bot connector.
//! - [`limit`]: the message rate limit.

pub mod bot;
pub mod limit;
pub mod protocol;
pub mod socket;
