//! What following the organization costs, and how fast it sees a change: the `large`
//! simulated organization (5,000 members, 100 workspaces, 20,000 keys) behind an Admin API
//! that takes 1 s a call, with a feed that shows each activity 60 s after its change (as the
//! real one), and Orgkeeper's default settings.
//!
//! Orgkeeper runs as its own process (the release `orgkeeper serve`). Measured:
//!
//! * the first complete read (from Orgkeeper's log line);
//! * the upstream calls a minute while nothing changes, over `QUIET`, once the first reads of
//!   the organization and of usage are done: the feed's reads, the sweep and the usage job
//!   together (the target: at most 30);
//! * how long a change made in the Console takes to be in the audit log, named by the feed
//!   (target: within 120 s).
//!
//! Run: `cargo bench --bench follow` (release build, about 8 minutes). A measurement, not a
//! test: it prints numbers and asserts nothing about time.

mod common;
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::Read;
use orgkeeper::simulator::{self, Profile, SimulatorOptions};

const LATENCY: Duration = Duration::from_secs(1);
const FEED_LAG: Duration = Duration::from_secs(60);
const QUIET: Duration = Duration::from_secs(180);
const USER: &str = "bench-owner";
const KEY_NAME: &str = "made-in-the-console";

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
    simulator.set_activity_delay(FEED_LAG);
    println!(
        "Orgkeeper follow benchmark: large profile, {} s per upstream call, feed lag {} s, default settings",
        LATENCY.as_secs(),
        FEED_LAG.as_secs()
    );

    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("orgkeeper.db");
    common::add_owner(&database, USER);
    let started = Instant::now();
    let mut served = common::serve(&database, &simulator.base_url(), &[]);
    let pid = served.process.0.id();
    let mut syncs = common::sync_times(&mut served.process.0);
    // "Nothing changing" starts once the first reads are done: the organization's, the usage
    // store's and cost per person's (about 50 calls once, a year of days; counted in the
    // window, it was 17 of 33 calls a minute).
    let (mut first, mut usage, mut people) = (None, None, None);
    while first.is_none() || usage.is_none() || people.is_none() {
        let (read, seconds) = tokio::time::timeout(Duration::from_secs(1800), syncs.recv())
            .await
            .expect("the first reads finish")
            .expect("orgkeeper is running");
        match read {
            Read::Organization => _ = first.get_or_insert(seconds),
            Read::UsageStore => _ = usage.get_or_insert(seconds),
            Read::CostPerPerson => _ = people.get_or_insert(started.elapsed().as_secs_f64()),
        }
    }
    println!(
        "first complete read: {:.0} s by Orgkeeper's log; first usage-store read beside it: {:.0} s; \
         first read of cost per person done {:.0} s after start ({} upstream calls)",
        first.unwrap_or(f64::NAN),
        usage.unwrap_or(f64::NAN),
        people.unwrap_or(f64::NAN),
        simulator.request_count()
    );

    simulator.reset_request_count();
    let quiet = Instant::now();
    tokio::time::sleep(QUIET).await;
    let calls = simulator.request_count();
    let minutes = quiet.elapsed().as_secs_f64() / 60.0;
    println!(
        "nothing changing: {calls} upstream calls in {minutes:.1} min = {:.1} a minute \
         (feed reads, sweep and usage job together; target at most 30)",
        calls as f64 / minutes
    );
    let by_area: Vec<String> = simulator
        .request_counts()
        .iter()
        .map(|(area, n)| format!("{area} {:.1}", *n as f64 / minutes))
        .collect();
    println!("  a minute, by area: {}", by_area.join(", "));

    // A change in the Console, by a member, from an address.
    let snapshot_page = {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let cookie = common::sign_in(&http, &served.address, USER).await;
        (http, cookie)
    };
    let (http, cookie) = snapshot_page;
    let api = orgkeeper::anthropic::Client::new(orgkeeper::anthropic::ClientConfig::new(
        simulator.base_url(),
        orgkeeper::anthropic::AdminKey::new(support::ADMIN_KEY.to_owned()),
    ))
    .unwrap();
    let (user, workspace) = {
        let users = api
            .list_users(&Default::default(), &Default::default())
            .await
            .unwrap()
            .data;
        let workspaces = api
            .list_workspaces(&Default::default(), &Default::default())
            .await
            .unwrap()
            .data;
        (users[0].id.clone(), workspaces[0].id.clone())
    };
    let made = Instant::now();
    simulator
        .console(&user, "203.0.113.5")
        .create_key(KEY_NAME, &workspace);
    let wanted = format!("Key created — {KEY_NAME}, by ");
    let seen = loop {
        let page = http
            .get(format!("{}/audit?source=observed", served.address))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains(&wanted) {
            break Some(made.elapsed());
        }
        if made.elapsed() > Duration::from_secs(600) {
            break None;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    match seen {
        Some(after) => println!(
            "a key created in the Console was in the audit log, named by the feed, {:.0} s after \
             it was made (target within 120 s)",
            after.as_secs_f64()
        ),
        None => println!("a key created in the Console was not in the audit log after 600 s"),
    }
    let (rss, peak) = common::memory_mb(pid);
    println!("Orgkeeper's resident memory: {rss:.0} MB (peak {peak:.0} MB)");
}
