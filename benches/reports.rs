//! Reports over a million stored calls, on SQLite (a file in a temporary directory).
//!
//! Setup: 1,000,000 calls of tenant `big` in November 2026 and, as the baseline in the same
//! database, 10,000 calls of tenant `small` in the same month, both through `record_call` (the
//! finalize stage's upsert) in transactions of 50,000 calls. The calls are spread uniformly over
//! the month across 200 agents (20 desks, 5 departments) and both channels, with 0–4 of four
//! score labels each; the insert rate is printed.
//!
//! Measured: the month report (`Store::report`, the query `GET /v1/reports?period=month` runs)
//! of each tenant with `Scope::All` — first 31 runs each timed by hand, whose medians and their
//! ratio are printed, then criterion — and, for scale, the day and year reports of `big`.
//!
//! `cargo bench --bench reports` (the setup takes a few minutes; `HARK_BENCH_CALLS=N` stores N
//! calls instead of 1,000,000 for a quick look).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hark::org::{Placement, Scope};
use hark::session::Channel;
use hark::store::{record_call, CallFacts, Period, Store};
use jiff::civil::date;
use jiff::tz::TimeZone;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::runtime::Runtime;

const LABELS: [&str; 4] = ["customer_sentiment", "talk_ratio", "silence", "response_speed"];
const BATCH: usize = 50_000;

/// Stores `calls` calls of `tenant` in November 2026; returns the seconds it took.
async fn fill(url: &str, tenant: &str, calls: usize, seed: u64) -> f64 {
    let zone = TimeZone::UTC;
    // One connection with a 256 MiB page cache: the roll-ups' keys arrive in random order, and
    // with SQLite's default 2 MiB the setup spends its time reading index pages back. (The
    // reports are read through the store's own connections, with the default cache.)
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await.unwrap();
    sqlx::query("PRAGMA cache_size = -262144").execute(&pool).await.unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let month_start = 1_793_491_200_000_i64; // 2026-11-01T00:00:00Z
    let month_ms = 30 * 86_400_000;
    let started = Instant::now();
    let mut left = calls;
    while left > 0 {
        let mut tx = pool.begin().await.unwrap();
        for _ in 0..left.min(BATCH) {
            let agent = rng.random_range(0..200);
            let analyzed = rng.random_bool(0.9);
            let labels: Vec<&str> = LABELS.into_iter().filter(|_| analyzed && rng.random_bool(0.6)).collect();
            let facts = CallFacts {
                tenant: tenant.to_string(),
                session_id: uuid::Uuid::new_v4(),
                channel: if rng.random_bool(0.5) { Channel::Chat } else { Channel::Voice },
                started_at: hark::clock::from_unix_ms(month_start + rng.random_range(0..month_ms)),
                duration_ms: rng.random_range(5_000..900_000),
                placement: Placement {
                    agent_id: Some(format!("agent-{agent}")),
                    desk_id: Some(format!("desk-{}", agent / 10)),
                    department_id: Some(format!("dept-{}", agent / 40)),
                    ..Placement::default()
                },
                scores: labels.into_iter().map(|l| (l.to_string(), rng.random_range(1..=10))).collect(),
                alerts: rng.random_range(0..3),
                analyzed,
            };
            record_call(&mut tx, &facts, &zone).await.unwrap();
        }
        tx.commit().await.unwrap();
        left -= left.min(BATCH);
    }
    pool.close().await;
    started.elapsed().as_secs_f64()
}

fn median_ms(runtime: &Runtime, store: &Store, tenant: &str, period: &Period) -> f64 {
    let mut times: Vec<Duration> = (0..31)
        .map(|_| {
            let started = Instant::now();
            black_box(runtime.block_on(store.report(tenant, &Scope::All, period)).unwrap());
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then, not the
    // million calls (minutes in a release build, far longer unoptimised).
    let benching = std::env::args().any(|a| a == "--bench");
    let default_calls = if benching { 1_000_000 } else { 2_000 };
    let calls: usize = std::env::var("HARK_BENCH_CALLS").ok().and_then(|n| n.parse().ok()).unwrap_or(default_calls);
    let baseline = if benching { 10_000 } else { 200 };
    let runtime = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("reports.db").display());
    let store = runtime.block_on(Store::connect(&url, 4)).unwrap();
    let seconds = runtime.block_on(fill(&url, "big", calls, 1));
    println!("stored {calls} calls in {seconds:.1} s ({:.0} calls/s through record_call)", calls as f64 / seconds);
    runtime.block_on(fill(&url, "small", baseline, 2));

    let month = Period::Month(date(2026, 11, 1));
    let (big, small) = (median_ms(&runtime, &store, "big", &month), median_ms(&runtime, &store, "small", &month));
    let report = runtime.block_on(store.report("big", &Scope::All, &month)).unwrap();
    assert_eq!(report.tiles.calls.value, calls as u64);
    println!(
        "month report, median of 31: {big:.2} ms over {calls} calls, {small:.2} ms over {baseline} calls (baseline): \
         ratio {:.2}",
        big / small
    );

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("reports");
    for (name, tenant, period) in [
        ("month_1m", "big", month),
        ("month_10k_baseline", "small", month),
        ("day_1m", "big", Period::Day(date(2026, 11, 17))),
        ("year_1m", "big", Period::Year(date(2026, 1, 1))),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(runtime.block_on(store.report(tenant, &Scope::All, &period)).unwrap()))
        });
    }
    group.finish();
    c.final_summary();
}
