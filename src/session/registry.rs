//! Every live session, found by id or by the visitor's resume token, and the per-tenant feed of
//! card changes that supervisors subscribe to.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{broadcast, mpsc};
use tokio_util::task::TaskTracker;

use super::actor::Command;
use super::{Card, Channel, EndReason, SessionId};

/// A change on a tenant's feed.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    Card(Arc<Card>),
    Ended {
        session_id: SessionId,
        reason: EndReason,
    },
    /// An alert was raised or acknowledged.
    Alert(Arc<crate::store::AlertRecord>),
}

/// What the registry keeps of a live session.
#[derive(Clone)]
pub struct Live {
    pub commands: mpsc::Sender<Command>,
    pub card: Arc<Card>,
}

/// Feed capacity per tenant; a supervisor that falls further behind gets a fresh snapshot.
const FEED_CAPACITY: usize = 1024;

#[derive(Default)]
pub struct Registry {
    sessions: DashMap<SessionId, Live>,
    resume: DashMap<String, SessionId>,
    feeds: DashMap<String, broadcast::Sender<FeedEvent>>,
    /// Owner tasks, so shutdown can wait for every session to be persisted.
    pub tasks: TaskTracker,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    pub fn insert(&self, live: Live, resume_token: String) {
        let id = live.card.session_id;
        metrics::gauge!(crate::metrics::LIVE_SESSIONS, "channel" => live.card.channel.as_str()).increment(1.0);
        self.publish(&live.card.tenant.clone(), FeedEvent::Card(live.card.clone()));
        self.sessions.insert(id, live);
        self.resume.insert(resume_token, id);
    }

    pub fn get(&self, id: &SessionId) -> Option<Live> {
        self.sessions.get(id).map(|l| l.clone())
    }

    pub fn by_resume_token(&self, token: &str) -> Option<(SessionId, Live)> {
        let id = *self.resume.get(token)?;
        Some((id, self.get(&id)?))
    }

    /// Records a card change and tells the tenant's supervisors.
    pub fn update_card(&self, card: Card) {
        let card = Arc::new(card);
        if let Some(mut live) = self.sessions.get_mut(&card.session_id) {
            live.card = card.clone();
        }
        let tenant = card.tenant.clone();
        self.publish(&tenant, FeedEvent::Card(card));
    }

    pub fn remove(&self, card: &Card, resume_token: &str, reason: EndReason) {
        if self.sessions.remove(&card.session_id).is_some() {
            metrics::gauge!(crate::metrics::LIVE_SESSIONS, "channel" => card.channel.as_str()).decrement(1.0);
        }
        self.resume.remove(resume_token);
        self.publish(&card.tenant, FeedEvent::Ended { session_id: card.session_id, reason });
    }

    /// Live cards of a tenant (all tenants with `None`), newest first.
    pub fn cards(&self, tenant: Option<&str>, channel: Option<Channel>) -> Vec<Arc<Card>> {
        let mut cards: Vec<_> = self
            .sessions
            .iter()
            .map(|l| l.card.clone())
            .filter(|c| tenant.is_none_or(|t| c.tenant == t) && channel.is_none_or(|ch| c.channel == ch))
            .collect();
        cards.sort_by_key(|c| std::cmp::Reverse(c.started_at));
        cards
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Subscribes to a tenant's feed. Subscribe before taking the snapshot: a change in between
    /// then arrives twice (harmless upserts) rather than never.
    pub fn subscribe(&self, tenant: &str) -> broadcast::Receiver<FeedEvent> {
        self.feeds.entry(tenant.to_string()).or_insert_with(|| broadcast::channel(FEED_CAPACITY).0).subscribe()
    }

    /// Tells the tenant's supervisors (those subscribed now).
    pub fn publish(&self, tenant: &str, event: FeedEvent) {
        if let Some(feed) = self.feeds.get(tenant) {
            let _ = feed.send(event);
        }
    }

    /// Asks every live session to end as interrupted; their owner tasks persist them.
    pub async fn shutdown_all(&self) {
        let handles: Vec<_> = self.sessions.iter().map(|l| l.commands.clone()).collect();
        for commands in handles {
            let _ = commands.send(Command::input(super::core::Input::Shutdown, None)).await;
        }
        self.tasks.close();
        self.tasks.wait().await;
    }
}
