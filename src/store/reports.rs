//! Reports and usage over finished sessions, read from roll-ups instead of the sessions. The
//! finalize stage adds each finished session once with [`record_call`], inside the transaction
//! that stores its analysis: an upsert into an hourly and a daily row keyed by tenant, local day
//! (and hour) in the reports time zone, agent, desk, department and channel, and one per score
//! label. A report then sums at most one row per hour (or day) and placement whatever the number
//! of calls — a month report reads only the daily rows of two months.
//!
//! The shell here only runs the queries; the period arithmetic ([`Period`]), the tiles with their
//! change against the comparable period, the agents table, the zero-filled series, the agent
//! comparison and the usage figures are pure functions over the summed rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row, Transaction};
use time::OffsetDateTime;

use crate::org::Scope;

use super::{Store, StoreError};

/// What one finished session adds to the reports.
#[derive(Debug, Clone)]
pub struct CallFacts {
    pub tenant: String,
    pub session_id: crate::session::SessionId,
    pub channel: crate::session::Channel,
    pub started_at: time::OffsetDateTime,
    pub duration_ms: i64,
    pub placement: crate::org::Placement, // agent_id / desk_id / department_id may be None
    pub scores: Vec<(String, u8)>,        // label, 1..=10; empty when not analysed
    pub alerts: u32,                      // alerts raised during the session
    pub analyzed: bool,                   // false when skipped (too short, over quota)
}

/// Adds a finished session to the roll-ups of its local day and hour in `zone`. Run it once per
/// session, in the transaction that stores the session's analysis: the upserts add, so a second
/// call counts the session twice. A score outside 1..=10 is an error (nothing is added); a
/// negative duration (a clock stepped back) counts as 0.
pub async fn record_call(tx: &mut Transaction<'_, Any>, facts: &CallFacts, zone: &TimeZone) -> Result<(), StoreError> {
    let scores = score_sums(&facts.scores)
        .map_err(|reason| StoreError::Value(format!("session {}: {reason}", facts.session_id)))?;
    let local = local_time(facts.started_at, zone);
    let placement = &facts.placement;
    let key = Key {
        tenant: &facts.tenant,
        day: day_key(local.date()),
        hour: i64::from(local.hour()),
        agent: placement.agent_id.as_deref().unwrap_or(""),
        desk: placement.desk_id.as_deref().unwrap_or(""),
        department: placement.department_id.as_deref().unwrap_or(""),
        channel: facts.channel.as_str(),
    };
    for rollup in [HOURLY, DAILY] {
        let (key_columns, width) = rollup.key();
        let (t, values) = (rollup.calls, placeholders(1, width + 4));
        let sql = format!(
            "INSERT INTO {t} ({key_columns}, calls, analyzed, duration_ms, alerts) VALUES {values} \
             ON CONFLICT ({key_columns}) DO UPDATE SET calls = {t}.calls + excluded.calls, \
             analyzed = {t}.analyzed + excluded.analyzed, duration_ms = {t}.duration_ms + excluded.duration_ms, \
             alerts = {t}.alerts + excluded.alerts"
        );
        rollup
            .bind_key(sqlx::query(&sql), &key)
            .bind(1_i64)
            .bind(i64::from(facts.analyzed))
            .bind(facts.duration_ms.max(0))
            .bind(i64::from(facts.alerts))
            .execute(&mut **tx)
            .await?;
        if scores.is_empty() {
            continue;
        }
        let t = rollup.scores;
        let values: Vec<String> = (0..scores.len()).map(|i| placeholders(1 + i * (width + 3), width + 3)).collect();
        let sql = format!(
            "INSERT INTO {t} ({key_columns}, label, score_sum, score_count) VALUES {} \
             ON CONFLICT ({key_columns}, label) DO UPDATE SET score_sum = {t}.score_sum + excluded.score_sum, \
             score_count = {t}.score_count + excluded.score_count",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (label, (sum, count)) in &scores {
            query = rollup.bind_key(query, &key).bind(*label).bind(*sum).bind(*count);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The sum and number of each label's scores (a label twice counts twice), or what is wrong.
fn score_sums(scores: &[(String, u8)]) -> Result<BTreeMap<&str, (i64, i64)>, String> {
    let mut sums = BTreeMap::new();
    for (label, score) in scores {
        if !(1..=10).contains(score) {
            return Err(format!("score {label:?} is {score}, not within 1..=10"));
        }
        let (sum, count) = sums.entry(label.as_str()).or_insert((0, 0));
        *sum += i64::from(*score);
        *count += 1;
    }
    Ok(sums)
}

/// `$first, …` as one parenthesized row of `n` placeholders.
fn placeholders(first: usize, n: usize) -> String {
    let list: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
    format!("({})", list.join(", "))
}

/// The key of a session's roll-up rows ('' for a placement it lacks).
struct Key<'a> {
    tenant: &'a str,
    day: i64,
    hour: i64,
    agent: &'a str,
    desk: &'a str,
    department: &'a str,
    channel: &'static str,
}

/// One pair of roll-up tables: the counts and the score sums.
#[derive(Clone, Copy)]
struct Rollup {
    calls: &'static str,
    scores: &'static str,
    hourly: bool,
}

const HOURLY: Rollup = Rollup { calls: "report_hourly", scores: "report_hourly_scores", hourly: true };
const DAILY: Rollup = Rollup { calls: "report_daily", scores: "report_daily_scores", hourly: false };

impl Rollup {
    /// The key columns and how many there are.
    fn key(self) -> (&'static str, usize) {
        if self.hourly {
            ("tenant, local_day, local_hour, agent_id, desk_id, department_id, channel", 7)
        } else {
            ("tenant, local_day, agent_id, desk_id, department_id, channel", 6)
        }
    }

    fn bind_key<'q>(self, query: Query<'q, Any, AnyArguments<'q>>, key: &Key<'q>) -> Query<'q, Any, AnyArguments<'q>> {
        let query = query.bind(key.tenant).bind(key.day);
        let query = if self.hourly { query.bind(key.hour) } else { query };
        query.bind(key.agent).bind(key.desk).bind(key.department).bind(key.channel)
    }
}

/// The local date and time of `t` in `zone`.
pub fn local_time(t: OffsetDateTime, zone: &TimeZone) -> DateTime {
    zone.to_datetime(Timestamp::from_nanosecond(t.unix_timestamp_nanos()).unwrap_or(Timestamp::MAX))
}

/// A local day as the roll-ups key it: YYYYMMDD, so days order as numbers and a month's days
/// are `YYYYMM00 + d` (its month is the key / 100).
fn day_key(date: Date) -> i64 {
    i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day())
}

/// The calls analysed left under a monthly quota: `None` when unlimited (0), else what is left
/// (0 when over). The finalize stage analyses a call while this is not `Some(0)`.
pub fn quota_left(quota: u64, analyzed: u64) -> Option<u64> {
    (quota > 0).then(|| quota.saturating_sub(analyzed))
}

/// What a report covers, in the reports time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// `date` from midnight through the whole hour `hour` (today so far: the hour now included,
    /// since the roll-ups count whole hours).
    Realtime {
        date: Date,
        hour: i8,
    },
    Day(Date),
    /// The month of this date.
    Month(Date),
    /// The year of this date.
    Year(Date),
}

/// How a period's series is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    Hour,
    Day,
    Month,
}

impl Period {
    /// Today so far, at local time `now`.
    pub fn realtime(now: DateTime) -> Period {
        Period::Realtime { date: now.date(), hour: now.hour() }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Period::Realtime { .. } => "realtime",
            Period::Day(_) => "day",
            Period::Month(_) => "month",
            Period::Year(_) => "year",
        }
    }

    /// The comparable period: a day (and today so far, up to the same hour) against the same
    /// weekday a week before, a month against the month before, a year against the year before.
    pub fn comparison(&self) -> Period {
        match *self {
            Period::Realtime { date, hour } => Period::Realtime { date: date.saturating_sub(7.days()), hour },
            Period::Day(date) => Period::Day(date.saturating_sub(7.days())),
            Period::Month(date) => Period::Month(date.first_of_month().saturating_sub(1.month())),
            Period::Year(date) => Period::Year(date.first_of_year().saturating_sub(1.year())),
        }
    }

    /// The first and last local day it covers.
    fn days(&self) -> (Date, Date) {
        match *self {
            Period::Realtime { date, .. } | Period::Day(date) => (date, date),
            Period::Month(date) => (date.first_of_month(), date.last_of_month()),
            Period::Year(date) => (date.first_of_year(), date.last_of_year()),
        }
    }

    /// The last hour it covers on each day.
    fn last_hour(&self) -> i8 {
        match *self {
            Period::Realtime { hour, .. } => hour,
            _ => 23,
        }
    }

    fn grain(&self) -> Grain {
        match self {
            Period::Realtime { .. } | Period::Day(_) => Grain::Hour,
            Period::Month(_) => Grain::Day,
            Period::Year(_) => Grain::Month,
        }
    }

    /// The series' bucket keys, in order: `YYYYMMDDHH`, `YYYYMMDD` or `YYYYMM`.
    fn buckets(&self) -> Vec<i64> {
        let (first, last) = self.days();
        match self.grain() {
            Grain::Hour => (0..=self.last_hour()).map(|h| day_key(first) * 100 + i64::from(h)).collect(),
            Grain::Day => first.series(1.day()).take_while(|d| *d <= last).map(day_key).collect(),
            Grain::Month => (1..=12).map(|m| i64::from(first.year()) * 100 + m).collect(),
        }
    }

    /// The period's name and local bounds.
    fn window(&self) -> Window {
        let (first, last) = self.days();
        let date = match self {
            Period::Realtime { .. } | Period::Day(_) => first.strftime("%Y-%m-%d"),
            Period::Month(_) => first.strftime("%Y-%m"),
            Period::Year(_) => first.strftime("%Y"),
        };
        Window {
            date: date.to_string(),
            from: first.at(0, 0, 0, 0).to_string(),
            to: last.at(self.last_hour(), 0, 0, 0).saturating_add(1.hour()).to_string(),
        }
    }
}

/// The local time a bucket key names: `2026-11-29T14:00`, `2026-11-29` or `2026-11`.
fn bucket_label(grain: Grain, key: i64) -> String {
    match grain {
        Grain::Hour => {
            let (day, hour) = (key / 100, key % 100);
            format!("{:04}-{:02}-{:02}T{hour:02}:00", day / 10_000, day / 100 % 100, day % 100)
        }
        Grain::Day => format!("{:04}-{:02}-{:02}", key / 10_000, key / 100 % 100, key % 100),
        Grain::Month => format!("{:04}-{:02}", key / 100, key % 100),
    }
}

/// A period's name (`2026-11-29`, `2026-11`, `2026`) and its local bounds, `to` exclusive.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Window {
    pub date: String,
    pub from: String,
    pub to: String,
}

/// The figures of a set of calls. Counts are `u64` for calls, `f64` for a per-agent average.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Metrics<N> {
    pub calls: N,
    /// Calls analysed (not skipped as too short or over the quota).
    pub analyzed: N,
    /// Mean call duration in ms; null without calls.
    pub average_duration_ms: Option<f64>,
    /// Alerts raised during the calls.
    pub alerts: N,
    /// The mean of each score label (1–10) over the calls that have it.
    pub scores: BTreeMap<String, f64>,
}

/// One figure of the period, the comparable period's, and the change in percent (null when
/// the comparable value is 0 or missing).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Tile<T> {
    pub value: T,
    pub previous: T,
    pub change_pct: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Tiles {
    pub calls: Tile<u64>,
    pub analyzed: Tile<u64>,
    pub average_duration_ms: Tile<Option<f64>>,
    pub alerts: Tile<u64>,
    /// Each score label seen in either period.
    pub scores: BTreeMap<String, Tile<Option<f64>>>,
}

/// One row of the agents table; `agent_id` null gathers calls without an agent.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentRow {
    pub agent_id: Option<String>,
    /// Filled from the organization by the API (a deactivated agent keeps theirs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    #[serde(flatten)]
    pub metrics: Metrics<u64>,
}

/// One bucket of a series, named by its local start.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Bucket<N> {
    pub start: String,
    #[serde(flatten)]
    pub metrics: Metrics<N>,
}

/// A report over one period in one scope.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// `realtime`, `day`, `month` or `year`.
    pub period: &'static str,
    pub window: Window,
    pub compared_with: Window,
    pub tiles: Tiles,
    /// Most calls first.
    pub agents: Vec<AgentRow>,
    /// Hourly (realtime, day), daily (month) or monthly (year), zero-filled.
    pub series: Vec<Bucket<u64>>,
}

/// What an agent is compared against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Against {
    Agent(String),
    /// The per-agent average of the agent's desk: this one, or (an agent the organization no
    /// longer knows) the desk they took most calls with that month.
    Desk(Option<String>),
    /// The same for the agent's department.
    Department(Option<String>),
}

/// One side of an agent comparison.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Side {
    /// `agent`, `desk` or `department`.
    pub kind: &'static str,
    pub id: String,
    /// The agent's, desk's or department's name, filled from the organization by the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The agents averaged over (1 for an agent).
    pub agents: u64,
    /// Per agent: counts divided by `agents`, averages over the side's calls.
    #[serde(flatten)]
    pub metrics: Metrics<f64>,
    /// Daily, zero-filled, per agent as above.
    pub series: Vec<Bucket<f64>>,
}

/// An agent against another agent or their desk's or department's average agent, for a month.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    pub window: Window,
    pub agent: Side,
    pub against: Side,
}

/// Calls analysed in one month.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MonthUsage {
    /// `YYYY-MM`.
    pub month: String,
    pub analyzed: u64,
}

/// A tenant's analysed calls against its monthly quota.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// The current month, `YYYY-MM`.
    pub month: String,
    pub analyzed: u64,
    /// Null when unlimited.
    pub quota: Option<u64>,
    /// Null when unlimited; 0 when the quota is used up.
    pub remaining: Option<u64>,
    /// The last 12 months, oldest first, the current one last.
    pub history: Vec<MonthUsage>,
}

/// Summed roll-up rows.
#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    calls: u64,
    analyzed: u64,
    duration_ms: u64,
    alerts: u64,
    /// Per label: the sum of the scores and their number.
    scores: BTreeMap<String, (u64, u64)>,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.calls += other.calls;
        self.analyzed += other.analyzed;
        self.duration_ms += other.duration_ms;
        self.alerts += other.alerts;
        for (label, (sum, count)) in &other.scores {
            let entry = self.scores.entry(label.clone()).or_default();
            entry.0 += sum;
            entry.1 += count;
        }
    }

    fn sum<'a>(all: impl IntoIterator<Item = &'a Totals>) -> Totals {
        let mut totals = Totals::default();
        all.into_iter().for_each(|t| totals.add(t));
        totals
    }

    fn average_duration(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.duration_ms as f64 / self.calls as f64)
    }

    fn score_averages(&self) -> BTreeMap<String, f64> {
        let averages = self.scores.iter().filter(|(_, (_, count))| *count > 0);
        averages.map(|(label, (sum, count))| (label.clone(), *sum as f64 / *count as f64)).collect()
    }

    fn metrics(&self) -> Metrics<u64> {
        Metrics {
            calls: self.calls,
            analyzed: self.analyzed,
            average_duration_ms: self.average_duration(),
            alerts: self.alerts,
            scores: self.score_averages(),
        }
    }

    /// The average agent's figures when `agents` share these calls.
    fn per_agent(&self, agents: u64) -> Metrics<f64> {
        let n = agents.max(1) as f64;
        Metrics {
            calls: self.calls as f64 / n,
            analyzed: self.analyzed as f64 / n,
            average_duration_ms: self.average_duration(),
            alerts: self.alerts as f64 / n,
            scores: self.score_averages(),
        }
    }
}

/// The change from `previous` to `value` in percent; `None` when there is nothing to compare.
fn change_pct(value: Option<f64>, previous: Option<f64>) -> Option<f64> {
    match (value, previous) {
        (Some(value), Some(previous)) if previous != 0.0 => Some((value - previous) / previous * 100.0),
        _ => None,
    }
}

fn count_tile(value: u64, previous: u64) -> Tile<u64> {
    Tile { value, previous, change_pct: change_pct(Some(value as f64), Some(previous as f64)) }
}

fn average_tile(value: Option<f64>, previous: Option<f64>) -> Tile<Option<f64>> {
    Tile { value, previous, change_pct: change_pct(value, previous) }
}

fn tiles(now: &Totals, before: &Totals) -> Tiles {
    let (now_scores, before_scores) = (now.score_averages(), before.score_averages());
    let labels: BTreeSet<&String> = now_scores.keys().chain(before_scores.keys()).collect();
    Tiles {
        calls: count_tile(now.calls, before.calls),
        analyzed: count_tile(now.analyzed, before.analyzed),
        average_duration_ms: average_tile(now.average_duration(), before.average_duration()),
        alerts: count_tile(now.alerts, before.alerts),
        scores: labels
            .into_iter()
            .map(|l| (l.clone(), average_tile(now_scores.get(l).copied(), before_scores.get(l).copied())))
            .collect(),
    }
}

/// The zero-filled series of `period` from sums per bucket.
fn series<N>(
    period: &Period,
    buckets: &HashMap<i64, Totals>,
    metrics: impl Fn(&Totals) -> Metrics<N>,
) -> Vec<Bucket<N>> {
    let empty = Totals::default();
    let grain = period.grain();
    let bucket =
        |key| Bucket { start: bucket_label(grain, key), metrics: metrics(buckets.get(&key).unwrap_or(&empty)) };
    period.buckets().into_iter().map(bucket).collect()
}

/// The report of `period` from its sums per bucket, those of its comparable period, and its
/// sums per agent ('' for calls without one).
fn build_report(
    period: &Period,
    current: &HashMap<i64, Totals>,
    previous: &HashMap<i64, Totals>,
    agents: HashMap<String, Totals>,
) -> Report {
    let mut agents: Vec<AgentRow> = agents
        .into_iter()
        .map(|(id, totals)| AgentRow {
            agent_id: (!id.is_empty()).then_some(id),
            agent_name: None,
            metrics: totals.metrics(),
        })
        .collect();
    agents.sort_by(|a, b| b.metrics.calls.cmp(&a.metrics.calls).then_with(|| a.agent_id.cmp(&b.agent_id)));
    Report {
        period: period.kind(),
        window: period.window(),
        compared_with: period.comparison().window(),
        tiles: tiles(&Totals::sum(current.values()), &Totals::sum(previous.values())),
        agents,
        series: series(period, current, Totals::metrics),
    }
}

/// The desk (or department) with the most calls among sums per desk ('' for none); the
/// smallest id of a tie.
fn busiest(places: &HashMap<String, Totals>) -> Option<String> {
    let placed = places.iter().filter(|(id, _)| !id.is_empty());
    placed.max_by(|a, b| a.1.calls.cmp(&b.1.calls).then_with(|| b.0.cmp(a.0))).map(|(id, _)| id.clone())
}

/// One side of a comparison over `period` from its sums per day, shared by `agents` agents.
fn side(kind: &'static str, id: &str, period: &Period, days: &HashMap<i64, Totals>, agents: u64) -> Side {
    Side {
        kind,
        id: id.to_string(),
        name: None,
        agents,
        metrics: Totals::sum(days.values()).per_agent(agents),
        series: series(period, days, |t| t.per_agent(agents)),
    }
}

/// The usage figures of the month of `month` from analysed calls per month key (`YYYYMM`).
fn usage(month: Date, quota: u64, analyzed: &BTreeMap<i64, u64>) -> Usage {
    let this_month = month.first_of_month();
    let history: Vec<MonthUsage> = (0..12)
        .rev()
        .map(|back| this_month.saturating_sub(back.months()))
        .map(|m| MonthUsage {
            month: m.strftime("%Y-%m").to_string(),
            analyzed: analyzed.get(&(day_key(m) / 100)).copied().unwrap_or(0),
        })
        .collect();
    let current = history.last().map_or(0, |m| m.analyzed);
    Usage {
        month: this_month.strftime("%Y-%m").to_string(),
        analyzed: current,
        quota: (quota > 0).then_some(quota),
        remaining: quota_left(quota, current),
        history,
    }
}

fn count(row: &AnyRow, column: &str) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| StoreError::Value(format!("{column} {value}")))
}

/// Which roll-up rows a query sums: a tenant's, of a period, in a scope.
#[derive(Clone, Copy)]
struct Rows<'a> {
    tenant: &'a str,
    scope: &'a Scope,
    period: &'a Period,
    /// Only rows whose `column` has this value.
    only: Option<(&'static str, &'a str)>,
    /// Only rows with an agent.
    with_agent: bool,
}

/// What the sums are grouped by.
#[derive(Clone, Copy)]
enum Group {
    /// The series bucket (an `i64` key).
    Bucket,
    /// A placement column (a `String` key, '' for none).
    Column(&'static str),
}

impl Store {
    /// The report of `period` for a tenant, over the sessions `scope` allows.
    pub async fn report(&self, tenant: &str, scope: &Scope, period: &Period) -> Result<Report, StoreError> {
        let rows = Rows { tenant, scope, period, only: None, with_agent: false };
        let comparison = period.comparison();
        let current = self.sums(rows, Group::Bucket).await?;
        let previous = self.sums(Rows { period: &comparison, ..rows }, Group::Bucket).await?;
        let agents = self.sums(rows, Group::Column("agent_id")).await?;
        Ok(build_report(period, &current, &previous, agents))
    }

    /// `agent` against `against` over the month of `month`, in `scope`; `None` when the agent
    /// took no calls with a desk (or department) that month to be compared against.
    pub async fn compare_agents(
        &self,
        tenant: &str,
        scope: &Scope,
        month: Date,
        agent: &str,
        against: &Against,
    ) -> Result<Option<Comparison>, StoreError> {
        let period = Period::Month(month);
        let rows = Rows { tenant, scope, period: &period, only: Some(("agent_id", agent)), with_agent: false };
        let (kind, column, id) = match against {
            Against::Agent(other) => ("agent", "agent_id", other.clone()),
            Against::Desk(known) | Against::Department(known) => {
                let (kind, column) = if matches!(against, Against::Desk(_)) {
                    ("desk", "desk_id")
                } else {
                    ("department", "department_id")
                };
                let id = match known {
                    Some(id) => Some(id.clone()),
                    None => busiest(&self.sums(rows, Group::Column(column)).await?),
                };
                match id {
                    Some(id) => (kind, column, id),
                    None => return Ok(None),
                }
            }
        };
        let other = Rows { only: Some((column, &id)), with_agent: true, ..rows };
        let agents =
            if kind == "agent" { 1 } else { self.sums::<String>(other, Group::Column("agent_id")).await?.len() as u64 };
        Ok(Some(Comparison {
            window: period.window(),
            agent: side("agent", agent, &period, &self.sums(rows, Group::Bucket).await?, 1),
            against: side(kind, &id, &period, &self.sums(other, Group::Bucket).await?, agents),
        }))
    }

    /// Calls analysed in the tenant's month containing `now` (for the quota check before analysing).
    pub async fn analyzed_in_month(
        &self,
        tenant: &str,
        now: time::OffsetDateTime,
        zone: &jiff::tz::TimeZone,
    ) -> Result<u64, StoreError> {
        let month = local_time(now, zone).date();
        let analyzed = self.analyzed_by_month(tenant, month, month).await?;
        Ok(analyzed.values().sum())
    }

    /// The tenant's analysed calls in the month of `month` and the 11 before, against `quota`.
    pub async fn usage(&self, tenant: &str, month: Date, quota: u64) -> Result<Usage, StoreError> {
        let first = month.first_of_month().saturating_sub(11.months());
        Ok(usage(month, quota, &self.analyzed_by_month(tenant, first, month).await?))
    }

    /// Analysed calls per month key (`YYYYMM`) from the month of `first` to that of `last`.
    async fn analyzed_by_month(&self, tenant: &str, first: Date, last: Date) -> Result<BTreeMap<i64, u64>, StoreError> {
        let rows = sqlx::query(
            "SELECT local_day / 100 AS month, CAST(SUM(analyzed) AS BIGINT) AS analyzed FROM report_daily \
             WHERE tenant = $1 AND local_day BETWEEN $2 AND $3 GROUP BY local_day / 100",
        )
        .bind(tenant)
        .bind(day_key(first.first_of_month()))
        .bind(day_key(last.last_of_month()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("month")?, count(row, "analyzed")?))).collect()
    }

    /// The roll-up rows `rows` selects, summed per `group`: hourly rows for a day, daily rows for
    /// a month or a year. One row comes back per bucket or placement, not per stored row.
    async fn sums<K>(&self, rows: Rows<'_>, group: Group) -> Result<HashMap<K, Totals>, StoreError>
    where
        K: Eq + std::hash::Hash + for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
    {
        let period = rows.period;
        // The bucket as selected and as grouped: by the columns themselves where that follows
        // the order of the reading index.
        let (rollup, bucket, by_bucket) = match period.grain() {
            Grain::Hour => (HOURLY, "local_day * 100 + local_hour", "local_day, local_hour"),
            Grain::Day => (DAILY, "local_day", "local_day"),
            Grain::Month => (DAILY, "local_day / 100", "local_day / 100"),
        };
        let (key, group_by) = match group {
            Group::Bucket => (bucket, by_bucket),
            Group::Column(column) => (column, column),
        };
        let (first, last) = period.days();
        let mut filter = String::from("tenant = $1 AND local_day BETWEEN $2 AND $3");
        let mut texts: Vec<String> = Vec::new();
        let mut next = 4;
        if rollup.hourly {
            filter.push_str(" AND local_hour <= $4");
            next += 1;
        }
        if let Some((column, value)) = rows.only {
            filter.push_str(&format!(" AND {column} = ${next}"));
            texts.push(value.to_string());
            next += 1;
        }
        if rows.with_agent {
            filter.push_str(" AND agent_id <> ''");
        }
        let (scope_sql, scope_binds) = rows.scope.sql("", next);
        filter.push_str(&format!(" AND {scope_sql}"));
        texts.extend(scope_binds);
        let query = |sql| {
            let mut query = sqlx::query(sql).bind(rows.tenant).bind(day_key(first)).bind(day_key(last));
            if rollup.hourly {
                query = query.bind(i64::from(period.last_hour()));
            }
            texts.iter().fold(query, |query, text| query.bind(text.clone()))
        };
        let sql = format!(
            "SELECT {key} AS k, CAST(SUM(calls) AS BIGINT) AS calls, CAST(SUM(analyzed) AS BIGINT) AS analyzed, \
             CAST(SUM(duration_ms) AS BIGINT) AS duration_ms, CAST(SUM(alerts) AS BIGINT) AS alerts \
             FROM {} WHERE {filter} GROUP BY {group_by}",
            rollup.calls
        );
        let mut sums: HashMap<K, Totals> = HashMap::new();
        for row in query(&sql).fetch_all(&self.pool).await? {
            let totals = sums.entry(row.try_get("k")?).or_default();
            totals.calls = count(&row, "calls")?;
            totals.analyzed = count(&row, "analyzed")?;
            totals.duration_ms = count(&row, "duration_ms")?;
            totals.alerts = count(&row, "alerts")?;
        }
        let sql = format!(
            "SELECT {key} AS k, label, CAST(SUM(score_sum) AS BIGINT) AS score_sum, \
             CAST(SUM(score_count) AS BIGINT) AS score_count FROM {} WHERE {filter} GROUP BY {group_by}, label",
            rollup.scores
        );
        for row in query(&sql).fetch_all(&self.pool).await? {
            let score = (count(&row, "score_sum")?, count(&row, "score_count")?);
            sums.entry(row.try_get("k")?).or_default().scores.insert(row.try_get("label")?, score);
        }
        Ok(sums)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn totals(calls: u64, duration_ms: u64, alerts: u64, scores: &[(&str, u64, u64)]) -> Totals {
        Totals {
            calls,
            analyzed: calls,
            duration_ms,
            alerts,
            scores: scores.iter().map(|(l, s, c)| (l.to_string(), (*s, *c))).collect(),
        }
    }

    #[test]
    fn periods_compare_with_the_same_weekday_the_month_and_the_year_before() {
        let day = date(2026, 3, 2);
        assert_eq!(Period::Day(day).comparison(), Period::Day(date(2026, 2, 23)));
        assert_eq!(
            Period::Realtime { date: day, hour: 9 }.comparison(),
            Period::Realtime { date: date(2026, 2, 23), hour: 9 }
        );
        assert_eq!(Period::Month(date(2026, 3, 31)).comparison(), Period::Month(date(2026, 2, 1)));
        assert_eq!(Period::Month(date(2026, 1, 15)).comparison(), Period::Month(date(2025, 12, 1)));
        assert_eq!(Period::Year(date(2024, 2, 29)).comparison(), Period::Year(date(2023, 1, 1)));
        assert_eq!(Period::Month(date(2024, 2, 10)).days(), (date(2024, 2, 1), date(2024, 2, 29)));
        assert_eq!(Period::Year(date(2026, 7, 4)).days(), (date(2026, 1, 1), date(2026, 12, 31)));
    }

    #[test]
    fn series_buckets_are_zero_filled_hours_days_or_months() {
        let realtime = Period::Realtime { date: date(2026, 11, 29), hour: 2 };
        assert_eq!(realtime.buckets(), [2026112900, 2026112901, 2026112902]);
        assert_eq!(Period::Day(date(2026, 11, 29)).buckets().len(), 24);
        let february = Period::Month(date(2028, 2, 3)).buckets();
        assert_eq!((february.len(), february[0], february[28]), (29, 20280201, 20280229));
        assert_eq!(Period::Year(date(2026, 5, 5)).buckets(), (202601..=202612).collect::<Vec<_>>());
        assert_eq!(bucket_label(Grain::Hour, 2026112907), "2026-11-29T07:00");
        assert_eq!(bucket_label(Grain::Day, 20261129), "2026-11-29");
        assert_eq!(bucket_label(Grain::Month, 202611), "2026-11");
    }

    #[test]
    fn windows_name_the_period_and_its_local_bounds() {
        let realtime = Period::Realtime { date: date(2026, 11, 29), hour: 23 }.window();
        assert_eq!(realtime.date, "2026-11-29");
        assert_eq!((realtime.from.as_str(), realtime.to.as_str()), ("2026-11-29T00:00:00", "2026-11-30T00:00:00"));
        let month = Period::Month(date(2026, 12, 9)).window();
        assert_eq!((month.date.as_str(), month.to.as_str()), ("2026-12", "2027-01-01T00:00:00"));
        assert_eq!(Period::Year(date(2026, 12, 9)).window().date, "2026");
    }

    #[test]
    fn local_time_follows_the_zone_through_daylight_saving() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let utc = |text: &str| {
            let t: Timestamp = text.parse().unwrap();
            OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond()).unwrap()
        };
        // 01:30 UTC is 02:30 in Berlin after the clocks went back (03:00 CEST is 02:00 CET)…
        assert_eq!(local_time(utc("2026-10-25T01:30:00Z"), &berlin), date(2026, 10, 25).at(2, 30, 0, 0));
        // … and so was 00:30 UTC, an hour earlier, still in summer time.
        assert_eq!(local_time(utc("2026-10-25T00:30:00Z"), &berlin), date(2026, 10, 25).at(2, 30, 0, 0));
        assert_eq!(day_key(local_time(utc("2026-10-24T22:30:00Z"), &berlin).date()), 20261025);
        assert_eq!(day_key(date(2026, 1, 9)), 20260109);
    }

    #[test]
    fn change_is_relative_to_the_previous_value() {
        assert_eq!(change_pct(Some(150.0), Some(100.0)), Some(50.0));
        assert_eq!(change_pct(Some(50.0), Some(200.0)), Some(-75.0));
        assert_eq!(change_pct(Some(5.0), Some(0.0)), None);
        assert_eq!(change_pct(None, Some(3.0)), None);
        assert_eq!(change_pct(Some(3.0), None), None);
    }

    #[test]
    fn scores_are_checked_and_summed_per_label() {
        let scores = vec![("a".to_string(), 3), ("b".to_string(), 10), ("a".to_string(), 5)];
        assert_eq!(score_sums(&scores).unwrap(), BTreeMap::from([("a", (8, 2)), ("b", (10, 1))]));
        assert!(score_sums(&[("a".to_string(), 0)]).unwrap_err().contains("\"a\" is 0"));
        assert!(score_sums(&[("a".to_string(), 11)]).is_err());
        assert_eq!(placeholders(3, 2), "($3, $4)");
    }

    #[test]
    fn a_report_sums_tiles_agents_and_series() {
        let period = Period::Day(date(2026, 11, 29));
        let current = HashMap::from([
            (2026112909, totals(2, 60_000, 1, &[("talk", 14, 2)])),
            (2026112910, totals(4, 30_000, 2, &[("talk", 5, 1), ("silence", 9, 1)])),
        ]);
        let previous = HashMap::from([(2026112209, totals(4, 40_000, 0, &[("talk", 24, 4)]))]);
        let agents = HashMap::from([
            ("a1".to_string(), totals(3, 87_000, 1, &[("talk", 19, 3), ("silence", 9, 1)])),
            ("a2".to_string(), totals(1, 1_000, 0, &[])),
            (String::new(), totals(2, 2_000, 2, &[])),
        ]);
        let report = build_report(&period, &current, &previous, agents);
        assert_eq!(report.period, "day");
        assert_eq!(report.compared_with.date, "2026-11-22");
        let tiles = &report.tiles;
        assert_eq!(tiles.calls, Tile { value: 6, previous: 4, change_pct: Some(50.0) });
        assert_eq!(
            tiles.average_duration_ms,
            Tile { value: Some(15_000.0), previous: Some(10_000.0), change_pct: Some(50.0) }
        );
        assert_eq!(tiles.alerts.change_pct, None);
        let talk =
            Tile { value: Some(19.0 / 3.0), previous: Some(6.0), change_pct: Some((19.0 / 3.0 - 6.0) / 6.0 * 100.0) };
        assert_eq!(tiles.scores["talk"], talk);
        assert_eq!(tiles.scores["silence"], Tile { value: Some(9.0), previous: None, change_pct: None });
        // Most calls first; a tie by id, calls without an agent (null) first.
        let ids: Vec<_> = report.agents.iter().map(|a| a.agent_id.as_deref()).collect();
        assert_eq!(ids, [Some("a1"), None, Some("a2")]);
        assert_eq!(report.agents[0].metrics.average_duration_ms, Some(29_000.0));
        assert_eq!(report.series.len(), 24);
        assert_eq!(report.series[10].start, "2026-11-29T10:00");
        assert_eq!(report.series[10].metrics.calls, 4);
        assert_eq!(report.series[0].metrics, Totals::default().metrics());
    }

    #[test]
    fn a_side_is_the_average_agent_of_its_calls() {
        let period = Period::Month(date(2026, 11, 1));
        let days = HashMap::from([
            (20261101, totals(6, 100_000, 2, &[("talk", 36, 6)])),
            (20261103, totals(2, 20_000, 0, &[])),
        ]);
        let desk = side("desk", "d1", &period, &days, 2);
        assert_eq!((desk.kind, desk.id.as_str(), desk.agents), ("desk", "d1", 2));
        assert_eq!((desk.metrics.calls, desk.metrics.alerts), (4.0, 1.0));
        assert_eq!(desk.metrics.average_duration_ms, Some(15_000.0));
        assert_eq!(desk.metrics.scores["talk"], 6.0);
        assert_eq!(desk.series.len(), 30);
        assert_eq!((desk.series[0].metrics.calls, desk.series[1].metrics.calls), (3.0, 0.0));
        assert_eq!(desk.series[1].metrics.average_duration_ms, None);
        let desks = HashMap::from([
            ("d2".to_string(), totals(3, 0, 0, &[])),
            ("d1".to_string(), totals(3, 0, 0, &[])),
            (String::new(), totals(9, 0, 0, &[])),
        ]);
        assert_eq!(busiest(&desks).as_deref(), Some("d1"));
        assert_eq!(busiest(&HashMap::from([(String::new(), totals(1, 0, 0, &[]))])), None);
    }

    #[test]
    fn usage_counts_twelve_months_against_the_quota() {
        let analyzed = BTreeMap::from([(202611, 70), (202512, 5), (202511, 99)]);
        let usage = usage(date(2026, 11, 29), 100, &analyzed);
        assert_eq!(
            (usage.month.as_str(), usage.analyzed, usage.quota, usage.remaining),
            ("2026-11", 70, Some(100), Some(30))
        );
        assert_eq!(usage.history.len(), 12);
        assert_eq!(usage.history[0], MonthUsage { month: "2025-12".into(), analyzed: 5 });
        assert_eq!(usage.history[1].analyzed, 0);
        assert_eq!(quota_left(0, 5), None);
        assert_eq!(quota_left(10, 15), Some(0));
        assert_eq!(quota_left(10, 10), Some(0));
        assert_eq!(quota_left(10, 9), Some(1));
    }
}
