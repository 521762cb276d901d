//! The simulator's pacing, over real HTTP: the Activity Feed's lag (`--activity-delay-seconds`),
//! a gap in the feed (`record_activities(false)`), request budgets (`--rate-limit`: 429 with
//! `retry-after` and the `anthropic-ratelimit-requests-*` headers) and the typed client waiting
//! one out, and the `xlarge` profile.
//!
//! Time moves with the simulator's clock, never by sleeping, except in one test: the client
//! waits a `retry-after` in real time, so that test arranges for it to be 1 s.

use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use orgkeeper::anthropic::{
    ActivityParams, AdminKey, Budget, Client, ClientConfig, PageParams, UserFilter, WorkspaceFilter,
};
use orgkeeper::simulator::{self, Profile, RunningSimulator, SimulatorOptions};
use reqwest::StatusCode;
use serde_json::Value;

const KEY: &str = "sk-ant-admin01-pacing-test-key";

async fn start(profile: Profile) -> RunningSimulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    simulator::start(listener, SimulatorOptions { profile, seed: 42 })
        .await
        .unwrap()
}

fn client(sim: &RunningSimulator, tweak: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut cfg = ClientConfig::new(sim.base_url(), AdminKey::new(KEY.to_owned()));
    cfg.connect_timeout = Duration::from_secs(2);
    cfg.request_timeout = Duration::from_secs(10);
    cfg.base_backoff = Duration::from_millis(10);
    cfg.max_backoff = Duration::from_millis(40);
    cfg.max_retry_after = Duration::from_secs(3);
    tweak(&mut cfg);
    Client::new(cfg).unwrap()
}

/// Moves the simulator's clock to `second` (and `millis`) past the next minute it reaches.
fn move_to_second(sim: &RunningSimulator, second: u32, millis: u32) {
    let now = sim.now();
    let into_minute = i64::from(now.second()) * 1000 + i64::from(now.timestamp_subsec_millis());
    let target = i64::from(second) * 1000 + i64::from(millis);
    let by = (target - into_minute).rem_euclid(60_000);
    sim.advance_clock(Duration::from_millis(by as u64));
}

/// The end of the simulator's current minute, as the reset header gives it.
fn end_of_minute(sim: &RunningSimulator) -> DateTime<Utc> {
    let now = sim.now().timestamp();
    DateTime::from_timestamp(now - now.rem_euclid(60) + 60, 0).unwrap()
}

async fn workspace_updates(client: &Client) -> Vec<String> {
    let params = ActivityParams {
        activity_types: vec!["platform_workspace_updated".to_owned()],
        ..ActivityParams::default()
    };
    client
        .list_activities(&params)
        .await
        .unwrap()
        .data
        .iter()
        .map(|a| a.field("workspace_id").unwrap_or_default().to_owned())
        .collect()
}

async fn some_workspace(client: &Client) -> String {
    client
        .list_workspaces(&WorkspaceFilter::default(), &PageParams::default())
        .await
        .unwrap()
        .data[0]
        .id
        .clone()
}

// ---------------------------------------------------------------------------------------------
// The Activity Feed's lag and gaps

#[tokio::test]
async fn an_activity_appears_in_the_feed_only_once_its_delay_has_passed() {
    let sim = start(Profile::Demo).await;
    sim.set_activity_delay(Duration::from_secs(60));
    let api = client(&sim, |_| {});
    let ws = some_workspace(&api).await;
    let changed_at = sim.now();
    api.update_workspace(&ws, Some("Renamed while watched"), None)
        .await
        .unwrap();

    assert!(workspace_updates(&api).await.is_empty(), "shown at once");
    sim.advance_clock(Duration::from_secs(58));
    assert!(workspace_updates(&api).await.is_empty(), "shown early");
    sim.advance_clock(Duration::from_secs(2));
    assert_eq!(workspace_updates(&api).await, [ws]);
    // It keeps the time of the change, not the time it appeared.
    let params = ActivityParams {
        activity_types: vec!["platform_workspace_updated".to_owned()],
        ..ActivityParams::default()
    };
    let shown = api.list_activities(&params).await.unwrap().data;
    let recorded = shown[0].created_at;
    assert!(
        (recorded - changed_at).num_seconds().abs() < 5,
        "{recorded} vs {changed_at}"
    );
}

#[tokio::test]
async fn without_a_delay_an_activity_is_in_the_feed_at_once() {
    let sim = start(Profile::Demo).await;
    let api = client(&sim, |_| {});
    let ws = some_workspace(&api).await;
    api.update_workspace(&ws, Some("Renamed"), None)
        .await
        .unwrap();
    assert_eq!(workspace_updates(&api).await, [ws]);
}

#[tokio::test]
async fn while_activities_are_not_recorded_changes_leave_a_gap_in_the_feed() {
    let sim = start(Profile::Demo).await;
    let api = client(&sim, |_| {});
    let workspaces = api
        .list_workspaces(&WorkspaceFilter::default(), &PageParams::default())
        .await
        .unwrap()
        .data;
    let (missed, seen) = (&workspaces[0].id, &workspaces[1].id);

    sim.record_activities(false);
    api.update_workspace(missed, Some("Missed by the feed"), None)
        .await
        .unwrap();
    // The change happened; only the feed does not know.
    let renamed = api
        .list_workspaces(&WorkspaceFilter::default(), &PageParams::default())
        .await
        .unwrap()
        .data;
    assert!(renamed.iter().any(|w| w.name == "Missed by the feed"));
    sim.record_activities(true);
    api.update_workspace(seen, Some("Seen by the feed"), None)
        .await
        .unwrap();

    assert_eq!(workspace_updates(&api).await, std::slice::from_ref(seen));
    // Reading the feed is still recorded while the gap lasts (it is the Compliance API's own).
    assert!(!sim.feed_requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Request budgets

async fn raw_get(url: &str, key: Option<&str>) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .get(url)
        .header("anthropic-version", "2023-06-01");
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn the_admin_api_announces_its_budget_and_refuses_with_429_and_retry_after_once_spent() {
    let sim = start(Profile::Demo).await;
    let users = format!("{}/v1/organizations/users", sim.base_url());

    // Off by default: no budget, no headers.
    let (status, headers, _) = raw_get(&users, Some(KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "anthropic-ratelimit-requests-limit"), None);

    sim.set_rate_limit(3);
    // Early in a minute, so that the window cannot end while the test runs.
    move_to_second(&sim, 5, 0);
    let reset = end_of_minute(&sim);
    for remaining in ["2", "1", "0"] {
        let (status, headers, _) = raw_get(&users, Some(KEY)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            header(&headers, "anthropic-ratelimit-requests-limit"),
            Some("3")
        );
        assert_eq!(
            header(&headers, "anthropic-ratelimit-requests-remaining"),
            Some(remaining)
        );
        let announced = header(&headers, "anthropic-ratelimit-requests-reset").unwrap();
        assert_eq!(
            DateTime::parse_from_rfc3339(announced).unwrap(),
            reset,
            "{announced}"
        );
        assert_eq!(header(&headers, "retry-after"), None);
    }

    // Unauthenticated requests spend nothing (and are told so, without a budget).
    let (status, headers, _) = raw_get(&users, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&headers, "anthropic-ratelimit-requests-limit"), None);

    let (status, headers, body) = raw_get(&users, Some(KEY)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let request_id = header(&headers, "request-id").unwrap();
    assert!(request_id.starts_with("req_"));
    assert_eq!(body["request_id"], request_id);
    assert_eq!(
        header(&headers, "anthropic-ratelimit-requests-remaining"),
        Some("0")
    );
    let wait: u64 = header(&headers, "retry-after").unwrap().parse().unwrap();
    assert!((50..=55).contains(&wait), "retry-after {wait}");

    // The Compliance API has its own budget, its documented 600 a minute.
    let (status, headers, _) = raw_get(
        &format!("{}/v1/compliance/activities", sim.base_url()),
        Some(KEY),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, "anthropic-ratelimit-requests-limit"),
        Some(simulator::COMPLIANCE_PER_MINUTE.to_string().as_str())
    );

    // Once the simulator's clock has passed the wait, the next window answers.
    sim.advance_clock(Duration::from_secs(wait));
    let (status, headers, _) = raw_get(&users, Some(KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, "anthropic-ratelimit-requests-remaining"),
        Some("2")
    );

    // 0 turns the budget off again.
    sim.set_rate_limit(0);
    let (status, headers, _) = raw_get(&users, Some(KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "anthropic-ratelimit-requests-limit"), None);
}

#[tokio::test]
async fn the_compliance_budget_refuses_the_601st_read_of_a_minute() {
    let sim = start(Profile::Demo).await;
    let api = client(&sim, |c| c.max_retries = 0);
    move_to_second(&sim, 1, 0);
    let params = ActivityParams {
        page: PageParams {
            limit: Some(1),
            ..PageParams::default()
        },
        ..ActivityParams::default()
    };
    for _ in 0..simulator::COMPLIANCE_PER_MINUTE {
        api.list_activities(&params).await.unwrap();
    }
    let refused = api.list_activities(&params).await.unwrap_err();
    assert_eq!(refused.status(), Some(429));
    let budget = api.rate_limit(Budget::Compliance).unwrap();
    assert_eq!((budget.limit, budget.remaining), (600, 0));
    // The Admin API's budget is untouched (and off).
    assert!(api.get_organization().await.is_ok());
    assert_eq!(api.rate_limit(Budget::Admin), None);
}

#[tokio::test]
async fn the_client_keeps_the_last_budget_it_was_told() {
    let sim = start(Profile::Demo).await;
    sim.set_rate_limit(100);
    move_to_second(&sim, 5, 0);
    let api = client(&sim, |_| {});
    assert_eq!(api.rate_limit(Budget::Admin), None, "nothing seen yet");
    api.get_organization().await.unwrap();
    api.list_users(&UserFilter::default(), &PageParams::default())
        .await
        .unwrap();
    let seen = api.rate_limit(Budget::Admin).unwrap();
    assert_eq!((seen.limit, seen.remaining), (100, 98));
    assert_eq!(seen.reset, Some(end_of_minute(&sim)));
    // A client with another deadline shares what was seen.
    let job = api.with_deadline(Duration::from_secs(120));
    assert_eq!(job.rate_limit(Budget::Admin), Some(seen));
}

#[tokio::test]
async fn the_client_waits_out_a_short_retry_after_and_then_succeeds() {
    let sim = start(Profile::Demo).await;
    sim.set_rate_limit(1);
    let api = client(&sim, |_| {});
    // Half a second before the minute ends: the budget's one request is spent, the next is
    // told `retry-after: 1`, and one second later the new minute answers. (The client waits
    // in real time; this is the one real second in this file.)
    move_to_second(&sim, 59, 400);
    api.get_organization().await.unwrap();
    sim.reset_request_count();
    let started = Instant::now();
    let users = api
        .list_users(&UserFilter::default(), &PageParams::default())
        .await
        .unwrap();
    assert!(!users.data.is_empty());
    assert_eq!(sim.request_count(), 2, "one refusal, one answer");
    assert!(started.elapsed() >= Duration::from_millis(950));
    let budget = api.rate_limit(Budget::Admin).unwrap();
    assert_eq!((budget.limit, budget.remaining), (1, 0));
    assert_eq!(budget.reset, Some(end_of_minute(&sim)));
}

#[tokio::test]
async fn a_retry_after_longer_than_the_request_timeout_ends_the_call_with_its_request_id() {
    let sim = start(Profile::Demo).await;
    sim.set_rate_limit(1);
    // A background job's long deadline does not make the client wait longer than it would
    // for one answer.
    let api = client(&sim, |c| {
        c.deadline = Duration::from_secs(600);
        c.request_timeout = Duration::from_secs(5);
        c.max_retry_after = Duration::from_secs(60);
    });
    move_to_second(&sim, 5, 0);
    api.get_organization().await.unwrap();
    sim.reset_request_count();
    let started = Instant::now();
    let err = api.get_organization().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(sim.request_count(), 1, "not retried");
    assert_eq!(err.status(), Some(429));
    let wait = err.retry_after().unwrap();
    assert!(wait > Duration::from_secs(5), "{wait:?}");
    let request_id = err.request_id().unwrap().to_owned();
    assert!(request_id.starts_with("req_"));
    let message = err.user_message();
    assert!(message.contains("asked us to wait"), "{message}");
    assert!(message.contains(&request_id), "{message}");
}

// ---------------------------------------------------------------------------------------------
// The `xlarge` profile (its counts are checked in full by the simulator's unit tests)

#[tokio::test]
async fn the_xlarge_profile_serves_a_thousand_workspaces_and_takes_more() {
    assert_eq!("xlarge".parse::<Profile>().unwrap(), Profile::XLarge);
    assert_eq!(Profile::XLarge.to_string(), "xlarge");
    let seeding = Instant::now();
    let sim = start(Profile::XLarge).await;
    assert!(
        seeding.elapsed() < Duration::from_secs(15),
        "{:?}",
        seeding.elapsed()
    );
    let api = client(&sim, |_| {});
    let all = WorkspaceFilter {
        include_archived: true,
        include_default: true,
    };
    let page = api
        .list_workspaces(
            &all,
            &PageParams {
                limit: Some(1000),
                ..PageParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1000);
    assert!(!page.has_more);
    let users = api
        .list_users(
            &UserFilter::default(),
            &PageParams {
                limit: Some(1000),
                ..PageParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(users.data.len(), 1000);
    assert!(users.has_more);
    assert!(users.data.iter().all(|u| u.email.ends_with("@initech.com")));
    // Past Anthropic's 100 active workspaces: a large organization has a raised cap.
    api.create_workspace("Team 1001", None).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// The command line

/// The real `orgkeeper simulate` on a loopback port 0; killed when dropped.
struct Simulate {
    child: std::process::Child,
    base_url: String,
}

impl Simulate {
    fn start(args: &[&str]) -> Simulate {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_orgkeeper"))
            .args(["simulate", "--bind", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let base_url = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.split_once(" at ")
                    .map(|(_, url)| url.trim().to_owned())
            })
            .expect("the simulator prints its address");
        std::thread::spawn(move || lines.for_each(drop));
        Simulate { child, base_url }
    }
}

impl Drop for Simulate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn orgkeeper_simulate_takes_a_rate_limit_and_an_activity_delay() {
    let sim = Simulate::start(&["--rate-limit", "1000", "--activity-delay-seconds", "3600"]);
    let mut cfg = ClientConfig::new(sim.base_url.clone(), AdminKey::new(KEY.to_owned()));
    cfg.max_retries = 0;
    let api = Client::new(cfg).unwrap();
    let ws = api
        .list_workspaces(&WorkspaceFilter::default(), &PageParams::default())
        .await
        .unwrap()
        .data[0]
        .id
        .clone();
    let budget = api.rate_limit(Budget::Admin).unwrap();
    assert_eq!(budget.limit, 1000);
    api.update_workspace(&ws, Some("Renamed from the command line"), None)
        .await
        .unwrap();
    // An hour's delay: the change is not in the feed yet.
    assert!(workspace_updates(&api).await.is_empty());

    let plain = Simulate::start(&[]);
    let mut cfg = ClientConfig::new(plain.base_url.clone(), AdminKey::new(KEY.to_owned()));
    cfg.max_retries = 0;
    let api = Client::new(cfg).unwrap();
    let ws = some_workspace(&api).await;
    assert_eq!(api.rate_limit(Budget::Admin), None, "no budget by default");
    api.update_workspace(&ws, Some("Renamed"), None)
        .await
        .unwrap();
    assert_eq!(workspace_updates(&api).await, [ws]);
}
