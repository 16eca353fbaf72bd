//! Reports and usage on real SQLite and PostgreSQL databases. A fixed-seed data set — a few
//! thousand calls from the first day of last month until now, over three departments, six desks
//! and eighteen agents, some without placement, some of another tenant — goes through
//! `record_call` into the database a server then starts on, in a time zone with a daylight-saving
//! change inside the data. Every figure of the HTTP answers (tiles with their previous values
//! and changes, the agents table, the series, the agent comparisons, usage) is worked out again
//! here from the generated list in plain Rust, and compared. Scopes are checked through the
//! store's query directly (scoped users arrive later), bad parameters through HTTP.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{PgDb, Server, ADMIN};
use hark::org::{Placement, Scope};
use hark::session::Channel;
use hark::store::{record_call, CallFacts, Period, Store};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const LABELS: [&str; 4] = ["customer_sentiment", "talk_ratio", "silence", "response_speed"];

/// One generated call, with its local day and hour worked out here.
struct Call {
    facts: CallFacts,
    date: Date,
    hour: i8,
}

fn placement(agent: Option<usize>, desk: Option<usize>) -> Placement {
    // Agent i sits at desk i / 3; desk j belongs to department j / 2.
    let desk = agent.map(|a| a / 3).or(desk);
    Placement {
        agent_id: agent.map(|a| format!("agent-{a}")),
        desk_id: desk.map(|d| format!("desk-{d}")),
        department_id: desk.map(|d| format!("dept-{}", d / 2)),
        ..Placement::default()
    }
}

/// A call of `tenant` starting at a random time within `span` (Unix ms).
fn call(rng: &mut StdRng, tenant: &str, span: std::ops::Range<i64>, zone: &TimeZone) -> Call {
    let at_ms = rng.random_range(span);
    let placement = match rng.random_range(0..100) {
        0..80 => placement(Some(rng.random_range(0..18)), None),
        80..88 => placement(None, Some(rng.random_range(0..6))),
        _ => Placement::default(),
    };
    let analyzed = rng.random_bool(0.85);
    let scores = if analyzed {
        let labels: Vec<&str> = LABELS.into_iter().filter(|_| rng.random_bool(0.7)).collect();
        labels.into_iter().map(|l| (l.to_string(), rng.random_range(1..=10))).collect()
    } else {
        Vec::new()
    };
    let local = zone.to_datetime(Timestamp::from_millisecond(at_ms).unwrap());
    Call {
        facts: CallFacts {
            tenant: tenant.to_string(),
            session_id: uuid::Uuid::new_v4(),
            channel: if rng.random_bool(0.5) { Channel::Chat } else { Channel::Voice },
            started_at: hark::clock::from_unix_ms(at_ms),
            duration_ms: rng.random_range(5_000..900_000),
            placement,
            scores,
            alerts: [0, 0, 0, 1, 1, 2, 3][rng.random_range(0..7)],
            analyzed,
        },
        date: local.date(),
        hour: local.hour(),
    }
}

fn ms(date: Date, hour: i8, zone: &TimeZone) -> i64 {
    zone.to_timestamp(date.at(hour, 0, 0, 0)).unwrap().as_millisecond()
}

/// 3,000 calls of `default` from the first day of last month until a minute ago, 80 more today
/// and on the same weekday a week ago up to this hour, and 200 of `other`.
fn generate(zone: &TimeZone) -> Vec<Call> {
    let mut rng = StdRng::seed_from_u64(20261130);
    let now = Timestamp::now().as_millisecond() - 60_000;
    let today = zone.to_datetime(Timestamp::from_millisecond(now).unwrap());
    let start = ms(today.date().first_of_month().saturating_sub(1.month()), 0, zone);
    let mut calls: Vec<Call> = (0..3000).map(|_| call(&mut rng, "default", start..now, zone)).collect();
    let today_start = ms(today.date(), 0, zone);
    if today_start < now {
        calls.extend((0..40).map(|_| call(&mut rng, "default", today_start..now, zone)));
    }
    let week_ago = today.date().saturating_sub(7.days());
    let until = ms(week_ago, today.hour(), zone) + 3_600_000;
    calls.extend((0..40).map(|_| call(&mut rng, "default", ms(week_ago, 0, zone)..until, zone)));
    calls.extend((0..200).map(|_| call(&mut rng, "other", start..now, zone)));
    calls
}

/// Opens (and migrates) the database at `url` and records every call, 500 per transaction.
async fn insert(url: &str, calls: &[Call], zone: &TimeZone) -> Store {
    let store = Store::connect(url, 2).await.unwrap();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    for chunk in calls.chunks(500) {
        let mut tx = pool.begin().await.unwrap();
        for call in chunk {
            record_call(&mut tx, &call.facts, zone).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    pool.close().await;
    store
}

/// The sums of a set of calls, as the test counts them.
#[derive(Default)]
struct Sum {
    calls: u64,
    analyzed: u64,
    duration_ms: i64,
    alerts: u64,
    scores: BTreeMap<String, (u64, u64)>,
}

impl Sum {
    fn of<'a>(calls: impl IntoIterator<Item = &'a Call>) -> Sum {
        let mut sum = Sum::default();
        for call in calls {
            let f = &call.facts;
            sum.calls += 1;
            sum.analyzed += u64::from(f.analyzed);
            sum.duration_ms += f.duration_ms;
            sum.alerts += u64::from(f.alerts);
            for (label, score) in &f.scores {
                let entry = sum.scores.entry(label.clone()).or_default();
                entry.0 += u64::from(*score);
                entry.1 += 1;
            }
        }
        sum
    }

    fn average_duration(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.duration_ms as f64 / self.calls as f64)
    }

    fn score(&self, label: &str) -> Option<f64> {
        self.scores.get(label).map(|(sum, count)| *sum as f64 / *count as f64)
    }
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0)
}

fn same(json: &Value, expected: Option<f64>, what: &str) {
    match expected {
        None => assert!(json.is_null(), "{what}: {json}, expected null"),
        Some(e) => assert!(json.as_f64().is_some_and(|a| close(a, e)), "{what}: {json}, expected {e}"),
    }
}

/// `json`'s figures against `sum` shared by `agents` agents.
fn check_metrics(json: &Value, sum: &Sum, agents: f64, what: &str) {
    same(&json["calls"], Some(sum.calls as f64 / agents), &format!("{what} calls"));
    same(&json["analyzed"], Some(sum.analyzed as f64 / agents), &format!("{what} analyzed"));
    same(&json["alerts"], Some(sum.alerts as f64 / agents), &format!("{what} alerts"));
    same(&json["average_duration_ms"], sum.average_duration(), &format!("{what} average duration"));
    let labels: BTreeSet<&str> = json["scores"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(labels, sum.scores.keys().map(String::as_str).collect(), "{what} score labels");
    for label in labels {
        same(&json["scores"][label], sum.score(label), &format!("{what} {label}"));
    }
}

fn change(value: Option<f64>, previous: Option<f64>) -> Option<f64> {
    match (value, previous) {
        (Some(v), Some(p)) if p != 0.0 => Some((v - p) / p * 100.0),
        _ => None,
    }
}

fn check_tile(tile: &Value, value: Option<f64>, previous: Option<f64>, what: &str) {
    same(&tile["value"], value, &format!("{what} value"));
    same(&tile["previous"], previous, &format!("{what} previous"));
    same(&tile["change_pct"], change(value, previous), &format!("{what} change"));
}

/// A report answer against the calls the test selects for its period, its comparable period
/// and each bucket of its series.
fn check_report(answer: &Value, current: &[&Call], previous: &[&Call], buckets: &[(String, Vec<&Call>)]) {
    let (now, before) = (Sum::of(current.iter().copied()), Sum::of(previous.iter().copied()));
    let tiles = &answer["tiles"];
    let count = |n: u64| Some(n as f64);
    check_tile(&tiles["calls"], count(now.calls), count(before.calls), "calls");
    check_tile(&tiles["analyzed"], count(now.analyzed), count(before.analyzed), "analyzed");
    check_tile(&tiles["alerts"], count(now.alerts), count(before.alerts), "alerts");
    check_tile(&tiles["average_duration_ms"], now.average_duration(), before.average_duration(), "duration");
    let labels: BTreeSet<&String> = now.scores.keys().chain(before.scores.keys()).collect();
    let tile_labels: BTreeSet<&String> = tiles["scores"].as_object().unwrap().keys().collect();
    assert_eq!(tile_labels, labels);
    for label in labels {
        check_tile(&tiles["scores"][label], now.score(label), before.score(label), label);
    }

    let mut agents: BTreeMap<Option<&str>, Vec<&Call>> = BTreeMap::new();
    for call in current {
        agents.entry(call.facts.placement.agent_id.as_deref()).or_default().push(call);
    }
    let mut expected: Vec<(Option<&str>, Sum)> = agents.into_iter().map(|(id, calls)| (id, Sum::of(calls))).collect();
    expected.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(&b.0)));
    let rows = answer["agents"].as_array().unwrap();
    let ids: Vec<Option<&str>> = rows.iter().map(|r| r["agent_id"].as_str()).collect();
    assert_eq!(ids, expected.iter().map(|e| e.0).collect::<Vec<_>>(), "agents in order");
    for (row, (id, sum)) in rows.iter().zip(&expected) {
        check_metrics(row, sum, 1.0, &format!("agent {id:?}"));
    }

    let series = answer["series"].as_array().unwrap();
    let starts: Vec<&str> = series.iter().map(|b| b["start"].as_str().unwrap()).collect();
    assert_eq!(starts, buckets.iter().map(|b| b.0.as_str()).collect::<Vec<_>>());
    for (bucket, (start, calls)) in series.iter().zip(buckets) {
        check_metrics(bucket, &Sum::of(calls.iter().copied()), 1.0, start);
    }
}

fn select(calls: &[Call], keep: impl Fn(&Call) -> bool) -> Vec<&Call> {
    calls.iter().filter(|c| keep(c)).collect()
}

fn days(first: Date, last: Date) -> Vec<Date> {
    first.series(1.day()).take_while(|d| *d <= last).collect()
}

/// The hourly buckets of `date` up to `last` of the calls `keep` selects.
fn hours<'a>(calls: &'a [Call], date: Date, last: i8, keep: &dyn Fn(&Call) -> bool) -> Vec<(String, Vec<&'a Call>)> {
    (0..=last)
        .map(|h| (format!("{date}T{h:02}:00"), select(calls, |c| keep(c) && c.date == date && c.hour == h)))
        .collect()
}

fn in_month(call: &Call, month: Date) -> bool {
    call.date.first_of_month() == month.first_of_month()
}

/// The month report of `month` for `tenant`, as the test expects it, checked against `answer`.
fn check_month(answer: &Value, calls: &[Call], month: Date, keep: &dyn Fn(&Call) -> bool) {
    let previous = month.first_of_month().saturating_sub(1.month());
    let buckets: Vec<(String, Vec<&Call>)> = days(month.first_of_month(), month.last_of_month())
        .into_iter()
        .map(|d| (d.to_string(), select(calls, |c| keep(c) && c.date == d)))
        .collect();
    check_report(
        answer,
        &select(calls, |c| keep(c) && in_month(c, month)),
        &select(calls, |c| keep(c) && in_month(c, previous)),
        &buckets,
    );
}

fn check_day(answer: &Value, calls: &[Call], date: Date, last_hour: i8) {
    let keep = |c: &Call| c.facts.tenant == "default";
    let week_ago = date.saturating_sub(7.days());
    check_report(
        answer,
        &select(calls, |c| keep(c) && c.date == date && c.hour <= last_hour),
        &select(calls, |c| keep(c) && c.date == week_ago && c.hour <= last_hour),
        &hours(calls, date, last_hour, &keep),
    );
}

async fn get_ok(server: &Server, path: &str, token: &str) -> Value {
    let (status, body) = server.get(path, token).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn reports_match_the_calls(url: &str, zone_name: &str, quota: u64) {
    let zone = TimeZone::get(zone_name).unwrap();
    let calls = generate(&zone);
    let store = insert(url, &calls, &zone).await;
    let quota_text = quota.to_string();
    let server = Server::start(&[
        ("HARK_DATABASE_URL", url),
        ("HARK_REPORTS_TIMEZONE", zone_name),
        ("HARK_USAGE_MONTHLY_QUOTA", &quota_text),
    ])
    .await;
    let default = |c: &Call| c.facts.tenant == "default";
    let today = zone.to_datetime(Timestamp::now()).date();
    let this_month = today.first_of_month();
    let last_month = this_month.saturating_sub(1.month());

    // Months: this one (against the last) and the last (against one without calls).
    for month in [this_month, last_month] {
        let answer =
            get_ok(&server, &format!("/v1/reports?period=month&date={}", month.strftime("%Y-%m")), ADMIN).await;
        assert_eq!((answer["period"].as_str(), answer["timezone"].as_str()), (Some("month"), Some(zone_name)));
        assert!(answer.get("live").is_none());
        check_month(&answer, &calls, month, &default);
    }
    // The default date is the current one.
    let answer = get_ok(&server, "/v1/reports?period=month", ADMIN).await;
    assert_eq!(answer["window"]["date"], this_month.strftime("%Y-%m").to_string());

    // Days: each against the same weekday a week before, in both months.
    for date in [last_month.saturating_add(3.days()), last_month.saturating_add(12.days()), today] {
        let answer = get_ok(&server, &format!("/v1/reports?period=day&date={date}"), ADMIN).await;
        assert_eq!(answer["compared_with"]["date"], date.saturating_sub(7.days()).to_string());
        check_day(&answer, &calls, date, 23);
    }

    // Today so far, against the same weekday a week before up to the same hour.
    let answer = get_ok(&server, "/v1/reports?period=realtime", ADMIN).await;
    let date: Date = answer["window"]["date"].as_str().unwrap().parse().unwrap();
    let hour = answer["series"].as_array().unwrap().len() as i8 - 1;
    assert!(date >= today && hour >= 0, "{}", answer["window"]);
    assert_eq!(answer["live"], 0);
    check_day(&answer, &calls, date, hour);

    // The year: monthly buckets, against the year before.
    let answer = get_ok(&server, &format!("/v1/reports?period=year&date={}", today.year()), ADMIN).await;
    let year = today.first_of_year();
    let in_year = |c: &Call, y: Date| c.date.first_of_year() == y;
    let buckets: Vec<(String, Vec<&Call>)> = (0..12)
        .map(|m| year.saturating_add(m.months()))
        .map(|m| (m.strftime("%Y-%m").to_string(), select(&calls, |c| default(c) && in_month(c, m))))
        .collect();
    let year_before = year.saturating_sub(1.year());
    check_report(
        &answer,
        &select(&calls, |c| default(c) && in_year(c, year)),
        &select(&calls, |c| default(c) && in_year(c, year_before)),
        &buckets,
    );

    // Another tenant sees only its own calls.
    let eve = server.tenant_token("Eve", Some("other")).await;
    let answer =
        get_ok(&server, &format!("/v1/reports?period=month&date={}", this_month.strftime("%Y-%m")), &eve).await;
    check_month(&answer, &calls, this_month, &|c: &Call| c.facts.tenant == "other");

    // Agents: against another agent, their desk's and their department's average agent.
    let month = this_month.strftime("%Y-%m").to_string();
    let agent =
        |c: &Call, id: &str| default(c) && in_month(c, this_month) && c.facts.placement.agent_id.as_deref() == Some(id);
    let check_side = |side: &Value, kind: &str, id: &str, members: &dyn Fn(&Call) -> bool| {
        let chosen = select(&calls, |c| members(c));
        let agents: BTreeSet<&str> = chosen.iter().filter_map(|c| c.facts.placement.agent_id.as_deref()).collect();
        let n = if kind == "agent" { 1 } else { agents.len() };
        assert_eq!(
            (side["kind"].as_str(), side["id"].as_str(), side["agents"].as_u64()),
            (Some(kind), Some(id), Some(n as u64))
        );
        check_metrics(side, &Sum::of(chosen.iter().copied()), n as f64, kind);
        let series = side["series"].as_array().unwrap();
        let month_days = days(this_month, this_month.last_of_month());
        assert_eq!(series.len(), month_days.len());
        for (bucket, day) in series.iter().zip(month_days) {
            assert_eq!(bucket["start"], day.to_string());
            check_metrics(
                bucket,
                &Sum::of(chosen.iter().copied().filter(|c| c.date == day)),
                n as f64,
                &day.to_string(),
            );
        }
    };
    let answer =
        get_ok(&server, &format!("/v1/reports/agents?month={month}&agent=agent-4&against=agent-9"), ADMIN).await;
    check_side(&answer["agent"], "agent", "agent-4", &|c| agent(c, "agent-4"));
    check_side(&answer["against"], "agent", "agent-9", &|c| agent(c, "agent-9"));
    // agent-4 sits at desk-1 of dept-0 (with agents 3–5; the department has agents 0–5).
    let desk = |c: &Call, column: fn(&Placement) -> Option<&String>, id: &str| {
        default(c)
            && in_month(c, this_month)
            && c.facts.placement.agent_id.is_some()
            && column(&c.facts.placement).is_some_and(|d| d == id)
    };
    let answer = get_ok(&server, &format!("/v1/reports/agents?month={month}&agent=agent-4&against=desk"), ADMIN).await;
    check_side(&answer["agent"], "agent", "agent-4", &|c| agent(c, "agent-4"));
    check_side(&answer["against"], "desk", "desk-1", &|c| desk(c, |p| p.desk_id.as_ref(), "desk-1"));
    let answer = get_ok(&server, "/v1/reports/agents?agent=agent-4&against=department", ADMIN).await;
    check_side(&answer["against"], "department", "dept-0", &|c| desk(c, |p| p.department_id.as_ref(), "dept-0"));
    let (status, problem) = server.get("/v1/reports/agents?agent=nobody&against=desk", ADMIN).await;
    assert_eq!(status, 404, "{problem}");

    // Usage: this month's analysed calls against the quota, and twelve months of history.
    let analyzed = |month: Date| select(&calls, |c| default(c) && in_month(c, month) && c.facts.analyzed).len() as u64;
    let usage = get_ok(&server, "/v1/usage", ADMIN).await;
    assert_eq!(usage["month"], month);
    assert_eq!(usage["analyzed"], analyzed(this_month));
    let (expected_quota, remaining) = if quota == 0 {
        (Value::Null, Value::Null)
    } else {
        (quota.into(), quota.saturating_sub(analyzed(this_month)).into())
    };
    assert_eq!((&usage["quota"], &usage["remaining"]), (&expected_quota, &remaining));
    let history = usage["history"].as_array().unwrap();
    assert_eq!(history.len(), 12);
    assert_eq!(history[11], serde_json::json!({"month": month, "analyzed": analyzed(this_month)}));
    assert_eq!(
        history[10],
        serde_json::json!({"month": last_month.strftime("%Y-%m").to_string(), "analyzed": analyzed(last_month)})
    );
    assert!(history[..10].iter().all(|m| m["analyzed"] == 0));
    let now = hark::clock::from_unix_ms(Timestamp::now().as_millisecond());
    assert_eq!(store.analyzed_in_month("default", now, &zone).await.unwrap(), analyzed(this_month));

    // Scopes, through the store's query: a desk and an agent of another desk; nothing; all.
    let scope = Scope::Only { departments: vec![], desks: vec!["desk-2".into()], agents: vec!["agent-16".into()] };
    let scoped = |scope: Scope| move |c: &Call| default(c) && scope.allows(&c.facts.placement);
    for scope in [scope, Scope::Only { departments: vec!["dept-2".into()], desks: vec![], agents: vec![] }, Scope::All]
    {
        let report = store.report("default", &scope, &Period::Month(this_month)).await.unwrap();
        check_month(&serde_json::to_value(&report).unwrap(), &calls, this_month, &scoped(scope));
    }
    let nothing = Scope::Only { departments: vec![], desks: vec![], agents: vec![] };
    let report = store.report("default", &nothing, &Period::Month(this_month)).await.unwrap();
    assert_eq!((report.tiles.calls.value, report.agents.len()), (0, 0));
}

#[tokio::test]
async fn reports_match_the_calls_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("reports.db").display());
    reports_match_the_calls(&url, "Europe/Berlin", 0).await;
}

#[tokio::test]
async fn reports_match_the_calls_on_postgres() {
    let db = PgDb::create().await;
    reports_match_the_calls(&db.url, "America/New_York", 1000).await;
}

/// Bad parameters are named; an empty database answers zeros; the routes are described.
#[tokio::test]
async fn bad_parameters_an_empty_database_and_the_description() {
    let server = Server::start(&[]).await;
    for (path, name) in [
        ("/v1/reports", "period"),
        ("/v1/reports?period=week", "period"),
        ("/v1/reports?period=day&date=2026-02-30", "date"),
        ("/v1/reports?period=day&date=29.11.2026", "date"),
        ("/v1/reports?period=month&date=2026-13", "date"),
        ("/v1/reports?period=month&date=2026-11-01", "date"),
        ("/v1/reports?period=year&date=26", "date"),
        ("/v1/reports?period=realtime&date=2026-11-29", "date"),
        ("/v1/reports?period=day&agent=a1", "agent"),
        ("/v1/reports/agents?against=desk", "agent"),
        ("/v1/reports/agents?agent=a1", "against"),
        ("/v1/reports/agents?agent=a1&against=desk&month=2026", "month"),
    ] {
        let (status, problem) = server.get(path, ADMIN).await;
        assert_eq!(status, 400, "{path}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(name), "{path}: {problem}");
    }
    let (status, _) = server.get("/v1/reports?period=month", "not-a-token").await;
    assert_eq!(status, 401);
    // A fresh tenant: zeros, a zero-filled series, unlimited usage.
    let answer = get_ok(&server, "/v1/reports?period=month&date=2026-02", ADMIN).await;
    assert_eq!(answer["tiles"]["calls"], serde_json::json!({"value": 0, "previous": 0, "change_pct": null}));
    assert_eq!(answer["series"].as_array().unwrap().len(), 28);
    let usage = get_ok(&server, "/v1/usage", ADMIN).await;
    assert_eq!((&usage["analyzed"], &usage["quota"], &usage["remaining"]), (&0.into(), &Value::Null, &Value::Null));
    let openapi = get_ok(&server, "/v1/openapi.json", ADMIN).await;
    for path in ["/v1/reports", "/v1/reports/agents", "/v1/usage"] {
        assert!(openapi["paths"][path]["get"].is_object(), "{path}");
    }
}
