//! Page benchmark: response time and upstream calls for the main pages, cold (empty cache)
//! and warm (reached again within the cache lifetime), on the `large` simulator profile
//! (5,000 members, 100 workspaces, 20,000 keys) with 100 ms of injected upstream latency.
//!
//! Run: `cargo bench --bench pages` (optionally `-- /members /keys` to pick pages).
//! This is a measurement, not a test: it prints numbers and asserts nothing about time.

// The integration tests' harness; the benchmark uses part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use orgkeeper::auth::Role;
use orgkeeper::simulator::{self, Profile, SimulatorOptions};

const PAGES: &[&str] = &[
    "/",
    "/members",
    "/members?q=a&sort=email&page=3",
    "/workspaces",
    "/keys",
    "/keys?flag=no_expiry",
    "/usage",
    "/cost",
];
const LATENCY: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a.starts_with('/'))
        .collect();
    let pages: Vec<&str> = if wanted.is_empty() {
        PAGES.to_vec()
    } else {
        wanted.iter().map(String::as_str).collect()
    };

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulator = simulator::start(
        listener,
        SimulatorOptions {
            profile: Profile::Large,
            seed: 42,
        },
    )
    .await
    .unwrap();
    let mut config = support::live_config(&simulator);
    config.background_jobs = false;
    config.cache_ttl = Duration::from_secs(300);
    let app = support::spawn_app_with(config, simulator, None).await;
    let (_, session) = app.signed_in(Role::Owner).await;
    app.simulator.faults().set_latency(LATENCY);

    println!(
        "Orgkeeper page benchmark: large profile, {} ms upstream latency, debug={}",
        LATENCY.as_millis(),
        cfg!(debug_assertions)
    );
    println!(
        "{:<36} {:>10} {:>8} {:>10} {:>8} {:>7}",
        "page", "cold ms", "calls", "warm ms", "calls", "status"
    );
    for page in pages {
        // Cold: nothing cached.
        app.state.org.invalidate_all();
        let (cold, cold_calls, status) = measure(&app, &session, page).await;
        let (warm, warm_calls, _) = measure(&app, &session, page).await;
        println!(
            "{page:<36} {cold:>10.0} {cold_calls:>8} {warm:>10.0} {warm_calls:>8} {status:>7}"
        );
    }
}

async fn measure(
    app: &support::TestApp,
    session: &support::Session,
    page: &str,
) -> (f64, u64, u16) {
    app.simulator.reset_request_count();
    let started = Instant::now();
    let response = session.get(page).await;
    let status = response.status().as_u16();
    let _ = response.bytes().await.unwrap();
    (
        started.elapsed().as_secs_f64() * 1000.0,
        app.simulator.request_count(),
        status,
    )
}
