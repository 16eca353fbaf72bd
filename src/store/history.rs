//! The history of ended sessions: filters (time, placement, channel, category, outcome, score
//! ranges, tags, checklist items, full text), a sort, and keyset pagination — a page costs the
//! same however deep it is, and rows arriving meanwhile neither repeat nor vanish.

use sqlx::Row;
use time::OffsetDateTime;

use crate::clock::unix_ms;
use crate::org::Scope;
use crate::session::{Card, Channel};

use super::{card_from_row, search, Store, StoreError, CARD_COLUMNS};

/// What to look for; every given filter must hold.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub agent: Option<String>,
    pub desk: Option<String>,
    pub department: Option<String>,
    pub channel: Option<Channel>,
    pub category: Option<String>,
    pub outcome: Option<String>,
    /// Score label with its inclusive range; all must hold.
    pub scores: Vec<(String, u8, u8)>,
    /// Tags the session must all have.
    pub tags: Vec<String>,
    /// Checklist item ids with whether they must be done.
    pub checklist: Vec<(String, bool)>,
    /// Full-text query over messages and transcripts.
    pub text: Option<String>,
    pub sort: Sort,
    pub after: Option<Cursor>,
    pub limit: i64,
}

/// The order of a history page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    NewestFirst,
    OldestFirst,
    LongestFirst,
    ShortestFirst,
}

impl Sort {
    pub fn parse(text: &str) -> Option<Sort> {
        match text {
            "-started_at" => Some(Sort::NewestFirst),
            "started_at" => Some(Sort::OldestFirst),
            "-duration" => Some(Sort::LongestFirst),
            "duration" => Some(Sort::ShortestFirst),
            _ => None,
        }
    }

    fn column(self) -> &'static str {
        match self {
            Sort::NewestFirst | Sort::OldestFirst => "s.started_at",
            Sort::LongestFirst | Sort::ShortestFirst => "COALESCE(s.duration_ms, -1)",
        }
    }

    fn descending(self) -> bool {
        matches!(self, Sort::NewestFirst | Sort::LongestFirst)
    }
}

/// Where the previous page ended: its last row's sort value and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    value: i64,
    id: String,
}

impl Cursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        hex::encode(format!("{}/{}", self.value, self.id))
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let raw = String::from_utf8(hex::decode(text).ok()?).ok()?;
        let (value, id) = raw.split_once('/')?;
        Some(Cursor { value: value.parse().ok()?, id: id.to_string() })
    }
}

/// An ended session as a history row: its card and what finalize added.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SessionSummary {
    #[serde(flatten)]
    pub card: Card,
    /// From start to end, once finalized.
    pub duration_ms: Option<i64>,
    pub category: Option<String>,
    pub outcome: Option<String>,
    pub scores: Vec<ScoreValue>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ScoreValue {
    pub label: String,
    pub score: u8,
}

enum Bind {
    Text(String),
    Int(i64),
}

impl Store {
    /// One page of the tenant's ended sessions within `scope`, and the cursor of the next page
    /// when there may be one.
    pub async fn history(
        &self,
        tenant: &str,
        scope: &Scope,
        filter: &HistoryFilter,
    ) -> Result<(Vec<SessionSummary>, Option<Cursor>), StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.history_on(&mut conn, tenant, scope, filter).await
    }

    /// [`Store::history`] on a connection the caller holds (an export reads every page on one,
    /// so one connection's page cache serves it).
    pub(super) async fn history_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        tenant: &str,
        scope: &Scope,
        filter: &HistoryFilter,
    ) -> Result<(Vec<SessionSummary>, Option<Cursor>), StoreError> {
        let mut binds = vec![Bind::Text(tenant.to_string())];
        let mut conditions = vec!["s.tenant = $1".to_string(), "s.state = 'ended'".to_string()];
        let mut add = |template: &dyn Fn(usize) -> String, bind: Bind, binds: &mut Vec<Bind>| {
            binds.push(bind);
            conditions.push(template(binds.len()));
        };
        let text = |v: &Option<String>| v.clone().map(Bind::Text);
        for (column, value) in [
            ("s.agent_id", text(&filter.agent)),
            ("s.desk_id", text(&filter.desk)),
            ("s.department_id", text(&filter.department)),
            ("s.category", text(&filter.category)),
            ("s.outcome", text(&filter.outcome)),
            ("s.channel", filter.channel.map(|c| Bind::Text(c.as_str().into()))),
            ("s.started_at >=", filter.since.map(|t| Bind::Int(unix_ms(t)))),
            ("s.started_at <", filter.until.map(|t| Bind::Int(unix_ms(t)))),
        ] {
            if let Some(value) = value {
                let op = if column.ends_with(['=', '<']) { "" } else { " =" };
                add(&|n| format!("{column}{op} ${n}"), value, &mut binds);
            }
        }
        for tag in &filter.tags {
            let pattern = format!("%{}%", like_escape(&serde_json::to_string(tag)?));
            add(&|n| format!("s.tags LIKE ${n} ESCAPE '\\'"), Bind::Text(pattern), &mut binds);
        }
        for (label, low, high) in &filter.scores {
            binds.push(Bind::Text(label.clone()));
            binds.push(Bind::Int(i64::from(*low)));
            binds.push(Bind::Int(i64::from(*high)));
            let n = binds.len();
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM session_scores sc WHERE sc.session_id = s.id AND sc.label = ${} \
                 AND sc.score >= ${} AND sc.score <= ${n})",
                n - 2,
                n - 1
            ));
        }
        for (item, done) in &filter.checklist {
            binds.push(Bind::Text(item.clone()));
            binds.push(Bind::Int(i64::from(*done)));
            let n = binds.len();
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM session_checklist c WHERE c.session_id = s.id AND c.item_id = ${} AND c.done = ${n})",
                n - 1
            ));
        }
        if let Some(query) = filter.text.as_deref().filter(|q| !q.trim().is_empty()) {
            let (condition, value) = search::condition(self.backend, query, binds.len() + 1);
            binds.push(Bind::Text(value));
            conditions.push(condition);
        }
        let (scope_sql, scope_binds) = scope.sql("s", binds.len() + 1);
        binds.extend(scope_binds.into_iter().map(Bind::Text));
        conditions.push(scope_sql);
        let (column, descending) = (filter.sort.column(), filter.sort.descending());
        if let Some(cursor) = &filter.after {
            binds.push(Bind::Int(cursor.value));
            binds.push(Bind::Text(cursor.id.clone()));
            let n = binds.len();
            let op = if descending { "<" } else { ">" };
            conditions.push(format!("({column} {op} ${} OR ({column} = ${} AND s.id {op} ${n}))", n - 1, n - 1));
        }
        let direction = if descending { "DESC" } else { "ASC" };
        let columns = CARD_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {columns}, s.duration_ms, s.category, s.outcome, s.analysis, {column} AS sort_value FROM sessions s \
             WHERE {} ORDER BY {column} {direction}, s.id {direction} LIMIT {}",
            conditions.join(" AND "),
            filter.limit + 1
        );
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(int) => query.bind(int),
            };
        }
        let rows = query.fetch_all(&mut *conn).await?;
        let more = rows.len() as i64 > filter.limit;
        let mut page = Vec::new();
        let mut next = None;
        for row in rows.iter().take(filter.limit as usize) {
            let analysis: Option<crate::analysis::Analysis> =
                row.try_get::<Option<String>, _>("analysis")?.map(|a| serde_json::from_str(&a)).transpose()?;
            let card = card_from_row(row)?;
            next = Some(Cursor { value: row.try_get("sort_value")?, id: card.session_id.to_string() });
            page.push(SessionSummary {
                card,
                duration_ms: row.try_get("duration_ms")?,
                category: row.try_get("category")?,
                outcome: row.try_get("outcome")?,
                scores: analysis
                    .map(|a| a.scores.into_iter().map(|s| ScoreValue { label: s.label, score: s.score }).collect())
                    .unwrap_or_default(),
            });
        }
        Ok((page, next.filter(|_| more)))
    }
}

/// `text` as a literal inside a LIKE pattern escaped with `\`.
fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
