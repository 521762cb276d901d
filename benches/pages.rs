//! The organization-model benchmark, on the `large` simulated organization (5,000 members,
//! 100 workspaces, 20,000 keys) with 100 ms added to every upstream call.
//!
//! Orgkeeper runs as its own process — the release `orgkeeper serve`, configured by
//! environment variables as in production — against the simulator in this process, so its
//! resident memory is its own. Measured:
//!
//! * the first full sync (from Orgkeeper's log line) and a later one (`POST /sync`, which
//!   runs it in the request);
//! * every main page once: upstream calls (must be 0), time and size;
//! * throughput with 20 concurrent keep-alive clients for `/healthz`, `/members`, `/keys` and
//!   `/` and the token-authenticated Admin API (`/v1/organizations/api_keys?limit=100`), each
//!   as a share of `/healthz` measured in the same run (this machine is shared, so
//!   only ratios from one run mean anything);
//! * Orgkeeper's resident memory after the syncs and the load, and its peak;
//! * a restart on the same database: how soon it serves, and each page's first view from the
//!   model it loaded (no read of the organization first).
//!
//! `ORGKEEPER_BENCH_PROFILE=xlarge` runs it on the ten-times larger organization (50,000
//! members, 1,000 workspaces, 200,000 keys).
//!
//! Run: `cargo bench --bench pages` (release build). A measurement, not a test: it prints
//! numbers and asserts nothing about time.

// The integration tests' harness; the benchmark uses its constants and CSRF helper.
mod common;
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use common::{memory_mb, sign_in, sync_times, Read};

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orgkeeper::simulator::{self, Profile, SimulatorOptions};

const LATENCY: Duration = Duration::from_millis(100);
const CLIENTS: usize = 20;
const LOAD_FOR: Duration = Duration::from_secs(4);
const USER: &str = "bench-owner";

/// The first `/{prefix}…` id linked from `html` (`/members/user_…`).
fn first_link(html: &str, prefix: &str) -> String {
    let at = html
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link"));
    html[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "/_".contains(*c))
        .collect()
}

#[tokio::main]
async fn main() {
    // `ORGKEEPER_BENCH_PROFILE=xlarge` measures the ten-times larger organization.
    let profile = match std::env::var("ORGKEEPER_BENCH_PROFILE").as_deref() {
        Ok("xlarge") => Profile::XLarge,
        _ => Profile::Large,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulator = simulator::start(listener, SimulatorOptions { profile, seed: 42 })
        .await
        .unwrap();
    simulator.faults().set_latency(LATENCY);
    println!(
        "Orgkeeper organization-model benchmark: {profile:?} profile, {} ms per upstream call, debug={}",
        LATENCY.as_millis(),
        cfg!(debug_assertions)
    );

    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("orgkeeper.db");
    let bin = env!("CARGO_BIN_EXE_orgkeeper");
    common::add_owner(&database, USER);
    // A token for the Admin API that Orgkeeper serves (its last line of output is the token).
    let created = Command::new(bin)
        .args(["token", "create", "bench", "--account", USER, "--read-only"])
        .env("ORGKEEPER_DATABASE", &database)
        .output()
        .unwrap();
    assert!(created.status.success(), "could not create the token");
    let token = String::from_utf8_lossy(&created.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();

    let started = Instant::now();
    let mut child = common::serve(
        &database,
        &simulator.base_url(),
        &[
            // The benchmark measures throughput, not the per-token rate limit.
            ("ORGKEEPER_TOKEN_RATE_LIMIT", "0"),
            // The complete reads are the first and the one this benchmark asks for; the feed
            // and the sweep stay quiet while pages are measured (each view must make 0 calls).
            ("ORGKEEPER_FEED_INTERVAL", "3600"),
            ("ORGKEEPER_SWEEP_MINUTES", "10080"),
        ],
    );
    let address = child.address.clone();
    let pid = child.process.0.id();
    let mut syncs = sync_times(&mut child.process.0);
    // The usage job starts beside the first sync; its first round reads 31 days of hours.
    let (mut first, mut usage) = (None, None);
    while first.is_none() || usage.is_none() {
        let (read, seconds) = tokio::time::timeout(Duration::from_secs(900), syncs.recv())
            .await
            .expect("the first syncs finish")
            .expect("orgkeeper is running");
        match read {
            Read::Organization => _ = first.get_or_insert(seconds),
            Read::UsageStore => _ = usage.get_or_insert(seconds),
            Read::CostPerPerson => {}
        }
    }
    let (first, usage) = (first.unwrap_or(f64::NAN), usage.unwrap_or(f64::NAN));
    let calls = simulator.request_count();
    println!(
        "first full sync: {first:.1} s by Orgkeeper's log; first usage-store sync beside it: \
         {usage:.1} s ({:.1} s after start, {calls} upstream calls for both)",
        started.elapsed().as_secs_f64()
    );

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = sign_in(&http, &address, USER).await;
    let get = |path: &str| {
        http.get(format!("{address}{path}"))
            .header("cookie", &cookie)
            .send()
    };
    let (rss_synced, _) = memory_mb(pid);
    // A later sync, asked for like an admin's "Refresh now" (the request runs it).
    let page = get("/members").await.unwrap().text().await.unwrap();
    let csrf = support::extract_csrf(&page).unwrap();
    simulator.reset_request_count();
    let asked = Instant::now();
    let response = http
        .post(format!("{address}/sync"))
        .header("cookie", &cookie)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    println!(
        "a later sync: {:.1} s ({} upstream calls)",
        asked.elapsed().as_secs_f64(),
        simulator.request_count()
    );
    let db_mb = std::fs::metadata(&database).map_or(0.0, |m| m.len() as f64 / 1e6);
    let free_mb = free_pages_mb(&database).await;
    println!(
        "database after the syncs: {db_mb:.1} MB, of which {free_mb:.1} MB free pages (kept by \
         SQLite for the next refresh's staging)"
    );

    let member = first_link(&page, "/members/user_");
    let workspaces = get("/workspaces").await.unwrap().text().await.unwrap();
    let workspace = first_link(&workspaces, "/workspaces/wrkspc_");
    let keys = get("/keys").await.unwrap().text().await.unwrap();
    let key = first_link(&keys, "/keys/apikey_");
    let pages = [
        "/".to_owned(),
        "/members".into(),
        "/members?q=a&sort=email&page=3".into(),
        member,
        "/invites".into(),
        "/workspaces".into(),
        workspace,
        "/keys".into(),
        "/keys?status=active&flag=no_expiry".into(),
        key,
        "/usage".into(),
        "/cost".into(),
        "/cost/people".into(),
        "/cost/centers".into(),
    ];
    println!(
        "\n{:<44} {:>9} {:>7} {:>9} {:>7}",
        "page (second view)", "ms", "calls", "KB", "status"
    );
    for page in &pages {
        // The first view of /usage, /cost and /cost/people fills its store if the job has not
        // yet.
        let _ = get(page).await.unwrap().bytes().await;
        simulator.reset_request_count();
        let started = Instant::now();
        let response = get(page).await.unwrap();
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap();
        println!(
            "{page:<44} {:>9.1} {:>7} {:>9.1} {status:>7}",
            started.elapsed().as_secs_f64() * 1000.0,
            simulator.request_count(),
            body.len() as f64 / 1024.0
        );
    }

    println!(
        "\nthroughput, {CLIENTS} keep-alive clients, {} s each:",
        LOAD_FOR.as_secs()
    );
    let healthz = load(&address, "/healthz", None).await;
    let mut rows = vec![("/healthz".to_owned(), healthz)];
    for page in [
        "/members",
        "/keys",
        "/",
        "/keys?status=active&flag=no_expiry",
    ] {
        let signed_in = Some(("cookie", cookie.as_str()));
        rows.push((page.to_owned(), load(&address, page, signed_in).await));
    }
    let gateway = "/v1/organizations/api_keys?limit=100";
    let with_token = Some(("x-api-key", token.as_str()));
    rows.push((
        format!("{gateway} (token)"),
        load(&address, gateway, with_token).await,
    ));
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
    let (rss, peak) = memory_mb(pid);
    println!(
        "\nOrgkeeper's resident memory: {rss_synced:.0} MB after the first sync, {rss:.0} MB after \
         the later sync, the pages and the load (peak {peak:.0} MB)"
    );

    // A restart on the same database: the model comes back from SQLite, so pages answer from
    // it at once, before any read of the organization.
    drop(child);
    let restarted = Instant::now();
    let child = common::serve(
        &database,
        &simulator.base_url(),
        &[
            ("ORGKEEPER_FEED_INTERVAL", "3600"),
            ("ORGKEEPER_SWEEP_MINUTES", "10080"),
        ],
    );
    let address = child.address.clone();
    while http.get(format!("{address}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = restarted.elapsed().as_secs_f64();
    let cookie = sign_in(&http, &address, USER).await;
    println!(
        "\nafter a restart: serving in {ready:.1} s; each page's first view\n{:<44} {:>9} {:>9} {:>7}",
        "page", "ms", "KB", "status"
    );
    for page in &pages {
        let started = Instant::now();
        let response = http
            .get(format!("{address}{page}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap();
        println!(
            "{page:<44} {:>9.1} {:>9.1} {status:>7}",
            started.elapsed().as_secs_f64() * 1000.0,
            body.len() as f64 / 1024.0
        );
    }
    let (rss, _) = memory_mb(child.process.0.id());
    println!("Orgkeeper's resident memory after the restart and those pages: {rss:.0} MB");
}

/// Space SQLite keeps free inside the file (reused before the file grows again).
async fn free_pages_mb(database: &std::path::Path) -> f64 {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(database)
        .read_only(true);
    let Ok(pool) = sqlx::SqlitePool::connect_with(options).await else {
        return f64::NAN;
    };
    let pragma = |name: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(name)
                .fetch_one(&pool)
                .await
                .unwrap_or(0)
        }
    };
    let free = pragma("PRAGMA freelist_count").await * pragma("PRAGMA page_size").await;
    pool.close().await;
    free as f64 / 1e6
}

#[derive(Clone, Copy)]
struct Load {
    rate: f64,
    p50_ms: f64,
}

/// `CLIENTS` clients, each with its own keep-alive connection, ask for `path` for `LOAD_FOR`,
/// with a credential header (a session cookie or a token) if given.
async fn load(address: &str, path: &str, credential: Option<(&str, &str)>) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (stop, done) = (stop.clone(), done.clone());
        let url = format!("{address}{path}");
        let credential = credential.map(|(h, v)| (h.to_owned(), v.to_owned()));
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let mut request = http.get(&url);
                if let Some((header, value)) = &credential {
                    request = request.header(header, value);
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
