//! `GET /v1/sessions/export.csv`: the tenant's ended sessions as CSV with the columns the caller
//! chooses, streamed row by row from the database (memory stays bounded whatever the count) and
//! safe to open in Excel: UTF-8 with a byte-order mark (so Hebrew and Arabic show), and a cell
//! that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage
//! return) is prefixed with `'` (OWASP's advice against CSV injection).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::error::{Problem, Query};
use crate::server::App;
use crate::store::{SessionSummary, Sort};

use super::auth::Principal;
use super::history::HistoryQuery;

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/v1/sessions/export.csv", get(export))
}

/// Every column an export may have, in the default order.
const COLUMNS: [&str; 25] = [
    "session_id",
    "channel",
    "site",
    "started_at",
    "ended_at",
    "duration_secs",
    "end_reason",
    "message_count",
    "last_message",
    "country",
    "device",
    "holder",
    "sentiment",
    "tags",
    "priority",
    "assignee",
    "team",
    "sla_state",
    "agent",
    "extension",
    "desk",
    "department",
    "category",
    "outcome",
    "scores",
];

/// Rows written into one chunk of the response.
const ROWS_PER_CHUNK: usize = 256;

#[derive(Deserialize, utoipa::IntoParams)]
pub(super) struct ExportQuery {
    /// Comma-separated columns, in order (default: all): session_id, channel, site, started_at,
    /// ended_at, duration_secs, end_reason, message_count, last_message, country, device, holder,
    /// sentiment, tags, priority, assignee, team, sla_state, agent, extension, desk, department,
    /// category, outcome, scores.
    columns: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    filters: HistoryQuery,
}

/// The ended sessions of the caller's tenant and data scope matching the history filters, as
/// CSV, oldest first.
#[utoipa::path(get, path = "/v1/sessions/export.csv", params(ExportQuery, HistoryQuery),
    responses((status = 200, content_type = "text/csv"), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(super) async fn export(
    State(app): State<Arc<App>>,
    principal: Principal,
    Query(query): Query<ExportQuery>,
) -> Result<Response, Problem> {
    let columns: Vec<&'static str> = match query.columns.as_deref() {
        None => COLUMNS.to_vec(),
        Some(list) => list
            .split(',')
            .map(|c| {
                COLUMNS.iter().copied().find(|known| *known == c.trim()).ok_or_else(|| {
                    Problem::bad_request(format!("columns: unknown column {c:?} (known: {})", COLUMNS.join(", ")))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let filter = query.filters.filter(Sort::OldestFirst, 0)?;
    let rows = app.store.history_stream(&principal.tenant, &principal.scope, filter);
    let (directory, tenant) = (app.sessions.directory.clone(), principal.tenant.clone());
    let mut header = b"\xEF\xBB\xBF".to_vec();
    header.extend(csv_line(columns.iter().map(|c| c.to_string())));
    // State: the bytes to start the next chunk with (the header, once), the columns, the rows;
    // `None` once the export is over.
    let body = futures_util::stream::unfold(Some((header, columns, rows)), move |state| {
        let (directory, tenant) = (directory.clone(), tenant.clone());
        async move {
            let (mut chunk, columns, mut rows) = state?;
            for _ in 0..ROWS_PER_CHUNK {
                match rows.recv().await {
                    Some(Ok(mut row)) => {
                        row.card.placement = directory.named(&tenant, &row.card.placement);
                        chunk.extend(csv_line(columns.iter().map(|c| cell(&row, c))))
                    }
                    Some(Err(error)) => {
                        tracing::error!(%error, "session export failed");
                        return Some((Err(std::io::Error::other("export failed")), None));
                    }
                    None if chunk.is_empty() => return None,
                    None => return Some((Ok(Bytes::from(chunk)), None)),
                }
            }
            Some((Ok(Bytes::from(chunk)), Some((Vec::new(), columns, rows))))
        }
    });
    let disposition = "attachment; filename=\"sessions.csv\"";
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(body),
    )
        .into_response())
}

/// One CSV record (RFC 4180 quoting by the `csv` crate), each cell made formula-safe.
fn csv_line(cells: impl Iterator<Item = String>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let record: Vec<String> = cells.map(|c| formula_safe(&c)).collect();
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(&record);
    writer.into_inner().unwrap_or_default()
}

fn formula_safe(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn cell(row: &SessionSummary, column: &str) -> String {
    let (card, placement) = (&row.card, &row.card.placement);
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    match column {
        "session_id" => card.session_id.to_string(),
        "channel" => card.channel.as_str().to_string(),
        "site" => card.site.clone(),
        "started_at" => rfc3339(card.started_at),
        "ended_at" => card.ended_at.map(rfc3339).unwrap_or_default(),
        "duration_secs" => row.duration_ms.map(|ms| ms / 1000).unwrap_or(card.duration_secs).to_string(),
        "end_reason" => card.end_reason.map(|r| r.as_str().to_string()).unwrap_or_default(),
        "message_count" => card.message_count.to_string(),
        "last_message" => opt(&card.last_message),
        "country" => opt(&card.country),
        "device" => card.device.clone(),
        "holder" => match &card.holder {
            crate::session::Holder::Bot => "bot".into(),
            crate::session::Holder::Agent { name } => name.clone(),
            crate::session::Holder::Waiting { queue } => format!("waiting: {queue}"),
        },
        "sentiment" => card.sentiment.map(|s| format!("{s:.2}")).unwrap_or_default(),
        "tags" => card.tags.join("; "),
        "priority" => opt(&card.priority),
        "assignee" => opt(&card.assignee),
        "team" => opt(&card.team),
        "sla_state" => card.sla.as_ref().map(|s| s.state.clone()).unwrap_or_default(),
        "agent" => opt(&placement.agent_name),
        "extension" => opt(&placement.extension),
        "desk" => opt(&placement.desk_name),
        "department" => opt(&placement.department_name),
        "category" => opt(&row.category),
        "outcome" => opt(&row.outcome),
        "scores" => row.scores.iter().map(|s| format!("{}={}", s.label, s.score)).collect::<Vec<_>>().join("; "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_quotes_escaped() {
        let line = csv_line(["=HYPERLINK(\"x\")", "-2", "plain", "a,b", "שלום"].into_iter().map(String::from));
        assert_eq!(String::from_utf8(line).unwrap(), "\"'=HYPERLINK(\"\"x\"\")\",'-2,plain,\"a,b\",שלום\r\n");
    }
}
