//! The organization-model benchmark, on the `large` simulated organization (5,000 members,
//! 100 workspaces, 20,000 keys) with 100 ms added to every upstream call:
//!
//! * the first full sync, and a steady-state sync;
//! * every main page once: upstream calls (must be 0), time and size;
//! * throughput with 20 concurrent keep-alive clients for `/healthz`, `/members` and `/keys`,
//!   each as a share of `/healthz` measured in the same run (this machine is shared, so only
//!   ratios from one run mean anything);
//! * resident memory of the process before Orgkeeper starts (simulator only) and after.
//!
//! Run: `cargo bench --bench pages` (release build). A measurement, not a test: it prints
//! numbers and asserts nothing about time.

// The integration tests' harness; the benchmark uses part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orgkeeper::auth::Role;
use orgkeeper::simulator::{self, Profile, SimulatorOptions};

const LATENCY: Duration = Duration::from_millis(100);
const CLIENTS: usize = 20;
const LOAD_FOR: Duration = Duration::from_secs(4);

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
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
    simulator.faults().set_latency(LATENCY);
    let rss_simulator = rss_mb();
    println!(
        "Orgkeeper organization-model benchmark: large profile, {} ms per upstream call, debug={}",
        LATENCY.as_millis(),
        cfg!(debug_assertions)
    );

    // The harness runs the first sync before it returns, as the job does at start-up.
    let config = support::live_config(&simulator);
    let started = Instant::now();
    let app = support::spawn_app_with(config, simulator, None).await;
    let first_sync = started.elapsed();
    let calls = app.simulator.request_count();
    app.simulator.reset_request_count();
    let started = Instant::now();
    app.sync().await;
    let steady_sync = started.elapsed();
    println!(
        "first full sync: {:.1} s ({calls} upstream calls); a later sync: {:.1} s ({} calls)",
        first_sync.as_secs_f64(),
        steady_sync.as_secs_f64(),
        app.simulator.request_count()
    );
    let db_mb = std::fs::metadata(app.dir.path().join("orgkeeper.db"))
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(0.0);
    println!("database after the sync: {db_mb:.1} MB");

    let (_, session) = app.signed_in(Role::Owner).await;
    let snapshot = app.state.org.snapshot();
    let member = snapshot.users[snapshot.users.len() / 2].id.clone();
    let workspace = snapshot.workspaces[1].id.clone();
    let key = snapshot.keys[snapshot.keys.len() / 2].id.clone();
    let pages = [
        "/".to_owned(),
        "/members".into(),
        "/members?q=a&sort=email&page=3".into(),
        format!("/members/{member}"),
        "/invites".into(),
        "/workspaces".into(),
        format!("/workspaces/{workspace}"),
        "/keys".into(),
        "/keys?status=active&flag=no_expiry".into(),
        format!("/keys/{key}"),
        "/usage".into(),
        "/cost".into(),
    ];
    println!(
        "\n{:<44} {:>9} {:>7} {:>9} {:>7}",
        "page (second view)", "ms", "calls", "KB", "status"
    );
    for page in &pages {
        // The first view of /usage and /cost fills the usage store when it was never synced.
        let _ = session.get(page).await.bytes().await;
        app.simulator.reset_request_count();
        let started = Instant::now();
        let response = session.get(page).await;
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap();
        println!(
            "{page:<44} {:>9.1} {:>7} {:>9.1} {status:>7}",
            started.elapsed().as_secs_f64() * 1000.0,
            app.simulator.request_count(),
            body.len() as f64 / 1024.0
        );
    }

    println!(
        "\nthroughput, {CLIENTS} keep-alive clients, {} s each:",
        LOAD_FOR.as_secs()
    );
    let healthz = load(&app.address, "/healthz", None).await;
    let cookie = session_cookie(&app, &session).await;
    let mut rows = vec![("/healthz".to_owned(), healthz)];
    for page in [
        "/members",
        "/keys",
        "/",
        "/keys?status=active&flag=no_expiry",
    ] {
        rows.push((
            page.to_owned(),
            load(&app.address, page, Some(&cookie)).await,
        ));
    }
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "page", "req/s", "p50 ms", "of healthz"
    );
    for (page, r) in &rows {
        println!(
            "{page:<44} {:>10.0} {:>10.2} {:>9.1}%",
            r.rate,
            r.p50_ms,
            100.0 * r.rate / healthz.rate
        );
    }
    println!(
        "\nresident memory: {rss_simulator:.0} MB with the simulator alone, {:.0} MB with Orgkeeper \
         after sync and load (Orgkeeper ≈ {:.0} MB)",
        rss_mb(),
        rss_mb() - rss_simulator
    );
}

#[derive(Clone, Copy)]
struct Load {
    rate: f64,
    p50_ms: f64,
}

/// The session cookie of a signed-in client, for the load clients to send.
async fn session_cookie(app: &support::TestApp, session: &support::Session) -> String {
    // The harness's client keeps its cookie in a jar; sign in again by hand to read it.
    let _ = session;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (account, _) = app.signed_in(Role::Owner).await;
    let page = http
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap();
    let first = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    let body = page.text().await.unwrap();
    let csrf = support::extract_csrf(&body).unwrap();
    let response = http
        .post(format!("{}/login", app.address))
        .header("cookie", &first)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("username", account.username.as_str()),
            ("password", support::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `CLIENTS` clients, each with its own keep-alive connection, ask for `path` for `LOAD_FOR`.
async fn load(address: &str, path: &str, cookie: Option<&str>) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (stop, done) = (stop.clone(), done.clone());
        let url = format!("{address}{path}");
        let cookie = cookie.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let mut request = http.get(&url);
                if let Some(cookie) = &cookie {
                    request = request.header("cookie", cookie);
                }
                let response = request.send().await.unwrap();
                assert!(
                    response.status().is_success(),
                    "{url}: {}",
                    response.status()
                );
                let _ = response.bytes().await.unwrap();
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                done.fetch_add(1, Ordering::Relaxed);
            }
            times
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(LOAD_FOR).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await.unwrap());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Load {
        rate: done.load(Ordering::Relaxed) as f64 / elapsed,
        p50_ms: times.get(times.len() / 2).copied().unwrap_or(0.0),
    }
}
