//! The security review's findings (issue 11), each checked over real HTTP: the client against
//! tiny loopback servers or the simulator, the dashboard as a real server on a real database.

use std::sync::{Arc, Mutex};

use crate::support::*;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use orgkeeper::anthropic::{AdminKey, Client, ClientConfig, PageParams};
use orgkeeper::audit::Filter;
use orgkeeper::auth::Role;
use orgkeeper::config::{ServerConfig, Upstream};
use orgkeeper::simulator::{self, FaultKind, FaultRule, SimulatorOptions};
use tokio::net::TcpListener;

/// One request a loopback server received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: HeaderMap,
}

/// A tiny HTTP server on a loopback port 0 that records every request and answers with
/// `answer(method, path, headers)`.
struct Loopback {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Loopback {
    async fn start<F>(answer: F) -> Loopback
    where
        F: Fn(&Seen) -> Response + Clone + Send + Sync + 'static,
    {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let answer = answer.clone();
            let record = record.clone();
            async move {
                let request = Seen {
                    method: request.method().to_string(),
                    path: request.uri().path().to_owned(),
                    headers: request.headers().clone(),
                };
                record.lock().unwrap().push(request.clone());
                answer(&request)
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Loopback { base_url, seen }
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn json(status: u16, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [
            ("content-type", "application/json"),
            ("request-id", "req_loopback_1"),
        ],
        body,
    )
        .into_response()
}

fn client_for(base_url: &str) -> Client {
    Client::new(ClientConfig::new(
        base_url.to_owned(),
        AdminKey::new(ADMIN_KEY.to_owned()),
    ))
    .unwrap()
}

/// The dashboard pointed at `base_url` instead of the simulator (which still runs, unused).
async fn spawn_app_against(base_url: &str) -> TestApp {
    let simulator = simulator::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        SimulatorOptions::default(),
    )
    .await
    .unwrap();
    let mut config = ServerConfig::new(Upstream::Live {
        base_url: base_url.to_owned(),
        key: AdminKey::new(ADMIN_KEY.to_owned()),
    });
    config.background_jobs = false;
    spawn_app_with(config, simulator, None).await
}

// ---------------------------------------------------------------------------------------------
// 1. The admin key never follows a redirect.

#[tokio::test]
async fn a_redirect_from_the_admin_api_is_an_error_and_the_key_never_reaches_the_other_host() {
    let elsewhere = Loopback::start(|_| {
        json(
            200,
            r#"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#.into(),
        )
    })
    .await;
    let target = format!("{}/v1/organizations/users", elsewhere.base_url);
    let location = target.clone();
    let redirector = Loopback::start(move |_| {
        (StatusCode::FOUND, [("location", location.clone())]).into_response()
    })
    .await;

    let result = client_for(&redirector.base_url)
        .list_users(&Default::default(), &PageParams::default())
        .await;

    assert!(
        elsewhere.requests().is_empty(),
        "the redirect target received {:?}",
        elsewhere.requests()
    );
    let error = result.expect_err("a redirect must not be followed");
    let message = error.user_message();
    assert!(
        message.contains("redirect") && message.contains(&target),
        "{message}"
    );
    assert!(message.contains("ORGKEEPER_API_BASE_URL"), "{message}");
    assert_eq!(redirector.requests().len(), 1, "a redirect is not retried");

    // The same through the dashboard: the page explains it, the key stays home.
    let app = spawn_app_against(&redirector.base_url).await;
    let (_, session) = app.signed_in(Role::Owner).await;
    let (status, body) = session.get_text("/members").await;
    assert!(status >= 400, "{status}");
    assert!(body.contains("redirect"), "{body}");
    assert!(body.contains("ORGKEEPER_API_BASE_URL"), "{body}");
    assert!(elsewhere
        .requests()
        .iter()
        .all(|seen| seen.headers.get("x-api-key").is_none()));
    assert!(elsewhere.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 2. Sign-in only ever redirects to a path on this site.

#[tokio::test]
async fn signing_in_with_a_tab_smuggled_next_lands_on_the_home_page() {
    let app = spawn_app().await;
    app.create_account("carol", Role::Viewer, &[]).await;
    for next in [
        "/\t/evil.example/x",
        "/\r\n/evil.example",
        "/\\evil.example",
        "/\u{1}x",
    ] {
        let session = app.client();
        let (status, body) = session
            .get_text(&format!(
                "/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(status, 200, "{next:?}");
        assert!(!body.contains("evil.example"), "{next:?} kept in the form");
        let token = extract_csrf(&body).unwrap();
        let response = session
            .post_raw(
                "/login",
                &[
                    ("_csrf", token.as_str()),
                    ("username", "carol"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(response.status(), 303, "{next:?}");
        assert_eq!(location(&response), "/", "{next:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Keys echoed by the upstream are redacted before anything stores, logs or shows them.

const EMPTY_LIST: &str = r#"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#;
const USER_LIST: &str = r#"{"data":[{"id":"user_01Echo","type":"user","email":"echo@example.com","name":"Echo","role":"user","added_at":"2025-01-01T00:00:00Z"}],"has_more":false,"first_id":"user_01Echo","last_id":"user_01Echo"}"#;

#[tokio::test]
async fn an_upstream_error_that_echoes_the_key_is_redacted_in_the_error_the_audit_log_and_the_page()
{
    let prefix: String = ADMIN_KEY.chars().take(20).collect();
    // A refusal that quotes the whole key and, like some proxies, a truncated copy of it.
    let echo = format!("key {ADMIN_KEY} is not allowed (you sent {prefix}…)");
    let upstream = Loopback::start(
        move |seen| match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/v1/organizations/users") => json(200, USER_LIST.into()),
            // Just enough of an organization for the model's first sync.
            ("GET", "/v1/organizations/me") => json(
                200,
                r#"{"id":"org-echo","type":"organization","name":"Echo"}"#.into(),
            ),
            ("GET", _) => json(200, EMPTY_LIST.into()),
            ("POST", _) => json(
                403,
                serde_json::json!({
                    "type": "error",
                    "error": {"type": "permission_error", "message": echo},
                    "request_id": "req_echo"
                })
                .to_string(),
            ),
            _ => json(
                404,
                r#"{"type":"error","error":{"type":"not_found_error","message":"Not found"}}"#
                    .into(),
            ),
        },
    )
    .await;

    let error = client_for(&upstream.base_url)
        .update_user_role("user_01Echo", orgkeeper::anthropic::OrgRole::Developer)
        .await
        .unwrap_err();
    for shown in [
        error.message().to_owned(),
        error.to_string(),
        error.user_message(),
    ] {
        assert!(!shown.contains(&prefix), "{shown}");
        assert!(shown.contains("sk-ant-…[redacted]"), "{shown}");
    }

    let app = spawn_app_against(&upstream.base_url).await;
    let (_, session) = app.signed_in(Role::Owner).await;
    let response = session
        .post("/members/user_01Echo/role", &[("role", "developer")])
        .await;
    let body = response.text().await.unwrap();
    assert!(body.contains("redacted"), "{body}");
    assert!(!body.contains(&prefix), "{body}");
    let records = app
        .audit_records(Filter {
            action: Some("member.role_changed".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(records.len(), 2, "intent and outcome");
    for record in &records {
        let stored = serde_json::to_string(&record.details).unwrap();
        assert!(!stored.contains(&prefix), "{stored}");
    }
    assert!(serde_json::to_string(&records)
        .unwrap()
        .contains("sk-ant-…[redacted]"));
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(!logs.contains(&prefix), "the key prefix was logged");
}

// ---------------------------------------------------------------------------------------------
// 3. One deadline per call: no page waits minutes for the Admin API.

fn rate_limited(path: &str, retry_after_secs: u64, times: u32) -> FaultRule {
    FaultRule {
        method: Some("GET".into()),
        path_contains: Some(path.into()),
        kind: FaultKind::RateLimited {
            retry_after_secs: Some(retry_after_secs),
        },
        times,
    }
}

#[tokio::test]
async fn a_retry_after_longer_than_the_deadline_is_reported_instead_of_slept() {
    let app = spawn_app().await;
    app.simulator
        .faults()
        .inject(rate_limited("/users", 600, 3));
    let started = std::time::Instant::now();

    let error = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        app.state.org.api().list_all_users(&Default::default()),
    )
    .await
    .expect("the call must give up instead of waiting 600 s")
    .unwrap_err();

    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let message = error.user_message();
    assert!(message.contains("asked us to wait 600 s"), "{message}");
    assert!(message.contains("(request id req_"), "{message}");

    // The sync gives up as promptly, and pages keep serving the model and say why it is old.
    app.simulator
        .faults()
        .inject(rate_limited("/users", 600, 3));
    tokio::time::timeout(std::time::Duration::from_secs(10), app.sync())
        .await
        .expect("the sync must give up within the deadline");
    let (_, session) = app.signed_in(Role::Owner).await;
    let (status, page) = session.get_text("/members").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<table"), "the members are still listed");
    assert!(page.contains("The last refresh failed"), "{page}");
    assert!(page.contains("asked us to wait 600 s"), "{page}");
    assert!(page.contains("request id req_"), "{page}");
}

#[tokio::test]
async fn a_hanging_admin_api_is_cut_off_at_the_deadline_with_a_plain_message() {
    let simulator = simulator::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        SimulatorOptions::default(),
    )
    .await
    .unwrap();
    simulator.faults().inject(FaultRule {
        method: Some("GET".into()),
        path_contains: Some("/me".into()),
        kind: FaultKind::Hang,
        times: 5,
    });
    let mut config = ClientConfig::new(simulator.base_url(), AdminKey::new(ADMIN_KEY.to_owned()));
    config.deadline = std::time::Duration::from_secs(2);
    let client = Client::new(config).unwrap();
    let started = std::time::Instant::now();

    let error = client.get_organization().await.unwrap_err();

    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(error.kind(), orgkeeper::anthropic::ApiErrorKind::Timeout);
    assert!(
        error.user_message().contains("did not answer within 2 s"),
        "{}",
        error.user_message()
    );
    // The same limit applies to a clone for longer work, which keeps its own.
    assert_eq!(
        client
            .with_deadline(std::time::Duration::from_secs(120))
            .deadline(),
        std::time::Duration::from_secs(120)
    );
    assert_eq!(client.deadline(), std::time::Duration::from_secs(2));

    // Through the dashboard, configured with a 2 s deadline.
    simulator.faults().inject(FaultRule {
        method: Some("GET".into()),
        path_contains: Some("/users".into()),
        kind: FaultKind::Hang,
        times: 1000,
    });
    let mut config = live_config(&simulator);
    config.api_deadline = std::time::Duration::from_secs(2);
    // The first sync (which the harness runs) gives up; pages say so instead of hanging.
    let started = std::time::Instant::now();
    let app = spawn_app_with(config, simulator, None).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let (_, session) = app.signed_in(Role::Owner).await;
    let started = std::time::Instant::now();
    let (_, body) = session.get_text("/members").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(
        body.contains("has not been able to read the organization yet"),
        "{body}"
    );
    assert!(body.contains("did not answer within 2 s"), "{body}");
}

/// A page does not wait behind the usage job: while the job's read of the usage report hangs
/// (the first read of a large organization takes minutes), the usage page with numbers stored
/// answers at once with them and says newer ones are being read.
#[tokio::test]
async fn a_page_answers_within_its_deadline_while_the_usage_job_is_still_reading() {
    let app = spawn_app_configured(Default::default(), |config| {
        config.api_deadline = std::time::Duration::from_secs(2);
    })
    .await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let (status, _) = viewer.get_text("/usage").await;
    assert_eq!(status, 200, "the first view reads and stores the usage");
    // The stored numbers age past what a page shows without asking for newer ones.
    let aged = std::time::Duration::from_secs(300);
    app.state.clock.advance(aged);
    app.simulator.advance_clock(aged);

    // The job's next read hangs, holding the store's sync lock.
    let job = app
        .usage_job_hanging_at("/usage_report/messages", "usage_report")
        .await;

    let started = std::time::Instant::now();
    let (status, body) = viewer.get_text("/usage").await;
    let waited = started.elapsed();
    job.abort();

    assert_eq!(status, 200, "{body}");
    // It does not wait the 3 s a page with nothing stored gives another read.
    assert!(
        waited < std::time::Duration::from_secs(3),
        "the page waited {waited:?}"
    );
    assert!(
        body.contains("newer numbers are being read from Anthropic in the background"),
        "{body}"
    );
    assert!(body.contains("usage-table"), "the stored numbers are shown");
}

/// With nothing stored yet, the usage page does not wait for the job's first read (about a
/// minute and a half on `xlarge`) either: it says the numbers are being read for the first
/// time.
#[tokio::test]
async fn with_nothing_stored_the_usage_page_does_not_wait_for_the_jobs_first_read() {
    let app = spawn_app_configured(Default::default(), |config| {
        config.api_deadline = std::time::Duration::from_secs(20);
    })
    .await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let job = app
        .usage_job_hanging_at("/usage_report/messages", "usage_report")
        .await;

    let started = std::time::Instant::now();
    let (status, body) = viewer.get_text("/usage").await;
    let waited = started.elapsed();
    job.abort();

    assert_eq!(status, 200, "{body}");
    assert!(
        waited < std::time::Duration::from_secs(3),
        "the page waited {waited:?}"
    );
    assert!(
        body.contains("reading these numbers from Anthropic for the first time"),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Refused forms are audited without letting anyone flood the log.

fn csrf_rejections(records: &[orgkeeper::audit::Record]) -> Vec<&orgkeeper::audit::Record> {
    records
        .iter()
        .filter(|r| r.action == "security.csrf_rejected")
        .collect()
}

fn suppressed(record: &orgkeeper::audit::Record) -> u64 {
    record.details["suppressed"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn two_hundred_refused_posts_leave_a_few_audit_records_and_a_summary_with_the_count() {
    let app = spawn_app().await;
    let anonymous = app.client();
    let mut sent = 0u64;
    for _ in 0..200 {
        let response = anonymous.post_raw("/logout", &[]).await;
        assert_eq!(response.status(), 403);
        sent += 1;
    }
    let records = app.audit_records(Filter::default()).await;
    let rejected = csrf_rejections(&records);
    assert_eq!(rejected.len(), 5, "the first 5 of the minute, one by one");
    assert!(rejected
        .iter()
        .all(|r| r.source_ip.as_deref() == Some("127.0.0.1")));

    // A minute later the next refusal brings the summary: no refusal goes uncounted.
    app.state
        .clock
        .advance(orgkeeper::service::refusals::WINDOW);
    let response = anonymous.post_raw("/logout", &[]).await;
    assert_eq!(response.status(), 403);
    sent += 1;
    let records = app.audit_records(Filter::default()).await;
    let (summaries, individual): (Vec<_>, Vec<_>) = csrf_rejections(&records)
        .into_iter()
        .partition(|r| r.details["summary"] == true);
    let summarised: u64 = summaries.iter().map(|r| suppressed(r)).sum();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(individual.len() as u64 + summarised, sent);
    assert_eq!(summarised, 195);
}

// ---------------------------------------------------------------------------------------------
// 6. `orgkeeper simulate` takes faults from outside the process.

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
        // Keep reading: a closed pipe would make its next line fail and the process stop.
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
async fn orgkeeper_simulate_takes_faults_from_its_control_endpoint_only_when_enabled() {
    let controlled = Simulate::start(&["--fault-control"]);
    let http = reqwest::Client::new();
    let control = format!("{}/_faults", controlled.base_url);
    let added = http
        .post(&control)
        .json(&serde_json::json!({
            "fault": "429:path-prefix=/v1/organizations/users:retry-after=30"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let mut config = ClientConfig::new(
        controlled.base_url.clone(),
        AdminKey::new(ADMIN_KEY.to_owned()),
    );
    config.deadline = std::time::Duration::from_secs(5);
    let client = Client::new(config).unwrap();

    let error = client
        .list_users(&Default::default(), &PageParams::default())
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(429));
    assert_eq!(
        error.retry_after(),
        Some(std::time::Duration::from_secs(30))
    );
    assert!(error.user_message().contains("asked us to wait 30 s"));
    client.get_organization().await.expect("other paths answer");

    let refused = http
        .post(&control)
        .json(&serde_json::json!({ "fault": "418" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("unknown fault"));
    assert_eq!(http.delete(&control).send().await.unwrap().status(), 200);
    client
        .list_users(&Default::default(), &PageParams::default())
        .await
        .expect("faults were cleared");

    // Without --fault-control there is no such endpoint; --fault still works.
    let plain = Simulate::start(&[
        "--fault",
        "529:path-prefix=/v1/organizations/me",
        "--fault",
        "redirect:path-prefix=/v1/organizations/users:location=http://127.0.0.1:9/elsewhere",
    ]);
    let absent = http
        .post(format!("{}/_faults", plain.base_url))
        .header("x-api-key", ADMIN_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&serde_json::json!({ "fault": "500" }))
        .send()
        .await
        .unwrap();
    assert_eq!(absent.status(), 404);
    let client = client_for(&plain.base_url).with_deadline(std::time::Duration::from_secs(5));
    let overloaded = client.get_organization().await.unwrap_err();
    assert_eq!(overloaded.status(), Some(529), "{overloaded}");
    let redirect = client
        .list_users(&Default::default(), &PageParams::default())
        .await
        .unwrap_err();
    assert!(
        redirect
            .user_message()
            .contains("redirect to http://127.0.0.1:9/elsewhere"),
        "{}",
        redirect.user_message()
    );
}
