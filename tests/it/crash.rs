//! Crash safety of the real binary: SIGKILL during 30 concurrent role changes, restart on the
//! same database, and the audit log still tells the whole truth.
//!
//! Between the server and the simulator sits a small proxy in this test that decides, per
//! change, how the crash catches it: answered (the change finished), applied upstream with
//! the answer held back (the server dies waiting for it), or held before it reaches the
//! simulator (never applied). The kill comes when every change is in one of those states, so
//! the crash lands mid-way every time, without timing guesses.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::response::Response;
use orgkeeper::anthropic::{AdminKey, Client, ClientConfig, OrgRole, User};
use orgkeeper::audit::{AuditLog, Filter, Outcome, Record, Resolution, RECOVERY_ACTOR};
use orgkeeper::simulator::{self, SimulatorOptions};
use tokio::net::TcpListener;

use crate::support::{Session, ADMIN_KEY, PASSWORD};

const CHANGES: usize = 30;
/// Everything this test waits for must happen well within this.
const PATIENCE: Duration = Duration::from_secs(40);

/// What the proxy did with the n-th change it saw.
#[derive(Default)]
struct Proxy {
    simulator: String,
    http: reqwest::Client,
    writes: AtomicUsize,
    answered: AtomicUsize,
    applied_unanswered: AtomicUsize,
    never_sent: AtomicUsize,
}

async fn proxy(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let write = parts.method != axum::http::Method::GET;
    let n = if write {
        proxy.writes.fetch_add(1, Ordering::SeqCst)
    } else {
        0
    };
    if write && n % 3 == 2 {
        proxy.never_sent.fetch_add(1, Ordering::SeqCst);
        return std::future::pending().await;
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forward = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.simulator))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    let upstream = forward.send().await.expect("the simulator answers");
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let bytes = upstream.bytes().await.unwrap_or_default();
    if write && n % 3 == 1 {
        proxy.applied_unanswered.fetch_add(1, Ordering::SeqCst);
        return std::future::pending().await;
    }
    if write {
        proxy.answered.fetch_add(1, Ordering::SeqCst);
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// The server process; killed (SIGKILL) when dropped, so a failing test leaves nothing behind.
struct Orgkeeper {
    child: Child,
    address: String,
    output: Arc<Mutex<String>>,
}

impl Drop for Orgkeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(db: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orgkeeper"));
    command
        .env("ORGKEEPER_DATABASE", db)
        .env_remove("ANTHROPIC_ADMIN_KEY")
        .env_remove("ANTHROPIC_ADMIN_KEY_FILE")
        .env("ORGKEEPER_LOG", "warn");
    command
}

fn add_owner(db: &std::path::Path) {
    let mut child = command(db)
        .args([
            "user",
            "add",
            "owner",
            "--role",
            "owner",
            "--password-stdin",
        ])
        .env_remove("ANTHROPIC_ADMIN_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Starts `orgkeeper serve` on a free loopback port and waits until /healthz answers.
async fn serve(db: &std::path::Path, api: &str) -> Orgkeeper {
    let mut child = command(db)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("ORGKEEPER_API_BASE_URL", api)
        .env("ANTHROPIC_ADMIN_API_KEY", ADMIN_KEY)
        // Longer than this test: the server must not give up on a held change by itself.
        .env("ORGKEEPER_API_DEADLINE_SECONDS", "120")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stdout = child.stdout.take().unwrap();
    let lines = output.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Orgkeeper is listening on ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(url.to_owned());
                }
            }
            lines.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let stderr = child.stderr.take().unwrap();
    let lines = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            lines.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let mut server = Orgkeeper {
        child,
        address: String::new(),
        output,
    };
    server.address = match tokio::time::timeout(PATIENCE, rx).await {
        Ok(Ok(url)) => url,
        _ => panic!(
            "the server did not start:\n{}",
            server.output.lock().unwrap()
        ),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let health = http.get(format!("{}/healthz", server.address)).send().await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return server;
        }
        assert!(Instant::now() < deadline, "the server never became healthy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn users(api: &Client) -> HashMap<String, User> {
    api.list_all_users(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect()
}

/// Polls `done` (cheap, in-process counters) until it holds; bounded.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_concurrent_changes_restarts_with_every_change_accounted_for() {
    // Arrange: a simulator, the proxy in front of it, an owner account, the server.
    let simulator = simulator::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        SimulatorOptions::default(),
    )
    .await
    .unwrap();
    let direct = Client::new(ClientConfig::new(
        simulator.base_url(),
        AdminKey::new(ADMIN_KEY.to_owned()),
    ))
    .unwrap();
    let state = Arc::new(Proxy {
        simulator: simulator.base_url(),
        ..Default::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(proxy)
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orgkeeper.db");
    let path = db.clone();
    tokio::task::spawn_blocking(move || add_owner(&path))
        .await
        .unwrap();
    let mut server = serve(&db, &proxy_url).await;
    let session = Session {
        address: server.address.clone(),
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    assert_eq!(session.login("owner", PASSWORD).await.status(), 303);
    let token = session.csrf().await;

    let before = users(&direct).await;
    let mut targets: Vec<&User> = before
        .values()
        .filter(|u| u.role != OrgRole::Admin)
        .collect();
    targets.sort_by(|a, b| a.id.cmp(&b.id));
    assert!(
        targets.len() >= CHANGES,
        "the demo organization is smaller than expected"
    );
    targets.truncate(CHANGES);

    // Act: 30 concurrent role changes, SIGKILL once each one is answered or stuck.
    let finished = Arc::new(AtomicUsize::new(0));
    for user in &targets {
        let role = if user.role == OrgRole::Developer {
            "user"
        } else {
            "developer"
        };
        let (http, url, token, finished) = (
            session.http.clone(),
            format!("{}/members/{}/role", server.address, user.id),
            token.clone(),
            finished.clone(),
        );
        tokio::spawn(async move {
            let sent = http
                .post(url)
                .form(&[("_csrf", token.as_str()), ("role", role)])
                .send()
                .await;
            if sent.is_ok_and(|r| r.status() == 303) {
                finished.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let third = CHANGES / 3;
    until("every change to be answered or stuck", || {
        finished.load(Ordering::SeqCst) == third
            && state.applied_unanswered.load(Ordering::SeqCst) == third
            && state.never_sent.load(Ordering::SeqCst) == third
    })
    .await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();

    // The kill really left changes half-done: intents with no outcome, some applied upstream.
    {
        let pool = orgkeeper::db::connect(&db).await.unwrap();
        let open = AuditLog::new(pool.clone())
            .unresolved_intents(chrono::Utc::now())
            .await
            .unwrap();
        assert_eq!(open.len(), 2 * third, "the intents the crash interrupted");
        pool.close().await;
    }
    let middle = users(&direct).await;
    let changed_while_killed = targets
        .iter()
        .filter(|u| middle[&u.id].role != u.role)
        .count();
    assert_eq!(
        changed_while_killed,
        2 * third,
        "answered + applied-unanswered"
    );

    // Restart on the same database.
    let server = serve(&db, &proxy_url).await;

    // Assert: the chain verifies (with the command an operator would run) ...
    let verify = command(&db)
        .args(["audit", "verify"])
        .env_remove("ANTHROPIC_ADMIN_API_KEY")
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // ... no intent is left without an outcome ...
    let pool = orgkeeper::db::connect(&db).await.unwrap();
    let log = AuditLog::new(pool.clone());
    assert!(log.verify().await.unwrap().is_intact());
    let pending = log
        .query(
            &Filter {
                outcome: Some(Outcome::Pending),
                ..Default::default()
            },
            1000,
            0,
        )
        .await
        .unwrap();
    let open: Vec<i64> = pending.0.iter().map(|r| r.seq).collect();
    assert_eq!(
        pending.1, 0,
        "intents with no outcome after the restart: {open:?}"
    );
    // ... and every change visible upstream has an intent whose outcome says it happened;
    // every change that did not happen has none that says so.
    let (records, _) = log
        .query(
            &Filter {
                action: Some("member.role_changed".into()),
                ..Default::default()
            },
            1000,
            0,
        )
        .await
        .unwrap();
    let intents: HashMap<i64, &Record> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Pending)
        .map(|r| (r.seq, r))
        .collect();
    let after = users(&direct).await;
    for user in &targets {
        let now = after[&user.id].role.as_str();
        let mine: Vec<&&Record> = intents
            .values()
            .filter(|i| i.target_id.as_deref() == Some(&user.id))
            .collect();
        assert_eq!(mine.len(), 1, "one intent for {}", user.id);
        let intent = mine[0];
        let outcome = records
            .iter()
            .find(|r| r.intent_seq == Some(intent.seq))
            .expect("every intent has an outcome");
        let visible = now != user.role.as_str();
        if visible {
            assert_eq!(
                intent.details["after"], now,
                "the intent names what happened"
            );
        }
        assert_eq!(
            outcome.outcome == Outcome::Ok,
            visible,
            "{}: upstream {now}, outcome {:?}",
            user.id,
            outcome
        );
        if outcome.actor_name == RECOVERY_ACTOR {
            let expected = if visible {
                Resolution::Applied
            } else {
                Resolution::NotApplied
            };
            assert_eq!(outcome.resolution(), Some(expected));
        }
    }
    let recovered = records.iter().filter(|r| r.resolution().is_some()).count();
    assert_eq!(
        recovered,
        2 * third,
        "each interrupted change resolved once"
    );
    assert_eq!(
        state.writes.load(Ordering::SeqCst),
        CHANGES,
        "no change sent twice"
    );
    pool.close().await;
    drop(server);
    simulator.shutdown().await;
}
