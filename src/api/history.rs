//! `GET /v1/sessions`: live cards, or the history of ended sessions with filters, full-text
//! search, a sort and cursor pagination (the next page's address in a `Link: <…>; rel="next"`
//! header, RFC 8288). The CSV export takes the same filters ([`HistoryQuery`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::error::{Problem, Query};
use crate::server::App;
use crate::session::Channel;
use crate::store::{Cursor, HistoryFilter, SessionSummary, Sort};

use super::auth::Principal;
use super::time_param;

/// The filters of the history, shared by the list and the CSV export. Lists are
/// comma-separated.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub(super) struct HistoryQuery {
    /// Started at or after this time (RFC 3339).
    since: Option<String>,
    /// Started before this time (RFC 3339).
    until: Option<String>,
    /// Agent id.
    agent: Option<String>,
    /// Desk id.
    desk: Option<String>,
    /// Department id.
    department: Option<String>,
    /// `chat` or `voice`.
    channel: Option<String>,
    category: Option<String>,
    outcome: Option<String>,
    /// Score ranges that must all hold, e.g. `talk_ratio:5-10,customer_sentiment:1-4`.
    scores: Option<String>,
    /// Tags the session must all have, e.g. `billing,vip`.
    tags: Option<String>,
    /// Checklist items and their status, e.g. `greeting:done,closing:missed`.
    checklist: Option<String>,
    /// Full-text search over messages and transcripts: words and "quoted phrases" must all
    /// occur, `-word` must not, `or` between two terms lets either do.
    q: Option<String>,
}

impl HistoryQuery {
    /// The filter these parameters describe; a malformed one is a 400 naming the parameter.
    pub(super) fn filter(&self, sort: Sort, limit: i64) -> Result<HistoryFilter, Problem> {
        let list = |v: &Option<String>| -> Vec<String> {
            v.as_deref()
                .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default()
        };
        let scores = list(&self.scores)
            .iter()
            .map(|s| {
                parse_score_range(s).ok_or_else(|| {
                    Problem::bad_request(format!("scores: {s:?} is not label:low-high with 1 ≤ low ≤ high ≤ 10"))
                })
            })
            .collect::<Result<_, _>>()?;
        let checklist = list(&self.checklist)
            .iter()
            .map(|item| match item.rsplit_once(':') {
                Some((id, "done")) if !id.is_empty() => Ok((id.to_string(), true)),
                Some((id, "missed")) if !id.is_empty() => Ok((id.to_string(), false)),
                _ => Err(Problem::bad_request(format!("checklist: {item:?} is not item:done or item:missed"))),
            })
            .collect::<Result<_, _>>()?;
        let channel = match self.channel.as_deref() {
            None => None,
            Some("chat") => Some(Channel::Chat),
            Some("voice") => Some(Channel::Voice),
            Some(other) => return Err(Problem::bad_request(format!("channel: {other:?} is not chat or voice"))),
        };
        Ok(HistoryFilter {
            since: time_param("since", self.since.as_deref())?,
            until: time_param("until", self.until.as_deref())?,
            agent: self.agent.clone(),
            desk: self.desk.clone(),
            department: self.department.clone(),
            channel,
            category: self.category.clone(),
            outcome: self.outcome.clone(),
            scores,
            tags: list(&self.tags),
            checklist,
            text: self.q.clone(),
            sort,
            after: None,
            limit,
        })
    }
}

fn parse_score_range(text: &str) -> Option<(String, u8, u8)> {
    let (label, range) = text.rsplit_once(':')?;
    let (low, high) = range.split_once('-').unwrap_or((range, range));
    let (low, high): (u8, u8) = (low.trim().parse().ok()?, high.trim().parse().ok()?);
    (!label.is_empty() && (1..=high).contains(&low) && high <= 10).then(|| (label.to_string(), low, high))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(super) struct ListQuery {
    /// `live` (default) or `ended`.
    state: Option<String>,
    /// At most this many sessions per page (default 100, at most 1000).
    limit: Option<i64>,
    /// Ended sessions: `-started_at` (default), `started_at`, `-duration` or `duration`.
    sort: Option<String>,
    /// Ended sessions: the page after this one, from the previous page's `Link` header.
    cursor: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    filters: HistoryQuery,
}

/// Live cards, or a page of ended sessions with what finalize added (duration, category,
/// outcome, scores), within the caller's data scope.
#[utoipa::path(get, path = "/v1/sessions", params(ListQuery, HistoryQuery),
    responses((status = 200, body = [SessionSummary], description = "the next page, if any, in the `Link` header"),
        (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(super) async fn list_sessions(
    State(app): State<Arc<App>>,
    principal: Principal,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("limit must be between 1 and 1000"));
    }
    match query.state.as_deref().unwrap_or("live") {
        "live" => {
            let now = app.clock.now().wall;
            let cards = app.registry.cards(Some(&principal.tenant), None);
            let visible = cards.iter().filter(|c| principal.scope.allows(&c.placement)).take(limit as usize);
            Ok(Json(visible.map(|c| c.at(now)).collect::<Vec<_>>()).into_response())
        }
        "ended" => {
            let sort = match query.sort.as_deref() {
                None => Sort::NewestFirst,
                Some(text) => Sort::parse(text).ok_or_else(|| {
                    Problem::bad_request(format!(
                        "sort: {text:?} is not -started_at, started_at, -duration or duration"
                    ))
                })?,
            };
            let mut filter = query.filters.filter(sort, limit)?;
            filter.after = match query.cursor.as_deref() {
                None => None,
                Some(text) => {
                    Some(Cursor::decode(text).ok_or_else(|| Problem::bad_request("cursor: not one this server gave"))?)
                }
            };
            let (mut page, next) =
                app.store.history(&principal.tenant, &principal.scope, &filter).await.map_err(Problem::internal)?;
            for row in &mut page {
                row.card.placement = app.sessions.directory.named(&principal.tenant, &row.card.placement);
            }
            let mut response = Json(page).into_response();
            if let Some(next) = next {
                let link = format!("<{}>; rel=\"next\"", next_page(&query, &next));
                if let Ok(value) = link.parse() {
                    response.headers_mut().insert(header::LINK, value);
                }
            }
            Ok(response)
        }
        other => Err(Problem::bad_request(format!("state must be live or ended, not {other:?}"))),
    }
}

/// The address of the page after `next`: the same parameters with the new cursor.
fn next_page(query: &ListQuery, next: &Cursor) -> String {
    let f = &query.filters;
    let pairs = [
        ("state", Some("ended".to_string())),
        ("limit", query.limit.map(|l| l.to_string())),
        ("sort", query.sort.clone()),
        ("since", f.since.clone()),
        ("until", f.until.clone()),
        ("agent", f.agent.clone()),
        ("desk", f.desk.clone()),
        ("department", f.department.clone()),
        ("channel", f.channel.clone()),
        ("category", f.category.clone()),
        ("outcome", f.outcome.clone()),
        ("scores", f.scores.clone()),
        ("tags", f.tags.clone()),
        ("checklist", f.checklist.clone()),
        ("q", f.q.clone()),
        ("cursor", Some(next.encode())),
    ];
    let mut url = reqwest::Url::parse("http://hark/v1/sessions").expect("a valid base URL");
    url.query_pairs_mut().extend_pairs(pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))));
    format!("/v1/sessions?{}", url.query().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::parse_score_range;

    #[test]
    fn score_ranges() {
        assert_eq!(parse_score_range("talk_ratio:5-10"), Some(("talk_ratio".into(), 5, 10)));
        assert_eq!(parse_score_range("silence:7"), Some(("silence".into(), 7, 7)));
        for bad in ["talk_ratio:0-5", "x:6-5", "x:5-11", ":1-2", "x", "x:a-b"] {
            assert_eq!(parse_score_range(bad), None, "{bad}");
        }
    }
}
