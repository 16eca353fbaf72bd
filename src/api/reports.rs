//! `GET /v1/reports`, `GET /v1/reports/agents` and `GET /v1/usage`: what managers compare —
//! agents and periods — from the store's roll-ups of finished, analysed sessions, in the
//! caller's tenant and scope, with days and hours counted in `reports.timezone`. This module
//! turns query parameters into a [`Period`] (a bad one is a 400 naming it) and adds what only
//! the server knows: the live sessions and the quota.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use jiff::civil::{Date, DateTime};
use serde::{Deserialize, Serialize};

use crate::error::{InvalidParam, Problem, Query};
use crate::org::Permission;
use crate::server::App;
use crate::store::{local_time, Against, Comparison, Period, Report, Usage};

use super::auth::Principal;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/reports", get(report))
        .route("/v1/reports/agents", get(compare_agents))
        .route("/v1/usage", get(usage))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportQuery {
    /// `realtime` (today so far), `day`, `month` or `year`.
    period: Option<String>,
    /// `YYYY-MM-DD` for a day, `YYYY-MM` for a month, `YYYY` for a year; the current one when
    /// left out. Not with `realtime`.
    date: Option<String>,
}

/// A report with the time zone it counts in and, for `realtime`, the sessions live now.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ReportAnswer {
    /// The IANA time zone of the days and hours (`reports.timezone`).
    timezone: String,
    #[serde(flatten)]
    report: Report,
    /// `realtime` only: the sessions in the caller's scope live now.
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<u64>,
}

/// Tiles (with the comparable period's values and the change), the agents table and the series
/// of a period, over the sessions the caller's scope allows.
#[utoipa::path(get, path = "/v1/reports", params(ReportQuery),
    responses((status = 200, body = ReportAnswer), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn report(
    State(app): State<Arc<App>>,
    principal: Principal,
    Query(query): Query<ReportQuery>,
) -> Result<Json<ReportAnswer>, Problem> {
    principal.require(Permission::Reports)?;
    let zone = &app.config.reports.timezone;
    let period = period(query.period.as_deref(), query.date.as_deref(), local_time(app.clock.now().wall, zone))?;
    let mut report = app.store.report(&principal.tenant, &principal.scope, &period).await.map_err(Problem::internal)?;
    let org = app.sessions.directory.rows(&principal.tenant);
    for row in &mut report.agents {
        row.agent_name =
            row.agent_id.as_ref().and_then(|id| org.agents.iter().find(|a| &a.id == id)).map(|a| a.name.clone());
    }
    let live = matches!(period, Period::Realtime { .. }).then(|| {
        let cards = app.registry.cards(Some(&principal.tenant), None);
        cards.iter().filter(|card| principal.scope.allows(&card.placement)).count() as u64
    });
    Ok(Json(ReportAnswer { timezone: zone.iana_name().unwrap_or_default().to_string(), report, live }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct CompareQuery {
    /// `YYYY-MM`; the current month when left out.
    month: Option<String>,
    /// The agent's id.
    agent: Option<String>,
    /// Another agent's id, or `desk` / `department`: the per-agent average of the agent's desk
    /// or department (the one they took most calls in that month).
    against: Option<String>,
}

/// An agent against another agent or their desk's or department's average agent, for a month:
/// the same figures and the daily series of each side.
#[utoipa::path(get, path = "/v1/reports/agents", params(CompareQuery),
    responses((status = 200, body = Comparison), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub(super) async fn compare_agents(
    State(app): State<Arc<App>>,
    principal: Principal,
    Query(query): Query<CompareQuery>,
) -> Result<Json<Comparison>, Problem> {
    principal.require(Permission::Reports)?;
    let month = match query.month.as_deref() {
        Some(text) => parse_date(text, 2).map_err(|reason| bad("month", reason))?,
        None => local_time(app.clock.now().wall, &app.config.reports.timezone).date(),
    };
    let agent = required("agent", query.agent.as_deref())?;
    let against = match required("against", query.against.as_deref())? {
        kind @ ("desk" | "department") => {
            let placed = app.sessions.directory.by_agent(&principal.tenant, agent);
            match kind {
                "desk" => Against::Desk(placed.and_then(|p| p.desk_id)),
                _ => Against::Department(placed.and_then(|p| p.department_id)),
            }
        }
        other => Against::Agent(other.to_string()),
    };
    match app.store.compare_agents(&principal.tenant, &principal.scope, month, agent, &against).await {
        Ok(Some(mut comparison)) => {
            let org = app.sessions.directory.rows(&principal.tenant);
            for side in [&mut comparison.agent, &mut comparison.against] {
                side.name = match side.kind {
                    "agent" => org.agents.iter().find(|a| a.id == side.id).map(|a| a.name.clone()),
                    "desk" => org.desks.iter().find(|d| d.id == side.id).map(|d| d.name.clone()),
                    _ => org.departments.iter().find(|d| d.id == side.id).map(|d| d.name.clone()),
                };
            }
            Ok(Json(comparison))
        }
        Ok(None) => {
            let what = if matches!(against, Against::Desk(_)) { "desk" } else { "department" };
            let month = month.strftime("%Y-%m");
            Err(Problem::not_found(format!("agent {agent:?} took no calls with a {what} in {month}")))
        }
        Err(error) => Err(Problem::internal(error)),
    }
}

/// Calls analysed this month (in `reports.timezone`), the monthly quota and what remains (null
/// when unlimited), and the last 12 months.
#[utoipa::path(get, path = "/v1/usage",
    responses((status = 200, body = Usage), (status = 403, body = Problem)))]
pub(super) async fn usage(State(app): State<Arc<App>>, principal: Principal) -> Result<Json<Usage>, Problem> {
    principal.require(Permission::Usage)?;
    let month = local_time(app.clock.now().wall, &app.config.reports.timezone).date();
    let quota = app.config.usage.monthly_quota;
    app.store.usage(&principal.tenant, month, quota).await.map(Json).map_err(Problem::internal)
}

/// A 400 naming the parameter.
fn bad(name: &str, reason: impl Into<String>) -> Problem {
    Problem::invalid(vec![InvalidParam { name: name.into(), reason: reason.into() }])
}

fn required<'a>(name: &str, value: Option<&'a str>) -> Result<&'a str, Problem> {
    value.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| bad(name, "required"))
}

/// The period of `kind` and `date` (the current one when `None`) at local time `now`.
fn period(kind: Option<&str>, date: Option<&str>, now: DateTime) -> Result<Period, Problem> {
    let date_or_today = |parts| date.map_or(Ok(now.date()), |d| parse_date(d, parts).map_err(|r| bad("date", r)));
    match kind {
        None => Err(bad("period", "required: realtime, day, month or year")),
        Some("realtime") if date.is_some() => Err(bad("date", "realtime is today so far; leave date out")),
        Some("realtime") => Ok(Period::realtime(now)),
        Some("day") => date_or_today(3).map(Period::Day),
        Some("month") => date_or_today(2).map(Period::Month),
        Some("year") => date_or_today(1).map(Period::Year),
        Some(other) => Err(bad("period", format!("{other:?} is not realtime, day, month or year"))),
    }
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (`parts` fields) as the first day it names.
fn parse_date(text: &str, parts: usize) -> Result<Date, String> {
    let form = ["YYYY", "YYYY-MM", "YYYY-MM-DD"][parts.clamp(1, 3) - 1];
    let fields: Vec<&str> = text.split('-').collect();
    let digits = |(field, width): (&&str, usize)| field.len() == width && field.bytes().all(|b| b.is_ascii_digit());
    if fields.len() != parts || !fields.iter().zip([4, 2, 2]).all(digits) {
        return Err(format!("{text:?} is not a date of the form {form}"));
    }
    // At most four digits each: they fit.
    let number = |i: usize| fields.get(i).map_or(1, |f| f.parse::<i16>().unwrap_or(0));
    let year = number(0);
    if year < 1970 {
        return Err(format!("{text:?} is before 1970"));
    }
    Date::new(year, number(1) as i8, number(2) as i8).map_err(|_| format!("{text:?} is not a day of the calendar"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn detail(problem: Problem) -> String {
        assert_eq!(problem.status, 400);
        problem.detail
    }

    #[test]
    fn dates_are_years_months_or_days() {
        assert_eq!(parse_date("2026", 1), Ok(date(2026, 1, 1)));
        assert_eq!(parse_date("2026-02", 2), Ok(date(2026, 2, 1)));
        assert_eq!(parse_date("2028-02-29", 3), Ok(date(2028, 2, 29)));
        assert!(parse_date("2026-02-29", 3).unwrap_err().contains("not a day of the calendar"));
        assert!(parse_date("2026-13", 2).is_err());
        assert!(parse_date("2026-00", 2).is_err());
        assert!(parse_date("2026-1", 2).unwrap_err().contains("YYYY-MM"));
        assert!(parse_date("2026-11-29", 2).is_err());
        assert!(parse_date("+026-11", 2).is_err());
        assert!(parse_date("1969", 1).unwrap_err().contains("before 1970"));
        assert!(parse_date("", 1).is_err());
    }

    #[test]
    fn periods_default_to_the_current_one_and_name_a_bad_parameter() {
        let now = date(2026, 11, 29).at(14, 5, 0, 0);
        assert_eq!(period(Some("realtime"), None, now).unwrap(), Period::Realtime { date: now.date(), hour: 14 });
        assert_eq!(period(Some("day"), None, now).unwrap(), Period::Day(now.date()));
        assert_eq!(period(Some("day"), Some("2026-10-03"), now).unwrap(), Period::Day(date(2026, 10, 3)));
        assert_eq!(period(Some("month"), Some("2026-10"), now).unwrap(), Period::Month(date(2026, 10, 1)));
        assert_eq!(period(Some("year"), None, now).unwrap(), Period::Year(now.date()));
        assert!(detail(period(None, None, now).unwrap_err()).starts_with("period: required"));
        assert!(detail(period(Some("week"), None, now).unwrap_err()).starts_with("period: \"week\""));
        assert!(detail(period(Some("realtime"), Some("2026-11-29"), now).unwrap_err()).starts_with("date:"));
        assert!(detail(period(Some("month"), Some("2026-11-29"), now).unwrap_err()).starts_with("date:"));
        assert!(detail(required("agent", Some(" ")).unwrap_err()).starts_with("agent: required"));
    }
}
